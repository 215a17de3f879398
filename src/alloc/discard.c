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
 * alloc keys at open, appended to by bucket_update(). */
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

/* Discard one bucket whose emptying is durable; false if it must wait. */
static bool discard_one(struct bkfs_fs *fs, unsigned dev, u64 b, u64 durable, int *err)
{
	struct bkfs_alloc a = *bucket_get(fs, dev, b);
	/* a write point may still append to it (and clears the flag if so) */
	if (a.journal_seq > durable || (ALLOC(fs)->bflags[dev][b] & BUCKET_OPEN))
		return false;
	struct blockdev *bd = fs->devs[dev].bd;
	if (bd && bd->discard && (fs->flags & BKFS_OPEN_DISCARD)) {
		int ret = bd->discard(bd, b * fs->bucket_bytes, fs->bucket_bytes);
		if (ret && !*err)
			*err = ret; /* the bucket is freed anyway: discard is advisory */
		ALLOC(fs)->nr_discarded++;
	}
	a.flags &= ~ALLOC_NEED_DISCARD;
	a.data_type = alloc_data_type(&a, DATA_free);
	bucket_update(fs, dev, b, &a);
	return true;
}

int alloc_discard_buckets(struct bkfs_fs *fs, unsigned max, unsigned *done)
{
	struct alloc_state *as = ALLOC(fs);
	u64 durable = journal_durable_seq(fs);
	size_t keep = 0;
	unsigned n = 0;
	int err = 0;
	for (size_t i = 0; i < as->nr_need_discard; i++) {
		u64 v = as->need_discard[i];
		unsigned dev = v >> 48;
		u64 b = v & ((1ull << 48) - 1);
		if (bucket_get(fs, dev, b)->data_type != DATA_need_discard)
			continue; /* reused or refilled since */
		if (n < max && discard_one(fs, dev, b, durable, &err)) {
			n++;
			continue;
		}
		as->need_discard[keep++] = v;
	}
	as->nr_need_discard = keep;
	if (done)
		*done = n;
	return err;
}
