/* fuse.c - the FUSE adapter: libfuse 3 low-level operations mapped onto the
 * fs layer (fs.h, posix_ext.h). The only libfuse user.
 *
 * - FUSE node ids are bkfs inode numbers (the root, FUSE_ROOT_ID, is
 *   BKFS_ROOT_INO), and st_ino / d_ino are bkfs inode numbers. One kernel
 *   inode per bkfs inode, so hard links share their attributes, and every
 *   change goes through the kernel: its attribute and entry caches stay
 *   exact. lookup counts (forget) need no bookkeeping: inodes live in the
 *   btrees, not in memory.
 * - Unlinking (or renaming over) the last link of a file that is still open
 *   keeps its inode with nlink 0 on the orphan list (the orphans btree, in
 *   the same transaction); its data stays readable and writable until the
 *   last release, which removes it and frees the space. After a crash the
 *   next read-write mount removes every orphan before serving (and hidden
 *   names an older version left, BKFS_HIDDEN_PREFIX in the root).
 * - One thread serves the requests; every call into the engine (and the
 *   open-file table) holds one mutex, S.lock, which the background thread
 *   shares. libfuse's multi-threaded loop was measured (bench/fuse.sh, 2
 *   cores): with the engine serialised anyway it halved 4 KiB random
 *   writes and lowered sequential writes and dbench, as each request woke
 *   another thread.
 * - No kernel writeback cache: the kernel would hold written data for up
 *   to its dirty expiry (30 s), where the mount promises every write
 *   durable within flush_ms; writes go through at once.
 * - Page cache kept across opens (keep_cache): the kernel's copy of a file
 *   stays valid, as every change passes through it.
 * - Requests the kernel need not send: flush (every close) is not
 *   implemented, so the first one gets ENOSYS and the kernel sends no more;
 *   readdirplus hands out the attributes with the names (no lookup per
 *   entry after a listing); HANDLE_KILLPRIV_V2 (taken below libfuse,
 *   fuse_wire.h) spares a GETXATTR of security.capability before every
 *   write and a GETATTR before every chown: the server clears
 *   setuid/setgid on write, truncate, O_TRUNC open and chown as the VFS
 *   would, and tells the kernel the mode changed when a write or an open
 *   cleared them (their replies carry no attributes).
 * - Writes, truncates and metadata changes are committed transactions
 *   (journaled); fsync/fsyncdir flush the journal (durable), without a
 *   device flush when every committed change is durable already. Close
 *   does not flush: that would cost a device flush per close. Space freed
 *   is reusable once durable, so an operation that runs out of space
 *   flushes the journal and is tried once more.
 * - POSIX ACL xattrs are refused (EOPNOTSUPP), so clients fall back to chmod.
 * - copy_file_range shares the block-aligned part of the range (reflink:
 *   plain cp shares data) and copies the rest. FICLONE never reaches a FUSE
 *   server, so `cp --reflink=always` is refused on the mount.
 * - fallocate: modes 0, KEEP_SIZE, PUNCH_HOLE|KEEP_SIZE, ZERO_RANGE (with
 *   or without KEEP_SIZE); others EOPNOTSUPP. lseek answers SEEK_DATA and
 *   SEEK_HOLE. rename takes RENAME_WHITEOUT (overlayfs). Directories show
 *   a block as st_size (0 on disk).
 * - A failed device write (EIO, or ENOSPC of the disk under an image file)
 *   makes the mount read-only at once (went_read_only): changes fail with
 *   EROFS, fsync with EIO, reads go on; the unmount says why and the
 *   server exits BKFS_MOUNT_EXIT_WRITE_ERROR.
 * - destroy (unmount) removes the orphans of files still open and closes
 *   the filesystem with bkfs_close(): checkpoint, clean flag. */
#define FUSE_USE_VERSION 31
#include "fuse.h"
#include "../fs/posix_ext.h"
#include "background.h"
#include "fuse_wire.h"
#include "../journal/journal.h"
#include "../util/darray.h"
#include "../btree/node.h"
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <dirent.h>
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
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT (1 << 2)
#endif

/* Seconds the kernel may cache entries (also negative ones) and attributes.
 * Every change reaches bkfs through this kernel mount (a read-write mount
 * is exclusive), and the kernel drops what a change it forwards makes stale
 * (the parent's attributes on create and unlink, the inode's on write,
 * rename, link, xattr changes): nothing changes behind its back, so a long
 * timeout only saves lookups and getattrs. */
#define TIMEOUT 60.0

/* open files: how often each inode is open, and whether a name of it was
 * removed while open (it may be an orphan: the last release checks) */
struct open_file {
	u64 inum;
	u32 count;
	bool unlinked;
};

static struct {
	pthread_mutex_t lock;
	struct bkfs_fs *fs;
	int close_ret;
	bool closed;
	bool failed;           /* a device write failed: read-only since */
	struct printbuf why;   /* what failed */
	struct open_file *open;
	size_t nr_open, open_cap;
	struct bg_opts bg_opts;
	struct background *bg; /* journal flush timer, generation GC, copying GC */
	struct fuse_session *se;
} S = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Every request ends by unlocking, holding no key pointer: the place to keep
 * the node cache within its limit (a mount that only reads never
 * checkpoints, and its cache would grow to the whole metadata). */
static bool went_read_only(void);

static void unlock_trim(void)
{
	if (S.fs && !S.closed) {
		went_read_only(); /* say so at once, not at the next change */
		btree_cache_trim(S.fs);
		bg_kick_if_due(S.bg);
	}
	pthread_mutex_unlock(&S.lock);
}
#define LOCK() pthread_mutex_lock(&S.lock)
#define UNLOCK() unlock_trim()

static u64 to_inum(fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? BKFS_ROOT_INO : (u64)ino;
}

