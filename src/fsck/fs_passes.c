/* fs_passes.c - the filesystem passes of the checker (DESIGN §5 item 7):
 * inodes, dirents and xattrs are valid; every dirent names an existing inode
 * of the right type; every inode is reachable (else it goes back under the
 * name it records, docs/FORMAT.md 4.5, or to lost+found); link counts,
 * directory structure (one parent, no loops), recorded names, i_size and
 * i_sectors match the extents.
 *
 * Shape (guarantee 6: -n reports exactly what -y repairs, in the same order):
 *   1. decide: read-only scans in key order build a compact per-inode table
 *      and lists of problems; nothing is changed;
 *   2. report: every finding goes through fsck_err() in a fixed order, which
 *      says whether this run repairs it;
 *   3. apply: the repairs chosen in 2 are made with ordinary transactions
 *      (triggers keep buckets and accounting exact).
 * Every expected value (link counts, parents) is computed for the state the
 * repairs lead to, so a repair never changes what a later check reports.
 *
 * Scans (all linear, btrees read in order; the per-inode table is sorted by
 * inum and searched in memory, never with per-inode btree lookups):
 *   - inodes, merged with extents and xattrs (three iterators in lockstep):
 *     the table, sizes/sectors found, data or xattrs of missing inodes;
 *   - (only if some inode has no valid file type) dirents, for evidence;
 *   - dirents: link counts, the dirent kept for each directory, bad dirents;
 *   - (only if a directory has several dirents) dirents again, to name the
 *     extra ones in order;
 *   - inodes again: the per-inode value checks, reported in inum order
 *     (skipped when the table says nothing is wrong: for the recorded names,
 *     when the sum over the names the inodes record equals the sum over
 *     where the table has their dirents);
 *   - per unreachable inode (only those): its key, for the name it records,
 *     and a dirent lookup that the name is free;
 *   - the orphan list (inodes unlinked while open, nlink 0): read first,
 *     its entries are exempt from the reachability check; an entry whose
 *     inode is missing or has links is stale and goes, an nlink-0 inode
 *     that no dirent and no entry name is unreachable (lost+found).
 * Paths for messages are built lazily from dirents, only for findings. */
#include "fsck.h"
#include "../fs/fs.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../btree/iter.h"
#include <dirent.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define NONE UINT32_MAX
#define BKFS_ORIGIN_XATTR "user.bkfs.origin"

/* ---- per-inode state: 12 bytes ----
 * The table is the checker's biggest allocation (one entry per inode), so an
 * entry keeps only what every inode needs. The inum's high 32 bits live in a
 * run list (struct hirun): the table is sorted by inum, so they change at
 * most a few times. Directories' parent and nlink fields go to a side list
 * (dpar); counts too big for 16 bits to another (bigcnt). */
#define F_NEW    (1u << 0) /* not in the inodes btree: recreated root, or an orphan */
#define F_ORPHAN (1u << 1) /* data/xattrs of a missing inode: recreated as a file */
#define F_PREF   (1u << 2) /* dir: the kept dirent is in the dir its parent field names */
#define F_TO_LF  (1u << 3) /* gets a dirent in lost+found */
#define F_LOOP   (1u << 4) /* dir moved to lost+found to break a loop */
#define F_WALK   (1u << 5) /* loop walk: on the current walk */
#define F_OK     (1u << 6) /* loop walk: known to reach the root or lost+found */
#define F_KEPT   (1u << 7) /* second dirent scan: the kept dirent was seen */
#define F_LFFIX  F_WALK    /* after the walks: the lost+found repair is being made */

struct fi {
	u32 ino;      /* low 32 bits of the inum */
	u32 link;     /* dirs: index of the dir holding the kept dirent; others: of the first dirent */
	u16 count;    /* non-dirs: dirents; dirs: dirents pointing at it, then subdirectories
		       * (use cnt()/cnt_inc(): CNT_BIG means the count is in bigcnt) */
	u8 type : 4;  /* DT_* (0 while unknown) */
	u8 nl : 4;    /* non-dirs: the inode's nlink, NL_NAMED1 for 1 with a recorded name, NL_BIG
		       * if 14 or more (or no inode); dirs: 1 if it has a recorded name */
	u8 flags;
};
_Static_assert(sizeof(struct fi) == 12, "per-inode state");
#define NL_BIG 15
#define NL_NAMED1 14
#define CNT_BIG UINT16_MAX

/* table entries from index start on have inums with these high 32 bits */
struct hirun { u32 start, hi; };
/* a directory's parent and nlink fields; parent is the inum until the table
 * is complete, then the table index of that inode, or NONE */
struct dpar { u64 parent; u32 idx, nlink; };
struct bigcnt { u32 idx, count; };

/* what the extents and xattrs of one inum add up to */
struct acc {
	u64 sectors; /* extent + inline_data + reflink_p + reservation sizes */
	u64 iend;    /* end of inline data, exact bytes */
	u64 xend;    /* end of other data (extents, reflink pointers), bytes */
	u64 end;     /* max of both: the size of a file recreated from it */
	u32 nkeys;   /* every extents-btree key (reservations and errors too) */
	u32 xattrs;
};

struct orphan { u32 idx; struct acc a; };
/* a directory whose inode was in a dropped inodes node but whose entries
 * remain: it is recreated with them (entries: how many remain) */
struct ghost { u64 inum; u32 entries; };
struct badrec { u32 idx; u32 mode; u64 size, sectors, parent; u32 nlink; struct acc a; bool children; u8 hint; };
struct dirrec { u32 idx; u64 size; struct acc a; u64 new_inum; bool fix; };
/* lost: sectors are missing where check_topology gave keys up (not a
 * wrong counter): the file lost data (inode_data_lost) */
struct szrec  { u32 idx; u64 sectors, end; bool lost; };

enum { D_NON_DIR, D_MISSING, D_RELINK, D_DTYPE };
struct drec { struct bpos pos; u64 target; u8 reason, d_type, new_type; bool skip; };
struct dextra { struct bpos pos; u64 target; };
struct loopr { u32 idx; };
/* an inode whose xattrs may have been in a dropped node: the xattrs left */
struct xlost { u32 idx, xattrs; };

#define FX_MODE    (1u << 0)
#define FX_SIZE    (1u << 1)
#define FX_SECTORS (1u << 2)
#define FX_NLINK   (1u << 3)
#define FX_PARENT  (1u << 4)
#define FX_NAME    (1u << 5)
#define FX_DROPNAME (1u << 6)
/* name (FX_NAME): the recorded name to write, malloc'd; NULL: none;
 * (FX_DROPNAME): the recorded name to drop, in directory name_dir */
struct ifix { u64 inum; u32 seq, mask; u32 mode, nlink; u64 size, sectors, parent, name_dir; char *name; };
/* an inode put back under its recorded name (dir: table index): one no
 * dirent leads to, or a file that has fewer dirents than links (extra) */
/* extra: a name more for a reachable file (its own finding); also: a name
 * more for an unreachable one (part of that finding) */
struct relink { u32 idx, dir; bool fix, extra, also; char name[BKFS_NAME_MAX + 1]; };
struct lfadd { u64 inum; u8 type; };
/* the last known path of an inode that goes to lost+found: the name a
 * removed dirent gave it (user.bkfs.origin, docs/FORMAT.md) */
struct origin { u64 inum; char *path; };
struct del { struct bpos pos; u64 target; };
struct dtfix { struct bpos pos; u64 target; u8 type; };
/* a symlink whose target is lost: its one dirent (in dir) and the inode go */
struct lnkrm { u64 inum, dir; };

/* qsort/bsearch must not see a NULL base, even with no elements */
static void vsort(void *base, size_t nr, size_t sz, int (*cmp)(const void *, const void *))
{
	if (nr > 1)
		qsort(base, nr, sz, cmp);
}

/* a stream over the extents or xattrs btree: the current key's summary */
struct kst {
	struct btree_iter it;
	struct fsck_ra *ra;
	const struct fsck_key_hook *hook;
	unsigned id;
	bool end;
	struct bpos p;
	u8 type;
	u32 size;
	u64 bend;
	bool exact;  /* bend is an exact byte count (inline data) */
};

struct fsp {
	struct fsck_ctx *c;
	struct bkfs_fs *fs;
	DARRAY(struct fi) t;
	DARRAY(struct hirun) hi;
	DARRAY(struct dpar) dpar;
	DARRAY(struct bigcnt) big;
	DARRAY(struct orphan) orph;
	DARRAY(struct badrec) bad;
	DARRAY(struct dirrec) dirs;
	DARRAY(struct szrec) sz;
	DARRAY(struct drec) dr;
	DARRAY(struct dextra) extra;
	DARRAY(struct loopr) loops;
	DARRAY(struct xlost) xlost; /* in table order */
	DARRAY(struct ifix) fix;
	DARRAY(struct lfadd) lfadd;
	DARRAY(struct del) dels;
	DARRAY(struct dtfix) dtfix;
	DARRAY(struct lnkrm) lnkrm;
	DARRAY(struct ghost) ghosts; /* in inum order */
	DARRAY(struct relink) relinks; /* in table order */
	DARRAY(u32) namebad;    /* inodes whose recorded name is malformed, in table order */
	DARRAY(u64) linknamed;  /* inodes recording names of other links (format 5), in inum order */
	/* sums of link_mix(inum, dir, name): over the names those inodes
	 * record, and over the dirents that name them. Equal sums (and no
	 * dirent removed or made by the repairs) spare check_link_names its
	 * lookups. */
	u64 links_recorded, links_found;
	/* recorded names against the dirents (docs/FORMAT.md 4.5), as sums of
	 * name_mix(inum, parent): of the named inodes that have one name (dirs,
	 * nlink 1), and of where the table says their one dirent is after the
	 * repairs. Equal sums spare the second inode scan. */
	u64 names_recorded, names_found;
	DARRAY(struct origin) origins; /* in inum order, first name kept */
	size_t ghost_next;      /* the inode scan's position in ghosts */
	DARRAY(u64) ol;         /* the orphan list: inums in order */
	DARRAY(u64) oldel;      /* its stale entries to delete */
	struct kst ex, xa;
	const struct fsck_key_hook *hook; /* check_allocations' marking of every leaf key read */
	bool need2;          /* some directory has several dirents */

	u32 root;
	bool root_seen, root_missing, root_notdir, root_fix;
	u32 root_old_mode;
	u32 lf;              /* existing lost+found (table index), or NONE */
	struct bpos lf_pos;
	bool lf_taken;       /* a root entry named lost+found that is not it stays */
	bool need_lf;
	u64 lf_new;          /* inum of the lost+found to create, or 0 */
	u32 lf_new_subdirs;
	bool lf_fix;
	char lf_name[48];
	struct printbuf lf_path;
	u64 next_inum;
	u64 path_budget;     /* dirents the path builder may still read */
	bool dcache_valid;   /* last dir looked up */
	u32 dcache_idx;
	u64 dcache_inum;
	u32 ifix_seq;
};

static const char *ft_name(unsigned t)
{
	switch (t) {
	case DT_REG: return "regular file";
	case DT_DIR: return "directory";
	case DT_LNK: return "symlink";
	case DT_CHR: return "character device";
	case DT_BLK: return "block device";
	case DT_FIFO: return "fifo";
	case DT_SOCK: return "socket";
	}
	return "unknown type";
}

static bool ft_valid(unsigned t)
{
	return t == DT_REG || t == DT_DIR || t == DT_LNK || t == DT_CHR || t == DT_BLK ||
	       t == DT_FIFO || t == DT_SOCK;
}

static unsigned ft_of_mode(u32 mode)
{
	unsigned t = (mode >> 12) & 15;
	return ft_valid(t) ? t : 0;
}

static u32 mode_of_ft(unsigned t)
{
	return (u32)t << 12;
}

static u64 sec_bytes(u64 sectors)
{
	return sectors > (UINT64_MAX >> SECTOR_SHIFT) ? UINT64_MAX : sectors << SECTOR_SHIFT;
}

/* ---- table ---- */

/* the first of nr elements (of sz bytes, sorted by the u32 member at offset
 * off) whose member is >= key */
static size_t lower_bound_u32(const void *base, size_t nr, size_t sz, size_t off, u32 key)
{
	return sorted_lower_bound(nr, m, ({
		u32 v;
		memcpy(&v, (const u8 *)base + m * sz + off, sizeof(v));
		v < key;
	}));
}
#define LOWER_BOUND_IDX(v, i) \
	lower_bound_u32((v).data, (v).nr, sizeof(*(v).data), offsetof(__typeof__(*(v).data), idx), i)

static u64 t_inum(const struct fsp *s, u32 idx)
{
	const struct hirun *r = s->hi.data;
	/* the last run starting at or before idx */
	size_t after = sorted_lower_bound(s->hi.nr, m, r[m].start <= idx);
	return (u64)r[after ? after - 1 : 0].hi << 32 | s->t.data[idx].ino;
}
#define E_INUM(s, e) t_inum(s, (u32)((e) - (s)->t.data))

/* the index range [*b, *e) of the entries whose inums have high bits hi */
static bool hi_range(const struct fsp *s, u32 hi, size_t *b, size_t *e)
{
	const struct hirun *r = s->hi.data;
	size_t n = s->hi.nr, lo = lower_bound_u32(r, n, sizeof(*r), offsetof(struct hirun, hi), hi);
	if (lo == n || r[lo].hi != hi)
		return false;
	*b = r[lo].start;
	*e = lo + 1 < n ? r[lo + 1].start : s->t.nr;
	return true;
}

