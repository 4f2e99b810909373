/*
 * engine_ws.c — the WebSocket link to the relay (SRMUDP_RELAY), for
 * networks that block UDP.  It carries the very packets that would go to
 * the rendezvous server over UDP (registration, lookups, relayed packets,
 * all end-to-end encrypted or MAC'd), one per binary message.  The path
 * manager decides when the link is wanted (PATH_DO_WS_OPEN / _CLOSE); this
 * file only connects and keeps it up:
 *
 *   TCP connect -> [HTTP CONNECT through a proxy] -> [TLS for wss://]
 *   -> HTTP upgrade -> binary messages, pings both ways
 *
 * Each relay of the list gets WS_CONNECT_MS for all of that; a failure
 * moves on to the next, and after the last one waits (0.5 s doubling to
 * 30 s).  The codec is core/protocol/ws.c, TLS is tls.c.
 *
 * Two reliable layers must not fight (the "double ACK" problem): when the
 * TCP connection falls behind, datagrams queue here instead of being lost,
 * the end-to-end transport sees its RTT grow and times out packets that
 * are merely waiting.  So the queue is short: TCP_NOTSENT_LOWAT keeps at
 * most WS_NOTSENT_LOWAT unsent bytes in the kernel and WS_OUT_MAX bounds
 * our own; beyond that a datagram is dropped, which the transport's
 * congestion control reads as loss and answers by sending less.
 */
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <sodium.h>

#include "engine.h"
#include "log.h"
#include "tls.h"
#include "url.h"
#include "ws.h"

/* TCP, proxy, TLS and upgrade together, per relay: a few RTTs even on a
 * satellite link; the budget is 5 s to the first reply. */
#define WS_CONNECT_MS 5000
#define WS_RETRY_MIN_MS 500
#define WS_RETRY_MAX_MS 30000
/* A link that stayed open this long worked: losing it (the relay
 * restarted) reconnects at once.  One that dies sooner (a relay that
 * closes every upgrade) counts as a failed attempt, so that the retries
 * back off instead of spinning. */
#define WS_SETTLED_MS 10000
/* NATs and proxies drop idle TCP (nginx: proxy_read_timeout 60 s): a ping
 * every 20 s, and a link silent for 60 s (the server pings every 25 s and
 * answers ours) is dead. */
#define WS_PING_MS 20000
#define WS_DEAD_MS 60000
/* About 50 full datagrams: at 100 Mbit/s, 5 ms of queue on top of the
 * kernel's; enough to ride out a scheduling hiccup, short enough for the
 * transport's RTT to stay honest. */
#define WS_OUT_MAX (64 * 1024)
#define WS_NOTSENT_LOWAT (32 * 1024)
/* One message at most, plus TLS records around it. */
#define WS_MSG_MAX (WS_FRAME_HEADER_MAX + RDV_MAX_PACKET)
#define WS_OUT_CAP (WS_OUT_MAX + 4 * WS_MSG_MAX)
#define WS_IN_CAP (WS_MAX_HEAD + 2 * WS_MSG_MAX)
/* Reads per readiness event: other work gets a turn. */
#define WS_READS 16
/* Datagrams queue up during an engine pass and leave together (one send
 * for many, as sendmmsg does for UDP), at the pass's end or once this much
 * waits: a send per datagram cost more than the rest of the relay path. */
#define WS_FLUSH_AT (16 * 1024)
/* Masking keys come from a pool filled 1,024 at a time: a getrandom() per
 * frame would be one more system call per datagram. */
#define WS_MASK_POOL 4096

enum ws_state {
	WS_IDLE,       /* not wanted */
	WS_WAIT,       /* wanted: the next attempt at deadline_ms */
	WS_CONNECTING, /* TCP */
	WS_PROXY,      /* CONNECT sent */
	WS_TLS,        /* TLS handshake */
	WS_UPGRADE,    /* upgrade request sent */
	WS_OPEN,
};

static const char *const state_names[] = { "idle", "waiting", "connecting", "proxy",
					   "tls", "upgrade", "open" };

