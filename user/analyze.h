/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* From what the BPF side collected to the report model. */
#ifndef HT_ANALYZE_H
#define HT_ANALYZE_H

#include <stdbool.h>
#include <stdint.h>

#include "hangtrace.h"
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
	char *exec_into;		/* the target exec'd this program (malloc'ed), or NULL */
	struct timeline tl;		/* blocks, stalls and loop samples, for stall blame */
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
