/* alloc.c - live bucket state mirrored from the alloc btree, the allocator,
 * write points, bucket invalidation and the accounting table. */
#include "alloc.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <stdlib.h>
#include <string.h>

/* A device's btree write points: copy k starts its scan k/2 of the way
 * into the device (DUP copies far apart). */
static void btree_wp_init(struct bkfs_fs *fs, unsigned dev)
{
	const struct bkfs_member *m = &fs->sb.members[dev];
	u64 span = alloc_dev_usable_buckets(fs, dev);
	for (unsigned k = 0; k < BTREE_COPIES_PER_DEV; k++) {
		struct write_point *wp = &ALLOC(fs)->btree_wp[dev][k];
		wp->btree = true;
		wp->cursor = m->first_bucket + span * k / BTREE_COPIES_PER_DEV;
	}
}

int alloc_init(struct bkfs_fs *fs)
{
	struct alloc_state *as = xcalloc(1, sizeof(*as));
	if (!as)
		return -BKFS_E_NOMEM;
	fs->alloc = as;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		u64 nb = fs->sb.members[d].nbuckets;
		as->buckets[d] = xcalloc(nb, sizeof(struct bkfs_alloc));
		as->bflags[d] = xcalloc(nb, 1);
		if (!as->buckets[d] || !as->bflags[d])
			return -BKFS_E_NOMEM;
		/* read end to end below (the index) and written by alloc_load:
		 * map the pages at once, not a fault per page twice over */
		mem_prefault(as->buckets[d], nb * sizeof(struct bkfs_alloc));
		as->cursor[d] = fs->sb.members[d].first_bucket;
		btree_wp_init(fs, d);
	}
	return alloc_index_rebuild(fs);
}

void alloc_exit(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	if (!as)
		return;
	bucket_keys_drop(fs);
	alloc_index_exit(fs);
	for (unsigned d = 0; d < BKFS_MAX_DEVS; d++) {
		free(as->buckets[d]);
		free(as->bflags[d]);
	}
	free(as->dirty);
	free(as->closing);
	free(as->empty_stripes);
	free(as->need_discard);
	free(as->acct);
	free(as);
	fs->alloc = NULL;
}

void bucket_set_dirty(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	struct alloc_state *as = ALLOC(fs);
	if (as->bflags[dev][b] & BUCKET_DIRTY)
		return;
	if (darray_room(as->dirty, as->dirty_cap, as->nr_dirty + 1, 1024))
		return;
	as->bflags[dev][b] |= BUCKET_DIRTY;
	as->dirty[as->nr_dirty++] = (u64)dev << 48 | b;
}

static u32 bucket_used_sectors(const struct bkfs_alloc *a)
{
	return a->data_type == DATA_cached ? a->cached_sectors : a->dirty_sectors + a->stripe_sectors;
}

struct bpos bucket_acct_counters(struct bkfs_fs *fs, unsigned dev, const struct bkfs_alloc *a, s64 v[3])
{
	u32 used = bucket_used_sectors(a);
	u32 frag = used && used < bucket_sectors(fs) ? bucket_sectors(fs) - used : 0;
	v[0] = 1;
	v[1] = used;
	v[2] = frag;
	return acct_pos_dev_data_type(dev, a->data_type);
}

static void acct_bucket(struct bkfs_fs *fs, unsigned dev, const struct bkfs_alloc *a, int sign)
{
	s64 v[3];
	struct bpos pos = bucket_acct_counters(fs, dev, a, v);
	acct_add(fs, pos, sign * v[0], sign * v[1], sign * v[2]);
}

unsigned sb_journal_bucket_type(struct bkfs_fs *fs, unsigned dev, u64 b, u32 *sectors)
{
	const struct bkfs_member *m = &fs->sb.members[dev];
	u64 bs = fs->sb.bucket_size;
	*sectors = 0;
	if (b == m->nbuckets - 1) {
		*sectors = BKFS_SB_SIZE >> SECTOR_SHIFT; /* third copy: start of the last bucket */
		return DATA_sb;
	}
	if (b < m->first_bucket) {
		/* primary and backup copies: everything below the end of the backup */
		u64 end = (BKFS_SB_BACKUP_OFFSET + BKFS_SB_SIZE) >> SECTOR_SHIFT;
		*sectors = b * bs < end ? MIN(bs, end - b * bs) : bs;
		return DATA_sb;
	}
	if (b >= m->journal_bucket_start && b - m->journal_bucket_start < m->journal_nr_buckets) {
		*sectors = bs;
		return DATA_journal;
	}
	return DATA_free;
}

