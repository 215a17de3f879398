#!/bin/bash
# crash_repair.sh - killing `fsck -y` at any write leaves a filesystem that a
# second fsck repairs completely (DESIGN §4.5).
#
# For every `bkfs debug corrupt` kind: damage a copy of a small image,
# count the device writes an uncut `fsck -y` makes (W), then for cut points
# N in 1..W (every one, or a seeded sample when the total is larger than the
# budget) run `fsck -y --debug-fail-after-writes N` (every write after the
# N-th fails, as if fsck were killed there), then `fsck -y` must finish
# (exit 0 or 1) and `fsck -n` must be clean. Every 10th cut also extracts
# the result and checks every file the damage did not touch against the
# manifest.
#
# Environment: CRASH_KINDS="k1 k2" (default: every kind),
# CRASH_CUTS (total cut budget, default 500; 150 under ASan), CRASH_SEED
# (default 1), CRASH_FILES (default 600), CRASH_JOBS (kinds in parallel,
# default nproc, at most 4).
set -uo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/lib/corrupt_common.bash"

T=$TMPDIR
FILES=${CRASH_FILES:-600}
BUDGET=${CRASH_CUTS:-500}
is_asan && BUDGET=${CRASH_CUTS:-150}
SEED=${CRASH_SEED:-1}

require_corrupt

mapfile -t ALL < <(corrupt_kinds)
if [ -n "${CRASH_KINDS:-}" ]; then
	read -r -a KINDS <<< "$CRASH_KINDS"
else
	KINDS=("${ALL[@]}")
fi

echo "== sample image"
make_sample "$T/src" "$FILES"
make_image "$T/src" "$T/base.img" 64M
rc=0; "$BKFS" fsck -n "$T/base.img" > "$T/base.fsck.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$T/base.fsck.log"; die "fsck -n of the fresh image exits $rc, not 0"; }
manifest "$T/base.img" "$T/base.out" "$T/manifest" || die "extract of the fresh image failed"

# writes_of IMG: device writes an uncut fsck -y makes (it repairs IMG)
writes_of() {
	"$BKFS" fsck -y --debug-fail-after-writes 1000000000 "$1" > "$1.count.log" 2>&1
	local rc=$?
	sed -n 's/^bkfs fsck: debug: \([0-9]*\) device writes attempted.*/\1/p' "$1.count.log" | tail -1
	return $rc
}

# ---- damage each kind once and count the writes of its repair
declare -A W
kinds=()
for kind in "${KINDS[@]}"; do
	[[ " ${ALL[*]} " == *" $kind "* ]] || { echo "kind $kind is not listed: skipped"; continue; }
	mkdir -p "$T/$kind"
	cp --sparse=always "$T/base.img" "$T/$kind/damaged.img"
	if ! "$BKFS" debug corrupt "$kind" --seed "$SEED" "$T/$kind/damaged.img" > "$T/$kind/corrupt.log" 2>&1; then
		if grep -q "no suitable target" "$T/$kind/corrupt.log"; then
			# this small image lacks what the kind needs (corrupt.sh
			# checks coverage on a bigger one)
			echo "$kind: skipped: $(tail -1 "$T/$kind/corrupt.log")"
			rm -rf "${T:?}/$kind"
			continue
		fi
		cat "$T/$kind/corrupt.log"
		die "debug corrupt $kind failed"
	fi
	awk '$1 == "affects:" { print $3 }' "$T/$kind/corrupt.log" > "$T/$kind/affects"
	cp --sparse=always "$T/$kind/damaged.img" "$T/$kind/full.img"
	n=$(writes_of "$T/$kind/full.img")
	rc=$?
	if [ "$rc" != 1 ] || [ -z "$n" ] || [ "$n" = 0 ]; then
		tail -5 "$T/$kind/full.img.count.log"
		die "$kind: the uncut fsck -y exits $rc after ${n:-?} writes (want 1 and some writes)"
	fi
	W[$kind]=$n
	kinds+=("$kind")
	echo "$kind: uncut repair makes $n device writes"
done
[ "${#kinds[@]}" -gt 0 ] || die "no kinds to test"

