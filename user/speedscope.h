/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The report as a speedscope file (https://www.speedscope.app/file-format-schema.json). */
#ifndef HT_SPEEDSCOPE_H
#define HT_SPEEDSCOPE_H

#include <stdio.h>

struct report;

/*
 * speedscope__write - write @r to @f in speedscope's JSON file format: one
 * "sampled" profile per process (the root, then each of r->children), thread
 * and kind, as r->what asks, named after the thread and its process: "off-CPU" (each
 * blocker's stack with its reason as a "[reason]" leaf frame) and "on-CPU"
 * (the sampled stacks), weights in nanoseconds; frames shared, with name,
 * file and line.  Returns 0, or -errno with errno set.
 */
int speedscope__write(const struct report *r, FILE *f);

#endif
