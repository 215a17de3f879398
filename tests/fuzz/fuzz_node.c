/* fuzz_node.c - libFuzzer harness for the format layer's validators and
 * printers: node_validate, bkey_validate, bkey_to_text, node_hdr_to_text,
 * sb_validate and sb_to_text. Every one of them must be safe on arbitrary
 * bytes (format.h: "lengths are checked before any value field is read").
 *
 * Input layout: byte 0 selects the target, byte 1 a parameter, the rest is
 * the object.
 *   target 0: a btree node. The payload is copied into a node buffer of
 *     4 KiB << (2 * (param & 3)) bytes (4K, 16K, 64K or 256K, zero
 *     padded). With param bit 2 set, the harness stamps the expected magic
 *     and version and recomputes the checksum first, so that mutations reach
 *     the key checks. When the node's framing validates (node_validate_soft),
 *     every key is printed; the keys that fail validation on their own must
 *     be exactly those it counted (none when node_validate accepts it).
 *   target 1: a single key, validated for btree id param & 7 at level
 *     (param >> 3) & 7, then printed (when the buffer holds all of it).
 *   target 2: a superblock slot (4096 bytes, zero padded); param bit 0
 *     recomputes the checksum first. Printed when it validates.
 *
 * Build: `make fuzz` (clang -fsanitize=fuzzer,address,undefined). */
#include "../../src/format/format.h"
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAGIC 0x0123456789abcdefull

struct fuzz_kept {
	u32 nr;
	bool bad_order;
	struct bpos last;
};

static int fuzz_keep(void *arg, const struct bkey *k)
{
	struct fuzz_kept *f = arg;
	if (f->nr && bpos_cmp(f->last, k->p) >= 0)
		f->bad_order = true;
	f->last = k->p;
	f->nr++;
	return 0;
}

static void check_node(const uint8_t *data, size_t size, unsigned param)
{
	size_t node_bytes = (size_t)4096 << (2 * (param & 3));
	u8 *buf = calloc(1, node_bytes);
	if (!buf)
		return;
	memcpy(buf, data, size < node_bytes ? size : node_bytes);
	struct bkfs_node_hdr *h = (struct bkfs_node_hdr *)buf;
	if (param & 4) {
		h->magic = FUZZ_MAGIC;
		h->version = BKFS_FORMAT_VERSION;
		if (h->used_bytes < sizeof(*h) || h->used_bytes > node_bytes)
			h->used_bytes = sizeof(*h) + (h->used_bytes % (node_bytes - sizeof(*h) + 1));
		node_csum_set(buf, node_bytes);
	}
	struct printbuf pb = PRINTBUF;
	node_hdr_to_text(&pb, h);
	int ret = node_validate(buf, node_bytes, FUZZ_MAGIC, &pb);
	u32 nr_invalid = 0;
	int soft = node_validate_soft(buf, node_bytes, FUZZ_MAGIC, &nr_invalid, NULL);
	if (!ret && (soft || nr_invalid))
		__builtin_trap(); /* the soft check refused what the strict one took */
	if (!soft && h->level && nr_invalid)
		__builtin_trap(); /* an interior node with invalid keys */
	if (!soft) {
		/* framing holds: walk and print every key; the invalid ones are
		 * exactly those counted */
		size_t off = sizeof(*h);
		u32 bad = 0;
		for (u32 i = 0; i < h->nr_keys; i++) {
			const struct bkey *k = (const struct bkey *)(buf + off);
			if (off + sizeof(*k) > h->used_bytes || off + bkey_bytes(k) > h->used_bytes)
				__builtin_trap(); /* node_validate let a key overrun used_bytes */
			bad += bkey_validate(k, h->btree_id, h->level, NULL) != 0;
			pb_reset(&pb);
			bkey_to_text(&pb, k);
			struct bkfs_ptr *ptrs;
			unsigned n = bkey_ptrs(k, &ptrs);
			for (unsigned j = 0; j < n; j++)
				ptr_to_text(&pb, &ptrs[j]);
			off += bkey_bytes(k);
		}
		if (off != h->used_bytes || bad != nr_invalid)
			__builtin_trap();
	}
	if (ret == -BKFS_E_CSUM && !h->level) {
		/* what a salvage keeps is framed and in order */
		struct node_salvage s;
		struct fuzz_kept kept = { 0 };
		if (!node_salvage(buf, node_bytes, FUZZ_MAGIC, h->btree_id, h->seq, h->min_key, h->max_key,
				  fuzz_keep, &kept, &s, &pb)) {
			if (kept.bad_order || s.kept != kept.nr)
				__builtin_trap();
			node_salvage_to_text(&pb, &s);
			node_salvage_exit(&s);
		}
	}
	pb_exit(&pb);
	free(buf);
}

static void check_key(const uint8_t *data, size_t size, unsigned param)
{
	/* Keys live 8-byte aligned in nodes, and a caller always has the
	 * u64s * 8 bytes the header claims (node_validate checks that first):
	 * give the key an aligned, zero-padded copy of that size. */
	struct bkey hdr_copy = { 0 };
	memcpy(&hdr_copy, data, size < sizeof(hdr_copy) ? size : sizeof(hdr_copy));
	size_t len = MAX(MAX(size, sizeof(struct bkey)), bkey_bytes(&hdr_copy));
	u64 *buf = calloc(1, ROUND_UP(len, 8));
	if (!buf)
		return;
	memcpy(buf, data, size);
	const struct bkey *k = (const struct bkey *)buf;
	struct printbuf pb = PRINTBUF;
	int ret = bkey_validate(k, param & 7, (param >> 3) & 7, &pb);
	if (k->u64s >= BKEY_U64s) {
		pb_reset(&pb);
		bkey_to_text(&pb, k);
		struct bkfs_ptr *ptrs;
		unsigned n = bkey_ptrs(k, &ptrs);
		for (unsigned j = 0; j < n; j++)
			ptr_to_text(&pb, &ptrs[j]);
		if (!ret && k->type == KEY_TYPE_alloc)
			alloc_to_text(&pb, bkey_val(k));
	}
	pb_exit(&pb);
	free(buf);
}

static void check_sb(const uint8_t *data, size_t size, unsigned param)
{
	u8 *buf = calloc(1, BKFS_SB_SIZE);
	if (!buf)
		return;
	memcpy(buf, data, size < BKFS_SB_SIZE ? size : BKFS_SB_SIZE);
	struct bkfs_sb *sb = (struct bkfs_sb *)buf;
	if (param & 1) {
		sb->magic = BKFS_SB_MAGIC;
		sb->magic2 = BKFS_SB_MAGIC2;
		sb->version = BKFS_FORMAT_VERSION;
		sb_csum_set(sb);
	}
	struct printbuf pb = PRINTBUF;
	if (!sb_validate(sb, &pb)) {
		pb_reset(&pb);
		sb_to_text(&pb, sb);
		(void)sb_node_magic(sb);
		(void)sb_journal_magic(sb);
	}
	pb_exit(&pb);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned target = data[0] % 3, param = data[1];
	data += 2;
	size -= 2;
	switch (target) {
	case 0: check_node(data, size, param); break;
	case 1: check_key(data, size, param); break;
	case 2: check_sb(data, size, param); break;
	}
	return 0;
}
