/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `hangtrace agent`: always on, every CPython process of the host, one BPF
 * session.  Stall events as JSON lines, Prometheus metrics, profiles on disk
 * and pushed to Pyroscope.  docs/agent.md.
 *
 *   agent.c           command line, lifecycle, the loop: discover, flush, rotate
 *   agent_discover.c  which processes: /proc scan, service identity, filters
 *   agent_metrics.c   counters and histograms; the Prometheus endpoint (libmicrohttpd, dlopen'ed)
 *   agent_events.c    stall events as JSON lines; profile files and their retention
 *   agent_push.c      the Pyroscope pusher (libcurl, dlopen'ed; own thread, bounded queue)
 */
#ifndef HT_AGENT_H
#define HT_AGENT_H

#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "hangtrace.h"

struct report;

/* cmd_agent - `hangtrace agent ...` (argv[0] is "agent").  Returns the exit status. */
int cmd_agent(int argc, char **argv);

/* --- which processes, and which service each belongs to ------------------ */

/* What identifies a service in labels: bounded, never the pid. */
struct agent_ident {
	char exe[64];			/* basename of the executable: "python3.11" */
	char script[128];		/* script basename or -m module: "app.py", "uvicorn" */
	char cgroup[128];		/* last part of the cgroup v2 path; container id when one */
	char pid[16];			/* --pid-label only: the process id, else "" */
};

#define AGENT_MAX_FILTERS 16

enum agent_filter_field { AF_EXE, AF_CMDLINE, AF_CGROUP };

struct agent_filter {
	regex_t re[AGENT_MAX_FILTERS];
	int field[AGENT_MAX_FILTERS];
	int n;
};

/*
 * agent_filter__add - "exe:REGEX", "cmdline:REGEX", "cgroup:REGEX" or a bare
 * REGEX (command line).  0, or -EINVAL after printing why.
 */
int agent_filter__add(struct agent_filter *f, const char *spec);
void agent_filter__free(struct agent_filter *f);

/* The facts filters and labels are made of, read from /proc. */
struct agent_procinfo {
	pid_t pid;
	uint64_t starttime;		/* clock ticks since boot: with pid, the process's identity */
	char exe[4096];			/* readlink /proc/PID/exe */
	char *cmdline;			/* NULs as spaces, malloc'ed */
	char cgroup[512];		/* the cgroup v2 path ("" when unknown) */
};

/* agent_procinfo__read - 0, or -errno (-ESRCH gone, -ENOENT kernel thread or zombie). */
int agent_procinfo__read(pid_t pid, struct agent_procinfo *pi);
void agent_procinfo__free(struct agent_procinfo *pi);
/* agent_procinfo__starttime - the start time of @pid, 0 when it is gone or a zombie. */
uint64_t agent_procinfo__starttime(pid_t pid);

/* agent__wanted - does @pi pass --include (any) and --exclude (none)? */
bool agent__wanted(const struct agent_filter *inc, const struct agent_filter *exc,
		   const struct agent_procinfo *pi);

/* agent_ident__from - the service labels of process @pi. */
void agent_ident__from(const struct agent_procinfo *pi, struct agent_ident *id);

/* --- metrics ----------------------------------------------------------- */

#define AGENT_NR_BUCKETS 11

enum agent_cap {
	CAP_PROCESSES,			/* --max-processes */
	CAP_SERVICES,			/* --max-services: more go to service "_other" */
	CAP_EVENTS,			/* --max-events per process per window */
	CAP_PUSH_QUEUE,			/* --pyroscope-queue */
	CAP_BPF_PROCESSES,		/* the BPF session's own process limit */
	CAP_STACKS,			/* --max-stacks: stacks not stored (BPF stacks_full) */
	CAP_AGGREGATES,			/* --max-aggregates: blocks, samples not kept (BPF) */
	CAP_SYMBOLS,			/* --max-symbols: frames symbolized without caching */
	CAP_MAX,
};

struct agent_service {
	struct agent_ident id;
	uint32_t procs;			/* tracked now */
	uint64_t stalls;
	uint64_t stall_bucket[AGENT_NR_BUCKETS];	/* per bucket, not cumulative */
	uint64_t stall_ns;
	uint64_t offcpu_ns[HT_R_MAX];
};

struct agent_metrics {
	pthread_mutex_t lock;
	struct agent_service *svc;
	size_t nr_svc, max_svc;
	struct agent_service other;	/* what did not fit under --max-services */
	bool other_used;
	struct ht_stats bpf;		/* BPF-side drops and failures (cumulative) */
	uint64_t timeline_dropped;
	uint64_t caps_hit[CAP_MAX];
	uint64_t procs_started, procs_exited;
	uint64_t exec_events, probes;	/* exec notifications; interpreter look-ups */
	uint64_t events_written, events_failed;
	uint64_t profiles_written, profiles_failed, profiles_removed;
	uint64_t push_ok, push_failed, push_dropped, push_retries;
	uint64_t flush_ns_total;	/* time spent building reports */
	double start_unix;
	void *httpd;			/* struct MHD_Daemon * */
};

extern const double agent_stall_buckets[AGENT_NR_BUCKETS];

int agent_metrics__init(struct agent_metrics *m, size_t max_services);
void agent_metrics__fini(struct agent_metrics *m);
/* agent_metrics__service - the service of @id (created; "_other" when full).  Call locked. */
struct agent_service *agent_metrics__service(struct agent_metrics *m, const struct agent_ident *id);
/* agent_metrics__stall - one stall of @dur_ns in @s.  Call locked. */
void agent_metrics__stall(struct agent_service *s, uint64_t dur_ns);
/* agent_metrics__write - the Prometheus text exposition of @m (takes the lock). */
int agent_metrics__write(struct agent_metrics *m, FILE *f);
/* agent_metrics__serve - listen on "HOST:PORT" ("[::1]:PORT").  0 or -errno after printing why. */
int agent_metrics__serve(struct agent_metrics *m, const char *addr);
/* agent_label_escape - @s as a label value: valid UTF-8, \\ \" \n escaped, other controls as '?'. */
void agent_label_escape(FILE *f, const char *s);

/* --- stall events and profiles ------------------------------------------ */

struct agent_events {
	const char *path;		/* "-": stdout */
	FILE *f;
};

/* agent_events__open / __reopen (SIGHUP): 0 or -errno after printing why. */
int agent_events__open(struct agent_events *ev, const char *path);
int agent_events__reopen(struct agent_events *ev);
void agent_events__close(struct agent_events *ev);

/*
 * agent_events__stall - one JSON line for stall @i of report @r (a process of
 * service @id, its window opened at @window_mono_ns).  0 or -errno.
 */
int agent_events__stall(struct agent_events *ev, const struct report *r, size_t i,
			const struct agent_ident *id, uint64_t window_mono_ns);

/* agent_profile_name - "hangtrace-<exe>-<script>-<pid>-<unix>", names cut to [A-Za-z0-9._]. */
void agent_profile_name(const struct agent_ident *id, pid_t pid, uint64_t unix_s, char *out,
			size_t outsz);

/*
 * agent_profiles__retain - in @dir, remove hangtrace-* profiles older than
 * @max_age_s (0: no age limit) and all but the newest @keep.  Returns how many
 * were removed.
 */
int agent_profiles__retain(const char *dir, uint64_t max_age_s, unsigned int keep);

/* --- Pyroscope push ----------------------------------------------------- */

struct agent_push;

struct agent_push_opts {
	const char *url;		/* server root: URL/ingest is posted to */
	unsigned int queue_max;		/* profiles waiting; more drop the oldest */
	unsigned int tries;		/* attempts per profile */
	long timeout_ms;		/* per attempt */
	struct agent_metrics *m;	/* counters: push_ok, push_failed, push_dropped */
};

/*
 * agent_push__global_init - load libcurl (dynlib.h) and initialise it, before
 * any thread starts; once.  0, or -errno after printing why (the library or a
 * symbol missing: its Debian package is named).
 */
int agent_push__global_init(void);
void agent_push__global_cleanup(void);
/* agent_push__new - the pusher and its thread (agent_push__global_init first); NULL + errno. */
struct agent_push *agent_push__new(const struct agent_push_opts *opts);
/*
 * agent_push__enqueue - queue one folded profile (takes @body, malloc'ed) for
 * app @name ("hangtrace.offcpu{k=v,...}") over [@from, @until] unix seconds.
 * Never blocks on the network.
 */
void agent_push__enqueue(struct agent_push *p, const char *name, uint64_t from, uint64_t until,
			 char *body, size_t len);
/* agent_push__free - try what is queued until @deadline_ms from now, drop (count) the rest. */
void agent_push__free(struct agent_push *p, long deadline_ms);

#endif
