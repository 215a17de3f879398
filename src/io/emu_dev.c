/* emu_dev.c - emulated block device for tests.
 *
 * The durable content ("media") is an in-memory image. Writes land in a
 * volatile cache: a list of pending writes (each a private copy of the data)
 * that reads see immediately, overlaid on the media in write order. flush()
 * applies the pending writes to the media in order.
 *
 * Power loss: pending writes are lost; with reorder a seeded random subset
 * reaches the media in a random order, and a kept write may be torn (only a
 * prefix of its 512-byte sectors lands). A cut can be armed to happen at write
 * N+1 (cut_after_writes); from then on writes and flushes are silently dropped
 * until the test "reboots" with emu_dev_power_cut() or emu_dev_set_cut(bd, 0).
 * emu_dev_set_cut_at() arms the same cut but also lets a flush after write N
 * trigger it (power lost between a write and the flush that follows it).
 *
 * Discard is accepted and ignored: the old content stays readable, which is a
 * legal outcome of a discard on real hardware. */
#include "blockdev.h"
#include "../util/darray.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define EMU_SECTOR 512u
#define EMU_MAX_FAULTS 64

struct emu_write {
	u64 off;
	size_t len;
	u8 *data;
};

struct emu_range {
	u64 off, len;
};

struct emu_dev {
	u8 *media;
	u64 size;

	struct emu_write *pending;
	size_t nr_pending, pending_cap;

	u64 writes;     /* writes seen since creation or the last (re)arm */
	u64 cut_after;  /* 0 = disarmed */
	bool cut_on_flush; /* a flush after write cut_after also cuts */
	bool cut;       /* power has been cut; drop everything */
	bool reorder;
	u64 rng;

	struct emu_range faults[EMU_MAX_FAULTS];
	unsigned nr_faults;
	bool fail_writes;     /* armed: writes past fail_after fail */
	u64 fail_after;       /* in e->writes */
};

/* a dying disk (emu_dev_fail_writes): this write or flush fails */
static bool emu_write_fails(struct emu_dev *e)
{
	return e->fail_writes && e->writes >= e->fail_after;
}

static void emu_close(struct blockdev *bd);

static struct emu_dev *emu_of(struct blockdev *bd)
{
	return bd && bd->close == emu_close ? bd->priv : NULL;
}

static bool ranges_overlap(u64 a_off, u64 a_len, u64 b_off, u64 b_len)
{
	return a_len && b_len && a_off < b_off + b_len && b_off < a_off + a_len;
}

static void emu_apply(struct emu_dev *e, const struct emu_write *w, size_t len)
{
	memcpy(e->media + w->off, w->data, len);
}

static void emu_drop_pending(struct emu_dev *e)
{
	for (size_t i = 0; i < e->nr_pending; i++)
		free(e->pending[i].data);
	e->nr_pending = 0;
}

/* Resolve the volatile cache as a power loss would. */
static void emu_lose_pending(struct emu_dev *e)
{
	if (e->reorder && e->nr_pending) {
		struct emu_write *p = e->pending;
		size_t n = e->nr_pending;

		/* random order: Fisher-Yates over the pending list */
		for (size_t i = n - 1; i > 0; i--) {
			size_t j = rng_next(&e->rng) % (i + 1);
			struct emu_write t = p[i];
			p[i] = p[j];
			p[j] = t;
		}
		for (size_t i = 0; i < n; i++) {
			if (rng_next(&e->rng) & 1)
				continue; /* lost */
			size_t len = p[i].len;
			/* one kept write in four is torn at a sector boundary */
			if ((rng_next(&e->rng) & 3) == 0) {
				u64 end = p[i].off + p[i].len;
				u64 first = (p[i].off / EMU_SECTOR + 1) * EMU_SECTOR;
				if (first < end) {
					u64 nb = (end - 1) / EMU_SECTOR - p[i].off / EMU_SECTOR;
					u64 at = first + (rng_next(&e->rng) % nb) * EMU_SECTOR;
					len = (size_t)(at - p[i].off);
				}
			}
			emu_apply(e, &p[i], len);
		}
	}
	emu_drop_pending(e);
}

static int emu_read(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	struct emu_dev *e = bd->priv;

	if (off > e->size || len > e->size - off)
		return -BKFS_E_RANGE;
	for (unsigned i = 0; i < e->nr_faults; i++)
		if (ranges_overlap(off, len, e->faults[i].off, e->faults[i].len))
			return -BKFS_E_IO;

	memcpy(buf, e->media + off, len);
	for (size_t i = 0; i < e->nr_pending; i++) {
		const struct emu_write *w = &e->pending[i];
		if (!ranges_overlap(off, len, w->off, w->len))
			continue;
		u64 s = MAX(off, w->off);
		u64 t = MIN(off + len, w->off + w->len);
		memcpy((u8 *)buf + (s - off), w->data + (s - w->off), (size_t)(t - s));
	}
	return 0;
}

