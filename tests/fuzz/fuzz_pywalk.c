// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The host copy of the frame walker (bpf/pywalk.h through user/pywalk_user.c)
 * on a fake memory image: find the thread state of a thread through the
 * interpreter and thread lists, walk its frames, then symbolize each frame as
 * `hangtrace dump` does.  Cycles in any list must end at the walker's bounds.
 */
#include "fuzz.h"
#include "pyproc.h"
#include "pysym.h"
#include "pywalk_user.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_image img;
	static struct ht_pystack st;
	static struct pyproc p;
	struct fuzz_pywalk_hdr h;
	struct pyframe_sym fs;
	struct procmem *m;
	struct pysym *s;
	uint64_t ts, id;
	uint32_t i;

	fuzz_image__parse(data, size, &h, sizeof(h), &img);
	p.off = h.off;
	p.traits = pyoffsets__traits(h.off.minor);
	if (!p.traits)
		return 0;
	p.minor = h.off.minor;
	m = procmem__open_image(img.regions, img.nr);
	if (!m)
		return 0;

	ts = pywalk__find_tstate(&h.pp, m, h.tid, h.fsbase);
	memset(&st, 0xa5, sizeof(st));
	id = pywalk__stack(&h.pp, m, ts ? ts : h.tstate, &st, h.max_frames);
	FUZZ_ASSERT(st.depth <= HT_MAX_PY_FRAMES);
	FUZZ_ASSERT(st.depth <= (h.max_frames < HT_MAX_PY_FRAMES ? h.max_frames : HT_MAX_PY_FRAMES));
	FUZZ_ASSERT((id == 0) == (st.depth == 0));

	s = pysym__new(&p, m);
	for (i = 0; s && i < st.depth; i++) {
		pysym__frame(s, st.frames[i].code, st.frames[i].instr, &fs);
		FUZZ_ASSERT(fuzz_utf8_ok(fs.function, 4096) && fuzz_utf8_ok(fs.file, 4096));
		FUZZ_ASSERT(fs.line >= -1);
	}
	pysym__free(s);
	procmem__close(m);
	return 0;
}
