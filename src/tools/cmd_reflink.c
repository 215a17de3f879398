/* cmd_reflink.c - bkfs reflink DEV... SRC DST: share a file's data with a
 * new or replaced file, offline (what cp --reflink=always does on a mount
 * of a filesystem that supports it). */
#include "../fs/fs.h"
#include "cmds.h"
#include "opts.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs reflink [OPTIONS] DEV... SRC DST\n"
		"Make DST a copy of the regular file SRC that shares SRC's data (a reflink):\n"
		"SRC's extents become indirect extents referenced by both files, so no data\n"
		"is copied and later writes to either file leave the other unchanged. SRC\n"
		"and DST are absolute paths inside the filesystem. DST is created (with\n"
		"SRC's mode and owner) if missing; an existing regular file is replaced; an\n"
		"existing directory receives a file named like SRC. The filesystem must not\n"
		"be mounted.\n"
		"\n"
		"  -h, --help   show this help\n"
		"\n"
		"Exit status: 0 success; 1 failure; 16 usage error.\n");
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

/* dst as a regular file to fill: its inum (created, found, or below a
 * directory); *existed says whether it must be emptied first */
static int resolve_dst(struct bkfs_fs *fs, const char *dst, const char *src, const struct bkfs_inode *si,
		       u64 *inum, bool *existed)
{
	struct bkfs_inode in;
	char *dir = strdup(dst);
	const char *name = base_name(dst);
	u64 parent;
	int ret;
	if (!dir)
		return -BKFS_E_NOMEM;
	*existed = false;
	ret = bkfs_lookup_path(fs, dst, inum, &in);
	if (!ret && S_ISDIR(in.mode)) {
		parent = *inum;
		name = base_name(src);
		ret = bkfs_lookup(fs, parent, name, inum, &in);
	} else if (ret == -BKFS_E_NOENT) {
		/* the parent directory: everything before the last '/' */
		char *slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = 0;
		else
			*slash = 0;
		if ((ret = bkfs_lookup_path(fs, dir, &parent, &in)))
			goto out;
		if (!S_ISDIR(in.mode)) {
			ret = -BKFS_E_NOTDIR;
			goto out;
		}
		ret = -BKFS_E_NOENT;
	}
	if (!ret) {
		*existed = true;
		if (!S_ISREG(in.mode))
			ret = S_ISDIR(in.mode) ? -BKFS_E_ISDIR : -BKFS_E_INVAL;
	} else if (ret == -BKFS_E_NOENT) {
		ret = bkfs_create(fs, parent, name, si->mode, si->uid, si->gid, 0, NULL, inum, NULL);
	}
out:
	free(dir);
	return ret;
}

static int reflink_run(char **devs, int nr, const char *src, const char *dst)
{
	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	int ret = bkfs_open(devs, nr, 0, &fs, &err);
	if (ret) {
		fprintf(stderr, "bkfs reflink: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		return 1;
	}
	pb_exit(&err);
	struct bkfs_inode si;
	u64 sinum, dinum;
	bool existed;
	const char *what = src;
	if (!(ret = bkfs_lookup_path(fs, src, &sinum, &si)) && !S_ISREG(si.mode))
		ret = S_ISDIR(si.mode) ? -BKFS_E_ISDIR : -BKFS_E_INVAL;
	if (!ret) {
		what = dst;
		ret = resolve_dst(fs, dst, src, &si, &dinum, &existed);
	}
	if (!ret && dinum == sinum) {
		fprintf(stderr, "bkfs reflink: %s and %s are the same file\n", src, dst);
		bkfs_close_nowrite(fs);
		return 1;
	}
	if (!ret && existed)
		ret = bkfs_file_truncate(fs, dinum, 0);
	if (!ret) {
		what = "sharing the data";
		ret = bkfs_reflink(fs, sinum, 0, dinum, 0, si.size);
	}
	if (ret) {
		/* what was committed is consistent: keep it */
		fprintf(stderr, "bkfs reflink: %s: %s\n", what, bkfs_strerror(ret));
		if (fs->error)
			bkfs_close_nowrite(fs);
		else
			bkfs_close(fs);
		return 1;
	}
	if ((ret = bkfs_close(fs))) {
		fprintf(stderr, "bkfs reflink: closing the filesystem: %s\n", bkfs_strerror(ret));
		return 1;
	}
	printf("%s -> %s: %llu bytes shared\n", src, dst, (unsigned long long)si.size);
	return 0;
}

int cmd_reflink(int argc, char **argv)
{
	int status = tool_help_only("reflink", argc, argv, usage);
	if (status >= 0)
		return status;
	int nr = argc - optind - 2;
	if (nr < 1) {
		fprintf(stderr, "bkfs reflink: %s\n", nr < 0 ? "no device, source or destination given" :
			"no device given");
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *src = argv[argc - 2], *dst = argv[argc - 1];
	if (src[0] != '/' || dst[0] != '/' || !dst[1]) {
		fprintf(stderr, "bkfs reflink: SRC and DST must be absolute paths inside the filesystem "
			"(DST not the root)\n");
		return EXIT_USAGE;
	}
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs reflink: at most %d devices\n", BKFS_MAX_DEVS);
		return 1;
	}
	struct tool_locks locks;
	if (tool_lock_devices("reflink", argv + optind, nr, true, NULL, &locks))
		return 1;
	status = reflink_run(argv + optind, nr, src, dst);
	tool_unlock_devices(&locks);
	return status;
}
