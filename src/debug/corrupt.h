/* corrupt.h - the corruption engine behind `bkfs debug corrupt`: damage an
 * image in a named, reproducible way, so that tests (and people) can watch
 * fsck find and repair it.
 *
 * Each kind names the fsck finding it provokes (an FSCK_ERR_* of
 * src/fsck/fsck.h, checked by the compiler) and what an image must hold for
 * it to find a target (NEEDS_*). Adding a kind: a line in CORRUPT_KINDS and a
 * function corrupt_<kind>(struct corrupt_ctx *) in the file of what it
 * damages (corrupt_int.h declares it from the table).
 *
 * Targets are located through the engine: the filesystem is opened
 * read-only without journal replay, btrees are walked node by node, and a
 * target is picked with a PRNG seeded from the seed and the kind's name.
 * The filesystem is then closed and the damage written with raw block I/O:
 * a node buffer edited in place with its checksum recomputed (so it still
 * validates), or bytes flipped (so it does not). Damage at the filesystem
 * level (inodes, dirents) goes through ordinary transactions, whose triggers
 * keep derived state (accounting) consistent, so that only the intended
 * finding appears. */
#ifndef BKFS_CORRUPT_H
#define BKFS_CORRUPT_H
#include "../fsck/fsck.h"

/* What an image must hold for a kind to find a target:
 * x(name, flag, what) - the name is what `--list` prints */
#define CORRUPT_NEEDS()                                                                           \
	x(stripes, NEEDS_STRIPES, "erasure-coded stripes (bkfs erasure-code; three or more devices)") \
	x(three_level, NEEDS_3_LEVEL, "a btree of three levels (format with --btree-node-size 4k)")

enum corrupt_need_bit {
#define x(n, flag, what) CORRUPT_NEED_##n,
	CORRUPT_NEEDS()
#undef x
	CORRUPT_NEED_NR
};
enum corrupt_needs {
#define x(n, flag, what) flag = 1u << CORRUPT_NEED_##n,
	CORRUPT_NEEDS()
#undef x
};

/* How a kind runs: RAW kinds analyse a read-only open and write raw bytes;
 * NODES kinds too, after the walk of every btree's nodes; FS kinds damage
 * through transactions in a read-write session (opened with the directory
 * entries and inodes loaded, checkpointed after). */
enum corrupt_session { CORRUPT_RAW, CORRUPT_NODES, CORRUPT_FS };

/* x(kind, expected fsck error, needs, session, description) - in the order
 * `--list` prints them (scripts run them in this order) */
