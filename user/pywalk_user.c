// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "procmem.h"
#include "pywalk_user.h"

#define HT_WALK_CTX struct procmem *
#define ht_read(ctx, dst, sz, addr) procmem__read((ctx), (addr), (dst), (sz))
#include "pywalk.h"

/* @tid as its own PID namespace numbers it: the last NSpid of /proc/TID/status. */
static uint32_t ns_tid(uint32_t tid)
{
	char path[64], line[256], *p, *end;
	uint32_t out = tid;
	unsigned long v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%u/status", tid);
	f = fopen(path, "re");
	if (!f)
		return tid;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "NSpid:", 6))
			continue;
		for (p = line + 6; (v = strtoul(p, &end, 10)), end != p; p = end)
			out = (uint32_t)v;
		break;
	}
	fclose(f);
	return out;
}

/*
 * The BPF walk stops after HT_MAX_TSTATES thread states (the verifier's
 * budget); userspace has none, so it indexes the whole thread list once
 * (thread id -> thread state) instead of walking it for every thread: with
 * 2,000 threads, one pass instead of 2,000.  New thread states go to the head
 * of the list, so the index is rebuilt when a thread is not in it and the
 * head has changed.  Every hit is checked against the target's memory.
 */
#define INDEX_MAX_TSTATES (1 << 20)

struct tindex {
	uint64_t serial;		/* procmem__serial() of the handle it was built with */
	uint64_t interp_head_addr;
	uint64_t head;			/* the first interpreter's first thread state */
	uint64_t *ids, *tstates;
	size_t n, cap;
};

static struct tindex cache;

static uint64_t list_head(const struct ht_py_proc *p, struct procmem *m)
{
	__u64 interp = 0, ts = 0;

	if (ht_read_ptr(m, p->interp_head_addr, &interp) || !interp ||
	    ht_read_ptr(m, interp + p->interp_tstate_head, &ts))
		return 0;
	return ts;
}

static void index_build(struct tindex *ix, const struct ht_py_proc *p, struct procmem *m)
{
	int64_t id_off = p->ts_native_thread_id >= 0 ? p->ts_native_thread_id : p->ts_thread_id;
	__u64 interp = 0, ts = 0, id;
	uint64_t *ni, *nt;
	int i;

	ix->n = 0;
	ix->serial = procmem__serial(m);
	ix->interp_head_addr = p->interp_head_addr;
	ix->head = list_head(p, m);
	if (ht_read_ptr(m, p->interp_head_addr, &interp))
		return;
	for (i = 0; i < 64 && interp; i++) {
		if (ht_read_ptr(m, interp + p->interp_tstate_head, &ts))
			return;
		while (ts && ix->n < INDEX_MAX_TSTATES) {
			if (ht_read_ptr(m, ts + id_off, &id))
				break;
			if (ix->n == ix->cap) {
				ix->cap = ix->cap ? ix->cap * 2 : 256;
				ni = realloc(ix->ids, ix->cap * sizeof(*ni));
				if (ni)
					ix->ids = ni;
				nt = realloc(ix->tstates, ix->cap * sizeof(*nt));
				if (nt)
					ix->tstates = nt;
				if (!ni || !nt) {
					ix->cap = ix->n;
					return;
				}
			}
			ix->ids[ix->n] = id;
			ix->tstates[ix->n++] = ts;
			if (ht_read_ptr(m, ts + p->ts_next, &ts))
				break;
		}
		if (ht_read_ptr(m, interp + p->interp_next, &interp))
			return;
	}
}

static uint64_t index_find(const struct tindex *ix, const struct ht_py_proc *p,
			   struct procmem *m, uint32_t tid, uint64_t fsbase)
{
	uint64_t want = p->ts_native_thread_id >= 0 ? tid : fsbase;
	size_t i;

	for (i = 0; want && i < ix->n; i++)
		if (ix->ids[i] == want && ht_py_tstate_matches(p, m, ix->tstates[i], tid, fsbase))
			return ix->tstates[i];
	return 0;
}

uint64_t pywalk__find_tstate(const struct ht_py_proc *p, struct procmem *m, uint32_t tid,
			     uint64_t fsbase)
{
	uint64_t ts;

	if (p->pidns_ino && p->ts_native_thread_id >= 0)
		tid = ns_tid(tid);
	if (!m)
		return 0;
	if (cache.serial == procmem__serial(m) && cache.interp_head_addr == p->interp_head_addr) {
		ts = index_find(&cache, p, m, tid, fsbase);
		if (ts || list_head(p, m) == cache.head)
			return ts;
	}
	index_build(&cache, p, m);
	return index_find(&cache, p, m, tid, fsbase);
}

uint64_t pywalk__stack(const struct ht_py_proc *p, struct procmem *m, uint64_t tstate,
		       struct ht_pystack *st, uint32_t max_frames)
{
	return ht_py_walk(p, m, tstate, st, max_frames);
}
