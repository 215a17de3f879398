/* corrupt_stripes.c - kinds that damage erasure coding: a stripe key
 * (deleted, or a block's sector count changed) and an erasure-coded pointer
 * naming the wrong block. They need an image with stripes (bkfs
 * erasure-code). */
#include "corrupt_int.h"

static bool is_stripe(struct corrupt_ctx *c, const struct bkey *k, const void *arg)
{
	return k->type == KEY_TYPE_stripe;
}

static int pick_stripe(struct corrupt_ctx *c, struct bkey_buf *out)
{
	int ret = pick_key(c, BTREE_ID_stripes, is_stripe, NULL, out);
	return ret == -BKFS_E_NOENT ? no_target(c, "no stripe (make stripes first: bkfs erasure-code)") : ret;
}

static void stripe_text(struct corrupt_ctx *c, const struct bkey *k)
{
	const struct bkfs_stripe *s = bkey_val(k);
	pb_printf(&c->r->damaged, "stripe %llu (%u data + %u parity blocks of %u sectors)", (unsigned long long)k->p.offset,
		  s->nr_blocks - s->nr_redundant, s->nr_redundant, s->sectors);
}

/* The stripe key deleted: its pointers lose their stripe references (the
 * data stays where it is, unprotected), its parity buckets are freed. */
int corrupt_stripe_missing(struct corrupt_ctx *c)
{
	struct bkey_buf kb;
	int ret = pick_stripe(c, &kb);
	if (ret)
		return ret;
	stripe_text(c, &kb.k);
	pb_printf(&c->r->damaged, ": key deleted, the erasure-coded pointers into it kept");
	pb_printf(&c->r->lost, "none (the data loses its parity)");
	return edit_leaf_key(c, BTREE_ID_stripes, kb.k.p, NULL);
}

/* A stripe's count of sectors in one data block changed. */
int corrupt_stripe_block_sectors(struct corrupt_ctx *c)
{
	struct bkey_buf kb;
	int ret = pick_stripe(c, &kb);
	if (ret)
		return ret;
	struct bkfs_stripe *s = bkey_val(&kb.k);
	u16 *bs = stripe_block_sectors(s);
	unsigned b = (unsigned)pick(c, s->nr_blocks - s->nr_redundant);
	u16 old = bs[b];
	bs[b] = old > 8 ? old - 1 - (u16)pick(c, MIN(old - 1, 64)) : old + 1 + (u16)pick(c, 8);
	stripe_text(c, &kb.k);
	pb_printf(&c->r->damaged, ": block %u sectors %u -> %u", b, old, bs[b]);
	pb_printf(&c->r->lost, "none");
	return edit_leaf_key(c, BTREE_ID_stripes, kb.k.p, &kb.k);
}

/* An erasure-coded pointer names a parity block of its stripe as its
 * block: it is not inside the block it names. */
int corrupt_stripe_ptr_incorrect(struct corrupt_ctx *c)
{
	struct ext_target t;
	bool sole;
	int ret = pick_extent_ptr(c, false, true, &t, &sole);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "no erasure-coded extent (make stripes first: bkfs erasure-code)");
	if (ret)
		return ret;
	struct bkfs_ptr *ptrs;
	bkey_ptrs(&t.k.k, &ptrs);
	struct bkey_buf sk;
	if ((ret = btree_lookup(c->fs, BTREE_ID_stripes, POS(0, ptrs[0].stripe_idx), &sk)))
		return ret;
	const struct bkfs_stripe *s = bkey_val(&sk.k);
	unsigned old = ptrs[0].stripe_block;
	ptrs[0].stripe_block = s->nr_blocks - 1;
	struct printbuf what = PRINTBUF;
	pb_printf(&what, "stripe block %u -> %u (a parity block of stripe %u)", old, ptrs[0].stripe_block,
		  ptrs[0].stripe_idx);
	ext_damaged_text(c, &t, pb_str(&what));
	pb_exit(&what);
	pb_printf(&c->r->lost, "none (the extent loses its parity)");
	return edit_leaf_key(c, BTREE_ID_extents, t.k.k.p, &t.k.k);
}

