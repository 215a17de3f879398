/* cmd_scan.c - `bkfs scan DEV...`: list the btree nodes found by reading the
 * raw devices (the fsck layer's node scan). Read-only: the filesystem is
 * opened without journal replay, missing devices allowed. */
#include "cmds.h"
#include "opts.h"
#include "../fsck/fsck.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void scan_usage(FILE *f)
{
	fprintf(f, "usage: bkfs scan [--help] DEV...\n"
		   "\n"
		   "Read every btree-node slot the member bitmaps mark on every device, keep\n"
		   "the nodes that validate, merge replicas and resolve overlapping copies\n"
		   "newest first (node seq, then journal seq), as fsck does when it has to\n"
		   "rebuild a btree. Prints one line per node:\n"
		   "  BTREE level L MIN..MAX seq S journal_seq J keys N replicas: PTR[, PTR...]\n"
		   "\"(range trimmed)\" marks a node whose range was cut back by a newer node.\n"
		   "Nothing is written.\n"
		   "\n"
		   "  -h, --help   show this help\n");
}

int cmd_scan(int argc, char **argv)
{
	int status = tool_help_only("scan", argc, argv, scan_usage);
	if (status >= 0)
		return status;
	unsigned nr = argc - optind;
	if (!nr) {
		fprintf(stderr, "bkfs scan: missing device\n");
		scan_usage(stderr);
		return EXIT_USAGE;
	}
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs scan: at most %d devices\n", BKFS_MAX_DEVS);
		return EXIT_USAGE;
	}
	char **paths = argv + optind;
	for (unsigned i = 0; i < nr; i++) {
		struct stat st;
		if (stat(paths[i], &st) < 0) {
			fprintf(stderr, "bkfs scan: %s: %s\n", paths[i], strerror(errno));
			return 1;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			fprintf(stderr, "bkfs scan: %s: not a regular file or block device\n", paths[i]);
			return 1;
		}
	}

	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	int ret = bkfs_open(paths, nr, BKFS_OPEN_RDONLY | BKFS_OPEN_DEGRADED | BKFS_OPEN_FSCK | BKFS_OPEN_NOREPLAY,
			    &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs scan: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return 1;
	}
	pb_exit(&err);

	struct scan_result r;
	ret = btree_node_scan(fs, &r);
	bkfs_close_nowrite(fs);
	if (ret) {
		fprintf(stderr, "bkfs scan: %s\n", bkfs_strerror(ret));
		return 1;
	}
	struct printbuf pb = PRINTBUF;
	for (size_t i = 0; i < r.nr; i++) {
		found_node_to_text(&pb, &r.n[i]);
		pb_printf(&pb, "\n");
		fputs(pb_str(&pb), stdout);
		pb_reset(&pb);
	}
	printf("%zu nodes (%llu slots read, %llu node copies validated, %llu I/O errors)\n", r.nr,
	       (unsigned long long)r.slots_read, (unsigned long long)r.candidates, (unsigned long long)r.io_errors);
	pb_exit(&pb);
	scan_result_free(&r);
	return fflush(stdout) ? 1 : 0;
}
