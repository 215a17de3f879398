/* fs_handle.h - the filesystem handle (struct bkfs_fs): members, roots, the
 * in-memory node, the hooks upper layers install, open flags and counters.
 * Lower layers (journal, alloc, ...) are reached through the hooks, so this
 * header includes only util, io and the format headers the handle names. */
#ifndef BKFS_FS_HANDLE_H
#define BKFS_FS_HANDLE_H
#include "../util/util.h"
#include "../io/blockdev.h"
#include "../format/bkey_format.h"
#include "../format/extents_format.h"
#include "../format/sb.h"

struct bkfs_fs;
struct trans;

/* ---- in-memory node ---- */
/* bytes of a node's memory known to be mapped (node.c node_mem_map): from the
 * start of its raw buffer, and of its key offset array */
struct node_mapped {
	u32 raw, offs;
};

struct btree {
	u8 btree_id, level;
	bool dirty;        /* modified since written; has a fresh seq */
	bool has_loc;      /* ptr holds a location (read from disk, or assigned at checkpoint) */
	struct bpos min_key, max_key;
	u64 seq, journal_seq;
	struct bkfs_btree_ptr ptr; /* on-disk location when has_loc */
	u32 nr_keys, used, cap;    /* used/cap: bytes of key data (cap leaves room
				    * for the node's chunk table) */
	u32 raw_bytes;             /* the node image buffer: header + data */
	u32 nr_invalid;            /* leaf keys that failed bkey_validate() when the
				    * node was read (an upper bound once keys are
				    * deleted): 0 = every key is valid. Readers
				    * skip invalid keys; fsck deletes them. */
	u32 *offs;
	u8 *data;
	struct node_mapped mapped;
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

#endif
