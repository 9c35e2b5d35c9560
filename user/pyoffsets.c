// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython layouts: the generated table for 3.6-3.12, hard-coded per-version
 * traits, and the _Py_DebugOffsets reader for 3.13+.
 *
 * _Py_DebugOffsets is versioned, not self-describing: after the 8-byte cookie
 * it is a flat run of uint64_t, grouped in sections, and every minor version
 * inserts fields somewhere.  So the layout of each known minor is data below
 * (dbg_layouts[]: its sections and their field names, in struct order), and
 * one version-independent table (dbg_wanted[]) says which of those fields
 * fill which struct py_offsets member.  Adding 3.16 means adding its field
 * list, not code.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "pyoffsets.h"
#include "pyoffsets_table.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

const struct py_offsets *pyoffsets__table(int minor)
{
	unsigned int i;

	for (i = 0; i < pyoffsets_gen_count; i++) {
		if (pyoffsets_gen_table[i].minor == minor)
			return &pyoffsets_gen_table[i];
	}
	errno = ENOENT;
	return NULL;
}

/*
 * cpython-internals.md section 4 (owner values, instruction offsets, tagged
 * f_executable) and section 6 (line-table formats).  lasti_scale turns the
 * frame's instruction offset into the unit the line table takes: f_lasti is
 * bytes on 3.6-3.9 and code units on 3.10 (whose table wants bytes); on 3.11+
 * the offset derived from the instruction pointer is already in code units,
 * which PY_LT_LOCATIONS takes, so the scale is 1.  owner_skip_min: 3.11 has an
 * owner but no shim frames; 3.12/3.13 skip CSTACK (3); 3.14+ skip INTERPRETER
 * (3) and CSTACK (4, 3.14 only).
 */
static const struct {
	int minor;
	struct py_version_traits t;
} traits_table[] = {
	{ 6,  { PY_LT_LNOTAB,       1, 0, ~(uint64_t)0 } },
	{ 7,  { PY_LT_LNOTAB,       1, 0, ~(uint64_t)0 } },
	{ 8,  { PY_LT_LNOTAB,       1, 0, ~(uint64_t)0 } },
	{ 9,  { PY_LT_LNOTAB,       1, 0, ~(uint64_t)0 } },
	{ 10, { PY_LT_LINETABLE310, 2, 0, ~(uint64_t)0 } },
	{ 11, { PY_LT_LOCATIONS,    1, 0, ~(uint64_t)0 } },
	{ 12, { PY_LT_LOCATIONS,    1, 3, ~(uint64_t)0 } },
	{ 13, { PY_LT_LOCATIONS,    1, 3, ~(uint64_t)0 } },
	{ 14, { PY_LT_LOCATIONS,    1, 3, ~(uint64_t)3 } },	/* _PyStackRef, Py_TAG_BITS 3 */
	{ 15, { PY_LT_LOCATIONS,    1, 3, ~(uint64_t)3 } },
};

const struct py_version_traits *pyoffsets__traits(int minor)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(traits_table); i++) {
		if (traits_table[i].minor == minor)
			return &traits_table[i].t;
	}
	errno = ENOTSUP;
	return NULL;
}

/* ---- _Py_DebugOffsets field lists (Include/internal/pycore_debug_offsets.h) ---- */

struct dbg_section {
	const char *name;
	const char *const *fields;	/* NULL-terminated, in struct order */
};

#define FIELDS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* version and free_threaded follow the 8-byte cookie */
static const struct dbg_section sec_header = { "", FIELDS("version", "free_threaded") };

