// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Pyroscope push: POST URL/ingest?name=...&from=...&until=...&format=folded
 * &sampleRate=...&spyName=hangtrace&units=samples&aggregationType=sum, the
 * folded profile as the body (Pyroscope's documented ingest API).
 *
 * Its own thread and a bounded queue: the tracing loop only enqueues.  Each
 * profile gets a few attempts with exponential backoff and per-attempt
 * timeouts; a full queue drops the oldest profile, and every profile never
 * delivered is counted (hangtrace_pyroscope_pushes_total{result="dropped"}).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "agent.h"
#include "dynlib.h"
#include "log.h"

/*
 * Every libcurl function the pusher calls, loaded by agent_push__global_init
 * (dynlib.h): typed by curl.h, called as curl.easy_init() and so on.
 */
#define CURL_FUNCS(FN)								\
	FN(global_init) FN(global_cleanup) FN(free)				\
	FN(easy_init) FN(easy_cleanup) FN(easy_reset) FN(easy_setopt)		\
	FN(easy_getinfo) FN(easy_escape) FN(easy_strerror)			\
	FN(slist_append) FN(slist_free_all)					\
	FN(multi_init) FN(multi_cleanup) FN(multi_add_handle)			\
	FN(multi_remove_handle) FN(multi_perform) FN(multi_poll) FN(multi_info_read)

static struct {
#define CURL_MEMBER(f) __typeof__(curl_##f) *f;
	CURL_FUNCS(CURL_MEMBER)
#undef CURL_MEMBER
} curl;

static const struct dynlib_sym curl_syms[] = {
#define CURL_SYM(f) { "curl_" #f, (void **)&curl.f },
	CURL_FUNCS(CURL_SYM)
#undef CURL_SYM
};

static struct dynlib libcurl = {
	.soname = "libcurl.so.4",
	.package = "libcurl4",
	.syms = curl_syms,
	.nr_syms = sizeof(curl_syms) / sizeof(curl_syms[0]),
};

static bool curl_up;

int agent_push__global_init(void)
{
	int err;

	if (curl_up)
		return 0;
	err = dynlib__load(&libcurl, "--pyroscope");
	if (err)
		return err;
	if (curl.global_init(CURL_GLOBAL_DEFAULT)) {
		p_err("cannot initialise libcurl");
		return -EINVAL;
	}
	curl_up = true;
	return 0;
}

void agent_push__global_cleanup(void)
{
	if (curl_up)
		curl.global_cleanup();
	curl_up = false;
}

static long ms_left(const struct timespec *deadline);

struct push_item {
	char *name;
	uint64_t from, until;
	char *body;
	size_t len;
};

struct agent_push {
	struct agent_push_opts opts;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct push_item *q;		/* ring of opts.queue_max */
	unsigned int head, count;
	bool stopping;			/* finish what is queued by deadline, no backoff */
	struct timespec deadline;	/* CLOCK_MONOTONIC, valid when stopping */
	bool warned;
	CURL *curl;
	CURLM *multi;
};

static bool stop_now(struct agent_push *p)
{
	return __atomic_load_n(&p->stopping, __ATOMIC_ACQUIRE) && ms_left(&p->deadline) <= 0;
}

static void item_free(struct push_item *it)
{
	free(it->name);
	free(it->body);
	memset(it, 0, sizeof(*it));
}

static void count(struct agent_push *p, uint64_t *counter)
{
	pthread_mutex_lock(&p->opts.m->lock);
	(*counter)++;
	pthread_mutex_unlock(&p->opts.m->lock);
}

static size_t discard(char *ptr, size_t size, size_t n, void *ud)
{
	(void)ptr;
	(void)ud;
	return size * n;
}

/* One attempt: 0 when the server took it (2xx), else -1. */
static int post(struct agent_push *p, const struct push_item *it, long timeout_ms)
{
	char *name = curl.easy_escape(p->curl, it->name, 0), *url = NULL;
	long status = 0;
	CURLcode rc;
	int err = -1;

	if (!name)
		return -1;
	/* sampleRate 1000000: a value of 1 is one microsecond of (off- or on-) CPU time */
	if (asprintf(&url, "%s/ingest?name=%s&from=%llu&until=%llu&format=folded"
			   "&sampleRate=1000000&spyName=hangtrace&units=samples&aggregationType=sum",
		     p->opts.url, name, (unsigned long long)it->from,
		     (unsigned long long)it->until) < 0) {
		curl.free(name);
		return -1;
	}
	curl.free(name);
	curl.easy_reset(p->curl);
	curl.easy_setopt(p->curl, CURLOPT_URL, url);
	curl.easy_setopt(p->curl, CURLOPT_POST, 1L);
	curl.easy_setopt(p->curl, CURLOPT_POSTFIELDS, it->body);
	curl.easy_setopt(p->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
	curl.easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 2000 ? timeout_ms : 2000);
	curl.easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl.easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
	curl.easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, discard);
	curl.easy_setopt(p->curl, CURLOPT_USERAGENT, "hangtrace-agent");
	curl.easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	{
		struct curl_slist *hdr = curl.slist_append(NULL, "Content-Type: text/plain");
		int running = 1;
		CURLMsg *msg;

		curl.easy_setopt(p->curl, CURLOPT_HTTPHEADER, hdr);
		/* multi, polled in 100 ms steps: an agent stopping never waits for a slow server */
		rc = CURLE_ABORTED_BY_CALLBACK;
		curl.multi_add_handle(p->multi, p->curl);
		while (running) {
			if (curl.multi_perform(p->multi, &running) != CURLM_OK || !running)
				break;
			if (stop_now(p))
				break;
			curl.multi_poll(p->multi, NULL, 0, 100, NULL);
		}
		while ((msg = curl.multi_info_read(p->multi, &running)))
			if (msg->msg == CURLMSG_DONE && msg->easy_handle == p->curl)
				rc = msg->data.result;
		curl.multi_remove_handle(p->multi, p->curl);
		curl.slist_free_all(hdr);
	}
	if (rc == CURLE_OK) {
		curl.easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300)
			err = 0;
	}
	if (err && !p->warned) {
		p->warned = true;
		if (rc != CURLE_OK)
			p_warn("pushing to Pyroscope at %s failed: %s (retrying with backoff; "
			       "further failures are only counted)", p->opts.url, curl.easy_strerror(rc));
		else
			p_warn("Pyroscope at %s answered HTTP %ld (retrying with backoff; further "
			       "failures are only counted)", p->opts.url, status);
	}
	free(url);
	return err;
}

