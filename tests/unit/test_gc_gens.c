/* test_gc_gens.c - generation GC (gc_gens.c) on stale cached pointers made
 * by the engine itself.
 *
 * A file's data is moved (extent_move_to_cached: the new copies are dirty,
 * the old ones stay as cached pointers, as a move to a background target
 * leaves them). Then a second file is written and truncated over and over:
 * the first fill runs out of free buckets, so the allocator invalidates the
 * cached-only buckets (gen++: the cached pointers are now stale), and every
 * later lap reuses each bucket once more (gen++ at reuse). Nothing advances
 * oldest_gen, so after ~96 laps buckets turn need_gc_gens and the allocator
 * refuses them. Then gen GC runs, and:
 *   - no cached pointer is left more than 16 gens stale;
 *   - every bucket's oldest_gen is within 16 of its gen;
 *   - the need_gc_gens buckets are free and allocatable again;
 *   - the moved file still reads back intact;
 *   - the checker finds nothing (GC passes -n, and the full bkfs fsck -n).
 * fsck --gc-gens is exercised too: -n reports the drops, -y reports the same
 * and repairs, -n after is clean. */
#define FSCK_TEST_VERBOSE_ENV "GC_TEST_VERBOSE"
#include "fsck_test.h"
#include "fs/fs.h"
#include "btree/iter.h"
#include <sys/stat.h>
#include <unistd.h>

#define BUCKET (64u << 10)

static struct blockdev *bd;
static u8 *adata;
static size_t alen;
static u64 ainum, binum;

static int open_dev(struct blockdev *dev, unsigned flags, struct bkfs_fs **fs)
{
	return test_open_fs(&dev, 1, flags, fs);
}

static u64 acct_v0(struct bkfs_fs *fs, struct bpos pos)
{
	struct acct_entry *e = acct_find(fs, pos, false);
	return e ? (u64)e->v[0] : 0;
}

/* buckets the allocator would hand out now (a pending gen bump counted) */
static u64 allocatable(struct bkfs_fs *fs)
{
	u64 n = 0;
	for (u64 b = fs->sb.members[0].first_bucket; b < fs->sb.members[0].nbuckets; b++) {
		struct bkfs_alloc *a = bucket_get(fs, 0, b);
		u8 gen = a->gen + !!(a->flags & ALLOC_NEED_INC_GEN);
		n += a->data_type == DATA_free && (u8)(gen - a->oldest_gen) < BUCKET_GC_GEN_MAX;
	}
	return n;
}

struct stale_stats {
	u64 cached, stale, max_stale, too_old; /* too_old: more than 16 gens stale */
};

static void stale_scan(struct bkfs_fs *fs, struct stale_stats *s)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	memset(s, 0, sizeof(*s));
	for_each_btree_key(it, fs, BTREE_ID_extents, POS_MIN, k, ret) {
		struct bkfs_ptr *ptrs;
		unsigned nr = bkey_ptrs(k, &ptrs);
		for (unsigned i = 0; i < nr; i++) {
			if (!(ptrs[i].flags & PTR_CACHED))
				continue;
			u8 gen = bucket_get(fs, 0, ptr_bucket(fs, &ptrs[i]))->gen;
			u64 st = gen_after(gen, ptrs[i].gen);
			s->cached++;
			s->stale += st > 0;
			s->too_old += st > 16;
			s->max_stale = MAX(s->max_stale, st);
		}
	}
	CHECK_EQ(ret, 0);
}

static int write_b(struct bkfs_fs *fs, u64 buckets)
{
	static u8 *buf;
	static size_t cap;
	size_t len = buckets * BUCKET;
	if (len > cap) {
		free(buf);
		buf = malloc(len);
		cap = len;
		for (size_t i = 0; i < len; i++)
			buf[i] = (u8)(i * 7 + 3);
	}
	if (!len) {
		free(buf);
		buf = NULL;
		cap = 0;
		return 0;
	}
	ssize_t n = bkfs_file_write(fs, binum, 0, buf, len);
	return n == (ssize_t)len ? 0 : n < 0 ? (int)n : -BKFS_E_NOSPC;
}

static bool a_intact(struct bkfs_fs *fs)
{
	u8 *got = malloc(alen);
	ssize_t n = bkfs_file_read(fs, ainum, 0, got, alen);
	bool ok = n == (ssize_t)alen && !memcmp(got, adata, alen);
	free(got);
	return ok;
}

