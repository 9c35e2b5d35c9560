// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Flame graphs: --format svg and --format html.
 *
 * The C side merges the report's stacks (as --what asks) into one tree, root
 * "all", then one node per process (the target and, with --children, each
 * traced descendant), per thread, per frame outermost first, and the reason
 * as the leaf, as the folded format splits them.  The tree is
 * written as JSON inside the file and user/flame/flame.js (embedded at build
 * time, with flame.css) draws it: no network, no file lookups.
 *
 * Names from the target are untrusted.  The JSON is written as pure ASCII
 * with '<', '>' and '&' as \u escapes, so it is inert inside an XML element
 * and inside an HTML <script> (no "</script>", no "]]>"); the script shows
 * names with textContent only.  Text the C side puts in the page goes through
 * put_html(): invalid UTF-8 becomes U+FFFD, control characters \xNN, markup
 * characters entities.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flame.h"
#include "flame_assets.h"
#include "jsonout.h"
#include "report.h"
#include "strmap.h"
#include "syscalls.h"
#include "utf8.h"

#define FLAME_WIDTH 1200
#define FLAME_FRAME_H 16
#define HTML_MAX_BLOCKERS 10
#define SHOW_MAX 400		/* bytes of a name shown in the page's summary */
#define PATH_MAX_NODES (HT_MAX_PY_FRAMES + 8)

enum fnode_type { FN_ALL, FN_PROCESS, FN_THREAD, FN_FRAME, FN_LEAF };

struct fnode {
	int type;
	uint32_t id;			/* pid, tid, or the leaf's kind */
	const struct report *proc;	/* FN_PROCESS, FN_THREAD: the process's report */
	const char *function;		/* FN_FRAME: borrowed from the report */
	const char *file;
	int line;
	uint64_t ns;
	uint64_t kind_ns[HT_R_MAX];	/* by reason; samples are HT_R_CPU */
	uint64_t blocks, samples;
	uint64_t stall_ns;		/* of blockers blamed for event-loop stalls */
	uint32_t stalls;
	size_t child, next;		/* first child, next sibling; 0: none */
	size_t nr_children;
	int depth;
};

struct ftree {
	const struct report *r;		/* the root */
	struct fnode *nodes;		/* [0] is "all" */
	size_t nr, cap;
	int max_depth;
	struct strmap *files;		/* file -> index in file_list, as text */
	json_object *file_list;
};

/* One step of a path from the root: what the node must match. */
struct fkey {
	int type;
	uint32_t id;
	const struct report *proc;
	const char *function, *file;
	int line;
};

static const char *kind_name(int kind)
{
	return kind == HT_R_CPU ? "on-cpu" : reason_name(kind);
}

