/* test_posix.c - the fs object layer (src/fs/fs.h): create, lookup, readdir,
 * link, unlink, rmdir, file read/write/truncate against a model, symlinks,
 * xattrs, hash collisions and chain removal, persistence across reopen. */
#include "test.h"
#include "fs/fs.h"
#include "btree/trans.h"
#include "btree/iter.h"
#include <sys/stat.h>
#include <dirent.h>

static u64 rng = 12345;

static struct bkfs_fs *reopen(struct blockdev *bd, struct bkfs_fs *old)
{
	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs = NULL;
	if (old)
		CHECK_EQ(bkfs_close(old), 0);
	struct blockdev *bds[1] = { bd };
	int ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	if (ret)
		fprintf(stderr, "open: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	pb_exit(&err);
	return fs;
}

static int count_cb(void *arg, const char *name, size_t len, u64 inum, unsigned d_type, u64 slot)
{
	(*(u64 *)arg)++;
	return 0;
}

static u64 count_entries(struct bkfs_fs *fs, u64 dir)
{
	u64 n = 0;
	CHECK_EQ(bkfs_readdir(fs, dir, 0, count_cb, &n), 0);
	return n;
}

/* sum of extent sizes of inum */
static u64 extent_sectors(struct bkfs_fs *fs, u64 inum)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 s = 0;
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, 0));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == inum) {
		s += k->size;
		it.pos = bpos_successor(k->p);
	}
	return s;
}

static void check_file(struct bkfs_fs *fs, u64 inum, const u8 *model, u64 size)
{
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, inum, &in), 0);
	CHECK_EQ(in.size, size);
	CHECK_EQ(in.sectors, extent_sectors(fs, inum));
	u8 *buf = malloc(size + 100);
	CHECK_EQ(bkfs_file_read(fs, inum, 0, buf, size + 100), (ssize_t)size);
	CHECK(!memcmp(buf, model, size));
	/* unaligned reads */
	for (int i = 0; i < 20 && size; i++) {
		u64 off = rng_next(&rng) % size, len = rng_next(&rng) % (size - off) + 1;
		CHECK_EQ(bkfs_file_read(fs, inum, off, buf, len), (ssize_t)len);
		CHECK(!memcmp(buf, model + off, len));
	}
	free(buf);
}

