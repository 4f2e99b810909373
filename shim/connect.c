/*
 * connect.c — connect() to a peer's virtual address becomes an engine
 * stream bridged through an AF_UNIX socket pair that takes over the
 * application's fd number, so every later call on it is native.
 *
 * Everything else passes straight through after one address test.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine_glue.h"
#include "epoll_replay.h"
#include "real.h"
#include "sockopt.h"
#include "state.h"
#include "stream.h"
#include "vaddr.h"

#define FILLER_CHUNK 4096 /* a few calls fill the smallest buffer */
/* Pseudo ephemeral ports for getsockname(), in Linux's default range. */
#define EPHEMERAL_LO 32768
#define EPHEMERAL_SPAN 28232

/* What the application set on its TCP socket before connect() and must
 * find again on the bridge. */
struct carried {
	int nonblock, cloexec;
	struct timeval rcvtimeo, sndtimeo;
	struct sockaddr_storage bound;
	socklen_t bound_len;
};

static void carry_collect(int fd, struct carried *c)
{
	socklen_t l;
	int fl = real_fcntl(fd, F_GETFL, NULL), fdfl = real_fcntl(fd, F_GETFD, NULL);

	memset(c, 0, sizeof(*c));
	c->nonblock = fl >= 0 && (fl & O_NONBLOCK);
	c->cloexec = fdfl >= 0 && (fdfl & FD_CLOEXEC);
	l = sizeof(c->rcvtimeo);
	real_getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &c->rcvtimeo, &l);
	l = sizeof(c->sndtimeo);
	real_getsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &c->sndtimeo, &l);
	c->bound_len = sizeof(c->bound);
	if (real_getsockname(fd, (struct sockaddr *)&c->bound, &c->bound_len) != 0)
		c->bound_len = 0;
}

static void carry_apply(int fd, const struct carried *c)
{
	if (c->rcvtimeo.tv_sec || c->rcvtimeo.tv_usec)
		real_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &c->rcvtimeo, sizeof(c->rcvtimeo));
	if (c->sndtimeo.tv_sec || c->sndtimeo.tv_usec)
		real_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &c->sndtimeo, sizeof(c->sndtimeo));
}

/* SO_SNDTIMEO in ms, or -1 when unset (wait for the engine's timeout). */
static int sndtimeo_ms(const struct carried *c)
{
	long long ms = (long long)c->sndtimeo.tv_sec * 1000 + c->sndtimeo.tv_usec / 1000;

	if (ms <= 0)
		return c->sndtimeo.tv_usec > 0 ? 1 : -1;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

static uint16_t bound_port(const struct carried *c)
{
	if (c->bound_len && c->bound.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&c->bound)->sin_port);
	if (c->bound_len && c->bound.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&c->bound)->sin6_port);
	return 0;
}

/* getsockname() of the stream: the bound address if the application bound
 * one, else loopback with a pseudo ephemeral port (the stream has no IP
 * address of its own). */
static void make_local(struct shim_sock *s, const struct carried *c, uint16_t seed)
{
	uint16_t port = bound_port(c);

	if (!port)
		port = (uint16_t)(EPHEMERAL_LO + seed % EPHEMERAL_SPAN);
	memset(&s->local, 0, sizeof(s->local));
	if (s->family == AF_INET) {
		struct sockaddr_in *l = (struct sockaddr_in *)&s->local;

		l->sin_family = AF_INET;
		l->sin_port = htons(port);
		l->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->local_len = sizeof(*l);
	} else {
		struct sockaddr_in6 *l = (struct sockaddr_in6 *)&s->local;

		l->sin6_family = AF_INET6;
		l->sin6_port = htons(port);
		l->sin6_addr = in6addr_loopback;
		s->local_len = sizeof(*l);
	}
}

/* Fill the application's end until the kernel refuses more, so POLLOUT
 * stays low until the engine drains exactly these bytes.  The socket
 * buffer is made as small as it goes first, so the filler is a few KiB
 * (a default buffer took 200 KiB to fill and drain, a fifth of a
 * millisecond on each connect); stream_give_sndbuf restores it once the
 * stream is open.  Returns the filler's size and sets *sndbuf to what to
 * restore (0: nothing). */
static size_t prefill(int fd, int *sndbuf)
{
	static const char zeros[FILLER_CHUNK];
	int one = 1, v = 0;
	socklen_t l = sizeof(v);
	size_t total = 0;

	*sndbuf = 0;
	/* setsockopt doubles what it is given (for the kernel's overhead),
	 * and getsockopt shows the doubled value. */
	if (real_getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, &l) == 0 && v > 1 &&
	    real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &one, sizeof(one)) == 0)
		*sndbuf = v / 2;
	for (int i = 0; i < 1024; i++) { /* bounded: sndbuf is finite */
		ssize_t w = real_send(fd, zeros, sizeof(zeros), MSG_DONTWAIT | MSG_NOSIGNAL);

		if (w <= 0)
			break;
		total += (size_t)w;
		if ((size_t)w < sizeof(zeros))
			break;
	}
	return total;
}

