# corrupt_common.bash - helpers shared by corrupt.sh, crash_repair.sh and
# fuzz.sh (sourced; not a test by itself: tests/run.sh only runs *.sh files
# directly under tests/integration).
#
# Needs BKFS, GENTREE and TMPDIR (set by tests/run.sh).

: "${BKFS:?}" "${GENTREE:?}" "${TMPDIR:?}"

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.bash"

# `bkfs debug corrupt --list`: one kind a line, tab-separated
# KIND EXPECTED-FSCK-ERROR NEEDS DESCRIPTION; NEEDS is what the image must
# hold, names joined by ',' or '-' (stripes, three_level); '#' lines are
# comments.

# corrupt_kinds: the kind names, one per line
corrupt_kinds() {
	"$BKFS" debug corrupt --list | awk -F'\t' '!/^#/ && NF { print $1 }'
}

# corrupt_expect KIND: the fsck error the kind should provoke
corrupt_expect() {
	"$BKFS" debug corrupt --list | awk -F'\t' -v k="$1" '!/^#/ && $1 == k { print $2 }'
}

# corrupt_needs KIND: what the image must hold for KIND ("-" for nothing)
corrupt_needs() {
	"$BKFS" debug corrupt --list | awk -F'\t' -v k="$1" '!/^#/ && $1 == k { print $3 }'
}

# corrupt_kinds_needing NEED: the kinds whose needs include NEED, one per line
corrupt_kinds_needing() {
	"$BKFS" debug corrupt --list |
		awk -F'\t' -v n="$1" '!/^#/ && NF { split($3, a, ","); for (i in a) if (a[i] == n) print $1 }'
}

require_corrupt() {
	"$BKFS" debug corrupt --list > /dev/null 2>&1 || skip "bkfs debug corrupt is not available"
}

# make_sample DIR FILES: a generated tree (seed 7) plus a few big files whose
# buckets each hold a single extent (share_big shares two of them).
make_sample() {
	local dir=$1 files=$2 big=$1.big
	"$GENTREE" --seed 7 --files "$files" --quiet "$dir" > /dev/null || fail "gentree failed"
	mkdir -p "$big"
	# deterministic content: the generated files, concatenated
	find "$dir" -type f -size +1k -print0 | LC_ALL=C sort -z | xargs -0 cat 2>/dev/null |
		head -c 6000000 > "$big/pool"
	head -c 3000000 "$big/pool" > "$big/b1"
	tail -c 1500001 "$big/pool" > "$big/b2"
	head -c 4194304 "$big/pool" | tail -c 2097152 > "$big/b3"
	rm "$big/pool"
	mv "$big" "$dir/big"
}

# make_image SRC IMG SIZE: format IMG from SRC
make_image() {
	rm -f "$2"
	truncate -s "$3" "$2"
	"$BKFS" format --source "$1" "$2" > "$2.format.log" 2>&1 || { cat "$2.format.log"; fail "format --source failed"; }
}

# share_big IMG: the big files b1 and b3 of a make_sample image get copies
# that share their data (bkfs reflink): big/b1.shared, big/b3.shared
share_big() {
	local f
	for f in b1 b3; do
		"$BKFS" reflink "$1" "/big/$f" "/big/$f.shared" >> "$1.format.log" 2>&1 ||
			{ cat "$1.format.log"; fail "bkfs reflink /big/$f failed"; }
	done
}

# extract_manifest IMG OUT MANIFEST: extract IMG into OUT (fresh) and write the sha256
# of every regular file, by path (./rel/path), to MANIFEST. Returns the exit
# status of extract (1 = some objects could not be read: the manifest is
# still written, the problems are in OUT.extract.log).
extract_manifest() {
	local img=$1 out=$2 man=$3 rc=0
	extract_to "$img" "$out" || rc=$?
	(cd "$out" && find . -path ./lost+found -prune -o -type f -print0 | LC_ALL=C sort -z |
		xargs -0 -r sha256sum) > "$man"
	return $rc
}

# extract_to IMG OUT: extract into a fresh OUT (log in OUT.extract.log); a
# multi-device IMG is its devices joined by ':'
extract_to() {
	local devs
	IFS=: read -r -a devs <<< "$1"
	rm -rf "$2"
	mkdir -p "$2"
	"$BKFS" extract "${devs[@]}" "$2" > "$2.extract.log" 2>&1
}

# is_asan: the bkfs binary is built with AddressSanitizer (slower: tests
# shrink their workloads)
is_asan() {
	grep -qa __asan_init "$BKFS" 2>/dev/null
}

# compare_manifest MANIFEST OUT: one line "missing PATH" or "differs PATH"
# (PATH as ./rel/path) per regular file of MANIFEST not identical in OUT
compare_manifest() {
	(cd "$2" && sha256sum -c --quiet "$1" 2>/dev/null) |
		sed -n -e 's/^\(.*\): FAILED open or read$/missing \1/p' -e 's/^\(.*\): FAILED$/differs \1/p'
}

# json_names FILE: the finding names of a fsck --json report, in order
json_names() {
	grep -o '"name": "[a-z_0-9]*", "number"' "$1" 2>/dev/null | cut -d'"' -f4
}

# json_lost FILE: "extents sectors nodes salvaged files" of a fsck --json
# report (files: files that lost data)
json_lost() {
	local l s f
	l=$(grep -o '"lost": {[^}]*}' "$1" 2>/dev/null | grep -o '[0-9][0-9]*' | head -3 | tr '\n' ' ')
	f=$(grep -o '"files": [0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$')
	s=$(grep -o '"salvaged_inodes": [0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$')
	echo "${l:-0 0 0 }${s:-0} ${f:-0}"
}

# A seeded PRNG that works without subshells (bash reseeds $RANDOM in every
# subshell, so $(...) around $RANDOM is neither reproducible nor advancing).
# rng_seed N; rng N sets R to a value in [0, N).
RNG_STATE=1
rng_seed() { RNG_STATE=$(( $1 * 2654435761 + 12345 )); }
rng() {
	RNG_STATE=$(( RNG_STATE * 6364136223846793005 + 1442695040888963407 ))
	R=$(( ((RNG_STATE >> 33) & 0x7fffffff) % $1 ))
}
