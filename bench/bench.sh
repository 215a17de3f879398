#!/bin/bash
# bench.sh - `make bench`: build the same generated tree into bkfs, ext4, btrfs
# and XFS images and time import, extract and fsck against the peers.
#
# Environment:
#   BUILD=build            build directory (bkfs and gentree binaries)
#   BENCH_SIZES="10000 200000"
#                          tree sizes (--files for gentree). 1000000 is a useful
#                          optional size: it needs ~10 GiB of tree and about as
#                          much per image (~60 GiB free) and takes long.
#   BENCH_DIR=$BUILD/bench where trees, images and results go
#   BENCH_SEED=1           gentree seed
#   BENCH_TIMEOUT=3600     per-operation timeout in seconds
#   BENCH_KEEP=1           keep trees and images afterwards
#
# Output: a table (also in $BENCH_DIR/results.txt, and $BENCH_DIR/results.csv)
# with size, tool, op, wall s, cpu s (user+sys), peak MiB (max RSS), exit
# status, image MiB (for import) and the ratio bkfs/peer of wall times.
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
BKFS=$BUILD/bkfs
GENTREE=$BUILD/gentree
TIME=/usr/bin/time

note() { echo "bench: $*" >&2; }

scripts/deps.sh --bench || note "could not install all benchmark peers; missing ones are skipped"

if [ ! -x "$GENTREE" ]; then
	note "$GENTREE missing (run make first)"
	exit 1
fi
if [ ! -x "$TIME" ]; then
	note "$TIME missing (Debian package 'time'); cannot time anything"
	exit 0
fi

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RESULTS=$BENCH_DIR/results.txt
CSV=$BENCH_DIR/results.csv
ROWS=$BENCH_DIR/rows.tmp
: > "$ROWS"
echo "size,tool,op,wall_s,cpu_s,peak_mib,exit,image_mib" > "$CSV"

have() { command -v "$1" >/dev/null 2>&1; }

# Does this bkfs build have subcommand $1?
bkfs_has() {
	[ -x "$BKFS" ] || return 1
	"$BKFS" "$1" --help >/dev/null 2>&1 || "$BKFS" help "$1" >/dev/null 2>&1
}

# warm IMG: one read so every tool starts with the image in the page cache
warm() { cat "$1" > /dev/null 2>&1 || true; }

# Allocated MiB of an image file (it is sparse)
img_mib() { [ -e "$1" ] && du -k "$1" | awk '{printf "%.0f", $1 / 1024}' || echo -; }

# run SIZE TOOL OP IMG -- CMD...: time CMD, record one row.
# IMG (or '-') is reported for its allocated size on import rows.
run() {
	local size=$1 tool=$2 op=$3 img=$4 tf log rc wall usr sys rss cpu mib imib=-
	shift 5
	tf=$BENCH_DIR/time.$$
	log=$BENCH_DIR/$size.$tool.$op.log
	"$TIME" -f "%e %U %S %M" -o "$tf" timeout "$BENCH_TIMEOUT" "$@" > "$log" 2>&1 </dev/null
	rc=$?
	read -r wall usr sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$tf" | tail -1)
	rm -f "$tf"
	if [ -z "${wall:-}" ]; then
		wall=- cpu=- mib=-
	else
		cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
		mib=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
	fi
	[ "$op" = import ] && [ "$img" != - ] && imib=$(img_mib "$img")
	[ "$rc" = 124 ] && note "$tool $op at $size timed out after ${BENCH_TIMEOUT}s"
	echo "$size $tool $op $wall $cpu $mib $rc $imib" >> "$ROWS"
	echo "$size,$tool,$op,$wall,$cpu,$mib,$rc,$imib" >> "$CSV"
	printf '  %-8s %-8s %-8s %8s s  exit %s\n' "$size" "$tool" "$op" "$wall" "$rc" >&2
	return 0
}

# did the last recorded run exit 0?
last_ok() { [ "$(tail -1 "$ROWS" | cut -d' ' -f7)" = 0 ]; }

