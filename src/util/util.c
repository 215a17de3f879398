#include "util.h"
#include "darray.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <ctype.h>
#include <isa-l/crc.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const err_names[] = {
#define x(n, s) s,
	BKFS_ERRORS()
#undef x
};

const char *bkfs_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= BKFS_E_NR)
		return "unknown error";
	return err_names[err];
}

void pb_vprintf(struct printbuf *pb, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	if (pb->len + n + 1 > pb->size) {
		size_t ns = MAX(pb->size * 2, pb->len + n + 64);
		char *b = realloc(pb->buf, ns);
		if (!b)
			return;
		pb->buf = b;
		pb->size = ns;
	}
	vsnprintf(pb->buf + pb->len, pb->size - pb->len, fmt, ap);
	pb->len += n;
}

void *darray_grow(void *p, size_t *cap, size_t elem, size_t want, size_t first)
{
	size_t nc = *cap ? *cap * 2 : MAX(first, 1);
	while (nc < want)
		nc *= 2;
	if (nc > SIZE_MAX / elem)
		return NULL;
	void *n = realloc(p, nc * elem);
	if (n)
		*cap = nc;
	return n;
}

void pb_printf(struct printbuf *pb, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	pb_vprintf(pb, fmt, ap);
	va_end(ap);
}

void pb_reset(struct printbuf *pb)
{
	pb->len = 0;
	if (pb->buf)
		pb->buf[0] = 0;
}

void pb_exit(struct printbuf *pb)
{
	free(pb->buf);
	*pb = PRINTBUF;
}

u32 bkfs_crc32c(u32 seed, const void *data, size_t len)
{
	return crc32_iscsi((unsigned char *)data, (int)len, seed);
}

void *xcalloc(size_t n, size_t sz)
{
	return calloc(n ? n : 1, sz ? sz : 1);
}

unsigned usable_cpus(void)
{
	cpu_set_t set;
	if (!sched_getaffinity(0, sizeof(set), &set) && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

void mem_prefault(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)p + page - 1) & ~(page - 1), e = ((uintptr_t)p + len) & ~(page - 1);
	/* huge pages only inside the range: nothing outside it becomes resident */
	uintptr_t huge = 2u << 20, ha = (a + huge - 1) & ~(huge - 1), he = e & ~(huge - 1);
	if (he > ha)
		(void)madvise((void *)ha, he - ha, MADV_HUGEPAGE);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#else
	(void)p;
	(void)len;
#endif
}

void mem_populate(void *p, size_t len)
{
#ifdef MADV_POPULATE_WRITE
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = (uintptr_t)p & ~(page - 1), e = ((uintptr_t)p + len + page - 1) & ~(page - 1);
	if (len)
		(void)madvise((void *)a, e - a, MADV_POPULATE_WRITE);
#endif
}

int ca_init(struct chunked_array *ca, size_t elem_size, size_t nr)
{
	memset(ca, 0, sizeof(*ca));
	ca->elem_size = elem_size;
	ca->nr = nr;
	ca->per_chunk = MAX((size_t)1, (size_t)(1 << 20) / elem_size);
	ca->nr_chunks = DIV_ROUND_UP(nr, ca->per_chunk);
	ca->chunks = xcalloc(ca->nr_chunks, sizeof(u8 *));
	if (!ca->chunks)
		return -BKFS_E_NOMEM;
	for (size_t i = 0; i < ca->nr_chunks; i++) {
		/* the last chunk only as long as it needs: a small array is
		 * not a 1 MiB mapping (and its munmap) */
		size_t n = MIN(ca->per_chunk, nr - i * ca->per_chunk);
		ca->chunks[i] = xcalloc(n, elem_size);
		if (!ca->chunks[i]) {
			ca_exit(ca);
			return -BKFS_E_NOMEM;
		}
		/* its users sweep every element: map the pages at once */
		mem_prefault(ca->chunks[i], n * elem_size);
	}
	return 0;
}

void ca_exit(struct chunked_array *ca)
{
	if (ca->chunks)
		for (size_t i = 0; i < ca->nr_chunks; i++)
			free(ca->chunks[i]);
	free(ca->chunks);
	memset(ca, 0, sizeof(*ca));
}

size_t ca_bytes(const struct chunked_array *ca)
{
	return ca->nr * ca->elem_size;
}

u64 now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

int parse_size(const char *s, u64 *out)
{
	char *end;
	if (!s || !*s || !isdigit((unsigned char)*s))
		return -BKFS_E_INVAL;
	unsigned long long v = strtoull(s, &end, 10);
	u64 mult = 1;
	switch (tolower((unsigned char)*end)) {
	case 0: break;
	case 'k': mult = 1ull << 10; end++; break;
	case 'm': mult = 1ull << 20; end++; break;
	case 'g': mult = 1ull << 30; end++; break;
	case 't': mult = 1ull << 40; end++; break;
	default: return -BKFS_E_INVAL;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end)
		return -BKFS_E_INVAL;
	if (v && mult > UINT64_MAX / v)
		return -BKFS_E_RANGE;
	*out = v * mult;
	return 0;
}

u64 hash64(const void *data, size_t len)
{
	const u8 *p = data;
	u64 h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void ns_to_timespec(u64 ns, struct timespec *ts)
{
	s64 v = (s64)ns;
	ts->tv_sec = v / 1000000000ll;
	ts->tv_nsec = v % 1000000000ll;
	if (ts->tv_nsec < 0) {
		ts->tv_nsec += 1000000000ll;
		ts->tv_sec--;
	}
}
