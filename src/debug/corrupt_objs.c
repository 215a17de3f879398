/* corrupt_objs.c - what the kinds find their targets among: the written
 * btree nodes (walked from the roots through interior nodes, so that node
 * locations come from the pointers), raw edits of node buffers, and the
 * directory entries and inodes (with the paths they name, for messages and
 * the "affects:" lines). */
#include "corrupt_int.h"
#include "../util/darray.h"
#include "../format/node_format.h"
#include "../btree/iter.h"
#include <sys/stat.h>
#include <dirent.h>

/* ---------------------------------------------------------------- nodes */

static int add_node(struct corrupt_ctx *c, struct btree *b, const struct bkfs_btree_ptr *p, bool root, int parent,
		    u32 pidx)
{
	int ret = darray_room(c->nodes, c->cap_nodes, c->nr_nodes + 1, 64);
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

static int visit_node(struct corrupt_ctx *c, unsigned id, struct btree *b, int self)
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
int walk_nodes(struct corrupt_ctx *c)
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

u32 nr_children(struct corrupt_ctx *c, int idx)
{
	u32 n = 0;
	for (size_t i = 0; i < c->nr_nodes; i++)
		n += c->nodes[i].parent == idx;
	return n;
}

int child_at(struct corrupt_ctx *c, int parent, u32 pidx)
{
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].parent == parent && c->nodes[i].pidx == pidx)
			return (int)i;
	return -1;
}

bool fs_btree(unsigned id)
{
	return id == BTREE_ID_extents || id == BTREE_ID_inodes || id == BTREE_ID_dirents || id == BTREE_ID_xattrs;
}

void node_text(struct printbuf *out, const struct dnode *n)
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
u8 *node_read(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p)
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
int node_queue(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p, const u8 *buf)
{
	int ret = 0;
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS && !ret; i++)
		ret = queue_write(c, p->ptrs[i].dev, p->ptrs[i].offset << SECTOR_SHIFT, buf, c->node_bytes);
	return ret;
}

int node_commit(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p, u8 *buf)
{
	node_csum_set(buf, c->node_bytes);
	return node_queue(c, p, buf);
}

struct dnode *pick_node(struct corrupt_ctx *c, node_filter ok, const char *none)
{
	size_t *cand = NULL, n = 0, cap = 0;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (ok(c, &c->nodes[i]) && !darray_room(cand, cap, n + 1, 64))
			cand[n++] = i;
	struct dnode *t = n ? &c->nodes[cand[pick(c, n)]] : NULL;
	free(cand);
	if (!t)
		no_target(c, "%s", none);
	return t;
}

int node_rewrite(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p,
		 void (*edit)(struct corrupt_ctx *c, u8 *buf, const void *arg), const void *arg)
{
	u8 *buf = node_read(c, p);
	if (!buf)
		return -BKFS_E_IO;
	edit(c, buf, arg);
	int ret = node_commit(c, p, buf);
	free(buf);
	return ret;
}

int node_bound_set(struct corrupt_ctx *c, const struct dnode *n, const struct dnode *parent, enum node_bound which,
		   struct bpos pos, const u8 *contents)
{
	u8 *nb = node_read(c, &n->ptr), *pb = node_read(c, &parent->ptr);
	int ret = -BKFS_E_IO;
	if (nb && pb) {
		if (contents)
			memcpy(nb, contents, c->node_bytes);
		struct bkey_buf kb;
		struct bkey *pk = node_buf_key(pb, n->pidx);
		memcpy(&kb, pk, bkey_bytes(pk));
		if (which == BOUND_MIN) {
			hdr(nb)->min_key = pos;
			((struct bkfs_btree_ptr *)bkey_val(&kb.k))->min_key = pos;
		} else {
			hdr(nb)->max_key = pos;
			kb.k.p = pos;
		}
		ret = node_buf_replace(pb, c->node_bytes, n->pidx, &kb.k);
		if (!ret)
			ret = node_commit(c, &n->ptr, nb);
		if (!ret)
			ret = node_commit(c, &parent->ptr, pb);
	}
	free(nb);
	free(pb);
	return ret;
}

