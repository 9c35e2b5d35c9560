/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* One tracing session (a process, with --children its descendants): load, attach, trace, report. */
#ifndef HT_TRACE_H
#define HT_TRACE_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

struct pyproc;
struct report;
struct trace_session;

struct trace_opts {
	uint64_t duration_ns;		/* 0: until *stop */
	uint64_t min_block_ns;
	uint32_t max_frames;
	uint32_t max_stacks;		/* entries of each BPF stack map (0: the default) */
	uint32_t max_aggregates;	/* entries of each aggregate map (0: the default) */
	uint32_t max_symbols;		/* code objects cached per process (0: no cap) */
	uint64_t stall_ns;		/* event-loop stall threshold (0: 100 ms) */
	uint64_t alert_ns;		/* announce live stalls longer than this; 0: off */
	uint32_t loop_tid;		/* 0: detect loop threads */
	uint32_t sample_hz;		/* 0: no on-CPU sampling */
	volatile sig_atomic_t *stop;	/* set (by a signal handler) to end tracing */
	int quiet;			/* no "tracing process" line on stderr */
	int children;			/* also trace descendants, at any depth (--children) */
	const char *focus;		/* --focus REGEX (POSIX extended), NULL: none */
	int progress;			/* live status line on stderr (when it is a terminal) */
	/*
	 * Non-NULL: the target is our child (`hangtrace run`).  Its exit
	 * ends its report without a warning (tracing goes on while traced
	 * descendants live, as with -p); it is reaped and its wait status
	 * stored here (-1 while it has not been reaped).
	 */
	int *child_status;
	/*
	 * With child_status: called when the child stops (@status from
	 * waitpid).  `run` stops it on its way out; the callback then calls
	 * trace__sync() and continues it.
	 */
	void (*child_stopped)(struct trace_session *s, int status, void *ctx);
	void *child_ctx;
};

/*
 * trace__run - trace process @p until the duration passes, *@opts->stop is
 * set or the process exits (with --children: and every traced descendant),
 * and build @rep (report__free() it; descendants in rep->children).  Every
 * BPF program is detached before it returns.  0, or -errno after printing a
 * one-line error.  The same as trace__open + trace__start + trace__finish.
 */
int trace__run(const struct pyproc *p, const struct trace_opts *opts, struct report *rep);

/*
 * The same in steps, so that the BPF programs can be loaded before the
 * target exists (`hangtrace run` loads them before starting the command and
 * attaches while it is stopped):
 *
 * trace__open - load the BPF programs (nothing attached).  NULL and errno
 * after printing a one-line error.  @opts must outlive the session.
 */
struct trace_session *trace__open(const struct trace_opts *opts);

/*
 * trace__start - attach to @p (copied; with opts->children, follow its
 * descendants too): live on return.  0 or -errno (printed).
 */
int trace__start(struct trace_session *s, const struct pyproc *p);

/*
 * trace__finish - trace until the end (see trace__run), detach, build @rep.
 * 0 or -errno (printed).
 */
int trace__finish(struct trace_session *s, struct report *rep);

/*
 * trace__sync - read the events so far and symbolize every stack collected
 * of every process traced now, while their memory is there (call it with
 * the target stopped, before it exits).
 */
void trace__sync(struct trace_session *s);

/* trace__close - detach what is attached and free @s (NULL is fine). */
void trace__close(struct trace_session *s);

#endif
