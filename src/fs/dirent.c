/* dirent.c - directories: hashed dirent tables with linear probing, and the
 * hashed-table helpers shared with xattrs. */
#include "fs.h"
#include "../btree/trans.h"
#include "../format/inode_format.h"
#include "../btree/iter.h"
#include <dirent.h>
#include <string.h>

#define HASH_MAX_PROBE (1u << 16) /* a longer chain means a corrupt table */

u64 bkfs_name_hash(const void *name, size_t len)
{
	return (hash64(name, len) & ((1ull << 62) - 1)) | 1;
}

/* ---- hashed tables ---- */

int hash_find(struct trans *t, const struct hash_desc *d, u64 inode, const void *name, size_t len,
	      struct bkey_buf *out, u64 *slot)
{
	struct bkey_buf kb;
	u64 s = bkfs_name_hash(name, len);
	for (unsigned i = 0; i < HASH_MAX_PROBE; i++, s++) {
		int ret = trans_lookup(t, d->btree_id, POS(inode, s), &kb);
		if (ret)
			return ret; /* -NOENT: reached a free slot */
		const u8 *kn;
		size_t kl;
		if (!d->key_name(&kb.k, &kn, &kl) && kl == len && !memcmp(kn, name, len)) {
			if (out)
				memcpy(out, &kb, bkey_bytes(&kb.k));
			if (slot)
				*slot = s;
			return 0;
		}
	}
	return -BKFS_E_CORRUPT;
}

int hash_free_slot(struct trans *t, const struct hash_desc *d, u64 inode, const void *name, size_t len,
		   u64 *slot)
{
	u64 s = bkfs_name_hash(name, len);
	for (unsigned i = 0; i < HASH_MAX_PROBE; i++, s++) {
		int ret = trans_lookup(t, d->btree_id, POS(inode, s), NULL);
		if (ret == -BKFS_E_NOENT) {
			*slot = s;
			return 0;
		}
		if (ret)
			return ret;
	}
	return -BKFS_E_NOSPC;
}

int hash_remove_at(struct trans *t, const struct hash_desc *d, u64 inode, u64 slot)
{
	struct bkey_buf kb;
	u64 hole = slot;
	int ret = trans_delete(t, d->btree_id, POS(inode, hole));
	if (ret)
		return ret;
	/* backward shift: members of the chain after the hole whose home slot is
	 * at or before the hole move into it, so lookups never stop early */
	for (u64 j = slot + 1; j - slot < HASH_MAX_PROBE; j++) {
		ret = trans_lookup(t, d->btree_id, POS(inode, j), &kb);
		if (ret == -BKFS_E_NOENT)
			return 0;
		if (ret)
			return ret;
		const u8 *kn;
		size_t kl;
		if (d->key_name(&kb.k, &kn, &kl))
			continue; /* unparseable: leave it where it is */
		if (bkfs_name_hash(kn, kl) > hole)
			continue;
		kb.k.p.offset = hole;
		if ((ret = trans_update(t, d->btree_id, &kb.k)) ||
		    (ret = trans_delete(t, d->btree_id, POS(inode, j))))
			return ret;
		hole = j;
	}
	return 0;
}

static int dirent_key_name(const struct bkey *k, const u8 **name, size_t *len)
{
	if (k->type != KEY_TYPE_dirent || bkey_val_bytes(k) < sizeof(struct bkfs_dirent))
		return -BKFS_E_CORRUPT;
	const struct bkfs_dirent *de = bkey_val(k);
	if (de->name_len > bkey_val_bytes(k) - sizeof(*de))
		return -BKFS_E_CORRUPT;
	*name = de->name;
	*len = de->name_len;
	return 0;
}

const struct hash_desc bkfs_dirent_hash_desc = {
	.btree_id = BTREE_ID_dirents,
	.key_name = dirent_key_name,
};

/* ---- dirents ---- */

