/* test_model.c - randomized, seeded model test of the engine.
 *
 * A long deterministic sequence of transactions (inode inserts, overwrites,
 * deletes and bulk batches; extent writes, overwrites and punches with real
 * data, including inline data, partial overwrites that split extents, writes
 * larger than one extent, reflinks of block ranges within and between files
 * (indirect extents, refcounts checked by verify.h) and several data ops on
 * one file in one transaction) runs against an in-memory reference: a table of inode values
 * and, per file, a byte array and a per-sector "allocated" map. After every
 * batch every inode key, every file's content and extent coverage, and the
 * structural verifier (verify.h) are checked; every few batches the
 * filesystem is closed and reopened (cleanly, or by a crash right after a
 * journal flush, which exercises replay) and everything is checked again.
 *
 * A second run uses two devices with replicas 2, then opens with either
 * device missing (BKFS_OPEN_DEGRADED | BKFS_OPEN_RDONLY) and checks that all
 * data still reads back.
 *
 * Environment: BKFS_TEST_SCALE (default 1) multiplies the number of ops;
 * BKFS_TEST_SEED overrides the seed. */
#include "test.h"
#include "verify.h"
#include "btree/trans.h"
#include "format/inode_format.h"
#include <sys/stat.h>
#include <time.h>

#define NINO 3000
#define INO_BASE 10000ull
#define NFILES 16
#define FILE_BASE 1000ull
#define FILE_MAX (256u << 10)
#define FILE_SECTORS (FILE_MAX / SECTOR_SIZE)

struct model_file {
	u8 data[FILE_MAX];
	u8 alloc[FILE_SECTORS];
	struct bkfs_inode ino;
};

struct model {
	bool present[NINO];
	struct bkfs_inode ino[NINO];
	u64 nr_present;
	struct model_file *f;
	unsigned nfiles;
	u32 block;
};

struct run {
	struct blockdev *bd[2];
	unsigned nr_devs;
	struct bkfs_fs *fs;
	struct model m;
	u64 rng;
	u64 ops, txns, batches, reopens, crashes, checkpoints, bytes_written;
	u64 inline_writes, multi_chunk, split_ovw, bulk_keys, big_txns, reflinks;
	bool failed;
};

static struct blockdev *mkdev(u64 size, u64 seed)
{
	struct emu_opts o = { .size = size, .seed = seed };
	struct blockdev *bd;
	if (emu_dev_create(&o, &bd))
		return NULL;
	bd->keep_open = true;
	return bd;
}

static unsigned scale(void)
{
	const char *s = getenv("BKFS_TEST_SCALE");
	int v = s ? atoi(s) : 1;
	return v > 0 ? (unsigned)v : 1;
}

static void tune(struct bkfs_fs *fs, struct run *r)
{
	/* frequent checkpoints and a small clean cache: exercise COW, node
	 * reuse and reloading evicted nodes */
	fs->dirty_limit = (u64)(8 + rng_next(&r->rng) % 64) * fs->node_bytes;
	fs->max_clean = 16 + rng_next(&r->rng) % 64;
}

static int do_open(struct run *r, unsigned flags, int missing)
{
	struct blockdev *bds[2];
	struct printbuf err = PRINTBUF;
	for (unsigned i = 0; i < r->nr_devs; i++)
		bds[i] = (int)i == missing ? NULL : r->bd[i];
	int ret = bkfs_open_devs(bds, r->nr_devs, flags, &r->fs, &err);
	if (ret) {
		fprintf(stderr, "open: %s: %s\n", bkfs_strerror(ret), pb_str(&err));
		r->fs = NULL;
	} else if (!(flags & BKFS_OPEN_RDONLY)) {
		tune(r->fs, r);
	}
	pb_exit(&err);
	return ret;
}

/* ---- model ---- */

static void model_write(struct model *m, unsigned f, u64 off, const u8 *buf, size_t len)
{
	struct model_file *mf = &m->f[f];
	u64 unit = off == 0 && len <= 2048 ? SECTOR_SIZE : m->block;
	u64 end = ROUND_UP(off + len, unit);
	memcpy(mf->data + off, buf, len);
	memset(mf->data + off + len, 0, end - off - len);
	memset(mf->alloc + off / SECTOR_SIZE, 1, (end - off) / SECTOR_SIZE);
	mf->ino.size = MAX(mf->ino.size, off + len);
}

