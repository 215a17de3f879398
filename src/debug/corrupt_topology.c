/* corrupt_topology.c - kinds that damage btree nodes and how they fit
 * together: unreadable nodes and roots, gaps, overlaps and bad bounds
 * between siblings and at the roots, an emptied interior node. They run
 * after the walk of every btree's nodes (c->nodes). */
#include "corrupt_int.h"
#include "../format/node_format.h"

/* Everything the keys of a leaf of a filesystem btree name may change. */
static int leaf_affects(struct corrupt_ctx *c, const struct dnode *t)
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

static bool fs_leaf_below_interior(struct corrupt_ctx *c, const struct dnode *n)
{
	return !n->level && !n->root && fs_btree(n->id) && n->nr_keys;
}

int corrupt_node_unreadable(struct corrupt_ctx *c)
{
	struct dnode *t = pick_node(c, fs_leaf_below_interior,
				    "no leaf below an interior node in the extents, inodes, dirents or xattrs btrees");
	if (!t)
		return NO_TARGET;
	node_text(&c->r->damaged, t);
	/* the keys in this node are lost */
	int ret = leaf_affects(c, t);
	if (ret)
		return ret;
	pb_printf(&c->r->lost, "the %u keys of the node, unless a node scan finds another copy", t->nr_keys);
	return node_destroy(c, &t->ptr);
}

/* a leaf of a filesystem btree with a chunk table of two or more chunks */
static bool fs_leaf_chunked(struct corrupt_ctx *c, const struct dnode *n)
{
	if (!fs_leaf_below_interior(c, n))
		return false;
	u8 *buf = node_read(c, &n->ptr);
	bool ok = buf && hdr(buf)->chunk_shift && hdr(buf)->used_bytes > 1u << hdr(buf)->chunk_shift;
	free(buf);
	return ok;
}

int corrupt_node_keys_salvaged(struct corrupt_ctx *c)
{
	struct dnode *t = pick_node(c, fs_leaf_chunked,
				    "no leaf of two chunks or more below an interior node in the extents, inodes, "
				    "dirents or xattrs btrees");
	if (!t)
		return NO_TARGET;
	u8 *buf = node_read(c, &t->ptr);
	if (!buf)
		return -BKFS_E_IO;
	node_text(&c->r->damaged, t);
	int ret = leaf_affects(c, t), chunk = node_chunks_damage(c, buf);
	if (!ret) {
		pb_printf(&c->r->lost, "the keys of chunk %d of the node (in every copy); the others are kept", chunk);
		ret = node_queue(c, &t->ptr, buf);
	}
	free(buf);
	return ret;
}

/* an extents leaf below an interior node holding inline data (symlink
 * targets are inline data) */
static bool extents_leaf_inline(struct corrupt_ctx *c, const struct dnode *n)
{
	if (n->id != BTREE_ID_extents || !fs_leaf_below_interior(c, n))
		return false;
	u8 *buf = node_read(c, &n->ptr);
	bool found = false;
	for (u32 i = 0; buf && i < hdr(buf)->nr_keys && !found; i++)
		found = node_buf_key(buf, i)->type == KEY_TYPE_inline_data;
	free(buf);
	return found;
}

static bool extents_leaf(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->id == BTREE_ID_extents && fs_leaf_below_interior(c, n);
}

/* Clear the checksum of every valid node of btree id the scan could find
 * (old copies left behind by copy-on-write) at level 0 whose keys overlap
 * min..max (any level when min..max is everything), so that it finds none. */
static int destroy_scannable(struct corrupt_ctx *c, unsigned id, struct bpos min, struct bpos max, unsigned *count)
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
			bool all = bpos_eq(min, POS_MIN) && bpos_eq(max, POS_MAX);
			if (!all && (h->level || bpos_cmp(h->max_key, min) < 0 || bpos_cmp(h->min_key, max) > 0))
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

