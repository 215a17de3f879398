/* fs.h - the POSIX object layer: inodes, directories, xattrs, file data,
 * and the import (format --source) and extract commands built on them.
 *
 * Everything goes through transactions. Read helpers take a transaction too
 * and see its pending (uncommitted) updates, so several objects can be
 * created in one transaction (bulk import); a caller that only reads uses a
 * fresh trans_init()'d transaction. Functions that take a struct bkfs_fs
 * open and commit their own transactions.
 *
 * Objects:
 *   inode  BTREE_ID_inodes  (0, inum, 0)        struct bkfs_inode
 *   dirent BTREE_ID_dirents (dir, slot, 0)      struct bkfs_dirent
 *   xattr  BTREE_ID_xattrs  (inum, slot, 0)     struct bkfs_xattr
 *   data   BTREE_ID_extents (inum, end sector)  extents / inline_data
 * Dirent and xattr slots are hashed: slot = bkfs_name_hash(name) and on a
 * collision slot+1, slot+2, ... (linear probing). Chains are kept contiguous:
 * removal shifts later members of the chain back (no tombstones), so a lookup
 * scans forward from the hash until it reaches a free slot.
 *
 * Directories: nlink = 2 + number of subdirectories, i_size = 0, parent =
 * the parent directory's inum (the root is its own parent). Symlinks: the
 * target is the file's data (inline when short), i_size = its length.
 * inode.sectors = the sum of the sizes of the file's extent keys (as
 * reported by extent_write's sectors_delta). */
#ifndef BKFS_FS_H
#define BKFS_FS_H
#include "super.h"
#include "../format/inode_format.h"
#include <sys/types.h>

/* ---- helpers ---- */
u64 bkfs_now_ns(void);
/* Hash slot of a name (dirents and xattrs): never 0, below 2^62. */
u64 bkfs_name_hash(const void *name, size_t len);
/* DT_* value for an inode mode. */
unsigned bkfs_mode_to_dtype(u32 mode);
/* Validate a file name for a dirent: 1..255 bytes, no '/', no NUL, not . or .. */
int bkfs_name_check(const char *name, size_t len);

/* Hashed tables (dirents, xattrs): internal, shared by dirent.c and xattr.c.
 * key_name returns the name stored in a key of the table. */
struct hash_desc {
	unsigned btree_id;
	int (*key_name)(const struct bkey *k, const u8 **name, size_t *len);
};
extern const struct hash_desc bkfs_dirent_hash_desc, bkfs_xattr_hash_desc;
/* Find name under inode: the key (copied into out, may be NULL) and its slot. */
int hash_find(struct trans *t, const struct hash_desc *d, u64 inode, const void *name, size_t len,
	      struct bkey_buf *out, u64 *slot);
/* First free slot of the chain starting at name's hash. */
int hash_free_slot(struct trans *t, const struct hash_desc *d, u64 inode, const void *name, size_t len,
		   u64 *slot);
/* Delete the key at slot and shift later chain members back. */
int hash_remove_at(struct trans *t, const struct hash_desc *d, u64 inode, u64 slot);

/* ---- inodes (inode.c) ---- */
void bkfs_inode_init(struct bkfs_inode *in, u32 mode, u32 uid, u32 gid, u64 rdev, u64 now);
int bkfs_inode_get(struct trans *t, u64 inum, struct bkfs_inode *out);
int bkfs_inode_find(struct bkfs_fs *fs, u64 inum, struct bkfs_inode *out);
/* Write the inode, keeping the recorded names it has on disk. */
int bkfs_inode_write(struct trans *t, u64 inum, const struct bkfs_inode *in);
/* The recorded names (docs/FORMAT.md 4.5): the names of the inode's dirents,
 * so that a lost dirent can be made again. [0] is in in->parent (dir[0]
 * mirrors it), then up to INODE_NAMES_MAX - 1 of a file's other links. */
struct inode_names {
	unsigned nr; /* 0: none */
	u64 dir[INODE_NAMES_MAX];
	u8 len[INODE_NAMES_MAX];
	char name[INODE_NAMES_MAX][INODE_NAME_MAX];
};
/* nm holds (dir, name) alone (len 0: nothing) */
void inode_names_one(struct inode_names *nm, u64 dir, const char *name, size_t len);
/* the index of (dir, name) in nm, or -1 */
int inode_names_find(const struct inode_names *nm, u64 dir, const char *name, size_t len);
/* Add (dir, name) after the others, if there is room: whether it went in */
bool inode_names_add(struct inode_names *nm, u64 dir, const char *name, size_t len);
/* Remove name i; the next one, if any, becomes the first */
void inode_names_del(struct inode_names *nm, unsigned i);
int bkfs_inode_get_named(struct trans *t, u64 inum, struct bkfs_inode *out, struct inode_names *nm);
/* Write the inode with these recorded names (the first's directory is
 * in->parent: callers keep the two together). */
