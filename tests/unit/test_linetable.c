// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * linetable__line() against CPython itself: the committed fixtures in
 * tests/unit/linetable-fixtures/, fresh fixtures from every interpreter found
 * on this machine, hand-made edge cases and random bytes.  Run from the repo
 * root.  Build with `make SAN=1` to have ASan watch every table read: each
 * table is copied into a buffer of exactly its own size.
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "linetable.h"

#define FIXTURE_DIR "tests/unit/linetable-fixtures"
#define GEN_SCRIPT "tests/unit/gen-linetable-fixtures.py"
#define MAX_REPORTED_MISMATCHES 10
/* Check every prefix of one record in this many: O(len^2) per record. */
#define PREFIX_SAMPLE 97
#define PREFIX_MAX_LEN 400
#define PREFIX_MAX_Q 6

static const char *fmt_name(enum py_linetable fmt)
{
	switch (fmt) {
	case PY_LT_LNOTAB:
		return "lnotab";
	case PY_LT_LINETABLE310:
		return "linetable310";
	case PY_LT_LOCATIONS:
		return "locations";
	}
	return "?";
}

static enum py_linetable fmt_of_minor(int minor)
{
	if (minor < 10)
		return PY_LT_LNOTAB;
	if (minor == 10)
		return PY_LT_LINETABLE310;
	return PY_LT_LOCATIONS;
}

/* A copy of @src in a buffer of exactly @len bytes, so ASan sees overreads. */
static uint8_t *exact_copy(const void *src, size_t len)
{
	uint8_t *p = malloc(len ? len : 1);

	if (!p) {
		perror("malloc");
		exit(2);
	}
	if (len)
		memcpy(p, src, len);
	return p;
}

static int lt_line(enum py_linetable fmt, const void *tab, size_t len, int first, int64_t q)
{
	uint8_t *copy = exact_copy(tab, len);
	int line = linetable__line(fmt, copy, len, first, q);

	free(copy);
	return line;
}

/* ---- fixtures ---------------------------------------------------------- */

struct fixture_stats {
	long records;
	long pairs;
	long mismatches;
	long extra;		/* q = -1, past-the-end and prefix checks */
	long extra_bad;
	int minor;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode @hex ("-" = empty) into an exact-size buffer.  -1 if malformed. */
static int parse_hex(const char *hex, uint8_t **out, size_t *len)
{
	size_t n = strlen(hex), i;
	uint8_t *buf;

	if (!strcmp(hex, "-"))
		n = 0;
	if (n % 2)
		return -1;
	buf = malloc(n / 2 ? n / 2 : 1);
	if (!buf)
		return -1;
	for (i = 0; i < n / 2; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(buf);
			return -1;
		}
		buf[i] = (uint8_t)(hi << 4 | lo);
	}
	*out = buf;
	*len = n / 2;
	return 0;
}

/*
 * Every prefix of a real table: for the range formats a cut-off table may
 * lose @q's range (-1) but must never give a different line.
 */
static void check_prefixes(enum py_linetable fmt, const uint8_t *tab, size_t len, int first,
			   int64_t q, int want, const char *name, struct fixture_stats *st)
{
	size_t cut;

	if (fmt == PY_LT_LNOTAB)
		return;
	for (cut = 0; cut <= len; cut++) {
		int got = lt_line(fmt, tab, cut, first, q);

		st->extra++;
		if (got != want && got != -1) {
			st->extra_bad++;
			fprintf(stderr, "  %s: table cut to %zu/%zu bytes: q=%lld gives %d, want %d or -1\n",
				name, cut, len, (long long)q, got, want);
			return;
		}
	}
}

