/* corrupt_journal.c - kinds that damage the journal: an entry after the
 * checkpoint of an unclean filesystem (bad checksum, erased, records that do
 * not parse), or every entry of a clean one. */
#include "corrupt_int.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../format/journal_format.h"

struct jentry_loc { u64 pos, seq; u32 bytes, total; u16 type; };

/* Valid entries in member 0's ring (every member holds the same ring). */
static int ring_entries(struct corrupt_ctx *c, struct jentry_loc **out, size_t *nr, u64 *ring_start, u64 *ring_bytes)
{
	struct bkfs_fs *fs = c->fs;
	struct bkfs_member *m = &fs->sb.members[0];
	u64 start = m->journal_bucket_start * fs->bucket_bytes, bytes = m->journal_nr_buckets * fs->bucket_bytes;
	u8 *ring = malloc(bytes);
	if (!ring)
		return -BKFS_E_NOMEM;
	unsigned d = 0;
	while (d < fs->nr_devs && !fs->devs[d].bd)
		d++;
	if (d == fs->nr_devs || bd_read(fs->devs[d].bd, ring, start, bytes)) {
		free(ring);
		return -BKFS_E_IO;
	}
	u64 magic = sb_journal_magic(&fs->sb);
	struct jentry_loc *v = NULL;
	size_t n = 0, cap = 0;
	for (u64 off = 0; off + sizeof(struct bkfs_jentry_hdr) <= bytes; off += fs->block_bytes) {
		struct bkfs_jentry_hdr *h = (void *)(ring + off);
		if (h->magic != magic || !format_version_ok(h->version) || h->bytes < sizeof(*h) ||
		    h->bytes > bytes - off || bkfs_crc32c(0, (u8 *)h + 4, h->bytes - 4) != h->csum)
			continue;
		if (darray_room(v, cap, n + 1, 64)) {
			free(ring);
			free(v);
			return -BKFS_E_NOMEM;
		}
		v[n++] = (struct jentry_loc){ .pos = off, .seq = h->seq, .bytes = h->bytes,
					      .total = ROUND_UP(h->bytes, fs->block_bytes), .type = h->type };
		off += ROUND_UP(h->bytes, fs->block_bytes) - fs->block_bytes;
	}
	free(ring);
	*out = v;
	*nr = n;
	*ring_start = start;
	*ring_bytes = bytes;
	return 0;
}

/* Make the filesystem unclean: open it read-write and commit a few journaled
 * transactions (the root directory's times), then stop without a checkpoint. */
static int make_unclean(struct corrupt_ctx *c, unsigned nr)
{
	int ret = d_open(c, OPEN_RW);
	if (ret)
		return ret;
	for (unsigned i = 0; i < nr && !ret; i++) {
		struct bkey_buf kb;
		if ((ret = inode_lookup(c->fs, BKFS_ROOT_INO, &kb)))
			break;
		struct bkfs_inode *in = bkey_val(&kb.k);
		in->mtime_ns += 1000 + i;
		in->ctime_ns += 1000 + i;
		struct trans t;
		trans_init(&t, c->fs);
		ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
		if (!ret)
			ret = trans_commit(&t, COMMIT_SYNC);
		trans_exit(&t);
	}
	if (ret)
		report_fail(c, "committing journaled updates", ret);
	d_close(c, false);
	return ret;
}

/* Entries newer than the newest checkpoint (needs the fs open). */
static size_t entries_after_checkpoint(struct jentry_loc *v, size_t n, struct jentry_loc *out, size_t max)
{
	u64 cp = 0;
	for (size_t i = 0; i < n; i++)
		if (v[i].type == JENTRY_CHECKPOINT && v[i].seq > cp)
			cp = v[i].seq;
	size_t m = 0;
	for (size_t i = 0; i < n && m < max; i++)
		if (v[i].type == JENTRY_KEYS && v[i].seq > cp)
			out[m++] = v[i];
	/* sort by seq */
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && out[j - 1].seq > out[j].seq; j--) {
			struct jentry_loc t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return m;
}

enum jkind { JK_CSUM, JK_GAP, JK_TORN };

