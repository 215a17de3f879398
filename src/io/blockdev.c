/* blockdev.c - backend-independent block device helpers. */
#include "blockdev.h"
#include <stdlib.h>

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
