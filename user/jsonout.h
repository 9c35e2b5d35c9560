/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* JSON values as every report writes them. */
#ifndef HT_JSONOUT_H
#define HT_JSONOUT_H

#include <json-c/json.h>
#include <stdint.h>

/* json__str - a string from the target, made valid UTF-8; NULL for NULL. */
json_object *json__str(const char *s);

/* json__secs - nanoseconds as seconds with microsecond resolution, no float noise ("2.000123"). */
json_object *json__secs(uint64_t ns);

#endif
