// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where the table is: a static array in signalmodule.c up to 3.11
 * (`Handlers`, in .bss, a .symtab-only symbol that stripped builds lack),
 * inside _PyRuntime from 3.12 (`signals.handlers`, at an offset no debug
 * table gives).  Both have the same shape, which the search below looks for
 * in the interpreter's writable segment (its .data and .bss):
 *
 *     struct { int tripped; PyObject *func; } handlers[NSIG];   NSIG = 65
 *
 * 16 bytes an entry, `tripped` 0 or 1 with zero padding, `func` never NULL
 * once the signal module is initialised, and for most signals the same
 * object: the SIG_DFL integer.  Every other handler is an int (SIG_IGN),
 * None (a handler Python did not install) or what the program installed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "procmaps.h"
#include "procmem.h"
#include "pyproc.h"
#include "pysignal.h"

#define NSIG_PY		65
#define ENTRY_WORDS	2
#define MAX_REGION	(16u << 20)
#define MIN_DEFAULT	32		/* entries holding SIG_DFL in a real table */

static bool user_ptr(uint64_t v)
{
	return v && !(v & 7) && v < (1ULL << 47);
}

/* Is there a handler table at @w (NSIG_PY entries)?  *@dfl gets its SIG_DFL object. */
static bool table_at(const uint64_t *w, uint64_t *dfl)
{
	uint64_t best = 0;
	int i, j, cnt, best_cnt = 0;

	for (i = 0; i < NSIG_PY; i++)
		if (w[i * ENTRY_WORDS] > 1 || (i && !user_ptr(w[i * ENTRY_WORDS + 1])))
			return false;
	for (i = 1; i < NSIG_PY && best_cnt < MIN_DEFAULT; i++) {
		for (cnt = 0, j = 1; j < NSIG_PY; j++)
			cnt += w[j * ENTRY_WORDS + 1] == w[i * ENTRY_WORDS + 1];
		if (cnt > best_cnt) {
			best_cnt = cnt;
			best = w[i * ENTRY_WORDS + 1];
		}
	}
	*dfl = best;
	return best_cnt >= MIN_DEFAULT;
}

/* Read a handler's code object: a function's, or a bound method's function's. */
static void handler_code(const struct pyproc *p, struct procmem *m, struct pysignal_handler *h)
{
	/* PyFunctionObject.func_code: first field up to 3.9, after globals,
	 * builtins, name and qualname from 3.10; PyMethodObject.im_func: +16 */
	uint64_t code_off = p->minor >= 10 ? 48 : 16, im_func = 0;

	procmem__read_u64(m, h->func + code_off, &h->code[0]);
	if (!procmem__read_u64(m, h->func + 16, &im_func) && user_ptr(im_func))
		procmem__read_u64(m, im_func + code_off, &h->code[1]);
}

static int scan_region(const struct pyproc *p, struct procmem *m, uint64_t start, uint64_t end,
		       struct pysignal_handler *out, int *n)
{
	size_t len = end - start, nw, k;
	uint64_t *w, dfl;
	int err, i;

	if (len > MAX_REGION)
		len = MAX_REGION;
	w = malloc(len);
	if (!w)
		return -ENOMEM;
	err = procmem__read(m, start, w, len);
	if (err)
		goto cleanup;
	nw = len / 8;
	err = -ENOENT;
	for (k = 0; k + NSIG_PY * ENTRY_WORDS <= nw; k++) {
		/* cheap test first: SIGHUP's and SIGINT's entries */
		if (w[k + 2] > 1 || !user_ptr(w[k + 3]) || w[k + 4] > 1 || !user_ptr(w[k + 5]))
			continue;
		if (!table_at(w + k, &dfl))
			continue;
		*n = 0;
		for (i = 1; i < NSIG_PY && *n < PYSIGNAL_MAX; i++) {
			uint64_t f = w[k + i * ENTRY_WORDS + 1];

			/* SIG_IGN and None give junk code objects, which match no frame */
			if (f == dfl)
				continue;
			memset(&out[*n], 0, sizeof(out[*n]));
			out[*n].signo = i;
			out[*n].func = f;
			handler_code(p, m, &out[*n]);
			(*n)++;
		}
		err = 0;
		break;
	}
cleanup:
	free(w);
	return err;
}

int pysignal__handlers(const struct pyproc *p, struct procmem *m, struct pysignal_handler *out,
		       int *n)
{
	const struct procmaps_entry *e, *prev = NULL;
	struct procmaps *maps;
	int err = -ENOENT;
	size_t i;

	*n = 0;
	maps = procmaps__load(p->pid);
	if (!maps)
		return -errno;
	/* the interpreter's writable mappings, and the anonymous one right after (.bss) */
	for (i = 0; i < maps->nr && err; i++) {
		e = &maps->entries[i];
		if (e->perms[1] == 'w' &&
		    (!strcmp(e->path, p->python_file) ||
		     (prev && !e->inode && !e->path[0] && prev->end == e->start)) &&
		    !scan_region(p, m, e->start, e->end, out, n))
			err = 0;
		prev = !strcmp(e->path, p->python_file) ? e : NULL;
	}
	procmaps__free(maps);
	return err;
}
