/* test_fuse_wire.c - the layer under libfuse (src/mount/fuse_wire.c), fed
 * through a pipe as the kernel's /dev/fuse would feed it: the INIT reply
 * takes HANDLE_KILLPRIV_V2 only when the kernel offered it, the kill flags
 * of the request being served, and the polling before a read (it finds a
 * request that comes during its window; it pauses, for a doubling number of
 * reads, while the thread is preempted, and starts over once it is not).
 * The file is compiled in here so that the test can reset its state. */
#include "mount/fuse_wire.c"
#include "test.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>

static int pipefd[2];

/* put a request (header, then arg) in the pipe */
static void send_request(uint32_t opcode, uint64_t unique, const void *arg, size_t arg_len)
{
	struct {
		struct fuse_in_header h;
		char arg[192];
	} m = { .h = { .len = (uint32_t)(sizeof(m.h) + arg_len), .opcode = opcode, .unique = unique } };
	REQUIRE(arg_len <= sizeof(m.arg));
	memcpy(m.arg, arg, arg_len);
	ssize_t n = write(pipefd[1], &m, m.h.len);
	REQUIRE_EQ(n, (ssize_t)m.h.len);
}

static ssize_t receive(void)
{
	char buf[256];
	return fuse_wire_read(pipefd[0], buf, sizeof(buf), NULL);
}

/* the INIT reply's flags after the wire layer amended them */
static uint32_t init_reply_flags(uint64_t unique, uint32_t flags)
{
	struct fuse_out_header oh = { .len = sizeof(oh) + sizeof(struct fuse_init_out), .unique = unique };
	struct fuse_init_out out = { .major = 7, .minor = 33, .flags = flags };
	struct iovec iov[2] = { { &oh, sizeof(oh) }, { &out, sizeof(out) } };
	int null = open("/dev/null", O_WRONLY);
	REQUIRE(null >= 0);
	fuse_wire_writev(null, iov, 2, NULL);
	close(null);
	return out.flags;
}

static void reset_wire(void)
{
	memset(&W, 0, sizeof(W));
}

static void test_init_and_kill_flags(void)
{
	/* the kernel does not offer the flag: the reply does not take it */
	reset_wire();
	struct fuse_init_in in = { .major = 7, .minor = 33, .flags = FUSE_ASYNC_READ };
	send_request(FUSE_INIT, 1, &in, sizeof(in));
	CHECK(receive() > 0);
	CHECK_EQ(init_reply_flags(1, FUSE_ASYNC_READ), FUSE_ASYNC_READ);
	CHECK(!fuse_wire_killpriv_v2());

	/* it does: the reply to that INIT (not to another request) takes it */
	reset_wire();
	in.flags |= FUSE_HANDLE_KILLPRIV_V2;
	send_request(FUSE_INIT, 7, &in, sizeof(in));
	CHECK(receive() > 0);
	CHECK_EQ(init_reply_flags(8, 0), 0);
	CHECK(!fuse_wire_killpriv_v2());
	CHECK_EQ(init_reply_flags(7, FUSE_ASYNC_READ), FUSE_ASYNC_READ | FUSE_HANDLE_KILLPRIV_V2);
	CHECK(fuse_wire_killpriv_v2());

	/* the kill flag of the request being served, and only of it */
	struct fuse_write_in w = { .size = 1, .write_flags = FUSE_WRITE_KILL_SUIDGID };
	send_request(FUSE_WRITE, 9, &w, sizeof(w));
	CHECK(receive() > 0);
	CHECK(fuse_wire_kill_suidgid());
	w.write_flags = 0;
	send_request(FUSE_WRITE, 10, &w, sizeof(w));
	CHECK(receive() > 0);
	CHECK(!fuse_wire_kill_suidgid());
	struct fuse_setattr_in sa = { .valid = FATTR_MODE | FATTR_KILL_SUIDGID };
	send_request(FUSE_SETATTR, 11, &sa, sizeof(sa));
	CHECK(receive() > 0);
	CHECK(fuse_wire_kill_suidgid());
	struct fuse_open_in op = { .open_flags = FUSE_OPEN_KILL_SUIDGID };
	send_request(FUSE_OPEN, 12, &op, sizeof(op));
	CHECK(receive() > 0);
	CHECK(fuse_wire_kill_suidgid());
	/* a request too short to hold the field: no flag */
	send_request(FUSE_WRITE, 13, &w, 4);
	CHECK(receive() > 0);
	CHECK(!fuse_wire_kill_suidgid());
	/* GETATTR carries no kill flag */
	send_request(FUSE_GETATTR, 14, &w, sizeof(w));
	CHECK(receive() > 0);
	CHECK(!fuse_wire_kill_suidgid());
}

static void reset_polling(unsigned poll_us)
{
	fuse_wire_set_poll_us(poll_us);
	memset(&P.st, 0, sizeof(P.st));
	P.backoff = 0;
	P.since_check = 0;
	P.next_backoff = POLL_BACKOFF_MIN;
}

