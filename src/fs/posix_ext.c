/* posix_ext.c - rename, attribute changes, committed xattr changes and sync
 * (see posix_ext.h). Built on the helpers of fs.h; used by the FUSE adapter. */
#include "posix_ext.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Write the dirent name -> inum at a known slot of dir (replaces what is
 * there; the name is the same, so the hash chain does not change). */
static int dirent_set_at(struct trans *t, u64 dir, u64 slot, const char *name, size_t len, u64 inum,
			 unsigned d_type)
{
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_dirent, POS(dir, slot), sizeof(struct bkfs_dirent) + len);
	struct bkfs_dirent *de = bkey_val(&kb.k);
	de->inum = inum;
	de->d_type = d_type;
	de->name_len = len;
	memcpy(de->name, name, len);
	return trans_update(t, BTREE_ID_dirents, &kb.k);
}

/* 1 if dir is anc or lies below it (following parent fields), 0 if not. */
static int dir_is_below(struct trans *t, u64 dir, u64 anc)
{
	for (unsigned i = 0; i < (1u << 16); i++) {
		if (dir == anc)
			return 1;
		if (dir == BKFS_ROOT_INO)
			return 0;
		struct bkfs_inode in;
		int ret = bkfs_inode_get(t, dir, &in);
		if (ret)
			return ret;
		if (!in.parent || in.parent == dir)
			return 0;
		dir = in.parent;
	}
	return -BKFS_E_CORRUPT; /* a parent loop */
}

static void dir_nlink_dec(struct bkfs_inode *d)
{
	if (d->nlink > 2)
		d->nlink--;
}

/* ---- removing inodes without an unreachable moment ----
 *
 * An inode that loses its last link goes in the same transaction as its
 * name when its data is small (at most SMALL_EXTENTS extent keys: one
 * bounded transaction). A larger one gets a hidden name in the root in that
 * transaction instead; its data is then removed in bounded transactions
 * while it is still reachable, and the last transaction removes the hidden
 * name and the inode together. A crash at any point leaves a consistent
 * filesystem: at worst a hidden file, which bkfs_reap_hidden() finishes. */
#define SMALL_EXTENTS 32

/* 1 if inum has at most SMALL_EXTENTS extent keys (committed state) */
static int data_small(struct bkfs_fs *fs, u64 inum)
{
	struct btree_iter it;
	struct bkey *k;
	unsigned n = 0;
	int ret;
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, 0));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum) {
		if (++n > SMALL_EXTENTS)
			return 0;
		it.pos = bpos_successor(k->p);
	}
	return ret ? ret : 1;
}

/* In t: a hidden name in the root for inum (name receives it). */
static int hide_in(struct trans *t, u64 inum, unsigned d_type, char *name, size_t size)
{
	int ret = -BKFS_E_EXIST;
	for (unsigned n = 0; ret == -BKFS_E_EXIST && n < 1000; n++) {
		snprintf(name, size, BKFS_HIDDEN_PREFIX "%llu.%u", (unsigned long long)inum, n);
		ret = bkfs_dirent_add(t, BKFS_ROOT_INO, name, strlen(name), inum, d_type);
	}
	return ret;
}

/* In t: inum loses its last link. Either it goes now (*hidden = false), or
 * it got the hidden name hname (*hidden = true: finish with reap()). */
static int drop_inode(struct trans *t, u64 inum, const struct bkfs_inode *in, char *hname, size_t size,
		      bool *hidden)
{
	int ret = S_ISDIR(in->mode) ? 1 : data_small(t->fs, inum);
	*hidden = false;
	if (ret < 0)
		return ret;
	if (ret)
		return bkfs_inode_remove(t, inum);
	*hidden = true;
	return hide_in(t, inum, bkfs_mode_to_dtype(in->mode), hname, size);
}

/* Remove the data of a hidden inode in bounded transactions, then its name
 * and the inode in one. */
