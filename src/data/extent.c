/* extent.c - extent overwrite, data write and read (reflink pointers are
 * read through reflink.c). */
#include "extent.h"
#include "ec.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <stdlib.h>
#include <string.h>

void bkey_cut_front(struct bkey *k, struct bpos where)
{
	struct bpos start = bkey_start_pos(k);
	if (bpos_cmp(where, start) <= 0)
		return;
	u64 cut = where.offset - start.offset;
	k->size -= cut;
	if (bkey_type_ops(k->type)->cut_front)
		bkey_type_ops(k->type)->cut_front(k, cut);
}

void bkey_cut_back(struct bkey *k, struct bpos where)
{
	if (bpos_cmp(where, k->p) >= 0)
		return;
	u64 cut = k->p.offset - where.offset;
	k->size -= cut;
	k->p = where;
	if (bkey_type_ops(k->type)->cut_back)
		bkey_type_ops(k->type)->cut_back(k);
}

static bool key_allocates(const struct bkey *k)
{
	return k->type == KEY_TYPE_extent || k->type == KEY_TYPE_inline_data ||
	       k->type == KEY_TYPE_reflink_p || k->type == KEY_TYPE_reservation;
}

/* The extents of one inode as transaction t sees them: the btree overlaid
 * with t's pending updates (the latest pending update at a position wins, a
 * deleted one hides the key). Several overwrites of one file in one
 * transaction - the chunks of a long write, a punch and a write - must each
 * cut what the previous ones left, not the btree's original keys. */
struct ext_pending {
	struct bpos p;
	size_t idx;
};

static int ext_pending_cmp(const void *a, const void *b)
{
	const struct ext_pending *x = a, *y = b;
	int c = bpos_cmp(x->p, y->p);
	return c ? c : x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* pending extents updates of s.inode after s, sorted, latest per position */
static int ext_pending_collect(struct trans *t, struct bpos s, struct ext_pending **out, size_t *nr)
{
	struct ext_pending *v = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < t->nr; i++) {
		const struct bkey *k = t->u[i].k;
		if (t->u[i].btree_id != BTREE_ID_extents || k->p.inode != s.inode || bpos_cmp(k->p, s) <= 0)
			continue;
		if (darray_room(v, cap, n + 1, 16)) {
			free(v);
			return -BKFS_E_NOMEM;
		}
		v[n++] = (struct ext_pending){ .p = k->p, .idx = i };
	}
	if (n > 1) {
		qsort(v, n, sizeof(*v), ext_pending_cmp);
		size_t w = 0;
		for (size_t i = 0; i < n; i++) {
			if (w && bpos_eq(v[w - 1].p, v[i].p))
				w--;
			v[w++] = v[i];
		}
		n = w;
	}
	*out = v;
	*nr = n;
	return 0;
}

/* A walk over that merged view, in key order, from the first key ending
 * after s. */
struct ext_view {
	struct btree_iter it;
	struct trans *t;
	struct ext_pending *pend;
	size_t nr_pend, pi;
	u64 inum;
};

static int ext_view_init(struct ext_view *v, struct trans *t, struct bpos s)
{
	memset(v, 0, sizeof(*v));
	v->t = t;
	v->inum = s.inode;
	btree_iter_init(&v->it, t->fs, BTREE_ID_extents, 0, bpos_successor(s));
	return ext_pending_collect(t, s, &v->pend, &v->nr_pend);
}

static void ext_view_exit(struct ext_view *v)
{
	free(v->pend);
	v->pend = NULL;
}

/* The next live key into cur; *found = false at the end. */
static int ext_view_next(struct ext_view *v, struct bkey_buf *cur, bool *found)
{
	struct bkey *bk;
	int ret;
	*found = false;
	while (1) {
		if ((ret = btree_iter_peek(&v->it, &bk)))
			return ret;
		if (bk && bk->p.inode != v->inum)
			bk = NULL;
		const struct bkey *pk = v->pi < v->nr_pend ? v->t->u[v->pend[v->pi].idx].k : NULL;
		if (!bk && !pk)
			return 0;
		int c = !bk ? 1 : !pk ? -1 : bpos_cmp(bk->p, pk->p);
		if (c < 0) {
			memcpy(cur, bk, bkey_bytes(bk));
			btree_iter_advance(&v->it);
		} else {
			memcpy(cur, pk, bkey_bytes(pk));
			v->pi++;
			if (!c)
				btree_iter_advance(&v->it); /* hidden by the pending update */
		}
		if (!bkey_deleted(&cur->k)) {
			*found = true;
			return 0;
		}
	}
}

