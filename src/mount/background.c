/* background.c - the mount's background thread and the reclaim step.
 *
 * What runs, and when (each step holds the engine lock; between steps the
 * lock is released so FUSE requests go on):
 * - journal flush: committed changes not yet durable are flushed once they
 *   are flush_ms old, so a write left alone survives a crash a moment later
 *   (the kernel's sync(2) never reaches a FUSE server);
 * - generation GC (bkfs_gc_gens_fs, the same code as `bkfs gc-gens`): when
 *   buckets wait on it, or when some bucket's gen has come within reach of
 *   the limit (alloc_state.gc_gens_soon);
 * - copying GC (bkfs_copygc, data/move.c): while free buckets are short and
 *   user buckets hold enough unused space, a few of the emptiest at a time
 *   are evacuated, the journal flushed so they can be reused;
 * - discard: buckets emptied while discard is on are given back to the
 *   device once their emptying is durable (alloc/discard.c);
 * - an allocation that runs out of space waits in bkfs_reclaim() for the
 *   same work, synchronously, instead of failing while space can still be
 *   reclaimed. */
#include "background.h"
#include "../alloc/alloc.h"
#include "../data/move.h"
#include "../fsck/fsck.h"
#include "../fsck/scrub.h"
#include "../fs/super.h"
#include "../journal/journal.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* generation GC runs at most this often when only "soon" is the reason */
#define GC_GENS_MIN_INTERVAL_NS (1000ull * 1000 * 1000)
/* buckets discarded per step of the thread */
#define DISCARD_BATCH 256
/* victims of one copying GC step (the lock is held for one step) */
#define COPYGC_STEP_BUCKETS 16
/* steps an allocation that ran out of space waits for at most */
#define RECLAIM_COPYGC_STEPS 64

struct background {
	struct bkfs_fs *fs;
	pthread_mutex_t *lock;
	pthread_cond_t cond;
	pthread_t thread;
	struct bg_opts opts;
	bool stop, started;
	u64 last_gc_gens_ns;
	struct bg_stats stats;
	/* the running scrub (NULL: none), and the last finished one's reports */
	struct scrub *scrub;
	bool scrub_done;
	int scrub_status;
	char *scrub_text, *scrub_json;
};
/* scrub units (nodes, extents, stripes) per hold of the lock */
#define SCRUB_BG_UNITS 32

static u64 mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

/* nothing is written once a device write failed (the mount is read-only
 * from then on: fuse.c says so) */
static bool writable(struct bkfs_fs *fs)
{
	return !(fs->flags & BKFS_OPEN_RDONLY) && !bkfs_write_failed(fs);
}

/* Under the lock. Returns the buckets it freed, or a negative error. */
static long run_gc_gens(struct bkfs_fs *fs, struct bg_stats *st)
{
	struct alloc_state *as = ALLOC(fs);
	u64 before = alloc_nr_need_gc_gens(fs);
	as->gc_gens_soon = false;
	int ret = bkfs_gc_gens_fs(fs, NULL);
	if (ret) {
		fprintf(stderr, "bkfs mount: generation GC: %s\n", bkfs_strerror(ret));
		return ret;
	}
	u64 after = alloc_nr_need_gc_gens(fs);
	long freed = before > after ? (long)(before - after) : 0;
	if (st) {
		st->gc_gens_runs++;
		st->gc_gens_freed += freed;
	}
	return freed;
}

static bool gc_gens_due(struct background *bg, u64 now)
{
	struct bkfs_fs *fs = bg->fs;
	if (!bg->opts.gc || !writable(fs))
		return false;
	if (bg->opts.gc_continuous)
		return true;
	if (now - bg->last_gc_gens_ns < GC_GENS_MIN_INTERVAL_NS)
		return false;
	return alloc_nr_need_gc_gens(fs) || ALLOC(fs)->gc_gens_soon;
}

