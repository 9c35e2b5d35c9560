// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * _Py_AsyncioModuleDebugOffsets (Modules/_asynciomodule.c, 3.14+) is, like
 * _Py_DebugOffsets, a flat run of uint64_t in sections, versioned but not
 * self-describing (and without a cookie).  Each known minor's field list is
 * data below; adding 3.16 adds a row.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elfsym.h"
#include "hangtrace.h"
#include "log.h"
#include "procmaps.h"
#include "procmem.h"
#include "pyasyncio.h"
#include "pyoffsets.h"
#include "pyproc.h"
#include "pystr.h"
#include "pysym.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

#define AIO_SECTION	".AsyncioDebug"
#define AIO_MAX_BYTES	4096		/* more than any version's struct */
#define AIO_MAX_TASK	4096		/* sizeof(TaskObj) is 168 on 3.14 */
#define AIO_MAX_TSTATE	(64u << 10)	/* sizeof(_PyThreadStateImpl) is ~1 KiB */

struct aio_section {
	const char *name;
	const char *const *fields;	/* NULL-terminated, in struct order */
};

/* Checked against the .AsyncioDebug bytes of Debian's 3.14.10 and 3.15.2. */
static const struct aio_section aio_314[] = {
	{ "asyncio_task_object",
	  FIELDS("size", "task_name", "task_awaited_by", "task_is_task", "task_awaited_by_is_set",
		 "task_coro", "task_node") },
	{ "asyncio_interpreter_state", FIELDS("size", "asyncio_tasks_head") },
	{ "asyncio_thread_state",
	  FIELDS("size", "asyncio_running_loop", "asyncio_running_task", "asyncio_tasks_head") },
	{ NULL, NULL },
};

static const struct {
	int minor;
	const struct aio_section *sections;
} aio_layouts[] = {
	{ 14, aio_314 },
	{ 15, aio_314 },
};

/* Byte position of @section.@field, or -1; with @field NULL, the total size. */
static long aio_pos(const struct aio_section *l, const char *section, const char *field)
{
	long pos = 0;
	size_t s, f;

	for (s = 0; l[s].name; s++)
		for (f = 0; l[s].fields[f]; f++, pos += 8)
			if (field && !strcmp(l[s].name, section) && !strcmp(l[s].fields[f], field))
				return pos;
	return field ? -1 : pos;
}

static uint64_t aio_get(const struct aio_section *l, const unsigned char *b, const char *section,
			const char *field)
{
	long pos = aio_pos(l, section, field);
	uint64_t v;

	if (pos < 0)
		return UINT64_MAX;	/* a field list without it: fails every bound */
	memcpy(&v, b + pos, sizeof(v));
	return v;
}

/* A pointer member at @off of a struct of @size bytes. */
static bool ptr_ok(uint64_t off, uint64_t size)
{
	return off % 8 == 0 && off >= 8 && off + 8 <= size;
}

int pyasyncio__parse(const void *buf, size_t len, int minor, struct pyasyncio *out)
{
	const struct aio_section *l = NULL;
	uint64_t task_size, ts_size, name, coro, running;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(aio_layouts); i++)
		if (aio_layouts[i].minor == minor)
			l = aio_layouts[i].sections;
	if (!l)
		return -ENOTSUP;
	if (!buf || len < (size_t)aio_pos(l, NULL, NULL))
		return -EINVAL;
	task_size = aio_get(l, buf, "asyncio_task_object", "size");
	ts_size = aio_get(l, buf, "asyncio_thread_state", "size");
	name = aio_get(l, buf, "asyncio_task_object", "task_name");
	coro = aio_get(l, buf, "asyncio_task_object", "task_coro");
	running = aio_get(l, buf, "asyncio_thread_state", "asyncio_running_task");
	if (task_size > AIO_MAX_TASK || ts_size > AIO_MAX_TSTATE || !ptr_ok(name, task_size) ||
	    !ptr_ok(coro, task_size) || !ptr_ok(running, ts_size) || name == coro) {
		p_dbg("_AsyncioDebug 3.%d: implausible offsets (task %llu: name %llu, coro %llu; "
		      "thread state %llu: running task %llu)", minor,
		      (unsigned long long)task_size, (unsigned long long)name,
		      (unsigned long long)coro, (unsigned long long)ts_size,
		      (unsigned long long)running);
		return -EINVAL;
	}
	out->task_name = (int)name;
	out->task_coro = (int)coro;
	out->ts_running_task = (int)running;
	return 0;
}

