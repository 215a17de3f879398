#!/bin/bash
# bench.sh - `make bench`: build the same generated tree into bkfs, ext4, btrfs
# and XFS images and time import, extract and fsck against the peers.
#
# Environment:
#   BUILD=build            build directory (bkfs and gentree binaries)
#   BENCH_BKFS=$BUILD/bkfs the bkfs binary to time; it is copied to
#                          $BENCH_DIR/bkfs.bin at the start, so a rebuild during
#                          the run does not change what is measured
#   BENCH_SIZES="10000 200000"
#                          tree sizes (--files for gentree). 1000000 is a useful
#                          optional size (see BENCH_GENTREE_ARGS): a 7.7 GiB
#                          tree (11.4 GiB apparent) and images of 9 (bkfs),
#                          8 (ext4), 15 (btrfs) and 14 (XFS) GiB, so ~53 GiB at
#                          the end of its imports, then up to ~11 GiB for an
#                          extracted copy (with BENCH_KEEP=images the tree is
#                          gone by then). The 10000 200000 1000000 run took
#                          1 h 36 min on 2 shared CPUs (rm -rf of the 1M trees
#                          and extracted copies alone ~40 min).
#   BENCH_GENTREE_ARGS     extra arguments for build/gentree (see
#                          `build/gentree --help`), for every size. Unset: none
#                          below 500000 files, `--max-size 65536` from 500000 on
#                          (large files at most 64 KiB, so the 1M tree fits on an
#                          ordinary disk). Set it, even to "", to override.
#   BENCH_DIR=$BUILD/bench where trees, images and results go
#   BENCH_SEED=1           gentree seed
#   BENCH_TIMEOUT=3600     per-operation timeout in seconds
#   BENCH_OPS="import extract fsck"
#                          phases to run. Without import, the images kept by an
#                          earlier run (BENCH_KEEP=1 or images) are used, as with
#                          BENCH_REUSE=1; a tool without one is skipped.
#   BENCH_TOOLS="bkfs ext4 btrfs xfs"
#                          filesystems to include
#   BENCH_REPEAT=3         timed runs of each checker (fsck phase); the runs of
#                          the tools alternate (round-robin, rotating which goes
#                          first) and the table shows the median run
#   BENCH_KEEP=0           1: keep trees and images afterwards (and their
#                          markers); images: keep only the images (what a later
#                          BENCH_OPS=fsck run needs) and remove each tree once
#                          its imports are done, before extract (saves disk: the
#                          1M tree is ~8 GiB). Otherwise everything is removed.
#                          A run only ever removes trees and images it made
#                          itself: reused ones stay whatever BENCH_KEEP says.
#   BENCH_REUSE=1          reuse a kept tree and kept images instead of making
#                          them again: an image is reused when its marker file
#                          ($BENCH_DIR/TOOL-SIZE.ok, written after a successful
#                          import) names the same seed, size and gentree
#                          arguments; its import row then reads "reused"
#   BENCH_XFS_IMPORT=auto  how to fill the XFS image: "proto" (mkfs.xfs -p
#                          protofile), "mount" (mkfs.xfs, loop mount, cp -a,
#                          umount; needs root) or "auto" (proto, then mount if
#                          that fails or times out). The table says which.
#
# Rerun only the checkers against kept images (e.g. with a newer bkfs):
#   BENCH_DIR=/tmp/bench BENCH_SIZES="10000 200000 1000000" BENCH_OPS=fsck \
#       BENCH_REUSE=1 BENCH_KEEP=images make bench
#
# Disk: an import is skipped (row "skipped", with a note) when the free space
# in $BENCH_DIR is below 1.25 x the tree's apparent size + 1 GiB (btrfs and
# XFS images fill the holes of sparse files), and so is an extract below
# 1 x + 1 GiB, so a run never fills the disk. With BENCH_KEEP, the sizes can
# be given largest first to lower the peak (the table is sorted by size).
#
# Every fsck run starts with its image in the page cache: `warm` (built from
# bench/warm.c into $BUILD) reads the data regions of the image (not its holes)
# after dropping the other images of that size from the cache.
#
# Output: a table (also in $BENCH_DIR/results.txt, and $BENCH_DIR/results.csv;
# every run also leaves results-DATE.txt/.csv, and each fsck run is a line of
# fsck-runs.csv) with size, tool, op, wall s, cpu s (user+sys), peak MiB (max
# RSS), exit status, image MiB (allocated, for import), and the ratios bkfs/peer
# of wall time and of peak RSS; then the growth of each checker's wall time and
# peak RSS from the smallest to the largest size, beside the growth in entries.
#
# A benchmark never fails the build: this exits 0 unless the tree generator
# fails. Missing peers are skipped with a note; a bkfs subcommand that does not
# exist yet shows as n/a.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
BENCH_SIZES=${BENCH_SIZES:-"10000 200000"}
BENCH_DIR=${BENCH_DIR:-$BUILD/bench}
BENCH_SEED=${BENCH_SEED:-1}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-3600}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_REUSE=${BENCH_REUSE:-0}
BENCH_OPS=${BENCH_OPS:-"import extract fsck"}
BENCH_TOOLS=${BENCH_TOOLS:-"bkfs ext4 btrfs xfs"}
BENCH_REPEAT=${BENCH_REPEAT:-3}
BENCH_XFS_IMPORT=${BENCH_XFS_IMPORT:-auto}
BENCH_BKFS=${BENCH_BKFS:-$BUILD/bkfs}
GENTREE=$BUILD/gentree
WARM=$BUILD/warm
TIME=/usr/bin/time

