// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flame.h"
#include "log.h"
#include "output.h"
#include "pprof.h"
#include "report.h"
#include "speedscope.h"

struct report_out {
	const struct report *r;
	enum out_format fmt;
};

static int write_fmt(void *ctx, FILE *f)
{
	const struct report *r = ((struct report_out *)ctx)->r;

	switch (((struct report_out *)ctx)->fmt) {
	case FMT_JSON:
		return report__write_json(r, f);
	case FMT_FOLDED:
		return report__write_folded(r, f);
	case FMT_PPROF:
		return pprof__write(r, f);
	case FMT_SPEEDSCOPE:
		return speedscope__write(r, f);
	case FMT_SVG:
		return report__write_svg(r, f);
	case FMT_HTML:
		return report__write_html(r, f);
	case FMT_TEXT:
	default:
		return report__write_text(r, f);
	}
}

int output__write(const struct report *r, enum out_format fmt, const char *path)
{
	struct report_out ro = { .r = r, .fmt = fmt };

	return output__write_with(path, write_fmt, &ro);
}

/*
 * An anonymous file (O_TMPFILE) in @path's directory: if hangtrace is killed
 * while writing, nothing is left behind.  -1 and errno when the filesystem
 * has no O_TMPFILE.
 */
static int open_anonymous(const char *path)
{
	char *dir = strdup(path), *slash;
	int fd;

	if (!dir)
		return -1;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
	free(dir);
	return fd;
}

/* Give the anonymous file @fd the name @tmp (a fresh name beside @path). */
static int name_anonymous(int fd, const char *path, char **tmp)
{
	char proc[64];
	int i;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	for (i = 0; i < 100; i++) {
		free(*tmp);
		*tmp = NULL;
		if (asprintf(tmp, "%s.tmp.%d.%d", path, (int)getpid(), i) < 0)
			return -ENOMEM;
		if (!linkat(AT_FDCWD, proc, AT_FDCWD, *tmp, AT_SYMLINK_FOLLOW))
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int output__write_with(const char *path, int (*write_fn)(void *ctx, FILE *f), void *ctx)
{
	char *tmp = NULL;
	bool anonymous;
	FILE *f = NULL;
	int fd = -1, err = 0;

	if (!path) {
		if (write_fn(ctx, stdout) || fflush(stdout)) {
			err = errno ? -errno : -EIO;
			p_err("writing to stdout failed: %s", strerror(-err));
		}
		return err;
	}
	/*
	 * Write an anonymous file, name it and rename it over @path: the file
	 * is complete or absent.  Killed with SIGKILL while writing, an
	 * anonymous file leaves nothing; without O_TMPFILE, a PATH.tmp.XXXXXX
	 * is left (docs/hardening.md).
	 */
	fd = open_anonymous(path);
	anonymous = fd >= 0;
	if (!anonymous) {
		if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
			return -ENOMEM;
		fd = mkstemp(tmp);
	}
	if (fd < 0) {
		err = -errno;
		p_err("cannot create a file beside %s: %s", path, strerror(-err));
		goto cleanup;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		if (!anonymous)
			unlink(tmp);
		goto cleanup;
	}
	errno = 0;
	if (fchmod(fd, 0644) || write_fn(ctx, f) || fflush(f) || fsync(fd)) {
		err = errno ? -errno : -EIO;
		p_err("writing %s failed: %s", path, strerror(-err));
		fclose(f);
		if (!anonymous)
			unlink(tmp);
		goto cleanup;
	}
	if (anonymous) {
		err = name_anonymous(fd, path, &tmp);
		if (err) {
			p_err("cannot create a file beside %s: %s", path, strerror(-err));
			fclose(f);
			goto cleanup;
		}
	}
	if (fclose(f)) {
		err = -errno;
		p_err("writing %s failed: %s", path, strerror(-err));
		unlink(tmp);
		goto cleanup;
	}
	if (rename(tmp, path)) {
		err = -errno;
		p_err("cannot rename %s to %s: %s", tmp, path, strerror(-err));
		unlink(tmp);
	}
cleanup:
	free(tmp);
	return err;
}
