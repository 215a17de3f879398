#!/bin/bash
# aged.sh - the benchmark's aged-image section (`make bench` runs it after
# aging.sh; `make bench-aged` alone): bkfs fsck -n against e2fsck -fn on
# filesystems that have been used, and on imported trees of two generators.
#
# Aged images: a source-like tree (build/srctree -s source, BENCH_AGED_FILES
# files) is packed into a tar once, then on a fresh bkfs image (through
# `bkfs mount`) and on a fresh ext4 image (loop mount, needs root) the same
# operations run: BENCH_AGED_COPIES untars into copy directories, removal of
# the first BENCH_AGED_REMOVE copies, renames (one top directory per copy and
# every 13th file), appends (every 7th file), small overwrites (64 bytes into
# every 11th file). Imported images: a gentree tree and a deep tree of tiny
# files (build/srctree -s deep), BENCH_AGED_IMPORT files each, made with
# `bkfs format --source` and `mke2fs -d`.
#
# Each image is checked BENCH_REPEAT times by each checker, alternating (which
# goes first rotates), on two cores and on one (`taskset -c 0`); the table
# shows the median wall, its CPU (user+sys), the median peak RSS (max RSS, from
# wait4 through bench/timed.c), the ratios bkfs/e2fsck, and the memory
# estimate bkfs fsck printed beside bkfs's measured peak.
#
# Environment:
#   BUILD=build  BENCH_DIR=$BUILD/bench
#   BENCH_BKFS=$BUILD/bkfs   the bkfs binary to time (copied first; e.g. an older
#                             build, for a before/after table)
#   BENCH_AGED_FILES=1500     files in the source-like tree
#   BENCH_AGED_COPIES=10      untars
#   BENCH_AGED_REMOVE=3       copies removed again (10 - 3 copies: ~10,500 files)
#   BENCH_AGED_IMPORT=10000   files of each imported tree ("" skips them)
#   BENCH_AGED_IMG=2G         image size (sparse)
#   BENCH_AGED_CPUS="2 1"     core counts to time with (1 = taskset -c 0)
#   BENCH_REPEAT=5            runs per checker, image and core count
#   BENCH_SEED=1
#   BENCH_AGED_KEEP=0         1: keep the images in $BENCH_DIR/aged afterwards
# The issue's big runs: BENCH_AGED_FILES=4700 BENCH_AGED_COPIES=15
# BENCH_AGED_REMOVE=5 BENCH_AGED_IMPORT=1000000 BENCH_AGED_IMG=20G.
# Output: a table on stdout and in $BENCH_DIR/aged.txt. Never fails the build
# (exit 0); without root or e2fsprogs the ext4 side is skipped with a note.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BENCH_DIR=${BENCH_DIR:-$BUILD/bench}
FILES=${BENCH_AGED_FILES:-1500}
COPIES=${BENCH_AGED_COPIES:-10}
REMOVE=${BENCH_AGED_REMOVE:-3}
IMPORT=${BENCH_AGED_IMPORT-10000}
IMGSIZE=${BENCH_AGED_IMG:-2G}
CPUS=${BENCH_AGED_CPUS:-"2 1"}
REPEAT=${BENCH_REPEAT:-5}
SEED=${BENCH_SEED:-1}
KEEP=${BENCH_AGED_KEEP:-0}
mkdir -p "$BENCH_DIR"
D=$(realpath "$BENCH_DIR")/aged
OUT=$BENCH_DIR/aged.txt
mkdir -p "$D/mnt"
MNT=$D/mnt
# copies: a rebuild during the run does not change what is measured
cp "${BENCH_BKFS:-$BUILD/bkfs}" "$D/bkfs.bin" || exit 0
BKFS=$D/bkfs.bin
WARM=$BUILD/warm
if [ ! -x "$WARM" ] || [ bench/warm.c -nt "$WARM" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -o "$WARM" bench/warm.c || note "no $WARM: images are warmed with cat"
fi
TIMED=$BUILD/timed
if [ ! -x "$TIMED" ] || [ bench/timed.c -nt "$TIMED" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -o "$TIMED" bench/timed.c || note "no $TIMED: runs are timed through python"
fi

note() { echo "aged: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
EXT4=1
{ [ "$(id -u)" = 0 ] && have mke2fs && have e2fsck; } || { EXT4=0; note "no root or e2fsprogs: ext4 skipped"; }
[ -x /usr/bin/time ] || { note "/usr/bin/time missing (package 'time')"; exit 0; }

PID=""
cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && { umount "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null; }
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -rf "$D/src" "$D/src.tar" "$D/tree"
	[ "$KEEP" = 1 ] || rm -f "$D"/*.img
}
trap cleanup EXIT

# the same operations on whatever is mounted at $MNT
age_tree() {
	local i
	for i in $(seq 1 "$COPIES"); do
		mkdir "$MNT/copy$i" && tar -xf "$D/src.tar" -C "$MNT/copy$i" || return 1
	done
	for i in $(seq 1 "$REMOVE"); do rm -rf "$MNT/copy$i" || return 1; done
	for i in $(seq $((REMOVE + 1)) "$COPIES"); do mv "$MNT/copy$i/top0" "$MNT/copy$i/top0.moved" || return 1; done
	find "$MNT" -type f | sort > "$D/files"
	awk 'NR % 13 == 0' "$D/files" | while read -r f; do mv "$f" "$f.old"; done
	awk 'NR % 7 == 0 && NR % 13 != 0' "$D/files" | while read -r f; do
		printf 'appended line %s\n' "$f" >> "$f"
	done
	awk 'NR % 11 == 0 && NR % 13 != 0' "$D/files" | while read -r f; do
		printf '%064d' 0 | dd of="$f" bs=64 seek=1 conv=notrunc status=none
	done
}

bkfs_up() {
	"$BKFS" mount -f "$1" "$MNT" 2> "$D/mount.log" &
	PID=$!
	for _ in $(seq 1 200); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
	return 1
}
bkfs_down() { fusermount3 -u "$MNT" && wait "$PID"; local rc=$?; PID=""; return $rc; }

make_aged() {	# make_aged TOOL IMG
	rm -f "$2"; truncate -s "$IMGSIZE" "$2"
	case $1 in
	bkfs)
		"$BKFS" format "$2" > /dev/null && bkfs_up "$2" || return 1
		age_tree; local rc=$?
		bkfs_down || return 1
		return $rc ;;
	ext4)
		mkfs.ext4 -q -F "$2" && mount -o loop "$2" "$MNT" || return 1
		age_tree; local rc=$?
		umount "$MNT" || return 1
		return $rc ;;
	esac
}

make_imported() {	# make_imported TOOL IMG TREE
	rm -f "$2"; truncate -s "$IMGSIZE" "$2"
	local entries
	case $1 in
	bkfs) "$BKFS" format --source "$3" "$2" > /dev/null ;;
	ext4) entries=$(find "$3" | wc -l)
	      mke2fs -q -F -t ext4 -N $((entries + entries / 10 + 1024)) -d "$3" "$2" ;;
	esac
}

# run_timed OUT CMD...: run CMD (output to OUT); prints "wall_s cpu_s
# maxrss_kib exit". Through $TIMED (bench/timed.c: the numbers are the
# checker's, not a launcher's); else under /usr/bin/time from python, whose
# fork and time's start add ~20 ms to every wall time here. There the peak is
# time's %M (the checker's own: a child forked from python would inherit
# python's) and the CPU time python's wait4 on time, in microseconds (time's
# %U/%S have 10 ms, as much as a whole small run).
run_timed() {
	local out=$1
	shift
	if [ -x "$TIMED" ]; then
		"$TIMED" "$out" "$@"
	elif have python3; then
		python3 -c '
import os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1); os.dup2(fd, 2)
    try:
        os.execv("/usr/bin/time", ["time", "-o", sys.argv[2], "-f", "%M %x"] + sys.argv[3:])
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
print("%.4f %.4f %s" % (wall, ru.ru_utime + ru.ru_stime, open(sys.argv[2]).read().split("\n")[-2]))
' "$out" "$D/time" "$@"
	else
		local t0 t1
		t0=$(date +%s%N)
		/usr/bin/time -o "$D/time" -f "%U %S %M %x" "$@" > "$out" 2>&1
		t1=$(date +%s%N)
		awk -v ns=$((t1 - t0)) '{ printf "%.4f %.4f %d %d\n", ns / 1e9, $1 + $2, $3, $4 }' "$D/time"
	fi
}

# time_one TOOL IMG NCPU: one run; prints "wall cpu peak_mib exit estimate_mib"
time_one() {
	local pre=() argv
	[ "$3" = 1 ] && pre=(taskset -c 0)
	case $1 in
	bkfs) argv=("$BKFS" fsck -n "$2") ;;
	ext4) argv=(e2fsck -fn "$2") ;;
	esac
	# warm: both checkers start with the image cached (its data, not its holes)
	if [ -x "$WARM" ]; then "$WARM" "$2"; else cat "$2" > /dev/null; fi
	local r est
	r=$(run_timed "$D/out" "${pre[@]}" "${argv[@]}")
	est=$(sed -n 's/.*memory estimate \([0-9.]*\) MiB.*/\1/p' "$D/out" | head -1)
	echo "$r" | awk -v est="${est:--}" '{ printf "%.4f %.4f %.1f %s %s\n", $1, $2, $3 / 1024, $4, est }'
}

median() { sort -n | awk '{ v[NR] = $0 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b + 0 <= 0) print "-"; else printf "%.2f", a / b }'; }
ROWFMT='%-8s %-5s %4s %8s %8s %8s %4s %9s %8s %8s %7s %8s\n'

# bench_image NAME: both images are $D/NAME.{bkfs,ext4}.img
bench_image() {
	local name=$1 ncpu tools=(bkfs) r t
	[ "$EXT4" = 1 ] && [ -e "$D/$name.ext4.img" ] && tools+=(ext4)
	for ncpu in $CPUS; do
		for t in "${tools[@]}"; do : > "$D/runs.$t"; done
		for r in $(seq 1 "$REPEAT"); do
			local order=("${tools[@]}")
			[ $((r % 2)) = 0 ] && order=($(printf '%s\n' "${tools[@]}" | tac))
			for t in "${order[@]}"; do time_one "$t" "$D/$name.$t.img" "$ncpu" >> "$D/runs.$t"; done
		done
		local bw bc bm
		for t in "${tools[@]}"; do
			local w c m x e rw=- rc=- rm=- re=-
			w=$(awk '{ print $1 }' "$D/runs.$t" | median)
			c=$(awk '{ print $2 }' "$D/runs.$t" | median)
			m=$(awk '{ print $3 }' "$D/runs.$t" | median)
			read -r _ _ _ x e < <(awk -v w="$w" '$1 == w' "$D/runs.$t" | head -1)
			if [ "$t" = bkfs ]; then
				bw=$w bc=$c bm=$m
				re=$(ratio "$e" "$m")
			else
				rw=$(ratio "$bw" "$w") rc=$(ratio "$bc" "$c") rm=$(ratio "$bm" "$m") e=-
			fi
			printf "$ROWFMT" "$name" "$t" "$ncpu" "$w" "$c" "$m" "$x" "$rw" "$rc" "$rm" "$e" "$re"
		done
	done
}

echo "== aged: source tree $FILES files x $COPIES copies - $REMOVE, imports $IMPORT files, seed $SEED, $REPEAT runs" >&2
"$BUILD/srctree" -s source -n "$FILES" -S "$SEED" "$D/src" || exit 1
tar -cf "$D/src.tar" -C "$D/src" . || exit 1
rm -rf "$D/src"
{
printf "$ROWFMT" image tool cpus wall_s cpu_s peak_MiB exit wall/e2fs cpu/e2fs mem/e2fs est_MiB est/peak
for t in bkfs ext4; do
	[ "$t" = ext4 ] && [ "$EXT4" = 0 ] && continue
	make_aged "$t" "$D/aged.$t.img" || note "$t: aging failed"
done
bench_image aged
if [ -n "$IMPORT" ]; then
	for gen in gentree deep; do
		rm -rf "$D/tree"
		case $gen in
		gentree) "$BUILD/gentree" --quiet --seed "$SEED" --files "$IMPORT" --max-size 65536 --no-special --no-owners "$D/tree" ;;
		deep) "$BUILD/srctree" -s deep -n "$IMPORT" -S "$SEED" "$D/tree" ;;
		esac || { note "$gen failed"; continue; }
		for t in bkfs ext4; do
			[ "$t" = ext4 ] && [ "$EXT4" = 0 ] && continue
			make_imported "$t" "$D/$gen.$t.img" "$D/tree" || note "$t: import of $gen failed"
		done
		rm -rf "$D/tree"
		bench_image "$gen"
		[ "$KEEP" = 1 ] || rm -f "$D/$gen".*.img
	done
fi
echo "median of $REPEAT warm runs each: wall, cpu (user+sys), peak (max RSS); ratios bkfs/e2fsck; est: the memory estimate bkfs fsck printed, est/peak against its measured peak"
echo "checkers: $BKFS fsck -n, e2fsck -fn; cpus 1 = taskset -c 0"
} | tee "$OUT"
exit 0