/* ---- raw key editing inside a node buffer (node_buf_*, node_format.h) ---- */


/* The written leaf that holds the key at pos of btree id. */
static int leaf_of(struct corrupt_ctx *c, unsigned id, struct bpos pos, struct bkfs_btree_ptr *out)
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
int edit_leaf_key(struct corrupt_ctx *c, unsigned id, struct bpos pos, const struct bkey *nk)
{
	struct bkfs_btree_ptr p;
	int ret = leaf_of(c, id, pos, &p);
	if (ret) {
		return report_fail(c, "cannot locate the leaf of the target key", ret);
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
	if (!ret)
		ret = node_commit(c, &p, buf);
	free(buf);
	return ret;
}

/* Flip bytes inside the checksummed part of a node image so that it no
 * longer validates (the magic stays, so it still looks like a node). */
void node_damage(struct corrupt_ctx *c, u8 *buf)
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
	/* and a chunk table no longer vouches for any chunk: the node is lost
	 * as a whole (node_chunks_damage damages just one chunk) */
	u32 image = node_image_bytes(h, c->node_bytes);
	if (h->chunk_shift && image > used)
		buf[image - sizeof(struct bkfs_node_chunk_trailer)] ^= 0xff;
}

/* Flip bytes inside one chunk of a node's keys, not the header's chunk,
 * leaving its chunk table sound: the checker keeps the other chunks' keys.
 * Returns the damaged chunk, or -1 if the node has no table or a single
 * chunk. */
int node_chunks_damage(struct corrupt_ctx *c, u8 *buf)
{
	struct bkfs_node_hdr *h = hdr(buf);
	u32 used = h->used_bytes, size = 1u << h->chunk_shift;
	if (!h->chunk_shift || used <= size || used > c->node_bytes)
		return -1;
	u32 n = (used + size - 1) / size;
	u32 chunk = 1 + (u32)pick(c, n - 1);
	u32 start = chunk * size, len = MIN(start + size, used) - start;
	u32 at = start + (u32)pick(c, len), nb = MIN(len - (at - start), 16u);
	for (u32 i = 0; i < nb; i++)
		buf[at + i] ^= 0xa5 | (u8)pick(c, 256);
	h->csum ^= 0x5a5a5a5a;
	return (int)chunk;
}

/* Every copy of a node damaged. */
int node_destroy(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p)
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

int load_dents(struct corrupt_ctx *c)
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
		if ((ret = darray_room(c->dents, c->cap_dents, c->nr_dents + 1, 64)))
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

int load_inodes(struct corrupt_ctx *c)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	if (c->inodes)
		return 0;
	for_each_btree_key(it, c->fs, BTREE_ID_inodes, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_inode || bkey_val_bytes(k) < sizeof(struct bkfs_inode))
			continue;
		if ((ret = darray_room(c->inodes, c->cap_inodes, c->nr_inodes + 1, 64)))
			return ret;
		c->inodes[c->nr_inodes].inum = k->p.offset;
		memcpy(&c->inodes[c->nr_inodes].v, bkey_val(k), sizeof(struct bkfs_inode));
		c->nr_inodes++;
	}
	if (!c->inodes)
		c->inodes = calloc(1, sizeof(*c->inodes));
	return ret;
}

struct dinode *inode_find(struct corrupt_ctx *c, u64 inum)
{
	size_t i = sorted_lower_bound(c->nr_inodes, m, c->inodes[m].inum < inum);
	return i < c->nr_inodes && c->inodes[i].inum == inum ? &c->inodes[i] : NULL;
}

/* first dirent of dir (dents are sorted by (dir, slot)) */
size_t dents_of(struct corrupt_ctx *c, u64 dir)
{
	size_t lo = sorted_lower_bound(c->nr_dents, m, c->dents[m].dir < dir);
	return lo;
}

struct dent *dent_of_inum(struct corrupt_ctx *c, u64 inum)
{
	for (size_t i = 0; i < c->nr_dents; i++)
		if (c->dents[i].inum == inum)
			return &c->dents[i];
	return NULL;
}

