/* ec.c - erasure coding: making stripes of full user-data buckets, and
 * rebuilding a block's range from the other blocks. See ec.h. */
#include "ec.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <isa-l/erasure_code.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* A stripe's key; -BKFS_E_IO when it is missing or not a usable stripe. */
static int stripe_get(struct bkfs_fs *fs, u32 idx, struct bkey_buf *kb)
{
	int ret = btree_lookup(fs, BTREE_ID_stripes, POS(0, idx), kb);
	if (ret)
		return ret == -BKFS_E_NOENT ? -BKFS_E_IO : ret;
	const struct bkfs_stripe *s = bkey_val(&kb->k);
	if (kb->k.type != KEY_TYPE_stripe || s->nr_blocks > STRIPE_MAX_BLOCKS || s->algorithm != STRIPE_ALG_RS_CAUCHY)
		return -BKFS_E_IO;
	return 0;
}

int ec_reconstruct(struct bkfs_fs *fs, const struct bkfs_ptr *p, void *buf, size_t bytes)
{
	struct bkey_buf kb;
	int ret = stripe_get(fs, p->stripe_idx, &kb);
	if (ret)
		return ret;
	const struct bkfs_stripe *s = bkey_val(&kb.k);
	unsigned m = s->nr_blocks, k = m - s->nr_redundant, j = p->stripe_block;
	if (j >= k || bytes > INT_MAX)
		return -BKFS_E_IO;
	const struct bkfs_ptr *tp = &s->ptrs[j];
	u64 block_bytes = (u64)s->sectors << SECTOR_SHIFT;
	if (tp->dev != p->dev || p->offset < tp->offset ||
	    ((p->offset - tp->offset) << SECTOR_SHIFT) + bytes > block_bytes)
		return -BKFS_E_IO;
	u64 rel = (p->offset - tp->offset) << SECTOR_SHIFT;

	/* the rows of the encoding matrix of k readable blocks other than j */
	u8 enc[STRIPE_MAX_BLOCKS * STRIPE_MAX_BLOCKS], sub[STRIPE_MAX_BLOCKS * STRIPE_MAX_BLOCKS];
	u8 inv[STRIPE_MAX_BLOCKS * STRIPE_MAX_BLOCKS], tables[32 * STRIPE_MAX_BLOCKS];
	u8 *src[STRIPE_MAX_BLOCKS];
	gf_gen_cauchy1_matrix(enc, (int)m, (int)k);
	u8 *mem = malloc(bytes * k);
	if (!mem)
		return -BKFS_E_NOMEM;
	unsigned rows = 0;
	for (unsigned i = 0; i < m && rows < k; i++) {
		const struct bkfs_ptr *bp = &s->ptrs[i];
		if (i == j || bp->dev >= fs->nr_devs || !fs->devs[bp->dev].bd)
			continue;
		u8 *dst = mem + (size_t)rows * bytes;
		if (bd_read(fs->devs[bp->dev].bd, dst, (bp->offset << SECTOR_SHIFT) + rel, bytes))
			continue;
		memcpy(&sub[rows * k], &enc[i * k], k);
		src[rows++] = dst;
	}
	ret = -BKFS_E_IO;
	if (rows == k && !gf_invert_matrix(sub, inv, (int)k)) {
		/* data block j is row j of the inverse applied to those blocks */
		u8 *out = buf;
		ec_init_tables((int)k, 1, &inv[j * k], tables);
		ec_encode_data((int)bytes, (int)k, 1, tables, src, &out);
		ret = 0;
	}
	free(mem);
	return ret;
}

/* ---- making stripes ---- */

/* a key with a pointer into a data block of a group */
struct keyref {
	u8 btree_id;
	struct bpos pos;
};

struct group {
	unsigned nr_data; /* the stripe's width: nr_data of ec_ctx, or fewer at the end */
	struct bkfs_ptr blk[STRIPE_MAX_BLOCKS]; /* data blocks, then parity */
	struct keyref *refs;
	size_t nr_refs, cap_refs;
};

/* dev << 48 | bucket of a data block -> its group and block */
struct blockref {
	u64 devb;
	u32 group;
	u8 block;
};

struct ec_ctx {
	struct bkfs_fs *fs;
	unsigned nr_data, nr_parity;
	u64 *cand[BKFS_MAX_DEVS]; /* candidate data buckets per device */
	size_t nr_cand[BKFS_MAX_DEVS], pos_cand[BKFS_MAX_DEVS];
	struct group *g;
	size_t nr_g;
	struct blockref *br;
	size_t nr_br;
	u32 next_idx;
	struct ec_stats *st;
};

