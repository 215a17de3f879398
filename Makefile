# bkfs - plain Makefile. `make` builds build/bkfs and build/libbkfs.a.
#
# Two stages. The make you type only installs the missing Debian packages
# (scripts/deps.sh, when root) and then runs make again, with
# BKFS_DEPS_DONE=1, for the same goals. The build rules below are read only
# by that second make, so what they ask of the installed tools (the
# `pkg-config fuse3` flags) is evaluated after the packages are there.
# `make clean` goes straight to the second stage: it installs nothing.
BKFS_STAGE := 2
ifndef BKFS_DEPS_DONE
ifneq ($(filter-out clean,$(or $(MAKECMDGOALS),all)),)
BKFS_STAGE := 1
endif
endif

ifeq ($(BKFS_STAGE),1)
# ---- stage 1: dependencies, then make again ----
.PHONY: deps-then-make $(MAKECMDGOALS)
deps-then-make:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory BKFS_DEPS_DONE=1 $(MAKECMDGOALS)

# every goal is made by the second make
$(MAKECMDGOALS): deps-then-make ; @:

else
# ---- stage 2: the build ----
CC ?= cc
BUILD ?= build
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-address-of-packed-member -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -pthread
OPT ?= -O2 -g
CFLAGS ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(OPT) $(CFLAGS)
LDLIBS := -lisal -pthread
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS := $(shell pkg-config --libs fuse3 2>/dev/null)

LIB_LAYERS := util io format btree journal alloc data fs fsck debug mount
LIB_SRCS := $(foreach d,$(LIB_LAYERS),$(wildcard src/$(d)/*.c))
# the FUSE adapter (mount layer) is the only libfuse user: it is linked into the
# bkfs tool only, so libbkfs.a and the unit tests do not need libfuse
FUSE_SRCS := src/mount/fuse.c src/mount/fuse_wire.c
LIB_SRCS := $(filter-out $(FUSE_SRCS),$(LIB_SRCS))
LIB_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
FUSE_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(FUSE_SRCS))
$(FUSE_OBJS): ALL_CFLAGS += $(FUSE_CFLAGS)
TOOL_SRCS := $(wildcard src/tools/*.c)
TOOL_OBJS := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(TOOL_SRCS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all deps check asan bench bench-aging bench-aged bench-fuse clean demo fuzz
all: $(BUILD)/bkfs $(BUILD)/libbkfs.a $(UNIT_BINS) $(BUILD)/gentree $(BUILD)/churn $(BUILD)/srctree

# `make deps` only installs the packages (stage 1 did it)
deps: ; @:

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libbkfs.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# objects are linked directly (not through the archive): every object is
# in the binary, and a missing one is a link error
$(BUILD)/bkfs: $(TOOL_OBJS) $(LIB_OBJS) $(FUSE_OBJS) $(BUILD)/libbkfs.a
	$(CC) $(ALL_CFLAGS) -o $@ $(TOOL_OBJS) $(LIB_OBJS) $(FUSE_OBJS) $(LDLIBS) $(FUSE_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libbkfs.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BUILD)/gentree: bench/gentree.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

# the source-like and deep trees of the aged-image benchmark
$(BUILD)/srctree: bench/srctree.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

# the aging workload of online_gc.sh and the benchmark's aging section
$(BUILD)/churn: bench/churn.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $<

check: all
	@BUILD=$(BUILD) tests/run.sh

# The sanitizer run covers every unit test and the integration tests that feed
# damaged or hostile input to the tool. crash_repair (many full repair runs)
# and roundtrip (a 20,000-entry tree) run only in `make check`, to keep CI short.
ASAN_EXCLUDE ?= integration/crash_repair integration/roundtrip
asan:
	TEST_EXCLUDE="$(ASAN_EXCLUDE)" \
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" check

demo: all
	scripts/demo.sh

bench: all
	BUILD=$(BUILD) bench/bench.sh
	BUILD=$(BUILD) bench/aging.sh
	BUILD=$(BUILD) bench/aged.sh
	BUILD=$(BUILD) bench/metadata_copies.sh
	BUILD=$(BUILD) bench/scrub.sh
	BUILD=$(BUILD) SC_FILES=50000 SC_GENTREE_ARGS="--max-size 64K" bench/scrub.sh
	BUILD=$(BUILD) SC_DEVICE=ram SC_FILES=100000 bench/scrub.sh
	BUILD=$(BUILD) bench/fuse.sh

# only the aged-image section: fsck on trees untarred and edited through the mount
bench-aged: all
	BUILD=$(BUILD) bench/aged.sh

# only the FUSE throughput section: bkfs mount beside libfuse's passthrough_ll
# and kernel ext4, same workloads, same run (bench/fuse.sh)
bench-fuse: all
	BUILD=$(BUILD) bench/fuse.sh

# only the aging section: churn through the mount at several fill levels
bench-aging: all
	BUILD=$(BUILD) bench/aging.sh

# libFuzzer harness for node, key and superblock validation (tests/fuzz);
# needs clang, runs FUZZ_TIME seconds. CI calls it only when clang exists.
FUZZ_TIME ?= 30
fuzz: $(BUILD)/bkfs $(BUILD)/gentree
	@BUILD=$(BUILD) tests/fuzz/run.sh $(FUZZ_TIME)

clean:
	rm -rf --one-file-system build build-asan

-include $(LIB_OBJS:.o=.d) $(TOOL_OBJS:.o=.d) $(FUSE_OBJS:.o=.d)
endif