static int streq(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static int key_match(const struct fnode *n, const struct fkey *k)
{
	return n->type == k->type && n->id == k->id && n->proc == k->proc && n->line == k->line &&
	       streq(n->function, k->function) && streq(n->file, k->file);
}

/* The child of @parent matching @k, created if @create; 0: none, -1: ENOMEM. */
static long ftree_child(struct ftree *t, size_t parent, const struct fkey *k, int create)
{
	struct fnode *n;
	size_t i;

	for (i = t->nodes[parent].child; i; i = t->nodes[i].next)
		if (key_match(&t->nodes[i], k))
			return i;
	if (!create)
		return 0;
	if (t->nr == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct fnode *nn = realloc(t->nodes, cap * sizeof(*nn));

		if (!nn)
			return -1;
		t->nodes = nn;
		t->cap = cap;
	}
	n = &t->nodes[t->nr];
	memset(n, 0, sizeof(*n));
	n->type = k->type;
	n->id = k->id;
	n->proc = k->proc;
	n->function = k->function;
	n->file = k->file;
	n->line = k->line;
	n->depth = t->nodes[parent].depth + 1;
	n->next = t->nodes[parent].child;
	t->nodes[parent].child = t->nr;
	t->nodes[parent].nr_children++;
	if (n->depth > t->max_depth)
		t->max_depth = n->depth;
	return t->nr++;
}

struct fadd {
	const struct report *proc;
	uint32_t pid, tid;
	const struct rstack *stack;
	int kind;
	uint64_t ns, blocks, samples, stall_ns;
	uint32_t stalls;
};

/*
 * Add one stack: all; process; thread; outermost ... innermost; [kind].  With
 * !@create only an existing path is marked (stall time of on-CPU blockers,
 * whose time the samples already hold).  0 or -ENOMEM.
 */
static int ftree_add(struct ftree *t, const struct fadd *a, int create)
{
	size_t path[PATH_MAX_NODES + 2];
	struct fkey k = { .line = -1 };
	int nr = 0, j, i;
	long c;

	path[nr++] = 0;
	k.type = FN_PROCESS;
	k.id = a->pid;
	k.proc = a->proc;
	c = ftree_child(t, path[nr - 1], &k, create);
	if (c <= 0)
		return c < 0 ? -ENOMEM : 0;
	path[nr++] = c;
	k.type = FN_THREAD;
	k.id = a->tid;
	c = ftree_child(t, path[nr - 1], &k, create);
	if (c <= 0)
		return c < 0 ? -ENOMEM : 0;
	path[nr++] = c;
	k.type = FN_FRAME;
	k.id = 0;
	k.proc = NULL;
	if (a->stack->truncated) {
		k.function = "<truncated>";
		c = ftree_child(t, path[nr - 1], &k, create);
		if (c <= 0)
			return c < 0 ? -ENOMEM : 0;
		path[nr++] = c;
	}
	for (j = a->stack->depth - 1; j >= 0 && nr < PATH_MAX_NODES; j--) {
		k.function = a->stack->frames[j].function ? a->stack->frames[j].function : "?";
		k.file = a->stack->frames[j].file;
		k.line = a->stack->frames[j].line;
		c = ftree_child(t, path[nr - 1], &k, create);
		if (c <= 0)
			return c < 0 ? -ENOMEM : 0;
		path[nr++] = c;
	}
	k = (struct fkey){ .type = FN_LEAF, .id = a->kind, .line = -1 };
	c = ftree_child(t, path[nr - 1], &k, create);
	if (c <= 0)
		return c < 0 ? -ENOMEM : 0;
	path[nr++] = c;

	for (i = 0; i < nr; i++) {
		struct fnode *n = &t->nodes[path[i]];

		n->ns += a->ns;
		n->kind_ns[a->kind] += a->ns;
		n->blocks += a->blocks;
		n->samples += a->samples;
		n->stall_ns += a->stall_ns;
		n->stalls += a->stalls;
	}
	return 0;
}

static void ftree_free(struct ftree *t)
{
	free(t->nodes);
	strmap__free(t->files);
	json_object_put(t->file_list);
}

/* Add process @proc's stacks to @t, as @what asks.  0 or -ENOMEM. */
static int ftree_add_process(struct ftree *t, const struct report *proc, enum report_what what)
{
	struct fadd a;
	size_t i;
	int err;

	for (i = 0; what != WHAT_ONCPU && i < proc->nr_blockers; i++) {
		const struct rblocker *b = &proc->blockers[i];

		if (b->on_cpu)
			continue;
		a = (struct fadd){ .proc = proc, .pid = b->pid, .tid = b->tid, .stack = &b->stack,
				   .kind = b->reason >= 0 && b->reason < HT_R_MAX ? b->reason : HT_R_OTHER,
				   .ns = b->total_ns, .blocks = b->count,
				   .stall_ns = b->stall_ns, .stalls = b->stall_count };
		err = ftree_add(t, &a, 1);
		if (err)
			return err;
	}
	for (i = 0; what != WHAT_OFFCPU && i < proc->nr_samples; i++) {
		const struct rsample *s = &proc->samples[i];

		a = (struct fadd){ .proc = proc, .pid = s->pid, .tid = s->tid, .stack = &s->stack,
				   .kind = HT_R_CPU, .ns = s->ns, .samples = s->count };
		err = ftree_add(t, &a, 1);
		if (err)
			return err;
	}
	/* on-CPU work blamed for stalls: mark the sampled path it ran on */
	for (i = 0; what != WHAT_OFFCPU && i < proc->nr_blockers; i++) {
		const struct rblocker *b = &proc->blockers[i];

		if (!b->on_cpu || !b->stall_ns)
			continue;
		a = (struct fadd){ .proc = proc, .pid = b->pid, .tid = b->tid, .stack = &b->stack,
				   .kind = HT_R_CPU, .stall_ns = b->stall_ns, .stalls = b->stall_count };
		err = ftree_add(t, &a, 0);
		if (err)
			return err;
	}
	return 0;
}

/* The tree of @r and its children, as r->what asks (like report__write_folded).  0 or -ENOMEM. */
static int ftree_build(struct ftree *t, const struct report *r)
{
	size_t i;
	int err;

	memset(t, 0, sizeof(*t));
	t->r = r;
	t->nodes = calloc(256, sizeof(*t->nodes));
	t->files = strmap__new();
	t->file_list = json_object_new_array();
	if (!t->nodes || !t->files || !t->file_list)
		return -ENOMEM;
	t->cap = 256;
	t->nr = 1;
	t->nodes[0].type = FN_ALL;
	t->nodes[0].line = -1;

	for (i = 0; i < report__nr_procs(r); i++) {
		err = ftree_add_process(t, report__proc(r, i), r->what);
		if (err)
			return err;
	}
	return 0;
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* Children in alphabetical order, as flame graphs draw them. */
static int cmp_child(const void *x, const void *y, void *ctx)
{
	const struct ftree *t = ctx;
	const struct fnode *a = &t->nodes[*(const size_t *)x], *b = &t->nodes[*(const size_t *)y];
	int c;

	if (a->type != b->type)
		return a->type - b->type;
	if (a->type == FN_FRAME) {
		c = cmp_str(a->function, b->function);
		if (!c)
			c = cmp_str(a->file, b->file);
		if (!c)
			c = a->line - b->line;
		return c;
	}
	if (a->type == FN_LEAF)
		return strcmp(kind_name(a->id), kind_name(b->id));
	return a->id < b->id ? -1 : a->id > b->id;
}

static int file_index(struct ftree *t, const char *file)
{
	const char *v = strmap__get(t->files, file, strlen(file));
	char buf[24];
	int idx;

	if (v)
		return atoi(v);
	idx = json_object_array_length(t->file_list);
	snprintf(buf, sizeof(buf), "%d", idx);
	if (strmap__set(t->files, file, strlen(file), buf))
		return -1;
	json_object_array_add(t->file_list, json__str(file));
	return idx;
}

static json_object *jnode(struct ftree *t, size_t idx)
{
	static const char *const types[] = { "a", "p", "t", "f", "r" };
	const struct fnode *n = &t->nodes[idx];
	json_object *o = json_object_new_object(), *k, *c;
	size_t *kids, i, nk = 0;
	char buf[128];
	int j, fi;

	switch (n->type) {
	case FN_ALL:
		json_object_object_add(o, "n", json__str("all"));
		break;
	case FN_PROCESS:
		snprintf(buf, sizeof(buf), "python-%u", n->id);
		json_object_object_add(o, "n", json__str(buf));
		break;
	case FN_THREAD: {
		/* "NAME-TID", the name from the target */
		const char *name = report__thread_name(n->proc, n->id);
		char *s = NULL;

		if (asprintf(&s, "%s-%u", name, n->id) < 0)
			s = NULL;
		json_object_object_add(o, "n", json__str(s ? s : "?"));
		free(s);
		break;
	}
	case FN_FRAME:
		json_object_object_add(o, "n", json__str(n->function));
		if (n->file) {
			fi = file_index(t, n->file);
			if (fi >= 0)
				json_object_object_add(o, "f", json_object_new_int(fi));
		}
		if (n->line >= 0)
			json_object_object_add(o, "l", json_object_new_int(n->line));
		break;
	case FN_LEAF:
	default:
		snprintf(buf, sizeof(buf), "[%s]", kind_name(n->id));
		json_object_object_add(o, "n", json__str(buf));
		break;
	}
	json_object_object_add(o, "t", json_object_new_string(types[n->type]));
	json_object_object_add(o, "v", json_object_new_int64(n->ns));
	k = json_object_new_object();
	for (j = 0; j < HT_R_MAX; j++)
		if (n->kind_ns[j])
			json_object_object_add(k, kind_name(j), json_object_new_int64(n->kind_ns[j]));
	json_object_object_add(o, "k", k);
	if (n->blocks)
		json_object_object_add(o, "b", json_object_new_int64(n->blocks));
	if (n->samples)
		json_object_object_add(o, "s", json_object_new_int64(n->samples));
	if (n->stall_ns) {
		json_object_object_add(o, "st", json_object_new_int64(n->stall_ns));
		json_object_object_add(o, "sc", json_object_new_int64(n->stalls));
	}
	if (!n->nr_children)
		return o;
	kids = calloc(n->nr_children, sizeof(*kids));
	if (!kids)
		return o;
	for (i = n->child; i && nk < n->nr_children; i = t->nodes[i].next)
		kids[nk++] = i;
	qsort_r(kids, nk, sizeof(*kids), cmp_child, t);
	c = json_object_new_array();
	for (i = 0; i < nk; i++)
		json_object_array_add(c, jnode(t, kids[i]));
	json_object_object_add(o, "c", c);
	free(kids);
	return o;
}

/* The innermost frame of @s, or NULL. */
static const struct rframe *top_frame(const struct rstack *s)
{
	return s->depth ? &s->frames[0] : NULL;
}

static json_object *jframe(const struct rframe *fr)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "function", json__str(fr->function));
	json_object_object_add(o, "file", json__str(fr->file));
	json_object_object_add(o, "line", fr->line >= 0 ? json_object_new_int(fr->line) : NULL);
	return o;
}

