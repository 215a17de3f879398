/* bkey.c - positions, names, keys, key validation, btree node validation and
 * the printers for all of them; what is particular to one key type is in
 * bkey_methods.c. Every function here must be safe on arbitrary bytes:
 * lengths are checked before any value field is read. */
#include "bkey_format.h"
#include "extents_format.h"
#include "alloc_format.h"
#include "node_format.h"
#include "invalid.h"
#include <string.h>

/* ---- positions ---- */

struct bpos bpos_successor(struct bpos p)
{
	if (bpos_eq(p, POS_MAX))
		return POS_MAX;
	p.pad = 0;
	if (p.snapshot != UINT32_MAX) {
		p.snapshot++;
		return p;
	}
	p.snapshot = 0;
	if (p.offset != UINT64_MAX) {
		p.offset++;
		return p;
	}
	p.offset = 0;
	p.inode++;
	return p;
}

struct bpos bpos_predecessor(struct bpos p)
{
	if (bpos_eq(p, POS_MIN))
		return POS_MIN;
	p.pad = 0;
	if (p.snapshot) {
		p.snapshot--;
		return p;
	}
	p.snapshot = UINT32_MAX;
	if (p.offset) {
		p.offset--;
		return p;
	}
	p.offset = UINT64_MAX;
	p.inode--;
	return p;
}

/* ---- names ---- */

/* one row per btree id: its columns of BKFS_BTREE_IDS */
static const struct btree_id_info {
	const char *name;
	u8 flags;
	u64 leaf_key_types;
} btree_ids[] = {
#define x(n, v, flags, types) [v] = { #n, flags, types },
	BKFS_BTREE_IDS()
#undef x
};

const char *btree_id_str(unsigned id)
{
	if (id < ARRAY_SIZE(btree_ids) && btree_ids[id].name)
		return btree_ids[id].name;
	return "unknown";
}

int btree_id_parse(const char *s)
{
	if (!s)
		return -1;
	for (unsigned i = 0; i < ARRAY_SIZE(btree_ids); i++)
		if (btree_ids[i].name && !strcmp(s, btree_ids[i].name))
			return (int)i;
	return -1;
}

bool btree_is_extents(unsigned id)
{
	return id < BTREE_ID_NR && (btree_ids[id].flags & BTREE_IS_extents);
}

const char *key_type_str(unsigned t)
{
	const char *name = bkey_type_ops(t)->name;
	return name ? name : "unknown";
}

static bool key_type_known(unsigned t)
{
	return bkey_type_ops(t)->name != NULL;
}

static const char *const data_type_names[] = {
#define x(n, v) [v] = #n,
	BKFS_DATA_TYPES()
#undef x
};

const char *data_type_str(unsigned t)
{
	if (t < ARRAY_SIZE(data_type_names) && data_type_names[t])
		return data_type_names[t];
	return "unknown";
}

/* ---- keys ---- */

void bkey_init(struct bkey *k, unsigned type, struct bpos p, size_t val_bytes)
{
	size_t u64s = DIV_ROUND_UP(sizeof(struct bkey) + val_bytes, 8);
	memset(k, 0, u64s * 8);
	k->u64s = (u16)u64s;
	k->type = (u8)type;
	k->p = p;
}

unsigned bkey_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs)
{
	unsigned (*fn)(const struct bkey *, struct bkfs_ptr **) = bkey_type_ops(k->type)->ptrs;
	struct bkfs_ptr *p = NULL;
	unsigned n = 0;

	if (k->u64s >= BKEY_U64s && fn)
		n = fn(k, &p);
	if (ptrs)
		*ptrs = n ? p : NULL;
	return n;
}

bool bkey_set_ptrs(struct bkey *k, const struct bkfs_ptr *p, unsigned nr)
{
	const struct bkey_ops *ops = bkey_type_ops(k->type);
	if (!ops->set_ptrs)
		return false;
	ops->set_ptrs(k, p, nr);
	return true;
}

