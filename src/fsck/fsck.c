/* fsck.c - the checker's framework: the named-error table, findings, modes,
 * reports (text and JSON), memory estimate and the pass driver. */
#include "fsck.h"
#include "../util/darray.h"
#include "../btree/iter.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <time.h>
#include <sys/resource.h>

const struct fsck_err_info fsck_err_table[FSCK_ERR_NR] = {
#define x(n, num, f) { #n, num, f },
	FSCK_ERRORS()
#undef x
};

const char *const fsck_pass_names[FSCK_PASS_NR] = {
#define x(n) #n,
	FSCK_PASSES()
#undef x
};

static volatile sig_atomic_t fsck_cancelled;
static void on_sigint(int sig) { (void)sig; fsck_cancelled = 1; }

void fsck_list_errors(struct printbuf *out)
{
	pb_printf(out, "%-4s %-48s %s\n", "num", "name", "flags");
	for (unsigned i = 0; i < FSCK_ERR_NR; i++)
		pb_printf(out, "%-4u %-48s %s\n", fsck_err_table[i].num, fsck_err_table[i].name,
			  fsck_err_table[i].flags & FSCK_PREEN ? "preen" : "-");
}

/* whether the mode repairs this finding: -y everything, -p the PREEN ones */
static bool mode_fixes(struct fsck_ctx *c, unsigned err)
{
	if (fsck_err_table[err].flags & FSCK_NOFIX)
		return false;
	return c->opts.mode == FSCK_MODE_YES ||
	       (c->opts.mode == FSCK_MODE_PREEN && (fsck_err_table[err].flags & FSCK_PREEN));
}

bool fsck_err(struct fsck_ctx *c, unsigned err, const char *action, const char *fmt, ...)
{
	if (c->trap) {
		c->trapped = true;
		return false;
	}
	struct printbuf pb = PRINTBUF;
	va_list ap;
	va_start(ap, fmt);
	pb_vprintf(&pb, fmt, ap);
	va_end(ap);
	if (darray_room(c->f, c->cap, c->nr + 1, 64)) {
		pb_exit(&pb);
		c->operational_error = true;
		return false;
	}
	bool fix = mode_fixes(c, err);
	struct fsck_finding *f = &c->f[c->nr++];
	memset(f, 0, sizeof(*f));
	f->err = err;
	f->pass = c->pass;
	f->object = pb.buf ? pb.buf : strdup("");
	f->action = action ? action : "none";
	f->fixed = fix;
	c->counts[err]++;
	if (fix) {
		c->nr_fixed++;
		fsck_begin_repair(c);
	} else {
		c->nr_unfixed++;
	}
	return fix;
}

void fsck_err_msg(struct fsck_ctx *c, const char *fmt, ...)
{
	if (!c->nr || c->trapped)
		return;
	struct fsck_finding *f = &c->f[c->nr - 1];
	struct printbuf pb = PRINTBUF;
	if (f->msg)
		pb_printf(&pb, "%s; ", f->msg);
	va_list ap;
	va_start(ap, fmt);
	pb_vprintf(&pb, fmt, ap);
	va_end(ap);
	free(f->msg);
	f->msg = pb.buf;
}

void fsck_lost_range_add(struct fsck_ctx *c, unsigned btree_id, struct bpos min, struct bpos max)
{
	if (c->trap)
		return;
	fsck_lost_range_add_counted(c, btree_id, min, max);
	/* a single key is counted by its caller; a node or gap is not */
	if ((btree_id == BTREE_ID_extents || btree_id == BTREE_ID_reflink) && !bpos_eq(min, max))
		c->lost_extents_uncounted = true;
}

void fsck_lost_range_add_counted(struct fsck_ctx *c, unsigned btree_id, struct bpos min, struct bpos max)
{
	if (c->trap)
		return;
	if (c->nr_lost_ranges == c->cap_lost_ranges) {
		size_t nc = c->cap_lost_ranges ? c->cap_lost_ranges * 2 : 16;
		struct fsck_lost_range *n = realloc(c->lost_ranges, nc * sizeof(*n));
		if (!n) {
			c->operational_error = true;
			return;
		}
		c->lost_ranges = n;
		c->cap_lost_ranges = nc;
	}
	c->lost_ranges[c->nr_lost_ranges++] = (struct fsck_lost_range){ btree_id, min, max };
}

