/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The asyncio task a thread is running, on CPython 3.14+, from the _asyncio
 * module's own debug offsets (_AsyncioDebug, a _Py_AsyncioModuleDebugOffsets
 * in the ELF section .AsyncioDebug): where the thread state keeps the running
 * task, and where a task keeps its name and coroutine.  The module is built
 * into the interpreter (3.15 on Debian) or is lib-dynload's
 * _asyncio.cpython-3XY-*.so, mapped only once asyncio is imported.
 */
#ifndef HT_PYASYNCIO_H
#define HT_PYASYNCIO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct procmem;
struct pyproc;
struct pysym;

struct pyasyncio {
	int ts_running_task;		/* thread state: PyObject *asyncio_running_task */
	int task_name;			/* TaskObj: PyObject *task_name (str, or int N for "Task-N") */
	int task_coro;			/* TaskObj: PyObject *task_coro */
	/* from _Py_DebugOffsets: to read the coroutine and an int name */
	int gen_iframe;			/* PyGenObject: the inline _PyInterpreterFrame */
	int long_lv_tag;		/* PyLongObject: long_value.lv_tag */
	int long_ob_digit;		/* PyLongObject: long_value.ob_digit */
	int coro_code;			/* coroutine: gi_iframe + the frame's f_executable */
	uint64_t str_type, int_type;	/* addresses of the str and int types, once seen */
	char file[PATH_MAX];		/* the file that holds _AsyncioDebug, as the target maps it */
};

/*
 * pyasyncio__parse - fill the _asyncio fields of @out from a copy of
 * _AsyncioDebug (@buf, @len bytes) of CPython 3.@minor, with that version's
 * field list.  0, -ENOTSUP (no asyncio debug offsets in 3.@minor) or
 * -EINVAL (too short, or values out of their sections' bounds).
 */
int pyasyncio__parse(const void *buf, size_t len, int minor, struct pyasyncio *out);

/*
 * pyasyncio__find - the asyncio layout of process @p: _AsyncioDebug in the
 * interpreter's own file (when @runtime_file: it does not change, so once is
 * enough), else in a mapped _asyncio module.  0, -ENOTSUP (before 3.14),
 * -ENOENT (asyncio not loaded: try again later) or -EINVAL.
 */
int pyasyncio__find(const struct pyproc *p, struct procmem *m, bool runtime_file,
		    struct pyasyncio *out);

/*
 * pyasyncio__name_from_raw - the name of a task from the first @len bytes of
 * its name object (@raw, as BPF copies them): a str (cut with "..." when
 * longer than the copy or @outsz), or the int N of an unnamed task whose name
 * asyncio has not formatted yet, as "Task-N".  "" when neither.
 */
void pyasyncio__name_from_raw(struct pyasyncio *a, const struct pyproc *p, struct procmem *m,
			      const void *raw, size_t len, char *out, size_t outsz);

/* pyasyncio__coro_name - the qualified name of coroutine code object @code (tag bits allowed). */
void pyasyncio__coro_name(const struct pyproc *p, struct pysym *sym, uint64_t code, char *out,
			  size_t outsz);

/*
 * pyasyncio__task - the same for task object @task, read from the target's
 * memory now (a thread parked in it).  Each is "" when unreadable.  0 or
 * -EFAULT (the task itself is unreadable).
 */
int pyasyncio__task(struct pyasyncio *a, const struct pyproc *p, struct procmem *m,
		    struct pysym *sym, uint64_t task, char *name, size_t namesz, char *coro,
		    size_t corosz);

#endif /* HT_PYASYNCIO_H */
