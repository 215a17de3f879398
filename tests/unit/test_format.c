/* test_format.c - unit tests for the format layer: positions, generations,
 * alloc data_type derivation, key validation, node and superblock checksums
 * and validation, printers. */
#include "test.h"
#include "format/format.h"

static bool has(struct printbuf *pb, const char *s)
{
	bool r = strstr(pb_str(pb), s) != NULL;
	if (!r)
		fprintf(stderr, "  missing \"%s\" in \"%s\"\n", s, pb_str(pb));
	return r;
}

static struct bpos POS3(u64 i, u64 o, u32 s)
{
	struct bpos p = POS(i, o);
	p.snapshot = s;
	return p;
}

static bool pos_is(struct bpos p, u64 i, u64 o, u32 s)
{
	return p.inode == i && p.offset == o && p.snapshot == s && p.pad == 0;
}

static void test_bpos(void)
{
	CHECK(bpos_cmp(POS(1, 0), POS(0, UINT64_MAX)) > 0);
	CHECK(bpos_cmp(POS(1, 5), POS(1, 6)) < 0);
	CHECK(bpos_cmp(POS3(1, 5, 1), POS(1, 5)) > 0);
	CHECK(bpos_cmp(POS_MIN, POS_MAX) < 0);
	struct bpos a = POS(3, 4);
	a.pad = 77;
	CHECK(bpos_eq(a, POS(3, 4)));
	CHECK(bpos_eq(bpos_min(POS(2, 0), POS(1, 9)), POS(1, 9)));
	CHECK(bpos_eq(bpos_max(POS(2, 0), POS(1, 9)), POS(2, 0)));

	CHECK(pos_is(bpos_successor(POS(1, 2)), 1, 2, 1));
	CHECK(pos_is(bpos_successor(POS3(1, 2, UINT32_MAX)), 1, 3, 0));
	CHECK(pos_is(bpos_successor(POS3(1, UINT64_MAX, UINT32_MAX)), 2, 0, 0));
	CHECK(pos_is(bpos_successor(POS_MAX), UINT64_MAX, UINT64_MAX, UINT32_MAX));
	CHECK(pos_is(bpos_successor(POS3(UINT64_MAX, UINT64_MAX, UINT32_MAX - 1)),
		     UINT64_MAX, UINT64_MAX, UINT32_MAX));
	CHECK(pos_is(bpos_successor(a), 3, 4, 1)); /* pad cleared */

	CHECK(pos_is(bpos_predecessor(POS3(1, 2, 1)), 1, 2, 0));
	CHECK(pos_is(bpos_predecessor(POS(1, 2)), 1, 1, UINT32_MAX));
	CHECK(pos_is(bpos_predecessor(POS(1, 0)), 0, UINT64_MAX, UINT32_MAX));
	CHECK(pos_is(bpos_predecessor(POS_MIN), 0, 0, 0));
	CHECK(pos_is(bpos_predecessor(POS_MAX), UINT64_MAX, UINT64_MAX, UINT32_MAX - 1));
	CHECK(pos_is(bpos_predecessor(POS3(0, 0, 1)), 0, 0, 0));

	/* round trips */
	struct bpos ps[] = { POS(0, 1), POS(5, UINT64_MAX), POS3(7, 0, UINT32_MAX), POS3(9, 9, 9) };
	for (unsigned i = 0; i < ARRAY_SIZE(ps); i++) {
		CHECK(bpos_eq(bpos_predecessor(bpos_successor(ps[i])), ps[i]));
		CHECK(bpos_eq(bpos_successor(bpos_predecessor(ps[i])), ps[i]));
		CHECK(bpos_cmp(bpos_successor(ps[i]), ps[i]) > 0);
	}
}

static void test_names(void)
{
	CHECK(!strcmp(btree_id_str(BTREE_ID_extents), "extents"));
	CHECK(!strcmp(btree_id_str(BTREE_ID_accounting), "accounting"));
	CHECK(!strcmp(btree_id_str(99), "unknown"));
	CHECK_EQ(btree_id_parse("dirents"), BTREE_ID_dirents);
	CHECK_EQ(btree_id_parse("stripes"), BTREE_ID_stripes);
	CHECK_EQ(btree_id_parse("nope"), -1);
	CHECK_EQ(btree_id_parse(NULL), -1);
	for (unsigned i = 0; i < BTREE_ID_NR; i++)
		CHECK_EQ(btree_id_parse(btree_id_str(i)), i);
	CHECK(!strcmp(key_type_str(KEY_TYPE_accounting), "accounting"));
	CHECK(!strcmp(key_type_str(KEY_TYPE_reflink_v), "reflink_v"));
	CHECK(!strcmp(key_type_str(3), "unknown"));
	CHECK(!strcmp(key_type_str(200), "unknown"));
	CHECK(!strcmp(data_type_str(DATA_need_discard), "need_discard"));
	CHECK(!strcmp(data_type_str(DATA_NR), "unknown"));
	CHECK(!strcmp(acct_type_str(ACCT_btree), "btree"));
	CHECK(!strcmp(acct_type_str(5), "unknown"));
	CHECK(!strcmp(acct_type_str(1000), "unknown"));
}

static void test_gens(void)
{
	CHECK(gen_cmp(2, 250) > 0);
	CHECK(gen_cmp(250, 2) < 0);
	CHECK_EQ(gen_cmp(7, 7), 0);
	CHECK_EQ(gen_after(2, 250), 8);
	CHECK_EQ(gen_after(250, 2), 0);
	CHECK_EQ(gen_after(10, 3), 7);
	CHECK(gen_cmp(0, 255) > 0);
	CHECK(gen_cmp(127, 0) > 0);
	CHECK(gen_cmp(128, 0) < 0);
}

static void test_data_type(void)
{
	struct bkfs_alloc a;

	memset(&a, 0, sizeof(a));
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_free);
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_free);

	a.stripe = 3;
	CHECK_EQ(alloc_data_type(&a, DATA_parity), DATA_parity);
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_stripe);
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_stripe);
	a.stripe = 0;

	a.dirty_sectors = 8;
	CHECK_EQ(alloc_data_type(&a, DATA_btree), DATA_btree);
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_user);
	CHECK_EQ(alloc_data_type(&a, DATA_sb), DATA_sb);
	CHECK_EQ(alloc_data_type(&a, DATA_journal), DATA_journal);
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_user);
	CHECK_EQ(alloc_data_type(&a, DATA_cached), DATA_user);
	CHECK_EQ(alloc_data_type(&a, DATA_need_discard), DATA_user);
	CHECK_EQ(alloc_data_type(&a, DATA_need_gc_gens), DATA_user);
	CHECK_EQ(alloc_data_type(&a, 200), DATA_user);
	a.cached_sectors = 8; /* dirty wins over cached */
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_user);
	a.dirty_sectors = 0;
	a.stripe_sectors = 4;
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_user);
	a.stripe_sectors = 0;

	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_cached);
	a.flags = ALLOC_NEED_DISCARD; /* cached wins over need_discard */
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_cached);
	a.cached_sectors = 0;
	CHECK_EQ(alloc_data_type(&a, DATA_user), DATA_need_discard);
	a.gen = 200; /* need_discard wins over need_gc_gens */
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_need_discard);
	a.flags = ALLOC_NEED_INC_GEN;
	a.gen = 0;

	/* the 96 rule */
	a.gen = 95;
	a.oldest_gen = 0;
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_free);
	a.gen = 96;
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_need_gc_gens);
	a.gen = 10; /* wrap-around: 10 - 170 = 96 mod 256 */
	a.oldest_gen = 170;
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_need_gc_gens);
	a.oldest_gen = 171;
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_free);
	a.gen = 255;
	a.oldest_gen = 0;
	CHECK_EQ(alloc_data_type(&a, DATA_free), DATA_need_gc_gens);

	/* fragmentation */
	memset(&a, 0, sizeof(a));
	CHECK_EQ(alloc_fragmentation(&a, 128), 0);
	a.data_type = DATA_user;
	a.dirty_sectors = 64;
	CHECK_EQ(alloc_fragmentation(&a, 128), 1ull << 30);
	a.dirty_sectors = 1000;
	CHECK_EQ(alloc_fragmentation(&a, 128), 1ull << 31);
	CHECK_EQ(alloc_fragmentation(&a, 0), 0);
	a.data_type = DATA_need_discard;
	CHECK_EQ(alloc_fragmentation(&a, 128), 0);
}

/* ---- key builders ---- */

static struct bkfs_ptr mkptr(u8 dev, u64 off, u8 gen)
{
	struct bkfs_ptr p;
	memset(&p, 0, sizeof(p));
	p.dev = dev;
	p.offset = off;
	p.gen = gen;
	return p;
}

static struct bkey *mk_extent(struct bkey_buf *b, u64 inum, u64 end, u32 size, unsigned nr)
{
	bkey_init(&b->k, KEY_TYPE_extent, POS(inum, end), extent_val_bytes(nr));
	b->k.size = size;
	struct bkfs_extent *e = bkey_extent(&b->k);
	e->nr_ptrs = nr;
	e->csum_type = CSUM_CRC32C;
	e->csum_sectors = size;
	e->csum = 0xdeadbeef;
	for (unsigned i = 0; i < nr; i++)
		e->ptrs[i] = mkptr(i, 1024 + 64 * i, 5);
	return &b->k;
}

static struct bkey *mk_dirent(struct bkey_buf *b, u64 dir, u64 hash, const char *name, u64 inum)
{
	size_t len = strlen(name);
	bkey_init(&b->k, KEY_TYPE_dirent, POS(dir, hash), sizeof(struct bkfs_dirent) + len);
	struct bkfs_dirent *d = bkey_val(&b->k);
	d->inum = inum;
	d->d_type = 8;
	d->name_len = len;
	memcpy(d->name, name, len);
	return &b->k;
}

static struct bkey *mk_inode(struct bkey_buf *b, u64 inum)
{
	bkey_init(&b->k, KEY_TYPE_inode, POS(0, inum), sizeof(struct bkfs_inode));
	struct bkfs_inode *i = bkey_val(&b->k);
	i->mode = 0100644;
	i->size = 12345;
	i->nlink = 1;
	i->uid = 1000;
	return &b->k;
}

