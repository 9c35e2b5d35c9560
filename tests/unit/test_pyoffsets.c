// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pyoffsets: the generated table, the per-version traits, and the
 * _Py_DebugOffsets reader, fed
 *   - images of 3.13 / 3.14 built from the documented field lists
 *     (cpython-internals.md section 2, cpython-offsets.json),
 *   - the real bytes at _PyRuntime in the ELF files of the interpreters
 *     present (pyenv 3.13.0, and Debian's 3.13/3.14/3.15 when
 *     tests/fetch-pythons.sh has unpacked them), located with libelf,
 *   - garbage, truncated, wrong-cookie, unknown-minor and free-threaded
 *     buffers, placed against a PROT_NONE page so that any read past @len
 *     faults.
 * Ends with "N passed, M failed"; exits non-zero on any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "pyoffsets.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- expected layouts (cpython-internals.md sections 2-9, cpython-offsets.json) ---- */

static const struct py_offsets expect_313 = {
	.minor = 13,
	.rt_interpreters_head = 632, .rt_finalizing = 608, .rt_gil = -1, .rt_tstate_current = -1,
	.interp_next = 7264, .interp_tstate_head = 7344, .interp_ceval_gil = 16,
	.gil_size = 208, .gil_last_holder = 8, .gil_locked = 16,
	.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
	.ts_frame = 72, .cframe_current_frame = -1,
	.frame_back = 8, .frame_code = 0, .frame_lasti = -1, .frame_instr = 56, .frame_owner = 70,
	.code_argcount = 52, .code_firstlineno = 68, .code_filename = 112, .code_name = 120,
	.code_qualname = 128, .code_linetable = 136, .code_code_adaptive = 200,
	.ob_type = 8, .tp_name = 24, .bytes_size = 16, .bytes_sval = 32,
	.uni_length = 16, .uni_state = 32, .uni_ascii_data = 40, .uni_compact_data = 56,
	.uni_legacy_data = 56,
};

static const struct py_offsets expect_314 = {
	.minor = 14,
	.rt_interpreters_head = 808, .rt_finalizing = 784, .rt_gil = -1, .rt_tstate_current = -1,
	.interp_next = 7272, .interp_tstate_head = 7344, .interp_ceval_gil = 16,
	.gil_size = 208, .gil_last_holder = 8, .gil_locked = 16,
	.ts_next = 8, .ts_interp = 16, .ts_thread_id = 152, .ts_native_thread_id = 160,
	.ts_frame = 72, .cframe_current_frame = -1,
	.frame_back = 8, .frame_code = 0, .frame_lasti = -1, .frame_instr = 56, .frame_owner = 74,
	.code_argcount = 52, .code_firstlineno = 68, .code_filename = 112, .code_name = 120,
	.code_qualname = 128, .code_linetable = 136, .code_code_adaptive = 208,
	.ob_type = 8, .tp_name = 24, .bytes_size = 16, .bytes_sval = 32,
	.uni_length = 16, .uni_state = 32, .uni_ascii_data = 40, .uni_compact_data = 56,
	.uni_legacy_data = 56,
};

/*
 * 3.15: not in the shared docs.  These are offsetof()/sizeof() compiled
 * against Debian's libpython3.15-dev 3.15.2 headers
 * (tools/gen-pyoffsets.py --probe 15 ...); the binary check below also
 * applies the version-independent consistency rules of check_consistent().
 */
static const struct py_offsets expect_315 = {
	.minor = 15,
	.rt_interpreters_head = 936, .rt_finalizing = 912, .rt_gil = -1, .rt_tstate_current = -1,
	.interp_next = 7264, .interp_tstate_head = 7336, .interp_ceval_gil = 16,
	.gil_size = 208, .gil_last_holder = 8, .gil_locked = 16,
	.ts_next = 8, .ts_interp = 16, .ts_thread_id = 176, .ts_native_thread_id = 184,
	.ts_frame = 72, .cframe_current_frame = -1,
	.frame_back = 8, .frame_code = 0, .frame_lasti = -1, .frame_instr = 56, .frame_owner = 74,
	.code_argcount = 52, .code_firstlineno = 68, .code_filename = 112, .code_name = 120,
	.code_qualname = 128, .code_linetable = 136, .code_code_adaptive = 208,
	.ob_type = 8, .tp_name = 24, .bytes_size = 16, .bytes_sval = 32,
	.uni_length = 16, .uni_state = 32, .uni_ascii_data = 40, .uni_compact_data = 56,
	.uni_legacy_data = 56,
};

