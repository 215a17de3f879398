/* test_io.c - block I/O layer: file backend and emulated device. */
#include "io/blockdev.h"
#include "test.h"
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#define EMU_SIZE (1u << 20)

static void fill(u8 *b, size_t n, u8 seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (u8)(seed + i * 7);
}

static struct blockdev *mk_emu(u64 cut, bool reorder, u64 seed)
{
	struct emu_opts o = { .size = EMU_SIZE, .cut_after_writes = cut, .reorder = reorder, .seed = seed };
	struct blockdev *bd = NULL;
	REQUIRE_EQ(emu_dev_create(&o, &bd), 0);
	return bd;
}

static void test_file_dev(void)
{
	char path[] = "/tmp/bkfs_test_io_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	close(fd);

	struct blockdev *bd = NULL;
	REQUIRE_EQ(file_dev_open(path, 0, &bd), 0);
	if (!bd)
		goto out;
	CHECK_EQ(bd->size, 1 << 20);
	CHECK(bd->path && !strcmp(bd->path, path));

	u8 w[8192], r[8192];
	fill(w, sizeof(w), 3);
	CHECK_EQ(bd_write(bd, w, 4096, sizeof(w)), 0);
	CHECK_EQ(bd_write(bd, w, 12345, 100), 0); /* unaligned */
	CHECK_EQ(bd_flush(bd), 0);
	memset(r, 0, sizeof(r));
	CHECK_EQ(bd_read(bd, r, 4096, sizeof(r)), 0);
	CHECK(!memcmp(r, w, sizeof(w)));
	CHECK_EQ(bd_read(bd, r, 12345, 100), 0);
	CHECK(!memcmp(r, w, 100));
	CHECK_EQ(bd->nr_writes, 2);
	CHECK_EQ(bd->nr_flushes, 1);

	/* past the end: range check in bd_read, IO from the backend itself */
	CHECK_EQ(bd_read(bd, r, (1 << 20) - 10, 20), -BKFS_E_RANGE);
	CHECK_EQ(bd->read(bd, r, (1 << 20) - 10, 20), -BKFS_E_IO);
	CHECK_EQ(bd_write(bd, w, 1 << 20, 1), -BKFS_E_RANGE);

	/* discard: punched range reads as zero on filesystems that support it,
	 * and must never fail on those that do not */
	CHECK_EQ(bd->discard(bd, 4096, 4096), 0);
	CHECK_EQ(bd->discard(bd, 1 << 20, 1), -BKFS_E_RANGE);
	CHECK_EQ(bd_read(bd, r, 8192, 4096), 0);
	CHECK(!memcmp(r, w + 4096, 4096));
	bd_close(bd);

	/* read-only reopen: data persisted, writes fail with an error */
	REQUIRE_EQ(file_dev_open(path, BD_RDONLY, &bd), 0);
	if (bd) {
		CHECK_EQ(bd_read(bd, r, 8192, 4096), 0);
		CHECK(!memcmp(r, w + 4096, 4096));
		CHECK_EQ(bd_write(bd, w, 0, 16), -BKFS_E_IO);
		bd_close(bd);
	}

	/* O_DIRECT requested; unaligned buffers must still work via fallback */
	REQUIRE_EQ(file_dev_open(path, BD_DIRECT, &bd), 0);
	if (bd) {
		CHECK_EQ(bd_read(bd, r + 1, 12345, 100), 0);
		CHECK(!memcmp(r + 1, w, 100));
		CHECK_EQ(bd_write(bd, w + 3, 777, 50), 0);
		CHECK_EQ(bd_read(bd, r, 777, 50), 0);
		CHECK(!memcmp(r, w + 3, 50));
		bd_close(bd);
	}
out:
	unlink(path);

	bd = (struct blockdev *)1;
	CHECK_EQ(file_dev_open("/nonexistent/bkfs/dev", 0, &bd), -BKFS_E_NOENT);
	CHECK(bd == NULL);
	CHECK(file_dev_open("/tmp", 0, &bd) < 0); /* directory */
	bd_close(NULL);
}

