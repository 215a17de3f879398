/* verify.h - a structural verifier used by tests as an oracle, independent of
 * fsck. Header-only (static functions): every tests/unit/NAME.c is its own
 * binary, so shared test code lives here.
 *
 *   unsigned verify_fs(struct bkfs_fs *fs, const struct verify_opts *o);
 *
 * Walks every btree from fs->roots (nodes loaded with btree_node_get) and
 * checks:
 *  - topology: node btree id, level, range and seq match the pointer to it;
 *    the root spans POS_MIN..POS_MAX; children of an interior node tile its
 *    range exactly; no interior node is empty; a pointer has a location iff
 *    the node is clean, and then it is the node's location;
 *  - keys: strictly ordered, inside the node range, bkey_validate() clean,
 *    version not newer than fs->key_version; extents of one inode do not
 *    overlap;
 *  - clean nodes (optionally): every replica on disk validates and holds
 *    exactly the keys the node has in memory;
 *  - buckets: dirty/cached/stripe sectors and data types recomputed from every
 *    pointer (each btree_ptr counts btree_node_size sectors per replica, root
 *    pointers and node space still waiting in fs->pending_free included;
 *    extents count their size; superblock and journal buckets as format marks
 *    them) against the alloc keys of the alloc btree and against the
 *    in-memory mirror ALLOC(fs)->buckets; dirty pointers must carry their
 *    bucket's gen;
 *  - accounting: nr_inodes, replicas, btree sizes, dev_data_type
 *    (buckets, sectors, fragmented) and reflink recomputed, against the
 *    accounting btree and the in-memory table;
 *  - reflink: every indirect extent's refcount equals the number of reflink
 *    pointers overlapping it (none is 0), and every reflink pointer's range
 *    is covered by indirect extents.
 * The recomputation goes through bkfs_mark_key() with the verifier's own
 * mark_ops (the one marking implementation). Returns the number of problems;
 * each is printed to stderr (the first o->max_print of them).
 *
 * Call it between transactions, never in the middle of a commit or
 * checkpoint, and not after the filesystem hit an error. */
#ifndef BKFS_TEST_VERIFY_H
#define BKFS_TEST_VERIFY_H
#include "fs/super.h"
#include "btree/iter.h"
#include "format/node_format.h"
#include "btree/node.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct verify_opts {
	bool check_disk;     /* compare clean nodes with every on-disk replica */
	bool check_scan;     /* scan the raw devices: no node on disk that is not
			      * in the tree may look newer (higher seq) than a
			      * tree node overlapping it, nor share its seq */
	u64 *scan_findings;  /* if set, scan findings are added here (only the
			      * first one ever is printed) instead of being problems */
	unsigned max_print;  /* 0 = 20 */
	const char *tag;     /* prefix for messages */
};

struct vbucket {
	u32 dirty, cached, stripe;
	u8 type;        /* data type of the dirty data seen so far (0 = none) */
	bool mixed;     /* dirty data of two types */
	bool have_key;  /* an alloc key was found in the alloc btree */
	struct bkfs_alloc key;
};

struct vacct {
	struct bpos pos;
	s64 v[3];
};

struct vacct_table {
	struct vacct *e;
	size_t nr, cap;
};

struct vnode {
	u8 id, level;
	u64 seq;
	struct bpos min, max;
};

struct verify_state {
	struct bkfs_fs *fs;
	struct vnode *live;   /* every node of the trees (check_scan) */
	size_t nr_live, live_cap;
	u64 scan_findings, scan_nodes;
	const struct verify_opts *o;
	struct vbucket *b[BKFS_MAX_DEVS];
	struct vacct_table calc;  /* recomputed */
	struct vacct_table disk;  /* accounting btree */
	struct vrange { u64 start, end; } *rl; /* reflink pointer ranges */
	size_t nr_rl, rl_cap;
	unsigned problems, max_print;
	const char *tag;
	u64 nodes, keys;
	u8 *buf;
};