/*
 * The u64s after the cookie of the tested builds' _Py_DebugOffsets, at the
 * byte positions of cpython-internals.md section 2 (8 + 8 * index).
 */
static const uint64_t image_313[] = {
	0x030d00f0, 0, 283320, 608, 632, 194968, 7272, 7264, 7344, 7400, 7656, 7640, 7648, 16, 7752,
	0, 7768, 7760, 304, 0, 8, 16, 72, 152, 160, 232, 32, 80, 8, 0, 56, 72, 70, 208, 112, 120,
	128, 136, 68, 52, 96, 104, 200, 16, 8, 416, 24, 88, 168, 32, 24, 16, 40, 24, 16, 48, 32, 40,
	24, 16, 32, 16, 24, 40, 16, 32, 64, 32, 16, 40, 240, 200,
};

static const uint64_t image_314[] = {
	0x030e0af0, 0, 316616, 784, 808, 225864, 7280, 7272, 7344, 7360, 7408, 7688, 7672, 7680, 16,
	7784, 0, 7800, 7792, 7992, 0, 832, 0, 8, 16, 72, 152, 160, 232, 32, 88, 8, 0, 56, 80, 74, 64,
	0, 216, 112, 120, 128, 136, 68, 52, 96, 104, 208, 0, 16, 8, 416, 24, 88, 168, 40, 32, 16, 40,
	24, 16, 200, 24, 40, 32, 48, 32, 40, 24, 16, 32, 16, 24, 40, 16, 32, 64, 32, 16, 40, 264, 192,
	160, 24, 72, 67, 0, 8, 24, 304, 8076, 0, 4, 512,
};

#define SIZE_313 584	/* 73 u64 */
#define SIZE_314 760	/* 95 u64 */
#define SIZE_315 888	/* 111 u64, sizeof(_Py_DebugOffsets) in the 3.15.2 headers */

/* Byte positions used by the corruption tests (same in 3.13's and 3.14's lists). */
#define POS_VERSION		8
#define POS_FREE_THREADED	16
#define POS_RT_SIZE		24
#define POS_RT_INTERP_HEAD	40
#define POS_313_TS_CURRENT_FRAME 184
#define POS_313_TS_NEXT		168
#define POS_313_GIL_HOLDER	144
#define POS_313_CODE_SIZE	272
#define POS_313_UNI_ASCII_SIZE	560

static size_t build_image(unsigned char *buf, const uint64_t *vals, size_t n)
{
	memcpy(buf, "xdebugpy", 8);
	memcpy(buf + 8, vals, n * 8);
	return 8 + n * 8;
}

static void put_u64(unsigned char *buf, size_t pos, uint64_t v)
{
	memcpy(buf + pos, &v, 8);
}

/* ---- a parse whose input ends right at a PROT_NONE page ---- */

static unsigned char *guard_base;
static size_t guard_pagesz;

static int setup_guard(void)
{
	guard_pagesz = (size_t)sysconf(_SC_PAGESIZE);
	/* two pages of data (PY_DEBUG_OFFSETS_MAX fits), one guard page */
	guard_base = mmap(NULL, 3 * guard_pagesz, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard_base == MAP_FAILED)
		return -errno;
	if (mprotect(guard_base + 2 * guard_pagesz, guard_pagesz, PROT_NONE))
		return -errno;
	return 0;
}

static int parse_guarded(const void *src, size_t len, struct py_offsets *out, uint32_t *vh)
{
	unsigned char *p;

	if (len > 2 * guard_pagesz)
		len = 2 * guard_pagesz;
	p = guard_base + 2 * guard_pagesz - len;
	memcpy(p, src, len);
	return pyoffsets__from_debug_offsets(p, len, out, vh);
}