/* The _Py_DebugOffsets members this needs beyond struct py_offsets. */
static int read_runtime_fields(const struct pyproc *p, struct procmem *m, struct pyasyncio *out)
{
	uint64_t iframe, tag, digit;
	uint8_t *buf;
	int err;

	buf = calloc(1, PY_DEBUG_OFFSETS_MAX);
	if (!buf)
		return -ENOMEM;
	err = procmem__read(m, p->runtime_addr, buf, PY_DEBUG_OFFSETS_MAX);
	if (!err)
		err = pyoffsets__debug_field(buf, PY_DEBUG_OFFSETS_MAX, "gen_object", "gi_iframe",
					     &iframe);
	if (!err)
		err = pyoffsets__debug_field(buf, PY_DEBUG_OFFSETS_MAX, "long_object", "lv_tag",
					     &tag);
	if (!err)
		err = pyoffsets__debug_field(buf, PY_DEBUG_OFFSETS_MAX, "long_object", "ob_digit",
					     &digit);
	free(buf);
	if (err)
		return err == -EFAULT ? err : -EINVAL;
	if (iframe % 8 || tag % 8 || digit % 4 || digit <= tag || p->off.frame_code < 0)
		return -EINVAL;
	out->gen_iframe = (int)iframe;
	out->coro_code = (int)iframe + p->off.frame_code;
	out->long_lv_tag = (int)tag;
	out->long_ob_digit = (int)digit;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* _AsyncioDebug in the file mapped by @e, if it has one.  0 or -ENOENT / -EINVAL. */
static int probe(const struct pyproc *p, struct procmem *m, const struct procmaps *maps,
		 const struct procmaps_entry *e, struct pyasyncio *out)
{
	const struct procmaps_entry *base = procmaps__file_base(maps, e);
	unsigned char buf[AIO_MAX_BYTES];
	const void *data;
	uint64_t addr, size, bias;
	struct elfsym *es;
	size_t dlen;
	int err = -ENOENT;

	if (!base)
		return -ENOENT;
	es = pyproc__open_mapped(p->pid, base);
	if (!es)
		return -ENOENT;
	if (elfsym__section(es, AIO_SECTION, &addr, &size) ||
	    elfsym__bias(es, base->offset, base->start, &bias))
		goto out;
	err = -EINVAL;
	if (!size || size > sizeof(buf))
		goto out;
	/* constant data: the target's copy, else the file's */
	if (procmem__read(m, addr + bias, buf, size)) {
		if (elfsym__section_data(es, AIO_SECTION, &data, &dlen) || dlen < size)
			goto out;
		memcpy(buf, data, size);
	}
	err = pyasyncio__parse(buf, size, p->minor, out);
	if (!err)
		snprintf(out->file, sizeof(out->file), "%s", e->path);
out:
	elfsym__close(es);
	return err;
}

int pyasyncio__find(const struct pyproc *p, struct procmem *m, bool runtime_file,
		    struct pyasyncio *out)
{
	struct pyasyncio a = {};
	struct procmaps *maps;
	size_t i;
	int err = -ENOENT;

	if (pyasyncio__parse(NULL, 0, p->minor, &a) == -ENOTSUP)
		return -ENOTSUP;
	maps = procmaps__load(p->pid);
	if (!maps)
		return -ENOENT;
	/* the interpreter's own file first (a built-in _asyncio), then an _asyncio module */
	for (i = 0; runtime_file && i < maps->nr && err == -ENOENT; i++) {
		const struct procmaps_entry *e = &maps->entries[i];

		if (procmaps__is_file(e) && e->offset == 0 && !strcmp(e->path, p->python_file))
			err = probe(p, m, maps, e, &a);
	}
	for (i = 0; i < maps->nr && err == -ENOENT; i++) {
		const struct procmaps_entry *e = &maps->entries[i];

		if (procmaps__is_file(e) && e->offset == 0 &&
		    !strncmp(base_name(e->path), "_asyncio.", 9))
			err = probe(p, m, maps, e, &a);
	}
	procmaps__free(maps);
	if (!err)
		err = read_runtime_fields(p, m, &a);
	if (!err)
		*out = a;
	return err;
}

/* What the object at @obj is, by its type's tp_name: 's' str, 'i' int, 0 other.  Cached. */
static int type_kind(struct pyasyncio *a, const struct pyproc *p, struct procmem *m,
		     uint64_t type)
{
	uint64_t name;
	char tn[8] = "";

	if (!type)
		return 0;
	if (type == a->str_type)
		return 's';
	if (type == a->int_type)
		return 'i';
	if (procmem__read_u64(m, type + p->off.tp_name, &name) || procmem__read(m, name, tn, 4))
		return 0;
	/* str and int are static types: the same address for the life of the process */
	if (!memcmp(tn, "str", 4)) {
		a->str_type = type;
		return 's';
	}
	if (!memcmp(tn, "int", 4)) {
		a->int_type = type;
		return 'i';
	}
	return 0;
}

/*
 * An unnamed task keeps the counter value N of its default name "Task-N" as
 * an int until get_name() formats it.  A compact PyLong (3.12+): lv_tag is
 * ndigits << 3 | sign (0 positive, 1 zero, 2 negative), digits of 30 bits.
 */
static int task_number(const struct pyasyncio *a, const uint8_t *raw, size_t len, uint64_t *n)
{
	uint32_t d[2] = {};
	unsigned int ndigits;
	uint64_t tag;

	if ((size_t)a->long_lv_tag + sizeof(tag) > len)
		return -EINVAL;
	memcpy(&tag, raw + a->long_lv_tag, sizeof(tag));
	ndigits = tag >> 3;
	if ((tag & 3) == 1) {
		*n = 0;
		return 0;
	}
	if ((tag & 3) != 0 || ndigits < 1 || ndigits > 2 ||
	    (size_t)a->long_ob_digit + ndigits * sizeof(d[0]) > len)
		return -EINVAL;
	memcpy(d, raw + a->long_ob_digit, ndigits * sizeof(d[0]));
	*n = (uint64_t)d[0] | (uint64_t)d[1] << 30;
	return 0;
}

void pyasyncio__name_from_raw(struct pyasyncio *a, const struct pyproc *p, struct procmem *m,
			      const void *raw, size_t len, char *out, size_t outsz)
{
	uint64_t type, n;

	out[0] = '\0';
	if (p->off.ob_type < 0 || (size_t)p->off.ob_type + sizeof(type) > len)
		return;
	memcpy(&type, (const uint8_t *)raw + p->off.ob_type, sizeof(type));
	switch (type_kind(a, p, m, type)) {
	case 's':
		if (pystr__from_image(raw, len, &p->off, out, outsz))
			out[0] = '\0';
		break;
	case 'i':
		if (!task_number(a, raw, len, &n))
			snprintf(out, outsz, "Task-%llu", (unsigned long long)n);
		break;
	}
}

void pyasyncio__coro_name(const struct pyproc *p, struct pysym *sym, uint64_t code, char *out,
			  size_t outsz)
{
	struct pyframe_sym fs;

	out[0] = '\0';
	code &= p->traits->code_tag_mask;
	if (!code)
		return;
	pysym__frame(sym, code, 0, &fs);
	if (strcmp(fs.function, "<unknown>"))
		snprintf(out, outsz, "%s", fs.function);
}

int pyasyncio__task(struct pyasyncio *a, const struct pyproc *p, struct procmem *m,
		    struct pysym *sym, uint64_t task, char *name, size_t namesz, char *coro,
		    size_t corosz)
{
	uint8_t raw[HT_TASK_NAME_RAW];
	uint64_t name_ptr, coro_ptr, code = 0;
	size_t len = sizeof(raw);

	name[0] = coro[0] = '\0';
	if (!task || task % 8 || procmem__read_u64(m, task + a->task_name, &name_ptr) ||
	    procmem__read_u64(m, task + a->task_coro, &coro_ptr))
		return -EFAULT;
	if (procmem__read(m, name_ptr, raw, len))
		len = procmem__read(m, name_ptr, raw, 64) ? 0 : 64;
	pyasyncio__name_from_raw(a, p, m, raw, len, name, namesz);
	if (coro_ptr && !procmem__read_u64(m, coro_ptr + a->coro_code, &code))
		pyasyncio__coro_name(p, sym, code, coro, corosz);
	return 0;
}
