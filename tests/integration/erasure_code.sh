#!/bin/bash
# erasure_code.sh - `bkfs erasure-code` as a user runs it: four image files
# filled from a generated tree, striped 3+1; the checker finds nothing; one
# data block of every stripe wiped on one device: the extracted tree is still
# identical to the source (rebuilt from parity); two blocks of a stripe
# wiped: extract reports read errors instead of returning wrong data. With
# two metadata copies and one data copy, a whole device missing: the tree
# extracts identical, every block of it rebuilt from parity. Seeded byte
# mutations of the striped filesystem's nodes always repair to a clean
# state (EC_FUZZ_CASES, default 30, EC_FUZZ_SEED). Usage
# errors exit 16, impossible stripes exit 1 and change nothing. (Stripes
# emptied by deletions, and power cuts while striping: tests/unit/test_ec.c.)
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR.
set -uo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
T=$TMPDIR
. "$(cd "$(dirname "$0")" && pwd)/lib/expect.bash"
# the tree's regular files, symlinks and directories, compared by content
same_tree() {
	diff -r --no-dereference "$1" "$2" 2>&1 | grep -v "is a fifo while\|special file while\|is a socket while"
}

"$GENTREE" --seed 5 --files 1500 --quiet "$T/src" > /dev/null || fail "gentree failed"
D=()
for i in 0 1 2 3; do
	truncate -s 160M "$T/d$i.img"
	D+=("$T/d$i.img")
done
expect 0 "$BKFS" format --bucket-size 256k --source "$T/src" "${D[@]}"

# ---- usage and impossible requests
expect 0 "$BKFS" erasure-code --help
grep -q "usage: bkfs erasure-code" "$T/out" || fail "--help prints no usage"
expect 16 "$BKFS" erasure-code
expect 16 "$BKFS" erasure-code --parity x "${D[@]}"
expect 16 "$BKFS" erasure-code --no-such-option "${D[@]}"
expect 1 "$BKFS" erasure-code --data 4 --parity 1 "${D[@]}" # 5 blocks on 4 devices
grep -q "needs" "$T/err" || fail "no reason given for an impossible stripe"
expect 1 "$BKFS" erasure-code "$T/d0.img" "$T/d1.img" # a member missing
expect 0 "$BKFS" fsck -n "${D[@]}"                     # nothing changed by the refusals

# ---- striping
expect 0 "$BKFS" erasure-code "${D[@]}"
stripes=$(awk '{print $1}' "$T/out")
[ "${stripes:-0}" -ge 2 ] || fail "erasure-code made ${stripes:-no} stripes: $(cat "$T/out")"
grep -q "of 3+1 blocks" "$T/out" || fail "default stripe is not 3+1: $(cat "$T/out")"
expect 0 "$BKFS" fsck -n "${D[@]}"
expect 0 "$BKFS" list -b stripes "${D[@]}"
[ "$(grep -c "type stripe" "$T/out")" = "$stripes" ] || fail "list shows a different number of stripes"
expect 0 "$BKFS" erasure-code "${D[@]}"
grep -q "^0 stripes" "$T/out" || fail "a second run striped again: $(cat "$T/out")"
"$BKFS" list -b stripes "${D[@]}" > "$T/stripes"

# ---- one data block of every stripe lost on device 1: all data still reads
for i in 0 1 2 3; do cp --sparse=always "$T/d$i.img" "$T/d$i.orig"; done
grep -o "\[[0-2]\] dev 1 off [0-9]*" "$T/stripes" | awk '{print $5}' > "$T/offs"
[ -s "$T/offs" ] || fail "no data block on device 1"
while read -r off; do
	dd if=/dev/zero of="$T/d1.img" bs=512 seek="$off" count=512 conv=notrunc status=none
done < "$T/offs"
expect 0 "$BKFS" extract "${D[@]}" "$T/out1"
[ -z "$(same_tree "$T/src" "$T/out1")" ] || fail "tree differs with one block per stripe lost: $(same_tree "$T/src" "$T/out1" | head -3)"
expect 0 "$BKFS" fsck -n "${D[@]}"

# ---- two data blocks of one stripe lost: read errors, never wrong bytes
first=$(head -1 "$T/stripes")
for dev in $(echo "$first" | grep -o "\[[0-2]\] dev [0-9] off [0-9]*" | head -2 | awk '{print $3 ":" $5}'); do
	dd if=/dev/zero of="$T/d${dev%%:*}.img" bs=512 seek="${dev##*:}" count=512 conv=notrunc status=none
