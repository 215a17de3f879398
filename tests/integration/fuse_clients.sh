#!/bin/bash
# fuse_clients.sh - real clients on a read-write FUSE mount (DESIGN §7):
# cp -a and tar round trips of a generated tree, rsync -aHX (with an update
# pass: rename over existing files, deletions), git init/add/commit/log/gc/
# fsck/clone, fio with --verify=crc32c (aligned random writes and unaligned
# sequential writes), stress-ng's filesystem stressors, and direct POSIX
# checks (rename cases, unlink of an open file, truncate, sparse writes,
# xattrs, statfs, hard-link attributes, open files unlinked or renamed
# over), cp within the mount (copy_file_range shares the data: free space
# unchanged, copies independent; copy_file_range at odd offsets). Then:
# unmount, `bkfs fsck -n` clean, `bkfs usage` shows the reflink counter, and
# `bkfs extract` gives back exactly what the mount showed. Finally the daemon
# (no -f) and read-only modes, a full filesystem (ENOSPC, then usable again),
# and the server killed (kill -9) in the middle of a workload (cp within the
# mount included), three times: fsck -n clean.
#
# Clients that are not installed are skipped (rsync, git, fio, stress-ng);
# the whole test is skipped (exit 77) without /dev/fuse or fusermount3, or
# when this environment cannot mount FUSE at all.
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR. FC_FILES (default 1000,
# 300 for a sanitizer build) sets the size of the generated tree.
set -euo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
# a sanitizer build is ~10x slower: a smaller tree keeps it within the timeout
if grep -q __asan_init "$BKFS" 2>/dev/null; then
	FC_FILES=${FC_FILES:-300}
	FIO_MB=2
else
	FC_FILES=${FC_FILES:-1000}
	FIO_MB=8
fi
T=$TMPDIR
IMG=$T/fs.img
MNT=$T/mnt
SRC=$T/src

. "$(cd "$(dirname "$0")" && pwd)/lib/common.bash"
step() { echo "== $* ($(date +%s.%N | cut -c1-14))"; }

. "$(cd "$(dirname "$0")" && pwd)/lib/fuse.bash"
fuse_require
trap fuse_cleanup EXIT

# processes that have the image open (the daemon, for background mounts)
img_users() {
	find /proc/[0-9]*/fd -maxdepth 1 -lname "$(realpath "$IMG")" 2>/dev/null | cut -d/ -f3 | sort -u || true
}

# Files unlinked while open must never show a name (older versions moved
# them to hidden names in the root until the last release, which FUSE sends
# asynchronously after close() returned): none may appear.
settle() {
	for _ in $(seq 1 100); do
		[ -z "$(find "$MNT" -maxdepth 1 -name '.bkfs_hidden*' -print -quit)" ] && return 0
		sleep 0.05
	done
	find "$MNT" -maxdepth 1 -name '.bkfs_hidden*' | head
	fail "hidden files of closed files remain"
}

# ---- comparison helpers ----
# manifest (lib/common.bash) leaves out link counts: the kernel caches
# attributes for a second, so st_nlink of another link of a file may lag on
# the mount. NODIRTIMES=1 leaves out directory mtimes.
# link counts and hard-link groups (only on local trees and extracted images)
links() {
	(cd "$1" && find . ! -type d -printf '%p nlink=%n\n' && find . -type d -printf '%p nlink=%n\n') | LC_ALL=C sort
	(cd "$1" && find . ! -type d -links +1 -printf '%i %p\n') |
		LC_ALL=C sort -k2 | awk '{ g[$1] = g[$1] " " $2 } END { for (i in g) print "group" g[i] }' | LC_ALL=C sort
}
# content: checksums of every regular file
sums() {
	(cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r md5sum)
}

# compare A B LABEL [links]: content (diff -r), metadata, xattrs, checksums;
# with "links", link counts and hard-link groups too
compare() {
	local a=$1 b=$2 l=$3
	diff -r --no-dereference --exclude-from="$T/specials" "$a" "$b" > "$T/diff.$l" 2>&1 ||
		{ head -20 "$T/diff.$l"; fail "$l: content differs"; }
	manifest "$a" > "$T/man.a.$l"
	manifest "$b" > "$T/man.b.$l"
	diff "$T/man.a.$l" "$T/man.b.$l" > "$T/mandiff.$l" || { head -20 "$T/mandiff.$l"; fail "$l: metadata differs"; }
	xattrs "$a" > "$T/xa.a.$l"
	xattrs "$b" > "$T/xa.b.$l"
	diff "$T/xa.a.$l" "$T/xa.b.$l" > /dev/null || { diff "$T/xa.a.$l" "$T/xa.b.$l" | head; fail "$l: xattrs differ"; }
	if [ "${4:-}" = links ]; then
		links "$a" > "$T/ln.a.$l"
		links "$b" > "$T/ln.b.$l"
		diff "$T/ln.a.$l" "$T/ln.b.$l" > /dev/null || { diff "$T/ln.a.$l" "$T/ln.b.$l" | head; fail "$l: link counts differ"; }
	fi
	echo "$l: identical ($(wc -l < "$T/man.a.$l") entries, $(wc -l < "$T/xa.a.$l") xattrs)"
}

# ---- the source tree ----
step "source tree"
"$GENTREE" --seed 11 --files "$FC_FILES" --big-dir $((FC_FILES / 4)) --max-size 512k --quiet "$SRC"
X=$SRC/extra
mkdir -p "$X/sub"
: > "$X/empty"
head -c 3000000 /dev/urandom > "$X/big"
truncate -s 12M "$X/sparse"
printf 'tail' | dd of="$X/sparse" bs=1 seek=$((12 * 1024 * 1024 - 4)) conv=notrunc status=none
head -c 100 /dev/urandom > "$X/small_sparse"
truncate -s 1M "$X/small_sparse"
echo linked > "$X/hl_a"
ln "$X/hl_a" "$X/sub/hl_b"
long=$(printf 'x%.0s' $(seq 1 3000))
ln -s "$long/target" "$X/long_link"
n255=$(printf 'n%.0s' $(seq 1 255))
echo "long name" > "$X/$n255"
if have setfattr; then
	setfattr -n user.big -v "0s$(head -c 2000 /dev/urandom | base64 -w0)" "$X/big"
	setfattr -n user.empty "$X/empty"
	setfattr -n trusted.t -v hello "$X/sub" 2>/dev/null || true
fi
find "$SRC" \( -type p -o -type s -o -type c -o -type b \) -printf '%f\n' | sort -u > "$T/specials"
echo "source: $(find "$SRC" | wc -l) entries, $(du -sh "$SRC" | cut -f1)"

# ---- format and mount ----
step "format and mount"
truncate -s 2G "$IMG"
"$BKFS" format "$IMG" > "$T/format.log" 2>&1 || { cat "$T/format.log"; fail "format"; }
mkdir -p "$MNT"
fuse_first_mount
grep -q " $MNT fuse.bkfs " /proc/self/mounts || fail "mount not listed as fuse.bkfs"
# a second mount of the same image is refused
mkdir "$T/mnt2"
rc=0; "$BKFS" mount "$IMG" "$T/mnt2" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "in use" "$T/err" || { cat "$T/err"; fail "second mount of a mounted image: exit $rc"; }
mountpoint -q "$T/mnt2" && fail "second mount of a mounted image succeeded"

# ---- cp -a ----
step "cp -a"
cp -a "$SRC" "$MNT/cp"
compare "$SRC" "$MNT/cp" cp-in
# hard links must be links on the mount: one inode number per group
[ "$(stat -c %i "$MNT/cp/extra/hl_a")" = "$(stat -c %i "$MNT/cp/extra/sub/hl_b")" ] ||
	fail "cp -a: hard link became a copy"
mkdir "$T/cp_out"
cp -a "$MNT/cp/." "$T/cp_out/"
compare "$SRC" "$T/cp_out" cp-out links

# ---- tar ----
step "tar"
TAROPTS=(--xattrs "--xattrs-include=*" --sparse --numeric-owner)
mkdir "$MNT/tar" "$T/tar_out"
(cd "$SRC" && tar cf - "${TAROPTS[@]}" .) | (cd "$MNT/tar" && tar xpf - "${TAROPTS[@]}" --warning=no-timestamp)
# the mount itself becomes the root of the extracted tree: copy its metadata
touch -r "$SRC" "$MNT/tar"
chmod --reference="$SRC" "$MNT/tar"
sleep 1.1 # let cached attributes (link counts) expire before tar reads them
(cd "$MNT/tar" && tar cf - "${TAROPTS[@]}" .) | (cd "$T/tar_out" && tar xpf - "${TAROPTS[@]}" --warning=no-timestamp)
compare "$SRC" "$MNT/tar" tar-in
compare "$SRC" "$T/tar_out" tar-out links

# ---- POSIX details ----
step "posix"
P=$MNT/posix
mkdir "$P"
cd "$P"
echo one > f1
echo two > f2
mv f1 f2                                    # rename over an existing file
[ "$(cat f2)" = one ] && [ ! -e f1 ] || fail "rename over a file"
mkdir -p d1/sub d2 d3/full
echo x > d1/sub/x
echo y > d3/full/y
mv d1 d2/moved                              # directory to another parent
[ -f d2/moved/sub/x ] || fail "rename of a directory"
mkdir d4
mv -T d2/moved d4                           # directory over an empty directory
[ -f d4/sub/x ] && [ ! -e d2/moved ] || fail "rename over an empty directory"
if mv -T d4 d3 2>/dev/null; then fail "rename over a non-empty directory succeeded"; fi
if mv d4 d4/sub/inside 2>/dev/null; then fail "directory moved below itself"; fi
[ "$(stat -c %h d4)" = 3 ] && [ "$(stat -c %h d2)" = 2 ] || fail "directory link counts after renames"
ln f2 f2link
perl -e 'rename($ARGV[0], $ARGV[1]) or die "$!\n"' f2 f2link # same inode: nothing happens
[ -e f2 ] && [ -e f2link ] || fail "rename onto another link of the same file"
# unlink while open: readable and writable until closed, then gone without
# a trace; its directory can go meanwhile
mkdir odir
head -c 50000 /dev/urandom > odir/open_file
want=$(md5sum < odir/open_file)
exec 3< odir/open_file
exec 4>> odir/open_file
rm odir/open_file
rmdir odir || fail "rmdir of a directory whose file is open but unlinked"
[ "$(md5sum <&3)" = "$want" ] || fail "unlinked open file not readable"
echo more >&4 || fail "unlinked open file not writable"
exec 3<&- 4>&-
# replaced by a rename while open
echo old > ren_target
exec 3< ren_target
echo new > ren_src
mv ren_src ren_target
[ "$(cat <&3)" = old ] && [ "$(cat ren_target)" = new ] || fail "rename over an open file"
exec 3<&-
settle
# hard links share attributes at once (no stale cached link count)
echo h > hl1
stat hl1 > /dev/null
ln hl1 hl2
[ "$(stat -c %h hl1)" = 2 ] || fail "link count of the first link is stale"
chmod 0604 hl2
[ "$(stat -c %a hl1)" = 604 ] || fail "mode through the other link is stale"
rm hl2
[ "$(stat -c %h hl1)" = 1 ] || fail "link count after unlink of the other link"
# unaligned writes, growth, holes, truncation
head -c 10000 /dev/urandom > rmw
cp rmw "$T/rmw"
for off in 1 4095 4097 7000 9999 12345 20000; do
	printf 'ABCDEFG' | dd of=rmw bs=1 seek=$off conv=notrunc status=none
	printf 'ABCDEFG' | dd of="$T/rmw" bs=1 seek=$off conv=notrunc status=none
done
cmp rmw "$T/rmw" || fail "unaligned writes"
printf end | dd of=sparse bs=1 seek=$((50 * 1024 * 1024)) status=none
[ "$(stat -c %s sparse)" = $((50 * 1024 * 1024 + 3)) ] || fail "sparse file size"
[ "$(stat -c %b sparse)" -le 64 ] || fail "sparse file not sparse ($(stat -c %b sparse) blocks)"
truncate -s 5000 rmw; truncate -s 5000 "$T/rmw"
truncate -s 300000 rmw; truncate -s 300000 "$T/rmw"
cmp rmw "$T/rmw" || fail "truncate shrink then grow"
printf 'appended' >> rmw; printf 'appended' >> "$T/rmw"
cmp rmw "$T/rmw" || fail "append"
chmod 0640 rmw && [ "$(stat -c %a rmw)" = 640 ] || fail chmod
chown 1234:5678 rmw && [ "$(stat -c %u:%g rmw)" = 1234:5678 ] || fail chown
touch -d '2001-02-03 04:05:06.123456789' rmw
[ "$(stat -c %y rmw)" = "2001-02-03 04:05:06.123456789 +0000" ] ||
	[ "$(TZ=UTC stat -c %y rmw)" = "2001-02-03 04:05:06.123456789 +0000" ] || fail "utimens: $(stat -c %y rmw)"
ln -s "../posix/rmw" sl
[ "$(readlink sl)" = ../posix/rmw ] || fail readlink
mkfifo fifo
mknod chr c 1 3 2>/dev/null || true
if have setfattr; then
	setfattr -n user.a -v 1 rmw
	setfattr -n user.b -v 22 rmw
	setfattr -x user.a rmw
	[ "$(getfattr --only-values -n user.b rmw)" = 22 ] || fail getxattr
	[ "$(getfattr -d -m - rmw | grep -c '^user')" = 1 ] || fail "listxattr/removexattr"
	if getfattr -n user.a rmw >/dev/null 2>&1; then fail "removed xattr still there"; fi
fi
rm -rf d3 && [ ! -e d3 ] || fail "rm -rf"
# statfs: a 20 MiB file takes about 20 MiB of free space
free0=$(stat -f -c %f .)
dd if=/dev/zero of=filler bs=1M count=20 status=none # large writes: few FUSE requests
sync filler
free1=$(stat -f -c %f .)
bs=$(stat -f -c %S .)
[ $(((free0 - free1) * bs)) -ge 16000000 ] || fail "statfs free blocks did not drop ($free0 -> $free1)"
rm filler
cd "$T"

# ---- cp on the mount shares data (copy_file_range -> reflink) ----
step "cp shares data"
RL=$MNT/reflink
mkdir "$RL"
head -c 30000123 /dev/urandom > "$T/big"
cp "$T/big" "$RL/big"
sync "$RL/big"
bs=$(stat -f -c %S "$RL")
free0=$(stat -f -c %f "$RL")
cp "$RL/big" "$RL/copy"
cp "$RL/copy" "$RL/copy2"
sync "$RL/copy2"
free1=$(stat -f -c %f "$RL")
cmp "$RL/big" "$RL/copy" && cmp "$RL/big" "$RL/copy2" || fail "cp on the mount: content differs"
# two 30 MB copies take no data space (metadata only: under 2 MB)
[ $(((free0 - free1) * bs)) -lt 2000000 ] ||
	fail "cp on the mount did not share data: free space dropped $(((free0 - free1) * bs)) bytes"
# copy_file_range at offsets: same place within a block (edges copied, the
# rest shared), different places (copied), past the end (cut)
cp "$T/big" "$T/expect"
python3 - "$RL/big" "$RL/copy" "$T/expect" <<'PY' || fail "copy_file_range at offsets"
import os, sys
src, dst, exp = sys.argv[1:4]
def cfr(s, so, d, do, n):
	fs, fd = os.open(s, os.O_RDONLY), os.open(d, os.O_WRONLY)
	done = 0
	while done < n:
		r = os.copy_file_range(fs, fd, n - done, so + done, do + done)
		if r == 0:
			break
		done += r
	os.close(fs); os.close(fd)
	return done
def model(s, so, d, do, n):
	with open(s, "rb") as f:
		f.seek(so); b = f.read(n)
	with open(d, "r+b") as f:
		f.seek(do); f.write(b)
	return len(b)
for so, do, n in ((100, 5000000 + 100, 3000000), (7, 12000000, 1000000), (29000000, 40000000, 5000000)):
	got = cfr(src, so, dst, do, n)
	want = model(src, so, exp, do, n)
	if got != want:
		sys.exit("copy_file_range(%d, %d, %d) copied %d, want %d" % (so, do, n, got, want))
with open(dst, "rb") as a, open(exp, "rb") as b:
	if a.read() != b.read():
		sys.exit("content differs after copy_file_range at offsets")
PY
# the copies change on their own: overwrite, truncate, remove
cp "$T/big" "$T/expect2"
printf 'changed' | dd of="$RL/copy2" bs=1 seek=1234567 conv=notrunc status=none
printf 'changed' | dd of="$T/expect2" bs=1 seek=1234567 conv=notrunc status=none
truncate -s 20000000 "$RL/copy2" "$T/expect2"
cmp "$RL/copy2" "$T/expect2" || fail "reflinked copy after overwrite and truncate"
cmp "$RL/copy" "$T/expect" || fail "a reflinked copy changed through another one"
cmp "$RL/big" "$T/big" || fail "changes to reflinked copies reached the original"
cp "$RL/big" "$RL/gone"
rm "$RL/gone"
if cp --reflink=always "$RL/big" "$RL/clone" 2> "$T/clone.err"; then
	cmp "$RL/big" "$RL/clone" || fail "cp --reflink=always: content differs"
	echo "cp --reflink=always: works"
else
	echo "cp --reflink=always: refused as documented ($(head -1 "$T/clone.err"))"
fi
rm -f "$RL/clone"

# ---- rsync ----
if have rsync; then
	step "rsync"
	MOD=$T/mod
	cp -a "$SRC" "$MOD"
	rsync -aHX "$MOD/" "$MNT/rs/"
	# change the source: rewrite, grow, shrink, delete, add, chmod
	i=0
	while IFS= read -r -d '' f; do
		case $((i % 5)) in
		0) head -c $((i * 37 % 9000 + 1)) /dev/urandom > "$f" ;;
		1) head -c 5000 /dev/urandom >> "$f" ;;
		2) truncate -s $((i % 300)) "$f" ;;
		3) rm -f "$f" ;;
		4) chmod 0600 "$f" ;;
		esac
		i=$((i + 1))
		[ "$i" -lt 200 ] || break
	done < <(find "$MOD" -type f -links 1 -print0 | LC_ALL=C sort -z)
	mkdir -p "$MOD/newdir/deeper"
	head -c 70000 /dev/urandom > "$MOD/newdir/deeper/new"
	rsync -aHX --delete "$MOD/" "$MNT/rs/"
	settle
	# rsync -H leaves the mtime of directories it changed late unset (on
	# any filesystem): directory times are not compared here
	NODIRTIMES=1 compare "$MOD" "$MNT/rs" rsync-in
	rsync -aHX "$MNT/rs/" "$T/rs_out/"
	NODIRTIMES=1 compare "$MOD" "$T/rs_out" rsync-out links
