/* corrupt_fs.c - kinds that damage the filesystem's objects: inodes,
 * directory entries, xattrs and extents. Most run in a read-write session
 * (CORRUPT_FS) and damage through ordinary transactions, whose triggers keep
 * the derived state consistent; the invalid-key kinds edit one key in its
 * node instead. */
#include "corrupt_int.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <sys/stat.h>
#include <dirent.h>

int corrupt_dirent_missing_inode(struct corrupt_ctx *c)
{
	int ret;
	struct dent *d = pick_file(c, 0, "no regular file with a single link");
	if (!d)
		return NO_TARGET;
	file_text(c, d);
	pb_printf(&c->r->damaged, ": inode key deleted, its dirent kept");
	pb_printf(&c->r->lost, "the file (its data and xattrs are orphaned)");
	aff_inum(c, d->inum);
	if ((ret = compute_affects(c)))
		return ret;
	return commit_delete(c->fs, BTREE_ID_inodes, POS(0, d->inum));
}

int corrupt_unreachable_inode(struct corrupt_ctx *c)
{
	int ret;
	struct dent *d = pick_file(c, 0, "no regular file with a single link");
	if (!d)
		return NO_TARGET;
	file_text(c, d);
	pb_printf(&c->r->damaged, ": its only dirent (dir %llu slot %llu) deleted", (unsigned long long)d->dir,
		  (unsigned long long)d->slot);
	pb_printf(&c->r->lost, "none: the file goes back under the name its inode records (into lost+found if it records none)");
	aff_inum(c, d->inum);
	if ((ret = compute_affects(c)))
		return ret;
	return commit_dirent_remove(c->fs, d->dir, d->name);
}

enum inode_edit { IE_NLINK, IE_SIZE, IE_SECTORS };

static int inode_kind(struct corrupt_ctx *c, enum inode_edit e)
{
	int ret = 0;
	struct dent **v;
	size_t n = file_candidates(c, e == IE_SIZE ? 3 * c->fs->block_bytes + 1 : 0, &v), m = 0;
	u64 *ends = calloc(n ? n : 1, sizeof(u64));
	if (!ends) {
		free(v);
		return -BKFS_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct dinode *in = inode_find(c, v[i]->inum);
		if (e == IE_SECTORS && !in->v.sectors)
			continue;
		if (e == IE_SIZE) {
			/* end of the data in bytes: the last extent key */
			struct btree_iter it;
			struct bkey *k;
			u64 end = 0;
			btree_iter_init(&it, c->fs, BTREE_ID_extents, 0, POS(v[i]->inum, 0));
			while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == v[i]->inum) {
				if (k->type == KEY_TYPE_extent)
					end = k->p.offset << SECTOR_SHIFT;
				btree_iter_advance(&it);
			}
			if (ret)
				break;
			if (end < 3 * (u64)c->fs->block_bytes)
				continue;
			ends[m] = end;
		}
		v[m++] = v[i];
	}
	if (ret || !m) {
		free(v);
		free(ends);
		return ret ? ret : no_target(c, "no suitable regular file");
	}
	size_t sel = pick(c, m);
	struct dent *d = v[sel];
	u64 end = ends[sel];
	free(v);
	free(ends);
	struct bkey_buf kb;
	if ((ret = inode_lookup(c->fs, d->inum, &kb)))
		return ret;
	struct bkfs_inode *in = bkey_val(&kb.k);
	file_text(c, d);
	switch (e) {
	case IE_NLINK:
		pb_printf(&c->r->damaged, ": nlink %u -> %u", in->nlink, in->nlink + 1);
		pb_printf(&c->r->lost, "none");
		in->nlink++;
		break;
	case IE_SIZE: {
		u64 ns = end - 2 * (u64)c->fs->block_bytes - 1 - pick(c, c->fs->block_bytes);
		pb_printf(&c->r->damaged, ": i_size %llu -> %llu (its data ends at byte %llu)", (unsigned long long)in->size,
			  (unsigned long long)ns, (unsigned long long)end);
		pb_printf(&c->r->lost, "the file's size (content past the new size may change)");
		aff_inum(c, d->inum);
		in->size = ns;
		break;
	}
	case IE_SECTORS:
		pb_printf(&c->r->damaged, ": sectors %llu -> %llu", (unsigned long long)in->sectors,
			  (unsigned long long)(in->sectors + 8));
		pb_printf(&c->r->lost, "none");
		in->sectors += 8;
		break;
	}
	if ((ret = compute_affects(c)))
		return ret;
	return commit_one(c->fs, BTREE_ID_inodes, &kb.k);
}