/* What another process sees: a fresh open file description of path (a
 * flock on it conflicts with this process's locks as another process's
 * would). Returns whether flock(how | LOCK_NB) succeeded; the probe lock
 * goes with the descriptor. */
static bool probe_flock(const char *path, int how)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (fd < 0)
		return false;
	bool ok = !flock(fd, how | LOCK_NB);
	close(fd);
	return ok;
}

/* A lock held by "another process": a flock on a descriptor of our own
 * that the io layer knows nothing about. */
static int foreign_lock(const char *path, int how)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(flock(fd, how | LOCK_NB), 0);
	return fd;
}

static void test_dev_lock(void)
{
	char path[] = "/tmp/bkfs_test_lock_XXXXXX", link[64];
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_EQ(ftruncate(fd, 1 << 20), 0);
	close(fd);
	snprintf(link, sizeof(link), "%s.link", path);
	CHECK_EQ(symlink(path, link), 0);
	struct blockdev *a = NULL, *b = NULL, *c = NULL;
	struct bd_lock *l = NULL;

	/* a writer excludes everyone else, readers included, until closed */
	CHECK_EQ(file_dev_open(path, 0, &a), 0);
	CHECK(!probe_flock(path, LOCK_SH));
	/* the same process opens it again, by another name too, and reads it:
	 * one lock, no self-conflict */
	CHECK_EQ(file_dev_open(link, 0, &b), 0);
	CHECK_EQ(file_dev_open(path, BD_RDONLY, &c), 0);
	bd_close(a);
	bd_close(c);
	CHECK(!probe_flock(path, LOCK_SH)); /* b still holds it */
	bd_close(b);
	CHECK(probe_flock(path, LOCK_EX));

	/* readers share; a reader makes a writer wait, even in this process
	 * (no shared-to-exclusive upgrade) */
	CHECK_EQ(file_dev_open(path, BD_RDONLY, &a), 0);
	CHECK(probe_flock(path, LOCK_SH));
	CHECK(!probe_flock(path, LOCK_EX));
	b = (struct blockdev *)1;
	CHECK_EQ(file_dev_open(path, 0, &b), -BKFS_E_BUSY);
	CHECK(b == NULL);
	CHECK_EQ(bd_lock_get(path, true, &l), -BKFS_E_BUSY);
	CHECK(l == NULL);
	bd_close(a);
	CHECK(probe_flock(path, LOCK_EX)); /* the refused opens left nothing held */

	/* another process's exclusive lock refuses readers and writers */
	fd = foreign_lock(path, LOCK_EX);
	CHECK_EQ(file_dev_open(path, 0, &a), -BKFS_E_BUSY);
	CHECK_EQ(file_dev_open(path, BD_RDONLY, &a), -BKFS_E_BUSY);
	CHECK_EQ(bd_lock_get(path, false, &l), -BKFS_E_BUSY);
	close(fd);
	/* its shared lock refuses only writers */
	fd = foreign_lock(path, LOCK_SH);
	CHECK_EQ(file_dev_open(path, 0, &a), -BKFS_E_BUSY);
	CHECK_EQ(file_dev_open(path, BD_RDONLY, &a), 0);
	bd_close(a);
	close(fd);

	/* a command's lock held over its opens: the opens share it, and it
	 * outlives them */
	CHECK_EQ(bd_lock_get(path, true, &l), 0);
	CHECK_EQ(file_dev_open(path, BD_RDONLY, &a), 0);
	CHECK_EQ(file_dev_open(path, 0, &b), 0);
	bd_close(a);
	bd_close(b);
	CHECK(!probe_flock(path, LOCK_SH));
	bd_lock_put(l);
	CHECK(probe_flock(path, LOCK_EX));
	bd_lock_put(NULL);

	CHECK_EQ(bd_lock_get("/nonexistent/bkfs/dev", false, &l), -BKFS_E_NOENT);
	CHECK_EQ(bd_lock_get("/tmp", true, &l), -BKFS_E_INVAL);
	CHECK_EQ(bd_lock_get("", true, &l), -BKFS_E_INVAL);
	CHECK(!strcmp(bkfs_strerror(-BKFS_E_BUSY), "mounted or in use by another bkfs process"));
	unlink(link);
	unlink(path);
}