static void model_punch(struct model *m, unsigned f, u64 start, u64 end)
{
	struct model_file *mf = &m->f[f];
	memset(mf->data + start * SECTOR_SIZE, 0, (end - start) * SECTOR_SIZE);
	memset(mf->alloc + start, 0, end - start);
}

static u64 model_sectors(struct model_file *mf)
{
	u64 n = 0;
	for (unsigned i = 0; i < FILE_SECTORS; i++)
		n += mf->alloc[i];
	return n;
}

static void fill(u8 *buf, size_t len, u64 seed)
{
	u64 s = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		u64 x = rng_next(&s);
		memcpy(buf + i, &x, 8);
	}
	for (; i < len; i++)
		buf[i] = rng_next(&s);
}

static void inode_key(struct bkey_buf *kb, u64 inum, const struct bkfs_inode *in)
{
	bkey_init(&kb->k, KEY_TYPE_inode, POS(0, inum), sizeof(*in));
	memcpy(bkey_val(&kb->k), in, sizeof(*in));
}

static void random_inode(struct run *r, struct bkfs_inode *in)
{
	memset(in, 0, sizeof(*in));
	in->mode = 0100644;
	in->nlink = 1 + rng_next(&r->rng) % 3;
	in->size = rng_next(&r->rng);
	in->mtime_ns = rng_next(&r->rng);
	in->uid = rng_next(&r->rng);
}

/* ---- ops (queued into t, applied to the model only if the commit works;
 * a failed commit fails the test anyway) ---- */

static int op_inode_set(struct run *r, struct trans *t, unsigned i)
{
	struct bkey_buf kb;
	struct bkfs_inode in;
	random_inode(r, &in);
	inode_key(&kb, INO_BASE + i, &in);
	int ret = trans_update(t, BTREE_ID_inodes, &kb.k);
	if (!ret) {
		r->m.nr_present += !r->m.present[i];
		r->m.present[i] = true;
		r->m.ino[i] = in;
	}
	return ret;
}

static int op_inode_del(struct run *r, struct trans *t, unsigned i)
{
	int ret = trans_delete(t, BTREE_ID_inodes, POS(0, INO_BASE + i));
	if (!ret) {
		r->m.nr_present -= r->m.present[i];
		r->m.present[i] = false;
	}
	return ret;
}

static int file_inode_update(struct run *r, struct trans *t, unsigned f, s64 delta)
{
	struct model_file *mf = &r->m.f[f];
	struct bkey_buf kb;
	mf->ino.sectors += delta;
	mf->ino.mtime_ns = r->ops;
	inode_key(&kb, FILE_BASE + f, &mf->ino);
	return trans_update(t, BTREE_ID_inodes, &kb.k);
}

static u8 wbuf[FILE_MAX];

static int op_write(struct run *r, struct trans *t, unsigned f)
{
	struct model *m = &r->m;
	u64 off, len;
	u64 x = rng_next(&r->rng) % 100;
	if (x < 15) {            /* inline */
		off = 0;
		len = 1 + rng_next(&r->rng) % 2048;
	} else {
		if (x < 25)      /* bigger than one extent: several chunks */
			len = (128u << 10) + 1 + rng_next(&r->rng) % (100u << 10);
		else             /* small, any block */
			len = 1 + rng_next(&r->rng) % (x < 70 ? 8192 : 32768);
		u64 nblocks = (FILE_MAX - ROUND_UP(len, m->block)) / m->block;
		off = (rng_next(&r->rng) % (nblocks + 1)) * m->block;
		if (off == 0 && len <= 2048)
			off = m->block;
	}
	fill(wbuf, len, r->ops * 7919 + f);
	s64 delta = 0;
	/* partial overwrite of an existing extent (split) when the range is
	 * strictly inside allocated space */
	if (off && m->f[f].alloc[off / SECTOR_SIZE - 1] &&
	    (off + ROUND_UP(len, m->block)) / SECTOR_SIZE < FILE_SECTORS &&
	    m->f[f].alloc[(off + ROUND_UP(len, m->block)) / SECTOR_SIZE])
		r->split_ovw++;
	int ret = extent_write(t, FILE_BASE + f, off, wbuf, len, &delta);
	if (ret) {
		fprintf(stderr, "extent_write(file %u, off %llu, len %llu): %s\n", f, (unsigned long long)off,
			(unsigned long long)len, bkfs_strerror(ret));
		return ret;
	}
	r->inline_writes += off == 0 && len <= 2048;
	r->multi_chunk += len > (128u << 10);
	r->bytes_written += len;
	model_write(m, f, off, wbuf, len);
	return file_inode_update(r, t, f, delta);
}

