/* test_powerloss.c - power loss at every write (or a seeded sample of at least
 * 2000 write numbers), with reordering between flushes.
 *
 * A deterministic workload of transactions runs from a freshly formatted
 * image: each transaction writes a pair of inode keys with its own stamp (or
 * deletes the pair), most also write or punch file data (real data, extent
 * writes and punches, inline data) and update the file's inode, some create
 * or delete runs of inode keys; about one in four commits with COMMIT_SYNC,
 * frequent checkpoints and a small node cache. A pure in-memory model of the
 * same workload gives the state hash after every prefix of transactions.
 *
 * The workload is run once to count its device writes W. Then, for each cut
 * point, it runs again on a copy of the formatted image with the cut armed
 * after `cut` writes (reorder on: unflushed writes land in a random subset
 * and order, some torn), stops at the cut, loses power, reopens (must
 * succeed), runs the verifier (must pass) and checks that the filesystem is
 * exactly the state after some prefix of the transactions, no shorter than
 * the last one known durable: committed with COMMIT_SYNC, or covered by the
 * journal's durable seq, before the cut. Every transaction is thus present
 * entirely or not at all (the pairs are checked on their own too). Every few
 * cut points the recovered filesystem is also written to, closed and
 * reopened.
 *
 * Environment: BKFS_TEST_SCALE multiplies the sample count (default 1:
 * every write if W <= 2000, else 2000 seeded samples); BKFS_TEST_SEED. */
#include "test.h"
#include "verify.h"
#include "btree/trans.h"
#include "format/inode_format.h"
#include <sys/stat.h>

#define DEV_SIZE (6ull << 20)
#define NTX 480
#define PHASE_B 200  /* transactions 1..PHASE_B: phase A */
#define PHASE_C 360
#define NPAIRS 40
#define PAIR_BASE 20000ull
#define NBULK 1500
#define BULK_BASE 40000ull
#define NFILES 6
#define FILE_BASE 1000ull
#define FILE_MAX (64u << 10)
#define FILE_SECTORS (FILE_MAX / SECTOR_SIZE)
#define BLOCK 4096u

/* ---- one transaction's description, a pure function of (seed, i) ---- */
struct txdesc {
	bool sync;
	unsigned pair;
	bool pair_del;
	int file;           /* -1: no data op */
	bool punch;
	u64 off, len;       /* write: bytes; punch: sectors [off, off + len) */
	unsigned bulk_n, bulk_start;
	bool bulk_del;
};

static u64 g_seed = 0x900d;

static void gen_txn(unsigned i, struct txdesc *d)
{
	u64 s = g_seed * 0x9E3779B97F4A7C15ull + i * 0xD1B54A32D192ED03ull + 1;
	memset(d, 0, sizeof(*d));
	/* phases: A small transactions, sync 1 in 4, frequent checkpoints;
	 * B bulk transactions, rarely sync, no checkpoints: the journal buffer
	 * fills and entries go out unflushed; C some transactions too big for
	 * one journal entry (committed through a checkpoint) */
	unsigned phase = i <= PHASE_B ? 0 : i <= PHASE_C ? 1 : 2;
	d->sync = rng_next(&s) % (phase == 1 ? 25 : phase == 2 ? 6 : 4) == 0;
	d->pair = rng_next(&s) % NPAIRS;
	d->pair_del = rng_next(&s) % 5 == 0;
	d->file = rng_next(&s) % 10 < 7 ? (int)(rng_next(&s) % NFILES) : -1;
	if (d->file >= 0) {
		u64 x = rng_next(&s) % 10;
		if (x < 2) {
			d->punch = true;
			d->off = rng_next(&s) % FILE_SECTORS;
			d->len = 1 + rng_next(&s) % MIN((u64)64, FILE_SECTORS - d->off);
		} else if (x < 4) {
			d->off = 0;
			d->len = 1 + rng_next(&s) % 2048; /* inline */
		} else {
			d->len = 1 + rng_next(&s) % (x < 9 ? 12288 : 40960);
			u64 nblocks = (FILE_MAX - ROUND_UP(d->len, BLOCK)) / BLOCK;
			d->off = (rng_next(&s) % (nblocks + 1)) * BLOCK;
			if (!d->off && d->len <= 2048)
				d->off = BLOCK;
		}
	}
	if (phase == 2 && rng_next(&s) % 12 == 0) {
		d->bulk_n = 1100 + rng_next(&s) % 300;
		d->bulk_start = rng_next(&s) % NBULK;
		d->bulk_del = rng_next(&s) % 4 == 0;
	} else if (phase == 1 || rng_next(&s) % 8 == 0) {
		d->bulk_n = 10 + rng_next(&s) % (phase == 1 ? 120 : 60);
		d->bulk_start = rng_next(&s) % NBULK;
		d->bulk_del = rng_next(&s) % 3 == 0;
	}
}

