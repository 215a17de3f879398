/* test_ec.c - erasure coding (data/ec.c, the stripe triggers).
 *
 * Four emulated devices, files written, then ec_create_stripes(3+1):
 *  - every stripe's per-block sectors equal the erasure-coded pointers into
 *    that block, its data buckets carry the stripe and count stripe sectors
 *    only, its parity buckets are parity, on four distinct devices;
 *  - the structural verifier and the checker (topology, allocations, alloc
 *    info, filesystem passes) find nothing;
 *  - one data block of every stripe wiped on the media: every file still
 *    reads back exactly (rebuilt from parity); two blocks of a stripe wiped:
 *    reads of its data fail instead of returning wrong bytes;
 *  - parts of files overwritten, a file reflinked: counts follow, the data
 *    reads back (also with a block of every stripe lost);
 *  - half the files deleted, then the rest: stripes lose counts, then are
 *    deleted with their parity buckets freed; the checker stays clean;
 *  - power cut at every Nth write of a stripe-making run: after replay the
 *    checker finds nothing and every file reads back. */
#include "test.h"
#include "verify.h"
#include "data/ec.h"
#include "fs/fs.h"
#include "fsck_test.h"
#include <sys/stat.h>

#define NDEV 4
#define NFILES 48
#define DEV_SIZE (48ull << 20)
#define R BKFS_ROOT_INO

static struct blockdev *dev[NDEV];
static u8 *media_copy[NDEV];
static struct { char name[16]; u64 inum; size_t size; u8 *data; bool gone; } files[NFILES];

static int open_devs(unsigned flags, struct bkfs_fs **fs)
{
	struct blockdev *bds[NDEV];
	memcpy(bds, dev, sizeof(bds));
	return test_open_fs(bds, NDEV, flags, fs);
}

static void fill(u8 *p, size_t n, u64 seed)
{
	u64 s = seed * 0x9E3779B97F4A7C15ull + 11;
	for (size_t i = 0; i < n; i++)
		p[i] = (u8)(rng_next(&s) >> 24);
}

static int build(void)
{
	struct format_opts fo = { .bucket_size = 256 << 10, .btree_node_size = 16 << 10 };
	int ret = test_emu_format(dev, NDEV, DEV_SIZE, 3, &fo);
	struct bkfs_fs *fs;
	if (ret || (ret = open_devs(0, &fs)))
		return ret;
	for (unsigned i = 0; i < NFILES && !ret; i++) {
		snprintf(files[i].name, sizeof(files[i].name), "f%02u", i);
		files[i].size = 4096 * (1 + (i * 37) % 70) + (i % 3) * 1000;
		free(files[i].data); /* build() runs again for the power cuts */
		files[i].data = malloc(files[i].size);
		fill(files[i].data, files[i].size, i + 1);
		ret = bkfs_create(fs, R, files[i].name, S_IFREG | 0644, 0, 0, 0, NULL, &files[i].inum, NULL);
		if (!ret && bkfs_file_write(fs, files[i].inum, 0, files[i].data, files[i].size) != (ssize_t)files[i].size)
			ret = -BKFS_E_IO;
	}
	if (ret) {
		bkfs_close_nowrite(fs);
		return ret;
	}
	return bkfs_close(fs);
}

static void save_media(void)
{
	for (unsigned d = 0; d < NDEV; d++) {
		if (!media_copy[d])
			media_copy[d] = malloc(DEV_SIZE);
		memcpy(media_copy[d], emu_dev_media(dev[d]), DEV_SIZE);
	}
}

static void restore_media(void)
{
	for (unsigned d = 0; d < NDEV; d++) {
		emu_dev_clear_faults(dev[d]);
		emu_dev_set_cut(dev[d], 0);
		memcpy(emu_dev_media(dev[d]), media_copy[d], DEV_SIZE);
	}
}

/* every file not deleted reads back exactly; returns how many did not */
static unsigned check_files(struct bkfs_fs *fs, const char *when)
{
	unsigned bad = 0;
	static u8 buf[300 << 10];
	for (unsigned i = 0; i < NFILES; i++) {
		if (files[i].gone)
			continue;
		ssize_t n = bkfs_file_read(fs, files[i].inum, 0, buf, sizeof(buf));
		if (n != (ssize_t)files[i].size || memcmp(buf, files[i].data, files[i].size))
			bad++;
	}
	if (bad && when)
		fprintf(stderr, "%s: %u files do not read back\n", when, bad);
	return bad;
}

/* the checker's passes (topology to the filesystem passes), read-only:
 * the number of findings */
