/* scrub.h - read every copy of everything and repair what a good copy allows.
 *
 * Three phases, in this order, each in key order so a run can be cut into
 * bounded steps (the mount runs one step per hold of its engine lock):
 *   nodes:   every copy of every btree node, root first, level by level:
 *            a copy that fails to read, validate or match its pointer is
 *            rewritten in place from a good copy (btree_node_copy_rewrite);
 *   data:    every dirty replica of every extent (extents and reflink
 *            btrees) is read and its checksum verified; a bad replica is
 *            rewritten from a good one, or from the stripe's parity when no
 *            replica is good (ec_reconstruct), and read back;
 *   stripes: every stripe's parity is recomputed from its data blocks and
 *            compared; a bad parity block is rewritten.
 * What no good copy could repair is listed (by path where one exists).
 * Copies on missing devices are counted, not repaired (they are not there).
 * Repairs are writes over the bad copy at its own location: the location
 * belongs to the live object (its bucket is not reused while the key points
 * there), so no allocation or key changes. */
#ifndef BKFS_SCRUB_H
#define BKFS_SCRUB_H
#include "fsck.h"

enum scrub_phase { SCRUB_NODES, SCRUB_DATA, SCRUB_STRIPES, SCRUB_DONE };

struct scrub_stats {
	u64 nodes, node_copies, node_copies_bad, node_copies_repaired, nodes_lost;
	u64 extents, replicas, replicas_bad, replicas_repaired, extents_from_parity, extents_lost;
	u64 extents_unchecked; /* no checksum to verify */
	u64 stripes, parity_bad, parity_repaired, stripes_unchecked;
	u64 copies_missing;    /* on missing devices */
	u64 bytes_read, bytes_written;
	u64 ns;
};

struct scrub_loss {
	u64 inum;   /* the file whose data it was, 0 if none */
	char *what; /* the object and why */
	char *path; /* filled by scrub_finish(): the file's path, or NULL */
};

struct scrub {
	struct bkfs_fs *fs;
	bool repair;
	enum scrub_phase phase;
	unsigned btree_id, level;
	bool root_done;
	struct bpos pos;
	struct scrub_stats st;
	struct scrub_loss *lost;
	size_t nr_lost, cap_lost;
	u64 total_bytes; /* estimate of bytes a run reads (progress) */
	int error;       /* an operational error stopped the run */
	u8 *buf, *good;  /* extent regions */
	size_t buf_bytes;
	/* a step's nodes (one level) or extents in a batch, their copies read
	 * in device order (scrub.c, scrub_runs.h): the walk fills batch while
	 * the helpers verify flying (NULL: none); batches holds both */
	struct scrub_batch *batches[2], *batch, *flying;
	struct scrub_helper *helper; /* NULL: none (scrub_helper_on) */
};

/* Start a scrub of an open filesystem; repair needs it writable. */
void scrub_init(struct scrub *s, struct bkfs_fs *fs, bool repair);
/* Verify on helper threads too (where there is a second cpu: 2 x cpus - 1,
 * at most four, so that the devices have several reads in flight, and a
 * batch is verified while the walk fills the next): only where nothing
 * else uses the devices between steps (the offline command, not the mount:
 * a batch stays in flight from one step to the next, and the helpers read
 * the devices without their counters' lock). 0 or -BKFS_E_NOMEM. */
int scrub_helper_on(struct scrub *s);
/* Do at most budget units of work (a node, an extent, a stripe each; a
 * step reads its nodes' and extents' copies in device order, so a larger
 * budget reads in longer runs).
 * Returns 1 when the scrub is over, 0 when work remains, <0 on an
 * operational error (also kept in s->error; the scrub is then over). Between
 * steps the filesystem may change: each step starts again from its saved
 * position. */
int scrub_step(struct scrub *s, unsigned budget);
const char *scrub_phase_name(const struct scrub *s);
/* Fraction of the estimated work done, 0..1. */
double scrub_progress(const struct scrub *s);
/* After the last step: look up the paths of the files that lost data. */
void scrub_finish(struct scrub *s);
/* enum fsck_exit bits: 0 clean, 1 all repaired, 4 something bad is left
 * (or found without repair), 8 operational error. */
int scrub_exit_status(const struct scrub *s);
void scrub_report_text(struct printbuf *out, const struct scrub *s);
void scrub_report_json(struct printbuf *out, const struct scrub *s);
void scrub_exit(struct scrub *s);
/* bkfs scrub on image files (the devices already locked by the caller):
 * open (read-write unless !repair), scrub to the end, report to stdout and
 * json_path (may be NULL). progress: a bar on stderr when it is a terminal.
 * Returns the exit status. */
int bkfs_scrub(char *const *devs, unsigned nr, bool repair, bool progress, const char *json_path);

#endif