static void test_emu_basic(void)
{
	struct blockdev *bd = mk_emu(0, false, 1);
	u8 w[4096], r[4096], z[4096] = { 0 };
	if (!bd)
		return;
	CHECK_EQ(bd->size, EMU_SIZE);
	CHECK(emu_dev_media(bd) != NULL);

	fill(w, sizeof(w), 1);
	CHECK_EQ(bd_write(bd, w, 8192, 4096), 0);
	/* read-your-writes before flush, but not yet durable */
	CHECK_EQ(bd_read(bd, r, 8192, 4096), 0);
	CHECK(!memcmp(r, w, 4096));
	CHECK(!memcmp(emu_dev_media(bd) + 8192, z, 4096));
	/* partial overlap read and overlay ordering */
	u8 w2[100];
	memset(w2, 0xab, sizeof(w2));
	CHECK_EQ(bd_write(bd, w2, 8192 + 4000, 100), 0);
	CHECK_EQ(bd_read(bd, r, 8192 + 3900, 300), 0);
	CHECK(!memcmp(r, w + 3900, 100));
	CHECK(!memcmp(r + 100, w2, 100));
	CHECK(!memcmp(r + 200, z, 100));

	CHECK_EQ(bd_flush(bd), 0);
	CHECK(!memcmp(emu_dev_media(bd) + 8192, w, 4000));
	CHECK(!memcmp(emu_dev_media(bd) + 8192 + 4000, w2, 100));

	CHECK_EQ(bd_read(bd, r, EMU_SIZE - 1, 2), -BKFS_E_RANGE);
	CHECK_EQ(bd->discard(bd, 0, 4096), 0);
	bd_close(bd);
}

static void test_emu_power_cut(void)
{
	struct blockdev *bd = mk_emu(0, false, 1);
	u8 a[4096], b[4096], r[4096], z[4096] = { 0 };
	if (!bd)
		return;
	fill(a, sizeof(a), 10);
	fill(b, sizeof(b), 20);
	CHECK_EQ(bd_write(bd, a, 0, 4096), 0);
	CHECK_EQ(bd_flush(bd), 0);
	CHECK_EQ(bd_write(bd, b, 4096, 4096), 0);
	CHECK_EQ(bd_write(bd, b, 0, 4096), 0);
	emu_dev_power_cut(bd);
	CHECK(!emu_dev_was_cut(bd));
	CHECK_EQ(bd_read(bd, r, 0, 4096), 0);
	CHECK(!memcmp(r, a, 4096));
	CHECK_EQ(bd_read(bd, r, 4096, 4096), 0);
	CHECK(!memcmp(r, z, 4096));
	/* usable after the "reboot" */
	CHECK_EQ(bd_write(bd, b, 4096, 4096), 0);
	CHECK_EQ(bd_flush(bd), 0);
	CHECK(!memcmp(emu_dev_media(bd) + 4096, b, 4096));
	bd_close(bd);
}

