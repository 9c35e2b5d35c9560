// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pprof__write and speedscope__write on a report made here: the pprof bytes
 * are gunzipped and walked as protobuf (the conventions readers rely on:
 * string_table[0] = "", valid UTF-8, non-zero ids that resolve, one value
 * per sample type), the speedscope JSON parsed back; --what is honoured and
 * on-CPU blockers stay out of off-CPU data; with --children every process is
 * in the file (pprof: a mapping per executable, locations per mapping, a pid
 * label; speedscope: profiles named after the process).  The real readers (go tool
 * pprof, the speedscope schema) are in tests/integration/test_formats.py.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"
#include "env.h"
#include "pprof.h"
#include "report.h"
#include "speedscope.h"
#include "utf8.h"

static struct rframe fr_sleep[] = {
	{ "evil\"<b>\x01", "/app/a.py", 12, 10 },
	{ "main", "/app/a.py", 30, 25 },
};
static struct rframe fr_burn[] = {
	{ "burn", "/app/b.py", 5, 3 },
};

static struct rthread threads[] = {
	{ .tid = 100, .name = "bad\xff\"<" },
	{ .tid = 101, .name = "worker" },
};

static struct rblocker blockers[] = {
	{ .pid = 100, .tid = 100, .reason = HT_R_SLEEP, .syscall = -1, .total_ns = 500000000,
	  .count = 1, .stack = { fr_sleep, 2, false, false } },
	{ .pid = 100, .tid = 100, .reason = HT_R_OTHER, .syscall = -1, .total_ns = 7000000,
	  .count = 3, .on_cpu = true, .stack = { fr_burn, 1, false, false } },
	{ .pid = 100, .tid = 101, .reason = HT_R_LOCK, .syscall = -1, .total_ns = 200000000,
	  .count = 2, .stack = { NULL, 0, false, false } },
};

static struct rsample samples[] = {
	{ .pid = 100, .tid = 100, .count = 10, .ns = 50251250, .stack = { fr_burn, 1, true, false } },
};

static struct report make_report(enum report_what what)
{
	struct report r = {
		.pid = 100, .exe = "/usr/bin/python3", .cmdline = "python3 a.py \xfe",
		.python = "3.12.1", .start_unix_ns = 1700000000000000000ULL,
		.duration_ns = 2000000000, .threads = threads, .nr_threads = 2,
		.blockers = blockers, .nr_blockers = 3, .samples = samples, .nr_samples = 1,
		.sample_period_ns = 5025125, .what = what,
	};
	return r;
}

/* --- a protobuf reader, just enough for profile.proto --- */
struct field {
	int num, wire;
	uint64_t v;
	const uint8_t *p;
	size_t len;
};

static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	int shift = 0;

	*v = 0;
	while (*p < end && shift < 64) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return 0;
		shift += 7;
	}
	return -1;
}

/* The next field of [*p, end): 1, 0 at the end, -1 on garbage. */
static int next(const uint8_t **p, const uint8_t *end, struct field *f)
{
	uint64_t key;

	if (*p == end)
		return 0;
	if (varint(p, end, &key))
		return -1;
	f->num = key >> 3;
	f->wire = key & 7;
	if (f->wire == 0)
		return varint(p, end, &f->v) ? -1 : 1;
	if (f->wire != 2 || varint(p, end, &f->v) || f->v > (uint64_t)(end - *p))
		return -1;
	f->p = *p;
	f->len = f->v;
	*p += f->len;
	return 1;
}

static uint8_t *gunzip(const char *buf, size_t len, size_t *out_len)
{
	size_t cap = 1 << 20;
	uint8_t *out = malloc(cap);
	z_stream z = { 0 };

	if (!out || inflateInit2(&z, 15 + 32) != Z_OK)
		return NULL;
	z.next_in = (uint8_t *)buf;
	z.avail_in = len;
	z.next_out = out;
	z.avail_out = cap;
	if (inflate(&z, Z_FINISH) != Z_STREAM_END) {
		free(out);
		out = NULL;
	}
	*out_len = z.total_out;
	inflateEnd(&z);
	return out;
}

struct decoded {
	char *strs[256];
	int nstrs, ntypes, nsamples, nlocs, nfuncs, nmaps, ncomments, bad;
	uint64_t loc_ids[64], func_ids[64], loc_funcs[64], loc_maps[64];
	uint64_t map_ids[8], map_files[8], comments[16];
	uint64_t sample_label_keys[16][8], sample_label_nums[16][8];
	int sample_labels[16];
	uint64_t sample_locs[16][8];
	int sample_depth[16], sample_vals[16];
	int64_t func_start[64], func_name[64];
	uint64_t period, default_type;
};