/* ---- key validation ---- */

/* interior nodes hold btree pointers only; a leaf its btree's types and the
 * deleted and whiteout keys every btree may hold */
static bool key_type_allowed(unsigned id, unsigned level, unsigned t)
{
	if (level)
		return t == KEY_TYPE_btree_ptr;
	if (t == KEY_TYPE_deleted || t == KEY_TYPE_whiteout)
		return true;
	return t < KEY_TYPE_MAX && (btree_ids[id].leaf_key_types & (1ull << t));
}

int bkey_validate(const struct bkey *k, unsigned btree_id, unsigned level, struct printbuf *err)
{
	if (k->u64s < BKEY_U64s)
		INVALID("u64s %u too small", k->u64s);
	size_t vb = bkey_val_bytes(k);
	if (vb > BKEY_VAL_MAX)
		INVALID("value too big (%zu bytes)", vb);
	if (btree_id >= BTREE_ID_NR)
		INVALID("bad btree id %u", btree_id);
	if (level >= BTREE_MAX_DEPTH)
		INVALID("bad level %u", level);
	if (!key_type_known(k->type))
		INVALID("unknown key type %u", k->type);
	if (!key_type_allowed(btree_id, level, k->type))
		INVALID("key type %s not allowed in btree %s level %u",
			key_type_str(k->type), btree_id_str(btree_id), level);
	if (!level && btree_is_extents(btree_id)) {
		if (k->size > k->p.offset)
			INVALID("size %u > offset %llu", k->size, (unsigned long long)k->p.offset);
	} else if (k->size) {
		INVALID("size %u on non-extent key", k->size);
	}

	int (*validate)(const struct bkey *, struct printbuf *) = bkey_type_ops(k->type)->validate;
	return validate ? validate(k, err) : 0;
}

/* ---- printers ---- */

void bpos_to_text(struct printbuf *out, struct bpos p)
{
	if (bpos_eq(p, POS_MAX))
		pb_printf(out, "POS_MAX");
	else if (bpos_eq(p, POS_MIN))
		pb_printf(out, "POS_MIN");
	else
		pb_printf(out, "%llu:%llu:%u", (unsigned long long)p.inode,
			  (unsigned long long)p.offset, p.snapshot);
}

void ptr_to_text(struct printbuf *out, const struct bkfs_ptr *p)
{
	pb_printf(out, "dev %u off %llu gen %u", p->dev, (unsigned long long)p->offset, p->gen);
	if (p->flags & PTR_CACHED)
		pb_printf(out, " cached");
	if (p->flags & PTR_HAS_STRIPE)
		pb_printf(out, " stripe %u block %u", p->stripe_idx, p->stripe_block);
	if (p->flags & ~(PTR_CACHED | PTR_HAS_STRIPE))
		pb_printf(out, " flags 0x%x", p->flags);
}

static void val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkey_ops *ops = bkey_type_ops(k->type);
	size_t vb = bkey_val_bytes(k);

	if (!ops->val_to_text)
		pb_printf(out, "(%zu value bytes)", vb);
	else if (vb < ops->min_val_size)
		pb_printf(out, "(bad value size %zu)", vb);
	else
		ops->val_to_text(out, k);
}

void bkey_to_text(struct printbuf *out, const struct bkey *k)
{
	pb_printf(out, "u64s %u type %s pos ", k->u64s, key_type_str(k->type));
	bpos_to_text(out, k->p);
	if (k->size)
		pb_printf(out, " size %u", k->size);
	pb_printf(out, " ver %llu", (unsigned long long)k->version);
	if (k->u64s < BKEY_U64s) {
		pb_printf(out, ": (bad u64s)");
		return;
	}
	pb_printf(out, ": ");
	val_to_text(out, k);
}

