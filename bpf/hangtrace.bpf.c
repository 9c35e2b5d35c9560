// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hangtrace: off-CPU time of Python threads with their Python stacks, reasons
 * and wakers.
 *
 * Cost model ("pay per long block"): a context switch of a traced thread costs
 * two hash lookups, a timestamp and a classification from its registers.
 * Stacks are taken only for blocks that already lasted min_block_ns:
 *   - at wake-up: the sleeper's kernel stack and the waker (current) with its
 *     Python stack;
 *   - when the sleeper returns from its syscall: its own Python stack (current
 *     again, frames unchanged since it blocked).
 * There is no sys_enter hook: it would cost every syscall on the machine.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "hangtrace.h"
#include "reason.h"
#include "core_fixes.bpf.h"

const volatile struct ht_config cfg = {};

/*
 * The walker's steps run under bpf_loop() where the kernel has it (5.17+): the
 * verifier then checks each step function once per program instead of
 * unrolling hundreds of iterations (that was most of the attach time).
 * Older kernels run the same steps in a bounded loop.  Both are constants at
 * load time (CO-RE and .rodata), so the verifier only sees one of them.
 */
#define HT_RUN_STEPS(n, step, state)						\
	do {									\
		if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_loop) &&	\
		    !cfg.bounded_loops) {						\
			bpf_loop((n), (step), (state), 0);				\
		} else {							\
			for (__u32 i__ = 0; i__ < (n); i__++)			\
				if ((step)(i__, (state)))			\
					break;					\
		}								\
	} while (0)

#define HT_WALK_CTX void *
#define ht_read(ctx, dst, sz, addr) bpf_probe_read_user((dst), (sz), (const void *)(addr))
#include "pywalk.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct ht_stats stats = {};
__u32 iter_tgid = 0;

#define S_IFMT	 00170000
#define S_IFSOCK 0140000

#define ETIMEDOUT 110

#define HT_TASK_STOPPED 0x4	/* __TASK_STOPPED (include/linux/sched.h) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);			/* tgid */
	__type(value, struct ht_py_proc);
} py_procs SEC(".maps");

/* Processes whose descendants are followed (--children): tgid -> the root's tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} followed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);			/* tid */
	__type(value, struct ht_thread);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ht_agg_key);
	__type(value, struct ht_agg_val);
} offcpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct ht_pystack);
} pystacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct ht_kstack);
} kstacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct ht_oncpu_key);
	__type(value, __u64);			/* samples */
} oncpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* Scratch stacks: one slot per program that may nest on a CPU (wake-up can
 * interrupt a syscall-exit program). */
enum { SLOT_EXIT, SLOT_WAKE, SLOT_SAMPLE, SLOT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SLOT_MAX);
	__type(key, __u32);
	__type(value, struct ht_pystack);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_kstack);
} kscratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_thread);
} thread_init SEC(".maps");

/*
 * The task each CPU switched to last, as sched_switch saw it, and whether
 * its next syscall exit has work (a pending block, a loop wait): most exits,
 * traced or not, then end without a hash lookup.  A task that came on CPU
 * unseen does not match, and gets the full lookup (and its repair).
 */
struct cpu_slot {
	__u32 tid;
	__u32 need;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cpu_slot);
} cpu_slots SEC(".maps");

static __always_inline void stat_inc(__u64 *counter)
{
	__sync_fetch_and_add(counter, 1);
}

/* A zeroed event of @type on the ring buffer (fd -1), or NULL, counted, when it is full. */
static __always_inline struct ht_event *new_event(__u32 type)
{
	struct ht_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		stat_inc(&stats.ringbuf_full);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->fd = -1;
	return e;
}

static __always_inline __u64 task_fsbase(struct task_struct *task)
{
#ifdef __TARGET_ARCH_x86
	return BPF_CORE_READ(task, thread.fsbase);
#else
	return 0;
#endif
}

/* Is @fd of @task a socket? */
static __noinline int fd_kind(struct task_struct *task, __s64 fd)
{
	struct file **fds, *file = NULL;
	unsigned int max_fds;
	umode_t mode;

	if (fd < 0)
		return HT_FD_UNKNOWN;
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((__u64)fd >= max_fds)
		return HT_FD_UNKNOWN;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return HT_FD_UNKNOWN;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	return (mode & S_IFMT) == S_IFSOCK ? HT_FD_SOCKET : HT_FD_OTHER;
}

#define AF_INET 2
#define AF_INET6 10

