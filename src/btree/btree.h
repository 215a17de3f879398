/* btree.h - tree operations on the btrees of a filesystem handle: roots,
 * single-key insert and lookup (splits and merges), copy-on-write marking,
 * checkpoints and the superblock write. The handle is in fs_handle.h, nodes
 * and their cache in node.h, iterators in iter.h, transactions in trans.h. */
#ifndef BKFS_BTREE_H
#define BKFS_BTREE_H
#include "fs_handle.h"

/* ---- root and tree operations (btree.c) ---- */
int btree_root_get(struct bkfs_fs *fs, unsigned btree_id, struct btree **out);
/* Install an empty leaf as the root of a btree (format, or fsck rebuild). */
int btree_root_set_empty(struct bkfs_fs *fs, unsigned btree_id);
/* Insert/overwrite (or delete, if k->type is deleted) one key without
 * triggers or journal. Splits and merges as needed. */
int btree_insert_key(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k);
/* Exact lookup: copies the key into out (if found). Returns 0, -NOENT or error;
 * -CORRUPT for a key that failed validation (readers never use one). */
int btree_lookup(struct bkfs_fs *fs, unsigned btree_id, struct bpos p, struct bkey_buf *out);
/* The same, but an invalid key is returned too, with *invalid set (for
 * transactions that delete it: fsck). */
int btree_lookup_any(struct bkfs_fs *fs, unsigned btree_id, struct bpos p, struct bkey_buf *out, bool *invalid);
/* Visit every node of a btree (pre-order, children in key order). */
typedef int (*btree_node_visit_fn)(struct bkfs_fs *fs, struct btree *b, void *arg);

void btree_node_mark_dirty(struct bkfs_fs *fs, struct btree *b); /* leaf->root COW, see btree.c */

/* Write fs->sb (with the counters kept in fs) to every copy on every member
 * (sb_write_copies); its seq goes up by one. */
int bkfs_write_super(struct bkfs_fs *fs);

/* ---- checkpoint (checkpoint.c) ---- */
int btree_checkpoint(struct bkfs_fs *fs);
bool btree_want_checkpoint(struct bkfs_fs *fs);
void btree_pending_free_add(struct bkfs_fs *fs, unsigned btree_id, const struct bkfs_btree_ptr *p);

#endif
