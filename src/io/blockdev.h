/* blockdev.h - a member device as a small struct of callbacks.
 * Backends: file/block device (file_dev.c) and an emulated device for tests
 * (emu_dev.c) that can cut power after write N, reorder writes between flushes,
 * flip bits and fail reads. Depends only on util. */
#ifndef BKFS_BLOCKDEV_H
#define BKFS_BLOCKDEV_H
#include "../util/util.h"

#define BD_UNCACHED_ALIGN 4096u

struct blockdev {
	/* all return 0 or -BKFS_E_*; offsets and lengths in bytes */
	int (*read)(struct blockdev *bd, void *buf, u64 off, size_t len);
	int (*write)(struct blockdev *bd, const void *buf, u64 off, size_t len);
	int (*flush)(struct blockdev *bd);
	int (*discard)(struct blockdev *bd, u64 off, u64 len);
	void (*close)(struct blockdev *bd);
	/* optional: read around the host's page cache, for one pass over much
	 * of the device (scrub); buf, off and len are multiples of
	 * BD_UNCACHED_ALIGN. NULL: callers use read. */
	int (*read_uncached)(struct blockdev *bd, void *buf, u64 off, size_t len);
	u64 size;
	char *path;
	void *priv;
	bool keep_open;  /* bd_close() is a no-op while set (tests reopen the same media) */
	/* counters, for tests and reports */
	u64 nr_reads, nr_writes, nr_flushes, bytes_read, bytes_written;
	/* failed writes and flushes: a filesystem on this device can no longer
	 * trust what it wrote (the mount goes read-only) */
	u64 nr_write_errors;
	int write_error; /* the last one: -BKFS_E_* */
	int host_errno;  /* and its errno, when the host gave one (0 if not) */
};

static inline int bd_read(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	bd->nr_reads++;
	bd->bytes_read += len;
	if (off > bd->size || len > bd->size - off)
		return -BKFS_E_RANGE;
	return bd->read(bd, buf, off, len);
}
static inline int bd_write(struct blockdev *bd, const void *buf, u64 off, size_t len)
{
	bd->nr_writes++;
	bd->bytes_written += len;
	if (off > bd->size || len > bd->size - off)
		return -BKFS_E_RANGE;
	int ret = bd->write(bd, buf, off, len);
	if (ret) {
		bd->nr_write_errors++;
		bd->write_error = ret;
	}
	return ret;
}
static inline int bd_flush(struct blockdev *bd)
{
	bd->nr_flushes++;
	int ret = bd->flush(bd);
	if (ret) {
		bd->nr_write_errors++;
		bd->write_error = ret;
	}
	return ret;
}
void bd_close(struct blockdev *bd);
/* -BKFS_E_* for an errno from opening or using a device */
int bd_errno(int e);

/* Access lock on a member device (an image file or block device), so that
 * a command that may write never runs beside another bkfs process using the
 * same device: exclusive for writers, shared for readers. flock() with
 * LOCK_NB on the device; an exclusive lock on a block device also opens it
 * O_EXCL (refused while mounted by the kernel or claimed by another
 * process). Within one process every open of a device shares one lock,
 * counted by references, so a command that opens a device again (or holds a
 * lock over several opens) does not lock itself out; asking for exclusive
 * access to a device the process holds shared is refused (no upgrade).
 * Returns 0, -BKFS_E_BUSY (another process holds a conflicting lock),
 * -BKFS_E_NOENT, -BKFS_E_INVAL (neither a file nor a block device) or
 * -BKFS_E_IO. */
struct bd_lock;
int bd_lock_get(const char *path, bool exclusive, struct bd_lock **out);
void bd_lock_put(struct bd_lock *lock); /* NULL is accepted */

/* File or block device. flags: BD_RDONLY, BD_DIRECT. The open takes the
 * device's access lock (shared with BD_RDONLY, else exclusive) until
 * bd_close(), and fails with -BKFS_E_BUSY when another process holds it. */
#define BD_RDONLY (1u << 0)
#define BD_DIRECT (1u << 1)
int file_dev_open(const char *path, unsigned flags, struct blockdev **out);

/* Emulated device: an in-memory image with fault injection.
 * Writes go to a volatile cache and reach the "media" on flush (or, with
 * reorder, in a random order/subset when power is cut). */
struct emu_opts {
	u64 size;
	u64 cut_after_writes; /* 0 = never; after this many writes every later write is lost */
	bool reorder;         /* on power cut, unflushed writes land in random subset/order */
	u64 seed;
};
int emu_dev_create(const struct emu_opts *o, struct blockdev **out);
/* Load/save the media from/to a file (to seed from a real image). */
int emu_dev_load(struct blockdev *bd, const char *path);
int emu_dev_save(struct blockdev *bd, const char *path);
/* Simulate power loss now: unflushed writes are lost (or partially applied in
 * random order if reorder); the device is usable again afterwards. */
void emu_dev_power_cut(struct blockdev *bd);
/* Arm a cut after N further writes (0 disarms): power goes at write N+1, so
 * flushes between write N and write N+1 still complete. */
void emu_dev_set_cut(struct blockdev *bd, u64 after_writes);
/* Arm a cut right after write N (0 disarms): the next write *or flush* finds
 * the power gone, so a flush that directly follows write N never happens
 * (power lost between a write and its flush). */
void emu_dev_set_cut_at(struct blockdev *bd, u64 after_writes);
bool emu_dev_was_cut(struct blockdev *bd);
/* Faults */
void emu_dev_flip_bit(struct blockdev *bd, u64 byte_off, int bit);
int emu_dev_fail_reads(struct blockdev *bd, u64 off, u64 len); /* reads overlapping fail with IO */
/* A dying disk: after N further writes (0: from the next one) every write
 * and flush fails with -BKFS_E_IO; what was not flushed before is lost.
 * emu_dev_clear_faults() heals it. */
void emu_dev_fail_writes(struct blockdev *bd, u64 after_writes);
void emu_dev_clear_faults(struct blockdev *bd);
u8 *emu_dev_media(struct blockdev *bd); /* direct access to the durable media */
/* "Reboot" onto new media: pending writes dropped, media replaced by a copy of
 * media (size bytes), cut and faults cleared, reorder and its seed set. Lets a
 * test reuse one device for many runs from the same image. */
void emu_dev_reset(struct blockdev *bd, const void *media, bool reorder, u64 seed);
/* Copy the durable media of one emulated device into a fresh one. */
int emu_dev_clone(struct blockdev *src, struct blockdev **out);

#endif
