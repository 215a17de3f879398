/* alloc.h - buckets, generations, alloc keys, the allocator, accounting and
 * the key triggers.
 *
 * Marking is written once: bkfs_mark_key() turns a key into per-bucket and
 * accounting deltas through a struct mark_ops. The engine's normal mode
 * applies them to the live bucket state (and from there to alloc keys and
 * accounting keys); the checker's GC mode applies them to its shadow state. */
#ifndef BKFS_ALLOC_H
#define BKFS_ALLOC_H
#include "../btree/btree.h"
#include "../journal/journal.h"
#include "../format/alloc_format.h"

/* which bucket counter a pointer adds to */
enum bucket_counter { CNT_DIRTY, CNT_CACHED, CNT_STRIPE };

struct mark_ctx;
struct mark_ops {
	/* sectors may be negative (overwrite). Returns 0 or an error. */
	int (*bucket)(struct mark_ctx *c, const struct bkfs_ptr *p, unsigned data_type,
		      s64 sectors, enum bucket_counter cnt);
	void (*acct)(struct mark_ctx *c, struct bpos pos, s64 v0, s64 v1, s64 v2);
	/* reflink_p: count references on [start, end) of the reflink btree */
	int (*reflink)(struct mark_ctx *c, u64 start, u64 end, int sign);
	/* a pointer inside stripe idx, block b, adds sectors */
	int (*stripe_ptr)(struct mark_ctx *c, const struct bkfs_ptr *p, s64 sectors);
	/* a stripe key itself (its buckets) */
	int (*stripe)(struct mark_ctx *c, const struct bkey *k, int sign);
};
struct mark_ctx {
	const struct mark_ops *ops;
	struct bkfs_fs *fs;
	struct trans *t; /* normal mode: the transaction, may be NULL (checkpoint) */
	void *priv;      /* GC mode: the checker's shadow state */
};

/* Mark (sign=+1) or unmark (sign=-1) every bucket and counter a key implies.
 * level > 0 (or a root, level = root level + 1) means k is a btree_ptr. */
int bkfs_mark_key(struct mark_ctx *c, unsigned btree_id, unsigned level, const struct bkey *k, int sign);
/* Disk sectors a pointer of a key occupies in its bucket. */
u32 ptr_disk_sectors(struct bkfs_fs *fs, const struct bkey *k, unsigned level);

/* ---- live bucket state (normal mode) ---- */
#define BUCKET_OPEN  (1u << 0)
#define BUCKET_DIRTY (1u << 1) /* alloc key must be written */
/* gens ahead of oldest_gen at which generation GC becomes due */
#define BUCKET_GC_GEN_SOON (BUCKET_GC_GEN_MAX * 2 / 3)
#define BUCKET_MOVED (1u << 2) /* filled by the mover since it was last taken (in memory only) */

/* Who allocates: each watermark may not take the buckets reserved for the
 * ones after it. Normal writes stop first; the mover (copying GC) can still
 * run to free space; btree nodes (checkpoints, the commits of deletions) can
 * take the last bucket. */
enum alloc_watermark {
	ALLOC_WM_normal,
	ALLOC_WM_copygc,
	ALLOC_WM_btree,
	ALLOC_WM_NR
};

/* Why alloc_bucket() returned -BKFS_E_NOSPC (alloc_nospc_reasons()): the
 * caller can act on each and retry. */
#define ALLOC_WAIT_JOURNAL  (1u << 0) /* free buckets wait for a journal flush */
#define ALLOC_WAIT_GC_GENS  (1u << 1) /* buckets wait on gen GC (bkfs_gc_gens_fs) */
#define ALLOC_WAIT_RESERVE  (1u << 2) /* only buckets reserved for a higher watermark left */

/* fragmentation classes: fragmentation_lru >> (31 - FRAG_CLASS_SHIFT), so
 * class c holds buckets c/32 .. (c+1)/32 full; 32 is a full bucket */
#define FRAG_CLASS_SHIFT 5
#define FRAG_CLASSES ((1u << FRAG_CLASS_SHIFT) + 1)

/* Per-device indexes over the bucket array (alloc_index.c): kept exact by
 * bucket_update(), rebuilt at open, never persisted. */
struct dev_index {
	u64 *free_bits;         /* bit b set: data_type free, b >= first_bucket */
	u64 nr_type[DATA_NR];   /* buckets per data_type */
	u64 nr_open_free;       /* free buckets handed out (BUCKET_OPEN) */
	s64 frag_sectors;       /* unused sectors of the indexed user buckets */
	/* user buckets not in a stripe, one doubly linked list per class */
	u32 *frag_next, *frag_prev;
	u32 frag_head[FRAG_CLASSES];
	u64 frag_count[FRAG_CLASSES];
	/* the last lap that found nothing: while no bucket became free since
	 * and the durable seq is the same, the next call fails at once */
	bool fail_valid;
	u64 fail_events, fail_durable;
	u32 fail_reasons;
	/* cached buckets to invalidate, oldest read first */
	u64 *lru;
	size_t nr_lru, lru_pos;
};

