#!/bin/bash
# corrupt.sh - every kind of `bkfs debug corrupt --list`, on a copy of a real
# image (a generated tree of 3000 entries plus a few big files, two of them
# with copies sharing their data):
#   - `fsck -n` exits 4 and its --json report names the kind's error;
#   - `fsck -y` exits 1;
#   - a second `fsck -n` exits 0;
#   - every regular file outside the damaged object is byte-identical to the
#     manifest taken before the damage; each file that is missing or differs
#     must be one the corrupt command named ("affects:" lines) and the repair
#     report must account for it (lost data, lost+found salvage, or a finding
#     naming the inode or path). They are printed, with their lost+found copy
#     when one has the same content.
#
# Kinds that need a btree of three levels (needs three_level in --list) run
# on a second image of the same tree formatted with 4 KiB btree nodes. Kinds
# that need erasure-coded stripes (needs stripes) run on the same tree
# formatted over three image files and striped 2+1 (bkfs erasure-code).
#
# Environment: CORRUPT_KINDS="k1 k2" (default: all), CORRUPT_SEEDS="1 2"
# (default 1), CORRUPT_FILES (default 1500; 600 under ASan), CORRUPT_IMG_SIZE
# (default 256M), CORRUPT_JOBS (kinds checked in parallel, default nproc, at
# most 4).
set -uo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/lib/corrupt_common.bash"

T=$TMPDIR
FILES=${CORRUPT_FILES:-1500}
is_asan && FILES=${CORRUPT_FILES:-600}
SEEDS=${CORRUPT_SEEDS:-1}
IMG_SIZE=${CORRUPT_IMG_SIZE:-256M}

require_corrupt
mapfile -t ALL < <(corrupt_kinds)
[ "${#ALL[@]}" -gt 0 ] || fail "debug corrupt --list lists no kinds"
if [ -n "${CORRUPT_KINDS:-}" ]; then
	read -r -a KINDS <<< "$CORRUPT_KINDS"
else
	KINDS=("${ALL[@]}")
fi

echo "== sample image"
make_sample "$T/src" "$FILES"
make_image "$T/src" "$T/base.img" "$IMG_SIZE"
share_big "$T/base.img"
rc=0; "$BKFS" fsck -n "$T/base.img" > "$T/base.fsck.log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
	cat "$T/base.fsck.log"
	fail "fsck -n of the fresh image exits $rc, not 0"
fi
extract_manifest "$T/base.img" "$T/base.out" "$T/manifest" || fail "extract of the fresh image failed"
echo "$(wc -l < "$T/manifest") regular files in the manifest"

DEEP_KINDS=" $(corrupt_kinds_needing three_level | tr '\n' ' ') "
for kind in "${KINDS[@]}"; do
	case "$DEEP_KINDS" in *" $kind "*) ;; *) continue ;; esac
	echo "== sample image with 4 KiB btree nodes (for $kind)"
	rm -f "$T/deep.img"
	truncate -s "$IMG_SIZE" "$T/deep.img"
	"$BKFS" format --btree-node-size 4k --source "$T/src" "$T/deep.img" > "$T/deep.img.format.log" 2>&1 ||
		{ cat "$T/deep.img.format.log"; fail "format --btree-node-size 4k --source failed"; }
	share_big "$T/deep.img"
	rc=0; "$BKFS" fsck -n "$T/deep.img" > "$T/deep.fsck.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { cat "$T/deep.fsck.log"; fail "fsck -n of the fresh 4 KiB-node image exits $rc, not 0"; }
	extract_manifest "$T/deep.img" "$T/deep.out" "$T/deep.manifest" || fail "extract of the fresh 4 KiB-node image failed"
	break
done

STRIPE_KINDS=" $(corrupt_kinds_needing stripes | tr '\n' ' ') "
STRIPE_DEVS=3
for kind in "${KINDS[@]}"; do
	case "$STRIPE_KINDS" in *" $kind "*) ;; *) continue ;; esac
	echo "== sample image over $STRIPE_DEVS devices, erasure-coded (for the stripe kinds)"
	devs=()
	for i in $(seq 0 $((STRIPE_DEVS - 1))); do
		rm -f "$T/stripe.img$i"
		truncate -s "$IMG_SIZE" "$T/stripe.img$i"
		devs+=("$T/stripe.img$i")
	done
	"$BKFS" format --bucket-size 256k --source "$T/src" "${devs[@]}" > "$T/stripe.format.log" 2>&1 ||
		{ cat "$T/stripe.format.log"; fail "format --source over $STRIPE_DEVS devices failed"; }
	"$BKFS" erasure-code "${devs[@]}" >> "$T/stripe.format.log" 2>&1 ||
		{ cat "$T/stripe.format.log"; fail "erasure-code failed"; }
	tail -1 "$T/stripe.format.log"
	rc=0; "$BKFS" fsck -n "${devs[@]}" > "$T/stripe.fsck.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { cat "$T/stripe.fsck.log"; fail "fsck -n of the fresh striped image exits $rc, not 0"; }
	extract_manifest "$(IFS=:; echo "${devs[*]}")" "$T/stripe.out" "$T/stripe.manifest" ||
		fail "extract of the fresh striped image failed"
	break
