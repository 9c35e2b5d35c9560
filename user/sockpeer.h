/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* What a file descriptor of another process is: a socket's peer, a pipe, a file. */
#ifndef HT_SOCKPEER_H
#define HT_SOCKPEER_H

#include <stddef.h>
#include <sys/types.h>

/*
 * fd_describe - describe fd @fd of @pid into @out: "127.0.0.1:5432" (TCP/UDP
 * peer; "listening 0.0.0.0:80" for a listener), "unix:/run/x.sock",
 * "pipe", or the file path.  0, or -errno when the fd is gone.
 */
int fd_describe(pid_t pid, int fd, char *out, size_t outsz);

struct ht_sockaddr;

/*
 * sockaddr_describe - "127.0.0.1:5432" for a connected socket, "listening
 * 0.0.0.0:80" for one without a peer; -ENOENT when @sa holds no address.
 */
int sockaddr_describe(const struct ht_sockaddr *sa, char *out, size_t outsz);

#endif