static int op_punch(struct run *r, struct trans *t, unsigned f)
{
	u64 a = rng_next(&r->rng) % FILE_SECTORS;
	u64 n = 1 + rng_next(&r->rng) % (rng_next(&r->rng) % 4 ? 64 : FILE_SECTORS);
	u64 b = MIN((u64)FILE_SECTORS, a + n);
	s64 delta = 0;
	int ret = extent_punch(t, FILE_BASE + f, a, b, &delta);
	if (ret) {
		fprintf(stderr, "extent_punch(file %u, %llu..%llu): %s\n", f, (unsigned long long)a,
			(unsigned long long)b, bkfs_strerror(ret));
		return ret;
	}
	model_punch(&r->m, f, a, b);
	return file_inode_update(r, t, f, delta);
}

/* Share a block-aligned range of file f at a block of file g (reflink_remap,
 * chunk by chunk, in t). A range starting at 0 goes to 0 (it may hold inline
 * data, which is copied as a key: same sectors). Overlapping ranges of one
 * file are not shared. */
static int op_reflink(struct run *r, struct trans *t, unsigned f, unsigned g)
{
	struct model *m = &r->m;
	u64 bsec = m->block / SECTOR_SIZE, nblk = FILE_MAX / m->block;
	u64 len = 1 + rng_next(&r->rng) % (rng_next(&r->rng) % 4 ? 16 : nblk / 2);
	u64 s = rng_next(&r->rng) % (nblk - len + 1), d = rng_next(&r->rng) % (nblk - len + 1);
	if (!s || !d)
		s = d = 0;
	if (f == g && s < d + len && d < s + len)
		return 0;
	u64 cur = s * bsec, end = (s + len) * bsec;
	s64 sd = 0, dd = 0;
	while (cur < end) {
		u64 done;
		int ret = reflink_remap(t, FILE_BASE + f, cur, end, FILE_BASE + g, d * bsec + (cur - s * bsec), &done,
					&sd, &dd);
		if (ret || done <= cur) {
			fprintf(stderr, "reflink_remap(file %u %llu+%llu blocks -> file %u at %llu): %s\n", f,
				(unsigned long long)s, (unsigned long long)len, g, (unsigned long long)d,
				ret ? bkfs_strerror(ret) : "no progress");
			return ret ? ret : -BKFS_E_IO;
		}
		cur = done;
	}
	struct model_file *mf = &m->f[f], *mg = &m->f[g];
	memmove(mg->data + d * m->block, mf->data + s * m->block, len * m->block);
	memmove(mg->alloc + d * bsec, mf->alloc + s * bsec, len * bsec);
	mg->ino.size = MAX(mg->ino.size, (d + len) * m->block);
	r->reflinks++;
	int ret = 0;
	if (sd && f != g)
		ret = file_inode_update(r, t, f, sd);
	return ret ? ret : file_inode_update(r, t, g, dd + (f == g ? sd : 0));
}

/* ---- checks ---- */

static bool check_all_scan(struct run *r, const char *when, bool scan);
static bool check_all(struct run *r, const char *when)
{
	return check_all_scan(r, when, false);
}

/* scan: also scan the raw devices (verify.h check_scan): without a crash in
 * the middle of a checkpoint, no node on disk may look newer than the tree */