int corrupt_extents_leaf_lost(struct corrupt_ctx *c)
{
	/* preferably one holding symlink targets; else any extents leaf */
	struct dnode *t = pick_node(c, extents_leaf_inline, "no extents leaf below an interior node holds inline data");
	if (!t) {
		pb_reset(&c->r->msgs);
		t = pick_node(c, extents_leaf, "no extents leaf with keys below an interior node");
	}
	if (!t)
		return NO_TARGET;
	node_text(&c->r->damaged, t);
	int ret = leaf_affects(c, t);
	if (ret)
		return ret;
	pb_printf(&c->r->lost, "the data of the %u keys of the node: their files keep what remains, "
		  "symlinks without a target are removed", t->nr_keys);
	/* older versions of the leaf left by copy-on-write would let the
	 * scan bring (stale) keys back: they go too */
	unsigned count = 0;
	if ((ret = destroy_scannable(c, t->id, t->min, t->max, &count)))
		return ret;
	return node_destroy(c, &t->ptr);
}

static bool has_two_copies(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->ptr.nr_ptrs >= 2 && n->ptr.ptrs[0].dev < c->nr_devs;
}

/* The first copy of a node with two or more (the one a read tries first,
 * so the default check meets it); the others stay good. */
int corrupt_node_copy_bad(struct corrupt_ctx *c)
{
	struct dnode *t = pick_node(c, has_two_copies, "no btree node with two copies (format with --metadata-replicas 2)");
	if (!t)
		return NO_TARGET;
	const struct bkfs_ptr *p = &t->ptr.ptrs[0];
	node_text(&c->r->damaged, t);
	pb_printf(&c->r->damaged, "; copy 0 damaged");
	pb_printf(&c->r->lost, "none: the node is read from another copy");
	u8 *buf = node_read(c, &t->ptr);
	if (!buf)
		return -BKFS_E_IO;
	node_damage(c, buf);
	int ret = queue_write(c, p->dev, p->offset << SECTOR_SHIFT, buf, c->node_bytes);
	free(buf);
	return ret;
}

static bool fs_interior_root(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->root && n->level && fs_btree(n->id);
}

int corrupt_root_unreadable_scan(struct corrupt_ctx *c)
{
	struct dnode *t = pick_node(c, fs_interior_root, "no extents, inodes, dirents or xattrs btree has more than one level");
	if (!t)
		return NO_TARGET;
	node_text(&c->r->damaged, t);
	pb_printf(&c->r->lost, "none: every leaf is found by the node scan");
	return node_destroy(c, &t->ptr);
}

static bool extents_root(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->root && n->id == BTREE_ID_extents;
}

static bool accounting_root(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->root && n->id == BTREE_ID_accounting;
}

/* Two roots at once: the checker rebuilds both from scanned nodes, and the
 * counters it recomputes must take the lost extents into account (a
 * second check is clean, no counter negative). */
int corrupt_roots_extents_accounting(struct corrupt_ctx *c)
{
	struct dnode *e = pick_node(c, extents_root, "no extents root");
	struct dnode *a = e ? pick_node(c, accounting_root, "no accounting root") : NULL;
	if (!a)
		return NO_TARGET;
	node_text(&c->r->damaged, e);
	pb_printf(&c->r->damaged, "; ");
	node_text(&c->r->damaged, a);
	int ret = e->level ? 0 : leaf_affects(c, e);
	if (ret)
		return ret;
	pb_printf(&c->r->lost, e->level ? "none: every extents leaf is found by the node scan" :
		  "the extents the root leaf held, unless the scan finds them; counters are recomputed");
	if ((ret = node_destroy(c, &e->ptr)))
		return ret;
	return node_destroy(c, &a->ptr);
}


static bool empty_root(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->root && !n->level && !n->nr_keys && n->id != BTREE_ID_alloc && n->id != BTREE_ID_accounting;
}

int corrupt_root_unreadable_empty(struct corrupt_ctx *c)
{
	struct dnode *t = pick_node(c, empty_root, "no empty btree (e.g. reflink or stripes)");
	if (!t)
		return NO_TARGET;
	node_text(&c->r->damaged, t);
	unsigned count = 0;
	int ret = destroy_scannable(c, t->id, POS_MIN, POS_MAX, &count);
	if (ret)
		return ret;
	pb_printf(&c->r->damaged, "; %u on-disk copies of %s nodes made unreadable", count, btree_id_str(t->id));
	pb_printf(&c->r->lost, "none: the btree was empty");
	return node_destroy(c, &t->ptr);
}

