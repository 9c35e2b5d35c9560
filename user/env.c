// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <argp.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "env.h"
#include "hangtrace.h"
#include "log.h"
#include "report.h"

const char *argp_program_version = "hangtrace " HANGTRACE_VERSION;
const char *argp_program_bug_address = "<https://github.com/hangtrace/hangtrace/issues>";

static const char doc[] =
	"hangtrace: what blocked this Python program, where, and who woke it.\n"
	"\n"
	"USAGE: hangtrace -p PID [--children] [-d SECONDS] [--focus REGEX]\n"
	"                 [--min-block MS] [--format FORMAT] [-o FILE]\n"
	"       hangtrace run [OPTIONS] -- CMD [ARGS...]\n"
	"       hangtrace dump -p PID [--format text|json] [-o FILE] [--trace SECONDS]\n"
	"       hangtrace agent [--metrics-addr HOST:PORT] [--events FILE] [--profile-dir DIR] ...\n"
	"\n"
	"Traces every thread of a running CPython process (3.6-3.15) with BPF and reports\n"
	"its off-CPU time by Python stack, blocking reason (lock, gil, sleep, socket, io,\n"
	"child, page-fault, runqueue) and waker.  Nothing is injected and the process is\n"
	"never stopped.  Needs root.\n"
	"\n"
	"EXAMPLES:\n"
	"    hangtrace -p 4242                 # trace until Ctrl-C, text report\n"
	"    hangtrace -p 4242 -d 10           # trace 10 seconds\n"
	"    hangtrace -p 4242 -d 5 --format json -o report.json\n"
	"    hangtrace -p 4242 --format folded | flamegraph.pl > offcpu.svg\n"
	"    hangtrace -p 4242 -d 30 --what all --format pprof -o app.pb.gz && go tool pprof -top app.pb.gz\n"
	"    hangtrace -p 4242 -d 30 --format speedscope -o app.speedscope.json\n"
	"    hangtrace -p 4242 -d 10 --what all --format svg -o flame.svg\n"
	"    hangtrace -p 4242 -d 10 --format html -o report.html\n"
	"    hangtrace -p 4242 --children      # and every process it forks or spawns\n"
	"    hangtrace -p 4242 --focus myapp/  # only stacks through myapp/\n"
	"    hangtrace run -o report.txt -- python3 app.py   # run it, traced from its first line\n"
	"    hangtrace dump -p 4242            # a hung process: every thread, what it waits on, why\n";

enum {
	OPT_MIN_BLOCK = 1000,
	OPT_FORMAT,
	OPT_MAX_FRAMES,
	OPT_STALL,
	OPT_LOOP_TID,
	OPT_ALERT,
	OPT_SAMPLE_HZ,
	OPT_WHAT,
	OPT_CHILDREN,
	OPT_FOCUS,
	OPT_MAX_STACKS,
	OPT_MAX_AGGREGATES,
	OPT_MAX_SYMBOLS,
};

static const struct argp_option opts[] = {
	{ "pid", 'p', "PID", 0, "Process to trace", 0 },
	{ "duration", 'd', "SECONDS", 0, "Trace this long (default: until Ctrl-C); 500ms, 2s, 1m also work", 0 },
	{ "min-block", OPT_MIN_BLOCK, "MS", 0, "Blocks shorter than this are only summed per thread and reason (default 1)", 0 },
	{ "format", OPT_FORMAT, "FORMAT", 0, "text (default), json, folded, pprof, speedscope, svg (flame graph) or html (summary, stall timeline, flame graph)", 0 },
	{ "output", 'o', "FILE", 0, "Write the report to FILE (atomically) instead of stdout", 0 },
	{ "max-frames", OPT_MAX_FRAMES, "N", 0, "Python frames kept per stack, 1-128 (default 128)", 0 },
	{ "children", OPT_CHILDREN, NULL, 0, "Also trace the target's descendants, at any depth, including those started later (forked or exec'd CPython; others are listed as untraced)", 0 },
	{ "focus", OPT_FOCUS, "REGEX", 0, "Keep only stacks with a frame whose function or file matches REGEX (POSIX extended)", 0 },
	{ "what", OPT_WHAT, "WHAT", 0, "What profiles (folded, pprof, speedscope, svg, html) hold: offcpu (default), oncpu or all", 0 },
	{ "quiet", 'q', NULL, 0, "Nothing on stderr but warnings and errors", 0 },
	{ "verbose", 'v', NULL, 0, "More diagnostics; -vv adds libbpf debug output", 0 },
	{ NULL, 0, NULL, OPTION_DOC, "Event loops (asyncio, uvloop, eventlet, gevent, tornado, twisted):", 1 },
	{ "stall", OPT_STALL, "MS", 0, "A loop iteration this long is a stall (default 100)", 1 },
	{ "loop-tid", OPT_LOOP_TID, "TID", 0, "Treat this thread as the event loop (default: detected)", 1 },
	{ "alert", OPT_ALERT, "SECONDS", 0, "Announce a stall on stderr while it lasts longer than this (default 1; 0: off)", 1 },
	{ "sample-hz", OPT_SAMPLE_HZ, "HZ", 0, "On-CPU samples per second and CPU (default 199; 0: off)", 1 },
	{ NULL, 0, NULL, OPTION_DOC, "Memory limits:", 2 },
	{ "max-stacks", OPT_MAX_STACKS, "N", 0, "Distinct Python stacks, and kernel stacks, kept (default 8192)", 2 },
	{ "max-aggregates", OPT_MAX_AGGREGATES, "N", 0, "Off-CPU aggregates, and on-CPU sample keys, kept (default 16384)", 2 },
	{ "max-symbols", OPT_MAX_SYMBOLS, "N", 0, "Code objects cached per process; more are read at every use (default 65536)", 2 },
	{},
};

