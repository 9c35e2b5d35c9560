// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One tracing session: the target process and, with --children, every
 * descendant.  One struct analyze (memory reader, symbolizer, timeline) and
 * one struct report per process; the BPF programs are shared.
 *
 * Descendants come in two ways (see docs/architecture.md):
 *   - forked from a traced CPython: the BPF fork hook traces them at once
 *     with their parent's layout; here they get their own analysis.
 *   - exec'd (multiprocessing spawn/forkserver, subprocess, a shell running
 *     python): pending until their interpreter is mapped and initialised,
 *     found again every round; those that never become a CPython we can
 *     trace are listed as untraced, with why.
 * A descendant's report is built when it exits (its memory is gone after
 * that), then the tracer forgets it.
 *
 * The session is used in steps (trace__open, trace__start, trace__finish,
 * trace__close) so that `hangtrace run` loads the BPF programs before its
 * command exists and attaches while it is stopped; its command is our child,
 * reaped here (opts->child_status) rather than polled through /proc.
 */
#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyze.h"
#include "log.h"
#include "procmem.h"
#include "procthread.h"
#include "progress.h"
#include "pyproc.h"
#include "pysym.h"
#include "report.h"
#include "trace.h"
#include "tracer.h"

#define PENDING_NOT_PYTHON_NS	2000000000ULL	/* "not CPython" this long after exec: give up */
#define PENDING_NO_INTERP_NS	10000000000ULL	/* no initialised interpreter this long: give up */
#define MAX_UNTRACED		256		/* untraced descendants listed; more are counted */

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Has @pid exited (gone, or a zombie)? */
static int target_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int gone = 1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 1;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		gone = p && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return gone;
}

/* The parent of @pid from /proc (0 if gone). */
static uint32_t read_ppid(pid_t pid)
{
	char path[64], buf[512], *p;
	unsigned int ppid = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		if (!p || sscanf(p + 1, " %*c %u", &ppid) != 1)
			ppid = 0;
	}
	fclose(f);
	return ppid;
}

/* The program @pid runs now (malloc'ed), or NULL. */
static char *exe_of(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	return strdup(buf);
}

/*
 * A loop thread that has not come back to its poll wait for alert_ns is
 * stalled right now: say so on stderr, with where it is stuck, while it is
 * stuck.  Once per stall.
 */
struct alerts {
	uint32_t tid[64];
	uint64_t announced[64];		/* iter_start of the stall announced */
	int n;
};

/* One traced process. */
struct tproc {
	struct pyproc *p;
	struct analyze an;
	struct report rep;		/* built when it exits, or at the end */
	struct alerts al;
	uint32_t ppid;			/* 0 for the root */
	char *cmdline;			/* read when it was found: an exited process has none */
	bool live;			/* traced now */
	bool reported;
	bool execd;			/* ended by an exec, not an exit */
};

/* A descendant that exec'd: waiting for its interpreter. */
struct pending {
	uint32_t pid, ppid;
	uint64_t since_ns;
	char exe[256];			/* read at exec: a process that exited has none */
	char why[256];			/* the last reason it could not be traced */
};

struct trace_session {
	const struct trace_opts *o;
	struct tracer *tr;
	struct tproc **procs;		/* procs[0]: the root */
	size_t nr_procs, cap_procs;
	struct pending *pend;
	size_t nr_pend, cap_pend;
	struct ht_event *q;		/* process events, handled after each poll */
	size_t nr_q, cap_q;
	struct runtraced *untraced;
	size_t nr_untraced, untraced_dropped;
	unsigned int rounds;
	bool started;			/* attached: trace__finish may run */
	uint64_t start_mono_ns;		/* when it was attached (the root's analysis goes at its exit) */
	/* for the status line: counted as events arrive */
	uint64_t events;
	uint64_t stalls;
	uint64_t longest_stall_ns;
};

static struct tproc *find_live(struct trace_session *s, uint32_t pid)
{
	for (size_t i = 0; i < s->nr_procs; i++)
		if (s->procs[i]->live && (uint32_t)s->procs[i]->p->pid == pid)
			return s->procs[i];
	return NULL;
}

static struct pending *find_pending(struct trace_session *s, uint32_t pid)
{
	for (size_t i = 0; i < s->nr_pend; i++)
		if (s->pend[i].pid == pid)
			return &s->pend[i];
	return NULL;
}

