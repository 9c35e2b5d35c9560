// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "hangtrace.h"
#include "hangtrace.skel.h"
#include "log.h"
#include "taskiter.h"

struct taskiter {
	struct hangtrace_bpf *skel;
	struct bpf_link *link;
};

/*
 * Only dump_task is loaded; the other programs' maps are still created (the
 * object declares them), so they are shrunk to the minimum: the threads and
 * aggregation maps alone preallocate megabytes.
 */
static void shrink_maps(struct bpf_object *obj)
{
	struct bpf_map *map;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue;
		switch (bpf_map__type(map)) {
		case BPF_MAP_TYPE_RINGBUF:
		case BPF_MAP_TYPE_USER_RINGBUF:
			bpf_map__set_max_entries(map, getpagesize());
			break;
		case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
			break;
		default:
			bpf_map__set_max_entries(map, 1);
			break;
		}
	}
}

struct taskiter *taskiter__new(void)
{
	struct bpf_program *prog;
	struct taskiter *it;
	int err;

	it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;

	/* Open, keep the iterator alone, load */
	it->skel = hangtrace_bpf__open();
	if (!it->skel) {
		err = -errno;
		p_err("failed to open the BPF object: %s", strerror(-err));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, it->skel->obj)
		bpf_program__set_autoload(prog, prog == it->skel->progs.dump_task);
	shrink_maps(it->skel->obj);
	err = hangtrace_bpf__load(it->skel);
	if (err) {
		p_err("failed to load the BPF task iterator (%s); run with -vv for the verifier log",
		      strerror(-err));
		goto cleanup;
	}
	it->link = bpf_program__attach_iter(it->skel->progs.dump_task, NULL);
	if (!it->link) {
		err = -errno;
		p_err("failed to attach the BPF task iterator: %s", strerror(-err));
		goto cleanup;
	}
	return it;

cleanup:
	taskiter__free(it);
	errno = -err;
	return NULL;
}

int taskiter__collect(struct bpf_link *link, struct ht_task_info **out, size_t *n)
{
	struct ht_task_info *arr = NULL, *tmp;
	size_t cap = 0, cnt = 0;
	int fd, err = 0;
	ssize_t got;

	*out = NULL;
	*n = 0;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		return -errno;
	for (;;) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			tmp = realloc(arr, cap * sizeof(*arr));
			if (!tmp) {
				err = -ENOMEM;
				goto cleanup;
			}
			arr = tmp;
		}
		got = read(fd, &arr[cnt], sizeof(*arr));
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			err = -errno;
			goto cleanup;
		}
		if (got == 0)
			break;
		if (got != sizeof(*arr)) {
			err = -EIO;
			goto cleanup;
		}
		cnt++;
	}
	*out = arr;
	*n = cnt;
	arr = NULL;
cleanup:
	free(arr);
	close(fd);
	return err;
}

int taskiter__read(struct taskiter *it, pid_t pid, struct ht_task_info **out, size_t *n)
{
	it->skel->bss->iter_tgid = pid;
	return taskiter__collect(it->link, out, n);
}

void taskiter__free(struct taskiter *it)
{
	if (!it)
		return;
	bpf_link__destroy(it->link);
	hangtrace_bpf__destroy(it->skel);
	free(it);
}
