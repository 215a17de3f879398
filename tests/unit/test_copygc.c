/* test_copygc.c - copying GC (data/move.c) on emulated devices.
 *
 * Every case fills a filesystem with files, deletes every other one (each
 * bucket is left about half used), and runs bkfs_copygc in small steps, a
 * journal flush between steps (what the mount's background thread does),
 * until a step finds nothing to do. Then: free buckets went up, every file
 * reads back identical to the model, the checker's passes find nothing, and
 * new files fit in the space recovered.
 *   - plain files on one device;
 *   - reflinked files (indirect extents moved, refcounts kept);
 *   - two devices with data replicas 2 (only the pointer in the victim
 *     moves; the copies stay on distinct devices);
 *   - power cut at every write of a copygc run and of a gen GC run, on the
 *     emulated device with unflushed writes reordered, over several seeds:
 *     replay succeeds, the checker is clean, and every file (all committed
 *     and flushed before the run) reads back. */
#include "fsck_test.h"
#include "fs/fs.h"
#include "data/move.h"
#include "btree/iter.h"
#include <sys/stat.h>

#define R BKFS_ROOT_INO
#define MAXF 1024
#define BUCKET (64u << 10)

static struct blockdev *dev[2];
static unsigned ndev;
static u64 dev_size;
static struct { char name[16]; u64 inum; size_t size; u8 *data; bool gone; } files[MAXF];
static unsigned nfiles;

static void fill(u8 *p, size_t n, u64 seed)
{
	u64 s = seed * 0x9E3779B97F4A7C15ull + 5;
	for (size_t i = 0; i < n; i++)
		p[i] = (u8)(rng_next(&s) >> 24);
}

static int open_devs(unsigned flags, struct bkfs_fs **fs)
{
	struct blockdev *bds[2] = { dev[0], dev[1] };
	return test_open_fs(bds, ndev, flags, fs);
}

static void models_free(void)
{
	for (unsigned i = 0; i < nfiles; i++) {
		free(files[i].data);
		files[i].data = NULL;
	}
	nfiles = 0;
}

static void devs_free(void)
{
	for (unsigned d = 0; d < ndev; d++) {
		dev[d]->keep_open = false;
		bd_close(dev[d]);
		dev[d] = NULL;
	}
}

static int format(unsigned n, u64 size, unsigned replicas)
{
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .bucket_size = BUCKET, .btree_node_size = 16 << 10, .journal_size = 1 << 20,
				  .replicas = replicas };
	ndev = n;
	dev_size = size;
	for (unsigned d = 0; d < n; d++) {
		struct emu_opts o = { .size = size, .seed = 11 + d };
		if (emu_dev_create(&o, &dev[d]))
			return -BKFS_E_NOMEM;
		dev[d]->keep_open = true;
	}
	int ret = bkfs_format_devs(dev, n, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s\n", pb_str(&err));
	pb_exit(&err);
	return ret;
}

static int new_file(struct bkfs_fs *fs, size_t size, u64 seed)
{
	if (nfiles == MAXF)
		return -BKFS_E_NOSPC;
	unsigned i = nfiles;
	snprintf(files[i].name, sizeof(files[i].name), "f%03u", i);
	files[i].size = size;
	files[i].gone = false;
	files[i].data = malloc(size);
	fill(files[i].data, size, seed);
	int ret = bkfs_create(fs, R, files[i].name, S_IFREG | 0644, 0, 0, 0, NULL, &files[i].inum, NULL);
	if (ret) {
		free(files[i].data);
		return ret;
	}
	nfiles++;
	ssize_t n = bkfs_file_write(fs, files[i].inum, 0, files[i].data, size);
	if (n != (ssize_t)size) {
		bkfs_unlink(fs, R, files[i].name, false);
		files[i].gone = true;
		return n < 0 ? (int)n : -BKFS_E_NOSPC;
	}
	return 0;
}

/* files of 20..44 KiB until the free buckets are down to the reserve and a
 * few more; then every other file deleted */