/* The addresses of socket @fd of @task, if it is an INET socket. */
static __noinline void read_sock(struct task_struct *task, __s64 fd, struct ht_sockaddr *out)
{
	struct file **fds, *file = NULL;
	struct socket *sock;
	struct sock *sk;
	unsigned int max_fds;
	__u16 family;

	out->family = 0;
	if (fd < 0)
		return;
	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if ((__u64)fd >= max_fds)
		return;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		bpf_core_read(out->laddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_core_read(out->raddr, 4, &sk->__sk_common.skc_daddr);
	} else if (family == AF_INET6) {
		bpf_core_read(out->laddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_core_read(out->raddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return;
	}
	out->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	out->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	out->family = family;
}

/* Is syscall @nr (second argument @a1) thread @tid's event-loop wait? */
static __always_inline int loop_wait(__u32 tid, long nr, __u64 a1)
{
	return ht_is_loop_wait(nr, a1) ||
	       (tid == cfg.loop_tid && (nr == HT_NR_select || nr == HT_NR_pselect6 ||
					nr == HT_NR_poll || nr == HT_NR_ppoll));
}

/*
 * The loop iteration of @t that began at iter_start ended at @now, on the
 * way into its poll-family wait: announce it if it was a stall.  There is no
 * sys_enter hook (it would run for every syscall on the machine): the wait's
 * entry is seen where it blocks (the switch-out, microseconds after the
 * entry) or, if it returned at once, at its exit.
 */
static __noinline void end_iteration(struct ht_thread *t, __u64 now)
{
	struct ht_event *e;

	if (!t->iter_start || now - t->iter_start < cfg.stall_ns)
		return;
	t->stalls++;
	stat_inc(&stats.stalls);
	e = new_event(HT_EV_STALL);
	if (!e)
		return;
	e->start_ts = t->iter_start;
	e->dur_ns = now - t->iter_start;
	e->key.pid = t->pid;
	e->key.tid = t->tid;
	bpf_ringbuf_submit(e, 0);
}

/* Note what @task (current, going off-CPU) is blocked in: syscall, reason, fd. */
static __noinline void note_block(struct ht_thread *t, struct task_struct *task, int runnable)
{
	struct pt_regs *regs;
	__s64 nr, fd = -1;
	__u64 a0 = 0, a1 = 0, cls_arg;
	int kind = HT_FD_UNKNOWN;

	t->arg0 = (__u64)-1;
	if (runnable) {
		t->syscall = -1;
		t->reason = HT_R_RUNQUEUE;
		return;
	}
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
#ifdef __TARGET_ARCH_x86
	nr = regs->orig_ax;	/* direct loads: regs is a trusted pointer */
	a0 = regs->di;
	a1 = regs->si;
#else
	nr = -1;
#endif
	cls_arg = a0;
	switch (nr) {
	case HT_NR_poll:
	case HT_NR_ppoll:
		cls_arg = a1;	/* nfds */
		if (a1 >= 1 && bpf_probe_read_user(&fd, sizeof(int), (void *)a0) == 0)
			fd = (int)fd;
		else
			fd = -1;
		break;
	case HT_NR_select:
	case HT_NR_pselect6:
	case HT_NR_futex:
		break;
	default:
		if (ht_syscall_fd_arg(nr) || ht_classify(nr, 0, t->gil_lo, t->gil_hi, 0) ==
						     HT_R_SOCKET)
			fd = (int)a0;
	}
	if (fd >= 0 && (ht_syscall_fd_arg(nr) || nr == HT_NR_poll || nr == HT_NR_ppoll))
		kind = fd_kind(task, fd);
	t->syscall = nr;
	t->arg0 = nr == HT_NR_futex ? a0 : (__u64)fd;
	t->reason = ht_classify(nr, cls_arg, t->gil_lo, t->gil_hi, kind);
	/* an event loop waiting for work is idle, not blocked (also a wait entered before we attached) */
	if (t->in_poll || loop_wait(t->tid, nr, a1)) {
		t->reason = HT_R_IDLE;
		if (!t->in_poll) {
			/* into the loop's wait: the iteration ends */
			end_iteration(t, t->off_ts);
			t->in_poll = 1;
			t->poll_enter_ts = t->off_ts;
		}
	}
}

/* Walk the Python stack of the current task (thread @t of @proc) into the
 * stack map.  Returns its id, 0 if none. */
__noinline __u64 walk_tstate(const struct ht_py_proc *proc, __u64 ts, struct ht_pystack *st);

/*
 * The walkers are global functions: the verifier checks each once, on its
 * own, instead of again at every call site (that took most of the attach time).
 */
__noinline __u64 walk_current(const struct ht_py_proc *proc, struct ht_thread *t, __u32 slot)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct bpf_pidns_info ns;
	struct ht_pystack *st;
	__u64 fsbase = 0, ts;
	__u32 tid;

	if (!proc || !t)
		return 0;
	st = bpf_map_lookup_elem(&scratch, &slot);
	if (!st)
		return 0;
	if (proc->ts_native_thread_id < 0) {
		fsbase = task_fsbase(task);
		t->fsbase = fsbase;
	}
	tid = t->tid;
	/* 3.11+ threads know their TID as their own PID namespace numbers it */
	if (proc->pidns_ino && proc->ts_native_thread_id >= 0 &&
	    !bpf_get_ns_current_pid_tgid(proc->pidns_dev, proc->pidns_ino, &ns, sizeof(ns)))
		tid = ns.pid;
	ts = t->tstate;
	if (!ts || !ht_py_tstate_matches(proc, NULL, ts, tid, fsbase)) {
		ts = ht_py_find_tstate(proc, NULL, tid, fsbase);
		t->tstate = ts;
	}
	if (!ts) {
		stat_inc(&stats.py_no_tstate);
		return 0;
	}
	return walk_tstate(proc, ts, st);
}

/* Walk the frames of thread state @ts (of the current process) into the stack map. */
__noinline __u64 walk_tstate(const struct ht_py_proc *proc, __u64 ts, struct ht_pystack *st)
{
	__u64 id;
	long err;

	if (!proc || !st)
		return 0;
	id = ht_py_walk(proc, NULL, ts, st, cfg.max_frames);
	if (st->flags & HT_STACK_READ_ERR)
		stat_inc(&stats.py_read_fail);
	if (st->flags & HT_STACK_TRUNCATED)
		stat_inc(&stats.py_truncated);
	if (!id)
		return 0;
	err = bpf_map_update_elem(&pystacks, &id, st, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST */) {
		stat_inc(&stats.stacks_full);
		return 0;
	}
	return id;
}

/*
 * The asyncio task running on the current thread (thread state @ts of
 * @proc's process), into @tc: only for processes whose asyncio layout is
 * known (3.14+), and only on the paths that already walked the stack.
 */
static __noinline void capture_task(const struct ht_py_proc *proc, __u64 ts,
				    struct ht_task_cap *tc)
{
	__u64 task = 0, coro = 0, code = 0, name = 0;

	if (!tc)
		return;
	tc->task = 0;
	tc->coro_code = 0;
	tc->name_len = 0;
	if (!proc || !ts || proc->ts_running_task <= 0 ||
	    bpf_probe_read_user(&task, sizeof(task), (void *)(ts + proc->ts_running_task)) || !task)
		return;
	tc->task = task;
	if (!bpf_probe_read_user(&coro, sizeof(coro), (void *)(task + proc->task_coro)) && coro &&
	    !bpf_probe_read_user(&code, sizeof(code), (void *)(coro + proc->coro_code)))
		tc->coro_code = code;
	if (bpf_probe_read_user(&name, sizeof(name), (void *)(task + proc->task_name)) || !name)
		return;
	/* an object near the end of a mapping: the header (and a short name) at least */
	if (!bpf_probe_read_user(tc->name, sizeof(tc->name), (void *)name))
		tc->name_len = sizeof(tc->name);
	else if (!bpf_probe_read_user(tc->name, 64, (void *)name))
		tc->name_len = 64;
}

/* The kernel stack of sleeping @task, stored; returns its id or 0. */
static __noinline __u64 save_task_kstack(struct task_struct *task)
{
	__u32 zero = 0;
	struct ht_kstack *ks;
	__u64 h = 0xcbf29ce484222325ULL;
	long n, err;
	int i;

	ks = bpf_map_lookup_elem(&kscratch, &zero);
	if (!ks)
		return 0;
	n = bpf_get_task_stack(task, ks->ips, sizeof(ks->ips), 0);
	if (n <= 0) {
		stat_inc(&stats.kstack_fail);
		return 0;
	}
	ks->depth = n / sizeof(__u64);
	for (i = 0; i < HT_MAX_KSTACK; i++) {
		if (i >= ks->depth)
			break;
		h = ht_hash_mix(h, ks->ips[i]);
	}
	h = h ? h : 1;
	err = bpf_map_update_elem(&kstacks, &h, ks, BPF_NOEXIST);
	if (err && err != -17) {
		stat_inc(&stats.stacks_full);
		return 0;
	}
	return h;
}

/* Add one long block (or several merged in one syscall) to the aggregation
 * and announce it on the ring buffer. */
static __noinline void record_block(struct ht_agg_key *key, const struct ht_pending *pd,
				    const struct ht_py_proc *proc, __u64 ts)
{
	struct ht_agg_val *v, zero = {};
	struct ht_event *e;

	v = bpf_map_lookup_elem(&offcpu, key);
	if (!v) {
		bpf_map_update_elem(&offcpu, key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&offcpu, key);
		if (!v) {
			stat_inc(&stats.agg_full);
			return;
		}
	}
	__sync_fetch_and_add(&v->total_ns, pd->total_ns);
	__sync_fetch_and_add(&v->count, pd->count);
	v->last_ts = pd->start_ts + pd->total_ns;
	v->fd = pd->fd;
	if (pd->sock.family)
		v->sock = pd->sock;
	if (pd->max_ns >= v->max_ns) {
		/* the aggregate shows the waker of its longest block */
		v->max_ns = pd->max_ns;
		v->wk_tid = pd->wk_tid;
		v->wk_pid = pd->wk_pid;
		v->wk_flags = pd->wk_flags;
		v->wk_tstate = pd->wk_tstate;
		__builtin_memcpy(v->wk_comm, pd->wk_comm, sizeof(v->wk_comm));
	}
	stat_inc(&stats.long_blocks);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(&stats.ringbuf_full);
		return;
	}
	e->type = HT_EV_BLOCK;
	e->pad = 0;
	e->start_ts = pd->start_ts;
	e->dur_ns = pd->total_ns;
	e->key = *key;
	e->fd = pd->fd;
	e->wk_pid = pd->wk_pid;
	e->sock = pd->sock;
	__builtin_memcpy(e->wk_comm, pd->wk_comm, sizeof(e->wk_comm));
	e->wk_tstate = pd->wk_tstate;
	e->wk_flags = pd->wk_flags;
	e->wk_tid = pd->wk_tid;
	capture_task(proc, ts, &e->task);
	bpf_ringbuf_submit(e, 0);
}