/* One record: "MINOR FIRST HEX NAME OFF:LINE ...".  -1 if malformed. */
static int check_record(char *line, struct fixture_stats *st, const char *file)
{
	char *save = NULL, *tok, *hex, *name;
	int minor, first, step;
	enum py_linetable fmt;
	int64_t last_off = -1;
	uint8_t *tab = NULL;
	size_t len = 0;
	long npairs = 0;
	int nprefix = 0;

	tok = strtok_r(line, " \n", &save);
	if (!tok)
		return 0;	/* blank line */
	minor = atoi(tok);
	tok = strtok_r(NULL, " \n", &save);
	hex = strtok_r(NULL, " \n", &save);
	name = strtok_r(NULL, " \n", &save);
	if (!tok || !hex || !name || minor < 6 || minor > 99)
		return -1;
	first = atoi(tok);
	if (parse_hex(hex, &tab, &len))
		return -1;
	fmt = fmt_of_minor(minor);
	step = minor >= 11 ? 1 : 2;
	st->minor = minor;
	st->records++;

	while ((tok = strtok_r(NULL, " \n", &save))) {
		long long off;
		int want, got;

		if (sscanf(tok, "%lld:%d", &off, &want) != 2) {
			free(tab);
			return -1;
		}
		got = linetable__line(fmt, tab, len, first, off);
		st->pairs++;
		npairs++;
		if (got != want) {
			if (st->mismatches++ < MAX_REPORTED_MISMATCHES)
				fprintf(stderr, "  %s: %s (3.%d, first %d, %s): q=%lld gives %d, want %d\n",
					file, name, minor, first, fmt_name(fmt), off, got, want);
		}
		if (off > last_off)
			last_off = off;
		if (st->records % PREFIX_SAMPLE == 0 && len <= PREFIX_MAX_LEN &&
		    npairs % 7 == 1 && nprefix++ < PREFIX_MAX_Q)
			check_prefixes(fmt, tab, len, first, off, want, name, st);
	}

	/* Before the first instruction: co_firstlineno. */
	st->extra++;
	if (linetable__line(fmt, tab, len, first, -1) != first) {
		st->extra_bad++;
		fprintf(stderr, "  %s: %s: q=-1 does not give co_firstlineno %d\n", file, name, first);
	}
	/* Past the last instruction the range formats have no line. */
	if (fmt != PY_LT_LNOTAB && npairs) {
		int got = linetable__line(fmt, tab, len, first, last_off + step);

		st->extra++;
		if (got != -1) {
			st->extra_bad++;
			fprintf(stderr, "  %s: %s: q=%lld past the end gives %d\n", file, name,
				(long long)(last_off + step), got);
		}
	}
	free(tab);
	return 0;
}

