/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading CPython str objects out of a target process, as UTF-8. */
#ifndef HT_PYSTR_H
#define HT_PYSTR_H

#include <stddef.h>
#include <stdint.h>

#include "pyoffsets.h"

struct procmem;

/*
 * pystr__to_utf8 - convert @nchars code points of width @kind (1 = latin-1,
 * 2 = UCS-2, 4 = UCS-4, little endian) at @data to NUL-terminated UTF-8 in
 * @out (@outsz bytes, >= 4).  Lone surrogates, code points > U+10FFFF and
 * U+0000 (which would end the C string early) become U+FFFD.  Output that does not fit is cut at a character boundary and
 * ends in "..." (still valid UTF-8).  Returns the length written.
 */
size_t pystr__to_utf8(const void *data, size_t nchars, int kind, char *out, size_t outsz);

/*
 * pystr__read - read the str object at @addr in the target into @out as UTF-8.
 * Strings longer than @outsz are cut as above; at most 64 KiB of the target's
 * data is ever read.  Returns 0, -EFAULT (unreadable) or -EINVAL (not a sane
 * str: bad kind, not ready, absurd length).
 */
int pystr__read(struct procmem *m, const struct py_offsets *off, uint64_t addr, char *out,
		size_t outsz);

/*
 * pystr__from_image - the same, from @len bytes copied from the start of a
 * str object (a compact one: its characters follow its header).  Characters
 * past the copy are cut as above.  0 or -EINVAL (not a sane compact str).
 */
int pystr__from_image(const void *img, size_t len, const struct py_offsets *off, char *out,
		      size_t outsz);

/*
 * pybytes__read - read up to @max bytes of the bytes object at @addr into a
 * malloc'ed buffer (*@out, *@len).  0, -EFAULT or -EINVAL (absurd size).
 */
int pybytes__read(struct procmem *m, const struct py_offsets *off, uint64_t addr, size_t max,
		  uint8_t **out, size_t *len);

#endif
