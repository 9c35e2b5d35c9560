// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The diagnosis of `hangtrace dump`: known hang patterns, kept as data (an
 * id, a message template, a matcher that fills the template's fields), tried
 * in order; the first that matches is the one-line diagnosis.  Each pattern
 * has an integration test (tests/integration/test_dump.py).
 *
 * Facts derived first, for the patterns to use:
 *   - the shutdown path: the main thread in threading._shutdown or an exit
 *     handler, with nothing but other shutdown frames below it (the main
 *     module has returned);
 *   - signal handlers on a stack: frames whose code object is that of a
 *     handler installed with signal.signal() (user/pysignal.c);
 *   - which thread a join waits for.  The lock a joiner sleeps on is the
 *     joined thread's own: up to 3.12 the futex is the semaphore of the
 *     thread's "tstate lock", which its PyThreadState references through a
 *     weak reference to the lock object; from 3.13 the joiner sleeps in the
 *     parking lot, whose wait entry (on the joiner's stack, 8 bytes before
 *     the futex) holds the address it waits on: inside the joined thread's
 *     handle, next to its pthread id.  When neither lookup finds it, a sole
 *     candidate still names it ("by elimination").
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dump.h"
#include "hangtrace.h"
#include "procmem.h"
#include "procthread.h"
#include "pyproc.h"
#include "pysignal.h"
#include "reason.h"
#include "report.h"
#include "syscalls.h"

#define MIN_STUCK_NS	1000000000ULL	/* a wait shorter than this is not called a hang */
#define MAX_LISTED	3		/* threads named in one finding */
#define MSG_MAX		2048

/* --- facts about frames and threads ------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* @fr is @func (a plain name; qualnames "Class.func" match too) defined in a file ending in @file. */
static bool frame_is(const struct dump_frame *fr, const char *func, const char *file)
{
	const char *f = fr->function, *dot = strrchr(f, '.');

	return (!strcmp(f, func) || (dot && !strcmp(dot + 1, func))) && ends_with(fr->file, file);
}

/* The standard library, as opposed to the program and its packages. */
static bool is_stdlib(const char *file)
{
	if (!strncmp(file, "<frozen ", 8))
		return true;
	return strstr(file, "/lib/python3") && !strstr(file, "-packages/");
}

static bool stuck(const struct dump_thread *t)
{
	return t->state && t->state != 'R' && (!t->blocked_known || t->blocked_ns >= MIN_STUCK_NS);
}

static struct dump_thread *thread_of(struct dump *d, uint32_t tid)
{
	size_t i;

	for (i = 0; i < d->nr_threads; i++)
		if (d->threads[i].tid == tid)
			return &d->threads[i];
	return NULL;
}

static struct dump_thread *main_thread(struct dump *d)
{
	return d->nr_threads && d->threads[0].main ? &d->threads[0] : NULL;
}

/* Index of the innermost frame of the program (not the standard library), -1 if none. */
static int user_frame(const struct dump_thread *t)
{
	int i;

	for (i = 0; i < t->depth; i++)
		if (!is_stdlib(t->frames[i].file))
			return i;
	return -1;
}

static void put_frame(char *out, size_t sz, const struct dump_frame *fr)
{
	if (fr->line >= 0)
		snprintf(out, sz, "%s (%s:%d)", fr->function, fr->file, fr->line);
	else
		snprintf(out, sz, "%s (%s)", fr->function, fr->file);
}

/* Where in its code the thread is: "fetch (x.py:4)" or "Event.wait called from f (x.py:9)". */
static void describe_at(const struct dump_thread *t, char *out, size_t sz)
{
	char fr[512];
	int u = user_frame(t);

	out[0] = 0;
	if (!t->depth)
		return;
	if (u < 0) {
		put_frame(out, sz, &t->frames[0]);
		return;
	}
	put_frame(fr, sizeof(fr), &t->frames[u]);
	if (u > 0)
		snprintf(out, sz, "in %s called from %s", t->frames[u - 1].function, fr);
	else
		snprintf(out, sz, "at %s", fr);
}

/* What the thread runs: its outermost frame of the program, else of anything but threading. */
static const char *entry_function(const struct dump_thread *t)
{
	int i;

	for (i = t->depth - 1; i >= 0; i--)
		if (!is_stdlib(t->frames[i].file))
			return t->frames[i].function;
	for (i = t->depth - 1; i >= 0; i--)
		if (!ends_with(t->frames[i].file, "/threading.py"))
			return t->frames[i].function;
	return NULL;
}

