/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Events kept in time order, to tell what happened inside each event-loop stall. */
#ifndef HT_TIMELINE_H
#define HT_TIMELINE_H

#include <stddef.h>
#include <stdint.h>

#include "hangtrace.h"

#define TIMELINE_MAX_EVENTS (1U << 20)

struct timeline {
	struct ht_event *ev;
	size_t n, cap;
	uint64_t dropped;	/* events not kept: over the cap or ENOMEM */
	size_t max;		/* cap on events kept; 0: TIMELINE_MAX_EVENTS */
};

/* timeline__add - keep a copy of @e (blocks, stalls and samples). */
void timeline__add(struct timeline *tl, const struct ht_event *e);
void timeline__free(struct timeline *tl);

#endif
