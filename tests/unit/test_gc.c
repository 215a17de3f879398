/* test_gc.c - check_allocations and check_alloc_info (gc.c).
 *
 * Each case builds a small tree on an emulated device, damages it directly
 * in memory (alloc keys, pointers, accounting, key versions, bitmaps) and
 * writes the damage with a checkpoint. Then, opened the way fsck opens it:
 *   -n names the expected finding;
 *   -y reports exactly the same findings, in the same order, and repairs;
 *   after the repairs are written, -n is clean.
 * The member btree bitmaps are also checked by the superblock pass
 * (sb_member_bitmap_bad): test_member_bitmap_bad runs every pass. */
#define FSCK_TEST_VERBOSE_ENV "GC_TEST_VERBOSE"
#include "fsck_test.h"
#include "fs/fs.h"
#include "btree/trans.h"
#include "btree/iter.h"
#include <sys/stat.h>
#include <unistd.h>

static struct blockdev *devs[2];
static unsigned nr_devs = 1;
static u64 f1, f2, f3;
static unsigned nr_names; /* names build() made in the root (each a new inode) */

static int open_fs(unsigned flags, struct bkfs_fs **fs)
{
	struct blockdev *bds[2] = { devs[0], devs[1] };
	return test_open_fs(bds, nr_devs, flags, fs);
}

static int add_file(struct bkfs_fs *fs, const char *name, size_t len, unsigned seed, u64 *inum)
{
	int ret = bkfs_create(fs, BKFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, NULL, inum, NULL);
	if (ret)
		return ret;
	u8 *p = malloc(len);
	u64 s = seed;
	for (size_t i = 0; i < len; i++)
		p[i] = (u8)rng_next(&s);
	ssize_t n = bkfs_file_write(fs, *inum, 0, p, len);
	free(p);
	return n == (ssize_t)len ? 0 : -BKFS_E_IO;
}

static int build(void)
{
	struct bkfs_fs *fs;
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .force = true, .bucket_size = 128 << 10, .btree_node_size = 16 << 10,
				  .replicas = nr_devs };
	struct blockdev *bds[2] = { devs[0], devs[1] };
	int ret = bkfs_format_devs(bds, nr_devs, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s\n", pb_str(&err));
	pb_exit(&err);
	if (ret || (ret = open_fs(0, &fs)))
		return ret;
	if ((ret = add_file(fs, "f1", 20000, 1, &f1)) || (ret = add_file(fs, "f2", 300000, 2, &f2)) ||
	    (ret = add_file(fs, "f3", 700000, 3, &f3))) {
		bkfs_close_nowrite(fs);
		return ret;
	}
	nr_names = 3;
	/* enough inodes for interior nodes in the inodes btree */
	for (int i = 0; i < 400 && !ret; i++, nr_names++) {
		char name[32];
		u64 inum;
		snprintf(name, sizeof(name), "small%03d", i);
		ret = bkfs_create(fs, BKFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, NULL, &inum, NULL);
	}
	if (ret) {
		bkfs_close_nowrite(fs);
		return ret;
	}
	return bkfs_close(fs);
}

/* check_allocations + check_alloc_info through bkfs fsck's driver; -y
 * writes the repairs with its commit (one checkpoint) */
static void run(enum fsck_mode mode, struct fsck_result *r, const char *what)
{
	struct fsck_opts o = { .mode = mode,
			       .passes = FSCK_PASS_BIT(check_allocations) | FSCK_PASS_BIT(check_alloc_info) };
	struct blockdev *bds[2] = { devs[0], devs[1] };
	fsck_test_run(bds, nr_devs, &o, r, what);
	/* as after a clean topology: the leaves of the filesystem btrees are
	 * walked by the filesystem passes' scans, whose result is kept only if
	 * check_allocations found nothing */
	size_t found = 0;
	for (size_t i = 0; i < r->nr; i++)
		found += r->f[i].pass == FSCK_PASS_check_allocations;
	CHECK(r->ret || found ? !r->fs_prescan_made : r->fs_prescan_made);
}

static void cycle(const char *name, unsigned want, struct fsck_result *out_n)
{
	fsck_cycle(name, want, run, out_n);
}

/* the first data bucket of a given type */
static u64 find_bucket(struct bkfs_fs *fs, unsigned type)
{
	for (u64 b = 0; b < fs->sb.members[0].nbuckets; b++)
		if (bucket_get(fs, 0, b)->data_type == type)
			return b;
	return 0;
}

