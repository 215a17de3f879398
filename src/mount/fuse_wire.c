/* fuse_wire.c - see fuse_wire.h. Request and reply layouts are the kernel's
 * (<linux/fuse.h>); fields are copied out, never cast in place, because
 * nothing promises their alignment inside libfuse's buffers. */
#include "fuse_wire.h"
#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static struct {
	uint64_t init_unique; /* the INIT request's id, while its reply is due */
	bool init_due;
	bool v2_offered;      /* the kernel's INIT lists HANDLE_KILLPRIV_V2 */
	bool v2;              /* and the reply accepted it */
	bool kill;            /* the request being served: kill suid/sgid */
} W;

bool fuse_wire_killpriv_v2(void)
{
	return W.v2;
}

bool fuse_wire_kill_suidgid(void)
{
	return W.v2 && W.kill;
}

/* a u32 at off of the request's argument, if the request is long enough */
static bool arg_u32(const void *arg, size_t len, size_t off, uint32_t *v)
{
	if (len < off + sizeof(*v))
		return false;
	memcpy(v, (const char *)arg + off, sizeof(*v));
	return true;
}

static void note_request(const void *buf, size_t len)
{
	struct fuse_in_header h;
	const char *arg = (const char *)buf + sizeof(h);
	uint32_t v = 0;

	W.kill = false;
	if (len < sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	len -= sizeof(h);
	switch (h.opcode) {
	case FUSE_INIT:
		W.init_unique = h.unique;
		W.init_due = true;
		W.v2_offered = arg_u32(arg, len, offsetof(struct fuse_init_in, flags), &v) &&
			       (v & FUSE_HANDLE_KILLPRIV_V2);
		break;
	case FUSE_WRITE:
		W.kill = arg_u32(arg, len, offsetof(struct fuse_write_in, write_flags), &v) &&
			 (v & FUSE_WRITE_KILL_SUIDGID);
		break;
	case FUSE_SETATTR:
		W.kill = arg_u32(arg, len, offsetof(struct fuse_setattr_in, valid), &v) &&
			 (v & FATTR_KILL_SUIDGID);
		break;
	case FUSE_OPEN:
		W.kill = arg_u32(arg, len, offsetof(struct fuse_open_in, open_flags), &v) &&
			 (v & FUSE_OPEN_KILL_SUIDGID);
		break;
	}
}

/* Polling: see fuse_wire.h. A window of poll_ns after each request. Every
 * POLL_CHECK reads the thread's involuntary context switches are counted:
 * when the scheduler took the CPU from it more than POLL_PREEMPTED times,
 * other work wants the CPU and polling stops for a number of reads that
 * doubles each time it happens again (from POLL_BACKOFF_MIN up to
 * POLL_BACKOFF_MAX) and starts over once a count finds no contention. */
#define POLL_CHECK 16
#define POLL_PREEMPTED 2
#define POLL_BACKOFF_MIN 1024u
#define POLL_BACKOFF_MAX (1u << 20)

/* a spin loop's hint to the CPU (another hardware thread may use the core) */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

static long thread_preemptions(void)
{
	struct rusage ru;
	return getrusage(RUSAGE_THREAD, &ru) ? 0 : ru.ru_nivcsw;
}

static struct {
	long poll_ns;
	unsigned backoff;     /* reads left without polling */
	unsigned next_backoff;
	unsigned since_check; /* reads since the last count */
	long preempted;       /* the count at the last check */
	long (*preemptions)(void);
	struct fuse_wire_stats st;
} P = {
	.poll_ns = FUSE_WIRE_POLL_US_DEFAULT * 1000L,
	.next_backoff = POLL_BACKOFF_MIN,
	.preemptions = thread_preemptions,
};

void fuse_wire_set_poll_us(unsigned us)
{
	P.poll_ns = (long)us * 1000;
}

/* the next count compares with now */
static void count_afresh(void)
{
	P.preempted = P.preemptions();
	P.since_check = 0;
}

void fuse_wire_set_preemptions(long (*count)(void))
{
	P.preemptions = count ? count : thread_preemptions;
	count_afresh();
}

void fuse_wire_get_stats(struct fuse_wire_stats *out)
{
	*out = P.st;
}

static long now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void count_preemptions(void)
{
	long now = P.preemptions();
	if (now - P.preempted > POLL_PREEMPTED) {
		P.backoff = P.next_backoff;
		P.st.pauses++;
		if (P.next_backoff < POLL_BACKOFF_MAX)
			P.next_backoff *= 2;
	} else {
		P.next_backoff = POLL_BACKOFF_MIN;
	}
	P.preempted = now;
}

/* whether to poll before this read */
static bool poll_now(void)
{
	if (P.backoff) {
		if (!--P.backoff)
			count_afresh();
		return false;
	}
	if (++P.since_check >= POLL_CHECK) {
		P.since_check = 0;
		count_preemptions();
		return !P.backoff;
	}
	return true;
}

/* wait for the next request polling the descriptor for up to poll_ns, then
 * read it (a read that sleeps when none came) */
static ssize_t read_request(int fd, void *buf, size_t len)
{
	if (!P.st.reads++) /* the switches before serving are not contention */
		count_afresh();
	if (P.poll_ns && poll_now()) {
		long deadline = now_ns() + P.poll_ns;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int ready;
		P.st.polled++;
		while (!(ready = poll(&p, 1, 0)) && now_ns() < deadline)
			cpu_relax();
		if (ready > 0)
			P.st.found_polling++;
	}
	return read(fd, buf, len);
}

ssize_t fuse_wire_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t n = read_request(fd, buf, len);
	if (n > 0)
		note_request(buf, (size_t)n);
	return n;
}

/* the INIT reply (header, then struct fuse_init_out) also accepts
 * HANDLE_KILLPRIV_V2 when the kernel offered it */
static void amend_init_reply(struct iovec *iov, int count)
{
	struct fuse_out_header oh;
	uint32_t flags;
	size_t at = offsetof(struct fuse_init_out, flags);

	if (count < 2 || iov[0].iov_len < sizeof(oh))
		return;
	memcpy(&oh, iov[0].iov_base, sizeof(oh));
	if (oh.unique != W.init_unique)
		return;
	W.init_due = false;
	if (oh.error || !W.v2_offered || iov[1].iov_len < at + sizeof(flags))
		return;
	memcpy(&flags, (char *)iov[1].iov_base + at, sizeof(flags));
	flags |= FUSE_HANDLE_KILLPRIV_V2;
	memcpy((char *)iov[1].iov_base + at, &flags, sizeof(flags));
	W.v2 = true;
}

ssize_t fuse_wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (W.init_due)
		amend_init_reply(iov, count);
	return writev(fd, iov, count);
}
