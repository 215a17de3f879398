/* posix_ext.h - POSIX operations the FUSE adapter needs beyond fs.h: rename
 * (plain, no-replace and exchange), attribute changes (chmod, chown,
 * utimens) and xattr changes in their own transactions, and sync.
 * Every function opens and commits its own transactions, like the struct
 * bkfs_fs functions of fs.h, and keeps nlink, parent fields and times exact
 * (what `bkfs fsck` checks). */
#ifndef BKFS_POSIX_EXT_H
#define BKFS_POSIX_EXT_H
#include "fs.h"

#define BKFS_RENAME_NOREPLACE (1u << 0) /* fail with -BKFS_E_EXIST if the target exists */
#define BKFS_RENAME_EXCHANGE  (1u << 1) /* swap two existing names */
#define BKFS_RENAME_ORPHAN    (1u << 2) /* the target is open: see BKFS_REMOVE_ORPHAN */
/* Rename oname in odir to nname in ndir. A target that exists is replaced
 * (a directory only by a directory, which must be empty; a non-directory
 * only by a non-directory) and loses a link; its inode goes when that was
 * the last one. Renaming a name onto another link of the same inode does
 * nothing. A directory cannot move below itself (-BKFS_E_INVAL). A replaced
 * inode goes as bkfs_remove() removes one. */
int bkfs_rename(struct bkfs_fs *fs, u64 odir, const char *oname, u64 ndir, const char *nname, unsigned flags);
/* RENAME_WHITEOUT (overlayfs): the same rename (not an exchange), and a
 * whiteout - a character device 0:0 owned by wo - takes the source name in
 * the same transaction. */
struct bkfs_whiteout {
	u32 uid, gid;
};
int bkfs_rename_whiteout(struct bkfs_fs *fs, u64 odir, const char *oname, u64 ndir, const char *nname,
			 unsigned flags, const struct bkfs_whiteout *wo);

/* Removed inodes never pass through an unreachable state: one that loses
 * its last link goes in the same transaction as its name when its data is
 * small; otherwise it stays with nlink 0 and an entry in the orphans btree
 * (written in that transaction) until bkfs_orphan_release(): at once for a
 * large file (its data goes in bounded transactions), at the last close for
 * an open one (BKFS_REMOVE_ORPHAN, BKFS_RENAME_ORPHAN). After a crash,
 * bkfs_reap_orphans() finishes what is left. */
#define BKFS_REMOVE_DIR        (1u << 0) /* rmdir: name must be an empty directory */
#define BKFS_REMOVE_KEEP_TIMES (1u << 1) /* leave the directory's mtime/ctime alone */
#define BKFS_REMOVE_ORPHAN     (1u << 2) /* the inode is open: keep it as an orphan if this was its last link */
/* unlink (or rmdir with BKFS_REMOVE_DIR) name in dir. */
int bkfs_remove(struct bkfs_fs *fs, u64 dir, const char *name, unsigned flags);
/* Remove orphan inum (its data in bounded transactions, then the inode and
 * its entry together); 0 and nothing done if inum is not on the list. */
int bkfs_orphan_release(struct bkfs_fs *fs, u64 inum);
/* Release every orphan: leftovers of a crash. Only when no file can be open
 * (mount time). *nr (may be NULL) receives how many went. */
int bkfs_reap_orphans(struct bkfs_fs *fs, unsigned *nr);

/* Older versions moved such inodes to hidden names in the root
 * (BKFS_HIDDEN_PREFIX "INUM.N", or "oINUM.N" for open files) instead. */
#define BKFS_HIDDEN_PREFIX ".bkfs_hidden."
/* Remove every hidden name (BKFS_HIDDEN_PREFIX) in the root: leftovers of an
 * older version's crash. Only when no file can be open (mount time). *nr
 * (may be NULL) receives how many went. */
int bkfs_reap_hidden(struct bkfs_fs *fs, unsigned *nr);

#define BKFS_ATTR_MODE  (1u << 0) /* permission bits (07777); the type is kept */
#define BKFS_ATTR_UID   (1u << 1)
#define BKFS_ATTR_GID   (1u << 2)
#define BKFS_ATTR_ATIME (1u << 3)
#define BKFS_ATTR_MTIME (1u << 4)
#define BKFS_ATTR_CTIME (1u << 5) /* ctime_ns instead of now */
struct bkfs_attr_change {
	unsigned mask;
	u32 mode, uid, gid;
	u64 atime_ns, mtime_ns, ctime_ns;
};
/* Apply the fields in c->mask and set ctime (to now unless BKFS_ATTR_CTIME);
 * out (may be NULL) receives the new inode. */
int bkfs_setattr(struct bkfs_fs *fs, u64 inum, const struct bkfs_attr_change *c, struct bkfs_inode *out);

/* xattrs in their own transactions: set and remove also update ctime.
 * Errors as bkfs_xattr_get/set/remove. */
int bkfs_getxattr(struct bkfs_fs *fs, u64 inum, const char *name, void *buf, size_t size);
int bkfs_setxattr(struct bkfs_fs *fs, u64 inum, const char *name, const void *val, size_t len, int flags);
int bkfs_removexattr(struct bkfs_fs *fs, u64 inum, const char *name);

/* fallocate(2) on a regular file: mode 0 preallocates [off, off + len)
 * (reservation keys over its holes: they read as zeros and count in
 * sectors) and grows i_size to its end; KEEP_SIZE leaves i_size alone;
 * PUNCH_HOLE (only with KEEP_SIZE) removes the range's data (partial blocks
 * zeroed); ZERO_RANGE makes the range read as zeros and stay allocated
 * (with or without KEEP_SIZE). Other combinations: -BKFS_E_INVAL. len 0:
 * -BKFS_E_INVAL, a range past 2^63: -BKFS_E_RANGE. */
#define BKFS_FALLOC_KEEP_SIZE  (1u << 0)
#define BKFS_FALLOC_PUNCH_HOLE (1u << 1)
#define BKFS_FALLOC_ZERO_RANGE (1u << 2)
int bkfs_fallocate(struct bkfs_fs *fs, u64 inum, unsigned mode, u64 off, u64 len);
/* lseek(2) SEEK_DATA (data true) / SEEK_HOLE from off: *out receives the
 * offset; -BKFS_E_NOENT (ENXIO) when off is at or past i_size, or no data
 * follows. Reservations count as holes; the end of the file is one. */
int bkfs_seek_data(struct bkfs_fs *fs, u64 inum, u64 off, bool data, u64 *out);

/* Make every committed update durable (journal flush, devices flushed). */
int bkfs_sync(struct bkfs_fs *fs);

#endif
