#!/bin/bash
# degraded.sh - checks with a device missing (issue 10, defect 6). Two
# devices, one data replica (two metadata copies): with device 1 missing,
# fsck -n names it, reports every extent whose only copy is there
# (data_unreadable, one finding per extent, counted against `bkfs list`) and
# exits 4; -y exits 4 too and writes nothing (the device may come back). A
# wiped device passed in its place is treated as missing, for fsck, list,
# extract and scrub alike. With two data replicas nothing is unreadable:
# fsck -n names the missing device and exits 0.
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR.
set -uo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
T=$TMPDIR
. "$(cd "$(dirname "$0")" && pwd)/lib/expect.bash"

"$GENTREE" --seed 21 --files 300 --quiet "$T/src" > /dev/null || fail "gentree failed"
truncate -s 128M "$T/d0.img" "$T/d1.img"
expect 0 "$BKFS" format --data-replicas 1 --source "$T/src" "$T/d0.img" "$T/d1.img"
expect 0 "$BKFS" fsck -n "$T/d0.img" "$T/d1.img"
# extents (and indirect extents) whose every copy is on device 1
only1=$("$BKFS" list -b extents "$T/d0.img" "$T/d1.img" | grep "type extent" | grep -v "dev 0 off" | grep -c "dev 1 off")
[ "$only1" -gt 0 ] || fail "no extent is on device 1 only"

# check_degraded WHAT DEV...: fsck -n and -y exit 4, name device 1, count
# one data_unreadable per extent only on it, and write nothing
check_degraded() {
	local what=$1
	shift
	local before
	before=$(md5sum "$T/d0.img")
	expect 4 "$BKFS" fsck -n --json "$T/j" "$@"
	grep -q "^degraded: device 1 of 2 missing" "$T/out" || fail "$what: the missing device is not named: $(tail -3 "$T/out")"
	n=$(grep -c "data_unreadable (190)" "$T/out")
	[ "$n" = "$only1" ] || fail "$what: $n data_unreadable findings, $only1 extents are only on device 1"
	grep -q '"missing_devices": \[1\]' "$T/j" || fail "$what: json has no missing_devices"
	expect 4 "$BKFS" fsck -y "$@"
	grep -q "$only1 findings, 0 fixed, $only1 left" "$T/out" || fail "$what: -y: $(tail -1 "$T/out")"
	[ "$before" = "$(md5sum "$T/d0.img")" ] || fail "$what: fsck -y wrote to the present device"
	echo "$what: device 1 named, $n extents reported unreadable, exit 4, nothing written"
}

check_degraded "device 1 not given" "$T/d0.img"

# extract reads around it and says what it could not read
"$BKFS" extract "$T/d0.img" "$T/x" > "$T/out" 2> "$T/err"
[ $? = 1 ] || fail "extract with device 1 missing did not exit 1"
grep -q "read error" "$T/err" || fail "extract reported no read error"

# a wiped device in its place: treated as missing
cp --sparse=always "$T/d1.img" "$T/d1.good"
truncate -s 0 "$T/d1.img"
truncate -s 128M "$T/d1.img"
check_degraded "device 1 wiped" "$T/d0.img" "$T/d1.img"
grep -q "no valid bkfs superblock: treated as a missing device" "$T/err" || fail "fsck did not say the wiped device is treated as missing"
expect 0 "$BKFS" list -b inodes "$T/d0.img" "$T/d1.img"
grep -q "no valid bkfs superblock" "$T/err" || fail "list did not say why the device is left out"
rm -rf "$T/x"
"$BKFS" extract "$T/d0.img" "$T/d1.img" "$T/x" > "$T/out" 2> "$T/err"
[ $? = 1 ] || fail "extract with device 1 wiped did not exit 1: $(head -3 "$T/err")"
grep -q "read error" "$T/err" || fail "extract with a wiped device: no read error reported"
expect 4 "$BKFS" scrub -n "$T/d0.img" "$T/d1.img"
grep -q "copies on missing devices: [1-9]" "$T/out" || fail "scrub does not count copies on the missing device"
grep -q "^not repaired: /" "$T/out" || fail "scrub does not name the unreadable files"
# every device wiped: still a clear error
expect 8 "$BKFS" fsck -n "$T/d1.img"
mv "$T/d1.good" "$T/d1.img"
expect 0 "$BKFS" fsck -n "$T/d0.img" "$T/d1.img"

# two data replicas: everything readable, the missing device still named
truncate -s 0 "$T/r0.img" "$T/r1.img"
truncate -s 128M "$T/r0.img" "$T/r1.img"
expect 0 "$BKFS" format --replicas 2 --source "$T/src" "$T/r0.img" "$T/r1.img"
expect 0 "$BKFS" fsck -n "$T/r0.img"
grep -q "^degraded: device 1 of 2 missing" "$T/out" || fail "two replicas: the missing device is not named"
grep -q "data_unreadable" "$T/out" && fail "two replicas: data reported unreadable"
echo "two replicas, device 1 missing: named, nothing unreadable, exit 0"
