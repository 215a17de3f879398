/* node.c - in-memory btree nodes, the node cache (hash by node seq + LRU of
 * clean nodes) and node encode/decode. */
#include "btree.h"
#include "../util/darray.h"
#include "node.h"
#include "../format/node_format.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- node memory ----
 * One allocation per node: [header space | key data (cap) | offs array].
 * Reads land directly in it (the header space takes the on-disk header), so a
 * node is validated in place and never copied. b->data points after the
 * header space: free a node's memory only with btree_node_mem_free().
 * Freed buffers are kept in a small pool: the node cache turns over one
 * node per read while a btree is walked, and reusing warm buffers avoids a
 * page fault per 4 KiB of every node read. A read maps the pages it is about
 * to fill in one call (node_mem_map): a fault per page costs ten times as
 * much (~13 us each under virtualisation here), and a checker reads every
 * node. Each buffer remembers how much of it is mapped, so a warm one costs
 * no call. */
#define NODE_HDR sizeof(struct bkfs_node_hdr)

struct node_mem {
	void *p;
	struct node_mapped mapped;
};

static struct {
	pthread_mutex_t lock;
	size_t bytes;
	unsigned nr;
	struct node_mem v[BTREE_NODE_POOL];
} node_pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t node_mem_bytes(u32 raw_bytes)
{
	return raw_bytes + sizeof(u32) * (raw_bytes / sizeof(struct bkey) + 1);
}

static struct node_mem node_mem_get(size_t bytes)
{
	struct node_mem m = { 0 };
	pthread_mutex_lock(&node_pool.lock);
	if (node_pool.bytes == bytes && node_pool.nr)
		m = node_pool.v[--node_pool.nr];
	pthread_mutex_unlock(&node_pool.lock);
	if (!m.p)
		m.p = malloc(bytes);
	return m;
}

static void node_mem_put(struct node_mem m, size_t bytes)
{
	pthread_mutex_lock(&node_pool.lock);
	if (node_pool.bytes != bytes) {
		while (node_pool.nr)
			free(node_pool.v[--node_pool.nr].p);
		node_pool.bytes = bytes;
	}
	if (node_pool.nr < BTREE_NODE_POOL) {
		node_pool.v[node_pool.nr++] = m;
		m.p = NULL;
	}
	pthread_mutex_unlock(&node_pool.lock);
	free(m.p);
}

/* Map [start, start + len) of a node's memory before it is written, unless
 * *mapped (bytes from start known mapped) covers it already. */
static void node_mem_map(u8 *start, u32 *mapped, size_t len)
{
	if (len <= *mapped)
		return;
	mem_populate(start + *mapped, len - *mapped);
	*mapped = len;
}

/* A node struct with its memory, not in the cache. */
static struct btree *node_mem_alloc(struct bkfs_fs *fs)
{
	struct btree *b = xcalloc(1, sizeof(*b));
	if (!b)
		return NULL;
	/* a node written by an older version may use the room the chunk
	 * table takes now: it is read whole, and gets no table until it has
	 * shrunk below cap (node_csum_set) */
	b->raw_bytes = fs->node_bytes;
	b->cap = fs->node_bytes - NODE_HDR - node_chunk_table_max(fs->node_bytes);
	struct node_mem m = node_mem_get(node_mem_bytes(b->raw_bytes));
	if (!m.p) {
		free(b);
		return NULL;
	}
	u8 *raw = m.p;
	b->mapped = m.mapped;
	b->data = raw + NODE_HDR;
	b->offs = (u32 *)(raw + b->raw_bytes);
	return b;
}

void btree_node_mem_free(struct btree *b)
{
	if (!b)
		return;
	if (b->data)
		node_mem_put((struct node_mem){ b->data - NODE_HDR, b->mapped }, node_mem_bytes(b->raw_bytes));
	free(b);
}

static size_t hash_slot(struct bkfs_fs *fs, u64 seq)
{
	return (seq * 0x9E3779B97F4A7C15ull) >> 20 & (fs->hash_size - 1);
}

int btree_cache_init(struct bkfs_fs *fs)
{
	fs->hash_size = 1 << 10; /* grows with the cache (hash_add) */
	fs->hash = xcalloc(fs->hash_size, sizeof(*fs->hash));
	if (!fs->hash)
		return -BKFS_E_NOMEM;
	fs->lru.lru_next = fs->lru.lru_prev = &fs->lru;
	fs->dirty_list.lru_next = fs->dirty_list.lru_prev = &fs->dirty_list;
	if (!fs->max_clean)
		fs->max_clean = MAX((size_t)64, (size_t)(96u << 20) / fs->node_bytes);
	if (!fs->dirty_limit)
		fs->dirty_limit = 64u << 20;
	return 0;
}

static void lru_del(struct btree *b)
{
	if (b->lru_next) {
		b->lru_next->lru_prev = b->lru_prev;
		b->lru_prev->lru_next = b->lru_next;
		b->lru_next = b->lru_prev = NULL;
	}
}

static void lru_add(struct bkfs_fs *fs, struct btree *b)
{
	b->lru_next = fs->lru.lru_next;
	b->lru_prev = &fs->lru;
	fs->lru.lru_next->lru_prev = b;
	fs->lru.lru_next = b;
}

void btree_cache_set_dirty(struct bkfs_fs *fs, struct btree *b)
{
	if (b->dirty)
		return;
	lru_del(b);
	b->dirty = true;
	fs->nr_dirty++;
	b->lru_next = fs->dirty_list.lru_next;
	b->lru_prev = &fs->dirty_list;
	fs->dirty_list.lru_next->lru_prev = b;
	fs->dirty_list.lru_next = b;
}

static void hash_del(struct bkfs_fs *fs, struct btree *b)
{
	struct btree **pp = &fs->hash[hash_slot(fs, b->seq)];
	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = b->hnext;
	b->hnext = NULL;
}

/* Double the table when the cache holds more nodes than it has slots: a
 * checker's cache stays small, and every slot page touched is memory. If
 * the bigger table cannot be had, chains just grow longer. */
