/* posix_ext.c - rename, attribute changes, committed xattr changes and sync
 * (see posix_ext.h). Built on the helpers of fs.h; used by the FUSE adapter. */
#include "posix_ext.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../format/inode_format.h"
#include "../btree/iter.h"
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
 * bounded transaction) and nobody has it open. Otherwise it stays with
 * nlink 0 and an entry in the orphans btree, written in that transaction:
 * an open one until its last close, a large one while its data is removed
 * in bounded transactions; the last transaction removes the inode and its
 * entry together. A crash at any point leaves a consistent filesystem: at
 * worst orphans, which bkfs_reap_orphans() finishes. */
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

static int orphan_add(struct trans *t, u64 inum)
{
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_orphan, POS(0, inum), 0);
	return trans_update(t, BTREE_ID_orphans, &kb.k);
}

/* In t: inum loses its last link. Either it goes now (*orphaned = false),
 * or it stays with nlink 0 on the orphan list (*orphaned = true; the caller
 * writes *in): always when keep (it is open), and when its data is large. */
static int drop_inode(struct trans *t, u64 inum, struct bkfs_inode *in, bool keep, bool *orphaned)
{
	int ret = S_ISDIR(in->mode) ? 1 : keep ? 0 : data_small(t->fs, inum);
	*orphaned = false;
	if (ret < 0)
		return ret;
	if (ret)
		return bkfs_inode_remove(t, inum);
	*orphaned = true;
	in->nlink = 0;
	return orphan_add(t, inum);
}

int bkfs_orphan_release(struct bkfs_fs *fs, u64 inum)
{
	struct trans t;
	struct bkfs_inode in;
	int ret = btree_lookup(fs, BTREE_ID_orphans, POS(0, inum), NULL);
	if (ret)
		return ret == -BKFS_E_NOENT ? 0 : ret;
	ret = bkfs_inode_find(fs, inum, &in);
	if (!ret && !in.nlink)
		ret = bkfs_punch(fs, inum, 0, UINT64_MAX);
	if (ret && ret != -BKFS_E_NOENT)
		return ret;
	/* an inode that has links again (or is gone) only loses its entry */
	bool remove = !ret && !in.nlink;
	trans_init(&t, fs);
	if (!(ret = remove ? bkfs_inode_remove(&t, inum) : 0) &&
	    !(ret = trans_delete(&t, BTREE_ID_orphans, POS(0, inum))))
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return ret;
}

int bkfs_reap_orphans(struct bkfs_fs *fs, unsigned *nr)
{
	struct btree_iter it;
	struct bkey *k;
	u64 *v = NULL;
	size_t n = 0, cap = 0;
	int ret;
	if (nr)
		*nr = 0;
	btree_iter_init(&it, fs, BTREE_ID_orphans, 0, POS_MIN);
	while (!(ret = btree_iter_peek(&it, &k)) && k) {
		if (darray_room(v, cap, n + 1, 16)) {
			ret = -BKFS_E_NOMEM;
			break;
		}
		v[n++] = k->p.offset;
		it.pos = bpos_successor(k->p);
	}
	for (size_t i = 0; !ret && i < n; i++)
		if (!(ret = bkfs_orphan_release(fs, v[i])) && nr)
			(*nr)++;
	free(v);
	return ret;
}

/* In t: a whiteout (character device 0:0, owned by wo) in place of the
 * dirent at oslot of dir (the same name: the hash chain does not change). */
static int whiteout_at(struct trans *t, u64 dir, u64 oslot, const char *name, size_t len,
		       const struct bkfs_whiteout *wo, u64 now)
{
	struct bkfs_inode in;
	u64 inum;
	int ret = bkfs_inum_alloc(t, true, &inum);
	if (ret)
		return ret;
	bkfs_inode_init(&in, S_IFCHR, wo->uid, wo->gid, 0, now);
	in.parent = dir;
	struct inode_names nm;
	inode_names_one(&nm, dir, name, len);
	if ((ret = bkfs_inode_write_named(t, inum, &in, &nm)))
		return ret;
	return dirent_set_at(t, dir, oslot, name, len, inum, DT_CHR);
}

