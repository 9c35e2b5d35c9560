// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
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

json_object *json__frame(const char *function, const char *file, int line)
{
	json_object *fr = json_object_new_object();

	json_object_object_add(fr, "function", json__str(function));
	json_object_object_add(fr, "file", json__str(file));
	json_object_object_add(fr, "line", line >= 0 ? json_object_new_int(line) : NULL);
	return fr;
}

json_object *json__truncated_frame(void)
{
	json_object *fr = json__frame("<truncated>", NULL, -1);

	json_object_object_add(fr, "truncated", json_object_new_boolean(1));
	return fr;
}

json_object *json__strings(char *const *v, int n)
{
	json_object *a = json_object_new_array();
	int i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json__str(v[i]));
	return a;
}

void json__add_header(json_object *root)
{
	json_object_object_add(root, "tool", json__str("hangtrace"));
	json_object_object_add(root, "version", json__str(HANGTRACE_VERSION));
	json_object_object_add(root, "schema", json_object_new_int(JSON_SCHEMA));
}

int json__write(json_object *root, FILE *f)
{
	const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY |
								   JSON_C_TO_STRING_NOSLASHESCAPE);
	int err = fputs(s, f) < 0 || fputc('\n', f) == EOF ? -1 : 0;

	json_object_put(root);
	return err;
}