note() { echo "bench: $*" >&2; }

for op in $BENCH_OPS; do
	case $op in import|extract|fsck) ;; *) note "unknown op '$op' in BENCH_OPS (import extract fsck)"; exit 0 ;; esac
done
for t in $BENCH_TOOLS; do
	case $t in bkfs|ext4|btrfs|xfs) ;; *) note "unknown tool '$t' in BENCH_TOOLS (bkfs ext4 btrfs xfs)"; exit 0 ;; esac
done
case $BENCH_REPEAT in ''|*[!0-9]*|0) note "BENCH_REPEAT must be a positive integer"; exit 0 ;; esac
case $BENCH_XFS_IMPORT in auto|proto|mount) ;; *) note "BENCH_XFS_IMPORT must be auto, proto or mount"; exit 0 ;; esac

scripts/deps.sh --bench || note "could not install all benchmark peers; missing ones are skipped"

if [ ! -x "$GENTREE" ]; then
	note "$GENTREE missing (run make first)"
	exit 1
fi
if [ ! -x "$TIME" ]; then
	note "$TIME missing (Debian package 'time'); cannot time anything"
	exit 0
fi
if [ ! -x "$WARM" ] || [ bench/warm.c -nt "$WARM" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -o "$WARM" bench/warm.c ||
		note "could not build $WARM: images are warmed with cat instead"
fi

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
# the binary under test, copied once (the build directory may be rebuilt meanwhile)
BKFS=$BENCH_DIR/bkfs.bin
rm -f "$BKFS"
BKFS_ID="missing"
if [ -x "$BENCH_BKFS" ] && cp "$BENCH_BKFS" "$BKFS.tmp" && mv "$BKFS.tmp" "$BKFS"; then
	BKFS_ID="$(git -C "$(dirname "$BENCH_BKFS")" describe --always --dirty 2>/dev/null || echo 'commit unknown'), binary of $(date -r "$BENCH_BKFS" '+%Y-%m-%d %H:%M'), sha256 $(sha256sum "$BKFS" | cut -c1-12)"
fi
STAMP_DATE=$(date +%Y%m%d-%H%M%S)
RESULTS=$BENCH_DIR/results.txt
CSV=$BENCH_DIR/results.csv
RUNS_CSV=$BENCH_DIR/fsck-runs.csv
ROWS=$BENCH_DIR/rows.tmp
SIZES_TMP=$BENCH_DIR/sizes.tmp
: > "$ROWS"
: > "$SIZES_TMP"
echo "size,entries,tool,op,wall_s,cpu_s,peak_mib,exit,image_mib,runs,wall_min_s,note" > "$CSV"
[ -e "$RUNS_CSV" ] || echo "date,size,tool,run,wall_s,cpu_s,peak_mib,exit" > "$RUNS_CSV"

have() { command -v "$1" >/dev/null 2>&1; }
op_on() { case " $BENCH_OPS " in *" $1 "*) return 0 ;; esac; return 1; }
tool_on() { case " $BENCH_TOOLS " in *" $1 "*) return 0 ;; esac; return 1; }

# Does this bkfs build have subcommand $1? (asked once per subcommand)
declare -A BKFS_HAS=()
bkfs_has() {
	if [ -z "${BKFS_HAS[$1]:-}" ]; then
		BKFS_HAS[$1]=0
		if [ -x "$BKFS" ] && { "$BKFS" "$1" --help >/dev/null 2>&1 || "$BKFS" help "$1" >/dev/null 2>&1; }; then
			BKFS_HAS[$1]=1
		fi
	fi
	[ "${BKFS_HAS[$1]}" = 1 ]
}

