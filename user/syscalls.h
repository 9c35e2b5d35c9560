/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_SYSCALLS_H
#define HT_SYSCALLS_H

/* syscall_name - "clock_nanosleep" for its number; NULL when unknown or @nr < 0. */
const char *syscall_name(long nr);

#endif