done
"$BKFS" extract "${D[@]}" "$T/out2" > "$T/out" 2> "$T/err"
[ $? = 1 ] || fail "extract with two blocks of a stripe lost did not exit 1"
grep -q "checksum mismatch\|I/O error" "$T/err" || fail "no read error reported"
# every file that differs was reported (under one of its names: a hard
# link's data is read once)
same_tree "$T/src" "$T/out2" | grep "differ$" | sed 's/^\(Binary f\|F\)iles [^ ]*\/src\///; s/ and .*//' > "$T/differ"
sed -n 's/^bkfs extract: \(.*\): read error.*/\1/p' "$T/err" | while read -r f; do stat -c %i "$f"; done | sort -u > "$T/bad_inodes"
[ -s "$T/differ" ] || fail "no file differs although two blocks of a stripe were lost"
while read -r f; do
	grep -qx "$(stat -c %i "$T/out2/$f")" "$T/bad_inodes" || fail "$f differs but no read error was reported for it"
done < "$T/differ"
for i in 0 1 2 3; do mv "$T/d$i.orig" "$T/d$i.img"; done
expect 0 "$BKFS" fsck -n "${D[@]}"

# ---- seeded mutations of the striped filesystem's btree nodes (half of them
# in the stripes, alloc, extents and reflink btrees): fsck never crashes or
# hangs, exits 0, 1 or 4, -n finds something exactly when -y does, and after
# a repair the next -n is clean
"$BKFS" scan "${D[@]}" 2> /dev/null |
	awk '{ for (i = 1; i <= NF; i++) if ($i == "dev") print $1, $(i + 1), $(i + 3) }' > "$T/nodes"
grep -E '^(stripes|alloc|extents|reflink) ' "$T/nodes" > "$T/nodes.ec"
[ -s "$T/nodes.ec" ] || fail "the scan finds no stripes, alloc or extents node"
RANDOM=${EC_FUZZ_SEED:-7}
cases=${EC_FUZZ_CASES:-30}
for i in 0 1 2 3; do cp --sparse=always "$T/d$i.img" "$T/d$i.base"; done
found=0
for c in $(seq 1 "$cases"); do
	for i in 0 1 2 3; do cp --sparse=always "$T/d$i.base" "$T/d$i.img"; done
	list=$T/nodes
	[ $((c % 2)) = 1 ] && list=$T/nodes.ec
	read -r name dev off < <(sed -n "$((RANDOM % $(wc -l < "$list") + 1))p" "$list")
	for _ in $(seq 1 $((RANDOM % 4 + 1))); do
		pos=$((off * 512 + RANDOM % 8192))
		byte=$(od -An -tu1 -j "$pos" -N1 "$T/d$dev.img" | tr -d ' ')
		printf "\\$(printf %03o $(((byte ^ (1 << (RANDOM % 8))) & 255)))" |
			dd of="$T/d$dev.img" bs=1 seek="$pos" conv=notrunc status=none
	done
	r1=0 r2=0 r3=0
	timeout 120 "$BKFS" fsck -n "${D[@]}" > "$T/f1" 2>&1 || r1=$?
	timeout 120 "$BKFS" fsck -y "${D[@]}" > "$T/f2" 2>&1 || r2=$?
	case "$r2" in 0|1) timeout 120 "$BKFS" fsck -n "${D[@]}" > "$T/f3" 2>&1 || r3=$? ;; esac
	what="case $c ($name node, dev $dev sector $off): fsck -n $r1, -y $r2, -n $r3"
	case "$r1:$r2" in 0:0|4:1|4:4) ;; *) cat "$T/f1" "$T/f2" | tail -20; fail "$what" ;; esac
	[ "$r3" = 0 ] || { tail -20 "$T/f3"; fail "$what"; }
	grep -q "Sanitizer\|runtime error" "$T/f1" "$T/f2" && fail "$what: sanitizer report"
	[ "$r1" = 4 ] && found=$((found + 1))
done
echo "mutations: $cases cases, $found with findings, all repaired to a clean state"
[ "$found" -gt 0 ] || fail "no mutation was noticed: the mutations do not land"
for i in 0 1 2 3; do mv "$T/d$i.base" "$T/d$i.img"; done

