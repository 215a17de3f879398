/* node.h - in-memory btree nodes: the node cache, node read/write and
 * validation, read-ahead, copy repair and key access (btree/node.c). */
#ifndef BKFS_BTREE_NODE_H
#define BKFS_BTREE_NODE_H
#include "fs_handle.h"

/* ---- node cache and I/O (node.c) ---- */
int btree_cache_init(struct bkfs_fs *fs);
void btree_cache_exit(struct bkfs_fs *fs);
struct btree *btree_node_alloc(struct bkfs_fs *fs, unsigned btree_id, unsigned level);
void btree_node_free(struct bkfs_fs *fs, struct btree *b); /* unhash + free memory */
/* Remove a node from its tree for good: its on-disk space is released at the
 * next checkpoint, then its memory is freed. */
void btree_node_drop(struct bkfs_fs *fs, struct btree *b);
struct btree *btree_cache_find(struct bkfs_fs *fs, u64 seq);
void btree_cache_rehash(struct bkfs_fs *fs, struct btree *b, u64 new_seq);
void btree_cache_touch(struct bkfs_fs *fs, struct btree *b);
/* Mark a node dirty: it leaves the LRU for the dirty list (no-op if dirty). */
void btree_cache_set_dirty(struct bkfs_fs *fs, struct btree *b);
void btree_cache_shrink(struct bkfs_fs *fs); /* evict clean nodes beyond the limit */
/* btree_cache_shrink() if the cache is over its limit. Only where the caller
 * holds no key pointer: iterators survive an eviction, peeked keys do not.
 * Sessions that only read never checkpoint, so they must call it. */
static inline void btree_cache_trim(struct bkfs_fs *fs)
{
	if (fs->nr_nodes - fs->nr_dirty > fs->max_clean)
		btree_cache_shrink(fs);
}
/* Read a node through a pointer key (level = child level). Validates
 * everything; returns -BKFS_E_IO / -BKFS_E_CORRUPT / -BKFS_E_CSUM on failure.
 * why (optional) receives a reason. */
int btree_node_get(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key,
		   struct btree **out, struct printbuf *why);
/* The checks of btree_node_get (readable, valid, matches the pointer) without
 * adding the node to the cache; a cached node answers at once. *mem: the node
 * is in memory only (dirty or never written); *nr_invalid (may be NULL): its
 * b->nr_invalid. */
int btree_node_probe(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, bool *mem,
		     u32 *nr_invalid, struct printbuf *why);
/* btree_node_probe() for a node in the cache only: false if it is not there. */
bool btree_node_cached(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, bool *mem,
		       u32 *nr_invalid);
/* Read-ahead: a helper thread reads and validates the nodes a walk will ask
 * for next, so that reading overlaps the walk's own work. Only while nothing
 * is written to the devices (fsck's passes). A stream is an ordered source of
 * pointer keys (next() runs on the caller's thread, from btree_ra_fill());
 * btree_node_get()/btree_node_probe() take a node from the helper when one of
 * its pointers matches exactly, else read it themselves: results are the same
 * with or without read-ahead. btree_ra_open() returns NULL (and fill/close
 * accept NULL) when no helper runs. */
#define BTREE_RA_SLOTS 16   /* nodes the read-ahead holds at most */
#define BTREE_NODE_POOL 8  /* freed node buffers kept for reuse, at most */
struct btree_ra;
typedef bool (*btree_ra_next_fn)(void *arg, unsigned *btree_id, struct bkey_buf *ptr_key);
int btree_ra_start(struct bkfs_fs *fs);
void btree_ra_stop(struct bkfs_fs *fs);
struct btree_ra *btree_ra_open(struct bkfs_fs *fs, btree_ra_next_fn next, void *arg);
/* Queue more pointers of the stream (call where next() may read nodes). */
void btree_ra_fill(struct btree_ra *ra);
void btree_ra_close(struct btree_ra *ra);
/* Parse and validate a raw node buffer read from disk. */
int btree_node_from_buf(struct bkfs_fs *fs, const void *buf, struct btree **out, struct printbuf *why);
/* Read and validate the node at one replica location, outside the cache
 * (free it with btree_node_mem_free). */
int btree_node_read_at(struct bkfs_fs *fs, const struct bkfs_ptr *ptr, struct btree **out, struct printbuf *why);
/* A leaf whose every copy fails validation: the keys of its best copy's
 * chunk table vouches for (node_salvage), in a node outside the cache with
 * btree_id, level 0, the pointer's seq and range min..max (free it with
 * btree_node_mem_free; s->lost_ranges with node_salvage_exit). Returns 0, or
 * -BKFS_E_CORRUPT/-IO with why when no copy can be salvaged. */
struct node_salvage;
int btree_node_salvage(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, struct bpos min,
		       struct bpos max, struct btree **out, struct node_salvage *s, struct printbuf *why);
/* Every copy of the node ptr_key names fails: the image of copies mended
 * from one another chunk by chunk (FORMAT.md §7.3), if one then validates
 * and matches the pointer (outside the cache; free with
 * btree_node_mem_free). Returns 0, or an error when they cannot be mended. */
int btree_node_read_mended(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, struct btree **out);
/* Overwrite a bad copy of a node in place with the bytes of a good copy
 * (copies are identical byte for byte), then read it back. Only where the
 * pointer's bucket holds btree nodes at its gen (hooks->ptr_in_btree_bucket):
 * the node is live, so its space is its own until a checkpoint frees it.
 * Returns 0, or -BKFS_E_IO/-CORRUPT (no good copy, write failed, not ours). */
int btree_node_copy_rewrite(struct bkfs_fs *fs, const struct node_copy_bad *bc);
void node_copy_bad_to_text(struct printbuf *out, const struct node_copy_bad *bc);
/* Scrub: read and validate every copy of the node ptr_key names, outside the
 * cache (a cached node is read from disk all the same). Bits of ptr.ptrs:
 * good, bad (read and failed), missing (device absent). Returns 0 or
 * -BKFS_E_NOMEM. */
struct node_copies {
	u8 good, bad, missing;
	u64 bytes_read;
};
int btree_node_check_copies(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key,
			    struct node_copies *out);
/* One copy judged as btree_node_check_copies() judges it, from its image
 * (fs->node_bytes read at the copy's location) already in memory: 0 when it
 * validates and is the node ptr_key names, else -BKFS_E_*. */
int btree_node_check_image(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, const void *image);

/* Free a node that is not in the cache (from btree_node_from_buf/_read_at). */
void btree_node_mem_free(struct btree *b);
/* Serialize a node into buf (node_bytes). */
void btree_node_to_buf(struct bkfs_fs *fs, struct btree *b, void *buf);
int btree_node_write(struct bkfs_fs *fs, struct btree *b);

/* node key access */
static inline struct bkey *btree_node_key(struct btree *b, u32 i)
{
	return (struct bkey *)(b->data + b->offs[i]);
}
u32 btree_node_lower_bound(struct btree *b, struct bpos p); /* first key with pos >= p */
int btree_node_insert_at(struct btree *b, u32 idx, const struct bkey *k); /* -NOSPC if full */
void btree_node_delete_at(struct btree *b, u32 idx);
void btree_node_rebuild_offs(struct btree *b);

/* read a node's worth of bytes from any replica of ptr */
int bkfs_read_ptrs(struct bkfs_fs *fs, const struct bkfs_btree_ptr *p, void *buf, size_t len);

#endif
