/* test_bucket_keys.c - the in-memory backpointers of copying GC
 * (alloc/bucket_keys.c) against a full scan of the btrees.
 *
 * The index is built once (what the first copying GC step with victims
 * does) and then kept by the trigger alone. After every few operations of a seeded churn (create,
 * overwrite ranges, truncate, punch, reflink, delete, copying GC steps,
 * checkpoints), the index must list exactly the (bucket, gen, btree,
 * position) of every pointer of every extent and indirect extent a scan
 * finds, never drift (no drop), and the files must read back as the model
 * has them.
 *   - churn on one device;
 *   - churn, a power cut with unflushed writes reordered, journal replay at
 *     the next open, then churn again: the index built after the replay is
 *     kept exact the same way. */
#include "fsck_test.h"
#include "fs/fs.h"
#include "data/move.h"
#include "btree/iter.h"
#include <sys/stat.h>

#define R BKFS_ROOT_INO
#define NFILES 48
#define MAXSIZE (96u << 10)
#define BUCKET (64u << 10)
#define DEV_SIZE (16ull << 20)

static struct blockdev *dev;
static struct { bool live; u64 inum; size_t size; u8 data[MAXSIZE]; } files[NFILES];
static u64 rng = 1;

static u64 rnd(u64 n)
{
	return rng_next(&rng) % n;
}

static void fill_rand(u8 *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (u8)(rng_next(&rng) >> 24);
}

/* ---- the index against a scan ---- */

struct ref {
	u64 dev, bucket, inode, offset;
	u32 snapshot;
	u8 btree_id, gen;
};

static int ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
#define C(f) if (x->f != y->f) return x->f < y->f ? -1 : 1
	C(dev); C(bucket); C(btree_id); C(inode); C(offset); C(snapshot); C(gen);
#undef C
	return 0;
}

struct refs {
	struct ref *r;
	size_t nr, cap;
};

static void refs_push(struct refs *v, struct ref r)
{
	if (v->nr == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 256;
		v->r = realloc(v->r, v->cap * sizeof(*v->r));
		REQUIRE(v->r != NULL);
	}
	v->r[v->nr++] = r;
}

static void refs_from_index(struct bkfs_fs *fs, struct refs *v)
{
	for (unsigned d = 0; d < fs->nr_devs; d++)
		for (u64 b = 0; b < fs->sb.members[d].nbuckets; b++) {
			const struct bucket_key *e;
			size_t n = bucket_keys_get(fs, d, b, &e);
			for (size_t i = 0; i < n; i++)
				refs_push(v, (struct ref){ d, b, e[i].inode, e[i].offset, e[i].snapshot, e[i].btree_id,
							   e[i].gen });
		}
}

static void refs_from_scan(struct bkfs_fs *fs, struct refs *v)
{
	static const struct { unsigned id, type; } trees[] = {
		{ BTREE_ID_extents, KEY_TYPE_extent },
		{ BTREE_ID_reflink, KEY_TYPE_reflink_v },
	};
	for (unsigned t = 0; t < 2; t++) {
		struct btree_iter it;
		struct bkey *k;
		int ret;
		for_each_btree_key(it, fs, trees[t].id, POS_MIN, k, ret) {
			struct bkfs_ptr *p;
			if (k->type != trees[t].type)
				continue;
			unsigned nr = bkey_ptrs(k, &p);
			for (unsigned i = 0; i < nr; i++)
				refs_push(v, (struct ref){ p[i].dev, ptr_bucket(fs, &p[i]), k->p.inode, k->p.offset,
							   k->p.snapshot, trees[t].id, p[i].gen });
		}
		CHECK_EQ(ret, 0);
	}
}

/* the index lists exactly what a scan finds; returns the pointers listed */
static size_t check_index(struct bkfs_fs *fs, const char *when)
{
	struct alloc_state *as = ALLOC(fs);
	struct refs a = { 0 }, b = { 0 };
	REQUIRE(as->bk.built);
	refs_from_index(fs, &a);
	refs_from_scan(fs, &b);
	qsort(a.r, a.nr, sizeof(*a.r), ref_cmp);
	qsort(b.r, b.nr, sizeof(*b.r), ref_cmp);
	bool same = a.nr == b.nr && (!a.nr || !memcmp(a.r, b.r, a.nr * sizeof(*a.r)));
	if (!same)
		fprintf(stderr, "%s: index lists %zu pointers, a scan finds %zu\n", when, a.nr, b.nr);
	CHECK(same);
	CHECK_EQ(as->bk.nr, a.nr);
	CHECK_EQ(as->bk.drops, 0);
	size_t n = a.nr;
	free(a.r);
	free(b.r);
	return n;
}

