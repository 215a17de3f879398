# mount.bash - FUSE mount helpers for integration scripts. Needs BKFS, T
# (scratch directory), IMG (the device argument, DEV[:DEV...]) and MNT set,
# and fail() defined (lib/expect.bash).
PID=""

have() { command -v "$1" >/dev/null 2>&1; }

# skip the whole script (exit 77) where FUSE cannot be used
require_fuse() {
	[ -c /dev/fuse ] || { echo "skipped: no /dev/fuse"; exit 77; }
	have fusermount3 || { echo "skipped: no fusermount3"; exit 77; }
	have mountpoint || { echo "skipped: no mountpoint(1)"; exit 77; }
}

# mount_fg [OPTS...]: bkfs mount -f in the background; PID is the server
mount_fg() {
	"$BKFS" mount -f "$@" "$IMG" "$MNT" > "$T/mount.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		if ! kill -0 "$PID" 2>/dev/null; then
			wait "$PID" || true
			PID=""
			cat "$T/mount.log"
			return 1
		fi
		sleep 0.05
	done
	cat "$T/mount.log"
	fail "mount did not come up in 10s"
}

# unmount_fg: fusermount3 -u, then the server must exit 0
unmount_fg() {
	fusermount3 -u "$MNT" || fail "fusermount3 -u"
	local rc=0
	wait "$PID" || rc=$?
	PID=""
	[ "$rc" = 0 ] || { cat "$T/mount.log"; fail "bkfs mount exited $rc after unmount"; }
}

# kill_fg: the server killed (power cut for the data it had not flushed)
kill_fg() {
	kill -9 "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
	fusermount3 -uz "$MNT" 2>/dev/null || true
}

cleanup_mount() {
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	fi
	[ -z "$PID" ] || wait "$PID" 2>/dev/null || true
}

# fsck_clean WHAT [DEV...]: bkfs fsck -n exits 0
fsck_clean() {
	local what=$1 rc=0
	shift
	[ $# -gt 0 ] || set -- "$IMG"
	"$BKFS" fsck -n "$@" > "$T/fsck.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { tail -30 "$T/fsck.log"; fail "fsck -n not clean after $what (exit $rc)"; }
	echo "fsck -n after $what: clean"
}

# usage_buckets DATA_TYPE [DEV...]: buckets of that type on device 0 (bkfs usage)
usage_buckets() {
	local type=$1
	shift
	[ $# -gt 0 ] || set -- "$IMG"
	"$BKFS" usage "$@" | awk -v t="$type" '/^Device 0:/ { d = 1 } d && $1 == t { print $2; exit }'
}
