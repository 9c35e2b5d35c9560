// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * procmem over a fake image (the seam the fuzz targets use): reads inside a
 * region, reads that cross its end or fall between regions, the first region
 * winning on overlap, the address checks shared with the real reader, and the
 * tap seeing exactly the successful reads.  Then the same tap on the real
 * reader, over this process's own memory.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "procmem.h"

struct tap_log {
	int calls;
	uint64_t last_addr;
	size_t last_len;
	unsigned char last[16];
};

static void tap(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	struct tap_log *t = ctx;

	t->calls++;
	t->last_addr = addr;
	t->last_len = len;
	memcpy(t->last, buf, len < sizeof(t->last) ? len : sizeof(t->last));
}

int main(void)
{
	static const unsigned char a[16] = "0123456789abcdef", b[8] = "ABCDEFGH", c[4] = "wxyz";
	const struct procmem_region regions[] = {
		{ 0x1000, a, sizeof(a) },
		{ 0x2000, b, sizeof(b) },
		{ 0x2004, c, sizeof(c) },	/* overlaps b's tail: b wins */
	};
	static const char self[] = "bytes of this very process";
	struct tap_log log = { 0 };
	struct procmem *m;
	unsigned char buf[32];
	uint64_t v64;

	m = procmem__open_image(regions, 3);
	CHECK(m != NULL, "procmem__open_image");
	if (!m)
		return CHECK_SUMMARY();
	procmem__set_tap(m, tap, &log);

	CHECK(procmem__read(m, 0x1000, buf, 16) == 0 && !memcmp(buf, a, 16), "whole region");
	CHECK(log.calls == 1 && log.last_addr == 0x1000 && log.last_len == 16, "tap saw the read");
	CHECK(procmem__read(m, 0x100c, buf, 4) == 0 && !memcmp(buf, "cdef", 4), "region tail");
	CHECK(procmem__read(m, 0x100c, buf, 5) == -EFAULT, "one byte past the end");
	CHECK(procmem__read(m, 0x0fff, buf, 2) == -EFAULT, "one byte before the start");
	CHECK(procmem__read(m, 0x1010, buf, 1) == -EFAULT, "the byte after the region");
	CHECK(procmem__read(m, 0x1800, buf, 1) == -EFAULT, "between regions");
	CHECK(procmem__read(m, 0x2004, buf, 4) == 0 && !memcmp(buf, "EFGH", 4),
	      "first region wins an overlap");
	CHECK(procmem__read(m, 0x2006, buf, 4) == -EFAULT,
	      "a read no one region holds fails, even across two adjacent ones");
	CHECK(procmem__read_u64(m, 0x1008, &v64) == 0 && !memcmp(&v64, "89abcdef", 8), "u64");
	CHECK(procmem__read(m, 0, buf, 1) == -EFAULT, "NULL address");
	CHECK(procmem__read(m, 1ULL << 63, buf, 1) == -EFAULT, "kernel half");
	CHECK(procmem__read(m, UINT64_MAX - 2, buf, 8) == -EFAULT, "address wraps");
	CHECK(procmem__read(m, 0x1000, buf, 0) == 0, "zero-length read");
	CHECK(log.calls == 4, "tap called once per successful read (%d)", log.calls);
	procmem__close(m);

	m = procmem__open_image(NULL, 0);
	CHECK(m != NULL && procmem__read(m, 0x1000, buf, 1) == -EFAULT, "empty image");
	procmem__close(m);
	procmem__close(NULL);

	/* the real reader, with the same tap */
	memset(&log, 0, sizeof(log));
	m = procmem__open(getpid());
	CHECK(m != NULL, "procmem__open(self)");
	if (m) {
		procmem__set_tap(m, tap, &log);
		CHECK(procmem__read(m, (uint64_t)(uintptr_t)self, buf, 10) == 0 &&
		      !memcmp(buf, self, 10), "read own memory");
		CHECK(log.calls == 1 && log.last_addr == (uint64_t)(uintptr_t)self &&
		      !memcmp(log.last, self, 10), "tap on the real reader");
		procmem__close(m);
	}
	return CHECK_SUMMARY();
}
