// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analyze.h"
#include "hints.h"
#include "loops.h"
#include "report.h"
#include "timeline.h"
#include "tracer.h"

/*
 * Waits for work that are not blocking anything: a worker of a pool parked
 * until the next job, a server's accept loop.  Matched on the first frame that
 * is not inside the waiting primitives themselves (threading.py, queue.py,
 * selectors.py).  Documented in docs/usage.md.
 */
static const struct {
	const char *function;	/* the frame's function ends with this */
	const char *file;	/* and its file contains this */
} idle_waits[] = {
	{ "_worker", "concurrent/futures/thread.py" },		/* ThreadPoolExecutor worker */
	{ "worker", "multiprocessing/pool.py" },		/* multiprocessing.Pool worker */
	{ "_handle_workers", "multiprocessing/pool.py" },
	{ "_handle_tasks", "multiprocessing/pool.py" },
	{ "_handle_results", "multiprocessing/pool.py" },
	{ "serve_forever", "socketserver.py" },			/* http.server, socketserver */
	{ "_queue_management_worker", "concurrent/futures/process.py" },
	{ "run", "concurrent/futures/process.py" },		/* 3.9+ executor manager thread */
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int is_primitive_frame(const struct rframe *f)
{
	return strstr(f->file, "/threading.py") || strstr(f->file, "/queue.py") ||
	       strstr(f->file, "/selectors.py");
}

int loops__is_idle_wait(const struct rblocker *b)
{
	const struct rframe *f;
	size_t i;
	int j;

	if (b->on_cpu || (b->reason != HT_R_LOCK && b->reason != HT_R_SOCKET &&
			  b->reason != HT_R_IO))
		return 0;
	for (j = 0; j < b->stack.depth; j++) {
		f = &b->stack.frames[j];
		if (is_primitive_frame(f))
			continue;
		for (i = 0; i < sizeof(idle_waits) / sizeof(idle_waits[0]); i++)
			if (ends_with(f->function, idle_waits[i].function) &&
			    strstr(f->file, idle_waits[i].file))
				return 1;
		return 0;
	}
	return 0;
}

static struct rblocker *add_blocker(struct report *r)
{
	struct rblocker *tmp;

	tmp = realloc(r->blockers, (r->nr_blockers + 1) * sizeof(*tmp));
	if (!tmp)
		return NULL;
	r->blockers = tmp;
	tmp = &r->blockers[r->nr_blockers++];
	rblocker__init(tmp);
	return tmp;
}

/* On-CPU blockers: the sampled stacks of loop threads. */
static int add_oncpu(struct analyze *a, struct report *r, const struct loops_in *in)
{
	uint64_t period = in->sample_hz ? 1000000000ULL / in->sample_hz : 0;
	const struct tracer_snapshot *s = in->snap;
	struct rthread *rt;
	struct rblocker *b;
	size_t i;
	int err;

	for (i = 0; period && i < s->nr_oncpu; i++) {
		const struct ht_oncpu_key *k = &s->oncpu_keys[i];

		if (k->pid != r->pid)
			continue;
		rt = report__thread(r, k->tid);
		if (!rt || !rt->event_loop)
			continue;
		b = add_blocker(r);
		if (!b)
			return -ENOMEM;
		b->pid = k->pid;
		b->tid = k->tid;
		b->on_cpu = true;
		b->reason = HT_R_CPU;
		b->count = s->oncpu_vals[i];
		b->total_ns = s->oncpu_vals[i] * period;
		b->max_ns = period;
		b->stack_id = k->stack;
		err = analyze__stack(a, k->stack, &b->stack);
		if (err)
			return err;
	}
	return 0;
}

static uint64_t overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	uint64_t s = s1 > s2 ? s1 : s2, e = e1 < e2 ? e1 : e2;

	return e > s ? e - s : 0;
}

static int find_blocker_by_key(const struct report *r, const struct ht_agg_key *k)
{
	size_t i;

	for (i = 0; i < r->nr_blockers; i++)
		if (!r->blockers[i].on_cpu && !memcmp(&r->blockers[i].key, k, sizeof(*k)))
			return i;
	return -1;
}

