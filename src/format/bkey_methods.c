/* bkey_methods.c - what each key type does: one section per type (its value
 * checks, printer, pointers, extent cuts), then the table that
 * BKFS_KEY_TYPES generates from them. The generic parts (key header checks,
 * the allowed types of a btree, the key printer's header) are in bkey.c.
 * Every method must be safe on arbitrary bytes: the value's length is
 * checked before a field is read. */
#include "bkey_format.h"
#include "extents_format.h"
#include "inode_format.h"
#include "alloc_format.h"
#include "invalid.h"
#include <string.h>

/* ---- shared by several types ---- */

static void ptrs_to_text(struct printbuf *out, const struct bkfs_ptr *p, unsigned nr)
{
	pb_printf(out, "ptrs:");
	for (unsigned i = 0; i < nr; i++) {
		pb_printf(out, i ? ", " : " ");
		ptr_to_text(out, &p[i]);
	}
	if (!nr)
		pb_printf(out, " none");
}

static void name_to_text(struct printbuf *out, const u8 *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			pb_printf(out, "%c", s[i]);
		else
			pb_printf(out, "\\x%02x", s[i]);
	}
}

static int name_validate(const u8 *name, unsigned len, const char *what, struct printbuf *err)
{
	const char *why = dirent_name_bad(name, len);
	if (why)
		INVALID("%s: %s", what, why);
	return 0;
}

/* deleted, whiteout, error: no value */
static void empty_val_to_text(struct printbuf *out, const struct bkey *k)
{
	pb_printf(out, "-");
}

/* ---- btree_ptr ---- */

static int btree_ptr_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_btree_ptr *bp = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb != sizeof(*bp))
		INVALID("btree_ptr: value %zu bytes, want %zu", vb, sizeof(*bp));
	if (bp->nr_ptrs > BKFS_MAX_REPLICAS)
		INVALID("btree_ptr: nr_ptrs %u", bp->nr_ptrs);
	if (bp->level >= BTREE_MAX_DEPTH)
		INVALID("btree_ptr: level %u", bp->level);
	if (bpos_cmp(bp->min_key, k->p) > 0)
		INVALID("btree_ptr: min_key after max_key");
	return 0;
}

static void btree_ptr_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_btree_ptr *bp = bkey_val(k);
	pb_printf(out, "seq %llu min_key ", (unsigned long long)bp->seq);
	bpos_to_text(out, bp->min_key);
	pb_printf(out, " level %u", bp->level);
	if (bp->flags)
		pb_printf(out, " flags 0x%x", bp->flags);
	pb_printf(out, " ");
	ptrs_to_text(out, bp->ptrs, MIN(bp->nr_ptrs, BKFS_MAX_REPLICAS));
	if (bp->nr_ptrs > BKFS_MAX_REPLICAS)
		pb_printf(out, " (nr_ptrs %u)", bp->nr_ptrs);
}

static unsigned btree_ptr_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs)
{
	struct bkfs_btree_ptr *bp = bkey_val(k);
	if (bkey_val_bytes(k) < sizeof(*bp))
		return 0;
	*ptrs = bp->ptrs;
	return MIN(bp->nr_ptrs, BKFS_MAX_REPLICAS);
}

/* the pointer array has a fixed size: the unused slots are zeroed */
static void btree_ptr_set_ptrs(struct bkey *k, const struct bkfs_ptr *p, unsigned nr)
{
	struct bkfs_btree_ptr *bp = bkey_val(k);
	memset(bp->ptrs, 0, sizeof(bp->ptrs));
	memcpy(bp->ptrs, p, nr * sizeof(*p));
	bp->nr_ptrs = nr;
}

/* ---- extent (and the extent inside reflink_v) ---- */