static void hash_grow(struct bkfs_fs *fs)
{
	size_t old_size = fs->hash_size;
	struct btree **old = fs->hash, **n = xcalloc(old_size * 2, sizeof(*n));
	if (!n)
		return;
	fs->hash = n;
	fs->hash_size = old_size * 2;
	for (size_t i = 0; i < old_size; i++)
		for (struct btree *b = old[i], *next; b; b = next) {
			next = b->hnext;
			struct btree **pp = &n[hash_slot(fs, b->seq)];
			b->hnext = *pp;
			*pp = b;
		}
	free(old);
}

static void hash_add(struct bkfs_fs *fs, struct btree *b)
{
	if (fs->nr_nodes > fs->hash_size)
		hash_grow(fs);
	struct btree **pp = &fs->hash[hash_slot(fs, b->seq)];
	b->hnext = *pp;
	*pp = b;
}

void btree_cache_exit(struct bkfs_fs *fs)
{
	if (!fs->hash)
		return;
	for (size_t i = 0; i < fs->hash_size; i++) {
		struct btree *b = fs->hash[i], *n;
		for (; b; b = n) {
			n = b->hnext;
			btree_node_mem_free(b);
		}
	}
	free(fs->hash);
	fs->hash = NULL;
}

struct btree *btree_node_alloc(struct bkfs_fs *fs, unsigned btree_id, unsigned level)
{
	struct btree *b = node_mem_alloc(fs);
	if (!b)
		return NULL;
	b->btree_id = btree_id;
	b->level = level;
	b->min_key = POS_MIN;
	b->max_key = POS_MAX;
	b->seq = ++fs->node_seq;
	btree_cache_set_dirty(fs, b);
	fs->nr_nodes++;
	hash_add(fs, b);
	return b;
}

void btree_node_free(struct bkfs_fs *fs, struct btree *b)
{
	if (!b)
		return;
	hash_del(fs, b);
	lru_del(b);
	if (b->dirty)
		fs->nr_dirty--;
	fs->nr_nodes--;
	fs->cache_gen++;
	for (unsigned i = 0; i < BTREE_ID_NR; i++)
		if (fs->roots[i].b == b)
			fs->roots[i].b = NULL;
	btree_node_mem_free(b);
}

struct btree *btree_cache_find(struct bkfs_fs *fs, u64 seq)
{
	for (struct btree *b = fs->hash[hash_slot(fs, seq)]; b; b = b->hnext)
		if (b->seq == seq)
			return b;
	return NULL;
}

void btree_cache_rehash(struct bkfs_fs *fs, struct btree *b, u64 new_seq)
{
	hash_del(fs, b);
	b->seq = new_seq;
	hash_add(fs, b);
}

void btree_cache_touch(struct bkfs_fs *fs, struct btree *b)
{
	if (b->dirty)
		return;
	lru_del(b);
	lru_add(fs, b);
}

void btree_cache_shrink(struct bkfs_fs *fs)
{
	size_t clean = fs->nr_nodes - fs->nr_dirty;
	while (clean > fs->max_clean && fs->lru.lru_prev != &fs->lru) {
		struct btree *b = fs->lru.lru_prev;
		bool is_root = false;
		for (unsigned i = 0; i < BTREE_ID_NR; i++)
			is_root |= fs->roots[i].b == b;
		if (is_root) {
			lru_del(b);
			continue;
		}
		btree_node_free(fs, b);
		clean--;
	}
}

/* ---- key array ---- */

void btree_node_rebuild_offs(struct btree *b)
{
	u32 off = 0;
	for (u32 i = 0; i < b->nr_keys; i++) {
		b->offs[i] = off;
		off += bkey_bytes((struct bkey *)(b->data + off));
	}
	b->used = off;
}

u32 btree_node_lower_bound(struct btree *b, struct bpos p)
{
	return sorted_lower_bound(b->nr_keys, m, bpos_cmp(btree_node_key(b, m)->p, p) < 0);
}

int btree_node_insert_at(struct btree *b, u32 idx, const struct bkey *k)
{
	size_t sz = bkey_bytes(k);
	if (b->used + sz > b->cap)
		return -BKFS_E_NOSPC;
	u32 off = idx < b->nr_keys ? b->offs[idx] : b->used;
	memmove(b->data + off + sz, b->data + off, b->used - off);
	memcpy(b->data + off, k, sz);
	memmove(&b->offs[idx + 1], &b->offs[idx], (b->nr_keys - idx) * sizeof(u32));
	b->offs[idx] = off;
	b->nr_keys++;
	b->used += sz;
	for (u32 i = idx + 1; i < b->nr_keys; i++)
		b->offs[i] += sz;
	return 0;
}

void btree_node_delete_at(struct btree *b, u32 idx)
{
	u32 off = b->offs[idx];
	size_t sz = bkey_bytes(btree_node_key(b, idx));
	memmove(b->data + off, b->data + off + sz, b->used - off - sz);
	memmove(&b->offs[idx], &b->offs[idx + 1], (b->nr_keys - idx - 1) * sizeof(u32));
	b->nr_keys--;
	b->used -= sz;
	for (u32 i = idx; i < b->nr_keys; i++)
		b->offs[i] -= sz;
}

/* ---- encode / decode ---- */

void btree_node_to_buf(struct bkfs_fs *fs, struct btree *b, void *buf)
{
	struct bkfs_node_hdr *h = buf;
	memset(buf, 0, fs->node_bytes);
	h->version = BKFS_FORMAT_VERSION;
	h->magic = sb_node_magic(&fs->sb);
	h->btree_id = b->btree_id;
	h->level = b->level;
	h->nr_keys = b->nr_keys;
	h->used_bytes = sizeof(*h) + b->used;
	h->seq = b->seq;
	h->journal_seq = b->journal_seq;
	h->min_key = b->min_key;
	h->max_key = b->max_key;
	memcpy((u8 *)buf + sizeof(*h), b->data, b->used);
	node_csum_set(buf, fs->node_bytes);
}

/* Validate the node image h (fs->node_bytes) and take its header's fields
 * into b. A leaf key that fails validation does not fail the node: it is
 * counted in b->nr_invalid. */
