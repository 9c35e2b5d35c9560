// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython line tables, decoded from scratch after Objects/lnotab_notes.txt
 * (3.6-3.10) and Objects/locations.md (3.11+).  The table comes out of an
 * untrusted process: every byte access is checked against @len, every loop
 * advances by at least one byte, and the line accumulator saturates, so a
 * malformed table gives a wrong line or -1, never a crash or a hang.
 */
#include <limits.h>

#include "linetable.h"

/* Far beyond any real line number, far below int64 overflow. */
#define LINE_SAT (INT64_C(1) << 48)

/* A 32-bit varint needs 6 groups of 6 bits; more is a malformed table. */
#define VARINT_MAX_BYTES 6

/* Location-table entry codes (Objects/locations.md). */
#define LOC_ONE_LINE0 10
#define LOC_ONE_LINE1 11
#define LOC_ONE_LINE2 12
#define LOC_NO_COLUMNS 13
#define LOC_LONG 14
#define LOC_NONE 15

/* 3.10: a line delta of -128 marks a range without a line. */
#define LT310_NO_LINE (-128)

static int64_t line_add(int64_t line, int64_t delta)
{
	line += delta;
	if (line > LINE_SAT)
		return LINE_SAT;
	if (line < -LINE_SAT)
		return -LINE_SAT;
	return line;
}

/* A line the caller can use; anything negative or huge means "no line". */
static int line_result(int64_t line)
{
	if (line < 0 || line > INT_MAX)
		return -1;
	return (int)line;
}

/*
 * 3.6-3.9 co_lnotab: (addr_inc unsigned, line_inc signed) byte pairs.  The
 * line of @q is co_firstlineno plus every line_inc whose pair's cumulative
 * address is <= @q.  The last line runs to the end of the code, so a @q past
 * the last pair still gets the last line (as PyCode_Addr2Line does).
 */
static int lnotab__line(const uint8_t *tab, size_t len, int firstlineno, int64_t q)
{
	int64_t line = firstlineno, addr = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		addr += tab[i];
		if (addr > q)
			break;
		line = line_add(line, (int8_t)tab[i + 1]);
	}
	return line_result(line);
}

/*
 * 3.10 co_linetable: (length unsigned, line_delta signed) byte pairs, each
 * covering [end, end + length) bytes.  A delta of -128 gives the range no
 * line and leaves the accumulator alone.  Zero-length ranges only move the
 * line.  @q past the last range has no line.
 */
static int linetable310__line(const uint8_t *tab, size_t len, int firstlineno, int64_t q)
{
	int64_t line = firstlineno, end = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2) {
		int64_t start = end;
		int8_t ldelta = (int8_t)tab[i + 1];
		int has_line = ldelta != LT310_NO_LINE;

		end += tab[i];
		if (has_line)
			line = line_add(line, ldelta);
		if (start <= q && q < end)
			return has_line ? line_result(line) : -1;
	}
	return -1;
}

/*
 * Unsigned varint at @tab[*pos]: 6-bit groups, little endian, bit 6 set on
 * every group but the last.  Advances *@pos.  -1 when the varint is cut off by
 * the end of the table or longer than any 32-bit value needs.
 */
static int read_varint(const uint8_t *tab, size_t len, size_t *pos, uint64_t *val)
{
	uint64_t v = 0;
	unsigned int shift = 0, n;
	uint8_t b;

	for (n = 0; n < VARINT_MAX_BYTES; n++) {
		if (*pos >= len)
			return -1;
		b = tab[(*pos)++];
		v |= (uint64_t)(b & 63) << shift;
		shift += 6;
		if (!(b & 64)) {
			*val = v;
			return 0;
		}
	}
	return -1;
}

static int read_svarint(const uint8_t *tab, size_t len, size_t *pos, int64_t *val)
{
	uint64_t u;

	if (read_varint(tab, len, pos, &u))
		return -1;
	*val = (u & 1) ? -(int64_t)(u >> 1) : (int64_t)(u >> 1);
	return 0;
}

/*
 * 3.11+ location table.  Every entry starts with a byte that has bit 7 set:
 * code = bits 3-6, length = bits 0-2 plus one, in code units.  Only the line
 * delta matters here; the rest of the entry (columns, end line) is skipped by
 * moving to the next byte with bit 7 set, as CPython's own reader does.
 */
static int locations__line(const uint8_t *tab, size_t len, int firstlineno, int64_t q)
{
	int64_t line = firstlineno, addr = 0, delta;
	size_t pos = 0, p;

	while (pos < len) {
		uint8_t first = tab[pos];
		int code = (first >> 3) & 15;
		int64_t n = (first & 7) + 1;

		switch (code) {
		case LOC_NO_COLUMNS:
		case LOC_LONG:
			p = pos + 1;
			if (read_svarint(tab, len, &p, &delta))
				return -1;	/* truncated: the line is unknowable */
			break;
		case LOC_ONE_LINE0:
		case LOC_ONE_LINE1:
		case LOC_ONE_LINE2:
			delta = code - LOC_ONE_LINE0;
			break;
		default:		/* 0-9 short forms, 15 no location */
			delta = 0;
			break;
		}
		line = line_add(line, delta);
		if (q < addr + n)
			return code == LOC_NONE ? -1 : line_result(line);
		addr += n;

		do
			pos++;
		while (pos < len && !(tab[pos] & 0x80));
	}
	return -1;
}

int linetable__line(enum py_linetable fmt, const uint8_t *tab, size_t len, int firstlineno,
		    int64_t q)
{
	if (q < 0)
		return line_result(firstlineno);
	if (!tab)
		len = 0;

	switch (fmt) {
	case PY_LT_LNOTAB:
		return lnotab__line(tab, len, firstlineno, q);
	case PY_LT_LINETABLE310:
		return linetable310__line(tab, len, firstlineno, q);
	case PY_LT_LOCATIONS:
		return locations__line(tab, len, firstlineno, q);
	}
	return -1;
}