int corrupt_link_count(struct corrupt_ctx *c) { return inode_kind(c, IE_NLINK); }
int corrupt_i_size(struct corrupt_ctx *c) { return inode_kind(c, IE_SIZE); }
int corrupt_i_sectors(struct corrupt_ctx *c) { return inode_kind(c, IE_SECTORS); }

/* directories other than the root, with their dirent */
static size_t dir_candidates(struct corrupt_ctx *c, bool need_subdir, bool need_nonroot_parent, struct dent ***out)
{
	struct dent **v = NULL;
	size_t n = 0, cap = 0;
	for (size_t i = 0; i < c->nr_dents; i++) {
		struct dent *d = &c->dents[i];
		if (d->d_type != DT_DIR || !is_dir(c, d->inum) || d->inum == BKFS_ROOT_INO)
			continue;
		if (need_nonroot_parent && d->dir == BKFS_ROOT_INO)
			continue;
		if (need_subdir) {
			bool has = false;
			for (size_t j = dents_of(c, d->inum); j < c->nr_dents && c->dents[j].dir == d->inum; j++)
				has |= c->dents[j].d_type == DT_DIR && is_dir(c, c->dents[j].inum);
			if (!has)
				continue;
		}
		if (darray_room(v, cap, n + 1, 64))
			break;
		v[n++] = d;
	}
	*out = v;
	return n;
}

/* A seeded directory of dir_candidates (NULL: none, after no_target(none)). */
static struct dent *pick_dir(struct corrupt_ctx *c, bool need_subdir, bool need_nonroot_parent, const char *none)
{
	struct dent **v;
	size_t n = dir_candidates(c, need_subdir, need_nonroot_parent, &v);
	struct dent *d = n ? v[pick(c, n)] : NULL;
	free(v);
	if (!d)
		no_target(c, "%s", none);
	return d;
}

int corrupt_dir_loop(struct corrupt_ctx *c)
{
	int ret;
	struct dent *a = pick_dir(c, true, false, "no directory with a subdirectory");
	if (!a)
		return NO_TARGET;
	/* B: a subdirectory of A */
	struct dent *subs[4096];
	size_t ns = 0;
	for (size_t j = dents_of(c, a->inum); j < c->nr_dents && c->dents[j].dir == a->inum && ns < 4096; j++)
		if (c->dents[j].d_type == DT_DIR && is_dir(c, c->dents[j].inum))
			subs[ns++] = &c->dents[j];
	struct dent *b = subs[pick(c, ns)];
	u64 pdir = a->dir;
	pb_printf(&c->r->damaged, "directory inode %llu (", (unsigned long long)a->inum);
	path_of(c, a->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, ") moved into its own subdirectory inode %llu (", (unsigned long long)b->inum);
	path_of(c, b->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, "): the two form a loop cut off from the root");
	pb_printf(&c->r->lost, "the directory's place in the tree: it is salvaged into lost+found");
	aff_inum(c, a->inum);
	if ((ret = compute_affects(c)))
		return ret;

	struct trans t;
	struct bkey_buf ka, kp, kbb;
	trans_init(&t, c->fs);
	if ((ret = inode_lookup(c->fs, a->inum, &ka)) || (ret = inode_lookup(c->fs, pdir, &kp)) ||
	    (ret = inode_lookup(c->fs, b->inum, &kbb)))
		goto out;
	((struct bkfs_inode *)bkey_val(&ka.k))->parent = b->inum;
	((struct bkfs_inode *)bkey_val(&kp.k))->nlink--;
	((struct bkfs_inode *)bkey_val(&kbb.k))->nlink++;
	if ((ret = bkfs_dirent_remove(&t, pdir, a->name, strlen(a->name), NULL, NULL)) ||
	    (ret = bkfs_dirent_add(&t, b->inum, a->name, strlen(a->name), a->inum, DT_DIR)) ||
	    (ret = trans_update(&t, BTREE_ID_inodes, &ka.k)) || (ret = trans_update(&t, BTREE_ID_inodes, &kp.k)) ||
	    (ret = trans_update(&t, BTREE_ID_inodes, &kbb.k)))
		goto out;
	ret = trans_commit(&t, 0);
out:
	trans_exit(&t);
	return ret;
}