bool fsck_lost_range_has_inode(const struct fsck_ctx *c, unsigned btree_id, u64 inum)
{
	for (size_t i = 0; i < c->nr_lost_ranges; i++) {
		const struct fsck_lost_range *r = &c->lost_ranges[i];
		if (r->btree_id == btree_id && r->min.inode <= inum && inum <= r->max.inode)
			return true;
	}
	return false;
}

bool fsck_lost_range_has_pos(const struct fsck_ctx *c, unsigned btree_id, struct bpos pos)
{
	for (size_t i = 0; i < c->nr_lost_ranges; i++) {
		const struct fsck_lost_range *r = &c->lost_ranges[i];
		if (r->btree_id == btree_id && bpos_cmp(r->min, pos) <= 0 && bpos_cmp(pos, r->max) <= 0)
			return true;
	}
	return false;
}

bool fsck_lost_range_any(const struct fsck_ctx *c, unsigned btree_id)
{
	for (size_t i = 0; i < c->nr_lost_ranges; i++)
		if (c->lost_ranges[i].btree_id == btree_id)
			return true;
	return false;
}

void fsck_begin_repair(struct fsck_ctx *c)
{
	if (!fsck_may_fix(c))
		return;
	c->changed = true;
	c->fs->flags &= ~BKFS_OPEN_RDONLY;
}

void bkey_object_text(struct printbuf *out, unsigned btree_id, unsigned level, const struct bkey *k)
{
	pb_printf(out, "btree %s level %u pos ", btree_id_str(btree_id), level);
	bpos_to_text(out, k->p);
}

/* ---- read-ahead of a btree level ---- */

struct fsck_ra {
	struct btree_ra *ra;
	struct btree_iter it; /* over the pointers, one level up */
	unsigned id;
};

static bool ra_level_next(void *arg, unsigned *id, struct bkey_buf *kb)
{
	struct fsck_ra *r = arg;
	struct bkey *k;
	if (btree_iter_peek(&r->it, &k) || !k)
		return false;
	memcpy(kb, k, bkey_bytes(k));
	*id = r->id;
	btree_iter_advance(&r->it);
	return true;
}

struct fsck_ra *fsck_ra_level(struct bkfs_fs *fs, unsigned btree_id, unsigned level, struct bpos start)
{
	if (!fs->readahead || level + 1 >= BTREE_MAX_DEPTH)
		return NULL;
	struct fsck_ra *r = xcalloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->id = btree_id;
	btree_iter_init(&r->it, fs, btree_id, level + 1, start);
	if (!(r->ra = btree_ra_open(fs, ra_level_next, r))) {
		free(r);
		return NULL;
	}
	return r;
}

void fsck_ra_step(struct fsck_ra *r)
{
	if (r)
		btree_ra_fill(r->ra);
}

void fsck_ra_end(struct fsck_ra *r)
{
	if (!r)
		return;
	btree_ra_close(r->ra);
	free(r);
}

