/* extent.h - the data path: extent writes with CRC32C and replicas, reads
 * with replica fallback (degraded reads), and extent overwrite (trim/split). */
#ifndef BKFS_EXTENT_H
#define BKFS_EXTENT_H
#include "../alloc/alloc.h"
#include "reflink.h"

#define EXTENT_MAX_SECTORS 256 /* checksum granularity: 128 KiB */

/* Queue updates that make k the only extent over its range, trimming or
 * splitting what was there. *sectors_delta receives the change in allocated
 * sectors (for the inode's sector count). */
int extent_update(struct trans *t, const struct bkey *k, s64 *sectors_delta);
/* Call fn with a copy of every extent key of inum overlapping [start, end)
 * sectors, in order, as t sees them (its pending updates over the btree).
 * fn returns 0 to go on, >0 to stop (extent_for_each then returns 0), <0 for
 * an error (returned). fn may queue updates into t; the walk does not see
 * them. */
int extent_for_each(struct trans *t, u64 inum, u64 start, u64 end,
		    int (*fn)(void *arg, const struct bkey *k), void *arg);
/* Delete every extent in [start, end) sectors of inum. */
int extent_punch(struct trans *t, u64 inum, u64 start, u64 end, s64 *sectors_delta);
/* Write len bytes at byte offset off (block aligned) of inum as new extents
 * queued into t. Data smaller than a block and at offset 0 may go inline. */
int extent_write(struct trans *t, u64 inum, u64 off, const void *buf, size_t len, s64 *sectors_delta);
/* Read len bytes at off; holes read as zeros. Tries every replica. */
int extent_read(struct bkfs_fs *fs, u64 inum, u64 off, void *buf, size_t len);
/* Read and verify one extent's data (all of its live range) into buf
 * (k->size sectors): extent, inline_data, or reflink_p (through the
 * indirect extents it references, see reflink.h). */
int extent_read_key(struct bkfs_fs *fs, const struct bkey *k, void *buf);
/* Move the data of every extent of inum that overlaps [start, end) sectors to
 * newly allocated space, keeping the old copies as cached pointers (what a
 * move to a background target does). One transaction per extent; *moved (may
 * be NULL) is increased by the sectors moved. Later reuse of the old buckets
 * leaves those cached pointers stale until gen GC drops them. */
int extent_move_to_cached(struct bkfs_fs *fs, u64 inum, u64 start, u64 end, u64 *moved);
/* Read and verify the whole checksummed region of extent k (e->csum_sectors
 * sectors, whatever part of it k still uses) into tmp: dirty pointers first,
 * then cached ones that are not stale, then a rebuild from a stripe. */
int extent_read_region(struct bkfs_fs *fs, const struct bkey *k, u8 *tmp);
/* Write bytes to every pointer of ptrs; 0 if at least one write succeeded. */
int extent_write_replicas(struct bkfs_fs *fs, const struct bkfs_ptr *ptrs, unsigned nr, const void *buf, size_t bytes);
/* Sectors [front, back) cut from key k (used by trims) */
void bkey_cut_front(struct bkey *k, struct bpos where);
void bkey_cut_back(struct bkey *k, struct bpos where);

#endif