/* buckets beyond a rewrite of every node the checkpoint reserve keeps */
#define CHECKPOINT_SLACK_BUCKETS 2

/* allocator work counters (tests bound them: no call rescans everything) */
struct alloc_stats {
	u64 calls, buckets_scanned, words_scanned, gen_limit_hits, journal_waits, fast_fails;
};

/* One key with a pointer into a bucket (bucket_keys.c): its btree, its
 * position, and the gen of the pointer. */
struct bucket_key {
	u64 inode, offset;
	u32 snapshot;
	u8 btree_id, gen;
	u16 pad;
};
struct bucket_key_list;
/* the in-memory backpointers of copying GC (bucket_keys.c) */
struct bucket_keys {
	struct bucket_key_list **lists[BKFS_MAX_DEVS]; /* per bucket, NULL: none */
	u64 nbuckets[BKFS_MAX_DEVS]; /* of lists[dev] */
	bool built;
	u64 nr;     /* entries listed */
	u64 builds; /* full scans made */
	u64 drops;  /* times it was found to have drifted, or ran out of memory */
};

/* at most this many copies of a node on one device (DUP) */
#define BTREE_COPIES_PER_DEV 2

struct alloc_state {
	struct bkfs_alloc *buckets[BKFS_MAX_DEVS]; /* the alloc keys, mirrored in memory */
	u8 *bflags[BKFS_MAX_DEVS];
	u64 *dirty;           /* (dev << 48 | bucket) of buckets with BUCKET_DIRTY */
	size_t nr_dirty, dirty_cap;
	u64 cursor[BKFS_MAX_DEVS];
	/* move_wp: the mover's own write points, so moved (cold) data does not
	 * mix with new writes. btree_wp[dev][k]: the write point of a node's
	 * k-th copy on that device (two when a device holds two copies of every
	 * node, DUP); each has its own scan cursor (cursor, 0 = the device's
	 * shared one): copy 0 starts at the device's first bucket, copy 1 at
	 * its middle, so that the two copies lie far apart. */
	struct write_point { u64 bucket, cursor; u32 fill; bool open, btree; } data_wp[BKFS_MAX_DEVS],
		btree_wp[BKFS_MAX_DEVS][BTREE_COPIES_PER_DEV], move_wp[BKFS_MAX_DEVS];
	struct dev_index idx[BKFS_MAX_DEVS];
	u64 free_events;      /* buckets that became allocatable (fail-fast key) */
	u32 nospc_reasons;    /* ALLOC_WAIT_* of the last -BKFS_E_NOSPC */
	/* buckets of the checkpoint reserve's slack the mover may take in this
	 * step (move.c sets it when it is at its floor; at most
	 * CHECKPOINT_SLACK_BUCKETS - 1) */
	u8 copygc_grace;
	struct alloc_stats stats;
	/* data buckets a write point moved on from: space in them may have been
	 * handed to a transaction not yet committed, so they stay BUCKET_OPEN
	 * (never reallocated) until the next commit has applied its keys */
	u64 *closing;         /* dev << 48 | bucket */
	size_t nr_closing, closing_cap;
	/* accounting: sorted by pos */
	struct acct_entry { struct bpos pos; s64 v[3]; bool dirty; } *acct;
	size_t nr_acct, acct_cap;
	unsigned rr;          /* round-robin device start */
	u64 nr_invalidated;
	/* some bucket's gen is within reach of BUCKET_GC_GEN_MAX: generation GC
	 * is due before allocation runs into it (cleared by the runner) */
	bool gc_gens_soon;
	/* buckets marked need_discard, waiting for alloc_discard_buckets()
	 * (dev << 48 | bucket; may hold buckets reused since) */
	u64 *need_discard;
	size_t nr_need_discard, need_discard_cap;
	u64 nr_discarded;
	u64 nr_discard_skipped; /* freed without the device call: space short */
	/* stripes whose data blocks all became empty in the last commit: the
	 * commit's follow-up deletes them if they still are */
	u32 *empty_stripes;
	size_t nr_empty_stripes, empty_stripes_cap;
	struct bucket_keys bk;
};

static inline struct alloc_state *ALLOC(struct bkfs_fs *fs) { return fs->alloc; }
static inline u32 bucket_sectors(struct bkfs_fs *fs) { return fs->sb.bucket_size; }
static inline u64 ptr_bucket(struct bkfs_fs *fs, const struct bkfs_ptr *p) { return p->offset / fs->sb.bucket_size; }
static inline struct bkfs_alloc *bucket_get(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	return &ALLOC(fs)->buckets[dev][b];
}

