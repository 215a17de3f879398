/* move.c - copying GC (see move.h).
 *
 * Victims come from the fragmentation index (alloc_index.c), emptiest first.
 * Buckets in a stripe are never victims (the index leaves them out): their
 * contents are a block of the stripe, the parity covers them as they are, and
 * moving the data would need the stripe rewritten or dropped as well; the
 * stripe is deleted when its blocks empty through overwrites, and its buckets
 * are reused then.
 *
 * The keys with a pointer into a victim come from backpointers kept in
 * memory (alloc/bucket_keys.c), not from a btree on disk: one scan of the
 * extents and reflink btrees builds them the first time the mover runs, and
 * the trigger keeps them exact from then on, so a step costs in proportion
 * to the data it moves. (It used to scan both btrees whole at every step:
 * at 80 % full, 256 MiB, that scan was most of the mover's time.) Chosen over
 * a persistent backpointers btree: nothing changes on disk, no format
 * version, nothing more for fsck to check or for every write to journal; the
 * price is one scan per mount that needs copying GC and about 24 bytes per
 * pointer while mounted. The index is a hint: a key it names is looked up
 * again, and a pointer moves only if it still points into the victim with
 * the victim's gen; a victim left holding data with no key listed makes the
 * mover drop the index and rebuild it (count_emptied).
 *
 * Each such key is looked up again by position and moved by itself: its
 * whole checksummed region is read (verified against the checksum it has),
 * written once to new space for each dirty pointer into a victim, and the
 * key is rewritten with those pointers replaced. When every pointer of the
 * key moves, only its live part is written, with a new checksum (the extent
 * narrowed: dead parts of trimmed extents are not carried along); otherwise
 * the whole region is copied and the checksum, its region and the key's
 * offset into it stay as they are, so the pointers that stay still match.
 * Cached pointers into victims are dropped. Other pointers (other replicas)
 * stay as they are, and the new copies go to devices the key has no copy
 * on. An extent whose copies all move is written in pieces where the open
 * bucket's tail is too short for it (move_pieces), so every bucket the
 * mover leaves is full. */
#include "move.h"
#include "extent.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include <stdlib.h>
#include <string.h>

struct victim {
	u64 id; /* dev << 48 | bucket */
	u32 used;
	u8 gen;
};

struct key_ref {
	unsigned btree_id;
	struct bpos p;
};

struct mover {
	struct bkfs_fs *fs;
	struct victim *v;
	size_t nr_v;
	struct key_ref *keys;
	size_t nr_keys, keys_cap;
	struct copygc_stats *st;
};

#define VICTIM_BUCKET_MASK ((1ull << 48) - 1)

static u64 victim_id(unsigned dev, u64 b)
{
	return (u64)dev << 48 | b;
}

static int victim_cmp_id(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	return x->id < y->id ? -1 : x->id > y->id;
}

static int victim_cmp_used(const void *a, const void *b)
{
	const struct victim *x = a, *y = b;
	return x->used < y->used ? -1 : x->used > y->used ? 1 : victim_cmp_id(a, b);
}

/* a pointer into a victim, of the victim's current life (gen) */
static bool is_victim(struct mover *m, const struct bkfs_ptr *p)
{
	if (p->dev >= m->fs->nr_devs)
		return false;
	struct victim key = { .id = victim_id(p->dev, ptr_bucket(m->fs, p)) };
	struct victim *v = bsearch(&key, m->v, m->nr_v, sizeof(*m->v), victim_cmp_id);
	return v && v->gen == p->gen;
}

/* A bucket copying GC may empty: not being filled (open: a write point's,
 * or one a write point left whose space may be in an uncommitted
 * transaction). A bucket the mover filled is one only once it is at most
 * half used: the mover leaves a bucket only when the next extent does not
 * fit, so moving extents from buckets at most half used leaves buckets more
 * than half used, and no data is moved round and round. */
static bool victim_ok(void *arg, unsigned dev, u64 b)
{
	struct bkfs_fs *fs = arg;
	const struct alloc_state *as = ALLOC(fs);
	const struct bkfs_alloc *a = bucket_get(fs, dev, b);
	if (as->bflags[dev][b] & BUCKET_OPEN)
		return false;
	/* what the mover wrote is cold: moved again only once half empty,
	 * unless writes are about to run out of space */
	if ((as->bflags[dev][b] & BUCKET_MOVED) && a->dirty_sectors + a->stripe_sectors > bucket_sectors(fs) / 2 &&
	    alloc_dev_free_buckets(fs, dev) > alloc_reserve_buckets(fs, dev, ALLOC_WM_normal) + 4)
		return false;
	return !(as->data_wp[dev].open && as->data_wp[dev].bucket == b) &&
	       !(as->move_wp[dev].open && as->move_wp[dev].bucket == b);
}

