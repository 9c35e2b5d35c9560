// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Finding the CPython inside a process, from its mappings (never from the
 * name of /proc/PID/exe, which may be a dynamic loader run by hand).
 */
#include <ctype.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfsym.h"
#include "log.h"
#include "procmaps.h"
#include "procmem.h"
#include "pyoffsets.h"
#include "pyproc.h"

#define PY_MINOR_MIN 6
#define PY_MINOR_MAX 15
#define SUPPORTED_RANGE "3.6\u20133.15"

/* Bounds on what an untrusted target can make us do. */
#define MAX_CANDIDATES 1024	/* mapped files looked at */
#define MAX_INTERPS 4096	/* length of the interpreter list */

#define PF_KTHREAD 0x00200000	/* include/linux/sched.h */

#if defined(__x86_64__)
#define NATIVE_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define NATIVE_MACHINE EM_AARCH64
#else
#define NATIVE_MACHINE EM_NONE
#endif

enum cand_kind {
	CAND_LIBPYTHON,		/* libpython3.X[flags].so* */
	CAND_PYTHON_EXE,	/* python3.X[flags] */
	CAND_OTHER,		/* any other file with an executable mapping */
};

struct pyname {
	int major, minor;	/* -1 when the name says nothing */
	bool free_threaded;	/* 't' ABI flag */
	bool debug;		/* 'd' ABI flag */
};

/* A mapped ELF file that holds the runtime (or looks like it). */
struct found {
	const struct procmaps_entry *base;	/* offset-0 mapping */
	struct elfsym *es;
	enum cand_kind kind;
	struct pyname name;
	uint64_t bias;
	bool has_runtime, has_py_version, has_interp_head_fn;
	bool runtime_by_section;	/* found as the .PyRuntime section, not a symbol */
	uint64_t runtime;		/* link-time addresses */
	uint64_t py_version;
	uint64_t interp_head_fn;	/* PyInterpreterState_Head */
	uint32_t dbg_version;		/* _Py_DebugOffsets.version, 0 if none */
};

struct ctx {
	pid_t pid;
	struct pyproc *out;
	char *err;
	size_t errlen;
	struct procmaps *maps;
	struct procmem *mem;
	struct found f;
};

static int fail(struct ctx *c, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, int err, const char *fmt, ...)
{
	va_list ap;

	if (c->err && c->errlen) {
		va_start(ap, fmt);
		vsnprintf(c->err, c->errlen, fmt, ap);
		va_end(ap);
	}
	return err;
}

static const char *basename_of(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* "3.11" at @s: digits, dot, digits.  Returns the rest or NULL. */
static const char *parse_major_minor(const char *s, int *major, int *minor)
{
	char *end;
	long a, b;

	if (!isdigit((unsigned char)s[0]))
		return NULL;
	a = strtol(s, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]) || a > 9)
		return NULL;
	b = strtol(end + 1, &end, 10);
	if (b > 99)
		return NULL;
	*major = (int)a;
	*minor = (int)b;
	return end;
}

/* ABI flags after the version: m (pymalloc, <3.8), d (debug), t (free-threaded), u (py2 wide). */
static const char *parse_abi_flags(const char *s, struct pyname *n)
{
	for (; *s == 'm' || *s == 'd' || *s == 't' || *s == 'u'; s++) {
		if (*s == 'd')
			n->debug = true;
		if (*s == 't')
			n->free_threaded = true;
	}
	return s;
}

/* Classify a mapped file by its name; CAND_OTHER when the name says nothing. */
static enum cand_kind classify_name(const char *path, struct pyname *n)
{
	const char *b = basename_of(path), *s;

