/*
 * io.c — the read and write families on our streams, where TCP and the
 * AF_UNIX bridge would answer differently.
 *
 * A peer's abort: the engine closes its end of the pair, so reads see a
 * plain EOF and writes EPIPE, and the kernel raises SIGPIPE.  TCP reports
 * ECONNRESET (ETIMEDOUT for a dead peer) once, without a signal, and only
 * later writes raise SIGPIPE.  So a read's EOF asks how the stream ended,
 * and writes on a stream go out with MSG_NOSIGNAL: their EPIPE asks the
 * same, and raises SIGPIPE itself when there is nothing to report.  The
 * answer comes from our engine, or, for a stream inherited through fork
 * or exec, from the record its engine keeps (glue_stream_ended).
 *
 * Also: an address passed to sendto/sendmsg on a connected TCP socket is
 * ignored (AF_UNIX says EISCONN), and recvfrom/recvmsg return no source
 * address on TCP.
 *
 * Reads pay nothing unless they hit EOF; writes to fds that are not ours
 * pay one lock-free lookup, and write/send on streams connect() opened no
 * fstat (a stale entry -- the fd closed behind our back and reused -- only
 * changes SIGPIPE into the EPIPE check below, or fails ENOTSOCK for a file,
 * which then gets the plain write).  Streams accept() took over are
 * written with the program's own call (accepted_reset says why).
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "real.h"
#include "state.h"
#include "stream.h"

/* r is a read result: 0 on a reset stream becomes -1/ECONNRESET once. */
static ssize_t on_eof(int fd, ssize_t r)
{
	struct shim_sock *s;
	int e;

	if (r != 0 || !state_peek(fd) || !(s = state_get(fd)))
		return r;
	e = stream_take_reset(s, fd);
	state_put(s);
	if (!e)
		return r;
	errno = e;
	return -1;
}

/* A stream: its writes need on_write.  Cheap for fds that are not ours. */
static int is_stream(int fd)
{
	struct shim_sock *s;
	int r;

	if (!state_peek(fd) || !(s = state_get(fd)))
		return 0;
	r = s->kind == SHIM_STREAM;
	if (r && s->sndbuf_restore)
		stream_refresh(s, fd);
	state_put(s);
	return r;
}

/* A stream accept() took over is written with the program's own system
 * call: servers run in sandboxes that allow no other (sshd's seccomp
 * filter kills a process that calls sendto).  So a peer's abort is looked
 * up before the write instead of on its EPIPE.  Returns 0 to go on. */
static int accepted_reset(int fd)
{
	struct shim_sock *s;
	int e = 0;

	if ((s = state_get(fd))) {
		e = stream_take_reset(s, fd);
		state_put(s);
	}
	if (e)
		errno = e;
	return e;
}

/* How a write on fd goes; a stream that may have opened since its
 * connect() gets its socket buffer's size back first. */
static enum write_mode write_mode(int fd)
{
	enum write_mode m = state_write_mode(fd);

	if (m == WRITE_OPENING)
		stream_refresh_fd(fd);
	return m;
}

/* r is the result of a MSG_NOSIGNAL write on a stream; flags the caller's. */
static ssize_t on_write(int fd, ssize_t r, int flags)
{
	struct shim_sock *s;
	int e = 0, saved = errno;

	if (r >= 0 || errno != EPIPE)
		return r;
	if ((s = state_get(fd))) {
		e = stream_take_reset(s, fd);
		state_put(s);
	}
	if (e) {
		errno = e;
		return -1;
	}
	if (!(flags & MSG_NOSIGNAL))
		raise(SIGPIPE); /* thread-directed, as the kernel's */
	errno = saved;
	return -1;
}

SHIM_EXPORT ssize_t read(int fd, void *buf, size_t n)
{
	ssize_t r = real_read(fd, buf, n);

	return r == 0 && n ? on_eof(fd, r) : r;
}

SHIM_EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
	static ssize_t (*fn)(int, void *, size_t, size_t);
	ssize_t r;

	if (!fn)
		fn = (ssize_t(*)(int, void *, size_t, size_t))real_symbol("__read_chk");
	r = fn(fd, buf, n, buflen);
	return r == 0 && n ? on_eof(fd, r) : r;
}

