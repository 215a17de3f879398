/* test_fs_passes.c - the filesystem passes of fsck (fs_passes.c).
 *
 * For each kind of damage: build a small tree on an emulated device, damage
 * it with ordinary transactions (so buckets and accounting stay exact and
 * only the filesystem-level finding remains), then, opened the way fsck
 * opens it:
 *   -n reports the named finding and changes nothing;
 *   -y reports exactly the same findings in the same order and repairs them;
 *   a following -n on the repaired state is clean, the structural verifier
 *   agrees, every file's data is intact, and after writing the repairs and
 *   reopening, -n is still clean. */
#include "fsck_test.h"
#include "verify.h"
#include "fs/fs.h"
#include "btree/trans.h"
#include <dirent.h>
#include <sys/stat.h>


struct file {
	const char *path;
	u64 inum;
	u8 *data;
	size_t len;
};

struct tree {
	u64 a, b, c, f1, f2, f3, empty, sym;
	struct file files[4];
	unsigned nr_files;
};

static struct blockdev *bd;

static u8 *pattern(size_t len, unsigned seed)
{
	u8 *p = malloc(len);
	u64 s = seed;
	for (size_t i = 0; i < len; i++)
		p[i] = (u8)rng_next(&s);
	return p;
}

static int open_fs(unsigned flags, struct bkfs_fs **fs)
{
	struct blockdev *dev = bd; /* the open takes the array's entries */
	return test_open_fs(&dev, 1, flags, fs);
}

static int add_file(struct bkfs_fs *fs, struct tree *t, u64 dir, const char *name, const char *path,
		    size_t len, unsigned seed, u64 *inum)
{
	int ret = bkfs_create(fs, dir, name, S_IFREG | 0644, 0, 0, 0, NULL, inum, NULL);
	if (ret)
		return ret;
	struct file *f = &t->files[t->nr_files++];
	f->path = path;
	f->inum = *inum;
	f->len = len;
	f->data = pattern(len, seed);
	ssize_t n = bkfs_file_write(fs, *inum, 0, f->data, len);
	return n == (ssize_t)len ? 0 : -BKFS_E_IO;
}

/* /a/ /a/b/ /c/ /a/f1 (10000 B) /a/b/f2 (100 B, inline) /c/f3 (300000 B)
 * /c/h1 (hard link to f1) /c/empty /s -> a/f1 */
static int build_tree(struct tree *t)
{
	struct bkfs_fs *fs;
	struct printbuf err = PRINTBUF;
	struct format_opts fo = { .force = true };
	struct blockdev *bds[1] = { bd };
	memset(t, 0, sizeof(*t));
	int ret = bkfs_format_devs(bds, 1, &fo, &err);
	pb_exit(&err);
	if (ret || (ret = open_fs(0, &fs)))
		return ret;
	if ((ret = bkfs_create(fs, BKFS_ROOT_INO, "a", S_IFDIR | 0755, 0, 0, 0, NULL, &t->a, NULL)) ||
	    (ret = bkfs_create(fs, t->a, "b", S_IFDIR | 0755, 0, 0, 0, NULL, &t->b, NULL)) ||
	    (ret = bkfs_create(fs, BKFS_ROOT_INO, "c", S_IFDIR | 0755, 0, 0, 0, NULL, &t->c, NULL)) ||
	    (ret = add_file(fs, t, t->a, "f1", "/a/f1", 10000, 1, &t->f1)) ||
	    (ret = add_file(fs, t, t->b, "f2", "/a/b/f2", 100, 2, &t->f2)) ||
	    (ret = add_file(fs, t, t->c, "f3", "/c/f3", 300000, 3, &t->f3)) ||
	    (ret = bkfs_link(fs, t->f1, t->c, "h1")) ||
	    (ret = bkfs_create(fs, t->c, "empty", S_IFREG | 0644, 0, 0, 0, NULL, &t->empty, NULL)) ||
	    (ret = bkfs_create(fs, BKFS_ROOT_INO, "s", S_IFLNK | 0777, 0, 0, 0, "a/f1", &t->sym, NULL))) {
		bkfs_close_nowrite(fs);
		return ret;
	}
	return bkfs_close(fs);
}

static void free_tree(struct tree *t)
{
	for (unsigned i = 0; i < t->nr_files; i++)
		free(t->files[i].data);
}

