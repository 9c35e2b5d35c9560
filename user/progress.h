/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live status line on a terminal: one line on stderr, redrawn in place
 * ("\r" + erase line), and erased before anything else is written to stderr.
 */
#ifndef HT_PROGRESS_H
#define HT_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

struct progress_counts {
	uint64_t elapsed_ns;
	uint64_t stalls;		/* event-loop stalls so far */
	uint64_t longest_stall_ns;
	uint64_t events;		/* ring buffer events received */
	uint64_t lost;			/* events, samples, aggregates, stacks, threads dropped */
};

/*
 * progress__enable - show the line from now on; true when stderr is a
 * terminal (nothing is ever drawn otherwise).  Hooks into log.c so that
 * warnings and errors erase the line first.
 */
bool progress__enable(void);

/* progress__show - draw (or redraw) the line with @c.  No-op unless enabled. */
void progress__show(const struct progress_counts *c);

/* progress__erase - remove the line if it is shown (the cursor is then at column 0). */
void progress__erase(void);

/* progress__disable - erase the line and stop drawing it. */
void progress__disable(void);

/* progress__format - the line's text for @c into @buf (exposed for tests). */
void progress__format(const struct progress_counts *c, char *buf, unsigned long len);

#endif