	memset(n, 0, sizeof(*n));
	n->major = n->minor = -1;
	if (!strncmp(b, "libpython", 9)) {
		s = parse_major_minor(b + 9, &n->major, &n->minor);
		if (s) {
			s = parse_abi_flags(s, n);
			if (!strncmp(s, ".so", 3))
				return CAND_LIBPYTHON;
		}
	} else if (!strncmp(b, "python", 6)) {
		s = parse_major_minor(b + 6, &n->major, &n->minor);
		if (s) {
			s = parse_abi_flags(s, n);
			if (*s == '\0')
				return CAND_PYTHON_EXE;
		}
	}
	memset(n, 0, sizeof(*n));
	n->major = n->minor = -1;
	return CAND_OTHER;
}

/*
 * Open the file behind mapping @e as the target sees it: through map_files
 * (works for deleted and replaced files), else through the target's root
 * (works across mount namespaces), checking it is still the same inode.
 */
struct elfsym *pyproc__open_mapped(pid_t pid, const struct procmaps_entry *e)
{
	char path[PATH_MAX + 64];
	struct stat st;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/map_files/%llx-%llx", (int)pid,
		 (unsigned long long)e->start, (unsigned long long)e->end);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && !e->deleted) {
		snprintf(path, sizeof(path), "/proc/%d/root%s", (int)pid, e->path);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && (fstat(fd, &st) < 0 || st.st_ino != e->inode)) {
			close(fd);
			errno = ESTALE;
			return NULL;
		}
	}
	return elfsym__adopt_fd(fd);
}

/*
 * Look at one mapped file.  0 and @f filled when it holds a Python runtime
 * (or, for 3.6 and older, exports PyInterpreterState_Head); -ENOENT if not.
 */
static int probe_file(struct ctx *c, const struct procmaps_entry *e, enum cand_kind kind,
		      const struct pyname *name, struct found *f)
{
	int (*lookup)(struct elfsym *, const char *, uint64_t *, uint64_t *);
	const struct elfsym_info *info;
	const struct procmaps_entry *base;
	uint64_t sz;

	base = procmaps__file_base(c->maps, e);
	if (!base)
		return -ENOENT;
	memset(f, 0, sizeof(*f));
	f->es = pyproc__open_mapped(c->pid, base);
	if (!f->es) {
		p_dbg("pid %d: cannot open %s: %s", (int)c->pid, e->path, strerror(errno));
		return -ENOENT;
	}
	info = elfsym__info(f->es);
	if (info->elf_class != ELFCLASS64 || info->machine != NATIVE_MACHINE)
		goto not_python;
	/* For files picked by name only, the cheap .dynsym is enough. */
	lookup = kind == CAND_OTHER ? elfsym__lookup_dyn : elfsym__lookup;
	f->has_runtime = !lookup(f->es, "_PyRuntime", &f->runtime, NULL);
	/*
	 * 3.10+ keeps _PyRuntime alone in its own section: a fallback for files
	 * with no symbols at all, whatever their name (section headers survive
	 * strip --strip-all and renaming).
	 */
	if (!f->has_runtime) {
		f->has_runtime = !elfsym__section(f->es, ".PyRuntime", &f->runtime, &sz);
		f->runtime_by_section = f->has_runtime;
	}
	f->has_py_version = !lookup(f->es, "Py_Version", &f->py_version, NULL);
	f->has_interp_head_fn = !lookup(f->es, "PyInterpreterState_Head", &f->interp_head_fn, NULL);
	if (!f->has_runtime && !f->has_py_version && !f->has_interp_head_fn)
		goto not_python;
	if (elfsym__bias(f->es, base->offset, base->start, &f->bias))
		goto not_python;
	f->base = base;
	f->kind = kind;
	f->name = *name;
	return 0;
not_python:
	elfsym__close(f->es);
	memset(f, 0, sizeof(*f));
	return -ENOENT;
}

/*
 * Pick the file holding the runtime: libpython first (pyenv-style builds map
 * a python3 executable without a runtime), then python3.X executables, then
 * any executable mapping that exports the runtime under another name.
 */