/* ---- comparing rows ---- */

#define FIELD(f) { #f, offsetof(struct py_offsets, f) }
static const struct {
	const char *name;
	size_t off;
} fields[] = {
	FIELD(minor), FIELD(rt_interpreters_head), FIELD(rt_finalizing), FIELD(rt_gil),
	FIELD(rt_tstate_current), FIELD(interp_next), FIELD(interp_tstate_head),
	FIELD(interp_ceval_gil), FIELD(gil_size), FIELD(gil_last_holder), FIELD(gil_locked),
	FIELD(ts_next), FIELD(ts_interp), FIELD(ts_thread_id), FIELD(ts_native_thread_id),
	FIELD(ts_frame), FIELD(cframe_current_frame), FIELD(frame_back), FIELD(frame_code),
	FIELD(frame_lasti), FIELD(frame_instr), FIELD(frame_owner), FIELD(code_argcount),
	FIELD(code_firstlineno), FIELD(code_filename), FIELD(code_name), FIELD(code_qualname),
	FIELD(code_linetable), FIELD(code_code_adaptive), FIELD(ob_type), FIELD(tp_name),
	FIELD(bytes_size), FIELD(bytes_sval), FIELD(uni_length), FIELD(uni_state),
	FIELD(uni_ascii_data), FIELD(uni_compact_data), FIELD(uni_legacy_data),
};

_Static_assert(sizeof(struct py_offsets) == 38 * sizeof(int),
	       "struct py_offsets changed: update fields[] in this test");

static int get(const struct py_offsets *o, size_t off)
{
	return *(const int *)((const char *)o + off);
}

static void check_row(const char *what, const struct py_offsets *got,
		      const struct py_offsets *want)
{
	size_t i;
	int bad = 0;

	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		int g = get(got, fields[i].off), w = get(want, fields[i].off);

		if (g != w) {
			printf("  %s: %s = %d, expected %d\n", what, fields[i].name, g, w);
			bad++;
		}
	}
	CHECK(!bad, "%s: %d field(s) differ from the expected layout", what, bad);
}

/* Rules every 3.13+ GIL layout from _Py_DebugOffsets must satisfy. */
static void check_consistent(const char *what, const struct py_offsets *o, int minor)
{
	int ts[] = { o->ts_next, o->ts_interp, o->ts_thread_id, o->ts_native_thread_id,
		     o->ts_frame };
	int fr[] = { o->frame_back, o->frame_code, o->frame_instr, o->frame_owner };
	int co[] = { o->code_argcount, o->code_firstlineno, o->code_filename, o->code_name,
		     o->code_qualname, o->code_linetable };
	bool distinct = true, neg = false;
	size_t i, j;

	CHECK(o->minor == minor, "%s: minor %d, expected %d", what, o->minor, minor);
	CHECK(o->rt_gil == -1 && o->rt_tstate_current == -1 && o->cframe_current_frame == -1 &&
	      o->frame_lasti == -1, "%s: fields that 3.13+ lacks are not -1", what);
	for (i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *n = fields[i].name;

		if (strcmp(n, "rt_gil") && strcmp(n, "rt_tstate_current") &&
		    strcmp(n, "cframe_current_frame") && strcmp(n, "frame_lasti") &&
		    get(o, fields[i].off) < 0) {
			printf("  %s: %s = %d\n", what, n, get(o, fields[i].off));
			neg = true;
		}
	}
	CHECK(!neg, "%s: a field 3.13+ has is negative", what);
	for (i = 0; i < ARRAY_SIZE(ts); i++)
		for (j = i + 1; j < ARRAY_SIZE(ts); j++)
			distinct &= ts[i] != ts[j];
	for (i = 0; i < ARRAY_SIZE(fr); i++)
		for (j = i + 1; j < ARRAY_SIZE(fr); j++)
			distinct &= fr[i] != fr[j];
	for (i = 0; i < ARRAY_SIZE(co); i++) {
		for (j = i + 1; j < ARRAY_SIZE(co); j++)
			distinct &= co[i] != co[j];
		distinct &= co[i] < o->code_code_adaptive;
	}
	CHECK(distinct, "%s: overlapping thread/frame/code offsets", what);
	CHECK(o->ts_next % 8 == 0 && o->ts_frame % 8 == 0 && o->interp_next % 8 == 0 &&
	      o->interp_tstate_head % 8 == 0 && o->rt_interpreters_head % 8 == 0,
	      "%s: misaligned pointer offsets", what);
	CHECK(o->gil_size == 208 && o->gil_last_holder == 8 && o->gil_locked == 16,
	      "%s: GIL %d/%d/%d", what, o->gil_size, o->gil_last_holder, o->gil_locked);
	CHECK(o->ob_type == 8 && o->tp_name == 24 && o->bytes_size == 16 && o->bytes_sval == 32,
	      "%s: object header layout", what);
	CHECK(o->uni_length < o->uni_state && o->uni_state < o->uni_ascii_data &&
	      o->uni_compact_data == o->uni_ascii_data + 16 &&
	      o->uni_legacy_data == o->uni_compact_data,
	      "%s: unicode %d/%d/%d/%d/%d", what, o->uni_length, o->uni_state,
	      o->uni_ascii_data, o->uni_compact_data, o->uni_legacy_data);
	CHECK(pyoffsets__traits(minor) != NULL, "%s: no traits for 3.%d", what, minor);
}