static void test_emu_cut_after(void)
{
	struct blockdev *bd = mk_emu(3, false, 1);
	u8 buf[512], r[512];
	if (!bd)
		return;
	for (int i = 0; i < 6; i++) {
		memset(buf, i + 1, sizeof(buf));
		CHECK_EQ(bd_write(bd, buf, (u64)i * 512, 512), 0);
		if (i == 1)
			CHECK_EQ(bd_flush(bd), 0);
		CHECK_EQ(emu_dev_was_cut(bd), i >= 3);
	}
	CHECK_EQ(bd_flush(bd), 0); /* dropped */
	/* writes 1-2 were flushed, 3 was pending at the cut (lost), 4+ dropped */
	for (int i = 0; i < 6; i++) {
		CHECK_EQ(bd_read(bd, r, (u64)i * 512, 512), 0);
		CHECK_EQ(r[0], i < 2 ? i + 1 : 0);
		CHECK_EQ(r[511], i < 2 ? i + 1 : 0);
	}

	/* rearm relative to now */
	emu_dev_set_cut(bd, 2);
	CHECK(!emu_dev_was_cut(bd));
	memset(buf, 0x55, sizeof(buf));
	CHECK_EQ(bd_write(bd, buf, 8192, 512), 0);
	CHECK_EQ(bd_flush(bd), 0);
	CHECK_EQ(bd_write(bd, buf, 8704, 512), 0);
	CHECK(!emu_dev_was_cut(bd));
	CHECK_EQ(bd_write(bd, buf, 9216, 512), 0);
	CHECK(emu_dev_was_cut(bd));
	CHECK_EQ(emu_dev_media(bd)[8192], 0x55);
	CHECK_EQ(emu_dev_media(bd)[8704], 0);
	CHECK_EQ(emu_dev_media(bd)[9216], 0);

	emu_dev_set_cut(bd, 0);
	CHECK(!emu_dev_was_cut(bd));
	CHECK_EQ(bd_write(bd, buf, 9216, 512), 0);
	CHECK_EQ(bd_flush(bd), 0);
	CHECK_EQ(emu_dev_media(bd)[9216], 0x55);
	bd_close(bd);
}

/* emu_dev_set_cut_at: a flush right after write N is lost with the power */
static void test_emu_cut_at(void)
{
	struct blockdev *bd = mk_emu(0, false, 1);
	u8 buf[512];
	if (!bd)
		return;
	memset(buf, 0x66, sizeof(buf));
	emu_dev_set_cut_at(bd, 2);
	CHECK_EQ(bd_write(bd, buf, 0, 512), 0);
	CHECK_EQ(bd_flush(bd), 0);                /* after write 1: completes */
	CHECK_EQ(emu_dev_media(bd)[0], 0x66);
	CHECK_EQ(bd_write(bd, buf, 512, 512), 0);
	CHECK(!emu_dev_was_cut(bd));
	CHECK_EQ(bd_flush(bd), 0);                /* after write 2: the power is gone */
	CHECK(emu_dev_was_cut(bd));
	CHECK_EQ(emu_dev_media(bd)[512], 0);
	CHECK_EQ(bd_write(bd, buf, 1024, 512), 0); /* dropped */
	emu_dev_power_cut(bd);
	CHECK(!emu_dev_was_cut(bd));
	CHECK_EQ(bd_write(bd, buf, 1024, 512), 0);
	CHECK_EQ(bd_flush(bd), 0);                 /* disarmed by the power cut */
	CHECK_EQ(emu_dev_media(bd)[1024], 0x66);

	/* reset: new media, pending writes and the armed cut gone */
	u8 *img = calloc(1, EMU_SIZE);
	if (img) {
		img[4096] = 0x77;
		CHECK_EQ(bd_write(bd, buf, 8192, 512), 0);
		emu_dev_set_cut_at(bd, 1);
		emu_dev_reset(bd, img, false, 3);
		CHECK(!emu_dev_was_cut(bd));
		CHECK_EQ(bd_read(bd, buf, 8192, 512), 0);
		CHECK_EQ(buf[0], 0);
		CHECK_EQ(emu_dev_media(bd)[4096], 0x77);
		CHECK_EQ(emu_dev_media(bd)[1024], 0);
		CHECK_EQ(bd_write(bd, buf, 0, 512), 0);
		CHECK_EQ(bd_flush(bd), 0);
		CHECK(!emu_dev_was_cut(bd));
		free(img);
	}
	bd_close(bd);
}

/* Write 64 distinct sectors, cut, and record which landed. */
static void reorder_run(u64 seed, u8 *out_media)
{
	struct blockdev *bd = mk_emu(64, true, seed);
	u8 buf[2048];
	if (!bd)
		return;
	for (int i = 0; i < 64; i++) {
		memset(buf, i + 1, sizeof(buf));
		CHECK_EQ(bd_write(bd, buf, (u64)i * 4096, sizeof(buf)), 0);
	}
	CHECK(!emu_dev_was_cut(bd));
	CHECK_EQ(bd_write(bd, buf, 0, 512), 0); /* write 65: triggers the cut */
	CHECK(emu_dev_was_cut(bd));
	memcpy(out_media, emu_dev_media(bd), 64 * 4096);
	bd_close(bd);
}

