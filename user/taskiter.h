/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The BPF task iterator (bpf/hangtrace.bpf.c dump_task) loaded on its own,
 * without the tracing programs: per-thread kernel facts that /proc does not
 * give without stopping the target (FS base, scheduler clock of the last
 * switch), in about 15 ms instead of the full load's half second.  For
 * `hangtrace dump`, which needs a snapshot and no tracing.
 */
#ifndef HT_TASKITER_H
#define HT_TASKITER_H

#include <stddef.h>
#include <sys/types.h>

#include "hangtrace.h"

struct taskiter;

/* taskiter__new - load the iterator.  NULL and errno on failure (error printed). */
struct taskiter *taskiter__new(void);

/*
 * taskiter__read - one record per thread of process @pid: *@out is
 * malloc'ed, *@n entries.  0 or -errno.
 */
int taskiter__read(struct taskiter *it, pid_t pid, struct ht_task_info **out, size_t *n);

void taskiter__free(struct taskiter *it);

/*
 * taskiter__collect - read every record of an attached task iterator @link
 * (its program filters by its own iter_tgid) into a malloc'ed *@out.  0 or -errno.
 */
struct bpf_link;
int taskiter__collect(struct bpf_link *link, struct ht_task_info **out, size_t *n);

#endif
