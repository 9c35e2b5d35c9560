// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `hangtrace agent`: the command line, the lifecycle and the loop.
 *
 * One BPF session for the whole host.  Processes are found by a /proc scan at
 * start and then as they exec (the tracer's exec notification: every process
 * is followed, so its children's forks, execs and exits are reported), with a
 * slow rescan as a safety net.  Every --flush-interval each process's report
 * is built (analyze.c: the same model as `hangtrace -p`): new stalls become
 * JSON lines and histogram samples, off-CPU time by reason feeds the
 * counters.  Every --profile-interval the window closes: profiles are written
 * and pushed, and the aggregates start again, so memory stays bounded.
 * Signals arrive on a signalfd and are handled in the loop.
 */
#include <argp.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "analyze.h"
#include "cli.h"
#include "env.h"
#include "ksyms.h"
#include "log.h"
#include "output.h"
#include "pprof.h"
#include "pyproc.h"
#include "pysym.h"
#include "report.h"
#include "strmap.h"
#include "tracer.h"
#include "utf8.h"

/* --- command line ------------------------------------------------------- */

struct agent_env {
	const char *metrics_addr;	/* NULL or "none": no endpoint */
	const char *events;		/* NULL: none; "-": stdout */
	const char *profile_dir;
	bool profile_folded, profile_pprof;	/* --profile-format */
	uint64_t profile_ns;
	unsigned int profile_keep;
	uint64_t profile_max_age_s;
	const char *pyroscope;
	unsigned int push_queue;
	uint64_t push_timeout_ns;
	uint64_t flush_ns;
	uint64_t rescan_ns;
	uint64_t min_block_ns;
	uint64_t stall_ns;
	uint32_t sample_hz;
	uint32_t max_frames;
	unsigned int max_procs;
	unsigned int max_services;
	unsigned int max_events;
	unsigned int max_stacks;
	unsigned int max_aggregates;
	unsigned int max_symbols;
	struct agent_filter include, exclude;
	int verbose;
	bool quiet;
	bool pid_label;
};

static const char agent_doc[] =
	"hangtrace agent: every CPython process of the host, always on.\n"
	"\n"
	"USAGE: hangtrace agent [--metrics-addr HOST:PORT] [--events FILE|-]\n"
	"                       [--profile-dir DIR] [--pyroscope URL] [--include PAT] [--exclude PAT]\n"
	"\n"
	"Traces every CPython process (3.6-3.15, in containers too) that runs or starts\n"
	"while it runs, with one BPF session.  Serves Prometheus metrics (event-loop\n"
	"stall histogram, off-CPU seconds by reason, GIL waits, losses, its own CPU and\n"
	"memory), writes one JSON line per event-loop stall (blocker stack, reason,\n"
	"waker, hint), and writes/pushes off- and on-CPU profiles every interval.\n"
	"SIGTERM/SIGINT flush and exit; SIGHUP reopens the events file.  Needs root.\n"
	"\n"
	"PATTERNS: exe:REGEX, cmdline:REGEX, cgroup:REGEX, or a bare REGEX (command line).\n"
	"\n"
	"EXAMPLES:\n"
	"    hangtrace agent                                   # metrics on 127.0.0.1:9464\n"
	"    hangtrace agent --events /var/log/hangtrace/stalls.jsonl\n"
	"    hangtrace agent --profile-dir /var/lib/hangtrace --pyroscope http://pyroscope:4040\n"
	"    hangtrace agent --include 'cgroup:payments' --exclude 'cmdline:pytest'\n";

enum {
	OPT_METRICS_ADDR = 1000,
	OPT_EVENTS,
	OPT_PROFILE_DIR,
	OPT_PROFILE_INTERVAL,
	OPT_PROFILE_FORMAT,
	OPT_PROFILE_KEEP,
	OPT_PROFILE_MAX_AGE,
	OPT_PYROSCOPE,
	OPT_PUSH_QUEUE,
	OPT_PUSH_TIMEOUT,
	OPT_FLUSH,
	OPT_RESCAN,
	OPT_MIN_BLOCK,
	OPT_STALL,
	OPT_SAMPLE_HZ,
	OPT_MAX_FRAMES,
	OPT_MAX_PROCS,
	OPT_MAX_SERVICES,
	OPT_MAX_EVENTS,
	OPT_MAX_STACKS,
	OPT_MAX_AGGREGATES,
	OPT_MAX_SYMBOLS,
	OPT_INCLUDE,
	OPT_EXCLUDE,
	OPT_PID_LABEL,
};

static const struct argp_option agent_opts[] = {
	{ NULL, 0, NULL, OPTION_DOC, "Outputs (any combination):", 1 },
	{ "metrics-addr", OPT_METRICS_ADDR, "HOST:PORT", 0,
	  "Serve Prometheus metrics at http://HOST:PORT/metrics (default 127.0.0.1:9464; 'none': off)", 1 },
	{ "events", OPT_EVENTS, "FILE", 0, "Append one JSON line per stall to FILE ('-': stdout)", 1 },
	{ "profile-dir", OPT_PROFILE_DIR, "DIR", 0, "Write a profile per process every interval into DIR", 1 },
	{ "profile-format", OPT_PROFILE_FORMAT, "FMT", 0, "pprof, folded or both (default both)", 1 },
	{ "profile-interval", OPT_PROFILE_INTERVAL, "SECONDS", 0, "Profile window (default 60)", 1 },
	{ "profile-keep", OPT_PROFILE_KEEP, "N", 0, "Keep at most N profile files in DIR (default 1000)", 1 },
	{ "profile-max-age", OPT_PROFILE_MAX_AGE, "SECONDS", 0, "Remove profile files older than this (default 86400; 0: never)", 1 },
	{ "pyroscope", OPT_PYROSCOPE, "URL", 0, "Push profiles to this Pyroscope server (URL/ingest)", 1 },
	{ "pyroscope-queue", OPT_PUSH_QUEUE, "N", 0, "Profiles waiting to be pushed, at most (default 64)", 1 },
	{ "pyroscope-timeout", OPT_PUSH_TIMEOUT, "SECONDS", 0, "Per push attempt (default 5)", 1 },
	{ NULL, 0, NULL, OPTION_DOC, "Which processes:", 2 },
	{ "include", OPT_INCLUDE, "PATTERN", 0, "Trace only processes matching one of these (repeatable)", 2 },
	{ "exclude", OPT_EXCLUDE, "PATTERN", 0, "Never trace processes matching this (repeatable)", 2 },
	{ NULL, 0, NULL, OPTION_DOC, "Tracing and limits:", 3 },
	{ "flush-interval", OPT_FLUSH, "SECONDS", 0, "Build reports, emit stalls and update metrics this often (default 2)", 3 },
	{ "rescan-interval", OPT_RESCAN, "SECONDS", 0, "Rescan /proc this often, besides exec notifications (default 10)", 3 },
	{ "min-block", OPT_MIN_BLOCK, "MS", 0, "Blocks shorter than this are only summed (default 1)", 3 },
	{ "stall", OPT_STALL, "MS", 0, "A loop iteration this long is a stall (default 100)", 3 },
	{ "sample-hz", OPT_SAMPLE_HZ, "HZ", 0, "On-CPU samples per second per CPU; 0: off (default 49)", 3 },
	{ "max-frames", OPT_MAX_FRAMES, "N", 0, "Python frames kept per stack, 1-128 (default 64)", 3 },
	{ "max-processes", OPT_MAX_PROCS, "N", 0, "Processes traced at once, at most (default 256)", 3 },
	{ "max-services", OPT_MAX_SERVICES, "N", 0, "Distinct service label sets, at most (default 200)", 3 },
	{ "pid-label", OPT_PID_LABEL, NULL, 0, "Add a pid label: one series per process, not per service (bounded by --max-services)", 3 },
	{ "max-events", OPT_MAX_EVENTS, "N", 0, "Timeline events kept per process per window (default 65536)", 3 },
	{ "max-stacks", OPT_MAX_STACKS, "N", 0, "Distinct Python stacks, and kernel stacks, kept per window (default 8192)", 3 },
	{ "max-aggregates", OPT_MAX_AGGREGATES, "N", 0, "Off-CPU aggregates, and on-CPU sample keys, kept per window (default 16384)", 3 },
	{ "max-symbols", OPT_MAX_SYMBOLS, "N", 0, "Code objects cached per process per window (default 4096)", 3 },
	{ "quiet", 'q', NULL, 0, "Nothing on stderr but warnings and errors", 4 },
	{ "verbose", 'v', NULL, 0, "More diagnostics; -vv adds libbpf debug output", 4 },
	{},
};

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned int *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * The numeric options, one row each: how the argument is read, what range it
 * must be in, which field of struct agent_env takes it, and what the error
 * says ("bad WHAT 'ARG'", then " (MIN-MAX)" or " (HINT)" when given).
 */
struct num_opt {
	int key;
	bool duration;		/* parse_duration() with @unit_ns; else a plain count */
	uint64_t unit_ns;	/* what a bare number means (durations) */
	uint64_t min, max;	/* accepted range: nanoseconds for durations */
	uint64_t div;		/* durations: stored divided by this (1: nanoseconds) */
	size_t off, size;	/* the field: an unsigned int or a uint64_t */
	const char *what;
	const char *hint;	/* NULL: none */
	bool show_range;
};

#define NUM_DURATION(k, unit, lo, d, field, h) \
	{ .key = (k), .duration = true, .unit_ns = (unit), .min = (lo), .max = UINT64_MAX, \
	  .div = (d), .off = offsetof(struct agent_env, field), \
	  .size = sizeof(((struct agent_env *)0)->field), .what = "duration", .hint = (h) }
#define NUM_COUNT(k, lo, hi, field, w, range) \
	{ .key = (k), .min = (lo), .max = (hi), .off = offsetof(struct agent_env, field), \
	  .size = sizeof(((struct agent_env *)0)->field), .what = (w), .show_range = (range) }

#define SECOND 1000000000ULL
#define DURATION_HINT "at least 100ms; 2, 2.5, 500ms, 1m"
#define MS_HINT "milliseconds, or 250us, 2s"

static const struct num_opt num_opts[] = {
	NUM_DURATION(OPT_PROFILE_INTERVAL, SECOND, SECOND / 10, 1, profile_ns, DURATION_HINT),
	NUM_DURATION(OPT_FLUSH, SECOND, SECOND / 10, 1, flush_ns, DURATION_HINT),
	NUM_DURATION(OPT_RESCAN, SECOND, SECOND / 10, 1, rescan_ns, DURATION_HINT),
	NUM_DURATION(OPT_PUSH_TIMEOUT, SECOND, SECOND / 10, 1, push_timeout_ns, DURATION_HINT),
	NUM_DURATION(OPT_PROFILE_MAX_AGE, SECOND, 0, SECOND, profile_max_age_s, NULL),
	NUM_DURATION(OPT_MIN_BLOCK, 1000000ULL, 1, 1, min_block_ns, MS_HINT),
	NUM_DURATION(OPT_STALL, 1000000ULL, 1, 1, stall_ns, MS_HINT),
	NUM_COUNT(OPT_SAMPLE_HZ, 0, 10000, sample_hz, "--sample-hz", true),
	NUM_COUNT(OPT_MAX_FRAMES, 1, HT_MAX_PY_FRAMES, max_frames, "--max-frames", true),
	NUM_COUNT(OPT_PROFILE_KEEP, 1, 10000000, profile_keep, "number", false),
	NUM_COUNT(OPT_MAX_PROCS, 1, 10000000, max_procs, "number", false),
	NUM_COUNT(OPT_MAX_SERVICES, 1, 10000000, max_services, "number", false),
	NUM_COUNT(OPT_MAX_EVENTS, 1, 10000000, max_events, "number", false),
	NUM_COUNT(OPT_PUSH_QUEUE, 1, 10000000, push_queue, "number", false),
	NUM_COUNT(OPT_MAX_SYMBOLS, 1, 10000000, max_symbols, "number", false),
	/* BPF hash maps: the kernel caps a map's memory, not us; 1M is plenty */
	NUM_COUNT(OPT_MAX_STACKS, 1, 1U << 20, max_stacks, "number", true),
	NUM_COUNT(OPT_MAX_AGGREGATES, 1, 1U << 20, max_aggregates, "number", true),
};

/* Parse @arg for the numeric option @o into @env; argp_error() (exits) when it is bad. */
static void parse_num_opt(const struct num_opt *o, const char *arg, struct agent_env *env,
			  struct argp_state *state)
{
	void *field = (char *)env + o->off;
	unsigned int u = 0;
	uint64_t v;
	bool ok;

	if (o->duration) {
		ok = !parse_duration(arg, o->unit_ns, &v) && v >= o->min;
		v /= o->div;
	} else {
		ok = !parse_uint(arg, o->min, o->max, &u);
		v = u;
	}
	if (!ok) {
		if (o->show_range)
			argp_error(state, "bad %s '%s' (%llu-%llu)", o->what, arg,
				   (unsigned long long)o->min, (unsigned long long)o->max);
		else if (o->hint)
			argp_error(state, "bad %s '%s' (%s)", o->what, arg, o->hint);
		else
			argp_error(state, "bad %s '%s'", o->what, arg);
		return;
	}
	if (o->size == sizeof(uint64_t))
		*(uint64_t *)field = v;
	else
		*(unsigned int *)field = v;
}

static error_t agent_parse_arg(int key, char *arg, struct argp_state *state)
{
	struct agent_env *env = state->input;
	size_t i;

	for (i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]); i++) {
		if (num_opts[i].key == key) {
			parse_num_opt(&num_opts[i], arg, env, state);
			return 0;
		}
	}
	switch (key) {
	case OPT_METRICS_ADDR:
		env->metrics_addr = arg;
		break;
	case OPT_EVENTS:
		env->events = arg;
		break;
	case OPT_PROFILE_DIR:
		env->profile_dir = arg;
		break;
	case OPT_PROFILE_FORMAT:
		if (!strcmp(arg, "both"))
			env->profile_folded = env->profile_pprof = true;
		else if (!strcmp(arg, "pprof") || !strcmp(arg, "folded"))
			env->profile_folded = !(env->profile_pprof = !strcmp(arg, "pprof"));
		else
			argp_error(state, "bad --profile-format '%s' (pprof, folded or both)", arg);
		break;
	case OPT_PYROSCOPE:
		if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8))
			argp_error(state, "--pyroscope wants an http:// or https:// URL, not '%s'", arg);
		env->pyroscope = arg;
		break;
	case OPT_INCLUDE:
		if (agent_filter__add(&env->include, arg))
			argp_failure(state, 2, 0, "bad --include");
		break;
	case OPT_EXCLUDE:
		if (agent_filter__add(&env->exclude, arg))
			argp_failure(state, 2, 0, "bad --exclude");
		break;
	case OPT_PID_LABEL:
		env->pid_label = true;
		break;
	case 'q':
		env->quiet = true;
		break;
	case 'v':
		env->verbose++;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* --- the processes ------------------------------------------------------ */

