/* fuse.c - the FUSE adapter: libfuse 3 high-level (path based) operations
 * mapped onto the fs layer (fs.h, posix_ext.h). The only libfuse user.
 *
 * - Paths are resolved with bkfs_lookup_path(); open files and directories
 *   carry their inode number in fi->fh, so I/O on them needs no path walk.
 * - st_ino is the bkfs inode number (use_ino), so hard links show as such.
 * - Unlinking an open file is left to libfuse (hard_remove off: the file is
 *   renamed to .fuse_hidden* until its last release), so an inode is never
 *   removed while open and the filesystem stays consistent at every commit.
 * - The engine is single-threaded: bkfs mount runs the FUSE loop
 *   single-threaded, and every call into the engine holds one mutex too.
 * - Writes, truncates and metadata changes are committed transactions
 *   (journaled); fsync/fsyncdir flush the journal (durable). flush (every
 *   close) does not: it would cost a device flush per close.
 * - POSIX ACL xattrs are refused (EOPNOTSUPP), so clients fall back to chmod.
 * - destroy (unmount) closes the filesystem with bkfs_close(): checkpoint,
 *   clean flag. */
#define FUSE_USE_VERSION 31
#include "fuse.h"
#include "posix_ext.h"
#include <errno.h>
#include <fuse.h>
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static struct {
	pthread_mutex_t lock;
	struct bkfs_fs *fs;
	int close_ret;
	bool closed;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER };

#define LOCK() pthread_mutex_lock(&S.lock)
#define UNLOCK() pthread_mutex_unlock(&S.lock)

/* bkfs error (negative) -> negative errno */
static int err(int ret)
{
	if (ret >= 0)
		return ret;
	switch (-ret) {
	case BKFS_E_NOMEM: return -ENOMEM;
	case BKFS_E_INVAL: return -EINVAL;
	case BKFS_E_NOSPC: return -ENOSPC;
	case BKFS_E_JOURNAL_FULL: return -ENOSPC;
	case BKFS_E_NOENT: return -ENOENT;
	case BKFS_E_EXIST: return -EEXIST;
	case BKFS_E_TOOBIG: return -E2BIG;
	case BKFS_E_NOTDIR: return -ENOTDIR;
	case BKFS_E_ISDIR: return -EISDIR;
	case BKFS_E_NOTEMPTY: return -ENOTEMPTY;
	case BKFS_E_RANGE: return -ERANGE;
	case BKFS_E_AGAIN: return -EAGAIN;
	default: return -EIO; /* IO, CSUM, CORRUPT, DEGRADED, LOOP */
	}
}

/* refuse changes on a read-only mount before touching anything */
static int writable(void)
{
	if (S.fs->flags & BKFS_OPEN_RDONLY)
		return -EROFS;
	if (S.fs->error)
		return -EIO;
	return 0;
}

/* times are signed nanoseconds since the epoch, stored as u64 */
static void ns_to_ts(u64 ns, struct timespec *ts)
{
	s64 v = (s64)ns;
	ts->tv_sec = v / 1000000000ll;
	ts->tv_nsec = v % 1000000000ll;
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000ll;
		ts->tv_sec--;
	}
}

static void fill_stat(struct stat *st, u64 inum, const struct bkfs_inode *in)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = inum;
	st->st_mode = in->mode;
	st->st_nlink = in->nlink;
	st->st_uid = in->uid;
	st->st_gid = in->gid;
	st->st_rdev = in->rdev;
	st->st_size = in->size;
	st->st_blksize = S.fs->block_bytes;
	st->st_blocks = in->sectors; /* 512-byte units, like st_blocks */
	ns_to_ts(in->atime_ns, &st->st_atim);
	ns_to_ts(in->mtime_ns, &st->st_mtim);
	ns_to_ts(in->ctime_ns, &st->st_ctim);
}

/* the inode a call is about: the open file's, else the path's */
static int resolve(const char *path, struct fuse_file_info *fi, u64 *inum, struct bkfs_inode *in)
{
	if (fi) {
		*inum = fi->fh;
		return bkfs_inode_find(S.fs, fi->fh, in);
	}
	if (!path)
		return -BKFS_E_NOENT;
	return bkfs_lookup_path(S.fs, path, inum, in);
}

