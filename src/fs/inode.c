/* inode.c - inodes and the POSIX operations built on them (create, link,
 * unlink, lookup, file read/write/truncate, readlink), plus the transaction
 * helpers that let several objects be built in one transaction. */
#include "fs.h"
#include "../btree/trans.h"
#include "../format/inode_format.h"
#include "../btree/iter.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define FS_CHUNK (1u << 20) /* data per transaction */

u64 bkfs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (u64)ts.tv_sec * 1000000000ull + (u64)ts.tv_nsec;
}

unsigned bkfs_mode_to_dtype(u32 mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return DT_REG;
	case S_IFDIR: return DT_DIR;
	case S_IFLNK: return DT_LNK;
	case S_IFCHR: return DT_CHR;
	case S_IFBLK: return DT_BLK;
	case S_IFIFO: return DT_FIFO;
	case S_IFSOCK: return DT_SOCK;
	}
	return DT_UNKNOWN;
}

int bkfs_name_check(const char *name, size_t len)
{
	return dirent_name_bad((const u8 *)name, len) ? -BKFS_E_INVAL : 0;
}

/* ---- inodes ---- */

void bkfs_inode_init(struct bkfs_inode *in, u32 mode, u32 uid, u32 gid, u64 rdev, u64 now)
{
	memset(in, 0, sizeof(*in));
	in->mode = mode;
	in->uid = uid;
	in->gid = gid;
	in->rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	in->nlink = S_ISDIR(mode) ? 2 : 1;
	in->atime_ns = in->mtime_ns = in->ctime_ns = now;
}

/* the inode's key, and its fixed part in *out (may be NULL) */
static int inode_key(struct trans *t, u64 inum, struct bkey_buf *kb, struct bkfs_inode *out)
{
	int ret = trans_lookup(t, BTREE_ID_inodes, POS(0, inum), kb);
	if (ret)
		return ret;
	if (kb->k.type != KEY_TYPE_inode || bkey_val_bytes(&kb->k) < sizeof(*out))
		return -BKFS_E_CORRUPT;
	if (out)
		memcpy(out, bkey_val(&kb->k), sizeof(*out));
	return 0;
}

int bkfs_inode_get(struct trans *t, u64 inum, struct bkfs_inode *out)
{
	struct bkey_buf kb;
	return inode_key(t, inum, &kb, out);
}

int bkfs_inode_find(struct bkfs_fs *fs, u64 inum, struct bkfs_inode *out)
{
	struct trans t;
	trans_init(&t, fs);
	int ret = bkfs_inode_get(&t, inum, out);
	trans_exit(&t);
	return ret;
}

void inode_names_one(struct inode_names *nm, u64 dir, const char *name, size_t len)
{
	nm->nr = 0;
	inode_names_add(nm, dir, name, len);
}

int inode_names_find(const struct inode_names *nm, u64 dir, const char *name, size_t len)
{
	for (unsigned i = 0; i < nm->nr; i++)
		if (nm->dir[i] == dir && nm->len[i] == len && !memcmp(nm->name[i], name, len))
			return (int)i;
	return -1;
}

bool inode_names_add(struct inode_names *nm, u64 dir, const char *name, size_t len)
{
	if (nm->nr >= INODE_NAMES_MAX || !len || len > INODE_NAME_MAX)
		return false;
	nm->dir[nm->nr] = dir;
	nm->len[nm->nr] = (u8)len;
	memcpy(nm->name[nm->nr], name, len);
	nm->nr++;
	return true;
}

void inode_names_del(struct inode_names *nm, unsigned i)
{
	if (i >= nm->nr)
		return;
	nm->nr--;
	memmove(&nm->dir[i], &nm->dir[i + 1], (nm->nr - i) * sizeof(nm->dir[0]));
	memmove(&nm->len[i], &nm->len[i + 1], (nm->nr - i) * sizeof(nm->len[0]));
	memmove(nm->name[i], nm->name[i + 1], (nm->nr - i) * sizeof(nm->name[0]));
}