static void decode(const uint8_t *b, size_t len, struct decoded *d)
{
	const uint8_t *p = b, *end = b + len, *q, *qe, *r, *re;
	struct field f, g, h;
	uint64_t v;

	memset(d, 0, sizeof(*d));
	while (next(&p, end, &f) == 1) {
		q = f.p, qe = f.p + f.len;
		switch (f.num) {
		case 1:
			d->ntypes++;
			break;
		case 2:
			while (next(&q, qe, &g) == 1) {
				r = g.p, re = g.p + g.len;
				if (g.num == 1)
					while (r < re && !varint(&r, re, &v))
						d->sample_locs[d->nsamples][d->sample_depth[d->nsamples]++] = v;
				if (g.num == 2)
					while (r < re && !varint(&r, re, &v))
						d->sample_vals[d->nsamples]++;
				if (g.num == 3 && d->sample_labels[d->nsamples] < 8) {
					int nl = d->sample_labels[d->nsamples]++;

					while (next(&r, re, &h) == 1) {
						if (h.num == 1)
							d->sample_label_keys[d->nsamples][nl] = h.v;
						if (h.num == 3)
							d->sample_label_nums[d->nsamples][nl] = h.v;
					}
				}
			}
			d->nsamples++;
			break;
		case 3:
			while (next(&q, qe, &g) == 1) {
				if (g.num == 1)
					d->map_ids[d->nmaps] = g.v;
				if (g.num == 5)
					d->map_files[d->nmaps] = g.v;
			}
			d->nmaps++;
			break;
		case 4:
			while (next(&q, qe, &g) == 1) {
				if (g.num == 1)
					d->loc_ids[d->nlocs] = g.v;
				if (g.num == 2)
					d->loc_maps[d->nlocs] = g.v;
				if (g.num == 4) {
					r = g.p, re = g.p + g.len;
					while (next(&r, re, &h) == 1)
						if (h.num == 1)
							d->loc_funcs[d->nlocs] = h.v;
				}
			}
			d->nlocs++;
			break;
		case 5:
			while (next(&q, qe, &g) == 1) {
				if (g.num == 1)
					d->func_ids[d->nfuncs] = g.v;
				if (g.num == 2)
					d->func_name[d->nfuncs] = g.v;
				if (g.num == 5)
					d->func_start[d->nfuncs] = g.v;
			}
			d->nfuncs++;
			break;
		case 6:
			d->strs[d->nstrs++] = strndup((const char *)f.p, f.len);
			break;
		case 12:
			d->period = f.v;
			break;
		case 13:
			d->comments[d->ncomments++] = f.v;
			break;
		case 14:
			d->default_type = f.v;
			break;
		}
	}
	d->bad = p != end;
}

static int str_index(const struct decoded *d, const char *s)
{
	int i;

	for (i = 0; i < d->nstrs; i++)
		if (!strcmp(d->strs[i], s))
			return i;
	return -1;
}

