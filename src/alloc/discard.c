/* discard.c - freed buckets are given back to the device (discard on a block
 * device, a punched hole in an image file) before they are reused.
 *
 * When discard is on (BKFS_OPEN_DISCARD, the mount's default for image
 * files), a bucket that held data and became empty is marked
 * ALLOC_NEED_DISCARD by the trigger: its data type is need_discard and the
 * allocator passes it over. Once the update that emptied it is durable (no
 * committed pointer can reach its old contents), alloc_discard_buckets()
 * discards its range and clears the flag, and the bucket is free. The flag is
 * persistent, so buckets emptied just before a crash are discarded after the
 * next mount. The list of candidates is in memory only: rebuilt from the
 * alloc keys at open, appended to by bucket_update().
 *
 * Where space is short (the buckets free or about to be, at most the
 * copying GC watermark), the device call is left out and the bucket is
 * freed at once: it is taken again moments later, and a hole punched in an
 * image file and refilled right away costs the host filesystem twice and
 * the mount a device call for nothing (at 80 % full, churned, discards were
 * a fifth of the mount's time). Such buckets are counted apart
 * (nr_discard_skipped). */
#include "alloc.h"
#include "../util/darray.h"
#include <stdlib.h>

void discard_note(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	struct alloc_state *as = ALLOC(fs);
	if (darray_room(as->need_discard, as->need_discard_cap, as->nr_need_discard + 1, 64))
		return; /* found again by the next open's scan */
	as->need_discard[as->nr_need_discard++] = (u64)dev << 48 | b;
}

void discard_rebuild(struct bkfs_fs *fs)
{
	ALLOC(fs)->nr_need_discard = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		for (u64 b = 0; b < fs->sb.members[d].nbuckets; b++)
			if (bucket_get(fs, d, b)->data_type == DATA_need_discard)
				discard_note(fs, d, b);
}

u64 alloc_nr_need_discard(struct bkfs_fs *fs)
{
	return ALLOC(fs) ? ALLOC(fs)->nr_need_discard : 0;
}

/* A need_discard bucket whose emptying is durable and that no write point
 * holds: it may be discarded now. */
static bool discard_ready(struct bkfs_fs *fs, unsigned dev, u64 b, u64 durable)
{
	const struct bkfs_alloc *a = bucket_get(fs, dev, b);
	/* a write point may still append to it (and clears the flag if so) */
	return a->data_type == DATA_need_discard && a->journal_seq <= durable &&
	       !(ALLOC(fs)->bflags[dev][b] & BUCKET_OPEN);
}

static void discard_done(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	struct bkfs_alloc a = *bucket_get(fs, dev, b);
	a.flags &= ~ALLOC_NEED_DISCARD;
	a.data_type = alloc_data_type(&a, DATA_free);
	bucket_update(fs, dev, b, &a);
}

static int u64_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

/* dev's buckets free or waiting for their discard are not short: the ones
 * freed now are not needed at once */
static bool discard_worth(struct bkfs_fs *fs, unsigned dev)
{
	u64 soon = alloc_dev_free_buckets(fs, dev) + ALLOC(fs)->idx[dev].nr_type[DATA_need_discard];
	return !alloc_space_short(soon, alloc_reserve_buckets(fs, dev, ALLOC_WM_normal),
				  alloc_dev_usable_buckets(fs, dev));
}

/* Discard the sorted buckets ready[0..nr) (dev << 48 | bucket), one device
 * call per run of adjacent buckets: a freed file or a copygc step often
 * leaves neighbours, and each call (a hole punched in an image file) costs
 * about as much whatever its length. Returns the first device error (the
 * buckets are freed anyway: discard is advisory). */
static int discard_runs(struct bkfs_fs *fs, const u64 *ready, size_t nr)
{
	int err = 0;
	bool worth[BKFS_MAX_DEVS];
	for (unsigned d = 0; d < fs->nr_devs && d < BKFS_MAX_DEVS; d++)
		worth[d] = discard_worth(fs, d);
	for (size_t i = 0, j; i < nr; i = j) {
		for (j = i + 1; j < nr && ready[j] == ready[j - 1] + 1; j++)
			;
		unsigned dev = ready[i] >> 48;
		u64 b = ready[i] & ((1ull << 48) - 1);
		struct blockdev *bd = fs->devs[dev].bd;
		if (!worth[dev]) {
			ALLOC(fs)->nr_discard_skipped += j - i;
		} else if (bd && bd->discard && (fs->flags & BKFS_OPEN_DISCARD)) {
			int ret = bd->discard(bd, b * fs->bucket_bytes, (j - i) * fs->bucket_bytes);
			if (ret && !err)
				err = ret;
			ALLOC(fs)->nr_discarded += j - i;
		}
		for (size_t k = i; k < j; k++)
			discard_done(fs, dev, b + (k - i));
	}
	return err;
}

int alloc_discard_buckets(struct bkfs_fs *fs, unsigned max, unsigned *done)
{
	struct alloc_state *as = ALLOC(fs);
	u64 durable = journal_durable_seq(fs);
	size_t keep = 0, n = 0;
	u64 *ready = malloc((MIN((size_t)max, as->nr_need_discard) + 1) * sizeof(*ready));
	if (!ready)
		return -BKFS_E_NOMEM;
	for (size_t i = 0; i < as->nr_need_discard; i++) {
		u64 v = as->need_discard[i];
		unsigned dev = v >> 48;
		u64 b = v & ((1ull << 48) - 1);
		if (bucket_get(fs, dev, b)->data_type != DATA_need_discard)
			continue; /* reused or refilled since */
		if (n < max && discard_ready(fs, dev, b, durable))
			ready[n++] = v;
		else
			as->need_discard[keep++] = v;
	}
	as->nr_need_discard = keep;
	/* a bucket may be listed twice (emptied, refilled, emptied again) */
	qsort(ready, n, sizeof(*ready), u64_cmp);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (!u || ready[u - 1] != ready[i])
			ready[u++] = ready[i];
	int err = discard_runs(fs, ready, u);
	free(ready);
	if (done)
		*done = u;
	return err;
}
