/* journal.c - journal entries, ring space, checkpoint records, read and replay. */
#include "journal.h"
#include "../util/darray.h"
#include "../btree/trans.h"
#include "../format/journal_format.h"
#include <stdlib.h>
#include <string.h>

#define JOURNAL_MAX_ENTRY (256u << 10)

static struct journal *J(struct bkfs_fs *fs) { return fs->journal; }

static u64 ring_start(struct bkfs_fs *fs, unsigned dev)
{
	return fs->devs[dev].m->journal_bucket_start * fs->bucket_bytes;
}

int journal_init(struct bkfs_fs *fs)
{
	struct journal *j = xcalloc(1, sizeof(*j));
	if (!j)
		return -BKFS_E_NOMEM;
	j->ring_bytes = fs->sb.members[0].journal_nr_buckets * fs->bucket_bytes;
	for (unsigned d = 1; d < fs->nr_devs; d++)
		j->ring_bytes = MIN(j->ring_bytes, fs->sb.members[d].journal_nr_buckets * fs->bucket_bytes);
	j->seq = 1;
	fs->journal = j;
	return 0;
}

void journal_exit(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	if (!j)
		return;
	free(j->buf);
	free(j->overlay);
	free(j);
	fs->journal = NULL;
}

u64 journal_cur_seq(struct bkfs_fs *fs) { return J(fs) ? J(fs)->seq : 0; }
u64 journal_durable_seq(struct bkfs_fs *fs) { return J(fs) ? J(fs)->durable_seq : 0; }

static int buf_reserve(struct journal *j, size_t more)
{
	return darray_room(j->buf, j->buf_cap, j->buf_len + more, 4096);
}

static int add_record(struct journal *j, unsigned type, unsigned btree_id, unsigned level,
		      const void *data, size_t len)
{
	size_t bytes = ROUND_UP(sizeof(struct bkfs_jrec) + len, 8);
	int ret = buf_reserve(j, bytes);
	if (ret)
		return ret;
	struct bkfs_jrec *r = (struct bkfs_jrec *)(j->buf + j->buf_len);
	memset(r, 0, bytes);
	r->type = type;
	r->btree_id = btree_id;
	r->level = level;
	r->bytes = bytes;
	memcpy(r + 1, data, len);
	j->buf_len += bytes;
	j->nr_records++;
	return 0;
}

static u64 ring_used(struct journal *j)
{
	return (j->wpos + j->ring_bytes - j->cp_pos) % j->ring_bytes;
}

/* Write buf as entry `seq` at wpos on every member. */
static int write_entry(struct bkfs_fs *fs, unsigned type, bool flush)
{
	struct journal *j = J(fs);
	size_t total = ROUND_UP(sizeof(struct bkfs_jentry_hdr) + j->buf_len, fs->block_bytes);
	if (total > j->ring_bytes / 4)
		return -BKFS_E_JOURNAL_FULL;
	u8 *e = xcalloc(1, total);
	if (!e)
		return -BKFS_E_NOMEM;
	struct bkfs_jentry_hdr *h = (struct bkfs_jentry_hdr *)e;
	h->version = BKFS_FORMAT_VERSION;
	h->magic = sb_journal_magic(&fs->sb);
	h->seq = j->seq;
	h->bytes = sizeof(*h) + j->buf_len;
	h->type = type;
	h->nr_records = j->nr_records;
	h->checkpoint_seq = type == JENTRY_CHECKPOINT ? j->seq : j->checkpoint_seq;
	memcpy(e + sizeof(*h), j->buf, j->buf_len);
	h->csum = bkfs_crc32c(0, e + 4, h->bytes - 4);
	if (j->wpos + total > j->ring_bytes)
		j->wpos = 0;
	int ret = 0, ok = 0;
	/* preflush: the data the entry's keys point to must be on the media
	 * before the entry can be, else a crash that keeps the entry but not
	 * the data write (writes are reordered until a flush) replays extents
	 * over garbage */
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (fs->devs[d].bd && (ret = bd_flush(fs->devs[d].bd))) {
			free(e);
			return ret;
		}
	}
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!fs->devs[d].bd)
			continue;
		int r = bd_write(fs->devs[d].bd, e, ring_start(fs, d) + j->wpos, total);
		if (!r && flush)
			r = bd_flush(fs->devs[d].bd);
		if (r)
			ret = r;
		else
			ok++;
	}
	free(e);
	if (!ok)
		return ret ? ret : -BKFS_E_IO;
	if (type == JENTRY_CHECKPOINT) {
		j->cp_pos = j->wpos;
		j->cp_len = total;
		j->checkpoint_seq = j->seq;
	}
	j->wpos += total;
	if (flush)
		j->durable_seq = j->seq;
	j->seq++;
	j->buf_len = 0;
	j->nr_records = 0;
	return 0;
}

