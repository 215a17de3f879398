/* cmd_debug.c - `bkfs debug corrupt KIND [--seed N] DEV...`: damage an image
 * in a named, reproducible way, so that tests (and people) can watch fsck
 * find and repair it.
 *
 * Every kind names the fsck error it is meant to provoke (`--list`). Targets
 * are located through the engine: the filesystem is opened read-only without
 * journal replay, btrees are walked node by node (node locations come from the
 * root pointers and the btree_ptr keys of interior nodes), and a target is
 * picked with the seeded PRNG. The filesystem is then closed and the damage
 * is written with raw block I/O: a node buffer is edited in place and its
 * checksum recomputed (so it still validates), or bytes are flipped (so it
 * does not). Damage at the filesystem level (inodes, dirents) is made through
 * ordinary transactions, whose triggers keep the derived state (accounting)
 * consistent, so that only the intended finding appears.
 *
 * Output: what was damaged, the error fsck should report, what data may be
 * lost, and one "affects: INUM PATH" line for every path whose content or
 * place may change (the damaged object and everything below it).
 *
 * Exit status: 0 damage written, 1 no suitable target in this image (or an
 * error), 16 usage error. */
#include "cmds.h"
#include "../fs/fs.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>

#define NO_TARGET 1

/* ---------------------------------------------------------------- context */

struct pending_write {
	unsigned dev;
	u64 off;
	size_t len;
	u8 *buf;
};

struct dnode {
	u8 id, level;
	bool root;
	u64 seq;
	struct bpos min, max;
	struct bkfs_btree_ptr ptr; /* location */
	u32 nr_keys, used;         /* used = key bytes */
	int parent;                /* index in the node array, -1 for roots */
	u32 pidx;                  /* index of the pointer in the parent */
};

struct dent {
	u64 dir, slot, inum;
	u8 d_type;
	char *name;
};

struct dinode {
	u64 inum;
	struct bkfs_inode v;
};

struct dctx {
	const char *kind;
	char **paths;
	unsigned nr_paths;
	u64 rng;
	struct bkfs_fs *fs;
	char *devpath[BKFS_MAX_DEVS];
	unsigned nr_devs;
	struct bkfs_sb sb;
	u32 node_bytes, bucket_sectors;

	struct pending_write *w;
	size_t nr_w, cap_w;

	struct printbuf damaged, lost, affects;
	u64 *aff_inums;
	size_t nr_aff_inums, cap_aff_inums;
	struct bpos *aff_dirents;
	size_t nr_aff_dirents, cap_aff_dirents;
	bool all_affected_listed;

	/* caches built on demand while the filesystem is open */
	struct dnode *nodes;
	size_t nr_nodes, cap_nodes;
	struct dent *dents;
	size_t nr_dents, cap_dents;
	struct dinode *inodes;
	size_t nr_inodes, cap_inodes;
};

static u64 pick(struct dctx *c, u64 n)
{
	return n ? rng_next(&c->rng) % n : 0;
}

static int grow(void **p, size_t *cap, size_t nr, size_t elem)
{
	if (nr < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	void *n = realloc(*p, nc * elem);
	if (!n)
		return -BKFS_E_NOMEM;
	*p = n;
	*cap = nc;
	return 0;
}

static void no_target(struct dctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void no_target(struct dctx *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "bkfs debug corrupt: %s: no suitable target in this image: ", c->kind);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void caches_free(struct dctx *c)
{
	free(c->nodes);
	c->nodes = NULL;
	c->nr_nodes = c->cap_nodes = 0;
	for (size_t i = 0; i < c->nr_dents; i++)
		free(c->dents[i].name);
	free(c->dents);
	c->dents = NULL;
	c->nr_dents = c->cap_dents = 0;
	free(c->inodes);
	c->inodes = NULL;
	c->nr_inodes = c->cap_inodes = 0;
}

/* ---------------------------------------------------------------- open/close */

#define OPEN_RO (BKFS_OPEN_RDONLY | BKFS_OPEN_NOREPLAY | BKFS_OPEN_DEGRADED)
#define OPEN_RW 0

static int d_open(struct dctx *c, unsigned flags)
{
	struct printbuf err = PRINTBUF;
	int ret = bkfs_open(c->paths, c->nr_paths, flags, &c->fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs debug corrupt: cannot open: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		c->fs = NULL;
		return ret;
	}
	pb_exit(&err);
	struct bkfs_fs *fs = c->fs;
	c->nr_devs = fs->nr_devs;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		free(c->devpath[d]);
		c->devpath[d] = fs->devs[d].bd && fs->devs[d].bd->path ? strdup(fs->devs[d].bd->path) : NULL;
	}
	c->sb = fs->sb;
	c->node_bytes = fs->node_bytes;
	c->bucket_sectors = fs->sb.bucket_size;
	return 0;
}

/* Close; write = checkpoint and mark clean (after engine-made damage). */
static int d_close(struct dctx *c, bool write)
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
		fprintf(stderr, "bkfs debug corrupt: closing the filesystem: %s\n", bkfs_strerror(ret));
	return ret;
}

static int queue_write(struct dctx *c, unsigned dev, u64 off, const void *buf, size_t len)
{
	if (dev >= c->nr_devs || !c->devpath[dev]) {
		fprintf(stderr, "bkfs debug corrupt: member %u is not present\n", dev);
		return -BKFS_E_INVAL;
	}
	int ret = grow((void **)&c->w, &c->cap_w, c->nr_w, sizeof(*c->w));
	if (ret)
		return ret;
	u8 *copy = malloc(len);
	if (!copy)
		return -BKFS_E_NOMEM;
	memcpy(copy, buf, len);
	c->w[c->nr_w++] = (struct pending_write){ .dev = dev, .off = off, .len = len, .buf = copy };
	return 0;
}

/* Write every queued buffer with raw block I/O (the filesystem is closed). */
static int apply_writes(struct dctx *c)
{
	struct blockdev *bds[BKFS_MAX_DEVS] = { 0 };
	int ret = 0;
	for (size_t i = 0; i < c->nr_w && !ret; i++) {
		struct pending_write *w = &c->w[i];
		if (!bds[w->dev] && (ret = file_dev_open(c->devpath[w->dev], 0, &bds[w->dev]))) {
			fprintf(stderr, "bkfs debug corrupt: %s: %s\n", c->devpath[w->dev], bkfs_strerror(ret));
			break;
		}
		if ((ret = bd_write(bds[w->dev], w->buf, w->off, w->len)))
			fprintf(stderr, "bkfs debug corrupt: writing %s at byte %llu: %s\n", c->devpath[w->dev],
				(unsigned long long)w->off, bkfs_strerror(ret));
	}
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		if (bds[d]) {
			int r = bd_flush(bds[d]);
			if (!ret)
				ret = r;
			bd_close(bds[d]);
		}
	for (size_t i = 0; i < c->nr_w; i++)
		free(c->w[i].buf);
	c->nr_w = 0;
	return ret;
}

/* ---------------------------------------------------------------- nodes */

static int add_node(struct dctx *c, struct btree *b, const struct bkfs_btree_ptr *p, bool root, int parent,
		    u32 pidx)
{
	int ret = grow((void **)&c->nodes, &c->cap_nodes, c->nr_nodes, sizeof(*c->nodes));
	if (ret)
		return ret;
	struct dnode *n = &c->nodes[c->nr_nodes++];
	memset(n, 0, sizeof(*n));
	n->id = b->btree_id;
	n->level = b->level;
	n->root = root;
	n->seq = b->seq;
	n->min = b->min_key;
	n->max = b->max_key;
	n->ptr = *p;
	n->nr_keys = b->nr_keys;
	n->used = b->used;
	n->parent = parent;
	n->pidx = pidx;
	return 0;
}

static int visit_node(struct dctx *c, unsigned id, struct btree *b, int self)
{
	if (!b->level)
		return 0;
	for (u32 i = 0; i < b->nr_keys; i++) {
		struct bkey *k = btree_node_key(b, i);
		if (k->type != KEY_TYPE_btree_ptr)
			continue;
		struct btree *child;
		if (btree_node_get(c->fs, id, k, &child, NULL))
			continue; /* unreadable: not a target */
		const struct bkfs_btree_ptr *p = bkey_val(k);
		if (!p->nr_ptrs || child->level != b->level - 1)
			continue;
		int me = (int)c->nr_nodes;
		int ret = add_node(c, child, p, false, self, i);
		if (!ret)
			ret = visit_node(c, id, child, me);
		if (ret)
			return ret;
	}
	return 0;
}

/* Every reachable, written node of every btree (pre-order). */
static int walk_nodes(struct dctx *c)
{
	if (c->nodes)
		return 0;
	for (unsigned id = 0; id < BTREE_ID_NR; id++) {
		struct btree *b;
		if (btree_root_get(c->fs, id, &b) || !b->has_loc || !c->fs->roots[id].ptr.nr_ptrs)
			continue;
		int me = (int)c->nr_nodes;
		int ret = add_node(c, b, &c->fs->roots[id].ptr, true, -1, 0);
		if (!ret)
			ret = visit_node(c, id, b, me);
		if (ret)
			return ret;
	}
	return 0;
}

static u32 nr_children(struct dctx *c, int idx)
{
	u32 n = 0;
	for (size_t i = 0; i < c->nr_nodes; i++)
		n += c->nodes[i].parent == idx;
	return n;
}

static int child_at(struct dctx *c, int parent, u32 pidx)
{
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].parent == parent && c->nodes[i].pidx == pidx)
			return (int)i;
	return -1;
}

static bool fs_btree(unsigned id)
{
	return id == BTREE_ID_extents || id == BTREE_ID_inodes || id == BTREE_ID_dirents || id == BTREE_ID_xattrs;
}

static void node_text(struct printbuf *out, const struct dnode *n)
{
	pb_printf(out, "btree %s level %u node seq %llu range ", btree_id_str(n->id), n->level,
		  (unsigned long long)n->seq);
	bpos_to_text(out, n->min);
	pb_printf(out, " .. ");
	bpos_to_text(out, n->max);
	pb_printf(out, " (%u keys%s) at", n->nr_keys, n->root ? ", root" : "");
	for (unsigned i = 0; i < n->ptr.nr_ptrs && i < BKFS_MAX_REPLICAS; i++)
		pb_printf(out, "%s dev %u sector %llu", i ? "," : "", n->ptr.ptrs[i].dev,
			  (unsigned long long)n->ptr.ptrs[i].offset);
}

/* Raw node bytes through any replica. */
static u8 *node_read(struct dctx *c, const struct bkfs_btree_ptr *p)
{
	u8 *buf = malloc(c->node_bytes);
	if (!buf)
		return NULL;
	if (bkfs_read_ptrs(c->fs, p, buf, c->node_bytes)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* Queue buf for every replica of a node. */
static int node_queue(struct dctx *c, const struct bkfs_btree_ptr *p, const u8 *buf)
{
	int ret = 0;
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS && !ret; i++)
		ret = queue_write(c, p->ptrs[i].dev, p->ptrs[i].offset << SECTOR_SHIFT, buf, c->node_bytes);
	return ret;
}

/* ---- raw key editing inside a node buffer (node_buf_*, format.h) ---- */

static struct bkfs_node_hdr *hdr(u8 *buf) { return (struct bkfs_node_hdr *)buf; }

/* The written leaf that holds the key at pos of btree id. */
static int leaf_of(struct dctx *c, unsigned id, struct bpos pos, struct bkfs_btree_ptr *out)
{
	struct btree_iter it;
	struct bkey *k;
	btree_iter_init(&it, c->fs, id, 0, pos);
	int ret = btree_iter_peek(&it, &k);
	if (ret)
		return ret;
	if (!k || !bpos_eq(k->p, pos))
		return -BKFS_E_NOENT;
	struct btree *b = btree_iter_node(&it);
	if (!b->has_loc || !b->ptr.nr_ptrs)
		return -BKFS_E_NOENT;
	*out = b->ptr;
	return 0;
}

/* Replace (nk) or delete (nk == NULL) the key at pos in its leaf on disk,
 * recomputing the node checksum. */
static int edit_leaf_key(struct dctx *c, unsigned id, struct bpos pos, const struct bkey *nk)
{
	struct bkfs_btree_ptr p;
	int ret = leaf_of(c, id, pos, &p);
	if (ret) {
		fprintf(stderr, "bkfs debug corrupt: cannot locate the leaf of the target key: %s\n",
			bkfs_strerror(ret));
		return ret;
	}
	u8 *buf = node_read(c, &p);
	if (!buf)
		return -BKFS_E_IO;
	int i = node_buf_find(buf, pos);
	if (i < 0) {
		free(buf);
		return -BKFS_E_NOENT;
	}
	if (nk)
		ret = node_buf_replace(buf, c->node_bytes, i, nk);
	else
		node_buf_delete(buf, c->node_bytes, i);
	if (!ret) {
		node_csum_set(buf);
		ret = node_queue(c, &p, buf);
	}
	free(buf);
	return ret;
}

/* Flip bytes inside the checksummed part of a node so that it no longer
 * validates (the magic stays, so it still looks like a node). */
/* Flip up to 16 bytes inside the keys of a node image and break its
 * checksum. */
static void node_damage(struct dctx *c, u8 *buf)
{
	struct bkfs_node_hdr *h = hdr(buf);
	u32 used = h->used_bytes;
	if (used > sizeof(*h) && used <= c->node_bytes) {
		u32 span = used - sizeof(*h);
		u32 at = sizeof(*h) + (u32)pick(c, span);
		u32 n = MIN(span - (at - (u32)sizeof(*h)), 16u);
		for (u32 i = 0; i < n; i++)
			buf[at + i] ^= 0xa5 | (u8)pick(c, 256);
	}
	h->csum ^= 0x5a5a5a5a; /* whatever else happened, the checksum no longer matches */
}

static int node_destroy(struct dctx *c, const struct bkfs_btree_ptr *p)
{
	u8 *buf = node_read(c, p);
	if (!buf)
		return -BKFS_E_IO;
	node_damage(c, buf);
	int ret = node_queue(c, p, buf);
	free(buf);
	return ret;
}

/* ---------------------------------------------------------------- fs objects */

static int load_dents(struct dctx *c)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	if (c->dents)
		return 0;
	for_each_btree_key(it, c->fs, BTREE_ID_dirents, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_dirent || bkey_val_bytes(k) < sizeof(struct bkfs_dirent))
			continue;
		const struct bkfs_dirent *de = bkey_val(k);
		if (de->name_len > bkey_val_bytes(k) - sizeof(*de))
			continue;
		if ((ret = grow((void **)&c->dents, &c->cap_dents, c->nr_dents, sizeof(*c->dents))))
			return ret;
		char *name = malloc(de->name_len + 1);
		if (!name)
			return -BKFS_E_NOMEM;
		memcpy(name, de->name, de->name_len);
		name[de->name_len] = 0;
		c->dents[c->nr_dents++] = (struct dent){ .dir = k->p.inode, .slot = k->p.offset, .inum = de->inum,
							 .d_type = de->d_type, .name = name };
	}
	if (!c->dents) /* an empty table still counts as loaded */
		c->dents = calloc(1, sizeof(*c->dents));
	return ret;
}

static int load_inodes(struct dctx *c)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	if (c->inodes)
		return 0;
	for_each_btree_key(it, c->fs, BTREE_ID_inodes, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_inode || bkey_val_bytes(k) != sizeof(struct bkfs_inode))
			continue;
		if ((ret = grow((void **)&c->inodes, &c->cap_inodes, c->nr_inodes, sizeof(*c->inodes))))
			return ret;
		c->inodes[c->nr_inodes].inum = k->p.offset;
		memcpy(&c->inodes[c->nr_inodes].v, bkey_val(k), sizeof(struct bkfs_inode));
		c->nr_inodes++;
	}
	if (!c->inodes)
		c->inodes = calloc(1, sizeof(*c->inodes));
	return ret;
}

