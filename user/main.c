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
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "analyze.h"
#include "env.h"
#include "log.h"
#include "output.h"
#include "pyproc.h"
#include "report.h"
#include "tracer.h"

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

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* Has @pid exited (gone, or a zombie)? */
static int target_gone(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	int gone = 1;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 1;
	if (fgets(buf, sizeof(buf), f)) {
		p = strrchr(buf, ')');
		gone = p && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return gone;
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

static void on_event(const struct ht_event *e, void *ctx)
{
	analyze__on_event(ctx, e);
}

int main(int argc, char **argv)
{
	struct env env = {
		.min_block_ns = 1000000,
		.format = FMT_TEXT,
		.max_frames = HT_MAX_PY_FRAMES,
	};
	struct tracer_opts topts = {};
	struct sigaction sa = {};
	struct analyze an = {};
	struct report rep = {};
	struct pyproc *proc = NULL;
	struct tracer *tr = NULL;
	uint64_t start, deadline;
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

	/* Load the BPF programs and tell them about the target */
	topts.min_block_ns = env.min_block_ns;
	topts.max_frames = env.max_frames;
	topts.on_event = on_event;
	topts.ctx = &an;
	tr = tracer__new(&topts);
	if (!tr) {
		err = -errno;
		goto cleanup;
	}
	err = analyze__init(&an, proc, tr);
	if (err) {
		p_err("cannot read process %d: %s", env.pid, strerror(-err));
		goto cleanup;
	}
	an.min_block_ns = env.min_block_ns;
	an.max_frames = env.max_frames;
	err = tracer__add_process(tr, proc);
	if (err) {
		p_err("cannot trace process %d: unusable interpreter layout (%s)", env.pid,
		      strerror(-err));
		goto cleanup;
	}

	/* Ctrl-C / SIGTERM end tracing and still write the report */
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* Attach and trace */
	err = tracer__attach(tr);
	if (err)
		goto cleanup;
	an.start_mono_ns = start = clock_ns(CLOCK_MONOTONIC);
	an.start_unix_ns = clock_ns(CLOCK_REALTIME);
	deadline = env.duration_ns ? start + env.duration_ns : 0;
	/* Scripts (and the tests) wait for this line: tracing is live from here. */
	fprintf(stderr, "hangtrace: tracing process %d (Python %s)%s\n", env.pid, proc->version,
		env.duration_ns ? "" : ", Ctrl-C to stop");

	while (!exiting) {
		int wait_ms = 100;

		if (deadline) {
			uint64_t now = clock_ns(CLOCK_MONOTONIC);

			if (now >= deadline)
				break;
			if (deadline - now < 100000000ULL)
				wait_ms = (deadline - now) / 1000000 + 1;
		}
		err = tracer__poll(tr, wait_ms);
		if (err < 0) {
			p_err("reading events failed: %s", strerror(-err));
			goto cleanup;
		}
		if (target_gone(env.pid)) {
			an.target_exited = true;
			p_warn("process %d exited during tracing; reporting what was collected",
			       env.pid);
			break;
		}
	}
	/* Drain what is left, then stop collecting before the report is built */
	tracer__poll(tr, 0);

	/* Build and write the report */
	err = analyze__report(&an, &rep);
	tracer__detach(tr);
	if (err) {
		p_err("building the report failed: %s", strerror(-err));
		goto cleanup;
	}
	err = output__write(&rep, env.format, env.output);

cleanup:
	report__free(&rep);
	analyze__fini(&an);
	tracer__free(tr);
	free(proc);
	return err ? 1 : 0;
}
