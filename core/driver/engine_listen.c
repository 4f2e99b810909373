/*
 * engine_listen.c — streams that peers open towards us.
 *
 * A port accepts streams only while something listens on it: either a
 * forwarding target (the engine connects to it by TCP, which is how a
 * preloaded server's own accept() and `srmudp serve` receive streams) or
 * an accept queue for native API users.  Anything else is refused, which
 * the opener sees as ECONNREFUSED.  So is a stream the access rule turns
 * away (srm_access_check: a loopback-bound listener that SRMUDP_EXPOSE
 * does not name, a peer SRMUDP_ALLOW does not let in): to the peer it is
 * a closed port.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"

static struct listener *find_listener(struct srm_engine *e, uint16_t port)
{
	struct listener *l;
	HASH_FIND(hh, e->listeners, &port, sizeof(port), l);
	return l;
}

/* Access refusals are worth a warning (a misconfiguration, or a peer
 * probing), but a listed peer can open streams at will: one line per
 * interval, with the count of those left out. */
#define REFUSE_LOG_INTERVAL_MS 10000

static void refuse_why(struct srm_engine *e, struct peer *p, uint64_t stream_id, uint16_t port,
		       enum srm_refusal why)
{
	int ok;

	e->stats.refused[why]++;
	e->peers[p->parent].refused[why]++;
	if (why == SRM_REFUSED_CLOSED) {
		LOG_INFO(p->cfg.name, "refused a stream to port %u: nothing listens there", port);
	} else if ((ok = log_ratelimit_ok(&e->refuse_log, clock_now_ms(), REFUSE_LOG_INTERVAL_MS))) {
		char more[48] = "";
		if (ok > 1)
			snprintf(more, sizeof(more), " (%d more refusals not logged)", ok - 1);
		LOG_WARN(p->cfg.name, "refused a stream to port %u: %s%s", port,
			 why == SRM_REFUSED_LOOPBACK
				 ? "it is bound to loopback and not in SRMUDP_EXPOSE"
				 : "SRMUDP_ALLOW does not let this peer reach it",
			 more);
	}
	conn_stream_reset(p->conn, stream_id, RESET_REFUSED);
}

static void refuse(struct srm_engine *e, struct peer *p, uint64_t stream_id, uint16_t port)
{
	refuse_why(e, p, stream_id, port, SRM_REFUSED_CLOSED);
}

static void accept_forward(struct srm_engine *e, struct listener *l, struct peer *p, uint64_t id)
{
	int fd = socket(l->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_stream_reset(p->conn, id, RESET_INTERNAL);
		return;
	}
	fd = engine_fd_adopt(e, fd);
	int rc = sys_connect(fd, (struct sockaddr *)&l->target, l->target_len);
	if (rc != 0 && errno != EINPROGRESS) {
		engine_fd_close(e, fd);
		refuse(e, p, id, l->port);
		return;
	}
	struct bridge *b = bridge_new(e, p, id, fd);
	if (!b) {
		engine_fd_close(e, fd);
		conn_stream_reset(p->conn, id, RESET_INTERNAL);
		return;
	}
	b->is_tcp = true;
	b->listen_port = l->port;
	b->state = SRM_ERR_AGAIN;
	socklen_t len = sizeof(b->tcp_local);
	sys_getsockname(fd, (struct sockaddr *)&b->tcp_local, &len);
	b->tcp_connecting = true;
	engine_epoll_set(e, b, EPOLLOUT);
}