static struct dinode *inode_find(struct dctx *c, u64 inum)
{
	size_t lo = 0, hi = c->nr_inodes;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->inodes[mid].inum == inum)
			return &c->inodes[mid];
		if (c->inodes[mid].inum < inum)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* first dirent of dir (dents are sorted by (dir, slot)) */
static size_t dents_of(struct dctx *c, u64 dir)
{
	size_t lo = 0, hi = c->nr_dents;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->dents[mid].dir < dir)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct dent *dent_of_inum(struct dctx *c, u64 inum)
{
	for (size_t i = 0; i < c->nr_dents; i++)
		if (c->dents[i].inum == inum)
			return &c->dents[i];
	return NULL;
}

static bool is_dir(struct dctx *c, u64 inum)
{
	struct dinode *in = inode_find(c, inum);
	return in && S_ISDIR(in->v.mode);
}

/* Path of an inode through its first dirent (for messages). */
static void path_of(struct dctx *c, u64 inum, struct printbuf *out)
{
	char *parts[64];
	unsigned n = 0;
	while (inum != BKFS_ROOT_INO && n < 64) {
		struct dent *d = dent_of_inum(c, inum);
		if (!d)
			break;
		parts[n++] = d->name;
		inum = d->dir;
	}
	if (!n)
		pb_printf(out, "/");
	while (n)
		pb_printf(out, "/%s", parts[--n]);
}

static void aff_inum(struct dctx *c, u64 inum)
{
	for (size_t i = 0; i < c->nr_aff_inums; i++)
		if (c->aff_inums[i] == inum)
			return;
	if (!grow((void **)&c->aff_inums, &c->cap_aff_inums, c->nr_aff_inums, sizeof(u64)))
		c->aff_inums[c->nr_aff_inums++] = inum;
}

static void aff_dirent(struct dctx *c, struct bpos p)
{
	if (!grow((void **)&c->aff_dirents, &c->cap_aff_dirents, c->nr_aff_dirents, sizeof(struct bpos)))
		c->aff_dirents[c->nr_aff_dirents++] = p;
}

static bool in_aff_inums(struct dctx *c, u64 inum)
{
	for (size_t i = 0; i < c->nr_aff_inums; i++)
		if (c->aff_inums[i] == inum)
			return true;
	return false;
}

static bool in_aff_dirents(struct dctx *c, u64 dir, u64 slot)
{
	for (size_t i = 0; i < c->nr_aff_dirents; i++)
		if (c->aff_dirents[i].inode == dir && c->aff_dirents[i].offset == slot)
			return true;
	return false;
}

static void list_tree(struct dctx *c, u64 dir, char *path, size_t plen, bool affected, unsigned depth)
{
	if (depth > 64)
		return;
	for (size_t i = dents_of(c, dir); i < c->nr_dents && c->dents[i].dir == dir; i++) {
		struct dent *d = &c->dents[i];
		size_t nl = strlen(d->name);
		if (plen + 1 + nl >= 4096)
			continue;
		path[plen] = '/';
		memcpy(path + plen + 1, d->name, nl + 1);
		bool aff = affected || in_aff_dirents(c, d->dir, d->slot) || in_aff_inums(c, d->inum);
		if (aff)
			pb_printf(&c->affects, "affects: %llu %s\n", (unsigned long long)d->inum, path);
		if (d->inum != dir && is_dir(c, d->inum) && d->d_type == DT_DIR)
			list_tree(c, d->inum, path, plen + 1 + nl, aff, depth + 1);
		path[plen] = 0;
	}
}

/* Turn the affected inodes/dirents into "affects:" lines (fs must be open,
 * before the damage). */
static int compute_affects(struct dctx *c)
{
	int ret;
	if (!c->nr_aff_inums && !c->nr_aff_dirents)
		return 0;
	if ((ret = load_dents(c)) || (ret = load_inodes(c)))
		return ret;
	char *path = malloc(4096);
	if (!path)
		return -BKFS_E_NOMEM;
	path[0] = 0;
	if (in_aff_inums(c, BKFS_ROOT_INO))
		pb_printf(&c->affects, "affects: %llu /\n", (unsigned long long)BKFS_ROOT_INO);
	list_tree(c, BKFS_ROOT_INO, path, 0, false, 0);
	free(path);
	return 0;
}

/* ---- candidate files ---- */

/* regular files with one link and one dirent; min_size in bytes */
static size_t file_candidates(struct dctx *c, u64 min_size, struct dent ***out)
{
	struct dent **v = NULL;
	size_t nr = 0, cap = 0;
	for (size_t i = 0; i < c->nr_dents; i++) {
		struct dent *d = &c->dents[i];
		struct dinode *in = inode_find(c, d->inum);
		if (!in || !S_ISREG(in->v.mode) || in->v.nlink != 1 || in->v.size < min_size || d->d_type != DT_REG)
			continue;
		if (grow((void **)&v, &cap, nr, sizeof(*v)))
			break;
		v[nr++] = d;
	}
	*out = v;
	return nr;
}

/* ---------------------------------------------------------------- engine helpers */

static int inode_lookup(struct bkfs_fs *fs, u64 inum, struct bkey_buf *kb)
{
	return btree_lookup(fs, BTREE_ID_inodes, POS(0, inum), kb);
}

static int commit_one(struct bkfs_fs *fs, unsigned id, const struct bkey *k)
{
	struct trans t;
	trans_init(&t, fs);
	int ret = trans_update(&t, id, k);
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return ret;
}

static int report_fail(const char *what, int ret)
{
	fprintf(stderr, "bkfs debug corrupt: %s: %s\n", what, bkfs_strerror(ret));
	return ret;
}

/* ================================================================ kinds */

struct kind {
	const char *name;
	const char *expect;
	const char *desc;
	int (*fn)(struct dctx *c);
};

/* ---- btree nodes and topology ---- */

/* Everything the keys of a leaf of a filesystem btree name may change. */
static int leaf_affects(struct dctx *c, const struct dnode *t)
{
	u8 *buf = node_read(c, &t->ptr);
	if (!buf)
		return -BKFS_E_IO;
	u64 last = ~0ull;
	for (u32 i = 0; i < hdr(buf)->nr_keys; i++) {
		struct bkey *k = node_buf_key(buf, i);
		if (t->id == BTREE_ID_dirents)
			aff_dirent(c, k->p);
		else if (t->id == BTREE_ID_inodes)
			aff_inum(c, k->p.offset);
		else if (fs_btree(t->id) && k->p.inode != last)
			aff_inum(c, k->p.inode);
		last = k->p.inode;
	}
	free(buf);
	return 0;
}

static int k_node_unreadable(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[4096], n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < ARRAY_SIZE(cand); i++)
		if (!c->nodes[i].level && !c->nodes[i].root && fs_btree(c->nodes[i].id) && c->nodes[i].nr_keys)
			cand[n++] = i;
	if (!n) {
		no_target(c, "no leaf below an interior node in the extents, inodes, dirents or xattrs btrees");
		return NO_TARGET;
	}
	struct dnode *t = &c->nodes[cand[pick(c, n)]];
	node_text(&c->damaged, t);
	/* the keys in this node are lost */
	if ((ret = leaf_affects(c, t)))
		return ret;
	pb_printf(&c->lost, "the %u keys of the node, unless a node scan finds another copy", t->nr_keys);
	return node_destroy(c, &t->ptr);
}

/* One copy of a node with two or more: the first, the one a read tries
 * first, so the default check meets it. */
static int k_node_copy_bad(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[4096], n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < ARRAY_SIZE(cand); i++)
		if (c->nodes[i].ptr.nr_ptrs >= 2 && c->fs->devs[c->nodes[i].ptr.ptrs[0].dev].bd)
			cand[n++] = i;
	if (!n) {
		no_target(c, "no btree node with two copies (format with --metadata-replicas 2)");
		return NO_TARGET;
	}
	struct dnode *t = &c->nodes[cand[pick(c, n)]];
	const struct bkfs_ptr *p = &t->ptr.ptrs[0];
	node_text(&c->damaged, t);
	pb_printf(&c->damaged, "; copy 0 damaged");
	pb_printf(&c->lost, "none: the node is read from another copy");
	u8 *buf = node_read(c, &t->ptr);
	if (!buf)
		return -BKFS_E_IO;
	node_damage(c, buf);
	ret = queue_write(c, p->dev, p->offset << SECTOR_SHIFT, buf, c->node_bytes);
	free(buf);
	return ret;
}

static int k_root_unreadable_scan(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[BTREE_ID_NR], n = 0;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].root && c->nodes[i].level && fs_btree(c->nodes[i].id))
			cand[n++] = i;
	if (!n) {
		no_target(c, "no extents, inodes, dirents or xattrs btree has more than one level");
		return NO_TARGET;
	}
	struct dnode *t = &c->nodes[cand[pick(c, n)]];
	node_text(&c->damaged, t);
	pb_printf(&c->lost, "none: every leaf is found by the node scan");
	return node_destroy(c, &t->ptr);
}

/* Clear the checksum of every valid node of btree id the scan could find
 * (old copies left behind by copy-on-write), so that it finds nothing. */
static int destroy_scannable(struct dctx *c, unsigned id, unsigned *count)
{
	struct bkfs_fs *fs = c->fs;
	u8 *buf = malloc(c->node_bytes);
	u64 magic = sb_node_magic(&fs->sb);
	int ret = 0;
	if (!buf)
		return -BKFS_E_NOMEM;
	for (unsigned d = 0; d < fs->nr_devs && !ret; d++) {
		struct blockdev *bd = fs->devs[d].bd;
		struct bkfs_member *m = &fs->sb.members[d];
		if (!bd)
			continue;
		u64 first = (u64)m->first_bucket * c->bucket_sectors, end = m->nbuckets * c->bucket_sectors;
		for (u64 s = first; s + fs->sb.btree_node_size <= end; s += fs->sb.btree_node_size) {
			if (!member_bitmap_test(m, s, fs->sb.btree_node_size))
				continue;
			if (bd_read(bd, buf, s << SECTOR_SHIFT, c->node_bytes))
				continue;
			struct bkfs_node_hdr *h = hdr(buf);
			if (h->magic != magic || h->btree_id != id)
				continue;
			if (node_validate(buf, c->node_bytes, magic, NULL))
				continue;
			h->csum ^= 0x5a5a5a5a;
			if ((ret = queue_write(c, d, s << SECTOR_SHIFT, buf, c->node_bytes)))
				break;
			(*count)++;
		}
	}
	free(buf);
	return ret;
}

static int k_root_unreadable_empty(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[BTREE_ID_NR], n = 0;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].root && !c->nodes[i].level && !c->nodes[i].nr_keys &&
		    c->nodes[i].id != BTREE_ID_alloc && c->nodes[i].id != BTREE_ID_accounting)
			cand[n++] = i;
	if (!n) {
		no_target(c, "no empty btree (e.g. reflink or stripes)");
		return NO_TARGET;
	}
	struct dnode *t = &c->nodes[cand[pick(c, n)]];
	node_text(&c->damaged, t);
	unsigned count = 0;
	if ((ret = destroy_scannable(c, t->id, &count)))
		return ret;
	pb_printf(&c->damaged, "; %u on-disk copies of %s nodes made unreadable", count, btree_id_str(t->id));
	pb_printf(&c->lost, "none: the btree was empty");
	return node_destroy(c, &t->ptr);
}

/* level-1 nodes with at least min children, in btrees accepted by ok() */
static size_t level1_nodes(struct dctx *c, u32 min, bool (*ok)(unsigned), size_t *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < max; i++)
		if (c->nodes[i].level == 1 && ok(c->nodes[i].id) && nr_children(c, (int)i) >= min &&
		    c->nodes[i].nr_keys == nr_children(c, (int)i))
			out[n++] = i;
	return n;
}

static bool any_btree(unsigned id) { (void)id; return true; }

static int k_topology_gap(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[1024];
	size_t n = level1_nodes(c, 3, fs_btree, cand, ARRAY_SIZE(cand));
	if (!n) {
		no_target(c, "no level-1 node with three or more children in the extents, inodes, dirents or xattrs btrees");
		return NO_TARGET;
	}
	size_t pi = cand[pick(c, n)];
	struct dnode *p = &c->nodes[pi];
	u32 idx = 1 + (u32)pick(c, p->nr_keys - 2);
	int ci = child_at(c, (int)pi, idx);
	if (ci < 0)
		return -BKFS_E_CORRUPT;
	pb_printf(&c->damaged, "pointer %u of ", idx);
	node_text(&c->damaged, p);
	pb_printf(&c->damaged, " removed; orphaned child: ");
	node_text(&c->damaged, &c->nodes[ci]);
	pb_printf(&c->lost, "none: the orphaned node is found by the node scan");
	u8 *buf = node_read(c, &p->ptr);
	if (!buf)
		return -BKFS_E_IO;
	node_buf_delete(buf, c->node_bytes, idx);
	node_csum_set(buf);
	ret = node_queue(c, &p->ptr, buf);
	free(buf);
	return ret;
}

/* Last child of a level-1 node ends short of the parent: the child's header
 * max_key and its pointer are both moved back to its last key. */
static int k_topology_bad_max(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[1024], n = 0;
	int child[1024];
	size_t l1[1024];
	size_t nl = level1_nodes(c, 1, any_btree, l1, ARRAY_SIZE(l1));
	for (size_t i = 0; i < nl; i++) {
		struct dnode *p = &c->nodes[l1[i]];
		int ci = child_at(c, (int)l1[i], p->nr_keys - 1);
		if (ci < 0 || !c->nodes[ci].nr_keys)
			continue;
		cand[n] = l1[i];
		child[n++] = ci;
	}
	/* keep only those whose last child's last key is short of its max */
	size_t m = 0;
	struct bpos lastk[1024];
	for (size_t i = 0; i < n; i++) {
		struct dnode *ch = &c->nodes[child[i]];
		u8 *buf = node_read(c, &ch->ptr);
		if (!buf)
			continue;
		struct bpos lk = node_buf_key(buf, hdr(buf)->nr_keys - 1)->p;
		free(buf);
		if (bpos_cmp(lk, ch->max) < 0) {
			cand[m] = cand[i];
			child[m] = child[i];
			lastk[m++] = lk;
		}
	}
	if (!m) {
		no_target(c, "no level-1 node whose last child ends after its last key");
		return NO_TARGET;
	}
	size_t sel = pick(c, m);
	struct dnode *p = &c->nodes[cand[sel]], *ch = &c->nodes[child[sel]];
	struct bpos nmax = lastk[sel];
	node_text(&c->damaged, ch);
	pb_printf(&c->damaged, " (last child of ");
	node_text(&c->damaged, p);
	pb_printf(&c->damaged, "): max_key moved back to ");
	bpos_to_text(&c->damaged, nmax);
	pb_printf(&c->lost, "none: no key lay beyond the new max_key");

	u8 *cb = node_read(c, &ch->ptr), *pb = node_read(c, &p->ptr);
	if (!cb || !pb) {
		free(cb);
		free(pb);
		return -BKFS_E_IO;
	}
	hdr(cb)->max_key = nmax;
	node_csum_set(cb);
	struct bkey_buf kb;
	struct bkey *pk = node_buf_key(pb, p->nr_keys - 1);
	memcpy(&kb, pk, bkey_bytes(pk));
	kb.k.p = nmax;
	ret = node_buf_replace(pb, c->node_bytes, p->nr_keys - 1, &kb.k);
	if (!ret) {
		node_csum_set(pb);
		ret = node_queue(c, &ch->ptr, cb);
	}
	if (!ret)
		ret = node_queue(c, &p->ptr, pb);
	free(cb);
	free(pb);
	return ret;
}

struct sib_pair { size_t parent; int prev, cur; };