na() { echo "$1 $2 $3 n/a n/a n/a - -" >> "$ROWS"; echo "$1,$2,$3,,,,," >> "$CSV"; }

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

echo "== bkfs benchmark: sizes $BENCH_SIZES, seed $BENCH_SEED, in $BENCH_DIR" >&2
[ -x "$BKFS" ] || note "$BKFS not built: bkfs rows are n/a"
for t in mke2fs e2fsck debugfs mkfs.btrfs btrfs mkfs.xfs xfs_repair; do
	have "$t" || note "$t not found: its rows are skipped"
done

for size in $BENCH_SIZES; do
	tree=$BENCH_DIR/tree-$size
	echo "== size $size: generating tree" >&2
	rm -rf "$tree"
	if ! "$GENTREE" --seed "$BENCH_SEED" --files "$size" "$tree" >&2; then
		note "gentree failed"
		exit 1
	fi
	apparent=$(du -s --apparent-size -B1 "$tree" | cut -f1)
	entries=$(find "$tree" | wc -l)
	# generous, sparse: 2x the tree + 256 MiB, at least 512 MiB (XFS minimum is 300 MiB)
	imgsize=$(( apparent * 2 + (256 << 20) ))
	[ "$imgsize" -lt $((512 << 20)) ] && imgsize=$((512 << 20))
	echo "   $entries entries, $((apparent >> 20)) MiB apparent, images $((imgsize >> 20)) MiB (sparse)" >&2
	tar -cf - -C "$tree" . 2>/dev/null | cat > /dev/null	# warm the source tree

	# ---- import
	echo "== size $size: import" >&2
	bimg=$BENCH_DIR/bkfs-$size.img eimg=$BENCH_DIR/ext4-$size.img
	bbimg=$BENCH_DIR/btrfs-$size.img ximg=$BENCH_DIR/xfs-$size.img
	rm -f "$bimg" "$eimg" "$bbimg" "$ximg"
	have_bkfs_img=0 have_ext4_img=0 have_btrfs_img=0 have_xfs_img=0
	if bkfs_has format; then
		truncate -s "$imgsize" "$bimg"
		run "$size" bkfs import "$bimg" -- "$BKFS" format --source "$tree" "$bimg"
		last_ok && have_bkfs_img=1
	else
		na "$size" bkfs import
	fi
	if have mke2fs; then
		truncate -s "$imgsize" "$eimg"
		run "$size" ext4 import "$eimg" -- mke2fs -q -F -t ext4 -N $((entries + entries / 10 + 1024)) -d "$tree" "$eimg"
		last_ok && have_ext4_img=1
	fi
	if have mkfs.btrfs; then
		truncate -s "$imgsize" "$bbimg"
		run "$size" btrfs import "$bbimg" -- mkfs.btrfs -q -f --rootdir "$tree" "$bbimg"
		last_ok && have_btrfs_img=1
	fi
	if have mkfs.xfs; then
		proto=$BENCH_DIR/xfs-$size.proto
		truncate -s "$imgsize" "$ximg"
		if xfs_proto "$tree" > "$proto" 2>/dev/null; then
			run "$size" xfs import "$ximg" -- mkfs.xfs -q -f -p "$proto" "$ximg"
			last_ok && have_xfs_img=1
		fi
		if [ "$have_xfs_img" = 0 ] && [ "$(id -u)" = 0 ]; then
			# fallback: empty filesystem populated through a loop mount
			mnt=$BENCH_DIR/xfs-mnt
			mkdir -p "$mnt"
			if mkfs.xfs -q -f "$ximg" && mount -o loop "$ximg" "$mnt" 2>/dev/null; then
				note "xfs: protofile failed; populating through a loop mount (timed: cp -a + umount)"
				# shellcheck disable=SC2016
				run "$size" xfs import "$ximg" -- sh -c 'cp -a "$1"/. "$2"/ && umount "$2"' sh "$tree" "$mnt"
				mountpoint -q "$mnt" && umount "$mnt"
				last_ok && have_xfs_img=1
			fi
		fi
		[ "$have_xfs_img" = 1 ] || note "xfs: could not populate an image (no protofile support, no loop mount): skipped"
		rm -f "$proto"
	fi

	# ---- extract (bkfs extract; offline peers: debugfs rdump, btrfs restore)
	echo "== size $size: extract" >&2
	out=$BENCH_DIR/out-$size
	if [ "$have_bkfs_img" = 1 ] && bkfs_has extract; then
		rm -rf "$out"; warm "$bimg"
		run "$size" bkfs extract - -- "$BKFS" extract "$bimg" "$out"
	else
		na "$size" bkfs extract
	fi
	if have debugfs && [ "$have_ext4_img" = 1 ]; then
		rm -rf "$out"; mkdir -p "$out"; warm "$eimg"
		run "$size" ext4 extract - -- debugfs -R "rdump / $out" "$eimg"
	fi
	if have btrfs && [ "$have_btrfs_img" = 1 ]; then
		rm -rf "$out"; mkdir -p "$out"; warm "$bbimg"
		run "$size" btrfs extract - -- btrfs restore -x -m -S "$bbimg" "$out"
	fi
	rm -rf "$out"

	# ---- fsck
	echo "== size $size: fsck" >&2
	if [ "$have_bkfs_img" = 1 ] && bkfs_has fsck; then
		warm "$bimg"
		run "$size" bkfs fsck - -- "$BKFS" fsck -n "$bimg"
	else
		na "$size" bkfs fsck
	fi
	if have e2fsck && [ "$have_ext4_img" = 1 ]; then
		warm "$eimg"
		run "$size" ext4 fsck - -- e2fsck -fn "$eimg"
	fi
	if have btrfs && [ "$have_btrfs_img" = 1 ]; then
		warm "$bbimg"
		run "$size" btrfs fsck - -- btrfs check --readonly "$bbimg"
	fi
	if have xfs_repair && [ "$have_xfs_img" = 1 ]; then
		warm "$ximg"
		run "$size" xfs fsck - -- xfs_repair -f -n "$ximg"
	fi

	if [ "$BENCH_KEEP" != 1 ]; then
		rm -rf "$tree"
		rm -f "$bimg" "$eimg" "$bbimg" "$ximg"
	fi