/* the first extent of inum (copied) */
static int first_extent(struct bkfs_fs *fs, u64 inum, struct bkey_buf *out)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	for_each_btree_key(it, fs, BTREE_ID_extents, POS(inum, 0), k, ret) {
		if (k->p.inode != inum)
			break;
		if (k->type == KEY_TYPE_extent) {
			memcpy(out, k, bkey_bytes(k));
			return 0;
		}
	}
	return ret ? ret : -BKFS_E_NOENT;
}

static int damage_begin(struct bkfs_fs **fs)
{
	int ret = build();
	if (!ret)
		ret = open_fs(0, fs);
	return ret;
}

static void test_clean(void)
{
	struct fsck_result r;
	REQUIRE_EQ(build(), 0);
	run(FSCK_MODE_NO, &r, "clean");
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(r.nr, 0);
	CHECK_EQ(r.status, FSCK_EXIT_OK);
	if (r.nr) {
		fsck_result_free(&r);
		setenv("GC_TEST_VERBOSE", "1", 1);
		run(FSCK_MODE_NO, &r, "clean");
		unsetenv("GC_TEST_VERBOSE");
	}
	fsck_result_free(&r);
	/* -y on a clean filesystem changes nothing */
	run(FSCK_MODE_YES, &r, "clean");
	CHECK_EQ(r.nr, 0);
	CHECK_EQ(r.status, FSCK_EXIT_OK);
	fsck_result_free(&r);
}

/* The read-ahead helper starts only when the btrees hold ra_min_nodes nodes;
 * with it or without, a full check of the same filesystem finds the same. */
static void test_readahead_min_nodes(void)
{
	REQUIRE_EQ(build(), 0);
	u64 mins[2] = { UINT64_MAX, 0 };
	for (unsigned i = 0; i < 2; i++) {
		struct fsck_opts o = { .mode = FSCK_MODE_NO, .readahead = true, .ra_min_nodes = mins[i] };
		struct blockdev *bds[2] = { devs[0], devs[1] };
		struct fsck_result r;
		fsck_test_run(bds, nr_devs, &o, &r, "read-ahead");
		CHECK_EQ(r.readahead, i == 1);
		CHECK_EQ(r.status, FSCK_EXIT_OK);
		CHECK_EQ(r.nr, 0);
		CHECK(r.pass_nodes_read[FSCK_PASS_check_allocations] > 0);
		fsck_result_free(&r);
	}
}

static void test_alloc_dirty_sectors(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	u64 b = find_bucket(fs, DATA_user);
	CHECK(b != 0);
	/* the alloc key only: accounting and the bucket type stay right */
	bucket_get(fs, 0, b)->dirty_sectors += 8;
	bucket_set_dirty(fs, 0, b);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("alloc dirty_sectors", FSCK_ERR_alloc_key_dirty_sectors_wrong, &n);
	CHECK_EQ(n.nr, 1);
	fsck_result_free(&n);
}

static void test_alloc_data_type(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	u64 b = find_bucket(fs, DATA_free);
	CHECK(b != 0);
	/* a free bucket that claims to hold btree data */
	struct bkfs_alloc *a = bucket_get(fs, 0, b);
	a->dirty_sectors = 32;
	a->data_type = DATA_btree;
	bucket_set_dirty(fs, 0, b);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("alloc data_type", FSCK_ERR_alloc_key_data_type_wrong, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_alloc_key_dirty_sectors_wrong));
	fsck_result_free(&n);
}