int corrupt_dir_parent_wrong(struct corrupt_ctx *c)
{
	int ret;
	struct dent *a = pick_dir(c, false, true, "no directory below a subdirectory of the root");
	if (!a)
		return NO_TARGET;
	struct bkey_buf kb;
	if ((ret = inode_lookup(c->fs, a->inum, &kb)))
		return ret;
	struct bkfs_inode *in = bkey_val(&kb.k);
	pb_printf(&c->r->damaged, "directory inode %llu (", (unsigned long long)a->inum);
	path_of(c, a->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, "): parent %llu -> %llu (the root)", (unsigned long long)in->parent,
		  (unsigned long long)BKFS_ROOT_INO);
	pb_printf(&c->r->lost, "none");
	in->parent = BKFS_ROOT_INO;
	return commit_one(c->fs, BTREE_ID_inodes, &kb.k);
}

int corrupt_root_inode_missing(struct corrupt_ctx *c)
{
	pb_printf(&c->r->damaged, "root directory inode %llu deleted (its entries are kept)", (unsigned long long)BKFS_ROOT_INO);
	pb_printf(&c->r->lost, "none: the root is recreated and its entries stay in place");
	return commit_delete(c->fs, BTREE_ID_inodes, POS(0, BKFS_ROOT_INO));
}

int corrupt_dirent_d_type(struct corrupt_ctx *c)
{
	int ret;
	struct dent *d = pick_file(c, 0, "no regular file with a single link");
	if (!d)
		return NO_TARGET;
	struct bkey_buf kb;
	if ((ret = btree_lookup(c->fs, BTREE_ID_dirents, POS(d->dir, d->slot), &kb)))
		return ret;
	file_text(c, d);
	pb_printf(&c->r->damaged, ": dirent d_type %u (regular file) -> %u (symlink)", DT_REG, DT_LNK);
	pb_printf(&c->r->lost, "none");
	((struct bkfs_dirent *)bkey_val(&kb.k))->d_type = DT_LNK;
	return commit_one(c->fs, BTREE_ID_dirents, &kb.k);
}

int corrupt_extent_missing_inode(struct corrupt_ctx *c)
{
	u64 inum = unused_inum(c);
	struct bkey_buf kb;
	u32 bytes = 100 + (u32)pick(c, 300);
	bkey_init(&kb.k, KEY_TYPE_inline_data, POS(inum, 1), sizeof(struct bkfs_inline_data) + bytes);
	kb.k.size = 1;
	struct bkfs_inline_data *id = bkey_val(&kb.k);
	id->bytes = bytes;
	for (u32 i = 0; i < bytes; i++)
		id->data[i] = (u8)rng_next(&c->rng);
	pb_printf(&c->r->damaged, "inline data extent (%u bytes) added for inode %llu, which does not exist", bytes,
		  (unsigned long long)inum);
	pb_printf(&c->r->lost, "none (the orphan extent is removed)");
	return commit_one(c->fs, BTREE_ID_extents, &kb.k);
}

int corrupt_xattr_missing_inode(struct corrupt_ctx *c)
{
	u64 inum = unused_inum(c);
	static const char name[] = "user.debug_corrupt";
	static const char val[] = "orphan";
	struct bkey_buf kb;
	size_t nl = sizeof(name) - 1, vl = sizeof(val) - 1;
	bkey_init(&kb.k, KEY_TYPE_xattr, POS(inum, bkfs_name_hash(name, nl)), sizeof(struct bkfs_xattr) + nl + vl);
	struct bkfs_xattr *x = bkey_val(&kb.k);
	x->name_len = nl;
	x->val_len = vl;
	memcpy(x->data, name, nl);
	memcpy(x->data + nl, val, vl);
	pb_printf(&c->r->damaged, "xattr %s added for inode %llu, which does not exist", name, (unsigned long long)inum);
	pb_printf(&c->r->lost, "none (the orphan xattr is removed)");
	return commit_one(c->fs, BTREE_ID_xattrs, &kb.k);
}

