/* gentree - generate a deterministic file tree for tests and benchmarks.
 *
 *   gentree [--seed N] [--files N] [--max-size BYTES] [--big-dir N]
 *           [--no-special] [--no-owners] [--quiet] DIR
 *
 * The tree holds directories nested up to MAX_DEPTH levels, regular files
 * (mostly 0..8 KiB, some up to --max-size, content from a seeded PRNG), a few
 * sparse files, symlinks (relative, to files and directories, and dangling),
 * hard links, FIFOs, user.* xattrs, varied modes (0600..0777 for files, never
 * setuid/setgid/sticky) and mtimes with nanoseconds. When run as root it also
 * makes character and block device nodes (unless --no-special) and gives some
 * entries other owners (unless --no-owners).
 *
 * --files counts every non-directory entry (regular files, sparse files,
 * hard links, symlinks, FIFOs and device nodes). --big-dir N adds a directory
 * "bigdir" holding N more small files.
 *
 * The same seed and options give the same tree (names, content, metadata):
 * every random draw happens in a fixed order whether or not the filesystem
 * accepts the object (xattrs, device nodes), so a refusal never shifts the
 * rest of the tree. Names never contain whitespace, so a tree can be fed to
 * tools with line-oriented formats (e.g. mkfs.xfs protofiles).
 *
 * Standalone: depends on libc only.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEPTH	6
#define CHUNK		65536
#define SMALL_MAX	8192
#define MEDIUM_MAX	65536
#define SPARSE_MAX	(8ULL << 20)

/* ------------------------------------------------------------------ PRNG */

static uint64_t rng_state;

/* splitmix64: small, fast, good enough, and identical everywhere */
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [0, n) (n > 0); the tiny modulo bias is irrelevant here */
static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

/* uniform in [lo, hi] */
static uint64_t rnd_range(uint64_t lo, uint64_t hi)
{
	return lo + rnd_below(hi - lo + 1);
}

/* true with probability permille/1000 */
static bool chance(unsigned permille)
{
	return rnd_below(1000) < permille;
}

/* -------------------------------------------------------------- helpers */

static const char *prog = "gentree";

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory");
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;

	return memcpy(xmalloc(n), s, n);
}

/* growable array of strings */
struct strv {
	char	**v;
	size_t	nr, size;
};

static void strv_push(struct strv *s, char *str)
{
	if (s->nr == s->size) {
		s->size = s->size ? s->size * 2 : 256;
		s->v = xrealloc(s->v, s->size * sizeof(*s->v));
	}
	s->v[s->nr++] = str;
}

static uint64_t parse_u64(const char *opt, const char *arg)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || arg[0] == '-')
		die("%s: invalid number '%s'", opt, arg);
	/* allow K/M/G suffixes for sizes */
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		die("%s: invalid number '%s'", opt, arg);
	return v;
}

/* ---------------------------------------------------------------- state */

struct dir {
	char		*path;		/* relative to the tree root; "" for the root */
	unsigned	depth;
};

static struct {
	uint64_t	seed;
	uint64_t	nr_files;
	uint64_t	max_size;
	uint64_t	big_dir;
	bool		special;	/* device nodes (root only) */
	bool		owners;		/* varied owners (root only) */
	bool		quiet;
	bool		root;
} opt = {
	.seed		= 1,
	.nr_files	= 1000,
	.max_size	= 1 << 20,
	.special	= true,
	.owners		= true,
};

static struct {
	uint64_t	files, dirs, symlinks, hardlinks, sparse, fifos, devices;
	uint64_t	xattrs, bytes;
} st;

static int rootfd;
static struct dir *dirs;
static size_t nr_dirs;
static struct strv regfiles;	/* paths of regular files, for links */
static bool xattrs_work = true;
static unsigned char *buf;	/* CHUNK bytes of content */
static uint64_t name_seq;

/* --------------------------------------------------------------- naming */