static bool check_all_scan(struct run *r, const char *when, bool scan)
{
	struct bkfs_fs *fs = r->fs;
	struct model *m = &r->m;
	struct btree_iter it;
	struct bkey *k;
	int ret;
	unsigned bad = 0;
	u64 seen = 0, files_seen = 0;
	bool root = false;

	for_each_btree_key(it, fs, BTREE_ID_inodes, POS_MIN, k, ret) {
		u64 inum = k->p.offset;
		if (inum >= INO_BASE && inum < INO_BASE + NINO) {
			unsigned i = inum - INO_BASE;
			seen++;
			if (!m->present[i] || memcmp(bkey_val(k), &m->ino[i], sizeof(m->ino[i]))) {
				if (bad++ < 10)
					fprintf(stderr, "%s: inode %llu: %s\n", when, (unsigned long long)inum,
						m->present[i] ? "wrong value" : "should not exist");
			}
		} else if (inum >= FILE_BASE && inum < FILE_BASE + m->nfiles) {
			files_seen++;
			if (memcmp(bkey_val(k), &m->f[inum - FILE_BASE].ino, sizeof(struct bkfs_inode)) && bad++ < 10)
				fprintf(stderr, "%s: file inode %llu: wrong value\n", when, (unsigned long long)inum);
		} else if (inum == BKFS_ROOT_INO) {
			root = true;
		} else if (bad++ < 10) {
			fprintf(stderr, "%s: unexpected inode %llu\n", when, (unsigned long long)inum);
		}
	}
	if (ret) {
		fprintf(stderr, "%s: iterating inodes: %s\n", when, bkfs_strerror(ret));
		bad++;
	}
	if (seen != m->nr_present || files_seen != m->nfiles || !root) {
		fprintf(stderr, "%s: %llu inodes, model has %llu; %llu files of %u; root %d\n", when,
			(unsigned long long)seen, (unsigned long long)m->nr_present, (unsigned long long)files_seen,
			m->nfiles, root);
		bad++;
	}

	/* extents: nothing for other inodes, nothing past the end */
	static u8 cover[FILE_SECTORS];
	for_each_btree_key(it, fs, BTREE_ID_extents, POS_MIN, k, ret) {
		u64 inum = k->p.inode;
		if (inum < FILE_BASE || inum >= FILE_BASE + m->nfiles) {
			if (bad++ < 10)
				fprintf(stderr, "%s: extent for unexpected inode %llu\n", when, (unsigned long long)inum);
		} else if (k->p.offset > FILE_SECTORS) {
			if (bad++ < 10)
				fprintf(stderr, "%s: extent past the end of file %llu\n", when, (unsigned long long)inum);
		}
	}
	if (ret) {
		fprintf(stderr, "%s: iterating extents: %s\n", when, bkfs_strerror(ret));
		bad++;
	}
	static u8 rbuf[FILE_MAX];
	for (unsigned f = 0; f < m->nfiles; f++) {
		struct model_file *mf = &m->f[f];
		u64 sectors = 0;
		memset(cover, 0, sizeof(cover));
		for_each_btree_key(it, fs, BTREE_ID_extents, POS(FILE_BASE + f, 0), k, ret) {
			if (k->p.inode != FILE_BASE + f)
				break;
			sectors += k->size;
			for (u64 s = bkey_start_pos(k).offset; s < k->p.offset && s < FILE_SECTORS; s++)
				cover[s]++;
		}
		if (memcmp(cover, mf->alloc, FILE_SECTORS)) {
			unsigned s = 0;
			while (cover[s] == mf->alloc[s])
				s++;
			if (bad++ < 10)
				fprintf(stderr, "%s: file %u: extents cover sector %u %u times, model %u\n", when, f, s,
					cover[s], mf->alloc[s]);
		}
		if (sectors != model_sectors(mf) || mf->ino.sectors != sectors) {
			if (bad++ < 10)
				fprintf(stderr, "%s: file %u: extents %llu sectors, model %llu, inode says %llu\n", when, f,
					(unsigned long long)sectors, (unsigned long long)model_sectors(mf),
					(unsigned long long)mf->ino.sectors);
		}
		ret = extent_read(fs, FILE_BASE + f, 0, rbuf, FILE_MAX);
		if (ret) {
			if (bad++ < 10)
				fprintf(stderr, "%s: file %u: read: %s\n", when, f, bkfs_strerror(ret));
		} else if (memcmp(rbuf, mf->data, FILE_MAX)) {
			size_t o = 0;
			while (rbuf[o] == mf->data[o])
				o++;
			if (bad++ < 10)
				fprintf(stderr, "%s: file %u: data differs at byte %zu (sector %zu)\n", when, f, o,
					o / SECTOR_SIZE);
		}
		/* a read at an odd range as well */
		u64 off = rng_next(&r->rng) % FILE_MAX, len = 1 + rng_next(&r->rng) % (FILE_MAX - off);
		if (!extent_read(fs, FILE_BASE + f, off, rbuf, len) && memcmp(rbuf, mf->data + off, len) &&
		    bad++ < 10)
			fprintf(stderr, "%s: file %u: partial read %llu+%llu differs\n", when, f,
				(unsigned long long)off, (unsigned long long)len);
	}
	struct verify_opts vo = { .check_disk = true, .check_scan = scan, .tag = when };
	unsigned p = verify_fs(fs, &vo);
	if (p)
		fprintf(stderr, "%s: verifier found %u problems\n", when, p);
	CHECK_EQ(bad, 0);
	CHECK_EQ(p, 0);
	return !bad && !p;
}