/* as a host's O_DIRECT read: whole aligned blocks into an aligned buffer,
 * so tests catch a caller that breaks the contract */
static int emu_read_uncached(struct blockdev *bd, void *buf, u64 off, size_t len)
{
	if ((off | len | (uintptr_t)buf) % BD_UNCACHED_ALIGN)
		return -BKFS_E_INVAL;
	return emu_read(bd, buf, off, len);
}

static int emu_write(struct blockdev *bd, const void *buf, u64 off, size_t len)
{
	struct emu_dev *e = bd->priv;

	if (off > e->size || len > e->size - off)
		return -BKFS_E_RANGE;
	if (e->cut)
		return 0;
	if (emu_write_fails(e))
		return -BKFS_E_IO;
	e->writes++;
	if (e->cut_after && e->writes > e->cut_after) {
		emu_lose_pending(e);
		e->cut = true;
		return 0;
	}
	if (!len)
		return 0;

	if (darray_room(e->pending, e->pending_cap, e->nr_pending + 1, 64))
		return -BKFS_E_NOMEM;
	u8 *copy = malloc(len);
	if (!copy)
		return -BKFS_E_NOMEM;
	memcpy(copy, buf, len);
	e->pending[e->nr_pending++] = (struct emu_write){ .off = off, .len = len, .data = copy };
	return 0;
}

static int emu_flush(struct blockdev *bd)
{
	struct emu_dev *e = bd->priv;

	if (e->cut)
		return 0;
	if (emu_write_fails(e)) {
		emu_lose_pending(e);
		return -BKFS_E_IO;
	}
	if (e->cut_after && e->cut_on_flush && e->writes >= e->cut_after) {
		emu_lose_pending(e);
		e->cut = true;
		return 0;
	}
	for (size_t i = 0; i < e->nr_pending; i++)
		emu_apply(e, &e->pending[i], e->pending[i].len);
	emu_drop_pending(e);
	return 0;
}

static int emu_discard(struct blockdev *bd, u64 off, u64 len)
{
	struct emu_dev *e = bd->priv;

	if (off > e->size || len > e->size - off)
		return -BKFS_E_RANGE;
	return 0;
}

static void emu_close(struct blockdev *bd)
{
	struct emu_dev *e = bd->priv;

	if (e) {
		emu_drop_pending(e);
		free(e->pending);
		free(e->media);
		free(e);
	}
	bd->priv = NULL;
}

int emu_dev_create(const struct emu_opts *o, struct blockdev **out)
{
	struct blockdev *bd;
	struct emu_dev *e;

	*out = NULL;
	if (!o || !o->size || o->size > SIZE_MAX)
		return -BKFS_E_INVAL;

	bd = calloc(1, sizeof(*bd));
	e = calloc(1, sizeof(*e));
	if (!bd || !e)
		goto nomem;
	e->media = calloc(1, (size_t)o->size);
	bd->path = strdup("emu");
	if (!e->media || !bd->path)
		goto nomem;
	e->size = o->size;
	e->cut_after = o->cut_after_writes;
	e->reorder = o->reorder;
	e->rng = o->seed;

	bd->read = emu_read;
	bd->read_uncached = emu_read_uncached;
	bd->write = emu_write;
	bd->flush = emu_flush;
	bd->discard = emu_discard;
	bd->close = emu_close;
	bd->size = o->size;
	bd->priv = e;
	*out = bd;
	return 0;
nomem:
	if (e)
		free(e->media);
	free(e);
	if (bd)
		free(bd->path);
	free(bd);
	return -BKFS_E_NOMEM;
}

static int errno_to_bkfs(int err)
{
	switch (err) {
	case ENOENT: return -BKFS_E_NOENT;
	case ENOMEM: return -BKFS_E_NOMEM;
	default:     return -BKFS_E_IO;
	}
}

/* Replace the durable media with a file's content (zero-filled past the end of
 * the file); pending writes are discarded. */
