/*
 * matrix.c — the behaviour matrix: one program, run once over kernel TCP
 * and once through the srmudp preload, printing a normalised transcript of
 * everything an application can observe.  test_shim_matrix.sh diffs the
 * two transcripts (client and server side).
 *
 *   matrix server PORT EXPECT_NAME LOG     serve tests; LOG gets the server
 *                                          transcript (one line per test)
 *   matrix client HOST4 HOST6 PORT CLOSED  run every test against a server
 *   matrix fork-new HOST PORT              a forked child opens its own
 *                                          stream (its own engine)
 *   matrix exec-child FD                   (internal: the exec test)
 *   matrix abort-child FD                  (internal: the abort-in-exec test)
 *
 * HOST4/HOST6 are resolved with getaddrinfo (AF_INET / AF_INET6), so the
 * shim run also exercises naming.  CLOSED is a port nothing listens on.
 * EXPECT_NAME is what getnameinfo must give for the client's address on
 * the server ("-": not checked).  Every wait is bounded; a test that
 * cannot finish prints a failure line instead of hanging.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 15000 /* generous: the peer may still be handshaking */
#define BULK_BYTES (4 << 20)

static const char *host4, *host6;
static int port, closed_port;

static void out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EISCONN: return "EISCONN";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ENOTCONN: return "ENOTCONN";
	case EPIPE: return "EPIPE";
	case EAGAIN: return "EAGAIN";
	case EBADF: return "EBADF";
	case EINTR: return "EINTR";
	case ECONNABORTED: return "ECONNABORTED";
	default: return strerror(e);
	}
}

static int resolve(int family, const char *host, int p, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo h = { .ai_family = family, .ai_socktype = SOCK_STREAM }, *r;
	char serv[16];

	snprintf(serv, sizeof(serv), "%d", p);
	if (getaddrinfo(host, serv, &h, &r) != 0)
		return -1;
	memcpy(ss, r->ai_addr, r->ai_addrlen);
	*len = r->ai_addrlen;
	freeaddrinfo(r);
	return 0;
}

/* Blocking connect to the server with a command line; -1 on failure. */
static int open_to(int family, int p, const char *cmd, const char *test)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (resolve(family, family == AF_INET ? host4 : host6, p, &ss, &len))
		return -1;
	fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	if (cmd) {
		char line[128];
		int n = snprintf(line, sizeof(line), "%s %s\n", cmd, test);

		if (write(fd, line, (size_t)n) != n) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

static int wait_fd(int fd, short ev, int ms)
{
	struct pollfd p = { .fd = fd, .events = ev };

	return poll(&p, 1, ms) > 0 ? p.revents : 0;
}

/* Read exactly n bytes (bounded by WAIT_MS per chunk). */
static int read_n(int fd, void *buf, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r;

		if (!wait_fd(fd, POLLIN, WAIT_MS))
			return -1;
		r = read(fd, (char *)buf + got, n - got);
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t w = write(fd, (const char *)buf + done, n - done);

		if (w < 0 && errno == EAGAIN) {
			wait_fd(fd, POLLOUT, WAIT_MS);
			continue;
		}
		if (w <= 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* Round trip a message through an echo connection. */
static const char *echo_ok(int fd, const char *msg)
{
	char buf[256];
	size_t n = strlen(msg);

	if (write_all(fd, msg, n))
		return "write-failed";
	if (read_n(fd, buf, n))
		return "read-failed";
	return memcmp(buf, msg, n) ? "mismatch" : "ok";
}

/* ---------------------------------------------------------------- client */

static void t_identity(int family, const char *tag)
{
	struct sockaddr_storage want, peer, me;
	socklen_t wl, pl = sizeof(peer), ml = sizeof(me), l;
	int fd, v, dom = 0, type = 0, proto = 0;

	resolve(family, family == AF_INET ? host4 : host6, port, &want, &wl);
	fd = open_to(family, port, "echo", tag);
	if (fd < 0) {
		out("%s: connect failed %s", tag, ename(errno));
		return;
	}
	l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l);
	l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
	l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &l);
	out("%s: domain=%s type=%s protocol=%s", tag,
	    dom == AF_INET ? "AF_INET" : dom == AF_INET6 ? "AF_INET6" : "other",
	    type == SOCK_STREAM ? "STREAM" : "other", proto == IPPROTO_TCP ? "TCP" : "other");
	getpeername(fd, (struct sockaddr *)&peer, &pl);
	out("%s: getpeername equals the connect address: %s", tag,
	    pl == wl && !memcmp(&peer, &want, wl) ? "yes" : "no");
	getsockname(fd, (struct sockaddr *)&me, &ml);
	out("%s: getsockname family matches: %s, port nonzero: %s", tag,
	    me.ss_family == family ? "yes" : "no",
	    ((struct sockaddr_in *)&me)->sin_port ? "yes" : "no");
	v = 1;
	out("%s: setsockopt TCP_NODELAY=%d", tag,
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)));
	v = 0;
	l = sizeof(v);
	getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l);
	out("%s: getsockopt TCP_NODELAY -> %d", tag, v);
	v = 1;
	out("%s: setsockopt SO_KEEPALIVE=%d TCP_KEEPIDLE=%d TCP_CORK=%d", tag,
	    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, sizeof(v)),
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &(int){ 60 }, sizeof(int)),
	    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &(int){ 0 }, sizeof(int)));
	v = 0;
	l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l);
	out("%s: getsockopt SO_KEEPALIVE -> %d", tag, v);
	v = 0x10;
	if (family == AF_INET)
		out("%s: setsockopt IP_TOS=%d", tag, setsockopt(fd, IPPROTO_IP, IP_TOS, &v, sizeof(v)));
	else
		out("%s: setsockopt IPV6_TCLASS=%d", tag,
		    setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof(v)));
	v = 1 << 20;
	out("%s: setsockopt SO_SNDBUF=%d SO_RCVBUF=%d", tag,
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)),
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)));
	v = -1;
	l = sizeof(v);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
	out("%s: SO_ERROR=%s", tag, ename(v));
	out("%s: echo %s", tag, echo_ok(fd, "hello\n"));
	close(fd);
}