void bucket_update(struct bkfs_fs *fs, unsigned dev, u64 b, const struct bkfs_alloc *new)
{
	struct bkfs_alloc *a = bucket_get(fs, dev, b);
	if (!memcmp(a, new, sizeof(*a)))
		return;
	struct bkfs_alloc old = *a;
	acct_bucket(fs, dev, a, -1);
	*a = *new;
	a->fragmentation_lru = alloc_fragmentation(a, bucket_sectors(fs));
	acct_bucket(fs, dev, a, 1);
	alloc_index_update(fs, dev, b, &old, a);
	if ((u8)(a->gen - a->oldest_gen) >= BUCKET_GC_GEN_SOON)
		ALLOC(fs)->gc_gens_soon = true;
	if (a->data_type == DATA_need_discard && old.data_type != DATA_need_discard)
		discard_note(fs, dev, b);
	bucket_set_dirty(fs, dev, b);
}

/* ---- accounting table ---- */

struct acct_entry *acct_find(struct bkfs_fs *fs, struct bpos pos, bool create)
{
	struct alloc_state *as = ALLOC(fs);
	size_t lo = sorted_lower_bound(as->nr_acct, m, bpos_cmp(as->acct[m].pos, pos) < 0);
	if (lo < as->nr_acct && bpos_eq(as->acct[lo].pos, pos))
		return &as->acct[lo];
	if (!create)
		return NULL;
	if (darray_room(as->acct, as->acct_cap, as->nr_acct + 1, 64))
		return NULL;
	memmove(&as->acct[lo + 1], &as->acct[lo], (as->nr_acct - lo) * sizeof(*as->acct));
	as->nr_acct++;
	memset(&as->acct[lo], 0, sizeof(*as->acct));
	as->acct[lo].pos = pos;
	return &as->acct[lo];
}

void acct_add(struct bkfs_fs *fs, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	if (!v0 && !v1 && !v2)
		return;
	struct acct_entry *e = acct_find(fs, pos, true);
	if (!e)
		return;
	e->v[0] += v0;
	e->v[1] += v1;
	e->v[2] += v2;
	e->dirty = true;
}

void acct_to_text(struct printbuf *out, struct bkfs_fs *fs, struct bpos pos, const s64 v[3])
{
	u64 o = pos.offset;
	switch (pos.inode) {
	case ACCT_nr_inodes:
		pb_printf(out, "nr_inodes: %lld", (long long)v[0]);
		break;
	case ACCT_persistent_reserved:
		pb_printf(out, "reserved (%llu replicas): %lld sectors", (unsigned long long)o, (long long)v[0]);
		break;
	case ACCT_replicas: {
		pb_printf(out, "replicas %s required %u devs [", data_type_str(o >> 56), (unsigned)(o >> 48 & 0xff));
		bool first = true;
		for (unsigned d = 0; d < 32; d++)
			if (o & (1ull << d)) {
				pb_printf(out, first ? "%u" : " %u", d);
				first = false;
			}
		pb_printf(out, "]: %lld sectors", (long long)v[0]);
		break;
	}
	case ACCT_dev_data_type:
		pb_printf(out, "dev %u %s: %lld buckets, %lld sectors, %lld fragmented", (unsigned)(o >> 8),
			  data_type_str(o & 0xff), (long long)v[0], (long long)v[1], (long long)v[2]);
		break;
	case ACCT_btree:
		pb_printf(out, "btree %s: %lld sectors", btree_id_str(o), (long long)v[0]);
		break;
	case ACCT_reflink:
		pb_printf(out, "reflink: %lld indirect extents, %lld sectors", (long long)v[0], (long long)v[1]);
		break;
	default:
		pb_printf(out, "%s %llu: %lld %lld %lld", acct_type_str(pos.inode), (unsigned long long)o,
			  (long long)v[0], (long long)v[1], (long long)v[2]);
	}
	(void)fs;
}

/* ---- member btree bitmap ---- */

void member_bitmap_mark(struct bkfs_fs *fs, unsigned dev, u64 sector, u32 sectors)
{
	struct bkfs_member *m = &fs->sb.members[dev];
	u64 old = m->btree_bitmap;
	for (u64 bit = sector >> m->btree_bitmap_shift;
	     bit <= (sector + sectors - 1) >> m->btree_bitmap_shift && bit < 64; bit++)
		m->btree_bitmap |= 1ull << bit;
	if (old != m->btree_bitmap && fs->journal)
		((struct journal *)fs->journal)->sb_dirty = true;
}