static fuse_ino_t to_ino(u64 inum)
{
	return inum == BKFS_ROOT_INO ? FUSE_ROOT_ID : (fuse_ino_t)inum;
}

/* bkfs error (negative) -> positive errno for fuse_reply_err */
static int err(int ret)
{
	if (ret >= 0)
		return 0;
	switch (-ret) {
	case BKFS_E_NOMEM: return ENOMEM;
	case BKFS_E_INVAL: return EINVAL;
	case BKFS_E_NOSPC: return ENOSPC;
	case BKFS_E_JOURNAL_FULL: return ENOSPC;
	case BKFS_E_NOENT: return ENOENT;
	case BKFS_E_EXIST: return EEXIST;
	case BKFS_E_TOOBIG: return E2BIG;
	case BKFS_E_NOTDIR: return ENOTDIR;
	case BKFS_E_ISDIR: return EISDIR;
	case BKFS_E_NOTEMPTY: return ENOTEMPTY;
	case BKFS_E_RANGE: return ERANGE;
	case BKFS_E_AGAIN: return EAGAIN;
	default: return EIO; /* IO, CSUM, CORRUPT, DEGRADED, LOOP */
	}
}

/* A device write failed (or the engine could not complete an update): the
 * mount goes read-only at once, as ext4's errors=remount-ro does, so that
 * no change is acknowledged that could not be made durable. Reads go on. */
static bool went_read_only(void)
{
	if (S.failed || (S.fs->flags & BKFS_OPEN_RDONLY) || !bkfs_write_failed(S.fs))
		return S.failed;
	S.failed = true;
	pb_reset(&S.why);
	bkfs_write_failed_to_text(&S.why, S.fs);
	fprintf(stderr, "bkfs mount: write error: %s; the filesystem is read-only from now on (changes not "
		"synced before the error may be lost; unmount, then run bkfs fsck)\n", pb_str(&S.why));
	return true;
}

/* 0 if changes are allowed, else an errno */
static int writable(void)
{
	if ((S.fs->flags & BKFS_OPEN_RDONLY) || went_read_only())
		return EROFS;
	return 0;
}

static u64 ts_to_ns(const struct timespec *ts)
{
	/* clamp to what signed nanoseconds hold (about 1678..2262) */
	const s64 lim = INT64_MAX / 1000000000ll - 1;
	s64 sec = ts->tv_sec < -lim ? -lim : ts->tv_sec > lim ? lim : ts->tv_sec;
	long nsec = ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000 ? 0 : ts->tv_nsec;
	return (u64)(sec * 1000000000ll + nsec);
}

/* An operation that ran out of space waits for reclaim (journal flush, so
 * freed space becomes reusable; generation GC; copying GC) and is tried once
 * more (true: try again). */
static bool retry_nospc(long ret)
{
	return ret == -BKFS_E_NOSPC && bkfs_reclaim(S.fs, S.bg);
}

/* 0 if an operation that adds data or objects may go ahead, else ENOSPC.
 * Normal writes may not take the buckets the allocator reserves for the
 * mover and for btree nodes (so deletions and checkpoints find space on a
 * full filesystem); when only those are left, wait for reclaim first. */
static bool space_ok(void)
{
	struct alloc_space_info si;
	alloc_space_info(S.fs, &si);
	return si.free_buckets > si.reserved[ALLOC_WM_normal];
}

static int space_check(void)
{
	if (space_ok())
		return 0;
	if (bkfs_reclaim(S.fs, S.bg) && space_ok())
		return 0;
	return ENOSPC;
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
	/* directories keep i_size 0 on disk; stat shows a block, as ext4
	 * shows for a small directory (tools take 0 for an empty file) */
	st->st_size = S_ISDIR(in->mode) && !in->size ? S.fs->block_bytes : in->size;
	st->st_blksize = S.fs->block_bytes;
	st->st_blocks = in->sectors; /* 512-byte units, like st_blocks */
	ns_to_timespec(in->atime_ns, &st->st_atim);
	ns_to_timespec(in->mtime_ns, &st->st_mtim);
	ns_to_timespec(in->ctime_ns, &st->st_ctim);
}

static void reply_entry(fuse_req_t req, u64 inum, const struct bkfs_inode *in)
{
	struct fuse_entry_param e = {
		.ino = to_ino(inum),
		.generation = 1,
		.attr_timeout = TIMEOUT,
		.entry_timeout = TIMEOUT,
	};
	fill_stat(&e.attr, inum, in);
	fuse_reply_entry(req, &e);
}

/* reply with the inode's entry, or the error */
static void reply_inode(fuse_req_t req, int ret, u64 inum)
{
	struct bkfs_inode in;
	if (!ret)
		ret = bkfs_inode_find(S.fs, inum, &in);
	if (ret)
		fuse_reply_err(req, err(ret));
	else
		reply_entry(req, inum, &in);
}

static int name_ok(const char *name)
{
	return strlen(name) > BKFS_NAME_MAX ? ENAMETOOLONG : 0;
}

/* ---- open files and hidden names ---- */

static struct open_file *open_find(u64 inum)
{
	for (size_t i = 0; i < S.nr_open; i++)
		if (S.open[i].inum == inum)
			return &S.open[i];
	return NULL;
}

static int open_get(u64 inum)
{
	struct open_file *o = open_find(inum);
	if (o) {
		o->count++;
		return 0;
	}
	if (darray_room(S.open, S.open_cap, S.nr_open + 1, 16))
		return ENOMEM;
	S.open[S.nr_open++] = (struct open_file){ .inum = inum, .count = 1 };
	return 0;
}

/* Remove inum if it is an orphan (its last close, or unmount). */
static void release_orphan(u64 inum)
{
	int ret = writable() ? 0 : bkfs_orphan_release(S.fs, inum);
	if (ret)
		fprintf(stderr, "bkfs mount: removing unlinked inode %llu: %s\n", (unsigned long long)inum,
			bkfs_strerror(ret));
}

