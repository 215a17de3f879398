/* scrub.c - read every node copy, extent replica and stripe block; repair
 * from a good copy or from parity. See scrub.h. */
#include "../util/darray.h"
#include "scrub.h"
#include "scrub_runs.h"
#include "../alloc/alloc.h"
#include "../data/ec.h"
#include "../data/extent.h"
#include "../fs/fs.h"
#include "../btree/iter.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const phase_names[] = { "nodes", "data", "stripes", "done" };

static unsigned popcount(u32 v) { return (unsigned)__builtin_popcount(v); }

static void scrub_lost(struct scrub *s, u64 inum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void scrub_lost(struct scrub *s, u64 inum, const char *fmt, ...)
{
	if (darray_room(s->lost, s->cap_lost, s->nr_lost + 1, 16))
		return; /* counted in the stats all the same */
	struct printbuf pb = PRINTBUF;
	va_list ap;
	va_start(ap, fmt);
	pb_vprintf(&pb, fmt, ap);
	va_end(ap);
	s->lost[s->nr_lost++] = (struct scrub_loss){ .inum = inum, .what = pb.buf ? pb.buf : strdup("") };
}

static u64 used_bytes_estimate(struct bkfs_fs *fs)
{
	u64 sectors = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!fs->devs[d].bd || !fs->alloc)
			continue;
		for (u64 b = 0; b < fs->sb.members[d].nbuckets; b++)
			sectors += bucket_get(fs, d, b)->dirty_sectors;
	}
	return sectors << SECTOR_SHIFT;
}

void scrub_init(struct scrub *s, struct bkfs_fs *fs, bool repair)
{
	memset(s, 0, sizeof(*s));
	s->fs = fs;
	s->repair = repair;
	s->total_bytes = used_bytes_estimate(fs);
}

/* ---- walking and batches ---- */

enum walk_end { WALK_MORE, WALK_DONE, WALK_BROKEN };

/* Keys of s->btree_id at level from s->pos through fn, within the budget.
 * WALK_BROKEN: a node on the way has no good copy (*err: why); the caller
 * lists it (walk_broken), and the rest of this btree is fsck's work. */
static int walk_keys(struct scrub *s, unsigned level, unsigned *budget,
		     int (*fn)(struct scrub *, unsigned, const struct bkey *), enum walk_end *end, int *err)
{
	struct btree_iter it;
	struct bkey *k = NULL;
	int ret = 0;
	*end = WALK_MORE;
	if (!*budget)
		return 0;
	btree_iter_init(&it, s->fs, s->btree_id, level, s->pos);
	while (*budget && !(ret = btree_iter_peek(&it, &k)) && k) {
		struct bkey_buf kb;
		memcpy(&kb, k, bkey_bytes(k));
		btree_iter_advance(&it);
		s->pos = it.pos;
		(*budget)--;
		if ((ret = fn(s, s->btree_id, &kb.k)))
			return ret;
	}
	if (ret == -BKFS_E_NOMEM)
		return ret;
	if (ret) {
		*err = ret;
		*end = WALK_BROKEN;
	} else if (!k || it.end) { /* it.end: the last key was at POS_MAX */
		*end = WALK_DONE;
	}
	return 0;
}

static void walk_broken(struct scrub *s, unsigned level, int err)
{
	struct printbuf pb = PRINTBUF;
	bpos_to_text(&pb, s->pos);
	scrub_lost(s, 0, "btree %s level %u from %s: not scrubbed, %s", btree_id_str(s->btree_id), level, pb_str(&pb),
		   bkfs_strerror(err));
	pb_exit(&pb);
}

/* A step's nodes (at one level) or extents are checked as a batch: the keys
 * are walked in key order and copied here, then every copy (node image or
 * extent replica) is read in device order, neighbours in runs of one pread
 * each (scrub_runs.h), and verified. A key whose copies all verified is
 * counted as checking it alone would count it; any other (a bad copy, a
 * failed read, no copy to read) is checked alone, read again from the
 * device, so its findings, repairs and counts are those of a scrub key by
 * key. The batch's reads end before its first repair.
 *
 * With helper threads a batch is launched, verified by the helpers while
 * the step's thread walks the next one, and landed (the step's thread takes
 * the runs left, waits for the helpers, then checks the bad keys alone)
 * before the next is launched: the walk's node reads and the batch's device
 * reads overlap. The walk of one level reads the nodes the batch of the
 * level above verifies, so a batch lands before the walk moves to another
 * level, btree or phase: no node is read through the cache before its
 * copies were verified (and repaired). */
#define BATCH_UNREAD (1u << 31) /* bad[]: no copy of the key was read */

struct scrub_batch {
	DARRAY(u64) keys;  /* the keys, back to back */
	DARRAY(size_t) at; /* each key's first u64 in keys */
	DARRAY(u32) bad;   /* per key: the copies that failed, or BATCH_UNREAD */
	DARRAY(struct scrub_read) reads;
	DARRAY(struct scrub_run) runs;
	size_t next_run;   /* the next run to read (atomic: the helpers take runs too) */
	u8 *buf;           /* a run's bytes, for the step's thread */
	size_t buf_bytes;
	/* where the walk that filled it was */
	const struct batch_ops *ops;
	enum scrub_phase phase;
	unsigned id, level;
};

