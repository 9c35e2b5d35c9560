// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * floor: count every sched_switch of the machine until SIGINT or SIGTERM.
 *
 * The overhead benchmark (run.py) uses it as the cheapest possible tracer.
 * Once attached it prints "floor: attached (HOOK)" on stderr.  On SIGUSR1,
 * and once more at exit, it prints one JSON line on stdout:
 *   {"t_ns": CLOCK_MONOTONIC, "total": N, "per_cpu": [N0, N1, ...]}
 */
#include <argp.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "floor.skel.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif

struct thread_state {
	__u64 ts;
	__u64 pad[41];
};

#define TRACEFS "/sys/kernel/tracing"

enum hook { HOOK_RAW_TP, HOOK_TP, HOOK_TP_BTF, HOOK_HASH, HOOK_TLS };

static const char *const hook_names[] = {
	[HOOK_RAW_TP] = "raw_tp",
	[HOOK_TP] = "tracepoint",
	[HOOK_TP_BTF] = "tp_btf",
	[HOOK_HASH] = "tp_btf, hash lookups",
	[HOOK_TLS] = "tp_btf, task storage lookups",
};

static struct env {
	enum hook hook;
	int verbose;
	int pid;		/* --hash / --tls: the process whose threads have state */
} env = {
	.hook = HOOK_RAW_TP,
};

static volatile sig_atomic_t exiting;
static volatile sig_atomic_t dump;

const char *argp_program_version = "floor 1.0";
static const char argp_program_doc[] =
	"floor: count sched_switch on every CPU, the cheapest possible tracer.\n"
	"\n"
	"USAGE: floor [--classic | --btf | --hash PID | --tls PID] [-v]\n"
	"\n"
	"Runs until SIGINT or SIGTERM; SIGUSR1 prints the counts so far.\n"
	"\n"
	"EXAMPLES:\n"
	"    floor               # raw tracepoint (raw_tp/sched_switch)\n"
	"    floor --classic     # classic tracepoint (tracepoint/sched/sched_switch)\n"
	"    floor --btf         # BTF-typed tracepoint (tp_btf/sched_switch)\n"
	"    floor --hash PID    # tp_btf, + the state of prev and next looked up by TID in a hash\n"
	"    floor --tls PID     # tp_btf, + the same state in task-local storage\n";

enum { OPT_CLASSIC = 1000, OPT_BTF, OPT_HASH, OPT_TLS };

static const struct argp_option opts[] = {
	{ "classic", OPT_CLASSIC, NULL, 0, "Attach as a classic tracepoint", 0 },
	{ "btf", OPT_BTF, NULL, 0, "Attach as a BTF-typed tracepoint (tp_btf)", 0 },
	{ "hash", OPT_HASH, "PID", 0, "tp_btf, looking up PID's threads' state in a hash", 0 },
	{ "tls", OPT_TLS, "PID", 0, "tp_btf, looking up PID's threads' state in task storage", 0 },
	{ "verbose", 'v', NULL, 0, "Show libbpf debug output", 0 },
	{},
};

