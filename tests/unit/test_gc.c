/* test_gc.c - check_allocations and check_alloc_info (gc.c).
 *
 * Each case builds a small tree on an emulated device, damages it directly
 * in memory (alloc keys, pointers, accounting, key versions, bitmaps) and
 * writes the damage with a checkpoint. Then, opened the way fsck opens it:
 *   -n names the expected finding;
 *   -y reports exactly the same findings, in the same order, and repairs;
 *   after the repairs are written, -n is clean. */
#define FSCK_TEST_VERBOSE_ENV "GC_TEST_VERBOSE"
#include "fsck_test.h"
#include "fs/fs.h"
#include <sys/stat.h>

static struct blockdev *devs[2];
static unsigned nr_devs = 1;
static u64 f1, f2, f3;

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
	/* enough inodes for interior nodes in the inodes btree */
	for (int i = 0; i < 400 && !ret; i++) {
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

/* check_allocations + check_alloc_info as the orchestrator runs them; -y
 * writes the repairs the way it does (one checkpoint) */
static void run(enum fsck_mode mode, struct fsck_result *r, const char *what)
{
	struct bkfs_fs *fs;
	memset(r, 0, sizeof(*r));
	if ((r->ret = open_fs(FSCK_FLAGS, &fs)))
		return;
	struct fsck_ctx c = { .fs = fs, .opts = { .mode = mode } };
	fs->fsck = &c;
	c.pass = FSCK_PASS_check_allocations;
	/* as bkfs fsck runs it after a clean topology: the leaves of the
	 * filesystem btrees are walked by the filesystem passes' scans, whose
	 * result is kept only if nothing was found */
	c.fuse_fs = true;
	r->ret = fsck_check_allocations(&c);
	CHECK(r->ret || c.nr ? c.fs_prescan == NULL : c.fs_prescan != NULL);
	fsck_fs_prescan_drop(&c);
	if (!r->ret) {
		c.pass = FSCK_PASS_check_alloc_info;
		r->ret = fsck_check_alloc_info(&c);
	}
	fsck_test_finish(&c, r, what);
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
	CHECK_EQ(build(), 0);
	run(FSCK_MODE_NO, &r, "clean");
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(r.nr, 0);
	if (r.nr) {
		setenv("GC_TEST_VERBOSE", "1", 1);
		run(FSCK_MODE_NO, &r, "clean");
		unsetenv("GC_TEST_VERBOSE");
	}
	/* -y on a clean filesystem changes nothing */
	run(FSCK_MODE_YES, &r, "clean");
	CHECK_EQ(r.nr, 0);
}

static void test_alloc_dirty_sectors(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
	u64 b = find_bucket(fs, DATA_user);
	CHECK(b != 0);
	/* the alloc key only: accounting and the bucket type stay right */
	bucket_get(fs, 0, b)->dirty_sectors += 8;
	bucket_set_dirty(fs, 0, b);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("alloc dirty_sectors", FSCK_ERR_alloc_key_dirty_sectors_wrong, &n);
	CHECK_EQ(n.nr, 1);
}

static void test_alloc_data_type(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
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
	CHECK(fsck_result_has(&n, FSCK_ERR_alloc_key_fragmentation_lru_wrong) || 1);
}

static void test_accounting(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
	acct_add(fs, acct_pos_replicas(DATA_user, 1, 1), 100, 0, 0);
	acct_add(fs, acct_pos_nr_inodes(), 3, 0, 0);
	acct_add(fs, acct_pos_dev_data_type(0, DATA_free), -2, 0, 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("accounting", FSCK_ERR_accounting_mismatch, &n);
	CHECK_EQ(n.nr, 3);
}

static void test_ptr_gen_newer(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	CHECK_EQ(damage_begin(&fs), 0);
	CHECK_EQ(first_extent(fs, f3, &kb), 0);
	bkey_extent(&kb.k)->ptrs[0].gen += 1;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("ptr gen newer", FSCK_ERR_ptr_gen_newer_than_bucket_gen, &n);
}

static void test_stale_dirty(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	CHECK_EQ(damage_begin(&fs), 0);
	CHECK_EQ(first_extent(fs, f2, &kb), 0);
	bkey_extent(&kb.k)->ptrs[0].gen -= 1;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("stale dirty ptr", FSCK_ERR_stale_dirty_ptr, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	CHECK_EQ(n.lost_extents, 1); /* -n reports what -y loses: the extent */
}

static void test_invalid_device(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	CHECK_EQ(damage_begin(&fs), 0);
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
}

static void test_missing_alloc_key(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
	u64 b = find_bucket(fs, DATA_user);
	struct bkey k;
	bkey_init(&k, KEY_TYPE_deleted, POS(0, b), 0);
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_alloc, &k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("missing alloc key", FSCK_ERR_ptr_to_missing_alloc_key, &n);
	CHECK(fsck_result_has(&n, FSCK_ERR_alloc_key_missing));
}

static void test_version_in_future(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	CHECK_EQ(damage_begin(&fs), 0);
	CHECK_EQ(btree_lookup(fs, BTREE_ID_inodes, POS(0, f1), &kb), 0);
	kb.k.version = fs->key_version + 1000000;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_inodes, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("version in future", FSCK_ERR_bkey_version_in_future, &n);
	CHECK_EQ(n.nr, 1);
}

static void test_bitmap(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
	fs->sb.members[0].btree_bitmap = 0;
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("btree bitmap", FSCK_ERR_btree_bitmap_not_marked, &n);
}

/* oldest_gen newer than the bucket's gen: no pointer can carry it */
static void test_oldest_gen(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
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
	CHECK_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
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
	CHECK_EQ(damage_begin(&fs), 0);
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
}

/* an extent whose size would take its bucket's dirty count past 2^32-1:
 * the pointer that overflows goes, the bucket's count stays exact */
static void test_sector_overflow(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	CHECK_EQ(damage_begin(&fs), 0);
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
	CHECK_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	CHECK_EQ(bucket_get(fs, 0, bucket)->dirty_sectors, before);
	bkfs_close_nowrite(fs);
}

static void test_journal_seq(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
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
}

static void test_reflink(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(damage_begin(&fs), 0);
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
	CHECK_EQ(damage_begin(&fs), 0);
	CHECK_EQ(add_file(fs, "late", 200000, 9, &inum), 0);
	CHECK_EQ(bkfs_file_truncate(fs, f2, 4096), 0);
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "small007", false), 0);
	crash_after(fs);
	run(FSCK_MODE_NO, &r, "unclean");
	CHECK_EQ(r.ret, 0);
	CHECK_EQ(r.nr, 0);
	if (r.nr) {
		setenv("GC_TEST_VERBOSE", "1", 1);
		run(FSCK_MODE_NO, &r, "unclean");
		unsetenv("GC_TEST_VERBOSE");
	}
	/* and damaged: accounting journaled wrong, then a crash */
	CHECK_EQ(open_fs(0, &fs), 0);
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
	CHECK_EQ(damage_begin(&fs), 0);
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
	/* nothing was lost: every inode and name is still there */
	CHECK_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
	u64 inodes = 0, dirents = 0;
	int ret;
	for_each_btree_key(it, fs, BTREE_ID_inodes, POS_MIN, k, ret)
		inodes++;
	CHECK_EQ(ret, 0);
	for_each_btree_key(it, fs, BTREE_ID_dirents, POS_MIN, k, ret)
		dirents++;
	CHECK_EQ(ret, 0);
	CHECK_EQ(inodes, 404);
	CHECK_EQ(dirents, 403);
	bkfs_close_nowrite(fs);
}

/* two devices, two replicas: a bad replica goes, the data stays */
static void test_replicas(void)
{
	struct bkfs_fs *fs;
	struct bkey_buf kb;
	struct fsck_result r;
	nr_devs = 2;
	CHECK_EQ(build(), 0);
	run(FSCK_MODE_NO, &r, "replicas clean");
	CHECK_EQ(r.nr, 0);
	CHECK_EQ(open_fs(0, &fs), 0);
	CHECK_EQ(first_extent(fs, f2, &kb), 0);
	CHECK_EQ(bkey_extent(&kb.k)->nr_ptrs, 2);
	bkey_extent(&kb.k)->ptrs[1].gen -= 1;
	CHECK_EQ(btree_insert_key(fs, BTREE_ID_extents, &kb.k), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	struct fsck_result n;
	cycle("replicas", FSCK_ERR_stale_dirty_ptr, &n);
	CHECK(!fsck_result_has(&n, FSCK_ERR_extent_all_ptrs_dropped));
	CHECK_EQ(open_fs(BKFS_OPEN_RDONLY, &fs), 0);
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
		CHECK_EQ(emu_dev_create(&o, &devs[i]), 0);
		devs[i]->keep_open = true;
	}

	test_clean();
	test_alloc_dirty_sectors();
	test_alloc_data_type();
	test_accounting();
	test_ptr_gen_newer();
	test_stale_dirty();
	test_invalid_device();
	test_missing_alloc_key();
	test_version_in_future();
	test_bitmap();
	test_journal_seq();
	test_oldest_gen();
	test_metadata_bucket();
	test_sector_overflow();
	test_reflink();
	test_unclean();
	test_interior_ptr();
	test_replicas();

	for (unsigned i = 0; i < 2; i++) {
		devs[i]->keep_open = false;
		bd_close(devs[i]);
	}
	TEST_MAIN_END();
}
