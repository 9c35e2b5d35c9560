// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The blocking-reason classifier, compiled for the host exactly as BPF compiles it. */
#include <stdio.h>

#include "check.h"
#include "hangtrace.h"
#include "reason.h"


static const __u64 gil_lo[2] = { 0x7f0000001000, 0x600000 };
static const __u64 gil_hi[2] = { 0x7f0000001000 + 208, 0x600000 + 40 };

static void expect(long nr, __u64 arg, int kind, __u32 want, const char *what)
{
	__u32 got = ht_classify(nr, arg, gil_lo, gil_hi, kind);

	CHECK(got == want, "%s: syscall %ld arg %#llx kind %d -> %u, want %u", what, nr,
	      (unsigned long long)arg, kind, got, want);
}

int main(void)
{
	/* futexes: inside either GIL range is the GIL, anything else a lock */
	expect(HT_NR_futex, gil_lo[0], 0, HT_R_GIL, "GIL cond start");
	expect(HT_NR_futex, gil_hi[0] - 4, 0, HT_R_GIL, "GIL inside");
	expect(HT_NR_futex, gil_hi[0], 0, HT_R_LOCK, "just past the GIL");
	expect(HT_NR_futex, gil_lo[0] - 8, 0, HT_R_LOCK, "just before the GIL");
	expect(HT_NR_futex, gil_lo[1] + 16, 0, HT_R_GIL, "3.6 gil_mutex");
	expect(HT_NR_futex, 0x55550000, 0, HT_R_LOCK, "threading.Lock");
	expect(HT_NR_futex_waitv, 0, 0, HT_R_LOCK, "futex_waitv");
	/* sleeps, including time.sleep() before 3.11: select/poll with nothing */
	expect(HT_NR_clock_nanosleep, 0, 0, HT_R_SLEEP, "clock_nanosleep");
	expect(HT_NR_nanosleep, 0, 0, HT_R_SLEEP, "nanosleep");
	expect(HT_NR_select, 0, 0, HT_R_SLEEP, "select(0, ...)");
	expect(HT_NR_pselect6, 0, 0, HT_R_SLEEP, "pselect6(0, ...)");
	expect(HT_NR_poll, 0, 0, HT_R_SLEEP, "poll(NULL, 0)");
	expect(HT_NR_poll, 1, HT_FD_SOCKET, HT_R_SOCKET, "poll on a socket");
	expect(HT_NR_poll, 1, HT_FD_OTHER, HT_R_IO, "poll on a pipe");
	expect(HT_NR_select, 5, HT_FD_UNKNOWN, HT_R_IO, "select on fds");
	/* sockets and files */
	expect(HT_NR_recvfrom, 3, 0, HT_R_SOCKET, "recvfrom");
	expect(HT_NR_accept4, 3, 0, HT_R_SOCKET, "accept4");
	expect(HT_NR_connect, 3, 0, HT_R_SOCKET, "connect");
	expect(HT_NR_read, 3, HT_FD_SOCKET, HT_R_SOCKET, "read on a socket");
	expect(HT_NR_read, 3, HT_FD_OTHER, HT_R_IO, "read on a pipe");
	expect(HT_NR_read, 3, HT_FD_UNKNOWN, HT_R_IO, "read, fd unknown");
	expect(HT_NR_epoll_wait, 3, 0, HT_R_IO, "epoll_wait");
	expect(HT_NR_fsync, 3, 0, HT_R_IO, "fsync");
	/* children, no syscall, anything else */
	expect(HT_NR_wait4, 0, 0, HT_R_CHILD, "wait4");
	expect(HT_NR_waitid, 0, 0, HT_R_CHILD, "waitid");
	expect(-1, 0, 0, HT_R_PAGEFAULT, "no syscall");
	expect(39 /* getpid */, 0, 0, HT_R_OTHER, "getpid");
	/* which syscalls carry an fd worth typing */
	CHECK(ht_syscall_fd_arg(HT_NR_read) && ht_syscall_fd_arg(HT_NR_writev), "fd syscalls");
	CHECK(!ht_syscall_fd_arg(HT_NR_futex) && !ht_syscall_fd_arg(HT_NR_poll), "non-fd syscalls");

	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