static bool dev_usable(struct bkfs_fs *fs, unsigned d)
{
	return fs->devs[d].bd && !fs->sb.members[d].state;
}

/* writes are about to stop on some device: only reserved buckets are left */
static bool space_short(struct bkfs_fs *fs)
{
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (dev_usable(fs, d) &&
		    alloc_dev_free_buckets(fs, d) <= alloc_reserve_buckets(fs, d, ALLOC_WM_normal) + 4)
			return true;
	return false;
}

/* Buckets with at least 1/8 of their space unused are worth moving; when
 * space is short, 1/32: near full (a small filesystem whose btree grew, and
 * with it the space kept back for checkpoints) every user bucket can be more
 * than 7/8 full while the unused space still adds up to many buckets. */
static u32 victim_max_used(struct bkfs_fs *fs)
{
	return bucket_sectors(fs) - MAX(1u, bucket_sectors(fs) / (space_short(fs) ? 32 : 8));
}

/* Choose up to max victims, emptiest first over all devices, as many as the
 * space above the mover's reserve can take. */
static int pick_victims(struct mover *m, unsigned max)
{
	struct bkfs_fs *fs = m->fs;
	u64 *cand = malloc(max * sizeof(*cand));
	m->v = malloc((size_t)max * fs->nr_devs * sizeof(*m->v));
	if (!cand || !m->v) {
		free(cand);
		return -BKFS_E_NOMEM;
	}
	u64 space = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!dev_usable(fs, d))
			continue;
		u64 free = alloc_dev_free_buckets(fs, d), res = alloc_reserve_buckets(fs, d, ALLOC_WM_copygc);
		const struct write_point *wp = &ALLOC(fs)->move_wp[d];
		space += (free > res ? free - res : 0) * bucket_sectors(fs) + (wp->open ? bucket_sectors(fs) - wp->fill : 0);
		size_t n = alloc_frag_emptiest(fs, d, victim_max_used(fs), victim_ok, fs, cand, max);
		for (size_t i = 0; i < n; i++) {
			const struct bkfs_alloc *a = bucket_get(fs, d, cand[i]);
			m->v[m->nr_v++] = (struct victim){ victim_id(d, cand[i]), a->dirty_sectors + a->stripe_sectors,
							   a->gen };
		}
	}
	free(cand);
	qsort(m->v, m->nr_v, sizeof(*m->v), victim_cmp_used);
	/* no slack kept for extents that do not fit what is left of the open
	 * bucket: most are split (move_pieces); one that cannot be stops the
	 * step at the reserve (move_key's -BKFS_E_NOSPC), nothing worse */
	size_t n = 0;
	for (u64 sum = 0; n < m->nr_v && n < max && sum + m->v[n].used <= space; n++)
		sum += m->v[n].used;
	m->nr_v = n;
	qsort(m->v, m->nr_v, sizeof(*m->v), victim_cmp_id);
	return 0;
}

static int keys_push(struct mover *m, unsigned id, struct bpos p)
{
	if (darray_room(m->keys, m->keys_cap, m->nr_keys + 1, 64))
		return -BKFS_E_NOMEM;
	m->keys[m->nr_keys++] = (struct key_ref){ id, p };
	return 0;
}

static int key_ref_cmp(const void *a, const void *b)
{
	const struct key_ref *x = a, *y = b;
	if (x->btree_id != y->btree_id)
		return x->btree_id < y->btree_id ? -1 : 1;
	return bpos_cmp(x->p, y->p);
}

/* The keys with a pointer into a victim, from the in-memory backpointers
 * (alloc/bucket_keys.c), in btree order, each once: the cost is the keys
 * listed for the victims, not the size of the btrees. */
static int find_keys(struct mover *m)
{
	int ret = bucket_keys_build(m->fs);
	if (ret)
		return ret;
	for (size_t i = 0; i < m->nr_v; i++) {
		const struct bucket_key *e;
		size_t n = bucket_keys_get(m->fs, m->v[i].id >> 48, m->v[i].id & VICTIM_BUCKET_MASK, &e);
		for (size_t j = 0; j < n; j++)
			if (e[j].gen == m->v[i].gen &&
			    (ret = keys_push(m, e[j].btree_id, (struct bpos){ e[j].inode, e[j].offset, e[j].snapshot, 0 })))
				return ret;
	}
	qsort(m->keys, m->nr_keys, sizeof(*m->keys), key_ref_cmp);
	size_t n = 0;
	for (size_t i = 0; i < m->nr_keys; i++)
		if (!n || key_ref_cmp(&m->keys[n - 1], &m->keys[i]))
			m->keys[n++] = m->keys[i];
	m->nr_keys = n;
	return 0;
}

