/* falloc.c - fallocate(2) (preallocate, punch a hole, zero a range) and
 * lseek(2)'s SEEK_DATA / SEEK_HOLE on regular files (see posix_ext.h).
 *
 * Preallocated space is a reservation key (format §4.4) over each hole of
 * the range: it reads as zeros, counts in the inode's sectors (st_blocks)
 * and in the persistent_reserved accounting, and a later write replaces
 * it like any extent. Whole blocks are punched or reserved; the partial
 * blocks at the ends of a punched or zeroed range are rewritten with their
 * bytes in the range zeroed. Every step is a bounded transaction of its
 * own: a crash leaves a prefix of the work done, every state consistent. */
#include "posix_ext.h"
#include "../data/extent.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include "../format/inode_format.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RESV_MAX_SECTORS (1u << 20) /* one reservation key: 512 MiB at most */
#define RESV_PER_TRANS 32

/* gaps (no key of any type) of inum in [start, end) sectors, committed state */
struct gap {
	u64 s, e;
};

static int next_gaps(struct bkfs_fs *fs, u64 inum, u64 start, u64 end, struct gap *g, unsigned max, unsigned *nr)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	*nr = 0;
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, start + 1));
	while (start < end && *nr < max) {
		if ((ret = btree_iter_peek(&it, &k)))
			return ret;
		u64 ks = k && k->p.inode == inum ? bkey_start_pos(k).offset : end;
		if (ks > start) {
			u64 e = MIN(MIN(ks, end), start + RESV_MAX_SECTORS);
			g[(*nr)++] = (struct gap){ start, e };
			start = e;
			continue;
		}
		start = k->p.offset;
		it.pos = bpos_successor(k->p);
	}
	return 0;
}

/* Reservation keys over every hole of [start, end) sectors of inum. */
static int reserve_holes(struct bkfs_fs *fs, u64 inum, u64 start, u64 end, unsigned nr_replicas)
{
	struct trans t;
	int ret = 0;
	trans_init(&t, fs);
	while (start < end) {
		struct gap g[RESV_PER_TRANS];
		unsigned n;
		if ((ret = next_gaps(fs, inum, start, end, g, RESV_PER_TRANS, &n)) || !n)
			break;
		s64 delta = 0;
		for (unsigned i = 0; i < n && !ret; i++) {
			struct bkey_buf kb;
			bkey_init(&kb.k, KEY_TYPE_reservation, POS(inum, g[i].e), sizeof(struct bkfs_reservation));
			kb.k.size = g[i].e - g[i].s;
			((struct bkfs_reservation *)bkey_val(&kb.k))->nr_replicas = nr_replicas;
			ret = extent_update(&t, &kb.k, &delta);
		}
		struct bkfs_inode in;
		if (!ret && !(ret = bkfs_inode_get(&t, inum, &in))) {
			in.sectors += delta;
			if (!(ret = bkfs_inode_write(&t, inum, &in)))
				ret = trans_commit(&t, 0);
		}
		if (ret)
			break;
		start = g[n - 1].e;
	}
	trans_exit(&t);
	return ret;
}

/* Zero the bytes [from, to) of one block that the range only partly covers
 * (nothing past i_size: those read as zeros already). */
static int zero_partial(struct bkfs_fs *fs, u64 inum, u64 size, u64 from, u64 to)
{
	static const u8 zeros[65536];
	to = MIN(to, size);
	if (from >= to)
		return 0;
	ssize_t n = bkfs_file_write(fs, inum, from, zeros, to - from);
	return n < 0 ? (int)n : 0;
}

/* Punch [off, off + len): partial blocks zeroed, whole blocks removed. */
static int punch_range(struct bkfs_fs *fs, u64 inum, u64 size, u64 off, u64 end)
{
	u64 bs = fs->block_bytes;
	u64 bstart = ROUND_UP(off, bs), bend = end & ~(bs - 1);
	int ret;
	if (bstart > bend) /* inside one block */
		return zero_partial(fs, inum, size, off, end);
	if ((ret = zero_partial(fs, inum, size, off, bstart)) || (ret = zero_partial(fs, inum, size, bend, end)))
		return ret;
	return bkfs_punch(fs, inum, bstart >> SECTOR_SHIFT, bend >> SECTOR_SHIFT);
}