static int find_runtime_file(struct ctx *c)
{
	const struct procmaps_entry **tried;
	struct procmaps *maps = c->maps;
	size_t i, j, ntried = 0;
	enum cand_kind pass;
	int err = -ENOENT;

	tried = calloc(MAX_CANDIDATES, sizeof(*tried));
	if (!tried)
		return -ENOMEM;
	for (pass = CAND_LIBPYTHON; pass <= CAND_OTHER && err; pass++) {
		for (i = 0; i < maps->nr && err; i++) {
			const struct procmaps_entry *e = &maps->entries[i];
			struct pyname name;
			bool seen = false;

			if (!procmaps__is_file(e) || classify_name(e->path, &name) != pass)
				continue;
			if (pass == CAND_OTHER && e->perms[2] != 'x')
				continue;
			/* one look per file */
			for (j = ntried; j > 0 && !seen; j--)
				seen = procmaps__same_file(tried[j - 1], e);
			if (seen)
				continue;
			if (ntried == MAX_CANDIDATES)
				goto cleanup;
			tried[ntried++] = e;
			err = probe_file(c, e, pass, &name, &c->f);
		}
	}
cleanup:
	free(tried);
	return err;
}

/* Read from the target, else from the file (for data that is constant). */
static int read_mem_or_file(struct ctx *c, uint64_t link_addr, void *buf, size_t len)
{
	if (!procmem__read(c->mem, link_addr + c->f.bias, buf, len))
		return 0;
	return elfsym__read(c->f.es, link_addr, buf, len);
}

static bool sane_hex(uint64_t v)
{
	unsigned int major = (v >> 24) & 0xff, level = (v >> 4) & 0xf;

	return v <= 0xffffffffull && (major == 2 || major == 3) &&
	       (level == 0xa || level == 0xb || level == 0xc || level == 0xf);
}

static void format_version(uint32_t hex, bool micro_known, char *buf, size_t len)
{
	unsigned int level = (hex >> 4) & 0xf, serial = hex & 0xf;
	const char *lv = level == 0xa ? "a" : level == 0xb ? "b" : level == 0xc ? "rc" : "";

	if (!micro_known) {
		snprintf(buf, len, "%u.%u", hex >> 24, (hex >> 16) & 0xff);
		return;
	}
	if (level == 0xf)
		snprintf(buf, len, "%u.%u.%u", hex >> 24, (hex >> 16) & 0xff, (hex >> 8) & 0xff);
	else
		snprintf(buf, len, "%u.%u.%u%s%u", hex >> 24, (hex >> 16) & 0xff,
			 (hex >> 8) & 0xff, lv, serial);
}

/*
 * If @s (@len bytes, no NUL) ends in "M.m.p[a|b|rcN][+]" starting at a
 * boundary (start, or after a character that is not a digit or a dot),
 * return its PY_VERSION_HEX, else 0.
 */
static uint32_t version_tail(const char *s, size_t len)
{
	size_t start = len > 24 ? len - 24 : 0, i;

	for (i = start; i < len; i++) {
		unsigned long v[3] = { 0, 0, 0 }, serial = 0;
		unsigned int level = 0xf;
		size_t p = i;
		int k;

		if (!isdigit((unsigned char)s[i]) ||
		    (i > 0 && (isdigit((unsigned char)s[i - 1]) || s[i - 1] == '.')))
			continue;
		for (k = 0; k < 3; k++) {
			size_t d = 0;

			if (k && (p >= len || s[p++] != '.'))
				break;
			for (; p < len && isdigit((unsigned char)s[p]) && d < 4; p++, d++)
				v[k] = v[k] * 10 + (unsigned long)(s[p] - '0');
			if (!d)
				break;
		}
		if (k < 3)
			continue;
		if (p < len && (s[p] == 'a' || s[p] == 'b' || s[p] == 'r')) {
			level = s[p] == 'a' ? 0xa : s[p] == 'b' ? 0xb : 0xc;
			p += s[p] == 'r' ? 1 : 0;
			if (level == 0xc && (p >= len || s[p] != 'c'))
				continue;
			p++;
			if (p >= len || !isdigit((unsigned char)s[p]))
				continue;
			for (; p < len && isdigit((unsigned char)s[p]); p++)
				serial = serial * 10 + (unsigned long)(s[p] - '0');
		}
		if (p < len && s[p] == '+')
			p++;
		if (p != len || v[0] > 9 || v[1] > 99 || v[2] > 255 || serial > 15)
			continue;
		return (uint32_t)(v[0] << 24 | v[1] << 16 | v[2] << 8 | level << 4 | serial);
	}
	return 0;
}

