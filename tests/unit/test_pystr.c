// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pystr__to_utf8(), pystr__read() and pybytes__read():
 *  - conversion of every kind, replacement of surrogates, cutting at
 *    character boundaries, tiny buffers (no target needed);
 *  - reads of hand-built str/bytes objects in this process's own memory,
 *    next to unmapped pages to prove how much is read;
 *  - reads of real objects in live interpreters (every one found: pyenv
 *    3.6+, /usr/bin/python3.11, tests/fetch-pythons.sh launchers), with the
 *    layout from pyoffsets__table() or, for 3.13+, _Py_DebugOffsets.
 * Reading other processes needs root (or ptrace rights); without them the
 * live part is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "procmem.h"
#include "pyoffsets.h"
#include "pystr.h"
#include "spawn.h"
#include "utf8_ref.h"

#define MAX_DATA (64 * 1024)	/* pystr__read's documented read limit */
#define BIG_OUT (256 * 1024)

/* ---- reference helpers -------------------------------------------------- */

/* Byte length of the first @nchars characters of UTF-8 @s. */
static size_t utf8_prefix(const char *s, size_t len, size_t nchars)
{
	size_t i = 0;

	while (i < len && nchars) {
		i++;
		while (i < len && ((unsigned char)s[i] & 0xC0) == 0x80)
			i++;
		nchars--;
	}
	return i;
}

/*
 * What a cut to @outsz bytes must look like: all of @s if it fits and
 * nothing follows (!@more); else the longest prefix ending on a character
 * boundary that leaves room for the ellipsis and the NUL, then "...".
 */
static size_t ref_cut(const char *s, size_t len, bool more, size_t outsz, char *out)
{
	size_t ell, p = 0, next;

	if (!more && len + 1 <= outsz) {
		memcpy(out, s, len);
		out[len] = '\0';
		return len;
	}
	ell = outsz >= 4 ? 3 : outsz - 1;
	for (;;) {
		next = p + utf8_prefix(s + p, len - p, 1);
		if (next == p || next + ell + 1 > outsz)
			break;
		p = next;
	}
	memcpy(out, s, p);
	memset(out + p, '.', ell);
	out[p + ell] = '\0';
	return p + ell;
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

static void fill_kind(uint8_t *data, const uint32_t *cps, size_t n, int kind)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (kind == 1)
			data[i] = (uint8_t)cps[i];
		else if (kind == 2)
			put16(data + 2 * i, cps[i]);
		else
			put32(data + 4 * i, cps[i]);
	}
}

/* ---- pystr__to_utf8 ------------------------------------------------------ */

/* Convert @cps as @kind into a canaried @outsz buffer and compare with @want. */
static void conv_case(const char *what, const uint32_t *cps, size_t n, int kind, size_t outsz,
		      const char *want)
{
	uint8_t data[256] = { 0 };
	char out[600];
	size_t got, i;
	bool canary = true;

	memset(out, 0x5A, sizeof(out));
	fill_kind(data, cps, n, kind);
	got = pystr__to_utf8(data, n, kind, out, outsz);
	for (i = outsz; i < sizeof(out); i++)
		canary &= out[i] == 0x5A;
	CHECK(canary, "%s (outsz %zu): wrote past the buffer", what, outsz);
	if (!outsz) {
		CHECK(got == 0, "%s (outsz 0): returned %zu", what, got);
		return;
	}
	CHECK(got == strlen(want) && !strcmp(out, want) && got < outsz,
	      "%s (outsz %zu): got \"%s\" (%zu), want \"%s\"", what, outsz, out, got, want);
}