# ---- a whole device gone: metadata has two copies, data one copy plus parity
M=()
for i in 0 1 2 3; do
	rm -f "$T/d$i.img"
	truncate -s 160M "$T/m$i.img"
	M+=("$T/m$i.img")
done
expect 0 "$BKFS" format --bucket-size 256k --metadata-replicas 2 --data-replicas 1 --source "$T/src" "${M[@]}"
expect 0 "$BKFS" show-super "$T/m0.img"
grep -q "data_replicas: *1" "$T/out" && grep -q "metadata_replicas: *2" "$T/out" || fail "replicas not as formatted"
expect 0 "$BKFS" erasure-code "${M[@]}"
expect 0 "$BKFS" extract "$T/m0.img" "$T/m1.img" "$T/m3.img" "$T/out3"
grep -q "missing" "$T/err" || fail "extract did not say a device is missing"
[ -z "$(same_tree "$T/src" "$T/out3")" ] || fail "tree differs with device 2 missing: $(same_tree "$T/src" "$T/out3" | head -3)"
expect 0 "$BKFS" fsck -n "${M[@]}"

# ---- through the FUSE mount (when this machine has FUSE): read-only with
# device 2 missing, diff -r reads every file; then read-write with all
# devices, files removed and written: stripes follow, fsck stays clean
fuse=skipped
if [ -c /dev/fuse ] && command -v fusermount3 > /dev/null && command -v mountpoint > /dev/null; then
	MNT=$T/mnt
	mkdir -p "$MNT"
	trap 'mountpoint -q "$MNT" 2>/dev/null && fusermount3 -uz "$MNT"' EXIT
	serve() { # serve OPTS DEVS: mount in the foreground server, in the background
		"$BKFS" mount -f -o "$1" "$2" "$MNT" > "$T/mount.log" 2>&1 &
		PID=$!
		for _ in $(seq 1 200); do
			mountpoint -q "$MNT" && return 0
			kill -0 "$PID" 2>/dev/null || { cat "$T/mount.log"; fail "mount -o $1 failed"; }
			sleep 0.05
		done
		fail "mount did not come up"
	}
	unserve() {
		fusermount3 -u "$MNT" || fail "fusermount3 -u"
		wait "$PID" || fail "the mount server exited $?"
	}
	serve ro,degraded "$T/m0.img:$T/m1.img:$T/m3.img"
	[ -z "$(same_tree "$T/src" "$MNT")" ] || fail "mount with device 2 missing differs: $(same_tree "$T/src" "$MNT" | head -3)"
	unserve
	before=$("$BKFS" list -b stripes "${M[@]}" | grep -c "type stripe")
	serve rw "$(IFS=:; echo "${M[*]}")"
	victims=$(cd "$MNT" && find . -mindepth 1 -maxdepth 1 -type d | head -2)
	[ -n "$victims" ] || fail "no directory to remove"
	(cd "$MNT" && rm -rf $victims) || fail "rm -rf through the mount"
	head -c 3000000 /dev/urandom > "$T/new.bin"
	cp "$T/new.bin" "$MNT/new.bin" || fail "write through the mount"
	unserve
	mid=$("$BKFS" list -b stripes "${M[@]}" | grep -c "type stripe")
	[ "$mid" -le "$before" ] || fail "stripes grew from $before to $mid"
	expect 0 "$BKFS" fsck -n "${M[@]}"
	expect 0 "$BKFS" extract "${M[@]}" "$T/out4"
	cmp "$T/new.bin" "$T/out4/new.bin" || fail "new.bin does not read back"
	# everything removed: every stripe goes, with its parity
	serve rw "$(IFS=:; echo "${M[*]}")"
	(cd "$MNT" && find . -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +) || fail "rm -rf of everything"
	unserve
	after=$("$BKFS" list -b stripes "${M[@]}" | grep -c "type stripe")
	[ "$after" = 0 ] || fail "$after stripes left after every file was removed"
	expect 0 "$BKFS" usage "${M[@]}"
	left=$(awk '/^ *replicas parity/ && $(NF-1) > 0 { print } /^ *parity / && ($2 > 0 || $3 > 0) { print }' "$T/out")
	[ -z "$left" ] || fail "parity space left after every stripe went: $left"
	expect 0 "$BKFS" fsck -n "${M[@]}"
	fuse="mounted ($before stripes, $mid after removing $(echo $victims | wc -w) directories, 0 after removing everything)"
fi
echo "erasure_code: $stripes stripes, rebuilt reads checked, a missing device read around; FUSE: $fuse"