int alloc_init(struct bkfs_fs *fs);      /* allocate empty state */
int alloc_load(struct bkfs_fs *fs);      /* read alloc + accounting btrees */
/* Read the alloc keys and accounting again, from scratch: after fsck has
 * rebuilt or repaired those btrees, the mirror must describe them (the
 * allocation sweeps compare against it and write only what differs). */
int alloc_reload(struct bkfs_fs *fs);
void alloc_exit(struct bkfs_fs *fs);
void bucket_set_dirty(struct bkfs_fs *fs, unsigned dev, u64 b);
/* Apply a change to one bucket and to dev_data_type accounting. */
void bucket_update(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bkfs_alloc *new);
/* The dev_data_type counters one bucket contributes (buckets, used sectors,
 * fragmented sectors); returns the counter's position. The single rule used by
 * bucket_update() and by the checker's recompute. */
struct bpos bucket_acct_counters(struct bkfs_fs *fs, unsigned dev, const struct bkfs_alloc *a, s64 v[3]);
/* Superblock and journal buckets: DATA_sb / DATA_journal with the sectors the
 * bucket holds, else DATA_free. Used by format and by the checker. */
unsigned sb_journal_bucket_type(struct bkfs_fs *fs, unsigned dev, u64 b, u32 *sectors);

/* accounting (in-memory table, persisted as accounting keys) */
struct acct_entry *acct_find(struct bkfs_fs *fs, struct bpos pos, bool create);
void acct_add(struct bkfs_fs *fs, struct bpos pos, s64 v0, s64 v1, s64 v2);
void acct_to_text(struct printbuf *out, struct bkfs_fs *fs, struct bpos pos, const s64 v[3]);

/* allocator */
/* A free bucket of dev for watermark wm, marked BUCKET_OPEN, its gen bumped
 * if it held data before. Never a bucket whose emptying is not durable yet
 * (journal_seq > durable seq) nor one waiting on gen GC. Amortised O(1): a
 * bitmap of free buckets scanned from a cursor; a lap that found nothing is
 * not repeated until a bucket becomes free or the durable seq moves.
 * -BKFS_E_NOSPC when none: alloc_nospc_reasons() then tells what would help. */
int alloc_bucket(struct bkfs_fs *fs, unsigned dev, enum alloc_watermark wm, u64 *bucket);
/* ALLOC_WAIT_* flags of the last -BKFS_E_NOSPC from the allocator (0: the
 * filesystem really is full, short of copying GC) */
u32 alloc_nospc_reasons(struct bkfs_fs *fs);
/* Buckets that wait on gen GC (data_type need_gc_gens), all devices. */
u64 alloc_nr_need_gc_gens(struct bkfs_fs *fs);
/* Allocate space for data: up to want sectors on nr distinct devices; the
 * same length on each. Returns the length in *got. */
int alloc_data_space(struct bkfs_fs *fs, unsigned nr, u32 want, struct bkfs_ptr *ptrs, u32 *got);
/* The same for a watermark, on devices not in exclude_devs (a mask: the
 * devices an extent keeps copies on), at least min sectors in one piece (a
 * fresh bucket when the open one has less left; min is capped at a bucket).
 * ALLOC_WM_copygc writes through the mover's own write points. */
int alloc_data_space_wm(struct bkfs_fs *fs, enum alloc_watermark wm, u32 exclude_devs, unsigned nr, u32 want,
			u32 min, struct bkfs_ptr *ptrs, u32 *got);
/* Buckets of dev kept back from watermark wm (those below it may not be
 * taken by wm). */
u64 alloc_reserve_buckets(struct bkfs_fs *fs, unsigned dev, enum alloc_watermark wm);
/* Buckets of dev after the superblock area. */
u64 alloc_dev_usable_buckets(const struct bkfs_fs *fs, unsigned dev);
/* Space is short when the free buckets (of a device, or summed) are within
 * 1/8 of the usable ones above the normal reserve: copying GC starts there
 * (move.c), and discard stops, since a punched hole would be refilled at once
 * (discard.c). */
static inline bool alloc_space_short(u64 free, u64 reserved_normal, u64 usable)
{
	return free <= reserved_normal + usable / 8;
}

