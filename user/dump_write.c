// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* `hangtrace dump` output: text (first line: the diagnosis) and JSON (docs/report-json.md). */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "jsonout.h"
#include "report.h"
#include "env.h"
#include "hangtrace.h"
#include "pyproc.h"
#include "reason.h"
#include "report.h"
#include "syscalls.h"

/* The number of arguments of the calls a thread usually blocks in; others show all six. */
static int syscall_arity(long nr)
{
	switch (nr) {
	case HT_NR_pause:
		return 0;
	case HT_NR_nanosleep: case HT_NR_flock:
		return 2;
	case HT_NR_read: case HT_NR_write: case HT_NR_poll: case HT_NR_connect: case HT_NR_accept:
	case HT_NR_sendmsg: case HT_NR_recvmsg: case HT_NR_fcntl: case HT_NR_readv:
	case HT_NR_writev:
		return 3;
	case HT_NR_wait4: case HT_NR_clock_nanosleep: case HT_NR_epoll_wait: case HT_NR_accept4:
	case HT_NR_pread64: case HT_NR_pwrite64:
		return 4;
	case HT_NR_select: case HT_NR_waitid: case HT_NR_ppoll: case HT_NR_futex_waitv:
		return 5;
	default:
		return 6;
	}
}

static const char *state_word(char s)
{
	switch (s) {
	case 'R':
		return "running";
	case 'D':
		return "disk";
	case 'T': case 't':
		return "stopped";
	case 'Z': case 'X':
		return "zombie";
	case 0:
		return "gone";
	default:
		return "sleeping";
	}
}

static const char *signal_name(int signo, char *buf, size_t sz)
{
	const char *a = sigabbrev_np(signo);

	if (a)
		snprintf(buf, sz, "SIG%s", a);
	else
		snprintf(buf, sz, "signal %d", signo);
	return buf;
}

/* --- text --------------------------------------------------------------- */

static void put_arg(FILE *f, uint64_t v)
{
	if (v < 100000)
		fprintf(f, "%llu", (unsigned long long)v);
	else if (v <= 0xffffffffULL && (int32_t)v < 0 && (int32_t)v > -100000)
		fprintf(f, "%d", (int32_t)v);	/* an int argument that is negative: -1 */
	else
		fprintf(f, "%#llx", (unsigned long long)v);
}

static void text_summary(const struct dump *d, FILE *f)
{
	size_t i, running = 0, blocked = 0, python = 0;

	for (i = 0; i < d->nr_threads; i++) {
		running += d->threads[i].state == 'R';
		blocked += d->threads[i].state && d->threads[i].state != 'R';
		python += d->threads[i].python;
	}
	fprintf(f, "No known hang pattern: %zu thread%s (%zu Python), %zu running, %zu blocked; "
		   "see the stacks below\n", d->nr_threads, d->nr_threads == 1 ? "" : "s", python,
		running, blocked);
}

static void text_thread(const struct dump_thread *t, FILE *f)
{
	char wait[1024], sig[32];
	int i, n;

	fprintf(f, "\nThread %u \"", t->tid);
	report__put_clean(f, t->name);
	fprintf(f, "\"%s: %s", t->main ? " (main)" : "", state_word(t->state));
	if (t->state && t->state != 'R' && t->state != 'T' && t->state != 't' && t->state != 'Z') {
		dump__describe_wait(t, wait, sizeof(wait));
		fputs(", ", f);
		report__put_clean(f, wait);
	}
	fputc('\n', f);
	if (t->w.syscall >= 0 && t->state && t->state != 'R') {
		fprintf(f, "    syscall: %s(", syscall_name(t->w.syscall) ? syscall_name(t->w.syscall) : "?");
		n = syscall_arity(t->w.syscall);
		for (i = 0; i < n; i++) {
			if (i)
				fputs(", ", f);
			put_arg(f, t->w.args[i]);
		}
		fputs(")\n", f);
	}
	if (t->holds_gil)
		fputs("    holds the GIL\n", f);
	if (t->handler_signo) {
		fprintf(f, "    in the %s handler ", signal_name(t->handler_signo, sig, sizeof(sig)));
		report__put_clean(f, t->frames[t->handler_frame].function);
		fputc('\n', f);
	}
	if (t->waits_for)
		fprintf(f, "    joins thread %u (%s)\n", t->waits_for,
			t->waits_exact ? "found by the lock it waits on" : "the only other Python thread");
	if (t->lock_owner)
		fprintf(f, "    waits for an RLock held by thread %u\n", t->lock_owner);
	for (i = 0; i < t->depth; i++) {
		fputs("        ", f);
		report__put_clean(f, t->frames[i].function);
		fputs("  (", f);
		report__put_clean(f, t->frames[i].file);
		if (t->frames[i].line >= 0)
			fprintf(f, ":%d", t->frames[i].line);
		fputs(")\n", f);
	}
	if (t->truncated)
		fputs("        <truncated>\n", f);
	if (t->stack_note) {
		fputs("        (", f);
		report__put_clean(f, t->stack_note);
		fputs(")\n", f);
	}
	if (t->kdepth) {
		fputs("        kernel: ", f);
		for (i = 0; i < t->kdepth && i < 6; i++)
			fprintf(f, "%s%s", i ? " < " : "", t->kstack[i]);
		fputc('\n', f);
	}
}

