/* scrub_runs.c - the scrub's reads in device order. See scrub_runs.h. */
#include "scrub_runs.h"
#include "../btree/fs_handle.h"
#include "../io/blockdev.h"
#include <stdlib.h>

static int read_cmp(const void *a, const void *b)
{
	const struct scrub_read *x = a, *y = b;
	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

size_t scrub_plan_runs(struct scrub_read *r, size_t nr, struct scrub_run *runs, u64 max_bytes, u64 max_gap)
{
	size_t n = 0;
	if (nr)
		qsort(r, nr, sizeof(*r), read_cmp);
	for (size_t i = 0; i < nr; i++) {
		struct scrub_run *run = n ? &runs[n - 1] : NULL;
		u64 end = r[i].off + r[i].len;
		if (run && run->dev == r[i].dev && r[i].off <= run->off + run->len + max_gap) {
			u64 len = MAX(end, run->off + run->len) - run->off;
			if (len <= max_bytes) {
				run->len = len;
				run->nr++;
				continue;
			}
		}
		runs[n++] = (struct scrub_run){ .off = r[i].off, .len = r[i].len, .first = i, .nr = 1, .dev = r[i].dev };
	}
	return n;
}

static struct blockdev *run_dev(struct bkfs_fs *fs, const struct scrub_run *run)
{
	return run->dev < fs->nr_devs ? fs->devs[run->dev].bd : NULL;
}

int scrub_run_read(struct bkfs_fs *fs, const struct scrub_run *run, bool uncached, u8 **buf, size_t *cap,
		   const u8 **data)
{
	struct blockdev *bd = run_dev(fs, run);
	if (!bd)
		return -BKFS_E_IO;
	if (run->off > bd->size || run->len > bd->size - run->off)
		return -BKFS_E_RANGE;
	/* around the page cache in whole aligned blocks, where the device can */
	u64 off = run->off, end = run->off + run->len;
	uncached = uncached && bd->read_uncached && ROUND_UP(end, BD_UNCACHED_ALIGN) <= bd->size;
	if (uncached) {
		off = off / BD_UNCACHED_ALIGN * BD_UNCACHED_ALIGN;
		end = ROUND_UP(end, BD_UNCACHED_ALIGN);
	}
	size_t len = (size_t)(end - off);
	if (len > *cap) {
		/* whole huge pages, mapped now: the copy into it then takes no
		 * page faults and few TLB misses */
		size_t huge = 2u << 20, bytes = ROUND_UP(len, huge);
		free(*buf);
		*cap = 0;
		if (posix_memalign((void **)buf, huge, bytes)) {
			*buf = NULL;
			return -BKFS_E_NOMEM;
		}
		mem_prefault(*buf, bytes);
		*cap = bytes;
	}
	*data = *buf + (run->off - off);
	/* the caller counts the read */
	return uncached ? bd->read_uncached(bd, *buf, off, len) : bd->read(bd, *buf, off, len);
}