static void open_put(u64 inum)
{
	struct open_file *o = open_find(inum);
	if (!o || --o->count)
		return;
	if (o->unlinked)
		release_orphan(inum);
	*o = S.open[--S.nr_open];
}

/* Name dir/name is about to lose its inode: if that inode is open, the
 * removal keeps it as an orphan (*flag gets orphan_flag) and its last
 * release removes it. */
static int orphan_if_open(u64 dir, const char *name, unsigned orphan_flag, unsigned *flag)
{
	struct bkfs_inode in;
	struct open_file *o;
	u64 inum;
	if (!S.nr_open)
		return 0;
	int ret = bkfs_lookup(S.fs, dir, name, &inum, &in);
	if (ret == -BKFS_E_NOENT)
		return 0;
	if (ret)
		return ret;
	if (!S_ISDIR(in.mode) && (o = open_find(inum))) {
		o->unlinked = true;
		*flag |= orphan_flag;
	}
	return 0;
}

/* ---- attributes ---- */

/* chown: setuid goes, and setgid if the file is group-executable (without
 * that bit setgid marks mandatory locking), as the VFS does */
static u32 mode_killed(u32 mode)
{
	mode &= ~(u32)S_ISUID;
	if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		mode &= ~(u32)S_ISGID;
	return mode;
}

/* Whether the caller is in group gid: its fsgid, or one of its groups from
 * /proc (not libfuse's fuse_req_getgroups, which reads that file into a
 * buffer it does not terminate before searching it). A Groups line longer
 * than the buffer is cut short: a group past the cut counts as not in,
 * which clears setgid, the side the VFS errs on too. */
static bool caller_in_group(fuse_req_t req, u32 gid)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	char path[64], line[4096];
	bool in = false;
	if (ctx->gid == gid)
		return true;
	snprintf(path, sizeof(path), "/proc/%u/status", (unsigned)ctx->pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Groups:", 7))
			continue;
		char *p = line + 7, *end;
		for (unsigned long g; (g = strtoul(p, &end, 10)), end != p; p = end)
			if (g == gid)
				in = true;
		break;
	}
	fclose(f);
	return in;
}

/* A change by a caller without CAP_FSETID (the request says so,
 * fuse_wire.h): setuid goes, and setgid unless the file is not
 * group-executable and the caller is in its group, as the VFS does */
static u32 mode_killed_for(fuse_req_t req, const struct bkfs_inode *in)
{
	u32 mode = mode_killed(in->mode);
	if ((mode & S_ISGID) && !caller_in_group(req, in->gid))
		mode &= ~(u32)S_ISGID;
	return mode;
}

static int kill_suidgid(fuse_req_t req, u64 inum)
{
	struct bkfs_inode in;
	int ret = bkfs_inode_find(S.fs, inum, &in);
	if (ret || S_ISDIR(in.mode))
		return ret;
	u32 mode = mode_killed_for(req, &in);
	if (mode == in.mode)
		return 0;
	struct bkfs_attr_change c = { .mask = BKFS_ATTR_MODE, .mode = mode };
	if ((ret = bkfs_setattr(S.fs, inum, &c, NULL)))
		return ret;
	/* a write's or open's reply carries no attributes: the kernel would
	 * keep the old mode (setuid) until it next asks */
	if (S.se)
		fuse_lowlevel_notify_inval_inode(S.se, to_ino(inum), -1, 0);
	return 0;
}

/* copy_file_range and fallocate carry no kill flag under
 * HANDLE_KILLPRIV_V2 although the VFS clears the bits for them too: uid 0
 * stands for CAP_FSETID */
static int kill_if_unprivileged(fuse_req_t req, u64 inum)
{
	if (!fuse_wire_killpriv_v2() || fuse_req_ctx(req)->uid == 0)
		return 0;
	return kill_suidgid(req, inum);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	struct stat st;
	u64 inum = to_inum(ino);
	LOCK();
	int ret = bkfs_inode_find(S.fs, inum, &in);
	if (!ret)
		fill_stat(&st, inum, &in);
	UNLOCK();
	if (ret)
		fuse_reply_err(req, err(ret));
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set, struct fuse_file_info *fi)
{
	struct bkfs_attr_change c = { 0 };
	struct bkfs_inode in;
	struct stat st;
	u64 inum = to_inum(ino), now = bkfs_now_ns();
	LOCK();
	int ret = 0, e = writable();
	if (e)
		goto out;
	if ((ret = bkfs_inode_find(S.fs, inum, &in)))
		goto out;
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (S_ISDIR(in.mode))
			e = EISDIR;
		else if (!S_ISREG(in.mode) || attr->st_size < 0)
			e = EINVAL;
		else if ((ret = bkfs_file_truncate(S.fs, inum, attr->st_size)) && retry_nospc(ret))
			ret = bkfs_file_truncate(S.fs, inum, attr->st_size);
		if (e || ret)
			goto out;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		c.mask |= BKFS_ATTR_MODE;
		c.mode = attr->st_mode;
	} else if (!S_ISDIR(in.mode)) {
		/* chown (by anyone), or a truncate by a caller without
		 * CAP_FSETID: the VFS would clear the bits; under
		 * HANDLE_KILLPRIV_V2 the kernel leaves that to us (otherwise it
		 * sends the mode itself, and this changes nothing) */
		u32 mode = in.mode;
		if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
			mode = mode_killed(mode);
		if (fuse_wire_kill_suidgid())
			mode &= mode_killed_for(req, &in);
		if (mode != in.mode) {
			c.mask |= BKFS_ATTR_MODE;
			c.mode = mode;
		}
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		c.mask |= BKFS_ATTR_UID;
		c.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		c.mask |= BKFS_ATTR_GID;
		c.gid = attr->st_gid;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		c.mask |= BKFS_ATTR_ATIME;
		c.atime_ns = to_set & FUSE_SET_ATTR_ATIME_NOW ? now : ts_to_ns(&attr->st_atim);
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		c.mask |= BKFS_ATTR_MTIME;
		c.mtime_ns = to_set & FUSE_SET_ATTR_MTIME_NOW ? now : ts_to_ns(&attr->st_mtim);
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		c.mask |= BKFS_ATTR_CTIME;
		c.ctime_ns = ts_to_ns(&attr->st_ctim);
	}
	if (c.mask && (ret = bkfs_setattr(S.fs, inum, &c, NULL)))
		goto out;
	if (!(ret = bkfs_inode_find(S.fs, inum, &in)))
		fill_stat(&st, inum, &in);