/* ---- reports ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char ch = *s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static int write_json(const struct fsck_result *r, enum fsck_mode mode, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "{\n  \"exit_status\": %d,\n  \"mode\": \"%s\",\n  \"findings\": [", r->status,
		mode == FSCK_MODE_YES ? "yes" : mode == FSCK_MODE_PREEN ? "preen" : "no");
	for (size_t i = 0; i < r->nr; i++) {
		const struct fsck_finding *x = &r->f[i];
		fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
		json_str(f, fsck_err_table[x->err].name);
		fprintf(f, ", \"number\": %u, \"pass\": ", fsck_err_table[x->err].num);
		json_str(f, fsck_pass_names[x->pass]);
		fprintf(f, ", \"object\": ");
		json_str(f, x->object);
		fprintf(f, ", \"message\": ");
		json_str(f, x->msg ? x->msg : "");
		fprintf(f, ", \"action\": ");
		json_str(f, x->action);
		fprintf(f, ", \"fixed\": %s}", x->fixed && mode != FSCK_MODE_NO ? "true" : "false");
	}
	fprintf(f, "\n  ],\n  \"passes\": [");
	bool first = true;
	for (unsigned p = 0; p < FSCK_PASS_NR; p++) {
		if (!r->pass_ran[p])
			continue;
		fprintf(f, "%s\n    {\"name\": \"%s\", \"seconds\": %.6f}", first ? "" : ",", fsck_pass_names[p],
			r->pass_ns[p] / 1e9);
		first = false;
	}
	fprintf(f, "\n  ],\n  \"counts\": {");
	first = true;
	for (unsigned e = 0; e < FSCK_ERR_NR; e++)
		if (r->counts[e]) {
			fprintf(f, "%s\"%s\": %llu", first ? "" : ", ", fsck_err_table[e].name,
				(unsigned long long)r->counts[e]);
			first = false;
		}
	fprintf(f, "},\n  \"missing_devices\": [");
	for (unsigned d = 0, n = 0; d < r->nr_members; d++)
		if (r->missing_devs >> d & 1)
			fprintf(f, "%s%u", n++ ? ", " : "", d);
	fprintf(f, "],\n  \"fixed\": %llu,\n  \"unfixed\": %llu,\n  \"lost\": {\"extents\": %llu, \"sectors\": %llu, \"nodes\": %llu, \"files\": %llu, \"extents_at_least\": %s},\n  \"salvaged_inodes\": %llu,\n  \"recreated_inodes\": %llu,\n  \"salvaged_nodes\": %llu,\n  \"salvaged_nodes_keys_lost\": %llu\n}\n",
		(unsigned long long)(mode == FSCK_MODE_NO ? 0 : r->nr_fixed),
		(unsigned long long)(mode == FSCK_MODE_NO ? r->nr : r->nr_unfixed),
		(unsigned long long)r->lost_extents, (unsigned long long)r->lost_sectors,
		(unsigned long long)r->lost_nodes, (unsigned long long)r->lost_files,
		r->lost_extents_at_least ? "true" : "false", (unsigned long long)r->salvaged_inodes,
		(unsigned long long)r->recreated_inodes, (unsigned long long)r->salvaged_nodes,
		(unsigned long long)r->salvaged_keys_lost);
	return fclose(f);
}

static void print_report(const struct fsck_result *r, enum fsck_mode mode)
{
	int last_pass = -1;
	for (size_t i = 0; i < r->nr; i++) {
		const struct fsck_finding *x = &r->f[i];
		if ((int)x->pass != last_pass) {
			printf("pass %s:\n", fsck_pass_names[x->pass]);
			last_pass = x->pass;
		}
		printf("  %s (%u): %s%s%s -> %s%s\n", fsck_err_table[x->err].name, fsck_err_table[x->err].num,
		       x->object, x->msg ? ": " : "", x->msg ? x->msg : "", x->action,
		       mode == FSCK_MODE_NO ? " (not fixed: -n)" : x->fixed ? " (fixed)" : " (not fixed)");
	}
	if (r->missing_devs) {
		printf("degraded: device");
		for (unsigned d = 0; d < r->nr_members; d++)
			if (r->missing_devs >> d & 1)
				printf(" %u", d);
		printf(" of %u missing (not given, or no valid superblock): what is only there cannot be read\n",
		       r->nr_members);
	}
	printf("passes:");
	for (unsigned p = 0; p < FSCK_PASS_NR; p++)
		if (r->pass_ran[p])
			printf(" %s %.3fs", fsck_pass_names[p], r->pass_ns[p] / 1e9);
	printf("\n");
	if (r->salvaged_nodes)
		printf("salvaged: %llu btree nodes kept but for the keys of their damaged chunks (%llu keys %s)\n",
		       (unsigned long long)r->salvaged_nodes, (unsigned long long)r->salvaged_keys_lost,
		       mode == FSCK_MODE_NO ? "a repair would lose" : "lost");
	if (r->lost_extents || r->lost_nodes || r->salvaged_inodes || r->lost_files || r->recreated_inodes)
		printf("data: %s%llu extents (%llu sectors) and %llu btree nodes %s; %llu files lost data; "
		       "%llu inodes %s to lost+found; %llu inodes %s (owner, mode and times not the old ones)\n",
		       r->lost_extents_at_least ? "at least " : "", (unsigned long long)r->lost_extents, (unsigned long long)r->lost_sectors,
		       (unsigned long long)r->lost_nodes, mode == FSCK_MODE_NO ? "a repair would lose" : "lost",
		       (unsigned long long)r->lost_files, (unsigned long long)r->salvaged_inodes,
		       mode == FSCK_MODE_NO ? "it would salvage" : "salvaged", (unsigned long long)r->recreated_inodes,
		       mode == FSCK_MODE_NO ? "it would recreate" : "recreated");
	printf("%zu findings, %llu fixed, %llu left\n", r->nr,
	       (unsigned long long)(mode == FSCK_MODE_NO ? 0 : r->nr_fixed),
	       (unsigned long long)(mode == FSCK_MODE_NO ? r->nr : r->nr_unfixed));
}

static void progress(struct fsck_ctx *c, unsigned pass, u64 start_ns)
{
	if (!c->opts.progress || !isatty(STDERR_FILENO))
		return;
	unsigned done = pass + 1, width = 30;
	double el = (now_ns() - start_ns) / 1e9;
	double eta = done ? el / done * (FSCK_PASS_NR - done) : 0;
	fprintf(stderr, "\r[");
	for (unsigned i = 0; i < width; i++)
		fputc(i < width * done / FSCK_PASS_NR ? '#' : ' ', stderr);
	fprintf(stderr, "] %-22s %3u%% ETA %.1fs", fsck_pass_names[pass], 100 * done / FSCK_PASS_NR, eta);
	if (done == FSCK_PASS_NR)
		fputc('\n', stderr);
	fflush(stderr);
}

typedef int (*pass_fn)(struct fsck_ctx *);

static int run_pass(struct fsck_ctx *c, unsigned pass, pass_fn fn, u64 start)
{
	if (fsck_cancelled)
		return -BKFS_E_AGAIN;
	c->pass = pass;
	u64 t0 = now_ns(), reads0 = c->fs->nodes_read;
	int ret = fn(c);
	if (c->fs->bad_copies && !c->trap)
		fsck_report_bad_copies(c);
	c->pass_ns[pass] += now_ns() - t0;
	c->pass_nodes_read[pass] += c->fs->nodes_read - reads0;
	c->pass_ran[pass] = true;
	progress(c, pass, start);
	if (c->opts.verbose)
		fprintf(stderr, "bkfs fsck: pass %s done in %.3fs (%llu nodes read, %zu cached)\n", fsck_pass_names[pass],
			(now_ns() - t0) / 1e9, (unsigned long long)(c->fs->nodes_read - reads0), c->fs->nr_nodes);
	return ret;
}

static int run_check_allocations(struct fsck_ctx *c, size_t nr_before_topology, u64 start)
{
	/* a sound topology: check_allocations may run the filesystem passes'
	 * scans with its own walk */
	c->fuse_fs = c->nr == nr_before_topology && !c->scan;
	/* the allocation sweeps compare against the alloc keys: read them from
	 * the btrees as topology left them (a rebuilt alloc btree may hold keys
	 * the mirror read at open never had, and those would never be
	 * corrected) */
	if (!c->fuse_fs && alloc_reload(c->fs) == -BKFS_E_NOMEM)
		return -BKFS_E_NOMEM;
	return run_pass(c, FSCK_PASS_check_allocations, fsck_check_allocations, start);
}

