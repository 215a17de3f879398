/* background.h - the mounted filesystem's background work: a thread that
 * flushes the journal on a timer and runs generation GC and copying GC
 * while FUSE requests go on, and the reclaim step an allocation that ran
 * out of space waits for.
 *
 * Every call into the engine holds the mount's engine lock (the FUSE
 * adapter's mutex); the thread takes it for one bounded step at a time and
 * sleeps on a condition variable tied to it, so requests interleave with
 * the work. */
#ifndef BKFS_BACKGROUND_H
#define BKFS_BACKGROUND_H
#include "../btree/btree.h"
#include <pthread.h>
#include "scrub_ioctl.h"

struct bg_opts {
	unsigned flush_ms;   /* journal flush interval; 0 = only fsync and full entries */
	bool gc;             /* generation GC and copying GC in the background */
	bool gc_continuous;  /* debug knob: run both over and over, needed or not */
};
#define BG_FLUSH_MS_DEFAULT 1000

struct bg_stats {
	u64 flushes, flush_errors;
	u64 discarded, discard_errors, discard_skipped; /* skipped: freed without the device call */
	u64 gc_gens_runs, gc_gens_freed;
	u64 copygc_runs, copygc_buckets, copygc_sectors;
	u64 reclaims, reclaim_waits_ok;
	/* wall time, in ns, spent under the lock in: copying GC steps, the
	 * journal flushes after them, discards, and reclaim as a whole (what
	 * an allocation that ran out of space waited) */
	u64 copygc_ns, copygc_flush_ns, discard_ns, reclaim_ns;
	/* copying GC's in-memory backpointers at the end (alloc/bucket_keys.c):
	 * pointers listed, full scans made, times found drifted */
	u64 bk_keys, bk_builds, bk_drops;
};

struct background;

/* Start the thread. lock is the engine lock; the caller must not hold it. */
int bg_start(struct bkfs_fs *fs, pthread_mutex_t *lock, const struct bg_opts *o, struct background **out);
/* Stop and join the thread (the caller must not hold the lock); its
 * statistics go to *final when not NULL. NULL bg is a no-op. */
void bg_stop(struct background *bg, struct bg_stats *final);
/* Wake the thread: something happened that may make work due. Under the lock. */
void bg_kick(struct background *bg);
/* Wake it if generation GC is due now (a gen near the limit), so it runs
 * between requests instead of inside one. Under the lock. */
void bg_kick_if_due(struct background *bg);
void bg_stats_to_text(struct printbuf *out, const struct bg_stats *s);

/* A scrub on the mount (bkfs scrub MOUNTPOINT, through BKFS_IOC_SCRUB):
 * the thread runs it in bounded steps (SCRUB_BG_UNITS nodes, extents or
 * stripes per hold of the lock), requests going on in between. Under the
 * lock. Start: -BKFS_E_BUSY while one runs, -BKFS_E_INVAL to repair on a
 * mount gone read-only. */
int bg_scrub_start(struct background *bg, bool repair);
struct bg_scrub_state {
	u32 state;          /* BKFS_SCRUB_IDLE / _RUNNING / _DONE */
	u32 pct;            /* progress of the running one */
	int status;         /* the last finished one's exit bits (enum fsck_exit) */
	const char *phase;
	const char *text, *json; /* the last finished one's reports, or NULL */
};
void bg_scrub_state(struct background *bg, struct bg_scrub_state *out);

/* Under the engine lock, after an operation ran out of space: make freed
 * space reusable (journal flush), run generation GC if buckets wait on it,
 * and copying GC while it frees buckets. Returns true if the operation
 * should be tried again. bg may be NULL (no statistics kept). */
bool bkfs_reclaim(struct bkfs_fs *fs, struct background *bg);

#endif
