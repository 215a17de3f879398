# common.bash - the helpers every integration script may use, defined once
# (sourced, also by corrupt_common.bash and expect.bash; not a test by
# itself: tests/run.sh only runs *.sh files directly under
# tests/integration).

# fail MSG: the test failed; stop it
fail() { echo "FAIL: $*" >&2; exit 1; }

# skip MSG: the whole test cannot run here (exit 77: tests/run.sh prints
# MSG as the reason)
skip() { echo "skipped: $*"; exit 77; }

# skip_case MSG: one case of a test cannot run here; counted in NSKIP for
# the script's summary
NSKIP=0
skip_case() { echo "skip: $*"; NSKIP=$((NSKIP + 1)); }

# have CMD: CMD is installed
have() { command -v "$1" >/dev/null 2>&1; }

# manifest [--nlink] [--root] DIR: the metadata of every entry below DIR, one
# sorted line each: path, type, mode, owner, size, mtime (ns), symlink target,
# device numbers. --nlink adds link counts, --root the entry of DIR itself.
# NODIRTIMES=1 leaves out directory mtimes. Only two manifests made with the
# same options compare.
manifest() {
	local nlink='' depth='-mindepth 1' dirtime=' mtime=%T@'
	while [ $# -gt 1 ]; do
		case "$1" in
		--nlink) nlink=' nlink=%n' ;;
		--root) depth='' ;;
		*) fail "manifest: unknown option $1" ;;
		esac
		shift
	done
	[ "${NODIRTIMES:-0}" = 1 ] && dirtime=''
	(
		cd "$1" || exit 1
		# shellcheck disable=SC2086 # depth is one option or none
		find . $depth ! -type d -printf "%p %y mode=%m uid=%U gid=%G size=%s$nlink mtime=%T@ -> %l\\n"
		# shellcheck disable=SC2086
		find . $depth -type d -printf "%p %y mode=%m uid=%U gid=%G$nlink$dirtime\\n"
		find . \( -type c -o -type b \) -exec stat -c '%n rdev=%t:%T' {} +
	) | LC_ALL=C sort
}

# xattrs DIR: every extended attribute below DIR (hex values), one sorted
# line each: path, name=value (nothing without getfattr)
xattrs() {
	have getfattr || return 0
	(cd "$1" && getfattr -R -P -h -d -m - -e hex . 2>/dev/null) |
		awk '/^# file: / { f = substr($0, 9); next } /=/ { print f, $0 }' | LC_ALL=C sort
}
