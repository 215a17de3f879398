/* test_alloc.c - the allocator at scale, its watermarks and its indexes.
 *
 * 1. A filesystem of 262,144 buckets, nearly all of them set need_gc_gens
 *    (the alloc state is edited directly): every bucket still allocatable is
 *    handed out exactly once, none that is not; the work counters show each
 *    call costs about one bitmap word per 64 buckets passed, not a rescan,
 *    and failing calls repeated cost nothing more; the failure says why
 *    (gen GC, journal); after gen GC and a journal flush the rest comes.
 * 2. Watermarks: normal allocations stop at the reserve, the mover's go on,
 *    btree nodes take the last bucket; alloc_space_info agrees with a scan.
 * 3. The fragmentation index lists user buckets emptiest first and follows
 *    every change.
 * 4. Discard: the buckets of a deleted file are given back to the device
 *    with one call per run of adjacent buckets, each bucket exactly once. */
#include "fsck_test.h"
#include "fs/fs.h"
#include <sys/stat.h>

static struct blockdev *make_dev(u64 size, u32 bucket, u32 node)
{
	struct emu_opts o = { .size = size, .seed = 3 };
	struct blockdev *bd;
	struct printbuf err = PRINTBUF;
	CHECK_EQ(emu_dev_create(&o, &bd), 0);
	bd->keep_open = true;
	struct format_opts fo = { .bucket_size = bucket, .btree_node_size = node };
	int ret = bkfs_format_devs(&bd, 1, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s\n", pb_str(&err));
	CHECK_EQ(ret, 0);
	pb_exit(&err);
	return bd;
}

static struct bkfs_fs *open_rw(struct blockdev *bd)
{
	struct bkfs_fs *fs = NULL;
	struct blockdev *bds[1] = { bd };
	CHECK_EQ(test_open_fs(bds, 1, 0, &fs), 0);
	return fs;
}

/* what the allocator may hand out, by a scan (the test's own model) */
static bool model_allocatable(struct bkfs_fs *fs, u64 b, u64 durable)
{
	const struct bkfs_alloc *a = bucket_get(fs, 0, b);
	u8 gen = a->gen + !!(a->flags & ALLOC_NEED_INC_GEN);
	return b >= fs->sb.members[0].first_bucket && a->data_type == DATA_free &&
	       !(ALLOC(fs)->bflags[0][b] & BUCKET_OPEN) && a->journal_seq <= durable &&
	       (u8)(gen - a->oldest_gen) < BUCKET_GC_GEN_MAX;
}

static u64 model_count(struct bkfs_fs *fs, unsigned type)
{
	u64 n = 0;
	for (u64 b = 0; b < fs->sb.members[0].nbuckets; b++)
		n += bucket_get(fs, 0, b)->data_type == type;
	return n;
}

static void set_bucket(struct bkfs_fs *fs, u64 b, u8 gen_ahead, bool inc_gen, u64 journal_seq)
{
	struct bkfs_alloc a = *bucket_get(fs, 0, b);
	a.gen = a.oldest_gen + gen_ahead;
	a.flags = inc_gen ? ALLOC_NEED_INC_GEN : 0;
	a.journal_seq = journal_seq;
	a.data_type = alloc_data_type(&a, DATA_free);
	bucket_update(fs, 0, b, &a);
}

static void test_scale(void)
{
	const u32 bucket = 4096;
	struct blockdev *bd = make_dev(1ull << 30, bucket, 4096);
	struct bkfs_fs *fs = open_rw(bd);
	const struct bkfs_member *m = &fs->sb.members[0];
	u64 nb = m->nbuckets, durable = journal_durable_seq(fs), blocked_seq = journal_cur_seq(fs);
	u64 set = 0, limit = 0, blocked = 0, want = 0;
	CHECK(nb >= 200000);
	/* every 1000th free bucket stays allocatable, every 997th one's gen
	 * bump at reuse hits the limit, every 991st waits on the journal; the
	 * rest wait on gen GC */
	for (u64 b = m->first_bucket; b < nb; b++) {
		if (bucket_get(fs, 0, b)->data_type != DATA_free)
			continue;
		if (b % 1000 == 0) {
			want++;
		} else if (b % 997 == 0) {
			set_bucket(fs, b, BUCKET_GC_GEN_MAX - 1, true, 0);
			limit++;
		} else if (b % 991 == 0) {
			set_bucket(fs, b, 0, false, blocked_seq);
			blocked++;
		} else {
			set_bucket(fs, b, BUCKET_GC_GEN_MAX, false, 0);
			set++;
		}
	}
	CHECK(durable < blocked_seq);
	/* the edits stay in memory: never written */
	for (size_t i = 0; i < ALLOC(fs)->nr_dirty; i++)
		ALLOC(fs)->bflags[0][ALLOC(fs)->dirty[i] & ((1ull << 48) - 1)] &= ~BUCKET_DIRTY;
	ALLOC(fs)->nr_dirty = 0;
	CHECK_EQ(alloc_nr_need_gc_gens(fs), set);
	CHECK_EQ(alloc_nr_need_gc_gens(fs), model_count(fs, DATA_need_gc_gens));
	u64 expect = 0;
	for (u64 b = 0; b < nb; b++)
		expect += model_allocatable(fs, b, durable);
	CHECK_EQ(expect, want);

	memset(&ALLOC(fs)->stats, 0, sizeof(ALLOC(fs)->stats));
	u8 *got = calloc(nb, 1);
	u64 n = 0, b, bad = 0;
	while (!alloc_bucket(fs, 0, ALLOC_WM_btree, &b)) {
		bad += got[b] || bucket_get(fs, 0, b)->data_type != DATA_free || b % 1000;
		got[b] = 1;
		n++;
	}
	const struct alloc_stats *st = &ALLOC(fs)->stats;
	printf("scale: %llu buckets, %llu need_gc_gens; %llu allocated in %llu calls: %llu buckets and %llu bitmap words "
	       "looked at, %llu gen bumps hit the limit, %llu waits on the journal\n",
	       (unsigned long long)nb, (unsigned long long)set, (unsigned long long)n, (unsigned long long)st->calls,
	       (unsigned long long)st->buckets_scanned, (unsigned long long)st->words_scanned,
	       (unsigned long long)st->gen_limit_hits, (unsigned long long)st->journal_waits);
	CHECK_EQ(n, want);
	CHECK_EQ(bad, 0);
	/* not quadratic: every bucket named by the bitmap is looked at about
	 * once in total, and the bitmap is read about once per lap */
	CHECK(st->buckets_scanned <= n + 2 * (limit + blocked) + 8);
	CHECK(st->words_scanned <= 3 * (nb / 64) + 4 * st->calls);
	CHECK_EQ(st->gen_limit_hits, limit);
	CHECK_EQ(alloc_nr_need_gc_gens(fs), set + limit);
	u32 why = alloc_nospc_reasons(fs);
	CHECK(why & ALLOC_WAIT_GC_GENS);
	CHECK(why & ALLOC_WAIT_JOURNAL);

	/* failing again and again costs nothing more */
	u64 words = st->words_scanned;
	for (int i = 0; i < 1000; i++)
		CHECK_EQ(alloc_bucket(fs, 0, ALLOC_WM_btree, &b), -BKFS_E_NOSPC);
	CHECK(st->words_scanned - words <= 1000 * 4);
	CHECK(st->fast_fails >= 1000);

	/* a journal flush releases the buckets waiting on it (the buckets
	 * handed out go back unused, for the commit's own needs) */
	for (b = 0; b < nb; b++)
		if (got[b])
			alloc_bucket_put(fs, 0, b); /* closed by the next commit */
	memset(got, 0, nb);
	u64 inum;
	CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "x", S_IFREG | 0644, 0, 0, 0, NULL, &inum, NULL), 0);
	CHECK_EQ(journal_flush(fs), 0);
	CHECK(journal_durable_seq(fs) >= blocked_seq);
	u64 n2 = 0;
	while (!alloc_bucket(fs, 0, ALLOC_WM_btree, &b)) {
		CHECK(!got[b]);
		got[b] = 1;
		n2++;
	}
	printf("after the flush: %llu more (%llu had waited on it)\n", (unsigned long long)n2, (unsigned long long)blocked);
	CHECK(n2 >= want + blocked - 8);
	CHECK_EQ(alloc_nospc_reasons(fs), ALLOC_WAIT_GC_GENS);

	/* gen GC frees every bucket waiting on it */
	CHECK_EQ(bkfs_gc_gens_fs(fs, NULL), 0);
	CHECK_EQ(alloc_nr_need_gc_gens(fs), 0);
	CHECK_EQ(model_count(fs, DATA_need_gc_gens), 0);
	CHECK_EQ(alloc_bucket(fs, 0, ALLOC_WM_btree, &b), 0);
	CHECK(!got[b]);
	free(got);
	bkfs_close_nowrite(fs);
	bd->keep_open = false;
	bd_close(bd);
}

