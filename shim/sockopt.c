/*
 * sockopt.c — getsockopt/setsockopt on a stream.
 *
 * The application's fd is an AF_UNIX socket now, which knows nothing of
 * TCP or IP options.  Options that mean something to it (buffer sizes,
 * timeouts, low-water marks) are applied to it; TCP- and IP-level options
 * are validated like the kernel does, remembered and reported back, and
 * otherwise have no effect (the engine does its own congestion control,
 * keepalives and packetisation).  Identity options answer as TCP.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>

#include "real.h"
#include "sockopt.h"
#include "state.h"
#include "stream.h"

#define DEFAULT_MSS 1448        /* what loopback-less Ethernet TCP shows */
#define DEFAULT_KEEPIDLE 7200   /* Linux tcp_keepalive_time */
#define DEFAULT_KEEPINTVL 75    /* Linux tcp_keepalive_intvl */
#define DEFAULT_KEEPCNT 9       /* Linux tcp_keepalive_probes */
#define DEFAULT_TTL 64

static struct shim_opt *find_opt(struct shim_sock *s, int level, int name)
{
	for (int i = 0; i < s->nopts; i++)
		if (s->opts[i].level == level && s->opts[i].name == name)
			return &s->opts[i];
	return NULL;
}

static int store_opt(struct shim_sock *s, int level, int name, const void *val, socklen_t len)
{
	struct shim_opt *o = find_opt(s, level, name);

	if (len > (socklen_t)sizeof(o->val))
		len = sizeof(o->val);
	if (!o) {
		if (s->nopts == SHIM_MAX_OPTS)
			return 0; /* accepted, not remembered: reads give the default */
		o = &s->opts[s->nopts++];
		o->level = level;
		o->name = name;
	}
	memcpy(o->val, val, len);
	o->len = len;
	return 0;
}

static int put_int(void *val, socklen_t *len, int v)
{
	if (!val || !len)
		return -EFAULT;
	if (*len > (socklen_t)sizeof(int))
		*len = sizeof(int);
	memcpy(val, &v, *len);
	return 0;
}

/* What an established TCP socket reports for options never set. */
static int default_opt(struct shim_sock *s, int level, int name, void *val, socklen_t *len)
{
	if (level == IPPROTO_TCP) {
		switch (name) {
		case TCP_NODELAY: case TCP_CORK: case TCP_USER_TIMEOUT:
		case TCP_NOTSENT_LOWAT: case TCP_DEFER_ACCEPT: case TCP_FASTOPEN:
			return put_int(val, len, 0);
		case TCP_QUICKACK:
			return put_int(val, len, 1);
		case TCP_MAXSEG:
			return put_int(val, len, DEFAULT_MSS);
		case TCP_KEEPIDLE:
			return put_int(val, len, DEFAULT_KEEPIDLE);
		case TCP_KEEPINTVL:
			return put_int(val, len, DEFAULT_KEEPINTVL);
		case TCP_KEEPCNT:
			return put_int(val, len, DEFAULT_KEEPCNT);
		case TCP_CONGESTION: {
			static const char cc[] = "srmudp";
			socklen_t n;

			if (!val || !len)
				return -EFAULT;
			n = *len < (socklen_t)sizeof(cc) ? *len : (socklen_t)sizeof(cc);
			memcpy(val, cc, n);
			*len = n;
			return 0;
		}
		case TCP_INFO: {
			struct tcp_info ti;

			if (!val || !len)
				return -EFAULT;
			memset(&ti, 0, sizeof(ti));
			ti.tcpi_state = s->conn == CONN_OPENING ? TCP_SYN_SENT : TCP_ESTABLISHED;
			ti.tcpi_snd_mss = ti.tcpi_rcv_mss = DEFAULT_MSS;
			ti.tcpi_pmtu = 1500;
			ti.tcpi_snd_cwnd = 10;
			if (*len > (socklen_t)sizeof(ti))
				*len = sizeof(ti);
			memcpy(val, &ti, *len);
			return 0;
		}
		}
		return -ENOPROTOOPT;
	}
	if ((level == IPPROTO_IP && s->family == AF_INET) ||
	    (level == IPPROTO_IPV6 && s->family == AF_INET6) ||
	    (level == IPPROTO_IP && s->family == AF_INET6)) {
		switch (name) {
		case IP_TOS: /* == IPV6_TCLASS? no: distinct values, listed apart */
			if (level == IPPROTO_IP)
				return put_int(val, len, 0);
			break;
		case IP_TTL:
			if (level == IPPROTO_IP)
				return put_int(val, len, DEFAULT_TTL);
			break;
		}
		if (level == IPPROTO_IPV6) {
			switch (name) {
			case IPV6_TCLASS: case IPV6_V6ONLY:
				return put_int(val, len, 0);
			case IPV6_UNICAST_HOPS:
				return put_int(val, len, DEFAULT_TTL);
			}
		}
		return -ENOPROTOOPT;
	}
	return -ENOPROTOOPT;
}

