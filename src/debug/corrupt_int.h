/* corrupt_int.h - what the corruption kinds share (not for callers of the
 * engine: they use corrupt.h). The context of one run, the deferred raw
 * writes, the caches of btree nodes and filesystem objects built while the
 * filesystem is open, and the setup helpers the kinds are written with. */
#ifndef BKFS_CORRUPT_INT_H
#define BKFS_CORRUPT_INT_H
#include "corrupt.h"
#include "../fs/fs.h"
#include "../util/darray.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_TARGET CORRUPT_NO_TARGET

struct pending_write {
	unsigned dev;
	u64 off;
	size_t len;
	u8 *buf;
};

/* a written, reachable btree node */
struct dnode {
	u8 id, level;
	bool root;
	u64 seq;
	struct bpos min, max;
	struct bkfs_btree_ptr ptr; /* location */
	u32 nr_keys, used;         /* used = key bytes */
	int parent;                /* index in the node array, -1 for roots */
	u32 pidx;                  /* index of the pointer in the parent */
};

struct dent {
	u64 dir, slot, inum;
	u8 d_type;
	char *name;
};

struct dinode {
	u64 inum;
	struct bkfs_inode v;
};

struct corrupt_ctx {
	const struct corrupt_kind *kind;
	struct corrupt_report *r;
	u64 rng;
	struct blockdev *bds[BKFS_MAX_DEVS]; /* as the caller gave them */
	unsigned nr_bds;
	bool keep_open[BKFS_MAX_DEVS];       /* their keep_open before the run */
	struct bkfs_fs *fs;
	struct blockdev *dev[BKFS_MAX_DEVS]; /* by member index */
	unsigned nr_devs;
	struct bkfs_sb sb;
	u32 node_bytes, bucket_sectors;

	struct pending_write *w;
	size_t nr_w, cap_w;

	u64 *aff_inums;
	size_t nr_aff_inums, cap_aff_inums;
	struct bpos *aff_dirents;
	size_t nr_aff_dirents, cap_aff_dirents;

	/* caches built on demand while the filesystem is open */
	struct dnode *nodes;
	size_t nr_nodes, cap_nodes;
	struct dent *dents;
	size_t nr_dents, cap_dents;
	struct dinode *inodes;
	size_t nr_inodes, cap_inodes;
};

/* the kinds, one function each (named corrupt_<kind>) */
#define x(n, err, needs, session, desc) int corrupt_##n(struct corrupt_ctx *c);
CORRUPT_KINDS()
#undef x