int extent_for_each(struct trans *t, u64 inum, u64 start, u64 end,
		    int (*fn)(void *arg, const struct bkey *k), void *arg)
{
	struct ext_view v;
	struct bkey_buf *cur = malloc(sizeof(*cur));
	bool found;
	int ret = cur ? ext_view_init(&v, t, POS(inum, start)) : -BKFS_E_NOMEM;
	if (!cur)
		return ret;
	while (!ret && !(ret = ext_view_next(&v, cur, &found)) && found &&
	       bkey_start_pos(&cur->k).offset < end)
		ret = fn(arg, &cur->k);
	ext_view_exit(&v);
	free(cur);
	return ret > 0 ? 0 : ret;
}

/* Overwrite [s, e) of k->p.inode with k (k may be a deleted key: punch). */
static int extent_overwrite(struct trans *t, const struct bkey *k, struct bpos s, struct bpos e,
			    s64 *delta)
{
	struct ext_view v;
	struct bpos *dels = NULL;
	size_t nr_dels = 0, dels_cap = 0;
	bool found;
	int ret;

	if ((ret = ext_view_init(&v, t, s)))
		return ret;
	while (1) {
		struct bkey_buf cur, front, back;
		if ((ret = ext_view_next(&v, &cur, &found)) || !found)
			break;
		const struct bkey *ek = &cur.k;
		struct bpos es = bkey_start_pos(ek);
		if (bpos_cmp(es, e) >= 0)
			break; /* keys are ordered and disjoint: nothing further overlaps */
		s64 overlap = (s64)MIN(ek->p.offset, e.offset) - (s64)MAX(es.offset, s.offset);
		if (key_allocates(ek))
			*delta -= overlap;
		if (bpos_cmp(es, s) < 0) {
			memcpy(&front, ek, bkey_bytes(ek));
			bkey_cut_back(&front.k, s);
			if ((ret = trans_update(t, BTREE_ID_extents, &front.k)))
				break;
		}
		if (bpos_cmp(ek->p, e) > 0) {
			memcpy(&back, ek, bkey_bytes(ek));
			bkey_cut_front(&back.k, e);
			if ((ret = trans_update(t, BTREE_ID_extents, &back.k)))
				break;
		} else if (bpos_eq(ek->p, e) && !bkey_deleted(k)) {
			/* the new key overwrites it in place */
		} else {
			if (darray_room(dels, dels_cap, nr_dels + 1, 16)) {
				ret = -BKFS_E_NOMEM;
				break;
			}
			dels[nr_dels++] = ek->p;
		}
	}
	ext_view_exit(&v);
	if (!ret && !bkey_deleted(k)) {
		ret = trans_update(t, BTREE_ID_extents, k);
		if (!ret && key_allocates(k))
			*delta += k->size; /* reservations count: fallocated space shows in st_blocks */
	}
	/* deletes last, so a bucket shared with a new piece never looks empty */
	for (size_t i = 0; i < nr_dels && !ret; i++)
		ret = trans_delete(t, BTREE_ID_extents, dels[i]);
	free(dels);
	return ret;
}

int extent_update(struct trans *t, const struct bkey *k, s64 *sectors_delta)
{
	s64 d = 0;
	int ret = extent_overwrite(t, k, bkey_start_pos(k), k->p, &d);
	if (sectors_delta)
		*sectors_delta += d;
	return ret;
}