static int reap(struct bkfs_fs *fs, const char *hname, u64 inum)
{
	struct trans t;
	int ret = bkfs_punch(fs, inum, 0, UINT64_MAX);
	if (ret)
		return ret;
	trans_init(&t, fs);
	if (!(ret = bkfs_dirent_remove(&t, BKFS_ROOT_INO, hname, strlen(hname), NULL, NULL)) &&
	    !(ret = bkfs_inode_remove(&t, inum)))
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return ret;
}

int bkfs_rename(struct bkfs_fs *fs, u64 odir, const char *oname, u64 ndir, const char *nname, unsigned flags)
{
	size_t olen = strlen(oname), nlen = strlen(nname);
	struct trans t;
	struct bkfs_inode od, ndb, *nd, src, tgt;
	u64 inum, tinum = 0, oslot, nslot = 0, now = bkfs_now_ns();
	unsigned dtype, tdtype = 0;
	bool exchange = flags & BKFS_RENAME_EXCHANGE, have_tgt, tgt_gone = false, tgt_hidden = false;
	char hname[64];
	int ret;

	if ((flags & ~(BKFS_RENAME_NOREPLACE | BKFS_RENAME_EXCHANGE)) ||
	    ((flags & BKFS_RENAME_NOREPLACE) && exchange))
		return -BKFS_E_INVAL;
	if ((ret = bkfs_name_check(oname, olen)) || (ret = bkfs_name_check(nname, nlen)))
		return ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, odir, &od)))
		goto out;
	nd = &od;
	if (ndir != odir) {
		if ((ret = bkfs_inode_get(&t, ndir, &ndb)))
			goto out;
		nd = &ndb;
	}
	if (!S_ISDIR(od.mode) || !S_ISDIR(nd->mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if ((ret = bkfs_dirent_lookup(&t, odir, oname, olen, &inum, &dtype, &oslot)) ||
	    (ret = bkfs_inode_get(&t, inum, &src)))
		goto out;
	ret = bkfs_dirent_lookup(&t, ndir, nname, nlen, &tinum, &tdtype, &nslot);
	if (ret && ret != -BKFS_E_NOENT)
		goto out;
	have_tgt = !ret;
	ret = 0;
	if (have_tgt && (flags & BKFS_RENAME_NOREPLACE)) {
		ret = -BKFS_E_EXIST;
		goto out;
	}
	if (!have_tgt && exchange) {
		ret = -BKFS_E_NOENT;
		goto out;
	}
	if (have_tgt && tinum == inum)
		goto out; /* two links of one inode (or the same name): nothing to do */
	if (have_tgt && (ret = bkfs_inode_get(&t, tinum, &tgt)))
		goto out;
	bool sdir = S_ISDIR(src.mode), tdir = have_tgt && S_ISDIR(tgt.mode);
	if (have_tgt && !exchange) {
		if (sdir && !tdir) {
			ret = -BKFS_E_NOTDIR;
			goto out;
		}
		if (!sdir && tdir) {
			ret = -BKFS_E_ISDIR;
			goto out;
		}
		if (tdir) {
			if ((ret = bkfs_dir_empty(&t, tinum)) < 0)
				goto out;
			if (!ret) {
				ret = -BKFS_E_NOTEMPTY;
				goto out;
			}
			ret = 0;
		}
	}
	if (odir != ndir) {
		/* a directory may not end up below itself */
		if (sdir && (ret = dir_is_below(&t, ndir, inum)))
			goto loop;
		if (exchange && tdir && (ret = dir_is_below(&t, odir, tinum)))
			goto loop;
	}

	if (exchange) {
		if ((ret = dirent_set_at(&t, odir, oslot, oname, olen, tinum, tdtype)) ||
		    (ret = dirent_set_at(&t, ndir, nslot, nname, nlen, inum, dtype)))
			goto out;
		if (odir != ndir) {
			if (sdir) {
				dir_nlink_dec(&od);
				nd->nlink++;
				src.parent = ndir;
			}
			if (tdir) {
				dir_nlink_dec(nd);
				od.nlink++;
				tgt.parent = odir;
			}
		}
		tgt.ctime_ns = now;
	} else {
		if (have_tgt)
			ret = dirent_set_at(&t, ndir, nslot, nname, nlen, inum, dtype);
		else
			ret = bkfs_dirent_add(&t, ndir, nname, nlen, inum, dtype);
		if (ret || (ret = bkfs_dirent_remove(&t, odir, oname, olen, NULL, NULL)))
			goto out;
		if (sdir && odir != ndir) {
			dir_nlink_dec(&od);
			nd->nlink++;
			src.parent = ndir;
		}
		if (tdir)
			dir_nlink_dec(nd); /* the replaced subdirectory */
		if (have_tgt) {
			tgt.ctime_ns = now;
			if (!tdir && tgt.nlink > 1)
				tgt.nlink--;
			else if ((ret = drop_inode(&t, tinum, &tgt, hname, sizeof(hname), &tgt_hidden)))
				goto out;
			else
				tgt_gone = !tgt_hidden;
		}
	}
	src.ctime_ns = now;
	od.mtime_ns = od.ctime_ns = now;
	nd->mtime_ns = nd->ctime_ns = now;
	if ((ret = bkfs_inode_write(&t, odir, &od)) ||
	    (nd != &od && (ret = bkfs_inode_write(&t, ndir, nd))) ||
	    (ret = bkfs_inode_write(&t, inum, &src)) ||
	    (have_tgt && !tgt_gone && (ret = bkfs_inode_write(&t, tinum, &tgt))) ||
	    (ret = trans_commit(&t, 0)))
		goto out;
	if (tgt_hidden)
		ret = reap(fs, hname, tinum);
	goto out;
loop:
	if (ret > 0)
		ret = -BKFS_E_INVAL;
out:
	trans_exit(&t);
	return ret;
}

int bkfs_setattr(struct bkfs_fs *fs, u64 inum, const struct bkfs_attr_change *c, struct bkfs_inode *out)
{
	struct trans t;
	struct bkfs_inode in;
	int ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, inum, &in)))
		goto out;
	if (c->mask & BKFS_ATTR_MODE)
		in.mode = (in.mode & S_IFMT) | (c->mode & 07777);
	if (c->mask & BKFS_ATTR_UID)
		in.uid = c->uid;
	if (c->mask & BKFS_ATTR_GID)
		in.gid = c->gid;
	if (c->mask & BKFS_ATTR_ATIME)
		in.atime_ns = c->atime_ns;
	if (c->mask & BKFS_ATTR_MTIME)
		in.mtime_ns = c->mtime_ns;
	in.ctime_ns = c->mask & BKFS_ATTR_CTIME ? c->ctime_ns : bkfs_now_ns();
	if ((ret = bkfs_inode_write(&t, inum, &in)) || (ret = trans_commit(&t, 0)))
		goto out;
	if (out)
		*out = in;