bool member_bitmap_test(const struct bkfs_member *m, u64 sector, u32 sectors)
{
	if (m->btree_bitmap_shift >= 64)
		return false;
	for (u64 bit = sector >> m->btree_bitmap_shift;
	     bit <= (sector + sectors - 1) >> m->btree_bitmap_shift; bit++)
		if (bit >= 64 || !(m->btree_bitmap & (1ull << bit)))
			return false;
	return true;
}

/* ---- allocator ---- */

int bucket_invalidate(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	struct bkfs_alloc a = *bucket_get(fs, dev, b);
	if (a.data_type != DATA_cached || (ALLOC(fs)->bflags[dev][b] & BUCKET_OPEN))
		return -BKFS_E_INVAL;
	/* the cached pointers into it stay behind, now stale */
	acct_add(fs, acct_pos_replicas(DATA_cached, 1, 1u << dev), -(s64)a.cached_sectors, 0, 0);
	a.gen++;
	a.cached_sectors = 0;
	a.flags &= ~ALLOC_NEED_INC_GEN;
	a.io_time[0] = a.io_time[1] = 0;
	a.data_type = alloc_data_type(&a, DATA_free);
	bucket_update(fs, dev, b, &a);
	ALLOC(fs)->nr_invalidated++;
	return 0;
}

/* Buckets the next checkpoint may need on dev: it writes every dirty node
 * again (copy-on-write), each copy that lands here, and the old copies are
 * released only after it. At most the dirty limit, at most the btree as it
 * is on dev (or what is dirty now, if splits made that larger), plus room
 * for partly filled buckets. A checkpoint that runs out of space stops the
 * filesystem, so this is what copying GC and user data may never take. */
static u64 checkpoint_need_buckets(struct bkfs_fs *fs, unsigned dev)
{
	u64 node = fs->node_bytes >> 9, bs = bucket_sectors(fs);
	u64 copies = DIV_ROUND_UP(MAX(fs->sb.metadata_replicas, 1), MAX(fs->nr_devs, 1));
	struct acct_entry *e = acct_find(fs, acct_pos_dev_data_type(dev, DATA_btree), false);
	u64 on_dev = e && e->v[1] > 0 ? (u64)e->v[1] : 0;
	u64 dirty = (u64)fs->nr_dirty * node * copies;
	u64 cap = fs->dirty_limit / 512 * copies;
	return DIV_ROUND_UP(MIN(cap, MAX(on_dev, dirty)), bs) + CHECKPOINT_SLACK_BUCKETS;
}

u64 alloc_dev_usable_buckets(const struct bkfs_fs *fs, unsigned dev)
{
	const struct bkfs_member *m = &fs->sb.members[dev];
	return m->nbuckets - MIN(m->nbuckets, (u64)m->first_bucket);
}

u64 alloc_reserve_buckets(struct bkfs_fs *fs, unsigned dev, enum alloc_watermark wm)
{
	u64 nb = alloc_dev_usable_buckets(fs, dev);
	u64 one = MIN(nb, MAX(8, nb / 64)); /* each level keeps back 1/64, at least 8 */
	if (wm >= ALLOC_WM_btree)
		return 0;
	u64 btree = MIN(nb, MAX(one, checkpoint_need_buckets(fs, dev)));
	if (wm == ALLOC_WM_copygc)
		return btree - MIN(btree, ALLOC(fs)->copygc_grace);
	return MIN(nb, btree + one);
}

u32 alloc_nospc_reasons(struct bkfs_fs *fs)
{
	return ALLOC(fs)->nospc_reasons;
}

/* Take free bucket b if it may be reused now: 1 taken, 0 not. A bucket that
 * held data gets its new gen here; if that gen reaches the gc_gens limit the
 * bucket turns need_gc_gens instead (and leaves the free bitmap). */
static int try_take(struct bkfs_fs *fs, unsigned dev, u64 b, u64 durable, u32 *reasons)
{
	struct alloc_state *as = ALLOC(fs);
	struct bkfs_alloc a = *bucket_get(fs, dev, b);
	as->stats.buckets_scanned++;
	if (a.data_type != DATA_free || (as->bflags[dev][b] & BUCKET_OPEN))
		return 0;
	if (a.journal_seq > durable) {
		as->stats.journal_waits++;
		*reasons |= ALLOC_WAIT_JOURNAL;
		return 0;
	}
	if (a.flags & ALLOC_NEED_INC_GEN) {
		a.gen++;
		a.flags &= ~ALLOC_NEED_INC_GEN;
		a.data_type = alloc_data_type(&a, DATA_free);
		bucket_update(fs, dev, b, &a);
		if (a.data_type != DATA_free) {
			as->stats.gen_limit_hits++;
			*reasons |= ALLOC_WAIT_GC_GENS;
			return 0;
		}
	}
	return 1;
}

