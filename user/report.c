// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "syscalls.h"
#include "utf8.h"

static const char *const reason_names[HT_R_MAX] = {
	[HT_R_OTHER] = "other",
	[HT_R_LOCK] = "lock",
	[HT_R_GIL] = "gil",
	[HT_R_SLEEP] = "sleep",
	[HT_R_SOCKET] = "socket",
	[HT_R_IO] = "io",
	[HT_R_CHILD] = "child",
	[HT_R_PAGEFAULT] = "page-fault",
	[HT_R_RUNQUEUE] = "runqueue",
	[HT_R_IDLE] = "idle",
	[HT_R_CPU] = "cpu",
};

const char *reason_name(int reason)
{
	if (reason < 0 || reason >= HT_R_MAX || !reason_names[reason])
		return "other";
	return reason_names[reason];
}

const char *blocker_kind(const struct rblocker *b)
{
	if (b->on_cpu)
		return "on-cpu";
	if (b->reason == HT_R_GIL)
		return "gil";
	if (b->reason == HT_R_RUNQUEUE)
		return "runqueue";
	return "off-cpu";
}

static void stack_free(struct rstack *s)
{
	int i;

	for (i = 0; i < s->depth; i++) {
		free(s->frames[i].function);
		free(s->frames[i].file);
	}
	free(s->frames);
}

void blocker_free(struct rblocker *b)
{
	int j;

	stack_free(&b->stack);
	stack_free(&b->wk_stack);
	stack_free(&b->wk_busy_stack);
	for (j = 0; j < b->kdepth; j++)
		free(b->kstack[j]);
	free(b->kstack);
	free(b->fd_desc);
	memset(b, 0, sizeof(*b));
}

void report__free(struct report *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->nr_blockers; i++)
		blocker_free(&r->blockers[i]);
	free(r->blockers);
	for (i = 0; i < r->nr_samples; i++)
		stack_free(&r->samples[i].stack);
	free(r->samples);
	for (i = 0; i < r->nr_stalls; i++) {
		free(r->stalls[i].coro);
		free(r->stalls[i].task_name);
	}
	free(r->stalls);
	free(r->threads);
	free(r->exe);
	free(r->exec_into);
	free(r->cmdline);
	free(r->python);
	free(r->focus);
	for (i = 0; i < r->nr_children; i++)
		report__free(&r->children[i]);
	free(r->children);
	for (i = 0; i < r->nr_untraced; i++) {
		free(r->untraced[i].exe);
		free(r->untraced[i].why);
	}
	free(r->untraced);
	memset(r, 0, sizeof(*r));
}

size_t report__nr_procs(const struct report *r)
{
	return 1 + r->nr_children;
}

const struct report *report__proc(const struct report *r, size_t i)
{
	return i ? &r->children[i - 1] : r;
}

void rblocker__init(struct rblocker *b)
{
	memset(b, 0, sizeof(*b));
	b->fd = -1;
	b->syscall = -1;
}

struct rthread *report__thread(const struct report *r, uint32_t tid)
{
	size_t i;

	for (i = 0; i < r->nr_threads; i++)
		if (r->threads[i].tid == tid)
			return &r->threads[i];
	return NULL;
}

const char *report__thread_name(const struct report *r, uint32_t tid)
{
	const struct rthread *t = report__thread(r, tid);

	return t ? t->name : "";
}

static bool stack_matches(const struct rstack *s, const regex_t *re)
{
	int i;

	for (i = 0; i < s->depth; i++)
		if ((s->frames[i].function && !regexec(re, s->frames[i].function, 0, NULL, 0)) ||
		    (s->frames[i].file && !regexec(re, s->frames[i].file, 0, NULL, 0)))
			return true;
	return false;
}