int corrupt_dirent_in_non_dir(struct corrupt_ctx *c)
{
	struct dent **v;
	size_t n = file_candidates(c, 0, &v);
	if (n < 2) {
		free(v);
		return no_target(c, "fewer than two regular files");
	}
	size_t i = pick(c, n), j = pick(c, n - 1);
	if (j >= i)
		j++;
	struct dent *f = v[i], *g = v[j];
	free(v);
	char name[64];
	snprintf(name, sizeof(name), "debug-corrupt-%llu", (unsigned long long)pick(c, 1000000));
	file_text(c, f);
	pb_printf(&c->r->damaged, ", a regular file: dirent %s -> inode %llu added to it", name, (unsigned long long)g->inum);
	pb_printf(&c->r->lost, "none (the dirent is removed)");
	return commit_dirent_add(c->fs, f->inum, name, g->inum, DT_REG);
}

int corrupt_dir_multiple_links(struct corrupt_ctx *c)
{
	struct dent **v;
	size_t n = dir_candidates(c, false, false, &v);
	if (n < 2) {
		free(v);
		return no_target(c, "fewer than two directories");
	}
	/* A gets a second dirent in Q, Q not inside A and not A's parent */
	struct dent *a = NULL, *q = NULL;
	for (unsigned tries = 0; tries < 1000 && !q; tries++) {
		a = v[pick(c, n)];
		struct dent *cq = v[pick(c, n)];
		if (cq->inum == a->inum || cq->inum == a->dir)
			continue;
		bool inside = false;
		u64 x = cq->inum;
		for (unsigned depth = 0; depth < 64 && x != BKFS_ROOT_INO; depth++) {
			if (x == a->inum) {
				inside = true;
				break;
			}
			struct dent *dd = dent_of_inum(c, x);
			if (!dd)
				break;
			x = dd->dir;
		}
		if (!inside)
			q = cq;
	}
	free(v);
	if (!q)
		return no_target(c, "no pair of unrelated directories");
	char name[64];
	snprintf(name, sizeof(name), "debug-corrupt-%llu", (unsigned long long)pick(c, 1000000));
	pb_printf(&c->r->damaged, "directory inode %llu (", (unsigned long long)a->inum);
	path_of(c, a->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, ") given a second name %s in directory inode %llu (", name, (unsigned long long)q->inum);
	path_of(c, q->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, ")");
	pb_printf(&c->r->lost, "none (the extra name is removed)");
	return commit_dirent_add(c->fs, q->inum, name, a->inum, DT_DIR);
}

/* ---- one key made invalid (its node still validates) ---- */

enum key_invalid { KI_INODE, KI_DIRENT, KI_EXTENT };

/* A file's inode, its dirent or one of its extents gets a value that fails
 * key validation, in place; the node's checksum is recomputed. Only that key
 * is dropped by fsck: the file's name, its inode or that range of its data. */