#define CORRUPT_KINDS()                                                                                          \
	/* btree nodes and topology (corrupt_topology.c) */                                                     \
	x(node_copy_bad, btree_node_copy_bad, 0, NODES,                                                         \
	  "the first copy of a btree node with two copies fails its checksum; the other copy is good")         \
	x(node_unreadable, btree_node_unreadable, 0, NODES,                                                       \
	  "a leaf of the extents/inodes/dirents/xattrs btree fails its checksum, and so does its chunk table")  \
	x(node_keys_salvaged, btree_node_keys_salvaged, 0, NODES,                                                 \
	  "one chunk of a leaf of the extents/inodes/dirents/xattrs btree damaged in every copy (table sound)")  \
	x(extents_leaf_lost, inode_data_lost, 0, NODES,                                                           \
	  "an extents leaf (one holding symlink targets when there is one) fails its checksum (every copy)")      \
	x(root_unreadable_scan, btree_root_unreadable, 0, NODES,                                                  \
	  "the root of a multi-level btree fails its checksum; its leaves are found by a node scan")            \
	x(roots_extents_accounting, btree_root_unreadable, 0, NODES,                                              \
	  "the roots of the extents and accounting btrees fail their checksums (every copy)")                     \
	x(root_unreadable_empty, btree_root_unreadable_and_scan_found_nothing, 0, NODES,                          \
	  "the root of an empty btree (and every old copy of its nodes) fails its checksum")                    \
	x(topology_gap, btree_node_gap_filled_from_scan, 0, NODES,                                                \
	  "a child pointer removed from a level-1 node; the orphaned leaf is found by the scan")                \
	x(topology_bad_max, btree_node_topology_bad_max_key, 0, NODES,                                            \
	  "the last child of a level-1 node ends before its parent (node and pointer agree)")                   \
	x(topology_overlap, btree_node_topology_overwritten_by_next_node, 0, NODES,                               \
	  "a leaf claims the range (and holds the keys, when they fit) of its older predecessor")               \
	x(topology_overlap_trim, btree_node_topology_bad_min_key, 0, NODES,                                       \
	  "a leaf's min_key moved back into its newer predecessor's range (no keys there)")                     \
	x(topology_overlap_prev, btree_node_topology_overwritten_by_prev_node, NEEDS_3_LEVEL, NODES,              \
	  "a level-1 node's max_key moved over the first child of its older next sibling")                      \
	x(root_bad_min, btree_root_bad_min_key, 0, NODES,                                                         \
	  "a root node's header min_key moved up to its first key (the root pointer unchanged)")                \
	x(root_bad_max, btree_root_bad_max_key, 0, NODES,                                                         \
	  "a leaf root's header max_key moved back to its last key (the root pointer unchanged)")               \
	x(interior_node_empty, btree_node_topology_interior_node_empty, 0, NODES,                                 \
	  "the alloc btree's level-1 root loses every child and no alloc node is left to scan")                 \
	/* pointers (corrupt_ptrs.c) */                                                                         \
	x(ptr_gen_newer, ptr_gen_newer_than_bucket_gen, 0, RAW,                                                 \
	  "an extent pointer's gen made newer than its bucket's (a bucket holding only that extent)")           \
	x(stale_dirty_ptr, stale_dirty_ptr, 0, RAW, "an extent pointer's gen made one older than its bucket's") \
	x(ptr_too_stale, ptr_too_stale, 0, RAW, "an extent pointer's gen made 100 older than its bucket's")     \
	x(ptr_invalid_device, ptr_to_invalid_device, 0, RAW, "an extent pointer's device set to 7")             \
	x(ptr_invalid_bucket, ptr_to_invalid_bucket, 0, RAW, "an extent pointer's offset moved beyond the device") \
	x(ptr_data_type_mismatch, ptr_bucket_data_type_mismatch, 0, RAW,                                        \
	  "an extent pointer moved into a bucket holding btree nodes (with that bucket's gen)")                 \
	x(ptr_journal_bucket, bucket_metadata_type_mismatch, 0, RAW,                                            \
	  "an extent pointer moved into a journal bucket (with that bucket's gen)")                             \
	x(sector_count_overflow, bucket_sector_count_overflow, 0, NODES,                                          \
	  "an extent of 2^32-1 sectors for a nonexistent inode added to a leaf, pointing into a bucket with data") \
	/* alloc keys (corrupt_alloc.c) */                                                                      \
	x(missing_alloc_key, ptr_to_missing_alloc_key, 0, RAW,                                                  \
	  "the alloc key of a bucket holding user data deleted")                                                \
	x(alloc_key_missing, alloc_key_missing, 0, RAW, "the alloc key of a free bucket deleted")               \
	x(alloc_dirty_sectors, alloc_key_dirty_sectors_wrong, 0, RAW,                                           \
	  "a user bucket's alloc key dirty_sectors changed")                                                    \
	x(alloc_gen, alloc_key_gen_wrong, 0, RAW,                                                               \
	  "a user bucket's alloc key gen made older than its pointers (the bucket adopts their gen)")           \
	x(alloc_data_type, alloc_key_data_type_wrong, 0, RAW,                                                   \
	  "a user bucket's alloc key data_type set to btree (counts consistent, key valid)")                    \
	x(alloc_cached_sectors, alloc_key_cached_sectors_wrong, 0, RAW,                                         \
	  "a user bucket's alloc key cached_sectors raised")                                                    \
	x(alloc_fragmentation, alloc_key_fragmentation_lru_wrong, 0, RAW,                                       \
	  "a user bucket's alloc key fragmentation index changed")                                              \
	x(alloc_oldest_gen, alloc_key_oldest_gen_wrong, 0, RAW,                                                 \
	  "a user bucket's alloc key oldest_gen made newer than its gen")                                       \
	x(alloc_need_discard, alloc_key_need_discard_wrong, 0, RAW,                                             \
	  "a user bucket's alloc key marked need_discard")                                                      \
	x(alloc_stripe, alloc_key_stripe_wrong, NEEDS_STRIPES, RAW,                                             \
	  "an erasure-coded bucket's alloc key names another stripe")                                           \
	x(alloc_stripe_redundancy, alloc_key_stripe_redundancy_wrong, NEEDS_STRIPES, RAW,                       \
	  "an erasure-coded bucket's alloc key stripe_redundancy raised")                                       \
	x(alloc_stripe_sectors, alloc_key_stripe_sectors_wrong, NEEDS_STRIPES, RAW,                             \
	  "a stripe data bucket's alloc key stripe_sectors changed")                                            \
	/* erasure coding (corrupt_stripes.c) */                                                                \
	x(stripe_missing, ptr_to_missing_stripe, NEEDS_STRIPES, RAW,                                            \
	  "a stripe key deleted, the erasure-coded pointers into it kept")                                      \
	x(stripe_ptr_incorrect, ptr_to_incorrect_stripe, NEEDS_STRIPES, RAW,                                    \
	  "an erasure-coded extent pointer names a parity block of its stripe")                                 \
	x(stripe_block_sectors, stripe_sector_count_wrong, NEEDS_STRIPES, RAW,                                  \
	  "a stripe's sector count of one data block changed")                                                  \
	x(alloc_journal_seq, alloc_key_journal_seq_in_future, 0, RAW,                                           \
	  "a user bucket's alloc key journal_seq set beyond the journal")                                       \
	/* accounting, invalid keys, reflink, versions, superblock */                                           \
	x(accounting, accounting_mismatch, 0, RAW, "an accounting counter changed")                             \
	x(key_invalid_inode, inode_invalid, 0, RAW,                                                             \
	  "a regular file's inode key given mode bits beyond file type and permissions (the node stays valid)") \
	x(key_invalid_dirent, bkey_invalid, 0, RAW,                                                             \
	  "a regular file's dirent given a name length its value cannot hold (the node stays valid)")           \
	x(key_invalid_extent, bkey_invalid, 0, RAW, "an extent's pointer count set to 5 (the node stays valid)") \
	x(reflink_refcount_high, reflink_v_refcount_wrong, 0, RAW,                                              \
	  "an indirect extent's refcount raised by one (its node checksum recomputed)")                         \
	x(reflink_refcount_low, reflink_v_refcount_wrong, 0, RAW,                                               \
	  "the refcount of an indirect extent shared by two pointers lowered by one")                           \
	x(reflink_v_missing, reflink_p_to_missing_reflink_v, 0, RAW,                                            \
	  "an indirect extent deleted from its leaf, the reflink pointers to it kept")                          \
	x(version_future, bkey_version_in_future, 0, RAW, "a key's version set beyond the highest issued")      \
	x(bitmap_unmarked, btree_bitmap_not_marked, 0, NODES,                                                     \
	  "a member btree bitmap bit covering a node cleared (every superblock copy)")                          \
	x(member_bitmap_shift, sb_member_bitmap_bad, 0, RAW,                                                    \
	  "a member's btree bitmap shift lowered by one, so its 64 bits stop short of the device's end (every " \
	  "superblock copy)")                                                                                   \
	x(sb_primary, sb_copy_bad, 0, RAW, "the primary superblock copy overwritten with random bytes")        \
	x(sb_stale, sb_copy_stale, 0, RAW, "a backup superblock copy made one write older")                    \
	x(sb_clean_cp_pos, journal_clean_checkpoint_missing, 0, RAW,                                            \
	  "a clean superblock's clean_cp_pos moved one block, off the newest checkpoint (every copy)")           \
	/* journal (corrupt_journal.c) */                                                                       \
	x(journal_entry, journal_entry_bad_csum, 0, RAW,                                                        \
	  "unclean filesystem: a journal entry after the checkpoint fails its checksum")                        \
	x(journal_gap, journal_entries_after_gap, 0, RAW,                                                       \
	  "unclean filesystem: a journal entry after the checkpoint erased, a later one kept")                  \
	x(journal_torn, journal_entry_torn, 0, RAW,                                                             \
	  "unclean filesystem: a journal entry with a valid checksum whose records do not parse")               \
	x(journal_no_checkpoint, journal_no_checkpoint, 0, RAW,                                                 \
	  "clean filesystem: every journal entry erased (the superblock holds the roots)")                      \
	/* filesystem (corrupt_fs.c) */                                                                         \
	x(dirent_missing_inode, dirent_to_missing_inode, 0, FS, "a regular file's inode deleted, its dirent kept") \
	x(unreachable_inode, inode_unreachable, 0, FS, "a regular file's only dirent deleted")                  \
	x(link_count, inode_link_count_wrong, 0, FS, "a regular file's nlink raised by one")                    \
	x(i_size, inode_i_size_wrong, 0, FS, "a regular file's i_size set two blocks short of its data")        \
	x(i_sectors, inode_i_sectors_wrong, 0, FS, "a regular file's sector count raised")                      \
	x(dir_loop, dir_loop, 0, FS, "a directory moved into its own subdirectory")                             \
	x(dir_parent_wrong, dir_parent_wrong, 0, FS, "a directory's parent field set to the root")              \
	x(inode_name_wrong, inode_name_wrong, 0, FS,                                                            \
	  "a regular file's recorded name moved to another directory (its parent field)")                       \
	x(inode_name_bad, inode_name_bad, 0, FS, "a regular file's recorded name given a '/'")                  \
	x(inode_link_name_wrong, inode_link_name_wrong, 0, FS,                                                  \
	  "a hard-linked file's recorded name of its second link changed to one no dirent has")                 \
	x(dir_multiple_links, dir_multiple_links, 0, FS, "a directory given a second name in another directory") \
	x(root_inode_missing, root_inode_missing, 0, FS, "the root directory's inode deleted")                  \
	x(dirent_d_type, dirent_d_type_wrong, 0, FS, "a regular file's dirent d_type set to symlink")           \
	x(extent_missing_inode, extent_for_missing_inode, 0, FS, "an inline data extent added for a nonexistent inode") \
	x(xattr_missing_inode, xattr_for_missing_inode, 0, FS, "an xattr added for a nonexistent inode")        \
	x(dirent_in_non_dir, dirent_in_non_dir, 0, FS, "a dirent added inside a regular file") \
	x(orphan_missing_inode, orphan_entry_for_missing_inode, 0, FS,                                        \
	  "an orphan list entry added for a nonexistent inode")                                                 \
	x(orphan_linked_inode, orphan_entry_for_linked_inode, 0, FS,                                          \
	  "an orphan list entry added for a regular file that has its name")                                    \
	x(unlinked_not_orphan, inode_unlinked_not_orphan, 0, FS,                                              \
	  "a regular file's only dirent deleted and its nlink set to 0, no orphan list entry")