int bkfs_rename(struct bkfs_fs *fs, u64 odir, const char *oname, u64 ndir, const char *nname, unsigned flags)
{
	return bkfs_rename_whiteout(fs, odir, oname, ndir, nname, flags, NULL);
}

int bkfs_rename_whiteout(struct bkfs_fs *fs, u64 odir, const char *oname, u64 ndir, const char *nname,
			 unsigned flags, const struct bkfs_whiteout *wo)
{
	size_t olen = strlen(oname), nlen = strlen(nname);
	struct trans t;
	struct bkfs_inode od, ndb, *nd, src, tgt;
	u64 inum, tinum = 0, oslot, nslot = 0, now = bkfs_now_ns();
	unsigned dtype, tdtype = 0;
	bool exchange = flags & BKFS_RENAME_EXCHANGE, have_tgt, tgt_gone = false, tgt_orphaned = false;
	int ret;

	if ((flags & ~(BKFS_RENAME_NOREPLACE | BKFS_RENAME_EXCHANGE | BKFS_RENAME_ORPHAN)) ||
	    ((flags & BKFS_RENAME_NOREPLACE) && exchange) || (wo && exchange))
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
		if (ret)
			goto out;
		ret = wo ? whiteout_at(&t, odir, oslot, oname, olen, wo, now) :
			   bkfs_dirent_remove(&t, odir, oname, olen, NULL, NULL);
		if (ret)
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
			else if ((ret = drop_inode(&t, tinum, &tgt, flags & BKFS_RENAME_ORPHAN, &tgt_orphaned)))
				goto out;
			else
				tgt_gone = !tgt_orphaned;
		}
	}
	src.ctime_ns = now;
	od.mtime_ns = od.ctime_ns = now;
	nd->mtime_ns = nd->ctime_ns = now;
	if ((ret = bkfs_inode_write(&t, odir, &od)) ||
	    (nd != &od && (ret = bkfs_inode_write(&t, ndir, nd))) ||
	    (ret = bkfs_inode_name_moved(&t, inum, &src, odir, oname, olen, ndir, nname, nlen)) ||
	    (have_tgt && !tgt_gone &&
	     (ret = exchange ? bkfs_inode_name_moved(&t, tinum, &tgt, ndir, nname, nlen, odir, oname, olen) :
			       bkfs_inode_name_dropped(&t, tinum, &tgt, ndir, nname, nlen))) ||
	    (ret = trans_commit(&t, 0)))
		goto out;
	if (tgt_orphaned && !(flags & BKFS_RENAME_ORPHAN))
		ret = bkfs_orphan_release(fs, tinum);
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
	struct inode_names nm;
	int ret;
	trans_init(&t, fs);
	if ((ret = bkfs_inode_get_named(&t, inum, &in, &nm)))
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
	if ((ret = bkfs_inode_write_named(&t, inum, &in, &nm)) || (ret = trans_commit(&t, 0)))
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
	bool rmdir = flags & BKFS_REMOVE_DIR, orphaned = false, gone = false;
	struct trans t;
	struct bkfs_inode d, in;
	u64 inum, now = bkfs_now_ns();
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
	else if ((ret = drop_inode(&t, inum, &in, flags & BKFS_REMOVE_ORPHAN, &orphaned)))
		goto out;
	else
		gone = !orphaned;
	if (!(flags & BKFS_REMOVE_KEEP_TIMES))
		d.mtime_ns = d.ctime_ns = now;
	if ((ret = bkfs_inode_write(&t, dir, &d)) ||
	    (!gone && (ret = bkfs_inode_name_dropped(&t, inum, &in, dir, name, len))) ||
	    (ret = trans_commit(&t, 0)))
		goto out;
	if (orphaned && !(flags & BKFS_REMOVE_ORPHAN))
		ret = bkfs_orphan_release(fs, inum);
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
	if (darray_room(l->names, l->cap, l->nr + 1, 16))
		return -BKFS_E_NOMEM;
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