int bkfs_inode_get_named(struct trans *t, u64 inum, struct bkfs_inode *out, struct inode_names *nm)
{
	struct bkey_buf kb;
	struct bkfs_inode in;
	int ret = inode_key(t, inum, &kb, &in);
	if (ret)
		return ret;
	if (out)
		*out = in;
	struct inode_name_ref refs[INODE_NAMES_MAX];
	int nr = inode_names_parse(bkey_val(&kb.k), bkey_val_bytes(&kb.k), refs);
	nm->nr = 0;
	for (int i = 0; i < nr; i++)
		inode_names_add(nm, i ? refs[i].dir : in.parent, (const char *)refs[i].name, refs[i].len);
	return 0;
}

int bkfs_inode_write_named(struct trans *t, u64 inum, const struct bkfs_inode *in, const struct inode_names *nm)
{
	struct bkey_buf kb;
	struct inode_name_ref refs[INODE_NAMES_MAX];
	unsigned nr = nm ? MIN(nm->nr, (unsigned)INODE_NAMES_MAX) : 0;
	for (unsigned i = 0; i < nr; i++)
		refs[i] = (struct inode_name_ref){ .dir = nm->dir[i], .name = (const u8 *)nm->name[i], .len = nm->len[i] };
	bkey_init(&kb.k, KEY_TYPE_inode, POS(0, inum), inode_val_bytes_max());
	memcpy(bkey_val(&kb.k), in, sizeof(*in));
	size_t vb = inode_names_encode(bkey_val(&kb.k), refs, nr);
	kb.k.u64s = (u16)DIV_ROUND_UP(sizeof(struct bkey) + vb, 8);
	return trans_update(t, BTREE_ID_inodes, &kb.k);
}

/* The inode's recorded names stay as they are on disk: most updates (times,
 * sizes, link counts) do not touch them. */
int bkfs_inode_write(struct trans *t, u64 inum, const struct bkfs_inode *in)
{
	struct bkey_buf kb;
	int ret = inode_key(t, inum, &kb, NULL);
	if (ret == -BKFS_E_NOENT) {
		bkey_init(&kb.k, KEY_TYPE_inode, POS(0, inum), sizeof(*in));
		ret = 0;
	}
	if (ret)
		return ret;
	memcpy(bkey_val(&kb.k), in, sizeof(*in));
	return trans_update(t, BTREE_ID_inodes, &kb.k);
}

int bkfs_inode_name_dropped(struct trans *t, u64 inum, struct bkfs_inode *in, u64 dir, const char *name,
			    size_t len)
{
	struct inode_names nm;
	int ret = bkfs_inode_get_named(t, inum, NULL, &nm);
	if (ret)
		return ret;
	int i = inode_names_find(&nm, dir, name, len);
	if (i >= 0) {
		inode_names_del(&nm, (unsigned)i);
		if (!S_ISDIR(in->mode))
			in->parent = nm.nr ? nm.dir[0] : 0;
	}
	return bkfs_inode_write_named(t, inum, in, &nm);
}

int bkfs_inode_name_moved(struct trans *t, u64 inum, struct bkfs_inode *in, u64 odir, const char *oname,
			  size_t olen, u64 ndir, const char *nname, size_t nlen)
{
	struct inode_names nm;
	int ret = bkfs_inode_get_named(t, inum, NULL, &nm);
	if (ret)
		return ret;
	int i = inode_names_find(&nm, odir, oname, olen);
	if (S_ISDIR(in->mode)) { /* a directory has one name */
		in->parent = ndir;
		inode_names_one(&nm, ndir, nname, nlen);
	} else if (i >= 0) {
		nm.dir[i] = ndir;
		nm.len[i] = (u8)nlen;
		memcpy(nm.name[i], nname, nlen);
		in->parent = nm.dir[0];
	} else if (inode_names_add(&nm, ndir, nname, nlen)) {
		in->parent = nm.dir[0];
	}
	return bkfs_inode_write_named(t, inum, in, &nm);
}