out:
	UNLOCK();
	if (e || ret)
		fuse_reply_err(req, e ? e : err(ret));
	else
		fuse_reply_attr(req, &st, TIMEOUT);
}

/* ---- names ---- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct bkfs_inode in;
	u64 inum;
	int e = name_ok(name);
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	LOCK();
	int ret = bkfs_lookup(S.fs, to_inum(parent), name, &inum, &in);
	UNLOCK();
	if (ret == -BKFS_E_NOENT) {
		/* a negative entry: the kernel may cache the absence too */
		struct fuse_entry_param ne = { .ino = 0, .entry_timeout = TIMEOUT };
		fuse_reply_entry(req, &ne);
	} else if (ret) {
		fuse_reply_err(req, err(ret));
	} else {
		reply_entry(req, inum, &in);
	}
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	fuse_reply_none(req);
}

static void create_obj(fuse_req_t req, fuse_ino_t parent, const char *name, u32 mode, u64 rdev,
		       const char *target, struct fuse_file_info *fi)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct bkfs_inode din, in;
	u64 dir = to_inum(parent), inum;
	u32 gid = ctx->gid;
	int ret = 0, e = name_ok(name);
	LOCK();
	if (e || (e = writable()) || (e = space_check()) || (ret = bkfs_inode_find(S.fs, dir, &din)))
		goto out;
	if (din.mode & S_ISGID) { /* BSD group semantics below a setgid directory */
		gid = din.gid;
		if (S_ISDIR(mode))
			mode |= S_ISGID;
	}
	ret = bkfs_create(S.fs, dir, name, mode, ctx->uid, gid, rdev, target, &inum, &in);
	if (retry_nospc(ret))
		ret = bkfs_create(S.fs, dir, name, mode, ctx->uid, gid, rdev, target, &inum, &in);
	if (ret)
		goto out;
	if (fi) {
		if ((e = open_get(inum)))
			goto out;
		fi->fh = inum;
		fi->keep_cache = 1;
	}
out:
	UNLOCK();
	if (e || ret) {
		fuse_reply_err(req, e ? e : err(ret));
		return;
	}
	struct fuse_entry_param ep = {
		.ino = to_ino(inum),
		.generation = 1,
		.attr_timeout = TIMEOUT,
		.entry_timeout = TIMEOUT,
	};
	fill_stat(&ep.attr, inum, &in);
	if (fi)
		fuse_reply_create(req, &ep, fi);
	else
		fuse_reply_entry(req, &ep);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	create_obj(req, parent, name, mode, rdev, NULL, NULL);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	create_obj(req, parent, name, S_IFDIR | (mode & 07777), 0, NULL, NULL);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	if (!*target)
		fuse_reply_err(req, ENOENT);
	else if (strlen(target) > 4095)
		fuse_reply_err(req, ENAMETOOLONG);
	else
		create_obj(req, parent, name, S_IFLNK | 0777, 0, target, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi)
{
	create_obj(req, parent, name, S_IFREG | (mode & 07777), 0, NULL, fi);
}

static void remove_name(fuse_req_t req, fuse_ino_t parent, const char *name, bool rmdir)
{
	u64 dir = to_inum(parent);
	unsigned flags = rmdir ? BKFS_REMOVE_DIR : 0;
	int ret = 0, e = name_ok(name);
	LOCK();
	if (!e && !(e = writable()) && (rmdir || !(ret = orphan_if_open(dir, name, BKFS_REMOVE_ORPHAN, &flags))))
		ret = bkfs_remove(S.fs, dir, name, flags);
	UNLOCK();
	fuse_reply_err(req, e ? e : err(ret));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, false);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_name(req, parent, name, true);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	u64 odir = to_inum(parent), ndir = to_inum(newparent);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct bkfs_whiteout wo = { .uid = ctx->uid, .gid = ctx->gid };
	bool whiteout = flags & RENAME_WHITEOUT;
	unsigned f = 0;
	int ret = 0, e = 0;
	if ((flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT)) ||
	    (whiteout && (flags & RENAME_EXCHANGE))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (flags & RENAME_NOREPLACE)
		f |= BKFS_RENAME_NOREPLACE;
	if (flags & RENAME_EXCHANGE)
		f |= BKFS_RENAME_EXCHANGE;
	LOCK();
	if ((e = name_ok(name)) || (e = name_ok(newname)) || (e = writable()))
		goto out;
	/* an open target about to lose its last link stays as an orphan */
	if (!(f & BKFS_RENAME_EXCHANGE) && (ret = orphan_if_open(ndir, newname, BKFS_RENAME_ORPHAN, &f)))
		goto out;
	if (whiteout && (e = space_check()))
		goto out;
	if (retry_nospc(ret = bkfs_rename_whiteout(S.fs, odir, name, ndir, newname, f, whiteout ? &wo : NULL)))
		ret = bkfs_rename_whiteout(S.fs, odir, name, ndir, newname, f, whiteout ? &wo : NULL);
