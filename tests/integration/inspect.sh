#!/bin/bash
# inspect.sh - the read-only inspection commands and the command dispatcher:
# show-super, list, usage, help/--help/--version, usage errors (exit 16),
# missing images and garbage images (exit 1, never a crash).
#
# Environment (tests/run.sh): BKFS, TMPDIR.
set -uo pipefail

: "${BKFS:?}" "${TMPDIR:?}"
T=$TMPDIR
IMG=$T/img

. "$(cd "$(dirname "$0")" && pwd)/lib/expect.bash"

# ---- dispatcher
expect 0 "$BKFS" --help
grep -q "show-super" "$T/out" || fail "--help does not list show-super"
expect 0 "$BKFS" help
for c in format mount fsck gc-gens extract show-super list usage reflink erasure-code scan debug help; do
	grep -q "^  $c " "$T/out" || fail "help does not list $c"
done
expect 0 "$BKFS" --version
grep -q "^bkfs " "$T/out" || fail "--version prints no version"
expect 0 "$BKFS" help list
grep -q "usage: bkfs list" "$T/out" || fail "help list does not show the list usage"
expect 16 "$BKFS"
grep -q "usage: bkfs" "$T/err" || fail "no usage on stderr without a command"
expect 16 "$BKFS" no-such-command
expect 16 "$BKFS" help no-such-command

# ---- --help and usage errors of each inspection command
for c in show-super list usage; do
	expect 0 "$BKFS" "$c" --help
	grep -q "usage: bkfs $c" "$T/out" || fail "$c --help prints no usage"
	expect 16 "$BKFS" "$c"
	expect 16 "$BKFS" "$c" --no-such-option "$IMG"
	grep -q "^bkfs $c: " "$T/err" || fail "$c: bad option message not prefixed"
done
expect 16 "$BKFS" list -b
expect 16 "$BKFS" list -b no-such-btree "$IMG"
grep -q "inodes" "$T/err" || fail "bad btree name does not list the valid ones"
expect 16 "$BKFS" list -l 99 "$IMG"
expect 16 "$BKFS" list -s 1:2:3:4 "$IMG"
expect 16 "$BKFS" list -s banana "$IMG"
expect 16 "$BKFS" list -s 10 -e 5 "$IMG"
expect 16 "$BKFS" show-super "$IMG" "$IMG"

# ---- missing and garbage images
for c in show-super list usage; do
	expect 1 "$BKFS" "$c" "$T/does-not-exist"
	grep -q "^bkfs $c: $T/does-not-exist: " "$T/err" || fail "$c: unclear message for a missing image"
done
: > "$T/empty"
head -c 100 /dev/urandom > "$T/tiny"
head -c 4M /dev/urandom > "$T/random"
truncate -s 32M "$T/zeros"
for f in empty tiny random zeros; do
	for c in show-super list usage; do
		expect 1 "$BKFS" "$c" "$T/$f"
		[ -s "$T/err" ] || fail "$c on $f: no message"
		grep -q "^bkfs $c: " "$T/err" || fail "$c on $f: message not prefixed"
	done
done
expect 1 "$BKFS" show-super "$T"   # a directory

# ---- a fresh filesystem
truncate -s 128M "$IMG"
"$BKFS" format "$IMG" > "$T/format.out" 2>&1
rc=$?
if [ "$rc" != 0 ]; then
	if grep -q "not available" "$T/format.out"; then
		echo "bkfs format not available in this build"
		exit 77
	fi
	cat "$T/format.out" >&2
	fail "format exited $rc"
fi

