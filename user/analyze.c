// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze.h"
#include "ksyms.h"
#include "log.h"
#include "loops.h"
#include "procmem.h"
#include "procthread.h"
#include "pyasyncio.h"
#include "pyproc.h"
#include "pysym.h"
#include "pywalk_user.h"
#include "reason.h"
#include "report.h"
#include "sockpeer.h"
#include "strmap.h"
#include "syscalls.h"
#include "tracer.h"

int analyze__init(struct analyze *a, const struct pyproc *p, struct tracer *tr)
{
	int err;

	memset(a, 0, sizeof(*a));
	a->p = p;
	a->tr = tr;
	err = tracer__py_proc(p, &a->bpf_proc);
	if (err)
		return err;
	a->mem = procmem__open(p->pid);
	if (!a->mem)
		return -errno;
	a->sym = pysym__new(p, a->mem);
	a->fd_desc = strmap__new();
	a->names = strmap__new();
	a->seen_stacks = strmap__new();
	a->task_index = strmap__new();
	if (!a->sym || !a->fd_desc || !a->names || !a->seen_stacks || !a->task_index)
		return -ENOMEM;
	/* kernel symbols are read when the report is built, not before attaching */
	return 0;
}

void analyze__fini(struct analyze *a)
{
	pysym__free(a->sym);
	procmem__close(a->mem);
	free(a->exec_into);
	ksyms__free(a->ks);
	strmap__free(a->fd_desc);
	strmap__free(a->names);
	strmap__free(a->seen_stacks);
	strmap__free(a->task_index);
	for (size_t i = 0; i < a->nr_tasks; i++) {
		free(a->tasks[i].name);
		free(a->tasks[i].coro);
	}
	free(a->tasks);
	timeline__free(&a->tl);
	memset(a, 0, sizeof(*a));
}

static void remember_name(struct analyze *a, uint32_t pid, uint32_t tid)
{
	char comm[64];

	if (!tid || strmap__get(a->names, &tid, sizeof(tid)))
		return;
	procthread__comm(pid, tid, comm, sizeof(comm));
	if (comm[0])
		strmap__set(a->names, &tid, sizeof(tid), comm);
}

/* Symbolize every frame of stack @id once, while the process is alive. */
static void prime_stack(struct analyze *a, uint64_t id)
{
	struct pyframe_sym fs;
	struct ht_pystack st;
	__u32 i;

	if (!id || strmap__get(a->seen_stacks, &id, sizeof(id)))
		return;
	if (tracer__pystack(a->tr, id, &st))
		return;
	for (i = 0; i < st.depth && i < HT_MAX_PY_FRAMES; i++)
		pysym__frame(a->sym, st.frames[i].code, st.frames[i].instr, &fs);
	strmap__set(a->seen_stacks, &id, sizeof(id), "");
}

void analyze__prime(struct analyze *a, const struct ht_agg_key *aggs, size_t nr_aggs,
		    const struct ht_oncpu_key *oncpu, size_t nr_oncpu)
{
	size_t i;

	for (i = 0; i < nr_aggs; i++) {
		if (aggs[i].pid != (__u32)a->p->pid)
			continue;
		prime_stack(a, aggs[i].stack);
		prime_stack(a, aggs[i].wk_stack);
	}
	for (i = 0; i < nr_oncpu; i++)
		if (oncpu[i].pid == (__u32)a->p->pid)
			prime_stack(a, oncpu[i].stack);
}

void analyze__tick(struct analyze *a)
{
	int err;

	if (a->aio_state)
		return;
	err = pyasyncio__find(a->p, a->mem, !a->aio_scans++, &a->aio);
	if (err == -ENOENT)
		return;		/* asyncio not imported (yet) */
	if (!err)
		err = tracer__set_asyncio(a->tr, a->p->pid, &a->aio);
	if (err) {
		a->aio_state = -1;
		if (err != -ENOTSUP)
			p_dbg("process %d: asyncio task names unavailable: %s", a->p->pid,
			      strerror(-err));
		return;
	}
	a->aio_state = 1;
	p_dbg("process %d: asyncio tasks readable (running task at thread state +%d, task name +%d, coro +%d)",
	      a->p->pid, a->aio.ts_running_task, a->aio.task_name, a->aio.task_coro);
}

