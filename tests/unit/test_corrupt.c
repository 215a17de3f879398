/* test_corrupt.c - the corruption engine (src/debug) through its library
 * API, in process.
 *
 * The kind table: every kind has a unique name found by corrupt_kind_find,
 * an expected finding that is in the checker's table, known requirement
 * flags, a description and a function.
 *
 * Every kind that needs nothing special (needs "-" in --list: not stripes,
 * not a three-level btree) damages a fresh copy of a small emulated image
 * (one device, 4 KiB btree nodes, 16 directories of files small and big)
 * with seed 1; then the whole of bkfs fsck runs on it: -n exits 4 and its
 * --json report names the kind's finding, -y exits 1, a second -n exits 0.
 * Every one of them must find a target here. The kinds that need stripes
 * or a three-level btree are left to corrupt.sh. */
#include "test.h"
#include "debug/corrupt.h"
#include "fs/fs.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEV_SIZE (64ull << 20)

static struct blockdev *dev;
static u8 *pristine;

static void check_table(void)
{
	for (size_t i = 0; i < CORRUPT_NR; i++) {
		const struct corrupt_kind *k = &corrupt_kinds[i];
		CHECK(k->name && *k->name);
		CHECK(corrupt_kind_find(k->name) == k); /* unique: the first of that name is this one */
		CHECK((unsigned)k->expect < FSCK_ERR_NR);
		CHECK(fsck_err_table[k->expect].name != NULL);
		CHECK_EQ(k->needs & ~((1u << CORRUPT_NEED_NR) - 1), 0);
		CHECK(k->desc && *k->desc);
		CHECK(k->fn != NULL);
	}
	CHECK(corrupt_kind_find("no_such_kind") == NULL);
	struct printbuf pb = PRINTBUF;
	corrupt_needs_to_text(&pb, 0);
	CHECK(!strcmp(pb_str(&pb), "-"));
	pb_exit(&pb);
	corrupt_needs_to_text(&pb, NEEDS_STRIPES | NEEDS_3_LEVEL);
	CHECK(!strcmp(pb_str(&pb), "stripes,three_level"));
	pb_exit(&pb);
}

static int add_file(struct bkfs_fs *fs, u64 dir, const char *name, size_t len, unsigned seed, u64 *inum_out)
{
	u64 inum;
	int ret = bkfs_create(fs, dir, name, S_IFREG | 0644, 0, 0, 0, NULL, &inum, NULL);
	if (inum_out)
		*inum_out = inum;
	if (ret || !len)
		return ret;
	u8 *p = malloc(len);
	u64 s = seed;
	for (size_t i = 0; i < len; i++)
		p[i] = (u8)rng_next(&s);
	ssize_t n = bkfs_file_write(fs, inum, 0, p, len);
	free(p);
	return n == (ssize_t)len ? 0 : -BKFS_E_IO;
}

/* 16 directories with a subdirectory each, files big and small (every
 * tenth small one with a second link in the next directory), enough entries
 * for btrees of several levels with 4 KiB nodes */
static int populate(struct bkfs_fs *fs)
{
	int ret = 0;
	u64 prev = BKFS_ROOT_INO;
	for (int d = 0; d < 16 && !ret; d++) {
		char name[32];
		u64 dir, sub;
		snprintf(name, sizeof(name), "d%02d", d);
		if ((ret = bkfs_create(fs, BKFS_ROOT_INO, name, S_IFDIR | 0755, 0, 0, 0, NULL, &dir, NULL)) ||
		    (ret = bkfs_create(fs, dir, "sub", S_IFDIR | 0755, 0, 0, 0, NULL, &sub, NULL)))
			break;
		for (int f = 0; f < 40 && !ret; f++) {
			u64 inum;
			snprintf(name, sizeof(name), "f%03d", f);
			size_t len = f % 10 == 0 ? 100000 + 1000 * d : f % 3 ? 20000 : 0;
			ret = add_file(fs, f % 2 ? dir : sub, name, len, 100 * d + f, &inum);
			if (!ret && d && f % 10 == 5) {
				snprintf(name, sizeof(name), "link-d%02d-f%03d", d, f);
				ret = bkfs_link(fs, inum, prev, name);
			}
		}
		prev = dir;
	}
	return ret;
}