static const char *const utf8_bits[] = {
	"\xc3\xa9t\xc3\xa9",			/* été */
	"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",	/* 日本語 */
	"\xce\xa9mega",				/* Ωmega */
	"na\xc3\xafve",				/* naïve */
	"\xf0\x9f\x99\x82",			/* 🙂 */
	"\xd0\xb4\xd0\xb0\xd0\xbd\xd0\xbd\xd1\x8b\xd0\xb5", /* данные */
};

static const char *const suffixes[] = {
	"", "", "", ".txt", ".dat", ".c", ".h", ".o", ".tar.gz", ".log",
	".json", "~", ".bak", ",v", "+1", "#",
};

/* A unique name: prefix + sequence number, then decoration. */
static void make_name(char *out, size_t outsz, const char *prefix)
{
	uint64_t seq = name_seq++;
	unsigned r = rnd_below(1000);
	const char *suf = suffixes[rnd_below(sizeof(suffixes) / sizeof(suffixes[0]))];
	const char *u8 = utf8_bits[rnd_below(sizeof(utf8_bits) / sizeof(utf8_bits[0]))];
	size_t n;

	if (r < 20)		/* hidden */
		n = snprintf(out, outsz, ".%s%" PRIu64 "%s", prefix, seq, suf);
	else if (r < 60)	/* UTF-8 */
		n = snprintf(out, outsz, "%s%" PRIu64 "-%s%s", prefix, seq, u8, suf);
	else
		n = snprintf(out, outsz, "%s%" PRIu64 "%s", prefix, seq, suf);

	if (r >= 990) {		/* long name: pad to 200..255 bytes */
		size_t want = rnd_range(200, 255);

		while (n < want && n + 1 < outsz)
			out[n++] = "abcdefghijklmnopqrstuvwxyz0123456789_-"[rnd_below(38)];
		out[n] = '\0';
	}
}

static char *join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = xmalloc(a + b + 2);

	if (a) {
		memcpy(p, dir, a);
		p[a] = '/';
		memcpy(p + a + 1, name, b + 1);
	} else {
		memcpy(p, name, b + 1);
	}
	return p;
}

/* ------------------------------------------------------------- metadata */

static void random_time(struct timespec ts[2])
{
	/* 2000-01-01 .. 2030-01-01, with nanoseconds */
	ts[1].tv_sec = (time_t)rnd_range(946684800ULL, 1893456000ULL - 1);
	ts[1].tv_nsec = (long)rnd_below(1000000000ULL);
	ts[0] = ts[1];
	if (chance(300)) {	/* atime different from mtime sometimes */
		ts[0].tv_sec += (time_t)rnd_below(86400 * 30);
		ts[0].tv_nsec = (long)rnd_below(1000000000ULL);
	}
}

static mode_t random_file_mode(void)
{
	return 0600 | (mode_t)rnd_below(0200);		/* 0600..0777 */
}

static mode_t random_dir_mode(void)
{
	return 0700 | (mode_t)rnd_below(0100);		/* 0700..0777 */
}

static void random_owner(uid_t *uid, gid_t *gid)
{
	static const unsigned ids[] = { 0, 0, 0, 1, 1000, 1001, 65534, 4000000 };
	unsigned r = rnd_below(1000);

	*uid = ids[rnd_below(8)];
	*gid = ids[rnd_below(8)];
	if (r >= 100)		/* 90% stay root:root */
		*uid = *gid = 0;
}

static void set_owner(const char *path)
{
	uid_t uid;
	gid_t gid;

	random_owner(&uid, &gid);
	if (opt.root && opt.owners && (uid || gid) &&
	    fchownat(rootfd, path, uid, gid, AT_SYMLINK_NOFOLLOW))
		die("chown %s: %s", path, strerror(errno));
}

