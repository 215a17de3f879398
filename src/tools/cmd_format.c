/* cmd_format.c - bkfs format [opts] DEV...: create a filesystem, optionally
 * filled from a directory tree (--source) without mounting. */
#include "../fs/fs.h"
#include "cmds.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs format [OPTIONS] DEV...\n"
		"Create a bkfs filesystem on one or more devices or image files.\n"
		"\n"
		"  --bucket-size SIZE      bucket size: a power of two, at least the btree node\n"
		"                          size, at most 64M (default: chosen from the device size)\n"
		"  --block-size SIZE       block size: a power of two, 512..64k (default 4k)\n"
		"  --btree-node-size SIZE  btree node size: a power of two, 4k..1M, at least the\n"
		"                          block size (default 64k)\n"
		"  --replicas N            copies of data and metadata, 1..4 and at most the\n"
		"                          number of devices (default 1)\n"
		"  --data-replicas N       copies of file data (default: --replicas)\n"
		"  --metadata-replicas N   copies of btree nodes, 1..4 and at most the number of\n"
		"                          devices, or 2 on one device (default: 2, or --replicas\n"
		"                          if higher). Each copy goes to another device; on one\n"
		"                          device both copies go to buckets far apart (DUP). A\n"
		"                          bad copy is read from the other; more than one copy\n"
		"                          lets the filesystem open with a device missing\n"
		"  -L, --label LABEL       filesystem label (at most 31 bytes)\n"
		"  -f, --force             overwrite an existing bkfs filesystem (never one that\n"
		"                          is mounted or in use by another bkfs process)\n"
		"  --source DIR            fill the new filesystem from the tree at DIR: files\n"
		"                          (holes kept), directories, symlinks, hard links, device\n"
		"                          nodes, FIFOs, sockets, modes, owners, times, xattrs\n"
		"  -h, --help              show this help\n"
		"\n"
		"SIZE is a number of bytes with an optional k, M or G suffix.\n"
		"Exit status: 0 success; 1 failure (nothing is written when the options or\n"
		"devices fail validation, or a device is mounted or in use by another bkfs\n"
		"process; with --source, 1 also when some source entries could not be\n"
		"read: they are reported and skipped); 16 usage error.\n");
}

static int size_arg(const char *opt, const char *val, u64 *out)
{
	if (parse_size(val, out)) {
		fprintf(stderr, "bkfs format: invalid size for --%s: '%s'\n", opt, val);
		return EXIT_USAGE;
	}
	if (!*out) {
		fprintf(stderr, "bkfs format: --%s must not be zero\n", opt);
		return 1;
	}
	return 0;
}

/* format, then fill from --source, with the devices locked */
static int format_run(char **devs, int nr, const struct format_opts *o, const char *source)
{
	struct printbuf err = PRINTBUF;
	int ret = bkfs_format(devs, nr, o, &err);
	if (ret) {
		fprintf(stderr, "bkfs format: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return 1;
	}
	if (!source) {
		pb_exit(&err);
		return 0;
	}

	/* deep trees keep one directory open per level */
	struct rlimit rl;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct bkfs_fs *fs;
	ret = bkfs_open(devs, nr, BKFS_OPEN_NOJOURNAL, &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs format: opening the new filesystem: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return 1;
	}
	struct bkfs_import_stats st;
	ret = bkfs_import(fs, source, "bkfs format", &st);
	if (ret) {
		fprintf(stderr, "bkfs format: importing %s: %s\n", source, bkfs_strerror(ret));
		bkfs_close_nowrite(fs);
		pb_exit(&err);
		return 1;
	}
	ret = bkfs_close(fs);
	pb_exit(&err);
	if (ret) {
		fprintf(stderr, "bkfs format: writing the filesystem: %s\n", bkfs_strerror(ret));
		return 1;
	}
	printf("imported %llu files, %llu directories, %llu symlinks, %llu special files, "
	       "%llu hard links, %llu xattrs, %llu bytes",
	       (unsigned long long)st.files, (unsigned long long)st.dirs, (unsigned long long)st.symlinks,
	       (unsigned long long)st.specials, (unsigned long long)st.hardlinks,
	       (unsigned long long)st.xattrs, (unsigned long long)st.bytes);
	if (st.errors)
		printf("; %llu entries could not be read (see above)", (unsigned long long)st.errors);
	printf("\n");
	return st.errors ? 1 : 0;
}

int cmd_format(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bucket-size", required_argument, NULL, 'b' },
		{ "block-size", required_argument, NULL, 'B' },
		{ "btree-node-size", required_argument, NULL, 'n' },
		{ "replicas", required_argument, NULL, 'r' },
		{ "data-replicas", required_argument, NULL, 'D' },
		{ "metadata-replicas", required_argument, NULL, 'M' },
		{ "label", required_argument, NULL, 'L' },
		{ "force", no_argument, NULL, 'f' },
		{ "source", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct format_opts o = { 0 };
	const char *source = NULL;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fhL:", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			if ((ret = size_arg("bucket-size", optarg, &o.bucket_size)))
				return ret;
			break;
		case 'B':
			if ((ret = size_arg("block-size", optarg, &o.block_size)))
				return ret;
			break;
		case 'n':
			if ((ret = size_arg("btree-node-size", optarg, &o.btree_node_size)))
				return ret;
			break;
		case 'r':
		case 'D':
		case 'M': {
			const char *name = c == 'r' ? "replicas" : c == 'D' ? "data-replicas" : "metadata-replicas";
			char *end;
			errno = 0;
			unsigned long v = strtoul(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-' || v > 255) {
				fprintf(stderr, "bkfs format: invalid --%s: '%s'\n", name, optarg);
				return EXIT_USAGE;
			}
			if (!v) {
				fprintf(stderr, "bkfs format: --%s must be at least 1\n", name);
				return 1;
			}
			*(c == 'r' ? &o.replicas : c == 'D' ? &o.data_replicas : &o.metadata_replicas) = v;
			break;
		}
		case 'L':
			o.label = optarg;
			break;
		case 'f':
			o.force = true;
			break;
		case 's':
			source = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case ':':
			fprintf(stderr, "bkfs format: option '%s' needs an argument\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, "bkfs format: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "bkfs format: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	int nr = argc - optind;
	char **devs = argv + optind;
	if (nr < 1) {
		fprintf(stderr, "bkfs format: no device given\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs format: at most %d devices\n", BKFS_MAX_DEVS);
		return 1;
	}
	for (int i = 0; i < nr; i++) {
		struct stat st;
		if (stat(devs[i], &st)) {
			fprintf(stderr, "bkfs format: %s: %s\n", devs[i], strerror(errno));
			return 1;
		}
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			fprintf(stderr, "bkfs format: %s: not a regular file or block device\n", devs[i]);
			return 1;
		}
	}
	if (source) {
		struct stat st;
		if (stat(source, &st)) {
			fprintf(stderr, "bkfs format: --source %s: %s\n", source, strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			fprintf(stderr, "bkfs format: --source %s: not a directory\n", source);
			return 1;
		}
	}

	/* held from the format to the end of the import: nothing else may open
	 * the new filesystem in between */
	struct tool_locks locks;
	if (tool_lock_devices("format", devs, nr, true, NULL, &locks))
		return 1;
	ret = format_run(devs, nr, &o, source);
	tool_unlock_devices(&locks);
	return ret;
}
