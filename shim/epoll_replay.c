/*
 * epoll_replay.c — see epoll_replay.h.  Only designated connects pay for
 * this scan; it is bounded by the number of open fds.
 */
#include "epoll_replay.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "real.h"

static int is_epoll(int dirfd_, const char *name)
{
	char link[64];
	ssize_t n = readlinkat(dirfd_, name, link, sizeof(link) - 1);

	if (n <= 0)
		return 0;
	link[n] = 0;
	return !strcmp(link, "anon_inode:[eventpoll]");
}

/* Lines look like: "tfd:        5 events:       19 data: 5  pos:0 ino:2f sdev:8" */
static int scan_fdinfo(int epfd, int fd, ino_t ino, struct epoll_reg *regs, int n, int max)
{
	char path[64], line[256];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", epfd);
	f = fopen(path, "re");
	if (!f)
		return n;
	while (n < max && fgets(line, sizeof(line), f)) {
		int tfd;
		unsigned events;
		unsigned long long data, tino;
		char *p;

		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) != 3 ||
		    tfd != fd)
			continue;
		p = strstr(line, "ino:");
		if (!p || sscanf(p, "ino:%llx", &tino) != 1 || tino != (unsigned long long)ino)
			continue;
		regs[n].epfd = epfd;
		regs[n].events = events;
		regs[n].data = data;
		n++;
	}
	fclose(f);
	return n;
}

int epoll_replay_collect(int fd, ino_t ino, struct epoll_reg *regs, int max)
{
	int saved = errno, n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	if (!d)
		return 0;
	while (n < max && (de = readdir(d))) {
		int epfd = atoi(de->d_name);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || epfd == dirfd(d) || epfd == fd)
			continue;
		if (is_epoll(dirfd(d), de->d_name))
			n = scan_fdinfo(epfd, fd, ino, regs, n, max);
	}
	closedir(d);
	errno = saved;
	return n;
}

void epoll_replay_apply(int fd, const struct epoll_reg *regs, int n)
{
	int saved = errno;

	for (int i = 0; i < n; i++) {
		struct epoll_event ev = { .events = regs[i].events, .data.u64 = regs[i].data };

		if (epoll_ctl(regs[i].epfd, EPOLL_CTL_ADD, fd, &ev) != 0 && errno == EEXIST)
			epoll_ctl(regs[i].epfd, EPOLL_CTL_MOD, fd, &ev);
	}
	errno = saved;
}
