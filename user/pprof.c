// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pprof output: the report encoded as profile.proto (protobuf wire format:
 * varints and length-delimited fields, written here directly), then gzipped
 * with zlib, as go tool pprof, Pyroscope, Parca and Grafana read it.
 *
 * Conventions of the format that matter to its readers: string_table[0] is
 * ""; every id is non-zero; a sample's location_id[0] is the leaf; each
 * sample has one value per sample_type.  Python frames have no addresses:
 * each (function, line) is one location with one line, in the mapping of its
 * process's executable, which says functions, file names and lines are all
 * there (nothing to symbolize).
 *
 * With --children every traced process is in the one profile, its samples
 * labelled with its pid.  Processes that run the same executable share its
 * mapping; a location belongs to one mapping, so locations are keyed by
 * mapping too.  A function is keyed by its name, file and def line: the same
 * source function in two processes is one function, as readers merge it
 * anyway, and the same name in different files (or at different def lines)
 * stays apart.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "env.h"
#include "intern.h"
#include "pprof.h"
#include "report.h"
#include "syscalls.h"
#include "utf8.h"

/* profile.proto field numbers */
enum {
	PROFILE_SAMPLE_TYPE = 1,
	PROFILE_SAMPLE = 2,
	PROFILE_MAPPING = 3,
	PROFILE_LOCATION = 4,
	PROFILE_FUNCTION = 5,
	PROFILE_STRING_TABLE = 6,
	PROFILE_TIME_NANOS = 9,
	PROFILE_DURATION_NANOS = 10,
	PROFILE_PERIOD_TYPE = 11,
	PROFILE_PERIOD = 12,
	PROFILE_COMMENT = 13,
	PROFILE_DEFAULT_SAMPLE_TYPE = 14,

	VALUE_TYPE_TYPE = 1,
	VALUE_TYPE_UNIT = 2,

	SAMPLE_LOCATION_ID = 1,
	SAMPLE_VALUE = 2,
	SAMPLE_LABEL = 3,

	LABEL_KEY = 1,
	LABEL_STR = 2,
	LABEL_NUM = 3,

	MAPPING_ID = 1,
	MAPPING_FILENAME = 5,
	MAPPING_HAS_FUNCTIONS = 7,
	MAPPING_HAS_FILENAMES = 8,
	MAPPING_HAS_LINE_NUMBERS = 9,

	LOCATION_ID = 1,
	LOCATION_MAPPING_ID = 2,
	LOCATION_LINE = 4,

	LINE_FUNCTION_ID = 1,
	LINE_LINE = 2,