static u32 tfind(struct fsp *s, u64 inum)
{
	const struct fi *d = s->t.data;
	size_t base, n, lo, hi, step = 1;
	if (!hi_range(s, (u32)(inum >> 32), &base, &n))
		return NONE;
	u32 x = (u32)inum;
	d += base;
	n -= base;
	if (!n || x < d[0].ino || x > d[n - 1].ino)
		return NONE;
	/* inums are mostly dense: start where inum would be if they were, and
	 * gallop to a range holding the first entry >= inum */
	u64 span = d[n - 1].ino - d[0].ino;
	size_t g = span ? (size_t)((double)(x - d[0].ino) / (double)span * (double)(n - 1)) : 0;
	if (g >= n)
		g = n - 1;
	if (d[g].ino < x) {
		lo = hi = g + 1; /* everything before lo is < x */
		while (hi < n && d[hi].ino < x) {
			lo = hi + 1;
			hi = lo + step > n ? n : lo + step;
			step *= 2;
		}
	} else {
		lo = hi = g; /* d[hi] >= x */
		while (lo && d[lo - 1].ino >= x) {
			hi = lo - 1;
			lo = lo > step ? lo - step : 0;
			step *= 2;
		}
	}
	lo += lower_bound_u32(d + lo, hi - lo, sizeof(*d), offsetof(struct fi, ino), x);
	return lo < n && d[lo].ino == x ? (u32)(base + lo) : NONE;
}

static struct dpar *dpar_find(const struct fsp *s, u32 idx)
{
	size_t i = LOWER_BOUND_IDX(s->dpar, idx);
	return i < s->dpar.nr && s->dpar.data[i].idx == idx ? &s->dpar.data[i] : NULL;
}

/* a directory's parent (table index), or NONE */
static u32 dir_parent(const struct fsp *s, u32 idx)
{
	const struct dpar *d = dpar_find(s, idx);
	return d ? (u32)d->parent : NONE;
}

static struct bigcnt *big_find(const struct fsp *s, u32 idx)
{
	for (size_t i = 0; i < s->big.nr; i++)
		if (s->big.data[i].idx == idx)
			return &s->big.data[i];
	return NULL;
}

static u32 cnt(const struct fsp *s, u32 idx)
{
	u16 c = s->t.data[idx].count;
	const struct bigcnt *b = c == CNT_BIG ? big_find(s, idx) : NULL;
	return b ? b->count : c;
}

static int cnt_inc(struct fsp *s, u32 idx)
{
	struct fi *e = &s->t.data[idx];
	if (e->count < CNT_BIG - 1) {
		e->count++;
		return 0;
	}
	struct bigcnt *b = e->count == CNT_BIG ? big_find(s, idx) : NULL;
	if (!b) {
		if (!(b = darray_push_zeroed(s->big)))
			return -BKFS_E_NOMEM;
		b->idx = idx;
		b->count = e->count;
		e->count = CNT_BIG;
	}
	b->count++;
	return 0;
}

static void cnt_zero(struct fsp *s, u32 idx)
{
	struct bigcnt *b = s->t.data[idx].count == CNT_BIG ? big_find(s, idx) : NULL;
	if (b)
		b->count = 0;
	else
		s->t.data[idx].count = 0;
}

/* dirents come grouped by directory: remember the last one */
static u32 tfind_dir(struct fsp *s, u64 inum)
{
	if (s->dcache_valid && s->dcache_inum == inum)
		return s->dcache_idx;
	s->dcache_valid = true;
	s->dcache_inum = inum;
	return s->dcache_idx = tfind(s, inum);
}

static struct fi *tpush(struct fsp *s, u64 inum)
{
	if (s->t.nr >= NONE - 1)
		return NULL;
	u32 hi = (u32)(inum >> 32);
	if (!s->hi.nr || s->hi.data[s->hi.nr - 1].hi != hi) {
		struct hirun *r = darray_push_zeroed(s->hi);
		if (!r)
			return NULL;
		r->start = (u32)s->t.nr;
		r->hi = hi;
	}
	struct fi *e = darray_push_zeroed(s->t);
	if (e) {
		e->ino = (u32)inum;
		e->link = NONE;
		e->nl = NL_BIG;
	}
	return e;
}

/* ---- key streams ----
 * After a peek the iterator's pos is set to the key's own position, so an
 * advance after the node cache changed (another iterator read a node) moves
 * past this key and never returns it twice. */

static int kst_load(struct kst *s)
{
	struct bkey *k;
	for (;;) {
		fsck_cache_trim(s->it.fs);
		fsck_ra_step(s->ra);
		int ret = btree_iter_peek(&s->it, &k);
		if (ret)
			return ret;
		if (!k) {
			s->end = true;
			return 0;
		}
		s->it.pos = k->p;
		bool deleted = bkey_deleted(k);
		if (!deleted) {
			s->p = k->p;
			s->type = k->type;
			s->size = k->size;
			s->bend = sec_bytes(k->p.offset);
			s->exact = false;
			if (k->type == KEY_TYPE_inline_data && bkey_val_bytes(k) >= sizeof(struct bkfs_inline_data)) {
				const struct bkfs_inline_data *d = bkey_val(k);
				u64 start = k->size <= k->p.offset ? k->p.offset - k->size : 0;
				u64 b = sec_bytes(start);
				s->bend = b + d->bytes < b ? UINT64_MAX : b + d->bytes;
				s->exact = true;
			}
		}
		/* last use of k: the hook may read other nodes */
		if (s->hook && (ret = s->hook->fn(s->hook->arg, s->id, k)))
			return ret;
		if (deleted) {
			btree_iter_advance(&s->it);
			continue;
		}
		return 0;
	}
}

static int kst_next(struct kst *s)
{
	btree_iter_advance(&s->it);
	return kst_load(s);
}

static int kst_init(struct kst *s, struct bkfs_fs *fs, unsigned id, const struct fsck_key_hook *hook)
{
	memset(s, 0, sizeof(*s));
	s->hook = hook;
	s->id = id;
	btree_iter_init(&s->it, fs, id, 0, POS_MIN);
	s->ra = fsck_ra_level(fs, id, 0, POS_MIN);
	return kst_load(s);
}

static void kst_exit(struct kst *s)
{
	fsck_ra_end(s->ra);
	s->ra = NULL;
}

static int check_data(struct fsp *s, u32 idx, unsigned type, u64 size, u64 sectors, const struct acc *a,
		      bool root_special);
static int add_dpar(struct fsp *s, u32 idx, u64 parent, u32 nlink);

/* consume the extents and xattrs of inum */
static int gather(struct fsp *s, u64 inum, struct acc *a)
{
	int ret = 0;
	memset(a, 0, sizeof(*a));
	while (!s->ex.end && s->ex.p.inode == inum) {
		a->nkeys++;
		if (s->ex.type == KEY_TYPE_extent || s->ex.type == KEY_TYPE_inline_data ||
		    s->ex.type == KEY_TYPE_reflink_p) {
			a->sectors += s->ex.size;
			if (s->ex.exact)
				a->iend = MAX(a->iend, s->ex.bend);
			else
				a->xend = MAX(a->xend, s->ex.bend);
			a->end = MAX(a->end, s->ex.bend);
		} else if (s->ex.type == KEY_TYPE_reservation) {
			a->sectors += s->ex.size; /* allocated, reads as zeros: no data end */
		}
		if ((ret = kst_next(&s->ex)))
			return ret;
	}
	while (!s->xa.end && s->xa.p.inode == inum) {
		a->xattrs++;
		if ((ret = kst_next(&s->xa)))
			return ret;
	}
	return 0;
}

/* extents/xattrs of inums below `below` (all of them if all) have no inode:
 * each such inum becomes an orphan, recreated as a regular file */
static int consume_orphans(struct fsp *s, u64 below, bool all)
{
	for (;;) {
		bool he = !s->ex.end, hx = !s->xa.end, hg = s->ghost_next < s->ghosts.nr;
		if (!he && !hx && !hg)
			return 0;
		u64 i = UINT64_MAX;
		if (he)
			i = s->ex.p.inode;
		if (hx)
			i = MIN(i, s->xa.p.inode);
		if (hg)
			i = MIN(i, s->ghosts.data[s->ghost_next].inum);
		if (!all && i >= below)
			return 0;
		bool dir = hg && s->ghosts.data[s->ghost_next].inum == i;
		struct acc a;
		int ret = gather(s, i, &a);
		if (ret)
			return ret;
		struct fi *e = tpush(s, i);
		struct orphan *o = e ? darray_push_zeroed(s->orph) : NULL;
		if (!o)
			return -BKFS_E_NOMEM;
		e->type = dir ? DT_DIR : DT_REG;
		e->flags = F_NEW | F_ORPHAN;
		o->idx = s->t.nr - 1;
		o->a = a;
		if (dir) {
			s->ghost_next++;
			/* data of a directory goes to a file of its own in lost+found */
			if ((ret = add_dpar(s, o->idx, 0, 0)) || (ret = check_data(s, o->idx, DT_DIR, 0, 0, &a, false)))
				return ret;
		}
	}
}

/* size/sector/data checks of an inode whose type is known */
static int check_data(struct fsp *s, u32 idx, unsigned type, u64 size, u64 sectors, const struct acc *a,
		      bool root_special)
{
	if (type == DT_DIR) {
		if (root_special) {
			/* recreated or retyped root: the root repair sets size and
			 * sectors; only data needs a place */
			if (a->nkeys) {
				struct dirrec *d = darray_push_zeroed(s->dirs);
				if (!d)
					return -BKFS_E_NOMEM;
				d->idx = idx;
				d->a = *a;
			}
			return 0;
		}
		if (size || a->nkeys) {
			struct dirrec *d = darray_push_zeroed(s->dirs);
			if (!d)
				return -BKFS_E_NOMEM;
			d->idx = idx;
			d->size = size;
			d->a = *a;
		} else if (sectors) {
			struct szrec *z = darray_push_zeroed(s->sz);
			if (!z)
				return -BKFS_E_NOMEM;
			z->idx = idx;
		}
		return 0;
	}
	/* i_size may end anywhere in the last block of an extent (writes
	 * cover whole blocks) but not before it; inline data is exact */
	u64 want = size, bs = s->fs->block_bytes ? s->fs->block_bytes : 1;
	u64 rsize = size > UINT64_MAX - bs ? UINT64_MAX : ROUND_UP(size, bs);
	if (type == DT_REG && size < a->iend)
		want = MAX(want, a->iend);
	if (type == DT_REG && rsize < a->xend)
		want = MAX(want, a->xend);
	if (sectors > a->sectors && fsck_lost_range_has_inode(s->c, BTREE_ID_extents, t_inum(s, idx))) {
		/* its data was in a node the checker dropped: what remains is
		 * the file (a symlink without its target is removed) */
		struct szrec *z = darray_push_zeroed(s->sz);
		if (!z)
			return -BKFS_E_NOMEM;
		*z = (struct szrec){ .idx = idx, .sectors = a->sectors, .end = MIN(size, a->end), .lost = true };
		return 0;
	}
	if (sectors != a->sectors || want != size) {
		struct szrec *z = darray_push_zeroed(s->sz);
		if (!z)
			return -BKFS_E_NOMEM;
		z->idx = idx;
		z->sectors = a->sectors;
		z->end = want;
	}
	return 0;
}

static int add_dpar(struct fsp *s, u32 idx, u64 parent, u32 nlink)
{
	struct dpar *d = darray_push_zeroed(s->dpar);
	if (!d)
		return -BKFS_E_NOMEM;
	d->idx = idx;
	d->parent = parent;
	d->nlink = nlink;
	return 0;
}

/* a 64-bit mix of (inode, directory) for the recorded-name sums */
static u64 name_mix(u64 inum, u64 dir)
{
	u64 x = inum * 0x9E3779B97F4A7C15ull ^ (dir + 0x632BE59BD9B4E019ull);
	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	x *= 0x94D049BB133111EBull;
	return x ^ (x >> 32);
}

/* a 64-bit mix of (inode, directory, name) for the link-name sums */
static u64 link_mix(u64 inum, u64 dir, const void *name, size_t len)
{
	return name_mix(inum ^ ((u64)bkfs_crc32c(0, name, len) << 32), dir);
}

/* named: the inode's recorded name, as inode_name_parse says (1, 0, -1) */
static int add_inode(struct fsp *s, u64 inum, const struct bkfs_inode *v, int named)
{
	struct acc a;
	int ret = consume_orphans(s, inum, false);
	if (ret || (ret = gather(s, inum, &a)))
		return ret;
	if (s->ghost_next < s->ghosts.nr && s->ghosts.data[s->ghost_next].inum == inum)
		s->ghost_next++; /* the inode is there after all */
	struct fi *e = tpush(s, inum);
	if (!e)
		return -BKFS_E_NOMEM;
	u32 idx = s->t.nr - 1;
	unsigned type = v ? ft_of_mode(v->mode) : DT_DIR;
	bool root_special = false;
	u64 parent = v ? v->parent : inum;
	if (inum == BKFS_ROOT_INO) {
		s->root = idx;
		s->root_seen = true;
		if (!v) {
			s->root_missing = true;
			e->flags |= F_NEW;
			root_special = true;
		} else if (type != DT_DIR) {
			s->root_notdir = true;
			s->root_old_mode = v->mode;
			type = DT_DIR;
			root_special = true;
		}
	}
	e->type = type;
	if (v && fsck_lost_range_has_inode(s->c, BTREE_ID_xattrs, inum)) {
		struct xlost *x = darray_push_zeroed(s->xlost);
		if (!x)
			return -BKFS_E_NOMEM;
		*x = (struct xlost){ .idx = idx, .xattrs = a.xattrs };
	}
	u32 nlink = v ? v->nlink : 0;
	e->nl = v && nlink < NL_NAMED1 ? nlink : NL_BIG;
	if (named > 0 && (type == DT_DIR || nlink == 1))
		s->names_recorded += name_mix(inum, v->parent);
	if (type == DT_DIR)
		e->nl = named > 0;
	else if (named > 0 && nlink == 1)
		e->nl = NL_NAMED1;
	if (named < 0 && darray_push(s->namebad, idx))
		return -BKFS_E_NOMEM;
	if (type == DT_DIR && (ret = add_dpar(s, idx, parent, nlink)))
		return ret;
	if (!type) {
		struct badrec *b = darray_push_zeroed(s->bad);
		if (!b)
			return -BKFS_E_NOMEM;
		b->idx = idx;
		b->parent = parent;
		b->nlink = nlink;
		b->mode = v->mode;
		b->size = v->size;
		b->sectors = v->sectors;
		b->a = a;
		return 0;
	}
	return check_data(s, idx, type, v ? v->size : 0, v ? v->sectors : 0, &a, root_special);
}

