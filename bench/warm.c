/* warm - put image files in the page cache (and take others out) before a
 * timed run of the benchmark, so every checker starts from the same state.
 *
 *   warm [-e FILE]... FILE...
 *
 * Each FILE is read once, but only where it holds data (SEEK_DATA/SEEK_HOLE):
 * the benchmark's images are sparse files several times larger than what they
 * hold, and reading their holes would fill the page cache with zero pages and
 * push out what matters. -e FILE first drops FILE's cached pages
 * (POSIX_FADV_DONTNEED) to make room; the benchmark passes the other images of
 * the same size. Prints the number of data bytes read per FILE on stderr with -v.
 *
 * Standalone: depends on libc only. Errors are reported but never fatal for
 * the caller (exit 1 only if a FILE could not be read at all).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE	(1 << 20)

static int evict(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	if (ret) {
		errno = ret;
		return -1;
	}
	return 0;
}

/* read every data region of PATH; returns bytes read or -1 */
static long long warm(const char *path, char *buf)
{
	long long total = 0;
	off_t pos = 0, data, hole, end;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		goto fail;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (pos < end) {
		data = lseek(fd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)	/* only a hole is left */
				break;
			if (errno != EINVAL)
				goto fail;
			data = pos;		/* no SEEK_DATA: read everything */
			hole = end;
		} else {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole < 0)
				hole = end;
		}
		for (pos = data; pos < hole;) {
			size_t want = hole - pos < BUF_SIZE ? (size_t)(hole - pos) : BUF_SIZE;
			ssize_t n = pread(fd, buf, want, pos);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				goto fail;
			pos += n;
			total += n;
		}
	}
	close(fd);
	return total;
fail:
	close(fd);
	return -1;
}

int main(int argc, char **argv)
{
	int i, verbose = 0, failed = 0;
	char *buf;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-v")) {
			verbose = 1;
		} else if (!strcmp(argv[i], "-e") && i + 1 < argc) {
			if (evict(argv[++i]) && errno != ENOENT)
				fprintf(stderr, "warm: cannot drop %s from the cache: %s\n", argv[i], strerror(errno));
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fprintf(stderr, "usage: warm [-v] [-e FILE]... FILE...\n");
			return 0;
		}
	}
	buf = malloc(BUF_SIZE);
	if (!buf)
		return 1;
	for (i = 1; i < argc; i++) {
		long long n;

		if (!strcmp(argv[i], "-v"))
			continue;
		if (!strcmp(argv[i], "-e")) {
			i++;
			continue;
		}
		n = warm(argv[i], buf);
		if (n < 0) {
			fprintf(stderr, "warm: cannot read %s: %s\n", argv[i], strerror(errno));
			failed = 1;
		} else if (verbose) {
			fprintf(stderr, "warm: %s: %lld MiB of data read\n", argv[i], n >> 20);
		}
	}
	free(buf);
	return failed;
}