SHIM_EXPORT ssize_t readv(int fd, const struct iovec *iov, int cnt)
{
	ssize_t r = real_readv(fd, iov, cnt);

	return r == 0 && cnt > 0 ? on_eof(fd, r) : r;
}

SHIM_EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	ssize_t r = real_recv(fd, buf, n, flags);

	return r == 0 && n ? on_eof(fd, r) : r;
}

SHIM_EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
	static ssize_t (*fn)(int, void *, size_t, size_t, int);
	ssize_t r;

	if (!fn)
		fn = (ssize_t(*)(int, void *, size_t, size_t, int))real_symbol("__recv_chk");
	r = fn(fd, buf, n, buflen, flags);
	return r == 0 && n ? on_eof(fd, r) : r;
}

static ssize_t recvfrom_common(int fd, size_t n, struct sockaddr *sa, socklen_t *len,
			       ssize_t r)
{
	if (r >= 0 && sa && len && is_stream(fd))
		*len = 0; /* TCP gives no source address */
	return r == 0 && n ? on_eof(fd, r) : r;
}

SHIM_EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
			     socklen_t *len)
{
	ssize_t r = real_recvfrom(fd, buf, n, flags, sa, len);

	return recvfrom_common(fd, n, sa, len, r);
}

SHIM_EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
				   struct sockaddr *sa, socklen_t *len)
{
	static ssize_t (*fn)(int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *);
	ssize_t r;

	if (!fn)
		fn = (ssize_t(*)(int, void *, size_t, size_t, int, struct sockaddr *,
				 socklen_t *))real_symbol("__recvfrom_chk");
	r = fn(fd, buf, n, buflen, flags, sa, len);
	return recvfrom_common(fd, n, sa, len, r);
}

SHIM_EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r = real_recvmsg(fd, msg, flags);

	if (r >= 0 && msg && msg->msg_name && is_stream(fd))
		msg->msg_namelen = 0;
	return r == 0 && msg && msg->msg_iovlen ? on_eof(fd, r) : r;
}

SHIM_EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	enum write_mode m = write_mode(fd);
	ssize_t r;

	if (m == WRITE_PLAIN || (m == WRITE_ACCEPTED && !accepted_reset(fd)))
		return real_write(fd, buf, n);
	if (m == WRITE_ACCEPTED)
		return -1;
	r = real_send(fd, buf, n, MSG_NOSIGNAL);
	if (r < 0 && errno == ENOTSOCK)
		return real_write(fd, buf, n);
	return on_write(fd, r, 0);
}

SHIM_EXPORT ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = cnt > 0 ? (size_t)cnt : 0 };
	enum write_mode wm = write_mode(fd);
	ssize_t r;

	if (wm == WRITE_PLAIN || cnt < 0 || (wm == WRITE_ACCEPTED && !accepted_reset(fd)))
		return real_writev(fd, iov, cnt);
	if (wm == WRITE_ACCEPTED)
		return -1;
	r = real_sendmsg(fd, &m, MSG_NOSIGNAL);
	if (r < 0 && errno == ENOTSOCK)
		return real_writev(fd, iov, cnt);
	return on_write(fd, r, 0);
}

SHIM_EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	enum write_mode m = write_mode(fd);

	if (m == WRITE_PLAIN || (m == WRITE_ACCEPTED && !accepted_reset(fd)))
		return real_send(fd, buf, n, flags);
	if (m == WRITE_ACCEPTED)
		return -1;
	return on_write(fd, real_send(fd, buf, n, flags | MSG_NOSIGNAL), flags);
}

SHIM_EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags,
			   const struct sockaddr *sa, socklen_t len)
{
	if (sa) {
		if (!is_stream(fd))
			return real_sendto(fd, buf, n, flags, sa, len);
		return on_write(fd, real_send(fd, buf, n, flags | MSG_NOSIGNAL), flags);
	}
	return send(fd, buf, n, flags);
}

SHIM_EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct msghdr m;

	if (!msg || !is_stream(fd))
		return real_sendmsg(fd, msg, flags);
	m = *msg;
	m.msg_name = NULL;
	m.msg_namelen = 0;
	return on_write(fd, real_sendmsg(fd, &m, flags | MSG_NOSIGNAL), flags);
}
