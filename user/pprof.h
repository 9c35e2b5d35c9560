/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The report as a pprof profile (go tool pprof, Pyroscope, Parca, Grafana). */
#ifndef HT_PPROF_H
#define HT_PPROF_H

#include <stdio.h>

struct report;

/*
 * pprof__write - write @r to @f as a gzip-compressed profile.proto
 * (github.com/google/pprof, proto/profile.proto).  It holds what r->what
 * asks for: off-CPU blockers (sample types off_cpu/nanoseconds and
 * off_cpu_blocks/count), on-CPU samples (samples/count, cpu/nanoseconds), or
 * both; every sample is labelled with pid, tid, thread, reason, event_loop
 * (and syscall when known).  With --children (r->children) every process is
 * in it: a mapping per executable, a comment per process, the pid label
 * telling their samples apart.  Strings from the target are made valid UTF-8.
 * Returns 0, or -errno with errno set (-ENOMEM, -EIO, -E2BIG).
 */
int pprof__write(const struct report *r, FILE *f);

#endif
