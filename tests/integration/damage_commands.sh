#!/bin/bash
# damage_commands.sh - a damaged image never crashes any command: a seeded
# campaign of random damage (bytes and bit flips in btree nodes, superblock
# copies, anywhere) on a one-copy image, each case followed by every command
# that reads it (show-super, list, usage, scan, scrub -n, extract), a
# read-only and a read-write mount doing real work (when FUSE mounts work
# here), then fsck -y and fsck -n, which must be a fixed point
# (lib/damage_commands.py says what counts as a failure). fuzz.sh covers
# fsck and extract with more cases; this covers the other commands.
#
# Environment: DC_CASES (default 40; 12 under ASan), DC_SEED (default 1).
# Skipped (exit 77) without python3.
set -uo pipefail

DIR=$(cd "$(dirname "$0")" && pwd)
. "$DIR/lib/corrupt_common.bash"
command -v python3 > /dev/null 2>&1 || skip "no python3"

CASES=${DC_CASES:-40}
is_asan && CASES=${DC_CASES:-12}
fuse=0
if [ -c /dev/fuse ] && command -v fusermount3 > /dev/null 2>&1; then
	fuse=1
else
	echo "no /dev/fuse or fusermount3: the mounts are left out"
fi
python3 "$DIR/lib/damage_commands.py" "$BKFS" "$GENTREE" "$TMPDIR" "$CASES" "${DC_SEED:-1}" "$fuse" ||
	fail "a command crashed, hung or did not reach a fixed point on a damaged image"