static void test_to_utf8(void)
{
	const uint32_t fuenf[] = { 'f', 0xFC, 'n', 'f' };
	const uint32_t hanshu[] = { 0x51FD, 0x6570 };
	const uint32_t ext[] = { 0x20000, 'x' };
	const uint32_t lone[] = { 0xD800, 'a', 0xDFFF };
	const uint32_t pair[] = { 0xD83D, 0xDE00 };
	const uint32_t beyond[] = { 0x110000, 0xFFFFFFFF, 0x10FFFF };
	const uint32_t abc[] = { 'a', 'b', 'c', 'd', 'e', 'f' };
	const uint32_t han3[] = { 0x51FD, 0x6570, 0x51FD };
	const uint32_t ext2[] = { 0x20000, 0x20000 };
	const uint32_t mixed[] = { 'a', 0xE9, 0x51FD, 0x1F600, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF };
	char out[8];

	conv_case("latin-1 fünf", fuenf, 4, 1, 64, "f\xc3\xbcnf");
	conv_case("latin-1 fünf as UCS-2", fuenf, 4, 2, 64, "f\xc3\xbcnf");
	conv_case("UCS-2 函数", hanshu, 2, 2, 64, "\xe5\x87\xbd\xe6\x95\xb0");
	conv_case("UCS-4 函数", hanshu, 2, 4, 64, "\xe5\x87\xbd\xe6\x95\xb0");
	conv_case("UCS-4 𠀀x", ext, 2, 4, 64, "\xf0\xa0\x80\x80x");
	conv_case("UCS-2 lone surrogates", lone, 3, 2, 64, "\xef\xbf\xbd" "a\xef\xbf\xbd");
	conv_case("UCS-4 lone surrogates", lone, 3, 4, 64, "\xef\xbf\xbd" "a\xef\xbf\xbd");
	conv_case("UCS-2 surrogate pair stays two", pair, 2, 2, 64,
		  "\xef\xbf\xbd\xef\xbf\xbd");
	conv_case("UCS-4 beyond U+10FFFF", beyond, 3, 4, 64,
		  "\xef\xbf\xbd\xef\xbf\xbd\xf4\x8f\xbf\xbf");
	conv_case("every UTF-8 length", mixed, 9, 4, 64,
		  "a\xc3\xa9\xe5\x87\xbd\xf0\x9f\x98\x80\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf");
	conv_case("empty", abc, 0, 1, 64, "");
	conv_case("bad kind 3", abc, 6, 3, 64, "");

	/* Exact fits and cuts. */
	conv_case("abcde fits 6", abc, 5, 1, 6, "abcde");
	conv_case("abcdef in 7", abc, 6, 1, 7, "abcdef");
	conv_case("abcdef in 6", abc, 6, 1, 6, "ab...");
	conv_case("abcdef in 5", abc, 6, 1, 5, "a...");
	conv_case("abcd in 4", abc, 4, 1, 4, "...");
	conv_case("abc in 4", abc, 3, 1, 4, "abc");
	conv_case("函数函 in 10", han3, 3, 2, 10, "\xe5\x87\xbd\xe6\x95\xb0\xe5\x87\xbd");
	conv_case("函数函 in 9", han3, 3, 2, 9, "\xe5\x87\xbd...");
	conv_case("函数函 in 7", han3, 3, 2, 7, "\xe5\x87\xbd...");
	conv_case("函数函 in 6", han3, 3, 2, 6, "...");
	conv_case("𠀀𠀀 in 9", ext2, 2, 4, 9, "\xf0\xa0\x80\x80\xf0\xa0\x80\x80");
	conv_case("𠀀𠀀 in 8", ext2, 2, 4, 8, "\xf0\xa0\x80\x80...");
	conv_case("𠀀𠀀 in 7", ext2, 2, 4, 7, "...");
	conv_case("fünf in 5", fuenf, 4, 1, 5, "f...");
	conv_case("fünf in 6", fuenf, 4, 1, 6, "f\xc3\xbcnf");

	/* Smaller than documented: still no overflow, still a C string. */
	conv_case("outsz 0", abc, 6, 1, 0, "");
	conv_case("outsz 1", abc, 6, 1, 1, "");
	conv_case("outsz 2", abc, 6, 1, 2, ".");
	conv_case("outsz 3 fits", abc, 2, 1, 3, "ab");
	conv_case("outsz 3 cut", abc, 3, 1, 3, "..");
	conv_case("UCS-4 outsz 3", ext, 2, 4, 3, "..");
	CHECK(pystr__to_utf8(NULL, 5, 1, out, sizeof(out)) == 0 && !out[0], "NULL data");
}

