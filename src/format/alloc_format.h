/* alloc_format.h - data types, bucket (alloc) keys and accounting keys. */
#ifndef BKFS_ALLOC_FORMAT_H
#define BKFS_ALLOC_FORMAT_H
#include "bkey_format.h"

/* ---- buckets and alloc keys ---- */
#define BKFS_DATA_TYPES()       \
	x(free, 0)              \
	x(sb, 1)                \
	x(journal, 2)           \
	x(btree, 3)             \
	x(user, 4)              \
	x(cached, 5)            \
	x(parity, 6)            \
	x(stripe, 7)            \
	x(need_gc_gens, 8)      \
	x(need_discard, 9)

enum data_type {
#define x(n, v) DATA_##n = v,
	BKFS_DATA_TYPES()
#undef x
	DATA_NR
};
const char *data_type_str(unsigned t);

#define BUCKET_GC_GEN_MAX 96
#define ALLOC_NEED_DISCARD (1u << 0)
#define ALLOC_NEED_INC_GEN (1u << 1)

/* alloc: position (dev, bucket, 0) */
struct bkfs_alloc {
	u64 journal_seq;  /* last update that changed the bucket's contents */
	u32 flags;
	u8 gen;
	u8 oldest_gen;
	u8 data_type;
	u8 stripe_redundancy;
	u32 dirty_sectors;
	u32 cached_sectors;
	u32 stripe_sectors;
	u32 stripe;
	u64 io_time[2];   /* read, write */
	u64 fragmentation_lru;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_alloc) == 56, "alloc");

static inline int gen_cmp(u8 a, u8 b) { return (s8)(a - b); }
static inline int gen_after(u8 a, u8 b) { int r = gen_cmp(a, b); return r > 0 ? r : 0; }
/* data_type is derived from counts and flags, never set freely. hint = the type
 * the bucket's dirty data has (btree/user/sb/journal/parity). */
unsigned alloc_data_type(const struct bkfs_alloc *a, unsigned hint);
u64 alloc_fragmentation(const struct bkfs_alloc *a, u32 bucket_sectors);

/* ---- accounting: position encodes the counter; value is 3 u64 counters ---- */
#define BKFS_ACCT_TYPES()          \
	x(nr_inodes, 0)            \
	x(persistent_reserved, 1)  \
	x(replicas, 2)             \
	x(dev_data_type, 3)        \
	x(compression, 4)          \
	x(btree, 6)                \
	x(reflink, 9)

enum acct_type {
#define x(n, v) ACCT_##n = v,
	BKFS_ACCT_TYPES()
#undef x
	ACCT_NR
};
const char *acct_type_str(unsigned t);
struct bkfs_accounting {
	s64 v[3];
} __attribute__((packed));
/* pos.inode = type; pos.offset = type-specific id (see acct_pos_*) */
static inline struct bpos acct_pos_nr_inodes(void) { return POS(ACCT_nr_inodes, 0); }
static inline struct bpos acct_pos_btree(unsigned id) { return POS(ACCT_btree, id); }
static inline struct bpos acct_pos_dev_data_type(unsigned dev, unsigned t) { return POS(ACCT_dev_data_type, ((u64)dev << 8) | t); }
/* replicas: data_type, nr_required, bitmask of devices */
static inline struct bpos acct_pos_replicas(unsigned data_type, unsigned nr_required, u32 devmask)
{
	return POS(ACCT_replicas, ((u64)data_type << 56) | ((u64)nr_required << 48) | devmask);
}
static inline struct bpos acct_pos_reserved(unsigned nr_replicas) { return POS(ACCT_persistent_reserved, nr_replicas); }
static inline struct bpos acct_pos_reflink(void) { return POS(ACCT_reflink, 0); }

void alloc_to_text(struct printbuf *out, const struct bkfs_alloc *a);

#endif
