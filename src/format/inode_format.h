/* inode_format.h - inode, dirent and xattr keys. */
#ifndef BKFS_INODE_FORMAT_H
#define BKFS_INODE_FORMAT_H
#include "bkey_format.h"
#include <string.h>

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
 * the root, on older inodes and on an inode whose recorded dirents were all
 * removed while it kept other links. Format 5: after it, the names of up to
 * INODE_NAMES_MAX - 1 more of a file's dirents (its hard links), each u64
 * dir, u8 len, len bytes of name, zero padding to 8 bytes. See
 * docs/FORMAT.md 4.5. */
#define INODE_NAME_MAX BKFS_NAME_MAX
#define INODE_NAMES_MAX 5

/* A recorded name in an inode value; dir is 0 for the first (its
 * directory is the inode's parent field). */
struct inode_name_ref {
	u64 dir;
	const u8 *name;
	unsigned len;
};

static inline size_t inode_name_rec_bytes(unsigned i, size_t len)
{
	return (i ? 8 : 0) + (1 + len + 7) / 8 * 8;
}

/* The recorded names of an inode value of vb bytes, into refs[0..]: how
 * many (0 if none), or -1 if the bytes after the inode are not well-formed
 * names (the checker's inode_name_bad). */
static inline int inode_names_parse(const void *val, size_t vb, struct inode_name_ref *refs)
{
	const u8 *t = (const u8 *)val + sizeof(struct bkfs_inode);
	size_t room = vb > sizeof(struct bkfs_inode) ? vb - sizeof(struct bkfs_inode) : 0, off = 0;
	int nr = 0;
	while (off < room) {
		struct inode_name_ref r = { 0 };
		size_t at = off;
		if (nr == INODE_NAMES_MAX)
			return -1;
		if (nr) {
			if (room - off < 9)
				return -1;
			memcpy(&r.dir, t + off, 8);
			if (r.dir < BKFS_ROOT_INO)
				return -1;
			at += 8;
		}
		r.len = t[at];
		r.name = t + at + 1;
		size_t end = off + inode_name_rec_bytes((unsigned)nr, r.len);
		if (!r.len || end > room || dirent_name_bad(r.name, r.len))
			return -1;
		for (size_t i = at + 1 + r.len; i < end; i++)
			if (t[i])
				return -1;
		refs[nr++] = r;
		off = end;
	}
	return nr;
}

/* The first recorded name: 1 if there is one (name, len set), 0 if there is
 * none, -1 if the names are malformed (inode_names_parse). */
static inline int inode_name_parse(const void *val, size_t vb, const u8 **name, unsigned *len)
{
	struct inode_name_ref refs[INODE_NAMES_MAX];
	int nr = inode_names_parse(val, vb, refs);
	if (nr <= 0)
		return nr;
	*name = refs[0].name;
	*len = refs[0].len;
	return 1;
}

/* value bytes of an inode with a recorded name of len bytes (0: none) */
static inline size_t inode_val_bytes(size_t len)
{
	return sizeof(struct bkfs_inode) + (len ? inode_name_rec_bytes(0, len) : 0);
}

/* the most value bytes an inode can have: every name of the longest */
static inline size_t inode_val_bytes_max(void)
{
	return inode_val_bytes(INODE_NAME_MAX) + (INODE_NAMES_MAX - 1) * inode_name_rec_bytes(1, INODE_NAME_MAX);
}

/* Write refs[0..nr) after the inode at val (inode_val_bytes_max() room):
 * the value's bytes. */
static inline size_t inode_names_encode(void *val, const struct inode_name_ref *refs, unsigned nr)
{
	u8 *t = (u8 *)val + sizeof(struct bkfs_inode);
	size_t off = 0;
	for (unsigned i = 0; i < nr && i < INODE_NAMES_MAX; i++) {
		size_t rec = inode_name_rec_bytes(i, refs[i].len);
		memset(t + off, 0, rec);
		if (i) {
			memcpy(t + off, &refs[i].dir, 8);
			off += 8;
			rec -= 8;
		}
		t[off] = (u8)refs[i].len;
		memcpy(t + off + 1, refs[i].name, refs[i].len);
		off += rec;
	}
	return sizeof(struct bkfs_inode) + off;
}

/* xattr: position (inum, hash(name), 0) */
struct bkfs_xattr {
	u16 val_len;
	u8 name_len;
	u8 pad;
	u8 data[]; /* name then value */
} __attribute__((packed));

#endif