struct ws_link {
	struct ev_tag tag;
	enum ws_state state;
	size_t index;              /* the relay being tried (cfg.relays) */
	unsigned rounds;           /* whole lists failed in a row */
	struct relay_url url;
	struct proxy_url proxy;
	bool via_proxy;
	int fd;
	uint32_t events;
	struct tls *tls;           /* wss:// */
	uint8_t nonce[WS_NONCE_BYTES];
	uint64_t deadline_ms;      /* of the attempt, or of the wait */
	uint64_t last_rx_ms, next_ping_ms;
	uint64_t opened_ms;        /* the upgrade succeeded */
	char error[160];           /* why the last attempt failed */
	uint8_t masks[WS_MASK_POOL];
	size_t mask_off;           /* masks[mask_off..] are unused */
	struct srm_ws_stats st;
	size_t in_len, out_len, out_off;
	uint8_t in[WS_IN_CAP];     /* plaintext received, not yet parsed */
	uint8_t out[WS_OUT_CAP];   /* bytes for the socket (ciphertext for wss://) */
};

/* ---- Lifecycle ------------------------------------------------------------ */

int engine_ws_setup(struct srm_engine *e, char *err, size_t errlen)
{
	if (!e->relay_count)
		return 0;
	e->ws = calloc(1, sizeof(*e->ws));
	if (!e->ws) {
		snprintf(err, errlen, "SRMUDP_RELAY: out of memory");
		return SRM_ERR_NOMEM;
	}
	e->ws->tag.kind = EV_WS;
	e->ws->fd = -1;
	return 0;
}

static void teardown(struct srm_engine *e)
{
	struct ws_link *w = e->ws;
	if (w->fd >= 0) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, w->fd, NULL);
		engine_fd_close(e, w->fd);
	}
	w->fd = -1;
	w->events = 0;
	tls_free(w->tls);
	w->tls = NULL;
	w->in_len = w->out_len = w->out_off = 0;
}

void engine_ws_free(struct srm_engine *e)
{
	if (!e->ws)
		return;
	teardown(e);
	free(e->ws);
	e->ws = NULL;
}

static void interest(struct srm_engine *e, uint32_t events)
{
	struct ws_link *w = e->ws;
	if (w->fd < 0 || events == w->events)
		return;
	struct epoll_event ev = { .events = events, .data.ptr = &w->tag };
	epoll_ctl(e->epfd, EPOLL_CTL_MOD, w->fd, &ev);
	w->events = events;
}

/* This attempt failed: the next relay at once, or after the whole list
 * failed, a wait that doubles. */
static void fail(struct srm_engine *e, uint64_t now_ms, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct srm_engine *e, uint64_t now_ms, const char *fmt, ...)
{
	struct ws_link *w = e->ws;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->error, sizeof(w->error), fmt, ap);
	va_end(ap);
	bool settled = w->state == WS_OPEN && now_ms >= w->opened_ms + WS_SETTLED_MS;
	LOG_INFO(NULL, "relay %s: %s", e->relays[w->index].url, w->error);
	teardown(e);
	w->st.failures++;
	w->index = (w->index + 1) % e->relay_count;
	uint64_t wait = 0;
	if (settled)
		w->rounds = 0;
	else if (w->index == 0) {
		wait = (uint64_t)WS_RETRY_MIN_MS << (w->rounds < 6 ? w->rounds : 6);
		if (wait > WS_RETRY_MAX_MS)
			wait = WS_RETRY_MAX_MS;
		w->rounds++;
		LOG_WARN(NULL, "no relay of SRMUDP_RELAY reachable (last: %s); again in %llu ms",
			 w->error, (unsigned long long)wait);
	}
	w->state = WS_WAIT;
	w->deadline_ms = now_ms + wait;
}

/* ---- Sending ---------------------------------------------------------------- */

