/* gc.c - check_allocations (mark and sweep) and check_alloc_info.
 *
 * Mark: every key of every btree, at every level, is checked, repaired and
 * then marked exactly once through bkfs_mark_key() with the GC mark_ops below,
 * which write into the shadow state instead of the live bucket state:
 *   - per bucket 16 bytes (struct gc_bucket), in chunked arrays;
 *   - a sorted table of shadow accounting counters;
 *   - the reflink table (one entry per indirect extent, counted references);
 *   - the stripe table (counted sectors per block) and the buckets' stripes.
 * Order: the alloc btree (gens), superblock and journal buckets, the stripes
 * btree, then every other btree. Within a btree: the root pointer, then the
 * interior levels from the top down, then the leaves. Interior pointers are
 * checked before any leaf repair copies their nodes, so every node is marked
 * in its original form; nodes copied on write before the check (journal
 * replay) or after it are found in fs->pending_free, whose space stays
 * allocated until the next checkpoint, and are marked from there.
 *
 * A key is checked against the shadow buckets as marked so far, its repaired
 * form is computed in a buffer, written (leaf keys, only when the finding may
 * be fixed) and marked - in every mode, so -n reports what -y repairs.
 * Interior pointers are never removed: a bad replica is stripped by copying
 * the node on write (it gets fresh locations at the final checkpoint).
 *
 * Sweep: alloc keys field by field, accounting, stripes, reflink refcounts.
 *
 * Where a repair becomes durable: nothing here writes to a device. A key
 * repair changes a node in memory (btree_insert_key: the node is dirty); an
 * alloc key repair changes the in-memory bucket (gc_bucket_repair: marked
 * dirty); a counter repair changes the in-memory accounting entry (marked
 * dirty). After the last pass the driver calls fsck_commit_repairs()
 * (fsck.c), in -y/-p mode only: it closes the filesystem with one atomic
 * checkpoint, whose checkpoint_prepare hook (engine_checkpoint_prepare ->
 * flush_derived, src/alloc/alloc.c) first turns every dirty bucket into an
 * alloc key and every dirty counter into an accounting key, then writes the
 * dirty nodes and the checkpoint record. Under -n the same repairs are made
 * in memory (so -n reports what -y repairs) and dropped at the close. */
#include "fsck.h"
#include "../util/darray.h"
#include "../btree/iter.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gc_bucket {
	u32 dirty_sectors, cached_sectors, stripe_sectors;
	u8 gen;
	u8 data_type;         /* base type marked: sb/journal/btree/user/parity; 0 = none */
	u8 flags;
	u8 stripe_redundancy;
};
_Static_assert(sizeof(struct gc_bucket) == 16, "gc_bucket");
#define GCB_GEN_VALID (1u << 0) /* gen known: from the alloc key or adopted from a pointer */
#define GCB_HAS_ALLOC (1u << 1) /* the alloc btree has a key for it */
#define GCB_STRIPE    (1u << 2) /* member of a stripe: see gc_state.bst */

struct gc_acct {
	struct bpos pos;
	s64 v[3];
};

#define RL_V     0 /* indirect extent: refcounted */
#define RL_COVER 1 /* error key: covers its range, not refcounted */
#define RL_GONE  2 /* became an error key during this check */
struct gc_reflink {
	u64 end, refcount;
	u32 size;
	u8 kind;
};

struct gc_stripe {
	u64 idx;
	u16 sectors;
	u8 nr_blocks, nr_redundant;
	struct bkfs_ptr *ptrs;
	u32 *counted;
};

struct gc_bstripe {
	u64 devb; /* dev << 56 | bucket */
	u64 idx;
};

/* an interior pointer whose node must be copied to strip bad replicas */
struct gc_iptr_fix {
	u8 btree_id, level, nr_bad;
	bool root;
	struct bpos pos, min_key;
	u64 seq;
	struct bkfs_ptr bad[BKFS_MAX_REPLICAS];
};

struct gc_state {
	struct fsck_ctx *c;
	struct bkfs_fs *fs;
	struct mark_ctx mc;
	struct chunked_array buckets[BKFS_MAX_DEVS];
	u64 nbuckets[BKFS_MAX_DEVS];
	u64 bitmap[BKFS_MAX_DEVS]; /* member btree bitmaps as repaired */
	u64 kv_limit;

	struct gc_acct *acct;
	size_t nr_acct, acct_cap, acct_hint;

	struct gc_reflink *rl;
	size_t nr_rl, rl_cap;

	struct gc_stripe *st;
	size_t nr_st, st_cap;
	struct gc_bstripe *bst;
	size_t nr_bst, bst_cap;

	u64 *seqs; /* open-addressed set of marked node seqs */
	size_t seq_cap, nr_seqs;

	struct gc_iptr_fix *ifix;
	size_t nr_ifix, ifix_cap;

	bool walk_failed;
	u64 keys, ptrs;
	bool fused_done; /* the fused walk read every leaf of its btrees */
};

/* ---- small helpers ---- */

/* Repairs are made in memory when the finding may be fixed - and always
 * under -n, where nothing is ever written: later passes then see what -y
 * would leave, so -n reports exactly what -y repairs. */
static bool gc_apply(struct fsck_ctx *c, bool fix)
{
	return !c->trapped && (fix || c->opts.mode == FSCK_MODE_NO);
}

/* The repaired alloc key of a bucket, in memory: the bucket is marked dirty
 * even when the mirror already held the value (a missing key gets written),
 * and fsck_commit_repairs() writes it (see the top of this file). */
static void gc_bucket_repair(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bkfs_alloc *a)
{
	bucket_update(fs, dev, b, a);
	bucket_set_dirty(fs, dev, b);
}

static struct gc_bucket *gcb(struct gc_state *g, unsigned dev, u64 b)
{
	return ca_get(&g->buckets[dev], b);
}

/* what a pointer's bucket holds, with cached and erasure-coded data as user */
static unsigned base_type(unsigned t)
{
	switch (t) {
	case DATA_sb:
	case DATA_journal:
	case DATA_btree:
	case DATA_parity:
		return t;
	case DATA_free:
	case DATA_need_gc_gens:
	case DATA_need_discard:
		return DATA_free;
	default:
		return DATA_user;
	}
}

static bool seqset_has(struct gc_state *g, u64 seq)
{
	if (!g->seq_cap)
		return false;
	for (size_t i = (seq * 0x9E3779B97F4A7C15ull) & (g->seq_cap - 1);; i = (i + 1) & (g->seq_cap - 1)) {
		if (!g->seqs[i])
			return false;
		if (g->seqs[i] == seq)
			return true;
	}
}

static int seqset_add(struct gc_state *g, u64 seq)
{
	if (!seq || seqset_has(g, seq))
		return 0;
	if ((g->nr_seqs + 1) * 2 > g->seq_cap) {
		size_t nc = g->seq_cap ? g->seq_cap * 2 : 1024;
		u64 *n = xcalloc(nc, sizeof(*n)), *old = g->seqs;
		size_t oc = g->seq_cap;
		if (!n)
			return -BKFS_E_NOMEM;
		g->seqs = n;
		g->seq_cap = nc;
		g->nr_seqs = 0;
		for (size_t i = 0; i < oc; i++)
			if (old[i])
				seqset_add(g, old[i]);
		free(old);
	}
	size_t i = (seq * 0x9E3779B97F4A7C15ull) & (g->seq_cap - 1);
	while (g->seqs[i])
		i = (i + 1) & (g->seq_cap - 1);
	g->seqs[i] = seq;
	g->nr_seqs++;
	return 0;
}

static struct gc_acct *gc_acct_get(struct gc_state *g, struct bpos pos)
{
	if (g->acct_hint < g->nr_acct && bpos_eq(g->acct[g->acct_hint].pos, pos))
		return &g->acct[g->acct_hint];
	size_t lo = sorted_lower_bound(g->nr_acct, m, bpos_cmp(g->acct[m].pos, pos) < 0);
	if (lo < g->nr_acct && bpos_eq(g->acct[lo].pos, pos)) {
		g->acct_hint = lo;
		return &g->acct[lo];
	}
	if (darray_room(g->acct, g->acct_cap, g->nr_acct + 1, 64))
		return NULL;
	memmove(&g->acct[lo + 1], &g->acct[lo], (g->nr_acct - lo) * sizeof(*g->acct));
	g->nr_acct++;
	memset(&g->acct[lo], 0, sizeof(*g->acct));
	g->acct[lo].pos = pos;
	g->acct_hint = lo;
	return &g->acct[lo];
}

