/* bkey_format.h - the on-disk key: format version, magics and size
 * limits, positions, the btree ids, the key types, struct bkey, and the
 * key-type methods. All multi-byte integers are little-endian; structs are
 * packed and their sizes fixed (static asserts). docs/FORMAT.md describes them
 * byte by byte. Depends only on util. */
#ifndef BKFS_BKEY_FORMAT_H
#define BKFS_BKEY_FORMAT_H
#include "../util/util.h"

struct bkfs_ptr; /* extents_format.h */

/* Version 2 added the orphans btree (and its root in the superblock's
 * roots_ext); version 3 the chunk table of btree nodes (node_format.h);
 * version 4 the recorded name after an inode (inode_format.h); version 5
 * the names of a file's other links after it. Readers accept every version from BKFS_FORMAT_VERSION_MIN;
 * writers write BKFS_FORMAT_VERSION, and a read-write open of an older
 * filesystem upgrades its superblock. */
#define BKFS_FORMAT_VERSION 5
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

/* ---- validation and printing (format/bkey.c, format/sb.c) ---- */
struct printbuf;
/* Validate a key in a given btree at a given level. 0 if fine, else
 * -BKFS_E_CORRUPT with a reason in err (if non-NULL). */
int bkey_validate(const struct bkey *k, unsigned btree_id, unsigned level, struct printbuf *err);
void bpos_to_text(struct printbuf *out, struct bpos p);
void bkey_to_text(struct printbuf *out, const struct bkey *k);
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