/* The extent inside key k's value: an extent's value, or an indirect
 * extent's after its refcount. */
static struct bkfs_extent *key_extent(struct bkey *k, size_t *hdr)
{
	*hdr = k->type == KEY_TYPE_reflink_v ? offsetof(struct bkfs_reflink_v, e) : 0;
	return (struct bkfs_extent *)((u8 *)bkey_val(k) + *hdr);
}

/* Read k's checksummed region through an extent key of the same value (an
 * indirect extent is read as the extent it holds). */
static int read_region(struct bkfs_fs *fs, const struct bkey *k, const struct bkfs_extent *e, size_t hdr, u8 *buf)
{
	struct bkey_buf ek;
	size_t eb = bkey_val_bytes(k) - hdr;
	bkey_init(&ek.k, KEY_TYPE_extent, k->p, eb);
	ek.k.size = k->size;
	memcpy(bkey_val(&ek.k), e, eb);
	return extent_read_region(fs, &ek.k, buf);
}

/* Copy the key's data to new space on nr devices outside exclude: the new
 * pointers in out. Returns how many, or an error. When every pointer moves
 * (narrow), only the live part of the checksummed region is written, with a
 * checksum of its own, and *e is narrowed to it: overwrites trim extents, and
 * copying their dead parts along would make the mover write more than it
 * frees. Otherwise the whole region is copied, so the pointers that stay
 * still match the extent's checksum. */
static int write_copies(struct mover *m, const struct bkey *k, struct bkfs_extent *e, size_t hdr, u32 exclude,
			unsigned nr, bool narrow, struct bkfs_ptr *out)
{
	struct bkfs_fs *fs = m->fs;
	u32 region = e->csum_sectors, want = region, skip = 0, got = 0;
	if (!region || region > bucket_sectors(fs))
		return 0;
	narrow = narrow && e->csum_type == CSUM_CRC32C && !e->compression && e->offset + k->size <= region &&
		 k->size < region;
	if (narrow) {
		want = k->size;
		skip = e->offset;
	}
	u8 *buf = malloc((size_t)region << SECTOR_SHIFT);
	if (!buf)
		return -BKFS_E_NOMEM;
	int n = read_region(fs, k, e, hdr, buf);
	if (n == -BKFS_E_NOMEM || n > 0)
		goto out;
	if (n) {
		n = 0; /* unreadable: left where it is */
		goto out;
	}
	n = alloc_data_space_wm(fs, ALLOC_WM_copygc, exclude, nr, want, want, out, &got);
	if (n == -BKFS_E_DEGRADED || (n > 0 && ((unsigned)n < nr || got != want)))
		n = 0; /* no device to keep the copies apart: left where it is */
	const u8 *src = buf + ((size_t)skip << SECTOR_SHIFT);
	if (n > 0 && extent_write_replicas(fs, out, n, src, (size_t)want << SECTOR_SHIFT))
		n = 0;
	if (n > 0 && narrow) {
		e->csum = bkfs_crc32c(0, src, (size_t)want << SECTOR_SHIFT);
		e->csum_sectors = want;
		e->offset = 0;
	}
out:
	free(buf);
	return n;
}

/* An extent all of whose copies move, and whose live part can be checksummed
 * anew: it may be split over buckets. */
static bool splittable(const struct key_ref *r, const struct bkey *k, const struct bkfs_extent *e)
{
	return r->btree_id == BTREE_ID_extents && k->type == KEY_TYPE_extent && e->csum_type == CSUM_CRC32C &&
	       !e->compression && e->csum_sectors && e->offset + k->size <= e->csum_sectors;
}

/* Rewrite extent k (every copy moves, nr of them) as pieces, each filling
 * what is left of the mover's open bucket before a fresh one is taken, each
 * with a checksum of its own and only the live data. Without splitting, an
 * extent larger than the open bucket's tail left that tail unused: at near
 * full the mover then wrote buckets emptier than the victims it emptied and
 * lost ground (a 48 MiB filesystem at 85 % ran out of space that way). */
