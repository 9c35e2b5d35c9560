// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython str and bytes objects read out of another process.
 *
 * A str keeps its code points in one of three fixed widths ("kinds"); which
 * one, and where the data lives, is in the 32-bit state word (see
 * docs/cpython-internals.md section 7):
 *   bits 2-4 kind, bit 5 compact, bit 6 ascii, bit 7 ready (before 3.12 only).
 * Compact ASCII strings keep their data right after PyASCIIObject, other
 * compact strings right after PyCompactUnicodeObject, and legacy (non-compact:
 * str subclasses, deprecated APIs) strings behind the data.any pointer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "procmem.h"
#include "pystr.h"

#define STATE_KIND(s) (((s) >> 2) & 7)
#define STATE_COMPACT (1u << 5)
#define STATE_ASCII (1u << 6)
#define STATE_READY (1u << 7)	/* 3.6-3.11; bit 7 means something else in 3.12+ */

/* Most of the target's character data ever read for one string. */
#define PYSTR_MAX_DATA (64 * 1024)
/* Lengths beyond this are garbage, not strings (2^40 code points). */
#define PY_MAX_SANE_LEN (INT64_C(1) << 40)
/* Strings whose data fits this are read into a stack buffer. */
#define PYSTR_STACK_BUF 4096

#define REPLACEMENT_CHAR 0xFFFD

static uint32_t code_point(const uint8_t *data, size_t i, int kind)
{
	const uint8_t *p = data + i * (size_t)kind;

	switch (kind) {
	case 1:
		return p[0];
	case 2:
		return (uint32_t)p[0] | (uint32_t)p[1] << 8;
	default:
		return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		       (uint32_t)p[3] << 24;
	}
}

