/* triggers.c - one implementation of every marking rule. bkfs_mark_key()
 * decides what a key means for buckets and counters; the mark_ops decide
 * where that goes (live state here, the checker's shadow state in fsck). */
#include "alloc.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <string.h>

u32 ptr_disk_sectors(struct bkfs_fs *fs, const struct bkey *k, unsigned level)
{
	if (level || k->type == KEY_TYPE_btree_ptr)
		return fs->sb.btree_node_size;
	return k->size;
}

static int mark_data_ptrs(struct mark_ctx *c, const struct bkey *k, struct bkfs_ptr *ptrs,
			  unsigned nr, int sign)
{
	s64 sectors = (s64)sign * k->size;
	u32 dirty_mask = 0;
	s64 dirty_sectors = 0;
	int ret;
	for (unsigned i = 0; i < nr; i++) {
		const struct bkfs_ptr *p = &ptrs[i];
		if (p->flags & PTR_CACHED) {
			ret = c->ops->bucket(c, p, DATA_user, sectors, CNT_CACHED);
			if (ret < 0)
				return ret;
			if (!ret) /* 1 = stale cached pointer, not counted */
				c->ops->acct(c, acct_pos_replicas(DATA_cached, 1, 1u << (p->dev & 31)), sectors, 0, 0);
		} else if (p->flags & PTR_HAS_STRIPE) {
			if ((ret = c->ops->bucket(c, p, DATA_user, sectors, CNT_STRIPE)) < 0)
				return ret;
			if (c->ops->stripe_ptr && (ret = c->ops->stripe_ptr(c, p, sectors)) < 0)
				return ret;
			/* erasure-coded data counts as user data on its device */
			dirty_mask |= 1u << (p->dev & 31);
			dirty_sectors += sectors;
		} else {
			if ((ret = c->ops->bucket(c, p, DATA_user, sectors, CNT_DIRTY)) < 0)
				return ret;
			dirty_mask |= 1u << (p->dev & 31);
			dirty_sectors += sectors;
		}
	}
	if (dirty_mask)
		c->ops->acct(c, acct_pos_replicas(DATA_user, 1, dirty_mask), dirty_sectors, 0, 0);
	return 0;
}

/* ---- what each key type marks ---- */

static int trigger_btree_ptr(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	const struct bkfs_btree_ptr *bp = bkey_val(k);
	s64 s = (s64)sign * c->fs->sb.btree_node_size;
	u32 mask = 0;
	int ret;
	for (unsigned i = 0; i < bp->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		if ((ret = c->ops->bucket(c, &bp->ptrs[i], DATA_btree, s, CNT_DIRTY)) < 0)
			return ret;
		mask |= 1u << (bp->ptrs[i].dev & 31);
	}
	if (bp->nr_ptrs) {
		c->ops->acct(c, acct_pos_btree(btree_id), s * bp->nr_ptrs, 0, 0);
		c->ops->acct(c, acct_pos_replicas(DATA_btree, 1, mask), s * bp->nr_ptrs, 0, 0);
	}
	return 0;
}

static int trigger_extent(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	struct bkfs_ptr *ptrs;
	unsigned nr = bkey_ptrs(k, &ptrs);
	return mark_data_ptrs(c, k, ptrs, nr, sign);
}

static int trigger_reflink_v(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	c->ops->acct(c, acct_pos_reflink(), sign, (s64)sign * k->size, 0);
	return trigger_extent(c, btree_id, k, sign);
}

static int trigger_reservation(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	const struct bkfs_reservation *r = bkey_val(k);
	c->ops->acct(c, acct_pos_reserved(r->nr_replicas), (s64)sign * k->size, 0, 0);
	return 0;
}

static int trigger_inode(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	c->ops->acct(c, acct_pos_nr_inodes(), sign, 0, 0);
	return 0;
}

static int trigger_reflink_p(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	const struct bkfs_reflink_p *r = bkey_val(k);
	u64 start = r->idx >= r->front_pad ? r->idx - r->front_pad : 0;
	u64 end = r->idx + k->size + r->back_pad;
	return c->ops->reflink ? c->ops->reflink(c, start, end, sign) : 0;
}