/* One step of copying GC, its emptied buckets made reusable (flush);
 * true if it moved anything. A step can move keys and empty no bucket: a
 * checkpoint in the middle of it took the buckets it was moving into. The
 * next step goes on from there (move.c lets it take one bucket of the
 * checkpoint reserve's slack when it is at its floor). */
static bool copygc_step(struct bkfs_fs *fs, struct bg_stats *st)
{
	struct copygc_stats cs = { 0 };
	u64 t0 = mono_ns();
	int ret = bkfs_copygc(fs, COPYGC_STEP_BUCKETS, &cs);
	u64 t1 = mono_ns();
	if (st) {
		st->copygc_runs++;
		st->copygc_buckets += cs.buckets_emptied;
		st->copygc_sectors += cs.sectors_moved;
		st->copygc_ns += t1 - t0;
	}
	if (ret) {
		fprintf(stderr, "bkfs mount: copying GC: %s\n", bkfs_strerror(ret));
		return false;
	}
	if (!cs.buckets_emptied)
		return cs.keys_moved > 0;
	ret = journal_flush(fs);
	if (st)
		st->copygc_flush_ns += mono_ns() - t1;
	return !ret;
}

static void run_discards(struct bkfs_fs *fs, struct bg_stats *st, unsigned max)
{
	unsigned n = 0;
	if (!alloc_nr_need_discard(fs))
		return;
	u64 t0 = mono_ns(), skipped = ALLOC(fs)->nr_discard_skipped;
	int ret = alloc_discard_buckets(fs, max, &n);
	if (st) {
		st->discard_skipped += ALLOC(fs)->nr_discard_skipped - skipped;
		st->discarded += n - (ALLOC(fs)->nr_discard_skipped - skipped);
		st->discard_ns += mono_ns() - t0;
	}
	if (ret && st && !st->discard_errors++)
		fprintf(stderr, "bkfs mount: discard: %s (buckets are reused anyway)\n", bkfs_strerror(ret));
}

static bool copygc_due(struct background *bg)
{
	struct bkfs_fs *fs = bg->fs;
	if (!bg->opts.gc || !writable(fs))
		return false;
	return bg->opts.gc_continuous || copygc_wanted(fs);
}

static bool reclaim(struct bkfs_fs *fs, struct background *bg);

bool bkfs_reclaim(struct bkfs_fs *fs, struct background *bg)
{
	u64 t0 = mono_ns();
	bool ok = reclaim(fs, bg);
	if (bg)
		bg->stats.reclaim_ns += mono_ns() - t0;
	return ok;
}

static bool reclaim(struct bkfs_fs *fs, struct background *bg)
{
	struct bg_stats *st = bg ? &bg->stats : NULL;
	if (!writable(fs))
		return false;
	if (st)
		st->reclaims++;
	/* space freed by a commit is reused only once that commit is durable */
	if (journal_flush(fs))
		return false;
	if (alloc_nr_need_gc_gens(fs)) {
		if (run_gc_gens(fs, st) < 0)
			return false;
		if (bg)
			bg->last_gc_gens_ns = mono_ns();
		/* its own commits must be durable before its buckets are reused */
		if (journal_flush(fs))
			return false;
	}
	run_discards(fs, st, UINT32_MAX);
	for (unsigned i = 0; i < RECLAIM_COPYGC_STEPS && copygc_wanted(fs); i++) {
		if (!copygc_step(fs, st))
			break;
		run_discards(fs, st, UINT32_MAX);
	}
	if (st)
		st->reclaim_waits_ok++;
	return true;
}

static void do_flush(struct background *bg)
{
	struct bkfs_fs *fs = bg->fs;
	if (!writable(fs) || !journal_needs_flush(fs))
		return;
	int ret = journal_flush(fs);
	bg->stats.flushes++;
	if (ret) {
		bg->stats.flush_errors++;
		fprintf(stderr, "bkfs mount: timed journal flush: %s\n", bkfs_strerror(ret));
	}
}