static void fill(u8 *buf, size_t len, u64 seed)
{
	u64 s = seed * 0x9E3779B97F4A7C15ull + 7;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		u64 x = rng_next(&s);
		memcpy(buf + i, &x, 8);
	}
	for (; i < len; i++)
		buf[i] = rng_next(&s) >> 56;
}

/* ---- the model ---- */
struct mfile {
	u8 data[FILE_MAX];
	u8 alloc[FILE_SECTORS];
	struct bkfs_inode ino;
};

struct model {
	bool pair_present[NPAIRS];
	struct bkfs_inode pair_ino[NPAIRS];
	bool bulk_present[NBULK];
	struct bkfs_inode bulk_ino[NBULK];
	struct mfile f[NFILES];
};

static void stamp_inode(struct bkfs_inode *in, unsigned i, u64 salt)
{
	memset(in, 0, sizeof(*in));
	in->mode = S_IFREG | 0644;
	in->nlink = 1;
	in->size = i;
	in->mtime_ns = (u64)i * 1000003 + salt;
}

static void model_init(struct model *m)
{
	memset(m, 0, sizeof(*m));
	for (unsigned f = 0; f < NFILES; f++) {
		m->f[f].ino.mode = S_IFREG | 0644;
		m->f[f].ino.nlink = 1;
	}
}

static u64 popcount_sectors(const struct mfile *mf)
{
	u64 n = 0;
	for (unsigned s = 0; s < FILE_SECTORS; s++)
		n += mf->alloc[s];
	return n;
}

static u8 g_buf[FILE_MAX];

/* apply transaction i (file inode value included) */
static void model_apply(struct model *m, unsigned i, const struct txdesc *d)
{
	m->pair_present[d->pair] = !d->pair_del;
	if (!d->pair_del)
		stamp_inode(&m->pair_ino[d->pair], i, d->pair);
	if (d->file >= 0) {
		struct mfile *mf = &m->f[d->file];
		if (d->punch) {
			memset(mf->data + d->off * SECTOR_SIZE, 0, d->len * SECTOR_SIZE);
			memset(mf->alloc + d->off, 0, d->len);
		} else {
			u64 unit = !d->off && d->len <= 2048 ? SECTOR_SIZE : BLOCK;
			u64 end = ROUND_UP(d->off + d->len, unit);
			fill(g_buf, d->len, i);
			memcpy(mf->data + d->off, g_buf, d->len);
			memset(mf->data + d->off + d->len, 0, end - d->off - d->len);
			memset(mf->alloc + d->off / SECTOR_SIZE, 1, (end - d->off) / SECTOR_SIZE);
			mf->ino.size = MAX(mf->ino.size, d->off + d->len);
		}
		mf->ino.sectors = popcount_sectors(mf);
		mf->ino.mtime_ns = i;
	}
	for (unsigned j = 0; j < d->bulk_n; j++) {
		unsigned b = (d->bulk_start + j) % NBULK;
		m->bulk_present[b] = !d->bulk_del;
		if (!d->bulk_del)
			stamp_inode(&m->bulk_ino[b], i, b);
	}
}

static u64 hash_bytes(const void *p, size_t len)
{
	return (u64)bkfs_crc32c(0x12345678, p, len) << 32 | bkfs_crc32c(0x9abcdef0, p, len);
}

static u64 obj_hash(u64 id, const void *a, size_t la, const void *b, size_t lb)
{
	u64 h = hash_bytes(&id, sizeof(id));
	h ^= hash_bytes(a, la) * 0x9E3779B97F4A7C15ull;
	if (b)
		h ^= hash_bytes(b, lb) * 0xC2B2AE3D27D4EB4Full;
	return h * 0xff51afd7ed558ccdull + id;
}