static size_t sibling_pairs(struct dctx *c, bool cur_newer, struct sib_pair *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < max; i++) {
		struct dnode *p = &c->nodes[i];
		if (p->level != 1 || p->nr_keys != nr_children(c, (int)i))
			continue;
		for (u32 j = 1; j < p->nr_keys && n < max; j++) {
			int a = child_at(c, (int)i, j - 1), b = child_at(c, (int)i, j);
			if (a < 0 || b < 0 || !c->nodes[a].nr_keys || !c->nodes[b].nr_keys)
				continue;
			if (cur_newer != (c->nodes[b].seq > c->nodes[a].seq))
				continue;
			out[n++] = (struct sib_pair){ i, a, b };
		}
	}
	return n;
}

/* The newer of two siblings also holds the older one's keys and claims its
 * range: the older node is entirely overwritten by the next node. */
static int k_topology_overlap(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	struct sib_pair cand[2048], fit[2048];
	size_t n = sibling_pairs(c, true, cand, ARRAY_SIZE(cand)), m = 0;
	u32 room = c->node_bytes - sizeof(struct bkfs_node_hdr);
	for (size_t i = 0; i < n; i++)
		if (c->nodes[cand[i].prev].used + c->nodes[cand[i].cur].used <= room)
			fit[m++] = cand[i];
	if (!n) {
		no_target(c, "no pair of sibling leaves where the next one is newer");
		return NO_TARGET;
	}
	/* prefer a pair whose keys fit in one node: nothing is lost then */
	bool merge = m > 0;
	struct sib_pair s = merge ? fit[pick(c, m)] : cand[pick(c, n)];
	struct dnode *p = &c->nodes[s.parent], *a = &c->nodes[s.prev], *b = &c->nodes[s.cur];
	node_text(&c->damaged, b);
	if (merge) {
		pb_printf(&c->damaged, " now also holds the keys and range of its older predecessor ");
		node_text(&c->damaged, a);
		pb_printf(&c->lost, "none: the newer node holds every key of the older one");
	} else {
		pb_printf(&c->damaged, " now claims the range of its older predecessor ");
		node_text(&c->damaged, a);
		pb_printf(&c->damaged, " (no sibling pair fits in one node, so its keys are not copied)");
		pb_printf(&c->lost, "the %u keys of the older node", a->nr_keys);
		if ((ret = leaf_affects(c, a)))
			return ret;
	}

	u8 *ab = node_read(c, &a->ptr), *bb = node_read(c, &b->ptr), *pb = node_read(c, &p->ptr);
	if (!ab || !bb || !pb) {
		ret = -BKFS_E_IO;
		goto out;
	}
	{
		/* b' = a's keys (when they fit) then b's keys */
		u32 akeys = merge ? hdr(ab)->used_bytes - sizeof(struct bkfs_node_hdr) : 0;
		u32 bkeys = hdr(bb)->used_bytes - sizeof(struct bkfs_node_hdr);
		u8 *nb = calloc(1, c->node_bytes);
		if (!nb) {
			ret = -BKFS_E_NOMEM;
			goto out;
		}
		memcpy(nb, bb, sizeof(struct bkfs_node_hdr));
		memcpy(nb + sizeof(struct bkfs_node_hdr), ab + sizeof(struct bkfs_node_hdr), akeys);
		memcpy(nb + sizeof(struct bkfs_node_hdr) + akeys, bb + sizeof(struct bkfs_node_hdr), bkeys);
		hdr(nb)->nr_keys = (merge ? hdr(ab)->nr_keys : 0) + hdr(bb)->nr_keys;
		hdr(nb)->used_bytes = sizeof(struct bkfs_node_hdr) + akeys + bkeys;
		hdr(nb)->min_key = a->min;
		if (merge)
			hdr(nb)->journal_seq = MAX(hdr(ab)->journal_seq, hdr(bb)->journal_seq);
		node_csum_set(nb);
		struct bkey_buf kb;
		struct bkey *pk = node_buf_key(pb, b->pidx);
		memcpy(&kb, pk, bkey_bytes(pk));
		((struct bkfs_btree_ptr *)bkey_val(&kb.k))->min_key = a->min;
		ret = node_buf_replace(pb, c->node_bytes, b->pidx, &kb.k);
		if (!ret) {
			node_csum_set(pb);
			ret = node_queue(c, &b->ptr, nb);
		}
		if (!ret)
			ret = node_queue(c, &p->ptr, pb);
		free(nb);
	}
out:
	free(ab);
	free(bb);
	free(pb);
	return ret;
}

/* Below a level-2 node, a level-1 node P whose next sibling L is older gets
 * L's first child's range: P's max_key (header and pointer) moves up to that
 * child's end. L is not newer, so its start is trimmed to follow P; P's
 * missing range is filled from the scanned leaves (that child); and L's first
 * child, now entirely before L's start, is overwritten by the previous node.
 * Nothing is lost: the child moves from L to P. */
static int k_topology_overlap_prev(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	struct sib_pair cand[1024];
	size_t n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < ARRAY_SIZE(cand); i++) {
		struct dnode *p = &c->nodes[i];
		if (p->level != 2 || p->nr_keys != nr_children(c, (int)i))
			continue;
		for (u32 j = 1; j < p->nr_keys && n < ARRAY_SIZE(cand); j++) {
			int a = child_at(c, (int)i, j - 1), b = child_at(c, (int)i, j);
			if (a < 0 || b < 0 || c->nodes[a].seq <= c->nodes[b].seq || c->nodes[b].nr_keys < 2 ||
			    c->nodes[b].nr_keys != nr_children(c, b) || child_at(c, b, 0) < 0)
				continue;
			cand[n++] = (struct sib_pair){ i, a, b };
		}
	}
	if (!n) {
		no_target(c, "no level-2 node with a level-1 child older than its predecessor (three-level btrees: "
			     "format with small nodes, e.g. --btree-node-size 4k)");
		return NO_TARGET;
	}
	struct sib_pair s = cand[pick(c, n)];
	struct dnode *gp = &c->nodes[s.parent], *a = &c->nodes[s.prev], *b = &c->nodes[s.cur];
	struct dnode *first = &c->nodes[child_at(c, s.cur, 0)];
	struct bpos x = first->max;
	node_text(&c->damaged, a);
	pb_printf(&c->damaged, ": max_key moved up to ");
	bpos_to_text(&c->damaged, x);
	pb_printf(&c->damaged, ", over the first child ");
	node_text(&c->damaged, first);
	pb_printf(&c->damaged, " of its older next sibling ");
	node_text(&c->damaged, b);
	pb_printf(&c->lost, "none: the child is found by the node scan and moves to the previous node");
	u8 *ab = node_read(c, &a->ptr), *pb = node_read(c, &gp->ptr);
	if (!ab || !pb) {
		ret = -BKFS_E_IO;
		goto out;
	}
	hdr(ab)->max_key = x;
	node_csum_set(ab);
	struct bkey_buf kb;
	struct bkey *pk = node_buf_key(pb, a->pidx);
	memcpy(&kb, pk, bkey_bytes(pk));
	kb.k.p = x;
	ret = node_buf_replace(pb, c->node_bytes, a->pidx, &kb.k);
	if (!ret) {
		node_csum_set(pb);
		ret = node_queue(c, &a->ptr, ab);
	}
	if (!ret)
		ret = node_queue(c, &gp->ptr, pb);
out:
	free(ab);
	free(pb);
	return ret;
}

/* A node's min_key (header and pointer) moved back into its newer
 * predecessor's range: it must be trimmed back (bad min_key). */
static int k_topology_overlap_trim(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	struct sib_pair cand[2048];
	size_t n = sibling_pairs(c, false, cand, ARRAY_SIZE(cand)), m = 0;
	for (size_t i = 0; i < n; i++)
		if (c->nodes[cand[i].prev].nr_keys >= 2 && c->nodes[cand[i].prev].seq > c->nodes[cand[i].cur].seq)
			cand[m++] = cand[i];
	if (!m) {
		no_target(c, "no pair of sibling leaves where the previous one is newer");
		return NO_TARGET;
	}
	struct sib_pair s = cand[pick(c, m)];
	struct dnode *p = &c->nodes[s.parent], *a = &c->nodes[s.prev], *b = &c->nodes[s.cur];
	u8 *ab = node_read(c, &a->ptr), *bb = node_read(c, &b->ptr), *pb = node_read(c, &p->ptr);
	if (!ab || !bb || !pb) {
		ret = -BKFS_E_IO;
		goto out;
	}
	{
		/* new min: a key of the predecessor other than its first */
		u32 ki = 1 + (u32)pick(c, hdr(ab)->nr_keys - 1);
		struct bpos nmin = node_buf_key(ab, ki)->p;
		node_text(&c->damaged, b);
		pb_printf(&c->damaged, ": min_key moved back to ");
		bpos_to_text(&c->damaged, nmin);
		pb_printf(&c->damaged, ", inside its newer predecessor ");
		node_text(&c->damaged, a);
		pb_printf(&c->lost, "none: the node has no keys in the overlapping range");
		hdr(bb)->min_key = nmin;
		node_csum_set(bb);
		struct bkey_buf kb;
		struct bkey *pk = node_buf_key(pb, b->pidx);
		memcpy(&kb, pk, bkey_bytes(pk));
		((struct bkfs_btree_ptr *)bkey_val(&kb.k))->min_key = nmin;
		ret = node_buf_replace(pb, c->node_bytes, b->pidx, &kb.k);
		if (!ret) {
			node_csum_set(pb);
			ret = node_queue(c, &b->ptr, bb);
		}
		if (!ret)
			ret = node_queue(c, &p->ptr, pb);
	}
out:
	free(ab);
	free(bb);
	free(pb);
	return ret;
}

/* A root node's header range narrowed to its keys: min_key moved up to its
 * first key, or (a leaf root) max_key moved back to its last key. The root
 * pointer (in the journal's checkpoint) is left alone: a root's range is the
 * whole key space, whatever its header says. */
static int root_range_kind(struct dctx *c, bool max)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[BTREE_ID_NR], n = 0;
	struct bpos to[BTREE_ID_NR];
	for (size_t i = 0; i < c->nr_nodes && n < ARRAY_SIZE(cand); i++) {
		struct dnode *t = &c->nodes[i];
		if (!t->root || !t->nr_keys || (max && t->level))
			continue;
		u8 *buf = node_read(c, &t->ptr);
		if (!buf)
			continue;
		struct bpos p = node_buf_key(buf, max ? hdr(buf)->nr_keys - 1 : 0)->p;
		free(buf);
		if (max ? bpos_eq(p, POS_MAX) : bpos_eq(p, POS_MIN))
			continue;
		to[n] = p;
		cand[n++] = i;
	}
	if (!n) {
		no_target(c, max ? "no leaf root with a key before POS_MAX" : "no root with a key after POS_MIN");
		return NO_TARGET;
	}
	size_t sel = pick(c, n);
	struct dnode *t = &c->nodes[cand[sel]];
	node_text(&c->damaged, t);
	pb_printf(&c->damaged, ": header %s moved to its %s key ", max ? "max_key" : "min_key", max ? "last" : "first");
	bpos_to_text(&c->damaged, to[sel]);
	pb_printf(&c->lost, "none: no key lies outside the new range");
	u8 *buf = node_read(c, &t->ptr);
	if (!buf)
		return -BKFS_E_IO;
	if (max)
		hdr(buf)->max_key = to[sel];
	else
		hdr(buf)->min_key = to[sel];
	node_csum_set(buf);
	ret = node_queue(c, &t->ptr, buf);
	free(buf);
	return ret;
}

static int k_root_bad_min(struct dctx *c) { return root_range_kind(c, false); }
static int k_root_bad_max(struct dctx *c) { return root_range_kind(c, true); }

/* The level-1 root of the alloc btree loses every child pointer, and no
 * node of the alloc btree is left for the scan to find: the interior node is
 * empty and cannot be refilled, so the btree is emptied. Alloc keys are
 * derived state: check_allocations recreates every one of them. */
static int k_interior_node_empty(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	struct dnode *t = NULL;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].root && c->nodes[i].level == 1 && c->nodes[i].id == BTREE_ID_alloc)
			t = &c->nodes[i];
	if (!t) {
		no_target(c, "the alloc btree's root is not at level 1");
		return NO_TARGET;
	}
	unsigned count = 0;
	/* first every scannable alloc node (the root included), then the root
	 * rewritten empty: queued writes land in order */
	if ((ret = destroy_scannable(c, BTREE_ID_alloc, &count)))
		return ret;
	node_text(&c->damaged, t);
	pb_printf(&c->damaged, ": every child pointer removed; %u on-disk alloc btree nodes made unreadable", count);
	pb_printf(&c->lost, "none: alloc keys are rebuilt from the other btrees");
	u8 *buf = node_read(c, &t->ptr);
	if (!buf)
		return -BKFS_E_IO;
	hdr(buf)->nr_keys = 0;
	hdr(buf)->used_bytes = sizeof(struct bkfs_node_hdr);
	memset(buf + sizeof(struct bkfs_node_hdr), 0, c->node_bytes - sizeof(struct bkfs_node_hdr));
	node_csum_set(buf);
	ret = node_queue(c, &t->ptr, buf);
	free(buf);
	return ret;
}

/* ---- pointers ---- */

struct bucket_ref { u64 key; u32 n; };

static u64 bkey_of(unsigned dev, u64 bucket) { return (u64)dev << 56 | bucket; }

static int u64_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

/* pointer counts per bucket over the extents and reflink btrees (sorted keys) */
static int bucket_refs(struct dctx *c, u64 **out, size_t *nr)
{
	u64 *v = NULL;
	size_t n = 0, cap = 0;
	static const unsigned ids[] = { BTREE_ID_extents, BTREE_ID_reflink };
	for (unsigned x = 0; x < ARRAY_SIZE(ids); x++) {
		struct btree_iter it;
		struct bkey *k;
		int ret;
		for_each_btree_key(it, c->fs, ids[x], POS_MIN, k, ret) {
			struct bkfs_ptr *ptrs;
			unsigned np = bkey_ptrs(k, &ptrs);
			for (unsigned i = 0; i < np; i++) {
				if (grow((void **)&v, &cap, n, sizeof(u64))) {
					free(v);
					return -BKFS_E_NOMEM;
				}
				v[n++] = bkey_of(ptrs[i].dev, ptrs[i].offset / c->bucket_sectors);
			}
		}
		if (ret) {
			free(v);
			return ret;
		}
	}
	qsort(v, n, sizeof(u64), u64_cmp);
	*out = v;
	*nr = n;
	return 0;
}

static size_t refs_of(const u64 *v, size_t n, u64 key)
{
	size_t lo = 0, hi = n, cnt = 0;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + cnt < n && v[lo + cnt] == key)
		cnt++;
	return cnt;
}

struct ext_target {
	struct bkey_buf k;
	unsigned ptr;
};

/* A seeded extent key (type extent) whose first pointer is a plain dirty
 * one, or with striped an erasure-coded one; sole = that pointer's bucket
 * holds no other pointer (prefer those, fall back to any when none). */
static int pick_extent_ptr(struct dctx *c, bool prefer_sole, bool striped, struct ext_target *t, bool *sole_out)
{
	u64 *refs = NULL;
	size_t nrefs = 0;
	int ret;
	if (prefer_sole && (ret = bucket_refs(c, &refs, &nrefs)))
		return ret;
	struct bpos *all = NULL, *sole = NULL;
	size_t na = 0, ca = 0, ns = 0, cs = 0;
	struct btree_iter it;
	struct bkey *k;
	for_each_btree_key(it, c->fs, BTREE_ID_extents, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_extent)
			continue;
		struct bkfs_ptr *ptrs;
		unsigned np = bkey_ptrs(k, &ptrs);
		if (!np || (ptrs[0].flags & (PTR_CACHED | PTR_HAS_STRIPE)) != (striped ? PTR_HAS_STRIPE : 0))
			continue;
		if (!grow((void **)&all, &ca, na, sizeof(*all)))
			all[na++] = k->p;
		if (prefer_sole && refs_of(refs, nrefs, bkey_of(ptrs[0].dev, ptrs[0].offset / c->bucket_sectors)) == 1 &&
		    !grow((void **)&sole, &cs, ns, sizeof(*sole)))
			sole[ns++] = k->p;
	}
	free(refs);
	if (!ret && !na)
		ret = -BKFS_E_NOENT;
	if (!ret) {
		struct bpos p = ns ? sole[pick(c, ns)] : all[pick(c, na)];
		*sole_out = ns > 0;
		ret = btree_lookup(c->fs, BTREE_ID_extents, p, &t->k);
		t->ptr = 0;
	}
	free(all);
	free(sole);
	return ret;
}