/* Would writing `more` record bytes run into the protected checkpoint entry? */
static bool ring_would_fill(struct bkfs_fs *fs, size_t more)
{
	struct journal *j = J(fs);
	u64 need = ROUND_UP(sizeof(struct bkfs_jentry_hdr) + more, fs->block_bytes);
	u64 margin = 2 * (u64)JOURNAL_MAX_ENTRY / 4 + 8 * fs->block_bytes;
	if (j->wpos + need > j->ring_bytes)
		need += j->ring_bytes - j->wpos; /* the tail is skipped on wrap */
	return ring_used(j) + need + margin > j->ring_bytes;
}

static int write_open_entry(struct bkfs_fs *fs, bool flush)
{
	struct journal *j = J(fs);
	if (!j->nr_records) {
		if (flush)
			for (unsigned d = 0; d < fs->nr_devs; d++)
				if (fs->devs[d].bd)
					bd_flush(fs->devs[d].bd);
		if (flush)
			j->durable_seq = j->seq - 1;
		return 0;
	}
	if (ring_would_fill(fs, j->buf_len)) {
		/* the btrees already hold these keys: a checkpoint supersedes them */
		j->buf_len = 0;
		j->nr_records = 0;
		return btree_checkpoint(fs);
	}
	return write_entry(fs, JENTRY_KEYS, flush);
}

bool journal_needs_flush(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	if (!j || (fs->flags & BKFS_OPEN_RDONLY))
		return false;
	return j->nr_records || j->durable_seq + 1 < j->seq;
}

int journal_flush(struct bkfs_fs *fs)
{
	if (!J(fs) || (fs->flags & BKFS_OPEN_RDONLY))
		return 0;
	return write_open_entry(fs, true);
}

int journal_commit_trans(struct bkfs_fs *fs, struct trans *t, u64 *seq)
{
	struct journal *j = J(fs);
	size_t bytes = 0;
	int ret;
	for (size_t i = 0; i < t->nr; i++)
		bytes += ROUND_UP(sizeof(struct bkfs_jrec) + bkey_bytes(t->u[i].k), 8);
	if (bytes + sizeof(struct bkfs_jentry_hdr) > JOURNAL_MAX_ENTRY / 2) {
		/* too big for one entry: make it durable through a checkpoint */
		*seq = j->seq;
		return btree_checkpoint(fs);
	}
	if (j->buf_len + bytes > JOURNAL_MAX_ENTRY / 2 && (ret = write_open_entry(fs, false)))
		return ret;
	for (size_t i = 0; i < t->nr; i++)
		if ((ret = add_record(j, JR_KEY, t->u[i].btree_id, 0, t->u[i].k, bkey_bytes(t->u[i].k))))
			return ret;
	*seq = j->seq;
	if (t->flags & COMMIT_SYNC)
		return write_open_entry(fs, true);
	if (ring_used(j) > j->ring_bytes / 2)
		return btree_checkpoint(fs);
	return 0;
}

int journal_write_checkpoint(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	int ret;
	if (j->sb_dirty) {
		if ((ret = bkfs_write_super(fs)))
			return ret;
		j->sb_dirty = false;
	}
	j->buf_len = 0; /* pending records are contained in the checkpoint */
	j->nr_records = 0;
	struct bkfs_jstate st = {
		.key_version = fs->key_version,
		.node_seq = fs->node_seq,
		.next_inum = fs->next_inum,
		.clock = fs->clock,
	};
	if ((ret = add_record(j, JR_STATE, 0, 0, &st, sizeof(st))))
		return ret;
	for (unsigned id = 0; id < BTREE_ID_NR; id++) {
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_btree_ptr, POS_MAX, sizeof(struct bkfs_btree_ptr));
		memcpy(bkey_val(&kb.k), &fs->roots[id].ptr, sizeof(struct bkfs_btree_ptr));
		if ((ret = add_record(j, JR_ROOT, id, fs->roots[id].ptr.level, &kb.k, bkey_bytes(&kb.k))))
			return ret;
	}
	/* keep the previous checkpoint intact: never write over it */
	u64 total = ROUND_UP(sizeof(struct bkfs_jentry_hdr) + j->buf_len, fs->block_bytes);
	u64 pos = j->wpos + total > j->ring_bytes ? 0 : j->wpos;
	if (j->cp_len && pos < j->cp_pos + j->cp_len && j->cp_pos < pos + total)
		j->wpos = (j->cp_pos + j->cp_len) % j->ring_bytes;
	ret = write_entry(fs, JENTRY_CHECKPOINT, true);
	if (!ret)
		fs->durable_node_seq = st.node_seq;
	return ret;
}

