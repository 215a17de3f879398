# shellcheck shell=bash
# mountlib.sh - sourced (not run) by the benchmarks that write through a
# mounted filesystem (fuse.sh, metadata_copies.sh). One filesystem at a time
# is mounted at $MNT: either a FUSE server run in the foreground (bkfs mount
# -f, passthrough_ll) or a kernel filesystem on a loop device over an image
# file (needs root). The caller sets MNT, and OUT (a directory for the
# workloads' output files); the helpers keep the FUSE server's pid in ML_PID
# and the loop device in ML_LOOP, so that ml_cleanup (for an EXIT trap) can
# undo whichever is up.

ML_PID="" ML_LOOP=""

# ml_fuse LOG CMD...: start the FUSE server CMD (in its foreground mode) in
# the background, its stderr to LOG; 0 once $MNT is mounted, 1 when the server
# exits or 10 s pass first
ml_fuse() {
	local log=$1
	shift
	"$@" 2> "$log" &
	ML_PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$ML_PID" 2> /dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ml_loop IMG [mount options...]: attach IMG to a free loop device and mount
# it at $MNT
ml_loop() {
	local img=$1
	shift
	ML_LOOP=$(losetup -f --show "$img") || { ML_LOOP=""; return 1; }
	mount "$@" "$ML_LOOP" "$MNT"
}

# ml_unmount: unmount $MNT and return once what was written is on the image:
# the FUSE server has exited (bkfs checkpoints when unmounted), or umount has
# returned and the loop device is detached. 1 if a step failed (a server
# that cannot be unmounted, e.g. one that never mounted, is killed).
ml_unmount() {
	local rc=0
	if [ -n "$ML_PID" ]; then
		fusermount3 -u "$MNT" || { rc=1; kill "$ML_PID" 2> /dev/null; }
		wait "$ML_PID" 2> /dev/null || rc=1
		ML_PID=""
	fi
	if [ -n "$ML_LOOP" ]; then
		umount "$MNT" || rc=1
		losetup -d "$ML_LOOP" || rc=1
		ML_LOOP=""
	fi
	return $rc
}

# ml_cleanup: for an EXIT trap, and after a failed mount: whatever is still
# mounted at $MNT or attached, undone without complaint
ml_cleanup() {
	if mountpoint -q "$MNT" 2> /dev/null; then
		fusermount3 -u "$MNT" 2> /dev/null || umount "$MNT" 2> /dev/null ||
			fusermount3 -uz "$MNT" 2> /dev/null || umount -l "$MNT" 2> /dev/null
	fi
	[ -n "$ML_PID" ] && wait "$ML_PID" 2> /dev/null
	[ -n "$ML_LOOP" ] && losetup -d "$ML_LOOP" 2> /dev/null
	ML_PID="" ML_LOOP=""
	return 0
}

ml_now() { date +%s.%N; }
ml_elapsed() { awk -v a="$1" -v b="$(ml_now)" 'BEGIN { printf "%.2f", b - a }'; }

# ml_fio NAME RW BS SIZE [fio options...]: one fio job on $MNT/fio.dat;
# prints the MiB/s of its main direction (for a write with --end_fsync=1,
# fio's figure includes the final fsync)
ml_fio() {
	local name=$1 rw=$2 bs=$3 size=$4 field
	shift 4
	fio --name="$name" --directory="$MNT" --filename=fio.dat --rw="$rw" --bs="$bs" --size="$size" \
		--ioengine=psync --verify_state_save=0 --output-format=terse --terse-version=3 "$@" \
		> "$OUT/fio.out" 2> "$OUT/fio.err" || return 1
	case $rw in *read*) field=7 ;; *) field=48 ;; esac # bandwidth KiB/s
	awk -F';' -v f="$field" 'NR == 1 { printf "%.1f", $f / 1024 }' "$OUT/fio.out"
}

# ml_untar TAR: extract TAR into $MNT/src; prints the seconds it took
ml_untar() {
	local t0
	mkdir -p "$MNT/src" || return 1
	t0=$(ml_now)
	tar -C "$MNT/src" --warning=no-timestamp -xf "$1" 2> "$OUT/tar.err" || return 1
	ml_elapsed "$t0"
}
