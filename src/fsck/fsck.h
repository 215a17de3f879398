/* fsck.h - the checker and garbage collector.
 *
 * Flow (fsck.c: fsck_devs(), which bkfs_fsck() runs on the image files):
 *   superblock -> journal (open read-only with in-memory replay: the overlay)
 *   -> check_topology (+ scan_for_btree_nodes on demand) -> check_allocations
 *   (mark and sweep) -> check_alloc_info -> filesystem passes -> gc_gens
 *   -> fsck_commit_repairs().
 * Repairs are made in memory (btree_insert_key / bucket_update / acct) and,
 * in -y/-p mode, written at the end by fsck_commit_repairs() with one atomic
 * checkpoint: killing fsck at any write leaves either the old or the
 * repaired filesystem.
 *
 * Every finding has a stable name and number (FSCK_ERRORS below). */
#ifndef BKFS_FSCK_H
#define BKFS_FSCK_H
#include "../fs/super.h"
#include "../btree/node.h"

/* flags: PREEN = safe to fix under -p without a person */
#define FSCK_PREEN (1u << 0)
/* NOFIX = no mode repairs it (data on a missing device): always left */
#define FSCK_NOFIX (1u << 1)

/* x(name, number, flags) - numbers are stable forever; never reuse one: the
 * superblock counts findings by number (fsck_err_count[]) and the --json
 * report names them. Retired, never to be given out again: 39 (a duplicate
 * of btree_node_topology_interior_node_empty), 131 (alloc_key_need_inc_gen_stuck:
 * a pending gen bump on an empty bucket is the engine's normal resting state,
 * see check_alloc_info). */