int extent_punch(struct trans *t, u64 inum, u64 start, u64 end, s64 *sectors_delta)
{
	struct bkey k;
	s64 d = 0;
	if (start >= end)
		return 0;
	bkey_init(&k, KEY_TYPE_deleted, POS(inum, end), 0);
	k.size = end - start;
	int ret = extent_overwrite(t, &k, POS(inum, start), POS(inum, end), &d);
	if (sectors_delta)
		*sectors_delta += d;
	return ret;
}

int extent_write_replicas(struct bkfs_fs *fs, const struct bkfs_ptr *ptrs, unsigned nr,
			  const void *buf, size_t bytes)
{
	int ok = 0, ret = 0;
	for (unsigned i = 0; i < nr; i++) {
		int r = bd_write(fs->devs[ptrs[i].dev].bd, buf, ptrs[i].offset << SECTOR_SHIFT, bytes);
		if (r)
			ret = r;
		else
			ok++;
	}
	return ok ? 0 : ret;
}

int extent_write(struct trans *t, u64 inum, u64 off, const void *buf, size_t len, s64 *sectors_delta)
{
	struct bkfs_fs *fs = t->fs;
	const u8 *p = buf;
	int ret;
	if (off % fs->block_bytes)
		return -BKFS_E_INVAL;
	if (!len)
		return 0;
	if (off == 0 && len <= 2048) {
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_inline_data, POS(inum, DIV_ROUND_UP(len, SECTOR_SIZE)),
			  sizeof(struct bkfs_inline_data) + len);
		kb.k.size = DIV_ROUND_UP(len, SECTOR_SIZE);
		struct bkfs_inline_data *d = bkey_val(&kb.k);
		d->bytes = len;
		memcpy(d->data, buf, len);
		return extent_update(t, &kb.k, sectors_delta);
	}
	u8 *bounce = NULL;
	while (len) {
		u32 want = MIN((u64)EXTENT_MAX_SECTORS, DIV_ROUND_UP(len, fs->block_bytes) * (fs->block_bytes >> SECTOR_SHIFT));
		struct bkfs_ptr ptrs[BKFS_MAX_REPLICAS];
		u32 got;
		ret = alloc_data_space(fs, fs->sb.data_replicas, want, ptrs, &got);
		if (ret < 0)
			goto out;
		unsigned nr = ret;
		size_t bytes = (size_t)got << SECTOR_SHIFT, take = MIN(bytes, len);
		const u8 *src = p;
		if (take < bytes) {
			free(bounce);
			bounce = xcalloc(1, bytes);
			if (!bounce) {
				ret = -BKFS_E_NOMEM;
				goto out;
			}
			memcpy(bounce, p, take);
			src = bounce;
		}
		if ((ret = extent_write_replicas(fs, ptrs, nr, src, bytes)))
			goto out;
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_extent, POS(inum, (off >> SECTOR_SHIFT) + got), extent_val_bytes(nr));
		kb.k.size = got;
		struct bkfs_extent *e = bkey_val(&kb.k);
		e->csum = bkfs_crc32c(0, src, bytes);
		e->csum_type = CSUM_CRC32C;
		e->csum_sectors = got;
		e->nr_ptrs = nr;
		memcpy(e->ptrs, ptrs, nr * sizeof(*ptrs));
		if ((ret = extent_update(t, &kb.k, sectors_delta)))
			goto out;
		p += take;
		len -= take;
		off += bytes;
	}
	ret = 0;
out:
	free(bounce);
	return ret;
}

