#!/bin/bash
# scrub.sh - `bkfs scrub` repairs what a good copy or parity allows, and each
# repair is proven by a second scrub (clean) and an extract compared with the
# source:
#   - two devices, two replicas: one data replica damaged (dd over it), then
#     one node copy (debug corrupt node_copy_bad): -n finds it and exits 4
#     writing nothing, the scrub rewrites it (exit 1);
#   - both copies of a node damaged in different chunks: they mend each
#     other, both are rewritten, nothing lost;
#   - both replicas of an extent damaged: exit 4, the file named by path;
#   - four devices striped 3+1 with one data replica: a whole data block of
#     a stripe wiped (rebuilt from parity), then a parity block wiped
#     (recomputed);
#   - on a FUSE mount (skipped without FUSE): bkfs scrub MOUNTPOINT repairs a
#     damaged replica while the mount serves, --json names the counts, and
#     finds every replica good while a client writes and reads files; a
#     leaf whose two copies are damaged in different chunks is read mended
#     by the mount, which rewrites both copies.
# Usage errors exit 16.
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR.
set -uo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
T=$TMPDIR
. "$(cd "$(dirname "$0")" && pwd)/lib/expect.bash"
same_tree() {
	diff -r --no-dereference "$1" "$2" 2>&1 | grep -v "is a fifo while\|special file while\|is a socket while"
}

# extracted_same WHAT DEV...: the tree extracts identical to the source
extracted_same() {
	local what=$1
	shift
	rm -rf "$T/x"
	expect 0 "$BKFS" extract "$@" "$T/x"
	[ -z "$(same_tree "$T/src" "$T/x")" ] || fail "$what: tree differs: $(same_tree "$T/src" "$T/x" | head -3)"
}

# scrubbed_clean WHAT DEV...: a second scrub finds nothing, extract matches
scrubbed_clean() {
	local what=$1
	shift
	expect 0 "$BKFS" scrub "$@"
	grep -q "; 0 bad, 0 repaired" "$T/out" || fail "$what: second scrub not clean: $(tail -1 "$T/out")"
	extracted_same "$what" "$@"
	echo "$what: repaired, second scrub clean, extract identical"
}

# field NAME: the count after "NAME " in the scrub report of $T/out
field() { grep -o "$1 [0-9]*" "$T/out" | head -1 | awk '{print $NF}'; }

"$GENTREE" --seed 11 --files 400 --quiet "$T/src" > /dev/null || fail "gentree failed"

# ---- usage
expect 0 "$BKFS" scrub --help
grep -q "usage: bkfs scrub" "$T/out" || fail "--help prints no usage"
expect 16 "$BKFS" scrub
expect 16 "$BKFS" scrub --no-such-option "$T/none.img"
expect 8 "$BKFS" scrub "$T/none.img"

# ---- two devices, two replicas
A=("$T/a0.img" "$T/a1.img")
truncate -s 128M "${A[@]}"
expect 0 "$BKFS" format --replicas 2 --source "$T/src" "${A[@]}"
expect 0 "$BKFS" scrub -n "${A[@]}"
[ "$(field "replicas read")" -gt 0 ] || fail "scrub read no replica: $(cat "$T/out")"

# the largest extent: its replica on device 0 damaged in the middle
ext=$("$BKFS" list -b extents "${A[@]}" | grep "type extent" | awk '{for (i = 1; i <= NF; i++) if ($i == "csum_sectors") print $(i + 1), $0}' | sort -n | tail -1)
off0=$(echo "$ext" | grep -o "dev 0 off [0-9]*" | awk '{print $4}')
off1=$(echo "$ext" | grep -o "dev 1 off [0-9]*" | awk '{print $4}')
[ -n "$off0" ] && [ -n "$off1" ] || fail "no extent with a replica on each device: $ext"
head -c 4096 /dev/urandom | dd of="$T/a0.img" bs=512 seek=$((off0 + 1)) conv=notrunc status=none
sum_before=$(md5sum "${A[@]}")
expect 4 "$BKFS" scrub -n --json "$T/j0" "${A[@]}"
[ "$(field "replicas read [0-9]*, bad")" = 1 ] || fail "scrub -n did not find the bad replica: $(cat "$T/out")"
[ "$sum_before" = "$(md5sum "${A[@]}")" ] || fail "scrub -n wrote to the devices"
grep -q '"mode": "verify"' "$T/j0" && grep -q '"exit_status": 4' "$T/j0" || fail "json report: $(cat "$T/j0")"
expect 1 "$BKFS" scrub --json "$T/j1" "${A[@]}"
grep -q '"data": {[^}]*"bad": 1, "repaired": 1' "$T/j1" || fail "json does not count the repair: $(cat "$T/j1")"
scrubbed_clean "damaged data replica" "${A[@]}"