struct aproc {
	pid_t pid;
	uint64_t starttime;
	struct pyproc *py;
	struct analyze an;
	bool an_ok;
	struct agent_ident id;
	struct agent_service *svc;
	uint64_t last_reason_ns[HT_R_MAX];
	uint64_t last_dropped;		/* timeline drops already counted */
	uint64_t last_sym_hits;		/* symbol cache cap hits already counted */
	struct strmap *emitted;		/* stalls already written this window: (tid, start) */
	uint64_t window_unix_ns;
	bool stall_pending;		/* a stall event arrived since the last report */
};

/* A process seen by the scan that is not (or not yet) traced. */
struct seen {
	uint64_t starttime;
	uint64_t exe_hash;		/* of the executable it ran when last looked at */
	int tries;			/* discovery attempts that failed for a retryable reason */
	bool rejected;			/* not CPython, filtered out, or unsupported: leave it */
};

/* An exec'd process to look at again once its interpreter is up. */
struct pending {
	pid_t pid;
	uint64_t at_ns;			/* CLOCK_MONOTONIC */
	int tries;
};

struct agent {
	struct agent_env *env;
	struct tracer *tr;
	struct ksyms *ks;
	struct agent_metrics m;
	struct agent_events ev;
	bool events_on;
	struct agent_push *push;
	struct aproc **procs;
	size_t nr_procs;
	struct aproc *last;		/* the last event's process: events come in runs */
	struct strmap *seen;		/* pid -> struct seen, rebuilt by every scan */
	struct pending pend[256];
	int nr_pend;
	unsigned int flush_rounds;
	pid_t self;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static uint64_t unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static struct aproc *find_proc(struct agent *ag, uint32_t pid)
{
	size_t i;

	if (ag->last && ag->last->pid == (pid_t)pid)
		return ag->last;
	for (i = 0; i < ag->nr_procs; i++)
		if (ag->procs[i]->pid == (pid_t)pid)
			return ag->last = ag->procs[i];
	return NULL;
}

/* (Re)start @ap's analysis at the current window. */
static int proc_analysis_start(struct agent *ag, struct aproc *ap)
{
	int err;

	if (ap->an_ok) {
		ap->an.ks = NULL;	/* shared: the agent's */
		analyze__fini(&ap->an);
		ap->an_ok = false;
	}
	strmap__free(ap->emitted);
	ap->emitted = strmap__new();
	if (!ap->emitted)
		return -ENOMEM;
	err = analyze__init(&ap->an, ap->py, ag->tr);
	if (err) {
		analyze__fini(&ap->an);
		return err;
	}
	ap->an_ok = true;
	ap->an.min_block_ns = ag->env->min_block_ns;
	ap->an.max_frames = ag->env->max_frames;
	ap->an.stall_ns = ag->env->stall_ns;
	ap->an.sample_hz = ag->env->sample_hz;
	ap->an.tl.max = ag->env->max_events;
	ap->an.ended_only = true;
	ap->an.start_mono_ns = mono_ns();
	ap->an.start_unix_ns = ap->window_unix_ns = unix_ns();
	ap->last_dropped = 0;
	ap->last_sym_hits = 0;
	pysym__set_max(ap->an.sym, ag->env->max_symbols);
	return 0;
}

static void proc_free(struct agent *ag, struct aproc *ap)
{
	if (!ap)
		return;
	if (ap->an_ok) {
		ap->an.ks = NULL;
		analyze__fini(&ap->an);
	}
	(void)ag;
	strmap__free(ap->emitted);
	free(ap->py);
	free(ap);
}

static void cap_hit(struct agent *ag, enum agent_cap cap, const char *fmt, unsigned long v)
{
	pthread_mutex_lock(&ag->m.lock);
	if (!ag->m.caps_hit[cap]++)
		p_warn(fmt, v);
	pthread_mutex_unlock(&ag->m.lock);
}

/*
 * @in made fit for a log line: valid UTF-8, control characters (C0, DEL and
 * C1, terminal escapes among them) as '?'.  Names come from the target.
 */
static void clean(const char *in, char *out, size_t outsz)
{
	char *u = utf8_sanitize(in);
	size_t i, o = 0;

	for (i = 0; u && u[i] && o + 1 < outsz; i++) {
		unsigned char c = u[i];

		if (c == 0xc2 && (unsigned char)u[i + 1] >= 0x80 && (unsigned char)u[i + 1] <= 0x9f) {
			out[o++] = '?';
			i++;
		} else {
			out[o++] = c < 0x20 || c == 0x7f ? '?' : c;
		}
	}
	out[o] = 0;
	free(u);
}

/* Start tracing @py (taken): 0, or -errno (@py freed). */
static int proc_add(struct agent *ag, struct pyproc *py, const struct agent_procinfo *pi)
{
	char exe[128], script[256];
	struct aproc *ap = NULL, **tmp;
	int err;

	if (ag->nr_procs >= ag->env->max_procs) {
		cap_hit(ag, CAP_PROCESSES,
			"more than %lu CPython processes (--max-processes): the rest are not traced "
			"(counted in hangtrace_limit_hits_total{limit=\"processes\"})",
			(unsigned long)ag->env->max_procs);
		free(py);
		return -E2BIG;
	}
	ap = calloc(1, sizeof(*ap));
	tmp = realloc(ag->procs, (ag->nr_procs + 1) * sizeof(*tmp));
	if (!ap || !tmp) {
		free(ap);
		free(py);
		return -ENOMEM;
	}
	ag->procs = tmp;
	ap->pid = py->pid;
	ap->py = py;
	ap->starttime = pi->starttime;
	agent_ident__from(pi, &ap->id);
	if (ag->env->pid_label)
		snprintf(ap->id.pid, sizeof(ap->id.pid), "%d", (int)py->pid);
	err = proc_analysis_start(ag, ap);
	if (!err) {
		err = tracer__add_process(ag->tr, py);
		if (err == -E2BIG || err == -ENOSPC)
			cap_hit(ag, CAP_BPF_PROCESSES, "the BPF session is full (%lu processes)",
				(unsigned long)ag->nr_procs);
	}
	if (err) {
		p_dbg("process %d: cannot trace it: %s", (int)py->pid, strerror(-err));
		proc_free(ag, ap);
		return err;
	}
	ag->procs[ag->nr_procs++] = ap;
	pthread_mutex_lock(&ag->m.lock);
	ap->svc = agent_metrics__service(&ag->m, &ap->id);
	ap->svc->procs++;
	ag->m.procs_started++;
	pthread_mutex_unlock(&ag->m.lock);
	clean(ap->id.exe, exe, sizeof(exe));
	clean(ap->id.script, script, sizeof(script));
	p_info("tracing process %d (Python %s, %s %s)", (int)py->pid, py->version, exe, script);
	return 0;
}

/* The seen table: pid -> "starttime tries rejected" (strmap values are strings). */
static const char *seen_get(struct agent *ag, pid_t pid)
{
	return strmap__get(ag->seen, &pid, sizeof(pid));
}

static void seen_set(struct strmap *m, pid_t pid, const struct seen *s)
{
	char buf[96];

	/* strmap values are C strings: encode */
	snprintf(buf, sizeof(buf), "%llu %llu %d %d", (unsigned long long)s->starttime,
		 (unsigned long long)s->exe_hash, s->tries, s->rejected);
	strmap__set(m, &pid, sizeof(pid), buf);
}

/* FNV-1a of @s: which executable a pid runs, to notice an exec we were not told of. */
static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* The hash of /proc/PID/exe's target; 0 when there is none (a kernel thread, gone). */
static uint64_t exe_hash(pid_t pid)
{
	char path[64], exe[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return 0;
	exe[n] = 0;
	return hash_str(exe);
}

static bool seen_decode(const char *v, struct seen *s)
{
	unsigned long long st, eh;
	int tries, rej;

	if (!v || sscanf(v, "%llu %llu %d %d", &st, &eh, &tries, &rej) != 4)
		return false;
	s->starttime = st;
	s->exe_hash = eh;
	s->tries = tries;
	s->rejected = rej;
	return true;
}

/*
 * Look at process @pid: traced already, known not to be ours, or a new
 * CPython to trace.  Returns 1 when it should be looked at again (a young
 * process whose interpreter may not be up yet), else 0.
 */
/*
 * Right after an exec, a Python's interpreter may not be mapped yet: ld.so
 * has not loaded the program (a Python run through its own loader) or
 * libpython.  For those, "not CPython" is worth another look.
 */
static bool may_be_python_soon(const struct agent_procinfo *pi)
{
	const char *base = strrchr(pi->exe, '/');

	base = base ? base + 1 : pi->exe;
	return strstr(base, "python") || !strncmp(base, "ld-", 3) || !strncmp(base, "ld.so", 5);
}

static int consider(struct agent *ag, pid_t pid, struct strmap *next_seen, bool fresh)
{
	struct agent_procinfo pi;
	struct seen s = {};
	struct pyproc *py;
	char why[512], msg[512];
	int err, again = 0;

	if (pid == ag->self || find_proc(ag, pid))
		return 0;
	/* known already (its stat and exe link), or look closer: an exec we were not told of */
	if (seen_decode(seen_get(ag, pid), &s) && s.rejected &&
	    s.starttime == agent_procinfo__starttime(pid) && s.exe_hash == exe_hash(pid)) {
		if (next_seen)
			seen_set(next_seen, pid, &s);
		return 0;
	}
	err = agent_procinfo__read(pid, &pi);
	if (err) {
		/* a kernel thread stays one; a zombie or a gone process is left out */
		if (err == -ENOENT && next_seen && pi.starttime) {
			memset(&s, 0, sizeof(s));
			s.starttime = pi.starttime;	/* no exe: exe_hash 0 */
			s.rejected = true;
			seen_set(next_seen, pid, &s);
		}
		return 0;
	}
	if (s.starttime != pi.starttime || s.exe_hash != hash_str(pi.exe))
		memset(&s, 0, sizeof(s));
	s.starttime = pi.starttime;
	s.exe_hash = hash_str(pi.exe);
	if (!agent__wanted(&ag->env->include, &ag->env->exclude, &pi)) {
		s.rejected = true;
		goto out;
	}
	p_dbg("process %d: looking for an interpreter", (int)pid);
	py = calloc(1, sizeof(*py));
	if (!py)
		goto out;
	pthread_mutex_lock(&ag->m.lock);
	ag->m.probes++;
	pthread_mutex_unlock(&ag->m.lock);
	err = pyproc__discover(pid, py, why, sizeof(why));
	if (err) {
		free(py);
		/* a process just exec'd may not have its interpreter up yet */
		s.rejected = (err == -ENOEXEC && !(fresh && may_be_python_soon(&pi))) ||
			     err == -ENOTSUP || ++s.tries >= 5;
		clean(why, msg, sizeof(msg));	/* it may quote the target's exe */
		if (err == -ENOTSUP)
			p_info("%s", msg);
		again = !s.rejected;
		p_dbg("process %d: %s%s", (int)pid, msg, s.rejected ? "" : " (will look again)");
		goto out;
	}
	err = proc_add(ag, py, &pi);
	/* a full table may have room later (the rescan); a layout BPF cannot use, never */
	if (err && err != -E2BIG && err != -ENOMEM)
		s.rejected = true;
out:
	if (next_seen)
		seen_set(next_seen, pid, &s);
	else
		seen_set(ag->seen, pid, &s);
	agent_procinfo__free(&pi);
	return again;
}

static void follow(struct agent *ag, pid_t pid)
{
	/* exec, fork and exit of every process (and its children) reach on_process */
	if (tracer__follow(ag->tr, pid))
		p_dbg("cannot follow process %d", (int)pid);
}

/* Every process in /proc: follow it, and trace it when it is a CPython we want. */
static void scan(struct agent *ag, bool first)
{
	struct strmap *next = strmap__new();
	struct dirent *de;
	DIR *d;

	d = opendir("/proc");
	if (!d || !next) {
		p_warn("cannot scan /proc: %s", strerror(errno));
		strmap__free(next);
		if (d)
			closedir(d);
		return;
	}
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		if (first)
			follow(ag, pid);
		consider(ag, pid, next, false);
	}
	closedir(d);
	/* forget what is gone: the table holds live pids only */
	strmap__free(ag->seen);
	ag->seen = next;
}

static void pend_add(struct agent *ag, pid_t pid, int tries)
{
	/* after exec the interpreter needs a moment: 20 ms, then backing off */
	static const uint64_t delay_ms[] = { 20, 100, 300, 1000, 3000 };
	int i;

	if (tries >= (int)(sizeof(delay_ms) / sizeof(delay_ms[0])))
		return;
	for (i = 0; i < ag->nr_pend; i++)
		if (ag->pend[i].pid == pid)
			break;
	if (i == ag->nr_pend) {
		if (ag->nr_pend == (int)(sizeof(ag->pend) / sizeof(ag->pend[0])))
			return;	/* the rescan finds it */
		ag->nr_pend++;
	}
	ag->pend[i].pid = pid;
	ag->pend[i].tries = tries;
	ag->pend[i].at_ns = mono_ns() + delay_ms[tries] * 1000000ULL;
}

static void pend_run(struct agent *ag)
{
	uint64_t now = mono_ns();
	struct pending p;
	struct seen s;
	int i;

	for (i = 0; i < ag->nr_pend;) {
		if (ag->pend[i].at_ns > now) {
			i++;
			continue;
		}
		p = ag->pend[i];
		ag->pend[i] = ag->pend[--ag->nr_pend];
		/* a fresh exec: whatever was known about the pid is void */
		if (p.tries == 0) {
			memset(&s, 0, sizeof(s));
			seen_set(ag->seen, p.pid, &s);
		}
		if (consider(ag, p.pid, NULL, true))
			pend_add(ag, p.pid, p.tries + 1);
	}
}

/* --- reports, stalls, metrics, profiles --------------------------------- */

static void emit_stalls(struct agent *ag, struct aproc *ap, const struct report *r)
{
	struct { uint32_t tid; uint64_t start; } key;
	size_t i;

	for (i = 0; i < r->nr_stalls; i++) {
		const struct rstall *st = &r->stalls[i];

		if (st->in_progress)
			continue;	/* written when it ends */
		memset(&key, 0, sizeof(key));
		key.tid = st->tid;
		key.start = st->start_ktime_ns;
		if (strmap__get(ap->emitted, &key, sizeof(key)))
			continue;
		strmap__set(ap->emitted, &key, sizeof(key), "");
		pthread_mutex_lock(&ag->m.lock);
		agent_metrics__stall(ap->svc, st->dur_ns);
		pthread_mutex_unlock(&ag->m.lock);
		if (!ag->events_on)
			continue;
		if (agent_events__stall(&ag->ev, r, i, &ap->id, ap->an.start_mono_ns)) {
			pthread_mutex_lock(&ag->m.lock);
			if (!ag->m.events_failed++)
				p_warn("writing a stall event failed: %s (counted in "
				       "hangtrace_stall_events_failed_total)", strerror(errno));
			pthread_mutex_unlock(&ag->m.lock);
		} else {
			pthread_mutex_lock(&ag->m.lock);
			ag->m.events_written++;
			pthread_mutex_unlock(&ag->m.lock);
		}
	}
}

/* The first time each BPF-side loss appears, say so once (the metric counts them all). */
static void log_bpf_losses(const struct agent_metrics *m, const struct ht_stats *now)
{
	static const struct {
		size_t off;
		const char *what;
		const char *limit;	/* a cap's option and limit label, or NULL */
	} losses[] = {
		{ offsetof(struct ht_stats, ringbuf_full), "the ring buffer was full: events lost", NULL },
		{ offsetof(struct ht_stats, threads_full), "the thread table is full: new threads untraced", NULL },
		{ offsetof(struct ht_stats, agg_full),
		  "the aggregate table is full: blocks lost until the window closes", "aggregates" },
		{ offsetof(struct ht_stats, stacks_full),
		  "the stack tables are full: stacks lost until the window closes", "stacks" },
		{ offsetof(struct ht_stats, samples_lost),
		  "the sample table is full: on-CPU samples lost until the window closes",
		  "aggregates" },
		{ offsetof(struct ht_stats, procs_full), "forked processes could not be followed", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(losses) / sizeof(losses[0]); i++) {
		uint64_t before = *(const uint64_t *)((const char *)&m->bpf + losses[i].off);
		uint64_t after = *(const uint64_t *)((const char *)now + losses[i].off);

		if (before || !after)
			continue;
		if (losses[i].limit)
			p_warn("%s (--max-%s; counted in hangtrace_limit_hits_total{limit=\"%s\"} "
			       "and hangtrace_lost_events_total)", losses[i].what, losses[i].limit,
			       losses[i].limit);
		else
			p_warn("%s (counted in hangtrace_lost_events_total)", losses[i].what);
	}
}

static void count_offcpu(struct agent *ag, struct aproc *ap, const struct report *r)
{
	uint64_t cur[HT_R_MAX] = {};
	size_t i;
	int k;

	for (i = 0; i < r->nr_threads; i++)
		for (k = 0; k < HT_R_MAX; k++)
			cur[k] += r->threads[i].reason_ns[k];
	pthread_mutex_lock(&ag->m.lock);
	/* counters only go up: a thread gone (or a window restarted) lowers the sum */
	for (k = 0; k < HT_R_MAX; k++) {
		if (cur[k] > ap->last_reason_ns[k])
			ap->svc->offcpu_ns[k] += cur[k] - ap->last_reason_ns[k];
		ap->last_reason_ns[k] = cur[k];
	}
	log_bpf_losses(&ag->m, &r->stats);
	ag->m.bpf = r->stats;
	/* the BPF side counts what the map caps lost; the counters are cumulative */
	ag->m.caps_hit[CAP_STACKS] = r->stats.stacks_full;
	ag->m.caps_hit[CAP_AGGREGATES] = r->stats.agg_full + r->stats.samples_lost;
	if (pysym__cap_hits(ap->an.sym) > ap->last_sym_hits) {
		if (!ag->m.caps_hit[CAP_SYMBOLS])
			p_warn("process %d: more than %u code objects in one window "
			       "(--max-symbols): the rest are read at every use, not cached "
			       "(counted in hangtrace_limit_hits_total{limit=\"symbols\"})",
			       (int)ap->pid, ag->env->max_symbols);
		ag->m.caps_hit[CAP_SYMBOLS] += pysym__cap_hits(ap->an.sym) - ap->last_sym_hits;
		ap->last_sym_hits = pysym__cap_hits(ap->an.sym);
	}
	if (ap->an.tl.dropped > ap->last_dropped) {
		ag->m.timeline_dropped += ap->an.tl.dropped - ap->last_dropped;
		ap->last_dropped = ap->an.tl.dropped;
		if (!ag->m.caps_hit[CAP_EVENTS]++)
			p_warn("process %d: more than %u timeline events in one window "
			       "(--max-events): stall blame may miss some (counted in "
			       "hangtrace_lost_events_total{where=\"timeline_full\"})",
			       (int)ap->pid, ag->env->max_events);
	}
	pthread_mutex_unlock(&ag->m.lock);
}

/* @ap's report of the window so far, with stalls and counters accounted.  0 or -errno. */
static int proc_flush(struct agent *ag, struct aproc *ap, bool exited, struct report *r)
{
	uint64_t t0 = mono_ns();
	int err;

	memset(r, 0, sizeof(*r));
	if (!ap->an_ok)
		return -EINVAL;
	ap->an.ks = ag->ks;
	ap->an.target_exited = exited;
	err = analyze__report(&ap->an, r);
	ap->an.ks = NULL;
	if (err) {
		report__free(r);
		p_dbg("process %d: report failed: %s", (int)ap->pid, strerror(-err));
		return err;
	}
	ap->stall_pending = false;
	emit_stalls(ag, ap, r);
	count_offcpu(ag, ap, r);
	pthread_mutex_lock(&ag->m.lock);
	ag->m.flush_ns_total += mono_ns() - t0;
	pthread_mutex_unlock(&ag->m.lock);
	return 0;
}

static int write_folded(void *ctx, FILE *f)
{
	return report__write_folded(ctx, f);
}

static int write_pprof(void *ctx, FILE *f)
{
	return pprof__write(ctx, f);
}

/* One profile file: DIR/NAME.EXT, atomically; counted. */
static void write_profile(struct agent *ag, const char *name, const char *ext,
			  int (*fn)(void *ctx, FILE *f), struct report *r)
{
	char *path = NULL;
	int err;

	if (asprintf(&path, "%s/%s.%s", ag->env->profile_dir, name, ext) < 0)
		path = NULL;
	err = path ? output__write_with(path, fn, r) : -ENOMEM;
	pthread_mutex_lock(&ag->m.lock);
	if (err)
		ag->m.profiles_failed++;
	else
		ag->m.profiles_written++;
	pthread_mutex_unlock(&ag->m.lock);
	free(path);
}

/* Pyroscope's app name: hangtrace.python{service labels}, values cut to [A-Za-z0-9._-/:]. */
static void push_name(const struct aproc *ap, char *out, size_t outsz)
{
	const char *vals[4] = { ap->id.exe, ap->id.script, ap->id.cgroup, ap->id.pid };
	const char *keys[4] = { "exe", "script", "cgroup", "pid" };
	size_t pos;
	int i;

	pos = snprintf(out, outsz, "hangtrace.python{");
	for (i = 0; i < 4 && pos < outsz; i++) {
		const char *s = vals[i];

		if (i == 3 && !*s)
			break;	/* no pid label */
		pos += snprintf(out + pos, outsz - pos, "%s%s=", i ? "," : "", keys[i]);
		for (; *s && pos + 2 < outsz; s++) {
			unsigned char c = *s;
			bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				  (c >= '0' && c <= '9') || strchr("._-/:", c);

			out[pos++] = ok ? c : '_';
		}
		if (!*vals[i] && pos + 2 < outsz)
			out[pos++] = '_';
		out[pos] = 0;
	}
	if (pos + 2 < outsz) {
		out[pos++] = '}';
		out[pos] = 0;
	}
}

/* The window's profile of @ap: to --profile-dir and to Pyroscope. */
static void proc_profile(struct agent *ag, struct aproc *ap, struct report *r)
{
	uint64_t until = unix_ns() / 1000000000ULL, from = ap->window_unix_ns / 1000000000ULL;
	char name[512], *body = NULL;
	size_t len = 0;
	FILE *f;

	if (!r->nr_blockers && !r->nr_samples)
		return;	/* nothing to show */
	r->what = WHAT_ALL;
	if (ag->env->profile_dir) {
		agent_profile_name(&ap->id, ap->pid, from, name, sizeof(name));
		if (ag->env->profile_pprof)
			write_profile(ag, name, "pb.gz", write_pprof, r);
		if (ag->env->profile_folded)
			write_profile(ag, name, "folded", write_folded, r);
	}
	if (ag->push) {
		f = open_memstream(&body, &len);
		if (!f)
			return;
		report__write_folded(r, f);
		if (fclose(f)) {
			free(body);
			return;
		}
		push_name(ap, name, sizeof(name));
		agent_push__enqueue(ag->push, name, from, until > from ? until : from + 1, body, len);
	}
}

/* The process is gone: its last report, its profile, and forget it. */
static void proc_exit(struct agent *ag, size_t i)
{
	struct aproc *ap = ag->procs[i];
	struct report r;

	if (!proc_flush(ag, ap, true, &r))
		proc_profile(ag, ap, &r);
	report__free(&r);
	tracer__remove_process(ag->tr, ap->pid);
	pthread_mutex_lock(&ag->m.lock);
	ap->svc->procs--;
	ag->m.procs_exited++;
	pthread_mutex_unlock(&ag->m.lock);
	p_info("process %d exited", (int)ap->pid);
	if (ag->last == ap)
		ag->last = NULL;
	ag->procs[i] = ag->procs[--ag->nr_procs];
	proc_free(ag, ap);
}

/*
 * Every --flush-interval: exits, then the processes with a stall to write
 * (a stall arrives as an event), at once; the others (counters only) every
 * FLUSH_ALL_EVERY rounds, so a host full of quiet processes costs little.
 */
#define FLUSH_ALL_EVERY 5

static void flush_all(struct agent *ag)
{
	bool all = ++ag->flush_rounds % FLUSH_ALL_EVERY == 0;
	struct report r;
	size_t i;

	for (i = 0; i < ag->nr_procs;) {
		struct aproc *ap = ag->procs[i];

		if (agent_procinfo__starttime(ap->pid) != ap->starttime) {
			proc_exit(ag, i);
			continue;
		}
		if ((all || ap->stall_pending) && !proc_flush(ag, ap, false, &r))
			report__free(&r);
		i++;
	}
}

/*
 * Every --profile-interval (and at exit): profiles, then a new window.  At
 * exit, @deadline_ns (CLOCK_MONOTONIC) bounds it: processes not reached by
 * then are left out, and said so.
 */
static void rotate(struct agent *ag, bool final, uint64_t deadline_ns)
{
	struct report r;
	size_t i, left = 0;
	int n;

	/* what BPF has sent belongs to this window: a stall that just ended, with its blame */
	tracer__poll(ag->tr, 0);
	for (i = 0; i < ag->nr_procs; i++) {
		struct aproc *ap = ag->procs[i];

		if (deadline_ns && mono_ns() >= deadline_ns) {
			left = ag->nr_procs - i;
			break;
		}
		if (!proc_flush(ag, ap, false, &r))
			proc_profile(ag, ap, &r);
		report__free(&r);
	}
	if (left)
		p_warn("out of time at exit: the last stalls and profiles of %zu process%s were "
		       "not written", left, left == 1 ? "" : "es");
	if (ag->env->profile_dir) {
		n = agent_profiles__retain(ag->env->profile_dir, ag->env->profile_max_age_s,
					   ag->env->profile_keep);
		pthread_mutex_lock(&ag->m.lock);
		ag->m.profiles_removed += n;
		pthread_mutex_unlock(&ag->m.lock);
	}
	if (final)
		return;
	tracer__reset_aggregates(ag->tr);
	for (i = 0; i < ag->nr_procs; i++)
		if (proc_analysis_start(ag, ag->procs[i]))
			p_warn("process %d: cannot restart its analysis", (int)ag->procs[i]->pid);
}

/* --- events from BPF ---------------------------------------------------- */

static void on_event(const struct ht_event *e, void *ctx)
{
	struct agent *ag = ctx;
	struct aproc *ap = find_proc(ag, e->key.pid);

	if (ap && ap->an_ok) {
		analyze__on_event(&ap->an, e);
		if (e->type == HT_EV_STALL)
			ap->stall_pending = true;
	}
}

static void on_process(const struct ht_event *e, void *ctx)
{
	struct agent *ag = ctx;
	struct aproc *ap;
	size_t i;

	switch (e->type) {
	case HT_EV_EXEC:
		/* a new image: forget the old one, look for an interpreter soon */
		pthread_mutex_lock(&ag->m.lock);
		ag->m.exec_events++;
		pthread_mutex_unlock(&ag->m.lock);
		for (i = 0; i < ag->nr_procs; i++)
			if (ag->procs[i]->pid == (pid_t)e->key.pid) {
				proc_exit(ag, i);
				break;
			}
		pend_add(ag, e->key.pid, 0);
		break;
	case HT_EV_FORK:
		/*
		 * A traced CPython forked (multiprocessing): the child is traced
		 * already with its parent's layout; give it its own analysis.
		 */
		if (!(e->wk_flags & HT_FORK_TRACED))
			break;
		if (ag->nr_procs >= ag->env->max_procs) {
			/* no room: do not let BPF trace what nobody reads */
			tracer__remove_process(ag->tr, e->key.pid);
			cap_hit(ag, CAP_PROCESSES,
				"more than %lu CPython processes (--max-processes): the rest are "
				"not traced (counted in hangtrace_limit_hits_total{limit=\"processes\"})",
				(unsigned long)ag->env->max_procs);
			break;
		}
		pend_add(ag, e->key.pid, 0);
		break;
	case HT_EV_EXIT:
		for (i = 0; i < ag->nr_procs; i++) {
			ap = ag->procs[i];
			if (ap->pid == (pid_t)e->key.pid) {
				proc_exit(ag, i);
				break;
			}
		}
		break;
	default:
		break;
	}
}

/* --- lifecycle ---------------------------------------------------------- */

static int signals_fd(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);	/* a closed events pipe is an error, not a death */
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

static int setup_outputs(struct agent *ag)
{
	struct agent_env *env = ag->env;
	struct agent_push_opts po = {};
	struct stat st;
	int err;

	if (env->events) {
		err = agent_events__open(&ag->ev, env->events);
		if (err)
			return err;
		ag->events_on = true;
	}
	if (env->profile_dir && (stat(env->profile_dir, &st) || !S_ISDIR(st.st_mode))) {
		p_err("--profile-dir %s is not a directory", env->profile_dir);
		return -ENOTDIR;
	}
	if (env->pyroscope) {
		po.url = env->pyroscope;
		po.queue_max = env->push_queue;
		po.tries = 4;
		po.timeout_ms = env->push_timeout_ns / 1000000;
		po.m = &ag->m;
		ag->push = agent_push__new(&po);
		if (!ag->push) {
			err = -errno;
			p_err("cannot start the Pyroscope pusher: %s", strerror(-err));
			return err;
		}
	}
	if (env->metrics_addr && strcmp(env->metrics_addr, "none"))
		return agent_metrics__serve(&ag->m, env->metrics_addr);
	return 0;
}

/* How long a window's end may wait for the loops to be between iterations. */
#define ROTATE_WAIT_MAX_NS 10000000000ULL
#define ROTATE_BUSY_NS 10000000ULL

/*
 * Is a loop thread of a traced process inside an iteration that has lasted
 * ROTATE_BUSY_NS (@now: CLOCK_MONOTONIC, the BPF clock)?  A window reset now
 * would split a possible stall from the blocks that make it.
 */
static bool loop_busy(struct agent *ag, uint64_t now)
{
	struct ht_thread t;
	uint32_t tids[64];
	size_t i;
	int j, n;

	for (i = 0; i < ag->nr_procs; i++) {
		n = tracer__loop_threads(ag->tr, ag->procs[i]->pid, 0, tids, 64);
		for (j = 0; j < n; j++)
			if (!tracer__thread(ag->tr, tids[j], &t) && !t.in_poll && t.iter_start &&
			    now > t.iter_start + ROTATE_BUSY_NS)
				return true;
	}
	return false;
}

static int run(struct agent *ag, int sfd)
{
	struct agent_env *env = ag->env;
	struct signalfd_siginfo si;
	uint64_t now, next_flush, next_rescan, next_rotate;
	int err;

	now = mono_ns();
	next_flush = now + env->flush_ns;
	next_rescan = now + env->rescan_ns;
	next_rotate = now + env->profile_ns;
	for (;;) {
		err = tracer__poll(ag->tr, 100);
		if (err < 0) {
			p_err("reading events failed: %s", strerror(-err));
			return err;
		}
		while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP) {
				p_info("SIGHUP: reopening the events file");
				if (ag->events_on)
					agent_events__reopen(&ag->ev);
				continue;
			}
			return 0;	/* SIGINT, SIGTERM */
		}
		pend_run(ag);
		now = mono_ns();
		if (now >= next_rescan) {
			scan(ag, false);
			next_rescan = now + env->rescan_ns;
		}
		/* a window closes between loop iterations: a stall is blamed in one piece */
		if (now >= next_rotate &&
		    (!loop_busy(ag, now) || now >= next_rotate + ROTATE_WAIT_MAX_NS)) {
			rotate(ag, false, 0);
			next_rotate = now + env->profile_ns;
			next_flush = now + env->flush_ns;
		} else if (now >= next_flush) {
			flush_all(ag);
			next_flush = now + env->flush_ns;
		}
	}
}

