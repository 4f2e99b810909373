/*
 * engine_bridge.c — moves bytes between a transport stream and its local fd.
 *
 * Backpressure runs end to end: when conn will not take more, we stop
 * reading the fd (the application's writes then block in the kernel);
 * when the fd will not take more, we stop reading from conn (its receive
 * window then closes and the peer stops sending).  Bytes in flight between
 * the two sit in a per-bridge remainder buffer that exists only while
 * something is actually held back, so an idle stream holds no buffers.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "log.h"

/* Reads per fd per wake-up, so one busy stream cannot starve the rest. */
#define BRIDGE_READS_PER_PASS 8


struct bridge *bridge_new(struct srm_engine *e, struct peer *p, uint64_t stream_id, int fd)
{
	struct bridge *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->tag.kind = EV_BRIDGE;
	b->handle = e->next_handle++;
	b->peer = p;
	b->stream_id = stream_id;
	b->fd = fd;
	struct epoll_event ev = { .events = 0, .data.ptr = &b->tag };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(b);
		return NULL;
	}
	HASH_ADD(hh, e->bridges, handle, sizeof(b->handle), b);
	HASH_ADD(hh_peer, p->bridges, stream_id, sizeof(b->stream_id), b);
	return b;
}

void bridge_free(struct srm_engine *e, struct bridge *b)
{
	HASH_DELETE(hh, e->bridges, b);
	HASH_DELETE(hh_peer, b->peer->bridges, b);
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, b->fd, NULL);
	engine_fd_close(e, b->fd);
	free(b->in_buf);
	free(b->out_buf);
	b->in_buf = b->out_buf = NULL;
	b->dead = true;
	b->next_dead = e->graveyard;
	e->graveyard = b;
}

void bridge_reap(struct srm_engine *e)
{
	while (e->graveyard) {
		struct bridge *b = e->graveyard;
		e->graveyard = b->next_dead;
		free(b);
	}
}

static void update_interest(struct srm_engine *e, struct bridge *b)
{
	uint32_t ev = 0;
	if (b->tcp_connecting)
		ev = EPOLLOUT;
	else if (b->state == 0) {
		if (!b->fd_eof && b->in_len == b->in_off)
			ev |= EPOLLIN;
		if (b->out_len != b->out_off)
			ev |= EPOLLOUT;
	}
	engine_epoll_set(e, b, ev);
}

/* Keep what the other side did not take, for later. */
static int hold(uint8_t **buf, size_t *len, size_t *off, const uint8_t *data, size_t n)
{
	if (!*buf && !(*buf = malloc(BRIDGE_CHUNK)))
		return SRM_ERR_NOMEM;
	memcpy(*buf, data, n);
	*len = n;
	*off = 0;
	return 0;
}

static void release_if_empty(uint8_t **buf, size_t *len, size_t *off)
{
	if (*off == *len) {
		free(*buf);
		*buf = NULL;
		*len = *off = 0;
	}
}

/* Both directions finished: the stream is done, the fd can go. */
static void maybe_finish(struct srm_engine *e, struct bridge *b)
{
	if (!b->fd_eof || !b->wr_shut || b->out_len != b->out_off)
		return;
	if (b->peer->conn)
		conn_stream_release(b->peer->conn, b->stream_id);
	bridge_free(e, b);
}

static int reset_error(const struct bridge *b, uint32_t reason)
{
	bool opening = b->state == SRM_ERR_AGAIN;
	switch (reason) {
	case RESET_REFUSED:
		return SRM_ERR_REFUSED;
	case RESET_TIMEOUT:
		/* An open that timed out without ever getting a session
		 * never reached the host: EHOSTUNREACH, not ETIMEDOUT. */
		return opening && !session_established(b->peer->session) ? SRM_ERR_UNREACHABLE
									 : SRM_ERR_TIMEOUT;
	default:
		return opening ? SRM_ERR_REFUSED : SRM_ERR_RESET;
	}
}

/* Discard the filler the caller wrote to hold POLLOUT low while opening. */
static void drain_prefill(struct srm_engine *e, struct bridge *b)
{
	while (b->prefill) {
		size_t want = b->prefill < sizeof(e->scratch) ? b->prefill : sizeof(e->scratch);
		ssize_t n = sys_recv(b->fd, e->scratch, want, MSG_DONTWAIT);
		if (n <= 0)
			break;
		b->prefill -= (size_t)n;
	}
}

