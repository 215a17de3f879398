/* format.h - the on-disk encoding of every bkfs object.
 * All multi-byte integers are little-endian; structs are packed and their sizes
 * are fixed (checked by static asserts). docs/FORMAT.md describes them byte by
 * byte. Depends only on util. */
#ifndef BKFS_FORMAT_H
#define BKFS_FORMAT_H
#include "../util/util.h"

/* Version 2 added the orphans btree (and its root in the superblock's
 * roots_ext). Readers accept every version from BKFS_FORMAT_VERSION_MIN;
 * writers write BKFS_FORMAT_VERSION, and a read-write open of an older
 * filesystem upgrades its superblock. */
#define BKFS_FORMAT_VERSION 2
#define BKFS_FORMAT_VERSION_MIN 1
static inline bool format_version_ok(u32 v) { return v >= BKFS_FORMAT_VERSION_MIN && v <= BKFS_FORMAT_VERSION; }
#define BKFS_SB_MAGIC 0x53464b42ull /* "BKFS" */
#define BKFS_SB_MAGIC2 0x31766f6c62726f73ull
#define BKFS_NODE_MAGIC_XOR 0x45444f4e5346424bull /* "BKFSNODE" */
#define BKFS_JOURNAL_MAGIC_XOR 0x4c4e524a5346424bull
#define SECTOR_SIZE 512
#define SECTOR_SHIFT 9

#define BKFS_SB_OFFSET 4096ull          /* primary superblock, byte offset */
#define BKFS_SB_BACKUP_OFFSET 65536ull  /* second copy, in bucket 0 */
#define BKFS_SB_SIZE 4096u              /* bytes reserved for each copy */
#define BKFS_MAX_DEVS 8
#define BKFS_MAX_REPLICAS 4
#define BKFS_DEV_NONE 255

/* ---- positions ---- */
struct bpos {
	u64 inode;
	u64 offset;
	u32 snapshot;
	u32 pad; /* always zero, ignored by comparisons */
} __attribute__((packed));
_Static_assert(sizeof(struct bpos) == 24, "bpos");

#define POS(i, o) ((struct bpos){ .inode = (i), .offset = (o) })
#define POS_MIN ((struct bpos){ 0, 0, 0, 0 })
#define POS_MAX ((struct bpos){ UINT64_MAX, UINT64_MAX, UINT32_MAX, 0 })

static inline int bpos_cmp(struct bpos a, struct bpos b)
{
	if (a.inode != b.inode) return a.inode < b.inode ? -1 : 1;
	if (a.offset != b.offset) return a.offset < b.offset ? -1 : 1;
	if (a.snapshot != b.snapshot) return a.snapshot < b.snapshot ? -1 : 1;
	return 0;
}
static inline bool bpos_eq(struct bpos a, struct bpos b) { return !bpos_cmp(a, b); }
static inline struct bpos bpos_min(struct bpos a, struct bpos b) { return bpos_cmp(a, b) <= 0 ? a : b; }
static inline struct bpos bpos_max(struct bpos a, struct bpos b) { return bpos_cmp(a, b) >= 0 ? a : b; }
struct bpos bpos_successor(struct bpos p);   /* POS_MAX stays POS_MAX */
struct bpos bpos_predecessor(struct bpos p); /* POS_MIN stays POS_MIN */

/* ---- btrees ---- */
/* x(name, id, flags, leaf key types): the key types a leaf of the btree may
 * hold besides deleted and whiteout (interior nodes hold btree_ptr only).
 * The key-type bits name enum bkey_type below: use them after it. */
#define BKFS_BTREE_IDS()                                                        \
	x(extents, 0, BTREE_IS_extents,                                         \
	  KEY_TYPE_BIT(extent) | KEY_TYPE_BIT(inline_data) |                    \
	  KEY_TYPE_BIT(reservation) | KEY_TYPE_BIT(reflink_p) |                 \
	  KEY_TYPE_BIT(error))                                                  \
	x(inodes, 1, 0, KEY_TYPE_BIT(inode))                                    \
	x(dirents, 2, 0, KEY_TYPE_BIT(dirent))                                  \
	x(xattrs, 3, 0, KEY_TYPE_BIT(xattr))                                    \
	x(alloc, 4, 0, KEY_TYPE_BIT(alloc))                                     \
	x(reflink, 5, BTREE_IS_extents,                                         \
	  KEY_TYPE_BIT(reflink_v) | KEY_TYPE_BIT(error))                        \
	x(stripes, 6, 0, KEY_TYPE_BIT(stripe))                                  \
	x(accounting, 7, 0, KEY_TYPE_BIT(accounting))                           \
	x(orphans, 8, 0, KEY_TYPE_BIT(orphan))