else
	echo "rsync not installed: skipped"
fi

# ---- git ----
if have git; then
	step "git"
	export HOME=$T GIT_CONFIG_NOSYSTEM=1
	G=(git -c user.name=bkfs -c user.email=bkfs@example.invalid -c init.defaultBranch=main -c gc.auto=0)
	R=$MNT/repo
	mkdir "$R"
	"${G[@]}" -C "$R" init -q
	cp -a "$SRC"/d* "$X" "$R/"
	# what git does not track: special files, empty directories
	find "$R" \( -type p -o -type c -o -type b -o -type s \) -delete
	find "$R" -mindepth 1 -depth -type d -empty ! -path "$R/.git*" -delete
	"${G[@]}" -C "$R" add -A
	"${G[@]}" -C "$R" commit -q -m first
	echo change >> "$(find "$R" -path "$R/.git" -prune -o -type f -print | head -1)"
	"${G[@]}" -C "$R" commit -q -a -m second
	"${G[@]}" -C "$R" mv "$(cd "$R" && ls | head -1)" renamed
	"${G[@]}" -C "$R" commit -q -m third
	[ "$("${G[@]}" -C "$R" log --oneline | wc -l)" = 3 ] || fail "git log"
	"${G[@]}" -C "$R" gc -q
	"${G[@]}" -C "$R" fsck --strict --no-progress 2> "$T/git_fsck.log" || { cat "$T/git_fsck.log"; fail "git fsck"; }
	"${G[@]}" clone -q "$R" "$T/clone"
	diff -r --no-dereference --exclude=.git "$R" "$T/clone" > "$T/git.diff" || { head "$T/git.diff"; fail "git clone differs"; }
	[ -z "$("${G[@]}" -C "$R" status --porcelain)" ] || fail "git status not clean"
	echo "git: ok ($(find "$R" -type f | wc -l) files)"
