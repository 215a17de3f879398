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
	u64 parent;       /* directories: parent directory inum; others: the directory
			   * of the recorded name (below), 0 if none */
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

/* Why name (len bytes) cannot be a file name, or NULL if it can: 1..255
 * bytes, no NUL, no '/', not . or .. (dirents, recorded names, and the
 * names the filesystem layer accepts). */
static inline const char *dirent_name_bad(const u8 *name, size_t len)
{
	if (!len)
		return "empty name";
	if (len > BKFS_NAME_MAX)
		return "name longer than 255 bytes";
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return "name is . or ..";
	for (size_t i = 0; i < len; i++) {
		if (!name[i])
			return "NUL in name";
		if (name[i] == '/')
			return "'/' in name";
	}
	return NULL;
}

/* Format 4: the value may go on past the 80 bytes with the inode's recorded
 * name, the name of one of its dirents in directory `parent` (a back-
 * reference, so that a file whose dirent is lost keeps its name): u8 len,
 * len bytes of name, zero padding to 8 bytes. Absent (value of 80 bytes) on
 * the root, on older inodes and on an inode whose recorded dirent was
 * removed while it kept other links. See docs/FORMAT.md 4.5. */
#define INODE_NAME_MAX BKFS_NAME_MAX

/* The recorded name of an inode value of vb bytes: 1 if there is one (name,
 * len set), 0 if there is none, -1 if the bytes after the inode are not a
 * well-formed name (the checker's inode_name_bad). */
static inline int inode_name_parse(const void *val, size_t vb, const u8 **name, unsigned *len)
{
	const u8 *t = (const u8 *)val + sizeof(struct bkfs_inode);
	if (vb <= sizeof(struct bkfs_inode))
		return 0;
	size_t room = vb - sizeof(struct bkfs_inode), n = t[0];
	if (!n || 1 + n > room || room - (1 + n) >= 8)
		return -1;
	for (size_t i = 1 + n; i < room; i++)
		if (t[i])
			return -1;
	if (dirent_name_bad(t + 1, n))
		return -1;
	*name = t + 1;
	*len = (unsigned)n;
	return 1;
}

/* value bytes of an inode with a recorded name of len bytes (0: none) */
static inline size_t inode_val_bytes(size_t len)
{
	return sizeof(struct bkfs_inode) + (len ? (1 + len + 7) / 8 * 8 : 0);
}

/* xattr: position (inum, hash(name), 0) */
struct bkfs_xattr {
	u16 val_len;
	u8 name_len;
	u8 pad;
	u8 data[]; /* name then value */
} __attribute__((packed));

#endif
