// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `hangtrace run [options] -- CMD [ARGS...]`: start a command and trace its
 * CPython from before the first line of the user's code.
 *
 * The interpreter can only be found once it is mapped, and its runtime read
 * only once it is initialised; the user's code runs right after.  So the
 * command is stopped (SIGSTOP sent by a BPF program, seen with
 * waitpid(WUNTRACED)) at three kinds of moments, by bpf/runstop.bpf.c:
 *
 *   1. each exec of its process: the new image is mapped, nothing has run.
 *      A python whose runtime is in the executable is found here; otherwise
 *      a uprobe goes on the image's dynamic loader (_dl_debug_state);
 *   2. each _dl_debug_state call: the initial libraries (libpython) or a
 *      program run by ld.so itself are mapped now.  Once a CPython is found,
 *      uprobes go on its functions that run after initialisation and before
 *      the main module (Py_RunMain; PyRun_* and PyImport_ImportModule for
 *      3.6/3.7, whose Py_Main does both);
 *   3. the first of those calls with an initialised runtime: discover it,
 *      attach the tracer (loaded before the command started), remove the
 *      stops, continue.
 *
 * The command is never left stopped: every failure path kills it (it has
 * not run any user code yet), and the second-Ctrl-C exit continues it.
 * docs/architecture.md ("hangtrace run") says why it is done this way.
 */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "cli.h"
#include "elfsym.h"
#include "env.h"
#include "log.h"
#include "output.h"
#include "procmaps.h"
#include "procmem.h"
#include "pyproc.h"
#include "report.h"
#include "run.h"
#include "runstop.skel.h"
#include "trace.h"
#include "utf8.h"

#define MAX_HOOKS 4

/* The command, for the signal handler. */
static volatile sig_atomic_t child_pid;
static volatile sig_atomic_t child_held;	/* stopped by us right now */
static volatile sig_atomic_t signals_seen;
static volatile sig_atomic_t never;		/* `run` ends when the command exits, not on a signal */

/*
 * SIGINT/SIGTERM: passed on to the command, which decides; the report is
 * written when it exits.  A terminal's Ctrl-C already went to the whole
 * foreground process group, the command included (si_code SI_KERNEL): it is
 * not sent twice.  A second one: leave now, without a report, and never
 * leave the command stopped.
 */
static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (signals_seen++) {
		if (child_pid > 0 && child_held)
			kill(child_pid, SIGCONT);
		_exit(128 + sig);
	}
	if (child_pid > 0 && si->si_code != SI_KERNEL)
		kill(child_pid, sig);
}

/* SIGCHLD only interrupts the waits, so that an exit or a stop is seen at once. */
static void on_child(int sig)
{
	(void)sig;
}

static void install_handlers(void)
{
	struct sigaction sa = {};

	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;	/* no SA_RESTART: waits return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_child;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
}

struct run {
	pid_t pid;
	struct runstop_bpf *rs;
	struct bpf_link *exec_link;
	struct bpf_link *ldso_link;
	struct bpf_link *hooks[MAX_HOOKS];
	int nr_hooks;
	struct bpf_link *fini[2];	/* while tracing: Py_FinalizeEx, libc _exit */
	uint64_t seen_exec, seen_ldso, seen_hook, seen_fini;
	char python[64];		/* "3.12.1" once a CPython was mapped, else "" */
	int status;			/* wait status once reaped, else -1 */
};

static void detach_probes(struct run *r)
{
	int i;

	bpf_link__destroy(r->ldso_link);
	r->ldso_link = NULL;
	for (i = 0; i < r->nr_hooks; i++)
		bpf_link__destroy(r->hooks[i]);
	r->nr_hooks = 0;
}

static void detach_all(struct run *r)
{
	detach_probes(r);
	bpf_link__destroy(r->exec_link);
	r->exec_link = NULL;
	bpf_link__destroy(r->fini[0]);
	bpf_link__destroy(r->fini[1]);
	r->fini[0] = r->fini[1] = NULL;
	/* no more stops, even from a program still running on another CPU */
	if (r->rs)
		r->rs->bss->target_tgid = 0;
}

enum stop_kind { STOP_NONE, STOP_EXEC, STOP_LDSO, STOP_HOOK, STOP_FINI };
static enum stop_kind stop_kind(struct run *r, int st);

