/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_UTF8_H
#define HT_UTF8_H

/* utf8_sanitize - a malloc'ed copy of @s with invalid UTF-8 replaced by U+FFFD; NULL on ENOMEM. */
char *utf8_sanitize(const char *s);

#endif