/* ---- _PyRuntime out of an ELF file ---- */

/*
 * Read up to @cap bytes at _PyRuntime from the file at @path: the symbol in
 * .dynsym/.symtab, else the .PyRuntime section.  -ENOENT: no such file.
 */
static int read_runtime(const char *path, unsigned char *buf, size_t cap, size_t *len,
			const char **how)
{
	Elf *e = NULL;
	Elf_Scn *scn = NULL;
	GElf_Shdr sh, target;
	GElf_Addr addr = 0, sec_addr = 0;
	bool have_sym = false, have_sec = false;
	size_t shstrndx, avail;
	ssize_t n;
	int fd, err = -ENOENT;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = -EINVAL;
	e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e || elf_kind(e) != ELF_K_ELF || elf_getshdrstrndx(e, &shstrndx))
		goto cleanup;

	while ((scn = elf_nextscn(e, scn))) {
		const char *name;

		if (!gelf_getshdr(scn, &sh))
			goto cleanup;
		name = elf_strptr(e, shstrndx, sh.sh_name);
		if (name && !strcmp(name, ".PyRuntime") && sh.sh_type == SHT_PROGBITS) {
			have_sec = true;
			sec_addr = sh.sh_addr;
		}
		if ((sh.sh_type == SHT_DYNSYM || sh.sh_type == SHT_SYMTAB) && !have_sym) {
			Elf_Data *d = elf_getdata(scn, NULL);
			size_t i, cnt = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
			GElf_Sym sym;

			for (i = 0; d && i < cnt; i++) {
				const char *s;

				if (!gelf_getsym(d, (int)i, &sym))
					break;
				s = elf_strptr(e, sh.sh_link, sym.st_name);
				if (s && !strcmp(s, "_PyRuntime") && sym.st_shndx != SHN_UNDEF) {
					addr = sym.st_value;
					have_sym = true;
					break;
				}
			}
		}
	}
	if (have_sym && have_sec && addr != sec_addr) {
		printf("  %s: _PyRuntime 0x%llx but .PyRuntime at 0x%llx\n", path,
		       (unsigned long long)addr, (unsigned long long)sec_addr);
		goto cleanup;
	}
	if (!have_sym && !have_sec)
		goto cleanup;
	if (!have_sym)
		addr = sec_addr;
	*how = have_sym ? (have_sec ? "_PyRuntime symbol == .PyRuntime section" : "_PyRuntime symbol")
			: ".PyRuntime section";

	/* the section holding addr, in the file */
	scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		if (!gelf_getshdr(scn, &target))
			goto cleanup;
		if (target.sh_type != SHT_NOBITS && target.sh_flags & SHF_ALLOC &&
		    addr >= target.sh_addr && addr < target.sh_addr + target.sh_size)
			break;
	}
	if (!scn)
		goto cleanup;
	avail = target.sh_addr + target.sh_size - addr;
	if (avail > cap)
		avail = cap;
	n = pread(fd, buf, avail, (off_t)(target.sh_offset + (addr - target.sh_addr)));
	if (n != (ssize_t)avail)
		goto cleanup;
	*len = avail;
	err = 0;