static struct bkey *mk_alloc(struct bkey_buf *b, u64 dev, u64 bucket)
{
	bkey_init(&b->k, KEY_TYPE_alloc, POS(dev, bucket), sizeof(struct bkfs_alloc));
	struct bkfs_alloc *a = bkey_val(&b->k);
	a->gen = 3;
	a->data_type = DATA_user;
	a->dirty_sectors = 16;
	return &b->k;
}

static struct bkey *mk_btree_ptr(struct bkey_buf *b, struct bpos min, struct bpos max, u8 level)
{
	bkey_init(&b->k, KEY_TYPE_btree_ptr, max, sizeof(struct bkfs_btree_ptr));
	struct bkfs_btree_ptr *bp = bkey_val(&b->k);
	bp->seq = 42;
	bp->min_key = min;
	bp->level = level;
	bp->nr_ptrs = 1;
	bp->ptrs[0] = mkptr(0, 2048, 1);
	return &b->k;
}

static struct bkey *mk_stripe(struct bkey_buf *b, u64 idx, unsigned nr, unsigned red)
{
	size_t vb = sizeof(struct bkfs_stripe) + nr * (sizeof(struct bkfs_ptr) + 2);
	bkey_init(&b->k, KEY_TYPE_stripe, POS(0, idx), vb);
	struct bkfs_stripe *s = bkey_val(&b->k);
	s->sectors = 128;
	s->nr_blocks = nr;
	s->nr_redundant = red;
	for (unsigned i = 0; i < nr; i++) {
		s->ptrs[i] = mkptr(i, 4096 * (i + 1), 2);
		u16 sec = 100 + i;
		memcpy((u8 *)&s->ptrs[nr] + 2 * i, &sec, 2);
	}
	return &b->k;
}

static struct bkey *mk_reflink_v(struct bkey_buf *b, u64 end, u32 size, unsigned nr)
{
	bkey_init(&b->k, KEY_TYPE_reflink_v, POS(0, end),
		  sizeof(struct bkfs_reflink_v) + nr * sizeof(struct bkfs_ptr));
	b->k.size = size;
	struct bkfs_reflink_v *r = bkey_val(&b->k);
	r->refcount = 2;
	r->e.nr_ptrs = nr;
	for (unsigned i = 0; i < nr; i++)
		r->e.ptrs[i] = mkptr(i, 512, 1);
	return &b->k;
}

static struct bkey *mk_acct(struct bkey_buf *b, struct bpos p, s64 v0)
{
	bkey_init(&b->k, KEY_TYPE_accounting, p, sizeof(struct bkfs_accounting));
	struct bkfs_accounting *a = bkey_val(&b->k);
	a->v[0] = v0;
	return &b->k;
}

#define OK(k, id, lvl) CHECK_EQ(bkey_validate(k, id, lvl, NULL), 0)
#define BAD(k, id, lvl) CHECK_EQ(bkey_validate(k, id, lvl, NULL), -BKFS_E_CORRUPT)

static void test_bkey_init(void)
{
	struct bkey_buf b;
	memset(&b, 0xff, sizeof(b));
	bkey_init(&b.k, KEY_TYPE_inode, POS(0, 9), 80);
	CHECK_EQ(b.k.u64s, 15);
	CHECK_EQ(b.k.type, KEY_TYPE_inode);
	CHECK_EQ(b.k.size, 0);
	CHECK_EQ(b.k.version, 0);
	CHECK_EQ(b.k.flags, 0);
	CHECK(bpos_eq(b.k.p, POS(0, 9)));
	CHECK_EQ(bkey_val_bytes(&b.k), 80);
	bkey_init(&b.k, KEY_TYPE_dirent, POS(1, 2), 13);
	CHECK_EQ(b.k.u64s, 7);
	CHECK_EQ(((u8 *)&b.k)[55], 0); /* padding zeroed */
	bkey_init(&b.k, KEY_TYPE_deleted, POS(1, 2), 0);
	CHECK_EQ(b.k.u64s, 5);
}

static void test_bkey_ptrs(void)
{
	struct bkey_buf b;
	struct bkfs_ptr *p;

	CHECK_EQ(bkey_ptrs(mk_extent(&b, 4097, 16, 8, 2), &p), 2);
	CHECK_EQ(p[1].dev, 1);
	CHECK_EQ(bkey_ptrs(mk_btree_ptr(&b, POS_MIN, POS_MAX, 0), &p), 1);
	CHECK_EQ(p[0].offset, 2048);
	CHECK_EQ(bkey_ptrs(mk_reflink_v(&b, 64, 8, 3), &p), 3);
	CHECK_EQ(p[2].dev, 2);
	CHECK_EQ(bkey_ptrs(mk_stripe(&b, 1, 3, 1), &p), 3);
	CHECK_EQ(p[2].offset, 4096 * 3);
	CHECK_EQ(bkey_ptrs(mk_inode(&b, 4096), &p), 0);
	CHECK(p == NULL);
	/* a lying nr_ptrs is clamped to what the value holds */
	mk_extent(&b, 4097, 16, 8, 1);
	bkey_extent(&b.k)->nr_ptrs = 200;
	CHECK_EQ(bkey_ptrs(&b.k, &p), 1);
}

/* bkey_set_ptrs: the count, the key's size and the unused slots follow */
static void test_bkey_set_ptrs(void)
{
	struct bkey_buf b, orig;
	struct bkfs_ptr *p, keep;

	mk_extent(&b, 4097, 16, 8, 3);
	bkey_ptrs(&b.k, &p);
	keep = p[2];
	REQUIRE(bkey_set_ptrs(&b.k, &keep, 1));
	CHECK_EQ(b.k.u64s, DIV_ROUND_UP(sizeof(struct bkey) + extent_val_bytes(1), 8));
	CHECK_EQ(bkey_ptrs(&b.k, &p), 1);
	CHECK_EQ(p[0].dev, 2);
	OK(&b.k, BTREE_ID_extents, 0);

	mk_reflink_v(&b, 64, 8, 3);
	bkey_ptrs(&b.k, &p);
	keep = p[1];
	REQUIRE(bkey_set_ptrs(&b.k, &keep, 1));
	CHECK_EQ(b.k.u64s, DIV_ROUND_UP(sizeof(struct bkey) + sizeof(struct bkfs_reflink_v) +
					sizeof(struct bkfs_ptr), 8));
	CHECK_EQ(bkey_ptrs(&b.k, &p), 1);
	CHECK_EQ(p[0].dev, 1);
	OK(&b.k, BTREE_ID_reflink, 0);

	/* a btree pointer's array has a fixed size: the slot given up is zeroed */
	mk_btree_ptr(&b, POS_MIN, POS_MAX, 0);
	struct bkfs_btree_ptr *bp = bkey_val(&b.k);
	bp->ptrs[1] = bp->ptrs[0];
	bp->ptrs[1].dev = 1;
	bp->nr_ptrs = 2;
	keep = bp->ptrs[1];
	u16 u64s = b.k.u64s;
	REQUIRE(bkey_set_ptrs(&b.k, &keep, 1));
	CHECK_EQ(b.k.u64s, u64s);
	CHECK_EQ(bp->nr_ptrs, 1);
	CHECK_EQ(bp->ptrs[0].dev, 1);
	CHECK_EQ(bp->ptrs[1].offset, 0);

	/* a stripe cannot lose a block; a key without pointers has none to set */
	mk_stripe(&b, 1, 3, 1);
	memcpy(&orig, &b, bkey_bytes(&b.k));
	CHECK(!bkey_set_ptrs(&b.k, &keep, 1));
	CHECK(!memcmp(&orig, &b, bkey_bytes(&b.k)));
	mk_inode(&b, 4096);
	CHECK(!bkey_set_ptrs(&b.k, &keep, 1));
}

/* Which key types each btree's leaves may hold, written out here rather than
 * read from the btree-id table: a type missing from (or added to) a btree's
 * column shows up as a difference. */
static void test_allowed_key_types(void)
{
	static const struct {
		unsigned id;
		u64 types;
	} leaf[] = {
		{ BTREE_ID_extents, KEY_TYPE_BIT(extent) | KEY_TYPE_BIT(inline_data) |
		  KEY_TYPE_BIT(reservation) | KEY_TYPE_BIT(reflink_p) | KEY_TYPE_BIT(error) },
		{ BTREE_ID_inodes, KEY_TYPE_BIT(inode) },
		{ BTREE_ID_dirents, KEY_TYPE_BIT(dirent) },
		{ BTREE_ID_xattrs, KEY_TYPE_BIT(xattr) },
		{ BTREE_ID_alloc, KEY_TYPE_BIT(alloc) },
		{ BTREE_ID_reflink, KEY_TYPE_BIT(reflink_v) | KEY_TYPE_BIT(error) },
		{ BTREE_ID_stripes, KEY_TYPE_BIT(stripe) },
		{ BTREE_ID_accounting, KEY_TYPE_BIT(accounting) },
		{ BTREE_ID_orphans, KEY_TYPE_BIT(orphan) },
	};
	REQUIRE_EQ(ARRAY_SIZE(leaf), BTREE_ID_NR);
	u64 always = KEY_TYPE_BIT(deleted) | KEY_TYPE_BIT(whiteout);

	for (unsigned i = 0; i < ARRAY_SIZE(leaf); i++)
		for (unsigned level = 0; level < 2; level++)
			for (unsigned t = 0; t < KEY_TYPE_MAX; t++) {
				if (!strcmp(key_type_str(t), "unknown"))
					continue;
				struct bkey_buf b;
				struct printbuf err = PRINTBUF;
				bkey_init(&b.k, t, POS(1, 2), 0);
				bkey_validate(&b.k, leaf[i].id, level, &err);
				bool want = level ? t == KEY_TYPE_btree_ptr
						  : !!((leaf[i].types | always) & (1ull << t));
				bool refused = strstr(pb_str(&err), "not allowed in btree") != NULL;
				if (refused == want)
					fprintf(stderr, "  btree %s level %u type %s: %s\n",
						btree_id_str(leaf[i].id), level, key_type_str(t),
						pb_str(&err));
				CHECK(refused != want);
				pb_exit(&err);
			}
	CHECK(btree_is_extents(BTREE_ID_extents));
	CHECK(btree_is_extents(BTREE_ID_reflink));
	CHECK(!btree_is_extents(BTREE_ID_inodes));
	CHECK(!btree_is_extents(BTREE_ID_NR));
}

