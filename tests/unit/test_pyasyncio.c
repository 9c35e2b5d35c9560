// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pyasyncio__parse (_AsyncioDebug, CPython 3.14+) and pyoffsets__debug_field,
 * fed
 *   - an image of 3.14's _Py_AsyncioModuleDebugOffsets built from the field
 *     list in Modules/_asynciomodule.c,
 *   - the real .AsyncioDebug bytes of Debian's 3.14 (_asyncio lib-dynload
 *     module) and 3.15 (built into the executable), and the real
 *     _Py_DebugOffsets of both, when tests/fetch-pythons.sh has unpacked them,
 *   - versions without it, truncated buffers and implausible values.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "elfsym.h"
#include "pyasyncio.h"
#include "pyoffsets.h"
#include "pystr.h"

/* 3.14.10: asyncio_task_object, asyncio_interpreter_state, asyncio_thread_state */
static const uint64_t image_314[] = {
	168, 136, 96, 108, 109, 128, 152,
	225864, 10880,
	936, 864, 872, 880,
};

static void test_image(void)
{
	struct pyasyncio a;
	uint64_t bad[13];
	int err;

	memset(&a, 0, sizeof(a));
	err = pyasyncio__parse(image_314, sizeof(image_314), 14, &a);
	CHECK(!err && a.task_name == 136 && a.task_coro == 128 && a.ts_running_task == 872,
	      "3.14 image: err %d name %d coro %d running %d", err, a.task_name, a.task_coro,
	      a.ts_running_task);
	err = pyasyncio__parse(image_314, sizeof(image_314), 15, &a);
	CHECK(!err && a.ts_running_task == 872, "3.15 takes the same list: %d", err);

	/* no asyncio debug offsets before 3.14, none known after 3.15 */
	CHECK(pyasyncio__parse(image_314, sizeof(image_314), 13, &a) == -ENOTSUP, "3.13");
	CHECK(pyasyncio__parse(image_314, sizeof(image_314), 16, &a) == -ENOTSUP, "3.16");
	/* every truncation is refused */
	for (size_t len = 0; len < sizeof(image_314); len += 8)
		CHECK(pyasyncio__parse(image_314, len, 14, &a) == -EINVAL, "%zu bytes", len);
	CHECK(pyasyncio__parse(NULL, 0, 14, &a) == -EINVAL, "NULL");

	/* values out of their sections, unaligned, absurd sizes, name == coro */
	struct {
		int idx;
		uint64_t v;
		const char *what;
	} cases[] = {
		{ 1, 168, "task_name at the end of TaskObj" },
		{ 1, 137, "unaligned task_name" },
		{ 1, 0, "task_name over ob_refcnt" },
		{ 5, 4096, "task_coro outside TaskObj" },
		{ 5, 136, "task_coro == task_name" },
		{ 0, 1ULL << 40, "huge TaskObj" },
		{ 11, 936, "running task at the end of the thread state" },
		{ 11, 873, "unaligned running task" },
		{ 9, 1ULL << 32, "huge thread state" },
		{ 9, 0, "empty thread state" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, image_314, sizeof(bad));
		bad[cases[i].idx] = cases[i].v;
		memset(&a, 0x5a, sizeof(a));
		err = pyasyncio__parse(bad, sizeof(bad), 14, &a);
		CHECK(err == -EINVAL && a.ts_running_task == 0x5a5a5a5a, "%s: %d", cases[i].what,
		      err);
	}
}

/* The real bytes of the file @path: its .AsyncioDebug and its _Py_DebugOffsets. */
static void test_binary(const char *path, const char *runtime_path, int minor, int running)
{
	struct elfsym *es = elfsym__open(path);
	const void *data;
	struct pyasyncio a;
	uint64_t addr, v;
	uint8_t *rt;
	size_t len;
	int err;

	if (!es) {
		printf("skip: %s not present\n", path);
		return;
	}
	err = elfsym__section_data(es, ".AsyncioDebug", &data, &len);
	CHECK(!err && len == sizeof(image_314), "%s: .AsyncioDebug: %d, %zu bytes", path, err, len);
	if (!err) {
		memset(&a, 0, sizeof(a));
		err = pyasyncio__parse(data, len, minor, &a);
		CHECK(!err && a.task_name == 136 && a.task_coro == 128 &&
		      a.ts_running_task == running,
		      "%s: err %d name %d coro %d running %d", path, err, a.task_name, a.task_coro,
		      a.ts_running_task);
	}
	elfsym__close(es);

	/* the members of _Py_DebugOffsets that name a task's int name and coroutine */
	es = elfsym__open(runtime_path);
	rt = calloc(1, PY_DEBUG_OFFSETS_MAX);
	if (!es || !rt || elfsym__section(es, ".PyRuntime", &addr, &v) ||
	    elfsym__read(es, addr, rt, PY_DEBUG_OFFSETS_MAX)) {
		CHECK(0, "%s: cannot read _Py_DebugOffsets", runtime_path);
	} else {
		CHECK(!pyoffsets__debug_field(rt, PY_DEBUG_OFFSETS_MAX, "long_object", "lv_tag", &v) &&
		      v == 16, "%s: lv_tag %llu", runtime_path, (unsigned long long)v);
		CHECK(!pyoffsets__debug_field(rt, PY_DEBUG_OFFSETS_MAX, "long_object", "ob_digit",
					      &v) && v == 24, "%s: ob_digit %llu", runtime_path,
		      (unsigned long long)v);
		err = pyoffsets__debug_field(rt, PY_DEBUG_OFFSETS_MAX, "gen_object", "gi_iframe", &v);
		CHECK(!err && v % 8 == 0 && v >= 64 && v < 256, "%s: gi_iframe %d %llu",
		      runtime_path, err, (unsigned long long)v);
		CHECK(pyoffsets__debug_field(rt, PY_DEBUG_OFFSETS_MAX, "gen_object", "nope", &v) ==
			      -ENOENT, "unknown field");
		CHECK(pyoffsets__debug_field(rt, 100, "gen_object", "gi_iframe", &v) == -EINVAL,
		      "truncated");
		rt[0] = 'X';
		CHECK(pyoffsets__debug_field(rt, PY_DEBUG_OFFSETS_MAX, "gen_object", "gi_iframe",
					     &v) == -EINVAL, "bad cookie");
	}
	free(rt);
	elfsym__close(es);
}

