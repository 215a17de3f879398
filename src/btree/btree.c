/* btree.c - descent, copy-on-write marking, insert/delete with splits and
 * merges, exact lookup and iterators. Single-threaded: callers serialize. */
#include "btree.h"
#include "node.h"
#include "iter.h"
#include <stdlib.h>
#include <string.h>

struct btree_path {
	struct btree *b[BTREE_MAX_DEPTH + 1];
	u32 idx[BTREE_MAX_DEPTH + 1]; /* idx[l] = index in b[l] of the key/child followed */
	unsigned root_level;
};

static void root_ptr_key(struct bkfs_fs *fs, unsigned id, struct bkey_buf *kb)
{
	bkey_init(&kb->k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(struct bkfs_btree_ptr));
	memcpy(bkey_val(&kb->k), &fs->roots[id].ptr, sizeof(struct bkfs_btree_ptr));
}

int btree_root_get(struct bkfs_fs *fs, unsigned id, struct btree **out)
{
	struct btree_root *r = &fs->roots[id];
	if (r->b) {
		*out = r->b;
		return 0;
	}
	if (r->error)
		return r->error;
	struct bkey_buf kb;
	root_ptr_key(fs, id, &kb);
	int ret = btree_node_get(fs, id, &kb.k, &r->b, NULL);
	if (ret) {
		r->error = ret == -BKFS_E_NOMEM ? 0 : ret;
		return ret;
	}
	*out = r->b;
	return 0;
}

int btree_root_set_empty(struct bkfs_fs *fs, unsigned id)
{
	struct btree_root *r = &fs->roots[id];
	struct btree *b = btree_node_alloc(fs, id, 0);
	if (!b)
		return -BKFS_E_NOMEM;
	r->b = b;
	r->error = 0;
	memset(&r->ptr, 0, sizeof(r->ptr));
	r->ptr.seq = b->seq;
	r->ptr.level = 0;
	fs->cache_gen++;
	return 0;
}

static void ptr_key_for(struct bkey_buf *kb, struct btree *child)
{
	bkey_init(&kb->k, KEY_TYPE_btree_ptr, child->max_key, sizeof(struct bkfs_btree_ptr));
	struct bkfs_btree_ptr *p = bkey_val(&kb->k);
	if (child->has_loc)
		*p = child->ptr;
	else
		p->nr_ptrs = 0;
	p->seq = child->seq;
	p->min_key = child->min_key;
	p->level = child->level;
	p->flags = 0;
}

/* Make a node dirty (copy-on-write): it gets a fresh seq and its old location
 * is released at the next checkpoint. The parent's pointer is updated, so the
 * parent must already be dirty (or b is a root). */
static void node_cow(struct bkfs_fs *fs, struct btree *b, struct btree *parent, u32 pidx)
{
	if (b->dirty)
		return;
	if (b->has_loc)
		btree_pending_free_add(fs, b->btree_id, &b->ptr);
	b->has_loc = false;
	memset(&b->ptr, 0, sizeof(b->ptr));
	btree_cache_rehash(fs, b, ++fs->node_seq);
	btree_cache_set_dirty(fs, b); /* leaves the LRU: dirty nodes are never evicted */
	if (parent) {
		struct bkfs_btree_ptr *p = bkey_val(btree_node_key(parent, pidx));
		p->seq = b->seq;
		p->nr_ptrs = 0;
		memset(p->ptrs, 0, sizeof(p->ptrs));
		p->flags = 0;
	} else {
		struct btree_root *r = &fs->roots[b->btree_id];
		memset(&r->ptr, 0, sizeof(r->ptr));
		r->ptr.seq = b->seq;
		r->ptr.level = b->level;
		r->ptr.min_key = b->min_key;
	}
}

void btree_node_mark_dirty(struct bkfs_fs *fs, struct btree *b)
{
	/* only valid for roots; interior users go through path_mark_dirty */
	node_cow(fs, b, NULL, 0);
}

static void path_mark_dirty(struct bkfs_fs *fs, struct btree_path *path, unsigned level)
{
	for (int l = path->root_level; l >= (int)level; l--)
		node_cow(fs, path->b[l], l == (int)path->root_level ? NULL : path->b[l + 1],
			 l == (int)path->root_level ? 0 : path->idx[l + 1]);
}

