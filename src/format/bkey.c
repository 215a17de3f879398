/* bkey.c - positions, names, keys, key validation, btree node validation and
 * the printers for all of them. Every function here must be safe on arbitrary
 * bytes: lengths are checked before any value field is read. */
#include "format.h"
#include <string.h>

/* ---- positions ---- */

struct bpos bpos_successor(struct bpos p)
{
	if (bpos_eq(p, POS_MAX))
		return POS_MAX;
	p.pad = 0;
	if (p.snapshot != UINT32_MAX) {
		p.snapshot++;
		return p;
	}
	p.snapshot = 0;
	if (p.offset != UINT64_MAX) {
		p.offset++;
		return p;
	}
	p.offset = 0;
	p.inode++;
	return p;
}

struct bpos bpos_predecessor(struct bpos p)
{
	if (bpos_eq(p, POS_MIN))
		return POS_MIN;
	p.pad = 0;
	if (p.snapshot) {
		p.snapshot--;
		return p;
	}
	p.snapshot = UINT32_MAX;
	if (p.offset) {
		p.offset--;
		return p;
	}
	p.offset = UINT64_MAX;
	p.inode--;
	return p;
}

/* ---- names ---- */

static const char *const btree_id_names[] = {
#define x(n, v) [v] = #n,
	BKFS_BTREE_IDS()
#undef x
};

const char *btree_id_str(unsigned id)
{
	if (id < ARRAY_SIZE(btree_id_names) && btree_id_names[id])
		return btree_id_names[id];
	return "unknown";
}

int btree_id_parse(const char *s)
{
	if (!s)
		return -1;
	for (unsigned i = 0; i < ARRAY_SIZE(btree_id_names); i++)
		if (btree_id_names[i] && !strcmp(s, btree_id_names[i]))
			return (int)i;
	return -1;
}

const char *key_type_str(unsigned t)
{
	switch (t) {
#define x(n, v) case v: return #n;
	BKFS_KEY_TYPES()
#undef x
	default: return "unknown";
	}
}

static bool key_type_known(unsigned t)
{
	switch (t) {
#define x(n, v) case v: return true;
	BKFS_KEY_TYPES()
#undef x
	default: return false;
	}
}

static const char *const data_type_names[] = {
#define x(n, v) [v] = #n,
	BKFS_DATA_TYPES()
#undef x
};

const char *data_type_str(unsigned t)
{
	if (t < ARRAY_SIZE(data_type_names) && data_type_names[t])
		return data_type_names[t];
	return "unknown";
}

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

/* ---- keys ---- */

void bkey_init(struct bkey *k, unsigned type, struct bpos p, size_t val_bytes)
{
	size_t u64s = DIV_ROUND_UP(sizeof(struct bkey) + val_bytes, 8);
	memset(k, 0, u64s * 8);
	k->u64s = (u16)u64s;
	k->type = (u8)type;
	k->p = p;
}

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

unsigned bkey_ptrs(const struct bkey *k, struct bkfs_ptr **ptrs)
{
	struct bkfs_ptr *p = NULL;
	unsigned n = 0;

	if (k->u64s >= BKEY_U64s) {
		size_t vb = bkey_val_bytes(k);
		switch (k->type) {
		case KEY_TYPE_btree_ptr: {
			struct bkfs_btree_ptr *bp = bkey_val(k);
			if (vb >= sizeof(*bp)) {
				n = MIN(bp->nr_ptrs, BKFS_MAX_REPLICAS);
				p = bp->ptrs;
			}
			break;
		}
		case KEY_TYPE_extent: {
			struct bkfs_extent *e = bkey_val(k);
			if (vb >= sizeof(*e)) {
				n = MIN((size_t)e->nr_ptrs, (vb - sizeof(*e)) / sizeof(struct bkfs_ptr));
				p = e->ptrs;
			}
			break;
		}
		case KEY_TYPE_reflink_v: {
			struct bkfs_reflink_v *r = bkey_val(k);
			if (vb >= sizeof(*r)) {
				n = MIN((size_t)r->e.nr_ptrs, (vb - sizeof(*r)) / sizeof(struct bkfs_ptr));
				p = r->e.ptrs;
			}
			break;
		}
		case KEY_TYPE_stripe: {
			struct bkfs_stripe *s = bkey_val(k);
			if (vb >= sizeof(*s)) {
				n = MIN((size_t)s->nr_blocks, (vb - sizeof(*s)) / sizeof(struct bkfs_ptr));
				p = s->ptrs;
			}
			break;
		}
		}
	}
	if (ptrs)
		*ptrs = n ? p : NULL;
	return n;
}