#define EC_BATCH 64              /* stripes per scan of the extents and reflink btrees */
#define EC_MAX_KEYS_PER_STRIPE 4096 /* one transaction: keep its journal entry small */

static bool dev_usable(struct bkfs_fs *fs, unsigned d)
{
	return fs->devs[d].bd && !fs->sb.members[d].state;
}

static int collect_candidates(struct ec_ctx *x)
{
	struct bkfs_fs *fs = x->fs;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!dev_usable(fs, d))
			continue;
		u64 nb = fs->sb.members[d].nbuckets;
		for (u64 b = fs->sb.members[d].first_bucket; b < nb; b++) {
			const struct bkfs_alloc *a = bucket_get(fs, d, b);
			if (a->data_type != DATA_user || !a->dirty_sectors || a->cached_sectors || a->stripe_sectors ||
			    a->stripe || (ALLOC(fs)->bflags[d][b] & BUCKET_OPEN))
				continue;
			if (x->nr_cand[d] % 256 == 0) {
				u64 *n = realloc(x->cand[d], (x->nr_cand[d] + 256) * sizeof(*n));
				if (!n)
					return -BKFS_E_NOMEM;
				x->cand[d] = n;
			}
			x->cand[d][x->nr_cand[d]++] = b;
		}
	}
	return 0;
}

/* the device (not in used) with the most of what count says, or -1 */
static int pick_dev(struct ec_ctx *x, const bool *used, u64 (*count)(struct ec_ctx *, unsigned))
{
	int best = -1;
	u64 best_n = 0;
	for (unsigned d = 0; d < x->fs->nr_devs; d++) {
		u64 n = used[d] || !dev_usable(x->fs, d) ? 0 : count(x, d);
		if (n > best_n) {
			best = d;
			best_n = n;
		}
	}
	return best;
}

static u64 cand_left(struct ec_ctx *x, unsigned d)
{
	return x->nr_cand[d] - x->pos_cand[d];
}

static u64 free_left(struct ec_ctx *x, unsigned d)
{
	return alloc_free_buckets(x->fs, d);
}

static struct bkfs_ptr bucket_ptr(struct bkfs_fs *fs, unsigned d, u64 b)
{
	return (struct bkfs_ptr){ .offset = b * bucket_sectors(fs), .dev = d, .gen = bucket_get(fs, d, b)->gen };
}

/* The next group: nr_data candidate buckets on distinct devices, parity
 * buckets allocated on nr_parity other devices. When fewer devices have
 * candidates left, a narrower stripe (down to one data block: a mirror
 * computed as parity) protects what is left. 1 when none can be made. */
static int next_group(struct ec_ctx *x, struct group *g)
{
	struct bkfs_fs *fs = x->fs;
	bool used[BKFS_MAX_DEVS] = { 0 };
	unsigned devs[STRIPE_MAX_BLOCKS], k = 0;
	for (; k < x->nr_data; k++) {
		int d = pick_dev(x, used, cand_left);
		if (d < 0)
			break;
		used[d] = true;
		devs[k] = d;
	}
	if (!k)
		return 1;
	for (unsigned i = k; i < k + x->nr_parity; i++) {
		int d = pick_dev(x, used, free_left);
		if (d < 0)
			return 1;
		used[d] = true;
		devs[i] = d;
	}
	memset(g, 0, sizeof(*g));
	g->nr_data = k;
	for (unsigned i = 0; i < k; i++) {
		unsigned d = devs[i];
		g->blk[i] = bucket_ptr(fs, d, x->cand[d][x->pos_cand[d]++]);
	}
	for (unsigned i = k; i < k + x->nr_parity; i++) {
		u64 b;
		int ret = alloc_bucket(fs, devs[i], ALLOC_WM_normal, &b);
		if (ret) {
			for (unsigned p = k; p < i; p++)
				alloc_bucket_put(fs, g->blk[p].dev, ptr_bucket(fs, &g->blk[p]));
			return ret == -BKFS_E_NOSPC ? 1 : ret;
		}
		g->blk[i] = bucket_ptr(fs, devs[i], b);
	}
	return 0;
}

static int blockref_cmp(const void *a, const void *b)
{
	const struct blockref *x = a, *y = b;
	return x->devb < y->devb ? -1 : x->devb > y->devb;
}

