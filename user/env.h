/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef HT_ENV_H
#define HT_ENV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define HANGTRACE_VERSION "0.1.0"

enum out_format {
	FMT_TEXT,
	FMT_JSON,
	FMT_FOLDED,
	FMT_PPROF,		/* gzipped profile.proto: binary */
	FMT_SPEEDSCOPE,
	FMT_SVG,		/* interactive flame graph */
	FMT_HTML,		/* summary, stall timeline and flame graph */
};

struct env {
	pid_t pid;
	uint64_t duration_ns;		/* 0: until Ctrl-C */
	uint64_t min_block_ns;
	enum out_format format;
	const char *output;		/* NULL: stdout */
	int verbose;
	uint32_t max_frames;
	uint32_t max_stacks;		/* --max-stacks: entries of each BPF stack map */
	uint32_t max_aggregates;	/* --max-aggregates: entries of each aggregate map */
	uint32_t max_symbols;		/* --max-symbols: code objects cached per process */
	uint64_t stall_ns;		/* --stall */
	uint64_t alert_ns;		/* --alert; 0: off */
	uint32_t loop_tid;		/* --loop-tid */
	uint32_t sample_hz;		/* --sample-hz; 0: no on-CPU sampling */
	int what;			/* --what: enum report_what */
	int quiet;			/* --quiet: nothing on stderr but errors */
	int children;			/* --children: trace descendants too */
	const char *focus;		/* --focus REGEX (checked by env__parse), NULL: none */
	/* `hangtrace run [options] -- CMD [ARGS...]` */
	int run;			/* set by the caller: parse for `run` */
	char **cmd_argv;		/* CMD [ARGS...], NULL-terminated (points into argv) */
	int cmd_argc;
};

/* env__init - the defaults of every option. */
void env__init(struct env *env);

/*
 * env__parse - parse the command line into @env.  Returns 0, or a negative
 * errno after printing a one-line error (exit status 2).  With @env->run
 * set, parses `run`'s arguments: the options, then the command (the first
 * argument that is not an option, or everything after "--"), and no -p.
 */
int env__parse(int argc, char **argv, struct env *env);

/*
 * parse_duration - "2", "2.5", "250ms", "10us", "3s", "1m" -> nanoseconds.
 * A bare number is in @unit_ns.  0 or -EINVAL.
 */
int parse_duration(const char *s, uint64_t unit_ns, uint64_t *out);

#endif