static int pick_extent(struct dctx *c, bool prefer_sole, struct ext_target *t, bool *sole_out)
{
	return pick_extent_ptr(c, prefer_sole, false, t, sole_out);
}

static void ext_damaged_text(struct dctx *c, struct ext_target *t, const char *what)
{
	struct bkfs_ptr *ptrs;
	bkey_ptrs(&t->k.k, &ptrs);
	pb_printf(&c->damaged, "extent of inode %llu ending at sector %llu (%u sectors), pointer ",
		  (unsigned long long)t->k.k.p.inode, (unsigned long long)t->k.k.p.offset, t->k.k.size);
	ptr_to_text(&c->damaged, &ptrs[t->ptr]);
	pb_printf(&c->damaged, " (bucket %llu): %s", (unsigned long long)(ptrs[t->ptr].offset / c->bucket_sectors), what);
	load_dents(c);
	load_inodes(c);
	pb_printf(&c->damaged, "; file ");
	path_of(c, t->k.k.p.inode, &c->damaged);
}

enum ptr_edit { PE_GEN_UP, PE_GEN_DOWN, PE_DEV, PE_BUCKET, PE_TOO_STALE, PE_BTREE_BUCKET, PE_JOURNAL_BUCKET };

static int ptr_kind(struct dctx *c, enum ptr_edit e)
{
	struct ext_target t;
	bool sole = false;
	int ret = pick_extent(c, e == PE_GEN_UP, &t, &sole);
	if (ret == -BKFS_E_NOENT) {
		no_target(c, "no extent with data pointers (only inline data?)");
		return NO_TARGET;
	}
	if (ret)
		return ret;
	struct ext_target orig = t;
	struct bkfs_ptr *ptrs;
	bkey_ptrs(&t.k.k, &ptrs);
	struct bkfs_ptr *p = &ptrs[t.ptr];
	char what[160];
	switch (e) {
	case PE_GEN_UP:
		snprintf(what, sizeof(what), "gen %u -> %u (newer than its bucket)", p->gen, (u8)(p->gen + 1));
		p->gen++;
		if (sole)
			pb_printf(&c->lost, "none: the bucket holds only this extent, it adopts the pointer's gen");
		else
			pb_printf(&c->lost, "other extents in the bucket may be dropped (no bucket held a single extent)");
		break;
	case PE_GEN_DOWN:
		snprintf(what, sizeof(what), "gen %u -> %u (older than its bucket: stale)", p->gen, (u8)(p->gen - 1));
		p->gen--;
		pb_printf(&c->lost, "the extent's data (%u sectors)", t.k.k.size);
		break;
	case PE_TOO_STALE:
		snprintf(what, sizeof(what), "gen %u -> %u (100 generations older than its bucket)", p->gen,
			 (u8)(p->gen - 100));
		p->gen -= 100;
		pb_printf(&c->lost, "the extent's data (%u sectors)", t.k.k.size);
		break;
	case PE_DEV:
		if (c->nr_devs >= 7) {
			no_target(c, "device 7 exists in this filesystem");
			return NO_TARGET;
		}
		snprintf(what, sizeof(what), "device %u -> 7 (no such member)", p->dev);
		p->dev = 7;
		pb_printf(&c->lost, "the extent's data (%u sectors)", t.k.k.size);
		break;
	case PE_BUCKET: {
		u64 nb = c->sb.members[p->dev].nbuckets;
		u64 off = (nb + pick(c, 1000)) * c->bucket_sectors + p->offset % c->bucket_sectors;
		snprintf(what, sizeof(what), "offset %llu -> %llu (bucket %llu, the device has %llu)",
			 (unsigned long long)p->offset, (unsigned long long)off,
			 (unsigned long long)(off / c->bucket_sectors), (unsigned long long)nb);
		p->offset = off;
		pb_printf(&c->lost, "the extent's data (%u sectors)", t.k.k.size);
		break;
	}
	case PE_BTREE_BUCKET: {
		/* a bucket holding nodes of the alloc btree, same device */
		if ((ret = walk_nodes(c)))
			return ret;
		size_t cand[1024], n = 0;
		for (size_t i = 0; i < c->nr_nodes && n < ARRAY_SIZE(cand); i++)
			if (c->nodes[i].id == BTREE_ID_alloc && c->nodes[i].ptr.ptrs[0].dev == p->dev)
				cand[n++] = i;
		if (!n) {
			no_target(c, "no alloc btree node on the extent's device");
			return NO_TARGET;
		}
		const struct bkfs_ptr *np = &c->nodes[cand[pick(c, n)]].ptr.ptrs[0];
		u64 b = np->offset / c->bucket_sectors;
		u32 len = t.k.k.size + bkey_extent(&t.k.k)->offset;
		u64 off = b * c->bucket_sectors + (len < c->bucket_sectors ? pick(c, c->bucket_sectors - len) : 0);
		snprintf(what, sizeof(what), "offset %llu -> %llu, gen %u -> %u (into btree bucket %llu)",
			 (unsigned long long)p->offset, (unsigned long long)off, p->gen, np->gen,
			 (unsigned long long)b);
		p->offset = off;
		p->gen = np->gen;
		pb_printf(&c->lost, "the extent's data (%u sectors)", t.k.k.size);
		break;
	}
	case PE_JOURNAL_BUCKET: {
		/* a journal bucket of the same device, with that bucket's gen */
		const struct bkfs_member *m = &c->sb.members[p->dev];
		if (!m->journal_nr_buckets) {
			no_target(c, "no journal bucket on the extent's device");
			return NO_TARGET;
		}
		u64 b = m->journal_bucket_start + pick(c, m->journal_nr_buckets);
		struct bkey_buf ak;
		if ((ret = btree_lookup(c->fs, BTREE_ID_alloc, POS(p->dev, b), &ak))) {
			no_target(c, "journal bucket %llu has no alloc key", (unsigned long long)b);
			return NO_TARGET;
		}
		u8 gen = ((const struct bkfs_alloc *)bkey_val(&ak.k))->gen;
		u32 len = t.k.k.size + bkey_extent(&t.k.k)->offset;
		u64 off = b * c->bucket_sectors + (len < c->bucket_sectors ? pick(c, c->bucket_sectors - len) : 0);
		snprintf(what, sizeof(what), "offset %llu -> %llu, gen %u -> %u (into journal bucket %llu)",
			 (unsigned long long)p->offset, (unsigned long long)off, p->gen, gen, (unsigned long long)b);
		p->offset = off;
		p->gen = gen;
		pb_printf(&c->lost, "the extent's data (%u sectors)", t.k.k.size);
		break;
	}
	}
	ext_damaged_text(c, &orig, what);
	bkey_ptrs(&orig.k.k, &ptrs);
	aff_inum(c, t.k.k.p.inode);
	if (e == PE_GEN_UP && !sole) {
		/* every file with data in that bucket */
		u64 key = bkey_of(ptrs[t.ptr].dev, ptrs[t.ptr].offset / c->bucket_sectors);
		struct btree_iter it;
		struct bkey *k;
		for_each_btree_key(it, c->fs, BTREE_ID_extents, POS_MIN, k, ret) {
			struct bkfs_ptr *pp;
			unsigned np = bkey_ptrs(k, &pp);
			for (unsigned i = 0; i < np; i++)
				if (bkey_of(pp[i].dev, pp[i].offset / c->bucket_sectors) == key)
					aff_inum(c, k->p.inode);
		}
	}
	return edit_leaf_key(c, BTREE_ID_extents, t.k.k.p, &t.k.k);
}

static int k_ptr_gen_newer(struct dctx *c) { return ptr_kind(c, PE_GEN_UP); }
static int k_stale_dirty_ptr(struct dctx *c) { return ptr_kind(c, PE_GEN_DOWN); }
static int k_ptr_too_stale(struct dctx *c) { return ptr_kind(c, PE_TOO_STALE); }
static int k_ptr_invalid_device(struct dctx *c) { return ptr_kind(c, PE_DEV); }
static int k_ptr_invalid_bucket(struct dctx *c) { return ptr_kind(c, PE_BUCKET); }
static int k_ptr_data_type_mismatch(struct dctx *c) { return ptr_kind(c, PE_BTREE_BUCKET); }
static int k_ptr_journal_bucket(struct dctx *c) { return ptr_kind(c, PE_JOURNAL_BUCKET); }

static u64 unused_inum(struct dctx *c);

/* An extent of size 2^32-1 for an inode that does not exist, appended to the
 * last leaf of the extents btree (so the walk marks it after every real
 * extent), with a copy of a real extent's pointer: marking it would take that
 * bucket's dirty count past 2^32-1. The bucket holds no indirect extent (the
 * reflink btree is walked later). */
static int k_sector_count_overflow(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (!ret)
		ret = load_inodes(c);
	if (ret)
		return ret;
	u64 *rl = NULL, *v = NULL;
	size_t nrl = 0, crl = 0, n = 0, cv = 0;
	struct btree_iter it;
	struct bkey *k;
	for_each_btree_key(it, c->fs, BTREE_ID_reflink, POS_MIN, k, ret) {
		struct bkfs_ptr *ptrs;
		unsigned np = bkey_ptrs(k, &ptrs);
		for (unsigned i = 0; i < np; i++)
			if (!grow((void **)&rl, &crl, nrl, sizeof(*rl)))
				rl[nrl++] = bkey_of(ptrs[i].dev, ptrs[i].offset / c->bucket_sectors);
	}
	if (!ret) {
		if (nrl)
			qsort(rl, nrl, sizeof(*rl), u64_cmp);
		for_each_btree_key(it, c->fs, BTREE_ID_extents, POS_MIN, k, ret) {
			struct bkfs_ptr *ptrs;
			if (k->type != KEY_TYPE_extent || !bkey_ptrs(k, &ptrs) || (ptrs[0].flags & (PTR_CACHED | PTR_HAS_STRIPE)))
				continue;
			u64 key = bkey_of(ptrs[0].dev, ptrs[0].offset / c->bucket_sectors);
			if (nrl && refs_of(rl, nrl, key))
				continue;
			if (!grow((void **)&v, &cv, n, 2 * sizeof(*v))) {
				v[2 * n] = k->p.inode;
				v[2 * n + 1] = k->p.offset;
				n++;
			}
		}
	}
	free(rl);
	struct bkey_buf src;
	if (!ret && !n) {
		free(v);
		no_target(c, "no extent with a data pointer into a bucket without indirect extents");
		return NO_TARGET;
	}
	if (!ret) {
		size_t i = pick(c, n);
		ret = btree_lookup(c->fs, BTREE_ID_extents, POS(v[2 * i], v[2 * i + 1]), &src);
	}
	free(v);
	if (ret)
		return ret;
	struct dnode *leaf = NULL;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].id == BTREE_ID_extents && !c->nodes[i].level && bpos_eq(c->nodes[i].max, POS_MAX))
			leaf = &c->nodes[i];
	if (!leaf) {
		no_target(c, "the last leaf of the extents btree is not written");
		return NO_TARGET;
	}
	u64 inum = unused_inum(c);
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_extent, POS(inum, UINT32_MAX), extent_val_bytes(1));
	kb.k.size = UINT32_MAX;
	kb.k.version = src.k.version;
	struct bkfs_extent *e = bkey_val(&kb.k);
	e->nr_ptrs = 1;
	e->ptrs[0] = bkey_extent(&src.k)->ptrs[0];
	struct printbuf why = PRINTBUF;
	if (bkey_validate(&kb.k, BTREE_ID_extents, 0, &why)) {
		fprintf(stderr, "bkfs debug corrupt: internal: the new extent does not validate: %s\n", pb_str(&why));
		pb_exit(&why);
		return -BKFS_E_INVAL;
	}
	pb_exit(&why);
	u8 *buf = node_read(c, &leaf->ptr);
	if (!buf)
		return -BKFS_E_IO;
	struct bkfs_node_hdr *h = hdr(buf);
	if (h->nr_keys && bpos_cmp(node_buf_key(buf, h->nr_keys - 1)->p, kb.k.p) >= 0) {
		free(buf);
		no_target(c, "the last extents leaf holds a key past inode %llu", (unsigned long long)inum);
		return NO_TARGET;
	}
	if (h->used_bytes + bkey_bytes(&kb.k) > c->node_bytes) {
		free(buf);
		no_target(c, "no room in the last extents leaf");
		return NO_TARGET;
	}
	memcpy(buf + h->used_bytes, &kb.k, bkey_bytes(&kb.k));
	h->used_bytes += bkey_bytes(&kb.k);
	h->nr_keys++;
	node_csum_set(buf);
	pb_printf(&c->damaged, "extent of %u sectors for inode %llu, which does not exist, appended to ", kb.k.size,
		  (unsigned long long)inum);
	node_text(&c->damaged, leaf);
	pb_printf(&c->damaged, ", pointer ");
	ptr_to_text(&c->damaged, &e->ptrs[0]);
	pb_printf(&c->damaged, " (bucket %llu, shared with the extent of inode %llu ending at sector %llu)",
		  (unsigned long long)(e->ptrs[0].offset / c->bucket_sectors), (unsigned long long)src.k.p.inode,
		  (unsigned long long)src.k.p.offset);
	pb_printf(&c->lost, "none: the added extent belongs to no inode");
	ret = node_queue(c, &leaf->ptr, buf);
	free(buf);
	return ret;
}

/* ---- alloc keys ---- */

enum alloc_sel { AS_USER, AS_FREE, AS_STRIPE_DATA, AS_STRIPE_ANY };

static int pick_alloc(struct dctx *c, enum alloc_sel sel, struct bkey_buf *out)
{
	struct bpos *v = NULL;
	size_t n = 0, cap = 0;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, BTREE_ID_alloc, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_alloc || bkey_val_bytes(k) != sizeof(struct bkfs_alloc))
			continue;
		const struct bkfs_alloc *a = bkey_val(k);
		if (k->p.inode >= c->nr_devs || k->p.offset >= c->sb.members[k->p.inode].nbuckets)
			continue;
		bool ok;
		switch (sel) {
		case AS_USER:
			ok = a->data_type == DATA_user && a->dirty_sectors > 0 && !a->stripe;
			break;
		case AS_FREE:
			ok = a->data_type == DATA_free && !a->flags && k->p.offset >= c->sb.members[k->p.inode].first_bucket;
			break;
		case AS_STRIPE_DATA:
			ok = a->data_type == DATA_stripe && a->stripe && a->stripe_sectors > 0;
			break;
		default:
			ok = a->stripe != 0;
			break;
		}
		if (ok && !grow((void **)&v, &cap, n, sizeof(*v)))
			v[n++] = k->p;
	}
	if (!ret && !n)
		ret = -BKFS_E_NOENT;
	if (!ret)
		ret = btree_lookup(c->fs, BTREE_ID_alloc, v[pick(c, n)], out);
	free(v);
	return ret;
}

enum alloc_edit {
	AE_DELETE_USER, AE_DELETE_FREE, AE_DIRTY, AE_GEN, AE_DATA_TYPE, AE_CACHED, AE_FRAG, AE_JSEQ, AE_OLDEST,
	AE_STRIPE, AE_STRIPE_REDUNDANCY, AE_STRIPE_SECTORS,
};

