// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * procmaps__parse() on the text of a maps file (paths in it are chosen by
 * whoever named the files), then the lookups run on every entry.
 */
#include "fuzz.h"
#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct procmaps *maps;
	char *text;
	size_t i;

	text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	maps = procmaps__parse(text, size);
	free(text);
	if (!maps)
		return 0;
	for (i = 0; i < maps->nr; i++) {
		const struct procmaps_entry *e = &maps->entries[i], *b, *f;

		FUZZ_ASSERT(e->path != NULL && !strchr(e->path, '\n'));
		FUZZ_ASSERT(e->start <= e->end && strlen(e->perms) <= 4);
		b = procmaps__file_base(maps, e);
		FUZZ_ASSERT(!b || (b->offset == 0 && procmaps__same_file(b, e)));
		f = procmaps__find(maps, e->start);
		FUZZ_ASSERT(!f || (e->start >= f->start && e->start < f->end));
		if (e->end > e->start) {
			f = procmaps__find(maps, e->end - 1);
			FUZZ_ASSERT(f != NULL);
		}
	}
	procmaps__free(maps);
	return 0;
}