static void gc_acct_add(struct gc_state *g, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	if (!v0 && !v1 && !v2)
		return;
	struct gc_acct *a = gc_acct_get(g, pos);
	if (!a) {
		g->c->operational_error = true;
		return;
	}
	a->v[0] += v0;
	a->v[1] += v1;
	a->v[2] += v2;
}

static struct gc_stripe *gc_stripe_find(struct gc_state *g, u64 idx)
{
	size_t i = sorted_lower_bound(g->nr_st, m, g->st[m].idx < idx);
	return i < g->nr_st && g->st[i].idx == idx ? &g->st[i] : NULL;
}

static u64 gc_bucket_stripe(struct gc_state *g, unsigned dev, u64 b)
{
	u64 key = (u64)dev << 56 | b;
	size_t lo = 0, hi = g->nr_bst;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (g->bst[mid].devb == key)
			return g->bst[mid].idx;
		if (g->bst[mid].devb < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int bst_cmp(const void *a, const void *b)
{
	const struct gc_bstripe *x = a, *y = b;
	if (x->devb != y->devb)
		return x->devb < y->devb ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* first reflink table entry whose end is past pos */
static size_t rl_first_after(struct gc_state *g, u64 pos)
{
	return sorted_lower_bound(g->nr_rl, m, g->rl[m].end <= pos);
}

static u64 rl_start(const struct gc_reflink *r) { return r->end - r->size; }

/* ---- GC mark_ops: into the shadow state ---- */

static struct gc_state *GC(struct mark_ctx *mc) { return mc->priv; }

static int gc_mark_bucket(struct mark_ctx *mc, const struct bkfs_ptr *p, unsigned data_type,
			  s64 sectors, enum bucket_counter cnt)
{
	struct gc_state *g = GC(mc);
	if (p->dev >= g->fs->nr_devs)
		return cnt == CNT_CACHED;
	u64 b = ptr_bucket(g->fs, p);
	if (b >= g->nbuckets[p->dev])
		return cnt == CNT_CACHED;
	struct gc_bucket *gb = gcb(g, p->dev, b);
	if (!(gb->flags & GCB_GEN_VALID) || gb->gen != p->gen)
		return cnt == CNT_CACHED; /* stale cached pointer: not counted */
	u32 *ctr = cnt == CNT_DIRTY ? &gb->dirty_sectors : cnt == CNT_CACHED ? &gb->cached_sectors : &gb->stripe_sectors;
	s64 v = (s64)*ctr + sectors;
	if (v < 0 || v > UINT32_MAX) {
		fsck_err(g->c, FSCK_ERR_bucket_sector_count_overflow, "clamp the count", "dev %u bucket %llu", p->dev,
			 (unsigned long long)b);
		fsck_err_msg(g->c, "%s sectors %u %+lld out of range", cnt == CNT_DIRTY ? "dirty" :
			     cnt == CNT_CACHED ? "cached" : "stripe", *ctr, (long long)sectors);
		v = v < 0 ? 0 : UINT32_MAX;
	}
	*ctr = (u32)v;
	if (!gb->data_type)
		gb->data_type = base_type(data_type);
	return 0;
}

static void gc_mark_acct(struct mark_ctx *mc, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	gc_acct_add(GC(mc), pos, v0, v1, v2);
}

static int gc_mark_reflink(struct mark_ctx *mc, u64 start, u64 end, int sign)
{
	struct gc_state *g = GC(mc);
	for (size_t i = rl_first_after(g, start); i < g->nr_rl && rl_start(&g->rl[i]) < end; i++)
		if (g->rl[i].kind != RL_COVER)
			g->rl[i].refcount += sign;
	return 0;
}

static int gc_mark_stripe_ptr(struct mark_ctx *mc, const struct bkfs_ptr *p, s64 sectors)
{
	struct gc_stripe *s = gc_stripe_find(GC(mc), p->stripe_idx);
	if (s && p->stripe_block < s->nr_blocks) {
		s64 v = (s64)s->counted[p->stripe_block] + sectors;
		s->counted[p->stripe_block] = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (u32)v;
	}
	return 0;
}

static int gc_mark_stripe(struct mark_ctx *mc, const struct bkey *k, int sign)
{
	struct gc_state *g = GC(mc);
	struct bkfs_stripe *s = bkey_val(k);
	for (unsigned i = 0; i < s->nr_blocks; i++) {
		const struct bkfs_ptr *p = &s->ptrs[i];
		if (p->dev >= g->fs->nr_devs)
			continue;
		u64 b = ptr_bucket(g->fs, p);
		if (b >= g->nbuckets[p->dev])
			continue;
		struct gc_bucket *gb = gcb(g, p->dev, b);
		if (gb->flags & GCB_STRIPE)
			continue; /* already in a stripe: the first one keeps it */
		gb->flags |= GCB_STRIPE;
		gb->stripe_redundancy = s->nr_redundant;
		if (darray_room(g->bst, g->bst_cap, g->nr_bst + 1, 64))
			return -BKFS_E_NOMEM;
		g->bst[g->nr_bst++] = (struct gc_bstripe){ .devb = (u64)p->dev << 56 | b, .idx = k->p.offset };
	}
	return 0;
}

static const struct mark_ops gc_mark_ops = {
	.bucket = gc_mark_bucket,
	.acct = gc_mark_acct,
	.reflink = gc_mark_reflink,
	.stripe_ptr = gc_mark_stripe_ptr,
	.stripe = gc_mark_stripe,
};

/* ---- findings ---- */

static bool gc_key_err(struct gc_state *g, unsigned err, const char *action, unsigned id, unsigned level,
		       const struct bkey *k, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static bool gc_key_err(struct gc_state *g, unsigned err, const char *action, unsigned id, unsigned level,
		       const struct bkey *k, const char *fmt, ...)
{
	struct printbuf obj = PRINTBUF, msg = PRINTBUF;
	bkey_object_text(&obj, id, level, k);
	bool fix = fsck_err(g->c, err, action, "%s", pb_str(&obj));
	va_list ap;
	va_start(ap, fmt);
	pb_vprintf(&msg, fmt, ap);
	va_end(ap);
	fsck_err_msg(g->c, "%s", pb_str(&msg));
	pb_exit(&obj);
	pb_exit(&msg);
	return fix;
}

static void ptr_text(struct printbuf *out, const struct bkfs_ptr *p, struct gc_state *g)
{
	ptr_to_text(out, p);
	if (p->dev < g->fs->nr_devs && ptr_bucket(g->fs, p) < g->nbuckets[p->dev]) {
		struct gc_bucket *gb = gcb(g, p->dev, ptr_bucket(g->fs, p));
		pb_printf(out, " (bucket %llu gen %u%s, %s)", (unsigned long long)ptr_bucket(g->fs, p), gb->gen,
			  gb->flags & GCB_GEN_VALID ? "" : " unknown", gb->data_type ? data_type_str(gb->data_type) : "empty");
	}
}

/* ---- checking one key ---- */

static void gcb_adopt(struct gc_bucket *gb, u8 gen, bool reset)
{
	gb->gen = gen;
	gb->flags |= GCB_GEN_VALID;
	if (reset) {
		gb->dirty_sectors = gb->cached_sectors = gb->stripe_sectors = 0;
		gb->data_type = 0;
	}
}

static unsigned key_ptr_type(const struct bkey *k, unsigned i, unsigned nr)
{
	if (k->type == KEY_TYPE_btree_ptr)
		return DATA_btree;
	if (k->type == KEY_TYPE_stripe) {
		const struct bkfs_stripe *s = bkey_val(k);
		return i >= (unsigned)(nr - s->nr_redundant) ? DATA_parity : DATA_user;
	}
	return DATA_user;
}

struct ptr_fix {
	bool drop[BKFS_MAX_REPLICAS * 64];
	bool nostripe[BKFS_MAX_REPLICAS * 64];
	bool changed, fix_ok;
};

#define PTR_ERR(err, action, ...)                                                         \
	do {                                                                              \
		struct printbuf _pb = PRINTBUF;                                           \
		ptr_text(&_pb, p, g);                                                     \
		if (!gc_key_err(g, err, action, id, level, k, "%s: " __VA_ARGS__))      \
			pf->fix_ok = false;                                               \
		pb_exit(&_pb);                                                            \
	} while (0)

/* Check each pointer of k against the shadow buckets marked so far. Decides
 * which pointers the repaired key drops (pf) and updates the shadow buckets
 * as the repair would.
 *
 * Conflicts never undo what earlier pointers marked (that would leave them
 * behind, uncounted, for the next run to find): a bucket takes a pointer's gen
 * only when it has no gen (no alloc key) or holds nothing live at its own gen
 * (at most cached data, which the new gen makes stale). Otherwise the
 * newcomer loses: a data pointer is dropped; a btree node is never dropped -
 * the bad replica is, and the node is copied on write to fresh space. */
static void gc_check_ptrs(struct gc_state *g, unsigned id, unsigned level, const struct bkey *k, struct ptr_fix *pf)
{
	struct bkfs_fs *fs = g->fs;
	struct bkfs_ptr *ptrs;
	unsigned nr = bkey_ptrs(k, &ptrs);
	bool is_btree = k->type == KEY_TYPE_btree_ptr;
	bool data = k->type == KEY_TYPE_extent || k->type == KEY_TYPE_reflink_v;
	const char *drop = is_btree ? "drop the replica and move the node" : "drop the pointer";
	if (nr > ARRAY_SIZE(pf->drop))
		nr = ARRAY_SIZE(pf->drop);
	for (unsigned i = 0; i < nr; i++) {
		const struct bkfs_ptr *p = &ptrs[i];
		bool cached = data && (p->flags & PTR_CACHED);
		unsigned t = key_ptr_type(k, i, nr);
		g->ptrs++;
		if (p->dev >= fs->nr_devs) {
			PTR_ERR(FSCK_ERR_ptr_to_invalid_device, drop, "device %u does not exist", pb_str(&_pb), p->dev);
			pf->drop[i] = pf->changed = true;
			continue;
		}
		u64 b = ptr_bucket(fs, p);
		if (b >= g->nbuckets[p->dev]) {
			PTR_ERR(FSCK_ERR_ptr_to_invalid_bucket, drop, "bucket %llu past the end of device %u (%llu buckets)",
				pb_str(&_pb), (unsigned long long)b, p->dev, (unsigned long long)g->nbuckets[p->dev]);
			pf->drop[i] = pf->changed = true;
			continue;
		}
		struct gc_bucket *gb = gcb(g, p->dev, b);
		if (!(gb->flags & GCB_GEN_VALID)) {
			if (cached) {
				PTR_ERR(FSCK_ERR_ptr_to_missing_alloc_key, "drop the cached pointer", "bucket has no alloc key",
					pb_str(&_pb));
				pf->drop[i] = pf->changed = true;
				continue;
			}
			PTR_ERR(FSCK_ERR_ptr_to_missing_alloc_key, "the bucket takes the pointer's gen",
				"bucket has no alloc key", pb_str(&_pb));
			gcb_adopt(gb, p->gen, false);
		}
		bool live = gb->dirty_sectors || gb->stripe_sectors; /* confirmed at the bucket's gen */
		int d = gen_cmp(p->gen, gb->gen);
		if (d > 0) {
			if (!cached && !live) {
				PTR_ERR(FSCK_ERR_ptr_gen_newer_than_bucket_gen, "the bucket takes the pointer's gen",
					"pointer gen newer than bucket gen", pb_str(&_pb));
				gcb_adopt(gb, p->gen, true);
			} else {
				PTR_ERR(FSCK_ERR_ptr_gen_newer_than_bucket_gen, cached ? "drop the cached pointer" : drop,
					"pointer gen newer than bucket gen%s", pb_str(&_pb),
					live ? ", which holds live data" : "");
				pf->drop[i] = pf->changed = true;
				continue;
			}
		} else if (-d > BUCKET_GC_GEN_MAX) {
			PTR_ERR(FSCK_ERR_ptr_too_stale, drop, "pointer more than %u gens stale", pb_str(&_pb),
				BUCKET_GC_GEN_MAX);
			pf->drop[i] = pf->changed = true;
			continue;
		} else if (d < 0 && !cached) {
			PTR_ERR(FSCK_ERR_stale_dirty_ptr, drop, "%s pointer older than its bucket", pb_str(&_pb),
				is_btree ? "btree node" : "dirty");
			pf->drop[i] = pf->changed = true;
			continue;
		} else if (d < 0) {
			continue; /* stale cached pointer: legitimate, ignored */
		}
		if (gb->data_type && base_type(gb->data_type) != base_type(t)) {
			/* superblock and journal buckets are marked before any
			 * pointer: a pointer into one is a metadata conflict */
			bool meta = gb->data_type == DATA_sb || gb->data_type == DATA_journal;
			PTR_ERR(meta ? FSCK_ERR_bucket_metadata_type_mismatch : FSCK_ERR_ptr_bucket_data_type_mismatch, drop,
				"%s pointer into a %s bucket", pb_str(&_pb), data_type_str(t), data_type_str(gb->data_type));
			pf->drop[i] = pf->changed = true;
			continue;
		}
		if (data) {
			/* what marking this pointer adds must fit the bucket's counter
			 * (a bucket holds far fewer sectors): the newcomer loses */
			u32 ctr = cached ? gb->cached_sectors : (p->flags & PTR_HAS_STRIPE) ? gb->stripe_sectors : gb->dirty_sectors;
			if ((u64)ctr + k->size > UINT32_MAX) {
				PTR_ERR(FSCK_ERR_bucket_sector_count_overflow, cached ? "drop the cached pointer" : drop,
					"%u sectors would take the bucket's %s count %u past %u", pb_str(&_pb), k->size,
					cached ? "cached" : (p->flags & PTR_HAS_STRIPE) ? "stripe" : "dirty", ctr, UINT32_MAX);
				pf->drop[i] = pf->changed = true;
				continue;
			}
		}
		if (data && !cached && (p->flags & PTR_HAS_STRIPE)) {
			struct gc_stripe *s = gc_stripe_find(g, p->stripe_idx);
			if (!s) {
				PTR_ERR(FSCK_ERR_ptr_to_missing_stripe, "drop the stripe reference",
					"stripe %u does not exist", pb_str(&_pb), p->stripe_idx);
				pf->nostripe[i] = pf->changed = true;
			} else {
				const struct bkfs_ptr *sp = p->stripe_block < s->nr_blocks ? &s->ptrs[p->stripe_block] : NULL;
				if (!sp || sp->dev != p->dev || sp->gen != p->gen || p->offset < sp->offset ||
				    p->offset + k->size > sp->offset + s->sectors ||
				    p->stripe_block >= s->nr_blocks - s->nr_redundant) {
					PTR_ERR(FSCK_ERR_ptr_to_incorrect_stripe, "drop the stripe reference",
						"not inside block %u of stripe %u", pb_str(&_pb), p->stripe_block,
						p->stripe_idx);
					pf->nostripe[i] = pf->changed = true;
				}
			}
		}
	}
}

/* Build the repaired form of k in nk per pf. Returns false if the key loses
 * its last pointer (the caller decides what it becomes). */
static bool gc_apply_ptr_fix(const struct bkey *k, const struct ptr_fix *pf, struct bkey_buf *nk)
{
	struct bkfs_ptr *ptrs;
	unsigned nr = bkey_ptrs(k, &ptrs), n = 0;
	struct bkfs_ptr keep[BKFS_MAX_REPLICAS * 64];
	if (nr > ARRAY_SIZE(keep))
		nr = ARRAY_SIZE(keep);
	for (unsigned i = 0; i < nr; i++) {
		if (pf->drop[i])
			continue;
		keep[n] = ptrs[i];
		if (pf->nostripe[i]) {
			keep[n].flags &= ~PTR_HAS_STRIPE;
			keep[n].stripe_idx = 0;
			keep[n].stripe_block = 0;
		}
		n++;
	}
	memcpy(nk, k, bkey_bytes(k));
	if (!bkey_set_ptrs(&nk->k, keep, n))
		return n == nr; /* stripes cannot lose a block: the stripe goes */
	return n > 0;
}

/* reflink_p: every sector of [idx, idx+size) must be covered by the reflink
 * table; the pads are shrunk to what is covered. Returns false if nk must
 * become an error key. */
static bool gc_check_reflink_p(struct gc_state *g, unsigned id, const struct bkey *k, struct bkey_buf *nk,
			       bool *changed, bool *fix_ok)
{
	const struct bkfs_reflink_p *r = bkey_val(k);
	u64 s = r->idx >= r->front_pad ? r->idx - r->front_pad : 0;
	u64 e = r->idx + k->size + r->back_pad;
	u64 rs = r->idx, re = r->idx + k->size;
	size_t i = rl_first_after(g, rs);
	bool hole = i >= g->nr_rl || rl_start(&g->rl[i]) > rs;
	size_t j = i;
	u64 cur = hole ? 0 : g->rl[i].end;
	while (!hole && cur < re) {
		if (++j >= g->nr_rl || rl_start(&g->rl[j]) != cur)
			hole = true;
		else
			cur = g->rl[j].end;
	}
	if (hole) {
		if (!gc_key_err(g, FSCK_ERR_reflink_p_to_missing_reflink_v, "replace by an error key", id, 0, k,
				"indirect extents missing in [%llu, %llu)", (unsigned long long)rs,
				(unsigned long long)re))
			*fix_ok = false;
		*changed = true;
		return false;
	}
	/* extend over the pads while contiguous */
	while (cur < e && j + 1 < g->nr_rl && rl_start(&g->rl[j + 1]) == cur)
		cur = g->rl[++j].end;
	u64 ns = rl_start(&g->rl[i]);
	while (ns > s && i > 0 && g->rl[i - 1].end == ns)
		ns = rl_start(&g->rl[--i]);
	ns = MAX(ns, s);
	u64 ne = MIN(cur, e);
	if (ns != s || ne != e) {
		if (!gc_key_err(g, FSCK_ERR_reflink_p_to_missing_reflink_v, "shrink the padding", id, 0, k,
				"padded range [%llu, %llu) covered only over [%llu, %llu)", (unsigned long long)s,
				(unsigned long long)e, (unsigned long long)ns, (unsigned long long)ne))
			*fix_ok = false;
		struct bkfs_reflink_p *nr = bkey_val(&nk->k);
		nr->front_pad = (u32)(r->idx - ns);
		nr->back_pad = (u32)(ne - re);
		*changed = true;
	}
	return true;
}

static int gc_register_stripe(struct gc_state *g, const struct bkey *k)
{
	const struct bkfs_stripe *s = bkey_val(k);
	if (darray_room(g->st, g->st_cap, g->nr_st + 1, 64))
		return -BKFS_E_NOMEM;
	struct gc_stripe *x = &g->st[g->nr_st];
	memset(x, 0, sizeof(*x));
	x->idx = k->p.offset;
	x->sectors = s->sectors;
	x->nr_blocks = s->nr_blocks;
	x->nr_redundant = s->nr_redundant;
	x->ptrs = malloc(sizeof(*x->ptrs) * MAX(1u, (unsigned)s->nr_blocks));
	x->counted = xcalloc(MAX(1u, (unsigned)s->nr_blocks), sizeof(*x->counted));
	if (!x->ptrs || !x->counted) {
		free(x->ptrs);
		free(x->counted);
		return -BKFS_E_NOMEM;
	}
	memcpy(x->ptrs, s->ptrs, sizeof(*x->ptrs) * s->nr_blocks);
	/* keys come in position order: the table stays sorted */
	if (g->nr_st && g->st[g->nr_st - 1].idx >= x->idx) {
		free(x->ptrs);
		free(x->counted);
		return 0;
	}
	g->nr_st++;
	return 0;
}

static int gc_defer_iptr_fix(struct gc_state *g, unsigned id, unsigned level, bool root, const struct bkey *k,
			     const struct ptr_fix *pf)
{
	const struct bkfs_btree_ptr *bp = bkey_val(k);
	if (darray_room(g->ifix, g->ifix_cap, g->nr_ifix + 1, 64))
		return -BKFS_E_NOMEM;
	struct gc_iptr_fix *f = &g->ifix[g->nr_ifix++];
	memset(f, 0, sizeof(*f));
	f->btree_id = id;
	f->level = level;
	f->root = root;
	f->pos = k->p;
	f->min_key = bp->min_key;
	f->seq = bp->seq;
	for (unsigned i = 0; i < bp->nr_ptrs && i < BKFS_MAX_REPLICAS; i++)
		if (pf->drop[i])
			f->bad[f->nr_bad++] = bp->ptrs[i];
	return 0;
}

/* Check, repair and mark one key. *rewritten is set when the key was
 * replaced in the btree (the caller's iterator must restart). */
static bool dev_missing(struct bkfs_fs *fs, unsigned dev)
{
	return dev < fs->nr_devs && !fs->devs[dev].bd;
}

/* An erasure-coded pointer whose stripe still has enough blocks present to
 * rebuild it. */
static bool stripe_rebuilds(struct gc_state *g, const struct bkfs_ptr *p)
{
	const struct gc_stripe *s = (p->flags & PTR_HAS_STRIPE) ? gc_stripe_find(g, p->stripe_idx) : NULL;
	if (!s)
		return false;
	unsigned gone = 0;
	for (unsigned b = 0; b < s->nr_blocks; b++)
		gone += dev_missing(g->fs, s->ptrs[b].dev);
	return gone <= s->nr_redundant;
}

/* With a device missing: data whose every copy is there (and no stripe can
 * rebuild it) cannot be read. Nothing to repair: the device may come back. */
static void gc_check_readable(struct gc_state *g, unsigned id, unsigned level, const struct bkey *k)
{
	struct bkfs_ptr *ptrs;
	unsigned nr = bkey_ptrs(k, &ptrs), dirty = 0;
	for (unsigned i = 0; i < nr; i++) {
		if (ptrs[i].flags & PTR_CACHED)
			continue;
		if (!dev_missing(g->fs, ptrs[i].dev) || stripe_rebuilds(g, &ptrs[i]))
			return;
		dirty++;
	}
	if (!dirty)
		return;
	struct printbuf devs = PRINTBUF;
	for (unsigned i = 0; i < nr; i++)
		if (!(ptrs[i].flags & PTR_CACHED))
			pb_printf(&devs, "%s%u", devs.len ? ", " : "", ptrs[i].dev);
	gc_key_err(g, FSCK_ERR_data_unreadable, "none", id, level, k,
		   "%u sectors%s%llu: every copy is on a missing device (%s)", k->size,
		   id == BTREE_ID_extents ? " of inode " : " of shared data at ",
		   (unsigned long long)(id == BTREE_ID_extents ? k->p.inode : k->p.offset), pb_str(&devs));
	pb_exit(&devs);
}

static int gc_key(struct gc_state *g, unsigned id, unsigned level, bool root, const struct bkey *k, bool *rewritten)
{
	struct bkfs_fs *fs = g->fs;
	struct ptr_fix pf;
	struct bkey_buf nk;
	int ret;

	*rewritten = false;
	g->keys++;
	if (k->version > g->kv_limit) {
		if (gc_apply(g->c, gc_key_err(g, FSCK_ERR_bkey_version_in_future, "raise the filesystem's key version", id,
					      level, k, "version %llu, newest issued %llu", (unsigned long long)k->version,
					      (unsigned long long)g->kv_limit)))
			fs->key_version = MAX(fs->key_version, k->version);
		g->kv_limit = k->version;
	}

	if (id == BTREE_ID_alloc && !level) {
		if (k->type == KEY_TYPE_alloc && k->p.inode < fs->nr_devs && k->p.offset < g->nbuckets[k->p.inode] &&
		    bkey_val_bytes(k) >= sizeof(struct bkfs_alloc)) {
			const struct bkfs_alloc *a = bkey_val(k);
			struct gc_bucket *gb = gcb(g, k->p.inode, k->p.offset);
			gb->gen = a->gen;
			gb->flags |= GCB_GEN_VALID | GCB_HAS_ALLOC;
		}
		return 0;
	}

	if (g->c->missing_devs && !level && (k->type == KEY_TYPE_extent || k->type == KEY_TYPE_reflink_v))
		gc_check_readable(g, id, level, k);
	memset(&pf, 0, sizeof(pf));
	pf.fix_ok = true;
	const struct bkey *mk = k; /* the key as repaired: what gets marked */
	bool dead = false;         /* the repaired key is deleted */
	bool is_ptr = k->type == KEY_TYPE_btree_ptr;

	if (is_ptr) {
		const struct bkfs_btree_ptr *bp = bkey_val(k);
		if (!bp->nr_ptrs)
			return 0; /* a node not written yet: its old space is in pending_free */
		for (unsigned i = 0; i < bp->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
			const struct bkfs_ptr *p = &bp->ptrs[i];
			if (p->dev >= fs->nr_devs)
				continue;
			struct bkfs_member m = fs->sb.members[p->dev];
			m.btree_bitmap = g->bitmap[p->dev];
			if (member_bitmap_test(&m, p->offset, fs->sb.btree_node_size))
				continue;
			struct printbuf pb = PRINTBUF;
			ptr_to_text(&pb, p);
			if (gc_apply(g->c, gc_key_err(g, FSCK_ERR_btree_bitmap_not_marked, "mark the member's btree bitmap", id,
						      level, k, "%s: region not in the btree bitmap of device %u", pb_str(&pb),
						      p->dev)))
				member_bitmap_mark(fs, p->dev, p->offset, fs->sb.btree_node_size);
			pb_exit(&pb);
			/* the same bits member_bitmap_mark sets */
			for (u64 bit = p->offset >> m.btree_bitmap_shift;
			     bit <= (p->offset + fs->sb.btree_node_size - 1) >> m.btree_bitmap_shift && bit < 64; bit++)
				g->bitmap[p->dev] |= 1ull << bit;
		}
	}

	if (bkey_ptrs(k, NULL)) {
		gc_check_ptrs(g, id, level, k, &pf);
		if (pf.changed) {
			bool left = gc_apply_ptr_fix(k, &pf, &nk);
			mk = &nk.k;
			if (!left && k->type == KEY_TYPE_stripe) {
				dead = true;
			} else if (!left && !is_ptr) {
				/* no copy of the data is left: reads must fail, not return zeroes */
				struct bpos start = bkey_start_pos(k);
				if (!gc_key_err(g, FSCK_ERR_extent_all_ptrs_dropped, "replace by an error key (data lost)", id,
						level, k, "inode %llu sectors %llu..%llu: no pointer left",
						(unsigned long long)k->p.inode, (unsigned long long)start.offset,
						(unsigned long long)k->p.offset))
					pf.fix_ok = false;
				bkey_init(&nk.k, KEY_TYPE_error, k->p, 0);
				nk.k.size = k->size;
				nk.k.version = k->version;
			}
		}
	} else if (k->type == KEY_TYPE_reflink_p && id == BTREE_ID_extents) {
		memcpy(&nk, k, bkey_bytes(k));
		if (!gc_check_reflink_p(g, id, k, &nk, &pf.changed, &pf.fix_ok)) {
			bkey_init(&nk.k, KEY_TYPE_error, k->p, 0);
			nk.k.size = k->size;
			nk.k.version = k->version;
		}
		if (pf.changed)
			mk = &nk.k;
	}

	if (pf.changed && gc_apply(g->c, pf.fix_ok)) {
		if (level || root) {
			if ((ret = gc_defer_iptr_fix(g, id, level, root, k, &pf)))
				return ret;
		} else {
			struct bkey_buf w;
			if (dead)
				bkey_init(&w.k, KEY_TYPE_deleted, k->p, 0);
			else
				memcpy(&w, mk, bkey_bytes(mk));
			w.k.version = ++fs->key_version;
			if ((ret = btree_insert_key(fs, id, &w.k)))
				return ret;
			*rewritten = true;
			/* -n makes the same rewrite in memory: it reports the same loss */
			if (mk->type == KEY_TYPE_error && k->type != KEY_TYPE_error) {
				g->c->lost_extents++;
				g->c->lost_sectors += k->size;
			}
		}
	}

	if (dead)
		return 0;
	if (id == BTREE_ID_stripes && !level && mk->type == KEY_TYPE_stripe && (ret = gc_register_stripe(g, mk)))
		return ret;
	if (id == BTREE_ID_reflink && !level && k->type == KEY_TYPE_reflink_v) {
		size_t i = rl_first_after(g, k->p.offset - 1);
		struct gc_reflink *r = i < g->nr_rl && g->rl[i].end == k->p.offset ? &g->rl[i] : NULL;
		if (r && mk->type == KEY_TYPE_error)
			r->kind = RL_GONE;
		if (r && r->kind == RL_V && !r->refcount)
			return 0; /* unreferenced: the reflink sweep deletes it */
	}
	if (is_ptr && (ret = seqset_add(g, ((const struct bkfs_btree_ptr *)bkey_val(mk))->seq)))
		return ret;
	return bkfs_mark_key(&g->mc, id, level, mk, 1);
}

/* ---- the walk ---- */

static void gc_walk_error(struct gc_state *g, unsigned id, unsigned level, int err)
{
	fsck_err(g->c, FSCK_ERR_btree_node_read_error, "none (the allocation sweeps are skipped)",
		 "btree %s level %u", btree_id_str(id), level);
	fsck_err_msg(g->c, "walking the btree: %s", bkfs_strerror(err));
	g->walk_failed = true;
}

/* gc_key for a key read by a walk: keys with pointers are copied first (a
 * rewrite replaces them in their node) */
static int gc_walked_key(struct gc_state *g, unsigned id, unsigned level, struct bkey *k, bool *rewritten)
{
	*rewritten = false;
	if (k->type == KEY_TYPE_btree_ptr || bkey_ptrs(k, NULL) || k->type == KEY_TYPE_reflink_p ||
	    k->version > g->kv_limit || id == BTREE_ID_reflink) {
		struct bkey_buf kb;
		memcpy(&kb, k, bkey_bytes(k));
		return gc_key(g, id, level, false, &kb.k, rewritten);
	}
	return gc_key(g, id, level, false, k, rewritten); /* keys without pointers are never rewritten */
}

static int gc_walk_level_ra(struct gc_state *g, unsigned id, unsigned level, struct fsck_ra *ra)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	btree_iter_init(&it, g->fs, id, level, POS_MIN);
	while (1) {
		fsck_cache_trim(g->fs);
		fsck_ra_step(ra);
		if ((ret = btree_iter_peek(&it, &k))) {
			gc_walk_error(g, id, level, ret);
			return 0;
		}
		if (!k)
			return 0;
		bool rewritten;
		struct bpos p = k->p;
		if ((ret = gc_walked_key(g, id, level, k, &rewritten)) < 0)
			return ret;
		if (rewritten) {
			if (bpos_eq(p, POS_MAX))
				return 0;
			btree_iter_init(&it, g->fs, id, level, bpos_successor(p));
			continue;
		}
		btree_iter_advance(&it);
	}
}

static int gc_walk_level(struct gc_state *g, unsigned id, unsigned level)
{
	struct fsck_ra *ra = fsck_ra_level(g->fs, id, level, POS_MIN);
	int ret = gc_walk_level_ra(g, id, level, ra);
	fsck_ra_end(ra);
	return ret;
}

/* leaves: whether the walk includes level 0 (the fused walk below reads the
 * leaves of the filesystem btrees through the filesystem passes' scans) */
static int gc_walk_btree_levels(struct gc_state *g, unsigned id, bool leaves)
{
	struct bkfs_fs *fs = g->fs;
	struct btree *r;
	int ret = btree_root_get(fs, id, &r);
	if (ret) {
		gc_walk_error(g, id, fs->roots[id].ptr.level, ret);
		return 0;
	}
	unsigned rl = r->level;
	struct bkey_buf kb;
	bool rewritten;
	/* the alloc leaves first: they give every bucket its gen, which the
	 * alloc btree's own node pointers are checked against (alloc keys are
	 * never rewritten by the walk, so nothing is copied on write meanwhile) */
	if (id == BTREE_ID_alloc && (ret = gc_walk_level(g, id, 0)))
		return ret;
	bkey_init(&kb.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(struct bkfs_btree_ptr));
	memcpy(bkey_val(&kb.k), &fs->roots[id].ptr, sizeof(struct bkfs_btree_ptr));
	if ((ret = gc_key(g, id, rl + 1, true, &kb.k, &rewritten)))
		return ret;
	for (int l = rl; l >= (id == BTREE_ID_alloc || !leaves ? 1 : 0); l--)
		if ((ret = gc_walk_level(g, id, l)))
			return ret;
	return 0;
}

static int gc_walk_btree(struct gc_state *g, unsigned id)
{
	return gc_walk_btree_levels(g, id, true);
}

static int gc_fused_hook(void *arg, unsigned id, struct bkey *k)
{
	struct gc_state *g = arg;
	bool rewritten;
	int ret = gc_walked_key(g, id, 0, k, &rewritten);
	if (g->c->trapped)
		return -BKFS_E_RETRY;
	return ret < 0 ? ret : 0; /* after a rewrite the scan's iterator steps past the key */
}

/* The extents, inodes, dirents and xattrs btrees: interior levels as usual,
 * leaves through the filesystem passes' first scans, which hand every key
 * they read to gc_key. Those leaves are most of the metadata: this way they
 * are read once for both passes. */
static int gc_walk_fused(struct gc_state *g)
{
	static const unsigned ids[] = { BTREE_ID_extents, BTREE_ID_inodes, BTREE_ID_dirents, BTREE_ID_xattrs };
	int ret;
	for (unsigned i = 0; i < ARRAY_SIZE(ids); i++)
		if ((ret = gc_walk_btree_levels(g, ids[i], false)))
			return ret;
	if (g->walk_failed)
		return 0;
	struct fsck_key_hook hook = { gc_fused_hook, g };
	ret = fsck_fs_prescan(g->c, &hook);
	if (ret == -BKFS_E_NOMEM || ret == -BKFS_E_AGAIN || ret == -BKFS_E_RETRY)
		return ret;
	if (ret)
		gc_walk_error(g, BTREE_ID_extents, 0, ret);
	else
		g->fused_done = true;
	return 0;
}

/* Superblock and journal buckets, by the rule format uses. */
static void gc_mark_sb_journal(struct gc_state *g)
{
	struct bkfs_fs *fs = g->fs;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		for (u64 b = 0; b < g->nbuckets[d]; b++) {
			u32 sectors;
			unsigned t = sb_journal_bucket_type(fs, d, b, &sectors);
			if (t == DATA_free)
				continue;
			struct gc_bucket *gb = gcb(g, d, b);
			gb->data_type = t;
			gb->dirty_sectors += sectors;
		}
}

/* Copy nodes whose pointers lost replicas, and strip the bad replicas from
 * the space released at the checkpoint. */
static void gc_apply_iptr_fixes(struct gc_state *g)
{
	struct bkfs_fs *fs = g->fs;
	for (size_t i = 0; i < g->nr_ifix; i++) {
		struct gc_iptr_fix *f = &g->ifix[i];
		bool found = false;
		for (int pass = 0; pass < 2 && !found; pass++) {
			for (size_t j = 0; j < fs->nr_pending_free; j++) {
				struct bkfs_btree_ptr *p = &fs->pending_free[j];
				if (p->seq != f->seq)
					continue;
				unsigned n = 0;
				for (unsigned x = 0; x < p->nr_ptrs && x < BKFS_MAX_REPLICAS; x++) {
					bool bad = false;
					for (unsigned y = 0; y < f->nr_bad; y++)
						bad |= !memcmp(&p->ptrs[x], &f->bad[y], sizeof(f->bad[y]));
					if (!bad)
						p->ptrs[n++] = p->ptrs[x];
				}
				for (unsigned x = n; x < BKFS_MAX_REPLICAS; x++)
					memset(&p->ptrs[x], 0, sizeof(p->ptrs[x]));
				p->nr_ptrs = n;
				found = true;
			}
			if (found || pass)
				break;
			/* copy the node on write */
			if (f->root) {
				struct btree *r;
				if (!btree_root_get(fs, f->btree_id, &r) && r->seq == f->seq)
					btree_node_mark_dirty(fs, r);
				continue;
			}
			struct btree_iter it;
			struct bkey *k;
			btree_iter_init(&it, fs, f->btree_id, 0, f->min_key);
			if (!btree_iter_peek(&it, &k) && k && bpos_cmp(k->p, f->pos) <= 0) {
				struct bkey_buf kb;
				memcpy(&kb, k, bkey_bytes(k));
				btree_insert_key(fs, f->btree_id, &kb.k); /* same key: copies the path */
			} else {
				struct bkey dummy;
				bkey_init(&dummy, KEY_TYPE_error, f->min_key, 0);
				if (!btree_insert_key(fs, f->btree_id, &dummy)) {
					dummy.type = KEY_TYPE_deleted;
					btree_insert_key(fs, f->btree_id, &dummy);
				}
			}
		}
	}
}

/* Space held by nodes replaced since the last checkpoint: still allocated
 * until the checkpoint releases it. Nodes marked from the tree are skipped. */
static int gc_mark_pending_free(struct gc_state *g)
{
	struct bkfs_fs *fs = g->fs;
	int ret;
	for (size_t i = 0; i < fs->nr_pending_free; i++) {
		const struct bkfs_btree_ptr *p = &fs->pending_free[i];
		if (!p->nr_ptrs || seqset_has(g, p->seq))
			continue;
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(*p));
		memcpy(bkey_val(&kb.k), p, sizeof(*p));
		if ((ret = seqset_add(g, p->seq)) ||
		    (ret = bkfs_mark_key(&g->mc, fs->pending_free_btree[i], 1, &kb.k, 1)))
			return ret;
	}
	return 0;
}

static int gc_build_reflink_table(struct gc_state *g)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, g->fs, BTREE_ID_reflink, POS_MIN, k, ret) {
		if ((k->type != KEY_TYPE_reflink_v && k->type != KEY_TYPE_error) || k->p.inode || !k->size)
			continue;
		if (g->nr_rl && g->rl[g->nr_rl - 1].end > bkey_start_pos(k).offset)
			continue; /* overlapping: the first one counts */
		if (darray_room(g->rl, g->rl_cap, g->nr_rl + 1, 64))
			return -BKFS_E_NOMEM;
		g->rl[g->nr_rl++] = (struct gc_reflink){
			.end = k->p.offset, .size = k->size, .kind = k->type == KEY_TYPE_error ? RL_COVER : RL_V,
		};
	}
	if (ret) {
		gc_walk_error(g, BTREE_ID_reflink, 0, ret);
		return 0;
	}
	return 0;
}

