#!/bin/bash
# scrub.sh - scrub throughput against the sequential read speed of the same
# image: a generated tree imported into an image sized to hold it with
# little room to spare (few holes for dd to skip through), then, alternating
# SC_RUNS times each: `dd if=IMAGE of=/dev/null bs=1M` (the image's
# sequential read) and `bkfs scrub -n IMAGE` (every node copy, every
# replica, every stripe block, read and verified), each once with the
# image's pages dropped from the page cache first (the device's speed) and
# once with them cached (the CPU's); the first round is not counted.
# Scrub speed = the bytes the scrub reports it read / its wall time; dd
# speed = the image's size / its wall time. Target: scrub >= 70 % of dd.
#
# Environment: BUILD=build, SC_FILES=20000 (gentree --files), SC_RUNS=5,
# SC_DIR=$BUILD/bench-scrub (removed at the end unless SC_KEEP=1),
# SC_GENTREE_ARGS (extra gentree arguments, default none).
set -euo pipefail

BUILD=${BUILD:-build}
BKFS=$BUILD/bkfs
FILES=${SC_FILES:-20000}
RUNS=${SC_RUNS:-5}
DIR=${SC_DIR:-$BUILD/bench-scrub}
read -r -a GARGS <<< "${SC_GENTREE_ARGS:-}"

mkdir -p "$DIR"
[ -d "$DIR/tree" ] || "$BUILD/gentree" --files "$FILES" --quiet "${GARGS[@]}" "$DIR/tree"
# the tree's allocated bytes (its sparse files' holes take no space in bkfs)
used=$(du -sB1 "$DIR/tree" | cut -f1)
img=$DIR/scrub.img
size=$(( (used * 9 / 8 + (64 << 20)) >> 20 << 20 ))
rm -f "$img"
truncate -s "$size" "$img"
"$BKFS" format --source "$DIR/tree" "$img" > /dev/null

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# drop the image's pages from the page cache (this file only: dd's nocache
# flag advises the kernel to let them go) for a read from the device
uncache() { dd if="$img" iflag=nocache count=0 status=none; }
mbs() { echo "scale=1; $1 / ($3 - $2) / 1000000" | bc; }

declare -A res
for run in $(seq 0 "$RUNS"); do
	for cache in cold warm; do
		[ $cache = cold ] && uncache
		t0=$(now)
		dd if="$img" of=/dev/null bs=1M status=none
		t1=$(now)
		[ $cache = cold ] && uncache
		t2=$(now)
		"$BKFS" scrub -n --json "$DIR/scrub.json" "$img" > /dev/null
		t3=$(now)
		[ "$run" = 0 ] && continue # a first round, not counted
		read_bytes=$(sed -n 's/.*"bytes_read": \([0-9]*\).*/\1/p' "$DIR/scrub.json")
		res[dd_$cache]+=" $(mbs "$size" "$t0" "$t1")"
		res[scrub_$cache]+=" $(mbs "$read_bytes" "$t2" "$t3")"
	done
done
echo "scrub throughput: $FILES files, image $(( size >> 20 )) MiB, scrub reads $(( read_bytes >> 20 )) MiB; $RUNS runs each, alternating"
for cache in cold warm; do
	d=$(median ${res[dd_$cache]})
	s=$(median ${res[scrub_$cache]})
	what="page cache dropped for the image"
	[ $cache = warm ] && what="page cache warm"
	echo " $what:"
	printf '  %-28s %8.1f MB/s   runs:%s\n' "dd of the image (sequential)" "$d" "${res[dd_$cache]}"
	printf '  %-28s %8.1f MB/s   runs:%s\n' "bkfs scrub -n" "$s" "${res[scrub_$cache]}"
	echo "  scrub / sequential read: $(echo "scale=1; $s * 100 / $d" | bc) % (target: >= 70 %)"
done
[ "${SC_KEEP:-0}" = 1 ] || rm -rf "$DIR"