#define TASK_NAME_MAX	256	/* longer names are cut, ending in "..." */
#define TASK_CORO_MAX	1024
#define MAX_TASKS	(1U << 16)

/*
 * The number of the task named @name running @coro at address @task: the
 * same number for the same three.  0 when there is nothing to name it by.
 */
static uint64_t task_number(struct analyze *a, uint64_t task, const char *name, const char *coro)
{
	char key[16 + TASK_NAME_MAX + TASK_CORO_MAX + 2], num[24];
	size_t nl = strlen(name), cl = strlen(coro), klen;
	const char *hit;
	struct atask *t;

	if (!task || (!name[0] && !coro[0]))
		return 0;
	/* the key: address, name, coro (each NUL-terminated) */
	memcpy(key, &task, sizeof(task));
	memcpy(key + 8, name, nl + 1);
	memcpy(key + 9 + nl, coro, cl + 1);
	klen = 10 + nl + cl;
	hit = strmap__get(a->task_index, key, klen);
	if (hit)
		return strtoull(hit, NULL, 10);
	if (a->nr_tasks >= MAX_TASKS)
		return 0;
	if (a->nr_tasks == a->cap_tasks) {
		size_t cap = a->cap_tasks ? a->cap_tasks * 2 : 64;

		t = realloc(a->tasks, cap * sizeof(*t));
		if (!t)
			return 0;
		a->tasks = t;
		a->cap_tasks = cap;
	}
	t = &a->tasks[a->nr_tasks];
	memset(t, 0, sizeof(*t));
	t->addr = task;
	t->name = name[0] ? strdup(name) : NULL;
	t->coro = coro[0] ? strdup(coro) : NULL;
	snprintf(num, sizeof(num), "%zu", a->nr_tasks + 1);
	if (strmap__set(a->task_index, key, klen, num)) {
		free(t->name);
		free(t->coro);
		return 0;
	}
	return ++a->nr_tasks;
}

/* The task BPF copied with an event: its number. */
static uint64_t name_task(struct analyze *a, const struct ht_task_cap *tc)
{
	char name[TASK_NAME_MAX], coro[TASK_CORO_MAX];
	size_t len = tc->name_len < sizeof(tc->name) ? tc->name_len : sizeof(tc->name);

	if (!tc->task || a->aio_state != 1)
		return 0;
	pyasyncio__name_from_raw(&a->aio, a->p, a->mem, tc->name, len, name, sizeof(name));
	pyasyncio__coro_name(a->p, a->sym, tc->coro_code, coro, sizeof(coro));
	return task_number(a, tc->task, name, coro);
}

const struct atask *analyze__task(const struct analyze *a, uint64_t n)
{
	return n && n <= a->nr_tasks ? &a->tasks[n - 1] : NULL;
}

uint64_t analyze__task_of_thread(struct analyze *a, uint64_t ts)
{
	char name[TASK_NAME_MAX], coro[TASK_CORO_MAX];
	uint64_t task = 0;

	if (!ts || a->aio_state != 1 ||
	    procmem__read_u64(a->mem, ts + a->aio.ts_running_task, &task) || !task ||
	    pyasyncio__task(&a->aio, a->p, a->mem, a->sym, task, name, sizeof(name), coro,
			    sizeof(coro)))
		return 0;
	return task_number(a, task, name, coro);
}

void analyze__on_event(struct analyze *a, const struct ht_event *e)
{
	size_t n = a->tl.n;
	char desc[256];

	if (e->key.pid != (__u32)a->p->pid)
		return;
	timeline__add(&a->tl, e);
	/* the task is alive now (it was running moments ago): name it, keep its number */
	if (a->tl.n > n)
		a->tl.ev[n].task.task = e->type == HT_EV_STALL ? 0 : name_task(a, &e->task);
	if (e->type == HT_EV_SAMPLE)
		prime_stack(a, e->key.stack);
	if (e->type != HT_EV_BLOCK)
		return;
	prime_stack(a, e->key.stack);
	if (e->wk_pid == e->key.pid)
		prime_stack(a, e->key.wk_stack);
	remember_name(a, e->key.pid, e->key.tid);
	if (e->wk_tid)
		remember_name(a, e->wk_pid, e->wk_tid);
	/* the socket's addresses as BPF saw them; else what /proc says now */
	if (e->fd >= 0 && (e->key.reason == HT_R_SOCKET || e->key.reason == HT_R_IO) &&
	    (!sockaddr_describe(&e->sock, desc, sizeof(desc)) ||
	     !fd_describe(e->key.pid, e->fd, desc, sizeof(desc))))
		strmap__set(a->fd_desc, &e->key, sizeof(e->key), desc);
}