/*
 * Last resort for the micro version: a .rodata string ending in the
 * PY_VERSION of the build ("3.11.2" in Debian binaries, the tail of
 * "~/.pyenv/versions/3.9.18" in pyenv ones).  Only versions of @major with a
 * minor in [@min_minor, @max_minor] count; the most frequent one wins.
 */
static uint32_t version_from_strings(struct elfsym *es, int major, int min_minor, int max_minor)
{
	uint32_t best = 0, seen[16];
	unsigned int counts[16], nseen = 0, i, best_n = 0;
	const char *data, *p, *end, *nul;
	const void *raw;
	size_t len;

	if (elfsym__section_data(es, ".rodata", &raw, &len))
		return 0;
	data = raw;
	end = data + len;
	for (p = data; p < end; p = nul + 1) {
		uint32_t hex;
		int ma, mi;

		nul = memchr(p, '\0', (size_t)(end - p));
		if (!nul)
			break;
		/* cheap filter before the parse: "M.m.p" at least, ending in a digit or '+' */
		if (nul - p < 5 || !(isdigit((unsigned char)nul[-1]) || nul[-1] == '+'))
			continue;
		hex = version_tail(p, (size_t)(nul - p));
		ma = (int)(hex >> 24);
		mi = (int)((hex >> 16) & 0xff);
		if (!hex || (major >= 0 && ma != major) || mi < min_minor || mi > max_minor)
			continue;
		for (i = 0; i < nseen && seen[i] != hex; i++)
			;
		if (i == nseen) {
			if (nseen == 16)
				continue;
			seen[nseen] = hex;
			counts[nseen++] = 0;
		}
		counts[i]++;
	}
	for (i = 0; i < nseen; i++) {
		if (counts[i] > best_n) {
			best = seen[i];
			best_n = counts[i];
		}
	}
	return best;
}

/*
 * Detect the version, best source first: Py_Version (3.11+), the
 * _Py_DebugOffsets header (3.13+), then the file name plus the PY_VERSION
 * string, then which symbols exist.
 */
static int detect_version(struct ctx *c)
{
	struct pyproc *out = c->out;
	struct found *f = &c->f;
	int major = f->name.major, minor = f->name.minor, min_minor, max_minor;
	uint64_t v = 0;
	struct {
		char cookie[8];
		uint64_t version;
		uint64_t free_threaded;
	} hdr;

	/* 3.13+: the _Py_DebugOffsets header also says whether the build is free-threaded */
	if (f->has_runtime && !read_mem_or_file(c, f->runtime, &hdr, sizeof(hdr)) &&
	    !memcmp(hdr.cookie, "xdebugpy", 8) && sane_hex(hdr.version)) {
		f->dbg_version = (uint32_t)hdr.version;
		if (hdr.free_threaded)
			f->name.free_threaded = true;
	}
	if (f->has_py_version && !read_mem_or_file(c, f->py_version, &v, sizeof(v)) &&
	    sane_hex(v))
		out->version_hex = (uint32_t)v;
	else if (f->dbg_version)
		out->version_hex = f->dbg_version;
	if (out->version_hex) {
		if (minor >= 0 && (int)((out->version_hex >> 16) & 0xff) != minor)
			p_dbg("pid %d: %s is named for 3.%d but holds 0x%08x", (int)c->pid,
			      f->base->path, minor, out->version_hex);
		format_version(out->version_hex, true, out->version, sizeof(out->version));
		out->minor = (int)((out->version_hex >> 16) & 0xff);
		return 0;
	}

	/* No version in the binary: narrow it down by name, else by symbols. */
	if (minor >= 0) {
		min_minor = max_minor = minor;
	} else if (f->runtime_by_section) {
		major = 3;		/* a .PyRuntime section, no debug offsets: 3.10-3.12 */
		min_minor = 10;
		max_minor = 12;
	} else if (f->has_runtime) {
		major = 3;		/* _PyRuntime without Py_Version: 3.7-3.10 */
		min_minor = 7;
		max_minor = 10;
	} else {
		major = -1;		/* no _PyRuntime: 3.6, or Python 2 */
		min_minor = 0;
		max_minor = 99;
	}
	out->version_hex = version_from_strings(f->es, major, min_minor, max_minor);
	/* without a name, only accept what the symbols allow: 3.6 or 2.x */
	if (out->version_hex && minor < 0 && !f->has_runtime) {
		int ma = (int)(out->version_hex >> 24), mi = (int)((out->version_hex >> 16) & 0xff);

		if (!(ma == 2 || (ma == 3 && mi == 6)))
			out->version_hex = 0;
	}
	if (out->version_hex) {
		format_version(out->version_hex, true, out->version, sizeof(out->version));
	} else if (minor >= 0) {
		out->version_hex = (uint32_t)major << 24 | (uint32_t)minor << 16;
		format_version(out->version_hex, false, out->version, sizeof(out->version));
	} else {
		return fail(c, -ENOTSUP,
			    "process %d: cannot tell which Python version %s is", (int)c->pid,
			    f->base->path);
	}
	out->minor = (int)((out->version_hex >> 16) & 0xff);
	return 0;
}

