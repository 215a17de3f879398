/* extents_format.h - pointers, btree pointers, extents, inline data, reservations, stripes and
 * reflink keys, and the helpers over the pointers of a key. */
#ifndef BKFS_EXTENTS_FORMAT_H
#define BKFS_EXTENTS_FORMAT_H
#include "bkey_format.h"

/* ---- pointers ---- */
#define PTR_CACHED (1u << 0)
#define PTR_HAS_STRIPE (1u << 1)
struct bkfs_ptr {
	u64 offset;       /* device sector */
	u32 stripe_idx;   /* valid with PTR_HAS_STRIPE */
	u8 dev;
	u8 gen;
	u8 flags;
	u8 stripe_block;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_ptr) == 16, "ptr");

/* btree_ptr: position = child's max_key. Fixed size: always 4 pointer slots. */
#define BTREE_PTR_RANGE_UPDATED (1u << 0)
struct bkfs_btree_ptr {
	u64 seq;              /* child's node sequence number */
	struct bpos min_key;  /* child's min_key */
	u8 nr_ptrs;           /* 0 = node not yet written (in memory only) */
	u8 level;             /* child's level */
	u16 flags;
	u32 pad;
	struct bkfs_ptr ptrs[BKFS_MAX_REPLICAS];
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_btree_ptr) == 104, "btree_ptr");

/* extent: data in buckets. The checksum covers csum_sectors sectors starting at
 * each ptr's offset; the live data is [offset, offset + key.size) inside it. */
#define CSUM_NONE 0
#define CSUM_CRC32C 1
struct bkfs_extent {
	u32 csum;
	u32 csum_sectors;
	u32 offset;
	u8 nr_ptrs;
	u8 csum_type;
	u8 compression;
	u8 pad;
	struct bkfs_ptr ptrs[];
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_extent) == 16, "extent");

/* inline_data (extents btree): small file data stored in the key. */
struct bkfs_inline_data {
	u32 bytes;
	u32 pad;
	u8 data[];
} __attribute__((packed));

/* orphan (orphans btree): position (0, inum, 0), no value. The inode lost
 * its last link (nlink 0) while still open; it and its data go at its last
 * close, or at the next read-write mount after a crash. */

struct bkfs_reservation {
	u32 nr_replicas;
	u32 pad;
} __attribute__((packed));

/* stripe: position (0, idx, 0) */
struct bkfs_stripe {
	u16 sectors;      /* per block */
	u8 algorithm;
	u8 nr_blocks;
	u8 nr_redundant;
	u8 pad[3];
	struct bkfs_ptr ptrs[]; /* nr_blocks, then u16 block_sectors[nr_blocks] */
} __attribute__((packed));
#define STRIPE_MAX_BLOCKS 16
#define STRIPE_ALG_RS_CAUCHY 0 /* Reed-Solomon, Cauchy matrix over GF(2^8) (ISA-L) */
size_t stripe_val_bytes(unsigned nr_blocks);
static inline u16 *stripe_block_sectors(struct bkfs_stripe *s)
{
	return (u16 *)&s->ptrs[s->nr_blocks];
}
/* no sector counted in any data block (parity blocks are not counted) */
static inline bool stripe_data_empty(const struct bkfs_stripe *s)
{
	const u16 *bs = (const u16 *)&s->ptrs[s->nr_blocks];
	for (unsigned b = 0; b + s->nr_redundant < s->nr_blocks; b++)
		if (bs[b])
			return false;
	return true;
}

/* reflink pointer (extents btree): references [idx - front_pad, idx + size + back_pad) */
struct bkfs_reflink_p {
	u64 idx;
	u32 front_pad;
	u32 back_pad;
} __attribute__((packed));

/* indirect extent (reflink btree, inode 0) */
struct bkfs_reflink_v {
	u64 refcount;
	struct bkfs_extent e; /* followed by ptrs */
} __attribute__((packed));

void ptr_to_text(struct printbuf *out, const struct bkfs_ptr *p);
/* extent helpers */
static inline struct bkfs_extent *bkey_extent(const struct bkey *k) { return bkey_val(k); }
static inline size_t extent_val_bytes(unsigned nr_ptrs) { return sizeof(struct bkfs_extent) + nr_ptrs * sizeof(struct bkfs_ptr); }
/* pointers of a key that references buckets (btree_ptr, extent, reflink_v, stripe):
 * returns count and sets *ptrs; 0 for others */
unsigned bkey_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs);
/* Replace k's pointers with the nr at p (k must have room for them). False,
 * with k unchanged, for a type whose pointers cannot be dropped (stripes). */
bool bkey_set_ptrs(struct bkey *k, const struct bkfs_ptr *p, unsigned nr);

#endif