/* Turn a raw Python stack into report frames. */
static int build_stack(struct analyze *a, const struct ht_pystack *st, struct rstack *out)
{
	struct pyframe_sym fs;
	__u32 i, n = st->depth < HT_MAX_PY_FRAMES ? st->depth : HT_MAX_PY_FRAMES;

	memset(out, 0, sizeof(*out));
	out->truncated = st->flags & HT_STACK_TRUNCATED;
	out->partial = st->flags & HT_STACK_READ_ERR;
	if (!n)
		return 0;
	out->frames = calloc(n, sizeof(*out->frames));
	if (!out->frames)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		pysym__frame(a->sym, st->frames[i].code, st->frames[i].instr, &fs);
		out->frames[i].function = strdup(fs.function);
		out->frames[i].file = strdup(fs.file);
		out->frames[i].line = fs.line;
		out->frames[i].start_line = fs.start_line;
		if (!out->frames[i].function || !out->frames[i].file)
			return -ENOMEM;
		out->depth = i + 1;
	}
	return 0;
}

int analyze__stack(struct analyze *a, uint64_t id, struct rstack *out)
{
	struct ht_pystack st;

	memset(out, 0, sizeof(*out));
	if (!id || tracer__pystack(a->tr, id, &st))
		return 0;
	return build_stack(a, &st, out);
}

static int build_kstack(struct analyze *a, uint64_t id, struct rblocker *b)
{
	struct ht_kstack ks;
	const char *name;
	__u32 i;

	if (!id || !a->ks || tracer__kstack(a->tr, id, &ks))
		return 0;
	b->kstack = calloc(HT_MAX_KSTACK, sizeof(char *));
	if (!b->kstack)
		return -ENOMEM;
	for (i = 0; i < ks.depth && i < HT_MAX_KSTACK; i++) {
		name = ksyms__name(a->ks, ks.ips[i]);
		b->kstack[b->kdepth] = strdup(name ? name : "?");
		if (!b->kstack[b->kdepth])
			return -ENOMEM;
		b->kdepth++;
	}
	return 0;
}

/* Classify a thread that is blocked right now, from /proc. */
static void classify_now(struct analyze *a, uint32_t tid, struct rblocker *b)
{
	struct procthread_wait w;

	procthread__classify(a->p->pid, tid, a->mem, &a->bpf_proc, &w);
	b->syscall = w.syscall;
	b->reason = w.reason;
	b->fd = w.fd;
	b->fd_desc = w.fd_desc;
	if (ht_is_loop_wait(w.syscall, w.args[1]))
		b->reason = HT_R_IDLE;	/* an event loop waiting for work */
}

struct builder {
	struct report *r;
	size_t cap_blockers, cap_threads;
};

static struct rblocker *new_blocker(struct builder *bd)
{
	struct report *r = bd->r;
	struct rblocker *tmp;

	if (r->nr_blockers == bd->cap_blockers) {
		bd->cap_blockers = bd->cap_blockers ? bd->cap_blockers * 2 : 64;
		tmp = realloc(r->blockers, bd->cap_blockers * sizeof(*tmp));
		if (!tmp)
			return NULL;
		r->blockers = tmp;
	}
	tmp = &r->blockers[r->nr_blockers++];
	rblocker__init(tmp);
	return tmp;
}

static struct rthread *get_thread(struct builder *bd, uint32_t tid)
{
	struct report *r = bd->r;
	struct rthread *tmp = report__thread(r, tid);

	if (tmp)
		return tmp;
	if (r->nr_threads == bd->cap_threads) {
		bd->cap_threads = bd->cap_threads ? bd->cap_threads * 2 : 32;
		tmp = realloc(r->threads, bd->cap_threads * sizeof(*tmp));
		if (!tmp)
			return NULL;
		r->threads = tmp;
	}
	tmp = &r->threads[r->nr_threads++];
	memset(tmp, 0, sizeof(*tmp));
	tmp->tid = tid;
	return tmp;
}

/*
 * The thread whose PyThreadState is @ts: the one BPF cached it for (that
 * works after the thread exited), else by pthread_self() == FS base (< 3.11).
 */
