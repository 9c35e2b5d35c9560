// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `hangtrace dump -p PID`: the command line and the snapshot.
 *
 * Everything is read while the target keeps running (or keeps hanging): the
 * thread list and per-thread kernel facts from the BPF task iterator, names,
 * states, system calls and kernel stacks from /proc, Python stacks with the
 * shared frame walker over /proc/PID/mem.  No ptrace, no signal.
 *
 * "Blocked for" is the scheduler's own record: a task's sched_info
 * .last_arrival is the rq clock when it last got a CPU, and
 * se.sum_exec_runtime - se.prev_sum_exec_runtime how long it then ran, so
 * their sum is when it left the CPU.  The rq clock is not CLOCK_MONOTONIC
 * (it is sched_clock, off by milliseconds and drifting), so it is
 * calibrated on the spot against a thread of our own that blocks at a time
 * we read from CLOCK_MONOTONIC.  docs/dump.md has the details.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "dump.h"
#include "env.h"
#include "hangtrace.h"
#include "log.h"
#include "output.h"
#include "procmem.h"
#include "procthread.h"
#include "pyproc.h"
#include "pysym.h"
#include "pywalk_user.h"
#include "reason.h"
#include "report.h"
#include "taskiter.h"
#include "trace.h"
#include "tracer.h"

/* --- command line ------------------------------------------------------- */

struct dump_env {
	pid_t pid;
	enum out_format format;
	const char *output;
	uint64_t trace_ns;
	uint32_t max_frames;
	int verbose;
};

static const char dump_doc[] =
	"hangtrace dump: explain an already-hung CPython process, now.\n"
	"\n"
	"USAGE: hangtrace dump -p PID [--format text|json] [-o FILE] [--trace SECONDS]\n"
	"\n"
	"Shows every thread of the process: its state, the system call it is blocked\n"
	"in and for how long, its Python stack and kernel stack, whether it holds the\n"
	"GIL; whether the interpreter is shutting down; and, on the first line, a\n"
	"diagnosis of the hang when it matches a known pattern (shutdown waiting for a\n"
	"thread, a signal handler deadlocked on a lock, a join on a stuck thread, a\n"
	"wait on a child or on a silent socket peer, the GIL held while blocked).  The\n"
	"process is never stopped or signalled.  Needs root.\n"
	"\n"
	"EXAMPLES:\n"
	"    hangtrace dump -p 4242                   # snapshot, text\n"
	"    hangtrace dump -p 4242 --format json -o hang.json\n"
	"    hangtrace dump -p 4242 --trace 5         # then trace 5 s: who wakes whom\n";

enum {
	OPT_FORMAT = 1000,
	OPT_TRACE,
	OPT_MAX_FRAMES,
};

static const struct argp_option dump_opts[] = {
	{ "pid", 'p', "PID", 0, "Process to dump", 0 },
	{ "format", OPT_FORMAT, "FORMAT", 0, "text (default) or json", 0 },
	{ "output", 'o', "FILE", 0, "Write to FILE (atomically) instead of stdout", 0 },
	{ "trace", OPT_TRACE, "SECONDS", 0, "After the snapshot, trace this long (2.5, 500ms, 1m) and add the tracer's report", 0 },
	{ "max-frames", OPT_MAX_FRAMES, "N", 0, "Python frames kept per stack, 1-128 (default 128)", 0 },
	{ "verbose", 'v', NULL, 0, "More diagnostics; -vv adds libbpf debug output", 0 },
	{},
};