#define FSCK_ERRORS()                                                   \
	/* superblock */                                                \
	x(sb_copy_bad, 1, FSCK_PREEN)                                   \
	x(sb_copy_stale, 2, FSCK_PREEN)                                 \
	x(sb_member_bitmap_bad, 3, FSCK_PREEN)                          \
	/* journal */                                                   \
	x(journal_entry_bad_csum, 10, FSCK_PREEN)                       \
	x(journal_entries_after_gap, 11, FSCK_PREEN)                    \
	x(journal_no_checkpoint, 12, 0)                                 \
	x(journal_entry_torn, 13, FSCK_PREEN)                           \
	x(journal_clean_checkpoint_missing, 14, FSCK_PREEN)             \
	/* topology (reference §8 #1-10) */                             \
	x(btree_node_unreadable, 30, 0)                                 \
	x(btree_node_topology_bad_min_key, 31, 0)                       \
	x(btree_node_topology_bad_max_key, 32, 0)                       \
	x(btree_node_topology_overwritten_by_next_node, 33, 0)          \
	x(btree_node_topology_overwritten_by_prev_node, 34, 0)          \
	x(btree_node_topology_interior_node_empty, 35, 0)               \
	x(btree_root_unreadable_and_scan_found_nothing, 36, 0)          \
	x(btree_root_bad_min_key, 37, 0)                                \
	x(btree_root_bad_max_key, 38, 0)                                \
	x(btree_node_read_error, 40, 0)                                 \
	x(btree_root_unreadable, 41, 0)                                 \
	x(btree_node_stale_replaced_by_scan, 42, 0)                     \
	x(btree_node_gap_filled_from_scan, 43, 0)                       \
	x(bkey_invalid, 44, 0)                                          \
	x(btree_node_copy_bad, 45, FSCK_PREEN)                          \
	x(btree_node_keys_salvaged, 46, 0)                              \
	/* keys and pointers (reference §8 #11-23) */                   \
	x(bkey_version_in_future, 80, FSCK_PREEN)                       \
	x(btree_bitmap_not_marked, 81, FSCK_PREEN)                      \
	x(ptr_to_invalid_device, 82, 0)                                 \
	x(ptr_to_invalid_bucket, 83, 0)                                 \
	x(ptr_to_missing_alloc_key, 84, 0)                              \
	x(ptr_gen_newer_than_bucket_gen, 85, 0)                         \
	x(ptr_too_stale, 86, 0)                                         \
	x(stale_dirty_ptr, 87, 0)                                       \
	x(ptr_bucket_data_type_mismatch, 88, 0)                         \
	x(ptr_to_missing_stripe, 89, 0)                                 \
	x(ptr_to_incorrect_stripe, 90, 0)                               \
	x(bucket_sector_count_overflow, 91, 0)                          \
	x(bucket_metadata_type_mismatch, 92, 0)                         \
	x(reflink_p_to_missing_reflink_v, 93, 0)                        \
	x(extent_all_ptrs_dropped, 94, 0)                               \
	/* alloc sweep (reference §8 #24-31) */                         \
	x(alloc_key_data_type_wrong, 106, FSCK_PREEN)                   \
	x(alloc_key_gen_wrong, 107, FSCK_PREEN)                         \
	x(alloc_key_dirty_sectors_wrong, 108, FSCK_PREEN)               \
	x(alloc_key_cached_sectors_wrong, 109, FSCK_PREEN)              \
	x(alloc_key_stripe_wrong, 110, FSCK_PREEN)                      \
	x(alloc_key_stripe_redundancy_wrong, 111, FSCK_PREEN)           \
	x(alloc_key_stripe_sectors_wrong, 112, FSCK_PREEN)              \
	x(alloc_key_fragmentation_lru_wrong, 113, FSCK_PREEN)           \
	x(alloc_key_missing, 114, FSCK_PREEN)                           \
	x(alloc_key_oldest_gen_wrong, 115, FSCK_PREEN)                  \
	/* other sweeps (reference §8 #32-34) */                        \
	x(stripe_sector_count_wrong, 120, FSCK_PREEN)                   \
	x(reflink_v_refcount_wrong, 121, FSCK_PREEN)                    \
	x(accounting_mismatch, 122, FSCK_PREEN)                         \
	/* alloc info */                                                \
	x(alloc_key_journal_seq_in_future, 130, FSCK_PREEN)             \
	x(alloc_key_need_discard_wrong, 132, FSCK_PREEN)                \
	/* filesystem */                                                \
	x(inode_invalid, 150, 0)                                        \
	x(root_inode_missing, 151, 0)                                   \
	x(dirent_to_missing_inode, 152, 0)                              \
	x(dirent_d_type_wrong, 153, FSCK_PREEN)                         \
	x(inode_unreachable, 154, 0)                                    \
	x(inode_link_count_wrong, 155, FSCK_PREEN)                      \
	x(dir_multiple_links, 156, 0)                                   \
	x(dir_loop, 157, 0)                                             \
	x(dir_parent_wrong, 158, FSCK_PREEN)                            \
	x(inode_i_size_wrong, 159, 0)                                   \
	x(inode_i_sectors_wrong, 160, FSCK_PREEN)                       \
	x(extent_for_missing_inode, 161, 0)                             \
	x(xattr_for_missing_inode, 162, 0)                              \
	x(dirent_in_non_dir, 163, 0)                                    \
	x(lost_found_missing, 164, 0)                                   \
	x(orphan_entry_for_missing_inode, 165, FSCK_PREEN)              \
	x(orphan_entry_for_linked_inode, 166, FSCK_PREEN)               \
	x(inode_unlinked_not_orphan, 167, 0)                            \
	x(inode_data_lost, 168, 0)                                      \
	x(dir_inode_lost, 169, 0)                                       \
	x(inode_xattrs_lost, 170, 0)                                    \
	x(inode_name_bad, 171, FSCK_PREEN)                              \
	x(inode_name_wrong, 172, FSCK_PREEN)                            \
	x(inode_link_name_wrong, 173, FSCK_PREEN)                       \
	/* gc_gens */                                                   \
	x(gc_gens_ptr_dropped, 180, FSCK_PREEN)                         \
	/* degraded (a member missing) */                               \
	x(data_unreadable, 190, FSCK_NOFIX)

enum fsck_err_id {
#define x(n, num, f) FSCK_ERR_##n,
	FSCK_ERRORS()
#undef x
	FSCK_ERR_NR
};
struct fsck_err_info { const char *name; unsigned num, flags; };
extern const struct fsck_err_info fsck_err_table[FSCK_ERR_NR];

enum fsck_mode { FSCK_MODE_NO, FSCK_MODE_PREEN, FSCK_MODE_YES };