static void v_problem(struct verify_state *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void v_problem(struct verify_state *v, const char *fmt, ...)
{
	v->problems++;
	if (v->problems > v->max_print) {
		if (v->problems == v->max_print + 1)
			fprintf(stderr, "%s: (more problems not printed)\n", v->tag);
		return;
	}
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", v->tag);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
}

static const char *v_pos(struct bpos p, char *buf, size_t len)
{
	struct printbuf pb = PRINTBUF;
	bpos_to_text(&pb, p);
	snprintf(buf, len, "%s", pb_str(&pb));
	pb_exit(&pb);
	return buf;
}

static struct vacct *v_acct_find(struct vacct_table *t, struct bpos pos, bool create)
{
	size_t lo = 0, hi = t->nr;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = bpos_cmp(t->e[mid].pos, pos);
		if (!c)
			return &t->e[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!create)
		return NULL;
	if (t->nr == t->cap) {
		size_t nc = t->cap ? t->cap * 2 : 64;
		struct vacct *n = realloc(t->e, nc * sizeof(*n));
		if (!n)
			return NULL;
		t->e = n;
		t->cap = nc;
	}
	memmove(&t->e[lo + 1], &t->e[lo], (t->nr - lo) * sizeof(*t->e));
	t->nr++;
	memset(&t->e[lo], 0, sizeof(*t->e));
	t->e[lo].pos = pos;
	return &t->e[lo];
}

static void v_acct_add(struct vacct_table *t, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	struct vacct *e = v_acct_find(t, pos, true);
	if (e) {
		e->v[0] += v0;
		e->v[1] += v1;
		e->v[2] += v2;
	}
}

/* ---- mark_ops: the verifier's shadow state ---- */

static int v_mark_bucket(struct mark_ctx *c, const struct bkfs_ptr *p, unsigned data_type,
			 s64 sectors, enum bucket_counter cnt)
{
	struct verify_state *v = c->priv;
	struct bkfs_fs *fs = v->fs;
	if (p->dev >= fs->nr_devs) {
		v_problem(v, "pointer to bad device %u", p->dev);
		return cnt == CNT_CACHED ? 1 : 0;
	}
	u64 b = ptr_bucket(fs, p);
	if (b >= fs->sb.members[p->dev].nbuckets) {
		v_problem(v, "pointer to dev %u sector %llu: bucket %llu beyond the device", p->dev,
			  (unsigned long long)p->offset, (unsigned long long)b);
		return cnt == CNT_CACHED ? 1 : 0;
	}
	if (b < fs->sb.members[p->dev].first_bucket)
		v_problem(v, "pointer to dev %u bucket %llu before first_bucket", p->dev, (unsigned long long)b);
	struct vbucket *vb = &v->b[p->dev][b];
	/* the gen: from the alloc btree key, else the in-memory mirror */
	u8 gen = vb->have_key ? vb->key.gen : bucket_get(fs, p->dev, b)->gen;
	if (p->gen != gen) {
		if (cnt == CNT_CACHED && gen_cmp(p->gen, gen) < 0)
			return 1; /* stale cached pointer: legal, not counted */
		v_problem(v, "%s pointer dev %u bucket %llu gen %u, bucket gen %u",
			  cnt == CNT_CACHED ? "cached" : "dirty", p->dev, (unsigned long long)b, p->gen, gen);
	}
	if ((p->offset % fs->sb.bucket_size) + (u64)(sectors < 0 ? -sectors : sectors) > fs->sb.bucket_size &&
	    data_type == DATA_btree)
		v_problem(v, "btree node at dev %u sector %llu crosses its bucket", p->dev,
			  (unsigned long long)p->offset);
	u32 *ctr = cnt == CNT_DIRTY ? &vb->dirty : cnt == CNT_CACHED ? &vb->cached : &vb->stripe;
	*ctr += (u32)sectors;
	if (cnt == CNT_DIRTY || cnt == CNT_STRIPE) {
		if (vb->type && vb->type != data_type)
			vb->mixed = true;
		vb->type = data_type;
	}
	return 0;
}

static void v_mark_acct(struct mark_ctx *c, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	struct verify_state *v = c->priv;
	v_acct_add(&v->calc, pos, v0, v1, v2);
}

static int v_mark_reflink(struct mark_ctx *c, u64 start, u64 end, int sign)
{
	struct verify_state *v = c->priv;
	if (v->nr_rl == v->rl_cap) {
		size_t nc = v->rl_cap ? v->rl_cap * 2 : 64;
		struct vrange *n = realloc(v->rl, nc * sizeof(*n));
		if (!n)
			return -BKFS_E_NOMEM;
		v->rl = n;
		v->rl_cap = nc;
	}
	v->rl[v->nr_rl++] = (struct vrange){ start, end };
	return 0;
}

static const struct mark_ops verify_mark_ops = {
	.bucket = v_mark_bucket,
	.acct = v_mark_acct,
	.reflink = v_mark_reflink,
};

static int v_range_cmp(const void *a, const void *b)
{
	const struct vrange *x = a, *y = b;
	return x->start < y->start ? -1 : x->start > y->start;
}

/* refcounts against the reflink pointers marked by the walk */
static void v_check_reflink(struct verify_state *v)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 covered = 0; /* reflink pointer sectors covered by indirect extents */
	if (v->nr_rl)
		qsort(v->rl, v->nr_rl, sizeof(*v->rl), v_range_cmp);
	for_each_btree_key(it, v->fs, BTREE_ID_reflink, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_reflink_v)
			continue;
		u64 s = bkey_start_pos(k).offset, e = k->p.offset, n = 0;
		for (size_t i = 0; i < v->nr_rl && v->rl[i].start < e; i++)
			if (v->rl[i].end > s) {
				n++;
				covered += MIN(e, v->rl[i].end) - MAX(s, v->rl[i].start);
			}
		const struct bkfs_reflink_v *rv = bkey_val(k);
		if (rv->refcount != n || !n)
			v_problem(v, "indirect extent %llu..%llu: refcount %llu, %llu reflink pointers", (unsigned long long)s,
				  (unsigned long long)e, (unsigned long long)rv->refcount, (unsigned long long)n);
	}
	if (ret)
		v_problem(v, "iterating the reflink btree: %s", bkfs_strerror(ret));
	u64 want = 0;
	for (size_t i = 0; i < v->nr_rl; i++)
		want += v->rl[i].end - v->rl[i].start;
	if (covered != want)
		v_problem(v, "reflink pointers span %llu sectors, indirect extents cover %llu of them",
			  (unsigned long long)want, (unsigned long long)covered);
}