/* What statfs and the background thread need, summed over present devices. */
struct alloc_space_info {
	u64 bucket_sectors;
	u64 total_buckets;      /* usable buckets (after the superblock area) */
	u64 free_buckets;       /* data_type free and not handed out */
	u64 need_gc_gens;       /* free once gen GC has run */
	u64 need_discard;       /* free once discarded (alloc/discard.c) */
	u64 fragmented_sectors; /* unused space in user buckets: what copying GC can recover */
	u64 reserved[ALLOC_WM_NR]; /* buckets watermark wm may not take */
	/* sectors normal writes can really get: free buckets above the normal
	 * reserve, plus the fragmented space, plus need_gc_gens and
	 * need_discard buckets */
	u64 avail_sectors;
};
void alloc_space_info(struct bkfs_fs *fs, struct alloc_space_info *si);

/* ---- the indexes (alloc_index.c) ---- */
/* make every index from the bucket array (at load, after a reload) */
int alloc_index_rebuild(struct bkfs_fs *fs);
void alloc_index_exit(struct bkfs_fs *fs);
/* bucket_update's hook: bucket b changes from old to new */
void alloc_index_update(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bkfs_alloc *old,
			const struct bkfs_alloc *new);
/* BUCKET_OPEN of b was set or cleared */
void alloc_index_open_changed(struct bkfs_fs *fs, unsigned dev, u64 b, bool open);
/* free buckets of dev not handed out (from the index, no scan) */
u64 alloc_dev_free_buckets(struct bkfs_fs *fs, unsigned dev);
u64 alloc_index_next_free(struct bkfs_fs *fs, unsigned dev, u64 from, u64 stop, bool *wrapped);
/* next cached bucket to invalidate (oldest read first), or UINT64_MAX */
u64 alloc_index_next_cached(struct bkfs_fs *fs, unsigned dev);
/* Up to nr user buckets of dev (not in a stripe) with at most max_used live
 * sectors, emptiest first, for which want (may be NULL) says yes, into out.
 * Cost: the buckets looked at, not the device's size. */
size_t alloc_frag_emptiest(struct bkfs_fs *fs, unsigned dev, u32 max_used, bool (*want)(void *, unsigned, u64),
			   void *arg, u64 *out, size_t nr);
/* A bucket from alloc_bucket() that was filled by other means than a write
 * point (parity of a stripe): it stops being open at the next commit. */
void alloc_bucket_put(struct bkfs_fs *fs, unsigned dev, u64 b);
/* A stripe's data blocks are all empty (the stripe_ptr trigger). */
void alloc_note_empty_stripe(struct bkfs_fs *fs, u32 idx);
/* Delete the stripes noted empty that still are (one transaction each):
 * their parity buckets become free. Run after every commit. */
int alloc_delete_empty_stripes(struct bkfs_fs *fs);
/* Close a data write point so the next write starts a fresh bucket. */
void alloc_close_write_points(struct bkfs_fs *fs);
u64 alloc_free_buckets(struct bkfs_fs *fs, unsigned dev);
/* Invalidate a cached-only bucket: gen++, cached data forgotten. */
int bucket_invalidate(struct bkfs_fs *fs, unsigned dev, u64 b);
/* Device bitmap of regions that have held btree nodes. */
void member_bitmap_mark(struct bkfs_fs *fs, unsigned dev, u64 sector, u32 sectors);
bool member_bitmap_test(const struct bkfs_member *m, u64 sector, u32 sectors);

/* ---- which keys point into each bucket (bucket_keys.c) ----
 * Built by one scan of the extents and reflink btrees on first use (by
 * copying GC only; refused under fsck), then kept exact by the trigger. */
int bucket_keys_build(struct bkfs_fs *fs);
/* forget it (rebuilt by the next bucket_keys_build) */
void bucket_keys_drop(struct bkfs_fs *fs);
/* the trigger's hook: key old at its position replaced by new (either may
 * be NULL) in btree_id */
void bucket_keys_update(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *old, const struct bkey *new);
/* The keys listed for bucket b of dev (any gen; none when not built); valid
 * until the next update. */
size_t bucket_keys_get(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bucket_key **out);

/* discard (discard.c): buckets emptied while discard is on wait in
 * need_discard until the update that emptied them is durable */
void discard_note(struct bkfs_fs *fs, unsigned dev, u64 b);
void discard_rebuild(struct bkfs_fs *fs);
u64 alloc_nr_need_discard(struct bkfs_fs *fs);
/* Discard up to max need_discard buckets whose emptying is durable and make
 * them free; *done = how many (the device call is left out where space is
 * short: discard.c). Returns the first device error (the buckets are freed
 * anyway: discard is advisory). */
int alloc_discard_buckets(struct bkfs_fs *fs, unsigned max, unsigned *done);

/* the normal-mode trigger: unmark old, mark new (triggers.c) */
int engine_trigger(struct trans *t, unsigned btree_id, unsigned level,
		   const struct bkey *old, const struct bkey *new);
/* hooks for the btree layer */
extern const struct bkfs_hooks bkfs_engine_hooks;
extern const struct mark_ops normal_mark_ops;

#endif
