/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* CPython line tables: instruction offset -> source line, for every format. */
#ifndef HT_LINETABLE_H
#define HT_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

#include "pyoffsets.h"

/*
 * linetable__line - the source line of instruction offset @q.
 * @q is a byte offset for PY_LT_LNOTAB and PY_LT_LINETABLE310 and a code-unit
 * (2-byte) offset for PY_LT_LOCATIONS; @q < 0 means "before the first
 * instruction" and yields @firstlineno.  Returns the line, or -1 when the
 * table gives that instruction no line (or @q lies past the table's end, or
 * the line would be negative: @firstlineno comes from the target too).
 * Never reads outside @tab[0..@len).
 */
int linetable__line(enum py_linetable fmt, const uint8_t *tab, size_t len, int firstlineno,
		    int64_t q);

#endif