static void v_mark(struct verify_state *v, unsigned id, unsigned level, const struct bkey *k)
{
	struct mark_ctx c = { .ops = &verify_mark_ops, .fs = v->fs, .priv = v };
	int ret = bkfs_mark_key(&c, id, level, k, 1);
	if (ret)
		v_problem(v, "marking a key in btree %s level %u: %s", btree_id_str(id), level, bkfs_strerror(ret));
}

/* ---- tree walk ---- */

static void v_check_disk(struct verify_state *v, unsigned id, struct btree *b, const struct bkfs_btree_ptr *p)
{
	struct bkfs_fs *fs = v->fs;
	char a[64];
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		const struct bkfs_ptr *ptr = &p->ptrs[i];
		if (ptr->dev >= fs->nr_devs || !fs->devs[ptr->dev].bd)
			continue;
		if (bd_read(fs->devs[ptr->dev].bd, v->buf, ptr->offset << SECTOR_SHIFT, fs->node_bytes)) {
			v_problem(v, "btree %s node seq %llu: replica %u unreadable", btree_id_str(id),
				  (unsigned long long)b->seq, i);
			continue;
		}
		struct printbuf why = PRINTBUF;
		if (node_validate(v->buf, fs->node_bytes, sb_node_magic(&fs->sb), &why)) {
			v_problem(v, "btree %s node seq %llu: replica %u on dev %u sector %llu invalid: %s",
				  btree_id_str(id), (unsigned long long)b->seq, i, ptr->dev,
				  (unsigned long long)ptr->offset, pb_str(&why));
			pb_exit(&why);
			continue;
		}
		pb_exit(&why);
		const struct bkfs_node_hdr *h = (const void *)v->buf;
		if (h->btree_id != id || h->level != b->level || h->seq != b->seq ||
		    !bpos_eq(h->min_key, b->min_key) || !bpos_eq(h->max_key, b->max_key) ||
		    h->nr_keys != b->nr_keys || h->used_bytes != sizeof(*h) + b->used ||
		    memcmp(v->buf + sizeof(*h), b->data, b->used))
			v_problem(v, "btree %s node seq %llu (level %u, max %s): replica %u on disk differs from the clean node in memory",
				  btree_id_str(id), (unsigned long long)b->seq, b->level,
				  v_pos(b->max_key, a, sizeof(a)), i);
	}
}

