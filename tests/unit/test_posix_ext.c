/* test_posix_ext.c - the operations the FUSE adapter adds to the fs layer
 * (src/fs/posix_ext.h): rename in every form (same and other directory,
 * over files and empty directories, refused cases, no-replace, exchange,
 * two links of one inode, long hash chains), removal (small and large files:
 * never an unreachable inode; leftovers reaped), attribute and xattr changes.
 * Link counts, parent fields, data and times are checked directly, and the
 * image must check clean with `fsck -n` at the end. */
#include "test.h"
#include "fs/posix_ext.h"
#include "fsck/fsck.h"
#include "btree/iter.h"
#include "btree/trans.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static struct bkfs_fs *fs;

static u64 mk(u64 dir, const char *name, u32 mode)
{
	u64 inum = 0;
	CHECK_EQ(bkfs_create(fs, dir, name, mode, 0, 0, 0, NULL, &inum, NULL), 0);
	return inum;
}

static u32 nlink(u64 inum)
{
	struct bkfs_inode in;
	if (bkfs_inode_find(fs, inum, &in))
		return 0;
	return in.nlink;
}

static u64 parent(u64 inum)
{
	struct bkfs_inode in;
	if (bkfs_inode_find(fs, inum, &in))
		return 0;
	return in.parent;
}

static struct inode_names names_of(u64 inum, struct bkfs_inode *in)
{
	struct trans t;
	struct inode_names nm = { 0 };
	trans_init(&t, fs);
	if (bkfs_inode_get_named(&t, inum, in, &nm))
		nm.nr = 0;
	trans_exit(&t);
	return nm;
}

/* the inode's first recorded name is name in dir (name NULL: it records
 * none) */
static bool named(u64 inum, u64 dir, const char *name)
{
	struct bkfs_inode in = { 0 };
	struct inode_names nm = names_of(inum, &in);
	if (!name)
		return !nm.nr;
	return nm.nr && in.parent == dir && nm.dir[0] == dir && nm.len[0] == strlen(name) &&
	       !memcmp(nm.name[0], name, nm.len[0]);
}

/* the inode records exactly these names, in this order: dirs[i]/names[i] */
static bool names_are(u64 inum, unsigned nr, const u64 *dirs, const char *const *names)
{
	struct bkfs_inode in;
	struct inode_names nm = names_of(inum, &in);
	if (nm.nr != nr || (nr && in.parent != dirs[0]))
		return false;
	for (unsigned i = 0; i < nr; i++)
		if (nm.dir[i] != dirs[i] || nm.len[i] != strlen(names[i]) || memcmp(nm.name[i], names[i], nm.len[i]))
			return false;
	return true;
}

static u64 look(u64 dir, const char *name)
{
	u64 inum = 0;
	if (bkfs_lookup(fs, dir, name, &inum, NULL))
		return 0;
	return inum;
}

static int count_cb(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot)
{
	(*(u64 *)arg)++;
	return 0;
}

