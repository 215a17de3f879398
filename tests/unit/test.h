/* test.h - minimal unit test harness.
 *
 * CHECK(cond), CHECK_EQ(a, b): count a pass or a failure (one line per
 * failure) and go on. REQUIRE(cond), REQUIRE_EQ(a, b): the same, for what the
 * rest of the case depends on (an open whose handle is used next): on
 * failure the case stops there. A case run with RUN_CASE(fn) stops and the
 * binary goes on with the next case; outside RUN_CASE the binary stops (after
 * printing its counts). SKIP(why) counts a case that could not run here and
 * says why (the caller returns).
 *
 * Each binary ends with "N passed, N failed, N skipped"; exit status 1 when
 * a check failed. */
#ifndef BKFS_TEST_H
#define BKFS_TEST_H
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int t_passed, t_failed, t_skipped;
static jmp_buf *t_case; /* the case RUN_CASE runs, NULL outside one */

static inline void t_summary(void)
{
	printf("%d passed, %d failed, %d skipped\n", t_passed, t_failed, t_skipped);
}

static inline void t_stop_case(void)
{
	if (t_case)
		longjmp(*t_case, 1);
	fprintf(stderr, "stopping: a required check failed outside RUN_CASE\n");
	t_summary();
	exit(1);
}

#define T_RESULT(ok, required, ...)                                                            \
	do {                                                                                   \
		if (ok) {                                                                      \
			t_passed++;                                                            \
		} else {                                                                       \
			t_failed++;                                                            \
			fprintf(stderr, __VA_ARGS__);                                          \
			if (required)                                                          \
				t_stop_case();                                                 \
		}                                                                              \
	} while (0)
#define T_EQ(a, b, required)                                                                   \
	do {                                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);                            \
		T_RESULT(_a == _b, required, "FAIL %s:%d: %s == %s (%lld != %lld)%s\n", __FILE__, __LINE__, \
			 #a, #b, _a, _b, (required) ? " (required: the case stops)" : "");     \
	} while (0)

#define CHECK(cond) T_RESULT(cond, 0, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond)
#define CHECK_EQ(a, b) T_EQ(a, b, 0)
#define REQUIRE(cond) T_RESULT(cond, 1, "FAIL %s:%d: %s (required: the case stops)\n", __FILE__, __LINE__, #cond)
#define REQUIRE_EQ(a, b) T_EQ(a, b, 1)

/* Run one case, a function of no arguments; a failed REQUIRE in it ends
 * it. (setjmp here, not in the caller: the caller's loop variables stay
 * safe from longjmp.) */
static inline void t_run_case(void (*fn)(void), const char *name)
{
	jmp_buf jb, *outer = t_case;
	t_case = &jb;
	if (!setjmp(jb))
		fn();
	else
		fprintf(stderr, "stopped: %s\n", name);
	t_case = outer;
}
#define RUN_CASE(fn) t_run_case(fn, #fn)

#define SKIP(...)                                     \
	do {                                          \
		t_skipped++;                          \
		printf("SKIP %s: ", __func__);        \
		printf(__VA_ARGS__);                  \
		printf("\n");                         \
	} while (0)

#define TEST_MAIN_END()                       \
	do {                                  \
		t_summary();                  \
		return t_failed ? 1 : 0;      \
	} while (0)
#endif
