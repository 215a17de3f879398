/* fuse_wire.c - see fuse_wire.h. Request and reply layouts are the kernel's
 * (<linux/fuse.h>); fields are copied out, never cast in place, because
 * nothing promises their alignment inside libfuse's buffers. */
#include "fuse_wire.h"
#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

static struct {
	uint64_t init_unique; /* the INIT request's id, while its reply is due */
	bool init_due;
	bool v2_offered;      /* the kernel's INIT lists HANDLE_KILLPRIV_V2 */
	bool v2;              /* and the reply accepted it */
	bool kill;            /* the request being served: kill suid/sgid */
} W;

bool fuse_wire_killpriv_v2(void)
{
	return W.v2;
}

bool fuse_wire_kill_suidgid(void)
{
	return W.v2 && W.kill;
}

/* a u32 at off of the request's argument, if the request is long enough */
static bool arg_u32(const void *arg, size_t len, size_t off, uint32_t *v)
{
	if (len < off + sizeof(*v))
		return false;
	memcpy(v, (const char *)arg + off, sizeof(*v));
	return true;
}

static void note_request(const void *buf, size_t len)
{
	struct fuse_in_header h;
	const char *arg = (const char *)buf + sizeof(h);
	uint32_t v = 0;

	W.kill = false;
	if (len < sizeof(h))
		return;
	memcpy(&h, buf, sizeof(h));
	len -= sizeof(h);
	switch (h.opcode) {
	case FUSE_INIT:
		W.init_unique = h.unique;
		W.init_due = true;
		W.v2_offered = arg_u32(arg, len, offsetof(struct fuse_init_in, flags), &v) &&
			       (v & FUSE_HANDLE_KILLPRIV_V2);
		break;
	case FUSE_WRITE:
		W.kill = arg_u32(arg, len, offsetof(struct fuse_write_in, write_flags), &v) &&
			 (v & FUSE_WRITE_KILL_SUIDGID);
		break;
	case FUSE_SETATTR:
		W.kill = arg_u32(arg, len, offsetof(struct fuse_setattr_in, valid), &v) &&
			 (v & FATTR_KILL_SUIDGID);
		break;
	case FUSE_OPEN:
		W.kill = arg_u32(arg, len, offsetof(struct fuse_open_in, open_flags), &v) &&
			 (v & FUSE_OPEN_KILL_SUIDGID);
		break;
	}
}

ssize_t fuse_wire_read(int fd, void *buf, size_t len, void *userdata)
{
	(void)userdata;
	ssize_t n = read(fd, buf, len);
	if (n > 0)
		note_request(buf, (size_t)n);
	return n;
}

/* the INIT reply (header, then struct fuse_init_out) also accepts
 * HANDLE_KILLPRIV_V2 when the kernel offered it */
static void amend_init_reply(struct iovec *iov, int count)
{
	struct fuse_out_header oh;
	uint32_t flags;
	size_t at = offsetof(struct fuse_init_out, flags);

	if (count < 2 || iov[0].iov_len < sizeof(oh))
		return;
	memcpy(&oh, iov[0].iov_base, sizeof(oh));
	if (oh.unique != W.init_unique)
		return;
	W.init_due = false;
	if (oh.error || !W.v2_offered || iov[1].iov_len < at + sizeof(flags))
		return;
	memcpy(&flags, (char *)iov[1].iov_base + at, sizeof(flags));
	flags |= FUSE_HANDLE_KILLPRIV_V2;
	memcpy((char *)iov[1].iov_base + at, &flags, sizeof(flags));
	W.v2 = true;
}

ssize_t fuse_wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (W.init_due)
		amend_init_reply(iov, count);
	return writev(fd, iov, count);
}