struct batch_ops {
	/* read every copy around the host's page cache, as nothing reads them
	 * again; else a node's first copy goes through it: the walk of the
	 * level below (or of the data) reads that copy next, and waiting for
	 * each of those reads behind the batches' large ones took most of a
	 * scrub's time */
	bool uncached;
	/* the walk's function: batch_push() the keys to check */
	int (*collect)(struct scrub *s, unsigned id, const struct bkey *k);
	/* push key i's reads (batch_push_reads) */
	int (*reads)(struct scrub *s, struct scrub_batch *b, size_t i);
	/* whether read r of k, its bytes at img, is a good copy (called on
	 * the helpers too: it reads nothing but img, k and the superblock) */
	bool (*good)(struct scrub *s, unsigned id, const struct bkey *k, const struct scrub_read *r, const u8 *img);
	/* count a key whose every copy read was good */
	void (*clean)(struct scrub *s, const struct bkey *k);
	/* check any other key alone */
	int (*check)(struct scrub *s, unsigned id, const struct bkey *k);
};

static const struct bkey *batch_key(const struct scrub_batch *b, size_t i)
{
	return (const struct bkey *)&b->keys.data[b->at.data[i]];
}

static int batch_push(struct scrub *s, const struct bkey *k)
{
	struct scrub_batch *b = s->batch;
	size_t u64s = bkey_bytes(k) / 8;
	if (darray_make_room(b->keys, u64s) || darray_push(b->at, b->keys.nr))
		return -BKFS_E_NOMEM;
	memcpy(&b->keys.data[b->keys.nr], k, u64s * 8);
	b->keys.nr += u64s;
	return 0;
}

static bool dev_present(const struct bkfs_fs *fs, unsigned dev)
{
	return dev < fs->nr_devs && fs->devs[dev].bd;
}

/* Reads of len bytes at each of key i's ptrs[0..nr) on a present device
 * (not the cached ones unless cached_too); none: bad[i] stays BATCH_UNREAD */
static int batch_push_reads(struct scrub *s, struct scrub_batch *b, size_t i, const struct bkfs_ptr *ptrs,
			    unsigned nr, bool cached_too, u32 len, u32 csum)
{
	for (unsigned j = 0; j < nr; j++) {
		const struct bkfs_ptr *p = &ptrs[j];
		if (!dev_present(s->fs, p->dev) || (!cached_too && (p->flags & PTR_CACHED)))
			continue;
		struct scrub_read r = { .off = p->offset << SECTOR_SHIFT, .len = len, .csum = csum, .key = (u32)i,
					.dev = p->dev, .ptr = (u8)j };
		if (darray_push(b->reads, r))
			return -BKFS_E_NOMEM;
		b->bad.data[i] = 0;
	}
	return 0;
}

/* Whether to read run around the host's page cache: unless a copy in it is
 * one the walk reads next (a node's first: reads of a node try its copies
 * in order) */
static bool run_uncached(const struct scrub_batch *b, const struct scrub_run *run)
{
	if (b->ops->uncached)
		return true;
	for (size_t j = run->first; j < run->first + run->nr; j++)
		if (b->reads.data[j].ptr == 0)
			return false;
	return true;
}

/* Take the batch's runs one by one, read each into *buf and verify the
 * copies in it (the step's thread and the helpers, side by side) */
static void verify_runs(struct scrub *s, struct scrub_batch *b, u8 **buf, size_t *buf_bytes)
{
	size_t i;
	while ((i = __atomic_fetch_add(&b->next_run, 1, __ATOMIC_RELAXED)) < b->runs.nr) {
		const struct scrub_run *run = &b->runs.data[i];
		const u8 *data = NULL;
		int ret = scrub_run_read(s->fs, run, run_uncached(b, run), buf, buf_bytes, &data);
		for (size_t j = run->first; j < run->first + run->nr; j++) {
			const struct scrub_read *r = &b->reads.data[j];
			if (ret || !b->ops->good(s, b->id, batch_key(b, r->key), r, data + (r->off - run->off)))
				__atomic_fetch_or(&b->bad.data[r->key], 1u << r->ptr, __ATOMIC_RELAXED);
		}
	}
}

/* Helper threads verifying a batch's runs: reading (a wait on the device)
 * and verifying (checksums, node validation) overlap on the cores and with
 * the walk, and the device has several reads in flight (a virtual or
 * solid-state disk serves them in parallel). Each keeps a buffer of its
 * own. */
#define SCRUB_HELPERS_MAX 4

struct scrub_helper_thread {
	pthread_t thread;
	struct scrub_helper *h;
	u8 *buf;
	size_t buf_bytes;
};

struct scrub_helper {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	unsigned given;   /* batches handed over */
	unsigned running; /* threads still verifying the batch handed over */
	struct scrub *s;
	struct scrub_batch *b; /* the batch handed over */
	unsigned nr;
	struct scrub_helper_thread t[SCRUB_HELPERS_MAX];
};