static int journal_kind(struct corrupt_ctx *c, enum jkind kind)
{
	int ret;
	/* the analysis open (read-only) happened in the driver: redo it rw */
	d_close(c, false);
	if ((ret = make_unclean(c, 3)))
		return ret;
	if ((ret = d_open(c, OPEN_RO)))
		return ret;
	struct jentry_loc *v, after[16];
	size_t n;
	u64 start, bytes;
	if ((ret = ring_entries(c, &v, &n, &start, &bytes)))
		return ret;
	size_t m = entries_after_checkpoint(v, n, after, ARRAY_SIZE(after));
	free(v);
	if (m < 2)
		return no_target(c, "the journal did not keep entries after its checkpoint");
	/* a gap needs an entry after the one removed */
	struct jentry_loc e = kind == JK_GAP ? after[pick(c, m - 1)] : after[pick(c, m)];
	u8 *buf = malloc(e.total);
	if (!buf)
		return -BKFS_E_NOMEM;
	unsigned d0 = 0;
	while (!c->fs->devs[d0].bd)
		d0++;
	if ((ret = bd_read(c->fs->devs[d0].bd, buf, start + e.pos, e.total))) {
		free(buf);
		return ret;
	}
	struct bkfs_jentry_hdr *h = (void *)buf;
	switch (kind) {
	case JK_CSUM: {
		u32 at = sizeof(*h) + (u32)pick(c, e.bytes - sizeof(*h));
		buf[at] ^= 0xff;
		pb_printf(&c->r->damaged, "journal entry seq %llu (ring offset %llu, %u bytes): byte %u flipped",
			  (unsigned long long)e.seq, (unsigned long long)e.pos, e.bytes, at);
		break;
	}
	case JK_GAP:
		memset(buf, 0, e.total);
		pb_printf(&c->r->damaged, "journal entry seq %llu (ring offset %llu, %u bytes) erased; later entries follow a gap",
			  (unsigned long long)e.seq, (unsigned long long)e.pos, e.bytes);
		break;
	case JK_TORN: {
		struct bkfs_jrec *r = (void *)(buf + sizeof(*h));
		pb_printf(&c->r->damaged, "journal entry seq %llu (ring offset %llu): first record length %u -> 3, checksum recomputed",
			  (unsigned long long)e.seq, (unsigned long long)e.pos, r->bytes);
		r->bytes = 3;
		h->csum = bkfs_crc32c(0, buf + 4, h->bytes - 4);
		break;
	}
	}
	pb_printf(&c->r->lost, "the updates of this entry and of later ones (times of the root directory)");
	for (unsigned d = 0; d < c->fs->nr_devs && !ret; d++) {
		if (!c->fs->devs[d].bd)
			continue;
		u64 s = c->fs->sb.members[d].journal_bucket_start * c->fs->bucket_bytes;
		ret = queue_write(c, d, s + e.pos, buf, e.total);
	}
	free(buf);
	return ret;
}

int corrupt_journal_entry(struct corrupt_ctx *c) { return journal_kind(c, JK_CSUM); }
int corrupt_journal_gap(struct corrupt_ctx *c) { return journal_kind(c, JK_GAP); }
int corrupt_journal_torn(struct corrupt_ctx *c) { return journal_kind(c, JK_TORN); }

int corrupt_journal_no_checkpoint(struct corrupt_ctx *c)
{
	if (!c->sb.clean)
		return no_target(c, "the filesystem is not clean (its superblock roots are not valid)");
	struct jentry_loc *v;
	size_t n;
	u64 start, bytes;
	int ret = ring_entries(c, &v, &n, &start, &bytes);
	if (ret)
		return ret;
	u8 *zero = calloc(1, 1u << 20);
	unsigned nr = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		nr++;
		for (unsigned d = 0; d < c->nr_devs && !ret; d++) {
			if (!c->fs->devs[d].bd)
				continue;
			u64 s = c->fs->sb.members[d].journal_bucket_start * c->fs->bucket_bytes;
			for (u32 o = 0; o < v[i].total && !ret; o += 1u << 20)
				ret = queue_write(c, d, s + v[i].pos + o, zero, MIN(v[i].total - o, 1u << 20));
		}
	}
	free(zero);
	free(v);
	if (!nr)
		return no_target(c, "the journal holds no entries");
	pb_printf(&c->r->damaged, "journal: all %u entries erased, checkpoints included (the superblock is clean and holds the roots)", nr);
	pb_printf(&c->r->lost, "none");
	return ret;
}

