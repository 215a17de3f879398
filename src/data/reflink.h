/* reflink.h - shared file data: indirect extents and reflink pointers.
 *
 * An indirect extent (KEY_TYPE_reflink_v, BTREE_ID_reflink, position
 * (0, idx + size)) holds an extent's pointers and a refcount. A file maps a
 * range onto [idx, idx + size) of the reflink btree's address space with a
 * reflink pointer (KEY_TYPE_reflink_p, BTREE_ID_extents); pads stay 0 here.
 *
 * refcount = the number of reflink pointers overlapping the indirect extent.
 * Only the reflink_p trigger changes it (src/alloc/triggers.c): inserting,
 * trimming, splitting or deleting a pointer through any extent update
 * (overwrite, punch, truncate, removal) keeps it exact in the same
 * transaction, and an indirect extent whose refcount reaches 0 is deleted,
 * which unmarks its buckets and the reflink accounting counter. A trimmed
 * pointer keeps its whole indirect extent referenced: space is freed per
 * indirect extent, when its last pointer goes.
 *
 * Indirect extents are never split or merged; new ones are placed after the
 * highest one in use. A reflink pointer's sectors count in its inode's
 * sectors like an extent's (what fsck's filesystem pass expects). */
#ifndef BKFS_REFLINK_H
#define BKFS_REFLINK_H
#include "../alloc/alloc.h"

/* Source keys one reflink_remap() call handles at most (one transaction). */
#define REFLINK_CHUNK_KEYS 64

/* Queue into t the sharing of sectors [src_start, src_end) of src_inum at
 * dst_start of dst_inum, for the source keys of the first chunk of that range
 * (at most REFLINK_CHUNK_KEYS of them): *done receives where the chunk ends
 * (src_end when the whole range was handled). Plain extents of the source
 * become indirect extents (the source keeps the same data through reflink
 * pointers); reflink pointers are shared; inline data and error keys are
 * copied as keys; holes and reservations leave holes. The destination range
 * is replaced entirely. src_delta / dst_delta receive the change in each
 * inode's allocated sectors (the caller updates the inodes in t; turning
 * extents into reflink pointers leaves src_delta at 0). The source and
 * destination ranges must not overlap when src_inum == dst_inum. No boundary
 * has to be block aligned here (chunks end where a source key ends); the fs
 * layer keeps user ranges aligned. */
int reflink_remap(struct trans *t, u64 src_inum, u64 src_start, u64 src_end, u64 dst_inum, u64 dst_start,
		  u64 *done, s64 *src_delta, s64 *dst_delta);

/* Read and verify the data of reflink pointer k (k->size sectors) into buf.
 * -BKFS_E_IO when part of its range has no indirect extent (or an error key). */
int reflink_read_key(struct bkfs_fs *fs, const struct bkey *k, void *buf);

/* The end of the highest indirect extent (or error key) in the reflink btree
 * as t sees it (its pending updates included): where new ones go. */
int reflink_next_idx(struct trans *t, u64 *idx);

#endif
