/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The generated 3.6-3.12 rows (user/pyoffsets_table.c, written by
 * tools/gen-pyoffsets.py).  Private to pyoffsets.c: everyone else goes
 * through pyoffsets__table().
 */
#ifndef HT_PYOFFSETS_TABLE_H
#define HT_PYOFFSETS_TABLE_H

#include "pyoffsets.h"

extern const struct py_offsets pyoffsets_gen_table[];
extern const unsigned int pyoffsets_gen_count;

#endif
