/* main.c - `bkfs COMMAND [ARGS]`: dispatch to the subcommands in cmds.h. */
#include "cmds.h"
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#define BKFS_TOOL_VERSION "0.1"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *desc;
};

static const struct command commands[] = {
	{ "format",     cmd_format,     "create a filesystem (optionally filled from a directory)" },
	{ "mount",      cmd_mount,      "mount a filesystem with FUSE" },
	{ "fsck",       cmd_fsck,       "check and repair a filesystem" },
	{ "gc-gens",    cmd_gc_gens,    "run generation garbage collection" },
	{ "scrub",      cmd_scrub,      "verify every copy of nodes and data; repair from good copies or parity" },
	{ "extract",    cmd_extract,    "copy the whole tree out of a filesystem" },
	{ "show-super", cmd_show_super, "print the superblock" },
	{ "list",       cmd_list,       "print btree keys, one per line" },
	{ "usage",      cmd_usage,      "print space accounting" },
	{ "reflink",    cmd_reflink,    "make a file that shares another file's data" },
	{ "erasure-code", cmd_ec,       "erasure-code written data into stripes (Reed-Solomon)" },
	{ "scan",       cmd_scan,       "list btree nodes found by scanning the devices" },
	{ "debug",      cmd_debug,      "debugging tools (damage an image in a named way)" },
	{ "help",       NULL,           "list commands, or show the help of one: help CMD" },
};

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: bkfs COMMAND [ARGS]\n"
		   "       bkfs help [COMMAND]\n"
		   "       bkfs --help | --version\n"
		   "\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-13s %s\n", commands[i].name, commands[i].desc);
	fprintf(f, "\n`bkfs CMD --help` describes each command.\n");
}

static int run(const struct command *c, int argc, char **argv)
{
	optind = 0; /* full getopt reset, whatever ran before */
	opterr = 1;
	return c->fn(argc, argv);
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	if (argc > 2) {
		fprintf(stderr, "bkfs help: too many arguments\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	const struct command *c = find_command(argv[1]);
	if (!c) {
		fprintf(stderr, "bkfs help: unknown command '%s'\n", argv[1]);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!c->fn) {
		usage(stdout);
		return 0;
	}
	char *hargv[] = { argv[1], (char *)"--help", NULL };
	return run(c, 2, hargv);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
		printf("bkfs %s\n", BKFS_TOOL_VERSION);
		return 0;
	}
	const struct command *c = find_command(name);
	if (!c) {
		fprintf(stderr, "bkfs: unknown command '%s'\n", name);
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!c->fn)
		return cmd_help(argc - 1, argv + 1);
	return run(c, argc - 1, argv + 1);
}
