/* iter.h - btree iterators: walk the keys of one btree level in order
 * (btree/btree.c). */
#ifndef BKFS_BTREE_ITER_H
#define BKFS_BTREE_ITER_H
#include "fs_handle.h"

struct btree_iter {
	struct bkfs_fs *fs;
	u8 btree_id, level;
	struct bpos pos;
	struct btree *node;
	u32 idx;
	u64 gen;
	bool end;
};
void btree_iter_init(struct btree_iter *it, struct bkfs_fs *fs, unsigned btree_id, unsigned level, struct bpos pos);
/* First key >= it->pos at it->level; it->pos becomes that key's position.
 * *k = NULL at end. Keys that failed validation when their node was read are
 * skipped (counted in fs->invalid_keys_skipped). The key stays valid until
 * the next btree modification; the iterator itself stays valid across
 * modifications (commits). */
int btree_iter_peek(struct btree_iter *it, struct bkey **k);
void btree_iter_advance(struct btree_iter *it); /* pos = successor of the last peeked key */
/* The node the iterator is positioned in (valid right after peek). */
static inline struct btree *btree_iter_node(struct btree_iter *it) { return it->node; }
#define for_each_btree_key(it, fs, id, start, k, ret) \
	for (btree_iter_init(&(it), fs, id, 0, start); \
	     !((ret) = btree_iter_peek(&(it), &(k))) && (k); \
	     btree_iter_advance(&(it)))


#endif
