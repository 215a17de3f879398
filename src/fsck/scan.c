/* scan.c - find btree nodes by reading the raw devices (scan_for_btree_nodes).
 *
 * Every node-size slot of every bucket whose region is set in the member's
 * btree bitmap is probed: a 4 KiB read checks the header (magic derived from
 * the filesystem uuid, btree id, level, used_bytes), then the used part of the
 * node is read and validated completely (checksum and every key). One thread
 * per device.
 *
 * Resolution, single-threaded afterwards:
 *  1. replicas: records with the same btree, level, seq, checksum and range
 *     are one node with several pointers (at most BKFS_MAX_REPLICAS);
 *  2. overlaps, per (btree, level): for every position the newest node
 *     (node seq, then journal seq) covering it wins. Older nodes are trimmed
 *     (range_updated) or, when nothing of them is left, overwritten and
 *     dropped. An older node that spans a newer one on both sides yields two
 *     records (the same physical node with two ranges): nothing is lost, and
 *     users that insert both make one of them a private copy.
 *  3. the survivors are stored sorted by (btree, level, min_key); within one
 *     (btree, level) their ranges are disjoint, so range lookups are binary
 *     searches.
 */
#include "fsck.h"
#include "../alloc/alloc.h"
#include "../util/darray.h"
#include "../format/node_format.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_PROBE_BYTES 4096u

/* one validated copy of a node (before replicas are merged) */
struct cand {
	u8 btree_id, level;
	bool range_updated;
	u64 seq, journal_seq;
	u32 csum, nr_keys;
	struct bpos min_key, max_key;
	u8 nr_ptrs;
	struct bkfs_ptr ptrs[BKFS_MAX_REPLICAS];
};

struct cand_vec {
	struct cand *v;
	size_t nr, cap;
};

static int cand_push(struct cand_vec *cv, const struct cand *c)
{
	if (darray_room(cv->v, cv->cap, cv->nr + 1, 256))
		return -BKFS_E_NOMEM;
	cv->v[cv->nr++] = *c;
	return 0;
}

struct dev_scan {
	struct bkfs_fs *fs;
	unsigned dev;
	struct cand_vec found;
	u64 slots_read, candidates, io_errors, uncommitted;
	int ret;
};

static void *scan_dev_thread(void *arg)
{
	struct dev_scan *ds = arg;
	struct bkfs_fs *fs = ds->fs;
	struct blockdev *bd = fs->devs[ds->dev].bd;
	const struct bkfs_member *m = &fs->sb.members[ds->dev];
	u32 ns = fs->sb.btree_node_size, bs = fs->sb.bucket_size;
	u32 probe = MIN(SCAN_PROBE_BYTES, fs->node_bytes);
	u64 magic = sb_node_magic(&fs->sb);
	u8 *buf = malloc(fs->node_bytes);

	if (!buf) {
		ds->ret = -BKFS_E_NOMEM;
		return NULL;
	}
	for (u64 b = m->first_bucket; b < m->nbuckets; b++) {
		for (u32 s = 0; s + ns <= bs; s += ns) {
			u64 sector = b * bs + s;
			if (!member_bitmap_test(m, sector, ns))
				continue;
			u64 off = sector << SECTOR_SHIFT;
			ds->slots_read++;
			if (bd_read(bd, buf, off, probe)) {
				ds->io_errors++;
				continue;
			}
			const struct bkfs_node_hdr *h = (const void *)buf;
			if (h->magic != magic || !format_version_ok(h->version) ||
			    h->btree_id >= BTREE_ID_NR || h->level >= BTREE_MAX_DEPTH ||
			    h->used_bytes < sizeof(*h) || h->used_bytes > fs->node_bytes)
				continue;
			/* read the rest of the used part (and chunk table); the
			 * tail stays zero */
			u32 want = MIN(ROUND_UP(node_image_bytes(h, fs->node_bytes), SECTOR_SIZE), fs->node_bytes);
			if (want > probe && bd_read(bd, buf + probe, off + probe, want - probe)) {
				ds->io_errors++;
				continue;
			}
			if (want < fs->node_bytes)
				memset(buf + MAX(want, probe), 0, fs->node_bytes - MAX(want, probe));
			u32 nr_invalid; /* a leaf with invalid keys is kept: fsck drops the keys */
			if (node_validate_soft(buf, fs->node_bytes, magic, &nr_invalid, NULL))
				continue;
			/* written by a checkpoint that never completed: not part of
			 * any committed tree, whatever its seq says */
			if ((fs->durable_node_seq && h->seq > fs->durable_node_seq) ||
			    sb_node_seq_blacklisted(&fs->sb, h->seq)) {
				ds->uncommitted++;
				continue;
			}
			/* a node left in a bucket since reused for file data (its
			 * alloc key says so) is stale: a tree rebuilt with it would
			 * share the bucket with that data */
			if (fs->alloc && ALLOC(fs)->buckets[ds->dev] && bucket_get(fs, ds->dev, b)->data_type == DATA_user &&
			    bucket_get(fs, ds->dev, b)->dirty_sectors) {
				ds->uncommitted++;
				continue;
			}
			ds->candidates++;
			struct cand c = {
				.btree_id = h->btree_id,
				.level = h->level,
				.seq = h->seq,
				.journal_seq = h->journal_seq,
				.csum = h->csum,
				.nr_keys = h->nr_keys,
				.min_key = h->min_key,
				.max_key = h->max_key,
				.nr_ptrs = 1,
			};
			c.ptrs[0].dev = ds->dev;
			c.ptrs[0].offset = sector;
			if (fs->alloc && ALLOC(fs)->buckets[ds->dev])
				c.ptrs[0].gen = bucket_get(fs, ds->dev, b)->gen;
			if ((ds->ret = cand_push(&ds->found, &c)))
				goto out;
		}
	}
out:
	free(buf);
	return NULL;
}

