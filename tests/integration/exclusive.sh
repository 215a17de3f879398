#!/bin/bash
# exclusive.sh - a filesystem mounted read-write belongs to its mount: every
# other bkfs command that may write (fsck -y/-p, gc-gens, erasure-code,
# reflink, debug corrupt, format with and without --force, a second mount)
# is refused with its documented exit status and a message naming the device
# ("mounted or in use by another bkfs process"), and so are readers (fsck -n,
# list, ...). The refused commands write nothing: with the server stopped
# (SIGSTOP, so the mount itself cannot write either) the images are
# byte-identical before and after; then the mount goes on working, and after
# unmount fsck -n is clean and every file extracts intact. Readers share:
# two read-only mounts, fsck -n and list at the same time; writers are
# refused beside them. A lock held with flock(1) is honoured the same way.
# On a loop device (when losetup works here) the block-device path: the
# mount's O_EXCL claim, and an outside O_EXCL holder refusing writers.
#
# Environment (tests/run.sh): BKFS, TMPDIR. Skipped (77) without FUSE.
set -uo pipefail

: "${BKFS:?}" "${TMPDIR:?}"
T=$TMPDIR
LIB=$(cd "$(dirname "$0")" && pwd)/lib
. "$LIB/expect.bash"
. "$LIB/fuse.bash"
fuse_require
command -v flock > /dev/null 2>&1 || skip "no flock(1)"

BUSY="mounted or in use by another bkfs process"
LOOP=""
cleanup() {
	fuse_cleanup
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	return 0
}
trap cleanup EXIT

# refused STATUS DEV CMD...: CMD exits STATUS and names DEV as busy
refused() {
	local want=$1 dev=$2
	shift 2
	expect "$want" "$@"
	grep -qF "$dev: $BUSY" "$T/err" || { cat "$T/err"; fail "'$*': no '$dev: $BUSY' message"; }
}

# the images' contents (hashes) and change times
images_state() {
	sha256sum "${D[@]}"
	stat -c '%n %y %z %s' "${D[@]}"
}

D=()
for i in 0 1 2; do
	truncate -s 128M "$T/d$i.img"
	D+=("$T/d$i.img")
done
expect 0 "$BKFS" format --bucket-size 256k "${D[@]}"
IMG=$(IFS=:; echo "${D[*]}")
MNT=$T/mnt
mkdir -p "$MNT" "$T/mnt2" "$T/mnt3"

# ---- a read-write mount with files on it
fuse_first_mount
mkdir "$MNT/dir"
head -c 3000000 /dev/urandom > "$T/big"
cp "$T/big" "$MNT/dir/big"
for i in $(seq 1 40); do echo "small file $i" > "$MNT/dir/f$i"; done
sync "$MNT/dir/big" "$MNT/dir/f40"

# ---- every other bkfs command is refused while it is mounted, and writes nothing
kill -STOP "$PID"
before=$(images_state)
refused 8 "${D[0]}" "$BKFS" fsck -y "${D[@]}"
refused 8 "${D[0]}" "$BKFS" fsck -p "${D[@]}"
refused 8 "${D[0]}" "$BKFS" fsck -n "${D[@]}"
refused 8 "${D[0]}" "$BKFS" fsck "${D[@]}" < /dev/null # the default mode
refused 1 "${D[0]}" "$BKFS" gc-gens "${D[@]}"
grep -qF "the mount runs generation GC itself; unmount to run it offline" "$T/err" ||
	fail "gc-gens does not say the mount runs it: $(cat "$T/err")"