static int node_hdr_take(struct bkfs_fs *fs, struct btree *b, const struct bkfs_node_hdr *h, struct printbuf *why)
{
	int ret = node_validate_soft(h, fs->node_bytes, sb_node_magic(&fs->sb), &b->nr_invalid, why);
	if (ret)
		return ret;
	if (h->nr_keys > fs->node_bytes / sizeof(struct bkey))
		return -BKFS_E_CORRUPT;
	b->btree_id = h->btree_id;
	b->level = h->level;
	b->min_key = h->min_key;
	b->max_key = h->max_key;
	b->seq = h->seq;
	b->journal_seq = h->journal_seq;
	b->nr_keys = h->nr_keys;
	return 0;
}

/* The node's raw buffer (header space + data) holds a node image: validate
 * it in place, take the header's fields and index its keys. */
static int node_from_raw(struct bkfs_fs *fs, struct btree *b, struct printbuf *why)
{
	int ret = node_hdr_take(fs, b, (const void *)(b->data - NODE_HDR), why);
	if (ret)
		return ret;
	node_mem_map((u8 *)b->offs, &b->mapped.offs, b->nr_keys * sizeof(u32));
	btree_node_rebuild_offs(b);
	return 0;
}

int btree_node_from_buf(struct bkfs_fs *fs, const void *buf, struct btree **out, struct printbuf *why)
{
	struct btree *b = node_mem_alloc(fs);
	if (!b)
		return -BKFS_E_NOMEM;
	memcpy(b->data - NODE_HDR, buf, fs->node_bytes);
	int ret = node_from_raw(fs, b, why);
	if (ret) {
		btree_node_mem_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

/* the device reads made for one node (their counters are updated by the
 * thread that owns the devices' counters) */
struct rd {
	unsigned nr;
	u8 dev[BKFS_MAX_REPLICAS];
	u8 bad; /* copies (bits of the pointer's ptrs) that were read and bad */
};

static void rd_account(struct bkfs_fs *fs, const struct rd *rd)
{
	for (unsigned i = 0; i < rd->nr; i++) {
		struct blockdev *bd = fs->devs[rd->dev[i]].bd;
		bd->nr_reads++;
		bd->bytes_read += fs->node_bytes;
	}
}

/* Read a node image: its first block, then only the blocks its header says
 * are used. Nodes are often half full, and a checker reads every node. The
 * bytes past used_bytes are left as they were: nothing reads them. A header
 * claiming more than a node is read in full and fails validation. */
static size_t node_read_first(struct bkfs_fs *fs)
{
	return MIN((size_t)MAX(fs->block_bytes, 4096u), (size_t)fs->node_bytes);
}

/* the bytes of a node image node_read_used() reads: header, keys and
 * chunk table, in whole blocks */
static size_t node_read_span(struct bkfs_fs *fs, const struct bkfs_node_hdr *h)
{
	if (h->used_bytes > fs->node_bytes)
		return fs->node_bytes;
	size_t n = node_image_bytes(h, fs->node_bytes);
	return MIN(MAX(ROUND_UP(n, node_read_first(fs)), node_read_first(fs)), (size_t)fs->node_bytes);
}

/* Read a node image into raw; *mapped (NULL: a plain buffer): the bytes of
 * raw known mapped (node_mem_map). */
static int node_read_image(struct bkfs_fs *fs, struct blockdev *bd, u8 *raw, u32 *mapped, u64 off)
{
	size_t first = node_read_first(fs);
	if (mapped)
		node_mem_map(raw, mapped, first);
	int ret = bd->read(bd, raw, off, first);
	if (ret)
		return ret;
	size_t want = node_read_span(fs, (const struct bkfs_node_hdr *)raw);
	if (want > first) {
		if (mapped)
			node_mem_map(raw, mapped, want);
		ret = bd->read(bd, raw + first, off + first, want - first);
	}
	return ret;
}

static int node_read_used(struct bkfs_fs *fs, struct blockdev *bd, struct btree *b, u64 off)
{
	return node_read_image(fs, bd, b->data - NODE_HDR, &b->mapped.raw, off);
}

/* Read the node at one replica location and validate it: a node outside the
 * cache. */
static int node_read_at(struct bkfs_fs *fs, const struct bkfs_ptr *ptr, struct btree **out, struct printbuf *why,
			struct rd *rd)
{
	if (ptr->dev >= fs->nr_devs || !fs->devs[ptr->dev].bd)
		return -BKFS_E_IO;
	struct blockdev *bd = fs->devs[ptr->dev].bd;
	u64 off = ptr->offset << SECTOR_SHIFT;
	struct btree *b = node_mem_alloc(fs);
	if (!b)
		return -BKFS_E_NOMEM;
	if (rd->nr < BKFS_MAX_REPLICAS)
		rd->dev[rd->nr++] = ptr->dev;
	/* bd_read() without its counters */
	int ret = off > bd->size || fs->node_bytes > bd->size - off ? -BKFS_E_RANGE
		: node_read_used(fs, bd, b, off);
	if (!ret) {
		if (why)
			pb_reset(why);
		ret = node_from_raw(fs, b, why);
	}
	if (ret) {
		btree_node_mem_free(b);
		return ret;
	}
	*out = b;
	return 0;
}

int btree_node_read_at(struct bkfs_fs *fs, const struct bkfs_ptr *ptr, struct btree **out, struct printbuf *why)
{
	struct rd rd = { 0 };
	int ret = node_read_at(fs, ptr, out, why, &rd);
	rd_account(fs, &rd);
	return ret;
}

static int salvage_keep(void *arg, const struct bkey *k)
{
	struct btree *n = arg;
	if (bkey_validate(k, n->btree_id, 0, NULL))
		n->nr_invalid++;
	return btree_node_insert_at(n, n->nr_keys, k);
}

/* The image of copy i of a node (calloc'ed, zero past what was read), or
 * NULL when it cannot be read. */
static u8 *read_copy_image(struct bkfs_fs *fs, const struct bkfs_ptr *ptr)
{
	if (ptr->dev >= fs->nr_devs || !fs->devs[ptr->dev].bd)
		return NULL;
	struct blockdev *bd = fs->devs[ptr->dev].bd;
	u64 off = ptr->offset << SECTOR_SHIFT;
	if (off > bd->size || fs->node_bytes > bd->size - off)
		return NULL;
	u8 *raw = calloc(1, fs->node_bytes);
	if (raw && node_read_image(fs, bd, raw, NULL, off)) {
		free(raw);
		raw = NULL;
	}
	return raw;
}

/* The images of every readable copy p names, into raw[]: how many. */
static unsigned read_copy_images(struct bkfs_fs *fs, const struct bkfs_btree_ptr *p, u8 **raw)
{
	unsigned nr = 0;
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++)
		if ((raw[nr] = read_copy_image(fs, &p->ptrs[i])))
			nr++;
	return nr;
}

/* Mend image raw[b]'s damaged chunks from the other images (copies are
 * identical byte for byte): the chunks mended. */
static u32 mend_from_others(struct bkfs_fs *fs, u8 **raw, unsigned nr, unsigned b)
{
	u32 mended = 0;
	for (unsigned o = 0; o < nr; o++)
		if (o != b)
			mended += node_chunks_mend(raw[b], raw[o], fs->node_bytes);
	return mended;
}

static void free_images(u8 **raw, unsigned nr)
{
	for (unsigned i = 0; i < nr; i++)
		free(raw[i]);
}

/* Salvage a node image into a fresh node: 0, or why it cannot be. */
static int salvage_image(struct bkfs_fs *fs, unsigned btree_id, u64 seq, const u8 *raw, struct bpos min,
			 struct bpos max, struct btree **out, struct node_salvage *s, struct printbuf *why)
{
	struct btree *n = node_mem_alloc(fs);
	if (!n)
		return -BKFS_E_NOMEM;
	n->btree_id = btree_id;
	n->level = 0;
	n->seq = seq;
	n->min_key = min;
	n->max_key = max;
	int ret = node_salvage(raw, fs->node_bytes, sb_node_magic(&fs->sb), btree_id, seq, min, max, salvage_keep,
			       n, s, why);
	if (ret) {
		btree_node_mem_free(n);
		return ret;
	}
	n->journal_seq = s->journal_seq;
	*out = n;
	return 0;
}

int btree_node_salvage(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, struct bpos min,
		       struct bpos max, struct btree **out, struct node_salvage *s, struct printbuf *why)
{
	const struct bkfs_btree_ptr *p = bkey_val(ptr_key);
	u8 *raw[BKFS_MAX_REPLICAS];
	unsigned nr = read_copy_images(fs, p, raw);
	int ret = -BKFS_E_IO;
	*out = NULL;
	memset(s, 0, sizeof(*s));
	/* each copy in turn, mended from the others; the one keeping most wins */
	for (unsigned b = 0; b < nr && ret != -BKFS_E_NOMEM; b++) {
		struct node_salvage si;
		struct btree *n;
		mend_from_others(fs, raw, nr, b);
		if (why)
			pb_reset(why);
		int r = salvage_image(fs, btree_id, p->seq, raw[b], min, max, &n, &si, why);
		if (r) {
			ret = *out ? 0 : r;
			continue;
		}
		if (*out && si.kept <= s->kept) {
			btree_node_mem_free(n);
			node_salvage_exit(&si);
			continue;
		}
		if (*out) {
			btree_node_mem_free(*out);
			node_salvage_exit(s);
		}
		*out = n;
		*s = si;
		ret = 0;
	}
	free_images(raw, nr);
	return ret;
}

int bkfs_read_ptrs(struct bkfs_fs *fs, const struct bkfs_btree_ptr *p, void *buf, size_t len)
{
	int ret = -BKFS_E_IO;
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		const struct bkfs_ptr *ptr = &p->ptrs[i];
		if (ptr->dev >= fs->nr_devs || !fs->devs[ptr->dev].bd)
			continue;
		ret = bd_read(fs->devs[ptr->dev].bd, buf, ptr->offset << SECTOR_SHIFT, len);
		if (!ret)
			return 0;
	}
	return ret;
}