/* Check every record of @path; prints one summary line.  -1 if unreadable. */
static int check_fixture_file(const char *path, const char *label)
{
	struct fixture_stats st = { 0 };
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0, bad_lines = 0;
	FILE *f;

	f = fopen(path, "r");
	if (!f) {
		CHECK(false, "%s: cannot open %s: %s", label, path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) > 0) {
		lineno++;
		if (line[0] == '#')
			continue;
		if (check_record(line, &st, label)) {
			if (bad_lines++ < 3)
				fprintf(stderr, "  %s:%ld: malformed fixture line\n", path, lineno);
		}
	}
	free(line);
	fclose(f);

	printf("  %-40s 3.%-2d %-12s %6ld code objects %8ld (offset,line) pairs, %ld mismatches; "
	       "%ld extra checks, %ld bad\n",
	       label, st.minor, fmt_name(fmt_of_minor(st.minor)), st.records, st.pairs,
	       st.mismatches, st.extra, st.extra_bad);
	CHECK(st.records > 0 && st.pairs > 0, "%s: no records", label);
	CHECK(!bad_lines, "%s: %ld malformed lines", label, bad_lines);
	CHECK(!st.mismatches, "%s: %ld of %ld pairs mismatch", label, st.mismatches, st.pairs);
	CHECK(!st.extra_bad, "%s: %ld of %ld extra checks failed", label, st.extra_bad, st.extra);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_committed_fixtures(void)
{
	char *names[256], path[PATH_MAX];
	int n = 0, i;
	struct dirent *de;
	DIR *d;

	printf("committed fixtures (%s):\n", FIXTURE_DIR);
	d = opendir(FIXTURE_DIR);
	if (!d) {
		CHECK(false, "cannot open %s (run from the repo root): %s", FIXTURE_DIR,
		      strerror(errno));
		return;
	}
	while ((de = readdir(d)) && n < 256) {
		size_t l = strlen(de->d_name);

		if (l > 4 && !strcmp(de->d_name + l - 4, ".txt"))
			names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	CHECK(n > 0, "no fixture files in %s", FIXTURE_DIR);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/%s", FIXTURE_DIR, names[i]);
		check_fixture_file(path, names[i]);
		free(names[i]);
	}
}

/* ---- fixtures from the interpreters present now ------------------------- */

/* Run @python on the generator, writing @out.  0 on success. */
static int run_generator(const char *python, const char *out)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execl(python, python, GEN_SCRIPT, "-o", out, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_live_interpreters(void)
{
	const char *pyenv = getenv("PYENV_ROOT"), *cache = getenv("HANGTRACE_PYCACHE");
	const char *home = getenv("HOME"), *launchers[] = { "python3.13", "python3.14", "python3.15" };
	char pattern[PATH_MAX], tmpl[] = "/tmp/ht-linetable-XXXXXX", out[PATH_MAX];
	char cachedir[PATH_MAX / 2];
	char *pythons[64], *skipped[16];
	int npy = 0, nskip = 0, i;
	size_t j;
	glob_t g;

	snprintf(pattern, sizeof(pattern), "%s/versions/3.*/bin/python3",
		 pyenv ? pyenv : "/root/.pyenv");
	if (!glob(pattern, 0, NULL, &g)) {
		for (j = 0; j < g.gl_pathc && npy < 60; j++)
			pythons[npy++] = strdup(g.gl_pathv[j]);
		globfree(&g);
	}
	if (!access("/usr/bin/python3.11", X_OK))
		pythons[npy++] = strdup("/usr/bin/python3.11");
	else
		skipped[nskip++] = strdup("/usr/bin/python3.11");
	if (cache)
		snprintf(cachedir, sizeof(cachedir), "%s", cache);
	else
		snprintf(cachedir, sizeof(cachedir), "%s/.cache/hangtrace/pythons",
			 home ? home : "/root");
	for (j = 0; j < sizeof(launchers) / sizeof(launchers[0]); j++) {
		snprintf(pattern, sizeof(pattern), "%s/bin/%s", cachedir, launchers[j]);
		if (!access(pattern, X_OK))
			pythons[npy++] = strdup(pattern);
		else
			skipped[nskip++] = strdup(pattern);
	}

	printf("fixtures regenerated now (%d interpreters):\n", npy);
	for (i = 0; i < nskip; i++) {
		printf("  skipped (not present): %s\n", skipped[i]);
		free(skipped[i]);
	}
	if (!mkdtemp(tmpl)) {
		CHECK(false, "mkdtemp: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < npy; i++) {
		snprintf(out, sizeof(out), "%s/%d.txt", tmpl, i);
		if (run_generator(pythons[i], out)) {
			CHECK(false, "%s: %s failed", pythons[i], GEN_SCRIPT);
			unlink(out);
			continue;
		}
		check_fixture_file(out, pythons[i]);
		unlink(out);
	}
	rmdir(tmpl);
out:
	for (i = 0; i < npy; i++)
		free(pythons[i]);
}

/* ---- hand-made tables --------------------------------------------------- */

#define LT(fmt, tab, first, q) lt_line(fmt, tab, sizeof(tab), first, q)
#define EXPECT(got, want)                                                           \
	do {                                                                        \
		int _g = (got), _w = (want);                                        \
		CHECK(_g == _w, "%s:%d: %s = %d, want %d", __func__, __LINE__, #got, _g, _w); \
	} while (0)

/* First byte of a 3.11+ location entry. */
#define LOC(code, units) ((uint8_t)(0x80 | (code) << 3 | ((units) - 1)))

static void test_lnotab_edges(void)
{
	const uint8_t basic[] = { 6, 1, 4, 2 };
	const uint8_t neg[] = { 2, 0xff, 2, 0xfe };
	const uint8_t odd[] = { 2, 1, 5 };
	const uint8_t long_run[] = { 255, 0, 255, 0, 255, 0, 255, 0, 2, 1 };
	const uint8_t under[] = { 0, 0x80 };	/* -128 */
	const uint8_t up[] = { 0, 127 };
	uint8_t big[2000];
	int i;

	EXPECT(lt_line(PY_LT_LNOTAB, NULL, 0, 7, 0), 7);
	EXPECT(lt_line(PY_LT_LNOTAB, NULL, 0, 7, 1000), 7);
	EXPECT(lt_line(PY_LT_LNOTAB, NULL, 0, 7, -1), 7);
	EXPECT(linetable__line(PY_LT_LNOTAB, NULL, 99, 7, 4), 7);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, -1), 10);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, 0), 10);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, 5), 10);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, 6), 11);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, 9), 11);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, 10), 13);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, INT64_MAX), 13);
	EXPECT(LT(PY_LT_LNOTAB, basic, 10, INT64_MIN), 10);
	EXPECT(LT(PY_LT_LNOTAB, neg, 10, 2), 9);
	EXPECT(LT(PY_LT_LNOTAB, neg, 10, 4), 7);
	EXPECT(LT(PY_LT_LNOTAB, odd, 10, 100), 11);
	EXPECT(LT(PY_LT_LNOTAB, long_run, 1, 1021), 1);
	EXPECT(LT(PY_LT_LNOTAB, long_run, 1, 1022), 2);
	EXPECT(LT(PY_LT_LNOTAB, under, 1, 0), -1);
	EXPECT(LT(PY_LT_LNOTAB, up, INT_MAX - 10, 0), -1);
	for (i = 0; i < 2000; i += 2) {
		big[i] = 0;
		big[i + 1] = 127;
	}
	EXPECT(LT(PY_LT_LNOTAB, big, 1, 0), 1 + 127 * 1000);
}

