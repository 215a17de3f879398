/* node_format.h - a btree node on disk: its header, validation, and
 * the raw node editors. */
#ifndef BKFS_NODE_FORMAT_H
#define BKFS_NODE_FORMAT_H
#include "bkey_format.h"

/* ---- btree node on disk ---- */
struct bkfs_node_hdr {
	u32 csum;        /* crc32c over [4, used_bytes) */
	u32 version;
	u64 magic;       /* sb magic derived from uuid ^ BKFS_NODE_MAGIC_XOR */
	u8 btree_id;
	u8 level;
	u16 flags;       /* written 0 */
	u32 nr_keys;
	u32 used_bytes;  /* header + keys */
	u8 chunk_shift;  /* 0: no chunk table (format version 1, 2); else log2 of its chunk size */
	u8 pad[3];
	u64 seq;         /* node sequence number: replacements get higher ones */
	u64 journal_seq; /* newest journal seq whose keys it contains */
	struct bpos min_key, max_key;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_node_hdr) == 96, "node hdr");

/* ---- the chunk table (format version 3) ----
 * A node written with a chunk_shift carries, right after its keys, one
 * entry per chunk of 1 << chunk_shift bytes of [0, used_bytes) and a
 * trailer. It is what lets the checker keep the keys of a node whose
 * checksum fails: the chunks whose own checksums still match hold keys as
 * they were written, and each chunk says where its first key starts, so 64
 * damaged bytes cost the keys of one chunk, not the node (node_salvage). */
#define NODE_CHUNK_SHIFT 10 /* what writers use: 1 KiB chunks */
#define NODE_CHUNK_SHIFT_MIN 9
#define NODE_CHUNK_SHIFT_MAX 16

struct bkfs_node_chunk {
	u32 csum;      /* crc32c over the chunk's bytes of [4, used_bytes) */
	u32 first_key; /* node offset of the first key starting in the chunk; 0: none */
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_node_chunk) == 8, "node chunk");

struct bkfs_node_chunk_trailer {
	u32 csum;        /* crc32c over the entries and the trailer from offset 4 */
	u32 used_bytes;  /* the header's, so that a damaged header is noticed */
	u32 nr_keys;
	u32 pad;
	u64 seq;
	u64 journal_seq;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_node_chunk_trailer) == 32, "node chunk trailer");

/* bytes of the chunk table of a node whose keys end at used */
static inline u32 node_chunk_table_bytes(u32 used, unsigned shift)
{
	return ((used + (1u << shift) - 1) >> shift) * (u32)sizeof(struct bkfs_node_chunk) +
	       (u32)sizeof(struct bkfs_node_chunk_trailer);
}
/* the most a node of node_bytes keeps for its chunk table */
static inline u32 node_chunk_table_max(size_t node_bytes)
{
	return node_chunk_table_bytes((u32)node_bytes, NODE_CHUNK_SHIFT);
}
/* bytes of a node image that are written and read: header, keys, and the
 * chunk table when there is one (at most node_bytes) */
u32 node_image_bytes(const struct bkfs_node_hdr *h, size_t node_bytes);

void node_hdr_to_text(struct printbuf *out, const struct bkfs_node_hdr *h);
/* Node: validate header + checksum + every key (buf holds node_bytes); any
 * invalid key fails the node. */
int node_validate(const void *buf, size_t node_bytes, u64 magic, struct printbuf *err);
/* The same, except that a leaf key failing bkey_validate() is only counted in
 * *nr_invalid: header, checksum and key framing (sizes, order, range) stay
 * fatal, and so does any invalid key of an interior node. Readers skip the
 * invalid keys; fsck deletes them (bkey_invalid). */
int node_validate_soft(const void *buf, size_t node_bytes, u64 magic, u32 *nr_invalid, struct printbuf *err);
/* Seal a node image: its chunk table (when it is of the current version and
 * the table fits in node_bytes; else chunk_shift is cleared), then its
 * checksum. */
void node_csum_set(void *buf, size_t node_bytes);

/* What node_salvage kept of a node that fails validation. */
struct node_salvage {
	u32 nr_chunks, bad_chunks;
	u32 kept, lost;         /* keys; lost = the node's nr_keys - kept */
	u64 journal_seq;        /* the node's (from the trailer) */
	bool header_bad;        /* chunk 0 (the header) failed: its fields came from the trailer */
	bool table_bad;         /* the table failed, the node's checksum held: every key kept */
	struct node_lost_range { struct bpos min, max; } *lost_ranges; /* positions whose keys are lost */
	u32 nr_lost_ranges;
};
/* Salvage a leaf image that fails validation: when its chunk table checks
 * out (where the header says, or where a search finds it; and says the node
 * is seq, of btree_id at level 0), call keep() for every key lying wholly in
 * chunks whose checksums match, in order, and record in *s the position
 * ranges (within min..max) whose keys are lost; when only the table is
 * damaged and the node's checksum holds, keep every key. Returns 0, or
 * -BKFS_E_CORRUPT with the reason in err when nothing can be trusted (no
 * table, or a damaged table over damaged keys). Free s->lost_ranges with
 * node_salvage_exit(). */
int node_salvage(const void *buf, size_t node_bytes, u64 magic, unsigned btree_id, u64 seq, struct bpos min,
		 struct bpos max, int (*keep)(void *arg, const struct bkey *k), void *arg, struct node_salvage *s,
		 struct printbuf *err);
void node_salvage_exit(struct node_salvage *s);
/* Copies of a node are identical byte for byte: where dst's chunk fails its
 * checksum and src's (with the same sound chunk table) matches, take src's.
 * Returns the chunks mended (0 when the tables differ or are damaged). */
u32 node_chunks_mend(void *dst, const void *src, size_t node_bytes);
void node_salvage_to_text(struct printbuf *out, const struct node_salvage *s);
/* Raw node images (bkfs debug corrupt, tests): the keys of a node buffer of
 * node_bytes whose key framing is valid, edited in place. Edits keep
 * used_bytes and nr_keys right and zero the bytes they free; the caller
 * recomputes the checksum (node_csum_set). */
struct bkey *node_buf_key(void *buf, u32 idx);
int node_buf_find(const void *buf, struct bpos p); /* index of the key at p, or -1 */
void node_buf_delete(void *buf, size_t node_bytes, u32 idx);
/* -BKFS_E_NOSPC if the new key does not fit */
int node_buf_replace(void *buf, size_t node_bytes, u32 idx, const struct bkey *k);

#endif