static void fill_and_punch(struct bkfs_fs *fs, bool reflinks)
{
	struct alloc_space_info si;
	u64 seed = 1;
	/* stop a few buckets above the normal reserve, leaving room for the
	 * nodes the punch below rewrites: 4 buckets per copy of each node (with
	 * the default two copies it takes about 10 of a 12 MiB device's
	 * 64 KiB buckets; without that room copygc's own reserve is all that
	 * is left, and it has nowhere to move to) */
	u64 slack = 3 + 4 * fs->sb.metadata_replicas;
	for (;;) {
		alloc_space_info(fs, &si);
		if (si.free_buckets <= si.reserved[ALLOC_WM_normal] + slack)
			break;
		size_t size = (5 + seed * 7 % 7) * 4096;
		if (new_file(fs, size, seed++))
			break;
		/* every fourth file also as a reflinked copy */
		if (reflinks && nfiles % 4 == 0 && nfiles < MAXF) {
			unsigned s = nfiles - 1, c = nfiles;
			snprintf(files[c].name, sizeof(files[c].name), "f%03u", c);
			CHECK_EQ(bkfs_create(fs, R, files[c].name, S_IFREG | 0644, 0, 0, 0, NULL, &files[c].inum, NULL), 0);
			CHECK_EQ(bkfs_reflink(fs, files[s].inum, 0, files[c].inum, 0, ROUND_UP(files[s].size, 4096)), 0);
			files[c].size = files[s].size;
			CHECK_EQ(bkfs_file_truncate(fs, files[c].inum, files[c].size), 0);
			files[c].data = malloc(files[c].size);
			memcpy(files[c].data, files[s].data, files[c].size);
			files[c].gone = false;
			nfiles++;
		}
	}
	for (unsigned i = 0; i < nfiles; i += 2)
		if (!files[i].gone) {
			CHECK_EQ(bkfs_unlink(fs, R, files[i].name, false), 0);
			files[i].gone = true;
		}
	CHECK_EQ(btree_checkpoint(fs), 0);
	CHECK_EQ(journal_flush(fs), 0);
}

