// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hangtrace.h"
#include "procmem.h"
#include "procthread.h"
#include "reason.h"
#include "sockpeer.h"

static FILE *open_task_file(pid_t pid, pid_t tid, const char *name)
{
	char path[96];

	if (tid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", (int)pid, (int)tid, name);
	else
		snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
	return fopen(path, "re");
}

void procthread__comm(pid_t pid, pid_t tid, char *out, size_t outsz)
{
	size_t n;
	FILE *f;

	out[0] = 0;
	f = open_task_file(pid, tid, "comm");
	if (!f)
		return;
	if (fgets(out, outsz, f)) {
		n = strlen(out);
		if (n && out[n - 1] == '\n')
			out[n - 1] = 0;
	}
	fclose(f);
}

char *procthread__cmdline(pid_t pid)
{
	char buf[4096];
	size_t n, i;
	FILE *f;

	f = open_task_file(pid, 0, "cmdline");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && !buf[n - 1])
		n--;
	for (i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	buf[n] = 0;
	return n ? strdup(buf) : NULL;
}

int procthread__state(pid_t pid, pid_t tid, char *state)
{
	char buf[512], *p;
	FILE *f;
	int err = 0;

	f = open_task_file(pid, tid, "stat");
	if (!f)
		return -errno;
	/* "pid (comm) S ...": comm may hold spaces and parentheses, the last ')' ends it */
	if (!fgets(buf, sizeof(buf), f))
		err = -EIO;
	fclose(f);
	if (err)
		return err;
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EINVAL;
	*state = p[2];
	return 0;
}

/* /proc/PID/task/TID/syscall: "nr arg0 .. arg5 sp pc", "running" or "-1 sp pc". */
int procthread__syscall(pid_t pid, pid_t tid, long *nr, uint64_t args[6], uint64_t *sp)
{
	unsigned long long a[8] = {};
	char buf[512];
	FILE *f;
	int i, n;

	f = open_task_file(pid, tid, "syscall");
	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	if (!strncmp(buf, "running", 7))
		return -EBUSY;
	/* "NR a0 a1 a2 a3 a4 a5 SP PC", or "-1 SP PC" outside a system call */
	n = sscanf(buf, "%ld %llx %llx %llx %llx %llx %llx %llx", nr, &a[0], &a[1], &a[2], &a[3],
		   &a[4], &a[5], &a[6]);
	for (i = 0; i < 6; i++)
		args[i] = *nr >= 0 ? a[i] : 0;
	if (sp)
		*sp = *nr >= 0 ? (n == 8 ? a[6] : 0) : (n >= 2 ? a[0] : 0);
	return n >= 1 ? 0 : -EINVAL;
}

void procthread__kstack_free(char **names, int depth)
{
	int i;

	for (i = 0; i < depth; i++)
		free(names[i]);
	free(names);
}

/* /proc/PID/task/TID/stack: "[<0>] futex_wait_queue+0x63/0xa0" per line. */
int procthread__kstack(pid_t pid, pid_t tid, char ***names, int *depth)
{
	char line[256], name[200], **out;
	int n = 0;
	FILE *f;

	*names = NULL;
	*depth = 0;
	f = open_task_file(pid, tid, "stack");
	if (!f)
		return 0;
	out = calloc(HT_MAX_KSTACK, sizeof(*out));
	if (!out) {
		fclose(f);
		return -ENOMEM;
	}
	while (n < HT_MAX_KSTACK && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "[<%*[0-9a-fx]>] %199[^+ \n]", name) != 1)
			continue;
		out[n] = strdup(name);
		if (!out[n])
			break;
		n++;
	}
	fclose(f);
	*names = out;
	*depth = n;
	return 0;
}

int procthread__fd_kind(pid_t pid, long fd)
{
	char path[64], target[64];
	ssize_t n;

	if (fd < 0)
		return HT_FD_UNKNOWN;
	snprintf(path, sizeof(path), "/proc/%d/fd/%ld", (int)pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return HT_FD_UNKNOWN;
	target[n] = 0;
	return !strncmp(target, "socket:", 7) ? HT_FD_SOCKET : HT_FD_OTHER;
}

void procthread__classify(pid_t pid, pid_t tid, struct procmem *mem, const struct ht_py_proc *pp,
			  struct procthread_wait *w)
{
	char desc[256];
	long nr = -1, fd = -1;
	uint64_t cls;
	int32_t pfd;

	memset(w, 0, sizeof(*w));
	w->syscall = -1;
	w->reason = HT_R_OTHER;
	w->fd = -1;
	if (procthread__syscall(pid, tid, &nr, w->args, &w->sp))
		return;
	w->syscall = nr;
	cls = w->args[0];
	if (nr == HT_NR_poll || nr == HT_NR_ppoll) {
		cls = w->args[1];
		if (w->args[1] >= 1 && !procmem__read(mem, w->args[0], &pfd, sizeof(pfd)))
			fd = pfd;
	} else if (ht_syscall_fd_arg(nr) ||
		   ht_classify(nr, 0, pp->gil_lo, pp->gil_hi, 0) == HT_R_SOCKET) {
		fd = (long)w->args[0];
	}
	w->reason = ht_classify(nr, cls, pp->gil_lo, pp->gil_hi, procthread__fd_kind(pid, fd));
	if (fd >= 0 && nr != HT_NR_futex) {
		w->fd = fd;
		if (!fd_describe(pid, fd, desc, sizeof(desc)))
			w->fd_desc = strdup(desc);
	}
}