/* ---- corrupt.c: the run ---- */
u64 pick(struct corrupt_ctx *c, u64 n);
/* A message for the report (one line). */
void corrupt_msg(struct corrupt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Say why the image has no target; returns NO_TARGET. */
int no_target(struct corrupt_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int report_fail(struct corrupt_ctx *c, const char *what, int ret);

#define OPEN_RO (BKFS_OPEN_RDONLY | BKFS_OPEN_NOREPLAY | BKFS_OPEN_DEGRADED)
#define OPEN_RW 0
int d_open(struct corrupt_ctx *c, unsigned flags);
/* Close; write = checkpoint and mark clean (after engine-made damage). */
int d_close(struct corrupt_ctx *c, bool write);
/* A read-write session with the dirents and inodes loaded. */
int fs_prepare(struct corrupt_ctx *c);
/* Raw bytes to write once the filesystem is closed (in queue order). */
int queue_write(struct corrupt_ctx *c, unsigned dev, u64 off, const void *buf, size_t len);

/* A seeded key of btree id that ok() accepts, copied to out; -BKFS_E_NOENT
 * when there is none. */
typedef bool (*key_filter)(struct corrupt_ctx *c, const struct bkey *k, const void *arg);
int pick_key(struct corrupt_ctx *c, unsigned id, key_filter ok, const void *arg, struct bkey_buf *out);
/* An edited key must (want_valid) or must not validate; when it does not,
 * its complaint is appended to why (may be NULL). */
int key_check(struct corrupt_ctx *c, const struct bkey *k, unsigned id, bool want_valid, struct printbuf *why);
/* One transaction: update k / delete pos / add or remove a dirent. */
int commit_one(struct bkfs_fs *fs, unsigned id, const struct bkey *k);
int commit_delete(struct bkfs_fs *fs, unsigned id, struct bpos pos);
int commit_dirent_add(struct bkfs_fs *fs, u64 dir, const char *name, u64 inum, u8 d_type);
int commit_dirent_remove(struct bkfs_fs *fs, u64 dir, const char *name);
int inode_lookup(struct bkfs_fs *fs, u64 inum, struct bkey_buf *kb);

/* ---- corrupt_objs.c: btree nodes ---- */
/* Every reachable, written node of every btree (pre-order), in c->nodes. */
int walk_nodes(struct corrupt_ctx *c);
u32 nr_children(struct corrupt_ctx *c, int idx);
int child_at(struct corrupt_ctx *c, int parent, u32 pidx);
bool fs_btree(unsigned id);
void node_text(struct printbuf *out, const struct dnode *n);
/* A seeded node that ok() accepts (NULL: none, after no_target(none)). */
typedef bool (*node_filter)(struct corrupt_ctx *c, const struct dnode *n);
struct dnode *pick_node(struct corrupt_ctx *c, node_filter ok, const char *none);
static inline struct bkfs_node_hdr *hdr(u8 *buf) { return (struct bkfs_node_hdr *)buf; }
/* Raw node bytes through any replica (NULL on error). */
u8 *node_read(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p);
/* Queue buf for every replica of a node. */
int node_queue(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p, const u8 *buf);
/* Recompute buf's checksum (it still validates) and queue it. */
int node_commit(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p, u8 *buf);
/* Replace (nk) or delete (nk == NULL) the key at pos in its leaf on disk. */
int edit_leaf_key(struct corrupt_ctx *c, unsigned id, struct bpos pos, const struct bkey *nk);
/* Flip bytes of a node so that it no longer validates. */
void node_damage(struct corrupt_ctx *c, u8 *buf);
int node_chunks_damage(struct corrupt_ctx *c, u8 *buf);
int node_destroy(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p);
/* Read a node, let edit() change it, and queue it (it still validates). */
int node_rewrite(struct corrupt_ctx *c, const struct bkfs_btree_ptr *p,
		 void (*edit)(struct corrupt_ctx *c, u8 *buf, const void *arg), const void *arg);
enum node_bound { BOUND_MIN, BOUND_MAX };
/* Move one bound of node n (its header and its pointer in parent) to pos;
 * contents (NULL: n as it is) is what n then holds. */
int node_bound_set(struct corrupt_ctx *c, const struct dnode *n, const struct dnode *parent, enum node_bound which,
		   struct bpos pos, const u8 *contents);

/* ---- corrupt_objs.c: filesystem objects ---- */
int load_dents(struct corrupt_ctx *c);
int load_inodes(struct corrupt_ctx *c);
struct dinode *inode_find(struct corrupt_ctx *c, u64 inum);
size_t dents_of(struct corrupt_ctx *c, u64 dir);
struct dent *dent_of_inum(struct corrupt_ctx *c, u64 inum);
bool is_dir(struct corrupt_ctx *c, u64 inum);
void path_of(struct corrupt_ctx *c, u64 inum, struct printbuf *out);
u64 unused_inum(struct corrupt_ctx *c);
void caches_free(struct corrupt_ctx *c);
/* regular files with one link and one dirent; min_size in bytes */
size_t file_candidates(struct corrupt_ctx *c, u64 min_size, struct dent ***out);
/* A seeded regular file with a single link of min_size bytes or more (NULL:
 * none; then no_target(none) unless none is NULL). */
struct dent *pick_file(struct corrupt_ctx *c, u64 min_size, const char *none);
void file_text(struct corrupt_ctx *c, struct dent *d);
/* What may change: an inode and what is below it, a dirent and what is
 * below it; compute_affects turns them into "affects:" lines. */
void aff_inum(struct corrupt_ctx *c, u64 inum);
void aff_dirent(struct corrupt_ctx *c, struct bpos p);
int compute_affects(struct corrupt_ctx *c);

/* ---- corrupt_ptrs.c: extents shared with other kinds ---- */
struct ext_target {
	struct bkey_buf k;
	unsigned ptr;
};
/* A seeded extent whose first pointer is a plain dirty one (striped: an
 * erasure-coded one); -BKFS_E_NOENT when there is none. */
int pick_extent_ptr(struct corrupt_ctx *c, bool prefer_sole, bool striped, struct ext_target *t, bool *sole_out);
void ext_damaged_text(struct corrupt_ctx *c, struct ext_target *t, const char *what);

#endif
