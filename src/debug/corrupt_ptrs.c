/* corrupt_ptrs.c - kinds that damage where data lives: extent pointers
 * (their gen, device, bucket), an extent that overflows its bucket's sector
 * count, and indirect extents shared through reflink (their refcount, the
 * key itself). */
#include "corrupt_int.h"
#include "../util/darray.h"
#include "../btree/iter.h"
#include "../format/node_format.h"

static u64 bkey_of(unsigned dev, u64 bucket) { return (u64)dev << 56 | bucket; }

static int u64_cmp(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;
	return x < y ? -1 : x > y;
}

struct bucket_refs { u64 *v; size_t nr; };

/* the bucket of every pointer in the btrees of ids (sorted keys, a key per
 * pointer: its count is the bucket's number of pointers) */
static int bucket_refs(struct corrupt_ctx *c, const unsigned *ids, unsigned nr_ids, struct bucket_refs *out)
{
	u64 *v = NULL;
	size_t n = 0, cap = 0;
	for (unsigned x = 0; x < nr_ids; x++) {
		struct btree_iter it;
		struct bkey *k;
		int ret;
		for_each_btree_key(it, c->fs, ids[x], POS_MIN, k, ret) {
			struct bkfs_ptr *ptrs;
			unsigned np = bkey_ptrs(k, &ptrs);
			for (unsigned i = 0; i < np; i++) {
				if (darray_room(v, cap, n + 1, 64)) {
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
	if (n)
		qsort(v, n, sizeof(u64), u64_cmp);
	*out = (struct bucket_refs){ v, n };
	return 0;
}

static size_t refs_of(const struct bucket_refs *r, u64 key)
{
	const u64 *v = r->v;
	size_t n = r->nr;
	size_t lo = sorted_lower_bound(n, m, v[m] < key), cnt = 0;
	while (lo + cnt < n && v[lo + cnt] == key)
		cnt++;
	return cnt;
}

/* A seeded extent key (type extent) whose first pointer is a plain dirty
 * one, or with striped an erasure-coded one; sole = that pointer's bucket
 * holds no other pointer (prefer those, fall back to any when none). */
int pick_extent_ptr(struct corrupt_ctx *c, bool prefer_sole, bool striped, struct ext_target *t, bool *sole_out)
{
	static const unsigned ids[] = { BTREE_ID_extents, BTREE_ID_reflink };
	struct bucket_refs refs = { 0 };
	int ret;
	if (prefer_sole && (ret = bucket_refs(c, ids, ARRAY_SIZE(ids), &refs)))
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
		if (!darray_room(all, ca, na + 1, 64))
			all[na++] = k->p;
		if (prefer_sole && refs_of(&refs, bkey_of(ptrs[0].dev, ptrs[0].offset / c->bucket_sectors)) == 1 &&
		    !darray_room(sole, cs, ns + 1, 64))
			sole[ns++] = k->p;
	}
	free(refs.v);
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

void ext_damaged_text(struct corrupt_ctx *c, struct ext_target *t, const char *what)
{
	struct bkfs_ptr *ptrs;
	bkey_ptrs(&t->k.k, &ptrs);
	pb_printf(&c->r->damaged, "extent of inode %llu ending at sector %llu (%u sectors), pointer ",
		  (unsigned long long)t->k.k.p.inode, (unsigned long long)t->k.k.p.offset, t->k.k.size);
	ptr_to_text(&c->r->damaged, &ptrs[t->ptr]);
	pb_printf(&c->r->damaged, " (bucket %llu): %s", (unsigned long long)(ptrs[t->ptr].offset / c->bucket_sectors), what);
	load_dents(c);
	load_inodes(c);
	pb_printf(&c->r->damaged, "; file ");
	path_of(c, t->k.k.p.inode, &c->r->damaged);
}

enum ptr_edit { PE_GEN_UP, PE_GEN_DOWN, PE_DEV, PE_BUCKET, PE_TOO_STALE, PE_BTREE_BUCKET, PE_JOURNAL_BUCKET };

/* p (of extent t) moved to a seeded place inside bucket b, with gen */
static void move_into_bucket(struct corrupt_ctx *c, const struct bkey *t, struct bkfs_ptr *p, u64 b, u8 gen,
			     const char *what, char *out, size_t len)
{
	u32 sectors = t->size + bkey_extent(t)->offset;
	u64 off = b * c->bucket_sectors + (sectors < c->bucket_sectors ? pick(c, c->bucket_sectors - sectors) : 0);
	snprintf(out, len, "offset %llu -> %llu, gen %u -> %u (into %s bucket %llu)", (unsigned long long)p->offset,
		 (unsigned long long)off, p->gen, gen, what, (unsigned long long)b);
	p->offset = off;
	p->gen = gen;
}

/* into a bucket holding nodes of the alloc btree, same device */
static int into_btree_bucket(struct corrupt_ctx *c, const struct bkey *t, struct bkfs_ptr *p, char *what, size_t len)
{
	int ret = walk_nodes(c);
	if (ret)
		return ret;
	size_t cand[1024], n = 0;
	for (size_t i = 0; i < c->nr_nodes && n < ARRAY_SIZE(cand); i++)
		if (c->nodes[i].id == BTREE_ID_alloc && c->nodes[i].ptr.ptrs[0].dev == p->dev)
			cand[n++] = i;
	if (!n)
		return no_target(c, "no alloc btree node on the extent's device");
	const struct bkfs_ptr *np = &c->nodes[cand[pick(c, n)]].ptr.ptrs[0];
	move_into_bucket(c, t, p, np->offset / c->bucket_sectors, np->gen, "btree", what, len);
	return 0;
}

/* into a journal bucket of the same device, with that bucket's gen */
static int into_journal_bucket(struct corrupt_ctx *c, const struct bkey *t, struct bkfs_ptr *p, char *what, size_t len)
{
	const struct bkfs_member *m = &c->sb.members[p->dev];
	if (!m->journal_nr_buckets)
		return no_target(c, "no journal bucket on the extent's device");
	u64 b = m->journal_bucket_start + pick(c, m->journal_nr_buckets);
	struct bkey_buf ak;
	if (btree_lookup(c->fs, BTREE_ID_alloc, POS(p->dev, b), &ak))
		return no_target(c, "journal bucket %llu has no alloc key", (unsigned long long)b);
	move_into_bucket(c, t, p, b, ((const struct bkfs_alloc *)bkey_val(&ak.k))->gen, "journal", what, len);
	return 0;
}

/* every file with data in the bucket of p may change */
static void bucket_users_affected(struct corrupt_ctx *c, const struct bkfs_ptr *p)
{
	u64 key = bkey_of(p->dev, p->offset / c->bucket_sectors);
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, c->fs, BTREE_ID_extents, POS_MIN, k, ret) {
		struct bkfs_ptr *pp;
		unsigned np = bkey_ptrs(k, &pp);
		for (unsigned i = 0; i < np; i++)
			if (bkey_of(pp[i].dev, pp[i].offset / c->bucket_sectors) == key)
				aff_inum(c, k->p.inode);
	}
}

/* Edit p; what says how. */
static int ptr_edit(struct corrupt_ctx *c, enum ptr_edit e, const struct bkey *t, struct bkfs_ptr *p, char *what,
		    size_t len)
{
	switch (e) {
	case PE_GEN_UP:
		snprintf(what, len, "gen %u -> %u (newer than its bucket)", p->gen, (u8)(p->gen + 1));
		p->gen++;
		return 0;
	case PE_GEN_DOWN:
		snprintf(what, len, "gen %u -> %u (older than its bucket: stale)", p->gen, (u8)(p->gen - 1));
		p->gen--;
		return 0;
	case PE_TOO_STALE:
		snprintf(what, len, "gen %u -> %u (100 generations older than its bucket)", p->gen, (u8)(p->gen - 100));
		p->gen -= 100;
		return 0;
	case PE_DEV:
		if (c->nr_devs >= 7)
			return no_target(c, "device 7 exists in this filesystem");
		snprintf(what, len, "device %u -> 7 (no such member)", p->dev);
		p->dev = 7;
		return 0;
	case PE_BUCKET: {
		u64 nb = c->sb.members[p->dev].nbuckets;
		u64 off = (nb + pick(c, 1000)) * c->bucket_sectors + p->offset % c->bucket_sectors;
		snprintf(what, len, "offset %llu -> %llu (bucket %llu, the device has %llu)", (unsigned long long)p->offset,
			 (unsigned long long)off, (unsigned long long)(off / c->bucket_sectors), (unsigned long long)nb);
		p->offset = off;
		return 0;
	}
	case PE_BTREE_BUCKET:
		return into_btree_bucket(c, t, p, what, len);
	case PE_JOURNAL_BUCKET:
		return into_journal_bucket(c, t, p, what, len);
	}
	return -BKFS_E_INVAL;
}

static int ptr_kind(struct corrupt_ctx *c, enum ptr_edit e)
{
	struct ext_target t;
	bool sole = false;
	int ret = pick_extent_ptr(c, e == PE_GEN_UP, false, &t, &sole);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "no extent with data pointers (only inline data?)");
	if (ret)
		return ret;
	struct ext_target orig = t;
	struct bkfs_ptr *ptrs;
	bkey_ptrs(&t.k.k, &ptrs);
	char what[160];
	if ((ret = ptr_edit(c, e, &t.k.k, &ptrs[t.ptr], what, sizeof(what))))
		return ret;
	if (e != PE_GEN_UP)
		pb_printf(&c->r->lost, "the extent's data (%u sectors)", t.k.k.size);
	else if (sole)
		pb_printf(&c->r->lost, "none: the bucket holds only this extent, it adopts the pointer's gen");
	else
		pb_printf(&c->r->lost, "other extents in the bucket may be dropped (no bucket held a single extent)");
	ext_damaged_text(c, &orig, what);
	aff_inum(c, t.k.k.p.inode);
	if (e == PE_GEN_UP && !sole) {
		bkey_ptrs(&orig.k.k, &ptrs);
		bucket_users_affected(c, &ptrs[t.ptr]);
	}
	return edit_leaf_key(c, BTREE_ID_extents, t.k.k.p, &t.k.k);
}

int corrupt_ptr_gen_newer(struct corrupt_ctx *c) { return ptr_kind(c, PE_GEN_UP); }
int corrupt_stale_dirty_ptr(struct corrupt_ctx *c) { return ptr_kind(c, PE_GEN_DOWN); }
int corrupt_ptr_too_stale(struct corrupt_ctx *c) { return ptr_kind(c, PE_TOO_STALE); }
int corrupt_ptr_invalid_device(struct corrupt_ctx *c) { return ptr_kind(c, PE_DEV); }
int corrupt_ptr_invalid_bucket(struct corrupt_ctx *c) { return ptr_kind(c, PE_BUCKET); }
int corrupt_ptr_data_type_mismatch(struct corrupt_ctx *c) { return ptr_kind(c, PE_BTREE_BUCKET); }
int corrupt_ptr_journal_bucket(struct corrupt_ctx *c) { return ptr_kind(c, PE_JOURNAL_BUCKET); }

/* a plain dirty extent whose bucket holds no indirect extent */
static bool extent_outside(struct corrupt_ctx *c, const struct bkey *k, const void *refs)
{
	struct bkfs_ptr *ptrs;
	if (k->type != KEY_TYPE_extent || !bkey_ptrs((struct bkey *)k, &ptrs) ||
	    (ptrs[0].flags & (PTR_CACHED | PTR_HAS_STRIPE)))
		return false;
	return !refs_of(refs, bkey_of(ptrs[0].dev, ptrs[0].offset / c->bucket_sectors));
}

static bool last_extents_leaf(struct corrupt_ctx *c, const struct dnode *n)
{
	return n->id == BTREE_ID_extents && !n->level && bpos_eq(n->max, POS_MAX);
}

/* An extent of size 2^32-1 for an inode that does not exist, appended to the
 * last leaf of the extents btree (so the walk marks it after every real
 * extent), with a copy of a real extent's pointer: marking it would take that
 * bucket's dirty count past 2^32-1. The bucket holds no indirect extent (the
 * reflink btree is walked later). */
int corrupt_sector_count_overflow(struct corrupt_ctx *c)
{
	static const unsigned reflink[] = { BTREE_ID_reflink };
	struct bucket_refs refs;
	struct bkey_buf src;
	int ret = load_inodes(c);
	if (ret || (ret = bucket_refs(c, reflink, 1, &refs)))
		return ret;
	ret = pick_key(c, BTREE_ID_extents, extent_outside, &refs, &src);
	free(refs.v);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "no extent with a data pointer into a bucket without indirect extents");
	if (ret)
		return ret;
	struct dnode *leaf = NULL;
	for (size_t i = 0; i < c->nr_nodes; i++)
		if (last_extents_leaf(c, &c->nodes[i]))
			leaf = &c->nodes[i];
	if (!leaf)
		return no_target(c, "the last leaf of the extents btree is not written");
	u64 inum = unused_inum(c);
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_extent, POS(inum, UINT32_MAX), extent_val_bytes(1));
	kb.k.size = UINT32_MAX;
	kb.k.version = src.k.version;
	struct bkfs_extent *e = bkey_val(&kb.k);
	e->nr_ptrs = 1;
	e->ptrs[0] = bkey_extent(&src.k)->ptrs[0];
	if ((ret = key_check(c, &kb.k, BTREE_ID_extents, true, NULL)))
		return ret;
	u8 *buf = node_read(c, &leaf->ptr);
	if (!buf)
		return -BKFS_E_IO;
	struct bkfs_node_hdr *h = hdr(buf);
	if (h->nr_keys && bpos_cmp(node_buf_key(buf, h->nr_keys - 1)->p, kb.k.p) >= 0)
		ret = no_target(c, "the last extents leaf holds a key past inode %llu", (unsigned long long)inum);
	else if (h->used_bytes + bkey_bytes(&kb.k) > c->node_bytes)
		ret = no_target(c, "no room in the last extents leaf");
	if (ret) {
		free(buf);
		return ret;
	}
	memcpy(buf + h->used_bytes, &kb.k, bkey_bytes(&kb.k));
	h->used_bytes += bkey_bytes(&kb.k);
	h->nr_keys++;
	pb_printf(&c->r->damaged, "extent of %u sectors for inode %llu, which does not exist, appended to ", kb.k.size,
		  (unsigned long long)inum);
	node_text(&c->r->damaged, leaf);
	pb_printf(&c->r->damaged, ", pointer ");
	ptr_to_text(&c->r->damaged, &e->ptrs[0]);
	pb_printf(&c->r->damaged, " (bucket %llu, shared with the extent of inode %llu ending at sector %llu)",
		  (unsigned long long)(e->ptrs[0].offset / c->bucket_sectors), (unsigned long long)src.k.p.inode,
		  (unsigned long long)src.k.p.offset);
	pb_printf(&c->r->lost, "none: the added extent belongs to no inode");
	ret = node_commit(c, &leaf->ptr, buf);
	free(buf);
	return ret;
}

