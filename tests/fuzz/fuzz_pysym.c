// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pysym__frame() on a fake memory image: a code object, its type, its name,
 * qualname and filename strings and its line table, as the 3.6-3.15 layouts
 * in the header say.  Each instruction is symbolized twice (read, then from
 * the cache); names must come back as valid UTF-8 and lines >= -1.
 */
#include "fuzz.h"
#include "pyproc.h"
#include "pysym.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_sym(const struct pyframe_sym *fs)
{
	FUZZ_ASSERT(fs->function && fs->file);
	FUZZ_ASSERT(fuzz_utf8_ok(fs->function, 4096) && fuzz_utf8_ok(fs->file, 4096));
	FUZZ_ASSERT(fs->line >= -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_image img;
	static struct pyproc p;
	struct fuzz_pysym_hdr h;
	struct pyframe_sym fs;
	struct procmem *m;
	struct pysym *s;
	size_t i, pass;

	fuzz_image__parse(data, size, &h, sizeof(h), &img);
	p.off = h.off;
	/* A pyproc always has the traits of its version: discovery refuses others. */
	p.traits = pyoffsets__traits(h.off.minor);
	if (!p.traits)
		return 0;
	p.minor = h.off.minor;
	m = procmem__open_image(img.regions, img.nr);
	if (!m)
		return 0;
	s = pysym__new(&p, m);
	if (s) {
		for (pass = 0; pass < 2; pass++)
			for (i = 0; i < sizeof(h.instr) / sizeof(h.instr[0]); i++) {
				pysym__frame(s, h.code, h.instr[i], &fs);
				check_sym(&fs);
			}
		FUZZ_ASSERT(pysym__failures(s) <= 1);
	}
	pysym__free(s);
	procmem__close(m);
	return 0;
}