int dump__write_text(const struct dump *d, FILE *f)
{
	const struct dump_thread *h;
	size_t i;

	/* The first line is the diagnosis */
	if (d->nr_findings) {
		report__put_clean(f, d->findings[0].message);
		fputc('\n', f);
	} else {
		text_summary(d, f);
	}

	fprintf(f, "\nprocess %d", d->pid);
	if (d->cmdline) {
		fputs(" (", f);
		report__put_clean(f, d->cmdline);
		fputc(')', f);
	}
	fprintf(f, ": Python %s, exe ", d->p->version);
	report__put_clean(f, d->p->exe);
	fprintf(f, ", %zu thread%s, %s%s\n", d->nr_threads, d->nr_threads == 1 ? "" : "s", state_word(d->state),
		d->state == 'T' || d->state == 't' ? " (it cannot run until it gets SIGCONT)" : "");
	fputs("interpreter: ", f);
	if (d->finalizing_flag)
		fputs("finalizing (CPython's flag is set)", f);
	else if (d->finalizing) {
		fputs("finalizing (the main thread is in ", f);
		report__put_clean(f, d->shutdown_path);
		fputs("; CPython sets its own flag only after that returns)", f);
	} else
		fputs("not finalizing", f);
	h = NULL;
	for (i = 0; i < d->nr_threads; i++)
		if (d->threads[i].tid == d->gil_holder)
			h = &d->threads[i];
	if (!d->gil_known)
		fputs("; GIL: unknown\n", f);
	else if (h)
		fprintf(f, "; GIL: held by thread %u\n", h->tid);
	else
		fputs("; GIL: free\n", f);
	if (d->mem_error) {
		fputs("WARNING: ", f);
		report__put_clean(f, d->mem_error);
		fputs(": no Python stacks\n", f);
	}
	fprintf(f, "snapshot taken in %.1f ms, without stopping the process\n", d->took_ns / 1e6);

	if (d->nr_findings > 1) {
		fputs("\nfindings:\n", f);
		for (i = 0; i < d->nr_findings; i++) {
			fprintf(f, "  %zu. ", i + 1);
			report__put_clean(f, d->findings[i].message);
			fputc('\n', f);
		}
	}
	for (i = 0; i < d->nr_threads; i++)
		text_thread(&d->threads[i], f);

	if (d->trace) {
		fprintf(f, "\n--- tracing for %.1f s after the snapshot: who blocked and who woke whom ---\n\n",
			d->trace_ns / 1e9);
		if (report__write_text(d->trace, f))
			return -1;
	}
	return ferror(f) ? -1 : 0;
}

/* --- JSON --------------------------------------------------------------- */

static json_object *jframes(const struct dump_thread *t)
{
	json_object *arr = json_object_new_array();
	int i;

	for (i = 0; i < t->depth; i++)
		json_object_array_add(arr, json__frame(t->frames[i].function, t->frames[i].file,
						       t->frames[i].line));
	if (t->truncated)
		json_object_array_add(arr, json__truncated_frame());
	return arr;
}

static json_object *jthread(const struct dump_thread *t)
{
	json_object *o = json_object_new_object(), *a, *h;
	bool blocked = t->state && t->state != 'R';
	const char *sc = blocked ? syscall_name(t->w.syscall) : NULL;
	char sig[32];
	int i;

	json_object_object_add(o, "tid", json_object_new_int64(t->tid));
	json_object_object_add(o, "name", json__str(t->name));
	json_object_object_add(o, "main", json_object_new_boolean(t->main));
	json_object_object_add(o, "python", json_object_new_boolean(t->python));
	json_object_object_add(o, "state", json__str(state_word(t->state)));
	json_object_object_add(o, "blocked_s", blocked && t->blocked_known ?
					      json__secs(t->blocked_ns) : NULL);
	json_object_object_add(o, "syscall", sc ? json__str(sc) : NULL);
	a = NULL;
	if (blocked && t->w.syscall >= 0) {
		a = json_object_new_array();
		for (i = 0; i < 6; i++)
			json_object_array_add(a, json_object_new_uint64(t->w.args[i]));
	}
	json_object_object_add(o, "syscall_args", a);
	json_object_object_add(o, "reason", blocked && t->w.reason >= 0 ?
					   json__str(reason_name(t->w.reason)) : NULL);
	if (t->w.fd >= 0 || t->w.fd_desc) {
		json_object_object_add(o, "fd", t->w.fd >= 0 ? json_object_new_int(t->w.fd) : NULL);
		json_object_object_add(o, "fd_target", json__str(t->w.fd_desc));
	}
	json_object_object_add(o, "timeout", t->timeout >= 0 ?
					    json_object_new_boolean(t->timeout) : NULL);
	json_object_object_add(o, "timeout_left_s", t->timeout_left_ns >= 0 ?
						   json__secs(t->timeout_left_ns) : NULL);
	json_object_object_add(o, "holds_gil", json_object_new_boolean(t->holds_gil));
	h = NULL;
	if (t->handler_signo) {
		h = json_object_new_object();
		json_object_object_add(h, "signal", json__str(signal_name(t->handler_signo, sig,
								      sizeof(sig))));
		json_object_object_add(h, "frame", json_object_new_int(t->handler_frame));
	}
	json_object_object_add(o, "signal_handler", h);
	json_object_object_add(o, "joins", t->waits_for ? json_object_new_int64(t->waits_for) : NULL);
	json_object_object_add(o, "joins_exact", json_object_new_boolean(t->waits_exact));
	json_object_object_add(o, "lock_owner",
			       t->lock_owner ? json_object_new_int64(t->lock_owner) : NULL);
	json_object_object_add(o, "stack", jframes(t));
	json_object_object_add(o, "stack_partial", json_object_new_boolean(t->partial));
	json_object_object_add(o, "stack_note", json__str(t->stack_note));
	json_object_object_add(o, "kernel_stack", json__strings(t->kstack, t->kdepth));
	return o;
}

