/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The report model and its writers (text, JSON, folded). */
#ifndef HT_REPORT_H
#define HT_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hangtrace.h"

struct rframe {
	char *function;
	char *file;
	int line;
};

struct rstack {
	struct rframe *frames;		/* innermost first */
	int depth;
	bool truncated;			/* cut at the frame limit: a <truncated> frame follows */
	bool partial;			/* a read failed mid-walk */
};

struct rblocker {
	uint32_t pid, tid;
	int reason;			/* enum ht_reason */
	int syscall;			/* -1 none */
	uint64_t total_ns, max_ns;
	uint32_t count;
	struct rstack stack;
	uint64_t stack_id;		/* as the walker hashes it; 0 none */
	char **kstack;
	int kdepth;
	/* waker */
	uint32_t wk_tid, wk_pid;
	char wk_name[64];
	struct rstack wk_stack;
	bool wk_timer;			/* the wait timed out */
	bool still_blocked;
	char *fd_desc;			/* "127.0.0.1:5432", NULL if none */
	int fd;
	bool event_loop;
	const char *hint;
};

struct rthread {
	uint32_t tid;
	char name[64];
	bool python;
	bool event_loop;
	bool exited;
	uint64_t on_ns, off_ns, idle_ns;
	uint64_t reason_ns[HT_R_MAX];
	uint32_t reason_cnt[HT_R_MAX];
};

struct report {
	uint32_t pid;
	char *exe;
	char *cmdline;
	char *python;			/* "3.11.2" */
	uint64_t start_unix_ns;
	uint64_t duration_ns;
	uint64_t min_block_ns;
	bool target_exited;
	struct rthread *threads;
	size_t nr_threads;
	struct rblocker *blockers;	/* sorted by total_ns, largest first */
	size_t nr_blockers;
	struct ht_stats stats;
	uint64_t unreadable_code;	/* code objects that could not be read */
};

const char *reason_name(int reason);
const char *blocker_kind(const struct rblocker *b);

void report__free(struct report *r);

int report__write_text(const struct report *r, FILE *f);
int report__write_json(const struct report *r, FILE *f);
int report__write_folded(const struct report *r, FILE *f);

#endif