/* ---- replicas ---- */

static int cmp_identity(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->btree_id != y->btree_id) return x->btree_id < y->btree_id ? -1 : 1;
	if (x->level != y->level) return x->level < y->level ? -1 : 1;
	if (x->seq != y->seq) return x->seq < y->seq ? -1 : 1;
	if (x->csum != y->csum) return x->csum < y->csum ? -1 : 1;
	int r = bpos_cmp(x->min_key, y->min_key);
	if (r) return r;
	r = bpos_cmp(x->max_key, y->max_key);
	if (r) return r;
	if (x->ptrs[0].dev != y->ptrs[0].dev) return x->ptrs[0].dev < y->ptrs[0].dev ? -1 : 1;
	if (x->ptrs[0].offset != y->ptrs[0].offset) return x->ptrs[0].offset < y->ptrs[0].offset ? -1 : 1;
	return 0;
}

static bool same_node(const struct cand *x, const struct cand *y)
{
	return x->btree_id == y->btree_id && x->level == y->level && x->seq == y->seq &&
	       x->csum == y->csum && bpos_eq(x->min_key, y->min_key) && bpos_eq(x->max_key, y->max_key);
}

/* Merge replicas in place (cv sorted by cmp_identity). */
static void merge_replicas(struct cand_vec *cv)
{
	size_t out = 0;
	for (size_t i = 0; i < cv->nr; i++) {
		struct cand *c = &cv->v[i];
		if (out && same_node(&cv->v[out - 1], c)) {
			struct cand *d = &cv->v[out - 1];
			d->journal_seq = MAX(d->journal_seq, c->journal_seq);
			bool dup = false;
			for (unsigned j = 0; j < d->nr_ptrs; j++)
				dup |= d->ptrs[j].dev == c->ptrs[0].dev && d->ptrs[j].offset == c->ptrs[0].offset;
			if (!dup && d->nr_ptrs < BKFS_MAX_REPLICAS)
				d->ptrs[d->nr_ptrs++] = c->ptrs[0];
			continue;
		}
		cv->v[out++] = *c;
	}
	cv->nr = out;
}

/* ---- overlaps ---- */

/* a newer than b: node seq, then journal seq */
static bool cand_newer(const struct cand *a, const struct cand *b)
{
	if (a->seq != b->seq)
		return a->seq > b->seq;
	return a->journal_seq > b->journal_seq;
}

/* heap order: smallest min_key first, newest first among equal mins */
static bool heap_before(const struct cand *a, const struct cand *b)
{
	int r = bpos_cmp(a->min_key, b->min_key);
	if (r)
		return r < 0;
	return cand_newer(a, b);
}

struct cheap {
	struct cand *v;
	size_t nr, cap;
};

