/* copy.c - shared (reflinked) and copied file ranges: the inode side of
 * data/reflink.c, and copy_file_range built on it. */
#include "fs.h"
#include "../btree/trans.h"
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define COPY_CHUNK (1u << 20) /* bytes per read/write of a plain copy */

static int regular(const struct bkfs_inode *in)
{
	if (S_ISREG(in->mode))
		return 0;
	return S_ISDIR(in->mode) ? -BKFS_E_ISDIR : -BKFS_E_INVAL;
}

static void add_sectors(struct bkfs_inode *in, s64 delta)
{
	in->sectors = (s64)in->sectors + delta < 0 ? 0 : in->sectors + delta;
}

/* ranges [a, a + len) and [b, b + len) of one file overlap */
static bool overlap(u64 a, u64 b, u64 len)
{
	return a < b + len && b < a + len;
}

int bkfs_reflink(struct bkfs_fs *fs, u64 src, u64 src_off, u64 dst, u64 dst_off, u64 len)
{
	struct trans t;
	struct bkfs_inode si, di;
	u64 bs = fs->block_bytes;
	int ret;

	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, src, &si)) || (ret = bkfs_inode_get(&t, dst, &di)) ||
	    (ret = regular(&si)) || (ret = regular(&di)))
		goto out;
	ret = -BKFS_E_INVAL;
	if (src_off % bs || dst_off % bs)
		goto out;
	len = src_off < si.size ? MIN(len, si.size - src_off) : 0;
	/* a range ending inside a block shares all of it: zeros past the end of
	 * src, which must not cover data of dst */
	if ((len % bs && dst_off + len < di.size) || (src == dst && overlap(src_off, dst_off, ROUND_UP(len, bs))))
		goto out;
	ret = -BKFS_E_RANGE;
	if (dst_off + ROUND_UP(len, bs) < dst_off || ((dst_off + ROUND_UP(len, bs)) >> SECTOR_SHIFT) > (1ull << 62))
		goto out;
	ret = 0;
	u64 s0 = src_off >> SECTOR_SHIFT, s1 = (src_off + ROUND_UP(len, bs)) >> SECTOR_SHIFT;
	u64 d0 = dst_off >> SECTOR_SHIFT;
	for (u64 cur = s0, done; cur < s1; cur = done) {
		s64 sd = 0, dd = 0;
		if ((ret = reflink_remap(&t, src, cur, s1, dst, d0 + (cur - s0), &done, &sd, &dd)))
			break;
		if (done <= cur) {
			ret = -BKFS_E_IO; /* no progress: never expected */
			break;
		}
		if ((ret = bkfs_inode_get(&t, src, &si)) || (ret = bkfs_inode_get(&t, dst, &di)))
			break;
		u64 now = bkfs_now_ns();
		if (src == dst) {
			add_sectors(&di, sd + dd);
		} else {
			add_sectors(&si, sd);
			add_sectors(&di, dd);
			if (sd && (ret = bkfs_inode_write(&t, src, &si)))
				break;
		}
		di.size = MAX(di.size, dst_off + MIN(len, (done - s0) << SECTOR_SHIFT));
		di.mtime_ns = di.ctime_ns = now;
		if ((ret = bkfs_inode_write(&t, dst, &di)) || (ret = trans_commit(&t, 0)))
			break;
	}
out:
	trans_exit(&t);
	return ret;
}

/* plain copy of len bytes; returns the bytes copied or an error (when none) */
static ssize_t copy_plain(struct bkfs_fs *fs, u64 src, u64 src_off, u64 dst, u64 dst_off, u64 len)
{
	u8 *buf = len ? malloc(MIN(len, (u64)COPY_CHUNK)) : NULL;
	u64 done = 0;
	ssize_t ret = 0;
	if (len && !buf)
		return -BKFS_E_NOMEM;
	while (done < len) {
		ssize_t n = bkfs_file_read(fs, src, src_off + done, buf, MIN(len - done, (u64)COPY_CHUNK));
		if (n <= 0) {
			ret = n;
			break;
		}
		ssize_t w = bkfs_file_write(fs, dst, dst_off + done, buf, n);
		if (w > 0)
			done += w;
		if (w != n) {
			ret = w < 0 ? w : 0;
			break;
		}
	}
	free(buf);
	return done ? (ssize_t)done : ret;
}

ssize_t bkfs_copy_range(struct bkfs_fs *fs, u64 src, u64 src_off, u64 dst, u64 dst_off, u64 len)
{
	struct bkfs_inode si, di;
	u64 bs = fs->block_bytes, done = 0;
	int ret;
	if ((ret = bkfs_inode_find(fs, src, &si)) || (ret = bkfs_inode_find(fs, dst, &di)) ||
	    (ret = regular(&si)) || (ret = regular(&di)))
		return ret;
	len = src_off < si.size ? MIN(len, si.size - src_off) : 0;
	if (dst_off + len < dst_off)
		return -BKFS_E_RANGE;
	if (src == dst && overlap(src_off, dst_off, len))
		return -BKFS_E_INVAL;
	if (src_off % bs == dst_off % bs) {
		/* the head up to a block boundary is copied */
		u64 head = MIN(len, (bs - src_off % bs) % bs);
		ssize_t n = copy_plain(fs, src, src_off, dst, dst_off, head);
		if (n < 0 || (u64)n < head)
			return n;
		done = head;
		/* whole blocks are shared; so is a last partial block that ends
		 * src when dst has nothing past it (and no overlap at block level) */
		u64 body = (len - done) / bs * bs, tail = len - done - body;
		if ((ret = bkfs_inode_find(fs, dst, &di)))
			return done ? (ssize_t)done : ret;
		if (tail && src_off + len == si.size && dst_off + len >= di.size &&
		    !(src == dst && overlap(src_off + done, dst_off + done, ROUND_UP(len - done, bs))))
			body += tail;
		if (src == dst && overlap(src_off + done, dst_off + done, ROUND_UP(body, bs)))
			body = 0;
		if (body && (ret = bkfs_reflink(fs, src, src_off + done, dst, dst_off + done, body)))
			return done ? (ssize_t)done : ret;
		done += body;
	}
	ssize_t n = copy_plain(fs, src, src_off + done, dst, dst_off + done, len - done);
	if (n < 0)
		return done ? (ssize_t)done : n;
	return done + n;
}
