#!/bin/bash
# bad_input.sh - format, extract and reflink on bad input: missing paths,
# devices too small, garbage and truncated images, bad sizes, unknown
# options, an existing filesystem without --force, unreadable source
# entries, damaged images, bad reflink paths.
# Every case must exit with the documented status (0, 1 or 16) and a clear
# message, never crash (status < 128), and a command that fails validation
# must not write anything.
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR.
set -uo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
T=$TMPDIR
nfail=0
ncase=0
. "$(cd "$(dirname "$0")" && pwd)/lib/common.bash"

bad() { echo "FAIL: $*"; nfail=$((nfail + 1)); }

# expect WANT_RC PATTERN CMD...: run CMD, check its exit status and that
# stderr (or stdout for status 0) matches PATTERN (grep -E, case-insensitive)
expect() {
	local want=$1 pat=$2
	shift 2
	ncase=$((ncase + 1))
	local rc=0
	timeout 120 "$@" > "$T/out" 2> "$T/err" || rc=$?
	if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$T/err"; then
		bad "$* -> sanitizer report"
		grep -m5 -E "Sanitizer|runtime error|#[0-9] " "$T/err"
		return
	fi
	if [ "$rc" -ge 124 ]; then
		bad "$* -> exit $rc (crash or hang)"
		tail -5 "$T/err"
		return
	fi
	if [ "$rc" != "$want" ]; then
		bad "$* -> exit $rc, want $want"
		tail -5 "$T/err"
		return
	fi
	if [ -n "$pat" ] && ! grep -qiE -- "$pat" "$T/err" "$T/out"; then
		bad "$* -> message does not match '$pat':"
		tail -5 "$T/err"
		return
	fi
	echo "ok ($rc): $*"
	[ "$rc" = 0 ] || sed 's/^/    /' "$T/err" | head -3
}

# the image is still all zeros (nothing written)
untouched() {
	ncase=$((ncase + 1))
	if [ "$(tr -d '\0' < "$1" | head -c 1 | wc -c)" != 0 ]; then
		bad "$1 was written to"
	fi
}

Z=$T/zero.img
truncate -s 64M "$Z"

# ---- usage errors: exit 16 ----
expect 16 "no device" "$BKFS" format
expect 16 "unknown option" "$BKFS" format --bogus "$Z"
expect 16 "unknown option" "$BKFS" format -q "$Z"
expect 16 "needs an argument" "$BKFS" format "$Z" --block-size
expect 16 "invalid size" "$BKFS" format --block-size abc "$Z"
expect 16 "invalid size" "$BKFS" format --bucket-size 12q "$Z"
expect 16 "invalid size" "$BKFS" format --btree-node-size -4096 "$Z"
expect 16 "invalid size" "$BKFS" format --bucket-size 99999999999999999999999T "$Z"
expect 16 "replicas" "$BKFS" format --replicas two "$Z"
expect 16 "replicas" "$BKFS" format --replicas -1 "$Z"
expect 16 "no device|no directory" "$BKFS" extract
expect 16 "no directory" "$BKFS" extract "$Z"
expect 16 "unknown option" "$BKFS" extract --bogus "$Z" "$T/x"
untouched "$Z"
expect 0 "usage: bkfs format" "$BKFS" format --help
expect 0 "usage: bkfs extract" "$BKFS" extract --help

# ---- values that parse but are invalid: exit 1, nothing written ----
expect 1 "block size" "$BKFS" format --block-size 3000 "$Z"
expect 1 "block size" "$BKFS" format --block-size 128k "$Z"
expect 1 "block.size" "$BKFS" format --block-size 0 "$Z"
expect 1 "node size" "$BKFS" format --btree-node-size 2k "$Z"
expect 1 "node size" "$BKFS" format --btree-node-size 4M "$Z"
expect 1 "bucket size" "$BKFS" format --bucket-size 4k "$Z"
expect 1 "bucket size" "$BKFS" format --bucket-size 1G "$Z"
expect 1 "replicas" "$BKFS" format --replicas 0 "$Z"
expect 1 "replicas" "$BKFS" format --replicas 2 "$Z"
expect 1 "replicas" "$BKFS" format --replicas 9 "$Z"
expect 1 "label" "$BKFS" format --label "$(printf 'L%.0s' $(seq 1 40))" "$Z"
expect 1 "given twice" "$BKFS" format "$Z" "$Z"
untouched "$Z"