#define FSCK_NODE_CACHE (1u << 20)

/* The btree nodes of the filesystem (one copy each), from the accounting
 * counters the open read: what the passes will read. */
static u64 btree_nodes(struct bkfs_fs *fs)
{
	u64 btree_bytes = 0;
	struct alloc_state *as = ALLOC(fs);
	for (size_t i = 0; i < as->nr_acct; i++)
		if (as->acct[i].pos.inode == ACCT_btree && as->acct[i].v[0] > 0)
			btree_bytes += (u64)as->acct[i].v[0] << SECTOR_SHIFT;
	btree_bytes /= MAX(1, fs->sb.metadata_replicas);
	return DIV_ROUND_UP(btree_bytes, fs->node_bytes);
}

/* What the process holds before it opens anything: text and data of the
 * binary and its libraries, stacks, stdio (`bkfs --version` peaks at 2.0 MiB) */
#define FSCK_BASE_RSS (2u << 20)
/* the journal scan's buffers, held during the open only: its 64 KiB chunk
 * (journal.c RING_CHUNK) and an entry of at most 256 KiB */
#define FSCK_OPEN_BUF (320u << 10)

/* Peak resident memory of a run: the base, the live bucket mirror (56 B + 1
 * per bucket), and the larger of what the open holds while scanning the
 * journal and what the passes hold: GC shadow state, the filesystem passes'
 * inode table and the node buffers (cache, pool, read-ahead slots; never
 * more than the filesystem has nodes). Measured peaks on the benchmark images
 * are within 25 % of it (bench/aged.sh prints both). */