static void check_pprof(enum report_what what, int ntypes, int nsamples)
{
	struct report r = make_report(what);
	struct decoded d;
	char *buf = NULL;
	size_t len = 0, plen = 0;
	uint8_t *pb;
	FILE *f = open_memstream(&buf, &len);
	int i, j, k, found;

	CHECK(pprof__write(&r, f) == 0, "pprof__write what=%d", what);
	fclose(f);
	CHECK(len > 2 && (uint8_t)buf[0] == 0x1f && (uint8_t)buf[1] == 0x8b, "gzip magic");
	pb = gunzip(buf, len, &plen);
	CHECK(pb != NULL, "gunzip");
	if (!pb) {
		free(buf);
		return;
	}
	decode(pb, plen, &d);
	CHECK(!d.bad, "protobuf walks to its end");
	CHECK(d.nstrs > 0 && !strcmp(d.strs[0], ""), "string_table[0] is \"\"");
	for (i = 0; i < d.nstrs; i++) {
		char *c = utf8_sanitize(d.strs[i]);

		CHECK(c && !strcmp(c, d.strs[i]), "string %d valid UTF-8", i);
		free(c);
	}
	CHECK(d.ntypes == ntypes, "what=%d: %d sample types, want %d", what, d.ntypes, ntypes);
	CHECK(d.nsamples == nsamples, "what=%d: %d samples, want %d", what, d.nsamples, nsamples);
	for (i = 0; i < d.nsamples; i++) {
		CHECK(d.sample_vals[i] == ntypes, "sample %d: one value per type", i);
		CHECK(d.sample_depth[i] > 0, "sample %d has a location", i);
		for (j = 0; j < d.sample_depth[i]; j++) {
			for (found = 0, k = 0; k < d.nlocs; k++)
				found |= d.loc_ids[k] == d.sample_locs[i][j];
			CHECK(found, "sample %d location %llu exists", i,
			      (unsigned long long)d.sample_locs[i][j]);
		}
	}
	for (k = 0; k < d.nlocs; k++) {
		CHECK(d.loc_ids[k] == (uint64_t)k + 1, "location ids 1..n");
		CHECK(d.loc_funcs[k] >= 1 && d.loc_funcs[k] <= (uint64_t)d.nfuncs, "line's function");
	}
	for (k = 0; k < d.nfuncs; k++) {
		CHECK(d.func_ids[k] == (uint64_t)k + 1, "function ids 1..n");
		CHECK(d.func_name[k] > 0 && d.func_name[k] < d.nstrs, "function name index");
		if (d.func_name[k] > 0 && d.func_name[k] < d.nstrs &&
		    !strcmp(d.strs[d.func_name[k]], "burn"))
			CHECK(d.func_start[k] == 3, "burn's start_line %lld", (long long)d.func_start[k]);
	}
	if (what != WHAT_ONCPU) {
		CHECK(str_index(&d, "evil\"<b>\x01") > 0, "hostile name kept as it is");
		CHECK(str_index(&d, "<no Python frames>") > 0, "empty stack gets a pseudo-frame");
		CHECK(str_index(&d, "bad\xef\xbf\xbd\"<") > 0, "thread name made valid UTF-8");
		CHECK(d.period == 1 || what == WHAT_ALL, "off-CPU period 1");
		CHECK(d.default_type == (uint64_t)str_index(&d, "off_cpu"), "default off_cpu");
	} else {
		CHECK(str_index(&d, "evil\"<b>\x01") < 0, "oncpu: no off-CPU stacks");
		CHECK(d.default_type == (uint64_t)str_index(&d, "cpu"), "default cpu");
	}
	if (what != WHAT_OFFCPU) {
		CHECK(d.period == 5025125, "on-CPU period %llu", (unsigned long long)d.period);
		CHECK(str_index(&d, "<truncated>") > 0, "truncated stack gets a root pseudo-frame");
	}
	CHECK(str_index(&d, "hangtrace " HANGTRACE_VERSION) > 0, "comment names the exporter");
	for (i = 0; i < d.nstrs; i++)
		free(d.strs[i]);
	free(pb);
	free(buf);
}

static void check_speedscope(enum report_what what, int nprofiles)
{
	struct report r = make_report(what);
	json_object *root, *profiles, *frames, *p, *s;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int i;

	CHECK(speedscope__write(&r, f) == 0, "speedscope__write what=%d", what);
	fclose(f);
	root = json_tokener_parse(buf);
	CHECK(root != NULL, "speedscope JSON parses");
	if (!root) {
		free(buf);
		return;
	}
	profiles = json_object_object_get(root, "profiles");
	frames = json_object_object_get(json_object_object_get(root, "shared"), "frames");
	CHECK(json_object_array_length(profiles) == (size_t)nprofiles, "what=%d: %zu profiles",
	      what, json_object_array_length(profiles));
	for (i = 0; i < (int)json_object_array_length(profiles); i++) {
		p = json_object_array_get_idx(profiles, i);
		s = json_object_object_get(p, "samples");
		CHECK(json_object_array_length(s) ==
		      json_object_array_length(json_object_object_get(p, "weights")),
		      "a weight per sample");
	}
	if (what == WHAT_OFFCPU) {
		p = json_object_array_get_idx(profiles, 0);
		CHECK(!strcmp(json_object_get_string(json_object_object_get(p, "name")),
			      "Thread 100 \"bad\xef\xbf\xbd\"<\" (main), process 100: off-CPU"),
		      "profile name: %s", json_object_get_string(json_object_object_get(p, "name")));
		s = json_object_array_get_idx(json_object_object_get(p, "samples"), 0);
		/* main, evil, [sleep]: outermost first */
		CHECK(json_object_array_length(s) == 3, "stack with the reason leaf");
		CHECK(!strcmp(json_object_get_string(json_object_object_get(
			      json_object_array_get_idx(frames, json_object_get_int(
				      json_object_array_get_idx(s, 0))), "name")), "main"),
		      "outermost first");
		CHECK(!strcmp(json_object_get_string(json_object_object_get(
			      json_object_array_get_idx(frames, json_object_get_int(
				      json_object_array_get_idx(s, 2))), "name")), "[sleep]"),
		      "reason leaf");
	}
	json_object_put(root);
	free(buf);
}