static int alloc_kind(struct dctx *c, enum alloc_edit e)
{
	static const char *const sel_names[] = { "user data", "free", "erasure-coded data", "erasure-coded" };
	struct bkey_buf kb;
	enum alloc_sel sel = e == AE_DELETE_FREE ? AS_FREE : e == AE_STRIPE_SECTORS ? AS_STRIPE_DATA :
			     e == AE_STRIPE || e == AE_STRIPE_REDUNDANCY ? AS_STRIPE_ANY : AS_USER;
	int ret = pick_alloc(c, sel, &kb);
	if (ret == -BKFS_E_NOENT) {
		no_target(c, "no %s bucket%s", sel_names[sel],
			  sel >= AS_STRIPE_DATA ? " (make stripes first: bkfs erasure-code)" : "");
		return NO_TARGET;
	}
	if (ret)
		return ret;
	struct bkfs_alloc *a = bkey_val(&kb.k);
	pb_printf(&c->damaged, "alloc key of dev %llu bucket %llu (", (unsigned long long)kb.k.p.inode,
		  (unsigned long long)kb.k.p.offset);
	alloc_to_text(&c->damaged, a);
	pb_printf(&c->damaged, "): ");
	pb_printf(&c->lost, "none");
	switch (e) {
	case AE_DELETE_USER:
	case AE_DELETE_FREE:
		pb_printf(&c->damaged, "deleted");
		return edit_leaf_key(c, BTREE_ID_alloc, kb.k.p, NULL);
	case AE_DIRTY: {
		u32 old = a->dirty_sectors;
		a->dirty_sectors = old > 8 ? old - 1 - (u32)pick(c, MIN(old - 1, 64u)) : old + 1 + (u32)pick(c, 8);
		a->fragmentation_lru = alloc_fragmentation(a, c->bucket_sectors);
		pb_printf(&c->damaged, "dirty_sectors %u -> %u", old, a->dirty_sectors);
		break;
	}
	case AE_GEN:
		pb_printf(&c->damaged, "gen %u -> %u (older than the pointers into it)", a->gen, (u8)(a->gen - 1));
		a->gen--;
		break;
	case AE_DATA_TYPE:
		pb_printf(&c->damaged, "data_type %s -> btree", data_type_str(a->data_type));
		a->data_type = DATA_btree;
		break;
	case AE_CACHED:
		pb_printf(&c->damaged, "cached_sectors %u -> %u", a->cached_sectors, a->cached_sectors + 8);
		a->cached_sectors += 8;
		break;
	case AE_FRAG:
		pb_printf(&c->damaged, "fragmentation_lru %llu -> %llu", (unsigned long long)a->fragmentation_lru,
			  (unsigned long long)(a->fragmentation_lru ^ (1ull << 40)));
		a->fragmentation_lru ^= 1ull << 40;
		break;
	case AE_STRIPE: {
		u32 s = a->stripe + 1000 + (u32)pick(c, 1000);
		pb_printf(&c->damaged, "stripe %u -> %u (no such stripe names this bucket)", a->stripe, s);
		a->stripe = s;
		break;
	}
	case AE_STRIPE_REDUNDANCY:
		pb_printf(&c->damaged, "stripe_redundancy %u -> %u", a->stripe_redundancy, a->stripe_redundancy + 1);
		a->stripe_redundancy++;
		break;
	case AE_STRIPE_SECTORS: {
		u32 old = a->stripe_sectors;
		a->stripe_sectors = old > 8 ? old - 1 - (u32)pick(c, MIN(old - 1, 64u)) : old + 1 + (u32)pick(c, 8);
		a->fragmentation_lru = alloc_fragmentation(a, c->bucket_sectors);
		pb_printf(&c->damaged, "stripe_sectors %u -> %u", old, a->stripe_sectors);
		break;
	}
	case AE_OLDEST: {
		u8 og = (u8)(a->gen + 1 + pick(c, 16));
		pb_printf(&c->damaged, "oldest_gen %u -> %u (newer than its gen %u)", a->oldest_gen, og, a->gen);
		a->oldest_gen = og;
		break;
	}
	case AE_JSEQ: {
		u64 cur = journal_cur_seq(c->fs);
		u64 nv = cur + 1000000 + pick(c, 1000);
		pb_printf(&c->damaged, "journal_seq %llu -> %llu (the journal is at %llu)",
			  (unsigned long long)a->journal_seq, (unsigned long long)nv, (unsigned long long)cur);
		a->journal_seq = nv;
		break;
	}
	}
	struct printbuf why = PRINTBUF;
	if (bkey_validate(&kb.k, BTREE_ID_alloc, 0, &why)) {
		fprintf(stderr, "bkfs debug corrupt: internal: edited alloc key does not validate: %s\n", pb_str(&why));
		pb_exit(&why);
		return -BKFS_E_INVAL;
	}
	pb_exit(&why);
	return edit_leaf_key(c, BTREE_ID_alloc, kb.k.p, &kb.k);
}

static int k_missing_alloc_key(struct dctx *c) { return alloc_kind(c, AE_DELETE_USER); }
static int k_alloc_key_missing(struct dctx *c) { return alloc_kind(c, AE_DELETE_FREE); }
static int k_alloc_dirty_sectors(struct dctx *c) { return alloc_kind(c, AE_DIRTY); }
static int k_alloc_gen(struct dctx *c) { return alloc_kind(c, AE_GEN); }
static int k_alloc_data_type(struct dctx *c) { return alloc_kind(c, AE_DATA_TYPE); }
static int k_alloc_cached_sectors(struct dctx *c) { return alloc_kind(c, AE_CACHED); }
static int k_alloc_fragmentation(struct dctx *c) { return alloc_kind(c, AE_FRAG); }
static int k_alloc_journal_seq(struct dctx *c) { return alloc_kind(c, AE_JSEQ); }
static int k_alloc_oldest_gen(struct dctx *c) { return alloc_kind(c, AE_OLDEST); }
static int k_alloc_stripe(struct dctx *c) { return alloc_kind(c, AE_STRIPE); }
static int k_alloc_stripe_redundancy(struct dctx *c) { return alloc_kind(c, AE_STRIPE_REDUNDANCY); }
static int k_alloc_stripe_sectors(struct dctx *c) { return alloc_kind(c, AE_STRIPE_SECTORS); }

/* ---- erasure-coded stripes (an image made with bkfs erasure-code) ---- */

static int pick_stripe(struct dctx *c, struct bkey_buf *out)
{
	struct bpos *v = NULL;
	size_t n = 0, cap = 0;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, BTREE_ID_stripes, POS_MIN, k, ret)
		if (k->type == KEY_TYPE_stripe && !grow((void **)&v, &cap, n, sizeof(*v)))
			v[n++] = k->p;
	if (!ret && !n) {
		no_target(c, "no stripe (make stripes first: bkfs erasure-code)");
		ret = NO_TARGET;
	}
	if (!ret)
		ret = btree_lookup(c->fs, BTREE_ID_stripes, v[pick(c, n)], out);
	free(v);
	return ret;
}

static void stripe_text(struct dctx *c, const struct bkey *k)
{
	const struct bkfs_stripe *s = bkey_val(k);
	pb_printf(&c->damaged, "stripe %llu (%u data + %u parity blocks of %u sectors)", (unsigned long long)k->p.offset,
		  s->nr_blocks - s->nr_redundant, s->nr_redundant, s->sectors);
}

/* The stripe key deleted: its pointers lose their stripe references (the
 * data stays where it is, unprotected), its parity buckets are freed. */
static int k_stripe_missing(struct dctx *c)
{
	struct bkey_buf kb;
	int ret = pick_stripe(c, &kb);
	if (ret)
		return ret;
	stripe_text(c, &kb.k);
	pb_printf(&c->damaged, ": key deleted, the erasure-coded pointers into it kept");
	pb_printf(&c->lost, "none (the data loses its parity)");
	return edit_leaf_key(c, BTREE_ID_stripes, kb.k.p, NULL);
}

/* A stripe's count of sectors in one data block changed. */
static int k_stripe_block_sectors(struct dctx *c)
{
	struct bkey_buf kb;
	int ret = pick_stripe(c, &kb);
	if (ret)
		return ret;
	struct bkfs_stripe *s = bkey_val(&kb.k);
	u16 *bs = stripe_block_sectors(s);
	unsigned b = (unsigned)pick(c, s->nr_blocks - s->nr_redundant);
	u16 old = bs[b];
	bs[b] = old > 8 ? old - 1 - (u16)pick(c, MIN(old - 1, 64)) : old + 1 + (u16)pick(c, 8);
	stripe_text(c, &kb.k);
	pb_printf(&c->damaged, ": block %u sectors %u -> %u", b, old, bs[b]);
	pb_printf(&c->lost, "none");
	return edit_leaf_key(c, BTREE_ID_stripes, kb.k.p, &kb.k);
}

/* An erasure-coded pointer names a parity block of its stripe as its
 * block: it is not inside the block it names. */
static int k_ptr_incorrect_stripe(struct dctx *c)
{
	struct ext_target t;
	bool sole;
	int ret = pick_extent_ptr(c, false, true, &t, &sole);
	if (ret == -BKFS_E_NOENT) {
		no_target(c, "no erasure-coded extent (make stripes first: bkfs erasure-code)");
		return NO_TARGET;
	}
	if (ret)
		return ret;
	struct bkfs_ptr *ptrs;
	bkey_ptrs(&t.k.k, &ptrs);
	struct bkey_buf sk;
	if ((ret = btree_lookup(c->fs, BTREE_ID_stripes, POS(0, ptrs[0].stripe_idx), &sk)))
		return ret;
	const struct bkfs_stripe *s = bkey_val(&sk.k);
	unsigned old = ptrs[0].stripe_block;
	ptrs[0].stripe_block = s->nr_blocks - 1;
	struct printbuf what = PRINTBUF;
	pb_printf(&what, "stripe block %u -> %u (a parity block of stripe %u)", old, ptrs[0].stripe_block,
		  ptrs[0].stripe_idx);
	ext_damaged_text(c, &t, pb_str(&what));
	pb_exit(&what);
	pb_printf(&c->lost, "none (the extent loses its parity)");
	return edit_leaf_key(c, BTREE_ID_extents, t.k.k.p, &t.k.k);
}

/* ---- accounting and versions ---- */

static int k_accounting(struct dctx *c)
{
	struct bpos *v = NULL;
	size_t n = 0, cap = 0;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, BTREE_ID_accounting, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_accounting)
			continue;
		u64 t = k->p.inode;
		if ((t == ACCT_nr_inodes || t == ACCT_replicas || t == ACCT_dev_data_type || t == ACCT_btree) &&
		    !grow((void **)&v, &cap, n, sizeof(*v)))
			v[n++] = k->p;
	}
	if (ret || !n) {
		free(v);
		if (!ret)
			no_target(c, "no accounting counters");
		return ret ? ret : NO_TARGET;
	}
	struct bkey_buf kb;
	ret = btree_lookup(c->fs, BTREE_ID_accounting, v[pick(c, n)], &kb);
	free(v);
	if (ret)
		return ret;
	struct bkfs_accounting *a = bkey_val(&kb.k);
	s64 delta = 1 + (s64)pick(c, 16);
	pb_printf(&c->damaged, "accounting counter ");
	bkey_to_text(&c->damaged, &kb.k);
	pb_printf(&c->damaged, ": v[0] %lld -> %lld", (long long)a->v[0], (long long)(a->v[0] + delta));
	pb_printf(&c->lost, "none");
	a->v[0] += delta;
	return edit_leaf_key(c, BTREE_ID_accounting, kb.k.p, &kb.k);
}

static int k_version_future(struct dctx *c)
{
	static const unsigned ids[] = { BTREE_ID_inodes, BTREE_ID_dirents, BTREE_ID_extents };
	unsigned id = ids[pick(c, ARRAY_SIZE(ids))];
	struct bpos *v = NULL;
	size_t n = 0, cap = 0;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, id, POS_MIN, k, ret)
		if (!grow((void **)&v, &cap, n, sizeof(*v)))
			v[n++] = k->p;
	if (ret || !n) {
		free(v);
		if (!ret)
			no_target(c, "the %s btree is empty", btree_id_str(id));
		return ret ? ret : NO_TARGET;
	}
	struct bkey_buf kb;
	ret = btree_lookup(c->fs, id, v[pick(c, n)], &kb);
	free(v);
	if (ret)
		return ret;
	u64 cur = MAX(c->fs->key_version, c->sb.key_version);
	u64 nv = cur + 1000 + pick(c, 1000000);
	pb_printf(&c->damaged, "btree %s key at ", btree_id_str(id));
	bpos_to_text(&c->damaged, kb.k.p);
	pb_printf(&c->damaged, ": version %llu -> %llu (the filesystem has issued up to %llu)",
		  (unsigned long long)kb.k.version, (unsigned long long)nv, (unsigned long long)cur);
	pb_printf(&c->lost, "none");
	kb.k.version = nv;
	return edit_leaf_key(c, id, kb.k.p, &kb.k);
}

/* ---- superblock ---- */

/* Read every valid superblock copy of every member into queued writes after
 * edit() changed it (edit returns false to leave a copy alone). */
static int edit_sb_copies(struct dctx *c, bool (*edit)(struct dctx *, struct bkfs_sb *, unsigned dev, unsigned copy, void *),
			  void *arg)
{
	struct bkfs_fs *fs = c->fs;
	u8 *buf = malloc(BKFS_SB_SIZE);
	int ret = 0;
	if (!buf)
		return -BKFS_E_NOMEM;
	for (unsigned d = 0; d < fs->nr_devs && !ret; d++) {
		if (!fs->devs[d].bd)
			continue;
		u64 offs[3];
		unsigned n = sb_copy_offsets(&fs->sb, &fs->sb.members[d], offs);
		for (unsigned i = 0; i < n && !ret; i++) {
			if (bd_read(fs->devs[d].bd, buf, offs[i], BKFS_SB_SIZE) ||
			    sb_validate((struct bkfs_sb *)buf, NULL))
				continue;
			if (!edit(c, (struct bkfs_sb *)buf, d, i, arg))
				continue;
			sb_csum_set((struct bkfs_sb *)buf);
			ret = queue_write(c, d, offs[i], buf, BKFS_SB_SIZE);
		}
	}
	free(buf);
	return ret;
}

struct bitmap_edit { unsigned dev; u64 bit; };

static bool clear_bitmap_bit(struct dctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	struct bitmap_edit *e = arg;
	(void)c; (void)dev; (void)copy;
	sb->members[e->dev].btree_bitmap &= ~(1ull << e->bit);
	return true;
}

static int k_bitmap_unmarked(struct dctx *c)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	if (!c->nr_nodes) {
		no_target(c, "no written btree node");
		return NO_TARGET;
	}
	struct dnode *t = &c->nodes[pick(c, c->nr_nodes)];
	struct bitmap_edit e = { .dev = t->ptr.ptrs[0].dev };
	struct bkfs_member *m = &c->sb.members[e.dev];
	e.bit = t->ptr.ptrs[0].offset >> m->btree_bitmap_shift;
	if (e.bit >= 64) {
		no_target(c, "node outside the bitmap");
		return NO_TARGET;
	}
	pb_printf(&c->damaged, "member %u btree bitmap bit %llu (sectors %llu..%llu, bitmap 0x%016llx -> 0x%016llx), covering ",
		  e.dev, (unsigned long long)e.bit, (unsigned long long)(e.bit << m->btree_bitmap_shift),
		  (unsigned long long)(((e.bit + 1) << m->btree_bitmap_shift) - 1),
		  (unsigned long long)m->btree_bitmap, (unsigned long long)(m->btree_bitmap & ~(1ull << e.bit)));
	node_text(&c->damaged, t);
	pb_printf(&c->lost, "none");
	return edit_sb_copies(c, clear_bitmap_bit, &e);
}

struct shift_edit { unsigned dev; u8 shift; };

static bool lower_bitmap_shift(struct dctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	struct shift_edit *e = arg;
	(void)c; (void)dev; (void)copy;
	sb->members[e->dev].btree_bitmap_shift = e->shift;
	return true;
}

/* A member's btree_bitmap_shift lowered by one, its bits kept: the bitmap's
 * 64 bits no longer reach the device's end (the superblock stays valid). */
