#!/bin/sh
# deps.sh - make sure the Debian 12 packages bkfs needs are installed.
#
#   scripts/deps.sh          build and test dependencies (called by every `make`)
#   scripts/deps.sh --bench  also the benchmark peers and loads (btrfs-progs,
#                            xfsprogs, dbench, postmark)
#
# When everything is present this is one dpkg-query call (a few ms). When
# something is missing and we are root, it runs `apt-get update` once and
# installs the missing packages; when not root it names them and exits 1.
# BKFS_SKIP_DEPS=1 skips the check entirely (e.g. on a non-Debian machine
# where the dependencies were installed by other means).
set -eu

# build: compiler, make, pkg-config, ISA-L (checksums, erasure coding), FUSE 3
# test:  fuse3 (fusermount3), attr (getfattr/setfattr), e2fsprogs (ext4 peer,
#        also used by tests for comparison), time (/usr/bin/time),
#        fio, rsync, git, stress-ng (real clients on the FUSE mount:
#        fuse_clients.sh, online_gc.sh)
PKGS="gcc make pkg-config libisal-dev libfuse3-dev fuse3 attr e2fsprogs time fio rsync git stress-ng"
BENCH_PKGS="btrfs-progs xfsprogs dbench postmark"

bench=0
for arg in "$@"; do
	case "$arg" in
	--bench) bench=1 ;;
	-h|--help)
		sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
		exit 0 ;;
	*) echo "deps.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
	esac
done
[ "$bench" = 1 ] && PKGS="$PKGS $BENCH_PKGS"

[ "${BKFS_SKIP_DEPS:-0}" = 1 ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps.sh: dpkg-query not found (not a Debian system?); not checking dependencies" >&2
	echo "deps.sh: needed (Debian names): $PKGS" >&2
	exit 0
fi

# One query for all packages; packages dpkg has never heard of are simply
# absent from the output, and removed ones have a status other than 'installed'.
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $PKGS 2>/dev/null || true)
missing=""
for p in $PKGS; do
	if ! printf '%s\n' "$installed" | grep -qx "$p installed"; then
		missing="$missing $p"
	fi
done
missing=${missing# }
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing Debian packages: $missing" >&2
	echo "deps.sh: install them with:" >&2
	echo "    sudo apt-get install -y --no-install-recommends $missing" >&2
	exit 1
fi

echo "deps.sh: installing missing packages: $missing" >&2
export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-o DPkg::Lock::Timeout=300 -o Dpkg::Use-Pty=0"
# shellcheck disable=SC2086
apt-get $APT_OPTS -qq update >&2 || {
	echo "deps.sh: apt-get update failed" >&2; exit 1; }
# shellcheck disable=SC2086
apt-get $APT_OPTS -qq install -y --no-install-recommends $missing </dev/null >&2 || {
	echo "deps.sh: apt-get install failed for: $missing" >&2; exit 1; }
echo "deps.sh: installed: $missing" >&2