/* the checker's allocation passes (+ gc_gens) through bkfs fsck's driver;
 * -y writes the repairs with its commit. Returns the findings. */
static size_t run_gc(struct blockdev *dev, enum fsck_mode mode, bool gens, unsigned *errs, size_t max)
{
	struct fsck_opts o = { .mode = mode, .gc_gens = gens,
			       .passes = FSCK_PASS_BIT(check_allocations) | FSCK_PASS_BIT(check_alloc_info) |
					 FSCK_PASS_BIT(gc_gens) };
	struct fsck_result r;
	fflush(stdout);
	fsck_devs(&dev, 1, &o, &r);
	CHECK_EQ(r.ret, 0);
	if (r.ret) {
		fsck_result_free(&r);
		return (size_t)-1;
	}
	for (size_t i = 0; i < r.nr; i++) {
		if (i < max)
			errs[i] = r.f[i].err;
		if (getenv("GC_TEST_VERBOSE") || (r.f[i].err != FSCK_ERR_gc_gens_ptr_dropped && i < 20))
			fprintf(stderr, "  %s %s: %s: %s\n", mode == FSCK_MODE_NO ? "-n" : "-y",
				fsck_err_table[r.f[i].err].name, r.f[i].object, r.f[i].msg ? r.f[i].msg : "");
	}
	size_t nr = r.nr;
	fsck_result_free(&r);
	return nr;
}

/* hand out buckets until the allocator refuses; every one must be free. With
 * persist, the buckets handed out are given back unused and the session is
 * written: the buckets the allocator turned need_gc_gens stay so on disk. */
static u64 alloc_until_refused(struct blockdev *dev, bool persist, u64 *need_gc_gens_left)
{
	struct bkfs_fs *fs;
	u64 n = 0, b, *got = NULL;
	if (open_dev(dev, persist ? 0 : BKFS_OPEN_RDONLY, &fs))
		return 0;
	got = calloc(fs->sb.members[0].nbuckets, sizeof(*got));
	while (!alloc_bucket(fs, 0, ALLOC_WM_btree, &b)) {
		struct bkfs_alloc *a = bucket_get(fs, 0, b);
		CHECK(a->data_type == DATA_free);
		CHECK((u8)(a->gen - a->oldest_gen) < BUCKET_GC_GEN_MAX);
		got[n++] = b;
	}
	*need_gc_gens_left = 0;
	for (b = 0; b < fs->sb.members[0].nbuckets; b++)
		*need_gc_gens_left += bucket_get(fs, 0, b)->data_type == DATA_need_gc_gens;
	if (persist) {
		for (u64 i = 0; i < n; i++)
			ALLOC(fs)->bflags[0][got[i]] &= ~BUCKET_OPEN;
		CHECK_EQ(bkfs_close(fs), 0);
	} else {
		bkfs_close_nowrite(fs);
	}
	free(got);
	return n;
}

