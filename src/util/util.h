/* util.h - basic types, error codes, text buffers, checksums, small helpers.
 * The lowest layer: includes nothing from bkfs. */
#ifndef BKFS_UTIL_H
#define BKFS_UTIL_H
#include <stdint.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdarg.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int8_t s8;
typedef int32_t s32;
typedef int64_t s64;

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define ROUND_UP(n, d) (DIV_ROUND_UP(n, d) * (d))

/* Error codes: written once, enum and names generated. Negative values returned. */
#define BKFS_ERRORS()                                   \
	x(OK, "success")                                \
	x(IO, "I/O error")                              \
	x(NOMEM, "out of memory")                       \
	x(INVAL, "invalid argument")                    \
	x(CSUM, "checksum mismatch")                    \
	x(CORRUPT, "corrupt structure")                 \
	x(NOSPC, "no space left on device")             \
	x(NOENT, "no such object")                      \
	x(EXIST, "object exists")                       \
	x(TOOBIG, "value too large")                    \
	x(NOTDIR, "not a directory")                    \
	x(ISDIR, "is a directory")                      \
	x(NOTEMPTY, "directory not empty")              \
	x(DEGRADED, "not enough devices")               \
	x(JOURNAL_FULL, "journal full")                 \
	x(RANGE, "out of range")                        \
	x(AGAIN, "try again")                           \
	x(LOOP, "repair did not converge")             \
	x(RETRY, "a pass must run again")              \
	x(BUSY, "mounted or in use by another bkfs process")

enum bkfs_err {
#define x(n, s) BKFS_E_##n,
	BKFS_ERRORS()
#undef x
	BKFS_E_NR
};
const char *bkfs_strerror(int err); /* accepts negative or positive codes */

/* Growable text buffer used by every *_to_text() printer. */
struct printbuf {
	char *buf;
	size_t len, size;
};
#define PRINTBUF ((struct printbuf){ 0 })
void pb_printf(struct printbuf *pb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pb_vprintf(struct printbuf *pb, const char *fmt, va_list ap);
void pb_reset(struct printbuf *pb);
void pb_exit(struct printbuf *pb);
static inline const char *pb_str(struct printbuf *pb) { return pb->buf ? pb->buf : ""; }

/* CRC32C (Castagnoli) via ISA-L. */
u32 bkfs_crc32c(u32 seed, const void *data, size_t len);

/* Allocation that never returns NULL silently: aborts are forbidden, so these
 * return NULL and callers propagate -BKFS_E_NOMEM. */
void *xcalloc(size_t n, size_t sz);

/* CPUs this process may run on (its affinity mask, which taskset and
 * container CPU sets narrow), at least 1. */
unsigned usable_cpus(void);

/* Map the pages of [p, p + len) now, in huge pages where the range covers
 * whole ones, for memory that will be written from end to end: a fault per
 * 4 KiB page costs far more (under virtualisation, ~15 us each here). Best
 * effort: nothing happens where the kernel lacks these madvise() advices. */
void mem_prefault(void *p, size_t len);
/* The same for a range about to be written in part of a page or more: every
 * 4 KiB page it touches is mapped (pages at its ends included), never a huge
 * page. For buffers filled a piece at a time (btree nodes). */
void mem_populate(void *p, size_t len);

/* Chunked array: fixed-size elements in 1 MiB chunks (the last one only as
 * long as it needs), never one giant allocation. Its users sweep every
 * element, so the chunks are mapped when made (mem_prefault). */
struct chunked_array {
	size_t elem_size, nr, per_chunk, nr_chunks;
	u8 **chunks;
};
int ca_init(struct chunked_array *ca, size_t elem_size, size_t nr);
void ca_exit(struct chunked_array *ca);
static inline void *ca_get(struct chunked_array *ca, size_t i)
{
	return ca->chunks[i / ca->per_chunk] + (i % ca->per_chunk) * ca->elem_size;
}
size_t ca_bytes(const struct chunked_array *ca);

/* Deterministic PRNG (xorshift64*) for tests, corruption and fuzzing. */
/* a hint to the CPU inside a polling loop */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

static inline u64 rng_next(u64 *s)
{
	u64 x = *s ? *s : 0x9E3779B97F4A7C15ull;
	x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

u64 now_ns(void);
struct timespec;
/* signed nanoseconds since the epoch (stored as u64) -> timespec */
void ns_to_timespec(u64 ns, struct timespec *ts);
/* Parse sizes like 4096, 64k, 1M, 2G. Returns 0 on success. */
int parse_size(const char *s, u64 *out);
u64 hash64(const void *data, size_t len); /* FNV-1a 64 */

#endif