/* level-1 nodes with at least min children, in btrees accepted by ok() */
static size_t level1_nodes(struct corrupt_ctx *c, u32 min, bool (*ok)(unsigned), size_t *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < max; i++)
		if (c->nodes[i].level == 1 && ok(c->nodes[i].id) && nr_children(c, (int)i) >= min &&
		    c->nodes[i].nr_keys == nr_children(c, (int)i))
			out[n++] = i;
	return n;
}

static bool any_btree(unsigned id) { (void)id; return true; }

static void delete_key(struct corrupt_ctx *c, u8 *buf, const void *idx)
{
	node_buf_delete(buf, c->node_bytes, *(const u32 *)idx);
}

int corrupt_topology_gap(struct corrupt_ctx *c)
{
	size_t cand[1024];
	size_t n = level1_nodes(c, 3, fs_btree, cand, ARRAY_SIZE(cand));
	if (!n)
		return no_target(c, "no level-1 node with three or more children in the extents, inodes, dirents or xattrs btrees");
	size_t pi = cand[pick(c, n)];
	struct dnode *p = &c->nodes[pi];
	u32 idx = 1 + (u32)pick(c, p->nr_keys - 2);
	int ci = child_at(c, (int)pi, idx);
	if (ci < 0)
		return -BKFS_E_CORRUPT;
	pb_printf(&c->r->damaged, "pointer %u of ", idx);
	node_text(&c->r->damaged, p);
	pb_printf(&c->r->damaged, " removed; orphaned child: ");
	node_text(&c->r->damaged, &c->nodes[ci]);
	pb_printf(&c->r->lost, "none: the orphaned node is found by the node scan");
	return node_rewrite(c, &p->ptr, delete_key, &idx);
}

/* Last child of a level-1 node ends short of the parent: the child's header
 * max_key and its pointer are both moved back to its last key. */
int corrupt_topology_bad_max(struct corrupt_ctx *c)
{
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
	if (!m)
		return no_target(c, "no level-1 node whose last child ends after its last key");
	size_t sel = pick(c, m);
	struct dnode *p = &c->nodes[cand[sel]], *ch = &c->nodes[child[sel]];
	node_text(&c->r->damaged, ch);
	pb_printf(&c->r->damaged, " (last child of ");
	node_text(&c->r->damaged, p);
	pb_printf(&c->r->damaged, "): max_key moved back to ");
	bpos_to_text(&c->r->damaged, lastk[sel]);
	pb_printf(&c->r->lost, "none: no key lay beyond the new max_key");
	return node_bound_set(c, ch, p, BOUND_MAX, lastk[sel], NULL);
}

struct sib_pair { size_t parent; int prev, cur; };

static size_t sibling_pairs(struct corrupt_ctx *c, bool cur_newer, struct sib_pair *out, size_t max)
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

/* b's header with a's keys (when merge) then b's own, starting at a's min */
static u8 *merged_node(struct corrupt_ctx *c, const struct dnode *a, const struct dnode *b, bool merge)
{
	u8 *ab = node_read(c, &a->ptr), *bb = node_read(c, &b->ptr), *nb = calloc(1, c->node_bytes);
	const u32 h = sizeof(struct bkfs_node_hdr);
	if (ab && bb && nb) {
		u32 akeys = merge ? hdr(ab)->used_bytes - h : 0;
		u32 bkeys = hdr(bb)->used_bytes - h;
		memcpy(nb, bb, h);
		memcpy(nb + h, ab + h, akeys);
		memcpy(nb + h + akeys, bb + h, bkeys);
		hdr(nb)->nr_keys = (merge ? hdr(ab)->nr_keys : 0) + hdr(bb)->nr_keys;
		hdr(nb)->used_bytes = h + akeys + bkeys;
		if (merge)
			hdr(nb)->journal_seq = MAX(hdr(ab)->journal_seq, hdr(bb)->journal_seq);
	} else {
		free(nb);
		nb = NULL;
	}
	free(ab);
	free(bb);
	return nb;
}

