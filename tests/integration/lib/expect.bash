# expect.bash - what the integration scripts that stop at the first failure
# share. Needs T (a scratch directory) set by the script.

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.bash"

# expect STATUS CMD...: run CMD (output in $T/out, $T/err), fail unless it
# exits STATUS (printing the start of its output)
expect() {
	local want=$1
	shift
	"$@" > "$T/out" 2> "$T/err"
	local rc=$?
	if [ "$rc" != "$want" ]; then
		echo "--- stdout:" >&2; head -20 "$T/out" >&2
		echo "--- stderr:" >&2; head -20 "$T/err" >&2
		fail "'$*' exited $rc, expected $want"
	fi
}