static void t_refused(int family, const char *tag)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, r, e, v = -1;
	socklen_t l = sizeof(v);

	resolve(family, family == AF_INET ? host4 : host6, closed_port, &ss, &len);
	fd = socket(family, SOCK_STREAM, 0);
	r = connect(fd, (struct sockaddr *)&ss, len);
	out("%s: blocking connect -> %d %s", tag, r, ename(r ? errno : 0));
	{
		/* Linux leaves the socket unconnected: it may try again. */
		struct sockaddr_storage ok;
		socklen_t okl;
		char line[64];
		int n = snprintf(line, sizeof(line), "echo %s\n", tag);

		resolve(family, family == AF_INET ? host4 : host6, port, &ok, &okl);
		r = connect(fd, (struct sockaddr *)&ok, okl);
		out("%s: same socket, connect to a listening port -> %d %s", tag, r, ename(r ? errno : 0));
		if (r == 0 && write(fd, line, (size_t)n) == n)
			out("%s: then echo %s", tag, echo_ok(fd, "again\n"));
	}
	close(fd);

	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	r = connect(fd, (struct sockaddr *)&ss, len);
	e = r ? errno : 0;
	/* Loopback TCP may refuse synchronously; a real path says EINPROGRESS. */
	out("%s: non-blocking connect -> %s", tag,
	    e == EINPROGRESS || e == ECONNREFUSED ? "EINPROGRESS-or-refused" : ename(e));
	/* A refused connect wakes the poller; the kernel shows
	 * OUT|ERR|HUP, the bridge OUT|HUP or ERR|HUP depending on timing
	 * (docs/SHIM.md), and SO_ERROR gives the reason either way. */
	if (e == EINPROGRESS) {
		int rev = wait_fd(fd, POLLOUT, WAIT_MS);

		out("%s: poll -> woke=%d", tag, rev != 0);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
		out("%s: SO_ERROR=%s", tag, ename(v));
	} else {
		out("%s: poll -> woke=1", tag);
		out("%s: SO_ERROR=%s", tag, ename(e));
	}
	v = -1;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
	out("%s: SO_ERROR again=%s", tag, ename(v));
	close(fd);
}