static bool inode_key_ok(const struct bkey *k)
{
	return k->type == KEY_TYPE_inode && !k->p.inode && !k->p.snapshot &&
	       bkey_val_bytes(k) >= sizeof(struct bkfs_inode);
}

static int scan_inodes_ra(struct fsp *s, struct fsck_ra *ra)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	if ((ret = kst_init(&s->ex, s->fs, BTREE_ID_extents, s->hook)) ||
	    (ret = kst_init(&s->xa, s->fs, BTREE_ID_xattrs, s->hook)))
		return ret;
	btree_iter_init(&it, s->fs, BTREE_ID_inodes, 0, POS_MIN);
	for (;;) {
		fsck_cache_trim(s->fs);
		fsck_ra_step(ra);
		if ((ret = btree_iter_peek(&it, &k)))
			return ret;
		if (!k)
			break;
		it.pos = k->p;
		bool ok = inode_key_ok(k), past = k->p.inode;
		u64 inum = k->p.offset;
		struct bkfs_inode v;
		int named = 0;
		if (ok) {
			struct inode_name_ref refs[INODE_NAMES_MAX];
			memcpy(&v, bkey_val(k), sizeof(v));
			int nr = inode_names_parse(bkey_val(k), bkey_val_bytes(k), refs);
			named = nr > 0 ? 1 : nr;
			if (nr > 1 && darray_push(s->linknamed, inum))
				return -BKFS_E_NOMEM;
			for (int r = 0; r < nr && nr > 1; r++)
				s->links_recorded += link_mix(inum, r ? refs[r].dir : v.parent, refs[r].name, refs[r].len);
		}
		if (past && !s->hook)
			break;
		/* last use of k: the hook may read other nodes */
		if (s->hook && (ret = s->hook->fn(s->hook->arg, BTREE_ID_inodes, k)))
			return ret;
		btree_iter_advance(&it);
		if (!ok || past)
			continue; /* invalid keys are check_allocations' business */
		if (!s->root_seen && inum > BKFS_ROOT_INO && (ret = add_inode(s, BKFS_ROOT_INO, NULL, 0)))
			return ret;
		if ((ret = add_inode(s, inum, &v, named)))
			return ret;
	}
	if (!s->root_seen && (ret = add_inode(s, BKFS_ROOT_INO, NULL, 0)))
		return ret;
	return consume_orphans(s, 0, true);
}

static int scan_inodes(struct fsp *s)
{
	struct fsck_ra *ra = fsck_ra_level(s->fs, BTREE_ID_inodes, 0, POS_MIN);
	int ret = scan_inodes_ra(s, ra);
	fsck_ra_end(ra);
	kst_exit(&s->ex);
	kst_exit(&s->xa);
	return ret;
}

/* ---- dirents ---- */

struct dent {
	struct bpos pos;
	u64 inum;
	u8 d_type, len;
	char name[BKFS_NAME_MAX + 1];
};

/* next well-formed dirent (copied: the node may go away), *end at the end */
static int dent_next(struct btree_iter *it, struct fsck_ra *ra, const struct fsck_key_hook *hook, struct dent *d,
		     bool *end)
{
	struct bkey *k;
	for (;;) {
		fsck_cache_trim(it->fs);
		fsck_ra_step(ra);
		int ret = btree_iter_peek(it, &k);
		if (ret)
			return ret;
		if (!k) {
			*end = true;
			return 0;
		}
		it->pos = k->p;
		bool ok = k->type == KEY_TYPE_dirent && bkey_val_bytes(k) >= sizeof(struct bkfs_dirent);
		if (ok) {
			const struct bkfs_dirent *de = bkey_val(k);
			ok = de->name_len && de->name_len <= bkey_val_bytes(k) - sizeof(*de);
			if (ok) {
				d->pos = k->p;
				d->inum = de->inum;
				d->d_type = de->d_type;
				d->len = de->name_len;
				memcpy(d->name, de->name, de->name_len);
				d->name[de->name_len] = 0;
			}
		}
		/* last use of k: the hook may read other nodes */
		if (hook && (ret = hook->fn(hook->arg, BTREE_ID_dirents, k)))
			return ret;
		btree_iter_advance(it);
		if (ok) {
			*end = false;
			return 0;
		}
	}
}

enum { C_NON_DIR, C_MISSING, C_ORPHAN_KEEP, C_ORPHAN_DEL, C_OK };

/* An orphan a dirent names as a symlink comes back as one when what
 * remains of it is a symlink's target: one inline key of 1..2048 bytes
 * (as bkfs_create writes targets) with no NUL. Else it stays a regular
 * file (its name is removed, its data kept in lost+found). */
static bool orphan_is_symlink(struct fsp *s, u32 idx)
{
	size_t i = sorted_lower_bound(s->orph.nr, j, s->orph.data[j].idx < idx);
	if (i == s->orph.nr || s->orph.data[i].idx != idx)
		return false;
	const struct acc *a = &s->orph.data[i].a;
	if (a->nkeys != 1 || !a->iend || a->iend != a->end || a->end > 2048)
		return false;
	u64 inum = t_inum(s, idx);
	struct bkey_buf kb;
	if (btree_lookup(s->fs, BTREE_ID_extents, POS(inum, DIV_ROUND_UP(a->end, SECTOR_SIZE)), &kb) ||
	    kb.k.type != KEY_TYPE_inline_data)
		return false;
	const struct bkfs_inline_data *id = bkey_val(&kb.k);
	return id->bytes == a->end && id->bytes <= bkey_val_bytes(&kb.k) - sizeof(*id) &&
	       !memchr(id->data, 0, id->bytes);
}

static int classify(struct fsp *s, const struct dent *d, u32 *dI, u32 *tI)
{
	*dI = tfind_dir(s, d->pos.inode);
	*tI = NONE;
	if (*dI == NONE || s->t.data[*dI].type != DT_DIR)
		return C_NON_DIR;
	*tI = tfind(s, d->inum);
	if (*tI == NONE)
		return C_MISSING;
	const struct fi *e = &s->t.data[*tI];
	if (e->flags & F_ORPHAN) {
		if (e->type == DT_REG && d->d_type == DT_LNK && e->link == NONE && !cnt(s, *tI) &&
		    orphan_is_symlink(s, *tI))
			s->t.data[*tI].type = DT_LNK;
		/* a recreated directory keeps one name: its first */
		return d->d_type == e->type && (e->type != DT_DIR || e->link == NONE) ? C_ORPHAN_KEEP : C_ORPHAN_DEL;
	}
	return C_OK;
}

static int bad_find(struct fsp *s, u32 idx)
{
	size_t i = LOWER_BOUND_IDX(s->bad, idx);
	return i < s->bad.nr && s->bad.data[i].idx == idx ? (int)i : -1;
}

/* Inodes whose mode has no valid file type: decide the type from evidence
 * (entries inside it: a directory; else the d_type of a dirent naming it;
 * else a regular file), then check them like the others. */
static int resolve_bad_ra(struct fsp *s, struct fsck_ra *ra)
{
	struct btree_iter it;
	struct dent d;
	bool end = false;
	int ret;
	btree_iter_init(&it, s->fs, BTREE_ID_dirents, 0, POS_MIN);
	while (!(ret = dent_next(&it, ra, NULL, &d, &end)) && !end) {
		u32 dI = tfind_dir(s, d.pos.inode), tI = tfind(s, d.inum);
		int b;
		if (dI != NONE && !s->t.data[dI].type && (b = bad_find(s, dI)) >= 0)
			s->bad.data[b].children = true;
		if (tI != NONE && !s->t.data[tI].type && ft_valid(d.d_type) && (b = bad_find(s, tI)) >= 0 &&
		    !s->bad.data[b].hint)
			s->bad.data[b].hint = d.d_type;
	}
	if (ret)
		return ret;
	for (size_t i = 0; i < s->bad.nr; i++) {
		struct badrec *b = &s->bad.data[i];
		unsigned type = b->children ? DT_DIR : b->hint ? b->hint : DT_REG;
		s->t.data[b->idx].type = type;
		if (type == DT_DIR && (ret = add_dpar(s, b->idx, b->parent, b->nlink)))
			return ret;
		if ((ret = check_data(s, b->idx, type, b->size, b->sectors, &b->a, false)))
			return ret;
	}
	return 0;
}

static int resolve_bad(struct fsp *s)
{
	struct fsck_ra *ra = fsck_ra_level(s->fs, BTREE_ID_dirents, 0, POS_MIN);
	int ret = resolve_bad_ra(s, ra);
	fsck_ra_end(ra);
	return ret;
}

static int cmp_dirrec(const void *a, const void *b)
{
	u32 x = ((const struct dirrec *)a)->idx, y = ((const struct dirrec *)b)->idx;
	return x < y ? -1 : x > y;
}

static int cmp_dpar(const void *a, const void *b)
{
	u32 x = ((const struct dpar *)a)->idx, y = ((const struct dpar *)b)->idx;
	return x < y ? -1 : x > y;
}

static int cmp_szrec(const void *a, const void *b)
{
	u32 x = ((const struct szrec *)a)->idx, y = ((const struct szrec *)b)->idx;
	return x < y ? -1 : x > y;
}

static int cmp_drec_pos(const void *key, const void *elem)
{
	return bpos_cmp(*(const struct bpos *)key, ((const struct drec *)elem)->pos);
}

static bool linknamed(const struct fsp *s, u64 inum)
{
	size_t lo = 0, hi = s->linknamed.nr;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (s->linknamed.data[m] < inum)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < s->linknamed.nr && s->linknamed.data[lo] == inum;
}

static int scan_dirents_ra(struct fsp *s, bool *need2, struct fsck_ra *ra)
{
	struct btree_iter it;
	struct dent d;
	bool end = false;
	int ret;
	btree_iter_init(&it, s->fs, BTREE_ID_dirents, 0, POS_MIN);
	while (!(ret = dent_next(&it, ra, s->hook, &d, &end)) && !end) {
		u32 dI, tI;
		int c = classify(s, &d, &dI, &tI);
		struct drec *r;
		if (c != C_OK) {
			if (!(r = darray_push_zeroed(s->dr)))
				return -BKFS_E_NOMEM;
			r->pos = d.pos;
			r->target = d.inum;
			r->d_type = d.d_type;
			r->reason = c == C_NON_DIR ? D_NON_DIR : c == C_ORPHAN_KEEP ? D_RELINK : D_MISSING;
			if (c == C_ORPHAN_KEEP) {
				struct fi *e = &s->t.data[tI];
				if ((ret = cnt_inc(s, tI)))
					return ret;
				if (e->link == NONE)
					e->link = dI;
			}
			continue;
		}
		struct fi *e = &s->t.data[tI];
		if (e->type != d.d_type) {
			if (!(r = darray_push_zeroed(s->dr)))
				return -BKFS_E_NOMEM;
			r->pos = d.pos;
			r->target = d.inum;
			r->d_type = d.d_type;
			r->new_type = e->type;
			r->reason = D_DTYPE;
		}
		if ((ret = cnt_inc(s, tI)))
			return ret;
		if (s->linknamed.nr && e->type != DT_DIR && linknamed(s, d.inum))
			s->links_found += link_mix(d.inum, d.pos.inode, d.name, d.len);
		if (e->type == DT_DIR) {
			if (tI == s->root) {
				*need2 = true;
			} else if (e->link == NONE) {
				e->link = dI;
				if (dI == dir_parent(s, tI))
					e->flags |= F_PREF;
			} else {
				*need2 = true;
				if (!(e->flags & F_PREF) && dI == dir_parent(s, tI)) {
					e->link = dI;
					e->flags |= F_PREF;
				}
			}
		} else if (e->link == NONE) {
			e->link = dI;
		}
		if (dI == s->root && d.len == 10 && !memcmp(d.name, "lost+found", 10)) {
			if (e->type == DT_DIR && tI != s->root && s->lf == NONE) {
				s->lf = tI;
				s->lf_pos = d.pos;
			} else {
				s->lf_taken = true;
			}
		}
	}
	return ret;
}

/* Directories whose inode lay in a dropped inodes node but whose entries
 * remain (only when such a node was dropped: one more pass over the
 * dirents). Their inodes are recreated, so the entries keep their place. */
