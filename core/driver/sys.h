/*
 * sys.h — the driver's own system calls, past the preload's hooks.
 *
 * Inside the preload (libsrmudp.so) the engine shares a library with the
 * hooks: a plain close() or send() from here would land in our own
 * exported close() or send() and be taken for the application's.  Every
 * call the preload hooks goes through sys_* instead; calls it does not
 * hook (socket, bind, sendmmsg, epoll_ctl...) stay plain.  Outside the
 * preload they are the plain libc calls.
 */
#ifndef SRMUDP_SYS_H
#define SRMUDP_SYS_H

#include <sys/socket.h>
#include <sys/types.h>

int sys_close(int fd);
ssize_t sys_read(int fd, void *buf, size_t n);
ssize_t sys_write(int fd, const void *buf, size_t n);
ssize_t sys_recv(int fd, void *buf, size_t n, int flags);
ssize_t sys_send(int fd, const void *buf, size_t n, int flags);
ssize_t sys_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		   socklen_t len);
int sys_fcntl(int fd, int cmd, long arg);
int sys_connect(int fd, const struct sockaddr *sa, socklen_t len);
int sys_listen(int fd, int backlog);
int sys_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int sys_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
int sys_getsockopt(int fd, int level, int opt, void *val, socklen_t *len);
int sys_setsockopt(int fd, int level, int opt, const void *val, socklen_t len);
int sys_epoll_create1(int flags);

#endif