int report__focus(struct report *r, const regex_t *re, const char *pattern)
{
	size_t i, n = 0;
	int *where;
	int err;

	free(r->focus);
	r->focus = strdup(pattern);
	if (!r->focus)
		return -ENOMEM;
	where = calloc(r->nr_blockers + 1, sizeof(*where));
	if (!where)
		return -ENOMEM;
	/* blockers: compact in place, keeping the ranking */
	for (i = 0; i < r->nr_blockers; i++) {
		if (!stack_matches(&r->blockers[i].stack, re)) {
			blocker_free(&r->blockers[i]);
			where[i] = -1;
			continue;
		}
		where[i] = n;
		if (n != i)
			r->blockers[n] = r->blockers[i];
		n++;
	}
	r->nr_blockers = n;
	for (i = 0; i < r->nr_stalls; i++)
		if (r->stalls[i].blocker >= 0)
			r->stalls[i].blocker = where[r->stalls[i].blocker];
	free(where);
	n = 0;
	for (i = 0; i < r->nr_samples; i++) {
		if (!stack_matches(&r->samples[i].stack, re)) {
			stack_free(&r->samples[i].stack);
			continue;
		}
		if (n != i)
			r->samples[n] = r->samples[i];
		n++;
	}
	r->nr_samples = n;
	for (i = 0; i < r->nr_children; i++) {
		err = report__focus(&r->children[i], re, pattern);
		if (err)
			return err;
	}
	return 0;
}

/* Text output.  Names come from the target and are untrusted: see utf8_put_clean(). */
void report__put_clean(FILE *f, const char *s)
{
	utf8_put_clean(f, s);
}

static double secs(uint64_t ns)
{
	return ns / 1e9;
}