static void check_space_info(struct bkfs_fs *fs)
{
	struct alloc_space_info si;
	alloc_space_info(fs, &si);
	u64 free = 0, frag = 0;
	const struct alloc_state *as = ALLOC(fs);
	for (u64 b = fs->sb.members[0].first_bucket; b < fs->sb.members[0].nbuckets; b++) {
		const struct bkfs_alloc *a = bucket_get(fs, 0, b);
		bool filling = (as->data_wp[0].open && as->data_wp[0].bucket == b) ||
			       (as->move_wp[0].open && as->move_wp[0].bucket == b);
		free += a->data_type == DATA_free && !(as->bflags[0][b] & BUCKET_OPEN);
		if (a->data_type == DATA_user && !a->stripe && !filling)
			frag += bucket_sectors(fs) - a->dirty_sectors - a->stripe_sectors;
	}
	CHECK_EQ(si.free_buckets, free);
	CHECK_EQ(si.need_gc_gens, model_count(fs, DATA_need_gc_gens));
	CHECK_EQ(si.fragmented_sectors, frag);
	CHECK_EQ(si.reserved[ALLOC_WM_btree], 0);
	CHECK(si.reserved[ALLOC_WM_normal] > si.reserved[ALLOC_WM_copygc]);
	CHECK(si.reserved[ALLOC_WM_copygc] > 0);
}

