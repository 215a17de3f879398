/* superblock.c - passes 1 and 2: superblock copies and the journal. */
#include "fsck.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		u64 offs[3];
		struct bkfs_sb dsb;
		/* each device's own newest copy decides where its last bucket is */
		if (bkfs_read_super(fs->devs[d].bd, &dsb, NULL, NULL))
			continue;
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
