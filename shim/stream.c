/*
 * stream.c — see stream.h.
 */
#include "stream.h"

#include <errno.h>
#include <poll.h>

#include "engine_glue.h"
#include "real.h"

int stream_errno(int srm_err)
{
	switch (srm_err) {
	case SRM_OK:
		return 0;
	case SRM_ERR_REFUSED:
	case SRM_ERR_NOTFOUND:
		return ECONNREFUSED;
	case SRM_ERR_TIMEOUT:
		return ETIMEDOUT;
	case SRM_ERR_UNREACHABLE:
	case SRM_ERR_AUTH:
	case SRM_ERR_VERSION:
		return EHOSTUNREACH;
	case SRM_ERR_RESET:
		return ECONNRESET;
	case SRM_ERR_CLOSED:
		return ECONNABORTED;
	case SRM_ERR_NOMEM:
		return ENOBUFS;
	case SRM_ERR_AGAIN:
		return EINPROGRESS;
	default:
		return EIO;
	}
}

/* In a forked child: the parent's engine drains the filler when the stream
 * opens (POLLOUT) and closes its end when it fails (POLLHUP). */
static int inherited_state(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	int saved = errno;

	if (poll(&p, 1, 0) <= 0) {
		errno = saved;
		return SRM_ERR_AGAIN;
	}
	errno = saved;
	if (p.revents & (POLLHUP | POLLERR))
		return SRM_ERR_REFUSED;
	return p.revents & POLLOUT ? SRM_OK : SRM_ERR_AGAIN;
}

void stream_give_sndbuf(struct shim_sock *s, int fd)
{
	int v = s->sndbuf_restore;

	if (!v)
		return;
	s->sndbuf_restore = 0;
	real_setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
}

void stream_refresh(struct shim_sock *s, int fd)
{
	int st;

	if (s->kind != SHIM_STREAM || s->conn != CONN_OPENING)
		return;
	st = s->engine ? srm_stream_state(s->engine, s->stream) : inherited_state(fd);
	if (st == SRM_ERR_AGAIN)
		return;
	if (st == SRM_OK || st == SRM_ERR_RESET) {
		/* RESET: it opened, then ended; read() reports the reset. */
		s->conn = CONN_OPEN;
		stream_give_sndbuf(s, fd);
	} else {
		s->conn = CONN_FAILED;
		s->error_pending = stream_errno(st);
	}
}

void stream_refresh_fd(int fd)
{
	struct shim_sock *s = state_get(fd);

	if (s) {
		stream_refresh(s, fd);
		state_put(s);
	}
}

int stream_take_reset(struct shim_sock *s, int fd)
{
	int st;

	if (s->kind != SHIM_STREAM || s->reset_reported)
		return 0;
	stream_refresh(s, fd);
	if (s->conn == CONN_FAILED) {
		int e = s->error_pending;

		s->error_pending = 0;
		s->reset_reported = 1;
		return e;
	}
	if (!s->ends && s->engine_pid)
		s->ends = glue_ends(s->engine_pid); /* inherited through exec */
	st = s->ends ? srm_ends_take(s->ends, s->stream) : 0;
	if (st != SRM_ERR_RESET && st != SRM_ERR_TIMEOUT && st != SRM_ERR_UNREACHABLE)
		return 0;
	s->reset_reported = 1;
	return stream_errno(st);
}