static int scan_ghost_dirs(struct fsp *s)
{
	struct btree_iter it;
	struct dent d;
	bool end = false;
	int ret;
	if (!fsck_lost_range_any(s->c, BTREE_ID_inodes))
		return 0;
	btree_iter_init(&it, s->fs, BTREE_ID_dirents, 0, POS_MIN);
	while (!(ret = dent_next(&it, NULL, NULL, &d, &end)) && !end) {
		u64 dir = d.pos.inode;
		struct ghost *g = s->ghosts.nr ? &s->ghosts.data[s->ghosts.nr - 1] : NULL;
		if (g && g->inum == dir) {
			g->entries++;
			continue;
		}
		if (dir < BKFS_FIRST_INO || !fsck_lost_range_has_pos(s->c, BTREE_ID_inodes, POS(0, dir)))
			continue;
		if (!(g = darray_push_zeroed(s->ghosts)))
			return -BKFS_E_NOMEM;
		g->inum = dir;
		g->entries = 1;
	}
	return ret;
}

static int scan_dirents(struct fsp *s, bool *need2)
{
	struct fsck_ra *ra = fsck_ra_level(s->fs, BTREE_ID_dirents, 0, POS_MIN);
	int ret = scan_dirents_ra(s, need2, ra);
	fsck_ra_end(ra);
	return ret;
}

/* Directories with more than one dirent: keep the first one in the chosen
 * directory, name the others (in dirent order). */
static int scan_extra_links_ra(struct fsp *s, struct fsck_ra *ra)
{
	struct btree_iter it;
	struct dent d;
	bool end = false;
	int ret;
	btree_iter_init(&it, s->fs, BTREE_ID_dirents, 0, POS_MIN);
	while (!(ret = dent_next(&it, ra, NULL, &d, &end)) && !end) {
		u32 dI, tI;
		if (classify(s, &d, &dI, &tI) != C_OK)
			continue;
		struct fi *e = &s->t.data[tI];
		if (e->type != DT_DIR || (tI != s->root && cnt(s, tI) <= 1))
			continue;
		if (tI != s->root && !(e->flags & F_KEPT) && dI == e->link) {
			e->flags |= F_KEPT;
			continue;
		}
		struct dextra *x = darray_push_zeroed(s->extra);
		if (!x)
			return -BKFS_E_NOMEM;
		x->pos = d.pos;
		x->target = d.inum;
		struct drec *r = s->dr.nr ? bsearch(&d.pos, s->dr.data, s->dr.nr, sizeof(*s->dr.data), cmp_drec_pos) : NULL;
		if (r)
			r->skip = true; /* removed: its d_type does not matter */
		if (tI == s->lf && bpos_eq(d.pos, s->lf_pos))
			s->lf = NONE;
	}
	for (size_t i = 0; i < s->t.nr; i++)
		s->t.data[i].flags &= ~F_KEPT;
	return ret;
}

static int scan_extra_links(struct fsp *s)
{
	struct fsck_ra *ra = fsck_ra_level(s->fs, BTREE_ID_dirents, 0, POS_MIN);
	int ret = scan_extra_links_ra(s, ra);
	fsck_ra_end(ra);
	return ret;
}

/* Loops, reachability, lost+found and the expected subdirectory counts. */
/* ---- the orphan list ---- */

static int load_orphans(struct fsp *s)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	btree_iter_init(&it, s->fs, BTREE_ID_orphans, 0, POS_MIN);
	while (!(ret = btree_iter_peek(&it, &k)) && k) {
		u64 *v = darray_push_zeroed(s->ol);
		if (!v)
			return -BKFS_E_NOMEM;
		*v = k->p.offset;
		btree_iter_advance(&it);
	}
	return ret;
}

static bool orphan_listed(const struct fsp *s, u64 inum)
{
	size_t lo = sorted_lower_bound(s->ol.nr, m, s->ol.data[m] < inum);
	return lo < s->ol.nr && s->ol.data[lo] == inum;
}

/* table entry i is a proper orphan: an existing non-directory inode on the
 * list that no dirent names (its nlink must then be 0) */
static bool orphan_valid(struct fsp *s, u32 i)
{
	const struct fi *e = &s->t.data[i];
	return s->ol.nr && !(e->flags & F_NEW) && e->type != DT_DIR && !cnt(s, i) && orphan_listed(s, t_inum(s, i));
}

/* Is name free in directory dir (table index) for a relink? Not if a
 * dirent has it (even one the repairs remove: the name is not guessed
 * free) or another relink of this run took it. */
static int relink_name_free(struct fsp *s, u32 dir, const char *name, size_t len)
{
	struct trans t;
	trans_init(&t, s->fs);
	int ret = bkfs_dirent_lookup(&t, t_inum(s, dir), name, len, NULL, NULL, NULL);
	trans_exit(&t);
	if (ret != -BKFS_E_NOENT)
		return ret == -BKFS_E_NOMEM ? ret : 0; /* there, or unreadable: not free */
	for (size_t i = 0; i < s->relinks.nr; i++)
		if (s->relinks.data[i].dir == dir && !strcmp(s->relinks.data[i].name, name))
			return 0;
	return 1;
}

/* The recorded names of inode inum as the btree has it, refs[0].dir set to
 * its parent field: how many (0 for no inode, none, or malformed ones), or
 * -BKFS_E_NOMEM. The names point into kb. */
static int names_read(struct fsp *s, u64 inum, struct bkey_buf *kb, struct inode_name_ref *refs)
{
	int ret = btree_lookup(s->fs, BTREE_ID_inodes, POS(0, inum), kb);
	if (ret)
		return ret == -BKFS_E_NOMEM ? ret : 0;
	if (kb->k.type != KEY_TYPE_inode || bkey_val_bytes(&kb->k) < sizeof(struct bkfs_inode))
		return 0;
	int nr = inode_names_parse(bkey_val(&kb->k), bkey_val_bytes(&kb->k), refs);
	if (nr > 0)
		refs[0].dir = ((const struct bkfs_inode *)bkey_val(&kb->k))->parent;
	return MAX(nr, 0);
}

/* An inode no dirent leads to goes back under its recorded name when the
 * directory the name is in is there and the name is free (docs/FORMAT.md
 * 4.5): a lost dirent then costs no name. So does a file with more links
 * than dirents whose recorded dirents (its first name and those of its
 * other links) are among the missing ones (extra), up to its link count.
 * The number of names it goes back under. */
static int try_relink(struct fsp *s, u32 i, bool extra)
{
	struct fi *t = s->t.data;
	struct bkey_buf kb;
	struct inode_name_ref refs[INODE_NAMES_MAX];
	if ((t[i].flags & F_NEW) || (t[i].type != DT_DIR && !t[i].nl))
		return 0; /* recreated, or nlink 0: no name to go back to */
	int ret, nr = names_read(s, t_inum(s, i), &kb, refs);
	if (nr <= 0)
		return nr;
	const struct bkfs_inode *v = bkey_val(&kb.k);
	u32 want = t[i].type == DT_DIR ? 1 : v->nlink > cnt(s, i) ? v->nlink - cnt(s, i) : 0;
	int made = 0;
	for (int n = 0; n < nr && (u32)made < want && (n == 0 || t[i].type != DT_DIR); n++) {
		u64 parent = refs[n].dir;
		u32 dir = parent >= BKFS_ROOT_INO ? tfind(s, parent) : NONE;
		if (dir == NONE || dir == i || t[dir].type != DT_DIR)
			continue;
		char name[BKFS_NAME_MAX + 1];
		memcpy(name, refs[n].name, refs[n].len);
		name[refs[n].len] = 0;
		if ((ret = relink_name_free(s, dir, name, refs[n].len)) < 0)
			return ret;
		if (!ret)
			continue; /* there (most likely the link itself), or taken */
		struct relink *r = darray_push_zeroed(s->relinks);
		if (!r)
			return -BKFS_E_NOMEM;
		r->idx = i;
		r->dir = dir;
		r->extra = extra || made;
		r->also = !extra && made;
		memcpy(r->name, name, refs[n].len + 1);
		if (!r->extra)
			t[i].link = dir;
		if (t[i].type != DT_DIR && (ret = cnt_inc(s, i)))
			return ret;
		made++;
	}
	return made;
}

/* sum of name_mix(inode, directory of its one dirent) over the inodes
 * whose recorded name the sum of names_recorded holds, as the table has
 * them after the repairs */
static u64 names_found(struct fsp *s)
{
	const struct fi *t = s->t.data;
	u64 sum = 0;
	for (u32 i = 0; i < s->t.nr; i++) {
		if ((t[i].flags & (F_NEW | F_TO_LF)) || t[i].link == NONE || i == s->root)
			continue;
		if (t[i].type == DT_DIR ? t[i].nl == 1 : t[i].nl == NL_NAMED1 && cnt(s, i) == 1)
			sum += name_mix(t_inum(s, i), t_inum(s, t[i].link));
	}
	return sum;
}

static int plan_structure(struct fsp *s)
{
	struct fi *t = s->t.data;
	for (size_t i = 0; i < s->t.nr; i++)
		if (t[i].type == DT_DIR)
			cnt_zero(s, i);
	/* unreachable inodes with a recorded name go back under it first, so
	 * that the loop walk sees the directories among them */
	for (u32 i = 0; i < s->t.nr; i++) {
		bool dir = t[i].type == DT_DIR, unreachable = dir ? t[i].link == NONE : !cnt(s, i);
		bool extra = !dir && !unreachable && t[i].nl != NL_NAMED1 && (t[i].nl == NL_BIG || t[i].nl > cnt(s, i));
		if (i == s->root || (!unreachable && !extra) || orphan_valid(s, i))
			continue;
		int ret = try_relink(s, i, extra);
		if (ret < 0)
			return ret;
	}
	/* loops: walk each directory's chain of kept dirents up to the root;
	 * a chain that comes back to itself is a loop, broken at the directory
	 * where the walk met its own path */
	for (u32 i = 0; i < s->t.nr; i++) {
		if (t[i].type != DT_DIR || i == s->root || t[i].link == NONE || (t[i].flags & F_OK))
			continue;
		u32 y = i;
		for (;;) {
			if (y == s->root || (t[y].flags & F_OK) || t[y].link == NONE)
				break;
			if (t[y].flags & F_WALK) {
				t[y].flags |= F_LOOP | F_TO_LF;
				struct loopr *l = darray_push_zeroed(s->loops);
				if (!l)
					return -BKFS_E_NOMEM;
				l->idx = y;
				break;
			}
			t[y].flags |= F_WALK;
			y = t[y].link;
		}
		for (y = i; y != NONE && (t[y].flags & F_WALK); y = t[y].link)
			t[y].flags = (t[y].flags & ~F_WALK) | F_OK;
	}
	for (u32 i = 0; i < s->t.nr; i++)
		t[i].flags &= ~(F_WALK | F_OK);
	/* reachability */
	for (u32 i = 0; i < s->t.nr; i++) {
		if (i == s->root)
			continue;
		bool unreachable = t[i].type == DT_DIR ? t[i].link == NONE : !cnt(s, i);
		if (unreachable && orphan_valid(s, i))
			continue; /* unlinked while open: removed at the next mount */
		if (unreachable)
			t[i].flags |= F_TO_LF;
		if (t[i].flags & F_TO_LF)
			s->need_lf = true;
	}
	for (size_t i = 0; i < s->dirs.nr; i++)
		if (s->dirs.data[i].a.nkeys)
			s->need_lf = true;
	if (s->lf != NONE && t[s->lf].link != s->root)
		s->lf = NONE;
	if (s->need_lf && s->lf == NONE) {
		s->lf_new = s->next_inum++;
		if (s->lf_taken)
			snprintf(s->lf_name, sizeof(s->lf_name), "lost+found.%llu", (unsigned long long)s->lf_new);
		else
			strcpy(s->lf_name, "lost+found");
	}
	/* subdirectories, as they will be after the repairs */
	for (u32 i = 0; i < s->t.nr; i++) {
		if (t[i].type != DT_DIR || i == s->root)
			continue;
		if (t[i].flags & F_TO_LF) {
			if (s->lf == NONE)
				s->lf_new_subdirs++;
			else if (cnt_inc(s, s->lf))
				return -BKFS_E_NOMEM;
		} else if (cnt_inc(s, t[i].link)) {
			return -BKFS_E_NOMEM;
		}
	}
	if (s->lf_new && cnt_inc(s, s->root))
		return -BKFS_E_NOMEM;
	s->names_found = names_found(s);
	return 0;
}

/* ---- paths (only for findings) ---- */

/* name of the first dirent in dir pointing at inum, its position */
static int find_name(struct fsp *s, u64 dir, u64 inum, char *name, struct bpos *pos)
{
	struct btree_iter it;
	struct dent d;
	bool end = false;
	int ret;
	btree_iter_init(&it, s->fs, BTREE_ID_dirents, 0, POS(dir, 0));
	while (!(ret = dent_next(&it, NULL, NULL, &d, &end)) && !end && d.pos.inode == dir) {
		if (s->path_budget)
			s->path_budget--;
		if (d.inum == inum) {
			if (name)
				memcpy(name, d.name, (size_t)d.len + 1);
			if (pos)
				*pos = d.pos;
			return 0;
		}
	}
	return ret ? ret : -BKFS_E_NOENT;
}

/* the relink of an inode (table index), if it has one */
static const struct relink *relink_of(const struct fsp *s, u32 idx)
{
	size_t lo = 0, hi = s->relinks.nr;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		if (s->relinks.data[m].idx < idx)
			lo = m + 1;
		else
			hi = m;
	}
	return lo < s->relinks.nr && s->relinks.data[lo].idx == idx ? &s->relinks.data[lo] : NULL;
}

