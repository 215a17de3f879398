#!/bin/bash
# fuse_posix.sh - POSIX behaviour of the FUSE mount beyond what real clients
# exercise (fuse_clients.sh):
#   - a file unlinked while open (pjdfstest unlink/14.t style): fstat says
#     nlink 0, no name is left in the directory (ls -a), its data stays
#     readable and writable until the last close, statfs shows its space
#     free after that close; the same for a file renamed over while open;
#   - the server killed (kill -9) while such a file is open: the orphan
#     list holds it, the next mount removes it (space free again), fsck -n
#     clean;
#   - directories report a non-zero st_size (fsck -n still clean);
#   - an image whose root directory cannot be read is refused by the mount
#     (exit 1, "run bkfs fsck"), read-write and read-only, instead of
#     serving EIO; after fsck -y it mounts;
#   - setuid/setgid cleared by writes, truncates, O_TRUNC opens of callers
#     without CAP_FSETID and by chown, kept otherwise, as the VFS does on a
#     local filesystem (lib/suid_check.py; the mount clears them itself
#     when the kernel hands that over, FUSE_HANDLE_KILLPRIV_V2), also after
#     a remount;
#   - fallocate in every mode FUSE passes on, and lseek SEEK_DATA/SEEK_HOLE,
#     by random operations against a model (lib/falloc_model.py), the
#     content compared again after a remount; fsck -n clean;
#   - the disk under the image fills up (a sparse image on a 40 MiB tmpfs):
#     the failing write returns an error, the mount says on stderr that it
#     is read-only, later creates fail with EROFS, reads go on, the server
#     exits 2 after the unmount saying why; on a host with space every file
#     whose fsync returned 0 is intact and fsck -n is clean. (Skipped when
#     a tmpfs cannot be mounted here.)
# Skipped (exit 77) without /dev/fuse, fusermount3 or python3.
set -euo pipefail

: "${BKFS:?}" "${TMPDIR:?}"
T=$TMPDIR
IMG=$T/fs.img
MNT=$T/mnt
HOST=$T/host
DIR=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
step() { echo "== $*"; }

. "$DIR/lib/fuse.bash"
fuse_require
command -v python3 > /dev/null 2>&1 || skip "no python3"
cleanup() {
	exec 7<&- 8<&- 2>/dev/null || true
	fuse_cleanup
	mountpoint -q "$HOST" 2>/dev/null && umount "$HOST"
	return 0
}
trap cleanup EXIT
mkdir -p "$MNT" "$HOST"

avail() { stat -f -c '%a %S' "$MNT" | awk '{ print $1 * $2 }'; }
# wait until statfs offers at least $1 bytes (the last release of a file
# reaches the server after close() returned)
wait_avail() {
	for _ in $(seq 1 100); do
		[ "$(avail)" -ge "$1" ] && return 0
		sleep 0.05
	done
	fail "statfs offers $(avail) bytes, want at least $1 ($2)"
}
no_hidden_names() {
	if ls -a "$MNT" | grep -q '^\.bkfs_hidden'; then
		ls -a "$MNT"
		fail "hidden names in the root ($1)"
	fi
}

truncate -s 512M "$IMG"
"$BKFS" format "$IMG" > /dev/null
# allow_other: the setuid checks act as nobody too
fuse_first_mount -o allow_other
MB8=$((8 << 20))

step "unlink of an open file: nlink 0, no name, data until the last close, then space free"
head -c "$MB8" /dev/urandom > "$T/ref"
base=$(avail)
cp "$T/ref" "$MNT/open"
exec 7<> "$MNT/open"
rm "$MNT/open"
[ "$(stat -L -c %h /proc/$$/fd/7)" = 0 ] || fail "fstat of an unlinked open file: nlink $(stat -L -c %h /proc/$$/fd/7), not 0"
[ ! -e "$MNT/open" ] || fail "the unlinked name is still there"
[ "$(ls -A "$MNT" | wc -l)" = 0 ] || { ls -A "$MNT"; fail "names left in the directory"; }
no_hidden_names "unlink"
cmp "$T/ref" /proc/$$/fd/7 || fail "data of the unlinked open file"
printf 'rewritten' | dd of=/proc/$$/fd/7 bs=1 seek=4096 conv=notrunc status=none
[ "$(dd if=/proc/$$/fd/7 bs=1 skip=4096 count=9 status=none)" = rewritten ] ||
	fail "write to the unlinked open file"