cleanup:
	elf_end(e);
	close(fd);
	return err;
}

static void test_binary(const char *path, int minor, const struct py_offsets *want,
			size_t dbg_size)
{
	unsigned char buf[PY_DEBUG_OFFSETS_MAX];
	struct py_offsets o;
	const char *how = "";
	uint32_t vh = 0;
	size_t len = 0;
	int err;

	err = read_runtime(path, buf, sizeof(buf), &len, &how);
	if (err == -ENOENT) {
		printf("SKIP %s: not present\n", path);
		return;
	}
	CHECK(!err, "%s: no _PyRuntime / .PyRuntime found (%d)", path, err);
	if (err)
		return;
	err = parse_guarded(buf, len, &o, &vh);
	CHECK(!err, "%s: pyoffsets__from_debug_offsets = %d", path, err);
	if (err)
		return;
	printf("ok   %s: 3.%d.%d (0x%08x), %zu bytes via %s\n", path, (vh >> 16) & 0xff,
	       (vh >> 8) & 0xff, vh, len, how);
	CHECK(((vh >> 16) & 0xff) == (uint32_t)minor, "%s: version 0x%08x is not 3.%d", path, vh,
	      minor);
	check_consistent(path, &o, minor);
	check_row(path, &o, want);

	/* our field list is exactly as long as the binary's struct */
	CHECK(parse_guarded(buf, dbg_size, &o, &vh) == 0, "%s: %zu bytes refused", path,
	      dbg_size);
	CHECK(parse_guarded(buf, dbg_size - 1, &o, &vh) == -EINVAL, "%s: %zu bytes accepted",
	      path, dbg_size - 1);
	if (minor >= 14) {
		uint64_t last;

		/* 3.14+ end with debugger_support.debugger_script_path_size = 512 */
		memcpy(&last, buf + dbg_size - 8, 8);
		CHECK(last == 512, "%s: last field %llu, expected 512", path,
		      (unsigned long long)last);
	}
}

/* ---- the documented images, and broken variants of them ---- */

static void test_images(void)
{
	static const struct {
		const uint64_t *vals;
		size_t n, size;
		const struct py_offsets *want;
	} imgs[] = {
		{ image_313, ARRAY_SIZE(image_313), SIZE_313, &expect_313 },
		{ image_314, ARRAY_SIZE(image_314), SIZE_314, &expect_314 },
	};
	unsigned char buf[PY_DEBUG_OFFSETS_MAX];
	struct py_offsets o;
	char what[64];
	uint32_t vh;
	size_t i, len;
	int err;

	for (i = 0; i < ARRAY_SIZE(imgs); i++) {
		int minor = imgs[i].want->minor;

		snprintf(what, sizeof(what), "documented 3.%d image", minor);
		memset(buf, 0, sizeof(buf));
		len = build_image(buf, imgs[i].vals, imgs[i].n);
		CHECK(len == imgs[i].size, "%s: %zu bytes", what, len);

		vh = 0;
		err = parse_guarded(buf, len, &o, &vh);
		CHECK(err == 0, "%s: exact length: %d", what, err);
		CHECK(vh == imgs[i].vals[0], "%s: version_hex 0x%x", what, vh);
		if (!err) {
			check_row(what, &o, imgs[i].want);
			check_consistent(what, &o, minor);
		}
		err = parse_guarded(buf, sizeof(buf), &o, NULL);
		CHECK(err == 0, "%s: PY_DEBUG_OFFSETS_MAX bytes, NULL version_hex: %d", what, err);
		err = parse_guarded(buf, len - 1, &o, &vh);
		CHECK(err == -EINVAL, "%s: one byte short: %d", what, err);
		err = parse_guarded(buf, len - 8, &o, &vh);
		CHECK(err == -EINVAL, "%s: one field short: %d", what, err);
	}
}

