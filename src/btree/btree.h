/* btree.h - the filesystem handle, in-memory btree nodes, node cache,
 * iterators, copy-on-write updates (splits and merges), and checkpoints
 * (writing dirty nodes copy-on-write); transactions are in trans.h.
 *
 * Lower layers (journal, alloc, ...) are reached through hooks that upper
 * layers install, so this header includes only util, io and format. */
#ifndef BKFS_BTREE_H
#define BKFS_BTREE_H
#include "../util/util.h"
#include "../io/blockdev.h"
#include "../format/format.h"
#include "../format/sb.h"

struct bkfs_fs;
struct trans;

/* ---- in-memory node ---- */
struct btree {
	u8 btree_id, level;
	bool dirty;        /* modified since written; has a fresh seq */
	bool has_loc;      /* ptr holds a location (read from disk, or assigned at checkpoint) */
	struct bpos min_key, max_key;
	u64 seq, journal_seq;
	struct bkfs_btree_ptr ptr; /* on-disk location when has_loc */
	u32 nr_keys, used, cap;    /* used/cap: bytes of key data */
	u32 nr_invalid;            /* leaf keys that failed bkey_validate() when the
				    * node was read (an upper bound once keys are
				    * deleted): 0 = every key is valid. Readers
				    * skip invalid keys; fsck deletes them. */
	u32 *offs;
	u8 *data;
	struct btree *hnext;
	struct btree *lru_prev, *lru_next;
};

struct btree_root {
	struct btree *b;               /* loaded root node, or NULL */
	struct bkfs_btree_ptr ptr;     /* root pointer (ptr.level = root level) */
	int error;                     /* root unreadable: why (-BKFS_E_*), else 0 */
};

/* hooks installed by upper layers */
struct bkfs_hooks {
	/* normal-mode trigger for a key update (old/new may be NULL); may add
	 * updates to t (alloc, accounting) */
	int (*trigger)(struct trans *t, unsigned btree_id, unsigned level,
		       const struct bkey *old, const struct bkey *new);
	/* called at commit after all triggers: emit derived updates (dirty alloc
	 * keys, accounting) into t */
	int (*commit_prepare)(struct trans *t);
	/* journal the final updates of a transaction; returns the entry's seq */
	int (*journal_commit)(struct bkfs_fs *fs, struct trans *t, u64 *seq);
	u64 (*journal_cur_seq)(struct bkfs_fs *fs);
	/* btree node space: allocate replicas for a node / release a node's space */
	int (*node_alloc)(struct bkfs_fs *fs, unsigned btree_id, struct bkfs_btree_ptr *ptr);
	void (*node_free)(struct bkfs_fs *fs, unsigned btree_id, const struct bkfs_btree_ptr *ptr);
	/* after a commit: follow-up work of the layers above (may commit) */
	int (*commit_done)(struct bkfs_fs *fs);
	/* checkpoint: flush derived state (alloc keys, accounting) into btrees
	 * without journaling; returns >0 if it changed anything */
	int (*checkpoint_prepare)(struct bkfs_fs *fs);
	/* write the checkpoint record (roots + state) durably */
	int (*checkpoint_commit)(struct bkfs_fs *fs);
	/* whether p's bucket holds btree nodes at p's gen: a node copy may be
	 * overwritten in place there (NULL: never) */
	bool (*ptr_in_btree_bucket)(struct bkfs_fs *fs, const struct bkfs_ptr *p);
};

/* A copy of a node (one pointer of its btree_ptr) that failed to read,
 * validate or match the pointer while another copy was good. */
struct node_copy_bad {
	u8 btree_id, copy;         /* copy: index into ptr.ptrs */
	struct bpos max_key;       /* the pointer key's position */
	struct bkfs_btree_ptr ptr; /* the node's pointer */
};

struct bkfs_dev {
	struct blockdev *bd;   /* NULL if missing (degraded) */
	unsigned idx;
	struct bkfs_member *m; /* points into fs->sb.members */
};