int main(void)
{
	struct emu_opts eo = { .size = 256 << 20, .seed = 1 };
	struct blockdev *bd;
	struct printbuf err = PRINTBUF;
	REQUIRE_EQ(emu_dev_create(&eo, &bd), 0);
	bd->keep_open = true;
	struct blockdev *bds[1] = { bd };
	struct format_opts fo = { 0 };
	CHECK_EQ(bkfs_format_devs(bds, 1, &fo, &err), 0);
	struct bkfs_fs *fs = reopen(bd, NULL);
	CHECK(fs != NULL);
	if (!fs)
		TEST_MAIN_END();

	/* ---- create and lookup ---- */
	u64 d1, f1, l1, c1, ino;
	struct bkfs_inode in;
	CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "dir", S_IFDIR | 0755, 1, 2, 0, NULL, &d1, NULL), 0);
	CHECK_EQ(bkfs_create(fs, d1, "file", S_IFREG | 0644, 0, 0, 0, NULL, &f1, NULL), 0);
	CHECK_EQ(bkfs_create(fs, d1, "link", S_IFLNK | 0777, 0, 0, 0, "../some/target", &l1, NULL), 0);
	CHECK_EQ(bkfs_create(fs, d1, "chr", S_IFCHR | 0600, 0, 0, 0x0103, NULL, &c1, NULL), 0);
	CHECK_EQ(bkfs_create(fs, d1, "file", S_IFREG | 0644, 0, 0, 0, NULL, NULL, NULL), -BKFS_E_EXIST);
	CHECK_EQ(bkfs_create(fs, d1, "a/b", S_IFREG | 0644, 0, 0, 0, NULL, NULL, NULL), -BKFS_E_INVAL);
	CHECK_EQ(bkfs_create(fs, f1, "x", S_IFREG | 0644, 0, 0, 0, NULL, NULL, NULL), -BKFS_E_NOTDIR);
	CHECK_EQ(bkfs_lookup(fs, d1, "file", &ino, &in), 0);
	CHECK_EQ(ino, f1);
	CHECK(S_ISREG(in.mode));
	CHECK_EQ(bkfs_lookup(fs, d1, "nope", &ino, NULL), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_lookup_path(fs, "/dir/chr", &ino, &in), 0);
	CHECK_EQ(ino, c1);
	CHECK_EQ(in.rdev, 0x0103);
	CHECK_EQ(bkfs_lookup_path(fs, "/dir/../dir/./link", &ino, NULL), 0);
	CHECK_EQ(ino, l1);
	char tbuf[64];
	CHECK_EQ(bkfs_readlink(fs, l1, tbuf, sizeof(tbuf)), 14);
	CHECK(!strcmp(tbuf, "../some/target"));
	CHECK_EQ(bkfs_inode_find(fs, BKFS_ROOT_INO, &in), 0);
	CHECK_EQ(in.nlink, 3);
	CHECK_EQ(bkfs_inode_find(fs, d1, &in), 0);
	CHECK_EQ(in.parent, BKFS_ROOT_INO);
	CHECK_EQ(in.uid, 1);
	CHECK_EQ(count_entries(fs, d1), 3);

	/* ---- file data against a model ---- */
	u64 msize = 0, mcap = 6 << 20;
	u8 *model = calloc(1, mcap), *buf = malloc(mcap);
	for (int i = 0; i < 60; i++) {
		u64 off = rng_next(&rng) % (4 << 20), len = rng_next(&rng) % (i % 10 == 0 ? 1500000 : 9000) + 1;
		if (i % 7 == 3)
			off = msize; /* append */
		if (off + len > mcap)
			len = mcap - off;
		for (u64 j = 0; j < len; j++)
			buf[j] = rng_next(&rng);
		CHECK_EQ(bkfs_file_write(fs, f1, off, buf, len), (ssize_t)len);
		memcpy(model + off, buf, len);
		msize = MAX(msize, off + len);
		if (i % 9 == 8) {
			u64 ns = rng_next(&rng) % (msize + 10000);
			CHECK_EQ(bkfs_file_truncate(fs, f1, ns), 0);
			if (ns < msize)
				memset(model + ns, 0, msize - ns);
			msize = ns;
		}
	}
	check_file(fs, f1, model, msize);
	/* small file: inline, then grows out of inline */
	u64 f2;
	CHECK_EQ(bkfs_create(fs, d1, "small", S_IFREG | 0600, 0, 0, 0, NULL, &f2, NULL), 0);
	CHECK_EQ(bkfs_file_write(fs, f2, 0, "hello", 5), 5);
	CHECK_EQ(bkfs_file_write(fs, f2, 3, "LO world", 8), 8);
	CHECK_EQ(bkfs_file_read(fs, f2, 0, tbuf, sizeof(tbuf)), 11);
	CHECK(!memcmp(tbuf, "helLO world", 11));
	CHECK_EQ(bkfs_file_write(fs, f2, 10000, "X", 1), 1);
	u8 sm[10001] = { 0 };
	memcpy(sm, "helLO world", 11);
	sm[10000] = 'X';
	check_file(fs, f2, sm, 10001);
	CHECK_EQ(bkfs_file_truncate(fs, f2, 3), 0);
	CHECK_EQ(bkfs_file_truncate(fs, f2, 9000), 0);
	memset(sm + 3, 0, sizeof(sm) - 3);
	check_file(fs, f2, sm, 9000);

	/* ---- xattrs ---- */
	struct trans t;
	trans_init(&t, fs);
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.a", "1", 1, 0), 0);
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.b", "22", 2, 0), 0);
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.a", "333", 3, BKFS_XATTR_CREATE), -BKFS_E_EXIST);
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.c", "333", 3, BKFS_XATTR_REPLACE), -BKFS_E_NOENT);
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.a", "333", 3, BKFS_XATTR_REPLACE), 0);
	CHECK_EQ(bkfs_xattr_get(&t, f1, "user.a", tbuf, sizeof(tbuf)), 3); /* pending */
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.big", buf, 5000, 0), -BKFS_E_TOOBIG);
	CHECK_EQ(bkfs_xattr_set(&t, f1, "user.empty", NULL, 0, 0), 0);
	CHECK_EQ(trans_commit(&t, 0), 0);
	CHECK_EQ(bkfs_xattr_get(&t, f1, "user.a", tbuf, sizeof(tbuf)), 3);
	CHECK(!memcmp(tbuf, "333", 3));
	CHECK_EQ(bkfs_xattr_get(&t, f1, "user.a", tbuf, 2), -BKFS_E_RANGE);
	CHECK_EQ(bkfs_xattr_get(&t, f1, "user.a", NULL, 0), 3);
	CHECK_EQ(bkfs_xattr_get(&t, f1, "user.empty", NULL, 0), 0);
	char list[256];
	CHECK_EQ(bkfs_xattr_list(fs, f1, list, sizeof(list)), 7 + 7 + 11);
	CHECK_EQ(bkfs_xattr_list(fs, f1, NULL, 0), 25);
	CHECK_EQ(bkfs_xattr_list(fs, f1, list, 5), -BKFS_E_RANGE);
	CHECK_EQ(bkfs_xattr_remove(&t, f1, "user.b"), 0);
	CHECK_EQ(bkfs_xattr_remove(&t, f1, "user.b"), -BKFS_E_NOENT);
	CHECK_EQ(trans_commit(&t, 0), 0);
	CHECK_EQ(bkfs_xattr_get(&t, f1, "user.b", NULL, 0), -BKFS_E_NOENT);

	/* ---- hash collisions: occupy name's home slot with another entry ---- */
	u64 home = bkfs_name_hash("victim", 6);
	{
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_dirent, POS(d1, home), sizeof(struct bkfs_dirent) + 8);
		struct bkfs_dirent *de = bkey_val(&kb.k);
		de->inum = c1;
		de->d_type = DT_CHR;
		de->name_len = 8;
		memcpy(de->name, "squatter", 8);
		CHECK_EQ(trans_update(&t, BTREE_ID_dirents, &kb.k), 0);
		CHECK_EQ(trans_commit(&t, 0), 0);
	}
	CHECK_EQ(bkfs_link(fs, f2, d1, "victim"), 0);
	u64 slot;
	CHECK_EQ(bkfs_dirent_lookup(&t, d1, "victim", 6, &ino, NULL, &slot), 0);
	CHECK_EQ(ino, f2);
	CHECK_EQ(slot, home + 1);
	/* a third one in the same chain */
	{
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_dirent, POS(d1, home + 2), sizeof(struct bkfs_dirent) + 9);
		struct bkfs_dirent *de = bkey_val(&kb.k);
		de->inum = c1;
		de->d_type = DT_CHR;
		de->name_len = 9;
		memcpy(de->name, "squatter2", 9);
		CHECK_EQ(trans_update(&t, BTREE_ID_dirents, &kb.k), 0);
		CHECK_EQ(trans_commit(&t, 0), 0);
	}
	/* removing the squatter shifts victim back to its home slot */
	CHECK_EQ(hash_remove_at(&t, &bkfs_dirent_hash_desc, d1, home), 0);
	CHECK_EQ(trans_commit(&t, 0), 0);
	CHECK_EQ(bkfs_dirent_lookup(&t, d1, "victim", 6, &ino, NULL, &slot), 0);
	CHECK_EQ(slot, home);
	/* squatter2 moves into the hole only if its own hash is at or before it */
	bool moves = bkfs_name_hash("squatter2", 9) <= home + 1;
	CHECK_EQ(btree_lookup(fs, BTREE_ID_dirents, POS(d1, home + 1), NULL), moves ? 0 : -BKFS_E_NOENT);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_dirents, POS(d1, home + 2), NULL), moves ? -BKFS_E_NOENT : 0);
	CHECK_EQ(hash_remove_at(&t, &bkfs_dirent_hash_desc, d1, moves ? home + 1 : home + 2), 0);
	CHECK_EQ(trans_commit(&t, 0), 0);
	CHECK_EQ(bkfs_inode_find(fs, f2, &in), 0);
	CHECK_EQ(in.nlink, 2);

	/* ---- many entries (every tenth a directory), remove half ---- */
	enum { NR_MANY = 3000 };
	u64 d2;
	unsigned subdirs = 0, left = 0;
	CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "many", S_IFDIR | 0700, 0, 0, 0, NULL, &d2, NULL), 0);
	char name[32];
	for (int i = 0; i < NR_MANY; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		subdirs += !(i % 10);
		CHECK_EQ(bkfs_create(fs, d2, name, i % 10 ? S_IFREG | 0644 : S_IFDIR | 0755, 0, 0, 0, NULL, NULL, NULL), 0);
	}
	CHECK_EQ(count_entries(fs, d2), NR_MANY);
	CHECK_EQ(bkfs_inode_find(fs, d2, &in), 0);
	CHECK_EQ(in.nlink, 2 + subdirs);
	/* the even names go: every directory among them (i % 10 == 0) */
	for (int i = 0; i < NR_MANY; i += 2) {
		snprintf(name, sizeof(name), "n%d", i);
		CHECK_EQ(bkfs_unlink(fs, d2, name, i % 10 == 0), 0);
	}
	for (int i = 0; i < NR_MANY; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		left += i % 2;
		CHECK_EQ(bkfs_lookup(fs, d2, name, NULL, NULL), i % 2 ? 0 : -BKFS_E_NOENT);
	}
	CHECK_EQ(count_entries(fs, d2), left);
	CHECK_EQ(bkfs_inode_find(fs, d2, &in), 0);
	CHECK_EQ(in.nlink, 2);

	/* ---- unlink and rmdir ---- */
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "dir", true), -BKFS_E_NOTEMPTY);
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "dir", false), -BKFS_E_ISDIR);
	CHECK_EQ(bkfs_unlink(fs, d1, "file", true), -BKFS_E_NOTDIR);
	CHECK_EQ(bkfs_link(fs, d1, BKFS_ROOT_INO, "dirlink"), -BKFS_E_ISDIR);
	CHECK_EQ(bkfs_unlink(fs, d1, "victim", false), 0);
	CHECK_EQ(bkfs_inode_find(fs, f2, &in), 0);
	CHECK_EQ(in.nlink, 1);
	CHECK_EQ(bkfs_unlink(fs, d1, "file", false), 0);
	CHECK_EQ(bkfs_inode_find(fs, f1, &in), -BKFS_E_NOENT);
	CHECK_EQ(extent_sectors(fs, f1), 0);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_xattrs, POS(f1, bkfs_name_hash("user.a", 6)), NULL), -BKFS_E_NOENT);

	/* ---- persistence ---- */
	fs = reopen(bd, fs);
	CHECK(fs != NULL);
	if (fs) {
		check_file(fs, f2, sm, 9000);
		CHECK_EQ(count_entries(fs, d2), 1500);
		CHECK_EQ(bkfs_lookup_path(fs, "/dir/small", &ino, NULL), 0);
		CHECK_EQ(ino, f2);
		u64 f3;
		CHECK_EQ(bkfs_create(fs, d1, "new", S_IFREG | 0644, 0, 0, 0, NULL, &f3, NULL), 0);
		CHECK(f3 > c1);
		CHECK_EQ(bkfs_close(fs), 0);
	}
	free(model);
	free(buf);
	trans_exit(&t);
	bd->keep_open = false;
	bd_close(bd);
	pb_exit(&err);
	TEST_MAIN_END();
}