static void test_validate(void)
{
	struct bkey_buf b;
	struct printbuf err = PRINTBUF;

	/* generic */
	bkey_init(&b.k, KEY_TYPE_deleted, POS(1, 2), 0);
	OK(&b.k, BTREE_ID_extents, 0);
	OK(&b.k, BTREE_ID_inodes, 0);
	BAD(&b.k, BTREE_ID_inodes, 1);
	BAD(&b.k, BTREE_ID_NR, 0);
	BAD(&b.k, BTREE_ID_extents, BTREE_MAX_DEPTH);
	b.k.u64s = 4;
	BAD(&b.k, BTREE_ID_extents, 0);
	bkey_init(&b.k, 3, POS(1, 2), 0); /* unknown type */
	BAD(&b.k, BTREE_ID_extents, 0);
	bkey_init(&b.k, KEY_TYPE_whiteout, POS(1, 2), 8);
	OK(&b.k, BTREE_ID_dirents, 0);
	b.k.u64s = BKEY_U64s + BKEY_VAL_MAX / 8 + 1;
	BAD(&b.k, BTREE_ID_dirents, 0);

	/* extent */
	mk_extent(&b, 4097, 16, 8, 1);
	OK(&b.k, BTREE_ID_extents, 0);
	BAD(&b.k, BTREE_ID_inodes, 0);
	BAD(&b.k, BTREE_ID_reflink, 0);
	BAD(&b.k, BTREE_ID_extents, 1);
	mk_extent(&b, 4097, 16, 8, 4);
	OK(&b.k, BTREE_ID_extents, 0);
	mk_extent(&b, 4097, 16, 8, 0);
	BAD(&b.k, BTREE_ID_extents, 0);
	mk_extent(&b, 4097, 16, 8, 2);
	bkey_extent(&b.k)->nr_ptrs = 1; /* value size says 2 */
	BAD(&b.k, BTREE_ID_extents, 0);
	mk_extent(&b, 4097, 16, 0, 1);
	BAD(&b.k, BTREE_ID_extents, 0);
	mk_extent(&b, 4097, 4, 8, 1); /* starts before offset 0 */
	BAD(&b.k, BTREE_ID_extents, 0);
	mk_extent(&b, 4097, 16, 8, 1);
	bkey_extent(&b.k)->offset = 1; /* 1 + 8 > csum_sectors 8 */
	BAD(&b.k, BTREE_ID_extents, 0);
	bkey_extent(&b.k)->csum_sectors = 9;
	OK(&b.k, BTREE_ID_extents, 0);
	bkey_extent(&b.k)->offset = UINT32_MAX; /* no wrap-around */
	bkey_extent(&b.k)->csum_sectors = UINT32_MAX;
	BAD(&b.k, BTREE_ID_extents, 0);
	mk_extent(&b, 4097, 16, 8, 1);
	bkey_extent(&b.k)->csum_type = 7;
	BAD(&b.k, BTREE_ID_extents, 0);
	bkey_extent(&b.k)->csum_type = CSUM_NONE;
	bkey_extent(&b.k)->csum_sectors = 0;
	bkey_extent(&b.k)->offset = 0;
	OK(&b.k, BTREE_ID_extents, 0);
	pb_reset(&err);
	mk_extent(&b, 4097, 16, 8, 1);
	b.k.u64s = 6; /* value 8 bytes < 16 */
	CHECK_EQ(bkey_validate(&b.k, BTREE_ID_extents, 0, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "extent"));

	/* inline data */
	bkey_init(&b.k, KEY_TYPE_inline_data, POS(4097, 2), 8 + 700);
	((struct bkfs_inline_data *)bkey_val(&b.k))->bytes = 700;
	b.k.size = 2;
	OK(&b.k, BTREE_ID_extents, 0);
	b.k.size = 1;
	BAD(&b.k, BTREE_ID_extents, 0);
	b.k.size = 2;
	((struct bkfs_inline_data *)bkey_val(&b.k))->bytes = 705;
	BAD(&b.k, BTREE_ID_extents, 0);

	/* reservation */
	bkey_init(&b.k, KEY_TYPE_reservation, POS(4097, 64), sizeof(struct bkfs_reservation));
	b.k.size = 64;
	((struct bkfs_reservation *)bkey_val(&b.k))->nr_replicas = 2;
	OK(&b.k, BTREE_ID_extents, 0);
	b.k.u64s++;
	BAD(&b.k, BTREE_ID_extents, 0);

	/* error */
	bkey_init(&b.k, KEY_TYPE_error, POS(4097, 64), 0);
	b.k.size = 8;
	OK(&b.k, BTREE_ID_extents, 0);
	OK(&b.k, BTREE_ID_reflink, 0);
	BAD(&b.k, BTREE_ID_dirents, 0);

	/* inode */
	mk_inode(&b, 4096);
	OK(&b.k, BTREE_ID_inodes, 0);
	BAD(&b.k, BTREE_ID_dirents, 0);
	b.k.p.inode = 1;
	BAD(&b.k, BTREE_ID_inodes, 0);
	/* the recorded name (format 4): bytes after the inode that do not form
	 * one leave the key valid (the checker strips them: inode_name_bad) */
	mk_inode(&b, 4096);
	b.k.u64s++;
	OK(&b.k, BTREE_ID_inodes, 0);
	const u8 *nm;
	unsigned nlen;
	CHECK_EQ(inode_name_parse(bkey_val(&b.k), bkey_val_bytes(&b.k), &nm, &nlen), -1); /* length 0 */
	CHECK_EQ(inode_name_parse(bkey_val(&b.k), sizeof(struct bkfs_inode), &nm, &nlen), 0);
	u8 *tail = (u8 *)bkey_val(&b.k) + sizeof(struct bkfs_inode);
	memcpy(tail, "\003abc\0\0\0\0", 8);
	CHECK_EQ(inode_name_parse(bkey_val(&b.k), bkey_val_bytes(&b.k), &nm, &nlen), 1);
	CHECK(nlen == 3 && !memcmp(nm, "abc", 3));
	CHECK_EQ(inode_val_bytes(3), sizeof(struct bkfs_inode) + 8);
	CHECK_EQ(inode_val_bytes(7), sizeof(struct bkfs_inode) + 8);
	CHECK_EQ(inode_val_bytes(8), sizeof(struct bkfs_inode) + 16);
	static const char *const bad[] = { "\003a/c\0\0\0\0", "\002..\0\0\0\0\0", "\001.\0\0\0\0\0\0",
					   "\003abc\0\0\0x", "\010abcdefgh", "\002a\0\0\0\0\0\0" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memcpy(tail, bad[i], 8);
		CHECK_EQ(inode_name_parse(bkey_val(&b.k), bkey_val_bytes(&b.k), &nm, &nlen), -1);
	}
	/* the names of other links (format 5): encoded and parsed back */
	{
		static const char *const nms[] = { "a", "bcdefgh", "ijklmnop", "q", "rstu" };
		struct inode_name_ref refs[INODE_NAMES_MAX], back[INODE_NAMES_MAX];
		for (unsigned i = 0; i < INODE_NAMES_MAX; i++)
			refs[i] = (struct inode_name_ref){ .dir = i ? 5000 + i : 0, .name = (const u8 *)nms[i],
							   .len = (unsigned)strlen(nms[i]) };
		for (unsigned nr = 0; nr <= INODE_NAMES_MAX; nr++) {
			mk_inode(&b, 4096);
			size_t vb = inode_names_encode(bkey_val(&b.k), refs, nr);
			CHECK_EQ(vb % 8, 0);
			b.k.u64s = (u16)((sizeof(struct bkey) + vb) / 8);
			OK(&b.k, BTREE_ID_inodes, 0);
			CHECK_EQ(inode_names_parse(bkey_val(&b.k), vb, back), (int)nr);
			for (unsigned i = 0; i < nr; i++)
				CHECK(back[i].dir == refs[i].dir && back[i].len == refs[i].len &&
				      !memcmp(back[i].name, refs[i].name, back[i].len));
			if (nr == 2) { /* a link record whose directory is no inode */
				u8 *rec = (u8 *)bkey_val(&b.k) + sizeof(struct bkfs_inode) + 8;
				u64 zero = 0, was;
				memcpy(&was, rec, 8);
				memcpy(rec, &zero, 8);
				CHECK_EQ(inode_names_parse(bkey_val(&b.k), vb, back), -1);
				memcpy(rec, &was, 8);
				rec[8] = 200; /* a length past the value */
				CHECK_EQ(inode_names_parse(bkey_val(&b.k), vb, back), -1);
			}
		}
		/* one name more than the most: malformed */
		mk_inode(&b, 4096);
		size_t vb = inode_names_encode(bkey_val(&b.k), refs, INODE_NAMES_MAX);
		u8 *v = bkey_val(&b.k);
		memcpy(v + vb, v + sizeof(struct bkfs_inode) + 8, 16); /* refs[1] again */
		CHECK_EQ(inode_names_parse(v, vb + 16, back), -1);
		CHECK(vb + 16 <= inode_val_bytes_max());
	}
	/* a value longer than the most names need is not an inode's */
	mk_inode(&b, 4096);
	b.k.u64s += (inode_val_bytes_max() - sizeof(struct bkfs_inode)) / 8 + 1;
	BAD(&b.k, BTREE_ID_inodes, 0);
	mk_inode(&b, 4096);
	b.k.size = 1; /* non-extent keys have size 0 */
	BAD(&b.k, BTREE_ID_inodes, 0);
	/* mode: file type and permission bits only (a missing type is the
	 * filesystem checker's business, not the key's) */
	mk_inode(&b, 4096);
	((struct bkfs_inode *)bkey_val(&b.k))->mode = 0644;
	OK(&b.k, BTREE_ID_inodes, 0);
	((struct bkfs_inode *)bkey_val(&b.k))->mode = 0177777;
	OK(&b.k, BTREE_ID_inodes, 0);
	((struct bkfs_inode *)bkey_val(&b.k))->mode = 0200644;
	BAD(&b.k, BTREE_ID_inodes, 0);

	/* dirent */
	OK(mk_dirent(&b, 4096, 77, "hello", 4097), BTREE_ID_dirents, 0);
	BAD(&b.k, BTREE_ID_inodes, 0);
	OK(mk_dirent(&b, 4096, 77, "...", 4097), BTREE_ID_dirents, 0);
	BAD(mk_dirent(&b, 4096, 77, ".", 4097), BTREE_ID_dirents, 0);
	BAD(mk_dirent(&b, 4096, 77, "..", 4097), BTREE_ID_dirents, 0);
	BAD(mk_dirent(&b, 4096, 77, "a/b", 4097), BTREE_ID_dirents, 0);
	BAD(mk_dirent(&b, 4096, 77, "", 4097), BTREE_ID_dirents, 0);
	mk_dirent(&b, 4096, 77, "abc", 4097);
	((struct bkfs_dirent *)bkey_val(&b.k))->name[1] = 0;
	BAD(&b.k, BTREE_ID_dirents, 0);
	mk_dirent(&b, 4096, 77, "abc", 4097);
	((struct bkfs_dirent *)bkey_val(&b.k))->name_len = 7; /* value has 6 bytes after header */
	BAD(&b.k, BTREE_ID_dirents, 0);
	((struct bkfs_dirent *)bkey_val(&b.k))->name_len = 6; /* padding counts, but it is NUL */
	BAD(&b.k, BTREE_ID_dirents, 0);

	/* xattr */
	bkey_init(&b.k, KEY_TYPE_xattr, POS(4097, 5), sizeof(struct bkfs_xattr) + 9);
	struct bkfs_xattr *x = bkey_val(&b.k);
	x->name_len = 4;
	x->val_len = 5;
	memcpy(x->data, "user12345", 9);
	OK(&b.k, BTREE_ID_xattrs, 0);
	BAD(&b.k, BTREE_ID_inodes, 0);
	x->val_len = 9; /* 4 + 9 > 12 */
	BAD(&b.k, BTREE_ID_xattrs, 0);

	/* alloc */
	mk_alloc(&b, 0, 100);
	OK(&b.k, BTREE_ID_alloc, 0);
	BAD(&b.k, BTREE_ID_extents, 0);
	struct bkfs_alloc *a = bkey_val(&b.k);
	a->data_type = DATA_free; /* counts say user */
	BAD(&b.k, BTREE_ID_alloc, 0);
	a->data_type = DATA_cached;
	BAD(&b.k, BTREE_ID_alloc, 0);
	a->data_type = DATA_btree;
	OK(&b.k, BTREE_ID_alloc, 0);
	a->data_type = DATA_NR;
	BAD(&b.k, BTREE_ID_alloc, 0);
	mk_alloc(&b, 0, 100);
	a->dirty_sectors = 0;
	BAD(&b.k, BTREE_ID_alloc, 0); /* user with no data */
	a->data_type = DATA_free;
	OK(&b.k, BTREE_ID_alloc, 0);
	a->gen = 99;
	BAD(&b.k, BTREE_ID_alloc, 0); /* needs gc gens */
	a->data_type = DATA_need_gc_gens;
	OK(&b.k, BTREE_ID_alloc, 0);
	a->gen = 3;
	a->data_type = DATA_free;
	a->cached_sectors = 4;
	BAD(&b.k, BTREE_ID_alloc, 0);
	a->data_type = DATA_cached;
	OK(&b.k, BTREE_ID_alloc, 0);
	a->cached_sectors = 0;
	a->flags = ALLOC_NEED_DISCARD;
	a->data_type = DATA_need_discard;
	OK(&b.k, BTREE_ID_alloc, 0);
	a->stripe = 5;
	BAD(&b.k, BTREE_ID_alloc, 0);
	a->data_type = DATA_stripe;
	OK(&b.k, BTREE_ID_alloc, 0);
	a->data_type = DATA_parity;
	OK(&b.k, BTREE_ID_alloc, 0);
	mk_alloc(&b, 0, 100);
	b.k.u64s--;
	BAD(&b.k, BTREE_ID_alloc, 0);

	/* stripe */
	OK(mk_stripe(&b, 1, 3, 1), BTREE_ID_stripes, 0);
	BAD(&b.k, BTREE_ID_alloc, 0);
	OK(mk_stripe(&b, 1, 2, 1), BTREE_ID_stripes, 0);
	BAD(mk_stripe(&b, 1, 1, 0), BTREE_ID_stripes, 0);
	BAD(mk_stripe(&b, 1, 3, 3), BTREE_ID_stripes, 0);
	mk_stripe(&b, 1, 3, 1);
	((struct bkfs_stripe *)bkey_val(&b.k))->nr_blocks = 4;
	BAD(&b.k, BTREE_ID_stripes, 0);

	/* reflink_p */
	bkey_init(&b.k, KEY_TYPE_reflink_p, POS(4097, 32), sizeof(struct bkfs_reflink_p));
	b.k.size = 32;
	OK(&b.k, BTREE_ID_extents, 0);
	BAD(&b.k, BTREE_ID_reflink, 0);
	b.k.u64s++;
	BAD(&b.k, BTREE_ID_extents, 0);

	/* reflink_v */
	OK(mk_reflink_v(&b, 64, 8, 1), BTREE_ID_reflink, 0);
	BAD(&b.k, BTREE_ID_extents, 0);
	OK(mk_reflink_v(&b, 64, 8, 4), BTREE_ID_reflink, 0);
	BAD(mk_reflink_v(&b, 64, 8, 0), BTREE_ID_reflink, 0);
	mk_reflink_v(&b, 64, 8, 2);
	((struct bkfs_reflink_v *)bkey_val(&b.k))->e.nr_ptrs = 3;
	BAD(&b.k, BTREE_ID_reflink, 0);
	mk_reflink_v(&b, 64, 8, 1);
	b.k.p.inode = 5;
	BAD(&b.k, BTREE_ID_reflink, 0);

	/* accounting */
	OK(mk_acct(&b, acct_pos_nr_inodes(), 5), BTREE_ID_accounting, 0);
	OK(mk_acct(&b, acct_pos_replicas(DATA_user, 1, 3), 5), BTREE_ID_accounting, 0);
	BAD(&b.k, BTREE_ID_alloc, 0);
	BAD(mk_acct(&b, POS(5, 0), 1), BTREE_ID_accounting, 0);
	BAD(mk_acct(&b, POS(ACCT_NR, 0), 1), BTREE_ID_accounting, 0);
	BAD(mk_acct(&b, POS(UINT64_MAX, 0), 1), BTREE_ID_accounting, 0);
	mk_acct(&b, acct_pos_btree(1), 1);
	b.k.u64s--;
	BAD(&b.k, BTREE_ID_accounting, 0);

	/* btree_ptr */
	mk_btree_ptr(&b, POS_MIN, POS(10, 0), 0);
	OK(&b.k, BTREE_ID_extents, 1);
	OK(&b.k, BTREE_ID_accounting, 3);
	BAD(&b.k, BTREE_ID_extents, 0);
	((struct bkfs_btree_ptr *)bkey_val(&b.k))->nr_ptrs = 5;
	BAD(&b.k, BTREE_ID_extents, 1);
	mk_btree_ptr(&b, POS_MIN, POS(10, 0), BTREE_MAX_DEPTH);
	BAD(&b.k, BTREE_ID_extents, 1);
	mk_btree_ptr(&b, POS(11, 0), POS(10, 0), 0);
	BAD(&b.k, BTREE_ID_extents, 1);
	mk_btree_ptr(&b, POS_MIN, POS(10, 0), 0);
	b.k.u64s--;
	BAD(&b.k, BTREE_ID_extents, 1);
	mk_btree_ptr(&b, POS_MIN, POS(10, 0), 0);
	mk_inode(&b, 4096);
	BAD(&b.k, BTREE_ID_inodes, 1);

	pb_exit(&err);
}