/* ---- sweeps ---- */

static const char *const alloc_field_names[] = {
	"data_type", "gen", "dirty_sectors", "stripe_sectors", "cached_sectors", "stripe", "stripe_redundancy",
	"fragmentation_lru", "oldest_gen",
};
static const unsigned alloc_field_errs[] = {
	FSCK_ERR_alloc_key_data_type_wrong, FSCK_ERR_alloc_key_gen_wrong,
	FSCK_ERR_alloc_key_dirty_sectors_wrong, FSCK_ERR_alloc_key_stripe_sectors_wrong,
	FSCK_ERR_alloc_key_cached_sectors_wrong, FSCK_ERR_alloc_key_stripe_wrong,
	FSCK_ERR_alloc_key_stripe_redundancy_wrong, FSCK_ERR_alloc_key_fragmentation_lru_wrong,
	FSCK_ERR_alloc_key_oldest_gen_wrong,
};

static u64 alloc_field(const struct bkfs_alloc *a, unsigned f)
{
	switch (f) {
	case 0: return a->data_type;
	case 1: return a->gen;
	case 2: return a->dirty_sectors;
	case 3: return a->stripe_sectors;
	case 4: return a->cached_sectors;
	case 5: return a->stripe;
	case 6: return a->stripe_redundancy;
	case 7: return a->fragmentation_lru;
	default: return a->oldest_gen; /* never newer than gen */
	}
}