out:
	trans_exit(&t);
	return ret;
}

int bkfs_getxattr(struct bkfs_fs *fs, u64 inum, const char *name, void *buf, size_t size)
{
	struct trans t;
	trans_init(&t, fs);
	int ret = bkfs_xattr_get(&t, inum, name, buf, size);
	trans_exit(&t);
	return ret;
}

/* set (val != NULL) or remove an xattr, and touch ctime, in one transaction */
static int xattr_change(struct bkfs_fs *fs, u64 inum, const char *name, const void *val, size_t len, int flags,
			bool remove)
{
	struct trans t;
	struct bkfs_inode in;
	int ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, inum, &in)))
		goto out;
	ret = remove ? bkfs_xattr_remove(&t, inum, name) : bkfs_xattr_set(&t, inum, name, val, len, flags);
	if (ret)
		goto out;
	in.ctime_ns = bkfs_now_ns();
	if (!(ret = bkfs_inode_write(&t, inum, &in)))
		ret = trans_commit(&t, 0);
out:
	trans_exit(&t);
	return ret;
}

int bkfs_setxattr(struct bkfs_fs *fs, u64 inum, const char *name, const void *val, size_t len, int flags)
{
	return xattr_change(fs, inum, name, val, len, flags, false);
}

int bkfs_removexattr(struct bkfs_fs *fs, u64 inum, const char *name)
{
	return xattr_change(fs, inum, name, NULL, 0, 0, true);
}

