/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Kernel symbols from /proc/kallsyms. */
#ifndef HT_KSYMS_H
#define HT_KSYMS_H

#include <stdint.h>

struct ksyms;

/* ksyms__load - read /proc/kallsyms; NULL + errno (addresses hidden counts as EPERM). */
struct ksyms *ksyms__load(void);
/* ksyms__name - the function containing @addr, or NULL. */
const char *ksyms__name(const struct ksyms *k, uint64_t addr);
void ksyms__free(struct ksyms *k);

#endif
