/* corrupt_sb.c - kinds that damage the superblock: a copy overwritten or
 * made stale, a member's btree bitmap (a bit cleared, its shift lowered). */
#include "corrupt_int.h"

/* Read every valid superblock copy of every member into queued writes after
 * edit() changed it (edit returns false to leave a copy alone). */
static int edit_sb_copies(struct corrupt_ctx *c, bool (*edit)(struct corrupt_ctx *, struct bkfs_sb *, unsigned dev, unsigned copy, void *),
			  void *arg)
{
	struct bkfs_fs *fs = c->fs;
	u8 *buf = malloc(BKFS_SB_SIZE);
	int ret = 0;
	if (!buf)
		return -BKFS_E_NOMEM;
	for (unsigned d = 0; d < fs->nr_devs && !ret; d++) {
		if (!fs->devs[d].bd)
			continue;
		u64 offs[3];
		unsigned n = sb_copy_offsets(&fs->sb, &fs->sb.members[d], offs);
		for (unsigned i = 0; i < n && !ret; i++) {
			if (bd_read(fs->devs[d].bd, buf, offs[i], BKFS_SB_SIZE) ||
			    sb_validate((struct bkfs_sb *)buf, NULL))
				continue;
			if (!edit(c, (struct bkfs_sb *)buf, d, i, arg))
				continue;
			sb_csum_set((struct bkfs_sb *)buf);
			ret = queue_write(c, d, offs[i], buf, BKFS_SB_SIZE);
		}
	}
	free(buf);
	return ret;
}

struct bitmap_edit { unsigned dev; u64 bit; };

static bool clear_bitmap_bit(struct corrupt_ctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	struct bitmap_edit *e = arg;
	(void)c; (void)dev; (void)copy;
	sb->members[e->dev].btree_bitmap &= ~(1ull << e->bit);
	return true;
}

static bool any_node(struct corrupt_ctx *c, const struct dnode *n) { return true; }

int corrupt_bitmap_unmarked(struct corrupt_ctx *c)
{
	struct dnode *t = pick_node(c, any_node, "no written btree node");
	if (!t)
		return NO_TARGET;
struct bitmap_edit e = { .dev = t->ptr.ptrs[0].dev };
	struct bkfs_member *m = &c->sb.members[e.dev];
	e.bit = t->ptr.ptrs[0].offset >> m->btree_bitmap_shift;
	if (e.bit >= 64)
		return no_target(c, "node outside the bitmap");
	pb_printf(&c->r->damaged, "member %u btree bitmap bit %llu (sectors %llu..%llu, bitmap 0x%016llx -> 0x%016llx), covering ",
		  e.dev, (unsigned long long)e.bit, (unsigned long long)(e.bit << m->btree_bitmap_shift),
		  (unsigned long long)(((e.bit + 1) << m->btree_bitmap_shift) - 1),
		  (unsigned long long)m->btree_bitmap, (unsigned long long)(m->btree_bitmap & ~(1ull << e.bit)));
	node_text(&c->r->damaged, t);
	pb_printf(&c->r->lost, "none");
	return edit_sb_copies(c, clear_bitmap_bit, &e);
}

struct shift_edit { unsigned dev; u8 shift; };

static bool lower_bitmap_shift(struct corrupt_ctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	struct shift_edit *e = arg;
	(void)c; (void)dev; (void)copy;
	sb->members[e->dev].btree_bitmap_shift = e->shift;
	return true;
}

/* A member's btree_bitmap_shift lowered by one, its bits kept: the bitmap's
 * 64 bits no longer reach the device's end (the superblock stays valid). */
