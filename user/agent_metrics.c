// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agent's counters and the Prometheus text exposition (format 0.0.4),
 * served by libmicrohttpd from its own thread: connection limits, timeouts,
 * GET /metrics only.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "agent.h"
#include "dynlib.h"
#include "log.h"
#include "report.h"
#include "utf8.h"

/*
 * Every libmicrohttpd function the endpoint calls, loaded when it starts
 * (dynlib.h): typed by microhttpd.h, called as mhd.start_daemon() and so on.
 */
#define MHD_FUNCS(FN)								\
	FN(start_daemon) FN(stop_daemon) FN(create_response_from_buffer)	\
	FN(add_response_header) FN(queue_response) FN(destroy_response)

static struct {
#define MHD_MEMBER(f) __typeof__(MHD_##f) *f;
	MHD_FUNCS(MHD_MEMBER)
#undef MHD_MEMBER
} mhd;

static const struct dynlib_sym mhd_syms[] = {
#define MHD_SYM(f) { "MHD_" #f, (void **)&mhd.f },
	MHD_FUNCS(MHD_SYM)
#undef MHD_SYM
};

static struct dynlib libmicrohttpd = {
	.soname = "libmicrohttpd.so.12",
	.package = "libmicrohttpd12",
	.syms = mhd_syms,
	.nr_syms = sizeof(mhd_syms) / sizeof(mhd_syms[0]),
};

/* Stall durations (seconds): a stall is 100 ms or more by default. */
const double agent_stall_buckets[AGENT_NR_BUCKETS] = {
	0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800,
};

int agent_metrics__init(struct agent_metrics *m, size_t max_services)
{
	struct timespec ts;

	memset(m, 0, sizeof(*m));
	pthread_mutex_init(&m->lock, NULL);
	m->max_svc = max_services;
	m->svc = calloc(max_services ? max_services : 1, sizeof(*m->svc));
	if (!m->svc)
		return -ENOMEM;
	snprintf(m->other.id.exe, sizeof(m->other.id.exe), "_other");
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_unix = ts.tv_sec + ts.tv_nsec / 1e9;
	return 0;
}

void agent_metrics__fini(struct agent_metrics *m)
{
	if (m->httpd)
		mhd.stop_daemon(m->httpd);
	m->httpd = NULL;
	free(m->svc);
	m->svc = NULL;
	pthread_mutex_destroy(&m->lock);
}

struct agent_service *agent_metrics__service(struct agent_metrics *m, const struct agent_ident *id)
{
	struct agent_service *s;
	size_t i;

	for (i = 0; i < m->nr_svc; i++) {
		s = &m->svc[i];
		if (!strcmp(s->id.exe, id->exe) && !strcmp(s->id.script, id->script) &&
		    !strcmp(s->id.cgroup, id->cgroup) && !strcmp(s->id.pid, id->pid))
			return s;
	}
	if (m->nr_svc == m->max_svc) {
		if (!m->caps_hit[CAP_SERVICES]++)
			p_warn("more than %zu services (--max-services): the rest are counted as "
			       "exe=\"_other\"", m->max_svc);
		m->other_used = true;
		return &m->other;
	}
	s = &m->svc[m->nr_svc++];
	memset(s, 0, sizeof(*s));
	s->id = *id;
	return s;
}

void agent_metrics__stall(struct agent_service *s, uint64_t dur_ns)
{
	double secs = dur_ns / 1e9;
	int i;

	s->stalls++;
	s->stall_ns += dur_ns;
	for (i = 0; i < AGENT_NR_BUCKETS; i++) {
		if (secs <= agent_stall_buckets[i]) {
			s->stall_bucket[i]++;
			break;
		}
	}
}

/*
 * A label value as the text format wants it: UTF-8, with backslash, double
 * quote and line feed escaped.  Names come from the target (command lines,
 * executable names): invalid UTF-8 becomes U+FFFD, other control characters '?'.
 */
void agent_label_escape(FILE *f, const char *s)
{
	char *clean = utf8_sanitize(s ? s : "");
	const unsigned char *p;

	if (!clean)
		return;
	for (p = (const unsigned char *)clean; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", f);
		else if (*p == '"')
			fputs("\\\"", f);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p < 0x20 || *p == 0x7f)
			fputc('?', f);
		else
			fputc(*p, f);
	}
	free(clean);
}