else
	echo "git not installed: skipped"
fi

# ---- fio ----
if have fio; then
	step "fio"
	mkdir "$MNT/fio"
	fio --output="$T/fio.log" --directory="$MNT/fio" --ioengine=psync --fallocate=none \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--name=rand4k --rw=randwrite --bs=4k --size=${FIO_MB}m --fsync=64 \
		--name=seq_unaligned --rw=write --bs=6000 --size=$((FIO_MB * 3 / 4))m \
		--name=randrw --rw=randrw --bs=16k --size=$((FIO_MB / 2))m --verify_backlog=64 ||
		{ tail -30 "$T/fio.log"; fail "fio"; }
	grep -qiE 'verify.*(fail|bad)|crc32c.*(mismatch|bad)' "$T/fio.log" && { cat "$T/fio.log"; fail "fio verify"; }
	echo "fio: ok"
else
	echo "fio not installed: skipped"
fi

# ---- stress-ng ----
if have stress-ng; then
	step "stress-ng"
	mkdir "$MNT/stress"
	(cd "$MNT/stress" && stress-ng --temp-path "$MNT/stress" --hdd 1 --hdd-bytes 8m --dir 1 --rename 1 \
		--timeout 8s --metrics-brief) > "$T/stress.log" 2>&1 || { tail -30 "$T/stress.log"; fail "stress-ng"; }
	echo "stress-ng: ok"
