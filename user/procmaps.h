/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /proc/PID/maps, parsed: one entry per mapping, and the helpers to find the
 * mappings of one file.  The maps text comes from the kernel, but paths are
 * chosen by whoever created the files, so they may hold spaces or end in
 * " (deleted)".
 */
#ifndef HT_PROCMAPS_H
#define HT_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procmaps_entry {
	uint64_t start;
	uint64_t end;
	uint64_t offset;		/* file offset of start */
	uint64_t inode;			/* 0 for anonymous mappings */
	unsigned int dev_major;
	unsigned int dev_minor;
	char perms[5];			/* "r-xp" */
	bool deleted;			/* the path ended in " (deleted)" (stripped from @path) */
	char *path;			/* "" for anonymous, "[heap]" etc. for special ones */
};

struct procmaps {
	struct procmaps_entry *entries;
	size_t nr;
};

/* procmaps__load - parse /proc/@pid/maps; NULL and errno on failure. */
struct procmaps *procmaps__load(pid_t pid);

/*
 * procmaps__parse - parse the text of a maps file (@len bytes, need not be
 * NUL-terminated).  Malformed lines are skipped.  NULL and errno on failure.
 */
struct procmaps *procmaps__parse(const char *text, size_t len);

void procmaps__free(struct procmaps *maps);

/* procmaps__is_file - the entry maps a regular file (has an inode and an absolute path). */
bool procmaps__is_file(const struct procmaps_entry *e);

/* procmaps__same_file - both entries map the same file (device, inode and path). */
bool procmaps__same_file(const struct procmaps_entry *a, const struct procmaps_entry *b);

/*
 * procmaps__file_base - the mapping at file offset 0 of the file that @e
 * maps, or NULL.  If the file is mapped more than once, the closest one at
 * or below @e.
 */
const struct procmaps_entry *procmaps__file_base(const struct procmaps *maps,
						 const struct procmaps_entry *e);

/*
 * procmaps__find - the entry containing @addr, or NULL.
 */
const struct procmaps_entry *procmaps__find(const struct procmaps *maps, uint64_t addr);

#endif /* HT_PROCMAPS_H */