/* The directory holding path's last component, and that component. Returns
 * a negative errno. */
static int resolve_parent(const char *path, u64 *dir, struct bkfs_inode *din, const char **name)
{
	const char *slash = path ? strrchr(path, '/') : NULL;
	if (!slash || !slash[1])
		return -EINVAL;
	*name = slash + 1;
	if (strlen(*name) > BKFS_NAME_MAX)
		return -ENAMETOOLONG;
	size_t dlen = slash - path;
	char *d = strndup(path, dlen ? dlen : 1);
	if (!d)
		return -ENOMEM;
	int ret = bkfs_lookup_path(S.fs, d, dir, din);
	free(d);
	if (ret)
		return err(ret);
	return S_ISDIR(din->mode) ? 0 : -ENOTDIR;
}

/* ---- attributes ---- */

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = resolve(path, fi, &inum, &in);
	if (!ret)
		fill_stat(st, inum, &in);
	UNLOCK();
	return err(ret);
}

static int setattr(const char *path, struct fuse_file_info *fi, const struct bkfs_attr_change *c)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = err(resolve(path, fi, &inum, &in))))
		ret = err(bkfs_setattr(S.fs, inum, c, NULL));
	UNLOCK();
	return ret;
}

static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct bkfs_attr_change c = { .mask = BKFS_ATTR_MODE, .mode = mode };
	return setattr(path, fi, &c);
}

static int op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct bkfs_attr_change c = { 0 };
	if (uid != (uid_t)-1) {
		c.mask |= BKFS_ATTR_UID;
		c.uid = uid;
	}
	if (gid != (gid_t)-1) {
		c.mask |= BKFS_ATTR_GID;
		c.gid = gid;
	}
	return setattr(path, fi, &c);
}

static int ts_to_change(const struct timespec *ts, u64 now, u64 *out)
{
	if (ts->tv_nsec == UTIME_OMIT)
		return 0;
	if (ts->tv_nsec == UTIME_NOW) {
		*out = now;
		return 1;
	}
	if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
		return -EINVAL;
	/* clamp to what signed nanoseconds hold (about 1678..2262) */
	const s64 lim = INT64_MAX / 1000000000ll - 1;
	s64 sec = ts->tv_sec < -lim ? -lim : ts->tv_sec > lim ? lim : ts->tv_sec;
	*out = (u64)(sec * 1000000000ll + ts->tv_nsec);
	return 1;
}

static int op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct bkfs_attr_change c = { 0 };
	u64 now = bkfs_now_ns();
	struct timespec ts[2];
	if (tv) {
		ts[0] = tv[0];
		ts[1] = tv[1];
	} else {
		ts[0].tv_nsec = ts[1].tv_nsec = UTIME_NOW;
	}
	int r = ts_to_change(&ts[0], now, &c.atime_ns);
	if (r < 0)
		return r;
	if (r)
		c.mask |= BKFS_ATTR_ATIME;
	if ((r = ts_to_change(&ts[1], now, &c.mtime_ns)) < 0)
		return r;
	if (r)
		c.mask |= BKFS_ATTR_MTIME;
	return setattr(path, fi, &c);
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	u64 inum;
	if (size < 0)
		return -EINVAL;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = err(resolve(path, fi, &inum, &in)))) {
		if (S_ISDIR(in.mode))
			ret = -EISDIR;
		else if (!S_ISREG(in.mode))
			ret = -EINVAL;
		else
			ret = err(bkfs_file_truncate(S.fs, inum, size));
	}
	UNLOCK();
	return ret;
}

/* ---- names ---- */