static void v_walk(struct verify_state *v, unsigned id, const struct bkey *pk, unsigned level,
		   unsigned depth)
{
	struct bkfs_fs *fs = v->fs;
	const struct bkfs_btree_ptr *p = bkey_val(pk);
	struct printbuf why = PRINTBUF;
	struct btree *b;
	char a[64], c[64];

	if (depth > BTREE_MAX_DEPTH) {
		v_problem(v, "btree %s deeper than %u levels", btree_id_str(id), BTREE_MAX_DEPTH);
		return;
	}
	int ret = btree_node_get(fs, id, pk, &b, &why);
	if (ret) {
		v_problem(v, "btree %s level %u node seq %llu (max %s) unreadable: %s (%s)", btree_id_str(id),
			  level, (unsigned long long)p->seq, v_pos(pk->p, a, sizeof(a)), bkfs_strerror(ret),
			  pb_str(&why));
		pb_exit(&why);
		return;
	}
	pb_exit(&why);
	v->nodes++;
	if (v->o && v->o->check_scan) {
		if (v->nr_live == v->live_cap) {
			size_t nc = v->live_cap ? v->live_cap * 2 : 256;
			struct vnode *n = realloc(v->live, nc * sizeof(*n));
			if (n) {
				v->live = n;
				v->live_cap = nc;
			}
		}
		if (v->nr_live < v->live_cap)
			v->live[v->nr_live++] = (struct vnode){ .id = id, .level = b->level, .seq = b->seq,
								.min = b->min_key, .max = b->max_key };
	}
	if (b->btree_id != id || b->level != level || b->seq != p->seq)
		v_problem(v, "btree %s: node seq %llu (btree %u level %u) reached through pointer seq %llu level %u",
			  btree_id_str(id), (unsigned long long)b->seq, b->btree_id, b->level,
			  (unsigned long long)p->seq, level);
	if (!bpos_eq(b->min_key, p->min_key) || !bpos_eq(b->max_key, pk->p))
		v_problem(v, "btree %s level %u node seq %llu: range %s..%s, pointer says %s..%s", btree_id_str(id),
			  level, (unsigned long long)b->seq, v_pos(b->min_key, a, sizeof(a)),
			  v_pos(b->max_key, c, sizeof(c)), v_pos(p->min_key, a, sizeof(a)), v_pos(pk->p, c, sizeof(c)));
	if (b->seq > fs->node_seq)
		v_problem(v, "btree %s node seq %llu newer than fs node_seq %llu", btree_id_str(id),
			  (unsigned long long)b->seq, (unsigned long long)fs->node_seq);
	if (p->nr_ptrs) {
		if (b->dirty)
			v_problem(v, "btree %s node seq %llu is dirty but its pointer has a location", btree_id_str(id),
				  (unsigned long long)b->seq);
		if (!b->has_loc || b->ptr.nr_ptrs != p->nr_ptrs ||
		    memcmp(b->ptr.ptrs, p->ptrs, sizeof(p->ptrs[0]) * MIN(p->nr_ptrs, BKFS_MAX_REPLICAS)))
			v_problem(v, "btree %s node seq %llu: location in memory differs from its pointer",
				  btree_id_str(id), (unsigned long long)b->seq);
		if (v->o && v->o->check_disk && !b->dirty && !(p->flags & BTREE_PTR_RANGE_UPDATED))
			v_check_disk(v, id, b, p);
	} else if (!b->dirty) {
		v_problem(v, "btree %s node seq %llu is clean but its pointer has no location", btree_id_str(id),
			  (unsigned long long)b->seq);
	}

	struct bpos expect_min = b->min_key;
	const struct bkey *prev = NULL;
	for (u32 i = 0; i < b->nr_keys; i++) {
		const struct bkey *k = btree_node_key(b, i);
		v->keys++;
		struct printbuf err = PRINTBUF;
		if (bkey_validate(k, id, b->level, &err)) {
			v_problem(v, "btree %s level %u key %s: invalid: %s", btree_id_str(id), b->level,
				  v_pos(k->p, a, sizeof(a)), pb_str(&err));
			pb_exit(&err);
			prev = k;
			continue;
		}
		pb_exit(&err);
		if (prev && bpos_cmp(prev->p, k->p) >= 0)
			v_problem(v, "btree %s level %u: key %s not after %s", btree_id_str(id), b->level,
				  v_pos(k->p, a, sizeof(a)), v_pos(prev->p, c, sizeof(c)));
		if (bpos_cmp(k->p, b->min_key) < 0 || bpos_cmp(k->p, b->max_key) > 0)
			v_problem(v, "btree %s level %u: key %s outside node %s..%s", btree_id_str(id), b->level,
				  v_pos(k->p, a, sizeof(a)), v_pos(b->min_key, c, sizeof(c)),
				  v_pos(b->max_key, c, sizeof(c)));
		if (k->version > fs->key_version)
			v_problem(v, "btree %s key %s: version %llu newer than fs key_version %llu", btree_id_str(id),
				  v_pos(k->p, a, sizeof(a)), (unsigned long long)k->version,
				  (unsigned long long)fs->key_version);
		if (b->level) {
			const struct bkfs_btree_ptr *cp = bkey_val(k);
			if (!bpos_eq(cp->min_key, expect_min))
				v_problem(v, "btree %s level %u: child %u of node seq %llu starts at %s, expected %s (children must tile)",
					  btree_id_str(id), b->level, i, (unsigned long long)b->seq,
					  v_pos(cp->min_key, a, sizeof(a)), v_pos(expect_min, c, sizeof(c)));
			if (cp->level != b->level - 1)
				v_problem(v, "btree %s level %u: child pointer says level %u", btree_id_str(id),
					  b->level, cp->level);
			v_mark(v, id, b->level, k);
			v_walk(v, id, k, b->level - 1, depth + 1);
			expect_min = bpos_successor(k->p);
		} else {
			if (id == BTREE_ID_extents && prev && prev->p.inode == k->p.inode &&
			    !bkey_deleted(k) && bpos_cmp(bkey_start_pos(k), prev->p) < 0)
				v_problem(v, "extents: key %s (size %u) overlaps previous key %s", v_pos(k->p, a, sizeof(a)),
					  k->size, v_pos(prev->p, c, sizeof(c)));
			if (bkey_deleted(k))
				v_problem(v, "btree %s: deleted key %s stored in a leaf", btree_id_str(id),
					  v_pos(k->p, a, sizeof(a)));
			if (id == BTREE_ID_alloc && k->type == KEY_TYPE_alloc) {
				if (k->p.inode >= fs->nr_devs || k->p.offset >= fs->sb.members[k->p.inode].nbuckets ||
				    k->p.snapshot) {
					v_problem(v, "alloc key %s for a bucket that does not exist", v_pos(k->p, a, sizeof(a)));
				} else {
					struct vbucket *vb = &v->b[k->p.inode][k->p.offset];
					vb->have_key = true;
					memcpy(&vb->key, bkey_val(k), sizeof(vb->key));
				}
			} else if (id == BTREE_ID_accounting && k->type == KEY_TYPE_accounting) {
				const struct bkfs_accounting *acc = bkey_val(k);
				v_acct_add(&v->disk, k->p, acc->v[0], acc->v[1], acc->v[2]);
			} else {
				v_mark(v, id, 0, k);
			}
		}
		prev = k;
	}
	if (b->level) {
		if (!b->nr_keys)
			v_problem(v, "btree %s level %u node seq %llu: empty interior node", btree_id_str(id), b->level,
				  (unsigned long long)b->seq);
		else if (!bpos_eq(btree_node_key(b, b->nr_keys - 1)->p, b->max_key))
			v_problem(v, "btree %s level %u node seq %llu: last child ends at %s, node at %s",
				  btree_id_str(id), b->level, (unsigned long long)b->seq,
				  v_pos(btree_node_key(b, b->nr_keys - 1)->p, a, sizeof(a)),
				  v_pos(b->max_key, c, sizeof(c)));
	}
}

