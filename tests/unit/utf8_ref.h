/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The tests' own UTF-8 validator: a reference written apart from user/utf8.c,
 * so that a unit test or a fuzz target checking the decoders' output does not
 * check it with the code under test.  Used by tests/unit/test_pystr.c and
 * tests/fuzz/fuzz.h.
 */
#ifndef HT_TEST_UTF8_REF_H
#define HT_TEST_UTF8_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The @len bytes at @s are valid UTF-8: shortest forms, no surrogates, at most U+10FFFF. */
static inline bool utf8_ref_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		if ((p[i] & 0xE0) == 0xC0)
			n = 2, cp = p[i] & 0x1F;
		else if ((p[i] & 0xF0) == 0xE0)
			n = 3, cp = p[i] & 0x0F;
		else if ((p[i] & 0xF8) == 0xF0)
			n = 4, cp = p[i] & 0x07;
		else
			return false;
		if (i + n > len)
			return false;
		for (k = 1; k < n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n;
	}
	return true;
}

#endif