/* ---- nodes ---- */

#define NODE_BYTES 4096
#define MAGIC 0x1122334455667788ull

struct node_builder {
	u64 buf[NODE_BYTES / 8];
};

static struct bkfs_node_hdr *node_start(struct node_builder *nb, unsigned id, unsigned level,
					struct bpos min, struct bpos max)
{
	memset(nb, 0, sizeof(*nb));
	struct bkfs_node_hdr *h = (void *)nb->buf;
	h->version = BKFS_FORMAT_VERSION;
	h->magic = MAGIC;
	h->btree_id = id;
	h->level = level;
	h->used_bytes = sizeof(*h);
	h->seq = 7;
	h->journal_seq = 3;
	h->min_key = min;
	h->max_key = max;
	return h;
}

static void node_add(struct node_builder *nb, const struct bkey *k)
{
	struct bkfs_node_hdr *h = (void *)nb->buf;
	memcpy((u8 *)nb->buf + h->used_bytes, k, bkey_bytes(k));
	h->used_bytes += bkey_bytes(k);
	h->nr_keys++;
}

static int node_check(struct node_builder *nb, struct printbuf *err)
{
	node_csum_set(nb->buf, NODE_BYTES);
	return node_validate(nb->buf, NODE_BYTES, MAGIC, err);
}

static void build_extents_node(struct node_builder *nb)
{
	struct bkey_buf b;
	node_start(nb, BTREE_ID_extents, 0, POS(4097, 0), POS(4098, UINT64_MAX));
	node_add(nb, mk_extent(&b, 4097, 8, 8, 1));
	node_add(nb, mk_extent(&b, 4097, 24, 8, 2));
	bkey_init(&b.k, KEY_TYPE_inline_data, POS(4098, 1), 8 + 100);
	b.k.size = 1;
	((struct bkfs_inline_data *)bkey_val(&b.k))->bytes = 100;
	node_add(nb, &b.k);
}

