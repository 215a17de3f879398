/* xattr.c - extended attributes: a hashed table per inode in the xattrs
 * btree, one key per attribute (name then value in the key). */
#include "fs.h"
#include "../btree/trans.h"
#include "../format/inode_format.h"
#include "../btree/iter.h"
#include <string.h>

static int xattr_key_name(const struct bkey *k, const u8 **name, size_t *len)
{
	if (k->type != KEY_TYPE_xattr || bkey_val_bytes(k) < sizeof(struct bkfs_xattr))
		return -BKFS_E_CORRUPT;
	const struct bkfs_xattr *x = bkey_val(k);
	if ((size_t)x->name_len + x->val_len > bkey_val_bytes(k) - sizeof(*x))
		return -BKFS_E_CORRUPT;
	*name = x->data;
	*len = x->name_len;
	return 0;
}

const struct hash_desc bkfs_xattr_hash_desc = {
	.btree_id = BTREE_ID_xattrs,
	.key_name = xattr_key_name,
};

size_t bkfs_xattr_max_value(size_t name_len)
{
	size_t room = BKEY_VAL_MAX - sizeof(struct bkfs_xattr);
	return name_len >= room ? 0 : MIN(room - name_len, (size_t)UINT16_MAX);
}

static int name_ok(const char *name, size_t *len)
{
	*len = name ? strlen(name) : 0;
	return *len && *len <= 255 ? 0 : -BKFS_E_INVAL;
}

int bkfs_xattr_get(struct trans *t, u64 inum, const char *name, void *buf, size_t size)
{
	struct bkey_buf kb;
	size_t len;
	int ret = name_ok(name, &len);
	if (ret)
		return ret == -BKFS_E_INVAL ? -BKFS_E_NOENT : ret;
	if ((ret = hash_find(t, &bkfs_xattr_hash_desc, inum, name, len, &kb, NULL)))
		return ret;
	const struct bkfs_xattr *x = bkey_val(&kb.k);
	if (size) {
		if (size < x->val_len)
			return -BKFS_E_RANGE;
		memcpy(buf, x->data + x->name_len, x->val_len);
	}
	return x->val_len;
}

int bkfs_xattr_set(struct trans *t, u64 inum, const char *name, const void *val, size_t vlen, int flags)
{
	struct bkey_buf kb;
	size_t len;
	u64 slot;
	int ret = name_ok(name, &len);
	if (ret)
		return ret;
	if (vlen > bkfs_xattr_max_value(len))
		return -BKFS_E_TOOBIG;
	ret = hash_find(t, &bkfs_xattr_hash_desc, inum, name, len, NULL, &slot);
	if (!ret && (flags & BKFS_XATTR_CREATE))
		return -BKFS_E_EXIST;
	if (ret == -BKFS_E_NOENT) {
		if (flags & BKFS_XATTR_REPLACE)
			return ret;
		ret = hash_free_slot(t, &bkfs_xattr_hash_desc, inum, name, len, &slot);
	}
	if (ret)
		return ret;
	bkey_init(&kb.k, KEY_TYPE_xattr, POS(inum, slot), sizeof(struct bkfs_xattr) + len + vlen);
	struct bkfs_xattr *x = bkey_val(&kb.k);
	x->name_len = len;
	x->val_len = vlen;
	memcpy(x->data, name, len);
	if (vlen)
		memcpy(x->data + len, val, vlen);
	return trans_update(t, BTREE_ID_xattrs, &kb.k);
}

int bkfs_xattr_remove(struct trans *t, u64 inum, const char *name)
{
	size_t len;
	u64 slot;
	int ret = name_ok(name, &len);
	if (ret)
		return ret == -BKFS_E_INVAL ? -BKFS_E_NOENT : ret;
	if ((ret = hash_find(t, &bkfs_xattr_hash_desc, inum, name, len, NULL, &slot)))
		return ret;
	return hash_remove_at(t, &bkfs_xattr_hash_desc, inum, slot);
}

int bkfs_xattr_for_each(struct bkfs_fs *fs, u64 inum, bkfs_xattr_fn fn, void *arg)
{
	struct btree_iter it;
	struct bkey *k;
	struct bkey_buf kb;
	int ret;
	btree_iter_init(&it, fs, BTREE_ID_xattrs, 0, POS(inum, 0));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum) {
		memcpy(&kb, k, bkey_bytes(k));
		it.pos = bpos_successor(kb.k.p);
		const u8 *name;
		size_t len;
		if (xattr_key_name(&kb.k, &name, &len))
			continue;
		const struct bkfs_xattr *x = bkey_val(&kb.k);
		if ((ret = fn(arg, (const char *)name, len, x->data + len, x->val_len)))
			return ret;
	}
	return ret;
}

struct list_ctx {
	char *buf;
	size_t size, len;
};

static int list_one(void *arg, const char *name, size_t name_len, const void *val, size_t val_len)
{
	struct list_ctx *c = arg;
	if (c->size) {
		if (c->len + name_len + 1 > c->size)
			return -BKFS_E_RANGE;
		memcpy(c->buf + c->len, name, name_len);
		c->buf[c->len + name_len] = 0;
	}
	c->len += name_len + 1;
	return 0;
}

ssize_t bkfs_xattr_list(struct bkfs_fs *fs, u64 inum, char *buf, size_t size)
{
	struct list_ctx c = { buf, size, 0 };
	int ret = bkfs_xattr_for_each(fs, inum, list_one, &c);
	return ret ? ret : (ssize_t)c.len;
}