static void *helper_thread(void *arg)
{
	struct scrub_helper_thread *t = arg;
	struct scrub_helper *h = t->h;
	unsigned seen = 0;
	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		if (seen == h->given) {
			pthread_cond_wait(&h->cond, &h->lock);
			continue;
		}
		seen = h->given;
		struct scrub_batch *b = h->b;
		pthread_mutex_unlock(&h->lock);
		verify_runs(h->s, b, &t->buf, &t->buf_bytes);
		pthread_mutex_lock(&h->lock);
		if (!--h->running)
			pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

static void helper_free(struct scrub_helper *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < h->nr; i++) {
		pthread_join(h->t[i].thread, NULL);
		free(h->t[i].buf);
	}
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int scrub_helper_on(struct scrub *s)
{
	struct scrub_helper *h;
	unsigned cpus = usable_cpus(), want = cpus < 2 ? 0 : MIN(2 * cpus - 1, SCRUB_HELPERS_MAX);
	if (s->helper || !want)
		return 0;
	if (!(h = xcalloc(1, sizeof(*h))))
		return -BKFS_E_NOMEM;
	h->s = s;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	for (; h->nr < want; h->nr++) {
		h->t[h->nr].h = h;
		if (pthread_create(&h->t[h->nr].thread, NULL, helper_thread, &h->t[h->nr]))
			break;
	}
	if (!h->nr) {
		helper_free(h);
		return -BKFS_E_NOMEM;
	}
	s->helper = h;
	return 0;
}

/* The reads of the batch's keys, cut into runs */
static int batch_plan(struct scrub *s, struct scrub_batch *b)
{
	size_t nr = b->at.nr;
	int ret = 0;
	b->reads.nr = 0;
	if (darray_room(b->bad.data, b->bad.size, nr, DARRAY_FIRST))
		return -BKFS_E_NOMEM;
	for (size_t i = 0; i < nr && !ret; i++) {
		b->bad.data[i] = BATCH_UNREAD;
		ret = b->ops->reads(s, b, i);
	}
	if (ret || darray_room(b->runs.data, b->runs.size, b->reads.nr, DARRAY_FIRST))
		return -BKFS_E_NOMEM;
	b->runs.nr = scrub_plan_runs(b->reads.data, b->reads.nr, b->runs.data, SCRUB_RUN_BYTES, SCRUB_RUN_GAP);
	b->next_run = 0;
	return 0;
}

/* Hand the batch's runs to the helpers (if any): it is in flight until
 * batch_land() */
static void batch_launch(struct scrub *s, struct scrub_batch *b)
{
	struct scrub_helper *h = s->helper;
	s->flying = b;
	if (!h || !b->runs.nr)
		return;
	pthread_mutex_lock(&h->lock);
	h->b = b;
	h->running = h->nr;
	h->given++;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

/* Finish the batch in flight: its runs left read and verified here, the
 * helpers waited for, the devices' read counters kept (by this thread
 * only), then every key counted or checked alone. */
static int batch_land(struct scrub *s)
{
	struct scrub_batch *b = s->flying;
	struct scrub_helper *h = s->helper;
	int ret = 0;
	if (!b)
		return 0;
	verify_runs(s, b, &b->buf, &b->buf_bytes);
	if (h && b->runs.nr) {
		pthread_mutex_lock(&h->lock);
		while (h->running)
			pthread_cond_wait(&h->cond, &h->lock);
		pthread_mutex_unlock(&h->lock);
	}
	s->flying = NULL;
	for (size_t i = 0; i < b->runs.nr; i++) {
		const struct scrub_run *run = &b->runs.data[i];
		struct blockdev *bd = s->fs->devs[run->dev].bd;
		bd->nr_reads++;
		bd->bytes_read += run->len;
	}
	for (size_t i = 0; i < b->at.nr && !ret; i++) {
		if (b->bad.data[i])
			ret = b->ops->check(s, b->id, batch_key(b, i));
		else
			b->ops->clean(s, batch_key(b, i));
	}
	return ret;
}

/* The batch the walk fills: the one not in flight */
static struct scrub_batch *batch_spare(struct scrub *s)
{
	for (unsigned i = 0; i < ARRAY_SIZE(s->batches); i++) {
		if (!s->batches[i] && !(s->batches[i] = xcalloc(1, sizeof(*s->batches[i]))))
			return NULL;
		if (s->batches[i] != s->flying)
			return s->batches[i];
	}
	return NULL;
}

/* Walk keys at level from s->pos into a batch and launch it, once the one
 * in flight has landed; without helpers it lands at once. */
static int batch_step(struct scrub *s, unsigned level, unsigned *budget, const struct batch_ops *ops,
		      enum walk_end *end)
{
	struct scrub_batch *f = s->flying, *b;
	int err = 0, ret = 0;
	*end = WALK_MORE;
	if (f && (f->phase != s->phase || f->id != s->btree_id || f->level != level) && (ret = batch_land(s)))
		return ret;
	if (!(b = s->batch = batch_spare(s)))
		return -BKFS_E_NOMEM;
	b->keys.nr = b->at.nr = 0;
	b->ops = ops;
	b->phase = s->phase;
	b->id = s->btree_id;
	b->level = level;
	ret = walk_keys(s, level, budget, ops->collect, end, &err);
	if (!ret)
		ret = batch_plan(s, b);
	if (!ret)
		ret = batch_land(s);
	if (!ret) {
		batch_launch(s, b);
		if (!s->helper)
			ret = batch_land(s);
	}
	if (!ret && *end == WALK_BROKEN)
		walk_broken(s, level, err);
	return ret;
}

static void batch_free(struct scrub_batch *b)
{
	if (!b)
		return;
	darray_exit(b->keys);
	darray_exit(b->at);
	darray_exit(b->bad);
	darray_exit(b->reads);
	darray_exit(b->runs);
	free(b->buf);
	free(b);
}

/* ---- nodes ---- */

static void next_btree(struct scrub *s)
{
	s->btree_id++;
	s->root_done = false;
	s->pos = POS_MIN;
}

static int check_node(struct scrub *s, unsigned id, const struct bkey *k)
{
	struct bkfs_fs *fs = s->fs;
	const struct bkfs_btree_ptr *p = bkey_val(k);
	struct node_copies nc;
	int ret = btree_node_check_copies(fs, id, k, &nc);
	if (ret)
		return ret;
	s->st.nodes++;
	s->st.node_copies += popcount(nc.good | nc.bad);
	s->st.copies_missing += popcount(nc.missing);
	s->st.bytes_read += nc.bytes_read;
	if (!nc.bad)
		return 0;
	s->st.node_copies_bad += popcount(nc.bad);
	struct btree *mended = NULL;
	if (!nc.good && (ret = btree_node_read_mended(fs, id, k, &mended)) == -BKFS_E_NOMEM)
		return ret;
	btree_node_mem_free(mended); /* the rewrites below mend again */
	if (!nc.good && !mended) {
		struct printbuf pb = PRINTBUF;
		bpos_to_text(&pb, p->min_key);
		pb_printf(&pb, " to ");
		bpos_to_text(&pb, k->p);
		s->st.nodes_lost++;
		scrub_lost(s, 0, "btree %s level %u node %s: no good copy (fsck rebuilds what it can)", btree_id_str(id),
			   p->level, pb_str(&pb));
		pb_exit(&pb);
		return 0;
	}
	for (unsigned i = 0; s->repair && i < BKFS_MAX_REPLICAS; i++) {
		if (!(nc.bad >> i & 1))
			continue;
		struct node_copy_bad bc = { .btree_id = id, .copy = i, .max_key = k->p, .ptr = *p };
		int r = btree_node_copy_rewrite(fs, &bc);
		if (r == -BKFS_E_NOMEM)
			return r;
		if (!r) {
			s->st.node_copies_repaired++;
			s->st.bytes_written += fs->node_bytes;
			continue;
		}
		struct printbuf pb = PRINTBUF;
		node_copy_bad_to_text(&pb, &bc);
		scrub_lost(s, 0, "%s: not rewritten: %s", pb_str(&pb), bkfs_strerror(r));
		pb_exit(&pb);
	}
	return 0;
}

static int check_root(struct scrub *s)
{
	struct btree_root *r = &s->fs->roots[s->btree_id];
	int ret = batch_land(s); /* the last batch of the btree before */
	if (ret)
		return ret;
	s->root_done = true;
	s->pos = POS_MIN;
	s->level = r->ptr.level;
	if (!r->ptr.nr_ptrs) /* in memory only: nothing on disk yet */
		return 0;
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(r->ptr));
	memcpy(bkey_val(&kb.k), &r->ptr, sizeof(r->ptr));
	return check_node(s, s->btree_id, &kb.k);
}

static int node_collect(struct scrub *s, unsigned id, const struct bkey *k)
{
	return batch_push(s, k);
}

static int node_reads(struct scrub *s, struct scrub_batch *b, size_t i)
{
	const struct bkfs_btree_ptr *p = bkey_val(batch_key(b, i));
	return batch_push_reads(s, b, i, p->ptrs, MIN((unsigned)p->nr_ptrs, (unsigned)BKFS_MAX_REPLICAS), true,
				s->fs->node_bytes, 0);
}

static bool node_good(struct scrub *s, unsigned id, const struct bkey *k, const struct scrub_read *r, const u8 *img)
{
	return !btree_node_check_image(s->fs, id, k, img);
}

/* as check_node() counts a node whose copies are all good */
static void node_clean(struct scrub *s, const struct bkey *k)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	s->st.nodes++;
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		if (!dev_present(s->fs, p->ptrs[i].dev)) {
			s->st.copies_missing++;
			continue;
		}
		s->st.node_copies++;
		s->st.bytes_read += s->fs->node_bytes;
	}
}