static void drop_pending(struct trace_session *s, struct pending *pd)
{
	*pd = s->pend[--s->nr_pend];
}

static void add_untraced(struct trace_session *s, uint32_t pid, uint32_t ppid, const char *exe,
			 const char *why)
{
	struct runtraced *u;

	/* log.c escapes the names in @why (utf8_put_clean()) */
	p_info("not tracing descendant process %u (parent %u): %s", pid, ppid, why);
	if (s->nr_untraced == MAX_UNTRACED) {
		s->untraced_dropped++;
		return;
	}
	if (!s->untraced) {
		s->untraced = calloc(MAX_UNTRACED, sizeof(*s->untraced));
		if (!s->untraced)
			return;
	}
	u = &s->untraced[s->nr_untraced++];
	u->pid = pid;
	u->ppid = ppid;
	u->exe = exe && exe[0] ? strdup(exe) : NULL;
	u->why = strdup(why);
}

/* Start the analysis of process @p (taken over) with parent @ppid.  NULL and -errno in *@err. */
static struct tproc *tproc_new(struct trace_session *s, struct pyproc *p, uint32_t ppid, int *err)
{
	const struct trace_opts *o = s->o;
	struct tproc *tp, **np;

	if (s->nr_procs == s->cap_procs) {
		size_t cap = s->cap_procs ? s->cap_procs * 2 : 8;

		np = realloc(s->procs, cap * sizeof(*np));
		if (!np) {
			*err = -ENOMEM;
			free(p);
			return NULL;
		}
		s->procs = np;
		s->cap_procs = cap;
	}
	tp = calloc(1, sizeof(*tp));
	if (!tp) {
		*err = -ENOMEM;
		free(p);
		return NULL;
	}
	tp->p = p;
	tp->ppid = ppid;
	*err = analyze__init(&tp->an, p, s->tr);
	if (*err) {
		analyze__fini(&tp->an);
		free(p);
		free(tp);
		return NULL;
	}
	tp->an.min_block_ns = o->min_block_ns;
	tp->an.max_frames = o->max_frames;
	pysym__set_max(tp->an.sym, o->max_symbols);
	tp->an.stall_ns = o->stall_ns ? o->stall_ns : 100000000ULL;
	tp->an.loop_tid = o->loop_tid;
	tp->an.sample_hz = o->sample_hz;
	tp->an.start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	tp->an.start_unix_ns = clock_ns(CLOCK_REALTIME);
	tp->cmdline = procthread__cmdline(p->pid);
	tp->live = true;
	s->procs[s->nr_procs++] = tp;
	return tp;
}

/* Build @tp's report now (it exited, or the window closed), then let it go. */
static void tproc_finish(struct trace_session *s, struct tproc *tp, bool exited)
{
	int err;

	if (!tp->live)
		return;
	tp->live = false;
	/* `run`'s command ending is how tracing normally ends: no warning */
	if (exited && tp == s->procs[0] && !tp->execd && !s->o->child_status)
		p_warn("process %d exited during tracing; reporting what was collected%s",
		       tp->p->pid, s->o->children ? " (its descendants are still traced)" : "");
	tp->an.target_exited = exited;
	err = analyze__report(&tp->an, &tp->rep);
	if (pysym__cap_hits(tp->an.sym))
		p_warn("process %d: more than %u code objects (--max-symbols): %llu frames were "
		       "read again at each use, not cached", tp->p->pid, s->o->max_symbols,
		       (unsigned long long)pysym__cap_hits(tp->an.sym));
	if (err) {
		p_warn("building the report of process %d failed: %s", tp->p->pid, strerror(-err));
	} else {
		tp->reported = true;
		tp->rep.ppid = tp->ppid;
		if (!tp->rep.cmdline && tp->cmdline)
			tp->rep.cmdline = strdup(tp->cmdline);
	}
	/* its memory reader and symbol cache go; the report keeps what it needs */
	analyze__fini(&tp->an);
	if (exited)
		tracer__remove_process(s->tr, tp->p->pid);
}

