#!/bin/bash
# fuzz.sh - seeded mutation campaign on a real image: random bit flips, byte
# overwrites and header-field mutations inside btree nodes (the nodes of the
# current tree, from `bkfs list` and the superblock roots), the journal ring
# and the superblock copies. For each case:
#   - `fsck -y` (under `timeout 60`) exits 0, 1 or 4: never a crash (exit
#     >= 128), never a hang, never an operational error;
#   - when it exits 0 or 1, a second `fsck -n` exits 0 (the fixed point);
#   - extract of the result does not crash (every 10th case).
# A failing case's mutated image (before the repair) is kept as
# $TMPDIR/fail-CASE.img, the mutation in fail-CASE.txt (the same seed replays
# the same cases).
#
# Environment: FUZZ_CASES (default 200; 40 under ASan), FUZZ_SEED (default
# 1), FUZZ_FILES (default 400).
set -uo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/lib/corrupt_common.bash"

T=$TMPDIR
CASES=${FUZZ_CASES:-200}
is_asan && CASES=${FUZZ_CASES:-40}
SEED=${FUZZ_SEED:-1}
FILES=${FUZZ_FILES:-400}
rng_seed "$SEED"

echo "== sample image"
"$GENTREE" --seed 11 --files "$FILES" --quiet "$T/src" > /dev/null || fail "gentree failed"
make_image "$T/src" "$T/base.img" 64M
rc=0; "$BKFS" fsck -n "$T/base.img" > "$T/base.fsck.log" 2>&1 || rc=$?
[ "$rc" = 0 ] || { cat "$T/base.fsck.log"; fail "fsck -n of the fresh image exits $rc, not 0"; }

# ---- where the metadata lives
"$BKFS" show-super "$T/base.img" > "$T/super.txt" || fail "show-super failed"
node_sectors=$(awk '/^btree_node_size:/ { print $2 }' "$T/super.txt")
bucket_sectors=$(awk '/^bucket_size:/ { print $2 }' "$T/super.txt")
nbuckets=$(sed -n 's/.*member 0: .*nbuckets \([0-9]*\).*/\1/p' "$T/super.txt")
jstart=$(sed -n 's/.*member 0: .* journal \([0-9]*\)+\([0-9]*\).*/\1/p' "$T/super.txt")
[ -n "$node_sectors" ] && [ -n "$bucket_sectors" ] && [ -n "$nbuckets" ] && [ -n "$jstart" ] ||
	fail "cannot parse show-super output"
node_bytes=$((node_sectors * 512))
bucket_bytes=$((bucket_sectors * 512))
{
	sed -n 's/.*ptrs: dev 0 off \([0-9]*\).*/\1/p' "$T/super.txt"
	for l in 1 2 3 4; do
		"$BKFS" list -l "$l" "$T/base.img" 2>/dev/null | grep -o 'dev 0 off [0-9]*' | awk '{ print $4 }'
	done
} | sort -un > "$T/nodes"
mapfile -t NODES < "$T/nodes"
[ "${#NODES[@]}" -gt 0 ] || fail "no btree nodes found"
SB_OFFS=(4096 65536 $(((nbuckets - 1) * bucket_bytes)))
JOFF=$((jstart * bucket_bytes))
echo "${#NODES[@]} btree nodes of $node_bytes bytes; journal at byte $JOFF; superblocks at ${SB_OFFS[*]}"

