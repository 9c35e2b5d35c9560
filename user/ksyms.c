// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ksyms.h"

struct ksym {
	uint64_t addr;
	char *name;
};

struct ksyms {
	struct ksym *syms;
	size_t n;
};

static int cmp_ksym(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

struct ksyms *ksyms__load(void)
{
	struct ksyms *k = NULL;
	struct ksym *tmp;
	char line[512], name[256], type;
	unsigned long long addr;
	size_t cap = 0;
	FILE *f;
	int err = 0;

	f = fopen("/proc/kallsyms", "re");
	if (!f)
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k) {
		err = ENOMEM;
		goto cleanup;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (!addr)
			continue;
		if (k->n == cap) {
			cap = cap ? cap * 2 : 65536;
			tmp = realloc(k->syms, cap * sizeof(*tmp));
			if (!tmp) {
				err = ENOMEM;
				goto cleanup;
			}
			k->syms = tmp;
		}
		k->syms[k->n].addr = addr;
		k->syms[k->n].name = strdup(name);
		if (!k->syms[k->n].name) {
			err = ENOMEM;
			goto cleanup;
		}
		k->n++;
	}
	if (!k->n) {
		err = EPERM;	/* kptr_restrict hides the addresses */
		goto cleanup;
	}
	qsort(k->syms, k->n, sizeof(*k->syms), cmp_ksym);
	fclose(f);
	return k;
cleanup:
	fclose(f);
	ksyms__free(k);
	errno = err;
	return NULL;
}

const char *ksyms__name(const struct ksyms *k, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!k || !k->n || addr < k->syms[0].addr)
		return NULL;
	hi = k->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (k->syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	return k->syms[lo].name;
}

void ksyms__free(struct ksyms *k)
{
	size_t i;

	if (!k)
		return;
	for (i = 0; i < k->n; i++)
		free(k->syms[i].name);
	free(k->syms);
	free(k);
}