static const struct batch_ops node_ops = {
	.collect = node_collect, .reads = node_reads, .good = node_good, .clean = node_clean, .check = check_node,
};

/* The pointers at s->level (to nodes one level down), from s->pos. */
static int nodes_level_step(struct scrub *s, unsigned *budget)
{
	enum walk_end end;
	int ret = batch_step(s, s->level, budget, &node_ops, &end);
	if (ret || end == WALK_MORE)
		return ret;
	if (end == WALK_BROKEN || s->level <= 1) {
		next_btree(s);
	} else {
		s->level--;
		s->pos = POS_MIN;
	}
	return 0;
}

static int nodes_step(struct scrub *s, unsigned *budget)
{
	while (*budget && s->btree_id < BTREE_ID_NR) {
		int ret;
		if (s->fs->roots[s->btree_id].error) {
			next_btree(s);
			continue;
		}
		if (!s->root_done) {
			(*budget)--;
			if ((ret = check_root(s)))
				return ret;
			if (!s->level)
				next_btree(s);
			continue;
		}
		if ((ret = nodes_level_step(s, budget)))
			return ret;
	}
	if (s->btree_id >= BTREE_ID_NR) {
		s->phase = SCRUB_DATA;
		s->btree_id = BTREE_ID_extents;
		s->pos = POS_MIN;
	}
	return 0;
}

/* ---- data ---- */

static int bufs_reserve(struct scrub *s, size_t bytes)
{
	if (bytes <= s->buf_bytes)
		return 0;
	free(s->buf);
	free(s->good);
	s->buf = malloc(bytes);
	s->good = malloc(bytes);
	s->buf_bytes = s->buf && s->good ? bytes : 0;
	return s->buf_bytes ? 0 : -BKFS_E_NOMEM;
}

/* Read and verify replica p into dst */
static bool region_good(struct scrub *s, const struct bkfs_extent *e, const struct bkfs_ptr *p, u8 *dst)
{
	size_t region = (size_t)e->csum_sectors << SECTOR_SHIFT;
	if (bd_read(s->fs->devs[p->dev].bd, dst, p->offset << SECTOR_SHIFT, region))
		return false;
	s->st.bytes_read += region;
	return bkfs_crc32c(0, dst, region) == e->csum;
}

