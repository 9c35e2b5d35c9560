// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The svg/html writers on a hand-made report: the tree they embed (merged
 * stacks, values by reason, counts, stall blame, --what), and that hostile
 * names stay inert data (no markup, no CDATA end, no raw control characters);
 * with --children every process: its tree, its stalls on the shared
 * timeline, its summary section, its blockers among the top ones.
 */
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "flame.h"
#include "report.h"

#define MS 1000000ULL
#define HOSTILE_FN "</script>]]>\x01\xff"

static struct rframe f_rest[] = { { "rest", "/a.py", 10, 0 }, { "main", "/a.py", 20, 0 } };
static struct rframe f_evil[] = { { HOSTILE_FN, "/b.py", 5, 0 }, { "main", "/a.py", 20, 0 } };
static struct rframe f_burn[] = { { "burn", "/a.py", 3, 0 }, { "main", "/a.py", 21, 0 } };

static void make_report(struct report *r, enum report_what what)
{
	static struct rthread th = { .tid = 42, .name = "main\xff<", .python = true };
	static struct rblocker b[3];
	static struct rsample s;

	memset(b, 0, sizeof(b));
	b[0] = (struct rblocker){ .pid = 42, .tid = 42, .reason = HT_R_SLEEP, .syscall = -1,
				  .total_ns = 600 * MS, .max_ns = 600 * MS, .count = 1, .fd = -1,
				  .stack = { f_rest, 2 } };
	b[1] = (struct rblocker){ .pid = 42, .tid = 42, .reason = HT_R_LOCK, .syscall = -1,
				  .total_ns = 200 * MS, .max_ns = 150 * MS, .count = 2, .fd = -1,
				  .stack = { f_evil, 2 }, .stall_ns = 100 * MS, .stall_count = 1 };
	/* on-CPU blocker of a loop thread: its time is in the samples */
	b[2] = (struct rblocker){ .pid = 42, .tid = 42, .reason = HT_R_CPU, .syscall = -1,
				  .total_ns = 50 * MS, .count = 10, .fd = -1, .on_cpu = true,
				  .stack = { f_burn, 2 }, .stall_ns = 30 * MS, .stall_count = 1 };
	s = (struct rsample){ .pid = 42, .tid = 42, .count = 10, .ns = 50 * MS,
			      .stack = { f_burn, 2 } };
	memset(r, 0, sizeof(*r));
	r->pid = 42;
	r->cmdline = "x</title><script>alert(1)</script>\x01";
	r->duration_ns = 1000 * MS;
	r->threads = &th;
	r->nr_threads = 1;
	r->blockers = b;
	r->nr_blockers = 3;
	r->samples = &s;
	r->nr_samples = 1;
	r->sample_period_ns = 5 * MS;
	r->what = what;
}

static char *render(const struct report *r, int html, size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);
	int err = html ? report__write_html(r, f) : report__write_svg(r, f);

	fclose(f);
	CHECK(!err, "writer failed");
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (; (hay = strstr(hay, needle)); hay++)
		n++;
	return n;
}

static json_object *data_of(const char *doc)
{
	const char *p = strstr(doc, "id=\"ht-data\">"), *e;
	json_object *o;
	char *s;

	if (!p)
		return NULL;
	p += strlen("id=\"ht-data\">");
	e = strstr(p, "</script>");
	s = strndup(p, e - p);
	o = json_tokener_parse(s);
	free(s);
	return o;
}

static int64_t geti(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : -1;
}

static const char *gets_(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "";
}

static json_object *child(json_object *o, int i)
{
	json_object *c;

	if (!json_object_object_get_ex(o, "c", &c) || i >= (int)json_object_array_length(c))
		return NULL;
	return json_object_array_get_idx(c, i);
}

static int64_t kind_ns(json_object *o, const char *kind)
{
	json_object *k;

	return json_object_object_get_ex(o, "k", &k) ? geti(k, kind) : -1;
}

static void check_inert(const char *doc, size_t len, const char *what)
{
	size_t i;

	/* ours only: the data's and the code's */
	CHECK(count(doc, "<script") == 2, "%s: %d <script", what, count(doc, "<script"));
	CHECK(count(doc, "</script") == 2, "%s: %d </script", what, count(doc, "</script"));
	CHECK(count(doc, "alert(1)") == (strstr(what, "html") ? 2 : 1),
	      "%s: the command line shown once per <title>/header", what);
	for (i = 0; i < len; i++)
		if (((unsigned char)doc[i] < 0x20 && doc[i] != '\n' && doc[i] != '\t') ||
		    doc[i] == 0x7f) {
			CHECK(0, "%s: raw control character %#x at %zu", what, doc[i], i);
			break;
		}
	CHECK(strstr(doc, "\\u003c/script\\u003e]]\\u003e\\u0001\\ufffd"), "%s: hostile name escaped",
	      what);
}