static u64 model_hash(const struct model *m)
{
	u64 h = 0;
	for (unsigned p = 0; p < NPAIRS; p++)
		if (m->pair_present[p])
			h += obj_hash(PAIR_BASE + 2 * p, &m->pair_ino[p], sizeof(struct bkfs_inode), NULL, 0) +
			     obj_hash(PAIR_BASE + 2 * p + 1, &m->pair_ino[p], sizeof(struct bkfs_inode), NULL, 0);
	for (unsigned b = 0; b < NBULK; b++)
		if (m->bulk_present[b])
			h += obj_hash(BULK_BASE + b, &m->bulk_ino[b], sizeof(struct bkfs_inode), NULL, 0);
	for (unsigned f = 0; f < NFILES; f++)
		h += obj_hash(FILE_BASE + f, &m->f[f].ino, sizeof(struct bkfs_inode), NULL, 0) +
		     obj_hash(1ull << 40 | f, m->f[f].data, FILE_MAX, m->f[f].alloc, FILE_SECTORS);
	return h;
}

/* ---- the workload on a filesystem ---- */

static void inode_key(struct bkey_buf *kb, u64 inum, const struct bkfs_inode *in)
{
	bkey_init(&kb->k, KEY_TYPE_inode, POS(0, inum), sizeof(*in));
	memcpy(bkey_val(&kb->k), in, sizeof(*in));
}

/* queue transaction i into t; m is the model before it (updated here) */
static int queue_txn(struct trans *t, struct model *m, unsigned i, const struct txdesc *d)
{
	struct bkey_buf kb;
	int ret = 0;
	u64 before = d->file >= 0 ? popcount_sectors(&m->f[d->file]) : 0;
	s64 delta = 0;
	if (d->file >= 0) {
		u64 inum = FILE_BASE + d->file;
		if (d->punch) {
			ret = extent_punch(t, inum, d->off, d->off + d->len, &delta);
		} else {
			fill(g_buf, d->len, i);
			ret = extent_write(t, inum, d->off, g_buf, d->len, &delta);
		}
		if (ret)
			return ret;
	}
	model_apply(m, i, d);
	if (d->file >= 0) {
		struct mfile *mf = &m->f[d->file];
		if ((s64)before + delta != (s64)mf->ino.sectors) {
			fprintf(stderr, "txn %u: sectors delta %lld, model %llu -> %llu\n", i, (long long)delta,
				(unsigned long long)before, (unsigned long long)mf->ino.sectors);
			return -BKFS_E_RANGE;
		}
		inode_key(&kb, FILE_BASE + d->file, &mf->ino);
		if ((ret = trans_update(t, BTREE_ID_inodes, &kb.k)))
			return ret;
	}
	for (unsigned k = 0; k < 2; k++) {
		u64 inum = PAIR_BASE + 2 * d->pair + k;
		if (d->pair_del) {
			ret = trans_delete(t, BTREE_ID_inodes, POS(0, inum));
		} else {
			inode_key(&kb, inum, &m->pair_ino[d->pair]);
			ret = trans_update(t, BTREE_ID_inodes, &kb.k);
		}
		if (ret)
			return ret;
	}
	for (unsigned j = 0; j < d->bulk_n && !ret; j++) {
		unsigned b = (d->bulk_start + j) % NBULK;
		if (d->bulk_del) {
			ret = trans_delete(t, BTREE_ID_inodes, POS(0, BULK_BASE + b));
		} else {
			inode_key(&kb, BULK_BASE + b, &m->bulk_ino[b]);
			ret = trans_update(t, BTREE_ID_inodes, &kb.k);
		}
	}
	return ret;
}

static int create_files(struct bkfs_fs *fs)
{
	struct trans t;
	struct bkey_buf kb;
	struct model m;
	model_init(&m);
	trans_init(&t, fs);
	int ret = 0;
	for (unsigned f = 0; f < NFILES && !ret; f++) {
		inode_key(&kb, FILE_BASE + f, &m.f[f].ino);
		ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
	}
	if (!ret)
		ret = trans_commit(&t, COMMIT_SYNC);
	trans_exit(&t);
	return ret;
}

static struct model g_run_model, g_check_model;

struct wl_result {
	unsigned last;      /* last transaction whose commit was attempted */
	unsigned durable;   /* every transaction <= this is durable */
	bool open_failed, error_without_cut, closed;
	int err;
};

static bool cut_now(struct blockdev *bd) { return emu_dev_was_cut(bd); }