static uint32_t tid_of_tstate(struct analyze *a, const struct tracer_snapshot *snap,
			      const struct ht_task_info *tasks, size_t n, uint64_t ts)
{
	uint64_t pthread_id = 0;
	size_t i;

	for (i = 0; ts && i < snap->nr_threads; i++)
		if (snap->threads[i].tstate == ts && snap->threads[i].pid == (__u32)a->p->pid)
			return snap->threads[i].tid;
	if (!ts || a->bpf_proc.ts_thread_id < 0 ||
	    procmem__read_u64(a->mem, ts + a->bpf_proc.ts_thread_id, &pthread_id))
		return 0;
	for (i = 0; i < n; i++)
		if (tasks[i].fsbase == pthread_id)
			return tasks[i].tid;
	return 0;
}

static int add_aggregates(struct analyze *a, struct builder *bd, const struct tracer_snapshot *s,
			  const struct ht_task_info *tasks, size_t nr_tasks)
{
	const char *name, *desc;
	char descbuf[128];
	struct rblocker *b;
	size_t i;
	int err;

	for (i = 0; i < s->nr_aggs; i++) {
		const struct ht_agg_key *k = &s->keys[i];
		const struct ht_agg_val *v = &s->vals[i];

		if (k->pid != (__u32)a->p->pid)
			continue;
		b = new_blocker(bd);
		if (!b)
			return -ENOMEM;
		b->pid = k->pid;
		b->tid = k->tid;
		b->reason = k->reason;
		b->syscall = k->syscall;
		b->total_ns = v->total_ns;
		b->max_ns = v->max_ns;
		b->count = v->count;
		b->key = *k;
		b->stack_id = k->stack;
		b->wk_gil_holder = v->wk_flags & HT_WK_GIL_HOLDER;
		b->wk_tid = v->wk_tid;
		if (!b->wk_tid && b->wk_gil_holder)
			b->wk_tid = tid_of_tstate(a, s, tasks, nr_tasks, v->wk_tstate);
		b->wk_pid = v->wk_pid;
		b->wk_timer = v->wk_flags & HT_WK_TIMER;
		b->fd = (k->reason == HT_R_SOCKET || k->reason == HT_R_IO) ? v->fd : -1;
		desc = strmap__get(a->fd_desc, k, sizeof(*k));
		if (!sockaddr_describe(&v->sock, descbuf, sizeof(descbuf)))
			desc = descbuf;
		if (desc)
			b->fd_desc = strdup(desc);
		/* the name it had when it woke us; a thread renamed later keeps that */
		name = v->wk_tid ? strmap__get(a->names, &v->wk_tid, sizeof(v->wk_tid)) : NULL;
		if (v->wk_tid && v->wk_comm[0])
			snprintf(b->wk_name, sizeof(b->wk_name), "%.16s", v->wk_comm);
		else if (name)
			snprintf(b->wk_name, sizeof(b->wk_name), "%s", name);
		else if (v->wk_tid)
			procthread__comm(v->wk_pid, v->wk_tid, b->wk_name, sizeof(b->wk_name));
		err = analyze__stack(a, k->stack, &b->stack);
		if (!err && v->wk_pid == k->pid)
			err = analyze__stack(a, k->wk_stack, &b->wk_stack);
		if (!err)
			err = build_kstack(a, k->kstack, b);
		if (err)
			return err;
	}
	return 0;
}

/*
 * A thread off-CPU at the end of the window (or woken but not yet back from
 * its syscall): its frames are still, so read them from userspace.  Merged
 * into the aggregate with the same stack and reason, if there is one.
 */
