/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the fuzz targets share: the layout of an input that describes a fake
 * target memory image, and the checks every target makes on what a decoder
 * gives back.
 *
 * An image input is a fixed header (the target's own struct, read as if the
 * input were zero-padded to its size), then regions until the end:
 *
 *   u64 addr   target address of the region (little endian)
 *   u32 len    its length (cut to what is left of the input)
 *   u8  data[len]
 *
 * tests/fuzz/snapshot.c writes inputs in this layout from live interpreters.
 */
#ifndef HT_FUZZ_H
#define HT_FUZZ_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hangtrace.h"
#include "procmem.h"
#include "pyoffsets.h"
#include "../unit/utf8_ref.h"

/* More regions than any real snapshot has; the rest of the input is ignored. */
#define FUZZ_MAX_REGIONS 256

/* Header of fuzz_pystr: one str and one bytes object. */
struct fuzz_pystr_hdr {
	struct py_offsets off;
	uint64_t str_addr;
	uint64_t bytes_addr;
	uint32_t outsz;		/* output buffer size, cut to 1..FUZZ_PYSTR_MAX_OUT */
	uint32_t bytes_max;	/* pybytes__read's @max, cut to FUZZ_PYSTR_MAX_OUT */
};
#define FUZZ_PYSTR_MAX_OUT 8192

/* Header of fuzz_pysym: one code object, a few instruction addresses in it. */
struct fuzz_pysym_hdr {
	struct py_offsets off;
	uint64_t code;
	uint64_t instr[4];
};

/* Header of fuzz_pywalk: the walker's layout, the thread to find, then symbolization. */
struct fuzz_pywalk_hdr {
	struct py_offsets off;
	struct ht_py_proc pp;
	uint64_t fsbase;
	uint64_t tstate;	/* walked when ht_py_find_tstate() finds none */
	uint32_t tid;
	uint32_t max_frames;
};
/*
 * The committed corpus (tests/fuzz/corpus/pywalk) holds this header as bytes:
 * when struct ht_py_proc or py_offsets change, regenerate it (gen-corpus.py)
 * or convert it, then update the size here.
 */
_Static_assert(sizeof(struct fuzz_pywalk_hdr) == 328, "pywalk corpus layout changed");

/* Header of fuzz_linetable: the table follows it. */
struct fuzz_linetable_hdr {
	uint8_t fmt;		/* enum py_linetable, taken modulo 4 */
	uint8_t pad[3];
	int32_t firstlineno;
	int64_t q;
};

#define FUZZ_ASSERT(cond)                                                            \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, \
				__LINE__, #cond);                                    \
			abort();                                                     \
		}                                                                    \
	} while (0)

struct fuzz_image {
	struct procmem_region regions[FUZZ_MAX_REGIONS];
	size_t nr;
};

/*
 * fuzz_image__parse - copy the header (zero-padded) into @hdr and describe the
 * regions that follow it in @img; the region bytes stay in @data.
 */
static inline void fuzz_image__parse(const uint8_t *data, size_t size, void *hdr, size_t hdrlen,
				     struct fuzz_image *img)
{
	size_t pos = hdrlen < size ? hdrlen : size;

	memset(hdr, 0, hdrlen);
	memcpy(hdr, data, pos);
	img->nr = 0;
	while (img->nr < FUZZ_MAX_REGIONS && size - pos >= 12) {
		struct procmem_region *r = &img->regions[img->nr++];
		uint32_t len;

		memcpy(&r->addr, data + pos, 8);
		memcpy(&len, data + pos + 8, 4);
		pos += 12;
		r->len = len < size - pos ? len : size - pos;
		r->data = data + pos;
		pos += r->len;
	}
}

/* @s is NUL-terminated within @cap bytes and valid UTF-8 (what every output format assumes). */
static inline bool fuzz_utf8_ok(const char *s, size_t cap)
{
	size_t len = strnlen(s, cap);

	return len < cap && utf8_ref_valid(s, len);
}

#endif