	FUNCTION_ID = 1,
	FUNCTION_NAME = 2,
	FUNCTION_SYSTEM_NAME = 3,
	FUNCTION_FILENAME = 4,
	FUNCTION_START_LINE = 5,
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

/* Sample types, in this order; --what picks a run of them. */
static const char *const sample_types[][2] = {
	{ "off_cpu", "nanoseconds" },
	{ "off_cpu_blocks", "count" },
	{ "samples", "count" },
	{ "cpu", "nanoseconds" },
};
enum { VAL_OFF_NS, VAL_OFF_BLOCKS, VAL_SAMPLES, VAL_CPU_NS, NR_VALS };

/* A growing buffer of encoded protobuf; the first failure sticks in err. */
struct pb {
	uint8_t *buf;
	size_t len, cap;
	int err;
};

static void pb_put(struct pb *b, const void *p, size_t n)
{
	uint8_t *grown;
	size_t cap;

	if (b->err || !n)
		return;
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		grown = realloc(b->buf, cap);
		if (!grown) {
			b->err = -ENOMEM;
			return;
		}
		b->buf = grown;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	uint8_t out[10];
	size_t n = 0;

	do {
		out[n] = v & 0x7f;
		v >>= 7;
		if (v)
			out[n] |= 0x80;
		n++;
	} while (v);
	pb_put(b, out, n);
}

/* A varint field; zero is the default and is left out (proto3). */
static void pb_uint(struct pb *b, int field, uint64_t v)
{
	if (!v)
		return;
	pb_varint(b, (uint64_t)field << 3 | WIRE_VARINT);
	pb_varint(b, v);
}

/* int64 fields are plain varints of the two's complement. */
static void pb_int(struct pb *b, int field, int64_t v)
{
	pb_uint(b, field, (uint64_t)v);
}

/* A length-delimited field: a string, a sub-message, packed scalars.  Always written. */
static void pb_bytes(struct pb *b, int field, const void *p, size_t n)
{
	pb_varint(b, (uint64_t)field << 3 | WIRE_LEN);
	pb_varint(b, n);
	pb_put(b, p, n);
}

/* Append sub-message @sub as @field of @b, and empty @sub for reuse. */
static void pb_msg(struct pb *b, int field, struct pb *sub)
{
	if (sub->err && !b->err)
		b->err = sub->err;
	pb_bytes(b, field, sub->buf, sub->len);
	sub->len = 0;
	sub->err = 0;
}

static void pb_free(struct pb *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

struct builder {
	const struct report *r;		/* the root */
	const struct report *proc;	/* the process whose samples are being added */
	uint64_t mapping;		/* its mapping's id */
	struct intern *strs;		/* the string table */
	struct intern *funcs;		/* "name:file:start_line" (string numbers) -> id - 1 */
	struct intern *locs;		/* "mapping_id:function_id:line" -> id - 1 */
	struct intern *maps;		/* executable (string number) -> mapping id - 1 */
	struct pb head;			/* everything but the string table */
	struct pb mappings, locations, functions; /* encoded Mapping, Location, Function fields */
	struct pb msg, sub;		/* scratch */
	uint64_t *ids;			/* one sample's location ids */
	size_t ids_cap;
	int first, nvals;		/* the sample types --what keeps */
	int err;
};

static void fail(struct builder *p, int err)
{
	if (!p->err)
		p->err = err;
}

/* The string table index of @s, made valid UTF-8 (Go's decoder insists). */
static int64_t str_idx(struct builder *p, const char *s)
{
	uint32_t idx = 0;
	char *clean;
	int err;

	clean = utf8_sanitize(s ? s : "");
	if (!clean) {
		fail(p, -ENOMEM);
		return 0;
	}
	err = intern__add(p->strs, clean, &idx);
	free(clean);
	if (err < 0) {
		fail(p, err);
		return 0;
	}
	return idx;
}

/*
 * A function: @name is the qualname (3.11+) or the name; its system_name is
 * "FILE:NAME", which also keeps pprof's C++ demangling heuristics (that
 * strip "<...>" when name and system_name are equal) off "<module>",
 * "<lambda>", "<listcomp>" and hostile names.
 */
static uint64_t function_id(struct builder *p, const char *name, const char *file, int start_line)
{
	int64_t n = str_idx(p, name), fn = str_idx(p, file), sys;
	uint32_t idx = 0;
	char key[64], *sysname;
	int added;

	snprintf(key, sizeof(key), "%lld:%lld:%d", (long long)n, (long long)fn, start_line);
	added = intern__add(p->funcs, key, &idx);
	if (added < 0) {
		fail(p, added);
		return 0;
	}
	if (added) {
		if (asprintf(&sysname, "%s:%s", file, name) < 0) {
			fail(p, -ENOMEM);
			return 0;
		}
		sys = str_idx(p, sysname);
		free(sysname);
		pb_uint(&p->msg, FUNCTION_ID, idx + 1);
		pb_int(&p->msg, FUNCTION_NAME, n);
		pb_int(&p->msg, FUNCTION_SYSTEM_NAME, sys);
		pb_int(&p->msg, FUNCTION_FILENAME, fn);
		pb_int(&p->msg, FUNCTION_START_LINE, start_line > 0 ? start_line : 0);
		pb_msg(&p->functions, PROFILE_FUNCTION, &p->msg);
	}
	return idx + 1;
}

static uint64_t location_id(struct builder *p, const char *name, const char *file, int start_line,
			    int line)
{
	uint64_t fid = function_id(p, name, file, start_line);
	uint32_t idx = 0;
	char key[64];
	int added;

	if (line < 0)
		line = 0;
	snprintf(key, sizeof(key), "%llu:%llu:%d", (unsigned long long)p->mapping,
		 (unsigned long long)fid, line);
	added = intern__add(p->locs, key, &idx);
	if (added < 0) {
		fail(p, added);
		return 0;
	}
	if (added) {
		pb_uint(&p->sub, LINE_FUNCTION_ID, fid);
		pb_int(&p->sub, LINE_LINE, line);
		pb_uint(&p->msg, LOCATION_ID, idx + 1);
		pb_uint(&p->msg, LOCATION_MAPPING_ID, p->mapping);
		pb_msg(&p->msg, LOCATION_LINE, &p->sub);
		pb_msg(&p->locations, PROFILE_LOCATION, &p->msg);
	}
	return idx + 1;
}

static void label_str(struct builder *p, const char *key, const char *val)
{
	pb_int(&p->sub, LABEL_KEY, str_idx(p, key));
	pb_int(&p->sub, LABEL_STR, str_idx(p, val));
	pb_msg(&p->msg, SAMPLE_LABEL, &p->sub);
}

static void label_num(struct builder *p, const char *key, int64_t num)
{
	pb_int(&p->sub, LABEL_KEY, str_idx(p, key));
	pb_int(&p->sub, LABEL_NUM, num);
	pb_msg(&p->msg, SAMPLE_LABEL, &p->sub);
}

static const struct rthread *find_thread(const struct report *r, uint32_t tid)
{
	size_t k;

	for (k = 0; k < r->nr_threads; k++)
		if (r->threads[k].tid == tid)
			return &r->threads[k];
	return NULL;
}

/* Packed repeated varints. */
static void pb_packed(struct builder *p, int field, const uint64_t *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		pb_varint(&p->sub, v[i]);
	pb_msg(&p->msg, field, &p->sub);
}

/* One sample: @st leaf first, then a <truncated> root if it was cut; @vals by sample type. */
static void add_sample(struct builder *p, uint32_t pid, uint32_t tid, const struct rstack *st,
		       const uint64_t vals[NR_VALS], const char *reason, int syscall,
		       bool event_loop)
{
	const struct rthread *t = find_thread(p->proc, tid);
	size_t n = 0, need = st->depth + 2;
	const char *sc = syscall_name(syscall);
	uint64_t *grown;
	int i;

	if (need > p->ids_cap) {
		grown = realloc(p->ids, need * sizeof(*grown));
		if (!grown) {
			fail(p, -ENOMEM);
			return;
		}
		p->ids = grown;
		p->ids_cap = need;
	}
	for (i = 0; i < st->depth; i++)
		p->ids[n++] = location_id(p, st->frames[i].function, st->frames[i].file,
					  st->frames[i].start_line, st->frames[i].line);
	if (st->truncated)
		p->ids[n++] = location_id(p, "<truncated>", "", 0, 0);
	if (!n)
		p->ids[n++] = location_id(p, "<no Python frames>", "", 0, 0);
	/* every location first: location_id() encodes in p->msg and p->sub too */
	pb_packed(p, SAMPLE_LOCATION_ID, p->ids, n);
	pb_packed(p, SAMPLE_VALUE, vals + p->first, p->nvals);
	label_num(p, "pid", pid);
	label_num(p, "tid", tid);
	label_str(p, "thread", t ? t->name : "");
	label_str(p, "reason", reason);
	label_str(p, "event_loop", event_loop ? "true" : "false");
	if (sc)
		label_str(p, "syscall", sc);
	pb_msg(&p->head, PROFILE_SAMPLE, &p->msg);
}

static void value_type(struct builder *p, int field, int type)
{
	pb_int(&p->msg, VALUE_TYPE_TYPE, str_idx(p, sample_types[type][0]));
	pb_int(&p->msg, VALUE_TYPE_UNIT, str_idx(p, sample_types[type][1]));
	pb_msg(&p->head, field, &p->msg);
}

static void comment(struct builder *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void comment(struct builder *p, const char *fmt, ...)
{
	va_list ap;
	char *line;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	if (n < 0) {
		fail(p, -ENOMEM);
		return;
	}
	pb_int(&p->head, PROFILE_COMMENT, str_idx(p, line));
	free(line);
}

/*
 * The id of the mapping of executable @exe, added to p->mappings if new:
 * no addresses (Python frames have none), everything already symbolized.
 */
static uint64_t mapping_id(struct builder *p, const char *exe)
{
	int64_t fn = str_idx(p, exe ? exe : "python");
	uint32_t idx = 0;
	char key[24];
	int added;

	snprintf(key, sizeof(key), "%lld", (long long)fn);
	added = intern__add(p->maps, key, &idx);
	if (added < 0) {
		fail(p, added);
		return 0;
	}
	if (added) {
		pb_uint(&p->msg, MAPPING_ID, idx + 1);
		pb_int(&p->msg, MAPPING_FILENAME, fn);
		pb_uint(&p->msg, MAPPING_HAS_FUNCTIONS, 1);
		pb_uint(&p->msg, MAPPING_HAS_FILENAMES, 1);
		pb_uint(&p->msg, MAPPING_HAS_LINE_NUMBERS, 1);
		pb_msg(&p->mappings, PROFILE_MAPPING, &p->msg);
	}
	return idx + 1;
}

/* The samples of process @proc: its off-CPU blockers, its on-CPU samples, as r->what asks. */
static void add_process(struct builder *p, const struct report *proc, bool offcpu, bool oncpu)
{
	uint64_t vals[NR_VALS];
	size_t i;

	p->proc = proc;
	p->mapping = mapping_id(p, proc->exe);
	/* off-CPU: on-CPU blockers of loop threads are in the samples (as in folded) */
	for (i = 0; offcpu && i < proc->nr_blockers; i++) {
		const struct rblocker *b = &proc->blockers[i];

		if (b->on_cpu)
			continue;
		memset(vals, 0, sizeof(vals));
		vals[VAL_OFF_NS] = b->total_ns;
		vals[VAL_OFF_BLOCKS] = b->count;
		add_sample(p, b->pid, b->tid, &b->stack, vals, reason_name(b->reason), b->syscall,
			   b->event_loop);
	}
	for (i = 0; oncpu && i < proc->nr_samples; i++) {
		const struct rsample *sm = &proc->samples[i];
		const struct rthread *th = find_thread(proc, sm->tid);

		memset(vals, 0, sizeof(vals));
		vals[VAL_SAMPLES] = sm->count;
		vals[VAL_CPU_NS] = sm->ns;
		add_sample(p, sm->pid, sm->tid, &sm->stack, vals, "on-cpu", -1,
			   th && th->event_loop);
	}
}

/* "process 42 (Python 3.11.2): CMDLINE", "child process 43 of 42 (...): ..." */
static void comment_process(struct builder *p, const struct report *proc)
{
	char who[64];

	if (proc->ppid)
		snprintf(who, sizeof(who), "child process %u of %u", proc->pid, proc->ppid);
	else
		snprintf(who, sizeof(who), "process %u", proc->pid);
	comment(p, "%s (Python %s, %s): %s", who, proc->python ? proc->python : "?",
		proc->exe ? proc->exe : "?", proc->cmdline ? proc->cmdline : "?");
}

/* Build the whole profile.proto in p->head (string table last). */
static void build(struct builder *p)
{
	const struct report *r = p->r;
	bool oncpu = r->what != WHAT_OFFCPU, offcpu = r->what != WHAT_ONCPU;
	const char *s;
	size_t i;
	int t;

	str_idx(p, "");			/* string_table[0] */
	p->first = offcpu ? VAL_OFF_NS : VAL_SAMPLES;
	p->nvals = (oncpu ? NR_VALS : VAL_SAMPLES) - p->first;
	for (t = p->first; t < p->first + p->nvals; t++)
		value_type(p, PROFILE_SAMPLE_TYPE, t);

	for (i = 0; i < report__nr_procs(r); i++)
		add_process(p, report__proc(r, i), offcpu, oncpu);

	pb_put(&p->head, p->mappings.buf, p->mappings.len);
	pb_put(&p->head, p->locations.buf, p->locations.len);
	pb_put(&p->head, p->functions.buf, p->functions.len);

	pb_int(&p->head, PROFILE_TIME_NANOS, (int64_t)r->start_unix_ns);
	pb_int(&p->head, PROFILE_DURATION_NANOS, (int64_t)r->duration_ns);
	/* on-CPU data is sampled every period; off-CPU data is every block (period 1) */
	if (oncpu && r->sample_period_ns) {
		value_type(p, PROFILE_PERIOD_TYPE, VAL_CPU_NS);
		pb_int(&p->head, PROFILE_PERIOD, (int64_t)r->sample_period_ns);
	} else {
		value_type(p, PROFILE_PERIOD_TYPE, offcpu ? VAL_OFF_NS : VAL_CPU_NS);
		pb_int(&p->head, PROFILE_PERIOD, offcpu ? 1 : 0);
	}
	comment(p, "%s", "hangtrace " HANGTRACE_VERSION);
	for (i = 0; i < report__nr_procs(r); i++)
		comment_process(p, report__proc(r, i));
	pb_int(&p->head, PROFILE_DEFAULT_SAMPLE_TYPE,
	       str_idx(p, sample_types[offcpu ? VAL_OFF_NS : VAL_CPU_NS][0]));

	for (i = 0; i < intern__count(p->strs); i++) {
		s = intern__str(p->strs, i);
		pb_bytes(&p->head, PROFILE_STRING_TABLE, s, strlen(s));
	}
	fail(p, p->mappings.err);
	fail(p, p->locations.err);
	fail(p, p->functions.err);
	fail(p, p->head.err);
}

/* @b gzipped into @f. */
static int gzip_write(const struct pb *b, FILE *f)
{
	unsigned char out[64 * 1024];
	z_stream z;
	int ret, err = 0;
	size_t n;

	if (b->len > UINT_MAX)
		return -E2BIG;
	memset(&z, 0, sizeof(z));
	/* windowBits 15 + 16: a gzip header and trailer, not zlib's */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	z.next_in = b->buf;
	z.avail_in = (uInt)b->len;
	do {
		z.next_out = out;
		z.avail_out = sizeof(out);
		ret = deflate(&z, Z_FINISH);
		if (ret == Z_STREAM_ERROR) {
			err = -EIO;
			break;
		}
		n = sizeof(out) - z.avail_out;
		if (n && fwrite(out, 1, n, f) != n) {
			err = errno ? -errno : -EIO;
			break;
		}
	} while (ret != Z_STREAM_END);
	deflateEnd(&z);
	return err;
}

int pprof__write(const struct report *r, FILE *f)
{
	struct builder p = { .r = r };
	int err;

	p.strs = intern__new();
	p.funcs = intern__new();
	p.locs = intern__new();
	p.maps = intern__new();
	if (!p.strs || !p.funcs || !p.locs || !p.maps) {
		err = -ENOMEM;
		goto cleanup;
	}
	build(&p);
	err = p.err;
	if (!err)
		err = gzip_write(&p.head, f);
	if (!err && ferror(f))
		err = -EIO;
cleanup:
	intern__free(p.strs);
	intern__free(p.funcs);
	intern__free(p.locs);
	intern__free(p.maps);
	pb_free(&p.head);
	pb_free(&p.mappings);
	pb_free(&p.locations);
	pb_free(&p.functions);
	pb_free(&p.msg);
	pb_free(&p.sub);
	free(p.ids);
	if (err)
		errno = -err;
	return err;
}
