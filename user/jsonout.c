// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonout.h"
#include "utf8.h"

json_object *json__str(const char *s)
{
	json_object *o;
	char *clean;

	if (!s)
		return NULL;
	clean = utf8_sanitize(s);
	o = json_object_new_string(clean ? clean : "");
	free(clean);
	return o;
}

json_object *json__secs(uint64_t ns)
{
	char buf[32];
	size_t n;

	snprintf(buf, sizeof(buf), "%.6f", ns / 1e9);
	n = strlen(buf);
	while (n > 2 && buf[n - 1] == '0' && buf[n - 2] != '.')
		buf[--n] = 0;
	return json_object_new_double_s(ns / 1e9, buf);
}