/* Whether replica p is one to read, a dirty replica on a present device:
 * counted in replicas (a missing device's in copies_missing) */
static bool replica_counted(struct scrub *s, const struct bkfs_ptr *p)
{
	if (p->flags & PTR_CACHED) /* a cache may go stale: not a replica */
		return false;
	if (!dev_present(s->fs, p->dev)) {
		s->st.copies_missing++;
		return false;
	}
	s->st.replicas++;
	return true;
}

/* Read every dirty replica into s->good (the first good one stays there);
 * returns the bad ones' bits, *good whether one was good. */
static u32 replicas_read(struct scrub *s, const struct bkfs_extent *e, bool *good)
{
	u32 bad = 0;
	*good = false;
	for (unsigned i = 0; i < e->nr_ptrs; i++) {
		const struct bkfs_ptr *p = &e->ptrs[i];
		if (!replica_counted(s, p))
			continue;
		if (region_good(s, e, p, *good ? s->buf : s->good))
			*good = true;
		else
			bad |= 1u << i;
	}
	return bad;
}

static bool rebuild_from_parity(struct scrub *s, const struct bkfs_extent *e)
{
	size_t region = (size_t)e->csum_sectors << SECTOR_SHIFT;
	for (unsigned i = 0; i < e->nr_ptrs; i++) {
		const struct bkfs_ptr *p = &e->ptrs[i];
		if ((p->flags & PTR_CACHED) || !(p->flags & PTR_HAS_STRIPE))
			continue;
		if (!ec_reconstruct(s->fs, p, s->good, region) && bkfs_crc32c(0, s->good, region) == e->csum) {
			s->st.extents_from_parity++;
			return true;
		}
	}
	return false;
}

static void replicas_rewrite(struct scrub *s, const struct bkfs_extent *e, u32 bad, u64 inum, struct bpos end)
{
	size_t region = (size_t)e->csum_sectors << SECTOR_SHIFT;
	for (unsigned i = 0; i < e->nr_ptrs; i++) {
		if (!(bad >> i & 1))
			continue;
		const struct bkfs_ptr *p = &e->ptrs[i];
		bool written = !bd_write(s->fs->devs[p->dev].bd, s->good, p->offset << SECTOR_SHIFT, region);
		if (written)
			s->st.bytes_written += region;
		if (written && region_good(s, e, p, s->buf)) {
			s->st.replicas_repaired++;
			continue;
		}
		scrub_lost(s, inum, "data %llu:%llu replica on dev %u sector %llu: rewrite failed",
			   (unsigned long long)end.inode, (unsigned long long)end.offset, p->dev,
			   (unsigned long long)p->offset);
	}
}

/* The checksummed extent value of k, NULL for other keys */
static const struct bkfs_extent *extent_of(const struct bkey *k)
{
	if (k->type == KEY_TYPE_extent)
		return bkey_val(k);
	if (k->type == KEY_TYPE_reflink_v)
		return &((const struct bkfs_reflink_v *)bkey_val(k))->e;
	return NULL;
}

static bool extent_checkable(const struct scrub *s, const struct bkfs_extent *e)
{
	return e->csum_type == CSUM_CRC32C && e->csum_sectors && e->csum_sectors <= bucket_sectors(s->fs);
}

/* One extent on its own: every replica read from the device now, repaired
 * from a good one or from parity. */
static int check_extent(struct scrub *s, unsigned id, const struct bkey *k)
{
	const struct bkfs_extent *e = extent_of(k);
	if (!e)
		return 0;
	s->st.extents++;
	if (!extent_checkable(s, e)) {
		s->st.extents_unchecked++;
		return 0;
	}
	int ret = bufs_reserve(s, (size_t)e->csum_sectors << SECTOR_SHIFT);
	if (ret)
		return ret;
	bool good;
	u32 bad = replicas_read(s, e, &good);
	s->st.replicas_bad += popcount(bad);
	if (good && !bad)
		return 0;
	if (!good && !rebuild_from_parity(s, e)) {
		u64 inum = id == BTREE_ID_extents ? k->p.inode : 0;
		s->st.extents_lost++;
		if (inum)
			scrub_lost(s, inum, "data of inode %llu, sectors %llu-%llu: no good replica",
				   (unsigned long long)inum, (unsigned long long)(k->p.offset - k->size),
				   (unsigned long long)k->p.offset);
		else
			scrub_lost(s, 0, "shared (reflink) data at %llu-%llu: no good replica",
				   (unsigned long long)(k->p.offset - k->size), (unsigned long long)k->p.offset);
		return 0;
	}
	if (s->repair)
		replicas_rewrite(s, e, bad, id == BTREE_ID_extents ? k->p.inode : 0, k->p);
	return 0;
}

static int extent_collect(struct scrub *s, unsigned id, const struct bkey *k)
{
	return extent_of(k) ? batch_push(s, k) : 0;
}

static int extent_reads(struct scrub *s, struct scrub_batch *b, size_t i)
{
	const struct bkfs_extent *e = extent_of(batch_key(b, i));
	if (!extent_checkable(s, e)) /* check_extent() counts it */
		return 0;
	return batch_push_reads(s, b, i, e->ptrs, e->nr_ptrs, false, e->csum_sectors << SECTOR_SHIFT, e->csum);
}

static bool extent_good(struct scrub *s, unsigned id, const struct bkey *k, const struct scrub_read *r, const u8 *img)
{
	return bkfs_crc32c(0, img, r->len) == r->csum;
}

