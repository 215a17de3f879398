/* node_salvage.c - what can be kept of a btree leaf whose checksum fails.
 *
 * A node of format version 3 ends with a chunk table (node_format.h): a
 * checksum per 1 KiB chunk of header and keys, the offset of the first key
 * starting in each chunk, and a trailer with its own checksum repeating the
 * header fields a reader needs. When the node's checksum fails but the
 * table's holds, every chunk whose checksum matches is as it was written:
 * the keys lying wholly in such chunks are kept, and reading resumes after a
 * damaged run at the first key the next good chunk names. What is lost is
 * exactly the keys between the last kept key before a damaged run and the
 * first kept key after it, so the caller learns the position ranges to
 * treat as lost, not a whole node's range.
 *
 * The header sits in chunk 0. If that chunk is damaged, the trailer gives
 * used_bytes, nr_keys, seq and journal_seq; the btree id, level and key
 * range come from the pointer the caller followed. A header damaged where it
 * says where the table is (used_bytes, chunk_shift) or what the node is (its
 * magic) does not hide the table: it is then looked for at every place it
 * could start (with the chunk size writers use), and taken where its own
 * checksum holds and its trailer names the sequence number of the node the
 * pointer names.
 *
 * A damaged table (or trailer) says nothing about the keys, but the node's
 * own checksum still does: when it holds over [4, used_bytes) with the
 * header's fields, every key is as written and all are kept. When both the
 * table and the keys are damaged, nothing is trusted: the node is lost. */
#include "bkey_format.h"
#include "node_format.h"
#include "invalid.h"
#include "../util/darray.h"
#include <stdlib.h>
#include <string.h>

struct salvage_walk {
	const u8 *buf;
	u32 used, nr_chunks;
	unsigned shift;
	const struct bkfs_node_chunk *e;
	bool *good;            /* per chunk */
	struct bpos min, max;  /* the node's range */
	const struct bkey *prev; /* the last key kept */
	bool lost_open;        /* keys lost since prev */
	struct node_salvage *s;
	int (*keep)(void *, const struct bkey *);
	void *arg;
	size_t cap_lost;
};

static bool span_good(const struct salvage_walk *w, u32 a, u32 b)
{
	for (u32 i = a >> w->shift; i <= (b - 1) >> w->shift; i++)
		if (!w->good[i])
			return false;
	return true;
}

/* The range of positions between the last key kept and k (NULL: the node's
 * end) is lost. */
static int lost_until(struct salvage_walk *w, const struct bkey *k)
{
	struct bpos a = w->prev ? bpos_successor(w->prev->p) : w->min;
	struct bpos b = k ? bpos_predecessor(k->p) : w->max;
	w->lost_open = false;
	if (bpos_cmp(a, b) > 0)
		return 0;
	struct node_salvage *s = w->s;
	if (darray_room(s->lost_ranges, w->cap_lost, s->nr_lost_ranges + 1, 4))
		return -BKFS_E_NOMEM;
	s->lost_ranges[s->nr_lost_ranges++] = (struct node_lost_range){ a, b };
	return 0;
}

/* Keep the keys from off on while they lie in good chunks, are framed
 * right and in order. Returns the offset where it stopped. */
static int walk_from(struct salvage_walk *w, u32 off, u32 *stop)
{
	int ret = 0;
	while (off + sizeof(struct bkey) <= w->used) {
		const struct bkey *k = (const void *)(w->buf + off);
		if (!span_good(w, off, off + sizeof(*k)) || k->u64s < BKEY_U64s || off + bkey_bytes(k) > w->used ||
		    !span_good(w, off, off + bkey_bytes(k)))
			break;
		if ((w->prev && bpos_cmp(w->prev->p, k->p) >= 0) || bpos_cmp(k->p, w->max) > 0 ||
		    bpos_cmp(k->p, w->min) < 0)
			break;
		if (w->lost_open && (ret = lost_until(w, k)))
			return ret;
		if ((ret = w->keep(w->arg, k)))
			return ret;
		w->s->kept++;
		w->prev = k;
		off += bkey_bytes(k);
	}
	*stop = off;
	return 0;
}

static int salvage_walk(struct salvage_walk *w)
{
	u32 off = sizeof(struct bkfs_node_hdr);
	int ret;
	for (u32 i = 0; i < w->nr_chunks && off < w->used;) {
		if (!w->good[i]) {
			w->lost_open = true;
			i++;
			continue;
		}
		u32 from = off;
		if (i) {
			from = w->e[i].first_key;
			if (!from) { /* a key spans the chunk: it started in a damaged run */
				i++;
				continue;
			}
			if (from < (i << w->shift) || from >= MIN((i + 1) << w->shift, w->used))
				return -BKFS_E_CORRUPT; /* the table contradicts itself */
		}
		if ((ret = walk_from(w, from, &off)))
			return ret;
		if (off >= w->used)
			break;
		if (!w->e) { /* no table to resume from: the rest is lost */
			w->lost_open = true;
			break;
		}
		/* stopped before the end: the keys up to the next good chunk's
		 * first key are lost */
		w->lost_open = true;
		i = (off >> w->shift) + 1;
	}
	return w->lost_open ? lost_until(w, NULL) : 0;
}