static long ms_left(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

static void add_ms(struct timespec *ts, long ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void *push_thread(void *arg)
{
	struct agent_push *p = arg;
	struct push_item it;
	struct timespec until;
	unsigned int attempt;
	long backoff, timeout;
	int ok;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->count && !p->stopping)
			pthread_cond_wait(&p->cond, &p->lock);
		if (!p->count)
			break;	/* stopping, nothing left */
		it = p->q[p->head];
		memset(&p->q[p->head], 0, sizeof(p->q[p->head]));
		p->head = (p->head + 1) % p->opts.queue_max;
		p->count--;
		ok = 0;
		backoff = 500;
		for (attempt = 0; attempt < p->opts.tries && !ok; attempt++) {
			timeout = p->opts.timeout_ms;
			if (p->stopping) {
				timeout = ms_left(&p->deadline);
				if (timeout <= 0)
					break;
			}
			pthread_mutex_unlock(&p->lock);
			ok = !post(p, &it, timeout);
			pthread_mutex_lock(&p->lock);
			if (ok || attempt + 1 == p->opts.tries || p->stopping)
				continue;
			count(p, &p->opts.m->push_retries);
			/* back off; an agent stopping wakes us */
			clock_gettime(CLOCK_MONOTONIC, &until);
			add_ms(&until, backoff);
			while (!p->stopping && ms_left(&until) > 0)
				pthread_cond_timedwait(&p->cond, &p->lock, &until);
			backoff *= 2;
		}
		count(p, ok ? &p->opts.m->push_ok : &p->opts.m->push_dropped);
		item_free(&it);
		if (p->stopping && ms_left(&p->deadline) <= 0)
			break;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct agent_push *agent_push__new(const struct agent_push_opts *opts)
{
	struct agent_push *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	int err;

	if (!p)
		return NULL;
	if (!curl_up) {		/* agent_push__global_init first */
		free(p);
		errno = ELIBACC;
		return NULL;
	}
	p->opts = *opts;
	if (!p->opts.queue_max)
		p->opts.queue_max = 1;
	p->q = calloc(p->opts.queue_max, sizeof(*p->q));
	p->curl = curl.easy_init();
	p->multi = curl.multi_init();
	if (!p->q || !p->curl || !p->multi) {
		curl.multi_cleanup(p->multi);
		curl.easy_cleanup(p->curl);
		free(p->q);
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&p->thread, NULL, push_thread, p);
	if (err) {
		curl.multi_cleanup(p->multi);
		curl.easy_cleanup(p->curl);
		free(p->q);
		free(p);
		errno = err;
		return NULL;
	}
	return p;
}

void agent_push__enqueue(struct agent_push *p, const char *name, uint64_t from, uint64_t until,
			 char *body, size_t len)
{
	struct push_item *it;

	pthread_mutex_lock(&p->lock);
	if (p->count == p->opts.queue_max) {
		/* full: the oldest goes, counted */
		item_free(&p->q[p->head]);
		p->head = (p->head + 1) % p->opts.queue_max;
		p->count--;
		pthread_mutex_lock(&p->opts.m->lock);
		p->opts.m->push_dropped++;
		if (!p->opts.m->caps_hit[CAP_PUSH_QUEUE]++)
			p_warn("the Pyroscope queue is full (%u profiles): dropping the oldest "
			       "(counted in hangtrace_pyroscope_pushes_total{result=\"dropped\"})",
			       p->opts.queue_max);
		pthread_mutex_unlock(&p->opts.m->lock);
	}
	it = &p->q[(p->head + p->count) % p->opts.queue_max];
	it->name = strdup(name);
	it->from = from;
	it->until = until;
	it->body = body;
	it->len = len;
	p->count++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void agent_push__free(struct agent_push *p, long deadline_ms)
{
	unsigned int i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	clock_gettime(CLOCK_MONOTONIC, &p->deadline);
	add_ms(&p->deadline, deadline_ms);
	__atomic_store_n(&p->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* the attempt in flight ends by the deadline: post() polls for it */
	pthread_join(p->thread, NULL);
	for (i = 0; i < p->count; i++) {
		item_free(&p->q[(p->head + i) % p->opts.queue_max]);
		p->opts.m->push_dropped++;
	}
	curl.multi_cleanup(p->multi);
	curl.easy_cleanup(p->curl);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->q);
	free(p);
}