/* Bytes to the socket, as many as it takes now; the rest waits for EPOLLOUT. */
static void flush(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	while (w->out_off < w->out_len) {
		ssize_t n = sys_send(w->fd, w->out + w->out_off, w->out_len - w->out_off,
				     MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			w->out_off += (size_t)n;
			w->st.tx_bytes += (uint64_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		fail(e, now_ms, "send: %s", n < 0 ? strerror(errno) : "closed");
		return;
	}
	if (w->out_off == w->out_len)
		w->out_off = w->out_len = 0;
	interest(e, EPOLLIN | (w->out_len ? EPOLLOUT : 0));
}

static size_t out_room(struct ws_link *w)
{
	if (w->out_off) {
		memmove(w->out, w->out + w->out_off, w->out_len - w->out_off);
		w->out_len -= w->out_off;
		w->out_off = 0;
	}
	return sizeof(w->out) - w->out_len;
}

/* What TLS has for the network, into the queue. */
static void pull_tls(struct ws_link *w)
{
	size_t k;
	while (out_room(w) && (k = tls_take(w->tls, w->out + w->out_len, out_room(w))) > 0)
		w->out_len += k;
}

/* Plaintext onto the link: through TLS for wss://. */
static bool put(struct ws_link *w, const uint8_t *p, size_t n)
{
	if (!w->tls) {
		if (out_room(w) < n)
			return false;
		memcpy(w->out + w->out_len, p, n);
		w->out_len += n;
		return true;
	}
	if (tls_write(w->tls, p, n) != 0)
		return false;
	pull_tls(w);
	return true;
}

static const uint8_t *next_mask(struct ws_link *w)
{
	if (w->mask_off == 0 || w->mask_off == sizeof(w->masks)) {
		randombytes_buf(w->masks, sizeof(w->masks));
		w->mask_off = 0;
	}
	w->mask_off += WS_MASK_BYTES;
	return w->masks + w->mask_off - WS_MASK_BYTES;
}

/* One frame (client frames are masked: RFC 6455 5.3), built in place in
 * the queue when no TLS is in between. */
static bool put_frame(struct ws_link *w, uint8_t opcode, const uint8_t *p, size_t n)
{
	uint8_t stack[WS_MSG_MAX];
	if (n > RDV_MAX_PACKET)
		return false;
	uint8_t *frame = stack;
	if (!w->tls) {
		if (out_room(w) < WS_FRAME_HEADER_MAX + n)
			return false;
		frame = w->out + w->out_len;
	}
	const uint8_t *mask = next_mask(w); /* only for a frame that is sent */
	size_t h = ws_frame_header(frame, opcode, n, mask);
	memcpy(frame + h, p, n);
	ws_mask(frame + h, n, mask);
	if (!w->tls) {
		w->out_len += h + n;
		return true;
	}
	return put(w, frame, h + n);
}

bool engine_ws_send(struct srm_engine *e, const uint8_t *pkt, size_t len)
{
	struct ws_link *w = e->ws;
	if (!w || w->state != WS_OPEN)
		return false;
	/* The queue bound, in bytes on the socket (see the top); what waits
	 * for the end of the pass goes first. */
	if (w->out_len - w->out_off + len + WS_FRAME_HEADER_MAX > WS_OUT_MAX)
		flush(e, clock_now_ms());
	if (w->state != WS_OPEN || w->out_len - w->out_off + len + WS_FRAME_HEADER_MAX > WS_OUT_MAX ||
	    !put_frame(w, WS_OP_BINARY, pkt, len)) {
		w->st.queue_drops++;
		return false;
	}
	w->st.tx_messages++;
	if (w->out_len - w->out_off >= WS_FLUSH_AT)
		flush(e, clock_now_ms());
	return true;
}

void engine_ws_flush(struct srm_engine *e)
{
	struct ws_link *w = e->ws;
	if (w && w->state == WS_OPEN && w->out_len > w->out_off)
		flush(e, clock_now_ms());
}

/* ---- Connecting ------------------------------------------------------------ */

static void start(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	const struct srm_relay_config *r = &e->relays[w->index];
	char err[256];
	/* Checked when the configuration was read: only a bug fails here. */
	if (relay_url_parse("SRMUDP_RELAY", r->url, &w->url, err, sizeof(err)) != 0) {
		fail(e, now_ms, "%s", err);
		return;
	}
	w->via_proxy = r->proxy[0] != '\0';
	if (w->via_proxy && proxy_url_parse("SRMUDP_PROXY", r->proxy, &w->proxy, err, sizeof(err)) != 0) {
		fail(e, now_ms, "%s", err);
		return;
	}
	int fd = socket(r->connect_to.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail(e, now_ms, "socket: %s", strerror(errno));
		return;
	}
	w->fd = engine_fd_adopt(e, fd);
	int one = 1, lowat = WS_NOTSENT_LOWAT;
	sys_setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	sys_setsockopt(w->fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat, sizeof(lowat));
	w->state = WS_CONNECTING;
	w->deadline_ms = now_ms + WS_CONNECT_MS;
	w->st.attempts++;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = &w->tag };
	w->events = ev.events;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, w->fd, &ev) != 0) {
		fail(e, now_ms, "epoll: %s", strerror(errno));
		return;
	}
	if (sys_connect(w->fd, (const struct sockaddr *)&r->connect_to, r->connect_len) != 0 &&
	    errno != EINPROGRESS)
		fail(e, now_ms, "connect%s: %s", w->via_proxy ? " to the proxy" : "", strerror(errno));
}