static void test_accounting(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	acct_add(fs, acct_pos_replicas(DATA_user, 1, 1), 100, 0, 0);
	acct_add(fs, acct_pos_nr_inodes(), 3, 0, 0);
	acct_add(fs, acct_pos_dev_data_type(0, DATA_free), -2, 0, 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("accounting", FSCK_ERR_accounting_mismatch, &n);
	CHECK_EQ(n.nr, 3);
	fsck_result_free(&n);
}

static void test_ptr_gen_newer(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(first_extent(fs, f3, &kb), 0);
	bkey_extent(&kb.k)->ptrs[0].gen += 1;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("ptr gen newer", FSCK_ERR_ptr_gen_newer_than_bucket_gen, &n);
	fsck_result_free(&n);
}

static void test_stale_dirty(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(first_extent(fs, f2, &kb), 0);
	bkey_extent(&kb.k)->ptrs[0].gen -= 1;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("stale dirty ptr", FSCK_ERR_stale_dirty_ptr, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	CHECK_EQ(n.lost_extents, 1); /* -n reports what -y loses: the extent */
	fsck_result_free(&n);
}

static void test_invalid_device(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(first_extent(fs, f1, &kb), 0);
	bkey_extent(&kb.k)->ptrs[0].dev = 5;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(first_extent(fs, f2, &kb), 0);
	bkey_extent(&kb.k)->ptrs[0].offset = fs->sb.members[0].nbuckets * fs->sb.bucket_size + 64;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("invalid device", FSCK_ERR_ptr_to_invalid_device, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_ptr_to_invalid_bucket));
	CHECK(fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	fsck_result_free(&n);
}

static void test_missing_alloc_key(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	u64 b = find_bucket(fs, DATA_user);
	struct bkey k;
	bkey_init(&k, KEY_TYPE_deleted, POS(0, b), 0);
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_alloc, &k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("missing alloc key", FSCK_ERR_ptr_to_missing_alloc_key, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_alloc_key_missing));
	fsck_result_free(&n);
}

static void test_version_in_future(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_inodes, POS(0, f1), &kb), 0);
	kb.k.version = fs->key_version + 1000000;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_inodes, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("version in future", FSCK_ERR_bkey_version_in_future, &n);
	CHECK_EQ(n.nr, 1);
	fsck_result_free(&n);
}

static void test_bitmap(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	fs->sb.members[0].btree_bitmap = 0;
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("btree bitmap", FSCK_ERR_btree_bitmap_not_marked, &n);
	fsck_result_free(&n);
}

/* fsck_member_bitmap_repair on member 0 of sb with the given shift and
 * bitmap: whether it calls them bad; when it does, the repair must cover the
 * device, mark every sector the old bitmap marked inside it (sampled, tested
 * with member_bitmap_test), set nothing past the end, and be left alone by a
 * second check. */
static bool bitmap_repair_ok(const struct bkfs_sb *sb0, unsigned shift, u64 bitmap, bool *bad, u8 *out_shift,
			     u64 *out_bitmap)
{
	struct bkfs_sb sb = *sb0;
	struct bkfs_member *m = &sb.members[0];
	m->btree_bitmap_shift = shift;
	m->btree_bitmap = bitmap;
	struct bkfs_member old = *m;
	u64 sectors = m->nbuckets * sb.bucket_size;
	u8 ns = 0xff;
	u64 nb = 0;
	*bad = fsck_member_bitmap_repair(&sb, 0, &ns, &nb);
	if (out_shift)
		*out_shift = ns;
	if (out_bitmap)
		*out_bitmap = nb;
	if (!*bad)
		return true;
	bool ok = ((sectors - 1) >> ns) < 64 && (ns == 0 || ((sectors - 1) >> (ns - 1)) >= 64);
	m->btree_bitmap_shift = ns;
	m->btree_bitmap = nb;
	u8 s2;
	u64 b2;
	ok &= !fsck_member_bitmap_repair(&sb, 0, &s2, &b2);
	/* bits past the device's last region */
	u64 last_bit = (sectors - 1) >> ns;
	ok &= last_bit >= 63 || !(nb >> (last_bit + 1));
	/* every sampled sector the old bitmap marks, the new one marks */
	u64 step = MAX(1, sectors / 8192);
	for (u64 sec = 0; sec < sectors; sec += step)
		if (member_bitmap_test(&old, sec, 1) && !member_bitmap_test(m, sec, 1))
			ok = false;
	/* and the first and last sector of every old region inside the device */
	for (unsigned i = 0; i < 64 && shift < 64; i++) {
		if (!(bitmap & (1ull << i)) || i > ((sectors - 1) >> shift))
			continue;
		u64 a = (u64)i << shift, z = MIN(sectors - 1, a + ((1ull << shift) - 1));
		if (!member_bitmap_test(m, a, 1) || !member_bitmap_test(m, z, 1))
			ok = false;
	}
	return ok;
}

/* sb_member_bitmap_bad: a member btree bitmap whose 64 bits cannot describe
 * its device (the superblock pass) */