/* Run the workload on bd until the cut (or to the end, closing cleanly). */
static void run_workload(struct blockdev *bd, struct wl_result *r)
{
	struct bkfs_fs *fs = NULL;
	struct blockdev *bds[1] = { bd };
	struct printbuf err = PRINTBUF;
	memset(r, 0, sizeof(*r));
	model_init(&g_run_model);
	int ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	pb_exit(&err);
	if (ret) {
		if (!cut_now(bd)) {
			r->open_failed = true;
			r->err = ret;
		}
		return;
	}
	/* the image was closed cleanly with an aged ring: the open read only
	 * the checkpoint the superblock names, and the cuts below land in the
	 * entries written after it (wrapping past the old ones) */
	CHECK(((struct journal *)fs->journal)->stats.clean_checkpoint);
	fs->dirty_limit = 12 * fs->node_bytes;
	fs->max_clean = 16;
	if (cut_now(bd))
		goto out;
	for (unsigned i = 1; i <= NTX; i++) {
		struct txdesc d;
		struct trans t;
		gen_txn(i, &d);
		trans_init(&t, fs);
		ret = queue_txn(&t, &g_run_model, i, &d);
		r->last = i;
		if (!ret)
			ret = trans_commit(&t, d.sync ? COMMIT_SYNC : 0);
		trans_exit(&t);
		if (cut_now(bd))
			goto out;
		if (i == PHASE_B)
			fs->dirty_limit = 4096 * fs->node_bytes;
		if (i == PHASE_C)
			fs->dirty_limit = 48 * fs->node_bytes;
		if (ret) {
			r->error_without_cut = true;
			r->err = ret;
			goto out;
		}
		/* durable: a sync commit, or the journal says everything is on disk */
		struct journal *j = fs->journal;
		if (d.sync || (!j->nr_records && journal_durable_seq(fs) + 1 >= journal_cur_seq(fs)))
			r->durable = i;
	}
	ret = bkfs_close(fs);
	fs = NULL;
	if (!cut_now(bd)) {
		r->closed = true;
		if (ret) {
			r->error_without_cut = true;
			r->err = ret;
		} else {
			r->durable = NTX;
		}
	}
out:
	if (fs)
		bkfs_close_nowrite(fs);
}

/* ---- state of a recovered filesystem ---- */

static int fs_state_hash(struct bkfs_fs *fs, u64 *out, struct model *seen)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 h = 0;
	model_init(seen);
	for (unsigned f = 0; f < NFILES; f++)
		memset(&seen->f[f].ino, 0, sizeof(seen->f[f].ino));
	for_each_btree_key(it, fs, BTREE_ID_inodes, POS_MIN, k, ret) {
		u64 inum = k->p.offset;
		const struct bkfs_inode *in = bkey_val(k);
		if (inum >= PAIR_BASE && inum < PAIR_BASE + 2 * NPAIRS) {
			unsigned p = (inum - PAIR_BASE) / 2;
			if (!((inum - PAIR_BASE) & 1)) {
				seen->pair_present[p] = true;
				seen->pair_ino[p] = *in;
			} else if (!seen->pair_present[p] || memcmp(&seen->pair_ino[p], in, sizeof(*in))) {
				/* second of a pair without (or differing from) the first */
				seen->pair_present[p] = false;
				h += 0x5bd1e995; /* cannot match any prefix */
				fprintf(stderr, "pair %u torn: key %llu present without its partner\n", p,
					(unsigned long long)inum);
				continue;
			}
			h += obj_hash(inum, in, sizeof(*in), NULL, 0);
		} else if (inum >= BULK_BASE && inum < BULK_BASE + NBULK) {
			seen->bulk_present[inum - BULK_BASE] = true;
			seen->bulk_ino[inum - BULK_BASE] = *in;
			h += obj_hash(inum, in, sizeof(*in), NULL, 0);
		} else if (inum >= FILE_BASE && inum < FILE_BASE + NFILES) {
			seen->f[inum - FILE_BASE].ino = *in;
			h += obj_hash(inum, in, sizeof(*in), NULL, 0);
		} else if (inum != BKFS_ROOT_INO) {
			fprintf(stderr, "unexpected inode %llu\n", (unsigned long long)inum);
			h += 1;
		}
	}
	if (ret)
		return ret;
	/* a pair whose second key is missing */
	for (unsigned p = 0; p < NPAIRS; p++) {
		struct bkey_buf kb;
		if (seen->pair_present[p] && btree_lookup(fs, BTREE_ID_inodes, POS(0, PAIR_BASE + 2 * p + 1), &kb)) {
			fprintf(stderr, "pair %u torn: second key missing\n", p);
			h += 0x5bd1e995;
		}
	}
	for (unsigned f = 0; f < NFILES; f++) {
		struct mfile *mf = &seen->f[f];
		if ((ret = extent_read(fs, FILE_BASE + f, 0, mf->data, FILE_MAX))) {
			fprintf(stderr, "file %u: read: %s\n", f, bkfs_strerror(ret));
			return ret;
		}
		for_each_btree_key(it, fs, BTREE_ID_extents, POS(FILE_BASE + f, 0), k, ret) {
			if (k->p.inode != FILE_BASE + f)
				break;
			for (u64 s = bkey_start_pos(k).offset; s < k->p.offset && s < FILE_SECTORS; s++)
				mf->alloc[s]++;
			if (k->p.offset > FILE_SECTORS)
				h += 3;
		}
		if (ret)
			return ret;
		h += obj_hash(1ull << 40 | f, mf->data, FILE_MAX, mf->alloc, FILE_SECTORS);
	}
	*out = h;
	return 0;
}