static int create_obj(const char *path, u32 mode, u64 rdev, const char *target, u64 *inum_out)
{
	struct fuse_context *ctx = fuse_get_context();
	struct bkfs_inode din;
	const char *name;
	u64 dir;
	u32 gid = ctx->gid;
	int ret = writable();
	if (ret || (ret = resolve_parent(path, &dir, &din, &name)))
		return ret;
	if (din.mode & S_ISGID) { /* BSD group semantics below a setgid directory */
		gid = din.gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	return err(bkfs_create(S.fs, dir, name, mode, ctx->uid, gid, rdev, target, inum_out, NULL));
}

static int op_mknod(const char *path, mode_t mode, dev_t rdev)
{
	LOCK();
	int ret = create_obj(path, mode, rdev, NULL, NULL);
	UNLOCK();
	return ret;
}

static int op_mkdir(const char *path, mode_t mode)
{
	LOCK();
	int ret = create_obj(path, S_IFDIR | (mode & 07777), 0, NULL, NULL);
	UNLOCK();
	return ret;
}

static int op_symlink(const char *target, const char *path)
{
	if (!*target)
		return -ENOENT;
	if (strlen(target) > 4095)
		return -ENAMETOOLONG;
	LOCK();
	int ret = create_obj(path, S_IFLNK | 0777, 0, target, NULL);
	UNLOCK();
	return ret;
}

/* libfuse's name for an unlinked file that is still open (hard_remove off) */
#define HIDDEN_PREFIX ".fuse_hidden"

static int remove_name(const char *path, bool rmdir)
{
	struct bkfs_inode din;
	const char *name;
	u64 dir;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = resolve_parent(path, &dir, &din, &name)))
		ret = err(bkfs_unlink(S.fs, dir, name, rmdir));
	if (!ret && !rmdir && !strncmp(name, HIDDEN_PREFIX, strlen(HIDDEN_PREFIX))) {
		/* the last close of a file unlinked while open removes its hidden
		 * name: the user removed the file earlier, so this late removal
		 * keeps the directory's times (clients such as rsync set them
		 * after their last change, and the release comes asynchronously) */
		struct bkfs_attr_change c = {
			.mask = BKFS_ATTR_MTIME | BKFS_ATTR_CTIME,
			.mtime_ns = din.mtime_ns,
			.ctime_ns = din.ctime_ns,
		};
		ret = err(bkfs_setattr(S.fs, dir, &c, NULL));
	}
	UNLOCK();
	return ret;
}

static int op_unlink(const char *path)
{
	return remove_name(path, false);
}

static int op_rmdir(const char *path)
{
	return remove_name(path, true);
}

static int op_rename(const char *from, const char *to, unsigned int flags)
{
	struct bkfs_inode odin, ndin;
	const char *oname, *nname;
	u64 odir, ndir;
	unsigned f = 0;
	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if (flags & RENAME_NOREPLACE)
		f |= BKFS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= BKFS_RENAME_EXCHANGE;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = resolve_parent(from, &odir, &odin, &oname)) &&
	    !(ret = resolve_parent(to, &ndir, &ndin, &nname)))
		ret = err(bkfs_rename(S.fs, odir, oname, ndir, nname, f));
	UNLOCK();
	return ret;
}

static int op_link(const char *from, const char *to)
{
	struct bkfs_inode in, din;
	const char *name;
	u64 inum, dir;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = err(bkfs_lookup_path(S.fs, from, &inum, &in))) &&
	    !(ret = resolve_parent(to, &dir, &din, &name))) {
		ret = bkfs_link(S.fs, inum, dir, name);
		ret = ret == -BKFS_E_RANGE ? -EMLINK : ret == -BKFS_E_ISDIR ? -EPERM : err(ret);
	}
	UNLOCK();
	return ret;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	struct bkfs_inode in;
	u64 inum;
	if (!size)
		return -EINVAL;
	LOCK();
	int ret = err(bkfs_lookup_path(S.fs, path, &inum, &in));
	if (!ret) {
		ssize_t n = bkfs_readlink(S.fs, inum, buf, size);
		ret = n < 0 ? err(n) : 0;
	}
	UNLOCK();
	return ret;
}

/* ---- files ---- */