/* i_size (when it grows and the mode does not keep it) and the times */
static int falloc_finish(struct bkfs_fs *fs, u64 inum, u64 end, bool keep_size, bool touch)
{
	struct trans t;
	struct bkfs_inode in;
	int ret;
	trans_init(&t, fs);
	if (!(ret = bkfs_inode_get(&t, inum, &in))) {
		bool grow = !keep_size && end > in.size;
		if (grow)
			in.size = end;
		if (grow || touch)
			in.mtime_ns = in.ctime_ns = bkfs_now_ns();
		if ((grow || touch) && !(ret = bkfs_inode_write(&t, inum, &in)))
			ret = trans_commit(&t, 0);
	}
	trans_exit(&t);
	return ret;
}

int bkfs_fallocate(struct bkfs_fs *fs, u64 inum, unsigned mode, u64 off, u64 len)
{
	struct bkfs_inode in;
	bool keep = mode & BKFS_FALLOC_KEEP_SIZE, punch = mode & BKFS_FALLOC_PUNCH_HOLE,
	     zero = mode & BKFS_FALLOC_ZERO_RANGE;
	u64 bs = fs->block_bytes, end = off + len;
	int ret;
	if ((mode & ~(BKFS_FALLOC_KEEP_SIZE | BKFS_FALLOC_PUNCH_HOLE | BKFS_FALLOC_ZERO_RANGE)) || (punch && !keep) ||
	    (punch && zero))
		return -BKFS_E_INVAL;
	if (!len || end < off || end > (UINT64_MAX >> 1))
		return end < off || end > (UINT64_MAX >> 1) ? -BKFS_E_RANGE : -BKFS_E_INVAL;
	if ((ret = bkfs_inode_find(fs, inum, &in)))
		return ret;
	if (!S_ISREG(in.mode))
		return S_ISDIR(in.mode) ? -BKFS_E_ISDIR : -BKFS_E_INVAL;
	if ((punch || zero) && (ret = punch_range(fs, inum, in.size, off, end)))
		return ret;
	if (!punch) {
		unsigned replicas = fs->sb.data_replicas ? fs->sb.data_replicas : 1;
		u64 rs = (zero ? ROUND_UP(off, bs) : off & ~(bs - 1)) >> SECTOR_SHIFT;
		u64 re = (zero ? end & ~(bs - 1) : ROUND_UP(end, bs)) >> SECTOR_SHIFT;
		if (rs < re && (ret = reserve_holes(fs, inum, rs, re, replicas)))
			return ret;
	}
	return falloc_finish(fs, inum, end, keep || punch, punch || zero);
}

/* Data: extents, inline data, reflink pointers; holes and reservations
 * read as zeros and count as holes. */
static bool key_is_data(const struct bkey *k)
{
	return k->type == KEY_TYPE_extent || k->type == KEY_TYPE_inline_data || k->type == KEY_TYPE_reflink_p;
}

int bkfs_seek_data(struct bkfs_fs *fs, u64 inum, u64 off, bool data, u64 *out)
{
	struct bkfs_inode in;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	if ((ret = bkfs_inode_find(fs, inum, &in)))
		return ret;
	if (off >= in.size)
		return -BKFS_E_NOENT; /* ENXIO */
	u64 pos = off; /* the candidate: in a hole (SEEK_HOLE) or data (SEEK_DATA) */
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, (off >> SECTOR_SHIFT) + 1));
	for (;;) {
		if ((ret = btree_iter_peek(&it, &k)))
			return ret;
		if (!k || k->p.inode != inum)
			break;
		u64 ks = bkey_start_pos(k).offset << SECTOR_SHIFT, ke = k->p.offset << SECTOR_SHIFT;
		if (ks >= in.size)
			break;
		if (key_is_data(k)) {
			if (data) {
				*out = MAX(pos, ks);
				return 0;
			}
			if (ks > pos)
				break; /* a hole before this key */
			pos = MAX(pos, ke);
		}
		btree_iter_advance(&it);
	}
	if (data)
		return -BKFS_E_NOENT;
	*out = MIN(pos, in.size); /* the end of the file is a hole */
	return 0;
}
