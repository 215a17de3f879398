/* alloc_index.c - in-memory indexes over the bucket array: a bitmap of free
 * buckets, bucket counts per data type, and user buckets listed by how full
 * they are (the fragmentation index copying GC picks its victims from).
 *
 * Every change of a bucket goes through bucket_update(), which calls
 * alloc_index_update() with the old and new state, so the indexes cost O(1)
 * per change. They are derived, never persisted: alloc_index_rebuild() makes
 * them from the alloc keys at open (alloc_load) and after any writer that
 * bypasses bucket_update (a reload, a test poking the array). */
#include "alloc.h"
#include <stdlib.h>
#include <string.h>

#define FRAG_NIL UINT32_MAX

static unsigned frag_class(u64 fragmentation_lru)
{
	u64 c = fragmentation_lru >> (31 - FRAG_CLASS_SHIFT);
	return c >= FRAG_CLASSES ? FRAG_CLASSES - 1 : (unsigned)c;
}

/* In the fragmentation index: user data that copying GC could move. A
 * bucket in a stripe is left out: its contents back the stripe's parity, and
 * moving them would need the stripe rewritten too. */
static bool frag_indexed(const struct bkfs_alloc *a)
{
	return a->data_type == DATA_user && !a->stripe;
}

static u32 bucket_used(const struct bkfs_alloc *a)
{
	return a->dirty_sectors + a->stripe_sectors;
}

static void frag_link(struct dev_index *x, u64 b, unsigned cls)
{
	u32 head = x->frag_head[cls];
	x->frag_prev[b] = FRAG_NIL;
	x->frag_next[b] = head;
	if (head != FRAG_NIL)
		x->frag_prev[head] = b;
	x->frag_head[cls] = b;
	x->frag_count[cls]++;
}

static void frag_unlink(struct dev_index *x, u64 b, unsigned cls)
{
	u32 p = x->frag_prev[b], n = x->frag_next[b];
	if (p != FRAG_NIL)
		x->frag_next[p] = n;
	else
		x->frag_head[cls] = n;
	if (n != FRAG_NIL)
		x->frag_prev[n] = p;
	x->frag_count[cls]--;
}

static bool free_bit_test(const struct dev_index *x, u64 b)
{
	return x->free_bits[b / 64] >> (b % 64) & 1;
}

/* one bucket joins (sign +1) or leaves (-1) every index */
static void index_bucket(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bkfs_alloc *a, int sign)
{
	struct alloc_state *as = ALLOC(fs);
	struct dev_index *x = &as->idx[dev];
	bool open = as->bflags[dev][b] & BUCKET_OPEN;
	if (a->data_type < DATA_NR)
		x->nr_type[a->data_type] += sign;
	if (a->data_type == DATA_free && b >= fs->sb.members[dev].first_bucket) {
		if (sign > 0) {
			x->free_bits[b / 64] |= 1ull << (b % 64);
			as->free_events++;
		} else {
			x->free_bits[b / 64] &= ~(1ull << (b % 64));
		}
		if (open)
			x->nr_open_free += sign;
	}
	if (frag_indexed(a)) {
		unsigned cls = frag_class(a->fragmentation_lru);
		u32 used = bucket_used(a);
		x->frag_sectors += sign * (s64)(used < bucket_sectors(fs) ? bucket_sectors(fs) - used : 0);
		if (sign > 0)
			frag_link(x, b, cls);
		else
			frag_unlink(x, b, cls);
	}
}

void alloc_index_update(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bkfs_alloc *old,
			const struct bkfs_alloc *new)
{
	if (!ALLOC(fs)->idx[dev].free_bits)
		return;
	index_bucket(fs, dev, b, old, -1);
	index_bucket(fs, dev, b, new, 1);
}

void alloc_index_open_changed(struct bkfs_fs *fs, unsigned dev, u64 b, bool open)
{
	struct alloc_state *as = ALLOC(fs);
	struct dev_index *x = &as->idx[dev];
	if (!x->free_bits || !free_bit_test(x, b))
		return;
	x->nr_open_free += open ? 1 : -1;
	if (!open)
		as->free_events++; /* a free bucket handed back: allocatable again */
}

static void index_free_dev(struct dev_index *x)
{
	free(x->free_bits);
	free(x->frag_next);
	free(x->frag_prev);
	free(x->lru);
	memset(x, 0, sizeof(*x));
}

void alloc_index_exit(struct bkfs_fs *fs)
{
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++)
		index_free_dev(&ALLOC(fs)->idx[d]);
}

int alloc_index_rebuild(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		struct dev_index *x = &as->idx[d];
		u64 nb = fs->sb.members[d].nbuckets;
		if (nb >= FRAG_NIL)
			return -BKFS_E_RANGE;
		index_free_dev(x);
		x->free_bits = xcalloc(DIV_ROUND_UP(nb, 64) + 1, sizeof(u64));
		x->frag_next = xcalloc(nb ? nb : 1, sizeof(u32));
		x->frag_prev = xcalloc(nb ? nb : 1, sizeof(u32));
		if (!x->free_bits || !x->frag_next || !x->frag_prev)
			return -BKFS_E_NOMEM;
		for (unsigned c = 0; c < FRAG_CLASSES; c++)
			x->frag_head[c] = FRAG_NIL;
		for (u64 b = 0; b < nb; b++)
			index_bucket(fs, d, b, bucket_get(fs, d, b), 1);
		x->fail_valid = false;
	}
	return 0;
}

