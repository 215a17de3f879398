/* fsck_test.h - what the checker's unit tests (test_topology, test_gc) share:
 * opening an image the way bkfs fsck does, collecting a run's findings and
 * writing its repairs the way it does (one checkpoint), the -n / -y / -n
 * cycle, and raw node edits on an emulated device's media (with the format
 * layer's node_buf_* key edits, as bkfs debug corrupt makes them).
 *
 * A test may define FSCK_TEST_VERBOSE_ENV (the environment variable that
 * prints every run's findings) before including this. */
#ifndef BKFS_FSCK_TEST_H
#define BKFS_FSCK_TEST_H
#include "test.h"
#include "fsck/fsck.h"

#ifndef FSCK_TEST_VERBOSE_ENV
#define FSCK_TEST_VERBOSE_ENV "FSCK_TEST_VERBOSE"
#endif

/* the flags bkfs fsck opens a filesystem with */
#define FSCK_FLAGS (BKFS_OPEN_RDONLY | BKFS_OPEN_FSCK | BKFS_OPEN_NOJOURNAL | BKFS_OPEN_DEGRADED)

/* Open the filesystem on bds (the open takes the array's entries: pass a
 * copy); a read-only open never checkpoints (as fsck). */
static inline int test_open_fs(struct blockdev **bds, unsigned nr, unsigned flags, struct bkfs_fs **fs)
{
	struct printbuf err = PRINTBUF;
	int ret = bkfs_open_devs(bds, nr, flags, fs, &err);
	if (ret)
		fprintf(stderr, "open: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	pb_exit(&err);
	if (!ret && (flags & BKFS_OPEN_RDONLY))
		(*fs)->dirty_limit = UINT64_MAX;
	return ret;
}

/* ---- one run of some passes ---- */

struct fsck_result {
	unsigned nr;         /* findings in err[] */
	unsigned nr_all;     /* all findings */
	unsigned err[512];
	u64 lost_extents, lost_nodes;
	int ret;
};

static inline bool fsck_result_has(const struct fsck_result *r, unsigned err)
{
	for (unsigned i = 0; i < r->nr; i++)
		if (r->err[i] == err)
			return true;
	return false;
}

static inline void fsck_print_findings(const struct fsck_ctx *c)
{
	for (size_t i = 0; i < c->nr && i < 40; i++)
		fprintf(stderr, "    %s: %s: %s -> %s\n", fsck_err_table[c->f[i].err].name, c->f[i].object,
			c->f[i].msg ? c->f[i].msg : "", c->f[i].action);
	if (c->nr > 40)
		fprintf(stderr, "    ... %zu findings\n", c->nr);
}

/* The passes ran on c (opened with FSCK_FLAGS, mode c->opts.mode, r->ret
 * their status): record the findings in r (printed when verbose, or when the
 * run named "after" found any), write the repairs as bkfs fsck does (one
 * checkpoint) or close without writing, and free the findings and the scan. */
static inline void fsck_test_finish(struct fsck_ctx *c, struct fsck_result *r, const char *what)
{
	struct bkfs_fs *fs = c->fs;
	enum fsck_mode mode = c->opts.mode;
	for (size_t i = 0; i < c->nr && r->nr < ARRAY_SIZE(r->err); i++)
		r->err[r->nr++] = c->f[i].err;
	r->nr_all = c->nr;
	r->lost_extents = c->lost_extents;
	r->lost_nodes = c->lost_nodes;
	if (getenv(FSCK_TEST_VERBOSE_ENV) || (!strcmp(what, "after") && c->nr)) {
		fprintf(stderr, "  %s (%s): %zu findings\n", what, mode == FSCK_MODE_NO ? "-n" : "-y", c->nr);
		fsck_print_findings(c);
	}
	if (c->changed && mode != FSCK_MODE_NO && !r->ret) {
		fs->flags &= ~(BKFS_OPEN_RDONLY | BKFS_OPEN_NOJOURNAL);
		fs->sb.clean = 0;
		r->ret = bkfs_write_super(fs);
		if (!r->ret)
			r->ret = bkfs_close(fs);
		else
			bkfs_close_nowrite(fs);
	} else {
		bkfs_close_nowrite(fs);
	}
	for (size_t i = 0; i < c->nr; i++) {
		free(c->f[i].object);
		free(c->f[i].msg);
	}
	free(c->f);
	if (c->scan) {
		scan_result_free(c->scan);
		free(c->scan);
	}
}

/* ---- the cycle ---- */

typedef void (*fsck_run_fn)(enum fsck_mode mode, struct fsck_result *r, const char *what);

/* -n names want; -y reports exactly the same findings in the same order,
 * loses the same nodes, and repairs; -n after it is clean. */
static inline void fsck_cycle(const char *name, unsigned want, fsck_run_fn run, struct fsck_result *out_n)
{
	struct fsck_result n, y, after;
	run(FSCK_MODE_NO, &n, name);
	CHECK_EQ(n.ret, 0);
	if (!fsck_result_has(&n, want)) {
		fprintf(stderr, "FAIL %s: -n did not report %s\n", name, fsck_err_table[want].name);
		setenv(FSCK_TEST_VERBOSE_ENV, "1", 1);
		run(FSCK_MODE_NO, &after, name);
		unsetenv(FSCK_TEST_VERBOSE_ENV);
	}
	CHECK(fsck_result_has(&n, want));
	run(FSCK_MODE_YES, &y, name);
	CHECK_EQ(y.ret, 0);
	CHECK_EQ(y.nr_all, n.nr_all);
	bool same = y.nr == n.nr && !memcmp(y.err, n.err, n.nr * sizeof(n.err[0]));
	if (!same)
		fprintf(stderr, "FAIL %s: -n and -y findings differ (%u vs %u)\n", name, n.nr_all, y.nr_all);
	CHECK(same);
	CHECK_EQ(y.lost_nodes, n.lost_nodes);
	run(FSCK_MODE_NO, &after, "after");
	CHECK_EQ(after.ret, 0);
	if (after.nr_all)
		fprintf(stderr, "FAIL %s: not clean after -y\n", name);
	CHECK_EQ(after.nr_all, 0);
	if (out_n)
		*out_n = n;
}

/* ---- raw nodes on an emulated device ---- */

/* A replica of a node, in the media of an emulated device. */
static inline u8 *emu_node_at(struct blockdev *bd, const struct bkfs_btree_ptr *p, unsigned replica)
{
	return emu_dev_media(bd) + (p->ptrs[replica].offset << SECTOR_SHIFT);
}

/* Load a node's bytes (its first replica), let edit() change them, fix the
 * checksum and store them in every replica: the node still validates. */
static inline void emu_node_rewrite(struct blockdev *bd, u32 node_bytes, const struct bkfs_btree_ptr *p,
				    void (*edit)(u8 *buf, void *arg), void *arg)
{
	u8 *buf = malloc(node_bytes);
	memcpy(buf, emu_node_at(bd, p, 0), node_bytes);
	edit(buf, arg);
	node_csum_set(buf);
	for (unsigned r = 0; r < p->nr_ptrs; r++)
		memcpy(emu_node_at(bd, p, r), buf, node_bytes);
	free(buf);
}

/* Flip a byte of every replica: the node no longer validates. */
static inline void emu_node_flip_byte(struct blockdev *bd, const struct bkfs_btree_ptr *p, unsigned off)
{
	for (unsigned r = 0; r < p->nr_ptrs; r++)
		emu_node_at(bd, p, r)[off] ^= 0x5a;
}

#endif