void bridge_fail(struct srm_engine *e, struct bridge *b, int error, bool send_reset)
{
	struct conn *c = b->peer->conn;
	if (error == SRM_ERR_UNREACHABLE && b->state == SRM_ERR_AGAIN && !b->listen_port)
		engine_peer_unreachable(e, b->peer, clock_now_ms());
	if (c) {
		if (send_reset)
			conn_stream_reset(c, b->stream_id, RESET_ABORTED);
		conn_stream_release(c, b->stream_id);
	}
	/* Recorded first: the application may look as soon as it sees EOF. */
	engine_remember_end(e, b->handle, error);
	if (b->is_tcp) {
		/* A real RST towards the local TCP end, like the peer's. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		sys_setsockopt(b->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	} else if (!b->prefill) {
		shutdown(b->fd, SHUT_RDWR);
	}
	/* A failed open keeps its filler unread: closing an AF_UNIX socket
	 * with unread bytes sets ECONNRESET on the other end, so the
	 * application's poll shows POLLOUT|POLLERR|POLLHUP at once, as for a
	 * refused TCP connect. */
	bridge_free(e, b);
	pthread_cond_broadcast(&e->cond);
}

/* fd -> conn */
static void pump_in(struct srm_engine *e, struct bridge *b)
{
	struct conn *c = b->peer->conn;
	if (!c || b->state != 0 || b->fd_eof)
		return;
	if (b->in_len != b->in_off) {
		ssize_t w = conn_stream_write(c, b->stream_id, b->in_buf + b->in_off, b->in_len - b->in_off);
		if (w > 0)
			b->in_off += (size_t)w;
		if (b->in_off != b->in_len) {
			update_interest(e, b); /* still full; WRITABLE brings us back */
			return;
		}
		release_if_empty(&b->in_buf, &b->in_len, &b->in_off);
	}
	for (int i = 0; i < BRIDGE_READS_PER_PASS; i++) {
		ssize_t n = sys_recv(b->fd, e->scratch, sizeof(e->scratch), MSG_DONTWAIT);
		if (n == 0) {
			b->fd_eof = true;
			conn_stream_shutdown(c, b->stream_id);
			break;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			/* The local side aborted (e.g. RST from a TCP app). */
			bridge_fail(e, b, SRM_ERR_RESET, true);
			return;
		}
		ssize_t w = conn_stream_write(c, b->stream_id, e->scratch, (size_t)n);
		if (w < 0) {
			bridge_fail(e, b, SRM_ERR_RESET, false);
			return;
		}
		if (w < n) {
			if (hold(&b->in_buf, &b->in_len, &b->in_off, e->scratch + w, (size_t)(n - w)) < 0) {
				bridge_fail(e, b, SRM_ERR_NOMEM, true);
				return;
			}
			break;
		}
		/* A short read emptied the socket for now: epoll is
		 * level-triggered and reports what comes next, so a request
		 * costs one recv() instead of two. */
		if ((size_t)n < sizeof(e->scratch))
			break;
	}
	update_interest(e, b);
	maybe_finish(e, b);
}

/* Write held bytes to the fd.  Returns 1 if all went, 0 if the fd is
 * full, -1 if the bridge failed (and is gone). */
static int flush_out(struct srm_engine *e, struct bridge *b)
{
	while (b->out_off != b->out_len) {
		ssize_t w = sys_send(b->fd, b->out_buf + b->out_off, b->out_len - b->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			/* The application closed its end: like TCP, data
			 * arriving for a closed socket resets the stream. */
			bridge_fail(e, b, SRM_ERR_RESET, true);
			return -1;
		}
		b->out_off += (size_t)w;
		if (b->is_tcp)
			b->tcp_written += (uint64_t)w;
	}
	release_if_empty(&b->out_buf, &b->out_len, &b->out_off);
	return 1;
}

/* conn -> fd */
static void pump_out(struct srm_engine *e, struct bridge *b)
{
	struct conn *c = b->peer->conn;
	if (!c || b->state != 0)
		return;
	int rc = flush_out(e, b);
	if (rc < 0)
		return;
	while (rc == 1) {
		ssize_t n = conn_stream_read(c, b->stream_id, e->scratch, sizeof(e->scratch));
		if (n <= 0)
			break;
		ssize_t w = sys_send(b->fd, e->scratch, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR) {
			bridge_fail(e, b, SRM_ERR_RESET, true);
			return;
		}
		if (w < 0)
			w = 0;
		if (b->is_tcp)
			b->tcp_written += (uint64_t)w;
		if (w < n) {
			if (hold(&b->out_buf, &b->out_len, &b->out_off, e->scratch + w, (size_t)(n - w)) < 0) {
				bridge_fail(e, b, SRM_ERR_NOMEM, true);
				return;
			}
			rc = 0;
		}
	}
	if (rc == 1 && b->peer_fin && !b->wr_shut) {
		shutdown(b->fd, SHUT_WR);
		b->wr_shut = true;
	}
	update_interest(e, b);
	maybe_finish(e, b);
}

int bridge_hand_over(struct srm_engine *e, struct bridge *b, int fd, const uint8_t *front, size_t n)
{
	size_t rest = b->out_len - b->out_off;
	uint8_t *buf = NULL;
	if (n) {
		if (!(buf = malloc(n + rest)))
			return SRM_ERR_NOMEM;
		memcpy(buf, front, n);
		if (rest)
			memcpy(buf + n, b->out_buf + b->out_off, rest);
	}
	struct epoll_event ev = { .events = 0, .data.ptr = &b->tag };
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		free(buf);
		return SRM_ERR_IO;
	}
	if (!b->parked)
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, b->fd, NULL);
	engine_fd_close(e, b->fd);
	if (buf) {
		free(b->out_buf);
		b->out_buf = buf;
		b->out_len = n + rest;
		b->out_off = 0;
	}
	b->fd = fd;
	b->is_tcp = false;
	b->tcp_written = 0;
	b->events = 0;
	b->parked = false;
	b->wr_shut = false; /* a FIN already sent on TCP is sent again on the pair */
	pump_out(e, b);
	return 0;
}

