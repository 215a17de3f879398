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
struct alloc_state {
	struct bkfs_alloc *buckets[BKFS_MAX_DEVS]; /* the alloc keys, mirrored in memory */
	u8 *bflags[BKFS_MAX_DEVS];
	u64 *dirty;           /* (dev << 48 | bucket) of buckets with BUCKET_DIRTY */
	size_t nr_dirty, dirty_cap;
	u64 cursor[BKFS_MAX_DEVS];
	struct write_point { u64 bucket; u32 fill; bool open; } data_wp[BKFS_MAX_DEVS], btree_wp[BKFS_MAX_DEVS];
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
	/* stripes whose data blocks all became empty in the last commit: the
	 * commit's follow-up deletes them if they still are */
	u32 *empty_stripes;
	size_t nr_empty_stripes, empty_stripes_cap;
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
int alloc_bucket(struct bkfs_fs *fs, unsigned dev, u64 *bucket);
/* Allocate space for data: up to want sectors on nr distinct devices; the
 * same length on each. Returns the length in *got. */
int alloc_data_space(struct bkfs_fs *fs, unsigned nr, u32 want, struct bkfs_ptr *ptrs, u32 *got);
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

/* discard (discard.c): buckets emptied while discard is on wait in
 * need_discard until the update that emptied them is durable */
void discard_note(struct bkfs_fs *fs, unsigned dev, u64 b);
void discard_rebuild(struct bkfs_fs *fs);
u64 alloc_nr_need_discard(struct bkfs_fs *fs);
/* Discard up to max need_discard buckets whose emptying is durable and make
 * them free; *done = how many. Returns the first device error (the buckets
 * are freed anyway: discard is advisory). */
int alloc_discard_buckets(struct bkfs_fs *fs, unsigned max, unsigned *done);

/* the normal-mode trigger: unmark old, mark new (triggers.c) */
int engine_trigger(struct trans *t, unsigned btree_id, unsigned level,
		   const struct bkey *old, const struct bkey *new);
/* hooks for the btree layer */
extern const struct bkfs_hooks bkfs_engine_hooks;
extern const struct mark_ops normal_mark_ops;

#endif
