// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* utf8_put_clean: what a hostile name from the target turns into on a terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "utf8.h"

static void expect(const char *in, const char *want)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		CHECK(0, "open_memstream failed");
		return;
	}
	utf8_put_clean(f, in);
	fclose(f);
	CHECK(!strcmp(buf, want), "clean(%s): got '%s', want '%s'", in, buf, want);
	free(buf);
}

int main(void)
{
	expect("plain_name", "plain_name");
	expect("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
	expect("\x1b[2J\x1b]0;t\x07", "\\x1b[2J\\x1b]0;t\\x07");	/* ESC, BEL */
	expect("a\nb\rc\td\x7f", "a\\x0ab\\x0dc\\x09d\\x7f");
	expect("bad\xff\xfe!", "bad\\xff\\xfe!");			/* invalid UTF-8 */
	expect("\xc0\xaf", "\\xc0\\xaf");				/* overlong '/' */
	expect("\xed\xa0\x80", "\\xed\\xa0\\x80");			/* a surrogate */
	expect("cut\xe6\x97", "cut\\xe6\\x97");			/* truncated sequence */
	expect("x\xc2\x9b" "31m", "x\\u{009b}31m");			/* C1 CSI */
	expect("\xe2\x80\xae" "evil", "\\u{202e}evil");			/* RTL override */
	expect("\xe2\x81\xa6i\xe2\x81\xa9", "\\u{2066}i\\u{2069}");	/* bidi isolates */
	expect("q\"<b>&'\\", "q\"<b>&'\\");				/* text needs no HTML escaping */
	expect("", "");
	expect(NULL, "");
	CHECK(utf8_safe_len("a") == 1 && utf8_safe_len("\xc3\xa9") == 2, "safe_len of printable");
	CHECK(!utf8_safe_len("\x1b") && !utf8_safe_len("\xff") && !utf8_safe_len("\xc2\x9b") &&
	      !utf8_safe_len("\xe2\x80\xae") && !utf8_safe_len("\xe6\x97"), "safe_len of unsafe");
	return CHECK_SUMMARY();
}
