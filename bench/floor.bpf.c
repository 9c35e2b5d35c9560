// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor of the overhead benchmark: the least a tracer can do on every
 * context switch of the machine.  No filter, no timestamp, no stack: one
 * per-CPU counter increment per sched_switch.
 *
 * The same body is attached through three kinds of hook, so their own cost
 * can be told apart.  The loader enables exactly one of them.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} switches SEC(".maps");

static __always_inline int count_switch(void)
{
	__u32 zero = 0;
	__u64 *n;

	n = bpf_map_lookup_elem(&switches, &zero);
	if (n)
		(*n)++;		/* per-CPU slot: no atomic needed */
	return 0;
}

/* Raw tracepoint: the arguments as the kernel passed them, no copying. */
SEC("raw_tp/sched_switch")
int handle_raw_tp(void *ctx)
{
	return count_switch();
}

/* Classic tracepoint: the kernel first fills the perf trace record. */
SEC("tracepoint/sched/sched_switch")
int handle_tp(void *ctx)
{
	return count_switch();
}

/* BTF-typed raw tracepoint: what hangtrace and offcputime attach to. */
SEC("tp_btf/sched_switch")
int handle_tp_btf(void *ctx)
{
	return count_switch();
}