static int stream_getsockopt(int fd, struct shim_sock *s, int level, int name, void *val,
			     socklen_t *len)
{
	struct shim_opt *o;

	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_TYPE:
			return put_int(val, len, SOCK_STREAM);
		case SO_DOMAIN:
			return put_int(val, len, s->family);
		case SO_PROTOCOL:
			return put_int(val, len, IPPROTO_TCP);
		case SO_ACCEPTCONN:
			return put_int(val, len, 0);
		case SO_ERROR: {
			int e;

			stream_refresh(s, fd);
			if (s->conn == CONN_OPENING)
				return put_int(val, len, 0);
			e = s->conn == CONN_FAILED ? s->error_pending : stream_take_reset(s, fd);
			s->error_pending = 0;
			return put_int(val, len, e);
		}
		}
		o = find_opt(s, level, name);
		if (o) {
			if (!val || !len)
				return -EFAULT;
			if (*len > o->len)
				*len = o->len;
			memcpy(val, o->val, *len);
			return 0;
		}
		return real_getsockopt(fd, level, name, val, len) ? -errno : 0;
	}
	o = find_opt(s, level, name);
	if (o) {
		if (!val || !len)
			return -EFAULT;
		if (*len > o->len)
			*len = o->len;
		memcpy(val, o->val, *len);
		return 0;
	}
	return default_opt(s, level, name, val, len);
}

static int stream_setsockopt(int fd, struct shim_sock *s, int level, int name,
			     const void *val, socklen_t len)
{
	if (level == SOL_SOCKET) {
		switch (name) {
		case SO_LINGER: {
			struct linger l;

			if (len < (socklen_t)sizeof(l))
				return -EINVAL;
			memcpy(&l, val, sizeof(l));
			s->linger_abort = l.l_onoff && l.l_linger == 0;
			return store_opt(s, level, name, &l, sizeof(l));
		}
		case SO_SNDBUF:
			/* Opening: the small buffer holds POLLOUT low (connect.c);
			 * the application's size is given once open. */
			if (s->sndbuf_restore && len >= (socklen_t)sizeof(int)) {
				memcpy(&s->sndbuf_restore, val, sizeof(int));
				if (s->sndbuf_restore < 1)
					s->sndbuf_restore = 1;
				return 0;
			}
			return real_setsockopt(fd, level, name, val, len) ? -errno : 0;
		case SO_RCVBUF: case SO_SNDBUFFORCE: case SO_RCVBUFFORCE:
		case SO_RCVLOWAT: case SO_SNDTIMEO_OLD: case SO_RCVTIMEO_OLD:
		case SO_SNDTIMEO_NEW: case SO_RCVTIMEO_NEW: case SO_PASSCRED:
			/* Meaningful on the bridge itself. */
			return real_setsockopt(fd, level, name, val, len) ? -errno : 0;
		case SO_TYPE: case SO_DOMAIN: case SO_PROTOCOL: case SO_ERROR:
		case SO_ACCEPTCONN:
			return -ENOPROTOOPT;
		}
		if (len < (socklen_t)sizeof(int))
			return -EINVAL;
		return store_opt(s, level, name, val, len);
	}
	if (level == IPPROTO_TCP || level == IPPROTO_IP || level == IPPROTO_IPV6) {
		if (level == IPPROTO_IPV6 && s->family != AF_INET6)
			return -ENOPROTOOPT;
		if (!val)
			return -EFAULT;
		if (level == IPPROTO_TCP && name == TCP_CONGESTION)
			return len ? store_opt(s, level, name, val, len) : -EINVAL;
		if (level == IPPROTO_TCP && name == TCP_ULP)
			return -ENOENT; /* no kTLS on a bridge: libssl falls back */
		if (len < (socklen_t)sizeof(int) && level == IPPROTO_TCP)
			return -EINVAL;
		if (len == 0)
			return -EINVAL;
		return store_opt(s, level, name, val, len);
	}
	return real_setsockopt(fd, level, name, val, len) ? -errno : 0;
}

