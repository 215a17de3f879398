/* move.h - copying GC: the mover empties the least-used user buckets by
 * rewriting the live data in them elsewhere, so that the space deleted data
 * left behind in them can be reused.
 *
 * One call is one bounded step: it picks at most max_buckets victims, finds
 * the keys pointing into them in the in-memory backpointers
 * (alloc/bucket_keys.c, built by the first call), and moves each with an
 * ordinary transaction (the triggers keep every bucket count, replica
 * counter, reflink refcount and stripe count exact). A step costs in
 * proportion to the keys it moves, not to the size of the filesystem. No
 * iterator or pointer is kept between calls, so a background thread may hold
 * the engine lock for one call only and let other requests in between. An emptied bucket is reused like any other: once the
 * commit that emptied it is durable, with its gen bumped. */
#ifndef BKFS_MOVE_H
#define BKFS_MOVE_H
#include "../alloc/alloc.h"

struct copygc_stats {
	u64 buckets;        /* victims picked */
	u64 buckets_emptied;/* victims left without live data */
	u64 keys_moved;     /* extents and indirect extents rewritten */
	u64 sectors_moved;  /* sectors written to new space */
	u64 sectors_narrowed; /* dead sectors of trimmed extents left behind */
	u64 cached_dropped; /* cached pointers into victims dropped */
	u64 keys_skipped;   /* unreadable, or no device to move to */
	u64 keys_split;     /* moved as two or more pieces (move.c: move_pieces) */
	bool nospc;         /* the step stopped: the mover's reserve is used up */
	bool index_drifted; /* a victim kept data no listed key pointed at: the
			     * backpointers were dropped, the next step rebuilds them */
};

/* Move the live data out of up to max_buckets of the emptiest user buckets
 * (not open, not a write point's, not in a stripe). st (may be NULL) is
 * added to. Returns 0 (also when there was nothing to do: st->buckets 0) or
 * an error. */
int bkfs_copygc(struct bkfs_fs *fs, unsigned max_buckets, struct copygc_stats *st);

/* True when copying GC should run: free buckets are short (at most 1/8 of
 * the filesystem beyond the normal reserve) and the unused space in user
 * buckets is worth moving (at least 4 buckets' worth, and a victim exists). */
bool copygc_wanted(struct bkfs_fs *fs);

#endif