int bkfs_dirent_lookup(struct trans *t, u64 dir, const char *name, size_t len,
		       u64 *inum, unsigned *d_type, u64 *slot)
{
	struct bkey_buf kb;
	if (!len || len > BKFS_NAME_MAX)
		return -BKFS_E_NOENT;
	int ret = hash_find(t, &bkfs_dirent_hash_desc, dir, name, len, &kb, slot);
	if (ret)
		return ret;
	const struct bkfs_dirent *de = bkey_val(&kb.k);
	if (inum)
		*inum = de->inum;
	if (d_type)
		*d_type = de->d_type;
	return 0;
}

int bkfs_dirent_add_unique(struct trans *t, u64 dir, const char *name, size_t len, u64 inum, unsigned d_type)
{
	struct bkey_buf kb;
	u64 slot;
	int ret = bkfs_name_check(name, len);
	if (ret)
		return ret;
	if ((ret = hash_free_slot(t, &bkfs_dirent_hash_desc, dir, name, len, &slot)))
		return ret;
	bkey_init(&kb.k, KEY_TYPE_dirent, POS(dir, slot), sizeof(struct bkfs_dirent) + len);
	struct bkfs_dirent *de = bkey_val(&kb.k);
	de->inum = inum;
	de->d_type = d_type;
	de->name_len = len;
	memcpy(de->name, name, len);
	return trans_update(t, BTREE_ID_dirents, &kb.k);
}

int bkfs_dirent_add(struct trans *t, u64 dir, const char *name, size_t len, u64 inum, unsigned d_type)
{
	int ret = bkfs_name_check(name, len);
	if (ret)
		return ret;
	ret = hash_find(t, &bkfs_dirent_hash_desc, dir, name, len, NULL, NULL);
	if (!ret)
		return -BKFS_E_EXIST;
	if (ret != -BKFS_E_NOENT)
		return ret;
	return bkfs_dirent_add_unique(t, dir, name, len, inum, d_type);
}

int bkfs_dirent_remove(struct trans *t, u64 dir, const char *name, size_t len, u64 *inum, unsigned *d_type)
{
	u64 slot;
	int ret = bkfs_dirent_lookup(t, dir, name, len, inum, d_type, &slot);
	if (ret)
		return ret;
	return hash_remove_at(t, &bkfs_dirent_hash_desc, dir, slot);
}

int bkfs_readdir(struct bkfs_fs *fs, u64 dir, u64 start, bkfs_readdir_fn fn, void *arg)
{
	struct btree_iter it;
	struct bkey *k;
	struct bkey_buf kb;
	int ret;
	btree_iter_init(&it, fs, BTREE_ID_dirents, 0, POS(dir, start));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == dir) {
		/* copy: the callback may touch the btree and move nodes */
		memcpy(&kb, k, bkey_bytes(k));
		it.pos = bpos_successor(kb.k.p);
		const u8 *name;
		size_t len;
		if (dirent_key_name(&kb.k, &name, &len))
			continue;
		const struct bkfs_dirent *de = bkey_val(&kb.k);
		if ((ret = fn(arg, (const char *)name, len, de->inum, de->d_type, kb.k.p.offset)))
			return ret;
	}
	return ret;
}

int bkfs_dir_empty(struct trans *t, u64 dir)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	/* committed entries, then pending changes of this transaction */
	btree_iter_init(&it, t->fs, BTREE_ID_dirents, 0, POS(dir, 0));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == dir) {
		const struct bkey *p = trans_pending(t, BTREE_ID_dirents, k->p);
		if (!p || !bkey_deleted(p))
			return 0;
		it.pos = bpos_successor(k->p);
	}
	if (ret)
		return ret;
	for (size_t i = 0; i < t->nr; i++)
		if (t->u[i].btree_id == BTREE_ID_dirents && t->u[i].k->p.inode == dir &&
		    !bkey_deleted(t->u[i].k) && trans_pending(t, BTREE_ID_dirents, t->u[i].k->p) == t->u[i].k)
			return 0;
	return 1;
}