/* The chunk table of a node image whose keys end at used, cut in chunks of
 * 1 << shift bytes, if it is sound there (its checksum holds and its trailer
 * agrees on used): its entries, *n of them. */
static const struct bkfs_node_chunk *table_at(const u8 *buf, size_t node_bytes, u32 used, unsigned shift, u32 *n)
{
	if (shift < NODE_CHUNK_SHIFT_MIN || shift > NODE_CHUNK_SHIFT_MAX || used < sizeof(struct bkfs_node_hdr) ||
	    (u64)used + node_chunk_table_bytes(used, shift) > node_bytes)
		return NULL;
	*n = (used + (1u << shift) - 1) >> shift;
	const u8 *table = buf + used;
	const struct bkfs_node_chunk_trailer *t = (const void *)(table + *n * sizeof(struct bkfs_node_chunk));
	u32 crc = bkfs_crc32c(0, table, *n * sizeof(struct bkfs_node_chunk));
	if (bkfs_crc32c(crc, (const u8 *)t + 4, sizeof(*t) - 4) != t->csum || t->used_bytes != used)
		return NULL;
	return (const void *)table;
}

/* the chunk table where the header says it is, if it is sound there */
static const struct bkfs_node_chunk *sound_table(const u8 *buf, size_t node_bytes, u32 *n)
{
	const struct bkfs_node_hdr *h = (const void *)buf;
	return table_at(buf, node_bytes, h->used_bytes, h->chunk_shift, n);
}

/* The table of node seq looked for wherever it could start (keys are whole
 * u64s, so used is a multiple of 8), for a header too damaged to say, with
 * the chunk size writers use: about 8,000 places in a 64 KiB node, each a
 * checksum of a few hundred bytes. */
static const struct bkfs_node_chunk *find_table(const u8 *buf, size_t node_bytes, u64 seq, u32 *used,
						unsigned *shift, u32 *n)
{
	const unsigned sh = NODE_CHUNK_SHIFT;
	for (u32 u = sizeof(struct bkfs_node_hdr); (u64)u + node_chunk_table_bytes(u, sh) <= node_bytes; u += 8) {
		const struct bkfs_node_chunk *e = table_at(buf, node_bytes, u, sh, n);
		if (e && ((const struct bkfs_node_chunk_trailer *)(e + *n))->seq == seq) {
			*used = u;
			*shift = sh;
			return e;
		}
	}
	return NULL;
}

/* Whether the node's own checksum holds: every byte of [4, used_bytes) as
 * written (then its header is too) */
static bool keys_whole(const u8 *buf, size_t node_bytes, u64 magic)
{
	const struct bkfs_node_hdr *h = (const void *)buf;
	return h->magic == magic && h->used_bytes >= sizeof(*h) && h->used_bytes <= node_bytes &&
	       bkfs_crc32c(0, buf + 4, h->used_bytes - 4) == h->csum;
}

static bool chunk_good(const u8 *buf, const struct bkfs_node_chunk *e, unsigned shift, u32 used, u32 i)
{
	u32 a = MAX(4u, i << shift), b = MIN((i + 1) << shift, used);
	return bkfs_crc32c(0, buf + a, b - a) == e[i].csum;
}

/* 0 if header h is that of leaf seq of btree_id, else -BKFS_E_CORRUPT */
static int hdr_names_leaf(const struct bkfs_node_hdr *h, unsigned btree_id, u64 seq, struct printbuf *err)
{
	if (h->btree_id == btree_id && !h->level && h->seq == seq)
		return 0;
	if (err)
		pb_printf(err, "node: not the leaf the pointer names");
	return -BKFS_E_CORRUPT;
}

/* The table damaged, the keys whole (keys_whole): keep them all. */
static int salvage_whole(const u8 *buf, unsigned btree_id, u64 seq, struct salvage_walk *w, struct printbuf *err)
{
	const struct bkfs_node_hdr *h = (const void *)buf;
	struct node_salvage *s = w->s;
	s->table_bad = true;
	s->journal_seq = h->journal_seq;
	int ret = hdr_names_leaf(h, btree_id, seq, err);
	if (ret)
		return ret;
	bool good = true;
	w->used = h->used_bytes;
	w->nr_chunks = 1;
	w->shift = 31; /* one chunk, good: the node's checksum holds */
	w->good = &good;
	ret = salvage_walk(w);
	if (!ret)
		s->lost = h->nr_keys > s->kept ? h->nr_keys - s->kept : 0;
	return ret;
}