/* e with vb bytes available for it (header + pointers) */
static int extent_body_validate(const struct bkey *k, const struct bkfs_extent *e,
				size_t vb, const char *what, struct printbuf *err)
{
	if (vb < sizeof(*e))
		INVALID("%s: value too small (%zu bytes)", what, vb);
	if (e->nr_ptrs < 1 || e->nr_ptrs > BKFS_MAX_REPLICAS)
		INVALID("%s: bad nr_ptrs %u", what, e->nr_ptrs);
	if (vb != extent_val_bytes(e->nr_ptrs))
		INVALID("%s: %zu value bytes for %u ptrs", what, vb, e->nr_ptrs);
	if (!k->size)
		INVALID("%s: size 0", what);
	if (e->csum_type != CSUM_NONE && e->csum_type != CSUM_CRC32C)
		INVALID("%s: unknown csum_type %u", what, e->csum_type);
	if (e->csum_type != CSUM_NONE && !e->csum_sectors)
		INVALID("%s: checksummed with csum_sectors 0", what);
	if (e->csum_sectors && (u64)e->offset + k->size > e->csum_sectors)
		INVALID("%s: offset %u + size %u > csum_sectors %u",
			what, e->offset, k->size, e->csum_sectors);
	return 0;
}

static void extent_body_to_text(struct printbuf *out, const struct bkfs_extent *e, size_t vb)
{
	if (vb < sizeof(*e)) {
		pb_printf(out, "(bad value size %zu)", vb);
		return;
	}
	pb_printf(out, "csum_type %s csum 0x%08x csum_sectors %u offset %u",
		  e->csum_type == CSUM_NONE ? "none" :
		  e->csum_type == CSUM_CRC32C ? "crc32c" : "unknown",
		  e->csum, e->csum_sectors, e->offset);
	if (e->compression)
		pb_printf(out, " compression %u", e->compression);
	unsigned fit = (vb - sizeof(*e)) / sizeof(struct bkfs_ptr);
	unsigned nr = MIN((unsigned)e->nr_ptrs, fit);
	pb_printf(out, " ");
	ptrs_to_text(out, e->ptrs, nr);
	if (nr != e->nr_ptrs)
		pb_printf(out, " (nr_ptrs %u, only %u fit)", e->nr_ptrs, fit);
}

/* e with vb bytes available for it; the key's u64s follow the new count */
static unsigned extent_body_ptrs(struct bkfs_extent *e, size_t vb, struct bkfs_ptr **ptrs)
{
	if (vb < sizeof(*e))
		return 0;
	*ptrs = e->ptrs;
	return MIN((size_t)e->nr_ptrs, (vb - sizeof(*e)) / sizeof(struct bkfs_ptr));
}

static void extent_body_set_ptrs(struct bkey *k, struct bkfs_extent *e, const struct bkfs_ptr *p,
				 unsigned nr)
{
	memcpy(e->ptrs, p, nr * sizeof(*p));
	e->nr_ptrs = nr;
	k->u64s = DIV_ROUND_UP((size_t)((u8 *)&e->ptrs[nr] - (u8 *)k), 8);
}

static int extent_validate(const struct bkey *k, struct printbuf *err)
{
	return extent_body_validate(k, bkey_val(k), bkey_val_bytes(k), "extent", err);
}

static void extent_val_to_text(struct printbuf *out, const struct bkey *k)
{
	extent_body_to_text(out, bkey_val(k), bkey_val_bytes(k));
}

static unsigned extent_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs)
{
	return extent_body_ptrs(bkey_val(k), bkey_val_bytes(k), ptrs);
}

static void extent_set_ptrs(struct bkey *k, const struct bkfs_ptr *p, unsigned nr)
{
	extent_body_set_ptrs(k, bkey_val(k), p, nr);
}

static void extent_cut_front(struct bkey *k, u64 sectors)
{
	((struct bkfs_extent *)bkey_val(k))->offset += sectors;
}

/* ---- reservation ---- */

static int reservation_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_reservation *r = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb != sizeof(*r))
		INVALID("reservation: value %zu bytes", vb);
	if (!k->size)
		INVALID("reservation: size 0");
	if (r->nr_replicas > BKFS_MAX_REPLICAS)
		INVALID("reservation: nr_replicas %u", r->nr_replicas);
	return 0;
}

static void reservation_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_reservation *r = bkey_val(k);
	pb_printf(out, "nr_replicas %u", r->nr_replicas);
}

