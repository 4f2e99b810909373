/*
 * rdv_ws.c — `srmudp rendezvous --ws-listen` and `srmudp gate --ws-listen`:
 * the rendezvous and relay server over WebSocket, for clients whose
 * network blocks UDP (rdv_ws.h).
 *
 * The protocol is core/protocol/ws.c's (sans-I/O); this file owns the
 * sockets, TLS (OpenSSL, non-blocking on the fd) and the limits that keep a public
 * TCP service up against strangers:
 *   - nothing is sent before a complete upgrade request but the HTTP
 *     answer (no amplification), and the request, TLS included, must be
 *     complete within HEADER_TIMEOUT_MS (slowloris);
 *   - a connection that sends nothing for IDLE_TIMEOUT_MS goes; the
 *     server pings one that was quiet for PING_INTERVAL_MS;
 *   - inbound bytes per connection are a token bucket (--ws-rate): over
 *     it, the connection is not read (TCP pushes back on the client);
 *   - connections are limited globally (--ws-max-clients) and per source
 *     (--ws-max-per-ip; IPv4 address or IPv6 /64, as ratelimit.c counts);
 *   - each connection's outgoing queue holds at most QUEUE_MAX bytes:
 *     over it, datagrams for it are dropped and counted (the end-to-end
 *     transport retransmits: this is the backpressure of a datagram relay);
 *   - memory for an idle connection is its struct, the kernel's socket
 *     and, with TLS, OpenSSL's state (buffers released when idle): input
 *     and queue buffers exist only while they hold bytes.
 *
 * A connection is freed only at the end of rdv_ws_event / rdv_ws_tick
 * (reap): a write error found while another connection's datagram is
 * being routed only marks it dead, so no frame ever runs on freed memory.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <uthash.h>

#include "rdv_ws.h"
#include "log.h"
#include "sys.h"
#include "ws.h"

#define WS_PATH "/srmudp"
/* The whole upgrade (TCP, TLS, HTTP head) within 10 s: a real client needs
 * a few round trips; a slowloris client holds a slot no longer. */
#define HEADER_TIMEOUT_MS 10000
/* Clients refresh their registration every 25 s (RDV_REFRESH_MS) and we
 * ping after 25 s of silence: 75 s is three missed chances. */
#define IDLE_TIMEOUT_MS 75000
/* Under the idle timeouts of proxies on the way (nginx proxy_read_timeout
 * defaults to 60 s). */
#define PING_INTERVAL_MS 25000
/* Bytes a connection's outgoing queue holds at most: a few hundred
 * datagrams, about a quarter second at the default relay rate. */
#define QUEUE_MAX (256 * 1024)
/* Control frames and HTTP answers may pass QUEUE_MAX by this much: a
 * close frame must still get out when relayed datagrams filled the queue. */
#define QUEUE_CONTROL_RESERVE 1024
/* The input buffer holds an HTTP head, or one frame (at most 14 + 2048
 * bytes) and the start of the next. */
#define IN_CAP WS_MAX_HEAD
/* Token bucket depth: max(rate, this). */
#define RATE_BURST_MIN (256 * 1024)
/* After a close decision, how long queued bytes (the HTTP answer, the
 * close frame) may take to leave. */
#define CLOSING_LINGER_MS 2000
/* Out of file descriptors: stop accepting this long (a level-triggered
 * listener would otherwise wake the loop without end). */
#define ACCEPT_BACKOFF_MS 100
#define ACCEPT_BATCH 64
/* Connection events a stranger causes: at most one line per 50 ms and
 * kind, with the count of those left out. */
#define LOG_EVERY_MS 50

enum conn_state { ST_TLS, ST_HEAD, ST_OPEN, ST_CLOSING };
static const char *const state_name[] = { "tls", "head", "open", "closing" };

#define IP_KEY_BYTES 9 /* family byte + IPv4 address or IPv6 /64 */
#define ADDR_KEY_BYTES 19 /* length byte + compact endpoint (rdv_endpoint_put) */

struct ip_count {
	uint8_t key[IP_KEY_BYTES];
	uint32_t n;
	UT_hash_handle hh;
};

struct conn {
	int fd;
	uint32_t slot;
	enum conn_state state;
	bool dead, paused, want_write, tls_broken, registered, has_pending;
	bool unflushed; /* in rdv_ws.unflushed: rdv_ws_send queued for it */
	SSL *ssl;
	struct rdv_endpoint peer; /* via RDV_VIA_WS */
	char text[64];		  /* peer for logs */
	uint8_t addr_key[ADDR_KEY_BYTES];
	UT_hash_handle hh; /* by addr_key */
	struct ip_count *ip;
	uint32_t events; /* registered with epoll */
	uint64_t created_ms, last_rx_ms, last_ping_ms, resume_ms, linger_ms, refill_ms;
	int64_t tokens;
	uint64_t bytes_in, bytes_out, drops;
	uint8_t *in;
	size_t in_len;
	uint8_t *q;
	size_t q_head, q_len, q_cap;
	uint8_t pub[RDV_KEY_BYTES], pending_pub[RDV_KEY_BYTES];
	char why[64]; /* why it closes, once decided */
	struct conn *next_dead;
};

