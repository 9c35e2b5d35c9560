// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "analyze.h"
#include "log.h"
#include "progress.h"
#include "pyproc.h"
#include "report.h"
#include "trace.h"
#include "tracer.h"

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

static void check_live_stalls(struct analyze *an, struct tracer *tr, const struct trace_opts *o,
			      struct alerts *al, uint64_t now)
{
	struct ht_thread t;
	int i;

	for (i = 0; i < al->n; i++) {
		if (tracer__thread(tr, al->tid[i], &t) || t.in_poll || !t.iter_start ||
		    now < t.iter_start + o->alert_ns || al->announced[i] == t.iter_start)
			continue;
		al->announced[i] = t.iter_start;
		progress__erase();
		analyze__announce_stall(an, al->tid[i], (now - t.iter_start) / 1e9, stderr);
	}
}


struct trace_session {
	const struct trace_opts *opts;
	const struct pyproc *p;
	struct tracer *tr;
	struct analyze an;
	bool started;
	/* for the status line: counted as events arrive */
	uint64_t events;
	uint64_t stalls;
	uint64_t longest_stall_ns;
};

static void on_event(const struct ht_event *e, void *ctx)
{
	struct trace_session *s = ctx;

	s->events++;
	if (e->type == HT_EV_STALL && s->p && e->key.pid == (__u32)s->p->pid) {
		s->stalls++;
		if (e->dur_ns > s->longest_stall_ns)
			s->longest_stall_ns = e->dur_ns;
	}
	analyze__on_event(&s->an, e);
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
	s->opts = opts;
	topts.min_block_ns = opts->min_block_ns;
	topts.max_frames = opts->max_frames;
	topts.stall_ns = opts->stall_ns ? opts->stall_ns : 100000000ULL;
	topts.loop_tid = opts->loop_tid;
	topts.sample_hz = opts->sample_hz;
	topts.on_event = on_event;
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
	const struct trace_opts *opts = s->opts;
	struct analyze *an = &s->an;
	int err;

	/* Tell the BPF programs about the target */
	s->p = p;
	err = analyze__init(an, p, s->tr);
	if (err) {
		p_err("cannot read process %d: %s", p->pid, strerror(-err));
		return err;
	}
	an->min_block_ns = opts->min_block_ns;
	an->max_frames = opts->max_frames;
	an->stall_ns = opts->stall_ns ? opts->stall_ns : 100000000ULL;
	an->loop_tid = opts->loop_tid;
	an->sample_hz = opts->sample_hz;
	err = tracer__add_process(s->tr, p);
	if (err) {
		p_err("cannot trace process %d: unusable interpreter layout (%s)", p->pid,
		      strerror(-err));
		return err;
	}

	/* Attach */
	err = tracer__attach(s->tr);
	if (err)
		return err;
	s->started = true;
	an->start_mono_ns = clock_ns(CLOCK_MONOTONIC);
	an->start_unix_ns = clock_ns(CLOCK_REALTIME);
	/* Scripts (and the tests) wait for this line: tracing is live from here. */
	if (!opts->quiet)
		fprintf(stderr, "hangtrace: tracing process %d (Python %s)%s\n", p->pid, p->version,
			opts->duration_ns || opts->child_status ? "" : ", Ctrl-C to stop");
	return 0;
}

static void show_progress(struct trace_session *s, uint64_t now)
{
	struct progress_counts c = {};
	struct ht_stats st;

	tracer__stats(s->tr, &st);
	c.elapsed_ns = now - s->an.start_mono_ns;
	c.stalls = s->stalls;
	c.longest_stall_ns = s->longest_stall_ns;
	c.events = s->events;
	c.lost = st.ringbuf_full + st.samples_lost + st.agg_full + st.stacks_full + st.threads_full;
	progress__show(&c);
}

/* Has the target ended?  A child of ours is reaped here. */
static bool target_ended(struct trace_session *s)
{
	const struct trace_opts *opts = s->opts;
	pid_t pid = s->p->pid;
	int st;

	if (!opts->child_status) {
		if (!target_gone(pid))
			return false;
		p_warn("process %d exited during tracing; reporting what was collected", pid);
		return true;
	}
	if (*opts->child_status != -1)
		return true;
	if (waitpid(pid, &st, WNOHANG | (opts->child_stopped ? WUNTRACED : 0)) != pid)
		return false;
	if (WIFSTOPPED(st)) {
		opts->child_stopped(s, st, opts->child_ctx);
		return false;
	}
	*opts->child_status = st;
	return true;
}

void trace__sync(struct trace_session *s)
{
	tracer__poll(s->tr, 0);
	analyze__prime_all(&s->an);
}

int trace__finish(struct trace_session *s, struct report *rep)
{
	const struct trace_opts *opts = s->opts;
	struct tracer *tr = s->tr;
	struct analyze *an = &s->an;
	uint64_t deadline, last_progress = 0;
	unsigned int rounds = 0;
	struct alerts al = {};
	int err = 0;

	if (!s->started)
		return -EINVAL;
	deadline = opts->duration_ns ? an->start_mono_ns + opts->duration_ns : 0;
	if (opts->progress)
		progress__enable();	/* draws nothing unless stderr is a terminal */

	while (!*opts->stop) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		int wait_ms = 100;

		if (deadline) {
			if (now >= deadline)
				break;
			if (deadline - now < 100000000ULL)
				wait_ms = (deadline - now) / 1000000 + 1;
		}
		if (now >= last_progress + 250000000ULL) {
			show_progress(s, now);
			last_progress = now;
		}
		err = tracer__poll(tr, wait_ms);
		if (err < 0) {
			p_err("reading events failed: %s", strerror(-err));
			goto out;
		}
		err = 0;
		if (opts->alert_ns) {
			/* which threads are loops: rescan twice a second */
			if (rounds++ % 5 == 0) {
				al.n = tracer__loop_threads(tr, s->p->pid, opts->loop_tid, al.tid, 64);
				memset(al.announced + al.n, 0, sizeof(al.announced) - al.n * sizeof(al.announced[0]));
			}
			check_live_stalls(an, tr, opts, &al, clock_ns(CLOCK_MONOTONIC));
		}
		if (target_ended(s)) {
			an->target_exited = true;
			break;
		}
	}
	/* Drain what is left, then build the report and stop collecting */
	tracer__poll(tr, 0);
	progress__disable();
	err = analyze__report(an, rep);
	tracer__detach(tr);
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
	analyze__fini(&s->an);
	tracer__free(s->tr);
	free(s);
}

int trace__run(const struct pyproc *p, const struct trace_opts *opts, struct report *rep)
{
	struct trace_session *s;
	int err;

	s = trace__open(opts);
	if (!s)
		return -errno;
	err = trace__start(s, p);
	if (!err)
		err = trace__finish(s, rep);
	trace__close(s);
	return err;
}
