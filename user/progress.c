// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "progress.h"

#define ERASE_LINE "\r\033[K"

static bool enabled;
static bool shown;

bool progress__enable(void)
{
	if (!isatty(STDERR_FILENO))
		return false;
	enabled = true;
	log__set_before_print(progress__erase);
	return true;
}

void progress__format(const struct progress_counts *c, char *buf, unsigned long len)
{
	snprintf(buf, len, "hangtrace: %.1f s | stalls %llu, longest %.3f s | events %llu | lost %llu",
		 c->elapsed_ns / 1e9, (unsigned long long)c->stalls, c->longest_stall_ns / 1e9,
		 (unsigned long long)c->events, (unsigned long long)c->lost);
}

void progress__show(const struct progress_counts *c)
{
	char line[160];

	if (!enabled)
		return;
	progress__format(c, line, sizeof(line));
	/* one write, so a half-drawn line never shows */
	fprintf(stderr, ERASE_LINE "%s", line);
	fflush(stderr);
	shown = true;
}

void progress__erase(void)
{
	if (!shown)
		return;
	fputs(ERASE_LINE, stderr);
	fflush(stderr);
	shown = false;
}

void progress__disable(void)
{
	progress__erase();
	enabled = false;
	log__set_before_print(NULL);
}