/*
 * Wait for the command to exit, retrying on signals; a stop of ours that
 * raced with the detach is undone.  Its status in r->status.
 */
static int reap(struct run *r)
{
	int st;

	while (r->status == -1) {
		if (waitpid(r->pid, &st, WUNTRACED) == r->pid) {
			if (WIFSTOPPED(st)) {
				if (r->rs && stop_kind(r, st) != STOP_NONE)
					kill(r->pid, SIGCONT);
				continue;
			}
			r->status = st;
		} else if (errno != EINTR) {
			p_err("waiting for the command (pid %d): %s", r->pid, strerror(errno));
			return -errno;
		}
	}
	child_pid = 0;
	return 0;
}

/* A failure before the command ran any of the user's code: end it. */
static void kill_command(struct run *r)
{
	if (r->status != -1)
		return;
	detach_all(r);
	kill(r->pid, SIGKILL);
	child_held = 0;
	reap(r);
}

static double clock_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int exit_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return RUN_EXIT_FAILED;
}

/*
 * Start the command, waiting before exec until we say go (the exec stop
 * must be armed with its pid first).  Exec errors come back on a
 * close-on-exec pipe.  Returns the pid, or -1 with errno.
 */
static pid_t spawn(char **argv, int *go_fd, int *err_fd)
{
	int go[2], er[2], e;
	sigset_t all;
	pid_t pid;
	char c;

	if (pipe2(go, O_CLOEXEC))
		return -1;
	if (pipe2(er, O_CLOEXEC)) {
		e = errno;
		close(go[0]);
		close(go[1]);
		errno = e;
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		e = errno;
		close(go[0]);
		close(go[1]);
		close(er[0]);
		close(er[1]);
		errno = e;
		return -1;
	}
	if (pid == 0) {
		/* the command gets default dispositions and an empty mask */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGCHLD, SIG_DFL);
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		close(go[1]);
		close(er[0]);
		/*
		 * Should hangtrace die (even by SIGKILL) while it holds the
		 * command stopped, the command gets SIGCONT and goes on; its
		 * BPF programs go away with hangtrace's descriptors.
		 */
		prctl(PR_SET_PDEATHSIG, SIGCONT);
		c = 0;
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		if (c != 'g')
			_exit(RUN_EXIT_FAILED);	/* hangtrace gave up before we ran */
		execvp(argv[0], argv);
		e = errno;
		if (write(er[1], &e, sizeof(e)) < 0)
			_exit(RUN_EXIT_FAILED);
		_exit(e == ENOENT ? RUN_EXIT_NOT_FOUND : RUN_EXIT_CANNOT_EXEC);
	}
	close(go[0]);
	close(er[1]);
	*go_fd = go[1];
	*err_fd = er[0];
	return pid;
}

/* Attach a stop to function @func of @path in the command; NULL if it has none. */
static struct bpf_link *attach_stop(struct run *r, struct bpf_program *prog, const char *path,
				    const char *func)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func);
	struct bpf_link *l;

	l = bpf_program__attach_uprobe_opts(prog, r->pid, path, 0, &opts);
	if (!l)
		p_dbg("run: no uprobe on %s in %s: %s", func, path, strerror(errno));
	return l;
}

/* After an exec: the image's dynamic loader, if it has one, tells us when libraries are mapped. */
static void arm_loader(struct run *r)
{
	struct procmaps *maps = procmaps__load(r->pid);
	size_t i;

	if (!maps)
		return;
	for (i = 0; i < maps->nr && !r->ldso_link; i++) {
		const struct procmaps_entry *e = &maps->entries[i];
		struct elfsym *es;
		uint64_t v;

		if (!procmaps__is_file(e) || e->perms[2] != 'x')
			continue;
		es = elfsym__open(e->path);
		if (!es)
			continue;
		if (!elfsym__lookup_dyn(es, "_dl_debug_state", &v, NULL))
			r->ldso_link = attach_stop(r, r->rs->progs.run_ldso, e->path, "_dl_debug_state");
		elfsym__close(es);
	}
	procmaps__free(maps);
}

/*
 * A CPython is mapped (not initialised yet, maybe): stop again where its
 * runtime is ready and the main module has not started.  0 or -ENOENT.
 */
