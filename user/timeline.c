// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>

#include "timeline.h"

void timeline__add(struct timeline *tl, const struct ht_event *e)
{
	struct ht_event *tmp;
	size_t cap;

	if (tl->n == tl->cap) {
		if (tl->cap >= TIMELINE_MAX_EVENTS) {
			tl->dropped++;
			return;
		}
		cap = tl->cap ? tl->cap * 2 : 1024;
		tmp = realloc(tl->ev, cap * sizeof(*tmp));
		if (!tmp) {
			tl->dropped++;
			return;
		}
		tl->ev = tmp;
		tl->cap = cap;
	}
	tl->ev[tl->n++] = *e;
}

void timeline__free(struct timeline *tl)
{
	free(tl->ev);
	memset(tl, 0, sizeof(*tl));
}