int extent_read_region(struct bkfs_fs *fs, const struct bkey *k, u8 *tmp)
{
	const struct bkfs_extent *e = bkey_val(k);
	size_t region = (size_t)e->csum_sectors << SECTOR_SHIFT;
	int ret = -BKFS_E_IO;
	/* dirty pointers first, then cached ones that are not stale */
	for (int pass = 0; pass < 2 && ret; pass++)
		for (unsigned i = 0; i < e->nr_ptrs && ret; i++) {
			const struct bkfs_ptr *p = &e->ptrs[i];
			if (!!(p->flags & PTR_CACHED) != pass || p->dev >= fs->nr_devs || !fs->devs[p->dev].bd)
				continue;
			if (pass && fs->alloc) {
				u64 b = ptr_bucket(fs, p);
				if (b >= fs->sb.members[p->dev].nbuckets || bucket_get(fs, p->dev, b)->gen != p->gen)
					continue;
			}
			if (bd_read(fs->devs[p->dev].bd, tmp, p->offset << SECTOR_SHIFT, region))
				continue;
			if (e->csum_type == CSUM_CRC32C && bkfs_crc32c(0, tmp, region) != e->csum) {
				ret = -BKFS_E_CSUM;
				continue;
			}
			ret = 0;
		}
	/* no copy reads back: rebuild an erasure-coded one from its stripe */
	for (unsigned i = 0; i < e->nr_ptrs && ret && ret != -BKFS_E_NOMEM; i++) {
		const struct bkfs_ptr *p = &e->ptrs[i];
		if ((p->flags & PTR_CACHED) || !(p->flags & PTR_HAS_STRIPE))
			continue;
		int r = ec_reconstruct(fs, p, tmp, region);
		if (r) {
			ret = r == -BKFS_E_NOMEM ? r : ret;
			continue;
		}
		ret = e->csum_type == CSUM_CRC32C && bkfs_crc32c(0, tmp, region) != e->csum ? -BKFS_E_CSUM : 0;
	}
	return ret;
}

int extent_read_key(struct bkfs_fs *fs, const struct bkey *k, void *buf)
{
	if (k->type == KEY_TYPE_inline_data) {
		const struct bkfs_inline_data *d = bkey_val(k);
		memset(buf, 0, (size_t)k->size << SECTOR_SHIFT);
		memcpy(buf, d->data, MIN((u64)d->bytes, (u64)k->size << SECTOR_SHIFT));
		return 0;
	}
	if (k->type == KEY_TYPE_reflink_p)
		return reflink_read_key(fs, k, buf);
	if (k->type != KEY_TYPE_extent)
		return -BKFS_E_IO;
	const struct bkfs_extent *e = bkey_val(k);
	if (e->offset + k->size > e->csum_sectors)
		return -BKFS_E_CORRUPT;
	u8 *tmp = malloc((size_t)e->csum_sectors << SECTOR_SHIFT);
	if (!tmp)
		return -BKFS_E_NOMEM;
	int ret = extent_read_region(fs, k, tmp);
	if (!ret)
		memcpy(buf, tmp + ((size_t)e->offset << SECTOR_SHIFT), (size_t)k->size << SECTOR_SHIFT);
	free(tmp);
	return ret;
}

/* Move one extent: copy its checksummed region to newly allocated space and
 * build in nk the key with the new copies as dirty pointers and the old dirty
 * ones (plus still-valid cached ones, space permitting) as cached pointers. */