/* Check that a node read through a pointer is the node the pointer names. */
static int node_matches_ptr(struct btree *b, unsigned btree_id, const struct bkey *k,
			    const struct bkfs_btree_ptr *p, struct printbuf *why)
{
	if (b->btree_id != btree_id || b->level != p->level || b->seq != p->seq) {
		if (why)
			pb_printf(why, "node header (btree %u level %u seq %llu) does not match pointer (btree %u level %u seq %llu)",
				  b->btree_id, b->level, (unsigned long long)b->seq, btree_id, p->level,
				  (unsigned long long)p->seq);
		return -BKFS_E_CORRUPT;
	}
	if (!(p->flags & BTREE_PTR_RANGE_UPDATED) &&
	    (!bpos_eq(b->min_key, p->min_key) || !bpos_eq(b->max_key, k->p))) {
		if (why)
			pb_printf(why, "node range does not match pointer range");
		return -BKFS_E_CORRUPT;
	}
	return 0;
}

/* A repaired pointer overrides the node's range: drop keys outside it. */
static void node_apply_ptr_range(struct btree *b, const struct bkey *k, const struct bkfs_btree_ptr *p)
{
	b->min_key = p->min_key;
	b->max_key = k->p;
	u32 i = 0;
	while (i < b->nr_keys) {
		struct bkey *key = btree_node_key(b, i);
		if (bpos_cmp(key->p, b->min_key) < 0 || bpos_cmp(key->p, b->max_key) > 0)
			btree_node_delete_at(b, i);
		else
			i++;
	}
}

static bool ra_claim(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, struct btree **out, u8 *bad);

/* Read copy i of the node a pointer key names: it validates and is the
 * node the pointer names. A failure on a present device marks it bad in rd. */
static int node_read_copy(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, unsigned i,
			  struct btree **out, struct printbuf *why, struct rd *rd)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	const struct bkfs_ptr *ptr = &p->ptrs[i];
	int ret = node_read_at(fs, ptr, out, why, rd);
	if (!ret && (ret = node_matches_ptr(*out, btree_id, k, p, why)))
		btree_node_mem_free(*out);
	if (ret && ret != -BKFS_E_NOMEM && ptr->dev < fs->nr_devs && fs->devs[ptr->dev].bd)
		rd->bad |= 1u << i;
	return ret;
}