/* An HTTP request of n bytes (0: it could not be built) leaves; its answer
 * is awaited in state. */
static void send_request(struct srm_engine *e, uint64_t now_ms, enum ws_state state,
			 const char *req, size_t n, const char *what)
{
	struct ws_link *w = e->ws;
	w->state = state;
	if (!n || !put(w, (const uint8_t *)req, n)) {
		fail(e, now_ms, "cannot build the %s request", what);
		return;
	}
	flush(e, now_ms);
}

static void send_upgrade(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	char req[WS_MAX_HEAD];
	randombytes_buf(w->nonce, sizeof(w->nonce));
	size_t n = ws_client_request(w->url.host_header, w->url.path, w->nonce, req, sizeof(req));
	send_request(e, now_ms, WS_UPGRADE, req, n, "upgrade");
}

/* Push the TLS handshake on; the upgrade follows it. */
static void drive_tls(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	char err[200];
	int rc = tls_handshake(w->tls, err, sizeof(err));
	pull_tls(w);
	if (rc < 0) {
		fail(e, now_ms, "%s", err);
		return;
	}
	if (rc == 1)
		send_upgrade(e, now_ms);
	else
		flush(e, now_ms);
}

/* The TCP connection (or the proxy's tunnel) is up: TLS or the upgrade. */
static void tunnel_up(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	if (!w->url.tls) {
		send_upgrade(e, now_ms);
		return;
	}
	char err[256];
	w->tls = tls_client_new(w->url.host, e->cfg.relay_ca, err, sizeof(err));
	if (!w->tls) {
		fail(e, now_ms, "%s", err);
		return;
	}
	w->state = WS_TLS;
	/* Bytes that followed the proxy's answer are the server's. */
	if (w->in_len && tls_feed(w->tls, w->in, w->in_len) != 0) {
		fail(e, now_ms, "out of memory");
		return;
	}
	w->in_len = 0;
	drive_tls(e, now_ms);
}

static void connected(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	int so = 0;
	socklen_t sl = sizeof(so);
	if (sys_getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0 || so != 0) {
		fail(e, now_ms, "connect%s: %s", w->via_proxy ? " to the proxy" : "",
		     strerror(so ? so : errno));
		return;
	}
	if (!w->via_proxy) {
		tunnel_up(e, now_ms);
		return;
	}
	char req[WS_MAX_HEAD];
	size_t n = http_connect_request(w->url.host, w->url.port, w->proxy.auth, req, sizeof(req));
	send_request(e, now_ms, WS_PROXY, req, n, "CONNECT");
}

/* ---- Receiving -------------------------------------------------------------- */

static void consume(struct ws_link *w, size_t n)
{
	memmove(w->in, w->in + n, w->in_len - n);
	w->in_len -= n;
}

static void on_frame(struct srm_engine *e, const struct ws_frame *f, uint64_t now_us)
{
	struct ws_link *w = e->ws;
	switch (f->opcode) {
	case WS_OP_BINARY:
		w->st.rx_messages++;
		engine_rdv_ws_receive(e, f->payload, f->len, now_us);
		break;
	case WS_OP_PING:
		put_frame(w, WS_OP_PONG, f->payload, f->len);
		flush(e, now_us / 1000);
		break;
	case WS_OP_CLOSE:
		fail(e, now_us / 1000, "the relay closed the WebSocket (%u)", f->close_code);
		break;
	default:
		break; /* a pong: last_rx_ms moved already */
	}
}