static u64 x_need_discard(struct bkfs_fs *fs)
{
	return model_count(fs, DATA_need_discard);
}

static void test_watermarks(void)
{
	struct blockdev *bd = make_dev(16 << 20, 64 << 10, 16 << 10);
	struct bkfs_fs *fs = open_rw(bd);
	check_space_info(fs);
	u64 res_n = alloc_reserve_buckets(fs, 0, ALLOC_WM_normal), res_c = alloc_reserve_buckets(fs, 0, ALLOC_WM_copygc);
	u64 b, n[ALLOC_WM_NR] = { 0 };
	for (unsigned wm = 0; wm < ALLOC_WM_NR; wm++) {
		while (!alloc_bucket(fs, 0, wm, &b))
			n[wm]++;
		CHECK_EQ(alloc_dev_free_buckets(fs, 0), alloc_reserve_buckets(fs, 0, wm));
		CHECK(wm == ALLOC_WM_btree || (alloc_nospc_reasons(fs) & ALLOC_WAIT_RESERVE));
	}
	printf("watermarks: normal took %llu, then the mover %llu, then btree nodes %llu (reserves %llu, %llu)\n",
	       (unsigned long long)n[0], (unsigned long long)n[1], (unsigned long long)n[2], (unsigned long long)res_n,
	       (unsigned long long)res_c);
	CHECK(n[0] > 0);
	CHECK_EQ(n[1], res_n - res_c);
	CHECK_EQ(n[2], res_c);
	check_space_info(fs);
	bkfs_close_nowrite(fs);
	bd->keep_open = false;
	bd_close(bd);
}