/* Random strings of every kind against ref_cut() for every buffer size. */
static void test_to_utf8_random(void)
{
	static const uint32_t pool[] = { 'a', 'Z', 0x7F, 0x80, 0xFC, 0xFF, 0x100, 0x7FF, 0x800,
					 0x51FD, 0xD800, 0xDBFF, 0xDC00, 0xFFFD, 0xFFFF,
					 0x10000, 0x20000, 0x10FFFF, 0x110000, 0xFFFFFFFF };
	uint32_t cps[40];
	uint8_t data[160];
	char full[200], got[200], want[200];
	unsigned int seed = 12345;
	long bad = 0, cases = 0;
	int iter, kind, i;
	size_t n, fl, outsz, gl, wl;

	for (iter = 0; iter < 3000; iter++) {
		kind = (int[]){ 1, 2, 4 }[iter % 3];
		n = rand_r(&seed) % 40;
		for (i = 0; i < (int)n; i++) {
			uint32_t cp = pool[rand_r(&seed) % (sizeof(pool) / sizeof(pool[0]))];

			cps[i] = kind == 1 ? (cp & 0xFF) : kind == 2 ? (cp & 0xFFFF) : cp;
		}
		fill_kind(data, cps, n, kind);
		fl = pystr__to_utf8(data, n, kind, full, sizeof(full));
		if (!utf8_ref_valid(full, fl))
			bad++;
		for (outsz = 1; outsz <= fl + 2; outsz++) {
			cases++;
			gl = pystr__to_utf8(data, n, kind, got, outsz);
			wl = ref_cut(full, fl, false, outsz, want);
			/* NUL code points come out as NUL bytes: compare lengths. */
			if (gl != wl || memcmp(got, want, wl + 1) || !utf8_ref_valid(got, gl)) {
				if (bad++ < 5)
					fprintf(stderr, "  random kind %d outsz %zu: \"%s\" want \"%s\"\n",
						kind, outsz, got, want);
			}
		}
	}
	CHECK(!bad, "random conversions: %ld of %ld wrong", bad, cases);
}

/* ---- hand-built objects in our own memory -------------------------------- */

/* Just enough of the 3.11 and 3.12 rows for strings and bytes. */
static const struct py_offsets off311 = {
	.minor = 11, .uni_length = 16, .uni_state = 32, .uni_ascii_data = 48,
	.uni_compact_data = 72, .uni_legacy_data = 72, .bytes_size = 16, .bytes_sval = 32,
};
static const struct py_offsets off312 = {
	.minor = 12, .uni_length = 16, .uni_state = 32, .uni_ascii_data = 40,
	.uni_compact_data = 56, .uni_legacy_data = 56, .bytes_size = 16, .bytes_sval = 32,
};

#define ST_KIND(k) ((uint32_t)(k) << 2)
#define ST_COMPACT (1u << 5)
#define ST_ASCII (1u << 6)
#define ST_READY (1u << 7)

static void set_header(uint8_t *obj, const struct py_offsets *o, int64_t length, uint32_t state)
{
	memcpy(obj + o->uni_length, &length, sizeof(length));
	memcpy(obj + o->uni_state, &state, sizeof(state));
}

static void expect_read(struct procmem *m, const struct py_offsets *o, const void *obj,
			size_t outsz, int want_err, const char *want, const char *what)
{
	char *out = malloc(outsz ? outsz : 1);
	int err;

	if (!out)
		exit(2);
	err = pystr__read(m, o, (uint64_t)(uintptr_t)obj, out, outsz);
	if (want_err)
		CHECK(err == want_err, "3.%d %s: err %d, want %d", o->minor, what, err, want_err);
	else
		CHECK(!err && !strcmp(out, want), "3.%d %s: err %d, \"%.40s\" (%zu bytes), want \"%.40s\" (%zu bytes)",
		      o->minor, what, err, err ? "" : out, err ? 0 : strlen(out), want, strlen(want));
	free(out);
}

/*
 * A mapping of @npages pages whose last page is unmapped again: reading
 * past page (@npages - 1) fails.  Returns the base.
 */
static uint8_t *map_with_hole(size_t npages)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *p = mmap(NULL, npages * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	munmap(p + (npages - 1) * pg, pg);
	return p;
}

