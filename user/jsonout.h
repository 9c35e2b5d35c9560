/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* JSON values as every report writes them. */
#ifndef HT_JSONOUT_H
#define HT_JSONOUT_H

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

/* The "schema" member of the JSON reports (docs/report-json.md). */
#define JSON_SCHEMA 1

/* json__str - a string from the target, made valid UTF-8; NULL for NULL. */
json_object *json__str(const char *s);

/* json__secs - nanoseconds as seconds with microsecond resolution, no float noise ("2.000123"). */
json_object *json__secs(uint64_t ns);

/*
 * The parts the JSON report and the dump's JSON write alike, so that both
 * keep one shape (docs/report-json.md):
 *
 * json__frame - one Python frame, {"function", "file", "line"}; @line < 0 is null.
 * json__truncated_frame - the frame that stands for those cut at the frame limit.
 * json__strings - an array of @n strings from the target (the kernel stack).
 * json__add_header - "tool", "version" and "schema" into @root.
 * json__write - @root, pretty-printed, and a newline to @f; drops @root.
 *   Returns 0, or -1 when the write failed.
 */
json_object *json__frame(const char *function, const char *file, int line);
json_object *json__truncated_frame(void);
json_object *json__strings(char *const *v, int n);
void json__add_header(json_object *root);
int json__write(json_object *root, FILE *f);

#endif
