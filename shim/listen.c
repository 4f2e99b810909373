/*
 * listen.c — a preloaded program that listens on a TCP port also accepts
 * streams that peers open to that port.
 *
 * The engine connects each such stream by TCP to the program's own
 * listening socket (srm_listen_handoff), so accept(), its readiness and
 * its thundering-herd behaviour stay the kernel's; accept.c renames the
 * peer and swaps the connection for the stream's socket pair.  One engine
 * registration per port, however many sockets (IPv4 and IPv6) listen on
 * it; the first one's address decides whether it is loopback-only.
 *
 * A socket bound to a loopback address was meant for this host alone, as
 * WireGuard and Tailscale users expect: it is registered with
 * SRM_LISTEN_LOOPBACK, and the engine refuses peers unless SRMUDP_EXPOSE
 * names the port (srm_access_check).  Registering it anyway, rather than
 * not at all, lets the engine log and count the refusal.
 */
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "engine_glue.h"
#include "listen.h"
#include "real.h"
#include "state.h"

#define MAX_LISTEN_PORTS 256

/* Where the engine should connect: loopback for a wildcard bind, else the
 * bound address itself (it is local). */
static socklen_t forward_addr(int fd, const struct sockaddr_storage *b,
			      struct sockaddr_storage *out)
{
	memcpy(out, b, sizeof(*out));
	if (b->ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)out;

		if (a->sin_addr.s_addr == htonl(INADDR_ANY))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)out;

	if (IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr)) {
		int v6only = 0;
		socklen_t l = sizeof(v6only);

		real_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &l);
		if (!v6only) { /* dual stack: IPv4 loopback reaches it too */
			struct sockaddr_in *a = (struct sockaddr_in *)out;
			uint16_t port = a6->sin6_port;

			memset(out, 0, sizeof(*out));
			a->sin_family = AF_INET;
			a->sin_port = port;
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			return sizeof(*a);
		}
		a6->sin6_addr = in6addr_loopback;
	}
	return sizeof(*a6);
}

/* Bound to 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. */
static int is_loopback(const struct sockaddr_storage *b)
{
	if (b->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)b)->sin_addr.s_addr) >> 24) == 127;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)b)->sin6_addr;

	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static void register_listener(int fd)
{
	struct sockaddr_storage b, fwd;
	socklen_t bl = sizeof(b), fl;
	int type = 0, proto = 0, r;
	socklen_t l = sizeof(type);
	struct shim_sock *s;
	srm_engine *e;
	uint16_t port;

	if (real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) || type != SOCK_STREAM)
		return;
	l = sizeof(proto);
	if (real_getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l) || proto != IPPROTO_TCP)
		return;
	if (real_getsockname(fd, (struct sockaddr *)&b, &bl) ||
	    (b.ss_family != AF_INET && b.ss_family != AF_INET6))
		return;
	if ((s = state_get(fd))) { /* listen() again: only the backlog changes */
		state_put(s);
		return;
	}
	port = ntohs(((struct sockaddr_in *)&b)->sin_port);
	fl = forward_addr(fd, &b, &fwd);
	e = glue_engine();
	if (!e)
		return; /* reported once; local clients still reach the port */
	int loopback = is_loopback(&b);

	r = srm_listen_flags(e, port, (struct sockaddr *)&fwd, fl,
			     SRM_LISTEN_HANDOFF | (loopback ? SRM_LISTEN_LOOPBACK : 0));
	if (r < 0 && r != SRM_ERR_EXISTS) {
		glue_log(SRM_LOG_WARN, "peers cannot reach port %u: %s", port, srm_strerror(r));
		return;
	}
	s = state_new(SHIM_LISTENER, fd);
	if (!s)
		return;
	s->family = b.ss_family;
	s->port = port;
	s->loopback = loopback;
	memcpy(&s->local, &fwd, fl);
	s->local_len = fl;
	state_set(fd, s);
	state_put(s);
	if (loopback)
		glue_log(SRM_LOG_INFO, "port %u is bound to loopback: peers may open streams to it "
			 "only if SRMUDP_EXPOSE names it", port);
	else
		glue_log(SRM_LOG_INFO, "peers may open streams to port %u", port);
}

SHIM_EXPORT int listen(int fd, int backlog)
{
	int r = real_listen(fd, backlog), saved = errno;

	if (r == 0 && glue_enabled()) {
		register_listener(fd);
		errno = saved;
	}
	return r;
}

void listen_release(struct shim_sock *s)
{
	uint16_t ports[MAX_LISTEN_PORTS];
	int n = state_listener_ports(ports, MAX_LISTEN_PORTS);
	srm_engine *e = glue_engine_if_running();

	for (int i = 0; i < n; i++)
		if (ports[i] == s->port)
			return; /* another socket still listens there */
	if (e)
		srm_unlisten(e, s->port);
}

struct fwd_list {
	int n;
	uint16_t port[MAX_LISTEN_PORTS];
	struct sockaddr_storage fwd[MAX_LISTEN_PORTS];
	socklen_t len[MAX_LISTEN_PORTS];
	unsigned flags[MAX_LISTEN_PORTS];
};

int listen_register_all(srm_engine *e)
{
	static struct fwd_list fl; /* one caller: fork.c's adoption thread */
	int done = 0;

	fl.n = 0;
	for (int fd = 0, seen = 0; fd < 65536 && seen < MAX_LISTEN_PORTS; fd++) {
		struct shim_sock *s;

		if (!state_peek(fd) || !(s = state_get(fd)))
			continue;
		if (s->kind == SHIM_LISTENER && fl.n < MAX_LISTEN_PORTS) {
			fl.port[fl.n] = s->port;
			fl.fwd[fl.n] = s->local;
			fl.len[fl.n] = s->local_len;
			fl.flags[fl.n] = SRM_LISTEN_HANDOFF | (s->loopback ? SRM_LISTEN_LOOPBACK : 0);
			fl.n++;
			seen++;
		}
		state_put(s);
	}
	for (int i = 0; i < fl.n; i++) {
		int r = srm_listen_flags(e, fl.port[i], (struct sockaddr *)&fl.fwd[i], fl.len[i],
					 fl.flags[i]);

		done += r >= 0;
	}
	return done;
}