static int gc_alloc_sweep(struct gc_state *g)
{
	struct bkfs_fs *fs = g->fs;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		s64 dt[DATA_NR][3];
		memset(dt, 0, sizeof(dt));
		for (u64 b = 0; b < g->nbuckets[d]; b++) {
			struct gc_bucket *gb = gcb(g, d, b);
			const struct bkfs_alloc *stored = bucket_get(fs, d, b);
			struct bkfs_alloc exp = *stored;
			bool missing = !(gb->flags & GCB_HAS_ALLOC);
			if (missing) {
				memset(&exp, 0, sizeof(exp));
				exp.oldest_gen = gb->gen;
			}
			exp.gen = gb->gen;
			exp.dirty_sectors = gb->dirty_sectors;
			exp.cached_sectors = gb->cached_sectors;
			exp.stripe_sectors = gb->stripe_sectors;
			exp.stripe = gb->flags & GCB_STRIPE ? (u32)gc_bucket_stripe(g, d, b) : 0;
			exp.stripe_redundancy = gb->flags & GCB_STRIPE ? gb->stripe_redundancy : 0;
			if (gen_cmp(exp.oldest_gen, exp.gen) > 0)
				exp.oldest_gen = exp.gen;
			exp.data_type = alloc_data_type(&exp, gb->data_type ? gb->data_type : DATA_user);
			exp.fragmentation_lru = alloc_fragmentation(&exp, bucket_sectors(fs));

			s64 v[3];
			struct bpos pos = bucket_acct_counters(fs, d, &exp, v);
			unsigned t = pos.offset & 0xff;
			if (t < DATA_NR) {
				dt[t][0] += v[0];
				dt[t][1] += v[1];
				dt[t][2] += v[2];
			} else {
				gc_acct_add(g, pos, v[0], v[1], v[2]);
			}

			bool fix = false;
			if (missing) {
				struct printbuf pb = PRINTBUF;
				alloc_to_text(&pb, &exp);
				fix = fsck_err(g->c, FSCK_ERR_alloc_key_missing, "create the alloc key", "dev %u bucket %llu", d,
					       (unsigned long long)b);
				fsck_err_msg(g->c, "should be %s", pb_str(&pb));
				pb_exit(&pb);
			} else if (memcmp(stored, &exp, sizeof(exp))) {
				for (unsigned f = 0; f < ARRAY_SIZE(alloc_field_errs); f++) {
					u64 got = alloc_field(stored, f), want = alloc_field(&exp, f);
					if (got == want)
						continue;
					fix |= fsck_err(g->c, alloc_field_errs[f], "correct the alloc key", "dev %u bucket %llu",
							d, (unsigned long long)b);
					if (!f)
						fsck_err_msg(g->c, "%s got %s should be %s", alloc_field_names[f],
							     data_type_str(got), data_type_str(want));
					else
						fsck_err_msg(g->c, "%s got %llu should be %llu", alloc_field_names[f],
							     (unsigned long long)got, (unsigned long long)want);
				}
			} else {
				continue;
			}
			if (gc_apply(g->c, fix))
				gc_bucket_repair(fs, d, b, &exp);
		}
		for (unsigned t = 0; t < DATA_NR; t++)
			gc_acct_add(g, acct_pos_dev_data_type(d, t), dt[t][0], dt[t][1], dt[t][2]);
	}
	return 0;
}