/* With fs->read_all_copies: read every copy after the good one (first),
 * marking the bad ones in rd. */
static int node_verify_copies(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, unsigned first,
			      struct rd *rd)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	for (unsigned i = first + 1; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		struct btree *b;
		int ret = node_read_copy(fs, btree_id, k, i, &b, NULL, rd);
		if (ret == -BKFS_E_NOMEM)
			return ret;
		if (!ret)
			btree_node_mem_free(b);
	}
	return 0;
}

/* Every copy failed: copies are identical byte for byte, so copies damaged
 * in different chunks mend one another (FORMAT.md §7.3). 0 and the node
 * when a mended image validates and matches the pointer. */
int btree_node_read_mended(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, struct btree **out)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	u8 *raw[BKFS_MAX_REPLICAS];
	unsigned nr = read_copy_images(fs, p, raw);
	int ret = -BKFS_E_CSUM;
	for (unsigned b = 0; b < nr && ret && ret != -BKFS_E_NOMEM; b++) {
		if (!mend_from_others(fs, raw, nr, b))
			continue;
		ret = btree_node_from_buf(fs, raw[b], out, NULL);
		if (!ret && (ret = node_matches_ptr(*out, btree_id, k, p, NULL)))
			btree_node_mem_free(*out);
	}
	free_images(raw, nr);
	return ret;
}

/* Read the node a pointer names from the first replica that validates and
 * matches the pointer: a node outside the cache. No side effects on fs (the
 * read-ahead helper runs it too); rd records the device reads and the bad
 * copies met. */
static int node_read_replicas(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, struct btree **out,
			      struct printbuf *why, struct rd *rd)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	struct btree *b = NULL;
	if (!p->nr_ptrs) {
		if (why)
			pb_printf(why, "pointer to an unwritten node that is not in memory");
		return -BKFS_E_CORRUPT;
	}
	int ret = -BKFS_E_IO;
	unsigned i;
	/* try every replica until one validates and matches */
	for (i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		ret = node_read_copy(fs, btree_id, k, i, &b, why, rd);
		if (ret == -BKFS_E_NOMEM)
			return ret;
		if (!ret)
			break;
	}
	/* every copy bad (marked in rd, so they are rewritten from b) */
	if (ret && ret != -BKFS_E_NOMEM && p->nr_ptrs > 1 && !btree_node_read_mended(fs, btree_id, k, &b))
		ret = 0;
	else if (!ret && fs->read_all_copies && (ret = node_verify_copies(fs, btree_id, k, i, rd)))
		btree_node_mem_free(b);
	if (!ret)
		*out = b;
	return ret;
}

void node_copy_bad_to_text(struct printbuf *out, const struct node_copy_bad *bc)
{
	const struct bkfs_ptr *ptr = &bc->ptr.ptrs[bc->copy];
	pb_printf(out, "btree %s level %u seq %llu copy %u (dev %u sector %llu)", btree_id_str(bc->btree_id),
		  bc->ptr.level, (unsigned long long)bc->ptr.seq, bc->copy, ptr->dev,
		  (unsigned long long)ptr->offset);
}

static void node_copy_key(const struct node_copy_bad *bc, struct bkey_buf *kb)
{
	bkey_init(&kb->k, KEY_TYPE_btree_ptr, bc->max_key, sizeof(bc->ptr));
	memcpy(bkey_val(&kb->k), &bc->ptr, sizeof(bc->ptr));
}

/* Write the image of good node b over copy bc->copy, then read it back. */
static int node_copy_overwrite(struct bkfs_fs *fs, const struct node_copy_bad *bc, struct btree *b)
{
	const struct bkfs_ptr *dst = &bc->ptr.ptrs[bc->copy];
	const struct bkfs_node_hdr *h = (const void *)(b->data - NODE_HDR);
	int ret = bd_write(fs->devs[dst->dev].bd, h, dst->offset << SECTOR_SHIFT, node_read_span(fs, h));
	if (ret)
		return ret;
	struct bkey_buf kb;
	struct rd rd = { 0 };
	struct btree *check;
	node_copy_key(bc, &kb);
	ret = node_read_copy(fs, bc->btree_id, &kb.k, bc->copy, &check, NULL, &rd);
	rd_account(fs, &rd);
	if (!ret)
		btree_node_mem_free(check);
	return ret;
}

int btree_node_copy_rewrite(struct bkfs_fs *fs, const struct node_copy_bad *bc)
{
	const struct bkfs_ptr *dst = &bc->ptr.ptrs[bc->copy];
	if (bc->copy >= bc->ptr.nr_ptrs || dst->dev >= fs->nr_devs || !fs->devs[dst->dev].bd ||
	    !fs->hooks || !fs->hooks->ptr_in_btree_bucket || !fs->hooks->ptr_in_btree_bucket(fs, dst))
		return -BKFS_E_CORRUPT;
	struct bkey_buf kb;
	node_copy_key(bc, &kb);
	int ret = -BKFS_E_IO;
	for (unsigned i = 0; i < bc->ptr.nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		struct btree *b;
		struct rd rd = { 0 };
		if (i == bc->copy)
			continue;
		ret = node_read_copy(fs, bc->btree_id, &kb.k, i, &b, NULL, &rd);
		rd_account(fs, &rd);
		if (ret == -BKFS_E_NOMEM)
			return ret;
		if (ret)
			continue;
		ret = node_copy_overwrite(fs, bc, b);
		btree_node_mem_free(b);
		return ret;
	}
	/* no copy is good by itself: perhaps they mend each other */
	struct btree *b;
	if (ret != -BKFS_E_NOMEM && !btree_node_read_mended(fs, bc->btree_id, &kb.k, &b)) {
		ret = node_copy_overwrite(fs, bc, b);
		btree_node_mem_free(b);
	}
	return ret;
}