/* ---- key validation ---- */

#define INVALID(...)                                    \
	do {                                            \
		if (err)                                \
			pb_printf(err, __VA_ARGS__);    \
		return -BKFS_E_CORRUPT;                 \
	} while (0)

static bool btree_has_extents(unsigned id)
{
	return id == BTREE_ID_extents || id == BTREE_ID_reflink;
}

static bool key_type_allowed(unsigned id, unsigned level, unsigned t)
{
	if (level)
		return t == KEY_TYPE_btree_ptr;
	if (t == KEY_TYPE_deleted || t == KEY_TYPE_whiteout)
		return true;
	switch (id) {
	case BTREE_ID_extents:
		return t == KEY_TYPE_extent || t == KEY_TYPE_inline_data ||
		       t == KEY_TYPE_reservation || t == KEY_TYPE_reflink_p ||
		       t == KEY_TYPE_error;
	case BTREE_ID_inodes:     return t == KEY_TYPE_inode;
	case BTREE_ID_dirents:    return t == KEY_TYPE_dirent;
	case BTREE_ID_xattrs:     return t == KEY_TYPE_xattr;
	case BTREE_ID_alloc:      return t == KEY_TYPE_alloc;
	case BTREE_ID_reflink:    return t == KEY_TYPE_reflink_v || t == KEY_TYPE_error;
	case BTREE_ID_stripes:    return t == KEY_TYPE_stripe;
	case BTREE_ID_accounting: return t == KEY_TYPE_accounting;
	case BTREE_ID_orphans:    return t == KEY_TYPE_orphan;
	}
	return false;
}

/* Shared by extent and reflink_v: the extent header at e with vb bytes
 * available for it (header + pointers). */
