/* cmd_gc_gens.c - `bkfs gc-gens DEV...`: generation GC on its own. */
#include "cmds.h"
#include "opts.h"
#include "../fsck/fsck.h"
#include <getopt.h>
#include <stdio.h>

static void gc_gens_usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs gc-gens DEV...\n"
		"Run generation garbage collection: drop cached pointers more than 16\n"
		"generations stale and advance every bucket's oldest_gen, so that buckets\n"
		"waiting on it (need_gc_gens) can be allocated again. The filesystem is\n"
		"opened read-write; pass every member device. A mounted filesystem is\n"
		"refused (the mount runs generation GC itself), as is one another bkfs\n"
		"process uses.\n"
		"Exit status: 0 success, 1 failure (also: device mounted or in use),\n"
		"16 usage error.\n");
}

int cmd_gc_gens(int argc, char **argv)
{
	int status = tool_help_only("gc-gens", argc, argv, gc_gens_usage);
	if (status >= 0)
		return status;
	if (optind >= argc) {
		fprintf(stderr, "bkfs gc-gens: no device given\n");
		gc_gens_usage(stderr);
		return EXIT_USAGE;
	}
	if (argc - optind > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs gc-gens: at most %d devices\n", BKFS_MAX_DEVS);
		return EXIT_USAGE;
	}
	/* the mount's checkpoints would overwrite what an offline run writes */
	struct tool_locks locks;
	if (tool_lock_devices("gc-gens", argv + optind, argc - optind, true,
			      "the mount runs generation GC itself; unmount to run it offline", &locks))
		return 1;
	struct printbuf report = PRINTBUF;
	int ret = bkfs_gc_gens(argv + optind, argc - optind, &report);
	tool_unlock_devices(&locks);
	if (ret)
		fprintf(stderr, "bkfs gc-gens: %s", pb_str(&report));
	else
		fputs(pb_str(&report), stdout);
	pb_exit(&report);
	return ret ? 1 : 0;
}