static int path_descend(struct bkfs_fs *fs, unsigned id, struct bpos pos, unsigned level,
			struct btree_path *path)
{
	struct btree *b;
	int ret = btree_root_get(fs, id, &b);
	if (ret)
		return ret;
	path->root_level = b->level;
	if (b->level < level)
		return -BKFS_E_NOENT;
	while (1) {
		path->b[b->level] = b;
		if (b->level == level) {
			path->idx[b->level] = btree_node_lower_bound(b, pos);
			return 0;
		}
		if (!b->nr_keys)
			return -BKFS_E_CORRUPT;
		u32 i = btree_node_lower_bound(b, pos);
		if (i >= b->nr_keys)
			i = b->nr_keys - 1;
		path->idx[b->level] = i;
		struct bkey *k = btree_node_key(b, i);
		struct btree *child;
		ret = btree_node_get(fs, id, k, &child, NULL);
		if (ret)
			return ret;
		if (child->level != b->level - 1)
			return -BKFS_E_CORRUPT;
		b = child;
	}
}

/* Grow the tree by one level: a new root whose only child is the old root. */
static int grow_root(struct bkfs_fs *fs, unsigned id, struct btree_path *path)
{
	struct btree *old = path->b[path->root_level];
	if (path->root_level + 1 >= BTREE_MAX_DEPTH)
		return -BKFS_E_TOOBIG;
	node_cow(fs, old, NULL, 0);
	struct btree *r = btree_node_alloc(fs, id, old->level + 1);
	if (!r)
		return -BKFS_E_NOMEM;
	struct bkey_buf kb;
	old->min_key = POS_MIN;
	old->max_key = POS_MAX;
	ptr_key_for(&kb, old);
	btree_node_insert_at(r, 0, &kb.k);
	fs->roots[id].b = r;
	memset(&fs->roots[id].ptr, 0, sizeof(fs->roots[id].ptr));
	fs->roots[id].ptr.seq = r->seq;
	fs->roots[id].ptr.level = r->level;
	path->root_level++;
	path->b[path->root_level] = r;
	path->idx[path->root_level] = 0;
	fs->cache_gen++;
	return 0;
}

#define PTR_KEY_BYTES (sizeof(struct bkey) + sizeof(struct bkfs_btree_ptr))

/* The bytes the left half keeps when node n splits for an insert at index
 * ins. Half, except when the insert goes after the node's last key (its
 * last child, for an interior node): keys arriving in ascending order (an
 * untar creates inodes, extents and directories at the end of their btrees)
 * would otherwise leave every node behind them half full for good. The
 * left node then keeps 7/8 and the new keys go to the right one. */
static u32 split_bytes(const struct btree *n, u32 ins)
{
	bool append = ins + (n->level ? 1 : 0) >= n->nr_keys;
	return append ? n->used / 8 * 7 : n->used / 2;
}

/* Split path->b[level] in two for an insert at index ins of it. Returns 0
 * after a split (caller re-descends). */
static int btree_split(struct bkfs_fs *fs, unsigned id, struct btree_path *path, unsigned level, u32 ins)
{
	int ret;
	if (level == path->root_level && (ret = grow_root(fs, id, path)))
		return ret;
	struct btree *parent = path->b[level + 1];
	if (parent->used + PTR_KEY_BYTES > parent->cap)
		return btree_split(fs, id, path, level + 1, path->idx[level + 1]);
	path_mark_dirty(fs, path, level);
	struct btree *n = path->b[level];
	if (n->nr_keys < 2)
		return -BKFS_E_TOOBIG;
	u32 split = 0, bytes = 0, keep = split_bytes(n, ins);
	while (split < n->nr_keys - 1 && bytes < keep)
		bytes += bkey_bytes(btree_node_key(n, split++));
	if (!split)
		split = 1;
	struct btree *n2 = btree_node_alloc(fs, id, level);
	if (!n2)
		return -BKFS_E_NOMEM;
	u32 off = n->offs[split];
	memcpy(n2->data, n->data + off, n->used - off);
	n2->nr_keys = n->nr_keys - split;
	btree_node_rebuild_offs(n2);
	n->nr_keys = split;
	btree_node_rebuild_offs(n);
	n2->max_key = n->max_key;
	n->max_key = btree_node_key(n, split - 1)->p;
	n2->min_key = bpos_successor(n->max_key);
	n2->journal_seq = n->journal_seq;
	n2->nr_invalid = n->nr_invalid; /* either half may hold them */

	/* parent: the old key (at old max) now names n2; insert a key for n */
	u32 pidx = path->idx[level + 1];
	struct bkfs_btree_ptr *pp = bkey_val(btree_node_key(parent, pidx));
	memset(pp, 0, sizeof(*pp));
	pp->seq = n2->seq;
	pp->min_key = n2->min_key;
	pp->level = level;
	struct bkey_buf kb;
	ptr_key_for(&kb, n);
	ret = btree_node_insert_at(parent, pidx, &kb.k);
	fs->cache_gen++;
	return ret;
}

