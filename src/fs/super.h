/* super.h - format, open and close a filesystem (the engine's entry points). */
#ifndef BKFS_SUPER_H
#define BKFS_SUPER_H
#include "../data/extent.h"

struct format_opts {
	u64 block_size, bucket_size, btree_node_size; /* bytes, 0 = default */
	u64 journal_size;  /* bytes per member, 0 = default (size/128, 4M..64M); at least 1M */
	unsigned replicas;
	unsigned data_replicas;     /* 0 = replicas */
	unsigned metadata_replicas; /* 0 = max(replicas, 2) */
	const char *label;
	bool force;
};

/* Format devices (already opened). Writes nothing if validation fails. */
int bkfs_format_devs(struct blockdev **bds, unsigned nr, const struct format_opts *o, struct printbuf *err);
int bkfs_format(char *const *paths, unsigned nr, const struct format_opts *o, struct printbuf *err);
/* Open: takes ownership of bds (closed on failure too). NULL entries are
 * missing devices (BKFS_OPEN_DEGRADED). */
int bkfs_open_devs(struct blockdev **bds, unsigned nr, unsigned flags, struct bkfs_fs **out, struct printbuf *err);
int bkfs_open(char *const *paths, unsigned nr, unsigned flags, struct bkfs_fs **out, struct printbuf *err);
/* Checkpoint, mark clean and close. Returns the first error seen. */
int bkfs_close(struct bkfs_fs *fs);
/* A device write or flush failed (EIO, ENOSPC of the host under an image
 * file...): what was written can no longer be trusted to be durable, so
 * the filesystem stops writing (fs->error: every commit and checkpoint is
 * refused, bkfs_close writes nothing and fails). True if that is the case
 * (also after any earlier fs->error). */
bool bkfs_write_failed(struct bkfs_fs *fs);
/* Why: "DEV: N failed writes (last: REASON)" per failing device, or the
 * engine's own failure. */
void bkfs_write_failed_to_text(struct printbuf *out, struct bkfs_fs *fs);
/* Close without writing anything (after errors, or read-only). */
void bkfs_close_nowrite(struct bkfs_fs *fs);
/* Hooks for the fs layer: create the root directory on a fresh filesystem. */
int bkfs_fs_create_root(struct bkfs_fs *fs);

#endif
