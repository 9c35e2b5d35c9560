/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Known blocking patterns -> one line of advice.  The table is data, in hints.c. */
#ifndef HT_HINTS_H
#define HT_HINTS_H

struct rblocker;

/* hint_for - the advice for blocker @b (on an event-loop thread), or NULL. */
const char *hint_for(const struct rblocker *b);

/* Number of rules, and rule @i's name (for tests and docs). */
int hints__count(void);
const char *hints__name(int i);

#endif
