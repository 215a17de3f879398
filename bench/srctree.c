/*
 * srctree - a deterministic file tree of one of two shapes, for the aged-image
 * benchmark (bench/aged.sh):
 *
 *   source  like a source checkout: directories 1..4 deep holding ~12 files
 *           each, sizes mostly 1-16 KiB (a few up to 64 KiB), text content
 *   deep    many tiny files (0..200 bytes) in directories up to 16 deep, ~4
 *           files and ~2 subdirectories per directory
 *
 * It is not gentree: different name lengths, size mix and tree shape, so the
 * benchmark does not only measure the one generator's trees.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct shape {
	unsigned files_per_dir;
	unsigned subdirs_per_dir;
	unsigned max_depth;
	int tiny;		/* 0..200 byte files instead of source-like sizes */
};

static const struct shape shape_source = { 12, 4, 4, 0 };
static const struct shape shape_deep = { 4, 2, 16, 1 };

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: deterministic for a seed, fast enough for 1M files */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

static unsigned rnd(unsigned n) { return n ? (unsigned)(rng() % n) : 0; }

static const char *const words[] = {
	"static", "int", "return", "struct", "const", "void", "if", "else",
	"for", "while", "unsigned", "char", "size_t", "err", "goto", "out",
	"node", "key", "buf", "len", "pos", "ret", "NULL", "sizeof",
};

static size_t file_size(const struct shape *s)
{
	if (s->tiny)
		return rnd(201);
	unsigned r = rnd(100);
	if (r < 70)
		return 1024 + rnd(15 * 1024);
	if (r < 95)
		return 64 + rnd(1024);
	return 16384 + rnd(48 * 1024);
}

static int write_file(const char *path, size_t size)
{
	static char buf[65536 + 64];
	size_t n = 0;

	while (n < size) {
		const char *w = words[rnd(sizeof(words) / sizeof(words[0]))];
		size_t l = strlen(w);
		memcpy(buf + n, w, l);
		n += l;
		buf[n++] = rnd(8) ? ' ' : '\n';
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return -1;
	ssize_t w = write(fd, buf, size);
	close(fd);
	return w == (ssize_t)size ? 0 : -1;
}

static unsigned long files_left;

static int fill_dir(const struct shape *s, char *path, size_t plen, unsigned depth)
{
	unsigned nfiles = s->files_per_dir / 2 + rnd(s->files_per_dir + 1);
	for (unsigned i = 0; i < nfiles && files_left; i++, files_left--) {
		snprintf(path + plen, 4096 - plen, "/%s_%u.%s", words[rnd(24)], i,
			 s->tiny ? "t" : (rnd(3) ? "c" : "h"));
		if (write_file(path, file_size(s))) {
			perror(path);
			return -1;
		}
	}
	if (depth >= s->max_depth)
		return 0;
	unsigned nsub = 1 + rnd(s->subdirs_per_dir * 2);
	for (unsigned i = 0; i < nsub && files_left; i++) {
		int l = snprintf(path + plen, 4096 - plen, "/%s%u", s->tiny ? "d" : "dir_", i);
		if (mkdir(path, 0755)) {
			perror(path);
			return -1;
		}
		if (fill_dir(s, path, plen + l, depth + 1))
			return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct shape *s = &shape_source;
	unsigned long files = 4700, seed = 1;
	int c;

	while ((c = getopt(argc, argv, "s:n:S:")) != -1) {
		switch (c) {
		case 's':
			if (!strcmp(optarg, "deep"))
				s = &shape_deep;
			else if (strcmp(optarg, "source"))
				goto usage;
			break;
		case 'n': files = strtoul(optarg, NULL, 0); break;
		case 'S': seed = strtoul(optarg, NULL, 0); break;
		default: goto usage;
		}
	}
	if (optind + 1 != argc)
		goto usage;
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
	char path[4096];
	snprintf(path, sizeof(path), "%s", argv[optind]);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		return 1;
	}
	files_left = files;
	/* top level: as many subtrees as it takes to place every file */
	for (unsigned top = 0; files_left; top++) {
		int l = snprintf(path, sizeof(path), "%s/top%u", argv[optind], top);
		if (mkdir(path, 0755) || fill_dir(s, path, l, 1))
			return 1;
	}
	return 0;
usage:
	fprintf(stderr, "usage: srctree [-s source|deep] [-n FILES] [-S SEED] DIR\n");
	return 16;
}
