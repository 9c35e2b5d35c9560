// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The tracer's process API against real CPython processes and the real BPF
 * programs: a process added before attach, a child it forks after attach
 * (traced at once, announced by on_process), the child's exit and removal, a
 * process added after attach (its threads seeded), and an exec (the layout
 * dropped, announced).  Runs as root; every process it starts is killed by pid.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "check.h"
#include "hangtrace.h"
#include "pyproc.h"
#include "tracer.h"

#define PYTHON "/usr/bin/python3"

/* Commands on stdin: fork (prints the child's pid), exec; a thread sleeps in the background. */
static const char script[] =
	"import os, signal, sys, threading, time\n"
	"signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n"
	"threading.Thread(target=lambda: time.sleep(3600), daemon=True).start()\n"
	"print('READY', flush=True)\n"
	"for line in sys.stdin:\n"
	"    cmd = line.strip()\n"
	"    if cmd == 'fork':\n"
	"        pid = os.fork()\n"
	"        if pid == 0:\n"
	"            while True:\n"
	"                time.sleep(0.05)\n"
	"        print(pid, flush=True)\n"
	"    elif cmd == 'exec':\n"
	"        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(3600)'])\n";

struct child {
	pid_t pid;
	FILE *in, *out;
};

static int spawn(struct child *c)
{
	int in[2], out[2];

	if (pipe(in) || pipe(out))
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(PYTHON, PYTHON, "-c", script, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = fdopen(in[1], "w");
	c->out = fdopen(out[0], "r");
	return c->in && c->out ? 0 : -1;
}

static int read_line(struct child *c, char *buf, size_t len)
{
	return fgets(buf, len, c->out) ? 0 : -1;
}

static void kill_child(struct child *c)
{
	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	if (c->in)
		fclose(c->in);
	if (c->out)
		fclose(c->out);
	memset(c, 0, sizeof(*c));
}

struct seen {
	struct ht_event ev[64];
	int n;
};

static void on_process(const struct ht_event *e, void *ctx)
{
	struct seen *s = ctx;

	if (s->n < 64)
		s->ev[s->n++] = *e;
}

/* Poll until an event of @type for @pid arrives (2 s at most); the event or NULL. */
static const struct ht_event *wait_event(struct tracer *tr, struct seen *s, __u32 type, __u32 pid)
{
	for (int round = 0; round < 40; round++) {
		for (int i = 0; i < s->n; i++)
			if (s->ev[i].type == type && s->ev[i].key.pid == pid)
				return &s->ev[i];
		tracer__poll(tr, 50);
	}
	return NULL;
}

static size_t count_pid(const struct tracer_snapshot *snap, __u32 pid)
{
	size_t n = 0, i;

	for (i = 0; i < snap->nr_threads; i++)
		n += snap->threads[i].pid == pid;
	for (i = 0; i < snap->nr_aggs; i++)
		n += snap->keys[i].pid == pid;
	return n;
}

/* Every thread of @pid has an entry. */
static int all_threads_seeded(struct tracer *tr, pid_t pid)
{
	struct ht_thread t;
	struct dirent *de;
	char path[64];
	int missing = 0, n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		n++;
		if (tracer__thread(tr, strtoul(de->d_name, NULL, 10), &t) || t.pid != (__u32)pid)
			missing++;
	}
	closedir(d);
	return n >= 2 && !missing;
}