/* One lap of the free bitmap from cursor: a free bucket, or UINT64_MAX. */
static u64 scan_free(struct bkfs_fs *fs, unsigned dev, u64 cursor, u64 durable, u32 *reasons)
{
	const struct bkfs_member *m = &fs->sb.members[dev];
	u64 start = MAX(cursor, (u64)m->first_bucket);
	bool wrapped = false;
	if (start >= m->nbuckets)
		start = m->first_bucket;
	for (u64 b = alloc_index_next_free(fs, dev, start, start, &wrapped); b != UINT64_MAX;
	     b = alloc_index_next_free(fs, dev, b + 1, start, &wrapped))
		if (try_take(fs, dev, b, durable, reasons))
			return b;
	return UINT64_MAX;
}

/* No free bucket: invalidate cached-only buckets, oldest read first, until
 * one comes out free (one whose new gen hits the limit is counted and
 * passed over). */
static u64 take_cached(struct bkfs_fs *fs, unsigned dev, u32 *reasons)
{
	u64 b;
	while ((b = alloc_index_next_cached(fs, dev)) != UINT64_MAX) {
		if (bucket_invalidate(fs, dev, b))
			continue;
		if (bucket_get(fs, dev, b)->data_type == DATA_free)
			return b;
		ALLOC(fs)->stats.gen_limit_hits++;
		*reasons |= ALLOC_WAIT_GC_GENS;
	}
	return UINT64_MAX;
}

static int alloc_fail(struct bkfs_fs *fs, u32 reasons)
{
	if (alloc_nr_need_gc_gens(fs))
		reasons |= ALLOC_WAIT_GC_GENS;
	ALLOC(fs)->nospc_reasons = reasons;
	return -BKFS_E_NOSPC;
}

/* A lap of the free bitmap, unless the last lap found nothing and nothing
 * could have changed since (no bucket freed, same durable seq). */
static u64 scan_free_once(struct bkfs_fs *fs, unsigned dev, u64 cursor, u64 durable, u32 *reasons)
{
	struct alloc_state *as = ALLOC(fs);
	struct dev_index *x = &as->idx[dev];
	if (x->fail_valid && x->fail_events == as->free_events && x->fail_durable == durable) {
		as->stats.fast_fails++;
		*reasons |= x->fail_reasons;
		return UINT64_MAX;
	}
	u32 r = 0;
	u64 b = scan_free(fs, dev, cursor, durable, &r);
	x->fail_valid = b == UINT64_MAX;
	x->fail_events = as->free_events;
	x->fail_durable = durable;
	x->fail_reasons = r;
	*reasons |= r;
	return b;
}

/* alloc_bucket() scanning from *cursor (advanced past the bucket taken) */
static int alloc_bucket_at(struct bkfs_fs *fs, unsigned dev, enum alloc_watermark wm, u64 *cursor, u64 *out)
{
	struct alloc_state *as = ALLOC(fs);
	u64 durable = journal_durable_seq(fs);
	u64 reserve = alloc_reserve_buckets(fs, dev, wm);
	/* buckets waiting only for their discard (none if nobody runs the
	 * mount's discard work, e.g. after a crash): discard them now */
	if (alloc_dev_free_buckets(fs, dev) <= reserve && as->idx[dev].nr_type[DATA_need_discard])
		alloc_discard_buckets(fs, UINT32_MAX, NULL);
	u64 free = alloc_dev_free_buckets(fs, dev), cached = as->idx[dev].nr_type[DATA_cached];
	u32 reasons = 0;
	as->stats.calls++;
	/* cached buckets count as free (invalidating one is cheap), and go
	 * first once only reserved free buckets are left */
	if (free + cached <= reserve)
		return alloc_fail(fs, free + cached ? ALLOC_WAIT_RESERVE : 0);
	u64 b = UINT64_MAX;
	if (free > reserve)
		b = scan_free_once(fs, dev, *cursor, durable, &reasons);
	if (b == UINT64_MAX)
		b = take_cached(fs, dev, &reasons);
	if (b == UINT64_MAX)
		return alloc_fail(fs, reasons | (free <= reserve ? ALLOC_WAIT_RESERVE : 0));
	as->bflags[dev][b] = (as->bflags[dev][b] & ~BUCKET_MOVED) | BUCKET_OPEN;
	if (wm == ALLOC_WM_copygc)
		as->bflags[dev][b] |= BUCKET_MOVED;
	alloc_index_open_changed(fs, dev, b, true);
	*cursor = b + 1;
	*out = b;
	return 0;
}