static u64 mem_estimate(struct bkfs_fs *fs, bool readahead)
{
	u64 buckets = 0;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		buckets += fs->sb.members[d].nbuckets;
	/* the pages a node buffer touches: its used bytes (nodes are read only
	 * that far; between half and wholly full, 3/4 on average), header and
	 * key offsets */
	u64 node = fs->node_bytes * 3 / 4 + fs->node_bytes / 8;
	u64 nodes = fs->max_clean + BTREE_NODE_POOL + (readahead ? BTREE_RA_SLOTS : 0);
	nodes = MIN(nodes, btree_nodes(fs) + 1);
	u64 passes = fsck_gc_mem_estimate(fs) + fsck_fs_mem_estimate(fs) + nodes * node;
	return FSCK_BASE_RSS + buckets * (sizeof(struct bkfs_alloc) + 1) + MAX(passes, (u64)FSCK_OPEN_BUF);
}

static void record_error_counts(struct fsck_ctx *c)
{
	for (unsigned e = 0; e < FSCK_ERR_NR; e++) {
		unsigned slot = fsck_err_table[e].num;
		if (c->counts[e] && slot < BKFS_FSCK_ERR_SLOTS)
			c->fs->sb.fsck_err_count[slot] += c->counts[e];
	}
	c->fs->sb.fsck_last_run = (u64)time(NULL);
}

/* --debug-fail-after-writes N: a device wrapper whose writes fail once N
 * writes (counted over all devices) have been made, to test that killing fsck
 * at any write leaves a filesystem a second fsck repairs. */
struct failwrap {
	struct blockdev *inner;
	u64 *count, limit;
};

static int fw_read(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	struct failwrap *w = bd->priv;
	return bd_read(w->inner, buf, off, len);
}

static int fw_write(struct blockdev *bd, const void *buf, u64 off, size_t len)
{
	struct failwrap *w = bd->priv;
	if (++*w->count > w->limit)
		return -BKFS_E_IO;
	return bd_write(w->inner, buf, off, len);
}

static int fw_flush(struct blockdev *bd)
{
	struct failwrap *w = bd->priv;
	return *w->count > w->limit ? -BKFS_E_IO : bd_flush(w->inner);
}

static int fw_discard(struct blockdev *bd, u64 off, u64 len)
{
	struct failwrap *w = bd->priv;
	return *w->count > w->limit || !w->inner->discard ? 0 : w->inner->discard(w->inner, off, len);
}

static void fw_close(struct blockdev *bd)
{
	struct failwrap *w = bd->priv;
	bd_close(w->inner);
	free(w);
}

static struct blockdev *failwrap(struct blockdev *inner, u64 *count, u64 limit)
{
	struct blockdev *bd = xcalloc(1, sizeof(*bd));
	struct failwrap *w = xcalloc(1, sizeof(*w));
	if (!bd || !w || (inner->path && !(bd->path = strdup(inner->path)))) {
		free(bd);
		free(w);
		return NULL;
	}
	*w = (struct failwrap){ .inner = inner, .count = count, .limit = limit };
	bd->read = fw_read;
	bd->write = fw_write;
	bd->flush = fw_flush;
	bd->discard = fw_discard;
	bd->close = fw_close;
	bd->size = inner->size;
	bd->priv = w;
	return bd;
}

/* ---- the pass driver ---- */

/* the passes after the open, in order */
static const struct { unsigned pass; pass_fn fn; } open_passes[] = {
	{ FSCK_PASS_journal, fsck_pass_journal },
	{ FSCK_PASS_check_topology, fsck_check_topology },
	{ FSCK_PASS_check_allocations, fsck_check_allocations },
	{ FSCK_PASS_check_alloc_info, fsck_check_alloc_info },
	{ FSCK_PASS_check_filesystem, fsck_check_filesystem },
	{ FSCK_PASS_gc_gens, fsck_gc_gens },
};

static bool pass_wanted(const struct fsck_ctx *c, unsigned pass)
{
	return (c->opts.passes & (1u << pass)) && (pass != FSCK_PASS_gc_gens || c->opts.gc_gens);
}

/* The passes on the open filesystem (c->opts.passes); r records how
 * check_topology and check_allocations shared the leaves. */