/* ---- inline_data ---- */

static int inline_data_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_inline_data *d = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*d))
		INVALID("inline_data: value too small (%zu bytes)", vb);
	if (d->bytes > vb - sizeof(*d))
		INVALID("inline_data: %u bytes in a %zu byte value", d->bytes, vb);
	if (k->size != DIV_ROUND_UP((u64)d->bytes, SECTOR_SIZE))
		INVALID("inline_data: size %u for %u bytes", k->size, d->bytes);
	return 0;
}

static void inline_data_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_inline_data *d = bkey_val(k);
	pb_printf(out, "bytes %u", d->bytes);
}

static void inline_data_cut_front(struct bkey *k, u64 sectors)
{
	struct bkfs_inline_data *d = bkey_val(k);
	u64 bytes = sectors << SECTOR_SHIFT;
	if (bytes >= d->bytes) {
		d->bytes = 0;
	} else {
		memmove(d->data, d->data + bytes, d->bytes - bytes);
		d->bytes -= bytes;
	}
	k->u64s = DIV_ROUND_UP(sizeof(struct bkey) + sizeof(*d) + d->bytes, 8);
}

static void inline_data_cut_back(struct bkey *k)
{
	struct bkfs_inline_data *d = bkey_val(k);
	u64 max = (u64)k->size << SECTOR_SHIFT;
	if (d->bytes > max)
		d->bytes = max;
	k->u64s = DIV_ROUND_UP(sizeof(struct bkey) + sizeof(*d) + d->bytes, 8);
}

/* ---- inode ---- */

static int inode_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_inode *in = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	/* a value longer than the inode holds its recorded name; a malformed
	 * one is the checker's to strip (inode_name_bad), not a reason to lose
	 * the inode */
	if (vb < sizeof(*in) || vb > inode_val_bytes_max())
		INVALID("inode: value %zu bytes", vb);
	if (k->p.inode)
		INVALID("inode: pos.inode %llu != 0", (unsigned long long)k->p.inode);
	/* file type and permission bits only (a mode whose type is
	 * not a valid one is the filesystem checker's to repair) */
	if (in->mode & ~INODE_MODE_BITS)
		INVALID("inode: mode 0%o has bits outside 0%o", in->mode, INODE_MODE_BITS);
	return 0;
}

static void inode_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_inode *i = bkey_val(k);
	pb_printf(out, "mode 0%o size %llu sectors %llu nlink %u uid %u gid %u parent %llu "
		  "flags 0x%x rdev %llu atime %llu mtime %llu ctime %llu",
		  i->mode, (unsigned long long)i->size, (unsigned long long)i->sectors,
		  i->nlink, i->uid, i->gid, (unsigned long long)i->parent, i->flags,
		  (unsigned long long)i->rdev, (unsigned long long)i->atime_ns,
		  (unsigned long long)i->mtime_ns, (unsigned long long)i->ctime_ns);
	struct inode_name_ref refs[INODE_NAMES_MAX];
	int nr = inode_names_parse(i, bkey_val_bytes(k), refs);
	for (int n = 0; n < nr; n++) {
		if (n)
			pb_printf(out, " link %llu/", (unsigned long long)refs[n].dir);
		else
			pb_printf(out, " name ");
		name_to_text(out, refs[n].name, refs[n].len);
	}
	if (nr < 0)
		pb_printf(out, " name (malformed)");
}

/* ---- dirent ---- */

static int dirent_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_dirent *d = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*d))
		INVALID("dirent: value too small (%zu bytes)", vb);
	if (d->name_len > vb - sizeof(*d))
		INVALID("dirent: name_len %u overflows value", d->name_len);
	return name_validate(d->name, d->name_len, "dirent", err);
}

static void dirent_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_dirent *d = bkey_val(k);
	size_t len = MIN((size_t)d->name_len, bkey_val_bytes(k) - sizeof(*d));
	pb_printf(out, "name ");
	name_to_text(out, d->name, len);
	pb_printf(out, " -> inum %llu d_type %u", (unsigned long long)d->inum, d->d_type);
	if (len != d->name_len)
		pb_printf(out, " (name_len %u overflows)", d->name_len);
}

