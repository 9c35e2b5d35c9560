/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The report model and its writers (text, JSON, folded). */
#ifndef HT_REPORT_H
#define HT_REPORT_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hangtrace.h"

struct rframe {
	char *function;
	char *file;
	int line;			/* -1 when unknown */
	int start_line;			/* co_firstlineno, the def line; 0 when unknown */
};

struct rstack {
	struct rframe *frames;		/* innermost first */
	int depth;
	bool truncated;			/* cut at the frame limit: a <truncated> frame follows */
	bool partial;			/* a read failed mid-walk */
};

struct rblocker {
	uint32_t pid, tid;
	int reason;			/* enum ht_reason */
	int syscall;			/* -1 none */
	uint64_t total_ns, max_ns;
	uint32_t count;
	struct rstack stack;
	uint64_t stack_id;		/* as the walker hashes it; 0 none */
	char **kstack;
	int kdepth;
	/* waker */
	uint32_t wk_tid, wk_pid;
	char wk_name[64];
	struct rstack wk_stack;
	bool wk_timer;			/* the wait timed out */
	/* what the waker was blocked in itself while this thread waited for it */
	uint64_t wk_busy_ns;		/* 0: nothing recorded */
	int wk_busy_reason;
	int wk_busy_syscall;
	struct rstack wk_busy_stack;
	bool still_blocked;
	char *fd_desc;			/* "127.0.0.1:5432", NULL if none */
	int fd;
	bool event_loop;
	bool on_cpu;			/* kind on-cpu: from samples */
	bool wk_gil_holder;		/* the "waker" is the GIL's holder when the wait ended */
	bool removed;			/* folded into idle time */
	struct ht_agg_key key;		/* to match timeline events; zero for open blocks */
	uint64_t stall_ns;		/* time of this blocker inside event-loop stalls */
	uint32_t stall_count;		/* stalls it was blamed for */
	uint64_t task;			/* still blocked: the asyncio task it runs (analyze__task), 0 none */
	const char *hint;
};

struct rstall {
	uint32_t tid;
	uint64_t start_ns;		/* from the window's start (0 if it began before) */
	uint64_t start_ktime_ns;	/* when it began, CLOCK_MONOTONIC: its identity */
	uint64_t dur_ns;
	int blocker;			/* index into blockers, -1: none found */
	bool in_progress;		/* still stalled when the window closed */
	char *coro;			/* coroutine/callback that was running, NULL if unknown */
	char *task_name;		/* name of the asyncio task that was running (3.14+), NULL if unknown */
};

/* On-CPU samples of one thread at one Python stack (every traced thread). */
struct rsample {
	uint32_t pid, tid;
	uint64_t count;			/* samples */
	uint64_t ns;			/* count * sampling period */
	uint64_t stack_id;
	struct rstack stack;
};

/* What a profile (folded, pprof, speedscope, svg, html) holds: --what. */
enum report_what {
	WHAT_OFFCPU,			/* blockers only (default) */
	WHAT_ONCPU,			/* on-CPU samples only */
	WHAT_ALL,
};

struct rthread {
	uint32_t tid;
	char name[64];
	bool python;
	bool event_loop;
	bool exited;
	uint32_t stalls;
	uint64_t stall_ns, longest_stall_ns;
	uint64_t on_ns, off_ns, idle_ns;
	uint64_t reason_ns[HT_R_MAX];
	uint32_t reason_cnt[HT_R_MAX];
};

/* A descendant that was not traced (--children), and why. */
struct runtraced {
	uint32_t pid, ppid;
	char *exe;			/* NULL if unknown */
	char *why;			/* one line: "not a CPython process", ... */
};

struct report {
	uint32_t pid;
	uint32_t ppid;			/* a descendant's parent (--children); 0 for the root */
	char *exe;
	char *cmdline;
	char *python;			/* "3.11.2" */
	uint64_t start_unix_ns;
	uint64_t duration_ns;
	uint64_t min_block_ns;
	bool target_exited;
	char *exec_into;		/* the program the target exec'd during tracing, or NULL */
	struct rthread *threads;
	size_t nr_threads;
	struct rblocker *blockers;	/* sorted by total_ns, largest first */
	size_t nr_blockers;
	struct rsample *samples;	/* on-CPU, most samples first */
	size_t nr_samples;
	uint64_t sample_period_ns;	/* 0: sampling was off */
	enum report_what what;		/* set by the caller before writing a profile */
	struct rstall *stalls;		/* in time order */
	size_t nr_stalls;
	uint64_t stall_threshold_ns;
	uint32_t sample_hz;
	struct ht_stats stats;
	uint64_t unreadable_code;	/* code objects that could not be read */
	char *focus;			/* --focus REGEX applied, NULL if none */
	/*
	 * --children (root only): one report per traced descendant, in the
	 * order they were found, and the descendants that were not traced.
	 */
	struct report *children;
	size_t nr_children;
	struct runtraced *untraced;
	size_t nr_untraced;
	size_t untraced_dropped;	/* more untraced descendants than were kept */
};

const char *reason_name(int reason);

/*
 * report__nr_procs - how many processes @r holds: the root and, with
 * --children, each traced descendant.  report__proc - process @i of them
 * (0: the root itself, then r->children in order).  The profile writers
 * (folded, pprof, speedscope, svg, html) go through them all; r->what, set
 * on the root, holds for every process.
 */
size_t report__nr_procs(const struct report *r);
const struct report *report__proc(const struct report *r, size_t i);
/*
 * report__thread - @r's thread @tid, or NULL: the one lookup the builders
 * and the writers share.  report__thread_name - its name, "" when unknown.
 */
struct rthread *report__thread(const struct report *r, uint32_t tid);
const char *report__thread_name(const struct report *r, uint32_t tid);
const char *blocker_kind(const struct rblocker *b);
/* rblocker__init - an empty blocker: all zero, no fd, no syscall (what the builders start from). */
void rblocker__init(struct rblocker *b);

void report__free(struct report *r);
/*
 * report__put_clean - @s (a name from the target) for a terminal: control
 * characters and invalid UTF-8 as \xNN, C1 and bidi controls as \u{NNNN}
 * (utf8_put_clean()).
 */
void report__put_clean(FILE *f, const char *s);
/* report__put_quoted - @s between double quotes, '"' and '\\' escaped too: a name can hold anything. */
void report__put_quoted(FILE *f, const char *s);
void blocker_free(struct rblocker *b);

/*
 * report__focus - keep only the blockers and on-CPU samples whose own
 * Python stack has a frame whose function or file matches @re (POSIX
 * extended, compiled by the caller); applied to the children too.  A stall
 * whose blocker is dropped keeps its duration with no blocker.  Thread
 * totals are not changed.  Records @pattern in the report.  0 or -ENOMEM.
 */
int report__focus(struct report *r, const regex_t *re, const char *pattern);

int report__write_text(const struct report *r, FILE *f);
int report__write_json(const struct report *r, FILE *f);
int report__write_folded(const struct report *r, FILE *f);

/* report__json_blocker - blocker @b as the JSON report's "blockers" entry (json-c object). */
struct json_object;
struct json_object *report__json_blocker(const struct rblocker *b);

#endif