static const struct blockref *blockref_find(struct ec_ctx *x, unsigned dev, u64 b)
{
	struct blockref key = { .devb = (u64)dev << 48 | b };
	return bsearch(&key, x->br, x->nr_br, sizeof(key), blockref_cmp);
}

static int ref_add(struct group *g, unsigned id, struct bpos pos)
{
	if (g->nr_refs && g->refs[g->nr_refs - 1].btree_id == id && bpos_eq(g->refs[g->nr_refs - 1].pos, pos))
		return 0;
	if (darray_room(g->refs, g->cap_refs, g->nr_refs + 1, 64))
		return -BKFS_E_NOMEM;
	g->refs[g->nr_refs++] = (struct keyref){ .btree_id = id, .pos = pos };
	return 0;
}

/* Every extent and indirect extent with a plain dirty pointer into a data
 * block of this batch's groups. */
static int find_refs(struct ec_ctx *x)
{
	static const unsigned ids[] = { BTREE_ID_extents, BTREE_ID_reflink };
	struct bkfs_fs *fs = x->fs;
	int ret = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(ids) && !ret; i++) {
		struct btree_iter it;
		struct bkey *k;
		for_each_btree_key(it, fs, ids[i], POS_MIN, k, ret) {
			struct bkfs_ptr *ptrs;
			unsigned nr = k->type == KEY_TYPE_extent || k->type == KEY_TYPE_reflink_v ? bkey_ptrs(k, &ptrs) : 0;
			for (unsigned p = 0; p < nr && !ret; p++) {
				if ((ptrs[p].flags & (PTR_CACHED | PTR_HAS_STRIPE)) || ptrs[p].dev >= fs->nr_devs)
					continue;
				const struct blockref *r = blockref_find(x, ptrs[p].dev, ptr_bucket(fs, &ptrs[p]));
				if (r && ptrs[p].gen == x->g[r->group].blk[r->block].gen)
					ret = ref_add(&x->g[r->group], ids[i], k->p);
			}
			if (ret)
				break;
		}
	}
	return ret;
}

/* blk[k..m) = the parity of data blocks blk[0..k), bytes each */
static void parity_encode(unsigned k, unsigned m, size_t bytes, u8 **blk)
{
	u8 enc[STRIPE_MAX_BLOCKS * STRIPE_MAX_BLOCKS], tables[32 * STRIPE_MAX_BLOCKS * STRIPE_MAX_BLOCKS];
	gf_gen_cauchy1_matrix(enc, (int)m, (int)k);
	ec_init_tables((int)k, (int)(m - k), &enc[k * k], tables);
	ec_encode_data((int)bytes, (int)k, (int)(m - k), tables, blk, &blk[k]);
}

int ec_stripe_verify(struct bkfs_fs *fs, const struct bkey *sk, bool repair, struct ec_verify *out)
{
	const struct bkfs_stripe *s = bkey_val(sk);
	unsigned m = s->nr_blocks, k = m - s->nr_redundant;
	size_t bytes = (size_t)s->sectors << SECTOR_SHIFT;
	memset(out, 0, sizeof(*out));
	if (sk->type != KEY_TYPE_stripe || m > STRIPE_MAX_BLOCKS || k >= m || s->algorithm != STRIPE_ALG_RS_CAUCHY)
		return -BKFS_E_CORRUPT;
	/* the blocks as read, then the parity computed from the data blocks */
	u8 *mem = malloc(bytes * (m + m - k));
	if (!mem)
		return -BKFS_E_NOMEM;
	u8 *blk[2 * STRIPE_MAX_BLOCKS];
	for (unsigned i = 0; i < m; i++) {
		const struct bkfs_ptr *p = &s->ptrs[i];
		blk[i] = mem + (size_t)i * bytes;
		if (p->dev >= fs->nr_devs || !fs->devs[p->dev].bd)
			out->missing |= 1u << i;
		else if (bd_read(fs->devs[p->dev].bd, blk[i], p->offset << SECTOR_SHIFT, bytes))
			out->unreadable |= 1u << i;
		else
			out->bytes_read += bytes;
	}
	int ret = 0;
	if ((out->missing | out->unreadable) & ((1u << k) - 1))
		goto out; /* a data block is gone: the parity cannot be checked */
	u8 *calc[STRIPE_MAX_BLOCKS];
	for (unsigned i = 0; i < k; i++)
		calc[i] = blk[i];
	for (unsigned i = k; i < m; i++)
		calc[i] = mem + (size_t)(m + i - k) * bytes;
	parity_encode(k, m, bytes, calc);
	for (unsigned i = k; i < m; i++) {
		if (out->missing >> i & 1)
			continue;
		if (!(out->unreadable >> i & 1) && !memcmp(blk[i], calc[i], bytes))
			continue;
		out->bad |= 1u << i;
		if (!repair)
			continue;
		const struct bkfs_ptr *p = &s->ptrs[i];
		struct blockdev *bd = fs->devs[p->dev].bd;
		if (!bd_write(bd, calc[i], p->offset << SECTOR_SHIFT, bytes) &&
		    !bd_read(bd, blk[i], p->offset << SECTOR_SHIFT, bytes) && !memcmp(blk[i], calc[i], bytes)) {
			out->repaired |= 1u << i;
			out->bytes_written += bytes;
		}
	}
out:
	free(mem);
	return ret;
}