expect 0 "$BKFS" show-super "$IMG"
S=$T/super.txt
cp "$T/out" "$S"
grep -Eq '^uuid: +[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' "$S" || fail "show-super: no uuid"
grep -Eq '^bucket_size: +[0-9]+ sectors$' "$S" || fail "show-super: no bucket size"
grep -Eq '^clean: +1$' "$S" || fail "show-super: a fresh filesystem is not clean"
grep -Eq '^valid copies: +3 of 3$' "$S" || fail "show-super: not every superblock copy valid"
nbuckets=$(sed -n 's/.*member 0: .* nbuckets \([0-9]*\) .*/\1/p' "$S")
bucket_sectors=$(sed -n 's/^bucket_size: *\([0-9]*\) sectors$/\1/p' "$S")
[ -n "$nbuckets" ] && [ "$nbuckets" -gt 0 ] || fail "show-super: no nbuckets"
[ $((nbuckets * bucket_sectors * 512)) = $((128 << 20)) ] ||
	fail "nbuckets $nbuckets * bucket $bucket_sectors sectors is not the image size"

# the primary superblock damaged: show-super still works from a backup copy
cp "$IMG" "$T/img2"
printf 'garbage!' | dd of="$T/img2" bs=1 seek=$((4096 + 100)) conv=notrunc status=none
expect 0 "$BKFS" show-super "$T/img2"
grep -Eq '^valid copies: +2 of 3$' "$T/out" || fail "show-super: damaged primary copy not noticed"

# list: the root inode, one alloc key per bucket
expect 0 "$BKFS" list -b inodes "$IMG"
[ "$(wc -l < "$T/out")" = 1 ] || fail "list -b inodes: expected only the root inode"
grep -q "type inode pos 0:4096:0 " "$T/out" || fail "list -b inodes: no root inode 4096"
grep -q "mode 040755" "$T/out" || fail "root inode is not a directory"
expect 0 "$BKFS" list -b alloc "$IMG"
[ "$(grep -c "type alloc " "$T/out")" = "$nbuckets" ] || fail "list -b alloc: $(wc -l < "$T/out") keys, $nbuckets buckets"
[ "$(wc -l < "$T/out")" = "$nbuckets" ] || fail "list -b alloc: not one line per key"
expect 0 "$BKFS" list -b alloc -s 0:10 -e 0:19 "$IMG"
[ "$(wc -l < "$T/out")" = 10 ] || fail "list -s 0:10 -e 0:19 printed $(wc -l < "$T/out") keys"
head -1 "$T/out" | grep -q " pos 0:10:0 " || fail "list -s: wrong first key"
tail -1 "$T/out" | grep -q " pos 0:19:0 " || fail "list -e: wrong last key"
expect 0 "$BKFS" list -b alloc -s 1 "$IMG"      # no device 1: nothing
[ ! -s "$T/out" ] || fail "list -s 1 on the alloc btree printed keys"
expect 0 "$BKFS" list -b inodes -s POS_MIN -e POS_MAX "$IMG"
grep -q " pos 0:4096:0 " "$T/out" || fail "list POS_MIN..POS_MAX misses the root"

# every btree, with headers
expect 0 "$BKFS" list "$IMG"
for b in extents inodes dirents xattrs alloc reflink stripes accounting; do
	grep -q "^btree $b:$" "$T/out" || fail "list: no header for btree $b"
done
[ "$(grep -c "type alloc " "$T/out")" = "$nbuckets" ] || fail "list: alloc keys missing"

# interior levels and node headers
expect 0 "$BKFS" list -b alloc -l 1 -v "$IMG"
if grep -q "type btree_ptr" "$T/out"; then
	grep -q "^node btree alloc level 1 " "$T/out" || fail "list -v: no node header"
fi
grep -q "type alloc " "$T/out" && fail "list -l 1 printed leaf keys"
expect 0 "$BKFS" list -b inodes -v "$IMG"
grep -q "^node btree inodes level 0 seq [0-9]* .*loc: dev 0 off [0-9]*" "$T/out" || fail "list -v: node header lacks location"
expect 0 "$BKFS" list -b inodes -l 7 "$IMG"
[ ! -s "$T/out" ] || fail "list at a level above the root printed keys"

