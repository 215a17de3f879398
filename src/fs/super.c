/* super.c - format, open, close. */
#include "super.h"
#include "../btree/node.h"
#include "../format/inode_format.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>

static bool is_pow2(u64 v) { return v && !(v & (v - 1)); }

static void random_uuid(u8 uuid[16])
{
	int fd = open("/dev/urandom", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, uuid, 16) : -1;
	if (fd >= 0)
		close(fd);
	if (n != 16) {
		u64 s = now_ns() ^ (u64)getpid() << 32;
		for (int i = 0; i < 16; i++)
			uuid[i] = rng_next(&s);
	}
}

static int fs_alloc(struct bkfs_fs **out, struct blockdev **bds, unsigned nr, unsigned flags)
{
	struct bkfs_fs *fs = xcalloc(1, sizeof(*fs));
	if (!fs)
		return -BKFS_E_NOMEM;
	fs->flags = flags;
	fs->read_all_copies = flags & BKFS_OPEN_ALL_COPIES;
	fs->nr_devs = nr;
	for (unsigned i = 0; i < nr; i++) {
		fs->devs[i].bd = bds[i];
		fs->devs[i].idx = i;
		fs->devs[i].m = &fs->sb.members[i];
	}
	fs->hooks = &bkfs_engine_hooks;
	*out = fs;
	return 0;
}

static int fs_setup(struct bkfs_fs *fs)
{
	fs->node_bytes = fs->sb.btree_node_size << SECTOR_SHIFT;
	fs->bucket_bytes = fs->sb.bucket_size << SECTOR_SHIFT;
	fs->block_bytes = fs->sb.block_size;
	fs->key_version = fs->sb.key_version;
	fs->node_seq = fs->sb.node_seq;
	fs->next_inum = fs->sb.next_inum;
	int ret = btree_cache_init(fs);
	if (!ret)
		ret = alloc_init(fs);
	if (!ret)
		ret = journal_init(fs);
	return ret;
}

static void fs_free(struct bkfs_fs *fs, bool close_devs)
{
	journal_exit(fs);
	alloc_exit(fs);
	btree_cache_exit(fs);
	free(fs->pending_free);
	free(fs->bad_copies);
	free(fs->pending_free_btree);
	if (close_devs)
		for (unsigned i = 0; i < fs->nr_devs; i++)
			bd_close(fs->devs[i].bd);
	free(fs);
}

static u64 default_bucket_size(u64 dev_bytes, u64 node_bytes)
{
	u64 bs = 1ull << 17;
	while (bs < (2u << 20) && dev_bytes / (bs * 2) >= 4096)
		bs <<= 1;
	return MAX(bs, node_bytes);
}

