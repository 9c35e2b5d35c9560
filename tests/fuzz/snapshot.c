// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * snapshot PID OUTDIR TAG [STR_ADDR...] - seed inputs for the fuzz targets,
 * taken from a live interpreter (tests/fuzz/gen-corpus.py runs it on every
 * interpreter it finds).  The real decoders run against the process, and a
 * procmem tap records every byte they read: that record, with the header the
 * fuzz target takes, is an input that replays the same decoding over a fake
 * image.  Writes OUTDIR/<target>/TAG[-N] for pywalk, pysym, pystr, linetable,
 * pyoffsets (3.13+) and procmaps, and prints the interpreter's ELF file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "linetable.h"
#include "pyproc.h"
#include "pystr.h"
#include "pysym.h"
#include "pywalk_user.h"
#include "tracer.h"

#define MAX_PYSYM_SEEDS 4
#define MAX_LINETABLE_SEEDS 3
#define MAX_MAPS_BYTES 6144
#define MAX_RECORD_BYTES (256u << 10)

struct record {
	struct {
		uint64_t addr;
		uint8_t *data;
		size_t len;
	} r[FUZZ_MAX_REGIONS];
	size_t nr, bytes;
};

static void record_tap(void *ctx, uint64_t addr, const void *buf, size_t len)
{
	struct record *rec = ctx;
	size_t i;

	/* Already have these bytes?  (Reads repeat: caches miss, lists are rewalked.) */
	for (i = 0; i < rec->nr; i++)
		if (addr >= rec->r[i].addr && addr - rec->r[i].addr <= rec->r[i].len &&
		    len <= rec->r[i].len - (addr - rec->r[i].addr))
			return;
	if (rec->nr == FUZZ_MAX_REGIONS || rec->bytes + len > MAX_RECORD_BYTES)
		return;
	rec->r[rec->nr].data = malloc(len);
	if (!rec->r[rec->nr].data)
		return;
	memcpy(rec->r[rec->nr].data, buf, len);
	rec->r[rec->nr].addr = addr;
	rec->r[rec->nr].len = len;
	rec->nr++;
	rec->bytes += len;
}

static void record_reset(struct record *rec)
{
	size_t i;

	for (i = 0; i < rec->nr; i++)
		free(rec->r[i].data);
	rec->nr = rec->bytes = 0;
}