static void test_bad_buffers(void)
{
	unsigned char img[PY_DEBUG_OFFSETS_MAX], buf[PY_DEBUG_OFFSETS_MAX];
	struct py_offsets o, before;
	uint32_t vh;
	size_t len, i;
	int err;

	memset(img, 0, sizeof(img));
	len = build_image(img, image_313, ARRAY_SIZE(image_313));

	/* failures leave *out alone */
	memset(&before, 0x5a, sizeof(before));

	CHECK(pyoffsets__from_debug_offsets(NULL, 100, &o, &vh) == -EINVAL, "NULL buffer");
	CHECK(pyoffsets__from_debug_offsets(img, len, NULL, &vh) == -EINVAL, "NULL out");
	for (i = 0; i <= 24; i++) {
		o = before;
		err = parse_guarded(img, i, &o, &vh);
		CHECK(err == -EINVAL && !memcmp(&o, &before, sizeof(o)), "%zu-byte buffer: %d", i,
		      err);
	}

	memset(buf, 0, sizeof(buf));
	CHECK(parse_guarded(buf, sizeof(buf), &o, &vh) == -EINVAL, "all zeroes");
	memset(buf, 0xff, sizeof(buf));
	CHECK(parse_guarded(buf, sizeof(buf), &o, &vh) == -EINVAL, "all ones");
	srand(42);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)rand();
	CHECK(parse_guarded(buf, sizeof(buf), &o, &vh) == -EINVAL, "random bytes");
	/* random bytes behind a valid header */
	memcpy(buf, img, 24);
	o = before;
	err = parse_guarded(buf, sizeof(buf), &o, &vh);
	CHECK(err == -EINVAL && !memcmp(&o, &before, sizeof(o)),
	      "valid header, random fields: %d", err);

	memcpy(buf, img, len);
	memcpy(buf, "xdebugpz", 8);
	CHECK(parse_guarded(buf, len, &o, &vh) == -EINVAL, "wrong cookie");
	memcpy(buf, "XDEBUGPY", 8);
	CHECK(parse_guarded(buf, len, &o, &vh) == -EINVAL, "upper-case cookie");

	/* versions */
	static const struct {
		uint64_t version;
		int err;
	} versions[] = {
		{ 0x030d00f0, 0 },		/* 3.13.0 final */
		{ 0x030d12f0, 0 },		/* 3.13.18 */
		{ 0x030d00a1, 0 },		/* 3.13.0a1 */
		{ 0x030d00c2, 0 },		/* 3.13.0rc2 */
		{ 0x031000f0, -ENOTSUP },	/* 3.16: unknown field list */
		{ 0x031a00f0, -ENOTSUP },	/* 3.26 */
		{ 0x030c01f0, -ENOTSUP },	/* 3.12 never had debug offsets */
		{ 0x020700f0, -EINVAL },	/* 2.7 */
		{ 0x040d00f0, -EINVAL },	/* 4.13 */
		{ 0x030d0000, -EINVAL },	/* release level 0 */
		{ 0x030d00e0, -EINVAL },	/* release level e */
		{ 0x1030d00f0ull, -EINVAL },	/* high bits */
	};
	for (i = 0; i < ARRAY_SIZE(versions); i++) {
		memcpy(buf, img, len);
		put_u64(buf, POS_VERSION, versions[i].version);
		vh = 0;
		err = parse_guarded(buf, len, &o, &vh);
		CHECK(err == versions[i].err, "version 0x%llx: %d, expected %d",
		      (unsigned long long)versions[i].version, err, versions[i].err);
		if (versions[i].err != -EINVAL)
			CHECK(vh == (uint32_t)versions[i].version, "version 0x%llx: version_hex 0x%x",
			      (unsigned long long)versions[i].version, vh);
	}
	/* 3.16 with its (unknown) fields: -ENOTSUP even when short */
	memcpy(buf, img, len);
	put_u64(buf, POS_VERSION, 0x031000f0);
	CHECK(parse_guarded(buf, 24, &o, &vh) == -ENOTSUP, "3.16 header only");

	/* free-threaded builds */
	memcpy(buf, img, len);
	put_u64(buf, POS_FREE_THREADED, 1);
	o = before;
	err = parse_guarded(buf, len, &o, &vh);
	CHECK(err == -ENOTSUP && !memcmp(&o, &before, sizeof(o)), "3.13t: %d", err);
	put_u64(buf, POS_VERSION, 0x030e0af0);
	CHECK(parse_guarded(buf, len, &o, &vh) == -ENOTSUP, "3.14t");
	put_u64(buf, POS_FREE_THREADED, 2);
	CHECK(parse_guarded(buf, len, &o, &vh) == -EINVAL, "free_threaded = 2");

	/* out-of-bounds or misaligned fields */
	static const struct {
		size_t pos;
		uint64_t val;
		const char *what;
	} bad[] = {
		{ POS_313_TS_CURRENT_FRAME, 1u << 20, "current_frame past sizeof(PyThreadState)" },
		{ POS_313_TS_CURRENT_FRAME, 304, "current_frame == sizeof(PyThreadState)" },
		{ POS_313_TS_CURRENT_FRAME, 300, "current_frame + 8 > sizeof(PyThreadState)" },
		{ POS_313_TS_NEXT, 3, "misaligned tstate.next" },
		{ POS_313_TS_NEXT, UINT64_MAX, "tstate.next = -1" },
		{ POS_313_CODE_SIZE, 0, "sizeof(PyCodeObject) = 0" },
		{ POS_313_CODE_SIZE, 100, "co_code_adaptive past sizeof(PyCodeObject)" },
		{ POS_RT_SIZE, 1ull << 40, "absurd sizeof(_PyRuntimeState)" },
		{ POS_RT_INTERP_HEAD, 283320, "interpreters_head at sizeof(_PyRuntimeState)" },
		{ POS_313_GIL_HOLDER, 7752 + 4096, "GIL holder outside the GIL" },
		{ POS_313_GIL_HOLDER, 7000, "GIL holder before the GIL" },
		{ POS_313_UNI_ASCII_SIZE, 0, "sizeof(PyASCIIObject) = 0" },
		{ POS_313_UNI_ASCII_SIZE, 60, "sizeof(PyASCIIObject) misaligned" },
		{ POS_313_UNI_ASCII_SIZE, 56, "PyCompactUnicodeObject past sizeof(PyUnicodeObject)" },
		{ POS_313_UNI_ASCII_SIZE, 48, "PyUnicodeObject.data past sizeof(PyUnicodeObject)" },
	};
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		memcpy(buf, img, len);
		put_u64(buf, bad[i].pos, bad[i].val);
		o = before;
		err = parse_guarded(buf, len, &o, &vh);
		CHECK(err == -EINVAL && !memcmp(&o, &before, sizeof(o)), "%s: %d", bad[i].what, err);
	}

	/* a 3.14 image announced as 3.13 parses with the wrong list: caught by the bounds */
	memset(buf, 0, sizeof(buf));
	build_image(buf, image_314, ARRAY_SIZE(image_314));
	put_u64(buf, POS_VERSION, 0x030d00f0);
	CHECK(parse_guarded(buf, SIZE_314, &o, &vh) == -EINVAL, "3.14 fields labelled 3.13");
	/* and a 3.13 image announced as 3.15 is too short */
	put_u64(img, POS_VERSION, 0x030f02f0);
	CHECK(parse_guarded(img, len, &o, &vh) == -EINVAL, "3.13 fields labelled 3.15");
}

