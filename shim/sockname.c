/*
 * sockname.c — getsockname/getpeername: a stream answers as the TCP socket
 * it replaced; an accepted connection from a peer names the peer's
 * virtual address.
 */
#include <errno.h>

#include "real.h"
#include "state.h"
#include "stream.h"
#include "vaddr.h"

SHIM_EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct shim_sock *s;
	int saved = errno, err = 0;

	if (!state_peek(fd) || !(s = state_get(fd)))
		return real_getpeername(fd, sa, len);
	if (s->kind == SHIM_LISTENER) {
		state_put(s);
		return real_getpeername(fd, sa, len);
	}
	stream_refresh(s, fd);
	if (!sa || !len)
		err = EFAULT;
	else if (s->kind == SHIM_STREAM && s->conn != CONN_OPEN && s->conn != CONN_CONNECTED)
		err = ENOTCONN;
	else
		vaddr_copy_out(&s->remote, s->remote_len, sa, len);
	state_put(s);
	errno = err ? err : saved;
	return err ? -1 : 0;
}

SHIM_EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
	struct shim_sock *s;
	int saved = errno;

	if (!state_peek(fd) || !(s = state_get(fd)))
		return real_getsockname(fd, sa, len);
	if (s->kind != SHIM_STREAM) {
		state_put(s);
		return real_getsockname(fd, sa, len);
	}
	if (!sa || !len) {
		state_put(s);
		errno = EFAULT;
		return -1;
	}
	vaddr_copy_out(&s->local, s->local_len, sa, len);
	state_put(s);
	errno = saved;
	return 0;
}
