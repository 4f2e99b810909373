/*
 * sys.c — see sys.h.  syscall(2) reaches the kernel without passing
 * through any symbol a preload can interpose.
 */
#include "sys.h"

#include <sys/syscall.h>
#include <unistd.h>

int sys_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

ssize_t sys_read(int fd, void *buf, size_t n)
{
	return syscall(SYS_read, fd, buf, n);
}

ssize_t sys_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

ssize_t sys_recv(int fd, void *buf, size_t n, int flags)
{
	return syscall(SYS_recvfrom, fd, buf, n, flags, NULL, NULL);
}

ssize_t sys_send(int fd, const void *buf, size_t n, int flags)
{
	return syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		   socklen_t len)
{
	return syscall(SYS_sendto, fd, buf, n, flags, to, len);
}

int sys_fcntl(int fd, int cmd, long arg)
{
	return (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int sys_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	return (int)syscall(SYS_connect, fd, sa, len);
}

int sys_listen(int fd, int backlog)
{
	return (int)syscall(SYS_listen, fd, backlog);
}

int sys_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	return (int)syscall(SYS_accept4, fd, sa, len, flags);
}

int sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	return (int)syscall(SYS_getsockname, fd, sa, len);
}

int sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len)
{
	return (int)syscall(SYS_getsockopt, fd, level, opt, val, len);
}

int sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len)
{
	return (int)syscall(SYS_setsockopt, fd, level, opt, val, len);
}

int sys_epoll_create1(int flags)
{
	return (int)syscall(SYS_epoll_create1, flags);
}
