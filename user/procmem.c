// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procmem.h"

struct procmem {
	int fd;
	pid_t pid;
	uint64_t serial;	/* unique per open, for caches keyed by handle */
	bool fail;		/* the testing aid: fail every read (-EIO) */
};

/* Is @tid in HANGTRACE_FAULT_TIDS? */
static bool fault_tid(uint32_t tid)
{
	const char *s = getenv("HANGTRACE_FAULT_TIDS");
	char *end;

	while (s && *s && tid) {
		if (strtoul(s, &end, 10) == tid && (*end == ',' || !*end))
			return true;
		s = strchr(s, ',');
		s = s ? s + 1 : NULL;
	}
	return false;
}

void procmem__on_behalf_of(struct procmem *m, uint32_t tid)
{
	if (m)
		m->fail = fault_tid(tid);
}

struct procmem *procmem__open(pid_t pid)
{
	struct procmem *m;
	char path[64];
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	static uint64_t serials;

	m->fd = fd;
	m->pid = pid;
	m->serial = ++serials;
	return m;
}

void procmem__close(struct procmem *m)
{
	if (!m)
		return;
	close(m->fd);
	free(m);
}

int procmem__read(struct procmem *m, uint64_t addr, void *buf, size_t len)
{
	ssize_t n;

	if (!m || !len)
		return m ? 0 : -EINVAL;
	/* Addresses with the top bit set are kernel space or garbage. */
	if (addr == 0 || addr >= (1ULL << 63) || addr + len < addr)
		return -EFAULT;
	if (m->fail)
		return -EIO;
	n = pread(m->fd, buf, len, (off_t)addr);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EFAULT;
}

uint64_t procmem__serial(const struct procmem *m)
{
	return m ? m->serial : 0;
}

int procmem__read_u64(struct procmem *m, uint64_t addr, uint64_t *out)
{
	return procmem__read(m, addr, out, sizeof(*out));
}

int procmem__read_u32(struct procmem *m, uint64_t addr, uint32_t *out)
{
	return procmem__read(m, addr, out, sizeof(*out));
}
