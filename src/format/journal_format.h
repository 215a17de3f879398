/* journal_format.h - journal entries and their records. */
#ifndef BKFS_JOURNAL_FORMAT_H
#define BKFS_JOURNAL_FORMAT_H
#include "bkey_format.h"

/* ---- journal ---- */
#define JENTRY_KEYS 0
#define JENTRY_CHECKPOINT 1
struct bkfs_jentry_hdr {
	u32 csum;        /* crc32c over [4, bytes) */
	u32 version;
	u64 magic;
	u64 seq;
	u32 bytes;       /* whole entry, header included; padded to block size on disk */
	u16 type;
	u16 nr_records;
	u64 checkpoint_seq; /* seq of the newest checkpoint before this entry */
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_jentry_hdr) == 40, "jentry");

/* a record in a journal entry: header followed by a bkey (for JR_KEY / JR_ROOT) */
#define JR_KEY 0       /* insert/overwrite key (type deleted = delete) */
#define JR_ROOT 1      /* checkpoint: btree root pointer (bkey of type btree_ptr) */
#define JR_STATE 2     /* checkpoint: struct bkfs_jstate follows */
struct bkfs_jrec {
	u8 type;
	u8 btree_id;
	u8 level;
	u8 pad;
	u32 bytes;       /* record bytes including this header, multiple of 8 */
} __attribute__((packed));
struct bkfs_jstate {
	u64 key_version;
	u64 node_seq;
	u64 next_inum;
	u64 clock;
} __attribute__((packed));

#endif