/* Let a waiting request in between two steps of work. */
static void yield_lock(struct background *bg)
{
	pthread_mutex_unlock(bg->lock);
	sched_yield();
	pthread_mutex_lock(bg->lock);
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* How long to sleep: until the next flush is due, at most a second (10 ms
 * when the GC runs continuously). */
static unsigned sleep_ms(struct background *bg, u64 last_flush_ns)
{
	if (bg->opts.gc_continuous)
		return 10;
	if (!bg->opts.flush_ms)
		return 1000;
	u64 due = last_flush_ns + (u64)bg->opts.flush_ms * 1000000, now = mono_ns();
	return due <= now ? 1 : (unsigned)MIN((due - now + 999999) / 1000000, 1000ull);
}

int bg_scrub_start(struct background *bg, bool repair)
{
	if (bg->scrub)
		return -BKFS_E_BUSY;
	if (repair && !writable(bg->fs))
		return -BKFS_E_INVAL;
	if (!(bg->scrub = xcalloc(1, sizeof(*bg->scrub))))
		return -BKFS_E_NOMEM;
	scrub_init(bg->scrub, bg->fs, repair);
	pthread_cond_signal(&bg->cond);
	return 0;
}

void bg_scrub_state(struct background *bg, struct bg_scrub_state *out)
{
	memset(out, 0, sizeof(*out));
	out->state = bg->scrub ? BKFS_SCRUB_RUNNING : bg->scrub_done ? BKFS_SCRUB_DONE : BKFS_SCRUB_IDLE;
	out->status = bg->scrub_status;
	out->text = bg->scrub_text;
	out->json = bg->scrub_json;
	if (bg->scrub) {
		out->phase = scrub_phase_name(bg->scrub);
		out->pct = (u32)(scrub_progress(bg->scrub) * 100);
	}
}

/* The scrub's end: keep its reports for the status requests. */
static void scrub_done(struct background *bg)
{
	struct scrub *s = bg->scrub;
	struct printbuf text = PRINTBUF, json = PRINTBUF;
	scrub_finish(s);
	scrub_report_text(&text, s);
	scrub_report_json(&json, s);
	free(bg->scrub_text);
	free(bg->scrub_json);
	bg->scrub_text = text.buf;
	bg->scrub_json = json.buf;
	bg->scrub_status = scrub_exit_status(s);
	bg->scrub_done = true;
	fprintf(stderr, "bkfs mount: scrub done (exit status %d)\n", bg->scrub_status);
	scrub_exit(s);
	free(s);
	bg->scrub = NULL;
}

/* Step by step, letting requests in between. */
static void run_scrub(struct background *bg)
{
	while (!bg->stop && bg->scrub) {
		if (scrub_step(bg->scrub, SCRUB_BG_UNITS))
			scrub_done(bg);
		yield_lock(bg);
	}
}

static void *bg_thread(void *arg)
{
	struct background *bg = arg;
	struct bkfs_fs *fs = bg->fs;
	u64 last_flush = mono_ns();
	pthread_mutex_lock(bg->lock);
	while (!bg->stop) {
		struct timespec ts;
		deadline_after(&ts, sleep_ms(bg, last_flush));
		pthread_cond_timedwait(&bg->cond, bg->lock, &ts);
		if (bg->stop)
			break;
		/* by the clock, however often requests kick the thread */
		u64 now = mono_ns();
		if (bg->opts.flush_ms && now - last_flush >= (u64)bg->opts.flush_ms * 1000000) {
			do_flush(bg);
			last_flush = now;
		}
		if (writable(fs))
			run_discards(fs, &bg->stats, DISCARD_BATCH);
		if (gc_gens_due(bg, now)) {
			run_gc_gens(fs, &bg->stats);
			bg->last_gc_gens_ns = mono_ns();
			yield_lock(bg);
		}
		/* step by step, letting requests in between */
		while (!bg->stop && copygc_due(bg) && copygc_step(fs, &bg->stats)) {
			run_discards(fs, &bg->stats, DISCARD_BATCH);
			yield_lock(bg);
			if (bg->opts.gc_continuous)
				break;
		}
		run_scrub(bg);
		btree_cache_trim(fs);
	}
	pthread_mutex_unlock(bg->lock);
	return NULL;
}

int bg_start(struct bkfs_fs *fs, pthread_mutex_t *lock, const struct bg_opts *o, struct background **out)
{
	struct background *bg = xcalloc(1, sizeof(*bg));
	if (!bg)
		return -BKFS_E_NOMEM;
	bg->fs = fs;
	bg->lock = lock;
	bg->opts = *o;
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bg->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&bg->thread, NULL, bg_thread, bg)) {
		pthread_cond_destroy(&bg->cond);
		free(bg);
		return -BKFS_E_NOMEM;
	}
	bg->started = true;
	*out = bg;
	return 0;
}

