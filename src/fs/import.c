/* import.c - fill a fresh filesystem from a directory tree (format --source).
 *
 * The walk is depth-first with opendir/readdir (one open directory per
 * level), so memory stays bounded whatever the size of the tree: the only
 * table is the one of hard-linked files not yet complete. Many objects go
 * into one transaction (at most IMPORT_BATCH updates and 1 MiB of data) for
 * speed; the filesystem is opened in bulk mode (no journal), so durability
 * comes from the checkpoint at close. */
#include "fs.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../format/inode_format.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define IMPORT_CHUNK (1u << 20)
#define IMPORT_BATCH 256
#define XATTR_VAL_BUF (64u << 10)
#define IMPORT_CACHE (32u << 20) /* dirty and clean btree node bytes kept in memory */

struct hl_ent {
	dev_t dev;
	ino_t ino;
	u64 inum;
	u32 seen, nlink;
	struct inode_names *more; /* the names of its later links, recorded by hl_finish */
	struct hl_ent *next;
};

struct imp {
	struct bkfs_fs *fs;
	struct trans t;
	const char *prefix;
	struct bkfs_import_stats *st;
	size_t pending; /* data bytes queued since the last commit */
	u8 *buf;
	char *xnames;
	size_t xnames_cap;
	u8 *xval;
	char *path;
	size_t plen, pcap;
	struct hl_ent **hl;
	size_t hl_nb, hl_n;
	/* the filesystem's own devices, never imported into themselves */
	struct { dev_t dev; ino_t ino; } self[BKFS_MAX_DEVS];
	unsigned nr_self;
};

static u64 ts_ns(struct timespec ts)
{
	return (u64)((s64)ts.tv_sec * 1000000000ll + ts.tv_nsec);
}

static void report(struct imp *im, const char *what, int err)
{
	fprintf(stderr, "%s: cannot read %s: %s%s%s\n", im->prefix, im->path, what ? what : "",
		what ? ": " : "", strerror(err));
	im->st->errors++;
}

static void report_msg(struct imp *im, const char *msg)
{
	fprintf(stderr, "%s: cannot read %s: %s\n", im->prefix, im->path, msg);
	im->st->errors++;
}

static int commit(struct imp *im)
{
	im->pending = 0;
	if (!im->t.nr)
		return 0;
	return trans_commit(&im->t, 0);
}

static int maybe_commit(struct imp *im)
{
	if (im->t.nr >= IMPORT_BATCH || im->pending >= IMPORT_CHUNK)
		return commit(im);
	return 0;
}

static int path_push(struct imp *im, const char *name)
{
	size_t n = strlen(name);
	if (darray_room(im->path, im->pcap, im->plen + n + 2, 256))
		return -BKFS_E_NOMEM;
	im->path[im->plen++] = '/';
	memcpy(im->path + im->plen, name, n + 1);
	im->plen += n;
	return 0;
}

/* ---- hard links: (st_dev, st_ino) -> inum for files with st_nlink > 1 ---- */

static size_t hl_slot(struct imp *im, dev_t dev, ino_t ino)
{
	return (size_t)(((u64)dev * 0x9E3779B97F4A7C15ull) ^ ((u64)ino * 0xC2B2AE3D27D4EB4Full)) % im->hl_nb;
}

static struct hl_ent **hl_find(struct imp *im, dev_t dev, ino_t ino)
{
	if (!im->hl_nb)
		return NULL;
	struct hl_ent **pp = &im->hl[hl_slot(im, dev, ino)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->dev == dev && (*pp)->ino == ino)
			return pp;
	return NULL;
}