int cmd_agent(int argc, char **argv)
{
	static const struct argp argp = {
		.options = agent_opts,
		.parser = agent_parse_arg,
		.doc = agent_doc,
	};
	static char prog[] = "hangtrace agent";
	struct agent_env env = {
		.metrics_addr = "127.0.0.1:9464",
		.profile_ns = 60000000000ULL,
		.profile_folded = true,
		.profile_pprof = true,
		.profile_keep = 1000,
		.profile_max_age_s = 86400,
		.push_queue = 64,
		.push_timeout_ns = 5000000000ULL,
		.flush_ns = 2000000000ULL,
		.rescan_ns = 10000000000ULL,
		.min_block_ns = 1000000,
		.stall_ns = 100000000ULL,
		.sample_hz = 49,
		.max_frames = 64,
		.max_procs = 256,
		.max_services = 200,
		.max_events = 65536,
		.max_stacks = 8192,
		.max_aggregates = 16384,
		.max_symbols = 4096,
	};
	struct tracer_opts topts = {};
	struct agent ag = {};
	uint64_t t_stop;
	int err, sfd = -1;

	argp_err_exit_status = 2;
	argv[0] = prog;
	err = argp_parse(&argp, argc, argv, 0, NULL, &env);
	if (err)
		return 2;
	cli__set_verbosity(env.verbose, env.quiet ? LOG_WARN : LOG_INFO);
	ag.env = &env;
	ag.self = getpid();

	/* Refuse early what cannot work */
	err = cli__check_privileges();
	if (err)
		goto cleanup;
	err = agent_metrics__init(&ag.m, env.max_services);
	if (err)
		goto cleanup;
	ag.seen = strmap__new();
	if (!ag.seen) {
		err = -ENOMEM;
		goto cleanup;
	}

	/* Signals come through a file descriptor, read in the loop */
	sfd = signals_fd();
	if (sfd < 0) {
		err = sfd;
		p_err("cannot set up signal handling: %s", strerror(-err));
		goto cleanup;
	}

	/* Outputs first: a bad address or path fails before anything is attached */
	if (env.pyroscope) {
		err = agent_push__global_init();	/* loads libcurl */
		if (err)
			goto cleanup;
	}
	err = setup_outputs(&ag);
	if (err)
		goto cleanup;

	/* Load the BPF programs; kernel symbols once for every process */
	topts.min_block_ns = env.min_block_ns;
	topts.max_frames = env.max_frames;
	topts.max_stacks = env.max_stacks;
	topts.max_aggregates = env.max_aggregates;
	topts.stall_ns = env.stall_ns;
	topts.sample_hz = env.sample_hz;
	topts.on_event = on_event;
	topts.on_process = on_process;
	topts.ctx = &ag;
	ag.tr = tracer__new(&topts);
	if (!ag.tr) {
		err = -errno;
		goto cleanup;
	}
	ag.ks = ksyms__load();
	if (!ag.ks)
		p_warn("kernel symbols unavailable (%s): kernel stacks will be omitted",
		       strerror(errno));
	err = tracer__attach(ag.tr);
	if (err)
		goto cleanup;

	/* Every process there now: followed (for exec/fork/exit), CPythons traced */
	scan(&ag, true);
	p_info("agent running: %zu CPython process%s traced%s%s", ag.nr_procs,
	       ag.nr_procs == 1 ? "" : "es",
	       env.metrics_addr && strcmp(env.metrics_addr, "none") ? ", metrics on " : "",
	       env.metrics_addr && strcmp(env.metrics_addr, "none") ? env.metrics_addr : "");

	err = run(&ag, sfd);

	/* Flush: the last stalls, the last profiles, the push queue; within 2 s */
	t_stop = mono_ns();
	tracer__poll(ag.tr, 0);
	rotate(&ag, true, t_stop + 1200000000ULL);	/* then detach, push: 2 s in all */
	tracer__detach(ag.tr);
	if (ag.push) {
		long left = 1500 - (long)((mono_ns() - t_stop) / 1000000);

		agent_push__free(ag.push, left > 100 ? left : 100);
		ag.push = NULL;
	}
	p_info("agent stopped: flushed in %.0f ms", (mono_ns() - t_stop) / 1e6);

cleanup:
	agent_push__free(ag.push, 0);
	agent_metrics__fini(&ag.m);
	for (size_t i = 0; i < ag.nr_procs; i++)
		proc_free(&ag, ag.procs[i]);
	free(ag.procs);
	tracer__free(ag.tr);
	ksyms__free(ag.ks);
	agent_events__close(&ag.ev);
	strmap__free(ag.seen);
	agent_filter__free(&env.include);
	agent_filter__free(&env.exclude);
	agent_push__global_cleanup();
	if (sfd >= 0)
		close(sfd);
	return err ? 1 : 0;
}
