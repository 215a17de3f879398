/* gc_gens.c - generation GC: the only thing that moves a bucket's oldest_gen
 * forward.
 *
 * A bucket's gen goes up each time it is reused; cached pointers into its
 * earlier lives stay behind, stale. oldest_gen is the oldest gen a surviving
 * pointer may still carry; a bucket whose gen is BUCKET_GC_GEN_MAX (96) ahead
 * of it is need_gc_gens and cannot be allocated (gens are 8 bits and compared
 * with wrap-around, so every live pointer must stay well within 128).
 *
 * 1. oldest[b] = the bucket's gen (1 byte per bucket, chunked).
 * 2. Every leaf key with pointers (extents, reflink): if a cached pointer is
 *    more than GC_GENS_STALE_MAX (16) gens stale, the key is rewritten without
 *    its stale cached pointers (all of them); otherwise every pointer lowers
 *    oldest[b] to the oldest gen it carries. The 16 is hysteresis: slightly
 *    stale keys are not rewritten, and afterwards every bucket is at most 16
 *    gens ahead of its oldest_gen.
 * 3. Every bucket whose oldest_gen differs gets oldest[b] and a re-derived
 *    data_type (a need_gc_gens bucket becomes free).
 * Gens themselves never change here.
 *
 * Two drivers share this: fsck --gc-gens (in memory, like every repair; the
 * rewrite keeps accounting exact through the marking rules) and bkfs gc-gens
 * (a normal read-write mount, ordinary transactions with triggers). */
#include "fsck.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_GENS_STALE_MAX 16

struct gens {
	struct bkfs_fs *fs;
	struct fsck_ctx *c;   /* fsck --gc-gens; NULL for bkfs gc-gens */
	struct trans t;       /* bkfs gc-gens */
	struct chunked_array oldest[BKFS_MAX_DEVS];
	u64 nbuckets[BKFS_MAX_DEVS];
	u64 keys, rewritten, dropped, lost, lost_sectors, advanced, freed, wrong, not_fixed;
};

static const struct bkfs_alloc *gens_bucket(struct gens *g, unsigned dev, u64 b)
{
	return bucket_get(g->fs, dev, b);
}

/* fsck: repairs are made when the finding may be fixed, and always under -n
 * (in memory only, never written), like every other pass */
static bool gens_apply(struct gens *g, bool fix)
{
	return fix || g->c->opts.mode == FSCK_MODE_NO;
}

static bool ptr_valid(struct gens *g, const struct bkfs_ptr *p)
{
	return p->dev < g->fs->nr_devs && ptr_bucket(g->fs, p) < g->nbuckets[p->dev];
}

static bool ptr_stale(struct gens *g, const struct bkfs_ptr *p)
{
	return gens_bucket(g, p->dev, ptr_bucket(g->fs, p))->gen != p->gen;
}

/* fsck: keys are rewritten raw; these ops replay the marking rules for the
 * accounting only (bucket counts do not change: stale cached pointers never
 * counted) */
static int acct_only_bucket(struct mark_ctx *mc, const struct bkfs_ptr *p, unsigned data_type, s64 sectors,
			    enum bucket_counter cnt)
{
	struct gens *g = mc->priv;
	if (!ptr_valid(g, p))
		return cnt == CNT_CACHED;
	return cnt == CNT_CACHED && ptr_stale(g, p);
}

static void acct_only_acct(struct mark_ctx *mc, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	acct_add(mc->fs, pos, v0, v1, v2);
}

static const struct mark_ops acct_only_ops = {
	.bucket = acct_only_bucket,
	.acct = acct_only_acct,
};

static int gens_commit(struct gens *g)
{
	int ret = trans_commit(&g->t, 0);
	trans_reset(&g->t);
	return ret;
}

/* k without its stale cached pointers, in nk; returns how many it drops */
static unsigned gens_strip(struct gens *g, const struct bkey *k, struct bkey_buf *nk)
{
	struct bkfs_ptr *ptrs, keep[BKFS_MAX_REPLICAS];
	unsigned nr = bkey_ptrs(k, &ptrs), n = 0;
	for (unsigned i = 0; i < nr; i++) {
		const struct bkfs_ptr *p = &ptrs[i];
		if ((p->flags & PTR_CACHED) && ptr_valid(g, p) && ptr_stale(g, p))
			continue;
		if (n < BKFS_MAX_REPLICAS)
			keep[n++] = *p;
	}
	memcpy(nk, k, bkey_bytes(k));
	if (!n) {
		/* only stale copies were left: the data is already unreadable */
		bkey_init(&nk->k, KEY_TYPE_error, k->p, 0);
		nk->k.size = k->size;
		nk->k.version = k->version;
		return nr;
	}
	bkey_set_ptrs(&nk->k, keep, n);
	return nr - n;
}