/* Read the data blocks, write the parity blocks (durably). */
static int write_parity(struct ec_ctx *x, const struct group *g)
{
	struct bkfs_fs *fs = x->fs;
	unsigned k = g->nr_data, m = k + x->nr_parity;
	size_t bytes = (size_t)bucket_sectors(fs) << SECTOR_SHIFT;
	u8 *blk[STRIPE_MAX_BLOCKS];
	u8 *mem = malloc(bytes * m);
	if (!mem)
		return -BKFS_E_NOMEM;
	for (unsigned i = 0; i < m; i++)
		blk[i] = mem + (size_t)i * bytes;
	int ret = 0;
	for (unsigned i = 0; i < k && !ret; i++)
		ret = bd_read(fs->devs[g->blk[i].dev].bd, blk[i], g->blk[i].offset << SECTOR_SHIFT, bytes);
	if (!ret)
		parity_encode(k, m, bytes, blk);
	for (unsigned i = k; i < m && !ret; i++)
		ret = bd_write(fs->devs[g->blk[i].dev].bd, blk[i], g->blk[i].offset << SECTOR_SHIFT, bytes);
	for (unsigned i = k; i < m && !ret; i++)
		ret = bd_flush(fs->devs[g->blk[i].dev].bd);
	free(mem);
	return ret;
}

/* The key at ref with its pointers into the group's data blocks made
 * erasure-coded; false if it no longer has any. */
static bool ref_convert(struct ec_ctx *x, const struct group *g, u32 idx, struct bkey_buf *kb)
{
	struct bkfs_fs *fs = x->fs;
	struct bkfs_ptr *ptrs;
	unsigned nr = kb->k.type == KEY_TYPE_extent || kb->k.type == KEY_TYPE_reflink_v ? bkey_ptrs(&kb->k, &ptrs) : 0;
	bool changed = false;
	for (unsigned p = 0; p < nr; p++)
		for (unsigned b = 0; b < g->nr_data; b++) {
			const struct bkfs_ptr *bp = &g->blk[b];
			if ((ptrs[p].flags & (PTR_CACHED | PTR_HAS_STRIPE)) || ptrs[p].dev != bp->dev ||
			    ptrs[p].gen != bp->gen || ptr_bucket(fs, &ptrs[p]) != ptr_bucket(fs, bp))
				continue;
			ptrs[p].flags |= PTR_HAS_STRIPE;
			ptrs[p].stripe_idx = idx;
			ptrs[p].stripe_block = b;
			changed = true;
		}
	return changed;
}

/* One stripe: parity written first, then the stripe key and every pointer
 * into its data blocks in one transaction. 1 if the group was skipped. */
