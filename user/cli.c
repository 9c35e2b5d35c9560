// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "env.h"
#include "hangtrace.h"
#include "log.h"
#include "pyproc.h"
#include "trace.h"

int cli__parse_pid(const char *s, pid_t *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v <= 0 || v > INT_MAX)
		return -EINVAL;
	*out = (pid_t)v;
	return 0;
}

int cli__parse_max_frames(const char *arg, uint32_t *out)
{
	uint64_t v;

	if (parse_duration(arg, 1, &v) || v < 1 || v > HT_MAX_PY_FRAMES) {
		p_err("invalid --max-frames '%s': expected 1-%d", arg, HT_MAX_PY_FRAMES);
		return EINVAL;
	}
	*out = v;
	return 0;
}

void cli__set_verbosity(int verbose, int base)
{
	log__set_level(verbose >= 2 ? LOG_DEBUG_EXTRA : verbose ? LOG_DEBUG : base);
	libbpf_set_print(cli__libbpf_print);
}

int cli__libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && log__level() < LOG_DEBUG_EXTRA)
		return 0;
	if (level == LIBBPF_INFO && log__level() < LOG_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

/* Is capability @cap in our effective set? */
static bool have_cap(int cap)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = {};

	if (syscall(SYS_capget, &hdr, data))
		return true;	/* cannot tell: let the kernel decide */
	return data[cap / 32].effective & (1U << (cap % 32));
}

int cli__check_privileges(void)
{
	const char *btf = getenv("HANGTRACE_SYS_BTF");
	struct stat st;

	if (geteuid() != 0) {
		p_err("hangtrace needs root (BPF and reading another process's memory): run it with sudo");
		return -EPERM;
	}
	/* root without the capabilities, e.g. in a container or under capsh --drop */
	if (!have_cap(CAP_SYS_ADMIN) && !(have_cap(CAP_BPF) && have_cap(CAP_PERFMON))) {
		p_err("hangtrace needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), which this root "
		      "process lacks (a container or a dropped capability?)");
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

struct pyproc *cli__discover(pid_t pid, int *err)
{
	struct pyproc *p = calloc(1, sizeof(*p));
	char why[512];

	if (!p) {
		*err = -ENOMEM;
		p_err("out of memory");
		return NULL;
	}
	*err = pyproc__discover(pid, p, why, sizeof(why));
	if (*err) {
		p_err("%s", why);
		free(p);
		return NULL;
	}
	return p;
}

void cli__trace_opts(const struct env *env, struct trace_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->duration_ns = env->duration_ns;
	o->min_block_ns = env->min_block_ns;
	o->max_frames = env->max_frames;
	o->max_stacks = env->max_stacks;
	o->max_aggregates = env->max_aggregates;
	o->max_symbols = env->max_symbols;
	o->stall_ns = env->stall_ns;
	o->alert_ns = env->alert_ns;
	o->loop_tid = env->loop_tid;
	o->sample_hz = env->sample_hz;
	o->quiet = env->quiet;
	o->children = env->children;
	o->focus = env->focus;
	/* the live status line: only ever drawn on a terminal */
	o->progress = !env->quiet;
}