/* ---- damage helpers (ordinary transactions) ---- */

static int commit1(struct trans *t, int ret)
{
	if (!ret)
		ret = trans_commit(t, 0);
	trans_exit(t);
	return ret;
}

static int del_dirent(struct bkfs_fs *fs, u64 dir, const char *name)
{
	struct trans t;
	trans_init(&t, fs);
	return commit1(&t, bkfs_dirent_remove(&t, dir, name, strlen(name), NULL, NULL));
}

static int add_dirent(struct bkfs_fs *fs, u64 dir, const char *name, u64 inum, unsigned type)
{
	struct trans t;
	trans_init(&t, fs);
	return commit1(&t, bkfs_dirent_add(&t, dir, name, strlen(name), inum, type));
}

static int del_inode(struct bkfs_fs *fs, u64 inum)
{
	struct trans t;
	trans_init(&t, fs);
	return commit1(&t, trans_delete(&t, BTREE_ID_inodes, POS(0, inum)));
}

/* the inode records no name (as on a filesystem older than format 4) */
static int strip_name(struct bkfs_fs *fs, u64 inum)
{
	struct trans t;
	struct bkfs_inode in;
	trans_init(&t, fs);
	int ret = bkfs_inode_get(&t, inum, &in);
	return commit1(&t, ret ? ret : bkfs_inode_write_named(&t, inum, &in, NULL));
}

/* the inode records name in dir */
static void check_name(struct bkfs_fs *fs, u64 inum, u64 dir, const char *name)
{
	struct trans t;
	struct bkfs_inode in;
	struct inode_names nm;
	trans_init(&t, fs);
	CHECK_EQ(bkfs_inode_get_named(&t, inum, &in, &nm), 0);
	trans_exit(&t);
	CHECK_EQ(in.parent, dir);
	CHECK(nm.nr >= 1 && nm.len[0] == strlen(name) && !memcmp(nm.name[0], name, nm.len[0]));
}

enum field { F_NLINK, F_SIZE, F_SECTORS, F_PARENT, F_MODE };
static int set_field(struct bkfs_fs *fs, u64 inum, enum field f, u64 v)
{
	struct trans t;
	struct bkfs_inode in;
	trans_init(&t, fs);
	int ret = bkfs_inode_get(&t, inum, &in);
	if (!ret) {
		switch (f) {
		case F_NLINK: in.nlink = v; break;
		case F_SIZE: in.size = v; break;
		case F_SECTORS: in.sectors = v; break;
		case F_PARENT: in.parent = v; break;
		case F_MODE: in.mode = v; break;
		}
		ret = bkfs_inode_write(&t, inum, &in);
	}
	return commit1(&t, ret);
}

static int set_dtype(struct bkfs_fs *fs, u64 dir, const char *name, unsigned type)
{
	struct trans t;
	struct bkey_buf kb;
	u64 slot;
	trans_init(&t, fs);
	int ret = bkfs_dirent_lookup(&t, dir, name, strlen(name), NULL, NULL, &slot);
	if (!ret)
		ret = btree_lookup(fs, BTREE_ID_dirents, POS(dir, slot), &kb);
	if (!ret) {
		((struct bkfs_dirent *)bkey_val(&kb.k))->d_type = type;
		ret = trans_update(&t, BTREE_ID_dirents, &kb.k);
	}
	return commit1(&t, ret);
}

/* data for an inode number that has no inode */
static int orphan_data(struct bkfs_fs *fs, u64 inum, const void *buf, size_t len)
{
	struct trans t;
	s64 delta = 0;
	trans_init(&t, fs);
	return commit1(&t, extent_write(&t, inum, 0, buf, len, &delta));
}

static int orphan_xattr(struct bkfs_fs *fs, u64 inum)
{
	struct trans t;
	trans_init(&t, fs);
	return commit1(&t, bkfs_xattr_set(&t, inum, "user.x", "value", 5, 0));
}

/* ---- running the pass ---- */

static void ctx_init(struct fsck_ctx *c, struct bkfs_fs *fs, enum fsck_mode mode)
{
	memset(c, 0, sizeof(*c));
	c->fs = fs;
	c->opts.mode = mode;
	c->pass = FSCK_PASS_check_filesystem;
}

