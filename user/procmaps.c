// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procmaps.h"

/* A maps file bigger than this is not something we want to hold in memory. */
#define PROCMAPS_MAX_BYTES (256u << 20)
#define DELETED_SUFFIX " (deleted)"

static const char *parse_hex(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	for (; p < end && n < 17; p++, n++) {
		int d;

		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		v = (v << 4) | (uint64_t)d;
	}
	/* no digits, or more than 16 of them */
	if (n == 0 || n > 16)
		return NULL;
	*out = v;
	return p;
}

static const char *parse_dec(const char *p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	for (; p < end && *p >= '0' && *p <= '9'; p++, n++) {
		if (v > (UINT64_MAX - 9) / 10)
			return NULL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (n == 0)
		return NULL;
	*out = v;
	return p;
}

static const char *expect(const char *p, const char *end, char c)
{
	return p && p < end && *p == c ? p + 1 : NULL;
}

static const char *skip_spaces(const char *p, const char *end)
{
	while (p < end && *p == ' ')
		p++;
	return p;
}

/* One line, without its newline.  0, or -EINVAL when it is not a maps line. */
static int parse_line(const char *p, const char *end, struct procmaps_entry *e)
{
	uint64_t major, minor;
	size_t plen, slen = strlen(DELETED_SUFFIX);
	int i;

	memset(e, 0, sizeof(*e));
	p = parse_hex(p, end, &e->start);
	p = expect(p, end, '-');
	if (p)
		p = parse_hex(p, end, &e->end);
	p = expect(p, end, ' ');
	if (!p || end - p < 4 || e->end < e->start)
		return -EINVAL;
	for (i = 0; i < 4; i++)
		e->perms[i] = p[i];
	e->perms[4] = '\0';
	p = expect(p + 4, end, ' ');
	if (p)
		p = parse_hex(p, end, &e->offset);
	p = expect(p, end, ' ');
	if (p)
		p = parse_hex(p, end, &major);
	p = expect(p, end, ':');
	if (p)
		p = parse_hex(p, end, &minor);
	p = expect(p, end, ' ');
	if (p)
		p = parse_dec(p, end, &e->inode);
	if (!p || major > 0xfff || minor > 0xfffff)
		return -EINVAL;
	e->dev_major = (unsigned int)major;
	e->dev_minor = (unsigned int)minor;
	if (p < end && *p != ' ')
		return -EINVAL;
	/* The path is everything after the padding; it may itself hold spaces. */
	p = skip_spaces(p, end);
	plen = (size_t)(end - p);
	if (plen >= slen && !memcmp(end - slen, DELETED_SUFFIX, slen)) {
		e->deleted = true;
		plen -= slen;
	}
	e->path = strndup(p, plen);
	return e->path ? 0 : -ENOMEM;
}

struct procmaps *procmaps__parse(const char *text, size_t len)
{
	const char *p = text, *end = text + len;
	struct procmaps *maps;
	size_t cap = 0;
	int err = 0;

	maps = calloc(1, sizeof(*maps));
	if (!maps)
		return NULL;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct procmaps_entry e;

		if (maps->nr == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct procmaps_entry *n;

			n = realloc(maps->entries, ncap * sizeof(*n));
			if (!n) {
				err = -ENOMEM;
				break;
			}
			maps->entries = n;
			cap = ncap;
		}
		err = parse_line(p, eol, &e);
		if (err == -ENOMEM)
			break;
		if (!err)
			maps->entries[maps->nr++] = e;
		err = 0;
		p = nl ? nl + 1 : end;
	}
	if (err) {
		procmaps__free(maps);
		errno = -err;
		return NULL;
	}
	return maps;
}

struct procmaps *procmaps__load(pid_t pid)
{
	struct procmaps *maps = NULL;
	size_t len = 0, cap = 64 * 1024;
	char path[64], *buf, *n;
	int fd, err = 0;
	ssize_t r;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		if (len == cap) {
			if (cap >= PROCMAPS_MAX_BYTES) {
				err = -E2BIG;
				goto cleanup;
			}
			n = realloc(buf, cap * 2);
			if (!n) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = n;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	maps = procmaps__parse(buf, len);
	if (!maps)
		err = -errno;
cleanup:
	free(buf);
	close(fd);
	if (err)
		errno = -err;
	return maps;
}

void procmaps__free(struct procmaps *maps)
{
	size_t i;

	if (!maps)
		return;
	for (i = 0; i < maps->nr; i++)
		free(maps->entries[i].path);
	free(maps->entries);
	free(maps);
}

bool procmaps__is_file(const struct procmaps_entry *e)
{
	return e->inode != 0 && e->path && e->path[0] == '/';
}

bool procmaps__same_file(const struct procmaps_entry *a, const struct procmaps_entry *b)
{
	return a->inode == b->inode && a->dev_major == b->dev_major &&
	       a->dev_minor == b->dev_minor && !strcmp(a->path, b->path);
}

const struct procmaps_entry *procmaps__file_base(const struct procmaps *maps,
						 const struct procmaps_entry *e)
{
	const struct procmaps_entry *below = NULL, *lowest = NULL;
	size_t i;

	if (!procmaps__is_file(e))
		return NULL;
	/*
	 * A file mapped twice has two offset-0 mappings: the one just below @e
	 * is the image @e belongs to.
	 */
	for (i = 0; i < maps->nr; i++) {
		const struct procmaps_entry *c = &maps->entries[i];

		if (c->offset != 0 || !procmaps__same_file(c, e))
			continue;
		if (c->start <= e->start && (!below || c->start > below->start))
			below = c;
		if (!lowest || c->start < lowest->start)
			lowest = c;
	}
	return below ? below : lowest;
}

const struct procmaps_entry *procmaps__find(const struct procmaps *maps, uint64_t addr)
{
	size_t i;

	for (i = 0; i < maps->nr; i++) {
		if (addr >= maps->entries[i].start && addr < maps->entries[i].end)
			return &maps->entries[i];
	}
	return NULL;
}
