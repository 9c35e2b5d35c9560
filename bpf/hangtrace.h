/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ABI between hangtrace's BPF programs and its userspace: map keys and
 * values, events, config, counters.  Included by both sides; fixed-width types
 * and explicit padding only.
 */
#ifndef HT_HANGTRACE_H
#define HT_HANGTRACE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HT_MAX_PY_FRAMES	128	/* frames kept per stack; deeper stacks are cut */
#define HT_MAX_FRAME_STEPS	192	/* frames visited, including skipped shim frames */
#define HT_MAX_KSTACK		32	/* kernel frames kept per stack */
#define HT_MAX_INTERPS		4	/* interpreters walked per process */
#define HT_MAX_TSTATES		256	/* thread states walked per interpreter */

/* Why a thread was off-CPU.  Stable numbers: they are map keys. */
enum ht_reason {
	HT_R_OTHER = 0,
	HT_R_LOCK,		/* futex that is not the GIL's */
	HT_R_GIL,		/* futex inside the interpreter's GIL state */
	HT_R_SLEEP,		/* nanosleep family, select/poll with nothing to wait for */
	HT_R_SOCKET,		/* socket read/write/accept/connect, poll on a socket */
	HT_R_IO,		/* other file / pipe / poll-family I/O */
	HT_R_CHILD,		/* wait4 / waitid */
	HT_R_PAGEFAULT,		/* blocked outside a syscall, not runnable */
	HT_R_RUNQUEUE,		/* preempted while runnable: CPU contention */
	HT_R_IDLE,		/* an event loop's own poll wait: waiting for work */
	HT_R_CPU,		/* on-CPU (samples; userspace only) */
	HT_R_MAX,
};

/* One Python frame as BPF sees it: decoded to (function, file, line) in userspace. */
struct ht_frame {
	__u64 code;		/* PyCodeObject * */
	__u64 instr;		/* 3.6-3.10: f_lasti (sign-extended); 3.11+: instruction pointer */
};

#define HT_STACK_TRUNCATED	(1U << 0)	/* more than HT_MAX_PY_FRAMES frames */
#define HT_STACK_READ_ERR	(1U << 1)	/* a read failed mid-walk: stack is partial */

struct ht_pystack {
	__u32 depth;
	__u32 flags;
	struct ht_frame frames[HT_MAX_PY_FRAMES];	/* innermost first */
};

struct ht_kstack {
	__u32 depth;
	__u32 pad;
	__u64 ips[HT_MAX_KSTACK];
};

/*
 * Per-process interpreter layout, pushed by userspace into py_procs (key: tgid).
 * Offsets are -1 where the version lacks the field.
 */
struct ht_py_proc {
	__u64 interp_head_addr;	/* address of the first PyInterpreterState * */
	__u64 gil_lo[2];	/* futex addresses in [gil_lo, gil_hi) are GIL waits */
	__u64 gil_hi[2];
	__u64 gil_holder_addr;	/* address of the GIL holder's PyThreadState * */
	__u64 gil_locked_addr;	/* address of the GIL's int locked; 0: holder pointer is 0 when free */
	__u64 code_tag_mask;	/* f_executable tag bits to clear (3.14+) */
	__u32 version_hex;
	__s32 interp_next;
	__s32 interp_tstate_head;
	__s32 ts_next;
	__s32 ts_thread_id;
	__s32 ts_native_thread_id;
	__s32 ts_frame;
	__s32 cframe_current_frame;
	__s32 frame_back;
	__s32 frame_code;
	__s32 frame_lasti;
	__s32 frame_instr;
	__s32 frame_owner;
	__u32 owner_skip_min;	/* skip frames whose owner >= this; 0: no owner field */
	/* 3.14+, from _AsyncioDebug once the _asyncio module is loaded; 0: off */
	__s32 ts_running_task;	/* thread state: PyObject *asyncio_running_task */
	__s32 task_name;	/* TaskObj: PyObject *task_name */
	__s32 task_coro;	/* TaskObj: PyObject *task_coro */
	__s32 coro_code;	/* coroutine: gi_iframe + the frame's f_executable */
	/*
	 * The target's PID namespace (st_dev, st_ino of /proc/PID/ns/pid) when
	 * it is not ours: native_thread_id holds TIDs of that namespace.
	 */
	__u64 pidns_dev;
	__u64 pidns_ino;
};