/* --- --children: the root, a forked child (same executable), a spawned one (another) --- */
static struct rframe fr_child[] = {
	{ "nap", "/app/a.py", 40, 38 },
	{ "main", "/app/a.py", 30, 25 },
};
static struct rthread child_threads[] = { { .tid = 200, .name = "kid" } };
static struct rthread other_threads[] = { { .tid = 300, .name = "other" } };
static struct rblocker child_blockers[] = {
	{ .pid = 200, .tid = 200, .reason = HT_R_SLEEP, .syscall = -1, .total_ns = 300000000,
	  .count = 1, .stack = { fr_child, 2, false, false } },
};
static struct rblocker other_blockers[] = {
	{ .pid = 300, .tid = 300, .reason = HT_R_SLEEP, .syscall = -1, .total_ns = 100000000,
	  .count = 1, .stack = { fr_child, 2, false, false } },
};
static struct report kids[2];

static struct report make_family(enum report_what what)
{
	struct report r = make_report(what);

	kids[0] = (struct report){ .pid = 200, .ppid = 100, .exe = "/usr/bin/python3",
				   .cmdline = "python3 -c kid", .python = "3.12.1",
				   .threads = child_threads, .nr_threads = 1,
				   .blockers = child_blockers, .nr_blockers = 1 };
	kids[1] = (struct report){ .pid = 300, .ppid = 200, .exe = "/opt/py/bin/python3.13",
				   .cmdline = "python3.13 other.py", .python = "3.13.0",
				   .threads = other_threads, .nr_threads = 1,
				   .blockers = other_blockers, .nr_blockers = 1 };
	r.children = kids;
	r.nr_children = 2;
	return r;
}

/* The pid label of sample @i, -1 if none. */
static int64_t sample_pid(const struct decoded *d, int i)
{
	int k, key = str_index(d, "pid");

	for (k = 0; k < d->sample_labels[i]; k++)
		if ((int)d->sample_label_keys[i][k] == key)
			return (int64_t)d->sample_label_nums[i][k];
	return -1;
}

/* The location of sample @i's leaf, as an index into d->loc_*. */
static int leaf_loc(const struct decoded *d, int i)
{
	int k;

	for (k = 0; k < d->nlocs; k++)
		if (d->loc_ids[k] == d->sample_locs[i][0])
			return k;
	return -1;
}

