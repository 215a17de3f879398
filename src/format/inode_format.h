/* inode_format.h - inode, dirent and xattr keys. */
#ifndef BKFS_INODE_FORMAT_H
#define BKFS_INODE_FORMAT_H
#include "bkey_format.h"

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

#endif