/* Whatever the plaintext in w->in completes, by state. */
static void parse(struct srm_engine *e, uint64_t now_us)
{
	struct ws_link *w = e->ws;
	uint64_t now_ms = now_us / 1000;
	int status = 0, rc;
	if (w->state == WS_PROXY) {
		rc = http_connect_response(w->in, w->in_len, &status);
		if (rc == 0)
			return;
		if (rc < 0 || status < 200 || status > 299) {
			fail(e, now_ms, "the proxy %s answered %s%d", e->relays[w->index].proxy,
			     rc < 0 ? "garbage, status " : "", status);
			return;
		}
		consume(w, (size_t)rc);
		tunnel_up(e, now_ms);
		return;
	}
	if (w->state == WS_UPGRADE) {
		rc = ws_client_response(w->in, w->in_len, w->nonce, &status);
		if (rc == 0)
			return;
		if (rc < 0) {
			fail(e, now_ms, "no WebSocket upgrade (HTTP status %d)", status);
			return;
		}
		consume(w, (size_t)rc);
		w->state = WS_OPEN;
		w->opened_ms = now_ms;
		w->last_rx_ms = now_ms;
		w->next_ping_ms = now_ms + WS_PING_MS;
		w->st.connects++;
		LOG_INFO(NULL, "relay %s: connected%s%s", e->relays[w->index].url,
			 w->via_proxy ? " through " : "", w->via_proxy ? e->relays[w->index].proxy : "");
		engine_rdv_link_up(e, now_us);
	}
	while (w->state == WS_OPEN && w->in_len) {
		struct ws_frame f;
		rc = ws_frame_next(w->in, w->in_len, false, RDV_MAX_PACKET, &f);
		if (rc == 0)
			return;
		if (rc < 0) {
			uint8_t close[WS_CLOSE_FRAME_MAX], mask[WS_MASK_BYTES];
			randombytes_buf(mask, sizeof(mask));
			size_t n = ws_close_frame(close, rc == SRM_ERR_NOMEM ? WS_CLOSE_TOO_BIG
									  : WS_CLOSE_PROTOCOL, mask);
			put(w, close, n);
			flush(e, now_ms);
			w->st.malformed++;
			if (w->state == WS_OPEN)
				fail(e, now_ms, "malformed frame from the relay");
			return;
		}
		on_frame(e, &f, now_us);
		if (w->state == WS_OPEN)
			consume(w, (size_t)rc);
	}
}

static void readable(struct srm_engine *e, uint64_t now_us)
{
	struct ws_link *w = e->ws;
	uint64_t now_ms = now_us / 1000;
	uint8_t buf[16384];
	for (int i = 0; i < WS_READS && w->fd >= 0; i++) {
		bool raw = !w->tls;
		uint8_t *to = raw ? w->in + w->in_len : buf;
		size_t cap = raw ? sizeof(w->in) - w->in_len : sizeof(buf);
		if (!cap) {
			fail(e, now_ms, "the relay sent an oversized head");
			return;
		}
		ssize_t n = sys_recv(w->fd, to, cap, MSG_DONTWAIT);
		if (n == 0) {
			fail(e, now_ms, "the relay closed the connection");
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				fail(e, now_ms, "recv: %s", strerror(errno));
			return;
		}
		w->st.rx_bytes += (uint64_t)n;
		w->last_rx_ms = now_ms;
		if (raw) {
			w->in_len += (size_t)n;
			parse(e, now_us);
			continue;
		}
		if (tls_feed(w->tls, buf, (size_t)n) != 0) {
			fail(e, now_ms, "out of memory");
			return;
		}
		if (w->state == WS_TLS) {
			drive_tls(e, now_ms);
			if (w->state == WS_TLS || w->fd < 0)
				continue;
		}
		ssize_t k;
		while (w->tls && (k = tls_read(w->tls, w->in + w->in_len,
					       sizeof(w->in) - w->in_len)) != 0) {
			if (k < 0) {
				fail(e, now_ms, "TLS: the relay closed or corrupted the stream");
				return;
			}
			w->in_len += (size_t)k;
			parse(e, now_us);
			if (w->in_len == sizeof(w->in)) {
				fail(e, now_ms, "the relay sent an oversized head");
				return;
			}
		}
		/* TLS may have answered something (a key update). */
		if (w->tls) {
			pull_tls(w);
			flush(e, now_ms);
		}
	}
}

