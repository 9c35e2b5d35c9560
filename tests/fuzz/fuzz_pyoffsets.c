// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pyoffsets__from_debug_offsets() on a copy of the target's _Py_DebugOffsets:
 * the input is the blob, in a buffer of exactly its size.  What it accepts
 * must be usable: every offset it fills is checked against its section's size
 * by the parser, so here we check the facts its callers rely on.
 */
#include "fuzz.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct py_offsets o;
	uint32_t version = 0;
	uint8_t *buf;
	int err;

	log__set_level(LOG_ERROR);
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	err = pyoffsets__from_debug_offsets(buf, size, &o, &version);
	FUZZ_ASSERT(err == 0 || err == -EINVAL || err == -ENOTSUP);
	if (!err) {
		FUZZ_ASSERT(o.minor >= 13 && o.minor <= 15);
		FUZZ_ASSERT(pyoffsets__traits(o.minor) != NULL);
		FUZZ_ASSERT((int)((version >> 16) & 0xff) == o.minor);
		FUZZ_ASSERT(o.ts_next >= 0 && o.ts_frame >= 0 && o.frame_back >= 0 &&
			    o.frame_code >= 0 && o.frame_instr >= 0 && o.frame_owner >= 0);
		FUZZ_ASSERT(o.gil_last_holder >= 0 && o.gil_last_holder + 8 <= o.gil_size);
		FUZZ_ASSERT(o.gil_locked >= 0 && o.gil_locked + 4 <= o.gil_size);
		FUZZ_ASSERT(o.uni_ascii_data > 0 && o.uni_compact_data >= o.uni_ascii_data);
	}
	free(buf);
	return 0;
}