# ---- share the budget: every write of a kind when it fits, else a sample
declare -A Q
left=$BUDGET
pending=("${kinds[@]}")
while [ "${#pending[@]}" -gt 0 ]; do
	share=$(( left / ${#pending[@]} ))
	[ "$share" -lt 1 ] && share=1
	next=()
	for k in "${pending[@]}"; do
		if [ "${W[$k]}" -le "$share" ]; then
			Q[$k]=${W[$k]}
			left=$((left - W[$k]))
		else
			next+=("$k")
		fi
	done
	if [ "${#next[@]}" = "${#pending[@]}" ]; then
		for k in "${next[@]}"; do Q[$k]=$share; done
		break
	fi
	pending=("${next[@]}")
done

# cuts_for KIND: the cut points, one per line
cuts_for() {
	local k=$1 w=${W[$1]} q=${Q[$1]}
	if [ "$q" -ge "$w" ]; then
		seq 1 "$w"
	else
		rng_seed "$SEED$(printf '%s' "$k" | cksum | cut -d' ' -f1)"
		{ echo 1; echo $((w - 1)); echo "$w"
		  for ((i = 0; i < q * 3; i++)); do rng "$w"; echo $((R + 1)); done
		} | awk '!seen[$0]++' | head -n "$q" | sort -n
	fi
}

# run_kind KIND: every cut point of one kind; prints its report, exits 0 if
# all held. Kinds run in parallel, each in its own directory.
run_kind() {
	local kind=$1 kbad=0 i=0 n r1 r2 r3 why extra X=$T/$1/cut.img
	local -a cuts
	mapfile -t cuts < <(cuts_for "$kind")
	echo "== $kind: ${#cuts[@]} cut points of ${W[$kind]} writes"
	for n in "${cuts[@]}"; do
		i=$((i + 1))
		rm -f "$T/$kind/cut3.log"
		cp --sparse=always "$T/$kind/damaged.img" "$X"
		r1=0; "$BKFS" fsck -y --debug-fail-after-writes "$n" "$X" > "$T/$kind/cut1.log" 2>&1 || r1=$?
		r2=0; "$BKFS" fsck -y "$X" > "$T/$kind/cut2.log" 2>&1 || r2=$?
		# fsck -y exiting 0 found nothing: -n runs the same checks
		r3=0; [ "$r2" = 0 ] || "$BKFS" fsck -n "$X" > "$T/$kind/cut3.log" 2>&1 || r3=$?
		why=""
		[ "$r1" -ge 128 ] && why="cut fsck -y crashed ($r1)"
		[ -z "$why" ] && [ "$r2" != 0 ] && [ "$r2" != 1 ] && why="fsck -y after the cut exits $r2"
		[ -z "$why" ] && [ "$r3" != 0 ] && why="fsck -n after the repair exits $r3"
		if [ -z "$why" ] && [ $((i % 10)) = 0 ]; then
			extract_to "$X" "$T/$kind/out" > /dev/null 2>&1
			compare_manifest "$T/manifest" "$T/$kind/out" | awk '{ print substr($2, 2) }' > "$T/$kind/changed"
			extra=$(grep -vxF -f "$T/$kind/affects" "$T/$kind/changed" | head -3 | tr '\n' ' ')
			[ -n "$extra" ] && why="files outside the damage changed: $extra"
		fi
		if [ -n "$why" ]; then
			echo "  cut at write $n: $why (fsck exits $r1, $r2, $r3)"
			if [ "$kbad" -lt 3 ]; then
				for f in cut1 cut2 cut3; do
					[ -f "$T/$kind/$f.log" ] || continue
					grep -v '^bkfs fsck: [0-9]* device' "$T/$kind/$f.log" | head -6 | cut -c1-250 | sed "s/^/    $f: /"
				done
				cp --sparse=always "$T/$kind/damaged.img" "$T/$kind/fail-at-$n.img"
			fi
			kbad=$((kbad + 1))
		fi
	done
	echo "${#cuts[@]}" > "$T/$kind.cuts"
	if [ "$kbad" = 0 ]; then
		echo "PASS $kind (${#cuts[@]} cuts)"
	else
		echo "FAIL $kind: $kbad of ${#cuts[@]} cuts"
	fi
	[ "$kbad" = 0 ]
}

JOBS=${CRASH_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -gt 4 ] && JOBS=4
for kind in "${kinds[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	( rc=0; run_kind "$kind" > "$T/$kind.log" 2>&1 || rc=$?; echo "$rc" > "$T/$kind.rc" ) &
done
wait
total=0 bad=0
for kind in "${kinds[@]}"; do
	cat "$T/$kind.log"
	total=$((total + $(cat "$T/$kind.cuts" 2>/dev/null || echo 0)))
	if [ "$(cat "$T/$kind.rc" 2>/dev/null)" = 0 ]; then
		rm -rf "${T:?}/$kind"
	else
		bad=$((bad + 1))
	fi
done

echo "$total cut points over ${#kinds[@]} kinds; $bad kinds failed"
[ "$bad" = 0 ]