static void test_linetable310_edges(void)
{
	/* [0,6) +1; [6,10) none; [10,12) +1; zero-length +5; [12,20) -2 */
	const uint8_t t[] = { 6, 1, 4, 0x80, 2, 0, 0, 5, 8, 0xfe };
	const uint8_t odd[] = { 4, 3, 9 };
	const uint8_t up[] = { 2, 127 };
	int q;

	EXPECT(lt_line(PY_LT_LINETABLE310, NULL, 0, 7, 0), -1);
	EXPECT(lt_line(PY_LT_LINETABLE310, NULL, 0, 7, -1), 7);
	for (q = 0; q < 6; q++)
		EXPECT(LT(PY_LT_LINETABLE310, t, 100, q), 101);
	for (q = 6; q < 10; q++)
		EXPECT(LT(PY_LT_LINETABLE310, t, 100, q), -1);
	EXPECT(LT(PY_LT_LINETABLE310, t, 100, 10), 101);
	EXPECT(LT(PY_LT_LINETABLE310, t, 100, 11), 101);
	for (q = 12; q < 20; q++)
		EXPECT(LT(PY_LT_LINETABLE310, t, 100, q), 104);
	EXPECT(LT(PY_LT_LINETABLE310, t, 100, 20), -1);
	EXPECT(LT(PY_LT_LINETABLE310, t, 100, INT64_MAX), -1);
	EXPECT(LT(PY_LT_LINETABLE310, t, 100, -1), 100);
	EXPECT(LT(PY_LT_LINETABLE310, odd, 1, 3), 4);
	EXPECT(LT(PY_LT_LINETABLE310, odd, 1, 4), -1);
	EXPECT(LT(PY_LT_LINETABLE310, up, INT_MAX - 1, 0), -1);
}