else
	echo "stress-ng not installed: skipped"
fi

# ---- unmount, check, extract ----
step "unmount, fsck, extract"
settle
sleep 1.1
manifest "$MNT" > "$T/final.man"
sums "$MNT" > "$T/final.sums"
xattrs "$MNT" > "$T/final.xa"
unmount_fg
fsck_clean "clients"
"$BKFS" usage "$IMG" > "$T/usage.log" 2>&1 || { cat "$T/usage.log"; fail "bkfs usage"; }
grep -E '^  reflink: [1-9][0-9]* indirect extents, [1-9][0-9]* sectors' "$T/usage.log" ||
	{ cat "$T/usage.log"; fail "bkfs usage shows no reflink accounting after cp on the mount"; }
"$BKFS" extract "$IMG" "$T/x" > "$T/extract.log" 2>&1 || { cat "$T/extract.log"; fail "extract"; }
manifest "$T/x" > "$T/x.man"
diff "$T/final.man" "$T/x.man" > "$T/x.mandiff" || { head -20 "$T/x.mandiff"; fail "extract: metadata differs from the mount"; }
sums "$T/x" > "$T/x.sums"
diff "$T/final.sums" "$T/x.sums" > /dev/null || { diff "$T/final.sums" "$T/x.sums" | head; fail "extract: content differs from the mount"; }
xattrs "$T/x" > "$T/x.xa"
diff "$T/final.xa" "$T/x.xa" > /dev/null || fail "extract: xattrs differ from the mount"
# the copies made by cp -a and tar keep link counts and hard-link groups
links "$SRC" > "$T/ln.src"
links "$T/x/cp" > "$T/ln.xcp"
diff "$T/ln.src" "$T/ln.xcp" > /dev/null || { diff "$T/ln.src" "$T/ln.xcp" | head; fail "extract: cp -a link counts"; }
links "$T/x/tar" > "$T/ln.xtar"
diff "$T/ln.src" "$T/ln.xtar" > /dev/null || { diff "$T/ln.src" "$T/ln.xtar" | head; fail "extract: tar link counts"; }
echo "extract: matches the mount ($(wc -l < "$T/x.man") entries)"
chmod -R u+rwx "$T/x" "$T/cp_out" "$T/tar_out" 2>/dev/null || true
rm -rf "$T/x" "$T/cp_out" "$T/tar_out" "$T/rs_out" "$T/mod" "$T/clone"

