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
#include <bpf/bpf_tracing.h>

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

/*
 * The price of finding a traced thread's state on every switch, two ways:
 * a hash keyed by TID (what hangtrace does) or task-local storage.  The
 * value has the size of hangtrace's thread state; a hit writes one field of
 * it, as hangtrace's switch path does.  The loader fills either map with the
 * threads of one process (--hash PID / --tls PID).
 */
struct thread_state {
	__u64 ts;
	__u64 pad[41];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct thread_state);
} by_tid SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} by_task SEC(".maps");

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_hash, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct thread_state *t;
	__u32 tid;

	tid = prev->pid;
	t = bpf_map_lookup_elem(&by_tid, &tid);
	if (t)
		t->ts = 1;
	tid = next->pid;
	t = bpf_map_lookup_elem(&by_tid, &tid);
	if (t)
		t->ts = 2;
	return count_switch();
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_tls, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct thread_state *t;

	t = bpf_task_storage_get(&by_task, prev, NULL, 0);
	if (t)
		t->ts = 1;
	t = bpf_task_storage_get(&by_task, next, NULL, 0);
	if (t)
		t->ts = 2;
	return count_switch();
}

/* BTF-typed raw tracepoint: what hangtrace and offcputime attach to. */
SEC("tp_btf/sched_switch")
int handle_tp_btf(void *ctx)
{
	return count_switch();
}