# ---- missing and wrong paths ----
expect 1 "no such file" "$BKFS" format "$T/nonexistent.img"
expect 1 "not a regular file" "$BKFS" format "$T"
expect 1 "no such file" "$BKFS" format --source "$T/nonexistent" "$Z"
echo notadir > "$T/file"
expect 1 "not a directory" "$BKFS" format --source "$T/file" "$Z"
untouched "$Z"
expect 1 "no such" "$BKFS" extract "$T/nonexistent.img" "$T/x"
[ ! -e "$T/x" ] || bad "extract created its directory although the device is missing"

# ---- devices too small ----
truncate -s 1M "$T/small.img"
expect 1 "too small" "$BKFS" format "$T/small.img"
untouched "$T/small.img"
: > "$T/empty.img"
expect 1 "too small|no valid|size" "$BKFS" format "$T/empty.img"
expect 1 "" "$BKFS" extract "$T/empty.img" "$T/x"

# ---- garbage and truncated images ----
head -c 10M /dev/urandom > "$T/garbage.img"
expect 1 "superblock" "$BKFS" extract "$T/garbage.img" "$T/x"
[ ! -e "$T/x" ] || bad "extract created its directory for a garbage image"
expect 1 "superblock" "$BKFS" extract "$T/garbage.img" "$T/garbage.img" "$T/x"

mkdir -p "$T/src/d"
echo hello > "$T/src/d/f"
head -c 300000 /dev/urandom > "$T/src/big"
V=$T/valid.img
truncate -s 128M "$V"
expect 0 "imported" "$BKFS" format --source "$T/src" "$V"
expect 0 "extracted" "$BKFS" extract "$V" "$T/v_out"
diff -r "$T/src" "$T/v_out" > /dev/null || bad "valid image does not round-trip"
head -c $((64 * 1024 * 1024)) "$V" > "$T/half.img"
expect 1 "smaller|superblock" "$BKFS" extract "$T/half.img" "$T/x"
[ ! -e "$T/x" ] || bad "extract created its directory for a truncated image"
# two images of different filesystems
W=$T/other.img
truncate -s 128M "$W"
expect 0 "" "$BKFS" format "$W"
expect 1 "different filesystem|duplicate" "$BKFS" extract "$V" "$W" "$T/x"
expect 1 "duplicate|twice" "$BKFS" extract "$V" "$V" "$T/x"

# ---- an existing filesystem needs --force ----
cp --sparse=always "$V" "$T/before.img"
expect 1 "force" "$BKFS" format "$V"
cmp -s "$V" "$T/before.img" || bad "format without --force changed the image"
expect 1 "force" "$BKFS" format --source "$T/src" "$V"
cmp -s "$V" "$T/before.img" || bad "format --source without --force changed the image"
expect 0 "" "$BKFS" format --force "$V"

# ---- extract destinations ----
mkdir -p "$T/nonempty"
echo x > "$T/nonempty/x"
expect 1 "not empty" "$BKFS" extract "$T/before.img" "$T/nonempty"
expect 1 "not a directory" "$BKFS" extract "$T/before.img" "$T/file"
expect 1 "" "$BKFS" extract "$T/before.img" "$T/no/such/parent"

# ---- unreadable source entries: reported, skipped, exit 1, fs consistent ----
# As root the import runs as uid 65534, which must reach the files and the
# binary: a clone under a 0700 /root is out of its reach, so this case works
# in a world-readable directory of its own (with a copy of the binary).
P=$T
UBKFS=$BKFS
if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null; then
	P=$(mktemp -d /tmp/bkfs-unreadable.XXXXXX)
	chmod 755 "$P"
	cp "$BKFS" "$P/bkfs"
	UBKFS=$P/bkfs
	trap 'rm -rf "$P"' EXIT
fi
U=$P/usrc
mkdir -p "$U/ok" "$U/closed"
echo fine > "$U/ok/f"
echo secret > "$U/secret"
echo inner > "$U/closed/inner"
chmod 000 "$U/secret" "$U/closed"
img=$P/unreadable.img
truncate -s 128M "$img"
runner=()
if [ "$(id -u)" = 0 ]; then
	# root reads everything: drop to an unprivileged user for this case
	if command -v setpriv > /dev/null; then
		chown -R 65534:65534 "$U" "$img"
		chmod 000 "$U/secret" "$U/closed"
		chmod 755 "$U" "$U/ok"
		runner=(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all)
	fi
