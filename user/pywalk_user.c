// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "procmem.h"
#include "pywalk_user.h"

#define HT_WALK_CTX struct procmem *
#define ht_read(ctx, dst, sz, addr) procmem__read((ctx), (addr), (dst), (sz))
#include "pywalk.h"

uint64_t pywalk__find_tstate(const struct ht_py_proc *p, struct procmem *m, uint32_t tid,
			     uint64_t fsbase)
{
	return ht_py_find_tstate(p, m, tid, fsbase);
}

uint64_t pywalk__stack(const struct ht_py_proc *p, struct procmem *m, uint64_t tstate,
		       struct ht_pystack *st, uint32_t max_frames)
{
	return ht_py_walk(p, m, tstate, st, max_frames);
}
