/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Blocking reason from the syscall a thread went off-CPU in.  Shared by the
 * BPF programs and the host (unit tests, `dump`), so both classify alike.
 * x86_64 syscall numbers.
 */
#ifndef HT_REASON_H
#define HT_REASON_H

#include "hangtrace.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

enum ht_fd_kind {
	HT_FD_UNKNOWN = 0,
	HT_FD_SOCKET,
	HT_FD_OTHER,
};

/* x86_64 numbers of the syscalls the classifier cares about. */
enum {
	HT_NR_read = 0, HT_NR_write = 1, HT_NR_poll = 7, HT_NR_pread64 = 17,
	HT_NR_pwrite64 = 18, HT_NR_readv = 19, HT_NR_writev = 20, HT_NR_select = 23,
	HT_NR_pause = 34, HT_NR_nanosleep = 35, HT_NR_sendfile = 40, HT_NR_connect = 42,
	HT_NR_accept = 43, HT_NR_sendto = 44, HT_NR_recvfrom = 45, HT_NR_sendmsg = 46,
	HT_NR_recvmsg = 47, HT_NR_wait4 = 61, HT_NR_semop = 65, HT_NR_msgsnd = 69, HT_NR_msgrcv = 70,
	HT_NR_fcntl = 72, HT_NR_flock = 73, HT_NR_fsync = 74, HT_NR_fdatasync = 75,
	HT_NR_futex = 202, HT_NR_semtimedop = 220, HT_NR_clock_nanosleep = 230,
	HT_NR_epoll_wait = 232, HT_NR_waitid = 247, HT_NR_pselect6 = 270, HT_NR_ppoll = 271,
	HT_NR_splice = 275, HT_NR_epoll_pwait = 281, HT_NR_accept4 = 288, HT_NR_preadv = 295,
	HT_NR_pwritev = 296, HT_NR_recvmmsg = 299, HT_NR_sendmmsg = 307, HT_NR_io_uring_enter = 426,
	HT_NR_epoll_pwait2 = 441, HT_NR_futex_waitv = 449,
};

/* Does this syscall's first argument name a file descriptor worth typing? */
static __always_inline int ht_syscall_fd_arg(long nr)
{
	switch (nr) {
	case HT_NR_read: case HT_NR_write: case HT_NR_pread64: case HT_NR_pwrite64:
	case HT_NR_readv: case HT_NR_writev: case HT_NR_preadv: case HT_NR_pwritev:
	case HT_NR_sendfile: case HT_NR_splice:
		return 1;
	default:
		return 0;
	}
}

/*
 * ht_is_loop_wait - is syscall @nr (second argument @a1) an event loop's own
 * wait?  epoll is only ever used that way; poll/ppoll count with two or more
 * descriptors (a loop always has its wake-up fd besides its sockets), which
 * keeps out socket timeouts (poll on one fd).
 */
static __always_inline int ht_is_loop_wait(long nr, __u64 a1)
{
	switch (nr) {
	case HT_NR_epoll_wait: case HT_NR_epoll_pwait: case HT_NR_epoll_pwait2:
		return 1;
	case HT_NR_poll: case HT_NR_ppoll:
		return a1 >= 2;
	default:
		return 0;
	}
}

/*
 * ht_classify - the reason for a thread blocked in syscall @nr (-1: none).
 * @arg0: first argument (futex address, fd, nfds); [@gil_lo, @gil_hi): the
 * GIL's futex range(s); @fd_kind: type of the fd the call waits on, where known.
 */
static __always_inline __u32 ht_classify(long nr, __u64 arg0, const __u64 *gil_lo,
					 const __u64 *gil_hi, int fd_kind)
{
	switch (nr) {
	case HT_NR_futex:
		if ((arg0 >= gil_lo[0] && arg0 < gil_hi[0]) ||
		    (arg0 >= gil_lo[1] && arg0 < gil_hi[1]))
			return HT_R_GIL;
		return HT_R_LOCK;
	case HT_NR_futex_waitv: case HT_NR_flock: case HT_NR_semop: case HT_NR_semtimedop:
		return HT_R_LOCK;
	case HT_NR_fcntl:		/* F_SETLKW is the blocking one */
		return HT_R_LOCK;
	case HT_NR_nanosleep: case HT_NR_clock_nanosleep: case HT_NR_pause:
		return HT_R_SLEEP;
	case HT_NR_select: case HT_NR_poll: case HT_NR_pselect6: case HT_NR_ppoll:
		/* time.sleep() before 3.11 is select(0, NULL, NULL, NULL, &tv) */
		if (arg0 == 0)
			return HT_R_SLEEP;
		return fd_kind == HT_FD_SOCKET ? HT_R_SOCKET : HT_R_IO;
	case HT_NR_connect: case HT_NR_accept: case HT_NR_accept4: case HT_NR_sendto:
	case HT_NR_recvfrom: case HT_NR_sendmsg: case HT_NR_recvmsg: case HT_NR_recvmmsg:
	case HT_NR_sendmmsg:
		return HT_R_SOCKET;
	case HT_NR_read: case HT_NR_write: case HT_NR_pread64: case HT_NR_pwrite64:
	case HT_NR_readv: case HT_NR_writev: case HT_NR_preadv: case HT_NR_pwritev:
	case HT_NR_sendfile: case HT_NR_splice:
		return fd_kind == HT_FD_SOCKET ? HT_R_SOCKET : HT_R_IO;
	case HT_NR_epoll_wait: case HT_NR_epoll_pwait: case HT_NR_epoll_pwait2:
	case HT_NR_fsync: case HT_NR_fdatasync: case HT_NR_io_uring_enter:
	case HT_NR_msgsnd: case HT_NR_msgrcv:
		return HT_R_IO;
	case HT_NR_wait4: case HT_NR_waitid:
		return HT_R_CHILD;
	case -1:
		return HT_R_PAGEFAULT;
	default:
		return HT_R_OTHER;
	}
}

#endif /* HT_REASON_H */