u64 alloc_nr_need_gc_gens(struct bkfs_fs *fs)
{
	u64 n = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		n += ALLOC(fs)->idx[d].nr_type[DATA_need_gc_gens];
	return n;
}

u64 alloc_dev_free_buckets(struct bkfs_fs *fs, unsigned dev)
{
	const struct dev_index *x = &ALLOC(fs)->idx[dev];
	return x->nr_type[DATA_free] - MIN(x->nr_open_free, x->nr_type[DATA_free]);
}

/* ---- the free-bucket scan ---- */

/* The first set bit in [from, end), or end. *words counts the words read. */
static u64 next_set_bit(const u64 *bits, u64 from, u64 end, u64 *words)
{
	while (from < end) {
		u64 w = bits[from / 64] >> (from % 64);
		(*words)++;
		if (w) {
			u64 b = from + __builtin_ctzll(w);
			return b < end ? b : end;
		}
		from = (from / 64 + 1) * 64;
	}
	return end;
}

/* Next bucket the free bitmap names at or after from (wrapping once at the
 * end of the device; the lap ends at stop), or UINT64_MAX. */
u64 alloc_index_next_free(struct bkfs_fs *fs, unsigned dev, u64 from, u64 stop, bool *wrapped)
{
	struct dev_index *x = &ALLOC(fs)->idx[dev];
	const struct bkfs_member *m = &fs->sb.members[dev];
	u64 *words = &ALLOC(fs)->stats.words_scanned;
	if (!*wrapped) {
		u64 b = next_set_bit(x->free_bits, from, m->nbuckets, words);
		if (b < m->nbuckets)
			return b;
		*wrapped = true;
		from = m->first_bucket;
	}
	u64 b = next_set_bit(x->free_bits, from, stop, words);
	return b < stop ? b : UINT64_MAX;
}

/* ---- the fragmentation index ---- */

size_t alloc_frag_emptiest(struct bkfs_fs *fs, unsigned dev, u32 max_used, bool (*want)(void *, unsigned, u64),
			   void *arg, u64 *out, size_t nr)
{
	struct dev_index *x = &ALLOC(fs)->idx[dev];
	size_t n = 0;
	if (!x->frag_next)
		return 0;
	for (unsigned c = 0; c < FRAG_CLASSES && n < nr; c++)
		for (u32 b = x->frag_head[c]; b != FRAG_NIL && n < nr; b = x->frag_next[b]) {
			const struct bkfs_alloc *a = bucket_get(fs, dev, b);
			if (bucket_used(a) <= max_used && (!want || want(arg, dev, b)))
				out[n++] = b;
		}
	return n;
}

/* ---- cached buckets, oldest read first ---- */

struct lru_ent {
	u64 time, b;
};

static int lru_cmp(const void *a, const void *b)
{
	const struct lru_ent *x = a, *y = b;
	return x->time < y->time ? -1 : x->time > y->time ? 1 : x->b < y->b ? -1 : x->b > y->b;
}

/* Fill the list of cached buckets to invalidate, oldest read first: one
 * scan serves until the list is used up. */
static int lru_fill(struct bkfs_fs *fs, unsigned dev)
{
	struct alloc_state *as = ALLOC(fs);
	struct dev_index *x = &as->idx[dev];
	const struct bkfs_member *m = &fs->sb.members[dev];
	size_t n = 0, cap = x->nr_type[DATA_cached];
	x->nr_lru = x->lru_pos = 0;
	if (!cap)
		return 0;
	struct lru_ent *e = malloc(cap * sizeof(*e));
	if (!e)
		return -BKFS_E_NOMEM;
	for (u64 b = m->first_bucket; b < m->nbuckets && n < cap; b++) {
		const struct bkfs_alloc *a = bucket_get(fs, dev, b);
		if (a->data_type == DATA_cached && !(as->bflags[dev][b] & BUCKET_OPEN))
			e[n++] = (struct lru_ent){ a->io_time[0], b };
	}
	as->stats.buckets_scanned += m->nbuckets - m->first_bucket;
	qsort(e, n, sizeof(*e), lru_cmp);
	u64 *l = realloc(x->lru, (n ? n : 1) * sizeof(u64));
	if (!l) {
		free(e);
		return -BKFS_E_NOMEM;
	}
	for (size_t i = 0; i < n; i++)
		l[i] = e[i].b;
	free(e);
	x->lru = l;
	x->nr_lru = n;
	return 0;
}

u64 alloc_index_next_cached(struct bkfs_fs *fs, unsigned dev)
{
	struct alloc_state *as = ALLOC(fs);
	struct dev_index *x = &as->idx[dev];
	for (int refilled = 0; refilled < 2; refilled++) {
		while (x->lru_pos < x->nr_lru) {
			u64 b = x->lru[x->lru_pos++];
			if (bucket_get(fs, dev, b)->data_type == DATA_cached && !(as->bflags[dev][b] & BUCKET_OPEN))
				return b;
		}
		if (refilled || lru_fill(fs, dev))
			break;
	}
	return UINT64_MAX;
}