static int heap_push(struct cheap *h, const struct cand *c)
{
	if (darray_room(h->v, h->cap, h->nr + 1, 64))
		return -BKFS_E_NOMEM;
	size_t i = h->nr++;
	h->v[i] = *c;
	while (i) {
		size_t p = (i - 1) / 2;
		if (!heap_before(&h->v[i], &h->v[p]))
			break;
		struct cand t = h->v[i];
		h->v[i] = h->v[p];
		h->v[p] = t;
		i = p;
	}
	return 0;
}

static struct cand heap_pop(struct cheap *h)
{
	struct cand top = h->v[0];
	h->v[0] = h->v[--h->nr];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->nr && heap_before(&h->v[l], &h->v[m]))
			m = l;
		if (r < h->nr && heap_before(&h->v[r], &h->v[m]))
			m = r;
		if (m == i)
			break;
		struct cand t = h->v[i];
		h->v[i] = h->v[m];
		h->v[m] = t;
		i = m;
	}
	return top;
}

/* Resolve one (btree, level) group: the newest node wins every position.
 * Survivors are appended to out in min_key order. */
static int resolve_group(const struct cand *in, size_t nr, struct cand_vec *out)
{
	struct cheap h = { 0 };
	int ret = 0;
	size_t first = out->nr; /* out[first..] are this group's kept nodes */

	for (size_t i = 0; i < nr && !ret; i++)
		ret = heap_push(&h, &in[i]);
	while (!ret && h.nr) {
		struct cand n = heap_pop(&h);
		struct cand *last = out->nr > first ? &out->v[out->nr - 1] : NULL;
		if (!last || bpos_cmp(n.min_key, last->max_key) > 0) {
			ret = cand_push(out, &n);
			continue;
		}
		/* n overlaps the last kept node (n.min >= last.min by heap order) */
		if (cand_newer(&n, last)) {
			struct cand rest = *last;
			bool has_rest = bpos_cmp(last->max_key, n.max_key) > 0;
			if (has_rest) {
				rest.min_key = bpos_successor(n.max_key);
				rest.range_updated = true;
			}
			if (bpos_cmp(n.min_key, last->min_key) > 0) {
				last->max_key = bpos_predecessor(n.min_key);
				last->range_updated = true;
			} else {
				out->nr--; /* nothing of last before n: gone (or only its rest) */
			}
			if (has_rest && (ret = heap_push(&h, &rest)))
				break;
			ret = cand_push(out, &n);
		} else {
			if (bpos_cmp(n.max_key, last->max_key) <= 0)
				continue; /* overwritten */
			n.min_key = bpos_successor(last->max_key);
			n.range_updated = true;
			ret = heap_push(&h, &n);
		}
	}
	free(h.v);
	return ret;
}

static int cmp_found(const void *a, const void *b)
{
	const struct found_node *x = a, *y = b;
	if (x->btree_id != y->btree_id) return x->btree_id < y->btree_id ? -1 : 1;
	if (x->level != y->level) return x->level < y->level ? -1 : 1;
	return bpos_cmp(x->min_key, y->min_key);
}

static int cmp_group(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->btree_id != y->btree_id) return x->btree_id < y->btree_id ? -1 : 1;
	if (x->level != y->level) return x->level < y->level ? -1 : 1;
	return 0;
}