static int find_oncpu(const struct report *r, uint32_t tid, uint64_t stack)
{
	size_t i;

	for (i = 0; i < r->nr_blockers; i++)
		if (r->blockers[i].on_cpu && r->blockers[i].tid == tid &&
		    r->blockers[i].stack_id == stack)
			return i;
	return -1;
}

/* The coroutine or callback the loop was running: the frame inside Handle._run. */
static char *running_coro(const struct rstack *st)
{
	int j;

	for (j = 1; j < st->depth; j++) {
		const struct rframe *f = &st->frames[j];

		if (strstr(f->file, "asyncio/events.py") && ends_with(f->function, "_run"))
			return strdup(st->frames[j - 1].function);
		if (strstr(f->file, "asyncio/tasks.py") && strstr(f->function, "__step"))
			return strdup(st->frames[j - 1].function);
	}
	return NULL;
}

/*
 * The blocker timeline event @ev of thread @tid counts for inside stall
 * [s, e), and for how long (*@ns); -1 if none.
 */
static int event_in_stall(const struct report *r, const struct loops_in *in,
			  const struct ht_event *ev, uint32_t tid, uint64_t s, uint64_t e,
			  uint64_t *ns)
{
	if (ev->key.tid != tid)
		return -1;
	if (ev->type == HT_EV_BLOCK) {
		*ns = overlap(s, e, ev->start_ts, ev->start_ts + ev->dur_ns);
		return *ns ? find_blocker_by_key(r, &ev->key) : -1;
	}
	if (ev->type == HT_EV_SAMPLE && ev->start_ts >= s && ev->start_ts < e) {
		*ns = in->sample_hz ? 1000000000ULL / in->sample_hz : 0;
		return find_oncpu(r, tid, ev->key.stack);
	}
	return -1;
}

#define STALL_TASKS 16	/* distinct tasks weighed per stall */
#define ANY (-2)	/* stall_task(): any blocker's events */

/*
 * The asyncio task that ran blocker @b (or, with ANY, anything) inside stall
 * [s, e): the one its blocks and samples there carry for the longest (a
 * still-blocked blocker counts with the task it is in now).  0: none known.
 */
static uint64_t stall_task(const struct report *r, const struct loops_in *in, uint32_t tid,
			   uint64_t s, uint64_t e, int b, bool in_progress)
{
	struct {
		uint64_t task, ns;
	} acc[STALL_TASKS + 1] = {};
	uint64_t ns, best = 0, best_ns = 0;
	size_t i;
	int j, n = 0;

	for (i = 0; i <= in->tl->n; i++) {
		uint64_t task;

		if (i < in->tl->n) {
			const struct ht_event *ev = &in->tl->ev[i];

			task = ev->task.task;	/* analyze's task number */
			ns = 0;
			if (!task || (event_in_stall(r, in, ev, tid, s, e, &ns) != b && b != ANY) ||
			    !ns)
				continue;
		} else {
			task = b >= 0 ? r->blockers[b].task : 0;
			if (!task || !in_progress || !r->blockers[b].still_blocked)
				continue;
			ns = e - s;
		}
		for (j = 0; j < n && acc[j].task != task; j++)
			;
		if (j == n && n < STALL_TASKS)
			acc[n++].task = task;
		acc[j].ns += ns;
	}
	for (j = 0; j < n; j++)
		if (acc[j].ns > best_ns) {
			best_ns = acc[j].ns;
			best = acc[j].task;
		}
	return best;
}

/*
 * Blame stall [s, e) of @tid: the blocker with most time in it, off- or
 * on-CPU.  *@in_stall gets each blocker's time inside it (malloc'ed, one per
 * blocker).  The blocker's index, -1 for none, -2 when out of memory.
 */
static int blame_stall(struct report *r, const struct loops_in *in, uint32_t tid, uint64_t s,
		       uint64_t e, bool in_progress, uint64_t **in_stall)
{
	size_t i, n = r->nr_blockers;
	int best = -1, idx;
	uint64_t best_ns = 0, *acc;

	*in_stall = acc = calloc(n ? n : 1, sizeof(*acc));
	if (!acc)
		return -2;
	for (i = 0; i < in->tl->n; i++) {
		uint64_t ns;

		idx = event_in_stall(r, in, &in->tl->ev[i], tid, s, e, &ns);
		if (idx >= 0 && (size_t)idx < n)
			acc[idx] += ns;
	}
	/* a stall still going on at the end: the thread's open block */
	for (i = 0; in_progress && i < n; i++)
		if (r->blockers[i].tid == tid && r->blockers[i].still_blocked)
			acc[i] += e - s;
	for (i = 0; i < n; i++) {
		if (!acc[i])
			continue;
		r->blockers[i].stall_ns += acc[i];
		if (acc[i] > best_ns) {
			best_ns = acc[i];
			best = i;
		}
	}
	if (best >= 0)
		r->blockers[best].stall_count++;
	return best;
}