static int key_invalid_kind(struct corrupt_ctx *c, enum key_invalid e)
{
	struct bkey_buf kb;
	unsigned id;
	int ret;
	if ((ret = load_dents(c)) || (ret = load_inodes(c)))
		return ret;
	if (e == KI_EXTENT) {
		struct ext_target t;
		bool sole;
		ret = pick_extent_ptr(c, false, false, &t, &sole);
		if (ret == -BKFS_E_NOENT)
			return no_target(c, "no extent with a pointer");
		if (ret)
			return ret;
		kb = t.k;
		id = BTREE_ID_extents;
		struct bkfs_extent *x = bkey_extent(&kb.k);
		pb_printf(&c->r->damaged, "extent of inode %llu ending at sector %llu (%u sectors): nr_ptrs %u -> %u; file ",
			  (unsigned long long)kb.k.p.inode, (unsigned long long)kb.k.p.offset, kb.k.size, x->nr_ptrs,
			  BKFS_MAX_REPLICAS + 1);
		path_of(c, kb.k.p.inode, &c->r->damaged);
		pb_printf(&c->r->lost, "the extent's %u sectors of data (the file gets a hole there)", kb.k.size);
		aff_inum(c, kb.k.p.inode);
		x->nr_ptrs = BKFS_MAX_REPLICAS + 1;
	} else {
		struct dent *d = pick_file(c, 0, "no regular file with a single link");
		if (!d)
			return NO_TARGET;
		id = e == KI_INODE ? BTREE_ID_inodes : BTREE_ID_dirents;
		if ((ret = btree_lookup(c->fs, id, e == KI_INODE ? POS(0, d->inum) : POS(d->dir, d->slot), &kb)))
			return ret;
		file_text(c, d);
		aff_inum(c, d->inum);
		if (e == KI_INODE) {
			struct bkfs_inode *in = bkey_val(&kb.k);
			u32 mode = in->mode | (0x5a0000u + ((u32)pick(c, 16) << 24));
			pb_printf(&c->r->damaged, ": inode mode 0%o -> 0%o (bits beyond file type and permissions)", in->mode,
				  mode);
			pb_printf(&c->r->lost, "the inode: the file's data is kept as a regular file (mode 0600) at its "
					    "name; a file without data loses its name");
			in->mode = mode;
		} else {
			struct bkfs_dirent *de = bkey_val(&kb.k);
			size_t room = bkey_val_bytes(&kb.k) - sizeof(*de);
			u8 len = room < BKFS_NAME_MAX ? BKFS_NAME_MAX : 0; /* past the value, or empty */
			pb_printf(&c->r->damaged, ": its dirent (dir %llu slot %llu) name_len %u -> %u (%zu bytes of name room)",
				  (unsigned long long)d->dir, (unsigned long long)d->slot, de->name_len, len, room);
			pb_printf(&c->r->lost, "the file's name: it is salvaged into lost+found");
			de->name_len = len;
		}
	}
	struct printbuf why = PRINTBUF;
	ret = key_check(c, &kb.k, id, false, &why);
	if (!ret)
		pb_printf(&c->r->damaged, " [%s]", pb_str(&why));
	pb_exit(&why);
	return ret ? ret : edit_leaf_key(c, id, kb.k.p, &kb.k);
}

int corrupt_key_invalid_inode(struct corrupt_ctx *c) { return key_invalid_kind(c, KI_INODE); }
int corrupt_key_invalid_dirent(struct corrupt_ctx *c) { return key_invalid_kind(c, KI_DIRENT); }
int corrupt_key_invalid_extent(struct corrupt_ctx *c) { return key_invalid_kind(c, KI_EXTENT); }


/* ---- the orphan list ---- */

static int commit_orphan(struct bkfs_fs *fs, u64 inum)
{
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_orphan, POS(0, inum), 0);
	return commit_one(fs, BTREE_ID_orphans, &kb.k);
}

int corrupt_orphan_missing_inode(struct corrupt_ctx *c)
{
	u64 inum = unused_inum(c);
	pb_printf(&c->r->damaged, "orphan list entry added for inode %llu, which does not exist",
		  (unsigned long long)inum);
	pb_printf(&c->r->lost, "none");
	return commit_orphan(c->fs, inum);
}

int corrupt_orphan_linked_inode(struct corrupt_ctx *c)
{
	struct dent *d = pick_file(c, 0, "no regular file with a single link");
	if (!d)
		return NO_TARGET;
	file_text(c, d);
	pb_printf(&c->r->damaged, ": an orphan list entry added (the file keeps its name)");
	pb_printf(&c->r->lost, "none");
	return commit_orphan(c->fs, d->inum);
}

int corrupt_unlinked_not_orphan(struct corrupt_ctx *c)
{
	int ret;
	struct bkey_buf kb;
	struct dent *d = pick_file(c, 0, "no regular file with a single link");
	if (!d)
		return NO_TARGET;
	if ((ret = inode_lookup(c->fs, d->inum, &kb)))
		return ret;
	file_text(c, d);
	pb_printf(&c->r->damaged, ": its only dirent (dir %llu slot %llu) deleted, nlink set to 0",
		  (unsigned long long)d->dir, (unsigned long long)d->slot);
	pb_printf(&c->r->lost, "the file's name: it is salvaged into lost+found");
	aff_inum(c, d->inum);
	if ((ret = compute_affects(c)))
		return ret;
	((struct bkfs_inode *)bkey_val(&kb.k))->nlink = 0;
	if ((ret = commit_one(c->fs, BTREE_ID_inodes, &kb.k)))
		return ret;
	return commit_dirent_remove(c->fs, d->dir, d->name);
}