# usage
expect 0 "$BKFS" usage "$IMG"
U=$T/usage.txt
cp "$T/out" "$U"
grep -Eq '^  nr_inodes: 1$' "$U" || fail "usage: nr_inodes is not 1"
grep -Eq "^Size: +$((128 << 20)) bytes" "$U" || fail "usage: wrong size"
grep -Eq "^Bucket size: +$((bucket_sectors * 512)) bytes" "$U" || fail "usage: wrong bucket size"
grep -Eq "^  dev 0: .* nr_buckets $nbuckets " "$U" || fail "usage: wrong nr_buckets"
grep -q "^Device 0:" "$U" || fail "usage: no device table"
total=$(awk '/^Device 0:/ { d = 1 } d && $1 == "total" { print $2; exit }' "$U")
[ "$total" = "$nbuckets" ] || fail "usage: device 0 bucket total $total, expected $nbuckets"
grep -q "^  btree inodes: [1-9][0-9]* sectors$" "$U" || fail "usage: no btree size for inodes"

# nothing above wrote to the image
expect 0 "$BKFS" show-super "$IMG"
cmp -s "$T/out" "$S" || fail "superblock changed by read-only commands"

# a damaged image: clear errors, never a crash. Every copy of the root is
# damaged (two by default, far apart on the device): with one good copy left
# the btree still reads.
cp "$IMG" "$T/img3"
offs=$(grep '^  inodes ' "$S" | grep -o 'dev 0 off [0-9]*' | awk '{ print $4 }')
[ "$(echo "$offs" | wc -w)" = 2 ] || fail "show-super: not two copies of the root for inodes: '$offs'"
for off in $offs; do
	printf '\377\377\377\377' | dd of="$T/img3" bs=1 seek=$((off * 512 + 200)) conv=notrunc status=none
done
# only the first copy damaged: the list reads the other and is whole
cp "$IMG" "$T/img4"
printf '\377\377\377\377' | dd of="$T/img4" bs=1 seek=$(($(echo $offs | cut -d' ' -f1) * 512 + 200)) conv=notrunc status=none
expect 0 "$BKFS" list -b inodes "$T/img4"
"$BKFS" list -b inodes "$IMG" | cmp -s - "$T/out" || fail "list with one bad copy of the root differs"
"$BKFS" list -b inodes "$T/img3" > "$T/out" 2> "$T/err"
rc=$?
[ "$rc" = 1 ] || fail "list of a damaged btree exited $rc"
grep -q "^bkfs list: btree inodes" "$T/err" || fail "list of a damaged btree: unclear message"
for c in show-super list usage; do
	"$BKFS" "$c" "$T/img3" > /dev/null 2>&1
	rc=$?
	[ "$rc" -lt 2 ] || fail "$c on a damaged image exited $rc"
done
# random damage in the metadata region
for seed in 1 2 3 4 5 6 7 8; do
	cp "$IMG" "$T/img4"
	head -c $((seed * 64)) /dev/urandom |
		dd of="$T/img4" bs=1 seek=$(( (off - 1024 + seed * 300) * 512 )) conv=notrunc status=none
	for c in show-super list usage; do
		"$BKFS" "$c" "$T/img4" > /dev/null 2>&1
		rc=$?
		[ "$rc" -lt 2 ] || fail "$c on randomly damaged image (seed $seed) exited $rc"
	done
done

# two devices with two replicas: both commands work with one device missing
truncate -s 64M "$T/d1" "$T/d2"
if "$BKFS" format --replicas 2 "$T/d1" "$T/d2" > "$T/format2.out" 2>&1; then
	expect 0 "$BKFS" list -b inodes "$T/d1" "$T/d2"
	grep -q " pos 0:4096:0 " "$T/out" || fail "list on two devices: no root inode"
	for d in d1 d2; do
		expect 0 "$BKFS" list -b inodes "$T/$d"
		grep -q " pos 0:4096:0 " "$T/out" || fail "degraded list ($d only): no root inode"
		expect 0 "$BKFS" usage "$T/$d"
		grep -q "(missing)" "$T/out" || fail "degraded usage ($d only): missing device not shown"
	done
else
	echo "note: format --replicas 2 failed, multi-device checks skipped:"
	cat "$T/format2.out"
fi

echo "inspect: ok"
