#!/bin/bash
# fuse.sh - `make bench-fuse` (also part of `make bench`): the FUSE mount's
# throughput beside two references measured in the same run:
#   bkfs   `bkfs mount` of a fresh image file
#   pt_ll  libfuse's low-level passthrough example (passthrough_ll.c from
#          libfuse3-dev's examples, built here with the HAVE_* macros
#          libfuse's own build sets: fallocate, copy_file_range...) over a
#          directory on the same disk: the cost of FUSE alone
#   ext4   the kernel's ext4 on a loop device over an image file (needs root;
#          skipped otherwise)
# Workloads, each on every filesystem before the next starts (the order of the
# filesystems rotates from round to round):
#   dbench    dbench with 2 clients for BENCH_FUSE_DBENCH_S seconds (MB/s)
#   postmark  postmark, 3000 files, 10000 transactions (s)
#   seq_w     fio sequential write of 64 MiB, 1 MiB blocks, crc32c verify,
#             fsync at the end (MiB/s of the write phase)
#   rand_w    fio 4 KiB random write of 64 MiB, crc32c verify, fsync at the
#             end (MiB/s)
#   rand_r    fio 4 KiB random read of that file (MiB/s)
#   untar     tar -xf of a generated source-like tree (s)
#   git_add   `git init && git add -A` of the extracted tree (s)
# Each filesystem is fresh for each round (new image, or emptied directory).
# The table shows the median of the rounds, and the ratios bkfs/pt_ll and
# bkfs/ext4 (for MB/s higher is better, for s lower is better).
#
# Environment:
#   BUILD=build                 where bkfs and gentree are
#   BENCH_FUSE_DIR=$BUILD/bench-fuse  work directory (images, trees, results)
#   BENCH_FUSE_ROUNDS=3         rounds
#   BENCH_FUSE_TOOLS="bkfs pt_ll ext4"
#   BENCH_FUSE_WORKLOADS="dbench postmark seq_w rand_w rand_r untar git_add"
#   BENCH_FUSE_DBENCH_S=6       dbench seconds
#   BENCH_FUSE_FILES=4700       files of the generated tree (untar, git_add)
#   BENCH_FUSE_HOG=0            1: a CPU hog (a busy loop) runs on the side
#                               for the whole run
#   BENCH_FUSE_BKFS_OPTS=""     extra `-o` options for bkfs mount
#   BENCH_FUSE_BASE=""          another bkfs binary (e.g. the last release) to
#                               measure in the same run as filesystem "base",
#                               with a column bkfs/base
# Output: the table on stdout and in $BENCH_FUSE_DIR/results.txt; every
# measurement in $BENCH_FUSE_DIR/runs.csv. A benchmark never fails the build:
# missing tools are skipped with a note, and this exits 0 unless setup fails.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BKFS=$(realpath "$BUILD/bkfs")
BASE=${BENCH_FUSE_BASE:+$(realpath "$BENCH_FUSE_BASE")}
GENTREE=$(realpath "$BUILD/gentree")
D=${BENCH_FUSE_DIR:-$BUILD/bench-fuse}
ROUNDS=${BENCH_FUSE_ROUNDS:-3}
TOOLS=${BENCH_FUSE_TOOLS:-"bkfs${BASE:+ base} pt_ll ext4"}
WORKLOADS=${BENCH_FUSE_WORKLOADS:-"dbench postmark seq_w rand_w rand_r untar git_add"}
DBENCH_S=${BENCH_FUSE_DBENCH_S:-6}
FILES=${BENCH_FUSE_FILES:-4700}
HOG=${BENCH_FUSE_HOG:-0}
IMG_SIZE=4G
PT_SRC=/usr/share/doc/libfuse3-dev/examples

mkdir -p "$D"
D=$(realpath "$D")
MNT=$D/mnt OUT=$D
HOG_PID=""
mkdir -p "$MNT"
# shellcheck source=bench/mountlib.sh
. bench/mountlib.sh

note() { echo "bench-fuse: $*" >&2; }
scripts/deps.sh --bench || note "could not install all benchmark loads; missing ones are skipped"

cleanup() {
	ml_cleanup
	[ -n "$HOG_PID" ] && kill "$HOG_PID" 2>/dev/null
	rm -rf --one-file-system "$D/img" "$D/pt_dir" "$D/fio"
}
trap cleanup EXIT