# Is TOOL enabled and are its programs for OP installed?
tool_can() {
	local tool=$1 op=$2
	tool_on "$tool" || return 1
	case $tool.$op in
	bkfs.import) bkfs_has format ;;
	bkfs.extract) bkfs_has extract ;;
	bkfs.fsck) bkfs_has fsck ;;
	ext4.import) have mke2fs ;;
	ext4.extract) have debugfs ;;
	ext4.fsck) have e2fsck ;;
	btrfs.import) have mkfs.btrfs ;;
	btrfs.extract|btrfs.fsck) have btrfs ;;
	xfs.import) have mkfs.xfs ;;
	xfs.extract) return 1 ;;	# no offline extractor
	xfs.fsck) have xfs_repair ;;
	esac
}

# warm IMG [OTHER...]: drop the OTHER images from the page cache, then read
# IMG's data so the next tool starts with it cached
warm() {
	local img=$1 args=() o
	shift
	if [ -x "$WARM" ]; then
		for o in "$@"; do [ "$o" != "$img" ] && args+=(-e "$o"); done
		"$WARM" "${args[@]}" "$img" || true
	else
		cat "$img" > /dev/null 2>&1 || true
	fi
}

# Allocated MiB of an image file (it is sparse)
img_mib() { [ -e "$1" ] && du -k "$1" | awk '{printf "%.0f", $1 / 1024}' || echo -; }

# gentree arguments for size $1
gentree_args() {
	if [ -n "${BENCH_GENTREE_ARGS+set}" ]; then
		echo "$BENCH_GENTREE_ARGS"
	elif [ "$1" -ge 500000 ]; then
		echo "--max-size 65536"
	fi
}

# marker files: key=value lines; marker_get FILE KEY
marker_get() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -1; }

# timeit LOG CMD...: run CMD under time and timeout; sets T_WALL T_CPU T_MIB
# (or '-') and T_RC
timeit() {
	local log=$1 tf usr sys rss
	shift
	tf=$BENCH_DIR/time.$$
	"$TIME" -f "%e %U %S %M" -o "$tf" timeout "$BENCH_TIMEOUT" "$@" > "$log" 2>&1 </dev/null
	T_RC=$?
	T_WALL=
	read -r T_WALL usr sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$tf" | tail -1)
	rm -f "$tf"
	if [ -z "${T_WALL:-}" ]; then
		T_WALL=- T_CPU=- T_MIB=-
	else
		T_CPU=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
		T_MIB=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
	fi
	[ "$T_RC" = 124 ] && note "timed out after ${BENCH_TIMEOUT}s: $*"
	return 0
}

# record SIZE TOOL OP WALL CPU MIB RC IMGMIB RUNS WALLMIN NOTE: one table row
record() {
	local entries
	entries=$(awk -v s="$1" '$1 == s { print $2 }' "$SIZES_TMP" | tail -1)
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$ROWS"
	echo "$1,${entries:-},$2,$3,$4,$5,$6,$7,$8,$9,${10},\"${11}\"" >> "$CSV"
	printf '  %-8s %-6s %-8s %8s s  exit %-4s %s\n' "$1" "$2" "$3" "$4" "$7" "${11}" >&2
}

# run SIZE TOOL OP IMG NOTE -- CMD...: time CMD once, record one row.
# IMG (or '-') is reported for its allocated size on import rows.
run() {
	local size=$1 tool=$2 op=$3 img=$4 rnote=$5 imib=-
	shift 6
	timeit "$BENCH_DIR/$size.$tool.$op.log" "$@"
	[ "$op" = import ] && [ "$img" != - ] && imib=$(img_mib "$img")
	record "$size" "$tool" "$op" "$T_WALL" "$T_CPU" "$T_MIB" "$T_RC" "$imib" 1 "$T_WALL" "$rnote"
	RUN_RC=$T_RC
}

na() { record "$1" "$2" "$3" n/a n/a n/a - - - - "${4:-not in this bkfs build}"; }
# na_bkfs SIZE OP HAVE_IMAGE: bkfs row for an op that could not run
na_bkfs() {
	if [ "$3" = 1 ]; then na "$1" bkfs "$2"; else na "$1" bkfs "$2" "no image"; fi
}

