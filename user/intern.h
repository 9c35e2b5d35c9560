/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Interning: distinct strings numbered 0, 1, 2... in the order first seen,
 * for the tables of profile formats (pprof's string table and ids,
 * speedscope's shared frames).  A json-c hash table does the lookups.
 */
#ifndef HT_INTERN_H
#define HT_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct intern;

/* intern__new - an empty table.  NULL + errno. */
struct intern *intern__new(void);
void intern__free(struct intern *t);

/*
 * intern__add - the number of @s, adding it (a copy) if it is new.
 * Returns 1 if added, 0 if it was there, -ENOMEM.
 */
int intern__add(struct intern *t, const char *s, uint32_t *idx);

/* intern__count - how many strings; intern__str - string number @idx (< count). */
size_t intern__count(const struct intern *t);
const char *intern__str(const struct intern *t, uint32_t idx);

#endif
