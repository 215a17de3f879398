/* devlock.c - the access locks a command holds on its devices for its whole
 * run (src/io bd_lock_get): exclusive for a command that may write, shared
 * for one that only reads. Every open inside the command shares them. */
#include "cmds.h"
#include "../io/blockdev.h"
#include <stdio.h>

int tool_lock_devices(const char *cmd, char *const *devs, unsigned nr, bool exclusive, const char *busy_hint,
		      struct tool_locks *out)
{
	out->nr = 0;
	for (unsigned i = 0; i < nr && i < BKFS_MAX_DEVS; i++) {
		int ret = bd_lock_get(devs[i], exclusive, &out->locks[i]);
		if (ret == -BKFS_E_BUSY) {
			fprintf(stderr, "bkfs %s: %s: %s%s%s\n", cmd, devs[i], bkfs_strerror(ret),
				busy_hint ? "; " : "", busy_hint ? busy_hint : "");
		} else if (ret) {
			fprintf(stderr, "bkfs %s: %s: cannot open: %s\n", cmd, devs[i],
				ret == -BKFS_E_NOENT ? "no such file" : bkfs_strerror(ret));
		}
		if (ret) {
			tool_unlock_devices(out);
			return ret;
		}
		out->nr = i + 1;
	}
	return 0;
}

void tool_unlock_devices(struct tool_locks *l)
{
	for (unsigned i = 0; i < l->nr; i++)
		bd_lock_put(l->locks[i]);
	l->nr = 0;
}
