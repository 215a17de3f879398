/* extract.c - copy the whole tree out of a filesystem (the inverse of
 * import): files with their holes, directories, symlinks, hard links,
 * device nodes, FIFOs and sockets, xattrs, owners, modes and times.
 *
 * Depth-first over the dirents btree; one iterator per directory level. A
 * problem with one object (an unreadable extent, a refused xattr) is reported
 * with its path and extraction goes on. Directories get their mode, owner
 * and times after their contents. */
#include "fs.h"
#include "../util/darray.h"
#include "../btree/iter.h"
#include "../btree/node.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define WBUF_SIZE (1u << 20)
#define MAX_DEPTH 4096
#define EXTRACT_CACHE (32u << 20) /* clean btree node bytes kept in memory */

struct hl_path {
	u64 inum;
	u32 remaining; /* links still to make */
	char *path;
	struct hl_path *next;
};

struct ext {
	struct bkfs_fs *fs;
	const char *prefix;
	struct bkfs_extract_stats *st;
	char *path;
	size_t plen, pcap;
	u8 *wbuf, *kbuf;
	size_t kbuf_cap;
	struct hl_path **hl;
	size_t hl_nb, hl_n;
	unsigned depth;
};

static void report(struct ext *ex, const char *what, const char *reason)
{
	fprintf(stderr, "%s: %s: %s%s%s\n", ex->prefix, ex->path, what ? what : "", what ? ": " : "", reason);
	ex->st->errors++;
}

static int path_push(struct ext *ex, const char *name, size_t n)
{
	if (darray_room(ex->path, ex->pcap, ex->plen + n + 2, 256))
		return -BKFS_E_NOMEM;
	ex->path[ex->plen++] = '/';
	memcpy(ex->path + ex->plen, name, n);
	ex->plen += n;
	ex->path[ex->plen] = 0;
	return 0;
}

/* ---- hard links: inum -> first extracted path ---- */

static struct hl_path **hl_find(struct ext *ex, u64 inum)
{
	if (!ex->hl_nb)
		return NULL;
	struct hl_path **pp = &ex->hl[(inum * 0x9E3779B97F4A7C15ull >> 16) % ex->hl_nb];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->inum == inum)
			return pp;
	return NULL;
}

static int hl_add(struct ext *ex, u64 inum, u32 remaining)
{
	if (ex->hl_n >= ex->hl_nb) {
		size_t nb = ex->hl_nb ? ex->hl_nb * 2 : 1024;
		struct hl_path **n = calloc(nb, sizeof(*n));
		if (!n)
			return -BKFS_E_NOMEM;
		for (size_t i = 0; i < ex->hl_nb; i++)
			for (struct hl_path *e = ex->hl[i], *next; e; e = next) {
				next = e->next;
				size_t s = (e->inum * 0x9E3779B97F4A7C15ull >> 16) % nb;
				e->next = n[s];
				n[s] = e;
			}
		free(ex->hl);
		ex->hl = n;
		ex->hl_nb = nb;
	}
	struct hl_path *e = malloc(sizeof(*e));
	char *p = strdup(ex->path);
	if (!e || !p) {
		free(e);
		free(p);
		return -BKFS_E_NOMEM;
	}
	*e = (struct hl_path){ .inum = inum, .remaining = remaining, .path = p };
	size_t s = (inum * 0x9E3779B97F4A7C15ull >> 16) % ex->hl_nb;
	e->next = ex->hl[s];
	ex->hl[s] = e;
	ex->hl_n++;
	return 0;
}

/* ---- metadata ---- */

struct xattr_ctx {
	struct ext *ex;
	int fd;
};

static int restore_xattr(void *arg, const char *name, size_t name_len, const void *val, size_t val_len)
{
	struct xattr_ctx *c = arg;
	char n[256];
	memcpy(n, name, name_len);
	n[name_len] = 0;
	int r = c->fd >= 0 ? fsetxattr(c->fd, n, val, val_len, 0) : lsetxattr(c->ex->path, n, val, val_len, 0);
	if (r) {
		char what[300];
		snprintf(what, sizeof(what), "xattr %s", n);
		report(c->ex, what, strerror(errno));
	} else {
		c->ex->st->xattrs++;
	}
	return 0;
}

