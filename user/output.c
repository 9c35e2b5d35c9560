// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
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

int output__write_with(const char *path, int (*write_fn)(void *ctx, FILE *f), void *ctx)
{
	char *tmp = NULL;
	FILE *f = NULL;
	int fd = -1, err = 0;

	if (!path) {
		if (write_fn(ctx, stdout) || fflush(stdout)) {
			err = -errno ? -errno : -EIO;
			p_err("writing to stdout failed: %s", strerror(-err));
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
	if (fchmod(fd, 0644) || write_fn(ctx, f) || fflush(f) || fsync(fd)) {
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
