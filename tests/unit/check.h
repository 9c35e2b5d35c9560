/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The unit tests' assertion: count, report the failure with its place, go on. */
#ifndef HT_TEST_CHECK_H
#define HT_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                        \
	do {                                                    \
		if (cond) {                                     \
			passed++;                               \
		} else {                                        \
			failed++;                               \
			printf("FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__);                    \
			printf("\n");                           \
		}                                               \
	} while (0)

/* The closing line the CI reads: "N passed, M failed"; exit status 1 on failure. */
#define CHECK_SUMMARY()                                         \
	(printf("%d passed, %d failed\n", passed, failed), failed ? 1 : 0)

#endif
