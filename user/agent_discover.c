// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The agent's view of a process: identity, filters, service labels. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"

int agent_filter__add(struct agent_filter *f, const char *spec)
{
	static const struct {
		const char *prefix;
		int field;
	} kinds[] = {
		{ "exe:", AF_EXE },
		{ "cmdline:", AF_CMDLINE },
		{ "cgroup:", AF_CGROUP },
	};
	const char *re = spec;
	int field = AF_CMDLINE, err;
	char msg[256];
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!strncmp(spec, kinds[i].prefix, strlen(kinds[i].prefix))) {
			field = kinds[i].field;
			re = spec + strlen(kinds[i].prefix);
			break;
		}
	}
	if (f->n == AGENT_MAX_FILTERS) {
		p_err("too many --include/--exclude patterns (at most %d of each)", AGENT_MAX_FILTERS);
		return -EINVAL;
	}
	err = regcomp(&f->re[f->n], re, REG_EXTENDED | REG_NOSUB);
	if (err) {
		regerror(err, &f->re[f->n], msg, sizeof(msg));
		p_err("bad pattern '%s': %s", re, msg);
		return -EINVAL;
	}
	f->field[f->n++] = field;
	return 0;
}

void agent_filter__free(struct agent_filter *f)
{
	int i;

	for (i = 0; i < f->n; i++)
		regfree(&f->re[i]);
	f->n = 0;
}

static bool filter_match(const struct agent_filter *f, const struct agent_procinfo *pi)
{
	const char *s;
	int i;

	for (i = 0; i < f->n; i++) {
		s = f->field[i] == AF_EXE ? pi->exe :
		    f->field[i] == AF_CGROUP ? pi->cgroup : (pi->cmdline ? pi->cmdline : "");
		if (!regexec(&f->re[i], s, 0, NULL, 0))
			return true;
	}
	return false;
}

bool agent__wanted(const struct agent_filter *inc, const struct agent_filter *exc,
		   const struct agent_procinfo *pi)
{
	if (inc->n && !filter_match(inc, pi))
		return false;
	return !filter_match(exc, pi);
}

/* Field 22 of /proc/PID/stat (after the comm, which may hold spaces and parens). */
static int read_stat(pid_t pid, char *state, uint64_t *starttime)
{
	char path[64], buf[1024], *p;
	unsigned long long st = 0;
	ssize_t n;
	int fd, i;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EINVAL;
	*state = p[2];
	/* fields after the comm: 3 state ... 22 starttime */
	for (i = 3, p += 2; i < 22 && p; i++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p || sscanf(p, "%llu", &st) != 1)
		return -EINVAL;
	*starttime = st;
	return 0;
}

uint64_t agent_procinfo__starttime(pid_t pid)
{
	uint64_t st;
	char state;

	if (read_stat(pid, &state, &st) || state == 'Z' || state == 'X')
		return 0;
	return st;
}

static char *read_cmdline(pid_t pid)
{
	char path[64], *buf;
	size_t cap = 4096;
	ssize_t n, i;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return NULL;
	}
	/* the first 4 KiB are enough to filter and to name the script */
	n = read(fd, buf, cap);
	close(fd);
	if (n < 0)
		n = 0;
	while (n > 0 && buf[n - 1] == 0)
		n--;
	for (i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = 0;
	return buf;
}

static void read_cgroup(pid_t pid, char *out, size_t outsz)
{
	char path[64], line[1024];
	FILE *f;

	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* cgroup v2: "0::/system.slice/foo.service" */
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = 0;
			snprintf(out, outsz, "%.*s", (int)(outsz - 1), line + 3);
			break;
		}
	}
	fclose(f);
}

int agent_procinfo__read(pid_t pid, struct agent_procinfo *pi)
{
	char path[64], state;
	ssize_t n;
	int err;

	memset(pi, 0, sizeof(*pi));
	pi->pid = pid;
	err = read_stat(pid, &state, &pi->starttime);
	if (err)
		return err;
	if (state == 'Z' || state == 'X')
		return -ENOENT;
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, pi->exe, sizeof(pi->exe) - 1);
	if (n <= 0)
		return errno == ENOENT ? -ENOENT : -ESRCH;	/* a kernel thread has no exe */
	pi->exe[n] = 0;
	pi->cmdline = read_cmdline(pid);
	read_cgroup(pid, pi->cgroup, sizeof(pi->cgroup));
	return 0;
}

void agent_procinfo__free(struct agent_procinfo *pi)
{
	free(pi->cmdline);
	pi->cmdline = NULL;
}

