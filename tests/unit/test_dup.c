/* test_dup.c - two copies of every btree node, the default (DUP on one
 * device), on image files checked by the real bkfs_fsck():
 *   - placement: every node of a one-device filesystem has two copies on
 *     device 0 in different buckets, copy 0 in the low half of the device and
 *     copy 1 in the high half; on two and three devices the copies are on
 *     distinct devices; --metadata-replicas 1 gives one copy; three copies on
 *     one device are refused;
 *   - accounting: the btree replicas entry of device set {0} counts both
 *     copies (the btree counters' sum), and the checker agrees;
 *   - a damaged copy 0: fsck -n reports btree_node_copy_bad (exit 4), fsck -y
 *     rewrites it (exit 1, copy 0 is byte-identical to copy 1 again), fsck -n
 *     and fsck -n --all-copies are clean;
 *   - then a damaged copy 1: the default check does not read it, --all-copies
 *     reports it, every key is still readable (nothing lost), -y repairs;
 *   - a writable open (the mount's path) rewrites a bad copy it reads. */
#include "fsck_test.h"
#include "alloc/alloc.h"
#include "fs/fs.h"
#include "btree/iter.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#define NR_FILES 3000
#define IMG_SIZE (64ull << 20)

static char dir[256], img[3][300];

static int make_files(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		snprintf(img[i], sizeof(img[i]), "%s/img%u", dir, i);
		int fd = open(img[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, IMG_SIZE)) {
			if (fd >= 0)
				close(fd);
			return -BKFS_E_IO;
		}
		close(fd);
	}
	return 0;
}

static char *paths[3] = { img[0], img[1], img[2] };

static int format_fill(unsigned n, unsigned metadata_replicas)
{
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .btree_node_size = 4096, .metadata_replicas = metadata_replicas };
	struct bkfs_fs *fs;
	int ret = make_files(n);
	if (!ret && (ret = bkfs_format(paths, n, &fo, &err)))
		fprintf(stderr, "format: %s\n", pb_str(&err));
	if (!ret && !(ret = bkfs_open(paths, n, BKFS_OPEN_NOJOURNAL, &fs, &err))) {
		for (unsigned i = 0; i < NR_FILES && !ret; i++) {
			char name[16];
			snprintf(name, sizeof(name), "f%05u", i);
			ret = bkfs_create(fs, BKFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, NULL, NULL, NULL);
		}
		ret = ret ? (bkfs_close_nowrite(fs), ret) : bkfs_close(fs);
	}
	pb_exit(&err);
	return ret;
}

static int open_ro(unsigned n, struct bkfs_fs **fs)
{
	struct printbuf err = PRINTBUF;
	int ret = bkfs_open(paths, n, BKFS_OPEN_RDONLY, fs, &err);
	if (ret)
		fprintf(stderr, "open: %s\n", pb_str(&err));
	pb_exit(&err);
	return ret;
}

/* ---- placement and accounting ---- */

struct placement {
	u64 nodes, two_copies, distinct_devs, same_dev_apart, low_high;
	u64 leaf_max_key; /* an inodes leaf (not the root) */
	struct bkfs_btree_ptr leaf;
};

static int visit(struct bkfs_fs *fs, unsigned id, const struct bkey *k, struct placement *pl)
{
	const struct bkfs_btree_ptr *p = bkey_val(k);
	u64 half = fs->sb.members[0].nbuckets * fs->sb.bucket_size / 2;
	pl->nodes++;
	if (p->nr_ptrs == 2) {
		pl->two_copies++;
		if (p->ptrs[0].dev != p->ptrs[1].dev)
			pl->distinct_devs++;
		else if (p->ptrs[0].offset / fs->sb.bucket_size != p->ptrs[1].offset / fs->sb.bucket_size)
			pl->same_dev_apart++;
		pl->low_high += p->ptrs[0].offset < half && p->ptrs[1].offset >= half;
	}
	if (id == BTREE_ID_inodes && !p->level && !pl->leaf.nr_ptrs) {
		pl->leaf = *p;
		pl->leaf_max_key = k->p.offset;
	}
	return 0;
}