bool is_dir(struct corrupt_ctx *c, u64 inum)
{
	struct dinode *in = inode_find(c, inum);
	return in && S_ISDIR(in->v.mode);
}

/* Path of an inode through its first dirent (for messages). */
void path_of(struct corrupt_ctx *c, u64 inum, struct printbuf *out)
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

void aff_inum(struct corrupt_ctx *c, u64 inum)
{
	for (size_t i = 0; i < c->nr_aff_inums; i++)
		if (c->aff_inums[i] == inum)
			return;
	if (!darray_room(c->aff_inums, c->cap_aff_inums, c->nr_aff_inums + 1, 64))
		c->aff_inums[c->nr_aff_inums++] = inum;
}

void aff_dirent(struct corrupt_ctx *c, struct bpos p)
{
	if (!darray_room(c->aff_dirents, c->cap_aff_dirents, c->nr_aff_dirents + 1, 64))
		c->aff_dirents[c->nr_aff_dirents++] = p;
}

static bool in_aff_inums(struct corrupt_ctx *c, u64 inum)
{
	for (size_t i = 0; i < c->nr_aff_inums; i++)
		if (c->aff_inums[i] == inum)
			return true;
	return false;
}

static bool in_aff_dirents(struct corrupt_ctx *c, u64 dir, u64 slot)
{
	for (size_t i = 0; i < c->nr_aff_dirents; i++)
		if (c->aff_dirents[i].inode == dir && c->aff_dirents[i].offset == slot)
			return true;
	return false;
}

static void list_tree(struct corrupt_ctx *c, u64 dir, char *path, size_t plen, bool affected, unsigned depth)
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
			pb_printf(&c->r->affects, "affects: %llu %s\n", (unsigned long long)d->inum, path);
		if (d->inum != dir && is_dir(c, d->inum) && d->d_type == DT_DIR)
			list_tree(c, d->inum, path, plen + 1 + nl, aff, depth + 1);
		path[plen] = 0;
	}
}

/* Turn the affected inodes/dirents into "affects:" lines (fs must be open,
 * before the damage). */
int compute_affects(struct corrupt_ctx *c)
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
		pb_printf(&c->r->affects, "affects: %llu /\n", (unsigned long long)BKFS_ROOT_INO);
	list_tree(c, BKFS_ROOT_INO, path, 0, false, 0);
	free(path);
	return 0;
}

u64 unused_inum(struct corrupt_ctx *c)
{
	u64 inum = MAX(c->fs->next_inum, c->sb.next_inum) + 1000 + pick(c, 1000);
	while (inode_find(c, inum))
		inum++;
	return inum;
}

void caches_free(struct corrupt_ctx *c)
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

/* ---- candidate files ---- */

/* regular files with one link and one dirent; min_size in bytes */
size_t file_candidates(struct corrupt_ctx *c, u64 min_size, struct dent ***out)
{
	struct dent **v = NULL;
	size_t nr = 0, cap = 0;
	for (size_t i = 0; i < c->nr_dents; i++) {
		struct dent *d = &c->dents[i];
		struct dinode *in = inode_find(c, d->inum);
		if (!in || !S_ISREG(in->v.mode) || in->v.nlink != 1 || in->v.size < min_size || d->d_type != DT_REG)
			continue;
		if (darray_room(v, cap, nr + 1, 64))
			break;
		v[nr++] = d;
	}
	*out = v;
	return nr;
}

struct dent *pick_file(struct corrupt_ctx *c, u64 min_size, const char *none)
{
	struct dent **v;
	size_t n = file_candidates(c, min_size, &v);
	struct dent *d = n ? v[pick(c, n)] : NULL;
	free(v);
	if (!d && none)
		no_target(c, "%s", none);
	return d;
}

void file_text(struct corrupt_ctx *c, struct dent *d)
{
	pb_printf(&c->r->damaged, "inode %llu (", (unsigned long long)d->inum);
	path_of(c, d->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, ")");
}
