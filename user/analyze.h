/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* From what the BPF side collected to the report model. */
#ifndef HT_ANALYZE_H
#define HT_ANALYZE_H

#include <stdbool.h>
#include <stdint.h>

#include "hangtrace.h"
#include "pyasyncio.h"
#include "timeline.h"

struct ksyms;
struct procmem;
struct pyproc;
struct pysym;
struct report;
struct strmap;
struct tracer;

struct analyze {
	const struct pyproc *p;
	struct ht_py_proc bpf_proc;	/* the layout as the walker takes it */
	struct tracer *tr;
	struct procmem *mem;
	struct pysym *sym;
	struct ksyms *ks;
	struct strmap *fd_desc;		/* agg key -> "127.0.0.1:80", captured at event time */
	struct strmap *names;		/* tid -> comm, captured at event time */
	struct strmap *seen_stacks;	/* stack ids already symbolized */
	uint64_t start_mono_ns;
	uint64_t start_unix_ns;
	uint64_t min_block_ns;
	uint64_t stall_ns;
	uint32_t loop_tid;
	uint32_t sample_hz;
	uint32_t max_frames;
	bool target_exited;
	/*
	 * Blockers only from blocks that ended (the agent's back-to-back
	 * windows: a block still open is counted in the window it ends in,
	 * once).  Per-thread time by reason still runs up to now.
	 */
	bool ended_only;
	char *exec_into;		/* the target exec'd this program (malloc'ed), or NULL */
	struct timeline tl;		/* blocks, stalls and loop samples, for stall blame */
	/* asyncio tasks (3.14+): the layout, once found, and the tasks named so far */
	int aio_state;			/* 0: not found yet, 1: found, -1: never (version, error) */
	unsigned int aio_scans;		/* looks so far (the runtime file is looked at once) */
	struct pyasyncio aio;
	struct atask *tasks;		/* an event's task number n is tasks[n - 1] */
	size_t nr_tasks, cap_tasks;
	struct strmap *task_index;	/* (address, name, coro) -> task number */
};

/* An asyncio task as named while it ran. */
struct atask {
	uint64_t addr;
	char *name;			/* NULL: unreadable */
	char *coro;			/* qualified name of its coroutine, NULL: unknown */
};

/* analyze__init - set up @a for process @p; 0 or -errno. */
int analyze__init(struct analyze *a, const struct pyproc *p, struct tracer *tr);
void analyze__fini(struct analyze *a);

/*
 * analyze__on_event - called for each ring buffer event while the target is
 * alive: symbolizes its stacks and notes what is only knowable now (the fd's
 * peer, the waker's name), so a process that exits later is still reported.
 */
void analyze__on_event(struct analyze *a, const struct ht_event *e);

/*
 * analyze__prime - symbolize now, while the process is alive, the stacks of
 * its blocks among @aggs and of its on-CPU samples among @oncpu (a process's
 * memory is gone once it has exited, and only loop threads' samples come as
 * events).  Keys of other processes are skipped, so one read of the maps
 * serves every process.
 */
void analyze__prime(struct analyze *a, const struct ht_agg_key *aggs, size_t nr_aggs,
		    const struct ht_oncpu_key *oncpu, size_t nr_oncpu);

/*
 * analyze__tick - periodic work while tracing (call after the process is
 * added to the tracer, then every ~100 ms): look for asyncio's debug offsets
 * (3.14+) until the _asyncio module is loaded, and hand them to BPF.
 */
void analyze__tick(struct analyze *a);

/* analyze__task - task number @n of a timeline event (0: none): NULL if none. */
const struct atask *analyze__task(const struct analyze *a, uint64_t n);

/*
 * analyze__task_of_thread - the task thread state @ts (of the target) is
 * running now, read from userspace (a thread still blocked at the end).
 * Its task number, 0 if none.
 */
uint64_t analyze__task_of_thread(struct analyze *a, uint64_t ts);

/* analyze__stack - the symbolized Python stack @id into @out.  0 or -ENOMEM. */
struct rstack;
int analyze__stack(struct analyze *a, uint64_t id, struct rstack *out);

/*
 * analyze__announce_stall - one stall in progress, on @f: thread @tid has not
 * returned to its event loop for @secs; where it is stuck and why, read now.
 */
#include <stdio.h>
void analyze__announce_stall(struct analyze *a, uint32_t tid, double secs, FILE *f);


/* analyze__report - build the report at the end of the window.  0 or -errno. */
int analyze__report(struct analyze *a, struct report *r);

#endif
