// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The diagnosis of `hangtrace dump` on made-up snapshots: which pattern
 * matches, what the message names, what is not called a hang.  (The
 * integration tests run each pattern against real hung processes.)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dump.h"
#include "check.h"
#include "hangtrace.h"
#include "pyproc.h"
#include "reason.h"


#define SEC 1000000000ULL
#define TH "/usr/lib/python3.11/threading.py"
#define APP "/srv/app.py"

static struct pyproc proc = { .minor = 11 };

static struct dump_frame *frames(int n, ...)
{
	struct dump_frame *f = calloc(n, sizeof(*f));
	va_list ap;
	int i;

	va_start(ap, n);
	for (i = 0; i < n; i++) {
		f[i].function = va_arg(ap, const char *);
		f[i].file = va_arg(ap, const char *);
		f[i].line = va_arg(ap, int);
		f[i].code = 0x1000 + i;
	}
	va_end(ap);
	return f;
}

static struct dump_thread *add(struct dump *d, uint32_t tid, char state, long sc, int reason,
			       uint64_t blocked_ns)
{
	struct dump_thread *t = &d->threads[d->nr_threads++];

	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->main = tid == (uint32_t)d->pid;
	snprintf(t->name, sizeof(t->name), "python3");
	t->state = state;
	t->python = true;
	t->w.syscall = sc;
	t->w.reason = reason;
	t->w.fd = -1;
	t->timeout = sc == HT_NR_futex || sc == HT_NR_recvfrom ? 0 : -1;
	t->timeout_left_ns = -1;
	t->blocked_known = state != 'R';
	t->blocked_ns = blocked_ns;
	t->handler_frame = -1;
	return t;
}

static void setup(struct dump *d)
{
	memset(d, 0, sizeof(*d));
	d->pid = 100;
	d->p = &proc;
	d->state = 'S';
	d->threads = calloc(8, sizeof(*d->threads));
}

static void teardown(struct dump *d)
{
	size_t i;

	for (i = 0; i < d->nr_threads; i++)
		free(d->threads[i].frames);
	for (i = 0; i < d->nr_findings; i++)
		free(d->findings[i].message);
	free(d->findings);
	free(d->threads);
}

static const char *first(const struct dump *d)
{
	return d->nr_findings ? d->findings[0].pattern : "(none)";
}

static bool says(const struct dump *d, const char *words)
{
	return d->nr_findings && strstr(d->findings[0].message, words);
}

static void test_healthy(void)
{
	struct dump d;
	struct dump_thread *t;

	setup(&d);
	add(&d, 100, 'S', HT_NR_clock_nanosleep, HT_R_SLEEP, SEC / 100);
	add(&d, 101, 'R', -1, -1, 0);
	t = add(&d, 102, 'S', HT_NR_futex, HT_R_GIL, SEC / 1000);
	t->frames = frames(1, "spin", APP, 5);
	t->depth = 1;
	/* a join that is not stuck yet: 0.3 s is not a hang */
	t = add(&d, 103, 'S', HT_NR_futex, HT_R_LOCK, SEC * 3 / 10);
	t->frames = frames(2, "Thread.join", TH, 1112, "run", APP, 9);
	t->depth = 2;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(d.nr_findings == 0, "healthy: %zu findings, first %s", d.nr_findings, first(&d));
	teardown(&d);
}