struct listener {
	int fd;
	char text[80];
};

struct rdv_ws {
	struct rdv_ws_config cfg;
	struct rdv_server *srv;
	int epfd;
	SSL_CTX *tls;
	struct listener ls[RDV_WS_MAX_LISTEN];
	size_t nls;
	uint64_t accept_resume_ms; /* 0: accepting */
	struct conn **slots;
	uint32_t *free_slots;
	size_t nfree;
	uint32_t *unflushed; /* slots with frames for rdv_ws_flush */
	size_t nunflushed;
	struct conn *by_addr;
	struct ip_count *by_ip;
	struct conn *dead;
	uint64_t next_ms;
	struct rdv_ws_stats st;
	struct log_ratelimit log_conn, log_upgrade, log_close, log_refuse, log_drop;
};

/* ---- Logs ------------------------------------------------------------------ */

/* A connection event at info, at most one per LOG_EVERY_MS per kind. */
#define EVENT_LOG(rl, now, fmt, ...)                                                      \
	do {                                                                              \
		int n_ = log_enabled(SRM_LOG_INFO) ? log_ratelimit_ok((rl), (now), LOG_EVERY_MS) \
						   : 0;                                   \
		if (n_ > 1)                                                               \
			LOG_INFO(NULL, "ws: " fmt " (%d more suppressed)", __VA_ARGS__, n_ - 1); \
		else if (n_ == 1)                                                         \
			LOG_INFO(NULL, "ws: " fmt, __VA_ARGS__);                         \
	} while (0)

static const char *tls_error(void)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	ERR_clear_error();
	return r ? r : "connection closed";
}

/* ---- Keys of the two hash tables ------------------------------------------- */

static void addr_key(uint8_t key[ADDR_KEY_BYTES], const struct rdv_endpoint *ep)
{
	memset(key, 0, ADDR_KEY_BYTES);
	key[0] = (uint8_t)rdv_endpoint_put(key + 1, ADDR_KEY_BYTES - 1, ep);
}

static void ip_key(uint8_t key[IP_KEY_BYTES], const struct rdv_endpoint *ep)
{
	uint8_t c[ADDR_KEY_BYTES];

	addr_key(c, ep);
	memset(key, 0, IP_KEY_BYTES);
	key[0] = c[0];
	memcpy(key + 1, c + 1, c[0] == 6 ? 4 : 8);
}

/* ---- Connection lifetime ----------------------------------------------------- */

static void set_events(struct rdv_ws *ws, struct conn *c)
{
	uint32_t want = 0;

	if (c->dead)
		return;
	if (!c->paused && c->state != ST_CLOSING)
		want |= EPOLLIN;
	if (c->q_len > 0 || c->want_write)
		want |= EPOLLOUT;
	if (want == c->events)
		return;
	struct epoll_event ev = { .events = want, .data.u64 = RDV_WS_TAG + RDV_WS_MAX_LISTEN + c->slot };
	if (epoll_ctl(ws->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = want;
}

static void wake(struct rdv_ws *ws, uint64_t at)
{
	if (at < ws->next_ms)
		ws->next_ms = at;
}

/* Decide that c goes (the first reason given stays; NULL: the one set
 * before); reap frees it. */
static void conn_fail(struct rdv_ws *ws, struct conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why != NULL && c->why[0] == '\0')
		snprintf(c->why, sizeof(c->why), "%s", why);
	c->dead = true;
	c->next_dead = ws->dead;
	ws->dead = c;
}

/* Stop reading; go once the queue (HTTP answer, close frame) is out. */
static void conn_close_after_flush(struct rdv_ws *ws, struct conn *c, const char *why,
				   uint64_t now_ms)
{
	if (c->state == ST_CLOSING || c->dead)
		return;
	snprintf(c->why, sizeof(c->why), "%s", why);
	c->state = ST_CLOSING;
	c->linger_ms = now_ms + CLOSING_LINGER_MS;
	wake(ws, c->linger_ms);
}

static void conn_free(struct rdv_ws *ws, struct conn *c, uint64_t now_ms)
{
	EVENT_LOG(&ws->log_close, now_ms,
		  "%s closed: %s (after %.1f s; in %llu, out %llu bytes, %llu dropped)", c->text,
		  c->why, (double)(now_ms - c->created_ms) / 1000.0,
		  (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out,
		  (unsigned long long)c->drops);
	(void)epoll_ctl(ws->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->ssl != NULL) {
		if (c->state != ST_TLS && !c->tls_broken)
			(void)SSL_shutdown(c->ssl); /* close_notify, best effort */
		SSL_free(c->ssl);
		ERR_clear_error();
	}
	sys_close(c->fd);
	HASH_DEL(ws->by_addr, c);
	if (--c->ip->n == 0) {
		HASH_DEL(ws->by_ip, c->ip);
		free(c->ip);
	}
	ws->slots[c->slot] = NULL;
	ws->free_slots[ws->nfree++] = c->slot;
	ws->st.ws_clients--;
	free(c->in);
	free(c->q);
	free(c);
}

static void reap(struct rdv_ws *ws, uint64_t now_ms)
{
	while (ws->dead != NULL) {
		struct conn *c = ws->dead;
		ws->dead = c->next_dead;
		conn_free(ws, c, now_ms);
	}
}

/* ---- Bytes on the socket ----------------------------------------------------- */

/* > 0 bytes, 0 end of stream, -1 try later, -2 error. */
static ssize_t io_read(struct conn *c, uint8_t *p, size_t n)
{
	if (c->ssl == NULL) {
		ssize_t r = sys_recv(c->fd, p, n, 0);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
	}
	int r = SSL_read(c->ssl, p, (int)n);
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		return -1;
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		c->tls_broken = true;
		return r == 0 ? 0 : -2; /* 0: end of stream without close_notify */
	default:
		ERR_clear_error();
		c->tls_broken = true;
		return -2;
	}
}

static ssize_t io_write(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->ssl == NULL) {
		ssize_t r = sys_send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r >= 0)
			return r;
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -1 : -2;
	}
	int r = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
	if (r > 0)
		return r;
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_WRITE:
		c->want_write = true;
		return -1;
	case SSL_ERROR_WANT_READ:
		return -1;
	default:
		ERR_clear_error();
		c->tls_broken = true;
		return -2;
	}
}

