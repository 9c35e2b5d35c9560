// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * linetable__line() over every format: the table is the rest of the input,
 * copied into a buffer of exactly its size so ASan sees any overread.  Every
 * offset up to a bound is looked up, not just the header's.
 */
#include "fuzz.h"
#include "linetable.h"

/* Offsets looked up per input besides the header's: past the end of any table here. */
#define SWEEP_MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_linetable_hdr h;
	size_t hl = sizeof(h), len = size > hl ? size - hl : 0;
	enum py_linetable fmt;
	uint8_t *tab;
	int64_t q;
	int line;

	memset(&h, 0, sizeof(h));
	memcpy(&h, data, size < hl ? size : hl);
	fmt = (enum py_linetable)(h.fmt % 4);	/* 0 is no format: must give -1 */
	tab = malloc(len ? len : 1);
	if (!tab)
		return 0;
	memcpy(tab, data + (size - len), len);

	line = linetable__line(fmt, len ? tab : NULL, len, h.firstlineno, h.q);
	FUZZ_ASSERT(line >= -1);
	if (h.q < 0)
		FUZZ_ASSERT(line == (h.firstlineno >= 0 ? h.firstlineno : -1));
	for (q = 0; q < SWEEP_MAX && (size_t)q <= len * 8; q++) {
		line = linetable__line(fmt, tab, len, h.firstlineno, q);
		FUZZ_ASSERT(line >= -1);
	}
	free(tab);
	return 0;
}
