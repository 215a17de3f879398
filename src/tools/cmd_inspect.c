/* cmd_inspect.c - read-only inspection commands: show-super, list, usage.
 * Nothing here writes to a device: filesystems are opened read-only and
 * degraded, and every structure goes through the engine's validated reads. */
#include "cmds.h"
#include "opts.h"
#include "../fs/super.h"
#include "../btree/iter.h"
#include "../btree/node.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- shared helpers ---- */

static void print_pb(FILE *f, struct printbuf *pb)
{
	fputs(pb_str(pb), f);
	pb_reset(pb);
}

/* Check that path names something we can read as a device; prints
 * "bkfs CMD: PATH: reason" and returns false if not. */
static bool check_path(const char *cmd, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "bkfs %s: %s: %s\n", cmd, path, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		fprintf(stderr, "bkfs %s: %s: not a regular file or block device\n", cmd, path);
		return false;
	}
	return true;
}

/* Open a filesystem read-only (missing devices allowed). With tolerant set,
 * a filesystem whose journal or allocation info cannot be read is opened
 * again in the checker's tolerant mode (a warning is printed and *damaged
 * set) so that whatever is readable can still be inspected. */
static int open_ro(const char *cmd, char **paths, unsigned nr, bool tolerant, struct bkfs_fs **fs,
		   bool *damaged)
{
	struct printbuf err = PRINTBUF;
	unsigned flags = BKFS_OPEN_RDONLY | BKFS_OPEN_DEGRADED;
	*fs = NULL;
	if (damaged)
		*damaged = false;
	for (unsigned i = 0; i < nr; i++)
		if (!check_path(cmd, paths[i]))
			return 1;
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs %s: at most %d devices\n", cmd, BKFS_MAX_DEVS);
		return 1;
	}
	int ret = bkfs_open(paths, nr, flags, fs, &err);
	if (ret && tolerant && (ret == -BKFS_E_CSUM || ret == -BKFS_E_CORRUPT || ret == -BKFS_E_IO)) {
		struct printbuf err2 = PRINTBUF;
		if (!bkfs_open(paths, nr, flags | BKFS_OPEN_FSCK, fs, &err2)) {
			fprintf(stderr, "bkfs %s: warning: %s; showing what can be read\n", cmd,
				err.len ? pb_str(&err) : bkfs_strerror(ret));
			if (damaged)
				*damaged = true;
			ret = 0;
		}
		pb_exit(&err2);
	}
	if (ret) {
		fprintf(stderr, "bkfs %s: %s\n", cmd, err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		*fs = NULL;
		return 1;
	}
	pb_exit(&err);
	return 0;
}

static void btree_names(FILE *f)
{
	fprintf(f, "valid btrees:");
	for (unsigned i = 0; i < BTREE_ID_NR; i++)
		fprintf(f, " %s", btree_id_str(i));
	fprintf(f, "\n");
}

/* ---- show-super ---- */

static void show_super_usage(FILE *f)
{
	fprintf(f, "usage: bkfs show-super [--help] DEV\n"
		   "\n"
		   "Print the newest valid superblock copy of DEV and how many of its copies\n"
		   "are valid. Needs no mount and works on an unclean or damaged filesystem as\n"
		   "long as one copy is intact.\n"
		   "\n"
		   "  -h, --help   show this help\n");
}