static void flush(struct rdv_ws *ws, struct conn *c)
{
	if (c->dead)
		return;
	c->want_write = false;
	while (c->q_len > 0) {
		ssize_t r = io_write(c, c->q + c->q_head, c->q_len);
		if (r == -1)
			break;
		if (r < 0) {
			conn_fail(ws, c, "write error");
			return;
		}
		c->q_head += (size_t)r;
		c->q_len -= (size_t)r;
		c->bytes_out += (uint64_t)r;
		ws->st.ws_tx_bytes += (uint64_t)r;
	}
	if (c->q_len == 0) {
		free(c->q); /* an idle connection keeps no buffer */
		c->q = NULL;
		c->q_head = c->q_cap = 0;
		if (c->state == ST_CLOSING)
			conn_fail(ws, c, NULL);
	}
	set_events(ws, c);
}

/* Append n bytes unless the queue would pass limit.  0 or -1. */
static int enqueue(struct conn *c, const void *p, size_t n, size_t limit)
{
	if (c->q_len + n > limit)
		return -1;
	if (c->q_head + c->q_len + n > c->q_cap) {
		if (c->q_head > 0) {
			memmove(c->q, c->q + c->q_head, c->q_len);
			c->q_head = 0;
		}
		if (c->q_len + n > c->q_cap) {
			size_t cap = c->q_cap ? c->q_cap * 2 : 4096;
			while (cap < c->q_len + n)
				cap *= 2;
			if (cap > QUEUE_MAX + QUEUE_CONTROL_RESERVE)
				cap = QUEUE_MAX + QUEUE_CONTROL_RESERVE;
			uint8_t *q = realloc(c->q, cap);
			if (q == NULL)
				return -1;
			c->q = q;
			c->q_cap = cap;
		}
	}
	memcpy(c->q + c->q_head + c->q_len, p, n);
	c->q_len += n;
	return 0;
}

/* One server frame.  Binary frames obey QUEUE_MAX; control frames may use
 * the reserve.  0 or -1 (dropped). */
static int send_frame(struct rdv_ws *ws, struct conn *c, uint8_t op, const uint8_t *p, size_t n)
{
	uint8_t h[WS_FRAME_HEADER_MAX];
	size_t hl = ws_frame_header(h, op, n, NULL);
	size_t limit = op == WS_OP_BINARY ? QUEUE_MAX : QUEUE_MAX + QUEUE_CONTROL_RESERVE;

	if (c->q_len + hl + n > limit || enqueue(c, h, hl, limit) != 0)
		return -1;
	if (n > 0)
		(void)enqueue(c, p, n, limit); /* fits: checked with the header */
	ws->st.ws_tx_frames++;
	return 0;
}