static int mem_fail(struct ctx *c, int err, const char *what, uint64_t addr)
{
	if (err == -EACCES || err == -EPERM)
		return fail(c, -EACCES, "not allowed to read the memory of process %d", (int)c->pid);
	return fail(c, -EIO, "process %d: cannot read %s at 0x%llx: %s", (int)c->pid, what,
		    (unsigned long long)addr, strerror(-err));
}

/* 3.13+: the layout comes from the target's own _Py_DebugOffsets. */
static int layout_from_debug_offsets(struct ctx *c)
{
	struct pyproc *out = c->out;
	uint32_t hex = 0;
	uint8_t *buf;
	int err;

	buf = calloc(1, PY_DEBUG_OFFSETS_MAX);
	if (!buf)
		return fail(c, -ENOMEM, "out of memory");
	err = procmem__read(c->mem, out->runtime_addr, buf, PY_DEBUG_OFFSETS_MAX);
	if (!err)
		err = pyoffsets__from_debug_offsets(buf, PY_DEBUG_OFFSETS_MAX, &out->off, &hex);
	/* the struct is static data: the file has the same bytes */
	if (err && err != -ENOTSUP &&
	    !elfsym__read(c->f.es, c->f.runtime, buf, PY_DEBUG_OFFSETS_MAX))
		err = pyoffsets__from_debug_offsets(buf, PY_DEBUG_OFFSETS_MAX, &out->off, &hex);
	free(buf);
	if (err == -ENOTSUP)
		return fail(c, -ENOTSUP,
			    "process %d runs Python %s, whose _Py_DebugOffsets layout hangtrace does not know",
			    (int)c->pid, out->version);
	if (err)
		return fail(c, -ENOTSUP,
			    "process %d runs Python %s, but its _Py_DebugOffsets at 0x%llx are not valid",
			    (int)c->pid, out->version, (unsigned long long)out->runtime_addr);
	if (hex && (int)((hex >> 16) & 0xff) != out->minor)
		return fail(c, -ENOTSUP,
			    "process %d: _Py_DebugOffsets says 0x%08x, the binary says Python %s",
			    (int)c->pid, hex, out->version);
	return 0;
}

/* An address that must lie inside a mapping of the target. */
static bool mapped(struct ctx *c, uint64_t addr)
{
	return addr && procmaps__find(c->maps, addr) != NULL;
}