static void model_at(struct model *m, unsigned k)
{
	model_init(m);
	for (unsigned i = 1; i <= k; i++) {
		struct txdesc d;
		gen_txn(i, &d);
		model_apply(m, i, &d);
	}
}

/* explain how the recovered state differs from the state after prefix k */
static void diff_state(const struct model *seen, unsigned k)
{
	static struct model m;
	unsigned n = 0;
	model_at(&m, k);
	for (unsigned p = 0; p < NPAIRS && n < 8; p++)
		if (seen->pair_present[p] != m.pair_present[p] ||
		    (m.pair_present[p] && memcmp(&seen->pair_ino[p], &m.pair_ino[p], sizeof(m.pair_ino[p])))) {
			fprintf(stderr, "  vs prefix %u: pair %u present %d stamp %llu, want present %d stamp %llu\n", k, p,
				seen->pair_present[p], (unsigned long long)seen->pair_ino[p].size, m.pair_present[p],
				(unsigned long long)m.pair_ino[p].size);
			n++;
		}
	for (unsigned b = 0; b < NBULK && n < 8; b++)
		if (seen->bulk_present[b] != m.bulk_present[b] ||
		    (m.bulk_present[b] && memcmp(&seen->bulk_ino[b], &m.bulk_ino[b], sizeof(m.bulk_ino[b])))) {
			fprintf(stderr, "  vs prefix %u: bulk inode %u present %d stamp %llu, want %d stamp %llu\n", k, b,
				seen->bulk_present[b], (unsigned long long)seen->bulk_ino[b].size, m.bulk_present[b],
				(unsigned long long)m.bulk_ino[b].size);
			n++;
		}
	for (unsigned f = 0; f < NFILES && n < 8; f++) {
		if (memcmp(&seen->f[f].ino, &m.f[f].ino, sizeof(m.f[f].ino))) {
			fprintf(stderr, "  vs prefix %u: file %u inode size %llu sectors %llu mtime %llu, want %llu %llu %llu\n",
				k, f, (unsigned long long)seen->f[f].ino.size, (unsigned long long)seen->f[f].ino.sectors,
				(unsigned long long)seen->f[f].ino.mtime_ns, (unsigned long long)m.f[f].ino.size,
				(unsigned long long)m.f[f].ino.sectors, (unsigned long long)m.f[f].ino.mtime_ns);
			n++;
		}
		if (memcmp(seen->f[f].alloc, m.f[f].alloc, FILE_SECTORS)) {
			unsigned s = 0;
			while (seen->f[f].alloc[s] == m.f[f].alloc[s])
				s++;
			fprintf(stderr, "  vs prefix %u: file %u sector %u covered %u times, want %u\n", k, f, s,
				seen->f[f].alloc[s], m.f[f].alloc[s]);
			n++;
		}
		if (memcmp(seen->f[f].data, m.f[f].data, FILE_MAX)) {
			unsigned o = 0;
			while (seen->f[f].data[o] == m.f[f].data[o])
				o++;
			fprintf(stderr, "  vs prefix %u: file %u data differs at byte %u\n", k, f, o);
			n++;
		}
	}
	if (!n)
		fprintf(stderr, "  vs prefix %u: no difference found\n", k);
}

/* ---- the test ---- */

static u8 *g_image;
static u64 g_prefix_hash[NTX + 1];

/* cut: power lost after `cut` writes; at_flush: also before a flush that
 * directly follows write `cut` (emu_dev_set_cut_at) */
static struct blockdev *g_dev; /* one device, reset onto the image for every run */

static struct blockdev *image_dev(u64 cut, bool at_flush, bool reorder, u64 seed)
{
	if (!g_dev) {
		struct emu_opts o = { .size = DEV_SIZE };
		if (emu_dev_create(&o, &g_dev))
			return NULL;
		g_dev->keep_open = true;
	}
	struct blockdev *bd = g_dev;
	emu_dev_reset(bd, g_image, reorder, seed);
	bd->nr_writes = bd->nr_flushes = 0;
	if (cut && at_flush)
		emu_dev_set_cut_at(bd, cut);
	else if (cut)
		emu_dev_set_cut(bd, cut);
	return bd;
}

