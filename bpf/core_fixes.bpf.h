/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel struct differences across supported kernels (>= 5.15), via CO-RE flavors. */
#ifndef HT_CORE_FIXES_BPF_H
#define HT_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>

/* Linux 5.14 (commit 2f064a59a11f "sched: Change task_struct::state") renamed state to __state. */
struct task_struct___o {
	volatile long int state;
} __attribute__((preserve_access_index));

static __always_inline __u32 get_task_state(void *task)
{
	struct task_struct___o *t = task;

	if (bpf_core_field_exists(((struct task_struct *)task)->__state))
		return BPF_CORE_READ((struct task_struct *)task, __state);
	return BPF_CORE_READ(t, state);
}

/* The same, as a direct load from a trusted task pointer (tp_btf arguments): no helper call. */
static __always_inline __u32 task_state_direct(struct task_struct *task)
{
	if (bpf_core_field_exists(task->__state))
		return task->__state;
	return ((struct task_struct___o *)task)->state;
}

#endif