static void ctx_exit(struct fsck_ctx *c)
{
	for (size_t i = 0; i < c->nr; i++) {
		free(c->f[i].object);
		free(c->f[i].msg);
	}
	free(c->f);
}

static bool has(struct fsck_ctx *c, unsigned err)
{
	for (size_t i = 0; i < c->nr; i++)
		if (c->f[i].err == err)
			return true;
	return false;
}

static void print_findings(const char *tag, struct fsck_ctx *c)
{
	for (size_t i = 0; i < c->nr; i++)
		fprintf(stderr, "  [%s] %s: %s: %s -> %s%s\n", tag, fsck_err_table[c->f[i].err].name, c->f[i].object,
			c->f[i].msg ? c->f[i].msg : "", c->f[i].action, c->f[i].fixed ? " (fixed)" : "");
}

static bool same_findings(struct fsck_ctx *a, struct fsck_ctx *b)
{
	if (a->nr != b->nr)
		return false;
	for (size_t i = 0; i < a->nr; i++)
		if (a->f[i].err != b->f[i].err || strcmp(a->f[i].object, b->f[i].object) ||
		    strcmp(a->f[i].msg ? a->f[i].msg : "", b->f[i].msg ? b->f[i].msg : "") ||
		    strcmp(a->f[i].action, b->f[i].action))
			return false;
	return true;
}

static unsigned count_clean(struct bkfs_fs *fs, const char *tag)
{
	struct fsck_ctx c;
	ctx_init(&c, fs, FSCK_MODE_NO);
	int ret = fsck_check_filesystem(&c);
	CHECK_EQ(ret, 0);
	if (c.nr) {
		fprintf(stderr, "%s: not clean:\n", tag);
		print_findings("again", &c);
	}
	unsigned n = c.nr;
	ctx_exit(&c);
	return n;
}

static void check_data(struct bkfs_fs *fs, struct tree *t, const char *tag)
{
	for (unsigned i = 0; i < t->nr_files; i++) {
		struct file *f = &t->files[i];
		struct bkfs_inode in;
		u8 *buf = malloc(f->len + 1);
		int ret = bkfs_inode_find(fs, f->inum, &in);
		if (ret) {
			fprintf(stderr, "%s: %s (inode %llu) lost: %s\n", tag, f->path, (unsigned long long)f->inum,
				bkfs_strerror(ret));
			CHECK(0);
			free(buf);
			continue;
		}
		CHECK(S_ISREG(in.mode));
		CHECK(in.size >= f->len);
		ssize_t n = bkfs_file_read(fs, f->inum, 0, buf, f->len);
		CHECK_EQ(n, (ssize_t)f->len);
		bool same = n == (ssize_t)f->len && !memcmp(buf, f->data, f->len);
		if (!same)
			fprintf(stderr, "%s: %s data differs\n", tag, f->path);
		CHECK(same);
		/* and through the extent layer directly */
		memset(buf, 0, f->len);
		CHECK_EQ(extent_read(fs, f->inum, 0, buf, f->len), 0);
		CHECK(!memcmp(buf, f->data, f->len));
		free(buf);
	}
}

static void check_path(struct bkfs_fs *fs, const char *path, u64 want)
{
	u64 inum = 0;
	int ret = bkfs_lookup_path(fs, path, &inum, NULL);
	if (ret || inum != want)
		fprintf(stderr, "path %s: %s, inode %llu, want %llu\n", path, bkfs_strerror(ret),
			(unsigned long long)inum, (unsigned long long)want);
	CHECK_EQ(ret, 0);
	CHECK_EQ(inum, want);
}

static void check_lf(struct bkfs_fs *fs, u64 inum)
{
	char p[64];
	snprintf(p, sizeof(p), "/lost+found/#%llu", (unsigned long long)inum);
	check_path(fs, p, inum);
}

typedef int (*damage_fn)(struct bkfs_fs *fs, struct tree *t);
typedef void (*after_fn)(struct bkfs_fs *fs, struct tree *t);

/* The whole cycle for one kind of damage; want[] are the findings -n must
 * name. */
/* the -y run's count of inodes recreated, for the after checks */
static u64 last_recreated;

