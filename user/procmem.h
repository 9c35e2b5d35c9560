/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Read-only access to another process's memory (/proc/PID/mem).  Never stops
 * the target.  Every read is bounded and may fail: the target is untrusted.
 *
 * The same reader can also serve a fake in-memory image (a few regions at
 * chosen addresses), so the decoders of target memory can be fuzzed and
 * unit-tested without a live process; and a tap can observe every successful
 * read (tests/fuzz/snapshot.c records real inputs through it).
 */
#ifndef HT_PROCMEM_H
#define HT_PROCMEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct procmem;

/* procmem__open - open @pid's memory; NULL and errno on failure. */
struct procmem *procmem__open(pid_t pid);

/* One region of a fake image: @len bytes at @data, seen at target address @addr. */
struct procmem_region {
	uint64_t addr;
	const void *data;
	size_t len;
};

/*
 * procmem__open_image - a reader over @nr regions (the array is copied, the
 * bytes are not: they must outlive the reader).  A read succeeds only when it
 * lies entirely inside one region; the first region that holds it wins.  NULL
 * and errno on failure.
 */
struct procmem *procmem__open_image(const struct procmem_region *regions, size_t nr);

void procmem__close(struct procmem *m);

/* procmem__read - read exactly @len bytes at @addr; 0 or -errno (-EFAULT for short). */
int procmem__read(struct procmem *m, uint64_t addr, void *buf, size_t len);

/* Convenience: read a little-endian u64 / u32 / pointer. */
int procmem__read_u64(struct procmem *m, uint64_t addr, uint64_t *out);
int procmem__read_u32(struct procmem *m, uint64_t addr, uint32_t *out);

/* A tap sees every successful read: its address and the bytes read. */
typedef void (*procmem_tap_fn)(void *ctx, uint64_t addr, const void *buf, size_t len);

/* procmem__set_tap - call @fn(@ctx, ...) after each successful read; @fn NULL removes it. */
void procmem__set_tap(struct procmem *m, procmem_tap_fn fn, void *ctx);

#endif
