// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

size_t utf8_seq_len(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned int cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

char *utf8_sanitize(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), o = 0, n;
	char *out = malloc(len * 3 + 1);

	if (!out)
		return NULL;
	while (*p) {
		n = utf8_seq_len((const char *)p);
		if (!n) {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			p++;
			continue;
		}
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	out[o] = 0;
	return out;
}

/* The code point of the valid @n-byte sequence at @s. */
static unsigned int decode(const unsigned char *s, size_t n)
{
	unsigned int cp = n == 1 ? s[0] : s[0] & (0xff >> (n + 1));
	size_t i;

	for (i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3f);
	return cp;
}

/* C1 controls (0x9b is CSI on 8-bit terminals) and the Unicode bidi controls. */
static int unsafe_cp(unsigned int cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || (cp >= 0x200e && cp <= 0x200f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t utf8_safe_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = utf8_seq_len(s);

	if (!n || (n == 1 && (*p < 0x20 || *p == 0x7f)) || (n > 1 && unsafe_cp(decode(p, n))))
		return 0;
	return n;
}

void utf8_put_clean(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (p && *p) {
		n = utf8_seq_len((const char *)p);
		if (!n || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			fprintf(f, "\\x%02x", *p++);
			continue;
		}
		if (n > 1 && unsafe_cp(decode(p, n)))
			fprintf(f, "\\u{%04x}", decode(p, n));
		else
			fwrite(p, 1, n, f);
		p += n;
	}
}