void node_hdr_to_text(struct printbuf *out, const struct bkfs_node_hdr *h)
{
	pb_printf(out, "csum 0x%08x version %u magic 0x%016llx btree %s level %u flags 0x%x "
		  "nr_keys %u used_bytes %u chunk_shift %u seq %llu journal_seq %llu min_key ",
		  h->csum, h->version, (unsigned long long)h->magic, btree_id_str(h->btree_id),
		  h->level, h->flags, h->nr_keys, h->used_bytes, h->chunk_shift, (unsigned long long)h->seq,
		  (unsigned long long)h->journal_seq);
	bpos_to_text(out, h->min_key);
	pb_printf(out, " max_key ");
	bpos_to_text(out, h->max_key);
}

/* ---- btree nodes ---- */

u32 node_image_bytes(const struct bkfs_node_hdr *h, size_t node_bytes)
{
	u64 n = h->used_bytes;
	if (h->chunk_shift >= NODE_CHUNK_SHIFT_MIN && h->chunk_shift <= NODE_CHUNK_SHIFT_MAX &&
	    h->used_bytes <= node_bytes)
		n += node_chunk_table_bytes(h->used_bytes, h->chunk_shift);
	return (u32)MIN(n, (u64)node_bytes);
}

/* chunk i of a node whose keys end at used: [*a, *b) */
static void chunk_span(u32 i, unsigned shift, u32 used, u32 *a, u32 *b)
{
	*a = MAX(4u, i << shift);
	*b = MIN((i + 1) << shift, used);
}

static u32 chunk_trailer_csum(const u8 *table, u32 nr_chunks)
{
	const u8 *t = table + nr_chunks * sizeof(struct bkfs_node_chunk);
	u32 crc = bkfs_crc32c(0, table, nr_chunks * sizeof(struct bkfs_node_chunk));
	return bkfs_crc32c(crc, t + 4, sizeof(struct bkfs_node_chunk_trailer) - 4);
}

static struct bkfs_node_chunk_trailer *chunk_trailer(const u8 *table, u32 nr_chunks)
{
	return (struct bkfs_node_chunk_trailer *)(table + nr_chunks * sizeof(struct bkfs_node_chunk));
}

static void node_chunks_write(u8 *buf)
{
	struct bkfs_node_hdr *h = (void *)buf;
	unsigned shift = h->chunk_shift;
	u32 used = h->used_bytes, n = (used + (1u << shift) - 1) >> shift;
	struct bkfs_node_chunk *e = (void *)(buf + used);
	for (u32 i = 0, a, b; i < n; i++) {
		chunk_span(i, shift, used, &a, &b);
		e[i] = (struct bkfs_node_chunk){ .csum = bkfs_crc32c(0, buf + a, b - a) };
	}
	u32 off = sizeof(*h);
	for (u32 k = 0; k < h->nr_keys && off + sizeof(struct bkey) <= used; k++) {
		const struct bkey *key = (const void *)(buf + off);
		if (!e[off >> shift].first_key)
			e[off >> shift].first_key = off;
		if (key->u64s < BKEY_U64s)
			break;
		off += bkey_bytes(key);
	}
	struct bkfs_node_chunk_trailer *t = chunk_trailer((u8 *)e, n);
	*t = (struct bkfs_node_chunk_trailer){
		.used_bytes = used, .nr_keys = h->nr_keys, .seq = h->seq, .journal_seq = h->journal_seq,
	};
	t->csum = chunk_trailer_csum((u8 *)e, n);
}

void node_csum_set(void *buf, size_t node_bytes)
{
	struct bkfs_node_hdr *h = buf;
	u32 used = h->used_bytes;
	h->chunk_shift = 0;
	if (h->version >= 3 && used >= sizeof(*h) &&
	    (u64)used + node_chunk_table_bytes(used, NODE_CHUNK_SHIFT) <= node_bytes) {
		h->chunk_shift = NODE_CHUNK_SHIFT;
		node_chunks_write(buf);
	}
	h->csum = bkfs_crc32c(0, (u8 *)buf + 4, used > 4 ? used - 4 : 0);
}

