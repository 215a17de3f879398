/* test_engine.c - btree/journal/alloc engine on the emulated device. */
#include "test.h"
#include "fs/super.h"
#include "btree/trans.h"
#include "format/inode_format.h"
#include "btree/iter.h"
#include "btree/node.h"
#include "format/node_format.h"

static struct blockdev *mkdev(u64 size)
{
	struct emu_opts o = { .size = size, .seed = 1 };
	struct blockdev *bd;
	if (emu_dev_create(&o, &bd))
		return NULL;
	return bd;
}

static int insert_inodes(struct bkfs_fs *fs, u64 first, u64 n, unsigned flags)
{
	struct trans t;
	trans_init(&t, fs);
	for (u64 i = first; i < first + n; i++) {
		struct bkey_buf kb;
		bkey_init(&kb.k, KEY_TYPE_inode, POS(0, i), sizeof(struct bkfs_inode));
		struct bkfs_inode *in = bkey_val(&kb.k);
		in->mode = 0100644;
		in->nlink = 1;
		in->size = i;
		int ret = trans_update(&t, BTREE_ID_inodes, &kb.k);
		if (!ret)
			ret = trans_commit(&t, flags);
		if (ret) {
			trans_exit(&t);
			return ret;
		}
	}
	trans_exit(&t);
	return 0;
}

static u64 count_keys(struct bkfs_fs *fs, unsigned id)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 n = 0;
	for_each_btree_key(it, fs, id, POS_MIN, k, ret)
		n++;
	return ret ? 0 : n;
}

/* How full the leaves of btree id are, in percent of their capacity (every
 * leaf but the last, which is still filling) */
static unsigned leaf_fill_pct(struct bkfs_fs *fs, unsigned id)
{
	struct btree_iter it;
	struct bkey *k;
	int ret;
	u64 used = 0, cap = 0, last_used = 0, last_cap = 0, last_seq = 0;
	for_each_btree_key(it, fs, id, POS_MIN, k, ret) {
		if (it.node->seq == last_seq)
			continue;
		used += last_used;
		cap += last_cap;
		last_seq = it.node->seq;
		last_used = it.node->used;
		last_cap = it.node->cap;
	}
	return ret || !cap ? 0 : (unsigned)(used * 100 / cap);
}

/* A node read maps its buffer's pages ahead of the read, and the buffer
 * remembers it: the used bytes and the key offsets are covered, and a buffer
 * handed back and reused keeps what is mapped (no call a second time). */
static void test_node_buffer_mapped(struct bkfs_fs *fs)
{
	const struct bkfs_btree_ptr *root = &fs->roots[BTREE_ID_inodes].ptr;
	struct btree *b;
	CHECK(root->nr_ptrs > 0);
	CHECK_EQ(btree_node_read_at(fs, &root->ptrs[0], &b, NULL), 0);
	u32 used = sizeof(struct bkfs_node_hdr) + b->used;
	CHECK(b->mapped.raw >= used);
	CHECK(b->mapped.raw <= fs->node_bytes);
	CHECK_EQ(b->mapped.offs, b->nr_keys * sizeof(u32));
	struct node_mapped first = b->mapped;
	btree_node_mem_free(b);
	CHECK_EQ(btree_node_read_at(fs, &root->ptrs[0], &b, NULL), 0);
	CHECK_EQ(b->mapped.raw, first.raw);
	CHECK_EQ(b->mapped.offs, first.offs);
	btree_node_mem_free(b);
}

int main(void)
{
	struct printbuf err = PRINTBUF;
	struct blockdev *bd = mkdev(64 << 20);
	struct format_opts fo = { 0 };
	CHECK(bd != NULL);
	bd->keep_open = true;
	struct blockdev *bds[1] = { bd };
	int ret = bkfs_format_devs(bds, 1, &fo, &err);
	if (ret)
		fprintf(stderr, "format: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	CHECK_EQ(ret, 0);

	struct bkfs_fs *fs;
	bds[0] = bd;
	ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	if (ret)
		fprintf(stderr, "open: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	CHECK_EQ(ret, 0);
	CHECK_EQ(count_keys(fs, BTREE_ID_inodes), 1);
	CHECK_EQ(insert_inodes(fs, 10000, 20000, 0), 0);
	CHECK_EQ(count_keys(fs, BTREE_ID_inodes), 20001);
	/* ascending inserts leave the nodes behind them nearly full (a split
	 * in the middle would leave them half full) */
	unsigned fill = leaf_fill_pct(fs, BTREE_ID_inodes);
	if (fill < 80)
		fprintf(stderr, "inode leaves %u%% full after ascending inserts\n", fill);
	CHECK(fill >= 80);
	CHECK_EQ(bkfs_close(fs), 0);

	bds[0] = bd;
	ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	CHECK_EQ(ret, 0);
	CHECK_EQ(count_keys(fs, BTREE_ID_inodes), 20001);
	/* unclean: committed with sync, then "crash" */
	CHECK_EQ(insert_inodes(fs, 50000, 100, COMMIT_SYNC), 0);
	bkfs_close_nowrite(fs);
	emu_dev_power_cut(bd);
	bds[0] = bd;
	ret = bkfs_open_devs(bds, 1, 0, &fs, &err);
	if (ret)
		fprintf(stderr, "reopen: %s %s\n", bkfs_strerror(ret), pb_str(&err));
	CHECK_EQ(ret, 0);
	CHECK_EQ(count_keys(fs, BTREE_ID_inodes), 20101);
	test_node_buffer_mapped(fs);
	CHECK_EQ(bkfs_close(fs), 0);
	bd->keep_open = false;
	bd_close(bd);
	pb_exit(&err);
	TEST_MAIN_END();
}