static void test_emu_reorder(void)
{
	static u8 m1[64 * 4096], m2[64 * 4096], m3[64 * 4096];
	int kept = 0, lost = 0, torn = 0;

	reorder_run(42, m1);
	reorder_run(42, m2);
	reorder_run(43, m3);
	CHECK(!memcmp(m1, m2, sizeof(m1)));  /* deterministic for a seed */
	CHECK(memcmp(m1, m3, sizeof(m1)));   /* and differs with another */

	for (int i = 0; i < 64; i++) {
		const u8 *s = m1 + i * 4096;
		int n = 0;
		while (n < 2048 && s[n] == i + 1)
			n++;
		/* each write is all, none, or a sector-aligned prefix */
		CHECK(n % 512 == 0);
		for (int j = n; j < 4096; j++)
			if (s[j]) {
				CHECK(0);
				break;
			}
		if (n == 2048)
			kept++;
		else if (n == 0)
			lost++;
		else
			torn++;
	}
	CHECK(kept > 0);
	CHECK(lost > 0);
	CHECK(kept + torn < 64);
	CHECK(torn > 0); /* seed 42 tears at least one of ~32 kept writes */

	/* overlapping writes: the media ends up with one of the versions per sector */
	struct blockdev *bd = mk_emu(0, true, 7);
	if (bd) {
		u8 buf[512];
		for (int i = 0; i < 10; i++) {
			memset(buf, i + 1, sizeof(buf));
			CHECK_EQ(bd_write(bd, buf, 0, 512), 0);
		}
		emu_dev_power_cut(bd);
		CHECK(emu_dev_media(bd)[0] <= 10);
		CHECK(emu_dev_media(bd)[0] == emu_dev_media(bd)[511]);
		bd_close(bd);
	}
}

static void test_emu_faults(void)
{
	struct blockdev *bd = mk_emu(0, false, 1);
	u8 buf[4096], r[4096];
	if (!bd)
		return;
	fill(buf, sizeof(buf), 5);
	CHECK_EQ(bd_write(bd, buf, 0, 4096), 0);
	CHECK_EQ(bd_flush(bd), 0);
	CHECK_EQ(bd_write(bd, buf, 8192, 4096), 0); /* pending */

	/* bit flip hits media and the pending write covering the byte */
	emu_dev_flip_bit(bd, 100, 3);
	emu_dev_flip_bit(bd, 8192 + 5, 0);
	CHECK_EQ(bd_read(bd, r, 0, 4096), 0);
	CHECK_EQ(r[100], buf[100] ^ 8);
	CHECK(!memcmp(r, buf, 100));
	CHECK(!memcmp(r + 101, buf + 101, 4096 - 101));
	CHECK_EQ(bd_read(bd, r, 8192, 4096), 0);
	CHECK_EQ(r[5], buf[5] ^ 1);
	CHECK_EQ(emu_dev_media(bd)[8192 + 5], 1); /* 0 flipped in media too */
	emu_dev_flip_bit(bd, EMU_SIZE, 0);         /* out of range: ignored */

	/* read faults */
	CHECK_EQ(emu_dev_fail_reads(bd, 4096, 512), 0);
	CHECK_EQ(bd_read(bd, r, 0, 4096), 0);
	CHECK_EQ(bd_read(bd, r, 4096 + 511, 1), -BKFS_E_IO);
	CHECK_EQ(bd_read(bd, r, 0, 4097), -BKFS_E_IO);
	CHECK_EQ(bd_read(bd, r, 4608, 512), 0);
	int i, ret = 0;
	for (i = 0; i < 100 && !(ret = emu_dev_fail_reads(bd, 0x80000 + i, 1)); i++)
		;
	CHECK_EQ(i, 63);
	CHECK(ret < 0);
	emu_dev_clear_faults(bd);
	CHECK_EQ(bd_read(bd, r, 4096, 512), 0);

	/* non-emu devices are rejected by emu helpers */
	CHECK(emu_dev_media(NULL) == NULL);
	bd_close(bd);
}