static void send_close(struct rdv_ws *ws, struct conn *c, uint16_t code, const char *why,
		       uint64_t now_ms)
{
	uint8_t f[WS_CLOSE_FRAME_MAX];
	size_t n = ws_close_frame(f, code, NULL);

	if (enqueue(c, f, n, QUEUE_MAX + QUEUE_CONTROL_RESERVE) == 0)
		ws->st.ws_tx_frames++;
	conn_close_after_flush(ws, c, why, now_ms);
}

/* ---- Reading: the upgrade, then frames ---------------------------------------- */

static void on_head(struct rdv_ws *ws, struct conn *c, uint64_t now_ms)
{
	struct ws_handshake h;
	char answer[512], why[48];
	int r = ws_server_request(c->in, c->in_len, WS_PATH, &h);
	size_t n;

	if (r == 0)
		return;
	n = ws_server_response(&h, answer, sizeof(answer));
	if (r < 0 || h.status != 101) {
		ws->st.ws_http_errors++;
		if (r < 0 || h.status == 400 || h.status == 431)
			ws->st.ws_malformed++;
		(void)enqueue(c, answer, n, QUEUE_MAX + QUEUE_CONTROL_RESERVE);
		snprintf(why, sizeof(why), "upgrade refused: HTTP %d", h.status);
		conn_close_after_flush(ws, c, why, now_ms);
		c->in_len = 0;
		return;
	}
	if (enqueue(c, answer, n, QUEUE_MAX) != 0) {
		conn_fail(ws, c, "out of memory");
		return;
	}
	ws->st.ws_upgrades++;
	c->state = ST_OPEN;
	c->last_ping_ms = now_ms;
	EVENT_LOG(&ws->log_upgrade, now_ms, "%s upgraded%s", c->text, c->ssl ? " (TLS)" : "");
	c->in_len -= (size_t)r;
	memmove(c->in, c->in + r, c->in_len);
}

/* An AUTH names the key the client registers; the REGISTERED that answers
 * it (rdv_ws_send) confirms it.  Only for the status display. */
static void note_auth(struct conn *c, const uint8_t *p, size_t n)
{
	struct rdv_msg m;

	if (n > WIRE_HEADER_BYTES && p[0] == WIRE_RENDEZVOUS && rdv_msg_decode(p, n, &m) == 0 &&
	    m.kind == RDV_AUTH && RDV_HAS(&m, RDV_F_PUB)) {
		memcpy(c->pending_pub, m.pub, RDV_KEY_BYTES);
		c->has_pending = true;
	}
}

static void deliver(struct rdv_ws *ws, struct conn *c, const uint8_t *p, size_t n,
		    uint64_t now_ms)
{
	static struct rdv_out out[4];
	int k;

	note_auth(c, p, n);
	k = rdv_server_receive(ws->srv, p, n, &c->peer, now_ms, out, 4);
	for (int i = 0; i < k; i++)
		ws->cfg.route(ws->cfg.route_ctx, &out[i]);
}

static void on_frames(struct rdv_ws *ws, struct conn *c, uint64_t now_ms)
{
	size_t off = 0;
	char why[48];

	while (!c->dead && c->state == ST_OPEN) {
		struct ws_frame f;
		int r = ws_frame_next(c->in + off, c->in_len - off, true, RDV_MAX_PACKET, &f);
		if (r == 0)
			break;
		if (r < 0) {
			ws->st.ws_malformed++;
			send_close(ws, c, r == SRM_ERR_NOMEM ? WS_CLOSE_TOO_BIG : WS_CLOSE_PROTOCOL,
				   r == SRM_ERR_NOMEM ? "frame too large" : "WebSocket protocol error",
				   now_ms);
			off = c->in_len;
			break;
		}
		off += (size_t)r;
		ws->st.ws_rx_frames++;
		switch (f.opcode) {
		case WS_OP_BINARY:
			deliver(ws, c, f.payload, f.len, now_ms);
			break;
		case WS_OP_PING:
			(void)send_frame(ws, c, WS_OP_PONG, f.payload, f.len);
			break;
		case WS_OP_CLOSE:
			snprintf(why, sizeof(why), "closed by the client (code %u)", f.close_code);
			send_close(ws, c, WS_CLOSE_NORMAL, why, now_ms);
			break;
		default: /* pong: the client is alive, nothing to do */
			break;
		}
	}
	c->in_len -= off;
	memmove(c->in, c->in + off, c->in_len);
}

static void refill(struct rdv_ws *ws, struct conn *c, uint64_t now_ms)
{
	int64_t burst = (int64_t)(ws->cfg.rate > RATE_BURST_MIN ? ws->cfg.rate : RATE_BURST_MIN);
	uint64_t dt = now_ms - c->refill_ms;

	if (dt > 10000)
		dt = 10000;
	c->tokens += (int64_t)(ws->cfg.rate * dt / 1000);
	if (c->tokens > burst)
		c->tokens = burst;
	c->refill_ms = now_ms;
}