static void t_nonblocking(int family, const char *tag, int epoll_first)
{
	struct sockaddr_storage ss, peer;
	socklen_t len, pl = sizeof(peer);
	int fd, r, e, v = -1, ep = -1, seen_isconn = 0, bad = 0;
	socklen_t l = sizeof(v);

	resolve(family, family == AF_INET ? host4 : host6, port, &ss, &len);
	fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (epoll_first) { /* registered before connect: must survive it */
		struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN, .data.u64 = 0x5eed };

		ep = epoll_create1(EPOLL_CLOEXEC);
		if (epoll_first == 2) { /* only a duplicate of the epoll fd is left */
			int orig = ep;

			ep = fcntl(orig, F_DUPFD_CLOEXEC, 100);
			close(orig);
		}
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	r = connect(fd, (struct sockaddr *)&ss, len);
	e = r ? errno : 0;
	out("%s: connect -> %s", tag, e == EINPROGRESS || e == 0 ? "EINPROGRESS-or-0" : ename(e));
	r = connect(fd, (struct sockaddr *)&ss, len);
	e = r ? errno : 0;
	out("%s: second connect -> %s", tag,
	    e == EALREADY || e == 0 || e == EISCONN ? "EALREADY-or-done" : ename(e));
	if (epoll_first) {
		struct epoll_event got = { 0 };
		int n = epoll_wait(ep, &got, 1, WAIT_MS);

		out("%s: epoll (registered before connect) -> n=%d out=%d data=%s", tag, n,
		    !!(got.events & EPOLLOUT), got.data.u64 == 0x5eed ? "kept" : "lost");
	} else {
		int rev = wait_fd(fd, POLLOUT, WAIT_MS);

		out("%s: poll -> out=%d err-or-hup=%d", tag, !!(rev & POLLOUT),
		    !!(rev & (POLLERR | POLLHUP)));
	}
	/* Writable must mean established. */
	r = getpeername(fd, (struct sockaddr *)&peer, &pl);
	out("%s: getpeername once writable -> %s", tag, ename(r ? errno : 0));
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l);
	out("%s: SO_ERROR=%s", tag, ename(v));
	for (int i = 0; i < 4 && !seen_isconn; i++) {
		r = connect(fd, (struct sockaddr *)&ss, len);
		e = r ? errno : 0;
		if (e == EISCONN)
			seen_isconn = 1;
		else if (e != 0 && e != EALREADY)
			bad = e;
	}
	out("%s: further connects end in EISCONN: %s%s%s", tag, seen_isconn ? "yes" : "no",
	    bad ? " unexpected " : "", bad ? ename(bad) : "");
	{
		char line[64];
		int n = snprintf(line, sizeof(line), "echo %s\n", tag);

		write_all(fd, line, (size_t)n);
	}
	out("%s: echo %s", tag, echo_ok(fd, "nonblocking\n"));
	if (ep >= 0)
		close(ep);
	close(fd);
}

static void t_pollers(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag);
	char buf[16];
	struct timespec ts = { WAIT_MS / 1000, 0 };
	struct timeval tv = { WAIT_MS / 1000, 0 };
	fd_set rs;
	struct pollfd p = { .events = POLLIN };
	sigset_t none;
	int r;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	sigemptyset(&none);
	p.fd = fd;

	write_all(fd, "a", 1);
	r = poll(&p, 1, WAIT_MS);
	out("%s: poll -> %d in=%d", tag, r, !!(p.revents & POLLIN));
	read(fd, buf, 1);

	write_all(fd, "b", 1);
	p.revents = 0;
	r = ppoll(&p, 1, &ts, &none);
	out("%s: ppoll -> %d in=%d", tag, r, !!(p.revents & POLLIN));
	read(fd, buf, 1);

	write_all(fd, "c", 1);
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	r = select(fd + 1, &rs, NULL, NULL, &tv);
	out("%s: select -> %d set=%d", tag, r, FD_ISSET(fd, &rs));
	read(fd, buf, 1);

	write_all(fd, "d", 1);
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	r = pselect(fd + 1, &rs, NULL, NULL, &ts, &none);
	out("%s: pselect -> %d set=%d", tag, r, FD_ISSET(fd, &rs));
	read(fd, buf, 1);

	p.revents = 0;
	r = poll(&p, 1, 0);
	out("%s: poll when drained -> %d", tag, r);
	close(fd);
}

/* Wait until FIONREAD shows want bytes (echoes may arrive in pieces). */
static int wait_fionread(int fd, int want)
{
	int n = 0;

	for (int i = 0; i < WAIT_MS / 10; i++) {
		ioctl(fd, FIONREAD, &n);
		if (n >= want)
			break;
		usleep(10000);
	}
	return n;
}

static void t_epoll(int family, const char *tag, unsigned mode, const char *mname)
{
	int fd = open_to(family, port, "echo", tag), ep = epoll_create1(0), n;
	struct epoll_event ev = { .events = EPOLLIN | mode, .data.fd = fd }, got;
	char buf[8];

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	write_all(fd, "12345678", 8);
	wait_fionread(fd, 8);
	n = epoll_wait(ep, &got, 1, WAIT_MS);
	out("%s %s: first wait -> %d in=%d", tag, mname, n, n > 0 && (got.events & EPOLLIN));
	read(fd, buf, 4); /* half of it */
	n = epoll_wait(ep, &got, 1, 50);
	out("%s %s: wait with data left -> %d", tag, mname, n);
	if (mode & EPOLLONESHOT) {
		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		n = epoll_wait(ep, &got, 1, WAIT_MS);
		out("%s %s: after re-arm -> %d", tag, mname, n);
	}
	read(fd, buf, 4);
	n = epoll_wait(ep, &got, 1, 50);
	out("%s %s: wait when drained -> %d", tag, mname, n);
	write_all(fd, "x", 1);
	n = epoll_wait(ep, &got, 1, WAIT_MS);
	out("%s %s: new data -> %d", tag, mname, n);
	close(ep);
	close(fd);
}