/* Forget @tp (not procs[0]): it has nothing to report. */
static void tproc_drop(struct trace_session *s, struct tproc *tp)
{
	size_t i;

	for (i = 1; i < s->nr_procs && s->procs[i] != tp; i++)
		;
	if (i == s->nr_procs)
		return;
	memmove(&s->procs[i], &s->procs[i + 1], (s->nr_procs - i - 1) * sizeof(*s->procs));
	s->nr_procs--;
	analyze__fini(&tp->an);
	report__free(&tp->rep);
	free(tp->cmdline);
	free(tp->p);
	free(tp);
}

static void add_pending(struct trace_session *s, uint32_t pid, uint32_t ppid)
{
	struct pending *pd = find_pending(s, pid), *np;
	char path[64];
	ssize_t n;

	if (!pd) {
		if (s->nr_pend == s->cap_pend) {
			size_t cap = s->cap_pend ? s->cap_pend * 2 : 16;

			np = realloc(s->pend, cap * sizeof(*np));
			if (!np)
				return;
			s->pend = np;
			s->cap_pend = cap;
		}
		pd = &s->pend[s->nr_pend++];
	}
	memset(pd, 0, sizeof(*pd));
	pd->pid = pid;
	pd->ppid = ppid ? ppid : read_ppid(pid);
	pd->since_ns = clock_ns(CLOCK_MONOTONIC);
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	n = readlink(path, pd->exe, sizeof(pd->exe) - 1);
	pd->exe[n > 0 ? n : 0] = '\0';
}

/*
 * --children at attach: the descendants that already run are followed and
 * found like exec'd ones (depth first; bounded, a hostile tree cannot make
 * us loop).
 */
static void add_existing_descendants(struct trace_session *s, uint32_t pid, int depth)
{
	char path[96], tids[64][16];
	struct dirent *de;
	unsigned int kid;
	int nt = 0, off, n;
	FILE *f;
	DIR *d;

	if (depth > 64)
		return;
	snprintf(path, sizeof(path), "/proc/%u/task", pid);
	d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) && nt < 64)
		if (de->d_name[0] >= '0' && de->d_name[0] <= '9')
			snprintf(tids[nt++], sizeof(tids[0]), "%.15s", de->d_name);
	closedir(d);
	for (int i = 0; i < nt; i++) {
		char buf[4096];

		snprintf(path, sizeof(path), "/proc/%u/task/%.15s/children", pid, tids[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n > 0 ? n : 0] = '\0';
		for (char *p = buf; sscanf(p, "%u%n", &kid, &off) == 1; p += off) {
			tracer__follow(s->tr, kid);
			add_pending(s, kid, pid);
			add_existing_descendants(s, kid, depth + 1);
		}
	}
}

static void on_event(const struct ht_event *e, void *ctx)
{
	struct trace_session *s = ctx;
	struct tproc *tp = find_live(s, e->key.pid);

	s->events++;
	if (!tp)
		return;
	if (e->type == HT_EV_STALL) {
		s->stalls++;
		if (e->dur_ns > s->longest_stall_ns)
			s->longest_stall_ns = e->dur_ns;
	}
	analyze__on_event(&tp->an, e);
}

/* Forks, execs and exits are handled after the poll, in order. */
static void on_process(const struct ht_event *e, void *ctx)
{
	struct trace_session *s = ctx;
	struct ht_event *nq;

	if (s->nr_q == s->cap_q) {
		size_t cap = s->cap_q ? s->cap_q * 2 : 64;

		nq = realloc(s->q, cap * sizeof(*nq));
		if (!nq) {
			p_warn("out of memory: lost a process event");
			return;
		}
		s->q = nq;
		s->cap_q = cap;
	}
	s->q[s->nr_q++] = *e;
}

static void on_proc_fork(struct trace_session *s, const struct ht_event *e)
{
	uint32_t pid = e->key.pid, ppid = e->wk_pid;
	struct tproc *parent = find_live(s, ppid), *tp;
	struct pyproc *p;
	int err;

	if (!(e->wk_flags & HT_FORK_TRACED)) {
		/* a copy of a process not traced (yet): it may exec a python */
		if (find_pending(s, ppid))
			add_pending(s, pid, ppid);
		return;
	}
	if (!parent) {
		/* traced by BPF from a parent we no longer analyze: find it again */
		tracer__remove_process(s->tr, pid);
		tracer__follow(s->tr, pid);
		add_pending(s, pid, ppid);
		return;
	}
	/* a fork keeps its parent's interpreter, layout and addresses */
	p = malloc(sizeof(*p));
	if (!p)
		return;
	*p = *parent->p;
	p->pid = pid;
	tp = tproc_new(s, p, ppid, &err);
	if (!tp) {
		p_dbg("forked child %u of %u: %s", pid, ppid, strerror(-err));
		tracer__remove_process(s->tr, pid);
		return;
	}
	p_info("tracing child process %u of %u (forked, Python %s)", pid, ppid, tp->p->version);
}