static int run_passes(struct fsck_ctx *c, struct fsck_result *r, u64 start)
{
	size_t nr_before_topology = 0;
	int ret = 0;
	/* check_topology may leave the filesystem btrees' leaves to
	 * check_allocations' walk, which reads them anyway */
	c->topo_defer = !c->opts.full_topology && pass_wanted(c, FSCK_PASS_check_allocations);
	for (unsigned i = 0; i < ARRAY_SIZE(open_passes) && !ret; i++) {
		unsigned pass = open_passes[i].pass;
		if (!pass_wanted(c, pass))
			continue;
		if (pass == FSCK_PASS_check_topology)
			nr_before_topology = c->nr;
		if (pass != FSCK_PASS_check_allocations) {
			ret = run_pass(c, pass, open_passes[i].fn, start);
			if (pass == FSCK_PASS_check_topology)
				r->leaves_deferred = c->leaves_deferred;
			continue;
		}
		ret = run_check_allocations(c, nr_before_topology, start);
		if (ret == -BKFS_E_RETRY) {
			/* a leaf left to its walk was not sound: the whole
			 * topology check, then the walk again */
			r->topology_retried = true;
			ret = run_pass(c, FSCK_PASS_check_topology, fsck_check_topology_deferred, start);
			if (!ret)
				ret = run_check_allocations(c, nr_before_topology, start);
		}
		r->fs_prescan_made = c->fs_prescan != NULL;
	}
	r->leaves_unchecked = c->leaves_deferred;
	fsck_fs_prescan_drop(c);
	return ret;
}

/* The superblock pass, on the raw devices before anything trusts a
 * superblock. The devices stay open, unless it fails. */
static int check_superblocks(struct fsck_ctx *c, struct blockdev **bds, unsigned nr, u64 start)
{
	struct bkfs_fs pre = { .nr_devs = nr };
	for (unsigned i = 0; i < nr; i++)
		pre.devs[i].bd = bds[i];
	c->fs = &pre;
	int ret = run_pass(c, FSCK_PASS_superblock, fsck_pass_superblock, start);
	c->fs = NULL;
	if (ret) {
		for (unsigned i = 0; i < nr; i++)
			bd_close(bds[i]);
		fprintf(stderr, "bkfs fsck: %s\n", bkfs_strerror(ret));
	}
	return ret;
}

/* Open the filesystem for the passes (takes bds): read-only, nothing
 * reaches the disk before fsck_commit_repairs(). */
static int check_open(struct fsck_ctx *c, struct blockdev **bds, unsigned nr)
{
	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	int ret = bkfs_open_devs(bds, nr, FSCK_OPEN_FLAGS | (c->opts.all_copies ? BKFS_OPEN_ALL_COPIES : 0), &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs fsck: cannot open: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return ret;
	}
	c->fs = fs;
	c->nr_members = fs->nr_devs;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (!fs->devs[d].bd)
			c->missing_devs |= 1u << d;
	fsck_sb_repairs_apply(c);
	if (!fs->sb.clean && c->opts.mode != FSCK_MODE_NO) {
		/* as a read-write open would: repairs must not reuse the seqs of
		 * nodes an interrupted checkpoint may have left on disk */
		sb_node_seq_blacklist_add(&fs->sb, fs->durable_node_seq + 1, fs->node_seq + NODE_SEQ_RECOVERY_JUMP);
		fs->node_seq += NODE_SEQ_RECOVERY_JUMP;
	}
	fs->dirty_limit = UINT64_MAX; /* nothing reaches disk before the final checkpoint */
	/* the passes walk each btree in key order and hold only paths and
	 * interior nodes: a big node cache would get no hits across passes,
	 * and every node it holds costs memory (and page faults to grow) */
	u64 cache = c->opts.node_cache ? c->opts.node_cache : FSCK_NODE_CACHE;
	fs->max_clean = MIN(fs->max_clean, MAX((size_t)16, (size_t)MIN(cache / fs->node_bytes, (u64)SIZE_MAX)));
	if (err.len && c->opts.verbose)
		fprintf(stderr, "bkfs fsck: %s\n", pb_str(&err));
	pb_exit(&err);
	return 0;
}

/* The memory estimate (printed) against -m; starts the read-ahead helper
 * when asked for, the btrees are big enough for it to pay, and its buffers
 * fit. */
static int check_memory(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	u64 limit = c->opts.mem_limit;
	bool readahead = c->opts.readahead && btree_nodes(fs) >= c->opts.ra_min_nodes;
	u64 est = mem_estimate(fs, readahead);
	if (readahead && limit && est > limit)
		est = mem_estimate(fs, readahead = false);
	printf("bkfs fsck: %u device(s), memory estimate %.1f MiB\n", fs->nr_devs, est / 1048576.0);
	if (limit && est > limit) {
		fprintf(stderr, "bkfs fsck: needs about %.1f MiB, more than the limit -m %.1f MiB\n", est / 1048576.0,
			limit / 1048576.0);
		return -BKFS_E_NOMEM;
	}
	if (readahead)
		btree_ra_start(fs);
	if (c->opts.verbose)
		fprintf(stderr, "bkfs fsck: read-ahead %s (%llu btree nodes)\n", fs->readahead ? "on" : "off",
			(unsigned long long)btree_nodes(fs));
	return 0;
}

