#!/bin/bash
# aging.sh - the benchmark's aging section (`make bench` runs it after
# bench.sh; `make bench-aging` alone): bkfs, ext4 and btrfs churned through
# a mount by build/churn (bench/churn.c) with live data held at several fill
# levels of the space statfs offered, then checked.
#
# For each filesystem and fill level: a fresh image of BENCH_AGING_SIZE,
# mounted (bkfs: `bkfs mount`; ext4/btrfs: a loop mount, needs root), churned
# until BENCH_AGING_FACTOR times the offered space has been written, verified
# against churn's model, unmounted, and checked (bkfs fsck -n, e2fsck -fn,
# btrfs check --readonly). Reported: user write throughput over the run,
# write amplification (bytes the filesystem wrote to its device / bytes the
# workload wrote: bkfs counts them in its io layer and prints them at
# unmount, the peers' from the loop device's sectors written), ENOSPC count,
# mismatches against the model, fsck wall time and status. The 10 % row is
# the "empty filesystem" throughput the others are compared with.
#
# Environment:
#   BUILD=build
#   BENCH_DIR=$BUILD/bench
#   BENCH_AGING_SIZE=256M     image size (btrfs needs at least ~120M)
#   BENCH_AGING_FILLS="10 50 80 90"
#   BENCH_AGING_FACTOR=10     space written, in multiples of the offered space
#   BENCH_AGING_TOOLS="bkfs ext4 btrfs"
#   BENCH_SEED=1
# Output: a table on stdout and in $BENCH_DIR/aging.txt. Never fails the
# build (exit 0), missing peers are skipped with a note.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BENCH_DIR=${BENCH_DIR:-$BUILD/bench}
SIZE=${BENCH_AGING_SIZE:-256M}
FILLS=${BENCH_AGING_FILLS:-"10 50 80 90"}
FACTOR=${BENCH_AGING_FACTOR:-10}
TOOLS=${BENCH_AGING_TOOLS:-"bkfs ext4 btrfs"}
SEED=${BENCH_SEED:-1}
mkdir -p "$BENCH_DIR"
D=$(realpath "$BENCH_DIR")/aging
mkdir -p "$D/mnt"
# copies: a rebuild during the run does not change what is measured
cp "$BUILD/bkfs" "$D/bkfs.bin" && cp "$BUILD/churn" "$D/churn.bin" || exit 0
BKFS=$D/bkfs.bin
CHURN=$D/churn.bin
IMG=$D/img
MNT=$D/mnt
OUT=$BENCH_DIR/aging.txt

note() { echo "aging: $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
LOOP=""
PID=""
cleanup() {
	mountpoint -q "$MNT" 2>/dev/null && { umount "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null; }
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	rm -f "$IMG"
}
trap cleanup EXIT

loop_written() { # bytes written to the loop device so far
	awk '{ print $7 * 512 }' "/sys/block/$(basename "$LOOP")/stat"
}

# mount_tool TOOL: a fresh filesystem at $MNT
mount_tool() {
	rm -f "$IMG"
	truncate -s "$SIZE" "$IMG"
	case $1 in
	bkfs)
		"$BKFS" format "$IMG" > /dev/null || return 1
		"$BKFS" mount -f "$IMG" "$MNT" 2> "$D/mount.log" &
		PID=$!
		for _ in $(seq 1 100); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
		return 1 ;;
	ext4)
		mkfs.ext4 -q -F "$IMG" || return 1 ;;
	btrfs)
		mkfs.btrfs -q -f "$IMG" > /dev/null || return 1 ;;
	esac
	LOOP=$(losetup -f --show "$IMG") || return 1
	mount "$LOOP" "$MNT" || return 1
}

