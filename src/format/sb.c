/* sb.c - superblock magics, checksum, validation, printing, and its copies on
 * the devices: where they are, reading the best one, writing them all.
 * A superblock copy always lives in a BKFS_SB_SIZE (4096) byte buffer; the
 * checksum and validation read the whole buffer, not just sizeof(struct bkfs_sb). */
#include "sb.h"
#include "invalid.h"
#include <stdlib.h>
#include <string.h>

static u64 uuid_u64(const struct bkfs_sb *sb)
{
	u64 v = 0;
	for (unsigned i = 0; i < 8; i++) /* little-endian, like every on-disk integer */
		v |= (u64)sb->uuid[i] << (8 * i);
	return v;
}

u64 sb_node_magic(const struct bkfs_sb *sb)
{
	return uuid_u64(sb) ^ BKFS_NODE_MAGIC_XOR;
}

u64 sb_journal_magic(const struct bkfs_sb *sb)
{
	return uuid_u64(sb) ^ BKFS_JOURNAL_MAGIC_XOR;
}

static u32 sb_csum(const struct bkfs_sb *sb)
{
	return bkfs_crc32c(0, (const u8 *)sb + 4, BKFS_SB_SIZE - 4);
}

void sb_csum_set(struct bkfs_sb *sb)
{
	sb->csum = sb_csum(sb);
}

static bool is_pow2(u64 v)
{
	return v && !(v & (v - 1));
}

/* largest btree node accepted: 8 MiB */
#define SB_BTREE_NODE_MAX_SECTORS (16384u)

int sb_validate(const struct bkfs_sb *sb, struct printbuf *err)
{
	if (sb->magic != BKFS_SB_MAGIC || sb->magic2 != BKFS_SB_MAGIC2)
		INVALID("sb: bad magic");
	if (!format_version_ok(sb->version))
		INVALID("sb: unsupported version %u", sb->version);
	u32 csum = sb_csum(sb);
	if (csum != sb->csum) {
		if (err)
			pb_printf(err, "sb: checksum mismatch (stored 0x%08x, computed 0x%08x)",
				  sb->csum, csum);
		return -BKFS_E_CSUM;
	}
	if (!is_pow2(sb->block_size) || sb->block_size < 512 || sb->block_size > 65536)
		INVALID("sb: bad block_size %u", sb->block_size);
	if (!is_pow2(sb->btree_node_size) || sb->btree_node_size < 8 ||
	    sb->btree_node_size > SB_BTREE_NODE_MAX_SECTORS ||
	    ((u64)sb->btree_node_size << SECTOR_SHIFT) < sb->block_size)
		INVALID("sb: bad btree_node_size %u", sb->btree_node_size);
	if (!is_pow2(sb->bucket_size) || ((u64)sb->bucket_size << SECTOR_SHIFT) < sb->block_size ||
	    sb->bucket_size < sb->btree_node_size)
		INVALID("sb: bad bucket_size %u", sb->bucket_size);
	if (sb->nr_devices < 1 || sb->nr_devices > BKFS_MAX_DEVS)
		INVALID("sb: bad nr_devices %u", sb->nr_devices);
	if (sb->dev_idx >= sb->nr_devices)
		INVALID("sb: dev_idx %u >= nr_devices %u", sb->dev_idx, sb->nr_devices);
	if (sb->data_replicas < 1 || sb->data_replicas > BKFS_MAX_REPLICAS ||
	    sb->data_replicas > sb->nr_devices)
		INVALID("sb: bad data_replicas %u", sb->data_replicas);
	if (sb->metadata_replicas < 1 || sb->metadata_replicas > sb_max_metadata_replicas(sb->nr_devices))
		INVALID("sb: bad metadata_replicas %u", sb->metadata_replicas);
	if (sb->csum_type != CSUM_NONE && sb->csum_type != CSUM_CRC32C)
		INVALID("sb: unknown csum_type %u", sb->csum_type);

	for (unsigned i = 0; i < sb->nr_devices; i++) {
		const struct bkfs_member *m = &sb->members[i];
		if (m->nbuckets < 16)
			INVALID("sb: member %u: nbuckets %llu < 16", i, (unsigned long long)m->nbuckets);
		if (m->nbuckets > (1ull << 55) / sb->bucket_size)
			INVALID("sb: member %u: nbuckets %llu too big", i, (unsigned long long)m->nbuckets);
		if (m->first_bucket >= m->nbuckets)
			INVALID("sb: member %u: first_bucket %u >= nbuckets", i, m->first_bucket);
		if (m->state > 2)
			INVALID("sb: member %u: bad state %u", i, m->state);
		if (m->btree_bitmap_shift >= 64)
			INVALID("sb: member %u: bad btree_bitmap_shift %u", i, m->btree_bitmap_shift);
		/* the journal lies in [first_bucket, nbuckets - 1): the last bucket
		 * holds the third superblock copy */
		if (!m->journal_nr_buckets ||
		    m->journal_bucket_start < m->first_bucket ||
		    m->journal_bucket_start >= m->nbuckets - 1 ||
		    m->journal_nr_buckets > m->nbuckets - 1 - m->journal_bucket_start)
			INVALID("sb: member %u: bad journal range %llu+%llu", i,
				(unsigned long long)m->journal_bucket_start,
				(unsigned long long)m->journal_nr_buckets);
	}
	if (sb->clean_cp_pos) {
		u64 ring = UINT64_MAX, off = sb->clean_cp_pos - 1;
		for (unsigned i = 0; i < sb->nr_devices; i++)
			ring = MIN(ring, sb->members[i].journal_nr_buckets * ((u64)sb->bucket_size << SECTOR_SHIFT));
		if (off % sb->block_size || off >= ring)
			INVALID("sb: clean_cp_pos %llu outside the journal ring or not block aligned",
				(unsigned long long)sb->clean_cp_pos);
	}
	for (unsigned i = 0; i < BTREE_ID_NR; i++) {
		const struct bkfs_btree_ptr *r = sb_root(sb, i);
		if (r->nr_ptrs > BKFS_MAX_REPLICAS || r->level >= BTREE_MAX_DEPTH)
			INVALID("sb: bad root for btree %s (nr_ptrs %u level %u)",
				btree_id_str(i), r->nr_ptrs, r->level);
	}
	return 0;
}