/* Iterate a range of inode keys while committing transactions that delete
 * the key just visited (and sometimes re-create a key behind the iterator):
 * every key present at the start must be visited exactly once, in order. */
static bool check_iter_while_modifying(struct run *r, unsigned first, unsigned n)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	unsigned visited = 0, expected = 0, bad = 0;
	static bool want[NINO];
	for (unsigned i = first; i < first + n && i < NINO; i++)
		expected += (want[i] = r->m.present[i]);
	u64 last = 0;
	btree_iter_init(&it, r->fs, BTREE_ID_inodes, 0, POS(0, INO_BASE + first));
	while (!(ret = btree_iter_peek(&it, &k)) && k && k->p.offset < INO_BASE + first + n) {
		unsigned i = k->p.offset - INO_BASE;
		if (k->p.offset <= last || !want[i]) {
			if (bad++ < 5)
				fprintf(stderr, "iterating while deleting: got inode %llu (previous %llu)\n",
					(unsigned long long)k->p.offset, (unsigned long long)last);
		}
		last = k->p.offset;
		want[i] = false;
		visited++;
		struct trans t;
		trans_init(&t, r->fs);
		ret = op_inode_del(r, &t, i);
		if (!ret && i > first && rng_next(&r->rng) % 3 == 0)
			ret = op_inode_set(r, &t, i - 1 - rng_next(&r->rng) % MIN(i - first, 8u)); /* behind */
		if (!ret)
			ret = trans_commit(&t, 0);
		trans_exit(&t);
		if (ret)
			break;
		btree_iter_advance(&it);
	}
	if (ret)
		fprintf(stderr, "iterating while deleting: %s\n", bkfs_strerror(ret));
	if (visited != expected)
		fprintf(stderr, "iterating while deleting: visited %u of %u keys\n", visited, expected);
	CHECK_EQ(ret, 0);
	CHECK_EQ(visited, expected);
	CHECK_EQ(bad, 0);
	return !ret && visited == expected && !bad;
}

/* ---- the run ---- */

static int create_files(struct run *r)
{
	struct trans t;
	trans_init(&t, r->fs);
	for (unsigned f = 0; f < r->m.nfiles; f++) {
		struct model_file *mf = &r->m.f[f];
		memset(&mf->ino, 0, sizeof(mf->ino));
		mf->ino.mode = S_IFREG | 0644;
		mf->ino.nlink = 1;
		struct bkey_buf kb;
		inode_key(&kb, FILE_BASE + f, &mf->ino);
		int ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
		if (ret) {
			trans_exit(&t);
			return ret;
		}
	}
	int ret = trans_commit(&t, COMMIT_SYNC);
	trans_exit(&t);
	return ret;
}