int bkfs_format_devs(struct blockdev **bds, unsigned nr, const struct format_opts *o, struct printbuf *err)
{
	u64 block = o->block_size ? o->block_size : 4096;
	u64 node = o->btree_node_size ? o->btree_node_size : 64 << 10;
	unsigned replicas = o->replicas ? o->replicas : 1;
	u64 min_dev = UINT64_MAX;
	int ret;

	if (!nr || nr > BKFS_MAX_DEVS) {
		pb_printf(err, "between 1 and %d devices are supported", BKFS_MAX_DEVS);
		return -BKFS_E_INVAL;
	}
	for (unsigned i = 0; i < nr; i++)
		min_dev = MIN(min_dev, bds[i]->size);
	u64 bucket = o->bucket_size ? o->bucket_size : default_bucket_size(min_dev, node);
	if (!is_pow2(block) || block < 512 || block > 65536) {
		pb_printf(err, "block size %llu: must be a power of two between 512 and 64k", (unsigned long long)block);
		return -BKFS_E_INVAL;
	}
	if (!is_pow2(node) || node < 4096 || node < block || node > (1u << 20)) {
		pb_printf(err, "btree node size %llu: must be a power of two, at least 4k and the block size, at most 1M",
			  (unsigned long long)node);
		return -BKFS_E_INVAL;
	}
	if (!is_pow2(bucket) || bucket < node || bucket > (64u << 20)) {
		pb_printf(err, "bucket size %llu: must be a power of two, at least the btree node size, at most 64M",
			  (unsigned long long)bucket);
		return -BKFS_E_INVAL;
	}
	if (o->journal_size && (o->journal_size < (1u << 20) || o->journal_size > (1ull << 30))) {
		pb_printf(err, "journal size %llu: must be between 1M and 1G", (unsigned long long)o->journal_size);
		return -BKFS_E_INVAL;
	}
	unsigned data_replicas = o->data_replicas ? o->data_replicas : replicas;
	unsigned metadata_replicas = o->metadata_replicas ? o->metadata_replicas :
				     MAX(replicas, (unsigned)BKFS_DEFAULT_METADATA_REPLICAS);
	unsigned rs[2] = { replicas, data_replicas };
	for (unsigned i = 0; i < 2; i++)
		if (rs[i] < 1 || rs[i] > BKFS_MAX_REPLICAS || rs[i] > nr) {
			pb_printf(err, "%sreplicas %u: must be between 1 and the number of devices (%u, at most 4)",
				  i == 1 ? "data " : "", rs[i], nr);
			return -BKFS_E_INVAL;
		}
	if (metadata_replicas < 1 || metadata_replicas > sb_max_metadata_replicas(nr)) {
		pb_printf(err, "metadata replicas %u: must be between 1 and %u (the number of devices, or 2 on one device)",
			  metadata_replicas, sb_max_metadata_replicas(nr));
		return -BKFS_E_INVAL;
	}
	if (o->label && strlen(o->label) >= 32) {
		pb_printf(err, "label too long (at most 31 bytes)");
		return -BKFS_E_INVAL;
	}
	struct bkfs_sb sb = { 0 };
	sb.magic = BKFS_SB_MAGIC;
	sb.magic2 = BKFS_SB_MAGIC2;
	sb.version = BKFS_FORMAT_VERSION;
	random_uuid(sb.uuid);
	if (o->label)
		strcpy((char *)sb.label, o->label);
	sb.block_size = block;
	sb.bucket_size = bucket >> SECTOR_SHIFT;
	sb.btree_node_size = node >> SECTOR_SHIFT;
	sb.nr_devices = nr;
	sb.data_replicas = data_replicas;
	sb.metadata_replicas = metadata_replicas;
	sb.csum_type = CSUM_CRC32C;
	sb.key_version = 1;
	sb.node_seq = 1;
	sb.next_inum = BKFS_FIRST_INO;
	sb.time_base_ns = (u64)time(NULL) * 1000000000ull;
	u64 first = DIV_ROUND_UP(BKFS_SB_BACKUP_OFFSET + BKFS_SB_SIZE, bucket);
	for (unsigned i = 0; i < nr; i++) {
		struct bkfs_member *m = &sb.members[i];
		u64 nb = bds[i]->size / bucket;
		u64 jbytes = o->journal_size ? o->journal_size :
			     MIN(MAX((u64)4 << 20, bds[i]->size / 128), (u64)64 << 20);
		u64 jb = MAX((u64)2, DIV_ROUND_UP(jbytes, bucket));
		if (nb < first + jb + 16) {
			pb_printf(err, "%s: device too small (%llu bytes): needs at least %llu bytes with %llu-byte buckets",
				  bds[i]->path ? bds[i]->path : "device", (unsigned long long)bds[i]->size,
				  (unsigned long long)((first + jb + 16) * bucket), (unsigned long long)bucket);
			return -BKFS_E_INVAL;
		}
		random_uuid(m->uuid);
		m->nbuckets = nb;
		m->first_bucket = first;
		m->journal_bucket_start = first;
		m->journal_nr_buckets = jb;
		u64 sectors = nb * (bucket >> SECTOR_SHIFT);
		m->btree_bitmap_shift = member_bitmap_min_shift(sectors);
	}
	/* refuse to overwrite an existing filesystem */
	for (unsigned i = 0; i < nr && !o->force; i++) {
		struct bkfs_sb old;
		if (!bkfs_read_super(bds[i], &old, NULL, NULL)) {
			pb_printf(err, "%s already holds a bkfs filesystem (use --force to overwrite)",
				  bds[i]->path ? bds[i]->path : "device");
			return -BKFS_E_EXIST;
		}
	}

	struct bkfs_fs *fs;
	if ((ret = fs_alloc(&fs, bds, nr, 0)))
		return ret;
	memcpy(&fs->sb, &sb, sizeof(sb));
	if ((ret = fs_setup(fs)))
		goto out;
	for (unsigned id = 0; id < BTREE_ID_NR; id++)
		if ((ret = btree_root_set_empty(fs, id)))
			goto out;
	/* every bucket gets an alloc key; superblock and journal buckets are marked */
	for (unsigned d = 0; d < nr; d++) {
		struct bkfs_member *m = &fs->sb.members[d];
		acct_add(fs, acct_pos_dev_data_type(d, DATA_free), m->nbuckets, 0, 0);
		for (u64 b = 0; b < m->nbuckets; b++) {
			struct bkfs_alloc a = *bucket_get(fs, d, b);
			u32 sectors;
			unsigned t = sb_journal_bucket_type(fs, d, b, &sectors);
			a.dirty_sectors = sectors;
			a.data_type = alloc_data_type(&a, t);
			bucket_update(fs, d, b, &a);
			bucket_set_dirty(fs, d, b);
		}
	}
	if ((ret = bkfs_fs_create_root(fs)))
		goto out;
	ret = bkfs_close(fs);
	return ret;
out:
	fs_free(fs, false);
	return ret;
}