static int hl_add(struct imp *im, dev_t dev, ino_t ino, u64 inum, u32 nlink)
{
	if (im->hl_n >= im->hl_nb) {
		size_t nb = im->hl_nb ? im->hl_nb * 2 : 1024;
		struct hl_ent **n = calloc(nb, sizeof(*n));
		if (!n)
			return -BKFS_E_NOMEM;
		for (size_t i = 0; i < im->hl_nb; i++)
			for (struct hl_ent *e = im->hl[i], *next; e; e = next) {
				next = e->next;
				size_t s = (size_t)(((u64)e->dev * 0x9E3779B97F4A7C15ull) ^
						    ((u64)e->ino * 0xC2B2AE3D27D4EB4Full)) % nb;
				e->next = n[s];
				n[s] = e;
			}
		free(im->hl);
		im->hl = n;
		im->hl_nb = nb;
	}
	struct hl_ent *e = malloc(sizeof(*e));
	if (!e)
		return -BKFS_E_NOMEM;
	*e = (struct hl_ent){ .dev = dev, .ino = ino, .inum = inum, .seen = 1, .nlink = nlink };
	size_t s = hl_slot(im, dev, ino);
	e->next = im->hl[s];
	im->hl[s] = e;
	im->hl_n++;
	return 0;
}

/* A later link of a hard-linked file: its name, for hl_finish */
static int hl_link(struct hl_ent *e, u64 dir, const char *name, size_t len)
{
	if (!e->more && !(e->more = calloc(1, sizeof(*e->more))))
		return -BKFS_E_NOMEM;
	inode_names_add(e->more, dir, name, len); /* the first INODE_NAMES_MAX - 1 are enough */
	return 0;
}

/* The inode of a hard-linked file gets its final link count and the names
 * of its later links (as many as it has room for), in one update. */
static int hl_finish(struct imp *im, struct hl_ent *e)
{
	struct bkfs_inode in;
	struct inode_names nm;
	if (e->seen == 1)
		return 0; /* written with nlink 1 already */
	int ret = bkfs_inode_get_named(&im->t, e->inum, &in, &nm);
	if (ret)
		return ret;
	in.nlink = e->seen;
	for (unsigned i = 0; e->more && i < e->more->nr; i++)
		inode_names_add(&nm, e->more->dir[i], e->more->name[i], e->more->len[i]);
	in.parent = nm.nr ? nm.dir[0] : in.parent;
	free(e->more);
	e->more = NULL;
	return bkfs_inode_write_named(&im->t, e->inum, &in, &nm);
}

/* ---- xattrs ---- */

/* fd >= 0: the object is open (regular file, directory); else use the path. */
static int import_xattrs(struct imp *im, int fd, u64 inum)
{
	ssize_t n;
	if (darray_room(im->xnames, im->xnames_cap, 4096, 4096))
		return -BKFS_E_NOMEM;
	for (;;) {
		n = fd >= 0 ? flistxattr(fd, im->xnames, im->xnames_cap) : llistxattr(im->path, im->xnames, im->xnames_cap);
		if (n >= 0)
			break;
		if (errno == ENOTSUP || errno == ENOSYS)
			return 0;
		if (errno != ERANGE) {
			report(im, "listing xattrs", errno);
			return 0;
		}
		ssize_t want = fd >= 0 ? flistxattr(fd, NULL, 0) : llistxattr(im->path, NULL, 0);
		if (want < 0) {
			report(im, "listing xattrs", errno);
			return 0;
		}
		if (darray_room(im->xnames, im->xnames_cap, MAX((size_t)want + 256, im->xnames_cap + 1), 4096))
			return -BKFS_E_NOMEM;
	}
	for (ssize_t off = 0; off < n;) {
		const char *name = im->xnames + off;
		size_t nl = strnlen(name, n - off);
		off += nl + 1;
		if (!nl)
			continue;
		ssize_t vl = fd >= 0 ? fgetxattr(fd, name, im->xval, XATTR_VAL_BUF)
				     : lgetxattr(im->path, name, im->xval, XATTR_VAL_BUF);
		if (vl < 0) {
			if (errno == ENODATA)
				continue; /* removed meanwhile */
			char what[300];
			snprintf(what, sizeof(what), "xattr %s", name);
			report(im, what, errno);
			continue;
		}
		if (nl > 255 || (size_t)vl > bkfs_xattr_max_value(nl)) {
			char msg[400];
			snprintf(msg, sizeof(msg), "xattr %.255s: %zd-byte value does not fit (at most %zu bytes)",
				 name, vl, bkfs_xattr_max_value(MIN(nl, (size_t)255)));
			report_msg(im, msg);
			continue;
		}
		int ret = bkfs_xattr_set(&im->t, inum, name, im->xval, vl, 0);
		if (ret)
			return ret;
		im->st->xattrs++;
	}
	return 0;
}

