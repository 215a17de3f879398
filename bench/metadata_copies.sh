#!/bin/bash
# metadata_copies.sh - what the second copy of the metadata costs: bkfs with
# --metadata-replicas 2 against 1 (every btree node written twice), beside
# btrfs with -m dup against -m single, and ext4 (one metadata layout) as a
# plain reference row. The configurations alternate run by run (bkfs 1,
# bkfs 2, btrfs single, btrfs dup, ext4, bkfs 1, ...), and the tables show
# medians; the second copy's cost is the extra time of the two-copy layout
# in percent of the one-copy one, on the medians (negative: it was faster).
#
# Offline: the same generated tree imported into an image file, then checked:
#   bkfs   bkfs format --metadata-replicas 1|2 --source TREE;
#          bkfs fsck -n (and fsck -n --all-copies on the two-copy image)
#   btrfs  mkfs.btrfs -m single|dup -d single --rootdir TREE;
#          btrfs check --readonly
#   ext4   mke2fs -t ext4 -d TREE; e2fsck -fn
# Rows: median wall and CPU (user + sys) time and every run's wall time, each
# run timed by bench/timed.c (built into $BUILD/timed when missing).
# fsck -n of a 100,000-file tree takes about 0.2 s, so it runs MC_FSCK_RUNS
# times (on a shared machine the wall time of one run varies by more than the
# cost measured). The peers are slower (mkfs.btrfs --rootdir of that tree
# takes 30-45 s, btrfs check 4 s), so they run fewer times by default
# (MC_PEER_RUNS, MC_PEER_FSCK_RUNS), beside the first bkfs runs.
#
# Mounted: for every run and configuration a fresh image, mounted (bkfs
# mount -f; btrfs and ext4 on a loop device, which needs root; the order of
# the configurations rotates from run to run), then
#   seq_w   fio sequential write of MC_FIO_SIZE in 1 MiB blocks, fsync at the
#           end (MiB/s, fio's figure, which includes the fsync)
#   untar   tar -xf of a tarball of a generated tree (gentree --files
#           MC_MOUNT_FILES, files up to 64 KiB): the seconds of tar alone, and
#           of tar and the unmount (untar+umount: until it is all on the
#           image; bkfs checkpoints when unmounted, umount flushes the kernel
#           filesystems and their loop device)
#
# Environment: BUILD=build, MC_FILES=100000 (gentree --files, offline tree),
# MC_RUNS=3 (bkfs imports of each), MC_FSCK_RUNS=15 (bkfs fsck runs of each),
# MC_PEER_RUNS=1 (btrfs and ext4 imports of each), MC_PEER_FSCK_RUNS=3
# (their checks), MC_MOUNT_FILES=5000 (files of the untarred tree; 0 skips
# the mounted part), MC_MOUNT_RUNS=3 (mounted runs of each), MC_FIO_SIZE=256m,
# MC_PEERS="btrfs ext4" (the peers to include; "" for bkfs alone),
# MC_DIR=$BUILD/bench-mc (trees, images, mount point; removed at the end
# unless MC_KEEP=1), MC_GENTREE_ARGS (extra gentree arguments for the offline
# tree, default none). With the defaults this takes about 4 minutes on 2
# shared cores (half offline, dominated by mkfs.btrfs, half mounted).
# A missing peer or tool is skipped with a note; this exits 0 unless the tree
# cannot be generated.
set -uo pipefail

BUILD=${BUILD:-build}
BKFS=$(realpath "$BUILD/bkfs")
GENTREE=$(realpath "$BUILD/gentree")
FILES=${MC_FILES:-100000}
RUNS=${MC_RUNS:-3}
FRUNS=${MC_FSCK_RUNS:-15}
PRUNS=${MC_PEER_RUNS:-1}
PFRUNS=${MC_PEER_FSCK_RUNS:-3}
MFILES=${MC_MOUNT_FILES:-5000}
MRUNS=${MC_MOUNT_RUNS:-3}
FIO_SIZE=${MC_FIO_SIZE:-256m}
PEERS=${MC_PEERS-"btrfs ext4"}
DIR=${MC_DIR:-$BUILD/bench-mc}
read -r -a GARGS <<< "${MC_GENTREE_ARGS:-}"

note() { echo "metadata_copies: $*" >&2; }

mkdir -p "$DIR" "$DIR/mnt"
DIR=$(realpath "$DIR")
MNT=$DIR/mnt OUT=$DIR
# shellcheck source=bench/mountlib.sh
. "$(dirname "$0")/mountlib.sh"
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	ml_cleanup
	[ "${MC_KEEP:-0}" = 1 ] || rm -rf --one-file-system "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM	# also when a client (fio) handles the signal and exits 0

