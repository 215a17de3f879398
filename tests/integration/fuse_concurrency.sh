#!/bin/bash
# fuse_concurrency.sh - several clients change the mount at once: CONC_CLIENTS
# processes (lib/conc_model.py) create, overwrite, extend, truncate, rename
# (across four shared directories, to new names and over existing files), hard
# link, unlink, and unlink while open, each on names of its own in the same
# directories, reading their files back as they go. Each logs its completed
# operations; the tree is then compared with the model replayed from the logs
# (names, contents, link counts, shared inode numbers) on the live mount, and
# again after unmount and a fresh mount; `bkfs fsck -n` is clean after each
# unmount (and a file changed behind the model's back is noticed). Run three
# times: on a roomy image with the default mount; on a small image with -o
# gc_continuous (generation GC and copying GC at work beside the clients) and
# the server never polling /dev/fuse (poll_us=0: a sleeping read per request);
# and with the longest polling window (poll_us=1000).
#
# Environment (tests/run.sh): BKFS, SRCDIR, TMPDIR. CONC_CLIENTS (default 4),
# CONC_OPS (operations per client, default 400; 150 for a sanitizer build).
set -euo pipefail

: "${BKFS:?}" "${TMPDIR:?}"
T=$TMPDIR
IMG=$T/fs.img
MNT=$T/mnt
LIB=$(cd "$(dirname "$0")" && pwd)/lib
CLIENTS=${CONC_CLIENTS:-4}
if grep -q __asan_init "$BKFS" 2>/dev/null; then
	OPS=${CONC_OPS:-150}
else
	OPS=${CONC_OPS:-400}
fi

. "$LIB/common.bash"
. "$LIB/fuse.bash"
fuse_require
command -v python3 > /dev/null || skip "no python3"
trap fuse_cleanup EXIT
mkdir -p "$MNT"

# run_clients ROUND: the clients in parallel; fails if any of them failed
run_clients() {
	local round=$1 pids=() rc=0 i
	rm -rf "$T/logs"
	mkdir -p "$T/logs"
	for i in $(seq 1 "$CLIENTS"); do
		python3 "$LIB/conc_model.py" client "$i" "$((round * 100 + i))" "$OPS" "$MNT" "$T/logs/$i.log" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	[ "$rc" = 0 ] || fail "a client failed (round $round)"
	echo "round $round: $CLIENTS clients x $OPS operations done ($(cat "$T/logs"/*.log | wc -l) logged changes)"
}

check_tree() {
	python3 "$LIB/conc_model.py" check "$MNT" "$T/logs"/*.log || fail "the tree differs from the model ($1)"
}

# one_round ROUND SIZE [MOUNT OPTIONS...]
one_round() {
	local round=$1 size=$2
	shift 2
	rm -f "$IMG"
	truncate -s "$size" "$IMG"
	"$BKFS" format "$IMG" > /dev/null
	if [ "$round" = 1 ]; then fuse_first_mount "$@"; else mount_fg "$@" || fail "mount $*"; fi
	mkdir "$MNT"/d0 "$MNT"/d1 "$MNT"/d2 "$MNT"/d3
	run_clients "$round"
	check_tree "live mount, round $round"
	unmount_fg
	fsck_clean "round $round ($*)"
	mount_fg "$@" || fail "remount"
	check_tree "after remount, round $round"
	# the check itself must see a difference: one byte more in one file
	local victim
	victim=$(find "$MNT"/d0 "$MNT"/d1 "$MNT"/d2 "$MNT"/d3 -type f -print -quit)
	printf x >> "$victim"
	if python3 "$LIB/conc_model.py" check "$MNT" "$T/logs"/*.log 2> "$T/neg.log"; then
		fail "the check missed a changed file ($victim)"
	fi
	echo "a changed file is noticed: $(cat "$T/neg.log")"
	unmount_fg
	fsck_clean "round $round after remount"
}

one_round 1 512M
one_round 2 48M -o gc_continuous,poll_us=0
one_round 3 128M -o poll_us=1000
grep -q "background work:" "$T/mount.log" && grep "background work:" "$T/mount.log" | tail -1
echo "fuse_concurrency: ok"
