// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * speedscope output (https://www.speedscope.app/file-format-schema.json),
 * written with json-c so that names from the target are escaped (and made
 * valid UTF-8 by json__str).  Sampled profiles list stacks outermost first,
 * as indices into shared.frames, each with a weight.  With --children there
 * is a profile per (process, thread, kind), named after both.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "intern.h"
#include "jsonout.h"
#include "report.h"
#include "speedscope.h"

#define SPEEDSCOPE_SCHEMA "https://www.speedscope.app/file-format-schema.json"

struct sctx {
	const struct report *r;		/* the root */
	struct intern *keys;		/* frame key -> index in frames */
	json_object *frames;		/* shared.frames */
	int err;
};

/* The index of frame (@name, @file, @line) in shared.frames; @file NULL, @line < 0: none. */
static int frame_idx(struct sctx *c, const char *name, const char *file, int line)
{
	json_object *fr;
	uint32_t idx = 0;
	char *key;
	int added;

	/* length-prefixed, so no name or file can make two frames one */
	if (asprintf(&key, "%d:%zu:%s%s", line, strlen(name), name, file ? file : "") < 0) {
		c->err = -ENOMEM;
		return 0;
	}
	added = intern__add(c->keys, key, &idx);
	free(key);
	if (added < 0) {
		c->err = added;
		return 0;
	}
	if (added) {
		fr = json_object_new_object();
		json_object_object_add(fr, "name", json__str(name));
		if (file)
			json_object_object_add(fr, "file", json__str(file));
		if (line >= 0)
			json_object_object_add(fr, "line", json_object_new_int(line));
		json_object_array_add(c->frames, fr);
	}
	return (int)idx;
}

/* @st outermost first, then @leaf (a pseudo-frame, NULL for none). */
static json_object *stack(struct sctx *c, const struct rstack *st, const char *leaf)
{
	json_object *a = json_object_new_array();
	int i;

	if (st->truncated)
		json_object_array_add(a, json_object_new_int(frame_idx(c, "<truncated>", NULL, -1)));
	for (i = st->depth - 1; i >= 0; i--)
		json_object_array_add(a, json_object_new_int(frame_idx(c, st->frames[i].function,
								       st->frames[i].file,
								       st->frames[i].line)));
	if (!st->depth && !st->truncated)
		json_object_array_add(a, json_object_new_int(frame_idx(c, "<no Python frames>",
								       NULL, -1)));
	if (leaf)
		json_object_array_add(a, json_object_new_int(frame_idx(c, leaf, NULL, -1)));
	return a;
}

/* A thread @tid of process @proc (its blockers and samples carry pid @pid). */
struct tkey {
	const struct report *proc;
	uint32_t pid, tid;
};

static bool tkey_add(struct tkey *keys, size_t *n, const struct report *proc, uint32_t pid,
		     uint32_t tid)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (keys[i].proc == proc && keys[i].pid == pid && keys[i].tid == tid)
			return false;
	keys[(*n)++] = (struct tkey){ proc, pid, tid };
	return true;
}

/* The profile of thread @t's off-CPU blockers (@on false) or on-CPU samples; NULL if none. */
static json_object *profile(struct sctx *c, struct tkey t, bool on, uint64_t *total)
{
	const struct report *r = t.proc;
	json_object *p, *samples = json_object_new_array(), *weights = json_object_new_array();
	char leaf[32], who[64], *name;
	size_t i;

	*total = 0;
	for (i = 0; !on && i < r->nr_blockers; i++) {
		const struct rblocker *b = &r->blockers[i];

		if (b->on_cpu || b->pid != t.pid || b->tid != t.tid)
			continue;
		snprintf(leaf, sizeof(leaf), "[%s]", reason_name(b->reason));
		json_object_array_add(samples, stack(c, &b->stack, leaf));
		json_object_array_add(weights, json_object_new_int64((int64_t)b->total_ns));
		*total += b->total_ns;
	}
	for (i = 0; on && i < r->nr_samples; i++) {
		const struct rsample *s = &r->samples[i];

		if (s->pid != t.pid || s->tid != t.tid)
			continue;
		json_object_array_add(samples, stack(c, &s->stack, NULL));
		json_object_array_add(weights, json_object_new_int64((int64_t)s->ns));
		*total += s->ns;
	}
	if (!json_object_array_length(samples)) {
		json_object_put(samples);
		json_object_put(weights);
		return NULL;
	}
	/* the process: "process PID", "child process PID of PPID" */
	if (r->ppid)
		snprintf(who, sizeof(who), "child process %u of %u", t.pid, r->ppid);
	else
		snprintf(who, sizeof(who), "process %u", t.pid);
	if (asprintf(&name, "Thread %u \"%s\"%s, %s: %s", t.tid, report__thread_name(r, t.tid),
		     t.tid == t.pid ? " (main)" : "", who, on ? "on-CPU" : "off-CPU") < 0) {
		c->err = -ENOMEM;
		name = NULL;
	}
	p = json_object_new_object();
	json_object_object_add(p, "type", json_object_new_string("sampled"));
	json_object_object_add(p, "name", json__str(name ? name : ""));
	json_object_object_add(p, "unit", json_object_new_string("nanoseconds"));
	json_object_object_add(p, "startValue", json_object_new_int64(0));
	json_object_object_add(p, "endValue", json_object_new_int64((int64_t)*total));
	json_object_object_add(p, "samples", samples);
	json_object_object_add(p, "weights", weights);
	free(name);
	return p;
}