static void test_node(void)
{
	struct node_builder nb;
	struct printbuf err = PRINTBUF;
	struct bkey_buf b;
	struct bkfs_node_hdr *h = (void *)nb.buf;

	/* round trip */
	build_extents_node(&nb);
	CHECK_EQ(node_check(&nb, &err), 0);
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), 0);
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC + 1, NULL), -BKFS_E_CORRUPT);
	CHECK(h->chunk_shift == NODE_CHUNK_SHIFT); /* the current version has a chunk table */
	u32 image = node_image_bytes(h, NODE_BYTES);
	CHECK_EQ(image, h->used_bytes + node_chunk_table_bytes(h->used_bytes, NODE_CHUNK_SHIFT));
	CHECK_EQ(node_validate(nb.buf, image, MAGIC, NULL), 0);
	CHECK_EQ(node_validate(nb.buf, image - 8, MAGIC, NULL), -BKFS_E_CORRUPT);
	CHECK_EQ(node_validate(nb.buf, 50, MAGIC, NULL), -BKFS_E_CORRUPT);

	/* every flipped byte of header, keys and chunk table is caught */
	unsigned caught = 0, used = image;
	for (unsigned i = 0; i < used; i++) {
		((u8 *)nb.buf)[i] ^= 0x10;
		if (node_validate(nb.buf, NODE_BYTES, MAGIC, NULL) < 0)
			caught++;
		((u8 *)nb.buf)[i] ^= 0x10;
	}
	CHECK_EQ(caught, used);
	((u8 *)nb.buf)[200] ^= 1;
	pb_reset(&err);
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, &err), -BKFS_E_CSUM);
	CHECK(has(&err, "checksum"));
	((u8 *)nb.buf)[200] ^= 1;
	/* bytes past the image are not covered */
	((u8 *)nb.buf)[used + 10] ^= 0xff;
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), 0);

	/* header fields */
	build_extents_node(&nb);
	h->version = BKFS_FORMAT_VERSION + 1;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->version = BKFS_FORMAT_VERSION_MIN - 1;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->version = BKFS_FORMAT_VERSION_MIN; /* older nodes stay readable */
	CHECK_EQ(node_check(&nb, NULL), 0);
	build_extents_node(&nb);
	h->btree_id = BTREE_ID_NR;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->level = BTREE_MAX_DEPTH;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->min_key = POS(5000, 0);
	h->max_key = POS(4000, 0);
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->used_bytes = NODE_BYTES + 8;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->used_bytes = 40;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	/* nr_keys disagreeing with used_bytes */
	build_extents_node(&nb);
	h->nr_keys--;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->nr_keys++;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->nr_keys = UINT32_MAX;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->used_bytes -= 8; /* last key runs past used_bytes */
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	build_extents_node(&nb);
	h->used_bytes += 8; /* trailing junk */
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	/* a key with u64s 0 */
	build_extents_node(&nb);
	((struct bkey *)((u8 *)nb.buf + sizeof(*h)))->u64s = 0;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	/* a key with a huge u64s */
	build_extents_node(&nb);
	((struct bkey *)((u8 *)nb.buf + sizeof(*h)))->u64s = 0xffff;
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);

	/* key order */
	node_start(&nb, BTREE_ID_extents, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_extent(&b, 4097, 24, 8, 1));
	node_add(&nb, mk_extent(&b, 4097, 16, 8, 1));
	pb_reset(&err);
	CHECK_EQ(node_check(&nb, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "not after"));
	node_start(&nb, BTREE_ID_extents, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_extent(&b, 4097, 24, 8, 1));
	node_add(&nb, mk_extent(&b, 4097, 24, 8, 1));
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);

	/* range: an extent may start before min_key, but must end inside */
	node_start(&nb, BTREE_ID_extents, 0, POS(4097, 20), POS(4097, 100));
	node_add(&nb, mk_extent(&b, 4097, 24, 8, 1));
	CHECK_EQ(node_check(&nb, NULL), 0);
	node_add(&nb, mk_extent(&b, 4097, 108, 8, 1));
	pb_reset(&err);
	CHECK_EQ(node_check(&nb, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "outside"));
	node_start(&nb, BTREE_ID_extents, 0, POS(4097, 20), POS(4097, 100));
	node_add(&nb, mk_extent(&b, 4097, 19, 8, 1));
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);

	/* a bad key inside is reported with its index and position */
	node_start(&nb, BTREE_ID_dirents, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_dirent(&b, 4096, 10, "a", 4097));
	node_add(&nb, mk_dirent(&b, 4096, 11, "..", 4097));
	pb_reset(&err);
	CHECK_EQ(node_check(&nb, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "key 1 at 4096:11:0"));
	/* wrong btree for the key type */
	node_start(&nb, BTREE_ID_inodes, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_dirent(&b, 4096, 10, "a", 4097));
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);

	/* interior node */
	node_start(&nb, BTREE_ID_inodes, 1, POS_MIN, POS_MAX);
	node_add(&nb, mk_btree_ptr(&b, POS_MIN, POS(0, 5000), 0));
	node_add(&nb, mk_btree_ptr(&b, POS3(0, 5000, 1), POS_MAX, 0));
	CHECK_EQ(node_check(&nb, NULL), 0);
	node_add(&nb, mk_inode(&b, 6000));
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);

	/* soft validation: an invalid leaf key is counted, not fatal */
	u32 nr_invalid = 99;
	build_extents_node(&nb);
	CHECK_EQ(node_check(&nb, NULL), 0);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), 0);
	CHECK_EQ(nr_invalid, 0);
	node_start(&nb, BTREE_ID_dirents, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_dirent(&b, 4096, 10, "a", 4097));
	node_add(&nb, mk_dirent(&b, 4096, 11, "..", 4097));
	node_add(&nb, mk_dirent(&b, 4096, 12, "b", 4098));
	mk_inode(&b, 4099);
	b.k.p = POS(4096, 13);
	node_add(&nb, &b.k); /* wrong btree for its type */
	CHECK_EQ(node_check(&nb, NULL), -BKFS_E_CORRUPT);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), 0);
	CHECK_EQ(nr_invalid, 2);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, NULL, NULL), -BKFS_E_CORRUPT);
	/* framing, order and range stay fatal */
	((struct bkey *)((u8 *)nb.buf + sizeof(*h)))->u64s = 0xffff;
	node_csum_set(nb.buf, NODE_BYTES);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), -BKFS_E_CORRUPT);
	node_start(&nb, BTREE_ID_dirents, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_dirent(&b, 4096, 11, "..", 4097));
	node_add(&nb, mk_dirent(&b, 4096, 10, "a", 4097));
	node_csum_set(nb.buf, NODE_BYTES);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), -BKFS_E_CORRUPT);
	node_start(&nb, BTREE_ID_dirents, 0, POS(4096, 0), POS(4096, 100));
	node_add(&nb, mk_dirent(&b, 4096, 101, "..", 4097));
	node_csum_set(nb.buf, NODE_BYTES);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), -BKFS_E_CORRUPT);
	/* and a bad checksum */
	node_start(&nb, BTREE_ID_dirents, 0, POS_MIN, POS_MAX);
	node_add(&nb, mk_dirent(&b, 4096, 11, "..", 4097));
	node_csum_set(nb.buf, NODE_BYTES);
	((u8 *)nb.buf)[sizeof(*h) + 2] ^= 1;
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), -BKFS_E_CSUM);
	/* an invalid key of an interior node fails the node */
	node_start(&nb, BTREE_ID_inodes, 1, POS_MIN, POS_MAX);
	node_add(&nb, mk_btree_ptr(&b, POS_MIN, POS(0, 5000), 0));
	node_add(&nb, mk_inode(&b, 6000));
	node_csum_set(nb.buf, NODE_BYTES);
	CHECK_EQ(node_validate_soft(nb.buf, NODE_BYTES, MAGIC, &nr_invalid, NULL), -BKFS_E_CORRUPT);

	/* raw node edits (node_buf_*): the node still validates after each */
	build_extents_node(&nb);
	CHECK_EQ(node_buf_find(nb.buf, POS(4097, 24)), 1);
	CHECK_EQ(node_buf_find(nb.buf, POS(4097, 25)), -1);
	CHECK(bpos_eq(node_buf_key(nb.buf, 2)->p, POS(4098, 1)));
	u32 used0 = h->used_bytes;
	CHECK_EQ(node_buf_replace(nb.buf, NODE_BYTES, 1, mk_extent(&b, 4097, 24, 8, 3)), 0);
	CHECK_EQ(h->used_bytes, used0 + sizeof(struct bkfs_ptr)); /* 2 pointers -> 3 */
	CHECK_EQ(bkey_extent(node_buf_key(nb.buf, 1))->nr_ptrs, 3);
	CHECK_EQ(node_check(&nb, NULL), 0);
	node_buf_delete(nb.buf, NODE_BYTES, 0);
	CHECK_EQ(h->nr_keys, 2);
	CHECK(bpos_eq(node_buf_key(nb.buf, 0)->p, POS(4097, 24)));
	CHECK_EQ(((u8 *)nb.buf)[h->used_bytes], 0);
	CHECK_EQ(node_check(&nb, NULL), 0);
	struct bkey_buf big;
	bkey_init(&big.k, KEY_TYPE_inline_data, POS(4098, 1), BKEY_VAL_MAX);
	CHECK_EQ(node_buf_replace(nb.buf, NODE_BYTES, 1, &big.k), -BKFS_E_NOSPC);
	CHECK_EQ(node_check(&nb, NULL), 0); /* unchanged */

	/* an empty node is structurally fine */
	node_start(&nb, BTREE_ID_alloc, 0, POS_MIN, POS_MAX);
	CHECK_EQ(node_check(&nb, NULL), 0);

	/* fuzz: mutate valid nodes, recompute the checksum, validate (ASan/UBSan
	 * guard this); and pure garbage with a plausible header */
	u64 seed = 12345;
	for (unsigned iter = 0; iter < 20000; iter++) {
		build_extents_node(&nb);
		if (iter & 1) {
			node_start(&nb, BTREE_ID_dirents, 0, POS_MIN, POS_MAX);
			node_add(&nb, mk_dirent(&b, 4096, 10, "abc", 4097));
			node_add(&nb, mk_stripe(&b, 1, 3, 1)); /* wrong btree, but fuzz fodder */
		}
		unsigned nmut = 1 + rng_next(&seed) % 8, len = h->used_bytes;
		for (unsigned m = 0; m < nmut; m++) {
			unsigned off = rng_next(&seed) % len;
			((u8 *)nb.buf)[off] = (u8)rng_next(&seed);
		}
		if (iter % 3 == 0)
			h->used_bytes = rng_next(&seed) % (NODE_BYTES + 16);
		h->magic = MAGIC;
		h->version = BKFS_FORMAT_VERSION;
		if (h->used_bytes < sizeof(*h) || h->used_bytes > NODE_BYTES)
			h->used_bytes = sizeof(*h) + rng_next(&seed) % (NODE_BYTES - sizeof(*h));
		pb_reset(&err);
		int ret = node_check(&nb, &err);
		CHECK(ret == 0 || ret == -BKFS_E_CORRUPT);
		/* printing whatever is there must be safe too */
		size_t off = sizeof(*h);
		for (u32 i = 0; i < 8 && off + sizeof(struct bkey) <= h->used_bytes; i++) {
			const struct bkey *k = (const void *)((u8 *)nb.buf + off);
			if (k->u64s < BKEY_U64s || bkey_bytes(k) > h->used_bytes - off)
				break;
			pb_reset(&err);
			bkey_to_text(&err, k);
			off += bkey_bytes(k);
		}
	}
	for (unsigned iter = 0; iter < 5000; iter++) {
		for (unsigned i = 0; i < NODE_BYTES / 8; i++)
			nb.buf[i] = rng_next(&seed);
		h->magic = MAGIC;
		h->version = BKFS_FORMAT_VERSION;
		h->btree_id %= BTREE_ID_NR;
		h->level %= 2;
		h->min_key = POS_MIN;
		h->max_key = POS_MAX;
		h->nr_keys %= 16;
		h->used_bytes = sizeof(*h) + rng_next(&seed) % (NODE_BYTES - sizeof(*h));
		for (size_t off = sizeof(*h); off + 8 <= h->used_bytes; off += 8 * (1 + rng_next(&seed) % 12)) {
			struct bkey *k = (void *)((u8 *)nb.buf + off);
			k->u64s = 5 + rng_next(&seed) % 20;
			u8 types[] = { 0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15, 16, 34 };
			if (off + sizeof(struct bkey) <= h->used_bytes)
				k->type = types[rng_next(&seed) % ARRAY_SIZE(types)];
		}
		int ret = node_check(&nb, NULL);
		CHECK(ret == 0 || ret == -BKFS_E_CORRUPT);
	}
	pb_exit(&err);
}