/* The chunk table of a node whose header says it has one: 0 if its trailer
 * checks out and agrees with the header fields it repeats. */
static int node_chunks_check(const u8 *buf, struct printbuf *err)
{
	const struct bkfs_node_hdr *h = (const void *)buf;
	u32 n = (h->used_bytes + (1u << h->chunk_shift) - 1) >> h->chunk_shift;
	const u8 *table = buf + h->used_bytes;
	const struct bkfs_node_chunk_trailer *t = chunk_trailer(table, n);
	u32 csum = chunk_trailer_csum(table, n);
	if (csum != t->csum) {
		if (err)
			pb_printf(err, "node: chunk table checksum mismatch (stored 0x%08x, computed 0x%08x)", t->csum,
				  csum);
		return -BKFS_E_CSUM;
	}
	if (t->used_bytes != h->used_bytes || t->nr_keys != h->nr_keys || t->seq != h->seq ||
	    t->journal_seq != h->journal_seq) {
		if (err)
			pb_printf(err, "node: chunk table trailer disagrees with the header");
		return -BKFS_E_CSUM;
	}
	return 0;
}

/* ---- raw node images ---- */

static u32 node_buf_key_off(const void *buf, u32 idx)
{
	u32 off = sizeof(struct bkfs_node_hdr);
	while (idx--)
		off += bkey_bytes((const struct bkey *)((const u8 *)buf + off));
	return off;
}

struct bkey *node_buf_key(void *buf, u32 idx)
{
	return (struct bkey *)((u8 *)buf + node_buf_key_off(buf, idx));
}

int node_buf_find(const void *buf, struct bpos p)
{
	const struct bkfs_node_hdr *h = buf;
	u32 off = sizeof(*h);
	for (u32 i = 0; i < h->nr_keys; i++) {
		const struct bkey *k = (const struct bkey *)((const u8 *)buf + off);
		if (bpos_eq(k->p, p))
			return (int)i;
		off += bkey_bytes(k);
	}
	return -1;
}

void node_buf_delete(void *buf, size_t node_bytes, u32 idx)
{
	struct bkfs_node_hdr *h = buf;
	u8 *b = buf;
	u32 off = node_buf_key_off(buf, idx);
	u32 sz = bkey_bytes((struct bkey *)(b + off));
	memmove(b + off, b + off + sz, h->used_bytes - off - sz);
	h->used_bytes -= sz;
	memset(b + h->used_bytes, 0, node_bytes - h->used_bytes);
	h->nr_keys--;
}

int node_buf_replace(void *buf, size_t node_bytes, u32 idx, const struct bkey *k)
{
	struct bkfs_node_hdr *h = buf;
	u8 *b = buf;
	u32 off = node_buf_key_off(buf, idx);
	u32 osz = bkey_bytes((struct bkey *)(b + off)), nsz = bkey_bytes(k);
	if (h->used_bytes - osz + nsz > node_bytes)
		return -BKFS_E_NOSPC;
	memmove(b + off + nsz, b + off + osz, h->used_bytes - off - osz);
	memcpy(b + off, k, nsz);
	h->used_bytes = h->used_bytes - osz + nsz;
	memset(b + h->used_bytes, 0, node_bytes - h->used_bytes);
	return 0;
}

/* Header, checksum and key framing: any failure makes the node unreadable.
 * Each key is then checked with bkey_validate(): in an interior node an
 * invalid key fails the node (its pointers are the tree's structure); in a
 * leaf, with nr_invalid given, it is only counted (the checker drops that key,
 * not the node, and readers skip it). */