static int move_pieces(struct mover *m, const struct bkey *k, const struct bkfs_extent *e, unsigned nr,
		       unsigned dropped)
{
	struct bkfs_fs *fs = m->fs;
	u32 block = MAX(1u, (u32)(fs->block_bytes >> SECTOR_SHIFT)), done = 0;
	u8 *buf = malloc((size_t)e->csum_sectors << SECTOR_SHIFT);
	if (!buf)
		return -BKFS_E_NOMEM;
	int ret = read_region(fs, k, e, 0, buf);
	if (ret) {
		free(buf);
		m->st->keys_skipped++;
		return ret == -BKFS_E_NOMEM ? ret : 0; /* unreadable: left where it is */
	}
	const u8 *src = buf + ((size_t)e->offset << SECTOR_SHIFT);
	u64 start = bkey_start_pos(k).offset;
	unsigned pieces = 0;
	struct trans t;
	trans_init(&t, fs);
	while (done < k->size && !ret) {
		struct bkfs_ptr fresh[BKFS_MAX_REPLICAS];
		u32 left = k->size - done, got = 0;
		int n = alloc_data_space_wm(fs, ALLOC_WM_copygc, 0, nr, left, MIN(left, block), fresh, &got);
		if (n < 0) {
			ret = n;
			break;
		}
		if ((unsigned)n < nr || !got) {
			ret = -BKFS_E_DEGRADED; /* no device to keep the copies apart */
			break;
		}
		const u8 *p = src + ((size_t)done << SECTOR_SHIFT);
		if ((ret = extent_write_replicas(fs, fresh, n, p, (size_t)got << SECTOR_SHIFT)))
			break;
		struct bkey_buf pk;
		bkey_init(&pk.k, KEY_TYPE_extent, POS(k->p.inode, start + done + got), extent_val_bytes(n));
		pk.k.p.snapshot = k->p.snapshot;
		pk.k.size = got;
		struct bkfs_extent *pe = bkey_val(&pk.k);
		*pe = *e;
		pe->csum = bkfs_crc32c(0, p, (size_t)got << SECTOR_SHIFT);
		pe->csum_sectors = got;
		pe->offset = 0;
		pe->nr_ptrs = n;
		memcpy(pe->ptrs, fresh, n * sizeof(*fresh));
		ret = trans_update(&t, BTREE_ID_extents, &pk.k);
		done += got;
		pieces++;
	}
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	free(buf);
	if (ret == -BKFS_E_DEGRADED) {
		m->st->keys_skipped++;
		return 0;
	}
	if (!ret) {
		m->st->keys_moved++;
		m->st->keys_split += pieces > 1;
		m->st->sectors_moved += (u64)k->size * nr;
		m->st->sectors_narrowed += e->csum_sectors - k->size;
		m->st->cached_dropped += dropped;
	}
	return ret;
}

/* Move the pointers of one key that point into victims. */
static int move_key(struct mover *m, const struct key_ref *r)
{
	struct bkfs_fs *fs = m->fs;
	struct bkey_buf kb, nk;
	int ret = btree_lookup(fs, r->btree_id, r->p, &kb);
	if (ret == -BKFS_E_NOENT)
		return 0;
	if (ret)
		return ret;
	size_t hdr;
	struct bkfs_ptr *ptrs, keep[BKFS_MAX_REPLICAS], fresh[BKFS_MAX_REPLICAS];
	unsigned nr = bkey_ptrs(&kb.k, &ptrs), nr_keep = 0, nr_move = 0, dropped = 0;
	u32 exclude = 0;
	struct bkfs_extent *e = key_extent(&kb.k, &hdr);
	for (unsigned i = 0; i < nr; i++) {
		const struct bkfs_ptr *p = &ptrs[i];
		if (!is_victim(m, p)) {
			keep[nr_keep++] = *p;
			if (!(p->flags & PTR_CACHED))
				exclude |= 1u << (p->dev & 31);
		} else if (p->flags & PTR_CACHED) {
			dropped++;
		} else {
			nr_move++;
		}
	}
	if (!nr_move && (!dropped || !nr_keep)) {
		m->st->keys_skipped += dropped > 0; /* only a cached copy left: it stays */
		return 0;
	}
	u32 region = e->csum_sectors;
	if (nr_move && nr_keep && region > kb.k.size) {
		/* a trimmed extent with other replicas: all its copies are
		 * rewritten narrowed, which writes less than one copy of the
		 * whole region would (and keeps the dead part from moving on) */
		for (unsigned i = 0; i < nr_keep; i++) {
			if (keep[i].flags & PTR_CACHED)
				dropped++;
			else
				nr_move++;
		}
		nr_keep = 0;
		exclude = 0;
	}
	if (nr_move && !nr_keep && splittable(r, &kb.k, e))
		return move_pieces(m, &kb.k, e, nr_move, dropped);
	int n = 0;
	if (nr_move && (n = write_copies(m, &kb.k, e, hdr, exclude, nr_move, !nr_keep, fresh)) <= 0) {
		m->st->keys_skipped++;
		return n;
	}
	/* the key with the moved pointers replaced, cached ones into victims
	 * gone (e may have been narrowed to the live data) */
	memcpy(&nk, &kb, sizeof(struct bkey) + hdr + sizeof(*e));
	struct bkfs_extent *ne = key_extent(&nk.k, &hdr);
	memcpy(ne->ptrs, keep, nr_keep * sizeof(*keep));
	memcpy(ne->ptrs + nr_keep, fresh, n * sizeof(*fresh));
	ne->nr_ptrs = nr_keep + n;
	nk.k.u64s = DIV_ROUND_UP(sizeof(struct bkey) + hdr + extent_val_bytes(ne->nr_ptrs), 8);
	struct trans t;
	trans_init(&t, fs);
	if (!(ret = trans_update(&t, r->btree_id, &nk.k)))
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	if (!ret) {
		m->st->keys_moved++;
		m->st->sectors_moved += n ? (u64)e->csum_sectors * n : 0;
		m->st->sectors_narrowed += region - e->csum_sectors;
		m->st->cached_dropped += dropped;
	}
	return ret;
}

