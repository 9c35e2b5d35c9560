// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pystr__read() and pybytes__read() on a fake memory image (every str
 * layout: compact ASCII, compact latin-1/UCS-2/UCS-4, legacy behind data.any,
 * 3.6-3.15 offsets), and pystr__to_utf8() straight on the first region.  The
 * output buffer has exactly the size the caller claims.
 */
#include "fuzz.h"
#include "pystr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_image img;
	struct fuzz_pystr_hdr h;
	struct procmem *m;
	uint8_t *bytes = NULL;
	size_t outsz, blen = 0, n;
	char *out;
	int err;

	fuzz_image__parse(data, size, &h, sizeof(h), &img);
	m = procmem__open_image(img.regions, img.nr);
	if (!m)
		return 0;
	outsz = h.outsz % FUZZ_PYSTR_MAX_OUT + 1;
	out = malloc(outsz);
	if (!out)
		goto cleanup;

	err = pystr__read(m, &h.off, h.str_addr, out, outsz);
	FUZZ_ASSERT(err == 0 || err == -EFAULT || err == -EINVAL || err == -ENOMEM);
	FUZZ_ASSERT(fuzz_utf8_ok(out, outsz));

	err = pybytes__read(m, &h.off, h.bytes_addr, h.bytes_max % FUZZ_PYSTR_MAX_OUT, &bytes,
			    &blen);
	FUZZ_ASSERT(err == 0 || err == -EFAULT || err == -EINVAL || err == -ENOMEM);
	FUZZ_ASSERT(err ? !bytes : (bytes && blen <= h.bytes_max % FUZZ_PYSTR_MAX_OUT));
	free(bytes);

	if (img.nr) {
		static const int kinds[] = { 1, 2, 4, 3 };
		int kind = kinds[h.outsz >> 30];

		n = pystr__to_utf8(img.regions[0].data, img.regions[0].len / (size_t)kind, kind,
				   out, outsz);
		FUZZ_ASSERT(n < outsz && strlen(out) == n && fuzz_utf8_ok(out, outsz));
	}
cleanup:
	free(out);
	procmem__close(m);
	return 0;
}