void listen_tcp_connected(struct srm_engine *e, struct bridge *b)
{
	int err = 0;
	socklen_t len = sizeof(err);
	sys_getsockopt(b->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	b->tcp_connecting = false;
	struct conn *c = b->peer->conn;
	if (err || !c) {
		if (c)
			refuse(e, b->peer, b->stream_id, b->listen_port);
		engine_remember_end(e, b->handle, SRM_ERR_REFUSED);
		bridge_free(e, b);
		return;
	}
	conn_stream_accept(c, b->stream_id);
	b->state = 0;
	engine_epoll_set(e, b, EPOLLIN);
}

/* A forwarding target is a local listener: connect() says EINPROGRESS, yet
 * the kernel answers within microseconds.  Longer than this (a full
 * backlog), the answer goes in DATA as for any other stream. */
#define SETTLE_WAIT_MS 2

void listen_settle(struct srm_engine *e, struct peer *p, uint64_t stream_id)
{
	struct bridge *b;
	HASH_FIND(hh_peer, p->bridges, &stream_id, sizeof(stream_id), b);
	if (!b || !b->tcp_connecting)
		return;
	struct pollfd pfd = { .fd = b->fd, .events = POLLOUT };
	if (poll(&pfd, 1, SETTLE_WAIT_MS) == 1)
		listen_tcp_connected(e, b);
}

static void accept_queue(struct srm_engine *e, struct listener *l, struct peer *p, uint64_t id)
{
	int pair[2];
	if (l->queued == ACCEPT_BACKLOG ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
		refuse(e, p, id, l->port);
		return;
	}
	int mine = engine_fd_adopt(e, pair[1]);
	sys_fcntl(mine, F_SETFL, O_NONBLOCK);
	struct bridge *b = bridge_new(e, p, id, mine);
	if (!b) {
		sys_close(pair[0]);
		engine_fd_close(e, mine);
		conn_stream_reset(p->conn, id, RESET_INTERNAL);
		return;
	}
	b->listen_port = l->port;
	conn_stream_accept(p->conn, id);
	b->state = 0;
	engine_epoll_set(e, b, EPOLLIN);
	l->queue[l->queued++] = (struct accept_slot){ pair[0], p->parent };
	uint64_t one = 1;
	ssize_t n = sys_write(l->event_fd, &one, sizeof(one));
	(void)n;
}

void listen_incoming(struct srm_engine *e, struct peer *p, uint64_t stream_id, uint16_t port)
{
	struct listener *l = find_listener(e, port);
	enum srm_refusal why;
	if (!l)
		refuse(e, p, stream_id, port);
	else if ((why = srm_access_check(&e->cfg, p->cfg.name, port, l->loopback)) != SRM_REFUSED_NONE)
		refuse_why(e, p, stream_id, port, why);
	else if (l->forward)
		accept_forward(e, l, p, stream_id);
	else
		accept_queue(e, l, p, stream_id);
}

static void listener_free(struct srm_engine *e, struct listener *l)
{
	HASH_DELETE(hh, e->listeners, l);
	for (size_t i = 0; i < l->queued; i++)
		sys_close(l->queue[i].fd);
	engine_fd_close(e, l->event_fd);
	free(l);
}

void listen_free_all(struct srm_engine *e)
{
	struct listener *l, *tmp;
	HASH_ITER(hh, e->listeners, l, tmp)
		listener_free(e, l);
}

int srm_listen_flags(srm_engine *e, uint16_t port, const struct sockaddr *forward_to,
		     socklen_t forward_len, unsigned flags)
{
	bool handoff = flags & SRM_LISTEN_HANDOFF;

	if ((handoff && !forward_to) || (flags & ~(SRM_LISTEN_HANDOFF | SRM_LISTEN_LOOPBACK)))
		return SRM_ERR_INVALID;
	if (forward_to && (forward_len == 0 || forward_len > sizeof(struct sockaddr_storage)))
		return SRM_ERR_INVALID;
	pthread_mutex_lock(&e->lock);
	int rc;
	if (find_listener(e, port)) {
		rc = SRM_ERR_EXISTS;
		goto out;
	}
	struct listener *l = calloc(1, sizeof(*l));
	if (!l) {
		rc = SRM_ERR_NOMEM;
		goto out;
	}
	l->port = port;
	l->event_fd = -1;
	l->loopback = flags & SRM_LISTEN_LOOPBACK;
	if (forward_to) {
		l->forward = true;
		l->handoff = handoff;
		memcpy(&l->target, forward_to, forward_len);
		l->target_len = forward_len;
		rc = 0;
	} else {
		l->event_fd = engine_fd_adopt(e, eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC));
		if (l->event_fd < 0) {
			free(l);
			rc = SRM_ERR_IO;
			goto out;
		}
		rc = l->event_fd;
	}
	HASH_ADD(hh, e->listeners, port, sizeof(l->port), l);
out:
	pthread_mutex_unlock(&e->lock);
	return rc;
}

int srm_listen(srm_engine *e, uint16_t port, const struct sockaddr *forward_to, socklen_t forward_len)
{
	return srm_listen_flags(e, port, forward_to, forward_len, 0);
}

int srm_listen_handoff(srm_engine *e, uint16_t port, const struct sockaddr *forward_to,
		       socklen_t forward_len)
{
	return srm_listen_flags(e, port, forward_to, forward_len, SRM_LISTEN_HANDOFF);
}

int srm_unlisten(srm_engine *e, uint16_t port)
{
	pthread_mutex_lock(&e->lock);
	struct listener *l = find_listener(e, port);
	if (l)
		listener_free(e, l);
	pthread_mutex_unlock(&e->lock);
	return l ? 0 : SRM_ERR_NOTFOUND;
}