static int gc_acct_sweep(struct gc_state *g, const struct acct_entry *snap, size_t nr_snap)
{
	struct bkfs_fs *fs = g->fs;
	static const s64 zero[3];
	size_t i = 0, j = 0;
	/* a counter neither stored nor marked may still be in memory: the alloc
	 * sweep's repairs moved it (bucket_update). It is swept too (its
	 * marked value is 0), or the repair's delta would be written as a
	 * negative counter */
	struct alloc_state *as = ALLOC(fs);
	for (size_t k = 0; k < as->nr_acct; k++)
		if (!gc_acct_get(g, as->acct[k].pos))
			return -BKFS_E_NOMEM;
	while (i < nr_snap || j < g->nr_acct) {
		int c = i >= nr_snap ? 1 : j >= g->nr_acct ? -1 : bpos_cmp(snap[i].pos, g->acct[j].pos);
		struct bpos pos = c <= 0 ? snap[i].pos : g->acct[j].pos;
		const s64 *got = c <= 0 ? snap[i].v : zero;
		const s64 *want = c >= 0 ? g->acct[j].v : zero;
		bool set;
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
		if (memcmp(got, want, sizeof(zero))) {
			/* acct_to_text gives "<counter>: <values>" */
			struct printbuf a = PRINTBUF, b = PRINTBUF;
			acct_to_text(&a, fs, pos, got);
			acct_to_text(&b, fs, pos, want);
			const char *ga = strstr(pb_str(&a), ": "), *gb = strstr(pb_str(&b), ": ");
			int name_len = ga ? (int)(ga - pb_str(&a)) : (int)a.len;
			set = gc_apply(g->c, fsck_err(g->c, FSCK_ERR_accounting_mismatch, "set the counter", "accounting %.*s",
						      name_len, pb_str(&a)));
			fsck_err_msg(g->c, "got %s should be %s", ga ? ga + 2 : pb_str(&a), gb ? gb + 2 : pb_str(&b));
			pb_exit(&a);
			pb_exit(&b);
		} else {
			/* right before the sweeps; the alloc sweep's repairs may
			 * have moved it since (bucket_update keeps dev_data_type in
			 * step with each bucket): put it back */
			set = gc_apply(g->c, g->c->changed && fsck_may_fix(g->c));
		}
		if (!set)
			continue;
		struct acct_entry *e = acct_find(fs, pos, false);
		if (e ? !memcmp(e->v, want, sizeof(zero)) : !memcmp(want, zero, sizeof(zero)))
			continue;
		if (!e && !(e = acct_find(fs, pos, true)))
			return -BKFS_E_NOMEM;
		/* written as an accounting key by fsck_commit_repairs() */
		memcpy(e->v, want, sizeof(e->v));
		e->dirty = true;
	}
	return 0;
}

