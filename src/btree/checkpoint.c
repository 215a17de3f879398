/* checkpoint.c - write every dirty node copy-on-write, then record the new
 * roots durably. Until the checkpoint record is durable the previous roots
 * remain valid, because no node they reference is ever overwritten: space is
 * released only through pending_free, after the checkpoint lands. */
#include "btree.h"
#include "../util/darray.h"
#include "node.h"
#include "iter.h"
#include <stdlib.h>
#include <string.h>

void btree_pending_free_add(struct bkfs_fs *fs, unsigned btree_id, const struct bkfs_btree_ptr *p)
{
	if (!p->nr_ptrs)
		return;
	/* two arrays side by side, grown by one rule to one capacity */
	size_t cap = fs->pending_free_cap, cap_btree = cap, want = fs->nr_pending_free + 1;
	if (darray_room(fs->pending_free, cap, want, 64) || darray_room(fs->pending_free_btree, cap_btree, want, 64))
		return; /* leaked space is found by fsck's sweep */
	fs->pending_free_cap = cap;
	fs->pending_free_btree[fs->nr_pending_free] = btree_id;
	fs->pending_free[fs->nr_pending_free++] = *p;
}

void btree_node_drop(struct bkfs_fs *fs, struct btree *b)
{
	if (b->has_loc)
		btree_pending_free_add(fs, b->btree_id, &b->ptr);
	btree_node_free(fs, b);
}

bool btree_want_checkpoint(struct bkfs_fs *fs)
{
	return (u64)fs->nr_dirty * fs->node_bytes > fs->dirty_limit;
}

/* Point the parent (or root) at b's newly assigned location. */
static int update_parent_ptr(struct bkfs_fs *fs, struct btree *b)
{
	struct btree_root *r = &fs->roots[b->btree_id];
	if (r->b == b) {
		r->ptr = b->ptr;
		return 0;
	}
	struct btree_iter it;
	struct bkey *k;
	btree_iter_init(&it, fs, b->btree_id, b->level + 1, b->max_key);
	int ret = btree_iter_peek(&it, &k);
	if (ret)
		return ret;
	if (!k || k->type != KEY_TYPE_btree_ptr || ((struct bkfs_btree_ptr *)bkey_val(k))->seq != b->seq)
		return -BKFS_E_CORRUPT;
	struct bkfs_btree_ptr *p = bkey_val(k);
	u16 flags = p->flags;
	*p = b->ptr;
	p->flags = flags & ~BTREE_PTR_RANGE_UPDATED;
	return 0;
}

static int assign_locations(struct bkfs_fs *fs, bool *changed)
{
	/* update_parent_ptr may load clean nodes, never dirty new ones: the
	 * dirty list does not change under this walk */
	for (unsigned level = 0; level < BTREE_MAX_DEPTH; level++)
		for (struct btree *b = fs->dirty_list.lru_next; b != &fs->dirty_list; b = b->lru_next) {
			if (b->has_loc || b->level != level)
				continue;
			struct bkfs_btree_ptr p = { 0 };
			int ret = fs->hooks->node_alloc(fs, b->btree_id, &p);
			if (ret)
				return ret;
			p.seq = b->seq;
			p.min_key = b->min_key;
			p.level = b->level;
			b->ptr = p;
			b->has_loc = true;
			if ((ret = update_parent_ptr(fs, b)))
				return ret;
			*changed = true;
		}
	return 0;
}

static void release_pending(struct bkfs_fs *fs, bool *changed)
{
	while (fs->nr_pending_free) {
		size_t n = --fs->nr_pending_free;
		fs->hooks->node_free(fs, fs->pending_free_btree[n], &fs->pending_free[n]);
		*changed = true;
	}
}

int btree_checkpoint(struct bkfs_fs *fs)
{
	int ret = 0;
	if (fs->flags & BKFS_OPEN_RDONLY)
		return 0;
	if (fs->error)
		return -BKFS_E_IO;
	fs->in_checkpoint = true;
	u64 seq = fs->hooks->journal_cur_seq ? fs->hooks->journal_cur_seq(fs) : 0;
	for (int round = 0;; round++) {
		bool changed = false;
		if (round > 1000) {
			ret = -BKFS_E_LOOP;
			goto out;
		}
		if (fs->hooks->checkpoint_prepare) {
			ret = fs->hooks->checkpoint_prepare(fs);
			if (ret < 0)
				goto out;
			changed |= ret > 0;
		}
		release_pending(fs, &changed);
		if ((ret = assign_locations(fs, &changed)))
			goto out;
		if (!changed)
			break;
	}
	for (struct btree *b = fs->dirty_list.lru_next; b != &fs->dirty_list; b = b->lru_next) {
		b->journal_seq = seq;
		if ((ret = btree_node_write(fs, b)))
			goto out;
	}
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (fs->devs[d].bd && (ret = bd_flush(fs->devs[d].bd)))
			goto out;
	if (fs->hooks->checkpoint_commit && (ret = fs->hooks->checkpoint_commit(fs)))
		goto out;
	/* everything is durable: nodes become clean and evictable */
	while (fs->dirty_list.lru_next != &fs->dirty_list) {
		struct btree *b = fs->dirty_list.lru_next;
		b->dirty = false;
		fs->nr_dirty--;
		btree_cache_touch(fs, b); /* unlinks from the dirty list, onto the LRU */
	}
	btree_cache_shrink(fs);
out:
	if (ret)
		fs->error = true;
	fs->in_checkpoint = false;
	return ret;
}