static const char run_doc[] =
	"hangtrace run: run a Python program, traced from its first line.\n"
	"\n"
	"USAGE: hangtrace run [OPTIONS] -- CMD [ARGS...]\n"
	"\n"
	"Starts CMD (a python, a script with a #! line, or a wrapper that execs one:\n"
	"env, a shell script, a launcher) in the current directory and environment,\n"
	"with stdin, stdout and stderr inherited.  Tracing starts once its CPython is\n"
	"initialised, before the main module's first line.  SIGINT and SIGTERM are\n"
	"passed on to CMD (a second Ctrl-C leaves at once, without a report); the\n"
	"report is written when CMD exits (or after -d), and hangtrace exits with\n"
	"CMD's status (128+N when a signal N killed it; 125 when hangtrace failed,\n"
	"126/127 when CMD cannot be run or found).  Use -o FILE to keep the report\n"
	"apart from CMD's own output.  With --children, the processes CMD forks or\n"
	"spawns are traced too, one report each.  Needs root.\n"
	"\n"
	"EXAMPLES:\n"
	"    hangtrace run -o report.txt -- python3 app.py\n"
	"    hangtrace run --format json -o r.json -- python3 -m mypkg.worker --jobs 4\n"
	"    hangtrace run -d 30 -o first30s.txt -- ./manage.py runserver\n"
	"    hangtrace run --children -o pool.txt -- python3 batch.py   # and its workers\n";