static void on_proc_exec(struct trace_session *s, const struct ht_event *e)
{
	uint32_t pid = e->key.pid, ppid = 0;
	struct tproc *tp = find_live(s, pid);

	if (tp) {
		ppid = tp->ppid;
		if (tp == s->procs[0]) {
			/* the target itself exec'd: its report ends here (target.exec_into) */
			tp->an.exec_into = exe_of(pid);
			p_warn("process %u exec'd %s during tracing; reporting what was collected", pid,
			       tp->an.exec_into ? tp->an.exec_into : "another program");
			tp->execd = true;
			/* analysed as gone (its threads now run another program), but it did not exit */
			tproc_finish(s, tp, true);
			tp->rep.target_exited = false;
		} else {
			/* a fork that exec'd (spawn, subprocess): the old image is not worth a report */
			tracer__remove_process(s->tr, pid);
			tproc_drop(s, tp);
		}
	}
	if (!s->o->children)
		return;
	tracer__follow(s->tr, pid);	/* removal forgot it: its own children still count */
	add_pending(s, pid, ppid);
}

static void on_proc_exit(struct trace_session *s, const struct ht_event *e)
{
	uint32_t pid = e->key.pid;
	struct tproc *tp = find_live(s, pid);
	struct pending *pd = find_pending(s, pid);

	if (tp)
		tproc_finish(s, tp, true);
	if (pd) {
		add_untraced(s, pid, pd->ppid, pd->exe, pd->why[0] ? pd->why :
				"exited before its interpreter was initialised");
		drop_pending(s, pd);
	}
}

static void handle_process_events(struct trace_session *s)
{
	for (size_t i = 0; i < s->nr_q; i++) {
		switch (s->q[i].type) {
		case HT_EV_FORK:
			on_proc_fork(s, &s->q[i]);
			break;
		case HT_EV_EXEC:
			on_proc_exec(s, &s->q[i]);
			break;
		case HT_EV_EXIT:
			on_proc_exit(s, &s->q[i]);
			break;
		default:
			break;
		}
	}
	s->nr_q = 0;
}

/* Is the interpreter of @p initialised (an interpreter in the list, and its GIL found)? */
static bool interp_ready(const struct pyproc *p)
{
	struct procmem *m = procmem__open(p->pid);
	uint64_t head = 0;
	bool ready;

	if (!m)
		return false;
	ready = !procmem__read_u64(m, p->interp_head_addr, &head) && head;
	procmem__close(m);
	/* 3.12+ find the GIL through the interpreter: no GIL yet, not ready */
	return ready && (p->minor < 12 || p->gil_addr);
}

