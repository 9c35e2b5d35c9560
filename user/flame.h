/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Interactive flame graphs: one self-contained SVG, or an HTML page with the summary. */
#ifndef HT_FLAME_H
#define HT_FLAME_H

#include <stdio.h>

struct report;

/*
 * report__write_svg - @r as one SVG file: an interactive flame graph of what
 * r->what asks for (hover, click to zoom, search), frames coloured by reason,
 * frames of blockers blamed for event-loop stalls outlined; a python-PID
 * tower per process (the root and each of r->children).  0, or -1 with
 * errno set.
 */
int report__write_svg(const struct report *r, FILE *f);

/*
 * report__write_html - @r as one HTML page: the summary (target, window,
 * threads, event-loop lines; a section per descendant with --children), the
 * event-loop stall timeline (a row per process and loop thread), the top
 * blockers of all processes with hints, then the flame graph of everything.
 * 0, or -1 with errno set.
 */
int report__write_html(const struct report *r, FILE *f);

#endif