int speedscope__write(const struct report *r, FILE *f)
{
	struct sctx c = { .r = r };
	json_object *root = NULL, *profiles, *shared, *p;
	size_t i, j, nt = 0, active = 0, np = 0, nkeys = 1;
	uint64_t total, best = 0;
	struct tkey *threads;
	const char *s;
	char *name = NULL;
	int err = 0, k;

	for (j = 0; j < report__nr_procs(r); j++) {
		const struct report *proc = report__proc(r, j);

		nkeys += proc->nr_threads + proc->nr_blockers + proc->nr_samples;
	}
	threads = calloc(nkeys, sizeof(*threads));
	c.keys = intern__new();
	if (!threads || !c.keys) {
		err = -ENOMEM;
		goto cleanup;
	}
	/* process by process: the report's thread order (main first), then any other thread seen */
	for (j = 0; j < report__nr_procs(r); j++) {
		const struct report *proc = report__proc(r, j);

		for (i = 0; i < proc->nr_threads; i++)
			tkey_add(threads, &nt, proc, proc->pid, proc->threads[i].tid);
		for (i = 0; i < proc->nr_blockers; i++)
			tkey_add(threads, &nt, proc, proc->blockers[i].pid, proc->blockers[i].tid);
		for (i = 0; i < proc->nr_samples; i++)
			tkey_add(threads, &nt, proc, proc->samples[i].pid, proc->samples[i].tid);
	}

	root = json_object_new_object();
	c.frames = json_object_new_array();
	profiles = json_object_new_array();
	for (i = 0; i < nt; i++) {
		for (k = 0; k < 2; k++) {
			bool on = k == 1;

			if ((on && r->what == WHAT_OFFCPU) || (!on && r->what == WHAT_ONCPU))
				continue;
			p = profile(&c, threads[i], on, &total);
			if (!p)
				continue;
			if (total > best) {
				best = total;
				active = np;
			}
			json_object_array_add(profiles, p);
			np++;
		}
	}
	json_object_object_add(root, "$schema", json_object_new_string(SPEEDSCOPE_SCHEMA));
	if (asprintf(&name, "hangtrace: process %u%s%s%s%s", r->pid, r->cmdline ? " (" : "",
		     r->cmdline ? r->cmdline : "", r->cmdline ? ")" : "",
		     r->nr_children ? " and its child processes" : "") < 0) {
		c.err = -ENOMEM;
		name = NULL;
	}
	json_object_object_add(root, "name", json__str(name ? name : ""));
	json_object_object_add(root, "exporter", json_object_new_string("hangtrace " HANGTRACE_VERSION));
	json_object_object_add(root, "activeProfileIndex", json_object_new_int64((int64_t)active));
	shared = json_object_new_object();
	json_object_object_add(shared, "frames", c.frames);
	c.frames = NULL;
	json_object_object_add(root, "shared", shared);
	json_object_object_add(root, "profiles", profiles);
	err = c.err;
	if (err)
		goto cleanup;
	s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!s)
		err = -ENOMEM;
	else if (fputs(s, f) < 0 || fputc('\n', f) == EOF)
		err = errno ? -errno : -EIO;
cleanup:
	json_object_put(root);
	json_object_put(c.frames);
	intern__free(c.keys);
	free(threads);
	free(name);
	if (err)
		errno = -err;
	return err;
}