static void test_self_objects(void)
{
	const struct py_offsets *offs[] = { &off311, &off312 };
	long pg = sysconf(_SC_PAGESIZE);
	struct procmem *m = procmem__open(getpid());
	uint8_t obj[512] __attribute__((aligned(8)));
	uint8_t legacy_data[16];
	uint8_t *bytes_out = NULL;
	size_t bytes_len = 0, npages, i;
	char *big, *want;
	unsigned int k;
	int err;

	CHECK(m != NULL, "procmem__open(self): %s", strerror(errno));
	if (!m)
		return;

	for (k = 0; k < 2; k++) {
		const struct py_offsets *o = offs[k];
		uint32_t ready = o->minor < 12 ? ST_READY : 0;
		uint64_t ptr;

		memset(obj, 0, sizeof(obj));
		set_header(obj, o, 5, ST_KIND(1) | ST_COMPACT | ST_ASCII | ready);
		memcpy(obj + o->uni_ascii_data, "hello", 6);
		expect_read(m, o, obj, 64, 0, "hello", "compact ascii");
		expect_read(m, o, obj, 5, 0, "h...", "compact ascii, cut");
		expect_read(m, o, obj, 0, -EINVAL, NULL, "outsz 0");

		set_header(obj, o, 4, ST_KIND(1) | ST_COMPACT | ready);
		memcpy(obj + o->uni_compact_data, "f\xfcnf", 4);
		expect_read(m, o, obj, 64, 0, "f\xc3\xbcnf", "compact latin-1");

		set_header(obj, o, 2, ST_KIND(2) | ST_COMPACT | ready);
		put16(obj + o->uni_compact_data, 0x51FD);
		put16(obj + o->uni_compact_data + 2, 0x6570);
		expect_read(m, o, obj, 64, 0, "\xe5\x87\xbd\xe6\x95\xb0", "compact UCS-2");

		set_header(obj, o, 2, ST_KIND(4) | ST_COMPACT | ready);
		put32(obj + o->uni_compact_data, 0x20000);
		put32(obj + o->uni_compact_data + 4, 'x');
		expect_read(m, o, obj, 64, 0, "\xf0\xa0\x80\x80x", "compact UCS-4");

		set_header(obj, o, 0, ST_KIND(1) | ST_COMPACT | ST_ASCII | ready);
		expect_read(m, o, obj, 64, 0, "", "empty");

		/* Legacy: data behind a pointer. */
		put16(legacy_data, 0xD800);
		put16(legacy_data + 2, 'q');
		ptr = (uint64_t)(uintptr_t)legacy_data;
		memcpy(obj + o->uni_legacy_data, &ptr, sizeof(ptr));
		set_header(obj, o, 2, ST_KIND(2) | ready);
		expect_read(m, o, obj, 64, 0, "\xef\xbf\xbdq", "legacy UCS-2 with a surrogate");
		set_header(obj, o, 2, ST_KIND(2) | ST_ASCII | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "legacy, ascii flag with kind 2");
		legacy_data[0] = 'Z';
		set_header(obj, o, 1, ST_KIND(1) | ST_ASCII | ready);
		expect_read(m, o, obj, 64, 0, "Z", "legacy with the ascii flag: data.any, not inline");
		ptr = 0;
		memcpy(obj + o->uni_legacy_data, &ptr, sizeof(ptr));
		set_header(obj, o, 3, ST_KIND(1) | ready);
		expect_read(m, o, obj, 64, -EFAULT, NULL, "legacy NULL data");
		set_header(obj, o, 0, ST_KIND(1) | ready);
		expect_read(m, o, obj, 64, 0, "", "legacy empty, NULL data");

		/* Not sane. */
		set_header(obj, o, 5, ST_KIND(0) | ST_COMPACT | ST_ASCII | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "kind 0");
		set_header(obj, o, 5, ST_KIND(3) | ST_COMPACT | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "kind 3");
		set_header(obj, o, 5, ST_KIND(7) | ST_COMPACT | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "kind 7");
		set_header(obj, o, 1, ST_KIND(2) | ST_COMPACT | ST_ASCII | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "compact ascii with kind 2");
		set_header(obj, o, -1, ST_KIND(1) | ST_COMPACT | ST_ASCII | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "length -1");
		set_header(obj, o, INT64_C(1) << 50, ST_KIND(1) | ST_COMPACT | ST_ASCII | ready);
		expect_read(m, o, obj, 64, -EINVAL, NULL, "length 2^50");
		set_header(obj, o, 5, ST_KIND(1) | ST_COMPACT | ST_ASCII);
		if (o->minor < 12)
			expect_read(m, o, obj, 64, -EINVAL, NULL, "not ready");
		else
			expect_read(m, o, obj, 64, 0, "hello", "bit 7 clear (no ready bit in 3.12+)");
		expect_read(m, o, NULL, 64, -EFAULT, NULL, "NULL object");
		expect_read(m, o, (void *)(uintptr_t)0x10, 64, -EFAULT, NULL, "address 0x10");
		expect_read(m, o, (void *)(uintptr_t)0xffffffffff600000ULL, 64, -EFAULT, NULL,
			    "kernel address");
	}

	/*
	 * A 1 Mi-character string whose data stops being mapped after 64 KiB:
	 * the read must stay within 64 KiB.
	 */
	npages = (MAX_DATA + 2 * pg) / pg + 1;
	big = (char *)map_with_hole(npages);
	want = malloc(BIG_OUT);
	if (!want)
		exit(2);
	for (k = 0; k < 2; k++) {
		const struct py_offsets *o = offs[k];
		uint32_t ready = o->minor < 12 ? ST_READY : 0;
		uint8_t *hdr, *data = (uint8_t *)big + (npages - 1) * pg - MAX_DATA;

		hdr = data - o->uni_ascii_data;
		set_header(hdr, o, 1 << 20, ST_KIND(1) | ST_COMPACT | ST_ASCII | ready);
		for (i = 0; i < MAX_DATA; i++)
			data[i] = (uint8_t)('a' + i % 26);
		memcpy(want, data, MAX_DATA);
		strcpy(want + MAX_DATA, "...");
		expect_read(m, o, hdr, BIG_OUT, 0, want, "1 Mi ascii chars, 64 KiB mapped");

		/* UCS-4: 16 Ki characters fill the 64 KiB. */
		hdr = data - o->uni_compact_data;
		set_header(hdr, o, 1 << 20, ST_KIND(4) | ST_COMPACT | ready);
		for (i = 0; i < MAX_DATA / 4; i++)
			put32(data + 4 * i, 0x20000);
		for (i = 0; i < MAX_DATA / 4; i++)
			memcpy(want + 4 * i, "\xf0\xa0\x80\x80", 4);
		strcpy(want + MAX_DATA, "...");
		expect_read(m, o, hdr, BIG_OUT, 0, want, "1 Mi UCS-4 chars, 64 KiB mapped");

		/* A small @outsz reads no more than @outsz characters. */
		data = (uint8_t *)big + (npages - 1) * pg - 16;
		hdr = data - o->uni_ascii_data;
		set_header(hdr, o, 1000, ST_KIND(1) | ST_COMPACT | ST_ASCII | ready);
		memcpy(data, "abcdefghijklmnop", 16);
		expect_read(m, o, hdr, 16, 0, "abcdefghijkl...", "1000 chars, 16 mapped, outsz 16");
		expect_read(m, o, hdr, 64, -EFAULT, NULL, "1000 chars, 16 mapped, outsz 64");
	}
	free(want);

	/* Bytes. */
	{
		uint8_t *data = (uint8_t *)big + (npages - 1) * pg - 8;
		uint8_t *hdr = data - off311.bytes_sval;
		int64_t size = 8;

		memcpy(hdr + off311.bytes_size, &size, sizeof(size));
		memcpy(data, "\x00\x01\x02\xff\xfe\x00zz", 8);
		err = pybytes__read(m, &off311, (uint64_t)(uintptr_t)hdr, 1 << 20, &bytes_out,
				    &bytes_len);
		CHECK(!err && bytes_len == 8 && !memcmp(bytes_out, "\x00\x01\x02\xff\xfe\x00zz", 8),
		      "bytes: err %d len %zu", err, bytes_len);
		free(bytes_out);
		err = pybytes__read(m, &off311, (uint64_t)(uintptr_t)hdr, 3, &bytes_out, &bytes_len);
		CHECK(!err && bytes_len == 3 && !memcmp(bytes_out, "\x00\x01\x02", 3),
		      "bytes cut to 3: err %d len %zu", err, bytes_len);
		free(bytes_out);
		err = pybytes__read(m, &off311, (uint64_t)(uintptr_t)hdr, 0, &bytes_out, &bytes_len);
		CHECK(!err && bytes_len == 0 && bytes_out, "bytes cut to 0: err %d len %zu", err,
		      bytes_len);
		free(bytes_out);
		size = 9;	/* one past the mapping */
		memcpy(hdr + off311.bytes_size, &size, sizeof(size));
		err = pybytes__read(m, &off311, (uint64_t)(uintptr_t)hdr, 1 << 20, &bytes_out,
				    &bytes_len);
		CHECK(err == -EFAULT && !bytes_out, "bytes past the mapping: err %d", err);
		size = -3;
		memcpy(hdr + off311.bytes_size, &size, sizeof(size));
		err = pybytes__read(m, &off311, (uint64_t)(uintptr_t)hdr, 100, &bytes_out, &bytes_len);
		CHECK(err == -EINVAL && !bytes_out, "bytes size -3: err %d", err);
		size = INT64_C(1) << 50;
		memcpy(hdr + off311.bytes_size, &size, sizeof(size));
		err = pybytes__read(m, &off311, (uint64_t)(uintptr_t)hdr, 100, &bytes_out, &bytes_len);
		CHECK(err == -EINVAL && !bytes_out, "bytes size 2^50: err %d", err);
		err = pybytes__read(m, &off311, 0, 100, &bytes_out, &bytes_len);
		CHECK(err == -EFAULT && !bytes_out, "bytes at NULL: err %d", err);
	}
	munmap(big, (npages - 1) * pg);
	procmem__close(m);
}