static void describe_thread(const struct dump_thread *t, char *out, size_t sz)
{
	const char *entry = t->main ? NULL : entry_function(t);

	snprintf(out, sz, "thread %u \"%s\"%s%s%s", t->tid, t->name, t->main ? " (main)" : "",
		 entry ? " (runs " : "", entry ? entry : "");
	if (entry && strlen(out) + 2 < sz)
		strcat(out, ")");
}

static void fmt_secs(char *out, size_t sz, uint64_t ns)
{
	snprintf(out, sz, ns >= 10000000000ULL ? "%.0f s" : "%.1f s", ns / 1e9);
}

void dump__describe_wait(const struct dump_thread *t, char *out, size_t sz)
{
	const char *sc = syscall_name(t->w.syscall), *state;
	char dur[32] = "", fd[320] = "", tmo[48] = "";

	if (t->state == 'R') {
		snprintf(out, sz, "running");
		return;
	}
	state = t->state == 'T' ? "stopped" : t->state == 't' ? "stopped by a debugger" :
		t->state == 'Z' || t->state == 'X' ? "exited (zombie)" : !t->state ? "gone" : NULL;
	if (state) {
		snprintf(out, sz, "%s", state);
		return;
	}
	if (t->blocked_known) {
		dur[0] = ' ';
		fmt_secs(dur + 1, sizeof(dur) - 1, t->blocked_ns);
	}
	if (t->w.fd >= 0)
		snprintf(fd, sizeof(fd), " on fd %d%s%s", t->w.fd, t->w.fd_desc ? " -> " : "",
			 t->w.fd_desc ? t->w.fd_desc : "");
	if (t->timeout == 0) {
		snprintf(tmo, sizeof(tmo), ", no timeout");
	} else if (t->timeout == 1 && t->timeout_left_ns >= 0) {
		strcpy(tmo, ", ");
		fmt_secs(tmo + 2, sizeof(tmo) - 20, t->timeout_left_ns);
		strcat(tmo, " left");
	} else if (t->timeout == 1) {
		snprintf(tmo, sizeof(tmo), ", with a timeout");
	}
	if (t->w.syscall < 0)
		snprintf(out, sz, "blocked%s outside any system call (%s)", dur,
			 reason_name(t->w.reason));
	else
		snprintf(out, sz, "blocked%s in %s%s (%s%s)", dur, sc ? sc : "a system call", fd,
			 reason_name(t->w.reason), tmo);
}

/* --- derived facts ------------------------------------------------------ */

static const struct {
	const char *func, *file, *what;
} shutdown_frames[] = {
	{ "_python_exit", "/concurrent/futures/thread.py", "concurrent.futures' exit handler _python_exit" },
	{ "_python_exit", "/concurrent/futures/process.py", "concurrent.futures' exit handler _python_exit" },
	{ "_exit_function", "/multiprocessing/util.py", "multiprocessing's exit handler _exit_function" },
	{ "_shutdown", "/threading.py", "threading._shutdown (waiting for the non-daemon threads)" },
};

static const char *shutdown_what(const struct dump_frame *fr)
{
	size_t i;

	for (i = 0; i < sizeof(shutdown_frames) / sizeof(shutdown_frames[0]); i++)
		if (frame_is(fr, shutdown_frames[i].func, shutdown_frames[i].file))
			return shutdown_frames[i].what;
	return NULL;
}

/*
 * The main thread is in the shutdown path when its outermost frame is a
 * shutdown frame (the main module has returned; exit handlers are called
 * from C).  The innermost shutdown frame names it: _python_exit called by
 * threading._shutdown is concurrent.futures' handler.
 */
static void find_shutdown(struct dump *d)
{
	struct dump_thread *m = main_thread(d);
	int i;

	d->shutdown_frame = -1;
	if (!m || !m->depth || m->truncated || !shutdown_what(&m->frames[m->depth - 1]))
		return;
	for (i = 0; i < m->depth && !shutdown_what(&m->frames[i]); i++)
		;
	d->shutdown_frame = i;
	d->shutdown_path = shutdown_what(&m->frames[i]);
	d->finalizing = true;
}

static void find_signal_handlers(struct dump *d, struct procmem *mem)
{
	struct pysignal_handler h[PYSIGNAL_MAX];
	int n = 0, i, j, k;
	size_t ti;

	if (!mem || d->mem_error || pysignal__handlers(d->p, mem, h, &n))
		return;
	for (ti = 0; ti < d->nr_threads; ti++) {
		struct dump_thread *t = &d->threads[ti];

		/* the innermost handler frame */
		for (i = 0; i < t->depth && !t->handler_signo; i++)
			for (j = 0; j < n; j++)
				for (k = 0; k < 2; k++)
					if (h[j].code[k] && h[j].code[k] == t->frames[i].code) {
						t->handler_signo = h[j].signo;
						t->handler_frame = i;
					}
	}
}