/* Path of an inode as it is now (before repairs) but for the relinks,
 * following the kept dirent of each directory; false if it does not lead
 * to the root. */
static bool path_of(struct fsp *s, u32 idx, struct printbuf *out)
{
	if (idx == s->root) {
		pb_printf(out, "/");
		return true;
	}
	char (*names)[BKFS_NAME_MAX + 1] = NULL;
	size_t nr = 0, cap = 0;
	bool ok = false;
	for (u32 cur = idx; nr < 4096;) {
		if (cur == s->root) {
			ok = true;
			break;
		}
		u32 up = s->t.data[cur].link;
		if (up == NONE || (s->t.data[cur].flags & F_LOOP) || !s->path_budget)
			break;
		if (darray_room(names, cap, nr + 1, 8))
			break;
		const struct relink *r = relink_of(s, cur);
		if (r)
			memcpy(names[nr], r->name, sizeof(r->name));
		else if (find_name(s, t_inum(s, up), t_inum(s, cur), names[nr], NULL))
			break;
		nr++;
		cur = up;
	}
	if (ok)
		for (size_t i = nr; i--;)
			pb_printf(out, "/%s", names[i]);
	free(names);
	return ok;
}

/* "/dir/path/name" (or "name in directory inode N") */
static void dir_entry_path(struct fsp *s, u32 dir, const char *name, struct printbuf *out)
{
	struct printbuf p = PRINTBUF;
	if (path_of(s, dir, &p))
		pb_printf(out, "%s%s%s", pb_str(&p), dir == s->root ? "" : "/", name);
	else
		pb_printf(out, "%s in directory inode %llu", name, (unsigned long long)t_inum(s, dir));
	pb_exit(&p);
}

/* the repair of a recorded name: the name of the inode's dirent in dir, or
 * none if it has none there */
static int fix_name(struct fsp *s, struct ifix *f, u64 dir, u64 inum)
{
	char name[BKFS_NAME_MAX + 1];
	int ret = find_name(s, dir, inum, name, NULL);
	if (ret && ret != -BKFS_E_NOENT)
		return ret;
	f->mask |= FX_NAME | FX_PARENT;
	f->parent = dir;
	free(f->name);
	f->name = ret ? NULL : strdup(name);
	return ret || f->name ? 0 : -BKFS_E_NOMEM;
}

/* "inode N (/path)" */
static void inode_obj(struct fsp *s, u32 idx, struct printbuf *out)
{
	pb_printf(out, "inode %llu", (unsigned long long)t_inum(s, idx));
	struct printbuf p = PRINTBUF;
	if (idx != NONE && path_of(s, idx, &p))
		pb_printf(out, " (%s)", pb_str(&p));
	pb_exit(&p);
}

/* "dirent D:S \"name\" (/path/name)" */
static void dirent_obj(struct fsp *s, struct bpos pos, const char *name, struct printbuf *out)
{
	pb_printf(out, "dirent %llu:%llu \"%s\"", (unsigned long long)pos.inode, (unsigned long long)pos.offset,
		  name);
	u32 dI = tfind(s, pos.inode);
	struct printbuf p = PRINTBUF;
	if (dI != NONE && s->t.data[dI].type == DT_DIR && path_of(s, dI, &p))
		pb_printf(out, " (%s%s%s)", pb_str(&p), dI == s->root ? "" : "/", name);
	pb_exit(&p);
}

static int read_dirent(struct fsp *s, struct bpos pos, struct dent *d)
{
	struct bkey_buf kb;
	int ret = btree_lookup(s->fs, BTREE_ID_dirents, pos, &kb);
	if (ret)
		return ret;
	if (kb.k.type != KEY_TYPE_dirent || bkey_val_bytes(&kb.k) < sizeof(struct bkfs_dirent))
		return -BKFS_E_CORRUPT;
	const struct bkfs_dirent *de = bkey_val(&kb.k);
	if (de->name_len > bkey_val_bytes(&kb.k) - sizeof(*de))
		return -BKFS_E_CORRUPT;
	d->pos = pos;
	d->inum = de->inum;
	d->d_type = de->d_type;
	d->len = de->name_len;
	memcpy(d->name, de->name, de->name_len);
	d->name[de->name_len] = 0;
	return 0;
}

/* ---- reporting ---- */

#define ERR(s, e, act, fmt, ...) fsck_err((s)->c, FSCK_ERR_##e, act, fmt, ##__VA_ARGS__)

static struct ifix *add_ifix(struct fsp *s, u64 inum)
{
	struct ifix *f = darray_push_zeroed(s->fix);
	if (f) {
		f->inum = inum;
		f->seq = s->ifix_seq++;
	}
	return f;
}

static int add_lf(struct fsp *s, u64 inum, unsigned type)
{
	struct lfadd *l = darray_push_zeroed(s->lfadd);
	if (!l)
		return -BKFS_E_NOMEM;
	l->inum = inum;
	l->type = type;
	s->c->salvaged_inodes++;
	return 0;
}

static u64 lf_inum(struct fsp *s)
{
	return s->lf != NONE ? t_inum(s, s->lf) : s->lf_new;
}

/* where lost+found is (computed once) */
static const char *lf_path(struct fsp *s)
{
	if (!s->lf_path.len) {
		if (s->lf == NONE)
			pb_printf(&s->lf_path, "/%s", s->lf_name);
		else if (!path_of(s, s->lf, &s->lf_path))
			pb_printf(&s->lf_path, "lost+found (inode %llu)", (unsigned long long)t_inum(s, s->lf));
	}
	return pb_str(&s->lf_path);
}

static int cmp_origin(const void *a, const void *b)
{
	const struct origin *x = a, *y = b;
	return x->inum < y->inum ? -1 : x->inum > y->inum;
}

static const char *origin_of(struct fsp *s, u64 inum)
{
	size_t lo = sorted_lower_bound(s->origins.nr, m, s->origins.data[m].inum < inum);
	return lo < s->origins.nr && s->origins.data[lo].inum == inum ? s->origins.data[lo].path : NULL;
}

/* "; it was /path" for an inode that goes to lost+found, if a name survives */
static void origin_text(struct fsp *s, u64 inum, struct printbuf *out)
{
	const char *o = origin_of(s, inum);
	if (o)
		pb_printf(out, "; its last known path: %s", o);
}

/* The names that the removed dirents gave the inodes that go to lost+found:
 * their origin. Read before any report names them. */
static int collect_origins(struct fsp *s)
{
	for (size_t i = 0; i < s->dr.nr; i++) {
		struct drec *r = &s->dr.data[i];
		u32 tI = tfind(s, r->target);
		if (r->skip || (r->reason != D_MISSING && r->reason != D_NON_DIR) || tI == NONE ||
		    !(s->t.data[tI].flags & F_TO_LF))
			continue;
		struct dent d;
		int ret = read_dirent(s, r->pos, &d);
		if (ret)
			return ret;
		struct printbuf p = PRINTBUF;
		u32 dI = tfind_dir(s, r->pos.inode);
		if (dI != NONE && s->t.data[dI].type == DT_DIR && path_of(s, dI, &p))
			pb_printf(&p, "%s%s", dI == s->root ? "" : "/", d.name);
		else
			pb_printf(&p, "(directory inode %llu)/%s", (unsigned long long)r->pos.inode, d.name);
		struct origin *o = darray_push_zeroed(s->origins);
		if (!o || !(o->path = strdup(pb_str(&p)))) {
			pb_exit(&p);
			return -BKFS_E_NOMEM;
		}
		o->inum = r->target;
		pb_exit(&p);
	}
	vsort(s->origins.data, s->origins.nr, sizeof(*s->origins.data), cmp_origin);
	return 0;
}

static struct ghost *ghost_find(struct fsp *s, u64 inum)
{
	size_t lo = sorted_lower_bound(s->ghosts.nr, m, s->ghosts.data[m].inum < inum);
	return lo < s->ghosts.nr && s->ghosts.data[lo].inum == inum ? &s->ghosts.data[lo] : NULL;
}

/* dir_inode_lost: a directory's inode is gone with its node, its entries
 * remain; it is recreated (mode 0700) where its own entry is, else in
 * lost+found, and its entries stay in it */
static int report_ghost_dir(struct fsp *s, u32 idx)
{
	struct fi *e = &s->t.data[idx];
	u64 inum = t_inum(s, idx);
	struct ghost *g = ghost_find(s, inum);
	bool relinked = !(e->flags & F_TO_LF);
	struct printbuf at = PRINTBUF;
	if (!relinked)
		pb_printf(&at, "%s/#%llu", lf_path(s), (unsigned long long)inum);
	else if (!path_of(s, idx, &at))
		pb_printf(&at, "its remaining directory entry");
	s->c->recreated_inodes++;
	bool fix = ERR(s, dir_inode_lost, relinked ? "recreated the directory at its directory entry" :
						   "recreated the directory in lost+found", "inode %llu", (unsigned long long)inum);
	fsck_err_msg(s->c, "directory inode %llu was in a btree node the check dropped; %u entries remain in it: recreated (mode 0700) as %s, its entries kept",
		     (unsigned long long)inum, g ? g->entries : 0, pb_str(&at));
	pb_exit(&at);
	if (!fix)
		return 0;
	e->flags |= F_LFFIX;
	return relinked ? 0 : add_lf(s, inum, DT_DIR);
}

/* Whether fsck puts inode idx back under name in dir (a relink) */
static bool relinked_as(const struct fsp *s, u32 idx, u32 dir, const char *name)
{
	const struct relink *r = relink_of(s, idx);
	for (; r && r < s->relinks.data + s->relinks.nr && r->idx == idx; r++)
		if (r->dir == dir && !strcmp(r->name, name))
			return true;
	return false;
}

/* Whether the dirent (dir, name) names inum and stays (no repair removes it) */
static int dirent_names(struct fsp *s, u64 dir, const char *name, size_t len, u64 inum, bool *yes)
{
	struct trans t;
	u64 target, slot;
	trans_init(&t, s->fs);
	int ret = bkfs_dirent_lookup(&t, dir, name, len, &target, NULL, &slot);
	trans_exit(&t);
	*yes = !ret && target == inum;
	for (size_t i = 0; *yes && i < s->dels.nr; i++)
		*yes = !bpos_eq(s->dels.data[i].pos, POS(dir, slot));
	return ret == -BKFS_E_NOENT ? 0 : ret;
}

/* The names a file records of its links (format 5; few files have them):
 * each must be a dirent that names it, or one fsck makes again; another is
 * dropped (inode_link_name_wrong). Files going to lost+found get the name
 * fsck gives them there instead. */
static int check_link_names(struct fsp *s)
{
	if (s->links_recorded == s->links_found && !s->dels.nr && !s->relinks.nr && !s->lnkrm.nr)
		return 0;
	for (size_t i = 0; i < s->linknamed.nr; i++) {
		u64 inum = s->linknamed.data[i];
		u32 idx = tfind(s, inum);
		struct bkey_buf kb;
		struct inode_name_ref refs[INODE_NAMES_MAX];
		if (idx == NONE || (s->t.data[idx].flags & (F_NEW | F_TO_LF)) || s->t.data[idx].type == DT_DIR)
			continue;
		int ret, nr = names_read(s, inum, &kb, refs);
		if (nr < 0)
			return nr;
		for (int n = 0; n < nr; n++) {
			u64 dir = refs[n].dir;
			char name[BKFS_NAME_MAX + 1];
			bool there;
			memcpy(name, refs[n].name, refs[n].len);
			name[refs[n].len] = 0;
			if ((ret = dirent_names(s, dir, name, refs[n].len, inum, &there)))
				return ret;
			u32 d = tfind(s, dir);
			if (there || (d != NONE && relinked_as(s, idx, d, name)))
				continue;
			struct printbuf obj = PRINTBUF;
			inode_obj(s, idx, &obj);
			bool fix = ERR(s, inode_link_name_wrong, "removed the recorded name", "%s", pb_str(&obj));
			pb_exit(&obj);
			fsck_err_msg(s->c, "it records \"%s\" in directory %llu as one of its names, but no directory entry there names it",
				     name, (unsigned long long)dir);
			struct ifix *f = fix ? add_ifix(s, inum) : NULL;
			if (fix && (!f || !(f->name = strdup(name))))
				return -BKFS_E_NOMEM;
			if (f) {
				f->mask |= FX_DROPNAME;
				f->name_dir = dir;
			}
		}
	}
	return 0;
}