static int add_open_block(struct analyze *a, struct builder *bd, const struct ht_task_info *ti,
			  uint64_t dur_ns, int pending_reason)
{
	struct ht_pystack st;
	struct rblocker tmp, *b = NULL;
	uint64_t ts, id = 0;
	size_t i;
	int err;

	memset(&tmp, 0, sizeof(tmp));
	classify_now(a, ti->tid, &tmp);
	if (pending_reason >= 0)
		tmp.reason = pending_reason;
	if (tmp.reason == HT_R_IDLE) {
		free(tmp.fd_desc);
		return 0;	/* waiting for work is not a blocker */
	}
	ts = pywalk__find_tstate(&a->bpf_proc, a->mem, ti->tid, ti->fsbase);
	memset(&st, 0, sizeof(st));
	procmem__on_behalf_of(a->mem, ti->tid);
	if (ts)
		id = pywalk__stack(&a->bpf_proc, a->mem, ts, &st, a->max_frames);
	procmem__on_behalf_of(a->mem, 0);

	/* the same place as an aggregate of this thread? */
	for (i = 0; id && i < bd->r->nr_blockers; i++) {
		struct rblocker *c = &bd->r->blockers[i];

		if (c->tid == ti->tid && c->reason == tmp.reason && c->stack_id == id) {
			b = c;
			break;
		}
	}
	if (b) {
		b->total_ns += dur_ns;
		b->count++;
		if (dur_ns > b->max_ns)
			b->max_ns = dur_ns;
		b->still_blocked = pending_reason < 0;
		if (b->still_blocked)
			b->task = analyze__task_of_thread(a, ts);
		free(tmp.fd_desc);
		return 0;
	}
	b = new_blocker(bd);
	if (!b) {
		free(tmp.fd_desc);
		return -ENOMEM;
	}
	b->pid = a->p->pid;
	b->tid = ti->tid;
	b->reason = tmp.reason;
	b->syscall = tmp.syscall;
	b->fd = tmp.fd;
	b->fd_desc = tmp.fd_desc;
	b->total_ns = dur_ns;
	b->max_ns = dur_ns;
	b->count = 1;
	b->still_blocked = pending_reason < 0;
	if (b->still_blocked)
		b->task = analyze__task_of_thread(a, ts);
	b->stack_id = id;
	err = build_stack(a, &st, &b->stack);
	if (!err)
		err = procthread__kstack(a->p->pid, ti->tid, &b->kstack, &b->kdepth);
	return err;
}