/* a single-link regular file whose inode records its name, and that key */
static struct dent *pick_named_file(struct corrupt_ctx *c, struct bkey_buf *kb)
{
	struct dent *d = pick_file(c, 0, "no regular file with a single link");
	if (!d || inode_lookup(c->fs, d->inum, kb))
		return NULL;
	if (bkey_val_bytes(&kb->k) <= sizeof(struct bkfs_inode)) {
		no_target(c, "the file's inode records no name (a filesystem older than format 4)");
		return NULL;
	}
	return d;
}

int corrupt_inode_name_wrong(struct corrupt_ctx *c)
{
	struct bkey_buf kb;
	struct dent *d = pick_named_file(c, &kb);
	if (!d)
		return NO_TARGET;
	u64 to = BKFS_ROOT_INO;
	for (size_t i = 0; d->dir == BKFS_ROOT_INO && i < c->nr_inodes; i++)
		if (S_ISDIR(c->inodes[i].v.mode) && c->inodes[i].inum != BKFS_ROOT_INO)
			to = c->inodes[i].inum;
	if (to == d->dir)
		return no_target(c, "no second directory");
	struct bkfs_inode *in = bkey_val(&kb.k);
	file_text(c, d);
	pb_printf(&c->r->damaged, ": the directory of its recorded name %llu -> %llu", (unsigned long long)in->parent,
		  (unsigned long long)to);
	pb_printf(&c->r->lost, "none");
	in->parent = to;
	return commit_one(c->fs, BTREE_ID_inodes, &kb.k);
}

int corrupt_inode_name_bad(struct corrupt_ctx *c)
{
	struct bkey_buf kb;
	struct dent *d = pick_named_file(c, &kb);
	if (!d)
		return NO_TARGET;
	u8 *name = (u8 *)bkey_val(&kb.k) + sizeof(struct bkfs_inode) + 1;
	file_text(c, d);
	pb_printf(&c->r->damaged, ": the first byte of its recorded name '%c' -> '/'", name[0]);
	pb_printf(&c->r->lost, "none");
	name[0] = '/';
	return commit_one(c->fs, BTREE_ID_inodes, &kb.k);
}

/* A file that records the names of its other links (format 5): the last
 * letter of the second name changed to another, so it names no dirent. */
int corrupt_inode_link_name_wrong(struct corrupt_ctx *c)
{
	struct bkey_buf kb;
	struct inode_name_ref refs[INODE_NAMES_MAX];
	int ret = load_inodes(c);
	if (ret)
		return ret;
	size_t n = 0, want = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c->nr_inodes; i++) {
			const struct dinode *di = &c->inodes[i];
			if (!S_ISREG(di->v.mode) || di->v.nlink < 2 || inode_lookup(c->fs, di->inum, &kb) ||
			    inode_names_parse(bkey_val(&kb.k), bkey_val_bytes(&kb.k), refs) < 2)
				continue;
			if (pass && n++ == want)
				goto found;
			if (!pass)
				n++;
		}
		if (!n)
			return no_target(c, "no file records the name of a second link (no hard links, or older than format 5)");
		want = pick(c, n);
		n = 0;
	}
	return NO_TARGET;
found:;
	u8 *last = (u8 *)refs[1].name + refs[1].len - 1;
	char was = (char)*last;
	*last = was == 'x' ? 'y' : 'x';
	pb_printf(&c->r->damaged, "inode %llu (", (unsigned long long)kb.k.p.offset);
	path_of(c, kb.k.p.offset, &c->r->damaged);
	pb_printf(&c->r->damaged, "): the last letter of its second recorded name '%c' -> '%c' (directory %llu)", was,
		  (char)*last, (unsigned long long)refs[1].dir);
	pb_printf(&c->r->lost, "none");
	return commit_one(c->fs, BTREE_ID_inodes, &kb.k);
}
