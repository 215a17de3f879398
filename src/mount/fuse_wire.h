/* fuse_wire.h - the part of the FUSE protocol (7.33, the kernel's
 * <linux/fuse.h>) that libfuse 3.14 does not pass on, read and written
 * under it: the session's reads and writes of /dev/fuse go through these
 * two calls (fuse_session_custom_io), which only look at the bytes.
 *
 * - FUSE_HANDLE_KILLPRIV_V2: libfuse 3.14 cannot ask for it, so the INIT
 *   reply is amended to accept it when the kernel offers it. The server
 *   then clears setuid/setgid on write, truncate and chown (the kernel says
 *   per request when: fuse_wire_kill_suidgid), and the kernel no longer
 *   asks for security.capability and the attributes before every write
 *   (its superblock gets SB_NOSEC: one check per inode, not per write).
 * - The kill flags of the request being served (a write's write_flags, a
 *   setattr's valid, an open's open_flags), which libfuse drops.
 *
 * - Polling: after each request the reading thread polls /dev/fuse for up to
 *   poll_us before it sleeps. On a virtual machine a sleep and wake-up of
 *   the server costs more than serving most requests; while a client's
 *   requests follow each other closely the server stays awake. It stops
 *   polling for a while (longer each time) when the scheduler has had to
 *   take the CPU from it: other work wants the CPU, and the server does not
 *   go on competing with it.
 *
 * One thread serves the requests, each before the next is read, so the
 * state is that of the request being served. */
#ifndef BKFS_FUSE_WIRE_H
#define BKFS_FUSE_WIRE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* read(2) and writev(2) of the session's /dev/fuse descriptor, with the
 * signatures of struct fuse_custom_io */
ssize_t fuse_wire_read(int fd, void *buf, size_t len, void *userdata);
ssize_t fuse_wire_writev(int fd, struct iovec *iov, int count, void *userdata);

/* the polling window after a request, microseconds (0: none) */
#define FUSE_WIRE_POLL_US_DEFAULT 50
void fuse_wire_set_poll_us(unsigned us);

struct fuse_wire_stats {
	uint64_t reads;         /* requests read */
	uint64_t polled;        /* reads that polled first */
	uint64_t found_polling; /* and found a request while polling */
	uint64_t pauses;        /* times polling paused (the CPU was wanted) */
};
void fuse_wire_get_stats(struct fuse_wire_stats *out);
/* where polling counts the thread's preemptions (NULL: getrusage's
 * involuntary context switches of the calling thread); for tests */
void fuse_wire_set_preemptions(long (*count)(void));

/* the kernel accepted FUSE_HANDLE_KILLPRIV_V2: the server clears the bits */
bool fuse_wire_killpriv_v2(void);
/* the request being served asks to clear setuid, and setgid if the file is
 * group-executable (a write, truncate or O_TRUNC open by a caller without
 * CAP_FSETID) */
bool fuse_wire_kill_suidgid(void);

#endif