/* ---- live interpreters -------------------------------------------------- */

/*
 * The child makes one object per line: "NAME ADDR S KIND NCHARS HEX" for a
 * str (HEX = its UTF-8, surrogates as U+FFFD), "NAME ADDR B SIZE HEX" for
 * bytes, "NAME ADDR X" for a str that must be refused, "runtime ADDR" for
 * _PyRuntime (3.13+), then "READY", and blocks on stdin.  ASCII only, so that
 * 3.6 in the C locale reads it the same way.
 */
static const char child_script[] =
	"import sys\n"
	"class S(str): pass\n"
	"keep = []\n"
	"out = sys.stdout\n"
	"def fix(s):\n"
	"    return ''.join('\\ufffd' if 0xd800 <= ord(c) <= 0xdfff else c for c in s)\n"
	"def add(name, o):\n"
	"    keep.append(o)\n"
	"    if isinstance(o, bytes):\n"
	"        out.write('%s %d B %d %s\\n' % (name, id(o), len(o), o.hex() or '-'))\n"
	"        return\n"
	"    m = max(map(ord, o)) if o else 0\n"
	"    k = 4 if m > 0xffff else 2 if m > 0xff else 1\n"
	"    h = fix(o).encode('utf-8').hex() or '-'\n"
	"    out.write('%s %d S %d %d %s\\n' % (name, id(o), k, len(o), h))\n"
	"add('ascii', 'hello_ascii')\n"
	"add('ascii_built', ''.join(['built', '_at', '_runtime']))\n"
	"add('latin1', 'f\\u00fcnf')\n"
	"add('ucs2', '\\u51fd\\u6570')\n"
	"add('ucs4', '\\U00020000x')\n"
	"add('empty', '')\n"
	"add('surrogate', 'a\\ud800b\\udfff')\n"
	"add('big_ascii', '0123456789' * 10240)\n"
	"add('big_latin1', '\\u00e9' * 102400)\n"
	"add('big_ucs2', '\\u51fd' * 51200)\n"
	"add('big_ucs4', '\\U00020000' * 25600)\n"
	"add('legacy_ascii', S('legacy'))\n"
	"add('legacy_latin1', S('f\\u00fcnf'))\n"
	"add('legacy_ucs2', S('\\u51fd\\u6570'))\n"
	"add('legacy_ucs4', S('\\U00020000x'))\n"
	"add('legacy_empty', S(''))\n"
	"add('bytes', bytes(range(256)) * 4)\n"
	"add('bytes_empty', b'')\n"
	"b = keep[-2]\n"
	"out.write('not_a_str %d X\\n' % id(b))\n"
	"try:\n"
	"    import ctypes\n"
	"    if sys.version_info < (3, 12):\n"
	"        f = ctypes.pythonapi.PyUnicode_FromUnicode\n"
	"        f.restype = ctypes.py_object\n"
	"        f.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]\n"
	"        nr = f(None, 3)\n"
	"        keep.append(nr)\n"
	"        out.write('not_ready %d X\\n' % id(nr))\n"
	"    else:\n"
	"        rt = ctypes.c_char.in_dll(ctypes.pythonapi, '_PyRuntime')\n"
	"        out.write('runtime %d\\n' % ctypes.addressof(rt))\n"
	"except Exception as e:\n"
	"    sys.stderr.write('child: no ctypes extras: %s\\n' % e)\n"
	"out.write('READY\\n')\n"
	"out.flush()\n"
	"sys.stdin.read()\n";