# unmount_tool TOOL: sets DEV_BYTES to the bytes written to the device. Not
# run in a $(...) subshell: only this shell can wait for the bkfs mount it
# started, and fsck must not start before the mount has written its last
# checkpoint and let go of the device.
unmount_tool() {
	case $1 in
	bkfs)
		fusermount3 -u "$MNT"
		wait "$PID"
		PID=""
		DEV_BYTES=$(sed -n 's/.*device bytes written \([0-9]*\).*/\1/p' "$D/mount.log") ;;
	*)
		umount "$MNT"
		sync
		DEV_BYTES=$(loop_written)
		losetup -d "$LOOP"
		LOOP="" ;;
	esac
}

fsck_tool() { # prints "seconds status"
	local t0 rc=0
	t0=$(date +%s.%N)
	case $1 in
	bkfs) "$BKFS" fsck -n "$IMG" > "$D/fsck.log" 2>&1 || rc=$? ;;
	ext4) e2fsck -fn "$IMG" > "$D/fsck.log" 2>&1 || rc=$? ;;
	btrfs) btrfs check --readonly "$IMG" > "$D/fsck.log" 2>&1 || rc=$? ;;
	esac
	awk -v a="$t0" -v b="$(date +%s.%N)" -v rc="$rc" 'BEGIN { printf "%.2f %s", b - a, rc }'
}

can_run() {
	case $1 in
	bkfs) [ -x "$BKFS" ] && [ -c /dev/fuse ] ;;
	ext4) have mkfs.ext4 && have e2fsck && [ "$(id -u)" = 0 ] ;;
	btrfs) have mkfs.btrfs && have btrfs && [ "$(id -u)" = 0 ] &&
		{ grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null; } ;;
	*) false ;;
	esac
}

{
echo "aging: image $SIZE, ${FACTOR}x the offered space written per run, seed $SEED, $(date '+%Y-%m-%d %H:%M')"
printf '%-6s %5s %10s %9s %9s %8s %7s %6s %8s %6s %7s\n' tool fill space_MiB user_MiB MB/s vs_10% wamp enospc mismatch fsck_s fsck_rc
for tool in $TOOLS; do
	if ! can_run "$tool"; then
		note "$tool: not available here (needs its tools, root for loop mounts, or the kernel module): skipped"
		continue
	fi
	base=""
	for fill in $FILLS; do
		if ! mount_tool "$tool"; then
			note "$tool: could not make or mount a $SIZE filesystem: skipped"
			cleanup
			break
		fi
		res=$("$CHURN" "$MNT" --seed "$SEED" --fill "$fill" --factor "$FACTOR" 2> "$D/churn.err")
		unmount_tool "$tool"
		dev=$DEV_BYTES
		read -r fs_s fs_rc <<< "$(fsck_tool "$tool")"
		get() { sed -n "s/.* *$1=\([^ ]*\).*/\1/p" <<< " $res"; }
		space=$(get space) written=$(get written) mbps=$(get mbps)
		[ -n "$written" ] || { note "$tool $fill%: churn failed: $(tail -2 "$D/churn.err")"; continue; }
		[ "$fill" = 10 ] && base=$mbps
		rel=$([ -n "$base" ] && awk -v a="$mbps" -v b="$base" 'BEGIN { printf "%.2f", a / b }' || echo -)
		wamp=$(awk -v d="${dev:-0}" -v w="$written" 'BEGIN { printf (d > 0 ? "%.2f" : "-"), d / w }')
		printf '%-6s %4s%% %10.0f %9.0f %9s %8s %7s %6s %8s %6s %7s\n' "$tool" "$fill" \
			"$(awk -v s="$space" 'BEGIN { print s / 1048576 }')" "$(awk -v s="$written" 'BEGIN { print s / 1048576 }')" \
			"$mbps" "$rel" "$wamp" "$(get enospc)" "$(get mismatches)" "$fs_s" "$fs_rc"
		rm -f "$IMG"
	done
done
echo "targets: 0 ENOSPC at 90 %; write amplification at 80 % <= 2.5; MB/s at 80 % >= 0.5x the 10 % row"
} | tee "$OUT"
exit 0