/* ---- node salvage (the chunk table) ---- */

#define SALVAGE_KEYS 60

/* a dirents leaf of SALVAGE_KEYS 64-byte keys at (4096, 10 * i): three and
 * a bit 1 KiB chunks */
static void build_dirents_node(struct node_builder *nb)
{
	struct bkey_buf b;
	char name[16];
	node_start(nb, BTREE_ID_dirents, 0, POS(4096, 0), POS(4096, UINT64_MAX));
	for (unsigned i = 0; i < SALVAGE_KEYS; i++) {
		snprintf(name, sizeof(name), "file-%04u", i);
		node_add(nb, mk_dirent(&b, 4096, 10 * (i + 1), name, 5000 + i));
	}
	node_csum_set(nb->buf, NODE_BYTES);
}

struct kept { struct bpos p[SALVAGE_KEYS + 1]; unsigned nr; };

static int keep_pos(void *arg, const struct bkey *k)
{
	struct kept *kp = arg;
	if (kp->nr <= SALVAGE_KEYS)
		kp->p[kp->nr++] = k->p;
	return 0;
}

/* keep_pos, and count the keys that differ from the same position's key
 * in same_as (a salvage keeps keys as they were written, or none) */
static const void *same_as;
static unsigned kept_differ;

static int keep_same(void *arg, const struct bkey *k)
{
	int i = node_buf_find((void *)same_as, k->p);
	const struct bkey *o = i >= 0 ? node_buf_key((void *)same_as, (u32)i) : NULL;
	kept_differ += !o || bkey_bytes(o) != bkey_bytes(k) || memcmp(o, k, bkey_bytes(k));
	return keep_pos(arg, k);
}

static bool in_lost(const struct node_salvage *s, struct bpos p)
{
	for (u32 i = 0; i < s->nr_lost_ranges; i++)
		if (bpos_cmp(s->lost_ranges[i].min, p) <= 0 && bpos_cmp(p, s->lost_ranges[i].max) <= 0)
			return true;
	return false;
}

/* Flip the byte at off of a sealed dirents node and salvage it: every key
 * that does not touch the damaged chunk is kept, in order, every other one
 * lies in a lost range, and no kept key does. Returns what was kept. */
static unsigned salvage_after_flip(unsigned off, bool expect_header_bad)
{
	struct node_builder nb;
	build_dirents_node(&nb);
	const struct bkfs_node_hdr *h = (void *)nb.buf;
	unsigned shift = h->chunk_shift, bad = off >> shift;
	struct bpos want[SALVAGE_KEYS];
	bool touches[SALVAGE_KEYS];
	u32 koff = sizeof(*h);
	for (unsigned i = 0; i < SALVAGE_KEYS; i++) {
		const struct bkey *k = (const void *)((u8 *)nb.buf + koff);
		want[i] = k->p;
		touches[i] = koff >> shift <= bad && bad <= (koff + bkey_bytes(k) - 1) >> shift;
		koff += bkey_bytes(k);
	}
	((u8 *)nb.buf)[off] ^= 0x40;
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), -BKFS_E_CSUM);
	struct node_salvage s;
	struct kept kp = { .nr = 0 };
	struct printbuf err = PRINTBUF;
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, &err), 0);
	CHECK_EQ(s.header_bad, expect_header_bad);
	CHECK_EQ(s.bad_chunks, 1);
	unsigned j = 0, nr_lost = 0;
	for (unsigned i = 0; i < SALVAGE_KEYS; i++) {
		if (touches[i]) {
			nr_lost++;
			CHECK(in_lost(&s, want[i]));
			continue;
		}
		CHECK(j < kp.nr && bpos_eq(kp.p[j], want[i]));
		CHECK(!in_lost(&s, want[i]));
		j++;
	}
	CHECK_EQ(kp.nr, j);
	CHECK_EQ(s.kept, j);
	CHECK_EQ(s.lost, nr_lost);
	CHECK(nr_lost > 0 && nr_lost < 20); /* a chunk's worth, not the node */
	CHECK_EQ(s.nr_lost_ranges, 1);
	pb_reset(&err);
	node_salvage_to_text(&err, &s);
	CHECK(has(&err, "1 of 4 chunks damaged"));
	node_salvage_exit(&s);
	pb_exit(&err);
	return j;
}