/* 3.6: interp_head is static; take it from .symtab or decode PyInterpreterState_Head. */
static int find_interp_head36(struct ctx *c)
{
	struct pyproc *out = c->out;
	struct found *f = &c->f;
	uint8_t insn[7];
	uint64_t v;
	int32_t disp;

	if (!elfsym__lookup(f->es, "interp_head", &v, NULL) && mapped(c, v + f->bias)) {
		out->interp_head_addr = v + f->bias;
		return 0;
	}
	if (!f->has_interp_head_fn)
		return -ENOENT;
	if (read_mem_or_file(c, f->interp_head_fn, insn, sizeof(insn)))
		return -ENOENT;
#if defined(__x86_64__)
	/* mov rax, [rip + disp32]: &interp_head = fn + 7 + disp32 */
	if (insn[0] != 0x48 || insn[1] != 0x8b || insn[2] != 0x05)
		return -ENOENT;
	memcpy(&disp, insn + 3, sizeof(disp));
	v = f->interp_head_fn + f->bias + 7 + (uint64_t)(int64_t)disp;
	if (!mapped(c, v) || (v & 7))
		return -ENOENT;
	out->interp_head_addr = v;
	return 0;
#else
	(void)disp;
	return -ENOENT;
#endif
}

/* 3.12+: the GIL of the main interpreter, which is the last one in the list. */
static int resolve_gil_ptr(const struct pyproc *p, struct procmem *m, uint64_t *gil)
{
	uint64_t interp, last = 0, g;
	int i, err;

	err = procmem__read_u64(m, p->interp_head_addr, &interp);
	if (err)
		return err;
	for (i = 0; i < MAX_INTERPS && interp; i++) {
		last = interp;
		err = procmem__read_u64(m, interp + (uint64_t)p->off.interp_next, &interp);
		if (err)
			return err;
	}
	if (interp)
		return -ELOOP;		/* a cycle, or garbage */
	if (!last)
		return -ENODATA;	/* not initialized yet, or already finalized */
	err = procmem__read_u64(m, last + (uint64_t)p->off.interp_ceval_gil, &g);
	if (err)
		return err;
	if (!g || (g & 7))
		return -ENODATA;
	*gil = g;
	return 0;
}

static int fill_addresses(struct ctx *c)
{
	struct pyproc *out = c->out;
	struct found *f = &c->f;
	uint64_t v, gil;
	int err;

	if (out->minor == 6) {
		if (find_interp_head36(c))
			return fail(c, -ENOEXEC,
				    "process %d: cannot find interp_head in Python %s (%s)",
				    (int)c->pid, out->version, f->base->path);
		if (!elfsym__lookup(f->es, "_PyThreadState_Current", &v, NULL))
			out->tstate_current_addr = v + f->bias;
		if (!elfsym__lookup(f->es, "_Py_Finalizing", &v, NULL))
			out->finalizing_addr = v + f->bias;
		if (!elfsym__lookup(f->es, "gil_cond", &v, NULL))
			out->gil36_cond_addr = v + f->bias;
		if (!elfsym__lookup(f->es, "gil_mutex", &v, NULL))
			out->gil36_mutex_addr = v + f->bias;
		return 0;
	}

	/* 3.7+: everything hangs off _PyRuntime */
	out->interp_head_addr = out->runtime_addr + (uint64_t)out->off.rt_interpreters_head;
	if (out->off.rt_finalizing >= 0)
		out->finalizing_addr = out->runtime_addr + (uint64_t)out->off.rt_finalizing;
	if (out->off.rt_tstate_current >= 0)
		out->tstate_current_addr = out->runtime_addr + (uint64_t)out->off.rt_tstate_current;
	if (out->off.gil_size > 0)
		out->gil_size = (uint64_t)out->off.gil_size;
	if (out->off.rt_gil >= 0) {
		out->gil_addr = out->runtime_addr + (uint64_t)out->off.rt_gil;
	} else if (out->off.interp_ceval_gil >= 0) {
		err = resolve_gil_ptr(out, c->mem, &gil);
		if (err == -EACCES || err == -EPERM)
			return mem_fail(c, err, "the interpreter list", out->interp_head_addr);
		/* a process still starting up has no interpreter yet: read_gil retries */
		if (!err)
			out->gil_addr = gil;
		else
			p_dbg("pid %d: no GIL yet: %s", (int)c->pid, strerror(-err));
	}
	return 0;
}