int srm_accept(srm_engine *e, uint16_t port, int *peer)
{
	pthread_mutex_lock(&e->lock);
	int rc = SRM_ERR_NOTFOUND;
	struct listener *l = find_listener(e, port);
	if (l && !l->forward) {
		rc = SRM_ERR_AGAIN;
		uint64_t v;
		if (l->queued && sys_read(l->event_fd, &v, sizeof(v)) == sizeof(v)) {
			rc = l->queue[0].fd;
			if (peer)
				*peer = l->queue[0].peer;
			memmove(&l->queue[0], &l->queue[1], --l->queued * sizeof(l->queue[0]));
		}
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* The forwarded stream whose TCP connection comes from local_src. */
static struct bridge *forwarded(struct srm_engine *e, const struct sockaddr *local_src, socklen_t len)
{
	if (!local_src || len < sizeof(struct sockaddr_in))
		return NULL;
	struct bridge *b, *tmp;
	HASH_ITER(hh, e->bridges, b, tmp)
		if (b->is_tcp && path_sockaddr_equal(&b->tcp_local, local_src))
			return b;
	return NULL;
}

int srm_forwarded_peer(srm_engine *e, const struct sockaddr *local_src, socklen_t len)
{
	pthread_mutex_lock(&e->lock);
	struct bridge *b = forwarded(e, local_src, len);
	int rc = b ? b->peer->parent : SRM_ERR_NOTFOUND;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* Bytes the engine wrote to a forwarded TCP connection are on their way to
 * its other end: on loopback they are there when send() returns, unless the
 * kernel deferred them under load.  A claim waits this long for them, then
 * gives up (the stream stays on TCP). */
#define CLAIM_WAIT_MS 50

static bool wait_queued(int fd, uint64_t n)
{
	for (int waited = 0;; waited++) {
		int queued = 0;
		if (ioctl(fd, FIONREAD, &queued) != 0)
			return false;
		if ((uint64_t)queued >= n)
			return true;
		if (waited == CLAIM_WAIT_MS)
			return false;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 1);
	}
}

int srm_forwarded_claim(srm_engine *e, const struct sockaddr *local_src, socklen_t len, int tcp_fd,
			uint64_t *stream)
{
	pthread_mutex_lock(&e->lock);
	int rc = SRM_ERR_NOTFOUND, pair[2] = { -1, -1 };
	uint8_t *front = NULL;
	struct bridge *b = forwarded(e, local_src, len);
	struct listener *l = b ? find_listener(e, b->listen_port) : NULL;
	if (!l || !l->handoff)
		goto out;
	if (b->tcp_connecting) {
		/* accept() saw the connection before the engine did.  The
		 * ACCEPT leaves from this thread: the engine thread may be
		 * asleep until its next timer (an ACK's delay, 25 ms). */
		struct peer *p = b->peer;
		listen_tcp_connected(e, b);
		engine_peer_push(e, p, clock_now_us());
		if (!(b = forwarded(e, local_src, len)))
			goto out;
	}
	rc = SRM_ERR_AGAIN;
	if (b->state != 0 || !wait_queued(tcp_fd, b->tcp_written))
		goto out;
	rc = SRM_ERR_NOMEM;
	size_t n = (size_t)b->tcp_written;
	if (n && !(front = malloc(n)))
		goto out;
	/* Copied, not taken, until nothing can fail: on failure the stream
	 * stays on TCP with every byte where it was. */
	rc = SRM_ERR_IO;
	if ((n && sys_recv(tcp_fd, front, n, MSG_PEEK | MSG_DONTWAIT) != (ssize_t)n) ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
		goto out;
	int mine = engine_fd_adopt(e, pair[1]);
	pair[1] = -1;
	sys_fcntl(mine, F_SETFL, O_NONBLOCK);
	*stream = b->handle;
	rc = bridge_hand_over(e, b, mine, front, n);
	if (rc < 0) {
		engine_fd_close(e, mine);
		goto out;
	}
	for (size_t got = 0; got < n;) {
		ssize_t r = sys_recv(tcp_fd, front, n - got, MSG_DONTWAIT);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	rc = pair[0];
out:
	if (rc < 0 && pair[0] >= 0)
		sys_close(pair[0]);
	if (pair[1] >= 0)
		sys_close(pair[1]);
	free(front);
	pthread_mutex_unlock(&e->lock);
	return rc;
}