/* Try the exec'd descendants again: trace those whose CPython is ready. */
static void process_pending(struct trace_session *s, uint64_t now)
{
	struct pyproc *p;
	struct tproc *tp;
	size_t i = 0;
	int err;

	while (i < s->nr_pend) {
		struct pending *pd = &s->pend[i];
		uint64_t age = now - pd->since_ns;

		p = calloc(1, sizeof(*p));
		if (!p)
			return;
		err = pyproc__discover(pd->pid, p, pd->why, sizeof(pd->why));
		if (!err && !interp_ready(p)) {
			snprintf(pd->why, sizeof(pd->why), "Python %s never finished initialising",
				 p->version);
			err = -EAGAIN;
		}
		if (err == -ESRCH) {
			/* gone: its exit event says more, or nothing if it never was Python */
			free(p);
			drop_pending(s, pd);
			continue;
		}
		if ((err == -EAGAIN && age < PENDING_NO_INTERP_NS) ||
		    (err == -ENOEXEC && age < PENDING_NOT_PYTHON_NS)) {
			/* too young: its interpreter is not mapped or not initialised yet */
			free(p);
			i++;
			continue;
		}
		if (err) {
			free(p);
			add_untraced(s, pd->pid, pd->ppid, pd->exe, pd->why);
			drop_pending(s, pd);
			continue;
		}
		tp = tproc_new(s, p, pd->ppid, &err);
		if (!tp) {
			snprintf(pd->why, sizeof(pd->why), "cannot read it: %s", strerror(-err));
			add_untraced(s, pd->pid, pd->ppid, pd->exe, pd->why);
			drop_pending(s, pd);
			continue;
		}
		err = tracer__add_process(s->tr, tp->p);
		if (err) {
			snprintf(pd->why, sizeof(pd->why), "unusable interpreter layout (%s)",
				 strerror(-err));
			tproc_drop(s, tp);
			add_untraced(s, pd->pid, pd->ppid, pd->exe, pd->why);
		} else {
			p_info("tracing child process %u of %u (found, Python %s)", pd->pid, pd->ppid,
			       tp->p->version);
		}
		drop_pending(s, pd);
	}
}

static void check_live_stalls(struct tproc *tp, struct tracer *tr, const struct trace_opts *o,
			      uint64_t now)
{
	struct alerts *al = &tp->al;
	struct ht_thread t;
	int i;

	for (i = 0; i < al->n; i++) {
		if (tracer__thread(tr, al->tid[i], &t) || t.in_poll || !t.iter_start ||
		    now < t.iter_start + o->alert_ns || al->announced[i] == t.iter_start)
			continue;
		al->announced[i] = t.iter_start;
		progress__erase();
		analyze__announce_stall(&tp->an, al->tid[i], (now - t.iter_start) / 1e9, stderr);
	}
}

/*
 * `run`: has the command (procs[0], our child) exited?  It is reaped here,
 * its wait status stored in *child_status; a stop is handed to
 * child_stopped (which may call trace__sync).
 */
static void reap_child(struct trace_session *s)
{
	const struct trace_opts *o = s->o;
	pid_t pid = s->procs[0]->p->pid;
	int st;

	if (*o->child_status != -1)
		return;
	if (waitpid(pid, &st, WNOHANG | (o->child_stopped ? WUNTRACED : 0)) != pid)
		return;
	if (WIFSTOPPED(st)) {
		o->child_stopped(s, st, o->child_ctx);
		return;
	}
	*o->child_status = st;
	/* its exit event may still be in the ring buffer: read it (and what came before) first */
	tracer__poll(s->tr, 0);
	handle_process_events(s);
	tproc_finish(s, s->procs[0], true);
}

/* After each poll: process events, descendants, live stalls, exits.  false: stop tracing. */
static bool session_round(struct trace_session *s)
{
	const struct trace_opts *o = s->o;
	bool any_live = false;
	size_t i;

	if (o->child_status)
		reap_child(s);
	handle_process_events(s);
	if (s->nr_pend)
		process_pending(s, clock_ns(CLOCK_MONOTONIC));
	/* name descendants' sampled stacks while they live: twice a second */
	if (o->children && o->sample_hz && s->rounds % 5 == 0) {
		struct ht_oncpu_key *keys;
		size_t n;

		if (!tracer__oncpu_keys(s->tr, &keys, &n)) {
			for (i = 0; i < s->nr_procs; i++)
				if (s->procs[i]->live)
					analyze__prime(&s->procs[i]->an, NULL, 0, keys, n);
			free(keys);
		}
	}
	for (i = 0; i < s->nr_procs; i++) {
		struct tproc *tp = s->procs[i];

		if (!tp->live)
			continue;
		analyze__tick(&tp->an);	/* until asyncio is loaded (3.14+) */
		if (o->alert_ns) {
			/* which threads are loops: rescan twice a second */
			if (s->rounds % 5 == 0) {
				tp->al.n = tracer__loop_threads(s->tr, tp->p->pid, o->loop_tid,
								tp->al.tid, 64);
				memset(tp->al.announced + tp->al.n, 0,
				       sizeof(tp->al.announced) - tp->al.n * sizeof(tp->al.announced[0]));
			}
			check_live_stalls(tp, s->tr, o, clock_ns(CLOCK_MONOTONIC));
		}
		/*
		 * an exit event lost (ring buffer full) must not keep a process
		 * forever; `run`'s command is reaped above instead
		 */
		if (!(o->child_status && tp == s->procs[0]) && target_gone(tp->p->pid)) {
			tproc_finish(s, tp, true);
			continue;
		}
		any_live = true;
	}
	s->rounds++;
	return any_live || s->nr_pend;
}