out:
	UNLOCK();
	fuse_reply_err(req, e ? e : err(ret));
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	u64 inum = to_inum(ino);
	int ret = 0, e = name_ok(newname);
	LOCK();
	if (!e && !(e = writable()) && !(e = space_check())) {
		if (retry_nospc(ret = bkfs_link(S.fs, inum, to_inum(newparent), newname)))
			ret = bkfs_link(S.fs, inum, to_inum(newparent), newname);
		if (ret == -BKFS_E_RANGE)
			e = EMLINK;
		else if (ret == -BKFS_E_ISDIR)
			e = EPERM;
	}
	if (e) {
		UNLOCK();
		fuse_reply_err(req, e);
		return;
	}
	reply_inode(req, ret, inum);
	UNLOCK();
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[4097];
	LOCK();
	ssize_t n = bkfs_readlink(S.fs, to_inum(ino), buf, sizeof(buf));
	UNLOCK();
	if (n < 0)
		fuse_reply_err(req, err(n));
	else
		fuse_reply_readlink(req, buf);
}

/* ---- files ---- */

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	u64 inum = to_inum(ino);
	int e = 0;
	LOCK();
	int ret = bkfs_inode_find(S.fs, inum, &in);
	if (ret)
		goto out;
	if (S_ISDIR(in.mode)) {
		e = EISDIR;
		goto out;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (e = writable()))
		goto out;
	/* atomic O_TRUNC: the kernel leaves it to open */
	if ((fi->flags & O_TRUNC) && S_ISREG(in.mode) && (fi->flags & O_ACCMODE) != O_RDONLY &&
	    (ret = bkfs_file_truncate(S.fs, inum, 0)))
		goto out;
	/* the VFS clears the bits after an O_TRUNC open, but with atomic
	 * O_TRUNC the kernel leaves the truncate, and so them, to us; without
	 * HANDLE_KILLPRIV_V2 no flag says whether the caller has CAP_FSETID:
	 * uid 0 stands for it */
	bool kill = fuse_wire_killpriv_v2() ? fuse_wire_kill_suidgid() : fuse_req_ctx(req)->uid != 0;
	if ((fi->flags & O_TRUNC) && kill && (ret = kill_suidgid(req, inum)))
		goto out;
	if ((e = open_get(inum)))
		goto out;
	fi->fh = inum;
	fi->keep_cache = 1;