static int trigger_stripe(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign)
{
	struct bkfs_stripe *s = bkey_val(k);
	s64 sectors = (s64)sign * s->sectors;
	u32 mask = 0;
	int ret;
	for (unsigned i = 0; i < s->nr_blocks; i++) {
		bool parity = i >= (unsigned)(s->nr_blocks - s->nr_redundant);
		if (parity && (ret = c->ops->bucket(c, &s->ptrs[i], DATA_parity, sectors, CNT_DIRTY)) < 0)
			return ret;
		mask |= 1u << (s->ptrs[i].dev & 31);
	}
	c->ops->acct(c, acct_pos_replicas(DATA_parity, s->nr_blocks - s->nr_redundant, mask),
		     sectors * s->nr_redundant, 0, 0);
	return c->ops->stripe ? c->ops->stripe(c, k, sign) : 0;
}

/* The marking method of each key type (the format layer's struct bkey_ops
 * has the rest); a type not named here marks nothing. */
typedef int (*key_trigger_fn)(struct mark_ctx *c, unsigned btree_id, const struct bkey *k, int sign);
static const key_trigger_fn key_triggers[KEY_TYPE_MAX] = {
	[KEY_TYPE_btree_ptr]   = trigger_btree_ptr,
	[KEY_TYPE_extent]      = trigger_extent,
	[KEY_TYPE_reservation] = trigger_reservation,
	[KEY_TYPE_inode]       = trigger_inode,
	[KEY_TYPE_stripe]      = trigger_stripe,
	[KEY_TYPE_reflink_p]   = trigger_reflink_p,
	[KEY_TYPE_reflink_v]   = trigger_reflink_v,
};

int bkfs_mark_key(struct mark_ctx *c, unsigned btree_id, unsigned level, const struct bkey *k, int sign)
{
	if (!k || bkey_deleted(k) || k->type >= KEY_TYPE_MAX || !key_triggers[k->type])
		return 0;
	return key_triggers[k->type](c, btree_id, k, sign);
}

/* ---- normal mode: the live bucket state ---- */

static int normal_bucket(struct mark_ctx *c, const struct bkfs_ptr *p, unsigned data_type,
			 s64 sectors, enum bucket_counter cnt)
{
	struct bkfs_fs *fs = c->fs;
	if (p->dev >= fs->nr_devs)
		return cnt == CNT_CACHED ? 1 : -BKFS_E_CORRUPT;
	u64 b = ptr_bucket(fs, p);
	if (b >= fs->sb.members[p->dev].nbuckets)
		return -BKFS_E_CORRUPT;
	struct bkfs_alloc a = *bucket_get(fs, p->dev, b);
	if (p->gen != a.gen) {
		if (cnt == CNT_CACHED)
			return 1; /* stale cached pointer: ignored */
		return -BKFS_E_CORRUPT;
	}
	bool was_empty = !a.dirty_sectors && !a.cached_sectors && !a.stripe_sectors;
	u32 *ctr = cnt == CNT_DIRTY ? &a.dirty_sectors : cnt == CNT_CACHED ? &a.cached_sectors : &a.stripe_sectors;
	s64 v = (s64)*ctr + sectors;
	*ctr = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (u32)v;
	bool now_empty = !a.dirty_sectors && !a.cached_sectors && !a.stripe_sectors;
	if (sectors > 0 && was_empty) {
		a.io_time[1] = fs->clock;
		/* refilled through the write point that still holds it open:
		 * not to be discarded any more */
		a.flags &= ~ALLOC_NEED_DISCARD;
	}
	if (cnt == CNT_CACHED && sectors > 0)
		a.io_time[0] = fs->clock;
	if (!was_empty && now_empty) {
		/* the bucket held data and is empty now: no reuse until the
		 * update that emptied it is durable, and a new generation when
		 * it is reused (not now: pointers into it may have been handed
		 * to a transaction that has not committed yet) */
		a.journal_seq = c->t ? c->t->journal_seq : journal_cur_seq(fs);
		a.flags |= ALLOC_NEED_INC_GEN;
		/* given back to the device once that update is durable */
		if (fs->flags & BKFS_OPEN_DISCARD)
			a.flags |= ALLOC_NEED_DISCARD;
	}
	a.data_type = alloc_data_type(&a, data_type);
	bucket_update(fs, p->dev, b, &a);
	return 0;
}

static void normal_acct(struct mark_ctx *c, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	acct_add(c->fs, pos, v0, v1, v2);
}