static void t_halfclose(int family, const char *tag)
{
	int fd = open_to(family, port, "count", tag);
	char buf[64] = "";
	ssize_t r;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	write_all(fd, "0123456789", 10);
	out("%s: shutdown(SHUT_WR) -> %d", tag, shutdown(fd, SHUT_WR));
	r = read_n(fd, buf, 9) ? -1 : 9;
	out("%s: reply after our FIN: %.*s", tag, r > 0 ? 8 : 4, r > 0 ? buf : "none");
	wait_fd(fd, POLLIN, WAIT_MS);
	r = read(fd, buf, sizeof(buf));
	out("%s: then read -> %zd (EOF)", tag, r);
	close(fd);
}

static void t_abort_from_peer(int family, const char *tag)
{
	int fd = open_to(family, port, "rst", tag);
	char buf[16];
	ssize_t r;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	wait_fd(fd, POLLIN, WAIT_MS);
	r = read(fd, buf, sizeof(buf));
	out("%s: read after peer abort -> %zd %s", tag, r, ename(r < 0 ? errno : 0));
	r = read(fd, buf, sizeof(buf));
	out("%s: read again -> %zd %s", tag, r, ename(r < 0 ? errno : 0));
	close(fd);
}

static volatile sig_atomic_t sigpipes;
static void count_sigpipe(int sig)
{
	(void)sig;
	sigpipes++;
}

static const char *revents_name(short r)
{
	static char s[64];

	/* POLLERR left out: the bridge cannot raise it (docs/SHIM.md, Limits) */
	snprintf(s, sizeof(s), "%s%s%s", r & POLLIN ? "IN " : "", r & POLLOUT ? "OUT " : "",
		 r & POLLHUP ? "HUP" : "");
	return s;
}

/* TCP after a RST: the first write says ECONNRESET without a signal,
 * later writes EPIPE with SIGPIPE (unless MSG_NOSIGNAL). */
static void t_abort_then_write(int family, const char *tag)
{
	int fd = open_to(family, port, "rst", tag);
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };
	ssize_t r;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	wait_fd(fd, POLLIN, WAIT_MS);
	poll(&p, 1, 0);
	out("%s: poll after peer abort -> %s", tag, revents_name(p.revents));
	sigpipes = 0;
	signal(SIGPIPE, count_sigpipe);
	r = write(fd, "x", 1);
	out("%s: first write -> %zd %s, SIGPIPE %d", tag, r, ename(r < 0 ? errno : 0), (int)sigpipes);
	r = write(fd, "x", 1);
	out("%s: second write -> %zd %s, SIGPIPE %d", tag, r, ename(r < 0 ? errno : 0), (int)sigpipes);
	r = send(fd, "x", 1, MSG_NOSIGNAL);
	out("%s: send MSG_NOSIGNAL -> %zd %s, SIGPIPE %d", tag, r, ename(r < 0 ? errno : 0),
	    (int)sigpipes);
	signal(SIGPIPE, SIG_IGN);
	r = read(fd, &p, 1);
	out("%s: then read -> %zd %s", tag, r, ename(r < 0 ? errno : 0));
	close(fd);
}

/* What a read in this process says after the peer's abort. */
static int read_after_abort(int fd)
{
	char c;
	ssize_t r;

	wait_fd(fd, POLLIN, WAIT_MS);
	r = read(fd, &c, 1);
	return r < 0 && errno == ECONNRESET ? 0 : r == 0 ? 1 : 2;
}

/* The peer's abort reaches a forked child (or an exec'd image) holding the
 * stream, as the kernel's RST reaches every process sharing a socket. */
static void t_abort_in_child(int family, const char *tag, int exec)
{
	static const char *seen[] = { "ECONNRESET", "EOF", "other" };
	int fd = open_to(family, port, "rst", tag), st = 0;
	char c, num[16];
	ssize_t r;
	pid_t pid;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	pid = fork();
	if (pid == 0) {
		if (exec) {
			snprintf(num, sizeof(num), "%d", fd);
			execl("/proc/self/exe", "matrix", "abort-child", num, (char *)NULL);
			_exit(127);
		}
		_exit(read_after_abort(fd));
	}
	waitpid(pid, &st, 0);
	st = WIFEXITED(st) && WEXITSTATUS(st) < 3 ? WEXITSTATUS(st) : 2;
	out("%s: child's read after peer abort -> %s", tag, seen[st]);
	r = read(fd, &c, 1);
	out("%s: then the parent's read -> %zd %s", tag, r, ename(r < 0 ? errno : 0));
	close(fd);
}