static int arm_hooks(struct run *r, const struct pyproc *p)
{
	/* 3.8+: Py_BytesMain/Py_Main initialise, then call Py_RunMain, which runs __main__ */
	static const char *const run_main[] = { "Py_RunMain", NULL };
	/* 3.6/3.7: Py_Main does both; the first of these runs after initialisation */
	static const char *const old_main[] = { "PyImport_ImportModule", "PyRun_AnyFileExFlags",
						"PyRun_SimpleStringFlags", NULL };
	const char *const *f;
	int pass;

	detach_probes(r);
	for (pass = p->minor >= 8 ? 0 : 1; pass < 2 && !r->nr_hooks; pass++) {
		for (f = pass ? old_main : run_main; *f && r->nr_hooks < MAX_HOOKS; f++) {
			r->hooks[r->nr_hooks] = attach_stop(r, r->rs->progs.run_hook, p->python_file, *f);
			if (r->hooks[r->nr_hooks])
				r->nr_hooks++;
		}
	}
	return r->nr_hooks ? 0 : -ENOENT;
}

/* Is the runtime initialised: an interpreter, a thread state, (3.12+) its GIL? */
static bool runtime_ready(const struct pyproc *p)
{
	struct procmem *m = procmem__open(p->pid);
	uint64_t interp = 0, ts = 0;
	bool ok = false;

	if (!m)
		return false;
	if (!procmem__read_u64(m, p->interp_head_addr, &interp) && interp &&
	    !procmem__read_u64(m, interp + (uint64_t)p->off.interp_tstate_head, &ts) && ts)
		ok = p->minor < 12 || p->gil_addr;
	procmem__close(m);
	return ok;
}

/* Which of our stops is this (a stop by anyone else is STOP_NONE)? */
static enum stop_kind stop_kind(struct run *r, int st)
{
	uint64_t e = r->rs->bss->exec_stops, l = r->rs->bss->ldso_stops, h = r->rs->bss->hook_stops;
	uint64_t f = r->rs->bss->fini_stops;
	enum stop_kind k = STOP_NONE;

	if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGSTOP)
		return STOP_NONE;
	/* an exec replaces the image: it wins over anything before it */
	if (e != r->seen_exec)
		k = STOP_EXEC;
	else if (h != r->seen_hook)
		k = STOP_HOOK;
	else if (l != r->seen_ldso)
		k = STOP_LDSO;
	else if (f != r->seen_fini)
		k = STOP_FINI;
	r->seen_exec = e;
	r->seen_ldso = l;
	r->seen_hook = h;
	r->seen_fini = f;
	return k;
}

/*
 * Follow the command until its CPython is initialised; it is then stopped
 * (child_held) and *@out describes it.  0; -ECHILD if it exited first (its
 * status in r->status); another -errno after printing the error, the
 * command killed.
 */
static int wait_for_python(struct run *r, struct pyproc **out)
{
	struct pyproc *p = NULL;
	char why[512];
	enum stop_kind k;
	int st, err;

	*out = NULL;
	for (;;) {
		if (waitpid(r->pid, &st, WUNTRACED) != r->pid) {
			if (errno == EINTR)
				continue;
			err = -errno;
			p_err("waiting for the command (pid %d): %s", r->pid, strerror(errno));
			kill_command(r);
			return err;
		}
		if (WIFEXITED(st) || WIFSIGNALED(st)) {
			r->status = st;
			child_pid = 0;
			free(p);
			return -ECHILD;
		}
		k = stop_kind(r, st);
		if (k == STOP_NONE)
			continue;	/* job control (Ctrl-Z): not ours to undo */
		child_held = 1;

		if (!p) {
			p = calloc(1, sizeof(*p));
			if (!p) {
				p_err("out of memory");
				kill_command(r);
				return -ENOMEM;
			}
		}
		err = pyproc__discover(r->pid, p, why, sizeof(why));
		if (err == -ENOEXEC) {
			/* not (yet) a CPython: a wrapper, or libraries still to come */
			if (k == STOP_EXEC) {
				detach_probes(r);
				arm_loader(r);
			}
		} else if (err) {
			p_err("%s", why);
			kill_command(r);
			free(p);
			return err;
		} else if (k == STOP_HOOK && runtime_ready(p)) {
			p_dbg("run: pid %d: Python %s initialised (%s)", r->pid, p->version,
			      p->python_file);
			*out = p;
			return 0;
		} else if (k != STOP_HOOK && (k == STOP_EXEC || r->ldso_link)) {
			/* a CPython is mapped: stop again once it is initialised */
			snprintf(r->python, sizeof(r->python), "%s", p->version);
			if (arm_hooks(r, p)) {
				p_err("process %d runs Python %s from %s, which has none of the "
				      "functions hangtrace run stops at (Py_RunMain, PyRun_AnyFileExFlags): "
				      "start it first and use hangtrace -p PID",
				      r->pid, p->version, p->python_file);
				kill_command(r);
				free(p);
				return -ENOENT;
			}
		}
		child_held = 0;
		kill(r->pid, SIGCONT);
	}
}

