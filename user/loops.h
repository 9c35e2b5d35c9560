/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Event loops: which threads are loops, idle time, stalls and who to blame for them. */
#ifndef HT_LOOPS_H
#define HT_LOOPS_H

#include <stdint.h>

struct analyze;
struct report;
struct tracer_snapshot;
struct timeline;

struct loops_in {
	const struct tracer_snapshot *snap;
	const struct timeline *tl;
	uint64_t now_ns;		/* end of the window, ktime */
	uint64_t start_ns;		/* start of the window, ktime */
	uint64_t stall_ns;
	uint32_t loop_tid;
	uint32_t sample_hz;
};

/*
 * loops__analyze - mark loop threads, fold idle waits (the loop's poll and
 * known worker-waits-for-work patterns) into idle time, add on-CPU blockers of
 * loop threads, build the stalls and blame each on a blocker, and attach
 * hints.  Blockers folded into idle are marked removed.  0 or -ENOMEM.
 */
int loops__analyze(struct analyze *a, struct report *r, const struct loops_in *in);

/* loops__is_idle_wait - does this blocker stack wait for work (pool worker, server accept loop)? */
struct rblocker;
int loops__is_idle_wait(const struct rblocker *b);

#endif