/* xattrs, owner, mode (not for symlinks), times. fd >= 0 if open. */
static int apply_meta(struct ext *ex, int fd, u64 inum, const struct bkfs_inode *in)
{
	struct xattr_ctx c = { ex, fd };
	bool lnk = S_ISLNK(in->mode);
	int ret = bkfs_xattr_for_each(ex->fs, inum, restore_xattr, &c);
	if (ret) {
		report(ex, "reading xattrs", bkfs_strerror(ret));
		if (ret == -BKFS_E_NOMEM)
			return ret;
	}
	int r = fd >= 0 ? fchown(fd, in->uid, in->gid) : lchown(ex->path, in->uid, in->gid);
	if (r && errno != EPERM)
		report(ex, "chown", strerror(errno));
	if (!lnk) {
		r = fd >= 0 ? fchmod(fd, in->mode & 07777) : chmod(ex->path, in->mode & 07777);
		if (r)
			report(ex, "chmod", strerror(errno));
	}
	struct timespec ts[2];
	ns_to_timespec(in->atime_ns, &ts[0]);
	ns_to_timespec(in->mtime_ns, &ts[1]);
	r = fd >= 0 ? futimens(fd, ts) : utimensat(AT_FDCWD, ex->path, ts, AT_SYMLINK_NOFOLLOW);
	if (r)
		report(ex, "setting times", strerror(errno));
	return 0;
}

/* ---- file data ---- */

static int flush_wbuf(struct ext *ex, int fd, u64 start, size_t len, bool *failed)
{
	size_t done = 0;
	while (done < len) {
		ssize_t w = pwrite(fd, ex->wbuf + done, len - done, start + done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!*failed)
				report(ex, "write", strerror(w < 0 ? errno : EIO));
			*failed = true;
			return 0;
		}
		done += w;
	}
	ex->st->bytes += len;
	return 0;
}

static int extract_data(struct ext *ex, int fd, u64 inum, u64 size)
{
	struct bkfs_fs *fs = ex->fs;
	struct btree_iter it;
	struct bkey *k;
	struct bkey_buf kb;
	u64 wstart = 0;
	size_t wlen = 0;
	bool write_failed = false;
	int ret;

	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, 1));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum) {
		memcpy(&kb, k, bkey_bytes(k));
		it.pos = bpos_successor(kb.k.p);
		u64 ks = bkey_start_pos(&kb.k).offset << SECTOR_SHIFT;
		size_t kbytes = (size_t)kb.k.size << SECTOR_SHIFT;
		if (ks >= size)
			break;
		if (kb.k.type == KEY_TYPE_reservation)
			continue; /* reads as zeros: a hole */
		if (kb.k.type != KEY_TYPE_extent && kb.k.type != KEY_TYPE_inline_data &&
		    kb.k.type != KEY_TYPE_reflink_p) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s at offset %llu (left as a hole)",
				 kb.k.type == KEY_TYPE_error ? "data marked lost" : "unsupported extent type",
				 (unsigned long long)ks);
			report(ex, "read", msg);
			continue;
		}
		if (kbytes > ex->kbuf_cap) {
			u8 *n = realloc(ex->kbuf, kbytes);
			if (!n)
				return -BKFS_E_NOMEM;
			ex->kbuf = n;
			ex->kbuf_cap = kbytes;
		}
		ret = extent_read_key(fs, &kb.k, ex->kbuf);
		if (ret) {
			if (ret == -BKFS_E_NOMEM)
				return ret;
			char msg[160];
			snprintf(msg, sizeof(msg), "%s at offset %llu (%zu bytes left as a hole)",
				 bkfs_strerror(ret), (unsigned long long)ks, kbytes);
			report(ex, "read error", msg);
			ret = 0;
			continue;
		}
		size_t len = MIN((u64)kbytes, size - ks);
		for (size_t off = 0; off < len;) {
			if (wlen && (wstart + wlen != ks + off || wlen == WBUF_SIZE)) {
				flush_wbuf(ex, fd, wstart, wlen, &write_failed);
				wlen = 0;
			}
			if (!wlen)
				wstart = ks + off;
			size_t n = MIN(len - off, (size_t)WBUF_SIZE - wlen);
			memcpy(ex->wbuf + wlen, ex->kbuf + off, n);
			wlen += n;
			off += n;
		}
	}
	if (ret) {
		report(ex, "reading extents", bkfs_strerror(ret));
		ret = 0;
	}
	if (wlen)
		flush_wbuf(ex, fd, wstart, wlen, &write_failed);
	/* wstart + wlen is now the end of the data written: a hole up to the
	 * size needs ftruncate */
	if (wstart + wlen < size && ftruncate(fd, size))
		report(ex, "truncate", strerror(errno));
	return 0;
}

