/* trans.h - transactions: updates queued against the btrees, with triggers,
 * committed through the journal hook (btree/trans.c). */
#ifndef BKFS_TRANS_H
#define BKFS_TRANS_H
#include "fs_handle.h"

/* ---- transactions (trans.c) ---- */
struct trans_update {
	u8 btree_id, level;
	bool no_trigger;
	struct bkey *k; /* owned copy; type deleted = delete at k->p */
};
struct acct_delta {
	struct bpos pos;
	s64 v[3];
};
struct trans {
	struct bkfs_fs *fs;
	struct trans_update *u;
	size_t nr, cap;
	struct acct_delta *acct;
	size_t nr_acct, acct_cap;
	u64 journal_seq;   /* seq of the entry this commit goes into */
	unsigned flags;    /* COMMIT_* of the commit in progress */
	size_t applying;   /* index of the update being applied (triggers) */
};
#define COMMIT_SYNC (1u << 0)        /* journal entry flushed before returning */
#define COMMIT_NO_JOURNAL (1u << 1)  /* checkpoint-only updates (bulk/fsck) */
void trans_init(struct trans *t, struct bkfs_fs *fs);
void trans_exit(struct trans *t);
void trans_reset(struct trans *t);
int trans_update(struct trans *t, unsigned btree_id, const struct bkey *k);
int trans_update_notrigger(struct trans *t, unsigned btree_id, const struct bkey *k);
int trans_delete(struct trans *t, unsigned btree_id, struct bpos p);
void trans_acct(struct trans *t, struct bpos pos, s64 v0, s64 v1, s64 v2);
int trans_commit(struct trans *t, unsigned flags);
/* Latest pending update of t for (btree, pos), or NULL. A deleted-type key
 * means "deleted in this transaction". */
const struct bkey *trans_pending(struct trans *t, unsigned btree_id, struct bpos pos);
/* The same among the updates from index first on (those before it may be
 * applied already): a key the caller may change in place. */
struct bkey *trans_pending_from(struct trans *t, unsigned btree_id, struct bpos pos, size_t first);
/* Look a key up as the transaction would see it: pending updates first, then
 * the btree. 0, -BKFS_E_NOENT or an error. */
int trans_lookup(struct trans *t, unsigned btree_id, struct bpos pos, struct bkey_buf *out);

#endif