/* every pointer in the interior nodes of every btree, and the roots */
static int walk_ptrs(struct bkfs_fs *fs, struct placement *pl)
{
	int ret = 0;
	memset(pl, 0, sizeof(*pl));
	for (unsigned id = 0; id < BTREE_ID_NR && !ret; id++) {
		struct bkey_buf rk;
		bkey_init(&rk.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(struct bkfs_btree_ptr));
		memcpy(bkey_val(&rk.k), &fs->roots[id].ptr, sizeof(struct bkfs_btree_ptr));
		visit(fs, id, &rk.k, pl);
		for (unsigned level = 1; level <= fs->roots[id].ptr.level && !ret; level++) {
			struct btree_iter it;
			struct bkey *k;
			for (btree_iter_init(&it, fs, id, level, POS_MIN); !(ret = btree_iter_peek(&it, &k)) && k;
			     btree_iter_advance(&it))
				visit(fs, id, k, pl);
		}
	}
	return ret;
}

static s64 acct_get(struct bkfs_fs *fs, struct bpos pos)
{
	struct alloc_state *as = ALLOC(fs);
	for (size_t i = 0; i < as->nr_acct; i++)
		if (bpos_eq(as->acct[i].pos, pos))
			return as->acct[i].v[0];
	return 0;
}

static void check_placement(unsigned n, unsigned mr, struct placement *pl)
{
	struct bkfs_fs *fs;
	CHECK_EQ(format_fill(n, mr), 0);
	CHECK_EQ(open_ro(n, &fs), 0);
	CHECK_EQ(fs->sb.metadata_replicas, mr ? mr : 2);
	CHECK_EQ(walk_ptrs(fs, pl), 0);
	CHECK(pl->nodes > 20);
	s64 btree = 0;
	for (unsigned id = 0; id < BTREE_ID_NR; id++)
		btree += acct_get(fs, acct_pos_btree(id));
	CHECK(btree > 0);
	CHECK_EQ(btree, (s64)(fs->sb.btree_node_size * pl->nodes * (mr ? mr : 2)));
	if (n == 1) /* both copies in the replicas entry of device set {0} */
		CHECK_EQ(acct_get(fs, acct_pos_replicas(DATA_btree, 1, 1)), btree);
	bkfs_close_nowrite(fs);
	struct fsck_opts o = { .mode = FSCK_MODE_NO, .all_copies = true };
	CHECK_EQ(bkfs_fsck(paths, n, &o), 0);
}

static void case_placement(void)
{
	struct placement pl;
	check_placement(1, 0, &pl);
	CHECK_EQ(pl.two_copies, pl.nodes);
	CHECK_EQ(pl.same_dev_apart, pl.nodes);
	CHECK_EQ(pl.low_high, pl.nodes);
	check_placement(2, 0, &pl);
	CHECK_EQ(pl.distinct_devs, pl.nodes);
	check_placement(3, 0, &pl);
	CHECK_EQ(pl.distinct_devs, pl.nodes);
	check_placement(1, 1, &pl);
	CHECK_EQ(pl.two_copies, 0);
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .metadata_replicas = 3 };
	CHECK_EQ(bkfs_format(paths, 1, &fo, &err), -BKFS_E_INVAL);
	CHECK(strstr(pb_str(&err), "metadata replicas 3") != NULL);
	pb_exit(&err);
}

/* ---- damage and repair ---- */

static int media_rw(const struct bkfs_ptr *p, u64 at, void *buf, size_t len, bool write)
{
	int fd = open(img[p->dev], O_RDWR);
	if (fd < 0)
		return -1;
	off_t off = (off_t)(p->offset << SECTOR_SHIFT) + at;
	ssize_t r = write ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
	close(fd);
	return r == (ssize_t)len ? 0 : -1;
}

static void damage_copy(const struct bkfs_ptr *p)
{
	u8 b[64];
	CHECK_EQ(media_rw(p, 200, b, sizeof(b), false), 0);
	for (unsigned i = 0; i < sizeof(b); i++)
		b[i] ^= 0x5a;
	CHECK_EQ(media_rw(p, 200, b, sizeof(b), true), 0);
}

static bool copies_equal(const struct bkfs_btree_ptr *p)
{
	static u8 a[4096], b[4096];
	return !media_rw(&p->ptrs[0], 0, a, sizeof(a), false) && !media_rw(&p->ptrs[1], 0, b, sizeof(b), false) &&
	       !memcmp(a, b, sizeof(a));
}

