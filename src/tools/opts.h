/* opts.h - option parsing shared by the bkfs subcommands. */
#ifndef BKFS_TOOLS_OPTS_H
#define BKFS_TOOLS_OPTS_H
#include <stdio.h>

/* Report an option getopt_long() rejected as "bkfs CMD: ..." on stderr. For
 * loops that run getopt_long with opterr = 0 and an optstring starting with
 * ':' (c is ':' for a missing argument, '?' for an unknown option). */
void tool_bad_option(const char *cmd, int c, char **argv);

/* The options of a command whose only option is -h/--help: -1 to go on
 * (optind is at the first operand), else the exit status to return: 0 after
 * printing usage to stdout for --help, EXIT_USAGE after a message and usage
 * on stderr for anything else. */
int tool_help_only(const char *cmd, int argc, char **argv, void (*usage)(FILE *f));

#endif