int cmd_show_super(int argc, char **argv)
{
	int status = tool_help_only("show-super", argc, argv, show_super_usage);
	if (status >= 0)
		return status;
	if (argc - optind != 1) {
		fprintf(stderr, "bkfs show-super: %s\n", argc - optind ? "exactly one device expected" : "missing device");
		show_super_usage(stderr);
		return EXIT_USAGE;
	}
	const char *path = argv[optind];
	if (!check_path("show-super", path))
		return 1;

	struct blockdev *bd;
	int ret = file_dev_open(path, BD_RDONLY, &bd);
	if (ret) {
		fprintf(stderr, "bkfs show-super: %s: %s\n", path,
			ret == -BKFS_E_IO || ret == -BKFS_E_NOENT ? strerror(errno) : bkfs_strerror(ret));
		return 1;
	}
	struct bkfs_sb *sb = xcalloc(1, sizeof(*sb));
	if (!sb) {
		bd_close(bd);
		fprintf(stderr, "bkfs show-super: %s\n", bkfs_strerror(-BKFS_E_NOMEM));
		return 1;
	}
	struct printbuf pb = PRINTBUF;
	unsigned ok = 0;
	ret = bkfs_read_super(bd, sb, &ok, &pb);
	bd_close(bd);
	if (ret) {
		fprintf(stderr, "bkfs show-super: %s\n", pb.len ? pb_str(&pb) : bkfs_strerror(ret));
		pb_exit(&pb);
		free(sb);
		return 1;
	}
	pb_reset(&pb);
	sb_to_text(&pb, sb);
	u64 offs[3];
	unsigned nr_copies = 0;
	if (sb->dev_idx < BKFS_MAX_DEVS)
		nr_copies = sb_copy_offsets(sb, &sb->members[sb->dev_idx], offs);
	if (nr_copies)
		pb_printf(&pb, "valid copies:      %u of %u\n", ok, nr_copies);
	else
		pb_printf(&pb, "valid copies:      %u\n", ok);
	print_pb(stdout, &pb);
	pb_exit(&pb);
	free(sb);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "bkfs show-super: writing output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

/* ---- list ---- */

static void list_usage(FILE *f)
{
	fprintf(f, "usage: bkfs list [-b BTREE] [-l LEVEL] [-s START] [-e END] [-v] DEV...\n"
		   "\n"
		   "Print btree keys, one per line. The filesystem is opened read-only; an\n"
		   "unclean journal is replayed in memory only.\n"
		   "\n"
		   "  -b, --btree BTREE   only this btree (default: every btree, each under a\n"
		   "                      \"btree NAME:\" header)\n"
		   "  -l, --level LEVEL   tree level (default 0 = leaf keys; 1 and up print the\n"
		   "                      interior pointer keys)\n"
		   "  -s, --start POS     first position (default POS_MIN)\n"
		   "  -e, --end POS       last position, inclusive (default POS_MAX)\n"
		   "  -v, --verbose       also print a header for every node entered\n"
		   "  -h, --help          show this help\n"
		   "\n"
		   "POS is INODE:OFFSET[:SNAPSHOT], POS_MIN, POS_MAX or a plain INODE (as START:\n"
		   "the inode's first position, as END: its last).\n");
	btree_names(f);
}

static bool parse_u64(const char *s, u64 *out)
{
	char *end;
	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) ? 16 : 10);
	if (errno || *end || end == s)
		return false;
	*out = v;
	return true;
}

/* Parse a position; a plain INODE means (INODE, 0, 0) for a start and
 * (INODE, max, max) for an end. */
static bool parse_pos(const char *arg, bool is_end, struct bpos *out)
{
	if (!strcasecmp(arg, "POS_MIN") || !strcasecmp(arg, "min")) {
		*out = POS_MIN;
		return true;
	}
	if (!strcasecmp(arg, "POS_MAX") || !strcasecmp(arg, "max")) {
		*out = POS_MAX;
		return true;
	}
	char buf[128];
	if (strlen(arg) >= sizeof(buf))
		return false;
	strcpy(buf, arg);
	char *f[4];
	unsigned n = 0;
	char *p = buf;
	while (n < 4) {
		f[n++] = p;
		char *c = strchr(p, ':');
		if (!c)
			break;
		*c = 0;
		p = c + 1;
	}
	if (n > 3 || strchr(p, ':'))
		return false;
	u64 v[3] = { 0 };
	for (unsigned i = 0; i < n; i++)
		if (!parse_u64(f[i], &v[i]))
			return false;
	if (n == 3 && v[2] > UINT32_MAX)
		return false;
	struct bpos pos = POS(v[0], v[1]);
	pos.snapshot = (u32)v[2];
	if (is_end) {
		if (n == 1) {
			pos.offset = UINT64_MAX;
			pos.snapshot = UINT32_MAX;
		} else if (n == 2) {
			pos.snapshot = UINT32_MAX;
		}
	}
	*out = pos;
	return true;
}