int bkfs_format(char *const *paths, unsigned nr, const struct format_opts *o, struct printbuf *err)
{
	struct blockdev *bds[BKFS_MAX_DEVS] = { 0 };
	int ret = 0;
	if (nr > BKFS_MAX_DEVS) {
		pb_printf(err, "at most %d devices", BKFS_MAX_DEVS);
		return -BKFS_E_INVAL;
	}
	for (unsigned i = 0; i < nr; i++) {
		for (unsigned j = 0; j < i; j++)
			if (!strcmp(paths[i], paths[j])) {
				pb_printf(err, "%s given twice", paths[i]);
				ret = -BKFS_E_INVAL;
				goto out;
			}
		if ((ret = file_dev_open(paths[i], 0, &bds[i]))) {
			pb_printf(err, "%s: %s", paths[i], bkfs_strerror(ret));
			goto out;
		}
	}
	ret = bkfs_format_devs(bds, nr, o, err);
	if (!ret)
		return 0; /* devices were closed by bkfs_close */
out:
	for (unsigned i = 0; i < nr; i++)
		bd_close(bds[i]);
	return ret;
}

int bkfs_open_devs(struct blockdev **bds, unsigned nr, unsigned flags, struct bkfs_fs **out, struct printbuf *err)
{
	struct bkfs_sb sbs[BKFS_MAX_DEVS];
	struct blockdev *ordered[BKFS_MAX_DEVS] = { 0 };
	int best = -1, ret;
	struct bkfs_fs *fs = NULL;

	if (!nr || nr > BKFS_MAX_DEVS) {
		pb_printf(err, "between 1 and %d devices", BKFS_MAX_DEVS);
		ret = -BKFS_E_INVAL;
		goto err;
	}
	unsigned blank = 0;
	for (unsigned i = 0; i < nr; i++) {
		if (!bds[i])
			continue;
		ret = bkfs_read_super(bds[i], &sbs[i], NULL, NULL);
		if (ret == -BKFS_E_NOENT && (flags & BKFS_OPEN_DEGRADED)) {
			/* a wiped or replaced member: as if it had not been given
			 * (the open below decides whether enough are left) */
			fprintf(stderr, "bkfs: %s: no valid bkfs superblock: treated as a missing device\n",
				bds[i]->path ? bds[i]->path : "device");
			bd_close(bds[i]);
			bds[i] = NULL;
			blank++;
			continue;
		}
		if (ret) {
			bkfs_read_super(bds[i], &sbs[i], NULL, err); /* says why */
			goto err;
		}
		if (best < 0 || sbs[i].seq > sbs[best].seq)
			best = i;
	}
	if (best < 0) {
		pb_printf(err, blank ? "no valid bkfs superblock on any device" : "no devices");
		ret = blank ? -BKFS_E_NOENT : -BKFS_E_INVAL;
		goto err;
	}
	for (unsigned i = 0; i < nr; i++) {
		if (!bds[i])
			continue;
		if (memcmp(sbs[i].uuid, sbs[best].uuid, 16)) {
			pb_printf(err, "%s belongs to a different filesystem", bds[i]->path);
			ret = -BKFS_E_INVAL;
			goto err;
		}
		unsigned idx = sbs[i].dev_idx;
		if (idx >= sbs[best].nr_devices || ordered[idx]) {
			pb_printf(err, "%s: bad or duplicate member index %u", bds[i]->path, idx);
			ret = -BKFS_E_INVAL;
			goto err;
		}
		u64 need = sbs[best].members[idx].nbuckets * ((u64)sbs[best].bucket_size << SECTOR_SHIFT);
		if (bds[i]->size < need) {
			pb_printf(err, "%s is smaller (%llu bytes) than its filesystem (%llu bytes)", bds[i]->path,
				  (unsigned long long)bds[i]->size, (unsigned long long)need);
			ret = -BKFS_E_INVAL;
			goto err;
		}
		ordered[idx] = bds[i];
		bds[i] = NULL;
	}
	unsigned missing = 0;
	for (unsigned i = 0; i < sbs[best].nr_devices; i++)
		missing += !ordered[i];
	if (missing && (!(flags & BKFS_OPEN_DEGRADED) || missing >= sbs[best].metadata_replicas)) {
		pb_printf(err, "%u of %u devices missing%s", missing, sbs[best].nr_devices,
			  missing >= sbs[best].metadata_replicas ? " (not enough replicas)" : " (pass all devices)");
		ret = -BKFS_E_DEGRADED;
		goto err;
	}
	if ((ret = fs_alloc(&fs, ordered, sbs[best].nr_devices, flags)))
		goto err;
	memcpy(&fs->sb, &sbs[best], sizeof(fs->sb));
	if ((ret = fs_setup(fs)))
		goto err_fs;
	ret = journal_read_and_replay(fs, !(flags & BKFS_OPEN_NOREPLAY));
	if (ret == -BKFS_E_NOENT && fs->sb.clean) {
		for (unsigned id = 0; id < BTREE_ID_NR; id++)
			fs->roots[id].ptr = *sb_root(&fs->sb, id);
		ret = 0;
	}
	if (ret) {
		pb_printf(err, "journal: %s", ret == -BKFS_E_NOENT ? "no valid checkpoint found" : bkfs_strerror(ret));
		if (!(flags & BKFS_OPEN_FSCK))
			goto err_fs;
	}
	if (!fs->durable_node_seq) /* no checkpoint record: the clean superblock's */
		fs->durable_node_seq = fs->node_seq;
	/* a btree newer than the filesystem's format version: the checkpoint
	 * (or clean superblock) that gave every other root has none for it, so
	 * it starts empty. Not when the roots could not be read at all (fsck
	 * rebuilds them from a node scan). */
	for (unsigned id = BKFS_SB_ROOTS; !ret && id < BTREE_ID_NR; id++) {
		int r = 0;
		if (!fs->roots[id].b && !fs->roots[id].ptr.seq && !fs->roots[id].ptr.nr_ptrs)
			r = btree_root_set_empty(fs, id);
		if (r) {
			pb_printf(err, "%s", bkfs_strerror(r));
			ret = r;
			goto err_fs;
		}
	}
	ret = alloc_load(fs);
	if (ret && !(flags & BKFS_OPEN_FSCK)) {
		pb_printf(err, "reading allocation info: %s", bkfs_strerror(ret));
		goto err_fs;
	}
	ret = 0;
	if (!(flags & BKFS_OPEN_RDONLY)) {
		if (missing)
			fs->sb.members[0].state = fs->sb.members[0].state; /* degraded: writes use present devices */
		if (!fs->sb.clean) {
			/* a checkpoint may have died after writing nodes: never
			 * reuse their seqs, and let scans ignore them */
			sb_node_seq_blacklist_add(&fs->sb, fs->durable_node_seq + 1, fs->node_seq + NODE_SEQ_RECOVERY_JUMP);
			fs->node_seq += NODE_SEQ_RECOVERY_JUMP;
		}
		fs->sb.clean = 0;
		fs->sb.clean_cp_pos = 0;
		fs->sb.version = BKFS_FORMAT_VERSION; /* the upgrade of an older filesystem */
		if ((ret = bkfs_write_super(fs)) || (ret = btree_checkpoint(fs))) {
			pb_printf(err, "writing: %s", bkfs_strerror(ret));
			goto err_fs;
		}
	}
	*out = fs;
	return 0;
err_fs:
	fs_free(fs, true);
	return ret;
err:
	/* devices not yet handed to fs: those still in bds and those moved to ordered */
	for (unsigned i = 0; i < nr; i++)
		bd_close(bds[i]);
	for (unsigned i = 0; i < BKFS_MAX_DEVS; i++)
		bd_close(ordered[i]);
	return ret;
}