/* A child of @r (pid 43, traced 250 ms after the root) whose loop stalled in nap(). */
static void add_child(struct report *r)
{
	static struct rframe f_nap[] = { { "nap", "/a.py", 30, 0 }, { "main", "/a.py", 20, 0 } };
	static struct rthread th = { .tid = 43, .name = "kid\x1b", .python = true,
				     .event_loop = true, .stalls = 1 };
	static struct rblocker b;
	static struct rstall st;
	static struct report kid;

	b = (struct rblocker){ .pid = 43, .tid = 43, .reason = HT_R_SLEEP, .syscall = -1,
			       .total_ns = 900 * MS, .max_ns = 300 * MS, .count = 3, .fd = -1,
			       .stack = { f_nap, 2 }, .stall_ns = 300 * MS, .stall_count = 1 };
	st = (struct rstall){ .tid = 43, .start_ns = 100 * MS, .dur_ns = 300 * MS, .blocker = 0 };
	memset(&kid, 0, sizeof(kid));
	kid.pid = 43;
	kid.ppid = 42;
	kid.cmdline = "kid<b>";
	kid.start_unix_ns = r->start_unix_ns + 250 * MS;
	kid.duration_ns = 800 * MS;	/* built after the root's: ends 50 ms later */
	kid.threads = &th;
	kid.nr_threads = 1;
	kid.blockers = &b;
	kid.nr_blockers = 1;
	kid.stalls = &st;
	kid.nr_stalls = 1;
	r->children = &kid;
	r->nr_children = 1;
}

static void check_children(void)
{
	json_object *d, *root, *kid, *thread, *stalls, *st, *threads;
	struct report r;
	size_t len;
	char *doc;

	make_report(&r, WHAT_OFFCPU);
	r.start_unix_ns = 1000 * MS;
	add_child(&r);
	doc = render(&r, 1, &len);
	d = data_of(doc);
	CHECK(d, "children html: data parses");
	root = json_object_object_get(d, "tree");
	CHECK(geti(root, "v") == 1700 * MS, "children: all = 800 + 900 ms: %lld",
	      (long long)geti(root, "v"));
	CHECK(!strcmp(gets_(child(root, 0), "n"), "python-42") &&
	      !strcmp(gets_(child(root, 1), "n"), "python-43") && !child(root, 2),
	      "a process node each, under all");
	kid = child(root, 1);
	thread = child(kid, 0);
	CHECK(!strcmp(gets_(thread, "n"), "kid\x1b-43"), "the child's thread, by its own name: %s",
	      gets_(thread, "n"));
	CHECK(geti(kid, "v") == 900 * MS && geti(kid, "st") == 300 * MS, "the child's stall outline");
	CHECK(!strcmp(gets_(child(child(thread, 0), 0), "n"), "nap"), "nap over main");
	CHECK(geti(d, "processes") == 2, "two processes");
	stalls = json_object_object_get(d, "stalls");
	CHECK(json_object_array_length(stalls) == 1, "the child's stall on the timeline");
	st = json_object_array_get_idx(stalls, 0);
	CHECK(geti(st, "pid") == 43 && geti(st, "tid") == 43, "stall of 43/43");
	CHECK(geti(st, "start") == 350 * MS, "stall start in the root's window: %lld",
	      (long long)geti(st, "start"));
	CHECK(geti(d, "duration") == 1000 * MS && geti(d, "span") == 1050 * MS,
	      "the timeline spans every window: %lld", (long long)geti(d, "span"));
	threads = json_object_object_get(d, "threads");
	CHECK(json_object_array_length(threads) == 2 &&
	      geti(json_object_array_get_idx(threads, 1), "pid") == 43, "threads of both");
	CHECK(strstr(doc, "<h1>hangtrace: process 42</h1>"), "the root's header");
	CHECK(strstr(doc, "<section class=\"ht-process\" id=\"ht-process-43\" data-pid=\"43\">\n"
			  "<h2>hangtrace: child process 43 of 42</h2>"), "the child's section");
	CHECK(strstr(doc, "<code>kid&lt;b&gt;</code>"), "the child's command line, escaped");
	CHECK(strstr(doc, "<td>kid\\x1b</td>"), "the child's thread, escaped");
	CHECK(strstr(doc, "<p class=\"ht-loop\" data-pid=\"43\" data-tid=\"43\">"),
	      "the child's loop line");
	CHECK(strstr(doc, "<section id=\"ht-stalls\">"), "a timeline: the child stalled");
	/* blamed for stalls first: the child's nap heads the list, saying whose it is */
	CHECK(strstr(doc, "<ol>\n<li class=\"ht-blocker\" data-kind=\"sleep\" data-pid=\"43\">"
			  "<b>0.900 s</b> sleep in thread 43 \"kid\\x1b\" of child process 43,"),
	      "the top blocker is the child's");
	CHECK(strstr(doc, "sleep in thread 42 \"main\xef\xbf\xbd&lt;\" of process 42,"),
	      "the root's blocker says its process");
	json_object_put(d);
	free(doc);
}

