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
 * used_bytes (it must agree with the header's, or the table would not have
 * been found), nr_keys, seq and journal_seq; the btree id, level and key
 * range come from the pointer the caller followed. Nothing is trusted when
 * the table or its trailer is damaged: the node is then lost as a whole. */
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
		/* stopped before the end: the keys up to the next good chunk's
		 * first key are lost */
		w->lost_open = true;
		i = (off >> w->shift) + 1;
	}
	return w->lost_open ? lost_until(w, NULL) : 0;
}

/* the chunk table of a node image, if it is sound: its entries, n */
static const struct bkfs_node_chunk *sound_table(const u8 *buf, size_t node_bytes, u32 *n)
{
	const struct bkfs_node_hdr *h = (const void *)buf;
	if (h->chunk_shift < NODE_CHUNK_SHIFT_MIN || h->chunk_shift > NODE_CHUNK_SHIFT_MAX ||
	    h->used_bytes < sizeof(*h) ||
	    (u64)h->used_bytes + node_chunk_table_bytes(h->used_bytes, h->chunk_shift) > node_bytes)
		return NULL;
	*n = (h->used_bytes + (1u << h->chunk_shift) - 1) >> h->chunk_shift;
	const u8 *table = buf + h->used_bytes;
	const struct bkfs_node_chunk_trailer *t = (const void *)(table + *n * sizeof(struct bkfs_node_chunk));
	u32 crc = bkfs_crc32c(0, table, *n * sizeof(struct bkfs_node_chunk));
	if (bkfs_crc32c(crc, (const u8 *)t + 4, sizeof(*t) - 4) != t->csum || t->used_bytes != h->used_bytes)
		return NULL;
	return (const void *)table;
}

static bool chunk_good(const u8 *buf, const struct bkfs_node_chunk *e, unsigned shift, u32 used, u32 i)
{
	u32 a = MAX(4u, i << shift), b = MIN((i + 1) << shift, used);
	return bkfs_crc32c(0, buf + a, b - a) == e[i].csum;
}

int node_salvage(const void *buf, size_t node_bytes, u64 magic, unsigned btree_id, u64 seq, struct bpos min,
		 struct bpos max, int (*keep)(void *arg, const struct bkey *k), void *arg, struct node_salvage *s,
		 struct printbuf *err)
{
	const struct bkfs_node_hdr *h = buf;
	memset(s, 0, sizeof(*s));
	if (node_bytes < sizeof(*h) || h->magic != magic)
		INVALID("node: bad magic: nothing to salvage");
	if (!h->chunk_shift)
		INVALID("node: no chunk table (written before format version 3)");
	u32 n;
	const struct bkfs_node_chunk *e = sound_table(buf, node_bytes, &n);
	if (!e)
		INVALID("node: chunk table damaged or not found (header damaged)");
	unsigned shift = h->chunk_shift;
	u32 used = h->used_bytes;
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
	if (!s->header_bad && (h->btree_id != btree_id || h->level || h->seq != seq)) {
		ret = -BKFS_E_CORRUPT;
		if (err)
			pb_printf(err, "node: not the leaf the pointer names");
	}
	struct salvage_walk w = {
		.buf = buf, .used = used, .nr_chunks = n, .shift = shift, .e = e, .good = good,
		.min = min, .max = max, .s = s, .keep = keep, .arg = arg,
	};
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
	pb_printf(out, "%u of %u chunks damaged%s; kept %u keys, lost %u", s->bad_chunks, s->nr_chunks,
		  s->header_bad ? " (the header's too)" : "", s->kept, s->lost);
	for (u32 i = 0; i < s->nr_lost_ranges; i++) {
		pb_printf(out, i ? ", " : "; lost positions ");
		bpos_to_text(out, s->lost_ranges[i].min);
		pb_printf(out, "..");
		bpos_to_text(out, s->lost_ranges[i].max);
	}
}
