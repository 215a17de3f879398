#!/bin/bash
# fresh-check.sh - run the README's two commands on a freshly installed Debian 12.
#
#   scripts/fresh-check.sh        (as root on a Debian or Ubuntu host)
#
# Bootstraps a minimal Debian 12 (debootstrap --variant=minbase, plus gcc,
# make and git: nothing else) once into build/fresh/rootfs and keeps it as a
# read-only base. Every run copies that base to build/fresh/run, clones the
# current commit (HEAD; uncommitted changes are not included) into it and
# runs, as root inside the chroot, `make demo` and then `make check`, with
# /proc, /dev (for /dev/fuse) and /sys mounted so that FUSE works. Because
# each run starts from the pristine base, a package that the build needs but
# scripts/deps.sh forgets to install makes the run fail.
#
# Prints each command's exit status and duration; exits 1 if either failed,
# 2 on a setup error. Needs network access to the Debian archive
# (FRESH_MIRROR, default http://deb.debian.org/debian). Not part of `make check`.
set -euo pipefail

MIRROR=${FRESH_MIRROR:-http://deb.debian.org/debian}
TOP=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
FRESH=$TOP/build/fresh
BASE=$FRESH/rootfs      # the bootstrapped base, never written after bootstrap
ROOT=$FRESH/run         # this run's copy of the base
SRC_IN_CHROOT=/root/bkfs

die() { echo "fresh-check: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mounts need it)"

install_debootstrap() {
	command -v debootstrap >/dev/null && return
	echo "fresh-check: installing debootstrap on the host" >&2
	DEBIAN_FRONTEND=noninteractive apt-get -qq update >&2
	DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends \
		debootstrap </dev/null >&2 || die "could not install debootstrap"
}

# Bootstraps into a temporary folder and renames it when complete, so that an
# interrupted bootstrap is never mistaken for a finished base.
bootstrap_base() {
	[ -x "$BASE/usr/bin/make" ] && return
	install_debootstrap
	echo "fresh-check: bootstrapping Debian 12 minbase into $BASE (once)" >&2
	rm -rf --one-file-system "$BASE.tmp"   # a killed debootstrap may leave /proc mounted
	mkdir -p "$FRESH"
	debootstrap --variant=minbase --include=gcc,make,git bookworm \
		"$BASE.tmp" "$MIRROR" >&2 || die "debootstrap failed (log: $BASE.tmp/debootstrap/debootstrap.log)"
	chroot "$BASE.tmp" apt-get clean   # drop the downloaded .debs: each run copies the base
	mv "$BASE.tmp" "$BASE"
}

# Everything mounted under the run's root: what mount_all mounted, and any
# FUSE mount a test left behind.
mounts_under_root() {
	findmnt -rn -o TARGET | grep "^$ROOT/" || true
}

# Children before parents (reverse order), lazily, so a process still holding
# a mount open cannot keep it; fails if anything is left, because removing
# the run's root with /dev still mounted in it would delete the host's /dev.
unmount_all() {
	local m
	mounts_under_root | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null || true
	done
	[ -z "$(mounts_under_root)" ] || { echo "fresh-check: still mounted under $ROOT" >&2; return 1; }
}

mount_all() {
	local m
	for m in sys dev proc; do
		if mountpoint -q "$ROOT/$m"; then
			umount -R -l "$ROOT/$m" || echo "fresh-check: could not unmount $ROOT/$m" >&2
		fi
	done
}

mount_all() {
	mount -t proc proc "$ROOT/proc"
	mount --rbind /dev "$ROOT/dev"
	mount --make-rslave "$ROOT/dev"   # unmounting here must not unmount the host's /dev/pts
	mount --rbind /sys "$ROOT/sys"
	mount --make-rslave "$ROOT/sys"
}

# A fresh copy of the base, with the host's name resolution (a new machine
# has working networking), and the current commit cloned into it.
prepare_run() {
	local commit
	commit=$(git -C "$TOP" rev-parse HEAD)
	git -C "$TOP" diff --quiet HEAD || echo "fresh-check: note: uncommitted changes are not tested" >&2
	unmount_all || die "cannot remove the previous run's copy"
	rm -rf --one-file-system "$ROOT"
	cp -a "$BASE" "$ROOT"
	cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
	git clone -q --no-checkout "$TOP" "$ROOT$SRC_IN_CHROOT"
	git -C "$ROOT$SRC_IN_CHROOT" checkout -q --detach "$commit"
	echo "fresh-check: testing $(git -C "$TOP" log -1 --format='%h %s' "$commit" | cut -c1-70)" >&2
}

# Runs one README command in the chroot as root, with a clean environment;
# sets $status and $seconds.
run_in_chroot() {
	local start
	echo "fresh-check: ==== $1 ====" >&2
	start=$(date +%s)
	set +e
	chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		/bin/sh -c "cd $SRC_IN_CHROOT && $1" </dev/null
	status=$?
	set -e
	seconds=$(($(date +%s) - start))
}

bootstrap_base
prepare_run
trap unmount_all EXIT
trap "exit 130" INT TERM
mount_all

run_in_chroot "make demo"
demo_status=$status demo_seconds=$seconds
run_in_chroot "make check"
check_status=$status check_seconds=$seconds

unmount_all
echo "fresh-check: make demo:  exit $demo_status ($demo_seconds s)"
echo "fresh-check: make check: exit $check_status ($check_seconds s)"
[ "$demo_status" = 0 ] && [ "$check_status" = 0 ]