static size_t checker_findings(const char *when)
{
	struct fsck_opts o = { .mode = FSCK_MODE_NO,
			       .passes = FSCK_PASS_BIT(check_topology) | FSCK_PASS_BIT(check_allocations) |
					 FSCK_PASS_BIT(check_alloc_info) | FSCK_PASS_BIT(check_filesystem) };
	struct fsck_result r;
	fsck_test_run(dev, NDEV, &o, &r, "after");
	size_t nr = r.nr;
	if (r.ret || nr)
		fprintf(stderr, "%s: checker %s, %zu findings\n", when, bkfs_strerror(r.ret), nr);
	int ret = r.ret;
	fsck_result_free(&r);
	return ret ? 999 : nr;
}

struct stripe_view {
	u32 idx;
	struct bkey_buf kb;
};

static size_t read_stripes(struct bkfs_fs *fs, struct stripe_view *v, size_t max)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	size_t n = 0;
	for_each_btree_key(it, fs, BTREE_ID_stripes, POS_MIN, k, ret) {
		if (n < max) {
			v[n].idx = (u32)k->p.offset;
			memcpy(&v[n].kb, k, bkey_bytes(k));
		}
		n++;
	}
	CHECK_EQ(ret, 0);
	return n;
}

/* sectors of erasure-coded pointers (extents, indirect extents) into block
 * b of stripe idx */
static u64 ec_sectors(struct bkfs_fs *fs, u32 idx, unsigned b)
{
	static const unsigned ids[] = { BTREE_ID_extents, BTREE_ID_reflink };
	u64 n = 0;
	for (unsigned x = 0; x < ARRAY_SIZE(ids); x++) {
		struct btree_iter it;
		struct bkey *k;
		int ret;
		for_each_btree_key(it, fs, ids[x], POS_MIN, k, ret) {
			struct bkfs_ptr *ptrs;
			unsigned nr = k->type == KEY_TYPE_extent || k->type == KEY_TYPE_reflink_v ? bkey_ptrs(k, &ptrs) : 0;
			for (unsigned i = 0; i < nr; i++)
				if ((ptrs[i].flags & PTR_HAS_STRIPE) && ptrs[i].stripe_idx == idx &&
				    ptrs[i].stripe_block == b)
					n += k->size;
		}
		CHECK_EQ(ret, 0);
	}
	return n;
}

static void check_stripes(struct bkfs_fs *fs, size_t *nr_out)
{
	static struct stripe_view v[256];
	size_t nr = read_stripes(fs, v, ARRAY_SIZE(v));
	*nr_out = nr;
	for (size_t i = 0; i < nr && i < ARRAY_SIZE(v); i++) {
		struct bkfs_stripe *s = bkey_val(&v[i].kb.k);
		u16 *bs = stripe_block_sectors(s);
		CHECK(s->nr_blocks >= 2 && s->nr_blocks <= 4); /* 3+1, or narrower for what was left */
		CHECK_EQ(s->nr_redundant, 1);
		unsigned devmask = 0, k = s->nr_blocks - s->nr_redundant;
		for (unsigned b = 0; b < s->nr_blocks; b++) {
			const struct bkfs_ptr *p = &s->ptrs[b];
			devmask |= 1u << p->dev;
			const struct bkfs_alloc *a = bucket_get(fs, p->dev, ptr_bucket(fs, p));
			CHECK_EQ(a->stripe, v[i].idx);
			CHECK_EQ(a->stripe_redundancy, 1);
			CHECK_EQ(a->gen, p->gen);
			if (b < k) {
				CHECK_EQ(bs[b], ec_sectors(fs, v[i].idx, b));
				CHECK_EQ(a->stripe_sectors, bs[b]);
				CHECK_EQ(a->dirty_sectors, 0);
				CHECK_EQ(a->data_type, DATA_stripe);
			} else {
				CHECK_EQ(a->dirty_sectors, s->sectors);
				CHECK_EQ(a->data_type, DATA_parity);
			}
		}
		CHECK_EQ(__builtin_popcount(devmask), s->nr_blocks); /* distinct devices */
	}
}

/* wipe block b of every stripe on the media */
static void wipe_block(struct bkfs_fs *fs, unsigned b, unsigned only_first)
{
	static struct stripe_view v[256];
	size_t nr = read_stripes(fs, v, ARRAY_SIZE(v));
	for (size_t i = 0; i < nr && i < ARRAY_SIZE(v) && (!only_first || i < only_first); i++) {
		struct bkfs_stripe *s = bkey_val(&v[i].kb.k);
		const struct bkfs_ptr *p = &s->ptrs[b];
		memset(emu_dev_media(dev[p->dev]) + (p->offset << SECTOR_SHIFT), 0, (size_t)s->sectors << SECTOR_SHIFT);
	}
}