struct child {
	pid_t pid;
	FILE *out;	/* its stdout */
	int in_fd;	/* its stdin; closing it (or SIGKILL) ends it */
};

static int child__start(const char *python, struct child *c)
{
	char *argv[] = { (char *)python, (char *)"-I", (char *)"-W", (char *)"ignore", (char *)"-c",
			 (char *)child_script, NULL };
	int out = -1, err;

	err = spawn_piped(argv, NULL, &c->pid, &c->in_fd, &out);
	if (err)
		return err;
	c->out = fdopen(out, "r");
	return c->out ? 0 : -errno;
}

static void child__stop(struct child *c)
{
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	if (c->out)
		fclose(c->out);
	close(c->in_fd);
}

static int unhex(const char *hex, char **out, size_t *len)
{
	size_t n = strcmp(hex, "-") ? strlen(hex) / 2 : 0, i;
	char *buf = malloc(n + 1);
	unsigned int v;

	if (!buf)
		return -1;
	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
			free(buf);
			return -1;
		}
		buf[i] = (char)v;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Check one str the child made, at several output sizes. */
static void live_str(struct procmem *m, const struct py_offsets *off, const char *tag,
		     const char *name, uint64_t addr, int kind, size_t nchars, const char *full,
		     size_t full_len)
{
	static const size_t sizes[] = { BIG_OUT, 4096, 64, 16, 5, 4 };
	char *out = malloc(BIG_OUT), *want = malloc(BIG_OUT);
	size_t i, nread, plen;
	int err;

	if (!out || !want)
		exit(2);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t outsz = sizes[i];

		/* What pystr__read may see: <= outsz chars, <= 64 KiB of data. */
		nread = nchars;
		if (nread > outsz)
			nread = outsz;
		if (nread > MAX_DATA / (size_t)kind)
			nread = MAX_DATA / (size_t)kind;
		plen = utf8_prefix(full, full_len, nread);
		ref_cut(full, plen, nread < nchars, outsz, want);

		err = pystr__read(m, off, addr, out, outsz);
		CHECK(!err && !strcmp(out, want),
		      "%s %s (outsz %zu): err %d, got %zu bytes \"%.24s\", want %zu bytes \"%.24s\"",
		      tag, name, outsz, err, err ? 0 : strlen(out), err ? "" : out, strlen(want),
		      want);
	}
	free(out);
	free(want);
}

