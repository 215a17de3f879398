/* weak_passes.c - fallbacks so the tool links while a pass is being
 * written; each real pass overrides its fallback. A fallback reports that it
 * did not run, so a check that used it can never look clean. */
#include "fsck.h"
#include <stdio.h>

#define WEAK_PASS(fn)                                                           \
	__attribute__((weak)) int fn(struct fsck_ctx *c)                        \
	{                                                                       \
		(void)c;                                                        \
		fprintf(stderr, "bkfs fsck: pass " #fn " is not available in this build\n"); \
		return -BKFS_E_INVAL;                                           \
	}
WEAK_PASS(fsck_check_topology)
WEAK_PASS(fsck_scan_for_btree_nodes)
WEAK_PASS(fsck_check_allocations)
WEAK_PASS(fsck_check_alloc_info)
WEAK_PASS(fsck_check_filesystem)
WEAK_PASS(fsck_gc_gens)
__attribute__((weak)) void scan_result_free(struct scan_result *r) { (void)r; }
