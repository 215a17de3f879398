#!/bin/bash
# roundtrip.sh - format --source then extract must give back the same tree:
# content (diff -r), metadata (type, mode, owner, size, links, mtime in ns,
# symlink targets, device numbers), xattrs of every namespace, hard-link
# groups and holes. Then the same on two devices with --replicas 2, and
# extracted again with each device missing in turn.
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR. RT_FILES (default 20000)
# sets the size of the generated tree.
set -euo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
RT_FILES=${RT_FILES:-20000}
T=$TMPDIR
SRC=$T/src

. "$(cd "$(dirname "$0")" && pwd)/lib/common.bash"

# ---- the source tree: gentree plus the cases it does not make ----
"$GENTREE" --seed 7 --files "$RT_FILES" --big-dir 3000 --max-size 128k "$SRC"
X=$SRC/extra
mkdir -p "$X/sub" "$X/ro"
: > "$X/empty"
head -c 3000000 /dev/urandom > "$X/big"                 # several 1 MiB chunks
truncate -s 20M "$X/sparse_tail"                         # data only at the end
printf 'tail' | dd of="$X/sparse_tail" bs=1 seek=$((20 * 1024 * 1024 - 4)) conv=notrunc status=none
truncate -s 10M "$X/all_hole"                            # no data at all
{ head -c 5000 /dev/urandom; } > "$X/holes"              # data, hole, data, hole
truncate -s 3M "$X/holes"
head -c 70000 /dev/urandom | dd of="$X/holes" bs=4096 seek=300 conv=notrunc status=none
truncate -s 5M "$X/holes"
head -c 100 /dev/urandom > "$X/small_sparse"             # inline data then a hole
truncate -s 1M "$X/small_sparse"
long=$(printf 'x%.0s' $(seq 1 3000))
ln -s "$long/target" "$X/long_link"                      # > 2048 bytes: not inline
ln -s ../empty "$X/sub/rel_link"
n255=$(printf 'n%.0s' $(seq 1 255))
echo "long name" > "$X/$n255"
echo linked > "$X/hl_a"
ln "$X/hl_a" "$X/sub/hl_b"
ln "$X/hl_a" "$X/hl_c"
chmod 0000 "$X/hl_c" 2>/dev/null || true
echo "readonly dir content" > "$X/ro/f"
chmod 0500 "$X/ro"
echo old > "$X/old"
touch -h -d '1965-06-01 12:00:00.123456789' "$X/old" 2>/dev/null || true
if have python3; then
	python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$X/sock" || true
fi
mkfifo "$X/fifo"
if have setfattr; then
	setfattr -n user.big -v "0s$(head -c 3000 /dev/urandom | base64 -w0)" "$X/big" || true
	setfattr -n user.empty "$X/empty" || true
	setfattr -n trusted.t1 -v hello "$X/sub" 2>/dev/null || true
	setfattr -h -n trusted.onlink -v yes "$X/sub/rel_link" 2>/dev/null || true
	setfattr -n trusted.onfifo -v yes "$X/fifo" 2>/dev/null || true
	setfattr -n security.sec -v secret "$X/hl_a" 2>/dev/null || true
	setfattr -n user.root -v rootdir "$SRC" || true
fi
chmod 0751 "$SRC"
touch -d '2001-02-03 04:05:06.789' "$SRC"

nent=$(find "$SRC" | wc -l)
echo "source tree: $nent entries"
[ "$nent" -ge 20000 ] || [ "$RT_FILES" -lt 20000 ] || fail "tree too small ($nent entries)"

# ---- comparison helpers ----
# names of FIFOs, sockets and device nodes (diff -r would open them)
find "$SRC" \( -type p -o -type s -o -type c -o -type b \) -printf '%f\n' | sort -u > "$T/specials"

# manifest and xattrs: lib/common.bash (with link counts and the root's own
# entry here: the source root's mode and mtime are set above)
# hard-link groups: the sorted paths sharing an inode, one group per line
links() {
	(cd "$1" && find . ! -type d -links +1 -printf '%i %p\n') |
		LC_ALL=C sort -k2 | awk '{ g[$1] = g[$1] " " $2 } END { for (i in g) print g[i] }' | LC_ALL=C sort
}

# holes: for each regular file with holes in the source, blocks of both copies
holes() {
	(cd "$1" && find . -type f -printf '%p %s %b\n') | LC_ALL=C sort
}

compare() { # SRC OUT LABEL
	local s=$1 o=$2 l=$3
	diff -r --no-dereference --exclude-from="$T/specials" "$s" "$o" > "$T/diff.$l" 2>&1 ||
		{ head -20 "$T/diff.$l"; fail "$l: content differs"; }
	manifest --nlink --root "$s" > "$T/man.src"
	manifest --nlink --root "$o" > "$T/man.$l"
	diff "$T/man.src" "$T/man.$l" > "$T/mandiff.$l" ||
		{ head -20 "$T/mandiff.$l"; fail "$l: metadata differs"; }
	xattrs "$s" > "$T/xa.src"
	xattrs "$o" > "$T/xa.$l"
	diff "$T/xa.src" "$T/xa.$l" > /dev/null || { diff "$T/xa.src" "$T/xa.$l" | head; fail "$l: xattrs differ"; }
	links "$s" > "$T/ln.src"
	links "$o" > "$T/ln.$l"
	diff "$T/ln.src" "$T/ln.$l" > /dev/null || { diff "$T/ln.src" "$T/ln.$l" | head; fail "$l: hard links differ"; }
	[ "$(wc -l < "$T/ln.src")" -gt 0 ] || fail "no hard links in the source tree?"
	holes "$s" > "$T/ho.src"
	holes "$o" > "$T/ho.$l"
	# a file sparse in the source must be sparse in the copy, with at most
	# a few more blocks (block alignment)
	join "$T/ho.src" "$T/ho.$l" | awk -v l="$l" '
		$3 * 512 < $2 { sparse++
			if ($5 * 512 >= $4 || $5 > $3 + 64) { print l ": not sparse: " $0; bad++ } }
		END { if (!sparse) { print l ": no sparse files seen"; bad++ }
		      exit bad ? 1 : 0 }' || fail "$l: holes not preserved"
	local su ou
	su=$(du -s --block-size=1 "$s" | cut -f1)
	ou=$(du -s --block-size=1 "$o" | cut -f1)
	[ "$ou" -le $((su + su / 10 + 1048576)) ] || fail "$l: copy uses $ou bytes, source $su"
	echo "$l: identical ($(wc -l < "$T/man.src") entries, $(wc -l < "$T/xa.src") xattrs)"
}