static const struct dbg_section sec_runtime_state = {
	"runtime_state", FIELDS("size", "finalizing", "interpreters_head")
};
static const struct dbg_section sec_interpreter_state_313 = {
	"interpreter_state",
	FIELDS("size", "id", "next", "threads_head", "gc", "imports_modules", "sysdict", "builtins",
	       "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled",
	       "gil_runtime_state_locked", "gil_runtime_state_holder")
};
static const struct dbg_section sec_interpreter_state_314 = {
	"interpreter_state",
	FIELDS("size", "id", "next", "threads_head", "threads_main", "gc", "imports_modules",
	       "sysdict", "builtins", "ceval_gil", "gil_runtime_state", "gil_runtime_state_enabled",
	       "gil_runtime_state_locked", "gil_runtime_state_holder", "code_object_generation",
	       "tlbc_generation")
};
static const struct dbg_section sec_thread_state_313 = {
	"thread_state",
	FIELDS("size", "prev", "next", "interp", "current_frame", "thread_id", "native_thread_id",
	       "datastack_chunk", "status")
};
static const struct dbg_section sec_thread_state_315 = {
	"thread_state",
	FIELDS("size", "prev", "next", "interp", "current_frame", "base_frame",
	       "last_profiled_frame", "last_profiled_frame_seq", "thread_id", "native_thread_id",
	       "datastack_chunk", "status", "holds_gil", "gil_requested", "current_exception",
	       "exc_state")
};
static const struct dbg_section sec_err_stackitem = { "err_stackitem", FIELDS("exc_value") };
static const struct dbg_section sec_interpreter_frame_313 = {
	"interpreter_frame",
	FIELDS("size", "previous", "executable", "instr_ptr", "localsplus", "owner")
};
static const struct dbg_section sec_interpreter_frame_314 = {
	"interpreter_frame",
	FIELDS("size", "previous", "executable", "instr_ptr", "localsplus", "owner",
	       "stackpointer", "tlbc_index")
};
static const struct dbg_section sec_code_object_313 = {
	"code_object",
	FIELDS("size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
	       "localsplusnames", "localspluskinds", "co_code_adaptive")
};
static const struct dbg_section sec_code_object_314 = {
	"code_object",
	FIELDS("size", "filename", "name", "qualname", "linetable", "firstlineno", "argcount",
	       "localsplusnames", "localspluskinds", "co_code_adaptive", "co_tlbc")
};
static const struct dbg_section sec_pyobject = { "pyobject", FIELDS("size", "ob_type") };
static const struct dbg_section sec_type_object_313 = {
	"type_object", FIELDS("size", "tp_name", "tp_repr", "tp_flags")
};
static const struct dbg_section sec_type_object_315 = {
	"type_object", FIELDS("size", "tp_name", "tp_repr", "tp_flags", "tp_basicsize",
			      "tp_dictoffset")
};
static const struct dbg_section sec_heap_type_object = {
	"heap_type_object", FIELDS("size", "ht_cached_keys")
};
static const struct dbg_section sec_tuple_object = {
	"tuple_object", FIELDS("size", "ob_item", "ob_size")
};
static const struct dbg_section sec_list_object = {
	"list_object", FIELDS("size", "ob_item", "ob_size")
};
static const struct dbg_section sec_set_object = {
	"set_object", FIELDS("size", "used", "table", "mask")
};
static const struct dbg_section sec_dict_object = {
	"dict_object", FIELDS("size", "ma_keys", "ma_values")
};
static const struct dbg_section sec_float_object = { "float_object", FIELDS("size", "ob_fval") };
static const struct dbg_section sec_long_object = {
	"long_object", FIELDS("size", "lv_tag", "ob_digit")
};
static const struct dbg_section sec_bytes_object = {
	"bytes_object", FIELDS("size", "ob_size", "ob_sval")
};
static const struct dbg_section sec_unicode_object_313 = {
	"unicode_object", FIELDS("size", "state", "length", "asciiobject_size")
};
static const struct dbg_section sec_unicode_object_315 = {
	"unicode_object",
	FIELDS("size", "state", "length", "asciiobject_size", "compactunicodeobject_size")
};
static const struct dbg_section sec_gc_313 = { "gc", FIELDS("size", "collecting") };
static const struct dbg_section sec_gc_315 = {
	"gc", FIELDS("size", "collecting", "frame", "generation_stats_size", "generation_stats")
};
static const struct dbg_section sec_gen_object = {
	"gen_object", FIELDS("size", "gi_name", "gi_iframe", "gi_frame_state")
};
static const struct dbg_section sec_llist_node = { "llist_node", FIELDS("next", "prev") };
static const struct dbg_section sec_debugger_support = {
	"debugger_support",
	FIELDS("eval_breaker", "remote_debugger_support", "remote_debugging_enabled",
	       "debugger_pending_call", "debugger_script_path", "debugger_script_path_size")
};