/* ---- the generated table and the traits ---- */

static void test_table_and_traits(void)
{
	const struct py_version_traits *t;
	const struct py_offsets *r;
	int minor;

	for (minor = 6; minor <= 12; minor++) {
		r = pyoffsets__table(minor);
		CHECK(r && r->minor == minor, "pyoffsets__table(%d)", minor);
		if (!r)
			continue;
		/* the fields every version has */
		CHECK(r->ts_next >= 0 && r->ts_interp >= 0 && r->ts_thread_id >= 0 &&
		      r->ts_frame >= 0 && r->frame_back >= 0 && r->frame_code >= 0 &&
		      r->code_filename >= 0 && r->code_name >= 0 && r->code_linetable >= 0 &&
		      r->code_firstlineno >= 0 && r->uni_ascii_data > 0 && r->uni_compact_data > 0,
		      "3.%d: a field every version has is -1", minor);
		CHECK((r->frame_lasti >= 0) == (minor <= 10) && (r->frame_instr >= 0) == (minor >= 11),
		      "3.%d: frame_lasti %d / frame_instr %d", minor, r->frame_lasti,
		      r->frame_instr);
		CHECK((r->rt_interpreters_head >= 0) == (minor >= 7) &&
		      (r->rt_gil >= 0) == (minor >= 7 && minor <= 11) &&
		      (r->interp_ceval_gil >= 0) == (minor >= 12) &&
		      (r->gil_size >= 0) == (minor >= 7) &&
		      (r->cframe_current_frame >= 0) == (minor == 11 || minor == 12) &&
		      (r->ts_native_thread_id >= 0) == (minor >= 11),
		      "3.%d: version-specific fields present in the wrong versions", minor);
	}
	errno = 0;
	CHECK(!pyoffsets__table(5) && errno, "pyoffsets__table(5)");
	CHECK(!pyoffsets__table(13), "pyoffsets__table(13) must come from _Py_DebugOffsets");
	CHECK(!pyoffsets__table(-1), "pyoffsets__table(-1)");

	for (minor = 6; minor <= 15; minor++) {
		enum py_linetable lt = minor <= 9 ? PY_LT_LNOTAB :
				       minor == 10 ? PY_LT_LINETABLE310 : PY_LT_LOCATIONS;

		t = pyoffsets__traits(minor);
		CHECK(t != NULL, "pyoffsets__traits(%d)", minor);
		if (!t)
			continue;
		CHECK(t->linetable == lt, "3.%d: line table %d", minor, t->linetable);
		CHECK(t->lasti_scale == (minor == 10 ? 2 : 1), "3.%d: lasti_scale %d", minor,
		      t->lasti_scale);
		CHECK(t->owner_skip_min == (minor >= 12 ? 3 : 0), "3.%d: owner_skip_min %d", minor,
		      t->owner_skip_min);
		CHECK(t->code_tag_mask == (minor >= 14 ? ~(uint64_t)3 : ~(uint64_t)0),
		      "3.%d: code_tag_mask 0x%llx", minor, (unsigned long long)t->code_tag_mask);
	}
	CHECK(!pyoffsets__traits(5) && !pyoffsets__traits(16) && !pyoffsets__traits(0),
	      "traits for unsupported versions");
}