int bkfs_inode_write_named(struct trans *t, u64 inum, const struct bkfs_inode *in, const struct inode_names *nm);
/* Write *in after its dirent (dir, name) went while the inode stays: that
 * name is no longer recorded (the next, if any, becomes the first). */
int bkfs_inode_name_dropped(struct trans *t, u64 inum, struct bkfs_inode *in, u64 dir, const char *name,
			    size_t len);
/* Write *in after its dirent (odir, oname) became (ndir, nname): the
 * recorded name follows the dirent (in->parent too); a file's dirent that
 * was not recorded is, if there is room. */
int bkfs_inode_name_moved(struct trans *t, u64 inum, struct bkfs_inode *in, u64 odir, const char *oname,
			  size_t olen, u64 ndir, const char *nname, size_t nlen);
/* Delete the inode key, its data and its xattrs (nlink reached 0). */
int bkfs_inode_remove(struct trans *t, u64 inum);
/* Remove the data of inum in [start, end) sectors (end UINT64_MAX: to the
 * last extent) in bounded transactions of its own, adjusting inode.sectors if
 * the inode exists. Commits any number of small extents. */
int bkfs_punch(struct bkfs_fs *fs, u64 inum, u64 start, u64 end);
/* A fresh inode number. check = make sure it is unused (after a journal
 * replay the persisted counter may lag behind); bulk import skips that. */
int bkfs_inum_alloc(struct trans *t, bool check, u64 *inum);

/* ---- directories (dirent.c) ---- */
/* Find name in dir: inum, d_type, slot (any may be NULL). */
int bkfs_dirent_lookup(struct trans *t, u64 dir, const char *name, size_t len,
		       u64 *inum, unsigned *d_type, u64 *slot);
/* Add name -> inum; -BKFS_E_EXIST if name is present. */
int bkfs_dirent_add(struct trans *t, u64 dir, const char *name, size_t len, u64 inum, unsigned d_type);
/* Add without checking for an existing entry of the same name (bulk import:
 * the caller knows the names are unique). */
int bkfs_dirent_add_unique(struct trans *t, u64 dir, const char *name, size_t len, u64 inum, unsigned d_type);
/* Remove name (returns its inum/d_type); -BKFS_E_NOENT if absent. */
int bkfs_dirent_remove(struct trans *t, u64 dir, const char *name, size_t len, u64 *inum, unsigned *d_type);
/* Readdir: calls fn for each entry with slot >= start (committed state only);
 * a nonzero return from fn stops the walk and is returned. Resume a later
 * call at slot + 1. The name is not NUL-terminated. */
typedef int (*bkfs_readdir_fn)(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot);
int bkfs_readdir(struct bkfs_fs *fs, u64 dir, u64 start, bkfs_readdir_fn fn, void *arg);
/* True if dir has no entries. */
int bkfs_dir_empty(struct trans *t, u64 dir);

/* ---- xattrs (xattr.c) ---- */
/* Largest value that fits with a name of name_len bytes. */
size_t bkfs_xattr_max_value(size_t name_len);
/* Get: copies up to size bytes into buf (buf may be NULL / size 0 to ask for
 * the size); returns the value length, -BKFS_E_NOENT, or -BKFS_E_RANGE when
 * buf is too small. */
int bkfs_xattr_get(struct trans *t, u64 inum, const char *name, void *buf, size_t size);
#define BKFS_XATTR_CREATE  1 /* fail with -BKFS_E_EXIST if present */
#define BKFS_XATTR_REPLACE 2 /* fail with -BKFS_E_NOENT if absent */
int bkfs_xattr_set(struct trans *t, u64 inum, const char *name, const void *val, size_t len, int flags);
int bkfs_xattr_remove(struct trans *t, u64 inum, const char *name);
/* List: NUL-separated names as llistxattr(2) does (committed state). Returns
 * the total length, or -BKFS_E_RANGE if size is too small (size 0: just the
 * length). */
ssize_t bkfs_xattr_list(struct bkfs_fs *fs, u64 inum, char *buf, size_t size);
/* Visit every xattr of inum (committed state). */
typedef int (*bkfs_xattr_fn)(void *arg, const char *name, size_t name_len, const void *val, size_t val_len);
int bkfs_xattr_for_each(struct bkfs_fs *fs, u64 inum, bkfs_xattr_fn fn, void *arg);

