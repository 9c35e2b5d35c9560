// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Stall events as JSON lines; profile file names and retention. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent.h"
#include "jsonout.h"
#include "log.h"
#include "report.h"
#include "syscalls.h"

int agent_events__open(struct agent_events *ev, const char *path)
{
	ev->path = path;
	if (!strcmp(path, "-")) {
		ev->f = stdout;
		return 0;
	}
	/* appended, so a log shipper can follow it; SIGHUP reopens after rotation */
	ev->f = fopen(path, "ae");
	if (!ev->f) {
		p_err("cannot open the events file %s: %s", path, strerror(errno));
		return -errno;
	}
	return 0;
}

int agent_events__reopen(struct agent_events *ev)
{
	FILE *f;

	if (!ev->f || ev->f == stdout)
		return 0;
	f = fopen(ev->path, "ae");
	if (!f) {
		p_warn("cannot reopen the events file %s: %s; still writing to the old one",
		       ev->path, strerror(errno));
		return -errno;
	}
	fclose(ev->f);
	ev->f = f;
	return 0;
}

void agent_events__close(struct agent_events *ev)
{
	if (ev->f && ev->f != stdout)
		fclose(ev->f);
	else if (ev->f)
		fflush(ev->f);
	ev->f = NULL;
}

/* RFC 3339 UTC with milliseconds. */
static void rfc3339(uint64_t unix_ns, char *out, size_t outsz)
{
	time_t secs = unix_ns / 1000000000ULL;
	struct tm tm;
	char buf[32];

	gmtime_r(&secs, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, outsz, "%s.%03uZ", buf, (unsigned int)(unix_ns % 1000000000ULL / 1000000));
}

int agent_events__stall(struct agent_events *ev, const struct report *r, size_t i,
			const struct agent_ident *id, uint64_t window_mono_ns)
{
	const struct rstall *st = &r->stalls[i];
	const struct rblocker *b = st->blocker >= 0 ? &r->blockers[st->blocker] : NULL;
	const struct rthread *th;
	/* a stall may have begun in the previous window: from its own start */
	uint64_t start = r->start_unix_ns + (int64_t)(st->start_ktime_ns - window_mono_ns);
	json_object *o = json_object_new_object(), *proc;
	char when[48];
	int err = 0;

	if (!o)
		return -ENOMEM;
	rfc3339(start + st->dur_ns, when, sizeof(when));
	json_object_object_add(o, "time", json_object_new_string(when));
	rfc3339(start, when, sizeof(when));
	json_object_object_add(o, "start", json_object_new_string(when));
	json_object_object_add(o, "event", json_object_new_string("stall"));
	json_object_object_add(o, "duration_s", json__secs(st->dur_ns));
	proc = json_object_new_object();
	json_object_object_add(proc, "pid", json_object_new_int64(r->pid));
	json_object_object_add(proc, "exe", json__str(id->exe));
	json_object_object_add(proc, "script", json__str(id->script));
	json_object_object_add(proc, "cgroup", json__str(id->cgroup));
	json_object_object_add(proc, "cmdline", json__str(r->cmdline));
	json_object_object_add(proc, "python", json__str(r->python));
	json_object_object_add(o, "process", proc);
	json_object_object_add(o, "tid", json_object_new_int64(st->tid));
	th = report__thread(r, st->tid);
	json_object_object_add(o, "thread", th ? json__str(th->name) : NULL);
	json_object_object_add(o, "coro", st->coro ? json__str(st->coro) : NULL);
	/* the blocker: what the loop thread was doing (stack, reason, waker, hint) */
	json_object_object_add(o, "reason", b ? json__str(reason_name(b->reason)) : NULL);
	json_object_object_add(o, "hint", b && b->hint ? json__str(b->hint) : NULL);
	json_object_object_add(o, "blocker", b ? report__json_blocker(b) : NULL);
	if (fprintf(ev->f, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)) < 0 ||
	    fflush(ev->f))
		err = errno ? -errno : -EIO;
	json_object_put(o);
	return err;
}

/* Only [A-Za-z0-9._-]: names from the target never make paths or shell words. */
static void put_safe(char *out, size_t outsz, size_t *pos, const char *s, size_t max)
{
	size_t n = 0;

	for (; s && *s && n < max && *pos + 1 < outsz; s++, n++) {
		unsigned char c = *s;

		out[(*pos)++] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
						(c >= '0' && c <= '9') || c == '.' || c == '_' ?
					c : '_';
	}
	out[*pos] = 0;
}

void agent_profile_name(const struct agent_ident *id, pid_t pid, uint64_t unix_s, char *out,
			size_t outsz)
{
	char tail[64];
	size_t pos;

	pos = snprintf(out, outsz, "hangtrace-");
	if (pos >= outsz)
		return;
	put_safe(out, outsz, &pos, id->exe, 40);
	if (pos + 1 < outsz)
		out[pos++] = '-';
	put_safe(out, outsz, &pos, id->script[0] ? id->script : "_", 60);
	snprintf(tail, sizeof(tail), "-%d-%llu", (int)pid, (unsigned long long)unix_s);
	if (pos + strlen(tail) < outsz)
		memcpy(out + pos, tail, strlen(tail) + 1);
}

struct pfile {
	char *name;
	time_t mtime;
};

static int cmp_newest(const void *x, const void *y)
{
	const struct pfile *a = x, *b = y;

	if (a->mtime != b->mtime)
		return a->mtime < b->mtime ? 1 : -1;
	return strcmp(b->name, a->name);
}

int agent_profiles__retain(const char *dir, uint64_t max_age_s, unsigned int keep)
{
	struct pfile *files = NULL, *tmp;
	size_t n = 0, cap = 0, i;
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	int removed = 0;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		/* ours only, and not a temporary file being written */
		if (strncmp(de->d_name, "hangtrace-", 10) || strstr(de->d_name, ".tmp."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			tmp = realloc(files, cap * sizeof(*files));
			if (!tmp)
				break;
			files = tmp;
		}
		files[n].name = strdup(de->d_name);
		if (!files[n].name)
			break;
		files[n++].mtime = st.st_mtime;
	}
	if (n)
		qsort(files, n, sizeof(*files), cmp_newest);
	for (i = 0; i < n; i++) {
		bool old = max_age_s && now - files[i].mtime > (time_t)max_age_s;

		if ((i >= keep || old) && !unlinkat(dirfd(d), files[i].name, 0))
			removed++;
		free(files[i].name);
	}
	free(files);
	closedir(d);
	return removed;
}