int alloc_bucket(struct bkfs_fs *fs, unsigned dev, enum alloc_watermark wm, u64 *out)
{
	return alloc_bucket_at(fs, dev, wm, &ALLOC(fs)->cursor[dev], out);
}

/* A bucket is reused only after a gen increment (ALLOC_NEED_INC_GEN, done by
 * alloc_bucket), never when it is closed or emptied: pointers already handed
 * out of it must stay valid until their transaction commits. */
static void close_bucket(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	u8 *f = &ALLOC(fs)->bflags[dev][b];
	if (!(*f & BUCKET_OPEN))
		return;
	*f &= ~BUCKET_OPEN;
	alloc_index_open_changed(fs, dev, b, false);
}

/* A data bucket leaves its write point: keep it open until the next commit. */
static void close_data_bucket(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	struct alloc_state *as = ALLOC(fs);
	if (darray_room(as->closing, as->closing_cap, as->nr_closing + 1, 16))
		return; /* stays open (unusable) until the next mount */
	as->closing[as->nr_closing++] = (u64)dev << 48 | b;
}

void alloc_bucket_put(struct bkfs_fs *fs, unsigned dev, u64 b)
{
	close_data_bucket(fs, dev, b);
}

void alloc_note_empty_stripe(struct bkfs_fs *fs, u32 idx)
{
	struct alloc_state *as = ALLOC(fs);
	for (size_t i = 0; i < as->nr_empty_stripes; i++)
		if (as->empty_stripes[i] == idx)
			return;
	if (darray_room(as->empty_stripes, as->empty_stripes_cap, as->nr_empty_stripes + 1, 8))
		return; /* the stripe stays, empty: the next bkfs erasure-code run deletes it */
	as->empty_stripes[as->nr_empty_stripes++] = idx;
}

int alloc_delete_empty_stripes(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	int ret = 0;
	while (!ret && as && as->nr_empty_stripes) {
		u32 idx = as->empty_stripes[--as->nr_empty_stripes];
		struct bkey_buf kb;
		if (btree_lookup(fs, BTREE_ID_stripes, POS(0, idx), &kb) || kb.k.type != KEY_TYPE_stripe)
			continue;
		if (!stripe_data_empty(bkey_val(&kb.k)))
			continue;
		struct trans t;
		trans_init(&t, fs);
		ret = trans_delete(&t, BTREE_ID_stripes, kb.k.p);
		if (!ret)
			ret = trans_commit(&t, 0);
		trans_exit(&t);
	}
	return ret;
}

static int engine_commit_done(struct bkfs_fs *fs)
{
	if (fs->flags & BKFS_OPEN_FSCK)
		return 0; /* the checker changes only what it reports */
	return alloc_delete_empty_stripes(fs);
}

/* After a commit applied its keys: buckets left by write points are closed. */
static void release_closing(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	while (as->nr_closing) {
		u64 v = as->closing[--as->nr_closing];
		close_bucket(fs, v >> 48, v & ((1ull << 48) - 1));
	}
}

void alloc_close_write_points(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (as->data_wp[d].open)
			close_data_bucket(fs, d, as->data_wp[d].bucket);
		as->data_wp[d].open = false;
		if (as->move_wp[d].open)
			close_data_bucket(fs, d, as->move_wp[d].bucket);
		as->move_wp[d].open = false;
		for (unsigned k = 0; k < BTREE_COPIES_PER_DEV; k++) {
			if (as->btree_wp[d][k].open)
				close_bucket(fs, d, as->btree_wp[d][k].bucket);
			as->btree_wp[d][k].open = false;
		}
	}
}

u64 alloc_free_buckets(struct bkfs_fs *fs, unsigned dev)
{
	struct acct_entry *e = acct_find(fs, acct_pos_dev_data_type(dev, DATA_free), false);
	return e && e->v[0] > 0 ? (u64)e->v[0] : 0;
}

