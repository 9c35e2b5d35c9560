// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procmem.h"

struct procmem {
	int fd;				/* /proc/PID/mem, or -1 for an image */
	pid_t pid;
	struct procmem_region *regions;	/* image only */
	size_t nr_regions;
	procmem_tap_fn tap;
	void *tap_ctx;
};

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
	m->fd = fd;
	m->pid = pid;
	return m;
}

struct procmem *procmem__open_image(const struct procmem_region *regions, size_t nr)
{
	struct procmem *m;

	if (!regions && nr) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->fd = -1;
	if (nr) {
		m->regions = calloc(nr, sizeof(*regions));
		if (!m->regions) {
			free(m);
			return NULL;
		}
		memcpy(m->regions, regions, nr * sizeof(*regions));
	}
	m->nr_regions = nr;
	return m;
}

void procmem__close(struct procmem *m)
{
	if (!m)
		return;
	if (m->fd >= 0)
		close(m->fd);
	free(m->regions);
	free(m);
}

void procmem__set_tap(struct procmem *m, procmem_tap_fn fn, void *ctx)
{
	m->tap = fn;
	m->tap_ctx = ctx;
}

static int image_read(const struct procmem *m, uint64_t addr, void *buf, size_t len)
{
	size_t i;

	for (i = 0; i < m->nr_regions; i++) {
		const struct procmem_region *r = &m->regions[i];

		if (addr >= r->addr && addr - r->addr <= r->len && len <= r->len - (addr - r->addr)) {
			memcpy(buf, (const char *)r->data + (addr - r->addr), len);
			return 0;
		}
	}
	return -EFAULT;
}

int procmem__read(struct procmem *m, uint64_t addr, void *buf, size_t len)
{
	ssize_t n;
	int err;

	if (!m || !len)
		return m ? 0 : -EINVAL;
	/* Addresses with the top bit set are kernel space or garbage. */
	if (addr == 0 || addr >= (1ULL << 63) || addr + len < addr)
		return -EFAULT;
	if (m->fd >= 0) {
		n = pread(m->fd, buf, len, (off_t)addr);
		if (n < 0)
			return -errno;
		err = (size_t)n == len ? 0 : -EFAULT;
	} else {
		err = image_read(m, addr, buf, len);
	}
	if (!err && m->tap)
		m->tap(m->tap_ctx, addr, buf, len);
	return err;
}

int procmem__read_u64(struct procmem *m, uint64_t addr, uint64_t *out)
{
	return procmem__read(m, addr, out, sizeof(*out));
}

int procmem__read_u32(struct procmem *m, uint64_t addr, uint32_t *out)
{
	return procmem__read(m, addr, out, sizeof(*out));
}