static void scenario(const char *name, damage_fn damage, const unsigned *want, unsigned nr_want, after_fn after)
{
	struct tree t;
	struct bkfs_fs *fs;
	struct fsck_ctx n, y;
	fprintf(stderr, "scenario %s\n", name);
	CHECK_EQ(build_tree(&t), 0);

	REQUIRE_EQ(open_fs(0, &fs), 0);
	CHECK_EQ(damage(fs, &t), 0);
	CHECK_EQ(bkfs_close(fs), 0);

	/* -n */
	REQUIRE_EQ(open_fs(FSCK_OPEN_FLAGS, &fs), 0);
	u64 version = fs->key_version;
	ctx_init(&n, fs, FSCK_MODE_NO);
	CHECK_EQ(fsck_check_filesystem(&n), 0);
	for (unsigned i = 0; i < nr_want; i++) {
		if (!has(&n, want[i]))
			fprintf(stderr, "%s: -n did not report %s\n", name, fsck_err_table[want[i]].name);
		CHECK(has(&n, want[i]));
	}
	if (!nr_want)
		CHECK_EQ(n.nr, 0);
	CHECK_EQ(fs->key_version, version); /* nothing changed */
	CHECK(fs->flags & BKFS_OPEN_RDONLY);
	bkfs_close_nowrite(fs);

	/* -n again, the way bkfs fsck runs it on a sound topology: the scans
	 * run inside check_allocations' walk; the same findings */
	struct fsck_ctx fz;
	REQUIRE_EQ(open_fs(FSCK_OPEN_FLAGS, &fs), 0);
	ctx_init(&fz, fs, FSCK_MODE_NO);
	fz.fuse_fs = true;
	fz.pass = FSCK_PASS_check_allocations;
	CHECK_EQ(fsck_check_allocations(&fz), 0);
	CHECK_EQ(fz.nr, 0); /* the damage is above the allocation level */
	CHECK(fz.fs_prescan != NULL);
	fz.pass = FSCK_PASS_check_filesystem;
	CHECK_EQ(fsck_check_filesystem(&fz), 0);
	CHECK(fz.fs_prescan == NULL);
	bool same_fused = same_findings(&n, &fz);
	if (!same_fused) {
		print_findings("-n", &n);
		print_findings("fused", &fz);
	}
	CHECK(same_fused);
	ctx_exit(&fz);
	bkfs_close_nowrite(fs);

	/* -y: the same findings, repaired */
	REQUIRE_EQ(open_fs(FSCK_OPEN_FLAGS, &fs), 0);
	ctx_init(&y, fs, FSCK_MODE_YES);
	CHECK_EQ(fsck_check_filesystem(&y), 0);
	bool same = same_findings(&n, &y);
	if (!same || getenv("VERBOSE")) {
		print_findings("-n", &n);
		print_findings("-y", &y);
	}
	CHECK(same);
	for (size_t i = 0; i < y.nr; i++)
		CHECK(y.f[i].fixed);
	CHECK_EQ(count_clean(fs, name), 0);
	CHECK_EQ(verify_fs(fs, &(struct verify_opts){ .tag = name }), 0);
	check_data(fs, &t, name);
	CHECK_EQ(n.recreated_inodes, y.recreated_inodes);
	last_recreated = y.recreated_inodes;
	if (after)
		after(fs, &t);

	/* -p: the same findings; only the PREEN ones are repaired, and a
	 * following -n reports exactly the others */
	{
		struct bkfs_fs *pfs;
		struct fsck_ctx p, again;
		REQUIRE_EQ(open_fs(FSCK_OPEN_FLAGS, &pfs), 0);
		ctx_init(&p, pfs, FSCK_MODE_PREEN);
		CHECK_EQ(fsck_check_filesystem(&p), 0);
		CHECK(same_findings(&n, &p));
		ctx_init(&again, pfs, FSCK_MODE_NO);
		CHECK_EQ(fsck_check_filesystem(&again), 0);
		size_t j = 0;
		bool ok = true;
		for (size_t i = 0; i < p.nr; i++) {
			CHECK_EQ(p.f[i].fixed, !!(fsck_err_table[p.f[i].err].flags & FSCK_PREEN));
			if (p.f[i].fixed)
				continue;
			ok &= j < again.nr && again.f[j].err == p.f[i].err;
			j++;
		}
		ok &= j == again.nr;
		if (!ok) {
			fprintf(stderr, "%s: after -p:\n", name);
			print_findings("-p", &p);
			print_findings("then -n", &again);
		}
		CHECK(ok);
		ctx_exit(&p);
		ctx_exit(&again);
		bkfs_close_nowrite(pfs);
	}

	/* write the repairs the way the orchestrator does, reopen */
	fs->flags &= ~(BKFS_OPEN_RDONLY | BKFS_OPEN_NOJOURNAL);
	CHECK_EQ(bkfs_close(fs), 0);
	REQUIRE_EQ(open_fs(FSCK_OPEN_FLAGS, &fs), 0);
	CHECK_EQ(count_clean(fs, name), 0);
	check_data(fs, &t, name);
	if (after)
		after(fs, &t);
	bkfs_close_nowrite(fs);

	ctx_exit(&n);
	ctx_exit(&y);
	free_tree(&t);
}

