/*
 * real.c — lazy dlsym(RTLD_NEXT) table of the libc functions we hook.
 *
 * Resolution happens on first call, never in a constructor: a hook may run
 * before our constructors (another library's constructor calling connect)
 * and dlsym must not run while the loader holds its lock for us.  The
 * pointer is published with a relaxed atomic store; racing threads resolve
 * the same value, so the race is benign.
 */
#include "real.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *resolve(void **slot, const char *name)
{
	void *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

	if (p)
		return p;
	p = dlsym(RTLD_NEXT, name);
	if (!p) {
		/* Without the real function nothing sensible can follow. */
		static const char msg[] = "srmudp: cannot resolve a libc function; aborting\n";
		ssize_t w = syscall(SYS_write, 2, msg, sizeof(msg) - 1);
		(void)w;
		abort();
	}
	__atomic_store_n(slot, p, __ATOMIC_RELEASE);
	return p;
}

#define REAL(ret, name, params, args)                                      \
	ret real_##name params                                             \
	{                                                                  \
		static void *slot;                                         \
		ret(*fn) params = (ret(*) params)resolve(&slot, #name);     \
		return fn args;                                            \
	}

REAL(int, connect, (int fd, const struct sockaddr *sa, socklen_t len), (fd, sa, len))
REAL(int, listen, (int fd, int backlog), (fd, backlog))
REAL(int, accept, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, accept4, (int fd, struct sockaddr *sa, socklen_t *len, int flags), (fd, sa, len, flags))
REAL(int, getsockname, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, getpeername, (int fd, struct sockaddr *sa, socklen_t *len), (fd, sa, len))
REAL(int, getsockopt, (int fd, int level, int opt, void *val, socklen_t *len),
     (fd, level, opt, val, len))
REAL(int, setsockopt, (int fd, int level, int opt, const void *val, socklen_t len),
     (fd, level, opt, val, len))
REAL(int, close, (int fd), (fd))
REAL(int, dup, (int fd), (fd))
REAL(int, dup2, (int fd, int fd2), (fd, fd2))
REAL(int, dup3, (int fd, int fd2, int flags), (fd, fd2, flags))
REAL(int, fcntl, (int fd, int cmd, void *arg), (fd, cmd, arg))
REAL(int, getaddrinfo,
     (const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res),
     (node, service, hints, res))
REAL(int, getnameinfo,
     (const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv,
      socklen_t servlen, int flags),
     (sa, salen, host, hostlen, serv, servlen, flags))
REAL(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n))
REAL(ssize_t, readv, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt))
REAL(ssize_t, recv, (int fd, void *buf, size_t n, int flags), (fd, buf, n, flags))
REAL(ssize_t, recvfrom,
     (int fd, void *buf, size_t n, int flags, struct sockaddr *sa, socklen_t *len),
     (fd, buf, n, flags, sa, len))
REAL(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags))
REAL(ssize_t, write, (int fd, const void *buf, size_t n), (fd, buf, n))
REAL(ssize_t, writev, (int fd, const struct iovec *iov, int cnt), (fd, iov, cnt))
REAL(ssize_t, send, (int fd, const void *buf, size_t n, int flags), (fd, buf, n, flags))
REAL(ssize_t, sendto,
     (int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa, socklen_t len),
     (fd, buf, n, flags, sa, len))
REAL(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags))

/* close_range appeared in glibc 2.34; fall back to the system call so the
 * shim also loads on older libcs. */
int real_close_range(unsigned first, unsigned last, int flags)
{
	static void *slot;
	int (*fn)(unsigned, unsigned, int) = __atomic_load_n(&slot, __ATOMIC_ACQUIRE);

	if (!fn) {
		fn = (int (*)(unsigned, unsigned, int))dlsym(RTLD_NEXT, "close_range");
		if (!fn)
			return (int)syscall(SYS_close_range, first, last, flags);
		__atomic_store_n(&slot, (void *)fn, __ATOMIC_RELEASE);
	}
	return fn(first, last, flags);
}

void *real_symbol(const char *name)
{
	void *slot = NULL;

	return resolve(&slot, name);
}