static int k_member_bitmap_shift(struct dctx *c)
{
	unsigned cand[BKFS_MAX_DEVS], nr = 0;
	for (unsigned d = 0; d < c->sb.nr_devices && d < BKFS_MAX_DEVS; d++) {
		const struct bkfs_member *m = &c->sb.members[d];
		u64 sectors = m->nbuckets * c->sb.bucket_size;
		if (m->btree_bitmap_shift && m->btree_bitmap_shift < 64 &&
		    (sectors - 1) >> (m->btree_bitmap_shift - 1) >= MEMBER_BITMAP_BITS)
			cand[nr++] = d;
	}
	if (!nr) {
		no_target(c, "no member whose bitmap would stop covering its device with a smaller shift");
		return NO_TARGET;
	}
	struct shift_edit e = { .dev = cand[pick(c, nr)] };
	const struct bkfs_member *m = &c->sb.members[e.dev];
	e.shift = m->btree_bitmap_shift - 1;
	u64 sectors = m->nbuckets * c->sb.bucket_size;
	pb_printf(&c->damaged,
		  "member %u btree_bitmap_shift %u -> %u (bitmap 0x%016llx kept): its 64 bits now cover %llu of %llu sectors "
		  "(every superblock copy)",
		  e.dev, m->btree_bitmap_shift, m->btree_bitmap_shift - 1, (unsigned long long)m->btree_bitmap,
		  (unsigned long long)(64ull << (m->btree_bitmap_shift - 1)), (unsigned long long)sectors);
	pb_printf(&c->lost, "none");
	return edit_sb_copies(c, lower_bitmap_shift, &e);
}

static int k_sb_primary(struct dctx *c)
{
	unsigned dev = (unsigned)pick(c, c->nr_devs);
	u8 *buf = malloc(BKFS_SB_SIZE);
	if (!buf)
		return -BKFS_E_NOMEM;
	for (unsigned i = 0; i < BKFS_SB_SIZE; i++)
		buf[i] = (u8)rng_next(&c->rng);
	pb_printf(&c->damaged, "primary superblock copy of member %u (%s) at byte %llu overwritten with random bytes", dev,
		  c->devpath[dev] ? c->devpath[dev] : "?", (unsigned long long)BKFS_SB_OFFSET);
	pb_printf(&c->lost, "none: the backup copies are intact");
	int ret = queue_write(c, dev, BKFS_SB_OFFSET, buf, BKFS_SB_SIZE);
	free(buf);
	return ret;
}

struct stale_edit { unsigned dev, copy; };

static bool make_stale(struct dctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	struct stale_edit *e = arg;
	(void)c;
	if (dev != e->dev || copy != e->copy)
		return false;
	sb->seq--;
	return true;
}

static int k_sb_stale(struct dctx *c)
{
	struct stale_edit e = { .dev = (unsigned)pick(c, c->nr_devs), .copy = 1 + (unsigned)pick(c, 2) };
	pb_printf(&c->damaged, "superblock copy %u of member %u: seq %llu -> %llu (valid but older than the others)",
		  e.copy, e.dev, (unsigned long long)c->sb.seq, (unsigned long long)(c->sb.seq - 1));
	pb_printf(&c->lost, "none");
	return edit_sb_copies(c, make_stale, &e);
}

/* ---- journal ---- */

struct jentry_loc { u64 pos, seq; u32 bytes, total; u16 type; };

/* Valid entries in member 0's ring (every member holds the same ring). */
static int ring_entries(struct dctx *c, struct jentry_loc **out, size_t *nr, u64 *ring_start, u64 *ring_bytes)
{
	struct bkfs_fs *fs = c->fs;
	struct bkfs_member *m = &fs->sb.members[0];
	u64 start = m->journal_bucket_start * fs->bucket_bytes, bytes = m->journal_nr_buckets * fs->bucket_bytes;
	u8 *ring = malloc(bytes);
	if (!ring)
		return -BKFS_E_NOMEM;
	unsigned d = 0;
	while (d < fs->nr_devs && !fs->devs[d].bd)
		d++;
	if (d == fs->nr_devs || bd_read(fs->devs[d].bd, ring, start, bytes)) {
		free(ring);
		return -BKFS_E_IO;
	}
	u64 magic = sb_journal_magic(&fs->sb);
	struct jentry_loc *v = NULL;
	size_t n = 0, cap = 0;
	for (u64 off = 0; off + sizeof(struct bkfs_jentry_hdr) <= bytes; off += fs->block_bytes) {
		struct bkfs_jentry_hdr *h = (void *)(ring + off);
		if (h->magic != magic || h->version != BKFS_FORMAT_VERSION || h->bytes < sizeof(*h) ||
		    h->bytes > bytes - off || bkfs_crc32c(0, (u8 *)h + 4, h->bytes - 4) != h->csum)
			continue;
		if (grow((void **)&v, &cap, n, sizeof(*v))) {
			free(ring);
			free(v);
			return -BKFS_E_NOMEM;
		}
		v[n++] = (struct jentry_loc){ .pos = off, .seq = h->seq, .bytes = h->bytes,
					      .total = ROUND_UP(h->bytes, fs->block_bytes), .type = h->type };
		off += ROUND_UP(h->bytes, fs->block_bytes) - fs->block_bytes;
	}
	free(ring);
	*out = v;
	*nr = n;
	*ring_start = start;
	*ring_bytes = bytes;
	return 0;
}

/* Make the filesystem unclean: open it read-write and commit a few journaled
 * transactions (the root directory's times), then stop without a checkpoint. */
static int make_unclean(struct dctx *c, unsigned nr)
{
	int ret = d_open(c, OPEN_RW);
	if (ret)
		return ret;
	for (unsigned i = 0; i < nr && !ret; i++) {
		struct bkey_buf kb;
		if ((ret = inode_lookup(c->fs, BKFS_ROOT_INO, &kb)))
			break;
		struct bkfs_inode *in = bkey_val(&kb.k);
		in->mtime_ns += 1000 + i;
		in->ctime_ns += 1000 + i;
		struct trans t;
		trans_init(&t, c->fs);
		ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
		if (!ret)
			ret = trans_commit(&t, COMMIT_SYNC);
		trans_exit(&t);
	}
	if (ret)
		report_fail("committing journaled updates", ret);
	d_close(c, false);
	return ret;
}

/* Entries newer than the newest checkpoint (needs the fs open). */
static size_t entries_after_checkpoint(struct jentry_loc *v, size_t n, struct jentry_loc *out, size_t max)
{
	u64 cp = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].type == JENTRY_CHECKPOINT && v[i].seq > cp)
			cp = v[i].seq;
	size_t m = 0;
	for (size_t i = 0; i < n && m < max; i++)
		if (v[i].type == JENTRY_KEYS && v[i].seq > cp)
			out[m++] = v[i];
	/* sort by seq */
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && out[j - 1].seq > out[j].seq; j--) {
			struct jentry_loc t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return m;
}

enum jkind { JK_CSUM, JK_GAP, JK_TORN };

static int journal_kind(struct dctx *c, enum jkind kind)
{
	int ret;
	/* the analysis open (read-only) happened in the driver: redo it rw */
	d_close(c, false);
	if ((ret = make_unclean(c, 3)))
		return ret;
	if ((ret = d_open(c, OPEN_RO)))
		return ret;
	struct jentry_loc *v, after[16];
	size_t n;
	u64 start, bytes;
	if ((ret = ring_entries(c, &v, &n, &start, &bytes)))
		return ret;
	size_t m = entries_after_checkpoint(v, n, after, ARRAY_SIZE(after));
	free(v);
	if (m < 2) {
		no_target(c, "the journal did not keep entries after its checkpoint");
		return NO_TARGET;
	}
	/* a gap needs an entry after the one removed */
	struct jentry_loc e = kind == JK_GAP ? after[pick(c, m - 1)] : after[pick(c, m)];
	u8 *buf = malloc(e.total);
	if (!buf)
		return -BKFS_E_NOMEM;
	unsigned d0 = 0;
	while (!c->fs->devs[d0].bd)
		d0++;
	if ((ret = bd_read(c->fs->devs[d0].bd, buf, start + e.pos, e.total))) {
		free(buf);
		return ret;
	}
	struct bkfs_jentry_hdr *h = (void *)buf;
	switch (kind) {
	case JK_CSUM: {
		u32 at = sizeof(*h) + (u32)pick(c, e.bytes - sizeof(*h));
		buf[at] ^= 0xff;
		pb_printf(&c->damaged, "journal entry seq %llu (ring offset %llu, %u bytes): byte %u flipped",
			  (unsigned long long)e.seq, (unsigned long long)e.pos, e.bytes, at);
		break;
	}
	case JK_GAP:
		memset(buf, 0, e.total);
		pb_printf(&c->damaged, "journal entry seq %llu (ring offset %llu, %u bytes) erased; later entries follow a gap",
			  (unsigned long long)e.seq, (unsigned long long)e.pos, e.bytes);
		break;
	case JK_TORN: {
		struct bkfs_jrec *r = (void *)(buf + sizeof(*h));
		pb_printf(&c->damaged, "journal entry seq %llu (ring offset %llu): first record length %u -> 3, checksum recomputed",
			  (unsigned long long)e.seq, (unsigned long long)e.pos, r->bytes);
		r->bytes = 3;
		h->csum = bkfs_crc32c(0, buf + 4, h->bytes - 4);
		break;
	}
	}
	pb_printf(&c->lost, "the updates of this entry and of later ones (times of the root directory)");
	for (unsigned d = 0; d < c->fs->nr_devs && !ret; d++) {
		if (!c->fs->devs[d].bd)
			continue;
		u64 s = c->fs->sb.members[d].journal_bucket_start * c->fs->bucket_bytes;
		ret = queue_write(c, d, s + e.pos, buf, e.total);
	}
	free(buf);
	return ret;
}

static int k_journal_entry(struct dctx *c) { return journal_kind(c, JK_CSUM); }
static int k_journal_gap(struct dctx *c) { return journal_kind(c, JK_GAP); }
static int k_journal_torn(struct dctx *c) { return journal_kind(c, JK_TORN); }

static int k_journal_no_checkpoint(struct dctx *c)
{
	if (!c->sb.clean) {
		no_target(c, "the filesystem is not clean (its superblock roots are not valid)");
		return NO_TARGET;
	}
	struct jentry_loc *v;
	size_t n;
	u64 start, bytes;
	int ret = ring_entries(c, &v, &n, &start, &bytes);
	if (ret)
		return ret;
	u8 *zero = calloc(1, 1u << 20);
	unsigned nr = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		nr++;
		for (unsigned d = 0; d < c->nr_devs && !ret; d++) {
			if (!c->fs->devs[d].bd)
				continue;
			u64 s = c->fs->sb.members[d].journal_bucket_start * c->fs->bucket_bytes;
			for (u32 o = 0; o < v[i].total && !ret; o += 1u << 20)
				ret = queue_write(c, d, s + v[i].pos + o, zero, MIN(v[i].total - o, 1u << 20));
		}
	}
	free(zero);
	free(v);
	if (!nr) {
		no_target(c, "the journal holds no entries");
		return NO_TARGET;
	}
	pb_printf(&c->damaged, "journal: all %u entries erased, checkpoints included (the superblock is clean and holds the roots)", nr);
	pb_printf(&c->lost, "none");
	return ret;
}

/* ---- filesystem level (through transactions) ---- */

static int fs_prepare(struct dctx *c)
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

static int fs_finish(struct dctx *c, int ret)
{
	if (ret) {
		report_fail("updating the filesystem", ret);
		d_close(c, false);
		return ret;
	}
	return d_close(c, true);
}

static struct dent *pick_file(struct dctx *c, u64 min_size)
{
	struct dent **v;
	size_t n = file_candidates(c, min_size, &v);
	struct dent *d = n ? v[pick(c, n)] : NULL;
	free(v);
	return d;
}

static void file_text(struct dctx *c, struct dent *d)
{
	pb_printf(&c->damaged, "inode %llu (", (unsigned long long)d->inum);
	path_of(c, d->inum, &c->damaged);
	pb_printf(&c->damaged, ")");
}

static int k_dirent_missing_inode(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent *d = pick_file(c, 0);
	if (!d) {
		d_close(c, false);
		no_target(c, "no regular file with a single link");
		return NO_TARGET;
	}
	file_text(c, d);
	pb_printf(&c->damaged, ": inode key deleted, its dirent kept");
	pb_printf(&c->lost, "the file (its data and xattrs are orphaned)");
	aff_inum(c, d->inum);
	if ((ret = compute_affects(c)))
		return fs_finish(c, ret);
	struct trans t;
	trans_init(&t, c->fs);
	ret = trans_delete(&t, BTREE_ID_inodes, POS(0, d->inum));
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return fs_finish(c, ret);
}

static int k_unreachable_inode(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent *d = pick_file(c, 0);
	if (!d) {
		d_close(c, false);
		no_target(c, "no regular file with a single link");
		return NO_TARGET;
	}
	file_text(c, d);
	pb_printf(&c->damaged, ": its only dirent (dir %llu slot %llu) deleted", (unsigned long long)d->dir,
		  (unsigned long long)d->slot);
	pb_printf(&c->lost, "the file's name: it is salvaged into lost+found");
	aff_inum(c, d->inum);
	if ((ret = compute_affects(c)))
		return fs_finish(c, ret);
	struct trans t;
	trans_init(&t, c->fs);
	ret = bkfs_dirent_remove(&t, d->dir, d->name, strlen(d->name), NULL, NULL);
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return fs_finish(c, ret);
}

enum inode_edit { IE_NLINK, IE_SIZE, IE_SECTORS };

static int inode_kind(struct dctx *c, enum inode_edit e)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent **v;
	size_t n = file_candidates(c, e == IE_SIZE ? 3 * c->fs->block_bytes + 1 : 0, &v), m = 0;
	u64 *ends = calloc(n ? n : 1, sizeof(u64));
	if (!ends) {
		free(v);
		d_close(c, false);
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
		d_close(c, false);
		if (!ret)
			no_target(c, "no suitable regular file");
		return ret ? ret : NO_TARGET;
	}
	size_t sel = pick(c, m);
	struct dent *d = v[sel];
	u64 end = ends[sel];
	free(v);
	free(ends);
	struct bkey_buf kb;
	if ((ret = inode_lookup(c->fs, d->inum, &kb)))
		return fs_finish(c, ret);
	struct bkfs_inode *in = bkey_val(&kb.k);
	file_text(c, d);
	switch (e) {
	case IE_NLINK:
		pb_printf(&c->damaged, ": nlink %u -> %u", in->nlink, in->nlink + 1);
		pb_printf(&c->lost, "none");
		in->nlink++;
		break;
	case IE_SIZE: {
		u64 ns = end - 2 * (u64)c->fs->block_bytes - 1 - pick(c, c->fs->block_bytes);
		pb_printf(&c->damaged, ": i_size %llu -> %llu (its data ends at byte %llu)", (unsigned long long)in->size,
			  (unsigned long long)ns, (unsigned long long)end);
		pb_printf(&c->lost, "the file's size (content past the new size may change)");
		aff_inum(c, d->inum);
		in->size = ns;
		break;
	}
	case IE_SECTORS:
		pb_printf(&c->damaged, ": sectors %llu -> %llu", (unsigned long long)in->sectors,
			  (unsigned long long)(in->sectors + 8));
		pb_printf(&c->lost, "none");
		in->sectors += 8;
		break;
	}
	if ((ret = compute_affects(c)))
		return fs_finish(c, ret);
	return fs_finish(c, commit_one(c->fs, BTREE_ID_inodes, &kb.k));
}

static int k_link_count(struct dctx *c) { return inode_kind(c, IE_NLINK); }
static int k_i_size(struct dctx *c) { return inode_kind(c, IE_SIZE); }
static int k_i_sectors(struct dctx *c) { return inode_kind(c, IE_SECTORS); }