int node_salvage(const void *buf, size_t node_bytes, u64 magic, unsigned btree_id, u64 seq, struct bpos min,
		 struct bpos max, int (*keep)(void *arg, const struct bkey *k), void *arg, struct node_salvage *s,
		 struct printbuf *err)
{
	const struct bkfs_node_hdr *h = buf;
	memset(s, 0, sizeof(*s));
	if (node_bytes < sizeof(*h))
		INVALID("node: smaller than its header: nothing to salvage");
	struct salvage_walk w = { .buf = buf, .min = min, .max = max, .s = s, .keep = keep, .arg = arg };
	u32 n, used = h->used_bytes;
	unsigned shift = h->chunk_shift;
	const struct bkfs_node_chunk *e = h->magic == magic ? sound_table(buf, node_bytes, &n) : NULL;
	if (!e && keys_whole(buf, node_bytes, magic)) {
		int ret = salvage_whole(buf, btree_id, seq, &w, err);
		if (ret)
			node_salvage_exit(s);
		return ret;
	}
	if (!e && !(e = find_table(buf, node_bytes, seq, &used, &shift, &n))) {
		if (h->magic == magic && !h->chunk_shift)
			INVALID("node: no chunk table (written before format version 3)");
		INVALID("node: chunk table damaged or not found");
	}
	const struct bkfs_node_chunk_trailer *t = (const void *)(e + n);
	if (t->seq != seq)
		INVALID("node: chunk table names seq %llu, the pointer %llu", (unsigned long long)t->seq,
			(unsigned long long)seq);
	bool *good = calloc(n, sizeof(*good));
	if (!good)
		return -BKFS_E_NOMEM;
	for (u32 i = 0; i < n; i++) {
		good[i] = chunk_good(buf, e, shift, used, i);
		s->bad_chunks += !good[i];
	}
	s->nr_chunks = n;
	s->journal_seq = t->journal_seq;
	s->header_bad = !good[0];
	int ret = 0;
	if (!s->header_bad)
		ret = hdr_names_leaf(h, btree_id, seq, err);
	w.used = used;
	w.nr_chunks = n;
	w.shift = shift;
	w.e = e;
	w.good = good;
	if (!ret)
		ret = salvage_walk(&w);
	free(good);
	if (ret) {
		if (ret == -BKFS_E_CORRUPT && err && !err->len)
			pb_printf(err, "node: chunk table inconsistent");
		node_salvage_exit(s);
		return ret;
	}
	s->lost = t->nr_keys > s->kept ? t->nr_keys - s->kept : 0;
	if (!s->lost)
		s->nr_lost_ranges = 0; /* damage outside any key (the header's own fields, say) */
	return 0;
}

u32 node_chunks_mend(void *dst, const void *src, size_t node_bytes)
{
	u32 n, m, mended = 0;
	const struct bkfs_node_chunk *ed = sound_table(dst, node_bytes, &n), *es = sound_table(src, node_bytes, &m);
	const struct bkfs_node_hdr *h = dst;
	if (!ed || !es || n != m || ((const struct bkfs_node_hdr *)src)->used_bytes != h->used_bytes ||
	    ((const struct bkfs_node_hdr *)src)->chunk_shift != h->chunk_shift ||
	    memcmp(ed, es, node_chunk_table_bytes(h->used_bytes, h->chunk_shift)))
		return 0;
	unsigned shift = h->chunk_shift;
	for (u32 i = 0; i < n; i++) {
		if (chunk_good(dst, ed, shift, h->used_bytes, i) || !chunk_good(src, es, shift, h->used_bytes, i))
			continue;
		u32 a = MAX(4u, i << shift), b = MIN((i + 1) << shift, h->used_bytes);
		memcpy((u8 *)dst + a, (const u8 *)src + a, b - a);
		mended++;
	}
	return mended;
}

void node_salvage_exit(struct node_salvage *s)
{
	free(s->lost_ranges);
	s->lost_ranges = NULL;
	s->nr_lost_ranges = 0;
}

void node_salvage_to_text(struct printbuf *out, const struct node_salvage *s)
{
	if (s->table_bad)
		pb_printf(out, "chunk table damaged, the node's checksum holds; kept %u keys, lost %u", s->kept, s->lost);
	else
		pb_printf(out, "%u of %u chunks damaged%s; kept %u keys, lost %u", s->bad_chunks, s->nr_chunks,
			  s->header_bad ? " (the header's too)" : "", s->kept, s->lost);
	for (u32 i = 0; i < s->nr_lost_ranges; i++) {
		pb_printf(out, i ? ", " : "; lost positions ");
		bpos_to_text(out, s->lost_ranges[i].min);
		pb_printf(out, "..");
		bpos_to_text(out, s->lost_ranges[i].max);
	}
}