/* Count the victims left empty. One still holding data with no key of its
 * gen listed means the index missed a key (a writer bypassed the trigger):
 * drop it, and the next step builds it again from the btrees. */
static void count_emptied(struct mover *m)
{
	bool drifted = false;
	for (size_t i = 0; i < m->nr_v; i++) {
		unsigned dev = m->v[i].id >> 48;
		u64 b = m->v[i].id & VICTIM_BUCKET_MASK;
		const struct bkfs_alloc *a = bucket_get(m->fs, dev, b);
		if (!a->dirty_sectors && !a->stripe_sectors) {
			m->st->buckets_emptied++;
			continue;
		}
		const struct bucket_key *e;
		size_t n = bucket_keys_get(m->fs, dev, b, &e), live = 0;
		for (size_t j = 0; j < n; j++)
			live += e[j].gen == a->gen;
		drifted |= a->gen == m->v[i].gen && !live;
	}
	if (drifted) {
		m->st->index_drifted = true;
		bucket_keys_drop(m->fs);
	}
}

int bkfs_copygc(struct bkfs_fs *fs, unsigned max_buckets, struct copygc_stats *st)
{
	struct copygc_stats dummy = { 0 };
	struct mover m = { .fs = fs, .st = st ? st : &dummy };
	int ret;
	if (!fs->alloc || (fs->flags & BKFS_OPEN_RDONLY))
		return -BKFS_E_INVAL;
	if (!max_buckets)
		return 0;
	if ((ret = pick_victims(&m, max_buckets)))
		goto out;
	if (!m.nr_v && space_short(fs)) {
		/* At its floor the mover may take one bucket of the checkpoint
		 * reserve's slack, given back when the victims it empties are.
		 * Without it, a checkpoint that took the mover's last buckets
		 * (new copies of nodes; buckets left with dead node slots)
		 * left it unable to start, and writes stopped while copying
		 * GC could still recover many buckets. */
		free(m.v);
		m.v = NULL;
		ALLOC(fs)->copygc_grace = 1;
		if ((ret = pick_victims(&m, max_buckets)))
			goto out;
	}
	if (!m.nr_v)
		goto out;
	m.st->buckets += m.nr_v;
	if ((ret = find_keys(&m)))
		goto out;
	for (size_t i = 0; i < m.nr_keys && !ret; i++)
		ret = move_key(&m, &m.keys[i]);
	if (ret == -BKFS_E_NOSPC) {
		m.st->nospc = true;
		ret = 0;
	}
	if (!ret)
		count_emptied(&m);
out:
	ALLOC(fs)->copygc_grace = 0;
	free(m.v);
	free(m.keys);
	return ret;
}

bool copygc_wanted(struct bkfs_fs *fs)
{
	struct alloc_space_info si;
	if (!fs->alloc || (fs->flags & BKFS_OPEN_RDONLY))
		return false;
	alloc_space_info(fs, &si);
	if (!alloc_space_short(si.free_buckets, si.reserved[ALLOC_WM_normal], si.total_buckets) ||
	    si.fragmented_sectors < 4 * si.bucket_sectors)
		return false;
	u64 b;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (dev_usable(fs, d) && alloc_frag_emptiest(fs, d, victim_max_used(fs), victim_ok, fs, &b, 1))
			return true;
	return false;
}