fi
if [ "$(id -u)" != 0 ] || [ "${#runner[@]}" -gt 0 ]; then
	expect 1 "cannot read .*(secret|closed)" "${runner[@]}" "$UBKFS" format --source "$U" "$img"
	grep -q "secret" "$T/err" && grep -q "closed" "$T/err" || bad "both unreadable entries should be named"
	expect 0 "" "$BKFS" extract "$img" "$T/u_out"
	[ -f "$T/u_out/ok/f" ] && [ ! -e "$T/u_out/secret" ] && [ ! -e "$T/u_out/closed" ] ||
		bad "unreadable entries: wrong extracted tree: $(cd "$T/u_out" 2>/dev/null && find . | tr '\n' ' ')"
	if "$BKFS" fsck --help > /dev/null 2>&1; then
		rc=0
		"$BKFS" fsck -n "$img" > "$T/fsck.log" 2>&1 || rc=$?
		if [ "$rc" != 0 ] && ! grep -q "not available in this build" "$T/fsck.log"; then
			bad "fsck -n after a partial import: exit $rc"
			tail -5 "$T/fsck.log"
		fi
	fi
else
	skip_case "unreadable entries (root without setpriv)"
fi

# ---- a bad data extent: that file is reported, the rest is extracted ----
R=$T/rsrc
mkdir -p "$R/sub"
echo good > "$R/good"
head -c 300000 /dev/urandom > "$R/sub/victim"
RI=$T/readerr.img
truncate -s 64M "$RI"
expect 0 "imported" "$BKFS" format --source "$R" "$RI"
inum=$("$BKFS" list -b inodes "$RI" 2>/dev/null | awk '/type inode/ && / size 300000 / { split($6, p, ":"); print p[2] }')
off=$("$BKFS" list -b extents "$RI" 2>/dev/null |
	awk -v pos="$inum:512:0" '$6 == pos { for (i = 1; i < NF; i++) if ($i == "off") print $(i + 1) }')
if [ -n "$inum" ] && [ -n "$off" ]; then
	head -c 4096 /dev/urandom | dd of="$RI" bs=512 seek="$off" conv=notrunc status=none
	expect 1 "sub/victim.*checksum" "$BKFS" extract "$RI" "$T/r_out"
	cmp -s "$R/good" "$T/r_out/good" || bad "read error: the other file was not extracted"
	[ "$(stat -c %s "$T/r_out/sub/victim")" = 300000 ] || bad "read error: victim has the wrong size"
	cmp -s -n 131072 "$R/sub/victim" "$T/r_out/sub/victim" || bad "read error: victim's good first extent differs"
	cmp -s -i 262144 "$R/sub/victim" "$T/r_out/sub/victim" || bad "read error: victim's good last extent differs"
else
	skip_case "bad data extent (bkfs list does not show the extent)"
fi

# ---- the same with two replicas: the other copy is read, no error ----
R1=$T/rep0.img R2=$T/rep1.img
truncate -s 64M "$R1"
truncate -s 64M "$R2"
expect 0 "imported" "$BKFS" format --replicas 2 --source "$R" "$R1" "$R2"
inum=$("$BKFS" list -b inodes "$R1" "$R2" 2>/dev/null | awk '/type inode/ && / size 300000 / { split($6, p, ":"); print p[2] }')
off=$("$BKFS" list -b extents "$R1" "$R2" 2>/dev/null |
	awk -v pos="$inum:512:0" '$6 == pos { for (i = 1; i < NF; i++) if ($i == "dev" && $(i + 1) == 0 && $(i + 2) == "off") print $(i + 3) }')
if [ -n "$inum" ] && [ -n "$off" ]; then
	head -c 4096 /dev/urandom | dd of="$R1" bs=512 seek="$off" conv=notrunc status=none
	expect 0 "extracted" "$BKFS" extract "$R1" "$R2" "$T/rep_out"
	diff -r "$R" "$T/rep_out" > /dev/null || bad "replicated read error: tree differs"
	# and with the good device missing, the damage is reported
	expect 1 "sub/victim.*checksum" "$BKFS" extract "$R1" "$T/rep_out2"
else
	skip_case "replicated bad data extent (bkfs list does not show the extent)"
fi

