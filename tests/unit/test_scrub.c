/* test_scrub.c - the scrub's reads in device order (fsck/scrub_runs.c) and
 * the batches that use them (fsck/scrub.c).
 *
 *  - scrub_run_read: runs at any sector offset and length, through the
 *    uncached read in aligned blocks or the plain read at the device's end;
 *  - scrub_plan_runs: random regions on three devices (neighbours, gaps,
 *    overlaps, duplicates, regions larger than a run): every region lands in
 *    exactly one run, runs are in device order, hold their regions, keep to
 *    the size and gap limits, and no two neighbouring runs could have been
 *    one;
 *  - two emulated devices, two replicas of everything, small files written
 *    back to back: a scrub in steps of 4096 units (long runs) reads the data
 *    with far fewer device reads than extents, and counts exactly what a
 *    scrub in steps of one unit (no coalescing) counts, clean and damaged,
 *    with its helper thread verifying runs or not;
 *  - one replica damaged in the middle of a run: found once (-n), rewritten
 *    (repair), then clean, every file reads back;
 *  - reads failing over three neighbouring replicas: a run's read fails, and
 *    exactly the replicas in the failing range are bad;
 *  - one copy of an extents leaf damaged: found in its level's batch,
 *    rewritten, then clean. */
#include "test.h"
#include "btree/iter.h"
#include "fs/fs.h"
#include "fsck/scrub.h"
#include "fsck/scrub_runs.h"
#include "fsck_test.h"
#include <sys/stat.h>

#define NDEV 2
#define NFILES 300
#define DEV_SIZE (40ull << 20)
#define R BKFS_ROOT_INO

/* ---- scrub_run_read ---- */

/* Runs at any sector offset and length read back their own bytes: through
 * the device's uncached read (the emulated one refuses what is not whole
 * aligned blocks, as O_DIRECT does) where the widened run fits, through
 * the plain read at the device's end where it does not (a size that is not
 * a multiple of the alignment), and through the plain read when asked. */
static void case_run_read(void)
{
	const u64 size = (1u << 20) + 3 * 512;
	struct emu_opts o = { .size = size };
	struct blockdev *bd;
	REQUIRE_EQ(emu_dev_create(&o, &bd), 0);
	u8 *media = emu_dev_media(bd);
	for (u64 i = 0; i < size; i++)
		media[i] = (u8)(i * 131 + (i >> 9));
	struct bkfs_fs *fs = calloc(1, sizeof(*fs));
	REQUIRE(fs);
	fs->nr_devs = 1;
	fs->devs[0].bd = bd;
	u8 *buf = NULL;
	size_t cap = 0;
	u64 rng = 7;
	for (unsigned t = 0; t < 2000; t++) {
		rng = rng * 6364136223846793005ull + 1442695040888963407ull;
		u64 len = ((rng >> 33) % 64 + 1) * 512;
		u64 off = ((rng >> 13) % (size / 512)) * 512;
		if (t % 10 == 0)
			off = size - len; /* at the end */
		if (off + len > size)
			continue;
		struct scrub_run run = { .off = off, .len = len, .nr = 1 };
		const u8 *data = NULL;
		u64 reads = bd->nr_reads;
		CHECK_EQ(scrub_run_read(fs, &run, t % 3, &buf, &cap, &data), 0);
		CHECK_EQ(bd->nr_reads, reads); /* the caller counts */
		REQUIRE(data);
		CHECK(!memcmp(data, media + off, len));
	}
	struct scrub_run past = { .off = size - 512, .len = 1024, .nr = 1 };
	const u8 *data;
	CHECK_EQ(scrub_run_read(fs, &past, true, &buf, &cap, &data), -BKFS_E_RANGE);
	free(buf);
	free(fs);
	bd_close(bd);
}

/* ---- scrub_plan_runs ---- */

