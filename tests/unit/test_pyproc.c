// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pyproc__discover() against every CPython this machine has: start each one
 * with a script that reports its version and thread ids, discover it, walk
 * interpreters and thread states with the discovered layout, read the GIL.
 * Also the error paths (no such process, not Python, zombie, kernel thread,
 * Python 2.7) and the /proc/PID/maps parser.  Runs as root.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procmaps.h"
#include "procmem.h"
#include "pyproc.h"
#include "spawn.h"

#define MAX_TSTATES 256
#define MAX_INTERPS 64

static int n_passed, n_failed;
static int cur_failures;

static void check_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void check_fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "    FAIL: ");
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	cur_failures++;
}

#define CHECK(cond, fmt, ...)							\
	do {									\
		if (!(cond))							\
			check_fail("%s:%d: %s: " fmt, __FILE__, __LINE__, #cond,	\
				   ##__VA_ARGS__);				\
	} while (0)

static void test_begin(const char *name)
{
	printf("== %s\n", name);
	fflush(stdout);
	cur_failures = 0;
}

static void test_end(const char *name)
{
	if (cur_failures) {
		n_failed++;
		printf("FAIL %s\n", name);
	} else {
		n_passed++;
		printf("PASS %s\n", name);
	}
	fflush(stdout);
}

static void skip(const char *name, const char *why)
{
	printf("SKIP %s: %s\n", name, why);
	fflush(stdout);
}

/*
 * The target script: a thread blocked on an Event, a thread spinning (so it
 * holds the GIL), then one line "PID HEXVERSION MAIN_TID SPIN_TID NTHREADS"
 * and block on stdin.  Written for Python 2.7 and 3.6+ alike.
 */
static const char *script =
	"import sys, os, threading, time\n"
	"nid = getattr(threading, 'get_native_id', lambda: 0)\n"
	"ev = threading.Event()\n"
	"spin = []\n"
	"def blocker():\n"
	"    ev.wait()\n"
	"def spinner():\n"
	"    spin.append(nid())\n"
	"    while not ev.is_set():\n"
	"        pass\n"
	"for f in (blocker, spinner):\n"
	"    t = threading.Thread(target=f)\n"
	"    t.daemon = True\n"
	"    t.start()\n"
	"while not spin:\n"
	"    time.sleep(0.01)\n"
	"sys.stdout.write('%d %s %d %d %d\\n' % (os.getpid(), hex(sys.hexversion), nid(), spin[0],\n"
	"                 threading.active_count()))\n"
	"sys.stdout.flush()\n"
	"sys.stdin.read()\n";

struct child {
	pid_t pid;		/* what we forked */
	pid_t py_pid;		/* the interpreter (a launcher may fork) */
	int in_fd, out_fd;
	uint32_t hexversion;
	long main_tid, spin_tid;
	int nthreads;
};

/* Fork and exec @argv with pipes on stdin/stdout; @ld_path: LD_LIBRARY_PATH or NULL. */
static int spawn(char *const argv[], const char *ld_path, struct child *ch)
{
	memset(ch, 0, sizeof(*ch));
	ch->in_fd = ch->out_fd = -1;
	return spawn_piped(argv, ld_path, &ch->pid, &ch->in_fd, &ch->out_fd);
}

/* Read one line from the child, waiting at most @timeout_ms. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return -ETIMEDOUT;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return -EPIPE;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return 0;
}

static void reap(struct child *ch)
{
	if (ch->py_pid > 0 && ch->py_pid != ch->pid)
		kill(ch->py_pid, SIGKILL);
	if (ch->pid > 0) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, NULL, 0);
	}
	if (ch->in_fd >= 0)
		close(ch->in_fd);
	if (ch->out_fd >= 0)
		close(ch->out_fd);
	ch->pid = ch->py_pid = 0;
	ch->in_fd = ch->out_fd = -1;
}

static int start_python(const char *python, const char *ld_path, struct child *ch)
{
	char *argv[] = { (char *)python, (char *)"-c", (char *)script, NULL };
	char line[256], hex[32];
	int err;

	err = spawn(argv, ld_path, ch);
	if (err)
		return err;
	err = read_line(ch->out_fd, line, sizeof(line), 30000);
	if (err) {
		reap(ch);
		return err;
	}
	if (sscanf(line, "%d %31s %ld %ld %d", &ch->py_pid, hex, &ch->main_tid, &ch->spin_tid,
		   &ch->nthreads) != 5) {
		reap(ch);
		return -EINVAL;
	}
	ch->hexversion = (uint32_t)strtoul(hex, NULL, 16);
	return 0;
}

struct walk {
	uint64_t tstates[MAX_TSTATES];
	long native[MAX_TSTATES];
	int n;
	int ninterps;
};

/* Interpreters -> thread states, with nothing but procmem and the discovered layout. */
static int walk_tstates(const struct pyproc *p, struct procmem *m, struct walk *w)
{
	const struct py_offsets *o = &p->off;
	uint64_t interp, ts, back;
	int err, i, j;

	memset(w, 0, sizeof(*w));
	err = procmem__read_u64(m, p->interp_head_addr, &interp);
	if (err)
		return err;
	for (i = 0; i < MAX_INTERPS && interp; i++) {
		w->ninterps++;
		err = procmem__read_u64(m, interp + (uint64_t)o->interp_tstate_head, &ts);
		if (err)
			return err;
		for (j = 0; j < MAX_TSTATES && ts && w->n < MAX_TSTATES; j++) {
			err = procmem__read_u64(m, ts + (uint64_t)o->ts_interp, &back);
			if (err)
				return err;
			if (back != interp)
				return -EINVAL;
			w->tstates[w->n] = ts;
			w->native[w->n] = -1;
			if (o->ts_native_thread_id >= 0) {
				uint64_t tid;

				err = procmem__read_u64(m, ts + (uint64_t)o->ts_native_thread_id, &tid);
				if (err)
					return err;
				w->native[w->n] = (long)tid;
			}
			w->n++;
			err = procmem__read_u64(m, ts + (uint64_t)o->ts_next, &ts);
			if (err)
				return err;
		}
		err = procmem__read_u64(m, interp + (uint64_t)o->interp_next, &interp);
		if (err)
			return err;
	}
	return 0;
}

static int find_tstate(const struct walk *w, uint64_t ts)
{
	int i;

	for (i = 0; i < w->n; i++) {
		if (w->tstates[i] == ts)
			return i;
	}
	return -1;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

enum build_kind {
	BUILD_PYENV,		/* runtime in libpython */
	BUILD_DEBIAN_STATIC,	/* runtime in the non-PIE executable */
	BUILD_DEBIAN_LOADER,	/* python3.X run through its own ld.so */
	BUILD_OTHER,		/* runtime in opts->expect_file */
};

struct interp_opts {
	const char *ld_path;		/* LD_LIBRARY_PATH for the interpreter */
	const char *expect_file;	/* BUILD_OTHER: python_file must be this */
	const char *unlink_after_start;	/* delete this file once the interpreter runs */
};

static void test_interpreter(const char *name, const char *python, enum build_kind kind,
			     const struct interp_opts *opts)
{
	static const struct interp_opts no_opts;

	char err[256], want[32];
	struct pyproc *p = NULL;
	struct procmem *m = NULL;
	struct child ch;
	struct walk w;
	uint64_t holder = 0, v;
	bool locked = false;
	int ret, i, idx;

	if (access(python, X_OK)) {
		skip(name, "not installed");
		return;
	}
	if (!opts)
		opts = &no_opts;
	test_begin(name);
	ret = start_python(python, opts->ld_path, &ch);
	CHECK(ret == 0, "cannot start %s: %s", python, strerror(-ret));
	if (ret)
		goto out;
	if (opts->unlink_after_start)
		CHECK(unlink(opts->unlink_after_start) == 0, "unlink %s", opts->unlink_after_start);
	p = calloc(1, sizeof(*p));
	ret = pyproc__discover(ch.py_pid, p, err, sizeof(err));
	CHECK(ret == 0, "discover: %d (%s)", ret, err);
	if (ret)
		goto out;
	printf("    %s: version %s (0x%08x) minor %d, %s%s, bias 0x%llx, exe %s\n", python,
	       p->version, p->version_hex, p->minor, p->python_file,
	       p->is_shared_lib ? " (shared)" : "", (unsigned long long)p->bias, p->exe);
	CHECK(p->version_hex == ch.hexversion, "0x%08x != sys.hexversion 0x%08x", p->version_hex,
	      ch.hexversion);
	snprintf(want, sizeof(want), "%u.%u.%u", ch.hexversion >> 24, (ch.hexversion >> 16) & 0xff,
		 (ch.hexversion >> 8) & 0xff);
	if (((ch.hexversion >> 4) & 0xf) == 0xf)
		CHECK(!strcmp(p->version, want), "version \"%s\" != \"%s\"", p->version, want);
	CHECK(p->minor == (int)((ch.hexversion >> 16) & 0xff), "minor %d", p->minor);
	CHECK(p->off.minor == p->minor, "layout is for 3.%d", p->off.minor);
	CHECK(p->traits != NULL, "no traits");
	CHECK(p->pid == ch.py_pid, "pid %d", (int)p->pid);
	CHECK(p->interp_head_addr != 0, "no interp_head");
	CHECK(p->finalizing_addr != 0, "no finalizing flag");
	if (p->minor >= 7)
		CHECK(p->runtime_addr != 0, "no _PyRuntime");
	if (p->minor <= 11)
		CHECK(p->tstate_current_addr != 0, "no tstate_current");
	if (p->minor >= 7)
		CHECK(p->gil_addr != 0 && p->gil_size > 0, "gil 0x%llx/%llu",
		      (unsigned long long)p->gil_addr, (unsigned long long)p->gil_size);
	switch (kind) {
	case BUILD_PYENV:
		CHECK(p->is_shared_lib && !strncmp(base_name(p->python_file), "libpython", 9),
		      "pyenv runtime should be in libpython, not %s", p->python_file);
		break;
	case BUILD_DEBIAN_STATIC:
		CHECK(!p->is_shared_lib && !strcmp(p->python_file, python) && p->bias == 0,
		      "file %s bias 0x%llx", p->python_file, (unsigned long long)p->bias);
		break;
	case BUILD_DEBIAN_LOADER:
		CHECK(!strncmp(base_name(p->python_file), "python3.", 8), "file %s",
		      p->python_file);
		break;
	case BUILD_OTHER:
		CHECK(!strcmp(p->python_file, opts->expect_file), "file %s, want %s",
		      p->python_file, opts->expect_file);
		break;
	}

	m = procmem__open(ch.py_pid);
	CHECK(m != NULL, "procmem__open: %s", strerror(errno));
	if (!m)
		goto out;
	ret = procmem__read_u64(m, p->finalizing_addr, &v);
	CHECK(ret == 0 && v == 0, "finalizing flag: ret %d value 0x%llx", ret,
	      (unsigned long long)v);

	ret = walk_tstates(p, m, &w);
	CHECK(ret == 0, "walk: %s", strerror(-ret));
	CHECK(w.ninterps == 1, "%d interpreters", w.ninterps);
	CHECK(w.n == ch.nthreads, "%d tstates, the script has %d threads", w.n, ch.nthreads);
	if (p->off.ts_native_thread_id >= 0) {
		CHECK(find_tstate(&w, 0) < 0, "NULL tstate");
		for (i = 0, idx = -1; i < w.n; i++) {
			if (w.native[i] == ch.main_tid)
				idx = i;
		}
		CHECK(idx >= 0, "no tstate with native_thread_id %ld", ch.main_tid);
	} else {
		CHECK(w.n > 0, "no tstate found");
	}

	/* the spinning thread holds the GIL nearly all the time */
	for (i = 0; i < 200; i++) {
		ret = pyproc__read_gil(p, m, &locked, &holder);
		if (ret || locked)
			break;
		usleep(5000);
	}
	CHECK(ret == 0, "read_gil: %s", strerror(-ret));
	CHECK(locked, "GIL never seen locked");
	if (locked) {
		/*
		 * "Nearly": another thread takes it now and then (and a slow,
		 * sanitized build on a loaded machine catches that more often), so
		 * read it 20 times and want the spinner in most of them.
		 */
		int seen = 0, spinner = 0, other = -1;

		for (i = 0; i < 200 && seen < 20; i++) {
			/* 1 ms apart: back to back, all 20 can fall in one moment the main thread holds it */
			if (i)
				usleep(1000);
			if (pyproc__read_gil(p, m, &locked, &holder) || !locked)
				continue;
			seen++;
			idx = find_tstate(&w, holder);
			CHECK(idx >= 0, "GIL holder 0x%llx is not a tstate", (unsigned long long)holder);
			if (idx < 0 || p->off.ts_native_thread_id < 0)
				spinner += idx >= 0;
			else if (w.native[idx] == ch.spin_tid)
				spinner++;
			else
				other = idx;
		}
		CHECK(seen && spinner * 2 > seen, "GIL holder the spinner (tid %ld) %d times in %d, "
		      "else tid %ld", ch.spin_tid, spinner, seen, other >= 0 ? w.native[other] : 0L);
	}
out:
	procmem__close(m);
	free(p);
	reap(&ch);
	test_end(name);
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, out, err = 0;
	ssize_t n;

	in = open(from, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (out < 0) {
		err = -errno;
		close(in);
		return err;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		if (write(out, buf, (size_t)n) != n) {
			err = -EIO;
			break;
		}
	}
	if (n < 0)
		err = -errno;
	close(in);
	if (close(out) && !err)
		err = -errno;
	return err;
}

/*
 * The name-independent fallback and map_files: a copy of a static
 * interpreter under a name that says nothing (with a space), deleted while
 * it runs.
 */
static void test_renamed_deleted(const char *python)
{
	const char *name = "renamed and deleted interpreter";
	char dir[] = "/tmp/test_pyproc.XXXXXX", copy[64];
	struct interp_opts opts = { 0 };

	if (access(python, X_OK)) {
		skip(name, "no /usr/bin/python3.11 to copy");
		return;
	}
	if (!mkdtemp(dir)) {
		skip(name, "mkdtemp failed");
		return;
	}
	snprintf(copy, sizeof(copy), "%s/my interp", dir);
	if (copy_file(python, copy)) {
		skip(name, "cannot copy the interpreter");
	} else {
		opts.expect_file = copy;
		opts.unlink_after_start = copy;
		test_interpreter(name, copy, BUILD_OTHER, &opts);
	}
	unlink(copy);
	rmdir(dir);
}

/*
 * 3.6 without .symtab: interp_head from decoding PyInterpreterState_Head, the
 * micro version from the PY_VERSION string.  A stripped copy of pyenv's
 * libpython3.6m, found first through LD_LIBRARY_PATH (the binary has RUNPATH).
 */
static void test_stripped36(const char *root)
{
	const char *name = "stripped libpython3.6m";
	char dir[] = "/tmp/test_pyproc.XXXXXX", lib[PATH_MAX + 64], copy[128], cmd[256];
	char python[PATH_MAX + 64];
	struct interp_opts opts = { 0 };

	snprintf(python, sizeof(python), "%s/bin/python3.6", root);
	snprintf(lib, sizeof(lib), "%s/lib/libpython3.6m.so.1.0", root);
	if (access(python, X_OK) || access(lib, R_OK)) {
		skip(name, "no pyenv 3.6");
		return;
	}
	if (!mkdtemp(dir)) {
		skip(name, "mkdtemp failed");
		return;
	}
	snprintf(copy, sizeof(copy), "%s/libpython3.6m.so.1.0", dir);
	snprintf(cmd, sizeof(cmd), "strip --strip-all %s 2>/dev/null", copy);
	if (copy_file(lib, copy) || system(cmd) != 0) {
		skip(name, "cannot make a stripped copy (is binutils' strip installed?)");
	} else {
		opts.ld_path = dir;
		opts.expect_file = copy;
		test_interpreter(name, python, BUILD_OTHER, &opts);
	}
	unlink(copy);
	rmdir(dir);
}

static void expect_error(const char *name, pid_t pid, int want_ret, const char *want_msg)
{
	struct pyproc *p = calloc(1, sizeof(*p));
	char err[256] = "";
	int ret;

	ret = pyproc__discover(pid, p, err, sizeof(err));
	printf("    pid %d: %d \"%s\"\n", (int)pid, ret, err);
	CHECK(ret == want_ret, "%s: got %d (%s), want %d", name, ret, err, want_ret);
	CHECK(!strcmp(err, want_msg), "%s: message \"%s\", want \"%s\"", name, err, want_msg);
	free(p);
}

static void test_no_such_process(void)
{
	char msg[128];
	pid_t pid;

	test_begin("error: no such process");
	for (pid = 4000000; pid > 1000 && !(kill(pid, 0) && errno == ESRCH); pid -= 7)
		;
	snprintf(msg, sizeof(msg), "no such process: %d", (int)pid);
	expect_error("nonexistent", pid, -ESRCH, msg);
	expect_error("negative", -5, -ESRCH, "no such process: -5");
	test_end("error: no such process");
}

static void test_not_python(void)
{
	char *argv[] = { (char *)"/bin/sleep", (char *)"100", NULL };
	char msg[PATH_MAX + 128], exe[PATH_MAX], path[64];
	struct child ch;
	ssize_t n;
	int i;

	test_begin("error: not a Python process");
	CHECK(spawn(argv, NULL, &ch) == 0, "spawn sleep");
	/* wait for the exec */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)ch.pid);
	for (i = 0; i < 200; i++) {
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			if (strstr(exe, "sleep"))
				break;
		}
		usleep(5000);
	}
	snprintf(msg, sizeof(msg), "process %d is not a CPython process (exe: %s)", (int)ch.pid,
		 exe);
	expect_error("sleep", ch.pid, -ENOEXEC, msg);
	reap(&ch);

	snprintf(msg, sizeof(msg), "process %d is not a CPython process (exe: ", (int)getpid());
	{
		struct pyproc *p = calloc(1, sizeof(*p));
		char err[PATH_MAX + 128];
		int ret = pyproc__discover(getpid(), p, err, sizeof(err));

		CHECK(ret == -ENOEXEC && !strncmp(err, msg, strlen(msg)), "self: %d %s", ret, err);
		free(p);
	}
	test_end("error: not a Python process");
}