/* Addresses of the socket a thread blocked on, read at wake-up (ports in host order). */
struct ht_sockaddr {
	__u16 family;		/* AF_INET / AF_INET6; 0: not a socket or unknown */
	__u16 lport;
	__u16 rport;		/* 0: not connected (a listener, or unconnected UDP) */
	__u16 pad;
	__u8 laddr[16];
	__u8 raddr[16];
};

/* Per-thread state (map threads, key: tid).  Userspace reads it at the end. */
struct ht_pending {
	__u64 start_ts;		/* first long block's start */
	__u64 total_ns;
	__u64 max_ns;
	__u64 wk_stack;		/* of the longest block */
	__u64 kstack;
	__u32 count;
	__u32 reason;
	__s32 syscall;
	__s32 fd;
	__u32 wk_tid;
	__u32 wk_pid;
	__u32 wk_flags;
	__u32 pad;
	struct ht_sockaddr sock;
	char wk_comm[16];
	__u64 wk_tstate;
};

#define HT_WK_TIMER	(1U << 0)	/* the wait timed out: a timer woke it, not a thread */
#define HT_WK_GIL_HOLDER (1U << 1)	/* "waker" is the GIL's holder when the wait ended */
#define HT_WK_CAPTURED	(1U << 2)	/* a wake-up was seen for this block */

struct ht_thread {
	__u32 pid;
	__u32 tid;
	__u64 gil_lo[2];	/* the process's GIL futex ranges, copied: no lookup per switch */
	__u64 gil_hi[2];
	__u64 off_ts;		/* when it went off-CPU; 0 while on CPU / unknown */
	__u64 on_ts;		/* when it went on-CPU; 0 while off CPU / unknown */
	__u64 on_ns;		/* on-CPU time in the window */
	__u64 tstate;		/* cached PyThreadState * (validated on use) */
	__u64 fsbase;		/* pthread_self() on x86_64 glibc */
	__u64 arg0;		/* first syscall argument at switch-out */
	__s32 syscall;		/* syscall in progress at switch-out, -1 none */
	__u32 reason;		/* of the current off-CPU interval */
	/* filled at wake-up of a long block */
	__u64 wk_stack;
	__u64 kstack;
	__u32 wk_tid;
	__u32 wk_pid;
	__u32 wk_flags;
	__u32 exited;
	struct ht_sockaddr sock;
	char wk_comm[16];
	__u64 wk_tstate;	/* GIL holder's tstate, for userspace to name (< 3.11) */
	/* event-loop state */
	__u64 poll_enter_ts;	/* entry into the current poll-family wait */
	__u64 iter_start;	/* last return from a poll-family wait: the iteration's start */
	__u64 idle_ns;		/* time inside poll-family waits */
	__u32 loop_polls;	/* poll-family waits entered in the window */
	__u32 in_poll;
	__u32 stalls;
	__u32 pad2;
	struct ht_pending pend;	/* long blocks waiting for their Python stack */
	__u64 off_ns[HT_R_MAX];	/* every interval, short ones included */
	__u32 off_cnt[HT_R_MAX];
};

/* Aggregation of long blocks (map offcpu). */
struct ht_agg_key {
	__u32 pid;
	__u32 tid;
	__u64 stack;		/* ht_pystack id in pystacks, 0: none */
	__u64 kstack;		/* ht_kstack id in kstacks, 0: none */
	__u64 wk_stack;		/* waker's Python stack id, 0: none */
	__u32 pad;
	__u16 reason;
	__s16 syscall;
};

struct ht_agg_val {
	__u64 total_ns;
	__u64 max_ns;
	__u64 last_ts;
	__u32 count;
	__s32 fd;		/* last fd blocked on, -1 none */
	/* the waker of the longest block */
	__u32 wk_tid;		/* 0: none (timeout) */
	__u32 wk_pid;
	__u32 wk_flags;
	__u32 pad;
	struct ht_sockaddr sock;
	char wk_comm[16];
	__u64 wk_tstate;
};

/* On-CPU samples (map oncpu). */
struct ht_oncpu_key {
	__u32 pid;
	__u32 tid;
	__u64 stack;
};

