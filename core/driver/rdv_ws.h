/*
 * rdv_ws.h — the WebSocket side of `srmudp rendezvous` and of a gate
 * (engine_gate.c), in rdv_ws.c: TCP (or
 * TLS) listeners on --ws-listen, the HTTP/1.1 upgrade on /srmudp, and one
 * rendezvous/relay datagram per binary message, fed to the same
 * rdv_server as the UDP port's (src.via = RDV_VIA_WS).  docs/OPERATIONS.md
 * "Relay over WebSocket" describes the deployment and the limits.
 *
 * It lives in an event loop (cmd_rendezvous.c's, or a gate's own epoll
 * set nested in the engine's): its sockets sit
 * in the loop's epoll set under tags >= RDV_WS_TAG, the loop hands those
 * events to rdv_ws_event, calls rdv_ws_tick when rdv_ws_deadline passes,
 * and gives every rdv_server output whose to.via is RDV_VIA_WS to
 * rdv_ws_send.  Single-threaded; no call blocks.
 */
#ifndef SRMUDP_RDV_WS_H
#define SRMUDP_RDV_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "json.h"
#include "rendezvous.h"

/* epoll tags at and above this one are rdv_ws's (the loop's own are small). */
#define RDV_WS_TAG ((uint64_t)1 << 32)
#define RDV_WS_MAX_LISTEN 4

/* Defaults of the command-line limits. */
#define RDV_WS_DEFAULT_MAX_CLIENTS 4096
/* Per source (IPv4 address or IPv6 /64): a household or office behind one
 * NAT runs a few engines, not hundreds. */
#define RDV_WS_DEFAULT_MAX_PER_IP 16
/* Inbound bytes/s per connection: twice the default relay rate per key,
 * so a relaying client is held back by the relay's own limit first. */
#define RDV_WS_DEFAULT_RATE (2 * 1024 * 1024)

/* Every counter, in the order SIGUSR1 and `srmudp status` print them. */
#define RDV_WS_COUNTERS(X)                                                          \
	X(ws_clients)     /* connections open now */                               \
	X(ws_accepted)    /* TCP connections accepted */                           \
	X(ws_upgrades)    /* 101 Switching Protocols sent */                       \
	X(ws_rejected)    /* refused at accept: --ws-max-clients, per-IP limit */  \
	X(ws_http_errors) /* upgrade refused with an HTTP error (404, 400, 426...) */ \
	X(ws_timeouts)    /* closed for the header or the idle timeout */          \
	X(ws_malformed)   /* bad HTTP or WebSocket input (connection closed) */    \
	X(ws_tls_failed)  /* TLS handshakes that failed */                         \
	X(ws_rx_frames)                                                             \
	X(ws_rx_bytes)    /* TCP payload bytes read (after TLS) */                 \
	X(ws_tx_frames)                                                             \
	X(ws_tx_bytes)                                                              \
	X(ws_queue_drops) /* datagrams dropped: the client's queue was full */     \
	X(ws_throttled)   /* times a connection's reading paused for its rate */   \
	X(ws_unrouted)    /* datagrams for a WebSocket address no longer open */

struct rdv_ws_stats {
#define RDV_WS_FIELD(name) uint64_t name;
	RDV_WS_COUNTERS(RDV_WS_FIELD)
#undef RDV_WS_FIELD
};

struct rdv_ws_config {
	size_t max_clients;   /* 0: RDV_WS_DEFAULT_MAX_CLIENTS */
	size_t max_per_ip;    /* 0: RDV_WS_DEFAULT_MAX_PER_IP */
	uint64_t rate;        /* inbound bytes/s per connection; 0: default */
	const char *tls_cert; /* both or neither: PEM chain and key */
	const char *tls_key;
	/* Where rdv_server's answers to a WebSocket client's datagram go:
	 * to.via RDV_VIA_UDP to the UDP socket, RDV_VIA_WS back to rdv_ws_send. */
	void (*route)(void *ctx, const struct rdv_out *o);
	void *route_ctx;
};

struct rdv_ws;

/* The WebSocket side for srv (borrowed), adding its sockets to epfd.
 * NULL with err filled (TLS files unusable, out of memory). */
struct rdv_ws *rdv_ws_new(const struct rdv_ws_config *cfg, struct rdv_server *srv, int epfd,
			  char *err, size_t errlen);
/* Closes every connection and listener. */
void rdv_ws_free(struct rdv_ws *ws);
/* Listen on ss (TCP).  0, or -1 with errno set. */
int rdv_ws_listen(struct rdv_ws *ws, const struct sockaddr_storage *ss, socklen_t len,
		  const char *text);

/* An epoll event tagged >= RDV_WS_TAG. */
void rdv_ws_event(struct rdv_ws *ws, uint64_t tag, uint64_t now_ms);
/* Queue one rdv_server output for the connection whose peer address is
 * o->to (o->to.via == RDV_VIA_WS).  Dropped and counted when that
 * connection is gone or its queue is full.  It leaves at rdv_ws_flush, or
 * once RDV_WS_FLUSH_AT bytes wait. */
void rdv_ws_send(struct rdv_ws *ws, const struct rdv_out *o, uint64_t now_ms);
/* Write what rdv_ws_send queued: once per pass of the loop, before it
 * sleeps (one send per connection per pass, not one per datagram: a
 * stream relayed to a WebSocket client spent a quarter of the server's
 * time in send). */
#define RDV_WS_FLUSH_AT (16 * 1024)
void rdv_ws_flush(struct rdv_ws *ws);
/* Timeouts, pings, throttled connections resuming. */
void rdv_ws_tick(struct rdv_ws *ws, uint64_t now_ms);
/* When rdv_ws_tick wants to run (UINT64_MAX: nothing pending). */
uint64_t rdv_ws_deadline(const struct rdv_ws *ws);

void rdv_ws_get_stats(const struct rdv_ws *ws, struct rdv_ws_stats *st);
/* A server's part of a status document (`srmudp rendezvous`, a gate):
 * "counters":{records, every RDV_SERVER_COUNTERS and, with ws, every
 * RDV_WS_COUNTERS} and, with ws, ,"websocket":{"listen":[...],"tls":BOOL,
 * "clients":[{address, key, state, bytes_in, bytes_out, queue, drops,
 * age_ms}...]} (ws may be NULL). */
void rdv_put_status(struct json_out *d, const struct rdv_server *s, const struct rdv_ws *ws,
		    uint64_t now_ms);

#endif