SHIM_EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct shim_sock *s;
	int saved = errno, r;

	if (!state_peek(fd) || !(s = state_get(fd)))
		return real_getsockopt(fd, level, name, val, len);
	if (s->kind != SHIM_STREAM) {
		state_put(s);
		return real_getsockopt(fd, level, name, val, len);
	}
	r = stream_getsockopt(fd, s, level, name, val, len);
	state_put(s);
	errno = r < 0 ? -r : saved;
	return r < 0 ? -1 : 0;
}

SHIM_EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	struct shim_sock *s;
	int saved = errno, r;

	if (!state_peek(fd) || !(s = state_get(fd)))
		return real_setsockopt(fd, level, name, val, len);
	if (s->kind != SHIM_STREAM) {
		state_put(s);
		return real_setsockopt(fd, level, name, val, len);
	}
	r = stream_setsockopt(fd, s, level, name, val, len);
	state_put(s);
	errno = r < 0 ? -r : saved;
	return r < 0 ? -1 : 0;
}

void sockopt_carry(int oldfd, struct shim_sock *s)
{
	static const struct {
		int level, name, dflt;
	} carried[] = {
		{ IPPROTO_TCP, TCP_NODELAY, 0 },  { IPPROTO_TCP, TCP_CORK, 0 },
		{ IPPROTO_TCP, TCP_KEEPIDLE, DEFAULT_KEEPIDLE },
		{ IPPROTO_TCP, TCP_KEEPINTVL, DEFAULT_KEEPINTVL },
		{ IPPROTO_TCP, TCP_KEEPCNT, DEFAULT_KEEPCNT },
		{ SOL_SOCKET, SO_KEEPALIVE, 0 }, { SOL_SOCKET, SO_REUSEADDR, 0 },
		{ SOL_SOCKET, SO_PRIORITY, 0 },  { IPPROTO_IP, IP_TOS, 0 },
	};
	int saved = errno;
	struct linger lg;
	socklen_t ll = sizeof(lg);

	if (real_getsockopt(oldfd, SOL_SOCKET, SO_LINGER, &lg, &ll) == 0 && lg.l_onoff) {
		s->linger_abort = lg.l_linger == 0;
		store_opt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	for (size_t i = 0; i < sizeof(carried) / sizeof(carried[0]); i++) {
		int v = 0;
		socklen_t l = sizeof(v);

		if (real_getsockopt(oldfd, carried[i].level, carried[i].name, &v, &l) == 0 &&
		    v != carried[i].dflt)
			store_opt(s, carried[i].level, carried[i].name, &v, sizeof(v));
	}
	errno = saved;
}