static error_t dump_parse_arg(int key, char *arg, struct argp_state *state)
{
	struct dump_env *env = state->input;

	switch (key) {
	case 'p':
		if (cli__parse_pid(arg, &env->pid)) {
			p_err("invalid PID '%s': expected a positive process id", arg);
			return EINVAL;
		}
		break;
	case OPT_FORMAT:
		if (!strcmp(arg, "text")) {
			env->format = FMT_TEXT;
		} else if (!strcmp(arg, "json")) {
			env->format = FMT_JSON;
		} else {
			p_err("invalid --format '%s': expected text or json", arg);
			return EINVAL;
		}
		break;
	case 'o':
		env->output = arg;
		break;
	case OPT_TRACE:
		if (parse_duration(arg, 1000000000ULL, &env->trace_ns) || !env->trace_ns) {
			p_err("invalid --trace '%s': expected seconds, e.g. 5 or 2.5 or 500ms", arg);
			return EINVAL;
		}
		break;
	case OPT_MAX_FRAMES:
		if (cli__parse_max_frames(arg, &env->max_frames))
			return EINVAL;
		break;
	case 'v':
		env->verbose++;
		break;
	case ARGP_KEY_ARG:
		p_err("unexpected argument '%s' (see hangtrace dump --help)", arg);
		return EINVAL;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* --- clocks ------------------------------------------------------------- */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * A thread of ours that notes CLOCK_MONOTONIC and blocks at once: the
 * scheduler's record of when it left the CPU, minus that time, is the
 * offset between the rq clock and CLOCK_MONOTONIC.
 */
struct clock_ref {
	pthread_t th;
	int fd[2];
	uint64_t mono_ns;		/* written before it blocks */
	pid_t tid;
	bool running;
};

static void *clock_ref_main(void *arg)
{
	struct clock_ref *c = arg;
	char b;

	__atomic_store_n(&c->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
	__atomic_store_n(&c->mono_ns, clock_ns(CLOCK_MONOTONIC), __ATOMIC_RELEASE);
	while (read(c->fd[0], &b, 1) < 0 && errno == EINTR)
		;
	return NULL;
}

static void clock_ref_start(struct clock_ref *c)
{
	memset(c, 0, sizeof(*c));
	c->fd[0] = c->fd[1] = -1;
	if (pipe2(c->fd, O_CLOEXEC))
		return;
	c->running = !pthread_create(&c->th, NULL, clock_ref_main, c);
}

static void clock_ref_stop(struct clock_ref *c)
{
	if (c->running) {
		if (write(c->fd[1], "x", 1) != 1)
			pthread_cancel(c->th);
		pthread_join(c->th, NULL);
	}
	if (c->fd[0] >= 0)
		close(c->fd[0]);
	if (c->fd[1] >= 0)
		close(c->fd[1]);
	c->running = false;
}

/* rq clock - CLOCK_MONOTONIC, from the reference thread.  0 or -errno. */
static int clock_ref_offset(struct clock_ref *c, struct taskiter *it, int64_t *offset)
{
	struct ht_task_info *ti = NULL;
	size_t n, i;
	pid_t tid;
	int try, err = -ENODATA;

	if (!c->running)
		return -ENODATA;
	for (try = 0; try < 50 && err == -ENODATA; try++) {
		if (try)
			usleep(1000);
		tid = __atomic_load_n(&c->tid, __ATOMIC_ACQUIRE);
		if (!tid)
			continue;
		free(ti);
		if (taskiter__read(it, getpid(), &ti, &n))
			return -EIO;
		for (i = 0; i < n; i++) {
			/* blocked in its read(): it has left the CPU */
			if (ti[i].tid != (__u32)tid || ti[i].state == 0 || ti[i].syscall != 0)
				continue;
			if (!ti[i].last_arrival_ns) {
				err = -ENOTSUP;
				break;
			}
			*offset = (int64_t)(ti[i].last_arrival_ns + ti[i].last_ran_ns) -
				  (int64_t)__atomic_load_n(&c->mono_ns, __ATOMIC_ACQUIRE);
			err = 0;
		}
	}
	free(ti);
	return err;
}

/* --- the snapshot ------------------------------------------------------- */

struct snap {
	struct dump *d;
	struct procmem *mem;
	struct pysym *sym;
	struct ht_py_proc pp;
	struct ht_pystack *st;
	bool clock_ok;
	int64_t rq_offset;		/* rq clock - CLOCK_MONOTONIC */
	uint64_t now_mono;		/* when the task iterator was read */
};

static bool is_blocked_state(char s)
{
	return s && s != 'R';
}

static int read_timespec(struct procmem *m, uint64_t addr, int64_t *ns)
{
	int64_t ts[2];

	if (procmem__read(m, addr, ts, sizeof(ts)))
		return -EFAULT;
	*ns = ts[0] * 1000000000LL + ts[1];
	return 0;
}

/* Does the wait of @t have a timeout, and how much of it is left?  (See dump.h.) */
static void wait_timeout(struct snap *c, struct dump_thread *t)
{
	const uint64_t *a = t->w.args;
	int64_t v, rel = -1, deadline = -1;
	clockid_t clk = CLOCK_MONOTONIC;
	int op;

	t->timeout = -1;
	t->timeout_left_ns = -1;
	switch (t->w.syscall) {
	case HT_NR_futex:
		op = a[1] & 127;	/* without FUTEX_PRIVATE_FLAG / FUTEX_CLOCK_REALTIME */
		t->timeout = a[3] != 0;
		if (!a[3] || read_timespec(c->mem, a[3], &v))
			break;
		if (op == 0)		/* FUTEX_WAIT: relative */
			rel = v;
		else
			deadline = v, clk = (a[1] & 256) || op == 6 ? CLOCK_REALTIME : CLOCK_MONOTONIC;
		break;
	case HT_NR_poll:
	case HT_NR_epoll_wait:
	case HT_NR_epoll_pwait:
		v = (int)a[t->w.syscall == HT_NR_poll ? 2 : 3];
		t->timeout = v >= 0;
		if (v >= 0)
			rel = v * 1000000LL;
		break;
	case HT_NR_ppoll:
	case HT_NR_pselect6:
	case HT_NR_epoll_pwait2:
		v = a[t->w.syscall == HT_NR_ppoll ? 2 : t->w.syscall == HT_NR_pselect6 ? 4 : 3];
		t->timeout = v != 0;
		if (v && !read_timespec(c->mem, v, &v))
			rel = v;
		break;
	case HT_NR_select:
		t->timeout = a[4] != 0;
		/* struct timeval: microseconds */
		if (a[4] && !read_timespec(c->mem, a[4], &v))
			rel = v / 1000000000LL * 1000000000LL + (v % 1000000000LL) * 1000;
		break;
	case HT_NR_nanosleep:
		t->timeout = 1;
		if (!read_timespec(c->mem, a[0], &v))
			rel = v;
		break;
	case HT_NR_clock_nanosleep:
		t->timeout = 1;
		if (read_timespec(c->mem, a[2], &v))
			break;
		if (a[1] & 1)		/* TIMER_ABSTIME */
			deadline = v, clk = (clockid_t)a[0];
		else
			rel = v;
		break;
	case HT_NR_read: case HT_NR_readv: case HT_NR_recvfrom: case HT_NR_recvmsg:
	case HT_NR_accept: case HT_NR_accept4: case HT_NR_connect: case HT_NR_write:
	case HT_NR_writev: case HT_NR_sendto: case HT_NR_sendmsg: case HT_NR_wait4:
	case HT_NR_waitid: case HT_NR_flock: case HT_NR_pause:
		t->timeout = 0;
		break;
	default:
		break;
	}
	if (deadline >= 0) {
		v = deadline - (int64_t)clock_ns(clk);
		t->timeout_left_ns = v > 0 ? v : 0;
	} else if (rel >= 0 && t->blocked_known) {
		v = rel - (int64_t)t->blocked_ns;
		t->timeout_left_ns = v > 0 ? v : 0;
	}
}

/* Can the first interpreter's thread list be read at all?  0 or -errno. */
static int thread_list_readable(struct snap *c)
{
	uint64_t interp, ts;
	int err;

	err = procmem__read_u64(c->mem, c->pp.interp_head_addr, &interp);
	if (!err && interp)
		err = procmem__read_u64(c->mem, interp + c->pp.interp_tstate_head, &ts);
	return err;
}

static int python_stack(struct snap *c, struct dump_thread *t)
{
	struct ht_pystack *st = c->st;
	struct pyframe_sym fs;
	uint32_t i, n, unknown = 0;
	int err;

	if (c->d->mem_error)
		return asprintf(&t->stack_note, "no Python stack: %s", c->d->mem_error) < 0 ? -ENOMEM : 0;
	t->tstate = pywalk__find_tstate(&c->pp, c->mem, t->tid, t->fsbase);
	t->python = t->tstate != 0;
	if (!t->python) {
		err = thread_list_readable(c);
		if (err)
			return asprintf(&t->stack_note, "no Python stack: the interpreter's thread "
					"list could not be read (%s)", strerror(-err)) < 0 ? -ENOMEM : 0;
		t->stack_note = strdup("not a Python thread: no thread state of the interpreter "
				       "belongs to it (a native thread, or one not attached yet)");
		return t->stack_note ? 0 : -ENOMEM;
	}
	memset(st, 0, sizeof(*st));
	procmem__on_behalf_of(c->mem, t->tid);
	pywalk__stack(&c->pp, c->mem, t->tstate, st, c->d->max_frames);
	procmem__on_behalf_of(c->mem, 0);
	n = st->depth < HT_MAX_PY_FRAMES ? st->depth : HT_MAX_PY_FRAMES;
	t->truncated = st->flags & HT_STACK_TRUNCATED;
	t->partial = st->flags & HT_STACK_READ_ERR;
	if (n) {
		t->frames = calloc(n, sizeof(*t->frames));
		if (!t->frames)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		pysym__frame(c->sym, st->frames[i].code, st->frames[i].instr, &fs);
		t->frames[i].code = st->frames[i].code;
		t->frames[i].function = fs.function;
		t->frames[i].file = fs.file;
		t->frames[i].line = fs.line;
	}
	t->depth = n;
	for (i = 0; i < n; i++)
		unknown += !strcmp(t->frames[i].function, "<unknown>");
	if (t->partial && !n)
		t->stack_note = strdup("no Python stack: the memory its thread state points to "
				       "(its current frame) could not be read");
	else if (t->partial)
		t->stack_note = strdup(t->state == 'R' ?
				       "a frame could not be read (the thread was running and "
				       "changed its stack as it was read): the stack may be incomplete" :
				       "a frame could not be read: the stack may be incomplete");
	else if (!n)
		t->stack_note = strdup("no Python frames: the thread is not running Python code "
				       "(starting, finishing, or inside the interpreter's own C code)");
	else if (unknown && asprintf(&t->stack_note, "%u frame%s could not be symbolized: "
				     "code object unreadable", unknown, unknown == 1 ? "" : "s") < 0)
		t->stack_note = NULL;
	return 0;
}

static int snap_thread(struct snap *c, const struct ht_task_info *ti, struct dump_thread *t)
{
	struct dump *d = c->d;
	uint64_t left;
	int err;

	t->tid = ti->tid;
	t->fsbase = ti->fsbase;
	t->main = ti->tid == (__u32)d->pid;
	t->handler_frame = -1;
	t->w.syscall = -1;
	t->w.reason = -1;
	t->w.fd = -1;
	t->timeout = -1;
	t->timeout_left_ns = -1;
	procthread__comm(d->pid, t->tid, t->name, sizeof(t->name));
	if (procthread__state(d->pid, t->tid, &t->state))
		t->state = 0;	/* gone since the iterator saw it */
	if (is_blocked_state(t->state)) {
		procthread__classify(d->pid, t->tid, c->mem, &c->pp, &t->w);
		if (c->clock_ok && ti->last_arrival_ns) {
			left = ti->last_arrival_ns + ti->last_ran_ns - c->rq_offset;
			t->blocked_known = true;
			t->blocked_ns = c->now_mono > left ? c->now_mono - left : 0;
		}
		wait_timeout(c, t);
	}
	err = python_stack(c, t);
	if (!err && t->state)
		err = procthread__kstack(d->pid, t->tid, &t->kstack, &t->kdepth);
	return err;
}

static int cmp_thread(const void *x, const void *y)
{
	const struct dump_thread *a = x, *b = y;

	if (a->main != b->main)
		return a->main ? -1 : 1;
	return a->tid < b->tid ? -1 : a->tid > b->tid;
}

static void read_interpreter(struct snap *c)
{
	struct dump *d = c->d;
	uint64_t v = 0, holder;
	bool locked;
	size_t i;

	if (d->mem_error)
		return;
	if (d->p->finalizing_addr && !procmem__read_u64(c->mem, d->p->finalizing_addr, &v))
		d->finalizing_flag = d->finalizing = v != 0;
	if (pyproc__read_gil(d->p, c->mem, &locked, &holder))
		return;
	d->gil_known = true;
	for (i = 0; locked && holder && i < d->nr_threads; i++) {
		if (d->threads[i].tstate == holder) {
			d->threads[i].holds_gil = true;
			d->gil_holder = d->threads[i].tid;
		}
	}
}

static int dump__snapshot(struct dump *d, struct taskiter *it, struct clock_ref *ref)
{
	struct ht_task_info *tasks = NULL;
	struct snap c = { .d = d };
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), probe;
	size_t n = 0, i;
	int err;

	d->unix_ns = clock_ns(CLOCK_REALTIME);
	d->cmdline = procthread__cmdline(d->pid);
	err = tracer__py_proc(d->p, &c.pp);
	if (err) {
		p_err("cannot dump process %d: unusable interpreter layout (%s)", d->pid,
		      strerror(-err));
		return err;
	}
	c.st = calloc(1, sizeof(*c.st));
	c.mem = procmem__open(d->pid);
	if (!c.mem || procmem__read_u64(c.mem, d->p->interp_head_addr, &probe)) {
		err = c.mem ? -EFAULT : -errno;
		if (asprintf(&d->mem_error, "cannot read the process's memory (%s)", strerror(-err)) < 0)
			d->mem_error = NULL;
		p_warn("process %d: %s; showing what /proc says", d->pid,
		       d->mem_error ? d->mem_error : strerror(-err));
	}
	c.sym = c.mem ? pysym__new(d->p, c.mem) : NULL;
	d->mem = c.mem;
	d->sym = c.sym;
	if (!c.st || (c.mem && !c.sym)) {
		err = -ENOMEM;
		goto cleanup;
	}

	/* Clocks first, then every thread, as close together as possible */
	c.clock_ok = !clock_ref_offset(ref, it, &c.rq_offset);
	if (!c.clock_ok)
		p_dbg("blocked-for times unavailable (no scheduler clock calibration)");
	err = taskiter__read(it, d->pid, &tasks, &n);
	c.now_mono = clock_ns(CLOCK_MONOTONIC);
	if (err) {
		p_err("cannot list the threads of process %d: %s", d->pid, strerror(-err));
		goto cleanup;
	}
	if (!n) {
		err = -ESRCH;
		p_err("process %d has no threads left (it exited)", d->pid);
		goto cleanup;
	}
	d->threads = calloc(n, sizeof(*d->threads));
	if (!d->threads) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (i = 0; i < n; i++) {
		err = snap_thread(&c, &tasks[i], &d->threads[d->nr_threads++]);
		if (err)
			goto cleanup;
	}
	qsort(d->threads, d->nr_threads, sizeof(*d->threads), cmp_thread);
	read_interpreter(&c);
	err = dump__diagnose(d, c.mem);
	d->took_ns = clock_ns(CLOCK_MONOTONIC) - t0;
cleanup:
	free(tasks);
	free(c.st);
	return err;
}

static void dump__free(struct dump *d)
{
	size_t i;

	for (i = 0; i < d->nr_threads; i++) {
		struct dump_thread *t = &d->threads[i];

		free(t->w.fd_desc);
		free(t->frames);
		free(t->stack_note);
		procthread__kstack_free(t->kstack, t->kdepth);
	}
	for (i = 0; i < d->nr_findings; i++)
		free(d->findings[i].message);
	free(d->findings);
	free(d->threads);
	free(d->cmdline);
	free(d->mem_error);
	report__free(d->trace);
	free(d->trace);
	pysym__free(d->sym);
	procmem__close(d->mem);
	memset(d, 0, sizeof(*d));
}

/* --- the command -------------------------------------------------------- */

static volatile sig_atomic_t dump_stop;

static void dump_sig(int sig)
{
	(void)sig;
	if (dump_stop)
		_exit(130);
	dump_stop = 1;
}

struct dump_out {
	const struct dump *d;
	enum out_format fmt;
};

static int write_dump(void *ctx, FILE *f)
{
	struct dump_out *o = ctx;

	return o->fmt == FMT_JSON ? dump__write_json(o->d, f) : dump__write_text(o->d, f);
}

/* Refuse what cannot be dumped, with a reason the user can act on. */
static int check_target(pid_t pid, char *state)
{
	int err = procthread__state(pid, 0, state);

	if (err == -ENOENT) {
		p_err("no such process %d", pid);
		return -ESRCH;
	}
	if (err) {
		p_err("cannot read process %d: %s", pid, strerror(-err));
		return err;
	}
	if (*state == 'Z' || *state == 'X') {
		p_err("process %d is a zombie: it has exited and waits for its parent to reap it; "
		      "there is nothing left to dump", pid);
		return -ESRCH;
	}
	return 0;
}

int cmd_dump(int argc, char **argv)
{
	static const struct argp argp = {
		.options = dump_opts,
		.parser = dump_parse_arg,
		.doc = dump_doc,
	};
	static char prog[] = "hangtrace dump";
	struct dump_env env = { .format = FMT_TEXT, .max_frames = HT_MAX_PY_FRAMES };
	struct trace_opts topts = {};
	struct taskiter *it = NULL;
	struct sigaction sa = {};
	struct pyproc *proc = NULL;
	struct clock_ref ref = { .fd = { -1, -1 } };
	struct dump d = {};
	struct dump_out out;
	int err;

	argp_err_exit_status = 2;
	/* argp names the program after argv[0]: "hangtrace dump", not "dump" */
	argv[0] = prog;
	err = argp_parse(&argp, argc, argv, 0, NULL, &env);
	if (err)
		return 2;
	if (!env.pid) {
		p_err("no process given: use hangtrace dump -p PID (see --help)");
		return 2;
	}
	cli__set_verbosity(env.verbose, LOG_WARN);

	/* Refuse early what cannot work */
	err = cli__check_privileges();
	if (err)
		goto cleanup;
	d.pid = env.pid;
	d.max_frames = env.max_frames;
	err = check_target(env.pid, &d.state);
	if (err)
		goto cleanup;

	/* Find the target's interpreter */
	proc = cli__discover(env.pid, &err);
	if (!proc)
		goto cleanup;
	d.p = proc;

	/* The clock reference blocks while the task iterator loads */
	clock_ref_start(&ref);
	it = taskiter__new();
	if (!it) {
		err = -errno;
		goto cleanup;
	}

	/* Snapshot and diagnosis */
	err = dump__snapshot(&d, it, &ref);
	if (err)
		goto cleanup;
	p_dbg("snapshot of %zu threads took %.1f ms", d.nr_threads, d.took_ns / 1e6);

	/* Then, if asked, trace: who wakes whom */
	if (env.trace_ns) {
		sa.sa_handler = dump_sig;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		d.trace = calloc(1, sizeof(*d.trace));
		if (!d.trace) {
			err = -ENOMEM;
			goto cleanup;
		}
		topts.duration_ns = env.trace_ns;
		topts.min_block_ns = 1000000;
		topts.max_frames = env.max_frames;
		topts.stop = &dump_stop;
		err = trace__run(proc, &topts, d.trace);
		if (err)
			goto cleanup;
		d.trace_ns = env.trace_ns;
	}

	out.d = &d;
	out.fmt = env.format;
	err = output__write_with(env.output, write_dump, &out);

cleanup:
	clock_ref_stop(&ref);
	taskiter__free(it);
	dump__free(&d);
	free(proc);
	return err ? 1 : 0;
}
