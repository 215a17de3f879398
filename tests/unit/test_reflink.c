/* test_reflink.c - shared file ranges (data/reflink.c, fs/copy.c).
 *
 * On an image file: a file is reflinked whole into another (its extents
 * become indirect extents with refcount 2, no data is written), then the
 * copies are overwritten (in place, in the middle of a shared range, over a
 * whole indirect extent), truncated, punched, reflinked again (within one
 * file, from a reflinked file, several times into one file so that one
 * transaction drops several references to one indirect extent), copied with
 * copy_file_range semantics (aligned: shared; misaligned: copied), and
 * removed. After every step: the contents against a model, the refcounts,
 * buckets and accounting (verify.h: refcount = reflink pointers overlapping),
 * the reflink counter and user sectors against what is expected, and, with the
 * filesystem closed, `fsck -n` clean. A crash after a reflink (journal only)
 * replays to the same state. */
#include "test.h"
#include "verify.h"
#include "fs/posix_ext.h"
#include "fsck/fsck.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAXF (4u << 20)
#define R BKFS_ROOT_INO

static struct bkfs_fs *fs;
static char path[4096];
static char *paths[1] = { path };

/* the model: each file's content and size */
struct mfile {
	const char *name;
	u64 inum;
	u64 size;
	u8 *data;
};
static struct mfile A = { .name = "a" }, B = { .name = "b" }, C = { .name = "c" }, D = { .name = "d" };

static void fill(u8 *p, size_t n, u64 seed)
{
	u64 s = seed * 0x9E3779B97F4A7C15ull + 7;
	for (size_t i = 0; i < n; i++)
		p[i] = (u8)(rng_next(&s) >> 24);
}

static int open_fs(void)
{
	struct printbuf err = PRINTBUF;
	int ret = bkfs_open(paths, 1, 0, &fs, &err);
	if (ret)
		fprintf(stderr, "open: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	pb_exit(&err);
	return ret;
}

static s64 acct_val(struct bpos p, unsigned i)
{
	struct acct_entry *e = acct_find(fs, p, false);
	return e ? e->v[i] : 0;
}
static s64 user_sectors(void) { return acct_val(acct_pos_replicas(DATA_user, 1, 1), 0); }
static s64 nr_indirect(void) { return acct_val(acct_pos_reflink(), 0); }
static s64 indirect_sectors(void) { return acct_val(acct_pos_reflink(), 1); }

static u64 inode_sectors(u64 inum)
{
	struct bkfs_inode in;
	return bkfs_inode_find(fs, inum, &in) ? ~0ull : in.sectors;
}

/* sum of the extent key sizes of inum */
static u64 key_sectors(u64 inum, unsigned *nr_reflink_p)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 n = 0;
	if (nr_reflink_p)
		*nr_reflink_p = 0;
	for_each_btree_key(it, fs, BTREE_ID_extents, POS(inum, 0), k, ret) {
		if (k->p.inode != inum)
			break;
		if (k->type == KEY_TYPE_extent || k->type == KEY_TYPE_inline_data || k->type == KEY_TYPE_reflink_p)
			n += k->size;
		if (nr_reflink_p && k->type == KEY_TYPE_reflink_p)
			++*nr_reflink_p;
	}
	return ret ? ~0ull : n;
}

static u64 refcount_at(u64 idx)
{
	struct btree_iter it;
	struct bkey *k;
	btree_iter_init(&it, fs, BTREE_ID_reflink, 0, POS(0, idx + 1));
	if (btree_iter_peek(&it, &k) || !k || k->type != KEY_TYPE_reflink_v || bkey_start_pos(k).offset > idx)
		return 0;
	return ((struct bkfs_reflink_v *)bkey_val(k))->refcount;
}

