#!/bin/bash
# tests/fuzz/run.sh [SECONDS] - `make fuzz`: build the libFuzzer harness
# tests/fuzz/fuzz_node.c with clang (address and undefined sanitizers), seed
# its corpus with nodes, keys and superblocks of a real image (when
# $BUILD/bkfs and $BUILD/gentree are built), and run it for SECONDS (default
# 30). Without clang it says so and exits 0. A crash leaves its input in
# $BUILD/fuzz/ (crash-*) and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-30}
BUILD=${BUILD:-build}
OUT=$BUILD/fuzz
CC_FUZZ=${CC_FUZZ:-clang}

if ! command -v "$CC_FUZZ" > /dev/null; then
	echo "fuzz: $CC_FUZZ not found: skipped"
	exit 0
fi
mkdir -p "$OUT/corpus"
"$CC_FUZZ" -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Wall -Wno-address-of-packed-member \
	-o "$OUT/fuzz_node" tests/fuzz/fuzz_node.c src/format/bkey.c src/format/bkey_methods.c src/format/node_salvage.c src/format/sb.c src/util/util.c \
	-lisal -pthread

# ---- seeds from a real image
seed() { # NAME TARGET PARAM FILE OFFSET LEN
	{ printf "\\$(printf '%03o' "$2")\\$(printf '%03o' "$3")"
	  dd if="$4" bs=1M iflag=skip_bytes,count_bytes skip="$5" count="$6" status=none; } > "$OUT/corpus/$1"
}
byte_at() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u16_at() { od -An -tu2 -j "$2" -N2 "$1" | tr -d ' '; }
u32_at() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
if [ -x "$BUILD/bkfs" ] && [ -x "$BUILD/gentree" ] && [ ! -e "$OUT/corpus/.seeded" ]; then
	S=$OUT/seed
	rm -rf "$S"
	mkdir -p "$S"
	if "$BUILD/gentree" --seed 3 --files 300 --quiet "$S/src" > /dev/null 2>&1 &&
	   truncate -s 32M "$S/img" && "$BUILD/bkfs" format --source "$S/src" "$S/img" > /dev/null 2>&1; then
		nb=$(( $("$BUILD/bkfs" show-super "$S/img" | awk '/^btree_node_size:/ { print $2 }') * 512 ))
		# 64 KiB nodes are param 2; +4 stamps the magic and checksum
		p=$(( nb == 4096 ? 0 : nb == 16384 ? 1 : nb == 65536 ? 2 : 3 ))
		{
			"$BUILD/bkfs" show-super "$S/img" | sed -n 's/.*ptrs: dev 0 off \([0-9]*\).*/\1/p'
			"$BUILD/bkfs" list -l 1 "$S/img" | grep -o 'dev 0 off [0-9]*' | awk '{ print $4 }'
		} | sort -un > "$S/nodes"
		n=0
		while read -r off; do
			b=$((off * 512))
			seed "node-$n" 0 $((p | 4)) "$S/img" "$b" "$(u32_at "$S/img" $((b + 24)))"
			# the node's first key on its own
			if [ "$(u32_at "$S/img" $((b + 20)))" != 0 ]; then
				id=$(byte_at "$S/img" $((b + 16)))
				lvl=$(byte_at "$S/img" $((b + 17)))
				seed "key-$n" 1 $((id | lvl << 3)) "$S/img" $((b + 96)) $(( $(u16_at "$S/img" $((b + 96))) * 8 ))
			fi
			n=$((n + 1))
		done < "$S/nodes"
		seed sb-0 2 0 "$S/img" 4096 4096
		seed sb-1 2 1 "$S/img" 65536 4096
		touch "$OUT/corpus/.seeded"
		echo "fuzz: seeded the corpus with $n nodes of a real image"
	fi
	rm -rf "$S"
fi

echo "fuzz: running $OUT/fuzz_node for ${SECS}s"
cd "$OUT"
exec ./fuzz_node -max_total_time="$SECS" -max_len=262200 -print_final_stats=1 corpus