# ---- daemon mode (no -f) ----
step "daemon mode"
"$BKFS" mount "$IMG" "$MNT" > "$T/daemon.log" 2>&1 || { cat "$T/daemon.log"; fail "bkfs mount (daemon)"; }
mountpoint -q "$MNT" || fail "daemon mode: not mounted after bkfs mount returned"
cmp "$MNT/cp/extra/big" "$SRC/extra/big" || fail "daemon mode: content"
head -c 300000 /dev/urandom > "$T/daemon_file"
cp "$T/daemon_file" "$MNT/daemon_file"
sync "$MNT/daemon_file"
users=$(img_users)
[ -n "$users" ] || fail "daemon mode: no process has the image open"
fusermount3 -u "$MNT"
for _ in $(seq 1 200); do
	[ -z "$(img_users)" ] && break
	sleep 0.05
done
[ -z "$(img_users)" ] || fail "daemon did not exit after unmount"
fsck_clean "daemon mode"

# ---- read-only ----
step "read-only"
mount_fg -o ro
cmp "$MNT/daemon_file" "$T/daemon_file" || fail "ro: content"
if echo x > "$MNT/nope" 2>/dev/null; then fail "ro: write succeeded"; fi
if mkdir "$MNT/nope" 2>/dev/null; then fail "ro: mkdir succeeded"; fi
unmount_fg
fsck_clean "read-only mount"

