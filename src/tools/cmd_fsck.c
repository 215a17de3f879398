/* cmd_fsck.c - `bkfs fsck`: check and repair. Exit bits per fsck(8): enum fsck_exit. */
#include "cmds.h"
#include "../fsck/fsck.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void fsck_usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs fsck [-n|-p|-y] [-v] [--json FILE] [--progress] [-m LIMIT] [--gc-gens] [--all-copies] DEV...\n"
		"       bkfs fsck --list-errors\n"
		"Check and repair a bkfs filesystem.\n"
		"  -n            check only, write nothing (default when stdin is not a terminal)\n"
		"  -p            fix what is safe without a person, report the rest\n"
		"  -y            fix everything\n"
		"  -v            verbose\n"
		"  --json FILE   write a machine-readable report\n"
		"  --progress    progress bar with ETA on a terminal\n"
		"  -m LIMIT      refuse to run if the memory estimate exceeds LIMIT (e.g. 512M)\n"
		"  --gc-gens     also run generation GC\n"
		"  --all-copies  read and verify every copy of every btree node (default: one\n"
		"                good copy per node; a bad copy met on the way is reported)\n"
		"  --list-errors print the table of named errors\n"
		"A device mounted read-write, or used by another bkfs process that may\n"
		"write, is refused in every mode, -n included (exit 8, \"mounted or in use\n"
		"by another bkfs process\"): -p and -y need it to themselves, -n shares it\n"
		"only with readers (a read-only mount, list, another fsck -n).\n"
		"Exit status: 0 clean, 1 errors corrected, 4 errors left uncorrected,\n"
		"8 operational error (also: device mounted or in use), 16 usage error,\n"
		"32 cancelled.\n");
}

int cmd_fsck(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", required_argument, 0, 'j' },
		{ "progress", no_argument, 0, 'P' },
		{ "list-errors", no_argument, 0, 'L' },
		{ "gc-gens", no_argument, 0, 'g' },
		{ "all-copies", no_argument, 0, 'A' },
		{ "help", no_argument, 0, 'h' },
		/* hidden, for tests: device writes fail after N (a kill at write N) */
		{ "debug-fail-after-writes", required_argument, 0, 'W' },
		{ 0 }
	};
	struct fsck_opts o = { .mode = FSCK_MODE_NO }; /* no flag: check only */
	int opt, modes = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "npyvm:fh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': o.mode = FSCK_MODE_NO; modes++; break;
		case 'p': o.mode = FSCK_MODE_PREEN; modes++; break;
		case 'y': o.mode = FSCK_MODE_YES; modes++; break;
		case 'v': o.verbose = true; break;
		case 'f': break; /* always a full check */
		case 'j': o.json_path = optarg; break;
		case 'P': o.progress = true; break;
		case 'g': o.gc_gens = true; break;
		case 'A': o.all_copies = true; break;
		case 'm':
			if (parse_size(optarg, &o.mem_limit)) {
				fprintf(stderr, "bkfs fsck: bad memory limit '%s'\n", optarg);
				return FSCK_EXIT_USAGE;
			}
			break;
		case 'W': {
			char *end;
			o.fail_after_writes = strtoull(optarg, &end, 0);
			if (!*optarg || *end || !o.fail_after_writes) {
				fprintf(stderr, "bkfs fsck: bad write count '%s'\n", optarg);
				return FSCK_EXIT_USAGE;
			}
			break;
		}
		case 'L': {
			struct printbuf pb = PRINTBUF;
			fsck_list_errors(&pb);
			fputs(pb_str(&pb), stdout);
			pb_exit(&pb);
			return FSCK_EXIT_OK;
		}
		case 'h': fsck_usage(stdout); return FSCK_EXIT_OK;
		default: fsck_usage(stderr); return FSCK_EXIT_USAGE;
		}
	}
	if (modes > 1) {
		fprintf(stderr, "bkfs fsck: -n, -p and -y are exclusive\n");
		return FSCK_EXIT_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "bkfs fsck: no device given\n");
		fsck_usage(stderr);
		return FSCK_EXIT_USAGE;
	}
	return bkfs_fsck(argv + optind, argc - optind, &o);
}
