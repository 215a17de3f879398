/* format.h - the on-disk encoding of every bkfs object, for a file that uses
 * most of it (the format tests and the fuzzer): one header per concept, each
 * includable on its own; library files include the concepts they use. */
#ifndef BKFS_FORMAT_H
#define BKFS_FORMAT_H
#include "bkey_format.h"
#include "extents_format.h"
#include "inode_format.h"
#include "alloc_format.h"
#include "node_format.h"
#include "journal_format.h"
#include "sb.h"

#endif
