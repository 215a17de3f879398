/* bucket_keys.c - which keys point into each bucket: backpointers kept in
 * memory, for copying GC (data/move.c).
 *
 * Without it, every step of the mover had to scan the whole extents and
 * reflink btrees to find the keys pointing into its few victims, so a step
 * cost in proportion to the filesystem, not to the data it moved. This index
 * lists, per bucket, every extent key (extents btree) and indirect extent
 * (reflink btree) with a pointer into it: its position, and the gen of the
 * pointer. The mover reads a victim's list instead of scanning.
 *
 * Built by one scan the first time the mover asks for it (never at open, so
 * fsck, the tools and mounts that never run out of space do not pay for it);
 * from then on the engine's trigger keeps it exact as keys are inserted,
 * overwritten and deleted (bucket_keys_update). A list may hold entries of
 * an older gen (a stale cached pointer keeps its key listed until the key
 * changes); readers filter by gen.
 *
 * It is a hint, never trusted for correctness: the mover looks each key up
 * again by position and moves only pointers that still point into the victim
 * with its gen. A writer that bypasses the trigger (fsck's repairs, gen GC's
 * checker mode, journal replay) runs before it is built or never on a mounted
 * filesystem; should the index ever miss an entry anyway, the mover finds
 * the victim still holding data, drops the index, and the next step rebuilds
 * it (bucket_keys_drop).
 *
 * Memory: 24 bytes per pointer listed, 8 per bucket, and a small header per
 * bucket holding pointers; nothing is persisted, nothing changes on disk. */
#include "alloc.h"
#include "../btree/iter.h"
#include <stdlib.h>
#include <string.h>

/* the keys pointing into one bucket (unordered; a key with two pointers into
 * the bucket is listed twice) */
struct bucket_key_list {
	u32 nr, cap;
	struct bucket_key e[];
};

static bool indexed_key(unsigned btree_id, const struct bkey *k)
{
	return k && ((btree_id == BTREE_ID_extents && k->type == KEY_TYPE_extent) ||
		     (btree_id == BTREE_ID_reflink && k->type == KEY_TYPE_reflink_v));
}

static struct bucket_key_list **list_slot(struct bkfs_fs *fs, const struct bkfs_ptr *p)
{
	struct bucket_keys *bk = &ALLOC(fs)->bk;
	if (p->dev >= fs->nr_devs || !bk->lists[p->dev])
		return NULL;
	u64 b = ptr_bucket(fs, p);
	return b < bk->nbuckets[p->dev] ? &bk->lists[p->dev][b] : NULL;
}

static bool same_entry(const struct bucket_key *e, unsigned btree_id, struct bpos p, u8 gen)
{
	return e->btree_id == btree_id && e->gen == gen && e->inode == p.inode && e->offset == p.offset &&
	       e->snapshot == p.snapshot;
}

static int list_add(struct bucket_key_list **slot, unsigned btree_id, struct bpos p, u8 gen)
{
	struct bucket_key_list *l = *slot;
	if (!l || l->nr == l->cap) {
		u32 nc = l ? l->cap * 2 : 4;
		struct bucket_key_list *n = realloc(l, sizeof(*n) + (size_t)nc * sizeof(n->e[0]));
		if (!n)
			return -BKFS_E_NOMEM;
		if (!l)
			n->nr = 0;
		n->cap = nc;
		*slot = l = n;
	}
	l->e[l->nr++] = (struct bucket_key){ .inode = p.inode, .offset = p.offset, .snapshot = p.snapshot,
					      .btree_id = btree_id, .gen = gen };
	return 0;
}

/* false: not listed (the index has drifted) */
static bool list_remove(struct bucket_key_list **slot, unsigned btree_id, struct bpos p, u8 gen)
{
	struct bucket_key_list *l = *slot;
	for (u32 i = 0; l && i < l->nr; i++)
		if (same_entry(&l->e[i], btree_id, p, gen)) {
			l->e[i] = l->e[--l->nr];
			if (!l->nr) {
				free(l);
				*slot = NULL;
			}
			return true;
		}
	return false;
}

/* add (sign > 0) or remove every pointer of k; false when the index can no
 * longer be trusted (out of memory, or an entry to remove was not there) */
static bool key_apply(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, int sign)
{
	struct bucket_keys *bk = &ALLOC(fs)->bk;
	struct bkfs_ptr *ptrs;
	unsigned nr = bkey_ptrs(k, &ptrs);
	for (unsigned i = 0; i < nr; i++) {
		struct bucket_key_list **slot = list_slot(fs, &ptrs[i]);
		if (!slot)
			continue; /* a pointer the triggers reject never gets this far */
		if (sign > 0) {
			if (list_add(slot, btree_id, k->p, ptrs[i].gen))
				return false;
			bk->nr++;
		} else {
			if (!list_remove(slot, btree_id, k->p, ptrs[i].gen))
				return false;
			bk->nr--;
		}
	}
	return true;
}

void bucket_keys_drop(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	if (!as)
		return;
	struct bucket_keys *bk = &as->bk;
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++) {
		if (!bk->lists[d])
			continue;
		for (u64 b = 0; b < bk->nbuckets[d]; b++)
			free(bk->lists[d][b]);
		free(bk->lists[d]);
		bk->lists[d] = NULL;
		bk->nbuckets[d] = 0;
	}
	if (bk->built)
		bk->drops++;
	bk->built = false;
	bk->nr = 0;
}

void bucket_keys_update(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *old, const struct bkey *new)
{
	if (!ALLOC(fs)->bk.built)
		return;
	if ((indexed_key(btree_id, old) && !key_apply(fs, btree_id, old, -1)) ||
	    (indexed_key(btree_id, new) && !key_apply(fs, btree_id, new, 1)))
		bucket_keys_drop(fs);
}

static int build_btree(struct bkfs_fs *fs, unsigned btree_id)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, fs, btree_id, POS_MIN, k, ret)
		if (indexed_key(btree_id, k) && !key_apply(fs, btree_id, k, 1))
			return -BKFS_E_NOMEM;
	return ret;
}

int bucket_keys_build(struct bkfs_fs *fs)
{
	struct bucket_keys *bk = &ALLOC(fs)->bk;
	if (bk->built)
		return 0;
	if (fs->flags & BKFS_OPEN_FSCK)
		return -BKFS_E_INVAL; /* the checker's repairs bypass the trigger */
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		bk->nbuckets[d] = fs->sb.members[d].nbuckets;
		if (!(bk->lists[d] = xcalloc(bk->nbuckets[d], sizeof(*bk->lists[d])))) {
			bucket_keys_drop(fs);
			return -BKFS_E_NOMEM;
		}
	}
	int ret = build_btree(fs, BTREE_ID_extents);
	if (!ret)
		ret = build_btree(fs, BTREE_ID_reflink);
	if (ret) {
		bucket_keys_drop(fs);
		return ret;
	}
	bk->built = true;
	bk->builds++;
	return 0;
}

size_t bucket_keys_get(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bucket_key **out)
{
	struct bucket_keys *bk = &ALLOC(fs)->bk;
	struct bucket_key_list *l = bk->built && dev < fs->nr_devs && b < bk->nbuckets[dev] ? bk->lists[dev][b] : NULL;
	*out = l ? l->e : NULL;
	return l ? l->nr : 0;
}