/*
 * The state of a traced thread.  Entries are made up front (userspace for the
 * threads that exist at attach, handle_fork for new ones), so an untraced task
 * costs one lookup here and nothing else.
 */
static __always_inline struct ht_thread *thread_of(__u32 tid)
{
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Forget what the wake-up captured (all zero unless wk_flags is set). */
static __always_inline void clear_wake(struct ht_thread *t)
{
	t->wk_tid = 0;
	t->wk_pid = 0;
	t->wk_stack = 0;
	t->wk_flags = 0;
	t->kstack = 0;
	t->sock.family = 0;
}

/* A block of at least min_block_ns ends: pending (in a syscall) or recorded. */
static __noinline void long_block(struct ht_thread *t, __u64 delta)
{
	struct ht_pending *pd = &t->pend, one = {};
	struct ht_agg_key key = {};
	__u32 r = t->reason;

	if (t->syscall >= 0) {
		/* The Python stack is taken when the thread leaves its syscall. */
		if (pd->count)
			stat_inc(&stats.pend_merged);
		else
			pd->start_ts = t->off_ts;
		pd->total_ns += delta;
		pd->count++;
		if (delta >= pd->max_ns) {
			pd->max_ns = delta;
			pd->reason = r;
			pd->syscall = t->syscall;
			pd->fd = (__s32)t->arg0;
			pd->wk_tid = t->wk_tid;
			pd->wk_pid = t->wk_pid;
			pd->wk_stack = t->wk_stack;
			pd->wk_flags = t->wk_flags;
			__builtin_memcpy(pd->wk_comm, t->wk_comm, sizeof(pd->wk_comm));
			pd->wk_tstate = 0;
			pd->kstack = t->kstack;
			pd->sock = t->sock;
		}
		goto clear;
	}

	/* Not in a syscall (preempted, page fault): no return point to walk at. */
	key.pid = t->pid;
	key.tid = t->tid;
	key.kstack = t->kstack;
	key.reason = r;
	key.syscall = -1;
	key.wk_stack = t->wk_stack;
	one.wk_tid = t->wk_tid;
	one.start_ts = t->off_ts;
	one.total_ns = delta;
	one.max_ns = delta;
	one.count = 1;
	one.fd = -1;
	one.wk_pid = t->wk_pid;
	one.wk_flags = t->wk_flags;
	__builtin_memcpy(one.wk_comm, t->wk_comm, sizeof(one.wk_comm));
	record_block(&key, &one, NULL, 0);
clear:
	clear_wake(t);
}

/*
 * @t comes back on CPU after an off-CPU interval of @delta ns.  The common
 * case, a short interval, only adds to the per-reason totals: no call, no
 * scratch structs to zero.
 */
static __always_inline void end_block(struct ht_thread *t, __u64 delta)
{
	__u32 r = t->reason;

	if (r < HT_R_MAX) {
		t->off_ns[r] += delta;
		t->off_cnt[r]++;
	}
	if (delta >= cfg.min_block_ns && r != HT_R_IDLE)
		long_block(t, delta);
	else if (t->wk_flags)
		clear_wake(t);
}

/*
 * Thread @t is on CPU at @now, but its last switch-in was never reported.
 *
 * sched_switch does not report every switch: on the VMs hangtrace is
 * developed on, a switch away from some tasks (the sandbox's own init
 * threads) never reaches the tracepoint, so the thread switched to next is
 * seen going off-CPU and never coming back.  Close the interval at @in_ts,
 * the best estimate of the switch-in; callers that run on the thread's own
 * CPU (syscall exit, a sample) pass the time now.
 */
static __noinline void unseen_switch_in(struct ht_thread *t, __u64 in_ts, __u64 now)
{
	stat_inc(&stats.unseen_switch_ins);
	if (in_ts > t->off_ts)
		end_block(t, in_ts - t->off_ts);
	t->off_ts = 0;
	t->on_ts = in_ts;
	if (now > in_ts)
		t->on_ns += now - in_ts;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(handle_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct cpu_slot *cs;
	struct ht_thread *t;
	__u32 zero = 0;
	__u64 now, ran;

	/*
	 * Testing aid: as the tracepoint does with a switch away from some
	 * untraced tasks, say nothing of this switch to a traced thread.
	 */
	if (cfg.hide_switch_ins && !thread_of(prev->pid) && thread_of(next->pid) &&
	    bpf_get_prandom_u32() % cfg.hide_switch_ins == 0)
		return 0;

	cs = bpf_map_lookup_elem(&cpu_slots, &zero);
	if (cs) {
		cs->tid = next->pid;
		cs->need = 0;
	}

	t = thread_of(prev->pid);
	if (t) {
		now = bpf_ktime_get_ns();
		if (t->off_ts) {
			/*
			 * It went on CPU unseen: the scheduler's own account of
			 * this run says when (set when the task was picked).
			 */
			ran = prev->se.sum_exec_runtime - prev->se.prev_sum_exec_runtime;
			unseen_switch_in(t, ran < now - t->off_ts ? now - ran : now, now);
		} else if (t->on_ts) {
			t->on_ns += now - t->on_ts;
		}
		t->on_ts = 0;
		/*
		 * Stopped by a signal (SIGSTOP, Ctrl-Z, `hangtrace run`'s own
		 * brief stops): the program waits on nothing of its own, so the
		 * time stopped is not off-CPU time.
		 */
		if (!preempt && (task_state_direct(prev) & HT_TASK_STOPPED)) {
			t->off_ts = 0;
		} else {
			t->off_ts = now;
			note_block(t, prev, preempt || task_state_direct(prev) == 0);
		}
	}

	t = thread_of(next->pid);
	if (t) {
		now = bpf_ktime_get_ns();
		if (t->off_ts && now > t->off_ts)
			end_block(t, now - t->off_ts);
		t->off_ts = 0;
		t->on_ts = now;
		if (cs)
			cs->need = t->pend.count || t->in_poll;
	}
	return 0;
}

/* Make the entry of thread @tid of traced process @pid (layout @proc). */
static __always_inline void add_thread(const struct ht_py_proc *proc, __u32 pid, __u32 tid)
{
	struct ht_thread *init;
	__u32 zero = 0;

	init = bpf_map_lookup_elem(&thread_init, &zero);	/* too big for the stack */
	if (!init)
		return;
	__builtin_memset(init, 0, sizeof(*init));
	init->pid = pid;
	init->tid = tid;
	init->syscall = -1;
	init->gil_lo[0] = proc->gil_lo[0];
	init->gil_lo[1] = proc->gil_lo[1];
	init->gil_hi[0] = proc->gil_hi[0];
	init->gil_hi[1] = proc->gil_hi[1];
	if (bpf_map_update_elem(&threads, &tid, init, BPF_NOEXIST) && !thread_of(tid))
		stat_inc(&stats.threads_full);
}

/* Tell userspace about a fork, exec or exit of a followed or traced process. */
static __always_inline void notify_proc(__u32 type, __u32 pid, __u32 tid, __u32 ppid,
					__u32 flags)
{
	struct ht_event *e;

	e = new_event(type);
	if (!e)
		return;
	e->start_ts = bpf_ktime_get_ns();
	e->key.pid = pid;
	e->key.tid = tid;
	e->wk_pid = ppid;
	e->wk_flags = flags;
	bpf_ringbuf_submit(e, 0);
}

/*
 * A new thread of a traced process is traced from its first switch.  A new
 * process is followed when its parent is (--children); a fork keeps its
 * parent's memory layout, so a child of a traced CPython is traced at once
 * with its parent's layout.  For anything else: one lookup.
 */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ppid = parent->tgid, pid = child->tgid, tid = child->pid, flags = 0;
	struct ht_py_proc *proc;
	__u32 *root;

	if (pid == ppid) {
		proc = bpf_map_lookup_elem(&py_procs, &ppid);
		if (proc)
			add_thread(proc, pid, tid);
		return 0;
	}
	root = bpf_map_lookup_elem(&followed, &ppid);
	if (!root)
		return 0;
	if (bpf_map_update_elem(&followed, &pid, root, BPF_ANY))
		stat_inc(&stats.procs_full);
	proc = bpf_map_lookup_elem(&py_procs, &ppid);
	if (proc) {
		if (bpf_map_update_elem(&py_procs, &pid, proc, BPF_ANY)) {
			stat_inc(&stats.procs_full);
		} else {
			add_thread(proc, pid, tid);
			flags = HT_FORK_TRACED;
		}
	}
	notify_proc(HT_EV_FORK, pid, tid, ppid, flags);
	return 0;
}

/*
 * exec replaces the image: the layout of a traced process is void from here,
 * so it leaves py_procs at once (no frame walk with the old layout on the new
 * program).  Userspace hears of it: the -p target's report ends there
 * (target.exec_into), a descendant's new interpreter, if any, is found once it
 * is mapped and initialised.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 pid = p->tgid, tid = p->pid, old = old_pid;

	if (!bpf_map_lookup_elem(&followed, &pid) && !bpf_map_lookup_elem(&py_procs, &pid))
		return 0;
	bpf_map_delete_elem(&py_procs, &pid);
	bpf_map_delete_elem(&threads, &tid);
	if (old != tid)
		bpf_map_delete_elem(&threads, &old);
	notify_proc(HT_EV_EXEC, pid, tid, 0, 0);
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	struct task_struct *cur;
	struct ht_py_proc *proc;
	struct ht_thread *t, *wt;
	__u32 pid;

	t = thread_of(p->pid);	/* first: an untraced wake-up costs this lookup only */
	if (!t || !t->off_ts || t->reason == HT_R_RUNQUEUE ||
	    bpf_ktime_get_ns() - t->off_ts < cfg.min_block_ns)
		return 0;
	cur = bpf_get_current_task_btf();

	t->kstack = save_task_kstack(p);
	t->wk_flags = HT_WK_CAPTURED;
	if (t->reason == HT_R_SOCKET || t->reason == HT_R_IO)
		read_sock(p, (__s32)t->arg0, &t->sock);
	/* current is the waker, or whatever an interrupt found running: a wait
	 * that timed out is told apart at syscall exit (timed_out()). */
	t->wk_tid = cur->pid;
	t->wk_pid = cur->tgid;
	bpf_get_current_comm(t->wk_comm, sizeof(t->wk_comm));
	if (t->wk_tid == 0)
		return 0;
	pid = t->wk_pid;
	proc = bpf_map_lookup_elem(&py_procs, &pid);
	if (!proc)
		return 0;
	wt = thread_of(cur->pid);
	if (wt)
		t->wk_stack = walk_current(proc, wt, SLOT_WAKE);
	return 0;
}