static void session_free(struct trace_session *s)
{
	for (size_t i = 0; i < s->nr_procs; i++) {
		struct tproc *tp = s->procs[i];

		analyze__fini(&tp->an);
		report__free(&tp->rep);
		free(tp->cmdline);
		free(tp->p);
		free(tp);
	}
	free(s->procs);
	free(s->pend);
	free(s->q);
	for (size_t i = 0; i < s->nr_untraced; i++) {
		free(s->untraced[i].exe);
		free(s->untraced[i].why);
	}
	free(s->untraced);
}

/* The root's report with its descendants' in it; the session keeps nothing. */
static int assemble(struct trace_session *s, struct report *rep)
{
	struct tproc *root = s->procs[0];
	size_t i, n = 0;

	if (!root->reported)
		return -EIO;
	*rep = root->rep;
	memset(&root->rep, 0, sizeof(root->rep));
	root->reported = false;
	for (i = 1; i < s->nr_procs; i++)
		n += s->procs[i]->reported;
	if (n) {
		rep->children = calloc(n, sizeof(*rep->children));
		if (!rep->children)
			return -ENOMEM;
	}
	for (i = 1; i < s->nr_procs; i++) {
		struct tproc *tp = s->procs[i];

		if (!tp->reported)
			continue;
		rep->children[rep->nr_children++] = tp->rep;
		memset(&tp->rep, 0, sizeof(tp->rep));
		tp->reported = false;
	}
	rep->untraced = s->untraced;
	rep->nr_untraced = s->nr_untraced;
	rep->untraced_dropped = s->untraced_dropped;
	s->untraced = NULL;
	s->nr_untraced = 0;
	return 0;
}

static int apply_focus(const char *pattern, struct report *rep)
{
	regex_t re;
	int err;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB)) {
		p_err("invalid --focus regular expression '%s'", pattern);
		return -EINVAL;
	}
	err = report__focus(rep, &re, pattern);
	regfree(&re);
	return err;
}

struct trace_session *trace__open(const struct trace_opts *opts)
{
	struct tracer_opts topts = {};
	struct trace_session *s;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s) {
		p_err("out of memory");
		errno = ENOMEM;
		return NULL;
	}
	s->o = opts;
	/* Load the BPF programs (nothing attached yet) */
	topts.min_block_ns = opts->min_block_ns;
	topts.max_frames = opts->max_frames;
	topts.max_stacks = opts->max_stacks;
	topts.max_aggregates = opts->max_aggregates;
	topts.stall_ns = opts->stall_ns ? opts->stall_ns : 100000000ULL;
	topts.loop_tid = opts->loop_tid;
	topts.sample_hz = opts->sample_hz;
	topts.on_event = on_event;
	topts.on_process = on_process;
	topts.ctx = s;
	s->tr = tracer__new(&topts);
	if (!s->tr) {
		err = errno;
		free(s);
		errno = err;
		return NULL;
	}
	return s;
}