static void on_readable(struct rdv_ws *ws, struct conn *c, uint64_t now_ms)
{
	while (!c->dead && (c->state == ST_HEAD || c->state == ST_OPEN)) {
		refill(ws, c, now_ms);
		if (c->tokens <= 0) {
			/* Back to a positive eighth of a second's worth. */
			uint64_t need = (uint64_t)-c->tokens + ws->cfg.rate / 8;
			c->paused = true;
			c->resume_ms = now_ms + 1 + need * 1000 / ws->cfg.rate;
			wake(ws, c->resume_ms);
			ws->st.ws_throttled++;
			break;
		}
		if (c->in == NULL && (c->in = malloc(IN_CAP)) == NULL) {
			conn_fail(ws, c, "out of memory");
			break;
		}
		ssize_t r = io_read(c, c->in + c->in_len, IN_CAP - c->in_len);
		if (r == -1)
			break;
		if (r <= 0) {
			conn_fail(ws, c, r == 0 ? "closed by the client"
					 : errno == ECONNRESET ? "reset by the client"
							       : "read error");
			break;
		}
		c->in_len += (size_t)r;
		c->bytes_in += (uint64_t)r;
		c->tokens -= r;
		c->last_rx_ms = now_ms;
		ws->st.ws_rx_bytes += (uint64_t)r;
		if (c->state == ST_HEAD)
			on_head(ws, c, now_ms);
		if (c->state == ST_OPEN)
			on_frames(ws, c, now_ms);
	}
	if (c->in != NULL && c->in_len == 0) {
		free(c->in);
		c->in = NULL;
	}
}

static void on_io(struct rdv_ws *ws, struct conn *c, uint64_t now_ms)
{
	if (c->dead)
		return;
	if (c->state == ST_TLS) {
		c->want_write = false;
		int r = SSL_accept(c->ssl);
		if (r != 1) {
			int e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
				c->want_write = e == SSL_ERROR_WANT_WRITE;
				set_events(ws, c);
				return;
			}
			char why[64];
			snprintf(why, sizeof(why), "TLS handshake failed: %s", tls_error());
			ws->st.ws_tls_failed++;
			conn_fail(ws, c, why);
			return;
		}
		c->state = ST_HEAD;
	}
	if (!c->paused)
		on_readable(ws, c, now_ms);
	flush(ws, c);
}

/* ---- Accepting ----------------------------------------------------------------- */

static void refuse(struct rdv_ws *ws, int fd, const char *text, const char *why, uint64_t now_ms)
{
	ws->st.ws_rejected++;
	EVENT_LOG(&ws->log_refuse, now_ms, "%s refused: %s", text, why);
	sys_close(fd);
}

static void accept_one(struct rdv_ws *ws, int fd, const struct sockaddr_storage *ss, socklen_t sl,
		       uint64_t now_ms)
{
	struct rdv_endpoint peer = { .addr = *ss, .len = sl, .via = RDV_VIA_WS };
	uint8_t ak[ADDR_KEY_BYTES], ik[IP_KEY_BYTES];
	struct ip_count *ip;
	struct conn *c;
	char text[64];
	int one = 1;

	ws->st.ws_accepted++;
	rdv_endpoint_str(&peer, text, sizeof(text));
	addr_key(ak, &peer);
	ip_key(ik, &peer);
	if (ak[0] == 0) {
		refuse(ws, fd, text, "unknown address family", now_ms);
		return;
	}
	if (ws->nfree == 0) {
		refuse(ws, fd, text, "--ws-max-clients reached", now_ms);
		return;
	}
	HASH_FIND(hh, ws->by_ip, ik, IP_KEY_BYTES, ip);
	if (ip != NULL && ip->n >= ws->cfg.max_per_ip) {
		refuse(ws, fd, text, "--ws-max-per-ip reached", now_ms);
		return;
	}
	HASH_FIND(hh, ws->by_addr, ak, ADDR_KEY_BYTES, c);
	if (c != NULL) { /* same source address and port on two listeners */
		refuse(ws, fd, text, "address already connected", now_ms);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (ip == NULL && (ip = calloc(1, sizeof(*ip))) == NULL) ||
	    (ws->tls != NULL && (c->ssl = SSL_new(ws->tls)) == NULL)) {
		if (ip != NULL && ip->n == 0)
			free(ip);
		free(c);
		refuse(ws, fd, text, "out of memory", now_ms);
		return;
	}
	if (ip->n++ == 0) {
		memcpy(ip->key, ik, IP_KEY_BYTES);
		HASH_ADD(hh, ws->by_ip, key, IP_KEY_BYTES, ip);
	}
	c->fd = fd;
	c->ip = ip;
	c->peer = peer;
	memcpy(c->addr_key, ak, ADDR_KEY_BYTES);
	snprintf(c->text, sizeof(c->text), "%s", text);
	c->state = c->ssl ? ST_TLS : ST_HEAD;
	c->created_ms = c->last_rx_ms = c->refill_ms = now_ms;
	c->tokens = (int64_t)(ws->cfg.rate > RATE_BURST_MIN ? ws->cfg.rate : RATE_BURST_MIN);
	c->slot = ws->free_slots[--ws->nfree];
	ws->slots[c->slot] = c;
	HASH_ADD(hh, ws->by_addr, addr_key, ADDR_KEY_BYTES, c);
	ws->st.ws_clients++;
	if (c->ssl != NULL)
		SSL_set_fd(c->ssl, fd);
	/* Datagrams, not a byte stream: send each at once. */
	(void)sys_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = RDV_WS_TAG + RDV_WS_MAX_LISTEN + c->slot };
	if (epoll_ctl(ws->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		conn_fail(ws, c, "epoll failed");
		return;
	}
	c->events = EPOLLIN;
	wake(ws, now_ms + HEADER_TIMEOUT_MS);
	EVENT_LOG(&ws->log_conn, now_ms, "%s connected", c->text);
}

