/* test.h - minimal unit test harness. Each test binary prints one line per
 * failed assertion and ends with "N passed, N failed"; exit status 1 on failure. */
#ifndef BKFS_TEST_H
#define BKFS_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int t_passed, t_failed;
#define CHECK(cond) do { if (cond) t_passed++; else { t_failed++; \
	fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_EQ(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
	if (_a == _b) t_passed++; else { t_failed++; \
	fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, _a, _b); } } while (0)
#define TEST_MAIN_END() do { printf("%d passed, %d failed\n", t_passed, t_failed); return t_failed ? 1 : 0; } while (0)
#endif