/* Merge path->b[level] with a sibling when it is below a third full and the
 * two fit in 3/4 of a node (so the merged node does not split again at
 * once); repeat upwards. */
static int btree_maybe_merge(struct bkfs_fs *fs, unsigned id, struct btree_path *path, unsigned level)
{
	for (; level < path->root_level; level++) {
		struct btree *n = path->b[level], *parent = path->b[level + 1];
		if (n->used >= n->cap / 3)
			break;
		u32 i = path->idx[level + 1];
		if (parent->nr_keys < 2)
			break;
		u32 li = i + 1 < parent->nr_keys ? i : i - 1; /* left index of the pair */
		struct btree *left, *right;
		int ret = btree_node_get(fs, id, btree_node_key(parent, li), &left, NULL);
		if (!ret)
			ret = btree_node_get(fs, id, btree_node_key(parent, li + 1), &right, NULL);
		if (ret)
			return 0; /* an unreadable sibling is fsck's business */
		if (left->used + right->used > left->cap * 3 / 4)
			break;
		path_mark_dirty(fs, path, level + 1);
		node_cow(fs, left, parent, li);
		node_cow(fs, right, parent, li + 1);
		memcpy(left->data + left->used, right->data, right->used);
		left->nr_keys += right->nr_keys;
		btree_node_rebuild_offs(left);
		left->max_key = right->max_key;
		left->journal_seq = MAX(left->journal_seq, right->journal_seq);
		left->nr_invalid += right->nr_invalid;
		/* parent: drop left's key; right's key (at right max) now names left */
		btree_node_delete_at(parent, li);
		struct bkfs_btree_ptr *pp = bkey_val(btree_node_key(parent, li));
		memset(pp, 0, sizeof(*pp));
		pp->seq = left->seq;
		pp->min_key = left->min_key;
		pp->level = level;
		btree_node_drop(fs, right);
		path->b[level] = left;
		path->idx[level + 1] = li;
		fs->cache_gen++;
	}
	/* collapse roots with a single child */
	struct btree *r = fs->roots[id].b;
	while (r && r->level > 0 && r->nr_keys == 1) {
		struct btree *child;
		if (btree_node_get(fs, id, btree_node_key(r, 0), &child, NULL))
			break;
		node_cow(fs, child, r, 0);
		child->min_key = POS_MIN;
		child->max_key = POS_MAX;
		btree_node_drop(fs, r);
		fs->roots[id].b = child;
		memset(&fs->roots[id].ptr, 0, sizeof(fs->roots[id].ptr));
		fs->roots[id].ptr.seq = child->seq;
		fs->roots[id].ptr.level = child->level;
		r = child;
		fs->cache_gen++;
	}
	return 0;
}

int btree_insert_key(struct bkfs_fs *fs, unsigned id, const struct bkey *k)
{
	struct btree_path path;
	bool del = bkey_deleted(k);
	int ret;
	for (int tries = 0; tries < 64; tries++) {
		ret = path_descend(fs, id, k->p, 0, &path);
		if (ret)
			return ret;
		struct btree *leaf = path.b[0];
		u32 idx = path.idx[0];
		bool exists = idx < leaf->nr_keys && bpos_eq(btree_node_key(leaf, idx)->p, k->p);
		if (del) {
			if (!exists)
				return 0;
			path_mark_dirty(fs, &path, 0);
			btree_node_delete_at(leaf, idx);
			return btree_maybe_merge(fs, id, &path, 0);
		}
		size_t old = exists ? bkey_bytes(btree_node_key(leaf, idx)) : 0;
		if (leaf->used - old + bkey_bytes(k) > leaf->cap) {
			ret = btree_split(fs, id, &path, 0, idx);
			if (ret)
				return ret;
			continue;
		}
		path_mark_dirty(fs, &path, 0);
		if (exists)
			btree_node_delete_at(leaf, idx);
		return btree_node_insert_at(leaf, idx, k);
	}
	return -BKFS_E_LOOP;
}

/* Whether a key of node b fails validation (only nodes read with invalid
 * keys are checked). */
static bool key_invalid(struct btree *b, const struct bkey *k)
{
	return b->nr_invalid && bkey_validate(k, b->btree_id, b->level, NULL);
}