/* 0..3 user.* xattrs; fd must be open on a regular file or directory */
static void set_xattrs(int fd, const char *path)
{
	static char val[4096];
	unsigned i, nr = 0;

	if (chance(120))
		nr = rnd_range(1, 3);

	for (i = 0; i < nr; i++) {
		char name[64];
		size_t len = chance(50) ? rnd_range(256, 1000) : rnd_below(64);
		size_t j;

		snprintf(name, sizeof(name), "user.gentree.%s%u",
			 chance(500) ? "attr" : "k", i);
		for (j = 0; j < len; j++)
			val[j] = (char)("0123456789abcdef=-_ "[rnd_below(20)]);

		if (!xattrs_work)
			continue;
		if (fsetxattr(fd, name, val, len, 0)) {
			if (errno == ENOTSUP || errno == EPERM || errno == EACCES) {
				xattrs_work = false;	/* fs refuses: skip silently */
				continue;
			}
			if (errno == ENOSPC || errno == E2BIG)
				continue;
			die("setxattr %s %s: %s", path, name, strerror(errno));
		}
		st.xattrs++;
	}
}

static void set_times_at(const char *path, struct timespec ts[2])
{
	if (utimensat(rootfd, path, ts, AT_SYMLINK_NOFOLLOW))
		die("utimensat %s: %s", path, strerror(errno));
}

/* -------------------------------------------------------------- content */

/* Fill buf[0..len) with content of a given style, from the PRNG. */
static void fill(unsigned style, size_t len)
{
	size_t i;

	switch (style) {
	case 0: {		/* random bytes: incompressible */
		uint64_t w;

		for (i = 0; i + 8 <= len; i += 8) {
			w = rnd();
			memcpy(buf + i, &w, 8);
		}
		w = rnd();
		memcpy(buf + i, &w, len - i);
		break;
	}
	case 1: {		/* text-like: words from a small alphabet */
		static const char *const words[] = {
			"the ", "bucket ", "btree ", "key ", "journal ", "gen ",
			"extent ", "inode ", "\n", "fsck ", "alloc ", "stripe ",
		};
		i = 0;
		while (i < len) {
			const char *w = words[rnd_below(12)];
			size_t n = strlen(w);

			if (n > len - i)
				n = len - i;
			memcpy(buf + i, w, n);
			i += n;
		}
		break;
	}
	default: {		/* a repeated random 64-byte pattern */
		unsigned char pat[64];

		for (i = 0; i < 64; i++)
			pat[i] = (unsigned char)rnd();
		for (i = 0; i < len; i++)
			buf[i] = pat[i & 63];
		break;
	}
	}
}

static void write_all(int fd, const char *path, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t r = write(fd, buf + off, len - off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("write %s: %s", path, strerror(errno));
		}
		off += (size_t)r;
	}
}

static void write_content(int fd, const char *path, uint64_t size)
{
	unsigned style = rnd_below(3);

	while (size) {
		size_t n = size < CHUNK ? (size_t)size : CHUNK;

		fill(style, n);
		write_all(fd, path, n);
		size -= n;
	}
}

static uint64_t random_file_size(void)
{
	unsigned r = rnd_below(1000);
	uint64_t size;

	if (r < 40) {
		size = 0;
	} else if (r < 940) {
		size = rnd_range(1, SMALL_MAX);
	} else if (r < 995) {
		size = rnd_range(SMALL_MAX + 1, MEDIUM_MAX);
	} else {
		/* large: log-uniform between 64 KiB and max_size */
		unsigned b, hi = 0;
		uint64_t m = opt.max_size, base;

		while (m >>= 1)
			hi++;
		b = rnd_range(16, hi > 16 ? hi : 16);
		base = 1ULL << b;
		size = rnd_range(base, base * 2 - 1);
	}
	return size < opt.max_size ? size : opt.max_size;
}

/* ------------------------------------------------------------- entries */