static u64 entries(u64 dir)
{
	u64 n = 0;
	CHECK_EQ(bkfs_readdir(fs, dir, 0, count_cb, &n), 0);
	return n;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[4096];
	snprintf(path, sizeof(path), "%s/posix_ext.img", tmp);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && !ftruncate(fd, 256 << 20));
	close(fd);
	char *paths[1] = { path };
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { 0 };
	CHECK_EQ(bkfs_format(paths, 1, &fo, &err), 0);
	REQUIRE_EQ(bkfs_open(paths, 1, 0, &fs, &err), 0);
	pb_exit(&err);
	if (!fs)
		TEST_MAIN_END();
	const u64 R = BKFS_ROOT_INO;

	u64 a = mk(R, "a", S_IFDIR | 0755), b = mk(R, "b", S_IFDIR | 0755), c = mk(R, "c", S_IFDIR | 0755);
	u64 x = mk(a, "x", S_IFREG | 0644), y = mk(b, "y", S_IFREG | 0644);
	u64 sub = mk(a, "sub", S_IFDIR | 0755), emptyd = mk(b, "emptyd", S_IFDIR | 0755);
	u64 z = mk(c, "z", S_IFREG | 0644);
	mk(sub, "inner", S_IFREG | 0644);
	char data[10000];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + 1);
	CHECK_EQ(bkfs_file_write(fs, x, 0, data, sizeof(data)), (ssize_t)sizeof(data));
	CHECK_EQ(bkfs_file_write(fs, y, 0, data, 5000), 5000);
	CHECK_EQ(nlink(R), 5);
	CHECK_EQ(nlink(a), 3);

	/* within a directory */
	CHECK_EQ(bkfs_rename(fs, a, "x", a, "x2", 0), 0);
	CHECK_EQ(look(a, "x"), 0);
	CHECK_EQ(look(a, "x2"), x);
	CHECK(named(x, a, "x2"));
	/* over an existing file in another directory: the old inode goes */
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, b, &in), 0);
	u64 bmtime = in.mtime_ns;
	CHECK_EQ(bkfs_rename(fs, a, "x2", b, "y", 0), 0);
	CHECK_EQ(look(b, "y"), x);
	CHECK_EQ(look(a, "x2"), 0);
	CHECK_EQ(bkfs_inode_find(fs, y, NULL), -BKFS_E_NOENT);
	CHECK_EQ(nlink(x), 1);
	CHECK(named(x, b, "y"));
	char buf[10000];
	CHECK_EQ(bkfs_file_read(fs, x, 0, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	CHECK(!memcmp(buf, data, sizeof(data)));
	CHECK_EQ(bkfs_inode_find(fs, b, &in), 0);
	CHECK(in.mtime_ns >= bmtime && in.ctime_ns == in.mtime_ns);

	/* a directory to another parent: link counts and the parent field */
	CHECK_EQ(bkfs_rename(fs, a, "sub", b, "sub", 0), 0);
	CHECK_EQ(nlink(a), 2);
	CHECK_EQ(nlink(b), 4);
	CHECK_EQ(parent(sub), b);
	CHECK(named(sub, b, "sub"));
	CHECK(look(sub, "inner") != 0);
	/* refused: directory over a non-empty one, file over a directory,
	 * directory over a file, below itself, no-replace over a name */
	CHECK_EQ(bkfs_rename(fs, c, "z", b, "sub", 0), -BKFS_E_ISDIR);
	CHECK_EQ(bkfs_rename(fs, b, "sub", b, "y", 0), -BKFS_E_NOTDIR);
	u64 deep = mk(emptyd, "deep", S_IFDIR | 0755);
	CHECK_EQ(bkfs_rename(fs, b, "emptyd", deep, "loop", 0), -BKFS_E_INVAL);
	CHECK_EQ(bkfs_rename(fs, b, "emptyd", emptyd, "self", 0), -BKFS_E_INVAL);
	CHECK_EQ(bkfs_rename(fs, b, "emptyd", b, "sub", 0), -BKFS_E_NOTEMPTY);
	CHECK_EQ(bkfs_rename(fs, c, "z", b, "y", BKFS_RENAME_NOREPLACE), -BKFS_E_EXIST);
	CHECK_EQ(bkfs_rename(fs, c, "nope", b, "y", 0), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_rename(fs, c, "z", b, "a/b", 0), -BKFS_E_INVAL);
	CHECK_EQ(look(c, "z"), z);
	CHECK_EQ(look(b, "y"), x);
	/* a directory over an empty directory */
	CHECK_EQ(bkfs_unlink(fs, emptyd, "deep", true), 0);
	CHECK_EQ(bkfs_rename(fs, b, "sub", b, "emptyd", 0), 0);
	CHECK_EQ(bkfs_inode_find(fs, emptyd, NULL), -BKFS_E_NOENT);
	CHECK_EQ(look(b, "emptyd"), sub);
	CHECK_EQ(nlink(b), 3);
	CHECK_EQ(parent(sub), b);

	/* exchange a file and a directory across directories */
	CHECK_EQ(bkfs_rename(fs, c, "z", b, "emptyd", BKFS_RENAME_EXCHANGE), 0);
	CHECK_EQ(look(c, "z"), sub);
	CHECK_EQ(look(b, "emptyd"), z);
	CHECK_EQ(parent(sub), c);
	CHECK(named(sub, c, "z"));
	CHECK(named(z, b, "emptyd"));
	CHECK_EQ(nlink(c), 3);
	CHECK_EQ(nlink(b), 2);
	CHECK_EQ(bkfs_rename(fs, c, "z", b, "none", BKFS_RENAME_EXCHANGE), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_rename(fs, c, "z", b, "y", BKFS_RENAME_EXCHANGE | BKFS_RENAME_NOREPLACE), -BKFS_E_INVAL);
	/* a directory exchanged with its own ancestor's entry is refused */
	u64 inner2 = mk(sub, "d2", S_IFDIR | 0755);
	CHECK_EQ(bkfs_rename(fs, c, "z", sub, "d2", BKFS_RENAME_EXCHANGE), -BKFS_E_INVAL);
	CHECK_EQ(parent(inner2), sub);

	/* two links of one inode: nothing happens */
	CHECK_EQ(bkfs_link(fs, x, a, "xl"), 0);
	CHECK_EQ(nlink(x), 2);
	CHECK_EQ(bkfs_rename(fs, a, "xl", b, "y", 0), 0);
	CHECK_EQ(look(a, "xl"), x);
	CHECK_EQ(look(b, "y"), x);
	CHECK_EQ(nlink(x), 2);
	/* every link is recorded (format 5), the first in the parent field:
	 * renames move their record, removals drop it (the next becomes the
	 * first), a file left with none records its next new or moved name */
	CHECK(names_are(x, 2, (u64[]){ b, a }, (const char *[]){ "y", "xl" }));
	{
		u64 h = mk(c, "h", S_IFREG | 0644);
		CHECK_EQ(bkfs_link(fs, h, a, "h2"), 0);
		CHECK(names_are(h, 2, (u64[]){ c, a }, (const char *[]){ "h", "h2" }));
		CHECK_EQ(bkfs_rename(fs, a, "h2", a, "h3", 0), 0);
		CHECK(names_are(h, 2, (u64[]){ c, a }, (const char *[]){ "h", "h3" }));
		CHECK_EQ(bkfs_remove(fs, c, "h", 0), 0);
		CHECK(names_are(h, 1, (u64[]){ a }, (const char *[]){ "h3" }));
		CHECK_EQ(bkfs_link(fs, h, c, "h4"), 0);
		CHECK(names_are(h, 2, (u64[]){ a, c }, (const char *[]){ "h3", "h4" }));
		CHECK_EQ(bkfs_unlink(fs, c, "h4", false), 0);
		CHECK(names_are(h, 1, (u64[]){ a }, (const char *[]){ "h3" }));
		CHECK_EQ(bkfs_rename(fs, a, "h3", b, "h5", 0), 0);
		CHECK(named(h, b, "h5"));
		u64 o = mk(c, "o", S_IFREG | 0644);
		CHECK_EQ(bkfs_link(fs, o, c, "o2"), 0);
		CHECK_EQ(bkfs_rename(fs, b, "h5", c, "o", 0), 0); /* over o's first name */
		CHECK(names_are(o, 1, (u64[]){ c }, (const char *[]){ "o2" }));
		CHECK(names_are(h, 1, (u64[]){ c }, (const char *[]){ "o" }));
		CHECK_EQ(bkfs_remove(fs, c, "o", 0), 0);
		CHECK_EQ(bkfs_remove(fs, c, "o2", 0), 0);

		/* more links than records: the first INODE_NAMES_MAX are kept */
		u64 m = mk(c, "m0", S_IFREG | 0644);
		char nm[16];
		for (int i = 1; i < INODE_NAMES_MAX + 2; i++) {
			snprintf(nm, sizeof(nm), "m%d", i);
			CHECK_EQ(bkfs_link(fs, m, i % 2 ? a : c, nm), 0);
		}
		u64 md[] = { c, a, c, a, c };
		const char *mn[] = { "m0", "m1", "m2", "m3", "m4" };
		_Static_assert(INODE_NAMES_MAX == 5, "the list below");
		CHECK(names_are(m, 5, md, mn));
		CHECK_EQ(bkfs_unlink(fs, a, "m5", false), 0); /* not recorded: nothing */
		CHECK(names_are(m, 5, md, mn));
		CHECK_EQ(bkfs_unlink(fs, a, "m3", false), 0);
		CHECK(names_are(m, 4, (u64[]){ c, a, c, c }, (const char *[]){ "m0", "m1", "m2", "m4" }));
		CHECK_EQ(bkfs_rename(fs, c, "m6", b, "m6", 0), 0); /* unrecorded, moved: recorded now */
		CHECK(names_are(m, 5, (u64[]){ c, a, c, c, b }, (const char *[]){ "m0", "m1", "m2", "m4", "m6" }));
		for (int i = 0; i < INODE_NAMES_MAX + 2; i++) {
			snprintf(nm, sizeof(nm), "m%d", i);
			u64 d = i == 6 ? b : i % 2 ? a : c;
			if (i != 3 && i != 5)
				CHECK_EQ(bkfs_remove(fs, d, nm, 0), 0);
		}
	}
	/* over another link of a hard-linked file: one link less, data kept */
	u64 w = mk(a, "w", S_IFREG | 0644);
	CHECK_EQ(bkfs_rename(fs, a, "w", a, "xl", 0), 0);
	CHECK_EQ(nlink(x), 1);
	CHECK_EQ(look(a, "xl"), w);
	CHECK_EQ(bkfs_file_read(fs, x, 0, buf, sizeof(buf)), (ssize_t)sizeof(buf));

	/* many names in one directory, renamed around (hash chains) */
	u64 big = mk(R, "big", S_IFDIR | 0755);
	enum { NR_BIG = 300 };
	char n1[32], n2[32];
	for (int i = 0; i < NR_BIG; i++) {
		snprintf(n1, sizeof(n1), "f%d", i);
		mk(big, n1, S_IFREG | 0644);
	}
	u64 a_before = entries(a), pdir = big, replaced = 0;
	for (int i = 0; i < NR_BIG; i++) {
		snprintf(n1, sizeof(n1), "f%d", i);
		u64 ndir = pdir;
		if (i % 3 != 2) { /* a new name, here or in a */
			ndir = i % 5 ? big : a;
			snprintf(n2, sizeof(n2), i % 3 ? "g%d" : "h%d", i + 1000);
		} else { /* over the name the previous file got */
			replaced++;
		}
		CHECK_EQ(bkfs_rename(fs, big, n1, ndir, n2, 0), 0);
		pdir = ndir;
	}
	CHECK_EQ(entries(big) + entries(a) - a_before, NR_BIG - replaced);

	/* attributes */
	struct bkfs_attr_change ch = { .mask = BKFS_ATTR_MODE | BKFS_ATTR_UID | BKFS_ATTR_GID | BKFS_ATTR_MTIME,
				       .mode = S_IFDIR | 04711, .uid = 7, .gid = 8, .mtime_ns = 123456789 };
	CHECK_EQ(bkfs_setattr(fs, x, &ch, &in), 0);
	CHECK_EQ(in.mode, S_IFREG | 04711);
	CHECK_EQ(in.uid, 7);
	CHECK_EQ(in.gid, 8);
	CHECK_EQ(in.mtime_ns, 123456789);
	CHECK(in.ctime_ns > 123456789);
	ch = (struct bkfs_attr_change){ .mask = BKFS_ATTR_ATIME | BKFS_ATTR_CTIME, .atime_ns = 5, .ctime_ns = 6 };
	CHECK_EQ(bkfs_setattr(fs, x, &ch, &in), 0);
	CHECK_EQ(in.atime_ns, 5);
	CHECK_EQ(in.ctime_ns, 6);
	CHECK_EQ(bkfs_setattr(fs, 999999, &ch, NULL), -BKFS_E_NOENT);

	/* xattrs: set, replace, get, remove, ctime */
	CHECK_EQ(bkfs_setxattr(fs, x, "user.k", "v1", 2, 0), 0);
	CHECK_EQ(bkfs_inode_find(fs, x, &in), 0);
	CHECK(in.ctime_ns > 6);
	CHECK_EQ(bkfs_setxattr(fs, x, "user.k", "v22", 3, BKFS_XATTR_CREATE), -BKFS_E_EXIST);
	CHECK_EQ(bkfs_setxattr(fs, x, "user.k", "v22", 3, BKFS_XATTR_REPLACE), 0);
	CHECK_EQ(bkfs_setxattr(fs, x, "user.none", "v", 1, BKFS_XATTR_REPLACE), -BKFS_E_NOENT);
	char xv[8];
	CHECK_EQ(bkfs_getxattr(fs, x, "user.k", NULL, 0), 3);
	CHECK_EQ(bkfs_getxattr(fs, x, "user.k", xv, 2), -BKFS_E_RANGE);
	CHECK_EQ(bkfs_getxattr(fs, x, "user.k", xv, sizeof(xv)), 3);
	CHECK(!memcmp(xv, "v22", 3));
	CHECK_EQ(bkfs_removexattr(fs, x, "user.k"), 0);
	CHECK_EQ(bkfs_getxattr(fs, x, "user.k", NULL, 0), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_removexattr(fs, x, "user.k"), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_setxattr(fs, 999999, "user.k", "v", 1, 0), -BKFS_E_NOENT);

	/* removal: small and large files, several links, directories */
	u64 rd = mk(R, "rm", S_IFDIR | 0755);
	u64 small = mk(rd, "small", S_IFREG | 0644), many = mk(rd, "many", S_IFREG | 0644);
	CHECK_EQ(bkfs_file_write(fs, small, 0, data, sizeof(data)), (ssize_t)sizeof(data));
	for (int i = 0; i < 80; i++) /* 80 separate extents: removed through a hidden name */
		CHECK_EQ(bkfs_file_write(fs, many, (u64)i * 65536, data, 4096), 4096);
	CHECK_EQ(bkfs_link(fs, many, rd, "many2"), 0);
	u64 rdm = mk(rd, "d", S_IFDIR | 0755);
	mk(rdm, "f", S_IFREG | 0644);
	CHECK_EQ(bkfs_remove(fs, rd, "d", BKFS_REMOVE_DIR), -BKFS_E_NOTEMPTY);
	CHECK_EQ(bkfs_remove(fs, rd, "d", 0), -BKFS_E_ISDIR);
	CHECK_EQ(bkfs_remove(fs, rd, "small", BKFS_REMOVE_DIR), -BKFS_E_NOTDIR);
	CHECK_EQ(bkfs_remove(fs, rd, "nope", 0), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_remove(fs, rdm, "f", 0), 0);
	CHECK_EQ(nlink(rd), 3);
	CHECK_EQ(bkfs_remove(fs, rd, "d", BKFS_REMOVE_DIR), 0);
	CHECK_EQ(nlink(rd), 2);
	CHECK_EQ(bkfs_inode_find(fs, rdm, NULL), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_remove(fs, rd, "small", 0), 0);
	CHECK_EQ(bkfs_inode_find(fs, small, NULL), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_remove(fs, rd, "many", 0), 0); /* one of two links */
	CHECK_EQ(nlink(many), 1);
	CHECK_EQ(bkfs_remove(fs, rd, "many2", 0), 0);
	CHECK_EQ(bkfs_inode_find(fs, many, NULL), -BKFS_E_NOENT);
	CHECK_EQ(entries(rd), 0);
	/* a large file replaced by rename */
	u64 many3 = mk(rd, "many3", S_IFREG | 0644), repl = mk(rd, "repl", S_IFREG | 0644);
	for (int i = 0; i < 80; i++)
		CHECK_EQ(bkfs_file_write(fs, many3, (u64)i * 65536, data, 4096), 4096);
	CHECK_EQ(bkfs_rename(fs, rd, "repl", rd, "many3", 0), 0);
	CHECK_EQ(bkfs_inode_find(fs, many3, NULL), -BKFS_E_NOENT);
	CHECK_EQ(look(rd, "many3"), repl);
	CHECK_EQ(entries(rd), 1);
	/* leftovers of a crash: hidden names in the root are finished */
	u64 left = mk(R, BKFS_HIDDEN_PREFIX "123.0", S_IFREG | 0644);
	for (int i = 0; i < 40; i++)
		CHECK_EQ(bkfs_file_write(fs, left, (u64)i * 65536, data, 4096), 4096);
	mk(R, BKFS_HIDDEN_PREFIX "124.0", S_IFREG | 0644);
	CHECK_EQ(bkfs_inode_find(fs, R, &in), 0);
	u64 rmt = in.mtime_ns;
	u64 before = entries(R);
	unsigned nr_reaped = 0;
	CHECK_EQ(bkfs_reap_hidden(fs, &nr_reaped), 0);
	CHECK_EQ(nr_reaped, 2);
	CHECK_EQ(entries(R), before - 2);
	CHECK_EQ(bkfs_inode_find(fs, left, NULL), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_inode_find(fs, R, &in), 0);
	CHECK_EQ(in.mtime_ns, rmt);

	/* open files losing their last link stay as orphans (nlink 0, data
	 * readable and writable) until released */
	u64 op = mk(rd, "open", S_IFREG | 0644), op2 = mk(rd, "open2", S_IFREG | 0644);
	u64 bigf = mk(rd, "bigf", S_IFREG | 0644);
	for (int i = 0; i < 40; i++)
		CHECK_EQ(bkfs_file_write(fs, op, (u64)i * 65536, data, 4096), 4096);
	CHECK_EQ(bkfs_file_write(fs, op2, 0, data, 100), 100);
	CHECK_EQ(bkfs_file_write(fs, bigf, 0, data, sizeof(data)), (ssize_t)sizeof(data));
	CHECK_EQ(bkfs_remove(fs, rd, "open", BKFS_REMOVE_ORPHAN), 0);
	CHECK_EQ(look(rd, "open"), 0);
	CHECK_EQ(bkfs_inode_find(fs, op, &in), 0);
	CHECK_EQ(in.nlink, 0);
	CHECK(in.sectors > 0);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_orphans, POS(0, op), NULL), 0);
	char rb[4096];
	CHECK_EQ(bkfs_file_read(fs, op, 39 * 65536, rb, 4096), 4096);
	CHECK(!memcmp(rb, data, 4096));
	CHECK_EQ(bkfs_file_write(fs, op, 0, data, 4096), 4096);
	/* renamed over while open */
	CHECK_EQ(bkfs_rename(fs, rd, "bigf", rd, "open2", BKFS_RENAME_ORPHAN), 0);
	CHECK_EQ(look(rd, "open2"), bigf);
	CHECK_EQ(nlink(op2), 0);
	CHECK_EQ(bkfs_inode_find(fs, op2, NULL), 0);
	/* a name of an open file with other links: only a link goes */
	u64 two = mk(rd, "two", S_IFREG | 0644);
	CHECK_EQ(bkfs_link(fs, two, rd, "two2"), 0);
	CHECK_EQ(bkfs_remove(fs, rd, "two", BKFS_REMOVE_ORPHAN), 0);
	CHECK_EQ(nlink(two), 1);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_orphans, POS(0, two), NULL), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_orphan_release(fs, two), 0); /* not an orphan: nothing */
	CHECK_EQ(nlink(two), 1);
	/* checks clean with orphans present (reopen without release = a crash) */
	CHECK_EQ(bkfs_sync(fs), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	{
		struct fsck_opts fo = { .mode = FSCK_MODE_NO };
		CHECK_EQ(bkfs_fsck(paths, 1, &fo), 0);
	}
	CHECK_EQ(bkfs_open(paths, 1, 0, &fs, &err), 0);
	CHECK_EQ(bkfs_inode_find(fs, op, &in), 0);
	CHECK_EQ(in.nlink, 0);
	CHECK_EQ(bkfs_orphan_release(fs, op2), 0); /* the last close */
	CHECK_EQ(bkfs_inode_find(fs, op2, NULL), -BKFS_E_NOENT);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_orphans, POS(0, op2), NULL), -BKFS_E_NOENT);
	unsigned nr_orphans = 0;
	CHECK_EQ(bkfs_reap_orphans(fs, &nr_orphans), 0); /* the next mount after a crash */
	CHECK_EQ(nr_orphans, 1);
	CHECK_EQ(bkfs_inode_find(fs, op, NULL), -BKFS_E_NOENT);
	struct btree_iter oit;
	struct bkey *ok;
	btree_iter_init(&oit, fs, BTREE_ID_orphans, 0, POS_MIN);
	CHECK_EQ(btree_iter_peek(&oit, &ok), 0);
	CHECK(!ok);
	btree_iter_init(&oit, fs, BTREE_ID_extents, 0, POS(op, 0));
	CHECK_EQ(btree_iter_peek(&oit, &ok), 0);
	CHECK(!ok || ok->p.inode != op);

	/* fallocate: reservations count in sectors, read as zeros, are holes
	 * to SEEK_DATA; punch and zero-range; i_size as the mode says */
	u64 fa = mk(rd, "falloc", S_IFREG | 0644), pos = 0;
	CHECK_EQ(bkfs_fallocate(fs, fa, 0, 1000, 1 << 20), 0);
	CHECK_EQ(bkfs_inode_find(fs, fa, &in), 0);
	CHECK_EQ(in.size, 1000 + (1 << 20));
	CHECK_EQ(in.sectors, ROUND_UP(1000 + (1 << 20), 4096) >> 9);
	CHECK_EQ(bkfs_seek_data(fs, fa, 0, true, &pos), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_seek_data(fs, fa, 5, false, &pos), 0);
	CHECK_EQ(pos, 5);
	CHECK_EQ(bkfs_file_write(fs, fa, 8192, data, 4096), 4096);
	CHECK_EQ(bkfs_inode_find(fs, fa, &in), 0);
	CHECK_EQ(in.sectors, ROUND_UP(1000 + (1 << 20), 4096) >> 9); /* the write replaced reserved space */
	CHECK_EQ(bkfs_seek_data(fs, fa, 0, true, &pos), 0);
	CHECK_EQ(pos, 8192);
	CHECK_EQ(bkfs_seek_data(fs, fa, 8192, false, &pos), 0);
	CHECK_EQ(pos, 12288);
	CHECK_EQ(bkfs_fallocate(fs, fa, BKFS_FALLOC_KEEP_SIZE, 4 << 20, 4096), 0);
	CHECK_EQ(bkfs_inode_find(fs, fa, &in), 0);
	CHECK_EQ(in.size, 1000 + (1 << 20));
	CHECK_EQ(bkfs_fallocate(fs, fa, BKFS_FALLOC_PUNCH_HOLE, 0, 4096), -BKFS_E_INVAL);
	CHECK_EQ(bkfs_fallocate(fs, fa, BKFS_FALLOC_ZERO_RANGE | BKFS_FALLOC_KEEP_SIZE, 8192 + 100, 50), 0);
	CHECK_EQ(bkfs_file_read(fs, fa, 8192, rb, 4096), 4096);
	CHECK(!memcmp(rb, data, 100) && !rb[100] && !rb[149] && !memcmp(rb + 150, data + 150, 4096 - 150));
	CHECK_EQ(bkfs_fallocate(fs, fa, BKFS_FALLOC_PUNCH_HOLE | BKFS_FALLOC_KEEP_SIZE, 0, 1ull << 40), 0);
	CHECK_EQ(bkfs_inode_find(fs, fa, &in), 0);
	CHECK_EQ(in.sectors, 0);
	CHECK_EQ(in.size, 1000 + (1 << 20));
	CHECK_EQ(bkfs_fallocate(fs, fa, BKFS_FALLOC_ZERO_RANGE, 2 << 20, 8192), 0);
	CHECK_EQ(bkfs_inode_find(fs, fa, &in), 0);
	CHECK_EQ(in.size, (2 << 20) + 8192);
	CHECK_EQ(in.sectors, 16);
	CHECK_EQ(bkfs_fallocate(fs, rd, 0, 0, 4096), -BKFS_E_ISDIR);

	CHECK_EQ(bkfs_sync(fs), 0);

	/* everything survives a reopen, and the image checks clean */
	CHECK_EQ(bkfs_close(fs), 0);
	REQUIRE_EQ(bkfs_open(paths, 1, 0, &fs, &err), 0);
	pb_exit(&err);
	if (fs) {
		CHECK_EQ(look(b, "y"), x);
		CHECK_EQ(look(c, "z"), sub);
		CHECK_EQ(parent(sub), c);
		CHECK_EQ(bkfs_close(fs), 0);
	}
	struct fsck_opts o = { .mode = FSCK_MODE_NO };
	CHECK_EQ(bkfs_fsck(paths, 1, &o), 0);
	unlink(path);
	TEST_MAIN_END();
}