static void t_abort_to_peer(int family, const char *tag, const char *cmd)
{
	int fd = open_to(family, port, cmd, tag);
	struct linger lg = { 1, 0 };
	char buf[8];

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	/* wait for the server's "ready" so it is reading when we abort */
	read_n(fd, buf, 6);
	out("%s: SO_LINGER {1,0} -> %d", tag, setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
	out("%s: close -> %d", tag, close(fd));
}

static void t_fork(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag), st = 0;
	pid_t pid;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	pid = fork();
	if (pid == 0)
		_exit(strcmp(echo_ok(fd, "from the child\n"), "ok") ? 1 : 0);
	waitpid(pid, &st, 0);
	out("%s: child used the stream: %s", tag, WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "failed");
	out("%s: parent uses it after: %s", tag, echo_ok(fd, "from the parent\n"));
	close(fd);
}

static void t_fork_new(int family, const char *tag)
{
	int st = 0, mine = open_to(family, port, "echo", tag);
	pid_t pid;

	/* The parent's engine is up (it has a stream) when the child forks. */
	out("%s: parent stream before fork: %s", tag, mine < 0 ? "connect failed" : echo_ok(mine, "p1\n"));
	pid = fork();
	if (pid == 0) {
		int fd = open_to(family, port, "echo", tag);

		_exit(fd < 0 ? 2 : strcmp(echo_ok(fd, "new in child\n"), "ok") ? 1 : 0);
	}
	waitpid(pid, &st, 0);
	out("%s: child opened its own stream: %s", tag,
	    WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "failed");
	out("%s: parent stream after the child's: %s", tag, mine < 0 ? "none" : echo_ok(mine, "p2\n"));
	if (mine >= 0)
		close(mine);
}

static void t_exec(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag), st = 0;
	pid_t pid;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	pid = fork();
	if (pid == 0) {
		char num[16];

		snprintf(num, sizeof(num), "%d", fd);
		execl("/proc/self/exe", "matrix", "exec-child", num, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	out("%s: exec'd child saw a TCP socket and used the inherited stream: %s", tag,
	    WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "failed");
	out("%s: parent uses it after: %s", tag, echo_ok(fd, "after exec\n"));
	close(fd);
}

static void t_dup(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag), d1, d2, d3;
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	d1 = dup(fd);
	close(fd);
	out("%s: dup then close original: %s", tag, echo_ok(d1, "dup\n"));
	d2 = dup2(d1, 200);
	close(d1);
	out("%s: dup2 -> %d: %s", tag, d2, echo_ok(d2, "dup2\n"));
	d3 = dup3(d2, 201, O_CLOEXEC);
	out("%s: dup3 -> %d: %s", tag, d3, echo_ok(d3, "dup3\n"));
	out("%s: getpeername on the dup3 -> %d", tag, getpeername(d3, (struct sockaddr *)&a, &al));
	out("%s: close_range(200,200) -> %d", tag, close_range(200, 200, 0));
	out("%s: survivor still works: %s", tag, echo_ok(d3, "survivor\n"));
	close(d3);
}

static void t_closefrom(int family, const char *tag)
{
	int keep = open_to(family, port, "echo", tag), fd;

	/* A program that sweeps every fd above stderr, as ssh does. */
	if (keep >= 0)
		close(keep);
	closefrom(3);
	fd = open_to(family, port, "echo", tag);
	out("%s: new stream after closefrom(3): %s", tag, fd < 0 ? "connect failed" : echo_ok(fd, "swept\n"));
	if (fd >= 0)
		close(fd);
	close_range(3, ~0U, 0);
	fd = open_to(family, port, "echo", tag);
	out("%s: new stream after close_range(3, ~0): %s", tag,
	    fd < 0 ? "connect failed" : echo_ok(fd, "swept\n"));
	if (fd >= 0)
		close(fd);
}

static void t_stdio(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag);
	FILE *f;
	char line[64] = "";

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	f = fdopen(fd, "r+");
	fprintf(f, "stdio line %d\n", 42);
	fflush(f);
	if (!fgets(line, sizeof(line), f))
		strcpy(line, "none\n");
	line[strcspn(line, "\n")] = 0;
	out("%s: fgets -> %s", tag, line);
	out("%s: FIONREAD after echo %d", tag, (write_all(fd, "0123456789", 10), wait_fionread(fd, 10)));
	fclose(f);
}

/* A stream closed where no hook sees it (a raw close system call, as
 * libc's internals do), its fd number then reused: writes must reach the
 * new file or socket as if the preload were not there, signals included. */
