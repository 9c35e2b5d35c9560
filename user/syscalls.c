// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stddef.h>

#include "syscalls.h"

/* Generated at build time from the kernel headers' <asm/unistd_64.h>. */
static const char *const names[] = {
#include "syscalls.inc"
};

const char *syscall_name(long nr)
{
	if (nr < 0 || (size_t)nr >= sizeof(names) / sizeof(names[0]))
		return NULL;
	return names[nr];
}