static int extent_move_one(struct bkfs_fs *fs, const struct bkey *k, struct bkey_buf *nk)
{
	const struct bkfs_extent *e = bkey_val(k);
	u32 want = e->csum_sectors;
	struct bkfs_ptr ptrs[BKFS_MAX_REPLICAS];
	u32 got = 0;
	int ret, n = 0;
	if (!want || want > bucket_sectors(fs))
		return -BKFS_E_INVAL;
	u8 *buf = malloc((size_t)want << SECTOR_SHIFT);
	if (!buf)
		return -BKFS_E_NOMEM;
	if ((ret = extent_read_region(fs, k, buf)))
		goto out;
	for (int tries = 0; tries < 2; tries++) {
		n = alloc_data_space(fs, fs->sb.data_replicas, want, ptrs, &got);
		if (n < 0 || got == want)
			break;
		/* the rest of the open bucket is too short: start a fresh one */
		alloc_close_write_points(fs);
	}
	if (n < 0) {
		ret = n;
		goto out;
	}
	if (got != want) {
		ret = -BKFS_E_NOSPC;
		goto out;
	}
	if ((ret = extent_write_replicas(fs, ptrs, n, buf, (size_t)want << SECTOR_SHIFT)))
		goto out;
	/* new dirty copies, then the old dirty copies as cached, then the old
	 * cached copies that are still valid */
	unsigned nr = 0;
	struct bkfs_ptr all[BKFS_MAX_REPLICAS];
	for (int i = 0; i < n && nr < BKFS_MAX_REPLICAS; i++)
		all[nr++] = ptrs[i];
	for (int pass = 0; pass < 2; pass++)
		for (unsigned i = 0; i < e->nr_ptrs && nr < BKFS_MAX_REPLICAS; i++) {
			struct bkfs_ptr p = e->ptrs[i];
			if (!!(p.flags & PTR_CACHED) != pass || p.dev >= fs->nr_devs)
				continue;
			u64 b = ptr_bucket(fs, &p);
			if (b >= fs->sb.members[p.dev].nbuckets || bucket_get(fs, p.dev, b)->gen != p.gen)
				continue;
			p.flags = PTR_CACHED; /* an erasure-coded copy stays readable, but not as part of a stripe */
			p.stripe_idx = 0;
			p.stripe_block = 0;
			all[nr++] = p;
		}
	memcpy(nk, k, sizeof(struct bkey));
	struct bkfs_extent *ne = bkey_val(&nk->k);
	memcpy(ne, e, sizeof(*e));
	ne->nr_ptrs = nr;
	memcpy(ne->ptrs, all, nr * sizeof(*all));
	nk->k.u64s = DIV_ROUND_UP(sizeof(struct bkey) + extent_val_bytes(nr), 8);
	ret = 0;
out:
	free(buf);
	return ret;
}

int extent_move_to_cached(struct bkfs_fs *fs, u64 inum, u64 start, u64 end, u64 *moved)
{
	struct btree_iter it;
	struct bkey *k;
	struct trans t;
	int ret;
	trans_init(&t, fs);
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, start + 1));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum && bkey_start_pos(k).offset < end) {
		if (k->type != KEY_TYPE_extent) {
			btree_iter_advance(&it);
			continue;
		}
		struct bkey_buf old, nk;
		memcpy(&old, k, bkey_bytes(k));
		if ((ret = extent_move_one(fs, &old.k, &nk)))
			break;
		if ((ret = trans_update(&t, BTREE_ID_extents, &nk.k)) || (ret = trans_commit(&t, 0)))
			break;
		if (moved)
			*moved += old.k.size;
		btree_iter_init(&it, fs, BTREE_ID_extents, 0, bpos_successor(old.k.p));
	}
	trans_exit(&t);
	return ret;
}

int extent_read(struct bkfs_fs *fs, u64 inum, u64 off, void *buf, size_t len)
{
	struct btree_iter it;
	struct bkey *k;
	u8 *out = buf;
	u64 start = off >> SECTOR_SHIFT, end = DIV_ROUND_UP(off + len, SECTOR_SIZE);
	int ret;
	memset(buf, 0, len);
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, start + 1));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum && bkey_start_pos(k).offset < end) {
		if (k->type == KEY_TYPE_extent || k->type == KEY_TYPE_inline_data || k->type == KEY_TYPE_reflink_p) {
			struct bkey_buf kb;
			memcpy(&kb, k, bkey_bytes(k));
			size_t kbytes = (size_t)kb.k.size << SECTOR_SHIFT;
			u8 *data = malloc(kbytes ? kbytes : 1);
			if (!data)
				return -BKFS_E_NOMEM;
			ret = extent_read_key(fs, &kb.k, data);
			if (!ret) {
				u64 ks = bkey_start_pos(&kb.k).offset << SECTOR_SHIFT, ke = kb.k.p.offset << SECTOR_SHIFT;
				u64 from = MAX(ks, off), to = MIN(ke, off + len);
				memcpy(out + (from - off), data + (from - ks), to - from);
			}
			free(data);
			if (ret)
				return ret;
			/* the read may have loaded nodes: continue after this key */
			btree_iter_init(&it, fs, BTREE_ID_extents, 0, bpos_successor(kb.k.p));
			continue;
		} else if (k->type == KEY_TYPE_error) {
			return -BKFS_E_IO;
		}
		btree_iter_advance(&it);
	}
	return ret;
}