static void test_member_bitmap_bad(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(build(), 0);
	REQUIRE_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	struct bkfs_sb sb = fs->sb;
	bkfs_close_nowrite(fs);
	const struct bkfs_member *m0 = &sb.members[0];
	u64 sectors = m0->nbuckets * sb.bucket_size;
	unsigned fmt_shift = m0->btree_bitmap_shift;
	u64 fmt_bitmap = m0->btree_bitmap;
	bool bad;
	u8 ns;
	u64 nb;

	/* as formatted and written: the smallest covering shift, and sound */
	CHECK(fmt_shift > 0);
	CHECK(((sectors - 1) >> fmt_shift) < 64 && ((sectors - 1) >> (fmt_shift - 1)) >= 64);
	CHECK(bitmap_repair_ok(&sb, fmt_shift, fmt_bitmap, &bad, NULL, NULL));
	CHECK(!bad);
	/* a coarser shift still covers the device: not bad */
	CHECK(bitmap_repair_ok(&sb, fmt_shift + 3, 1, &bad, NULL, NULL));
	CHECK(!bad);
	/* one too small: bad; back to the formatted shift, bits 2i and 2i+1
	 * folded into bit i (0, 4, 5, 63 -> 0, 2, 31) */
	CHECK(bitmap_repair_ok(&sb, fmt_shift - 1, 0x8000000000000031ull, &bad, &ns, &nb));
	CHECK(bad);
	CHECK_EQ(ns, fmt_shift);
	CHECK_EQ(nb, 0x80000005ull);
	/* the formatted shift with bits past the device's end: they go */
	if (((sectors - 1) >> fmt_shift) < 63) {
		u64 past = 1ull << (((sectors - 1) >> fmt_shift) + 1);
		CHECK(bitmap_repair_ok(&sb, fmt_shift, fmt_bitmap | past, &bad, &ns, &nb));
		CHECK(bad);
		CHECK_EQ(ns, fmt_shift);
		CHECK_EQ(nb, fmt_bitmap);
	}
	/* a very coarse shift with a stray high bit */
	CHECK(bitmap_repair_ok(&sb, 60, 3, &bad, &ns, &nb));
	CHECK(bad);
	CHECK_EQ(ns, fmt_shift);
	CHECK_EQ(nb, UINT64_MAX);
	/* shift 0: 64 sectors of a big device */
	CHECK(bitmap_repair_ok(&sb, 0, UINT64_MAX, &bad, &ns, &nb));
	CHECK(bad);
	CHECK_EQ(nb, 1);
	/* every shift, random bitmaps: never less marked, a fixed point */
	u64 seed = 7;
	unsigned nbad = 0;
	for (unsigned shift = 0; shift < 64; shift++)
		for (unsigned r = 0; r < 8; r++) {
			u64 bm = rng_next(&seed);
			if (r & 1)
				bm &= rng_next(&seed) & rng_next(&seed);
			bool ok = bitmap_repair_ok(&sb, shift, bm, &bad, NULL, NULL);
			if (!ok)
				fprintf(stderr, "FAIL member bitmap repair: shift %u bitmap 0x%016llx\n", shift,
					(unsigned long long)bm);
			CHECK(ok);
			nbad += bad;
		}
	CHECK(nbad > 0);

	/* the whole checker (every pass, as bkfs fsck) on a filesystem whose
	 * member 0 shift was lowered by one (every superblock copy, still
	 * valid): -n reports it, -y repairs exactly what -n reported, then -n
	 * is clean */
	REQUIRE_EQ(open_fs(0, &fs), 0);
	fs->sb.members[0].btree_bitmap_shift = fmt_shift - 1;
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_opts fo = { .mode = FSCK_MODE_NO };
	struct fsck_result n, y;
	fsck_test_run(devs, 1, &fo, &n, "member bitmap");
	CHECK_EQ(n.status, FSCK_EXIT_UNCORRECTED);
	CHECK(fsck_result_has(&n, FSCK_ERR_sb_member_bitmap_bad));
	fo.mode = FSCK_MODE_YES;
	fsck_test_run(devs, 1, &fo, &y, "member bitmap");
	CHECK_EQ(y.status, FSCK_EXIT_CORRECTED);
	CHECK(!memcmp(n.counts, y.counts, sizeof(n.counts)));
	fsck_result_free(&n);
	fsck_result_free(&y);
	fo.mode = FSCK_MODE_NO;
	fsck_test_run(devs, 1, &fo, &n, "after");
	CHECK_EQ(n.status, FSCK_EXIT_OK);
	fsck_result_free(&n);
	/* every copy now holds the covering shift again */
	unsigned copies = 0;
	CHECK_EQ(bkfs_read_super(devs[0], &sb, &copies, NULL), 0);
	CHECK_EQ(copies, 3);
	CHECK_EQ(sb.members[0].btree_bitmap_shift, fmt_shift);
	CHECK(bitmap_repair_ok(&sb, sb.members[0].btree_bitmap_shift, sb.members[0].btree_bitmap, &bad, NULL, NULL));
	CHECK(!bad);
}

