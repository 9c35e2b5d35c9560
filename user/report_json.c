// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The JSON report (docs/report-json.md is the contract). */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "report.h"
#include "syscalls.h"
#include "jsonout.h"

static json_object *jstack(const struct rstack *s)
{
	json_object *arr = json_object_new_array();
	int i;

	for (i = 0; i < s->depth; i++)
		json_object_array_add(arr, json__frame(s->frames[i].function, s->frames[i].file,
						       s->frames[i].line));
	if (s->truncated)
		json_object_array_add(arr, json__truncated_frame());
	return arr;
}

static json_object *jblocker(const struct rblocker *b)
{
	json_object *o = json_object_new_object(), *w;
	const char *sc = syscall_name(b->syscall);

	json_object_object_add(o, "tid", json_object_new_int64(b->tid));
	json_object_object_add(o, "event_loop", json_object_new_boolean(b->event_loop));
	json_object_object_add(o, "kind", json__str(blocker_kind(b)));
	json_object_object_add(o, "reason", json__str(reason_name(b->reason)));
	json_object_object_add(o, "syscall", sc ? json__str(sc) : NULL);
	json_object_object_add(o, "total_s", json__secs(b->total_ns));
	json_object_object_add(o, "count", json_object_new_int64(b->count));
	json_object_object_add(o, "max_s", json__secs(b->max_ns));
	json_object_object_add(o, "stack", jstack(&b->stack));
	json_object_object_add(o, "stack_partial", json_object_new_boolean(b->stack.partial));
	json_object_object_add(o, "kernel_stack", json__strings(b->kstack, b->kdepth));
	if (b->fd >= 0 || b->fd_desc) {
		json_object_object_add(o, "fd", b->fd >= 0 ? json_object_new_int(b->fd) : NULL);
		json_object_object_add(o, "fd_target", json__str(b->fd_desc));
	}
	if (b->wk_tid && !b->wk_timer) {
		w = json_object_new_object();
		json_object_object_add(w, "gil_holder", json_object_new_boolean(b->wk_gil_holder));
		json_object_object_add(w, "tid", json_object_new_int64(b->wk_tid));
		json_object_object_add(w, "pid", json_object_new_int64(b->wk_pid));
		json_object_object_add(w, "name", json__str(b->wk_name));
		json_object_object_add(w, "stack", jstack(&b->wk_stack));
		if (b->wk_busy_ns) {
			json_object *ww = json_object_new_object();
			const char *bsc = syscall_name(b->wk_busy_syscall);

			json_object_object_add(ww, "reason", json__str(reason_name(b->wk_busy_reason)));
			json_object_object_add(ww, "syscall", bsc ? json__str(bsc) : NULL);
			json_object_object_add(ww, "seconds", json__secs(b->wk_busy_ns));
			json_object_object_add(ww, "stack", jstack(&b->wk_busy_stack));
			json_object_object_add(w, "while_waiting", ww);
		} else {
			json_object_object_add(w, "while_waiting", NULL);
		}
		json_object_object_add(o, "waker", w);
	} else {
		json_object_object_add(o, "waker", NULL);
	}
	json_object_object_add(o, "woken_by_timeout", json_object_new_boolean(b->wk_timer));
	json_object_object_add(o, "stall_s", json__secs(b->stall_ns));
	json_object_object_add(o, "stall_count", json_object_new_int64(b->stall_count));
	json_object_object_add(o, "still_blocked", json_object_new_boolean(b->still_blocked));
	json_object_object_add(o, "hint", b->hint ? json__str(b->hint) : NULL);
	return o;
}

json_object *report__json_blocker(const struct rblocker *b)
{
	return jblocker(b);
}

/*
 * The per-process members (target, window, threads, stalls, blockers) of
 * @r into @root: the top level holds the root process's, each element of
 * "processes" a descendant's, with the same shape.
 */