static unsigned check_files(struct bkfs_fs *fs, const char *when)
{
	unsigned bad = 0;
	static u8 buf[64 << 10];
	for (unsigned i = 0; i < nfiles; i++) {
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

static size_t checker_findings(const char *when)
{
	struct blockdev *bds[2] = { dev[0], dev[1] };
	struct fsck_opts o = { .mode = FSCK_MODE_NO };
	struct fsck_result r;
	fsck_test_run(bds, ndev, &o, &r, "after");
	size_t n = r.ret ? 999 : r.nr;
	if (r.ret || r.nr)
		fprintf(stderr, "%s: checker %s, %zu findings\n", when, bkfs_strerror(r.ret), r.nr);
	fsck_result_free(&r);
	return n;
}

/* copygc in steps of 4 buckets until a step finds nothing; a journal flush
 * after each (emptied buckets are reused once durable) */
static int copygc_all(struct bkfs_fs *fs, struct copygc_stats *tot, unsigned *steps)
{
	for (*steps = 0; *steps < 500; (*steps)++) {
		struct copygc_stats st = { 0 };
		int ret = bkfs_copygc(fs, 4, &st);
		if (ret)
			return ret;
		tot->buckets += st.buckets;
		tot->buckets_emptied += st.buckets_emptied;
		tot->keys_moved += st.keys_moved;
		tot->sectors_moved += st.sectors_moved;
		tot->keys_skipped += st.keys_skipped;
		tot->keys_split += st.keys_split;
		if ((ret = journal_flush(fs)))
			return ret;
		if (!st.buckets || !st.buckets_emptied)
			return 0;
	}
	return -BKFS_E_LOOP;
}

/* every extent's dirty copies are on distinct devices, replicas of them */
static void check_replicas(struct bkfs_fs *fs, unsigned want)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 keys = 0, bad = 0;
	for (unsigned id = BTREE_ID_extents; ; id = BTREE_ID_reflink) {
		unsigned type = id == BTREE_ID_extents ? KEY_TYPE_extent : KEY_TYPE_reflink_v;
		for_each_btree_key(it, fs, id, POS_MIN, k, ret) {
			struct bkfs_ptr *p;
			if (k->type != type)
				continue;
			unsigned nr = bkey_ptrs(k, &p), dirty = 0;
			u32 mask = 0;
			for (unsigned i = 0; i < nr; i++)
				if (!(p[i].flags & PTR_CACHED)) {
					dirty++;
					mask |= 1u << p[i].dev;
				}
			keys++;
			bad += dirty != want || (unsigned)__builtin_popcount(mask) != want;
		}
		CHECK_EQ(ret, 0);
		if (id == BTREE_ID_reflink)
			break;
	}
	CHECK(keys > 0);
	CHECK_EQ(bad, 0);
}

/* The mover packs what it moves: an extent that does not fit what is left
 * of its open bucket is split over that tail and a fresh bucket, so every
 * bucket it filled and left is full (it used to leave such tails unused,
 * and near full wrote buckets emptier than its victims). */
static void check_mover_packed(struct bkfs_fs *fs)
{
	const struct alloc_state *as = ALLOC(fs);
	u64 moved = 0, partial = 0, bs = bucket_sectors(fs);
	for (u64 b = 0; b < fs->sb.members[0].nbuckets; b++) {
		const struct bkfs_alloc *a = bucket_get(fs, 0, b);
		if (!(as->bflags[0][b] & BUCKET_MOVED) || a->data_type != DATA_user ||
		    (as->move_wp[0].open && as->move_wp[0].bucket == b))
			continue;
		moved++;
		partial += a->dirty_sectors != bs;
	}
	printf("mover: %llu buckets filled and left, %llu of them not full\n", (unsigned long long)moved,
	       (unsigned long long)partial);
	CHECK(moved >= 4);
	CHECK_EQ(partial, 0);
}

static void run_case(const char *name, unsigned n, unsigned replicas, bool reflinks)
{
	struct bkfs_fs *fs;
	CHECK_EQ(format(n, 12 << 20, replicas), 0);
	CHECK_EQ(open_devs(0, &fs), 0);
	fill_and_punch(fs, reflinks);
	struct alloc_space_info before, after;
	alloc_space_info(fs, &before);
	CHECK(copygc_wanted(fs));
	struct copygc_stats st = { 0 };
	unsigned steps;
	CHECK_EQ(copygc_all(fs, &st, &steps), 0);
	CHECK_EQ(btree_checkpoint(fs), 0);
	CHECK_EQ(journal_flush(fs), 0);
	alloc_space_info(fs, &after);
	printf("%s: %u files (%u live); %llu free buckets, %llu KiB fragmented -> after %u steps (%llu victims, "
	       "%llu emptied, %llu keys moved, %llu skipped): %llu free, %llu KiB fragmented\n",
	       name, nfiles, nfiles / 2, (unsigned long long)before.free_buckets,
	       (unsigned long long)before.fragmented_sectors / 2, steps, (unsigned long long)st.buckets,
	       (unsigned long long)st.buckets_emptied, (unsigned long long)st.keys_moved,
	       (unsigned long long)st.keys_skipped, (unsigned long long)after.free_buckets,
	       (unsigned long long)after.fragmented_sectors / 2);
	CHECK(after.free_buckets >= before.free_buckets + 8);
	CHECK(after.fragmented_sectors < before.fragmented_sectors / 2);
	CHECK_EQ(st.keys_skipped, 0);
	if (n == 1 && !reflinks) {
		printf("%s: %llu keys moved in pieces\n", name, (unsigned long long)st.keys_split);
		CHECK(st.keys_split > 0);
		check_mover_packed(fs);
	}
	CHECK_EQ(check_files(fs, name), 0);
	if (replicas > 1)
		check_replicas(fs, replicas);
	/* the space recovered takes new files */
	unsigned old = nfiles, added = 0;
	while (added < 64 && !new_file(fs, 32 << 10, 1000 + added))
		added++;
	CHECK(added >= 8);
	CHECK_EQ(check_files(fs, name), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	CHECK_EQ(checker_findings(name), 0);
	CHECK_EQ(open_devs(0, &fs), 0);
	CHECK_EQ(check_files(fs, name), 0);
	CHECK_EQ(bkfs_close(fs), 0);
	printf("%s: then %u new files of 32 KiB fit\n", name, nfiles - old);
	models_free();
	devs_free();
}

/* ---- power loss ---- */

static u8 *image;
/* keys the last uncut copygc run moved in pieces (the cuts fall inside them too) */
static u64 power_splits;

static void image_save(void)
{
	free(image);
	image = malloc(dev_size);
	memcpy(image, emu_dev_media(dev[0]), dev_size);
}

/* a run of copygc steps (what) on the device as the image has it, power cut
 * after write cut (0: none) with unflushed writes reordered */
static void power_run(bool gens, u64 cut, u64 seed, u64 *writes)
{
	struct bkfs_fs *fs;
	emu_dev_reset(dev[0], image, true, seed);
	dev[0]->nr_writes = 0;
	if (cut)
		emu_dev_set_cut(dev[0], cut);
	if (open_devs(0, &fs)) {
		CHECK(cut != 0);
		return;
	}
	u64 base = dev[0]->nr_writes;
	if (cut && base >= cut) {
		bkfs_close_nowrite(fs);
		return;
	}
	if (gens) {
		bkfs_gc_gens_fs(fs, NULL);
	} else {
		struct copygc_stats st = { 0 };
		unsigned steps;
		copygc_all(fs, &st, &steps);
		if (!cut)
			power_splits = st.keys_split;
	}
	/* the closing checkpoint is part of the run (cut or not) */
	if (fs->error)
		bkfs_close_nowrite(fs);
	else if (cut)
		bkfs_close(fs);
	else
		CHECK_EQ(bkfs_close(fs), 0);
	if (writes)
		*writes = dev[0]->nr_writes;
}

static unsigned power_cuts(bool gens, unsigned min_cuts, u64 seed0)
{
	u64 total = 0;
	power_run(gens, 0, seed0, &total);
	unsigned cuts = 0, bad = 0;
	for (u64 seed = seed0; cuts < min_cuts; seed++)
		for (u64 n = 1; n <= total && cuts < min_cuts; n++) {
			power_run(gens, n, seed * 1000 + n, NULL);
			emu_dev_power_cut(dev[0]);
			emu_dev_set_cut(dev[0], 0);
			struct bkfs_fs *fs;
			int ret = open_devs(0, &fs);
			unsigned b = ret ? 1 : check_files(fs, NULL);
			if (!ret)
				ret = bkfs_close(fs);
			size_t f = ret ? 999 : checker_findings("after a cut");
			if (b || f || ret) {
				if (bad++ < 5)
					fprintf(stderr, "%s: cut after write %llu of %llu (seed %llu): %s, %u files bad, %zu findings\n",
						gens ? "gc_gens" : "copygc", (unsigned long long)n, (unsigned long long)total,
						(unsigned long long)seed, bkfs_strerror(ret), b, f);
			}
			cuts++;
		}
	printf("power cuts during %s: %llu writes a run, %u cuts, %u bad\n", gens ? "gen GC" : "copygc",
	       (unsigned long long)total, cuts, bad);
	CHECK(total > 0);
	CHECK_EQ(bad, 0);
	return cuts;
}

static void case_power_loss(void)
{
	struct bkfs_fs *fs;
	CHECK_EQ(format(1, 12 << 20, 1), 0);
	CHECK_EQ(open_devs(0, &fs), 0);
	fill_and_punch(fs, true);
	CHECK_EQ(bkfs_close(fs), 0);
	image_save();
	unsigned cuts = power_cuts(false, 1200, 1);
	printf("power cuts during copygc: the run moves %llu keys in pieces\n", (unsigned long long)power_splits);
	CHECK(power_splits > 0);
	/* gen GC with work to do: copygc ran and buckets were reused (gens
	 * ahead of oldest_gen) */
	CHECK_EQ(open_devs(0, &fs), 0);
	struct copygc_stats st = { 0 };
	unsigned steps;
	CHECK_EQ(copygc_all(fs, &st, &steps), 0);
	unsigned added = 0;
	while (added < 24 && !new_file(fs, 32 << 10, 5000 + added))
		added++;
	CHECK_EQ(bkfs_close(fs), 0);
	image_save();
	cuts += power_cuts(true, 800, 7);
	CHECK(cuts >= 2000);
	models_free();
	devs_free();
	free(image);
}

int main(void)
{
	run_case("one device", 1, 1, false);
	run_case("reflinks", 1, 1, true);
	run_case("two devices, replicas 2", 2, 2, false);
	case_power_loss();
	TEST_MAIN_END();
}