/* ---- file data ---- */

static ssize_t pread_full(int fd, u8 *buf, size_t len, u64 off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t r = pread(fd, buf + done, len - done, off + done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!r)
			break;
		done += r;
	}
	return done;
}

/* Copy [start, end) of the source (block-aligned start) into inum.
 * Returns 0, 1 at EOF (the file shrank: *size adjusted), -errno-ish via *err
 * for source errors, or a negative bkfs error. */
static int copy_range(struct imp *im, int fd, u64 inum, u64 start, u64 end, u64 *size,
		      s64 *sectors, int *err)
{
	for (u64 pos = start; pos < end;) {
		size_t want = MIN((u64)IMPORT_CHUNK, end - pos);
		ssize_t got = pread_full(fd, im->buf, want, pos);
		if (got < 0) {
			*err = errno;
			return 0;
		}
		if (got) {
			int ret = extent_write(&im->t, inum, pos, im->buf, got, sectors);
			if (ret)
				return ret;
			im->pending += got;
			im->st->bytes += got;
			if ((ret = maybe_commit(im)))
				return ret;
		}
		if ((size_t)got < want) {
			*size = pos + got;
			return 1;
		}
		pos += got;
	}
	return 0;
}

static int import_data(struct imp *im, int fd, const struct stat *st, u64 inum, struct bkfs_inode *in, int *err)
{
	u64 size = st->st_size, bs = im->fs->block_bytes, done = 0;
	s64 sectors = 0;
	int ret;
	*err = 0;
	if (!size)
		goto out;
	if ((u64)st->st_blocks * 512 >= size) {
		/* dense: one pass */
		ret = copy_range(im, fd, inum, 0, size, &size, &sectors, err);
		if (ret < 0)
			return ret;
		goto out;
	}
	/* sparse: only the data regions, widened to whole blocks */
	for (off_t pos = 0; (u64)pos < size && !*err;) {
		off_t ds = lseek(fd, pos, SEEK_DATA);
		if (ds < 0) {
			if (errno == ENXIO)
				break; /* the rest is a hole */
			if (errno == EINVAL) { /* no SEEK_DATA: copy everything */
				ret = copy_range(im, fd, inum, done, size, &size, &sectors, err);
				if (ret < 0)
					return ret;
				break;
			}
			*err = errno;
			break;
		}
		off_t de = lseek(fd, ds, SEEK_HOLE);
		if (de < 0) {
			*err = errno;
			break;
		}
		u64 s = (u64)ds & ~(bs - 1), e = MIN(ROUND_UP((u64)de, bs), size);
		s = MAX(s, done);
		if (s < e) {
			ret = copy_range(im, fd, inum, s, e, &size, &sectors, err);
			if (ret < 0)
				return ret;
			if (ret)
				break;
			done = e;
		}
		pos = MAX((u64)de, e);
	}
out:
	in->size = size;
	in->sectors = sectors < 0 ? 0 : sectors;
	return 0;
}

/* A file could not be read completely: drop what was written for it. */
static int rollback_data(struct imp *im, u64 inum)
{
	int ret = commit(im);
	if (!ret)
		ret = bkfs_punch(im->fs, inum, 0, UINT64_MAX);
	return ret;
}

/* ---- the walk ---- */

static void inode_from_stat(struct bkfs_inode *in, const struct stat *st)
{
	bkfs_inode_init(in, st->st_mode, st->st_uid, st->st_gid, st->st_rdev, 0);
	in->atime_ns = ts_ns(st->st_atim);
	in->mtime_ns = ts_ns(st->st_mtim);
	in->ctime_ns = ts_ns(st->st_ctim);
}

static int import_dir(struct imp *im, DIR *d, u64 dir, u32 *nsubdirs);

