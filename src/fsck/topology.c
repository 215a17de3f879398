/* topology.c - check_topology: the children of every interior node tile its
 * range exactly, no interior node is empty, every root spans the whole key
 * space, and every leaf key is valid.
 *
 * How it works, per btree:
 *  - The walk is a pure simulation. Every interior node's children are copied
 *    into a local list and all decisions (drops, trims, extensions, pointers
 *    pulled in from the node scan) are made on that list, never on the node.
 *    So -n reports exactly what -y repairs, in the same order: both modes run
 *    the same walk.
 *  - The walk visits the leaves in key order, each with its repaired range;
 *    with -y (or -p) they are collected.
 *  - If the walk found anything and every finding may be fixed (-y), or with
 *    -n (in memory only: -n never writes, and the later passes must see the
 *    trees -y would give them), the btree is rebuilt: its interior levels are replaced by fresh in-memory nodes
 *    built over the collected leaves. Leaves stay where they are and are
 *    referenced by pointers carrying their current seq; a pointer whose range
 *    differs from the node's gets BTREE_PTR_RANGE_UPDATED. A leaf becomes a
 *    private in-memory copy (a new seq) when the same node would be
 *    referenced twice. Readable
 *    nodes that leave the tree release their space through pending_free at
 *    the next checkpoint (only when the pointer names a btree bucket of the
 *    right gen; an unreadable node's pointer is not trusted: the allocation
 *    sweep frees its space),
 *    and every node of that btree the new tree does not reference is evicted
 *    from the cache. Rewriting a damaged btree's interior nodes costs about
 *    1/300 of its size in writes and needs no copy-on-write of paths, no
 *    splits, and leaves the checkpoint a tree that tiles correctly.
 *
 * Per interior node (reference §4 of bcachefs-gc.md, minus its quirks: the
 * scan position pulled_from_scan is per parent, and a root that comes back
 * empty runs the scan before deciding):
 *  pass A, in key order: unreadable child -> dropped (scan requested); a child
 *  older than a scanned node overlapping it -> replaced by the scanned nodes;
 *  then the child's start against the expected start: gap -> at level 1 fill
 *  from scanned leaves, else extend the child back; overlap -> decided by node
 *  seq (drop or trim the older one).  The last child must end at the parent's
 *  end (level 1: fill from scanned leaves first, else extend it).
 *  pass B: recurse; an interior child that comes back empty is dropped and
 *  its neighbour extended over its range.
 *
 * Invalid keys: a leaf key that fails bkey_validate() does not make its node
 * unreadable (node_validate_soft); readers skip it. Every leaf read with such
 * keys, and every in-memory leaf, has its keys checked here: each invalid key
 * is reported (inode_invalid in the inodes btree, else bkey_invalid) and,
 * once every btree's topology is settled, deleted by an ordinary transaction,
 * whose trigger undoes what can be read of it (in memory only with -n, like
 * the rebuilds). The later passes see the key gone, as after any deletion.
 */
#include "fsck.h"
#include "../alloc/alloc.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../format/node_format.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NODE_EMPTY 1
#define TOPO_GUARD (1ull << 28)
#define PTR_KEY_BYTES ROUND_UP(sizeof(struct bkey) + sizeof(struct bkfs_btree_ptr), 8)

/* a child pointer as the walk sees it */
struct child {
	struct bpos min, max;     /* range as repaired so far */
	struct bpos omin, omax;   /* range of the pointer as found */
	struct bkfs_btree_ptr p;  /* pointer as found (scanned: built by the scan) */
	u8 level;
	bool from_scan;           /* from the scan result: read privately, never released */
	bool read;                /* pass A checked it is readable */
	bool mem;                 /* in-memory node (dirty, no location): never stale */
	u32 nr_invalid;           /* leaf read with invalid keys */
};

struct clist {
	struct child *v;
	size_t nr, cap;
};

static int cl_insert(struct clist *l, size_t at, const struct child *c)
{
	if (darray_room(l->v, l->cap, l->nr + 1, 64))
		return -BKFS_E_NOMEM;
	memmove(&l->v[at + 1], &l->v[at], (l->nr - at) * sizeof(*l->v));
	l->v[at] = *c;
	l->nr++;
	return 0;
}

static void cl_remove(struct clist *l, size_t at)
{
	memmove(&l->v[at], &l->v[at + 1], (l->nr - at - 1) * sizeof(*l->v));
	l->nr--;
}

/* the node whose children are being checked */
struct pdesc {
	unsigned level;
	struct bpos min, max;
	u64 seq;
	const char *label; /* "rebuilt root", "root": no parent pointer */
};

struct topo {
	struct fsck_ctx *c;
	struct bkfs_fs *fs;
	unsigned id;
	bool collect;      /* -y, -p, -n: collect leaves and released nodes */
	bool all_fixed;    /* every finding in this btree is to be repaired */
	u64 findings;
	u64 guard;
	struct clist leaves;
	struct bkfs_btree_ptr *rel; /* nodes leaving the tree */
	size_t nr_rel, cap_rel;
	struct bad_keys *bad;       /* invalid keys to delete (all btrees) */
	bool defer;        /* leaves not in the cache are left to check_allocations */
};

/* invalid keys to delete, in btree and key order */
struct bad_keys {
	struct bad_key { u8 btree_id; struct bpos pos; } *v;
	size_t nr, cap;
};

/* ---- reporting ---- */

static void range_text(struct printbuf *pb, struct bpos min, struct bpos max)
{
	bpos_to_text(pb, min);
	pb_printf(pb, "..");
	bpos_to_text(pb, max);
}

static void pdesc_text(struct printbuf *pb, const struct pdesc *pd)
{
	if (pd->label) {
		pb_printf(pb, "%s level %u", pd->label, pd->level);
		return;
	}
	pb_printf(pb, "parent level %u ", pd->level);
	range_text(pb, pd->min, pd->max);
	pb_printf(pb, " seq %llu", (unsigned long long)pd->seq);
}

static void child_text(struct printbuf *pb, struct topo *t, const struct pdesc *pd, const struct child *ch)
{
	struct bkey k;
	memset(&k, 0, sizeof(k));
	k.p = ch->max;
	bkey_object_text(pb, t->id, ch->level, &k);
	pb_printf(pb, " (node ");
	range_text(pb, ch->min, ch->max);
	pb_printf(pb, " seq %llu%s) in ", (unsigned long long)ch->p.seq, ch->from_scan ? ", scanned" : "");
	pdesc_text(pb, pd);
}

static void node_text(struct printbuf *pb, struct topo *t, const struct pdesc *pd)
{
	if (pd->label) {
		pb_printf(pb, "btree %s %s level %u", btree_id_str(t->id), pd->label, pd->level);
		return;
	}
	struct bkey k;
	memset(&k, 0, sizeof(k));
	k.p = pd->max;
	bkey_object_text(pb, t->id, pd->level, &k);
	pb_printf(pb, " (node ");
	range_text(pb, pd->min, pd->max);
	pb_printf(pb, " seq %llu)", (unsigned long long)pd->seq);
}

