#!/bin/bash
# online_gc.sh - a mounted filesystem lives under churn (issue: online GC):
# - gen wrap: every bucket of a tiny filesystem reused more than 300 times
#   through the mount (gens wrap past 255): no ENOSPC, the last file intact,
#   no need_gc_gens bucket left once the mount has been idle a moment, fsck
#   clean;
# - durability: a file written without fsync survives kill -9 of the server
#   once the journal flush interval has passed;
# - aging: build/churn (bench/churn.c) holds live data at 85 % (and 50 %) of
#   the space statfs offered at mount and writes 20 times that space (10
#   under a sanitizer build): no ENOSPC, every file matches churn's model,
#   fsck clean; also at 80 % on two devices with --replicas 2 (10 times the
#   space, 5 under a sanitizer build: every byte is written twice, and the
#   run would take minutes);
# - concurrency: stress-ng's filesystem stressors and fio with crc32c verify
#   run while the background GC is forced to run continuously
#   (-o gc_continuous), fsck clean after.
#
# Environment (tests/run.sh): BKFS, TMPDIR. The whole test is skipped
# (exit 77) without FUSE; clients that are not installed are skipped and
# listed.
set -euo pipefail

: "${BKFS:?}" "${TMPDIR:?}" "${BUILD:?}"
CHURN=$BUILD/churn
T=$TMPDIR
IMG=$T/fs.img
MNT=$T/mnt
SRCDIR=${SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
# shellcheck source=lib/expect.bash
. "$SRCDIR/tests/integration/lib/expect.bash"
# shellcheck source=lib/fuse.bash
. "$SRCDIR/tests/integration/lib/fuse.bash"
fuse_require
trap fuse_cleanup EXIT
mkdir -p "$MNT"
skipped=() # clients not installed
if grep -q __asan_init "$BKFS" 2>/dev/null; then SLOW=1; else SLOW=0; fi

# ---- gen wrap ----
echo "== gen wrap"
rm -f "$IMG"
truncate -s 6M "$IMG"
"$BKFS" format --bucket-size 16k --btree-node-size 4k "$IMG" > /dev/null
free=$(usage_buckets free)
[ "$free" -gt 50 ] || fail "only $free free buckets on the tiny image"
bucket=16384
lap_kib=1024
# each lap writes lap_kib and frees it again: laps * lap / (free * bucket)
# reuses per bucket on average; aim past 300
laps=$(( (300 * free * bucket / 1024 + lap_kib - 1) / lap_kib + 20 ))
mount_fg
for i in $(seq 1 "$laps"); do
	dd if=/dev/zero of="$MNT/f" bs=64k count=$((lap_kib / 64)) conv=fsync status=none 2> "$T/dd.err" ||
		{ cat "$T/dd.err"; fail "gen wrap: lap $i of $laps failed"; }
	rm "$MNT/f"
done
reuses=$(( laps * lap_kib * 1024 / (free * bucket) ))
echo "$laps laps of $lap_kib KiB on $free free buckets: each bucket reused about $reuses times"
[ "$reuses" -ge 300 ] || fail "the workload reused buckets only $reuses times"
head -c 300000 /dev/urandom > "$T/last"
cp "$T/last" "$MNT/last"
sync "$MNT/last"
sleep 2.5 # idle: the background generation GC catches up
unmount_fg
grep 'background work' "$T/mount.log"
runs=$(sed -n 's/.*gen GC runs \([0-9]*\).*/\1/p' "$T/mount.log")
[ "${runs:-0}" -gt 0 ] || fail "gen wrap: the mount never ran generation GC"
ngc=$(usage_buckets need_gc_gens)
[ "$ngc" = 0 ] || fail "gen wrap: $ngc buckets still need_gc_gens after an idle mount"
fsck_clean "gen wrap"
mount_fg -o ro
cmp "$T/last" "$MNT/last" || fail "gen wrap: the last file differs"
unmount_fg

# ---- durability of writes without fsync ----
echo "== durability"
rm -f "$IMG"
truncate -s 64M "$IMG"
"$BKFS" format "$IMG" > /dev/null
mount_fg
head -c 500000 /dev/urandom > "$T/nosync"
cp "$T/nosync" "$MNT/nosync"     # no fsync
mkdir "$MNT/dir" && echo hello > "$MNT/dir/small"
sleep 2.5                         # past the default 1 s flush interval
kill_fg
fsck_clean "kill -9 after the flush interval"
mount_fg
cmp "$T/nosync" "$MNT/nosync" || fail "durability: a file written 2.5 s before kill -9 is not intact"
[ "$(cat "$MNT/dir/small")" = hello ] || fail "durability: a small file was lost"
unmount_fg
echo "written without fsync, killed 2.5 s later: intact"

# ---- discard: deleted data gives its space back to the image file ----
echo "== discard"
rm -f "$IMG"
truncate -s 128M "$IMG"
"$BKFS" format "$IMG" > /dev/null
mount_fg
dd if=/dev/urandom of="$MNT/big" bs=1M count=40 status=none
sync "$MNT/big"
full_kib=$(du -k "$IMG" | cut -f1)
df_full=$(df -k --output=used "$MNT" | tail -1)
rm "$MNT/big"
df_now=$(df -k --output=used "$MNT" | tail -1)
[ "$((df_full - df_now))" -ge 38000 ] || fail "discard: df used went from $df_full to $df_now KiB after deleting 40 MiB"
sleep 2.5 # the flush interval, then the discards
empty_kib=$(du -k "$IMG" | cut -f1)
echo "image file: $full_kib KiB with a 40 MiB file, $empty_kib KiB after deleting it; df used $df_full -> $df_now KiB"
[ "$((full_kib - empty_kib))" -ge 35000 ] || fail "discard: the image kept its blocks ($full_kib -> $empty_kib KiB)"
unmount_fg
fsck_clean "discard"
mount_fg -o nodiscard
dd if=/dev/urandom of="$MNT/big" bs=1M count=20 status=none
sync "$MNT/big"
rm "$MNT/big"
sleep 2.5
unmount_fg
[ "$(du -k "$IMG" | cut -f1)" -ge 20000 ] || fail "nodiscard: the image file lost its blocks anyway"
fsck_clean "nodiscard"

# ---- aging: churn at a fill level, 20x the offered space ----
aging() { # aging FILL FACTOR SIZE [FORMAT_OPTS...]
	local fill=$1 factor=$2 size=$3
	shift 3
	local devs=() d
	for d in 1 2; do
		[ "$d" = 2 ] && [ "$*" = "${*#--replicas}" ] && break
		rm -f "$T/dev$d"
		truncate -s "$size" "$T/dev$d"
		devs+=("$T/dev$d")
	done
	"$BKFS" format "$@" "${devs[@]}" > /dev/null
	IMG=$(IFS=:; echo "${devs[*]}")
	mount_fg
	local rc=0
	"$CHURN" "$MNT" --seed "$fill$factor" --fill "$fill" --factor "$factor" > "$T/churn.out" 2> "$T/churn.err" || rc=$?
	unmount_fg
	IMG=$T/fs.img
	cat "$T/churn.out"
	grep 'background work' "$T/mount.log"
	[ "$rc" = 0 ] || { head -20 "$T/churn.err"; fail "aging at $fill % ($*): churn exited $rc"; }
	fsck_clean "aging at $fill % ($*)" "${devs[@]}"
}
echo "== aging"
factor=20
[ "$SLOW" = 1 ] && factor=10
aging 85 "$factor" 48M
aging 50 "$factor" 48M
aging 80 $((factor / 2)) 24M --replicas 2

# ---- concurrency: clients while GC runs continuously ----
echo "== concurrency (gc_continuous)"
rm -f "$IMG"
truncate -s 96M "$IMG"
"$BKFS" format --bucket-size 64k "$IMG" > /dev/null
mount_fg -o gc_continuous
secs=8
[ "$SLOW" = 1 ] && secs=4
pids=()
if have stress-ng; then
	mkdir "$MNT/stress"
	(stress-ng --temp-path "$MNT/stress" --hdd 2 --hdd-bytes 4m --dir 1 --rename 1 --timeout "${secs}s" \
		--metrics-brief > "$T/stress.log" 2>&1) &
	pids+=($!)
else
	skipped+=("stress-ng (not installed)")
fi
if have fio; then
	(fio --name=gcv --directory="$MNT" --size=16m --bs=4k --rw=randwrite --verify=crc32c --do_verify=1 --verify_state_save=0 \
		--verify_fatal=1 --loops=3 --time_based=0 > "$T/fio.log" 2>&1) &
	pids+=($!)
else
	skipped+=("fio (not installed)")
fi
# a churn of whole files beside them: buckets are freed and reused
(for i in $(seq 1 60); do
	dd if=/dev/urandom of="$MNT/churn$((i % 5))" bs=64k count=$((1 + i % 16)) status=none
	[ $((i % 3)) = 0 ] && rm -f "$MNT/churn$((i % 5))"
done) &
pids+=($!)
for p in "${pids[@]}"; do
	wait "$p" || { tail -20 "$T/stress.log" "$T/fio.log" 2>/dev/null; fail "a client failed under continuous GC"; }
done
unmount_fg
grep 'background work' "$T/mount.log"
runs=$(sed -n 's/.*gen GC runs \([0-9]*\).*/\1/p' "$T/mount.log")
[ "${runs:-0}" -ge 10 ] || fail "concurrency: gen GC ran only ${runs:-0} times under gc_continuous"
fsck_clean "clients under continuous GC"

if [ "${#skipped[@]}" -gt 0 ]; then
	echo "skipped clients: ${#skipped[@]}: ${skipped[*]}"
fi
echo "online_gc: ok"