int btree_node_scan(struct bkfs_fs *fs, struct scan_result *out)
{
	struct dev_scan ds[BKFS_MAX_DEVS];
	pthread_t th[BKFS_MAX_DEVS];
	bool started[BKFS_MAX_DEVS] = { 0 };
	struct cand_vec all = { 0 }, kept = { 0 };
	int ret = 0;

	memset(out, 0, sizeof(*out));
	memset(ds, 0, sizeof(ds));
	for (unsigned d = 0; d < fs->nr_devs && d < BKFS_MAX_DEVS; d++) {
		ds[d].fs = fs;
		ds[d].dev = d;
		if (!fs->devs[d].bd)
			continue;
		if (pthread_create(&th[d], NULL, scan_dev_thread, &ds[d])) {
			scan_dev_thread(&ds[d]); /* no thread: scan it here */
			continue;
		}
		started[d] = true;
	}
	for (unsigned d = 0; d < fs->nr_devs && d < BKFS_MAX_DEVS; d++) {
		if (started[d])
			pthread_join(th[d], NULL);
		if (ds[d].ret && !ret)
			ret = ds[d].ret;
		out->slots_read += ds[d].slots_read;
		out->candidates += ds[d].candidates;
		out->io_errors += ds[d].io_errors;
		for (size_t i = 0; i < ds[d].found.nr && !ret; i++)
			ret = cand_push(&all, &ds[d].found.v[i]);
		free(ds[d].found.v);
	}
	if (ret)
		goto out;

	if (all.nr) {
		qsort(all.v, all.nr, sizeof(*all.v), cmp_identity);
		merge_replicas(&all);
		/* cmp_identity sorted by (btree, level) first: groups are contiguous */
		for (size_t i = 0; i < all.nr && !ret;) {
			size_t j = i;
			while (j < all.nr && !cmp_group(&all.v[i], &all.v[j]))
				j++;
			ret = resolve_group(&all.v[i], j - i, &kept);
			i = j;
		}
		if (ret)
			goto out;
	}
	if (kept.nr) {
		out->n = calloc(kept.nr, sizeof(*out->n));
		if (!out->n) {
			ret = -BKFS_E_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < kept.nr; i++) {
		const struct cand *c = &kept.v[i];
		struct found_node *n = &out->n[i];
		n->btree_id = c->btree_id;
		n->level = c->level;
		n->range_updated = c->range_updated;
		n->seq = c->seq;
		n->journal_seq = c->journal_seq;
		n->min_key = c->min_key;
		n->max_key = c->max_key;
		n->nr_keys = c->nr_keys;
		n->ptr.seq = c->seq;
		n->ptr.min_key = c->min_key;
		n->ptr.level = c->level;
		n->ptr.flags = c->range_updated ? BTREE_PTR_RANGE_UPDATED : 0;
		n->ptr.nr_ptrs = c->nr_ptrs;
		memcpy(n->ptr.ptrs, c->ptrs, sizeof(c->ptrs));
	}
	out->nr = kept.nr;
	qsort(out->n, out->nr, sizeof(*out->n), cmp_found);
out:
	if (ret) {
		free(out->n);
		out->n = NULL;
		out->nr = 0;
	}
	free(all.v);
	free(kept.v);
	return ret;
}

void scan_result_free(struct scan_result *r)
{
	if (!r)
		return;
	free(r->n);
	r->n = NULL;
	r->nr = 0;
}

void found_node_to_text(struct printbuf *out, const struct found_node *n)
{
	pb_printf(out, "%s level %u ", btree_id_str(n->btree_id), n->level);
	bpos_to_text(out, n->min_key);
	pb_printf(out, "..");
	bpos_to_text(out, n->max_key);
	pb_printf(out, " seq %llu journal_seq %llu keys %u%s replicas:", (unsigned long long)n->seq,
		  (unsigned long long)n->journal_seq, n->nr_keys, n->range_updated ? " (range trimmed)" : "");
	for (unsigned i = 0; i < n->ptr.nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		pb_printf(out, i ? ", " : " ");
		ptr_to_text(out, &n->ptr.ptrs[i]);
	}
}

/* The on-demand pass: run the scan once per fsck run. Its time is booked to
 * scan_for_btree_nodes and taken out of the pass that asked for it. */
int fsck_scan_for_btree_nodes(struct fsck_ctx *c)
{
	if (c->scan)
		return 0;
	struct scan_result *r = xcalloc(1, sizeof(*r));
	if (!r)
		return -BKFS_E_NOMEM;
	u64 t0 = now_ns();
	int ret = btree_node_scan(c->fs, r);
	u64 dt = now_ns() - t0;
	if (ret) {
		free(r);
		return ret;
	}
	c->scan = r;
	/* nodes created from now on must not share a seq with anything on disk
	 * (orphans of an unfinished checkpoint may be newer than the sb says) */
	for (size_t i = 0; i < r->nr; i++)
		c->fs->node_seq = MAX(c->fs->node_seq, r->n[i].seq);
	c->pass_ns[FSCK_PASS_scan_for_btree_nodes] += dt;
	c->pass_ran[FSCK_PASS_scan_for_btree_nodes] = true;
	if (c->pass != FSCK_PASS_scan_for_btree_nodes)
		c->pass_ns[c->pass] -= dt; /* unsigned: the caller's run_pass adds the total back */
	if (c->opts.verbose)
		fprintf(stderr, "bkfs fsck: scan_for_btree_nodes: %llu slots read, %llu nodes validated, %zu kept, %llu I/O errors, %.3fs\n",
			(unsigned long long)r->slots_read, (unsigned long long)r->candidates, r->nr,
			(unsigned long long)r->io_errors, dt / 1e9);
	return 0;
}