/* as check_extent() counts an extent whose replicas are all good */
static void extent_clean(struct scrub *s, const struct bkey *k)
{
	const struct bkfs_extent *e = extent_of(k);
	s->st.extents++;
	for (unsigned j = 0; j < e->nr_ptrs; j++)
		if (replica_counted(s, &e->ptrs[j]))
			s->st.bytes_read += (u64)e->csum_sectors << SECTOR_SHIFT;
}

static const struct batch_ops extent_ops = {
	.uncached = true, .collect = extent_collect, .reads = extent_reads, .good = extent_good, .clean = extent_clean,
	.check = check_extent,
};

static int data_step(struct scrub *s, unsigned *budget)
{
	enum walk_end end;
	int ret = batch_step(s, 0, budget, &extent_ops, &end);
	if (ret || end == WALK_MORE)
		return ret;
	s->pos = POS_MIN;
	if (s->btree_id == BTREE_ID_extents)
		s->btree_id = BTREE_ID_reflink;
	else {
		s->btree_id = BTREE_ID_stripes;
		s->phase = SCRUB_STRIPES;
	}
	return 0;
}

/* ---- stripes ---- */

static int check_stripe(struct scrub *s, unsigned id, const struct bkey *k)
{
	if (k->type != KEY_TYPE_stripe)
		return 0;
	struct ec_verify v;
	int ret = ec_stripe_verify(s->fs, k, s->repair, &v);
	if (ret == -BKFS_E_NOMEM)
		return ret;
	s->st.stripes++;
	s->st.bytes_read += v.bytes_read;
	s->st.bytes_written += v.bytes_written;
	s->st.copies_missing += popcount(v.missing);
	const struct bkfs_stripe *st = bkey_val(k);
	u32 data_mask = (1u << (st->nr_blocks - st->nr_redundant)) - 1;
	if (ret || ((v.missing | v.unreadable) & data_mask)) {
		s->st.stripes_unchecked++;
		return 0;
	}
	s->st.parity_bad += popcount(v.bad);
	s->st.parity_repaired += popcount(v.repaired);
	if (s->repair && v.bad & ~v.repaired)
		scrub_lost(s, 0, "stripe %llu: parity blocks 0x%x could not be rewritten", (unsigned long long)k->p.offset,
			   v.bad & ~v.repaired);
	return 0;
}

static int stripes_step(struct scrub *s, unsigned *budget)
{
	enum walk_end end;
	int err = 0, ret = batch_land(s); /* the last batch of data */
	if (!ret)
		ret = walk_keys(s, 0, budget, check_stripe, &end, &err);
	if (!ret && end == WALK_BROKEN)
		walk_broken(s, 0, err);
	if (!ret && end != WALK_MORE)
		s->phase = SCRUB_DONE;
	return ret;
}

int scrub_step(struct scrub *s, unsigned budget)
{
	u64 t0 = now_ns();
	int ret = 0;
	while (!ret && budget && s->phase != SCRUB_DONE && !s->error) {
		switch (s->phase) {
		case SCRUB_NODES: ret = nodes_step(s, &budget); break;
		case SCRUB_DATA: ret = data_step(s, &budget); break;
		case SCRUB_STRIPES: ret = stripes_step(s, &budget); break;
		case SCRUB_DONE: break;
		}
	}
	/* a read-only session never checkpoints: keep the cache in bounds */
	btree_cache_trim(s->fs);
	s->st.ns += now_ns() - t0;
	if (ret) {
		s->error = ret;
		s->phase = SCRUB_DONE;
	}
	return ret ? ret : s->phase == SCRUB_DONE;
}

const char *scrub_phase_name(const struct scrub *s)
{
	return phase_names[s->phase];
}

double scrub_progress(const struct scrub *s)
{
	if (s->phase == SCRUB_DONE)
		return 1;
	double f = s->total_bytes ? (double)s->st.bytes_read / (double)s->total_bytes : 0;
	return f > 0.99 ? 0.99 : f;
}

/* ---- paths of the files that lost data ---- */

struct name_find {
	u64 inum, dir;
	char name[BKFS_NAME_MAX + 1];
	bool found;
};

static int readdir_find(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot)
{
	struct name_find *f = arg;
	if (inum != f->inum)
		return 0;
	memcpy(f->name, name, MIN(len, (size_t)BKFS_NAME_MAX));
	f->name[MIN(len, (size_t)BKFS_NAME_MAX)] = 0;
	f->found = true;
	return 1;
}

/* A name of inum and its directory: one scan of the dirents btree. */
static bool name_of(struct bkfs_fs *fs, struct name_find *f)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, fs, BTREE_ID_dirents, POS_MIN, k, ret) {
		const struct bkfs_dirent *d = bkey_val(k);
		if (k->type != KEY_TYPE_dirent || d->inum != f->inum)
			continue;
		size_t len = MIN((size_t)d->name_len, (size_t)BKFS_NAME_MAX);
		memcpy(f->name, d->name, len);
		f->name[len] = 0;
		f->dir = k->p.inode;
		return f->found = true;
	}
	return false;
}

static char *inum_path(struct bkfs_fs *fs, u64 inum)
{
	char *parts[64];
	unsigned n = 0;
	struct name_find f = { .inum = inum };
	if (inum != BKFS_ROOT_INO) {
		if (!name_of(fs, &f))
			return NULL;
		parts[n++] = strdup(f.name);
		/* directories know their parent: up to the root from there */
		for (u64 dir = f.dir; dir != BKFS_ROOT_INO && n < 64;) {
			struct bkfs_inode in;
			struct name_find d = { .inum = dir };
			if (bkfs_inode_find(fs, dir, &in) || bkfs_readdir(fs, in.parent, 0, readdir_find, &d) < 0 || !d.found)
				break;
			parts[n++] = strdup(d.name);
			dir = in.parent;
		}
	}
	struct printbuf pb = PRINTBUF;
	if (!n)
		pb_printf(&pb, "/");
	while (n) {
		char *p = parts[--n];
		pb_printf(&pb, "/%s", p ? p : "?");
		free(p);
	}
	return pb.buf;
}