/* directories other than the root, with their dirent */
static size_t dir_candidates(struct dctx *c, bool need_subdir, bool need_nonroot_parent, struct dent ***out)
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
		if (grow((void **)&v, &cap, n, sizeof(*v)))
			break;
		v[n++] = d;
	}
	*out = v;
	return n;
}

static int k_dir_loop(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent **v;
	size_t n = dir_candidates(c, true, false, &v);
	if (!n) {
		free(v);
		d_close(c, false);
		no_target(c, "no directory with a subdirectory");
		return NO_TARGET;
	}
	struct dent *a = v[pick(c, n)];
	free(v);
	/* B: a subdirectory of A */
	struct dent *subs[4096];
	size_t ns = 0;
	for (size_t j = dents_of(c, a->inum); j < c->nr_dents && c->dents[j].dir == a->inum && ns < 4096; j++)
		if (c->dents[j].d_type == DT_DIR && is_dir(c, c->dents[j].inum))
			subs[ns++] = &c->dents[j];
	struct dent *b = subs[pick(c, ns)];
	u64 pdir = a->dir;
	pb_printf(&c->damaged, "directory inode %llu (", (unsigned long long)a->inum);
	path_of(c, a->inum, &c->damaged);
	pb_printf(&c->damaged, ") moved into its own subdirectory inode %llu (", (unsigned long long)b->inum);
	path_of(c, b->inum, &c->damaged);
	pb_printf(&c->damaged, "): the two form a loop cut off from the root");
	pb_printf(&c->lost, "the directory's place in the tree: it is salvaged into lost+found");
	aff_inum(c, a->inum);
	if ((ret = compute_affects(c)))
		return fs_finish(c, ret);

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
	return fs_finish(c, ret);
}

static int k_dir_parent_wrong(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent **v;
	size_t n = dir_candidates(c, false, true, &v);
	if (!n) {
		free(v);
		d_close(c, false);
		no_target(c, "no directory below a subdirectory of the root");
		return NO_TARGET;
	}
	struct dent *a = v[pick(c, n)];
	free(v);
	struct bkey_buf kb;
	if ((ret = inode_lookup(c->fs, a->inum, &kb)))
		return fs_finish(c, ret);
	struct bkfs_inode *in = bkey_val(&kb.k);
	pb_printf(&c->damaged, "directory inode %llu (", (unsigned long long)a->inum);
	path_of(c, a->inum, &c->damaged);
	pb_printf(&c->damaged, "): parent %llu -> %llu (the root)", (unsigned long long)in->parent,
		  (unsigned long long)BKFS_ROOT_INO);
	pb_printf(&c->lost, "none");
	in->parent = BKFS_ROOT_INO;
	return fs_finish(c, commit_one(c->fs, BTREE_ID_inodes, &kb.k));
}

static int k_root_inode_missing(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	pb_printf(&c->damaged, "root directory inode %llu deleted (its entries are kept)", (unsigned long long)BKFS_ROOT_INO);
	pb_printf(&c->lost, "none: the root is recreated and its entries stay in place");
	struct trans t;
	trans_init(&t, c->fs);
	ret = trans_delete(&t, BTREE_ID_inodes, POS(0, BKFS_ROOT_INO));
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return fs_finish(c, ret);
}

static int k_dirent_d_type(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent *d = pick_file(c, 0);
	if (!d) {
		d_close(c, false);
		no_target(c, "no regular file with a single link");
		return NO_TARGET;
	}
	struct bkey_buf kb;
	if ((ret = btree_lookup(c->fs, BTREE_ID_dirents, POS(d->dir, d->slot), &kb)))
		return fs_finish(c, ret);
	file_text(c, d);
	pb_printf(&c->damaged, ": dirent d_type %u (regular file) -> %u (symlink)", DT_REG, DT_LNK);
	pb_printf(&c->lost, "none");
	((struct bkfs_dirent *)bkey_val(&kb.k))->d_type = DT_LNK;
	return fs_finish(c, commit_one(c->fs, BTREE_ID_dirents, &kb.k));
}

static u64 unused_inum(struct dctx *c)
{
	u64 inum = MAX(c->fs->next_inum, c->sb.next_inum) + 1000 + pick(c, 1000);
	while (inode_find(c, inum))
		inum++;
	return inum;
}

static int k_extent_missing_inode(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	u64 inum = unused_inum(c);
	struct bkey_buf kb;
	u32 bytes = 100 + (u32)pick(c, 300);
	bkey_init(&kb.k, KEY_TYPE_inline_data, POS(inum, 1), sizeof(struct bkfs_inline_data) + bytes);
	kb.k.size = 1;
	struct bkfs_inline_data *id = bkey_val(&kb.k);
	id->bytes = bytes;
	for (u32 i = 0; i < bytes; i++)
		id->data[i] = (u8)rng_next(&c->rng);
	pb_printf(&c->damaged, "inline data extent (%u bytes) added for inode %llu, which does not exist", bytes,
		  (unsigned long long)inum);
	pb_printf(&c->lost, "none (the orphan extent is removed)");
	return fs_finish(c, commit_one(c->fs, BTREE_ID_extents, &kb.k));
}

static int k_xattr_missing_inode(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
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
	pb_printf(&c->damaged, "xattr %s added for inode %llu, which does not exist", name, (unsigned long long)inum);
	pb_printf(&c->lost, "none (the orphan xattr is removed)");
	return fs_finish(c, commit_one(c->fs, BTREE_ID_xattrs, &kb.k));
}

static int k_dirent_in_non_dir(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent **v;
	size_t n = file_candidates(c, 0, &v);
	if (n < 2) {
		free(v);
		d_close(c, false);
		no_target(c, "fewer than two regular files");
		return NO_TARGET;
	}
	size_t i = pick(c, n), j = pick(c, n - 1);
	if (j >= i)
		j++;
	struct dent *f = v[i], *g = v[j];
	free(v);
	char name[64];
	snprintf(name, sizeof(name), "debug-corrupt-%llu", (unsigned long long)pick(c, 1000000));
	file_text(c, f);
	pb_printf(&c->damaged, ", a regular file: dirent %s -> inode %llu added to it", name, (unsigned long long)g->inum);
	pb_printf(&c->lost, "none (the dirent is removed)");
	struct trans t;
	trans_init(&t, c->fs);
	ret = bkfs_dirent_add(&t, f->inum, name, strlen(name), g->inum, DT_REG);
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return fs_finish(c, ret);
}

static int k_dir_multiple_links(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent **v;
	size_t n = dir_candidates(c, false, false, &v);
	if (n < 2) {
		free(v);
		d_close(c, false);
		no_target(c, "fewer than two directories");
		return NO_TARGET;
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
	if (!q) {
		d_close(c, false);
		no_target(c, "no pair of unrelated directories");
		return NO_TARGET;
	}
	char name[64];
	snprintf(name, sizeof(name), "debug-corrupt-%llu", (unsigned long long)pick(c, 1000000));
	pb_printf(&c->damaged, "directory inode %llu (", (unsigned long long)a->inum);
	path_of(c, a->inum, &c->damaged);
	pb_printf(&c->damaged, ") given a second name %s in directory inode %llu (", name, (unsigned long long)q->inum);
	path_of(c, q->inum, &c->damaged);
	pb_printf(&c->damaged, ")");
	pb_printf(&c->lost, "none (the extra name is removed)");
	struct trans t;
	trans_init(&t, c->fs);
	ret = bkfs_dirent_add(&t, q->inum, name, strlen(name), a->inum, DT_DIR);
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return fs_finish(c, ret);
}

/* ---- one key made invalid (its node still validates) ---- */

enum key_invalid { KI_INODE, KI_DIRENT, KI_EXTENT };

/* A file's inode, its dirent or one of its extents gets a value that fails
 * key validation, in place; the node's checksum is recomputed. Only that key
 * is dropped by fsck: the file's name, its inode or that range of its data. */
static int key_invalid_kind(struct dctx *c, enum key_invalid e)
{
	struct bkey_buf kb;
	unsigned id;
	int ret;
	if ((ret = load_dents(c)) || (ret = load_inodes(c)))
		return ret;
	if (e == KI_EXTENT) {
		struct ext_target t;
		bool sole;
		ret = pick_extent(c, false, &t, &sole);
		if (ret == -BKFS_E_NOENT) {
			no_target(c, "no extent with a pointer");
			return NO_TARGET;
		}
		if (ret)
			return ret;
		kb = t.k;
		id = BTREE_ID_extents;
		struct bkfs_extent *x = bkey_extent(&kb.k);
		pb_printf(&c->damaged, "extent of inode %llu ending at sector %llu (%u sectors): nr_ptrs %u -> %u; file ",
			  (unsigned long long)kb.k.p.inode, (unsigned long long)kb.k.p.offset, kb.k.size, x->nr_ptrs,
			  BKFS_MAX_REPLICAS + 1);
		path_of(c, kb.k.p.inode, &c->damaged);
		pb_printf(&c->lost, "the extent's %u sectors of data (the file gets a hole there)", kb.k.size);
		aff_inum(c, kb.k.p.inode);
		x->nr_ptrs = BKFS_MAX_REPLICAS + 1;
	} else {
		struct dent *d = pick_file(c, 0);
		if (!d) {
			no_target(c, "no regular file with a single link");
			return NO_TARGET;
		}
		id = e == KI_INODE ? BTREE_ID_inodes : BTREE_ID_dirents;
		if ((ret = btree_lookup(c->fs, id, e == KI_INODE ? POS(0, d->inum) : POS(d->dir, d->slot), &kb)))
			return ret;
		file_text(c, d);
		aff_inum(c, d->inum);
		if (e == KI_INODE) {
			struct bkfs_inode *in = bkey_val(&kb.k);
			u32 mode = in->mode | (0x5a0000u + ((u32)pick(c, 16) << 24));
			pb_printf(&c->damaged, ": inode mode 0%o -> 0%o (bits beyond file type and permissions)", in->mode,
				  mode);
			pb_printf(&c->lost, "the inode: the file's data is kept as a regular file (mode 0600) at its "
					    "name; a file without data loses its name");
			in->mode = mode;
		} else {
			struct bkfs_dirent *de = bkey_val(&kb.k);
			size_t room = bkey_val_bytes(&kb.k) - sizeof(*de);
			u8 len = room < BKFS_NAME_MAX ? BKFS_NAME_MAX : 0; /* past the value, or empty */
			pb_printf(&c->damaged, ": its dirent (dir %llu slot %llu) name_len %u -> %u (%zu bytes of name room)",
				  (unsigned long long)d->dir, (unsigned long long)d->slot, de->name_len, len, room);
			pb_printf(&c->lost, "the file's name: it is salvaged into lost+found");
			de->name_len = len;
		}
	}
	struct printbuf why = PRINTBUF;
	if (!bkey_validate(&kb.k, id, 0, &why)) {
		pb_exit(&why);
		fprintf(stderr, "bkfs debug corrupt: the edited key still validates\n");
		return -BKFS_E_INVAL;
	}
	pb_printf(&c->damaged, " [%s]", pb_str(&why));
	pb_exit(&why);
	return edit_leaf_key(c, id, kb.k.p, &kb.k);
}

static int k_key_invalid_inode(struct dctx *c) { return key_invalid_kind(c, KI_INODE); }
static int k_key_invalid_dirent(struct dctx *c) { return key_invalid_kind(c, KI_DIRENT); }
static int k_key_invalid_extent(struct dctx *c) { return key_invalid_kind(c, KI_EXTENT); }

/* ---- reflink: indirect extents of files sharing data ---- */

/* A seeded indirect extent with at least min_refs references. */
static int pick_indirect(struct dctx *c, u64 min_refs, struct bkey_buf *out)
{
	struct bpos *v = NULL;
	size_t n = 0, cap = 0;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, BTREE_ID_reflink, POS_MIN, k, ret)
		if (k->type == KEY_TYPE_reflink_v &&
		    ((struct bkfs_reflink_v *)bkey_val(k))->refcount >= min_refs &&
		    !grow((void **)&v, &cap, n, sizeof(*v)))
			v[n++] = k->p;
	if (!ret)
		ret = n ? btree_lookup(c->fs, BTREE_ID_reflink, v[pick(c, n)], out) : -BKFS_E_NOENT;
	free(v);
	return ret;
}

/* The files with a reflink pointer into [start, end): named in the damage
 * text, and (affects) when their data may change. */
static int reflink_users(struct dctx *c, u64 start, u64 end, bool affects)
{
	struct btree_iter it;
	struct bkey *k;
	u64 last = 0;
	bool first = true;
	int ret;
	load_dents(c);
	load_inodes(c);
	for_each_btree_key(it, c->fs, BTREE_ID_extents, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_reflink_p)
			continue;
		const struct bkfs_reflink_p *r = bkey_val(k);
		if (r->idx >= end || r->idx + k->size <= start || k->p.inode == last)
			continue;
		last = k->p.inode;
		pb_printf(&c->damaged, "%s", first ? "; shared by " : ", ");
		first = false;
		path_of(c, k->p.inode, &c->damaged);
		if (affects)
			aff_inum(c, k->p.inode);
	}
	return ret;
}

/* An image without shared data: a seeded regular file of at least 64 KiB
 * gets a copy sharing its data beside it (NAME.shared, bkfs_reflink) in a
 * read-write session first; then the filesystem is opened read-only again. */
static int reflink_setup(struct dctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent *d = pick_file(c, 65536);
	struct dinode *in = d ? inode_find(c, d->inum) : NULL;
	if (!in) {
		d_close(c, false);
		return -BKFS_E_NOENT;
	}
	char name[BKFS_NAME_MAX + 1];
	u64 inum;
	ret = -BKFS_E_EXIST;
	for (unsigned i = 0; ret == -BKFS_E_EXIST && i < 100; i++) {
		snprintf(name, sizeof(name), "%.*s.shared%.0u", BKFS_NAME_MAX - 10, d->name, i);
		ret = bkfs_create(c->fs, d->dir, name, in->v.mode, in->v.uid, in->v.gid, 0, NULL, &inum, NULL);
	}
	if (!ret)
		ret = bkfs_reflink(c->fs, d->inum, 0, inum, 0, in->v.size);
	if (ret) {
		report_fail("sharing a file's data first", ret);
		d_close(c, false);
		return ret;
	}
	pb_printf(&c->damaged, "(first ");
	path_of(c, d->inum, &c->damaged);
	pb_printf(&c->damaged, " shared with a new copy %s) ", name);
	if ((ret = d_close(c, true)))
		return ret;
	return d_open(c, OPEN_RO);
}

enum reflink_edit { RE_REFS_UP, RE_REFS_DOWN, RE_DELETE };

static int reflink_kind(struct dctx *c, enum reflink_edit e)
{
	struct bkey_buf v;
	int ret = pick_indirect(c, e == RE_REFS_DOWN ? 2 : 1, &v);
	if (ret == -BKFS_E_NOENT && !(ret = reflink_setup(c)))
		ret = pick_indirect(c, e == RE_REFS_DOWN ? 2 : 1, &v);
	if (ret == -BKFS_E_NOENT) {
		no_target(c, "no indirect extent%s, and no regular file of 64 KiB or more to share",
			  e == RE_REFS_DOWN ? " with two references" : "");
		return NO_TARGET;
	}
	if (ret)
		return ret;
	struct bkfs_reflink_v *rv = bkey_val(&v.k);
	u64 start = bkey_start_pos(&v.k).offset, end = v.k.p.offset;
	pb_printf(&c->damaged, "indirect extent %llu..%llu of the reflink btree (%u sectors, refcount %llu): ",
		  (unsigned long long)start, (unsigned long long)end, v.k.size, (unsigned long long)rv->refcount);
	switch (e) {
	case RE_REFS_UP:
	case RE_REFS_DOWN:
		rv->refcount += e == RE_REFS_UP ? 1 : -1;
		pb_printf(&c->damaged, "refcount set to %llu", (unsigned long long)rv->refcount);
		pb_printf(&c->lost, "none");
		break;
	case RE_DELETE:
		pb_printf(&c->damaged, "deleted, the reflink pointers to it kept");
		pb_printf(&c->lost, "those %u sectors in every file that shares them (the pointers become error keys)",
			  v.k.size);
		break;
	}
	if ((ret = reflink_users(c, start, end, e == RE_DELETE)))
		return ret;
	return edit_leaf_key(c, BTREE_ID_reflink, v.k.p, e == RE_DELETE ? NULL : &v.k);
}

