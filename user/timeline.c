// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>

#include "timeline.h"

void timeline__add(struct timeline *tl, const struct ht_event *e)
{
	struct ht_event *tmp;
	size_t cap, max = tl->max ? tl->max : TIMELINE_MAX_EVENTS;

	if (tl->n >= max) {
		tl->dropped++;
		return;
	}
	if (tl->n == tl->cap) {
		if (tl->cap >= max) {
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
