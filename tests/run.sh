#!/bin/bash
# run.sh - the test runner behind `make check` (and `make asan`).
#
#   tests/run.sh [--list] [FILTER]
#
# Runs every unit test binary $BUILD/tests/NAME (built from tests/unit/NAME.c)
# and every integration script tests/integration/*.sh, one at a time. Only
# tests whose name (unit/NAME, integration/NAME) contains FILTER run.
#
# Unit binaries end with "N passed, N failed" and exit non-zero on failure.
# Integration scripts run under bash with BKFS=$BUILD/bkfs, BUILD=$BUILD,
# GENTREE=$BUILD/gentree, SRCDIR=<repo root> and TMPDIR set to a fresh
# directory $BUILD/tmp/NAME (removed again when the test passes); exit 0 is a
# pass, 77 a skip, anything else a failure.
#
# Each test counts once. Output is one line per test (PASS name (Ns),
# FAIL name, SKIP name); a failure also prints the last 30 lines of its log
# $BUILD/tmp/NAME.log. The last line is "N passed, N failed" (", N skipped"
# when some were). Exit status 1 if any test failed.
#
# Environment: BUILD (default build), TEST_TIMEOUT seconds per test (default
# 600), KEEP_TMP=1 keeps every test's TMPDIR.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
SRCDIR=$(pwd)
BUILD=${BUILD:-build}
TEST_TIMEOUT=${TEST_TIMEOUT:-600}
KEEP_TMP=${KEEP_TMP:-0}

list=0 filter=""
for arg in "$@"; do
	case "$arg" in
	--list) list=1 ;;
	-h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option '$arg'" >&2; exit 2 ;;
	*) filter=$arg ;;
	esac
done

mkdir -p "$BUILD/tmp"
BUILD_ABS=$(cd "$BUILD" && pwd)
TMPROOT=$BUILD_ABS/tmp

# Sanitizer defaults (only used by sanitized builds; callers may override).
# image files need no fdatasync in tests (power loss is tested on the
# emulated device); see src/io/file_dev.c
export BKFS_UNSAFE_NOSYNC=${BKFS_UNSAFE_NOSYNC:-1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---- collect tests as "kind:name:path"
tests=()
if [ -d "$BUILD/tests" ]; then
	for bin in "$BUILD"/tests/*; do
		if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then continue; fi
		name=${bin##*/}
		case "$name" in *.d|*.o|*.log|*.tmp) continue ;; esac
		# a binary whose source is gone is stale: not ours to run
		[ -f "tests/unit/$name.c" ] || continue
		tests+=("unit:$name:$bin")
	done
fi
for script in tests/integration/*.sh; do
	[ -f "$script" ] || continue
	name=${script##*/}
	tests+=("integration:${name%.sh}:$script")
done

# Unmount anything (FUSE or otherwise) a test left mounted under $1.
cleanup_mounts() {
	local dir=$1 mnt
	[ -r /proc/self/mounts ] || return 0
	# deepest first
	awk '{ print $2 }' /proc/self/mounts | grep -F "$dir" | sort -r |
	while read -r mnt; do
		case "$mnt" in "$dir"|"$dir"/*) ;; *) continue ;; esac
		fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	done
}

now_ms() { date +%s%3N; }

passed=0 failed=0 skipped=0
failed_names=()

for t in "${tests[@]}"; do
	kind=${t%%:*}; rest=${t#*:}; name=${rest%%:*}; path=${rest#*:}
	full=$kind/$name
	[ -n "$filter" ] && [[ "$full" != *"$filter"* ]] && continue
	# TEST_EXCLUDE: space-separated names (unit/NAME or integration/NAME) to skip
	excluded=0
	for x in ${TEST_EXCLUDE:-}; do [ "$full" = "$x" ] && excluded=1; done
	if [ "$excluded" = 1 ]; then
		[ "$list" = 1 ] || echo "SKIP $full (excluded in this run)"
		skipped=$((skipped + 1))
		continue
	fi
	if [ "$list" = 1 ]; then echo "$full"; continue; fi

	slug=$kind.$name
	log=$TMPROOT/$slug.log
	tmp=$TMPROOT/$slug
	cleanup_mounts "$tmp"
	rm -rf "$tmp"
	mkdir -p "$tmp"

	start=$(now_ms)
	if [ "$kind" = unit ]; then
		TMPDIR=$tmp timeout --kill-after=10 "$TEST_TIMEOUT" "$path" > "$log" 2>&1 </dev/null
		rc=$?
	else
		BKFS=$BUILD_ABS/bkfs BUILD=$BUILD_ABS GENTREE=$BUILD_ABS/gentree \
		SRCDIR=$SRCDIR TMPDIR=$tmp \
			timeout --kill-after=10 "$TEST_TIMEOUT" bash "$path" > "$log" 2>&1 </dev/null
		rc=$?
	fi
	end=$(now_ms)
	secs=$(awk -v ms=$((end - start)) 'BEGIN { printf "%.1f", ms / 1000 }')
	cleanup_mounts "$tmp"

	if [ "$rc" = 0 ]; then
		extra=""
		if [ "$kind" = unit ]; then
			counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
			[ -n "$counts" ] && extra=", ${counts%% *} checks"
		fi
		echo "PASS $full (${secs}s$extra)"
		passed=$((passed + 1))
		[ "$KEEP_TMP" = 1 ] || rm -rf "$tmp"
	elif [ "$kind" = integration ] && [ "$rc" = 77 ]; then
		reason=$(grep -v '^[[:space:]]*$' "$log" | tail -1)
		echo "SKIP $full${reason:+ ($reason)}"
		skipped=$((skipped + 1))
		[ "$KEEP_TMP" = 1 ] || rm -rf "$tmp"
	else
		why="exit $rc"
		[ "$rc" = 124 ] || [ "$rc" = 137 ] && why="timed out after ${TEST_TIMEOUT}s"
		echo "FAIL $full ($why, ${secs}s; log $log)"
		# indented so the test's own "N passed, N failed" is not taken for ours
		tail -n 30 "$log" | sed 's/^/    | /'
		failed=$((failed + 1))
		failed_names+=("$full")
	fi
done

[ "$list" = 1 ] && exit 0

if [ "$failed" -gt 0 ]; then
	echo "failed: ${failed_names[*]}"
fi
summary="$passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
[ "$failed" = 0 ]
