/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_UTF8_H
#define HT_UTF8_H

#include <stddef.h>

/* utf8_seq_len - length of the valid UTF-8 sequence at @s (1 for ASCII), 0 if invalid. */
size_t utf8_seq_len(const char *s);

/* utf8_sanitize - a malloc'ed copy of @s with invalid UTF-8 replaced by U+FFFD; NULL on ENOMEM. */
char *utf8_sanitize(const char *s);

#endif