static void live_bytes(struct procmem *m, const struct py_offsets *off, const char *tag,
		       const char *name, uint64_t addr, const char *full, size_t full_len)
{
	static const size_t maxes[] = { 1 << 20, 100, 0 };
	uint8_t *buf;
	size_t i, len, want;
	int err;

	for (i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++) {
		want = full_len < maxes[i] ? full_len : maxes[i];
		err = pybytes__read(m, off, addr, maxes[i], &buf, &len);
		CHECK(!err && len == want && !memcmp(buf, full, want),
		      "%s %s (max %zu): err %d, len %zu, want %zu", tag, name, maxes[i], err,
		      err ? 0 : len, want);
		free(buf);
	}
}

/* Offsets for the child: the generated row, or its _Py_DebugOffsets. */
static int live_offsets(struct procmem *m, int minor, uint64_t runtime, struct py_offsets *off,
			const char **how)
{
	const struct py_offsets *row = pyoffsets__table(minor);
	static uint8_t buf[PY_DEBUG_OFFSETS_MAX];
	uint32_t hex;
	int err;

	if (row) {
		*off = *row;
		*how = "pyoffsets__table";
		return 0;
	}
	*how = "_Py_DebugOffsets";
	if (!runtime)
		return -ENOENT;
	err = procmem__read(m, runtime, buf, sizeof(buf));
	if (err)
		return err;
	return pyoffsets__from_debug_offsets(buf, sizeof(buf), off, &hex);
}