static int k_reflink_refcount_high(struct dctx *c) { return reflink_kind(c, RE_REFS_UP); }
static int k_reflink_refcount_low(struct dctx *c) { return reflink_kind(c, RE_REFS_DOWN); }
static int k_reflink_v_missing(struct dctx *c) { return reflink_kind(c, RE_DELETE); }

/* ================================================================ table */

static const struct kind kinds[] = {
	/* btree nodes and topology */
	{ "node_unreadable", "btree_node_unreadable",
	  "a leaf of the extents/inodes/dirents/xattrs btree fails its checksum", k_node_unreadable },
	{ "node_copy_bad", "btree_node_copy_bad",
	  "the first copy of a btree node with two copies fails its checksum; the other copy is good", k_node_copy_bad },
	{ "root_unreadable_scan", "btree_root_unreadable",
	  "the root of a multi-level btree fails its checksum; its leaves are found by a node scan", k_root_unreadable_scan },
	{ "root_unreadable_empty", "btree_root_unreadable_and_scan_found_nothing",
	  "the root of an empty btree (and every old copy of its nodes) fails its checksum", k_root_unreadable_empty },
	{ "topology_gap", "btree_node_gap_filled_from_scan",
	  "a child pointer removed from a level-1 node; the orphaned leaf is found by the scan", k_topology_gap },
	{ "topology_bad_max", "btree_node_topology_bad_max_key",
	  "the last child of a level-1 node ends before its parent (node and pointer agree)", k_topology_bad_max },
	{ "topology_overlap", "btree_node_topology_overwritten_by_next_node",
	  "a leaf claims the range (and holds the keys, when they fit) of its older predecessor", k_topology_overlap },
	{ "topology_overlap_trim", "btree_node_topology_bad_min_key",
	  "a leaf's min_key moved back into its newer predecessor's range (no keys there)", k_topology_overlap_trim },
	{ "topology_overlap_prev", "btree_node_topology_overwritten_by_prev_node",
	  "a level-1 node's max_key moved over the first child of its older next sibling (three-level btrees only)",
	  k_topology_overlap_prev },
	{ "root_bad_min", "btree_root_bad_min_key",
	  "a root node's header min_key moved up to its first key (the root pointer unchanged)", k_root_bad_min },
	{ "root_bad_max", "btree_root_bad_max_key",
	  "a leaf root's header max_key moved back to its last key (the root pointer unchanged)", k_root_bad_max },
	{ "interior_node_empty", "btree_node_topology_interior_node_empty",
	  "the alloc btree's level-1 root loses every child and no alloc node is left to scan", k_interior_node_empty },
	/* pointers */
	{ "ptr_gen_newer", "ptr_gen_newer_than_bucket_gen",
	  "an extent pointer's gen made newer than its bucket's (a bucket holding only that extent)", k_ptr_gen_newer },
	{ "stale_dirty_ptr", "stale_dirty_ptr", "an extent pointer's gen made one older than its bucket's",
	  k_stale_dirty_ptr },
	{ "ptr_too_stale", "ptr_too_stale", "an extent pointer's gen made 100 older than its bucket's", k_ptr_too_stale },
	{ "ptr_invalid_device", "ptr_to_invalid_device", "an extent pointer's device set to 7", k_ptr_invalid_device },
	{ "ptr_invalid_bucket", "ptr_to_invalid_bucket", "an extent pointer's offset moved beyond the device",
	  k_ptr_invalid_bucket },
	{ "ptr_data_type_mismatch", "ptr_bucket_data_type_mismatch",
	  "an extent pointer moved into a bucket holding btree nodes (with that bucket's gen)", k_ptr_data_type_mismatch },
	/* alloc keys */
	{ "ptr_journal_bucket", "bucket_metadata_type_mismatch",
	  "an extent pointer moved into a journal bucket (with that bucket's gen)", k_ptr_journal_bucket },
	{ "sector_count_overflow", "bucket_sector_count_overflow",
	  "an extent of 2^32-1 sectors for a nonexistent inode added to a leaf, pointing into a bucket with data",
	  k_sector_count_overflow },
	{ "missing_alloc_key", "ptr_to_missing_alloc_key", "the alloc key of a bucket holding user data deleted",
	  k_missing_alloc_key },
	{ "alloc_key_missing", "alloc_key_missing", "the alloc key of a free bucket deleted", k_alloc_key_missing },
	{ "alloc_dirty_sectors", "alloc_key_dirty_sectors_wrong", "a user bucket's alloc key dirty_sectors changed",
	  k_alloc_dirty_sectors },
	{ "alloc_gen", "alloc_key_gen_wrong",
	  "a user bucket's alloc key gen made older than its pointers (the bucket adopts their gen)", k_alloc_gen },
	{ "alloc_data_type", "alloc_key_data_type_wrong",
	  "a user bucket's alloc key data_type set to btree (counts consistent, key valid)", k_alloc_data_type },
	{ "alloc_cached_sectors", "alloc_key_cached_sectors_wrong", "a user bucket's alloc key cached_sectors raised",
	  k_alloc_cached_sectors },
	{ "alloc_fragmentation", "alloc_key_fragmentation_lru_wrong",
	  "a user bucket's alloc key fragmentation index changed", k_alloc_fragmentation },
	{ "alloc_oldest_gen", "alloc_key_oldest_gen_wrong", "a user bucket's alloc key oldest_gen made newer than its gen",
	  k_alloc_oldest_gen },
	{ "alloc_stripe", "alloc_key_stripe_wrong",
	  "an erasure-coded bucket's alloc key names another stripe (needs stripes: bkfs erasure-code)", k_alloc_stripe },
	{ "alloc_stripe_redundancy", "alloc_key_stripe_redundancy_wrong",
	  "an erasure-coded bucket's alloc key stripe_redundancy raised (needs stripes)", k_alloc_stripe_redundancy },
	{ "alloc_stripe_sectors", "alloc_key_stripe_sectors_wrong",
	  "a stripe data bucket's alloc key stripe_sectors changed (needs stripes)", k_alloc_stripe_sectors },
	/* erasure coding */
	{ "stripe_missing", "ptr_to_missing_stripe",
	  "a stripe key deleted, the erasure-coded pointers into it kept (needs stripes)", k_stripe_missing },
	{ "stripe_ptr_incorrect", "ptr_to_incorrect_stripe",
	  "an erasure-coded extent pointer names a parity block of its stripe (needs stripes)", k_ptr_incorrect_stripe },
	{ "stripe_block_sectors", "stripe_sector_count_wrong",
	  "a stripe's sector count of one data block changed (needs stripes)", k_stripe_block_sectors },
	{ "alloc_journal_seq", "alloc_key_journal_seq_in_future",
	  "a user bucket's alloc key journal_seq set beyond the journal", k_alloc_journal_seq },
	/* accounting, versions, superblock */
	{ "accounting", "accounting_mismatch", "an accounting counter changed", k_accounting },
	{ "key_invalid_inode", "inode_invalid",
	  "a regular file's inode key given mode bits beyond file type and permissions (the node stays valid)",
	  k_key_invalid_inode },
	{ "key_invalid_dirent", "bkey_invalid",
	  "a regular file's dirent given a name length its value cannot hold (the node stays valid)",
	  k_key_invalid_dirent },
	{ "key_invalid_extent", "bkey_invalid", "an extent's pointer count set to 5 (the node stays valid)",
	  k_key_invalid_extent },
	/* reflink (an image without shared data gets a reflinked copy first) */
	{ "reflink_refcount_high", "reflink_v_refcount_wrong",
	  "an indirect extent's refcount raised by one (its node checksum recomputed)", k_reflink_refcount_high },
	{ "reflink_refcount_low", "reflink_v_refcount_wrong",
	  "the refcount of an indirect extent shared by two pointers lowered by one", k_reflink_refcount_low },
	{ "reflink_v_missing", "reflink_p_to_missing_reflink_v",
	  "an indirect extent deleted from its leaf, the reflink pointers to it kept", k_reflink_v_missing },
	{ "version_future", "bkey_version_in_future", "a key's version set beyond the highest issued",
	  k_version_future },
	{ "bitmap_unmarked", "btree_bitmap_not_marked",
	  "a member btree bitmap bit covering a node cleared (every superblock copy)", k_bitmap_unmarked },
	{ "member_bitmap_shift", "sb_member_bitmap_bad",
	  "a member's btree bitmap shift lowered by one, so its 64 bits stop short of the device's end (every superblock copy)",
	  k_member_bitmap_shift },
	{ "sb_primary", "sb_copy_bad", "the primary superblock copy overwritten with random bytes", k_sb_primary },
	{ "sb_stale", "sb_copy_stale", "a backup superblock copy made one write older", k_sb_stale },
	/* journal */
	{ "journal_entry", "journal_entry_bad_csum",
	  "unclean filesystem: a journal entry after the checkpoint fails its checksum", k_journal_entry },
	{ "journal_gap", "journal_entries_after_gap",
	  "unclean filesystem: a journal entry after the checkpoint erased, a later one kept", k_journal_gap },
	{ "journal_torn", "journal_entry_torn",
	  "unclean filesystem: a journal entry with a valid checksum whose records do not parse", k_journal_torn },
	{ "journal_no_checkpoint", "journal_no_checkpoint",
	  "clean filesystem: every journal entry erased (the superblock holds the roots)", k_journal_no_checkpoint },
	/* filesystem */
	{ "dirent_missing_inode", "dirent_to_missing_inode", "a regular file's inode deleted, its dirent kept",
	  k_dirent_missing_inode },
	{ "unreachable_inode", "inode_unreachable", "a regular file's only dirent deleted", k_unreachable_inode },
	{ "link_count", "inode_link_count_wrong", "a regular file's nlink raised by one", k_link_count },
	{ "i_size", "inode_i_size_wrong", "a regular file's i_size set two blocks short of its data", k_i_size },
	{ "i_sectors", "inode_i_sectors_wrong", "a regular file's sector count raised", k_i_sectors },
	{ "dir_loop", "dir_loop", "a directory moved into its own subdirectory", k_dir_loop },
	{ "dir_parent_wrong", "dir_parent_wrong", "a directory's parent field set to the root", k_dir_parent_wrong },
	{ "dir_multiple_links", "dir_multiple_links", "a directory given a second name in another directory",
	  k_dir_multiple_links },
	{ "root_inode_missing", "root_inode_missing", "the root directory's inode deleted", k_root_inode_missing },
	{ "dirent_d_type", "dirent_d_type_wrong", "a regular file's dirent d_type set to symlink", k_dirent_d_type },
	{ "extent_missing_inode", "extent_for_missing_inode", "an inline data extent added for a nonexistent inode",
	  k_extent_missing_inode },
	{ "xattr_missing_inode", "xattr_for_missing_inode", "an xattr added for a nonexistent inode",
	  k_xattr_missing_inode },
	{ "dirent_in_non_dir", "dirent_in_non_dir", "a dirent added inside a regular file", k_dirent_in_non_dir },
};

static void list_kinds(FILE *f)
{
	fprintf(f, "# kind  expected-fsck-error  description\n");
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		fprintf(f, "%s  %s  %s\n", kinds[i].name, kinds[i].expect, kinds[i].desc);
}

static void free_ctx(struct dctx *c)
{
	for (size_t i = 0; i < c->nr_w; i++)
		free(c->w[i].buf);
	free(c->w);
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		free(c->devpath[d]);
	free(c->aff_inums);
	free(c->aff_dirents);
	pb_exit(&c->damaged);
	pb_exit(&c->lost);
	pb_exit(&c->affects);
}

static void corrupt_usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs debug corrupt KIND [--seed N] DEV...\n"
		"       bkfs debug corrupt --list\n"
		"Damage a filesystem image in a named, reproducible way (the same seed on\n"
		"the same image makes the same damage), for testing fsck. The filesystem\n"
		"must not be in use.\n"
		"  --seed N   choose the target with seed N (default 1)\n"
		"  --list     print the kinds: NAME  expected-fsck-error  description\n"
		"Prints the damaged object, the error `bkfs fsck` should report, what data\n"
		"may be lost, and one \"affects: INUM PATH\" line per path that may change.\n"
		"Exit status: 0 damage written, 1 no suitable target (or an error), 16 usage error.\n");
}

static int cmd_corrupt(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, 0, 's' },
		{ "list", no_argument, 0, 'l' },
		{ "help", no_argument, 0, 'h' },
		{ 0 }
	};
	u64 seed = 1;
	int opt;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":s:lh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': {
			char *end;
			seed = strtoull(optarg, &end, 0);
			if (!*optarg || *end) {
				fprintf(stderr, "bkfs debug corrupt: bad seed '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'l':
			list_kinds(stdout);
			return 0;
		case 'h':
			corrupt_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "bkfs debug corrupt: option '%s' requires an argument\n", argv[optind - 1]);
			corrupt_usage(stderr);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "bkfs debug corrupt: unknown option '%s'\n", argv[optind - 1]);
			corrupt_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "bkfs debug corrupt: no kind given\n");
		corrupt_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind++];
	const struct kind *k = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i].name, name))
			k = &kinds[i];
	if (!k) {
		fprintf(stderr, "bkfs debug corrupt: unknown kind '%s' (see --list)\n", name);
		return EXIT_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "bkfs debug corrupt: no device given\n");
		corrupt_usage(stderr);
		return EXIT_USAGE;
	}
	if (argc - optind > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs debug corrupt: at most %d devices\n", BKFS_MAX_DEVS);
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st)) {
			fprintf(stderr, "bkfs debug corrupt: %s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			fprintf(stderr, "bkfs debug corrupt: %s: not a regular file or block device\n", argv[i]);
			return 1;
		}
	}

	struct dctx c = { .kind = k->name, .paths = argv + optind, .nr_paths = argc - optind };
	/* the same seed gives the same damage; mix in the kind so kinds differ */
	c.rng = seed * 0x9E3779B97F4A7C15ull ^ hash64(k->name, strlen(k->name));
	int ret = d_open(&c, OPEN_RO);
	if (ret) {
		free_ctx(&c);
		return 1; /* d_open said why */
	}
	ret = k->fn(&c);
	if (!ret && c.fs)
		ret = compute_affects(&c);
	d_close(&c, false);
	if (!ret)
		ret = apply_writes(&c);
	int status = 0;
	if (ret == NO_TARGET) {
		status = 1;
	} else if (ret) {
		fprintf(stderr, "bkfs debug corrupt: %s: %s\n", k->name, bkfs_strerror(ret));
		status = 1;
	} else {
		printf("kind: %s (seed %llu)\n", k->name, (unsigned long long)seed);
		printf("damaged: %s\n", pb_str(&c.damaged));
		printf("expect: %s (fsck -n exits 4, fsck -y repairs it, a second fsck -n is clean)\n", k->expect);
		printf("lost: %s\n", c.lost.len ? pb_str(&c.lost) : "none");
		fputs(pb_str(&c.affects), stdout);
	}
	free_ctx(&c);
	return status;
}

static void debug_usage(FILE *f)
{
	fprintf(f, "usage: bkfs debug corrupt KIND [--seed N] DEV...\n"
		   "       bkfs debug corrupt --list\n");
}

int cmd_debug(int argc, char **argv)
{
	if (argc < 2) {
		debug_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		debug_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "corrupt"))
		return cmd_corrupt(argc - 1, argv + 1);
	fprintf(stderr, "bkfs debug: unknown subcommand '%s'\n", argv[1]);
	debug_usage(stderr);
	return EXIT_USAGE;
}