static const struct dbg_section *const layout_313[] = {
	&sec_header, &sec_runtime_state, &sec_interpreter_state_313, &sec_thread_state_313,
	&sec_interpreter_frame_313, &sec_code_object_313, &sec_pyobject, &sec_type_object_313,
	&sec_tuple_object, &sec_list_object, &sec_dict_object, &sec_float_object,
	&sec_long_object, &sec_bytes_object, &sec_unicode_object_313, &sec_gc_313, NULL
};

static const struct dbg_section *const layout_314[] = {
	&sec_header, &sec_runtime_state, &sec_interpreter_state_314, &sec_thread_state_313,
	&sec_interpreter_frame_314, &sec_code_object_314, &sec_pyobject, &sec_type_object_313,
	&sec_tuple_object, &sec_list_object, &sec_set_object, &sec_dict_object,
	&sec_float_object, &sec_long_object, &sec_bytes_object, &sec_unicode_object_313,
	&sec_gc_313, &sec_gen_object, &sec_llist_node, &sec_debugger_support, NULL
};

static const struct dbg_section *const layout_315[] = {
	&sec_header, &sec_runtime_state, &sec_interpreter_state_314, &sec_thread_state_315,
	&sec_err_stackitem, &sec_interpreter_frame_314, &sec_code_object_314, &sec_pyobject,
	&sec_type_object_315, &sec_heap_type_object, &sec_tuple_object, &sec_list_object,
	&sec_set_object, &sec_dict_object, &sec_float_object, &sec_long_object,
	&sec_bytes_object, &sec_unicode_object_315, &sec_gc_315, &sec_gen_object,
	&sec_llist_node, &sec_debugger_support, NULL
};

/*
 * Per-version facts the debug offsets do not carry (GIL builds, x86_64):
 * gil_size is sizeof(struct _gil_runtime_state) (the same 208 bytes in
 * 3.7-3.15: interval, last_holder, locked, switch_number, cond, mutex);
 * compact_extra is sizeof(PyCompactUnicodeObject) - sizeof(PyASCIIObject)
 * (utf8_length + utf8 since 3.12's removal of wstr), used when the struct
 * has no unicode_object.compactunicodeobject_size (3.13, 3.14).
 */
struct dbg_layout {
	int minor;
	const struct dbg_section *const *sections;	/* NULL-terminated */
	int gil_size;
	int compact_extra;
};

static const struct dbg_layout dbg_layouts[] = {
	{ 13, layout_313, 208, 16 },
	{ 14, layout_314, 208, 16 },
	{ 15, layout_315, 208, 16 },
};

/* How a consumed field is checked against its section's size. */
enum dbg_kind {
	DK_PTR,		/* 8-byte member: 8-aligned, off + 8 <= size */
	DK_INT,		/* 4-byte member */
	DK_BYTE,	/* 1-byte member */
	DK_INLINE,	/* start of an inline array: off <= size */
	DK_SIZEOF,	/* a sizeof: 8-aligned, 0 < value <= size */
};

#define OUT(member) offsetof(struct py_offsets, member)