put_byte() { # IMG OFFSET VALUE
	printf "$(printf '\\%03o' "$3")" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
get_byte() {
	od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '
}

# mutate IMG: one seeded mutation, described in MUT (no subshell: the PRNG
# state must advance)
mutate() {
	local img=$1 region base span n i off w v
	rng 100
	if [ "$R" -lt 65 ]; then
		rng ${#NODES[@]}
		base=$((NODES[R] * 512))
		# mostly the header and the first keys, sometimes anywhere in the node
		rng 3
		if [ "$R" = 0 ]; then span=$node_bytes; else span=2048; fi
		region="node at byte $base"
	elif [ "$R" -lt 85 ]; then
		base=$JOFF span=16384 region="journal"
	else
		rng 3
		base=${SB_OFFS[R]} span=2712 region="superblock at byte $base"
	fi
	rng 3
	case $R in
	0)	rng 8; n=$((1 + R))
		MUT="$region: flip $n bits at"
		for ((i = 0; i < n; i++)); do
			rng "$span"; off=$((base + R))
			rng 8
			put_byte "$img" "$off" $(( $(get_byte "$img" "$off") ^ (1 << R) ))
			MUT="$MUT +$((off - base))"
		done ;;
	1)	rng 16; n=$((1 + R))
		rng "$span"; off=$((base + R))
		MUT="$region: overwrite $n bytes at +$((off - base))"
		for ((i = 0; i < n; i++)); do rng 256; put_byte "$img" $((off + i)) "$R"; done ;;
	2)	# a header field: a 1/2/4/8-byte value at an aligned offset of the
		# first 96 bytes, set to 0, all ones, or its low byte plus one
		rng 4; w=$((1 << R))
		rng $((96 / w)); off=$((base + R * w))
		rng 3; v=$R
		MUT="$region: field of $w bytes at +$((off - base)) -> $(case $v in 0) echo zero ;; 1) echo ones ;; *) echo plus-one ;; esac)"
		if [ "$v" = 2 ]; then
			put_byte "$img" "$off" $(( ($(get_byte "$img" "$off") + 1) & 255 ))
		else
			for ((i = 0; i < w; i++)); do put_byte "$img" $((off + i)) $((v ? 255 : 0)); done
		fi ;;
	esac
}

fails=0
declare -A seen_rc
for ((c = 1; c <= CASES; c++)); do
	X=$T/case.img
	cp --sparse=always "$T/base.img" "$X"
	mutate "$X"
	m=$MUT
	cp --sparse=always "$X" "$T/case.mutated.img"
	r1=0; timeout 60 "$BKFS" fsck -y "$X" > "$T/y.log" 2>&1 || r1=$?
	seen_rc[$r1]=$(( ${seen_rc[$r1]:-0} + 1 ))
	why=""
	if [ "$r1" = 124 ]; then
		why="fsck -y timed out"
	elif [ "$r1" -ge 128 ]; then
		why="fsck -y crashed (exit $r1)"
	elif [ "$r1" != 0 ] && [ "$r1" != 1 ] && [ "$r1" != 4 ]; then
		why="fsck -y exits $r1"
	elif [ "$r1" != 4 ]; then
		r2=0; timeout 60 "$BKFS" fsck -n "$X" > "$T/n.log" 2>&1 || r2=$?
		if [ "$r2" != 0 ]; then
			why="fsck -n after the repair exits $r2"
		elif [ $((c % 10)) = 0 ]; then
			r3=0; timeout 60 "$BKFS" extract "$X" "$T/out.$c" > /dev/null 2>&1 || r3=$?
			[ "$r3" -ge 124 ] && why="extract after the repair crashed or hung (exit $r3)"
			rm -rf "$T/out.$c"
		fi
	fi
	if [ -n "$why" ]; then
		fails=$((fails + 1))
		echo "case $c ($m): $why"
		grep -v '^bkfs fsck: [0-9]* device' "$T/y.log" | head -8 | cut -c1-250 | sed 's/^/    y: /'
		[ -f "$T/n.log" ] && [ "$r1" != 4 ] && head -6 "$T/n.log" | cut -c1-250 | sed 's/^/    n: /'
		echo "$m" > "$T/fail-$c.txt"
		mv "$T/case.mutated.img" "$T/fail-$c.img"
	fi
	rm -f "$T/n.log"
done

echo "fsck -y exit statuses: $(for k in "${!seen_rc[@]}"; do printf '%s:%s ' "$k" "${seen_rc[$k]}"; done)"
echo "$CASES cases (seed $SEED), $fails failed"
[ "$fails" = 0 ]