static void *send_late(void *arg)
{
	usleep(200);
	send_request(FUSE_GETATTR, 99, "", 0);
	return NULL;
}

static long never_preempted(void) { return 0; }

static void test_polling_finds_a_late_request(void)
{
	struct fuse_wire_stats st;
	pthread_t t;
	/* a window much longer than the sender's wait, and no pause for
	 * preemption (that is test_polling_pauses_while_preempted's): the
	 * request is found while polling unless the sender waited longer than
	 * the window for a CPU (a loaded machine; hence the tries) */
	fuse_wire_set_preemptions(never_preempted);
	for (int tries = 0; tries < 20; tries++) {
		reset_polling(50000);
		REQUIRE_EQ(pthread_create(&t, NULL, send_late, NULL), 0);
		CHECK(receive() > 0);
		pthread_join(t, NULL);
		fuse_wire_get_stats(&st);
		if (st.found_polling)
			break;
	}
	CHECK(st.polled > 0);
	CHECK(st.found_polling > 0);
	fuse_wire_set_preemptions(NULL);

	/* poll_us=0: a read that sleeps, no polling */
	reset_polling(0);
	REQUIRE_EQ(pthread_create(&t, NULL, send_late, NULL), 0);
	CHECK(receive() > 0);
	pthread_join(t, NULL);
	fuse_wire_get_stats(&st);
	CHECK_EQ(st.reads, 1);
	CHECK_EQ(st.polled, 0);
}

static long fake_preempted;
static long fake_step;
static long fake_preemptions(void)
{
	return fake_preempted += fake_step;
}

/* n reads of requests already waiting; returns how many of them polled */
static uint64_t reads(unsigned n)
{
	struct fuse_wire_stats a, b;
	fuse_wire_get_stats(&a);
	for (unsigned i = 0; i < n; i++) {
		send_request(FUSE_GETATTR, i, "", 0);
		REQUIRE(receive() > 0);
	}
	fuse_wire_get_stats(&b);
	return b.polled - a.polled;
}

static void test_polling_pauses_while_preempted(void)
{
	struct fuse_wire_stats st;
	reset_polling(50);
	fake_step = 0;
	fuse_wire_set_preemptions(fake_preemptions);

	/* never preempted: every read polls */
	CHECK_EQ(reads(10 * POLL_CHECK), 10 * POLL_CHECK);

	/* preempted more than POLL_PREEMPTED times between two counts: the
	 * read that counts and the next POLL_BACKOFF_MIN do not poll */
	fake_step = POLL_PREEMPTED + 1;
	reset_polling(50);
	CHECK_EQ(reads(POLL_CHECK), POLL_CHECK - 1);
	CHECK_EQ(reads(POLL_BACKOFF_MIN), 0);
	fuse_wire_get_stats(&st);
	CHECK_EQ(st.pauses, 1);
	/* still preempted: polling again until the next count, then a pause
	 * twice as long */
	CHECK_EQ(reads(POLL_CHECK), POLL_CHECK - 1);
	CHECK_EQ(reads(2 * POLL_BACKOFF_MIN), 0);
	CHECK_EQ(reads(POLL_CHECK), POLL_CHECK - 1);
	CHECK_EQ(reads(4 * POLL_BACKOFF_MIN), 0);
	fuse_wire_get_stats(&st);
	CHECK_EQ(st.pauses, 3);

	/* no longer preempted: polling goes on, and the next pause is short */
	fake_step = 0;
	CHECK_EQ(reads(5 * POLL_CHECK), 5 * POLL_CHECK);
	fake_step = POLL_PREEMPTED + 1;
	CHECK_EQ(reads(POLL_CHECK), POLL_CHECK - 1);
	CHECK_EQ(reads(POLL_BACKOFF_MIN), 0);
	CHECK_EQ(reads(1), 1);
	/* exactly POLL_PREEMPTED preemptions are tolerated */
	fake_step = POLL_PREEMPTED;
	reset_polling(50);
	CHECK_EQ(reads(4 * POLL_CHECK), 4 * POLL_CHECK);

	/* the pause stops doubling at POLL_BACKOFF_MAX */
	P.next_backoff = POLL_BACKOFF_MAX;
	fake_step = POLL_PREEMPTED + 1;
	P.since_check = 0;
	reads(POLL_CHECK);
	CHECK_EQ(P.backoff, POLL_BACKOFF_MAX);
	CHECK_EQ(P.next_backoff, POLL_BACKOFF_MAX);
	fuse_wire_set_preemptions(NULL);
}

int main(void)
{
	REQUIRE_EQ(pipe(pipefd), 0);
	RUN_CASE(test_init_and_kill_flags);
	RUN_CASE(test_polling_finds_a_late_request);
	RUN_CASE(test_polling_pauses_while_preempted);
	TEST_MAIN_END();
}