int fsck_commit_repairs(struct fsck_ctx *c)
{
	struct bkfs_fs *fs = c->fs;
	int ret;
	c->fs = NULL;
	if (!c->changed || !fsck_may_fix(c) || c->operational_error) {
		bkfs_close_nowrite(fs);
		return 0;
	}
	fs->flags &= ~(BKFS_OPEN_RDONLY | BKFS_OPEN_NOJOURNAL);
	fs->sb.clean = 0;
	ret = bkfs_write_super(fs);
	/* the journal repair: damaged entries are erased (the checkpoint
	 * below supersedes everything they could have held) */
	if (!ret && c->counts[FSCK_ERR_journal_entry_bad_csum])
		ret = journal_scrub_bad(fs);
	/* the checkpoint: every repaired node, alloc key and counter */
	if (!ret)
		ret = bkfs_close(fs);
	else
		bkfs_close_nowrite(fs);
	if (ret) {
		fprintf(stderr, "bkfs fsck: writing repairs: %s\n", bkfs_strerror(ret));
		c->operational_error = true;
	}
	return ret;
}

static int exit_status(const struct fsck_ctx *c)
{
	int status = FSCK_EXIT_OK;
	if (c->nr) {
		if (c->opts.mode == FSCK_MODE_NO || c->nr_unfixed)
			status |= FSCK_EXIT_UNCORRECTED;
		if (c->opts.mode != FSCK_MODE_NO && c->nr_fixed)
			status |= FSCK_EXIT_CORRECTED;
	}
	if (c->operational_error)
		status |= FSCK_EXIT_OPERATIONAL;
	return status;
}

/* The passes on the open filesystem, then the commit (closes it). Returns
 * the exit status; r->ret gets the operational error. */
static int check_open_fs(struct fsck_ctx *c, struct fsck_result *r, u64 start)
{
	struct bkfs_fs *fs = c->fs;
	int ret = run_passes(c, r, start);
	btree_ra_stop(fs);
	if (ret == -BKFS_E_AGAIN || fsck_cancelled) {
		fprintf(stderr, "bkfs fsck: cancelled; nothing was written\n");
		bkfs_close_nowrite(fs);
		r->ret = -BKFS_E_AGAIN;
		return FSCK_EXIT_CANCELED;
	}
	if (ret) {
		fprintf(stderr, "bkfs fsck: %s\n", bkfs_strerror(ret));
		c->operational_error = true;
		r->ret = ret;
	}
	if (c->nr)
		record_error_counts(c);
	/* the one place a repair reaches the disk (-y/-p): see fsck.h */
	ret = fsck_commit_repairs(c);
	if (!r->ret)
		r->ret = ret;
	return exit_status(c);
}

/* the run's findings and counters move from c to r */
static void result_take(struct fsck_result *r, struct fsck_ctx *c)
{
	r->f = c->f;
	r->nr = c->nr;
	c->f = NULL;
	c->nr = c->cap = 0;
	memcpy(r->counts, c->counts, sizeof(r->counts));
	memcpy(r->pass_ran, c->pass_ran, sizeof(r->pass_ran));
	memcpy(r->pass_ns, c->pass_ns, sizeof(r->pass_ns));
	memcpy(r->pass_nodes_read, c->pass_nodes_read, sizeof(r->pass_nodes_read));
	r->nr_fixed = c->nr_fixed;
	r->nr_unfixed = c->nr_unfixed;
	r->lost_extents = c->lost_extents;
	r->lost_sectors = c->lost_sectors;
	r->lost_nodes = c->lost_nodes;
	r->salvaged_inodes = c->salvaged_inodes;
	r->missing_devs = c->missing_devs;
	r->nr_members = c->nr_members;
	r->lost_files = c->lost_files;
	r->recreated_inodes = c->recreated_inodes;
	r->salvaged_nodes = c->salvaged_nodes;
	r->salvaged_keys_lost = c->salvaged_keys_lost;
	if (c->lost_extents_uncounted) {
		/* every file that lost data lost at least one extent */
		r->lost_extents = MAX(c->lost_extents, c->lost_files);
		r->lost_extents_at_least = true;
	}
	free(c->lost_ranges);
	c->lost_ranges = NULL;
	c->nr_lost_ranges = c->cap_lost_ranges = 0;
	if (c->scan) {
		scan_result_free(c->scan);
		free(c->scan);
		c->scan = NULL;
	}
}