/* Is @t waiting for another thread to finish: Thread.join, or threading._shutdown's own wait? */
static bool joining(const struct dump_thread *t)
{
	int i;

	if (t->w.syscall != HT_NR_futex || t->w.reason != HT_R_LOCK)
		return false;
	for (i = 0; i < t->depth && is_stdlib(t->frames[i].file); i++)
		if (frame_is(&t->frames[i], "join", "/threading.py") ||
		    frame_is(&t->frames[i], "_shutdown", "/threading.py"))
			return true;
	return false;
}

/* Index of the join frame (Thread.join or _shutdown) on @t's stack. */
static int join_frame(const struct dump_thread *t)
{
	int i;

	for (i = 0; i < t->depth; i++)
		if (frame_is(&t->frames[i], "join", "/threading.py") ||
		    frame_is(&t->frames[i], "_shutdown", "/threading.py"))
			return i;
	return -1;
}

static bool user_ptr(uint64_t v)
{
	return v && v < (1ULL << 47);
}

/*
 * Up to 3.12: is the semaphore at @sem that of the thread state @ts's "tstate
 * lock"?  The tstate holds (on_delete_data) a weak reference to the lock
 * object (its referent at +16), whose PyThread_type_lock is at +16.  The
 * field's offset differs per version (184 on 3.6, 208 on 3.7-3.10, 192 on
 * 3.11, 176 on 3.12), hence the scan of the tstate's first 512 bytes.
 */
static bool tstate_holds_sem(struct procmem *m, uint64_t ts, uint64_t sem)
{
	uint64_t w[64], obj, lock;
	size_t i;

	if (procmem__read(m, ts, w, sizeof(w)))
		return false;
	for (i = 0; i < 64; i++) {
		if (!user_ptr(w[i]) || (w[i] & 7) ||
		    procmem__read_u64(m, w[i] + 16, &obj) || !user_ptr(obj) || (obj & 7))
			continue;
		if (!procmem__read_u64(m, obj + 16, &lock) && lock == sem)
			return true;
	}
	return false;
}

/* 3.13+: the pthread id next to the address the parking-lot waiter at @sem waits on. */
static struct dump_thread *parked_on_handle(struct dump *d, struct procmem *m,
					    const struct dump_thread *t, uint64_t sem)
{
	uint64_t addr, w[10];
	size_t i, j;

	if (procmem__read_u64(m, sem - 8, &addr) || !user_ptr(addr))
		return NULL;
	if (procmem__read(m, (addr & ~7ULL) - 64, w, sizeof(w)))
		return NULL;
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		for (j = 0; j < d->nr_threads; j++)
			if (&d->threads[j] != t && d->threads[j].fsbase && w[i] == d->threads[j].fsbase)
				return &d->threads[j];
	return NULL;
}

static void resolve_joins(struct dump *d, struct procmem *mem)
{
	struct dump_thread *t, *u, *only;
	size_t i, j, cand;

	for (i = 0; i < d->nr_threads; i++) {
		t = &d->threads[i];
		if (!joining(t))
			continue;
		only = NULL;
		cand = 0;
		for (j = 0; j < d->nr_threads; j++) {
			u = &d->threads[j];
			if (u == t || u->main || !u->python || !u->state || u->state == 'Z')
				continue;
			cand++;
			only = u;
			if (mem && d->p->minor <= 12 && u->tstate &&
			    tstate_holds_sem(mem, u->tstate, t->w.args[0])) {
				t->waits_for = u->tid;
				t->waits_exact = true;
			}
		}
		if (!t->waits_for && mem && d->p->minor >= 13) {
			u = parked_on_handle(d, mem, t, t->w.args[0]);
			if (u) {
				t->waits_for = u->tid;
				t->waits_exact = true;
			}
		}
		if (!t->waits_for && cand == 1)
			t->waits_for = only->tid;
	}
}

/* Is the object at @obj of the C type named @name (tp_name)? */
static bool obj_type_is(struct procmem *m, uint64_t obj, const char *name)
{
	char buf[32];
	uint64_t type, tp_name;
	size_t n = strlen(name) + 1;

	if (n > sizeof(buf) || procmem__read_u64(m, obj + 8, &type) || !user_ptr(type) ||
	    procmem__read_u64(m, type + 24, &tp_name) || !user_ptr(tp_name) ||
	    procmem__read(m, tp_name, buf, n))
		return false;
	return !memcmp(buf, name, n);
}

