/* reflink.c - indirect extents: sharing a file range (reflink_remap) and
 * reading through reflink pointers. The refcounts are the reflink_p
 * trigger's business (src/alloc/triggers.c); see reflink.h. */
#include "extent.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <stdlib.h>
#include <string.h>

/* The highest end of a key with inode 0 in the reflink btree (0 if none):
 * a binary search with iterator peeks, O(depth * 64) node visits, all
 * cached after the first. */
static int reflink_btree_end(struct bkfs_fs *fs, u64 *end)
{
	u64 lo = 0, hi = 1ull << 63; /* a key ends at lo (or lo = 0); none at or past hi */
	while (lo + 1 < hi) {
		u64 mid = lo + (hi - lo) / 2;
		struct btree_iter it;
		struct bkey *k;
		btree_iter_init(&it, fs, BTREE_ID_reflink, 0, POS(0, mid));
		int ret = btree_iter_peek(&it, &k);
		if (ret)
			return ret;
		if (k && !k->p.inode)
			lo = k->p.offset;
		else
			hi = mid;
	}
	*end = lo;
	return 0;
}

int reflink_next_idx(struct trans *t, u64 *idx)
{
	u64 end;
	int ret = reflink_btree_end(t->fs, &end);
	if (ret)
		return ret;
	for (size_t i = 0; i < t->nr; i++)
		if (t->u[i].btree_id == BTREE_ID_reflink && !t->u[i].k->p.inode)
			end = MAX(end, t->u[i].k->p.offset);
	*idx = end;
	return 0;
}

int reflink_read_key(struct bkfs_fs *fs, const struct bkey *k, void *buf)
{
	const struct bkfs_reflink_p *r = bkey_val(k);
	u64 start = r->idx, end = r->idx + k->size, cur = start;
	u8 *out = buf, *tmp = NULL;
	size_t tmp_cap = 0;
	int ret = 0;
	if (k->type != KEY_TYPE_reflink_p || bkey_val_bytes(k) < sizeof(*r) || end < start)
		return -BKFS_E_CORRUPT;
	while (cur < end && !ret) {
		struct btree_iter it;
		struct bkey *v;
		struct bkey_buf ek;
		btree_iter_init(&it, fs, BTREE_ID_reflink, 0, POS(0, cur + 1));
		if ((ret = btree_iter_peek(&it, &v)))
			break;
		/* a hole in the indirect extents, or data marked lost */
		if (!v || v->p.inode || bkey_start_pos(v).offset > cur || v->type != KEY_TYPE_reflink_v ||
		    bkey_val_bytes(v) < sizeof(struct bkfs_reflink_v)) {
			ret = -BKFS_E_IO;
			break;
		}
		/* the indirect extent as a plain extent key, for extent_read_key */
		size_t eb = bkey_val_bytes(v) - offsetof(struct bkfs_reflink_v, e);
		bkey_init(&ek.k, KEY_TYPE_extent, v->p, eb);
		ek.k.size = v->size;
		memcpy(bkey_val(&ek.k), &((const struct bkfs_reflink_v *)bkey_val(v))->e, eb);
		u64 vs = bkey_start_pos(&ek.k).offset, to = MIN(end, ek.k.p.offset);
		size_t bytes = (size_t)ek.k.size << SECTOR_SHIFT;
		if (bytes > tmp_cap) {
			free(tmp);
			tmp_cap = 0;
			if (!(tmp = malloc(bytes))) {
				ret = -BKFS_E_NOMEM;
				break;
			}
			tmp_cap = bytes;
		}
		if (!(ret = extent_read_key(fs, &ek.k, tmp)))
			memcpy(out + ((cur - start) << SECTOR_SHIFT), tmp + ((cur - vs) << SECTOR_SHIFT),
			       (to - cur) << SECTOR_SHIFT);
		cur = to;
	}
	free(tmp);
	return ret;
}

/* ---- sharing a range ---- */

struct src_keys {
	struct bkey_buf *k;
	size_t nr;
};

static int collect_key(void *arg, const struct bkey *k)
{
	struct src_keys *s = arg;
	memcpy(&s->k[s->nr++], k, bkey_bytes(k));
	return s->nr == REFLINK_CHUNK_KEYS;
}