static void set_accepting(struct rdv_ws *ws, bool on)
{
	for (size_t i = 0; i < ws->nls; i++) {
		struct epoll_event ev = { .events = on ? EPOLLIN : 0, .data.u64 = RDV_WS_TAG + i };
		(void)epoll_ctl(ws->epfd, EPOLL_CTL_MOD, ws->ls[i].fd, &ev);
	}
}

static void on_accept(struct rdv_ws *ws, size_t i, uint64_t now_ms)
{
	for (int b = 0; b < ACCEPT_BATCH; b++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = sys_accept4(ws->ls[i].fd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			accept_one(ws, fd, &ss, sl, now_ms);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			EVENT_LOG(&ws->log_refuse, now_ms, "cannot accept on %s: %s", ws->ls[i].text,
				  strerror(errno));
			ws->accept_resume_ms = now_ms + ACCEPT_BACKOFF_MS;
			wake(ws, ws->accept_resume_ms);
			set_accepting(ws, false);
		}
		break;
	}
}

/* ---- The loop's entry points ------------------------------------------------------ */

void rdv_ws_event(struct rdv_ws *ws, uint64_t tag, uint64_t now_ms)
{
	uint64_t i = tag - RDV_WS_TAG;

	if (i < RDV_WS_MAX_LISTEN) {
		if (i < ws->nls && ws->accept_resume_ms == 0)
			on_accept(ws, (size_t)i, now_ms);
	} else {
		i -= RDV_WS_MAX_LISTEN;
		if (i < ws->cfg.max_clients && ws->slots[i] != NULL)
			on_io(ws, ws->slots[i], now_ms);
	}
	reap(ws, now_ms);
}

void rdv_ws_send(struct rdv_ws *ws, const struct rdv_out *o, uint64_t now_ms)
{
	uint8_t key[ADDR_KEY_BYTES];
	struct conn *c;

	addr_key(key, &o->to);
	HASH_FIND(hh, ws->by_addr, key, ADDR_KEY_BYTES, c);
	if (c == NULL || c->dead || c->state != ST_OPEN) {
		ws->st.ws_unrouted++;
		return;
	}
	if (c->has_pending && o->len > WIRE_HEADER_BYTES && o->buf[0] == WIRE_RENDEZVOUS) {
		struct rdv_msg m;
		if (rdv_msg_decode(o->buf, o->len, &m) == 0 && m.kind == RDV_REGISTERED) {
			memcpy(c->pub, c->pending_pub, RDV_KEY_BYTES);
			c->registered = true;
		}
	}
	if (send_frame(ws, c, WS_OP_BINARY, o->buf, o->len) != 0) {
		ws->st.ws_queue_drops++;
		c->drops++;
		EVENT_LOG(&ws->log_drop, now_ms, "%s: queue full (%zu bytes), datagram dropped",
			  c->text, c->q_len);
		return;
	}
	if (c->q_len >= RDV_WS_FLUSH_AT) {
		flush(ws, c);
	} else if (!c->unflushed) {
		/* A slot freed and taken again in one pass is listed twice:
		 * the list can outgrow the slots, so it empties when full. */
		if (ws->nunflushed == ws->cfg.max_clients)
			rdv_ws_flush(ws);
		c->unflushed = true;
		ws->unflushed[ws->nunflushed++] = c->slot;
	}
}

/* By slot: a connection freed meanwhile is gone from its slot, and one
 * that took the slot since has not queued (its flag is clear). */