static void test_live_one(const char *python)
{
	struct py_offsets off;
	struct child c = { 0 };
	struct procmem *m = NULL;
	char *line = NULL, tag[64];
	size_t cap = 0, nobj = 0;
	uint64_t runtime = 0;
	const char *how = "";
	int minor = -1, err;
	FILE *vf;
	char cmd[PATH_MAX + 64];
	bool ready = false;
	struct obj {
		char name[32];
		uint64_t addr;
		char type;
		int kind;
		size_t n;
		char *data;
		size_t len;
	} objs[32];

	snprintf(cmd, sizeof(cmd), "'%s' -c 'import sys; print(sys.version_info[1])' 2>/dev/null",
		 python);
	vf = popen(cmd, "r");
	if (!vf || fscanf(vf, "%d", &minor) != 1)
		minor = -1;
	if (vf)
		pclose(vf);
	snprintf(tag, sizeof(tag), "3.%d", minor);
	if (minor < 6) {
		CHECK(false, "%s: cannot get its version", python);
		return;
	}

	err = child__start(python, &c);
	if (err) {
		CHECK(false, "%s: cannot start: %s", python, strerror(-err));
		return;
	}
	while (getline(&line, &cap, c.out) > 0 && nobj < 32) {
		struct obj *o = &objs[nobj];
		char hexbuf[8], *hex;
		unsigned long long addr;
		int pos = 0;

		if (!strcmp(line, "READY\n")) {
			ready = true;
			break;
		}
		if (sscanf(line, "runtime %llu", &addr) == 1) {
			runtime = addr;
			continue;
		}
		memset(o, 0, sizeof(*o));
		if (sscanf(line, "%31s %llu %c%n", o->name, &addr, &o->type, &pos) != 3)
			continue;
		o->addr = addr;
		hex = hexbuf;
		strcpy(hexbuf, "-");
		if (o->type == 'S') {
			int p2 = 0;

			if (sscanf(line + pos, "%d %zu %n", &o->kind, &o->n, &p2) != 2)
				continue;
			hex = line + pos + p2;
		} else if (o->type == 'B') {
			int p2 = 0;

			if (sscanf(line + pos, "%zu %n", &o->n, &p2) != 1)
				continue;
			hex = line + pos + p2;
		}
		hex[strcspn(hex, "\n")] = '\0';
		if (unhex(hex, &o->data, &o->len))
			continue;
		nobj++;
	}
	free(line);
	if (!ready) {
		CHECK(false, "%s (%s): child did not get ready", tag, python);
		goto out;
	}

	m = procmem__open(c.pid);
	if (!m) {
		CHECK(false, "%s: procmem__open(%d): %s", tag, (int)c.pid, strerror(errno));
		goto out;
	}
	err = live_offsets(m, minor, runtime, &off, &how);
	if (err) {
		CHECK(false, "%s (%s): no offsets from %s: %s", tag, python, how, strerror(-err));
		goto out;
	}
	printf("  %-48s 3.%-2d offsets from %s, %zu objects\n", python, minor, how, nobj);

	for (size_t i = 0; i < nobj; i++) {
		struct obj *o = &objs[i];
		char buf[64];

		if (o->type == 'S') {
			live_str(m, &off, tag, o->name, o->addr, o->kind, o->n, o->data, o->len);
		} else if (o->type == 'B') {
			live_bytes(m, &off, tag, o->name, o->addr, o->data, o->len);
		} else {
			err = pystr__read(m, &off, o->addr, buf, sizeof(buf));
			CHECK(err == -EINVAL, "%s %s: pystr__read gives %d, want -EINVAL", tag,
			      o->name, err);
		}
	}
	for (size_t i = 0; i < nobj; i++) {
		uint8_t *junk = NULL;
		size_t junk_len;

		if (strcmp(objs[i].name, "big_ascii"))
			continue;
		/* Bytes whose ob_size is the ASCII text "01234567": absurd. */
		err = pybytes__read(m, &off, objs[i].addr + off.uni_ascii_data - off.bytes_size,
				    100, &junk, &junk_len);
		CHECK(err == -EINVAL && !junk, "%s: bytes with an absurd size give %d", tag, err);
	}
	{
		char buf[16];

		err = pystr__read(m, &off, 0, buf, sizeof(buf));
		CHECK(err == -EFAULT, "%s: pystr__read(NULL) gives %d", tag, err);
	}
out:
	procmem__close(m);
	child__stop(&c);
	for (size_t i = 0; i < nobj; i++)
		free(objs[i].data);
}

static void test_live(void)
{
	const char *pyenv = getenv("PYENV_ROOT"), *cache = getenv("HANGTRACE_PYCACHE");
	const char *home = getenv("HOME");
	const char *launchers[] = { "python3.13", "python3.14", "python3.15" };
	char pattern[PATH_MAX], cachedir[PATH_MAX / 2];
	size_t i;
	glob_t g;

	printf("live interpreters:\n");
	if (geteuid() != 0) {
		printf("  skipped: not root, cannot read other processes' memory\n");
		return;
	}
	snprintf(pattern, sizeof(pattern), "%s/versions/3.*/bin/python3",
		 pyenv ? pyenv : "/root/.pyenv");
	if (!glob(pattern, 0, NULL, &g)) {
		for (i = 0; i < g.gl_pathc; i++)
			test_live_one(g.gl_pathv[i]);
		globfree(&g);
	} else {
		printf("  skipped (none found): %s\n", pattern);
	}
	if (!access("/usr/bin/python3.11", X_OK))
		test_live_one("/usr/bin/python3.11");
	else
		printf("  skipped (not present): /usr/bin/python3.11\n");
	if (cache)
		snprintf(cachedir, sizeof(cachedir), "%s", cache);
	else
		snprintf(cachedir, sizeof(cachedir), "%s/.cache/hangtrace/pythons",
			 home ? home : "/root");
	for (i = 0; i < sizeof(launchers) / sizeof(launchers[0]); i++) {
		snprintf(pattern, sizeof(pattern), "%s/bin/%s", cachedir, launchers[i]);
		if (!access(pattern, X_OK))
			test_live_one(pattern);
		else
			printf("  skipped (not present): %s\n", pattern);
	}
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	alarm(300);	/* a wedged child must not hang the test run */
	test_to_utf8();
	test_to_utf8_random();
	test_self_objects();
	test_live();
	return CHECK_SUMMARY();
}