static void put_labels(FILE *f, const struct agent_service *s, const char *extra_k,
		       const char *extra_v)
{
	fputs("{exe=\"", f);
	agent_label_escape(f, s->id.exe);
	fputs("\",script=\"", f);
	agent_label_escape(f, s->id.script);
	fputs("\",cgroup=\"", f);
	agent_label_escape(f, s->id.cgroup);
	fputc('"', f);
	if (s->id.pid[0])
		fprintf(f, ",pid=\"%s\"", s->id.pid);	/* digits only */
	if (extra_k)
		fprintf(f, ",%s=\"%s\"", extra_k, extra_v);
	fputc('}', f);
}

static void header(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Every service, the _other bucket included when used. */
#define for_each_service(m, s, i)                                                        \
	for (i = 0; i <= (m)->nr_svc; i++)                                               \
		if ((s = i < (m)->nr_svc ? &(m)->svc[i] : (m)->other_used ? &(m)->other : NULL))

static void write_own(FILE *f, const struct agent_metrics *m)
{
	struct rusage ru;
	long rss_pages = 0, pagesz = sysconf(_SC_PAGESIZE);
	FILE *st;

	getrusage(RUSAGE_SELF, &ru);
	header(f, "process_cpu_seconds_total", "counter",
	       "CPU time of the agent itself (user and system), seconds.");
	fprintf(f, "process_cpu_seconds_total %.6f\n",
		ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
			(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	st = fopen("/proc/self/statm", "re");
	if (st) {
		if (fscanf(st, "%*d %ld", &rss_pages) != 1)
			rss_pages = 0;
		fclose(st);
	}
	header(f, "process_resident_memory_bytes", "gauge",
	       "Resident memory of the agent itself, bytes.");
	fprintf(f, "process_resident_memory_bytes %ld\n", rss_pages * pagesz);
	header(f, "process_start_time_seconds", "gauge",
	       "When the agent started, seconds since the epoch.");
	fprintf(f, "process_start_time_seconds %.3f\n", m->start_unix);
}

int agent_metrics__write(struct agent_metrics *m, FILE *f)
{
	static const char *const cap_names[CAP_MAX] = {
		[CAP_PROCESSES] = "processes",
		[CAP_SERVICES] = "services",
		[CAP_EVENTS] = "events",
		[CAP_PUSH_QUEUE] = "pyroscope_queue",
		[CAP_BPF_PROCESSES] = "bpf_processes",
		[CAP_STACKS] = "stacks",
		[CAP_AGGREGATES] = "aggregates",
		[CAP_SYMBOLS] = "symbols",
	};
	const struct agent_service *s;
	uint64_t cum;
	size_t i;
	int b, r;

	pthread_mutex_lock(&m->lock);

	header(f, "hangtrace_event_loop_stall_duration_seconds", "histogram",
	       "Event-loop iterations longer than the stall threshold, by duration.");
	for_each_service(m, s, i) {
		char le[32];

		for (b = 0, cum = 0; b < AGENT_NR_BUCKETS; b++) {
			cum += s->stall_bucket[b];
			snprintf(le, sizeof(le), "%g", agent_stall_buckets[b]);
			fputs("hangtrace_event_loop_stall_duration_seconds_bucket", f);
			put_labels(f, s, "le", le);
			fprintf(f, " %llu\n", (unsigned long long)cum);
		}
		fputs("hangtrace_event_loop_stall_duration_seconds_bucket", f);
		put_labels(f, s, "le", "+Inf");
		fprintf(f, " %llu\n", (unsigned long long)s->stalls);
		fputs("hangtrace_event_loop_stall_duration_seconds_sum", f);
		put_labels(f, s, NULL, NULL);
		fprintf(f, " %.6f\n", s->stall_ns / 1e9);
		fputs("hangtrace_event_loop_stall_duration_seconds_count", f);
		put_labels(f, s, NULL, NULL);
		fprintf(f, " %llu\n", (unsigned long long)s->stalls);
	}

	header(f, "hangtrace_event_loop_stalls_total", "counter",
	       "Event-loop stalls (iterations longer than the stall threshold).");
	for_each_service(m, s, i) {
		fputs("hangtrace_event_loop_stalls_total", f);
		put_labels(f, s, NULL, NULL);
		fprintf(f, " %llu\n", (unsigned long long)s->stalls);
	}

	header(f, "hangtrace_offcpu_seconds_total", "counter",
	       "Off-CPU time of the traced threads, by reason.");
	for_each_service(m, s, i) {
		for (r = 0; r < HT_R_MAX; r++) {
			if (r == HT_R_CPU)
				continue;
			fputs("hangtrace_offcpu_seconds_total", f);
			put_labels(f, s, "reason", reason_name(r));
			fprintf(f, " %.6f\n", s->offcpu_ns[r] / 1e9);
		}
	}

	header(f, "hangtrace_gil_wait_seconds_total", "counter",
	       "Time threads waited for the GIL.");
	for_each_service(m, s, i) {
		fputs("hangtrace_gil_wait_seconds_total", f);
		put_labels(f, s, NULL, NULL);
		fprintf(f, " %.6f\n", s->offcpu_ns[HT_R_GIL] / 1e9);
	}

	header(f, "hangtrace_tracked_processes", "gauge", "CPython processes traced now.");
	for_each_service(m, s, i) {
		fputs("hangtrace_tracked_processes", f);
		put_labels(f, s, NULL, NULL);
		fprintf(f, " %u\n", s->procs);
	}

	header(f, "hangtrace_processes_started_total", "counter",
	       "CPython processes the agent started tracing.");
	fprintf(f, "hangtrace_processes_started_total %llu\n", (unsigned long long)m->procs_started);
	header(f, "hangtrace_processes_exited_total", "counter",
	       "Traced processes that exited (and were forgotten).");
	fprintf(f, "hangtrace_processes_exited_total %llu\n", (unsigned long long)m->procs_exited);

	header(f, "hangtrace_exec_events_total", "counter",
	       "Processes that exec'd (each is looked at for an interpreter).");
	fprintf(f, "hangtrace_exec_events_total %llu\n", (unsigned long long)m->exec_events);
	header(f, "hangtrace_interpreter_probes_total", "counter",
	       "Processes examined for a CPython interpreter.");
	fprintf(f, "hangtrace_interpreter_probes_total %llu\n", (unsigned long long)m->probes);

	header(f, "hangtrace_lost_events_total", "counter",
	       "Data the tracer could not keep, by where it was lost.");
	fprintf(f, "hangtrace_lost_events_total{where=\"ringbuf_full\"} %llu\n",
		(unsigned long long)m->bpf.ringbuf_full);
	fprintf(f, "hangtrace_lost_events_total{where=\"threads_full\"} %llu\n",
		(unsigned long long)m->bpf.threads_full);
	fprintf(f, "hangtrace_lost_events_total{where=\"aggregates_full\"} %llu\n",
		(unsigned long long)m->bpf.agg_full);
	fprintf(f, "hangtrace_lost_events_total{where=\"stacks_full\"} %llu\n",
		(unsigned long long)m->bpf.stacks_full);
	fprintf(f, "hangtrace_lost_events_total{where=\"samples\"} %llu\n",
		(unsigned long long)m->bpf.samples_lost);
	fprintf(f, "hangtrace_lost_events_total{where=\"processes_full\"} %llu\n",
		(unsigned long long)m->bpf.procs_full);
	fprintf(f, "hangtrace_lost_events_total{where=\"timeline_full\"} %llu\n",
		(unsigned long long)m->timeline_dropped);
	header(f, "hangtrace_python_stack_read_failures_total", "counter",
	       "Python stacks that could not be read completely in BPF.");
	fprintf(f, "hangtrace_python_stack_read_failures_total %llu\n",
		(unsigned long long)m->bpf.py_read_fail);

	header(f, "hangtrace_limit_hits_total", "counter",
	       "Times a configured limit was reached (data beyond it was not kept).");
	for (b = 0; b < CAP_MAX; b++)
		fprintf(f, "hangtrace_limit_hits_total{limit=\"%s\"} %llu\n", cap_names[b],
			(unsigned long long)m->caps_hit[b]);

	header(f, "hangtrace_stall_events_written_total", "counter",
	       "Stall events written as JSON lines.");
	fprintf(f, "hangtrace_stall_events_written_total %llu\n",
		(unsigned long long)m->events_written);
	header(f, "hangtrace_stall_events_failed_total", "counter",
	       "Stall events that could not be written.");
	fprintf(f, "hangtrace_stall_events_failed_total %llu\n",
		(unsigned long long)m->events_failed);
	header(f, "hangtrace_profiles_written_total", "counter", "Profile files written.");
	fprintf(f, "hangtrace_profiles_written_total %llu\n",
		(unsigned long long)m->profiles_written);
	header(f, "hangtrace_profiles_failed_total", "counter", "Profile files that could not be written.");
	fprintf(f, "hangtrace_profiles_failed_total %llu\n", (unsigned long long)m->profiles_failed);
	header(f, "hangtrace_profiles_removed_total", "counter", "Profile files removed by retention.");
	fprintf(f, "hangtrace_profiles_removed_total %llu\n",
		(unsigned long long)m->profiles_removed);
	header(f, "hangtrace_pyroscope_pushes_total", "counter",
	       "Profiles pushed to Pyroscope, by result (dropped: never delivered).");
	fprintf(f, "hangtrace_pyroscope_pushes_total{result=\"ok\"} %llu\n",
		(unsigned long long)m->push_ok);
	fprintf(f, "hangtrace_pyroscope_pushes_total{result=\"dropped\"} %llu\n",
		(unsigned long long)m->push_dropped);
	header(f, "hangtrace_pyroscope_retries_total", "counter",
	       "Pyroscope push attempts that failed and were retried or given up.");
	fprintf(f, "hangtrace_pyroscope_retries_total %llu\n", (unsigned long long)m->push_retries);
	header(f, "hangtrace_analysis_seconds_total", "counter",
	       "Agent time spent turning BPF data into reports.");
	fprintf(f, "hangtrace_analysis_seconds_total %.6f\n", m->flush_ns_total / 1e9);

	write_own(f, m);
	pthread_mutex_unlock(&m->lock);
	return ferror(f) ? -EIO : 0;
}

/* --- HTTP ---------------------------------------------------------------- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status, const char *type,
			       char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = mhd.create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	mhd.add_response_header(resp, "Content-Type", type);
	ret = mhd.queue_response(c, status, resp);
	mhd.destroy_response(resp);
	return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload_data, size_t *upload_size, void **req_cls)
{
	struct agent_metrics *m = cls;
	char *body = NULL;
	size_t len = 0;
	FILE *f;

	(void)version;
	(void)upload_data;
	/* the first call is for the headers only */
	if (!*req_cls) {
		*req_cls = m;
		return MHD_YES;
	}
	if (*upload_size)
		return MHD_NO;	/* no request bodies: drop the connection */
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return respond(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
			       strdup("only GET\n"), strlen("only GET\n"));
	if (strcmp(url, "/metrics")) {
		if (!strcmp(url, "/"))
			return respond(c, MHD_HTTP_OK, "text/plain",
				       strdup("hangtrace agent: metrics at /metrics\n"),
				       strlen("hangtrace agent: metrics at /metrics\n"));
		return respond(c, MHD_HTTP_NOT_FOUND, "text/plain", strdup("not found\n"),
			       strlen("not found\n"));
	}
	f = open_memstream(&body, &len);
	if (!f)
		return MHD_NO;
	agent_metrics__write(m, f);
	if (fclose(f)) {
		free(body);
		return MHD_NO;
	}
	return respond(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
}

/* "127.0.0.1:9464", "[::1]:9464", "localhost:9464", ":9464" (every address). */
static int parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *outlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res = NULL;
	char host[256];
	const char *port;
	size_t hl;
	int err;

	if (s[0] == '[') {
		port = strstr(s, "]:");
		if (!port)
			return -EINVAL;
		hl = port - s - 1;
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		port += 2;
	} else {
		port = strrchr(s, ':');
		if (!port)
			return -EINVAL;
		hl = port - s;
		if (hl >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, hl);
		host[hl] = 0;
		port++;
	}
	if (!*port || strspn(port, "0123456789") != strlen(port) || atoi(port) > 65535)
		return -EINVAL;
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (err || !res)
		return -EINVAL;
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*outlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = 0;
	p_dbg("metrics server: %s", buf);
}

int agent_metrics__serve(struct agent_metrics *m, const char *addr)
{
	struct sockaddr_storage sa;
	socklen_t salen;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (parse_addr(addr, &sa, &salen)) {
		p_err("bad --metrics-addr '%s': want HOST:PORT, e.g. 127.0.0.1:9464", addr);
		return -EINVAL;
	}
	if (dynlib__load(&libmicrohttpd, "the metrics endpoint (--metrics-addr; 'none' turns it off)"))
		return -ENOENT;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	m->httpd = mhd.start_daemon(flags, 0, NULL, NULL, handle_request, m,
				    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				    MHD_OPTION_CONNECTION_LIMIT, 16u,
				    MHD_OPTION_PER_IP_CONNECTION_LIMIT, 8u,
				    MHD_OPTION_CONNECTION_TIMEOUT, 10u,
				    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
				    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				    MHD_OPTION_END);
	if (!m->httpd) {
		p_err("cannot serve metrics on %s: %s", addr,
		      errno ? strerror(errno) : "address in use or not available");
		return errno ? -errno : -EADDRINUSE;
	}
	(void)salen;
	return 0;
}