/* str objects as BPF copies them (the first bytes of the object), 3.14 layout */
static void test_str_image(void)
{
	struct py_offsets off = { .minor = 14, .uni_length = 16, .uni_state = 32,
				  .uni_ascii_data = 40, .uni_compact_data = 56 };
	uint8_t img[192];
	char out[256];
	int64_t len;
	uint32_t state;
	uint16_t *u;
	int err;

	/* compact ASCII "slow-handler" */
	memset(img, 0, sizeof(img));
	len = 12;
	state = 1u << 2 | 1u << 5 | 1u << 6;
	memcpy(img + 16, &len, 8);
	memcpy(img + 32, &state, 4);
	memcpy(img + 40, "slow-handler", 12);
	err = pystr__from_image(img, sizeof(img), &off, out, sizeof(out));
	CHECK(!err && !strcmp(out, "slow-handler"), "ascii: %d '%s'", err, out);
	/* longer than the copy: cut at what was copied, with "..." */
	len = 5000;
	memcpy(img + 16, &len, 8);
	memset(img + 40, 'x', sizeof(img) - 40);
	err = pystr__from_image(img, sizeof(img), &off, out, sizeof(out));
	CHECK(!err && strlen(out) == sizeof(img) - 40 + 3 && !strcmp(out + strlen(out) - 3, "..."),
	      "cut: %d %zu", err, strlen(out));
	/* compact UCS-2 with a lone surrogate: U+FFFD, valid UTF-8 */
	memset(img, 0, sizeof(img));
	len = 3;
	state = 2u << 2 | 1u << 5;
	memcpy(img + 16, &len, 8);
	memcpy(img + 32, &state, 4);
	u = (uint16_t *)(img + 56);
	u[0] = 'a';
	u[1] = 0xdcff;
	u[2] = 0x263a;
	err = pystr__from_image(img, sizeof(img), &off, out, sizeof(out));
	CHECK(!err && !strcmp(out, "a\xef\xbf\xbd\xe2\x98\xba"), "ucs2: %d '%s'", err, out);
	/* not compact (characters elsewhere), bad kind, header past the copy, negative length */
	state = 1u << 2;
	memcpy(img + 32, &state, 4);
	CHECK(pystr__from_image(img, sizeof(img), &off, out, sizeof(out)) == -EINVAL, "legacy");
	state = 3u << 2 | 1u << 5;
	memcpy(img + 32, &state, 4);
	CHECK(pystr__from_image(img, sizeof(img), &off, out, sizeof(out)) == -EINVAL, "kind 3");
	CHECK(pystr__from_image(img, 30, &off, out, sizeof(out)) == -EINVAL, "short header");
	state = 1u << 2 | 1u << 5 | 1u << 6;
	memcpy(img + 32, &state, 4);
	len = -1;
	memcpy(img + 16, &len, 8);
	CHECK(pystr__from_image(img, sizeof(img), &off, out, sizeof(out)) == -EINVAL, "length -1");
	/* a copy that ends inside the header of the data: nothing past it is read */
	len = 4;
	memcpy(img + 16, &len, 8);
	err = pystr__from_image(img, 40, &off, out, sizeof(out));
	CHECK(!err && !strcmp(out, "..."), "no data copied: %d '%s'", err, out);
}

int main(void)
{
	const char *cache = getenv("HANGTRACE_PYCACHE"), *home = getenv("HOME");
	char root[2048], path[4096], rt[4096];

	setvbuf(stdout, NULL, _IOLBF, 0);
	test_image();
	test_str_image();
	if (cache && *cache)
		snprintf(root, sizeof(root), "%s/root/usr", cache);
	else
		snprintf(root, sizeof(root), "%s/.cache/hangtrace/pythons/root/usr", home ? home : "");
	/* Debian's 3.14: _asyncio is a lib-dynload module; 3.15: built in */
	snprintf(path, sizeof(path),
		 "%s/lib/python3.14/lib-dynload/_asyncio.cpython-314-x86_64-linux-gnu.so", root);
	snprintf(rt, sizeof(rt), "%s/bin/python3.14", root);
	test_binary(path, rt, 14, 872);
	snprintf(path, sizeof(path), "%s/bin/python3.15", root);
	test_binary(path, path, 15, 1032);
	return CHECK_SUMMARY();
}
