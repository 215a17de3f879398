#!/bin/bash
# fsck_memory.sh - the memory estimate fsck prints, and -m against it: a
# limit below the estimate is refused (exit 8, nothing checked), one at the
# estimate runs; the measured peak (max RSS from /usr/bin/time, when there is
# one and the build is not sanitized) is within 25 % of the estimate, with
# read-ahead (two cores) and without (one core).
#
# Environment (tests/run.sh): BKFS, GENTREE, TMPDIR.
set -uo pipefail

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"
T=$TMPDIR
IMG=$T/img

. "$(cd "$(dirname "$0")" && pwd)/lib/expect.bash"

"$GENTREE" --seed 5 --files 10000 --max-size 16k --no-special --no-owners --quiet "$T/tree" ||
	fail "gentree failed"
truncate -s 1G "$IMG"
"$BKFS" format --source "$T/tree" "$IMG" > /dev/null || fail "format --source failed"
rm -rf "$T/tree"

# estimate_kib: the estimate of the last run ($T/out), in KiB
estimate_kib() {
	sed -n 's/.*memory estimate \([0-9.]*\) MiB.*/\1/p' "$T/out" | awk '{ printf "%d", $1 * 1024 }'
}

expect 0 "$BKFS" fsck -n "$IMG"
est=$(estimate_kib)
[ -n "$est" ] && [ "$est" -gt 1024 ] || fail "no plausible memory estimate printed: '$est'"

# a limit below every estimate: refused before any pass
expect 8 "$BKFS" fsck -n -m 1M "$IMG"
grep -q "more than the limit -m" "$T/err" || fail "-m 1M: no 'more than the limit' message"
grep -q "check_allocations" "$T/out" && fail "-m 1M: the passes ran although refused"
# a limit at the estimate (rounded up to the next 128 KiB): runs, and the
# estimate it prints is within the limit
lim=$(((est / 128 + 1) * 128))
expect 0 "$BKFS" fsck -n -m "${lim}K" "$IMG"
[ "$(estimate_kib)" -le "$lim" ] || fail "-m ${lim}K: printed estimate $(estimate_kib) KiB above the limit"

if [ ! -x /usr/bin/time ]; then
	skip_case "no /usr/bin/time: peak not measured"
elif grep -q __asan_init "$BKFS" 2>/dev/null; then
	skip_case "sanitized build: its peak is not the program's"
else
	for cpu in all one; do
		pre=()
		[ "$cpu" = one ] && have taskset && pre=(taskset -c 0)
		/usr/bin/time -o "$T/time" -f %M "${pre[@]}" "$BKFS" fsck -n "$IMG" > "$T/out" 2>&1 ||
			fail "fsck -n failed ($cpu)"
		est=$(estimate_kib)
		peak=$(tail -1 "$T/time")
		echo "cores $cpu: estimate $est KiB, peak $peak KiB"
		[ $((peak * 4)) -ge $((est * 3)) ] && [ $((peak * 4)) -le $((est * 5)) ] ||
			fail "cores $cpu: peak $peak KiB not within 25 % of the estimate $est KiB"
	done
fi
echo "fsck_memory: ok ($NSKIP skipped)"