static void test_node_salvage(void)
{
	struct node_builder nb;
	struct node_salvage s;
	struct kept kp;
	struct printbuf err = PRINTBUF;
	struct bkfs_node_hdr *h = (void *)nb.buf;

	build_dirents_node(&nb);
	CHECK_EQ(h->chunk_shift, NODE_CHUNK_SHIFT);
	CHECK(h->used_bytes > 3 * 1024 && node_image_bytes(h, NODE_BYTES) <= NODE_BYTES);
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), 0);

	/* damage in the middle, in the first chunk after the header, in the
	 * last chunk */
	CHECK(salvage_after_flip(2100, false) > 40);
	CHECK(salvage_after_flip(600, true) > 40);
	build_dirents_node(&nb);
	CHECK(salvage_after_flip(h->used_bytes - 10, false) > 40);

	/* the first chunk's lost range starts at the node's start, the last's
	 * ends at its end */
	build_dirents_node(&nb);
	((u8 *)nb.buf)[h->used_bytes - 10] ^= 1;
	kp.nr = 0;
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, NULL), 0);
	CHECK(bpos_eq(s.lost_ranges[s.nr_lost_ranges - 1].max, POS(4096, UINT64_MAX)));
	node_salvage_exit(&s);
	build_dirents_node(&nb);
	((u8 *)nb.buf)[sizeof(*h) + 8] ^= 1;
	kp.nr = 0;
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, NULL), 0);
	CHECK(bpos_eq(s.lost_ranges[0].min, POS(4096, 0)));
	node_salvage_exit(&s);

	/* only the table damaged: the node fails validation, every key is kept */
	build_dirents_node(&nb);
	((u8 *)nb.buf)[h->used_bytes + 3] ^= 1;
	pb_reset(&err);
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, &err), -BKFS_E_CSUM);
	CHECK(has(&err, "chunk table"));
	/* ... and the node's own checksum vouches for every key: all kept */
	kp.nr = 0;
	pb_reset(&err);
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, &err), 0);
	CHECK(s.table_bad);
	CHECK_EQ(s.kept, SALVAGE_KEYS);
	CHECK_EQ(kp.nr, SALVAGE_KEYS);
	CHECK_EQ(s.lost, 0);
	CHECK_EQ(s.nr_lost_ranges, 0);
	pb_reset(&err);
	node_salvage_to_text(&err, &s);
	CHECK(has(&err, "chunk table damaged, the node's checksum holds; kept 60 keys, lost 0"));
	node_salvage_exit(&s);
	/* the whole table (64 bytes from its start) and the trailer: the same */
	build_dirents_node(&nb);
	memset((u8 *)nb.buf + h->used_bytes, 0xa5, 64);
	memset((u8 *)nb.buf + h->used_bytes + node_chunk_table_bytes(h->used_bytes, h->chunk_shift) - 16, 0, 16);
	kp.nr = 0;
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, NULL), 0);
	CHECK(s.table_bad && s.kept == SALVAGE_KEYS);
	node_salvage_exit(&s);
	/* ... but not for another node, and not over damaged keys */
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 8, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, NULL), -BKFS_E_CORRUPT);
	((u8 *)nb.buf)[2100] ^= 1;
	pb_reset(&err);
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "chunk table damaged"));

	/* the header damaged where it says where the table is (used_bytes,
	 * chunk_shift) and what the node is (magic): the table is found by
	 * searching, the header's chunk is lost, the rest kept */
	for (unsigned at = 0; at <= 32; at += 32) {
		build_dirents_node(&nb);
		u32 used = h->used_bytes;
		memset((u8 *)nb.buf + at, 0x5a, 64);
		kp.nr = 0;
		pb_reset(&err);
		CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0),
				      POS(4096, UINT64_MAX), keep_pos, &kp, &s, &err), 0);
		CHECK(s.header_bad);
		CHECK_EQ(s.bad_chunks, 1);
		CHECK_EQ(s.nr_chunks, (used + 1023) / 1024);
		CHECK(s.kept > 40 && s.kept + s.lost == SALVAGE_KEYS);
		CHECK(bpos_eq(s.lost_ranges[0].min, POS(4096, 0)));
		node_salvage_exit(&s);
		/* the table found names another node: nothing */
		CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 9, POS(4096, 0),
				      POS(4096, UINT64_MAX), keep_pos, &kp, &s, NULL), -BKFS_E_CORRUPT);
	}
	/* a trailer that no longer agrees with the header */
	build_dirents_node(&nb);
	h->journal_seq++;
	h->csum = bkfs_crc32c(0, (u8 *)nb.buf + 4, h->used_bytes - 4);
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), -BKFS_E_CSUM);

	/* not the node the pointer names */
	build_dirents_node(&nb);
	((u8 *)nb.buf)[2100] ^= 1;
	pb_reset(&err);
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 8, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "seq"));
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_inodes, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, NULL), -BKFS_E_CORRUPT);

	/* a node of an older version has no table: readable, not salvageable */
	build_dirents_node(&nb);
	h->version = 2;
	node_csum_set(nb.buf, NODE_BYTES);
	CHECK_EQ(h->chunk_shift, 0);
	memset((u8 *)nb.buf + h->used_bytes, 0, NODE_BYTES - h->used_bytes); /* nor the one it had here */
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), 0);
	((u8 *)nb.buf)[2100] ^= 1;
	pb_reset(&err);
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, &err), -BKFS_E_CORRUPT);
	CHECK(has(&err, "no chunk table"));
	/* a chunk_shift on an older version, or out of bounds, is refused */
	build_dirents_node(&nb);
	h->version = 2;
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), -BKFS_E_CORRUPT);
	build_dirents_node(&nb);
	h->chunk_shift = NODE_CHUNK_SHIFT_MAX + 1;
	CHECK_EQ(node_validate(nb.buf, NODE_BYTES, MAGIC, NULL), -BKFS_E_CORRUPT);
	/* a node too full for its table is written without one */
	build_dirents_node(&nb);
	h->used_bytes = NODE_BYTES - 8;
	node_csum_set(nb.buf, NODE_BYTES);
	CHECK_EQ(h->chunk_shift, 0);

	/* two copies damaged in different chunks mend each other: nothing lost */
	build_dirents_node(&nb);
	struct node_builder other = nb;
	((u8 *)nb.buf)[1100] ^= 1;
	((u8 *)other.buf)[2100] ^= 1;
	CHECK_EQ(node_chunks_mend(nb.buf, other.buf, NODE_BYTES), 1);
	CHECK_EQ(node_chunks_mend(nb.buf, other.buf, NODE_BYTES), 0); /* nothing left to mend */
	kp.nr = 0;
	CHECK_EQ(node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0), POS(4096, UINT64_MAX),
			      keep_pos, &kp, &s, NULL), 0);
	CHECK_EQ(s.lost, 0);
	CHECK_EQ(s.kept, SALVAGE_KEYS);
	CHECK_EQ(s.bad_chunks, 0);
	node_salvage_exit(&s);
	/* not from a copy whose table differs (another node) or is damaged */
	build_dirents_node(&nb);
	other = nb;
	((u8 *)nb.buf)[1100] ^= 1;
	((u8 *)other.buf)[h->used_bytes + 4] ^= 1;
	CHECK_EQ(node_chunks_mend(nb.buf, other.buf, NODE_BYTES), 0);
	other = nb;
	((struct bkfs_node_hdr *)other.buf)->seq = 8;
	node_csum_set(other.buf, NODE_BYTES);
	CHECK_EQ(node_chunks_mend(nb.buf, other.buf, NODE_BYTES), 0);

	/* random damage anywhere in the image never crashes a salvage, and what
	 * it keeps is what was written, byte for byte, in order; one damaged
	 * region (64 bytes at most) always leaves something to keep */
	u64 seed = 99;
	unsigned refused = 0;
	for (unsigned iter = 0; iter < 3000; iter++) {
		build_dirents_node(&nb);
		struct node_builder orig = nb;
		u32 image = node_image_bytes(h, NODE_BYTES);
		unsigned nmut = 1 + rng_next(&seed) % 64, at = rng_next(&seed) % image;
		for (unsigned m = 0; m < nmut && at + m < image; m++)
			((u8 *)nb.buf)[at + m] = (u8)rng_next(&seed);
		kp.nr = 0;
		same_as = orig.buf;
		kept_differ = 0;
		int ret = node_salvage(nb.buf, NODE_BYTES, MAGIC, BTREE_ID_dirents, 7, POS(4096, 0),
				       POS(4096, UINT64_MAX), keep_same, &kp, &s, NULL);
		CHECK(ret == 0 || ret == -BKFS_E_CORRUPT);
		CHECK_EQ(kept_differ, 0);
		refused += ret != 0;
		if (ret)
			continue;
		for (unsigned i = 0; i < kp.nr; i++) {
			CHECK(node_buf_find(orig.buf, kp.p[i]) >= 0);
			CHECK(!i || bpos_cmp(kp.p[i - 1], kp.p[i]) < 0);
		}
		CHECK_EQ(s.kept + s.lost, SALVAGE_KEYS);
		node_salvage_exit(&s);
	}
	/* only damage across the keys' end and the table's start (the last
	 * chunk and the table both damaged) leaves nothing to trust */
	CHECK(refused < 3000 / 20);
	pb_exit(&err);
}

/* ---- superblock ---- */

union sb_buf {
	struct bkfs_sb sb;
	u8 bytes[BKFS_SB_SIZE];
};

static void mk_sb(union sb_buf *u)
{
	memset(u, 0, sizeof(*u));
	struct bkfs_sb *sb = &u->sb;
	sb->version = BKFS_FORMAT_VERSION;
	sb->magic = BKFS_SB_MAGIC;
	sb->magic2 = BKFS_SB_MAGIC2;
	for (unsigned i = 0; i < 16; i++)
		sb->uuid[i] = 0x10 + i;
	memcpy(sb->label, "testfs", 6);
	sb->seq = 3;
	sb->block_size = 4096;
	sb->bucket_size = 256;
	sb->btree_node_size = 64;
	sb->nr_devices = 2;
	sb->dev_idx = 1;
	sb->data_replicas = 1;
	sb->metadata_replicas = 2;
	sb->csum_type = CSUM_CRC32C;
	sb->clean = 1;
	sb->key_version = 100;
	sb->next_inum = 5000;
	for (unsigned i = 0; i < 2; i++) {
		sb->members[i].nbuckets = 1024;
		sb->members[i].first_bucket = 1;
		sb->members[i].btree_bitmap_shift = 12;
		sb->members[i].journal_bucket_start = 1;
		sb->members[i].journal_nr_buckets = 8;
	}
	sb->roots[BTREE_ID_dirents].nr_ptrs = 1;
	sb->roots[BTREE_ID_dirents].seq = 9;
	sb->roots[BTREE_ID_dirents].ptrs[0] = mkptr(1, 777, 4);
	sb->fsck_err_count[17] = 3;
	sb_csum_set(sb);
}

#define SB_BAD(field_stmt) do { mk_sb(&u); field_stmt; sb_csum_set(&u.sb); \
	CHECK_EQ(sb_validate(&u.sb, NULL), -BKFS_E_CORRUPT); } while (0)

