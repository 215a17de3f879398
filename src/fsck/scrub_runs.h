/* scrub_runs.h - the scrub's reads in device order.
 *
 * A batch of copies to verify (node images, extent replicas: one region each
 * of the keys a scrub step walked) is sorted by device and offset and cut
 * into runs: regions that follow each other on a device, with gaps of at
 * most SCRUB_RUN_GAP, read with one pread of at most SCRUB_RUN_BYTES (a
 * larger region is a run of its own). The key order of a btree is not the
 * device order of what it points to; runs make a step's reads few, large
 * and ascending, which a device and the host's read-ahead serve best. */
#ifndef BKFS_SCRUB_RUNS_H
#define BKFS_SCRUB_RUNS_H
#include "../util/util.h"

struct bkfs_fs;

#define SCRUB_RUN_BYTES (1u << 20)
#define SCRUB_RUN_GAP (64u << 10)

/* One copy's region (a node image, an extent replica's checksummed
 * region); key and ptr say whose (the caller's indices). */
struct scrub_read {
	u64 off; /* bytes */
	u32 len;
	u32 csum;
	u32 key;
	u8 dev, ptr;
};

/* reads [first, first + nr) of the sorted array, read as [off, off + len) */
struct scrub_run {
	u64 off, len;
	size_t first, nr;
	unsigned dev;
};

/* Sort r[0..nr) by device, offset, then key, and cut it into runs (runs has
 * room for nr): each read lands in exactly one run, runs keep device order.
 * Returns the number of runs. */
size_t scrub_plan_runs(struct scrub_read *r, size_t nr, struct scrub_run *runs, u64 max_bytes, u64 max_gap);

/* Read run into *buf (grown as needed, *cap its size); *data is where its
 * first byte landed. uncached, where the device can read around the host's
 * page cache (read_uncached): the run is read so, widened to whole aligned
 * blocks (a pass over data gains nothing from that cache and pays for
 * filling it). 0 or -BKFS_E_*. The device's read counters are left to the
 * caller (several threads read runs of one batch). */
int scrub_run_read(struct bkfs_fs *fs, const struct scrub_run *run, bool uncached, u8 **buf, size_t *cap,
		   const u8 **data);

#endif
