# fuse.bash - FUSE mount helpers for the integration scripts. The script
# defines fail and skip and sets BKFS, T (scratch directory), IMG (what
# `bkfs mount` gets: DEV[:DEV...]) and MNT (the mount point); PID is the
# foreground server while one runs.
PID=""

# skip the whole script unless FUSE mounts can work here
fuse_require() {
	[ -c /dev/fuse ] || skip "no /dev/fuse"
	command -v fusermount3 > /dev/null 2>&1 || skip "no fusermount3"
	command -v mountpoint > /dev/null 2>&1 || skip "no mountpoint(1)"
}

# the first mount: skip when this environment refuses FUSE mounts
fuse_first_mount() {
	mount_fg "$@" && return 0
	if grep -qiE 'permission denied|not permitted|fuse: device not found|failed to open /dev/fuse' "$T/mount.log"; then
		skip "FUSE mounts are not allowed here: $(head -1 "$T/mount.log")"
	fi
	fail "bkfs mount failed"
}

# mount_fg [OPTS...]: bkfs mount -f in the background; PID is the server
mount_fg() {
	"$BKFS" mount -f "$@" "$IMG" "$MNT" > "$T/mount.log" 2>&1 &
	PID=$!
	for _ in $(seq 1 200); do
		mountpoint -q "$MNT" && return 0
		if ! kill -0 "$PID" 2>/dev/null; then
			local rc=0
			wait "$PID" || rc=$?
			PID=""
			cat "$T/mount.log"
			return 1
		fi
		sleep 0.05
	done
	cat "$T/mount.log"
	fail "mount did not come up in 10s"
}

# unmount_fg: fusermount3 -u, then the server must exit 0 (it closes the
# filesystem after the unmount: wait for it before touching the image)
unmount_fg() {
	fusermount3 -u "$MNT" || fail "fusermount3 -u"
	local rc=0
	wait "$PID" || rc=$?
	PID=""
	[ "$rc" = 0 ] || { cat "$T/mount.log"; fail "bkfs mount exited $rc after unmount"; }
}

# for an EXIT trap: unmount whatever is still mounted at MNT, reap the server
# (woken first: a stopped server would hang the mountpoint check)
fuse_cleanup() {
	[ -n "$PID" ] && kill -CONT "$PID" 2>/dev/null
	if mountpoint -q "$MNT" 2>/dev/null; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
	fi
	if [ -n "$PID" ]; then
		wait "$PID" 2>/dev/null || true
	fi
	return 0
}

# kill_fg: the server killed (a crash: what it had not flushed is lost)
kill_fg() {
	kill -9 "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
	fusermount3 -uz "$MNT" 2>/dev/null || true
}

# fsck_clean WHAT [DEV...]: bkfs fsck -n exits 0 (default device: $IMG)
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
