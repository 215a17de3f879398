/* fuse.h - the FUSE adapter (fuse.c, the only user of libfuse): serve an
 * open filesystem at a mount point with the libfuse 3 low-level API. */
#ifndef BKFS_FUSE_H
#define BKFS_FUSE_H
#include "../fs/super.h"
#include "background.h"

/* Run the FUSE main loop. argv are libfuse's arguments (argv[0], the mount
 * point, -f, -s, -d, -o ...). Takes ownership of fs: it is closed with
 * bkfs_close() when the filesystem is unmounted (or, if the mount never
 * came up, before returning). Returns 0 after a clean unmount, 1 if FUSE
 * failed or closing the filesystem reported an error,
 * BKFS_MOUNT_EXIT_WRITE_ERROR if a device write failed while mounted (the
 * mount went read-only then, and said why on stderr). Every call into the
 * engine is serialized by one mutex, which the background work (bgo: journal
 * flush timer, generation GC, copying GC) takes too. */
#define BKFS_MOUNT_EXIT_WRITE_ERROR 2
int bkfs_fuse_main(struct bkfs_fs *fs, const struct bg_opts *bgo, int argc, char **argv);

#endif