/* The tracer's own JSON report, parsed back: its members go into "trace". */
static json_object *jtrace(const struct report *r)
{
	static const char *const keep[] = { "window", "threads", "stalls", "blockers", "lost" };
	json_object *all, *out, *m;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *mf;
	int err;

	mf = open_memstream(&buf, &len);
	if (!mf)
		return NULL;
	err = report__write_json(r, mf);
	if (fclose(mf) || err) {
		free(buf);
		return NULL;
	}
	all = json_tokener_parse(buf);
	free(buf);
	if (!all)
		return NULL;
	out = json_object_new_object();
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (json_object_object_get_ex(all, keep[i], &m))
			json_object_object_add(out, keep[i], json_object_get(m));
	json_object_put(all);
	return out;
}

int dump__write_json(const struct dump *d, FILE *f)
{
	json_object *root = json_object_new_object(), *o, *arr, *t;
	uint64_t partial = 0;
	size_t i;
	int j;

	json__add_header(root);
	json_object_object_add(root, "command", json__str("dump"));

	o = json_object_new_object();
	json_object_object_add(o, "pid", json_object_new_int64(d->pid));
	json_object_object_add(o, "exe", json__str(d->p->exe));
	json_object_object_add(o, "cmdline", json__str(d->cmdline));
	json_object_object_add(o, "python", json__str(d->p->version));
	json_object_object_add(o, "state", json__str(state_word(d->state)));
	json_object_object_add(o, "exited", json_object_new_boolean(0));
	json_object_object_add(root, "target", o);

	o = json_object_new_object();
	json_object_object_add(o, "start_unix_ns", json_object_new_int64(d->unix_ns));
	json_object_object_add(o, "duration_s", json__secs(0));
	json_object_object_add(o, "snapshot_s", json__secs(d->took_ns));
	json_object_object_add(root, "window", o);

	o = json_object_new_object();
	json_object_object_add(o, "finalizing", json_object_new_boolean(d->finalizing));
	json_object_object_add(o, "finalizing_flag", json_object_new_boolean(d->finalizing_flag));
	json_object_object_add(o, "shutdown_path", json__str(d->shutdown_path));
	json_object_object_add(o, "gil_holder", d->gil_holder ?
						json_object_new_int64(d->gil_holder) : NULL);
	json_object_object_add(o, "gil_known", json_object_new_boolean(d->gil_known));
	json_object_object_add(o, "memory_error", json__str(d->mem_error));
	json_object_object_add(root, "interpreter", o);

	json_object_object_add(root, "hint", d->nr_findings ? json__str(d->findings[0].message) : NULL);
	arr = json_object_new_array();
	for (i = 0; i < d->nr_findings; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "pattern", json__str(d->findings[i].pattern));
		json_object_object_add(o, "message", json__str(d->findings[i].message));
		t = json_object_new_array();
		for (j = 0; j < d->findings[i].nr_tids; j++)
			json_object_array_add(t, json_object_new_int64(d->findings[i].tids[j]));
		json_object_object_add(o, "tids", t);
		json_object_array_add(arr, o);
	}
	json_object_object_add(root, "diagnosis", arr);

	arr = json_object_new_array();
	for (i = 0; i < d->nr_threads; i++) {
		json_object_array_add(arr, jthread(&d->threads[i]));
		partial += d->threads[i].partial;
	}
	json_object_object_add(root, "threads", arr);
	json_object_object_add(root, "stalls", json_object_new_array());
	json_object_object_add(root, "blockers", json_object_new_array());

	o = json_object_new_object();
	json_object_object_add(o, "events", json_object_new_int64(0));
	json_object_object_add(o, "samples", json_object_new_int64(0));
	json_object_object_add(o, "unreadable_stacks", json_object_new_int64(partial));
	json_object_object_add(root, "lost", o);

	if (d->trace) {
		o = jtrace(d->trace);
		if (!o) {
			json_object_put(root);
			errno = ENOMEM;
			return -1;
		}
		json_object_object_add(root, "trace", o);
	}

	return json__write(root, f);
}