out:
	UNLOCK();
	if (e || ret)
		fuse_reply_err(req, e ? e : err(ret));
	else
		fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	char *buf = malloc(size ? size : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	LOCK();
	ssize_t n = bkfs_file_read(S.fs, to_inum(ino), off, buf, size);
	UNLOCK();
	if (n < 0)
		fuse_reply_err(req, err(n));
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

/* reply to a write-like request: errno e, else n bytes or a bkfs error */
static void reply_written(fuse_req_t req, int e, ssize_t n)
{
	if (e)
		fuse_reply_err(req, e);
	else if (n < 0)
		fuse_reply_err(req, n == -BKFS_E_RANGE ? EFBIG : err(n));
	else
		fuse_reply_write(req, n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	LOCK();
	int e = writable();
	if (!e)
		e = space_check();
	if (!e && fuse_wire_kill_suidgid()) {
		int ret = kill_suidgid(req, to_inum(ino));
		if (ret)
			e = err(ret);
	}
	ssize_t n = e ? 0 : bkfs_file_write(S.fs, to_inum(ino), off, buf, size);
	if (!e && retry_nospc(n))
		n = bkfs_file_write(S.fs, to_inum(ino), off, buf, size);
	UNLOCK();
	reply_written(req, e, n);
}

/* Bytes one copy_file_range request handles at most: the reply carries a
 * 32-bit count, and a short copy is legal (the caller asks for the rest). */
#define COPY_RANGE_MAX (1u << 30)

/* copy_file_range(2): the block-aligned part is shared (reflink), the rest
 * copied (bkfs_copy_range). FICLONE / FICLONERANGE never reach a FUSE
 * server (the kernel handles them in the VFS, and FUSE has no remap op), so
 * `cp --reflink=always` fails on the mount; plain cp uses this. */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, struct fuse_file_info *fi_in,
			       fuse_ino_t ino_out, off_t off_out, struct fuse_file_info *fi_out, size_t len,
			       int flags)
{
	if (flags || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	len = MIN(len, (size_t)COPY_RANGE_MAX);
	LOCK();
	int e = writable();
	if (!e)
		e = space_check();
	int ret = e ? 0 : kill_if_unprivileged(req, to_inum(ino_out));
	if (ret)
		e = err(ret);
	ssize_t n = e ? 0 : bkfs_copy_range(S.fs, to_inum(ino_in), off_in, to_inum(ino_out), off_out, len);
	if (!e && retry_nospc(n))
		n = bkfs_copy_range(S.fs, to_inum(ino_in), off_in, to_inum(ino_out), off_out, len);
	UNLOCK();
	reply_written(req, e, n);
}

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif
#ifndef FALLOC_FL_ZERO_RANGE
#define FALLOC_FL_ZERO_RANGE 0x10
#endif

/* fallocate(2) modes as bkfs_fallocate's, or -1 if not supported */
static int falloc_mode(int mode)
{
	switch (mode) {
	case 0: return 0;
	case FALLOC_FL_KEEP_SIZE: return BKFS_FALLOC_KEEP_SIZE;
	case FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: return BKFS_FALLOC_PUNCH_HOLE | BKFS_FALLOC_KEEP_SIZE;
	case FALLOC_FL_ZERO_RANGE: return BKFS_FALLOC_ZERO_RANGE;
	case FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE: return BKFS_FALLOC_ZERO_RANGE | BKFS_FALLOC_KEEP_SIZE;
	}
	return -1;
}

/* Reservations hold no device space, but a preallocation larger than
 * what writes can still get is refused, as a full filesystem would. */
static bool falloc_fits(u64 len)
{
	struct alloc_space_info si;
	alloc_space_info(S.fs, &si);
	u64 replicas = S.fs->sb.data_replicas ? S.fs->sb.data_replicas : 1;
	return len <= (si.avail_sectors / replicas) << SECTOR_SHIFT;
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, struct fuse_file_info *fi)
{
	int m = falloc_mode(mode), ret = 0, e = 0;
	if (m < 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	LOCK();
	if (!(e = writable()) && !(m & BKFS_FALLOC_PUNCH_HOLE) && !(e = space_check()) && !falloc_fits(len))
		e = ENOSPC;
	if (!e && (ret = kill_if_unprivileged(req, to_inum(ino))))
		e = err(ret);
	if (!e && (m & BKFS_FALLOC_PUNCH_HOLE || !(e = space_check())) &&
	    retry_nospc(ret = bkfs_fallocate(S.fs, to_inum(ino), m, off, len)))
		ret = bkfs_fallocate(S.fs, to_inum(ino), m, off, len);
	UNLOCK();
	if (!e && ret == -BKFS_E_RANGE)
		e = EFBIG;
	else if (!e && ret == -BKFS_E_INVAL)
		e = ENODEV; /* not a regular file */
	fuse_reply_err(req, e ? e : err(ret));
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, struct fuse_file_info *fi)
{
	u64 pos = 0;
	int ret = 0;
	if (whence != SEEK_DATA && whence != SEEK_HOLE) {
		fuse_reply_err(req, EINVAL); /* the kernel handles the others itself */
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	LOCK();
	ret = bkfs_seek_data(S.fs, to_inum(ino), off, whence == SEEK_DATA, &pos);
	UNLOCK();
	if (ret == -BKFS_E_NOENT)
		fuse_reply_err(req, ENXIO);
	else if (ret)
		fuse_reply_err(req, err(ret));
	else
		fuse_reply_lseek(req, pos);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	LOCK();
	open_put(to_inum(ino));
	UNLOCK();
	fuse_reply_err(req, 0);
}

/* fsync: everything committed becomes durable; when the timed flush (or an
 * earlier fsync) already made it so, there is nothing to write or flush */
static int fsync_all(void)
{
	return journal_needs_flush(S.fs) ? bkfs_sync(S.fs) : 0;
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	LOCK();
	/* after a write error nothing more becomes durable */
	int ret = went_read_only() ? -BKFS_E_IO : (S.fs->flags & BKFS_OPEN_RDONLY) ? 0 : fsync_all();
	UNLOCK();
	fuse_reply_err(req, err(ret));
}

/* What writes can really get: free buckets above the reserves, plus what
 * the background work reclaims (buckets waiting on generation GC or on a
 * discard, unused space in user buckets that copying GC recovers). A
 * deletion shows at once. */
static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;
	struct alloc_space_info si;
	LOCK();
	struct bkfs_fs *fs = S.fs;
	alloc_space_info(fs, &si);
	u64 replicas = fs->sb.data_replicas ? fs->sb.data_replicas : 1;
	u64 sectors_per_block = fs->block_bytes >> SECTOR_SHIFT;
	memset(&st, 0, sizeof(st));
	st.f_bsize = st.f_frsize = fs->block_bytes;
	st.f_blocks = si.total_buckets * si.bucket_sectors / replicas / sectors_per_block;
	st.f_bavail = si.avail_sectors / replicas / sectors_per_block;
	st.f_bfree = MIN(st.f_blocks, st.f_bavail + si.reserved[ALLOC_WM_normal] * si.bucket_sectors / replicas /
							   sectors_per_block);
	/* inodes are not a limited resource: report plenty */
	st.f_files = st.f_ffree = st.f_favail = 1ull << 32;
	st.f_namemax = BKFS_NAME_MAX;
	UNLOCK();
	fuse_reply_statfs(req, &st);
}

/* ---- directories ---- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct bkfs_inode in;
	u64 inum = to_inum(ino);
	LOCK();
	int ret = bkfs_inode_find(S.fs, inum, &in);
	UNLOCK();
	if (ret)
		fuse_reply_err(req, err(ret));
	else if (!S_ISDIR(in.mode))
		fuse_reply_err(req, ENOTDIR);
	else {
		fi->fh = inum;
		fuse_reply_open(req, fi);
	}
}

/* Directory offsets: 1 = ".", 2 = "..", slot + 3 = the dirent at slot (slots
 * are below 2^63 - 3). Resuming after offset o (> 2) starts at slot o - 2. */
struct rd_ctx {
	fuse_req_t req;
	bool plus; /* readdirplus: each entry with its attributes */
	char *buf;
	size_t size, len;
	char name[BKFS_NAME_MAX + 1];
};

/* readdirplus: an entry as a lookup would answer it. "." and ".." (and an
 * entry whose inode cannot be read: the lookup will say why) carry no node
 * id, so the kernel takes only the name, number and type from them. */
static void rd_entry(struct fuse_entry_param *e, const char *name, u64 inum, unsigned d_type)
{
	struct bkfs_inode in;
	memset(e, 0, sizeof(*e));
	if (strcmp(name, ".") && strcmp(name, "..") && !bkfs_inode_find(S.fs, inum, &in)) {
		e->ino = to_ino(inum);
		e->generation = 1;
		e->attr_timeout = e->entry_timeout = TIMEOUT;
		fill_stat(&e->attr, inum, &in);
		return;
	}
	e->attr.st_ino = inum;
	e->attr.st_mode = DTTOIF(d_type);
}

/* add one entry; 1 when the buffer is full */
static int rd_add(struct rd_ctx *c, const char *name, u64 inum, unsigned d_type, off_t next)
{
	size_t n, room = c->size - c->len;
	if (c->plus) {
		struct fuse_entry_param e;
		rd_entry(&e, name, inum, d_type);
		n = fuse_add_direntry_plus(c->req, c->buf + c->len, room, name, &e, next);
	} else {
		struct stat st = { .st_ino = inum, .st_mode = DTTOIF(d_type) };
		n = fuse_add_direntry(c->req, c->buf + c->len, room, name, &st, next);
	}
	if (n > room)
		return 1;
	c->len += n;
	return 0;
}

static int rd_one(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot)
{
	struct rd_ctx *c = arg;
	memcpy(c->name, name, len);
	c->name[len] = 0;
	return rd_add(c, c->name, inum, d_type, slot + 3);
}

static void read_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct bkfs_inode in;
	u64 inum = to_inum(ino);
	struct rd_ctx c = { .req = req, .plus = plus, .size = size };
	if (!(c.buf = malloc(size ? size : 1))) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	LOCK();
	int ret = bkfs_inode_find(S.fs, inum, &in);
	if (ret)
		goto out;
	if (!S_ISDIR(in.mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if (off < 1 && rd_add(&c, ".", inum, DT_DIR, 1))
		goto out;
	if (off < 2 && rd_add(&c, "..", in.parent ? in.parent : inum, DT_DIR, 2))
		goto out;
	ret = bkfs_readdir(S.fs, inum, off > 2 ? (u64)off - 2 : 0, rd_one, &c);
	if (ret > 0)
		ret = 0; /* the buffer is full */
out:
	UNLOCK();
	if (ret)
		fuse_reply_err(req, err(ret));
	else
		fuse_reply_buf(req, c.buf, c.len);
	free(c.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	read_dir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	read_dir(req, ino, size, off, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* ---- xattrs ---- */

static int xattr_err(int ret)
{
	return ret == -BKFS_E_NOENT ? ENODATA : err(ret);
}

/* POSIX ACLs are not supported: refusing them makes clients (cp -a, tar,
 * rsync -A) fall back to chmod, where storing them as plain xattrs would
 * silently drop the mode they carry */
static bool is_acl(const char *name)
{
	return !strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default");
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size, int flags)
{
	int f = 0, e = 0;
	if (is_acl(name))
		e = EOPNOTSUPP;
	else if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		e = EINVAL;
	if (e) {
		fuse_reply_err(req, e);
		return;
	}
	if (flags & XATTR_CREATE)
		f |= BKFS_XATTR_CREATE;
	if (flags & XATTR_REPLACE)
		f |= BKFS_XATTR_REPLACE;
	LOCK();
	int ret = 0;
	if (!(e = writable()) && !(e = space_check()) &&
	    retry_nospc(ret = bkfs_setxattr(S.fs, to_inum(ino), name, value, size, f)))
		ret = bkfs_setxattr(S.fs, to_inum(ino), name, value, size, f);
	UNLOCK();
	fuse_reply_err(req, e ? e : xattr_err(ret));
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	LOCK();
	int ret = bkfs_getxattr(S.fs, to_inum(ino), name, buf, size);
	UNLOCK();
	if (ret < 0)
		fuse_reply_err(req, xattr_err(ret));
	else if (!size)
		fuse_reply_xattr(req, ret);
	else
		fuse_reply_buf(req, buf, ret);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	LOCK();
	ssize_t n = bkfs_xattr_list(S.fs, to_inum(ino), buf, size);
	UNLOCK();
	if (n < 0)
		fuse_reply_err(req, err(n));
	else if (!size)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	LOCK();
	int ret = 0, e = writable();
	if (!e)
		ret = bkfs_removexattr(S.fs, to_inum(ino), name);
	UNLOCK();
	fuse_reply_err(req, e ? e : xattr_err(ret));
}

/* ---- scrub (bkfs scrub MOUNTPOINT; scrub_ioctl.h) ---- */

static void scrub_fill_status(struct bkfs_scrub_ioc *io, bool json)
{
	struct bg_scrub_state st;
	bg_scrub_state(S.bg, &st);
	io->state = st.state;
	io->status = st.status;
	io->pct = st.pct;
	snprintf(io->phase, sizeof(io->phase), "%s", st.phase ? st.phase : "");
	const char *rep = json ? st.json : st.text;
	snprintf(io->report, sizeof(io->report), "%s", st.state == BKFS_SCRUB_DONE && rep ? rep : "");
}

static void op_ioctl(fuse_req_t req, fuse_ino_t ino, int cmd, void *arg, struct fuse_file_info *fi,
		     unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct bkfs_scrub_ioc *io;
	if ((unsigned)cmd != BKFS_IOC_SCRUB || ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if (in_bufsz < sizeof(*io) || out_bufsz < sizeof(*io) || !(io = malloc(sizeof(*io)))) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(io, in_buf, sizeof(*io));
	LOCK();
	io->error = 0;
	if (!S.bg) {
		io->error = ENOSYS;
	} else if (io->op == BKFS_SCRUB_OP_START || io->op == BKFS_SCRUB_OP_START_VERIFY) {
		int ret = bg_scrub_start(S.bg, io->op == BKFS_SCRUB_OP_START);
		io->error = ret == -BKFS_E_BUSY ? EBUSY : ret == -BKFS_E_INVAL ? EROFS : ret ? ENOMEM : 0;
	} else if (io->op != BKFS_SCRUB_OP_STATUS && io->op != BKFS_SCRUB_OP_STATUS_JSON) {
		io->error = EINVAL;
	}
	if (S.bg)
		scrub_fill_status(io, io->op == BKFS_SCRUB_OP_STATUS_JSON);
	UNLOCK();
	fuse_reply_ioctl(req, 0, io, sizeof(*io));
	free(io);
}

/* ---- mount and unmount ---- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	/* not the first version of killpriv (it cannot tell a caller with
	 * CAP_FSETID); the second is taken below libfuse (fuse_wire.h) */
	conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
	/* writes go through to the filesystem at once (no writeback cache) */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* bkfs scrub MOUNTPOINT: an ioctl on the root directory */
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	conn->want |= conn->capable & FUSE_CAP_READDIRPLUS;
}

/* the request counts of fuse_wire.c, on stderr with the other exit reports */
static void print_request_counts(void)
{
	struct fuse_wire_stats ws;
	fuse_wire_get_stats(&ws);
	fprintf(stderr, "bkfs mount: requests read %llu; polled for %llu, found by polling %llu; polling paused %llu times\n",
		(unsigned long long)ws.reads, (unsigned long long)ws.polled, (unsigned long long)ws.found_polling,
		(unsigned long long)ws.pauses);
}

/* close once: from destroy, or after the loop if destroy never ran */
static void close_fs(void)
{
	if (S.bg) {
		struct bg_stats st;
		struct printbuf pb = PRINTBUF;
		bg_stop(S.bg, &st); /* takes the lock itself */
		S.bg = NULL;
		bg_stats_to_text(&pb, &st);
		u64 written = 0;
		for (unsigned d = 0; d < S.fs->nr_devs; d++)
			if (S.fs->devs[d].bd)
				written += S.fs->devs[d].bd->bytes_written;
		/* the benchmark's write amplification: device bytes / user bytes */
		fprintf(stderr, "bkfs mount: background work: %s; device bytes written %llu\n", pb_str(&pb),
			(unsigned long long)written);
		pb_exit(&pb);
	}
	LOCK();
	if (!S.closed) {
		S.closed = true;
		print_request_counts();
		/* files still open at unmount: orphans among them go now */
		for (size_t i = 0; i < S.nr_open; i++)
			if (S.open[i].unlinked)
				release_orphan(S.open[i].inum);
		S.nr_open = 0;
		went_read_only();
		S.close_ret = bkfs_close(S.fs);
		if (S.failed)
			fprintf(stderr, "bkfs mount: unmounted read-only after a write error (%s): changes since the "
				"last sync before it may be lost; run bkfs fsck\n", pb_str(&S.why));
		else if (S.close_ret)
			fprintf(stderr, "bkfs mount: closing the filesystem: %s\n", bkfs_strerror(S.close_ret));
	}
	free(S.open);
	S.open = NULL;
	S.open_cap = 0;
	UNLOCK();
}

static void op_destroy(void *userdata)
{
	close_fs();
}

static const struct fuse_lowlevel_ops bkfs_ll_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsync,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.ioctl = op_ioctl,
	.create = op_create,
	.copy_file_range = op_copy_file_range,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
};

/* Orphans left by a crash (files unlinked while open, interrupted
 * deletions), and hidden names an older version left for the same: no file
 * is open yet, so they all go. */
static void reap_leftovers(struct bkfs_fs *fs)
{
	unsigned nr = 0, nr_hidden = 0;
	int r = bkfs_reap_orphans(fs, &nr);
	if (!r)
		r = bkfs_reap_hidden(fs, &nr_hidden);
	if (r)
		fprintf(stderr, "bkfs mount: removing leftover unlinked files: %s\n", bkfs_strerror(r));
	else if (nr + nr_hidden)
		fprintf(stderr, "bkfs mount: removed %u leftover unlinked file(s) (unlinked while open, or "
			"deletions interrupted by a crash)\n", nr + nr_hidden);
}

int bkfs_fuse_main(struct bkfs_fs *fs, const struct bg_opts *bgo, int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_session *se = NULL;
	int ret = 1;

	S.fs = fs;
	S.closed = false;
	S.failed = false;
	S.why = PRINTBUF;
	S.close_ret = 0;
	S.bg = NULL;
	S.se = NULL;
	S.bg_opts = *bgo;
	memset(&opts, 0, sizeof(opts));
	if (fuse_parse_cmdline(&args, &opts))
		goto out;
	if (!opts.mountpoint) {
		fprintf(stderr, "bkfs mount: no mount point\n");
		goto out;
	}
	if (!(se = fuse_session_new(&args, &bkfs_ll_ops, sizeof(bkfs_ll_ops), NULL)))
		goto out;
	if (!(fs->flags & BKFS_OPEN_RDONLY))
		reap_leftovers(fs);
	if (fuse_set_signal_handlers(se))
		goto out_destroy;
	if (fuse_session_mount(se, opts.mountpoint))
		goto out_signals;
	/* under libfuse, for what it does not pass on (fuse_wire.h) */
	static const struct fuse_custom_io wire = { .read = fuse_wire_read, .writev = fuse_wire_writev };
	if (fuse_session_custom_io(se, &wire, fuse_session_fd(se)))
		fprintf(stderr, "bkfs mount: FUSE I/O hooks not installed; going on without them\n");
	S.se = se;
	fuse_daemonize(opts.foreground);
	/* after daemonizing: a thread does not survive the fork */
	if (!(fs->flags & BKFS_OPEN_RDONLY)) {
		int r = bg_start(fs, &S.lock, &S.bg_opts, &S.bg);
		if (r)
			fprintf(stderr, "bkfs mount: background work not started: %s\n", bkfs_strerror(r));
	}
	/* single-threaded: see "one thread" at the top */
	ret = fuse_session_loop(se) ? 1 : 0;
	S.se = NULL;
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se); /* runs destroy (close) if the kernel connected */
out:
	close_fs();
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	pb_exit(&S.why);
	if (S.failed)
		return BKFS_MOUNT_EXIT_WRITE_ERROR;
	return ret || S.close_ret ? 1 : 0;
}
