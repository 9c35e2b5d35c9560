/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Read-only access to another process's memory (/proc/PID/mem).  Never stops
 * the target.  Every read is bounded and may fail: the target is untrusted.
 */
#ifndef HT_PROCMEM_H
#define HT_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procmem;

/* procmem__open - open @pid's memory; NULL and errno on failure. */
struct procmem *procmem__open(pid_t pid);
void procmem__close(struct procmem *m);

/* procmem__read - read exactly @len bytes at @addr; 0 or -errno (-EFAULT for short). */
int procmem__read(struct procmem *m, uint64_t addr, void *buf, size_t len);

/*
 * procmem__on_behalf_of - the reads that follow are for thread @tid (0: none).
 * A testing aid hangs off it: with HANGTRACE_FAULT_TIDS=TID[,TID...] in the
 * environment, those reads fail with -EIO, as if that thread's frames were
 * unmapped (docs/hardening.md).
 */
void procmem__on_behalf_of(struct procmem *m, uint32_t tid);

/* procmem__serial - a number no other handle of this run has (0 for NULL). */
uint64_t procmem__serial(const struct procmem *m);

/* Convenience: read a little-endian u64 / u32 / pointer. */
int procmem__read_u64(struct procmem *m, uint64_t addr, uint64_t *out);
int procmem__read_u32(struct procmem *m, uint64_t addr, uint32_t *out);

#endif
