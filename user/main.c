// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hangtrace: attach to a CPython process and report what blocked it.
 * main() only orchestrates: parse, discover, load, attach, trace, report.
 */
#include <argp.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hangtrace.h"

#include <bpf/libbpf.h>

#include "env.h"
#include "log.h"
#include "output.h"
#include "pyproc.h"
#include "report.h"
#include "trace.h"

static volatile sig_atomic_t exiting;

static void sig_handler(int sig)
{
	(void)sig;
	/* A second Ctrl-C means "now": leave without a report. */
	if (exiting)
		_exit(130);
	exiting = 1;
}

static int libbpf_print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && log__level() < LOG_DEBUG_EXTRA)
		return 0;
	if (level == LIBBPF_INFO && log__level() < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int check_privileges(void)
{
	const char *btf = getenv("HANGTRACE_SYS_BTF");
	struct stat st;

	if (geteuid() != 0) {
		p_err("hangtrace needs root (BPF and reading another process's memory): run it with sudo");
		return -EPERM;
	}
	if (!btf)
		btf = "/sys/kernel/btf/vmlinux";
	if (stat(btf, &st)) {
		p_err("this kernel has no BTF (%s is missing): hangtrace needs a kernel built with "
		      "CONFIG_DEBUG_INFO_BTF=y (5.15 or newer)", btf);
		return -ENOENT;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct env env = {
		.min_block_ns = 1000000,
		.format = FMT_TEXT,
		.max_frames = HT_MAX_PY_FRAMES,
		.stall_ns = 100000000ULL,
		.alert_ns = 1000000000ULL,
		.sample_hz = 199,
	};
	struct trace_opts topts = {};
	struct sigaction sa = {};
	struct report rep = {};
	struct pyproc *proc = NULL;
	char why[512];
	int err;

	argp_err_exit_status = 2;
	err = env__parse(argc, argv, &env);
	if (err)
		return 2;
	log__set_level(env.verbose >= 2 ? LOG_DEBUG_EXTRA : env.verbose ? LOG_DEBUG : LOG_WARN);
	libbpf_set_print(libbpf_print_fn);

	/* Refuse early what cannot work */
	err = check_privileges();
	if (err)
		goto cleanup;

	/* Find the target's interpreter */
	proc = calloc(1, sizeof(*proc));
	if (!proc) {
		err = -ENOMEM;
		goto cleanup;
	}
	err = pyproc__discover(env.pid, proc, why, sizeof(why));
	if (err) {
		p_err("%s", why);
		goto cleanup;
	}

	/* Ctrl-C / SIGTERM end tracing and still write the report */
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Trace, then write the report */
	topts.duration_ns = env.duration_ns;
	topts.min_block_ns = env.min_block_ns;
	topts.max_frames = env.max_frames;
	topts.stall_ns = env.stall_ns;
	topts.alert_ns = env.alert_ns;
	topts.loop_tid = env.loop_tid;
	topts.sample_hz = env.sample_hz;
	topts.stop = &exiting;
	err = trace__run(proc, &topts, &rep);
	if (err)
		goto cleanup;
	err = output__write(&rep, env.format, env.output);

cleanup:
	report__free(&rep);
	free(proc);
	return err ? 1 : 0;
}