/* ---- the walk ---- */

static int extract_dir(struct ext *ex, u64 dir);

static int extract_obj(struct ext *ex, u64 inum, const struct bkfs_inode *in)
{
	int ret = 0;
	u32 type = in->mode & S_IFMT;

	if (type != S_IFDIR && in->nlink > 1) {
		struct hl_path **pp = hl_find(ex, inum);
		if (pp) {
			struct hl_path *e = *pp;
			if (link(e->path, ex->path))
				report(ex, "link", strerror(errno));
			else
				ex->st->hardlinks++;
			if (!--e->remaining) {
				*pp = e->next;
				free(e->path);
				free(e);
				ex->hl_n--;
			}
			return 0;
		}
	}

	switch (type) {
	case S_IFREG: {
		int fd = open(ex->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			report(ex, "create", strerror(errno));
			return 0;
		}
		ret = extract_data(ex, fd, inum, in->size);
		if (!ret)
			ret = apply_meta(ex, fd, inum, in);
		if (close(fd))
			report(ex, "close", strerror(errno));
		ex->st->files++;
		break;
	}
	case S_IFDIR:
		if (mkdir(ex->path, 0700)) {
			report(ex, "mkdir", strerror(errno));
			return 0;
		}
		ex->st->dirs++;
		if (ex->depth >= MAX_DEPTH) {
			report(ex, NULL, "directories nested too deeply (loop?): contents skipped");
		} else {
			ex->depth++;
			ret = extract_dir(ex, inum);
			ex->depth--;
		}
		if (!ret)
			ret = apply_meta(ex, -1, inum, in);
		break;
	case S_IFLNK: {
		char target[4096];
		if (!in->size || in->size >= sizeof(target)) {
			report(ex, "symlink", "bad target length");
			return 0;
		}
		ret = extent_read(ex->fs, inum, 0, target, in->size);
		if (ret) {
			report(ex, "reading symlink target", bkfs_strerror(ret));
			return ret == -BKFS_E_NOMEM ? ret : 0;
		}
		target[in->size] = 0;
		if (strlen(target) != in->size) {
			report(ex, "symlink", "NUL in target");
			return 0;
		}
		if (symlink(target, ex->path)) {
			report(ex, "symlink", strerror(errno));
			return 0;
		}
		ex->st->symlinks++;
		ret = apply_meta(ex, -1, inum, in);
		break;
	}
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
	case S_IFSOCK:
		if (mknod(ex->path, type | 0600, (type == S_IFCHR || type == S_IFBLK) ? in->rdev : 0)) {
			report(ex, "mknod", strerror(errno));
			return 0;
		}
		ex->st->specials++;
		ret = apply_meta(ex, -1, inum, in);
		break;
	default:
		report(ex, NULL, "unknown file type");
		return 0;
	}
	if (!ret && type != S_IFDIR && in->nlink > 1)
		ret = hl_add(ex, inum, in->nlink - 1);
	return ret;
}