# Generate an mkfs.xfs protofile (mkfs(8) prototype format) describing tree $1.
# Limits of the format: hard links become separate copies and xattrs are not
# carried; names must not contain whitespace (gentree's never do); symlink
# targets are cut to 300 bytes (see below).
xfs_proto() {
	local src=$1
	{
		echo "bkfs-bench"
		echo "0 0"
		echo "d--755 0 0"
		find "$src" -mindepth 1 -printf '%d\t%y\t%m\t%U\t%G\t%f\t%p\t%l\n' |
		awk -F'\t' '
		function hex(s,   i, v) {
			v = 0; s = tolower(s)
			for (i = 1; i <= length(s); i++)
				v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
			return v
		}
		function modestr(t, m,   p, u, g) {
			u = "-"; g = "-"
			if (length(m) > 3) {
				p = substr(m, 1, length(m) - 3) + 0
				if (int(p / 4) % 2) u = "u"
				if (int(p / 2) % 2) g = "g"
			}
			return t u g substr(m, length(m) - 2)
		}
		{
			d = $1 + 0
			while (open >= d) { print "$"; open-- }
			if ($2 == "d") {
				print $6, modestr("d", $3), $4, $5; open = d
			} else if ($2 == "f") {
				print $6, modestr("-", $3), $4, $5, $7
			} else if ($2 == "l") {
				# xfsprogs 6.1 writes out-of-inode symlinks without their
				# v5 header (xfs_repair then clears them): keep targets inline
				print $6, modestr("l", $3), $4, $5, substr($8, 1, 300)
			} else if ($2 == "p") {
				print $6, modestr("p", $3), $4, $5
			} else if ($2 == "c" || $2 == "b") {
				cmd = "stat -c \"%t %T\" \"" $7 "\""
				cmd | getline mm; close(cmd)
				split(mm, a, " ")
				print $6, modestr($2, $3), $4, $5, hex(a[1]), hex(a[2])
			}
		}
		END { while (open >= 1) { print "$"; open-- } }'
		echo "$"
	}
}

now() { date +%s.%N; }

# space_ok BYTES WHAT: is there that much free space in $BENCH_DIR?
space_ok() {
	local avail
	avail=$(df -P -B1 "$BENCH_DIR" | awk 'NR == 2 { print $4 }')
	[ -z "$avail" ] && return 0
	[ "$avail" -ge "$1" ] && return 0
	note "not enough free disk for $2: need ~$(($1 >> 20)) MiB, $((avail >> 20)) MiB free"
	return 1
}
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# import_xfs SIZE TREE IMG IMGSIZE: fill the XFS image; sets XFS_VIA
import_xfs() {
	local size=$1 tree=$2 img=$3 imgsize=$4 proto mnt t0 secs
	XFS_VIA=
	RUN_RC=1
	if [ "$BENCH_XFS_IMPORT" != mount ]; then
		proto=$BENCH_DIR/xfs-$size.proto
		rm -f "$img"; truncate -s "$imgsize" "$img"
		t0=$(now)
		if xfs_proto "$tree" > "$proto" 2>/dev/null; then
			secs=$(elapsed "$t0")
			run "$size" xfs import "$img" "mkfs.xfs -p protofile (+${secs}s untimed to write it)" -- \
				mkfs.xfs -q -f -p "$proto" "$img"
			[ "$RUN_RC" = 0 ] && XFS_VIA=protofile
		else
			note "xfs: could not write the protofile"
		fi
		rm -f "$proto"
	fi
	[ -n "$XFS_VIA" ] && return 0
	[ "$BENCH_XFS_IMPORT" = proto ] && return 0
	if [ "$(id -u)" != 0 ]; then
		note "xfs: the loop-mount import needs root: no XFS image"
		return 0
	fi
	# empty filesystem populated through a loop mount (kernel XFS, timed: cp -a + umount)
	mnt=$BENCH_DIR/xfs-mnt
	mkdir -p "$mnt"
	mountpoint -q "$mnt" && umount "$mnt"
	rm -f "$img"; truncate -s "$imgsize" "$img"
	if mkfs.xfs -q -f "$img" && mount -o loop "$img" "$mnt"; then
		[ "$BENCH_XFS_IMPORT" = auto ] && note "xfs: protofile import failed; populating through a loop mount"
		# shellcheck disable=SC2016
		run "$size" xfs import "$img" "loop mount + cp -a + umount (kernel XFS)" -- \
			sh -c 'cp -a "$1"/. "$2"/ && umount "$2"' sh "$tree" "$mnt"
		mountpoint -q "$mnt" && umount "$mnt"
		[ "$RUN_RC" = 0 ] && XFS_VIA=loop-mount
	else
		note "xfs: could not loop-mount a fresh XFS image"
	fi
	rmdir "$mnt" 2>/dev/null
	return 0
}