static int make_stripe(struct ec_ctx *x, const struct group *g)
{
	struct bkfs_fs *fs = x->fs;
	unsigned m = g->nr_data + x->nr_parity;
	if (g->nr_refs > EC_MAX_KEYS_PER_STRIPE || !g->nr_refs || write_parity(x, g))
		return 1;
	u32 idx = x->next_idx++;
	struct bkey_buf sk;
	bkey_init(&sk.k, KEY_TYPE_stripe, POS(0, idx), stripe_val_bytes(m));
	struct bkfs_stripe *s = bkey_val(&sk.k);
	s->sectors = bucket_sectors(fs);
	s->algorithm = STRIPE_ALG_RS_CAUCHY;
	s->nr_blocks = m;
	s->nr_redundant = x->nr_parity;
	memcpy(s->ptrs, g->blk, m * sizeof(g->blk[0]));

	struct trans t;
	trans_init(&t, fs);
	int ret = trans_update(&t, BTREE_ID_stripes, &sk.k);
	u64 keys = 0;
	for (size_t i = 0; i < g->nr_refs && !ret; i++) {
		struct bkey_buf kb;
		ret = btree_lookup(fs, g->refs[i].btree_id, g->refs[i].pos, &kb);
		if (ret == -BKFS_E_NOENT) {
			ret = 0;
			continue;
		}
		if (!ret && ref_convert(x, g, idx, &kb)) {
			ret = trans_update(&t, g->refs[i].btree_id, &kb.k);
			keys++;
		}
	}
	for (unsigned i = g->nr_data; i < m; i++)
		alloc_bucket_put(fs, g->blk[i].dev, ptr_bucket(fs, &g->blk[i]));
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	if (ret)
		return ret;
	x->st->stripes++;
	x->st->narrow += g->nr_data < x->nr_data;
	x->st->data_buckets += g->nr_data;
	x->st->parity_buckets += x->nr_parity;
	x->st->keys += keys;
	return 0;
}

static int first_free_idx(struct bkfs_fs *fs, u32 *idx)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 max = 0;
	for_each_btree_key(it, fs, BTREE_ID_stripes, POS_MIN, k, ret)
		max = MAX(max, k->p.offset);
	if (!ret && max >= UINT32_MAX)
		ret = -BKFS_E_NOSPC;
	*idx = (u32)max + 1;
	return ret;
}

static void batch_free(struct ec_ctx *x)
{
	for (size_t i = 0; i < x->nr_g; i++)
		free(x->g[i].refs);
	x->nr_g = x->nr_br = 0;
}

int ec_create_stripes(struct bkfs_fs *fs, unsigned nr_data, unsigned nr_parity, struct ec_stats *st)
{
	memset(st, 0, sizeof(*st));
	unsigned usable = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		usable += dev_usable(fs, d);
	if (nr_data < 2 || nr_parity < 1 || nr_data + nr_parity > STRIPE_MAX_BLOCKS || nr_data + nr_parity > usable ||
	    bucket_sectors(fs) > UINT16_MAX)
		return -BKFS_E_INVAL;
	int ret = alloc_delete_empty_stripes(fs);
	if (ret)
		return ret;
	struct ec_ctx x = { .fs = fs, .nr_data = nr_data, .nr_parity = nr_parity, .st = st };
	x.g = calloc(EC_BATCH, sizeof(*x.g));
	x.br = calloc((size_t)EC_BATCH * nr_data, sizeof(*x.br));
	if (!x.g || !x.br)
		ret = -BKFS_E_NOMEM;
	if (!ret)
		ret = collect_candidates(&x);
	if (!ret)
		ret = first_free_idx(fs, &x.next_idx);
	bool more = !ret;
	while (more && !ret) {
		/* a batch of groups, then one scan for the keys pointing into them */
		while (x.nr_g < EC_BATCH) {
			int r = next_group(&x, &x.g[x.nr_g]);
			if (r) {
				ret = r < 0 ? r : 0;
				more = false;
				break;
			}
			for (unsigned b = 0; b < x.g[x.nr_g].nr_data; b++)
				x.br[x.nr_br++] = (struct blockref){
					.devb = (u64)x.g[x.nr_g].blk[b].dev << 48 | ptr_bucket(fs, &x.g[x.nr_g].blk[b]),
					.group = (u32)x.nr_g, .block = (u8)b,
				};
			x.nr_g++;
		}
		if (!x.nr_g)
			break;
		qsort(x.br, x.nr_br, sizeof(*x.br), blockref_cmp);
		if (!ret)
			ret = find_refs(&x);
		for (size_t i = 0; i < x.nr_g; i++) {
			int r = ret ? 1 : make_stripe(&x, &x.g[i]);
			if (r < 0) {
				ret = r;
			} else if (r > 0) {
				/* its parity buckets go back unused */
				st->groups_skipped++;
				for (unsigned b = x.g[i].nr_data; b < x.g[i].nr_data + nr_parity; b++)
					alloc_bucket_put(fs, x.g[i].blk[b].dev, ptr_bucket(fs, &x.g[i].blk[b]));
			}
		}
		batch_free(&x);
	}
	batch_free(&x);
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		free(x.cand[d]);
	free(x.g);
	free(x.br);
	return ret;
}