static int gc_stripe_sweep(struct gc_state *g)
{
	struct bkfs_fs *fs = g->fs;
	for (size_t i = 0; i < g->nr_st; i++) {
		struct gc_stripe *s = &g->st[i];
		struct bkey_buf kb;
		if (btree_lookup(fs, BTREE_ID_stripes, POS(0, s->idx), &kb) || kb.k.type != KEY_TYPE_stripe)
			continue;
		struct bkfs_stripe *v = bkey_val(&kb.k);
		if (v->nr_blocks != s->nr_blocks)
			continue;
		u16 *bs = stripe_block_sectors(v);
		struct printbuf pb = PRINTBUF;
		bool differ = false;
		for (unsigned b = 0; b < s->nr_blocks; b++) {
			u16 want = s->counted[b] > UINT16_MAX ? UINT16_MAX : (u16)s->counted[b];
			if (bs[b] != want) {
				pb_printf(&pb, "%sblock %u got %u should be %u", differ ? ", " : "", b, bs[b], want);
				differ = true;
			}
			bs[b] = want;
		}
		if (differ) {
			bool fix = gc_key_err(g, FSCK_ERR_stripe_sector_count_wrong, "rewrite the block counts",
					      BTREE_ID_stripes, 0, &kb.k, "%s", pb_str(&pb));
			if (gc_apply(g->c, fix)) {
				kb.k.version = ++fs->key_version;
				int ret = btree_insert_key(fs, BTREE_ID_stripes, &kb.k);
				if (ret) {
					pb_exit(&pb);
					return ret;
				}
			}
		}
		pb_exit(&pb);
	}
	return 0;
}

