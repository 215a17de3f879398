#!/bin/bash
# crash_repair.sh - killing `fsck -y` at any write leaves a filesystem that a
# second fsck repairs completely (DESIGN §4.5).
#
# A case is a `bkfs debug corrupt` kind with a seed: damage a copy of a small
# image, count the device writes an uncut `fsck -y` makes (W), then for cut
# points N in 1..W (every one, or a seeded sample when the total is larger
# than the budget) run `fsck -y --debug-fail-after-writes N` (every write
# after the N-th fails, as if fsck were killed there), then `fsck -y` must
# finish (exit 0 or 1) and `fsck -n` must be clean. Every 10th cut also
# extracts the result and checks every file the damage did not touch against
# the manifest.
#
# Every kind runs with the first seed, but those that need what the image
# lacks (stripes, a three-level btree: the needs `debug corrupt --list`
# prints). While the cases' writes add up to fewer than the budget, more
# cases come from the next seeds (kinds in list order; a seed that damages
# the same object as an earlier one is dropped), so that at least the budget
# of cut points is run, every write of every case (the count is printed at
# the start and at the end).
#
# Environment: CRASH_KINDS="k1 k2" (default: every kind),
# CRASH_CUTS (cut budget and minimum, default 500; 150 under ASan),
# CRASH_SEED (first seed, default 1), CRASH_SEEDS (seeds tried per kind at
# most, default 4), CRASH_FILES (default 600), CRASH_JOBS (cases in parallel,
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
# shared data too: a rebuilt reflink btree once left an alloc key no repair
# corrected (the sweeps compared against alloc keys read before topology)
share_big "$T/base.img"
rc=0; "$BKFS" fsck -n "$T/base.img" > "$T/base.fsck.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$T/base.fsck.log"; fail "fsck -n of the fresh image exits $rc, not 0"; }
extract_manifest "$T/base.img" "$T/base.out" "$T/manifest" || fail "extract of the fresh image failed"

# writes_of IMG: device writes an uncut fsck -y makes (it repairs IMG)
writes_of() {
	"$BKFS" fsck -y --debug-fail-after-writes 1000000000 "$1" > "$1.count.log" 2>&1
	local rc=$?
	sed -n 's/^bkfs fsck: debug: \([0-9]*\) device writes attempted.*/\1/p' "$1.count.log" | tail -1
	return $rc
}

# ---- cases: damage a kind with a seed once and count the writes of its repair
declare -A W DAMAGED
cases=()
total_writes=0
# add_case KIND SEED: 0 added, 1 not (no target here, or the same damage
# as an earlier seed of the kind)
add_case() {
	local kind=$1 seed=$2 c=$1.s$2 d n rc
	mkdir -p "$T/$c"
	cp --sparse=always "$T/base.img" "$T/$c/damaged.img"
	if ! "$BKFS" debug corrupt "$kind" --seed "$seed" "$T/$c/damaged.img" > "$T/$c/corrupt.log" 2>&1; then
		if grep -q "no suitable target" "$T/$c/corrupt.log"; then
			# this small image lacks what the kind needs (corrupt.sh
			# checks coverage on a bigger one)
			[ "$seed" = "$SEED" ] && echo "$kind: skipped: $(tail -1 "$T/$c/corrupt.log")"
			rm -rf "${T:?}/$c"
			return 1
		fi
		cat "$T/$c/corrupt.log"
		fail "debug corrupt $kind --seed $seed failed"
	fi
	d=$(grep '^damaged:' "$T/$c/corrupt.log")
	if [ -n "${DAMAGED[$kind:$d]:-}" ]; then
		rm -rf "${T:?}/$c"
		return 1
	fi
	DAMAGED[$kind:$d]=1
	awk '$1 == "affects:" { print $3 }' "$T/$c/corrupt.log" > "$T/$c/affects"
	cp --sparse=always "$T/$c/damaged.img" "$T/$c/full.img"
	n=$(writes_of "$T/$c/full.img")
	rc=$?
	if [ "$rc" != 1 ] || [ -z "$n" ] || [ "$n" = 0 ]; then
		tail -5 "$T/$c/full.img.count.log"
		fail "$c: the uncut fsck -y exits $rc after ${n:-?} writes (want 1 and some writes)"
	fi
	W[$c]=$n
	cases+=("$c")
	total_writes=$((total_writes + n))
	echo "$c: uncut repair makes $n device writes"
}

kinds=()
for kind in "${KINDS[@]}"; do
	[[ " ${ALL[*]} " == *" $kind "* ]] || { echo "kind $kind is not listed: skipped"; continue; }
	# the sample image is one device with the default node size: no
	# stripes, no three-level btree (corrupt.sh covers those kinds)
	needs=$(corrupt_needs "$kind")
	[ "$needs" = - ] || { echo "$kind: skipped: needs $needs"; continue; }
	add_case "$kind" "$SEED" && kinds+=("$kind")
done
[ "${#kinds[@]}" -gt 0 ] || fail "no kinds to test"
# more seeds until every write of every case adds up to the budget
for ((r = 1; r < ${CRASH_SEEDS:-4} && total_writes < BUDGET; r++)); do
	for kind in "${kinds[@]}"; do
		[ "$total_writes" -ge "$BUDGET" ] && break
		add_case "$kind" $((SEED + r))
	done
done