/* The exit status of bkfs fsck: bits, combined, as fsck(8) defines them
 * (README.md documents them; bkfs never asks for a reboot, so there is no 2).
 * The values are an interface: never change one. */
enum fsck_exit {
	FSCK_EXIT_OK = 0,           /* clean: no errors */
	FSCK_EXIT_CORRECTED = 1,    /* errors found and corrected */
	FSCK_EXIT_UNCORRECTED = 4,  /* errors left uncorrected */
	FSCK_EXIT_OPERATIONAL = 8,  /* operational error */
	FSCK_EXIT_USAGE = 16,       /* usage or syntax error */
	FSCK_EXIT_CANCELED = 32,    /* cancelled by the user (SIGINT) */
};

/* passes, in order */
#define FSCK_PASSES()                  \
	x(superblock)                  \
	x(journal)                     \
	x(check_topology)              \
	x(scan_for_btree_nodes)        \
	x(check_allocations)           \
	x(check_alloc_info)            \
	x(check_filesystem)            \
	x(gc_gens)
enum fsck_pass {
#define x(n) FSCK_PASS_##n,
	FSCK_PASSES()
#undef x
	FSCK_PASS_NR
};
/* a set of passes (fsck_opts.passes): FSCK_PASS_BIT(check_topology) | ... */
#define FSCK_PASS_BIT(name) (1u << FSCK_PASS_##name)
#define FSCK_PASSES_ALL ((1u << FSCK_PASS_NR) - 1)
extern const char *const fsck_pass_names[FSCK_PASS_NR];

struct fsck_finding {
	unsigned err;        /* enum fsck_err_id */
	unsigned pass;
	char *object;        /* "btree extents level 0 pos 4097:8:0", "dev 0 bucket 12", "inode 4100 (/a/b)" */
	char *msg;
	const char *action;  /* what -y does / did: "dropped pointer", ... */
	bool fixed;
};

/* The btree nodes below which bkfs fsck reads without the read-ahead helper:
 * starting it, handing it work and its 16 node slots cost more than it saves
 * there (fsck -n on 2 CPUs, imported gentree trees: 200 nodes 23.0 ms with it,
 * 22.1 ms without and 6.6 ms less CPU; 957 nodes 51.9 ms with it, 58.4 ms
 * without). */
#define FSCK_RA_MIN_NODES 320

struct fsck_opts {
	enum fsck_mode mode;
	bool verbose, progress, gc_gens;
	bool all_copies;     /* verify every copy of every node, not one good one */
	u64 mem_limit;       /* bytes, 0 = none */
	const char *json_path;
	u64 fail_after_writes; /* testing (--debug-fail-after-writes): every device
				* write after this many fails, as if fsck were killed */
	/* fsck_devs() only (bkfs_fsck() sets them): */
	unsigned passes;     /* FSCK_PASS_BIT()s to run, 0 = all (gc_gens only
			      * with gc_gens; scan_for_btree_nodes runs when
			      * check_topology needs it) */
	bool readahead;      /* a helper thread reads ahead of the btree walks */
	u64 ra_min_nodes;    /* ... only when the btrees hold this many nodes
			      * (bkfs fsck: FSCK_RA_MIN_NODES) */
	bool full_topology;  /* check_topology reads every leaf itself, even when
			      * check_allocations runs (bkfs fsck leaves the
			      * filesystem btrees' leaves to its walk) */
	u64 node_cache;      /* bytes of clean nodes cached at most (0: bkfs
			      * fsck's 1 MiB; never more than the open's own) */
};

/* What a run found and did (fsck_devs). The findings are the caller's:
 * fsck_result_free() releases them. */