static void test_sb(void)
{
	union sb_buf u;
	struct printbuf pb = PRINTBUF;

	/* the checksum convention: CRC32C, seed 0, no final xor */
	CHECK_EQ(bkfs_crc32c(0, "123456789", 9), 0x58e3fa20);

	mk_sb(&u);
	CHECK_EQ(sb_validate(&u.sb, &pb), 0);
	CHECK_EQ(u.sb.csum, bkfs_crc32c(0, u.bytes + 4, BKFS_SB_SIZE - 4));
	/* the checksum covers the whole 4096-byte buffer, past the struct */
	u.bytes[BKFS_SB_SIZE - 1] ^= 1;
	pb_reset(&pb);
	CHECK_EQ(sb_validate(&u.sb, &pb), -BKFS_E_CSUM);
	CHECK(has(&pb, "checksum"));
	sb_csum_set(&u.sb);
	CHECK_EQ(sb_validate(&u.sb, NULL), 0);
	u.bytes[100] ^= 0x40;
	CHECK_EQ(sb_validate(&u.sb, NULL), -BKFS_E_CSUM);

	/* magics */
	mk_sb(&u);
	u64 m = 0;
	for (unsigned i = 0; i < 8; i++)
		m |= (u64)(0x10 + i) << (8 * i);
	CHECK_EQ(sb_node_magic(&u.sb), m ^ BKFS_NODE_MAGIC_XOR);
	CHECK_EQ(sb_journal_magic(&u.sb), m ^ BKFS_JOURNAL_MAGIC_XOR);
	CHECK(sb_node_magic(&u.sb) != sb_journal_magic(&u.sb));

	SB_BAD(u.sb.magic++);
	SB_BAD(u.sb.magic2 = 0);
	SB_BAD(u.sb.version = BKFS_FORMAT_VERSION + 1);
	SB_BAD(u.sb.version = 0);
	SB_BAD(u.sb.block_size = 256);
	SB_BAD(u.sb.block_size = 3000);
	SB_BAD(u.sb.block_size = 131072);
	SB_BAD(u.sb.bucket_size = 255);
	SB_BAD(u.sb.bucket_size = 32);           /* < btree node */
	SB_BAD(u.sb.bucket_size = 4);            /* < block */
	SB_BAD(u.sb.btree_node_size = 4);
	SB_BAD(u.sb.btree_node_size = 48);
	SB_BAD(u.sb.btree_node_size = 512);      /* > bucket */
	SB_BAD(u.sb.nr_devices = 0);
	SB_BAD(u.sb.nr_devices = BKFS_MAX_DEVS + 1);
	SB_BAD(u.sb.dev_idx = 2);
	SB_BAD(u.sb.data_replicas = 0);
	SB_BAD(u.sb.data_replicas = 3);          /* > nr_devices */
	SB_BAD(u.sb.metadata_replicas = 5);
	SB_BAD(u.sb.csum_type = 9);
	SB_BAD(u.sb.members[1].nbuckets = 15);
	SB_BAD(u.sb.members[0].first_bucket = 1024);
	SB_BAD(u.sb.members[0].state = 3);
	SB_BAD(u.sb.members[0].journal_bucket_start = 0);
	SB_BAD(u.sb.members[0].journal_nr_buckets = 0);
	SB_BAD(u.sb.members[0].journal_nr_buckets = 1023);
	SB_BAD(u.sb.members[0].journal_bucket_start = UINT64_MAX);
	SB_BAD(u.sb.members[0].journal_nr_buckets = UINT64_MAX);
	SB_BAD(u.sb.members[1].nbuckets = UINT64_MAX);
	SB_BAD(u.sb.roots[2].nr_ptrs = 5);
	SB_BAD(u.sb.roots[2].level = BTREE_MAX_DEPTH);
	/* members past nr_devices are not checked */
	mk_sb(&u);
	u.sb.members[5].nbuckets = 1;
	sb_csum_set(&u.sb);
	CHECK_EQ(sb_validate(&u.sb, NULL), 0);
	mk_sb(&u);
	u.sb.members[0].journal_nr_buckets = 1022; /* up to the last bucket */
	sb_csum_set(&u.sb);
	CHECK_EQ(sb_validate(&u.sb, NULL), 0);

	/* printer */
	mk_sb(&u);
	pb_reset(&pb);
	sb_to_text(&pb, &u.sb);
	CHECK(has(&pb, "10111213-1415-1617-1819-1a1b1c1d1e1f"));
	CHECK(has(&pb, "testfs"));
	CHECK(has(&pb, "block_size:        4096"));
	CHECK(has(&pb, "bucket_size:       256"));
	CHECK(has(&pb, "member 1:"));
	CHECK(has(&pb, "nbuckets 1024"));
	CHECK(has(&pb, "dirents"));
	CHECK(has(&pb, "dev 1 off 777 gen 4"));
	CHECK(has(&pb, "slot 17: 3"));
	CHECK(has(&pb, "next_inum:         5000"));
	CHECK(!strstr(pb_str(&pb), "slot 16"));

	/* garbage must validate to an error without crashing */
	u64 seed = 99;
	for (unsigned iter = 0; iter < 2000; iter++) {
		mk_sb(&u);
		unsigned n = 1 + rng_next(&seed) % 6;
		for (unsigned i = 0; i < n; i++)
			u.bytes[rng_next(&seed) % 400] = (u8)rng_next(&seed);
		sb_csum_set(&u.sb);
		int ret = sb_validate(&u.sb, NULL);
		CHECK(ret == 0 || ret == -BKFS_E_CORRUPT);
		pb_reset(&pb);
		sb_to_text(&pb, &u.sb);
	}
	pb_exit(&pb);
}

/* ---- printers ---- */

static void test_printers(void)
{
	struct printbuf pb = PRINTBUF;
	struct bkey_buf b;

	bpos_to_text(&pb, POS_MAX);
	CHECK(has(&pb, "POS_MAX"));
	pb_reset(&pb);
	bpos_to_text(&pb, POS_MIN);
	CHECK(has(&pb, "POS_MIN"));
	pb_reset(&pb);
	bpos_to_text(&pb, POS3(4096, 12, 3));
	CHECK(!strcmp(pb_str(&pb), "4096:12:3"));

	struct bkfs_ptr p = mkptr(0, 1234, 5);
	pb_reset(&pb);
	ptr_to_text(&pb, &p);
	CHECK(!strcmp(pb_str(&pb), "dev 0 off 1234 gen 5"));
	p.flags = PTR_CACHED | PTR_HAS_STRIPE;
	p.stripe_idx = 3;
	p.stripe_block = 1;
	pb_reset(&pb);
	ptr_to_text(&pb, &p);
	CHECK(!strcmp(pb_str(&pb), "dev 0 off 1234 gen 5 cached stripe 3 block 1"));

	pb_reset(&pb);
	mk_extent(&b, 4097, 16, 8, 2);
	b.k.version = 77;
	bkey_to_text(&pb, &b.k);
	CHECK(has(&pb, "u64s 11 type extent pos 4097:16:0 size 8 ver 77: "));
	CHECK(has(&pb, "crc32c"));
	CHECK(has(&pb, "csum 0xdeadbeef"));
	CHECK(has(&pb, "dev 1 off 1088 gen 5"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_dirent(&b, 4096, 77, "hello", 4097));
	CHECK(has(&pb, "type dirent pos 4096:77:0 ver 0: "));
	CHECK(has(&pb, "hello"));
	CHECK(has(&pb, "4097"));
	pb_reset(&pb);
	bkey_to_text(&pb, mk_dirent(&b, 4096, 77, "a\nb", 4097));
	CHECK(has(&pb, "a\\x0ab"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_inode(&b, 4100));
	CHECK(has(&pb, "type inode pos 0:4100:0"));
	CHECK(has(&pb, "mode 0100644"));
	CHECK(has(&pb, "size 12345"));
	CHECK(has(&pb, "nlink 1"));
	CHECK(has(&pb, "uid 1000"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_alloc(&b, 1, 55));
	CHECK(has(&pb, "type alloc pos 1:55:0"));
	CHECK(has(&pb, "gen 3"));
	CHECK(has(&pb, "data_type user"));
	CHECK(has(&pb, "dirty 16"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_acct(&b, acct_pos_replicas(DATA_user, 1, 5), 4096));
	CHECK(has(&pb, "replicas user nr_required 1 devs 0 2"));
	CHECK(has(&pb, "4096 0 0"));
	pb_reset(&pb);
	bkey_to_text(&pb, mk_acct(&b, acct_pos_dev_data_type(1, DATA_btree), -3));
	CHECK(has(&pb, "dev_data_type dev 1 btree: -3 0 0"));
	pb_reset(&pb);
	bkey_to_text(&pb, mk_acct(&b, acct_pos_btree(BTREE_ID_xattrs), 1));
	CHECK(has(&pb, "btree xattrs"));
	pb_reset(&pb);
	bkey_to_text(&pb, mk_acct(&b, acct_pos_nr_inodes(), 12));
	CHECK(has(&pb, "nr_inodes: 12 0 0"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_btree_ptr(&b, POS(1, 2), POS_MAX, 2));
	CHECK(has(&pb, "type btree_ptr pos POS_MAX"));
	CHECK(has(&pb, "seq 42 min_key 1:2:0 level 2"));
	CHECK(has(&pb, "dev 0 off 2048 gen 1"));

	pb_reset(&pb);
	bkey_init(&b.k, KEY_TYPE_inline_data, POS(4097, 1), 8 + 10);
	((struct bkfs_inline_data *)bkey_val(&b.k))->bytes = 10;
	bkey_to_text(&pb, &b.k);
	CHECK(has(&pb, "bytes 10"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_stripe(&b, 4, 3, 1));
	CHECK(has(&pb, "nr_blocks 3 nr_redundant 1"));
	CHECK(has(&pb, "[2] dev 2 off 12288 gen 2 sectors 102"));

	pb_reset(&pb);
	bkey_to_text(&pb, mk_reflink_v(&b, 64, 8, 1));
	CHECK(has(&pb, "refcount 2"));
	CHECK(has(&pb, "dev 0 off 512"));

	pb_reset(&pb);
	bkey_init(&b.k, KEY_TYPE_reflink_p, POS(4097, 32), sizeof(struct bkfs_reflink_p));
	((struct bkfs_reflink_p *)bkey_val(&b.k))->idx = 99;
	bkey_to_text(&pb, &b.k);
	CHECK(has(&pb, "idx 99"));

	pb_reset(&pb);
	bkey_init(&b.k, KEY_TYPE_xattr, POS(4097, 5), sizeof(struct bkfs_xattr) + 9);
	struct bkfs_xattr *x = bkey_val(&b.k);
	x->name_len = 4;
	x->val_len = 5;
	memcpy(x->data, "user12345", 9);
	bkey_to_text(&pb, &b.k);
	CHECK(has(&pb, "name user val_len 5"));

	/* short values do not read out of bounds */
	pb_reset(&pb);
	bkey_init(&b.k, KEY_TYPE_inode, POS(0, 1), 8);
	bkey_to_text(&pb, &b.k);
	CHECK(has(&pb, "bad value size 8"));
	pb_reset(&pb);
	bkey_init(&b.k, KEY_TYPE_deleted, POS(0, 1), 0);
	b.k.u64s = 2;
	bkey_to_text(&pb, &b.k);
	CHECK(has(&pb, "bad u64s"));

	struct bkfs_node_hdr h;
	memset(&h, 0, sizeof(h));
	h.btree_id = BTREE_ID_alloc;
	h.level = 1;
	h.nr_keys = 3;
	h.used_bytes = 500;
	h.seq = 8;
	h.max_key = POS_MAX;
	pb_reset(&pb);
	node_hdr_to_text(&pb, &h);
	CHECK(has(&pb, "btree alloc level 1"));
	CHECK(has(&pb, "nr_keys 3 used_bytes 500 chunk_shift 0 seq 8"));
	CHECK(has(&pb, "min_key POS_MIN max_key POS_MAX"));

	struct bkfs_alloc a;
	memset(&a, 0, sizeof(a));
	a.flags = ALLOC_NEED_DISCARD | ALLOC_NEED_INC_GEN;
	a.data_type = DATA_need_discard;
	pb_reset(&pb);
	alloc_to_text(&pb, &a);
	CHECK(has(&pb, "data_type need_discard"));
	CHECK(has(&pb, "need_discard,need_inc_gen"));
	pb_exit(&pb);
}

int main(void)
{
	test_bpos();
	test_names();
	test_gens();
	test_data_type();
	test_bkey_init();
	test_bkey_ptrs();
	test_bkey_set_ptrs();
	test_allowed_key_types();
	test_validate();
	test_node();
	test_node_salvage();
	test_sb();
	test_printers();
	TEST_MAIN_END();
}