/* idx of the reflink pointer covering sector s of inum (~0 if none) */
static u64 idx_at(u64 inum, u64 s)
{
	struct btree_iter it;
	struct bkey *k;
	btree_iter_init(&it, fs, BTREE_ID_extents, 0, POS(inum, s + 1));
	if (btree_iter_peek(&it, &k) || !k || k->p.inode != inum || k->type != KEY_TYPE_reflink_p ||
	    bkey_start_pos(k).offset > s)
		return ~0ull;
	return ((struct bkfs_reflink_p *)bkey_val(k))->idx + (s - bkey_start_pos(k).offset);
}

static void check_file(struct mfile *f, const char *when)
{
	if (!f->inum)
		return;
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, f->inum, &in), 0);
	CHECK_EQ(in.size, f->size);
	CHECK_EQ(in.sectors, key_sectors(f->inum, NULL));
	static u8 buf[MAXF];
	ssize_t n = bkfs_file_read(fs, f->inum, 0, buf, MAXF);
	CHECK_EQ(n, (ssize_t)f->size);
	if (n == (ssize_t)f->size && memcmp(buf, f->data, f->size)) {
		size_t o = 0;
		while (buf[o] == f->data[o])
			o++;
		fprintf(stderr, "%s: file %s differs at byte %zu\n", when, f->name, o);
		CHECK(0);
	}
}