static void v_ptr_key(struct bkey_buf *kb, const struct bkfs_btree_ptr *p)
{
	bkey_init(&kb->k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(struct bkfs_btree_ptr));
	memcpy(bkey_val(&kb->k), p, sizeof(*p));
}

/* superblock and journal buckets, exactly as format marks them */
static void v_mark_sb_journal(struct verify_state *v, unsigned d)
{
	struct bkfs_fs *fs = v->fs;
	const struct bkfs_member *m = &fs->sb.members[d];
	for (u64 b = 0; b < m->nbuckets; b++) {
		struct vbucket *vb = &v->b[d][b];
		if (b < m->first_bucket || b == m->nbuckets - 1) {
			u64 s = b == m->nbuckets - 1 ? BKFS_SB_SIZE >> SECTOR_SHIFT :
				MIN((u64)fs->sb.bucket_size,
				    (BKFS_SB_BACKUP_OFFSET + BKFS_SB_SIZE) / SECTOR_SIZE - b * fs->sb.bucket_size);
			vb->dirty += s;
			if (vb->type && vb->type != DATA_sb)
				vb->mixed = true;
			vb->type = DATA_sb;
		} else if (b >= m->journal_bucket_start && b < m->journal_bucket_start + m->journal_nr_buckets) {
			vb->dirty += fs->sb.bucket_size;
			if (vb->type && vb->type != DATA_journal)
				vb->mixed = true;
			vb->type = DATA_journal;
		}
	}
}