static int report_early(struct fsp *s)
{
	struct printbuf obj = PRINTBUF, act = PRINTBUF;
	int ret = 0;
	struct fi *t = s->t.data;

	if ((ret = collect_origins(s)))
		goto out;
	if (s->root_missing) {
		s->root_fix = ERR(s, root_inode_missing, "recreated the root directory", "inode %llu (/)",
				  (unsigned long long)BKFS_ROOT_INO);
		fsck_err_msg(s->c, "the root directory inode does not exist");
	}
	if (s->root_notdir) {
		bool fix = ERR(s, root_inode_missing, "made the root inode a directory", "inode %llu (/)",
			       (unsigned long long)BKFS_ROOT_INO);
		unsigned ot = ft_of_mode(s->root_old_mode);
		fsck_err_msg(s->c, "the root inode is %s%s (mode 0%o), not a directory", ot ? "a " : "",
			     ot ? ft_name(ot) : "of no valid type", s->root_old_mode);
		struct ifix *f;
		if (fix) {
			if (!(f = add_ifix(s, BKFS_ROOT_INO)))
				goto nomem;
			f->mask = FX_MODE | FX_SIZE | FX_SECTORS | FX_NLINK | FX_PARENT;
			f->mode = S_IFDIR | ((s->root_old_mode & 07777) ? (s->root_old_mode & 07777) : 0755);
			f->nlink = 2 + cnt(s, s->root);
			f->parent = BKFS_ROOT_INO;
		}
	}
	if (s->lf_new) {
		s->lf_fix = ERR(s, lost_found_missing, "created it (mode 0700)", "directory /%s", s->lf_name);
		fsck_err_msg(s->c, "lost+found is needed for unreachable or salvaged inodes and does not exist");
	}
	/* inodes with no valid file type */
	for (size_t i = 0; i < s->bad.nr; i++) {
		struct badrec *b = &s->bad.data[i];
		unsigned type = t[b->idx].type;
		pb_reset(&obj);
		inode_obj(s, b->idx, &obj);
		bool fix = ERR(s, inode_invalid, "set the file type", "%s", pb_str(&obj));
		fsck_err_msg(s->c, "mode 0%o has no valid file type; %s: %s", b->mode,
			     b->children ? "it contains directory entries" :
			     b->hint ? "a directory entry gives its type" : "no evidence", ft_name(type));
		struct ifix *f;
		if (fix) {
			if (!(f = add_ifix(s, t_inum(s, b->idx))))
				goto nomem;
			f->mask = FX_MODE;
			f->mode = mode_of_ft(type) | (b->mode & 07777);
		}
	}
	/* directories with a size or data */
	for (size_t i = 0; i < s->dirs.nr; i++) {
		struct dirrec *d = &s->dirs.data[i];
		pb_reset(&obj);
		inode_obj(s, d->idx, &obj);
		d->fix = ERR(s, inode_invalid,
			     d->a.nkeys ? (d->size ? "set i_size to 0, moved the data to a new file in lost+found" :
					   "moved the data to a new file in lost+found") : "set i_size to 0",
			     "%s", pb_str(&obj));
		if (d->size)
			fsck_err_msg(s->c, "directory has i_size %llu", (unsigned long long)d->size);
		if (d->a.nkeys)
			fsck_err_msg(s->c, "directory has %u data keys (%llu sectors, %llu bytes): they become inode %llu, %s/#%llu",
				     d->a.nkeys, (unsigned long long)d->a.sectors, (unsigned long long)d->a.end,
				     (unsigned long long)d->new_inum, lf_path(s), (unsigned long long)d->new_inum);
		struct ifix *f;
		if (d->fix) {
			if (d->a.nkeys && (ret = add_lf(s, d->new_inum, DT_REG)))
				goto out;
			if (t[d->idx].flags & F_NEW)
				continue;
			if (!(f = add_ifix(s, t_inum(s, d->idx))))
				goto nomem;
			f->mask = FX_SIZE | (d->a.nkeys ? FX_SECTORS : 0);
		}
	}
	/* data and xattrs of missing inodes */
	for (size_t i = 0; i < s->orph.nr; i++) {
		struct orphan *o = &s->orph.data[i];
		struct fi *e = &t[o->idx];
		if (e->type == DT_DIR) {
			if ((ret = report_ghost_dir(s, o->idx)))
				goto out;
			continue;
		}
		bool fix = false, relinked = !(e->flags & F_TO_LF), sym = e->type == DT_LNK;
		const char *action = sym ? "recreated the inode as a symlink at its directory entry" :
				     relinked ? "recreated the inode as a regular file at its directory entry" :
						"recreated the inode as a regular file in lost+found";
		pb_reset(&act);
		if (sym)
			pb_printf(&act, "recreated as a symlink (target of %llu bytes) ", (unsigned long long)o->a.end);
		else
			pb_printf(&act, "recreated as a regular file (mode 0600, size %llu) ", (unsigned long long)o->a.end);
		if (relinked) {
			struct printbuf p = PRINTBUF;
			if (path_of(s, o->idx, &p))
				pb_printf(&act, "at %s", pb_str(&p));
			else
				pb_printf(&act, "at its remaining directory entry");
			pb_exit(&p);
		} else {
			pb_printf(&act, "as %s/#%llu", lf_path(s), (unsigned long long)E_INUM(s, e));
			origin_text(s, E_INUM(s, e), &act);
		}
		if (o->a.nkeys) {
			fix |= ERR(s, extent_for_missing_inode, action, "inode %llu", (unsigned long long)E_INUM(s, e));
			fsck_err_msg(s->c, "extents of missing inode %llu: %u keys, %llu sectors, data ends at byte %llu; %s",
				     (unsigned long long)E_INUM(s, e), o->a.nkeys, (unsigned long long)o->a.sectors,
				     (unsigned long long)o->a.end, pb_str(&act));
		}
		if (o->a.nkeys || o->a.xattrs)
			s->c->recreated_inodes++;
		if (o->a.xattrs) {
			fix |= ERR(s, xattr_for_missing_inode, action, "inode %llu", (unsigned long long)E_INUM(s, e));
			fsck_err_msg(s->c, "xattrs of missing inode %llu: %u xattrs; %s", (unsigned long long)E_INUM(s, e),
				     o->a.xattrs, pb_str(&act));
		}
		if (fix) {
			e->flags |= F_LFFIX; /* recreate it */
			if (!relinked && (ret = add_lf(s, E_INUM(s, e), DT_REG)))
				goto out;
		}
	}
	/* dirents */
	for (size_t i = 0; i < s->dr.nr; i++) {
		struct drec *r = &s->dr.data[i];
		struct dent d;
		if (r->skip)
			continue;
		if ((ret = read_dirent(s, r->pos, &d)))
			goto out;
		pb_reset(&obj);
		dirent_obj(s, r->pos, d.name, &obj);
		bool fix;
		switch (r->reason) {
		case D_NON_DIR: {
			u32 dI = tfind(s, r->pos.inode);
			fix = ERR(s, dirent_in_non_dir, "removed the dirent", "%s", pb_str(&obj));
			if (dI == NONE)
				fsck_err_msg(s->c, "directory inode %llu does not exist (entry names inode %llu)",
					     (unsigned long long)r->pos.inode, (unsigned long long)r->target);
			else
				fsck_err_msg(s->c, "inode %llu is a %s%s, not a directory (entry names inode %llu)",
					     (unsigned long long)r->pos.inode, ft_name(t[dI].type),
					     t[dI].flags & F_ORPHAN ? " recreated from its data" : "",
					     (unsigned long long)r->target);
			break;
		}
		case D_MISSING:
			fix = ERR(s, dirent_to_missing_inode, "removed the dirent", "%s", pb_str(&obj));
			fsck_err_msg(s->c, "names inode %llu, which does not exist%s", (unsigned long long)r->target,
				     tfind(s, r->target) != NONE ? " (its data is salvaged as a regular file)" : "");
			break;
		case D_RELINK:
			fix = ERR(s, dirent_to_missing_inode, "kept it: the inode is recreated from what remains of it", "%s",
				  pb_str(&obj));
			fsck_err_msg(s->c, "names inode %llu, which does not exist but has %s", (unsigned long long)r->target,
				     r->d_type == DT_DIR ? "directory entries" : "data");
			fix = false; /* the orphan's repair does it */
			break;
		default:
			fix = ERR(s, dirent_d_type_wrong, "set d_type to the inode's type", "%s", pb_str(&obj));
			fsck_err_msg(s->c, "d_type %u (%s), but inode %llu is a %s (d_type %u)", r->d_type,
				     ft_name(r->d_type), (unsigned long long)r->target, ft_name(r->new_type), r->new_type);
			if (fix) {
				struct dtfix *x = darray_push_zeroed(s->dtfix);
				if (!x)
					goto nomem;
				x->pos = r->pos;
				x->target = r->target;
				x->type = r->new_type;
			}
			fix = false;
			break;
		}
		if (fix) {
			struct del *x = darray_push_zeroed(s->dels);
			if (!x)
				goto nomem;
			x->pos = r->pos;
			x->target = r->target;
		}
	}
	/* directories with more than one dirent */
	for (size_t i = 0; i < s->extra.nr; i++) {
		struct dextra *x = &s->extra.data[i];
		struct dent d;
		u32 tI = tfind(s, x->target);
		if ((ret = read_dirent(s, x->pos, &d)))
			goto out;
		pb_reset(&obj);
		inode_obj(s, tI, &obj);
		struct printbuf de = PRINTBUF;
		dirent_obj(s, x->pos, d.name, &de);
		bool fix = ERR(s, dir_multiple_links, "removed the extra dirent", "%s", pb_str(&obj));
		if (tI == s->root)
			fsck_err_msg(s->c, "the root directory is named by %s", pb_str(&de));
		else
			fsck_err_msg(s->c, "directory is also named by %s", pb_str(&de));
		pb_exit(&de);
		if (fix) {
			struct del *y = darray_push_zeroed(s->dels);
			if (!y)
				goto nomem;
			y->pos = x->pos;
			y->target = x->target;
		}
	}
	/* directory loops */
	for (size_t i = 0; i < s->loops.nr; i++) {
		u32 y = s->loops.data[i].idx;
		struct fi *e = &t[y];
		char name[BKFS_NAME_MAX + 1];
		struct bpos pos;
		if ((ret = find_name(s, t_inum(s, e->link), E_INUM(s, e), name, &pos)))
			goto out;
		bool fix = ERR(s, dir_loop, "moved the directory to lost+found", "inode %llu", (unsigned long long)E_INUM(s, e));
		fsck_err_msg(s->c, "directory %llu (entry \"%s\" in directory %llu) is in a loop that does not reach the root; it becomes %s/#%llu",
			     (unsigned long long)E_INUM(s, e), name, (unsigned long long)t_inum(s, e->link), lf_path(s),
			     (unsigned long long)E_INUM(s, e));
		if (fix) {
			struct del *x = darray_push_zeroed(s->dels);
			if (!x)
				goto nomem;
			x->pos = pos;
			x->target = E_INUM(s, e);
			e->flags |= F_LFFIX;
			if ((ret = add_lf(s, E_INUM(s, e), DT_DIR)))
				goto out;
		}
	}
	goto out;
nomem:
	ret = -BKFS_E_NOMEM;
out:
	pb_exit(&obj);
	pb_exit(&act);
	return ret;
}

/* The second pass over the inodes: per-inode checks against the values the
 * repairs lead to, in inum order. */
/* inode_data_lost: a file keeps the data that remains (i_sectors and i_size
 * set to it); a symlink whose target is gone, with one name and no xattrs,
 * is removed (a symlink cannot be read without its target) */
static int report_data_lost(struct fsp *s, u32 idx, const struct bkfs_inode *v, const struct szrec *z, struct ifix *f,
			    const char *obj)
{
	const struct fi *e = &s->t.data[idx];
	bool rm = e->type == DT_LNK && !z->sectors && cnt(s, idx) == 1 && v->nlink == 1 &&
		  !(e->flags & F_TO_LF) && e->link != NONE;
	bool fix = ERR(s, inode_data_lost, rm ? "removed the symlink" : "set i_sectors and i_size to the data that remains",
		       "%s", obj);
	fsck_err_msg(s->c, "%s lost %llu of its %llu sectors (in a btree node the check dropped)%s", ft_name(e->type),
		     (unsigned long long)(v->sectors - z->sectors), (unsigned long long)v->sectors,
		     e->type == DT_LNK ? "; its target is lost" : "");
	s->c->lost_files++;
	s->c->lost_sectors += v->sectors - z->sectors;
	if (!fix)
		return 0;
	if (rm) {
		struct lnkrm *r = darray_push_zeroed(s->lnkrm);
		if (!r)
			return -BKFS_E_NOMEM;
		r->inum = t_inum(s, idx);
		r->dir = t_inum(s, e->link);
		return 0;
	}
	f->mask |= FX_SECTORS;
	f->sectors = z->sectors;
	if (e->type == DT_REG || e->type == DT_LNK) {
		f->mask |= FX_SIZE;
		f->size = z->end;
	}
	return 0;
}

