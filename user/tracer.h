/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The BPF side's lifecycle: open, configure, load, attach, drain, snapshot, destroy. */
#ifndef HT_TRACER_H
#define HT_TRACER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hangtrace.h"

struct pyproc;
struct tracer;

struct tracer_opts {
	uint64_t min_block_ns;
	uint64_t stall_ns;		/* event-loop iterations this long are stalls */
	uint32_t loop_tid;		/* treat this thread as a loop thread (0: detect) */
	uint32_t sample_hz;		/* on-CPU samples per second per CPU; 0: none */
	uint32_t max_frames;
	/*
	 * Map sizes (0: the BPF object's own, 8192 stacks and 16384 aggregates):
	 * entries in each stack map (Python, kernel), and in each aggregate map
	 * (off-CPU blocks, on-CPU samples).  When full, the BPF side counts
	 * stacks_full / agg_full and samples_lost in ht_stats.
	 */
	uint32_t max_stacks;
	uint32_t max_aggregates;
	/* called for each ring buffer event but process ones (may be NULL) */
	void (*on_event)(const struct ht_event *e, void *ctx);
	/*
	 * called for HT_EV_FORK, HT_EV_EXEC and HT_EV_EXIT (may be NULL):
	 * e->key.pid is the process, e->wk_pid the parent (fork), e->wk_flags
	 * HT_FORK_TRACED when the child was traced at once with its parent's
	 * layout.  EXEC and EXIT come for processes followed or traced; the
	 * BPF side has already dropped the process's layout, so tracing stops
	 * for it until tracer__add_process() is called again (after an exec);
	 * its thread entries and aggregates stay until tracer__remove_process().
	 */
	void (*on_process)(const struct ht_event *e, void *ctx);
	void *ctx;
};

/* tracer__new - open and load the BPF programs.  NULL and errno on failure. */
struct tracer *tracer__new(const struct tracer_opts *opts);

/*
 * tracer__add_process - start tracing the CPython process described by @p,
 * before or after tracer__attach() (its existing threads are then seeded at
 * once; threads born later are added by the fork hook).  Adding a pid again
 * replaces its layout.  0 or -errno.
 */
int tracer__add_process(struct tracer *tr, const struct pyproc *p);

/*
 * tracer__follow - follow the descendants of process @pid, at any depth:
 * on_process() hears of their forks, execs and exits, and a child forked by
 * a traced process is traced at once (same layout).  A process exec'd by a
 * descendant must be found again and added with tracer__add_process().
 * 0 or -errno.
 */
int tracer__follow(struct tracer *tr, uint32_t pid);

/*
 * tracer__remove_process - forget process @pid: its layout, follow entry,
 * thread entries, off-CPU aggregates and on-CPU samples (stacks are shared
 * and stay).  Build its report first.  0, or -ENOENT if nothing was there.
 */
int tracer__remove_process(struct tracer *tr, uint32_t pid);

/*
 * tracer__set_asyncio - from now on, BPF copies the running asyncio task of
 * process @pid's threads (its name object's first bytes and its coroutine's
 * code object) into their block and sample events, with layout @a (3.14+;
 * known once the _asyncio module is loaded).  0 or -errno (-ENOENT: @pid
 * not added).
 */
struct pyasyncio;
int tracer__set_asyncio(struct tracer *tr, uint32_t pid, const struct pyasyncio *a);

/*
 * tracer__reset_aggregates - start a new window for every process: empty the
 * off-CPU aggregates, on-CPU samples and the stack maps (thread state and
 * per-thread counters stay).  Build the window's reports first.  The agent
 * calls it once per profile interval so the maps never fill up.  0.
 */
int tracer__reset_aggregates(struct tracer *tr);

/* tracer__attach - attach every program.  0 or -errno. */
int tracer__attach(struct tracer *tr);

/* tracer__poll - deliver ring buffer events, waiting at most @timeout_ms. >= 0 or -errno. */
int tracer__poll(struct tracer *tr, int timeout_ms);

/* Snapshot accessors (valid until tracer__free). */
struct tracer_snapshot {
	struct ht_thread *threads;
	size_t nr_threads;
	struct ht_agg_key *keys;
	struct ht_agg_val *vals;
	size_t nr_aggs;
	struct ht_oncpu_key *oncpu_keys;
	__u64 *oncpu_vals;
	size_t nr_oncpu;
	struct ht_stats stats;
	uint64_t taken_ns;		/* CLOCK_MONOTONIC (== bpf_ktime_get_ns) */
};

/* tracer__snapshot - copy the maps out.  0 or -errno. */
int tracer__snapshot(struct tracer *tr, struct tracer_snapshot *snap);
void tracer_snapshot__free(struct tracer_snapshot *snap);

/*
 * tracer__oncpu_keys - the keys of the on-CPU samples map (pid, tid, stack),
 * into malloc'ed *@out, *@n entries: cheaper than a snapshot, for naming
 * the stacks of a process while it is alive.  0 or -errno.
 */
int tracer__oncpu_keys(struct tracer *tr, struct ht_oncpu_key **out, size_t *n);

/* Lookups in the stack maps; 0 or -ENOENT. */
int tracer__pystack(struct tracer *tr, uint64_t id, struct ht_pystack *out);
int tracer__kstack(struct tracer *tr, uint64_t id, struct ht_kstack *out);

/*
 * tracer__task_info - per-thread facts of process @pid from the task
 * iterator: *@out is malloc'ed, *@n entries.  0 or -errno.
 */
int tracer__task_info(struct tracer *tr, pid_t pid, struct ht_task_info **out, size_t *n);

/* tracer__stats - the BPF side's counters now (a copy of its .bss: cheap). */
void tracer__stats(struct tracer *tr, struct ht_stats *out);

/* tracer__thread - the current state of thread @tid; 0 or -ENOENT. */
int tracer__thread(struct tracer *tr, uint32_t tid, struct ht_thread *out);

/*
 * tracer__loop_threads - up to @max threads of @pid that have entered an
 * event loop's poll wait (or are @loop_tid), into @tids.  Returns how many.
 */
int tracer__loop_threads(struct tracer *tr, uint32_t pid, uint32_t loop_tid, uint32_t *tids,
			 int max);

/* tracer__detach - detach every program (maps stay readable). */
void tracer__detach(struct tracer *tr);
void tracer__free(struct tracer *tr);

/* Fill the BPF-side layout of @p.  0 or -EINVAL. */
int tracer__py_proc(const struct pyproc *p, struct ht_py_proc *out);

#endif