static int gens_walk(struct gens *g, unsigned id)
{
	struct bkfs_fs *fs = g->fs;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	btree_iter_init(&it, fs, id, 0, POS_MIN);
	while (!(ret = btree_iter_peek(&it, &k)) && k) {
		struct bkfs_ptr *ptrs;
		unsigned nr;
		if ((k->type != KEY_TYPE_extent && k->type != KEY_TYPE_reflink_v) || !(nr = bkey_ptrs(k, &ptrs))) {
			btree_iter_advance(&it);
			continue;
		}
		g->keys++;
		bool rewrite = false;
		for (unsigned i = 0; i < nr && !rewrite; i++)
			rewrite = (ptrs[i].flags & PTR_CACHED) && ptr_valid(g, &ptrs[i]) &&
				  gen_after(gens_bucket(g, ptrs[i].dev, ptr_bucket(fs, &ptrs[i]))->gen, ptrs[i].gen) >
					  GC_GENS_STALE_MAX;
		if (!rewrite) {
			for (unsigned i = 0; i < nr; i++) {
				if (!ptr_valid(g, &ptrs[i]))
					continue;
				u8 *o = ca_get(&g->oldest[ptrs[i].dev], ptr_bucket(fs, &ptrs[i]));
				if (gen_after(*o, ptrs[i].gen))
					*o = ptrs[i].gen;
			}
			btree_iter_advance(&it);
			continue;
		}
		/* survivors are not stale: nothing to fold into oldest[] */
		struct bkey_buf old, nk;
		memcpy(&old, k, bkey_bytes(k));
		unsigned dropped = gens_strip(g, &old.k, &nk);
		bool lost = nk.k.type == KEY_TYPE_error;
		if (g->c) {
			struct printbuf obj = PRINTBUF;
			bkey_object_text(&obj, id, 0, &old.k);
			bool fix = fsck_err(g->c, FSCK_ERR_gc_gens_ptr_dropped,
					    lost ? "replace by an error key (no copy left)" : "drop the stale cached pointers",
					    "%s", pb_str(&obj));
			fsck_err_msg(g->c, "%u cached pointer%s more than %u gens stale", dropped, dropped == 1 ? "" : "s",
				     GC_GENS_STALE_MAX);
			pb_exit(&obj);
			if (!gens_apply(g, fix)) {
				g->not_fixed++;
				btree_iter_advance(&it);
				continue;
			}
			struct mark_ctx mc = { .ops = &acct_only_ops, .fs = fs, .priv = g };
			nk.k.version = ++fs->key_version;
			if ((ret = bkfs_mark_key(&mc, id, 0, &nk.k, 1)) || (ret = bkfs_mark_key(&mc, id, 0, &old.k, -1)) ||
			    (ret = btree_insert_key(fs, id, &nk.k)))
				return ret;
			if (lost && fix) {
				g->c->lost_extents++;
				g->c->lost_sectors += old.k.size;
			}
		} else {
			if ((ret = trans_update(&g->t, id, &nk.k)))
				return ret;
			if (g->t.nr >= 64 && (ret = gens_commit(g)))
				return ret;
		}
		g->rewritten++;
		g->dropped += dropped;
		if (lost) {
			g->lost++;
			g->lost_sectors += old.k.size;
		}
		/* the tree may have changed under the iterator */
		if (bpos_eq(old.k.p, POS_MAX))
			break;
		btree_iter_init(&it, fs, id, 0, bpos_successor(old.k.p));
	}
	if (!ret && !g->c && g->t.nr)
		ret = gens_commit(g);
	return ret;
}

