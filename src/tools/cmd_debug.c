/* cmd_debug.c - `bkfs debug corrupt KIND [--seed N] DEV...`: damage an image
 * in a named, reproducible way (the engine: src/debug/corrupt.h), so that
 * tests (and people) can watch fsck find and repair it.
 *
 * Output: what was damaged, the error fsck should report, what data may be
 * lost, and one "affects: INUM PATH" line for every path whose content or
 * place may change (the damaged object and everything below it).
 *
 * `--list` prints one line per kind, fields separated by a tab:
 *   KIND <TAB> EXPECTED-FSCK-ERROR <TAB> NEEDS <TAB> DESCRIPTION
 * NEEDS is what the image must hold for the kind to find a target, names
 * joined by ',' ("-" for nothing): stripes (erasure-coded stripes, made by
 * bkfs erasure-code over three or more devices), three_level (a btree of
 * three levels: format with --btree-node-size 4k). Lines starting with '#'
 * are comments. The order is stable (new kinds are added at the end of
 * their group).
 *
 * Exit status: 0 damage written, 1 no suitable target in this image (or an
 * error, such as a device mounted or in use), 16 usage error. The devices are
 * locked exclusively for the whole run. */
#include "cmds.h"
#include "../debug/corrupt.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <errno.h>

static void list_kinds(FILE *f)
{
	fprintf(f, "# kind\texpected_fsck_error\tneeds\tdescription\n");
	for (size_t i = 0; i < CORRUPT_NR; i++) {
		const struct corrupt_kind *k = &corrupt_kinds[i];
		struct printbuf needs = PRINTBUF;
		corrupt_needs_to_text(&needs, k->needs);
		fprintf(f, "%s\t%s\t%s\t%s\n", k->name, fsck_err_table[k->expect].name, pb_str(&needs), k->desc);
		pb_exit(&needs);
	}
}

/* every line of msgs on stderr, as this command's */
static void print_msgs(struct printbuf *msgs)
{
	const char *p = msgs->len ? pb_str(msgs) : "";
	while (*p) {
		const char *nl = strchrnul(p, '\n');
		fprintf(stderr, "bkfs debug corrupt: %.*s\n", (int)(nl - p), p);
		p = *nl ? nl + 1 : nl;
	}
}

/* Open every path read-write for the engine (it reopens the filesystem on
 * them and writes the damage through them). */
static int open_devs(char **paths, unsigned nr, struct blockdev **bds)
{
	for (unsigned i = 0; i < nr; i++) {
		struct stat st;
		int ret;
		if (stat(paths[i], &st)) {
			fprintf(stderr, "bkfs debug corrupt: %s: %s\n", paths[i], strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			fprintf(stderr, "bkfs debug corrupt: %s: not a regular file or block device\n", paths[i]);
			return -1;
		}
		if ((ret = file_dev_open(paths[i], 0, &bds[i]))) {
			fprintf(stderr, "bkfs debug corrupt: cannot open: %s: %s\n", paths[i], bkfs_strerror(ret));
			return -1;
		}
	}
	return 0;
}

static void corrupt_usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs debug corrupt KIND [--seed N] DEV...\n"
		"       bkfs debug corrupt --list\n"
		"Damage a filesystem image in a named, reproducible way (the same seed on\n"
		"the same image makes the same damage), for testing fsck. The filesystem\n"
		"must not be in use.\n"
		"  --seed N   choose the target with seed N (default 1)\n"
		"  --list     print the kinds, one a line, fields separated by a tab:\n"
		"             KIND  EXPECTED-FSCK-ERROR  NEEDS  DESCRIPTION\n"
		"             (NEEDS: what the image must hold, e.g. stripes, three_level; - for nothing)\n"
		"Prints the damaged object, the error `bkfs fsck` should report, what data\n"
		"may be lost, and one \"affects: INUM PATH\" line per path that may change.\n"
		"Exit status: 0 damage written, 1 no suitable target (or an error, such as a\n"
		"device mounted or in use by another bkfs process), 16 usage error.\n");
}

static int cmd_corrupt(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, 0, 's' },
		{ "list", no_argument, 0, 'l' },
		{ "help", no_argument, 0, 'h' },
		{ 0 }
	};
	u64 seed = 1;
	int opt;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":s:lh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': {
			char *end;
			seed = strtoull(optarg, &end, 0);
			if (!*optarg || *end) {
				fprintf(stderr, "bkfs debug corrupt: bad seed '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'l':
			list_kinds(stdout);
			return 0;
		case 'h':
			corrupt_usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "bkfs debug corrupt: option '%s' requires an argument\n", argv[optind - 1]);
			corrupt_usage(stderr);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "bkfs debug corrupt: unknown option '%s'\n", argv[optind - 1]);
			corrupt_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "bkfs debug corrupt: no kind given\n");
		corrupt_usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[optind++];
	const struct corrupt_kind *k = corrupt_kind_find(name);
	if (!k) {
		fprintf(stderr, "bkfs debug corrupt: unknown kind '%s' (see --list)\n", name);
		return EXIT_USAGE;
	}
	if (optind >= argc) {
		fprintf(stderr, "bkfs debug corrupt: no device given\n");
		corrupt_usage(stderr);
		return EXIT_USAGE;
	}
	if (argc - optind > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs debug corrupt: at most %d devices\n", BKFS_MAX_DEVS);
		return EXIT_USAGE;
	}
	unsigned nr = argc - optind;
	struct blockdev *bds[BKFS_MAX_DEVS] = { 0 };
	struct corrupt_report r = { 0 };
	int ret = 1; /* open_devs or the lock said why */
	struct tool_locks locks;
	if (tool_lock_devices("debug corrupt", argv + optind, nr, true, NULL, &locks))
		return 1;
	if (!open_devs(argv + optind, nr, bds)) {
		ret = bkfs_corrupt(bds, nr, k, &(struct corrupt_opts){ .seed = seed }, &r);
		print_msgs(&r.msgs);
		if (ret < 0)
			fprintf(stderr, "bkfs debug corrupt: %s: %s\n", k->name, bkfs_strerror(ret));
	}
	for (unsigned i = 0; i < nr; i++)
		bd_close(bds[i]);
	tool_unlock_devices(&locks);
	int status = ret ? 1 : 0;
	if (!ret) {
		printf("kind: %s (seed %llu)\n", k->name, (unsigned long long)seed);
		printf("damaged: %s\n", pb_str(&r.damaged));
		printf("expect: %s (fsck -n exits 4, fsck -y repairs it, a second fsck -n is clean)\n",
		       fsck_err_table[k->expect].name);
		printf("lost: %s\n", r.lost.len ? pb_str(&r.lost) : "none");
		fputs(r.affects.len ? pb_str(&r.affects) : "", stdout);
	}
	corrupt_report_exit(&r);
	return status;
}

static void debug_usage(FILE *f)
{
	fprintf(f, "usage: bkfs debug corrupt KIND [--seed N] DEV...\n"
		   "       bkfs debug corrupt --list\n");
}

int cmd_debug(int argc, char **argv)
{
	if (argc < 2) {
		debug_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		debug_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "corrupt"))
		return cmd_corrupt(argc - 1, argv + 1);
	fprintf(stderr, "bkfs debug: unknown subcommand '%s'\n", argv[1]);
	debug_usage(stderr);
	return EXIT_USAGE;
}