static void add_process_parts(json_object *root, const struct report *r)
{
	json_object *t, *w, *arr, *th, *by;
	size_t i;
	int j;

	t = json_object_new_object();
	json_object_object_add(t, "pid", json_object_new_int64(r->pid));
	if (r->ppid)
		json_object_object_add(t, "ppid", json_object_new_int64(r->ppid));
	json_object_object_add(t, "exe", json__str(r->exe));
	json_object_object_add(t, "cmdline", json__str(r->cmdline));
	json_object_object_add(t, "python", json__str(r->python));
	json_object_object_add(t, "exited", json_object_new_boolean(r->target_exited));
	json_object_object_add(t, "exec_into", json__str(r->exec_into));
	json_object_object_add(root, "target", t);

	w = json_object_new_object();
	json_object_object_add(w, "start_unix_ns", json_object_new_int64(r->start_unix_ns));
	json_object_object_add(w, "duration_s", json__secs(r->duration_ns));
	json_object_object_add(w, "min_block_s", json__secs(r->min_block_ns));
	json_object_object_add(w, "focus", json__str(r->focus));
	json_object_object_add(root, "window", w);

	arr = json_object_new_array();
	for (i = 0; i < r->nr_threads; i++) {
		const struct rthread *rt = &r->threads[i];

		th = json_object_new_object();
		json_object_object_add(th, "tid", json_object_new_int64(rt->tid));
		json_object_object_add(th, "name", json__str(rt->name));
		json_object_object_add(th, "python", json_object_new_boolean(rt->python));
		json_object_object_add(th, "event_loop", json_object_new_boolean(rt->event_loop));
		json_object_object_add(th, "on_cpu_s", json__secs(rt->on_ns));
		json_object_object_add(th, "off_cpu_s", json__secs(rt->off_ns));
		json_object_object_add(th, "idle_s", json__secs(rt->idle_ns));
		by = json_object_new_object();
		for (j = 0; j < HT_R_MAX; j++)
			if (rt->reason_ns[j])
				json_object_object_add(by, reason_name(j), json__secs(rt->reason_ns[j]));
		json_object_object_add(th, "off_cpu_by_reason_s", by);
		json_object_object_add(th, "exited", json_object_new_boolean(rt->exited));
		if (rt->event_loop) {
			json_object_object_add(th, "stalls", json_object_new_int64(rt->stalls));
			json_object_object_add(th, "stall_s", json__secs(rt->stall_ns));
			json_object_object_add(th, "longest_stall_s", json__secs(rt->longest_stall_ns));
		}
		json_object_array_add(arr, th);
	}
	json_object_object_add(root, "threads", arr);
	arr = json_object_new_array();
	for (i = 0; i < r->nr_stalls; i++) {
		const struct rstall *st = &r->stalls[i];
		json_object *so = json_object_new_object(), *task = NULL;

		json_object_object_add(so, "tid", json_object_new_int64(st->tid));
		json_object_object_add(so, "start_s", json__secs(st->start_ns));
		json_object_object_add(so, "duration_s", json__secs(st->dur_ns));
		json_object_object_add(so, "blocker", st->blocker >= 0 ?
							     json_object_new_int(st->blocker) : NULL);
		if (st->coro || st->task_name) {
			task = json_object_new_object();
			json_object_object_add(task, "name",
					       st->task_name ? json__str(st->task_name) : NULL);
			json_object_object_add(task, "coro", st->coro ? json__str(st->coro) : NULL);
		}
		json_object_object_add(so, "task", task);
		json_object_object_add(so, "in_progress", json_object_new_boolean(st->in_progress));
		json_object_array_add(arr, so);
	}
	json_object_object_add(root, "stalls", arr);

	arr = json_object_new_array();
	for (i = 0; i < r->nr_blockers; i++)
		json_object_array_add(arr, jblocker(&r->blockers[i]));
	json_object_object_add(root, "blockers", arr);

}

int report__write_json(const struct report *r, FILE *f)
{
	json_object *root = json_object_new_object(), *arr, *lost, *po, *u;
	uint64_t lost_events;
	size_t i;

	json__add_header(root);
	add_process_parts(root, r);

	/* --children: the traced descendants, then those that were not */
	arr = json_object_new_array();
	for (i = 0; i < r->nr_children; i++) {
		po = json_object_new_object();
		add_process_parts(po, &r->children[i]);
		json_object_array_add(arr, po);
	}
	json_object_object_add(root, "processes", arr);
	arr = json_object_new_array();
	for (i = 0; i < r->nr_untraced; i++) {
		u = json_object_new_object();
		json_object_object_add(u, "pid", json_object_new_int64(r->untraced[i].pid));
		json_object_object_add(u, "ppid", json_object_new_int64(r->untraced[i].ppid));
		json_object_object_add(u, "exe", json__str(r->untraced[i].exe));
		json_object_object_add(u, "why", json__str(r->untraced[i].why));
		json_object_array_add(arr, u);
	}
	json_object_object_add(root, "untraced", arr);
	json_object_object_add(root, "untraced_dropped", json_object_new_int64(r->untraced_dropped));

	lost_events = r->stats.ringbuf_full;
	lost = json_object_new_object();
	json_object_object_add(lost, "events", json_object_new_int64(lost_events));
	json_object_object_add(lost, "samples", json_object_new_int64(r->stats.samples_lost));
	json_object_object_add(lost, "aggregates", json_object_new_int64(r->stats.agg_full));
	json_object_object_add(lost, "stacks", json_object_new_int64(r->stats.stacks_full));
	json_object_object_add(lost, "threads", json_object_new_int64(r->stats.threads_full));
	json_object_object_add(lost, "processes", json_object_new_int64(r->stats.procs_full));
	json_object_object_add(lost, "unreadable_stacks", json_object_new_int64(r->stats.py_read_fail));
	json_object_object_add(lost, "unreadable_code_objects",
			       json_object_new_int64(r->unreadable_code));
	json_object_object_add(root, "lost", lost);

	return json__write(root, f);
}
