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

uint64_t pywalk__find_tstate(const struct ht_py_proc *p, struct procmem *m, uint32_t tid,
			     uint64_t fsbase)
{
	if (p->pidns_ino && p->ts_native_thread_id >= 0)
		tid = ns_tid(tid);
	return ht_py_find_tstate(p, m, tid, fsbase);
}

uint64_t pywalk__stack(const struct ht_py_proc *p, struct procmem *m, uint64_t tstate,
		       struct ht_pystack *st, uint32_t max_frames)
{
	return ht_py_walk(p, m, tstate, st, max_frames);
}
