// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

#define NR_BUCKETS 1024

struct entry {
	struct entry *next;
	char *val;
	size_t klen;
	unsigned char key[];
};

struct strmap {
	struct entry *b[NR_BUCKETS];
};

static size_t hash(const void *key, size_t klen)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ULL;

	while (klen--)
		h = (h ^ *p++) * 0x100000001b3ULL;
	return h % NR_BUCKETS;
}

struct strmap *strmap__new(void)
{
	return calloc(1, sizeof(struct strmap));
}

void strmap__free(struct strmap *m)
{
	struct entry *e, *n;
	size_t i;

	if (!m)
		return;
	for (i = 0; i < NR_BUCKETS; i++)
		for (e = m->b[i]; e; e = n) {
			n = e->next;
			free(e->val);
			free(e);
		}
	free(m);
}

static struct entry *find(const struct strmap *m, const void *key, size_t klen)
{
	struct entry *e;

	for (e = m->b[hash(key, klen)]; e; e = e->next)
		if (e->klen == klen && !memcmp(e->key, key, klen))
			return e;
	return NULL;
}

int strmap__set(struct strmap *m, const void *key, size_t klen, const char *val)
{
	struct entry *e = find(m, key, klen);
	char *v = strdup(val);
	size_t b;

	if (!v)
		return -ENOMEM;
	if (e) {
		free(e->val);
		e->val = v;
		return 0;
	}
	e = malloc(sizeof(*e) + klen);
	if (!e) {
		free(v);
		return -ENOMEM;
	}
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->val = v;
	b = hash(key, klen);
	e->next = m->b[b];
	m->b[b] = e;
	return 0;
}

const char *strmap__get(const struct strmap *m, const void *key, size_t klen)
{
	struct entry *e = m ? find(m, key, klen) : NULL;

	return e ? e->val : NULL;
}