int btree_node_check_copies(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key,
			    struct node_copies *out)
{
	const struct bkfs_btree_ptr *p = bkey_val(ptr_key);
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < p->nr_ptrs && i < BKFS_MAX_REPLICAS; i++) {
		const struct bkfs_ptr *ptr = &p->ptrs[i];
		if (ptr->dev >= fs->nr_devs || !fs->devs[ptr->dev].bd) {
			out->missing |= 1u << i;
			continue;
		}
		struct btree *b;
		struct rd rd = { 0 };
		int ret = node_read_copy(fs, btree_id, ptr_key, i, &b, NULL, &rd);
		rd_account(fs, &rd);
		out->bytes_read += (u64)rd.nr * fs->node_bytes;
		if (ret == -BKFS_E_NOMEM)
			return ret;
		if (ret) {
			out->bad |= 1u << i;
			continue;
		}
		out->good |= 1u << i;
		btree_node_mem_free(b);
	}
	return 0;
}

int btree_node_check_image(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *ptr_key, const void *image)
{
	struct btree b = { 0 };
	int ret = node_hdr_take(fs, &b, image, NULL);
	return ret ? ret : node_matches_ptr(&b, btree_id, ptr_key, bkey_val(ptr_key), NULL);
}

static void bad_copy_queue(struct bkfs_fs *fs, const struct node_copy_bad *bc)
{
	for (size_t i = 0; i < fs->nr_bad_copies; i++)
		if (fs->bad_copies[i].ptr.seq == bc->ptr.seq && fs->bad_copies[i].copy == bc->copy &&
		    fs->bad_copies[i].btree_id == bc->btree_id)
			return;
	if (fs->nr_bad_copies >= BAD_COPIES_MAX ||
	    darray_room(fs->bad_copies, fs->bad_copies_cap, fs->nr_bad_copies + 1, 16))
		return; /* counted in node_copies_bad; the next check finds it again */
	fs->bad_copies[fs->nr_bad_copies++] = *bc;
}

/* A read met bad copies of a node whose good copy it returned. The mount
 * (any writable non-checker open) rewrites them now and says so on stderr,
 * the only log a server has; the checker reports them by name (fsck.c). */
static void node_copies_bad(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, unsigned mask)
{
	for (unsigned i = 0; i < BKFS_MAX_REPLICAS; i++) {
		if (!(mask >> i & 1))
			continue;
		struct node_copy_bad bc = { .btree_id = btree_id, .copy = i, .max_key = k->p };
		memcpy(&bc.ptr, bkey_val(k), sizeof(bc.ptr));
		fs->node_copies_bad++;
		if (fs->flags & (BKFS_OPEN_RDONLY | BKFS_OPEN_FSCK)) {
			bad_copy_queue(fs, &bc);
			continue;
		}
		struct printbuf pb = PRINTBUF;
		node_copy_bad_to_text(&pb, &bc);
		int ret = btree_node_copy_rewrite(fs, &bc);
		if (!ret)
			fs->node_copies_rewritten++;
		else
			bad_copy_queue(fs, &bc);
		fprintf(stderr, "bkfs: btree_node_copy_bad: %s: %s\n", pb_str(&pb),
			ret ? bkfs_strerror(ret) : "rewritten from a good copy");
		pb_exit(&pb);
	}
}

static int node_read_ptr(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, struct btree **out,
			 struct printbuf *why)
{
	u8 bad = 0;
	if (ra_claim(fs, btree_id, k, out, &bad)) {
		if (why)
			pb_reset(why);
		fs->nodes_read++;
		if (bad)
			node_copies_bad(fs, btree_id, k, bad);
		return 0;
	}
	struct rd rd = { 0 };
	int ret = node_read_replicas(fs, btree_id, k, out, why, &rd);
	rd_account(fs, &rd);
	if (ret == -BKFS_E_NOMEM)
		return ret;
	fs->nodes_read++;
	if (ret)
		fs->node_read_errors++;
	else if (rd.bad)
		node_copies_bad(fs, btree_id, k, rd.bad);
	return ret;
}

static struct btree *cache_lookup(struct bkfs_fs *fs, unsigned btree_id, const struct bkfs_btree_ptr *p)
{
	struct btree *b = btree_cache_find(fs, p->seq);
	if (b && b->btree_id == btree_id && b->level == p->level) {
		btree_cache_touch(fs, b);
		return b;
	}
	return NULL;
}

int btree_node_get(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k,
		   struct btree **out, struct printbuf *why)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	struct btree *b = cache_lookup(fs, btree_id, p);
	if (b) {
		*out = b;
		return 0;
	}
	int ret = node_read_ptr(fs, btree_id, k, &b, why);
	if (ret)
		return ret;
	if (p->flags & BTREE_PTR_RANGE_UPDATED)
		node_apply_ptr_range(b, k, p);
	b->ptr = *p;
	b->has_loc = true;
	b->dirty = false;
	fs->nr_nodes++;
	hash_add(fs, b);
	lru_add(fs, b);
	*out = b;
	return 0;
}

bool btree_node_cached(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, bool *mem, u32 *nr_invalid)
{
	struct btree *b = cache_lookup(fs, btree_id, bkey_val(k));
	if (!b)
		return false;
	*mem = b->dirty || !b->has_loc;
	if (nr_invalid)
		*nr_invalid = b->nr_invalid;
	return true;
}

int btree_node_probe(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, bool *mem,
		     u32 *nr_invalid, struct printbuf *why)
{
	if (btree_node_cached(fs, btree_id, k, mem, nr_invalid))
		return 0;
	struct btree *b;
	int ret = node_read_ptr(fs, btree_id, k, &b, why);
	if (ret)
		return ret;
	if (nr_invalid)
		*nr_invalid = b->nr_invalid;
	btree_node_mem_free(b);
	*mem = false;
	return 0;
}