/*
 * The addresses of the lock @t may wait on in a futex: the semaphore itself
 * (every lock up to 3.12, RLock's on 3.13), and from 3.13, for parking-lot
 * waits, the address next to the waiter's own semaphore.  0 when unknown.
 */
static void waited_lock(struct procmem *m, const struct dump_thread *t, uint64_t lock[2])
{
	uint64_t addr;

	lock[0] = lock[1] = 0;
	if (t->w.syscall != HT_NR_futex || t->w.reason != HT_R_LOCK || !user_ptr(t->w.args[0]))
		return;
	lock[0] = t->w.args[0];
	if (!procmem__read_u64(m, t->w.args[0] - 8, &addr) && user_ptr(addr))
		lock[1] = addr;
}

#define RLOCK_STACK_SCAN (64 * 1024)

/*
 * The _thread.RLock object whose lock is one of @lock.  From 3.14 the mutex
 * is inside the object (at +16).  Before, the object only points to it (at
 * +16), so look for the object among the words of the waiting thread's own
 * C stack, from its stack pointer up: RLock.acquire's frame holds it.  A
 * candidate counts only if its type is RLock and its lock is @lock.
 */
static uint64_t find_rlock(struct dump *d, struct procmem *m, const struct dump_thread *t,
			   const uint64_t lock[2])
{
	uint64_t *buf, obj = 0, w, base = t->w.sp & ~7ULL;
	size_t n = 0, i, len;

	if (d->p->minor >= 14)
		return lock[1] && obj_type_is(m, lock[1] - 16, "_thread.RLock") ? lock[1] - 16 : 0;
	if (!t->w.sp || !(buf = malloc(RLOCK_STACK_SCAN)))
		return 0;
	/* page by page: the stack's mapping ends somewhere above */
	while (n < RLOCK_STACK_SCAN) {
		len = 4096 - ((base + n) & 4095);
		if (len > RLOCK_STACK_SCAN - n)
			len = RLOCK_STACK_SCAN - n;
		if (procmem__read(m, base + n, (char *)buf + n, len))
			break;
		n += len;
	}
	for (i = 0; i < n / 8 && !obj; i++) {
		if (!user_ptr(buf[i]) || (buf[i] & 7) || procmem__read_u64(m, buf[i] + 16, &w) ||
		    !w || (w != lock[0] && w != lock[1]))
			continue;
		if (obj_type_is(m, buf[i], "_thread.RLock"))
			obj = buf[i];
	}
	free(buf);
	return obj;
}

/*
 * Threads blocked acquiring an RLock: its owner (the pthread id it stores at
 * +24, on every version) is a thread of ours, identified by its fsbase.
 */
static void resolve_rlocks(struct dump *d, struct procmem *mem)
{
	struct dump_thread *t;
	uint64_t lock[2], obj, owner;
	size_t i, j;

	for (i = 0; mem && i < d->nr_threads; i++) {
		t = &d->threads[i];
		if (t->waits_exact)
			continue;
		waited_lock(mem, t, lock);
		if (!lock[0] || !(obj = find_rlock(d, mem, t, lock)) ||
		    procmem__read_u64(mem, obj + 24, &owner) || !owner)
			continue;
		for (j = 0; j < d->nr_threads; j++)
			if (&d->threads[j] != t && d->threads[j].fsbase == owner)
				t->lock_owner = d->threads[j].tid;
	}
}

/* The thread @t waits for, known for certain (a join by its lock, an RLock's owner). */
static uint32_t waits_exactly_for(const struct dump_thread *t)
{
	return t->waits_exact ? t->waits_for : t->lock_owner;
}

/* --- patterns ----------------------------------------------------------- */

#define MAX_VARS 8

struct vars {
	const char *name[MAX_VARS];
	char value[MAX_VARS][MSG_MAX];
	int n;
};

static char *var(struct vars *v, const char *name)
{
	if (v->n == MAX_VARS)		/* a pattern with too many fields: reuse the last */
		v->n--;
	v->name[v->n] = name;
	v->value[v->n][0] = 0;
	return v->value[v->n++];
}

#define VAR_SZ MSG_MAX

/* Expand "{name}" in @tmpl from @v. */
static char *expand(const char *tmpl, const struct vars *v)
{
	char out[4 * MSG_MAX];
	size_t n = 0, len;
	const char *p, *end;
	int i;

	for (p = tmpl; *p && n < sizeof(out) - 1;) {
		end = *p == '{' ? strchr(p, '}') : NULL;
		for (i = 0; end && i < v->n; i++)
			if (strlen(v->name[i]) == (size_t)(end - p - 1) &&
			    !strncmp(p + 1, v->name[i], end - p - 1))
				break;
		if (!end || i == v->n) {
			out[n++] = *p++;
			continue;
		}
		len = strlen(v->value[i]);
		if (len > sizeof(out) - 1 - n)
			len = sizeof(out) - 1 - n;
		memcpy(out + n, v->value[i], len);
		n += len;
		p = end + 1;
	}
	out[n] = 0;
	return strdup(out);
}

