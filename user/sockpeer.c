// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hangtrace.h"
#include "sockpeer.h"

#define TCP_LISTEN 10

static void fmt_addr(const char *hex, unsigned int port, int v6, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned char b[16];
	unsigned int w;
	int i;

	if (!v6) {
		if (sscanf(hex, "%8x", &w) == 1) {
			memcpy(b, &w, 4);	/* /proc prints the address in host order */
			inet_ntop(AF_INET, b, ip, sizeof(ip));
		}
		snprintf(out, outsz, "%s:%u", ip, port);
		return;
	}
	for (i = 0; i < 4; i++) {
		if (sscanf(hex + 8 * i, "%8x", &w) != 1)
			break;
		memcpy(b + 4 * i, &w, 4);
	}
	if (i == 4)
		inet_ntop(AF_INET6, b, ip, sizeof(ip));
	/* an IPv4-mapped address reads better as IPv4 */
	if (!strncmp(ip, "::ffff:", 7) && strchr(ip + 7, '.'))
		snprintf(out, outsz, "%s:%u", ip + 7, port);
	else
		snprintf(out, outsz, "[%s]:%u", ip, port);
}

/* Look for socket @inode in /proc/PID/net/@table. */
static int inet_lookup(pid_t pid, const char *table, int v6, unsigned long inode, char *out,
		       size_t outsz)
{
	char path[64], line[512], laddr[40], raddr[40];
	unsigned int lport, rport, state;
	unsigned long ino;
	FILE *f;
	int found = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/net/%s", (int)pid, table);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*d: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x %*s %*s %*s %*s %*s %lu",
			   laddr, &lport, raddr, &rport, &state, &ino) != 6 ||
		    ino != inode)
			continue;
		if (state == TCP_LISTEN && !strncmp(table, "tcp", 3)) {
			char a[80];

			fmt_addr(laddr, lport, v6, a, sizeof(a));
			snprintf(out, outsz, "listening %s", a);
		} else {
			fmt_addr(raddr, rport, v6, out, outsz);
		}
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

static int unix_lookup(pid_t pid, unsigned long inode, char *out, size_t outsz)
{
	char path[64], line[1024], name[900];
	unsigned long ino;
	FILE *f;
	int n, found = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/net/unix", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		name[0] = 0;
		n = sscanf(line, "%*s %*s %*s %*s %*s %*s %lu %899s", &ino, name);
		if (n < 1 || ino != inode)
			continue;
		snprintf(out, outsz, "unix:%s", name[0] ? name : "(unnamed)");
		found = 0;
		break;
	}
	fclose(f);
	return found;
}

int fd_describe(pid_t pid, int fd, char *out, size_t outsz)
{
	static const struct {
		const char *table;
		int v6;
	} tables[] = { { "tcp", 0 }, { "tcp6", 1 }, { "udp", 0 }, { "udp6", 1 } };
	char path[64], target[512];
	unsigned long inode;
	ssize_t n;
	size_t i;

	if (fd < 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return -errno;
	target[n] = 0;
	if (sscanf(target, "socket:[%lu]", &inode) == 1) {
		for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
			if (!inet_lookup(pid, tables[i].table, tables[i].v6, inode, out, outsz))
				return 0;
		if (!unix_lookup(pid, inode, out, outsz))
			return 0;
		snprintf(out, outsz, "socket");
		return 0;
	}
	if (!strncmp(target, "pipe:", 5)) {
		snprintf(out, outsz, "pipe");
		return 0;
	}
	snprintf(out, outsz, "%s", target);
	return 0;
}

int sockaddr_describe(const struct ht_sockaddr *sa, char *out, size_t outsz)
{
	char ip[INET6_ADDRSTRLEN];
	const __u8 *addr = sa->rport ? sa->raddr : sa->laddr;
	unsigned int port = sa->rport ? sa->rport : sa->lport;
	const char *pfx = sa->rport ? "" : "listening ";

	if (sa->family == AF_INET) {
		inet_ntop(AF_INET, addr, ip, sizeof(ip));
		snprintf(out, outsz, "%s%s:%u", pfx, ip, port);
		return 0;
	}
	if (sa->family == AF_INET6) {
		inet_ntop(AF_INET6, addr, ip, sizeof(ip));
		if (!strncmp(ip, "::ffff:", 7) && strchr(ip + 7, '.'))
			snprintf(out, outsz, "%s%s:%u", pfx, ip + 7, port);
		else
			snprintf(out, outsz, "%s[%s]:%u", pfx, ip, port);
		return 0;
	}
	return -ENOENT;
}