/* oldest_gen newer than the bucket's gen: no pointer can carry it */
static void test_oldest_gen(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	u64 b = find_bucket(fs, DATA_user);
	CHECK(b != 0);
	struct bkfs_alloc *a = bucket_get(fs, 0, b);
	u8 gen = a->gen;
	a->oldest_gen = gen + 1;
	bucket_set_dirty(fs, 0, b);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("oldest_gen", FSCK_ERR_alloc_key_oldest_gen_wrong, &n);
	CHECK_EQ(n.nr, 1);
	fsck_result_free(&n);
	REQUIRE_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	CHECK_EQ(bucket_get(fs, 0, b)->oldest_gen, gen);
	CHECK_EQ(bucket_get(fs, 0, b)->gen, gen);
	bkfs_close_nowrite(fs);
}

/* a data pointer into a journal bucket (with its gen): the metadata bucket
 * keeps its type, the pointer goes */
static void test_metadata_bucket(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	REQUIRE_EQ(damage_begin(&fs), 0);
	u64 jb = fs->sb.members[0].journal_bucket_start + 1;
	CHECK(fs->sb.members[0].journal_nr_buckets > 1);
	CHECK_EQ(bucket_get(fs, 0, jb)->data_type, DATA_journal);
	CHECK_EQ(first_extent(fs, f2, &kb), 0);
	struct bkfs_ptr *p = &bkey_extent(&kb.k)->ptrs[0];
	p->offset = jb * fs->sb.bucket_size;
	p->gen = bucket_get(fs, 0, jb)->gen;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("metadata bucket", FSCK_ERR_bucket_metadata_type_mismatch, &n);
	CHECK(!fsck_result_has(&n, FSCK_ERR_ptr_bucket_data_type_mismatch));
	CHECK(fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	CHECK(!fsck_result_has(&n, FSCK_ERR_alloc_key_data_type_wrong));
	CHECK_EQ(n.lost_extents, 1);
	fsck_result_free(&n);
}

/* an extent whose size would take its bucket's dirty count past 2^32-1:
 * the pointer that overflows goes, the bucket's count stays exact */
static void test_sector_overflow(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(first_extent(fs, f1, &kb), 0);
	u64 bucket = bkey_extent(&kb.k)->ptrs[0].offset / fs->sb.bucket_size;
	u32 before = bucket_get(fs, 0, bucket)->dirty_sectors;
	CHECK(before > 0);
	kb.k.p.offset = UINT32_MAX;
	kb.k.size = UINT32_MAX;
	kb.k.version = ++fs->key_version;
	bkey_extent(&kb.k)->csum_type = CSUM_NONE;
	bkey_extent(&kb.k)->csum_sectors = 0;
	bkey_extent(&kb.k)->offset = 0;
	CHECK_EQ(bkey_validate(&kb.k, BTREE_ID_extents, 0, NULL), 0);
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("sector count overflow", FSCK_ERR_bucket_sector_count_overflow, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	CHECK(!fsck_result_has(&n, FSCK_ERR_alloc_key_dirty_sectors_wrong));
	fsck_result_free(&n);
	REQUIRE_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	CHECK_EQ(bucket_get(fs, 0, bucket)->dirty_sectors, before);
	bkfs_close_nowrite(fs);
}

static void test_journal_seq(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	u64 nb = fs->sb.members[0].nbuckets, b = nb - 2;
	while (b && bucket_get(fs, 0, b)->data_type != DATA_free)
		b--;
	/* the engine's deferred gen bump: normal, not a finding */
	bucket_get(fs, 0, b)->flags |= ALLOC_NEED_INC_GEN;
	bucket_get(fs, 0, b - 1)->journal_seq = 1ull << 40;
	bucket_set_dirty(fs, 0, b);
	bucket_set_dirty(fs, 0, b - 1);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("journal_seq", FSCK_ERR_alloc_key_journal_seq_in_future, &n);
	CHECK_EQ(n.nr, 1);
	fsck_result_free(&n);
}

static void test_reflink(void)
{
	struct bkfs_fs *fs;
	REQUIRE_EQ(damage_begin(&fs), 0);
	/* an indirect extent nobody references, with refcount 2 */
	struct bkfs_ptr ptrs[BKFS_MAX_REPLICAS];
	u32 got;
	int n = alloc_data_space(fs, 1, 8, ptrs, &got);
	CHECK_EQ(n, 1);
	struct bkey_buf kb;
	bkey_init(&kb.k, KEY_TYPE_reflink_v, POS(0, 1000 + got), sizeof(struct bkfs_reflink_v) + sizeof(struct bkfs_ptr));
	kb.k.size = got;
	struct bkfs_reflink_v *v = bkey_val(&kb.k);
	v->refcount = 2;
	v->e.nr_ptrs = 1;
	v->e.csum_sectors = got;
	v->e.ptrs[0] = ptrs[0];
	struct trans t;
	trans_init(&t, fs);
	CHECK_EQ(trans_update(&t, BTREE_ID_reflink, &kb.k), 0);
	CHECK_EQ(trans_commit(&t, 0), 0);
	/* and a reflink pointer to nothing */
	bkey_init(&kb.k, KEY_TYPE_reflink_p, POS(f1, 1000), sizeof(struct bkfs_reflink_p));
	kb.k.size = 16;
	((struct bkfs_reflink_p *)bkey_val(&kb.k))->idx = 5000;
	CHECK_EQ(trans_update(&t, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(trans_commit(&t, 0), 0);
	trans_exit(&t);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result r;
	cycle("reflink", FSCK_ERR_reflink_v_refcount_wrong, &r);
	CHECK(fsck_result_has(&r, FSCK_ERR_reflink_p_to_missing_reflink_v));
	fsck_result_free(&r);
}

/* a crash after durable commits: the checker runs on the journal overlay,
 * with replayed nodes' old space in pending_free */
static void crash_after(struct bkfs_fs *fs)
{
	CHECK_EQ(journal_flush(fs), 0);
	bkfs_close_nowrite(fs);
	for (unsigned i = 0; i < nr_devs; i++)
		emu_dev_power_cut(devs[i]);
}

static void test_unclean(void)
{
	struct bkfs_fs *fs;
	struct fsck_result r;
	u64 inum;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(add_file(fs, "late", 200000, 9, &inum), 0);
	CHECK_EQ(bkfs_file_truncate(fs, f2, 4096), 0);
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "small007", false), 0);
	crash_after(fs);
	run(FSCK_MODE_NO, &r, "unclean");
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(r.nr, 0);
	if (r.nr) {
		fsck_result_free(&r);
		setenv("GC_TEST_VERBOSE", "1", 1);
		run(FSCK_MODE_NO, &r, "unclean");
		unsetenv("GC_TEST_VERBOSE");
	}
	fsck_result_free(&r);
	/* and damaged: accounting journaled wrong, then a crash */
	REQUIRE_EQ(open_fs(0, &fs), 0);
	acct_add(fs, acct_pos_nr_inodes(), 5, 0, 0);
	CHECK_EQ(add_file(fs, "later", 100000, 10, &inum), 0);
	crash_after(fs);
	cycle("unclean accounting", FSCK_ERR_accounting_mismatch, NULL);
}

static void test_interior_ptr(void)
{
	struct bkfs_fs *fs;
	struct btree_iter it;
	struct bkey *k;
	struct btree *r;
	REQUIRE_EQ(damage_begin(&fs), 0);
	CHECK_EQ(btree_root_get(fs, BTREE_ID_inodes, &r), 0);
	CHECK(r->level >= 1);
	/* the first child's pointer gets a newer gen; the path through the
	 * second child is copied so that the parent is written */
	btree_iter_init(&it, fs, BTREE_ID_inodes, 1, POS_MIN);
	CHECK_EQ(btree_iter_peek(&it, &k), 0);
	((struct bkfs_btree_ptr *)bkey_val(k))->ptrs[0].gen += 1;
	btree_iter_advance(&it);
	CHECK_EQ(btree_iter_peek(&it, &k), 0);
	struct bpos second = ((struct bkfs_btree_ptr *)bkey_val(k))->min_key;
	struct btree_iter it0;
	btree_iter_init(&it0, fs, BTREE_ID_inodes, 0, second);
	CHECK_EQ(btree_iter_peek(&it0, &k), 0);
	struct bkey_buf kb;
	memcpy(&kb, k, bkey_bytes(k));
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_inodes, &kb.k), 0);
	/* and the dirents root pointer a stale gen */
	fs->roots[BTREE_ID_dirents].ptr.ptrs[0].gen -= 1;
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("interior pointers", FSCK_ERR_ptr_gen_newer_than_bucket_gen, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_stale_dirty_ptr));
	CHECK_EQ(n.lost_extents, 0);
	fsck_result_free(&n);
	/* nothing was lost: every inode and name is still there */
	REQUIRE_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	u64 inodes = 0, dirents = 0;
	int ret;
	for_each_btree_key(it, fs, BTREE_ID_inodes, POS_MIN, k, ret)
		inodes++;
	CHECK_EQ(ret, 0);
	for_each_btree_key(it, fs, BTREE_ID_dirents, POS_MIN, k, ret)
		dirents++;
	CHECK_EQ(ret, 0);
	CHECK_EQ(inodes, nr_names + 1); /* and the root */
	CHECK_EQ(dirents, nr_names);
	bkfs_close_nowrite(fs);
}