done

pass=() fail=()

# summarize JSON: the finding names in order of first appearance, with counts
summarize() {
	json_names "$1" | awk '{ if (!($0 in n)) o[k++] = $0; n[$0]++ }
		END { for (i = 0; i < k; i++) printf "%s%s%s", (i ? " " : ""), o[i], (n[o[i]] > 1 ? "x" n[o[i]] : "") }'
}

# check_kind KIND SEED: 0 if everything holds; prints why not
check_kind() {
	local kind=$1 seed=$2 W=$T/k/$1.$2 expect rc base=base man=manifest
	local img=$W/img devs=("$W/img")
	case "$DEEP_KINDS" in *" $kind "*) base=deep man=deep.manifest ;; esac
	rm -rf "$W"
	mkdir -p "$W"
	expect=$(corrupt_expect "$kind")
	[ -n "$expect" ] || { echo "  unknown kind"; return 1; }
	case "$STRIPE_KINDS" in
	*" $kind "*)
		man=stripe.manifest devs=()
		for i in $(seq 0 $((STRIPE_DEVS - 1))); do
			cp --sparse=always "$T/stripe.img$i" "$W/img$i"
			devs+=("$W/img$i")
		done
		img=$(IFS=:; echo "${devs[*]}")
		;;
	*)
		cp --sparse=always "$T/$base.img" "$W/img"
		;;
	esac

	rc=0; "$BKFS" debug corrupt "$kind" --seed "$seed" "${devs[@]}" > "$W/corrupt.log" 2> "$W/corrupt.err" || rc=$?
	sed 's/^/  | /' "$W/corrupt.log" | grep -v '^  | affects:' | cut -c1-400
	if [ "$rc" != 0 ]; then
		sed 's/^/  ! /' "$W/corrupt.err"
		echo "  debug corrupt exits $rc"
		return 1
	fi
	local naff
	naff=$(grep -c '^affects: ' "$W/corrupt.log")
	[ "$naff" -gt 0 ] && echo "  | ($naff affects: lines)"

	local r1=0 r2=0 r3=0
	"$BKFS" fsck -n --json "$W/n1.json" "${devs[@]}" > "$W/n1.log" 2>&1 || r1=$?
	"$BKFS" fsck -y --json "$W/y.json" "${devs[@]}" > "$W/y.log" 2>&1 || r2=$?
	"$BKFS" fsck -n --json "$W/n2.json" "${devs[@]}" > "$W/n2.log" 2>&1 || r3=$?
	local names1 names2 ok=1
	names1=$(json_names "$W/n1.json" | tr '\n' ' ')
	names2=$(json_names "$W/y.json" | tr '\n' ' ')
	echo "  fsck -n -> $r1 [$(summarize "$W/n1.json")]"
	echo "  fsck -y -> $r2 [$(summarize "$W/y.json")]"
	echo "  fsck -n -> $r3 [$(summarize "$W/n2.json")]"
	if [ "$r1" != 4 ]; then
		echo "  first fsck -n exits $r1, want 4"; ok=0
	fi
	if ! json_names "$W/n1.json" | grep -x "$expect" > /dev/null; then
		echo "  first fsck -n does not name $expect"; ok=0
	fi
	if [ "$r2" != 1 ]; then
		echo "  fsck -y exits $r2, want 1"; ok=0
	fi
	if [ "$r3" != 0 ]; then
		echo "  second fsck -n exits $r3, want 0"; ok=0
	fi
	if [ "$ok" = 0 ]; then
		for f in n1 y n2; do
			echo "  --- $f.log"
			grep -v '^bkfs fsck: [0-9]* device' "$W/$f.log" | head -15 | cut -c1-300 | sed 's/^/  /'
		done
	fi
	[ "$names1" = "$names2" ] || echo "  note: fsck -n and fsck -y findings differ"

	# ---- data: every file outside the damaged object is intact
	local xr=0
	extract_to "$img" "$W/out" || xr=$?
	if [ "$xr" != 0 ]; then
		echo "  extract after repair exits $xr:"
		sed 's/^/  ! /' "$W/out.extract.log" | head -10 | cut -c1-300
		if [ "$xr" -gt 1 ] || [ ! -d "$W/out" ]; then
			echo "  extract after repair failed"
			return 1
		fi
	fi
	compare_manifest "$T/$man" "$W/out" > "$W/changed"
	local nchanged unexplained=0
	nchanged=$(wc -l < "$W/changed")
	if [ "$nchanged" -gt 0 ]; then
		local lost
		lost=$(json_lost "$W/y.json")
		echo "  $nchanged files missing or different; repair report: lost extents/sectors/nodes/salvaged/files = $lost"
		grep -E '^data:' "$W/y.log" | sed 's/^/  report: /'
		# lost+found content by hash, to show where salvaged files went
		if [ -d "$W/out/lost+found" ]; then
			(cd "$W/out" && find ./lost+found -type f -print0 | xargs -0 -r sha256sum) > "$W/lf.sums"
		else
			: > "$W/lf.sums"
		fi
		local any_lost=0
		set -- $lost
		if [ "${1:-0}" != 0 ] || [ "${3:-0}" != 0 ] || [ "${4:-0}" != 0 ] || [ "${5:-0}" != 0 ]; then any_lost=1; fi
		# names never contain whitespace (gentree), so fields split cleanly
		awk '$1 == "affects:" { print $2, $3 }' "$W/corrupt.log" > "$W/affects"
		: > "$W/explain"
		while read -r what path; do
			local rel=${path#.} inum hash where explained
			inum=$(awk -v p="$rel" '$2 == p { print $1; exit }' "$W/affects")
			hash=$(awk -v p="$path" '$2 == p { print $1; exit }' "$T/$man")
			where=""
			[ -n "$hash" ] && where=$(awk -v h="$hash" '$1 == h { print $2; exit }' "$W/lf.sums")
			if [ -z "$inum" ]; then
				explained="NOT NAMED by debug corrupt"
				unexplained=$((unexplained + 1))
			elif [ "$any_lost" = 1 ] || grep -qE "inode $inum([^0-9]|\$)" "$W/y.log" || grep -qF "$rel" "$W/y.log"; then
				explained="explained"
			else
				explained="named by debug corrupt, but NOT in the repair report"
				unexplained=$((unexplained + 1))
			fi
			printf '    %s %s (inode %s)%s: %s\n' "$what" "$path" "${inum:-?}" "${where:+, salvaged as $where}" \
				"$explained" >> "$W/explain"
		done < "$W/changed"
		head -40 "$W/explain"
		[ "$nchanged" -gt 40 ] && echo "    ..."
		if [ "$unexplained" -gt 0 ]; then
			echo "  $unexplained changed files are not explained by the damage and the report"
			ok=0
		fi
	fi
	[ "$ok" = 1 ]
}

