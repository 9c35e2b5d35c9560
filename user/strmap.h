/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A small map from byte-string keys to C strings (copies of both are kept). */
#ifndef HT_STRMAP_H
#define HT_STRMAP_H

#include <stddef.h>

struct strmap;

struct strmap *strmap__new(void);
void strmap__free(struct strmap *m);
/* strmap__set - insert or replace; 0 or -ENOMEM. */
int strmap__set(struct strmap *m, const void *key, size_t klen, const char *val);
/* strmap__get - the value, or NULL. */
const char *strmap__get(const struct strmap *m, const void *key, size_t klen);

#endif
