#!/bin/bash
# recorded_names.sh - the name every inode records (docs/FORMAT.md 4.5)
# through the FUSE mount, and what fsck does with it:
#   - a seeded churn (lib/names_churn.py: creates, renames within and
#     across directories and over files, directories moved, exchanges, hard
#     links, unlinks) on a one-copy filesystem; after the unmount `fsck -n`
#     is clean and `bkfs list` shows, for every directory and every file with
#     one link, exactly its directory and name; a file without a record must
#     be one that once had more links than an inode records (5, format 5);
#   - then every dirents leaf in turn is damaged (64 bytes in its used part,
#     one copy: its damaged chunk's entries are lost): `fsck -y` exits 0 or
#     1, a second `fsck -n` is clean, and every directory and file is back
#     at its path, each link of a hard-linked file too; what may be gone are
#     names of files that once had more than 5 links.
# Environment: NAMES_SEED (the churn's seed, default 5).
# Skipped (exit 77) without /dev/fuse, fusermount3 or python3.
set -euo pipefail

: "${BKFS:?}" "${TMPDIR:?}"
T=$TMPDIR
IMG=$T/fs.img
MNT=$T/mnt
DIR=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
. "$DIR/lib/fuse.bash"
fuse_require
command -v python3 > /dev/null 2>&1 || skip "no python3"
trap fuse_cleanup EXIT

truncate -s 256M "$IMG"
"$BKFS" format --metadata-replicas 1 --btree-node-size 16k "$IMG" > /dev/null
mkdir -p "$MNT"
fuse_first_mount
python3 "$DIR/lib/names_churn.py" "$MNT" "${NAMES_SEED:-5}" "$T/expected" || fail "churn"
( cd "$MNT" && find . -mindepth 1 -printf '%y %p\n' | LC_ALL=C sort ) > "$T/tree"
# files that may lose a name: those that once had more links than an inode
# records names
: > "$T/may_go"
sed -n 's/^linked //p' "$T/expected" > "$T/linked_inos"
( cd "$MNT" && find . -mindepth 1 -type f -printf '%i %p\n' ) |
	awk 'NR == FNR { l[$1] = 1; next } ($1 in l) { sub(/^[0-9]+ /, ""); print }' "$T/linked_inos" - >> "$T/may_go"
LC_ALL=C sort -u -o "$T/may_go" "$T/may_go"
unmount_fg
"$BKFS" fsck -n "$IMG" > "$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "fsck -n after the churn"; }

# check_records IMG: every expected record is on disk (or the file had a
# second link and records nothing); prints how many were checked
check_records() {
	"$BKFS" list -b inodes "$1" > "$T/inodes" 2> /dev/null || fail "bkfs list"
	python3 - "$T/inodes" "$T/expected" <<'PY'
import re, sys
rec = {}
for l in open(sys.argv[1]):
    m = re.search(r"pos 0:(\d+):0 .* parent (\d+) .*?(?: name (.*))?$", l.rstrip("\n"))
    if m:
        rec[int(m.group(1))] = (int(m.group(2)), m.group(3))
linked = set()
want = []
for l in open(sys.argv[2]):
    f = l.rstrip("\n").split(" ", 2)
    if f[0] == "linked":
        linked.add(int(f[1]))
    else:
        want.append((int(f[0]), int(f[1]), f[2]))
bad = unnamed = 0
for ino, par, name in want:
    r = rec.get(ino)
    if r == (par, name):
        continue
    if r is not None and r[1] is None and ino in linked:
        unnamed += 1
        continue
    bad += 1
    if bad <= 5:
        print("inode %d in %d as %r records %r" % (ino, par, name, r), file=sys.stderr)
if bad:
    sys.exit("%d of %d records wrong" % (bad, len(want)))
print("%d records right, %d files that once had more than 5 links record none" % (len(want) - unnamed, unnamed))
PY
}
check_records "$IMG" || fail "records after the churn"

# the dirents leaves, each damaged in turn
"$BKFS" list -v -b dirents -l 0 "$IMG" 2> /dev/null | sed -n 's/^node .* loc: dev [0-9]* off \([0-9]*\) .*/\1/p' > "$T/leaves"
n=$(wc -l < "$T/leaves")
[ "$n" -ge 2 ] || fail "only $n dirents leaves: the tree is too small to damage one"
i=0
while read -r off; do
	i=$((i + 1))
	cp --sparse=always "$IMG" "$T/d.img"
	used=$(od -A n -t u4 -j $((off * 512 + 24)) -N 4 "$T/d.img" | tr -d ' ')
	python3 -c "import random, sys; random.seed($i); sys.stdout.buffer.write(bytes(random.randrange(256) for _ in range(64)))" |
		dd of="$T/d.img" bs=1 seek=$((off * 512 + used / 2)) conv=notrunc status=none
	rc=0
	"$BKFS" fsck -y "$T/d.img" > "$T/y.log" 2>&1 || rc=$?
	[ "$rc" -le 1 ] || { cat "$T/y.log"; fail "leaf $i: fsck -y exits $rc"; }
	"$BKFS" fsck -n "$T/d.img" > "$T/n.log" 2>&1 || { cat "$T/n.log"; fail "leaf $i: second fsck -n"; }
	back=$(grep -c "linked it back under its recorded name\|linked it again under its recorded name" "$T/y.log" || true)
	rm -rf "$T/out"
	"$BKFS" extract "$T/d.img" "$T/out" > /dev/null 2>&1 || fail "leaf $i: extract"
	( cd "$T/out" && find . -mindepth 1 -printf '%y %p\n' | LC_ALL=C sort ) > "$T/tree2"
	# gone: only names of files that once had more than 5 links
	LC_ALL=C comm -23 "$T/tree" "$T/tree2" > "$T/gone"
	while read -r ty p; do
		[ "$ty" = f ] && grep -qxF -- "$p" "$T/may_go" || fail "leaf $i: $ty $p gone (it records its name)"
	done < "$T/gone"
	gone=$(wc -l < "$T/gone")
	lf=$(grep -c '^. ./lost+found/' "$T/tree2" || true)
	echo "ok   dirents leaf $i of $n: $back put back under their recorded names; $gone names gone, $lf entries in lost+found"
done < "$T/leaves"