int emu_dev_load(struct blockdev *bd, const char *path)
{
	struct emu_dev *e = emu_of(bd);
	struct stat st;
	int fd, ret = 0;

	if (!e || !path)
		return -BKFS_E_INVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno_to_bkfs(errno);
	if (fstat(fd, &st) < 0) {
		ret = errno_to_bkfs(errno);
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -BKFS_E_INVAL;
		goto out;
	}
	if ((u64)st.st_size > e->size) {
		ret = -BKFS_E_TOOBIG;
		goto out;
	}

	emu_drop_pending(e);
	size_t want = (size_t)st.st_size, done = 0;
	while (done < want) {
		ssize_t r = pread(fd, e->media + done, want - done, (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = errno_to_bkfs(errno);
			break;
		}
		if (r == 0)
			break; /* file shrank under us: the rest reads as zero */
		done += (size_t)r;
	}
	memset(e->media + done, 0, (size_t)(e->size - done));
out:
	close(fd);
	return ret;
}

/* Write the durable media (not pending writes) to a file, replacing it. */
int emu_dev_save(struct blockdev *bd, const char *path)
{
	struct emu_dev *e = emu_of(bd);
	int fd, ret = 0;

	if (!e || !path)
		return -BKFS_E_INVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return errno_to_bkfs(errno);
	size_t done = 0;
	while (done < e->size) {
		ssize_t r = pwrite(fd, e->media + done, (size_t)e->size - done, (off_t)done);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			ret = errno_to_bkfs(errno);
			break;
		}
		if (r == 0) {
			ret = -BKFS_E_IO;
			break;
		}
		done += (size_t)r;
	}
	if (close(fd) < 0 && !ret)
		ret = errno_to_bkfs(errno);
	return ret;
}

void emu_dev_power_cut(struct blockdev *bd)
{
	struct emu_dev *e = emu_of(bd);

	if (!e)
		return;
	emu_lose_pending(e);
	e->cut = false;
	e->cut_after = 0;
	e->cut_on_flush = false;
	e->writes = 0;
}

void emu_dev_set_cut(struct blockdev *bd, u64 after_writes)
{
	struct emu_dev *e = emu_of(bd);

	if (!e)
		return;
	e->cut = false;
	e->writes = 0;
	e->cut_after = after_writes;
	e->cut_on_flush = false;
}

void emu_dev_set_cut_at(struct blockdev *bd, u64 after_writes)
{
	struct emu_dev *e = emu_of(bd);

	if (!e)
		return;
	emu_dev_set_cut(bd, after_writes);
	e->cut_on_flush = true;
}

bool emu_dev_was_cut(struct blockdev *bd)
{
	struct emu_dev *e = emu_of(bd);

	return e && e->cut;
}

void emu_dev_flip_bit(struct blockdev *bd, u64 byte_off, int bit)
{
	struct emu_dev *e = emu_of(bd);

	if (!e || byte_off >= e->size)
		return;
	u8 mask = (u8)(1u << (bit & 7));
	e->media[byte_off] ^= mask;
	for (size_t i = 0; i < e->nr_pending; i++) {
		struct emu_write *w = &e->pending[i];
		if (byte_off >= w->off && byte_off - w->off < w->len)
			w->data[byte_off - w->off] ^= mask;
	}
}

int emu_dev_fail_reads(struct blockdev *bd, u64 off, u64 len)
{
	struct emu_dev *e = emu_of(bd);

	if (!e)
		return -BKFS_E_INVAL;
	if (e->nr_faults >= EMU_MAX_FAULTS)
		return -BKFS_E_NOSPC;
	e->faults[e->nr_faults++] = (struct emu_range){ .off = off, .len = len };
	return 0;
}

void emu_dev_fail_writes(struct blockdev *bd, u64 after_writes)
{
	struct emu_dev *e = emu_of(bd);

	if (e) {
		e->fail_writes = true;
		e->fail_after = e->writes + after_writes;
	}
}

void emu_dev_clear_faults(struct blockdev *bd)
{
	struct emu_dev *e = emu_of(bd);

	if (e) {
		e->nr_faults = 0;
		e->fail_writes = false;
	}
}

u8 *emu_dev_media(struct blockdev *bd)
{
	struct emu_dev *e = emu_of(bd);

	return e ? e->media : NULL;
}

void emu_dev_reset(struct blockdev *bd, const void *media, bool reorder, u64 seed)
{
	struct emu_dev *e = emu_of(bd);

	if (!e)
		return;
	emu_drop_pending(e);
	memcpy(e->media, media, (size_t)e->size);
	e->cut = false;
	e->cut_after = 0;
	e->cut_on_flush = false;
	e->writes = 0;
	e->reorder = reorder;
	e->rng = seed;
	e->nr_faults = 0;
}

int emu_dev_clone(struct blockdev *src, struct blockdev **out)
{
	struct emu_dev *s = emu_of(src);
	struct emu_opts o;
	int ret;

	*out = NULL;
	if (!s)
		return -BKFS_E_INVAL;
	o = (struct emu_opts){ .size = s->size, .reorder = s->reorder, .seed = s->rng };
	ret = emu_dev_create(&o, out);
	if (ret)
		return ret;
	memcpy(emu_dev_media(*out), s->media, (size_t)s->size);
	return 0;
}
