/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What every hangtrace command does the same way: arguments, privileges, libbpf output. */
#ifndef HT_CLI_H
#define HT_CLI_H

#include <stdarg.h>
#include <stdint.h>
#include <sys/types.h>

#include <bpf/libbpf.h>

/* cli__parse_pid - a positive process or thread id, the whole string.  0 or -EINVAL. */
int cli__parse_pid(const char *s, pid_t *out);

/*
 * cli__parse_max_frames - --max-frames: 1..HT_MAX_PY_FRAMES into @out.  0, or
 * EINVAL after printing the one-line error (the tracer's and dump's message).
 */
int cli__parse_max_frames(const char *arg, uint32_t *out);

/*
 * cli__set_verbosity - our log level from the -v count (-v debug, -vv debug
 * and libbpf's), @base without -v; libbpf's output through ours.
 */
void cli__set_verbosity(int verbose, int base);

/* cli__libbpf_print - libbpf's output, filtered by our log level (-v info, -vv debug). */
int cli__libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args);

/*
 * cli__check_privileges - root, and a kernel with BTF ($HANGTRACE_SYS_BTF
 * overrides /sys/kernel/btf/vmlinux, for tests).  0, or -errno after printing
 * a one-line error.
 */
int cli__check_privileges(void);

/*
 * cli__discover - find the CPython of process @pid (a calloc'ed struct pyproc,
 * free() it).  NULL after printing the one-line reason, with *@err = -errno.
 */
struct pyproc;
struct pyproc *cli__discover(pid_t pid, int *err);

/* cli__trace_opts - the tracing options of @env into @o (stop, child_status left NULL). */
struct env;
struct trace_opts;
void cli__trace_opts(const struct env *env, struct trace_opts *o);

#endif