int parse_duration(const char *s, uint64_t unit_ns, uint64_t *out)
{
	static const struct {
		const char *sfx;
		double ns;
	} units[] = {
		{ "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 }, { "m", 60e9 },
	};
	double v, mul = unit_ns;
	char *end;
	size_t i;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || isnan(v) || v < 0)
		return -EINVAL;
	if (*end) {
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(end, units[i].sfx))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		mul = units[i].ns;
	}
	v *= mul;
	if (v > 1e18)
		return -EINVAL;
	*out = (uint64_t)(v + 0.5);
	return 0;
}

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	struct env *env = state->input;
	uint64_t v;
	char *end;
	pid_t tid;
	regex_t re;

	switch (key) {
	case 'p':
		if (env->run) {
			p_err("run starts its own command: -p is not an option of run (see --help)");
			return EINVAL;
		}
		if (cli__parse_pid(arg, &env->pid)) {
			p_err("invalid PID '%s': expected a positive process id", arg);
			return EINVAL;
		}
		break;
	case 'd':
		if (parse_duration(arg, 1000000000ULL, &env->duration_ns) || !env->duration_ns) {
			p_err("invalid --duration '%s': expected seconds, e.g. 10 or 2.5 or 500ms", arg);
			return EINVAL;
		}
		break;
	case OPT_MIN_BLOCK:
		if (parse_duration(arg, 1000000ULL, &env->min_block_ns)) {
			p_err("invalid --min-block '%s': expected milliseconds, e.g. 1 or 0.5 or 200us", arg);
			return EINVAL;
		}
		break;
	case OPT_FORMAT:
		if (!strcmp(arg, "text"))
			env->format = FMT_TEXT;
		else if (!strcmp(arg, "json"))
			env->format = FMT_JSON;
		else if (!strcmp(arg, "folded"))
			env->format = FMT_FOLDED;
		else if (!strcmp(arg, "pprof"))
			env->format = FMT_PPROF;
		else if (!strcmp(arg, "speedscope"))
			env->format = FMT_SPEEDSCOPE;
		else if (!strcmp(arg, "svg"))
			env->format = FMT_SVG;
		else if (!strcmp(arg, "html"))
			env->format = FMT_HTML;
		else {
			p_err("invalid --format '%s': expected text, json, folded, pprof, speedscope, svg or html",
			      arg);
			return EINVAL;
		}
		break;
	case 'o':
		env->output = arg;
		break;
	case OPT_MAX_FRAMES:
		if (cli__parse_max_frames(arg, &env->max_frames))
			return EINVAL;
		break;
	case OPT_STALL:
		if (parse_duration(arg, 1000000ULL, &env->stall_ns) || !env->stall_ns) {
			p_err("invalid --stall '%s': expected milliseconds, e.g. 100 or 50ms", arg);
			return EINVAL;
		}
		break;
	case OPT_ALERT:
		if (parse_duration(arg, 1000000000ULL, &env->alert_ns)) {
			p_err("invalid --alert '%s': expected seconds, e.g. 1 or 0.5 (0: off)", arg);
			return EINVAL;
		}
		break;
	case OPT_LOOP_TID:
		if (cli__parse_pid(arg, &tid)) {
			p_err("invalid --loop-tid '%s': expected a thread id", arg);
			return EINVAL;
		}
		env->loop_tid = tid;
		break;
	case OPT_MAX_STACKS:
	case OPT_MAX_AGGREGATES:
	case OPT_MAX_SYMBOLS:
		errno = 0;
		v = strtoull(arg, &end, 10);
		if (errno || end == arg || *end || *arg == '-' || !v ||
		    v > (key == OPT_MAX_SYMBOLS ? 10000000ULL : 1ULL << 20)) {
			p_err("invalid --%s '%s': expected 1-%llu",
			      key == OPT_MAX_STACKS ? "max-stacks" :
			      key == OPT_MAX_AGGREGATES ? "max-aggregates" : "max-symbols", arg,
			      key == OPT_MAX_SYMBOLS ? 10000000ULL : 1ULL << 20);
			return EINVAL;
		}
		if (key == OPT_MAX_STACKS)
			env->max_stacks = v;
		else if (key == OPT_MAX_AGGREGATES)
			env->max_aggregates = v;
		else
			env->max_symbols = v;
		break;
	case OPT_SAMPLE_HZ:
		if (parse_duration(arg, 1, &v) || v > 10000) {
			p_err("invalid --sample-hz '%s': expected 0-10000", arg);
			return EINVAL;
		}
		env->sample_hz = v;
		break;
	case OPT_WHAT:
		if (!strcmp(arg, "offcpu"))
			env->what = WHAT_OFFCPU;
		else if (!strcmp(arg, "oncpu"))
			env->what = WHAT_ONCPU;
		else if (!strcmp(arg, "all"))
			env->what = WHAT_ALL;
		else {
			p_err("invalid --what '%s': expected offcpu, oncpu or all", arg);
			return EINVAL;
		}
		break;
	case 'q':
		env->quiet = 1;
		break;
	case OPT_CHILDREN:
		env->children = 1;
		break;
	case OPT_FOCUS:
		if (regcomp(&re, arg, REG_EXTENDED | REG_NOSUB)) {
			p_err("invalid --focus '%s': not a POSIX extended regular expression", arg);
			return EINVAL;
		}
		regfree(&re);
		env->focus = arg;
		break;
	case 'v':
		env->verbose++;
		break;
	case ARGP_KEY_ARG:
		if (env->run) {
			/* the command: this argument and every one after it */
			env->cmd_argv = &state->argv[state->next - 1];
			env->cmd_argc = state->argc - state->next + 1;
			state->next = state->argc;
			break;
		}
		p_err("unexpected argument '%s' (see --help)", arg);
		return EINVAL;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

void env__init(struct env *env)
{
	memset(env, 0, sizeof(*env));
	env->min_block_ns = 1000000;
	env->format = FMT_TEXT;
	env->max_frames = HT_MAX_PY_FRAMES;
	env->max_stacks = 8192;
	env->max_aggregates = 16384;
	env->max_symbols = 65536;
	env->stall_ns = 100000000ULL;
	env->alert_ns = 1000000000ULL;
	env->sample_hz = 199;
}

int env__parse(int argc, char **argv, struct env *env)
{
	static const struct argp argp = {
		.options = opts,
		.parser = parse_arg,
		.doc = doc,
	};
	static const struct argp run_argp = {
		.options = opts,
		.parser = parse_arg,
		.args_doc = "-- CMD [ARGS...]",
		.doc = run_doc,
	};
	int err;

	if (env->run) {
		/* in order: the first non-option is the command, whose options are its own */
		err = argp_parse(&run_argp, argc, argv, ARGP_IN_ORDER, NULL, env);
		if (err)
			return -err;
		if (!env->cmd_argc) {
			p_err("no command given: hangtrace run [OPTIONS] -- CMD [ARGS...] (see --help)");
			return -EINVAL;
		}
	} else {
		err = argp_parse(&argp, argc, argv, ARGP_NO_EXIT & 0, NULL, env);
		if (err)
			return -err;
		if (!env->pid) {
			p_err("no process given: use -p PID (see --help)");
			return -EINVAL;
		}
	}
	if (env->format == FMT_PPROF && !env->output && isatty(STDOUT_FILENO)) {
		p_err("--format pprof is binary (gzip): give -o FILE or redirect stdout");
		return -EINVAL;
	}
	return 0;
}