[ "$(avail)" -lt $((base - MB8 / 2)) ] || fail "space of the open unlinked file freed before its close"
exec 7<&-
wait_avail $((base - MB8 / 8)) "after the last close"
echo "nlink 0 while open, $(avail) bytes offered after close (base $base)"

step "rename over an open file"
cp "$T/ref" "$MNT/victim"
echo new > "$MNT/newer"
exec 7< "$MNT/victim"
mv "$MNT/newer" "$MNT/victim"
[ "$(stat -L -c %h /proc/$$/fd/7)" = 0 ] || fail "fstat of a file renamed over while open: nlink not 0"
no_hidden_names "rename"
cmp "$T/ref" /proc/$$/fd/7 || fail "data of the replaced open file"
[ "$(cat "$MNT/victim")" = new ] || fail "content of the new name"
exec 7<&-
wait_avail $((base - MB8 / 8)) "after the replaced file's close"
rm "$MNT/victim"

step "directories have a size"
mkdir "$MNT/dir"
[ "$(stat -c %s "$MNT/dir")" -gt 0 ] || fail "directory st_size 0"
[ "$(stat -c %s "$MNT")" -gt 0 ] || fail "root st_size 0"

step "setuid/setgid after writes, truncates and chowns"
mkdir "$MNT/suid"
python3 "$DIR/lib/suid_check.py" "$MNT/suid" || fail "setuid/setgid bits"
find "$MNT/suid" -type f -printf '%f %m\n' | sort > "$T/suid.modes"

step "RENAME_WHITEOUT: a character device 0:0 takes the source name"
echo moved > "$MNT/dir/src"
python3 - "$MNT/dir" <<'PY' || fail "renameat2 RENAME_WHITEOUT"
import ctypes, os, stat, sys
libc = ctypes.CDLL(None, use_errno=True)
d = sys.argv[1].encode()
if libc.renameat2(-100, d + b"/src", -100, d + b"/dst", 4) != 0:
    sys.exit("renameat2: " + os.strerror(ctypes.get_errno()))
st = os.lstat(d + b"/src")
if not stat.S_ISCHR(st.st_mode) or st.st_rdev != 0:
    sys.exit("the source name is not a whiteout: mode 0%o rdev %d" % (st.st_mode, st.st_rdev))
if open(d + b"/dst").read() != "moved\n":
    sys.exit("the renamed file's content")
PY
rm "$MNT/dir/src" "$MNT/dir/dst"
mkdir -p "$T/lower" "$T/ov" "$MNT/upper" "$MNT/work"
echo low > "$T/lower/x"
if mount -t overlay overlay -o "lowerdir=$T/lower,upperdir=$MNT/upper,workdir=$MNT/work" "$T/ov" 2>/dev/null; then
	rm "$T/ov/x"
	[ ! -e "$T/ov/x" ] && [ -c "$MNT/upper/x" ] || { umount "$T/ov"; fail "overlayfs whiteout on the mount"; }
	umount "$T/ov"
	echo "overlayfs with its upper directory on the mount: whiteouts work"
fi
rm -rf "$MNT/upper" "$MNT/work"

step "fallocate and SEEK_DATA/SEEK_HOLE against a model"
python3 "$DIR/lib/falloc_model.py" "$MNT/dir/model1" 1500 1
python3 "$DIR/lib/falloc_model.py" "$MNT/dir/model2" 1500 2 punch
mv "$MNT/dir/model1.model" "$T/model1.expect"
rm "$MNT/dir/model2.model"
cmp "$T/model1.expect" "$MNT/dir/model1" || fail "content differs from the model"
unmount_fg
fsck_clean "fallocate"
mount_fg
cmp "$T/model1.expect" "$MNT/dir/model1" || fail "content differs from the model after a remount"
find "$MNT/suid" -type f -printf '%f %m\n' | sort | cmp - "$T/suid.modes" || fail "setuid/setgid modes after a remount"
[ "$(stat -c %s "$MNT/dir/model2")" -gt 0 ] && [ "$(stat -c %b "$MNT/dir/model2")" = 0 ] ||
	fail "punched file: size $(stat -c %s "$MNT/dir/model2"), blocks $(stat -c %b "$MNT/dir/model2")"

