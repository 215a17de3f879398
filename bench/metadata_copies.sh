#!/bin/bash
# metadata_copies.sh - what the second copy of every btree node costs: the
# same generated tree imported with `bkfs format --source` and checked with
# `bkfs fsck -n` (and `fsck -n --all-copies` on the two-copy image), with
# --metadata-replicas 1 and 2, the runs alternating (1, 2, 1, 2, ...).
# Prints the median and every run, and the two-copy cost in percent.
#
# Environment: BUILD=build, MC_FILES=100000 (gentree --files), MC_RUNS=3,
# MC_DIR=$BUILD/bench-mc (tree and images; removed at the end unless
# MC_KEEP=1), MC_GENTREE_ARGS (extra gentree arguments, default none).
set -euo pipefail

BUILD=${BUILD:-build}
BKFS=$BUILD/bkfs
FILES=${MC_FILES:-100000}
RUNS=${MC_RUNS:-3}
DIR=${MC_DIR:-$BUILD/bench-mc}
read -r -a GARGS <<< "${MC_GENTREE_ARGS:-}"

mkdir -p "$DIR"
[ -d "$DIR/tree" ] || "$BUILD/gentree" --files "$FILES" --quiet "${GARGS[@]}" "$DIR/tree"
apparent=$(du -sb --apparent-size "$DIR/tree" | cut -f1)
size=$(( apparent * 2 + (1 << 30) ))

secs() {	# secs CMD...: wall seconds of CMD (its output dropped)
	local t0 t1
	t0=$(date +%s.%N)
	"$@" > /dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A imp fsck allc
for run in $(seq 1 "$RUNS"); do
	for mr in 1 2; do
		img=$DIR/mr$mr.img
		rm -f "$img"
		truncate -s "$size" "$img"
		imp[$mr]+=" $(secs "$BKFS" format --metadata-replicas "$mr" --source "$DIR/tree" "$img")"
	done
	for mr in 1 2; do
		fsck[$mr]+=" $(secs "$BKFS" fsck -n "$DIR/mr$mr.img")"
	done
	allc[2]+=" $(secs "$BKFS" fsck -n --all-copies "$DIR/mr2.img")"
done

row() {	# row LABEL RUNS...
	local label=$1
	shift
	printf '%-34s median %7.2f s   runs:%s\n' "$label" "$(median "$@")" "$(printf ' %.2f' "$@")"
}
pct() { echo "scale=1; ($2 - $1) * 100 / $1" | bc; }

echo "tree: $FILES files, $(( apparent >> 20 )) MiB apparent; $RUNS runs each, alternating"
for mr in 1 2; do
	row "import, metadata replicas $mr" ${imp[$mr]}
done
for mr in 1 2; do
	row "fsck -n, metadata replicas $mr" ${fsck[$mr]}
done
row "fsck -n --all-copies, replicas 2" ${allc[2]}
read -r -a i1 <<< "${imp[1]}"; read -r -a i2 <<< "${imp[2]}"
read -r -a f1 <<< "${fsck[1]}"; read -r -a f2 <<< "${fsck[2]}"
echo "two copies cost: import $(pct "$(median "${i1[@]}")" "$(median "${i2[@]}")") %," \
     "fsck -n $(pct "$(median "${f1[@]}")" "$(median "${f2[@]}")") % (target: 15 %, 10 %)"
"$BKFS" usage "$DIR/mr1.img" 2>/dev/null | grep -i btree | head -3 || true
"$BKFS" usage "$DIR/mr2.img" 2>/dev/null | grep -i btree | head -3 || true
[ "${MC_KEEP:-0}" = 1 ] || rm -rf "$DIR"