#define E(x) FSCK_ERR_##x
#define SCEN(name, fn, after, ...) do { \
	static const unsigned w_[] = { __VA_ARGS__ }; \
	scenario(name, fn, w_, ARRAY_SIZE(w_), after); } while (0)

/* ---- the kinds of damage ---- */

static int d_none(struct bkfs_fs *fs, struct tree *t) { (void)fs; (void)t; return 0; }

static void a_normal_paths(struct bkfs_fs *fs, struct tree *t)
{
	check_path(fs, "/a/f1", t->f1);
	check_path(fs, "/c/h1", t->f1);
	check_path(fs, "/a/b/f2", t->f2);
	check_path(fs, "/c/f3", t->f3);
	check_path(fs, "/s", t->sym);
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, t->f1, &in), 0);
	CHECK_EQ(in.nlink, 2);
}

/* a file's only dirent lost: it goes back under the name its inode records */
static int d_unreachable(struct bkfs_fs *fs, struct tree *t)
{
	return del_dirent(fs, t->b, "f2");
}
static void a_relinked(struct bkfs_fs *fs, struct tree *t)
{
	a_normal_paths(fs, t);
	check_name(fs, t->f2, t->b, "f2");
	CHECK(bkfs_lookup_path(fs, "/lost+found", NULL, NULL) == -BKFS_E_NOENT);
}

/* the same with no recorded name: lost+found, where it records its new name */
static int d_unreachable_unnamed(struct bkfs_fs *fs, struct tree *t)
{
	int ret = strip_name(fs, t->f2);
	return ret ? ret : del_dirent(fs, t->b, "f2");
}
static void a_unreachable(struct bkfs_fs *fs, struct tree *t)
{
	check_lf(fs, t->f2);
	char name[32];
	u64 lf;
	snprintf(name, sizeof(name), "#%llu", (unsigned long long)t->f2);
	CHECK_EQ(bkfs_lookup_path(fs, "/lost+found", &lf, NULL), 0);
	check_name(fs, t->f2, lf, name);
	struct bkfs_inode in;
	CHECK_EQ(bkfs_lookup_path(fs, "/lost+found", NULL, &in), 0);
	CHECK(S_ISDIR(in.mode));
	CHECK_EQ(in.mode & 07777, 0700);
}

static int d_unreachable_dir(struct bkfs_fs *fs, struct tree *t)
{
	return del_dirent(fs, t->a, "b");
}
static int d_unreachable_dir_unnamed(struct bkfs_fs *fs, struct tree *t)
{
	int ret = strip_name(fs, t->b);
	return ret ? ret : del_dirent(fs, t->a, "b");
}

/* one of two links lost, the one the inode records: it is made again */
static int d_lost_link(struct bkfs_fs *fs, struct tree *t)
{
	return del_dirent(fs, t->a, "f1");
}
static void a_lost_link(struct bkfs_fs *fs, struct tree *t)
{
	a_normal_paths(fs, t);
	check_name(fs, t->f1, t->a, "f1");
}

/* the second link lost (format 5 records it too): made again */
static int d_lost_link2(struct bkfs_fs *fs, struct tree *t)
{
	return del_dirent(fs, t->c, "h1");
}
/* both links lost: back under both names */
static int d_lost_links(struct bkfs_fs *fs, struct tree *t)
{
	int ret = del_dirent(fs, t->a, "f1");
	return ret ? ret : del_dirent(fs, t->c, "h1");
}
static void a_links_back(struct bkfs_fs *fs, struct tree *t)
{
	a_normal_paths(fs, t);
	check_name(fs, t->f1, t->a, "f1");
	CHECK(bkfs_lookup_path(fs, "/lost+found", NULL, NULL) == -BKFS_E_NOENT);
}