have() { command -v "$1" > /dev/null; }
# bench/timed.c times a run to the microsecond (wall and CPU of the child from
# wait4); /usr/bin/time (10 ms) only when it cannot be built: bkfs's fsck of
# the tree takes 40-100 ms
TIMED=$(realpath "$BUILD")/timed
if [ ! -x "$TIMED" ] || [ "$(dirname "$0")/timed.c" -nt "$TIMED" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -o "$TIMED" "$(dirname "$0")/timed.c" || TIMED=""
fi
if [ -z "$TIMED" ]; then
	note "could not build bench/timed.c: runs are timed with /usr/bin/time (10 ms resolution)"
	[ -x /usr/bin/time ] || { note "/usr/bin/time missing (Debian package 'time'): nothing measured"; exit 0; }
fi

# the configurations: bkfs1 bkfs2 always, then the peers whose tools exist
CONFIGS="bkfs1 bkfs2"
for p in $PEERS; do
	case $p in
	btrfs) if have mkfs.btrfs && have btrfs; then CONFIGS+=" btrfs1 btrfs2"; else note "no mkfs.btrfs/btrfs: btrfs skipped"; fi ;;
	ext4) if have mke2fs && have e2fsck; then CONFIGS+=" ext4"; else note "no mke2fs/e2fsck: ext4 skipped"; fi ;;
	*) note "unknown peer '$p' (btrfs ext4)" ;;
	esac
done
label() {
	case $1 in
	bkfs1) echo "bkfs, metadata replicas 1" ;;
	bkfs2) echo "bkfs, metadata replicas 2" ;;
	btrfs1) echo "btrfs -m single" ;;
	btrfs2) echo "btrfs -m dup" ;;
	ext4) echo "ext4" ;;
	esac
}

# ---- offline: import and fsck ----

[ -d "$DIR/tree" ] || "$GENTREE" --files "$FILES" --quiet "${GARGS[@]}" "$DIR/tree" || { note "gentree failed"; exit 1; }
apparent=$(du -sb --apparent-size "$DIR/tree" | cut -f1)
entries=$(find "$DIR/tree" | wc -l)
size=$(( apparent * 2 + (1 << 30) ))

declare -A R	# R[metric:config]: the runs, " wall,cpu" each
declare -A IMG_MIB	# IMG_MIB[config]: the allocated size of its last imported image

secs() {	# secs KEY CMD...: append "wall,cpu" seconds of CMD (output to cmd.out) to R[KEY]
	local key=$1 wall cpu rc
	shift
	if [ -n "$TIMED" ]; then
		read -r wall cpu _ rc <<< "$("$TIMED" "$DIR/cmd.out" "$@")"
	else
		/usr/bin/time -o "$DIR/time.out" -f "%e %U %S %x" "$@" > "$DIR/cmd.out" 2>&1
		read -r wall cpu rc <<< "$(tail -1 "$DIR/time.out" | awk '{ print $1, $2 + $3, $4 }')"
	fi
	if [ "${rc:-1}" = 0 ]; then
		R[$key]+=" $wall,$cpu"
	else
		note "failed (exit ${rc:-?}): $* (see $DIR/cmd.out)"
		return 1
	fi
}

import() {	# import CONFIG: a new image of the tree, $DIR/CONFIG.img
	local img=$DIR/$1.img
	rm -f "$img"
	truncate -s "$size" "$img"
	sync	# nothing of the last run left to write back during this one
	case $1 in
	bkfs[12]) secs "import:$1" "$BKFS" format --metadata-replicas "${1#bkfs}" --source "$DIR/tree" "$img" ;;
	btrfs1) secs "import:$1" mkfs.btrfs -q -f -m single -d single --rootdir "$DIR/tree" "$img" ;;
	btrfs2) secs "import:$1" mkfs.btrfs -q -f -m dup -d single --rootdir "$DIR/tree" "$img" ;;
	ext4) secs "import:$1" mke2fs -q -F -t ext4 -N $((entries + entries / 10 + 1024)) -d "$DIR/tree" "$img" ;;
	esac || { rm -f "$img"; return; }
	IMG_MIB[$1]=$(du -m "$img" | cut -f1)
}

check() {	# check CONFIG: one fsck run of its image, if the import worked
	local img=$DIR/$1.img
	[ -f "$img" ] || return 0
	case $1 in
	bkfs[12]) secs "fsck:$1" "$BKFS" fsck -n "$img" ;;
	btrfs[12]) secs "fsck:$1" btrfs check --readonly "$img" ;;
	ext4) secs "fsck:$1" e2fsck -fn "$img" ;;
	esac
	[ "$1" = bkfs2 ] && secs "allcopies:$1" "$BKFS" fsck -n --all-copies "$img"
	return 0
}

runs_of() {	# runs_of CONFIG IMPORT_RUNS|FSCK_RUNS: bkfs's count or the peers'
	case $1 in bkfs*) echo "$2" ;; *) echo "$3" ;; esac
}