static void add_tid(struct dump_finding *f, uint32_t tid)
{
	int i;

	for (i = 0; i < f->nr_tids; i++)
		if (f->tids[i] == tid)
			return;
	if (f->nr_tids < (int)(sizeof(f->tids) / sizeof(f->tids[0])))
		f->tids[f->nr_tids++] = tid;
}

/* "thread 12 "x" (runs f), blocked 3.0 s in recvfrom ... at f (x.py:3)" */
static void describe_thread_wait(const struct dump_thread *t, char *out, size_t sz)
{
	char who[256], wait[512], at[600];

	describe_thread(t, who, sizeof(who));
	dump__describe_wait(t, wait, sizeof(wait));
	describe_at(t, at, sizeof(at));
	snprintf(out, sz, "%s, %s%s%s", who, wait, at[0] ? " " : "", at);
}

static int match_stopped(struct dump *d, struct vars *v, struct dump_finding *f)
{
	(void)f;
	if (d->state != 'T' && d->state != 't')
		return 0;
	snprintf(var(v, "pid"), VAR_SZ, "%d", d->pid);
	snprintf(var(v, "how"), VAR_SZ, "%s", d->state == 'T' ? "by SIGSTOP or job control" :
						 "by a debugger (ptrace)");
	return 1;
}

static int match_signal_handler(struct dump *d, struct vars *v, struct dump_finding *f)
{
	char sig[32], fr[512];
	size_t i;

	for (i = 0; i < d->nr_threads; i++) {
		struct dump_thread *t = &d->threads[i];
		const char *abbrev;

		if (!t->handler_signo || t->w.reason != HT_R_LOCK || !stuck(t))
			continue;
		abbrev = sigabbrev_np(t->handler_signo);
		snprintf(sig, sizeof(sig), "SIG%s", abbrev ? abbrev : "?");
		snprintf(var(v, "signal"), VAR_SZ, "%s", abbrev ? sig : "signal");
		put_frame(var(v, "handler"), VAR_SZ, &t->frames[t->handler_frame]);
		describe_thread(t, var(v, "thread"), VAR_SZ);
		dump__describe_wait(t, var(v, "wait"), VAR_SZ);
		if (t->handler_frame + 1 < t->depth) {
			put_frame(fr, sizeof(fr), &t->frames[t->handler_frame + 1]);
			snprintf(var(v, "interrupted"), VAR_SZ, "%s", fr);
		} else {
			snprintf(var(v, "interrupted"), VAR_SZ, "the code it interrupted");
		}
		add_tid(f, t->tid);
		return 1;
	}
	return 0;
}

/*
 * A cycle of exactly known waits: threads joining each other (@locks
 * false), or at least one of them waiting for an RLock another holds.
 */
static int find_cycle(struct dump *d, struct vars *v, struct dump_finding *f, bool locks)
{
	struct dump_thread *t, *u;
	char who[256], at[600], *out;
	size_t i, steps, len;
	bool cycle, any_lock;
	int k;

	for (i = 0; i < d->nr_threads; i++) {
		t = &d->threads[i];
		/* follow the exactly known waits from t: back to t is a cycle */
		cycle = false;
		for (u = t, steps = 0; u && waits_exactly_for(u) && steps <= d->nr_threads; steps++) {
			u = thread_of(d, waits_exactly_for(u));
			if (u == t) {
				cycle = true;
				break;
			}
		}
		if (!cycle)
			continue;
		/* report each cycle once, from its smallest tid */
		for (u = thread_of(d, waits_exactly_for(t)); u != t && u->tid > t->tid;)
			u = thread_of(d, waits_exactly_for(u));
		if (u != t)
			continue;
		any_lock = false;
		u = t;
		do {
			any_lock |= !u->waits_exact;
			u = thread_of(d, waits_exactly_for(u));
		} while (u && u != t);
		if (any_lock != locks)
			continue;
		out = var(v, "cycle");
		u = t;
		do {
			describe_thread(u, who, sizeof(who));
			at[0] = 0;
			if (u->waits_exact) {
				k = join_frame(u);
				if (k >= 0 && k + 1 < u->depth)
					put_frame(at, sizeof(at), &u->frames[k + 1]);
			} else {
				k = user_frame(u);
				if (k >= 0)
					put_frame(at, sizeof(at), &u->frames[k]);
			}
			len = strlen(out);
			snprintf(out + len, VAR_SZ - len, "%s%s %s thread %u%s%s", u == t ? "" : "; ",
				 who, u->waits_exact ? "joins" : "waits for an RLock held by",
				 waits_exactly_for(u), at[0] ? " in " : "", at);
			add_tid(f, u->tid);
			u = thread_of(d, waits_exactly_for(u));
		} while (u && u != t);
		return 1;
	}
	return 0;
}

