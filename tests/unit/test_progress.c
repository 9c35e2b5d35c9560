// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The live status line: its text, and that nothing is drawn when stderr is not a terminal. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "progress.h"

int main(void)
{
	struct progress_counts c = {
		.elapsed_ns = 12345000000ULL,
		.stalls = 2,
		.longest_stall_ns = 512300000ULL,
		.events = 140,
		.lost = 3,
	};
	char buf[160], small[20];
	FILE *f;
	long size;

	progress__format(&c, buf, sizeof(buf));
	CHECK(!strcmp(buf, "hangtrace: 12.3 s | stalls 2, longest 0.512 s | events 140 | lost 3"),
	      "got '%s'", buf);
	memset(&c, 0, sizeof(c));
	progress__format(&c, buf, sizeof(buf));
	CHECK(!strcmp(buf, "hangtrace: 0.0 s | stalls 0, longest 0.000 s | events 0 | lost 0"),
	      "got '%s'", buf);
	/* a small buffer is cut, still terminated */
	progress__format(&c, small, sizeof(small));
	CHECK(strlen(small) == sizeof(small) - 1, "got '%s'", small);

	/* stderr to a file: not a terminal, nothing drawn, nothing erased */
	f = tmpfile();
	CHECK(f != NULL, "tmpfile");
	if (f) {
		fflush(stderr);
		dup2(fileno(f), STDERR_FILENO);
		CHECK(!progress__enable(), "a file is not a terminal");
		progress__show(&c);
		progress__erase();
		progress__disable();
		fflush(stderr);
		size = lseek(STDERR_FILENO, 0, SEEK_END);
		CHECK(size == 0, "wrote %ld bytes", size);
	}
	return CHECK_SUMMARY();
}