/* Fields of _Py_DebugOffsets copied into struct py_offsets, in any version that has them. */
static const struct {
	const char *section;
	const char *field;
	size_t out;
	enum dbg_kind kind;
	bool optional;		/* missing from some versions' lists */
} dbg_wanted[] = {
	{ "runtime_state", "interpreters_head", OUT(rt_interpreters_head), DK_PTR, false },
	{ "runtime_state", "finalizing", OUT(rt_finalizing), DK_PTR, false },
	{ "interpreter_state", "next", OUT(interp_next), DK_PTR, false },
	{ "interpreter_state", "threads_head", OUT(interp_tstate_head), DK_PTR, false },
	{ "interpreter_state", "ceval_gil", OUT(interp_ceval_gil), DK_PTR, false },
	{ "thread_state", "next", OUT(ts_next), DK_PTR, false },
	{ "thread_state", "interp", OUT(ts_interp), DK_PTR, false },
	{ "thread_state", "thread_id", OUT(ts_thread_id), DK_PTR, false },
	{ "thread_state", "native_thread_id", OUT(ts_native_thread_id), DK_PTR, false },
	{ "thread_state", "current_frame", OUT(ts_frame), DK_PTR, false },
	{ "interpreter_frame", "previous", OUT(frame_back), DK_PTR, false },
	{ "interpreter_frame", "executable", OUT(frame_code), DK_PTR, false },
	{ "interpreter_frame", "instr_ptr", OUT(frame_instr), DK_PTR, false },
	{ "interpreter_frame", "owner", OUT(frame_owner), DK_BYTE, false },
	{ "code_object", "argcount", OUT(code_argcount), DK_INT, false },
	{ "code_object", "firstlineno", OUT(code_firstlineno), DK_INT, false },
	{ "code_object", "filename", OUT(code_filename), DK_PTR, false },
	{ "code_object", "name", OUT(code_name), DK_PTR, false },
	{ "code_object", "qualname", OUT(code_qualname), DK_PTR, false },
	{ "code_object", "linetable", OUT(code_linetable), DK_PTR, false },
	{ "code_object", "co_code_adaptive", OUT(code_code_adaptive), DK_INLINE, false },
	{ "pyobject", "ob_type", OUT(ob_type), DK_PTR, false },
	{ "type_object", "tp_name", OUT(tp_name), DK_PTR, false },
	{ "bytes_object", "ob_size", OUT(bytes_size), DK_PTR, false },
	{ "bytes_object", "ob_sval", OUT(bytes_sval), DK_INLINE, false },
	{ "unicode_object", "length", OUT(uni_length), DK_PTR, false },
	{ "unicode_object", "state", OUT(uni_state), DK_INT, false },
	{ "unicode_object", "asciiobject_size", OUT(uni_ascii_data), DK_SIZEOF, false },
	{ "unicode_object", "compactunicodeobject_size", OUT(uni_compact_data), DK_SIZEOF, true },
};

/* Largest section size (and so offset) accepted: _PyRuntimeState is ~300 KiB. */
#define DBG_MAX_SECTION_SIZE (16u << 20)

static const struct dbg_layout *dbg_layout_find(int minor)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(dbg_layouts); i++) {
		if (dbg_layouts[i].minor == minor)
			return &dbg_layouts[i];
	}
	return NULL;
}

/*
 * Byte position of @section.@field inside _Py_DebugOffsets (>= 8), or 0 when
 * the layout has no such field.  With @field NULL, returns the total size.
 */
static size_t dbg_pos(const struct dbg_layout *l, const char *section, const char *field)
{
	size_t pos = 8;	/* char cookie[8] */
	size_t s, f;

	for (s = 0; l->sections[s]; s++) {
		const struct dbg_section *sec = l->sections[s];

		for (f = 0; sec->fields[f]; f++, pos += 8) {
			if (field && !strcmp(sec->name, section) && !strcmp(sec->fields[f], field))
				return pos;
		}
	}
	return field ? 0 : pos;
}

static uint64_t get_u64(const unsigned char *buf, size_t pos)
{
	uint64_t v;

	memcpy(&v, buf + pos, sizeof(v));	/* same byte order as the target */
	return v;
}