/*
 * Where process @proc's window starts in the root's (a descendant is traced
 * from when it was found), in ns.
 */
static uint64_t window_offset(const struct report *root, const struct report *proc)
{
	return proc->start_unix_ns > root->start_unix_ns ?
	       proc->start_unix_ns - root->start_unix_ns : 0;
}

/*
 * The stalls of process @r, each with what it was blamed on, for the HTML
 * timeline: added to @arr, their start in the window of @root.
 */
static void jstalls(json_object *arr, const struct report *root, const struct report *r)
{
	uint64_t off = window_offset(root, r);
	json_object *o, *bo;
	size_t i;

	for (i = 0; i < r->nr_stalls; i++) {
		const struct rstall *st = &r->stalls[i];

		o = json_object_new_object();
		json_object_object_add(o, "pid", json_object_new_int64(r->pid));
		json_object_object_add(o, "tid", json_object_new_int64(st->tid));
		json_object_object_add(o, "start", json_object_new_int64(st->start_ns + off));
		json_object_object_add(o, "dur", json_object_new_int64(st->dur_ns));
		json_object_object_add(o, "in_progress", json_object_new_boolean(st->in_progress));
		json_object_object_add(o, "coro", json__str(st->coro));
		bo = NULL;
		if (st->blocker >= 0 && (size_t)st->blocker < r->nr_blockers) {
			const struct rblocker *b = &r->blockers[st->blocker];
			const char *sc = syscall_name(b->syscall);
			const struct rframe *fr = top_frame(&b->stack);

			bo = json_object_new_object();
			json_object_object_add(bo, "kind", json__str(b->on_cpu ? "on-cpu" :
								     reason_name(b->reason)));
			json_object_object_add(bo, "syscall", sc ? json__str(sc) : NULL);
			json_object_object_add(bo, "frame", fr ? jframe(fr) : NULL);
			json_object_object_add(bo, "hint", b->hint ? json__str(b->hint) : NULL);
		}
		json_object_object_add(o, "blocker", bo);
		json_object_array_add(arr, o);
	}
}