static int match_join_cycle(struct dump *d, struct vars *v, struct dump_finding *f)
{
	return find_cycle(d, v, f, false);
}

static int match_lock_cycle(struct dump *d, struct vars *v, struct dump_finding *f)
{
	return find_cycle(d, v, f, true);
}

static int list_joined(struct dump *d, const struct dump_thread *m, char *out, size_t sz)
{
	const struct dump_thread *u;
	char one[1500];
	size_t i, n = 0, len;

	out[0] = 0;
	if (m->waits_for) {
		u = thread_of(d, m->waits_for);
		describe_thread_wait(u, out, sz);
		return 1;
	}
	/* not identified: every other Python thread still alive may be the one */
	for (i = 0; i < d->nr_threads; i++) {
		u = &d->threads[i];
		if (u == m || u->main || !u->python || !u->state || u->state == 'Z')
			continue;
		if (++n > MAX_LISTED)
			continue;
		describe_thread_wait(u, one, sizeof(one));
		len = strlen(out);
		snprintf(out + len, sz - len, "%s%s", n > 1 ? "; " : "", one);
	}
	if (n > MAX_LISTED) {
		len = strlen(out);
		snprintf(out + len, sz - len, "; and %zu more", n - MAX_LISTED);
	}
	return (int)n;
}

static int match_finalization(struct dump *d, struct vars *v, struct dump_finding *f)
{
	struct dump_thread *m = main_thread(d);
	char *joined;
	size_t i;
	int n, k;

	if (!m || !d->finalizing || !stuck(m))
		return 0;
	describe_thread(m, var(v, "main"), VAR_SZ);
	snprintf(var(v, "where"), VAR_SZ, "%s", d->shutdown_path ? d->shutdown_path :
					       "the interpreter's shutdown");
	add_tid(f, m->tid);
	if (!joining(m)) {
		char wait[512], at[600];

		dump__describe_wait(m, wait, sizeof(wait));
		describe_at(m, at, sizeof(at));
		snprintf(var(v, "what"), VAR_SZ, "%s%s%s", wait, at[0] ? " " : "", at);
		return 1;
	}
	k = join_frame(m);
	joined = var(v, "what");
	if (k >= 0 && k != d->shutdown_frame)
		snprintf(joined, VAR_SZ, "waiting in %s for ", m->frames[k].function);
	else
		snprintf(joined, VAR_SZ, "waiting for ");
	n = list_joined(d, m, joined + strlen(joined), VAR_SZ - strlen(joined));
	if (!n)
		snprintf(joined, VAR_SZ, "waiting for a thread that is no longer there");
	if (m->waits_for)
		add_tid(f, m->waits_for);
	for (i = 0; !m->waits_for && i < d->nr_threads; i++)
		if (!d->threads[i].main && d->threads[i].python)
			add_tid(f, d->threads[i].tid);
	return 1;
}

static int match_join(struct dump *d, struct vars *v, struct dump_finding *f)
{
	char fr[512];
	size_t i;
	int k;

	for (i = 0; i < d->nr_threads; i++) {
		struct dump_thread *t = &d->threads[i], *u;

		if (!joining(t) || !t->waits_for || !stuck(t))
			continue;
		u = thread_of(d, t->waits_for);
		if (!u || !stuck(u))
			continue;
		describe_thread(t, var(v, "thread"), VAR_SZ);
		k = join_frame(t);
		fr[0] = 0;
		if (k >= 0 && k + 1 < t->depth)
			put_frame(fr, sizeof(fr), &t->frames[k + 1]);
		snprintf(var(v, "at"), VAR_SZ, "%s%s", fr[0] ? " at " : "", fr);
		describe_thread_wait(u, var(v, "joined"), VAR_SZ);
		snprintf(var(v, "how"), VAR_SZ, "%s", t->waits_exact ? "" :
			 " (inferred: it is the only other Python thread)");
		add_tid(f, t->tid);
		add_tid(f, u->tid);
		return 1;
	}
	return 0;
}