fsck_clean() {
	if "$BKFS" fsck --help >/dev/null 2>&1; then
		local rc=0
		"$BKFS" fsck -n "$@" > "$T/fsck.log" 2>&1 || rc=$?
		if [ "$rc" != 0 ] && grep -q "not available in this build" "$T/fsck.log"; then
			echo "fsck -n: incomplete build, not checked (exit $rc)"
			return 0
		fi
		[ "$rc" = 0 ] || { tail -20 "$T/fsck.log"; fail "fsck -n $* not clean (exit $rc)"; }
		echo "fsck -n: clean"
	fi
}

# ---- one device ----
IMG=$T/one.img
truncate -s 2G "$IMG"
"$BKFS" format --source "$SRC" "$IMG" > "$T/format.log" 2>&1 || { cat "$T/format.log"; fail "format --source"; }
cat "$T/format.log"
"$BKFS" extract "$IMG" "$T/out1" > "$T/extract.log" 2>&1 || { cat "$T/extract.log"; fail "extract"; }
cat "$T/extract.log"
compare "$SRC" "$T/out1" one-device

# an existing empty directory is fine
mkdir "$T/out1b"
"$BKFS" extract "$IMG" "$T/out1b" > /dev/null || fail "extract into an empty directory"
diff -r --no-dereference --exclude-from="$T/specials" "$T/out1" "$T/out1b" > /dev/null || fail "second extract differs"
chmod -R u+rwx "$T/out1b" && rm -rf "$T/out1b"
fsck_clean "$IMG"

# ---- two devices, two replicas ----
A=$T/a.img B=$T/b.img
truncate -s 1G "$A"
truncate -s 1G "$B"
"$BKFS" format --replicas 2 --bucket-size 256k --source "$SRC" "$A" "$B" > "$T/format2.log" 2>&1 ||
	{ cat "$T/format2.log"; fail "format --replicas 2 --source"; }
"$BKFS" extract "$A" "$B" "$T/out2" > /dev/null || fail "extract (2 devices)"
compare "$SRC" "$T/out2" two-devices
chmod -R u+rwx "$T/out2" && rm -rf "$T/out2"
# devices in the other order
"$BKFS" extract "$B" "$A" "$T/out2r" > /dev/null || fail "extract (2 devices, reversed)"
diff -r --no-dereference --exclude-from="$T/specials" "$SRC" "$T/out2r" > /dev/null || fail "reversed device order: content differs"
echo "two-devices-reversed: same content"
chmod -R u+rwx "$T/out2r" && rm -rf "$T/out2r"
fsck_clean "$A" "$B"

# degraded: each device alone
for dev in "$A" "$B"; do
	name=degraded-$(basename "$dev" .img)
	"$BKFS" extract "$dev" "$T/$name" > /dev/null 2> "$T/$name.err" || { cat "$T/$name.err"; fail "$name: extract"; }
	grep -q "missing" "$T/$name.err" || fail "$name: no degraded warning"
	compare "$SRC" "$T/$name" "$name"
	chmod -R u+rwx "$T/$name" && rm -rf "$T/$name"
done

# a two-device filesystem with one copy of its metadata cannot be read with
# a device missing (--metadata-replicas 1 explicitly: the default two copies
# put one on each device, and the btrees then read from either alone)
C=$T/c.img D=$T/d.img
truncate -s 512M "$C"
truncate -s 512M "$D"
"$BKFS" format --metadata-replicas 1 "$C" "$D" > /dev/null || fail "format 2 devices"
rc=0
"$BKFS" extract "$C" "$T/nope" > /dev/null 2> "$T/nope.err" || rc=$?
[ "$rc" = 1 ] || fail "extract of a 1-replica fs with a device missing: exit $rc (want 1)"
grep -q "missing" "$T/nope.err" || { cat "$T/nope.err"; fail "no clear message for a missing device"; }
# the default format of the same: two metadata copies, one per device; a
# device missing, the (empty) tree still extracts, with a warning
"$BKFS" format --force "$C" "$D" > /dev/null || fail "format 2 devices (defaults)"
"$BKFS" extract "$C" "$T/degraded-empty" > /dev/null 2> "$T/degraded-empty.err" ||
	{ cat "$T/degraded-empty.err"; fail "extract of a default 2-device fs with a device missing"; }
grep -q "missing" "$T/degraded-empty.err" || fail "default 2-device fs, a device missing: no degraded warning"

chmod -R u+rwx "$T/out1" "$SRC"
echo "roundtrip: ok"