static int create_file(const char *path)
{
	int fd = openat(rootfd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		die("create %s: %s", path, strerror(errno));
	return fd;
}

static void finish_file(int fd, const char *path)
{
	struct timespec ts[2];
	mode_t mode = random_file_mode();

	set_owner(path);
	if (fchmod(fd, mode))
		die("chmod %s: %s", path, strerror(errno));
	set_xattrs(fd, path);
	random_time(ts);
	if (futimens(fd, ts))
		die("futimens %s: %s", path, strerror(errno));
	if (close(fd))
		die("close %s: %s", path, strerror(errno));
}

static void make_regular(const char *path)
{
	int fd = create_file(path);
	uint64_t size = random_file_size();

	write_content(fd, path, size);
	st.bytes += size;
	st.files++;
	finish_file(fd, path);
	strv_push(&regfiles, xstrdup(path));
}

static void make_sparse(const char *path)
{
	int fd = create_file(path);
	uint64_t end = 0, logical = rnd_range(1ULL << 20, SPARSE_MAX);
	unsigned i, nr = rnd_range(1, 4);
	bool lead_data = chance(500);

	/* data chunks at increasing offsets, holes between them (lseek past end) */
	for (i = 0; i < nr; i++) {
		uint64_t len = rnd_range(1, CHUNK);
		uint64_t off = (i == 0 && lead_data) ? 0 :
			end + rnd_range(4096, logical / nr);

		off &= ~4095ULL;
		if (off < end)
			off = end;
		if (lseek(fd, (off_t)off, SEEK_SET) < 0)
			die("lseek %s: %s", path, strerror(errno));
		fill(rnd_below(3), len);
		write_all(fd, path, len);
		end = off + len;
	}
	/* sometimes a trailing hole */
	if (chance(500)) {
		end += rnd_range(4096, 1 << 20);
		if (ftruncate(fd, (off_t)end))
			die("truncate %s: %s", path, strerror(errno));
	}
	st.bytes += end;
	st.sparse++;
	st.files++;
	finish_file(fd, path);
	strv_push(&regfiles, xstrdup(path));
}

static void make_hardlink(const char *path)
{
	const char *target = regfiles.v[rnd_below(regfiles.nr)];

	if (linkat(rootfd, target, rootfd, path, 0))
		die("link %s -> %s: %s", target, path, strerror(errno));
	st.hardlinks++;
}

static void make_symlink(const char *path, const struct dir *d)
{
	char *target = NULL;
	size_t cap = 0;
	unsigned r = rnd_below(100);
	struct timespec ts[2];

	if (r < 55 && regfiles.nr) {
		/* relative, to an existing file: up to the root, then down */
		const char *t = regfiles.v[rnd_below(regfiles.nr)];
		unsigned i;

		cap = d->depth * 3 + strlen(t) + 1;
		target = xmalloc(cap);
		target[0] = '\0';
		for (i = 0; i < d->depth; i++)
			strcat(target, "../");
		strcat(target, t);
	} else if (r < 70) {
		/* relative, to a directory */
		target = xstrdup(rnd_below(2) ? "." : (d->depth ? ".." : "."));
	} else if (r < 90) {
		/* dangling, relative */
		target = xmalloc(64);
		snprintf(target, 64, "missing-%" PRIu64, rnd_below(1000000));
	} else {
		/* dangling, absolute; sometimes long */
		size_t len = chance(200) ? rnd_range(300, 1000) : 0, n;

		target = xmalloc(64 + len);
		n = snprintf(target, 64, "/nonexistent/gentree/%" PRIu64, rnd_below(1000000));
		while (len--)
			target[n++] = "abc/def_"[rnd_below(8)];
		target[n] = '\0';
	}

	if (symlinkat(target, rootfd, path))
		die("symlink %s: %s", path, strerror(errno));
	free(target);
	set_owner(path);
	random_time(ts);
	set_times_at(path, ts);
	st.symlinks++;
}

static void make_fifo(const char *path)
{
	struct timespec ts[2];

	if (mkfifoat(rootfd, path, 0600))
		die("mkfifo %s: %s", path, strerror(errno));
	set_owner(path);
	if (fchmodat(rootfd, path, random_file_mode(), 0))
		die("chmod %s: %s", path, strerror(errno));
	random_time(ts);
	set_times_at(path, ts);
	st.fifos++;
}

/* Returns false if the node could not be made (not root, or refused). */
static bool make_device(const char *path)
{
	bool blk = rnd_below(2);
	unsigned maj = rnd_range(1, 255), min = rnd_range(0, 1023);
	mode_t mode = random_file_mode();
	struct timespec ts[2];

	random_time(ts);
	if (!opt.root || !opt.special)
		return false;
	if (mknodat(rootfd, path, (blk ? S_IFBLK : S_IFCHR) | 0600, makedev(maj, min))) {
		if (errno == EPERM || errno == EACCES || errno == ENOTSUP)
			return false;	/* e.g. a container without CAP_MKNOD */
		die("mknod %s: %s", path, strerror(errno));
	}
	set_owner(path);
	if (fchmodat(rootfd, path, mode, 0))
		die("chmod %s: %s", path, strerror(errno));
	set_times_at(path, ts);
	st.devices++;
	return true;
}

static void make_dirs(void)
{
	size_t want = opt.nr_files / 16 + 1, i;

	dirs = xmalloc((want + 2) * sizeof(*dirs));
	dirs[0].path = xstrdup("");
	dirs[0].depth = 0;
	nr_dirs = 1;

	for (i = 0; i < want; i++) {
		char name[300];
		size_t p;

		/* parent: uniform over the existing directories not at max depth,
		 * biased towards recent ones half of the time to grow deep chains */
		do {
			p = chance(500) ? rnd_below(nr_dirs)
					: nr_dirs - 1 - rnd_below(nr_dirs < 8 ? nr_dirs : 8);
		} while (dirs[p].depth >= MAX_DEPTH);

		make_name(name, sizeof(name), "d");
		dirs[nr_dirs].path = join(dirs[p].path, name);
		dirs[nr_dirs].depth = dirs[p].depth + 1;
		if (mkdirat(rootfd, dirs[nr_dirs].path, 0700))
			die("mkdir %s: %s", dirs[nr_dirs].path, strerror(errno));
		nr_dirs++;
	}
}

static void make_entries(void)
{
	uint64_t i;

	for (i = 0; i < opt.nr_files; i++) {
		const struct dir *d = &dirs[rnd_below(nr_dirs)];
		unsigned r = rnd_below(1000);
		char name[300], *path;

		make_name(name, sizeof(name), "f");
		path = join(d->path, name);

		if (r < 30 && regfiles.nr)
			make_hardlink(path);
		else if (r < 80)
			make_symlink(path, d);
		else if (r < 83)
			make_sparse(path);
		else if (r < 88)
			make_fifo(path);
		else if (r < 90) {
			if (!make_device(path))
				make_fifo(path);
		} else
			make_regular(path);
		free(path);
	}
}

static void make_big_dir(void)
{
	uint64_t i;

	if (!opt.big_dir)
		return;
	if (mkdirat(rootfd, "bigdir", 0700))
		die("mkdir bigdir: %s", strerror(errno));
	dirs[nr_dirs].path = xstrdup("bigdir");
	dirs[nr_dirs].depth = 1;
	nr_dirs++;

	for (i = 0; i < opt.big_dir; i++) {
		char name[300], path[320];
		size_t n = snprintf(name, sizeof(name), "e%07" PRIu64 "_", i);
		size_t extra = rnd_below(48);
		uint64_t size = rnd_below(4) ? 0 : rnd_range(1, 256);
		int fd;

		while (extra--)
			name[n++] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"[rnd_below(65)];
		name[n] = '\0';
		snprintf(path, sizeof(path), "bigdir/%s", name);

		fd = create_file(path);
		write_content(fd, path, size);
		st.bytes += size;
		st.files++;
		finish_file(fd, path);
	}
}

/* Directory modes, owners, xattrs and times last, deepest first (creating
 * entries changes a directory's mtime; chmod/utimens of a child does not). */
static void finish_dirs(void)
{
	size_t i = nr_dirs;

	while (i--) {
		const char *path = dirs[i].path[0] ? dirs[i].path : ".";
		struct timespec ts[2];
		int fd = openat(rootfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (fd < 0)
			die("open %s: %s", path, strerror(errno));
		set_owner(path);
		set_xattrs(fd, path);
		if (fchmod(fd, i ? random_dir_mode() : 0755))
			die("chmod %s: %s", path, strerror(errno));
		random_time(ts);
		if (futimens(fd, ts))
			die("futimens %s: %s", path, strerror(errno));
		close(fd);
	}
	st.dirs = nr_dirs - 1;
}

/* ----------------------------------------------------------------- main */

/* mkdir -p */
static void mkdir_p(const char *dir)
{
	char *p = xstrdup(dir), *s = p;

	for (;;) {
		while (*s == '/')
			s++;
		s = strchr(s, '/');
		if (s)
			*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			die("mkdir %s: %s", p, strerror(errno));
		if (!s)
			break;
		*s++ = '/';
	}
	free(p);
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: %s [--seed N] [--files N] [--max-size BYTES] [--big-dir N]\n"
		"               [--no-special] [--no-owners] [--quiet] DIR\n"
		"\n"
		"Generate a deterministic file tree in DIR (created if missing, must be empty).\n"
		"  --seed N          PRNG seed (default 1)\n"
		"  --files N         non-directory entries to create (default 1000)\n"
		"  --max-size BYTES  largest regular file (default 1M; K/M/G suffixes;\n"
		"                    sparse files reach up to 8M logical regardless)\n"
		"  --big-dir N       also create bigdir/ with N small files\n"
		"  --no-special      no device nodes even when root\n"
		"  --no-owners       no varied owners even when root\n"
		"  --quiet           no summary line\n",
		prog);
	exit(status);
}

int main(int argc, char **argv)
{
	const char *dir = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		else if (!strcmp(a, "--no-special"))
			opt.special = false;
		else if (!strcmp(a, "--no-owners"))
			opt.owners = false;
		else if (!strcmp(a, "--quiet") || !strcmp(a, "-q"))
			opt.quiet = true;
		else if (!strcmp(a, "--seed") || !strcmp(a, "--files") ||
			 !strcmp(a, "--max-size") || !strcmp(a, "--big-dir")) {
			uint64_t v;

			if (i + 1 >= argc)
				die("%s needs an argument", a);
			v = parse_u64(a, argv[++i]);
			if (!strcmp(a, "--seed"))
				opt.seed = v;
			else if (!strcmp(a, "--files"))
				opt.nr_files = v;
			else if (!strcmp(a, "--max-size"))
				opt.max_size = v;
			else
				opt.big_dir = v;
		} else if (a[0] == '-' && a[1]) {
			fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
			usage(16);
		} else if (!dir) {
			dir = a;
		} else {
			fprintf(stderr, "%s: more than one DIR given\n", prog);
			usage(16);
		}
	}
	if (!dir) {
		fprintf(stderr, "%s: DIR missing\n", prog);
		usage(16);
	}
	if (opt.nr_files > 100000000ULL)
		die("--files: too many (at most 100000000)");
	if (opt.big_dir > 100000000ULL)
		die("--big-dir: too many (at most 100000000)");

	mkdir_p(dir);
	rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		die("open %s: %s", dir, strerror(errno));
	{
		/* refuse a non-empty directory: the tree would not be deterministic */
		int fd = dup(rootfd);
		DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;

		if (!dp)
			die("opendir %s: %s", dir, strerror(errno));
		while ((de = readdir(dp)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				die("%s is not empty", dir);
		closedir(dp);
	}

	opt.root = geteuid() == 0;
	rng_state = opt.seed;
	umask(0);
	buf = xmalloc(CHUNK + 8);

	make_dirs();
	dirs = xrealloc(dirs, (nr_dirs + 2) * sizeof(*dirs));
	make_entries();
	make_big_dir();
	finish_dirs();

	if (!opt.quiet)
		printf("gentree: seed %" PRIu64 ": %" PRIu64 " files, %" PRIu64 " dirs, %"
		       PRIu64 " symlinks, %" PRIu64 " hardlinks, %" PRIu64 " sparse, %"
		       PRIu64 " fifos, %" PRIu64 " devices, %" PRIu64 " xattrs, %" PRIu64
		       " bytes\n", opt.seed, st.files, st.dirs, st.symlinks, st.hardlinks,
		       st.sparse, st.fifos, st.devices, st.xattrs, st.bytes);
	return 0;
}
