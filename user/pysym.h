/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Python frame symbolization: (code object, instruction) -> function, file, line. */
#ifndef HT_PYSYM_H
#define HT_PYSYM_H

#include <stdint.h>

struct procmem;
struct pyproc;
struct pysym;

struct pyframe_sym {
	const char *function;	/* qualname (3.11+) or name; "<unknown>" if unreadable */
	const char *file;	/* co_filename as the process sees it; "<unknown>" if unreadable */
	int line;		/* -1 when unknown */
	int start_line;		/* co_firstlineno: the def line; 0 when unknown */
};

/* pysym__new - a symbolizer for process @p, reading through @mem.  NULL + errno. */
struct pysym *pysym__new(const struct pyproc *p, struct procmem *mem);
void pysym__free(struct pysym *s);

/*
 * pysym__frame - symbolize one frame.  Never fails: garbage gives
 * "<unknown>".  The strings live as long as @s, except when the cache is full
 * (pysym__set_max) and the code object was not in it: then they are valid
 * until the next pysym__frame() call on @s only (copy them).
 */
void pysym__frame(struct pysym *s, uint64_t code, uint64_t instr, struct pyframe_sym *out);

/* Number of code objects that could not be read (for the report's "lost"). */
uint64_t pysym__failures(const struct pysym *s);

/*
 * pysym__set_max - cache at most @max code objects (0, the default: no cap).
 * Beyond it, frames of code objects not cached are read from the process at
 * every lookup, nothing is evicted, and each such lookup is counted.
 */
void pysym__set_max(struct pysym *s, size_t max);
/* pysym__count - code objects cached; pysym__cap_hits - lookups not cached (full). */
size_t pysym__count(const struct pysym *s);
uint64_t pysym__cap_hits(const struct pysym *s);

#endif