/* ---- xattr ---- */

static int xattr_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_xattr *x = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*x))
		INVALID("xattr: value too small (%zu bytes)", vb);
	if ((size_t)x->name_len + x->val_len > vb - sizeof(*x))
		INVALID("xattr: name %u + value %u overflow value", x->name_len, x->val_len);
	return 0;
}

static void xattr_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_xattr *x = bkey_val(k);
	size_t len = MIN((size_t)x->name_len, bkey_val_bytes(k) - sizeof(*x));
	pb_printf(out, "name ");
	name_to_text(out, x->data, len);
	pb_printf(out, " val_len %u", x->val_len);
}

/* ---- alloc ---- */

static bool data_type_is_empty(unsigned t)
{
	return t == DATA_free || t == DATA_need_gc_gens || t == DATA_need_discard;
}

unsigned alloc_data_type(const struct bkfs_alloc *a, unsigned hint)
{
	if (a->stripe)
		return hint == DATA_parity ? DATA_parity : DATA_stripe;
	if ((u64)a->dirty_sectors + a->stripe_sectors) {
		if (hint >= DATA_NR || hint == DATA_free || hint == DATA_cached ||
		    hint == DATA_need_gc_gens || hint == DATA_need_discard)
			return DATA_user;
		return hint;
	}
	if (a->cached_sectors)
		return DATA_cached;
	if (a->flags & ALLOC_NEED_DISCARD)
		return DATA_need_discard;
	if ((u8)(a->gen - a->oldest_gen) >= BUCKET_GC_GEN_MAX)
		return DATA_need_gc_gens;
	return DATA_free;
}

u64 alloc_fragmentation(const struct bkfs_alloc *a, u32 bucket_sectors)
{
	if (!bucket_sectors || data_type_is_empty(a->data_type))
		return 0;
	u64 used = MIN((u64)a->dirty_sectors + a->stripe_sectors, (u64)bucket_sectors);
	return used * (1ull << 31) / bucket_sectors;
}

static int alloc_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_alloc *a = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb != sizeof(*a))
		INVALID("alloc: value %zu bytes", vb);
	if (a->data_type >= DATA_NR)
		INVALID("alloc: bad data_type %u", a->data_type);
	unsigned want = alloc_data_type(a, a->data_type);
	if (want != a->data_type)
		INVALID("alloc: data_type %s, counts say %s",
			data_type_str(a->data_type), data_type_str(want));
	if (data_type_is_empty(a->data_type) &&
	    (a->dirty_sectors || a->cached_sectors || a->stripe_sectors || a->stripe))
		INVALID("alloc: empty bucket (%s) with nonzero counts",
			data_type_str(a->data_type));
	return 0;
}

static void flags_to_text(struct printbuf *out, u32 flags)
{
	if (!flags) {
		pb_printf(out, "none");
		return;
	}
	const char *sep = "";
	if (flags & ALLOC_NEED_DISCARD) {
		pb_printf(out, "%sneed_discard", sep);
		sep = ",";
	}
	if (flags & ALLOC_NEED_INC_GEN) {
		pb_printf(out, "%sneed_inc_gen", sep);
		sep = ",";
	}
	flags &= ~(ALLOC_NEED_DISCARD | ALLOC_NEED_INC_GEN);
	if (flags)
		pb_printf(out, "%s0x%x", sep, flags);
}

void alloc_to_text(struct printbuf *out, const struct bkfs_alloc *a)
{
	pb_printf(out, "gen %u oldest_gen %u data_type %s dirty %u cached %u "
		  "stripe_sectors %u stripe %u redundancy %u journal_seq %llu flags ",
		  a->gen, a->oldest_gen, data_type_str(a->data_type), a->dirty_sectors,
		  a->cached_sectors, a->stripe_sectors, a->stripe, a->stripe_redundancy,
		  (unsigned long long)a->journal_seq);
	flags_to_text(out, a->flags);
	pb_printf(out, " read_time %llu write_time %llu frag_lru %llu",
		  (unsigned long long)a->io_time[0], (unsigned long long)a->io_time[1],
		  (unsigned long long)a->fragmentation_lru);
}