/*
 * sched_waking, not sched_wakeup: a wake-up of a task on an idle CPU is
 * queued to that CPU, where sched_wakeup then fires with the idle task as
 * current.  sched_waking always runs in the waker's own context.
 */
SEC("tp_btf/sched_waking")
int BPF_PROG(handle_sched_waking, struct task_struct *p)
{
	return on_wakeup(p);
}

/* Did syscall @nr end because its timeout expired (so a timer, not a thread, woke it)? */
static __always_inline int timed_out(__s32 nr, long ret)
{
	switch (nr) {
	case HT_NR_nanosleep:
	case HT_NR_clock_nanosleep:
	case HT_NR_select:
	case HT_NR_pselect6:
	case HT_NR_poll:
	case HT_NR_ppoll:
	case HT_NR_epoll_wait:
	case HT_NR_epoll_pwait:
	case HT_NR_epoll_pwait2:
		return ret == 0;
	case HT_NR_futex:
	case HT_NR_futex_waitv:
		return ret == -ETIMEDOUT;
	default:
		return 0;
	}
}

/*
 * A GIL wait that ended by its timeout: name the thread holding the GIL now,
 * with its Python stack.  It runs concurrently; its frames are read as they
 * are (current's address space is the holder's).
 */
static __noinline void gil_holder(const struct ht_py_proc *proc, struct ht_thread *t,
				  struct ht_pending *pd)
{
	__u64 hts = 0, native = 0;
	__u32 zero = SLOT_EXIT;
	struct ht_pystack *st;
	int locked = 1;