/* reflink: every indirect extent overlapping [start, end) gains/loses a ref.
 * The refcount changes from what t leaves (several reflink pointers of one
 * indirect extent may change in one transaction); a pending deletion counts
 * as refcount 0, with the btree's key as the value. */
static int normal_reflink(struct mark_ctx *c, u64 start, u64 end, int sign)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	btree_iter_init(&it, c->fs, BTREE_ID_reflink, 0, POS(0, start + 1));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == 0 && bkey_start_pos(k).offset < end) {
		if (k->type == KEY_TYPE_reflink_v && c->t) {
			struct bkey_buf kb;
			/* the latest update t queued there (triggers of earlier keys may have
			 * queued refcount changes, after the ones applied) */
			const struct bkey *pk = trans_pending(c->t, BTREE_ID_reflink, k->p);
			bool gone = pk && bkey_deleted(pk);
			memcpy(&kb, pk && !gone ? pk : k, bkey_bytes(pk && !gone ? pk : k));
			struct bkfs_reflink_v *v = bkey_val(&kb.k);
			if (gone)
				v->refcount = 0;
			v->refcount += sign;
			if ((s64)v->refcount <= 0)
				bkey_init(&kb.k, KEY_TYPE_deleted, k->p, 0);
			if ((!gone || !bkey_deleted(&kb.k)) && (ret = trans_update(c->t, BTREE_ID_reflink, &kb.k)))
				return ret;
		}
		btree_iter_advance(&it);
	}
	return ret;
}

/* The update of t to the stripes btree at p not applied yet, or NULL:
 * updates at or before the one being applied are in the btree already. */
static struct bkey *stripe_pending(struct trans *t, struct bpos p)
{
	return trans_pending_from(t, BTREE_ID_stripes, p, t->applying + 1);
}

/* An erasure-coded pointer adds sectors to its block's count in the stripe
 * key: one pending update of the stripe per transaction, changed in place.
 * A stripe whose data blocks all reach zero is deleted after the commit
 * (alloc_delete_empty_stripes): a later update of the same transaction may
 * still add to it. Under fsck a missing stripe is the checker's to report. */
static int normal_stripe_ptr(struct mark_ctx *c, const struct bkfs_ptr *p, s64 sectors)
{
	struct trans *t = c->t;
	struct bkfs_fs *fs = c->fs;
	struct bpos pos = POS(0, p->stripe_idx);
	bool tolerant = fs->flags & BKFS_OPEN_FSCK;
	if (!t)
		return tolerant ? 0 : -BKFS_E_INVAL;
	struct bkey *k = stripe_pending(t, pos);
	struct bkey_buf kb;
	if (!k) {
		int ret = btree_lookup(fs, BTREE_ID_stripes, pos, &kb);
		if (ret && ret != -BKFS_E_NOENT)
			return ret;
		if (ret || kb.k.type != KEY_TYPE_stripe)
			return tolerant ? 0 : -BKFS_E_CORRUPT;
		k = &kb.k;
	} else if (k->type != KEY_TYPE_stripe) {
		return tolerant ? 0 : -BKFS_E_CORRUPT;
	}
	struct bkfs_stripe *s = bkey_val(k);
	if (p->stripe_block >= s->nr_blocks - s->nr_redundant)
		return tolerant ? 0 : -BKFS_E_CORRUPT;
	u16 *bs = stripe_block_sectors(s);
	s64 v = (s64)bs[p->stripe_block] + sectors;
	bs[p->stripe_block] = v < 0 ? 0 : v > UINT16_MAX ? UINT16_MAX : (u16)v;
	if (sectors < 0 && stripe_data_empty(s) && !tolerant)
		alloc_note_empty_stripe(fs, p->stripe_idx);
	return k == &kb.k ? trans_update(t, BTREE_ID_stripes, k) : 0;
}

/* A stripe key names its buckets: each carries the stripe's index and
 * redundancy while the stripe exists (which keeps it from being reused). */