static void alloc_val_to_text(struct printbuf *out, const struct bkey *k)
{
	alloc_to_text(out, bkey_val(k));
}

/* ---- stripe ---- */

size_t stripe_val_bytes(unsigned nr_blocks)
{
	return ROUND_UP(sizeof(struct bkfs_stripe) +
			(size_t)nr_blocks * (sizeof(struct bkfs_ptr) + sizeof(u16)), 8);
}

static int stripe_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_stripe *s = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*s))
		INVALID("stripe: value too small (%zu bytes)", vb);
	if (s->nr_blocks < 2)
		INVALID("stripe: nr_blocks %u", s->nr_blocks);
	if (s->nr_redundant >= s->nr_blocks)
		INVALID("stripe: nr_redundant %u >= nr_blocks %u", s->nr_redundant, s->nr_blocks);
	if (vb != stripe_val_bytes(s->nr_blocks))
		INVALID("stripe: value %zu bytes for %u blocks", vb, s->nr_blocks);
	if (s->nr_blocks > STRIPE_MAX_BLOCKS)
		INVALID("stripe: %u blocks, at most %u", s->nr_blocks, STRIPE_MAX_BLOCKS);
	if (s->algorithm != STRIPE_ALG_RS_CAUCHY)
		INVALID("stripe: unknown algorithm %u", s->algorithm);
	if (!s->sectors)
		INVALID("stripe: blocks of 0 sectors");
	if (k->p.inode || !k->p.offset || k->p.offset > UINT32_MAX || k->p.snapshot)
		INVALID("stripe: position is not (0, index 1..2^32-1)");
	return 0;
}

static void stripe_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_stripe *s = bkey_val(k);
	pb_printf(out, "sectors %u algorithm %u nr_blocks %u nr_redundant %u",
		  s->sectors, s->algorithm, s->nr_blocks, s->nr_redundant);
	size_t need = sizeof(*s) + (size_t)s->nr_blocks * (sizeof(struct bkfs_ptr) + 2);
	if (need > bkey_val_bytes(k)) {
		pb_printf(out, " (blocks overflow value)");
		return;
	}
	const u8 *bs = (const u8 *)&s->ptrs[s->nr_blocks];
	for (unsigned i = 0; i < s->nr_blocks; i++) {
		u16 sec;
		memcpy(&sec, bs + 2 * i, 2);
		pb_printf(out, "%s[%u] ", i ? ", " : ": ", i);
		ptr_to_text(out, &s->ptrs[i]);
		pb_printf(out, " sectors %u", sec);
	}
}

static unsigned stripe_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs)
{
	struct bkfs_stripe *s = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*s))
		return 0;
	*ptrs = s->ptrs;
	return MIN((size_t)s->nr_blocks, (vb - sizeof(*s)) / sizeof(struct bkfs_ptr));
}

/* ---- reflink_p ---- */

static int reflink_p_validate(const struct bkey *k, struct printbuf *err)
{
	size_t vb = bkey_val_bytes(k);
	if (vb != sizeof(struct bkfs_reflink_p))
		INVALID("reflink_p: value %zu bytes", vb);
	if (!k->size)
		INVALID("reflink_p: size 0");
	return 0;
}

static void reflink_p_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_reflink_p *r = bkey_val(k);
	pb_printf(out, "idx %llu front_pad %u back_pad %u",
		  (unsigned long long)r->idx, r->front_pad, r->back_pad);
}

static void reflink_p_cut_front(struct bkey *k, u64 sectors)
{
	((struct bkfs_reflink_p *)bkey_val(k))->idx += sectors;
}

/* ---- reflink_v: a refcount, then an extent ---- */

#define REFLINK_V_EXTENT_OFF offsetof(struct bkfs_reflink_v, e)

