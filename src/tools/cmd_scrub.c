/* cmd_scrub.c - `bkfs scrub`: verify every copy of everything, repair from
 * good copies or parity; offline on devices, or asked of a running mount. */
#include "cmds.h"
#include "opts.h"
#include "../fsck/scrub.h"
#include "../mount/scrub_ioctl.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void scrub_usage(FILE *f)
{
	fprintf(f,
		"usage: bkfs scrub [-n] [--json FILE] [--progress] DEV...\n"
		"       bkfs scrub [-n] [--json FILE] [--progress] MOUNTPOINT\n"
		"Read every copy of every btree node and every replica of every data\n"
		"extent, verify checksums and stripe parity, and rewrite what is bad from\n"
		"a good copy or from parity. What could not be repaired is listed (files\n"
		"by path). On a mount point, the running bkfs mount does the work in\n"
		"small steps while it goes on serving (an ioctl on its root directory);\n"
		"this command waits for it and prints its report.\n"
		"  -n            verify only, write nothing\n"
		"  --json FILE   write a machine-readable report\n"
		"  --progress    progress bar with ETA on a terminal\n"
		"Offline, a device mounted or used by another bkfs process is refused\n"
		"(exit 8): scrub the mount point instead.\n"
		"Exit status (as bkfs fsck's): 0 clean, 1 everything bad was repaired,\n"
		"4 something is left bad (or found under -n, or copies are on missing\n"
		"devices), 8 operational error, 16 usage error.\n");
}

/* ---- on a mount ---- */

static int scrub_ioc(int fd, struct bkfs_scrub_ioc *io, unsigned op)
{
	memset(io, 0, sizeof(*io));
	io->op = op;
	return ioctl(fd, BKFS_IOC_SCRUB, io);
}

static void mount_progress(const struct bkfs_scrub_ioc *io, bool done)
{
	unsigned width = 30, pct = done ? 100 : io->pct;
	fprintf(stderr, "\r[");
	for (unsigned i = 0; i < width; i++)
		fputc(i < width * pct / 100 ? '#' : ' ', stderr);
	fprintf(stderr, "] %-8s %3u%%%s", done ? "done" : io->phase, pct, done ? "\n" : "");
	fflush(stderr);
}

static int scrub_mount(const char *mnt, bool repair, bool progress, const char *json_path)
{
	int fd = open(mnt, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		fprintf(stderr, "bkfs scrub: %s: %s\n", mnt, strerror(errno));
		return FSCK_EXIT_OPERATIONAL;
	}
	struct bkfs_scrub_ioc *io = malloc(sizeof(*io));
	int status = FSCK_EXIT_OPERATIONAL;
	if (!io)
		goto out;
	if (scrub_ioc(fd, io, repair ? BKFS_SCRUB_OP_START : BKFS_SCRUB_OP_START_VERIFY)) {
		fprintf(stderr, "bkfs scrub: %s: %s (not a bkfs mount?)\n", mnt, strerror(errno));
		goto out;
	}
	if (io->error) {
		fprintf(stderr, "bkfs scrub: %s: %s\n", mnt,
			io->error == EBUSY ? "a scrub is already running there" :
			io->error == ENOSYS ? "a read-only mount: scrub its devices with -n" : strerror(io->error));
		goto out;
	}
	bool bar = progress && isatty(STDERR_FILENO);
	struct timespec nap = { 0, 50 * 1000 * 1000 };
	while (!scrub_ioc(fd, io, BKFS_SCRUB_OP_STATUS) && io->state == BKFS_SCRUB_RUNNING) {
		if (bar)
			mount_progress(io, false);
		nanosleep(&nap, NULL);
	}
	if (io->state != BKFS_SCRUB_DONE) {
		fprintf(stderr, "bkfs scrub: %s: lost track of the scrub: %s\n", mnt, strerror(errno));
		goto out;
	}
	if (bar)
		mount_progress(io, true);
	fputs(io->report, stdout);
	status = io->status;
	if (json_path) {
		FILE *f = NULL;
		if (scrub_ioc(fd, io, BKFS_SCRUB_OP_STATUS_JSON) || !(f = fopen(json_path, "w")) ||
		    fputs(io->report, f) < 0 || fclose(f)) {
			fprintf(stderr, "bkfs scrub: cannot write %s\n", json_path);
			status |= FSCK_EXIT_OPERATIONAL;
		}
	}
out:
	free(io);
	close(fd);
	return status;
}

int cmd_scrub(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", required_argument, 0, 'j' },
		{ "progress", no_argument, 0, 'P' },
		{ "help", no_argument, 0, 'h' },
		{ 0 }
	};
	bool repair = true, progress = false;
	const char *json = NULL;
	int opt;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":nh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'n': repair = false; break;
		case 'j': json = optarg; break;
		case 'P': progress = true; break;
		case 'h': scrub_usage(stdout); return FSCK_EXIT_OK;
		default:
			tool_bad_option("scrub", opt, argv);
			scrub_usage(stderr);
			return FSCK_EXIT_USAGE;
		}
	}
	unsigned nr = argc - optind;
	if (!nr) {
		fprintf(stderr, "bkfs scrub: no device given\n");
		scrub_usage(stderr);
		return FSCK_EXIT_USAGE;
	}
	if (nr > BKFS_MAX_DEVS) {
		fprintf(stderr, "bkfs scrub: at most %d devices\n", BKFS_MAX_DEVS);
		return FSCK_EXIT_USAGE;
	}
	struct stat st;
	if (nr == 1 && !stat(argv[optind], &st) && S_ISDIR(st.st_mode))
		return scrub_mount(argv[optind], repair, progress, json);
	struct tool_locks locks;
	if (tool_lock_devices("scrub", argv + optind, nr, repair, "scrub the mount point instead", &locks))
		return FSCK_EXIT_OPERATIONAL;
	int status = bkfs_scrub(argv + optind, nr, repair, progress, json);
	tool_unlock_devices(&locks);
	return status;
}
