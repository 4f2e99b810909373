/*
 * epoll_replay.c — see epoll_replay.h.  Only designated connects pay for
 * the scan, and only of the epoll fds the process has.
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
#include "state.h"

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

/* The application's epoll fds, kept by the create, close and dup hooks
 * under the state lock (which fork handles); a fork child inherits the
 * list with the fds.  With more than EPOLL_TRACK_MAX at once every fd is
 * scanned, as without the list. */
#define EPOLL_TRACK_MAX 64
static int tracked[EPOLL_TRACK_MAX];
static int ntracked; /* read without the lock: the hooks' fast test */
static int overflow;

static int find_locked(int fd)
{
	for (int i = 0; i < ntracked; i++)
		if (tracked[i] == fd)
			return i;
	return -1;
}

static void add_locked(int fd)
{
	if (find_locked(fd) >= 0)
		return;
	if (ntracked == EPOLL_TRACK_MAX) {
		overflow = 1;
		return;
	}
	tracked[ntracked] = fd;
	__atomic_store_n(&ntracked, ntracked + 1, __ATOMIC_RELEASE);
}

static void remove_locked(int fd)
{
	int i = find_locked(fd);

	if (i < 0)
		return;
	tracked[i] = tracked[ntracked - 1];
	__atomic_store_n(&ntracked, ntracked - 1, __ATOMIC_RELEASE);
}

static int any_tracked(void)
{
	return __atomic_load_n(&ntracked, __ATOMIC_ACQUIRE) > 0;
}

void epoll_replay_created(int epfd)
{
	state_lock();
	add_locked(epfd);
	state_unlock();
}

void epoll_replay_closed(unsigned first, unsigned last)
{
	if (!any_tracked())
		return;
	state_lock();
	for (int i = ntracked - 1; i >= 0; i--)
		if ((unsigned)tracked[i] >= first && (unsigned)tracked[i] <= last)
			remove_locked(tracked[i]);
	state_unlock();
}

void epoll_replay_duped(int fd, int fd2)
{
	if (!any_tracked())
		return;
	state_lock();
	remove_locked(fd2);
	if (find_locked(fd) >= 0)
		add_locked(fd2);
	state_unlock();
}

/* Every epoll fd of the process, found through /proc/self/fd. */
static int collect_all(int fd, ino_t ino, struct epoll_reg *regs, int max)
{
	int n = 0;
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
	return n;
}

int epoll_replay_collect(int fd, ino_t ino, struct epoll_reg *regs, int max)
{
	int saved = errno, n = 0, all, count, fds[EPOLL_TRACK_MAX];

	if (!any_tracked() && !__atomic_load_n(&overflow, __ATOMIC_RELAXED))
		return 0;
	state_lock();
	all = overflow;
	count = ntracked;
	memcpy(fds, tracked, sizeof(int) * (size_t)count);
	state_unlock();
	if (all)
		n = collect_all(fd, ino, regs, max);
	else
		for (int i = 0; i < count && n < max; i++)
			n = scan_fdinfo(fds[i], fd, ino, regs, n, max);
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