/* ---- reflink: indirect extents of files sharing data ---- */

static bool indirect_with_refs(struct corrupt_ctx *c, const struct bkey *k, const void *min_refs)
{
	return k->type == KEY_TYPE_reflink_v &&
	       ((const struct bkfs_reflink_v *)bkey_val(k))->refcount >= *(const u64 *)min_refs;
}

/* The files with a reflink pointer into [start, end): named in the damage
 * text, and (affects) when their data may change. */
static int reflink_users(struct corrupt_ctx *c, u64 start, u64 end, bool affects)
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
		pb_printf(&c->r->damaged, "%s", first ? "; shared by " : ", ");
		first = false;
		path_of(c, k->p.inode, &c->r->damaged);
		if (affects)
			aff_inum(c, k->p.inode);
	}
	return ret;
}

/* An image without shared data: a seeded regular file of at least 64 KiB
 * gets a copy sharing its data beside it (NAME.shared, bkfs_reflink) in a
 * read-write session first; then the filesystem is opened read-only again. */
static int reflink_setup(struct corrupt_ctx *c)
{
	int ret = fs_prepare(c);
	if (ret)
		return ret;
	struct dent *d = pick_file(c, 65536, NULL);
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
		report_fail(c, "sharing a file's data first", ret);
		d_close(c, false);
		return ret;
	}
	pb_printf(&c->r->damaged, "(first ");
	path_of(c, d->inum, &c->r->damaged);
	pb_printf(&c->r->damaged, " shared with a new copy %s) ", name);
	if ((ret = d_close(c, true)))
		return ret;
	return d_open(c, OPEN_RO);
}

