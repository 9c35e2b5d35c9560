/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The unit tests' way to start a live interpreter they then read: fork and
 * exec with its stdin and stdout on pipes.  Used by test_pyproc, test_pysym
 * and test_pystr; the caller ends the child by pid (SIGKILL, waitpid).
 */
#ifndef HT_TEST_SPAWN_H
#define HT_TEST_SPAWN_H

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

/*
 * spawn_piped - run @argv (argv[0] a path) with LD_LIBRARY_PATH=@ld_path when
 * not NULL and no PYTHONPATH; *@pid is fork()'s result, *@in_fd its stdin and
 * *@out_fd its stdout (ours, close-on-exec).  0 or -errno.
 */
static inline int spawn_piped(char *const argv[], const char *ld_path, pid_t *pid, int *in_fd,
			      int *out_fd)
{
	int in[2], out[2];

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
		return -errno;
	*pid = fork();
	if (*pid < 0)
		return -errno;
	if (*pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if (ld_path)
			setenv("LD_LIBRARY_PATH", ld_path, 1);
		unsetenv("PYTHONPATH");
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	*in_fd = in[1];
	*out_fd = out[0];
	return 0;
}

#endif