int bkfs_inum_alloc(struct trans *t, bool check, u64 *inum)
{
	struct bkfs_fs *fs = t->fs;
	for (unsigned tries = 0; tries < (1u << 20); tries++) {
		if (fs->next_inum < BKFS_FIRST_INO)
			fs->next_inum = BKFS_FIRST_INO;
		u64 i = fs->next_inum++;
		if (check) {
			int ret = trans_lookup(t, BTREE_ID_inodes, POS(0, i), NULL);
			if (!ret)
				continue;
			if (ret != -BKFS_E_NOENT)
				return ret;
		}
		*inum = i;
		return 0;
	}
	return -BKFS_E_NOSPC;
}

/* End (in sectors) of the last extent key of inum at or after start, 0 if none. */
static int extents_end(struct bkfs_fs *fs, u64 inum, u64 start, u64 *end)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	*end = 0;
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, start + 1));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum) {
		*end = k->p.offset;
		it.pos = bpos_successor(k->p);
	}
	return ret;
}

/* Remove every extent of inum in [start, end) sectors, one key at a time (so
 * any number of small extents works), committing every so often. The
 * inode's sector count is adjusted in the same transactions. */
int bkfs_punch(struct bkfs_fs *fs, u64 inum, u64 start, u64 end)
{
	struct trans t;
	struct btree_iter it;
	struct bkey *k;
	int ret = 0;
	if (end == UINT64_MAX && (ret = extents_end(fs, inum, start, &end)))
		return ret;
	trans_init(&t, fs);
	while (start < end) {
		/* collect up to 64 keys, then punch each */
		struct { u64 s, e; } r[64];
		unsigned n = 0;
		btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, start + 1));
		while (n < ARRAY_SIZE(r) && !(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum &&
		       bkey_start_pos(k).offset < end) {
			r[n].s = MAX(bkey_start_pos(k).offset, start);
			r[n].e = MIN(k->p.offset, end);
			n++;
			it.pos = bpos_successor(k->p);
		}
		if (ret || !n)
			break;
		s64 delta = 0;
		for (unsigned i = 0; i < n && !ret; i++)
			ret = extent_punch(&t, inum, r[i].s, r[i].e, &delta);
		struct bkfs_inode in;
		if (!ret && !(ret = bkfs_inode_get(&t, inum, &in))) {
			in.sectors = (s64)in.sectors + delta < 0 ? 0 : in.sectors + delta;
			ret = bkfs_inode_write(&t, inum, &in);
		} else if (ret == -BKFS_E_NOENT) {
			ret = 0; /* no inode (being removed): just the data */
		}
		if (!ret)
			ret = trans_commit(&t, 0);
		if (ret)
			break;
		start = r[n - 1].e;
	}
	trans_exit(&t);
	return ret;
}

int bkfs_inode_remove(struct trans *t, u64 inum)
{
	struct bkfs_fs *fs = t->fs;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 end;
	if ((ret = extents_end(fs, inum, 0, &end)))
		return ret;
	if (end && (ret = extent_punch(t, inum, 0, end, NULL)))
		return ret;
	btree_iter_init(&it, fs, BTREE_ID_xattrs, 0, POS(inum, 0));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum) {
		struct bpos p = k->p;
		if ((ret = trans_delete(t, BTREE_ID_xattrs, p)))
			return ret;
		it.pos = bpos_successor(p);
	}
	if (ret)
		return ret;
	return trans_delete(t, BTREE_ID_inodes, POS(0, inum));
}

/* ---- POSIX operations ---- */

int bkfs_lookup(struct bkfs_fs *fs, u64 dir, const char *name, u64 *inum, struct bkfs_inode *out)
{
	struct trans t;
	u64 i;
	trans_init(&t, fs);
	int ret = bkfs_dirent_lookup(&t, dir, name, strlen(name), &i, NULL, NULL);
	if (!ret && out)
		ret = bkfs_inode_get(&t, i, out);
	if (!ret && inum)
		*inum = i;
	trans_exit(&t);
	return ret;
}

