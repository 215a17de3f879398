/* cmd_extract.c - bkfs extract DEV... DIR: copy the whole tree out. */
#include "../fs/fs.h"
#include "cmds.h"
#include "opts.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs extract [OPTIONS] DEV... DIR\n"
		"Copy the whole tree of a bkfs filesystem into DIR (created if missing; an\n"
		"existing DIR must be empty): files with their holes, directories, symlinks,\n"
		"hard links, device nodes, FIFOs, sockets, xattrs, owners (as root), modes and\n"
		"times. The filesystem is opened read-only; a multi-device filesystem with\n"
		"replicas can be read with devices missing (pass the ones present).\n"
		"\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 success; 1 failure (objects that could not be read or\n"
		"recreated are reported with their path and skipped); 16 usage error.\n");
}

int cmd_extract(int argc, char **argv)
{
	int status = tool_help_only("extract", argc, argv, usage);
	if (status >= 0)
		return status;
	int nr = argc - optind - 1;
	if (nr < 1) {
		fprintf(stderr, "bkfs extract: %s\n", nr < 0 ? "no device or directory given" : "no directory given");
		usage(stderr);
		return EXIT_USAGE;
	}
	char **devs = argv + optind;
	const char *dst = argv[argc - 1];
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs extract: at most %d devices\n", BKFS_MAX_DEVS);
		return 1;
	}

	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	int ret = bkfs_open(devs, nr, BKFS_OPEN_RDONLY | BKFS_OPEN_DEGRADED, &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs extract: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return 1;
	}
	pb_exit(&err);
	unsigned missing = 0;
	for (unsigned i = 0; i < fs->nr_devs; i++)
		missing += !fs->devs[i].bd;
	if (missing)
		fprintf(stderr, "bkfs extract: %u of %u devices missing: reading degraded\n", missing, fs->nr_devs);

	struct bkfs_extract_stats st;
	ret = bkfs_extract(fs, dst, "bkfs extract", &st);
	bkfs_close_nowrite(fs);
	if (ret) {
		if (ret != -BKFS_E_INVAL && ret != -BKFS_E_NOTEMPTY)
			fprintf(stderr, "bkfs extract: %s\n", bkfs_strerror(ret));
		return 1;
	}
	printf("extracted %llu files, %llu directories, %llu symlinks, %llu special files, "
	       "%llu hard links, %llu xattrs, %llu bytes",
	       (unsigned long long)st.files, (unsigned long long)st.dirs, (unsigned long long)st.symlinks,
	       (unsigned long long)st.specials, (unsigned long long)st.hardlinks,
	       (unsigned long long)st.xattrs, (unsigned long long)st.bytes);
	if (st.errors)
		printf("; %llu problems (see above)", (unsigned long long)st.errors);
	printf("\n");
	return st.errors ? 1 : 0;
}