static void v_alloc_diff(struct verify_state *v, const char *what, unsigned d, u64 b,
			 const struct bkfs_alloc *x, const struct bkfs_alloc *y)
{
	struct printbuf px = PRINTBUF, py = PRINTBUF;
	alloc_to_text(&px, x);
	alloc_to_text(&py, y);
	v_problem(v, "bucket %u:%llu: %s\n    have: %s\n    want: %s", d, (unsigned long long)b, what, pb_str(&px),
		  pb_str(&py));
	pb_exit(&px);
	pb_exit(&py);
}

static void v_check_buckets(struct verify_state *v)
{
	struct bkfs_fs *fs = v->fs;
	u32 bs = fs->sb.bucket_size;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		const struct bkfs_member *m = &fs->sb.members[d];
		for (u64 b = 0; b < m->nbuckets; b++) {
			struct vbucket *vb = &v->b[d][b];
			const struct bkfs_alloc *mem = bucket_get(fs, d, b);
			if (vb->mixed)
				v_problem(v, "bucket %u:%llu holds dirty data of two types", d, (unsigned long long)b);
			if (!vb->have_key) {
				v_problem(v, "bucket %u:%llu has no alloc key", d, (unsigned long long)b);
				vb->key = *mem;
			} else if (memcmp(&vb->key, mem, sizeof(*mem))) {
				v_alloc_diff(v, "alloc key differs from the in-memory bucket", d, b, &vb->key, mem);
			}
			struct bkfs_alloc want = vb->key;
			want.dirty_sectors = vb->dirty;
			want.cached_sectors = vb->cached;
			want.stripe_sectors = vb->stripe;
			want.data_type = alloc_data_type(&want, vb->type ? vb->type : DATA_free);
			if (want.dirty_sectors != vb->key.dirty_sectors || want.cached_sectors != vb->key.cached_sectors ||
			    want.stripe_sectors != vb->key.stripe_sectors || want.data_type != vb->key.data_type)
				v_alloc_diff(v, "alloc key does not match the pointers into the bucket", d, b, &vb->key,
					     &want);
			if ((u64)want.dirty_sectors + want.stripe_sectors > bs || want.cached_sectors > bs)
				v_problem(v, "bucket %u:%llu: %u dirty + %u stripe / %u cached sectors in a %u-sector bucket",
					  d, (unsigned long long)b, want.dirty_sectors, want.stripe_sectors,
					  want.cached_sectors, bs);
			/* dev_data_type accounting, from what the bucket should be */
			u32 used = want.data_type == DATA_cached ? want.cached_sectors :
				   want.dirty_sectors + want.stripe_sectors;
			u32 frag = used && used < bs ? bs - used : 0;
			v_acct_add(&v->calc, acct_pos_dev_data_type(d, want.data_type), 1, used, frag);
		}
	}
}