/* ---- reading ---- */

/* A valid entry found by the scan: where it is, not its bytes. The ring
 * holds many entries older than the newest checkpoint, which nothing reads
 * again; keeping each one's copy made the ring's size (16 MiB by default)
 * the peak memory of every open. An entry is read again when its records
 * are walked (jent_records). */
struct jent {
	u64 seq, cp_seq;
	u16 type;
	u8 dev;
	u32 bytes;
	u64 pos;
};

static int jent_cmp(const void *a, const void *b)
{
	const struct jent *x = a, *y = b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The ring is read in chunks of this size into one reused buffer; only
 * where valid entries are is kept. Small enough to stay in the CPU cache
 * while its blocks' magics are compared, and to come from the heap: a 1 MiB
 * chunk (mapped, faulted in and unmapped on every open) made the scan of a
 * 16 MiB ring a third of the CPU time of `fsck -n` on an empty filesystem.
 * An entry running past the chunk is read on its own. */
#define RING_CHUNK (64u << 10)

/* Scan one device's ring for valid entries, appended to ents (each with its
 * own copy of the entry). Returns 0, 1 if the ring could not be read (the
 * device is skipped), or <0. */
static void note_bad(struct bkfs_fs *fs, struct blockdev *bd, u64 off, struct journal_stats *st)
{
	st->bad_csum++;
	if (st->nr_bad >= JOURNAL_MAX_BAD)
		return;
	for (unsigned d = 0; d < fs->nr_devs; d++)
		if (fs->devs[d].bd == bd) {
			st->bad_dev[st->nr_bad] = d;
			st->bad_off[st->nr_bad++] = off;
		}
}

int journal_scrub_bad(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	struct journal_stats *st = &j->stats;
	u8 *zero = xcalloc(1, fs->block_bytes);
	int ret = 0;
	if (!zero)
		return -BKFS_E_NOMEM;
	for (u32 i = 0; i < st->nr_bad && !ret; i++) {
		struct blockdev *bd = fs->devs[st->bad_dev[i]].bd;
		if (bd)
			ret = bd_write(bd, zero, ring_start(fs, st->bad_dev[i]) + st->bad_off[i], fs->block_bytes);
	}
	for (unsigned d = 0; d < fs->nr_devs && !ret; d++)
		if (fs->devs[d].bd)
			ret = bd_flush(fs->devs[d].bd);
	free(zero);
	if (!ret)
		st->nr_bad = 0;
	return ret;
}

/* Whether the entry at h (bytes long, whole in memory) has a good checksum;
 * a bad one is counted. */
static bool entry_csum_ok(struct bkfs_fs *fs, struct blockdev *bd, u64 off, const struct bkfs_jentry_hdr *h,
			  struct journal_stats *st)
{
	if (bkfs_crc32c(0, (const u8 *)h + 4, h->bytes - 4) == h->csum)
		return true;
	note_bad(fs, bd, off, st);
	if (!st->first_bad_seq || h->seq < st->first_bad_seq)
		st->first_bad_seq = h->seq;
	return false;
}

static int jent_push(struct jent **ents, size_t *nr, size_t *cap, struct jent e)
{
	if (darray_room(*ents, *cap, *nr + 1, 256))
		return -BKFS_E_NOMEM;
	(*ents)[(*nr)++] = e;
	return 0;
}

static int scan_ring(struct bkfs_fs *fs, unsigned dev, u64 start, u64 ring_bytes, u8 *chunk,
		     struct jent **ents, size_t *nr, size_t *cap, struct journal_stats *st)
{
	struct blockdev *bd = fs->devs[dev].bd;
	u64 magic = sb_journal_magic(&fs->sb);
	u64 cbase = 0, clen = 0; /* chunk holds [cbase, cbase + clen) of the ring */
	for (u64 off = 0; off + sizeof(struct bkfs_jentry_hdr) <= ring_bytes; off += fs->block_bytes) {
		if (off + sizeof(struct bkfs_jentry_hdr) > cbase + clen) {
			cbase = off;
			clen = MIN((u64)RING_CHUNK, ring_bytes - off);
			if (bd_read(bd, chunk, start + cbase, clen))
				return 1;
		}
		const struct bkfs_jentry_hdr *h = (const void *)(chunk + (off - cbase));
		if (h->magic != magic)
			continue;
		if (!format_version_ok(h->version) || h->bytes < sizeof(*h) || h->bytes > ring_bytes - off) {
			note_bad(fs, bd, off, st);
			continue;
		}
		u32 bytes = h->bytes;
		u8 *e = NULL;
		if (off + bytes > cbase + clen) { /* runs past the chunk */
			if (!(e = malloc(bytes)))
				return -BKFS_E_NOMEM;
			if (bd_read(bd, e, start + off, bytes)) {
				free(e);
				return 1;
			}
			h = (const void *)e;
		}
		bool ok = entry_csum_ok(fs, bd, off, h, st);
		struct jent je = { .seq = h->seq, .cp_seq = h->checkpoint_seq, .type = h->type, .dev = dev,
				   .bytes = bytes, .pos = off };
		free(e);
		if (!ok)
			continue;
		if (jent_push(ents, nr, cap, je))
			return -BKFS_E_NOMEM;
		st->entries_valid++;
		off += ROUND_UP(bytes, fs->block_bytes) - fs->block_bytes;
	}
	return 0;
}

/* Walk the records of one entry; cb returns <0 to stop. The entry is read
 * again and its checksum checked again (it was good at the scan). */
static int entry_records(const struct jent *e, int (*cb)(struct bkfs_fs *, const struct bkfs_jrec *, void *),
			 struct bkfs_fs *fs, void *arg)
{
	u8 *data = malloc(e->bytes);
	if (!data)
		return -BKFS_E_NOMEM;
	const struct bkfs_jentry_hdr *h = (const void *)data;
	int ret = 0;
	if (!fs->devs[e->dev].bd || bd_read(fs->devs[e->dev].bd, data, ring_start(fs, e->dev) + e->pos, e->bytes))
		ret = -BKFS_E_IO;
	else if (h->bytes != e->bytes || h->seq != e->seq || bkfs_crc32c(0, data + 4, e->bytes - 4) != h->csum)
		ret = -BKFS_E_CORRUPT;
	u32 off = sizeof(struct bkfs_jentry_hdr);
	while (!ret && off + sizeof(struct bkfs_jrec) <= e->bytes) {
		const struct bkfs_jrec *r = (const void *)(data + off);
		if (r->bytes < sizeof(*r) || r->bytes % 8 || r->bytes > e->bytes - off)
			ret = -BKFS_E_CORRUPT;
		else
			ret = cb(fs, r, arg);
		off += r->bytes;
	}
	free(data);
	return ret;
}

static const struct bkey *rec_key(const struct bkfs_jrec *r)
{
	const struct bkey *k = (const void *)(r + 1);
	if (r->bytes < sizeof(*r) + sizeof(struct bkey) || bkey_bytes(k) > r->bytes - sizeof(*r) ||
	    k->u64s < BKEY_U64s)
		return NULL;
	return k;
}

static int load_checkpoint_rec(struct bkfs_fs *fs, const struct bkfs_jrec *r, void *arg)
{
	if (r->type == JR_STATE && r->bytes >= sizeof(*r) + sizeof(struct bkfs_jstate)) {
		const struct bkfs_jstate *st = (const void *)(r + 1);
		fs->key_version = MAX(fs->key_version, st->key_version);
		fs->node_seq = MAX(fs->node_seq, st->node_seq);
		fs->durable_node_seq = st->node_seq;
		fs->next_inum = MAX(fs->next_inum, st->next_inum);
		fs->clock = MAX(fs->clock, st->clock);
	} else if (r->type == JR_ROOT && r->btree_id < BTREE_ID_NR) {
		const struct bkey *k = rec_key(r);
		if (!k || k->type != KEY_TYPE_btree_ptr || bkey_val_bytes(k) < sizeof(struct bkfs_btree_ptr))
			return -BKFS_E_CORRUPT;
		memcpy(&fs->roots[r->btree_id].ptr, bkey_val(k), sizeof(struct bkfs_btree_ptr));
		fs->roots[r->btree_id].b = NULL;
		fs->roots[r->btree_id].error = 0;
	}
	return 0;
}

/* the checker's copy of a replayed key (see journal_overlay_reapply) */
static int overlay_keep(struct journal *j, unsigned btree_id, const struct bkey *k)
{
	size_t need = sizeof(u64) + bkey_bytes(k);
	if (j->overlay_len + need > j->overlay_cap) {
		size_t nc = MAX(j->overlay_cap * 2, j->overlay_len + need + 4096);
		u8 *n = realloc(j->overlay, nc);
		if (!n)
			return -BKFS_E_NOMEM;
		j->overlay = n;
		j->overlay_cap = nc;
	}
	u64 id = btree_id;
	memcpy(j->overlay + j->overlay_len, &id, sizeof(id));
	memcpy(j->overlay + j->overlay_len + sizeof(id), k, bkey_bytes(k));
	j->overlay_len += need;
	return 0;
}

int journal_overlay_reapply(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	for (size_t off = 0; j && off + sizeof(u64) <= j->overlay_len;) {
		u64 id;
		struct bkey_buf kb;
		memcpy(&id, j->overlay + off, sizeof(id));
		const struct bkey *k = (const void *)(j->overlay + off + sizeof(id));
		memcpy(&kb, k, bkey_bytes(k)); /* aligned, and the insert may keep it */
		off += sizeof(id) + bkey_bytes(k);
		int ret = btree_insert_key(fs, (unsigned)id, &kb.k);
		if (ret == -BKFS_E_NOMEM)
			return ret;
	}
	return 0;
}

static int replay_rec(struct bkfs_fs *fs, const struct bkfs_jrec *r, void *arg)
{
	if (r->type != JR_KEY)
		return 0;
	const struct bkey *k = rec_key(r);
	if (!k || r->btree_id >= BTREE_ID_NR || bkey_validate(k, r->btree_id, 0, NULL))
		return -BKFS_E_CORRUPT;
	fs->key_version = MAX(fs->key_version, k->version);
	if ((fs->flags & BKFS_OPEN_FSCK) && overlay_keep(J(fs), r->btree_id, k))
		return -BKFS_E_NOMEM;
	int ret = btree_insert_key(fs, r->btree_id, k);
	if (ret && (fs->flags & BKFS_OPEN_FSCK))
		return 0; /* the tree under it is damaged: fsck repairs it */
	return ret;
}

/* The header of the entry at ring offset pos of device d, if it is a
 * checkpoint with seq `seq` that fits in the ring (its checksum is checked
 * when its records are read). */
static bool clean_checkpoint_hdr(struct bkfs_fs *fs, unsigned d, u64 pos, u64 seq, struct jent *e)
{
	struct journal *j = J(fs);
	struct bkfs_jentry_hdr h;
	if (bd_read(fs->devs[d].bd, &h, ring_start(fs, d) + pos, sizeof(h)))
		return false;
	if (h.magic != sb_journal_magic(&fs->sb) || !format_version_ok(h.version) || h.type != JENTRY_CHECKPOINT ||
	    h.seq != seq || h.checkpoint_seq != seq || h.bytes < sizeof(h) || h.bytes > j->ring_bytes - pos)
		return false;
	*e = (struct jent){ .seq = seq, .cp_seq = seq, .type = JENTRY_CHECKPOINT, .dev = d, .bytes = h.bytes, .pos = pos };
	return true;
}

/* A clean filesystem: its newest checkpoint is the entry at clean_cp_pos,
 * with seq journal_seq - 1, and nothing follows it. That one entry gives
 * what a scan of the whole ring would (roots, state, where the next entry
 * goes), as e2fsck skips a clean journal. Returns false when it is not
 * there: the caller then scans the ring. */
static bool load_clean_checkpoint(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	struct journal_stats *st = &j->stats;
	u64 pos = fs->sb.clean_cp_pos - 1, seq = fs->sb.journal_seq - 1;
	struct jent e;
	if (!fs->sb.clean || !fs->sb.clean_cp_pos || !fs->sb.journal_seq || pos >= j->ring_bytes)
		return false;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!fs->devs[d].bd || !clean_checkpoint_hdr(fs, d, pos, seq, &e) ||
		    entry_records(&e, load_checkpoint_rec, fs, NULL))
			continue;
		st->found_checkpoint = st->clean_checkpoint = true;
		st->checkpoint_seq = st->max_seq_seen = seq;
		st->entries_valid = 1;
		j->checkpoint_seq = j->durable_seq = seq;
		j->seq = seq + 1;
		j->cp_pos = pos;
		j->cp_len = ROUND_UP(e.bytes, fs->block_bytes);
		j->wpos = pos + j->cp_len < j->ring_bytes ? pos + j->cp_len : 0;
		return true;
	}
	st->clean_checkpoint_missing = true;
	return false;
}