/* k moved from src (sectors from src_start) to dst (from dst_start) */
static void key_move(struct bkey *k, u64 src_start, u64 dst_inum, u64 dst_start)
{
	k->p.inode = dst_inum;
	k->p.offset = dst_start + (k->p.offset - src_start);
}

/* Queue the indirect extent for the extent piece e (refcount 0: the trigger
 * of the reflink pointers queued after it counts them), and turn e into the
 * reflink pointer to it. */
static int make_indirect(struct trans *t, struct bkey_buf *e, u64 idx, s64 *src_delta)
{
	struct bkey_buf v;
	const struct bkfs_extent *x = bkey_val(&e->k);
	size_t eb = extent_val_bytes(x->nr_ptrs);
	if (eb > bkey_val_bytes(&e->k))
		return -BKFS_E_CORRUPT;
	bkey_init(&v.k, KEY_TYPE_reflink_v, POS(0, idx + e->k.size), offsetof(struct bkfs_reflink_v, e) + eb);
	v.k.size = e->k.size;
	struct bkfs_reflink_v *rv = bkey_val(&v.k);
	rv->refcount = 0;
	memcpy(&rv->e, x, eb);
	int ret = trans_update(t, BTREE_ID_reflink, &v.k);
	if (ret)
		return ret;
	struct bpos p = e->k.p;
	u32 size = e->k.size;
	bkey_init(&e->k, KEY_TYPE_reflink_p, p, sizeof(struct bkfs_reflink_p));
	e->k.size = size;
	struct bkfs_reflink_p *r = bkey_val(&e->k);
	r->idx = idx;
	r->front_pad = r->back_pad = 0;
	return extent_update(t, &e->k, src_delta);
}

int reflink_remap(struct trans *t, u64 src_inum, u64 src_start, u64 src_end, u64 dst_inum, u64 dst_start,
		  u64 *done, s64 *src_delta, s64 *dst_delta)
{
	struct src_keys s = { 0 };
	u64 idx, end = src_end;
	int ret;

	*done = src_start;
	if (src_start >= src_end)
		return 0;
	if (dst_start + (src_end - src_start) < dst_start ||
	    (src_inum == dst_inum && src_start < dst_start + (src_end - src_start) &&
	     dst_start < src_end))
		return -BKFS_E_INVAL;
	if (!(s.k = malloc(REFLINK_CHUNK_KEYS * sizeof(*s.k))))
		return -BKFS_E_NOMEM;
	if ((ret = extent_for_each(t, src_inum, src_start, src_end, collect_key, &s)) ||
	    (ret = reflink_next_idx(t, &idx)))
		goto out;
	if (s.nr == REFLINK_CHUNK_KEYS)
		end = MIN(end, s.k[s.nr - 1].k.p.offset);

	/* the source: plain extents become indirect; each key, cut to the
	 * chunk, becomes what the destination gets */
	for (size_t i = 0; i < s.nr && !ret; i++) {
		struct bkey_buf *k = &s.k[i];
		bkey_cut_front(&k->k, POS(src_inum, src_start));
		bkey_cut_back(&k->k, POS(src_inum, end));
		switch (k->k.type) {
		case KEY_TYPE_extent:
			if (idx + k->k.size < idx || idx + k->k.size > (1ull << 62)) {
				ret = -BKFS_E_NOSPC;
				break;
			}
			ret = make_indirect(t, k, idx, src_delta);
			idx += k->k.size;
			break;
		case KEY_TYPE_reflink_p: /* shared as it is */
		case KEY_TYPE_error:     /* copied: reads of it fail in both files */
		case KEY_TYPE_inline_data: /* copied: the data is in the key */
			break;
		default: /* reservations: a hole */
			k->k.type = KEY_TYPE_deleted;
			break;
		}
		key_move(&k->k, src_start, dst_inum, dst_start);
	}
	/* the destination: the range replaced by the source's keys */
	if (!ret)
		ret = extent_punch(t, dst_inum, dst_start, dst_start + (end - src_start), dst_delta);
	for (size_t i = 0; i < s.nr && !ret; i++)
		if (s.k[i].k.type != KEY_TYPE_deleted)
			ret = extent_update(t, &s.k[i].k, dst_delta);
	if (!ret)
		*done = end;
out:
	free(s.k);
	return ret;
}