# import_tool TOOL SIZE TREE IMG IMGSIZE ENTRIES: make one image; RUN_RC, VIA
import_tool() {
	local tool=$1 size=$2 tree=$3 img=$4 imgsize=$5 entries=$6
	VIA=
	RUN_RC=1
	rm -f "$img"
	case $tool in
	bkfs)
		truncate -s "$imgsize" "$img"
		run "$size" bkfs import "$img" "bkfs format --source" -- "$BKFS" format --source "$tree" "$img"
		VIA="bkfs format --source" ;;
	ext4)
		truncate -s "$imgsize" "$img"
		run "$size" ext4 import "$img" "mke2fs -d" -- \
			mke2fs -q -F -t ext4 -N $((entries + entries / 10 + 1024)) -d "$tree" "$img"
		VIA="mke2fs -d" ;;
	btrfs)
		truncate -s "$imgsize" "$img"
		run "$size" btrfs import "$img" "mkfs.btrfs --rootdir" -- mkfs.btrfs -q -f --rootdir "$tree" "$img"
		VIA="mkfs.btrfs --rootdir" ;;
	xfs)
		import_xfs "$size" "$tree" "$img" "$imgsize"
		VIA=$XFS_VIA ;;
	esac
}

fsck_cmd() {	# fsck_cmd TOOL IMG: prints nothing, sets FSCK_ARGV
	case $1 in
	bkfs) FSCK_ARGV=("$BKFS" fsck -n "$2") ;;
	ext4) FSCK_ARGV=(e2fsck -fn "$2") ;;
	btrfs) FSCK_ARGV=(btrfs check --readonly "$2") ;;
	xfs) FSCK_ARGV=(xfs_repair -f -n "$2") ;;
	esac
}

echo "== bkfs benchmark: sizes $BENCH_SIZES, seed $BENCH_SEED, ops $BENCH_OPS, tools $BENCH_TOOLS, in $BENCH_DIR" >&2
[ -x "$BKFS" ] || note "$BENCH_BKFS not built: bkfs rows are n/a"
for t in mke2fs e2fsck debugfs mkfs.btrfs btrfs mkfs.xfs xfs_repair; do
	have "$t" || note "$t not found: its rows are skipped"
done
BENCH_T0=$(now)
PHASES=