int bkfs_lookup_path(struct bkfs_fs *fs, const char *path, u64 *inum, struct bkfs_inode *out)
{
	u64 cur = BKFS_ROOT_INO;
	struct bkfs_inode in;
	int ret = bkfs_inode_find(fs, cur, &in);
	const char *p = path;
	while (!ret) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (!S_ISDIR(in.mode))
			return -BKFS_E_NOTDIR;
		if (len == 1 && p[0] == '.') {
			p += len;
			continue;
		}
		if (len == 2 && p[0] == '.' && p[1] == '.') {
			cur = in.parent ? in.parent : BKFS_ROOT_INO;
		} else {
			struct trans t;
			trans_init(&t, fs);
			ret = bkfs_dirent_lookup(&t, cur, p, len, &cur, NULL, NULL);
			trans_exit(&t);
			if (ret)
				return ret;
		}
		ret = bkfs_inode_find(fs, cur, &in);
		p += len;
	}
	if (ret)
		return ret;
	if (inum)
		*inum = cur;
	if (out)
		*out = in;
	return 0;
}

int bkfs_create(struct bkfs_fs *fs, u64 dir, const char *name, u32 mode, u32 uid, u32 gid,
		u64 rdev, const char *target, u64 *inum_out, struct bkfs_inode *out)
{
	struct trans t;
	struct bkfs_inode d, in;
	size_t len = strlen(name);
	u64 inum, now = bkfs_now_ns();
	int ret;
	if ((ret = bkfs_name_check(name, len)))
		return ret;
	if (S_ISLNK(mode) && (!target || !*target || strlen(target) > 4095))
		return -BKFS_E_INVAL;
	if (!(mode & S_IFMT))
		mode |= S_IFREG;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, dir, &d)))
		goto out;
	if (!S_ISDIR(d.mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if ((ret = bkfs_inum_alloc(&t, true, &inum)))
		goto out;
	bkfs_inode_init(&in, mode, uid, gid, rdev, now);
	in.parent = dir;
	if (S_ISDIR(mode))
		d.nlink++;
	if (S_ISLNK(mode)) {
		s64 delta = 0;
		size_t tl = strlen(target);
		if ((ret = extent_write(&t, inum, 0, target, tl, &delta)))
			goto out;
		in.size = tl;
		in.sectors = delta;
	}
	if ((ret = bkfs_dirent_add(&t, dir, name, len, inum, bkfs_mode_to_dtype(mode))))
		goto out;
	d.mtime_ns = d.ctime_ns = now;
	struct inode_names nm;
	inode_names_one(&nm, dir, name, len);
	if ((ret = bkfs_inode_write(&t, dir, &d)) || (ret = bkfs_inode_write_named(&t, inum, &in, &nm)))
		goto out;
	if ((ret = trans_commit(&t, 0)))
		goto out;
	if (inum_out)
		*inum_out = inum;
	if (out)
		*out = in;
out:
	trans_exit(&t);
	return ret;
}

int bkfs_link(struct bkfs_fs *fs, u64 inum, u64 dir, const char *name)
{
	struct trans t;
	struct bkfs_inode d, in;
	size_t len = strlen(name);
	u64 now = bkfs_now_ns();
	int ret;
	if ((ret = bkfs_name_check(name, len)))
		return ret;
	struct inode_names nm;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, dir, &d)) || (ret = bkfs_inode_get_named(&t, inum, &in, &nm)))
		goto out;
	if (!S_ISDIR(d.mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if (S_ISDIR(in.mode)) {
		ret = -BKFS_E_ISDIR;
		goto out;
	}
	if (in.nlink == UINT32_MAX) {
		ret = -BKFS_E_RANGE;
		goto out;
	}
	if ((ret = bkfs_dirent_add(&t, dir, name, len, inum, bkfs_mode_to_dtype(in.mode))))
		goto out;
	in.nlink++;
	in.ctime_ns = now;
	d.mtime_ns = d.ctime_ns = now;
	if (inode_names_add(&nm, dir, name, len)) /* recorded while there is room */
		in.parent = nm.dir[0];
	if (!(ret = bkfs_inode_write(&t, dir, &d)) && !(ret = bkfs_inode_write_named(&t, inum, &in, &nm)))
		ret = trans_commit(&t, 0);
out:
	trans_exit(&t);
	return ret;
}

int bkfs_unlink(struct bkfs_fs *fs, u64 dir, const char *name, bool rmdir)
{
	struct trans t;
	struct bkfs_inode d, in;
	size_t len = strlen(name);
	u64 inum, now = bkfs_now_ns();
	int ret;
	if ((ret = bkfs_name_check(name, len)))
		return ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, dir, &d)))
		goto out;
	if ((ret = bkfs_dirent_lookup(&t, dir, name, len, &inum, NULL, NULL)) ||
	    (ret = bkfs_inode_get(&t, inum, &in)))
		goto out;
	if (rmdir && !S_ISDIR(in.mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if (!rmdir && S_ISDIR(in.mode)) {
		ret = -BKFS_E_ISDIR;
		goto out;
	}
	if (rmdir) {
		ret = bkfs_dir_empty(&t, inum);
		if (ret < 0)
			goto out;
		if (!ret) {
			ret = -BKFS_E_NOTEMPTY;
			goto out;
		}
		in.nlink = 0;
		if (d.nlink > 2)
			d.nlink--;
	} else if (in.nlink) {
		in.nlink--;
	}
	if ((ret = bkfs_dirent_remove(&t, dir, name, len, NULL, NULL)))
		goto out;
	d.mtime_ns = d.ctime_ns = now;
	in.ctime_ns = now;
	if ((ret = bkfs_inode_write(&t, dir, &d)) || (ret = bkfs_inode_name_dropped(&t, inum, &in, dir, name, len)) ||
	    (ret = trans_commit(&t, 0)))
		goto out;
	if (!in.nlink) {
		/* the data goes in bounded transactions, then the inode */
		u64 end;
		if (!(ret = extents_end(fs, inum, 0, &end)) && end)
			ret = bkfs_punch(fs, inum, 0, end);
		if (!ret && !(ret = bkfs_inode_remove(&t, inum)))
			ret = trans_commit(&t, 0);
	}
out:
	trans_exit(&t);
	return ret;
}

ssize_t bkfs_file_read(struct bkfs_fs *fs, u64 inum, u64 off, void *buf, size_t len)
{
	struct bkfs_inode in;
	int ret = bkfs_inode_find(fs, inum, &in);
	if (ret)
		return ret;
	if (S_ISDIR(in.mode))
		return -BKFS_E_ISDIR;
	if (off >= in.size)
		return 0;
	len = MIN((u64)len, in.size - off);
	if ((ret = extent_read(fs, inum, off, buf, len)))
		return ret;
	return len;
}

ssize_t bkfs_readlink(struct bkfs_fs *fs, u64 inum, char *buf, size_t size)
{
	struct bkfs_inode in;
	int ret = bkfs_inode_find(fs, inum, &in);
	if (ret)
		return ret;
	if (!S_ISLNK(in.mode))
		return -BKFS_E_INVAL;
	if (!size)
		return -BKFS_E_RANGE;
	size_t n = MIN((u64)size - 1, in.size);
	if ((ret = extent_read(fs, inum, 0, buf, n)))
		return ret;
	buf[n] = 0;
	return n;
}

ssize_t bkfs_file_write(struct bkfs_fs *fs, u64 inum, u64 off, const void *buf, size_t len)
{
	struct trans t;
	struct bkfs_inode in;
	struct inode_names nm;
	u64 bs = fs->block_bytes;
	size_t done = 0;
	u8 *tmp = NULL;
	int ret = 0;
	if (off + len < off)
		return -BKFS_E_RANGE;
	trans_init(&t, fs);
	while (done < len || (!len && !done)) {
		if ((ret = bkfs_inode_get_named(&t, inum, &in, &nm)))
			break;
		if (!S_ISREG(in.mode)) {
			ret = S_ISDIR(in.mode) ? -BKFS_E_ISDIR : -BKFS_E_INVAL;
			break;
		}
		if (!len)
			break;
		u64 pos = off + done;
		size_t n = MIN((size_t)FS_CHUNK - (pos % FS_CHUNK), len - done);
		/* the aligned range: whole blocks, keeping the existing bytes of the
		 * partial first and last blocks (up to i_size) */
		u64 start = pos & ~(bs - 1), end = pos + n;
		u64 wend = MAX(end, MIN(in.size, ROUND_UP(end, bs)));
		size_t wlen = wend - start;
		if (!tmp && !(tmp = malloc(FS_CHUNK + 2 * bs))) {
			ret = -BKFS_E_NOMEM;
			break;
		}
		if (start < pos || wend > end) {
			if ((ret = extent_read(fs, inum, start, tmp, wlen)))
				break;
			if (in.size < wend && in.size > start)
				memset(tmp + (in.size - start), 0, wend - in.size);
			else if (in.size <= start)
				memset(tmp, 0, wlen);
		}
		memcpy(tmp + (pos - start), (const u8 *)buf + done, n);
		s64 delta = 0;
		if ((ret = extent_write(&t, inum, start, tmp, wlen, &delta)))
			break;
		in.size = MAX(in.size, end);
		in.sectors = (s64)in.sectors + delta < 0 ? 0 : in.sectors + delta;
		in.mtime_ns = in.ctime_ns = bkfs_now_ns();
		/* the names as read: the write path spares bkfs_inode_write's lookup */
		if ((ret = bkfs_inode_write_named(&t, inum, &in, &nm)) || (ret = trans_commit(&t, 0)))
			break;
		done += n;
	}
	free(tmp);
	trans_exit(&t);
	if (ret && !done)
		return ret;
	return done;
}

int bkfs_file_truncate(struct bkfs_fs *fs, u64 inum, u64 size)
{
	struct trans t;
	struct bkfs_inode in;
	u64 bs = fs->block_bytes;
	int ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, inum, &in)))
		goto out;
	if (!S_ISREG(in.mode)) {
		ret = S_ISDIR(in.mode) ? -BKFS_E_ISDIR : -BKFS_E_INVAL;
		goto out;
	}
	if (size < in.size) {
		s64 delta = 0;
		if (size % bs) {
			/* rewrite the partial last block with its tail zeroed */
			u64 start = size & ~(bs - 1);
			u8 *blk = malloc(bs);
			if (!blk) {
				ret = -BKFS_E_NOMEM;
				goto out;
			}
			ret = extent_read(fs, inum, start, blk, bs);
			if (!ret)
				ret = extent_write(&t, inum, start, blk, size - start, &delta);
			free(blk);
			if (ret)
				goto out;
			in.sectors = (s64)in.sectors + delta < 0 ? 0 : in.sectors + delta;
			if ((ret = bkfs_inode_write(&t, inum, &in)) || (ret = trans_commit(&t, 0)))
				goto out;
		}
		u64 end, from = DIV_ROUND_UP(size, SECTOR_SIZE);
		if ((ret = extents_end(fs, inum, from, &end)))
			goto out;
		if (end > from && (ret = bkfs_punch(fs, inum, from, end)))
			goto out;
		if ((ret = bkfs_inode_get(&t, inum, &in)))
			goto out;
	}
	in.size = size;
	in.mtime_ns = in.ctime_ns = bkfs_now_ns();
	if (!(ret = bkfs_inode_write(&t, inum, &in)))
		ret = trans_commit(&t, 0);
out:
	trans_exit(&t);
	return ret;
}