	if (!proc->gil_holder_addr ||
	    bpf_probe_read_user(&hts, sizeof(hts), (void *)proc->gil_holder_addr) || !hts ||
	    hts == t->tstate)
		return;
	if (proc->gil_locked_addr &&
	    (bpf_probe_read_user(&locked, sizeof(locked), (void *)proc->gil_locked_addr) || !locked))
		return;
	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return;
	pd->wk_flags = (pd->wk_flags & ~HT_WK_TIMER) | HT_WK_GIL_HOLDER;
	pd->wk_tstate = hts;
	pd->wk_pid = t->pid;
	pd->wk_tid = 0;
	if (proc->ts_native_thread_id >= 0 &&
	    !bpf_probe_read_user(&native, sizeof(native), (void *)(hts + proc->ts_native_thread_id)))
		pd->wk_tid = native;
	pd->wk_stack = walk_tstate(proc, hts, st);
	__builtin_memset(pd->wk_comm, 0, sizeof(pd->wk_comm));
}

/* Could syscall @nr be an event loop's wait (loop_wait() with any argument)? */
static __always_inline int poll_family(long nr)
{
	return nr == HT_NR_epoll_wait || nr == HT_NR_epoll_pwait || nr == HT_NR_epoll_pwait2 ||
	       nr == HT_NR_poll || nr == HT_NR_ppoll || nr == HT_NR_select ||
	       nr == HT_NR_pselect6;
}