static void dev_free(struct blockdev *bd)
{
	if (bd == g_dev)
		return; /* reused; freed at the end */
	bd->keep_open = false;
	bd_close(bd);
}

/* ---- superblock writes under power loss ----
 * Every copy of the superblock is rewritten at open, at checkpoints that
 * changed the member table and at close. Power lost anywhere in such a write
 * (with reordering and torn writes) must leave a valid copy behind. */
static void test_super_writes(unsigned trials)
{
	struct emu_opts o = { .size = DEV_SIZE, .reorder = true, .seed = g_seed ^ 0x5b };
	struct blockdev *bd;
	struct bkfs_fs *fs;
	struct printbuf err = PRINTBUF;
	if (emu_dev_create(&o, &bd))
		return;
	memcpy(emu_dev_media(bd), g_image, DEV_SIZE);
	bd->keep_open = true;
	struct blockdev *bds[1] = { bd };
	REQUIRE_EQ(bkfs_open_devs(bds, 1, 0, &fs, &err), 0);
	unsigned bad = 0, torn = 0;
	for (unsigned i = 0; i < trials && fs; i++) {
		unsigned copies = 0;
		struct bkfs_sb sb;
		/* a change past the first sector (as fsck's last-run stamp, or the
		 * roots at close): a torn copy is then really invalid */
		fs->sb.fsck_last_run = i + 1;
		emu_dev_set_cut_at(bd, 1 + i % 4);
		bkfs_write_super(fs);
		emu_dev_power_cut(bd);
		int ret = bkfs_read_super(bd, &sb, &copies, NULL);
		torn += copies < 3;
		if (ret && bad++ < 5)
			fprintf(stderr, "superblock trial %u (power lost after write %u): no valid copy left\n", i,
				1 + i % 4);
		CHECK_EQ(bkfs_write_super(fs), 0); /* all copies valid again */
	}
	CHECK_EQ(bad, 0);
	printf("powerloss: %u superblock writes cut, %u left fewer than 3 valid copies, %u left none\n", trials,
	       torn, bad);
	if (fs)
		bkfs_close_nowrite(fs);
	pb_exit(&err);
	dev_free(bd);
}


struct stats {
	u64 tested, reopened_ok, verified_ok, prefix_ok, extra_rw, errors_after_cut, closed_runs;
	u64 min_gap, max_gap, sum_replayed_prefix;
	u64 scan_cuts, scan_findings;
};