/* ---- files and POSIX operations (inode.c) ---- */
/* Create name in dir: mode includes the type; rdev for devices; target for
 * symlinks. One transaction. out/inum_out may be NULL. */
int bkfs_create(struct bkfs_fs *fs, u64 dir, const char *name, u32 mode, u32 uid, u32 gid,
		u64 rdev, const char *target, u64 *inum_out, struct bkfs_inode *out);
/* Hard link inum as name in dir. */
int bkfs_link(struct bkfs_fs *fs, u64 inum, u64 dir, const char *name);
/* Unlink (files) or rmdir (empty directories); the inode is removed when its
 * last link goes. */
int bkfs_unlink(struct bkfs_fs *fs, u64 dir, const char *name, bool rmdir);
/* Look name up in dir (committed state). */
int bkfs_lookup(struct bkfs_fs *fs, u64 dir, const char *name, u64 *inum, struct bkfs_inode *out);
/* Resolve an absolute path ("/" = root) without following symlinks. */
int bkfs_lookup_path(struct bkfs_fs *fs, const char *path, u64 *inum, struct bkfs_inode *out);
/* Read up to len bytes at off (clamped to i_size); returns bytes read. */
ssize_t bkfs_file_read(struct bkfs_fs *fs, u64 inum, u64 off, void *buf, size_t len);
/* Write len bytes at any offset; updates size, sectors, mtime, ctime.
 * Commits every 1 MiB. Returns bytes written or an error. */
ssize_t bkfs_file_write(struct bkfs_fs *fs, u64 inum, u64 off, const void *buf, size_t len);
/* Set the size (zeroing the tail of a partial last block, freeing extents
 * past the end). */
int bkfs_file_truncate(struct bkfs_fs *fs, u64 inum, u64 size);
/* Read a symlink's target into buf (NUL-terminated); returns its length. */
ssize_t bkfs_readlink(struct bkfs_fs *fs, u64 inum, char *buf, size_t size);

/* ---- shared and copied ranges (copy.c) ---- */
/* Share len bytes of regular file src at src_off with regular file dst at
 * dst_off (a reflink: both files reference the same indirect extents, see
 * data/reflink.h). Offsets must be block aligned; len too, unless the range
 * reaches the end of src: a range past the end of src is cut there. When the
 * cut range ends inside a block, the whole block is shared (its bytes past
 * the end of src are zeros), so dst must not hold data past dst_off + len
 * (-BKFS_E_INVAL). dst's size grows to dst_off + len if smaller; its
 * sectors, mtime and ctime are kept exact. The same inode with overlapping
 * ranges is refused (-BKFS_E_INVAL). Bounded transactions of their own: a
 * crash leaves a prefix of the range shared (every state consistent). */
int bkfs_reflink(struct bkfs_fs *fs, u64 src, u64 src_off, u64 dst, u64 dst_off, u64 len);
/* copy_file_range(2): copy up to len bytes (cut at the end of src) from src
 * to dst; the block-aligned part is shared with bkfs_reflink() when both
 * offsets have the same position within a block, the rest (and everything
 * else) copied. Returns the bytes copied or an error. */
ssize_t bkfs_copy_range(struct bkfs_fs *fs, u64 src, u64 src_off, u64 dst, u64 dst_off, u64 len);

/* ---- import and extract (import.c, extract.c) ---- */
struct bkfs_import_stats {
	u64 files, dirs, symlinks, specials, hardlinks, xattrs, bytes, errors;
};
/* Fill a fresh filesystem's root from the directory tree at src. Unreadable
 * entries are reported on stderr as "<prefix>: cannot read PATH: reason" and
 * skipped (counted in stats->errors); the filesystem stays consistent.
 * Returns 0 or a fatal error (the filesystem is then not usable). */
int bkfs_import(struct bkfs_fs *fs, const char *src, const char *prefix, struct bkfs_import_stats *stats);

struct bkfs_extract_stats {
	u64 files, dirs, symlinks, specials, hardlinks, xattrs, bytes, errors;
};
/* Recreate the whole tree under dst (which must exist and be empty).
 * Problems with single objects are reported on stderr ("<prefix>: PATH:
 * reason") and counted in stats->errors; extraction continues. Returns 0 or
 * a fatal error. */
int bkfs_extract(struct bkfs_fs *fs, const char *dst, const char *prefix, struct bkfs_extract_stats *stats);

#endif