static void uuid_to_text(struct printbuf *out, const u8 *u)
{
	for (unsigned i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			pb_printf(out, "-");
		pb_printf(out, "%02x", u[i]);
	}
}

void sb_to_text(struct printbuf *out, const struct bkfs_sb *sb)
{
	pb_printf(out, "csum:              0x%08x\n", sb->csum);
	pb_printf(out, "version:           %u\n", sb->version);
	pb_printf(out, "magic:             0x%016llx 0x%016llx\n",
		  (unsigned long long)sb->magic, (unsigned long long)sb->magic2);
	pb_printf(out, "uuid:              ");
	uuid_to_text(out, sb->uuid);
	pb_printf(out, "\nlabel:             \"");
	for (unsigned i = 0; i < sizeof(sb->label) && sb->label[i]; i++) {
		u8 c = sb->label[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			pb_printf(out, "%c", c);
		else
			pb_printf(out, "\\x%02x", c);
	}
	pb_printf(out, "\"\n");
	pb_printf(out, "seq:               %llu\n", (unsigned long long)sb->seq);
	pb_printf(out, "block_size:        %u bytes\n", sb->block_size);
	pb_printf(out, "bucket_size:       %u sectors\n", sb->bucket_size);
	pb_printf(out, "btree_node_size:   %u sectors\n", sb->btree_node_size);
	pb_printf(out, "nr_devices:        %u\n", sb->nr_devices);
	pb_printf(out, "dev_idx:           %u\n", sb->dev_idx);
	pb_printf(out, "data_replicas:     %u\n", sb->data_replicas);
	pb_printf(out, "metadata_replicas: %u\n", sb->metadata_replicas);
	pb_printf(out, "csum_type:         %s\n",
		  sb->csum_type == CSUM_NONE ? "none" :
		  sb->csum_type == CSUM_CRC32C ? "crc32c" : "unknown");
	pb_printf(out, "compression:       %u\n", sb->compression);
	pb_printf(out, "clean:             %u\n", sb->clean);
	pb_printf(out, "opt_flags:         0x%x\n", sb->opt_flags);
	pb_printf(out, "key_version:       %llu\n", (unsigned long long)sb->key_version);
	pb_printf(out, "node_seq:          %llu\n", (unsigned long long)sb->node_seq);
	pb_printf(out, "journal_seq:       %llu\n", (unsigned long long)sb->journal_seq);
	pb_printf(out, "clean_cp_pos:      %llu\n", (unsigned long long)sb->clean_cp_pos);
	pb_printf(out, "next_inum:         %llu\n", (unsigned long long)sb->next_inum);
	pb_printf(out, "time_base_ns:      %llu\n", (unsigned long long)sb->time_base_ns);
	pb_printf(out, "fsck_last_run:     %llu\n", (unsigned long long)sb->fsck_last_run);

	unsigned nr = MIN((unsigned)sb->nr_devices, (unsigned)BKFS_MAX_DEVS);
	pb_printf(out, "members:\n");
	for (unsigned i = 0; i < nr; i++) {
		const struct bkfs_member *m = &sb->members[i];
		static const char *const states[] = { "rw", "ro", "failed" };
		pb_printf(out, "  member %u: uuid ", i);
		uuid_to_text(out, m->uuid);
		pb_printf(out, " nbuckets %llu first_bucket %u state %s journal %llu+%llu "
			  "btree_bitmap 0x%016llx shift %u\n",
			  (unsigned long long)m->nbuckets, m->first_bucket,
			  m->state < ARRAY_SIZE(states) ? states[m->state] : "unknown",
			  (unsigned long long)m->journal_bucket_start,
			  (unsigned long long)m->journal_nr_buckets,
			  (unsigned long long)m->btree_bitmap, m->btree_bitmap_shift);
	}
	pb_printf(out, "roots:\n");
	for (unsigned i = 0; i < BTREE_ID_NR; i++) {
		const struct bkfs_btree_ptr *r = sb_root(sb, i);
		pb_printf(out, "  %-10s seq %llu level %u min_key ", btree_id_str(i),
			  (unsigned long long)r->seq, r->level);
		bpos_to_text(out, r->min_key);
		pb_printf(out, " ptrs:");
		unsigned np = MIN((unsigned)r->nr_ptrs, (unsigned)BKFS_MAX_REPLICAS);
		for (unsigned j = 0; j < np; j++) {
			pb_printf(out, j ? ", " : " ");
			ptr_to_text(out, &r->ptrs[j]);
		}
		if (!np)
			pb_printf(out, " none");
		pb_printf(out, "\n");
	}
	pb_printf(out, "fsck errors:\n");
	unsigned nerr = 0;
	for (unsigned i = 0; i < BKFS_FSCK_ERR_SLOTS; i++)
		if (sb->fsck_err_count[i]) {
			pb_printf(out, "  slot %u: %u\n", i, sb->fsck_err_count[i]);
			nerr++;
		}
	if (!nerr)
		pb_printf(out, "  none\n");
}

bool sb_node_seq_blacklisted(const struct bkfs_sb *sb, u64 seq)
{
	for (unsigned i = 0; i < ARRAY_SIZE(sb->node_seq_blacklist); i++)
		if (sb->node_seq_blacklist[i].end && seq >= sb->node_seq_blacklist[i].start &&
		    seq <= sb->node_seq_blacklist[i].end)
			return true;
	return false;
}

void sb_node_seq_blacklist_add(struct bkfs_sb *sb, u64 start, u64 end)
{
	unsigned n = ARRAY_SIZE(sb->node_seq_blacklist);
	memmove(&sb->node_seq_blacklist[0], &sb->node_seq_blacklist[1], (n - 1) * sizeof(sb->node_seq_blacklist[0]));
	sb->node_seq_blacklist[n - 1].start = start;
	sb->node_seq_blacklist[n - 1].end = end;
}

unsigned sb_copy_offsets(const struct bkfs_sb *sb, const struct bkfs_member *m, u64 out[3])
{
	u64 bucket_bytes = (u64)sb->bucket_size << SECTOR_SHIFT;
	out[0] = BKFS_SB_OFFSET;
	out[1] = BKFS_SB_BACKUP_OFFSET;
	out[2] = (m->nbuckets - 1) * bucket_bytes;
	return 3;
}

int bkfs_read_super(struct blockdev *bd, struct bkfs_sb *sb, unsigned *copies_ok, struct printbuf *err)
{
	u8 *buf = malloc(BKFS_SB_SIZE);
	bool found = false;
	unsigned ok = 0;
	if (!buf)
		return -BKFS_E_NOMEM;
	u64 offs[2 + 16] = { BKFS_SB_OFFSET, BKFS_SB_BACKUP_OFFSET };
	unsigned n = 2;
	/* the third copy starts the last bucket: try every bucket size */
	for (u64 bs = 4096; bs <= (64u << 20) && bd->size >= 2 * bs; bs <<= 1)
		offs[n++] = (bd->size / bs - 1) * bs;
	for (unsigned i = 0; i < n; i++) {
		if (bd_read(bd, buf, offs[i], BKFS_SB_SIZE))
			continue;
		struct bkfs_sb *c = (struct bkfs_sb *)buf;
		if (sb_validate(c, NULL))
			continue;
		if (i >= 2) {
			/* must really be where this copy says the last bucket is */
			u64 bb = (u64)c->bucket_size << SECTOR_SHIFT;
			if (c->dev_idx >= BKFS_MAX_DEVS || offs[i] != (c->members[c->dev_idx].nbuckets - 1) * bb)
				continue;
		}
		ok++;
		if (!found || c->seq > sb->seq) {
			memcpy(sb, c, sizeof(*sb));
			found = true;
		}
	}
	free(buf);
	if (copies_ok)
		*copies_ok = ok;
	if (!found) {
		if (err)
			pb_printf(err, "%s: no valid bkfs superblock found", bd->path ? bd->path : "device");
		return -BKFS_E_NOENT;
	}
	return 0;
}

int sb_write_copies(struct blockdev *const *bds, unsigned nr, const struct bkfs_sb *sb)
{
	u8 *buf = xcalloc(1, BKFS_SB_SIZE);
	int ret = 0, ok = 0;
	if (!buf)
		return -BKFS_E_NOMEM;
	/* two rounds, each flushed before the next one starts: the primary copy
	 * of every member, then the backups. Power lost during one round (with
	 * its writes reordered or torn) leaves the other round's copies valid;
	 * writing all copies before one flush could tear them all. */
	for (unsigned round = 0; round < 2; round++) {
		for (unsigned d = 0; d < nr; d++) {
			struct blockdev *bd = bds[d];
			if (!bd)
				continue;
			u64 offs[3];
			unsigned n = sb_copy_offsets(sb, &sb->members[d], offs);
			memset(buf, 0, BKFS_SB_SIZE);
			memcpy(buf, sb, sizeof(*sb));
			((struct bkfs_sb *)buf)->dev_idx = d;
			sb_csum_set((struct bkfs_sb *)buf);
			for (unsigned i = round ? 1 : 0; i < (round ? n : 1); i++) {
				int r = bd_write(bd, buf, offs[i], BKFS_SB_SIZE);
				if (r)
					ret = r;
				else
					ok++;
			}
		}
		for (unsigned d = 0; d < nr; d++) {
			int r = bds[d] ? bd_flush(bds[d]) : 0;
			if (r)
				ret = r;
		}
	}
	free(buf);
	return ok ? 0 : (ret ? ret : -BKFS_E_IO);
}