done

# ---- table: ratio = bkfs wall / peer wall for the same size and op
{
	echo
	echo "bkfs benchmark (seed $BENCH_SEED; wall and cpu in seconds; peak = max RSS; ratio = bkfs wall / peer wall)"
	awk '
	{ key = $1 SUBSEP $3; if ($2 == "bkfs" && $4 != "n/a" && $7 == 0) bk[key] = $4; row[NR] = $0 }
	END {
		printf "%-9s %-6s %-8s %9s %9s %9s %5s %9s %8s\n", "size", "tool", "op", "wall s", "cpu s", "peak MiB", "exit", "img MiB", "ratio"
		for (i = 1; i <= NR; i++) {
			split(row[i], f, " ")
			key = f[1] SUBSEP f[3]
			ratio = "-"
			if (f[2] == "bkfs") {
				if (f[4] == "n/a") ratio = "n/a"
			} else if (!(key in bk)) {
				ratio = "n/a"
			} else if (f[4] != "-" && f[4] + 0 > 0 && f[7] == 0) {
				ratio = sprintf("%.2f", bk[key] / f[4])
			}
			printf "%-9s %-6s %-8s %9s %9s %9s %5s %9s %8s\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], ratio
		}
	}' "$ROWS"
	echo
	echo "notes: ext4 extract = debugfs rdump, btrfs extract = btrfs restore; xfs import uses an"
	echo "mkfs.xfs protofile (hard links become copies, no xattrs, symlinks cut to 300 bytes); per-op logs in $BENCH_DIR/*.log"
} | tee "$RESULTS"
rm -f "$ROWS"
exit 0
