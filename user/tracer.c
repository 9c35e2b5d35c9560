// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <linux/perf_event.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hangtrace.h"
#include "hangtrace.skel.h"
#include "log.h"
#include "procmem.h"
#include "procthread.h"
#include "pyasyncio.h"
#include "pyproc.h"
#include "pywalk_user.h"
#include "reason.h"
#include "taskiter.h"
#include "tracer.h"

#define MAX_CPUS 1024

struct tracer {
	struct hangtrace_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *iter_link;
	struct bpf_link *sample_links[MAX_CPUS];
	int sample_fds[MAX_CPUS];
	int nr_cpus;
	struct tracer_opts opts;
	struct ht_py_proc *procs;	/* the processes added, to seed their threads */
	uint32_t *pids;
	int nr_procs, cap_procs;
	bool attached;
};

/*
 * Testing aids (docs/hardening.md): shrink the ring buffer and the aggregate
 * and stack maps so that a test can make them overflow and check that the
 * report counts what was lost.  0, or -EINVAL with the error printed.
 */
static int env_size(const char *name, uint64_t min, uint64_t max, bool pow2, uint32_t *out)
{
	const char *s = getenv(name);
	unsigned long long v;
	char *end;

	*out = 0;
	if (!s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max || (pow2 && (v & (v - 1)))) {
		p_err("invalid %s '%s': expected %s from %llu to %llu", name, s,
		      pow2 ? "a power of two" : "a number", (unsigned long long)min,
		      (unsigned long long)max);
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static int handle_event(void *ctx, void *data, size_t size)
{
	struct tracer *tr = ctx;

	const struct ht_event *e = data;

	if (size < sizeof(struct ht_event))
		return 0;
	if (e->type == HT_EV_FORK || e->type == HT_EV_EXEC || e->type == HT_EV_EXIT) {
		if (tr->opts.on_process)
			tr->opts.on_process(e, tr->opts.ctx);
		return 0;
	}
	if (tr->opts.on_event)
		tr->opts.on_event(e, tr->opts.ctx);
	return 0;
}

/*
 * Size the maps before load: the --max-* caps first, then the testing aids,
 * which win (a test shrinks a map below any cap to make it overflow).
 * 0, or -errno with the error printed.
 */
static int size_maps(struct hangtrace_bpf *skel, const struct tracer_opts *opts)
{
	struct bpf_map *stacks[] = { skel->maps.pystacks, skel->maps.kstacks };
	struct bpf_map *aggs[] = { skel->maps.offcpu, skel->maps.oncpu };
	uint32_t rb, entries;
	int err = 0;
	size_t i;

	for (i = 0; i < 2 && !err; i++) {
		if (opts->max_stacks)
			err = bpf_map__set_max_entries(stacks[i], opts->max_stacks);
		if (!err && opts->max_aggregates)
			err = bpf_map__set_max_entries(aggs[i], opts->max_aggregates);
	}
	if (!err)
		err = env_size("HANGTRACE_RINGBUF_SIZE", 4096, 1U << 30, true, &rb);
	if (!err)
		err = env_size("HANGTRACE_MAP_ENTRIES", 1, 1U << 24, false, &entries);
	if (err)
		goto out;
	if (rb)
		err = bpf_map__set_max_entries(skel->maps.events, rb);
	for (i = 0; entries && i < 2 && !err; i++) {
		err = bpf_map__set_max_entries(stacks[i], entries);
		if (!err)
			err = bpf_map__set_max_entries(aggs[i], entries);
	}
out:
	if (err && err != -EINVAL)
		p_err("cannot size the BPF maps: %s", strerror(-err));
	return err;
}

struct tracer *tracer__new(const struct tracer_opts *opts)
{
	struct tracer *tr;
	int err;

	tr = calloc(1, sizeof(*tr));
	if (!tr)
		return NULL;
	tr->opts = *opts;
	tr->nr_cpus = libbpf_num_possible_cpus();
	if (tr->nr_cpus > MAX_CPUS)
		tr->nr_cpus = MAX_CPUS;
	for (int i = 0; i < MAX_CPUS; i++)
		tr->sample_fds[i] = -1;

	/* Open BPF application */
	tr->skel = hangtrace_bpf__open();
	if (!tr->skel) {
		err = -errno;
		p_err("failed to open the BPF object: %s", strerror(-err));
		goto cleanup;
	}

	/* Parameterize: minimum block, frame budget, our own pid */
	tr->skel->rodata->cfg.min_block_ns = opts->min_block_ns;
	tr->skel->rodata->cfg.stall_ns = opts->stall_ns ? opts->stall_ns : 100000000ULL;
	tr->skel->rodata->cfg.loop_tid = opts->loop_tid;
	tr->skel->rodata->cfg.max_frames = opts->max_frames ? opts->max_frames : HT_MAX_PY_FRAMES;
	tr->skel->rodata->cfg.self_pid = getpid();
	/* the walker's loop as on kernels < 5.17, without bpf_loop() (for its tests) */
	tr->skel->rodata->cfg.bounded_loops = getenv("HANGTRACE_BOUNDED_LOOPS") != NULL;
	err = env_size("HANGTRACE_HIDE_SWITCH_INS", 1, 1U << 20, false,
		       &tr->skel->rodata->cfg.hide_switch_ins);
	if (err)
		goto cleanup;
	/* Size the stack and aggregate maps: the memory caps, then the testing aids */
	err = size_maps(tr->skel, opts);
	if (err)
		goto cleanup;

	/* Load & verify BPF programs */
	err = hangtrace_bpf__load(tr->skel);
	if (err) {
		p_err("failed to load the BPF programs (%s); run with -vv for the verifier log",
		      strerror(-err));
		goto cleanup;
	}

	tr->rb = ring_buffer__new(bpf_map__fd(tr->skel->maps.events), handle_event, tr, NULL);
	if (!tr->rb) {
		err = -errno;
		p_err("failed to create the ring buffer: %s", strerror(-err));
		goto cleanup;
	}
	return tr;

cleanup:
	tracer__free(tr);
	errno = -err;
	return NULL;
}

/* @pid's PID namespace, or 0/0 when it is ours.  0 or -errno. */
static int pidns_of(pid_t pid, __u64 *dev, __u64 *ino)
{
	struct stat theirs, ours;
	char path[64];

	*dev = *ino = 0;
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
	if (stat(path, &theirs) || stat("/proc/self/ns/pid", &ours))
		return -errno;
	if (theirs.st_dev != ours.st_dev || theirs.st_ino != ours.st_ino) {
		*dev = theirs.st_dev;
		*ino = theirs.st_ino;
	}
	return 0;
}

int tracer__py_proc(const struct pyproc *p, struct ht_py_proc *out)
{
	const struct py_offsets *o = &p->off;

	if (!p->traits || !p->interp_head_addr)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->interp_head_addr = p->interp_head_addr;
	if (p->gil_addr && p->gil_size) {
		out->gil_lo[0] = p->gil_addr;
		out->gil_hi[0] = p->gil_addr + p->gil_size;
	}
	/* 3.6 keeps the GIL's condition variable and mutex in two statics. */
	if (p->gil36_cond_addr) {
		out->gil_lo[0] = p->gil36_cond_addr;
		out->gil_hi[0] = p->gil36_cond_addr + 48;	/* sizeof(pthread_cond_t) */
	}
	if (p->gil36_mutex_addr) {
		out->gil_lo[1] = p->gil36_mutex_addr;
		out->gil_hi[1] = p->gil36_mutex_addr + 40;	/* sizeof(pthread_mutex_t) */
	}
	/* who holds the GIL: 3.6 exports the holder; 3.7+ keep it in the GIL state */
	if (p->minor == 6) {
		out->gil_holder_addr = p->tstate_current_addr;
	} else if (p->gil_addr && o->gil_last_holder >= 0 && o->gil_locked >= 0) {
		out->gil_holder_addr = p->gil_addr + o->gil_last_holder;
		out->gil_locked_addr = p->gil_addr + o->gil_locked;
	}
	out->code_tag_mask = p->traits->code_tag_mask;
	out->version_hex = p->version_hex;
	out->interp_next = o->interp_next;
	out->interp_tstate_head = o->interp_tstate_head;
	out->ts_next = o->ts_next;
	out->ts_thread_id = o->ts_thread_id;
	out->ts_native_thread_id = o->ts_native_thread_id;
	out->ts_frame = o->ts_frame;
	out->cframe_current_frame = o->cframe_current_frame;
	out->frame_back = o->frame_back;
	out->frame_code = o->frame_code;
	out->frame_lasti = o->frame_lasti;
	out->frame_instr = o->frame_instr;
	out->frame_owner = o->frame_owner;
	out->owner_skip_min = p->traits->owner_skip_min;
	if (pidns_of(p->pid, &out->pidns_dev, &out->pidns_ino))
		return -EINVAL;
	if (out->ts_next < 0 || out->ts_frame < 0 || out->frame_back < 0 || out->frame_code < 0 ||
	    (out->frame_lasti < 0 && out->frame_instr < 0) ||
	    (out->ts_native_thread_id < 0 && out->ts_thread_id < 0) ||
	    (out->owner_skip_min && out->frame_owner < 0))
		return -EINVAL;
	return 0;
}

int tracer__set_asyncio(struct tracer *tr, uint32_t pid, const struct pyasyncio *a)
{
	int i;

	for (i = 0; i < tr->nr_procs; i++) {
		if (tr->pids[i] != pid)
			continue;
		tr->procs[i].task_name = a->task_name;
		tr->procs[i].task_coro = a->task_coro;
		tr->procs[i].coro_code = a->coro_code;
		tr->procs[i].ts_running_task = a->ts_running_task;
		if (bpf_map__update_elem(tr->skel->maps.py_procs, &pid, sizeof(pid), &tr->procs[i],
					 sizeof(tr->procs[i]), BPF_EXIST))
			return -errno;
		return 0;
	}
	return -ENOENT;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * A thread asleep at attach is off-CPU from now on: give it the interval's
 * start and reason (as note_block() would have), so that its wake-up during
 * the window is a block like any other instead of nothing.
 */
static void seed_wait(struct tracer *tr, int i, struct procmem *mem, struct ht_thread *t)
{
	struct procthread_wait w = { .syscall = -1, .fd = -1 };
	char state;

	if (procthread__state(tr->pids[i], t->tid, &state) || (state != 'S' && state != 'D'))
		return;
	procthread__classify(tr->pids[i], t->tid, mem, &tr->procs[i], &w);
	free(w.fd_desc);
	t->off_ts = now_ns();
	t->syscall = w.syscall;
	t->arg0 = w.syscall == HT_NR_futex ? w.args[0] : (__u64)(__s64)w.fd;
	t->reason = w.syscall >= 0 && ht_is_loop_wait(w.syscall, w.args[1]) ? HT_R_IDLE :
		    (__u32)w.reason;
}

/*
 * Make the thread entries of process @i's existing threads.  Called once the
 * programs are attached: threads born after that get theirs from handle_fork,
 * and BPF_NOEXIST keeps an entry the fork hook made first.
 */
static int seed_threads(struct tracer *tr, int i)
{
	int fd = bpf_map__fd(tr->skel->maps.threads);
	struct ht_task_info *tasks = NULL;
	struct procmem *mem;
	size_t nr_tasks = 0, k;
	struct ht_thread t;
	struct dirent *de;
	char path[64];
	__u32 tid;
	DIR *dir;

	/*
	 * Find each thread's thread state now: the BPF side walks only the
	 * first HT_MAX_TSTATES of the list, and new threads go to its head.
	 */
	mem = procmem__open(tr->pids[i]);
	if (mem && tracer__task_info(tr, tr->pids[i], &tasks, &nr_tasks))
		nr_tasks = 0;

	snprintf(path, sizeof(path), "/proc/%u/task", tr->pids[i]);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		tid = strtoul(de->d_name, NULL, 10);
		memset(&t, 0, sizeof(t));
		t.pid = tr->pids[i];
		t.tid = tid;
		t.syscall = -1;
		memcpy(t.gil_lo, tr->procs[i].gil_lo, sizeof(t.gil_lo));
		memcpy(t.gil_hi, tr->procs[i].gil_hi, sizeof(t.gil_hi));
		for (k = 0; k < nr_tasks; k++)
			if (tasks[k].tid == tid)
				t.fsbase = tasks[k].fsbase;
		if (mem)
			t.tstate = pywalk__find_tstate(&tr->procs[i], mem, tid, t.fsbase);
		seed_wait(tr, i, mem, &t);
		if (bpf_map_update_elem(fd, &tid, &t, BPF_NOEXIST) && errno != EEXIST)
			p_warn("thread %u of process %u cannot be traced: %s", tid, tr->pids[i],
			       strerror(errno));
	}
	closedir(dir);
	free(tasks);
	procmem__close(mem);
	return 0;
}

static int find_proc(const struct tracer *tr, uint32_t pid)
{
	for (int i = 0; i < tr->nr_procs; i++)
		if (tr->pids[i] == pid)
			return i;
	return -1;
}

int tracer__add_process(struct tracer *tr, const struct pyproc *p)
{
	struct ht_py_proc proc, *np;
	__u32 pid = p->pid, *npids;
	int err, i;

	err = tracer__py_proc(p, &proc);
	if (err)
		return err;
	i = find_proc(tr, pid);
	if (i < 0) {
		if (tr->nr_procs == tr->cap_procs) {
			int cap = tr->cap_procs ? tr->cap_procs * 2 : 8;

			np = realloc(tr->procs, cap * sizeof(*np));
			if (!np)
				return -ENOMEM;
			tr->procs = np;
			npids = realloc(tr->pids, cap * sizeof(*npids));
			if (!npids)
				return -ENOMEM;
			tr->pids = npids;
			tr->cap_procs = cap;
		}
		i = tr->nr_procs++;
	}
	tr->procs[i] = proc;
	tr->pids[i] = pid;
	err = bpf_map__update_elem(tr->skel->maps.py_procs, &pid, sizeof(pid), &proc, sizeof(proc),
				   BPF_ANY);
	if (err) {
		err = -errno;
		tr->pids[i] = tr->pids[--tr->nr_procs];
		tr->procs[i] = tr->procs[tr->nr_procs];
		return err;
	}
	/* once attached, the fork hook sees new threads: seed the ones already there */
	if (tr->attached)
		return seed_threads(tr, i);
	return 0;
}

int tracer__follow(struct tracer *tr, uint32_t pid)
{
	__u32 key = pid, root = pid;

	if (bpf_map__update_elem(tr->skel->maps.followed, &key, sizeof(key), &root, sizeof(root),
				 BPF_ANY))
		return -errno;
	return 0;
}

/* Delete the entries of hash map @map whose key starts with __u32 @pid (keys of @ksz bytes). */
static int delete_by_pid(struct bpf_map *map, size_t ksz, uint32_t pid)
{
	size_t cap = bpf_map__max_entries(map), n = 0, i;
	int fd = bpf_map__fd(map);
	char *keys, *cur, *prev;
	__u32 kpid;
	int err = 0;

	keys = calloc(cap, ksz);
	cur = calloc(2, ksz);
	if (!keys || !cur) {
		err = -ENOMEM;
		goto cleanup;
	}
	prev = NULL;
	/* collect first, delete after: deleting while walking restarts the walk */
	while (n < cap && bpf_map_get_next_key(fd, prev, cur) == 0) {
		memcpy(&kpid, cur, sizeof(kpid));
		if (kpid == pid)
			memcpy(keys + n++ * ksz, cur, ksz);
		memcpy(cur + ksz, cur, ksz);
		prev = cur + ksz;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, keys + i * ksz);
	err = (int)n;
cleanup:
	free(keys);
	free(cur);
	return err;
}

int tracer__remove_process(struct tracer *tr, uint32_t pid)
{
	int fd = bpf_map__fd(tr->skel->maps.threads), i, n = 0, err;
	__u32 key = pid, tid, *prev = NULL;
	struct ht_thread t;
	uint32_t *tids;
	size_t cap = bpf_map__max_entries(tr->skel->maps.threads), nt = 0;

	i = find_proc(tr, pid);
	if (i >= 0) {
		tr->pids[i] = tr->pids[--tr->nr_procs];
		tr->procs[i] = tr->procs[tr->nr_procs];
		n++;
	}
	if (!bpf_map__delete_elem(tr->skel->maps.py_procs, &key, sizeof(key), 0))
		n++;
	if (!bpf_map__delete_elem(tr->skel->maps.followed, &key, sizeof(key), 0))
		n++;
	/* the threads map is keyed by tid: find this process's threads by value */
	tids = calloc(cap, sizeof(*tids));
	if (!tids)
		return -ENOMEM;
	while (nt < cap && bpf_map_get_next_key(fd, prev, &tid) == 0) {
		key = tid;
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &tid, &t) && t.pid == pid)
			tids[nt++] = tid;
	}
	for (size_t j = 0; j < nt; j++)
		bpf_map_delete_elem(fd, &tids[j]);
	free(tids);
	n += nt;
	err = delete_by_pid(tr->skel->maps.offcpu, sizeof(struct ht_agg_key), pid);
	if (err < 0)
		return err;
	n += err;
	err = delete_by_pid(tr->skel->maps.oncpu, sizeof(struct ht_oncpu_key), pid);
	if (err < 0)
		return err;
	n += err;
	return n ? 0 : -ENOENT;
}

