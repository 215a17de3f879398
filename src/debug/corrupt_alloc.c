/* corrupt_alloc.c - kinds that damage derived state: the alloc key of a
 * bucket (deleted, or a field changed while the key stays valid), an
 * accounting counter, and a key's version. */
#include "corrupt_int.h"

enum alloc_sel { AS_USER, AS_FREE, AS_STRIPE_DATA, AS_STRIPE_ANY };

static bool alloc_selected(struct corrupt_ctx *c, const struct bkey *k, const void *arg)
{
	enum alloc_sel sel = *(const enum alloc_sel *)arg;
	if (k->type != KEY_TYPE_alloc || bkey_val_bytes(k) != sizeof(struct bkfs_alloc))
		return false;
	const struct bkfs_alloc *a = bkey_val(k);
	if (k->p.inode >= c->nr_devs || k->p.offset >= c->sb.members[k->p.inode].nbuckets)
		return false;
	switch (sel) {
	case AS_USER:
		return a->data_type == DATA_user && a->dirty_sectors > 0 && !a->stripe;
	case AS_FREE:
		return a->data_type == DATA_free && !a->flags && k->p.offset >= c->sb.members[k->p.inode].first_bucket;
	case AS_STRIPE_DATA:
		return a->data_type == DATA_stripe && a->stripe && a->stripe_sectors > 0;
	default:
		return a->stripe != 0;
	}
}

/* A sector count of a moved by a seeded amount (down when it can), with
 * the fragmentation index that follows from it. */
static void change_sectors(struct corrupt_ctx *c, struct bkfs_alloc *a, u32 *sectors, const char *name)
{
	u32 old = *sectors;
	*sectors = old > 8 ? old - 1 - (u32)pick(c, MIN(old - 1, 64u)) : old + 1 + (u32)pick(c, 8);
	a->fragmentation_lru = alloc_fragmentation(a, c->bucket_sectors);
	pb_printf(&c->r->damaged, "%s %u -> %u", name, old, *sectors);
}

enum alloc_edit {
	AE_DELETE_USER, AE_DELETE_FREE, AE_DIRTY, AE_GEN, AE_DATA_TYPE, AE_CACHED, AE_FRAG, AE_JSEQ, AE_OLDEST,
	AE_STRIPE, AE_STRIPE_REDUNDANCY, AE_STRIPE_SECTORS, AE_NEED_DISCARD,
};

/* Edit the alloc value a as e says (not the deletions). */
static void alloc_edit(struct corrupt_ctx *c, enum alloc_edit e, struct bkfs_alloc *a)
{
	struct printbuf *d = &c->r->damaged;
	switch (e) {
	case AE_DELETE_USER:
	case AE_DELETE_FREE:
		break;
	case AE_DIRTY:
		change_sectors(c, a, &a->dirty_sectors, "dirty_sectors");
		break;
	case AE_GEN:
		pb_printf(d, "gen %u -> %u (older than the pointers into it)", a->gen, (u8)(a->gen - 1));
		a->gen--;
		break;
	case AE_DATA_TYPE:
		pb_printf(d, "data_type %s -> btree", data_type_str(a->data_type));
		a->data_type = DATA_btree;
		break;
	case AE_CACHED:
		pb_printf(d, "cached_sectors %u -> %u", a->cached_sectors, a->cached_sectors + 8);
		a->cached_sectors += 8;
		break;
	case AE_FRAG:
		pb_printf(d, "fragmentation_lru %llu -> %llu", (unsigned long long)a->fragmentation_lru,
			  (unsigned long long)(a->fragmentation_lru ^ (1ull << 40)));
		a->fragmentation_lru ^= 1ull << 40;
		break;
	case AE_STRIPE: {
		u32 s = a->stripe + 1000 + (u32)pick(c, 1000);
		pb_printf(d, "stripe %u -> %u (no such stripe names this bucket)", a->stripe, s);
		a->stripe = s;
		break;
	}
	case AE_STRIPE_REDUNDANCY:
		pb_printf(d, "stripe_redundancy %u -> %u", a->stripe_redundancy, a->stripe_redundancy + 1);
		a->stripe_redundancy++;
		break;
	case AE_STRIPE_SECTORS:
		change_sectors(c, a, &a->stripe_sectors, "stripe_sectors");
		break;
	case AE_NEED_DISCARD:
		pb_printf(d, "need_discard set (the bucket holds %u sectors)", a->dirty_sectors);
		a->flags |= ALLOC_NEED_DISCARD;
		break;
	case AE_OLDEST: {
		u8 og = (u8)(a->gen + 1 + pick(c, 16));
		pb_printf(d, "oldest_gen %u -> %u (newer than its gen %u)", a->oldest_gen, og, a->gen);
		a->oldest_gen = og;
		break;
	}
	case AE_JSEQ: {
		u64 cur = journal_cur_seq(c->fs);
		u64 nv = cur + 1000000 + pick(c, 1000);
		pb_printf(d, "journal_seq %llu -> %llu (the journal is at %llu)", (unsigned long long)a->journal_seq,
			  (unsigned long long)nv, (unsigned long long)cur);
		a->journal_seq = nv;
		break;
	}
	}
}