static void test_emu_clone_save_load(void)
{
	struct blockdev *bd = mk_emu(0, false, 1), *c = NULL, *l = NULL;
	u8 a[4096], b[4096], r[4096], z[4096] = { 0 };
	if (!bd)
		return;
	fill(a, sizeof(a), 1);
	fill(b, sizeof(b), 2);
	CHECK_EQ(bd_write(bd, a, 0, 4096), 0);
	CHECK_EQ(bd_flush(bd), 0);
	CHECK_EQ(bd_write(bd, b, 4096, 4096), 0); /* pending: not cloned */
	CHECK_EQ(emu_dev_fail_reads(bd, 0, 1), 0);

	REQUIRE_EQ(emu_dev_clone(bd, &c), 0);
	if (c) {
		CHECK_EQ(c->size, bd->size);
		CHECK(emu_dev_media(c) != emu_dev_media(bd));
		CHECK_EQ(bd_read(c, r, 0, 4096), 0); /* no faults armed */
		CHECK(!memcmp(r, a, 4096));
		CHECK_EQ(bd_read(c, r, 4096, 4096), 0);
		CHECK(!memcmp(r, z, 4096));
		bd_close(c);
	}

	char path[] = "/tmp/bkfs_test_emu_XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd >= 0) {
		close(fd);
		CHECK_EQ(emu_dev_save(bd, path), 0);
		l = mk_emu(0, false, 1);
		if (l) {
			CHECK_EQ(bd_write(l, b, 0, 4096), 0);
			CHECK_EQ(emu_dev_load(l, path), 0);
			CHECK_EQ(bd_read(l, r, 0, 4096), 0);
			CHECK(!memcmp(r, a, 4096));
			CHECK(!memcmp(emu_dev_media(l), emu_dev_media(bd), EMU_SIZE));
			bd_close(l);
		}
		/* smaller file: the rest is zero; larger file: refused */
		CHECK_EQ(truncate(path, 2048), 0);
		l = mk_emu(0, false, 1);
		if (l) {
			memset(emu_dev_media(l), 0xff, EMU_SIZE);
			CHECK_EQ(emu_dev_load(l, path), 0);
			CHECK(!memcmp(emu_dev_media(l), a, 2048));
			CHECK_EQ(emu_dev_media(l)[2048], 0);
			CHECK_EQ(emu_dev_media(l)[EMU_SIZE - 1], 0);
			bd_close(l);
		}
		CHECK_EQ(truncate(path, EMU_SIZE + 1), 0);
		l = mk_emu(0, false, 1);
		if (l) {
			CHECK(emu_dev_load(l, path) < 0);
			CHECK_EQ(emu_dev_load(l, "/nonexistent/bkfs"), -BKFS_E_NOENT);
			bd_close(l);
		}
		unlink(path);
	}
	bd_close(bd);
}

static void test_emu_many_pending(void)
{
	struct blockdev *bd = mk_emu(0, false, 1);
	u8 buf[64], r[64];
	if (!bd)
		return;
	for (u32 i = 0; i < 10000; i++) {
		memcpy(buf, &i, sizeof(i));
		CHECK_EQ(bd_write(bd, buf, (u64)(i % 4096) * 64, 64), 0);
	}
	u32 v;
	CHECK_EQ(bd_read(bd, r, 10 * 64, 64), 0);
	memcpy(&v, r, sizeof(v));
	CHECK_EQ(v, 8192 + 10); /* last writer wins */
	CHECK_EQ(bd_flush(bd), 0);
	memcpy(&v, emu_dev_media(bd) + 10 * 64, sizeof(v));
	CHECK_EQ(v, 8192 + 10);
	bd_close(bd);
}

int main(void)
{
	test_file_dev();
	test_dev_lock();
	test_emu_basic();
	test_emu_power_cut();
	test_emu_cut_after();
	test_emu_cut_at();
	test_emu_reorder();
	test_emu_faults();
	test_emu_clone_save_load();
	test_emu_many_pending();
	TEST_MAIN_END();
}