int btree_node_write(struct bkfs_fs *fs, struct btree *b)
{
	void *buf = malloc(fs->node_bytes);
	int ret = 0, ok = 0;
	if (!buf)
		return -BKFS_E_NOMEM;
	btree_node_to_buf(fs, b, buf);
	for (unsigned i = 0; i < b->ptr.nr_ptrs; i++) {
		const struct bkfs_ptr *ptr = &b->ptr.ptrs[i];
		if (ptr->dev >= fs->nr_devs || !fs->devs[ptr->dev].bd)
			continue;
		int r = bd_write(fs->devs[ptr->dev].bd, buf, ptr->offset << SECTOR_SHIFT, fs->node_bytes);
		if (r)
			ret = r;
		else
			ok++;
	}
	free(buf);
	fs->nodes_written++;
	return ok ? 0 : (ret ? ret : -BKFS_E_IO);
}

/* ---- read-ahead ----
 * One helper thread and a few slots. The caller's thread queues pointers
 * (btree_ra_fill) and takes finished nodes (ra_claim, from the miss path of
 * btree_node_get/_probe); the helper only reads and validates
 * (node_read_replicas, which touches nothing shared but the buffer pool).
 * Slots are matched by the exact pointer key, so a node taken from the helper
 * is the node a read of that pointer gives. A failed read is done again by
 * the caller, which produces the error, its message and the counters. A
 * stream is consumed in order: taking one of its nodes drops its older
 * slots. Everything but the helper's read runs on the caller's thread, under
 * the lock. */
#define RA_PER_STREAM 6
#define PTR_KEY_U64S DIV_ROUND_UP(sizeof(struct bkey) + sizeof(struct bkfs_btree_ptr), 8)

enum { RA_FREE, RA_QUEUED, RA_READING, RA_DONE, RA_FAILED };

struct ra_slot {
	u8 state, btree_id;
	struct btree_ra *owner;  /* NULL once its stream let go */
	u64 ticket;              /* queue order */
	u64 key[PTR_KEY_U64S];   /* the pointer key */
	struct btree *b;         /* DONE */
	struct rd rd;            /* DONE, FAILED: the reads made */
};

struct ra_state {
	struct bkfs_fs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	bool stop;
	unsigned queued;         /* slots QUEUED */
	unsigned waiting;        /* callers waiting on done */
	u64 next_ticket;
	struct ra_slot slot[BTREE_RA_SLOTS];
};

struct btree_ra {
	struct ra_state *st;
	btree_ra_next_fn next;
	void *arg;
	bool end;
	unsigned outstanding;    /* slots owned */
};

static struct bkey *slot_key(struct ra_slot *s) { return (struct bkey *)s->key; }

/* Release a slot that is not READING (lock held). */
static void slot_release(struct ra_state *st, struct ra_slot *s)
{
	if (s->owner)
		s->owner->outstanding--;
	if (s->state == RA_QUEUED)
		st->queued--;
	if (s->state == RA_DONE || s->state == RA_FAILED)
		rd_account(st->fs, &s->rd);
	if (s->state == RA_DONE)
		btree_node_mem_free(s->b);
	s->b = NULL;
	s->owner = NULL;
	s->state = RA_FREE;
}

/* The stream no longer wants the slot (lock held). */
static void slot_drop(struct ra_state *st, struct ra_slot *s)
{
	if (s->state != RA_READING) {
		slot_release(st, s);
	} else if (s->owner) {
		s->owner->outstanding--;
		s->owner = NULL; /* released when the read finishes */
	}
}

/* Sleeping on a condition variable and being woken costs more than reading
 * a node from the page cache, and a checker hands over a node every few
 * microseconds: poll (with the lock dropped) for a short while first. The
 * polled values are written under the lock; the loads are only hints, the
 * caller rechecks under the lock. */
#define RA_SPIN 400

static void ra_spin_until(struct ra_state *st, bool (*done)(struct ra_state *, void *), void *arg)
{
	pthread_mutex_unlock(&st->lock);
	for (unsigned i = 0; i < RA_SPIN && !done(st, arg); i++)
		cpu_relax();
	pthread_mutex_lock(&st->lock);
}

static bool ra_has_work(struct ra_state *st, void *arg)
{
	return __atomic_load_n(&st->queued, __ATOMIC_ACQUIRE) || __atomic_load_n(&st->stop, __ATOMIC_ACQUIRE);
}

static bool ra_slot_read(struct ra_state *st, void *arg)
{
	return __atomic_load_n(&((struct ra_slot *)arg)->state, __ATOMIC_ACQUIRE) != RA_READING;
}

/* Read the oldest queued slot (lock held, dropped during the read); false
 * if none is queued. Both the helper and a caller waiting for a slot run it:
 * a caller that would otherwise wait reads ahead itself. */
static bool ra_read_one(struct ra_state *st)
{
	struct ra_slot *s = NULL;
	for (unsigned i = 0; i < BTREE_RA_SLOTS; i++)
		if (st->slot[i].state == RA_QUEUED && (!s || st->slot[i].ticket < s->ticket))
			s = &st->slot[i];
	if (!s)
		return false;
	st->queued--;
	__atomic_store_n(&s->state, RA_READING, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->lock);
	struct btree *b = NULL;
	struct rd rd = { 0 };
	int ret = node_read_replicas(st->fs, s->btree_id, slot_key(s), &b, NULL, &rd);
	pthread_mutex_lock(&st->lock);
	s->rd = rd;
	s->b = ret ? NULL : b;
	__atomic_store_n(&s->state, ret ? RA_FAILED : RA_DONE, __ATOMIC_RELEASE);
	if (st->waiting)
		pthread_cond_broadcast(&st->done);
	return true;
}

static void *ra_thread(void *arg)
{
	struct ra_state *st = arg;
	pthread_mutex_lock(&st->lock);
	while (!st->stop) {
		if (ra_read_one(st))
			continue;
		ra_spin_until(st, ra_has_work, NULL);
		if (!st->queued && !st->stop)
			pthread_cond_wait(&st->work, &st->lock);
	}
	pthread_mutex_unlock(&st->lock);
	return NULL;
}

