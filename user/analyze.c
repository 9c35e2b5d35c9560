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
#include "procmem.h"
#include "pyproc.h"
#include "pysym.h"
#include "pywalk_user.h"
#include "reason.h"
#include "report.h"
#include "sockpeer.h"
#include "strmap.h"
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
	if (!a->sym || !a->fd_desc || !a->names || !a->seen_stacks)
		return -ENOMEM;
	a->ks = ksyms__load();
	if (!a->ks)
		p_warn("kernel symbols unavailable (%s): kernel stacks will be omitted",
		       strerror(errno));
	return 0;
}

void analyze__fini(struct analyze *a)
{
	pysym__free(a->sym);
	procmem__close(a->mem);
	ksyms__free(a->ks);
	strmap__free(a->fd_desc);
	strmap__free(a->names);
	strmap__free(a->seen_stacks);
	memset(a, 0, sizeof(*a));
}

static void read_comm(uint32_t pid, uint32_t tid, char *out, size_t outsz)
{
	char path[64];
	size_t n;
	FILE *f;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/%u/task/%u/comm", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, outsz, f)) {
		n = strlen(out);
		if (n && out[n - 1] == '\n')
			out[n - 1] = 0;
	}
	fclose(f);
}

static void remember_name(struct analyze *a, uint32_t pid, uint32_t tid)
{
	char comm[64];

	if (!tid || strmap__get(a->names, &tid, sizeof(tid)))
		return;
	read_comm(pid, tid, comm, sizeof(comm));
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

void analyze__on_event(struct analyze *a, const struct ht_event *e)
{
	char desc[256];

	if (e->type != HT_EV_BLOCK || e->key.pid != (__u32)a->p->pid)
		return;
	prime_stack(a, e->key.stack);
	if (e->wk_pid == e->key.pid)
		prime_stack(a, e->key.wk_stack);
	remember_name(a, e->key.pid, e->key.tid);
	if (e->key.wk_tid)
		remember_name(a, e->wk_pid, e->key.wk_tid);
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
		if (!out->frames[i].function || !out->frames[i].file)
			return -ENOMEM;
		out->depth = i + 1;
	}
	return 0;
}

static int build_stack_id(struct analyze *a, uint64_t id, struct rstack *out)
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

/* /proc/PID/task/TID/stack: "[<0>] futex_wait_queue+0x63/0xa0" per line. */
static int proc_kstack(uint32_t pid, uint32_t tid, struct rblocker *b)
{
	char path[64], line[256], name[200];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/stack", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	b->kstack = calloc(HT_MAX_KSTACK, sizeof(char *));
	if (!b->kstack) {
		fclose(f);
		return -ENOMEM;
	}
	while (b->kdepth < HT_MAX_KSTACK && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "[<%*[0-9a-fx]>] %199[^+ \n]", name) != 1)
			continue;
		b->kstack[b->kdepth] = strdup(name);
		if (!b->kstack[b->kdepth])
			break;
		b->kdepth++;
	}
	fclose(f);
	return 0;
}

/* /proc/PID/task/TID/syscall: "nr arg0 .. arg5 sp pc", "running" or "-1 sp pc". */
static int proc_syscall(uint32_t pid, uint32_t tid, long *nr, unsigned long long args[6])
{
	char path[64], buf[512];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/syscall", pid, tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	memset(args, 0, 6 * sizeof(args[0]));
	n = sscanf(buf, "%ld %llx %llx %llx %llx %llx %llx", nr, &args[0], &args[1], &args[2],
		   &args[3], &args[4], &args[5]);
	return n >= 1 ? 0 : -EINVAL;
}