step "crash while an unlinked file is open: the next mount removes it"
base=$(avail)
cp "$T/ref" "$MNT/crash"
exec 8< "$MNT/crash"
rm "$MNT/crash"
: > "$MNT/anchor"
xfs_io -c fsync "$MNT/anchor" 2>/dev/null || python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)' "$MNT/anchor"
kill_fg
exec 8<&-
n=$("$BKFS" list -b orphans "$IMG" | grep -c . || true)
[ "$n" -ge 1 ] || fail "no orphan list entry after the crash"
mount_fg
grep -q "removed 1 leftover" "$T/mount.log" || { cat "$T/mount.log"; fail "the mount did not remove the orphan"; }
wait_avail $((base - MB8 / 8)) "after the orphan's removal"
no_hidden_names "after the crash"
unmount_fg
[ "$("$BKFS" list -b orphans "$IMG" | grep -c . || true)" = 0 ] || fail "orphan list not empty after the remount"
fsck_clean "the crash with an open unlinked file"

step "a root directory that cannot be read: the mount refuses, fsck repairs"
cp "$IMG" "$T/noroot.img"
"$BKFS" debug corrupt root_inode_missing "$T/noroot.img" > /dev/null || fail "debug corrupt root_inode_missing"
for o in rw ro; do
	rc=0
	timeout 30 "$BKFS" mount -f -o "$o" "$T/noroot.img" "$MNT" > "$T/noroot.log" 2>&1 || rc=$?
	[ "$rc" = 1 ] && grep -q "root directory cannot be read" "$T/noroot.log" ||
		{ cat "$T/noroot.log"; fail "mount -o $o of an image without its root: exit $rc, not 1 with the reason"; }
done
rc=0; "$BKFS" fsck -y "$T/noroot.img" > /dev/null 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "fsck -y of the image without its root: exit $rc"
IMG=$T/noroot.img mount_fg
ls "$MNT" > /dev/null || fail "the repaired image's root"
unmount_fg
rm "$T/noroot.img"

step "the disk under the image fills up: read-only, synced files intact"
if ! mount -t tmpfs -o size=40m tmpfs "$HOST" 2>/dev/null; then
	echo "skipped: cannot mount a tmpfs here"
	exit 0
fi
IMG=$HOST/fs.img
truncate -s 512M "$IMG"
"$BKFS" format "$IMG" > /dev/null
mount_fg
head -c 1M /dev/urandom > "$T/mb"
synced=0
for i in $(seq 1 200); do
	if ! python3 - "$T/mb" "$MNT/f$i" 2> "$T/werr" <<'PY'
import os, sys
data = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.fsync(fd)
os.close(fd)
PY
	then
		break
	fi
	synced=$i
done
[ "$synced" -lt 200 ] || fail "200 MiB written on a 40 MiB host without an error"
echo "$synced files synced, then: $(tail -1 "$T/werr")"
grep -q "read-only from now on" "$T/mount.log" || { cat "$T/mount.log"; fail "the mount did not say it went read-only"; }
if touch "$MNT/late" 2> "$T/terr"; then fail "a create after the write error succeeded"; fi
grep -q "Read-only file system" "$T/terr" || fail "create after the error: $(cat "$T/terr"), not EROFS"
if mkdir "$MNT/lated" 2>/dev/null; then fail "a mkdir after the write error succeeded"; fi
cmp "$T/mb" "$MNT/f1" || fail "a synced file does not read back on the read-only mount"
fusermount3 -u "$MNT" || fail "fusermount3 -u"
rc=0
wait "$PID" || rc=$?
PID=""
[ "$rc" = 2 ] || { cat "$T/mount.log"; fail "bkfs mount exited $rc after a write error, not 2"; }
grep -q "unmounted read-only after a write error" "$T/mount.log" || fail "no reason at unmount"
cp --sparse=always "$IMG" "$T/full.img"
umount "$HOST"
IMG=$T/full.img
fsck_clean "the write error"
mount_fg
for i in $(seq 1 "$synced"); do
	cmp "$T/mb" "$MNT/f$i" || fail "synced file f$i differs after the remount"
done
[ ! -e "$MNT/late" ] || fail "the refused create exists"
unmount_fg
fsck_clean "the remount after the write error"
echo "all $synced synced files intact"