/* One software cpu-clock sampler per CPU (works in VMs without a PMU). */
static int attach_samplers(struct tracer *tr)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.size = sizeof(attr),
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.freq = 1,
		.sample_freq = tr->opts.sample_hz,
	};
	int cpu, fd, err;

	for (cpu = 0; cpu < tr->nr_cpus; cpu++) {
		fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			if (errno == ENODEV)
				continue;	/* CPU offline */
			err = -errno;
			p_err("cannot open the cpu-clock sampler on CPU %d: %s", cpu, strerror(-err));
			return err;
		}
		tr->sample_fds[cpu] = fd;
		tr->sample_links[cpu] = bpf_program__attach_perf_event(tr->skel->progs.handle_sample, fd);
		if (!tr->sample_links[cpu]) {
			err = -errno;
			p_err("cannot attach the sampler on CPU %d: %s", cpu, strerror(-err));
			return err;
		}
	}
	return 0;
}

int tracer__attach(struct tracer *tr)
{
	int err;

	/* The task iterator is attached on demand by tracer__task_info(). */
	bpf_program__set_autoattach(tr->skel->progs.dump_task, false);
	err = hangtrace_bpf__attach(tr->skel);
	if (err) {
		p_err("failed to attach the BPF programs: %s", strerror(-err));
		return err;
	}
	tr->attached = true;
	for (int i = 0; i < tr->nr_procs; i++) {
		err = seed_threads(tr, i);
		if (err) {
			if (err == -ENOENT || err == -ESRCH)
				p_err("process %u exited before tracing could start", tr->pids[i]);
			else
				p_err("cannot list the threads of process %u: %s", tr->pids[i],
				      strerror(-err));
			return err;
		}
	}
	if (tr->opts.sample_hz)
		return attach_samplers(tr);
	return 0;
}