int corrupt_member_bitmap_shift(struct corrupt_ctx *c)
{
	unsigned cand[BKFS_MAX_DEVS], nr = 0;
	for (unsigned d = 0; d < c->sb.nr_devices && d < BKFS_MAX_DEVS; d++) {
		const struct bkfs_member *m = &c->sb.members[d];
		u64 sectors = m->nbuckets * c->sb.bucket_size;
		if (m->btree_bitmap_shift && m->btree_bitmap_shift < 64 &&
		    (sectors - 1) >> (m->btree_bitmap_shift - 1) >= MEMBER_BITMAP_BITS)
			cand[nr++] = d;
	}
	if (!nr)
		return no_target(c, "no member whose bitmap would stop covering its device with a smaller shift");
	struct shift_edit e = { .dev = cand[pick(c, nr)] };
	const struct bkfs_member *m = &c->sb.members[e.dev];
	e.shift = m->btree_bitmap_shift - 1;
	u64 sectors = m->nbuckets * c->sb.bucket_size;
	pb_printf(&c->r->damaged,
		  "member %u btree_bitmap_shift %u -> %u (bitmap 0x%016llx kept): its 64 bits now cover %llu of %llu sectors "
		  "(every superblock copy)",
		  e.dev, m->btree_bitmap_shift, m->btree_bitmap_shift - 1, (unsigned long long)m->btree_bitmap,
		  (unsigned long long)(64ull << (m->btree_bitmap_shift - 1)), (unsigned long long)sectors);
	pb_printf(&c->r->lost, "none");
	return edit_sb_copies(c, lower_bitmap_shift, &e);
}

int corrupt_sb_primary(struct corrupt_ctx *c)
{
	unsigned dev = (unsigned)pick(c, c->nr_devs);
	u8 *buf = malloc(BKFS_SB_SIZE);
	if (!buf)
		return -BKFS_E_NOMEM;
	for (unsigned i = 0; i < BKFS_SB_SIZE; i++)
		buf[i] = (u8)rng_next(&c->rng);
	pb_printf(&c->r->damaged, "primary superblock copy of member %u (%s) at byte %llu overwritten with random bytes", dev,
		  c->dev[dev]->path ? c->dev[dev]->path : "?", (unsigned long long)BKFS_SB_OFFSET);
	pb_printf(&c->r->lost, "none: the backup copies are intact");
	int ret = queue_write(c, dev, BKFS_SB_OFFSET, buf, BKFS_SB_SIZE);
	free(buf);
	return ret;
}

struct stale_edit { unsigned dev, copy; };

static bool make_stale(struct corrupt_ctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	struct stale_edit *e = arg;
	(void)c;
	if (dev != e->dev || copy != e->copy)
		return false;
	sb->seq--;
	return true;
}

int corrupt_sb_stale(struct corrupt_ctx *c)
{
	struct stale_edit e = { .dev = (unsigned)pick(c, c->nr_devs), .copy = 1 + (unsigned)pick(c, 2) };
	pb_printf(&c->r->damaged, "superblock copy %u of member %u: seq %llu -> %llu (valid but older than the others)",
		  e.copy, e.dev, (unsigned long long)c->sb.seq, (unsigned long long)(c->sb.seq - 1));
	pb_printf(&c->r->lost, "none");
	return edit_sb_copies(c, make_stale, &e);
}


static bool move_clean_cp_pos(struct corrupt_ctx *c, struct bkfs_sb *sb, unsigned dev, unsigned copy, void *arg)
{
	(void)c; (void)dev; (void)copy;
	sb->clean_cp_pos = *(u64 *)arg;
	return true;
}

/* A clean superblock's clean_cp_pos moved one block on (still inside the
 * ring, so the superblock validates): no checkpoint with the expected seq
 * lies there, and the open falls back to scanning the ring. */
int corrupt_sb_clean_cp_pos(struct corrupt_ctx *c)
{
	if (!c->sb.clean || !c->sb.clean_cp_pos)
		return no_target(c, "the superblock is not clean or records no checkpoint position");
	u64 ring = UINT64_MAX;
	for (unsigned d = 0; d < c->sb.nr_devices; d++)
		ring = MIN(ring, c->sb.members[d].journal_nr_buckets * ((u64)c->sb.bucket_size << SECTOR_SHIFT));
	u64 pos = (c->sb.clean_cp_pos - 1 + c->sb.block_size) % ring + 1;
	pb_printf(&c->r->damaged, "superblock clean_cp_pos %llu -> %llu (every copy): the newest checkpoint is not there",
		  (unsigned long long)c->sb.clean_cp_pos, (unsigned long long)pos);
	pb_printf(&c->r->lost, "none: the ring is scanned for the checkpoint");
	return edit_sb_copies(c, move_clean_cp_pos, &pos);
}
