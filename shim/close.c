/*
 * close.c — close, close_range, closefrom, dup, dup2, dup3 and fcntl's
 * F_DUPFD: keep the fd table (and the list of epoll fds, epoll_replay.c)
 * in step, apply SO_LINGER {1,0} aborts, and
 * never let the application close or overwrite an fd of the engine
 * (ssh's closefrom(3) sweeps everything above stderr).
 *
 * An engine fd looks "not open" to the application: close gives EBADF,
 * dup2/dup3 onto it give EBUSY (Linux's answer for a busy fd slot), and
 * close_range/closefrom skip it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine_glue.h"
#include "epoll_replay.h"
#include "listen.h"
#include "real.h"
#include "state.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* The last fd naming s is gone (the caller holds the table's reference). */
static void release(struct shim_sock *s)
{
	if (state_last(s)) {
		if (s->kind == SHIM_STREAM && s->linger_abort && s->engine)
			srm_stream_abort(s->engine, s->stream);
		else if (s->kind == SHIM_LISTENER)
			listen_release(s);
	}
	state_put(s);
}

static void forget(int fd)
{
	struct shim_sock *s = state_take(fd);

	if (s)
		release(s);
}

SHIM_EXPORT int close(int fd)
{
	int saved = errno;

	if (state_peek(fd)) {
		forget(fd);
		errno = saved;
	} else if (glue_fd_is_engine(fd)) {
		errno = EBADF;
		return -1;
	}
	epoll_replay_closed((unsigned)fd, (unsigned)fd); /* before the number is free */
	return real_close(fd);
}

/* fd2 now names what fd names. */
static void share(int fd, int fd2)
{
	struct shim_sock *s;

	if (state_peek(fd) && (s = state_get(fd))) {
		state_set(fd2, s);
		state_put(s);
	}
}

SHIM_EXPORT int dup(int fd)
{
	int r = real_dup(fd), saved = errno;

	if (r >= 0) {
		share(fd, r);
		epoll_replay_duped(fd, r);
	}
	errno = saved;
	return r;
}

static int dup_onto(int fd, int fd2, int flags, int three)
{
	struct shim_sock *old = NULL;
	int r, saved = errno;

	if (fd == fd2 || fd2 < 0)
		return three ? real_dup3(fd, fd2, flags) : real_dup2(fd, fd2);
	if (glue_fd_is_engine(fd2)) {
		errno = EBUSY;
		return -1;
	}
	if (state_peek(fd2))
		old = state_take(fd2); /* before fd2's identity changes */
	r = three ? real_dup3(fd, fd2, flags) : real_dup2(fd, fd2);
	if (r < 0) {
		saved = errno;
		if (old) { /* fd2 untouched: it still names old */
			state_set(fd2, old);
			state_put(old);
		}
		errno = saved;
		return r;
	}
	if (old)
		release(old);
	share(fd, fd2);
	epoll_replay_duped(fd, fd2);
	errno = saved;
	return r;
}

SHIM_EXPORT int dup2(int fd, int fd2)
{
	return dup_onto(fd, fd2, 0, 0);
}

SHIM_EXPORT int dup3(int fd, int fd2, int flags)
{
	return dup_onto(fd, fd2, flags, 1);
}

static int fcntl_common(int fd, int cmd, void *arg)
{
	int r = real_fcntl(fd, cmd, arg), saved = errno;

	if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) {
		share(fd, r);
		epoll_replay_duped(fd, r);
		errno = saved;
	}
	return r;
}

SHIM_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *); /* what glibc's own fcntl does */
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

SHIM_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(fd, cmd, arg);
}

/* ---- close_range / closefrom ---- */

struct fd_list {
	int *fd;
	size_t n, cap;
};

static void list_add(struct fd_list *l, int fd)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		int *p = realloc(l->fd, cap * sizeof(int));

		if (!p)
			return;
		l->fd = p;
		l->cap = cap;
	}
	l->fd[l->n++] = fd;
}

static void collect_ours(int fd, void *arg)
{
	list_add(arg, fd);
}

static int cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Engine fds inside [first, last], sorted. */
static void collect_engine(unsigned first, unsigned last, struct fd_list *l)
{
	DIR *d;
	struct dirent *de;

	if (!glue_engine_if_running() || !(d = opendir("/proc/self/fd")))
		return;
	while ((de = readdir(d))) {
		long fd = strtol(de->d_name, NULL, 10);

		if (de->d_name[0] < '0' || de->d_name[0] > '9' || fd == dirfd(d))
			continue;
		if ((unsigned long)fd >= first && (unsigned long)fd <= last && glue_fd_is_engine((int)fd))
			list_add(l, (int)fd);
	}
	closedir(d);
	qsort(l->fd, l->n, sizeof(int), cmp_int);
}

SHIM_EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	struct fd_list ours = { 0 }, eng = { 0 };
	int saved = errno, r = 0;
	unsigned lo = first;

	if ((flags & CLOSE_RANGE_CLOEXEC) || first > last)
		return real_close_range(first, last, flags); /* engine fds are CLOEXEC already */
	epoll_replay_closed(first, last);
	state_each(first, last, collect_ours, &ours);
	for (size_t i = 0; i < ours.n; i++)
		forget(ours.fd[i]);
	free(ours.fd);
	collect_engine(first, last, &eng);
	for (size_t i = 0; i < eng.n && r == 0; i++) {
		unsigned fd = (unsigned)eng.fd[i];

		if (fd > lo)
			r = real_close_range(lo, fd - 1, flags);
		lo = fd + 1;
	}
	if (r == 0 && (eng.n == 0 || (unsigned)eng.fd[eng.n - 1] < last))
		r = real_close_range(lo, last, flags);
	free(eng.fd);
	if (r == 0)
		errno = saved;
	return r;
}

SHIM_EXPORT void closefrom(int lowfd)
{
	int saved = errno;

	if (lowfd < 0)
		lowfd = 0;
	close_range((unsigned)lowfd, ~0U, 0);
	errno = saved;
}