int btree_lookup_any(struct bkfs_fs *fs, unsigned id, struct bpos p, struct bkey_buf *out, bool *invalid)
{
	struct btree_path path;
	int ret = path_descend(fs, id, p, 0, &path);
	if (ret)
		return ret;
	struct btree *leaf = path.b[0];
	u32 idx = path.idx[0];
	if (idx >= leaf->nr_keys || !bpos_eq(btree_node_key(leaf, idx)->p, p))
		return -BKFS_E_NOENT;
	const struct bkey *k = btree_node_key(leaf, idx);
	*invalid = key_invalid(leaf, k);
	if (out) {
		/* an invalid key may be bigger than any valid one: cut it */
		memcpy(out, k, MIN(bkey_bytes(k), sizeof(*out)));
		if (bkey_bytes(k) > sizeof(*out))
			out->k.u64s = sizeof(*out) / 8;
	}
	return 0;
}

int btree_lookup(struct bkfs_fs *fs, unsigned id, struct bpos p, struct bkey_buf *out)
{
	bool invalid;
	int ret = btree_lookup_any(fs, id, p, out, &invalid);
	return !ret && invalid ? -BKFS_E_CORRUPT : ret;
}

/* ---- iterators ---- */

void btree_iter_init(struct btree_iter *it, struct bkfs_fs *fs, unsigned id, unsigned level, struct bpos pos)
{
	memset(it, 0, sizeof(*it));
	it->fs = fs;
	it->btree_id = id;
	it->level = level;
	it->pos = pos;
}

static int iter_peek_any(struct btree_iter *it, struct bkey **k)
{
	struct bkfs_fs *fs = it->fs;
	*k = NULL;
	if (it->end)
		return 0;
	if (it->node && it->gen == fs->cache_gen) {
		/* fast path: continue within the cached node. Keys may have been
		 * inserted into or deleted from it since (that does not bump
		 * cache_gen): resynchronize idx with pos in both directions */
		struct btree *b = it->node;
		if (it->idx > b->nr_keys)
			it->idx = b->nr_keys;
		while (it->idx && bpos_cmp(btree_node_key(b, it->idx - 1)->p, it->pos) >= 0)
			it->idx--;
		while (it->idx < b->nr_keys && bpos_cmp(btree_node_key(b, it->idx)->p, it->pos) < 0)
			it->idx++;
		if (it->idx < b->nr_keys) {
			*k = btree_node_key(b, it->idx);
			it->pos = (*k)->p; /* advance must work even if the cache changes */
			return 0;
		}
	}
	for (int guard = 0; guard < 1 << 30; guard++) {
		struct btree_path path;
		int ret = path_descend(fs, it->btree_id, it->pos, it->level, &path);
		if (ret == -BKFS_E_NOENT) {
			it->end = true;
			return 0;
		}
		if (ret)
			return ret;
		struct btree *b = path.b[it->level];
		it->node = b;
		it->idx = path.idx[it->level];
		it->gen = fs->cache_gen;
		if (it->idx < b->nr_keys) {
			*k = btree_node_key(b, it->idx);
			it->pos = (*k)->p;
			return 0;
		}
		if (bpos_eq(b->max_key, POS_MAX) || bpos_cmp(b->max_key, it->pos) < 0) {
			it->end = true;
			return 0;
		}
		it->pos = bpos_successor(b->max_key);
	}
	return -BKFS_E_LOOP;
}

int btree_iter_peek(struct btree_iter *it, struct bkey **k)
{
	for (;;) {
		int ret = iter_peek_any(it, k);
		if (ret || !*k || !key_invalid(it->node, *k))
			return ret;
		it->fs->invalid_keys_skipped++;
		*k = NULL;
		btree_iter_advance(it);
	}
}

/* peek leaves pos at the key it returned: step past it - not past the key at
 * idx, which a commit since the peek may have replaced (a deletion in the
 * node shifts the next key under idx, and it would be skipped) */
void btree_iter_advance(struct btree_iter *it)
{
	if (it->end)
		return;
	if (bpos_eq(it->pos, POS_MAX)) {
		it->end = true;
		return;
	}
	it->pos = bpos_successor(it->pos);
	it->idx++; /* a hint: peek resynchronizes */
}

int bkfs_write_super(struct bkfs_fs *fs)
{
	struct blockdev *bds[BKFS_MAX_DEVS];
	fs->sb.seq++;
	fs->sb.key_version = fs->key_version;
	fs->sb.node_seq = fs->node_seq;
	fs->sb.next_inum = fs->next_inum;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		bds[d] = fs->devs[d].bd;
	return sb_write_copies(bds, fs->nr_devs, &fs->sb);
}