# ---- a full filesystem: ENOSPC, then usable again once space is freed ----
step "full filesystem"
IMG=$T/small.img
truncate -s 64M "$IMG"
"$BKFS" format "$IMG" > /dev/null || fail "format (64M)"
mount_fg
if dd if=/dev/zero of="$MNT/fill" bs=1M count=100 status=none 2> "$T/dd.err"; then
	fail "100M written to a 64M filesystem"
fi
grep -q "No space left" "$T/dd.err" || { cat "$T/dd.err"; fail "no ENOSPC when full"; }
[ "$(stat -f -c %a "$MNT")" -lt 1024 ] || fail "statfs: full filesystem shows $(stat -f -c %a "$MNT") free blocks"
rm "$MNT/fill"
# full of small files: creation stops with ENOSPC, deletion still works
mkdir "$MNT/many"
n=$(perl -e '
	use Errno qw(ENOSPC);
	my $blob = "x" x 30000;
	for (my $i = 0; ; $i++) {
		my $f;
		my $ok = open($f, ">", "$ARGV[0]/f$i") && print($f $blob) && close($f);
		if (!$ok) { print "$i\n"; exit($! == ENOSPC ? 0 : 1); }
	}' "$MNT/many") || fail "small files: an error other than ENOSPC"
[ "$n" -gt 1000 ] || fail "only $n small files fit"
rm -rf "$MNT/many" || fail "rm -rf on a full filesystem"
head -c 1000000 /dev/urandom > "$T/after_full"
cp "$T/after_full" "$MNT/after_full" || fail "write after freeing space"
cmp "$MNT/after_full" "$T/after_full" || fail "content after freeing space"
unmount_fg
fsck_clean "filling the filesystem"

# ---- the server killed mid-workload: what was committed checks clean ----
step "server killed"
IMG=$T/kill.img
truncate -s 1G "$IMG"
"$BKFS" format "$IMG" > /dev/null || fail "format (kill)"
head -c 300000 /dev/urandom > "$T/frag_src"
for round in 1 2 3; do
	mount_fg
	(
		# fragmented files (removed through the orphan list), a tree, removals
		for f in 1 2 3; do
			for k in $(seq 1 40); do
				dd if="$T/frag_src" of="$MNT/frag$f" bs=4k count=1 skip=$k seek=$((k * 2)) conv=notrunc status=none
			done
		done
		cp -a "$SRC/extra" "$MNT/tree$round"
		cp -r "$MNT/tree$round" "$MNT/shared$round" # copy_file_range: reflinks
		rm -rf "$MNT/tree$((round - 1))" "$MNT/shared$((round - 1))" "$MNT"/frag*
		cp -a "$SRC" "$MNT/big$round"
	) > /dev/null 2>&1 &
	load=$!
	sleep "$round"
	kill -9 "$PID"
	wait "$PID" 2>/dev/null || true
	PID=""
	wait "$load" 2>/dev/null || true
	fusermount3 -uz "$MNT" 2>/dev/null || true
	fsck_clean "the server was killed (round $round)"
done
mount_fg # removes leftover orphans
unmount_fg
[ -z "$("$BKFS" list -b dirents "$IMG" 2>/dev/null | grep -F "$(printf '%s' .bkfs_hidden)" || true)" ] ||
	fail "hidden files left after a remount"
[ -z "$("$BKFS" list -b orphans "$IMG" 2>/dev/null || true)" ] || fail "orphans left after a remount"
fsck_clean "remount after kills"

# ---- usage errors ----
rc=0; "$BKFS" mount > /dev/null 2>&1 || rc=$?
[ "$rc" = 16 ] || fail "bkfs mount without arguments: exit $rc (want 16)"
rc=0; "$BKFS" mount "$T/no-such.img" "$MNT" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q no-such "$T/err" || fail "bkfs mount of a missing image: exit $rc"
mountpoint -q "$MNT" && fail "mounted something after a failed mount"

echo "fuse_clients: ok"