static void t_stale(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag), sv[2], reused;
	char path[] = "/tmp/matrix-stale-XXXXXX", back[16] = "";
	ssize_t r;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	syscall(SYS_close, fd);
	reused = mkstemp(path);
	if (reused != fd) {
		out("%s: fd not reused (%d, %d)", tag, fd, reused);
		close(reused);
		unlink(path);
		return;
	}
	r = write(fd, "file", 4);
	lseek(fd, 0, SEEK_SET);
	out("%s: write to the reused fd (a file) -> %zd, reads back %zd", tag, r, read(fd, back, sizeof(back)));
	close(fd);
	unlink(path);

	fd = open_to(family, port, "echo", tag);
	syscall(SYS_close, fd);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || (sv[0] != fd && sv[1] != fd)) {
		out("%s: fd not reused by the socket pair", tag);
		return;
	}
	close(sv[0] == fd ? sv[1] : sv[0]);
	sigpipes = 0;
	signal(SIGPIPE, count_sigpipe);
	r = write(fd, "x", 1);
	out("%s: write to the reused fd (a socket, peer gone) -> %zd %s, SIGPIPE %d", tag, r,
	    ename(r < 0 ? errno : 0), (int)sigpipes);
	signal(SIGPIPE, SIG_IGN);
	close(fd);
}

static void t_bulk(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag), fl, pfd[2];
	char path[] = "/tmp/matrix-bulk-XXXXXX";
	int tf = mkstemp(path);
	static unsigned char data[BULK_BYTES], back[BULK_BYTES];
	off_t off = 0;
	size_t got = 0;
	int ok = 1;

	if (fd < 0 || tf < 0) {
		out("%s: setup failed", tag);
		return;
	}
	unlink(path);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	write_all(tf, data, sizeof(data));
	fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	if (pipe(pfd))
		return;
	/* sendfile out, splice back in, interleaved so neither side stalls */
	while ((off < (off_t)sizeof(data) || got < sizeof(back)) && ok) {
		struct pollfd p = { .fd = fd, .events = POLLIN | (off < (off_t)sizeof(data) ? POLLOUT : 0) };

		if (poll(&p, 1, WAIT_MS) <= 0) {
			if (getenv("MATRIX_DEBUG"))
				fprintf(stderr, "bulk: stalled at out=%ld back=%zu\n", (long)off, got);
			ok = 0;
			break;
		}
		if ((p.revents & POLLOUT) && off < (off_t)sizeof(data)) {
			ssize_t s = sendfile(fd, tf, &off, sizeof(data) - (size_t)off);

			if (s < 0 && errno != EAGAIN) {
				if (getenv("MATRIX_DEBUG"))
					fprintf(stderr, "sendfile -> %s at %ld\n", strerror(errno), (long)off);
				ok = 0;
			}
		}
		if (p.revents & POLLIN) {
			ssize_t s = splice(fd, NULL, pfd[1], NULL, 65536, SPLICE_F_NONBLOCK);

			if (s > 0) {
				ssize_t r = read(pfd[0], back + got, (size_t)s);

				got += r > 0 ? (size_t)r : 0;
			} else if (s == 0 || (s < 0 && errno != EAGAIN)) {
				if (getenv("MATRIX_DEBUG"))
					fprintf(stderr, "splice -> %zd %s at %zu\n", s, strerror(errno), got);
				ok = 0;
			}
		}
	}
	out("%s: sendfile %d MiB out, splice back: %s", tag, BULK_BYTES >> 20,
	    ok && got == sizeof(back) && !memcmp(data, back, sizeof(back)) ? "equal" : "DIFFERENT");
	close(pfd[0]);
	close(pfd[1]);
	close(tf);
	close(fd);
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void *late_writer(void *arg)
{
	int fd = *(int *)arg;

	usleep(300000);
	write_all(fd, "late\n", 5);
	return NULL;
}

static void t_threads_eintr(int family, const char *tag)
{
	int fd = open_to(family, port, "echo", tag), e;
	struct sigaction sa = { .sa_handler = on_alarm }; /* no SA_RESTART */
	char buf[8];
	ssize_t r;
	pthread_t t;

	if (fd < 0) {
		out("%s: connect failed", tag);
		return;
	}
	sigaction(SIGALRM, &sa, NULL);
	ualarm(100000, 0);
	r = read(fd, buf, sizeof(buf));
	e = errno;
	out("%s: blocked read interrupted -> %zd %s", tag, r, ename(r < 0 ? e : 0));
	pthread_create(&t, NULL, late_writer, &fd);
	r = read_n(fd, buf, 5) ? -1 : 5;
	pthread_join(t, NULL);
	out("%s: read while another thread writes -> %zd", tag, r);
	close(fd);
}

