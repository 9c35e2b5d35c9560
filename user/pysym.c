// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Code objects are read once and cached by address.  A code object can be
 * freed and its memory reused; the cache entry is checked against the
 * object's type, filename and line table pointers, which together identify
 * the object well enough for a stack that was taken moments ago.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "procmem.h"
#include "pyproc.h"
#include "pystr.h"
#include "pysym.h"

#define MAX_NAME	1024
#define MAX_LINETABLE	(1 << 20)

struct code_entry {
	uint64_t addr;
	uint64_t linetable_addr;
	char *function;
	char *file;
	uint8_t *linetable;
	size_t linetable_len;
	int firstlineno;
	bool ok;
	struct code_entry *next;
};

#define NR_BUCKETS 4096

struct pysym {
	const struct pyproc *p;
	struct procmem *mem;
	uint64_t code_type;		/* address of PyCode_Type, once seen */
	uint64_t failures;
	size_t nr_entries, max_entries;	/* max 0: no cap */
	uint64_t cap_hits;		/* lookups not cached: the cache was full */
	struct code_entry *scratch;	/* the last uncached entry */
	struct code_entry *buckets[NR_BUCKETS];
};

static const char unknown[] = "<unknown>";

struct pysym *pysym__new(const struct pyproc *p, struct procmem *mem)
{
	struct pysym *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->p = p;
	s->mem = mem;
	return s;
}

static void entry_free(struct code_entry *e)
{
	free(e->function);
	free(e->file);
	free(e->linetable);
	free(e);
}

void pysym__free(struct pysym *s)
{
	struct code_entry *e, *n;
	size_t i;

	if (!s)
		return;
	for (i = 0; i < NR_BUCKETS; i++)
		for (e = s->buckets[i]; e; e = n) {
			n = e->next;
			entry_free(e);
		}
	if (s->scratch)
		entry_free(s->scratch);
	free(s);
}

uint64_t pysym__failures(const struct pysym *s)
{
	return s ? s->failures : 0;
}

void pysym__set_max(struct pysym *s, size_t max)
{
	s->max_entries = max;
}

size_t pysym__count(const struct pysym *s)
{
	return s ? s->nr_entries : 0;
}

uint64_t pysym__cap_hits(const struct pysym *s)
{
	return s ? s->cap_hits : 0;
}

/* Is the object at @addr a code object?  Checks its type's tp_name once. */
static bool is_code(struct pysym *s, uint64_t addr)
{
	const struct py_offsets *o = &s->p->off;
	uint64_t type = 0, name_ptr = 0;
	char name[8];

	if (!addr || (addr & 7))
		return false;
	if (procmem__read_u64(s->mem, addr + o->ob_type, &type))
		return false;
	if (s->code_type)
		return type == s->code_type;
	if (procmem__read_u64(s->mem, type + o->tp_name, &name_ptr) ||
	    procmem__read(s->mem, name_ptr, name, 5))
		return false;
	if (memcmp(name, "code", 5))
		return false;
	s->code_type = type;
	return true;
}

static char *read_str(struct pysym *s, uint64_t addr)
{
	char buf[MAX_NAME];

	if (!addr || pystr__read(s->mem, &s->p->off, addr, buf, sizeof(buf)))
		return NULL;
	return strdup(buf);
}

static struct code_entry *load_code(struct pysym *s, uint64_t addr)
{
	const struct py_offsets *o = &s->p->off;
	uint64_t fn = 0, name = 0, lt = 0;
	struct code_entry *e;
	int32_t first = 0;

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->addr = addr;
	if (!is_code(s, addr))
		return e;
	if (procmem__read_u64(s->mem, addr + o->code_filename, &fn) ||
	    procmem__read_u64(s->mem, addr + (o->code_qualname >= 0 ? o->code_qualname : o->code_name),
			      &name) ||
	    procmem__read_u64(s->mem, addr + o->code_linetable, &lt) ||
	    procmem__read(s->mem, addr + o->code_firstlineno, &first, sizeof(first)))
		return e;
	e->file = read_str(s, fn);
	e->function = read_str(s, name);
	if (!e->function && o->code_qualname >= 0 &&
	    procmem__read_u64(s->mem, addr + o->code_name, &name) == 0)
		e->function = read_str(s, name);
	e->firstlineno = first;
	e->linetable_addr = lt;
	if (lt)
		pybytes__read(s->mem, o, lt, MAX_LINETABLE, &e->linetable, &e->linetable_len);
	e->ok = e->function && e->file;
	return e;
}

static struct code_entry *lookup(struct pysym *s, uint64_t addr)
{
	size_t b = (addr >> 4) % NR_BUCKETS;
	struct code_entry *e;

	for (e = s->buckets[b]; e; e = e->next)
		if (e->addr == addr)
			return e;
	e = load_code(s, addr);
	if (!e)
		return NULL;
	if (!e->ok)
		s->failures++;
	if (s->max_entries && s->nr_entries >= s->max_entries) {
		/* full: symbolize without caching (valid until the next such lookup) */
		if (s->scratch)
			entry_free(s->scratch);
		s->scratch = e;
		s->cap_hits++;
		return e;
	}
	e->next = s->buckets[b];
	s->buckets[b] = e;
	s->nr_entries++;
	return e;
}

/* The line-table offset of @instr in the units of this version's table. */
static int64_t table_offset(const struct pysym *s, const struct code_entry *e, uint64_t instr)
{
	const struct py_version_traits *t = s->p->traits;
	uint64_t start;

	/* f_lasti is a C int, sign-extended by the walker; anything else is garbage */
	if (s->p->off.frame_lasti >= 0) {
		int64_t lasti = (int64_t)instr;

		if (lasti < 0 || lasti > INT32_MAX)
			return -1;
		return lasti * t->lasti_scale;
	}
	start = e->addr + s->p->off.code_code_adaptive;
	if (instr < start)
		return -1;
	return (int64_t)((instr - start) / 2);
}

void pysym__frame(struct pysym *s, uint64_t code, uint64_t instr, struct pyframe_sym *out)
{
	struct code_entry *e = lookup(s, code);

	out->function = unknown;
	out->file = unknown;
	out->line = -1;
	out->start_line = 0;
	if (!e)
		return;
	if (e->function)
		out->function = e->function;
	if (e->file)
		out->file = e->file;
	if (!e->ok)
		return;
	out->start_line = e->firstlineno > 0 ? e->firstlineno : 0;
	if (e->linetable)
		out->line = linetable__line(s->p->traits->linetable, e->linetable,
					    e->linetable_len, e->firstlineno,
					    table_offset(s, e, instr));
	/* co_firstlineno is the target's: a negative one is no line either */
	if (out->line < 0 && e->firstlineno >= 0)
		out->line = e->firstlineno;
}
