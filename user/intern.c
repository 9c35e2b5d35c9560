// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <json-c/linkhash.h>
#include <stdlib.h>
#include <string.h>

#include "intern.h"

struct intern {
	struct lh_table *index;		/* string -> number + 1 (the keys are strs[]) */
	char **strs;			/* by number */
	size_t nr, cap;
};

struct intern *intern__new(void)
{
	struct intern *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->index = lh_kchar_table_new(256, NULL);
	if (!t->index) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void intern__free(struct intern *t)
{
	size_t i;

	if (!t)
		return;
	lh_table_free(t->index);
	for (i = 0; i < t->nr; i++)
		free(t->strs[i]);
	free(t->strs);
	free(t);
}

int intern__add(struct intern *t, const char *s, uint32_t *idx)
{
	void *v;
	char *copy, **grown;

	if (lh_table_lookup_ex(t->index, s, &v)) {
		*idx = (uint32_t)((uintptr_t)v - 1);
		return 0;
	}
	if (t->nr == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;

		grown = realloc(t->strs, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		t->strs = grown;
		t->cap = cap;
	}
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	if (lh_table_insert(t->index, copy, (void *)(uintptr_t)(t->nr + 1))) {
		free(copy);
		return -ENOMEM;
	}
	t->strs[t->nr] = copy;
	*idx = (uint32_t)t->nr++;
	return 1;
}

size_t intern__count(const struct intern *t)
{
	return t->nr;
}

const char *intern__str(const struct intern *t, uint32_t idx)
{
	return idx < t->nr ? t->strs[idx] : NULL;
}