void bg_stop(struct background *bg, struct bg_stats *final)
{
	if (!bg)
		return;
	pthread_mutex_lock(bg->lock);
	bg->stop = true;
	pthread_cond_signal(&bg->cond);
	pthread_mutex_unlock(bg->lock);
	if (bg->started)
		pthread_join(bg->thread, NULL);
	if (ALLOC(bg->fs)) { /* the FUSE loop has ended: no request runs */
		const struct bucket_keys *bk = &ALLOC(bg->fs)->bk;
		bg->stats.bk_keys = bk->nr;
		bg->stats.bk_builds = bk->builds;
		bg->stats.bk_drops = bk->drops;
	}
	if (final)
		*final = bg->stats;
	pthread_cond_destroy(&bg->cond);
	if (bg->scrub) /* stopped half way: nothing to report */
		scrub_exit(bg->scrub);
	free(bg->scrub);
	free(bg->scrub_text);
	free(bg->scrub_json);
	free(bg);
}

void bg_kick(struct background *bg)
{
	if (bg)
		pthread_cond_signal(&bg->cond);
}

void bg_kick_if_due(struct background *bg)
{
	if (!bg || !bg->opts.gc || !writable(bg->fs))
		return;
	/* not for copying GC: each step scans the extents btree, and steps
	 * squeezed between requests came out 30 % slower than larger ones on
	 * the timer and in reclaim (churn at 80 %, 64 MiB) */
	if (ALLOC(bg->fs)->gc_gens_soon)
		pthread_cond_signal(&bg->cond);
}

void bg_stats_to_text(struct printbuf *out, const struct bg_stats *s)
{
	pb_printf(out, "journal flushes %llu (errors %llu); buckets discarded %llu (errors %llu; %llu more freed without it, space short); "
		  "gen GC runs %llu, buckets freed %llu; "
		  "copying GC runs %llu, buckets %llu, sectors %llu; reclaims %llu (%llu retried); "
		  "ms in copying GC %llu, its flushes %llu, discard %llu, reclaim %llu; "
		  "backpointers in memory %llu (built %llu, dropped %llu)",
		  (unsigned long long)s->flushes, (unsigned long long)s->flush_errors,
		  (unsigned long long)s->discarded, (unsigned long long)s->discard_errors,
		  (unsigned long long)s->discard_skipped,
		  (unsigned long long)s->gc_gens_runs, (unsigned long long)s->gc_gens_freed,
		  (unsigned long long)s->copygc_runs, (unsigned long long)s->copygc_buckets,
		  (unsigned long long)s->copygc_sectors, (unsigned long long)s->reclaims,
		  (unsigned long long)s->reclaim_waits_ok, (unsigned long long)(s->copygc_ns / 1000000),
		  (unsigned long long)(s->copygc_flush_ns / 1000000), (unsigned long long)(s->discard_ns / 1000000),
		  (unsigned long long)(s->reclaim_ns / 1000000), (unsigned long long)s->bk_keys,
		  (unsigned long long)s->bk_builds, (unsigned long long)s->bk_drops);
}