/* The newer of two siblings also holds the older one's keys and claims its
 * range: the older node is entirely overwritten by the next node. */
int corrupt_topology_overlap(struct corrupt_ctx *c)
{
	int ret;
	struct sib_pair cand[2048], fit[2048];
	size_t n = sibling_pairs(c, true, cand, ARRAY_SIZE(cand)), m = 0;
	u32 room = c->node_bytes - sizeof(struct bkfs_node_hdr);
	for (size_t i = 0; i < n; i++)
		if (c->nodes[cand[i].prev].used + c->nodes[cand[i].cur].used <= room)
			fit[m++] = cand[i];
	if (!n)
		return no_target(c, "no pair of sibling leaves where the next one is newer");
	/* prefer a pair whose keys fit in one node: nothing is lost then */
	bool merge = m > 0;
	struct sib_pair s = merge ? fit[pick(c, m)] : cand[pick(c, n)];
	struct dnode *p = &c->nodes[s.parent], *a = &c->nodes[s.prev], *b = &c->nodes[s.cur];
	node_text(&c->r->damaged, b);
	if (merge) {
		pb_printf(&c->r->damaged, " now also holds the keys and range of its older predecessor ");
		node_text(&c->r->damaged, a);
		pb_printf(&c->r->lost, "none: the newer node holds every key of the older one");
	} else {
		pb_printf(&c->r->damaged, " now claims the range of its older predecessor ");
		node_text(&c->r->damaged, a);
		pb_printf(&c->r->damaged, " (no sibling pair fits in one node, so its keys are not copied)");
		pb_printf(&c->r->lost, "the %u keys of the older node", a->nr_keys);
		if ((ret = leaf_affects(c, a)))
			return ret;
	}
	u8 *nb = merged_node(c, a, b, merge);
	if (!nb)
		return -BKFS_E_IO;
	ret = node_bound_set(c, b, p, BOUND_MIN, a->min, nb);
	free(nb);
	return ret;
}

/* Below a level-2 node, a level-1 node P whose next sibling L is older gets
 * L's first child's range: P's max_key (header and pointer) moves up to that
 * child's end. L is not newer, so its start is trimmed to follow P; P's
 * missing range is filled from the scanned leaves (that child); and L's first
 * child, now entirely before L's start, is overwritten by the previous node.
 * Nothing is lost: the child moves from L to P. */
int corrupt_topology_overlap_prev(struct corrupt_ctx *c)
{
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
	if (!n)
		return no_target(c, "no level-2 node with a level-1 child older than its predecessor (three-level btrees: "
				     "format with small nodes, e.g. --btree-node-size 4k)");
	struct sib_pair s = cand[pick(c, n)];
	struct dnode *gp = &c->nodes[s.parent], *a = &c->nodes[s.prev], *b = &c->nodes[s.cur];
	struct dnode *first = &c->nodes[child_at(c, s.cur, 0)];
	node_text(&c->r->damaged, a);
	pb_printf(&c->r->damaged, ": max_key moved up to ");
	bpos_to_text(&c->r->damaged, first->max);
	pb_printf(&c->r->damaged, ", over the first child ");
	node_text(&c->r->damaged, first);
	pb_printf(&c->r->damaged, " of its older next sibling ");
	node_text(&c->r->damaged, b);
	pb_printf(&c->r->lost, "none: the child is found by the node scan and moves to the previous node");
	return node_bound_set(c, a, gp, BOUND_MAX, first->max, NULL);
}

/* A node's min_key (header and pointer) moved back into its newer
 * predecessor's range: it must be trimmed back (bad min_key). */
