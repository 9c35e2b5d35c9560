// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Hints: the patterns people hit when an event loop stalls, each with one
 * line of advice.  First match wins, so specific rules come first.  Every
 * rule is covered by a test (tests/integration/test_loops.py).
 */
#include <stddef.h>
#include <string.h>

#include "hangtrace.h"
#include "hints.h"
#include "report.h"

#define ANY -1

struct hint_rule {
	const char *name;
	int reason;		/* enum ht_reason, or ANY */
	int on_cpu;		/* 1: only on-CPU blockers */
	const char *function;	/* some frame's function ends with this (NULL: any) */
	const char *file;	/* ... and that frame's file contains this (NULL: any) */
	const char *text;
};

static const struct hint_rule rules[] = {
	{ "executor-shutdown", HT_R_LOCK, 0, "shutdown", "concurrent/futures/thread.py",
	  "leaving `with ThreadPoolExecutor()` waits for every submitted job, blocking the event "
	  "loop: create the executor once, outside the coroutine, and `await "
	  "loop.run_in_executor(executor, fn)`" },
	{ "future-result", HT_R_LOCK, 0, "result", "concurrent/futures/_base.py",
	  "waiting for a concurrent.futures result on the event loop thread: `await "
	  "asyncio.wrap_future(fut)` (or use loop.run_in_executor), so the loop keeps running" },
	{ "eventlet-sleep", HT_R_SLEEP, 0, NULL, "eventlet/",
	  "time.sleep() blocks eventlet's hub (no green thread runs meanwhile): call "
	  "eventlet.sleep(), or eventlet.monkey_patch() before other imports" },
	{ "gevent-sleep", HT_R_SLEEP, 0, NULL, "gevent/",
	  "time.sleep() blocks gevent's hub (no greenlet runs meanwhile): call gevent.sleep(), or "
	  "gevent.monkey.patch_all() before other imports" },
	{ "sleep", HT_R_SLEEP, 0, NULL, NULL,
	  "time.sleep() on the event loop thread blocks every other task: use `await "
	  "asyncio.sleep()`" },
	{ "gil", HT_R_GIL, 0, NULL, NULL,
	  "the event loop waited for the GIL, held by another thread running Python code (the "
	  "holder is named below): move CPU-bound work to a ProcessPoolExecutor, or to code that "
	  "releases the GIL" },
	{ "requests", HT_R_SOCKET, 0, NULL, "requests/",
	  "a blocking `requests` call on the event loop thread: use an async client (aiohttp, "
	  "httpx.AsyncClient) or `await loop.run_in_executor(None, fn)`" },
	{ "http-client", HT_R_SOCKET, 0, NULL, "http/client.py",
	  "a blocking HTTP call on the event loop thread: use an async client (aiohttp, "
	  "httpx.AsyncClient) or `await loop.run_in_executor(None, fn)`" },
	{ "socket", HT_R_SOCKET, 0, NULL, NULL,
	  "blocking socket I/O (a network or database client) on the event loop thread: use an "
	  "async client or the loop's streams (asyncio.open_connection, loop.sock_recv), or `await "
	  "loop.run_in_executor(None, fn)`" },
	{ "queue", HT_R_LOCK, 0, NULL, "queue.py",
	  "a queue.Queue wait on the event loop thread: use asyncio.Queue, or `await "
	  "loop.run_in_executor(None, q.get)`" },
	{ "thread-lock", HT_R_LOCK, 0, NULL, "threading.py",
	  "a threading Lock/Event/Condition wait on the event loop thread: use asyncio.Lock/Event, "
	  "or `await loop.run_in_executor(None, blocking_call)`" },
	{ "lock", HT_R_LOCK, 0, NULL, NULL,
	  "a lock wait on the event loop thread (the waker shows who held it): don't share "
	  "blocking locks with threads; use asyncio primitives or run_in_executor" },
	{ "child", HT_R_CHILD, 0, NULL, NULL,
	  "waiting for a child process on the event loop thread: use "
	  "asyncio.create_subprocess_exec() and `await proc.wait()`" },
	{ "file-io", HT_R_IO, 0, NULL, NULL,
	  "blocking file or pipe I/O on the event loop thread: use `await asyncio.to_thread(...)` "
	  "(or run_in_executor)" },
	{ "cpu", ANY, 1, NULL, NULL,
	  "CPU-bound Python code on the event loop thread: nothing else runs meanwhile; move it to "
	  "`loop.run_in_executor(ProcessPoolExecutor(), fn)` or split it with `await "
	  "asyncio.sleep(0)`" },
	{ "runqueue", HT_R_RUNQUEUE, 0, NULL, NULL,
	  "the loop thread was ready to run but the CPU was busy with other work: CPU contention "
	  "on the machine, not the program's own wait" },
};

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int frame_matches(const struct rframe *f, const struct hint_rule *r)
{
	if (r->function && (!f->function || !ends_with(f->function, r->function)))
		return 0;
	if (r->file && (!f->file || !strstr(f->file, r->file)))
		return 0;
	return 1;
}

const char *hint_for(const struct rblocker *b)
{
	size_t i;
	int j;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct hint_rule *r = &rules[i];

		if (r->on_cpu != b->on_cpu)
			continue;
		if (r->reason != ANY && r->reason != b->reason)
			continue;
		if (!r->function && !r->file)
			return r->text;
		for (j = 0; j < b->stack.depth; j++)
			if (frame_matches(&b->stack.frames[j], r))
				return r->text;
	}
	return NULL;
}

int hints__count(void)
{
	return sizeof(rules) / sizeof(rules[0]);
}

const char *hints__name(int i)
{
	return i >= 0 && i < hints__count() ? rules[i].name : NULL;
}