/* The application is exiting: take what it wrote, then end our sending
 * side.  True once all of it is acknowledged (or the stream is over). */
bool bridge_drain(struct srm_engine *e, struct bridge *b)
{
	struct conn *c = b->peer->conn;
	if (b->state != 0 || !c)
		return true;
	/* A peer that stopped answering will not acknowledge anything: do
	 * not hold the exiting program (and its UDP port) for it. */
	if (!session_established(b->peer->session) ||
	    path_silent(b->peer->paths, clock_now_us() / 1000))
		return true;
	uint64_t handle = b->handle;
	if (!b->fd_eof) {
		pump_in(e, b);
		HASH_FIND(hh, e->bridges, &handle, sizeof(handle), b);
		if (!b)
			return true;
		char probe;
		if (!b->fd_eof && b->in_len == b->in_off &&
		    sys_recv(b->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN) {
			b->fd_eof = true;
			conn_stream_shutdown(c, b->stream_id);
		}
	}
	uint64_t tx = 1;
	conn_stream_buffered(c, b->stream_id, &tx, NULL);
	return b->fd_eof && b->in_len == b->in_off && tx == 0;
}

static struct bridge *find(struct peer *p, uint64_t id)
{
	struct bridge *b;
	HASH_FIND(hh_peer, p->bridges, &id, sizeof(id), b);
	return b;
}

void bridge_on_fd(struct srm_engine *e, struct bridge *b, uint32_t events, uint64_t now_us)
{
	(void)now_us;
	if (b->tcp_connecting) {
		listen_tcp_connected(e, b);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR)) {
		if (b->state == SRM_ERR_AGAIN) {
			/* The application gave up while connecting. */
			bridge_fail(e, b, SRM_ERR_RESET, true);
			return;
		}
		if (b->fd_eof) {
			/* Its end is fully closed: nothing more to read, and the
			 * hang-up would fire forever.  Park until the peer's FIN
			 * (or its data, which then resets, as TCP does). */
			epoll_ctl(e->epfd, EPOLL_CTL_DEL, b->fd, NULL);
			b->parked = true;
			return;
		}
	}
	uint64_t handle = b->handle;
	if (events & EPOLLOUT)
		pump_out(e, b);
	/* pump_out may have freed the bridge. */
	HASH_FIND(hh, e->bridges, &handle, sizeof(handle), b);
	if (b && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		pump_in(e, b);
}

static void on_opened(struct srm_engine *e, struct bridge *b)
{
	drain_prefill(e, b);
	b->state = 0;
	pthread_cond_broadcast(&e->cond);
	uint64_t handle = b->handle;
	pump_out(e, b);
	HASH_FIND(hh, e->bridges, &handle, sizeof(handle), b);
	if (b)
		update_interest(e, b);
}

void bridge_conn_events(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	(void)now_us;
	struct conn_event ev;
	while (p->conn && conn_poll_event(p->conn, &ev)) {
		if (ev.type == CONN_EV_DEAD || ev.type == CONN_EV_CLOSED) {
			bool dead = ev.type == CONN_EV_DEAD;
			if (dead)
				LOG_WARN(p->cfg.name, "peer stopped answering: streams time out");
			else
				LOG_INFO(p->cfg.name, "peer closed the session");
			/* The peer dropped its keys (it stopped, or a reload
			 * removed or re-keyed us): ours go too, at the next pass
			 * (engine.c), so the next stream handshakes afresh. */
			if (!dead) {
				p->closed_by_peer = true;
				p->closed_index = p->rx_last_index;
			}
			engine_peer_drop_conn(e, p, dead ? SRM_ERR_TIMEOUT : SRM_ERR_RESET);
			return;
		}
		if (ev.type == CONN_EV_INCOMING) {
			listen_incoming(e, p, ev.stream, ev.port);
			continue;
		}
		struct bridge *b = find(p, ev.stream);
		if (!b)
			continue;
		switch (ev.type) {
		case CONN_EV_OPENED:
			on_opened(e, b);
			break;
		case CONN_EV_READABLE:
			pump_out(e, b);
			break;
		case CONN_EV_WRITABLE:
			pump_in(e, b);
			break;
		case CONN_EV_FIN:
			b->peer_fin = true;
			pump_out(e, b);
			break;
		case CONN_EV_RESET:
			bridge_fail(e, b, reset_error(b, ev.reason), false);
			break;
		default:
			break;
		}
	}
}