int corrupt_topology_overlap_trim(struct corrupt_ctx *c)
{
	struct sib_pair cand[2048];
	size_t n = sibling_pairs(c, false, cand, ARRAY_SIZE(cand)), m = 0;
	for (size_t i = 0; i < n; i++)
		if (c->nodes[cand[i].prev].nr_keys >= 2 && c->nodes[cand[i].prev].seq > c->nodes[cand[i].cur].seq)
			cand[m++] = cand[i];
	if (!m)
		return no_target(c, "no pair of sibling leaves where the previous one is newer");
	struct sib_pair s = cand[pick(c, m)];
	struct dnode *p = &c->nodes[s.parent], *a = &c->nodes[s.prev], *b = &c->nodes[s.cur];
	u8 *ab = node_read(c, &a->ptr);
	if (!ab)
		return -BKFS_E_IO;
	/* new min: a key of the predecessor other than its first */
	u32 ki = 1 + (u32)pick(c, hdr(ab)->nr_keys - 1);
	struct bpos nmin = node_buf_key(ab, ki)->p;
	free(ab);
	node_text(&c->r->damaged, b);
	pb_printf(&c->r->damaged, ": min_key moved back to ");
	bpos_to_text(&c->r->damaged, nmin);
	pb_printf(&c->r->damaged, ", inside its newer predecessor ");
	node_text(&c->r->damaged, a);
	pb_printf(&c->r->lost, "none: the node has no keys in the overlapping range");
	return node_bound_set(c, b, p, BOUND_MIN, nmin, NULL);
}

struct header_bound { bool max; struct bpos to; };

static void set_header_bound(struct corrupt_ctx *c, u8 *buf, const void *arg)
{
	const struct header_bound *e = arg;
	if (e->max)
		hdr(buf)->max_key = e->to;
	else
		hdr(buf)->min_key = e->to;
}

/* A root node's header range narrowed to its keys: min_key moved up to its
 * first key, or (a leaf root) max_key moved back to its last key. The root
 * pointer (in the journal's checkpoint) is left alone: a root's range is the
 * whole key space, whatever its header says. */
static int root_range_kind(struct corrupt_ctx *c, bool max)
{
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
	if (!n)
		return no_target(c, max ? "no leaf root with a key before POS_MAX" : "no root with a key after POS_MIN");
	size_t sel = pick(c, n);
	struct dnode *t = &c->nodes[cand[sel]];
	node_text(&c->r->damaged, t);
	pb_printf(&c->r->damaged, ": header %s moved to its %s key ", max ? "max_key" : "min_key", max ? "last" : "first");
	bpos_to_text(&c->r->damaged, to[sel]);
	pb_printf(&c->r->lost, "none: no key lies outside the new range");
	struct header_bound e = { max, to[sel] };
	return node_rewrite(c, &t->ptr, set_header_bound, &e);
}

int corrupt_root_bad_min(struct corrupt_ctx *c) { return root_range_kind(c, false); }
int corrupt_root_bad_max(struct corrupt_ctx *c) { return root_range_kind(c, true); }

static void empty_node(struct corrupt_ctx *c, u8 *buf, const void *arg)
{
	hdr(buf)->nr_keys = 0;
	hdr(buf)->used_bytes = sizeof(struct bkfs_node_hdr);
	memset(buf + sizeof(struct bkfs_node_hdr), 0, c->node_bytes - sizeof(struct bkfs_node_hdr));
}

/* The level-1 root of the alloc btree loses every child pointer, and no
 * node of the alloc btree is left for the scan to find: the interior node is
 * empty and cannot be refilled, so the btree is emptied. Alloc keys are
 * derived state: check_allocations recreates every one of them. */
int corrupt_interior_node_empty(struct corrupt_ctx *c)
{
	struct dnode *t = NULL;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (c->nodes[i].root && c->nodes[i].level == 1 && c->nodes[i].id == BTREE_ID_alloc)
			t = &c->nodes[i];
	if (!t)
		return no_target(c, "the alloc btree's root is not at level 1");
	unsigned count = 0;
	/* first every scannable alloc node (the root included), then the root
	 * rewritten empty: queued writes land in order */
	int ret = destroy_scannable(c, BTREE_ID_alloc, POS_MIN, POS_MAX, &count);
	if (ret)
		return ret;
	node_text(&c->r->damaged, t);
	pb_printf(&c->r->damaged, ": every child pointer removed; %u on-disk alloc btree nodes made unreadable", count);
	pb_printf(&c->r->lost, "none: alloc keys are rebuilt from the other btrees");
	return node_rewrite(c, &t->ptr, empty_node, NULL);
}