/*
 * While tracing: stop the command on its way out (Python's finalization,
 * libc's _exit, which os._exit() calls directly), so that what it did last
 * is read while its memory is there.  Best effort: without them a short
 * program's last stacks may lack names.
 */
static void arm_fini(struct run *r, const struct pyproc *p)
{
	struct procmaps *maps;
	size_t i;

	r->fini[0] = attach_stop(r, r->rs->progs.run_fini, p->python_file, "Py_FinalizeEx");
	maps = procmaps__load(r->pid);
	if (!maps)
		return;
	for (i = 0; i < maps->nr && !r->fini[1]; i++) {
		const struct procmaps_entry *e = &maps->entries[i];
		struct elfsym *es;
		uint64_t v;

		if (!procmaps__is_file(e) || e->perms[2] != 'x' || !strstr(e->path, "/libc"))
			continue;
		es = elfsym__open(e->path);
		if (!es)
			continue;
		if (!elfsym__lookup_dyn(es, "_exit", &v, NULL))
			r->fini[1] = attach_stop(r, r->rs->progs.run_fini, e->path, "_exit");
		elfsym__close(es);
	}
	procmaps__free(maps);
}

/* trace.c saw the command stop: on its way out (ours), read what is left, then let it go. */
static void on_child_stopped(struct trace_session *s, int status, void *ctx)
{
	struct run *r = ctx;

	if (stop_kind(r, status) != STOP_FINI)
		return;		/* job control: not ours to undo */
	child_held = 1;
	trace__sync(s);
	child_held = 0;
	kill(r->pid, SIGCONT);
}

/* The command's name for messages: valid UTF-8, control characters and quotes as \xNN. */
static void command_name(char **argv, char *buf, size_t len)
{
	char *clean = utf8_sanitize(argv[0]);
	const unsigned char *s = (const unsigned char *)(clean ? clean : "?");
	size_t i, o = 0;

	for (i = 0; s[i];) {
		/* whole characters only: a long name is cut between two of them */
		size_t n = s[i] < 0x80 ? 1 : s[i] < 0xe0 ? 2 : s[i] < 0xf0 ? 3 : 4;

		if (o + 8 >= len) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (s[i] < 0x20 || s[i] == 0x7f || s[i] == '\\' || s[i] == '\'') {
			o += snprintf(buf + o, len - o, "\\x%02x", s[i]);
		} else {
			memcpy(buf + o, s + i, n);
			o += n;
		}
		i += n;
	}
	buf[o] = '\0';
	free(clean);
}