/* The threads of process @r, added to @arr. */
static void jthreads(json_object *arr, const struct report *r)
{
	json_object *o;
	size_t i;

	for (i = 0; i < r->nr_threads; i++) {
		o = json_object_new_object();
		json_object_object_add(o, "pid", json_object_new_int64(r->pid));
		json_object_object_add(o, "tid", json_object_new_int64(r->threads[i].tid));
		json_object_object_add(o, "name", json__str(r->threads[i].name));
		json_object_object_add(o, "event_loop",
				       json_object_new_boolean(r->threads[i].event_loop));
		json_object_array_add(arr, o);
	}
}

static const char *what_name(enum report_what w)
{
	return w == WHAT_ONCPU ? "oncpu" : w == WHAT_ALL ? "all" : "offcpu";
}

/* Length of the UTF-8 sequence starting with @c (valid input). */
static int seq_len(unsigned char c)
{
	return c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/*
 * @json (valid UTF-8, from json-c) as pure ASCII: everything outside
 * printable ASCII, and '<', '>', '&', as \u escapes.  Those characters only
 * occur inside JSON strings, where the escapes mean the same.
 */
static void put_json_inert(FILE *f, const char *json)
{
	const unsigned char *p = (const unsigned char *)json;
	unsigned int cp;
	int n, i;

	while (*p) {
		if (*p >= 0x20 && *p < 0x7f && *p != '<' && *p != '>' && *p != '&') {
			fputc(*p++, f);
			continue;
		}
		if (*p < 0x80) {
			fprintf(f, "\\u%04x", *p++);
			continue;
		}
		n = seq_len(*p);
		cp = *p & (0xff >> (n + 1));
		for (i = 1; i < n && (p[i] & 0xc0) == 0x80; i++)
			cp = (cp << 6) | (p[i] & 0x3f);
		if (i < n) {		/* cannot happen after utf8_sanitize */
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		p += n;
		if (cp >= 0x10000) {
			cp -= 0x10000;
			fprintf(f, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
		} else {
			fprintf(f, "\\u%04x", cp);
		}
	}
}

/* The data the page's script draws, as inert JSON.  0 or -1 (errno set). */
static int put_data(FILE *f, const struct report *r, int with_summary)
{
	json_object *root = NULL, *threads, *stalls;
	uint64_t span = r->duration_ns, end;
	struct ftree t;
	char title[160];
	size_t i;
	int err;

	err = ftree_build(&t, r);
	if (err) {
		ftree_free(&t);
		errno = -err;
		return -1;
	}
	snprintf(title, sizeof(title), "%s, process %u%s",
		 r->what == WHAT_ONCPU ? "on-CPU" : r->what == WHAT_ALL ? "on- and off-CPU" :
		 "off-CPU", r->pid, r->nr_children ? " and its child processes" : "");
	root = json_object_new_object();
	json_object_object_add(root, "tool", json__str("hangtrace"));
	json_object_object_add(root, "title", json__str(title));
	json_object_object_add(root, "what", json__str(what_name(r->what)));
	json_object_object_add(root, "pid", json_object_new_int64(r->pid));
	json_object_object_add(root, "duration", json_object_new_int64(r->duration_ns));
	json_object_object_add(root, "sample_period", json_object_new_int64(r->sample_period_ns));
	json_object_object_add(root, "depth", json_object_new_int(t.max_depth));
	json_object_object_add(root, "tree", jnode(&t, 0));
	json_object_object_add(root, "files", json_object_get(t.file_list));
	if (with_summary) {
		json_object_object_add(root, "stall_threshold",
				       json_object_new_int64(r->stall_threshold_ns));
		threads = json_object_new_array();
		stalls = json_object_new_array();
		for (i = 0; i < report__nr_procs(r); i++) {
			jthreads(threads, report__proc(r, i));
			jstalls(stalls, r, report__proc(r, i));
		}
		json_object_object_add(root, "threads", threads);
		json_object_object_add(root, "stalls", stalls);
		json_object_object_add(root, "processes",
				       json_object_new_int64((int64_t)report__nr_procs(r)));
		/*
		 * The timeline's axis: a descendant's window may end a little after
		 * the root's (its report is built after the root's)
		 */
		for (i = 1; i < report__nr_procs(r); i++) {
			end = window_offset(r, report__proc(r, i)) + report__proc(r, i)->duration_ns;
			if (end > span)
				span = end;
		}
		json_object_object_add(root, "span", json_object_new_int64((int64_t)span));
	}
	put_json_inert(f, json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
	ftree_free(&t);
	return 0;
}

/*
 * Text from the target in XML/HTML: valid UTF-8, control characters as \xNN
 * (XML forbids them even as references), '&<>"\'' as entities, at most @max
 * bytes (then "...").
 */
static void put_html_max(FILE *f, const char *s, size_t max)
{
	char *clean = s ? utf8_sanitize(s) : NULL;
	const unsigned char *p = (const unsigned char *)clean;
	size_t n = 0;

	for (; p && *p; p++, n++) {
		if (n >= max && (*p & 0xc0) != 0x80) {
			fputs("...", f);
			break;
		}
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(f, "\\x%02x", *p);
			else
				fputc(*p, f);
		}
	}
	free(clean);
}

static void put_html(FILE *f, const char *s)
{
	put_html_max(f, s, SHOW_MAX);
}

static int svg_height(const struct report *r)
{
	struct ftree t;
	int depth = 0;

	/* the script sizes the drawing; this is the size before it runs */
	if (!ftree_build(&t, r))
		depth = t.max_depth;
	ftree_free(&t);
	return (depth + 1) * FLAME_FRAME_H + 120;
}

int report__write_svg(const struct report *r, FILE *f)
{
	int h = svg_height(r);

	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		   "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" id=\"ht-flame\" "
		   "class=\"ht-flame ht-standalone\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\">\n",
		FLAME_WIDTH, h, FLAME_WIDTH, h);
	fputs("<title>hangtrace: ", f);
	put_html(f, r->cmdline ? r->cmdline : "");
	fprintf(f, " (process %u)</title>\n", r->pid);
	fprintf(f, "<style><![CDATA[\n%s]]></style>\n", flame_css);
	fputs("<text x=\"10\" y=\"40\" class=\"ht-nojs\">This flame graph is drawn by its script: "
	      "open it in a web browser.</text>\n", f);
	fputs("<script type=\"application/json\" id=\"ht-data\">", f);
	if (put_data(f, r, 0))
		return -1;
	fprintf(f, "</script>\n<script type=\"text/ecmascript\"><![CDATA[\n%s]]></script>\n</svg>\n",
		flame_js);
	return ferror(f) ? -1 : 0;
}

static double secs(uint64_t ns)
{
	return ns / 1e9;
}

static void html_frame(FILE *f, const struct rframe *fr)
{
	fputs("<code>", f);
	put_html(f, fr->function);
	fputs(" (", f);
	put_html(f, fr->file);
	if (fr->line >= 0)
		fprintf(f, ":%d", fr->line);
	fputs(")</code>", f);
}

static void html_stack(FILE *f, const struct rstack *s, int max)
{
	int i;

	fputs("<ul class=\"ht-stack\">", f);
	if (!s->depth)
		fputs("<li>(no Python frames)</li>", f);
	for (i = 0; i < s->depth && i < max; i++) {
		fputs("<li>", f);
		html_frame(f, &s->frames[i]);
		fputs("</li>", f);
	}
	if (i < s->depth)
		fprintf(f, "<li>... %d more</li>", s->depth - i);
	fputs("</ul>\n", f);
}

/* One of the top blockers, of process @proc; @multi: more than one process, say which. */
static void html_blocker(FILE *f, const struct report *proc, const struct rblocker *b, bool multi)
{
	const char *sc = syscall_name(b->syscall);

	fprintf(f, "<li class=\"ht-blocker\" data-kind=\"%s\" data-pid=\"%u\"><b>%.3f s</b> %s",
		b->on_cpu ? "on-cpu" : reason_name(b->reason), proc->pid, secs(b->total_ns),
		b->on_cpu ? "on-CPU" : reason_name(b->reason));
	if (sc)
		fprintf(f, " (%s)", sc);
	fprintf(f, " in thread %u \"", b->tid);
	put_html(f, report__thread_name(proc, b->tid));
	fputc('"', f);
	if (multi)
		fprintf(f, " of %sprocess %u", proc->ppid ? "child " : "", proc->pid);
	if (b->fd_desc) {
		fputs(", ", f);
		if (b->fd >= 0)
			fprintf(f, "fd %d -&gt; ", b->fd);
		put_html(f, b->fd_desc);
	}
	if (b->on_cpu)
		fprintf(f, ", %u sample%s", b->count, b->count == 1 ? "" : "s");
	else
		fprintf(f, ", %u block%s, max %.3f s", b->count, b->count == 1 ? "" : "s",
			secs(b->max_ns));
	if (b->still_blocked)
		fputs(", <b>still blocked at the end</b>", f);
	if (b->stall_ns)
		fprintf(f, ", <span class=\"ht-stalltime\">%.3f s inside %u event-loop stall%s</span>",
			secs(b->stall_ns), b->stall_count, b->stall_count == 1 ? "" : "s");
	fputc('\n', f);
	html_stack(f, &b->stack, 6);
	if (b->wk_timer) {
		fputs("<p>woken by: its timeout</p>\n", f);
	} else if (b->wk_tid) {
		fprintf(f, "<p>%s thread %u", b->wk_gil_holder ? "GIL held by:" : "woken by:",
			b->wk_tid);
		if (b->wk_name[0]) {
			fputs(" \"", f);
			put_html(f, b->wk_name);
			fputc('"', f);
		}
		if (b->wk_pid != b->pid)
			fprintf(f, " of process %u", b->wk_pid);
		fputs("</p>\n", f);
		if (b->wk_stack.depth)
			html_stack(f, &b->wk_stack, 3);
	}
	if (b->hint) {
		fputs("<p class=\"ht-hint\">hint: ", f);
		put_html(f, b->hint);
		fputs("</p>\n", f);
	}
	fputs("</li>\n", f);
}

/* A blocker of one of the processes, for the top list. */
struct blame {
	const struct report *proc;
	const struct rblocker *b;
};

static int cmp_blame(const void *x, const void *y)
{
	const struct rblocker *a = ((const struct blame *)x)->b;
	const struct rblocker *b = ((const struct blame *)y)->b;

	/* blamed for stalls first, by stall time; then by total time */
	if (a->stall_ns != b->stall_ns)
		return a->stall_ns < b->stall_ns ? 1 : -1;
	if (a->total_ns != b->total_ns)
		return a->total_ns < b->total_ns ? 1 : -1;
	return 0;
}

/*
 * Process @p's part of the summary, as in the text report: who it is, its
 * window, lost data, its threads and event-loop lines.  The target's is the
 * page's header; each descendant's is a section of its own.
 */
static void html_process(FILE *f, const struct report *p)
{
	uint64_t lost = p->stats.ringbuf_full + p->stats.agg_full + p->stats.stacks_full +
			p->stats.threads_full;
	bool child = p->ppid != 0;
	size_t i;
	int k, shown;

	if (child)
		fprintf(f, "<section class=\"ht-process\" id=\"ht-process-%u\" data-pid=\"%u\">\n"
			   "<h2>hangtrace: child process %u of %u</h2>\n", p->pid, p->pid, p->pid,
			p->ppid);
	else
		fprintf(f, "<header class=\"ht-process\" data-pid=\"%u\"><h1>hangtrace: process %u</h1>\n",
			p->pid, p->pid);
	fputs("<p class=\"ht-cmdline\"><code>", f);
	put_html(f, p->cmdline ? p->cmdline : "");
	fputs("</code></p>\n<p>exe <code>", f);
	put_html(f, p->exe ? p->exe : "?");
	fputs("</code>, Python ", f);
	put_html(f, p->python ? p->python : "?");
	fprintf(f, ", %zu thread%s, traced <b %s=\"ht-duration\">%.2f s</b>, blocks &gt;= %.3g ms "
		   "recorded", p->nr_threads, p->nr_threads == 1 ? "" : "s", child ? "class" : "id",
		secs(p->duration_ns), p->min_block_ns / 1e6);
	if (p->target_exited)
		fputs("; the process exited during tracing: this is what was collected until then", f);
	if (p->focus) {
		fputs("; --focus <code>", f);
		put_html(f, p->focus);
		fputs("</code>: only stacks with a matching function or file are shown", f);
	}
	if (lost)
		fprintf(f, "</p>\n<p class=\"ht-warn\">WARNING: data was lost: %llu events, %llu "
			   "aggregates, %llu stacks, %llu threads did not fit",
			(unsigned long long)p->stats.ringbuf_full, (unsigned long long)p->stats.agg_full,
			(unsigned long long)p->stats.stacks_full,
			(unsigned long long)p->stats.threads_full);
	else
		fputs("; lost: nothing", f);
	fputs("</p>\n", f);
	if (child)
		fputs("<h3>Threads</h3>\n<table class=\"ht-threads\">\n", f);
	else
		fputs("</header>\n<section id=\"ht-threads\"><h2>Threads</h2>\n"
		      "<table class=\"ht-threads\">\n", f);
	fputs("<tr><th>thread</th><th>name</th><th>on-CPU</th><th>off-CPU</th>"
	      "<th>off-CPU by reason</th></tr>\n", f);
	for (i = 0; i < p->nr_threads; i++) {
		const struct rthread *t = &p->threads[i];

		fprintf(f, "<tr><td>%u%s%s</td><td>", t->tid, t->tid == p->pid ? " (main)" : "",
			t->exited ? " (exited)" : "");
		put_html(f, t->name);
		fprintf(f, "</td><td>%.3f s</td><td>%.3f s</td><td>", secs(t->on_ns), secs(t->off_ns));
		shown = 0;
		for (k = 0; k < HT_R_MAX; k++)
			if (t->reason_ns[k] >= 500000)
				fprintf(f, "%s%s %.3f s", shown++ ? ", " : "", reason_name(k),
					secs(t->reason_ns[k]));
		if (!t->python)
			fputs(" [no Python thread state]", f);
		fputs("</td></tr>\n", f);
	}
	fputs("</table>\n", f);
	for (i = 0; i < p->nr_threads; i++) {
		const struct rthread *t = &p->threads[i];

		if (!t->event_loop)
			continue;
		fprintf(f, "<p class=\"ht-loop\" data-pid=\"%u\" data-tid=\"%u\">Thread %u \"", p->pid,
			t->tid, t->tid);
		put_html(f, t->name);
		fprintf(f, "\": event loop: %u stall%s &gt;= %.0f ms", t->stalls,
			t->stalls == 1 ? "" : "s", p->stall_threshold_ns / 1e6);
		if (t->stalls)
			fprintf(f, ", longest %.3f s, %.3f s in all = %.0f%% of %.2f s",
				secs(t->longest_stall_ns), secs(t->stall_ns),
				p->duration_ns ? 100.0 * t->stall_ns / p->duration_ns : 0,
				secs(p->duration_ns));
		fprintf(f, "; idle (waiting for events) %.3f s</p>\n", secs(t->idle_ns));
	}
	fputs("</section>\n", f);
}

/* The descendants that were not traced, and why (--children). */
static void html_untraced(FILE *f, const struct report *r)
{
	size_t i;

	if (!r->nr_untraced && !r->untraced_dropped)
		return;
	fputs("<section id=\"ht-untraced\"><h2>Descendants not traced</h2>\n<ul>\n", f);
	for (i = 0; i < r->nr_untraced; i++) {
		const struct runtraced *u = &r->untraced[i];

		fprintf(f, "<li data-pid=\"%u\">process %u (parent %u, <code>", u->pid, u->pid, u->ppid);
		put_html(f, u->exe ? u->exe : "?");
		fputs("</code>): ", f);
		put_html(f, u->why);
		fputs("</li>\n", f);
	}
	if (r->untraced_dropped)
		fprintf(f, "<li>... and %zu more</li>\n", r->untraced_dropped);
	fputs("</ul></section>\n", f);
}

/* The text report's summary, as HTML: every process, the stall timeline, the top blockers. */
static int html_summary(FILE *f, const struct report *r)
{
	bool multi = report__nr_procs(r) > 1;
	size_t i, j, nb = 0, n = 0, nstalls = 0;
	struct blame *order;

	for (i = 0; i < report__nr_procs(r); i++) {
		html_process(f, report__proc(r, i));
		nb += report__proc(r, i)->nr_blockers;
		nstalls += report__proc(r, i)->nr_stalls;
	}
	html_untraced(f, r);

	if (nstalls)
		fputs("<section id=\"ht-stalls\"><h2>Event-loop stalls</h2>\n"
		      "<p class=\"ht-note\">When each loop stalled, for how long, and on what: hover a bar "
		      "for details, click it to find its frame in the flame graph.</p>\n"
		      "<svg id=\"ht-timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"1200\" "
		      "height=\"60\"></svg></section>\n", f);

	fprintf(f, "<section id=\"ht-blockers\"><h2>Top blockers%s</h2>\n<ol>\n",
		multi ? " (all processes)" : "");
	order = calloc(nb ? nb : 1, sizeof(*order));
	if (!order)
		return -1;
	for (i = 0; i < report__nr_procs(r); i++) {
		const struct report *p = report__proc(r, i);

		for (j = 0; j < p->nr_blockers; j++)
			if (!p->blockers[j].removed)
				order[n++] = (struct blame){ p, &p->blockers[j] };
	}
	qsort(order, n, sizeof(*order), cmp_blame);
	for (i = 0; i < n && i < HTML_MAX_BLOCKERS; i++)
		html_blocker(f, order[i].proc, order[i].b, multi);
	free(order);
	fputs("</ol>\n", f);
	if (n > HTML_MAX_BLOCKERS)
		fprintf(f, "<p class=\"ht-note\">... and %zu more (--format json lists every one)</p>\n",
			n - HTML_MAX_BLOCKERS);
	fputs("</section>\n", f);
	return 0;
}

int report__write_html(const struct report *r, FILE *f)
{
	fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	      "<meta name=\"viewport\" content=\"width=device-width\">\n<title>hangtrace: ", f);
	put_html(f, r->cmdline ? r->cmdline : "");
	fprintf(f, " (process %u)</title>\n<style>\n%s</style>\n</head>\n<body class=\"ht-page\">\n",
		r->pid, flame_css);
	if (html_summary(f, r))
		return -1;
	fputs("<section id=\"ht-graph\"><h2>Flame graph</h2>\n"
	      "<div class=\"ht-controls\"><label>Search <input id=\"ht-search\" type=\"search\" "
	      "placeholder=\"function, file or line\"></label> "
	      "<button id=\"ht-reset\" type=\"button\">Reset zoom</button> "
	      "<span id=\"ht-matched-html\"></span></div>\n"
	      "<svg id=\"ht-flame\" class=\"ht-flame\" xmlns=\"http://www.w3.org/2000/svg\" "
	      "width=\"1200\" height=\"200\"></svg>\n</section>\n", f);
	fputs("<script type=\"application/json\" id=\"ht-data\">", f);
	if (put_data(f, r, 1))
		return -1;
	fprintf(f, "</script>\n<script>\n%s</script>\n</body>\n</html>\n", flame_js);
	return ferror(f) ? -1 : 0;
}