static int op_open(const char *path, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = err(bkfs_lookup_path(S.fs, path, &inum, &in));
	if (!ret && S_ISDIR(in.mode))
		ret = -EISDIR;
	if (!ret && (fi->flags & O_ACCMODE) != O_RDONLY)
		ret = writable();
	if (!ret)
		fi->fh = inum;
	UNLOCK();
	return ret;
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	u64 inum;
	LOCK();
	int ret = create_obj(path, S_IFREG | (mode & 07777), 0, NULL, &inum);
	if (ret == -EEXIST && !(fi->flags & O_EXCL)) {
		/* raced with another creator: open what is there */
		struct bkfs_inode in;
		ret = err(bkfs_lookup_path(S.fs, path, &inum, &in));
		if (!ret && S_ISDIR(in.mode))
			ret = -EISDIR;
	}
	if (!ret)
		fi->fh = inum;
	UNLOCK();
	return ret;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (off < 0)
		return -EINVAL;
	LOCK();
	ssize_t n = bkfs_file_read(S.fs, fi->fh, off, buf, size);
	UNLOCK();
	return n < 0 ? err(n) : (int)n;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (off < 0)
		return -EINVAL;
	LOCK();
	ssize_t n = writable();
	if (!n) {
		n = bkfs_file_write(S.fs, fi->fh, off, buf, size);
		if (n == -BKFS_E_RANGE)
			n = -EFBIG;
		else
			n = err(n);
	}
	UNLOCK();
	return n;
}

static int op_flush(const char *path, struct fuse_file_info *fi)
{
	return 0; /* every write is already committed; fsync makes it durable */
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	return 0;
}

static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	LOCK();
	int ret = (S.fs->flags & BKFS_OPEN_RDONLY) ? 0 : err(bkfs_sync(S.fs));
	UNLOCK();
	return ret;
}

static int op_statfs(const char *path, struct statvfs *st)
{
	u64 total = 0, avail = 0;
	LOCK();
	struct bkfs_fs *fs = S.fs;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		const struct bkfs_member *m = fs->devs[d].m;
		if (!fs->devs[d].bd || !m)
			continue;
		total += (m->nbuckets - MIN(m->nbuckets, (u64)m->first_bucket)) * fs->bucket_bytes;
		avail += alloc_free_buckets(fs, d) * fs->bucket_bytes;
	}
	unsigned replicas = fs->sb.data_replicas ? fs->sb.data_replicas : 1;
	memset(st, 0, sizeof(*st));
	st->f_bsize = st->f_frsize = fs->block_bytes;
	st->f_blocks = total / fs->block_bytes;
	st->f_bfree = st->f_bavail = avail / replicas / fs->block_bytes;
	/* inodes are not a limited resource: report plenty */
	st->f_files = st->f_ffree = st->f_favail = 1ull << 32;
	st->f_namemax = BKFS_NAME_MAX;
	UNLOCK();
	return 0;
}

/* ---- directories ---- */

static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = err(bkfs_lookup_path(S.fs, path, &inum, &in));
	if (!ret && !S_ISDIR(in.mode))
		ret = -ENOTDIR;
	if (!ret)
		fi->fh = inum;
	UNLOCK();
	return ret;
}

/* Directory offsets: 1 = ".", 2 = "..", slot + 3 = the dirent at slot (slots
 * are below 2^63 - 3). Resuming after offset o (> 2) starts at slot o - 2. */
struct rd_ctx {
	void *buf;
	fuse_fill_dir_t filler;
	char name[BKFS_NAME_MAX + 1];
};