/* Thread @t (current, @tid) is back from the syscall its pending block was in: record it. */
static __noinline void flush_pending(struct ht_thread *t, __u32 tid, long ret)
{
	struct ht_agg_key key = {};
	struct ht_py_proc *proc;
	struct ht_pending *pd;
	__u32 pid;

	pd = &t->pend;
	pid = t->pid;
	proc = bpf_map_lookup_elem(&py_procs, &pid);
	if (proc)
		key.stack = walk_current(proc, t, SLOT_EXIT);
	key.pid = t->pid;
	key.tid = tid;
	key.kstack = pd->kstack;
	if (timed_out(pd->syscall, ret)) {
		pd->wk_flags |= HT_WK_TIMER;
		pd->wk_tid = 0;
		pd->wk_pid = 0;
		pd->wk_stack = 0;
	}
	if (proc && pd->reason == HT_R_GIL && !pd->wk_tid)
		gil_holder(proc, t, pd);
	key.wk_stack = pd->wk_stack;
	key.reason = pd->reason;
	key.syscall = pd->syscall;
	record_block(&key, pd, proc, proc ? t->tstate : 0);
	__builtin_memset(pd, 0, sizeof(*pd));
}

SEC("tp_btf/sys_exit")
int BPF_PROG(handle_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), zero = 0;
	long nr = regs->orig_ax;
	struct cpu_slot *cs;
	struct ht_thread *t;
	__u64 now;

	cs = bpf_map_lookup_elem(&cpu_slots, &zero);
	if (cs && cs->tid == tid && !cs->need && !poll_family(nr))
		return 0;
	if (cs) {
		/* seen now: this task's next exits here have nothing to do */
		cs->tid = tid;
		cs->need = 0;
	}
	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t)
		return 0;
	if (t->off_ts) {
		/* running, yet off CPU for us: the switch-in went unreported */
		now = bpf_ktime_get_ns();
		unseen_switch_in(t, now, now);
	}
	if (t->in_poll || loop_wait(tid, nr, regs->si)) {
		/* back from the loop's wait: a new iteration starts */
		now = bpf_ktime_get_ns();
		if (t->in_poll)
			t->idle_ns += now - t->poll_enter_ts;
		else
			end_iteration(t, now);	/* it did not block */
		t->iter_start = now;
		t->in_poll = 0;
		t->loop_polls++;
	}
	if (t->pend.count)
		flush_pending(t, tid, ret);
	return 0;
}