static void case_make_and_rebuild(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(open_devs(0, &fs), 0);
	struct ec_stats st;
	CHECK_EQ(ec_create_stripes(fs, 3, 1, &st), 0);
	CHECK(st.stripes >= 2);
	CHECK(st.stripes > st.narrow);
	CHECK(st.data_buckets >= (st.stripes - st.narrow) * 3 + st.narrow);
	CHECK(st.data_buckets <= st.stripes * 3);
	CHECK_EQ(st.parity_buckets, st.stripes);
	/* every bucket of user data is in a stripe now */
	for (unsigned d = 0; d < NDEV; d++)
		for (u64 b = 0; b < fs->sb.members[d].nbuckets; b++)
			CHECK(bucket_get(fs, d, b)->data_type != DATA_user);
	CHECK(st.keys > 0);
	size_t nr;
	check_stripes(fs, &nr);
	CHECK_EQ(nr, st.stripes);
	struct verify_opts vo = { .check_disk = true, .tag = "striped" };
	CHECK_EQ(verify_fs(fs, &vo), 0);
	CHECK_EQ(check_files(fs, "striped"), 0);
	/* a second run finds nothing left to stripe */
	CHECK_EQ(ec_create_stripes(fs, 3, 1, &st), 0);
	CHECK_EQ(st.stripes, 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings("striped"), 0);
	save_media();

	/* one data block of every stripe lost: everything reads back */
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	wipe_block(fs, 1, 0);
	bkfs_close_nowrite(fs);
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	CHECK_EQ(check_files(fs, "one block wiped"), 0);
	/* two blocks of the first stripe: its files no longer read */
	wipe_block(fs, 0, 1);
	bkfs_close_nowrite(fs);
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	CHECK(check_files(fs, NULL) > 0);
	bkfs_close_nowrite(fs);
	restore_media();
}

/* Overwrites inside erasure-coded files and a reflink of one: the stripes'
 * counts follow the pointers, the data reads back, the checker agrees. */
static void case_overwrite_and_share(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(open_devs(0, &fs), 0);
	size_t nr;
	u8 buf[8192];
	for (unsigned i = 3; i < NFILES; i += 8) {
		if (files[i].size < 3 * sizeof(buf))
			continue;
		fill(buf, sizeof(buf), 1000 + i);
		CHECK_EQ(bkfs_file_write(fs, files[i].inum, 4096, buf, sizeof(buf)), (ssize_t)sizeof(buf));
		memcpy(files[i].data + 4096, buf, sizeof(buf));
	}
	u64 copy;
	CHECK_EQ(bkfs_create(fs, R, "shared", S_IFREG | 0644, 0, 0, 0, NULL, &copy, NULL), 0);
	CHECK_EQ(bkfs_reflink(fs, files[1].inum, 0, copy, 0, files[1].size), 0);
	static u8 rbuf[300 << 10];
	CHECK_EQ(bkfs_file_read(fs, copy, 0, rbuf, sizeof(rbuf)), (ssize_t)files[1].size);
	CHECK(!memcmp(rbuf, files[1].data, files[1].size));
	check_stripes(fs, &nr);
	CHECK(nr > 0);
	CHECK_EQ(check_files(fs, "overwritten"), 0);
	struct verify_opts vo = { .check_disk = false, .tag = "overwritten" };
	CHECK_EQ(verify_fs(fs, &vo), 0);
	CHECK_EQ(bkfs_unlink(fs, R, "shared", false), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings("overwritten and shared"), 0);
	/* one block of every stripe lost: the overwritten files still read */
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	wipe_block(fs, 0, 0);
	bkfs_close_nowrite(fs);
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	CHECK_EQ(check_files(fs, "overwritten, one block wiped"), 0);
	bkfs_close_nowrite(fs);
}

static void case_delete(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(open_devs(0, &fs), 0);
	size_t nr0, nr1, nr2;
	check_stripes(fs, &nr0);
	for (unsigned i = 0; i < NFILES; i += 2) {
		CHECK_EQ(bkfs_unlink(fs, R, files[i].name, false), 0);
		files[i].gone = true;
	}
	check_stripes(fs, &nr1);
	CHECK(nr1 <= nr0);
	CHECK_EQ(check_files(fs, "half deleted"), 0);
	struct verify_opts vo = { .check_disk = false, .tag = "half deleted" };
	CHECK_EQ(verify_fs(fs, &vo), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings("half deleted"), 0);

	REQUIRE_EQ(open_devs(0, &fs), 0);
	for (unsigned i = 1; i < NFILES; i += 2) {
		CHECK_EQ(bkfs_unlink(fs, R, files[i].name, false), 0);
		files[i].gone = true;
	}
	check_stripes(fs, &nr2);
	CHECK_EQ(nr2, 0);
	u64 parity = 0;
	for (unsigned d = 0; d < NDEV; d++)
		for (u64 b = 0; b < fs->sb.members[d].nbuckets; b++)
			parity += bucket_get(fs, d, b)->data_type == DATA_parity || bucket_get(fs, d, b)->stripe;
	CHECK_EQ(parity, 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings("all deleted"), 0);
	restore_media();
	for (unsigned i = 0; i < NFILES; i++)
		files[i].gone = false;
}

