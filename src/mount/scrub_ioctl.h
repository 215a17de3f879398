/* scrub_ioctl.h - how `bkfs scrub MOUNTPOINT` talks to the mount: one
 * restricted ioctl on the mount's root directory (FUSE passes it to the
 * server; its argument is copied both ways by the kernel, so its size is in
 * the command number). The server's background thread runs the scrub in
 * bounded steps under its engine lock (background.c); the command starts
 * it, then polls until it is done and prints the report the server made. */
#ifndef BKFS_SCRUB_IOCTL_H
#define BKFS_SCRUB_IOCTL_H
#include <linux/ioctl.h>
#include <stdint.h>

enum bkfs_scrub_op {
	BKFS_SCRUB_OP_START = 1,        /* scrub and repair */
	BKFS_SCRUB_OP_START_VERIFY = 2, /* scrub -n: verify only */
	BKFS_SCRUB_OP_STATUS = 3,       /* state, progress; the text report when done */
	BKFS_SCRUB_OP_STATUS_JSON = 4,  /* the same with the JSON report */
};
enum bkfs_scrub_state { BKFS_SCRUB_IDLE, BKFS_SCRUB_RUNNING, BKFS_SCRUB_DONE };

#define BKFS_SCRUB_REPORT_MAX 12288
struct bkfs_scrub_ioc {
	uint32_t op;      /* in: enum bkfs_scrub_op */
	uint32_t state;   /* out: enum bkfs_scrub_state */
	int32_t status;   /* out, when done: the exit status bits (as fsck's) */
	uint32_t pct;     /* out, while running: progress */
	int32_t error;    /* out: why a start was refused (errno), else 0 */
	char phase[12];   /* out, while running */
	char report[BKFS_SCRUB_REPORT_MAX]; /* out, when done (cut to fit) */
};
#define BKFS_IOC_SCRUB _IOWR('B', 0x5c, struct bkfs_scrub_ioc)

#endif