static int gc_reflink_sweep(struct gc_state *g)
{
	struct bkfs_fs *fs = g->fs;
	for (size_t i = 0; i < g->nr_rl; i++) {
		struct gc_reflink *r = &g->rl[i];
		struct bkey_buf kb;
		if (r->kind != RL_V)
			continue;
		if (btree_lookup(fs, BTREE_ID_reflink, POS(0, r->end), &kb) || kb.k.type != KEY_TYPE_reflink_v)
			continue;
		struct bkfs_reflink_v *v = bkey_val(&kb.k);
		if (v->refcount == r->refcount)
			continue;
		bool fix = gc_key_err(g, FSCK_ERR_reflink_v_refcount_wrong,
				      r->refcount ? "set the refcount" : "delete the unreferenced indirect extent",
				      BTREE_ID_reflink, 0, &kb.k, "refcount got %llu should be %llu",
				      (unsigned long long)v->refcount, (unsigned long long)r->refcount);
		if (!gc_apply(g->c, fix))
			continue;
		if (r->refcount) {
			v->refcount = r->refcount;
		} else {
			kb.k.type = KEY_TYPE_deleted;
			kb.k.u64s = BKEY_U64s;
		}
		kb.k.version = ++fs->key_version;
		int ret = btree_insert_key(fs, BTREE_ID_reflink, &kb.k);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- the pass ---- */

static void gc_state_exit(struct gc_state *g)
{
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		ca_exit(&g->buckets[d]);
	for (size_t i = 0; i < g->nr_st; i++) {
		free(g->st[i].ptrs);
		free(g->st[i].counted);
	}
	free(g->st);
	free(g->bst);
	free(g->acct);
	free(g->rl);
	free(g->seqs);
	free(g->ifix);
}

static u64 nbuckets_total(struct gc_state *g)
{
	u64 n = 0;
	for (unsigned d = 0; d < g->fs->nr_devs; d++)
		n += g->nbuckets[d];
	return n;
}

u64 fsck_gc_mem_estimate(struct bkfs_fs *fs)
{
	u64 buckets = 0, bytes = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		buckets += fs->sb.members[d].nbuckets;
	bytes += buckets * sizeof(struct gc_bucket);
	if (fs->alloc) {
		struct acct_entry *e = acct_find(fs, acct_pos_reflink(), false);
		u64 nodes = 0;
		/* reflink table */
		if (e && e->v[0] > 0)
			bytes += (u64)e->v[0] * sizeof(struct gc_reflink) * 2;
		/* node seq set: one slot per node, at most half full */
		for (unsigned id = 0; id < BTREE_ID_NR; id++) {
			struct acct_entry *b = acct_find(fs, acct_pos_btree(id), false);
			if (b && b->v[0] > 0)
				nodes += (u64)b->v[0] / MAX(1u, fs->sb.btree_node_size);
		}
		bytes += (nodes + fs->nr_pending_free) * 2 * sizeof(u64) * 2;
		/* shadow and snapshot accounting */
		bytes += ALLOC(fs)->nr_acct * (sizeof(struct gc_acct) + sizeof(struct acct_entry)) * 2;
	}
	return bytes + sizeof(struct gc_state);
}

int fsck_check_allocations(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	struct gc_state *g = xcalloc(1, sizeof(*g));
	struct acct_entry *snap = NULL;
	size_t nr_snap = 0, nr_findings = c->nr;
	int ret = 0;

	u64 nodes_read = fs->nodes_read, t_start = now_ns();
	if (!g || !fs->alloc)
		return g ? (free(g), -BKFS_E_INVAL) : -BKFS_E_NOMEM;
	g->c = c;
	g->fs = fs;
	g->mc = (struct mark_ctx){ .ops = &gc_mark_ops, .fs = fs, .priv = g };
	g->kv_limit = MAX(fs->key_version, fs->sb.key_version);
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		g->nbuckets[d] = fs->sb.members[d].nbuckets;
		g->bitmap[d] = fs->sb.members[d].btree_bitmap;
		if ((ret = ca_init(&g->buckets[d], sizeof(struct gc_bucket), g->nbuckets[d])))
			goto out;
	}
	/* the stored accounting as it was before any repair */
	nr_snap = ALLOC(fs)->nr_acct;
	snap = malloc(MAX(nr_snap, (size_t)1) * sizeof(*snap));
	if (!snap) {
		ret = -BKFS_E_NOMEM;
		goto out;
	}
	if (nr_snap)
		memcpy(snap, ALLOC(fs)->acct, nr_snap * sizeof(*snap));

	if ((ret = gc_build_reflink_table(g)))
		goto out;
	static const unsigned order[] = {
		BTREE_ID_alloc, BTREE_ID_stripes, BTREE_ID_extents, BTREE_ID_inodes, BTREE_ID_dirents,
		BTREE_ID_xattrs, BTREE_ID_reflink, BTREE_ID_accounting, BTREE_ID_orphans,
	};
	_Static_assert(ARRAY_SIZE(order) == BTREE_ID_NR, "every btree is walked");
	bool fuse = c->fuse_fs;
	/* leaves check_topology left to this walk: trapped until it is over */
	u64 read_errors = fs->node_read_errors, skipped = fs->invalid_keys_skipped;
	c->trap = c->leaves_deferred != 0;
	for (unsigned i = 0; i < ARRAY_SIZE(order); i++) {
		if (fuse && fsck_fused_btree(order[i])) {
			if (order[i] == BTREE_ID_extents && (ret = gc_walk_fused(g)))
				goto out;
			continue;
		}
		if ((ret = gc_walk_btree(g, order[i])))
			goto out;
		if (c->trapped) {
			ret = -BKFS_E_RETRY;
			goto out;
		}
		if (order[i] == BTREE_ID_alloc)
			gc_mark_sb_journal(g);
		if (order[i] == BTREE_ID_stripes && g->nr_bst)
			qsort(g->bst, g->nr_bst, sizeof(*g->bst), bst_cmp);
	}
	if (c->trap) {
		c->trap = false;
		if (c->trapped || !g->fused_done || fs->node_read_errors != read_errors ||
		    fs->invalid_keys_skipped != skipped) {
			ret = -BKFS_E_RETRY;
			goto out;
		}
		c->leaves_deferred = 0; /* every one was read, and sound */
	}
	gc_apply_iptr_fixes(g);
	if ((ret = gc_mark_pending_free(g)))
		goto out;
	if (g->walk_failed) {
		/* an unreadable subtree holds space the sweeps cannot see:
		 * "repairing" from an incomplete picture would free live data */
		goto out;
	}
	u64 t_sweep = now_ns();
	if ((ret = gc_alloc_sweep(g)) || (ret = gc_acct_sweep(g, snap, nr_snap)) || (ret = gc_stripe_sweep(g)) ||
	    (ret = gc_reflink_sweep(g)))
		goto out;
	if (c->opts.verbose)
		fprintf(stderr, "bkfs fsck: check_allocations: %llu keys, %llu pointers, %llu nodes read in %.3fs; "
			"%llu buckets, %zu accounting counters swept in %.3fs\n",
			(unsigned long long)g->keys, (unsigned long long)g->ptrs,
			(unsigned long long)(fs->nodes_read - nodes_read), (t_sweep - t_start) / 1e9,
			(unsigned long long)nbuckets_total(g), g->nr_acct, (now_ns() - t_sweep) / 1e9);
out:
	c->trap = c->trapped = false;
	/* the scans' result holds only while nothing was found (and so
	 * nothing was changed) since */
	if (ret || c->nr != nr_findings || g->walk_failed)
		fsck_fs_prescan_drop(c);
	free(snap);
	gc_state_exit(g);
	free(g);
	return ret;
}

/* ---- check_alloc_info ----
 * The derived state kept in alloc keys: journal_seq (the update that last
 * changed the bucket) cannot be newer than the journal itself; need_discard
 * (ALLOC_NEED_DISCARD) only on an empty bucket. bkfs keeps no freespace /
 * need_discard / LRU btrees: those indexes are rebuilt in memory at open. */

int fsck_check_alloc_info(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	u64 cur = journal_cur_seq(fs);
	if (!fs->alloc)
		return -BKFS_E_INVAL;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		u64 nb = fs->sb.members[d].nbuckets;
		for (u64 b = 0; b < nb; b++) {
			struct bkfs_alloc a = *bucket_get(fs, d, b);
			bool fix = false;
			if (a.journal_seq > cur) {
				u64 seq = a.journal_seq;
				if (gc_apply(c, fsck_err(c, FSCK_ERR_alloc_key_journal_seq_in_future, "set it to 0",
							 "dev %u bucket %llu", d, (unsigned long long)b))) {
					a.journal_seq = 0;
					fix = true;
				}
				fsck_err_msg(c, "journal_seq %llu, the journal is at %llu", (unsigned long long)seq,
					     (unsigned long long)cur);
			}
			/* need_discard is the resting state of an emptied bucket
			 * only; on a bucket holding data the flag is stale */
			if ((a.flags & ALLOC_NEED_DISCARD) && (a.dirty_sectors || a.cached_sectors || a.stripe_sectors)) {
				if (gc_apply(c, fsck_err(c, FSCK_ERR_alloc_key_need_discard_wrong, "clear the flag",
							 "dev %u bucket %llu", d, (unsigned long long)b))) {
					a.flags &= ~ALLOC_NEED_DISCARD;
					fix = true;
				}
				fsck_err_msg(c, "need_discard set on a %s bucket", data_type_str(a.data_type));
			}
			/* ALLOC_NEED_INC_GEN on an empty bucket is not checked: the
			 * engine defers every gen bump to the bucket's reuse
			 * (alloc_bucket), so that is the normal resting state, and
			 * no pointer can carry the bucket's gen while it is empty */
			if (fix)
				gc_bucket_repair(fs, d, b, &a);
		}
	}
	return 0;
}