/* Successful calls leave errno alone, as libc's do. */
static void t_errno(int family, const char *tag)
{
	struct sockaddr_storage ss, a;
	socklen_t len, al = sizeof(a), l = sizeof(int);
	int fd, v = 1, d;
	const char *bad = NULL;
	char line[64], buf[8];

#define KEEP(call, name)                                       \
	do {                                                   \
		errno = EDOM;                                  \
		if ((call) < 0 || errno != EDOM)               \
			bad = bad ? bad : name;                \
	} while (0)
	resolve(family, family == AF_INET ? host4 : host6, port, &ss, &len);
	fd = socket(family, SOCK_STREAM, 0);
	KEEP(connect(fd, (struct sockaddr *)&ss, len), "connect");
	snprintf(line, sizeof(line), "echo %s\n", tag);
	KEEP(write(fd, line, strlen(line)), "write");
	KEEP(write(fd, "e", 1), "write");
	KEEP(read_n(fd, buf, 1), "read");
	KEEP(getpeername(fd, (struct sockaddr *)&a, &al), "getpeername");
	al = sizeof(a);
	KEEP(getsockname(fd, (struct sockaddr *)&a, &al), "getsockname");
	KEEP(getsockopt(fd, SOL_SOCKET, SO_ERROR, &v, &l), "getsockopt");
	KEEP(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof(v)), "setsockopt");
	KEEP(d = dup(fd), "dup");
	KEEP(close(d), "close(dup)");
	KEEP(shutdown(fd, SHUT_WR), "shutdown");
	KEEP(close(fd), "close");
#undef KEEP
	out("%s: errno untouched by successful calls: %s", tag, bad ? bad : "yes");
}

static int client(void)
{
	static const int fams[] = { AF_INET, AF_INET6 };

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < 2; i++) {
		int f = fams[i];
		const char *v = f == AF_INET ? "v4" : "v6";
		char tag[64];

#define T(name) (snprintf(tag, sizeof(tag), "%s-%s", name, v), tag)
		t_identity(f, T("identity"));
		t_refused(f, T("refused"));
		t_nonblocking(f, T("nonblocking"), 0);
		t_nonblocking(f, T("nonblocking-epoll-first"), 1);
		t_nonblocking(f, T("nonblocking-epoll-dup"), 2);
	}
	t_pollers(AF_INET, "pollers");
	t_epoll(AF_INET, "epoll", 0, "LT");
	t_epoll(AF_INET, "epoll", EPOLLET, "ET");
	t_epoll(AF_INET, "epoll", EPOLLONESHOT, "ONESHOT");
	t_halfclose(AF_INET, "halfclose");
	t_abort_from_peer(AF_INET, "abort-from-peer");
	t_abort_to_peer(AF_INET, "abort-to-peer", "expect-rst");
	t_abort_to_peer(AF_INET, "abort-to-peer-write", "expect-rst-write");
	t_abort_then_write(AF_INET, "abort-then-write");
	t_abort_in_child(AF_INET, "abort-in-child", 0);
	t_abort_in_child(AF_INET, "abort-in-exec", 1);
	t_fork(AF_INET, "fork");
	t_exec(AF_INET, "exec");
	t_dup(AF_INET, "dup");
	t_stdio(AF_INET, "stdio");
	t_stale(AF_INET, "stale");
	t_bulk(AF_INET, "bulk");
	t_threads_eintr(AF_INET, "threads");
	t_errno(AF_INET, "errno");
	t_closefrom(AF_INET, "closefrom");
	out("done");
	return 0;
}

/* The exec'd image must still see a TCP socket with its peer's address. */
static int exec_child(int fd)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a), l = sizeof(int);
	int dom = 0;

	if (getpeername(fd, (struct sockaddr *)&a, &al) != 0 ||
	    (a.ss_family != AF_INET && a.ss_family != AF_INET6))
		return 3;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &l) != 0 || dom != a.ss_family)
		return 4;
	return strcmp(echo_ok(fd, "from the exec'd child\n"), "ok") ? 1 : 0;
}

/* ---------------------------------------------------------------- server */

static const char *expect_name;
static FILE *slog;
static pthread_mutex_t slog_lock = PTHREAD_MUTEX_INITIALIZER;

static void slogf(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&slog_lock);
	va_start(ap, fmt);
	vfprintf(slog, fmt, ap);
	va_end(ap);
	fputc('\n', slog);
	fflush(slog);
	pthread_mutex_unlock(&slog_lock);
}

struct conn_arg {
	int fd;
	struct sockaddr_storage from;
	socklen_t fromlen;
};

static int read_line(int fd, char *buf, size_t n)
{
	size_t i = 0;

	while (i + 1 < n) {
		if (!wait_fd(fd, POLLIN, WAIT_MS) || read(fd, buf + i, 1) != 1)
			return -1;
		if (buf[i++] == '\n')
			break;
	}
	buf[i] = 0;
	return (int)i;
}

