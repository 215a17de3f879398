/* churn.c - a seeded aging workload for a mounted filesystem, checked
 * against an in-memory model.
 *
 *   churn DIR [--seed N] [--fill PCT] [--factor X] [--max-size BYTES]
 *             [--files N] [--fsync-every N]
 *
 * Reads statvfs(DIR) once at the start: "space" is f_bavail * f_frsize, what
 * the filesystem offered. Then creates, overwrites ranges of, truncates and
 * deletes files of 1 byte to --max-size (default 256 KiB) under DIR, holding
 * the live data (the sum of file sizes) between PCT-5 % and PCT % of that
 * space, until it has written --factor times that space (default 20). Every
 * operation is mirrored in memory; at the end every file is read back and
 * compared with the model. An ENOSPC is counted, and the workload goes on
 * after deleting one file.
 *
 * Prints one line of key=value pairs: space, written, seconds, mbps,
 * enospc, ops, files, live, mismatches. Exit status 0 if nothing differed
 * and no ENOSPC happened, 1 otherwise, 2 on usage errors or other I/O
 * errors. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

struct file {
	unsigned char *data;
	size_t size;
	bool exists;
};

static struct {
	const char *dir;
	uint64_t seed, rng;
	unsigned fill, nfiles, fsync_every;
	double factor;
	size_t max_size;
	struct file *f;
	uint64_t space, written, live, enospc, ops, mismatches;
} C = { .seed = 1, .fill = 80, .factor = 20, .max_size = 256 << 10, .nfiles = 0, .fsync_every = 64 };

static uint64_t rnd(void)
{
	C.rng ^= C.rng << 13;
	C.rng ^= C.rng >> 7;
	C.rng ^= C.rng << 17;
	return C.rng;
}

static uint64_t rnd_below(uint64_t n) { return n ? rnd() % n : 0; }

/* sizes spread over orders of magnitude: 1 B .. max_size */
static size_t rnd_size(void)
{
	unsigned bits = 1 + (unsigned)rnd_below(18);
	size_t s = 1 + rnd_below((size_t)1 << bits);
	return s > C.max_size ? C.max_size : s;
}

static void fill_random(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(rnd() >> 24);
}

static void path_of(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/d%02u/f%06u", C.dir, i % 16, i);
}

static void die(const char *what, unsigned i)
{
	char p[4096];
	path_of(i, p, sizeof(p));
	fprintf(stderr, "churn: %s %s: %s\n", what, p, strerror(errno));
	exit(2);
}

static void drop_one(void);

/* write n bytes at off of file i (model updated only on success) */
static int do_write(unsigned i, size_t off, size_t n, bool create)
{
	char p[4096];
	path_of(i, p, sizeof(p));
	int fd = open(p, O_WRONLY | (create ? O_CREAT | O_TRUNC : 0), 0644);
	if (fd < 0) {
		if (errno == ENOSPC)
			return -ENOSPC;
		die("open", i);
	}
	struct file *f = &C.f[i];
	unsigned char *buf = malloc(n ? n : 1);
	fill_random(buf, n);
	ssize_t w = pwrite(fd, buf, n, (off_t)off);
	int e = errno;
	bool sync_now = C.fsync_every && rnd_below(C.fsync_every) == 0;
	if (w == (ssize_t)n && sync_now && fsync(fd))
		e = errno, w = -1;
	close(fd);
	if (w != (ssize_t)n) {
		free(buf);
		if (w >= 0 || e == ENOSPC) {
			/* a short or failed write may have changed part of the
			 * file: take the file out of the model */
			unlink(p);
			C.live -= f->exists ? f->size : 0;
			free(f->data);
			memset(f, 0, sizeof(*f));
			return -ENOSPC;
		}
		errno = e;
		die("write", i);
	}
	if (create) {
		C.live -= f->exists ? f->size : 0;
		free(f->data);
		f->data = NULL;
		f->size = 0;
		f->exists = true;
	}
	if (off + n > f->size) {
		f->data = realloc(f->data, off + n);
		memset(f->data + f->size, 0, off + n - f->size);
		C.live += off + n - f->size;
		f->size = off + n;
	}
	memcpy(f->data + off, buf, n);
	free(buf);
	C.written += n;
	return 0;
}

static void do_truncate(unsigned i, size_t size)
{
	char p[4096];
	struct file *f = &C.f[i];
	path_of(i, p, sizeof(p));
	if (truncate(p, (off_t)size)) {
		if (errno == ENOSPC) {
			C.enospc++;
			return;
		}
		die("truncate", i);
	}
	if (size > f->size) {
		f->data = realloc(f->data, size);
		memset(f->data + f->size, 0, size - f->size);
	}
	C.live = C.live - f->size + size;
	f->size = size;
}

static void do_delete(unsigned i)
{
	char p[4096];
	path_of(i, p, sizeof(p));
	if (unlink(p))
		die("unlink", i);
	C.live -= C.f[i].size;
	free(C.f[i].data);
	memset(&C.f[i], 0, sizeof(C.f[i]));
}

static unsigned pick(bool exists)
{
	for (unsigned tries = 0; tries < 64; tries++) {
		unsigned i = (unsigned)rnd_below(C.nfiles);
		if (C.f[i].exists == exists)
			return i;
	}
	for (unsigned i = 0; i < C.nfiles; i++)
		if (C.f[i].exists == exists)
			return i;
	return UINT32_MAX;
}

static void drop_one(void)
{
	unsigned i = pick(true);
	if (i != UINT32_MAX)
		do_delete(i);
}