/*
 * The coroutine or callback of the stall from the frames: the blamed
 * blocker's stack, else (blamed on what has no frames: preemption) the stack
 * of the blocker with the next most time in the stall that shows one.
 */
static char *stall_coro(const struct report *r, int b, const uint64_t *in_stall)
{
	uint64_t tried_ns = UINT64_MAX, best_ns;
	size_t i, tried = 0, best;
	char *coro;

	if (b < 0)
		return NULL;
	coro = running_coro(&r->blockers[b].stack);
	/* then by time in the stall, most first: (ns, index) below the last one tried */
	while (!coro) {
		best_ns = 0;
		best = 0;
		for (i = 0; i < r->nr_blockers; i++) {
			bool below = in_stall[i] < tried_ns || (in_stall[i] == tried_ns && i < tried);

			if (below && (in_stall[i] > best_ns || (in_stall[i] == best_ns && i > best)))
				if (in_stall[i]) {
					best_ns = in_stall[i];
					best = i;
				}
		}
		if (!best_ns)
			break;
		tried_ns = best_ns;
		tried = best;
		coro = running_coro(&r->blockers[best].stack);
	}
	return coro;
}

static int add_stall(struct analyze *a, struct report *r, const struct loops_in *in, uint32_t tid,
		     uint64_t s, uint64_t e, bool in_progress)
{
	const struct atask *task = NULL;
	uint64_t *in_stall;
	struct rthread *rt = report__thread(r, tid);
	struct rstall *tmp, *st;
	int b;

	tmp = realloc(r->stalls, (r->nr_stalls + 1) * sizeof(*tmp));
	if (!tmp)
		return -ENOMEM;
	r->stalls = tmp;
	b = blame_stall(r, in, tid, s, e, in_progress, &in_stall);
	if (b == -2)
		return -ENOMEM;
	st = &r->stalls[r->nr_stalls++];
	memset(st, 0, sizeof(*st));
	st->tid = tid;
	st->start_ns = s > in->start_ns ? s - in->start_ns : 0;
	st->start_ktime_ns = s;
	st->dur_ns = e - s;
	st->blocker = b;
	st->in_progress = in_progress;
	/*
	 * 3.14+: the task asyncio itself says was running, with its name and
	 * coroutine; otherwise (and for a plain callback) the frame inside
	 * Handle._run / Task.__step.
	 */
	if (b >= 0)
		task = analyze__task(a, stall_task(r, in, tid, s, e, b, in_progress));
	/* blamed on what carries no task (preemption, a page fault): what else ran in it */
	if (!task)
		task = analyze__task(a, stall_task(r, in, tid, s, e, ANY, in_progress));
	if (task && task->name)
		st->task_name = strdup(task->name);
	if (task && task->coro)
		st->coro = strdup(task->coro);
	else
		st->coro = stall_coro(r, b, in_stall);
	free(in_stall);
	if (rt) {
		rt->stalls++;
		rt->stall_ns += st->dur_ns;
		if (st->dur_ns > rt->longest_stall_ns)
			rt->longest_stall_ns = st->dur_ns;
	}
	return 0;
}

/*
 * For each blocker woken by a thread: what was that thread itself blocked on
 * while this one waited for it (during the longest wait)?  A join woken by an
 * exiting worker has no frames at wake-up; this names the worker's real work.
 */