void journal_note_clean(struct bkfs_fs *fs)
{
	struct journal *j = J(fs);
	fs->sb.journal_seq = j->seq;
	/* only when the checkpoint is the last entry written */
	fs->sb.clean_cp_pos = j->checkpoint_seq && j->checkpoint_seq + 1 == j->seq ? j->cp_pos + 1 : 0;
}

int journal_read_and_replay(struct bkfs_fs *fs, bool replay)
{
	struct journal *j = J(fs);
	struct journal_stats *st = &j->stats;
	struct jent *ents = NULL;
	size_t nr = 0, cap = 0;
	u8 *chunk = NULL;
	int ret = 0;

	memset(st, 0, sizeof(*st));
	if (load_clean_checkpoint(fs))
		return 0;
	for (unsigned d = 0; d < fs->nr_devs; d++) {
		if (!fs->devs[d].bd)
			continue;
		if (!chunk && !(chunk = malloc(MIN((u64)RING_CHUNK, MAX(j->ring_bytes, (u64)1))))) {
			ret = -BKFS_E_NOMEM;
			goto out;
		}
		size_t nr0 = nr;
		struct journal_stats st0 = *st;
		ret = scan_ring(fs, d, ring_start(fs, d), j->ring_bytes, chunk, &ents, &nr, &cap, st);
		if (ret > 0) {
			/* unreadable ring: this device's entries are not used */
			nr = nr0;
			*st = st0;
			ret = 0;
		}
		if (ret)
			goto out;
	}
	free(chunk);
	chunk = NULL;
	if (nr)
		qsort(ents, nr, sizeof(*ents), jent_cmp);
	/* newest checkpoint whose records parse */
	ssize_t cp = -1;
	for (ssize_t i = nr - 1; i >= 0; i--) {
		st->max_seq_seen = MAX(st->max_seq_seen, ents[i].seq);
		if (cp < 0 && ents[i].type == JENTRY_CHECKPOINT &&
		    !entry_records(&ents[i], load_checkpoint_rec, fs, NULL))
			cp = i;
	}
	if (cp < 0) {
		ret = -BKFS_E_NOENT; /* caller may fall back to superblock roots */
		goto out;
	}
	st->found_checkpoint = true;
	u64 cseq = ents[cp].seq;
	st->checkpoint_seq = cseq;
	j->checkpoint_seq = cseq;
	j->cp_pos = ents[cp].pos;
	j->cp_len = ROUND_UP(ents[cp].bytes, fs->block_bytes);
	j->wpos = j->cp_pos + j->cp_len;
	u64 next = cseq + 1;
	for (size_t i = cp + 1; i < nr; i++) {
		if (ents[i].seq < next)
			continue; /* replica copy of one already taken */
		if (ents[i].seq != next || ents[i].cp_seq != cseq) {
			st->after_gap++;
			if (!st->first_bad_seq)
				st->first_bad_seq = next;
			continue;
		}
		if (replay && (ret = entry_records(&ents[i], replay_rec, fs, NULL))) {
			if (!(fs->flags & BKFS_OPEN_FSCK))
				goto out;
			st->torn++;
			ret = 0;
			break;
		}
		st->entries_replayed++;
		j->wpos = ents[i].pos + ROUND_UP(ents[i].bytes, fs->block_bytes);
		next++;
	}
	/* entries lost to a crash may linger in the ring with higher seqs:
	 * continue past every seq ever seen so they can never be replayed */
	j->seq = MAX(next, st->max_seq_seen + 1);
	j->durable_seq = next - 1;
	if (j->wpos >= j->ring_bytes)
		j->wpos = 0;
out:
	free(chunk);
	free(ents);
	return ret;
}

void journal_stats_to_text(struct printbuf *out, const struct journal_stats *s)
{
	pb_printf(out, "checkpoint seq %llu, %llu valid entries, %llu replayed, %llu bad checksums, %llu after a gap, newest seq %llu",
		  (unsigned long long)s->checkpoint_seq, (unsigned long long)s->entries_valid,
		  (unsigned long long)s->entries_replayed, (unsigned long long)s->bad_csum,
		  (unsigned long long)s->after_gap, (unsigned long long)s->max_seq_seen);
	if (s->clean_checkpoint)
		pb_printf(out, " (clean: the checkpoint at the superblock's clean_cp_pos read, the ring not scanned)");
}