int main(void)
{
	struct emu_opts o = { .size = 12 << 20, .seed = 7 };
	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	u64 t0 = now_ns();
	REQUIRE_EQ(emu_dev_create(&o, &bd), 0);
	bd->keep_open = true;
	struct blockdev *bds[1] = { bd };
	struct format_opts fo = { .bucket_size = BUCKET, .btree_node_size = 16 << 10 };
	CHECK_EQ(bkfs_format_devs(bds, 1, &fo, &err), 0);
	REQUIRE_EQ(open_dev(bd, 0, &fs), 0);

	/* A: 16 buckets of data, then moved: the old copies stay as cached pointers */
	alen = 16 * BUCKET;
	adata = malloc(alen);
	u64 seed = 42;
	for (size_t i = 0; i < alen; i++)
		adata[i] = (u8)rng_next(&seed);
	CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "a", S_IFREG | 0644, 0, 0, 0, NULL, &ainum, NULL), 0);
	CHECK_EQ(bkfs_file_write(fs, ainum, 0, adata, alen), (ssize_t)alen);
	CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "b", S_IFREG | 0644, 0, 0, 0, NULL, &binum, NULL), 0);
	CHECK_EQ(btree_checkpoint(fs), 0);
	u64 moved = 0;
	CHECK_EQ(extent_move_to_cached(fs, ainum, 0, UINT64_MAX, &moved), 0);
	CHECK_EQ(moved, alen >> SECTOR_SHIFT);
	CHECK_EQ(btree_checkpoint(fs), 0);
	u64 cached_buckets = acct_v0(fs, acct_pos_dev_data_type(0, DATA_cached));
	struct stale_stats st;
	stale_scan(fs, &st);
	printf("after the move: %llu cached-only buckets, %llu cached pointers, %llu stale\n",
	       (unsigned long long)cached_buckets, (unsigned long long)st.cached, (unsigned long long)st.stale);
	CHECK(cached_buckets >= 8);
	CHECK_EQ(st.stale, 0);
	CHECK(a_intact(fs));

	/* laps: the first overfills (invalidating cached buckets), the rest
	 * reuse every free bucket once */
	unsigned laps = 0;
	u64 need_gc_gens = 0;
	for (; laps < 400; laps++) {
		/* data writes leave the buckets reserved for the mover and btree nodes */
		u64 avail = allocatable(fs) - MIN(allocatable(fs), alloc_reserve_buckets(fs, 0, ALLOC_WM_normal));
		if (avail < 16)
			break;
		u64 want = laps ? avail - 10 : avail + cached_buckets - 6;
		int ret = write_b(fs, want);
		if (ret) {
			fprintf(stderr, "lap %u: writing %llu buckets: %s\n", laps, (unsigned long long)want, bkfs_strerror(ret));
			break;
		}
		CHECK_EQ(btree_checkpoint(fs), 0);
		CHECK_EQ(bkfs_file_truncate(fs, binum, 0), 0);
		CHECK_EQ(btree_checkpoint(fs), 0);
		if (!laps)
			CHECK(ALLOC(fs)->nr_invalidated > 0);
	}
	/* free buckets whose next gen would reach the limit */
	need_gc_gens = acct_v0(fs, acct_pos_dev_data_type(0, DATA_free)) - allocatable(fs);
	write_b(fs, 0);
	stale_scan(fs, &st);
	printf("%u laps: %llu buckets invalidated, %llu free buckets at the gen limit, %llu cached pointers: %llu stale, %llu more than 16, max %llu gens\n",
	       laps, (unsigned long long)ALLOC(fs)->nr_invalidated, (unsigned long long)need_gc_gens,
	       (unsigned long long)st.cached, (unsigned long long)st.stale, (unsigned long long)st.too_old,
	       (unsigned long long)st.max_stale);
	CHECK(ALLOC(fs)->nr_invalidated > 0);
	CHECK(need_gc_gens > 0);
	CHECK(st.too_old > 0);
	CHECK(st.max_stale > 80 && st.max_stale <= BUCKET_GC_GEN_MAX);
	CHECK(a_intact(fs));
	CHECK_EQ(bkfs_close(fs), 0);

	/* the allocator refuses need_gc_gens buckets */
	u64 left, before = alloc_until_refused(bd, true, &left);
	printf("before gc_gens: %llu buckets allocatable, then refused with %llu need_gc_gens left\n",
	       (unsigned long long)before, (unsigned long long)left);
	CHECK(left > 0);
	REQUIRE_EQ(open_dev(bd, BKFS_OPEN_RDONLY, &fs), 0);
	CHECK_EQ(acct_v0(fs, acct_pos_dev_data_type(0, DATA_need_gc_gens)), left);
	bkfs_close_nowrite(fs);

	/* stale cached pointers within 96 gens are legitimate: check_allocations
	 * is clean; fsck --gc-gens reports the drops, -y the same, then clean */
	unsigned e1[4096], e2[4096];
	CHECK_EQ(run_gc(bd, FSCK_MODE_NO, false, e1, 4096), 0);
	struct blockdev *clone;
	REQUIRE_EQ(emu_dev_clone(bd, &clone), 0);
	clone->keep_open = true;
	size_t n1 = run_gc(clone, FSCK_MODE_NO, true, e1, 4096);
	size_t n2 = run_gc(clone, FSCK_MODE_YES, true, e2, 4096);
	printf("fsck --gc-gens: -n %zu findings, -y %zu\n", n1, n2);
	CHECK(n1 > 0);
	CHECK_EQ(n1, n2);
	CHECK(n1 == n2 && !memcmp(e1, e2, MIN(n1, (size_t)4096) * sizeof(e1[0])));
	for (size_t i = 0; i < MIN(n1, (size_t)4096); i++)
		CHECK_EQ(e1[i], FSCK_ERR_gc_gens_ptr_dropped);
	CHECK_EQ(run_gc(clone, FSCK_MODE_NO, true, e1, 4096), 0);
	u64 left2, after2 = alloc_until_refused(clone, false, &left2);
	CHECK_EQ(left2, 0);
	CHECK(after2 > before);
	clone->keep_open = false;
	bd_close(clone);

	/* the same with every pass, as bkfs fsck --gc-gens: -n exits 4, -y
	 * exits 1, then -n exits 0 */
	{
		REQUIRE_EQ(emu_dev_clone(bd, &clone), 0);
		clone->keep_open = true;
		struct fsck_opts fo1 = { .mode = FSCK_MODE_NO, .gc_gens = true };
		struct fsck_result r;
		static const int want[] = { FSCK_EXIT_UNCORRECTED, FSCK_EXIT_CORRECTED, FSCK_EXIT_OK };
		for (unsigned i = 0; i < ARRAY_SIZE(want); i++) {
			fo1.mode = i == 1 ? FSCK_MODE_YES : FSCK_MODE_NO;
			fflush(stdout);
			CHECK_EQ(fsck_devs(&clone, 1, &fo1, &r), want[i]);
			fsck_result_free(&r);
		}
		clone->keep_open = false;
		bd_close(clone);
	}

	/* bkfs gc-gens (ordinary transactions) */
	struct printbuf report = PRINTBUF;
	REQUIRE_EQ(open_dev(bd, 0, &fs), 0);
	u64 t1 = now_ns();
	CHECK_EQ(bkfs_gc_gens_fs(fs, &report), 0);
	printf("gc_gens (%.3fs):\n%s", (now_ns() - t1) / 1e9, pb_str(&report));
	char freed[64];
	snprintf(freed, sizeof(freed), " %llu need_gc_gens buckets freed", (unsigned long long)left);
	CHECK(strstr(pb_str(&report), freed) != NULL);
	CHECK_EQ(bkfs_close(fs), 0);

	REQUIRE_EQ(open_dev(bd, BKFS_OPEN_RDONLY, &fs), 0);
	stale_scan(fs, &st);
	printf("after gc_gens: %llu cached pointers, %llu stale, max %llu gens\n", (unsigned long long)st.cached,
	       (unsigned long long)st.stale, (unsigned long long)st.max_stale);
	CHECK_EQ(st.too_old, 0);
	u64 far = 0;
	for (u64 b = 0; b < fs->sb.members[0].nbuckets; b++) {
		struct bkfs_alloc *a = bucket_get(fs, 0, b);
		far += (u8)(a->gen - a->oldest_gen) > 16;
		CHECK(a->data_type != DATA_need_gc_gens);
	}
	CHECK_EQ(far, 0);
	CHECK_EQ(acct_v0(fs, acct_pos_dev_data_type(0, DATA_need_gc_gens)), 0);
	CHECK(a_intact(fs));
	bkfs_close_nowrite(fs);
	u64 left3, after = alloc_until_refused(bd, false, &left3);
	printf("after gc_gens: %llu buckets allocatable\n", (unsigned long long)after);
	CHECK_EQ(left3, 0);
	CHECK(after + 4 >= before + left); /* closing sessions took a few buckets for nodes */

	/* the checker finds nothing: allocation passes + gc_gens, then the whole
	 * of bkfs fsck -n on a copy of the image */
	CHECK_EQ(run_gc(bd, FSCK_MODE_NO, true, e1, 4096), 0);
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char path[512];
	snprintf(path, sizeof(path), "%s/test_gc_gens.%d.img", tmp, (int)getpid());
	CHECK_EQ(emu_dev_save(bd, path), 0);
	struct fsck_opts fo2 = { .mode = FSCK_MODE_NO };
	char *devs[1] = { path };
	fflush(stdout);
	int status = bkfs_fsck(devs, 1, &fo2);
	CHECK_EQ(status, 0);
	/* bkfs gc-gens by path: nothing left to do */
	pb_reset(&report);
	CHECK_EQ(bkfs_gc_gens(devs, 1, &report), 0);
	printf("bkfs gc-gens again: %s", pb_str(&report));
	CHECK(strstr(pb_str(&report), " 0 rewritten") != NULL);
	unlink(path);

	printf("total %.2fs\n", (now_ns() - t0) / 1e9);
	pb_exit(&report);
	pb_exit(&err);
	free(adata);
	bd->keep_open = false;
	bd_close(bd);
	TEST_MAIN_END();
}