for run in $(seq 1 "$(( RUNS > PRUNS ? RUNS : PRUNS ))"); do
	for c in $CONFIGS; do
		[ "$run" -le "$(runs_of "$c" "$RUNS" "$PRUNS")" ] && import "$c"
	done
done
for run in $(seq 1 "$(( FRUNS > PFRUNS ? FRUNS : PFRUNS ))"); do
	for c in $CONFIGS; do
		[ "$run" -le "$(runs_of "$c" "$FRUNS" "$PFRUNS")" ] && check "$c"
	done
done
# the space the metadata takes, for the table
for c in bkfs1 bkfs2; do
	[ -f "$DIR/$c.img" ] && "$BKFS" usage "$DIR/$c.img" > "$DIR/$c.usage" 2> /dev/null
done
# the offline images are done with: the mounted part writes its own
rm -f "$DIR"/*.img

# ---- mounted: write throughput ----

mountable() {	# mountable CONFIG: can it be mounted here at all
	case $1 in
	bkfs*) [ -c /dev/fuse ] && have fusermount3 ;;
	*) [ "$(id -u)" = 0 ] && have losetup ;;
	esac
}

mount_config() {	# mount_config CONFIG: a fresh image of it mounted at $MNT
	local img=$DIR/m.img
	rm -f "$img"
	truncate -s 4G "$img"
	sync
	case $1 in
	bkfs[12])
		"$BKFS" format --metadata-replicas "${1#bkfs}" "$img" > /dev/null || return 1
		ml_fuse "$DIR/mount.log" "$BKFS" mount -f "$img" "$MNT" ;;
	btrfs1) mkfs.btrfs -q -f -m single -d single "$img" > /dev/null && ml_loop "$img" ;;
	btrfs2) mkfs.btrfs -q -f -m dup -d single "$img" > /dev/null && ml_loop "$img" ;;
	ext4) mkfs.ext4 -q -F "$img" && ml_loop "$img" ;;
	esac
}

MCONFIGS=""
if [ "$MFILES" -gt 0 ] && [ "$MRUNS" -gt 0 ]; then
	for c in $CONFIGS; do
		if mountable "$c"; then MCONFIGS+=" $c"; else note "$c: cannot mount here (no /dev/fuse, or not root): skipped in the mounted part"; fi
	done
	have fio || note "no fio: seq_w skipped"
	rm -rf "$DIR/mtree"
	if ! "$GENTREE" --seed 7 --files "$MFILES" --max-size 64K --no-special --no-owners --quiet "$DIR/mtree" ||
		! tar -C "$DIR/mtree" -cf "$DIR/mtree.tar" .; then
		note "no tree to untar: mounted part skipped"
		MCONFIGS=""
	fi
	rm -rf "$DIR/mtree"
fi

# the order rotates from run to run, so that no configuration always follows
# the same one
read -r -a mc <<< "$MCONFIGS"
for run in $(seq 1 "$MRUNS"); do
	for i in "${!mc[@]}"; do
		c=${mc[$(( (i + run - 1) % ${#mc[@]} ))]}
		if ! mount_config "$c"; then
			note "run $run: $c did not mount (see $DIR/mount.log)"
			ml_cleanup
			continue
		fi
		if have fio; then
			if v=$(ml_fio seqw write 1m "$FIO_SIZE" --end_fsync=1 --fallocate=none); then
				R[seq_w:$c]+=" $v,$v"
			else
				note "run $run: $c: fio failed (see $DIR/fio.err)"
			fi
		fi
		t0=$(ml_now)
		if v=$(ml_untar "$DIR/mtree.tar"); then
			R[untar:$c]+=" $v,$v"
			ml_unmount && v=$(ml_elapsed "$t0") && R[untar_umount:$c]+=" $v,$v"
		else
			note "run $run: $c: tar failed (see $DIR/tar.err)"
		fi
		ml_unmount
		ml_cleanup
	done
done
rm -f "$DIR/m.img"

# ---- the tables ----

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
wall() { for x in "$@"; do echo "${x%,*}"; done; }
cpu() { for x in "$@"; do echo "${x#*,}"; done; }
# shellcheck disable=SC2046,SC2086
mwall() { median $(wall ${R[$1]:-}); }
# shellcheck disable=SC2046,SC2086
mcpu() { median $(cpu ${R[$1]:-}); }

row() {	# row LABEL KEY [EXTRA]: the median wall and CPU time of R[KEY], EXTRA, its runs
	local runs=${R[$2]:-}
	if [ -z "$runs" ]; then
		printf '  %-38s %s\n' "$1" "-"
		return
	fi
	# shellcheck disable=SC2046,SC2086
	printf '  %-38s wall %7.3f s  cpu %7.3f s  %s wall runs:%s\n' "$1" "$(mwall "$2")" "$(mcpu "$2")" \
		"${3:-}" "$(printf ' %.3f' $(wall $runs))"
}
pct() {	# pct ONE TWO [inverse]: extra time of TWO over ONE in percent
	if [ -z "$1" ] || [ -z "$2" ]; then echo "-"; return; fi
	awk -v a="$1" -v b="$2" -v inv="${3:-0}" 'BEGIN {
		if (inv) { t = a; a = b; b = t }
		if (a <= 0) print "-"; else printf "%+.1f %%", (b - a) * 100 / a }'
}
cost() {	# cost LABEL METRIC FS [TARGET]: the second copy's cost for FS (bkfs|btrfs),
	# wall and cpu, and whether the wall cost is within TARGET percent
	local one=$2:${3}1 two=$2:${3}2 w verdict=""
	if [ -z "${R[$one]:-}" ] || [ -z "${R[$two]:-}" ]; then return 0; fi
	w=$(pct "$(mwall "$one")" "$(mwall "$two")")
	if [ -n "${4:-}" ] && [ "$w" != - ]; then
		verdict=$(awk -v w="${w% %}" -v t="$4" 'BEGIN { print w + 0 <= t ? "within" : "over" }')
		verdict="   $verdict the target ($4 %)"
	fi
	printf '  %-6s %-7s wall %9s   cpu %9s%s\n' "$3" "$1" "$w" "$(pct "$(mcpu "$one")" "$(mcpu "$two")")" "$verdict"
}

echo "metadata copies: tree of $FILES files, $entries entries, $(( apparent >> 20 )) MiB apparent;" \
	"imports: $RUNS (bkfs) / $PRUNS (peers), checks: $FRUNS / $PFRUNS, alternating"
echo "import:"
for c in $CONFIGS; do row "$(label "$c")" "import:$c" "$(printf 'image %5s MiB ' "${IMG_MIB[$c]:--}")"; done
echo "fsck (bkfs fsck -n, btrfs check --readonly, e2fsck -fn):"
for c in $CONFIGS; do row "$(label "$c")" "fsck:$c"; done
row "bkfs fsck -n --all-copies, replicas 2" "allcopies:bkfs2"
echo "the second copy costs (bkfs: replicas 2 against 1; btrfs: -m dup against -m single):"
for fs in bkfs btrfs; do
	cost import import "$fs" "$([ "$fs" = bkfs ] && echo 15)"
	cost fsck fsck "$fs" "$([ "$fs" = bkfs ] && echo 10)"
done
for c in bkfs1 bkfs2; do
	[ -f "$DIR/$c.usage" ] && awk -v l="$(label "$c")" '$1 == "btree" && NF == 4 {
		printf "  %s: btree nodes %d MiB in %d buckets\n", l, $3 / 2048, $2; exit }' "$DIR/$c.usage"
done

if [ -n "$MCONFIGS" ]; then
	echo "mounted, median of $MRUNS runs, a fresh 4 GiB image each: fio write of $FIO_SIZE (MiB/s, higher is"
	echo "better), untar of $MFILES files (s, lower is better), untar and unmount (s):"
	printf '  %-14s' ""
	for c in $MCONFIGS; do printf ' %13s' "$c"; done
	echo
	for m in seq_w untar untar_umount; do
		printf '  %-14s' "$m"
		for c in $MCONFIGS; do v=$(mwall "$m:$c"); printf ' %13s' "${v:--}"; done
		printf '\n  %-14s' "  min-max"
		for c in $MCONFIGS; do
			# shellcheck disable=SC2046,SC2086
			v=$(wall ${R[$m:$c]:-} | sort -g | awk 'NR == 1 { a = $1 } { b = $1 } END { if (NR) print a "-" b }')
			printf ' %13s' "${v:--}"
		done
		echo
	done
	echo "  (bkfs1/bkfs2: bkfs mount, metadata replicas 1/2; btrfs1/btrfs2: -m single/dup; every run:"
	echo "  $DIR/runs.txt with MC_KEEP=1)"
	echo "the second copy costs, as extra time in percent (for seq_w: of the same write at the median MiB/s):"
	for fs in bkfs btrfs; do
		for m in seq_w untar untar_umount; do
			if [ -z "${R[$m:${fs}1]:-}" ] || [ -z "${R[$m:${fs}2]:-}" ]; then continue; fi
			inv=0
			[ "$m" = seq_w ] && inv=1
			printf '  %-8s %-14s %9s\n' "$fs" "$m" "$(pct "$(mwall "$m:${fs}1")" "$(mwall "$m:${fs}2")" "$inv")"
		done
	done
fi
for k in "${!R[@]}"; do echo "$k:${R[$k]}"; done | sort > "$DIR/runs.txt"
exit 0