static void *serve(void *arg)
{
	struct conn_arg *c = arg;
	char line[128], cmd[32] = "", test[64] = "", host[NI_MAXHOST], why[2 * NI_MAXHOST + 16] = "ok", buf[65536];
	struct sockaddr_storage peer;
	socklen_t pl = sizeof(peer);
	long total = 0;
	ssize_t r;
	int fd = c->fd;

	if (read_line(fd, line, sizeof(line)) < 0 || sscanf(line, "%31s %63s", cmd, test) != 2) {
		close(fd); /* refused/closefrom probes send nothing */
		free(c);
		return NULL;
	}
	getpeername(fd, (struct sockaddr *)&peer, &pl);
	int same = pl == c->fromlen && !memcmp(&peer, &c->from, pl);
	int named = getnameinfo((struct sockaddr *)&c->from, c->fromlen, host, sizeof(host), NULL, 0,
				NI_NAMEREQD) == 0;
	int reverse_ok = !strcmp(expect_name, "-") || (named && !strcmp(host, expect_name));

	if (!reverse_ok) {
		char num[NI_MAXHOST] = "?";

		getnameinfo((struct sockaddr *)&c->from, c->fromlen, num, sizeof(num), NULL, 0,
			    NI_NUMERICHOST);
		snprintf(why, sizeof(why), "%s (for %s)", named ? host : "none", num);
	}

	slogf("%s %s: accept address equals getpeername: %s, reverse name: %s", test, cmd,
	      same ? "yes" : "no", why);
	if (!strcmp(cmd, "echo")) {
		while ((r = read(fd, buf, sizeof(buf))) > 0) {
			if (write_all(fd, buf, (size_t)r))
				break;
			total += r;
		}
		(void)total; /* the amount depends on the test, not logged */
	} else if (!strcmp(cmd, "count")) {
		while ((r = read(fd, buf, sizeof(buf))) > 0)
			total += r;
		snprintf(line, sizeof(line), "count=%02ld\n", total);
		write_all(fd, line, strlen(line));
		slogf("%s %s: read %ld bytes then EOF", test, cmd, total);
	} else if (!strcmp(cmd, "rst")) {
		struct linger lg = { 1, 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (!strcmp(cmd, "expect-rst")) {
		write_all(fd, "ready\n", 6);
		wait_fd(fd, POLLIN, WAIT_MS);
		r = read(fd, buf, sizeof(buf));
		slogf("%s %s: read after client abort -> %zd %s", test, cmd, r, ename(r < 0 ? errno : 0));
	} else if (!strcmp(cmd, "expect-rst-write")) {
		/* The accepting side writes first after the abort: ECONNRESET
		 * once, then EPIPE (SIGPIPE is ignored in the server). */
		write_all(fd, "ready\n", 6);
		wait_fd(fd, POLLIN, WAIT_MS);
		r = write(fd, "x", 1);
		slogf("%s %s: first write after client abort -> %zd %s", test, cmd, r,
		      ename(r < 0 ? errno : 0));
		r = write(fd, "x", 1);
		slogf("%s %s: second write -> %zd %s", test, cmd, r, ename(r < 0 ? errno : 0));
	}
	close(fd);
	free(c);
	return NULL;
}

static int server(int p, const char *logpath)
{
	int ls = socket(AF_INET6, SOCK_STREAM, 0), one = 1, zero = 0;
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)p) };

	slog = fopen(logpath, "w");
	if (!slog || ls < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 64)) {
		perror("matrix server: bind/listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		struct conn_arg *c = calloc(1, sizeof(*c));
		pthread_t t;

		c->fromlen = sizeof(c->from);
		c->fd = accept(ls, (struct sockaddr *)&c->from, &c->fromlen);
		if (c->fd < 0) {
			free(c);
			continue;
		}
		pthread_create(&t, NULL, serve, c);
		pthread_detach(t);
	}
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "server")) {
		expect_name = argv[3];
		return server(atoi(argv[2]), argv[4]);
	}
	if (argc == 6 && !strcmp(argv[1], "client")) {
		host4 = argv[2];
		host6 = argv[3];
		port = atoi(argv[4]);
		closed_port = atoi(argv[5]);
		return client();
	}
	if (argc == 3 && !strcmp(argv[1], "exec-child"))
		return exec_child(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "abort-child"))
		return read_after_abort(atoi(argv[2]));
	/* Apart: a child's own engine has the parent's identity, which the
	 * peer must tell apart from the parent's (several engines, one key). */
	if (argc == 4 && !strcmp(argv[1], "fork-new")) {
		host4 = host6 = argv[2];
		port = atoi(argv[3]);
		t_fork_new(AF_INET, "fork-new");
		return 0;
	}
	fprintf(stderr, "usage: matrix server PORT EXPECT_NAME LOG | client HOST4 HOST6 PORT CLOSED\n");
	return 2;
}