static void node_info_to_text(struct printbuf *out, struct btree *b)
{
	pb_printf(out, "node btree %s level %u seq %llu journal_seq %llu nr_keys %u min_key ",
		  btree_id_str(b->btree_id), b->level, (unsigned long long)b->seq,
		  (unsigned long long)b->journal_seq, b->nr_keys);
	bpos_to_text(out, b->min_key);
	pb_printf(out, " max_key ");
	bpos_to_text(out, b->max_key);
	if (b->dirty)
		pb_printf(out, " dirty");
	pb_printf(out, " loc:");
	unsigned np = b->has_loc ? MIN((unsigned)b->ptr.nr_ptrs, (unsigned)BKFS_MAX_REPLICAS) : 0;
	for (unsigned i = 0; i < np; i++) {
		pb_printf(out, i ? ", " : " ");
		ptr_to_text(out, &b->ptr.ptrs[i]);
	}
	if (!np)
		pb_printf(out, " none (in memory only)");
}

/* Print the keys of one btree; returns 0 or a (negative) error. */
static int list_btree(struct bkfs_fs *fs, unsigned id, unsigned level, struct bpos start,
		      struct bpos end, bool verbose)
{
	struct printbuf pb = PRINTBUF;
	struct btree_iter it;
	struct bkey *k;
	u64 last_seq = 0;
	bool have_node = false;
	int ret;

	if (verbose) {
		const struct btree_root *r = &fs->roots[id];
		pb_printf(&pb, "root seq %llu level %u%s\n", (unsigned long long)r->ptr.seq, r->ptr.level,
			  r->error ? " (unreadable)" : "");
		print_pb(stdout, &pb);
	}
	btree_iter_init(&it, fs, id, level, start);
	while (!(btree_cache_trim(fs), ret = btree_iter_peek(&it, &k)) && k) {
		if (bpos_cmp(k->p, end) > 0)
			break;
		if (verbose) {
			struct btree *b = btree_iter_node(&it);
			if (b && (!have_node || b->seq != last_seq)) {
				node_info_to_text(&pb, b);
				pb_printf(&pb, "\n");
				last_seq = b->seq;
				have_node = true;
			}
		}
		bkey_to_text(&pb, k);
		pb_printf(&pb, "\n");
		print_pb(stdout, &pb);
		btree_iter_advance(&it);
	}
	if (ret) {
		fflush(stdout);
		pb_printf(&pb, "bkfs list: btree %s level %u: reading at ", btree_id_str(id), level);
		bpos_to_text(&pb, it.pos);
		pb_printf(&pb, ": %s\n", bkfs_strerror(ret));
		print_pb(stderr, &pb);
	}
	pb_exit(&pb);
	return ret;
}

int cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "btree", required_argument, NULL, 'b' },
		{ "level", required_argument, NULL, 'l' },
		{ "start", required_argument, NULL, 's' },
		{ "end", required_argument, NULL, 'e' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int btree = -1, c;
	unsigned level = 0;
	struct bpos start = POS_MIN, end = POS_MAX;
	bool verbose = false;
	u64 v;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":b:l:s:e:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			btree = btree_id_parse(optarg);
			if (btree < 0 || btree >= BTREE_ID_NR) {
				fprintf(stderr, "bkfs list: unknown btree '%s'\n", optarg);
				btree_names(stderr);
				return EXIT_USAGE;
			}
			break;
		case 'l':
			if (!parse_u64(optarg, &v) || v >= BTREE_MAX_DEPTH) {
				fprintf(stderr, "bkfs list: bad level '%s' (0 to %d)\n", optarg, BTREE_MAX_DEPTH - 1);
				return EXIT_USAGE;
			}
			level = v;
			break;
		case 's':
		case 'e':
			if (!parse_pos(optarg, c == 'e', c == 's' ? &start : &end)) {
				fprintf(stderr, "bkfs list: bad position '%s' (INODE:OFFSET[:SNAPSHOT], "
					"INODE, POS_MIN or POS_MAX)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'v':
			verbose = true;
			break;
		case 'h':
			list_usage(stdout);
			return 0;
		default:
			tool_bad_option("list", c, argv);
			list_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "bkfs list: missing device\n");
		list_usage(stderr);
		return EXIT_USAGE;
	}
	if (bpos_cmp(start, end) > 0) {
		fprintf(stderr, "bkfs list: start is after end\n");
		return EXIT_USAGE;
	}

	struct bkfs_fs *fs;
	bool damaged;
	if (open_ro("list", argv + optind, argc - optind, true, &fs, &damaged))
		return 1;
	int status = damaged;
	for (unsigned id = 0; id < BTREE_ID_NR; id++) {
		if (btree >= 0 && id != (unsigned)btree)
			continue;
		if (btree < 0)
			printf("btree %s:\n", btree_id_str(id));
		if (list_btree(fs, id, level, start, end, verbose))
			status = 1;
	}
	bkfs_close_nowrite(fs);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "bkfs list: writing output: %s\n", strerror(errno));
		status = 1;
	}
	return status;
}

/* ---- usage ---- */

static void usage_usage(FILE *f)
{
	fprintf(f, "usage: bkfs usage [--help] DEV...\n"
		   "\n"
		   "Print the filesystem's accounting: sizes, inode count, sectors per replica\n"
		   "set, buckets and sectors per device and data type, btree sizes. The\n"
		   "filesystem is opened read-only.\n"
		   "\n"
		   "  -h, --help   show this help\n");
}