/* Encode @cp (already a valid scalar value) into @buf; returns its length. */
static size_t utf8_encode(uint32_t cp, uint8_t buf[4])
{
	if (cp < 0x80) {
		buf[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (uint8_t)(0xC0 | cp >> 6);
		buf[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (uint8_t)(0xE0 | cp >> 12);
		buf[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
		buf[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	buf[0] = (uint8_t)(0xF0 | cp >> 18);
	buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
	buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
	buf[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

/*
 * The conversion behind pystr__to_utf8().  @more says that the string goes on
 * past @nchars (only part of it was read), so the output must end in "..."
 * even if those characters fit.
 */
static size_t to_utf8(const void *data, size_t nchars, int kind, bool more, char *out,
		      size_t outsz)
{
	/* Room for the ellipsis and the NUL: 4 bytes, less only if @outsz is tiny. */
	size_t ell = outsz >= 4 ? 3 : outsz - 1;
	size_t pos = 0, cut = SIZE_MAX, i, n;
	uint8_t buf[4];
	uint32_t cp;

	if (!outsz)
		return 0;
	if (!data || (kind != 1 && kind != 2 && kind != 4))
		nchars = 0;

	for (i = 0; i < nchars; i++) {
		cp = code_point(data, i, kind);
		/* U+0000 too: the result is a C string, and must not end early */
		if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
			cp = REPLACEMENT_CHAR;
		n = utf8_encode(cp, buf);
		/* The last boundary after which the ellipsis still fits. */
		if (cut == SIZE_MAX && pos + n + ell + 1 > outsz)
			cut = pos;
		if (pos + n + 1 > outsz)
			break;
		memcpy(out + pos, buf, n);
		pos += n;
	}
	if (i == nchars && !more) {
		out[pos] = '\0';
		return pos;
	}

	if (cut == SIZE_MAX)
		cut = pos;
	memset(out + cut, '.', ell);
	out[cut + ell] = '\0';
	return cut + ell;
}

size_t pystr__to_utf8(const void *data, size_t nchars, int kind, char *out, size_t outsz)
{
	return to_utf8(data, nchars, kind, false, out, outsz);
}

int pystr__read(struct procmem *m, const struct py_offsets *off, uint64_t addr, char *out,
		size_t outsz)
{
	uint8_t stackbuf[PYSTR_STACK_BUF], *data = stackbuf;
	uint64_t data_addr;
	int64_t length;
	uint32_t state;
	size_t nchars, nbytes;
	int kind, err;

	if (!m || !off || !out || !outsz)
		return -EINVAL;
	out[0] = '\0';
	if (off->uni_length < 0 || off->uni_state < 0)
		return -EINVAL;

	if (procmem__read(m, addr + off->uni_length, &length, sizeof(length)) ||
	    procmem__read_u32(m, addr + off->uni_state, &state))
		return -EFAULT;

	kind = STATE_KIND(state);
	if (kind != 1 && kind != 2 && kind != 4)
		return -EINVAL;		/* 0 is a not-ready wchar_t string before 3.12 */
	if (off->minor < 12 && !(state & STATE_READY))
		return -EINVAL;
	if ((state & STATE_ASCII) && kind != 1)
		return -EINVAL;		/* ascii implies latin-1 width, compact or not */
	if (length < 0 || length > PY_MAX_SANE_LEN)
		return -EINVAL;

	if (state & STATE_COMPACT) {
		if (state & STATE_ASCII) {
			if (off->uni_ascii_data < 0)
				return -EINVAL;
			data_addr = addr + off->uni_ascii_data;
		} else {
			if (off->uni_compact_data < 0)
				return -EINVAL;
			data_addr = addr + off->uni_compact_data;
		}
	} else {
		if (off->uni_legacy_data < 0)
			return -EINVAL;
		if (!length)
			return 0;	/* data.any may legitimately be anything */
		if (procmem__read_u64(m, addr + off->uni_legacy_data, &data_addr))
			return -EFAULT;
	}
	if (!length)
		return 0;

	/*
	 * Each character is at least one byte of UTF-8, so more than @outsz of
	 * them can never be shown; and never read more than PYSTR_MAX_DATA.
	 */
	nchars = (size_t)length;
	if (nchars > outsz)
		nchars = outsz;
	if (nchars > PYSTR_MAX_DATA / (size_t)kind)
		nchars = PYSTR_MAX_DATA / (size_t)kind;
	nbytes = nchars * (size_t)kind;

	if (nbytes > sizeof(stackbuf)) {
		data = malloc(nbytes);
		if (!data)
			return -ENOMEM;
	}
	err = procmem__read(m, data_addr, data, nbytes);
	if (!err)
		to_utf8(data, nchars, kind, nchars < (size_t)length, out, outsz);
	if (data != stackbuf)
		free(data);
	return err ? -EFAULT : 0;
}

int pybytes__read(struct procmem *m, const struct py_offsets *off, uint64_t addr, size_t max,
		  uint8_t **out, size_t *len)
{
	uint8_t *buf;
	int64_t size;
	size_t n;

	if (!m || !off || !out || !len)
		return -EINVAL;
	*out = NULL;
	*len = 0;
	if (off->bytes_size < 0 || off->bytes_sval < 0)
		return -EINVAL;

	if (procmem__read(m, addr + off->bytes_size, &size, sizeof(size)))
		return -EFAULT;
	if (size < 0 || size > PY_MAX_SANE_LEN)
		return -EINVAL;

	n = (size_t)size < max ? (size_t)size : max;
	/* One spare byte, so that an empty result is still a real allocation. */
	buf = malloc(n + 1);
	if (!buf)
		return -ENOMEM;
	if (n && procmem__read(m, addr + off->bytes_sval, buf, n)) {
		free(buf);
		return -EFAULT;
	}
	buf[n] = 0;
	*out = buf;
	*len = n;
	return 0;
}

int pystr__from_image(const void *img, size_t len, const struct py_offsets *off, char *out,
		      size_t outsz)
{
	const uint8_t *b = img;
	size_t nchars, avail, data_off;
	int64_t length;
	uint32_t state;
	int kind;

	if (!img || !off || !out || !outsz)
		return -EINVAL;
	out[0] = '\0';
	if (off->uni_length < 0 || off->uni_state < 0 ||
	    (size_t)off->uni_length + sizeof(length) > len ||
	    (size_t)off->uni_state + sizeof(state) > len)
		return -EINVAL;
	memcpy(&length, b + off->uni_length, sizeof(length));
	memcpy(&state, b + off->uni_state, sizeof(state));
	kind = STATE_KIND(state);
	/* only compact strings keep their characters in the object itself */
	if ((kind != 1 && kind != 2 && kind != 4) || !(state & STATE_COMPACT) ||
	    (off->minor < 12 && !(state & STATE_READY)) || ((state & STATE_ASCII) && kind != 1) ||
	    length < 0 || length > PY_MAX_SANE_LEN)
		return -EINVAL;
	data_off = (state & STATE_ASCII) ? (size_t)off->uni_ascii_data :
					   (size_t)off->uni_compact_data;
	if ((state & STATE_ASCII ? off->uni_ascii_data : off->uni_compact_data) < 0 ||
	    data_off > len)
		return -EINVAL;
	avail = (len - data_off) / (size_t)kind;
	nchars = (size_t)length < avail ? (size_t)length : avail;
	if (nchars > outsz)
		nchars = outsz;
	if (length)
		to_utf8(b + data_off, nchars, kind, nchars < (size_t)length, out, outsz);
	return 0;
}