# one copy of a btree node damaged
expect 0 "$BKFS" debug corrupt node_copy_bad --seed 3 "${A[@]}"
expect 4 "$BKFS" scrub -n "${A[@]}"
grep -q "nodes: [0-9]*, copies read [0-9]*, bad 1, rewritten 0" "$T/out" || fail "scrub -n: $(head -1 "$T/out")"
expect 1 "$BKFS" scrub "${A[@]}"
grep -q "bad 1, rewritten 1" "$T/out" || fail "node copy not rewritten: $(head -1 "$T/out")"
scrubbed_clean "damaged node copy" "${A[@]}"
expect 0 "$BKFS" fsck -n --all-copies "${A[@]}"

# both copies of a btree leaf damaged, in different 1 KiB chunks: they mend
# each other (FORMAT.md §7.3), so both are rewritten and nothing is lost
loc=$("$BKFS" list -v -b dirents -l 0 "${A[@]}" 2> /dev/null | grep '^node .* loc: dev ' | head -1)
n0=$(echo "$loc" | sed -n 's/.*loc: dev \([0-9]*\) off \([0-9]*\) gen [0-9]*, dev \([0-9]*\) off \([0-9]*\) .*/\1 \2 \3 \4/p')
read -r d0 o0 d1 o1 <<< "$n0"
[ -n "${o1:-}" ] || fail "no dirents leaf with two copies: $loc"
printf '\377\377\377\377' | dd of="${A[$d0]}" bs=1 seek=$((o0 * 512 + 1500)) conv=notrunc status=none
printf '\377\377\377\377' | dd of="${A[$d1]}" bs=1 seek=$((o1 * 512 + 2600)) conv=notrunc status=none
expect 4 "$BKFS" scrub -n "${A[@]}"
grep -q "nodes: [0-9]*, copies read [0-9]*, bad 2, rewritten 0, lost 0" "$T/out" || fail "scrub -n, both copies bad: $(head -1 "$T/out")"
expect 1 "$BKFS" scrub "${A[@]}"
grep -q "bad 2, rewritten 2, lost 0" "$T/out" || fail "mended copies not rewritten: $(head -1 "$T/out")"
scrubbed_clean "both node copies damaged in different chunks" "${A[@]}"
expect 0 "$BKFS" fsck -n --all-copies "${A[@]}"

# both replicas damaged: nothing to repair from; the file is named
for i in 0 1; do cp --sparse=always "$T/a$i.img" "$T/a$i.good"; done
head -c 4096 /dev/urandom | dd of="$T/a0.img" bs=512 seek=$((off0 + 1)) conv=notrunc status=none
head -c 4096 /dev/urandom | dd of="$T/a1.img" bs=512 seek=$((off1 + 1)) conv=notrunc status=none
expect 4 "$BKFS" scrub --json "$T/j2" "${A[@]}"
path=$(sed -n 's/^not repaired: \(\/[^:]*\): data of inode.*/\1/p' "$T/out")
[ -n "$path" ] && [ -f "$T/src$path" ] || fail "the file with no good replica is not named by its path: $(cat "$T/out")"
grep -q "\"path\": \"$path\"" "$T/j2" || fail "json does not name $path"
echo "both replicas bad: exit 4, $path named"
for i in 0 1; do mv "$T/a$i.good" "$T/a$i.img"; done

# ---- erasure coding: four devices, one data replica, 3+1 stripes
D=()
for i in 0 1 2 3; do
	truncate -s 160M "$T/d$i.img"
	D+=("$T/d$i.img")
done
expect 0 "$BKFS" format --bucket-size 256k --data-replicas 1 --source "$T/src" "${D[@]}"
expect 0 "$BKFS" erasure-code "${D[@]}"
"$BKFS" list -b stripes "${D[@]}" > "$T/stripes"
expect 0 "$BKFS" scrub -n "${D[@]}"
[ "$(field "stripes:")" -ge 1 ] || fail "scrub checked no stripe: $(cat "$T/out")"
first=$(grep "type stripe" "$T/stripes" | head -1)
read -r ddev doff < <(echo "$first" | grep -o "\[0\] dev [0-9]* off [0-9]*" | awk '{print $3, $5}')
read -r pdev poff < <(echo "$first" | grep -o "\[3\] dev [0-9]* off [0-9]*" | awk '{print $3, $5}')
[ -n "$doff" ] && [ -n "$poff" ] || fail "no 3+1 stripe: $first"
# a data block lost (the whole 256k bucket zeroed)
dd if=/dev/zero of="$T/d$ddev.img" bs=512 seek="$doff" count=512 conv=notrunc status=none
expect 4 "$BKFS" scrub -n "${D[@]}"
expect 1 "$BKFS" scrub "${D[@]}"
[ "$(field "rebuilt from parity")" -gt 0 ] || fail "nothing rebuilt from parity: $(cat "$T/out")"
grep -q "lost 0$" <(sed -n 2p "$T/out") || fail "data lost: $(cat "$T/out")"
scrubbed_clean "lost stripe data block" "${D[@]}"
# a parity block lost
dd if=/dev/zero of="$T/d$pdev.img" bs=512 seek="$poff" count=512 conv=notrunc status=none
expect 4 "$BKFS" scrub -n "${D[@]}"
grep -q "parity blocks bad 1, rewritten 0" "$T/out" || fail "scrub -n: $(cat "$T/out")"
expect 1 "$BKFS" scrub "${D[@]}"
grep -q "parity blocks bad 1, rewritten 1" "$T/out" || fail "parity not rewritten: $(cat "$T/out")"
scrubbed_clean "lost parity block" "${D[@]}"