static int extract_dir(struct ext *ex, u64 dir)
{
	struct btree_iter it;
	struct bkey *k;
	struct bkey_buf kb;
	size_t plen = ex->plen;
	int ret;

	btree_iter_init(&it, ex->fs, BTREE_ID_dirents, 0, POS(dir, 0));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == dir) {
		memcpy(&kb, k, bkey_bytes(k));
		it.pos = bpos_successor(kb.k.p);
		const struct bkfs_dirent *de = bkey_val(&kb.k);
		if (kb.k.type != KEY_TYPE_dirent || bkey_val_bytes(&kb.k) < sizeof(*de) ||
		    de->name_len > bkey_val_bytes(&kb.k) - sizeof(*de) ||
		    bkfs_name_check((const char *)de->name, de->name_len)) {
			char msg[96];
			snprintf(msg, sizeof(msg), "bad directory entry at slot %llu skipped",
				 (unsigned long long)kb.k.p.offset);
			report(ex, NULL, msg);
			continue;
		}
		if ((ret = path_push(ex, (const char *)de->name, de->name_len)))
			return ret;
		struct bkfs_inode in;
		ret = bkfs_inode_find(ex->fs, de->inum, &in);
		if (ret) {
			char msg[96];
			snprintf(msg, sizeof(msg), "inode %llu: %s", (unsigned long long)de->inum, bkfs_strerror(ret));
			report(ex, NULL, msg);
			ret = ret == -BKFS_E_NOMEM ? ret : 0;
		} else {
			ret = extract_obj(ex, de->inum, &in);
		}
		ex->plen = plen;
		ex->path[plen] = 0;
		if (ret)
			return ret;
		/* read-only: no checkpoint ever trims the node cache, so do it
		 * here, where no key pointer is held (iterators re-descend) */
		if (ex->fs->nr_nodes - ex->fs->nr_dirty > ex->fs->max_clean)
			btree_cache_shrink(ex->fs);
	}
	if (ret) {
		report(ex, "reading directory", bkfs_strerror(ret));
		ret = ret == -BKFS_E_NOMEM ? ret : 0;
	}
	return ret;
}

static int check_dst(const char *dst, const char *prefix)
{
	struct stat st;
	if (stat(dst, &st)) {
		if (errno != ENOENT) {
			fprintf(stderr, "%s: %s: %s\n", prefix, dst, strerror(errno));
			return -BKFS_E_INVAL;
		}
		if (mkdir(dst, 0700)) {
			fprintf(stderr, "%s: cannot create %s: %s\n", prefix, dst, strerror(errno));
			return -BKFS_E_INVAL;
		}
		return 0;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: %s exists and is not a directory\n", prefix, dst);
		return -BKFS_E_INVAL;
	}
	DIR *d = opendir(dst);
	if (!d) {
		fprintf(stderr, "%s: %s: %s\n", prefix, dst, strerror(errno));
		return -BKFS_E_INVAL;
	}
	struct dirent *de;
	bool empty = true;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			empty = false;
			break;
		}
	closedir(d);
	if (!empty) {
		fprintf(stderr, "%s: %s is not empty\n", prefix, dst);
		return -BKFS_E_NOTEMPTY;
	}
	return 0;
}

int bkfs_extract(struct bkfs_fs *fs, const char *dst, const char *prefix, struct bkfs_extract_stats *stats)
{
	struct ext ex = { .fs = fs, .prefix = prefix ? prefix : "bkfs", .st = stats };
	struct bkfs_inode root;
	int ret;

	memset(stats, 0, sizeof(*stats));
	if ((ret = check_dst(dst, ex.prefix)))
		return ret;
	ex.pcap = strlen(dst) + 256;
	ex.path = malloc(ex.pcap);
	ex.wbuf = malloc(WBUF_SIZE);
	ex.kbuf_cap = (size_t)EXTENT_MAX_SECTORS << SECTOR_SHIFT;
	ex.kbuf = malloc(ex.kbuf_cap);
	if (!ex.path || !ex.wbuf || !ex.kbuf) {
		ret = -BKFS_E_NOMEM;
		goto out;
	}
	strcpy(ex.path, dst);
	ex.plen = strlen(dst);
	while (ex.plen > 1 && ex.path[ex.plen - 1] == '/')
		ex.path[--ex.plen] = 0;

	fs->max_clean = MIN(fs->max_clean, MAX((size_t)64, (size_t)EXTRACT_CACHE / fs->node_bytes));
	ret = bkfs_inode_find(fs, BKFS_ROOT_INO, &root);
	if (ret) {
		fprintf(stderr, "%s: root directory: %s\n", ex.prefix, bkfs_strerror(ret));
		goto out;
	}
	if ((ret = extract_dir(&ex, BKFS_ROOT_INO)))
		goto out;
	ret = apply_meta(&ex, -1, BKFS_ROOT_INO, &root);
out:
	for (size_t i = 0; i < ex.hl_nb; i++)
		for (struct hl_path *e = ex.hl[i], *next; e; e = next) {
			next = e->next;
			free(e->path);
			free(e);
		}
	free(ex.hl);
	free(ex.path);
	free(ex.wbuf);
	free(ex.kbuf);
	return ret;
}
