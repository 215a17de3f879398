/* root.c - the root directory of a fresh filesystem. */
#include "super.h"
#include "../btree/trans.h"
#include "../format/inode_format.h"
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int bkfs_fs_create_root(struct bkfs_fs *fs)
{
	struct trans t;
	struct bkey_buf kb;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	u64 now = (u64)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	bkey_init(&kb.k, KEY_TYPE_inode, POS(0, BKFS_ROOT_INO), sizeof(struct bkfs_inode));
	struct bkfs_inode *i = bkey_val(&kb.k);
	i->mode = S_IFDIR | 0755;
	i->nlink = 2;
	i->parent = BKFS_ROOT_INO;
	i->atime_ns = i->mtime_ns = i->ctime_ns = now;
	trans_init(&t, fs);
	int ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
	if (!ret)
		ret = trans_commit(&t, 0);
	trans_exit(&t);
	return ret;
}