static int write_file(const char *dir, const char *target, const char *name, const void *hdr,
		      size_t hdrlen, const struct record *rec)
{
	char path[4096];
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	f = fopen(path, "wb");
	if (!f) {
		fprintf(stderr, "snapshot: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	fwrite(hdr, 1, hdrlen, f);
	for (i = 0; rec && i < rec->nr; i++) {
		uint32_t len = (uint32_t)rec->r[i].len;

		fwrite(&rec->r[i].addr, 8, 1, f);
		fwrite(&len, 4, 1, f);
		fwrite(rec->r[i].data, 1, len, f);
	}
	if (fclose(f))
		return -EIO;
	printf("wrote %s\n", path);
	return 0;
}

static void snap_maps(pid_t pid, const char *dir, const char *tag)
{
	char path[64], *buf;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	fd = open(path, O_RDONLY);
	buf = malloc(MAX_MAPS_BYTES);
	if (fd < 0 || !buf)
		goto cleanup;
	n = read(fd, buf, MAX_MAPS_BYTES);
	/* keep whole lines only */
	while (n > 0 && buf[n - 1] != '\n')
		n--;
	if (n > 0)
		write_file(dir, "procmaps", tag, buf, (size_t)n, NULL);
cleanup:
	free(buf);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	static struct ht_pystack st;
	static struct record rec;
	static struct pyproc p;
	struct fuzz_pywalk_hdr wh;
	struct ht_py_proc pp;
	struct procmem *m = NULL;
	char err[512], name[256];
	uint64_t interp = 0, ts = 0, fsbase = 0;
	const char *dir, *tag;
	pid_t pid;
	int i, ret = 1;

	if (argc < 4) {
		fprintf(stderr, "usage: snapshot PID OUTDIR TAG [STR_ADDR...]\n");
		return 2;
	}
	pid = (pid_t)atoi(argv[1]);
	dir = argv[2];
	tag = argv[3];
	if (pyproc__discover(pid, &p, err, sizeof(err))) {
		fprintf(stderr, "snapshot: %s\n", err);
		return 1;
	}
	if (tracer__py_proc(&p, &pp)) {
		fprintf(stderr, "snapshot: no walker layout for %s\n", p.version);
		return 1;
	}
	printf("elf %s\n", p.python_file);
	m = procmem__open(pid);
	if (!m)
		goto cleanup;
	snap_maps(pid, dir, tag);

	/* 3.13+: the _Py_DebugOffsets blob the layout came from */
	if (p.minor >= 13 && p.runtime_addr) {
		uint8_t blob[PY_DEBUG_OFFSETS_MAX];

		if (!procmem__read(m, p.runtime_addr, blob, sizeof(blob)))
			write_file(dir, "pyoffsets", tag, blob, sizeof(blob), NULL);
	}

	/* The main thread: 3.11+ find it by TID; older ones by pthread_self(), read back. */
	if (procmem__read_u64(m, p.interp_head_addr, &interp) ||
	    procmem__read_u64(m, interp + p.off.interp_tstate_head, &ts) ||
	    (p.off.ts_thread_id >= 0 && procmem__read_u64(m, ts + p.off.ts_thread_id, &fsbase))) {
		fprintf(stderr, "snapshot: cannot read the thread list\n");
		goto cleanup;
	}

	/* pywalk: find + walk + symbolize every frame, as `hangtrace dump` does */
	procmem__set_tap(m, record_tap, &rec);
	memset(&wh, 0, sizeof(wh));
	wh.off = p.off;
	wh.pp = pp;
	wh.tid = (uint32_t)pid;
	wh.fsbase = fsbase;
	wh.max_frames = HT_MAX_PY_FRAMES;
	ts = pywalk__find_tstate(&pp, m, (uint32_t)pid, fsbase);
	wh.tstate = ts;
	pywalk__stack(&pp, m, ts, &st, HT_MAX_PY_FRAMES);
	{
		struct pysym *s = pysym__new(&p, m);
		struct pyframe_sym fs;
		uint32_t k;

		for (k = 0; s && k < st.depth; k++) {
			pysym__frame(s, st.frames[k].code, st.frames[k].instr, &fs);
			printf("frame %s %s:%d\n", fs.function, fs.file, fs.line);
		}
		pysym__free(s);
	}
	write_file(dir, "pywalk", tag, &wh, sizeof(wh), &rec);
	record_reset(&rec);
	if (!st.depth) {
		fprintf(stderr, "snapshot: no Python frame in the main thread\n");
		goto cleanup;
	}

	/* pysym: one code object each, with the frame's instruction */
	for (i = 0; i < MAX_PYSYM_SEEDS && (uint32_t)i < st.depth; i++) {
		struct fuzz_pysym_hdr sh;
		struct pyframe_sym fs;
		struct pysym *s;

		memset(&sh, 0, sizeof(sh));
		sh.off = p.off;
		sh.code = st.frames[i].code;
		sh.instr[0] = st.frames[i].instr;
		sh.instr[1] = st.frames[i].instr + 2;
		sh.instr[2] = 0;
		sh.instr[3] = st.frames[i].instr + 64;
		s = pysym__new(&p, m);
		if (s)
			pysym__frame(s, sh.code, sh.instr[0], &fs);
		pysym__free(s);
		snprintf(name, sizeof(name), "%s-%d", tag, i);
		write_file(dir, "pysym", name, &sh, sizeof(sh), &rec);
		record_reset(&rec);
	}

	/* linetable: the real tables of the innermost frames (tap off: no image) */
	procmem__set_tap(m, NULL, NULL);
	for (i = 0; i < MAX_LINETABLE_SEEDS && (uint32_t)i < st.depth; i++) {
		struct fuzz_linetable_hdr lh;
		uint64_t code = st.frames[i].code, lt = 0;
		int32_t first = 0;
		uint8_t *tab = NULL;
		size_t len = 0;
		uint8_t *buf;

		if (procmem__read_u64(m, code + p.off.code_linetable, &lt) ||
		    procmem__read(m, code + p.off.code_firstlineno, &first, sizeof(first)) ||
		    pybytes__read(m, &p.off, lt, 1 << 16, &tab, &len))
			continue;
		memset(&lh, 0, sizeof(lh));
		lh.fmt = (uint8_t)p.traits->linetable;
		lh.firstlineno = first;
		if (p.off.frame_lasti >= 0)
			lh.q = (int64_t)st.frames[i].instr * p.traits->lasti_scale;
		else
			lh.q = (int64_t)(st.frames[i].instr - (code + p.off.code_code_adaptive)) / 2;
		buf = malloc(sizeof(lh) + len);
		if (buf) {
			memcpy(buf, &lh, sizeof(lh));
			memcpy(buf + sizeof(lh), tab, len);
			snprintf(name, sizeof(name), "%s-%d", tag, i);
			write_file(dir, "linetable", name, buf, sizeof(lh) + len, NULL);
			free(buf);
		}
		free(tab);
	}

	/* pystr: each str the target named, with the innermost frame's line table as the bytes */
	procmem__set_tap(m, record_tap, &rec);
	for (i = 4; i < argc; i++) {
		struct fuzz_pystr_hdr sh;
		char out[1024];
		uint64_t lt = 0;

		memset(&sh, 0, sizeof(sh));
		sh.off = p.off;
		sh.str_addr = strtoull(argv[i], NULL, 0);
		sh.outsz = sizeof(out) - 1;
		sh.bytes_max = 4096;
		procmem__set_tap(m, NULL, NULL);
		procmem__read_u64(m, st.frames[0].code + p.off.code_linetable, &lt);
		procmem__set_tap(m, record_tap, &rec);
		sh.bytes_addr = lt;
		if (pystr__read(m, &p.off, sh.str_addr, out, sizeof(out)))
			fprintf(stderr, "snapshot: str at %s unreadable\n", argv[i]);
		else
			printf("str %s\n", out);
		if (lt) {
			uint8_t *b = NULL;
			size_t bl = 0;

			pybytes__read(m, &p.off, lt, sh.bytes_max, &b, &bl);
			free(b);
		}
		snprintf(name, sizeof(name), "%s-%d", tag, i - 4);
		write_file(dir, "pystr", name, &sh, sizeof(sh), &rec);
		record_reset(&rec);
	}
	ret = 0;
cleanup:
	procmem__close(m);
	return ret;
}
