/* cmd_mount.c - bkfs mount [-f] [-d] [-o OPTS] DEV[:DEV...] DIR: open the
 * filesystem, then hand it to the FUSE adapter (src/mount/fuse.c). The FUSE
 * loop is single-threaded: the engine serializes every call anyway. */
#include "../mount/fuse.h"
#include "../mount/fuse_wire.h"
#include "../fs/fs.h"
#include "cmds.h"
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs mount [-f] [-d] [-o OPTIONS] DEV[:DEV...] DIR\n"
		"Mount a bkfs filesystem read-write at DIR with FUSE. The devices of a\n"
		"multi-device filesystem are joined with ':'. Without -f the command returns\n"
		"once the mount is up and the filesystem is served by a daemon. Unmount with\n"
		"'fusermount3 -u DIR' (or umount DIR): the filesystem is then checkpointed and\n"
		"marked clean. fsync makes data durable; other writes are journaled and become\n"
		"durable at the next timed journal flush (flush_ms, 1 s by default).\n"
		"In the background the mount runs generation GC and copying GC, so buckets\n"
		"are reused without unmounting.\n"
		"\n"
		"While a device is mounted read-write no other bkfs process may use it:\n"
		"every other bkfs command (fsck -n and list too) refuses it with \"mounted\n"
		"or in use by another bkfs process\". A read-only mount shares the device\n"
		"with other readers, and is refused while a writer holds it.\n"
		"\n"
		"Files unlinked while open live on (nlink 0, on the orphan list) until\n"
		"closed; after a crash the next read-write mount removes them. If a device\n"
		"write fails (an I/O error, or the disk under an image file is full), the\n"
		"mount goes read-only at once and says why on stderr: changes then fail with\n"
		"EROFS, fsync with EIO, reads go on. Writes and new files stop with ENOSPC only when the space statfs\n"
		"offered is really full: the allocator keeps small reserves (1/64 of each\n"
		"device, at least 8 buckets, twice over) for copying GC and for the btree\n"
		"nodes of deletions and checkpoints.\n"
		"\n"
		"  -f            stay in the foreground\n"
		"  -d            FUSE debug output (implies -f)\n"
		"  -o OPTIONS    comma-separated mount options; bkfs's own:\n"
		"                  ro        read-only: nothing is written, not even journal replay\n"
		"                  degraded  allow missing devices (readable when replicated)\n"
		"                  flush_ms=N  flush the journal N ms after a change (default 1000;\n"
		"                            0: only fsync and full journal entries make data durable)\n"
		"                  poll_us=N after a request, wait for the next one polling for\n"
		"                            N microseconds before sleeping (default 50, 0..1000;\n"
		"                            0: never poll); off by itself while other work\n"
		"                            wants the CPU\n"
		"                  discard   give freed buckets back to the device (punch holes\n"
		"                            in image files, BLKDISCARD on block devices);\n"
		"                            default on for image files, off for block devices\n"
		"                  nodiscard do not\n"
		"                  nogc      no background generation GC or copying GC (they still\n"
		"                            run when an allocation would otherwise fail)\n"
		"                  gc_continuous  debug: run the background GC over and over\n"
		"                anything else goes to FUSE (allow_other, max_read=N, ...)\n"
		"  -h, --help    show this help\n"
		"\n"
		"Exit status: 0 after a clean unmount; 1 failure (device cannot be opened or\n"
		"is in use, its root directory cannot be read (run bkfs fsck), mount failed,\n"
		"error while closing); 2 a device write failed while mounted (the mount was\n"
		"read-only since; run bkfs fsck); 16 usage error.\n");
}

/* append s to the comma-separated list *list, escaping ',' and '\' when esc */
static int opt_add(char **list, const char *s, bool esc)
{
	size_t old = *list ? strlen(*list) : 0, n = strlen(s);
	char *p = realloc(*list, old + 1 + 2 * n + 1);
	if (!p)
		return -1;
	char *o = p + old;
	if (old)
		*o++ = ',';
	for (size_t i = 0; i < n; i++) {
		if (esc && (s[i] == ',' || s[i] == '\\'))
			*o++ = '\\';
		*o++ = s[i];
	}
	*o = 0;
	*list = p;
	return 0;
}

/* tok is "name=N": 1 and *v if 0 <= N <= max, -1 (said why) if not; 0 if
 * tok is another option */