void rdv_ws_flush(struct rdv_ws *ws)
{
	for (size_t i = 0; i < ws->nunflushed; i++) {
		struct conn *c = ws->slots[ws->unflushed[i]];
		if (c != NULL && c->unflushed) {
			c->unflushed = false;
			flush(ws, c);
		}
	}
	ws->nunflushed = 0;
}

void rdv_ws_tick(struct rdv_ws *ws, uint64_t now_ms)
{
	uint64_t next = UINT64_MAX;

	if (ws->accept_resume_ms != 0 && ws->accept_resume_ms <= now_ms) {
		ws->accept_resume_ms = 0;
		set_accepting(ws, true);
	}
	if (ws->accept_resume_ms != 0)
		next = ws->accept_resume_ms;
	for (size_t i = 0; i < ws->cfg.max_clients; i++) {
		struct conn *c = ws->slots[i];
		uint64_t due = UINT64_MAX;
		if (c == NULL || c->dead)
			continue;
		switch (c->state) {
		case ST_TLS:
		case ST_HEAD:
			due = c->created_ms + HEADER_TIMEOUT_MS;
			if (due <= now_ms) {
				ws->st.ws_timeouts++;
				conn_fail(ws, c, c->state == ST_TLS ? "header timeout (TLS handshake)"
								    : "header timeout");
			}
			break;
		case ST_CLOSING:
			due = c->linger_ms;
			if (due <= now_ms)
				conn_fail(ws, c, NULL);
			break;
		case ST_OPEN:
			if (c->last_rx_ms + IDLE_TIMEOUT_MS <= now_ms) {
				ws->st.ws_timeouts++;
				send_close(ws, c, WS_CLOSE_GOING_AWAY, "idle timeout", now_ms);
				flush(ws, c);
				due = c->linger_ms;
				break;
			}
			if (c->last_rx_ms + PING_INTERVAL_MS <= now_ms &&
			    c->last_ping_ms + PING_INTERVAL_MS <= now_ms) {
				(void)send_frame(ws, c, WS_OP_PING, NULL, 0);
				c->last_ping_ms = now_ms;
				flush(ws, c);
			}
			due = c->last_rx_ms + IDLE_TIMEOUT_MS;
			uint64_t ping = (c->last_rx_ms > c->last_ping_ms ? c->last_rx_ms : c->last_ping_ms) +
					PING_INTERVAL_MS;
			if (ping < due)
				due = ping;
			break;
		}
		if (c->paused && !c->dead && c->resume_ms <= now_ms) {
			c->paused = false;
			on_io(ws, c, now_ms);
		}
		if (c->paused && c->resume_ms < due)
			due = c->resume_ms;
		if (!c->dead && due < next)
			next = due;
	}
	reap(ws, now_ms);
	ws->next_ms = next;
}

uint64_t rdv_ws_deadline(const struct rdv_ws *ws)
{
	return ws->dead != NULL ? 0 : ws->next_ms;
}

/* ---- Setup ----------------------------------------------------------------------- */

static SSL_CTX *tls_context(const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *what = "cannot create a TLS context";

	if (ctx == NULL)
		goto fail;
	(void)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	what = "cannot load the TLS certificate";
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
		goto fail;
	what = "cannot load the TLS key";
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	what = "the TLS key does not match the certificate";
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	return ctx;
fail:
	snprintf(err, errlen, "%s (%s, %s): %s", what, cert, key, tls_error());
	SSL_CTX_free(ctx);
	return NULL;
}

struct rdv_ws *rdv_ws_new(const struct rdv_ws_config *cfg, struct rdv_server *srv, int epfd,
			  char *err, size_t errlen)
{
	struct rdv_ws *ws = calloc(1, sizeof(*ws));

	if (ws == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ws->cfg = *cfg;
	if (ws->cfg.max_clients == 0)
		ws->cfg.max_clients = RDV_WS_DEFAULT_MAX_CLIENTS;
	if (ws->cfg.max_per_ip == 0)
		ws->cfg.max_per_ip = RDV_WS_DEFAULT_MAX_PER_IP;
	if (ws->cfg.rate == 0)
		ws->cfg.rate = RDV_WS_DEFAULT_RATE;
	ws->srv = srv;
	ws->epfd = epfd;
	ws->next_ms = UINT64_MAX;
	ws->slots = calloc(ws->cfg.max_clients, sizeof(*ws->slots));
	ws->free_slots = calloc(ws->cfg.max_clients, sizeof(*ws->free_slots));
	ws->unflushed = calloc(ws->cfg.max_clients, sizeof(*ws->unflushed));
	if (ws->slots == NULL || ws->free_slots == NULL || ws->unflushed == NULL) {
		snprintf(err, errlen, "out of memory");
		rdv_ws_free(ws);
		return NULL;
	}
	for (size_t i = 0; i < ws->cfg.max_clients; i++)
		ws->free_slots[ws->nfree++] = (uint32_t)(ws->cfg.max_clients - 1 - i);
	if (cfg->tls_cert != NULL &&
	    (ws->tls = tls_context(cfg->tls_cert, cfg->tls_key, err, errlen)) == NULL) {
		rdv_ws_free(ws);
		return NULL;
	}
	return ws;
}

int rdv_ws_listen(struct rdv_ws *ws, const struct sockaddr_storage *ss, socklen_t len,
		  const char *text)
{
	struct listener *l = &ws->ls[ws->nls];
	int one = 1, e;

	if (ws->nls == RDV_WS_MAX_LISTEN) {
		errno = ENOSPC;
		return -1;
	}
	l->fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		return -1;
	(void)sys_setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		(void)sys_setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = RDV_WS_TAG + ws->nls };
	if (bind(l->fd, (const struct sockaddr *)ss, len) != 0 || sys_listen(l->fd, 1024) != 0 ||
	    epoll_ctl(ws->epfd, EPOLL_CTL_ADD, l->fd, &ev) != 0) {
		e = errno;
		sys_close(l->fd);
		errno = e;
		return -1;
	}
	snprintf(l->text, sizeof(l->text), "%s", text);
	ws->nls++;
	LOG_INFO(NULL, "rendezvous: WebSocket%s on %s, path %s", ws->tls ? " (TLS)" : "", text,
		 WS_PATH);
	return 0;
}

