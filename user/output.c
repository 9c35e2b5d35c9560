// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "output.h"
#include "report.h"

static int write_fmt(const struct report *r, enum out_format fmt, FILE *f)
{
	switch (fmt) {
	case FMT_JSON:
		return report__write_json(r, f);
	case FMT_FOLDED:
		return report__write_folded(r, f);
	case FMT_TEXT:
	default:
		return report__write_text(r, f);
	}
}

int output__write(const struct report *r, enum out_format fmt, const char *path)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1, err = 0;

	if (!path) {
		if (write_fmt(r, fmt, stdout) || fflush(stdout)) {
			err = -errno ? -errno : -EIO;
			p_err("writing the report to stdout failed: %s", strerror(-err));
		}
		return err;
	}
	if (asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0)
		return -ENOMEM;
	fd = mkstemp(tmp);
	if (fd < 0) {
		err = -errno;
		p_err("cannot create %s: %s", tmp, strerror(-err));
		goto cleanup;
	}
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		unlink(tmp);
		goto cleanup;
	}
	if (fchmod(fd, 0644) || write_fmt(r, fmt, f) || fflush(f) || fsync(fd)) {
		err = errno ? -errno : -EIO;
		p_err("writing %s failed: %s", path, strerror(-err));
		fclose(f);
		unlink(tmp);
		goto cleanup;
	}
	if (fclose(f)) {
		err = -errno;
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