void alloc_space_info(struct bkfs_fs *fs, struct alloc_space_info *si)
{
	struct alloc_state *as = ALLOC(fs);
	memset(si, 0, sizeof(*si));
	si->bucket_sectors = bucket_sectors(fs);
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		const struct bkfs_member *m = &fs->sb.members[d];
		const struct dev_index *x = &as->idx[d];
		if (!fs->devs[d].bd || m->state)
			continue;
		u64 free = alloc_dev_free_buckets(fs, d), frag = x->frag_sectors > 0 ? x->frag_sectors : 0;
		/* the open write points' buckets are still being filled: their
		 * unused space is free space, not fragmentation */
		const struct write_point *wps[2] = { &as->data_wp[d], &as->move_wp[d] };
		for (unsigned i = 0; i < 2; i++) {
			const struct bkfs_alloc *a = wps[i]->open ? bucket_get(fs, d, wps[i]->bucket) : NULL;
			if (a && a->data_type == DATA_user && !a->stripe) {
				u32 unused = bucket_sectors(fs) - MIN(bucket_sectors(fs), a->dirty_sectors + a->stripe_sectors);
				frag -= MIN(frag, (u64)unused);
			}
		}
		si->total_buckets += alloc_dev_usable_buckets(fs, d);
		si->free_buckets += free;
		si->need_gc_gens += x->nr_type[DATA_need_gc_gens];
		si->need_discard += x->nr_type[DATA_need_discard];
		si->fragmented_sectors += frag;
		for (unsigned wm = 0; wm < ALLOC_WM_NR; wm++)
			si->reserved[wm] += alloc_reserve_buckets(fs, d, wm);
		u64 usable = free + x->nr_type[DATA_cached] + x->nr_type[DATA_need_gc_gens] +
			     x->nr_type[DATA_need_discard];
		u64 res = alloc_reserve_buckets(fs, d, ALLOC_WM_normal);
		si->avail_sectors += (usable > res ? usable - res : 0) * bucket_sectors(fs) + frag;
	}
}

/* Pick up to nr distinct present devices not in exclude (a mask), most
 * free space first. */
static unsigned pick_devs(struct bkfs_fs *fs, unsigned nr, u32 exclude, unsigned *devs)
{
	unsigned n = 0;
	bool used[BKFS_MAX_DEVS] = { 0 };
	for (unsigned d = 0; d < BKFS_MAX_DEVS && d < 32; d++)
		used[d] = exclude >> d & 1;
	while (n < nr) {
		int best = -1;
		u64 best_free = 0;
		for (unsigned i = 0; i < fs->nr_devs; i++) {
			unsigned d = (i + ALLOC(fs)->rr) % fs->nr_devs;
			if (used[d] || !fs->devs[d].bd || fs->sb.members[d].state)
				continue;
			u64 f = alloc_free_buckets(fs, d) + 1;
			if (best < 0 || f > best_free) {
				best = d;
				best_free = f;
			}
		}
		if (best < 0)
			break;
		used[best] = true;
		devs[n++] = best;
	}
	return n;
}

static int wp_get(struct bkfs_fs *fs, struct write_point *wp, unsigned dev, enum alloc_watermark wm, u32 need)
{
	if (wp->open && wp->fill + need <= bucket_sectors(fs))
		return 0;
	if (wp->open) {
		if (!wp->btree)
			close_data_bucket(fs, dev, wp->bucket);
		else
			close_bucket(fs, dev, wp->bucket);
	}
	wp->open = false;
	int ret = alloc_bucket_at(fs, dev, wm, wp->cursor ? &wp->cursor : &ALLOC(fs)->cursor[dev], &wp->bucket);
	if (ret)
		return ret;
	wp->fill = 0;
	wp->open = true;
	return 0;
}

int alloc_data_space(struct bkfs_fs *fs, unsigned nr, u32 want, struct bkfs_ptr *ptrs, u32 *got)
{
	return alloc_data_space_wm(fs, ALLOC_WM_normal, 0, nr, want, 1, ptrs, got);
}

static struct write_point *data_wp(struct bkfs_fs *fs, enum alloc_watermark wm, unsigned dev)
{
	return wm == ALLOC_WM_copygc ? &ALLOC(fs)->move_wp[dev] : &ALLOC(fs)->data_wp[dev];
}

int alloc_data_space_wm(struct bkfs_fs *fs, enum alloc_watermark wm, u32 exclude_devs, unsigned nr, u32 want,
			u32 min, struct bkfs_ptr *ptrs, u32 *got)
{
	struct alloc_state *as = ALLOC(fs);
	unsigned devs[BKFS_MAX_DEVS];
	unsigned n = pick_devs(fs, MIN(nr, (unsigned)BKFS_MAX_REPLICAS), exclude_devs, devs);
	u32 need = MAX(1u, MIN(MIN(want, min), bucket_sectors(fs)));
	if (!n)
		return -BKFS_E_DEGRADED;
	u32 len = want;
	for (unsigned i = 0; i < n; i++) {
		struct write_point *wp = data_wp(fs, wm, devs[i]);
		if (!wp->open || wp->fill + need > bucket_sectors(fs)) {
			int ret = wp_get(fs, wp, devs[i], wm, need);
			if (ret)
				return ret;
		}
		len = MIN(len, bucket_sectors(fs) - wp->fill);
	}
	for (unsigned i = 0; i < n; i++) {
		struct write_point *wp = data_wp(fs, wm, devs[i]);
		ptrs[i] = (struct bkfs_ptr){
			.offset = wp->bucket * bucket_sectors(fs) + wp->fill,
			.dev = devs[i],
			.gen = bucket_get(fs, devs[i], wp->bucket)->gen,
		};
		wp->fill += len;
	}
	as->rr++;
	*got = len;
	return n;
}