/* ---- churn against a model ---- */

static void name_of(unsigned i, char *buf)
{
	snprintf(buf, 16, "f%02u", i);
}

static size_t live_bytes(void)
{
	size_t n = 0;
	for (unsigned i = 0; i < NFILES; i++)
		n += files[i].live ? files[i].size : 0;
	return n;
}

static void op_create(struct bkfs_fs *fs, unsigned i)
{
	char name[16];
	name_of(i, name);
	REQUIRE_EQ(bkfs_create(fs, R, name, S_IFREG | 0644, 0, 0, 0, NULL, &files[i].inum, NULL), 0);
	files[i].live = true;
	files[i].size = 1 + rnd(MAXSIZE);
	fill_rand(files[i].data, files[i].size);
	CHECK_EQ(bkfs_file_write(fs, files[i].inum, 0, files[i].data, files[i].size), (ssize_t)files[i].size);
}

static void op_delete(struct bkfs_fs *fs, unsigned i)
{
	char name[16];
	name_of(i, name);
	CHECK_EQ(bkfs_unlink(fs, R, name, false), 0);
	files[i].live = false;
}

static void op_overwrite(struct bkfs_fs *fs, unsigned i)
{
	u64 off = rnd(files[i].size), len = 1 + rnd(MAXSIZE - off);
	fill_rand(files[i].data + off, len);
	CHECK_EQ(bkfs_file_write(fs, files[i].inum, off, files[i].data + off, len), (ssize_t)len);
	files[i].size = MAX(files[i].size, off + len);
}

static void op_truncate(struct bkfs_fs *fs, unsigned i)
{
	u64 size = rnd(files[i].size + 1);
	CHECK_EQ(bkfs_file_truncate(fs, files[i].inum, size), 0);
	files[i].size = size;
}

/* a hole of whole blocks inside the file (reads back as zeroes) */
static void op_punch(struct bkfs_fs *fs, unsigned i)
{
	u64 blocks = files[i].size / 4096;
	if (blocks < 2)
		return;
	u64 start = rnd(blocks - 1), end = start + 1 + rnd(blocks - start - 1);
	CHECK_EQ(bkfs_punch(fs, files[i].inum, start * 8, end * 8), 0);
	memset(files[i].data + start * 4096, 0, (end - start) * 4096);
}

/* file j becomes a reflinked copy of file i */
static void op_reflink(struct bkfs_fs *fs, unsigned i, unsigned j)
{
	char name[16];
	name_of(j, name);
	REQUIRE_EQ(bkfs_create(fs, R, name, S_IFREG | 0644, 0, 0, 0, NULL, &files[j].inum, NULL), 0);
	files[j].live = true;
	CHECK_EQ(bkfs_reflink(fs, files[i].inum, 0, files[j].inum, 0, ROUND_UP(files[i].size, 4096)), 0);
	CHECK_EQ(bkfs_file_truncate(fs, files[j].inum, files[i].size), 0);
	files[j].size = files[i].size;
	memcpy(files[j].data, files[i].data, files[i].size);
}

static void copygc_step(struct bkfs_fs *fs, struct copygc_stats *st)
{
	CHECK_EQ(bkfs_copygc(fs, 4, st), 0);
	CHECK(!st->index_drifted);
	CHECK_EQ(journal_flush(fs), 0);
}

/* one operation; live data kept under half the device */
static void churn_op(struct bkfs_fs *fs, struct copygc_stats *st)
{
	unsigned i = rnd(NFILES), j = rnd(NFILES), op = rnd(16);
	if (!files[i].live) {
		if (live_bytes() + MAXSIZE < DEV_SIZE / 2)
			op_create(fs, i);
		return;
	}
	if (op < 4)
		op_overwrite(fs, i);
	else if (op < 6)
		op_truncate(fs, i);
	else if (op < 8)
		op_punch(fs, i);
	else if (op < 10 && !files[j].live && files[i].size && live_bytes() + MAXSIZE < DEV_SIZE / 2)
		op_reflink(fs, i, j);
	else if (op < 13)
		op_delete(fs, i);
	else if (op < 15)
		copygc_step(fs, st);
	else
		CHECK_EQ(btree_checkpoint(fs), 0);
}