static void check_pprof_children(void)
{
	struct report r = make_family(WHAT_OFFCPU);
	int i, k, seen[3] = { 0 }, lk[3] = { -1, -1, -1 };
	struct decoded d;
	char *buf = NULL;
	size_t len = 0, plen = 0;
	uint8_t *pb;
	FILE *f = open_memstream(&buf, &len);

	CHECK(pprof__write(&r, f) == 0, "pprof__write with children");
	fclose(f);
	pb = gunzip(buf, len, &plen);
	CHECK(pb != NULL, "gunzip");
	if (!pb) {
		free(buf);
		return;
	}
	decode(pb, plen, &d);
	CHECK(!d.bad, "protobuf walks to its end");
	/* the root's 2 off-CPU blockers, then one per child */
	CHECK(d.nsamples == 4, "%d samples, want 4", d.nsamples);
	for (i = 0; i < d.nsamples; i++) {
		int64_t pid = sample_pid(&d, i);

		k = pid == 100 ? 0 : pid == 200 ? 1 : pid == 300 ? 2 : -1;
		CHECK(k >= 0, "sample %d: pid label %lld", i, (long long)pid);
		if (k < 0)
			continue;
		seen[k]++;
		if (k)
			lk[k] = leaf_loc(&d, i);
	}
	CHECK(seen[0] == 2 && seen[1] == 1 && seen[2] == 1, "samples by process %d %d %d",
	      seen[0], seen[1], seen[2]);
	/* one mapping per executable: the root and its forked child share one */
	CHECK(d.nmaps == 2, "%d mappings, want 2", d.nmaps);
	CHECK(d.nmaps == 2 && d.map_ids[0] == 1 && d.map_ids[1] == 2, "mapping ids 1, 2");
	CHECK(d.nmaps == 2 && !strcmp(d.strs[d.map_files[0]], "/usr/bin/python3") &&
	      !strcmp(d.strs[d.map_files[1]], "/opt/py/bin/python3.13"), "mapping files");
	for (k = 0; k < d.nlocs; k++)
		CHECK(d.loc_maps[k] == 1 || d.loc_maps[k] == 2, "location %d has a mapping", k);
	/* the same frame in two executables: two locations, one in each mapping, one function */
	CHECK(lk[1] >= 0 && lk[2] >= 0 && lk[1] != lk[2], "leaf locations %d %d", lk[1], lk[2]);
	if (lk[1] >= 0 && lk[2] >= 0) {
		CHECK(d.loc_maps[lk[1]] == 1 && d.loc_maps[lk[2]] == 2, "leaf mappings %llu %llu",
		      (unsigned long long)d.loc_maps[lk[1]], (unsigned long long)d.loc_maps[lk[2]]);
		CHECK(d.loc_funcs[lk[1]] == d.loc_funcs[lk[2]], "one function nap(/app/a.py:38)");
	}
	/* a comment per process */
	CHECK(d.ncomments == 4, "%d comments, want 4", d.ncomments);
	CHECK(str_index(&d, "process 100 (Python 3.12.1, /usr/bin/python3): python3 a.py \xef\xbf\xbd") > 0,
	      "root's comment");
	CHECK(str_index(&d, "child process 200 of 100 (Python 3.12.1, /usr/bin/python3): "
			    "python3 -c kid") > 0, "child's comment");
	CHECK(str_index(&d, "child process 300 of 200 (Python 3.13.0, /opt/py/bin/python3.13): "
			    "python3.13 other.py") > 0, "grandchild's comment");
	for (i = 0; i < d.nstrs; i++)
		free(d.strs[i]);
	free(pb);
	free(buf);
}

static void check_speedscope_children(void)
{
	struct report r = make_family(WHAT_OFFCPU);
	static const char *const want[] = {
		"Thread 100 \"bad\xef\xbf\xbd\"<\" (main), process 100: off-CPU",
		"Thread 101 \"worker\", process 100: off-CPU",
		"Thread 200 \"kid\" (main), child process 200 of 100: off-CPU",
		"Thread 300 \"other\" (main), child process 300 of 200: off-CPU",
	};
	json_object *root, *profiles, *p;
	char *buf = NULL;
	size_t len = 0, i;
	FILE *f = open_memstream(&buf, &len);

	CHECK(speedscope__write(&r, f) == 0, "speedscope__write with children");
	fclose(f);
	root = json_tokener_parse(buf);
	CHECK(root != NULL, "speedscope JSON parses");
	if (!root) {
		free(buf);
		return;
	}
	profiles = json_object_object_get(root, "profiles");
	CHECK(json_object_array_length(profiles) == 4, "%zu profiles, want 4",
	      json_object_array_length(profiles));
	for (i = 0; i < 4 && i < json_object_array_length(profiles); i++) {
		p = json_object_array_get_idx(profiles, i);
		CHECK(!strcmp(json_object_get_string(json_object_object_get(p, "name")), want[i]),
		      "profile %zu: %s", i, json_object_get_string(json_object_object_get(p, "name")));
	}
	CHECK(strstr(json_object_get_string(json_object_object_get(root, "name")),
		     "and its child processes") != NULL, "the file's name says children are in");
	json_object_put(root);
	free(buf);
}

int main(void)
{
	/* 2 off-CPU blockers (the on-CPU one left out), 1 sample */
	check_pprof(WHAT_OFFCPU, 2, 2);
	check_pprof(WHAT_ONCPU, 2, 1);
	check_pprof(WHAT_ALL, 4, 3);
	/* main + worker off-CPU; main on-CPU */
	check_speedscope(WHAT_OFFCPU, 2);
	check_speedscope(WHAT_ONCPU, 1);
	check_speedscope(WHAT_ALL, 3);
	check_pprof_children();
	check_speedscope_children();
	return CHECK_SUMMARY();
}