/* The section's "size" entry, or 0 when it has none or it is absurd. */
static uint64_t dbg_section_size(const struct dbg_layout *l, const unsigned char *buf,
				 const char *section)
{
	size_t pos = dbg_pos(l, section, "size");
	uint64_t size;

	if (!pos)
		return 0;
	size = get_u64(buf, pos);
	return size <= DBG_MAX_SECTION_SIZE ? size : 0;
}

static bool dbg_value_ok(enum dbg_kind kind, uint64_t v, uint64_t size)
{
	switch (kind) {
	case DK_PTR:
		return v % 8 == 0 && v + 8 <= size;
	case DK_INT:
		return v % 4 == 0 && v + 4 <= size;
	case DK_BYTE:
		return v + 1 <= size;
	case DK_INLINE:
		return v <= size;
	case DK_SIZEOF:
		return v % 8 == 0 && v > 0 && v <= size;
	}
	return false;
}

/* Fill the GIL fields from the interpreter's own _gil storage offsets. */
static int dbg_fill_gil(const struct dbg_layout *l, const unsigned char *buf,
			struct py_offsets *out)
{
	size_t pbase = dbg_pos(l, "interpreter_state", "gil_runtime_state");
	size_t pholder = dbg_pos(l, "interpreter_state", "gil_runtime_state_holder");
	size_t plocked = dbg_pos(l, "interpreter_state", "gil_runtime_state_locked");
	uint64_t isize = dbg_section_size(l, buf, "interpreter_state");
	uint64_t gsize = (uint64_t)l->gil_size;
	uint64_t base, holder, locked;

	if (!pbase || !pholder || !plocked) {
		p_err("_Py_DebugOffsets 3.%d: no GIL fields in the field list", l->minor);
		return -ENOTSUP;
	}
	base = get_u64(buf, pbase);
	holder = get_u64(buf, pholder);
	locked = get_u64(buf, plocked);
	if (!isize || base % 8 || base > isize || gsize > isize - base) {
		p_dbg("_Py_DebugOffsets: interpreter_state.gil_runtime_state %llu out of bounds",
		      (unsigned long long)base);
		return -EINVAL;
	}
	if (holder < base || holder - base + 8 > gsize || (holder - base) % 8 ||
	    locked < base || locked - base + 4 > gsize || (locked - base) % 4) {
		p_dbg("_Py_DebugOffsets: GIL holder/locked (%llu/%llu) outside the GIL at %llu",
		      (unsigned long long)holder, (unsigned long long)locked,
		      (unsigned long long)base);
		return -EINVAL;
	}
	out->gil_size = l->gil_size;
	out->gil_last_holder = (int)(holder - base);
	out->gil_locked = (int)(locked - base);
	return 0;
}