static void plan_check(struct scrub_read *r, size_t nr, u64 max_bytes, u64 max_gap)
{
	struct scrub_run *runs = malloc((nr ? nr : 1) * sizeof(*runs));
	unsigned *seen = calloc(nr ? nr : 1, sizeof(*seen));
	REQUIRE(runs && seen);
	size_t n = scrub_plan_runs(r, nr, runs, max_bytes, max_gap);
	CHECK(n <= nr);
	size_t next = 0;
	for (size_t i = 0; i < n; i++) {
		const struct scrub_run *run = &runs[i];
		CHECK_EQ(run->first, next);
		CHECK(run->nr >= 1);
		next = run->first + run->nr;
		CHECK(run->len <= max_bytes || run->nr == 1);
		CHECK_EQ(run->off, r[run->first].off);
		u64 end = run->off;
		for (size_t j = run->first; j < next && j < nr; j++) {
			CHECK_EQ(r[j].dev, run->dev);
			CHECK(r[j].off >= run->off && r[j].off + r[j].len <= run->off + run->len);
			CHECK(j == run->first || r[j].off >= r[j - 1].off);
			CHECK(r[j].off <= end + max_gap);
			end = MAX(end, r[j].off + r[j].len);
			seen[r[j].key]++;
		}
		CHECK_EQ(end, run->off + run->len);
		if (i) { /* device order, and not mergeable with the run before */
			const struct scrub_run *prev = &runs[i - 1];
			CHECK(prev->dev < run->dev || (prev->dev == run->dev && prev->off <= run->off));
			const struct scrub_read *f = &r[run->first];
			u64 merged = MAX(prev->off + prev->len, f->off + f->len) - prev->off;
			CHECK(prev->dev != run->dev || f->off > prev->off + prev->len + max_gap || merged > max_bytes);
		}
	}
	CHECK_EQ(next, nr);
	for (size_t k = 0; k < nr; k++)
		CHECK_EQ(seen[k], 1);
	free(runs);
	free(seen);
}

static void case_plan_runs(void)
{
	u64 seed = 7;
	plan_check(NULL, 0, 1 << 20, 64 << 10);
	for (unsigned round = 0; round < 20; round++) {
		size_t nr = 1 + rng_next(&seed) % 3000;
		struct scrub_read *r = calloc(nr, sizeof(*r));
		REQUIRE(r);
		u64 at[3] = { 0, 0, 0 };
		for (size_t i = 0; i < nr; i++) {
			unsigned dev = rng_next(&seed) % 3, shape = rng_next(&seed) % 16;
			u32 len = (u32)(1 + rng_next(&seed) % 64) << 12;
			if (shape == 0)
				len = 3u << 20; /* larger than a run */
			if (shape == 1 && i) { /* a duplicate (another key on the same region) */
				r[i] = r[i - 1];
			} else {
				if (shape == 2)
					at[dev] += (1 + rng_next(&seed) % 64) << 12; /* a gap within the limit or not */
				if (shape == 3 && at[dev] > len)
					at[dev] -= len / 2; /* overlapping the one before */
				r[i] = (struct scrub_read){ .off = at[dev], .len = len, .dev = (u8)dev };
				at[dev] += len;
			}
			r[i].key = (u32)i;
			r[i].ptr = (u8)(i % 4);
		}
		/* key order is not device order */
		for (size_t i = nr - 1; i > 0; i--) {
			size_t j = rng_next(&seed) % (i + 1);
			struct scrub_read t = r[i];
			r[i] = r[j];
			r[j] = t;
		}
		plan_check(r, nr, round & 1 ? 1 << 20 : 256 << 10, round & 2 ? 64 << 10 : 0);
		free(r);
	}
}

/* ---- scrubs of a filesystem on emulated devices ---- */

static struct blockdev *dev[NDEV];
static u8 *media_copy[NDEV];
static struct { char name[16]; u64 inum; size_t size; u8 *data; } files[NFILES];
/* the extents' replicas on device 0, in device order */
static struct ext0 { u64 off, len; } ext0[NFILES * 4];
static size_t nr_ext0;

static int open_devs(unsigned flags, struct bkfs_fs **fs)
{
	struct blockdev *bds[NDEV];
	memcpy(bds, dev, sizeof(bds));
	return test_open_fs(bds, NDEV, flags, fs);
}