/* A thread waits for an RLock whose owner is a thread of ours, itself stuck. */
static int match_lock_owner(struct dump *d, struct vars *v, struct dump_finding *f)
{
	char fr[512];
	size_t i;
	int k;

	for (i = 0; i < d->nr_threads; i++) {
		struct dump_thread *t = &d->threads[i], *u;

		if (!t->lock_owner || !stuck(t))
			continue;
		u = thread_of(d, t->lock_owner);
		if (!u)
			continue;
		describe_thread(t, var(v, "thread"), VAR_SZ);
		k = user_frame(t);
		fr[0] = 0;
		if (k >= 0)
			put_frame(fr, sizeof(fr), &t->frames[k]);
		snprintf(var(v, "at"), VAR_SZ, "%s%s", fr[0] ? " at " : "", fr);
		describe_thread_wait(u, var(v, "owner"), VAR_SZ);
		add_tid(f, t->tid);
		add_tid(f, u->tid);
		return 1;
	}
	return 0;
}

static int match_gil(struct dump *d, struct vars *v, struct dump_finding *f)
{
	struct dump_thread *h = d->gil_holder ? thread_of(d, d->gil_holder) : NULL;
	char at[600];
	size_t i, waiters = 0;

	if (!h || !stuck(h))
		return 0;
	for (i = 0; i < d->nr_threads; i++)
		waiters += d->threads[i].w.reason == HT_R_GIL && d->threads[i].state != 'R';
	if (!waiters)
		return 0;
	describe_thread(h, var(v, "thread"), VAR_SZ);
	dump__describe_wait(h, var(v, "wait"), VAR_SZ);
	describe_at(h, at, sizeof(at));
	snprintf(var(v, "at"), VAR_SZ, "%s%s", at[0] ? " " : "", at);
	snprintf(var(v, "waiters"), VAR_SZ, "%zu thread%s wait%s", waiters, waiters == 1 ? "" : "s",
		 waiters == 1 ? "s" : "");
	add_tid(f, h->tid);
	return 1;
}

/* "5678 (sleep 3600), sleeping in clock_nanosleep" */
static void describe_child(pid_t child, char *out, size_t sz)
{
	char *cmd = procthread__cmdline(child), state = 0;
	const char *sc = NULL, *what;
	uint64_t args[6];
	long nr = -1;

	if (procthread__state(child, 0, &state)) {
		snprintf(out, sz, "%d (gone)", (int)child);
		free(cmd);
		return;
	}
	if (state != 'R' && !procthread__syscall(child, child, &nr, args, NULL))
		sc = syscall_name(nr);
	what = state == 'R' ? "running" : state == 'S' ? "sleeping" : state == 'D' ? "in disk sleep" :
	       state == 'T' || state == 't' ? "stopped" : state == 'Z' ? "exited (a zombie)" : "blocked";
	snprintf(out, sz, "%d (%s), %s%s%s", (int)child, cmd ? cmd : "?", what, sc ? " in " : "",
		 sc ? sc : "");
	free(cmd);
}

/* The first child of thread @tid of @pid, from /proc/PID/task/TID/children; 0 if none. */
static pid_t first_child(pid_t pid, uint32_t tid)
{
	char path[96];
	FILE *fp;
	int c = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%u/children", (int)pid, tid);
	fp = fopen(path, "re");
	if (!fp)
		return 0;
	if (fscanf(fp, "%d", &c) != 1)
		c = 0;
	fclose(fp);
	return c;
}

static int match_child(struct dump *d, struct vars *v, struct dump_finding *f)
{
	char at[600];
	size_t i;

	for (i = 0; i < d->nr_threads; i++) {
		struct dump_thread *t = &d->threads[i];
		pid_t child = 0;

		if (t->w.reason != HT_R_CHILD || !stuck(t))
			continue;
		if (t->w.syscall == HT_NR_wait4 && (int)t->w.args[0] > 0)
			child = (int)t->w.args[0];
		else if (t->w.syscall == HT_NR_waitid && t->w.args[0] == 1 /* P_PID */)
			child = (int)t->w.args[1];
		if (!child)
			child = first_child(d->pid, t->tid);
		describe_thread(t, var(v, "thread"), VAR_SZ);
		dump__describe_wait(t, var(v, "wait"), VAR_SZ);
		if (child)
			describe_child(child, var(v, "child"), VAR_SZ);
		else
			snprintf(var(v, "child"), VAR_SZ, "(none found)");
		describe_at(t, at, sizeof(at));
		snprintf(var(v, "at"), VAR_SZ, "%s%s", at[0] ? " " : "", at);
		add_tid(f, t->tid);
		return 1;
	}
	return 0;
}