static void test_zombie(void)
{
	char msg[128], path[64], buf[512], *s;
	pid_t pid;
	FILE *f;
	int i;

	test_begin("error: zombie");
	pid = fork();
	if (pid == 0)
		_exit(0);
	CHECK(pid > 0, "fork");
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	for (i = 0; i < 400; i++) {
		f = fopen(path, "r");
		s = f && fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		if (f)
			fclose(f);
		if (s && s[1] == ' ' && s[2] == 'Z')
			break;
		usleep(5000);
	}
	snprintf(msg, sizeof(msg), "process %d is a zombie", (int)pid);
	expect_error("zombie", pid, -ESRCH, msg);
	waitpid(pid, NULL, 0);
	test_end("error: zombie");
}

static pid_t find_kthread(void)
{
	struct dirent *de;
	pid_t found = 0;
	DIR *d;

	d = opendir("/proc");
	if (!d)
		return 0;
	while (!found && (de = readdir(d))) {
		char path[300], buf[1024], *s;
		unsigned long flags;
		char state;
		FILE *f;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		s = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (s && sscanf(s + 1, " %c %*d %*d %*d %*d %*d %lu", &state, &flags) == 2 &&
		    (flags & 0x00200000) && state != 'Z')
			found = atoi(de->d_name);
	}
	closedir(d);
	return found;
}