/* the recorded name is taken by another file: lost+found */
static int d_name_taken(struct bkfs_fs *fs, struct tree *t)
{
	int ret = del_dirent(fs, t->b, "f2");
	return ret ? ret : add_dirent(fs, t->b, "f2", t->f3, DT_REG);
}
static void a_name_taken(struct bkfs_fs *fs, struct tree *t)
{
	check_lf(fs, t->f2);
	check_path(fs, "/a/b/f2", t->f3);
	check_path(fs, "/c/f3", t->f3);
}

/* a recorded name in the wrong directory, or malformed: the name of the
 * file's one dirent is recorded */
static int d_name_wrong(struct bkfs_fs *fs, struct tree *t)
{
	return set_field(fs, t->f2, F_PARENT, t->c);
}
static void a_name_right(struct bkfs_fs *fs, struct tree *t)
{
	a_normal_paths(fs, t);
	check_name(fs, t->f2, t->b, "f2");
}
static void a_unreachable_dir(struct bkfs_fs *fs, struct tree *t)
{
	char p[80];
	check_lf(fs, t->b);
	snprintf(p, sizeof(p), "/lost+found/#%llu/f2", (unsigned long long)t->b);
	check_path(fs, p, t->f2);
}

static int d_missing_inode(struct bkfs_fs *fs, struct tree *t)
{
	int ret = del_inode(fs, t->empty);
	return ret ? ret : del_inode(fs, t->f3);
}
static void a_missing_inode(struct bkfs_fs *fs, struct tree *t)
{
	check_path(fs, "/c/f3", t->f3); /* recreated from its extents, still at its name */
	CHECK(bkfs_lookup_path(fs, "/c/empty", NULL, NULL) == -BKFS_E_NOENT);
	CHECK_EQ(last_recreated, 1); /* f3; empty left nothing to make it from */
}

/* a symlink's inode lost, its target (inline data) and name left: it comes
 * back as a symlink with the same target (was: a regular file in
 * lost+found, its name removed) */
static int d_missing_symlink(struct bkfs_fs *fs, struct tree *t) { return del_inode(fs, t->sym); }
static void a_missing_symlink(struct bkfs_fs *fs, struct tree *t)
{
	check_path(fs, "/s", t->sym);
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, t->sym, &in), 0);
	CHECK(S_ISLNK(in.mode));
	char buf[64];
	ssize_t n = bkfs_readlink(fs, t->sym, buf, sizeof(buf));
	CHECK_EQ(n, 4);
	CHECK(n == 4 && !memcmp(buf, "a/f1", 4));
	CHECK_EQ(last_recreated, 1);
}

static int d_nlink(struct bkfs_fs *fs, struct tree *t)
{
	int ret = set_field(fs, t->f1, F_NLINK, 5);
	return ret ? ret : set_field(fs, t->a, F_NLINK, 7);
}

static int d_isize(struct bkfs_fs *fs, struct tree *t)
{
	int ret = set_field(fs, t->f3, F_SIZE, 100);
	return ret ? ret : set_field(fs, t->f2, F_SIZE, 10); /* inline data: exact bytes */
}
static void a_isize(struct bkfs_fs *fs, struct tree *t)
{
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, t->f2, &in), 0);
	CHECK_EQ(in.size, 100);
	CHECK_EQ(bkfs_inode_find(fs, t->f3, &in), 0);
	CHECK_EQ(in.size, 303104); /* end of the last extent (whole blocks) */
}

static int d_isectors(struct bkfs_fs *fs, struct tree *t)
{
	int ret = set_field(fs, t->f1, F_SECTORS, 1);
	return ret ? ret : set_field(fs, t->b, F_SECTORS, 8);
}

static int d_loop(struct bkfs_fs *fs, struct tree *t)
{
	/* re-point: the root's entry "a" goes, b gets an entry naming a */
	int ret = del_dirent(fs, BKFS_ROOT_INO, "a");
	return ret ? ret : add_dirent(fs, t->b, "x", t->a, DT_DIR);
}
static void a_loop(struct bkfs_fs *fs, struct tree *t)
{
	char p[80];
	check_lf(fs, t->a);
	snprintf(p, sizeof(p), "/lost+found/#%llu/b/f2", (unsigned long long)t->a);
	check_path(fs, p, t->f2);
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, t->a, &in), 0);
	u64 lf;
	CHECK_EQ(bkfs_lookup_path(fs, "/lost+found", &lf, NULL), 0);
	CHECK_EQ(in.parent, lf);
}

