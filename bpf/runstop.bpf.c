// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `hangtrace run`: stop the command at the moments its interpreter can be
 * found, so that tracing starts before the first line of the user's code.
 *
 *   exec        every exec of the command's process (its first image, then
 *               each image a wrapper - a shell script, env, a launcher - execs)
 *   ldso        uprobe on the dynamic loader's _dl_debug_state, which it calls
 *               once the initial libraries (libpython) are mapped, and around
 *               each dlopen()
 *   hook        uprobe on an interpreter function that runs after the runtime
 *               is initialised and before the main module (Py_RunMain, ...)
 *
 *   fini        uprobes, while tracing, on Py_FinalizeEx and libc's _exit: the
 *               process is about to exit; userspace reads what is left (code
 *               objects, for the report's stacks) while its memory is there
 *
 * Each program stops the whole process with SIGSTOP; userspace sees the
 * stop with waitpid(WUNTRACED), tells which one it was from the counters,
 * and continues it with SIGCONT.  Only the process in target_tgid is ever
 * stopped.
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SIGSTOP 19

__u32 target_tgid = 0;		/* the command's pid, set after fork */
__u64 exec_stops = 0;
__u64 ldso_stops = 0;
__u64 hook_stops = 0;
__u64 fini_stops = 0;

static __always_inline int stop_target(__u64 *counter)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (!target_tgid || tgid != target_tgid)
		return 0;
	/* count only stops that will happen: userspace matches stops to counters */
	if (bpf_send_signal(SIGSTOP) == 0)
		__sync_fetch_and_add(counter, 1);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(run_exec)
{
	return stop_target(&exec_stops);
}

SEC("uprobe")
int BPF_KPROBE(run_ldso)
{
	return stop_target(&ldso_stops);
}

SEC("uprobe")
int BPF_KPROBE(run_hook)
{
	return stop_target(&hook_stops);
}

SEC("uprobe")
int BPF_KPROBE(run_fini)
{
	return stop_target(&fini_stops);
}