int bkfs_open(char *const *paths, unsigned nr, unsigned flags, struct bkfs_fs **out, struct printbuf *err)
{
	struct blockdev *bds[BKFS_MAX_DEVS] = { 0 };
	int ret;
	if (nr > BKFS_MAX_DEVS) {
		pb_printf(err, "at most %d devices", BKFS_MAX_DEVS);
		return -BKFS_E_INVAL;
	}
	for (unsigned i = 0; i < nr; i++) {
		if ((ret = file_dev_open(paths[i], flags & BKFS_OPEN_RDONLY ? BD_RDONLY : 0, &bds[i]))) {
			pb_printf(err, "%s: %s", paths[i], bkfs_strerror(ret));
			for (unsigned j = 0; j < i; j++)
				bd_close(bds[j]);
			return ret == -BKFS_E_NOENT || ret == -BKFS_E_BUSY ? ret : -BKFS_E_IO;
		}
	}
	return bkfs_open_devs(bds, nr, flags, out, err);
}

int bkfs_close(struct bkfs_fs *fs)
{
	int ret = 0;
	if (!fs)
		return 0;
	if (!(fs->flags & BKFS_OPEN_RDONLY) && !fs->error) {
		alloc_close_write_points(fs);
		ret = btree_checkpoint(fs);
		/* the checkpoint reopens write points, and a bucket emptied while
		 * open is only flagged need_inc_gen: close them again and write
		 * what that changed, until nothing changes */
		for (int i = 0; !ret && i < 8; i++) {
			alloc_close_write_points(fs);
			if (!ALLOC(fs)->nr_dirty)
				break;
			ret = btree_checkpoint(fs);
		}
		if (!ret) {
			fs->sb.clean = 1;
			for (unsigned id = 0; id < BTREE_ID_NR; id++)
				*sb_root(&fs->sb, id) = fs->roots[id].ptr;
			journal_note_clean(fs);
			ret = bkfs_write_super(fs);
		}
	} else if (fs->error) {
		ret = -BKFS_E_IO;
	}
	fs_free(fs, true);
	return ret;
}

bool bkfs_write_failed(struct bkfs_fs *fs)
{
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (fs->devs[d].bd && fs->devs[d].bd->nr_write_errors)
			fs->error = true;
	return fs->error;
}

void bkfs_write_failed_to_text(struct printbuf *out, struct bkfs_fs *fs)
{
	bool any = false;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		struct blockdev *bd = fs->devs[d].bd;
		if (!bd || !bd->nr_write_errors)
			continue;
		pb_printf(out, "%s%s: %llu failed write(s) (last: %s)", any ? "; " : "", bd->path ? bd->path : "device",
			  (unsigned long long)bd->nr_write_errors,
			  bd->host_errno ? strerror(bd->host_errno) : bkfs_strerror(bd->write_error));
		any = true;
	}
	if (!any && fs->error)
		pb_printf(out, "an update could not be completed (an I/O error)");
}

void bkfs_close_nowrite(struct bkfs_fs *fs)
{
	if (fs)
		fs_free(fs, true);
}