static error_t parse_arg(int key, char *arg, struct argp_state *state)
{
	(void)arg;
	switch (key) {
	case OPT_CLASSIC:
		env.hook = HOOK_TP;
		break;
	case OPT_BTF:
		env.hook = HOOK_TP_BTF;
		break;
	case OPT_HASH:
	case OPT_TLS:
		env.hook = key == OPT_HASH ? HOOK_HASH : HOOK_TLS;
		env.pid = atoi(arg);
		if (env.pid <= 0)
			argp_error(state, "invalid PID '%s'", arg);
		break;
	case 'v':
		env.verbose = 1;
		break;
	case ARGP_KEY_ARG:
		argp_usage(state);
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

static int libbpf_print_fn(enum libbpf_print_level level, const char *format, va_list args)
{
	if (level == LIBBPF_DEBUG && !env.verbose)
		return 0;
	return vfprintf(stderr, format, args);
}

static void sig_handler(int sig)
{
	if (sig == SIGUSR1)
		dump = 1;
	else
		exiting = 1;
}

/*
 * libbpf resolves a classic tracepoint through tracefs.  If it is not
 * mounted, mount it in a mount namespace of our own, so the machine's mounts
 * stay as they were.
 */
static int ensure_tracefs(void)
{
	if (access(TRACEFS "/events/sched/sched_switch/id", R_OK) == 0)
		return 0;
	if (unshare(CLONE_NEWNS) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL)) {
		int err = -errno;

		fprintf(stderr, "floor: cannot mount tracefs on %s: %s\n", TRACEFS, strerror(errno));
		return err;
	}
	return 0;
}

/* Give every thread of env.pid a state entry in the map of the chosen hook. */
static int fill_states(struct floor_bpf *skel)
{
	int fd = bpf_map__fd(env.hook == HOOK_HASH ? skel->maps.by_tid : skel->maps.by_task);
	static const char zeros[sizeof(struct thread_state)];
	struct dirent *de;
	char path[64];
	int n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", env.pid);
	dir = opendir(path);
	if (!dir) {
		fprintf(stderr, "floor: cannot list the threads of %d: %s\n", env.pid, strerror(errno));
		return -errno;
	}
	while ((de = readdir(dir))) {
		int tid = atoi(de->d_name), pfd, err;

		if (tid <= 0)
			continue;
		if (env.hook == HOOK_HASH) {
			__u32 key = tid;

			err = bpf_map_update_elem(fd, &key, zeros, BPF_ANY);
		} else {
			/* task storage is keyed by a pidfd; a thread's needs PIDFD_THREAD (6.9) */
			pfd = syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
			if (pfd < 0) {
				err = -1;
			} else {
				err = bpf_map_update_elem(fd, &pfd, zeros, BPF_ANY);
				close(pfd);
			}
		}
		if (err) {
			fprintf(stderr, "floor: thread %d: %s\n", tid, strerror(errno));
			closedir(dir);
			return -errno;
		}
		n++;
	}
	closedir(dir);
	return n ? 0 : -ESRCH;
}

/* Print the per-CPU counts as one JSON line. */
static int print_counts(int map_fd, int ncpus)
{
	__u64 *vals, total = 0;
	struct timespec ts;
	__u32 zero = 0;
	int i;

	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map_fd, &zero, vals)) {
		int err = -errno;

		fprintf(stderr, "floor: cannot read the counters: %s\n", strerror(errno));
		free(vals);
		return err;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	for (i = 0; i < ncpus; i++)
		total += vals[i];
	printf("{\"t_ns\": %llu, \"total\": %llu, \"per_cpu\": [",
	       (unsigned long long)ts.tv_sec * 1000000000ULL + ts.tv_nsec,
	       (unsigned long long)total);
	for (i = 0; i < ncpus; i++)
		printf("%s%llu", i ? ", " : "", (unsigned long long)vals[i]);
	printf("]}\n");
	fflush(stdout);
	free(vals);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct argp argp = {
		.options = opts,
		.parser = parse_arg,
		.doc = argp_program_doc,
	};
	struct floor_bpf *skel = NULL;
	struct sigaction sa = {};
	sigset_t block, orig;
	int ncpus, err;

	err = argp_parse(&argp, argc, argv, 0, NULL, NULL);
	if (err)
		return 2;
	libbpf_set_print(libbpf_print_fn);

	ncpus = libbpf_num_possible_cpus();
	if (ncpus < 0) {
		err = ncpus;
		fprintf(stderr, "floor: cannot count the CPUs: %s\n", strerror(-err));
		goto cleanup;
	}
	if (env.hook == HOOK_TP) {
		err = ensure_tracefs();
		if (err)
			goto cleanup;
	}

	/* Open, keep only the program of the chosen hook, load */
	skel = floor_bpf__open();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "floor: cannot open the BPF object: %s\n", strerror(-err));
		goto cleanup;
	}
	bpf_program__set_autoload(skel->progs.handle_raw_tp, env.hook == HOOK_RAW_TP);
	bpf_program__set_autoload(skel->progs.handle_tp, env.hook == HOOK_TP);
	bpf_program__set_autoload(skel->progs.handle_tp_btf, env.hook == HOOK_TP_BTF);
	bpf_program__set_autoload(skel->progs.handle_hash, env.hook == HOOK_HASH);
	bpf_program__set_autoload(skel->progs.handle_tls, env.hook == HOOK_TLS);
	err = floor_bpf__load(skel);
	if (err) {
		fprintf(stderr, "floor: cannot load the BPF program: %s\n", strerror(-err));
		goto cleanup;
	}

	/* Signals are only taken inside sigsuspend(), so none is missed */
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &orig);

	if (env.hook == HOOK_HASH || env.hook == HOOK_TLS) {
		err = fill_states(skel);
		if (err)
			goto cleanup;
	}

	/* Attach: counting starts here */
	err = floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "floor: cannot attach to sched_switch (%s): %s\n",
			hook_names[env.hook], strerror(-err));
		goto cleanup;
	}
	fprintf(stderr, "floor: attached (%s)\n", hook_names[env.hook]);

	while (!exiting) {
		sigsuspend(&orig);
		if (dump) {
			dump = 0;
			err = print_counts(bpf_map__fd(skel->maps.switches), ncpus);
			if (err)
				goto cleanup;
		}
	}
	err = print_counts(bpf_map__fd(skel->maps.switches), ncpus);

cleanup:
	floor_bpf__destroy(skel);
	return err ? 1 : 0;
}