void scrub_finish(struct scrub *s)
{
	for (size_t i = 0; i < s->nr_lost; i++)
		if (s->lost[i].inum && !s->lost[i].path)
			s->lost[i].path = inum_path(s->fs, s->lost[i].inum);
}

/* ---- reports ---- */

static u64 bad_found(const struct scrub_stats *st)
{
	return st->node_copies_bad + st->replicas_bad + st->parity_bad;
}

static u64 bad_repaired(const struct scrub_stats *st)
{
	return st->node_copies_repaired + st->replicas_repaired + st->parity_repaired;
}

int scrub_exit_status(const struct scrub *s)
{
	if (s->error)
		return FSCK_EXIT_OPERATIONAL;
	int status = 0;
	if (bad_repaired(&s->st))
		status |= FSCK_EXIT_CORRECTED;
	if (bad_found(&s->st) > bad_repaired(&s->st) || s->st.copies_missing || s->nr_lost ||
	    s->st.nodes_lost || s->st.extents_lost)
		status |= FSCK_EXIT_UNCORRECTED;
	return status;
}

void scrub_report_text(struct printbuf *out, const struct scrub *s)
{
	const struct scrub_stats *st = &s->st;
	pb_printf(out, "nodes: %llu, copies read %llu, bad %llu, rewritten %llu, lost %llu\n",
		  (unsigned long long)st->nodes, (unsigned long long)st->node_copies,
		  (unsigned long long)st->node_copies_bad, (unsigned long long)st->node_copies_repaired,
		  (unsigned long long)st->nodes_lost);
	pb_printf(out, "data: %llu extents, replicas read %llu, bad %llu, rewritten %llu, rebuilt from parity %llu, lost %llu",
		  (unsigned long long)st->extents, (unsigned long long)st->replicas,
		  (unsigned long long)st->replicas_bad, (unsigned long long)st->replicas_repaired,
		  (unsigned long long)st->extents_from_parity, (unsigned long long)st->extents_lost);
	if (st->extents_unchecked)
		pb_printf(out, ", without checksum %llu", (unsigned long long)st->extents_unchecked);
	pb_printf(out, "\nstripes: %llu, parity blocks bad %llu, rewritten %llu, not checkable %llu\n",
		  (unsigned long long)st->stripes, (unsigned long long)st->parity_bad,
		  (unsigned long long)st->parity_repaired, (unsigned long long)st->stripes_unchecked);
	if (st->copies_missing)
		pb_printf(out, "copies on missing devices: %llu\n", (unsigned long long)st->copies_missing);
	for (size_t i = 0; i < s->nr_lost; i++)
		pb_printf(out, "not repaired: %s%s%s\n", s->lost[i].path ? s->lost[i].path : "",
			  s->lost[i].path ? ": " : "", s->lost[i].what);
	if (s->error)
		pb_printf(out, "scrub stopped: %s\n", bkfs_strerror(s->error));
	double secs = st->ns / 1e9;
	pb_printf(out, "%s: %llu bytes read in %.3fs (%.1f MB/s), %llu bytes written; %llu bad, %llu repaired\n",
		  s->repair ? "scrub" : "scrub -n", (unsigned long long)st->bytes_read, secs,
		  secs > 0 ? st->bytes_read / secs / 1e6 : 0.0, (unsigned long long)st->bytes_written,
		  (unsigned long long)bad_found(st), (unsigned long long)bad_repaired(st));
}

static void pb_json_str(struct printbuf *out, const char *str)
{
	pb_printf(out, "\"");
	for (const unsigned char *p = (const unsigned char *)str; p && *p; p++) {
		if (*p == '"' || *p == '\\')
			pb_printf(out, "\\%c", *p);
		else if (*p < 0x20)
			pb_printf(out, "\\u%04x", *p);
		else
			pb_printf(out, "%c", *p);
	}
	pb_printf(out, "\"");
}

#define JSON_U64(out, name, v) pb_printf(out, "\"%s\": %llu", name, (unsigned long long)(v))