static int build(void)
{
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .force = true, .bucket_size = 128 << 10, .btree_node_size = 4 << 10 };
	struct bkfs_fs *fs;
	int ret = bkfs_format_devs(&dev, 1, &fo, &err);
	if (!ret)
		ret = bkfs_open_devs(&(struct blockdev *){ dev }, 1, 0, &fs, &err);
	if (ret) {
		fprintf(stderr, "format/open: %s %s\n", bkfs_strerror(ret), pb_str(&err));
		pb_exit(&err);
		return ret;
	}
	pb_exit(&err);
	if ((ret = populate(fs))) {
		bkfs_close_nowrite(fs);
		return ret;
	}
	return bkfs_close(fs);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0)
		if ((n += r) + 1 == cap)
			buf = realloc(buf, cap *= 2);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* bkfs fsck on path (its report to /dev/null); the exit status */
static int run_fsck(const char *path, enum fsck_mode mode, const char *json)
{
	char *paths[1] = { (char *)path };
	struct fsck_opts fo = { .mode = mode, .json_path = json };
	fflush(stdout);
	int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
	dup2(null, STDOUT_FILENO);
	int status = bkfs_fsck(paths, 1, &fo);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	close(null);
	return status;
}

/* 1 if the kind damaged the image and fsck named it, 0 if no target */
static int check_kind(const struct corrupt_kind *k, const char *img)
{
	char jn[600], jy[600];
	snprintf(jn, sizeof(jn), "%s.n.json", img);
	snprintf(jy, sizeof(jy), "%s.y.json", img);
	emu_dev_reset(dev, pristine, false, 1);
	struct corrupt_report r = { 0 };
	int ret = bkfs_corrupt(&dev, 1, k, &(struct corrupt_opts){ .seed = 1 }, &r);
	CHECK(!dev->keep_open); /* given back as it was */
	if (ret == CORRUPT_NO_TARGET) {
		fprintf(stderr, "  %s: no target: %s", k->name, pb_str(&r.msgs));
		CHECK(r.msgs.len > 0);
		corrupt_report_exit(&r);
		return 0;
	}
	if (ret)
		fprintf(stderr, "FAIL %s: %s\n%s", k->name, bkfs_strerror(ret), pb_str(&r.msgs));
	CHECK_EQ(ret, 0);
	CHECK(r.damaged.len > 0);
	corrupt_report_exit(&r);
	if (ret)
		return 0;
	CHECK_EQ(emu_dev_save(dev, img), 0);
	int sn = run_fsck(img, FSCK_MODE_NO, jn);
	char *json = read_all(jn), want[200];
	snprintf(want, sizeof(want), "\"name\": \"%s\", \"number\"", fsck_err_table[k->expect].name);
	bool named = json && strstr(json, want);
	if (sn != 4 || !named)
		fprintf(stderr, "FAIL %s: fsck -n exits %d, %s %s\n", k->name, sn, named ? "names" : "does not name",
			fsck_err_table[k->expect].name);
	CHECK_EQ(sn, 4);
	CHECK(named);
	free(json);
	int sy = run_fsck(img, FSCK_MODE_YES, jy);
	int sn2 = run_fsck(img, FSCK_MODE_NO, NULL);
	if (sy != 1 || sn2 != 0)
		fprintf(stderr, "FAIL %s: fsck -y exits %d (want 1), then -n %d (want 0)\n", k->name, sy, sn2);
	CHECK_EQ(sy, 1);
	CHECK_EQ(sn2, 0);
	unlink(jn);
	unlink(jy);
	return 1;
}

int main(void)
{
	check_table();

	struct emu_opts o = { .size = DEV_SIZE, .seed = 1 };
	CHECK_EQ(emu_dev_create(&o, &dev), 0);
	dev->keep_open = true;
	CHECK_EQ(build(), 0);
	dev->keep_open = false;
	pristine = malloc(DEV_SIZE);
	memcpy(pristine, emu_dev_media(dev), DEV_SIZE);

	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char img[512];
	snprintf(img, sizeof(img), "%s/test_corrupt.%d.img", tmp, (int)getpid());
	CHECK_EQ(emu_dev_save(dev, img), 0);
	CHECK_EQ(run_fsck(img, FSCK_MODE_NO, NULL), 0); /* the image starts clean */

	unsigned ran = 0, hit = 0, missed = 0;
	for (size_t i = 0; i < CORRUPT_NR; i++) {
		const struct corrupt_kind *k = &corrupt_kinds[i];
		if (k->needs)
			continue;
		ran++;
		if (check_kind(k, img))
			hit++;
		else
			missed++;
	}
	printf("%u kinds run in process: %u damaged and named by fsck, %u without a target\n", ran, hit, missed);
	CHECK_EQ(missed, 0);
	CHECK(ran >= 50); /* the kinds without needs are most of the table */
	unlink(img);
	free(pristine);
	bd_close(dev);
	TEST_MAIN_END();
}