void engine_ws_event(struct srm_engine *e, uint32_t events, uint64_t now_us)
{
	struct ws_link *w = e->ws;
	uint64_t now_ms = now_us / 1000;
	if (w->state == WS_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			connected(e, now_ms);
		return;
	}
	if (events & EPOLLOUT)
		flush(e, now_ms);
	if (w->fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		readable(e, now_us);
}

/* ---- What the path manager asks, and timers -------------------------------- */

void engine_ws_open(struct srm_engine *e, uint64_t now_ms)
{
	struct ws_link *w = e->ws;
	if (!w || w->state != WS_IDLE)
		return;
	w->index = 0;
	w->rounds = 0;
	LOG_INFO(NULL, "relay: connecting the WebSocket (%s)", e->relays[0].url);
	start(e, now_ms);
}

void engine_ws_close(struct srm_engine *e)
{
	struct ws_link *w = e->ws;
	if (!w || w->state == WS_IDLE)
		return;
	if (w->state == WS_OPEN) {
		uint8_t close[WS_CLOSE_FRAME_MAX], mask[WS_MASK_BYTES];
		randombytes_buf(mask, sizeof(mask));
		if (put(w, close, ws_close_frame(close, WS_CLOSE_NORMAL, mask)))
			flush(e, clock_now_ms());
		LOG_INFO(NULL, "relay %s: closed (UDP works)", e->relays[w->index].url);
	}
	if (w->fd >= 0)
		teardown(e);
	w->state = WS_IDLE;
}

void engine_ws_run(struct srm_engine *e, uint64_t now_us)
{
	struct ws_link *w = e->ws;
	uint64_t now_ms = now_us / 1000;
	if (!w)
		return;
	switch (w->state) {
	case WS_IDLE:
		return;
	case WS_WAIT:
		if (now_ms >= w->deadline_ms)
			start(e, now_ms);
		return;
	case WS_OPEN:
		if (now_ms >= w->last_rx_ms + WS_DEAD_MS) {
			fail(e, now_ms, "nothing heard for %d s", WS_DEAD_MS / 1000);
			return;
		}
		if (now_ms >= w->next_ping_ms) {
			w->next_ping_ms = now_ms + WS_PING_MS;
			put_frame(w, WS_OP_PING, NULL, 0);
			flush(e, now_ms);
		}
		return;
	default:
		if (now_ms >= w->deadline_ms)
			fail(e, now_ms, "no connection within %d ms (%s)", WS_CONNECT_MS,
			     state_names[w->state]);
		return;
	}
}

uint64_t engine_ws_deadline(const struct srm_engine *e)
{
	const struct ws_link *w = e->ws;
	if (!w || w->state == WS_IDLE)
		return UINT64_MAX;
	uint64_t d = w->deadline_ms;
	if (w->state == WS_OPEN) {
		d = w->last_rx_ms + WS_DEAD_MS;
		if (w->next_ping_ms < d)
			d = w->next_ping_ms;
	}
	return d * 1000;
}

int engine_ws_server(const struct srm_engine *e)
{
	return e->ws && e->ws->state != WS_IDLE ? e->relay_server[e->ws->index] : -1;
}

bool engine_ws_up(const struct srm_engine *e)
{
	return e->ws && e->ws->state == WS_OPEN;
}

void engine_ws_stats(const struct srm_engine *e, struct srm_ws_stats *out, const char **state,
		     const char **url, const char **error)
{
	const struct ws_link *w = e->ws;
	memset(out, 0, sizeof(*out));
	*state = "off";
	*url = *error = "";
	if (!w)
		return;
	*out = w->st;
	out->queued = w->out_len - w->out_off;
	*state = state_names[w->state];
	*url = e->relays[w->index].url;
	*error = w->error;
}