/* Open a stream for fd (a TCP socket of family) to peer index idx. */
static int open_stream(int fd, int family, int idx, const struct sockaddr *sa, socklen_t len)
{
	struct carried c;
	struct epoll_reg regs[EPOLL_REPLAY_MAX];
	struct shim_sock *s;
	srm_engine *e;
	int sv[2], peer, nregs, r, st;
	size_t fill;
	uint64_t handle;
	/* sin_port and sin6_port sit at the same offset */
	uint16_t port = ntohs(((const struct sockaddr_in *)sa)->sin_port);

	e = glue_engine();
	if (!e)
		return -EHOSTUNREACH; /* reported once on stderr by the glue */
	peer = glue_engine_peer(e, idx);
	if (peer < 0)
		return -EHOSTUNREACH;

	carry_collect(fd, &c);
	s = state_new(SHIM_STREAM, fd);
	if (!s)
		return -ENOBUFS;
	sockopt_carry(fd, s);
	nregs = epoll_replay_collect(fd, s->ino, regs, EPOLL_REPLAY_MAX);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
		state_put(s);
		return -errno;
	}
	if (real_dup3(sv[0], fd, c.cloexec ? O_CLOEXEC : 0) < 0) {
		r = -errno;
		real_close(sv[0]);
		real_close(sv[1]);
		state_put(s);
		return r;
	}
	real_close(sv[0]);
	fill = prefill(fd, &s->sndbuf_restore);
	if (c.nonblock)
		real_fcntl(fd, F_SETFL, (void *)(long)(real_fcntl(fd, F_GETFL, NULL) | O_NONBLOCK));
	carry_apply(fd, &c);

	s->family = family;
	s->peer = peer;
	s->engine = e;
	s->ends = srm_engine_ends(e);
	s->engine_pid = getpid();
	s->conn = CONN_OPENING;
	/* getpeername() gives back the form the application used. */
	s->remote_len = len < sizeof(s->remote) ? len : sizeof(s->remote);
	memcpy(&s->remote, sa, s->remote_len);
	state_rebind(s, fd);
	state_set(fd, s);
	epoll_replay_apply(fd, regs, nregs);

	r = srm_stream_open(e, peer, port, sv[1], fill, &handle);
	if (r < 0) {
		s->conn = CONN_FAILED;
		s->reset_reported = 2; /* reported here: the next connect starts over */
		state_put(s);
		return -stream_errno(r);
	}
	s->stream = handle;
	make_local(s, &c, (uint16_t)(handle * 2654435761u >> 7));
	if (c.nonblock) {
		state_put(s);
		return -EINPROGRESS;
	}
	/* SO_SNDTIMEO bounds a blocking connect, which then says EINPROGRESS
	 * and carries on in the background, as on Linux. */
	st = srm_stream_wait(e, handle, sndtimeo_ms(&c));
	if (st == SRM_ERR_AGAIN && sndtimeo_ms(&c) >= 0) {
		state_put(s);
		return -EINPROGRESS;
	}
	if (st == SRM_OK || st == SRM_ERR_RESET) {
		s->conn = CONN_CONNECTED;
		stream_give_sndbuf(s, fd);
		state_put(s);
		return 0;
	}
	/* A failed blocking connect leaves the socket unconnected (Linux): the
	 * next connect() is a new attempt. */
	s->conn = CONN_FAILED;
	s->reset_reported = 2;
	r = -stream_errno(st);
	state_put(s);
	return r;
}

/* A connect() on a stream we already manage: TCP's answers. */
static int connect_again(int fd, struct shim_sock *s, const struct sockaddr *sa,
			 socklen_t len)
{
	int e;

	if (s->kind != SHIM_STREAM)
		return -EISCONN;
	stream_refresh(s, fd);
	switch (s->conn) {
	case CONN_OPENING:
		return -EALREADY;
	case CONN_OPEN:
		s->conn = CONN_CONNECTED;
		return 0;
	case CONN_CONNECTED:
		return -EISCONN;
	case CONN_FAILED:
	default:
		break;
	}
	/* Linux reports the failure once, then ECONNABORTED; a further
	 * connect() starts over. */
	e = s->error_pending;
	s->error_pending = 0;
	if (e)
		return -e;
	if (s->reset_reported != 2) {
		s->reset_reported = 2;
		return -ECONNABORTED;
	}
	int idx = vaddr_index(sa, len), family = s->family;

	if (idx < 0 || !glue_peer_name(idx))
		return -ENETUNREACH;
	state_put(state_take(fd));
	return open_stream(fd, family, idx, sa, len);
}

static int designated(int fd, const struct sockaddr *sa, socklen_t len, int idx)
{
	int type = 0, domain = 0;
	socklen_t l = sizeof(type);

	if (!glue_enabled())
		return 1; /* inert shim: the kernel answers (ENETUNREACH) */
	if (real_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0)
		return -errno;
	l = sizeof(domain);
	if (real_getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) != 0)
		return -errno;
	if (domain != sa->sa_family)
		return 1; /* the kernel's EAFNOSUPPORT/EINVAL */
	if (type != SOCK_STREAM)
		return -ENETUNREACH; /* only TCP travels to peers; never leak UDP */
	if (!glue_config())
		return -EHOSTUNREACH;
	if (!glue_peer_name(idx))
		return 1; /* not a configured peer: the kernel refuses it */
	return open_stream(fd, domain, idx, sa, len);
}

SHIM_EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
	int saved = errno, idx = vaddr_index(sa, len), r;
	struct shim_sock *s;

	if (state_peek(fd) && (s = state_get(fd))) {
		r = connect_again(fd, s, sa, len);
		state_put(s);
	} else if (idx < 0) {
		return real_connect(fd, sa, len);
	} else {
		r = designated(fd, sa, len, idx);
		if (r == 1)
			return real_connect(fd, sa, len);
	}
	if (r < 0) {
		errno = -r;
		return -1;
	}
	errno = saved;
	return 0;
}