static void test_finalization(void)
{
	struct dump d;
	struct dump_thread *m, *w;

	setup(&d);
	m = add(&d, 100, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	m->frames = frames(4, "Thread._wait_for_tstate_lock", TH, 1132, "Thread.join", TH, 1112,
			   "_python_exit", "/usr/lib/python3.11/concurrent/futures/thread.py", 31,
			   "_shutdown", TH, 1553);
	m->depth = 4;
	w = add(&d, 104, 'S', HT_NR_recvfrom, HT_R_SOCKET, 5 * SEC);
	w->frames = frames(3, "fetch", APP, 42, "_WorkItem.run",
			   "/usr/lib/python3.11/concurrent/futures/thread.py", 58, "Thread.run", TH, 975);
	w->depth = 3;
	w->w.fd = 5;
	w->w.fd_desc = strdup("127.0.0.1:80");
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(d.finalizing && !d.finalizing_flag, "finalizing from the stack");
	CHECK(d.shutdown_frame == 2, "the exit handler frame: %d", d.shutdown_frame);
	CHECK(!strcmp(first(&d), "finalization-join"), "finalization: %s", first(&d));
	CHECK(says(&d, "concurrent.futures' exit handler _python_exit, waiting in Thread.join for "
		       "thread 104 \"python3\" (runs fetch), blocked 5.0 s in recvfrom on fd 5 -> "
		       "127.0.0.1:80 (socket, no timeout) at fetch (/srv/app.py:42)"),
	      "message: %s", d.nr_findings ? d.findings[0].message : "");
	CHECK(m->waits_for == 104 && !m->waits_exact, "joined by elimination");
	/* the worker's socket wait is part of this finding: not repeated */
	CHECK(d.nr_findings == 1, "%zu findings", d.nr_findings);
	free(w->w.fd_desc);
	teardown(&d);
}

static void test_not_shutdown_while_main_module_runs(void)
{
	struct dump d;
	struct dump_thread *m, *w;

	setup(&d);
	m = add(&d, 100, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	m->frames = frames(3, "Thread.join", TH, 1112, "main", APP, 30, "<module>", APP, 40);
	m->depth = 3;
	w = add(&d, 101, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	w->frames = frames(2, "Event.wait", TH, 622, "waiter", APP, 12);
	w->depth = 2;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!d.finalizing, "not finalizing");
	CHECK(!strcmp(first(&d), "join-wait"), "join: %s", first(&d));
	CHECK(says(&d, "waits in Thread.join at main (/srv/app.py:30) for thread 101 \"python3\" "
		       "(runs waiter), blocked 5.0 s in futex (lock, no timeout) in Event.wait called "
		       "from waiter (/srv/app.py:12) (inferred: it is the only other Python thread)"),
	      "message: %s", d.nr_findings ? d.findings[0].message : "");
	teardown(&d);
}

static void test_cycle(void)
{
	struct dump d;
	struct dump_thread *a, *b;

	setup(&d);
	add(&d, 100, 'S', HT_NR_clock_nanosleep, HT_R_SLEEP, 5 * SEC);
	a = add(&d, 101, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	a->frames = frames(2, "Thread.join", TH, 1112, "a", APP, 7);
	a->depth = 2;
	a->waits_for = 102;
	a->waits_exact = true;
	b = add(&d, 102, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	b->frames = frames(2, "Thread.join", TH, 1112, "b", APP, 9);
	b->depth = 2;
	b->waits_for = 101;
	b->waits_exact = true;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "join-cycle"), "cycle: %s", first(&d));
	CHECK(says(&d, "thread 101 \"python3\" (runs a) joins thread 102 in a (/srv/app.py:7); "
		       "thread 102 \"python3\" (runs b) joins thread 101 in b (/srv/app.py:9)"),
	      "message: %s", d.nr_findings ? d.findings[0].message : "");
	/* the pairwise joins are the same two threads: not repeated */
	CHECK(d.nr_findings == 1, "%zu findings", d.nr_findings);
	teardown(&d);
}

/* RLocks: an owner that is stuck itself; a cycle mixing a lock and a join. */
static void test_rlock(void)
{
	struct dump d;
	struct dump_thread *a, *b;

	setup(&d);
	a = add(&d, 100, 'S', HT_NR_futex, HT_R_LOCK, 3 * SEC);
	a->frames = frames(2, "flush", APP, 40, "<module>", APP, 90);
	a->depth = 2;
	a->lock_owner = 101;
	b = add(&d, 101, 'S', HT_NR_recvfrom, HT_R_SOCKET, 3 * SEC);
	b->frames = frames(2, "fetch", APP, 12, "worker", APP, 20);
	b->depth = 2;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "lock-owner"), "owner: %s", first(&d));
	CHECK(says(&d, "Waiting on a lock: thread 100 \"python3\" (main) waits at flush "
		       "(/srv/app.py:40) for an RLock held by thread 101 \"python3\" (runs worker), "
		       "blocked 3.0 s in recvfrom"),
	      "message: %s", d.nr_findings ? d.findings[0].message : "");
	teardown(&d);

	setup(&d);
	add(&d, 100, 'S', HT_NR_clock_nanosleep, HT_R_SLEEP, 5 * SEC);
	a = add(&d, 101, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	a->frames = frames(2, "Thread.join", TH, 1112, "a", APP, 7);
	a->depth = 2;
	a->waits_for = 102;
	a->waits_exact = true;
	b = add(&d, 102, 'S', HT_NR_futex, HT_R_LOCK, 5 * SEC);
	b->frames = frames(1, "b", APP, 9);
	b->depth = 1;
	b->lock_owner = 101;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "lock-cycle"), "lock cycle: %s", first(&d));
	CHECK(says(&d, "thread 101 \"python3\" (runs a) joins thread 102 in a (/srv/app.py:7); "
		       "thread 102 \"python3\" (runs b) waits for an RLock held by thread 101 in b "
		       "(/srv/app.py:9)"),
	      "message: %s", d.nr_findings ? d.findings[0].message : "");
	teardown(&d);
}