enum btree_id {
#define x(n, v, ...) BTREE_ID_##n = v,
	BKFS_BTREE_IDS()
#undef x
	BTREE_ID_NR
};
/* btree flags (the x-macro's third column) */
enum {
	BTREE_IS_extents = 1 << 0, /* keyed by end position, keys have a size */
};
const char *btree_id_str(unsigned id);
int btree_id_parse(const char *s); /* -1 if unknown */
bool btree_is_extents(unsigned id);
#define BTREE_MAX_DEPTH 8

/* ---- key types ---- */
#define BKFS_KEY_TYPES()         \
	x(deleted, 0)            \
	x(whiteout, 1)           \
	x(error, 2)              \
	x(btree_ptr, 5)          \
	x(extent, 6)             \
	x(reservation, 7)        \
	x(inode, 8)              \
	x(dirent, 9)             \
	x(xattr, 10)             \
	x(inline_data, 11)       \
	x(alloc, 12)             \
	x(stripe, 14)            \
	x(reflink_p, 15)         \
	x(reflink_v, 16)         \
	x(orphan, 17)            \
	x(accounting, 34)

enum bkey_type {
#define x(n, v) KEY_TYPE_##n = v,
	BKFS_KEY_TYPES()
#undef x
	KEY_TYPE_MAX = 64
};
#define KEY_TYPE_BIT(t) (1ull << KEY_TYPE_##t)
const char *key_type_str(unsigned t);

/* Key header. The value follows immediately; the whole key is u64s * 8 bytes. */
struct bkey {
	u16 u64s;     /* header + value, in u64s */
	u8 type;
	u8 flags;
	u32 size;     /* extents: length in sectors; keyed by end position */
	u64 version;  /* strictly increasing per update; sb records the highest */
	struct bpos p;
} __attribute__((packed));
_Static_assert(sizeof(struct bkey) == 40, "bkey");
#define BKEY_U64s (sizeof(struct bkey) / 8)
#define BKEY_VAL_MAX 4096

static inline void *bkey_val(const struct bkey *k) { return (u8 *)k + sizeof(struct bkey); }
static inline size_t bkey_bytes(const struct bkey *k) { return (size_t)k->u64s * 8; }
static inline size_t bkey_val_bytes(const struct bkey *k) { return bkey_bytes(k) - sizeof(struct bkey); }
static inline struct bpos bkey_start_pos(const struct bkey *k)
{
	struct bpos p = k->p;
	p.offset -= k->size;
	return p;
}
static inline bool bkey_deleted(const struct bkey *k)
{
	return k->type == KEY_TYPE_deleted || k->type == KEY_TYPE_whiteout;
}
/* A key with inline storage for its value (for building keys on the stack). */
struct bkey_buf {
	union {
		struct bkey k;
		u64 _u64s[BKEY_U64s + BKEY_VAL_MAX / 8];
	};
};
void bkey_init(struct bkey *k, unsigned type, struct bpos p, size_t val_bytes);

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

/* inode: position (0, inum, 0) */
struct bkfs_inode {
	u64 size;
	u64 sectors;      /* allocated sectors (sum of extent sizes) */
	u64 atime_ns, mtime_ns, ctime_ns;
	u64 rdev;
	u64 parent;       /* directories: parent directory inum */
	u32 mode;
	u32 uid, gid;
	u32 nlink;
	u32 flags;
	u32 pad;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_inode) == 80, "inode");
#define INODE_MODE_BITS 0177777u /* file type and permissions: no other bit is valid */
#define BKFS_ROOT_INO 4096ull
#define BKFS_FIRST_INO 4097ull

/* dirent: position (dir inum, hash(name), 0); collisions probe offset+1 */
struct bkfs_dirent {
	u64 inum;
	u8 d_type;
	u8 name_len;
	u8 name[];
} __attribute__((packed));
#define BKFS_NAME_MAX 255

/* xattr: position (inum, hash(name), 0) */
struct bkfs_xattr {
	u16 val_len;
	u8 name_len;
	u8 pad;
	u8 data[]; /* name then value */
} __attribute__((packed));

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

/* ---- btree node on disk ---- */
struct bkfs_node_hdr {
	u32 csum;        /* crc32c over [4, used_bytes) */
	u32 version;
	u64 magic;       /* sb magic derived from uuid ^ BKFS_NODE_MAGIC_XOR */
	u8 btree_id;
	u8 level;
	u16 flags;
	u32 nr_keys;
	u32 used_bytes;  /* header + keys */
	u32 pad;
	u64 seq;         /* node sequence number: replacements get higher ones */
	u64 journal_seq; /* newest journal seq whose keys it contains */
	struct bpos min_key, max_key;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_node_hdr) == 96, "node hdr");

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

