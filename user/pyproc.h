/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Finding a target's CPython: which mapped ELF file holds the interpreter
 * (the executable, libpython, or a python run through its own loader), its
 * load bias, the exact version, the runtime roots, and the layout to use.
 */
#ifndef HT_PYPROC_H
#define HT_PYPROC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pyoffsets.h"

struct elfsym;
struct procmaps_entry;
struct procmem;

struct pyproc {
	pid_t pid;
	char exe[PATH_MAX];		/* readlink /proc/PID/exe (may be a loader) */
	char python_file[PATH_MAX];	/* mapped ELF holding the runtime, as the target sees it */
	bool is_shared_lib;		/* runtime lives in libpython*.so */
	uint64_t bias;			/* load bias of python_file */

	uint32_t version_hex;		/* PY_VERSION_HEX, e.g. 0x030b02f0 */
	char version[32];		/* "3.11.2" */
	int minor;

	/* absolute addresses in the target; 0 where the version has none */
	uint64_t runtime_addr;		/* &_PyRuntime (3.7+) */
	uint64_t interp_head_addr;	/* address of the PyInterpreterState * of the first interpreter */
	uint64_t finalizing_addr;	/* address of the finalizing tstate pointer */
	uint64_t tstate_current_addr;	/* 3.6-3.11: address of the GIL holder's tstate pointer */
	uint64_t gil_addr;		/* start of the main interpreter's GIL state (3.7+) */
	uint64_t gil_size;
	uint64_t gil36_cond_addr;	/* 3.6: static gil_cond / gil_mutex (.symtab only), 0 if stripped */
	uint64_t gil36_mutex_addr;

	struct py_offsets off;		/* layout: generated table (<=3.12) or _Py_DebugOffsets (3.13+) */
	const struct py_version_traits *traits;
};

/*
 * pyproc__discover - find the CPython in process @pid.
 *
 * On failure returns a negative errno and writes a one-line, user-facing reason
 * into @err (e.g. "process 42 is not a CPython process (exe: /usr/bin/bash)"):
 *   -ESRCH   no such process (or it is a zombie / kernel thread: @err says which)
 *   -ENOEXEC not a CPython process
 *   -ENOTSUP a CPython version without offsets (e.g. 2.7, 3.16, free-threaded)
 *   -EACCES  not allowed to read it
 *   -EIO     its memory could not be read
 */
int pyproc__discover(pid_t pid, struct pyproc *out, char *err, size_t errlen);

/*
 * pyproc__read_gil - read the GIL state: *@locked and *@holder (the holder's
 * tstate address, 0 if nobody holds it).  0 or -errno.
 */
int pyproc__read_gil(const struct pyproc *p, struct procmem *m, bool *locked, uint64_t *holder);

/*
 * pyproc__open_mapped - open the ELF file mapping @e of process @pid maps (its
 * offset-0 mapping): through /proc/PID/map_files, else the target's root,
 * checking the inode.  NULL and errno.
 */
struct elfsym *pyproc__open_mapped(pid_t pid, const struct procmaps_entry *e);

#endif