static void test_kthread(void)
{
	char msg[128];
	pid_t pid = find_kthread();

	if (!pid) {
		skip("error: kernel thread", "no kernel thread visible in this pid namespace");
		return;
	}
	test_begin("error: kernel thread");
	snprintf(msg, sizeof(msg), "process %d is a kernel thread", (int)pid);
	expect_error("kthread", pid, -ESRCH, msg);
	test_end("error: kernel thread");
}

static void test_python2(const char *python)
{
	char msg[256], want[32];
	struct child ch;
	int ret;

	if (access(python, X_OK)) {
		skip("error: Python 2.7", "not installed");
		return;
	}
	test_begin("error: Python 2.7");
	ret = start_python(python, NULL, &ch);
	CHECK(ret == 0, "cannot start %s: %s", python, strerror(-ret));
	if (!ret) {
		snprintf(want, sizeof(want), "%u.%u.%u", ch.hexversion >> 24,
			 (ch.hexversion >> 16) & 0xff, (ch.hexversion >> 8) & 0xff);
		snprintf(msg, sizeof(msg),
			 "process %d runs Python %s, which hangtrace does not support (3.6\u20133.15)",
			 (int)ch.py_pid, want);
		expect_error("python2", ch.py_pid, -ENOTSUP, msg);
	}
	reap(&ch);
	test_end("error: Python 2.7");
}

