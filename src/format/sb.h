/* sb.h - the superblock: its layout, validation and printing, and its copies
 * on a device: where they are, reading the best one, writing them all
 * (format/sb.c). The copies are read and written through a struct blockdev. */
#ifndef BKFS_SB_H
#define BKFS_SB_H
#include "bkey_format.h"
#include "extents_format.h"
#include "../io/blockdev.h"

/* ---- superblock ---- */
#define MEMBER_BITMAP_BITS 64
struct bkfs_member {
	u8 uuid[16];
	u64 nbuckets;
	u16 first_bucket;
	u8 state;         /* 0 rw, 1 ro, 2 failed */
	u8 btree_bitmap_shift; /* each bitmap bit covers 2^shift sectors */
	u32 pad;
	u64 btree_bitmap;  /* regions that have ever held btree nodes */
	u64 journal_bucket_start;
	u64 journal_nr_buckets;
	u64 reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_member) == 64, "member");

/* The smallest btree_bitmap_shift whose MEMBER_BITMAP_BITS bits cover every
 * sector of a member of `sectors` sectors (bit i covers sectors
 * [i << shift, (i + 1) << shift)). */
static inline unsigned member_bitmap_min_shift(u64 sectors)
{
	unsigned shift = 0;
	while (sectors && ((sectors - 1) >> shift) >= MEMBER_BITMAP_BITS)
		shift++;
	return shift;
}

#define BKFS_FSCK_ERR_SLOTS 256
#define BKFS_SB_ROOTS 8 /* btrees whose roots have a slot in roots[] (version 1) */
struct bkfs_sb {
	u32 csum;         /* crc32c over [4, BKFS_SB_SIZE) */
	u32 version;
	u64 magic;
	u64 magic2;
	u8 uuid[16];      /* filesystem uuid */
	u8 label[32];
	u64 seq;          /* superblock write sequence; newest valid copy wins */
	u32 block_size;   /* bytes */
	u32 bucket_size;  /* sectors */
	u32 btree_node_size; /* sectors */
	u8 nr_devices;
	u8 dev_idx;       /* which member this copy lives on */
	u8 data_replicas;
	u8 metadata_replicas; /* 1..sb_max_metadata_replicas(nr_devices) */
	u8 csum_type;
	u8 compression;
	u8 clean;
	u8 pad0;
	u32 opt_flags;
	u64 key_version;  /* highest key version issued */
	u64 node_seq;     /* highest node sequence number issued */
	u64 journal_seq;  /* newest journal seq at last clean shutdown / checkpoint */
	u64 next_inum;
	u64 time_base_ns;
	struct bkfs_member members[BKFS_MAX_DEVS];
	struct bkfs_btree_ptr roots[BKFS_SB_ROOTS]; /* btrees 0..7, valid when clean */
	/* node seq ranges handed to nodes of checkpoints that never completed:
	 * scans must ignore nodes inside them (filled on recovery, oldest
	 * entries dropped when full) */
	struct bkfs_seq_range { u64 start, end; } node_seq_blacklist[BKFS_SB_ROOTS + 4];
	u32 fsck_err_count[BKFS_FSCK_ERR_SLOTS];
	u64 fsck_last_run;
	/* roots of btrees BKFS_SB_ROOTS.. (version 2: orphans); all zero in
	 * a version 1 superblock: that btree does not exist yet */
	struct bkfs_btree_ptr roots_ext[BTREE_ID_NR - BKFS_SB_ROOTS];
	/* when clean: 1 + the ring offset of the checkpoint entry written last
	 * (seq journal_seq - 1), so an open reads that entry instead of
	 * scanning the ring; 0 = not recorded (the ring is scanned) */
	u64 clean_cp_pos;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_sb) == 2824, "sb layout");

static inline struct bkfs_btree_ptr *sb_root(const struct bkfs_sb *sb, unsigned id)
{
	return (struct bkfs_btree_ptr *)(id < BKFS_SB_ROOTS ? &sb->roots[id] : &sb->roots_ext[id - BKFS_SB_ROOTS]);
}
_Static_assert(sizeof(struct bkfs_sb) <= BKFS_SB_SIZE, "sb size");

#define NODE_SEQ_RECOVERY_JUMP (1ull << 24)
/* true if seq lies in a blacklisted range (an uncommitted checkpoint's node) */
bool sb_node_seq_blacklisted(const struct bkfs_sb *sb, u64 seq);
void sb_node_seq_blacklist_add(struct bkfs_sb *sb, u64 start, u64 end);

u64 sb_node_magic(const struct bkfs_sb *sb);
u64 sb_journal_magic(const struct bkfs_sb *sb);

/* Copies of every btree node: one per device, and two on a device when
 * there are fewer devices than copies (one device: DUP). */
#define BKFS_DEFAULT_METADATA_REPLICAS 2
static inline unsigned sb_max_metadata_replicas(unsigned nr_devices)
{
	return MIN((unsigned)BKFS_MAX_REPLICAS, MAX(nr_devices, 2u));
}
void sb_to_text(struct printbuf *out, const struct bkfs_sb *sb);
/* Validate a superblock copy read from disk. */
int sb_validate(const struct bkfs_sb *sb, struct printbuf *err);
void sb_csum_set(struct bkfs_sb *sb);

/* Superblock copy locations on a member (byte offsets); returns count. */
unsigned sb_copy_offsets(const struct bkfs_sb *sb, const struct bkfs_member *m, u64 out[3]);
/* Read the best superblock copy of one device. */
int bkfs_read_super(struct blockdev *bd, struct bkfs_sb *sb, unsigned *copies_ok, struct printbuf *err);
/* Write sb to every copy on each of the nr members (NULL entries are missing
 * devices), each copy with its own dev_idx, primaries first (see sb.c).
 * 0 if any copy was written. */
int sb_write_copies(struct blockdev *const *bds, unsigned nr, const struct bkfs_sb *sb);

#endif