static int report_inodes_ra(struct fsp *s, struct fsck_ra *ra)
{
	struct btree_iter it;
	struct bkey *k;
	struct printbuf obj = PRINTBUF, act = PRINTBUF;
	struct fi *t = s->t.data;
	size_t ti = 0, zi = 0, xi = 0, ri = 0, bi = 0;
	int ret;
	btree_iter_init(&it, s->fs, BTREE_ID_inodes, 0, POS_MIN);
	for (;;) {
		fsck_cache_trim(s->fs);
		fsck_ra_step(ra);
		if ((ret = btree_iter_peek(&it, &k)))
			break;
		if (!k || k->p.inode)
			break;
		it.pos = k->p;
		bool ok = inode_key_ok(k);
		u64 inum = k->p.offset;
		struct bkfs_inode v;
		int named = 0;
		if (ok) {
			const u8 *n;
			unsigned len;
			memcpy(&v, bkey_val(k), sizeof(v));
			named = inode_name_parse(bkey_val(k), bkey_val_bytes(k), &n, &len);
		}
		btree_iter_advance(&it);
		if (!ok)
			continue;
		while (ti < s->t.nr && (t_inum(s, ti) < inum || (t[ti].flags & F_NEW)))
			ti++;
		if (ti == s->t.nr || t_inum(s, ti) != inum) {
			ret = -BKFS_E_CORRUPT; /* the btree changed under us */
			break;
		}
		u32 idx = ti;
		struct fi *e = &t[idx];
		while (zi < s->sz.nr && s->sz.data[zi].idx < idx)
			zi++;
		struct szrec *z = zi < s->sz.nr && s->sz.data[zi].idx == idx ? &s->sz.data[zi] : NULL;
		if (idx == s->root && s->root_notdir)
			continue; /* the root repair rewrites it */
		pb_reset(&obj);
		bool have_obj = false;
#define OBJ() (have_obj ? 0 : (have_obj = true, inode_obj(s, idx, &obj), 0), pb_str(&obj))
		struct ifix f = { 0 };

		if (e->flags & F_TO_LF && !(e->flags & F_LOOP)) {
			bool fix = v.nlink ? ERR(s, inode_unreachable, "linked it into lost+found", "inode %llu",
						 (unsigned long long)inum) :
					     ERR(s, inode_unlinked_not_orphan, "linked it into lost+found", "inode %llu",
						 (unsigned long long)inum);
			if (!v.nlink)
				fsck_err_msg(s->c, "nlink 0 but not on the orphan list (of inodes unlinked while open)");
			pb_reset(&act);
			origin_text(s, inum, &act);
			fsck_err_msg(s->c, "%s, size %llu, nlink %u: no directory entry leads to it; it becomes %s/#%llu%s",
				     ft_name(e->type), (unsigned long long)v.size, v.nlink, lf_path(s),
				     (unsigned long long)inum, pb_str(&act));
			if (fix) {
				e->flags |= F_LFFIX;
				if ((ret = add_lf(s, inum, e->type)))
					break;
			}
		}
		while (ri < s->relinks.nr && s->relinks.data[ri].idx < idx)
			ri++;
		struct relink *rl = ri < s->relinks.nr && s->relinks.data[ri].idx == idx && !(e->flags & F_TO_LF) ?
					    &s->relinks.data[ri] : NULL;
		bool relinked = rl;
		for (; rl && rl < s->relinks.data + s->relinks.nr && rl->idx == idx; rl++) {
			pb_reset(&act);
			dir_entry_path(s, rl->dir, rl->name, &act);
			if (rl->also) {
				rl->fix = rl[-1].fix;
				fsck_err_msg(s->c, "and to %s (another name it records)", pb_str(&act));
			} else if (rl->extra) {
				rl->fix = ERR(s, inode_link_count_wrong, "linked it again under its recorded name", "%s", OBJ());
				fsck_err_msg(s->c, "nlink %u, but fewer directory entries name it; %s, a name it records, is gone",
					     v.nlink, pb_str(&act));
			} else {
				rl->fix = ERR(s, inode_unreachable, "linked it back under its recorded name", "inode %llu",
					      (unsigned long long)inum);
				fsck_err_msg(s->c, "%s, size %llu, nlink %u: no directory entry leads to it; it goes back to %s (its recorded name)",
					     ft_name(e->type), (unsigned long long)v.size, v.nlink, pb_str(&act));
			}
		}
		while (bi < s->namebad.nr && s->namebad.data[bi] < idx)
			bi++;
		if (bi < s->namebad.nr && s->namebad.data[bi] == idx) {
			bool one = !(e->flags & F_TO_LF) && e->link != NONE && (e->type == DT_DIR || cnt(s, idx) == 1);
			if (ERR(s, inode_name_bad, one ? "recorded the name of its directory entry" : "removed the recorded name",
				"%s", OBJ())) {
				f.mask |= FX_NAME;
				if (one && (ret = fix_name(s, &f, t_inum(s, e->link), inum)))
					break;
			}
			fsck_err_msg(s->c, "the bytes after the inode are not a well-formed name");
		}
		if (named > 0 && e->type != DT_DIR && !relinked && !(e->flags & F_TO_LF) && cnt(s, idx) == 1 &&
		    e->link != NONE && v.parent != t_inum(s, e->link)) {
			if (ERR(s, inode_name_wrong, "recorded the name of its directory entry", "%s", OBJ()) &&
			    (ret = fix_name(s, &f, t_inum(s, e->link), inum)))
				break;
			fsck_err_msg(s->c, "its recorded name is in directory %llu, but its one directory entry is in directory %llu",
				     (unsigned long long)v.parent, (unsigned long long)t_inum(s, e->link));
		}
		if (e->type == DT_DIR) {
			if (e->flags & F_TO_LF) {
				if ((e->flags & F_LFFIX) && v.parent != lf_inum(s)) {
					f.mask |= FX_PARENT;
					f.parent = lf_inum(s);
				}
			} else {
				u64 want = idx == s->root ? BKFS_ROOT_INO : t_inum(s, e->link);
				if (v.parent != want) {
					if (ERR(s, dir_parent_wrong, "set the parent field", "%s", OBJ())) {
						f.mask |= FX_PARENT;
						f.parent = want;
						/* the recorded name goes with the parent field */
						if (named > 0 && (ret = fix_name(s, &f, want, inum)))
							break;
					}
					fsck_err_msg(s->c, "parent field is %llu, but %s %llu",
						     (unsigned long long)v.parent,
						     idx == s->root ? "the root is its own parent:" :
						     "its directory entry is in directory",
						     (unsigned long long)want);
				}
			}
		}
		u32 count = cnt(s, idx);
		u32 want_nlink = e->type == DT_DIR ? 2 + count : count + !!(e->flags & F_TO_LF);
		if (v.nlink != want_nlink) {
			if (ERR(s, inode_link_count_wrong, "set nlink", "%s", OBJ())) {
				f.mask |= FX_NLINK;
				f.nlink = want_nlink;
			}
			if (e->type == DT_DIR)
				fsck_err_msg(s->c, "nlink %u, but the directory has %u subdirectories: nlink %u",
					     v.nlink, count, want_nlink);
			else
				fsck_err_msg(s->c, "nlink %u, but %u directory entries name it", v.nlink, want_nlink);
		}
		if (z && z->lost) {
			if ((ret = report_data_lost(s, idx, &v, z, &f, OBJ())))
				break;
		} else if (z && v.sectors != z->sectors) {
			if (ERR(s, inode_i_sectors_wrong, "set i_sectors to the sectors of its extents", "%s", OBJ())) {
				f.mask |= FX_SECTORS;
				f.sectors = z->sectors;
			}
			fsck_err_msg(s->c, "i_sectors %llu, but its extents hold %llu sectors", (unsigned long long)v.sectors,
				     (unsigned long long)z->sectors);
		}
		if (z && !z->lost && e->type == DT_REG && v.size != z->end) {
			if (ERR(s, inode_i_size_wrong, "set i_size to the end of its data", "%s", OBJ())) {
				f.mask |= FX_SIZE;
				f.size = z->end;
			}
			fsck_err_msg(s->c, "i_size %llu, but its data extends to byte %llu", (unsigned long long)v.size,
				     (unsigned long long)z->end);
		}
		while (xi < s->xlost.nr && s->xlost.data[xi].idx < idx)
			xi++;
		if (xi < s->xlost.nr && s->xlost.data[xi].idx == idx) {
			/* nothing to repair: the file is named, the xattrs left stay */
			ERR(s, inode_xattrs_lost, "kept the xattrs that remain", "%s", OBJ());
			fsck_err_msg(s->c, "its xattrs were in the key range of a btree node the check dropped: any there are lost; %u remain",
				     s->xlost.data[xi].xattrs);
		}
#undef OBJ
		if (f.mask) {
			struct ifix *x = add_ifix(s, inum);
			if (!x) {
				ret = -BKFS_E_NOMEM;
				break;
			}
			f.inum = x->inum;
			f.seq = x->seq;
			*x = f;
		}
	}
	pb_exit(&obj);
	pb_exit(&act);
	return ret;
}

/* Would the second pass over the inodes report anything? Most checks need
 * only the table; inodes with size or sector records, unreachable ones and
 * nlinks too large for the table always take the pass. On a clean
 * filesystem this saves reading the inodes btree again. */
static bool inodes_need_report(struct fsp *s)
{
	if (s->sz.nr || s->root_notdir || s->xlost.nr || s->relinks.nr || s->namebad.nr ||
	    s->names_recorded != s->names_found)
		return true;
	for (u32 i = 0; i < s->t.nr; i++) {
		const struct fi *e = &s->t.data[i];
		if (e->flags & F_NEW)
			continue;
		if (e->flags & F_TO_LF)
			return true;
		if (e->type == DT_DIR) {
			const struct dpar *d = dpar_find(s, i);
			if (!d || d->nlink != 2 + cnt(s, i) || d->parent != (i == s->root ? s->root : e->link))
				return true;
		} else if (e->nl == NL_BIG || (e->nl == NL_NAMED1 ? 1 : e->nl) != cnt(s, i)) {
			return true;
		}
	}
	return false;
}

static int report_inodes(struct fsp *s)
{
	if (!inodes_need_report(s))
		return 0;
	struct fsck_ra *ra = fsck_ra_level(s->fs, BTREE_ID_inodes, 0, POS_MIN);
	int ret = report_inodes_ra(s, ra);
	fsck_ra_end(ra);
	return ret;
}

/* stale orphan list entries: the inode is gone, or has links */
static int report_orphans(struct fsp *s)
{
	for (size_t i = 0; i < s->ol.nr; i++) {
		u64 inum = s->ol.data[i];
		u32 idx = tfind(s, inum);
		bool missing = idx == NONE || (s->t.data[idx].flags & F_NEW);
		if (!missing && orphan_valid(s, idx))
			continue;
		bool fix = missing ? ERR(s, orphan_entry_for_missing_inode, "deleted the entry", "orphan %llu",
					 (unsigned long long)inum) :
				     ERR(s, orphan_entry_for_linked_inode, "deleted the entry", "orphan %llu",
					 (unsigned long long)inum);
		if (missing)
			fsck_err_msg(s->c, "the orphan list names inode %llu, which does not exist", (unsigned long long)inum);
		else
			fsck_err_msg(s->c, "the orphan list names inode %llu, which %s", (unsigned long long)inum,
				     s->t.data[idx].type == DT_DIR ? "is a directory" : "directory entries name");
		u64 *d;
		if (fix && !(d = darray_push_zeroed(s->oldel)))
			return -BKFS_E_NOMEM;
		if (fix)
			*d = inum;
	}
	return 0;
}

/* ---- repairs ---- */

static int commit(struct trans *t)
{
	int ret = trans_commit(t, COMMIT_NO_JOURNAL);
	trans_reset(t);
	return ret;
}

static int write_new_inode(struct fsp *s, u64 inum, u32 mode, u32 nlink, u64 parent, u64 size, u64 sectors)
{
	struct trans t;
	struct bkfs_inode in;
	bkfs_inode_init(&in, mode, 0, 0, 0, bkfs_now_ns());
	in.nlink = nlink;
	in.parent = parent;
	in.size = size;
	in.sectors = sectors;
	trans_init(&t, s->fs);
	int ret = bkfs_inode_write(&t, inum, &in);
	if (!ret)
		ret = commit(&t);
	trans_exit(&t);
	return ret;
}

/* move every extents-btree key of from to inum to (new copy first, then
 * the delete, so the buckets never look empty in between) */
static int move_extents(struct fsp *s, u64 from, u64 to)
{
	enum { BATCH = 64 };
	struct bkey_buf *kb = malloc(BATCH * sizeof(*kb));
	struct trans t;
	int ret = 0;
	if (!kb)
		return -BKFS_E_NOMEM;
	trans_init(&t, s->fs);
	for (;;) {
		struct btree_iter it;
		struct bkey *k;
		unsigned n = 0;
		btree_iter_init(&it, s->fs, BTREE_ID_extents, 0, POS(from, 0));
		while (n < BATCH && !(ret = btree_iter_peek(&it, &k)) && k && k->p.inode == from) {
			memcpy(&kb[n], k, bkey_bytes(k));
			it.pos = bpos_successor(kb[n].k.p);
			if (!bkey_deleted(&kb[n].k))
				n++;
		}
		if (ret || !n)
			break;
		for (unsigned i = 0; i < n && !ret; i++) {
			struct bkey_buf nk;
			memcpy(&nk, &kb[i], bkey_bytes(&kb[i].k));
			nk.k.p.inode = to;
			ret = trans_update(&t, BTREE_ID_extents, &nk.k);
		}
		for (unsigned i = 0; i < n && !ret; i++)
			ret = trans_delete(&t, BTREE_ID_extents, kb[i].k.p);
		if (ret || (ret = commit(&t)))
			break;
	}
	trans_exit(&t);
	free(kb);
	return ret;
}

static int cmp_del_desc(const void *a, const void *b)
{
	return -bpos_cmp(((const struct del *)a)->pos, ((const struct del *)b)->pos);
}