static int one_txn(struct run *r)
{
	struct trans t;
	int ret = 0;
	trans_init(&t, r->fs);
	u64 x = rng_next(&r->rng) % 100;
	unsigned nops = 1;
	if (x < 30) {
		ret = op_inode_set(r, &t, rng_next(&r->rng) % NINO);
	} else if (x < 40) {
		ret = op_inode_del(r, &t, rng_next(&r->rng) % NINO);
	} else if (x < 60) {
		ret = op_write(r, &t, rng_next(&r->rng) % r->m.nfiles);
	} else if (x < 65) {
		ret = op_reflink(r, &t, rng_next(&r->rng) % r->m.nfiles, rng_next(&r->rng) % r->m.nfiles);
	} else if (x < 77) {
		ret = op_punch(r, &t, rng_next(&r->rng) % r->m.nfiles);
	} else if (x < 92) {
		/* several ops in one transaction, possibly on the same file */
		nops = 2 + rng_next(&r->rng) % 5;
		unsigned f0 = rng_next(&r->rng) % r->m.nfiles;
		for (unsigned i = 0; i < nops && !ret; i++) {
			u64 y = rng_next(&r->rng) % 5;
			unsigned f = rng_next(&r->rng) % 2 ? f0 : rng_next(&r->rng) % r->m.nfiles;
			ret = y == 0 ? op_inode_set(r, &t, rng_next(&r->rng) % NINO) :
			      y == 1 ? op_punch(r, &t, f) :
			      y == 2 ? op_reflink(r, &t, f, rng_next(&r->rng) % 2 ? f0 : f) : op_write(r, &t, f);
		}
	} else if (x < 97) {
		/* bulk: a run of inodes set or deleted (counts as one op) */
		unsigned n = 20 + rng_next(&r->rng) % 200;
		unsigned start = rng_next(&r->rng) % NINO;
		bool del = rng_next(&r->rng) % 2;
		r->bulk_keys += n;
		for (unsigned i = 0; i < n && !ret; i++) {
			unsigned ino = (start + i) % NINO;
			ret = del ? op_inode_del(r, &t, ino) : op_inode_set(r, &t, ino);
		}
	} else {
		/* a very big transaction: more than half a journal entry (one op) */
		unsigned n = 1200 + rng_next(&r->rng) % 400;
		r->bulk_keys += n;
		r->big_txns++;
		for (unsigned i = 0; i < n && !ret; i++)
			ret = op_inode_set(r, &t, rng_next(&r->rng) % NINO);
	}
	r->ops += nops;
	if (!ret)
		ret = trans_commit(&t, rng_next(&r->rng) % 10 == 0 ? COMMIT_SYNC : 0);
	trans_exit(&t);
	r->txns++;
	if (!ret && rng_next(&r->rng) % 200 == 0) {
		ret = btree_checkpoint(r->fs);
		r->checkpoints++;
	}
	if (ret)
		fprintf(stderr, "transaction %llu: %s\n", (unsigned long long)r->txns, bkfs_strerror(ret));
	return ret;
}

static bool run_model(struct run *r, u64 nops, unsigned batch_ops, const char *name)
{
	char when[128];
	u64 next_check = batch_ops;
	if (create_files(r)) {
		CHECK(0);
		return false;
	}
	while (r->ops < nops) {
		if (one_txn(r)) {
			CHECK(0);
			return false;
		}
		if (r->ops < next_check && r->ops < nops)
			continue;
		next_check = r->ops + batch_ops;
		r->batches++;
		snprintf(when, sizeof(when), "%s batch %llu (op %llu)", name, (unsigned long long)r->batches,
			 (unsigned long long)r->ops);
		if (!check_all(r, when))
			return false;
		u64 x = rng_next(&r->rng) % 6;
		if (x == 0) {
			/* clean close and reopen */
			if (bkfs_close(r->fs)) {
				CHECK(0);
				return false;
			}
			r->fs = NULL;
			r->reopens++;
		} else if (x == 1) {
			/* crash right after a journal flush: replay must restore all */
			if (journal_flush(r->fs)) {
				CHECK(0);
				return false;
			}
			bkfs_close_nowrite(r->fs);
			r->fs = NULL;
			for (unsigned d = 0; d < r->nr_devs; d++)
				emu_dev_power_cut(r->bd[d]);
			r->crashes++;
		}
		if (!r->fs) {
			if (do_open(r, 0, -1)) {
				CHECK(0);
				return false;
			}
			snprintf(when, sizeof(when), "%s batch %llu after %s", name, (unsigned long long)r->batches,
				 x ? "crash" : "reopen");
			if (!check_all_scan(r, when, true))
				return false;
		}
	}
	return true;
}