static void v_acct_cmp(struct verify_state *v, const char *what, struct vacct_table *want,
		       struct vacct_table *have)
{
	size_t i = 0, j = 0;
	while (i < want->nr || j < have->nr) {
		struct vacct z = { 0 };
		const struct vacct *w, *h;
		int c = i >= want->nr ? 1 : j >= have->nr ? -1 : bpos_cmp(want->e[i].pos, have->e[j].pos);
		if (c < 0) {
			w = &want->e[i++];
			z.pos = w->pos;
			h = &z;
		} else if (c > 0) {
			h = &have->e[j++];
			z.pos = h->pos;
			w = &z;
		} else {
			w = &want->e[i++];
			h = &have->e[j++];
		}
		if (memcmp(w->v, h->v, sizeof(w->v))) {
			struct printbuf pw = PRINTBUF, ph = PRINTBUF;
			acct_to_text(&pw, v->fs, w->pos, w->v);
			acct_to_text(&ph, v->fs, h->pos, h->v);
			v_problem(v, "accounting (%s): have \"%s\", want \"%s\"", what, pb_str(&ph), pb_str(&pw));
			pb_exit(&pw);
			pb_exit(&ph);
		}
	}
}

#define v_scan_problem(v, ...)                                                  \
	do {                                                                    \
		(v)->scan_findings++;                                           \
		if (!(v)->o->scan_findings)                                     \
			v_problem(v, __VA_ARGS__);                              \
		else if ((v)->scan_findings == 1 && !*(v)->o->scan_findings)    \
			fprintf(stderr, "%s: (scan, reported only) ", (v)->tag), \
			fprintf(stderr, __VA_ARGS__), fprintf(stderr, "\n");    \
	} while (0)

/* Every valid node on the raw devices that is not part of the trees must lose
 * against them under "the higher node seq wins" (what a scan uses to decide
 * which copy of a key range is newest): a tree node it overlaps must have a
 * higher seq, and no two different nodes may share a seq. */
static void v_check_scan(struct verify_state *v)
{
	struct bkfs_fs *fs = v->fs;
	u32 ns = fs->sb.btree_node_size;
	char a[64], c[64];
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		struct blockdev *bd = fs->devs[d].bd;
		if (!bd)
			continue;
		u64 sectors = fs->sb.members[d].nbuckets * fs->sb.bucket_size;
		for (u64 s = 0; s + ns <= sectors; s += ns) {
			const struct bkfs_node_hdr *h = (const void *)v->buf;
			if (bd_read(bd, v->buf, s << SECTOR_SHIFT, fs->node_bytes) ||
			    h->magic != sb_node_magic(&fs->sb) ||
			    node_validate(v->buf, fs->node_bytes, sb_node_magic(&fs->sb), NULL))
				continue;
			/* the scan's own rule: nodes of checkpoints that never
			 * completed are recognisable and ignored */
			if ((fs->durable_node_seq && h->seq > fs->durable_node_seq) ||
			    sb_node_seq_blacklisted(&fs->sb, h->seq))
				continue;
			v->scan_nodes++;
			bool live = false;
			for (size_t i = 0; i < v->nr_live; i++) {
				const struct vnode *l = &v->live[i];
				if (l->id != h->btree_id || l->level != h->level)
					continue;
				if (l->seq == h->seq) {
					live = bpos_eq(l->min, h->min_key) && bpos_eq(l->max, h->max_key);
					if (!live)
						v_scan_problem(v, "dev %u sector %llu: node seq %llu (btree %s level %u) shares its seq with a different tree node",
							  d, (unsigned long long)s, (unsigned long long)h->seq,
							  btree_id_str(h->btree_id), h->level);
					break;
				}
			}
			if (live)
				continue;
			for (size_t i = 0; i < v->nr_live; i++) {
				const struct vnode *l = &v->live[i];
				if (l->id != h->btree_id || l->level != h->level || l->seq >= h->seq ||
				    bpos_cmp(l->max, h->min_key) < 0 || bpos_cmp(h->max_key, l->min) < 0)
					continue;
				v_scan_problem(v, "dev %u sector %llu: stale node seq %llu (btree %s level %u, %s..%s) is newer than tree node seq %llu overlapping it: a scan would prefer it",
					  d, (unsigned long long)s, (unsigned long long)h->seq, btree_id_str(h->btree_id),
					  h->level, v_pos(h->min_key, a, sizeof(a)), v_pos(h->max_key, c, sizeof(c)),
					  (unsigned long long)l->seq);
				break;
			}
		}
	}
}