static int fd_kind_of(uint32_t pid, long fd)
{
	char path[64], target[64];
	ssize_t n;

	if (fd < 0)
		return HT_FD_UNKNOWN;
	snprintf(path, sizeof(path), "/proc/%u/fd/%ld", pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return HT_FD_UNKNOWN;
	target[n] = 0;
	return !strncmp(target, "socket:", 7) ? HT_FD_SOCKET : HT_FD_OTHER;
}

/* Classify a thread that is blocked right now, from /proc. */
static void classify_now(struct analyze *a, uint32_t tid, struct rblocker *b)
{
	unsigned long long args[6];
	long nr = -1, fd = -1;
	__u64 cls = 0;
	int32_t pfd;

	b->syscall = -1;
	b->reason = HT_R_OTHER;
	b->fd = -1;
	if (proc_syscall(a->p->pid, tid, &nr, args))
		return;
	b->syscall = nr;
	cls = args[0];
	if (nr == HT_NR_poll || nr == HT_NR_ppoll) {
		cls = args[1];
		if (args[1] >= 1 && !procmem__read(a->mem, args[0], &pfd, sizeof(pfd)))
			fd = pfd;
	} else if (ht_syscall_fd_arg(nr) ||
		   ht_classify(nr, 0, a->bpf_proc.gil_lo, a->bpf_proc.gil_hi, 0) == HT_R_SOCKET) {
		fd = (long)args[0];
	}
	b->reason = ht_classify(nr, cls, a->bpf_proc.gil_lo, a->bpf_proc.gil_hi,
				fd_kind_of(a->p->pid, fd));
	if (fd >= 0 && nr != HT_NR_futex) {
		char desc[256];

		b->fd = fd;
		if (!fd_describe(a->p->pid, fd, desc, sizeof(desc)))
			b->fd_desc = strdup(desc);
	}
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
	memset(tmp, 0, sizeof(*tmp));
	tmp->fd = -1;
	tmp->syscall = -1;
	return tmp;
}

static struct rthread *get_thread(struct builder *bd, uint32_t tid)
{
	struct report *r = bd->r;
	struct rthread *tmp;
	size_t i;

	for (i = 0; i < r->nr_threads; i++)
		if (r->threads[i].tid == tid)
			return &r->threads[i];
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

static int add_aggregates(struct analyze *a, struct builder *bd, const struct tracer_snapshot *s)
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
		b->stack_id = k->stack;
		b->wk_tid = k->wk_tid;
		b->wk_pid = v->wk_pid;
		b->wk_timer = v->wk_flags & HT_WK_TIMER;
		b->fd = (k->reason == HT_R_SOCKET || k->reason == HT_R_IO) ? v->fd : -1;
		desc = strmap__get(a->fd_desc, k, sizeof(*k));
		if (!sockaddr_describe(&v->sock, descbuf, sizeof(descbuf)))
			desc = descbuf;
		if (desc)
			b->fd_desc = strdup(desc);
		/* the name it had when it woke us; a thread renamed later keeps that */
		name = k->wk_tid ? strmap__get(a->names, &k->wk_tid, sizeof(k->wk_tid)) : NULL;
		if (k->wk_tid && v->wk_comm[0])
			snprintf(b->wk_name, sizeof(b->wk_name), "%.16s", v->wk_comm);
		else if (name)
			snprintf(b->wk_name, sizeof(b->wk_name), "%s", name);
		else if (k->wk_tid)
			read_comm(v->wk_pid, k->wk_tid, b->wk_name, sizeof(b->wk_name));
		err = build_stack_id(a, k->stack, &b->stack);
		if (!err && v->wk_pid == k->pid)
			err = build_stack_id(a, k->wk_stack, &b->wk_stack);
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
	ts = pywalk__find_tstate(&a->bpf_proc, a->mem, ti->tid, ti->fsbase);
	memset(&st, 0, sizeof(st));
	if (ts)
		id = pywalk__stack(&a->bpf_proc, a->mem, ts, &st, a->max_frames);

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
	b->stack_id = id;
	err = build_stack(a, &st, &b->stack);
	if (!err)
		err = proc_kstack(a->p->pid, ti->tid, b);
	return err;
}

static int cmp_blocker(const void *x, const void *y)
{
	const struct rblocker *a = x, *b = y;

	if (a->total_ns != b->total_ns)
		return a->total_ns < b->total_ns ? 1 : -1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

static int cmp_thread(const void *x, const void *y)
{
	const struct rthread *a = x, *b = y;

	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

static void read_cmdline(pid_t pid, struct report *r)
{
	char path[64], buf[4096];
	size_t n, i;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && !buf[n - 1])
		n--;
	for (i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = 0;
	if (n)
		r->cmdline = strdup(buf);
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
	read_cmdline(a->p->pid, r);

	err = tracer__snapshot(a->tr, &snap);
	if (err)
		return err;
	now = snap.taken_ns;
	r->duration_ns = now - a->start_mono_ns;
	r->stats = snap.stats;
	if (!a->target_exited && tracer__task_info(a->tr, a->p->pid, &tasks, &nr_tasks))
		nr_tasks = 0;

	err = add_aggregates(a, &bd, &snap);
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
		if (t && t->pend.count) {
			/* woken, but not yet back from the syscall: flush it */
			err = add_open_block(a, &bd, ti, t->pend.total_ns, t->pend.reason);
			if (err)
				goto cleanup;
		}
		if (ti->state == 0)
			continue;	/* running or runnable */
		if (t && t->off_ts)
			open_ns = now > t->off_ts ? now - t->off_ts : 0;
		else if (!t)
			open_ns = r->duration_ns;	/* asleep since before we attached */
		else
			continue;
		if (!t) {
			/* never switched during the window: all of it was off-CPU */
			struct rblocker tmp = { .fd = -1 };

			classify_now(a, ti->tid, &tmp);
			free(tmp.fd_desc);
			rt->reason_ns[tmp.reason] += open_ns;
		}
		if (open_ns < a->min_block_ns)
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
		read_comm(a->p->pid, rt->tid, rt->name, sizeof(rt->name));
		if (!rt->name[0] && name)
			snprintf(rt->name, sizeof(rt->name), "%s", name);
	}
	qsort(r->threads, r->nr_threads, sizeof(*r->threads), cmp_thread);
	qsort(r->blockers, r->nr_blockers, sizeof(*r->blockers), cmp_blocker);
	r->unreadable_code = pysym__failures(a->sym);
cleanup:
	free(tasks);
	tracer_snapshot__free(&snap);
	return err;
}