static int normal_stripe(struct mark_ctx *c, const struct bkey *k, int sign)
{
	struct bkfs_fs *fs = c->fs;
	const struct bkfs_stripe *s = bkey_val(k);
	for (unsigned i = 0; i < s->nr_blocks; i++) {
		const struct bkfs_ptr *p = &s->ptrs[i];
		if (p->dev >= fs->nr_devs || ptr_bucket(fs, p) >= fs->sb.members[p->dev].nbuckets)
			return fs->flags & BKFS_OPEN_FSCK ? 0 : -BKFS_E_CORRUPT;
		u64 b = ptr_bucket(fs, p);
		struct bkfs_alloc a = *bucket_get(fs, p->dev, b);
		if (sign > 0) {
			a.stripe = (u32)k->p.offset;
			a.stripe_redundancy = s->nr_redundant;
		} else if (a.stripe == (u32)k->p.offset) {
			a.stripe = 0;
			a.stripe_redundancy = 0;
		}
		bool parity = i + s->nr_redundant >= s->nr_blocks;
		a.data_type = alloc_data_type(&a, parity ? DATA_parity : DATA_user);
		bucket_update(fs, p->dev, b, &a);
	}
	return 0;
}

const struct mark_ops normal_mark_ops = {
	.bucket = normal_bucket,
	.acct = normal_acct,
	.reflink = normal_reflink,
	.stripe_ptr = normal_stripe_ptr,
	.stripe = normal_stripe,
};

/* A pointer of an invalid key the live state rejects was never counted. */
static int tolerant_bucket(struct mark_ctx *c, const struct bkfs_ptr *p, unsigned data_type,
			   s64 sectors, enum bucket_counter cnt)
{
	int ret = normal_bucket(c, p, data_type, sectors, cnt);
	return ret < 0 && ret != -BKFS_E_NOMEM ? 1 : ret;
}

/* Unmark a key that failed validation (the checker deletes it; nothing else
 * may pass one). Only what can be read from it safely is undone: the inode
 * count, and the pointers of an extent or indirect extent as far as they fit
 * in its value, skipping any the live state rejects. What it really counted
 * is unknown: the checker's allocation sweep, which runs next, makes every
 * bucket and counter exact. */
static int unmark_invalid(struct mark_ctx *c, unsigned btree_id, unsigned level, const struct bkey *k)
{
	static const struct mark_ops ops = {
		.bucket = tolerant_bucket,
		.acct = normal_acct,
	};
	bool ok = !level && ((btree_id == BTREE_ID_inodes && k->type == KEY_TYPE_inode) ||
			     (btree_id == BTREE_ID_extents && k->type == KEY_TYPE_extent) ||
			     (btree_id == BTREE_ID_reflink && k->type == KEY_TYPE_reflink_v));
	if (!ok || k->u64s < BKEY_U64s)
		return 0;
	struct mark_ctx tc = *c;
	tc.ops = &ops;
	return bkfs_mark_key(&tc, btree_id, level, k, -1);
}

/* A stripe key rewritten with only its block counts changed: its buckets,
 * parity sectors and accounting stay as they are. */
static bool stripe_counts_only(const struct bkey *old, const struct bkey *new)
{
	if (!old || !new || old->type != KEY_TYPE_stripe || new->type != KEY_TYPE_stripe ||
	    bkey_val_bytes(old) != bkey_val_bytes(new))
		return false;
	const struct bkfs_stripe *a = bkey_val(old), *b = bkey_val(new);
	return !memcmp(a, b, sizeof(*a) + a->nr_blocks * sizeof(struct bkfs_ptr));
}

int engine_trigger(struct trans *t, unsigned btree_id, unsigned level,
		   const struct bkey *old, const struct bkey *new)
{
	struct mark_ctx c = { .ops = &normal_mark_ops, .fs = t->fs, .t = t };
	if (btree_id == BTREE_ID_stripes && stripe_counts_only(old, new))
		return 0;
	/* mark the new key first: an overwrite in place must never see its
	 * bucket empty (and bump the gen) in between */
	int ret = bkfs_mark_key(&c, btree_id, level, new, 1);
	if (ret || !old)
		goto out;
	if ((t->fs->flags & BKFS_OPEN_FSCK) && bkey_validate(old, btree_id, level, NULL))
		return unmark_invalid(&c, btree_id, level, old);
	ret = bkfs_mark_key(&c, btree_id, level, old, -1);
out:
	/* a failed trigger fails the commit and stops the filesystem: the
	 * index need not follow it */
	if (!ret && !level)
		bucket_keys_update(t->fs, btree_id, old, new);
	return ret;
}
