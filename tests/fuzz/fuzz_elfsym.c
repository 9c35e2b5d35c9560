// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * elfsym on an ELF file made of the input (a memfd: elfsym reads files):
 * every lookup the interpreter discovery makes, then reads at the addresses
 * the file itself gives.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "elfsym.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const symbols[] = {
	"_PyRuntime", "Py_GetVersion", "_Py_DebugOffsets", "PyCode_Type", "gil_cond",
	"_PyThreadState_Current", "interp_head",
};
static const char *const sections[] = { ".PyRuntime", ".data", ".bss", ".rodata", ".dynsym" };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	int dfd;
	struct elfsym *es;
	uint8_t buf[256];
	uint64_t value, sz, bias;
	const void *sd;
	size_t i, sl;

	if (fd < 0)
		fd = memfd_create("fuzz-elf", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	/* elfsym takes the fd on success only: hand it a duplicate. */
	dfd = dup(fd);
	if (dfd < 0)
		return 0;
	es = elfsym__open_fd(dfd);
	if (!es) {
		close(dfd);
		return 0;
	}
	FUZZ_ASSERT(elfsym__info(es)->file_size == size);
	for (i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
		if (elfsym__lookup_dyn(es, symbols[i], &value, &sz) == 0 ||
		    elfsym__lookup(es, symbols[i], &value, NULL) == 0) {
			int err = elfsym__read(es, value, buf, sizeof(buf));

			FUZZ_ASSERT(err == 0 || err == -ENOENT || err == -ENODATA || err == -EIO);
			elfsym__read(es, value, buf, 8);
		}
	}
	for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		if (elfsym__section(es, sections[i], &value, &sz) == 0)
			elfsym__read(es, value, buf, sz < sizeof(buf) ? sz : sizeof(buf));
		if (elfsym__section_data(es, sections[i], &sd, &sl) == 0 && sl)
			FUZZ_ASSERT(((const volatile uint8_t *)sd)[sl - 1] ||
				    !((const volatile uint8_t *)sd)[sl - 1]);	/* readable */
	}
	elfsym__bias(es, 0, 0x555555554000ull, &bias);
	elfsym__bias(es, 0x1000, 0x7f0000001000ull, &bias);
	elfsym__close(es);
	return 0;
}