refused 1 "${D[0]}" "$BKFS" erasure-code --data 2 --parity 1 "${D[@]}"
refused 1 "${D[0]}" "$BKFS" reflink "${D[@]}" /dir/big /dir/copy
refused 1 "${D[0]}" "$BKFS" debug corrupt node_unreadable "${D[@]}"
refused 1 "${D[0]}" "$BKFS" debug corrupt stale_dirty_ptr --seed 3 "${D[@]}"
refused 1 "${D[0]}" "$BKFS" format "${D[@]}"
refused 1 "${D[0]}" "$BKFS" format --force "${D[@]}"
refused 1 "${D[1]}" "$BKFS" format --force "${D[1]}" # one member alone
refused 1 "${D[2]}" "$BKFS" format --force --label x "${D[2]}"
refused 1 "${D[0]}" "$BKFS" mount "$IMG" "$T/mnt2"
refused 1 "${D[0]}" "$BKFS" mount -o ro "$IMG" "$T/mnt2"
mountpoint -q "$T/mnt2" && fail "a second mount of a mounted filesystem came up"
refused 1 "${D[0]}" "$BKFS" list "${D[@]}"
refused 1 "${D[0]}" "$BKFS" usage "${D[@]}"
refused 1 "${D[1]}" "$BKFS" show-super "${D[1]}"
refused 1 "${D[0]}" "$BKFS" scan "${D[@]}"
refused 1 "${D[0]}" "$BKFS" extract "${D[@]}" "$T/x"
after=$(images_state)
[ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after"); fail "a refused command changed the images"; }
kill -CONT "$PID"
echo "refused while mounted: every command, images unchanged"

# ---- the mount goes on working; unmounted, everything is intact
cmp "$MNT/dir/big" "$T/big" || fail "big file differs on the mount after the refusals"
cp "$T/big" "$MNT/after"
cmp "$MNT/after" "$T/big" || fail "a file written after the refusals differs"
unmount_fg
expect 0 "$BKFS" fsck -n "${D[@]}"
expect 0 "$BKFS" extract "${D[@]}" "$T/x"
cmp "$T/x/dir/big" "$T/big" && cmp "$T/x/after" "$T/big" || fail "extract: content differs"
for i in $(seq 1 40); do
	[ "$(cat "$T/x/dir/f$i")" = "small file $i" ] || fail "extract: dir/f$i differs"
done
rm -rf "$T/x"

# ---- readers share: two read-only mounts, fsck -n and list at the same time
fuse_first_mount -o ro
"$BKFS" mount -o ro "$IMG" "$T/mnt2" > "$T/mount2.log" 2>&1 || { cat "$T/mount2.log"; fail "second read-only mount"; }
"$BKFS" fsck -n "${D[@]}" > "$T/fsck1" 2>&1 & r1=$!
"$BKFS" list -b dirents "${D[@]}" > "$T/list1" 2>&1 & r2=$!
"$BKFS" fsck -n "${D[@]}" > "$T/fsck2" 2>&1 & r3=$!
wait "$r1" || { cat "$T/fsck1"; fail "fsck -n beside read-only mounts"; }
wait "$r2" || { cat "$T/list1"; fail "list beside read-only mounts"; }
wait "$r3" || { cat "$T/fsck2"; fail "a second fsck -n at the same time"; }
grep -q "after" "$T/list1" || fail "list beside read-only mounts shows no dirent 'after'"
cmp "$MNT/dir/big" "$T/big" && cmp "$T/mnt2/after" "$T/big" || fail "read-only mounts: content differs"
# writers are refused while readers hold it
refused 8 "${D[0]}" "$BKFS" fsck -y "${D[@]}"
refused 1 "${D[0]}" "$BKFS" gc-gens "${D[@]}"
refused 1 "${D[2]}" "$BKFS" format --force "${D[2]}"
refused 1 "${D[0]}" "$BKFS" mount "$IMG" "$T/mnt3"
fusermount3 -u "$T/mnt2" || fail "unmount of the second read-only mount"
unmount_fg
# the daemon of the second mount lets go once it has exited
for _ in $(seq 1 200); do
	flock -n -x "${D[0]}" true && break
	sleep 0.05
done
echo "read-only sharing: ok"

# ---- a lock taken with flock(1): shared refuses writers, exclusive everyone
exec 9< "${D[1]}"
flock -n -s 9 || fail "flock -s on an idle image"
refused 8 "${D[1]}" "$BKFS" fsck -y "${D[@]}"
refused 1 "${D[1]}" "$BKFS" gc-gens "${D[@]}"
refused 1 "${D[1]}" "$BKFS" format --force "${D[1]}"
expect 0 "$BKFS" fsck -n "${D[@]}"
expect 0 "$BKFS" list "${D[@]}"
flock -n -x 9 || fail "flock -x on an image nobody else holds"
refused 8 "${D[1]}" "$BKFS" fsck -n "${D[@]}"
refused 1 "${D[1]}" "$BKFS" list "${D[@]}"
refused 1 "${D[1]}" "$BKFS" mount -o ro "$IMG" "$T/mnt2"
exec 9<&-
expect 0 "$BKFS" gc-gens "${D[@]}" # free again
expect 0 "$BKFS" fsck -n "${D[@]}"
echo "flock(1): ok"

# ---- a block device: the mount claims it O_EXCL; an O_EXCL holder refuses writers
if ! command -v losetup > /dev/null 2>&1 || ! command -v perl > /dev/null 2>&1; then
	echo "block device: skipped (no losetup or perl)"
	echo "exclusive: ok"
	exit 0
fi
truncate -s 64M "$T/loop.img"
LOOP=$(losetup -f --show "$T/loop.img" 2>/dev/null) || LOOP=""
if [ -z "$LOOP" ]; then
	echo "block device: skipped (losetup cannot attach here)"
	echo "exclusive: ok"
	exit 0
fi
expect 0 "$BKFS" format "$LOOP"
IMG=$LOOP
fuse_first_mount
echo "on a loop device" > "$MNT/f"
sync "$MNT/f"
refused 8 "$LOOP" "$BKFS" fsck -y "$LOOP"
refused 1 "$LOOP" "$BKFS" format --force "$LOOP"
# the claim itself, as any other program sees it
perl -MFcntl -e 'exit(sysopen(my $f, $ARGV[0], O_RDONLY | O_EXCL) ? 0 : $!{EBUSY} ? 3 : 4)' "$LOOP"
rc=$?
[ "$rc" = 3 ] || fail "O_EXCL open of a mounted loop device: exit $rc (want 3: EBUSY)"
unmount_fg
# an outside holder of the O_EXCL claim (no flock at all) refuses writers;
# readers do not claim
perl -MFcntl -e 'sysopen(my $f, $ARGV[0], O_RDONLY | O_EXCL) or exit 1; open(my $o, ">", $ARGV[1]); close($o); sleep 30' \
	"$LOOP" "$T/claimed" & holder=$!
for _ in $(seq 1 200); do
	[ -e "$T/claimed" ] && break
	sleep 0.05
done
[ -e "$T/claimed" ] || fail "perl could not claim $LOOP"
refused 8 "$LOOP" "$BKFS" fsck -y "$LOOP"
expect 0 "$BKFS" fsck -n "$LOOP"
kill "$holder"
wait "$holder" 2>/dev/null
expect 0 "$BKFS" fsck -y "$LOOP"
losetup -d "$LOOP" && LOOP=""
echo "block device: ok"
echo "exclusive: ok"
