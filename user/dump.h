/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `hangtrace dump -p PID`: a snapshot of an already-hung CPython process,
 * every thread's Python and kernel stack, what it is blocked in and for how
 * long, the interpreter's state, and a diagnosis in plain words.  The target
 * is never stopped: /proc, /proc/PID/mem and a BPF task iterator only.
 *
 *   dump.c        command line, snapshot
 *   dump_diag.c   the diagnosis: recognised hang patterns, kept as data
 *   dump_write.c  text and JSON output
 */
#ifndef HT_DUMP_H
#define HT_DUMP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "procthread.h"

struct procmem;
struct pyproc;
struct pysym;
struct report;

struct dump_frame {
	uint64_t code;			/* PyCodeObject * */
	const char *function;		/* qualname (3.11+) or name; owned by the dump's symbolizer */
	const char *file;
	int line;			/* -1 when unknown */
};

struct dump_thread {
	uint32_t tid;
	char name[64];			/* comm */
	char state;			/* /proc letter: R S D T t Z X ...; 0 when it vanished */
	bool main;			/* tid == pid */
	bool python;			/* a PyThreadState was found for it */
	bool holds_gil;
	uint64_t tstate;
	uint64_t fsbase;		/* pthread_self() */

	/* what it is blocked in (state other than R) */
	struct procthread_wait w;
	bool blocked_known;
	uint64_t blocked_ns;		/* off-CPU since, per the scheduler */
	int timeout;			/* 1: the wait has a timeout, 0: none, -1: n/a or unknown */
	int64_t timeout_left_ns;	/* when timeout == 1 and known, else -1 */

	/* stacks */
	struct dump_frame *frames;	/* innermost first */
	int depth;
	bool truncated;			/* cut at --max-frames */
	bool partial;			/* a read failed mid-walk */
	char *stack_note;		/* why there is no Python stack (or a partial one), or NULL */
	char **kstack;			/* kernel stack, innermost first */
	int kdepth;

	/* derived by the diagnosis */
	int handler_signo;		/* a Python signal handler is on its stack: its signal, 0 none */
	int handler_frame;		/* ... at this index of @frames */
	uint32_t waits_for;		/* the thread it joins, 0 unknown */
	bool waits_exact;		/* ... identified by the lock itself, not by elimination */
	uint32_t lock_owner;		/* it waits for an RLock this thread holds, 0 unknown */
};

struct dump_finding {
	const char *pattern;		/* the pattern's id, e.g. "finalization-join" */
	char *message;			/* one line */
	uint32_t tids[8];		/* the threads it names, first the one it is about */
	int nr_tids;
};

struct dump {
	pid_t pid;
	const struct pyproc *p;
	char *cmdline;
	char state;			/* the process's /proc state letter */
	uint64_t unix_ns;		/* wall clock of the snapshot */
	uint64_t took_ns;		/* how long the snapshot took */
	uint32_t max_frames;

	struct dump_thread *threads;	/* the main thread first, then by tid */
	size_t nr_threads;

	/* the interpreter */
	bool finalizing;		/* CPython's flag, or the main thread in the shutdown path */
	bool finalizing_flag;		/* CPython's own flag (set only after the joins return) */
	const char *shutdown_path;	/* "threading._shutdown", ... when seen on the main thread */
	int shutdown_frame;		/* its index in the main thread's frames, -1 none */
	bool gil_known;
	uint32_t gil_holder;		/* tid, 0 when free or not a thread we know */
	char *mem_error;		/* the target's memory is unreadable: why */

	struct dump_finding *findings;	/* most important first */
	size_t nr_findings;

	struct report *trace;		/* --trace: the tracer's report, else NULL */
	struct procmem *mem;		/* the target's memory (NULL: unreadable) */
	struct pysym *sym;		/* owns the frames' strings */
	uint64_t trace_ns;
};

/* cmd_dump - `hangtrace dump ...` (argv[0] is "dump").  Returns the exit status. */
int cmd_dump(int argc, char **argv);

/* dump__diagnose - fill @d's findings (and the threads' derived fields).  0 or -ENOMEM. */
int dump__diagnose(struct dump *d, struct procmem *mem);

/* dump__describe_wait - "blocked 3.2 s in recvfrom on fd 5 -> 1.2.3.4:80 (socket, no timeout)". */
void dump__describe_wait(const struct dump_thread *t, char *out, size_t outsz);

/* Writers; 0, or -1 with errno set. */
int dump__write_text(const struct dump *d, FILE *f);
int dump__write_json(const struct dump *d, FILE *f);

#endif
