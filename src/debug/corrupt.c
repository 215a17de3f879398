/* corrupt.c - the kind table, one run of a kind (bkfs_corrupt), and the
 * setup every kind is written with: opening and closing the filesystem on
 * the caller's devices, the deferred raw writes, seeded picks, edited-key
 * checks and one-update transactions. */
#include "corrupt_int.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../btree/iter.h"

const struct corrupt_kind corrupt_kinds[CORRUPT_NR] = {
#define x(n, err, needs, session, desc) \
	[CORRUPT_##n] = { #n, FSCK_ERR_##err, needs, CORRUPT_##session, desc, corrupt_##n },
	CORRUPT_KINDS()
#undef x
};

const char *const corrupt_need_names[CORRUPT_NEED_NR] = {
#define x(n, flag, what) #n,
	CORRUPT_NEEDS()
#undef x
};

const struct corrupt_kind *corrupt_kind_find(const char *name)
{
	for (size_t i = 0; i < CORRUPT_NR; i++)
		if (!strcmp(corrupt_kinds[i].name, name))
			return &corrupt_kinds[i];
	return NULL;
}

void corrupt_needs_to_text(struct printbuf *out, unsigned needs)
{
	bool any = false;
	for (unsigned i = 0; i < CORRUPT_NEED_NR; i++)
		if (needs & (1u << i)) {
			pb_printf(out, "%s%s", any ? "," : "", corrupt_need_names[i]);
			any = true;
		}
	if (!any)
		pb_printf(out, "-");
}

void corrupt_report_exit(struct corrupt_report *r)
{
	pb_exit(&r->damaged);
	pb_exit(&r->lost);
	pb_exit(&r->affects);
	pb_exit(&r->msgs);
}

/* ---------------------------------------------------------------- basics */

u64 pick(struct corrupt_ctx *c, u64 n)
{
	return n ? rng_next(&c->rng) % n : 0;
}

static void msg_v(struct corrupt_ctx *c, const char *prefix, const char *fmt, va_list ap)
{
	char line[1024];
	vsnprintf(line, sizeof(line), fmt, ap);
	pb_printf(&c->r->msgs, "%s%s\n", prefix, line);
}

void corrupt_msg(struct corrupt_ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	msg_v(c, "", fmt, ap);
	va_end(ap);
}

int no_target(struct corrupt_ctx *c, const char *fmt, ...)
{
	char prefix[128];
	va_list ap;
	snprintf(prefix, sizeof(prefix), "%s: no suitable target in this image: ", c->kind->name);
	va_start(ap, fmt);
	msg_v(c, prefix, fmt, ap);
	va_end(ap);
	return NO_TARGET;
}

int report_fail(struct corrupt_ctx *c, const char *what, int ret)
{
	corrupt_msg(c, "%s: %s", what, bkfs_strerror(ret));
	return ret;
}

/* ---------------------------------------------------------------- open/close */

int d_open(struct corrupt_ctx *c, unsigned flags)
{
	struct printbuf err = PRINTBUF;
	struct blockdev *bds[BKFS_MAX_DEVS];
	memcpy(bds, c->bds, sizeof(bds)); /* the open takes the entries it is given */
	int ret = bkfs_open_devs(bds, c->nr_bds, flags, &c->fs, &err);
	if (ret) {
		corrupt_msg(c, "cannot open: %s", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		c->fs = NULL;
		return ret;
	}
	pb_exit(&err);
	struct bkfs_fs *fs = c->fs;
	c->nr_devs = fs->nr_devs;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		c->dev[d] = fs->devs[d].bd;
	c->sb = fs->sb;
	c->node_bytes = fs->node_bytes;
	c->bucket_sectors = fs->sb.bucket_size;
	return 0;
}

int d_close(struct corrupt_ctx *c, bool write)
{
	int ret = 0;
	caches_free(c);
	if (!c->fs)
		return 0;
	if (write)
		ret = bkfs_close(c->fs);
	else
		bkfs_close_nowrite(c->fs);
	c->fs = NULL;
	if (ret)
		corrupt_msg(c, "closing the filesystem: %s", bkfs_strerror(ret));
	return ret;
}

int fs_prepare(struct corrupt_ctx *c)
{
	/* analysis and damage in one read-write session */
	d_close(c, false);
	int ret = d_open(c, OPEN_RW);
	if (!ret)
		ret = load_dents(c);
	if (!ret)
		ret = load_inodes(c);
	return ret;
}

/* End an FS session: checkpoint the damage, or drop everything. */
static int fs_finish(struct corrupt_ctx *c, int ret)
{
	if (ret == NO_TARGET) {
		d_close(c, false);
		return ret;
	}
	if (ret) {
		report_fail(c, "updating the filesystem", ret);
		d_close(c, false);
		return ret;
	}
	return d_close(c, true);
}

int queue_write(struct corrupt_ctx *c, unsigned dev, u64 off, const void *buf, size_t len)
{
	if (dev >= c->nr_devs || !c->dev[dev]) {
		corrupt_msg(c, "member %u is not present", dev);
		return -BKFS_E_INVAL;
	}
	int ret = darray_room(c->w, c->cap_w, c->nr_w + 1, 64);
	if (ret)
		return ret;
	u8 *copy = malloc(len);
	if (!copy)
		return -BKFS_E_NOMEM;
	memcpy(copy, buf, len);
	c->w[c->nr_w++] = (struct pending_write){ .dev = dev, .off = off, .len = len, .buf = copy };
	return 0;
}

static const char *dev_name(struct corrupt_ctx *c, unsigned dev)
{
	return c->dev[dev]->path ? c->dev[dev]->path : "?";
}

/* Write every queued buffer with raw block I/O (the filesystem is closed). */
static int apply_writes(struct corrupt_ctx *c)
{
	bool used[BKFS_MAX_DEVS] = { 0 };
	int ret = 0;
	for (size_t i = 0; i < c->nr_w && !ret; i++) {
		struct pending_write *w = &c->w[i];
		used[w->dev] = true;
		if ((ret = bd_write(c->dev[w->dev], w->buf, w->off, w->len)))
			corrupt_msg(c, "writing %s at byte %llu: %s", dev_name(c, w->dev), (unsigned long long)w->off,
				    bkfs_strerror(ret));
	}
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		if (used[d]) {
			int r = bd_flush(c->dev[d]);
			if (!ret)
				ret = r;
		}
	return ret;
}

/* ---------------------------------------------------------------- setup helpers */

int pick_key(struct corrupt_ctx *c, unsigned id, key_filter ok, const void *arg, struct bkey_buf *out)
{
	struct bpos *v = NULL;
	size_t n = 0, cap = 0;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, id, POS_MIN, k, ret)
		if ((!ok || ok(c, k, arg)) && !darray_room(v, cap, n + 1, 64))
			v[n++] = k->p;
	if (!ret)
		ret = n ? btree_lookup(c->fs, id, v[pick(c, n)], out) : -BKFS_E_NOENT;
	free(v);
	return ret;
}

int key_check(struct corrupt_ctx *c, const struct bkey *k, unsigned id, bool want_valid, struct printbuf *why)
{
	struct printbuf err = PRINTBUF;
	bool valid = !bkey_validate(k, id, 0, &err);
	int ret = 0;
	if (valid != want_valid) {
		if (want_valid)
			corrupt_msg(c, "internal: the edited key does not validate: %s", pb_str(&err));
		else
			corrupt_msg(c, "the edited key still validates");
		ret = -BKFS_E_INVAL;
	} else if (why && !valid) {
		pb_printf(why, "%s", pb_str(&err));
	}
	pb_exit(&err);
	return ret;
}

int inode_lookup(struct bkfs_fs *fs, u64 inum, struct bkey_buf *kb)
{
	return btree_lookup(fs, BTREE_ID_inodes, POS(0, inum), kb);
}

/* the transaction's one update made by op, committed */
#define COMMIT_WITH(fs, op)                           \
	({                                            \
		struct trans t;                       \
		trans_init(&t, fs);                   \
		int _ret = (op);                      \
		if (!_ret)                            \
			_ret = trans_commit(&t, 0);   \
		trans_exit(&t);                       \
		_ret;                                 \
	})

int commit_one(struct bkfs_fs *fs, unsigned id, const struct bkey *k)
{
	return COMMIT_WITH(fs, trans_update(&t, id, k));
}

int commit_delete(struct bkfs_fs *fs, unsigned id, struct bpos pos)
{
	return COMMIT_WITH(fs, trans_delete(&t, id, pos));
}

int commit_dirent_add(struct bkfs_fs *fs, u64 dir, const char *name, u64 inum, u8 d_type)
{
	return COMMIT_WITH(fs, bkfs_dirent_add(&t, dir, name, strlen(name), inum, d_type));
}

int commit_dirent_remove(struct bkfs_fs *fs, u64 dir, const char *name)
{
	return COMMIT_WITH(fs, bkfs_dirent_remove(&t, dir, name, strlen(name), NULL, NULL));
}

/* ---------------------------------------------------------------- one run */

static void ctx_free(struct corrupt_ctx *c)
{
	for (size_t i = 0; i < c->nr_w; i++)
		free(c->w[i].buf);
	free(c->w);
	free(c->aff_inums);
	free(c->aff_dirents);
}

/* The kind itself, in its session. */
static int run_kind(struct corrupt_ctx *c)
{
	const struct corrupt_kind *k = c->kind;
	int ret;
	if (k->session == CORRUPT_FS) {
		if ((ret = fs_prepare(c)))
			return ret;
		return fs_finish(c, k->fn(c));
	}
	if (k->session == CORRUPT_NODES && (ret = walk_nodes(c)))
		return ret;
	ret = k->fn(c);
	if (!ret && c->fs)
		ret = compute_affects(c);
	return ret;
}

int bkfs_corrupt(struct blockdev **bds, unsigned nr, const struct corrupt_kind *k, const struct corrupt_opts *o,
		 struct corrupt_report *r)
{
	struct corrupt_ctx c = { .kind = k, .r = r, .nr_bds = nr };
	if (nr > BKFS_MAX_DEVS) {
		corrupt_msg(&c, "at most %d devices", BKFS_MAX_DEVS);
		return -BKFS_E_INVAL;
	}
	/* the filesystem is opened and closed several times on the same
	 * devices, and written to raw after the last close */
	for (unsigned i = 0; i < nr; i++) {
		c.bds[i] = bds[i];
		c.keep_open[i] = bds[i]->keep_open;
		bds[i]->keep_open = true;
	}
	/* the same seed gives the same damage; mix in the kind so kinds differ */
	c.rng = o->seed * 0x9E3779B97F4A7C15ull ^ hash64(k->name, strlen(k->name));
	int ret = d_open(&c, OPEN_RO);
	if (!ret)
		ret = run_kind(&c);
	d_close(&c, false);
	if (!ret)
		ret = apply_writes(&c);
	ctx_free(&c);
	for (unsigned i = 0; i < nr; i++)
		bds[i]->keep_open = c.keep_open[i];
	return ret;
}
