/* trans.c - transactions: a list of key updates committed atomically.
 * Commit runs each key type's trigger (old -> new), lets the upper layers
 * emit derived updates (alloc keys, accounting), applies everything to the
 * btrees and journals the final keys as one entry. */
#include "btree.h"
#include "../util/darray.h"
#include "trans.h"
#include <stdlib.h>
#include <string.h>

void trans_init(struct trans *t, struct bkfs_fs *fs)
{
	memset(t, 0, sizeof(*t));
	t->fs = fs;
}

void trans_reset(struct trans *t)
{
	for (size_t i = 0; i < t->nr; i++)
		free(t->u[i].k);
	t->nr = 0;
	t->nr_acct = 0;
}

struct bkey *trans_pending_from(struct trans *t, unsigned btree_id, struct bpos pos, size_t first)
{
	for (size_t i = t->nr; i-- > first;) {
		const struct trans_update *u = &t->u[i];
		if (u->btree_id == btree_id && !u->level && bpos_eq(u->k->p, pos))
			return u->k;
	}
	return NULL;
}

const struct bkey *trans_pending(struct trans *t, unsigned btree_id, struct bpos pos)
{
	return trans_pending_from(t, btree_id, pos, 0);
}

int trans_lookup(struct trans *t, unsigned btree_id, struct bpos pos, struct bkey_buf *out)
{
	const struct bkey *k = trans_pending(t, btree_id, pos);
	if (k) {
		if (bkey_deleted(k))
			return -BKFS_E_NOENT;
		if (out)
			memcpy(out, k, bkey_bytes(k));
		return 0;
	}
	return btree_lookup(t->fs, btree_id, pos, out);
}

void trans_exit(struct trans *t)
{
	trans_reset(t);
	free(t->u);
	free(t->acct);
	memset(t, 0, sizeof(*t));
}

static int trans_add(struct trans *t, unsigned btree_id, const struct bkey *k, bool no_trigger)
{
	if (btree_id >= BTREE_ID_NR || k->u64s < BKEY_U64s)
		return -BKFS_E_INVAL;
	if (darray_room(t->u, t->cap, t->nr + 1, 16))
		return -BKFS_E_NOMEM;
	struct bkey *c = malloc(bkey_bytes(k));
	if (!c)
		return -BKFS_E_NOMEM;
	memcpy(c, k, bkey_bytes(k));
	t->u[t->nr++] = (struct trans_update){ .btree_id = btree_id, .k = c, .no_trigger = no_trigger };
	return 0;
}

int trans_update(struct trans *t, unsigned btree_id, const struct bkey *k)
{
	return trans_add(t, btree_id, k, false);
}

int trans_update_notrigger(struct trans *t, unsigned btree_id, const struct bkey *k)
{
	return trans_add(t, btree_id, k, true);
}

int trans_delete(struct trans *t, unsigned btree_id, struct bpos p)
{
	struct bkey k;
	bkey_init(&k, KEY_TYPE_deleted, p, 0);
	return trans_add(t, btree_id, &k, false);
}

void trans_acct(struct trans *t, struct bpos pos, s64 v0, s64 v1, s64 v2)
{
	if (!v0 && !v1 && !v2)
		return;
	for (size_t i = 0; i < t->nr_acct; i++)
		if (bpos_eq(t->acct[i].pos, pos)) {
			t->acct[i].v[0] += v0;
			t->acct[i].v[1] += v1;
			t->acct[i].v[2] += v2;
			return;
		}
	if (darray_room(t->acct, t->acct_cap, t->nr_acct + 1, 16))
		return; /* accounting drift is caught and repaired by fsck */
	t->acct[t->nr_acct++] = (struct acct_delta){ .pos = pos, .v = { v0, v1, v2 } };
}

static int apply_update(struct trans *t, size_t i)
{
	struct bkfs_fs *fs = t->fs;
	unsigned id = t->u[i].btree_id;
	struct bkey_buf old;
	int ret;

	t->u[i].k->version = ++fs->key_version;
	t->applying = i;
	if (!t->u[i].no_trigger && fs->hooks && fs->hooks->trigger) {
		bool invalid = false;
		ret = btree_lookup_any(fs, id, t->u[i].k->p, &old, &invalid);
		if (ret && ret != -BKFS_E_NOENT)
			return ret;
		/* a key that failed validation is never used: only the checker
		 * replaces it (its trigger undoes what can be read of it) */
		if (!ret && invalid && !(fs->flags & BKFS_OPEN_FSCK))
			return -BKFS_E_CORRUPT;
		/* the trigger may grow t->u: pass a stable copy of the new key */
		struct bkey *nk = t->u[i].k;
		ret = fs->hooks->trigger(t, id, 0, ret ? NULL : &old.k, bkey_deleted(nk) ? NULL : nk);
		if (ret)
			return ret;
	}
	return btree_insert_key(fs, id, t->u[i].k);
}

int trans_commit(struct trans *t, unsigned flags)
{
	struct bkfs_fs *fs = t->fs;
	int ret = 0;

	if (fs->error)
		return -BKFS_E_IO;
	if (fs->flags & BKFS_OPEN_RDONLY)
		return -BKFS_E_INVAL;
	if (fs->flags & BKFS_OPEN_NOJOURNAL)
		flags |= COMMIT_NO_JOURNAL;
	t->flags = flags;
	t->journal_seq = fs->hooks && fs->hooks->journal_cur_seq ? fs->hooks->journal_cur_seq(fs) : 0;

	size_t i = 0;
	for (; i < t->nr; i++)
		if ((ret = apply_update(t, i)))
			goto err;
	if (fs->hooks && fs->hooks->commit_prepare && (ret = fs->hooks->commit_prepare(t)))
		goto err;
	for (; i < t->nr; i++)
		if ((ret = apply_update(t, i)))
			goto err;
	if (!(flags & COMMIT_NO_JOURNAL) && fs->hooks && fs->hooks->journal_commit) {
		u64 seq;
		ret = fs->hooks->journal_commit(fs, t, &seq);
		if (ret)
			goto err;
	}
	trans_reset(t);
	if (fs->hooks && fs->hooks->commit_done && (ret = fs->hooks->commit_done(fs)))
		return ret;
	if (!fs->in_checkpoint && btree_want_checkpoint(fs))
		ret = btree_checkpoint(fs);
	return ret;
err:
	/* updates may be partly applied in memory: nothing more may be written */
	fs->error = true;
	trans_reset(t);
	return ret;
}