void report__put_quoted(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

#define TEXT_MAX_STALLS 10	/* per thread, in time order */

/* The stalls of loop thread @tid, one line each: when, how long, which task. */
static void print_stalls(FILE *f, const struct report *r, uint32_t tid)
{
	unsigned int shown = 0, rest = 0;
	size_t i;

	for (i = 0; i < r->nr_stalls; i++) {
		const struct rstall *st = &r->stalls[i];

		if (st->tid != tid)
			continue;
		if (shown++ >= TEXT_MAX_STALLS) {
			rest++;
			continue;
		}
		fprintf(f, "    stall at +%.3f s, %.3f s", secs(st->start_ns), secs(st->dur_ns));
		if (st->task_name) {
			fputs(": task ", f);
			report__put_quoted(f, st->task_name);
			if (st->coro) {
				fputs(" running ", f);
				report__put_clean(f, st->coro);
			}
		} else if (st->coro) {
			fputs(": in ", f);
			report__put_clean(f, st->coro);
		}
		if (st->in_progress)
			fputs(" (still stalled at the end)", f);
		fputc('\n', f);
	}
	if (rest)
		fprintf(f, "    ... and %u more stall%s (--format json lists every one)\n", rest,
			rest == 1 ? "" : "s");
}

static void print_stack(FILE *f, const struct rstack *s, const char *indent)
{
	int i;

	if (!s->depth) {
		fprintf(f, "%s(no Python frames)\n", indent);
		return;
	}
	for (i = 0; i < s->depth; i++) {
		fprintf(f, "%s", indent);
		report__put_clean(f, s->frames[i].function);
		fputs("  (", f);
		report__put_clean(f, s->frames[i].file);
		if (s->frames[i].line >= 0)
			fprintf(f, ":%d", s->frames[i].line);
		fputs(")\n", f);
	}
	if (s->truncated)
		fprintf(f, "%s<truncated>\n", indent);
	else if (s->partial)
		fprintf(f, "%s<unreadable frame: stack may be incomplete>\n", indent);
}

static void print_blocker(FILE *f, const struct rblocker *b)
{
	const char *sc = syscall_name(b->syscall);
	int i;

	if (b->on_cpu) {
		fprintf(f, "  %8.3f s  on-CPU  %u sample%s", secs(b->total_ns), b->count,
			b->count == 1 ? "" : "s");
		if (b->stall_ns)
			fprintf(f, ", %.3f s inside %u stall%s", secs(b->stall_ns), b->stall_count,
				b->stall_count == 1 ? "" : "s");
		fputc('\n', f);
		print_stack(f, &b->stack, "        ");
		if (b->hint)
			fprintf(f, "      hint: %s\n", b->hint);
		return;
	}
	fprintf(f, "  %8.3f s  %s", secs(b->total_ns), reason_name(b->reason));
	if (sc)
		fprintf(f, " (%s)", sc);
	if (b->fd_desc) {
		fputs(b->fd >= 0 ? "  fd " : "  ", f);
		if (b->fd >= 0)
			fprintf(f, "%d -> ", b->fd);
		report__put_clean(f, b->fd_desc);
	}
	fprintf(f, "  %u block%s, max %.3f s", b->count, b->count == 1 ? "" : "s",
		secs(b->max_ns));
	if (b->still_blocked)
		fputs(", STILL BLOCKED at the end", f);
	if (b->stall_ns)
		fprintf(f, ", %.3f s inside %u stall%s", secs(b->stall_ns), b->stall_count,
			b->stall_count == 1 ? "" : "s");
	fputc('\n', f);
	print_stack(f, &b->stack, "        ");
	if (b->kdepth) {
		fputs("        kernel: ", f);
		for (i = 0; i < b->kdepth && i < 4; i++)
			fprintf(f, "%s%s", i ? " < " : "", b->kstack[i]);
		fputc('\n', f);
	}
	if (b->wk_timer) {
		fputs("      woken by: its timeout (no thread woke it)\n", f);
	} else if (b->wk_gil_holder) {
		fprintf(f, "      GIL held by: thread %u", b->wk_tid);
		if (b->wk_pid != b->pid)
			fprintf(f, " of process %u", b->wk_pid);
		fputc('\n', f);
		if (b->wk_stack.depth)
			print_stack(f, &b->wk_stack, "          ");
	} else if (b->wk_tid) {
		fprintf(f, "      woken by: thread %u", b->wk_tid);
		if (b->wk_name[0]) {
			fputs(" \"", f);
			report__put_clean(f, b->wk_name);
			fputc('"', f);
		}
		if (b->wk_pid != b->pid)
			fprintf(f, " of process %u", b->wk_pid);
		fputc('\n', f);
		if (b->wk_stack.depth)
			print_stack(f, &b->wk_stack, "          ");
		else
			fputs("          (no Python frames when it woke us: a thread exiting, or native code)\n", f);
	}
	if (b->wk_busy_ns) {
		const char *bsc = syscall_name(b->wk_busy_syscall);

		fprintf(f, "      while we waited, the waker was itself blocked %.3f s in %s%s%s%s:\n",
			secs(b->wk_busy_ns), reason_name(b->wk_busy_reason), bsc ? " (" : "",
			bsc ? bsc : "", bsc ? ")" : "");
		print_stack(f, &b->wk_busy_stack, "          ");
	}
	if (b->hint)
		fprintf(f, "      hint: %s\n", b->hint);
}

#define TEXT_MAX_BLOCKERS 5	/* per thread, besides those that took stall time */

/* A thread's blockers that took no stall time: the largest few, then a summary line. */
static void print_others(FILE *f, const struct report *r, uint32_t tid)
{
	uint64_t rest_ns = 0;
	unsigned int shown = 0, rest = 0;
	size_t j;

	for (j = 0; j < r->nr_blockers; j++) {
		const struct rblocker *b = &r->blockers[j];

		if (b->tid != tid || b->stall_ns)
			continue;
		if (shown < TEXT_MAX_BLOCKERS) {
			print_blocker(f, b);
			shown++;
		} else {
			rest++;
			rest_ns += b->total_ns;
		}
	}
	if (rest)
		fprintf(f, "  ... and %u smaller blocker%s, %.3f s in all (--format json lists every one)\n",
			rest, rest == 1 ? "" : "s", secs(rest_ns));
}

/* One process's section: header line, summary, then thread by thread. */
static void write_text_process(const struct report *r, FILE *f)
{
	uint64_t lost = r->stats.ringbuf_full + r->stats.agg_full + r->stats.stacks_full +
			r->stats.threads_full + r->stats.procs_full;
	size_t i, j;
	int r_i, shown;

	if (r->ppid)
		fprintf(f, "hangtrace: child process %u of %u", r->pid, r->ppid);
	else
		fprintf(f, "hangtrace: process %u", r->pid);
	if (r->cmdline) {
		fputs(" (", f);
		report__put_clean(f, r->cmdline);
		fputc(')', f);
	}
	fputs("\n  exe ", f);
	report__put_clean(f, r->exe ? r->exe : "?");
	fprintf(f, ", Python %s, %zu thread%s, traced %.2f s, blocks >= %.3g ms recorded\n",
		r->python ? r->python : "?", r->nr_threads,
		r->nr_threads == 1 ? "" : "s", secs(r->duration_ns), r->min_block_ns / 1e6);
	if (r->target_exited)
		fputs("  the process exited during tracing: this is what was collected until then\n", f);
	if (r->exec_into) {
		fputs("  the process exec'd ", f);
		report__put_clean(f, r->exec_into);
		fputs(" during tracing: this is what was collected until then\n", f);
	}
	if (r->focus) {
		fputs("  --focus ", f);
		report__put_clean(f, r->focus);
		fputs(": only stacks with a matching function or file are shown\n", f);
	}
	if (lost)
		fprintf(f, "  WARNING: data was lost: %llu events, %llu aggregates, %llu stacks, %llu threads, "
			   "%llu processes did not fit\n",
			(unsigned long long)r->stats.ringbuf_full, (unsigned long long)r->stats.agg_full,
			(unsigned long long)r->stats.stacks_full,
			(unsigned long long)r->stats.threads_full,
			(unsigned long long)r->stats.procs_full);
	else
		fputs("  lost: nothing\n", f);
	if (r->stats.py_read_fail || r->unreadable_code)
		fprintf(f, "  note: %llu Python stacks were partly unreadable, %llu code objects unreadable\n",
			(unsigned long long)r->stats.py_read_fail,
			(unsigned long long)r->unreadable_code);

	for (i = 0; i < r->nr_threads; i++) {
		const struct rthread *t = &r->threads[i];

		fprintf(f, "\nThread %u \"", t->tid);
		report__put_clean(f, t->name);
		fprintf(f, "\"%s%s: on-CPU %.3f s, off-CPU %.3f s", t->tid == r->pid ? " (main)" : "",
			t->exited ? " (exited)" : "", secs(t->on_ns), secs(t->off_ns));
		shown = 0;
		for (r_i = 0; r_i < HT_R_MAX; r_i++) {
			if (t->reason_ns[r_i] < 500000)
				continue;
			fprintf(f, "%s%s %.3f s", shown++ ? ", " : " = ", reason_name(r_i),
				secs(t->reason_ns[r_i]));
		}
		if (!t->python)
			fputs("  [no Python thread state]", f);
		fputc('\n', f);
		if (t->event_loop) {
			fprintf(f, "  Event loop: %u stall%s >= %.0f ms", t->stalls,
				t->stalls == 1 ? "" : "s", r->stall_threshold_ns / 1e6);
			if (t->stalls)
				fprintf(f, ", longest %.3f s, %.3f s in all = %.0f%% of %.2f s",
					secs(t->longest_stall_ns), secs(t->stall_ns),
					r->duration_ns ? 100.0 * t->stall_ns / r->duration_ns : 0,
					secs(r->duration_ns));
			fprintf(f, "; idle (waiting for events) %.3f s\n", secs(t->idle_ns));
			print_stalls(f, r, t->tid);
			/* what the stalls were spent on first */
			for (j = 0; j < r->nr_blockers; j++)
				if (r->blockers[j].tid == t->tid && r->blockers[j].stall_ns)
					print_blocker(f, &r->blockers[j]);
		}
		print_others(f, r, t->tid);
	}
}

int report__write_text(const struct report *r, FILE *f)
{
	size_t i;

	write_text_process(r, f);
	for (i = 0; i < r->nr_children; i++) {
		fputs("\n\n", f);
		write_text_process(&r->children[i], f);
	}
	if (r->nr_untraced || r->untraced_dropped)
		fputs("\nDescendants not traced:\n", f);
	for (i = 0; i < r->nr_untraced; i++) {
		const struct runtraced *u = &r->untraced[i];

		fprintf(f, "  process %u (parent %u, ", u->pid, u->ppid);
		report__put_clean(f, u->exe ? u->exe : "?");
		fputs("): ", f);
		report__put_clean(f, u->why);
		fputc('\n', f);
	}
	if (r->untraced_dropped)
		fprintf(f, "  ... and %zu more\n", r->untraced_dropped);
	return ferror(f) ? -1 : 0;
}

/*
 * Folded stacks: "process;thread;outermost;...;innermost;[reason] MICROSECONDS".
 * Frames are "function (file:line)"; ';', control characters, bidi
 * overrides and bytes of invalid UTF-8 in names become '_' so that every line
 * splits the same way and is valid UTF-8.
 */
static void put_folded(FILE *f, const char *s)
{
	size_t n;

	while (s && *s) {
		n = utf8_safe_len(s);
		if (!n || *s == ';') {
			fputc('_', f);
			s++;
			continue;
		}
		fwrite(s, 1, n, f);
		s += n;
	}
}

/* One folded line: process;thread-tid;outermost;...;innermost;[leaf] value */
static void folded_line(FILE *f, const struct report *r, uint32_t pid, uint32_t tid,
			const struct rstack *st, const char *leaf, unsigned long long value)
{
	int j;

	fprintf(f, "python-%u;", pid);
	put_folded(f, report__thread_name(r, tid));
	fprintf(f, "-%u", tid);
	if (st->truncated)
		fputs(";<truncated>", f);
	for (j = st->depth - 1; j >= 0; j--) {
		fputc(';', f);
		put_folded(f, st->frames[j].function);
		fputs(" (", f);
		put_folded(f, st->frames[j].file);
		fprintf(f, ":%d)", st->frames[j].line);
	}
	fprintf(f, ";[%s] %llu\n", leaf, value);
}

/*
 * Folded stacks (flamegraph.pl, speedscope, inferno): off-CPU blockers in
 * microseconds with the reason as the leaf, on-CPU samples in microseconds
 * (count x period) with [on-cpu] as the leaf, as --what asks.  On-CPU
 * blockers of loop threads are not off-CPU time: the samples hold them.
 */
static void write_folded_process(const struct report *r, FILE *f)
{
	size_t i;

	for (i = 0; r->what != WHAT_ONCPU && i < r->nr_blockers; i++) {
		const struct rblocker *b = &r->blockers[i];

		if (b->on_cpu)
			continue;
		folded_line(f, r, b->pid, b->tid, &b->stack, reason_name(b->reason),
			    (b->total_ns + 500) / 1000);
	}
	for (i = 0; r->what != WHAT_OFFCPU && i < r->nr_samples; i++) {
		const struct rsample *s = &r->samples[i];

		folded_line(f, r, s->pid, s->tid, &s->stack, "on-cpu", (s->ns + 500) / 1000);
	}
}

/* Every process's lines (--children): they start with python-PID. */
int report__write_folded(const struct report *r, FILE *f)
{
	size_t i;

	write_folded_process(r, f);
	for (i = 0; i < r->nr_children; i++) {
		struct report child = r->children[i];

		child.what = r->what;
		write_folded_process(&child, f);
	}
	return ferror(f) ? -1 : 0;
}
