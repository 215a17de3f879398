/* test_util.c - util layer: sizes, checksums, printbuf, chunked arrays. */
#include "util/util.h"
#include "util/darray.h"
#include "test.h"
#include <malloc.h>

static void test_parse_size(void)
{
	u64 v = 0;
	CHECK_EQ(parse_size("0", &v), 0);
	CHECK_EQ(v, 0);
	CHECK_EQ(parse_size("4096", &v), 0);
	CHECK_EQ(v, 4096);
	CHECK_EQ(parse_size("64k", &v), 0);
	CHECK_EQ(v, 64 << 10);
	CHECK_EQ(parse_size("64K", &v), 0);
	CHECK_EQ(v, 64 << 10);
	CHECK_EQ(parse_size("1M", &v), 0);
	CHECK_EQ(v, 1 << 20);
	CHECK_EQ(parse_size("2G", &v), 0);
	CHECK_EQ(v, 2ull << 30);
	CHECK_EQ(parse_size("3t", &v), 0);
	CHECK_EQ(v, 3ull << 40);
	CHECK_EQ(parse_size("8MiB", &v), 0);
	CHECK_EQ(v, 8ull << 20);
	CHECK_EQ(parse_size("8mb", &v), 0);
	CHECK_EQ(v, 8ull << 20);

	v = 12345;
	CHECK_EQ(parse_size("", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size(NULL, &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size("abc", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size("-1", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size(" 1", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size("1x", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size("1kk", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size("1k ", &v), -BKFS_E_INVAL);
	CHECK_EQ(parse_size("99999999999T", &v), -BKFS_E_RANGE);
	CHECK_EQ(v, 12345); /* untouched on failure */
}

static void test_crc32c(void)
{
	CHECK_EQ(bkfs_crc32c(0xffffffff, "123456789", 9) ^ 0xffffffff, 0xe3069283);
	/* chaining: crc of a+b equals crc of b seeded with crc of a */
	u32 a = bkfs_crc32c(0xffffffff, "1234", 4);
	CHECK_EQ(bkfs_crc32c(a, "56789", 5), bkfs_crc32c(0xffffffff, "123456789", 9));
	CHECK_EQ(bkfs_crc32c(0x1234, "", 0), 0x1234);
	/* 32 zero bytes, standard test vector (iSCSI, RFC 3720) */
	u8 z[32] = { 0 };
	CHECK_EQ(bkfs_crc32c(0xffffffff, z, 32) ^ 0xffffffff, 0x8a9136aa);
}

static void test_printbuf(void)
{
	struct printbuf pb = PRINTBUF;
	CHECK(!strcmp(pb_str(&pb), ""));
	pb_printf(&pb, "hello %d", 42);
	CHECK(!strcmp(pb_str(&pb), "hello 42"));
	CHECK_EQ(pb.len, 8);
	for (int i = 0; i < 1000; i++)
		pb_printf(&pb, "%04d", i);
	CHECK_EQ(pb.len, 8 + 4000);
	CHECK_EQ(strlen(pb_str(&pb)), pb.len);
	CHECK(pb.size > pb.len);
	CHECK(!memcmp(pb_str(&pb) + 8, "000000010002", 12));
	CHECK(!strcmp(pb_str(&pb) + pb.len - 4, "0999"));
	pb_reset(&pb);
	CHECK_EQ(pb.len, 0);
	CHECK(!strcmp(pb_str(&pb), ""));
	pb_printf(&pb, "%s", "x");
	CHECK(!strcmp(pb_str(&pb), "x"));
	pb_exit(&pb);
	CHECK(pb.buf == NULL);
	CHECK_EQ(pb.len, 0);
	pb_exit(&pb); /* idempotent */
}

static void test_chunked_array(void)
{
	struct chunked_array ca;
	size_t nr = 300000;
	CHECK_EQ(ca_init(&ca, sizeof(u64) * 2, nr), 0);
	CHECK_EQ(ca.nr, nr);
	CHECK_EQ(ca.per_chunk, (1 << 20) / 16);
	CHECK_EQ(ca.nr_chunks, DIV_ROUND_UP(nr, ca.per_chunk));
	CHECK_EQ(ca_bytes(&ca), nr * 16);
	/* the last chunk holds only what it needs */
	size_t last = nr - (ca.nr_chunks - 1) * ca.per_chunk;
	CHECK(malloc_usable_size(ca.chunks[ca.nr_chunks - 1]) < last * 16 + 4096);
	int zero_ok = 1, ok = 1;
	for (size_t i = 0; i < nr; i++) {
		u64 *e = ca_get(&ca, i);
		if (e[0] || e[1])
			zero_ok = 0;
		e[0] = i;
		e[1] = ~i;
	}
	for (size_t i = 0; i < nr; i++) {
		u64 *e = ca_get(&ca, i);
		if (e[0] != i || e[1] != ~i)
			ok = 0;
	}
	CHECK(zero_ok);
	CHECK(ok);
	ca_exit(&ca);
	CHECK(ca.chunks == NULL);
	CHECK_EQ(ca.nr, 0);

	/* element larger than a chunk: one element per chunk */
	CHECK_EQ(ca_init(&ca, (2 << 20), 3), 0);
	CHECK_EQ(ca.per_chunk, 1);
	CHECK_EQ(ca.nr_chunks, 3);
	memset(ca_get(&ca, 2), 0x5a, 2 << 20);
	CHECK_EQ(((u8 *)ca_get(&ca, 2))[(2 << 20) - 1], 0x5a);
	ca_exit(&ca);

	CHECK_EQ(ca_init(&ca, 8, 0), 0);
	CHECK_EQ(ca.nr_chunks, 0);
	ca_exit(&ca);
}

static void test_misc(void)
{
	CHECK(!strcmp(bkfs_strerror(0), "success"));
	CHECK(!strcmp(bkfs_strerror(-BKFS_E_IO), "I/O error"));
	CHECK(!strcmp(bkfs_strerror(BKFS_E_NOSPC), "no space left on device"));
	CHECK(!strcmp(bkfs_strerror(-BKFS_E_NR), "unknown error"));
	CHECK(!strcmp(bkfs_strerror(1000), "unknown error"));

	/* FNV-1a 64 reference values */
	CHECK(hash64("", 0) == 0xcbf29ce484222325ull);
	CHECK(hash64("a", 1) == 0xaf63dc4c8601ec8cull);
	CHECK(hash64("foobar", 6) == 0x85944171f73967e8ull);

	u64 s1 = 5, s2 = 5, s0 = 0;
	int same = 1;
	for (int i = 0; i < 100; i++)
		if (rng_next(&s1) != rng_next(&s2))
			same = 0;
	CHECK(same);
	CHECK(rng_next(&s0) != 0);
	CHECK(s0 != 0); /* zero seed does not get stuck */

	void *p = xcalloc(0, 0);
	CHECK(p != NULL);
	free(p);
	CHECK(now_ns() > 0);
	u64 t = now_ns();
	CHECK(now_ns() >= t);
	CHECK_EQ(ROUND_UP(4097, 4096), 8192);
	CHECK_EQ(DIV_ROUND_UP(1, 512), 1);
	CHECK_EQ(MIN(3, 4), 3);
	CHECK_EQ(MAX(3, 4), 4);
}

static void test_darray(void)
{
	DARRAY(u32) d = { 0 };
	for (u32 i = 0; i < 1000; i++)
		CHECK_EQ(darray_push(d, i * 3), 0);
	CHECK_EQ(d.nr, 1000);
	CHECK(d.size >= 1000);
	CHECK_EQ(d.data[999], 2997);
	u32 *z = darray_push_zeroed(d);
	CHECK(z == &d.data[1000] && *z == 0);

	/* the lower bound of a key: present, absent between two, past the end */
	size_t i = sorted_lower_bound(1000, m, d.data[m] < 300);
	CHECK_EQ(i, 100);
	i = sorted_lower_bound(1000, m, d.data[m] < 301);
	CHECK_EQ(i, 101);
	CHECK_EQ(sorted_lower_bound(1000, m, d.data[m] < 5000), 1000);
	CHECK_EQ(sorted_lower_bound(0, m, d.data[m] < 1), 0);
	darray_exit(d);
	CHECK(!d.data && !d.nr && !d.size);

	/* the pointer-and-capacity form grows to what is wanted, from its first size */
	u64 *p = NULL;
	size_t cap = 0;
	CHECK_EQ(darray_room(p, cap, 1, 64), 0);
	CHECK_EQ(cap, 64);
	CHECK_EQ(darray_room(p, cap, 64, 64), 0);
	CHECK_EQ(cap, 64);
	CHECK_EQ(darray_room(p, cap, 300, 64), 0);
	CHECK_EQ(cap, 512);
	p[299] = 7;
	CHECK_EQ(darray_room(p, cap, SIZE_MAX / 4, 64), -BKFS_E_NOMEM);
	CHECK_EQ(cap, 512);
	CHECK_EQ(p[299], 7);
	free(p);
}

int main(void)
{
	test_parse_size();
	test_crc32c();
	test_printbuf();
	test_chunked_array();
	test_misc();
	test_darray();
	TEST_MAIN_END();
}
