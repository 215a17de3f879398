/* ec.h - erasure coding: stripes of nr_data data buckets and nr_parity
 * parity buckets on distinct devices, Reed-Solomon over GF(2^8) with a
 * Cauchy matrix (ISA-L). A stripe is made from buckets already full of user
 * data: their contents never change afterwards (a bucket in a stripe is not
 * reused until the stripe is gone), so parity is computed once, written,
 * and only then is the stripe key committed, together with every pointer
 * into those buckets gaining its stripe reference. Reads that find no
 * readable copy of an erasure-coded extent rebuild it from the other blocks.
 *
 * The counts (alloc keys' stripe fields, the stripe's per-block sectors)
 * are the triggers' business (src/alloc/triggers.c); a stripe whose data
 * blocks all empty is deleted after the commit that emptied it. */
#ifndef BKFS_EC_H
#define BKFS_EC_H
#include "../alloc/alloc.h"

struct ec_stats {
	u64 stripes, data_buckets, parity_buckets, keys;
	u64 narrow; /* stripes with fewer data blocks: the buckets left at the end */
	u64 groups_skipped; /* a data bucket could not be read, or too many keys */
};

/* Make stripes of nr_data + nr_parity blocks from the full user-data buckets
 * (no cached data, not in a stripe, not open), one transaction per stripe.
 * Data blocks and parity blocks are all on distinct devices; when too few
 * devices have buckets left for a full stripe, narrower ones (down to one
 * data block) take the rest. Returns 0 or
 * an error; -BKFS_E_INVAL for parameters the filesystem cannot take. */
int ec_create_stripes(struct bkfs_fs *fs, unsigned nr_data, unsigned nr_parity, struct ec_stats *st);

/* Rebuild bytes of data at erasure-coded pointer p (its block's range) into
 * buf from the stripe's other blocks. -BKFS_E_IO if too few are readable. */
int ec_reconstruct(struct bkfs_fs *fs, const struct bkfs_ptr *p, void *buf, size_t bytes);

/* Scrub of one stripe (key sk): read every block, compute the parity from
 * the data blocks and compare. Bits by block index: missing (device absent),
 * unreadable (read error), bad (a parity block that differs or could not be
 * read), repaired (with repair: rewritten with the computed parity and read
 * back equal). With a data block missing or unreadable nothing is compared
 * (the extents' checksums decide about data blocks). 0, or an error. */
struct ec_verify {
	u32 missing, unreadable, bad, repaired;
	u64 bytes_read, bytes_written;
};
int ec_stripe_verify(struct bkfs_fs *fs, const struct bkey *sk, bool repair, struct ec_verify *out);

#endif