int bkfs_sync(struct bkfs_fs *fs)
{
	return journal_flush(fs);
}

int bkfs_remove(struct bkfs_fs *fs, u64 dir, const char *name, unsigned flags)
{
	size_t len = strlen(name);
	bool rmdir = flags & BKFS_REMOVE_DIR, hidden = false, gone = false;
	struct trans t;
	struct bkfs_inode d, in;
	u64 inum, now = bkfs_now_ns();
	char hname[64];
	int ret;
	if ((ret = bkfs_name_check(name, len)))
		return ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get(&t, dir, &d)))
		goto out;
	if (!S_ISDIR(d.mode)) {
		ret = -BKFS_E_NOTDIR;
		goto out;
	}
	if ((ret = bkfs_dirent_lookup(&t, dir, name, len, &inum, NULL, NULL)) ||
	    (ret = bkfs_inode_get(&t, inum, &in)))
		goto out;
	if (rmdir != !!S_ISDIR(in.mode)) {
		ret = rmdir ? -BKFS_E_NOTDIR : -BKFS_E_ISDIR;
		goto out;
	}
	if (rmdir) {
		if ((ret = bkfs_dir_empty(&t, inum)) < 0)
			goto out;
		if (!ret) {
			ret = -BKFS_E_NOTEMPTY;
			goto out;
		}
		dir_nlink_dec(&d);
	}
	if ((ret = bkfs_dirent_remove(&t, dir, name, len, NULL, NULL)))
		goto out;
	in.ctime_ns = now;
	if (!rmdir && in.nlink > 1)
		in.nlink--;
	else if ((ret = drop_inode(&t, inum, &in, hname, sizeof(hname), &hidden)))
		goto out;
	else
		gone = !hidden;
	if (!(flags & BKFS_REMOVE_KEEP_TIMES))
		d.mtime_ns = d.ctime_ns = now;
	if ((ret = bkfs_inode_write(&t, dir, &d)) || (!gone && (ret = bkfs_inode_write(&t, inum, &in))) ||
	    (ret = trans_commit(&t, 0)))
		goto out;
	if (hidden)
		ret = reap(fs, hname, inum);
out:
	trans_exit(&t);
	return ret;
}

struct hidden_list {
	char (*names)[BKFS_NAME_MAX + 1];
	size_t nr, cap;
	int err;
};

static int collect_hidden(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot)
{
	struct hidden_list *l = arg;
	size_t plen = strlen(BKFS_HIDDEN_PREFIX);
	if (d_type == DT_DIR || len < plen || memcmp(name, BKFS_HIDDEN_PREFIX, plen))
		return 0;
	if (l->nr == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		void *n = realloc(l->names, cap * sizeof(*l->names));
		if (!n)
			return -BKFS_E_NOMEM;
		l->names = n;
		l->cap = cap;
	}
	memcpy(l->names[l->nr], name, len);
	l->names[l->nr++][len] = 0;
	return 0;
}

int bkfs_reap_hidden(struct bkfs_fs *fs, unsigned *nr)
{
	struct hidden_list l = { 0 };
	int ret = bkfs_readdir(fs, BKFS_ROOT_INO, 0, collect_hidden, &l);
	if (nr)
		*nr = 0;
	for (size_t i = 0; !ret && i < l.nr; i++) {
		ret = bkfs_remove(fs, BKFS_ROOT_INO, l.names[i], BKFS_REMOVE_KEEP_TIMES);
		if (!ret && nr)
			(*nr)++;
	}
	free(l.names);
	return ret;
}