static int rd_one(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot)
{
	struct rd_ctx *c = arg;
	struct stat st = { .st_ino = inum, .st_mode = DTTOIF(d_type) };
	memcpy(c->name, name, len);
	c->name[len] = 0;
	return c->filler(c->buf, c->name, &st, slot + 3, 0) ? 1 : 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = resolve(path, fi, &inum, &in);
	if (ret)
		goto out;
	if (!S_ISDIR(in.mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if (off < 1) {
		struct stat st = { .st_ino = inum, .st_mode = S_IFDIR };
		if (filler(buf, ".", &st, 1, 0))
			goto out;
	}
	if (off < 2) {
		struct stat st = { .st_ino = in.parent ? in.parent : inum, .st_mode = S_IFDIR };
		if (filler(buf, "..", &st, 2, 0))
			goto out;
	}
	struct rd_ctx c = { .buf = buf, .filler = filler };
	ret = bkfs_readdir(S.fs, inum, off > 2 ? (u64)off - 2 : 0, rd_one, &c);
	if (ret > 0)
		ret = 0; /* the buffer is full */
out:
	UNLOCK();
	return err(ret);
}

static int op_releasedir(const char *path, struct fuse_file_info *fi)
{
	return 0;
}

/* ---- xattrs ---- */

static int xattr_err(int ret)
{
	return ret == -BKFS_E_NOENT ? -ENODATA : ret == -BKFS_E_INVAL ? -EINVAL : err(ret);
}

static int op_getxattr(const char *path, const char *name, char *value, size_t size)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = err(bkfs_lookup_path(S.fs, path, &inum, &in));
	if (!ret)
		ret = xattr_err(bkfs_getxattr(S.fs, inum, name, value, size));
	UNLOCK();
	return ret;
}

/* POSIX ACLs are not supported: refusing them makes clients (cp -a, tar,
 * rsync -A) fall back to chmod, where storing them as plain xattrs would
 * silently drop the mode they carry */
static bool is_acl(const char *name)
{
	return !strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default");
}

static int op_setxattr(const char *path, const char *name, const char *value, size_t size, int flags)
{
	struct bkfs_inode in;
	u64 inum;
	int f = 0;
	if (is_acl(name))
		return -EOPNOTSUPP;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (flags & XATTR_CREATE)
		f |= BKFS_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		f |= BKFS_XATTR_REPLACE;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = err(bkfs_lookup_path(S.fs, path, &inum, &in))))
		ret = xattr_err(bkfs_setxattr(S.fs, inum, name, value, size, f));
	UNLOCK();
	return ret;
}

static int op_listxattr(const char *path, char *list, size_t size)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = err(bkfs_lookup_path(S.fs, path, &inum, &in));
	if (!ret) {
		ssize_t n = bkfs_xattr_list(S.fs, inum, list, size);
		ret = n < 0 ? err(n) : (int)n;
	}
	UNLOCK();
	return ret;
}

static int op_removexattr(const char *path, const char *name)
{
	struct bkfs_inode in;
	u64 inum;
	LOCK();
	int ret = writable();
	if (!ret && !(ret = err(bkfs_lookup_path(S.fs, path, &inum, &in))))
		ret = xattr_err(bkfs_removexattr(S.fs, inum, name));
	UNLOCK();
	return ret;
}

/* ---- mount and unmount ---- */

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	cfg->use_ino = 1;     /* st_ino = bkfs inode number */
	cfg->readdir_ino = 0;
	cfg->hard_remove = 0; /* open files are hidden, not removed, on unlink */
	cfg->nullpath_ok = 0;
	return fuse_get_context()->private_data;
}

/* close once: from destroy, or after the loop if destroy never ran */
static void close_fs(void)
{
	LOCK();
	if (!S.closed) {
		S.closed = true;
		S.close_ret = bkfs_close(S.fs);
		if (S.close_ret)
			fprintf(stderr, "bkfs mount: closing the filesystem: %s\n", bkfs_strerror(S.close_ret));
	}
	UNLOCK();
}

static void op_destroy(void *private_data)
{
	close_fs();
}

static const struct fuse_operations bkfs_fuse_ops = {
	.getattr = op_getattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.chmod = op_chmod,
	.chown = op_chown,
	.truncate = op_truncate,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.statfs = op_statfs,
	.flush = op_flush,
	.release = op_release,
	.fsync = op_fsync,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsync,
	.init = op_init,
	.destroy = op_destroy,
	.create = op_create,
	.utimens = op_utimens,
};

int bkfs_fuse_main(struct bkfs_fs *fs, int argc, char **argv)
{
	S.fs = fs;
	S.closed = false;
	S.close_ret = 0;
	int ret = fuse_main(argc, argv, &bkfs_fuse_ops, fs);
	close_fs();
	return ret || S.close_ret ? 1 : 0;
}