#define BKFS_OPEN_RDONLY   (1u << 0)  /* never write anything */
#define BKFS_OPEN_DEGRADED (1u << 1)  /* allow missing devices */
#define BKFS_OPEN_NOREPLAY (1u << 2)  /* do not replay the journal */
#define BKFS_OPEN_FSCK     (1u << 3)  /* tolerate damage: errors recorded, not fatal */
#define BKFS_OPEN_NOJOURNAL (1u << 4) /* bulk mode: durability at checkpoint only */
#define BKFS_OPEN_DISCARD  (1u << 5)  /* discard buckets as they are freed (alloc/discard.c) */
#define BKFS_OPEN_ALL_COPIES (1u << 6) /* read_all_copies: every node read verifies every copy */

struct bkfs_fs {
	struct bkfs_sb sb;
	struct bkfs_dev devs[BKFS_MAX_DEVS];
	unsigned nr_devs;
	unsigned flags;
	u32 node_bytes, bucket_bytes, block_bytes;
	struct btree_root roots[BTREE_ID_NR];
	const struct bkfs_hooks *hooks;

	/* node cache */
	struct btree **hash;
	size_t hash_size, nr_nodes, nr_dirty, max_clean;
	struct btree lru; /* list head: clean nodes, most recent first */
	struct btree dirty_list; /* list head: dirty nodes (never on the LRU; same links) */
	u64 cache_gen;    /* bumped on any structural change or eviction */

	/* node space freed by COW, released at the next checkpoint */
	struct bkfs_btree_ptr *pending_free;
	u8 *pending_free_btree;
	size_t nr_pending_free, pending_free_cap;

	u64 key_version, node_seq;
	u64 durable_node_seq; /* node_seq recorded by the checkpoint opened: nodes
			       * with higher seqs found on disk were never committed */
	u64 next_inum;
	u64 clock;        /* logical time for io_time */
	bool in_checkpoint;
	bool error;       /* emergency read-only after a failed write */
	u64 dirty_limit;  /* checkpoint when dirty node bytes exceed this */

	void *journal;    /* struct journal, journal layer */
	void *alloc;      /* struct alloc_state, alloc layer */
	void *readahead;  /* node read-ahead helper thread (node.c), or NULL */
	/* counters for reports */
	u64 nodes_read, nodes_written, node_read_errors;
	u64 invalid_keys_skipped; /* invalid keys iterators stepped over */
	/* node copies: read_all_copies makes every read verify every copy
	 * (fsck --all-copies), else a read stops at the first good one. A bad
	 * copy met while another is good is rewritten at once on a writable
	 * filesystem (not the checker's), else queued in bad_copies (at most
	 * BAD_COPIES_MAX, each once) for the checker to report and repair. */
	bool read_all_copies;
	struct node_copy_bad *bad_copies;
	size_t nr_bad_copies, bad_copies_cap;
	u64 node_copies_bad, node_copies_rewritten;
};
#define BAD_COPIES_MAX 65536

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
void btree_node_mark_dirty(struct bkfs_fs *fs, struct btree *b); /* leaf->root COW, see btree.c */

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

/* ---- iterators ---- */
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

/* Write fs->sb (with the counters kept in fs) to every copy on every member
 * (sb_write_copies); its seq goes up by one. */
int bkfs_write_super(struct bkfs_fs *fs);

/* ---- checkpoint (checkpoint.c) ---- */
int btree_checkpoint(struct bkfs_fs *fs);
bool btree_want_checkpoint(struct bkfs_fs *fs);
void btree_pending_free_add(struct bkfs_fs *fs, unsigned btree_id, const struct bkfs_btree_ptr *p);

/* read a node's worth of bytes from any replica of ptr */
int bkfs_read_ptrs(struct bkfs_fs *fs, const struct bkfs_btree_ptr *p, void *buf, size_t len);

#endif