static int check_supported(struct ctx *c)
{
	struct pyproc *out = c->out;
	int major = (int)(out->version_hex >> 24);

	if (major != 3 || out->minor < PY_MINOR_MIN || out->minor > PY_MINOR_MAX)
		return fail(c, -ENOTSUP,
			    "process %d runs Python %s, which hangtrace does not support (" SUPPORTED_RANGE ")",
			    (int)c->pid, out->version);
	if (c->f.name.free_threaded)
		return fail(c, -ENOTSUP,
			    "process %d runs a free-threaded Python %s, which hangtrace does not support",
			    (int)c->pid, out->version);
	if (c->f.name.debug)
		return fail(c, -ENOTSUP,
			    "process %d runs a debug build of Python %s, which hangtrace does not support",
			    (int)c->pid, out->version);
	return 0;
}

/* Exists, is not a zombie, is not a kernel thread.  Fills out->exe. */
static int check_process(struct ctx *c)
{
	unsigned long flags = 0;
	char path[64], buf[1024], state = '?';
	const char *p;
	ssize_t n;
	int fd;

	if (c->pid <= 0)
		return fail(c, -ESRCH, "no such process: %d", (int)c->pid);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)c->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOENT || errno == ESRCH))
		return fail(c, -ESRCH, "no such process: %d", (int)c->pid);
	if (fd < 0)
		return fail(c, -EACCES, "cannot open %s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return fail(c, -ESRCH, "no such process: %d", (int)c->pid);
	buf[n] = '\0';
	/* comm may hold anything, even ')': the fields start after the last one */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) != 2)
		return fail(c, -ESRCH, "no such process: %d", (int)c->pid);
	if (state == 'Z' || state == 'X')
		return fail(c, -ESRCH, "process %d is a zombie", (int)c->pid);
	if (flags & PF_KTHREAD)
		return fail(c, -ESRCH, "process %d is a kernel thread", (int)c->pid);

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)c->pid);
	n = readlink(path, c->out->exe, sizeof(c->out->exe) - 1);
	if (n < 0) {
		if (errno == EACCES || errno == EPERM)
			return fail(c, -EACCES, "not allowed to inspect process %d (needs root or CAP_SYS_PTRACE)",
				    (int)c->pid);
		if (errno == ENOENT || errno == ESRCH) {
			if (kill(c->pid, 0) && errno == ESRCH)
				return fail(c, -ESRCH, "no such process: %d", (int)c->pid);
		}
		snprintf(c->out->exe, sizeof(c->out->exe), "?");
	} else {
		c->out->exe[n] = '\0';
	}
	return 0;
}

