/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* One tracing session of one process: load, attach, trace, build the report. */
#ifndef HT_TRACE_H
#define HT_TRACE_H

#include <signal.h>
#include <stdint.h>

struct pyproc;
struct report;

struct trace_opts {
	uint64_t duration_ns;		/* 0: until *stop */
	uint64_t min_block_ns;
	uint32_t max_frames;
	uint64_t stall_ns;		/* event-loop stall threshold (0: 100 ms) */
	uint64_t alert_ns;		/* announce live stalls longer than this; 0: off */
	uint32_t loop_tid;		/* 0: detect loop threads */
	uint32_t sample_hz;		/* 0: no on-CPU sampling */
	volatile sig_atomic_t *stop;	/* set (by a signal handler) to end tracing */
	int quiet;			/* no "tracing process" line on stderr */
	int children;			/* also trace descendants, at any depth (--children) */
	const char *focus;		/* --focus REGEX (POSIX extended), NULL: none */
};

/*
 * trace__run - trace process @p until the duration passes, *@opts->stop is
 * set or the process exits (with --children: and every traced descendant),
 * and build @rep (report__free() it; descendants in rep->children).  Every
 * BPF program is detached before it returns.  0, or -errno after printing a
 * one-line error.
 */
int trace__run(const struct pyproc *p, const struct trace_opts *opts, struct report *rep);

#endif