static int cmp_ifix(const void *a, const void *b)
{
	const struct ifix *x = a, *y = b;
	if (x->inum != y->inum)
		return x->inum < y->inum ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* the inode's recorded name becomes name in dir (the dirent fsck made),
 * unless it records that name already (a link made again under it) */
static int set_name(struct fsp *s, u64 inum, u64 dir, const char *name)
{
	struct trans t;
	struct bkfs_inode in;
	struct inode_names nm;
	size_t len = strlen(name);
	trans_init(&t, s->fs);
	int ret = bkfs_inode_get_named(&t, inum, &in, &nm);
	if (!ret && inode_names_find(&nm, dir, name, len) < 0) {
		in.parent = dir;
		inode_names_one(&nm, dir, name, len);
		if (!(ret = bkfs_inode_write_named(&t, inum, &in, &nm)))
			ret = commit(&t);
	}
	trans_exit(&t);
	return ret;
}

/* add name -> inum to dir; on a clash "name.1", "name.2", ...; the inode
 * records the name it got */
static int add_dirent_unique(struct fsp *s, u64 dir, const char *base, u64 inum, unsigned type)
{
	struct trans t;
	char name[BKFS_NAME_MAX + 1];
	int ret = -BKFS_E_EXIST;
	trans_init(&t, s->fs);
	for (unsigned i = 0; i < 1000 && ret == -BKFS_E_EXIST; i++) {
		if (i)
			snprintf(name, sizeof(name), "%s.%u", base, i);
		else
			snprintf(name, sizeof(name), "%s", base);
		ret = bkfs_dirent_add(&t, dir, name, strlen(name), inum, type);
	}
	if (!ret)
		ret = commit(&t);
	trans_exit(&t);
	return ret ? ret : set_name(s, inum, dir, name);
}

/* the salvaged inode's last known path, kept with it in lost+found */
static int set_origin(struct fsp *s, struct trans *t, u64 inum)
{
	const char *o = origin_of(s, inum);
	if (!o)
		return 0;
	int ret = bkfs_xattr_set(t, inum, BKFS_ORIGIN_XATTR, o, strlen(o), 0);
	return ret ? ret : commit(t);
}

static int apply(struct fsp *s)
{
	struct fi *t = s->t.data;
	struct trans tr;
	int ret = 0;
	if (s->next_inum > s->fs->next_inum)
		s->fs->next_inum = s->next_inum;
	trans_init(&tr, s->fs);
	for (size_t i = 0; i < s->oldel.nr; i++)
		if ((ret = trans_delete(&tr, BTREE_ID_orphans, POS(0, s->oldel.data[i]))) || (ret = commit(&tr)))
			goto out;

	if (s->root_missing && s->root_fix &&
	    (ret = write_new_inode(s, BKFS_ROOT_INO, S_IFDIR | 0755, 2 + cnt(s, s->root), BKFS_ROOT_INO, 0, 0)))
		goto out;
	for (size_t i = 0; i < s->orph.nr; i++) {
		struct orphan *o = &s->orph.data[i];
		struct fi *e = &t[o->idx];
		if (!(e->flags & F_LFFIX))
			continue;
		if (e->type == DT_DIR)
			ret = write_new_inode(s, E_INUM(s, e), S_IFDIR | 0700, 2 + cnt(s, o->idx),
					      (e->flags & F_TO_LF) ? lf_inum(s) : t_inum(s, e->link), 0, 0);
		else
			ret = write_new_inode(s, E_INUM(s, e), e->type == DT_LNK ? S_IFLNK | 0777 : S_IFREG | 0600,
					      cnt(s, o->idx) + !!(e->flags & F_TO_LF), 0, o->a.end, o->a.sectors);
		if (ret)
			goto out;
	}
	for (size_t i = 0; i < s->dirs.nr; i++) {
		struct dirrec *d = &s->dirs.data[i];
		if (!d->fix || !d->a.nkeys)
			continue;
		if ((ret = write_new_inode(s, d->new_inum, S_IFREG | 0600, 1, 0, d->a.end, d->a.sectors)) ||
		    (ret = move_extents(s, t_inum(s, d->idx), d->new_inum)))
			goto out;
	}
	/* before the removals: a symlink whose target is lost goes with the
	 * dirent it got back */
	for (size_t i = 0; i < s->relinks.nr; i++) {
		struct relink *r = &s->relinks.data[i];
		if (r->fix && !(t[r->idx].flags & F_TO_LF) &&
		    (ret = add_dirent_unique(s, t_inum(s, r->dir), r->name, t_inum(s, r->idx), t[r->idx].type)))
			goto out;
	}
	for (size_t i = 0; i < s->dtfix.nr; i++) {
		struct dtfix *x = &s->dtfix.data[i];
		struct bkey_buf kb;
		if ((ret = btree_lookup(s->fs, BTREE_ID_dirents, x->pos, &kb)))
			goto out;
		struct bkfs_dirent *de = bkey_val(&kb.k);
		if (de->inum != x->target)
			continue;
		de->d_type = x->type;
		if ((ret = trans_update(&tr, BTREE_ID_dirents, &kb.k)) || (ret = commit(&tr)))
			goto out;
	}
	/* highest slot first: the backward shift of a removal only moves
	 * entries above it, so the positions of the others stay valid */
	vsort(s->dels.data, s->dels.nr, sizeof(*s->dels.data), cmp_del_desc);
	for (size_t i = 0; i < s->dels.nr; i++) {
		struct del *x = &s->dels.data[i];
		struct dent d;
		if ((ret = read_dirent(s, x->pos, &d)))
			goto out;
		if (d.inum != x->target)
			continue;
		if ((ret = hash_remove_at(&tr, &bkfs_dirent_hash_desc, x->pos.inode, x->pos.offset)) ||
		    (ret = commit(&tr)))
			goto out;
	}
	for (size_t i = 0; i < s->lnkrm.nr; i++) {
		struct bpos pos;
		if ((ret = find_name(s, s->lnkrm.data[i].dir, s->lnkrm.data[i].inum, NULL, &pos)) ||
		    (ret = hash_remove_at(&tr, &bkfs_dirent_hash_desc, pos.inode, pos.offset)) ||
		    (ret = trans_delete(&tr, BTREE_ID_inodes, POS(0, s->lnkrm.data[i].inum))) || (ret = commit(&tr)))
			goto out;
	}
	if (s->lf_new && s->lf_fix &&
	    ((ret = write_new_inode(s, s->lf_new, S_IFDIR | 0700, 2 + s->lf_new_subdirs, BKFS_ROOT_INO, 0, 0)) ||
	     (ret = add_dirent_unique(s, BKFS_ROOT_INO, s->lf_name, s->lf_new, DT_DIR))))
		goto out;
	if (s->lf != NONE || s->lf_fix)
		for (size_t i = 0; i < s->lfadd.nr; i++) {
			char name[32];
			snprintf(name, sizeof(name), "#%llu", (unsigned long long)s->lfadd.data[i].inum);
			if ((ret = add_dirent_unique(s, lf_inum(s), name, s->lfadd.data[i].inum, s->lfadd.data[i].type)) ||
			    (ret = set_origin(s, &tr, s->lfadd.data[i].inum)))
				goto out;
		}
	vsort(s->fix.data, s->fix.nr, sizeof(*s->fix.data), cmp_ifix);
	for (size_t i = 0; i < s->fix.nr;) {
		struct bkfs_inode in;
		struct inode_names nm;
		u64 inum = s->fix.data[i].inum;
		ret = bkfs_inode_get_named(&tr, inum, &in, &nm);
		if (ret)
			goto out;
		for (; i < s->fix.nr && s->fix.data[i].inum == inum; i++) {
			struct ifix *f = &s->fix.data[i];
			if (f->mask & FX_MODE)
				in.mode = f->mode;
			if (f->mask & FX_SIZE)
				in.size = f->size;
			if (f->mask & FX_SECTORS)
				in.sectors = f->sectors;
			if (f->mask & FX_NLINK)
				in.nlink = f->nlink;
			if (f->mask & FX_PARENT)
				in.parent = f->parent;
			if (f->mask & FX_NAME) /* the one name of its one dirent, or none */
				inode_names_one(&nm, in.parent, f->name ? f->name : "", f->name ? strlen(f->name) : 0);
			int d = f->mask & FX_DROPNAME ? inode_names_find(&nm, f->name_dir, f->name, strlen(f->name)) : -1;
			if (d >= 0) {
				inode_names_del(&nm, (unsigned)d);
				in.parent = nm.nr ? nm.dir[0] : 0;
			}
		}
		if ((ret = bkfs_inode_write_named(&tr, inum, &in, &nm)) || (ret = commit(&tr)))
			goto out;
	}
out:
	trans_exit(&tr);
	return ret;
}

/* inodes the accounting counts (a hint: may be wrong on a damaged image) */
static u64 acct_inodes(struct bkfs_fs *fs)
{
	struct acct_entry *e = fs->alloc ? acct_find(fs, acct_pos_nr_inodes(), false) : NULL;
	return e && e->v[0] > 0 ? (u64)e->v[0] : 0;
}

u64 fsck_fs_mem_estimate(struct bkfs_fs *fs)
{
	return (acct_inodes(fs) + 1024) * sizeof(struct fi);
}

/* The table holds an entry per inode: allocate it once, at the size the
 * accounting gives (it grows as usual if that is short), and map its pages
 * at once: the scan fills it from end to end, and a page fault per 4 KiB
 * cost 0.05-0.08 s of the 1M-inode tree's 0.5 s. */
static void t_reserve(struct fsp *s)
{
	u64 n = acct_inodes(s->fs) + 1024;
	if (n > (1u << 27))
		return; /* implausible: let it grow */
	struct fi *d = malloc(n * sizeof(struct fi));
	if (d) {
		s->t.data = d;
		s->t.size = n;
		mem_prefault(d, n * sizeof(struct fi));
	}
}

static void fsp_free(struct fsp *s)
{
	darray_exit(s->t);
	darray_exit(s->hi);
	darray_exit(s->dpar);
	darray_exit(s->big);
	darray_exit(s->orph);
	darray_exit(s->ghosts);
	for (size_t i = 0; i < s->origins.nr; i++)
		free(s->origins.data[i].path);
	darray_exit(s->origins);
	darray_exit(s->bad);
	darray_exit(s->dirs);
	darray_exit(s->sz);
	darray_exit(s->lnkrm);
	darray_exit(s->dr);
	darray_exit(s->extra);
	darray_exit(s->loops);
	darray_exit(s->xlost);
	for (size_t i = 0; i < s->fix.nr; i++)
		free(s->fix.data[i].name);
	darray_exit(s->fix);
	darray_exit(s->relinks);
	darray_exit(s->namebad);
	darray_exit(s->linknamed);
	darray_exit(s->lfadd);
	darray_exit(s->dels);
	darray_exit(s->dtfix);
	darray_exit(s->ol);
	darray_exit(s->oldel);
	pb_exit(&s->lf_path);
}

static void fsp_init(struct fsp *s, struct fsck_ctx *c, const struct fsck_key_hook *hook)
{
	*s = (struct fsp){
		.c = c,
		.fs = c->fs,
		.root = NONE,
		.lf = NONE,
		.path_budget = 1ull << 24,
		.hook = hook,
	};
	t_reserve(s);
}

/* 1. decide, up to the first pass over the dirents: reads only, no findings */
static int fsp_scan(struct fsp *s)
{
	int ret;
	if ((ret = load_orphans(s)) || (ret = scan_ghost_dirs(s)) || (ret = scan_inodes(s)))
		return ret;
	if (s->bad.nr && (ret = resolve_bad(s)))
		return ret;
	vsort(s->dirs.data, s->dirs.nr, sizeof(*s->dirs.data), cmp_dirrec);
	vsort(s->sz.data, s->sz.nr, sizeof(*s->sz.data), cmp_szrec);
	/* in inum order already unless a directory's type came from evidence
	 * (qsort would allocate a copy) */
	for (size_t i = 1; i < s->dpar.nr; i++)
		if (s->dpar.data[i - 1].idx > s->dpar.data[i].idx) {
			vsort(s->dpar.data, s->dpar.nr, sizeof(*s->dpar.data), cmp_dpar);
			break;
		}
	for (size_t i = 0; i < s->dpar.nr; i++)
		s->dpar.data[i].parent = tfind(s, s->dpar.data[i].parent);
	s->next_inum = MAX(s->fs->next_inum, BKFS_FIRST_INO);
	if (s->t.nr && t_inum(s, s->t.nr - 1) >= s->next_inum)
		s->next_inum = t_inum(s, s->t.nr - 1) + 1;
	for (size_t i = 0; i < s->dirs.nr; i++)
		if (s->dirs.data[i].a.nkeys)
			s->dirs.data[i].new_inum = s->next_inum++;
	return scan_dirents(s, &s->need2);
}

int fsck_fs_prescan(struct fsck_ctx *c, const struct fsck_key_hook *hook)
{
	struct fsp *s = malloc(sizeof(*s));
	if (!s)
		return -BKFS_E_NOMEM;
	fsck_fs_prescan_drop(c);
	fsp_init(s, c, hook);
	int ret = fsp_scan(s);
	s->hook = NULL;
	if (ret) {
		fsp_free(s);
		free(s);
		return ret;
	}
	c->fs_prescan = s;
	return 0;
}

void fsck_fs_prescan_drop(struct fsck_ctx *c)
{
	if (c->fs_prescan) {
		fsp_free(c->fs_prescan);
		free(c->fs_prescan);
		c->fs_prescan = NULL;
	}
}

int fsck_check_filesystem(struct fsck_ctx *c)
{
	struct fsp local, *s = c->fs_prescan;
	size_t nr_findings = c->nr;
	int ret = 0;

	c->fs_prescan = NULL;
	if (!s) {
		s = &local;
		fsp_init(s, c, NULL);
		if ((ret = fsp_scan(s)))
			goto out;
	}
	/* 1. decide (the rest) */
	if (s->need2 && (ret = scan_extra_links(s)))
		goto out;
	if ((ret = plan_structure(s)))
		goto out;

	/* 2. report */
	if ((ret = report_early(s)) || (ret = check_link_names(s)) || (ret = report_inodes(s)) ||
	    (ret = report_orphans(s)))
		goto out;

	/* 3. repair what the mode allows */
	bool any = false;
	for (size_t i = nr_findings; i < c->nr; i++)
		any |= c->f[i].fixed;
	if (any && fsck_may_fix(c)) {
		fsck_begin_repair(c);
		ret = apply(s);
	}
out:
	fsp_free(s);
	if (s != &local)
		free(s);
	return ret;
}