/* cpu-clock samples: where traced threads spend their on-CPU time. */
SEC("perf_event")
int handle_sample(struct bpf_perf_event_data *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), pid;
	struct ht_oncpu_key key = {};
	struct ht_py_proc *proc;
	struct ht_thread *t;
	struct ht_event *e;
	__u64 one = 1, *cnt;

	t = bpf_map_lookup_elem(&threads, &tid);
	if (!t)
		return 0;
	if (t->off_ts) {
		/* running, yet off CPU for us: the switch-in went unreported */
		__u64 now = bpf_ktime_get_ns();

		unseen_switch_in(t, now, now);
	}
	pid = t->pid;
	proc = bpf_map_lookup_elem(&py_procs, &pid);
	if (!proc)
		return 0;
	stat_inc(&stats.samples);
	key.pid = pid;
	key.tid = tid;
	key.stack = walk_current(proc, t, SLOT_SAMPLE);
	cnt = bpf_map_lookup_elem(&oncpu, &key);
	if (cnt)
		__sync_fetch_and_add(cnt, 1);
	else if (bpf_map_update_elem(&oncpu, &key, &one, BPF_NOEXIST) &&
		 !bpf_map_lookup_elem(&oncpu, &key))
		stat_inc(&stats.samples_lost);
	/* a loop thread's samples also go on the timeline, to blame stalls */
	if (!t->loop_polls && tid != cfg.loop_tid)
		return 0;
	e = new_event(HT_EV_SAMPLE);
	if (!e)
		return 0;
	e->start_ts = bpf_ktime_get_ns();
	e->key.pid = pid;
	e->key.tid = tid;
	e->key.stack = key.stack;
	capture_task(proc, t->tstate, &e->task);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_sched_exit, struct task_struct *task)
{
	__u32 tid = task->pid, pid = task->tgid;
	struct ht_thread *t;

	t = bpf_map_lookup_elem(&threads, &tid);
	if (t)
		t->exited = 1;
	/* the last thread of its process: signal->live dropped to 0 before this tracepoint */
	if (BPF_CORE_READ(task, signal, live.counter))
		return 0;
	if (!bpf_map_lookup_elem(&followed, &pid) && !bpf_map_lookup_elem(&py_procs, &pid))
		return 0;
	/* the pid may be reused: nothing may apply this layout to another process */
	bpf_map_delete_elem(&py_procs, &pid);
	bpf_map_delete_elem(&followed, &pid);
	notify_proc(HT_EV_EXIT, pid, tid, 0, 0);
	return 0;
}

/* Per-task facts userspace cannot get from /proc without stopping the target. */
SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct ht_task_info info = {};
	struct pt_regs *regs;

	if (!task || BPF_CORE_READ(task, tgid) != iter_tgid)
		return 0;
	info.pid = BPF_CORE_READ(task, tgid);
	info.tid = BPF_CORE_READ(task, pid);
	info.fsbase = task_fsbase(task);
	info.state = get_task_state(task);
	info.syscall = -1;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
#ifdef __TARGET_ARCH_x86
	if (regs) {
		info.syscall = BPF_CORE_READ(regs, orig_ax);
		info.arg0 = BPF_CORE_READ(regs, di);
	}
#endif
	/* sched_info exists with CONFIG_SCHED_INFO (schedstats or delay accounting) */
	if (bpf_core_field_exists(task->sched_info)) {
		info.last_arrival_ns = BPF_CORE_READ(task, sched_info.last_arrival);
		info.last_ran_ns = BPF_CORE_READ(task, se.sum_exec_runtime) -
				   BPF_CORE_READ(task, se.prev_sum_exec_runtime);
	}
	bpf_seq_write(ctx->meta->seq, &info, sizeof(info));
	return 0;
}
