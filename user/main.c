// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * hangtrace: attach to a CPython process and report what blocked it.
 * main() only orchestrates: parse, discover, load, attach, trace, report;
 * `dump` and `run` are subcommands with their own files.
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

#include "agent.h"
#include "cli.h"
#include "dump.h"
#include "env.h"
#include "log.h"
#include "output.h"
#include "pyproc.h"
#include "report.h"
#include "run.h"
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

int main(int argc, char **argv)
{
	struct env env;
	struct trace_opts topts = {};
	struct sigaction sa = {};
	struct report rep = {};
	struct pyproc *proc = NULL;
	int err;

	/* hangtrace dump ...: a snapshot of a hung process (user/dump.c) */
	if (argc > 1 && !strcmp(argv[1], "dump"))
		return cmd_dump(argc - 1, argv + 1);
	/* hangtrace run ... -- CMD: start a command, traced from its first line (user/run.c) */
	if (argc > 1 && !strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	/* hangtrace agent ...: every CPython of the host, always on (user/agent.c) */
	if (argc > 1 && !strcmp(argv[1], "agent"))
		return cmd_agent(argc - 1, argv + 1);

	env__init(&env);
	argp_err_exit_status = 2;
	err = env__parse(argc, argv, &env);
	if (err)
		return 2;
	cli__set_verbosity(env.verbose, LOG_WARN);

	/* Refuse early what cannot work */
	err = cli__check_privileges();
	if (err)
		goto cleanup;

	/* Find the target's interpreter */
	proc = cli__discover(env.pid, &err);
	if (!proc)
		goto cleanup;

	/* Ctrl-C / SIGTERM end tracing and still write the report */
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Trace, then write the report */
	cli__trace_opts(&env, &topts);
	topts.stop = &exiting;
	err = trace__run(proc, &topts, &rep);
	if (err)
		goto cleanup;
	rep.what = env.what;
	err = output__write(&rep, env.format, env.output);

cleanup:
	report__free(&rep);
	free(proc);
	return err ? 1 : 0;
}
