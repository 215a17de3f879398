/* cmd_ec.c - `bkfs erasure-code [--data N] [--parity P] DEV...`: turn full
 * user-data buckets into erasure-coded stripes (src/data/ec.h). */
#include "../data/ec.h"
#include "../fs/super.h"
#include "cmds.h"
#include "opts.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void ec_usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs erasure-code [OPTIONS] DEV...\n"
		"Erasure-code the data already written: buckets full of user data, on N\n"
		"distinct devices, become the data blocks of a stripe whose P parity blocks\n"
		"(Reed-Solomon) are written to P other devices. Extents in those buckets\n"
		"gain a stripe reference; a read that finds no good copy rebuilds the data\n"
		"from the other blocks. Buckets that hold cached data, belong to a stripe\n"
		"already or are still being filled are left as they are. When too few devices\n"
		"have such buckets left for a whole stripe, narrower stripes take the rest.\n"
		"The filesystem must\n"
		"not be mounted; pass every member device.\n"
		"\n"
		"  --data N     data blocks per stripe, 2..15 (default: devices - parity)\n"
		"  --parity P   parity blocks per stripe, 1..14 (default 1)\n"
		"  -h, --help   show this help\n"
		"\n"
		"N + P must not exceed the number of writable devices.\n"
		"Exit status: 0 success; 1 failure; 16 usage error.\n");
}

static int parse_count(const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || v > STRIPE_MAX_BLOCKS)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int ec_run(char **devs, int nr, unsigned nr_data, unsigned nr_parity)
{
	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	int ret = bkfs_open(devs, nr, 0, &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs erasure-code: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return 1;
	}
	pb_exit(&err);
	if (!nr_data)
		nr_data = fs->nr_devs > nr_parity ? fs->nr_devs - nr_parity : 0;
	if (nr_data < 2 || nr_parity < 1 || nr_data + nr_parity > fs->nr_devs ||
	    nr_data + nr_parity > STRIPE_MAX_BLOCKS) {
		fprintf(stderr, "bkfs erasure-code: a stripe of %u data + %u parity blocks needs at least 2 data "
			"blocks, 1 parity block and that many devices (the filesystem has %u)\n",
			nr_data, nr_parity, fs->nr_devs);
		bkfs_close_nowrite(fs);
		return 1;
	}
	struct ec_stats st;
	ret = ec_create_stripes(fs, nr_data, nr_parity, &st);
	if (ret == -BKFS_E_INVAL)
		fprintf(stderr, "bkfs erasure-code: not possible here (a device is missing or read-only, or "
			"buckets are larger than 65535 sectors)\n");
	else if (ret)
		fprintf(stderr, "bkfs erasure-code: %s\n", bkfs_strerror(ret));
	int cret = fs->error ? (bkfs_close_nowrite(fs), -BKFS_E_IO) : bkfs_close(fs);
	if (!ret && cret)
		fprintf(stderr, "bkfs erasure-code: closing the filesystem: %s\n", bkfs_strerror(cret));
	if (ret || cret)
		return 1;
	printf("%llu stripes of %u+%u blocks: %llu data buckets, %llu parity buckets, %llu keys referenced",
	       (unsigned long long)st.stripes, nr_data, nr_parity, (unsigned long long)st.data_buckets,
	       (unsigned long long)st.parity_buckets, (unsigned long long)st.keys);
	if (st.narrow)
		printf(" (%llu narrower, for the buckets left over)", (unsigned long long)st.narrow);
	if (st.groups_skipped)
		printf(" (%llu groups skipped)", (unsigned long long)st.groups_skipped);
	printf("\n");
	return 0;
}

int cmd_ec(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, 'd' },
		{ "parity", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned nr_data = 0, nr_parity = 1;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
		case 'p':
			if (parse_count(optarg, c == 'd' ? &nr_data : &nr_parity)) {
				fprintf(stderr, "bkfs erasure-code: --%s needs a number 1..%d\n", c == 'd' ? "data" : "parity",
					STRIPE_MAX_BLOCKS);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			ec_usage(stdout);
			return 0;
		default:
			tool_bad_option("erasure-code", c, argv);
			ec_usage(stderr);
			return EXIT_USAGE;
		}
	}
	int nr = argc - optind;
	if (nr < 1) {
		fprintf(stderr, "bkfs erasure-code: no device given\n");
		ec_usage(stderr);
		return EXIT_USAGE;
	}
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs erasure-code: at most %d devices\n", BKFS_MAX_DEVS);
		return EXIT_USAGE;
	}
	struct tool_locks locks;
	if (tool_lock_devices("erasure-code", argv + optind, nr, true, NULL, &locks))
		return 1;
	int status = ec_run(argv + optind, nr, nr_data, nr_parity);
	tool_unlock_devices(&locks);
	return status;
}
