/* superblock.c - passes 1 and 2: superblock copies and the journal. */
#include "fsck.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool fsck_member_bitmap_repair(const struct bkfs_sb *sb, unsigned idx, u8 *shift, u64 *bitmap)
{
	const struct bkfs_member *m = &sb->members[idx];
	/* sb_validate bounds nbuckets * bucket_size by 2^55 sectors */
	u64 last = m->nbuckets * sb->bucket_size - 1; /* the member's last sector */
	unsigned os = m->btree_bitmap_shift, ns = member_bitmap_min_shift(last + 1);
	u64 old = m->btree_bitmap, nb = 0;
	bool bad;
	if (os >= 64) {
		bad = true;
	} else {
		u64 last_bit = last >> os; /* the region holding the last sector */
		bad = last_bit >= MEMBER_BITMAP_BITS ||
		      (last_bit < MEMBER_BITMAP_BITS - 1 && (old >> (last_bit + 1)));
	}
	if (!bad)
		return false;
	for (unsigned i = 0; i < MEMBER_BITMAP_BITS; i++) {
		if (!(old & (1ull << i)))
			continue;
		u64 start = 0, end = last; /* under an absurd shift: all of it */
		if (os < 64) {
			if (i > (last >> os))
				continue; /* wholly past the end */
			start = (u64)i << os;
			u64 span = os >= 63 ? UINT64_MAX >> 1 : (1ull << os) - 1;
			end = last - start <= span ? last : start + span;
		}
		for (u64 b = start >> ns; b <= end >> ns; b++)
			nb |= 1ull << b;
	}
	*shift = ns;
	*bitmap = nb;
	return true;
}

/* Member bitmaps that cannot describe their device (sb_member_bitmap_bad). */
static void check_member_bitmaps(struct fsck_ctx *c, const struct bkfs_sb *best, const char *const *mpath)
{
	for (unsigned i = 0; i < best->nr_devices; i++) {
		const struct bkfs_member *m = &best->members[i];
		u8 ns;
		u64 nb;
		if (!fsck_member_bitmap_repair(best, i, &ns, &nb))
			continue;
		u64 sectors = m->nbuckets * best->bucket_size;
		fsck_err(c, FSCK_ERR_sb_member_bitmap_bad,
			 "recompute the shift, re-map the set regions onto it, clear bits past the device",
			 "member %u (device %s) btree bitmap", i, mpath[i] ? mpath[i] : "missing");
		unsigned os = m->btree_bitmap_shift;
		if (os >= 64)
			fsck_err_msg(c, "btree_bitmap_shift %u >= 64", os);
		else if ((sectors - 1) >> os >= MEMBER_BITMAP_BITS)
			fsck_err_msg(c, "btree_bitmap_shift %u: 64 bits cover %llu of the device's %llu sectors", os,
				     (unsigned long long)(64ull << os), (unsigned long long)sectors);
		else
			fsck_err_msg(c, "btree_bitmap_shift %u: bits set past bit %llu, the device's last region", os,
				     (unsigned long long)((sectors - 1) >> os));
		fsck_err_msg(c, "btree_bitmap 0x%016llx shift %u -> 0x%016llx shift %u",
			     (unsigned long long)m->btree_bitmap, os, (unsigned long long)nb, ns);
		c->sb_bitmap_fix[i].set = true;
		c->sb_bitmap_fix[i].shift = ns;
		c->sb_bitmap_fix[i].bitmap = nb;
	}
}

void fsck_sb_repairs_apply(struct fsck_ctx *c)
{
	struct bkfs_sb *sb = &c->fs->sb;
	for (unsigned i = 0; i < sb->nr_devices && i < BKFS_MAX_DEVS; i++)
		if (c->sb_bitmap_fix[i].set) {
			sb->members[i].btree_bitmap_shift = c->sb_bitmap_fix[i].shift;
			sb->members[i].btree_bitmap = c->sb_bitmap_fix[i].bitmap;
		}
}