static int extent_validate(const struct bkey *k, const struct bkfs_extent *e,
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

static int name_validate(const u8 *name, unsigned len, const char *what, struct printbuf *err)
{
	if (!len)
		INVALID("%s: empty name", what);
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		INVALID("%s: name is . or ..", what);
	for (unsigned i = 0; i < len; i++) {
		if (!name[i])
			INVALID("%s: NUL in name", what);
		if (name[i] == '/')
			INVALID("%s: '/' in name", what);
	}
	return 0;
}

size_t stripe_val_bytes(unsigned nr_blocks)
{
	return ROUND_UP(sizeof(struct bkfs_stripe) +
			(size_t)nr_blocks * (sizeof(struct bkfs_ptr) + sizeof(u16)), 8);
}

int bkey_validate(const struct bkey *k, unsigned btree_id, unsigned level, struct printbuf *err)
{
	if (k->u64s < BKEY_U64s)
		INVALID("u64s %u too small", k->u64s);
	size_t vb = bkey_val_bytes(k);
	if (vb > BKEY_VAL_MAX)
		INVALID("value too big (%zu bytes)", vb);
	if (btree_id >= BTREE_ID_NR)
		INVALID("bad btree id %u", btree_id);
	if (level >= BTREE_MAX_DEPTH)
		INVALID("bad level %u", level);
	if (!key_type_known(k->type))
		INVALID("unknown key type %u", k->type);
	if (!key_type_allowed(btree_id, level, k->type))
		INVALID("key type %s not allowed in btree %s level %u",
			key_type_str(k->type), btree_id_str(btree_id), level);
	if (!level && btree_has_extents(btree_id)) {
		if (k->size > k->p.offset)
			INVALID("size %u > offset %llu", k->size, (unsigned long long)k->p.offset);
	} else if (k->size) {
		INVALID("size %u on non-extent key", k->size);
	}

	const void *v = bkey_val(k);
	switch (k->type) {
	case KEY_TYPE_deleted:
	case KEY_TYPE_whiteout:
	case KEY_TYPE_error:
		return 0;
	case KEY_TYPE_btree_ptr: {
		const struct bkfs_btree_ptr *bp = v;
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
	case KEY_TYPE_extent:
		return extent_validate(k, v, vb, "extent", err);
	case KEY_TYPE_reservation: {
		const struct bkfs_reservation *r = v;
		if (vb != sizeof(*r))
			INVALID("reservation: value %zu bytes", vb);
		if (!k->size)
			INVALID("reservation: size 0");
		if (r->nr_replicas > BKFS_MAX_REPLICAS)
			INVALID("reservation: nr_replicas %u", r->nr_replicas);
		return 0;
	}
	case KEY_TYPE_inline_data: {
		const struct bkfs_inline_data *d = v;
		if (vb < sizeof(*d))
			INVALID("inline_data: value too small (%zu bytes)", vb);
		if (d->bytes > vb - sizeof(*d))
			INVALID("inline_data: %u bytes in a %zu byte value", d->bytes, vb);
		if (k->size != DIV_ROUND_UP((u64)d->bytes, SECTOR_SIZE))
			INVALID("inline_data: size %u for %u bytes", k->size, d->bytes);
		return 0;
	}
	case KEY_TYPE_inode: {
		const struct bkfs_inode *in = v;
		if (vb != sizeof(*in))
			INVALID("inode: value %zu bytes", vb);
		if (k->p.inode)
			INVALID("inode: pos.inode %llu != 0", (unsigned long long)k->p.inode);
		/* file type and permission bits only (a mode whose type is
		 * not a valid one is the filesystem checker's to repair) */
		if (in->mode & ~INODE_MODE_BITS)
			INVALID("inode: mode 0%o has bits outside 0%o", in->mode, INODE_MODE_BITS);
		return 0;
	}
	case KEY_TYPE_dirent: {
		const struct bkfs_dirent *d = v;
		if (vb < sizeof(*d))
			INVALID("dirent: value too small (%zu bytes)", vb);
		if (d->name_len > vb - sizeof(*d))
			INVALID("dirent: name_len %u overflows value", d->name_len);
		return name_validate(d->name, d->name_len, "dirent", err);
	}
	case KEY_TYPE_xattr: {
		const struct bkfs_xattr *x = v;
		if (vb < sizeof(*x))
			INVALID("xattr: value too small (%zu bytes)", vb);
		if ((size_t)x->name_len + x->val_len > vb - sizeof(*x))
			INVALID("xattr: name %u + value %u overflow value", x->name_len, x->val_len);
		return 0;
	}
	case KEY_TYPE_alloc: {
		const struct bkfs_alloc *a = v;
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
	case KEY_TYPE_stripe: {
		const struct bkfs_stripe *s = v;
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
	case KEY_TYPE_reflink_p:
		if (vb != sizeof(struct bkfs_reflink_p))
			INVALID("reflink_p: value %zu bytes", vb);
		if (!k->size)
			INVALID("reflink_p: size 0");
		return 0;
	case KEY_TYPE_reflink_v: {
		const struct bkfs_reflink_v *r = v;
		if (vb < sizeof(*r) + sizeof(struct bkfs_ptr))
			INVALID("reflink_v: value too small (%zu bytes)", vb);
		if (k->p.inode)
			INVALID("reflink_v: pos.inode %llu != 0", (unsigned long long)k->p.inode);
		return extent_validate(k, &r->e, vb - offsetof(struct bkfs_reflink_v, e),
				       "reflink_v", err);
	}
	case KEY_TYPE_orphan:
		if (vb)
			INVALID("orphan: value %zu bytes, want 0", vb);
		if (k->p.inode || k->p.offset < BKFS_FIRST_INO || k->p.snapshot)
			INVALID("orphan: position is not (0, inum >= %llu, 0)", BKFS_FIRST_INO);
		return 0;
	case KEY_TYPE_accounting:
		if (vb != sizeof(struct bkfs_accounting))
			INVALID("accounting: value %zu bytes", vb);
		if (k->p.inode >= ACCT_NR || !acct_type_known(k->p.inode))
			INVALID("accounting: unknown type %llu", (unsigned long long)k->p.inode);
		return 0;
	}
	INVALID("unknown key type %u", k->type);
}

/* ---- printers ---- */

void bpos_to_text(struct printbuf *out, struct bpos p)
{
	if (bpos_eq(p, POS_MAX))
		pb_printf(out, "POS_MAX");
	else if (bpos_eq(p, POS_MIN))
		pb_printf(out, "POS_MIN");
	else
		pb_printf(out, "%llu:%llu:%u", (unsigned long long)p.inode,
			  (unsigned long long)p.offset, p.snapshot);
}

void ptr_to_text(struct printbuf *out, const struct bkfs_ptr *p)
{
	pb_printf(out, "dev %u off %llu gen %u", p->dev, (unsigned long long)p->offset, p->gen);
	if (p->flags & PTR_CACHED)
		pb_printf(out, " cached");
	if (p->flags & PTR_HAS_STRIPE)
		pb_printf(out, " stripe %u block %u", p->stripe_idx, p->stripe_block);
	if (p->flags & ~(PTR_CACHED | PTR_HAS_STRIPE))
		pb_printf(out, " flags 0x%x", p->flags);
}

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

static void name_to_text(struct printbuf *out, const u8 *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			pb_printf(out, "%c", s[i]);
		else
			pb_printf(out, "\\x%02x", s[i]);
	}
}

static void extent_to_text(struct printbuf *out, const struct bkfs_extent *e, size_t vb)
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

static void inode_to_text(struct printbuf *out, const struct bkfs_inode *i)
{
	pb_printf(out, "mode 0%o size %llu sectors %llu nlink %u uid %u gid %u parent %llu "
		  "flags 0x%x rdev %llu atime %llu mtime %llu ctime %llu",
		  i->mode, (unsigned long long)i->size, (unsigned long long)i->sectors,
		  i->nlink, i->uid, i->gid, (unsigned long long)i->parent, i->flags,
		  (unsigned long long)i->rdev, (unsigned long long)i->atime_ns,
		  (unsigned long long)i->mtime_ns, (unsigned long long)i->ctime_ns);
}

static void stripe_to_text(struct printbuf *out, const struct bkfs_stripe *s, size_t vb)
{
	pb_printf(out, "sectors %u algorithm %u nr_blocks %u nr_redundant %u",
		  s->sectors, s->algorithm, s->nr_blocks, s->nr_redundant);
	size_t need = sizeof(*s) + (size_t)s->nr_blocks * (sizeof(struct bkfs_ptr) + 2);
	if (need > vb) {
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

static void val_to_text(struct printbuf *out, const struct bkey *k)
{
	size_t vb = bkey_val_bytes(k);
	const void *v = bkey_val(k);

#define NEED(n)                                                         \
	do {                                                            \
		if (vb < (n)) {                                         \
			pb_printf(out, "(bad value size %zu)", vb);     \
			return;                                         \
		}                                                       \
	} while (0)

	switch (k->type) {
	case KEY_TYPE_deleted:
	case KEY_TYPE_whiteout:
	case KEY_TYPE_error:
		pb_printf(out, "-");
		return;
	case KEY_TYPE_btree_ptr: {
		const struct bkfs_btree_ptr *bp = v;
		NEED(sizeof(*bp));
		pb_printf(out, "seq %llu min_key ", (unsigned long long)bp->seq);
		bpos_to_text(out, bp->min_key);
		pb_printf(out, " level %u", bp->level);
		if (bp->flags)
			pb_printf(out, " flags 0x%x", bp->flags);
		pb_printf(out, " ");
		ptrs_to_text(out, bp->ptrs, MIN(bp->nr_ptrs, BKFS_MAX_REPLICAS));
		if (bp->nr_ptrs > BKFS_MAX_REPLICAS)
			pb_printf(out, " (nr_ptrs %u)", bp->nr_ptrs);
		return;
	}
	case KEY_TYPE_extent:
		extent_to_text(out, v, vb);
		return;
	case KEY_TYPE_reservation: {
		const struct bkfs_reservation *r = v;
		NEED(sizeof(*r));
		pb_printf(out, "nr_replicas %u", r->nr_replicas);
		return;
	}
	case KEY_TYPE_inline_data: {
		const struct bkfs_inline_data *d = v;
		NEED(sizeof(*d));
		pb_printf(out, "bytes %u", d->bytes);
		return;
	}
	case KEY_TYPE_inode:
		NEED(sizeof(struct bkfs_inode));
		inode_to_text(out, v);
		return;
	case KEY_TYPE_dirent: {
		const struct bkfs_dirent *d = v;
		NEED(sizeof(*d));
		size_t len = MIN((size_t)d->name_len, vb - sizeof(*d));
		pb_printf(out, "name ");
		name_to_text(out, d->name, len);
		pb_printf(out, " -> inum %llu d_type %u", (unsigned long long)d->inum, d->d_type);
		if (len != d->name_len)
			pb_printf(out, " (name_len %u overflows)", d->name_len);
		return;
	}
	case KEY_TYPE_xattr: {
		const struct bkfs_xattr *x = v;
		NEED(sizeof(*x));
		size_t len = MIN((size_t)x->name_len, vb - sizeof(*x));
		pb_printf(out, "name ");
		name_to_text(out, x->data, len);
		pb_printf(out, " val_len %u", x->val_len);
		return;
	}
	case KEY_TYPE_alloc:
		NEED(sizeof(struct bkfs_alloc));
		alloc_to_text(out, v);
		return;
	case KEY_TYPE_stripe:
		NEED(sizeof(struct bkfs_stripe));
		stripe_to_text(out, v, vb);
		return;
	case KEY_TYPE_reflink_p: {
		const struct bkfs_reflink_p *r = v;
		NEED(sizeof(*r));
		pb_printf(out, "idx %llu front_pad %u back_pad %u",
			  (unsigned long long)r->idx, r->front_pad, r->back_pad);
		return;
	}
	case KEY_TYPE_reflink_v: {
		const struct bkfs_reflink_v *r = v;
		NEED(sizeof(*r));
		pb_printf(out, "refcount %llu ", (unsigned long long)r->refcount);
		extent_to_text(out, &r->e, vb - offsetof(struct bkfs_reflink_v, e));
		return;
	}
	case KEY_TYPE_accounting: {
		const struct bkfs_accounting *a = v;
		NEED(sizeof(*a));
		acct_pos_to_text(out, k->p);
		pb_printf(out, ": %lld %lld %lld", (long long)a->v[0],
			  (long long)a->v[1], (long long)a->v[2]);
		return;
	}
	}
	pb_printf(out, "(%zu value bytes)", vb);
#undef NEED
}

void bkey_to_text(struct printbuf *out, const struct bkey *k)
{
	pb_printf(out, "u64s %u type %s pos ", k->u64s, key_type_str(k->type));
	bpos_to_text(out, k->p);
	if (k->size)
		pb_printf(out, " size %u", k->size);
	pb_printf(out, " ver %llu", (unsigned long long)k->version);
	if (k->u64s < BKEY_U64s) {
		pb_printf(out, ": (bad u64s)");
		return;
	}
	pb_printf(out, ": ");
	val_to_text(out, k);
}

void node_hdr_to_text(struct printbuf *out, const struct bkfs_node_hdr *h)
{
	pb_printf(out, "csum 0x%08x version %u magic 0x%016llx btree %s level %u flags 0x%x "
		  "nr_keys %u used_bytes %u seq %llu journal_seq %llu min_key ",
		  h->csum, h->version, (unsigned long long)h->magic, btree_id_str(h->btree_id),
		  h->level, h->flags, h->nr_keys, h->used_bytes, (unsigned long long)h->seq,
		  (unsigned long long)h->journal_seq);
	bpos_to_text(out, h->min_key);
	pb_printf(out, " max_key ");
	bpos_to_text(out, h->max_key);
}

/* ---- btree nodes ---- */

void node_csum_set(void *buf)
{
	struct bkfs_node_hdr *h = buf;
	u32 used = h->used_bytes;
	h->csum = bkfs_crc32c(0, (u8 *)buf + 4, used > 4 ? used - 4 : 0);
}

/* ---- raw node images ---- */

static u32 node_buf_key_off(const void *buf, u32 idx)
{
	u32 off = sizeof(struct bkfs_node_hdr);
	while (idx--)
		off += bkey_bytes((const struct bkey *)((const u8 *)buf + off));
	return off;
}

struct bkey *node_buf_key(void *buf, u32 idx)
{
	return (struct bkey *)((u8 *)buf + node_buf_key_off(buf, idx));
}

int node_buf_find(const void *buf, struct bpos p)
{
	const struct bkfs_node_hdr *h = buf;
	u32 off = sizeof(*h);
	for (u32 i = 0; i < h->nr_keys; i++) {
		const struct bkey *k = (const struct bkey *)((const u8 *)buf + off);
		if (bpos_eq(k->p, p))
			return (int)i;
		off += bkey_bytes(k);
	}
	return -1;
}

void node_buf_delete(void *buf, size_t node_bytes, u32 idx)
{
	struct bkfs_node_hdr *h = buf;
	u8 *b = buf;
	u32 off = node_buf_key_off(buf, idx);
	u32 sz = bkey_bytes((struct bkey *)(b + off));
	memmove(b + off, b + off + sz, h->used_bytes - off - sz);
	h->used_bytes -= sz;
	memset(b + h->used_bytes, 0, node_bytes - h->used_bytes);
	h->nr_keys--;
}

int node_buf_replace(void *buf, size_t node_bytes, u32 idx, const struct bkey *k)
{
	struct bkfs_node_hdr *h = buf;
	u8 *b = buf;
	u32 off = node_buf_key_off(buf, idx);
	u32 osz = bkey_bytes((struct bkey *)(b + off)), nsz = bkey_bytes(k);
	if (h->used_bytes - osz + nsz > node_bytes)
		return -BKFS_E_NOSPC;
	memmove(b + off + nsz, b + off + osz, h->used_bytes - off - osz);
	memcpy(b + off, k, nsz);
	h->used_bytes = h->used_bytes - osz + nsz;
	memset(b + h->used_bytes, 0, node_bytes - h->used_bytes);
	return 0;
}

/* Header, checksum and key framing: any failure makes the node unreadable.
 * Each key is then checked with bkey_validate(): in an interior node an
 * invalid key fails the node (its pointers are the tree's structure); in a
 * leaf, with nr_invalid given, it is only counted (the checker drops that key,
 * not the node, and readers skip it). */
int node_validate_soft(const void *buf, size_t node_bytes, u64 magic, u32 *nr_invalid, struct printbuf *err)
{
	const struct bkfs_node_hdr *h = buf;

	if (nr_invalid)
		*nr_invalid = 0;
	if (node_bytes < sizeof(*h))
		INVALID("node: buffer %zu bytes smaller than header", node_bytes);
	if (h->magic != magic)
		INVALID("node: bad magic 0x%016llx", (unsigned long long)h->magic);
	if (!format_version_ok(h->version))
		INVALID("node: bad version %u", h->version);
	if (h->used_bytes < sizeof(*h) || h->used_bytes > node_bytes)
		INVALID("node: bad used_bytes %u (node %zu bytes)", h->used_bytes, node_bytes);
	if (h->btree_id >= BTREE_ID_NR)
		INVALID("node: bad btree id %u", h->btree_id);
	if (h->level >= BTREE_MAX_DEPTH)
		INVALID("node: bad level %u", h->level);
	if (bpos_cmp(h->min_key, h->max_key) > 0)
		INVALID("node: min_key after max_key");

	u32 csum = bkfs_crc32c(0, (const u8 *)buf + 4, h->used_bytes - 4);
	if (csum != h->csum) {
		if (err)
			pb_printf(err, "node: checksum mismatch (stored 0x%08x, computed 0x%08x)",
				  h->csum, csum);
		return -BKFS_E_CSUM;
	}

	bool soft = nr_invalid && !h->level;
	size_t off = sizeof(*h), used = h->used_bytes;
	const struct bkey *prev = NULL;
	for (u32 i = 0; i < h->nr_keys; i++) {
		if (used - off < sizeof(struct bkey))
			INVALID("node: key %u header past used_bytes", i);
		const struct bkey *k = (const struct bkey *)((const u8 *)buf + off);
		if (k->u64s < BKEY_U64s)
			INVALID("node: key %u u64s %u too small", i, k->u64s);
		if (bkey_bytes(k) > used - off)
			INVALID("node: key %u (u64s %u) past used_bytes", i, k->u64s);

		if (soft) {
			if (bkey_validate(k, h->btree_id, h->level, NULL))
				(*nr_invalid)++;
		} else {
			struct printbuf why = PRINTBUF;
			int ret = bkey_validate(k, h->btree_id, h->level, &why);
			if (ret) {
				if (err) {
					pb_printf(err, "node: key %u at ", i);
					bpos_to_text(err, k->p);
					pb_printf(err, ": %s", pb_str(&why));
				}
				pb_exit(&why);
				return -BKFS_E_CORRUPT;
			}
			pb_exit(&why);
		}

		if (prev && bpos_cmp(prev->p, k->p) >= 0) {
			if (err) {
				pb_printf(err, "node: key %u at ", i);
				bpos_to_text(err, k->p);
				pb_printf(err, " not after previous key ");
				bpos_to_text(err, prev->p);
			}
			return -BKFS_E_CORRUPT;
		}
		if (bpos_cmp(k->p, h->min_key) < 0 || bpos_cmp(k->p, h->max_key) > 0) {
			if (err) {
				pb_printf(err, "node: key %u at ", i);
				bpos_to_text(err, k->p);
				pb_printf(err, " outside node range");
			}
			return -BKFS_E_CORRUPT;
		}
		prev = k;
		off += bkey_bytes(k);
	}
	if (off != used)
		INVALID("node: keys end at %zu, used_bytes %zu", off, used);
	return 0;
}

int node_validate(const void *buf, size_t node_bytes, u64 magic, struct printbuf *err)
{
	return node_validate_soft(buf, node_bytes, magic, NULL, err);
}
