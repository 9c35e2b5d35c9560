// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * dlopen() by SONAME and a table of symbols (dynlib.h).  The library stays
 * loaded until exit: libcurl and libmicrohttpd keep threads and global state.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dynlib.h"
#include "log.h"

static pthread_mutex_t dynlib_lock = PTHREAD_MUTEX_INITIALIZER;

/* dlerror()'s message, kept to one printable line. */
static void last_error(char *buf, size_t size)
{
	const char *e = dlerror();
	char *c;

	snprintf(buf, size, "%s", e ? e : "unknown error");
	for (c = buf; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
}

static void clear_syms(struct dynlib *lib)
{
	size_t i;

	for (i = 0; i < lib->nr_syms; i++)
		*lib->syms[i].addr = NULL;
}

int dynlib__load(struct dynlib *lib, const char *feature)
{
	char why[512];
	size_t i;
	int err = 0;

	pthread_mutex_lock(&dynlib_lock);
	if (lib->loaded)
		goto cleanup;
	dlerror();
	lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle) {
		last_error(why, sizeof(why));
		err = -ENOENT;
		goto cleanup;
	}
	for (i = 0; i < lib->nr_syms; i++) {
		dlerror();
		*lib->syms[i].addr = dlsym(lib->handle, lib->syms[i].name);
		if (!*lib->syms[i].addr) {
			last_error(why, sizeof(why));
			clear_syms(lib);
			dlclose(lib->handle);
			lib->handle = NULL;
			err = -ENOENT;
			goto cleanup;
		}
	}
	lib->loaded = true;
cleanup:
	pthread_mutex_unlock(&dynlib_lock);
	if (err)
		p_err("%s needs %s, from the Debian package %s: %s", feature, lib->soname,
		      lib->package, why);
	return err;
}