struct corrupt_ctx; /* corrupt_int.h */

struct corrupt_kind {
	const char *name;
	enum fsck_err_id expect; /* the finding fsck -n reports */
	unsigned needs;          /* NEEDS_* */
	enum corrupt_session session;
	const char *desc;
	int (*fn)(struct corrupt_ctx *c);
};

enum corrupt_kind_id {
#define x(n, err, needs, session, desc) CORRUPT_##n,
	CORRUPT_KINDS()
#undef x
	CORRUPT_NR
};
extern const struct corrupt_kind corrupt_kinds[CORRUPT_NR];
extern const char *const corrupt_need_names[CORRUPT_NEED_NR];

/* The kind called name, or NULL. */
const struct corrupt_kind *corrupt_kind_find(const char *name);
/* The needs as names joined by ',' ("-" for none), e.g. "stripes". */
void corrupt_needs_to_text(struct printbuf *out, unsigned needs);

struct corrupt_opts {
	u64 seed; /* the same seed on the same image makes the same damage */
};

/* What was done, as text. affects: one "affects: INUM PATH\n" line per path
 * whose content or place may change. msgs: why nothing was written (no
 * target, an error), one message a line. */
struct corrupt_report {
	struct printbuf damaged, lost, affects, msgs;
};
void corrupt_report_exit(struct corrupt_report *r);

#define CORRUPT_NO_TARGET 1

/* Damage the filesystem on bds (every member present, nr of them; the
 * caller keeps them: they are open again afterwards) with kind k. Returns
 * 0 (damage written), CORRUPT_NO_TARGET (this image has nothing the kind can
 * damage: nothing written) or -BKFS_E_* (r->msgs says why). */
int bkfs_corrupt(struct blockdev **bds, unsigned nr, const struct corrupt_kind *k, const struct corrupt_opts *o,
		 struct corrupt_report *r);

#endif