# ---- share the budget: every write of a case when it fits, else a sample
# (seeds added to reach the budget run every write: the last one may go past
# it)
declare -A Q
left=$BUDGET
[ "${#cases[@]}" -gt "${#kinds[@]}" ] && [ "$total_writes" -gt "$BUDGET" ] && left=$total_writes
pending=("${cases[@]}")
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
		# each makes more writes than its share: a sample of each, the
		# remainder spread so that the samples add up to the budget
		rem=$(( left - share * ${#next[@]} ))
		for k in "${next[@]}"; do
			Q[$k]=$share
			[ "$rem" -gt 0 ] && Q[$k]=$((share + 1)) && rem=$((rem - 1))
		done
		break
	fi
	pending=("${next[@]}")
done
planned=0
for c in "${cases[@]}"; do planned=$((planned + Q[$c])); done
echo "== $planned cut points planned over ${#cases[@]} cases (${#kinds[@]} kinds; $total_writes writes of uncut repairs)"

# cuts_for CASE: the cut points, one per line
cuts_for() {
	local k=$1 w=${W[$1]} q=${Q[$1]}
	if [ "$q" -ge "$w" ]; then
		seq 1 "$w"
	else
		rng_seed "$SEED$(printf '%s' "$k" | cksum | cut -d' ' -f1)"
		# the first and last writes, seeded draws, then (should the
		# draws repeat) the rest in order: always q distinct points
		{ echo 1; echo $((w - 1)); echo "$w"
		  for ((i = 0; i < q * 3; i++)); do rng "$w"; echo $((R + 1)); done
		  seq 1 "$w"
		} | awk '!seen[$0]++' | head -n "$q" | sort -n
	fi
}

# run_case CASE: every cut point of one case; prints its report, exits 0 if
# all held. Cases run in parallel, each in its own directory.
run_case() {
	local c=$1 kbad=0 i=0 n r1 r2 r3 why extra X=$T/$1/cut.img
	local -a cuts
	mapfile -t cuts < <(cuts_for "$c")
	echo "== $c: ${#cuts[@]} cut points of ${W[$c]} writes"
	for n in "${cuts[@]}"; do
		i=$((i + 1))
		rm -f "$T/$c/cut3.log"
		cp --sparse=always "$T/$c/damaged.img" "$X"
		r1=0; "$BKFS" fsck -y --debug-fail-after-writes "$n" "$X" > "$T/$c/cut1.log" 2>&1 || r1=$?
		r2=0; "$BKFS" fsck -y "$X" > "$T/$c/cut2.log" 2>&1 || r2=$?
		# fsck -y exiting 0 found nothing: -n runs the same checks
		r3=0; [ "$r2" = 0 ] || "$BKFS" fsck -n "$X" > "$T/$c/cut3.log" 2>&1 || r3=$?
		why=""
		[ "$r1" -ge 128 ] && why="cut fsck -y crashed ($r1)"
		[ -z "$why" ] && [ "$r2" != 0 ] && [ "$r2" != 1 ] && why="fsck -y after the cut exits $r2"
		[ -z "$why" ] && [ "$r3" != 0 ] && why="fsck -n after the repair exits $r3"
		if [ -z "$why" ] && [ $((i % 10)) = 0 ]; then
			extract_to "$X" "$T/$c/out" > /dev/null 2>&1
			compare_manifest "$T/manifest" "$T/$c/out" | awk '{ print substr($2, 2) }' > "$T/$c/changed"
			extra=$(grep -vxF -f "$T/$c/affects" "$T/$c/changed" | head -3 | tr '\n' ' ')
			[ -n "$extra" ] && why="files outside the damage changed: $extra"
		fi
		if [ -n "$why" ]; then
			echo "  cut at write $n: $why (fsck exits $r1, $r2, $r3)"
			if [ "$kbad" -lt 3 ]; then
				for f in cut1 cut2 cut3; do
					[ -f "$T/$c/$f.log" ] || continue
					grep -v '^bkfs fsck: [0-9]* device' "$T/$c/$f.log" | head -6 | cut -c1-250 | sed "s/^/    $f: /"
				done
				cp --sparse=always "$T/$c/damaged.img" "$T/$c/fail-at-$n.img"
			fi
			kbad=$((kbad + 1))
		fi
	done
	echo "${#cuts[@]}" > "$T/$c.cuts"
	if [ "$kbad" = 0 ]; then
		echo "PASS $c (${#cuts[@]} cuts)"
	else
		echo "FAIL $c: $kbad of ${#cuts[@]} cuts"
	fi
	[ "$kbad" = 0 ]
}

JOBS=${CRASH_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -gt 4 ] && JOBS=4
for c in "${cases[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
	( rc=0; run_case "$c" > "$T/$c.log" 2>&1 || rc=$?; echo "$rc" > "$T/$c.rc" ) &
done
wait
total=0 bad=0
for c in "${cases[@]}"; do
	cat "$T/$c.log"
	total=$((total + $(cat "$T/$c.cuts" 2>/dev/null || echo 0)))
	if [ "$(cat "$T/$c.rc" 2>/dev/null)" = 0 ]; then
		rm -rf "${T:?}/$c"
	else
		bad=$((bad + 1))
	fi
done

echo "$total cut points run over ${#cases[@]} cases (${#kinds[@]} kinds); $bad cases failed"
[ "$bad" = 0 ] || exit 1
[ "$total" = "$planned" ] || fail "$total cut points run, $planned planned"
if [ "$total" -lt "$BUDGET" ]; then
	# a chosen subset of kinds may not have enough writes; all of them must
	[ -n "${CRASH_KINDS:-}" ] || fail "only $total cut points, fewer than $BUDGET"
	echo "note: only $total cut points (CRASH_KINDS has too few writes for $BUDGET)"
fi