static unsigned check_files(struct bkfs_fs *fs)
{
	static u8 buf[MAXSIZE + 1];
	unsigned bad = 0;
	for (unsigned i = 0; i < NFILES; i++) {
		if (!files[i].live)
			continue;
		ssize_t n = bkfs_file_read(fs, files[i].inum, 0, buf, sizeof(buf));
		bad += n != (ssize_t)files[i].size || memcmp(buf, files[i].data, files[i].size);
	}
	return bad;
}

/* ops operations, the index checked every 40; returns the pointers last
 * listed */
static size_t churn(struct bkfs_fs *fs, unsigned ops, const char *what)
{
	struct copygc_stats st = { 0 };
	size_t listed = 0;
	/* what the first copygc step with victims does */
	REQUIRE_EQ(bucket_keys_build(fs), 0);
	for (unsigned n = 1; n <= ops; n++) {
		churn_op(fs, &st);
		if (n % 40 == 0)
			listed = check_index(fs, what);
	}
	CHECK_EQ(check_files(fs), 0);
	printf("%s: %u operations, %llu copygc victims (%llu emptied, %llu keys moved), %zu pointers listed, "
	       "built %llu time(s)\n",
	       what, ops, (unsigned long long)st.buckets, (unsigned long long)st.buckets_emptied,
	       (unsigned long long)st.keys_moved, listed, (unsigned long long)ALLOC(fs)->bk.builds);
	CHECK(st.keys_moved > 0);
	CHECK_EQ(ALLOC(fs)->bk.builds, 1);
	return listed;
}

/* ---- setup ---- */

static int open_dev(struct bkfs_fs **fs)
{
	struct blockdev *bds[1] = { dev };
	return test_open_fs(bds, 1, 0, fs);
}

static void format(void)
{
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .bucket_size = BUCKET, .btree_node_size = 16 << 10, .journal_size = 1 << 20,
				  .replicas = 1 };
	struct emu_opts o = { .size = DEV_SIZE, .seed = 5, .reorder = true };
	REQUIRE_EQ(emu_dev_create(&o, &dev), 0);
	dev->keep_open = true;
	int ret = bkfs_format_devs(&dev, 1, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s\n", pb_str(&err));
	pb_exit(&err);
	REQUIRE_EQ(ret, 0);
	memset(files, 0, sizeof(files));
}

static void close_dev(void)
{
	dev->keep_open = false;
	bd_close(dev);
	dev = NULL;
}

static size_t checker_findings(void)
{
	struct blockdev *bds[1] = { dev };
	struct fsck_opts o = { .mode = FSCK_MODE_NO };
	struct fsck_result r;
	fsck_test_run(bds, 1, &o, &r, "after");
	size_t n = r.ret ? 999 : r.nr;
	fsck_result_free(&r);
	return n;
}

static void case_churn(void)
{
	struct bkfs_fs *fs;
	rng = 1;
	format();
	REQUIRE_EQ(open_dev(&fs), 0);
	/* the index is built on first use only: opening does not build it */
	CHECK(!ALLOC(fs)->bk.built);
	CHECK(churn(fs, 1500, "churn") > 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings(), 0);
	close_dev();
}

/* The model after a cut: what the files hold now (unflushed writes may be
 * gone, whole or in part). */
static void model_reload(struct bkfs_fs *fs)
{
	for (unsigned i = 0; i < NFILES; i++) {
		char name[16];
		struct bkfs_inode in;
		name_of(i, name);
		files[i].live = !bkfs_lookup(fs, R, name, &files[i].inum, &in);
		if (!files[i].live)
			continue;
		ssize_t n = bkfs_file_read(fs, files[i].inum, 0, files[i].data, MAXSIZE);
		REQUIRE(n >= 0);
		files[i].size = (size_t)n;
	}
}

static void case_power_cut(void)
{
	struct bkfs_fs *fs;
	rng = 7;
	format();
	REQUIRE_EQ(open_dev(&fs), 0);
	churn(fs, 600, "before the cut");
	CHECK_EQ(journal_flush(fs), 0);
	/* unflushed work, then the power goes */
	for (unsigned n = 0; n < 60; n++) {
		unsigned i = rnd(NFILES);
		if (files[i].live)
			op_overwrite(fs, i);
	}
	emu_dev_power_cut(dev);
	bkfs_close_nowrite(fs);
	REQUIRE_EQ(open_dev(&fs), 0); /* replays the journal */
	CHECK(!ALLOC(fs)->bk.built);
	model_reload(fs);
	CHECK(churn(fs, 600, "after the cut and replay") > 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings(), 0);
	close_dev();
}

int main(void)
{
	RUN_CASE(case_churn);
	RUN_CASE(case_power_cut);
	TEST_MAIN_END();
}