# ---- on the mount
. "$(cd "$(dirname "$0")" && pwd)/lib/fuse.bash"
if [ ! -c /dev/fuse ] || ! command -v fusermount3 > /dev/null 2>&1; then
	echo "skip: scrub on the mount (no FUSE here)"
	exit 0
fi
IMG="$T/a0.img:$T/a1.img"
MNT=$T/mnt
mkdir -p "$MNT"
trap fuse_cleanup EXIT
head -c 4096 /dev/urandom | dd of="$T/a1.img" bs=512 seek=$((off1 + 1)) conv=notrunc status=none
mount_fg || { grep -qiE 'permission denied|not permitted|fuse: device not found' "$T/mount.log" &&
	{ echo "skip: scrub on the mount (FUSE mounts not allowed)"; exit 0; }; fail "mount failed"; }
expect 8 "$BKFS" scrub "${A[@]}" # the devices are the mount's
expect 4 "$BKFS" scrub -n "$MNT"
[ "$(field "replicas read [0-9]*, bad")" = 1 ] || fail "scrub -n on the mount: $(cat "$T/out")"
expect 1 "$BKFS" scrub --json "$T/j3" "$MNT"
grep -q '"mode": "repair"' "$T/j3" || fail "json from the mount: $(cat "$T/j3")"
expect 0 "$BKFS" scrub -n "$MNT"
# while a client writes and reads files: the scrub reads replicas around the
# page cache, the mount writes through it; each scrub still finds every
# replica good (what it verifies is what was written)
( for i in $(seq 1 40); do
	head -c 1048576 /dev/urandom > "$MNT/busy.$((i % 5))" && cat "$MNT/busy.$((i % 5))" > /dev/null || exit 1
done ) &
writer=$!
scrubs=0
while kill -0 "$writer" 2> /dev/null || [ "$scrubs" = 0 ]; do
	expect 0 "$BKFS" scrub -n "$MNT"
	scrubs=$((scrubs + 1))
done
wait "$writer" || fail "the writer beside the scrub failed"
echo "ok   $scrubs scrubs of the mount beside a writer: every replica good"
rm -f "$MNT"/busy.*
cmp -s <(cd "$T/src" && find . -type f -size +64k | sort | head -20 | xargs md5sum) \
	<(cd "$MNT" && find . -type f -size +64k | sort | head -20 | xargs md5sum) || fail "files differ on the mount"
unmount_fg
trap - EXIT
grep -q "scrub done" "$T/mount.log" || fail "the mount did not log the scrub"
scrubbed_clean "damaged replica scrubbed on the mount" "${A[@]}"

# both copies of a dirents leaf damaged in different chunks, met by the
# mount: it reads the mended node, serves every name, and rewrites both copies
loc=$("$BKFS" list -v -b dirents -l 0 "${A[@]}" 2> /dev/null | grep '^node .* loc: dev ' | tail -1)
read -r d0 o0 d1 o1 <<< "$(echo "$loc" | sed -n 's/.*loc: dev \([0-9]*\) off \([0-9]*\) gen [0-9]*, dev \([0-9]*\) off \([0-9]*\) .*/\1 \2 \3 \4/p')"
[ -n "${o1:-}" ] || fail "no dirents leaf with two copies: $loc"
printf '\377\377\377\377' | dd of="${A[$d0]}" bs=1 seek=$((o0 * 512 + 2600)) conv=notrunc status=none
printf '\377\377\377\377' | dd of="${A[$d1]}" bs=1 seek=$((o1 * 512 + 1500)) conv=notrunc status=none
trap fuse_cleanup EXIT
mount_fg || fail "mount failed"
[ "$(cd "$MNT" && find . | grep -v '^./lost+found' | wc -l)" = "$(cd "$T/src" && find . | wc -l)" ] ||
	fail "the mount does not serve every name with both copies of a leaf damaged"
unmount_fg
trap - EXIT
expect 0 "$BKFS" fsck -n --all-copies "${A[@]}"
echo "both copies of a leaf damaged, met by the mount: every name served, both copies rewritten"