static void test_signal_handler(void)
{
	struct dump d;
	struct dump_thread *m;

	setup(&d);
	m = add(&d, 100, 'S', HT_NR_futex, HT_R_LOCK, 2 * SEC);
	m->frames = frames(3, "on_term", APP, 10, "hold", APP, 20, "<module>", APP, 30);
	m->depth = 3;
	m->handler_signo = 15;
	m->handler_frame = 0;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "signal-handler-lock"), "handler: %s", first(&d));
	CHECK(says(&d, "the SIGTERM handler on_term (/srv/app.py:10) waits for a lock in thread 100 "
		       "\"python3\" (main), blocked 2.0 s in futex (lock, no timeout); the code it "
		       "interrupted on that same thread, hold (/srv/app.py:20)"),
	      "message: %s", d.nr_findings ? d.findings[0].message : "");
	teardown(&d);
}

static void test_stopped_gil_child_socket(void)
{
	struct dump d;
	struct dump_thread *t;
	char want[128];

	/* stopped comes first, whatever else matches */
	setup(&d);
	d.state = 'T';
	add(&d, 100, 'T', -1, HT_R_OTHER, 2 * SEC);
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "stopped") && says(&d, "kill -CONT 100"), "stopped: %s", first(&d));
	teardown(&d);

	/* the GIL held by a blocked thread, with a waiter */
	setup(&d);
	t = add(&d, 100, 'S', HT_NR_futex, HT_R_GIL, SEC / 200);
	t = add(&d, 101, 'S', HT_NR_clock_nanosleep, HT_R_SLEEP, 3 * SEC);
	t->frames = frames(1, "hog", APP, 3);
	t->depth = 1;
	t->holds_gil = true;
	d.gil_known = true;
	d.gil_holder = 101;
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "gil-held-blocked") && says(&d, "1 thread waits for the GIL"),
	      "gil: %s", d.nr_findings ? d.findings[0].message : "");
	teardown(&d);

	/* a child: this test process stands in for it */
	setup(&d);
	t = add(&d, 100, 'S', HT_NR_wait4, HT_R_CHILD, 3 * SEC);
	t->w.args[0] = getpid();
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	snprintf(want, sizeof(want), "for child process %d (", (int)getpid());
	CHECK(!strcmp(first(&d), "child-wait") && says(&d, want), "child: %s",
	      d.nr_findings ? d.findings[0].message : "");
	teardown(&d);

	/* a listener waiting for connections is idle, a connected socket is not */
	setup(&d);
	t = add(&d, 100, 'S', HT_NR_accept4, HT_R_SOCKET, 30 * SEC);
	t->w.fd_desc = strdup("listening 0.0.0.0:80");
	t = add(&d, 101, 'S', HT_NR_recvfrom, HT_R_SOCKET, 30 * SEC);
	t->w.fd_desc = strdup("10.0.0.1:5432");
	CHECK(!dump__diagnose(&d, NULL), "diagnose");
	CHECK(!strcmp(first(&d), "socket-no-answer") && says(&d, "waits for 10.0.0.1:5432 to answer") &&
	      d.nr_findings == 1, "socket: %s", d.nr_findings ? d.findings[0].message : "");
	free(d.threads[0].w.fd_desc);
	free(d.threads[1].w.fd_desc);
	teardown(&d);
}

int main(void)
{
	test_healthy();
	test_finalization();
	test_not_shutdown_while_main_module_runs();
	test_cycle();
	test_rlock();
	test_signal_handler();
	test_stopped_gil_child_socket();
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