/* the emptiest user buckets, in order, and the index following changes */
static void test_frag_index(void)
{
	struct blockdev *bd = make_dev(16 << 20, 64 << 10, 16 << 10);
	struct bkfs_fs *fs = open_rw(bd);
	u64 inum[12];
	u8 *buf = malloc(64 << 10);
	memset(buf, 0x5a, 64 << 10);
	/* file i fills (i + 1) * 4 KiB of its own bucket */
	for (unsigned i = 0; i < 12; i++) {
		char name[16];
		snprintf(name, sizeof(name), "f%u", i);
		CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, NULL, &inum[i], NULL), 0);
		CHECK_EQ(bkfs_file_write(fs, inum[i], 0, buf, (i + 1) * 4096), (ssize_t)((i + 1) * 4096));
		alloc_close_write_points(fs);
	}
	CHECK_EQ(btree_checkpoint(fs), 0);
	check_space_info(fs);
	u64 out[64];
	size_t n = alloc_frag_emptiest(fs, 0, UINT32_MAX, NULL, NULL, out, 64);
	CHECK(n >= 12);
	u64 prev = 0;
	for (size_t i = 0; i < n; i++) {
		u64 lru = bucket_get(fs, 0, out[i])->fragmentation_lru;
		/* classes come in order; within a class any order */
		CHECK(lru >> (31 - FRAG_CLASS_SHIFT) >= prev >> (31 - FRAG_CLASS_SHIFT));
		CHECK_EQ(bucket_get(fs, 0, out[i])->data_type, DATA_user);
		prev = lru;
	}
	/* limited by live sectors: only buckets with at most 16 KiB */
	size_t small = alloc_frag_emptiest(fs, 0, 32, NULL, NULL, out, 64);
	CHECK(small >= 4);
	for (size_t i = 0; i < small; i++)
		CHECK(bucket_get(fs, 0, out[i])->dirty_sectors <= 32);
	/* removing a file takes its bucket out */
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "f0", false), 0);
	size_t after = alloc_frag_emptiest(fs, 0, UINT32_MAX, NULL, NULL, out, 64);
	CHECK_EQ(after, n - 1);
	check_space_info(fs);
	free(buf);
	CHECK_EQ(bkfs_close(fs), 0);
	/* the index rebuilt at open is the same */
	fs = open_rw(bd);
	CHECK_EQ(alloc_frag_emptiest(fs, 0, UINT32_MAX, NULL, NULL, out, 64), after);
	check_space_info(fs);
	bkfs_close_nowrite(fs);
	bd->keep_open = false;
	bd_close(bd);
}

/* the device's discard, counted */
static int (*real_discard)(struct blockdev *bd, u64 off, u64 len);
static u64 discard_calls, discard_bytes, discard_misaligned;
static u32 discard_align;

static int counting_discard(struct blockdev *bd, u64 off, u64 len)
{
	discard_calls++;
	discard_bytes += len;
	discard_misaligned += off % discard_align || len % discard_align;
	return real_discard(bd, off, len);
}

/* a 16 MiB filesystem opened with discard on, its device calls counted */
static struct bkfs_fs *discard_fs_open(struct blockdev **bdp)
{
	struct blockdev *bd = make_dev(16 << 20, 64 << 10, 16 << 10), *bds[1] = { bd };
	struct bkfs_fs *fs = NULL;
	CHECK_EQ(test_open_fs(bds, 1, BKFS_OPEN_DISCARD, &fs), 0);
	real_discard = bd->discard;
	bd->discard = counting_discard;
	discard_align = fs->bucket_bytes;
	discard_calls = discard_bytes = discard_misaligned = 0;
	*bdp = bd;
	return fs;
}

static void discard_fs_close(struct bkfs_fs *fs, struct blockdev *bd)
{
	bd->discard = real_discard;
	CHECK_EQ(bkfs_close(fs), 0);
	bd->keep_open = false;
	bd_close(bd);
}

