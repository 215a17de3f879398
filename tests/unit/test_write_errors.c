/* test_write_errors.c - a device that starts failing writes (the emulated
 * device's emu_dev_fail_writes: every write and flush fails with EIO, what
 * was not flushed is lost).
 *
 * The device counts the failed writes; bkfs_write_failed() then stops the
 * filesystem (fs->error: no commit, no checkpoint, a close that writes
 * nothing and fails) and says which device failed. What was synced before
 * the failure is intact after the device heals and the filesystem is
 * reopened, nothing acknowledged after it exists, and the image checks
 * clean. The same at every point of a short workload: the failure armed
 * after each number of device writes. */
#include "test.h"
#include "fs/posix_ext.h"
#include "fsck/fsck.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEV_SIZE (64ull << 20)
#define NFILES 6

static u8 pattern[32768];

static struct bkfs_fs *open_fs(struct blockdev *bd)
{
	struct bkfs_fs *fs = NULL;
	struct printbuf err = PRINTBUF;
	struct blockdev *bds[1] = { bd };
	int ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	if (ret)
		fprintf(stderr, "open: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	CHECK_EQ(ret, 0);
	pb_exit(&err);
	return fs;
}

static void fill(u8 *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (u8)(seed * 31 + i * 7 + (i >> 9));
}

/* file i of the workload: created, written (i + 1) * 3000 bytes, synced */
static int add_file(struct bkfs_fs *fs, unsigned i)
{
	char name[16];
	u64 inum;
	snprintf(name, sizeof(name), "f%u", i);
	int ret = bkfs_create(fs, BKFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, NULL, &inum, NULL);
	if (ret)
		return ret;
	fill(pattern, sizeof(pattern), i);
	ssize_t n = bkfs_file_write(fs, inum, 0, pattern, (i + 1) * 3000);
	if (n < 0)
		return (int)n;
	return bkfs_sync(fs);
}

/* files 0..synced-1 intact; none at all of index >= upto */
static void check_files(struct bkfs_fs *fs, unsigned synced, unsigned upto)
{
	static u8 got[32768];
	for (unsigned i = 0; i < NFILES; i++) {
		char name[16];
		u64 inum;
		struct bkfs_inode in;
		snprintf(name, sizeof(name), "f%u", i);
		int ret = bkfs_lookup(fs, BKFS_ROOT_INO, name, &inum, &in);
		if (i >= upto) {
			CHECK_EQ(ret, -BKFS_E_NOENT);
			continue;
		}
		if (i >= synced)
			continue; /* written around the failure: either way */
		CHECK_EQ(ret, 0);
		if (ret)
			continue;
		CHECK_EQ(in.size, (i + 1) * 3000);
		fill(pattern, sizeof(pattern), i);
		CHECK_EQ(bkfs_file_read(fs, inum, 0, got, in.size), (ssize_t)in.size);
		if (memcmp(got, pattern, in.size))
			fprintf(stderr, "file %u (of %u synced) differs\n", i, synced);
		CHECK(!memcmp(got, pattern, in.size));
	}
}

static void fsck_clean(struct blockdev *bd)
{
	char path[] = "/tmp/bkfs_werr_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(emu_dev_save(bd, path), 0);
	char *paths[1] = { path };
	struct fsck_opts o = { .mode = FSCK_MODE_NO };
	CHECK_EQ(bkfs_fsck(paths, 1, &o), 0);
	unlink(path);
}

/* Arm the failure after `after` writes of the workload; returns false once
 * the workload ran to its end without reaching it. */
static bool run_once(const u8 *media, u64 after, bool verbose)
{
	struct emu_opts eo = { .size = DEV_SIZE, .seed = 5 };
	struct blockdev *bd;
	CHECK_EQ(emu_dev_create(&eo, &bd), 0);
	bd->keep_open = true;
	emu_dev_reset(bd, media, false, 5);
	struct bkfs_fs *fs = open_fs(bd);
	if (!fs)
		return false;
	emu_dev_fail_writes(bd, after);
	unsigned synced = 0, upto = NFILES;
	int ret = 0;
	for (unsigned i = 0; i < NFILES; i++) {
		if ((ret = add_file(fs, i)))
			break;
		synced = i + 1;
		if (bkfs_write_failed(fs))
			break; /* the failure came after the sync (a checkpoint, say) */
	}
	bool hit = bd->nr_write_errors > 0;
	if (hit) {
		CHECK(bkfs_write_failed(fs));
		struct printbuf why = PRINTBUF;
		bkfs_write_failed_to_text(&why, fs);
		CHECK(strstr(pb_str(&why), "failed write") != NULL);
		if (verbose)
			printf("failure after %llu writes: %u files synced (%s)\n", (unsigned long long)after, synced,
			       pb_str(&why));
		pb_exit(&why);
		/* nothing more is accepted */
		CHECK_EQ(bkfs_create(fs, BKFS_ROOT_INO, "late", S_IFREG | 0644, 0, 0, 0, NULL, NULL, NULL), -BKFS_E_IO);
		upto = synced + 1;
		CHECK(bkfs_close(fs) != 0);
	} else {
		CHECK_EQ(ret, 0);
		ret = bkfs_close(fs);
		hit = bd->nr_write_errors > 0; /* the failure came in the close's checkpoint */
		CHECK(ret == 0 || hit); /* a superblock copy may fail alone */
		upto = NFILES;
	}
	emu_dev_clear_faults(bd);
	fs = open_fs(bd);
	if (fs) {
		check_files(fs, synced, upto);
		CHECK_EQ(bkfs_lookup(fs, BKFS_ROOT_INO, "late", NULL, NULL), -BKFS_E_NOENT);
		CHECK_EQ(bkfs_close(fs), 0);
	}
	fsck_clean(bd);
	bd->keep_open = false;
	bd_close(bd);
	return hit;
}

int main(void)
{
	struct emu_opts eo = { .size = DEV_SIZE, .seed = 5 };
	struct blockdev *bd;
	struct printbuf err = PRINTBUF;
	CHECK_EQ(emu_dev_create(&eo, &bd), 0);
	bd->keep_open = true;
	struct format_opts fo = { 0 };
	CHECK_EQ(bkfs_format_devs(&bd, 1, &fo, &err), 0);
	pb_exit(&err);
	u8 *media = malloc(DEV_SIZE);
	CHECK(media != NULL);
	memcpy(media, emu_dev_media(bd), DEV_SIZE);
	bd->keep_open = false;
	bd_close(bd);

	/* the failure from the first write, then after every few writes until
	 * the workload no longer reaches it */
	unsigned hits = 0;
	for (u64 after = 0; after < 400; after += after < 16 ? 1 : 7) {
		if (getenv("WERR_VERBOSE"))
			fprintf(stderr, "after %llu\n", (unsigned long long)after);
		if (!run_once(media, after, after == 0 || after == 9))
			break;
		hits++;
	}
	CHECK(hits >= 10);
	printf("%u failure points\n", hits);
	free(media);
	TEST_MAIN_END();
}