int btree_ra_start(struct bkfs_fs *fs)
{
	if (fs->readahead)
		return 0;
	struct ra_state *st = xcalloc(1, sizeof(*st));
	if (!st)
		return -BKFS_E_NOMEM;
	st->fs = fs;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->work, NULL);
	pthread_cond_init(&st->done, NULL);
	if (pthread_create(&st->thread, NULL, ra_thread, st)) {
		pthread_mutex_destroy(&st->lock);
		pthread_cond_destroy(&st->work);
		pthread_cond_destroy(&st->done);
		free(st);
		return -BKFS_E_NOMEM;
	}
	pthread_setname_np(st->thread, "bkfs-readahead");
	fs->readahead = st;
	return 0;
}

void btree_ra_stop(struct bkfs_fs *fs)
{
	struct ra_state *st = fs->readahead;
	if (!st)
		return;
	pthread_mutex_lock(&st->lock);
	st->stop = true;
	pthread_cond_signal(&st->work);
	pthread_mutex_unlock(&st->lock);
	pthread_join(st->thread, NULL);
	for (unsigned i = 0; i < BTREE_RA_SLOTS; i++)
		if (st->slot[i].state != RA_FREE) {
			if (st->slot[i].owner) /* streams must be closed first */
				st->slot[i].owner->st = NULL;
			if (st->slot[i].state == RA_READING) /* never started: the helper stopped */
				st->slot[i].state = RA_QUEUED, st->queued++;
			slot_release(st, &st->slot[i]);
		}
	pthread_mutex_destroy(&st->lock);
	pthread_cond_destroy(&st->work);
	pthread_cond_destroy(&st->done);
	free(st);
	fs->readahead = NULL;
}

struct btree_ra *btree_ra_open(struct bkfs_fs *fs, btree_ra_next_fn next, void *arg)
{
	if (!fs->readahead)
		return NULL;
	struct btree_ra *ra = xcalloc(1, sizeof(*ra));
	if (!ra)
		return NULL;
	ra->st = fs->readahead;
	ra->next = next;
	ra->arg = arg;
	return ra;
}

void btree_ra_close(struct btree_ra *ra)
{
	if (!ra)
		return;
	struct ra_state *st = ra->st;
	if (st) {
		pthread_mutex_lock(&st->lock);
		for (unsigned i = 0; i < BTREE_RA_SLOTS; i++)
			if (st->slot[i].state != RA_FREE && st->slot[i].owner == ra)
				slot_drop(st, &st->slot[i]);
		pthread_mutex_unlock(&st->lock);
	}
	free(ra);
}

void btree_ra_fill(struct btree_ra *ra)
{
	if (!ra || !ra->st || ra->end || ra->outstanding > RA_PER_STREAM / 2)
		return;
	struct ra_state *st = ra->st;
	struct bkfs_fs *fs = st->fs;
	bool queued = false;
	while (ra->outstanding < RA_PER_STREAM) {
		struct ra_slot *s = NULL;
		pthread_mutex_lock(&st->lock);
		for (unsigned i = 0; i < BTREE_RA_SLOTS; i++) {
			struct ra_slot *x = &st->slot[i];
			if (!x->owner && (x->state == RA_DONE || x->state == RA_FAILED))
				slot_release(st, x); /* let go while being read */
			if (x->state == RA_FREE && !s)
				s = x;
		}
		pthread_mutex_unlock(&st->lock);
		if (!s)
			break;
		/* next() may read nodes (through the cache, on this thread) */
		struct bkey_buf kb;
		unsigned id;
		if (!ra->next(ra->arg, &id, &kb)) {
			ra->end = true;
			break;
		}
		const struct bkfs_btree_ptr *p = bkey_val(&kb.k);
		if (kb.k.type != KEY_TYPE_btree_ptr || bkey_val_bytes(&kb.k) != sizeof(*p) || !p->nr_ptrs)
			continue;
		struct btree *c = btree_cache_find(fs, p->seq);
		if (c && c->btree_id == id && c->level == p->level)
			continue; /* cached already */
		pthread_mutex_lock(&st->lock);
		/* s is still free: only this thread takes free slots */
		s->state = RA_QUEUED;
		st->queued++;
		s->btree_id = id;
		s->owner = ra;
		s->ticket = st->next_ticket++;
		memcpy(s->key, &kb.k, bkey_bytes(&kb.k));
		ra->outstanding++;
		queued = true;
		pthread_mutex_unlock(&st->lock);
	}
	if (queued) {
		pthread_mutex_lock(&st->lock);
		pthread_cond_signal(&st->work);
		pthread_mutex_unlock(&st->lock);
	}
}

static bool ra_claim(struct bkfs_fs *fs, unsigned btree_id, const struct bkey *k, struct btree **out, u8 *bad)
{
	struct ra_state *st = fs->readahead;
	if (!st)
		return false;
	bool got = false;
	pthread_mutex_lock(&st->lock);
	struct ra_slot *s = NULL;
	for (unsigned i = 0; i < BTREE_RA_SLOTS && !s; i++) {
		struct ra_slot *x = &st->slot[i];
		if (x->state != RA_FREE && x->owner && x->btree_id == btree_id && k->u64s == slot_key(x)->u64s &&
		    !memcmp(x->key, k, bkey_bytes(k)))
			s = x;
	}
	if (s) {
		struct btree_ra *ra = s->owner;
		/* the stream has moved past its older slots */
		for (unsigned i = 0; i < BTREE_RA_SLOTS; i++) {
			struct ra_slot *x = &st->slot[i];
			if (x != s && x->state != RA_FREE && x->owner == ra && x->ticket < s->ticket)
				slot_drop(st, x);
		}
		if (s->state == RA_QUEUED) {
			/* not started: reading it here is as fast */
			slot_release(st, s);
		} else {
			while (s->state == RA_READING && ra_read_one(st))
				;
			if (s->state == RA_READING)
				ra_spin_until(st, ra_slot_read, s);
			while (s->state == RA_READING) {
				st->waiting++;
				pthread_cond_wait(&st->done, &st->lock);
				st->waiting--;
			}
			if (s->state == RA_DONE) {
				*out = s->b;
				*bad = s->rd.bad;
				s->state = RA_FAILED; /* the node is taken: release only counts */
				got = true;
			}
			slot_release(st, s);
		}
	}
	pthread_mutex_unlock(&st->lock);
	return got;
}