static int import_entry(struct imp *im, int dfd, const char *name, u64 dir, u32 *nsubdirs)
{
	struct stat st;
	struct bkfs_inode in;
	struct inode_names nm;
	size_t nlen = strlen(name);
	u64 inum;
	int fd = -1, ret = 0, err;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		report(im, NULL, errno);
		return 0;
	}
	if (nlen > BKFS_NAME_MAX) {
		report_msg(im, "name too long");
		return 0;
	}
	unsigned dt = bkfs_mode_to_dtype(st.st_mode);
	if (dt == DT_UNKNOWN) {
		report_msg(im, "unknown file type");
		return 0;
	}
	for (unsigned i = 0; i < im->nr_self; i++)
		if (st.st_dev == im->self[i].dev && st.st_ino == im->self[i].ino) {
			fprintf(stderr, "%s: skipping %s: it is a device of the new filesystem\n", im->prefix, im->path);
			return 0;
		}
	if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
		struct hl_ent **pp = hl_find(im, st.st_dev, st.st_ino);
		if (pp) {
			struct hl_ent *e = *pp;
			if ((ret = bkfs_dirent_add_unique(&im->t, dir, name, nlen, e->inum, dt)) ||
			    (ret = hl_link(e, dir, name, nlen)))
				return ret;
			e->seen++;
			im->st->hardlinks++;
			if (e->seen >= e->nlink) {
				if ((ret = hl_finish(im, e)))
					return ret;
				*pp = e->next;
				free(e);
				im->hl_n--;
			}
			return maybe_commit(im);
		}
	}

	if (S_ISREG(st.st_mode)) {
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME | O_CLOEXEC);
		if (fd < 0 && errno == EPERM)
			fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			report(im, NULL, errno);
			return 0;
		}
	} else if (S_ISDIR(st.st_mode)) {
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			report(im, NULL, errno);
			return 0;
		}
	}

	if ((ret = bkfs_inum_alloc(&im->t, false, &inum)))
		goto out;
	inode_from_stat(&in, &st);
	in.parent = dir;

	switch (st.st_mode & S_IFMT) {
	case S_IFREG:
		if ((ret = import_data(im, fd, &st, inum, &in, &err)))
			goto out;
		if (err) {
			report(im, NULL, err);
			ret = rollback_data(im, inum);
			goto out;
		}
		im->st->files++;
		break;
	case S_IFLNK: {
		char target[4097];
		ssize_t n = readlinkat(dfd, name, target, sizeof(target));
		if (n < 0 || n >= (ssize_t)sizeof(target) - 1) {
			if (n < 0)
				report(im, "readlink", errno);
			else
				report_msg(im, "symlink target too long");
			goto out;
		}
		s64 sectors = 0;
		if ((ret = extent_write(&im->t, inum, 0, target, n, &sectors)))
			goto out;
		in.size = n;
		in.sectors = sectors;
		im->pending += n;
		im->st->symlinks++;
		break;
	}
	case S_IFDIR:
		break;
	default:
		im->st->specials++;
		break;
	}

	if ((ret = import_xattrs(im, fd, inum)))
		goto out;
	inode_names_one(&nm, dir, name, nlen); /* the new dirent's, recorded */

	if (S_ISDIR(st.st_mode)) {
		DIR *sub = fdopendir(fd);
		if (!sub) {
			report(im, NULL, errno);
			goto out;
		}
		fd = -1;
		if ((ret = bkfs_dirent_add_unique(&im->t, dir, name, nlen, inum, dt)))
			goto out_dir;
		u32 n = 0;
		ret = import_dir(im, sub, inum, &n);
		if (ret)
			goto out_dir;
		in.nlink = 2 + n;
		(*nsubdirs)++;
		im->st->dirs++;
		ret = bkfs_inode_write_named(&im->t, inum, &in, &nm);
out_dir:
		closedir(sub);
		if (ret)
			goto out;
	} else {
		if ((ret = bkfs_inode_write_named(&im->t, inum, &in, &nm)) ||
		    (ret = bkfs_dirent_add_unique(&im->t, dir, name, nlen, inum, dt)))
			goto out;
		if (st.st_nlink > 1 && (ret = hl_add(im, st.st_dev, st.st_ino, inum, st.st_nlink)))
			goto out;
	}
	ret = maybe_commit(im);
out:
	if (fd >= 0)
		close(fd);
	return ret;
}