static int ext0_cmp(const void *a, const void *b)
{
	const struct ext0 *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

static int build(void)
{
	struct format_opts fo = { .bucket_size = 256 << 10, .btree_node_size = 4 << 10, .replicas = 2 };
	int ret = test_emu_format(dev, NDEV, DEV_SIZE, 5, &fo);
	struct bkfs_fs *fs;
	if (ret || (ret = open_devs(0, &fs)))
		return ret;
	u64 seed = 3;
	for (unsigned i = 0; i < NFILES && !ret; i++) {
		snprintf(files[i].name, sizeof(files[i].name), "f%03u", i);
		files[i].size = 8192 + (size_t)(rng_next(&seed) % (24 << 10));
		files[i].data = malloc(files[i].size);
		for (size_t b = 0; files[i].data && b < files[i].size; b++)
			files[i].data[b] = (u8)(rng_next(&seed) >> 24);
		ret = files[i].data ? bkfs_create(fs, R, files[i].name, S_IFREG | 0644, 0, 0, 0, NULL, &files[i].inum, NULL)
				    : -BKFS_E_NOMEM;
		if (!ret && bkfs_file_write(fs, files[i].inum, 0, files[i].data, files[i].size) != (ssize_t)files[i].size)
			ret = -BKFS_E_IO;
	}
	if (ret) {
		bkfs_close_nowrite(fs);
		return ret;
	}
	if ((ret = bkfs_close(fs)) || (ret = open_devs(BKFS_OPEN_RDONLY, &fs)))
		return ret;
	struct btree_iter it;
	struct bkey *k;
	for_each_btree_key(it, fs, BTREE_ID_extents, POS_MIN, k, ret) {
		const struct bkfs_extent *e = bkey_val(k);
		for (unsigned j = 0; k->type == KEY_TYPE_extent && j < e->nr_ptrs && nr_ext0 < NFILES * 4; j++)
			if (e->ptrs[j].dev == 0)
				ext0[nr_ext0++] = (struct ext0){ e->ptrs[j].offset << SECTOR_SHIFT,
								 (u64)e->csum_sectors << SECTOR_SHIFT };
	}
	qsort(ext0, nr_ext0, sizeof(*ext0), ext0_cmp);
	bkfs_close_nowrite(fs);
	for (unsigned d = 0; d < NDEV && !ret; d++) {
		media_copy[d] = malloc(DEV_SIZE);
		if (!media_copy[d])
			return -BKFS_E_NOMEM;
		memcpy(media_copy[d], emu_dev_media(dev[d]), DEV_SIZE);
	}
	return ret;
}

static void restore_media(void)
{
	for (unsigned d = 0; d < NDEV; d++) {
		emu_dev_clear_faults(dev[d]);
		memcpy(emu_dev_media(dev[d]), media_copy[d], DEV_SIZE);
	}
}

struct run_result {
	struct scrub_stats st;
	size_t nr_lost;
	int status;
	u64 dev0_reads; /* device 0's reads during the scrub's steps */
};

/* helper: a second thread verifies runs too (scrub_helper_on) */
static void scrub_all(bool repair, unsigned budget, bool helper, struct run_result *out)
{
	struct bkfs_fs *fs;
	struct scrub s;
	memset(out, 0, sizeof(*out));
	REQUIRE_EQ(open_devs(repair ? 0 : BKFS_OPEN_RDONLY, &fs), 0);
	scrub_init(&s, fs, repair);
	if (helper)
		CHECK_EQ(scrub_helper_on(&s), 0);
	u64 reads = dev[0]->nr_reads;
	int ret;
	while (!(ret = scrub_step(&s, budget)))
		;
	CHECK_EQ(ret, 1);
	out->dev0_reads = dev[0]->nr_reads - reads;
	scrub_finish(&s);
	out->st = s.st;
	out->st.ns = 0;
	out->nr_lost = s.nr_lost;
	out->status = scrub_exit_status(&s);
	scrub_exit(&s);
	if (repair)
		CHECK_EQ(bkfs_close(fs), 0);
	else
		bkfs_close_nowrite(fs);
}

/* a scrub in long steps, with the helper thread or not, counts exactly what
 * one in steps of one unit does */
static void scrub_both(struct run_result *big)
{
	struct run_result one, helped;
	scrub_all(false, 1, false, &one);
	scrub_all(false, 4096, false, big);
	scrub_all(false, 4096, true, &helped);
	CHECK(!memcmp(&one.st, &big->st, sizeof(one.st)));
	CHECK(!memcmp(&one.st, &helped.st, sizeof(one.st)));
	CHECK_EQ(one.nr_lost, big->nr_lost);
	CHECK_EQ(one.nr_lost, helped.nr_lost);
	CHECK_EQ(one.status, big->status);
	CHECK_EQ(one.status, helped.status);
	CHECK_EQ(big->dev0_reads, helped.dev0_reads);
}

static unsigned files_bad(void)
{
	struct bkfs_fs *fs;
	unsigned bad = 0;
	static u8 buf[64 << 10];
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	for (unsigned i = 0; i < NFILES; i++) {
		ssize_t n = bkfs_file_read(fs, files[i].inum, 0, buf, sizeof(buf));
		bad += n != (ssize_t)files[i].size || memcmp(buf, files[i].data, files[i].size);
	}
	bkfs_close_nowrite(fs);
	return bad;
}

/* an extent on device 0 in the middle of the data whose neighbours touch it */
static size_t middle_extent(void)
{
	for (size_t i = nr_ext0 / 2; i + 1 < nr_ext0; i++)
		if (ext0[i - 1].off + ext0[i - 1].len + SCRUB_RUN_GAP >= ext0[i].off &&
		    ext0[i].off + ext0[i].len + SCRUB_RUN_GAP >= ext0[i + 1].off)
			return i;
	return 0;
}

static void case_clean(void)
{
	struct run_result big;
	restore_media();
	REQUIRE(nr_ext0 >= NFILES);
	scrub_both(&big);
	CHECK_EQ(big.status, 0);
	CHECK_EQ(big.st.extents, nr_ext0);
	CHECK_EQ(big.st.replicas, 2 * nr_ext0);
	CHECK_EQ(big.st.replicas_bad + big.st.node_copies_bad, 0);
	/* the data of device 0 in runs: far fewer reads than its replicas */
	CHECK(big.dev0_reads < nr_ext0 / 4 + big.st.node_copies);
}

static void case_bad_replica(void)
{
	struct run_result r;
	restore_media();
	size_t i = middle_extent();
	REQUIRE(i);
	emu_dev_media(dev[0])[ext0[i].off + ext0[i].len / 2] ^= 0x40;
	scrub_both(&r);
	CHECK_EQ(r.st.replicas_bad, 1);
	CHECK_EQ(r.st.replicas_repaired, 0);
	CHECK_EQ(r.st.bytes_written, 0);
	CHECK_EQ(r.status, FSCK_EXIT_UNCORRECTED);
	scrub_all(true, 4096, true, &r);
	CHECK_EQ(r.st.replicas_bad, 1);
	CHECK_EQ(r.st.replicas_repaired, 1);
	CHECK_EQ(r.st.bytes_written, ext0[i].len);
	CHECK_EQ(r.status, FSCK_EXIT_CORRECTED);
	scrub_all(false, 4096, true, &r);
	CHECK_EQ(r.st.replicas_bad, 0);
	CHECK_EQ(r.status, 0);
	CHECK_EQ(files_bad(), 0);
}

static void case_failed_reads(void)
{
	struct run_result r;
	restore_media();
	size_t i = middle_extent();
	REQUIRE(i);
	/* the middle of three neighbours' replicas (the first and last partly) */
	u64 from = ext0[i - 1].off + ext0[i - 1].len / 2, to = ext0[i + 1].off + ext0[i + 1].len / 2;
	unsigned want = 0;
	for (size_t j = 0; j < nr_ext0; j++)
		want += ext0[j].off < to && ext0[j].off + ext0[j].len > from;
	CHECK_EQ(want, 3);
	REQUIRE_EQ(emu_dev_fail_reads(dev[0], from, to - from), 0);
	scrub_both(&r);
	CHECK_EQ(r.st.replicas_bad, want);
	CHECK_EQ(r.st.extents_lost, 0);
	emu_dev_clear_faults(dev[0]);
}

static void case_bad_node_copy(void)
{
	struct run_result r;
	struct bkfs_fs *fs;
	struct btree_iter it;
	struct bkey *k = NULL;
	struct bkfs_btree_ptr p;
	restore_media();
	REQUIRE_EQ(open_devs(BKFS_OPEN_RDONLY, &fs), 0);
	/* the second leaf of the extents btree, through its parent's pointer */
	btree_iter_init(&it, fs, BTREE_ID_extents, 1, POS_MIN);
	bool found = !btree_iter_peek(&it, &k) && k;
	if (found) {
		btree_iter_advance(&it);
		found = !btree_iter_peek(&it, &k) && k;
	}
	if (found)
		memcpy(&p, bkey_val(k), sizeof(p));
	bkfs_close_nowrite(fs);
	REQUIRE(found && p.nr_ptrs == 2);
	emu_node_at(dev[p.ptrs[1].dev], &p, 1)[200] ^= 0x5a;
	scrub_both(&r);
	CHECK_EQ(r.st.node_copies_bad, 1);
	CHECK_EQ(r.st.replicas_bad, 0);
	scrub_all(true, 4096, true, &r);
	CHECK_EQ(r.st.node_copies_bad, 1);
	CHECK_EQ(r.st.node_copies_repaired, 1);
	scrub_all(false, 4096, true, &r);
	CHECK_EQ(r.st.node_copies_bad, 0);
	CHECK_EQ(r.status, 0);
}

int main(void)
{
	RUN_CASE(case_plan_runs);
	RUN_CASE(case_run_read);
	REQUIRE_EQ(build(), 0);
	RUN_CASE(case_clean);
	RUN_CASE(case_bad_replica);
	RUN_CASE(case_failed_reads);
	RUN_CASE(case_bad_node_copy);
	test_emu_close(dev, NDEV);
	for (unsigned d = 0; d < NDEV; d++)
		free(media_copy[d]);
	for (unsigned i = 0; i < NFILES; i++)
		free(files[i].data);
	TEST_MAIN_END();
}
