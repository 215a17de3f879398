/* sb.h - the superblock's copies on a device: where they are, reading the
 * best one, writing them all (format/sb.c, with its validation and printing).
 * Above io: the copies are read and written through a struct blockdev. */
#ifndef BKFS_SB_H
#define BKFS_SB_H
#include "format.h"
#include "../io/blockdev.h"

/* Superblock copy locations on a member (byte offsets); returns count. */
unsigned sb_copy_offsets(const struct bkfs_sb *sb, const struct bkfs_member *m, u64 out[3]);
/* Read the best superblock copy of one device. */
int bkfs_read_super(struct blockdev *bd, struct bkfs_sb *sb, unsigned *copies_ok, struct printbuf *err);
/* Write sb to every copy on each of the nr members (NULL entries are missing
 * devices), each copy with its own dev_idx, primaries first (see sb.c).
 * 0 if any copy was written. */
int sb_write_copies(struct blockdev *const *bds, unsigned nr, const struct bkfs_sb *sb);

#endif
