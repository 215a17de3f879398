/* stubs.c - weak fallbacks for every subcommand in cmds.h, so the tool links
 * while a command is not written yet. A real (strong) definition in its own
 * file overrides the one here. */
#include "cmds.h"
#include <stdio.h>

static int not_available(const char *name)
{
	fprintf(stderr, "bkfs %s: not available in this build\n", name);
	return 1;
}

#define STUB(fn, name) \
	__attribute__((weak)) int fn(int argc, char **argv) { (void)argc; (void)argv; return not_available(name); }

STUB(cmd_format, "format")
STUB(cmd_extract, "extract")
STUB(cmd_show_super, "show-super")
STUB(cmd_list, "list")
STUB(cmd_usage, "usage")
STUB(cmd_scan, "scan")
STUB(cmd_fsck, "fsck")
STUB(cmd_gc_gens, "gc-gens")
STUB(cmd_debug, "debug")
STUB(cmd_mount, "mount")