static void test_discard_runs(void)
{
	struct blockdev *bd;
	struct bkfs_fs *fs = discard_fs_open(&bd);
	size_t size = 1 << 20;
	u8 *buf = malloc(size);
	memset(buf, 0xa5, size);
	u64 inum;
	CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "big", S_IFREG | 0644, 0, 0, 0, NULL, &inum, NULL), 0);
	CHECK_EQ(bkfs_file_write(fs, inum, 0, buf, size), (ssize_t)size);
	alloc_close_write_points(fs); /* else its last bucket stays open, not discarded */
	CHECK_EQ(journal_flush(fs), 0);
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "big", false), 0);
	CHECK_EQ(journal_flush(fs), 0);
	u64 waiting = x_need_discard(fs);
	unsigned done = 0;
	CHECK_EQ(alloc_discard_buckets(fs, UINT32_MAX, &done), 0);
	printf("discard: %llu buckets waited, %u discarded in %llu device calls\n", (unsigned long long)waiting, done,
	       (unsigned long long)discard_calls);
	CHECK(waiting >= size / fs->bucket_bytes);
	CHECK_EQ(done, waiting);
	CHECK_EQ(x_need_discard(fs), 0);
	CHECK_EQ(discard_bytes, (u64)done * fs->bucket_bytes);
	CHECK_EQ(discard_misaligned, 0);
	CHECK(discard_calls > 0 && discard_calls < done);
	free(buf);
	discard_fs_close(fs, bd);
}

/* Space short: the buckets a delete frees are taken again at once, so they
 * are freed without the device call (discard.c). Filled to the copying GC
 * watermark with small files, one deleted: no discard, its buckets free. */
static void test_discard_skipped_when_short(void)
{
	struct blockdev *bd;
	struct bkfs_fs *fs = discard_fs_open(&bd);
	static u8 buf[128 << 10];
	memset(buf, 0x5a, sizeof(buf));
	struct alloc_space_info si;
	unsigned n = 0;
	for (;; n++) {
		alloc_space_info(fs, &si);
		if (si.free_buckets + 4 <= si.reserved[ALLOC_WM_normal] + si.total_buckets / 8)
			break;
		char name[16];
		u64 inum;
		snprintf(name, sizeof(name), "f%u", n);
		CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, NULL, &inum, NULL), 0);
		CHECK_EQ(bkfs_file_write(fs, inum, 0, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	}
	alloc_close_write_points(fs);
	CHECK_EQ(journal_flush(fs), 0);
	CHECK_EQ(alloc_discard_buckets(fs, UINT32_MAX, NULL), 0);
	u64 calls = discard_calls, skipped = ALLOC(fs)->nr_discard_skipped;
	CHECK_EQ(bkfs_unlink(fs, BKFS_ROOT_INO, "f0", false), 0);
	CHECK_EQ(journal_flush(fs), 0);
	u64 waiting = x_need_discard(fs);
	unsigned done = 0;
	CHECK_EQ(alloc_discard_buckets(fs, UINT32_MAX, &done), 0);
	printf("discard when short (%u files): %llu buckets waited, %u freed, %llu device calls, %llu skipped\n", n,
	       (unsigned long long)waiting, done, (unsigned long long)(discard_calls - calls),
	       (unsigned long long)(ALLOC(fs)->nr_discard_skipped - skipped));
	CHECK(waiting >= 2);
	CHECK_EQ(done, waiting);
	CHECK_EQ(x_need_discard(fs), 0);
	CHECK_EQ(discard_calls, calls);
	CHECK_EQ(ALLOC(fs)->nr_discard_skipped - skipped, waiting);
	discard_fs_close(fs, bd);
}

int main(void)
{
	test_scale();
	test_watermarks();
	test_frag_index();
	test_discard_runs();
	test_discard_skipped_when_short();
	TEST_MAIN_END();
}