# ---- bkfs reflink: usage errors, bad paths, then copies that check clean ----
RL=$T/reflink.img
truncate -s 64M "$RL"
expect 0 "imported" "$BKFS" format --source "$R" "$RL"
expect 16 "no device" "$BKFS" reflink
expect 16 "no device" "$BKFS" reflink "$RL" /good
expect 16 "absolute" "$BKFS" reflink "$RL" good /copy
expect 16 "absolute" "$BKFS" reflink "$RL" /good /
expect 16 "unknown option" "$BKFS" reflink --bogus "$RL" /good /copy
expect 1 "/missing: no such object" "$BKFS" reflink "$RL" /missing /copy
expect 1 "/sub: is a directory" "$BKFS" reflink "$RL" /sub /copy
expect 1 "same file" "$BKFS" reflink "$RL" /good /good
expect 1 "/nodir/copy: no such object" "$BKFS" reflink "$RL" /good /nodir/copy
expect 1 "/good/copy: not a directory" "$BKFS" reflink "$RL" /sub/victim /good/copy
expect 1 "no such file|cannot open|not a bkfs|bad" "$BKFS" reflink "$T/no-such.img" /good /copy
expect 0 "300000 bytes shared" "$BKFS" reflink "$RL" /sub/victim /victim2
expect 0 "shared" "$BKFS" reflink "$RL" /good /sub             # into a directory: /sub/good
expect 0 "300000 bytes shared" "$BKFS" reflink "$RL" /sub/victim /good # replaces a file
expect 0 "" "$BKFS" fsck -n "$RL"
expect 0 "extracted" "$BKFS" extract "$RL" "$T/rl_out"
cmp -s "$R/sub/victim" "$T/rl_out/victim2" || bad "reflink: /victim2 differs from its source"
cmp -s "$R/sub/victim" "$T/rl_out/good" || bad "reflink: the replaced /good differs from its source"
cmp -s "$R/good" "$T/rl_out/sub/good" || bad "reflink: /sub/good differs from its source"
cmp -s "$R/sub/victim" "$T/rl_out/sub/victim" || bad "reflink: the source changed"

# ---- bkfs mount: bad option values are refused before anything is opened ----
expect 16 "bad poll_us 'fast'" "$BKFS" mount -o poll_us=fast "$RL" "$T"
expect 16 "bad poll_us '1001'" "$BKFS" mount -o poll_us=1001 "$RL" "$T"
expect 16 "bad poll_us ''" "$BKFS" mount -o ro,poll_us= "$RL" "$T"
expect 16 "bad flush_ms '-1'" "$BKFS" mount -o flush_ms=-1 "$RL" "$T"
expect 0 "" "$BKFS" fsck -n "$RL"

# ---- damaged images: extract may fail, but must not crash or hang ----
G=$T/gen
"$GENTREE" --seed 3 --files 3000 --max-size 64k --quiet "$G"
DI=$T/damage_src.img
truncate -s 64M "$DI"
expect 0 "imported" "$BKFS" format --source "$G" "$DI"
used=$(du --block-size=1 "$DI" | cut -f1)
for seed in 1 2 3 4 5 6 7 8; do
	cp --sparse=always "$DI" "$T/damaged.img"
	# overwrite a few 4 KiB blocks at seeded positions inside the used part
	# of the image (beyond the superblocks: those are tested above)
	awk -v s="$seed" -v n=$((64 * 1024 * 1024 / 4096)) 'BEGIN { srand(s); for (i = 0; i < 24; i++) print 64 + int(rand() * (n - 64)) }' |
	while read -r blk; do
		head -c 4096 /dev/urandom | dd of="$T/damaged.img" bs=4096 seek="$blk" conv=notrunc status=none
	done
	rm -rf "$T/d_out"
	ncase=$((ncase + 1))
	rc=0
	timeout 120 "$BKFS" extract "$T/damaged.img" "$T/d_out" > /dev/null 2> "$T/err" || rc=$?
	if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$T/err"; then
		bad "extract of damaged image (seed $seed): sanitizer report"
		grep -m5 -E "Sanitizer|runtime error|#[0-9] " "$T/err"
	elif [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
		bad "extract of damaged image (seed $seed): exit $rc"
		tail -5 "$T/err"
	else
		echo "ok ($rc): extract of a damaged image (seed $seed)"
	fi
	[ -d "$T/d_out" ] && chmod -R u+rwx "$T/d_out"
done
echo "(image used $used bytes)"

echo "$ncase cases, $nfail failed, $NSKIP skipped"
[ "$nfail" = 0 ]
