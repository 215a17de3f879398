/* blockdev.c - backend-independent block device helpers. */
#include "blockdev.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* Release a device opened by any backend. The backend's close() callback frees
 * only its private state (bd->priv, file descriptors); the generic part
 * (bd->path and the struct itself) is freed here. NULL is accepted. */
void bd_close(struct blockdev *bd)
{
	if (!bd || bd->keep_open)
		return;
	if (bd->close)
		bd->close(bd);
	free(bd->path);
	free(bd);
}

/* ------------------------------------------------------------ access locks
 *
 * One lock per member device and process. flock() locks belong to an open
 * file description, so two opens of one image in one process would conflict
 * with each other; instead every open in the process shares one entry here
 * (found by the device's identity, not its path), counted by references. The
 * entry's own descriptor carries the flock and, for a block device locked
 * exclusively, the O_EXCL claim (EBUSY while the kernel has it mounted or
 * another process claims it). The descriptor survives fork(), so a mount
 * that turns into a daemon keeps its lock. */

struct bd_lock {
	struct bd_lock *next;
	dev_t dev;   /* st_rdev of a block device, st_dev of a file */
	ino_t ino;   /* 0 for a block device */
	int fd;
	bool exclusive;
	unsigned refs;
};

static struct bd_lock *bd_locks;
static pthread_mutex_t bd_locks_mutex = PTHREAD_MUTEX_INITIALIZER;

static int lock_key(const struct stat *st, dev_t *dev, ino_t *ino)
{
	if (S_ISBLK(st->st_mode)) {
		*dev = st->st_rdev;
		*ino = 0;
	} else if (S_ISREG(st->st_mode)) {
		*dev = st->st_dev;
		*ino = st->st_ino;
	} else {
		return -BKFS_E_INVAL; /* neither a regular file nor a block device */
	}
	return 0;
}

int bd_errno(int e)
{
	switch (e) {
	case ENOENT: return -BKFS_E_NOENT;
	case ENOMEM: return -BKFS_E_NOMEM;
	case EBUSY:  return -BKFS_E_BUSY;
	default:     return -BKFS_E_IO;
	}
}

/* A new entry: open, claim (block device, exclusive) and flock. */
static int bd_lock_new(const char *path, bool blk, bool exclusive, dev_t dev, ino_t ino, struct bd_lock **out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | (blk && exclusive ? O_EXCL : 0));
	struct stat st;
	dev_t d;
	ino_t i;
	int ret;

	if (fd < 0)
		return bd_errno(errno);
	/* the path must still name the device looked up */
	if (fstat(fd, &st) < 0 || lock_key(&st, &d, &i) || d != dev || i != ino) {
		ret = -BKFS_E_AGAIN;
		goto err;
	}
	while ((ret = flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB)) < 0 && errno == EINTR)
		;
	if (ret < 0) {
		ret = errno == EWOULDBLOCK ? -BKFS_E_BUSY : -BKFS_E_IO;
		goto err;
	}
	struct bd_lock *l = calloc(1, sizeof(*l));
	if (!l) {
		ret = -BKFS_E_NOMEM;
		goto err;
	}
	*l = (struct bd_lock){ .next = bd_locks, .dev = dev, .ino = ino, .fd = fd, .exclusive = exclusive, .refs = 1 };
	bd_locks = l;
	*out = l;
	return 0;
err:
	close(fd);
	return ret;
}

int bd_lock_get(const char *path, bool exclusive, struct bd_lock **out)
{
	struct stat st;
	dev_t dev;
	ino_t ino;
	int ret;

	*out = NULL;
	if (!path || !*path)
		return -BKFS_E_INVAL;
	if (stat(path, &st) < 0)
		return bd_errno(errno);
	if ((ret = lock_key(&st, &dev, &ino)))
		return ret;
	pthread_mutex_lock(&bd_locks_mutex);
	struct bd_lock *l = bd_locks;
	while (l && (l->dev != dev || l->ino != ino))
		l = l->next;
	if (l && exclusive && !l->exclusive) {
		/* this process reads it already; converting a flock drops the
		 * shared lock before taking the exclusive one, so no upgrade */
		ret = -BKFS_E_BUSY;
	} else if (l) {
		l->refs++;
		*out = l;
	} else {
		ret = bd_lock_new(path, S_ISBLK(st.st_mode), exclusive, dev, ino, out);
	}
	pthread_mutex_unlock(&bd_locks_mutex);
	return ret;
}

void bd_lock_put(struct bd_lock *lock)
{
	if (!lock)
		return;
	pthread_mutex_lock(&bd_locks_mutex);
	if (!--lock->refs) {
		struct bd_lock **p = &bd_locks;
		while (*p != lock)
			p = &(*p)->next;
		*p = lock->next;
		close(lock->fd);
		free(lock);
	}
	pthread_mutex_unlock(&bd_locks_mutex);
}