static bool setup(struct run *r, unsigned nr_devs, u64 dev_size, u64 seed)
{
	memset(r, 0, sizeof(*r));
	r->rng = seed;
	r->nr_devs = nr_devs;
	r->m.nfiles = NFILES;
	r->m.block = 4096;
	r->m.f = calloc(NFILES, sizeof(*r->m.f));
	struct format_opts fo = { .block_size = 4096, .btree_node_size = 4096, .bucket_size = 64 << 10,
				  .replicas = nr_devs };
	struct printbuf err = PRINTBUF;
	for (unsigned d = 0; d < nr_devs; d++)
		r->bd[d] = mkdev(dev_size, seed + d);
	struct blockdev *bds[2] = { r->bd[0], r->bd[1] };
	int ret = bkfs_format_devs(bds, nr_devs, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	pb_exit(&err);
	CHECK_EQ(ret, 0);
	return !ret && r->m.f && !do_open(r, 0, -1);
}

static void teardown(struct run *r)
{
	if (r->fs)
		CHECK_EQ(bkfs_close(r->fs), 0);
	r->fs = NULL;
	for (unsigned d = 0; d < r->nr_devs; d++) {
		r->bd[d]->keep_open = false;
		bd_close(r->bd[d]);
	}
	free(r->m.f);
}

static void report(struct run *r, const char *name, double secs)
{
	printf("%s: %llu ops in %llu transactions, %llu batches checked, %llu clean reopens, %llu crash+replay reopens, "
	       "%llu explicit checkpoints, %llu keys in bulk ops (%llu big transactions), %.1f MiB written (%llu inline, %llu multi-extent, %llu splitting), %llu reflinks, %.1f s\n",
	       name, (unsigned long long)r->ops, (unsigned long long)r->txns, (unsigned long long)r->batches,
	       (unsigned long long)r->reopens, (unsigned long long)r->crashes, (unsigned long long)r->checkpoints,
	       (unsigned long long)r->bulk_keys, (unsigned long long)r->big_txns, r->bytes_written / 1048576.0, (unsigned long long)r->inline_writes, (unsigned long long)r->multi_chunk,
	       (unsigned long long)r->split_ovw, (unsigned long long)r->reflinks, secs);
}

int main(void)
{
	static struct run r;
	u64 seed = getenv("BKFS_TEST_SEED") ? strtoull(getenv("BKFS_TEST_SEED"), NULL, 0) : 0x5eed;
	u64 nops = 20000ull * scale();
	u64 t0 = now_ns();

	/* one device */
	if (setup(&r, 1, 256ull << 20, seed)) {
		run_model(&r, nops, 500, "1dev");
		if (r.fs && !t_failed) {
			/* fill a range densely, then delete it while iterating */
			struct trans t;
			trans_init(&t, r.fs);
			for (unsigned i = 1000; i < 1600; i++)
				op_inode_set(&r, &t, i);
			CHECK_EQ(trans_commit(&t, 0), 0);
			trans_exit(&t);
			check_iter_while_modifying(&r, 1000, 600);
			check_all(&r, "1dev after iterating while deleting");
			CHECK_EQ(bkfs_close(r.fs), 0);
			r.fs = NULL;
			if (!do_open(&r, 0, -1))
				check_all_scan(&r, "1dev final reopen", true);
		}
	}
	report(&r, "1dev", (now_ns() - t0) / 1e9);
	teardown(&r);

	/* two devices, replicas 2, then lose either one */
	t0 = now_ns();
	if (setup(&r, 2, 128ull << 20, seed ^ 0xabcdef)) {
		if (run_model(&r, nops / 4, 500, "2dev") && r.fs) {
			CHECK_EQ(bkfs_close(r.fs), 0);
			r.fs = NULL;
			for (int lost = 0; lost < 2; lost++) {
				char when[64];
				snprintf(when, sizeof(when), "2dev without dev %d", lost);
				int ret = do_open(&r, BKFS_OPEN_DEGRADED | BKFS_OPEN_RDONLY, lost);
				CHECK_EQ(ret, 0);
				if (ret)
					continue;
				check_all(&r, when);
				bkfs_close_nowrite(r.fs);
				r.fs = NULL;
			}
			/* without DEGRADED a missing device is refused */
			struct blockdev *bds[2] = { r.bd[0], NULL };
			struct bkfs_fs *fs = NULL;
			struct printbuf err = PRINTBUF;
			CHECK(bkfs_open_devs(bds, 2, 0, &fs, &err) != 0);
			pb_exit(&err);
			if (!do_open(&r, 0, -1))
				check_all_scan(&r, "2dev both devices again", true);
		}
	}
	report(&r, "2dev", (now_ns() - t0) / 1e9);
	teardown(&r);
	TEST_MAIN_END();
}
