#!/bin/bash
# metadata_copies.sh - what the second copy of every btree node costs: the
# same generated tree imported with `bkfs format --source` and checked with
# `bkfs fsck -n` (and `fsck -n --all-copies` on the two-copy image), with
# --metadata-replicas 1 and 2, the runs alternating (1, 2, 1, 2, ...).
# Prints the median wall and CPU (user + sys) time and every run's wall time,
# and the two-copy cost in percent. fsck -n of a 100,000-file tree takes
# about 0.2 s, so it runs MC_FSCK_RUNS times (on a shared machine the wall
# time of one run varies by more than the cost measured).
#
# Environment: BUILD=build, MC_FILES=100000 (gentree --files), MC_RUNS=3
# (imports of each), MC_FSCK_RUNS=15 (fsck runs of each),
# MC_DIR=$BUILD/bench-mc (tree and images; removed at the end unless
# MC_KEEP=1), MC_GENTREE_ARGS (extra gentree arguments, default none).
set -euo pipefail

BUILD=${BUILD:-build}
BKFS=$BUILD/bkfs
FILES=${MC_FILES:-100000}
RUNS=${MC_RUNS:-3}
FRUNS=${MC_FSCK_RUNS:-15}
DIR=${MC_DIR:-$BUILD/bench-mc}
read -r -a GARGS <<< "${MC_GENTREE_ARGS:-}"

mkdir -p "$DIR"
[ -d "$DIR/tree" ] || "$BUILD/gentree" --files "$FILES" --quiet "${GARGS[@]}" "$DIR/tree"
apparent=$(du -sb --apparent-size "$DIR/tree" | cut -f1)
size=$(( apparent * 2 + (1 << 30) ))

secs() {	# secs CMD...: "wall cpu" seconds of CMD (its output dropped)
	local f=$DIR/time.out
	/usr/bin/time -o "$f" -f "%e %U %S" "$@" > /dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
	awk '{ printf "%s,%.2f\n", $1, $2 + $3 }' "$f"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
wall() { for x in "$@"; do echo "${x%,*}"; done; }
cpu() { for x in "$@"; do echo "${x#*,}"; done; }

declare -A imp fsck allc
for run in $(seq 1 "$RUNS"); do
	for mr in 1 2; do
		img=$DIR/mr$mr.img
		rm -f "$img"
		truncate -s "$size" "$img"
		imp[$mr]+=" $(secs "$BKFS" format --metadata-replicas "$mr" --source "$DIR/tree" "$img")"
	done
done
for run in $(seq 1 "$FRUNS"); do
	for mr in 1 2; do
		fsck[$mr]+=" $(secs "$BKFS" fsck -n "$DIR/mr$mr.img")"
	done
	allc[2]+=" $(secs "$BKFS" fsck -n --all-copies "$DIR/mr2.img")"
done

row() {	# row LABEL RUNS... (wall,cpu pairs)
	local label=$1
	shift
	printf '%-34s wall %7.2f s  cpu %7.2f s   wall runs:%s\n' "$label" "$(median $(wall "$@"))" \
		"$(median $(cpu "$@"))" "$(printf ' %.2f' $(wall "$@"))"
}
pct() { echo "scale=1; ($2 - $1) * 100 / $1" | bc; }
cost() {	# cost WHAT RUNS1 RUNS2: percent on the medians, wall and cpu
	echo "$1: wall $(pct "$(median $(wall $2))" "$(median $(wall $3))") %," \
	     "cpu $(pct "$(median $(cpu $2))" "$(median $(cpu $3))") %"
}

echo "tree: $FILES files, $(( apparent >> 20 )) MiB apparent; $RUNS imports and $FRUNS checks each, alternating"
for mr in 1 2; do
	row "import, metadata replicas $mr" ${imp[$mr]}
done
for mr in 1 2; do
	row "fsck -n, metadata replicas $mr" ${fsck[$mr]}
done
row "fsck -n --all-copies, replicas 2" ${allc[2]}
echo "two copies cost (target: import 15 %, fsck 10 %):"
cost "  import" "${imp[1]}" "${imp[2]}"
cost "  fsck -n" "${fsck[1]}" "${fsck[2]}"
"$BKFS" usage "$DIR/mr1.img" 2>/dev/null | grep -i btree | head -3 || true
"$BKFS" usage "$DIR/mr2.img" 2>/dev/null | grep -i btree | head -3 || true
[ "${MC_KEEP:-0}" = 1 ] || rm -rf "$DIR"