static int uint_opt(const char *tok, const char *name, unsigned long max, unsigned long *v)
{
	size_t n = strlen(name);
	const char *val = tok + n + 1;
	char *end;
	if (strncmp(tok, name, n) || tok[n] != '=')
		return 0;
	*v = strtoul(val, &end, 10);
	if (*val < '0' || *val > '9' || *end || *v > max) {
		fprintf(stderr, "bkfs mount: bad %s '%s' (0..%lu)\n", name, val, max);
		return -1;
	}
	return 1;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool foreground = false, debug = false, ro = false, degraded = false;
	struct bg_opts bgo = { .flush_ms = BG_FLUSH_MS_DEFAULT, .gc = true };
	int discard = -1; /* default: on for image files, off for block devices */
	char *fuse_opts = NULL, *devbuf = NULL;
	int c, ret = 1;
	struct tool_locks locks = { .nr = 0 };
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fdo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'd':
			debug = foreground = true;
			break;
		case 'o': {
			char *dup = strdup(optarg), *save = NULL;
			if (!dup)
				goto nomem;
			for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				unsigned long v;
				int flush = uint_opt(tok, "flush_ms", 3600000, &v);
				int poll = flush ? 0 : uint_opt(tok, "poll_us", 1000, &v);
				if (flush < 0 || poll < 0) {
					free(dup);
					free(fuse_opts);
					return EXIT_USAGE;
				}
				if (flush)
					bgo.flush_ms = v;
				else if (poll)
					fuse_wire_set_poll_us((unsigned)v);
				else if (!strcmp(tok, "ro"))
					ro = true;
				else if (!strcmp(tok, "rw"))
					ro = false;
				else if (!strcmp(tok, "degraded"))
					degraded = true;
				else if (!strcmp(tok, "discard"))
					discard = 1;
				else if (!strcmp(tok, "nodiscard"))
					discard = 0;
				else if (!strcmp(tok, "nogc"))
					bgo.gc = false;
				else if (!strcmp(tok, "gc_continuous"))
					bgo.gc_continuous = true;
				else if (opt_add(&fuse_opts, tok, false)) {
					free(dup);
					goto nomem;
				}
			}
			free(dup);
			break;
		}
		case 'h':
			usage(stdout);
			free(fuse_opts);
			return 0;
		case ':':
			fprintf(stderr, "bkfs mount: option '-%c' needs an argument\n", optopt);
			usage(stderr);
			free(fuse_opts);
			return EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, "bkfs mount: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "bkfs mount: unknown option '%s'\n", argv[optind - 1]);
			usage(stderr);
			free(fuse_opts);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "bkfs mount: %s\n",
			argc - optind < 1 ? "no device or directory given" :
			argc - optind < 2 ? "no directory given" : "too many arguments (join devices with ':')");
		usage(stderr);
		free(fuse_opts);
		return EXIT_USAGE;
	}
	const char *devspec = argv[optind], *dir = argv[optind + 1];

	/* the device list */
	char *devs[BKFS_MAX_DEVS], *save = NULL;
	unsigned nr = 0;
	if (!(devbuf = strdup(devspec)))
		goto nomem;
	for (char *tok = strtok_r(devbuf, ":", &save); tok; tok = strtok_r(NULL, ":", &save)) {
		if (nr == BKFS_MAX_DEVS) {
			fprintf(stderr, "bkfs mount: at most %d devices\n", BKFS_MAX_DEVS);
			goto out;
		}
		devs[nr++] = tok;
	}
	if (!nr) {
		fprintf(stderr, "bkfs mount: no device given\n");
		free(devbuf);
		free(fuse_opts);
		return EXIT_USAGE;
	}
	struct stat st;
	if (stat(dir, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "bkfs mount: %s: %s\n", dir, stat(dir, &st) ? strerror(errno) : "not a directory");
		goto out;
	}

	/* a read-write mount excludes every other bkfs process, read-only ones
	 * share with other readers: the locks live as long as the serving
	 * process (the daemon inherits them) */
	if (tool_lock_devices("mount", devs, nr, !ro, NULL, &locks))
		goto out;

	struct printbuf err = PRINTBUF;
	struct bkfs_fs *fs;
	unsigned flags = (ro ? BKFS_OPEN_RDONLY : 0) | (degraded ? BKFS_OPEN_DEGRADED : 0);
	if (discard < 0) {
		discard = 1;
		for (unsigned i = 0; i < nr; i++)
			if (!stat(devs[i], &st) && !S_ISREG(st.st_mode))
				discard = 0;
	}
	if (discard)
		flags |= BKFS_OPEN_DISCARD;
	if ((ret = bkfs_open(devs, nr, flags, &fs, &err))) {
		fprintf(stderr, "bkfs mount: %s\n", err.len ? pb_str(&err) : bkfs_strerror(ret));
		pb_exit(&err);
		ret = 1;
		goto out;
	}
	pb_exit(&err);
	/* a mount whose root cannot be read would only answer EIO */
	struct bkfs_inode root;
	if ((ret = bkfs_inode_find(fs, BKFS_ROOT_INO, &root)) || !S_ISDIR(root.mode)) {
		fprintf(stderr, "bkfs mount: the root directory cannot be read (%s): run bkfs fsck\n",
			ret ? bkfs_strerror(ret) : "not a directory");
		bkfs_close_nowrite(fs);
		ret = 1;
		goto out;
	}

	/* libfuse's arguments */
	char *mopts = NULL, *fsname = NULL;
	if (opt_add(&fsname, devspec, true) || !(mopts = malloc(strlen(fsname) + 8)) ||
	    (strcpy(mopts, "fsname="), strcat(mopts, fsname), 0) || opt_add(&mopts, "subtype=bkfs", false) ||
	    opt_add(&mopts, "default_permissions", false) || (ro && opt_add(&mopts, "ro", false)) ||
	    (fuse_opts && opt_add(&mopts, fuse_opts, false))) {
		free(fsname);
		free(mopts);
		bkfs_close_nowrite(fs);
		goto nomem;
	}
	char *fargv[8];
	int fargc = 0;
	fargv[fargc++] = "bkfs";
	fargv[fargc++] = (char *)dir;
	fargv[fargc++] = "-o";
	fargv[fargc++] = mopts;
	if (foreground)
		fargv[fargc++] = "-f";
	fargv[fargc++] = "-s"; /* single-threaded: every call is serialized anyway */
	if (debug)
		fargv[fargc++] = "-d";
	fargv[fargc] = NULL;
	ret = bkfs_fuse_main(fs, &bgo, fargc, fargv);
	free(fsname);
	free(mopts);
out:
	tool_unlock_devices(&locks);
	free(devbuf);
	free(fuse_opts);
	return ret;
nomem:
	fprintf(stderr, "bkfs mount: out of memory\n");
	ret = 1;
	goto out;
}
