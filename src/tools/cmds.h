/* cmds.h - the bkfs subcommands. Each takes (argc, argv) with argv[0] the
 * subcommand name and returns the process exit status.
 * Exit status for every command except fsck: 0 success, 1 failure (clear
 * message on stderr), 16 usage error (unknown option, missing argument). */
#ifndef BKFS_CMDS_H
#define BKFS_CMDS_H
#define EXIT_USAGE 16
#include "../format/sb.h"

/* devlock.c: lock devs[0..nr) for the command's whole run, exclusive when it
 * may write (see bd_lock_get). On failure says why on stderr ("bkfs CMD: DEV:
 * mounted or in use by another bkfs process[; busy_hint]") and returns the
 * error with nothing held. */
struct tool_locks {
	struct bd_lock *locks[BKFS_MAX_DEVS];
	unsigned nr;
};
int tool_lock_devices(const char *cmd, char *const *devs, unsigned nr, bool exclusive, const char *busy_hint,
		      struct tool_locks *out);
void tool_unlock_devices(struct tool_locks *l);

int cmd_format(int argc, char **argv);      /* cmd_format.c */
int cmd_extract(int argc, char **argv);     /* cmd_extract.c */
int cmd_show_super(int argc, char **argv);  /* cmd_inspect.c */
int cmd_list(int argc, char **argv);        /* cmd_inspect.c */
int cmd_usage(int argc, char **argv);       /* cmd_inspect.c */
int cmd_scan(int argc, char **argv);        /* cmd_scan.c (fsck layer's node scan) */
int cmd_fsck(int argc, char **argv);        /* cmd_fsck.c */
int cmd_gc_gens(int argc, char **argv);     /* cmd_gc_gens.c */
int cmd_debug(int argc, char **argv);       /* cmd_debug.c */
int cmd_mount(int argc, char **argv);       /* cmd_mount.c */
int cmd_reflink(int argc, char **argv);     /* cmd_reflink.c */
int cmd_ec(int argc, char **argv);          /* cmd_ec.c: bkfs erasure-code */
int cmd_scrub(int argc, char **argv);        /* cmd_scrub.c */
#endif