static int d_root(struct bkfs_fs *fs, struct tree *t)
{
	(void)t;
	return del_inode(fs, BKFS_ROOT_INO);
}

static int d_dtype(struct bkfs_fs *fs, struct tree *t)
{
	return set_dtype(fs, t->a, "f1", DT_DIR);
}

static int d_multi(struct bkfs_fs *fs, struct tree *t)
{
	return add_dirent(fs, t->c, "dup", t->b, DT_DIR);
}
static void a_multi(struct bkfs_fs *fs, struct tree *t)
{
	check_path(fs, "/a/b", t->b);
	CHECK(bkfs_lookup_path(fs, "/c/dup", NULL, NULL) == -BKFS_E_NOENT);
}

static int d_parent(struct bkfs_fs *fs, struct tree *t)
{
	return set_field(fs, t->b, F_PARENT, t->c);
}

static int d_non_dir(struct bkfs_fs *fs, struct tree *t)
{
	/* an entry inside a regular file: its target loses that link */
	return add_dirent(fs, t->f1, "inside", t->f3, DT_REG);
}

static int d_orphans(struct bkfs_fs *fs, struct tree *t)
{
	static char buf[5000];
	memset(buf, 'z', sizeof(buf));
	int ret = orphan_data(fs, 900000, buf, sizeof(buf));
	return ret ? ret : orphan_xattr(fs, 900100);
}
static void a_orphans(struct bkfs_fs *fs, struct tree *t)
{
	check_lf(fs, 900000);
	check_lf(fs, 900100);
	char buf[5000];
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, 900000, &in), 0);
	CHECK_EQ(in.size, 8192); /* a 4 KiB-block extent */
	CHECK_EQ(bkfs_file_read(fs, 900000, 0, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	CHECK(buf[0] == 'z' && buf[4999] == 'z');
	char v[8];
	struct trans tr;
	trans_init(&tr, fs);
	CHECK_EQ(bkfs_xattr_get(&tr, 900100, "user.x", v, sizeof(v)), 5);
	trans_exit(&tr);
}

static int d_bad_mode(struct bkfs_fs *fs, struct tree *t)
{
	int ret = set_field(fs, t->b, F_MODE, 0755); /* no file type */
	return ret ? ret : set_field(fs, t->c, F_SIZE, 4096);
}
static void a_bad_mode(struct bkfs_fs *fs, struct tree *t)
{
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, t->b, &in), 0);
	CHECK_EQ(in.mode, S_IFDIR | 0755);
	check_path(fs, "/a/b/f2", t->f2);
}

static int d_dir_data(struct bkfs_fs *fs, struct tree *t)
{
	static char buf[3000];
	memset(buf, 'd', sizeof(buf));
	return orphan_data(fs, t->c, buf, sizeof(buf)); /* data keys under a directory */
}

static int d_many(struct bkfs_fs *fs, struct tree *t)
{
	int ret;
	if ((ret = del_dirent(fs, t->b, "f2")) || (ret = set_field(fs, t->f1, F_NLINK, 1)) ||
	    (ret = set_field(fs, t->f3, F_SIZE, 0)) || (ret = del_inode(fs, t->empty)) ||
	    (ret = set_dtype(fs, BKFS_ROOT_INO, "s", DT_REG)) || (ret = set_field(fs, BKFS_ROOT_INO, F_NLINK, 9)))
		return ret;
	return 0;
}

/* More names than a 16-bit count holds: the checker's table keeps such
 * counts on the side. LINKS names for f1 in the root, in batched
 * transactions; nlink is set to want_nlink(LINKS) + delta. */