static void test_maps_parser(void)
{
	static const char text[] =
		"00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon\n"
		"7f0a1c000000-7f0a1c021000 rw-p 00000000 00:00 0 \n"
		"7f0a20000000-7f0a20400000 r--p 00000000 fd:01 42                         "
		"/opt/my app/lib python.so (deleted)\n"
		"7f0a20400000-7f0a20800000 r-xp 00400000 fd:01 42                         "
		"/opt/my app/lib python.so (deleted)\n"
		"7ffd7c3f5000-7ffd7c416000 rw-p 00000000 00:00 0                          [stack]\n"
		"garbage line\n"
		"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
	const struct procmaps_entry *e, *b;
	struct procmaps *maps;

	test_begin("procmaps parser");
	maps = procmaps__parse(text, strlen(text));
	CHECK(maps && maps->nr == 6, "nr %zu", maps ? maps->nr : 0);
	if (maps && maps->nr == 6) {
		e = &maps->entries[0];
		CHECK(e->start == 0x400000 && e->end == 0x452000 && !strcmp(e->perms, "r-xp") &&
		      e->dev_major == 8 && e->dev_minor == 2 && e->inode == 173521 &&
		      !strcmp(e->path, "/usr/bin/dbus-daemon") && !e->deleted, "line 1");
		CHECK(!procmaps__is_file(&maps->entries[1]) && !strcmp(maps->entries[1].path, ""),
		      "anonymous: \"%s\"", maps->entries[1].path);
		e = &maps->entries[3];
		CHECK(e->deleted && !strcmp(e->path, "/opt/my app/lib python.so") &&
		      e->offset == 0x400000 && e->dev_major == 0xfd, "deleted/spaces: \"%s\"", e->path);
		b = procmaps__file_base(maps, e);
		CHECK(b == &maps->entries[2], "file base");
		CHECK(procmaps__find(maps, 0x7f0a20400000ull) == e, "find");
		CHECK(procmaps__find(maps, 0x1000) == NULL, "find unmapped");
		CHECK(!strcmp(maps->entries[5].path, "[vsyscall]"), "vsyscall");
	}
	procmaps__free(maps);
	test_end("procmaps parser");
}

