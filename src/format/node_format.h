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
	u16 flags;
	u32 nr_keys;
	u32 used_bytes;  /* header + keys */
	u32 pad;
	u64 seq;         /* node sequence number: replacements get higher ones */
	u64 journal_seq; /* newest journal seq whose keys it contains */
	struct bpos min_key, max_key;
} __attribute__((packed));
_Static_assert(sizeof(struct bkfs_node_hdr) == 96, "node hdr");

void node_hdr_to_text(struct printbuf *out, const struct bkfs_node_hdr *h);
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

#endif
