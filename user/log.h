/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_LOG_H
#define HT_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_DEBUG_EXTRA };

void log__set_level(enum log_level level);
enum log_level log__level(void);

/* log__set_before_print - call @fn (NULL: nothing) before each message is printed. */
void log__set_before_print(void (*fn)(void));

/* "hangtrace: error: ..." on stderr; one line, no trailing newline needed. */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p_dbg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