int main(void)
{
	const char *cache = getenv("HANGTRACE_PYCACHE");
	const char *home = getenv("HOME");
	const char *pyenv = getenv("PYENV_ROOT");
	char path[4096];
	int minor;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (elf_version(EV_CURRENT) == EV_NONE || setup_guard()) {
		printf("cannot set up libelf / the guard page\n0 passed, 1 failed\n");
		return 1;
	}

	test_table_and_traits();
	test_images();
	test_bad_buffers();

	snprintf(path, sizeof(path), "%s/versions/3.13.0/lib/libpython3.13.so.1.0",
		 pyenv && *pyenv ? pyenv : "/root/.pyenv");
	test_binary(path, 13, &expect_313, SIZE_313);
	for (minor = 13; minor <= 15; minor++) {
		if (cache && *cache)
			snprintf(path, sizeof(path), "%s/root/usr/bin/python3.%d", cache, minor);
		else
			snprintf(path, sizeof(path), "%s/.cache/hangtrace/pythons/root/usr/bin/python3.%d",
				 home ? home : "", minor);
		if (minor == 13)
			test_binary(path, minor, &expect_313, SIZE_313);
		else if (minor == 14)
			test_binary(path, minor, &expect_314, SIZE_314);
		else
			test_binary(path, minor, &expect_315, SIZE_315);
	}

	return CHECK_SUMMARY();
}