static int import_dir(struct imp *im, DIR *d, u64 dir, u32 *nsubdirs)
{
	int dfd = dirfd(d);
	size_t plen = im->plen;
	struct dirent *de;
	int ret = 0;
	for (;;) {
		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				report(im, "reading directory", errno);
			break;
		}
		const char *n = de->d_name;
		if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
			continue;
		if ((ret = path_push(im, n)))
			break;
		ret = import_entry(im, dfd, n, dir, nsubdirs);
		im->plen = plen;
		im->path[plen] = 0;
		if (ret)
			break;
	}
	return ret;
}

int bkfs_import(struct bkfs_fs *fs, const char *src, const char *prefix, struct bkfs_import_stats *stats)
{
	struct imp im = { .fs = fs, .prefix = prefix ? prefix : "bkfs", .st = stats };
	struct bkfs_inode root;
	struct stat st;
	DIR *d = NULL;
	int ret;

	memset(stats, 0, sizeof(*stats));
	/* bulk import mostly appends: a small node cache is as fast as a big one */
	fs->dirty_limit = MIN(fs->dirty_limit, (u64)IMPORT_CACHE);
	fs->max_clean = MIN(fs->max_clean, MAX((size_t)64, (size_t)IMPORT_CACHE / fs->node_bytes));
	trans_init(&im.t, fs);
	im.buf = malloc(IMPORT_CHUNK);
	im.xval = malloc(XATTR_VAL_BUF);
	im.pcap = strlen(src) + 256;
	im.path = malloc(im.pcap);
	if (!im.buf || !im.xval || !im.path) {
		ret = -BKFS_E_NOMEM;
		goto out;
	}
	for (unsigned i = 0; i < fs->nr_devs; i++) {
		struct stat ds;
		const char *dp = fs->devs[i].bd ? fs->devs[i].bd->path : NULL;
		if (dp && !stat(dp, &ds)) {
			im.self[im.nr_self].dev = ds.st_dev;
			im.self[im.nr_self++].ino = ds.st_ino;
		}
	}
	strcpy(im.path, src);
	im.plen = strlen(src);
	while (im.plen > 1 && im.path[im.plen - 1] == '/')
		im.path[--im.plen] = 0;

	int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) || !(d = fdopendir(fd))) {
		int e = errno;
		if (fd >= 0 && !d)
			close(fd);
		fprintf(stderr, "%s: cannot read %s: %s\n", im.prefix, src, strerror(e));
		ret = -BKFS_E_INVAL;
		goto out;
	}
	if ((ret = bkfs_inode_get(&im.t, BKFS_ROOT_INO, &root)))
		goto out;
	if ((ret = import_xattrs(&im, dirfd(d), BKFS_ROOT_INO)))
		goto out;
	u32 n = 0;
	if ((ret = import_dir(&im, d, BKFS_ROOT_INO, &n)))
		goto out;
	root.mode = S_IFDIR | (st.st_mode & 07777);
	root.uid = st.st_uid;
	root.gid = st.st_gid;
	root.atime_ns = ts_ns(st.st_atim);
	root.mtime_ns = ts_ns(st.st_mtim);
	root.ctime_ns = ts_ns(st.st_ctim);
	root.nlink = 2 + n;
	root.parent = BKFS_ROOT_INO;
	if ((ret = bkfs_inode_write(&im.t, BKFS_ROOT_INO, &root)))
		goto out;
	/* hard-linked files with links outside the tree: count what we saw */
	for (size_t i = 0; i < im.hl_nb && !ret; i++)
		for (struct hl_ent *e = im.hl[i]; e && !ret; e = e->next) {
			ret = hl_finish(&im, e);
			if (!ret)
				ret = maybe_commit(&im);
		}
	if (!ret)
		ret = commit(&im);
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < im.hl_nb; i++)
		for (struct hl_ent *e = im.hl[i], *next; e; e = next) {
			next = e->next;
			free(e->more);
			free(e);
		}
	free(im.hl);
	trans_exit(&im.t);
	free(im.buf);
	free(im.xval);
	free(im.xnames);
	free(im.path);
	return ret;
}