int pyproc__discover(pid_t pid, struct pyproc *out, char *err, size_t errlen)
{
	struct ctx c = { .pid = pid, .out = out, .err = err, .errlen = errlen };
	const struct py_version_traits *traits;
	const struct py_offsets *row;
	int ret;

	memset(out, 0, sizeof(*out));
	out->pid = pid;
	if (err && errlen)
		err[0] = '\0';

	ret = check_process(&c);
	if (ret)
		goto cleanup;

	c.maps = procmaps__load(pid);
	if (!c.maps) {
		if (errno == ENOENT || errno == ESRCH)
			ret = fail(&c, -ESRCH, "no such process: %d", (int)pid);
		else if (errno == EACCES || errno == EPERM)
			ret = fail(&c, -EACCES, "not allowed to read the mappings of process %d",
				   (int)pid);
		else
			ret = fail(&c, -EIO, "cannot read the mappings of process %d: %s", (int)pid,
				   strerror(errno));
		goto cleanup;
	}
	c.mem = procmem__open(pid);
	if (!c.mem) {
		if (errno == ENOENT || errno == ESRCH)
			ret = fail(&c, -ESRCH, "no such process: %d", (int)pid);
		else
			ret = mem_fail(&c, -errno, "memory", 0);
		goto cleanup;
	}

	ret = find_runtime_file(&c);
	if (ret == -ENOMEM) {
		ret = fail(&c, ret, "out of memory");
		goto cleanup;
	}
	if (ret) {
		ret = fail(&c, -ENOEXEC, "process %d is not a CPython process (exe: %s)", (int)pid,
			   out->exe);
		goto cleanup;
	}
	snprintf(out->python_file, sizeof(out->python_file), "%s", c.f.base->path);
	out->is_shared_lib = c.f.kind == CAND_LIBPYTHON ||
			     (c.f.kind == CAND_OTHER && strstr(basename_of(c.f.base->path), ".so"));
	out->bias = c.f.bias;
	p_dbg("pid %d: runtime file %s, bias 0x%llx", (int)pid, out->python_file,
	      (unsigned long long)out->bias);

	ret = detect_version(&c);
	if (ret)
		goto cleanup;
	ret = check_supported(&c);
	if (ret)
		goto cleanup;

	if (out->minor >= 7) {
		if (!c.f.has_runtime) {
			ret = fail(&c, -ENOEXEC, "process %d: Python %s in %s has no _PyRuntime",
				   (int)pid, out->version, out->python_file);
			goto cleanup;
		}
		out->runtime_addr = c.f.runtime + c.f.bias;
		if (!mapped(&c, out->runtime_addr)) {
			ret = fail(&c, -ENOEXEC, "process %d: _PyRuntime of Python %s at 0x%llx is not mapped",
				   (int)pid, out->version, (unsigned long long)out->runtime_addr);
			goto cleanup;
		}
	}
	if (out->minor <= 12) {
		row = pyoffsets__table(out->minor);
		if (!row) {
			ret = fail(&c, -ENOTSUP, "process %d runs Python %s, which hangtrace has no layout for",
				   (int)pid, out->version);
			goto cleanup;
		}
		out->off = *row;
	} else {
		ret = layout_from_debug_offsets(&c);
		if (ret)
			goto cleanup;
	}
	traits = pyoffsets__traits(out->minor);
	if (!traits) {
		ret = fail(&c, -ENOTSUP, "process %d runs Python %s, which hangtrace does not support ("
			   SUPPORTED_RANGE ")", (int)pid, out->version);
		goto cleanup;
	}
	out->traits = traits;
	ret = fill_addresses(&c);
cleanup:
	elfsym__close(c.f.es);
	procmem__close(c.mem);
	procmaps__free(c.maps);
	return ret;
}

int pyproc__read_gil(const struct pyproc *p, struct procmem *m, bool *locked, uint64_t *holder)
{
	uint64_t gil = p->gil_addr, h = 0;
	uint32_t l;
	int err;

	*locked = false;
	*holder = 0;
	if (p->minor == 6) {
		/* _PyThreadState_Current is the holder's tstate, NULL when the GIL is free */
		if (!p->tstate_current_addr)
			return -ENODATA;
		err = procmem__read_u64(m, p->tstate_current_addr, &h);
		if (err)
			return err;
		*locked = h != 0;
		*holder = h;
		return 0;
	}
	if (!gil && p->minor >= 12 && p->interp_head_addr) {
		err = resolve_gil_ptr(p, m, &gil);
		if (err)
			return err;
	}
	if (!gil || p->off.gil_locked < 0 || p->off.gil_last_holder < 0)
		return -ENODATA;
	err = procmem__read_u32(m, gil + (uint64_t)p->off.gil_locked, &l);
	if (err)
		return err;
	/* last_holder keeps its stale value after a release: only trust it while locked */
	if (l) {
		err = procmem__read_u64(m, gil + (uint64_t)p->off.gil_last_holder, &h);
		if (err)
			return err;
	}
	*locked = l != 0;
	*holder = h;
	return 0;
}
