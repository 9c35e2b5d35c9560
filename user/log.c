// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "utf8.h"

static enum log_level cur_level = LOG_WARN;
static void (*before_print)(void);

void log__set_before_print(void (*fn)(void))
{
	before_print = fn;
}

void log__set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level log__level(void)
{
	return cur_level;
}

static void vlog_at(enum log_level level, const char *prefix, const char *fmt, va_list ap)
{
	char *msg = NULL;
	size_t n;

	if (level > cur_level)
		return;
	if (before_print)
		before_print();
	fprintf(stderr, "hangtrace: %s", prefix);
	/* Messages quote names from the target: never let them drive the terminal. */
	if (vasprintf(&msg, fmt, ap) < 0) {
		fputs("(out of memory)\n", stderr);
		return;
	}
	n = strlen(msg);
	if (n && msg[n - 1] == '\n')
		msg[n - 1] = 0;
	utf8_put_clean(stderr, msg);
	fputc('\n', stderr);
	free(msg);
}

#define DEFINE_LOG(name, level, prefix)                 \
	void name(const char *fmt, ...)                 \
	{                                               \
		va_list ap;                             \
		va_start(ap, fmt);                      \
		vlog_at(level, prefix, fmt, ap);        \
		va_end(ap);                             \
	}

DEFINE_LOG(p_err, LOG_ERROR, "error: ")
DEFINE_LOG(p_warn, LOG_WARN, "warning: ")
DEFINE_LOG(p_info, LOG_INFO, "")
DEFINE_LOG(p_dbg, LOG_DEBUG, "debug: ")