static int reflink_v_validate(const struct bkey *k, struct printbuf *err)
{
	const struct bkfs_reflink_v *r = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*r) + sizeof(struct bkfs_ptr))
		INVALID("reflink_v: value too small (%zu bytes)", vb);
	if (k->p.inode)
		INVALID("reflink_v: pos.inode %llu != 0", (unsigned long long)k->p.inode);
	return extent_body_validate(k, &r->e, vb - REFLINK_V_EXTENT_OFF, "reflink_v", err);
}

static void reflink_v_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_reflink_v *r = bkey_val(k);
	pb_printf(out, "refcount %llu ", (unsigned long long)r->refcount);
	extent_body_to_text(out, &r->e, bkey_val_bytes(k) - REFLINK_V_EXTENT_OFF);
}

static unsigned reflink_v_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs)
{
	struct bkfs_reflink_v *r = bkey_val(k);
	size_t vb = bkey_val_bytes(k);
	if (vb < sizeof(*r))
		return 0;
	return extent_body_ptrs(&r->e, vb - REFLINK_V_EXTENT_OFF, ptrs);
}

static void reflink_v_set_ptrs(struct bkey *k, const struct bkfs_ptr *p, unsigned nr)
{
	extent_body_set_ptrs(k, &((struct bkfs_reflink_v *)bkey_val(k))->e, p, nr);
}

/* ---- accounting ---- */

const char *acct_type_str(unsigned t)
{
	switch (t) {
#define x(n, v) case v: return #n;
	BKFS_ACCT_TYPES()
#undef x
	default: return "unknown";
	}
}

static bool acct_type_known(u64 t)
{
	switch (t) {
#define x(n, v) case v: return true;
	BKFS_ACCT_TYPES()
#undef x
	default: return false;
	}
}

/* orphan (orphans btree): an inode with no name left, open when its last
 * link went; no value, position (0, inum, 0) */
static int orphan_validate(const struct bkey *k, struct printbuf *err)
{
	size_t vb = bkey_val_bytes(k);
	if (vb)
		INVALID("orphan: value %zu bytes, want 0", vb);
	if (k->p.inode || k->p.offset < BKFS_FIRST_INO || k->p.snapshot)
		INVALID("orphan: position is not (0, inum >= %llu, 0)", BKFS_FIRST_INO);
	return 0;
}

static int accounting_validate(const struct bkey *k, struct printbuf *err)
{
	size_t vb = bkey_val_bytes(k);
	if (vb != sizeof(struct bkfs_accounting))
		INVALID("accounting: value %zu bytes", vb);
	if (k->p.inode >= ACCT_NR || !acct_type_known(k->p.inode))
		INVALID("accounting: unknown type %llu", (unsigned long long)k->p.inode);
	return 0;
}

static void acct_pos_to_text(struct printbuf *out, struct bpos p)
{
	pb_printf(out, "%s", acct_type_str(p.inode < ACCT_NR ? (unsigned)p.inode : ~0u));
	switch (p.inode) {
	case ACCT_persistent_reserved:
		pb_printf(out, " nr_replicas %llu", (unsigned long long)p.offset);
		break;
	case ACCT_replicas: {
		u32 mask = (u32)p.offset;
		pb_printf(out, " %s nr_required %u devs",
			  data_type_str((unsigned)(p.offset >> 56)),
			  (unsigned)((p.offset >> 48) & 0xff));
		if (!mask)
			pb_printf(out, " none");
		for (unsigned i = 0; i < 32; i++)
			if (mask & (1u << i))
				pb_printf(out, " %u", i);
		break;
	}
	case ACCT_dev_data_type:
		pb_printf(out, " dev %llu %s", (unsigned long long)(p.offset >> 8),
			  data_type_str((unsigned)(p.offset & 0xff)));
		break;
	case ACCT_compression:
		pb_printf(out, " type %llu", (unsigned long long)p.offset);
		break;
	case ACCT_btree:
		pb_printf(out, " %s", btree_id_str(p.offset < BTREE_ID_NR ? (unsigned)p.offset : ~0u));
		break;
	case ACCT_nr_inodes:
	case ACCT_reflink:
		break;
	default:
		pb_printf(out, " id %llu", (unsigned long long)p.offset);
	}
}