/* One power supply for all the devices: wrappers count writes across them;
 * at write N every device loses its unflushed writes, and every later write
 * or flush fails. */
static struct { u64 writes, cut_at; bool cut; } power;
static struct blockdev wrap[NDEV];

static int wrap_read(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	return bd_read(bd->priv, buf, off, len);
}
static int wrap_write(struct blockdev *bd, const void *buf, u64 off, size_t len)
{
	if (!power.cut && ++power.writes >= power.cut_at) {
		power.cut = true;
		for (unsigned d = 0; d < NDEV; d++)
			emu_dev_power_cut(dev[d]);
	}
	return power.cut ? -BKFS_E_IO : bd_write(bd->priv, buf, off, len);
}
static int wrap_flush(struct blockdev *bd)
{
	return power.cut ? -BKFS_E_IO : bd_flush(bd->priv);
}
static void wrap_close(struct blockdev *bd)
{
	(void)bd;
}

static int open_wrapped(struct bkfs_fs **fs)
{
	struct blockdev *bds[NDEV];
	for (unsigned d = 0; d < NDEV; d++) {
		wrap[d] = (struct blockdev){ .read = wrap_read, .write = wrap_write, .flush = wrap_flush,
					     .close = wrap_close, .size = dev[d]->size, .priv = dev[d],
					     .keep_open = true };
		bds[d] = &wrap[d];
	}
	return test_open_fs(bds, NDEV, 0, fs);
}

/* The media as build() left them (nothing striped): power cut at write N of
 * a stripe-making run, every device at once. */
static void case_power_cut(void)
{
	/* back to the unstriped filesystem */
	for (unsigned d = 0; d < NDEV; d++)
		bd_close((dev[d]->keep_open = false, dev[d]));
	memset(dev, 0, sizeof(dev));
	REQUIRE_EQ(build(), 0);
	save_media();
	/* how many writes a whole run makes */
	struct bkfs_fs *fs;
	struct ec_stats st;
	power.cut_at = UINT64_MAX;
	REQUIRE_EQ(open_wrapped(&fs), 0);
	u64 first = power.writes + 1; /* the open's own writes are not cut */
	CHECK_EQ(ec_create_stripes(fs, 3, 1, &st), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK(st.stripes >= 2);
	u64 total = power.writes, step = (total - first) / 40 + 1;
	unsigned cuts = 0;
	for (u64 n = first; n <= total; n += step) {
		restore_media();
		power.writes = 0;
		power.cut = false;
		power.cut_at = n;
		int ro = open_wrapped(&fs);
		CHECK_EQ(ro, 0);
		if (!ro) {
			ec_create_stripes(fs, 3, 1, &st);
			if (fs->error)
				bkfs_close_nowrite(fs);
			else
				bkfs_close(fs);
		}
		if (!power.cut) /* the run ended before write n */
			for (unsigned d = 0; d < NDEV; d++)
				emu_dev_power_cut(dev[d]);
		CHECK_EQ(open_devs(0, &fs), 0); /* replay */
		CHECK_EQ(check_files(fs, "after a cut"), 0);
		CHECK_EQ(bkfs_close(fs), 0);
		size_t f = checker_findings("after a cut");
		if (f)
			fprintf(stderr, "  cut after write %llu of %llu\n", (unsigned long long)n,
				(unsigned long long)total);
		CHECK_EQ(f, 0);
		cuts++;
	}
	CHECK(cuts >= 20);
}

int main(void)
{
	REQUIRE_EQ(build(), 0);
	RUN_CASE(case_make_and_rebuild);
	RUN_CASE(case_overwrite_and_share);
	RUN_CASE(case_delete);
	RUN_CASE(case_power_cut);
	test_emu_close(dev, NDEV);
	for (unsigned d = 0; d < NDEV; d++)
		free(media_copy[d]);
	for (unsigned i = 0; i < NFILES; i++)
		free(files[i].data);
	TEST_MAIN_END();
}
