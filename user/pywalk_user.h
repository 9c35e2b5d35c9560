/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The shared frame walker (bpf/pywalk.h) instantiated over /proc/PID/mem. */
#ifndef HT_PYWALK_USER_H
#define HT_PYWALK_USER_H

#include <stdint.h>

#include "hangtrace.h"

struct procmem;

/* pywalk__find_tstate - the PyThreadState of @tid (3.11+) / @fsbase (older); 0 if none. */
uint64_t pywalk__find_tstate(const struct ht_py_proc *p, struct procmem *m, uint32_t tid,
			     uint64_t fsbase);
/* pywalk__stack - walk @tstate's frames into @st; returns the stack id (as BPF computes it). */
uint64_t pywalk__stack(const struct ht_py_proc *p, struct procmem *m, uint64_t tstate,
		       struct ht_pystack *st, uint32_t max_frames);

#endif