/* ---- node space (hooks) ---- */

/* The devices of a node's copies: distinct devices first; when fewer are
 * present than copies wanted, the same devices again (DUP), each at most
 * BTREE_COPIES_PER_DEV times. *copy[i]: which of its device's btree write
 * points copy i uses. */
static unsigned pick_node_devs(struct bkfs_fs *fs, unsigned *devs, unsigned *copy)
{
	unsigned want = MIN((unsigned)fs->sb.metadata_replicas, (unsigned)BKFS_MAX_REPLICAS);
	unsigned distinct = pick_devs(fs, want, 0, devs), n = distinct;
	for (unsigned i = 0; i < distinct; i++)
		copy[i] = 0;
	for (unsigned k = 1; k < BTREE_COPIES_PER_DEV; k++)
		for (unsigned i = 0; i < distinct && n < want; i++) {
			devs[n] = devs[i];
			copy[n++] = k;
		}
	return n;
}

static int engine_node_alloc(struct bkfs_fs *fs, unsigned btree_id, struct bkfs_btree_ptr *ptr)
{
	struct alloc_state *as = ALLOC(fs);
	unsigned devs[BKFS_MAX_DEVS], copy[BKFS_MAX_DEVS];
	u32 ns = fs->sb.btree_node_size;
	unsigned n = pick_node_devs(fs, devs, copy);
	if (!n)
		return -BKFS_E_DEGRADED;
	for (unsigned i = 0; i < n; i++) {
		struct write_point *wp = &as->btree_wp[devs[i]][copy[i]];
		int ret = wp_get(fs, wp, devs[i], ALLOC_WM_btree, ns);
		if (ret)
			return ret;
		ptr->ptrs[i] = (struct bkfs_ptr){
			.offset = wp->bucket * bucket_sectors(fs) + wp->fill,
			.dev = devs[i],
			.gen = bucket_get(fs, devs[i], wp->bucket)->gen,
		};
		wp->fill += ns;
		member_bitmap_mark(fs, devs[i], ptr->ptrs[i].offset, ns);
	}
	ptr->nr_ptrs = n;
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(*ptr));
	memcpy(bkey_val(&kb.k), ptr, sizeof(*ptr));
	struct mark_ctx c = { .ops = &normal_mark_ops, .fs = fs };
	return bkfs_mark_key(&c, btree_id, 1, &kb.k, 1);
}

static void engine_node_free(struct bkfs_fs *fs, unsigned btree_id, const struct bkfs_btree_ptr *ptr)
{
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(*ptr));
	memcpy(bkey_val(&kb.k), ptr, sizeof(*ptr));
	struct mark_ctx c = { .ops = &normal_mark_ops, .fs = fs };
	bkfs_mark_key(&c, btree_id, 1, &kb.k, -1);
}

static bool engine_ptr_in_btree_bucket(struct bkfs_fs *fs, const struct bkfs_ptr *p)
{
	if (p->dev >= fs->nr_devs || !ALLOC(fs)->buckets[p->dev] || ptr_bucket(fs, p) >= fs->sb.members[p->dev].nbuckets ||
	    ptr_bucket(fs, p) < fs->sb.members[p->dev].first_bucket)
		return false;
	const struct bkfs_alloc *a = bucket_get(fs, p->dev, ptr_bucket(fs, p));
	return a->gen == p->gen && a->data_type == DATA_btree;
}

/* ---- derived updates ---- */

static void alloc_key_build(struct bkfs_fs *fs, unsigned dev, u64 b, struct bkey_buf *kb)
{
	bkey_init(&kb->k, KEY_TYPE_alloc, POS(dev, b), sizeof(struct bkfs_alloc));
	memcpy(bkey_val(&kb->k), bucket_get(fs, dev, b), sizeof(struct bkfs_alloc));
}

static void acct_key_build(struct acct_entry *e, struct bkey_buf *kb)
{
	bkey_init(&kb->k, KEY_TYPE_accounting, e->pos, sizeof(struct bkfs_accounting));
	memcpy(bkey_val(&kb->k), e->v, sizeof(e->v));
}

