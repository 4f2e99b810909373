/*
 * accept.c — accept()/accept4() on a listener the engine forwards to: a
 * connection that carries a peer's stream is named by the peer's virtual
 * address, in the listener's family (IPv4, IPv6, or IPv4-mapped IPv6 as
 * the kernel would have given).  The stream is then claimed from the
 * engine (srm_forwarded_claim): its socket pair takes the accepted TCP
 * socket's place, as a connect()ed stream's does, and the loopback TCP
 * connection, which only rang the bell, goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine_glue.h"
#include "real.h"
#include "state.h"
#include "vaddr.h"

/* Put the stream's socket pair in cfd's place.  Returns 0, or -1 when the
 * stream stays on the TCP connection (an older engine's listener, bytes
 * still on their way). */
static int claim(srm_engine *e, int cfd, const struct sockaddr_storage *src, socklen_t srclen,
		 int flags, struct shim_sock *s)
{
	uint64_t handle;
	int pfd = srm_forwarded_claim(e, (const struct sockaddr *)src, srclen, cfd, &handle);

	if (pfd < 0)
		return -1;
	s->local_len = sizeof(s->local);
	real_getsockname(cfd, (struct sockaddr *)&s->local, &s->local_len);
	if ((flags & SOCK_NONBLOCK) &&
	    real_fcntl(pfd, F_SETFL, (void *)(long)(real_fcntl(pfd, F_GETFL, NULL) | O_NONBLOCK)) != 0) {
		srm_stream_abort(e, handle);
		real_close(pfd);
		return -1;
	}
	if (real_dup3(pfd, cfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0) < 0) {
		srm_stream_abort(e, handle);
		real_close(pfd);
		return -1;
	}
	real_close(pfd);
	s->kind = SHIM_STREAM;
	s->accepted = 1;
	s->engine = e;
	s->ends = srm_engine_ends(e);
	s->engine_pid = getpid();
	s->conn = CONN_CONNECTED;
	s->stream = handle;
	state_rebind(s, cfd);
	return 0;
}

static void rename_peer(int cfd, struct sockaddr_storage *src, socklen_t *srclen, int flags)
{
	srm_engine *e = glue_engine_if_running();
	struct shim_sock *s;
	int peer, idx = -1, mapped = 0;
	uint16_t port;

	if (!e)
		return;
	peer = srm_forwarded_peer(e, (struct sockaddr *)src, *srclen);
	if (peer < 0 && src->ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((struct sockaddr_in6 *)src)->sin6_addr)) {
		/* A dual-stack listener: the engine connected from IPv4. */
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)src;
		struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = a6->sin6_port };

		memcpy(&a4.sin_addr, &a6->sin6_addr.s6_addr[12], 4);
		peer = srm_forwarded_peer(e, (struct sockaddr *)&a4, sizeof(a4));
	}
	if (peer < 0)
		return;
	/* Engine peer index -> configured index (the same in practice; the
	 * name is what both agree on). */
	{
		struct srm_peer_config pc;

		if (srm_peer_get(e, peer, &pc) == 0)
			idx = glue_peer_index(pc.name);
	}
	if (idx < 0)
		return;
	s = state_new(SHIM_ACCEPTED, cfd);
	if (!s)
		return;
	claim(e, cfd, src, *srclen, flags, s); /* else the TCP connection carries it */
	s->family = src->ss_family;
	s->peer = peer;
	if (src->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)src;

		mapped = IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr);
		port = ntohs(a6->sin6_port);
	} else {
		port = ntohs(((const struct sockaddr_in *)src)->sin_port);
	}
	s->remote_len = vaddr_make(src->ss_family, mapped, idx, port, &s->remote);
	memcpy(src, &s->remote, s->remote_len);
	*srclen = s->remote_len;
	state_set(cfd, s);
	state_put(s);
}

static int do_accept(int fd, struct sockaddr *sa, socklen_t *len, int flags, int four)
{
	struct sockaddr_storage src;
	socklen_t srclen = sizeof(src);
	int cfd, saved;

	if (!state_peek(fd))
		return four ? real_accept4(fd, sa, len, flags) : real_accept(fd, sa, len);
	if (sa && !len) {
		errno = EFAULT;
		return -1;
	}
	cfd = four ? real_accept4(fd, (struct sockaddr *)&src, &srclen, flags)
		   : real_accept(fd, (struct sockaddr *)&src, &srclen);
	if (cfd < 0)
		return cfd;
	saved = errno;
	if (src.ss_family == AF_INET || src.ss_family == AF_INET6)
		rename_peer(cfd, &src, &srclen, four ? flags : 0);
	if (sa)
		vaddr_copy_out(&src, srclen, sa, len);
	errno = saved;
	return cfd;
}

SHIM_EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
	return do_accept(fd, sa, len, 0, 0);
}

SHIM_EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	return do_accept(fd, sa, len, flags, 1);
}
