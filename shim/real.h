/*
 * real.h — the real libc functions behind every hook.
 *
 * This is the only place that resolves them (lazily, with
 * dlsym(RTLD_NEXT, ...)), so the rest of the shim never calls a hooked
 * name by accident and recurses.  Each real_<name> has the libc signature.
 */
#ifndef SHIM_REAL_H
#define SHIM_REAL_H

#include <netdb.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The exported hooks: default visibility, everything else stays hidden. */
#define SHIM_EXPORT __attribute__((visibility("default")))

int real_connect(int fd, const struct sockaddr *sa, socklen_t len);
int real_listen(int fd, int backlog);
int real_accept(int fd, struct sockaddr *sa, socklen_t *len);
int real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int real_getsockname(int fd, struct sockaddr *sa, socklen_t *len);
int real_getpeername(int fd, struct sockaddr *sa, socklen_t *len);
int real_getsockopt(int fd, int level, int opt, void *val, socklen_t *len);
int real_setsockopt(int fd, int level, int opt, const void *val, socklen_t len);
int real_close(int fd);
int real_close_range(unsigned first, unsigned last, int flags);
int real_dup(int fd);
int real_dup2(int fd, int fd2);
int real_dup3(int fd, int fd2, int flags);
int real_fcntl(int fd, int cmd, void *arg);
int real_getaddrinfo(const char *node, const char *service,
		     const struct addrinfo *hints, struct addrinfo **res);
int real_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
		     socklen_t hostlen, char *serv, socklen_t servlen, int flags);
ssize_t real_read(int fd, void *buf, size_t n);
ssize_t real_readv(int fd, const struct iovec *iov, int cnt);
ssize_t real_recv(int fd, void *buf, size_t n, int flags);
ssize_t real_recvfrom(int fd, void *buf, size_t n, int flags,
		      struct sockaddr *sa, socklen_t *len);
ssize_t real_recvmsg(int fd, struct msghdr *msg, int flags);
ssize_t real_write(int fd, const void *buf, size_t n);
ssize_t real_writev(int fd, const struct iovec *iov, int cnt);
ssize_t real_send(int fd, const void *buf, size_t n, int flags);
ssize_t real_sendto(int fd, const void *buf, size_t n, int flags,
		    const struct sockaddr *sa, socklen_t len);
ssize_t real_sendmsg(int fd, const struct msghdr *msg, int flags);

/* Any other real function, for hooks called too rarely to deserve a
 * wrapper here (the caller caches the pointer). Never NULL. */
void *real_symbol(const char *name);

#endif