int pyoffsets__from_debug_offsets(const void *buf, size_t len, struct py_offsets *out,
				  uint32_t *version_hex)
{
	static const char cookie[8] = { 'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y' };
	const unsigned char *b = buf;
	const struct dbg_layout *l;
	struct py_offsets o;
	uint64_t version, ft, size, v;
	size_t i, pos, need;
	int minor, err;

	if (!buf || !out || len < 24 || memcmp(b, cookie, sizeof(cookie)))
		return -EINVAL;

	version = get_u64(b, 8);
	ft = get_u64(b, 16);
	/* PY_VERSION_HEX: 0x03MMmmLS with release level L in {a, b, c, f} */
	if (version >> 32 || (version >> 24) != 3 ||
	    ((version >> 4) & 0xf) < 0xa || ((version >> 4) & 0xf) == 0xd ||
	    ((version >> 4) & 0xf) == 0xe || ft > 1) {
		p_dbg("_Py_DebugOffsets: bad version 0x%llx / free_threaded %llu",
		      (unsigned long long)version, (unsigned long long)ft);
		return -EINVAL;
	}
	if (version_hex)
		*version_hex = (uint32_t)version;
	minor = (int)((version >> 16) & 0xff);

	l = dbg_layout_find(minor);
	if (!l) {
		p_dbg("_Py_DebugOffsets: no field list for 3.%d", minor);
		return -ENOTSUP;
	}
	if (ft) {
		p_dbg("_Py_DebugOffsets: 3.%d is a free-threaded build", minor);
		return -ENOTSUP;
	}
	need = dbg_pos(l, NULL, NULL);
	if (len < need) {
		p_dbg("_Py_DebugOffsets: 3.%d needs %zu bytes, got %zu", minor, need, len);
		return -EINVAL;
	}

	memset(&o, 0xff, sizeof(o));	/* every int -1 */
	o.minor = minor;

	for (i = 0; i < ARRAY_SIZE(dbg_wanted); i++) {
		pos = dbg_pos(l, dbg_wanted[i].section, dbg_wanted[i].field);
		if (!pos) {
			if (dbg_wanted[i].optional)
				continue;
			/* a field list that lacks a required entry is our bug */
			p_err("_Py_DebugOffsets 3.%d: no %s.%s in the field list", minor,
			      dbg_wanted[i].section, dbg_wanted[i].field);
			return -ENOTSUP;
		}
		size = dbg_section_size(l, b, dbg_wanted[i].section);
		v = get_u64(b, pos);
		if (!size || !dbg_value_ok(dbg_wanted[i].kind, v, size)) {
			p_dbg("_Py_DebugOffsets 3.%d: %s.%s = %llu, section size %llu", minor,
			      dbg_wanted[i].section, dbg_wanted[i].field, (unsigned long long)v,
			      (unsigned long long)size);
			return -EINVAL;
		}
		*(int *)((char *)&o + dbg_wanted[i].out) = (int)v;
	}

	err = dbg_fill_gil(l, b, &o);
	if (err)
		return err;

	/* Not in (every) _Py_DebugOffsets: see struct dbg_layout. */
	if (o.uni_compact_data < 0)
		o.uni_compact_data = o.uni_ascii_data + l->compact_extra;
	if (o.uni_compact_data < o.uni_ascii_data ||
	    (uint64_t)o.uni_compact_data > dbg_section_size(l, b, "unicode_object")) {
		p_dbg("_Py_DebugOffsets 3.%d: PyCompactUnicodeObject size %d", minor,
		      o.uni_compact_data);
		return -EINVAL;
	}
	/* PyUnicodeObject.data (a pointer union) directly follows PyCompactUnicodeObject */
	o.uni_legacy_data = o.uni_compact_data;
	if (!dbg_value_ok(DK_PTR, (uint64_t)o.uni_legacy_data,
			  dbg_section_size(l, b, "unicode_object"))) {
		p_dbg("_Py_DebugOffsets 3.%d: PyUnicodeObject.data at %d", minor,
		      o.uni_legacy_data);
		return -EINVAL;
	}
	/* rt_gil, rt_tstate_current, cframe_current_frame, frame_lasti stay -1 */

	*out = o;
	return 0;
}

int pyoffsets__debug_field(const void *buf, size_t len, const char *section, const char *field,
			   uint64_t *value)
{
	static const char cookie[8] = { 'x', 'd', 'e', 'b', 'u', 'g', 'p', 'y' };
	const unsigned char *b = buf;
	const struct dbg_layout *l;
	uint64_t version, size, v;
	size_t pos;

	if (!buf || len < 24 || memcmp(b, cookie, sizeof(cookie)))
		return -EINVAL;
	version = get_u64(b, 8);
	l = dbg_layout_find((int)((version >> 16) & 0xff));
	if (!l || version >> 32 || (version >> 24) != 3)
		return -ENOTSUP;
	if (len < dbg_pos(l, NULL, NULL))
		return -EINVAL;
	pos = dbg_pos(l, section, field);
	if (!pos)
		return -ENOENT;
	v = get_u64(b, pos);
	size = dbg_section_size(l, b, section);
	/* a field of a section with a size must lie inside it */
	if (dbg_pos(l, section, "size") && (!size || v >= size))
		return -EINVAL;
	*value = v;
	return 0;
}