void rdv_ws_free(struct rdv_ws *ws)
{
	if (ws == NULL)
		return;
	for (size_t i = 0; ws->slots != NULL && i < ws->cfg.max_clients; i++)
		if (ws->slots[i] != NULL)
			conn_fail(ws, ws->slots[i], "server stopping");
	reap(ws, 0);
	for (size_t i = 0; i < ws->nls; i++)
		sys_close(ws->ls[i].fd);
	SSL_CTX_free(ws->tls);
	free(ws->slots);
	free(ws->free_slots);
	free(ws->unflushed);
	free(ws);
}

/* ---- Counters and status ------------------------------------------------------------ */

void rdv_ws_get_stats(const struct rdv_ws *ws, struct rdv_ws_stats *st)
{
	*st = ws->st;
}

static void ws_put_status(const struct rdv_ws *ws, struct json_out *d, uint64_t now_ms)
{
	const char *sep = "";

	json_out_printf(d, ",\"websocket\":{\"tls\":%s,\"path\":\"%s\",\"max_clients\":%zu,"
			   "\"max_per_ip\":%zu,\"rate\":%llu,\"listen\":[",
			ws->tls ? "true" : "false", WS_PATH, ws->cfg.max_clients, ws->cfg.max_per_ip,
			(unsigned long long)ws->cfg.rate);
	for (size_t i = 0; i < ws->nls; i++) {
		json_out_printf(d, "%s", i ? "," : "");
		json_out_string(d, ws->ls[i].text);
	}
	json_out_printf(d, "],\"clients\":[");
	for (size_t i = 0; i < ws->cfg.max_clients; i++) {
		const struct conn *c = ws->slots[i];
		char key[SRM_PUBKEY_TEXT_BYTES];
		if (c == NULL)
			continue;
		json_out_printf(d, "%s{\"address\":", sep);
		json_out_string(d, c->text);
		if (c->registered) {
			srm_pubkey_encode(c->pub, key);
			json_out_printf(d, ",\"key\":\"%s\"", key);
		}
		json_out_printf(d, ",\"state\":\"%s\",\"bytes_in\":%llu,\"bytes_out\":%llu,"
				   "\"queue\":%zu,\"drops\":%llu,\"age_ms\":%llu}",
				state_name[c->state], (unsigned long long)c->bytes_in,
				(unsigned long long)c->bytes_out, c->q_len,
				(unsigned long long)c->drops,
				(unsigned long long)(now_ms - c->created_ms));
		sep = ",";
	}
	json_out_printf(d, "]}");
}

void rdv_put_status(struct json_out *d, const struct rdv_server *s, const struct rdv_ws *ws,
		    uint64_t now_ms)
{
	struct rdv_server_stats c;
	rdv_server_get_stats(s, &c);
	json_out_printf(d, "\"counters\":{\"records\":%llu", (unsigned long long)c.records);
#define C(name) json_out_printf(d, ",\"" #name "\":%llu", (unsigned long long)c.name);
	RDV_SERVER_COUNTERS(C)
#undef C
	if (ws == NULL) {
		json_out_printf(d, "}");
		return;
	}
	struct rdv_ws_stats w;
	rdv_ws_get_stats(ws, &w);
#define W(name) json_out_printf(d, ",\"" #name "\":%llu", (unsigned long long)w.name);
	RDV_WS_COUNTERS(W)
#undef W
	json_out_printf(d, "}");
	ws_put_status(ws, d, now_ms);
}