static int gens_buckets(struct gens *g)
{
	struct bkfs_fs *fs = g->fs;
	unsigned batch = 0;
	int ret;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		for (u64 b = 0; b < g->nbuckets[d]; b++) {
			const struct bkfs_alloc *cur = gens_bucket(g, d, b);
			u8 want = *(u8 *)ca_get(&g->oldest[d], b);
			if (cur->oldest_gen == want)
				continue;
			/* moving forward is the work; a stored oldest_gen newer than
			 * a gen still referenced (or than the bucket's gen) is wrong */
			bool wrong = gen_cmp(cur->oldest_gen, want) > 0;
			if (g->c) {
				bool fix;
				if (wrong) {
					fix = fsck_err(g->c, FSCK_ERR_alloc_key_oldest_gen_wrong, "set oldest_gen",
						       "dev %u bucket %llu", d, (unsigned long long)b);
					fsck_err_msg(g->c, "oldest_gen got %u should be %u (bucket gen %u)", cur->oldest_gen,
						     want, cur->gen);
				} else {
					fix = fsck_may_fix(g->c);
					if (fix)
						fsck_begin_repair(g->c);
				}
				if (!gens_apply(g, fix))
					continue;
			}
			struct bkfs_alloc a = *cur;
			unsigned old_type = a.data_type;
			a.oldest_gen = want;
			a.data_type = alloc_data_type(&a, a.data_type);
			bucket_update(fs, d, b, &a);
			g->advanced += !wrong;
			g->wrong += wrong;
			g->freed += old_type == DATA_need_gc_gens && a.data_type == DATA_free;
			/* bkfs gc-gens: the alloc keys go out with ordinary commits */
			if (!g->c && ++batch >= 512) {
				batch = 0;
				if ((ret = gens_commit(g)))
					return ret;
			}
		}
	if (!g->c && batch)
		return gens_commit(g);
	return 0;
}

static int gens_run(struct gens *g)
{
	struct bkfs_fs *fs = g->fs;
	int ret = 0;
	if (!fs->alloc)
		return -BKFS_E_INVAL;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		g->nbuckets[d] = fs->sb.members[d].nbuckets;
		if ((ret = ca_init(&g->oldest[d], 1, g->nbuckets[d])))
			goto out;
		for (u64 b = 0; b < g->nbuckets[d]; b++)
			*(u8 *)ca_get(&g->oldest[d], b) = gens_bucket(g, d, b)->gen;
	}
	if ((ret = gens_walk(g, BTREE_ID_extents)) || (ret = gens_walk(g, BTREE_ID_reflink)))
		goto out;
	ret = gens_buckets(g);
out:
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		ca_exit(&g->oldest[d]);
	return ret;
}

static void gens_report(struct gens *g, struct printbuf *out)
{
	pb_printf(out, "%llu keys with pointers scanned; %llu rewritten, %llu stale cached pointers dropped\n",
		  (unsigned long long)g->keys, (unsigned long long)g->rewritten, (unsigned long long)g->dropped);
	pb_printf(out, "%llu buckets' oldest_gen advanced, %llu need_gc_gens buckets freed", (unsigned long long)g->advanced,
		  (unsigned long long)g->freed);
	if (g->wrong)
		pb_printf(out, ", %llu wrong oldest_gen corrected", (unsigned long long)g->wrong);
	pb_printf(out, "\n");
	if (g->lost)
		pb_printf(out, "%llu extents (%llu sectors) had only stale cached copies left: replaced by error keys\n",
			  (unsigned long long)g->lost, (unsigned long long)g->lost_sectors);
}

int fsck_gc_gens(struct fsck_ctx *c)
{
	struct gens g = { .fs = c->fs, .c = c };
	int ret = gens_run(&g);
	if (c->opts.verbose) {
		struct printbuf pb = PRINTBUF;
		gens_report(&g, &pb);
		fprintf(stderr, "bkfs fsck: gc_gens: %s", pb_str(&pb));
		pb_exit(&pb);
	}
	return ret;
}

int bkfs_gc_gens_fs(struct bkfs_fs *fs, struct printbuf *report)
{
	struct gens g = { .fs = fs };
	trans_init(&g.t, fs);
	int ret = gens_run(&g);
	trans_exit(&g.t);
	if (report)
		gens_report(&g, report);
	return ret;
}

int bkfs_gc_gens(char *const *devs, unsigned nr, struct printbuf *report)
{
	struct bkfs_fs *fs;
	struct printbuf err = PRINTBUF;
	int ret = bkfs_open(devs, nr, 0, &fs, &err);
	if (ret) {
		pb_printf(report, "cannot open: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return ret;
	}
	pb_exit(&err);
	ret = bkfs_gc_gens_fs(fs, report);
	if (ret) {
		pb_printf(report, "gc-gens: %s\n", bkfs_strerror(ret));
		bkfs_close_nowrite(fs);
		return ret;
	}
	if ((ret = bkfs_close(fs)))
		pb_printf(report, "writing: %s\n", bkfs_strerror(ret));
	return ret;
}