static void accounting_val_to_text(struct printbuf *out, const struct bkey *k)
{
	const struct bkfs_accounting *a = bkey_val(k);
	acct_pos_to_text(out, k->p);
	pb_printf(out, ": %lld %lld %lld", (long long)a->v[0],
		  (long long)a->v[1], (long long)a->v[2]);
}

/* ---- the table ----
 * bkey_ops_<type>: the methods of one type, named in BKFS_KEY_TYPES. */

#define bkey_ops_deleted     .val_to_text = empty_val_to_text
#define bkey_ops_whiteout    .val_to_text = empty_val_to_text
#define bkey_ops_error       .val_to_text = empty_val_to_text
#define bkey_ops_btree_ptr                                                      \
	.min_val_size = sizeof(struct bkfs_btree_ptr),                          \
	.validate = btree_ptr_validate, .val_to_text = btree_ptr_val_to_text,   \
	.ptrs = btree_ptr_ptrs, .set_ptrs = btree_ptr_set_ptrs
#define bkey_ops_extent                                                         \
	.validate = extent_validate, .val_to_text = extent_val_to_text,         \
	.ptrs = extent_ptrs, .set_ptrs = extent_set_ptrs,                       \
	.cut_front = extent_cut_front
#define bkey_ops_reservation                                                    \
	.min_val_size = sizeof(struct bkfs_reservation),                        \
	.validate = reservation_validate, .val_to_text = reservation_val_to_text
#define bkey_ops_inode                                                          \
	.min_val_size = sizeof(struct bkfs_inode),                              \
	.validate = inode_validate, .val_to_text = inode_val_to_text
#define bkey_ops_dirent                                                         \
	.min_val_size = sizeof(struct bkfs_dirent),                             \
	.validate = dirent_validate, .val_to_text = dirent_val_to_text
#define bkey_ops_xattr                                                          \
	.min_val_size = sizeof(struct bkfs_xattr),                              \
	.validate = xattr_validate, .val_to_text = xattr_val_to_text
#define bkey_ops_inline_data                                                    \
	.min_val_size = sizeof(struct bkfs_inline_data),                        \
	.validate = inline_data_validate, .val_to_text = inline_data_val_to_text, \
	.cut_front = inline_data_cut_front, .cut_back = inline_data_cut_back
#define bkey_ops_alloc                                                          \
	.min_val_size = sizeof(struct bkfs_alloc),                              \
	.validate = alloc_validate, .val_to_text = alloc_val_to_text
#define bkey_ops_stripe                                                         \
	.min_val_size = sizeof(struct bkfs_stripe),                             \
	.validate = stripe_validate, .val_to_text = stripe_val_to_text,         \
	.ptrs = stripe_ptrs
#define bkey_ops_reflink_p                                                      \
	.min_val_size = sizeof(struct bkfs_reflink_p),                          \
	.validate = reflink_p_validate, .val_to_text = reflink_p_val_to_text,   \
	.cut_front = reflink_p_cut_front
#define bkey_ops_reflink_v                                                      \
	.min_val_size = sizeof(struct bkfs_reflink_v),                          \
	.validate = reflink_v_validate, .val_to_text = reflink_v_val_to_text,   \
	.ptrs = reflink_v_ptrs, .set_ptrs = reflink_v_set_ptrs
#define bkey_ops_orphan .validate = orphan_validate, .val_to_text = empty_val_to_text
#define bkey_ops_accounting                                                     \
	.min_val_size = sizeof(struct bkfs_accounting),                         \
	.validate = accounting_validate, .val_to_text = accounting_val_to_text

static const struct bkey_ops bkey_ops_table[KEY_TYPE_MAX] = {
#define x(n, v) [v] = { .name = #n, bkey_ops_##n },
	BKFS_KEY_TYPES()
#undef x
};

const struct bkey_ops *bkey_type_ops(unsigned t)
{
	static const struct bkey_ops unknown;
	return t < KEY_TYPE_MAX ? &bkey_ops_table[t] : &unknown;
}
