/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_UTF8_H
#define HT_UTF8_H

#include <stddef.h>
#include <stdio.h>

/* utf8_seq_len - length of the valid UTF-8 sequence at @s (1 for ASCII), 0 if invalid. */
size_t utf8_seq_len(const char *s);

/* utf8_sanitize - a malloc'ed copy of @s with invalid UTF-8 replaced by U+FFFD; NULL on ENOMEM. */
char *utf8_sanitize(const char *s);

/*
 * utf8_put_clean - write @s (untrusted: a name from the target) to @f so that
 * it cannot drive a terminal: C0 controls, DEL and bytes of invalid UTF-8 as
 * \xNN, C1 controls and bidirectional overrides as \u{NNNN}.  A NULL @s
 * writes nothing.
 */
void utf8_put_clean(FILE *f, const char *s);

/*
 * utf8_safe_len - the length of the character at @s if it is valid UTF-8 and
 * printable (not a control, C1 or bidi character), else 0.  @s is not empty.
 */
size_t utf8_safe_len(const char *s);

#endif