/* one cut point; returns true if everything held */
static bool test_cut(u64 cut, bool at_flush, struct stats *st)
{
	struct blockdev *bd = image_dev(cut, at_flush, true, cut * 0x9E37 + at_flush + g_seed);
	struct wl_result r;
	bool ok = true;
	char tag[64];
	snprintf(tag, sizeof(tag), "cut %llu%s", (unsigned long long)cut, at_flush ? " (before flush)" : "");
	if (!bd)
		return false;
	run_workload(bd, &r);
	st->tested++;
	if (r.open_failed || r.error_without_cut) {
		fprintf(stderr, "%s: workload failed without a power cut: %s\n", tag, bkfs_strerror(r.err));
		ok = false;
	}
	st->closed_runs += r.closed;
	emu_dev_power_cut(bd);

	struct bkfs_fs *fs = NULL;
	struct blockdev *bds[1] = { bd };
	struct printbuf err = PRINTBUF;
	int ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	if (ret) {
		fprintf(stderr, "%s: reopen after power loss failed: %s: %s (last txn %u, durable %u)\n", tag,
			bkfs_strerror(ret), pb_str(&err), r.last, r.durable);
		pb_exit(&err);
		dev_free(bd);
		return false;
	}
	pb_exit(&err);
	st->reopened_ok++;
	/* the raw-scan check (stale nodes that look newer than the tree) is a
	 * known open issue: counted and reported, fatal only with PL_SCAN=1 */
	u64 scan_before = st->scan_findings;
	struct verify_opts vo = { .check_disk = true, .check_scan = true,
				  .scan_findings = NULL /* fatal: scans must never prefer an uncommitted node */, .tag = tag };
	unsigned p = verify_fs(fs, &vo);
	st->scan_cuts += st->scan_findings > scan_before;
	vo.check_scan = false;
	if (p) {
		fprintf(stderr, "%s: verifier found %u problems (last txn %u, durable %u)\n", tag, p, r.last, r.durable);
		ok = false;
	} else {
		st->verified_ok++;
	}
	u64 h;
	ret = fs_state_hash(fs, &h, &g_check_model);
	if (ret) {
		fprintf(stderr, "%s: reading the recovered state: %s\n", tag, bkfs_strerror(ret));
		ok = false;
	} else {
		int found = -1;
		for (unsigned k = r.durable; k <= r.last; k++)
			if (g_prefix_hash[k] == h) {
				found = k;
				break;
			}
		if (found < 0) {
			int any = -1;
			for (unsigned k = 0; k <= NTX; k++)
				if (g_prefix_hash[k] == h)
					any = k;
			fprintf(stderr, "%s: recovered state is not the state after any prefix of transactions %u..%u "
				"(durable %u, last attempted %u)%s%d\n", tag, r.durable, r.last, r.durable, r.last,
				any >= 0 ? "; it is the state after transaction " : "", any);
			diff_state(&g_check_model, r.durable);
			if (r.last != r.durable)
				diff_state(&g_check_model, r.last);
			ok = false;
		} else {
			st->prefix_ok++;
			u64 gap = r.last - found;
			st->min_gap = MIN(st->min_gap, gap);
			st->max_gap = MAX(st->max_gap, gap);
			st->sum_replayed_prefix += found;
		}
	}

	/* every few cut points: the recovered filesystem must be usable */
	if (ok && cut % 7 == 0) {
		struct trans t;
		struct txdesc d;
		gen_txn(NTX + 1, &d);
		d.sync = true;
		trans_init(&t, fs);
		ret = queue_txn(&t, &g_check_model, NTX + 1, &d);
		if (!ret)
			ret = trans_commit(&t, COMMIT_SYNC);
		trans_exit(&t);
		if (!ret)
			ret = bkfs_close(fs);
		else
			bkfs_close_nowrite(fs);
		fs = NULL;
		if (!ret) {
			bds[0] = bd;
			ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
			pb_exit(&err);
		}
		u64 h2 = 0;
		static struct model after;
		if (!ret && (p = verify_fs(fs, &vo)))
			ret = -BKFS_E_CORRUPT;
		if (!ret)
			ret = fs_state_hash(fs, &h2, &after);
		if (!ret && h2 != model_hash(&g_check_model)) {
			fprintf(stderr, "%s: write after recovery + reopen: state differs\n", tag);
			ret = -BKFS_E_CORRUPT;
		}
		if (ret) {
			fprintf(stderr, "%s: using the recovered filesystem failed: %s\n", tag, bkfs_strerror(ret));
			ok = false;
		} else {
			st->extra_rw++;
		}
	}
	if (fs)
		bkfs_close_nowrite(fs);
	dev_free(bd);
	return ok;
}

