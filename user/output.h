/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_OUTPUT_H
#define HT_OUTPUT_H

#include <stdio.h>

#include "env.h"

struct report;

/*
 * output__write - write @r in @fmt to @path, or stdout when @path is NULL.
 * A file is written to a temporary name beside it and renamed into place, so
 * it is complete or absent, never truncated.  0 or -errno (error printed).
 */
int output__write(const struct report *r, enum out_format fmt, const char *path);

/*
 * output__write_with - the same for any content: @write_fn(@ctx, f) writes it
 * and returns 0, or non-zero with errno set.  0 or -errno (error printed).
 */
int output__write_with(const char *path, int (*write_fn)(void *ctx, FILE *f), void *ctx);

#endif