int main(void)
{
	struct tracer_opts opts = { .min_block_ns = 1000000, .on_process = on_process };
	struct child a = {}, b = {};
	struct pyproc pa, pb;
	struct tracer_snapshot snap;
	const struct ht_event *e;
	struct tracer *tr = NULL;
	struct ht_thread t;
	struct seen seen = {};
	char line[64], why[256];
	pid_t kid = 0;

	if (geteuid() != 0) {
		printf("skipped: needs root (BPF)\n");
		return 0;
	}
	if (access(PYTHON, X_OK)) {
		printf("skipped: no %s\n", PYTHON);
		return 0;
	}
	opts.ctx = &seen;
	CHECK(spawn(&a) == 0 && read_line(&a, line, sizeof(line)) == 0, "start python");
	CHECK(pyproc__discover(a.pid, &pa, why, sizeof(why)) == 0, "discover: %s", why);

	/* added and followed before attach */
	tr = tracer__new(&opts);
	CHECK(tr != NULL, "tracer__new: %s", strerror(errno));
	if (!tr)
		goto out;
	CHECK(tracer__add_process(tr, &pa) == 0, "add before attach");
	CHECK(tracer__follow(tr, a.pid) == 0, "follow");
	CHECK(tracer__attach(tr) == 0, "attach");
	CHECK(all_threads_seeded(tr, a.pid), "threads of a process added before attach seeded");

	/* a child forked after attach is traced at once, with its parent's layout */
	fputs("fork\n", a.in);
	fflush(a.in);
	CHECK(read_line(&a, line, sizeof(line)) == 0, "fork");
	kid = atoi(line);
	e = wait_event(tr, &seen, HT_EV_FORK, kid);
	CHECK(e && e->wk_pid == (__u32)a.pid && (e->wk_flags & HT_FORK_TRACED),
	      "HT_EV_FORK for child %d from %d, traced", (int)kid, (int)a.pid);
	CHECK(tracer__thread(tr, kid, &t) == 0 && t.pid == (__u32)kid, "child thread entry");
	usleep(400000);		/* the child sleeps: 50 ms blocks, with its Python stack */
	tracer__poll(tr, 0);
	CHECK(tracer__snapshot(tr, &snap) == 0, "snapshot");
	{
		int stacked = 0;

		for (size_t i = 0; i < snap.nr_aggs; i++)
			if (snap.keys[i].pid == (__u32)kid && snap.keys[i].stack &&
			    snap.keys[i].reason == HT_R_SLEEP)
				stacked = 1;
		CHECK(stacked, "the forked child's sleeps aggregated with a Python stack");
	}
	tracer_snapshot__free(&snap);

	/* its exit is announced; removal forgets it */
	kill(kid, SIGKILL);
	e = wait_event(tr, &seen, HT_EV_EXIT, kid);
	CHECK(e != NULL, "HT_EV_EXIT for child %d", (int)kid);
	CHECK(tracer__remove_process(tr, kid) == 0, "remove the child");
	CHECK(tracer__thread(tr, kid, &t) == -ENOENT, "child thread entry gone");
	CHECK(tracer__snapshot(tr, &snap) == 0 && count_pid(&snap, kid) == 0,
	      "nothing of the child left in the maps");
	tracer_snapshot__free(&snap);
	CHECK(tracer__remove_process(tr, kid) == -ENOENT, "removing twice: -ENOENT");
	CHECK(tracer__thread(tr, a.pid, &t) == 0, "the parent is still traced");

	/* a process added after attach gets its existing threads seeded */
	CHECK(spawn(&b) == 0 && read_line(&b, line, sizeof(line)) == 0, "start second python");
	CHECK(pyproc__discover(b.pid, &pb, why, sizeof(why)) == 0, "discover: %s", why);
	CHECK(tracer__add_process(tr, &pb) == 0, "add after attach");
	CHECK(all_threads_seeded(tr, b.pid), "threads of a process added after attach seeded");

	/* exec drops the layout and the exec'ing thread's entry, and is announced */
	fputs("exec\n", a.in);
	fflush(a.in);
	e = wait_event(tr, &seen, HT_EV_EXEC, a.pid);
	CHECK(e != NULL, "HT_EV_EXEC for %d", (int)a.pid);
	CHECK(tracer__thread(tr, a.pid, &t) == -ENOENT, "exec'd thread entry dropped");

	/* a traced process that is not followed: its exec is announced too */
	fputs("exec\n", b.in);
	fflush(b.in);
	e = wait_event(tr, &seen, HT_EV_EXEC, b.pid);
	CHECK(e != NULL, "HT_EV_EXEC for %d (traced, not followed)", (int)b.pid);

out:
	tracer__free(tr);
	kill_child(&a);
	kill_child(&b);
	if (kid > 0)
		kill(kid, SIGKILL);
	return CHECK_SUMMARY();
}