static void human_size(char *buf, size_t len, u64 bytes)
{
	static const char units[] = "BKMGTPE";
	double v = bytes;
	unsigned u = 0;
	while (v >= 1024 && u < sizeof(units) - 2) {
		v /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
}

static void usage_to_text(struct printbuf *out, struct bkfs_fs *fs)
{
	const struct bkfs_sb *sb = &fs->sb;
	struct alloc_state *as = ALLOC(fs);
	u64 bucket_bytes = (u64)sb->bucket_size << SECTOR_SHIFT;
	u64 total = 0;
	char h[32];
	unsigned nr_devs = MIN((unsigned)sb->nr_devices, (unsigned)BKFS_MAX_DEVS);

	for (unsigned d = 0; d < nr_devs; d++)
		total += sb->members[d].nbuckets * bucket_bytes;

	pb_printf(out, "Filesystem: ");
	for (unsigned i = 0; i < 16; i++)
		pb_printf(out, "%02x%s", sb->uuid[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
	pb_printf(out, "\n");
	human_size(h, sizeof(h), total);
	pb_printf(out, "Size:             %llu bytes (%s)\n", (unsigned long long)total, h);
	pb_printf(out, "Block size:       %u bytes\n", sb->block_size);
	pb_printf(out, "Bucket size:      %llu bytes (%u sectors)\n", (unsigned long long)bucket_bytes,
		  sb->bucket_size);
	pb_printf(out, "Btree node size:  %u bytes\n", sb->btree_node_size << SECTOR_SHIFT);
	pb_printf(out, "Replicas:         data %u metadata %u\n", sb->data_replicas, sb->metadata_replicas);
	pb_printf(out, "Devices:          %u\n", sb->nr_devices);
	for (unsigned d = 0; d < nr_devs; d++) {
		const struct bkfs_member *m = &sb->members[d];
		struct blockdev *bd = d < fs->nr_devs ? fs->devs[d].bd : NULL;
		human_size(h, sizeof(h), m->nbuckets * bucket_bytes);
		pb_printf(out, "  dev %u: %s nr_buckets %llu first_bucket %u size %s\n", d,
			  bd && bd->path ? bd->path : "(missing)", (unsigned long long)m->nbuckets,
			  m->first_bucket, h);
	}

	size_t nr = as ? as->nr_acct : 0;
	struct acct_entry *e = as ? as->acct : NULL;

	pb_printf(out, "\nInodes:\n");
	bool any = false;
	for (size_t i = 0; i < nr; i++)
		if (e[i].pos.inode == ACCT_nr_inodes) {
			pb_printf(out, "  ");
			acct_to_text(out, fs, e[i].pos, e[i].v);
			pb_printf(out, "\n");
			any = true;
		}
	if (!any)
		pb_printf(out, "  nr_inodes: 0\n");

	pb_printf(out, "\nReplicas (sectors per data type and device set):\n");
	any = false;
	for (unsigned t = 0; t <= 255; t++)
		for (size_t i = 0; i < nr; i++)
			if (e[i].pos.inode == ACCT_replicas && (e[i].pos.offset >> 56) == t) {
				pb_printf(out, "  ");
				acct_to_text(out, fs, e[i].pos, e[i].v);
				pb_printf(out, "\n");
				any = true;
			}
	if (!any)
		pb_printf(out, "  none\n");

	for (unsigned d = 0; d < nr_devs; d++) {
		s64 sum[3] = { 0 };
		pb_printf(out, "\nDevice %u:\n", d);
		pb_printf(out, "  %-14s %12s %14s %14s\n", "data type", "buckets", "sectors", "fragmented");
		for (unsigned t = 0; t < DATA_NR; t++) {
			struct acct_entry *a = NULL;
			for (size_t i = 0; i < nr; i++)
				if (e[i].pos.inode == ACCT_dev_data_type && e[i].pos.offset == (((u64)d << 8) | t))
					a = &e[i];
			s64 v[3] = { 0 };
			if (a)
				memcpy(v, a->v, sizeof(v));
			for (unsigned j = 0; j < 3; j++)
				sum[j] += v[j];
			pb_printf(out, "  %-14s %12lld %14lld %14lld\n", data_type_str(t),
				  (long long)v[0], (long long)v[1], (long long)v[2]);
		}
		pb_printf(out, "  %-14s %12lld %14lld %14lld\n", "total",
			  (long long)sum[0], (long long)sum[1], (long long)sum[2]);
		if ((u64)sum[0] != sb->members[d].nbuckets)
			pb_printf(out, "  (bucket total differs from nr_buckets %llu)\n",
				  (unsigned long long)sb->members[d].nbuckets);
	}

	pb_printf(out, "\nBtrees:\n");
	any = false;
	for (size_t i = 0; i < nr; i++)
		if (e[i].pos.inode == ACCT_btree) {
			pb_printf(out, "  ");
			acct_to_text(out, fs, e[i].pos, e[i].v);
			pb_printf(out, "\n");
			any = true;
		}
	if (!any)
		pb_printf(out, "  none\n");

	/* everything else: reservations, reflink, compression, unknown counters */
	any = false;
	for (size_t i = 0; i < nr; i++) {
		u64 t = e[i].pos.inode;
		bool shown = t == ACCT_nr_inodes || t == ACCT_replicas || t == ACCT_btree ||
			     (t == ACCT_dev_data_type && (e[i].pos.offset >> 8) < nr_devs &&
			      (e[i].pos.offset & 0xff) < DATA_NR);
		if (shown)
			continue;
		if (!any)
			pb_printf(out, "\nOther counters:\n");
		pb_printf(out, "  ");
		acct_to_text(out, fs, e[i].pos, e[i].v);
		pb_printf(out, "\n");
		any = true;
	}
}

int cmd_usage(int argc, char **argv)
{
	int status = tool_help_only("usage", argc, argv, usage_usage);
	if (status >= 0)
		return status;
	if (optind >= argc) {
		fprintf(stderr, "bkfs usage: missing device\n");
		usage_usage(stderr);
		return EXIT_USAGE;
	}
	struct bkfs_fs *fs;
	if (open_ro("usage", argv + optind, argc - optind, false, &fs, NULL))
		return 1;
	struct printbuf pb = PRINTBUF;
	usage_to_text(&pb, fs);
	print_pb(stdout, &pb);
	pb_exit(&pb);
	bkfs_close_nowrite(fs);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "bkfs usage: writing output: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}
