/*
 * sys.c — see sys.h.  Like shim/real.h: the libc function that comes after
 * us in the lookup order (dlsym RTLD_NEXT), resolved once.  From inside the
 * preload that is libc's own, past our hooks; elsewhere it is the same
 * function a plain call would reach (or a sanitizer's interceptor of it,
 * which keeps its view of fds right).  Where dlsym finds nothing (a static
 * program), the system call itself.
 */
#include "sys.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct {
	int (*close)(int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*recv)(int, void *, size_t, int);
	ssize_t (*send)(int, const void *, size_t, int);
	ssize_t (*sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
	int (*fcntl)(int, int, ...);
	int (*connect)(int, const struct sockaddr *, socklen_t);
	int (*listen)(int, int);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*getsockname)(int, struct sockaddr *, socklen_t *);
	int (*getsockopt)(int, int, int, void *, socklen_t *);
	int (*setsockopt)(int, int, int, const void *, socklen_t);
	int (*epoll_create1)(int);
} libc;
static pthread_once_t resolved = PTHREAD_ONCE_INIT;

/* The system call itself, for a program without dlsym. */
static int k_close(int fd) { return (int)syscall(SYS_close, fd); }
static ssize_t k_read(int fd, void *b, size_t n) { return syscall(SYS_read, fd, b, n); }
static ssize_t k_write(int fd, const void *b, size_t n) { return syscall(SYS_write, fd, b, n); }
static ssize_t k_recv(int fd, void *b, size_t n, int fl)
{
	return syscall(SYS_recvfrom, fd, b, n, fl, NULL, NULL);
}
static ssize_t k_send(int fd, const void *b, size_t n, int fl)
{
	return syscall(SYS_sendto, fd, b, n, fl, NULL, 0);
}
static ssize_t k_sendto(int fd, const void *b, size_t n, int fl, const struct sockaddr *to,
			socklen_t len)
{
	return syscall(SYS_sendto, fd, b, n, fl, to, len);
}
static int k_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	long arg = va_arg(ap, long);
	va_end(ap);
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}
static int k_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, sa, len);
}
static int k_listen(int fd, int backlog) { return (int)syscall(SYS_listen, fd, backlog); }
static int k_accept4(int fd, struct sockaddr *sa, socklen_t *len, int fl)
{
	return (int)syscall(SYS_accept4, fd, sa, len, fl);
}
static int k_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	return (int)syscall(SYS_getsockname, fd, sa, len);
}
static int k_getsockopt(int fd, int lvl, int opt, void *v, socklen_t *len)
{
	return (int)syscall(SYS_getsockopt, fd, lvl, opt, v, len);
}
static int k_setsockopt(int fd, int lvl, int opt, const void *v, socklen_t len)
{
	return (int)syscall(SYS_setsockopt, fd, lvl, opt, v, len);
}
static int k_epoll_create1(int fl) { return (int)syscall(SYS_epoll_create1, fl); }

#define RESOLVE(name)                                            \
	do {                                                     \
		void *f = dlsym(RTLD_NEXT, #name);               \
		*(void **)&libc.name = f ? f : (void *)k_##name; \
	} while (0)

static void resolve(void)
{
	RESOLVE(close);
	RESOLVE(read);
	RESOLVE(write);
	RESOLVE(recv);
	RESOLVE(send);
	RESOLVE(sendto);
	RESOLVE(fcntl);
	RESOLVE(connect);
	RESOLVE(listen);
	RESOLVE(accept4);
	RESOLVE(getsockname);
	RESOLVE(getsockopt);
	RESOLVE(setsockopt);
	RESOLVE(epoll_create1);
}

#define LIBC(name) (pthread_once(&resolved, resolve), libc.name)

int sys_close(int fd)
{
	return LIBC(close)(fd);
}

ssize_t sys_read(int fd, void *buf, size_t n)
{
	return LIBC(read)(fd, buf, n);
}

ssize_t sys_write(int fd, const void *buf, size_t n)
{
	return LIBC(write)(fd, buf, n);
}

ssize_t sys_recv(int fd, void *buf, size_t n, int flags)
{
	return LIBC(recv)(fd, buf, n, flags);
}

ssize_t sys_send(int fd, const void *buf, size_t n, int flags)
{
	return LIBC(send)(fd, buf, n, flags);
}

ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		   socklen_t len)
{
	return LIBC(sendto)(fd, buf, n, flags, to, len);
}

int sys_fcntl(int fd, int cmd, long arg)
{
	return LIBC(fcntl)(fd, cmd, arg);
}

int sys_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return LIBC(connect)(fd, sa, len);
}

int sys_listen(int fd, int backlog)
{
	return LIBC(listen)(fd, backlog);
}

int sys_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	return LIBC(accept4)(fd, sa, len, flags);
}

int sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	return LIBC(getsockname)(fd, sa, len);
}

int sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	return LIBC(getsockopt)(fd, level, opt, val, len);
}

int sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	return LIBC(setsockopt)(fd, level, opt, val, len);
}

int sys_epoll_create1(int flags)
{
	return LIBC(epoll_create1)(flags);
}
