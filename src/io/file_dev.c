/* file_dev.c - block device backend on a regular file or a block device,
 * using pread/pwrite on a plain file descriptor. */
#include "blockdev.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <linux/falloc.h>
#include <linux/fs.h>

struct file_dev {
	int fd;
	int uncached_fd; /* the same file opened O_DIRECT, or -1 */
	bool is_blk;
	bool direct;
	struct bd_lock *lock;
};

/* O_DIRECT needs aligned buffers, offsets and lengths; callers do not promise
 * that, so on EINVAL in direct mode we drop O_DIRECT and retry buffered. */
static bool drop_direct(struct file_dev *fd)
{
	if (!fd->direct)
		return false;
	int fl = fcntl(fd->fd, F_GETFL);
	if (fl < 0 || fcntl(fd->fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return false;
	fd->direct = false;
	return true;
}

/* Read all of [off, off + len) from fd: 0, or the errno that stopped it
 * (EIO past the end of the file). */
static int pread_all(int fd, u8 *p, size_t len, u64 off)
{
	while (len) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r ? errno : EIO;
		p += r;
		off += (u64)r;
		len -= (size_t)r;
	}
	return 0;
}

static int file_dev_read(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	struct file_dev *f = bd->priv;
	int e;
	while ((e = pread_all(f->fd, buf, len, off)) == EINVAL && drop_direct(f))
		;
	return e ? bd_errno(e) : 0;
}

/* A pass over much of the device gains nothing from the host's page cache
 * and pays for filling it: on a VM, fresh page-cache pages cost more than
 * the device's own transfer (cold buffered reads of one image varied 3x
 * from run to run here, O_DIRECT ones under 20 %). */
static int file_dev_read_uncached(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	struct file_dev *f = bd->priv;
	int e = pread_all(f->uncached_fd, buf, len, off);
	if (e == EINVAL) /* alignment the host wants larger */
		return file_dev_read(bd, buf, off, len);
	return e ? bd_errno(e) : 0;
}

static int file_dev_write(struct blockdev *bd, const void *buf, u64 off, size_t len)
{
	struct file_dev *f = bd->priv;
	const u8 *p = buf;

	while (len) {
		ssize_t r = pwrite(f->fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL && drop_direct(f))
				continue;
			bd->host_errno = errno; /* ENOSPC of the host: say so */
			return bd_errno(errno);
		}
		if (r == 0)
			return -BKFS_E_IO;
		p += r;
		off += (u64)r;
		len -= (size_t)r;
	}
	return 0;
}

static int file_dev_flush(struct blockdev *bd)
{
	struct file_dev *f = bd->priv;
	static int nosync = -1;

	/* BKFS_UNSAFE_NOSYNC=1: the test suite's speed knob. Flushes become
	 * no-ops, so a host crash could lose data; crash safety itself is
	 * tested on the emulated device, never through this path. */
	if (nosync < 0) {
		const char *e = getenv("BKFS_UNSAFE_NOSYNC");
		nosync = e && *e == '1';
	}
	if (nosync)
		return 0;
	while (fdatasync(f->fd) < 0) {
		if (errno == EINTR)
			continue;
		bd->host_errno = errno;
		return bd_errno(errno);
	}
	return 0;
}

static int file_dev_discard(struct blockdev *bd, u64 off, u64 len)
{
	struct file_dev *f = bd->priv;
	int ret;

	if (off > bd->size || len > bd->size - off)
		return -BKFS_E_RANGE;
	if (!len)
		return 0;
	do {
		if (f->is_blk) {
			u64 range[2] = { off, len };
			ret = ioctl(f->fd, BLKDISCARD, range);
		} else {
			ret = fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					(off_t)off, (off_t)len);
		}
	} while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		if (errno == EOPNOTSUPP || errno == ENOTTY || errno == ENOSYS)
			return 0; /* discard is advisory */
		return bd_errno(errno);
	}
	return 0;
}

static void file_dev_close(struct blockdev *bd)
{
	struct file_dev *f = bd->priv;

	if (f) {
		if (f->fd >= 0)
			close(f->fd);
		if (f->uncached_fd >= 0)
			close(f->uncached_fd);
		bd_lock_put(f->lock);
		free(f);
	}
	bd->priv = NULL;
}

int file_dev_open(const char *path, unsigned flags, struct blockdev **out)
{
	struct blockdev *bd = NULL;
	struct file_dev *f = NULL;
	struct bd_lock *lock;
	struct stat st;
	int oflags, fd, ret;
	bool direct = false;

	*out = NULL;
	if (!path || !*path)
		return -BKFS_E_INVAL;
	if ((ret = bd_lock_get(path, !(flags & BD_RDONLY), &lock)))
		return ret;

	oflags = ((flags & BD_RDONLY) ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (flags & BD_DIRECT) {
		fd = open(path, oflags | O_DIRECT);
		if (fd >= 0)
			direct = true;
		else if (errno == EINVAL)
			fd = open(path, oflags); /* filesystem without O_DIRECT */
	} else {
		fd = open(path, oflags);
	}
	if (fd < 0) {
		bd_lock_put(lock);
		return bd_errno(errno);
	}

	if (fstat(fd, &st) < 0) {
		ret = bd_errno(errno);
		goto err;
	}

	bd = calloc(1, sizeof(*bd));
	f = calloc(1, sizeof(*f));
	if (!bd || !f) {
		ret = -BKFS_E_NOMEM;
		goto err;
	}
	f->fd = fd;
	f->direct = direct;

	if (S_ISREG(st.st_mode)) {
		bd->size = (u64)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		u64 sz;
		if (ioctl(fd, BLKGETSIZE64, &sz) < 0) {
			ret = bd_errno(errno);
			goto err;
		}
		bd->size = sz;
		f->is_blk = true;
	} else {
		ret = -BKFS_E_INVAL; /* neither a regular file nor a block device */
		goto err;
	}

	bd->path = strdup(path);
	if (!bd->path) {
		ret = -BKFS_E_NOMEM;
		goto err;
	}
	f->uncached_fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	bd->read = file_dev_read;
	bd->write = file_dev_write;
	bd->flush = file_dev_flush;
	bd->discard = file_dev_discard;
	bd->close = file_dev_close;
	if (f->uncached_fd >= 0)
		bd->read_uncached = file_dev_read_uncached;
	bd->priv = f;
	f->lock = lock;
	*out = bd;
	return 0;
err:
	if (bd)
		free(bd->path);
	free(bd);
	free(f);
	close(fd);
	bd_lock_put(lock);
	return ret;
}