static void test_locations_edges(void)
{
	const uint8_t t[] = {
		LOC(0, 3), 0x05,			/* units 0-2: +0 */
		LOC(11, 1), 4, 9,			/* unit 3: +1 */
		LOC(13, 2), 0x07,			/* units 4-5: -3 */
		LOC(14, 1), 0x50, 0x06, 0, 5, 9,	/* unit 6: +200, long form */
		LOC(15, 2),				/* units 7-8: no line */
		LOC(10, 1), 1, 2,			/* unit 9: +0 */
		LOC(12, 8), 1, 2,			/* units 10-17: +2 */
	};
	/* +1000000: u = 2000000 = 0x1E8480 -> 6-bit groups 0, 18, 40, 7 */
	const uint8_t mega[] = { LOC(13, 1), 0x40, 0x52, 0x68, 0x07, LOC(9, 1), 0 };
	/* u = 0xfffffffe: +(2^31 - 1) */
	const uint8_t huge_up[] = { LOC(13, 1), 0x7e, 0x7f, 0x7f, 0x7f, 0x7f, 0x03 };
	/* u = 0xffffffff: -(2^31 - 1) */
	const uint8_t huge_down[] = { LOC(13, 1), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x03 };
	const uint8_t trunc_varint[] = { LOC(13, 1), 0x41 };
	const uint8_t trunc_long[] = { LOC(0, 1), 0, LOC(14, 1) };
	const uint8_t too_long_varint[] = { LOC(13, 1), 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0x01 };
	const uint8_t no_high_bit[] = { 0x05, 0x06, LOC(11, 1), 0, 0 };
	const uint8_t none_only[] = { LOC(15, 8), LOC(15, 8) };
	int q;

	EXPECT(lt_line(PY_LT_LOCATIONS, NULL, 0, 7, 0), -1);
	EXPECT(lt_line(PY_LT_LOCATIONS, NULL, 0, 7, -1), 7);
	for (q = 0; q < 3; q++)
		EXPECT(LT(PY_LT_LOCATIONS, t, 50, q), 50);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 3), 51);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 4), 48);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 5), 48);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 6), 248);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 7), -1);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 8), -1);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 9), 248);
	for (q = 10; q < 18; q++)
		EXPECT(LT(PY_LT_LOCATIONS, t, 50, q), 250);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, 18), -1);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, INT64_MAX), -1);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, -1), 50);
	EXPECT(LT(PY_LT_LOCATIONS, t, 50, INT64_MIN), 50);
	/* Every truncation of t: never a wrong line. */
	for (size_t cut = 0; cut <= sizeof(t); cut++) {
		for (q = 0; q < 18; q++) {
			int full = LT(PY_LT_LOCATIONS, t, 50, q);
			int got = lt_line(PY_LT_LOCATIONS, t, cut, 50, q);

			CHECK(got == full || got == -1, "locations cut %zu q %d: %d (full %d)", cut,
			      q, got, full);
		}
	}

	EXPECT(LT(PY_LT_LOCATIONS, mega, 1, 0), 1000001);
	EXPECT(LT(PY_LT_LOCATIONS, mega, 1, 1), 1000001);
	EXPECT(LT(PY_LT_LOCATIONS, huge_up, 1, 0), -1);
	EXPECT(LT(PY_LT_LOCATIONS, huge_up, 0, 0), INT_MAX);
	EXPECT(LT(PY_LT_LOCATIONS, huge_down, 1, 0), -1);
	EXPECT(LT(PY_LT_LOCATIONS, huge_down, INT_MAX, 0), 0);
	EXPECT(LT(PY_LT_LOCATIONS, trunc_varint, 1, 0), -1);
	EXPECT(LT(PY_LT_LOCATIONS, trunc_long, 1, 0), 1);
	EXPECT(LT(PY_LT_LOCATIONS, trunc_long, 1, 1), -1);
	EXPECT(LT(PY_LT_LOCATIONS, too_long_varint, 1, 0), -1);
	/* A garbage first byte is read as an entry (as CPython would). */
	EXPECT(LT(PY_LT_LOCATIONS, no_high_bit, 1, 5), 1);
	EXPECT(LT(PY_LT_LOCATIONS, no_high_bit, 1, 6), 2);
	EXPECT(LT(PY_LT_LOCATIONS, none_only, 1, 15), -1);
	EXPECT(LT(PY_LT_LOCATIONS, none_only, 1, 16), -1);
}

/* ---- random bytes ------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static void test_fuzz(void)
{
	const enum py_linetable fmts[] = { PY_LT_LNOTAB, PY_LT_LINETABLE310, PY_LT_LOCATIONS };
	const char *seed = getenv("HT_FUZZ_SEED");
	long iters = 200000, i, bad = 0;
	uint8_t *tab;
	size_t len, j;

	if (seed)
		rng_state = strtoull(seed, NULL, 0) | 1;
	printf("fuzz: %ld random tables, seed %#llx\n", iters, (unsigned long long)rng_state);
	for (i = 0; i < iters; i++) {
		/* Mostly short tables; now and then a long one. */
		len = (i % 1000 == 0) ? rng() % 65536 : rng() % 64;
		tab = malloc(len ? len : 1);
		if (!tab)
			exit(2);
		for (j = 0; j < len; j++)
			tab[j] = (uint8_t)rng();
		/* Bias towards plausible location-table bytes half the time. */
		if (i & 1)
			for (j = 0; j < len; j += 1 + rng() % 4)
				tab[j] |= 0x80;
		for (j = 0; j < 3; j++) {
			int64_t q = (int64_t)(rng() % 1200) - 2;
			int first = (int)(rng() % 2000) - 10;
			int line;

			if (rng() % 50 == 0)
				q = (rng() & 1) ? INT64_MAX : INT64_MIN;
			line = linetable__line(fmts[j], tab, len, first, q);
			if (q < 0 ? line != (first >= 0 ? first : -1) : line < -1)
				bad++;
		}
		free(tab);
	}
	CHECK(!bad, "fuzz: %ld results out of range", bad);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_lnotab_edges();
	test_linetable310_edges();
	test_locations_edges();
	test_fuzz();
	test_committed_fixtures();
	test_live_interpreters();
	return CHECK_SUMMARY();
}