static int waker_activity(struct analyze *a, struct report *r, const struct timeline *tl)
{
	size_t i, j;

	for (i = 0; i < r->nr_blockers; i++) {
		struct rblocker *b = &r->blockers[i];
		const struct ht_event *inst = NULL, *best = NULL;
		uint64_t s, e, ns, best_ns = 0;

		if (b->on_cpu || !b->wk_tid || b->wk_timer || b->wk_pid != b->pid)
			continue;
		/* the longest instance of this blocker */
		for (j = 0; j < tl->n; j++)
			if (tl->ev[j].type == HT_EV_BLOCK &&
			    !memcmp(&tl->ev[j].key, &b->key, sizeof(b->key)) &&
			    (!inst || tl->ev[j].dur_ns > inst->dur_ns))
				inst = &tl->ev[j];
		if (!inst)
			continue;
		s = inst->start_ts;
		e = s + inst->dur_ns;
		for (j = 0; j < tl->n; j++) {
			const struct ht_event *ev = &tl->ev[j];

			if (ev->type != HT_EV_BLOCK || ev->key.tid != b->wk_tid || !ev->key.stack)
				continue;
			ns = overlap(s, e, ev->start_ts, ev->start_ts + ev->dur_ns);
			if (ns > best_ns) {
				best_ns = ns;
				best = ev;
			}
		}
		if (!best)
			continue;
		b->wk_busy_ns = best_ns;
		b->wk_busy_reason = best->key.reason;
		b->wk_busy_syscall = best->key.syscall;
		if (analyze__stack(a, best->key.stack, &b->wk_busy_stack))
			return -ENOMEM;
	}
	return 0;
}

int loops__analyze(struct analyze *a, struct report *r, const struct loops_in *in)
{
	const struct tracer_snapshot *s = in->snap;
	struct rthread *rt;
	size_t i;
	int err;

	/* Which threads are event loops, and how long they waited for work */
	for (i = 0; i < s->nr_threads; i++) {
		const struct ht_thread *t = &s->threads[i];

		if (t->pid != r->pid)
			continue;
		rt = report__thread(r, t->tid);
		if (!rt)
			continue;
		rt->event_loop = t->loop_polls >= 2 || (in->loop_tid && t->tid == in->loop_tid);
	}
	for (i = 0; i < r->nr_threads; i++)
		r->threads[i].idle_ns = r->threads[i].reason_ns[HT_R_IDLE];

	/* Pool workers waiting for their next job are idle, not blocked */
	for (i = 0; i < r->nr_blockers; i++) {
		struct rblocker *b = &r->blockers[i];

		rt = report__thread(r, b->tid);
		if (!rt || rt->event_loop || !loops__is_idle_wait(b))
			continue;
		b->removed = true;
		rt->idle_ns += b->total_ns;
		/* and in the per-reason split too: that time was idle, not socket/lock */
		if (b->reason >= 0 && b->reason < HT_R_MAX) {
			uint64_t moved = b->total_ns < rt->reason_ns[b->reason] ?
						 b->total_ns : rt->reason_ns[b->reason];

			rt->reason_ns[b->reason] -= moved;
			rt->reason_ns[HT_R_IDLE] += moved;
		}
	}

	err = add_oncpu(a, r, in);
	if (!err)
		err = waker_activity(a, r, in->tl);
	if (err)
		return err;
	for (i = 0; i < r->nr_blockers; i++) {
		rt = report__thread(r, r->blockers[i].tid);
		r->blockers[i].event_loop = rt && rt->event_loop;
	}

	/* Stalls: finished ones from the timeline, then any still going on */
	for (i = 0; i < in->tl->n; i++) {
		const struct ht_event *ev = &in->tl->ev[i];

		if (ev->type != HT_EV_STALL || ev->key.pid != r->pid)
			continue;
		err = add_stall(a, r, in, ev->key.tid, ev->start_ts, ev->start_ts + ev->dur_ns,
				false);
		if (err)
			return err;
	}
	for (i = 0; i < s->nr_threads; i++) {
		const struct ht_thread *t = &s->threads[i];

		rt = report__thread(r, t->tid);
		if (t->pid != r->pid || !rt || !rt->event_loop || t->in_poll || t->exited ||
		    !t->iter_start || in->now_ns < t->iter_start + in->stall_ns)
			continue;
		err = add_stall(a, r, in, t->tid, t->iter_start, in->now_ns, true);
		if (err)
			return err;
	}

	/* One line of advice for what blocked a loop */
	for (i = 0; i < r->nr_blockers; i++)
		if (r->blockers[i].event_loop && !r->blockers[i].removed)
			r->blockers[i].hint = hint_for(&r->blockers[i]);
	return 0;
}