int node_validate_soft(const void *buf, size_t node_bytes, u64 magic, u32 *nr_invalid, struct printbuf *err)
{
	const struct bkfs_node_hdr *h = buf;

	if (nr_invalid)
		*nr_invalid = 0;
	if (node_bytes < sizeof(*h))
		INVALID("node: buffer %zu bytes smaller than header", node_bytes);
	if (h->magic != magic)
		INVALID("node: bad magic 0x%016llx", (unsigned long long)h->magic);
	if (!format_version_ok(h->version))
		INVALID("node: bad version %u", h->version);
	if (h->used_bytes < sizeof(*h) || h->used_bytes > node_bytes)
		INVALID("node: bad used_bytes %u (node %zu bytes)", h->used_bytes, node_bytes);
	if (h->btree_id >= BTREE_ID_NR)
		INVALID("node: bad btree id %u", h->btree_id);
	if (h->level >= BTREE_MAX_DEPTH)
		INVALID("node: bad level %u", h->level);
	if (bpos_cmp(h->min_key, h->max_key) > 0)
		INVALID("node: min_key after max_key");
	if (h->chunk_shift && (h->version < 3 || h->chunk_shift < NODE_CHUNK_SHIFT_MIN ||
			       h->chunk_shift > NODE_CHUNK_SHIFT_MAX))
		INVALID("node: bad chunk_shift %u (version %u)", h->chunk_shift, h->version);
	if (h->chunk_shift && (u64)h->used_bytes + node_chunk_table_bytes(h->used_bytes, h->chunk_shift) > node_bytes)
		INVALID("node: chunk table past the node (used_bytes %u)", h->used_bytes);

	u32 csum = bkfs_crc32c(0, (const u8 *)buf + 4, h->used_bytes - 4);
	if (csum != h->csum) {
		if (err)
			pb_printf(err, "node: checksum mismatch (stored 0x%08x, computed 0x%08x)",
				  h->csum, csum);
		return -BKFS_E_CSUM;
	}
	if (h->chunk_shift) {
		int ret = node_chunks_check(buf, err);
		if (ret)
			return ret;
	}

	bool soft = nr_invalid && !h->level;
	size_t off = sizeof(*h), used = h->used_bytes;
	const struct bkey *prev = NULL;
	for (u32 i = 0; i < h->nr_keys; i++) {
		if (used - off < sizeof(struct bkey))
			INVALID("node: key %u header past used_bytes", i);
		const struct bkey *k = (const struct bkey *)((const u8 *)buf + off);
		if (k->u64s < BKEY_U64s)
			INVALID("node: key %u u64s %u too small", i, k->u64s);
		if (bkey_bytes(k) > used - off)
			INVALID("node: key %u (u64s %u) past used_bytes", i, k->u64s);

		if (soft) {
			if (bkey_validate(k, h->btree_id, h->level, NULL))
				(*nr_invalid)++;
		} else {
			struct printbuf why = PRINTBUF;
			int ret = bkey_validate(k, h->btree_id, h->level, &why);
			if (ret) {
				if (err) {
					pb_printf(err, "node: key %u at ", i);
					bpos_to_text(err, k->p);
					pb_printf(err, ": %s", pb_str(&why));
				}
				pb_exit(&why);
				return -BKFS_E_CORRUPT;
			}
			pb_exit(&why);
		}

		if (prev && bpos_cmp(prev->p, k->p) >= 0) {
			if (err) {
				pb_printf(err, "node: key %u at ", i);
				bpos_to_text(err, k->p);
				pb_printf(err, " not after previous key ");
				bpos_to_text(err, prev->p);
			}
			return -BKFS_E_CORRUPT;
		}
		if (bpos_cmp(k->p, h->min_key) < 0 || bpos_cmp(k->p, h->max_key) > 0) {
			if (err) {
				pb_printf(err, "node: key %u at ", i);
				bpos_to_text(err, k->p);
				pb_printf(err, " outside node range");
			}
			return -BKFS_E_CORRUPT;
		}
		prev = k;
		off += bkey_bytes(k);
	}
	if (off != used)
		INVALID("node: keys end at %zu, used_bytes %zu", off, used);
	return 0;
}

int node_validate(const void *buf, size_t node_bytes, u64 magic, struct printbuf *err)
{
	return node_validate_soft(buf, node_bytes, magic, NULL, err);
}