int fsck_pass_superblock(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	struct bkfs_sb best, sb;
	bool have = false;
	u8 *buf = malloc(BKFS_SB_SIZE);
	if (!buf)
		return -BKFS_E_NOMEM;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!bkfs_read_super(fs->devs[d].bd, &sb, NULL, NULL) && (!have || sb.seq > best.seq)) {
			best = sb;
			have = true;
		}
	}
	if (!have) {
		free(buf);
		fprintf(stderr, "bkfs fsck: no valid superblock on any device\n");
		return -BKFS_E_NOENT;
	}
	const char *mpath[BKFS_MAX_DEVS] = { 0 }; /* the device of each member */
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		u64 offs[3];
		struct bkfs_sb dsb;
		/* each device's own newest copy decides where its last bucket is */
		if (bkfs_read_super(fs->devs[d].bd, &dsb, NULL, NULL))
			continue;
		if (!memcmp(dsb.uuid, best.uuid, 16) && !mpath[dsb.dev_idx])
			mpath[dsb.dev_idx] = fs->devs[d].bd->path;
		unsigned n = sb_copy_offsets(&dsb, &dsb.members[dsb.dev_idx], offs);
		for (unsigned i = 0; i < n; i++) {
			struct printbuf why = PRINTBUF;
			int ret = bd_read(fs->devs[d].bd, buf, offs[i], BKFS_SB_SIZE);
			if (!ret)
				ret = sb_validate((struct bkfs_sb *)buf, &why);
			if (ret) {
				fsck_err(c, FSCK_ERR_sb_copy_bad, "rewrite from the newest valid copy",
					 "device %s superblock copy %u at byte %llu", fs->devs[d].bd->path, i,
					 (unsigned long long)offs[i]);
				fsck_err_msg(c, "%s", why.len ? pb_str(&why) : bkfs_strerror(ret));
			} else if (((struct bkfs_sb *)buf)->seq < best.seq ||
				   memcmp(((struct bkfs_sb *)buf)->uuid, best.uuid, 16)) {
				fsck_err(c, FSCK_ERR_sb_copy_stale, "rewrite from the newest valid copy",
					 "device %s superblock copy %u at byte %llu", fs->devs[d].bd->path, i,
					 (unsigned long long)offs[i]);
				fsck_err_msg(c, "seq %llu, newest is %llu",
					     (unsigned long long)((struct bkfs_sb *)buf)->seq, (unsigned long long)best.seq);
			}
			pb_exit(&why);
		}
	}
	free(buf);
	/* the copy the filesystem opens with (bkfs_open_devs picks it the
	 * same way): its member table */
	check_member_bitmaps(c, &best, mpath);
	return 0;
}

int fsck_pass_journal(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	struct journal *j = fs->journal;
	struct journal_stats *s = &j->stats;
	if (!s->found_checkpoint)
		fsck_err(c, FSCK_ERR_journal_no_checkpoint, "use the superblock's roots and rebuild from a node scan",
			 "journal");
	/* the scan found a checkpoint the clean superblock did not point to
	 * (none at all is journal_no_checkpoint); the final checkpoint of the
	 * repair records its position again */
	if (s->clean_checkpoint_missing && s->found_checkpoint &&
	    fsck_err(c, FSCK_ERR_journal_clean_checkpoint_missing, "record the position of the newest checkpoint",
		     "superblock clean_cp_pos %llu: no checkpoint with seq %llu there; the newest is seq %llu",
		     (unsigned long long)fs->sb.clean_cp_pos, (unsigned long long)fs->sb.journal_seq - 1,
		     (unsigned long long)s->checkpoint_seq))
		fsck_begin_repair(c);
	if (s->bad_csum)
		fsck_err(c, FSCK_ERR_journal_entry_bad_csum, "truncate the journal at the first bad entry",
			 "journal: %llu entries with bad checksums (first bad seq %llu)",
			 (unsigned long long)s->bad_csum, (unsigned long long)s->first_bad_seq);
	if (s->after_gap)
		fsck_err(c, FSCK_ERR_journal_entries_after_gap, "discard entries after the gap",
			 "journal: %llu entries after a gap at seq %llu", (unsigned long long)s->after_gap,
			 (unsigned long long)s->first_bad_seq);
	if (s->torn)
		fsck_err(c, FSCK_ERR_journal_entry_torn, "stop replay at the torn entry", "journal: entry could not be replayed");
	if (c->opts.verbose) {
		struct printbuf pb = PRINTBUF;
		journal_stats_to_text(&pb, s);
		fprintf(stderr, "bkfs fsck: journal: %s\n", pb_str(&pb));
		pb_exit(&pb);
	}
	return 0;
}
