/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Libraries only one feature needs, loaded when that feature starts: libcurl
 * (the agent's Pyroscope push) and libmicrohttpd (its metrics endpoint).
 * Linked in, they and their 30-odd dependencies cost every run of hangtrace
 * memory and start-up time (docs/architecture.md).
 *
 * Each user keeps a table of typed function pointers (types from the library's
 * own header, through __typeof__) and a dynlib_sym per member.
 */
#ifndef HT_DYNLIB_H
#define HT_DYNLIB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct dynlib_sym {
	const char *name;		/* "curl_easy_init" */
	void **addr;			/* the table member dlsym's answer goes to */
};

struct dynlib {
	const char *soname;		/* "libcurl.so.4" (objdump -p: SONAME) */
	const char *package;		/* the Debian package that ships it: "libcurl4" */
	const struct dynlib_sym *syms;
	size_t nr_syms;
	/* state: set by dynlib__load, under its lock */
	void *handle;
	bool loaded;
};

/*
 * dynlib__load - dlopen() @lib->soname and resolve every one of @lib->syms,
 * the first time it is called; later calls return at once.  Thread-safe.
 * 0, or -ENOENT after printing one line: what could not be loaded, for
 * @feature ("--pyroscope"), and the Debian package to install.  On failure
 * the table is left all NULL and the library closed.
 */
int dynlib__load(struct dynlib *lib, const char *feature);

#endif