/* everything, then fsck -n on the closed filesystem */
static void step(const char *when)
{
	struct mfile *all[] = { &A, &B, &C, &D };
	for (unsigned i = 0; i < ARRAY_SIZE(all); i++)
		check_file(all[i], when);
	struct verify_opts vo = { .check_disk = true, .tag = when };
	CHECK_EQ(verify_fs(fs, &vo), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_opts o = { .mode = FSCK_MODE_NO };
	int rc = bkfs_fsck(paths, 1, &o);
	if (rc)
		fprintf(stderr, "%s: fsck -n exits %d\n", when, rc);
	CHECK_EQ(rc, 0);
	REQUIRE_EQ(open_fs(), 0);
}

static void mk(struct mfile *f)
{
	CHECK_EQ(bkfs_create(fs, R, f->name, S_IFREG | 0644, 0, 0, 0, NULL, &f->inum, NULL), 0);
	f->data = calloc(1, MAXF);
	f->size = 0;
}

static void m_write(struct mfile *f, u64 off, const u8 *p, size_t n)
{
	CHECK_EQ(bkfs_file_write(fs, f->inum, off, p, n), (ssize_t)n);
	memcpy(f->data + off, p, n);
	f->size = MAX(f->size, off + n);
}

/* the model of a copy or reflink of len bytes (already cut at src's end) */
static void m_copy(struct mfile *s, u64 soff, struct mfile *d, u64 doff, u64 len)
{
	memmove(d->data + doff, s->data + soff, len);
	d->size = MAX(d->size, doff + len);
}

static void m_truncate(struct mfile *f, u64 size)
{
	CHECK_EQ(bkfs_file_truncate(fs, f->inum, size), 0);
	if (size < f->size)
		memset(f->data + size, 0, f->size - size);
	f->size = size;
}

int main(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(path, sizeof(path), "%s/reflink.img", tmp);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0 && !ftruncate(fd, 256 << 20));
	close(fd);
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { 0 };
	CHECK_EQ(bkfs_format(paths, 1, &fo, &err), 0);
	pb_exit(&err);
	if (open_fs())
		TEST_MAIN_END();
	const u64 bs = fs->block_bytes;
	static u8 buf[MAXF];

	/* a: 1 MiB + 1000 bytes (9 extents, a partial last block) */
	mk(&A);
	mk(&B);
	alloc_close_write_points(fs); /* extents of 128 KiB from a bucket boundary */
	fill(buf, (1u << 20) + 1000, 1);
	m_write(&A, 0, buf, (1u << 20) + 1000);
	u64 a_sectors = inode_sectors(A.inum);
	s64 user0 = user_sectors();
	u64 free0 = alloc_free_buckets(fs, 0);
	step("written");

	/* a whole file reflinked: no data written, every indirect extent has
	 * two references, both files keep their sector counts */
	CHECK_EQ(bkfs_reflink(fs, A.inum, 0, B.inum, 0, ~0ull), 0);
	m_copy(&A, 0, &B, 0, A.size);
	unsigned np;
	CHECK_EQ(key_sectors(A.inum, &np), a_sectors);
	CHECK_EQ(np, 9);
	CHECK_EQ(key_sectors(B.inum, &np), a_sectors);
	CHECK_EQ(np, 9);
	CHECK_EQ(inode_sectors(B.inum), a_sectors);
	CHECK_EQ(user_sectors(), user0);
	CHECK_EQ(nr_indirect(), 9);
	CHECK_EQ(indirect_sectors(), (s64)a_sectors);
	/* metadata only: at most two new btree buckets per copy of a node */
	CHECK(alloc_free_buckets(fs, 0) + 2 * fs->sb.metadata_replicas >= free0);
	u64 v0 = idx_at(A.inum, 0), v_last = idx_at(A.inum, a_sectors - 1);
	CHECK(v0 != ~0ull && v_last != ~0ull);
	CHECK_EQ(idx_at(B.inum, 0), v0);
	for (u64 s = 0; s < a_sectors; s += 256)
		CHECK_EQ(refcount_at(idx_at(A.inum, s)), 2);
	CHECK_EQ(refcount_at(v_last), 2);
	step("reflinked a -> b");

	/* overwrites of b: one block inside the first indirect extent (its
	 * pointer split in two: 3 references), an unaligned write across the
	 * boundary of the second and third (both pointers trimmed: 2 each) */
	fill(buf, 5000, 2);
	m_write(&B, 8192, buf, 4096);
	CHECK_EQ(refcount_at(v0), 3);
	m_write(&B, 260000, buf, 5000);
	CHECK_EQ(refcount_at(v0), 3);
	CHECK_EQ(refcount_at(idx_at(A.inum, 256)), 2);
	CHECK_EQ(refcount_at(idx_at(A.inum, 512)), 2);
	step("b overwritten in part");
	/* all of the first indirect extent overwritten in b: one reference left */
	fill(buf, 128 << 10, 3);
	m_write(&B, 0, buf, 128 << 10);
	CHECK_EQ(refcount_at(v0), 1);
	step("b overwrites a whole indirect extent");

	/* truncation of b drops the references past the new end */
	m_truncate(&B, 300000);
	CHECK_EQ(refcount_at(v_last), 1);
	s64 ind = nr_indirect();
	step("b truncated");

	/* a punched over its first indirect extent (b no longer uses it): the
	 * indirect extent goes and its space with it */
	s64 user1 = user_sectors();
	CHECK_EQ(bkfs_punch(fs, A.inum, 0, 256), 0);
	memset(A.data, 0, 128 << 10);
	CHECK_EQ(refcount_at(v0), 0);
	CHECK_EQ(nr_indirect(), ind - 1);
	CHECK_EQ(user_sectors(), user1 - 256);
	step("a punched");

	/* within one file: a's second 256 KiB at 2 MiB (a grows) */
	CHECK_EQ(bkfs_reflink(fs, A.inum, 256 << 10, A.inum, 2u << 20, 256 << 10), 0);
	m_copy(&A, 256 << 10, &A, 2u << 20, 256 << 10);
	CHECK_EQ(refcount_at(idx_at(A.inum, 512)), 3); /* a twice, b once */
	/* overlapping ranges of one file are refused */
	CHECK_EQ(bkfs_reflink(fs, A.inum, 0, A.inum, 4096, 8192), -BKFS_E_INVAL);
	/* unaligned offsets are refused */
	CHECK_EQ(bkfs_reflink(fs, A.inum, 512, B.inum, 0, 8192), -BKFS_E_INVAL);
	step("reflinked within a");

	/* from a reflinked file, into another one several times */
	mk(&C);
	for (unsigned i = 0; i < 4; i++) {
		CHECK_EQ(bkfs_reflink(fs, B.inum, 128 << 10, C.inum, (u64)i * (128 << 10), 128 << 10), 0);
		m_copy(&B, 128 << 10, &C, (u64)i * (128 << 10), 128 << 10);
	}
	u64 v1 = idx_at(B.inum, 256);
	CHECK_EQ(refcount_at(v1), 2 + 4);
	step("reflinked b -> c four times");
	/* one transaction drops four references to one indirect extent */
	m_truncate(&C, 0);
	CHECK_EQ(refcount_at(v1), 2);
	step("c truncated to 0");

	/* a range ending inside a block at the end of the source: the whole
	 * block is shared, the size is exact; not over data of the destination */
	u64 last = B.size / bs * bs;
	CHECK_EQ(bkfs_reflink(fs, B.inum, last, C.inum, 0, 8192), 0);
	m_copy(&B, last, &C, 0, B.size - last);
	CHECK_EQ(C.size, B.size % bs);
	fill(buf, 3 * bs, 4);
	m_write(&C, 0, buf, 3 * bs);
	CHECK_EQ(bkfs_reflink(fs, B.inum, last, C.inum, 0, 8192), -BKFS_E_INVAL);
	step("reflinked a partial last block");

	/* copy_file_range: same position within a block (head copied, body
	 * shared, tail copied), different positions (all copied) */
	mk(&D);
	s64 user2 = user_sectors();
	ssize_t n = bkfs_copy_range(fs, A.inum, (512 << 10) + 100, D.inum, 100, 300000);
	CHECK_EQ(n, 300000);
	m_copy(&A, (512 << 10) + 100, &D, 100, 300000);
	unsigned dp;
	key_sectors(D.inum, &dp);
	CHECK(dp >= 2);
	CHECK(user_sectors() - user2 <= 2 * (s64)(bs >> SECTOR_SHIFT) + 16); /* only the edges copied */
	n = bkfs_copy_range(fs, A.inum, 4096 + 7, D.inum, 400000, 70000);
	CHECK_EQ(n, 70000);
	m_copy(&A, 4096 + 7, &D, 400000, 70000);
	/* past the end of the source: cut there */
	n = bkfs_copy_range(fs, B.inum, B.size - 10, D.inum, 0, 1000);
	CHECK_EQ(n, 10);
	m_copy(&B, B.size - 10, &D, 0, 10);
	CHECK_EQ(bkfs_copy_range(fs, B.inum, B.size, D.inum, 0, 1000), 0);
	step("copy_range");

	/* a crash after reflinks (journal only): replay gives the same */
	CHECK_EQ(bkfs_reflink(fs, D.inum, 0, C.inum, 1u << 20, 512 << 10), 0);
	m_copy(&D, 0, &C, 1u << 20, MIN(512u << 10, D.size));
	CHECK_EQ(journal_flush(fs), 0);
	bkfs_close_nowrite(fs);
	REQUIRE_EQ(open_fs(), 0);
	step("crash after a reflink");

	/* removal: every indirect extent goes, user data back to nothing */
	struct mfile *all[] = { &A, &B, &C, &D };
	for (unsigned i = 0; i < ARRAY_SIZE(all); i++) {
		CHECK_EQ(bkfs_remove(fs, R, all[i]->name, 0), 0);
		all[i]->inum = 0;
		free(all[i]->data);
		all[i]->data = NULL;
		if (i == 1)
			step("a and b removed");
	}
	CHECK_EQ(nr_indirect(), 0);
	CHECK_EQ(indirect_sectors(), 0);
	CHECK_EQ(user_sectors(), 0);
	step("all removed");

	CHECK_EQ(bkfs_close(fs), 0);
	unlink(path);
	TEST_MAIN_END();
}