static unsigned verify_fs(struct bkfs_fs *fs, const struct verify_opts *o)
{
	struct verify_state v = { .fs = fs, .o = o };
	v.max_print = o && o->max_print ? o->max_print : 20;
	v.tag = o && o->tag ? o->tag : "verify";
	v.buf = malloc(fs->node_bytes);
	for (unsigned d = 0; d < fs->nr_devs; d++)
		v.b[d] = calloc(fs->sb.members[d].nbuckets, sizeof(struct vbucket));
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (!v.b[d] || !v.buf) {
			v_problem(&v, "out of memory");
			goto out;
		}

	/* the alloc btree first: its keys give the bucket gens */
	static const unsigned order[] = { BTREE_ID_alloc, BTREE_ID_extents, BTREE_ID_inodes,
					  BTREE_ID_dirents, BTREE_ID_xattrs, BTREE_ID_reflink,
					  BTREE_ID_stripes, BTREE_ID_accounting, BTREE_ID_orphans };
	_Static_assert(ARRAY_SIZE(order) == BTREE_ID_NR, "every btree is walked");
	for (unsigned i = 0; i < BTREE_ID_NR; i++) {
		unsigned id = order[i];
		struct bkey_buf kb;
		const struct bkfs_btree_ptr *rp = &fs->roots[id].ptr;
		if (!bpos_eq(rp->min_key, POS_MIN))
			v_problem(&v, "btree %s: root pointer min_key is not POS_MIN", btree_id_str(id));
		if (fs->roots[id].b && fs->roots[id].b->seq != rp->seq)
			v_problem(&v, "btree %s: loaded root seq %llu, root pointer seq %llu", btree_id_str(id),
				  (unsigned long long)fs->roots[id].b->seq, (unsigned long long)rp->seq);
		v_ptr_key(&kb, rp);
		v_mark(&v, id, rp->level + 1, &kb.k);
		v_walk(&v, id, &kb.k, rp->level, 0);
	}
	/* node space freed by COW is released at the next checkpoint: until
	 * then it still counts */
	for (size_t i = 0; i < fs->nr_pending_free; i++) {
		struct bkey_buf kb;
		v_ptr_key(&kb, &fs->pending_free[i]);
		v_mark(&v, fs->pending_free_btree[i], 1, &kb.k);
	}
	for (unsigned d = 0; d < fs->nr_devs; d++)
		v_mark_sb_journal(&v, d);
	v_check_buckets(&v);
	v_check_reflink(&v);
	if (o && o->check_scan) {
		v_check_scan(&v);
		if (o->scan_findings)
			*o->scan_findings += v.scan_findings;
	}

	/* accounting: recomputed vs the accounting btree vs the in-memory table */
	struct alloc_state *as = ALLOC(fs);
	struct vacct_table mem = { 0 };
	for (size_t i = 0; i < as->nr_acct; i++)
		v_acct_add(&mem, as->acct[i].pos, as->acct[i].v[0], as->acct[i].v[1], as->acct[i].v[2]);
	v_acct_cmp(&v, "btree vs recomputed", &v.calc, &v.disk);
	v_acct_cmp(&v, "memory vs btree", &v.disk, &mem);
	free(mem.e);
out:
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		free(v.b[d]);
	free(v.live);
	free(v.rl);
	free(v.calc.e);
	free(v.disk.e);
	free(v.buf);
	return v.problems;
}

#endif