#define HT_TASK_NAME_RAW 192	/* bytes of a task's name object copied */

/*
 * The asyncio task a 3.14+ thread was running, copied when a long block or a
 * loop sample is taken: the task may be gone by the time userspace reads the
 * event (a handler that returns right after blocking), so its name object's
 * first bytes (a str's header and data, or the int N of "Task-N") and its
 * coroutine's code object (which outlives it) are taken along.
 */
struct ht_task_cap {
	__u64 task;		/* PyObject * of the task, 0: none (userspace: its task number) */
	__u64 coro_code;	/* its coroutine's f_executable (tag bits kept), 0: unknown */
	__u32 name_len;		/* bytes of name[] read, 0: none */
	__u32 pad;
	__u8 name[HT_TASK_NAME_RAW];
};

enum ht_event_type {
	HT_EV_BLOCK = 1,	/* one long block (or merged blocks in one syscall) */
	HT_EV_STALL,		/* a loop iteration longer than stall_ns: start_ts, dur_ns, key.tid */
	HT_EV_SAMPLE,		/* an on-CPU sample of a loop thread: start_ts, key.stack */
	/*
	 * Process life cycle of followed and traced processes (key.pid: the
	 * process, key.tid: the thread that did it, wk_pid: the parent).
	 */
	HT_EV_FORK,		/* a followed process forked key.pid; wk_flags: HT_FORK_* */
	HT_EV_EXEC,		/* key.pid (followed or traced) exec'd: its old layout is gone */
	HT_EV_EXIT,		/* the last thread of key.pid (followed or traced) exited */
};

#define HT_FORK_TRACED	(1U << 0)	/* the child got its parent's py_procs entry */

struct ht_event {
	__u32 type;
	__u32 pad;
	__u64 start_ts;
	__u64 dur_ns;
	struct ht_agg_key key;
	__s32 fd;
	__u32 wk_pid;
	struct ht_sockaddr sock;
	char wk_comm[16];
	__u64 wk_tstate;
	__u32 wk_flags;
	__u32 wk_tid;
	struct ht_task_cap task;
};

/* One record per task from the task iterator (iter/task). */
struct ht_task_info {
	__u32 pid;
	__u32 tid;
	__u64 fsbase;
	__u32 state;		/* task __state */
	__s32 syscall;		/* -1 when not in a syscall */
	__u64 arg0;
	/*
	 * When it last left a CPU, for `dump`'s "blocked for": the scheduler
	 * clock (rq clock, ns) when it last got a CPU, and how long it then ran
	 * (CPU time of that stint).  0 when the kernel has no sched_info.
	 */
	__u64 last_arrival_ns;	/* sched_info.last_arrival */
	__u64 last_ran_ns;	/* se.sum_exec_runtime - se.prev_sum_exec_runtime */
};

/* Read-only config, set between open and load. */
struct ht_config {
	__u64 min_block_ns;
	__u64 stall_ns;		/* loop iterations at least this long are stalls */
	__u32 max_frames;	/* <= HT_MAX_PY_FRAMES */
	__u32 self_pid;
	__u32 loop_tid;		/* --loop-tid: this thread is a loop thread whatever it polls */
	__u32 bounded_loops;	/* 1: no bpf_loop(), as on kernels < 5.17 (tests the fallback) */
	__u32 hide_switch_ins;	/* testing aid: ignore every Nth switch-in of a traced thread */
	__u32 pad;
};

/* Drop and failure counters (in .bss).  Never silently zero. */
struct ht_stats {
	__u64 ringbuf_full;
	__u64 threads_full;
	__u64 agg_full;
	__u64 stacks_full;
	__u64 kstack_fail;
	__u64 py_no_tstate;
	__u64 py_read_fail;
	__u64 py_truncated;
	__u64 pend_merged;
	__u64 long_blocks;
	__u64 samples;
	__u64 samples_lost;	/* samples whose stack or aggregate did not fit */
	__u64 stalls;
	__u64 procs_full;	/* forked processes that could not be followed or traced */
	__u64 unseen_switch_ins;	/* switch-ins the tracepoint did not report, repaired */
};

#endif /* HT_HANGTRACE_H */
