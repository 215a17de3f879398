/* journal.h - the journal: a ring of buckets mirrored on every member.
 * Each commit's final keys go into an entry; entries are durable once flushed.
 * A checkpoint entry records the btree roots after all dirty nodes were
 * written; replay applies, in seq order, the entries after the newest
 * checkpoint, stopping at the first gap. Until replay has been written out by
 * a checkpoint, the replayed keys live only in memory (the overlay): nothing
 * on disk changes, so the checker can run on an unclean filesystem. */
#ifndef BKFS_JOURNAL_H
#define BKFS_JOURNAL_H
#include "../btree/btree.h"

struct journal_stats {
	u64 entries_valid, entries_replayed, bad_csum, after_gap, torn;
	u64 checkpoint_seq, max_seq_seen;
	u64 first_bad_seq;  /* seq of the first entry not replayed (0 = none) */
	bool found_checkpoint;
	bool clean_checkpoint;         /* clean: read at clean_cp_pos, the ring not scanned */
	bool clean_checkpoint_missing; /* clean, but no such checkpoint at clean_cp_pos */
	/* where damaged entries lie (dev, ring offset), for journal_scrub_bad() */
#define JOURNAL_MAX_BAD 256
	u32 nr_bad;
	u8 bad_dev[JOURNAL_MAX_BAD];
	u64 bad_off[JOURNAL_MAX_BAD];
};

struct journal {
	u64 seq;            /* seq of the entry being built */
	u64 durable_seq;    /* every entry <= this is on disk */
	u64 checkpoint_seq; /* newest checkpoint entry */
	u64 ring_bytes;     /* per device */
	u64 wpos;           /* next write offset in the ring */
	u64 cp_pos, cp_len; /* where the newest checkpoint entry lies (never overwritten) */
	u8 *buf;            /* records of the entry being built */
	size_t buf_len, buf_cap;
	u16 nr_records;
	bool sb_dirty;      /* superblock must be written before the next checkpoint record */
	struct journal_stats stats;
	/* under BKFS_OPEN_FSCK: every key replayed, in order (a u64 btree id,
	 * then the key), so the checker can apply them again over btrees it
	 * rebuilt (DESIGN §4 guarantee 7: nothing in the journal is lost) */
	u8 *overlay;
	size_t overlay_len, overlay_cap;
};

int journal_init(struct bkfs_fs *fs);
void journal_exit(struct bkfs_fs *fs);
/* Read the ring, choose the newest checkpoint, load roots and state into fs
 * and replay later entries into the in-memory btrees. */
int journal_read_and_replay(struct bkfs_fs *fs, bool replay);
/* Insert every key the open replayed (BKFS_OPEN_FSCK keeps them) again, in
 * the order replay applied them: a replayed key whose node the checker
 * replaced (a btree rebuilt from scanned nodes) is back in the tree. Each
 * key overwrites what it covers, so keys already in place are unchanged.
 * Returns 0 or -BKFS_E_NOMEM; keys that still cannot be inserted are skipped,
 * as at replay. */
int journal_overlay_reapply(struct bkfs_fs *fs);
/* Before a clean superblock is written: journal_seq and clean_cp_pos, so
 * the next open reads the last checkpoint instead of scanning the ring. */
void journal_note_clean(struct bkfs_fs *fs);
/* Write the open entry and flush all members. */
int journal_flush(struct bkfs_fs *fs);
/* Anything committed that a journal_flush() would make durable. */
bool journal_needs_flush(struct bkfs_fs *fs);
u64 journal_durable_seq(struct bkfs_fs *fs);
/* hooks */
int journal_commit_trans(struct bkfs_fs *fs, struct trans *t, u64 *seq);
u64 journal_cur_seq(struct bkfs_fs *fs);
int journal_write_checkpoint(struct bkfs_fs *fs);
/* Overwrite the header block of every damaged entry found by the last read,
 * so a repaired journal never shows them again. */
int journal_scrub_bad(struct bkfs_fs *fs);
void journal_stats_to_text(struct printbuf *out, const struct journal_stats *s);

#endif