int main(void)
{
	json_object *d, *root, *thread, *main20, *evil, *rest, *burn;
	struct report r;
	size_t len;
	char *doc;

	/* --what offcpu (default): the blockers, not the on-CPU one */
	make_report(&r, WHAT_OFFCPU);
	doc = render(&r, 0, &len);
	check_inert(doc, len, "svg");
	CHECK(count(doc, "]]>") == 2, "svg: only the two CDATA sections end");
	CHECK(strstr(doc, "<title>hangtrace: x&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;\\x01"),
	      "svg: <title> escaped");
	d = data_of(doc);
	CHECK(d, "svg: data parses");
	root = json_object_object_get(d, "tree");
	CHECK(!strcmp(gets_(root, "n"), "all") && geti(root, "v") == 800 * MS, "root: 800 ms");
	CHECK(kind_ns(root, "sleep") == 600 * MS && kind_ns(root, "lock") == 200 * MS &&
	      kind_ns(root, "on-cpu") == -1, "root by reason");
	CHECK(geti(root, "b") == 3 && geti(root, "s") == -1, "root counts");
	CHECK(!strcmp(gets_(child(root, 0), "n"), "python-42"), "process root");
	thread = child(child(root, 0), 0);
	CHECK(!strcmp(gets_(thread, "n"), "main\xef\xbf\xbd<-42"), "thread root: %s",
	      gets_(thread, "n"));
	main20 = child(thread, 0);
	CHECK(!strcmp(gets_(main20, "n"), "main") && geti(main20, "l") == 20 &&
	      geti(main20, "v") == 800 * MS && !child(thread, 1), "both stacks share main:20");
	CHECK(!strcmp(json_object_get_string(json_object_array_get_idx(
			      json_object_object_get(d, "files"), geti(main20, "f"))), "/a.py"),
	      "file table");
	evil = child(main20, 0);	/* '<' sorts before 'r' */
	rest = child(main20, 1);
	CHECK(!strcmp(gets_(evil, "n"), "</script>]]>\x01\xef\xbf\xbd"), "hostile name, sanitized");
	CHECK(geti(evil, "st") == 100 * MS && geti(evil, "sc") == 1 && geti(main20, "st") == 100 * MS,
	      "stall blame on the path");
	CHECK(!strcmp(gets_(child(evil, 0), "n"), "[lock]") && geti(child(evil, 0), "b") == 2,
	      "lock leaf");
	CHECK(!strcmp(gets_(rest, "n"), "rest") && geti(rest, "l") == 10 && geti(rest, "st") == -1 &&
	      !strcmp(gets_(child(rest, 0), "n"), "[sleep]"), "rest and its leaf");
	json_object_put(d);
	free(doc);

	/* --what all: samples join; the on-CPU blocker's stall time marks their path */
	make_report(&r, WHAT_ALL);
	doc = render(&r, 0, &len);
	d = data_of(doc);
	root = json_object_object_get(d, "tree");
	CHECK(geti(root, "v") == 850 * MS && kind_ns(root, "on-cpu") == 50 * MS, "all: 850 ms");
	CHECK(geti(root, "st") == 130 * MS, "all: stall time of both blamed blockers");
	thread = child(child(root, 0), 0);
	burn = child(child(thread, 1), 0);	/* main:21, after main:20 */
	CHECK(burn && !strcmp(gets_(burn, "n"), "burn") && geti(burn, "s") == 10 &&
	      geti(burn, "st") == 30 * MS, "burn: 10 samples, 30 ms of stalls");
	json_object_put(d);
	free(doc);

	/* --what oncpu: samples only */
	make_report(&r, WHAT_ONCPU);
	doc = render(&r, 0, &len);
	d = data_of(doc);
	root = json_object_object_get(d, "tree");
	CHECK(geti(root, "v") == 50 * MS && kind_ns(root, "sleep") == -1, "oncpu: 50 ms");
	json_object_put(d);
	free(doc);

	/* html: the summary escapes too */
	make_report(&r, WHAT_OFFCPU);
	doc = render(&r, 1, &len);
	check_inert(doc, len, "html");
	CHECK(strstr(doc, "<code>x&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;\\x01</code>"),
	      "html: command line escaped");
	CHECK(strstr(doc, "<td>main\xef\xbf\xbd&lt;</td>"), "html: thread name escaped");
	CHECK(strstr(doc, "<code>&lt;/script&gt;]]&gt;\\x01\xef\xbf\xbd (/b.py:5)</code>"),
	      "html: hostile frame escaped");
	d = data_of(doc);
	CHECK(d && json_object_object_get(d, "stalls"), "html: data with stalls");
	json_object_put(d);
	free(doc);
	check_children();
	return CHECK_SUMMARY();
}
