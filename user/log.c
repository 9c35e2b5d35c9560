// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

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
	size_t n;

	if (level > cur_level)
		return;
	if (before_print)
		before_print();
	fprintf(stderr, "hangtrace: %s", prefix);
	vfprintf(stderr, fmt, ap);
	n = strlen(fmt);
	if (!n || fmt[n - 1] != '\n')
		fputc('\n', stderr);
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