for size in $BENCH_SIZES; do
	case $size in ''|*[!0-9]*) note "size '$size' is not a number: skipped"; continue ;; esac
	tree=$BENCH_DIR/tree-$size
	tmark=$BENCH_DIR/tree-$size.ok
	gargs=$(gentree_args "$size")
	stamp="seed=$BENCH_SEED files=$size gentree=${gargs:-none}"
	entries="" apparent="" made_tree=0
	declare -A img=() have=() reuse=() via=() made=()
	for t in bkfs ext4 btrfs xfs; do
		img[$t]=$BENCH_DIR/$t-$size.img
		have[$t]=0 reuse[$t]=0 via[$t]='' made[$t]=0
		m=$BENCH_DIR/$t-$size.ok
		if [ -e "${img[$t]}" ] && [ "$(marker_get "$m" stamp)" = "$stamp" ]; then
			reuse[$t]=1 via[$t]=$(marker_get "$m" via)
			[ -z "$entries" ] && entries=$(marker_get "$m" entries) apparent=$(marker_get "$m" apparent)
		fi
	done

	if op_on import; then
		if [ "$BENCH_REUSE" != 1 ]; then
			for t in bkfs ext4 btrfs xfs; do reuse[$t]=0; done
			entries="" apparent=""
		fi
		need_tree=0
		for t in $BENCH_TOOLS; do
			tool_can "$t" import && [ "${reuse[$t]}" = 0 ] && need_tree=1
		done
		if [ "$need_tree" = 1 ]; then
			t0=$(now)
			if [ "$BENCH_REUSE" = 1 ] && [ -d "$tree" ] && [ "$(marker_get "$tmark" stamp)" = "$stamp" ]; then
				echo "== size $size: reusing the kept tree ($stamp)" >&2
				entries=$(marker_get "$tmark" entries) apparent=$(marker_get "$tmark" apparent)
			else
				echo "== size $size: generating tree (gentree --seed $BENCH_SEED --files $size ${gargs})" >&2
				rm -rf "$tree" "$tmark"
				# shellcheck disable=SC2086
				if ! "$GENTREE" --seed "$BENCH_SEED" --files "$size" $gargs "$tree" >&2; then
					note "gentree failed"
					exit 1
				fi
				made_tree=1
				apparent=$(du -s --apparent-size -B1 "$tree" | cut -f1)
				entries=$(find "$tree" | wc -l)
				printf 'stamp=%s\nentries=%s\napparent=%s\n' "$stamp" "$entries" "$apparent" > "$tmark"
				PHASES="$PHASES size $size gentree $(elapsed "$t0")s;"
			fi
			tar -cf - -C "$tree" . 2>/dev/null | cat > /dev/null	# warm the source tree
		fi
	fi
	echo "$size ${entries:-?} ${apparent:-?}" >> "$SIZES_TMP"
	if [ -n "$apparent" ]; then
		# generous, sparse: 2x the tree + 256 MiB, at least 512 MiB (XFS minimum is 300 MiB)
		imgsize=$(( apparent * 2 + (256 << 20) ))
		[ "$imgsize" -lt $((512 << 20)) ] && imgsize=$((512 << 20))
		echo "   ${entries:-?} entries, $((apparent >> 20)) MiB apparent, images $((imgsize >> 20)) MiB (sparse)" >&2
	fi

	# ---- import
	if op_on import; then
		echo "== size $size: import" >&2
		t0=$(now)
		for t in $BENCH_TOOLS; do
			m=$BENCH_DIR/$t-$size.ok
			if [ "${reuse[$t]}" = 1 ]; then
				record "$size" "$t" import reused - - - "$(img_mib "${img[$t]}")" - - "reused (${via[$t]})"
				have[$t]=1
				continue
			fi
			if ! tool_can "$t" import; then
				[ "$t" = bkfs ] && na "$size" bkfs import
				continue
			fi
			rm -f "$m" "${img[$t]}"
			made[$t]=1
			if ! space_ok $(( apparent + apparent / 4 + (1 << 30) )) "the $t image"; then
				record "$size" "$t" import skipped - - - - - - "not enough free disk"
				continue
			fi
			import_tool "$t" "$size" "$tree" "${img[$t]}" "$imgsize" "$entries"
			if [ "$RUN_RC" = 0 ] && [ -n "$VIA" ]; then
				have[$t]=1 via[$t]=$VIA
				printf 'stamp=%s\nentries=%s\napparent=%s\nvia=%s\nimported=%s\n' \
					"$stamp" "$entries" "$apparent" "$VIA" "$(date -Is)" > "$m"
			else
				note "$t: import failed at $size (see $BENCH_DIR/$size.$t.import.log)"
			fi
		done
		PHASES="$PHASES size $size import $(elapsed "$t0")s;"
		# the tree is not needed after the imports: free its space now
		[ "$BENCH_KEEP" != 1 ] && [ "$made_tree" = 1 ] && rm -rf "$tree" "$tmark"
	else
		for t in $BENCH_TOOLS; do
			have[$t]=${reuse[$t]}
			[ "${reuse[$t]}" = 1 ] ||
				note "$t: no kept image for size $size with $stamp (run the import phase with BENCH_KEEP=images first)"
		done
	fi

	# ---- extract (bkfs extract; offline peers: debugfs rdump, btrfs restore)
	if op_on extract; then
		echo "== size $size: extract" >&2
		t0=$(now)
		out=$BENCH_DIR/out-$size
		for t in $BENCH_TOOLS; do
			if [ "${have[$t]}" != 1 ] || ! tool_can "$t" extract; then
				[ "$t" = bkfs ] && na_bkfs "$size" extract "${have[$t]}"
				continue
			fi
			rm -rf "$out"
			if [ -n "$apparent" ] && ! space_ok $(( apparent + (1 << 30) )) "extracting the $t image"; then
				record "$size" "$t" extract skipped - - - - - - "not enough free disk"
				continue
			fi
			mkdir -p "$out"
			warm "${img[$t]}"
			case $t in
			bkfs) rmdir "$out"; run "$size" bkfs extract - "bkfs extract" -- "$BKFS" extract "${img[$t]}" "$out" ;;
			ext4) run "$size" ext4 extract - "debugfs rdump" -- debugfs -R "rdump / $out" "${img[$t]}" ;;
			btrfs) run "$size" btrfs extract - "btrfs restore" -- btrfs restore -x -m -S "${img[$t]}" "$out" ;;
			esac
			rm -rf "$out"
		done
		PHASES="$PHASES size $size extract $(elapsed "$t0")s;"
	fi

	# ---- fsck: BENCH_REPEAT rounds; each round runs every checker once, in
	# an order rotated by one each round; every run starts warm
	if op_on fsck; then
		echo "== size $size: fsck ($BENCH_REPEAT runs each)" >&2
		t0=$(now)
		ftools=() fimgs=()
		for t in $BENCH_TOOLS; do
			if [ "${have[$t]}" = 1 ] && tool_can "$t" fsck; then
				ftools+=("$t"); fimgs+=("${img[$t]}")
			fi
		done
		runs=$BENCH_DIR/fsck-runs.tmp
		: > "$runs"
		n=${#ftools[@]}
		for ((r = 1; r <= BENCH_REPEAT; r++)); do
			for ((k = 0; k < n; k++)); do
				t=${ftools[$(( (k + r - 1) % n ))]}
				warm "${img[$t]}" "${fimgs[@]}"
				fsck_cmd "$t" "${img[$t]}"
				timeit "$BENCH_DIR/$size.$t.fsck.$r.log" "${FSCK_ARGV[@]}"
				printf '%s %s %s %s %s %s\n' "$t" "$r" "$T_WALL" "$T_CPU" "$T_MIB" "$T_RC" >> "$runs"
				echo "$STAMP_DATE,$size,$t,$r,$T_WALL,$T_CPU,$T_MIB,$T_RC" >> "$RUNS_CSV"
				printf '  %-8s %-6s fsck run %d/%d %8s s  exit %s\n' "$size" "$t" "$r" "$BENCH_REPEAT" "$T_WALL" "$T_RC" >&2
			done
		done
		for t in $BENCH_TOOLS; do
			if [ "${have[$t]}" != 1 ] || ! tool_can "$t" fsck; then
				[ "$t" = bkfs ] && na_bkfs "$size" fsck "${have[$t]}"
				continue
			fi
			# median run by wall time (the lower middle one for an even
			# count: always a real run, whose cpu and peak are shown)
			# shellcheck disable=SC2046
			set -- $(awk -v t="$t" '$1 == t { print ($3 == "-" ? 1e18 : $3), $0 }' "$runs" | sort -g |
				awk '{ w[NR] = $4; c[NR] = $5; m[NR] = $6; rc[NR] = $7; all = all (NR > 1 ? "," : "") $7 }
				END {
					if (!NR) exit
					i = int((NR + 1) / 2)
					mixed = 0
					for (j = 2; j <= NR; j++) if (rc[j] != rc[1]) mixed = 1
					print w[i], c[i], m[i], rc[i], NR, w[1], (mixed ? all : "-")
				}')
			[ $# -eq 7 ] || continue
			fnote="median of $5"
			[ "$5" = 1 ] && fnote="1 run"
			[ "$7" != - ] && fnote="$fnote; exit codes differ: $7"
			record "$size" "$t" fsck "$1" "$2" "$3" "$4" - "$5" "$6" "$fnote"
		done
		rm -f "$runs"
		PHASES="$PHASES size $size fsck $(elapsed "$t0")s;"
	fi

	if [ "$BENCH_KEEP" != 1 ] && [ "$BENCH_KEEP" != images ]; then
		[ "$made_tree" = 1 ] && rm -rf "$tree" "$tmark"
		for t in bkfs ext4 btrfs xfs; do
			[ "${made[$t]}" = 1 ] && rm -f "${img[$t]}" "$BENCH_DIR/$t-$size.ok"
		done
	fi
	unset img have reuse via made
done

# ---- table: ratios = bkfs / peer for the same size and op (wall, peak RSS)
ver() { "$@" 2>&1 | head -1; }
{
	echo
	echo "bkfs benchmark, $(date '+%Y-%m-%d %H:%M'), seed $BENCH_SEED, ops: $BENCH_OPS"
	echo "bkfs: $BKFS_ID"
	echo "peers: $(ver mke2fs -V); $(ver btrfs --version); $(ver mkfs.xfs -V)"
	echo "$(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "wall and cpu (user+sys) in seconds; peak = max RSS in MiB; img = allocated MiB;"
	echo "wall x / peak x = bkfs / peer for the same size and op (below 1: bkfs is faster / smaller);"
	echo "fsck rows: the median of BENCH_REPEAT=$BENCH_REPEAT warm runs (min wall in results.csv)"
	echo
	awk -F'\t' -v sizes="$SIZES_TMP" '
	BEGIN { while ((getline l < sizes) > 0) { split(l, a, " "); ent[a[1]] = a[2] } }
	function num(x) { return x ~ /^[0-9.]+$/ }
	{
		row[NR] = $0
		key = $1 SUBSEP $3
		if ($2 == "bkfs" && num($4) && $7 == 0) { bkw[key] = $4; bkm[key] = $6 }
	}
	function ratio(b, p) { return (num(b) && num(p) && p + 0 > 0) ? sprintf("%.2f", b / p) : "-" }
	END {
		fmt = "%-8s %-9s %-6s %-7s %8s %8s %8s %4s %7s %7s %7s  %s\n"
		printf fmt, "size", "entries", "tool", "op", "wall s", "cpu s", "peak MiB", "exit", "img MiB", "wall x", "peak x", "note"
		for (i = 1; i <= NR; i++) {
			split(row[i], f, "\t")
			key = f[1] SUBSEP f[3]
			wr = "-"; mr = "-"
			if (f[2] == "bkfs") {
				if (f[4] == "n/a") { wr = "n/a"; mr = "n/a" }
			} else if (!(key in bkw)) {
				if (num(f[4])) { wr = "n/a"; mr = "n/a" }
			} else if (num(f[4]) && f[7] == 0) {
				wr = ratio(bkw[key], f[4]); mr = ratio(bkm[key], f[6])
			}
			printf fmt, f[1], (f[1] in ent ? ent[f[1]] : "?"), f[2], f[3], f[4], f[5], f[6], f[7], f[8], wr, mr, f[11]
		}
	}' <(sort -s -t "$(printf '\t')" -k1,1n "$ROWS")

	# ---- growth of each checker from its smallest to its largest size
	echo
	echo "growth of fsck from the smallest to the largest tree (x = large / small; per-entry = wall x / entries x)"
	awk -F'\t' -v sizes="$SIZES_TMP" '
	BEGIN { while ((getline l < sizes) > 0) { split(l, a, " "); ent[a[1]] = a[2] } }
	function num(x) { return x ~ /^[0-9.]+$/ }
	function x(a, b) { return (num(a) && num(b) && a + 0 > 0) ? sprintf("%.1f", b / a) : "-" }
	$3 == "fsck" && num($4) && $7 == 0 {
		t = $2
		if (!(t in lo) || $1 + 0 < lo[t] + 0) { lo[t] = $1; lw[t] = $4; lm[t] = $6 }
		if (!(t in hi) || $1 + 0 > hi[t] + 0) { hi[t] = $1; hw[t] = $4; hm[t] = $6 }
		if (!(t in seen)) { order[++n] = t; seen[t] = 1 }
	}
	END {
		fmt = "%-6s %9s %9s %8s %9s %9s %7s %9s %9s %7s %9s\n"
		printf fmt, "tool", "entries", "entries", "x", "wall s", "wall s", "x", "peak MiB", "peak MiB", "x", "per-entry"
		shown = 0
		for (i = 1; i <= n; i++) {
			t = order[i]
			if (lo[t] == hi[t]) continue
			el = ent[lo[t]]; eh = ent[hi[t]]
			ex = x(el, eh); wx = x(lw[t], hw[t])
			pe = (ex != "-" && wx != "-") ? sprintf("%.2f", (hw[t] / lw[t]) / (eh / el)) : "-"
			printf fmt, t, el, eh, ex, lw[t], hw[t], wx, lm[t], hm[t], x(lm[t], hm[t]), pe
			shown = 1
		}
		if (!shown) print "(needs fsck results at two sizes)"
	}' "$ROWS"
	echo
	echo "notes: import = bkfs format --source, mke2fs -d, mkfs.btrfs --rootdir, and for XFS the path in the"
	echo "note column (an mkfs.xfs protofile has no hard links (they become copies) and no xattrs, and cuts"
	echo "symlinks to 300 bytes; the loop-mount path copies the tree exactly, through the kernel);"
	echo "extract = bkfs extract, debugfs rdump, btrfs restore; fsck = bkfs fsck -n, e2fsck -fn,"
	echo "btrfs check --readonly, xfs_repair -n; before every fsck run the other images of the size are"
	echo "dropped from the page cache and the image's data is read in. Logs: $BENCH_DIR/SIZE.TOOL.OP[.RUN].log"
	echo "phases (wall):$PHASES total $(elapsed "$BENCH_T0")s"
} | tee "$RESULTS"
cp "$RESULTS" "$BENCH_DIR/results-$STAMP_DATE.txt" 2>/dev/null
cp "$CSV" "$BENCH_DIR/results-$STAMP_DATE.csv" 2>/dev/null
rm -f "$ROWS" "$SIZES_TMP"
exit 0