/* two devices, two replicas: a bad replica goes, the data stays */
static void test_replicas(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	struct fsck_result r;
	nr_devs = 2;
	REQUIRE_EQ(build(), 0);
	run(FSCK_MODE_NO, &r, "replicas clean");
	CHECK_EQ(r.nr, 0);
	fsck_result_free(&r);
	REQUIRE_EQ(open_fs(0, &fs), 0);
	CHECK_EQ(first_extent(fs, f2, &kb), 0);
	CHECK_EQ(bkey_extent(&kb.k)->nr_ptrs, 2);
	bkey_extent(&kb.k)->ptrs[1].gen -= 1;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("replicas", FSCK_ERR_stale_dirty_ptr, &n);
	CHECK(!fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	fsck_result_free(&n);
	REQUIRE_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	u8 *buf = malloc(300000), *want = malloc(300000);
	u64 s = 2;
	for (size_t i = 0; i < 300000; i++)
		want[i] = (u8)rng_next(&s);
	CHECK_EQ(bkfs_file_read(fs, f2, 0, buf, 300000), 300000);
	CHECK(!memcmp(buf, want, 300000));
	free(buf);
	free(want);
	bkfs_close_nowrite(fs);
	nr_devs = 1;
}

int main(void)
{
	for (unsigned i = 0; i < 2; i++) {
		struct emu_opts o = { .size = 64 << 20, .seed = 1 + i };
		REQUIRE_EQ(emu_dev_create(&o, &devs[i]), 0);
		devs[i]->keep_open = true;
	}

	RUN_CASE(test_clean);
	RUN_CASE(test_readahead_min_nodes);
	RUN_CASE(test_alloc_dirty_sectors);
	RUN_CASE(test_alloc_data_type);
	RUN_CASE(test_accounting);
	RUN_CASE(test_ptr_gen_newer);
	RUN_CASE(test_stale_dirty);
	RUN_CASE(test_invalid_device);
	RUN_CASE(test_missing_alloc_key);
	RUN_CASE(test_version_in_future);
	RUN_CASE(test_bitmap);
	RUN_CASE(test_member_bitmap_bad);
	RUN_CASE(test_journal_seq);
	RUN_CASE(test_oldest_gen);
	RUN_CASE(test_metadata_bucket);
	RUN_CASE(test_sector_overflow);
	RUN_CASE(test_reflink);
	RUN_CASE(test_unclean);
	RUN_CASE(test_interior_ptr);
	RUN_CASE(test_replicas);

	for (unsigned i = 0; i < 2; i++) {
		devs[i]->keep_open = false;
		bd_close(devs[i]);
	}
	TEST_MAIN_END();
}