int cmd_run(int argc, char **argv)
{
	struct run r = { .status = -1 };
	struct trace_session *ts = NULL;
	struct trace_opts topts = {};
	struct pyproc *proc = NULL;
	struct report rep = {};
	int go_fd = -1, err_fd = -1, exec_errno = 0, err, ret = RUN_EXIT_FAILED;
	char name[256];
	double held_since, attach_ms;
	struct env env;
	ssize_t n;

	env__init(&env);
	env.run = 1;
	argp_err_exit_status = RUN_EXIT_FAILED;
	argv[0] = (char *)"hangtrace run";	/* argp's name in its messages */
	if (env__parse(argc, argv, &env))
		return RUN_EXIT_FAILED;
	cli__set_verbosity(env.verbose, LOG_WARN);
	command_name(env.cmd_argv, name, sizeof(name));

	if (cli__check_privileges())
		return RUN_EXIT_FAILED;

	/* Load every BPF program first: the command then waits only for the attach */
	cli__trace_opts(&env, &topts);
	topts.stop = &never;
	topts.child_status = &r.status;
	topts.child_stopped = on_child_stopped;
	topts.child_ctx = &r;
	ts = trace__open(&topts);
	if (!ts)
		return RUN_EXIT_FAILED;
	r.rs = runstop_bpf__open_and_load();
	if (!r.rs) {
		p_err("failed to load the BPF programs of run (%s); run with -vv for details",
		      strerror(errno));
		goto cleanup;
	}

	/* Start the command, held before its exec */
	install_handlers();
	r.pid = spawn(env.cmd_argv, &go_fd, &err_fd);
	if (r.pid < 0) {
		p_err("cannot start '%s': %s", name, strerror(errno));
		goto cleanup;
	}
	child_pid = r.pid;

	/* Stop it at each exec, then let it exec */
	r.rs->bss->target_tgid = r.pid;
	r.exec_link = bpf_program__attach(r.rs->progs.run_exec);
	if (!r.exec_link) {
		p_err("failed to attach the exec tracepoint: %s", strerror(errno));
		close(go_fd);	/* the child sees EOF and exits */
		go_fd = -1;
		reap(&r);
		goto cleanup;
	}
	if (write(go_fd, "g", 1) != 1) {
		p_err("cannot start '%s': %s", name, strerror(errno));
		kill_command(&r);
		goto cleanup;
	}
	close(go_fd);
	go_fd = -1;
	do {
		n = read(err_fd, &exec_errno, sizeof(exec_errno));
	} while (n < 0 && errno == EINTR);
	if (n == sizeof(exec_errno)) {
		p_err("cannot run '%s': %s", name, strerror(exec_errno));
		reap(&r);
		ret = exec_errno == ENOENT ? RUN_EXIT_NOT_FOUND : RUN_EXIT_CANNOT_EXEC;
		goto cleanup;
	}

	/* Follow it until its CPython is initialised (it is then stopped) */
	err = wait_for_python(&r, &proc);
	if (err == -ECHILD && r.python[0]) {
		p_err("'%s' ended (%s %d) before its Python %s ran any code: nothing was traced",
		      name, WIFSIGNALED(r.status) ? "signal" : "exit status",
		      WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status), r.python);
		goto cleanup;
	}
	if (err == -ECHILD) {
		p_err("'%s' ended (%s %d) without running CPython: nothing was traced "
		      "(hangtrace run follows the command's own process, not the processes it starts)",
		      name, WIFSIGNALED(r.status) ? "signal" : "exit status",
		      WIFSIGNALED(r.status) ? WTERMSIG(r.status) : WEXITSTATUS(r.status));
		goto cleanup;
	}
	if (err)
		goto cleanup;

	/* Attach the tracer, remove the stops, and let it run */
	held_since = clock_ms();
	err = trace__start(ts, proc);
	detach_probes(&r);
	bpf_link__destroy(r.exec_link);
	r.exec_link = NULL;
	if (err) {
		kill_command(&r);
		goto cleanup;
	}
	attach_ms = clock_ms() - held_since;
	arm_fini(&r, proc);
	child_held = 0;
	kill(r.pid, SIGCONT);
	p_dbg("run: pid %d held %.1f ms to attach (tracer %.1f ms)", r.pid, clock_ms() - held_since,
	      attach_ms);

	/* Trace until it exits (or -d), then the report */
	err = trace__finish(ts, &rep);
	detach_all(&r);
	if (!err) {
		rep.what = env.what;
		err = output__write(&rep, env.format, env.output);
	}
	trace__close(ts);
	ts = NULL;
	/* -d: the report is out; the command goes on, and we exit with its status */
	if (reap(&r))
		goto cleanup;
	ret = err ? RUN_EXIT_FAILED : exit_status(r.status);

cleanup:
	if (r.pid > 0 && r.status == -1 && child_held)
		kill_command(&r);
	detach_all(&r);
	runstop_bpf__destroy(r.rs);
	trace__close(ts);
	report__free(&rep);
	free(proc);
	if (go_fd >= 0)
		close(go_fd);
	if (err_fd >= 0)
		close(err_fd);
	return ret;
}