/* fsck with mode; *named: its JSON report names btree_node_copy_bad */
static int run_fsck(enum fsck_mode mode, bool all_copies, bool *named)
{
	char json[320];
	snprintf(json, sizeof(json), "%s/report.json", dir);
	struct fsck_opts o = { .mode = mode, .all_copies = all_copies, .json_path = json };
	int status = bkfs_fsck(paths, 1, &o);
	static char buf[1 << 16];
	FILE *f = fopen(json, "r");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = 0;
	*named = strstr(buf, "\"btree_node_copy_bad\"") != NULL;
	return status;
}

static u64 count_inodes(void)
{
	struct bkfs_fs *fs;
	struct btree_iter it;
	struct bkey *k;
	u64 n = 0;
	int ret;
	if (open_ro(1, &fs))
		return 0;
	for_each_btree_key(it, fs, BTREE_ID_inodes, POS_MIN, k, ret)
		n += k->type == KEY_TYPE_inode;
	bkfs_close_nowrite(fs);
	return ret ? 0 : n;
}

static void case_repair(void)
{
	struct placement pl;
	struct bkfs_fs *fs;
	bool named;
	CHECK_EQ(format_fill(1, 0), 0);
	CHECK_EQ(open_ro(1, &fs), 0);
	CHECK_EQ(walk_ptrs(fs, &pl), 0);
	bkfs_close_nowrite(fs);
	CHECK_EQ(pl.leaf.nr_ptrs, 2);
	if (pl.leaf.nr_ptrs != 2)
		return;
	CHECK(copies_equal(&pl.leaf));

	damage_copy(&pl.leaf.ptrs[0]);
	CHECK(!copies_equal(&pl.leaf));
	CHECK_EQ(run_fsck(FSCK_MODE_NO, false, &named), 4);
	CHECK(named);
	CHECK_EQ(run_fsck(FSCK_MODE_YES, false, &named), 1);
	CHECK(named);
	CHECK(copies_equal(&pl.leaf));
	CHECK_EQ(run_fsck(FSCK_MODE_NO, false, &named), 0);
	CHECK_EQ(run_fsck(FSCK_MODE_NO, true, &named), 0);
	CHECK(!named);

	/* the other copy: nothing is lost, --all-copies finds it */
	damage_copy(&pl.leaf.ptrs[1]);
	CHECK_EQ(count_inodes(), NR_FILES + 1);
	CHECK_EQ(run_fsck(FSCK_MODE_NO, false, &named), 0); /* one good copy read per node */
	CHECK_EQ(run_fsck(FSCK_MODE_NO, true, &named), 4);
	CHECK(named);
	CHECK_EQ(run_fsck(FSCK_MODE_YES, true, &named), 1);
	CHECK(copies_equal(&pl.leaf));
	CHECK_EQ(run_fsck(FSCK_MODE_NO, true, &named), 0);
	CHECK_EQ(count_inodes(), NR_FILES + 1);

	/* a writable open rewrites the bad copy it reads */
	damage_copy(&pl.leaf.ptrs[0]);
	struct printbuf err = PRINTBUF;
	CHECK_EQ(bkfs_open(paths, 1, 0, &fs, &err), 0);
	pb_exit(&err);
	if (fs) {
		struct bkey_buf kb;
		CHECK_EQ(btree_lookup(fs, BTREE_ID_inodes, POS(0, pl.leaf_max_key), &kb), 0);
		CHECK_EQ(fs->node_copies_bad, 1);
		CHECK_EQ(fs->node_copies_rewritten, 1);
		CHECK_EQ(bkfs_close(fs), 0);
	}
	CHECK(copies_equal(&pl.leaf));
	CHECK_EQ(run_fsck(FSCK_MODE_NO, true, &named), 0);
}

int main(void)
{
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/test_dup.XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	case_placement();
	case_repair();
	for (unsigned i = 0; i < 3; i++)
		unlink(img[i]);
	char json[320];
	snprintf(json, sizeof(json), "%s/report.json", dir);
	unlink(json);
	rmdir(dir);
	TEST_MAIN_END();
}