static int match_socket(struct dump *d, struct vars *v, struct dump_finding *f)
{
	char at[600];
	size_t i;

	for (i = 0; i < d->nr_threads; i++) {
		struct dump_thread *t = &d->threads[i];
		const char *what;

		if (t->w.reason != HT_R_SOCKET || !stuck(t) || !t->w.fd_desc ||
		    !strncmp(t->w.fd_desc, "listening", 9))
			continue;
		switch (t->w.syscall) {
		case HT_NR_write: case HT_NR_writev: case HT_NR_sendto: case HT_NR_sendmsg:
		case HT_NR_sendmmsg: case HT_NR_sendfile:
			what = "to read what it sends (the send buffer is full)";
			break;
		case HT_NR_connect:
			what = "to accept the connection";
			break;
		default:
			what = "to answer";
			break;
		}
		describe_thread(t, var(v, "thread"), VAR_SZ);
		snprintf(var(v, "peer"), VAR_SZ, "%s", t->w.fd_desc);
		snprintf(var(v, "what"), VAR_SZ, "%s", what);
		dump__describe_wait(t, var(v, "wait"), VAR_SZ);
		describe_at(t, at, sizeof(at));
		snprintf(var(v, "at"), VAR_SZ, "%s%s", at[0] ? " " : "", at);
		add_tid(f, t->tid);
		return 1;
	}
	return 0;
}

/*
 * The patterns, most telling first.  The first that matches is the
 * diagnosis (text: the first line; JSON: "hint"); the others follow as
 * findings, unless every thread they name was named already.
 */
static const struct pattern {
	const char *id;
	const char *message;
	int (*match)(struct dump *d, struct vars *v, struct dump_finding *f);
} patterns[] = {
	{ "stopped",
	  "Process stopped: process {pid} is stopped {how}; none of its threads runs until it gets SIGCONT (kill -CONT {pid})",
	  match_stopped },
	{ "signal-handler-lock",
	  "Self-deadlock: the {signal} handler {handler} waits for a lock in {thread}, {wait}; the code it interrupted on that same thread, {interrupted}, cannot release a lock it holds until the handler returns",
	  match_signal_handler },
	{ "lock-cycle",
	  "Deadlock: {cycle}: none of them can go on",
	  match_lock_cycle },
	{ "join-cycle",
	  "Deadlock: {cycle}: none of them can finish",
	  match_join_cycle },
	{ "finalization-join",
	  "Shutdown hang: the interpreter is finalizing and {main} is in {where}, {what}",
	  match_finalization },
	{ "join-wait",
	  "Waiting on a thread: {thread} waits in Thread.join{at} for {joined}{how}",
	  match_join },
	{ "lock-owner",
	  "Waiting on a lock: {thread} waits{at} for an RLock held by {owner}",
	  match_lock_owner },
	{ "gil-held-blocked",
	  "GIL held while blocked: {thread} holds the GIL but is {wait}{at}, in native code that did not release it; {waiters} for the GIL",
	  match_gil },
	{ "child-wait",
	  "Waiting on a child process: {thread} is {wait}{at}, for child process {child}",
	  match_child },
	{ "socket-no-answer",
	  "Waiting on a socket peer: {thread} waits for {peer} {what}: {wait}{at}",
	  match_socket },
};

/* Every tid of @f named by an earlier finding already? */
static bool redundant(const struct dump *d, const struct dump_finding *f)
{
	size_t i;
	int j, k, seen;

	if (!f->nr_tids)
		return false;
	for (j = 0; j < f->nr_tids; j++) {
		seen = 0;
		for (i = 0; i < d->nr_findings && !seen; i++)
			for (k = 0; k < d->findings[i].nr_tids; k++)
				seen |= d->findings[i].tids[k] == f->tids[j];
		if (!seen)
			return false;
	}
	return true;
}

int dump__diagnose(struct dump *d, struct procmem *mem)
{
	size_t np = sizeof(patterns) / sizeof(patterns[0]), i;
	struct dump_finding f, *tmp;
	struct vars *v;

	find_shutdown(d);
	find_signal_handlers(d, mem);
	resolve_joins(d, mem);
	resolve_rlocks(d, mem);

	v = calloc(1, sizeof(*v));
	d->findings = calloc(np, sizeof(*d->findings));
	if (!v || !d->findings) {
		free(v);
		return -ENOMEM;
	}
	for (i = 0; i < np; i++) {
		memset(v, 0, sizeof(*v));
		memset(&f, 0, sizeof(f));
		if (!patterns[i].match(d, v, &f) || redundant(d, &f))
			continue;
		f.pattern = patterns[i].id;
		f.message = expand(patterns[i].message, v);
		if (!f.message) {
			free(v);
			return -ENOMEM;
		}
		tmp = &d->findings[d->nr_findings++];
		*tmp = f;
	}
	free(v);
	return 0;
}
