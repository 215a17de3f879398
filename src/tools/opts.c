/* opts.c - option parsing shared by the bkfs subcommands. */
#include "opts.h"
#include "cmds.h"
#include <getopt.h>
#include <string.h>

void tool_bad_option(const char *cmd, int c, char **argv)
{
	const char *what = c == ':' ? "option requires an argument" : "unknown option";
	/* short options set optopt; long ones leave the text in argv[optind - 1] */
	if (optopt && optopt != '?' && optopt < 256 && !(optind > 0 && !strncmp(argv[optind - 1], "--", 2)))
		fprintf(stderr, "bkfs %s: %s -- '%c'\n", cmd, what, optopt);
	else
		fprintf(stderr, "bkfs %s: %s '%s'\n", cmd, what, optind > 0 ? argv[optind - 1] : "?");
}

int tool_help_only(const char *cmd, int argc, char **argv, void (*usage)(FILE *f))
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		tool_bad_option(cmd, c, argv);
		usage(stderr);
		return EXIT_USAGE;
	}
	return -1;
}