struct fsck_result {
	int status;          /* enum fsck_exit bits: what bkfs fsck exits with */
	int ret;             /* the operational error (open, a pass, the commit), or 0 */
	struct fsck_finding *f; /* every finding, in the order found */
	size_t nr;
	u64 counts[FSCK_ERR_NR]; /* findings by named error */
	u64 nr_fixed, nr_unfixed;
	/* data reported lost (objects removed or replaced by error keys);
	 * lost_files: inodes whose data a dropped node held (inode_data_lost);
	 * lost_extents_at_least: extents or reflink keys were given up with a
	 * node or range whose keys could not be counted, so lost_extents is a
	 * lower bound (counted keys, and one per file that lost data);
	 * recreated_inodes: inodes lost with a node and made again from what
	 * remained (their owner, mode, times and link count are not the old ones);
	 * salvaged_nodes: leaves whose every copy failed, kept but for the keys
	 * of their damaged chunks (salvaged_keys_lost of them; FORMAT.md §7.3) */
	u64 lost_extents, lost_sectors, lost_nodes, salvaged_inodes, lost_files, recreated_inodes;
	u64 salvaged_nodes, salvaged_keys_lost;
	bool lost_extents_at_least;
	bool pass_ran[FSCK_PASS_NR];
	u64 pass_ns[FSCK_PASS_NR], pass_nodes_read[FSCK_PASS_NR];
	/* how the driver ran check_topology and check_allocations */
	unsigned leaves_deferred;  /* a bit per btree whose leaves check_topology
				    * left to check_allocations' walk */
	unsigned leaves_unchecked; /* of those, never checked: always 0 */
	bool topology_retried;     /* a deferred leaf was not sound: the full
				    * topology check ran, then check_allocations again */
	bool fs_prescan_made;      /* check_allocations ran the filesystem passes'
				    * first scans and kept them (it found nothing) */
	bool readahead;            /* the read-ahead helper ran */
	/* members not given or without a valid superblock (a bit each), of
	 * nr_members: reported by name; data only there is data_unreadable */
	u32 missing_devs;
	unsigned nr_members;
};
static inline bool fsck_result_has(const struct fsck_result *r, unsigned err)
{
	return r->counts[err] != 0;
}
void fsck_result_free(struct fsck_result *r);

struct scan_result; /* scan.c */

struct fsck_ctx {
	struct bkfs_fs *fs;
	struct fsck_opts opts;
	unsigned pass;
	struct fsck_finding *f;
	size_t nr, cap;
	u64 counts[FSCK_ERR_NR];
	u64 pass_ns[FSCK_PASS_NR], pass_nodes_read[FSCK_PASS_NR];
	bool pass_ran[FSCK_PASS_NR];
	u64 nr_fixed, nr_unfixed;
	bool changed;        /* something was repaired in memory */
	bool operational_error;
	struct scan_result *scan; /* NULL until scan_for_btree_nodes ran */
	/* check_allocations may run the filesystem passes' first scans for them
	 * (fuse_fs: allowed, set when topology found nothing); fs_prescan holds
	 * their result while it is valid: no finding since */
	bool fuse_fs;
	void *fs_prescan;
	/* check_topology may leave the leaves of those btrees (the fused walk
	 * reads them anyway, through the same checks) to check_allocations
	 * (topo_defer: allowed; leaves_deferred: a bit per btree left so).
	 * check_allocations then runs trapped until its walk is over: with trap
	 * set, fsck_err records nothing and sets trapped. Any finding, node read
	 * error or invalid key meanwhile makes check_allocations return
	 * -BKFS_E_RETRY: the full topology check runs, then check_allocations
	 * again, so the report is what it would have been without this. */
	bool topo_defer;
	unsigned leaves_deferred;
	bool trap, trapped;
	/* sb_member_bitmap_bad: the member btree bitmaps as the superblock pass
	 * repairs them, applied to the opened filesystem's superblock (in every
	 * mode, so the later passes see what -y sees; -y writes them) */
	struct { bool set; u8 shift; u64 bitmap; } sb_bitmap_fix[BKFS_MAX_DEVS];
	/* data reported lost (objects removed or replaced by error keys) */
	u64 lost_extents, lost_sectors, lost_nodes, salvaged_inodes, lost_files, recreated_inodes;
	u64 salvaged_nodes, salvaged_keys_lost;
	bool lost_extents_uncounted; /* a range of extents/reflink keys given up uncounted */
	u32 missing_devs;    /* see fsck_result */
	unsigned nr_members;
	/* key ranges whose keys check_topology gave up (unreadable nodes,
	 * gaps it closed, btrees rebuilt from scanned leaves): the filesystem
	 * passes tell lost data from a wrong counter by them */
	struct fsck_lost_range *lost_ranges;
	size_t nr_lost_ranges, cap_lost_ranges;
};
struct fsck_lost_range { unsigned btree_id; struct bpos min, max; };
/* Record that the keys of btree_id in min..max may be lost. */
void fsck_lost_range_add(struct fsck_ctx *c, unsigned btree_id, struct bpos min, struct bpos max);
/* The same for a range whose lost keys the caller counted (a salvaged node's). */
void fsck_lost_range_add_counted(struct fsck_ctx *c, unsigned btree_id, struct bpos min, struct bpos max);
/* Whether a recorded lost range of btree_id covers keys of inode inum. */
bool fsck_lost_range_has_inode(const struct fsck_ctx *c, unsigned btree_id, u64 inum);
/* Whether a recorded lost range of btree_id covers the key position pos. */
bool fsck_lost_range_has_pos(const struct fsck_ctx *c, unsigned btree_id, struct bpos pos);
/* Whether any lost range of btree_id is recorded. */
bool fsck_lost_range_any(const struct fsck_ctx *c, unsigned btree_id);

