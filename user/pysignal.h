/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The Python-level signal handlers of a process (what signal.signal()
 * installed), read from the interpreter's handler table: so that a handler's
 * frame can be recognised on a thread's stack.
 */
#ifndef HT_PYSIGNAL_H
#define HT_PYSIGNAL_H

#include <stdint.h>

struct procmem;
struct pyproc;

#define PYSIGNAL_MAX 64

struct pysignal_handler {
	int signo;
	uint64_t func;		/* the handler object */
	uint64_t code[2];	/* its code object, if it is a function or a bound method (else junk) */
};

/*
 * pysignal__handlers - the handlers of @p that are neither the default, nor
 * SIG_IGN, nor None: at most PYSIGNAL_MAX into @out, their number in *@n.
 * 0, or -ENOENT when the table was not found, other -errno when unreadable.
 */
int pysignal__handlers(const struct pyproc *p, struct procmem *m, struct pysignal_handler *out,
		       int *n);

#endif