/* Report a finding whose object text is in obj (reset afterwards). */
static bool report(struct topo *t, unsigned err, const char *action, struct printbuf *obj, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static bool report(struct topo *t, unsigned err, const char *action, struct printbuf *obj, const char *fmt, ...)
{
	bool fix = fsck_err(t->c, err, action, "%s", pb_str(obj));
	if (fmt) {
		struct printbuf m = PRINTBUF;
		va_list ap;
		va_start(ap, fmt);
		pb_vprintf(&m, fmt, ap);
		va_end(ap);
		fsck_err_msg(t->c, "%s", pb_str(&m));
		pb_exit(&m);
	}
	pb_reset(obj);
	t->findings++;
	if (!fix)
		t->all_fixed = false;
	return fix;
}

static char *pos_str(struct bpos p, char buf[64])
{
	struct printbuf pb = PRINTBUF;
	bpos_to_text(&pb, p);
	snprintf(buf, 64, "%s", pb_str(&pb));
	pb_exit(&pb);
	return buf;
}

static int add_release(struct topo *t, const struct bkfs_btree_ptr *p)
{
	if (!t->collect || !p->nr_ptrs)
		return 0;
	if (darray_room(t->rel, t->cap_rel, t->nr_rel + 1, 32))
		return -BKFS_E_NOMEM;
	t->rel[t->nr_rel++] = *p;
	return 0;
}

static int ensure_scan(struct topo *t)
{
	if (t->c->trapped)
		return -BKFS_E_RETRY; /* a finding while trapped: this walk is undone */
	return t->c->scan ? 0 : fsck_scan_for_btree_nodes(t->c);
}

/* ---- scan lookups ---- */

static int found_cmp_key(const struct found_node *n, unsigned id, unsigned level, struct bpos pos)
{
	if (n->btree_id != id)
		return n->btree_id < id ? -1 : 1;
	if (n->level != level)
		return n->level < level ? -1 : 1;
	return bpos_cmp(n->max_key, pos) < 0 ? -1 : 1;
}

/* First scanned node of (id, level) that ends at or after pos. Within one
 * (btree, level) the scanned ranges are disjoint and sorted. */
static size_t scan_lower(const struct scan_result *r, unsigned id, unsigned level, struct bpos pos)
{
	return sorted_lower_bound(r->nr, m, found_cmp_key(&r->n[m], id, level, pos) < 0);
}

static bool scan_in(const struct scan_result *r, size_t j, unsigned id, unsigned level, struct bpos max)
{
	return j < r->nr && r->n[j].btree_id == id && r->n[j].level == level &&
	       bpos_cmp(r->n[j].min_key, max) <= 0;
}

/* a scanned node as a child, clamped to [a, b] */
static struct child scanned_child(const struct found_node *n, struct bpos a, struct bpos b)
{
	struct child ch;
	memset(&ch, 0, sizeof(ch));
	ch.min = bpos_max(n->min_key, a);
	ch.max = bpos_min(n->max_key, b);
	ch.omin = n->min_key;
	ch.omax = n->max_key;
	ch.p = n->ptr;
	ch.level = n->level;
	ch.from_scan = true;
	return ch;
}

/* Insert at L[at] every scanned leaf overlapping [a, b], clamped to it. */
static int pull_scanned(struct topo *t, struct clist *L, size_t at, struct bpos a, struct bpos b, size_t *nr)
{
	const struct scan_result *r = t->c->scan;
	*nr = 0;
	for (size_t j = scan_lower(r, t->id, 0, a); scan_in(r, j, t->id, 0, b); j++) {
		struct child ch = scanned_child(&r->n[j], a, b);
		int ret = cl_insert(L, at + (*nr)++, &ch);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- reading nodes ---- */

static void free_private(struct btree *b)
{
	btree_node_mem_free(b);
}

/* Read a node by pointer straight from the devices, bypassing the node cache
 * (scanned nodes: their seq may collide with a cached node). */
static int read_private(struct topo *t, const struct child *ch, struct btree **out, struct printbuf *why)
{
	struct bkfs_fs *fs = t->fs;
	int ret = -BKFS_E_IO;
	for (unsigned i = 0; i < ch->p.nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		struct btree *b;
		if ((ret = btree_node_read_at(fs, &ch->p.ptrs[i], &b, why))) {
			if (ret == -BKFS_E_NOMEM)
				return ret;
			continue;
		}
		if (b->btree_id != t->id || b->level != ch->level || b->seq != ch->p.seq) {
			if (why)
				pb_printf(why, "node at the scanned location changed");
			free_private(b);
			ret = -BKFS_E_CORRUPT;
			continue;
		}
		*out = b;
		break;
	}
	return ret;
}

static void child_orig_key(const struct child *ch, struct bkey_buf *kb)
{
	bkey_init(&kb->k, KEY_TYPE_btree_ptr, ch->omax, sizeof(struct bkfs_btree_ptr));
	memcpy(bkey_val(&kb->k), &ch->p, sizeof(ch->p));
}

/* The node a child names: tree pointers through the node cache (with their
 * original range), scanned ones privately (*priv: free with free_private). */
static int child_get(struct topo *t, const struct child *ch, struct btree **b, bool *priv, struct printbuf *why)
{
	*priv = ch->from_scan;
	if (ch->from_scan)
		return read_private(t, ch, b, why);
	struct bkey_buf kb;
	child_orig_key(ch, &kb);
	return btree_node_get(t->fs, t->id, &kb.k, b, why);
}

/* Pass A: can the child be read? 0 yes, 1 no (reason in why), <0 error. */
static int read_child(struct topo *t, const struct pdesc *pd, struct child *ch, struct printbuf *why)
{
	if (ch->p.level != ch->level) {
		pb_printf(why, "pointer names level %u, expected %u", ch->p.level, ch->level);
		return 1;
	}
	struct btree *b;
	bool priv;
	int ret;
	if (!ch->level && !ch->from_scan) {
		/* leaves are not cached: pass B reads only in-memory ones */
		struct bkey_buf kb;
		child_orig_key(ch, &kb);
		if (t->defer && !btree_node_cached(t->fs, t->id, &kb.k, &ch->mem, &ch->nr_invalid)) {
			/* check_allocations reads it, through the same checks */
			ch->mem = false;
			ch->nr_invalid = 0;
			return 0;
		}
		ret = btree_node_probe(t->fs, t->id, &kb.k, &ch->mem, &ch->nr_invalid, why);
	} else {
		ret = child_get(t, ch, &b, &priv, why);
		if (!ret) {
			ch->mem = !priv && (b->dirty || !b->has_loc);
			ch->nr_invalid = b->nr_invalid;
			if (priv)
				free_private(b);
		}
	}
	if (ret == -BKFS_E_NOMEM)
		return ret;
	if (ret) {
		if (!why->len)
			pb_printf(why, "%s", bkfs_strerror(ret));
		return 1;
	}
	(void)pd;
	return 0;
}

/* A child older than a scanned node overlapping it is replaced by every
 * scanned node overlapping its range, clamped to it. */
static int stale_check(struct topo *t, const struct pdesc *pd, struct clist *L, size_t i, bool *replaced)
{
	const struct scan_result *r = t->c->scan;
	struct child cur = L->v[i];
	struct printbuf obj = PRINTBUF;
	u64 newest = 0;
	size_t first = scan_lower(r, t->id, cur.level, cur.min), n = 0;
	int ret;

	*replaced = false;
	for (size_t j = first; scan_in(r, j, t->id, cur.level, cur.max); j++, n++)
		newest = MAX(newest, r->n[j].seq);
	if (newest <= cur.p.seq)
		return 0;
	child_text(&obj, t, pd, &cur);
	report(t, FSCK_ERR_btree_node_stale_replaced_by_scan, "replaced the pointer by the scanned nodes", &obj,
	       "a scanned node with seq %llu overlaps it; replaced by the %zu scanned nodes covering its range",
	       (unsigned long long)newest, n);
	pb_exit(&obj);
	if ((ret = add_release(t, &cur.p)))
		return ret;
	cl_remove(L, i);
	for (size_t j = first, k = 0; scan_in(r, j, t->id, cur.level, cur.max); j++, k++) {
		struct child ch = scanned_child(&r->n[j], cur.min, cur.max);
		if ((ret = cl_insert(L, i + k, &ch)))
			return ret;
	}
	*replaced = true;
	return 0;
}

static int list_from_node(struct btree *b, struct clist *L)
{
	for (u32 i = 0; i < b->nr_keys; i++) {
		const struct bkey *k = btree_node_key(b, i);
		if (k->type != KEY_TYPE_btree_ptr || bkey_val_bytes(k) < sizeof(struct bkfs_btree_ptr))
			continue; /* cannot happen: node reads validate every key */
		struct child ch;
		memset(&ch, 0, sizeof(ch));
		memcpy(&ch.p, bkey_val(k), sizeof(ch.p));
		ch.min = ch.omin = ch.p.min_key;
		ch.max = ch.omax = k->p;
		ch.level = b->level - 1;
		int ret = cl_insert(L, L->nr, &ch);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- the walk ---- */

/* read-ahead of an interior node's children, in pass A's order */
struct topo_ra {
	struct btree_ra *ra;
	unsigned id;
	struct child *v;
	size_t nr, pos;
	bool defer; /* leaves are not read */
};

static bool topo_ra_next(void *arg, unsigned *id, struct bkey_buf *kb)
{
	struct topo_ra *r = arg;
	while (r->pos < r->nr) {
		const struct child *ch = &r->v[r->pos++];
		if (ch->from_scan || ch->read || ch->p.level != ch->level || (r->defer && !ch->level))
			continue;
		child_orig_key(ch, kb);
		*id = r->id;
		return true;
	}
	return false;
}

static void topo_ra_open(struct topo *t, struct topo_ra *r, const struct clist *L)
{
	memset(r, 0, sizeof(*r));
	if (!t->fs->readahead || !L->nr || !(r->v = malloc(L->nr * sizeof(*r->v))))
		return;
	memcpy(r->v, L->v, L->nr * sizeof(*r->v));
	r->nr = L->nr;
	r->id = t->id;
	r->defer = t->defer;
	r->ra = btree_ra_open(t->fs, topo_ra_next, r);
}

static void topo_ra_close(struct topo_ra *r)
{
	btree_ra_close(r->ra);
	free(r->v);
}

static int adopt_copy(struct topo *t, struct child *e, struct btree *src);

/* A leaf of the tree whose every copy failed (why): keep the keys its chunk
 * table vouches for (FORMAT.md §7.3). The keys of its damaged chunks are
 * lost, and only the positions between the kept keys around them are
 * recorded as lost, not the node's range. Returns 0 when salvaged (ch names
 * an in-memory copy now, like any repaired leaf), 1 when nothing can be kept
 * (the caller drops the node), <0 on error. Its space is not released: see
 * the unreadable child. */
static int salvage_child(struct topo *t, const struct pdesc *pd, struct child *ch, const char *why)
{
	struct bkey_buf kb;
	struct node_salvage s;
	struct btree *src;
	struct printbuf obj = PRINTBUF, how = PRINTBUF;
	if (t->c->trap) {
		/* a finding: the trapped walk is undone before it leaves an
		 * in-memory node behind */
		t->c->trapped = true;
		return -BKFS_E_RETRY;
	}
	child_orig_key(ch, &kb);
	int ret = btree_node_salvage(t->fs, t->id, &kb.k, ch->min, ch->max, &src, &s, NULL);
	if (ret)
		return ret == -BKFS_E_NOMEM ? ret : 1;
	ret = adopt_copy(t, ch, src);
	btree_node_mem_free(src);
	if (!ret) {
		child_text(&obj, t, pd, ch);
		node_salvage_to_text(&how, &s);
		report(t, FSCK_ERR_btree_node_keys_salvaged, "kept the keys of its sound chunks (the others are lost)",
		       &obj, "%s; %s", why, pb_str(&how));
		struct fsck_ctx *c = t->c; /* not trapped: returned above */
		c->salvaged_nodes++;
		c->salvaged_keys_lost += s.lost;
		if (t->id == BTREE_ID_extents || t->id == BTREE_ID_reflink)
			c->lost_extents += s.lost;
		for (u32 i = 0; i < s.nr_lost_ranges; i++)
			fsck_lost_range_add_counted(c, t->id, s.lost_ranges[i].min, s.lost_ranges[i].max);
		ch->read = true;
	}
	node_salvage_exit(&s);
	pb_exit(&obj);
	pb_exit(&how);
	return ret;
}

static int check_interior(struct topo *t, const struct pdesc *pd, struct clist *L);

/* An invalid key of a leaf: report it, and queue its deletion when it is to
 * be repaired (with -n too: in memory only, so that the later passes see what
 * -y leaves them). */
static int report_invalid_key(struct topo *t, const struct child *ch, const struct bkey *k, const char *why)
{
	struct printbuf obj = PRINTBUF;
	bkey_object_text(&obj, t->id, 0, k);
	pb_printf(&obj, " in node ");
	range_text(&obj, ch->min, ch->max);
	pb_printf(&obj, " seq %llu", (unsigned long long)ch->p.seq);
	unsigned err = t->id == BTREE_ID_inodes ? FSCK_ERR_inode_invalid : FSCK_ERR_bkey_invalid;
	bool fix = fsck_err(t->c, err, "deleted the key", "%s", pb_str(&obj));
	pb_exit(&obj);
	fsck_err_msg(t->c, "%s", why);
	struct fsck_ctx *c = t->c;
	switch (t->id) {
	case BTREE_ID_inodes:
		fsck_err_msg(c, "inode %llu is lost (its entries and data are handled by the filesystem passes)",
			     (unsigned long long)k->p.offset);
		break;
	case BTREE_ID_dirents:
		fsck_err_msg(c, "an entry of directory %llu is lost", (unsigned long long)k->p.inode);
		break;
	case BTREE_ID_xattrs:
		fsck_err_msg(c, "an xattr of inode %llu is lost", (unsigned long long)k->p.inode);
		break;
	case BTREE_ID_extents:
	case BTREE_ID_reflink: {
		u64 sectors = MIN((u64)k->size, k->p.offset);
		fsck_err_msg(c, "%s %llu, sectors %llu..%llu, are lost", t->id == BTREE_ID_extents ?
			     "data of inode" : "indirect data", (unsigned long long)k->p.inode,
			     (unsigned long long)(k->p.offset - sectors), (unsigned long long)k->p.offset);
		if (!bkey_deleted(k)) {
			c->lost_extents++;
			c->lost_sectors += sectors;
			fsck_lost_range_add(c, t->id, k->p, k->p);
		}
		break;
	}
	}
	if (!fix && c->opts.mode != FSCK_MODE_NO)
		return 0;
	struct bad_keys *bk = t->bad;
	if (darray_room(bk->v, bk->cap, bk->nr + 1, 32))
		return -BKFS_E_NOMEM;
	bk->v[bk->nr++] = (struct bad_key){ .btree_id = t->id, .pos = k->p };
	return 0;
}

/* Pass B for a leaf: check the keys inside its range when it may hold
 * invalid ones (read with some, or in memory: journal replay, repairs);
 * collect it. */
static int check_leaf(struct topo *t, const struct pdesc *pd, struct child *ch)
{
	(void)pd;
	if (!ch->mem && !ch->nr_invalid)
		return t->collect ? cl_insert(&t->leaves, t->leaves.nr, ch) : 0;
	struct printbuf why = PRINTBUF;
	struct btree *b;
	bool priv;
	int ret = child_get(t, ch, &b, &priv, &why);
	if (ret) {
		pb_exit(&why);
		return ret < 0 ? ret : -BKFS_E_IO; /* it was readable in pass A */
	}
	for (u32 i = 0; i < b->nr_keys && !ret; i++) {
		const struct bkey *k = btree_node_key(b, i);
		if (bpos_cmp(k->p, ch->min) < 0 || bpos_cmp(k->p, ch->max) > 0)
			continue;
		pb_reset(&why);
		if (bkey_validate(k, t->id, 0, &why))
			ret = report_invalid_key(t, ch, k, pb_str(&why));
	}
	if (priv)
		free_private(b);
	pb_exit(&why);
	if (ret)
		return ret;
	return t->collect ? cl_insert(&t->leaves, t->leaves.nr, ch) : 0;
}

/* Pass B for an interior child: check its own children. */
static int check_child_interior(struct topo *t, struct child *ch)
{
	struct clist L = { 0 };
	struct btree *b;
	bool priv;
	int ret = child_get(t, ch, &b, &priv, NULL);
	if (ret)
		return ret < 0 ? ret : -BKFS_E_IO;
	bool mem = !priv && (b->dirty || !b->has_loc);
	ret = list_from_node(b, &L);
	if (priv)
		free_private(b);
	if (!ret && !ch->from_scan && !mem)
		ret = add_release(t, &ch->p);
	if (!ret) {
		struct pdesc sub = { .level = ch->level, .min = ch->min, .max = ch->max, .seq = ch->p.seq };
		ret = check_interior(t, &sub, &L);
	}
	free(L.v);
	return ret;
}

/* Check the children L of an interior node with range pd. Returns 0, or
 * NODE_EMPTY if the node is left without children, or <0 on error. */
static int check_interior(struct topo *t, const struct pdesc *pd, struct clist *L)
{
	struct printbuf obj = PRINTBUF, why = PRINTBUF;
	struct bpos pulled = pd->min; /* scanned leaves pulled in up to here (this parent only) */
	bool end_pulled = false;
	char b1[64], b2[64];
	size_t i, prev, nr;
	bool have_prev;
	int ret = 0;

	for (i = 0; i < L->nr; i++)
		L->v[i].level = pd->level - 1;
	struct topo_ra tra;
	topo_ra_open(t, &tra, L);
pass_a:
	i = prev = 0;
	have_prev = false;
	while (i < L->nr) {
		if (++t->guard > TOPO_GUARD) {
			ret = -BKFS_E_LOOP;
			goto out;
		}
		if (t->c->trapped) {
			ret = -BKFS_E_RETRY;
			goto out;
		}
		struct child *cur = &L->v[i];
		if (!cur->read) {
			btree_ra_fill(tra.ra);
			pb_reset(&why);
			ret = read_child(t, pd, cur, &why);
			if (ret > 0 && !cur->level && !cur->from_scan)
				ret = salvage_child(t, pd, cur, pb_str(&why));
			if (ret < 0)
				goto out;
			if (ret > 0) {
				ret = 0;
				child_text(&obj, t, pd, cur);
				report(t, FSCK_ERR_btree_node_unreadable, "dropped the pointer (its keys are lost)", &obj,
				       "%s", pb_str(&why));
				t->c->lost_nodes++;
				fsck_lost_range_add(t->c, t->id, cur->min, cur->max);
				/* its space is not released here: the pointer may be
				 * what is damaged; the allocation sweep frees it */
				cl_remove(L, i);
				if ((ret = ensure_scan(t)))
					goto out;
				continue;
			}
			cur->read = true;
			if (!cur->from_scan && !cur->mem && t->c->scan) {
				bool replaced;
				if ((ret = stale_check(t, pd, L, i, &replaced)))
					goto out;
				if (replaced)
					continue;
			}
		}
		cur = &L->v[i];
		struct child *pv = have_prev ? &L->v[prev] : NULL;

		if (bpos_cmp(cur->min, pd->max) > 0) {
			child_text(&obj, t, pd, cur);
			report(t, FSCK_ERR_btree_node_topology_bad_max_key, "dropped the pointer", &obj,
			       "starts after the parent's end %s", pos_str(pd->max, b1));
			if (!cur->from_scan && (ret = add_release(t, &cur->p)))
				goto out;
			cl_remove(L, i);
			continue;
		}
		struct bpos expected = pv ? bpos_successor(pv->max) : pd->min;
		bool overlap = pv ? bpos_eq(pv->max, POS_MAX) || bpos_cmp(cur->min, expected) < 0
				  : bpos_cmp(cur->min, pd->min) < 0;
		if (!overlap && bpos_cmp(cur->min, expected) > 0) {
			/* gap before cur */
			struct bpos gap_end = bpos_predecessor(cur->min);
			if (pd->level == 1 && bpos_cmp(pulled, cur->min) < 0) {
				pulled = cur->min;
				if ((ret = ensure_scan(t)) || (ret = pull_scanned(t, L, i, expected, gap_end, &nr)))
					goto out;
				if (nr) {
					child_text(&obj, t, pd, &L->v[i + nr]);
					report(t, FSCK_ERR_btree_node_gap_filled_from_scan, "inserted pointers to scanned leaves",
					       &obj, "gap %s..%s before it filled from %zu scanned leaves",
					       pos_str(expected, b1), pos_str(gap_end, b2), nr);
					continue;
				}
				cur = &L->v[i];
			}
			child_text(&obj, t, pd, cur);
			report(t, FSCK_ERR_btree_node_topology_bad_min_key,
			       "extended the node back over the gap (keys there are lost)", &obj,
			       "expected to start at %s: gap %s..%s", pos_str(expected, b1), pos_str(expected, b1),
			       pos_str(gap_end, b2));
			fsck_lost_range_add(t->c, t->id, expected, gap_end);
			cur->min = expected;
		} else if (overlap) {
			if (pv && cur->p.seq > pv->p.seq) {
				/* cur is newer */
				if (bpos_cmp(pv->min, cur->min) >= 0) {
					child_text(&obj, t, pd, pv);
					report(t, FSCK_ERR_btree_node_topology_overwritten_by_next_node, "dropped the older node",
					       &obj, "entirely covered by the newer next node starting at %s (seq %llu)",
					       pos_str(cur->min, b1), (unsigned long long)cur->p.seq);
					if (!pv->from_scan && (ret = add_release(t, &pv->p)))
						goto out;
					cl_remove(L, prev);
					goto pass_a;
				}
				child_text(&obj, t, pd, pv);
				report(t, FSCK_ERR_btree_node_topology_bad_max_key, "trimmed the older node's end", &obj,
				       "overlaps the newer next node starting at %s (seq %llu)", pos_str(cur->min, b1),
				       (unsigned long long)cur->p.seq);
				pv->max = bpos_predecessor(cur->min);
			} else {
				struct bpos cover = pv ? pv->max : bpos_predecessor(pd->min);
				if (bpos_cmp(cover, cur->max) >= 0) {
					child_text(&obj, t, pd, cur);
					if (pv)
						report(t, FSCK_ERR_btree_node_topology_overwritten_by_prev_node, "dropped the node",
						       &obj, "entirely covered by the previous node ending at %s (seq %llu)",
						       pos_str(pv->max, b1), (unsigned long long)pv->p.seq);
					else
						report(t, FSCK_ERR_btree_node_topology_overwritten_by_prev_node, "dropped the node",
						       &obj, "entirely before the parent's start %s", pos_str(pd->min, b1));
					if (!cur->from_scan && (ret = add_release(t, &cur->p)))
						goto out;
					cl_remove(L, i);
					continue;
				}
				child_text(&obj, t, pd, cur);
				if (pv)
					report(t, FSCK_ERR_btree_node_topology_bad_min_key, "trimmed the node's start", &obj,
					       "overlaps the previous node ending at %s; starts now at %s",
					       pos_str(pv->max, b1), pos_str(expected, b2));
				else
					report(t, FSCK_ERR_btree_node_topology_bad_min_key, "trimmed the node's start", &obj,
					       "starts before the parent's start; starts now at %s", pos_str(expected, b1));
				cur->min = expected;
			}
		}
		prev = i;
		have_prev = true;
		i++;
	}

	/* the end */
	if (!L->nr) {
		if (pd->level == 1 && !end_pulled) {
			end_pulled = true;
			if ((ret = ensure_scan(t)) || (ret = pull_scanned(t, L, 0, pd->min, pd->max, &nr)))
				goto out;
			if (nr) {
				node_text(&obj, t, pd);
				report(t, FSCK_ERR_btree_node_gap_filled_from_scan, "inserted pointers to scanned leaves", &obj,
				       "no readable children: filled from %zu scanned leaves", nr);
				goto pass_a;
			}
		}
		node_text(&obj, t, pd);
		report(t, FSCK_ERR_btree_node_topology_interior_node_empty,
		       pd->label ? "emptied the btree" : "dropped the node", &obj, "no children left");
		ret = NODE_EMPTY;
		goto out;
	}
	struct child *last = &L->v[L->nr - 1];
	if (bpos_cmp(last->max, pd->max) > 0) {
		child_text(&obj, t, pd, last);
		report(t, FSCK_ERR_btree_node_topology_bad_max_key, "trimmed the node's end", &obj,
		       "ends after the parent's end %s", pos_str(pd->max, b1));
		last->max = pd->max;
	} else if (bpos_cmp(last->max, pd->max) < 0) {
		struct bpos from = bpos_successor(last->max);
		if (pd->level == 1 && !end_pulled) {
			end_pulled = true;
			if ((ret = ensure_scan(t)) || (ret = pull_scanned(t, L, L->nr, from, pd->max, &nr)))
				goto out;
			if (nr) {
				child_text(&obj, t, pd, &L->v[L->nr - nr - 1]);
				report(t, FSCK_ERR_btree_node_topology_bad_max_key, "filled the missing range from scanned leaves",
				       &obj, "last child ends before the parent's end %s: %s..%s filled from %zu scanned leaves",
				       pos_str(pd->max, b1), pos_str(from, b2), pos_str(pd->max, b1), nr);
				goto pass_a;
			}
			last = &L->v[L->nr - 1];
		}
		child_text(&obj, t, pd, last);
		report(t, FSCK_ERR_btree_node_topology_bad_max_key,
		       "extended the node to the parent's end (keys there are lost)", &obj,
		       "last child ends before the parent's end %s", pos_str(pd->max, b1));
		fsck_lost_range_add(t->c, t->id, bpos_successor(last->max), pd->max);
		last->max = pd->max;
	}

	/* pass B: descend */
	for (i = 0; i < L->nr;) {
		if (t->c->trapped) {
			ret = -BKFS_E_RETRY;
			goto out;
		}
		struct child *ch = &L->v[i];
		ret = ch->level ? check_child_interior(t, ch) : check_leaf(t, pd, ch);
		btree_cache_shrink(t->fs);
		if (ret < 0)
			goto out;
		if (ret != NODE_EMPTY) {
			i++;
			continue;
		}
		ret = 0;
		struct child gone = L->v[i];
		cl_remove(L, i);
		if (i < L->nr) {
			child_text(&obj, t, pd, &L->v[i]);
			report(t, FSCK_ERR_btree_node_topology_bad_min_key, "extended the node back over the dropped one",
			       &obj, "the previous node %s..%s was empty and dropped", pos_str(gone.min, b1),
			       pos_str(gone.max, b2));
			L->v[i].min = gone.min;
		} else if (i > 0) {
			child_text(&obj, t, pd, &L->v[i - 1]);
			report(t, FSCK_ERR_btree_node_topology_bad_max_key, "extended the node over the dropped one", &obj,
			       "the next node %s..%s was empty and dropped", pos_str(gone.min, b1), pos_str(gone.max, b2));
			L->v[i - 1].max = gone.max;
			/* its subtree's last leaf is the last one collected */
			if (t->collect && t->leaves.nr)
				t->leaves.v[t->leaves.nr - 1].max = gone.max;
		}
	}
	if (!L->nr) {
		node_text(&obj, t, pd);
		report(t, FSCK_ERR_btree_node_topology_interior_node_empty,
		       pd->label ? "emptied the btree" : "dropped the node", &obj, "every child was dropped");
		ret = NODE_EMPTY;
	}
out:
	topo_ra_close(&tra);
	pb_exit(&obj);
	pb_exit(&why);
	return ret;
}

/* The root is unreadable or empty: the scanned leaves of this btree become
 * the children of a new root. */
static int rebuild_from_scan(struct topo *t)
{
	struct printbuf obj = PRINTBUF;
	struct clist L = { 0 };
	int ret = ensure_scan(t);
	if (ret)
		return ret;
	const struct scan_result *r = t->c->scan;
	for (size_t j = scan_lower(r, t->id, 0, POS_MIN); !ret && scan_in(r, j, t->id, 0, POS_MAX); j++) {
		struct child ch = scanned_child(&r->n[j], POS_MIN, POS_MAX);
		ret = cl_insert(&L, L.nr, &ch);
	}
	t->leaves.nr = 0;
	if (!ret && !L.nr) {
		pb_printf(&obj, "btree %s", btree_id_str(t->id));
		report(t, FSCK_ERR_btree_root_unreadable_and_scan_found_nothing, "installed an empty root (btree emptied)",
		       &obj, "no leaf of this btree was found by the scan");
	} else if (!ret) {
		struct pdesc pd = { .level = 1, .min = POS_MIN, .max = POS_MAX, .label = "rebuilt root" };
		ret = check_interior(t, &pd, &L);
		if (ret == NODE_EMPTY) {
			t->leaves.nr = 0;
			ret = 0;
		}
	}
	free(L.v);
	pb_exit(&obj);
	return ret;
}

/* The root failed to read: is it the node its pointer names (btree, level,
 * seq), valid, only with a header range other than the whole key space? The
 * root's range is POS_MIN..POS_MAX by definition (its pointer has no end),
 * so then the header is what is wrong, not the node: *min and *max get the
 * header's range. */
static bool root_range_only(struct topo *t, struct bpos *min, struct bpos *max)
{
	const struct bkfs_btree_ptr *p = &t->fs->roots[t->id].ptr;
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		struct btree *b;
		if (btree_node_read_at(t->fs, &p->ptrs[i], &b, NULL))
			continue;
		bool same = b->btree_id == t->id && b->level == p->level && b->seq == p->seq;
		*min = b->min_key;
		*max = b->max_key;
		free_private(b);
		if (same)
			return !bpos_eq(*min, p->min_key) || !bpos_eq(*max, POS_MAX);
	}
	return false;
}

/* A root leaf whose every copy fails: salvaged like any leaf (salvage_child),
 * it becomes the one leaf the rebuilt btree is made of. 0 salvaged, 1 not. */
static int salvage_root_leaf(struct topo *t, const char *why)
{
	const struct btree_root *rt = &t->fs->roots[t->id];
	struct pdesc pd = { .level = 1, .min = POS_MIN, .max = POS_MAX, .seq = rt->ptr.seq, .label = "root" };
	struct child ch = { .min = POS_MIN, .max = POS_MAX, .omin = POS_MIN, .omax = POS_MAX, .p = rt->ptr };
	int ret = salvage_child(t, &pd, &ch, why);
	if (ret)
		return ret;
	t->leaves.nr = 0;
	return check_leaf(t, &pd, &ch);
}

static int check_btree(struct topo *t)
{
	struct bkfs_fs *fs = t->fs;
	struct btree_root *rt = &fs->roots[t->id];
	struct printbuf obj = PRINTBUF;
	struct btree *r;
	struct bpos hmin, hmax;
	int ret = btree_root_get(fs, t->id, &r);

	if (ret && ret != -BKFS_E_NOMEM && root_range_only(t, &hmin, &hmax)) {
		/* read it through a pointer that gives it the whole key space
		 * (no key lies outside: the header range is inside it); the
		 * rebuild below writes a new root */
		struct pdesc pd = { .level = rt->ptr.level, .min = POS_MIN, .max = POS_MAX, .seq = rt->ptr.seq, .label = "root" };
		if (!bpos_eq(hmin, POS_MIN)) {
			node_text(&obj, t, &pd);
			report(t, FSCK_ERR_btree_root_bad_min_key, "set the root's start to POS_MIN", &obj,
			       "root node starts at %s", pos_str(hmin, (char[64]){ 0 }));
		}
		if (!bpos_eq(hmax, POS_MAX)) {
			node_text(&obj, t, &pd);
			report(t, FSCK_ERR_btree_root_bad_max_key, "set the root's end to POS_MAX", &obj,
			       "root node ends at %s", pos_str(hmax, (char[64]){ 0 }));
		}
		if (bpos_eq(hmin, POS_MIN) && bpos_eq(hmax, POS_MAX)) {
			/* the pointer's min_key is what differs */
			node_text(&obj, t, &pd);
			report(t, FSCK_ERR_btree_root_bad_min_key, "set the root's start to POS_MIN", &obj,
			       "root pointer starts at %s", pos_str(rt->ptr.min_key, (char[64]){ 0 }));
		}
		pb_exit(&obj);
		if (t->c->trapped)
			return -BKFS_E_RETRY; /* the walk is undone: leave the root as found */
		rt->ptr.flags |= BTREE_PTR_RANGE_UPDATED;
		rt->ptr.min_key = POS_MIN;
		rt->error = 0;
		ret = btree_root_get(fs, t->id, &r);
	}
	if (ret == -BKFS_E_NOMEM)
		return ret;
	if (ret && !rt->ptr.level) {
		int s = salvage_root_leaf(t, bkfs_strerror(ret));
		if (s <= 0)
			return s;
	}
	if (ret) {
		struct bkey k;
		memset(&k, 0, sizeof(k));
		k.p = POS_MAX;
		bkey_object_text(&obj, t->id, rt->ptr.level, &k);
		pb_printf(&obj, " (root seq %llu)", (unsigned long long)rt->ptr.seq);
		report(t, FSCK_ERR_btree_root_unreadable, "rebuilding the btree from scanned leaves", &obj, "%s",
		       bkfs_strerror(ret));
		pb_exit(&obj);
		t->c->lost_nodes++;
		/* scanned leaves may be older than the ones the root held */
		fsck_lost_range_add(t->c, t->id, POS_MIN, POS_MAX);
		return rebuild_from_scan(t); /* its space: see the unreadable child */
	}
	bool mem = r->dirty || !r->has_loc;
	unsigned level = r->level;
	struct bpos rmin = r->min_key, rmax = r->max_key;
	u64 seq = r->seq;
	struct pdesc pd = { .level = level, .min = POS_MIN, .max = POS_MAX, .seq = seq, .label = "root" };
	if (!bpos_eq(rmin, POS_MIN)) {
		node_text(&obj, t, &pd);
		report(t, FSCK_ERR_btree_root_bad_min_key, "set the root's start to POS_MIN", &obj,
		       "root starts at %s", pos_str(rmin, (char[64]){ 0 }));
	}
	if (!bpos_eq(rmax, POS_MAX)) {
		node_text(&obj, t, &pd);
		report(t, FSCK_ERR_btree_root_bad_max_key, "set the root's end to POS_MAX", &obj,
		       "root ends at %s", pos_str(rmax, (char[64]){ 0 }));
	}
	pb_exit(&obj);
	if (!level) {
		struct child ch;
		memset(&ch, 0, sizeof(ch));
		ch.min = POS_MIN;
		ch.max = POS_MAX;
		ch.omin = rmin;
		ch.omax = rmax;
		ch.p = rt->ptr;
		ch.p.seq = seq;
		ch.mem = mem;
		ch.nr_invalid = r->nr_invalid;
		ch.read = true;
		return check_leaf(t, &pd, &ch);
	}
	struct clist L = { 0 };
	ret = list_from_node(r, &L);
	if (!ret && !mem)
		ret = add_release(t, &rt->ptr);
	if (!ret)
		ret = check_interior(t, &pd, &L);
	free(L.v);
	if (ret == NODE_EMPTY)
		ret = rebuild_from_scan(t);
	return ret;
}

/* ---- repair: rebuild the interior levels over the collected leaves ---- */

static bool same_node(const struct btree *b, unsigned id, const struct child *e)
{
	if (b->btree_id != id || b->level != 0)
		return false;
	if (b->dirty || !b->has_loc)
		return !e->from_scan && !e->p.nr_ptrs;
	for (unsigned j = 0; j < e->p.nr_ptrs && j < BKFS_MAX_REPLICAS; j++)
		if (e->p.ptrs[j].dev == b->ptr.ptrs[0].dev && e->p.ptrs[j].offset == b->ptr.ptrs[0].offset)
			return true;
	return false;
}

/* Drop keys outside [min, max] and set the range (in-memory nodes). */
static void node_set_range(struct btree *b, struct bpos min, struct bpos max)
{
	b->min_key = min;
	b->max_key = max;
	for (u32 i = 0; i < b->nr_keys;) {
		const struct bkey *k = btree_node_key(b, i);
		if (bpos_cmp(k->p, min) < 0 || bpos_cmp(k->p, max) > 0)
			btree_node_delete_at(b, i);
		else
			i++;
	}
}

/* e names an in-memory copy of src from now on (a new node with a new seq):
 * the keys of src inside e's range (invalid ones too: they are deleted later,
 * with their trigger). */
static int adopt_copy(struct topo *t, struct child *e, struct btree *src)
{
	struct btree *n = btree_node_alloc(t->fs, t->id, 0);
	if (!n)
		return -BKFS_E_NOMEM;
	n->min_key = e->min;
	n->max_key = e->max;
	n->journal_seq = src->journal_seq;
	int ret = 0;
	for (u32 i = 0; i < src->nr_keys && !ret; i++) {
		const struct bkey *k = btree_node_key(src, i);
		if (bpos_cmp(k->p, e->min) < 0 || bpos_cmp(k->p, e->max) > 0)
			continue;
		if (bkey_validate(k, t->id, 0, NULL))
			n->nr_invalid++;
		ret = btree_node_insert_at(n, n->nr_keys, k);
	}
	memset(&e->p, 0, sizeof(e->p));
	e->p.seq = n->seq;
	e->p.min_key = e->min;
	e->omin = e->min;
	e->omax = e->max;
	e->from_scan = false;
	e->mem = true;
	e->nr_invalid = n->nr_invalid;
	return ret;
}

/* Replace the leaf e names by a private in-memory copy (new seq). */
static int make_copy(struct topo *t, struct child *e)
{
	struct btree *src;
	bool priv;
	int ret = child_get(t, e, &src, &priv, NULL);
	if (ret)
		return ret < 0 ? ret : -BKFS_E_IO;
	struct bkfs_btree_ptr old = e->p;
	bool from_scan = e->from_scan;
	ret = adopt_copy(t, e, src);
	if (priv)
		free_private(src);
	if (!ret && !from_scan)
		ret = add_release(t, &old);
	return ret;
}

struct seq_idx {
	u64 seq;
	size_t i;
	bool from_scan;
};

static int cmp_seq_idx(const void *a, const void *b)
{
	const struct seq_idx *x = a, *y = b;
	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	if (x->from_scan != y->from_scan)
		return x->from_scan ? 1 : -1; /* the tree's own pointer keeps the node */
	return x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

static u64 loc_key(const struct bkfs_ptr *p)
{
	return (u64)p->dev << 56 | (p->offset & ((1ull << 56) - 1));
}

/* Space of a node leaving the tree is released at the checkpoint, if its
 * pointer really names btree buckets of the right generation. */
static bool release_ok(struct bkfs_fs *fs, const struct bkfs_btree_ptr *p)
{
	if (!p->nr_ptrs || p->nr_ptrs > BKFS_MAX_REPLICAS || !fs->alloc)
		return false;
	for (unsigned j = 0; j < p->nr_ptrs; j++) {
		const struct bkfs_ptr *q = &p->ptrs[j];
		if (q->dev >= fs->nr_devs || !ALLOC(fs)->buckets[q->dev])
			return false;
		u64 b = ptr_bucket(fs, q);
		if (b >= fs->sb.members[q->dev].nbuckets)
			return false;
		const struct bkfs_alloc *a = bucket_get(fs, q->dev, b);
		if (a->data_type != DATA_btree || a->gen != q->gen)
			return false;
	}
	return true;
}

static int build_levels(struct topo *t)
{
	struct bkfs_fs *fs = t->fs;
	struct clist cur = { 0 }, next = { 0 };
	int ret = 0;
	unsigned level = 1;
	u32 cap = fs->node_bytes - sizeof(struct bkfs_node_hdr);
	size_t fit = cap / PTR_KEY_BYTES, per = MAX((size_t)2, cap * 3 / 4 / PTR_KEY_BYTES);
	struct btree *root = NULL;

	/* cur aliases the leaves for the first level */
	cur = t->leaves;
	for (;;) {
		if (level >= BTREE_MAX_DEPTH) {
			ret = -BKFS_E_TOOBIG;
			break;
		}
		size_t nodes = cur.nr <= fit ? 1 : DIV_ROUND_UP(cur.nr, per);
		size_t done = 0;
		next.nr = 0;
		for (size_t n = 0; n < nodes && !ret; n++) {
			size_t cnt = (cur.nr - done) / (nodes - n);
			struct btree *b = btree_node_alloc(fs, t->id, level);
			if (!b) {
				ret = -BKFS_E_NOMEM;
				break;
			}
			b->min_key = cur.v[done].min;
			b->max_key = cur.v[done + cnt - 1].max;
			for (size_t k = done; k < done + cnt && !ret; k++) {
				struct bkey_buf kb;
				bkey_init(&kb.k, KEY_TYPE_btree_ptr, cur.v[k].max, sizeof(struct bkfs_btree_ptr));
				memcpy(bkey_val(&kb.k), &cur.v[k].p, sizeof(cur.v[k].p));
				ret = btree_node_insert_at(b, b->nr_keys, &kb.k);
			}
			done += cnt;
			struct child ch;
			memset(&ch, 0, sizeof(ch));
			ch.min = b->min_key;
			ch.max = b->max_key;
			ch.p.seq = b->seq;
			ch.p.min_key = b->min_key;
			ch.p.level = level;
			if (!ret)
				ret = cl_insert(&next, next.nr, &ch);
			root = b;
		}
		if (cur.v != t->leaves.v)
			free(cur.v);
		cur = next;
		next = (struct clist){ 0 };
		if (ret || nodes == 1)
			break;
		level++;
	}
	if (cur.v != t->leaves.v)
		free(cur.v);
	free(next.v);
	if (ret)
		return ret;
	struct btree_root *rt = &fs->roots[t->id];
	root->min_key = POS_MIN;
	root->max_key = POS_MAX;
	rt->b = root;
	rt->error = 0;
	memset(&rt->ptr, 0, sizeof(rt->ptr));
	rt->ptr.seq = root->seq;
	rt->ptr.level = root->level;
	rt->ptr.min_key = POS_MIN;
	return 0;
}

static int apply_repairs(struct topo *t)
{
	struct bkfs_fs *fs = t->fs;
	size_t n = t->leaves.nr;
	struct seq_idx *si = NULL;
	bool *copy = NULL;
	u64 *locs = NULL;
	size_t nr_locs = 0;
	struct btree **victims = NULL;
	size_t nr_victims = 0, cap_victims = 0;
	int ret = 0;

	fsck_begin_repair(t->c);
	if (n) {
		si = malloc(n * sizeof(*si));
		copy = calloc(n, sizeof(*copy));
		if (!si || !copy) {
			ret = -BKFS_E_NOMEM;
			goto out;
		}
	}
	/* 1. which leaves become private copies */
	for (size_t i = 0; i < n; i++)
		si[i] = (struct seq_idx){ t->leaves.v[i].p.seq, i, t->leaves.v[i].from_scan };
	if (n)
		qsort(si, n, sizeof(*si), cmp_seq_idx);
	for (size_t k = 1; k < n; k++)
		if (si[k].seq == si[k - 1].seq)
			copy[si[k].i] = true; /* the same node referenced twice */
	for (size_t i = 0; i < n; i++) {
		struct child *e = &t->leaves.v[i];
		struct btree *b = btree_cache_find(fs, e->p.seq);
		if (b && !same_node(b, t->id, e))
			copy[i] = true;
	}
	/* 2. copies; in-memory leaves take their range; cached clean leaves whose
	 *    range changes are evicted (a re-read applies the pointer's range) */
	for (size_t i = 0; i < n && !ret; i++) {
		struct child *e = &t->leaves.v[i];
		if (copy[i]) {
			ret = make_copy(t, e);
			continue;
		}
		struct btree *b = btree_cache_find(fs, e->p.seq);
		if (b && (b->dirty || !b->has_loc)) {
			node_set_range(b, e->min, e->max);
			e->omin = e->min;
			e->omax = e->max;
		} else if (b && (!bpos_eq(b->min_key, e->min) || !bpos_eq(b->max_key, e->max))) {
			btree_node_free(fs, b);
		}
	}
	if (ret)
		goto out;
	/* 3. the leaf pointers */
	for (size_t i = 0; i < n; i++) {
		struct child *e = &t->leaves.v[i];
		e->p.min_key = e->min;
		e->p.level = 0;
		if (e->mem)
			e->p.flags = 0;
		else if (!bpos_eq(e->min, e->omin) || !bpos_eq(e->max, e->omax))
			e->p.flags |= BTREE_PTR_RANGE_UPDATED;
		si[i] = (struct seq_idx){ e->p.seq, i, false };
	}
	if (n)
		qsort(si, n, sizeof(*si), cmp_seq_idx);
	/* 4. evict every node of this btree the new tree does not reference */
	for (size_t h = 0; h < fs->hash_size; h++)
		for (struct btree *b = fs->hash[h]; b; b = b->hnext) {
			if (b->btree_id != t->id)
				continue;
			size_t lo = sorted_lower_bound(n, m, si[m].seq < b->seq);
			if (lo < n && si[lo].seq == b->seq && same_node(b, t->id, &t->leaves.v[si[lo].i]))
				continue;
			if (darray_room(victims, cap_victims, nr_victims + 1, 64)) {
				ret = -BKFS_E_NOMEM;
				goto out;
			}
			victims[nr_victims++] = b;
		}
	for (size_t k = 0; k < nr_victims; k++)
		btree_node_free(fs, victims[k]);
	/* 5. release the space of nodes that left the tree */
	if (n) {
		locs = malloc(n * BKFS_MAX_REPLICAS * sizeof(*locs));
		if (!locs) {
			ret = -BKFS_E_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++)
		for (unsigned j = 0; j < t->leaves.v[i].p.nr_ptrs && j < BKFS_MAX_REPLICAS; j++)
			locs[nr_locs++] = loc_key(&t->leaves.v[i].p.ptrs[j]);
	if (nr_locs)
		qsort(locs, nr_locs, sizeof(*locs), cmp_u64);
	for (size_t k = 0; k < t->nr_rel; k++) {
		const struct bkfs_btree_ptr *p = &t->rel[k];
		bool dup = false;
		for (size_t m = 0; m < k && !dup; m++)
			dup = t->rel[m].nr_ptrs && loc_key(&t->rel[m].ptrs[0]) == loc_key(&p->ptrs[0]);
		u64 key = loc_key(&p->ptrs[0]);
		if (dup || (nr_locs && bsearch(&key, locs, nr_locs, sizeof(*locs), cmp_u64)))
			continue;
		if (release_ok(fs, p))
			btree_pending_free_add(fs, t->id, p);
	}
	/* 6. the new interior levels */
	ret = n ? build_levels(t) : btree_root_set_empty(fs, t->id);
	fs->cache_gen++;
out:
	free(si);
	free(copy);
	free(locs);
	free(victims);
	return ret;
}

/* Delete the invalid keys found, with ordinary transactions (after every
 * btree's topology is settled: their triggers may update other btrees). With
 * -n the filesystem stays read-only on disk: the deletions are made in memory
 * only, like the rebuilds, and nothing is ever written. */
static int delete_invalid_keys(struct fsck_ctx *c, const struct bad_keys *bk)
{
	struct bkfs_fs *fs = c->fs;
	unsigned rdonly = fs->flags & BKFS_OPEN_RDONLY;
	struct trans tr;
	int ret = 0;

	if (!bk->nr)
		return 0;
	fs->flags &= ~BKFS_OPEN_RDONLY;
	trans_init(&tr, fs);
	for (size_t i = 0; i < bk->nr && !ret; i++) {
		ret = trans_delete(&tr, bk->v[i].btree_id, bk->v[i].pos);
		if (!ret && (tr.nr >= 64 || i + 1 == bk->nr))
			ret = trans_commit(&tr, COMMIT_NO_JOURNAL);
	}
	trans_exit(&tr);
	fs->flags |= rdonly;
	return ret;
}

static int check_btree_once(struct fsck_ctx *c, unsigned id, bool defer, struct bad_keys *bad)
{
	struct topo t = {
		.c = c,
		.fs = c->fs,
		.id = id,
		.collect = c->opts.mode == FSCK_MODE_NO || fsck_may_fix(c),
		.all_fixed = true,
		.bad = bad,
		.defer = defer,
	};
	int ret = check_btree(&t);
	/* -n applies the repairs too, in memory only (nothing is ever
	 * written with -n): the later passes then see the trees -y gives
	 * them and report exactly what -y reports */
	if (!ret && t.collect && t.findings && (t.all_fixed || c->opts.mode == FSCK_MODE_NO))
		ret = apply_repairs(&t);
	free(t.leaves.v);
	free(t.rel);
	return ret;
}

/* Check one btree, leaving its leaves to check_allocations when that is
 * allowed. The walk that leaves them runs trapped: at its first finding it
 * is undone (it changed nothing outside itself but the loss counters and
 * the invalid-key list) and the btree is checked again in full. */
static int check_btree_deferring(struct fsck_ctx *c, unsigned id, struct bad_keys *bad)
{
	u64 lost[4] = { c->lost_extents, c->lost_sectors, c->lost_nodes, c->salvaged_inodes };
	size_t nr_bad = bad->nr;
	c->trap = true;
	int ret = check_btree_once(c, id, true, bad);
	c->trap = false;
	if (!c->trapped) {
		if (!ret)
			c->leaves_deferred |= 1u << id;
		return ret;
	}
	c->trapped = false;
	c->lost_extents = lost[0];
	c->lost_sectors = lost[1];
	c->lost_nodes = lost[2];
	c->salvaged_inodes = lost[3];
	bad->nr = nr_bad;
	if (ret == -BKFS_E_NOMEM)
		return ret;
	return check_btree_once(c, id, false, bad);
}

static int check_topology_of(struct fsck_ctx *c, unsigned mask)
{
	struct bad_keys bad = { 0 };
	size_t nr_start = c->nr;
	int ret = 0;
	for (unsigned id = 0; id < BTREE_ID_NR && !ret; id++) {
		if (!(mask & (1u << id)))
			continue;
		if (c->topo_defer && fsck_fused_btree(id) && c->nr == nr_start && !c->scan)
			ret = check_btree_deferring(c, id, &bad);
		else
			ret = check_btree_once(c, id, false, &bad);
	}
	/* a finding: check_allocations will not walk the leaves left to it
	 * (it walks the fused way only after a sound topology) */
	if (!ret && c->leaves_deferred && (c->nr != nr_start || c->scan)) {
		unsigned left = c->leaves_deferred;
		c->leaves_deferred = 0;
		for (unsigned id = 0; id < BTREE_ID_NR && !ret; id++)
			if (left & (1u << id))
				ret = check_btree_once(c, id, false, &bad);
	}
	if (!ret)
		ret = delete_invalid_keys(c, &bad);
	/* a repair may have replaced nodes the journal's keys were replayed
	 * into (a btree rebuilt from scanned leaves, a node dropped): the
	 * journal's keys go in again, over the repaired btrees (with -n too, so
	 * the later passes see what -y leaves) */
	if (!ret && c->nr != nr_start)
		ret = journal_overlay_reapply(c->fs);
	free(bad.v);
	return ret;
}

int fsck_check_topology(struct fsck_ctx *c)
{
	return check_topology_of(c, (1u << BTREE_ID_NR) - 1);
}

int fsck_check_topology_deferred(struct fsck_ctx *c)
{
	unsigned left = c->leaves_deferred;
	c->leaves_deferred = 0;
	c->topo_defer = false;
	return check_topology_of(c, left);
}

/* ---- bad node copies ---- */

/* Why a copy failed: its read or validation error, or the node it holds. */
static void bad_copy_why(struct bkfs_fs *fs, const struct node_copy_bad *bc, struct printbuf *why)
{
	struct btree *b;
	int ret = btree_node_read_at(fs, &bc->ptr.ptrs[bc->copy], &b, why);
	if (!ret) {
		pb_printf(why, "holds btree %s level %u seq %llu, another node than the pointer names",
			  btree_id_str(b->btree_id), b->level, (unsigned long long)b->seq);
		free_private(b);
	} else if (!why->len) {
		pb_printf(why, "%s", bkfs_strerror(ret));
	}
}

/* The repair overwrites the copy in place with the good copy's bytes
 * (copies are identical byte for byte). It is made at once, before the
 * final checkpoint: the node is live, so its buckets are its own until that
 * checkpoint, and a kill before or after the write leaves a sound
 * filesystem (the node keeps a good copy either way). */
void fsck_report_bad_copies(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	for (size_t i = 0; i < fs->nr_bad_copies; i++) {
		const struct node_copy_bad *bc = &fs->bad_copies[i];
		struct printbuf pb = PRINTBUF;
		node_copy_bad_to_text(&pb, bc);
		bool fix = fsck_err(c, FSCK_ERR_btree_node_copy_bad, "rewrote the copy from a good copy", "%s", pb_str(&pb));
		pb_reset(&pb);
		bad_copy_why(fs, bc, &pb);
		fsck_err_msg(c, "%s; the node was read from the other copies (mended chunk by chunk when every copy is damaged)", pb_str(&pb));
		pb_exit(&pb);
		int ret = fix ? btree_node_copy_rewrite(fs, bc) : 0;
		if (ret && c->nr && c->f[c->nr - 1].fixed) {
			/* not repaired after all */
			c->f[c->nr - 1].fixed = false;
			c->f[c->nr - 1].action = "none";
			c->nr_fixed--;
			c->nr_unfixed++;
			fsck_err_msg(c, "rewrite failed: %s", bkfs_strerror(ret));
		}
	}
	fs->nr_bad_copies = 0;
}