# kinds run in parallel (each in its own directory), reported in order
JOBS=${CORRUPT_JOBS:-$(nproc 2>/dev/null || echo 2)}
[ "$JOBS" -gt 4 ] && JOBS=4
mkdir -p "$T/k"
runs=()
for kind in "${KINDS[@]}"; do
	for seed in $SEEDS; do
		while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
		( rc=0; check_kind "$kind" "$seed" > "$T/k/$kind.$seed.log" 2>&1 || rc=$?
		  [ "$rc" = 0 ] && rm -rf "${T:?}/k/$kind.$seed"
		  echo "$rc" > "$T/k/$kind.$seed.rc" ) &
		runs+=("$kind/$seed")
	done
done
wait
for r in "${runs[@]}"; do
	kind=${r%/*} seed=${r#*/}
	echo "== $kind (seed $seed)"
	cat "$T/k/$kind.$seed.log"
	if [ "$(cat "$T/k/$kind.$seed.rc" 2>/dev/null)" = 0 ]; then
		echo "PASS $r"
		pass+=("$r")
	else
		echo "FAIL $r"
		fail+=("$r")
	fi
done

echo
echo "passed (${#pass[@]}): ${pass[*]}"
echo "failed (${#fail[@]}): ${fail[*]}"
[ "${#fail[@]}" = 0 ]