int main(void)
{
	const char *cache = getenv("HANGTRACE_PYCACHE"), *home = getenv("HOME");
	const char *pyenv = getenv("PYENV_ROOT");
	char pattern[PATH_MAX], path[PATH_MAX + 32], name[PATH_MAX + 64];
	glob_t g;
	size_t i;
	int minor;

	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	if (geteuid() != 0)
		printf("note: not root; reading other processes may fail\n");

	test_maps_parser();

	if (!pyenv)
		pyenv = "/root/.pyenv";
	snprintf(pattern, sizeof(pattern), "%s/versions/3.*/bin/python3", pyenv);
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (i = 0; i < g.gl_pathc; i++) {
			snprintf(name, sizeof(name), "pyenv %s", g.gl_pathv[i]);
			test_interpreter(name, g.gl_pathv[i], BUILD_PYENV, NULL);
		}
		globfree(&g);
	} else {
		skip("pyenv interpreters", pattern);
	}

	test_interpreter("debian /usr/bin/python3.11", "/usr/bin/python3.11", BUILD_DEBIAN_STATIC,
			 NULL);

	if (!cache || !*cache) {
		snprintf(pattern, sizeof(pattern), "%s/.cache/hangtrace/pythons", home ? home : "/root");
		cache = pattern;
	}
	for (minor = 13; minor <= 15; minor++) {
		snprintf(path, sizeof(path), "%s/bin/python3.%d", cache, minor);
		snprintf(name, sizeof(name), "debian-unstable %s", path);
		test_interpreter(name, path, BUILD_DEBIAN_LOADER, NULL);
	}

	test_renamed_deleted("/usr/bin/python3.11");
	snprintf(path, sizeof(path), "%s/versions/3.6.15", pyenv);
	test_stripped36(path);

	test_no_such_process();
	test_not_python();
	test_zombie();
	test_kthread();
	snprintf(path, sizeof(path), "%s/versions/2.7.18/bin/python2.7", pyenv);
	test_python2(path);

	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed ? 1 : 0;
}