static int cmp_sample(const void *x, const void *y)
{
	const struct rsample *a = x, *b = y;

	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

/* The on-CPU samples of every thread of the target, for profiles. */
static int add_samples(struct analyze *a, struct report *r, const struct tracer_snapshot *s)
{
	struct rsample *sm;
	size_t i;
	int err;

	if (!a->sample_hz)
		return 0;
	r->sample_period_ns = 1000000000ULL / a->sample_hz;
	r->samples = calloc(s->nr_oncpu ? s->nr_oncpu : 1, sizeof(*r->samples));
	if (!r->samples)
		return -ENOMEM;
	for (i = 0; i < s->nr_oncpu; i++) {
		const struct ht_oncpu_key *k = &s->oncpu_keys[i];

		if (k->pid != (__u32)a->p->pid || !s->oncpu_vals[i])
			continue;
		sm = &r->samples[r->nr_samples++];
		sm->pid = k->pid;
		sm->tid = k->tid;
		sm->count = s->oncpu_vals[i];
		sm->ns = sm->count * r->sample_period_ns;
		sm->stack_id = k->stack;
		err = analyze__stack(a, k->stack, &sm->stack);
		if (err)
			return err;
	}
	qsort(r->samples, r->nr_samples, sizeof(*r->samples), cmp_sample);
	return 0;
}

static int cmp_blocker(const void *x, const void *y)
{
	const struct rblocker *a = x, *b = y;

	if (a->total_ns != b->total_ns)
		return a->total_ns < b->total_ns ? 1 : -1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

static const struct rblocker *sort_blockers;

static int cmp_blocker_idx(const void *x, const void *y)
{
	return cmp_blocker(&sort_blockers[*(const size_t *)x], &sort_blockers[*(const size_t *)y]);
}

static int cmp_thread(const void *x, const void *y)
{
	const struct rthread *a = x, *b = y;

	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

/*
 * Drop the blockers folded into idle time, rank the rest (largest first) and
 * point the stalls at their blockers' new places.
 */
static int finish_blockers(struct report *r)
{
	size_t i, n = 0, *order;
	struct rblocker *sorted;
	int *where;

	order = calloc(r->nr_blockers + 1, sizeof(*order));
	where = calloc(r->nr_blockers + 1, sizeof(*where));
	sorted = calloc(r->nr_blockers + 1, sizeof(*sorted));
	if (!order || !where || !sorted) {
		free(order);
		free(where);
		free(sorted);
		return -ENOMEM;
	}
	for (i = 0; i < r->nr_blockers; i++) {
		where[i] = -1;
		if (!r->blockers[i].removed)
			order[n++] = i;
	}
	sort_blockers = r->blockers;
	qsort(order, n, sizeof(*order), cmp_blocker_idx);
	for (i = 0; i < n; i++) {
		sorted[i] = r->blockers[order[i]];
		where[order[i]] = i;
	}
	for (i = 0; i < r->nr_blockers; i++)
		if (r->blockers[i].removed)
			blocker_free(&r->blockers[i]);
	for (i = 0; i < r->nr_stalls; i++)
		if (r->stalls[i].blocker >= 0)
			r->stalls[i].blocker = where[r->stalls[i].blocker];
	free(r->blockers);
	r->blockers = sorted;
	r->nr_blockers = n;
	free(order);
	free(where);
	return 0;
}

int analyze__report(struct analyze *a, struct report *r)
{
	struct ht_task_info *tasks = NULL;
	struct tracer_snapshot snap;
	struct builder bd = { .r = r };
	struct rthread *rt;
	uint64_t now, open_ns;
	size_t i, j, nr_tasks = 0;
	const char *name;
	int err, k;

	memset(r, 0, sizeof(*r));
	r->pid = a->p->pid;
	r->exe = strdup(a->p->exe);
	r->python = strdup(a->p->version);
	r->start_unix_ns = a->start_unix_ns;
	r->min_block_ns = a->min_block_ns;
	r->target_exited = a->target_exited;
	r->exec_into = a->exec_into ? strdup(a->exec_into) : NULL;
	r->cmdline = procthread__cmdline(a->p->pid);

	err = tracer__snapshot(a->tr, &snap);
	if (err)
		return err;
	if (!a->ks) {
		a->ks = ksyms__load();
		if (!a->ks)
			p_warn("kernel symbols unavailable (%s): kernel stacks will be omitted",
			       strerror(errno));
	}
	now = snap.taken_ns;
	r->duration_ns = now - a->start_mono_ns;
	r->stats = snap.stats;
	p_dbg("BPF: %llu long blocks, %llu merged in one syscall, %llu switch-ins the tracepoint "
	      "did not report (repaired)", (unsigned long long)snap.stats.long_blocks,
	      (unsigned long long)snap.stats.pend_merged,
	      (unsigned long long)snap.stats.unseen_switch_ins);
	/* after an exec the threads run another program: nothing more to read */
	if (!a->target_exited && !a->exec_into && tracer__task_info(a->tr, a->p->pid, &tasks, &nr_tasks))
		nr_tasks = 0;

	err = add_aggregates(a, &bd, &snap, tasks, nr_tasks);
	if (err)
		goto cleanup;

	/* Per-thread totals, with open intervals counted up to now. */
	for (i = 0; i < snap.nr_threads; i++) {
		const struct ht_thread *t = &snap.threads[i];

		if (t->pid != (__u32)a->p->pid)
			continue;
		rt = get_thread(&bd, t->tid);
		if (!rt) {
			err = -ENOMEM;
			goto cleanup;
		}
		rt->on_ns = t->on_ns + (t->on_ts && now > t->on_ts ? now - t->on_ts : 0);
		for (k = 0; k < HT_R_MAX; k++) {
			rt->reason_ns[k] = t->off_ns[k];
			rt->reason_cnt[k] = t->off_cnt[k];
		}
		if (t->off_ts && !t->exited && now > t->off_ts && t->reason < HT_R_MAX)
			rt->reason_ns[t->reason] += now - t->off_ts;
		rt->exited = t->exited;
		rt->python = t->tstate != 0;
	}
	for (i = 0; i < nr_tasks; i++) {
		const struct ht_task_info *ti = &tasks[i];
		const struct ht_thread *t = NULL;

		for (j = 0; j < snap.nr_threads; j++)
			if (snap.threads[j].tid == ti->tid)
				t = &snap.threads[j];
		rt = get_thread(&bd, ti->tid);
		if (!rt) {
			err = -ENOMEM;
			goto cleanup;
		}
		if (!rt->python)
			rt->python = pywalk__find_tstate(&a->bpf_proc, a->mem, ti->tid, ti->fsbase) != 0;
		if (t && t->pend.count && !a->ended_only) {
			/* woken, but not yet back from the syscall: flush it */
			err = add_open_block(a, &bd, ti, t->pend.total_ns, t->pend.reason);
			if (err)
				goto cleanup;
		}
		if (ti->state == 0)
			continue;	/* running or runnable */
		/* an entry with no switch seen: asleep since before we attached */
		bool never_switched = !t || (!t->off_ts && !t->on_ts && !t->on_ns);

		if (t && t->off_ts)
			open_ns = now > t->off_ts ? now - t->off_ts : 0;
		else if (never_switched)
			open_ns = r->duration_ns;
		else
			continue;
		if (never_switched) {
			/* never switched during the window: all of it was off-CPU */
			struct rblocker tmp = { .fd = -1 };

			classify_now(a, ti->tid, &tmp);
			free(tmp.fd_desc);
			rt->reason_ns[tmp.reason] += open_ns;
		}
		if (open_ns < a->min_block_ns || a->ended_only)
			continue;
		err = add_open_block(a, &bd, ti, open_ns, -1);
		if (err)
			goto cleanup;
	}

	for (i = 0; i < r->nr_threads; i++) {
		rt = &r->threads[i];
		for (k = 0; k < HT_R_MAX; k++)
			rt->off_ns += rt->reason_ns[k];
		name = strmap__get(a->names, &rt->tid, sizeof(rt->tid));
		procthread__comm(a->p->pid, rt->tid, rt->name, sizeof(rt->name));
		if (!rt->name[0] && name)
			snprintf(rt->name, sizeof(rt->name), "%s", name);
	}
	if (r->nr_threads)	/* none after an exec: qsort must not get NULL */
	qsort(r->threads, r->nr_threads, sizeof(*r->threads), cmp_thread);

	/* Event loops: idle time, on-CPU blockers, stalls and their blame, hints */
	{
		struct loops_in li = {
			.snap = &snap,
			.tl = &a->tl,
			.now_ns = now,
			.start_ns = a->start_mono_ns,
			.stall_ns = a->stall_ns,
			.loop_tid = a->loop_tid,
			.sample_hz = a->sample_hz,
		};

		err = loops__analyze(a, r, &li);
		if (err)
			goto cleanup;
	}
	r->stall_threshold_ns = a->stall_ns;
	r->sample_hz = a->sample_hz;
	err = add_samples(a, r, &snap);
	if (err)
		goto cleanup;
	err = finish_blockers(r);
	if (err)
		goto cleanup;
	r->unreadable_code = pysym__failures(a->sym);
cleanup:
	free(tasks);
	tracer_snapshot__free(&snap);
	return err;
}

void analyze__announce_stall(struct analyze *a, uint32_t tid, double secs, FILE *f)
{
	struct ht_task_info ti = { .tid = tid };
	struct rblocker b = { .fd = -1 };
	const struct atask *task;
	struct ht_pystack st;
	struct ht_thread t;
	uint64_t ts;
	const char *sc;
	int i;

	/* the tstate of a pre-3.11 thread is found by its FS base */
	if (!tracer__thread(a->tr, tid, &t))
		ti.fsbase = t.fsbase;
	ts = pywalk__find_tstate(&a->bpf_proc, a->mem, tid, ti.fsbase);
	memset(&st, 0, sizeof(st));
	if (ts)
		pywalk__stack(&a->bpf_proc, a->mem, ts, &st, a->max_frames);
	classify_now(a, tid, &b);
	if (build_stack(a, &st, &b.stack))
		return;
	sc = syscall_name(b.syscall);
	fprintf(f, "hangtrace: STALL: event loop thread %u has not returned to its loop for %.1f s; now: ",
		tid, secs);
	if (b.syscall < 0)
		fputs("running", f);
	else
		fprintf(f, "%s%s%s%s", reason_name(b.reason), sc ? " (" : "", sc ? sc : "", sc ? ")" : "");
	task = analyze__task(a, analyze__task_of_thread(a, ts));
	if (task && task->name) {
		fputs("; task ", f);
		report__put_quoted(f, task->name);
	}
	fputc('\n', f);
	for (i = 0; i < b.stack.depth && i < 10; i++) {
		fputs("hangtrace:     ", f);
		report__put_clean(f, b.stack.frames[i].function);
		fputs(" (", f);
		report__put_clean(f, b.stack.frames[i].file);
		fprintf(f, ":%d)\n", b.stack.frames[i].line);
	}
	fflush(f);
	blocker_free(&b);
}