# ---- setup: the reference server, the tools, the tree ----

# passthrough_ll with the feature macros libfuse's meson build defines on
# Linux/glibc (without them it silently lacks fallocate and copy_file_range)
build_pt_ll() {
	[ -f "$PT_SRC/passthrough_ll.c" ] || { note "no $PT_SRC/passthrough_ll.c (libfuse3-dev): pt_ll skipped"; return 1; }
	[ "$D/passthrough_ll" -nt "$PT_SRC/passthrough_ll.c" ] && return 0
	# shellcheck disable=SC2046
	cc -O2 -Wall -D_GNU_SOURCE -DHAVE_FALLOCATE -DHAVE_POSIX_FALLOCATE -DHAVE_COPY_FILE_RANGE \
		-DHAVE_SETXATTR -DHAVE_UTIMENSAT -DHAVE_FSTATAT -DHAVE_OPENAT -DHAVE_READLINKAT \
		-DHAVE_PIPE2 -DHAVE_SPLICE -DHAVE_VMSPLICE -DHAVE_POSIX_FADVISE -DHAVE_STRUCT_STAT_ST_ATIM \
		-I"$PT_SRC" $(pkg-config --cflags fuse3) -o "$D/passthrough_ll" "$PT_SRC/passthrough_ll.c" \
		$(pkg-config --libs fuse3) -lpthread || { note "passthrough_ll did not build: pt_ll skipped"; return 1; }
}

have_tool() {
	case $1 in
	bkfs) [ -x "$BKFS" ] && [ -c /dev/fuse ] ;;
	base) [ -n "$BASE" ] && [ -x "$BASE" ] && [ -c /dev/fuse ] ;;
	pt_ll) [ -c /dev/fuse ] && build_pt_ll ;;
	ext4) [ "$(id -u)" = 0 ] && command -v mkfs.ext4 > /dev/null && command -v losetup > /dev/null ;;
	*) return 1 ;;
	esac
}

tools=""
for t in $TOOLS; do
	if have_tool "$t"; then tools="$tools $t"; else note "$t skipped (not available here)"; fi
done
for w in $WORKLOADS; do
	case $w in
	dbench|postmark) command -v "$w" > /dev/null || { note "no $w: workload skipped"; WORKLOADS=${WORKLOADS//$w/}; } ;;
	seq_w|rand_w|rand_r) command -v fio > /dev/null || { note "no fio: $w skipped"; WORKLOADS=${WORKLOADS//$w/}; } ;;
	esac
done
DBENCH_LOAD=$(ls /usr/share/dbench/client.txt /usr/share/dbench4/client.txt 2>/dev/null | head -1)

if [ ! -f "$D/tree.tar" ]; then
	rm -rf "$D/tree"
	"$GENTREE" --seed 7 --files "$FILES" --max-size 64K --no-special --no-owners --quiet "$D/tree" || exit 1
	tar -C "$D/tree" -cf "$D/tree.tar" . || exit 1
	rm -rf "$D/tree"
fi

# ---- one filesystem up and down ----

mount_tool() {
	rm -f "$D/img"
	case $1 in
	bkfs|base)
		local bin=$BKFS
		[ "$1" = base ] && bin=$BASE
		truncate -s "$IMG_SIZE" "$D/img"
		"$bin" format "$D/img" > /dev/null || return 1
		# shellcheck disable=SC2086
		ml_fuse "$D/bkfs-mount.log" "$bin" mount -f ${BENCH_FUSE_BKFS_OPTS:+-o $BENCH_FUSE_BKFS_OPTS} "$D/img" "$MNT" ;;
	pt_ll)
		rm -rf --one-file-system "$D/pt_dir"
		mkdir -p "$D/pt_dir"
		ml_fuse "$D/pt_ll.log" "$D/passthrough_ll" -f -o source="$D/pt_dir" "$MNT" ;;
	ext4)
		truncate -s "$IMG_SIZE" "$D/img"
		mkfs.ext4 -q -F "$D/img" || return 1
		ml_loop "$D/img" ;;
	esac
}

unmount_tool() {
	ml_unmount
	rm -rf --one-file-system "$D/img" "$D/pt_dir"
}

# ---- workloads: each prints its figure ----