static const char *base_name(const char *s, size_t len, char *out, size_t outsz)
{
	const char *b = s;
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '/')
			b = s + i + 1;
	len -= b - s;
	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, b, len);
	out[len] = 0;
	return out;
}

/* Does ld.so option @w (@len bytes) take a value? */
static bool takes_value(const char *w, size_t len)
{
	static const char *const opts[] = {
		"--library-path", "--preload", "--audit", "--argv0", "--inhibit-rpath",
		"--glibc-hwcaps-prepend", "--glibc-hwcaps-mask",
	};
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (strlen(opts[i]) == len && !strncmp(w, opts[i], len))
			return true;
	return false;
}

/*
 * The script or module from a Python command line: "python3 -u app.py" ->
 * "app.py", "python3 -m uvicorn main:app" -> "uvicorn", "python3 -c ..." ->
 * "-c".  Arguments are split at spaces (the NULs became spaces): a script
 * path with a space in it is named by its last part, which is fine for a label.
 */
static void script_of(const char *cmdline, bool loader, char *exe, size_t exesz, char *out,
		      size_t outsz)
{
	/* interpreter options that take a value */
	static const char with_arg[] = "WXQ";
	const char *p = cmdline, *w;
	size_t len;
	bool first = true;

	out[0] = 0;
	while (p && *p) {
		while (*p == ' ')
			p++;
		w = p;
		len = strcspn(p, " ");
		p += len;
		if (!len)
			break;
		if (first) {		/* the interpreter itself */
			first = false;
			continue;
		}
		if (loader) {
			/*
			 * ld.so PROGRAM: its options (--library-path DIR, --argv0
			 * NAME, ...) each take a value; then the program, which
			 * names the executable better than the loader does.
			 */
			if (w[0] == '-' && w[1] == '-') {
				if (takes_value(w, len)) {
					while (*p == ' ')
						p++;
					p += strcspn(p, " ");
				}
				continue;
			}
			base_name(w, len, exe, exesz);
			loader = false;
			continue;
		}
		if (w[0] == '-' && len >= 2 && w[1] != '-') {
			if (w[1] == 'c') {
				snprintf(out, outsz, "-c");
				return;
			}
			if (w[1] == 'm') {
				if (len > 2) {	/* -mmodule */
					base_name(w + 2, len - 2, out, outsz);
					return;
				}
				while (*p == ' ')
					p++;
				base_name(p, strcspn(p, " "), out, outsz);
				return;
			}
			if (len == 2 && strchr(with_arg, w[1])) {
				while (*p == ' ')
					p++;
				p += strcspn(p, " ");
			}
			continue;
		}
		if (w[0] == '-')	/* --check-hash-based-pycs ..., rare; skip */
			continue;
		base_name(w, len, out, outsz);
		return;
	}
}

/*
 * A container's cgroup path ends in its id (docker-<64 hex>.scope,
 * cri-containerd-<hex>.scope, /docker/<hex>): the first 12 hex digits name
 * it; otherwise the last path component ("foo.service", "session-3.scope").
 */
static void cgroup_label(const char *path, char *out, size_t outsz)
{
	const char *last = strrchr(path, '/');
	size_t i, run = 0;

	last = last ? last + 1 : path;
	for (i = 0; last[i]; i++) {
		run = isxdigit((unsigned char)last[i]) ? run + 1 : 0;
		if (run == 64) {
			snprintf(out, outsz, "%.12s", last + i - 63);
			return;
		}
	}
	snprintf(out, outsz, "%.*s", (int)(outsz - 1), last);
}

void agent_ident__from(const struct agent_procinfo *pi, struct agent_ident *id)
{
	bool loader;

	memset(id, 0, sizeof(*id));
	base_name(pi->exe, strlen(pi->exe), id->exe, sizeof(id->exe));
	/* "/usr/bin/python3.11 (deleted)" after an upgrade: keep the name */
	if (strlen(id->exe) > 10 && !strcmp(id->exe + strlen(id->exe) - 10, " (deleted)"))
		id->exe[strlen(id->exe) - 10] = 0;
	/* a Python run through a dynamic loader: /proc/PID/exe is ld.so */
	loader = !strncmp(id->exe, "ld-", 3) || !strncmp(id->exe, "ld.so", 5);
	script_of(pi->cmdline ? pi->cmdline : "", loader, id->exe, sizeof(id->exe), id->script,
		  sizeof(id->script));
	cgroup_label(pi->cgroup, id->cgroup, sizeof(id->cgroup));
}