/* Emit every dirty alloc key and accounting counter, via emit(). */
static int flush_derived(struct bkfs_fs *fs, int (*emit)(void *, unsigned, const struct bkey *), void *arg)
{
	struct alloc_state *as = ALLOC(fs);
	struct bkey_buf kb;
	int ret, n = 0;
	while (as->nr_dirty) {
		u64 v = as->dirty[--as->nr_dirty];
		unsigned dev = v >> 48;
		u64 b = v & ((1ull << 48) - 1);
		as->bflags[dev][b] &= ~BUCKET_DIRTY;
		alloc_key_build(fs, dev, b, &kb);
		if ((ret = emit(arg, BTREE_ID_alloc, &kb.k)))
			return ret;
		n++;
	}
	for (size_t i = 0; i < as->nr_acct; i++) {
		if (!as->acct[i].dirty)
			continue;
		as->acct[i].dirty = false;
		acct_key_build(&as->acct[i], &kb);
		if ((ret = emit(arg, BTREE_ID_accounting, &kb.k)))
			return ret;
		n++;
	}
	return n;
}

static int emit_trans(void *arg, unsigned id, const struct bkey *k)
{
	return trans_update_notrigger(arg, id, k);
}

static int emit_btree(void *arg, unsigned id, const struct bkey *k)
{
	struct bkfs_fs *fs = arg;
	struct bkey_buf kb;
	memcpy(&kb, k, bkey_bytes(k));
	kb.k.version = ++fs->key_version;
	return btree_insert_key(fs, id, &kb.k);
}

static int engine_commit_prepare(struct trans *t)
{
	release_closing(t->fs);
	int ret = flush_derived(t->fs, emit_trans, t);
	return ret < 0 ? ret : 0;
}

static int engine_checkpoint_prepare(struct bkfs_fs *fs)
{
	return flush_derived(fs, emit_btree, fs);
}

int alloc_load(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	struct btree_iter it;
	struct bkey *k;
	u64 skipped = fs->invalid_keys_skipped;
	int ret;
	for_each_btree_key(it, fs, BTREE_ID_alloc, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_alloc || k->p.inode >= fs->nr_devs ||
		    k->p.offset >= fs->sb.members[k->p.inode].nbuckets ||
		    bkey_val_bytes(k) < sizeof(struct bkfs_alloc))
			continue;
		memcpy(&as->buckets[k->p.inode][k->p.offset], bkey_val(k), sizeof(struct bkfs_alloc));
	}
	if (ret)
		return ret;
	for_each_btree_key(it, fs, BTREE_ID_accounting, POS_MIN, k, ret) {
		if (k->type != KEY_TYPE_accounting || bkey_val_bytes(k) < sizeof(struct bkfs_accounting))
			continue;
		struct acct_entry *e = acct_find(fs, k->p, true);
		if (!e)
			return -BKFS_E_NOMEM;
		memcpy(e->v, bkey_val(k), sizeof(e->v));
	}
	discard_rebuild(fs);
	/* an alloc or accounting key that failed validation: the state read is
	 * incomplete (a bucket in use could look free) */
	if (!ret && fs->invalid_keys_skipped != skipped)
		ret = -BKFS_E_CORRUPT;
	if (!ret)
		ret = alloc_index_rebuild(fs);
	return ret;
}

int alloc_reload(struct bkfs_fs *fs)
{
	struct alloc_state *as = ALLOC(fs);
	bucket_keys_drop(fs);
	for (unsigned d = 0; d < fs->nr_devs; d++)
		memset(as->buckets[d], 0, fs->sb.members[d].nbuckets * sizeof(struct bkfs_alloc));
	as->nr_acct = 0;
	return alloc_load(fs);
}

/* Every hook the btree layer calls, in this one table: triggers from
 * alloc/triggers.c, commit/checkpoint/node-space hooks from this file,
 * journal hooks from journal/journal.c; fs/super.c installs it at open. */
const struct bkfs_hooks bkfs_engine_hooks = {
	.trigger = engine_trigger,
	.commit_prepare = engine_commit_prepare,
	.commit_done = engine_commit_done,
	.journal_commit = journal_commit_trans,
	.journal_cur_seq = journal_cur_seq,
	.node_alloc = engine_node_alloc,
	.node_free = engine_node_free,
	.checkpoint_prepare = engine_checkpoint_prepare,
	.checkpoint_commit = journal_write_checkpoint,
	.ptr_in_btree_bucket = engine_ptr_in_btree_bucket,
};