void fsck_result_free(struct fsck_result *r)
{
	for (size_t i = 0; i < r->nr; i++) {
		free(r->f[i].object);
		free(r->f[i].msg);
	}
	free(r->f);
	r->f = NULL;
	r->nr = 0;
}

int fsck_devs(struct blockdev **devs, unsigned nr, const struct fsck_opts *o, struct fsck_result *r)
{
	struct fsck_ctx c = { .opts = *o };
	struct blockdev *bds[BKFS_MAX_DEVS];
	u64 start = now_ns();
	int ret;
	memset(r, 0, sizeof(*r));
	if (!c.opts.passes)
		c.opts.passes = FSCK_PASSES_ALL;
	if (nr > BKFS_MAX_DEVS) {
		for (unsigned i = 0; i < nr; i++)
			bd_close(devs[i]);
		r->ret = -BKFS_E_INVAL;
		return r->status = FSCK_EXIT_USAGE;
	}
	memcpy(bds, devs, nr * sizeof(*bds));
	if ((c.opts.passes & FSCK_PASS_BIT(superblock)) && (ret = check_superblocks(&c, bds, nr, start))) {
		r->ret = ret;
		r->status = FSCK_EXIT_OPERATIONAL;
	} else if ((ret = check_open(&c, bds, nr))) {
		r->ret = ret;
		r->status = FSCK_EXIT_OPERATIONAL;
	} else if ((ret = check_memory(&c))) {
		bkfs_close_nowrite(c.fs);
		r->ret = ret;
		r->status = FSCK_EXIT_OPERATIONAL;
	} else {
		r->readahead = c.fs->readahead != NULL;
		r->status = check_open_fs(&c, r, start);
	}
	result_take(r, &c);
	return r->status;
}

int bkfs_fsck(char *const *devs, unsigned nr, const struct fsck_opts *o)
{
	static u64 fail_count;
	struct blockdev *bds[BKFS_MAX_DEVS] = { 0 };
	struct fsck_opts opts = *o;
	struct fsck_result r;
	int ret;

	signal(SIGINT, on_sigint);
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs fsck: at most %d devices\n", BKFS_MAX_DEVS);
		return FSCK_EXIT_USAGE;
	}
	for (unsigned i = 0; i < nr; i++)
		if ((ret = file_dev_open(devs[i], o->mode == FSCK_MODE_NO ? BD_RDONLY : 0, &bds[i]))) {
			fprintf(stderr, "bkfs fsck: %s: %s\n", devs[i], bkfs_strerror(ret));
			for (unsigned j = 0; j < i; j++)
				bd_close(bds[j]);
			return FSCK_EXIT_OPERATIONAL;
		}
	for (unsigned i = 0; i < nr && o->fail_after_writes; i++) {
		struct blockdev *w = failwrap(bds[i], &fail_count, o->fail_after_writes);
		if (!w) {
			for (unsigned j = 0; j < nr; j++)
				bd_close(bds[j]);
			return FSCK_EXIT_OPERATIONAL;
		}
		bds[i] = w;
	}
	/* a helper thread reads ahead of the passes' btree walks (nothing is
	 * written to the devices before the final checkpoint), when there is a
	 * second CPU to run it on (on one CPU its polling only steals time
	 * from the walk) and enough nodes to read */
	opts.readahead = !o->fail_after_writes && usable_cpus() > 1;
	opts.ra_min_nodes = FSCK_RA_MIN_NODES;
	int status = fsck_devs(bds, nr, &opts, &r);
	if (o->fail_after_writes)
		fprintf(stderr, "bkfs fsck: debug: %llu device writes attempted, %llu made\n",
			(unsigned long long)fail_count,
			(unsigned long long)MIN(fail_count, o->fail_after_writes));
	print_report(&r, o->mode);
	if (o->json_path && write_json(&r, o->mode, o->json_path))
		fprintf(stderr, "bkfs fsck: cannot write %s\n", o->json_path);
	fsck_result_free(&r);
	return status;
}