static int alloc_kind(struct corrupt_ctx *c, enum alloc_edit e)
{
	static const char *const sel_names[] = { "user data", "free", "erasure-coded data", "erasure-coded" };
	struct bkey_buf kb;
	enum alloc_sel sel = e == AE_DELETE_FREE ? AS_FREE : e == AE_STRIPE_SECTORS ? AS_STRIPE_DATA :
			     e == AE_STRIPE || e == AE_STRIPE_REDUNDANCY ? AS_STRIPE_ANY : AS_USER;
	int ret = pick_key(c, BTREE_ID_alloc, alloc_selected, &sel, &kb);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "no %s bucket%s", sel_names[sel],
				 sel >= AS_STRIPE_DATA ? " (make stripes first: bkfs erasure-code)" : "");
	if (ret)
		return ret;
	struct bkfs_alloc *a = bkey_val(&kb.k);
	pb_printf(&c->r->damaged, "alloc key of dev %llu bucket %llu (", (unsigned long long)kb.k.p.inode,
		  (unsigned long long)kb.k.p.offset);
	alloc_to_text(&c->r->damaged, a);
	pb_printf(&c->r->damaged, "): ");
	pb_printf(&c->r->lost, "none");
	if (e == AE_DELETE_USER || e == AE_DELETE_FREE) {
		pb_printf(&c->r->damaged, "deleted");
		return edit_leaf_key(c, BTREE_ID_alloc, kb.k.p, NULL);
	}
	alloc_edit(c, e, a);
	if ((ret = key_check(c, &kb.k, BTREE_ID_alloc, true, NULL)))
		return ret;
	return edit_leaf_key(c, BTREE_ID_alloc, kb.k.p, &kb.k);
}

int corrupt_missing_alloc_key(struct corrupt_ctx *c) { return alloc_kind(c, AE_DELETE_USER); }
int corrupt_alloc_key_missing(struct corrupt_ctx *c) { return alloc_kind(c, AE_DELETE_FREE); }
int corrupt_alloc_dirty_sectors(struct corrupt_ctx *c) { return alloc_kind(c, AE_DIRTY); }
int corrupt_alloc_gen(struct corrupt_ctx *c) { return alloc_kind(c, AE_GEN); }
int corrupt_alloc_data_type(struct corrupt_ctx *c) { return alloc_kind(c, AE_DATA_TYPE); }
int corrupt_alloc_cached_sectors(struct corrupt_ctx *c) { return alloc_kind(c, AE_CACHED); }
int corrupt_alloc_fragmentation(struct corrupt_ctx *c) { return alloc_kind(c, AE_FRAG); }
int corrupt_alloc_journal_seq(struct corrupt_ctx *c) { return alloc_kind(c, AE_JSEQ); }
int corrupt_alloc_oldest_gen(struct corrupt_ctx *c) { return alloc_kind(c, AE_OLDEST); }
int corrupt_alloc_stripe(struct corrupt_ctx *c) { return alloc_kind(c, AE_STRIPE); }
int corrupt_alloc_stripe_redundancy(struct corrupt_ctx *c) { return alloc_kind(c, AE_STRIPE_REDUNDANCY); }
int corrupt_alloc_stripe_sectors(struct corrupt_ctx *c) { return alloc_kind(c, AE_STRIPE_SECTORS); }
int corrupt_alloc_need_discard(struct corrupt_ctx *c) { return alloc_kind(c, AE_NEED_DISCARD); }

/* ---- accounting and versions ---- */

static bool counter_checked(struct corrupt_ctx *c, const struct bkey *k, const void *arg)
{
	u64 t = k->p.inode;
	return k->type == KEY_TYPE_accounting &&
	       (t == ACCT_nr_inodes || t == ACCT_replicas || t == ACCT_dev_data_type || t == ACCT_btree);
}

int corrupt_accounting(struct corrupt_ctx *c)
{
	struct bkey_buf kb;
	int ret = pick_key(c, BTREE_ID_accounting, counter_checked, NULL, &kb);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "no accounting counters");
	if (ret)
		return ret;
	struct bkfs_accounting *a = bkey_val(&kb.k);
	s64 delta = 1 + (s64)pick(c, 16);
	pb_printf(&c->r->damaged, "accounting counter ");
	bkey_to_text(&c->r->damaged, &kb.k);
	pb_printf(&c->r->damaged, ": v[0] %lld -> %lld", (long long)a->v[0], (long long)(a->v[0] + delta));
	pb_printf(&c->r->lost, "none");
	a->v[0] += delta;
	return edit_leaf_key(c, BTREE_ID_accounting, kb.k.p, &kb.k);
}

int corrupt_version_future(struct corrupt_ctx *c)
{
	static const unsigned ids[] = { BTREE_ID_inodes, BTREE_ID_dirents, BTREE_ID_extents };
	unsigned id = ids[pick(c, ARRAY_SIZE(ids))];
	struct bkey_buf kb;
	int ret = pick_key(c, id, NULL, NULL, &kb);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "the %s btree is empty", btree_id_str(id));
	if (ret)
		return ret;
	u64 cur = MAX(c->fs->key_version, c->sb.key_version);
	u64 nv = cur + 1000 + pick(c, 1000000);
	pb_printf(&c->r->damaged, "btree %s key at ", btree_id_str(id));
	bpos_to_text(&c->r->damaged, kb.k.p);
	pb_printf(&c->r->damaged, ": version %llu -> %llu (the filesystem has issued up to %llu)",
		  (unsigned long long)kb.k.version, (unsigned long long)nv, (unsigned long long)cur);
	pb_printf(&c->r->lost, "none");
	kb.k.version = nv;
	return edit_leaf_key(c, id, kb.k.p, &kb.k);
}