/* ---- validation and printing (format/bkey.c, format/sb.c) ---- */
struct printbuf;
/* Validate a key in a given btree at a given level. 0 if fine, else
 * -BKFS_E_CORRUPT with a reason in err (if non-NULL). */
int bkey_validate(const struct bkey *k, unsigned btree_id, unsigned level, struct printbuf *err);
void bpos_to_text(struct printbuf *out, struct bpos p);
void bkey_to_text(struct printbuf *out, const struct bkey *k);
/* Copies of every btree node: one per device, and two on a device when
 * there are fewer devices than copies (one device: DUP). */
#define BKFS_DEFAULT_METADATA_REPLICAS 2
static inline unsigned sb_max_metadata_replicas(unsigned nr_devices)
{
	return MIN((unsigned)BKFS_MAX_REPLICAS, MAX(nr_devices, 2u));
}

void ptr_to_text(struct printbuf *out, const struct bkfs_ptr *p);
void alloc_to_text(struct printbuf *out, const struct bkfs_alloc *a);
void node_hdr_to_text(struct printbuf *out, const struct bkfs_node_hdr *h);
void sb_to_text(struct printbuf *out, const struct bkfs_sb *sb);
/* Validate a superblock copy read from disk. */
int sb_validate(const struct bkfs_sb *sb, struct printbuf *err);
void sb_csum_set(struct bkfs_sb *sb);
/* Node: validate header + checksum + every key (buf holds node_bytes); any
 * invalid key fails the node. */
int node_validate(const void *buf, size_t node_bytes, u64 magic, struct printbuf *err);
/* The same, except that a leaf key failing bkey_validate() is only counted in
 * *nr_invalid: header, checksum and key framing (sizes, order, range) stay
 * fatal, and so does any invalid key of an interior node. Readers skip the
 * invalid keys; fsck deletes them (bkey_invalid). */
int node_validate_soft(const void *buf, size_t node_bytes, u64 magic, u32 *nr_invalid, struct printbuf *err);
void node_csum_set(void *buf);
/* Raw node images (bkfs debug corrupt, tests): the keys of a node buffer of
 * node_bytes whose key framing is valid, edited in place. Edits keep
 * used_bytes and nr_keys right and zero the bytes they free; the caller
 * recomputes the checksum (node_csum_set). */
struct bkey *node_buf_key(void *buf, u32 idx);
int node_buf_find(const void *buf, struct bpos p); /* index of the key at p, or -1 */
void node_buf_delete(void *buf, size_t node_bytes, u32 idx);
/* -BKFS_E_NOSPC if the new key does not fit */
int node_buf_replace(void *buf, size_t node_bytes, u32 idx, const struct bkey *k);

/* extent helpers */
static inline struct bkfs_extent *bkey_extent(const struct bkey *k) { return bkey_val(k); }
static inline size_t extent_val_bytes(unsigned nr_ptrs) { return sizeof(struct bkfs_extent) + nr_ptrs * sizeof(struct bkfs_ptr); }
/* pointers of a key that references buckets (btree_ptr, extent, reflink_v, stripe):
 * returns count and sets *ptrs; 0 for others */
unsigned bkey_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs);
/* Replace k's pointers with the nr at p (k must have room for them). False,
 * with k unchanged, for a type whose pointers cannot be dropped (stripes). */
bool bkey_set_ptrs(struct bkey *k, const struct bkfs_ptr *p, unsigned nr);

/* ---- key-type methods (bkey_methods.c) ----
 * One entry per key type of BKFS_KEY_TYPES, so that adding a type means its
 * own functions and one line of the table. A NULL method: the type has
 * nothing to do there. Marking lives in the alloc layer's own table. */
struct bkey_ops {
	const char *name;
	/* bytes of value val_to_text needs before it reads a field */
	size_t min_val_size;
	/* the value (the header is checked by bkey_validate first) */
	int (*validate)(const struct bkey *k, struct printbuf *err);
	void (*val_to_text)(struct printbuf *out, const struct bkey *k);
	/* the pointer array inside the value, clipped to what the value holds */
	unsigned (*ptrs)(const struct bkey *k, struct bkfs_ptr **ptrs);
	void (*set_ptrs)(struct bkey *k, const struct bkfs_ptr *p, unsigned nr);
	/* extents: keep the value in step with a cut of the key's front by
	 * `sectors`, or of its back (k->size already reduced) */
	void (*cut_front)(struct bkey *k, u64 sectors);
	void (*cut_back)(struct bkey *k);
};
/* the entry of key type t; one with no name and no methods if t is unknown */
const struct bkey_ops *bkey_type_ops(unsigned t);

#endif
