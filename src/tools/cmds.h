/* cmds.h - the bkfs subcommands. Each takes (argc, argv) with argv[0] the
 * subcommand name and returns the process exit status.
 * Exit status for every command except fsck: 0 success, 1 failure (clear
 * message on stderr), 16 usage error (unknown option, missing argument). */
#ifndef BKFS_CMDS_H
#define BKFS_CMDS_H
#define EXIT_USAGE 16
int cmd_format(int argc, char **argv);      /* cmd_format.c */
int cmd_extract(int argc, char **argv);     /* cmd_extract.c */
int cmd_show_super(int argc, char **argv);  /* cmd_inspect.c */
int cmd_list(int argc, char **argv);        /* cmd_inspect.c */
int cmd_usage(int argc, char **argv);       /* cmd_inspect.c */
int cmd_scan(int argc, char **argv);        /* cmd_scan.c (fsck layer's node scan) */
int cmd_fsck(int argc, char **argv);        /* cmd_fsck.c */
int cmd_gc_gens(int argc, char **argv);     /* cmd_fsck.c */
int cmd_debug(int argc, char **argv);       /* cmd_debug.c */
int cmd_mount(int argc, char **argv);       /* cmd_mount.c */
int cmd_reflink(int argc, char **argv);     /* cmd_reflink.c */
int cmd_ec(int argc, char **argv);          /* cmd_ec.c: bkfs erasure-code */
#endif
