// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "analyze.h"
#include "log.h"
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
		analyze__announce_stall(an, al->tid[i], (now - t.iter_start) / 1e9, stderr);
	}
}


static void on_event(const struct ht_event *e, void *ctx)
{
	analyze__on_event(ctx, e);
}

int trace__run(const struct pyproc *p, const struct trace_opts *opts, struct report *rep)
{
	struct tracer_opts topts = {};
	struct alerts al = {};
	struct analyze an = {};
	unsigned int rounds = 0;
	struct tracer *tr = NULL;
	uint64_t start, deadline;
	int err;

	/* Load the BPF programs and tell them about the target */
	topts.min_block_ns = opts->min_block_ns;
	topts.max_frames = opts->max_frames;
	topts.stall_ns = opts->stall_ns ? opts->stall_ns : 100000000ULL;
	topts.loop_tid = opts->loop_tid;
	topts.sample_hz = opts->sample_hz;
	topts.on_event = on_event;
	topts.ctx = &an;
	tr = tracer__new(&topts);
	if (!tr)
		return -errno;
	err = analyze__init(&an, p, tr);
	if (err) {
		if (target_gone(p->pid))
			p_err("process %d exited before tracing could start", p->pid);
		else
			p_err("cannot read process %d: %s", p->pid, strerror(-err));
		goto cleanup;
	}
	an.min_block_ns = opts->min_block_ns;
	an.max_frames = opts->max_frames;
	an.stall_ns = topts.stall_ns;
	an.loop_tid = opts->loop_tid;
	an.sample_hz = opts->sample_hz;
	err = tracer__add_process(tr, p);
	if (err) {
		p_err("cannot trace process %d: unusable interpreter layout (%s)", p->pid,
		      strerror(-err));
		goto cleanup;
	}

	/* Attach and trace */
	err = tracer__attach(tr);
	if (err)
		goto cleanup;
	an.start_mono_ns = start = clock_ns(CLOCK_MONOTONIC);
	an.start_unix_ns = clock_ns(CLOCK_REALTIME);
	deadline = opts->duration_ns ? start + opts->duration_ns : 0;
	/* Scripts (and the tests) wait for this line: tracing is live from here. */
	if (!opts->quiet)
		fprintf(stderr, "hangtrace: tracing process %d (Python %s)%s\n", p->pid, p->version,
			opts->duration_ns ? "" : ", Ctrl-C to stop");

	while (!*opts->stop) {
		int wait_ms = 100;

		if (deadline) {
			uint64_t now = clock_ns(CLOCK_MONOTONIC);

			if (now >= deadline)
				break;
			if (deadline - now < 100000000ULL)
				wait_ms = (deadline - now) / 1000000 + 1;
		}
		err = tracer__poll(tr, wait_ms);
		if (err < 0) {
			p_err("reading events failed: %s", strerror(-err));
			goto cleanup;
		}
		err = 0;
		if (opts->alert_ns) {
			/* which threads are loops: rescan twice a second */
			if (rounds++ % 5 == 0) {
				al.n = tracer__loop_threads(tr, p->pid, opts->loop_tid, al.tid, 64);
				memset(al.announced + al.n, 0, sizeof(al.announced) - al.n * sizeof(al.announced[0]));
			}
			check_live_stalls(&an, tr, opts, &al, clock_ns(CLOCK_MONOTONIC));
		}
		if (tracer__execed(tr, p->pid)) {
			an.exec_into = exe_of(p->pid);
			p_warn("process %d exec'd %s during tracing; reporting what was collected",
			       p->pid, an.exec_into ? an.exec_into : "another program");
			break;
		}
		if (target_gone(p->pid)) {
			an.target_exited = true;
			p_warn("process %d exited during tracing; reporting what was collected", p->pid);
			break;
		}
	}
	/* Drain what is left, then build the report and stop collecting */
	tracer__poll(tr, 0);
	err = analyze__report(&an, rep);
	tracer__detach(tr);
	if (err)
		p_err("building the report failed: %s", strerror(-err));

cleanup:
	analyze__fini(&an);
	tracer__free(tr);
	return err;
}