/* Report a finding. Returns true if the caller should repair it now (mode -y,
 * or -p and the error is PREEN). The object and message are printf-formatted
 * into the finding; action says what the repair does. */
bool fsck_err(struct fsck_ctx *c, unsigned err, const char *action, const char *object_fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Add detail to the last finding's message. */
void fsck_err_msg(struct fsck_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Whether repairs are allowed at all (-y or -p). */
static inline bool fsck_may_fix(struct fsck_ctx *c) { return c->opts.mode != FSCK_MODE_NO; }
/* Make the in-memory filesystem writable for repairs (no disk writes yet). */
void fsck_begin_repair(struct fsck_ctx *c);
/* Keep the node cache within its limit (fs->max_clean clean nodes). Only at
 * points where the caller holds no pointer into a node: iterators survive
 * (an eviction bumps cache_gen), keys peeked before the call do not. */
static inline void fsck_cache_trim(struct bkfs_fs *fs)
{
	btree_cache_trim(fs);
}
void bkey_object_text(struct printbuf *out, unsigned btree_id, unsigned level, const struct bkey *k);

/* Read-ahead of the nodes of one level of a btree, in key order from start
 * (their pointers are read at level + 1), for a walk over that level: NULL
 * when no read-ahead helper runs (bkfs_fsck starts one). Call
 * fsck_ra_step() where fsck_cache_trim() may be called. */
struct fsck_ra;
struct fsck_ra *fsck_ra_level(struct bkfs_fs *fs, unsigned btree_id, unsigned level, struct bpos start);
void fsck_ra_step(struct fsck_ra *r);
void fsck_ra_end(struct fsck_ra *r);

/* the passes (each returns 0, or <0 on an operational error) */
int fsck_pass_superblock(struct fsck_ctx *c);          /* superblock.c */
int fsck_pass_journal(struct fsck_ctx *c);             /* superblock.c */
/* superblock.c: the superblock pass's repairs of the member table, applied
 * to c->fs->sb once the filesystem is open (before the journal pass) */
void fsck_sb_repairs_apply(struct fsck_ctx *c);
/* superblock.c: whether member idx's btree bitmap cannot describe its device
 * (its 2^shift-sector regions do not cover it, the shift is >= 64, or bits
 * are set for regions wholly past its end); if so, the repair: the smallest
 * covering shift, and every new region overlapping a set old one (within the
 * device) set. The repaired bitmap marks every sector the old one did. */
bool fsck_member_bitmap_repair(const struct bkfs_sb *sb, unsigned idx, u8 *shift, u64 *bitmap);
int fsck_check_topology(struct fsck_ctx *c);           /* topology.c */
/* topology.c: report (and under -y/-p rewrite from a good copy) the bad
 * node copies the reads met since the last call (fs->bad_copies) */
void fsck_report_bad_copies(struct fsck_ctx *c);
int fsck_check_topology_deferred(struct fsck_ctx *c);  /* topology.c: the leaves left to check_allocations */
int fsck_scan_for_btree_nodes(struct fsck_ctx *c);     /* scan.c */
int fsck_check_allocations(struct fsck_ctx *c);        /* gc.c */
int fsck_check_alloc_info(struct fsck_ctx *c);         /* gc.c */
int fsck_check_filesystem(struct fsck_ctx *c);         /* fs_passes.c */
int fsck_gc_gens(struct fsck_ctx *c);                  /* gc_gens.c */

/* fs_passes.c: the filesystem passes' first scans (inodes with their
 * extents and xattrs, then dirents), run by check_allocations so those leaves
 * are read once for both passes: every leaf key the scans read goes through
 * hook (check_allocations marks it). The result waits in c->fs_prescan for
 * fsck_check_filesystem; drop it when anything changed in between. */
static inline bool fsck_fused_btree(unsigned id)
{
	return id == BTREE_ID_extents || id == BTREE_ID_inodes || id == BTREE_ID_dirents || id == BTREE_ID_xattrs;
}
struct fsck_key_hook {
	int (*fn)(void *arg, unsigned btree_id, struct bkey *k);
	void *arg;
};
int fsck_fs_prescan(struct fsck_ctx *c, const struct fsck_key_hook *hook);
void fsck_fs_prescan_drop(struct fsck_ctx *c);

/* gc.c: memory check_allocations needs (shadow buckets, tables), for the
 * estimate printed before the run and -m. */
u64 fsck_gc_mem_estimate(struct bkfs_fs *fs);
/* fs_passes.c: the per-inode table of the filesystem passes */
u64 fsck_fs_mem_estimate(struct bkfs_fs *fs);

/* how the checker opens a filesystem: read-only (repairs are written by
 * fsck_commit_repairs() alone), the journal replayed in memory only */
#define FSCK_OPEN_FLAGS (BKFS_OPEN_RDONLY | BKFS_OPEN_FSCK | BKFS_OPEN_NOJOURNAL | BKFS_OPEN_DEGRADED)
/* The checker on already-opened member devices bds[0..nr) (nr at most
 * BKFS_MAX_DEVS; the call takes the devices: each is closed at the end,
 * unless keep_open): the superblock pass, the open, the passes of o->passes
 * in order, then fsck_commit_repairs(). Fills r (fsck_result_free() it) and
 * returns r->status. Prints the memory estimate; no report. */
int fsck_devs(struct blockdev **bds, unsigned nr, const struct fsck_opts *o, struct fsck_result *r);
/* The last step of a run: where repairs become durable. In -y/-p mode, when
 * a pass changed something in memory and nothing failed, write them with
 * one atomic checkpoint (the superblock first, marked unclean; damaged
 * journal entries erased; then bkfs_close()'s checkpoint, whose
 * checkpoint_prepare hook (src/alloc/alloc.c: engine_checkpoint_prepare)
 * turns every bucket marked dirty and every accounting counter changed into
 * alloc and accounting keys before the nodes and the checkpoint record are
 * written). Otherwise close without writing. Closes c->fs either way;
 * returns 0 or the write error (also recorded as an operational error). */
int fsck_commit_repairs(struct fsck_ctx *c);
/* bkfs fsck: fsck_devs() on the image files devs, then the report (and
 * --json); returns the exit status bits (enum fsck_exit). */
int bkfs_fsck(char *const *devs, unsigned nr, const struct fsck_opts *o);
/* Print the table (--list-errors). */
void fsck_list_errors(struct printbuf *out);
/* GC-gens on its own (bkfs gc-gens): returns 0 or error. */
int bkfs_gc_gens(char *const *devs, unsigned nr, struct printbuf *report);
/* The same on an open read-write filesystem (ordinary transactions). */
int bkfs_gc_gens_fs(struct bkfs_fs *fs, struct printbuf *report);

/* ---- node scan (scan.c) ---- */
struct found_node {
	u8 btree_id, level;
	bool range_updated, overwritten;
	u64 seq, journal_seq;
	struct bpos min_key, max_key;
	struct bkfs_btree_ptr ptr;   /* replicas merged */
	u32 nr_keys;
};
struct scan_result {
	struct found_node *n;
	size_t nr;
	u64 slots_read, candidates, io_errors;
};
/* Read every node-size slot the member bitmaps mark (all devices in
 * parallel), keep what validates, merge replicas, resolve overlaps. */
int btree_node_scan(struct bkfs_fs *fs, struct scan_result *out);
void scan_result_free(struct scan_result *r);
void found_node_to_text(struct printbuf *out, const struct found_node *n);

#endif
