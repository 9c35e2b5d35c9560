/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What /proc says about one thread of another process, right now: its name,
 * its scheduler state, the system call it is in (with its arguments) and why
 * that blocks it, its kernel stack.  Shared by the tracer's end-of-window
 * completion (analyze.c) and `hangtrace dump`.  Nothing here stops or signals
 * the target.
 */
#ifndef HT_PROCTHREAD_H
#define HT_PROCTHREAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ht_py_proc;
struct procmem;

/* procthread__comm - /proc/PID/task/TID/comm into @out ("" when gone). */
void procthread__comm(pid_t pid, pid_t tid, char *out, size_t outsz);

/* procthread__cmdline - the process's command line, arguments joined by spaces; malloc'ed, NULL if none. */
char *procthread__cmdline(pid_t pid);

/*
 * procthread__state - the state letter of /proc/PID/task/TID/stat (R, S, D,
 * T, t, Z, X, ...); @tid 0 reads the process's own stat.  0 or -errno.
 */
int procthread__state(pid_t pid, pid_t tid, char *state);

/*
 * procthread__syscall - /proc/PID/task/TID/syscall: *@nr is the system call
 * the thread is blocked in (-1: blocked outside any system call) and @args
 * its six arguments.  -EBUSY when the thread is running (the kernel does not
 * say), other -errno when unreadable.  @sp (may be NULL) gets the user
 * stack pointer, 0 when not shown.
 */
int procthread__syscall(pid_t pid, pid_t tid, long *nr, uint64_t args[6], uint64_t *sp);

/*
 * procthread__kstack - /proc/PID/task/TID/stack as function names, innermost
 * first: *@names is a malloc'ed array of *@depth malloc'ed strings (at most
 * HT_MAX_KSTACK; free with procthread__kstack_free()).  An unreadable stack
 * gives depth 0.  0 or -ENOMEM.
 */
int procthread__kstack(pid_t pid, pid_t tid, char ***names, int *depth);
void procthread__kstack_free(char **names, int depth);

/* procthread__fd_kind - enum ht_fd_kind of descriptor @fd of @pid (socket or not). */
int procthread__fd_kind(pid_t pid, long fd);

/* Why a thread is blocked right now, from its system call. */
struct procthread_wait {
	long syscall;		/* -1: none known (outside a system call, or unreadable) */
	uint64_t args[6];	/* its arguments, when @syscall >= 0 */
	uint64_t sp;		/* its user stack pointer, 0 unknown */
	int reason;		/* enum ht_reason, classified by bpf/reason.h as BPF does */
	int fd;			/* the descriptor it waits on, -1 none */
	char *fd_desc;		/* what @fd is ("127.0.0.1:5432", "pipe", ...), malloc'ed, or NULL */
};

/*
 * procthread__classify - classify thread @tid of @pid blocked right now:
 * syscall, reason, descriptor.  @mem reads poll()'s first pollfd; @pp gives
 * the GIL's futex range.  @w->fd_desc must be freed by the caller.
 */
void procthread__classify(pid_t pid, pid_t tid, struct procmem *mem, const struct ht_py_proc *pp,
			  struct procthread_wait *w);

#endif