void scrub_report_json(struct printbuf *out, const struct scrub *s)
{
	const struct scrub_stats *st = &s->st;
	pb_printf(out, "{\n  \"exit_status\": %d,\n  \"mode\": \"%s\",\n  ", scrub_exit_status(s),
		  s->repair ? "repair" : "verify");
	pb_printf(out, "\"nodes\": {");
	JSON_U64(out, "nodes", st->nodes); pb_printf(out, ", ");
	JSON_U64(out, "copies", st->node_copies); pb_printf(out, ", ");
	JSON_U64(out, "bad", st->node_copies_bad); pb_printf(out, ", ");
	JSON_U64(out, "repaired", st->node_copies_repaired); pb_printf(out, ", ");
	JSON_U64(out, "lost", st->nodes_lost);
	pb_printf(out, "},\n  \"data\": {");
	JSON_U64(out, "extents", st->extents); pb_printf(out, ", ");
	JSON_U64(out, "replicas", st->replicas); pb_printf(out, ", ");
	JSON_U64(out, "bad", st->replicas_bad); pb_printf(out, ", ");
	JSON_U64(out, "repaired", st->replicas_repaired); pb_printf(out, ", ");
	JSON_U64(out, "from_parity", st->extents_from_parity); pb_printf(out, ", ");
	JSON_U64(out, "lost", st->extents_lost); pb_printf(out, ", ");
	JSON_U64(out, "unchecked", st->extents_unchecked);
	pb_printf(out, "},\n  \"stripes\": {");
	JSON_U64(out, "stripes", st->stripes); pb_printf(out, ", ");
	JSON_U64(out, "parity_bad", st->parity_bad); pb_printf(out, ", ");
	JSON_U64(out, "parity_repaired", st->parity_repaired); pb_printf(out, ", ");
	JSON_U64(out, "unchecked", st->stripes_unchecked);
	pb_printf(out, "},\n  ");
	JSON_U64(out, "copies_missing", st->copies_missing); pb_printf(out, ",\n  ");
	JSON_U64(out, "bytes_read", st->bytes_read); pb_printf(out, ",\n  ");
	JSON_U64(out, "bytes_written", st->bytes_written); pb_printf(out, ",\n  ");
	pb_printf(out, "\"seconds\": %.6f,\n  \"error\": ", st->ns / 1e9);
	pb_json_str(out, s->error ? bkfs_strerror(s->error) : "");
	pb_printf(out, ",\n  \"not_repaired\": [");
	for (size_t i = 0; i < s->nr_lost; i++) {
		pb_printf(out, "%s\n    {\"path\": ", i ? "," : "");
		pb_json_str(out, s->lost[i].path ? s->lost[i].path : "");
		pb_printf(out, ", \"inum\": %llu, \"what\": ", (unsigned long long)s->lost[i].inum);
		pb_json_str(out, s->lost[i].what);
		pb_printf(out, "}");
	}
	pb_printf(out, "\n  ]\n}\n");
}

void scrub_exit(struct scrub *s)
{
	for (size_t i = 0; i < s->nr_lost; i++) {
		free(s->lost[i].what);
		free(s->lost[i].path);
	}
	free(s->lost);
	free(s->buf);
	free(s->good);
	helper_free(s->helper); /* first: they may be verifying a batch */
	for (unsigned i = 0; i < ARRAY_SIZE(s->batches); i++)
		batch_free(s->batches[i]);
	memset(s, 0, sizeof(*s));
}

/* ---- the offline command ---- */

#define SCRUB_STEP_UNITS 2048

static void progress_bar(const struct scrub *s, u64 start_ns)
{
	unsigned width = 30, pct = (unsigned)(scrub_progress(s) * 100);
	double el = (now_ns() - start_ns) / 1e9, f = scrub_progress(s);
	fprintf(stderr, "\r[");
	for (unsigned i = 0; i < width; i++)
		fputc(i < width * pct / 100 ? '#' : ' ', stderr);
	fprintf(stderr, "] %-8s %3u%% ETA %.1fs", phase_names[s->phase], pct, f > 0 ? el / f - el : 0.0);
	if (s->phase == SCRUB_DONE)
		fputc('\n', stderr);
	fflush(stderr);
}

static int write_json_file(const char *path, const struct scrub *s)
{
	struct printbuf pb = PRINTBUF;
	scrub_report_json(&pb, s);
	FILE *f = fopen(path, "w");
	int ret = f && fputs(pb_str(&pb), f) >= 0 ? 0 : -1;
	if (f && fclose(f))
		ret = -1;
	pb_exit(&pb);
	return ret;
}

int bkfs_scrub(char *const *devs, unsigned nr, bool repair, bool progress, const char *json_path)
{
	struct bkfs_fs *fs;
	struct printbuf err = PRINTBUF;
	unsigned flags = BKFS_OPEN_DEGRADED | (repair ? 0 : BKFS_OPEN_RDONLY);
	int ret = bkfs_open(devs, nr, flags, &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs scrub: %s\n", pb_str(&err));
		pb_exit(&err);
		return FSCK_EXIT_OPERATIONAL;
	}
	pb_exit(&err);
	struct scrub s;
	scrub_init(&s, fs, repair);
	/* a writable open reads some nodes (the alloc btree) and rewrites a bad
	 * copy it meets there before the walk could see it: those are this
	 * scrub's findings and repairs too (read-only, the walk finds them) */
	s.st.node_copies_bad += fs->node_copies_rewritten;
	s.st.node_copies_repaired += fs->node_copies_rewritten;
	if (scrub_helper_on(&s))
		fprintf(stderr, "bkfs scrub: no helper thread, verifying on one\n");
	bool bar = progress && isatty(STDERR_FILENO);
	u64 start = now_ns(), last = 0;
	while (!(ret = scrub_step(&s, SCRUB_STEP_UNITS)))
		if (bar && now_ns() - last > 100000000ull) {
			progress_bar(&s, start);
			last = now_ns();
		}
	if (bar)
		progress_bar(&s, start);
	scrub_finish(&s);
	struct printbuf pb = PRINTBUF;
	scrub_report_text(&pb, &s);
	fputs(pb_str(&pb), stdout);
	pb_exit(&pb);
	int status = scrub_exit_status(&s);
	if (json_path && write_json_file(json_path, &s)) {
		fprintf(stderr, "bkfs scrub: cannot write %s\n", json_path);
		status |= FSCK_EXIT_OPERATIONAL;
	}
	scrub_exit(&s);
	if ((ret = bkfs_close(fs))) {
		fprintf(stderr, "bkfs scrub: closing: %s\n", bkfs_strerror(ret));
		status |= FSCK_EXIT_OPERATIONAL;
	}
	return status;
}