int main(void)
{
	const char *se = getenv("BKFS_TEST_SEED"), *sc = getenv("BKFS_TEST_SCALE");
	if (se)
		g_seed = strtoull(se, NULL, 0);
	unsigned scale = sc && atoi(sc) > 0 ? atoi(sc) : 1;
	u64 t0 = now_ns();

	/* the formatted image */
	struct emu_opts o = { .size = DEV_SIZE, .seed = 1 };
	struct blockdev *bd;
	REQUIRE_EQ(emu_dev_create(&o, &bd), 0);
	bd->keep_open = true;
	struct format_opts fo = { .block_size = BLOCK, .btree_node_size = 4096, .bucket_size = 64 << 10,
				  .journal_size = 1 << 20 };
	struct printbuf err = PRINTBUF;
	struct blockdev *bds[1] = { bd };
	int ret = bkfs_format_devs(bds, 1, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	CHECK_EQ(ret, 0);
	/* the files exist before the workload starts */
	struct bkfs_fs *fs;
	bds[0] = bd;
	REQUIRE_EQ(bkfs_open_devs(bds, 1, 0, &fs, &err), 0);
	CHECK_EQ(create_files(fs), 0);
	/* age the journal: the workload's entries then wrap around the ring */
	struct journal *jn = fs->journal;
	u64 warm = 0;
	while (jn->wpos < jn->ring_bytes - (jn->ring_bytes >> 4) && warm < 100000) {
		struct trans t;
		struct bkey_buf kb;
		struct bkfs_inode in;
		stamp_inode(&in, warm++, 0);
		inode_key(&kb, 90000, &in);
		trans_init(&t, fs);
		ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
		if (!ret)
			ret = trans_commit(&t, COMMIT_SYNC);
		trans_exit(&t);
		if (ret)
			break;
	}
	CHECK_EQ(ret, 0);
	struct trans t;
	trans_init(&t, fs);
	CHECK_EQ(trans_delete(&t, BTREE_ID_inodes, POS(0, 90000)), 0);
	CHECK_EQ(trans_commit(&t, COMMIT_SYNC), 0);
	trans_exit(&t);
	u64 wpos = jn->wpos, ring = jn->ring_bytes;
	CHECK_EQ(bkfs_close(fs), 0);
	pb_exit(&err);
	g_image = malloc(DEV_SIZE);
	memcpy(g_image, emu_dev_media(bd), DEV_SIZE);
	dev_free(bd);

	test_super_writes(4000 * scale);

	/* the model: state hash after every prefix */
	static struct model m;
	model_init(&m);
	g_prefix_hash[0] = model_hash(&m);
	for (unsigned i = 1; i <= NTX; i++) {
		struct txdesc d;
		gen_txn(i, &d);
		model_apply(&m, i, &d);
		g_prefix_hash[i] = model_hash(&m);
	}

	/* count the workload's writes; the full run must reach the final state */
	bd = image_dev(0, false, false, 1);
	struct wl_result r;
	run_workload(bd, &r);
	u64 W = bd->nr_writes, F = bd->nr_flushes;
	CHECK(r.closed && !r.error_without_cut && !r.open_failed);
	if (r.err)
		fprintf(stderr, "full run: %s\n", bkfs_strerror(r.err));
	bds[0] = bd;
	REQUIRE_EQ(bkfs_open_devs(bds, 1, BKFS_OPEN_RDONLY, &fs, &err), 0);
	u64 h = 0;
	CHECK_EQ(fs_state_hash(fs, &h, &g_check_model), 0);
	CHECK(h == g_prefix_hash[NTX]);
	struct verify_opts vo = { .check_disk = true, .tag = "full run" };
	CHECK_EQ(verify_fs(fs, &vo), 0);
	bkfs_close_nowrite(fs);
	dev_free(bd);

	/* the cut points: every (write, mode) pair - power lost after the write,
	 * or after it and before a flush that follows - or a seeded sample */
	u64 want = (getenv("PL_WANT") ? strtoull(getenv("PL_WANT"), NULL, 0) : 2000ull) * scale;
	u64 C = 2 * W, n = C <= want ? C : want;
	struct stats st = { .min_gap = UINT64_MAX };
	u64 rs = g_seed ^ 0xc0ffee, failures = 0;
	for (u64 i = 0; i < n; i++) {
		/* stratified sample: one candidate per slice */
		u64 c = C <= want ? i : (i * C) / n + rng_next(&rs) % MAX((u64)1, C / n);
		c = MIN(c, C - 1);
		u64 cut = 1 + c / 2;
		if (!test_cut(cut, c & 1, &st)) {
			failures++;
			CHECK(0);
			if (failures >= 10) {
				fprintf(stderr, "stopping after %llu failing cut points\n", (unsigned long long)failures);
				break;
			}
		} else {
			t_passed++;
		}
	}
	printf("powerloss: image journal aged by %llu sync commits (write position %llu KiB of %llu KiB)\n",
	       (unsigned long long)warm, (unsigned long long)wpos >> 10, (unsigned long long)ring >> 10);
	printf("powerloss: workload %u transactions, %llu writes, %llu flushes; %llu cut points tested "
	       "(%s), %llu reopened, %llu verified, %llu recovered an allowed prefix, %llu written+reopened after "
	       "recovery; recovered prefix lags the last attempted transaction by %llu..%llu; %.1f s\n",
	       NTX, (unsigned long long)W, (unsigned long long)F, (unsigned long long)st.tested,
	       C <= want ? "every write, both modes" : "seeded sample of writes x 2 modes", (unsigned long long)st.reopened_ok,
	       (unsigned long long)st.verified_ok, (unsigned long long)st.prefix_ok, (unsigned long long)st.extra_rw,
	       (unsigned long long)(st.min_gap == UINT64_MAX ? 0 : st.min_gap), (unsigned long long)st.max_gap,
	       (now_ns() - t0) / 1e9);
	printf("powerloss: raw-scan check: after %llu of %llu cut points "
	       "the raw devices hold %llu stale nodes (written by a checkpoint that never landed, or sharing a seq) "
	       "that a scan would take as newer than the tree\n",
	       (unsigned long long)st.scan_cuts, (unsigned long long)st.tested, (unsigned long long)st.scan_findings);
	if (g_dev) {
		g_dev->keep_open = false;
		bd_close(g_dev);
	}
	free(g_image);
	TEST_MAIN_END();
}
