#!/bin/bash
# scrub.sh - scrub throughput against the sequential read speed of the same
# image: a generated tree imported into an image sized to hold it with
# little room to spare (few holes for dd to skip through), then, alternating
# SC_RUNS times each, with the image's pages dropped from the page cache
# before each: `dd bs=1M` through the page cache, `dd bs=1M iflag=direct`
# around it (the scrub reads around it too), and `bkfs scrub -n` (every
# node copy, every replica, every stripe block, read and verified); the
# first round is not counted. Scrub speed = the bytes the scrub reports it
# read / its wall time (process start to exit); dd speed = the image's size
# / its wall time. Target: scrub >= 70 % of the faster dd.
#
# SC_DEVICE=file (default) reads the image file where it lies (here a
# virtual disk); SC_DEVICE=ram puts it on a loop device over /dev/shm (root
# only): a device faster than the disk, whose reads cost the loop driver's
# copy on the same cores.
#
# Environment: BUILD=build, SC_FILES=20000 (gentree --files), SC_RUNS=5,
# SC_DIR=$BUILD/bench-scrub (removed at the end unless SC_KEEP=1),
# SC_GENTREE_ARGS (extra gentree arguments, default none; `--max-size 64K`
# makes a tree of small files), SC_DEVICE=file|ram.
set -euo pipefail

BUILD=${BUILD:-build}
BKFS=$BUILD/bkfs
FILES=${SC_FILES:-20000}
RUNS=${SC_RUNS:-5}
DIR=${SC_DIR:-$BUILD/bench-scrub}
DEVICE=${SC_DEVICE:-file}
read -r -a GARGS <<< "${SC_GENTREE_ARGS:-}"

case $DEVICE in
file) ;;
ram)
	if [ "$(id -u)" != 0 ] || ! command -v losetup > /dev/null; then
		echo "scrub throughput: SKIPPED (SC_DEVICE=ram needs root and losetup)"
		exit 0
	fi ;;
*) echo "scrub.sh: SC_DEVICE is file or ram" >&2; exit 2 ;;
esac

mkdir -p "$DIR"
[ -d "$DIR/tree" ] || "$BUILD/gentree" --files "$FILES" --quiet "${GARGS[@]}" "$DIR/tree"
# the tree's allocated bytes (its sparse files' holes take no space in bkfs)
used=$(du -sB1 "$DIR/tree" | cut -f1)
img=$DIR/scrub.img
size=$(( (used * 9 / 8 + (64 << 20)) >> 20 << 20 ))
rm -f "$img"
truncate -s "$size" "$img"
"$BKFS" format --source "$DIR/tree" "$img" > /dev/null

dev=$img
shm= loop=
cleanup() {
	[ -z "$loop" ] || losetup -d "$loop"
	[ -z "$shm" ] || rm -f "$shm"
	[ "${SC_KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
if [ "$DEVICE" = ram ]; then
	shm=$(mktemp /dev/shm/bkfs-scrub.XXXXXX)
	cp "$img" "$shm"
	loop=$(losetup -f --show "$shm")
	dev=$loop
fi

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# drop the device's pages from the page cache (this one only: dd's nocache
# flag advises the kernel to let them go)
uncache() { dd if="$dev" iflag=nocache count=0 status=none; }
mbs() { echo "scale=1; $1 / ($3 - $2) / 1000000" | bc; }
timed() { # label bytes-or-json command...
	local label=$1 bytes=$2 t0 t1
	shift 2
	uncache
	t0=$(now)
	"$@" > /dev/null
	t1=$(now)
	[ "$run" = 0 ] && return # a first round, not counted
	[ "$bytes" = json ] && bytes=$(sed -n 's/.*"bytes_read": \([0-9]*\).*/\1/p' "$DIR/scrub.json")
	res[$label]+=" $(mbs "$bytes" "$t0" "$t1")"
}

declare -A res
for run in $(seq 0 "$RUNS"); do
	timed dd "$size" dd if="$dev" of=/dev/null bs=1M status=none
	timed dd_direct "$size" dd if="$dev" of=/dev/null bs=1M iflag=direct status=none
	timed scrub json "$BKFS" scrub -n --json "$DIR/scrub.json" "$dev"
done
read_bytes=$(sed -n 's/.*"bytes_read": \([0-9]*\).*/\1/p' "$DIR/scrub.json")
echo "scrub throughput ($DEVICE device): $FILES files${SC_GENTREE_ARGS:+ ($SC_GENTREE_ARGS)}, image $(( size >> 20 )) MiB, scrub reads $(( read_bytes >> 20 )) MiB; $RUNS runs each, alternating, page cache dropped before each"
d=$(median ${res[dd]})
dd_d=$(median ${res[dd_direct]})
s=$(median ${res[scrub]})
printf '  %-34s %8.1f MB/s   runs:%s\n' "dd bs=1M (through the page cache)" "$d" "${res[dd]}"
printf '  %-34s %8.1f MB/s   runs:%s\n' "dd bs=1M iflag=direct" "$dd_d" "${res[dd_direct]}"
printf '  %-34s %8.1f MB/s   runs:%s\n' "bkfs scrub -n" "$s" "${res[scrub]}"
best=$(echo "if ($d > $dd_d) $d else $dd_d" | bc)
echo "  scrub / dd: $(echo "scale=1; $s * 100 / $d" | bc) %; scrub / dd direct: $(echo "scale=1; $s * 100 / $dd_d" | bc) %"
echo "  scrub / the faster dd: $(echo "scale=1; $s * 100 / $best" | bc) % (target: >= 70 %)"