int tracer__poll(struct tracer *tr, int timeout_ms)
{
	int n = ring_buffer__poll(tr->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

/* Copy every entry of hash map @map into a malloc'ed array of keys and values. */
static int dump_hash(struct bpf_map *map, size_t ksz, size_t vsz, void **keys, void **vals,
		     size_t *n)
{
	size_t cap = bpf_map__max_entries(map), cnt = 0;
	char *k = NULL, *v = NULL, *prev = NULL;
	int fd = bpf_map__fd(map), err = 0;

	*keys = NULL;
	*vals = NULL;
	*n = 0;
	k = calloc(cap + 1, ksz);
	v = calloc(cap + 1, vsz);
	if (!k || !v) {
		err = -ENOMEM;
		goto cleanup;
	}
	while (cnt < cap && bpf_map_get_next_key(fd, prev, k + cnt * ksz) == 0) {
		if (bpf_map_lookup_elem(fd, k + cnt * ksz, v + cnt * vsz) == 0) {
			prev = k + cnt * ksz;
			cnt++;
		} else {
			/* deleted under us: continue from the last good key */
			if (!prev)
				break;
		}
	}
	*keys = k;
	*vals = v;
	*n = cnt;
	return 0;
cleanup:
	free(k);
	free(v);
	return err;
}

int tracer__snapshot(struct tracer *tr, struct tracer_snapshot *snap)
{
	void *tkeys = NULL;
	int err;

	memset(snap, 0, sizeof(*snap));
	snap->taken_ns = now_ns();
	err = dump_hash(tr->skel->maps.threads, sizeof(__u32), sizeof(struct ht_thread), &tkeys,
			(void **)&snap->threads, &snap->nr_threads);
	free(tkeys);
	if (err)
		return err;
	err = dump_hash(tr->skel->maps.offcpu, sizeof(struct ht_agg_key),
			sizeof(struct ht_agg_val), (void **)&snap->keys, (void **)&snap->vals,
			&snap->nr_aggs);
	if (!err)
		err = dump_hash(tr->skel->maps.oncpu, sizeof(struct ht_oncpu_key), sizeof(__u64),
				(void **)&snap->oncpu_keys, (void **)&snap->oncpu_vals,
				&snap->nr_oncpu);
	if (err) {
		tracer_snapshot__free(snap);
		return err;
	}
	snap->stats = tr->skel->bss->stats;
	return 0;
}

int tracer__oncpu_keys(struct tracer *tr, struct ht_oncpu_key **out, size_t *n)
{
	size_t cap = bpf_map__max_entries(tr->skel->maps.oncpu), cnt = 0;
	int fd = bpf_map__fd(tr->skel->maps.oncpu);
	struct ht_oncpu_key *k;

	*out = NULL;
	*n = 0;
	k = calloc(cap + 1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	while (cnt < cap && bpf_map_get_next_key(fd, cnt ? &k[cnt - 1] : NULL, &k[cnt]) == 0)
		cnt++;
	*out = k;
	*n = cnt;
	return 0;
}

void tracer_snapshot__free(struct tracer_snapshot *snap)
{
	if (!snap)
		return;
	free(snap->threads);
	free(snap->keys);
	free(snap->vals);
	free(snap->oncpu_keys);
	free(snap->oncpu_vals);
	memset(snap, 0, sizeof(*snap));
}

int tracer__pystack(struct tracer *tr, uint64_t id, struct ht_pystack *out)
{
	__u64 key = id;

	if (!id || bpf_map__lookup_elem(tr->skel->maps.pystacks, &key, sizeof(key), out,
					sizeof(*out), 0))
		return -ENOENT;
	return 0;
}

int tracer__kstack(struct tracer *tr, uint64_t id, struct ht_kstack *out)
{
	__u64 key = id;

	if (!id || bpf_map__lookup_elem(tr->skel->maps.kstacks, &key, sizeof(key), out,
					sizeof(*out), 0))
		return -ENOENT;
	return 0;
}

int tracer__task_info(struct tracer *tr, pid_t pid, struct ht_task_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	tr->skel->bss->iter_tgid = pid;
	if (!tr->iter_link) {
		tr->iter_link = bpf_program__attach_iter(tr->skel->progs.dump_task, NULL);
		if (!tr->iter_link)
			return -errno;
	}
	return taskiter__collect(tr->iter_link, out, n);
}

void tracer__stats(struct tracer *tr, struct ht_stats *out)
{
	*out = tr->skel->bss->stats;
}

int tracer__thread(struct tracer *tr, uint32_t tid, struct ht_thread *out)
{
	__u32 key = tid;

	if (bpf_map__lookup_elem(tr->skel->maps.threads, &key, sizeof(key), out, sizeof(*out), 0))
		return -ENOENT;
	return 0;
}

int tracer__loop_threads(struct tracer *tr, uint32_t pid, uint32_t loop_tid, uint32_t *tids,
			 int max)
{
	int fd = bpf_map__fd(tr->skel->maps.threads), n = 0;
	__u32 key, *prev = NULL;
	struct ht_thread t;

	while (n < max && bpf_map_get_next_key(fd, prev, &key) == 0) {
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &t))
			continue;
		if (t.pid == pid && !t.exited && (t.loop_polls || t.tid == loop_tid))
			tids[n++] = t.tid;
	}
	return n;
}

static void detach_samplers(struct tracer *tr)
{
	int cpu;

	for (cpu = 0; cpu < tr->nr_cpus; cpu++) {
		bpf_link__destroy(tr->sample_links[cpu]);
		tr->sample_links[cpu] = NULL;
		if (tr->sample_fds[cpu] >= 0)
			close(tr->sample_fds[cpu]);
		tr->sample_fds[cpu] = -1;
	}
}

void tracer__detach(struct tracer *tr)
{
	if (!tr || !tr->skel)
		return;
	detach_samplers(tr);
	bpf_link__destroy(tr->iter_link);
	tr->iter_link = NULL;
	hangtrace_bpf__detach(tr->skel);
}

void tracer__free(struct tracer *tr)
{
	if (!tr)
		return;
	ring_buffer__free(tr->rb);
	detach_samplers(tr);
	bpf_link__destroy(tr->iter_link);
	hangtrace_bpf__destroy(tr->skel);
	free(tr->procs);
	free(tr->pids);
	free(tr);
}

/* Delete every entry of hash map @map (bounded: BPF may add while we delete). */
static void clear_map(struct bpf_map *map, size_t ksz)
{
	size_t cap = bpf_map__max_entries(map), i;
	int fd = bpf_map__fd(map);
	char *key;

	key = calloc(1, ksz);
	if (!key)
		return;
	for (i = 0; i < 2 * cap && bpf_map_get_next_key(fd, NULL, key) == 0; i++)
		bpf_map_delete_elem(fd, key);
	free(key);
}

int tracer__reset_aggregates(struct tracer *tr)
{
	clear_map(tr->skel->maps.offcpu, sizeof(struct ht_agg_key));
	clear_map(tr->skel->maps.oncpu, sizeof(struct ht_oncpu_key));
	clear_map(tr->skel->maps.pystacks, sizeof(__u64));
	clear_map(tr->skel->maps.kstacks, sizeof(__u64));
	return 0;
}
