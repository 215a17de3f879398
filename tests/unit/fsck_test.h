/* fsck_test.h - what the checker's unit tests (test_topology, test_gc,
 * test_ec) share: a run of some passes through the checker's own driver
 * (fsck_devs: the same retry, commit and exit status as bkfs fsck), the
 * -n / -y / -n cycle, and raw node edits on an emulated device's media (with
 * the format layer's node_buf_* key edits, as bkfs debug corrupt makes them).
 *
 * A test may define FSCK_TEST_VERBOSE_ENV (the environment variable that
 * prints every run's findings) before including this. */
#ifndef BKFS_FSCK_TEST_H
#define BKFS_FSCK_TEST_H
#include "test.h"
#include "fsck/fsck.h"
#include "format/node_format.h"
#include "fs/super.h"

#ifndef FSCK_TEST_VERBOSE_ENV
#define FSCK_TEST_VERBOSE_ENV "FSCK_TEST_VERBOSE"
#endif

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

/* Create nr emulated devices of size bytes (seeds seed, seed + 1, ...;
 * kept open across the tests' opens) and format them with fo. */
static inline int test_emu_format(struct blockdev **dev, unsigned nr, u64 size, u64 seed, const struct format_opts *fo)
{
	struct printbuf err = PRINTBUF;
	for (unsigned d = 0; d < nr; d++) {
		struct emu_opts o = { .size = size, .seed = seed + d };
		if (emu_dev_create(&o, &dev[d]))
			return -BKFS_E_NOMEM;
		dev[d]->keep_open = true;
	}
	int ret = bkfs_format_devs(dev, nr, fo, &err);
	if (ret)
		fprintf(stderr, "format: %s\n", pb_str(&err));
	pb_exit(&err);
	return ret;
}

/* Close what test_emu_format() made (NULL entries are skipped). */
static inline void test_emu_close(struct blockdev **dev, unsigned nr)
{
	for (unsigned d = 0; d < nr; d++) {
		if (dev[d]) {
			dev[d]->keep_open = false;
			bd_close(dev[d]);
			dev[d] = NULL;
		}
	}
}

/* ---- one run of some passes ---- */

static inline void fsck_print_findings(const struct fsck_result *r)
{
	for (size_t i = 0; i < r->nr && i < 40; i++)
		fprintf(stderr, "    %s: %s: %s -> %s\n", fsck_err_table[r->f[i].err].name, r->f[i].object,
			r->f[i].msg ? r->f[i].msg : "", r->f[i].action);
	if (r->nr > 40)
		fprintf(stderr, "    ... %zu findings\n", r->nr);
}

/* fsck_devs() on bds (the run takes the array's entries, as an open does:
 * emulated devices with keep_open survive it), the findings printed when
 * verbose, or when the run named "after" found any. Free r with
 * fsck_result_free(). */
static inline void fsck_test_run(struct blockdev **bds, unsigned nr, const struct fsck_opts *o, struct fsck_result *r,
				 const char *what)
{
	fflush(stdout);
	fsck_devs(bds, nr, o, r);
	if (getenv(FSCK_TEST_VERBOSE_ENV) || (!strcmp(what, "after") && r->nr)) {
		fprintf(stderr, "  %s (%s): %zu findings\n", what, o->mode == FSCK_MODE_NO ? "-n" : "-y", r->nr);
		fsck_print_findings(r);
	}
}

/* the same findings (named errors) in the same order */
static inline bool fsck_same_findings(const struct fsck_result *a, const struct fsck_result *b)
{
	if (a->nr != b->nr)
		return false;
	for (size_t i = 0; i < a->nr; i++)
		if (a->f[i].err != b->f[i].err)
			return false;
	return true;
}

/* ---- the cycle ---- */

typedef void (*fsck_run_fn)(enum fsck_mode mode, struct fsck_result *r, const char *what);

/* -n names want; -y reports exactly the same findings in the same order,
 * loses the same nodes, and repairs; -n after it is clean. out_n (when not
 * NULL) gets the -n result: the caller frees it. */
static inline void fsck_cycle(const char *name, unsigned want, fsck_run_fn run, struct fsck_result *out_n)
{
	struct fsck_result n, y, after;
	run(FSCK_MODE_NO, &n, name);
	CHECK_EQ(n.ret, 0);
	if (!fsck_result_has(&n, want)) {
		fprintf(stderr, "FAIL %s: -n did not report %s\n", name, fsck_err_table[want].name);
		setenv(FSCK_TEST_VERBOSE_ENV, "1", 1);
		run(FSCK_MODE_NO, &after, name);
		fsck_result_free(&after);
		unsetenv(FSCK_TEST_VERBOSE_ENV);
	}
	CHECK(fsck_result_has(&n, want));
	CHECK_EQ(n.status, n.ret ? FSCK_EXIT_OPERATIONAL : FSCK_EXIT_UNCORRECTED);
	run(FSCK_MODE_YES, &y, name);
	CHECK_EQ(y.ret, 0);
	CHECK_EQ(y.status, FSCK_EXIT_CORRECTED);
	bool same = fsck_same_findings(&y, &n);
	if (!same)
		fprintf(stderr, "FAIL %s: -n and -y findings differ (%zu vs %zu)\n", name, n.nr, y.nr);
	CHECK(same);
	CHECK_EQ(y.lost_nodes, n.lost_nodes);
	fsck_result_free(&y);
	run(FSCK_MODE_NO, &after, "after");
	CHECK_EQ(after.ret, 0);
	if (after.nr)
		fprintf(stderr, "FAIL %s: not clean after -y\n", name);
	CHECK_EQ(after.nr, 0);
	CHECK_EQ(after.status, FSCK_EXIT_OK);
	fsck_result_free(&after);
	if (out_n)
		*out_n = n;
	else
		fsck_result_free(&n);
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
	node_csum_set(buf, node_bytes);
	for (unsigned r = 0; r < p->nr_ptrs; r++)
		memcpy(emu_node_at(bd, p, r), buf, node_bytes);
	free(buf);
}

/* Flip a byte of every replica's chunk table trailer (when it has one): a
 * checker can no longer salvage the node's keys (FORMAT.md §7.3). */
static inline void emu_node_break_table(struct blockdev *bd, u32 node_bytes, const struct bkfs_btree_ptr *p)
{
	for (unsigned r = 0; r < p->nr_ptrs; r++) {
		u8 *n = emu_node_at(bd, p, r);
		const struct bkfs_node_hdr *h = (const void *)n;
		u32 image = node_image_bytes(h, node_bytes);
		if (h->chunk_shift && image > h->used_bytes)
			n[image - sizeof(struct bkfs_node_chunk_trailer)] ^= 0x5a;
	}
}

/* Flip a byte of every replica: the node no longer validates. */
static inline void emu_node_flip_byte(struct blockdev *bd, const struct bkfs_btree_ptr *p, unsigned off)
{
	for (unsigned r = 0; r < p->nr_ptrs; r++)
		emu_node_at(bd, p, r)[off] ^= 0x5a;
}

#endif