int trace__start(struct trace_session *s, const struct pyproc *p)
{
	const struct trace_opts *opts = s->o;
	struct pyproc *rootp;
	struct tproc *root;
	int err;

	if (s->nr_procs)
		return -EBUSY;
	/* Tell the BPF programs about the target */
	rootp = malloc(sizeof(*rootp));
	if (!rootp) {
		p_err("out of memory");
		return -ENOMEM;
	}
	*rootp = *p;
	root = tproc_new(s, rootp, 0, &err);
	if (!root) {
		if (target_gone(p->pid))
			p_err("process %d exited before tracing could start", p->pid);
		else
			p_err("cannot read process %d: %s", p->pid, strerror(-err));
		return err;
	}
	err = tracer__add_process(s->tr, p);
	if (err) {
		if (target_gone(p->pid))
			p_err("process %d exited before tracing could start", p->pid);
		else
			p_err("cannot trace process %d: unusable interpreter layout (%s)", p->pid,
			      strerror(-err));
		return err;
	}
	if (opts->children) {
		err = tracer__follow(s->tr, p->pid);
		if (err) {
			p_err("cannot follow the children of process %d: %s", p->pid, strerror(-err));
			return err;
		}
	}
	/* asyncio's task layout (3.14+), if the module is loaded already */
	analyze__tick(&root->an);

	/* Attach */
	err = tracer__attach(s->tr);
	if (err)
		return err;
	s->started = true;
	if (opts->children)
		add_existing_descendants(s, p->pid, 0);
	root->an.start_mono_ns = s->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	root->an.start_unix_ns = clock_ns(CLOCK_REALTIME);
	/* Scripts (and the tests) wait for this line: tracing is live from here. */
	if (!opts->quiet)
		fprintf(stderr, "hangtrace: tracing process %d (Python %s)%s%s\n", p->pid, p->version,
			opts->children ? " and its descendants" : "",
			opts->duration_ns || opts->child_status ? "" : ", Ctrl-C to stop");
	return 0;
}

static void show_progress(struct trace_session *s, uint64_t now)
{
	struct progress_counts c = {};
	struct ht_stats st;

	tracer__stats(s->tr, &st);
	c.elapsed_ns = now - s->start_mono_ns;
	c.stalls = s->stalls;
	c.longest_stall_ns = s->longest_stall_ns;
	c.events = s->events;
	c.lost = st.ringbuf_full + st.samples_lost + st.agg_full + st.stacks_full + st.threads_full;
	progress__show(&c);
}

void trace__sync(struct trace_session *s)
{
	struct tracer_snapshot snap;

	tracer__poll(s->tr, 0);
	handle_process_events(s);
	if (tracer__snapshot(s->tr, &snap))
		return;
	for (size_t i = 0; i < s->nr_procs; i++)
		if (s->procs[i]->live)
			analyze__prime(&s->procs[i]->an, snap.keys, snap.nr_aggs, snap.oncpu_keys,
				       snap.nr_oncpu);
	tracer_snapshot__free(&snap);
}

int trace__finish(struct trace_session *s, struct report *rep)
{
	const struct trace_opts *opts = s->o;
	uint64_t deadline, last_progress = 0;
	int err = 0;

	memset(rep, 0, sizeof(*rep));
	if (!s->started)
		return -EINVAL;
	deadline = opts->duration_ns ? s->start_mono_ns + opts->duration_ns : 0;
	if (opts->progress)
		progress__enable();	/* draws nothing unless stderr is a terminal */

	while (!*opts->stop) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		int wait_ms = s->nr_pend ? 20 : 100;	/* find exec'd children early */

		if (deadline) {
			if (now >= deadline)
				break;
			if (deadline - now < (uint64_t)wait_ms * 1000000ULL)
				wait_ms = (deadline - now) / 1000000 + 1;
		}
		if (now >= last_progress + 250000000ULL) {
			show_progress(s, now);
			last_progress = now;
		}
		err = tracer__poll(s->tr, wait_ms);
		if (err < 0) {
			p_err("reading events failed: %s", strerror(-err));
			goto out;
		}
		err = 0;
		if (!session_round(s))
			break;	/* nothing left to trace */
	}
	/* Drain what is left, then build the reports and stop collecting */
	progress__disable();
	tracer__poll(s->tr, 0);
	handle_process_events(s);
	for (size_t i = 0; i < s->nr_procs; i++)
		tproc_finish(s, s->procs[i], false);
	tracer__detach(s->tr);
	err = assemble(s, rep);
	if (!err && opts->focus)
		err = apply_focus(opts->focus, rep);
	if (err)
		p_err("building the report failed: %s", strerror(-err));
out:
	progress__disable();
	return err;
}

void trace__close(struct trace_session *s)
{
	if (!s)
		return;
	session_free(s);
	tracer__free(s->tr);
	free(s);
}

int trace__run(const struct pyproc *p, const struct trace_opts *opts, struct report *rep)
{
	struct trace_session *s;
	int err;

	memset(rep, 0, sizeof(*rep));
	s = trace__open(opts);
	if (!s)
		return -errno;
	err = trace__start(s, p);
	if (!err)
		err = trace__finish(s, rep);
	trace__close(s);
	return err;
}
