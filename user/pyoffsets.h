/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython structure layouts, one row per minor version.
 *
 * Rows for 3.6-3.12 come from the generated table (user/pyoffsets_table.c,
 * written by tools/gen-pyoffsets.py from each CPython's own headers).  For
 * 3.13+ the layout is read from the target's _Py_DebugOffsets at attach time
 * (pyoffsets__from_debug_offsets()); the per-version field lists of that
 * struct are data in user/pyoffsets.c.
 *
 * Every offset is in bytes, x86_64; -1 means "this version has no such field".
 */
#ifndef HT_PYOFFSETS_H
#define HT_PYOFFSETS_H

#include <stddef.h>
#include <stdint.h>

enum py_linetable {
	PY_LT_LNOTAB = 1,	/* 3.6-3.9 co_lnotab, byte offsets */
	PY_LT_LINETABLE310,	/* 3.10 co_linetable, byte offsets */
	PY_LT_LOCATIONS,	/* 3.11+ location table, code units */
};

struct py_offsets {
	int minor;			/* 6 .. 15 (major is always 3) */

	/* _PyRuntimeState (3.7+; all -1 on 3.6, where the roots are symbols) */
	int rt_interpreters_head;	/* PyInterpreterState *interpreters.head */
	int rt_finalizing;		/* tstate pointer, non-zero while finalizing */
	int rt_gil;			/* 3.7-3.11: struct _gil_runtime_state inside _PyRuntime */
	int rt_tstate_current;		/* 3.7-3.11: gilstate.tstate_current */

	/* PyInterpreterState */
	int interp_next;
	int interp_tstate_head;		/* tstate_head (<3.11) / threads.head (3.11+) */
	int interp_ceval_gil;		/* 3.12+: struct _gil_runtime_state *ceval.gil */

	/* struct _gil_runtime_state */
	int gil_size;			/* sizeof, for "is this futex the GIL's" */
	int gil_last_holder;		/* PyThreadState * (atomic) */
	int gil_locked;			/* int */

	/* PyThreadState */
	int ts_next;
	int ts_interp;
	int ts_thread_id;		/* pthread_t */
	int ts_native_thread_id;	/* kernel TID, 3.11+ */
	int ts_frame;			/* 3.6-3.10 frame, 3.11-3.12 cframe, 3.13+ current_frame */
	int cframe_current_frame;	/* 3.11-3.12: _PyCFrame.current_frame */

	/* PyFrameObject (3.6-3.10) / _PyInterpreterFrame (3.11+) */
	int frame_back;			/* f_back / previous */
	int frame_code;			/* f_code / f_executable */
	int frame_lasti;		/* 3.6-3.10: int f_lasti */
	int frame_instr;		/* 3.11+: prev_instr / instr_ptr */
	int frame_owner;		/* 3.11+: char owner */

	/* PyCodeObject */
	int code_argcount;
	int code_firstlineno;
	int code_filename;
	int code_name;
	int code_qualname;		/* 3.11+ */
	int code_linetable;		/* co_lnotab (<3.10) / co_linetable */
	int code_code_adaptive;		/* 3.11+: inline bytecode array */

	/* PyObject, PyTypeObject, PyBytesObject */
	int ob_type;
	int tp_name;
	int bytes_size;
	int bytes_sval;

	/* PyASCIIObject / PyCompactUnicodeObject */
	int uni_length;
	int uni_state;
	int uni_ascii_data;		/* sizeof(PyASCIIObject) */
	int uni_compact_data;		/* sizeof(PyCompactUnicodeObject) */
	int uni_legacy_data;		/* data.any pointer of a non-compact string */
};

/* Facts that are per version but not offsets. */
struct py_version_traits {
	enum py_linetable linetable;
	int lasti_scale;		/* 3.6-3.9: 1 (bytes); 3.10: 2 (code units -> bytes) */
	int owner_skip_min;		/* skip frames with owner >= this (3.12+: 3); 0: no owner */
	uint64_t code_tag_mask;		/* mask for f_executable: ~3 on 3.14+, else ~0 */
};

/*
 * pyoffsets__table - the generated row for 3.@minor, or NULL when the table
 * has none (3.13+ must come from _Py_DebugOffsets).
 */
const struct py_offsets *pyoffsets__table(int minor);

/* pyoffsets__traits - hard-coded per-version facts; NULL for unsupported @minor. */
const struct py_version_traits *pyoffsets__traits(int minor);

/*
 * pyoffsets__from_debug_offsets - fill @out from a copy of the target's
 * _Py_DebugOffsets (@buf, @len bytes read from the start of _PyRuntime).
 * Checks the cookie, the version's minor against the known field lists and
 * the sanity of the values.  Returns 0, -EINVAL (not debug offsets / garbage)
 * or -ENOTSUP (a minor version whose field list is unknown).  *@version_hex
 * gets PY_VERSION_HEX.
 */
int pyoffsets__from_debug_offsets(const void *buf, size_t len, struct py_offsets *out,
				  uint32_t *version_hex);

/*
 * pyoffsets__debug_field - one raw field, @section.@field, of a copy of the
 * target's _Py_DebugOffsets (@buf, @len bytes), by the field list of its
 * version: for the members struct py_offsets does not carry (gen_object,
 * long_object).  A field of a section that has a size must be below it.
 * 0, -EINVAL (not debug offsets, or out of bounds), -ENOTSUP (unknown minor)
 * or -ENOENT (that version's list has no such field).
 */
int pyoffsets__debug_field(const void *buf, size_t len, const char *section, const char *field,
			   uint64_t *value);

/* Largest number of bytes pyoffsets__from_debug_offsets() may need. */
#define PY_DEBUG_OFFSETS_MAX 4096

#endif /* HT_PYOFFSETS_H */
