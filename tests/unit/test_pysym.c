// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pysym's cache cap (pysym__set_max), against live interpreters: a Python
 * with 40 distinct functions prints its code objects' addresses and first
 * lines; they are symbolized with no cap, then with a cap of 8:
 *  - every frame is still named exactly (function, file, def line), cached
 *    or not;
 *  - no more than 8 entries are cached, each lookup beyond is counted, a
 *    cached entry looked up again is not;
 *  - the strings of cached entries stay valid after uncached lookups.
 * Interpreters: /usr/bin/python3.11 and every pyenv 3.6+ found.  Reading
 * another process needs root (or ptrace rights); without it: skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "procmem.h"
#include "pyproc.h"
#include "pysym.h"
#include "spawn.h"

#define NR_FUNCS 40
#define CAP 8

static const char script[] =
	"import sys\n"
	"def make(i):\n"
	"    src = '\\n' * i + 'def fn_%d():\\n    return %d\\n' % (i, i)\n"
	"    ns = {}\n"
	"    exec(compile(src, '/tmp/ht \"sym\" test.py', 'exec'), ns)\n"
	"    return ns['fn_%d' % i]\n"
	"fs = [make(i) for i in range(40)]\n"
	"for f in fs:\n"
	"    sys.stdout.write('%d %d\\n' % (id(f.__code__), f.__code__.co_firstlineno))\n"
	"sys.stdout.write('end\\n')\n"
	"sys.stdout.flush()\n"
	"sys.stdin.read()\n";

struct child {
	pid_t pid;
	int in_fd;
	FILE *out;
};

static int spawn(const char *python, struct child *ch)
{
	char *argv[] = { (char *)python, (char *)"-c", (char *)script, NULL };
	int out = -1, err;

	err = spawn_piped(argv, NULL, &ch->pid, &ch->in_fd, &out);
	if (err)
		return err;
	ch->out = fdopen(out, "r");
	return ch->out ? 0 : -errno;
}

static void reap(struct child *ch)
{
	if (ch->pid > 0) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, NULL, 0);
	}
	if (ch->in_fd >= 0)
		close(ch->in_fd);
	if (ch->out)
		fclose(ch->out);
}

/* Symbolize every function of the child with a cap of @cap (0: none). */
static void check_cap(const char *python, const struct pyproc *p, struct procmem *mem,
		      const unsigned long long *code, const int *first, size_t cap)
{
	struct pysym *s = pysym__new(p, mem);
	const char *kept_fn = NULL, *kept_file = NULL;
	struct pyframe_sym fs;
	char want[32];
	int i;

	CHECK(s, "%s: pysym__new: %s", python, strerror(errno));
	if (!s)
		return;
	pysym__set_max(s, cap);
	for (i = 0; i < NR_FUNCS; i++) {
		pysym__frame(s, code[i], 0, &fs);
		snprintf(want, sizeof(want), "fn_%d", i);
		CHECK(!strcmp(fs.function, want), "%s cap %zu: function %d is '%s', not %s", python,
		      cap, i, fs.function, want);
		CHECK(!strcmp(fs.file, "/tmp/ht \"sym\" test.py"), "%s cap %zu: file '%s'", python,
		      cap, fs.file);
		CHECK(fs.start_line == first[i] && fs.start_line == i + 1,
		      "%s cap %zu: fn_%d starts at %d, not %d", python, cap, i, fs.start_line,
		      first[i]);
		CHECK(fs.line >= first[i] && fs.line <= first[i] + 1, "%s cap %zu: fn_%d line %d",
		      python, cap, i, fs.line);
		if (i == 0) {
			kept_fn = fs.function;
			kept_file = fs.file;
		}
	}
	if (!cap) {
		CHECK(pysym__count(s) == NR_FUNCS && pysym__cap_hits(s) == 0,
		      "%s no cap: %zu cached, %llu hits", python, pysym__count(s),
		      (unsigned long long)pysym__cap_hits(s));
	} else {
		CHECK(pysym__count(s) == cap, "%s: %zu cached, cap %zu", python, pysym__count(s), cap);
		CHECK(pysym__cap_hits(s) == NR_FUNCS - cap, "%s: %llu cap hits, not %zu", python,
		      (unsigned long long)pysym__cap_hits(s), NR_FUNCS - cap);
		/* cached ones are found again without a hit; uncached ones are hits again */
		for (i = 0; i < (int)cap; i++)
			pysym__frame(s, code[i], 0, &fs);
		CHECK(pysym__cap_hits(s) == NR_FUNCS - cap, "%s: a cached entry counted as a hit",
		      python);
		pysym__frame(s, code[NR_FUNCS - 1], 0, &fs);
		CHECK(pysym__cap_hits(s) == NR_FUNCS - cap + 1 && pysym__count(s) == cap,
		      "%s: an uncached entry was cached (%zu) or not counted", python,
		      pysym__count(s));
	}
	/* the first entry was cached: its strings outlive the uncached lookups */
	CHECK(kept_fn && !strcmp(kept_fn, "fn_0") && !strcmp(kept_file, "/tmp/ht \"sym\" test.py"),
	      "%s cap %zu: a cached entry's strings changed", python, cap);
	CHECK(pysym__failures(s) == 0, "%s: %llu failures", python,
	      (unsigned long long)pysym__failures(s));
	pysym__free(s);
}

static void test_interpreter(const char *python)
{
	unsigned long long code[NR_FUNCS];
	int first[NR_FUNCS], n = 0, err;
	struct child ch = { .in_fd = -1 };
	struct pyproc *p = NULL;
	struct procmem *mem = NULL;
	char line[128], why[256];

	if (access(python, X_OK))
		return;
	err = spawn(python, &ch);
	CHECK(!err, "%s: spawn: %s", python, strerror(-err));
	if (err)
		goto out;
	while (fgets(line, sizeof(line), ch.out) && strncmp(line, "end", 3))
		if (n < NR_FUNCS && sscanf(line, "%llu %d", &code[n], &first[n]) == 2)
			n++;
	CHECK(n == NR_FUNCS, "%s: %d functions printed", python, n);
	if (n != NR_FUNCS)
		goto out;
	p = calloc(1, sizeof(*p));
	err = p ? pyproc__discover(ch.pid, p, why, sizeof(why)) : -ENOMEM;
	if (err == -EACCES || err == -EPERM) {
		printf("SKIP %s: %s\n", python, why);
		goto out;
	}
	CHECK(!err, "%s: discover: %s", python, why);
	if (err)
		goto out;
	mem = procmem__open(ch.pid);
	CHECK(mem, "%s: procmem__open: %s", python, strerror(errno));
	if (!mem)
		goto out;
	printf("  %s (%s)\n", python, p->version);
	check_cap(python, p, mem, code, first, 0);
	check_cap(python, p, mem, code, first, CAP);
	check_cap(python, p, mem, code, first, 1);
out:
	procmem__close(mem);
	free(p);
	reap(&ch);
}

int main(void)
{
	const char *home = getenv("PYENV_ROOT");
	char pat[512];
	glob_t g;
	size_t i;

	test_interpreter("/usr/bin/python3.11");
	if (home)
		snprintf(pat, sizeof(pat), "%s/versions/3.*/bin/python3", home);
	else
		snprintf(pat, sizeof(pat), "%s/.pyenv/versions/3.*/bin/python3",
			 getenv("HOME") ? getenv("HOME") : "/root");
	if (!glob(pat, 0, NULL, &g)) {
		for (i = 0; i < g.gl_pathc; i++)
			test_interpreter(g.gl_pathv[i]);
		globfree(&g);
	}
	return CHECK_SUMMARY();
}
