/*
 * accept.c — accept()/accept4() on a listener the engine forwards to: a
 * connection that carries a peer's stream is named by the peer's virtual
 * address, in the listener's family (IPv4, IPv6, or IPv4-mapped IPv6 as
 * the kernel would have given).
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "engine_glue.h"
#include "real.h"
#include "state.h"
#include "vaddr.h"

static void rename_peer(int cfd, struct sockaddr_storage *src, socklen_t *srclen)
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
		rename_peer(cfd, &src, &srclen);
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