#define LINKS 70000u
static int many_links(struct bkfs_fs *fs, struct tree *t, int delta)
{
	char name[32];
	int ret = 0;
	for (unsigned i = 0; i < LINKS && !ret;) {
		struct trans tr;
		trans_init(&tr, fs);
		for (unsigned j = 0; j < 500 && i < LINKS && !ret; j++, i++) {
			snprintf(name, sizeof(name), "link%u", i);
			ret = bkfs_dirent_add(&tr, BKFS_ROOT_INO, name, strlen(name), t->f1, DT_REG);
		}
		ret = commit1(&tr, ret);
	}
	/* f1 had two names */
	return ret ? ret : set_field(fs, t->f1, F_NLINK, (u64)(2 + LINKS + delta));
}
static void a_links(struct bkfs_fs *fs, struct tree *t)
{
	struct bkfs_inode in;
	CHECK_EQ(bkfs_inode_find(fs, t->f1, &in), 0);
	CHECK_EQ(in.nlink, 2 + LINKS);
	check_path(fs, "/link69999", t->f1);
}
static int d_links_ok(struct bkfs_fs *fs, struct tree *t) { return many_links(fs, t, 0); }
static int d_links_bad(struct bkfs_fs *fs, struct tree *t) { return many_links(fs, t, -3); }

int main(void)
{
	struct emu_opts o = { .size = 64 << 20, .seed = 7 };
	REQUIRE_EQ(emu_dev_create(&o, &bd), 0);
	bd->keep_open = true;

	scenario("clean", d_none, NULL, 0, a_normal_paths);
	SCEN("unreachable", d_unreachable, a_relinked, E(inode_unreachable));
	SCEN("unreachable_unnamed", d_unreachable_unnamed, a_unreachable, E(inode_unreachable), E(lost_found_missing),
	     E(inode_link_count_wrong));
	SCEN("unreachable_dir", d_unreachable_dir, a_relinked, E(inode_unreachable));
	SCEN("unreachable_dir_unnamed", d_unreachable_dir_unnamed, a_unreachable_dir, E(inode_unreachable),
	     E(lost_found_missing));
	SCEN("name_taken", d_name_taken, a_name_taken, E(inode_unreachable), E(lost_found_missing),
	     E(inode_link_count_wrong));
	SCEN("name_wrong", d_name_wrong, a_name_right, E(inode_name_wrong));
	SCEN("lost_link", d_lost_link, a_lost_link, E(inode_link_count_wrong));
	SCEN("lost_link2", d_lost_link2, a_links_back, E(inode_link_count_wrong));
	SCEN("lost_links", d_lost_links, a_links_back, E(inode_unreachable));
	SCEN("missing_inode", d_missing_inode, a_missing_inode, E(dirent_to_missing_inode),
	     E(extent_for_missing_inode));
	SCEN("missing_symlink_inode", d_missing_symlink, a_missing_symlink, E(dirent_to_missing_inode),
	     E(extent_for_missing_inode));
	SCEN("nlink", d_nlink, a_normal_paths, E(inode_link_count_wrong));
	SCEN("i_size", d_isize, a_isize, E(inode_i_size_wrong));
	SCEN("i_sectors", d_isectors, a_normal_paths, E(inode_i_sectors_wrong));
	SCEN("loop", d_loop, a_loop, E(dir_loop));
	SCEN("root", d_root, a_normal_paths, E(root_inode_missing));
	SCEN("d_type", d_dtype, a_normal_paths, E(dirent_d_type_wrong));
	SCEN("multiple_links", d_multi, a_multi, E(dir_multiple_links));
	SCEN("parent", d_parent, a_normal_paths, E(dir_parent_wrong));
	SCEN("dirent_in_non_dir", d_non_dir, a_normal_paths, E(dirent_in_non_dir));
	SCEN("orphans", d_orphans, a_orphans, E(extent_for_missing_inode), E(xattr_for_missing_inode),
	     E(lost_found_missing));
	SCEN("bad_mode", d_bad_mode, a_bad_mode, E(inode_invalid));
	SCEN("dir_data", d_dir_data, a_normal_paths, E(inode_invalid));
	scenario("many_links_clean", d_links_ok, NULL, 0, a_links);
	SCEN("many_links_nlink", d_links_bad, a_links, E(inode_link_count_wrong));
	SCEN("many", d_many, NULL, E(inode_unreachable), E(inode_link_count_wrong), E(inode_i_size_wrong),
	     E(dirent_to_missing_inode), E(dirent_d_type_wrong));

	bd->keep_open = false;
	bd_close(bd);
	TEST_MAIN_END();
}