run_workload() {
	local t0
	case $1 in
	dbench)
		dbench -D "$MNT" -t "$DBENCH_S" -c "$DBENCH_LOAD" 2 > "$D/dbench.out" 2>&1 || return 1
		awk '/^Throughput/ { printf "%.1f", $2 }' "$D/dbench.out" ;;
	postmark)
		t0=$(ml_now)
		printf 'set location %s\nset number 3000\nset transactions 10000\nrun\nquit\n' "$MNT" |
			postmark > "$D/postmark.out" 2>&1 || return 1
		ml_elapsed "$t0" ;;
	seq_w) ml_fio seqw write 1m 64m --verify=crc32c --end_fsync=1 ;;
	rand_w) ml_fio randw randwrite 4k 64m --verify=crc32c --end_fsync=1 --randrepeat=0 ;;
	rand_r) ml_fio randr randread 4k 64m --randrepeat=0 ;;
	untar) ml_untar "$D/tree.tar" ;;
	git_add)
		[ -d "$MNT/src" ] || { mkdir -p "$MNT/src" && tar -C "$MNT/src" --warning=no-timestamp -xf "$D/tree.tar"; } || return 1
		t0=$(ml_now)
		(cd "$MNT/src" && git init -q && git add -A) > "$D/git.out" 2>&1 || return 1
		ml_elapsed "$t0" ;;
	esac
}

unit() {
	case $1 in dbench) echo "MB/s" ;; seq_w|rand_w|rand_r) echo "MiB/s" ;; *) echo "s" ;; esac
}

# ---- the run ----

if [ "$HOG" = 1 ]; then
	sh -c 'while :; do :; done' &
	HOG_PID=$!
	note "CPU hog running (pid $HOG_PID)"
fi
echo "round,tool,workload,value,unit" > "$D/runs.csv"
read -r -a tl <<< "$tools"
n=${#tl[@]}
[ "$n" -gt 0 ] || { note "no filesystem to measure"; exit 0; }
for r in $(seq 1 "$ROUNDS"); do
	for i in $(seq 0 $((n - 1))); do
		t=${tl[$(((i + r - 1) % n))]}
		if ! mount_tool "$t"; then
			note "round $r: $t did not mount"
			unmount_tool "$t" 2> /dev/null
			continue
		fi
		for w in $WORKLOADS; do
			v=$(run_workload "$w") || v=fail
			[ -n "$v" ] || v=fail
			echo "$r,$t,$w,$v,$(unit "$w")" >> "$D/runs.csv"
			note "round $r $t $w: $v $(unit "$w")"
		done
		unmount_tool "$t"
	done
done

# ---- the table: medians, ratios ----

awk -F, -v tools="$tools" -v workloads="$WORKLOADS" -v hog="$HOG" '
NR > 1 && $4 != "fail" { v[$2, $3] = v[$2, $3] " " $4; u[$3] = $5 }
function median(s,   a, n, i, j, x) {
	n = split(s, a, " ")
	if (!n) return ""
	for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# ratio as "how many times better bkfs is" is confusing: print bkfs/peer of
# the figure itself, and say per row which way is better
function ratio(w, peer,   b, p) {
	b = median(v["bkfs", w]); p = median(v[peer, w])
	if (b == "" || p == "" || p == 0) return "-"
	return sprintf("%.2f", b / p)
}
BEGIN { nt = split(tools, T, " "); nw = split(workloads, W, " "); hasbase = tools ~ / base( |$)/ }
END {
	printf "FUSE throughput, median of rounds%s\n", hog == 1 ? " (CPU hog on the side)" : ""
	printf "%-9s %-6s", "workload", "unit"
	for (i = 1; i <= nt; i++) printf " %9s", T[i]
	if (hasbase) printf " %10s", "bkfs/base"
	printf " %11s %10s  %s\n", "bkfs/pt_ll", "bkfs/ext4", "better"
	for (k = 1; k <= nw; k++) {
		w = W[k]
		printf "%-9s %-6s", w, u[w]
		for (i = 1; i <= nt; i++) { m = median(v[T[i], w]); printf " %9s", m == "" ? "fail" : m }
		if (hasbase) printf " %10s", ratio(w, "base")
		printf " %11s %10s  %s\n", ratio(w, "pt_ll"), ratio(w, "ext4"), u[w] == "s" ? "lower" : "higher"
	}
}' "$D/runs.csv" | tee "$D/results.txt"
exit 0