static void one_op(void)
{
	uint64_t hi = C.space * C.fill / 100, lo = C.space * (C.fill > 5 ? C.fill - 5 : 0) / 100;
	unsigned r = (unsigned)rnd_below(100);
	unsigned i;
	int ret = 0;
	C.ops++;
	if (C.live < lo || (C.live < hi && r < 40)) {
		/* grow: a new file, or an append */
		if ((i = pick(false)) != UINT32_MAX && r % 2 == 0) {
			size_t n = rnd_size();
			if (C.live + n > hi + (hi - lo))
				n = 1 + rnd_below(4096);
			ret = do_write(i, 0, n, true);
		} else if ((i = pick(true)) != UINT32_MAX && C.f[i].size < C.max_size) {
			size_t n = 1 + rnd_below(C.max_size - C.f[i].size);
			ret = do_write(i, C.f[i].size, n, false);
		}
	} else if (C.live > hi || r < 55) {
		/* shrink: delete, or truncate down */
		if ((i = pick(true)) == UINT32_MAX)
			return;
		if (r % 3)
			do_delete(i);
		else
			do_truncate(i, rnd_below(C.f[i].size + 1));
	} else {
		/* rewrite a range inside a file (the fragmenting case) */
		if ((i = pick(true)) == UINT32_MAX || !C.f[i].size)
			return;
		size_t off = rnd_below(C.f[i].size);
		size_t n = 1 + rnd_below(C.f[i].size - off < 65536 ? C.f[i].size - off : 65536);
		ret = do_write(i, off, n, false);
	}
	if (ret == -ENOSPC) {
		C.enospc++;
		drop_one();
	}
}

static void verify(void)
{
	char p[4096];
	unsigned char *buf = malloc(C.max_size + 1);
	for (unsigned i = 0; i < C.nfiles; i++) {
		struct file *f = &C.f[i];
		path_of(i, p, sizeof(p));
		int fd = open(p, O_RDONLY);
		if (!f->exists) {
			if (fd >= 0) {
				fprintf(stderr, "churn: %s exists, the model says deleted\n", p);
				C.mismatches++;
				close(fd);
			}
			continue;
		}
		if (fd < 0) {
			fprintf(stderr, "churn: %s: %s\n", p, strerror(errno));
			C.mismatches++;
			continue;
		}
		size_t cap = f->size > C.max_size ? f->size : C.max_size;
		buf = realloc(buf, cap + 1);
		ssize_t n = pread(fd, buf, cap + 1, 0);
		close(fd);
		if (n != (ssize_t)f->size || memcmp(buf, f->data, f->size)) {
			fprintf(stderr, "churn: %s differs from the model (read %zd bytes, expected %zu)\n", p, n, f->size);
			C.mismatches++;
		}
	}
	free(buf);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;
		if (!strcmp(argv[a], "--seed") && v)
			C.seed = strtoull(v, NULL, 0), a++;
		else if (!strcmp(argv[a], "--fill") && v)
			C.fill = (unsigned)atoi(v), a++;
		else if (!strcmp(argv[a], "--factor") && v)
			C.factor = atof(v), a++;
		else if (!strcmp(argv[a], "--max-size") && v)
			C.max_size = strtoull(v, NULL, 0), a++;
		else if (!strcmp(argv[a], "--files") && v)
			C.nfiles = (unsigned)atoi(v), a++;
		else if (!strcmp(argv[a], "--fsync-every") && v)
			C.fsync_every = (unsigned)atoi(v), a++;
		else if (argv[a][0] != '-' && !C.dir)
			C.dir = argv[a];
		else {
			fprintf(stderr, "usage: churn DIR [--seed N] [--fill PCT] [--factor X] [--max-size BYTES] "
					"[--files N] [--fsync-every N]\n");
			return 2;
		}
	}
	if (!C.dir || !C.fill || C.fill > 99 || C.factor <= 0 || !C.max_size) {
		fprintf(stderr, "churn: need DIR, --fill 1..99, --factor > 0, --max-size > 0\n");
		return 2;
	}
	struct statvfs sv;
	if (statvfs(C.dir, &sv)) {
		perror("churn: statvfs");
		return 2;
	}
	C.space = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (!C.nfiles) {
		/* enough names that the live set fits with files of average size */
		uint64_t avg = C.max_size / 8 + 1;
		C.nfiles = (unsigned)(C.space * C.fill / 100 / avg) * 2 + 64;
	}
	C.rng = C.seed * 0x9E3779B97F4A7C15ull | 1;
	C.f = calloc(C.nfiles, sizeof(*C.f));
	for (unsigned d = 0; d < 16; d++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/d%02u", C.dir, d);
		if (mkdir(p, 0755) && errno != EEXIST) {
			perror("churn: mkdir");
			return 2;
		}
	}
	double t0 = now_s();
	uint64_t goal = (uint64_t)(C.factor * (double)C.space);
	while (C.written < goal)
		one_op();
	double secs = now_s() - t0;
	verify();
	unsigned files = 0;
	for (unsigned i = 0; i < C.nfiles; i++)
		files += C.f[i].exists;
	printf("space=%llu written=%llu seconds=%.2f mbps=%.2f enospc=%llu ops=%llu files=%u live=%llu mismatches=%llu\n",
	       (unsigned long long)C.space, (unsigned long long)C.written, secs,
	       secs > 0 ? C.written / secs / 1e6 : 0.0, (unsigned long long)C.enospc, (unsigned long long)C.ops, files,
	       (unsigned long long)C.live, (unsigned long long)C.mismatches);
	for (unsigned i = 0; i < C.nfiles; i++)
		free(C.f[i].data);
	free(C.f);
	return C.mismatches || C.enospc ? 1 : 0;
}