enum reflink_edit { RE_REFS_UP, RE_REFS_DOWN, RE_DELETE };

static int reflink_kind(struct corrupt_ctx *c, enum reflink_edit e)
{
	struct bkey_buf v;
	u64 min_refs = e == RE_REFS_DOWN ? 2 : 1;
	int ret = pick_key(c, BTREE_ID_reflink, indirect_with_refs, &min_refs, &v);
	if (ret == -BKFS_E_NOENT && !(ret = reflink_setup(c)))
		ret = pick_key(c, BTREE_ID_reflink, indirect_with_refs, &min_refs, &v);
	if (ret == -BKFS_E_NOENT)
		return no_target(c, "no indirect extent%s, and no regular file of 64 KiB or more to share",
				 e == RE_REFS_DOWN ? " with two references" : "");
	if (ret)
		return ret;
	struct bkfs_reflink_v *rv = bkey_val(&v.k);
	u64 start = bkey_start_pos(&v.k).offset, end = v.k.p.offset;
	pb_printf(&c->r->damaged, "indirect extent %llu..%llu of the reflink btree (%u sectors, refcount %llu): ",
		  (unsigned long long)start, (unsigned long long)end, v.k.size, (unsigned long long)rv->refcount);
	switch (e) {
	case RE_REFS_UP:
	case RE_REFS_DOWN:
		rv->refcount += e == RE_REFS_UP ? 1 : -1;
		pb_printf(&c->r->damaged, "refcount set to %llu", (unsigned long long)rv->refcount);
		pb_printf(&c->r->lost, "none");
		break;
	case RE_DELETE:
		pb_printf(&c->r->damaged, "deleted, the reflink pointers to it kept");
		pb_printf(&c->r->lost, "those %u sectors in every file that shares them (the pointers become error keys)",
			  v.k.size);
		break;
	}
	if ((ret = reflink_users(c, start, end, e == RE_DELETE)))
		return ret;
	return edit_leaf_key(c, BTREE_ID_reflink, v.k.p, e == RE_DELETE ? NULL : &v.k);
}

int corrupt_reflink_refcount_high(struct corrupt_ctx *c) { return reflink_kind(c, RE_REFS_UP); }
int corrupt_reflink_refcount_low(struct corrupt_ctx *c) { return reflink_kind(c, RE_REFS_DOWN); }
int corrupt_reflink_v_missing(struct corrupt_ctx *c) { return reflink_kind(c, RE_DELETE); }
