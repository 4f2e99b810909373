/*
 * client.c — the srmudp client that the JavaScript package runs in
 * WebAssembly: one identity, its pinned peers, their sessions (noise.c,
 * session.c) and transports (conn.c), and the rendezvous client
 * (rdv_client.c), all reached through the relay.
 *
 * Sans-I/O like the modules it assembles: the JS driver owns the
 * WebSocket, the clock and the timers.  It hands in every message the
 * relay sends (jsc_receive) and the time; it takes out the messages to
 * send (jsc_out_take) after jsc_flush, and calls jsc_flush again at
 * jsc_deadline.  The driver in C (core/driver/engine_*.c) does the same
 * over UDP and its own WebSocket; this file is what is left of it for a
 * host without UDP: every packet goes through the relay (WIRE_RELAY), so
 * there is no path manager, no punching and no handshake guard beyond
 * mac1 (the relay already rate-limits each registered sender, and no
 * cookie could go back through it, as engine_receive.c reasons).
 *
 * Streams go out only (a browser listens on no port): an incoming OPEN is
 * refused.  Application bytes only ever leave sealed by session_seal.
 *
 * Times: now is monotonic milliseconds as a double (performance.now());
 * the transport counts microseconds, sessions milliseconds.
 */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "conn.h"
#include "cookie.h"
#include "index_table.h"
#include "noise.h"
#include "rendezvous.h"
#include "session.h"
#include "wire.h"

#ifdef __EMSCRIPTEN__
#include <emscripten.h>
#define SRMJS_EXPORT EMSCRIPTEN_KEEPALIVE
#else
#define SRMJS_EXPORT
#endif

/* Pinned peers of one client: a page talks to a few members, not a mesh. */
#define JSC_MAX_PEERS 32
/* Messages waiting for the driver; jsc_flush stops building data packets
 * when it is full (the transport then simply has not sent them yet). */
#define JSC_OUTQ 128
/* Our own notices (conn events are polled from the conns): a few per peer
 * between two polls of the driver, which drains them on every pass. */
#define JSC_EVQ (4 * JSC_MAX_PEERS + 8)
/* Data packets one peer may build per flush before the others get a turn,
 * as the engine's PEER_PACKETS_PER_PASS. */
#define JSC_PEER_PACKETS 64
/* Without keys a transport cannot send; its timers (open timeout, idle)
 * need no precision then (engine.c's NO_SESSION_TICK). */
#define JSC_NO_SESSION_TICK_US 50000
/* A relayed packet must fit the server's limit with the relay header. */
#define JSC_MAX_PAYLOAD (WIRE_MAX_UDP_PAYLOAD - RDV_RELAY_OVERHEAD)
#define JSC_BUF 2048

/* Events for the driver (jsc_poll_event). */
enum jsc_event_type {
	JSC_EV_REGISTERED = 1, /* the relay registered us */
	JSC_EV_OPENED = 2,     /* stream accepted by the peer */
	JSC_EV_READABLE = 3,   /* read until jsc_stream_read returns 0 */
	JSC_EV_WRITABLE = 4,   /* write space again */
	JSC_EV_FIN = 5,        /* the peer finished sending, all read */
	JSC_EV_RESET = 6,      /* reason: enum wire_reset_reason */
	JSC_EV_PEER_DOWN = 7,  /* reason: enum srm_error; every stream of the peer is gone */
	JSC_EV_NOTFOUND = 8,   /* the server knows no such peer (or no consent) */
	JSC_EV_ESTABLISHED = 9,/* a handshake completed: reason 0 ours, 1 the peer's we answered */
};

struct jsc_event {
	int32_t type, peer, reason;
	uint64_t stream;
};

struct jsc_peer {
	uint8_t pub[NOISE_KEY_BYTES];
	struct session *session;
	struct conn *conn;
	uint64_t conn_boot_id; /* the peer instance the conn talks to; 0: fresh */
	uint32_t rx_last_index; /* our receiver index of the last DATA opened */
};

struct jsc_msg {
	uint16_t len;
	uint8_t data[JSC_BUF];
};

struct jsc {
	struct identity id;
	struct index_table *indices;
	struct rdv_client *rdv;
	struct session_config scfg;
	struct jsc_peer peers[JSC_MAX_PEERS];
	size_t npeers;
	bool link_up;
	bool relinked; /* the link came (back) up: report the next registration */
	bool pinned;   /* register only with the server whose key is server_pub */
	uint8_t server_pub[RDV_KEY_BYTES];
	struct jsc_msg out[JSC_OUTQ];
	size_t out_head, out_count;
	struct jsc_event ev[JSC_EVQ];
	size_t ev_head, ev_count;
	size_t poll_peer; /* round robin of conn events */
	uint64_t dropped; /* packets refused (bad, unknown, replayed) */
};

static uint64_t us_of(double now_ms) { return now_ms > 0 ? (uint64_t)(now_ms * 1000.0) : 0; }

/* ---- Queues --------------------------------------------------------------- */

static void push_event(struct jsc *j, int type, int peer, int reason, uint64_t stream)
{
	if (j->ev_count == JSC_EVQ)
		return; /* cannot happen: see JSC_EVQ */
	j->ev[(j->ev_head + j->ev_count++) % JSC_EVQ] =
		(struct jsc_event){ type, peer, reason, stream };
}

static uint8_t *out_slot(struct jsc *j)
{
	return j->out_count == JSC_OUTQ ? NULL : j->out[(j->out_head + j->out_count) % JSC_OUTQ].data;
}

static void out_commit(struct jsc *j, size_t len)
{
	j->out[(j->out_head + j->out_count++) % JSC_OUTQ].len = (uint16_t)len;
}

/* An srmudp packet for peer p, through the relay.  False when it cannot
 * go now (not registered, queue full): a handshake is retried by the
 * session, a data packet counts as lost to the transport. */
static bool send_relayed(struct jsc *j, struct jsc_peer *p, const uint8_t *pkt, size_t len)
{
	uint8_t *slot = out_slot(j);
	if (!slot || !j->link_up)
		return false;
	size_t n = rdv_client_wrap_relay(j->rdv, p->pub, pkt, len, slot, JSC_BUF);
	if (!n)
		return false;
	out_commit(j, n);
	return true;
}

/* ---- Peers and their transports ------------------------------------------ */

static struct jsc_peer *peer_at(struct jsc *j, int peer)
{
	return peer >= 0 && (size_t)peer < j->npeers ? &j->peers[peer] : NULL;
}

static int peer_index(const struct jsc *j, const struct jsc_peer *p) { return (int)(p - j->peers); }

static struct jsc_peer *peer_by_key(struct jsc *j, const uint8_t *pub)
{
	for (size_t i = 0; i < j->npeers; i++)
		if (sodium_memcmp(j->peers[i].pub, pub, NOISE_KEY_BYTES) == 0)
			return &j->peers[i];
	return NULL;
}

static struct conn *peer_conn(struct jsc *j, struct jsc_peer *p, uint64_t now_us)
{
	if (p->conn)
		return p->conn;
	struct conn_config cc = {
		/* Both sides derive opposite parities from the key order. */
		.stream_id_parity = memcmp(j->id.pub, p->pub, NOISE_KEY_BYTES) < 0 ? 0 : 1,
		.cc = SRM_CC_BBR,
		.compress = SRM_COMPRESS_AUTO,
		.max_streams = CONN_DEFAULT_MAX_STREAMS,
		.max_udp_payload = JSC_MAX_PAYLOAD,
	};
	p->conn = conn_new(&cc, now_us);
	p->conn_boot_id = p->conn && session_established(p->session) ? session_peer_boot_id(p->session) : 0;
	return p->conn;
}

/* The transport is gone: the driver fails every stream of the peer. */
static void drop_conn(struct jsc *j, struct jsc_peer *p, int error)
{
	if (!p->conn)
		return;
	conn_free(p->conn);
	p->conn = NULL;
	p->conn_boot_id = 0;
	push_event(j, JSC_EV_PEER_DOWN, peer_index(j, p), error, 0);
}

static void fresh_session(struct jsc *j, struct jsc_peer *p)
{
	struct session *s = session_new(&j->id, p->pub, &j->scfg, j->indices);
	if (!s)
		return; /* keep the old one: it fails its next handshake */
	session_free(p->session);
	p->session = s;
}

/* A new boot id is a restarted peer: its streams are gone with it. */
static void peer_boot(struct jsc *j, struct jsc_peer *p, uint64_t boot)
{
	if (p->conn && p->conn_boot_id && p->conn_boot_id != boot)
		drop_conn(j, p, SRM_ERR_RESET);
	if (p->conn)
		p->conn_boot_id = boot;
}

static void check_restart(struct jsc *j, struct jsc_peer *p)
{
	if (p->conn && session_established(p->session))
		peer_boot(j, p, session_peer_boot_id(p->session));
}

/* Bucket padding (SRMUDP_PAD=bucket, the engine's default): sizes say
 * little about content.  FRAME_PADDING is zero bytes. */
static size_t pad_to(const struct conn *c, size_t len)
{
	static const size_t buckets[] = { 128, 256, 512, 1024 };
	size_t mtu = conn_mtu_payload(c);
	if (len >= mtu)
		return len; /* a PMTU probe, padded already */
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		size_t target = buckets[i] - WIRE_DATA_OVERHEAD;
		if (len <= target && target <= mtu)
			return target;
	}
	return mtu;
}

static void flush_peer(struct jsc *j, struct jsc_peer *p, uint64_t now_us, bool may_send_data)
{
	uint64_t now_ms = now_us / 1000;
	if (p->conn && conn_next_deadline(p->conn, now_us) <= now_us)
		conn_on_timeout(p->conn, now_us);
	/* A fresh transport's first OPEN rides in the INIT (one round trip
	 * for the first stream, as engine_send.c does). */
	uint8_t early[NOISE_EARLY_BYTES];
	size_t early_len = p->conn && !p->conn_boot_id ? conn_early_open(p->conn, early, sizeof(early)) : 0;
	session_set_early(p->session, early, early_len);
	if (j->link_up && rdv_client_registered(j->rdv, now_ms, NULL)) {
		uint8_t hs[JSC_BUF];
		size_t n = session_handshake_packet(p->session, now_ms, hs, sizeof(hs));
		if (n)
			send_relayed(j, p, hs, n);
	}
	if (p->conn && session_failed(p->session)) {
		drop_conn(j, p, session_error(p->session));
		return;
	}
	if (!p->conn || !session_established(p->session))
		return;
	check_restart(j, p);
	if (!p->conn || !may_send_data)
		return;
	uint8_t plain[JSC_BUF], sealed[JSC_BUF];
	for (int i = 0; i < JSC_PEER_PACKETS && out_slot(j); i++) {
		uint64_t pn;
		size_t len = conn_build_packet(p->conn, now_us, plain, WIRE_MAX_UDP_PAYLOAD, &pn);
		if (!len)
			break;
		size_t padded = pad_to(p->conn, len);
		memset(plain + len, FRAME_PADDING, padded - len);
		int n = session_seal(p->session, pn, plain, padded, sealed, sizeof(sealed), now_ms);
		sodium_memzero(plain, padded);
		if (n < 0) {
			/* Keys expired: lost to the transport, resent after
			 * the new handshake. */
			session_want_handshake(p->session, now_ms);
			break;
		}
		send_relayed(j, p, sealed, (size_t)n);
	}
}

/* ---- Inner packets (relayed from a peer) ---------------------------------- */

struct early_ctx {
	struct jsc *j;
	struct jsc_peer *p;
	uint64_t now_us;
};

/* session_early_fn: an INIT that opens a stream to us.  We listen on no
 * port, so the answer riding in our RESP is the refusal. */
static void on_early(void *ctx, const uint8_t in[NOISE_EARLY_BYTES], uint64_t peer_boot_id,
		     uint8_t out[NOISE_EARLY_BYTES])
{
	struct early_ctx *x = ctx;
	peer_boot(x->j, x->p, peer_boot_id);
	struct conn *c = peer_conn(x->j, x->p, x->now_us);
	if (!c)
		return;
	x->p->conn_boot_id = peer_boot_id;
	uint64_t id;
	if (conn_receive_early(c, in, NOISE_EARLY_BYTES, x->now_us, &id) != 0) {
		x->j->dropped++;
		return;
	}
	if (id == UINT64_MAX)
		return;
	conn_stream_reset(c, id, RESET_REFUSED);
	conn_early_answer(c, id, out, NOISE_EARLY_BYTES);
}

static void on_init(struct jsc *j, struct jsc_peer *from, const uint8_t *pkt, size_t len, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	struct noise_init in;
	if (cookie_check_mac1(pkt, len, j->id.mac1_key) != 0 || noise_consume_init(&j->id, pkt, len, &in) != 0) {
		j->dropped++;
		return;
	}
	/* The relay names the sender; the handshake proves it. */
	if (sodium_memcmp(in.peer_pub, from->pub, NOISE_KEY_BYTES) != 0) {
		noise_init_wipe(&in);
		j->dropped++;
		return;
	}
	uint8_t resp[JSC_BUF];
	size_t resp_len = 0;
	struct early_ctx x = { j, from, now_us };
	int rc = session_receive_init(from->session, &in, now_ms, on_early, &x, resp, sizeof(resp), &resp_len);
	noise_init_wipe(&in);
	if (resp_len)
		send_relayed(j, from, resp, resp_len);
	if (rc < 0)
		j->dropped++;
	else if (resp_len)
		push_event(j, JSC_EV_ESTABLISHED, peer_index(j, from), 1, 0);
}

static struct jsc_peer *by_index(struct jsc *j, struct jsc_peer *from, const uint8_t *pkt, size_t len)
{
	uint32_t idx;
	if (session_receiver_index(pkt, len, &idx) != 0)
		return NULL;
	struct session *s = index_table_lookup(j->indices, idx);
	return s && s == from->session ? from : NULL;
}

static void on_resp_or_cookie(struct jsc *j, struct jsc_peer *from, const uint8_t *pkt, size_t len,
			      uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	bool is_resp = pkt[0] == WIRE_HANDSHAKE_RESP;
	if (is_resp && cookie_check_mac1(pkt, len, j->id.mac1_key) != 0) {
		j->dropped++;
		return;
	}
	struct jsc_peer *p = by_index(j, from, pkt, len);
	if (!p) {
		j->dropped++;
		return;
	}
	uint8_t early[NOISE_EARLY_BYTES] = { 0 };
	int rc = is_resp ? session_receive_resp(p->session, pkt, len, now_ms, early)
			 : session_receive_cookie(p->session, pkt, len, now_ms);
	if (rc < 0) {
		j->dropped++;
		if (rc == SRM_ERR_VERSION)
			drop_conn(j, p, SRM_ERR_VERSION);
		return;
	}
	if (!is_resp)
		return;
	push_event(j, JSC_EV_ESTABLISHED, peer_index(j, p), 0, 0);
	/* Key confirmation: our first packet (a fresh conn's PING) lets the
	 * responder use the keys; the RESP's early frames answer our OPEN. */
	struct conn *c = peer_conn(j, p, now_us);
	uint64_t opened;
	if (c && !p->conn_boot_id && conn_receive_early(c, early, sizeof(early), now_us, &opened) != 0)
		j->dropped++;
}

static void on_data(struct jsc *j, struct jsc_peer *from, const uint8_t *pkt, size_t len, uint64_t now_us)
{
	struct jsc_peer *p = len >= WIRE_DATA_OVERHEAD ? by_index(j, from, pkt, len) : NULL;
	if (!p) {
		j->dropped++;
		return;
	}
	uint8_t plain[JSC_BUF];
	uint64_t pn;
	int n = session_open(p->session, pkt, len, plain, sizeof(plain), &pn, now_us / 1000);
	if (n < 0) {
		j->dropped++;
		return;
	}
	p->rx_last_index = get_le32(pkt + DATA_RECEIVER_AT);
	peer_conn(j, p, now_us);
	check_restart(j, p); /* may drop the conn */
	struct conn *c = peer_conn(j, p, now_us);
	if (c && conn_handle_packet(c, now_us, pn, plain, (size_t)n) < 0)
		j->dropped++;
	sodium_memzero(plain, sizeof(plain));
}

static void on_inner(struct jsc *j, struct jsc_peer *from, const uint8_t *pkt, size_t len, uint64_t now_us)
{
	if (len < WIRE_HEADER_BYTES || pkt[1] != WIRE_VERSION) {
		j->dropped++;
		return;
	}
	switch (pkt[0]) {
	case WIRE_HANDSHAKE_INIT:
		on_init(j, from, pkt, len, now_us);
		break;
	case WIRE_HANDSHAKE_RESP:
	case WIRE_COOKIE_REPLY:
		on_resp_or_cookie(j, from, pkt, len, now_us);
		break;
	case WIRE_DATA:
		on_data(j, from, pkt, len, now_us);
		break;
	default: /* PUNCH means nothing on a relay; anything else is junk */
		j->dropped++;
	}
}

/* ---- The API the driver calls --------------------------------------------- */

/* A new private key and its public key.  Returns 0. */
SRMJS_EXPORT int jsc_keygen(uint8_t secret[NOISE_KEY_BYTES], uint8_t pub[NOISE_KEY_BYTES])
{
	do
		randombytes_buf(secret, NOISE_KEY_BYTES);
	while (crypto_scalarmult_base(pub, secret) != 0);
	return 0;
}

/* The public key of a private one.  Returns 0 or SRM_ERR_INVALID. */
SRMJS_EXPORT int jsc_public_key(const uint8_t secret[NOISE_KEY_BYTES], uint8_t pub[NOISE_KEY_BYTES])
{
	struct identity id;
	int rc = identity_init(&id, secret);
	if (rc == 0)
		memcpy(pub, id.pub, NOISE_KEY_BYTES);
	identity_wipe(&id);
	return rc;
}

/* wall_offset_ms: Date.now() - performance.now(), so that handshake and
 * registration timestamps follow the wall clock (replay protection across
 * restarts).  NULL on a bad key or no memory. */
SRMJS_EXPORT struct jsc *jsc_new(const uint8_t secret[NOISE_KEY_BYTES], double wall_offset_ms, double now)
{
	if (sodium_init() < 0)
		return NULL;
	struct jsc *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	if (identity_init(&j->id, secret) != 0)
		goto fail;
	j->indices = index_table_new();
	randombytes_buf(&j->scfg.boot_id, sizeof(j->scfg.boot_id));
	j->scfg.boot_id |= 1; /* 0 means "none yet" to the peer's engine */
	j->scfg.local_caps = session_local_caps();
	j->scfg.wall_offset_ms = (int64_t)llround(wall_offset_ms);
	struct rdv_client_config rc = { .id = &j->id, .wall_offset_ms = (uint64_t)llround(wall_offset_ms) };
	j->rdv = j->indices ? rdv_client_new(&rc, us_of(now) / 1000) : NULL;
	if (!j->rdv)
		goto fail;
	return j;
fail:
	if (j->indices)
		index_table_free(j->indices);
	identity_wipe(&j->id);
	free(j);
	return NULL;
}

SRMJS_EXPORT void jsc_free(struct jsc *j)
{
	if (!j)
		return;
	for (size_t i = 0; i < j->npeers; i++) {
		if (j->peers[i].conn)
			conn_free(j->peers[i].conn);
		session_free(j->peers[i].session);
	}
	rdv_client_free(j->rdv);
	index_table_free(j->indices);
	identity_wipe(&j->id);
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* Pin a peer.  Returns its index, SRM_ERR_INVALID (our own key, a
 * low-order key), SRM_ERR_EXISTS, SRM_ERR_NOMEM (JSC_MAX_PEERS). */
SRMJS_EXPORT int jsc_add_peer(struct jsc *j, const uint8_t pub[NOISE_KEY_BYTES], double now)
{
	if (peer_by_key(j, pub))
		return SRM_ERR_EXISTS;
	if (j->npeers == JSC_MAX_PEERS)
		return SRM_ERR_NOMEM;
	struct jsc_peer *p = &j->peers[j->npeers];
	memset(p, 0, sizeof(*p));
	memcpy(p->pub, pub, NOISE_KEY_BYTES);
	p->session = session_new(&j->id, pub, &j->scfg, j->indices);
	if (!p->session)
		return SRM_ERR_INVALID;
	j->npeers++;
	/* Consent: the server relays only between keys that list each other. */
	uint8_t keys[JSC_MAX_PEERS][RDV_KEY_BYTES];
	for (size_t i = 0; i < j->npeers; i++)
		memcpy(keys[i], j->peers[i].pub, RDV_KEY_BYTES);
	int rc = rdv_client_set_peers(j->rdv, (const uint8_t(*)[RDV_KEY_BYTES])keys, j->npeers, us_of(now) / 1000);
	return rc < 0 ? rc : (int)(j->npeers - 1);
}

/* The WebSocket to the relay opened (up) or closed.  Registering starts
 * (again) at once when it opens. */
SRMJS_EXPORT void jsc_link(struct jsc *j, int up, double now)
{
	j->link_up = up != 0;
	if (j->link_up) {
		j->relinked = true;
		rdv_client_relink(j->rdv, j->pinned ? j->server_pub : NULL, us_of(now) / 1000);
	}
}

/* Pin the relay's static key (a gate's, or a server started with --key):
 * the AUTH names it, and only answers under it count (rendezvous.h,
 * rdv_pin_keys).  A gate admits only members that pin it.  Applies from
 * the next jsc_link.  Returns 0. */
SRMJS_EXPORT int jsc_pin_server(struct jsc *j, const uint8_t pub[RDV_KEY_BYTES])
{
	memcpy(j->server_pub, pub, RDV_KEY_BYTES);
	j->pinned = true;
	return 0;
}

/* AUTH rounds unanswered since the last registration: the server is
 * there (it answers REGISTER) but refuses us (not a member of a gate, a
 * pinned key that is not the server's). */
SRMJS_EXPORT int jsc_auth_failures(struct jsc *j) { return (int)rdv_client_auth_failures(j->rdv); }

SRMJS_EXPORT int jsc_registered(struct jsc *j, double now)
{
	return rdv_client_registered(j->rdv, us_of(now) / 1000, NULL);
}

/* One binary message from the relay.  Returns 0, or a drop code (counted). */
SRMJS_EXPORT int jsc_receive(struct jsc *j, const uint8_t *msg, size_t len, double now)
{
	uint64_t now_us = us_of(now), now_ms = now_us / 1000;
	if (len < WIRE_HEADER_BYTES || (msg[0] != WIRE_RENDEZVOUS && msg[0] != WIRE_RELAY)) {
		j->dropped++;
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	}
	bool was = rdv_client_registered(j->rdv, now_ms, NULL);
	struct rdv_event ev;
	int rc = rdv_client_receive(j->rdv, msg, len, now_ms, &ev);
	if (rc < 0) {
		j->dropped++;
		return rc;
	}
	if (rc == 0)
		return 0;
	struct jsc_peer *p = peer_by_key(j, ev.peer);
	switch (ev.type) {
	case RDV_EV_REGISTERED:
		if (!was || j->relinked)
			push_event(j, JSC_EV_REGISTERED, -1, 0, 0);
		j->relinked = false;
		/* Handshakes waiting for the registration leave now. */
		for (size_t i = 0; i < j->npeers; i++)
			if (j->peers[i].conn)
				session_handshake_now(j->peers[i].session, now_ms);
		break;
	case RDV_EV_PEER_NOTFOUND:
		if (p && p->conn && !session_established(p->session)) {
			push_event(j, JSC_EV_NOTFOUND, peer_index(j, p), SRM_ERR_UNREACHABLE, 0);
			drop_conn(j, p, SRM_ERR_UNREACHABLE);
		}
		break;
	case RDV_EV_RELAYED:
		if (p)
			on_inner(j, p, ev.inner, ev.inner_len, now_us);
		else
			j->dropped++; /* the server relays only between listed keys */
		break;
	default: /* candidates and punch requests: no UDP to punch with */
		break;
	}
	return 0;
}

/* Send what is due: registration, handshakes, and (may_send_data: the
 * WebSocket is not backed up) transport packets. */
SRMJS_EXPORT void jsc_flush(struct jsc *j, double now, int may_send_data)
{
	uint64_t now_us = us_of(now), now_ms = now_us / 1000;
	if (j->link_up) {
		uint8_t *slot;
		size_t n;
		while ((slot = out_slot(j)) && (n = rdv_client_poll(j->rdv, now_ms, slot, JSC_BUF)) > 0)
			out_commit(j, n);
	}
	for (size_t i = 0; i < j->npeers; i++)
		flush_peer(j, &j->peers[i], now_us, may_send_data != 0);
	/* The key work of a next INIT, off the path of the packet that
	 * will need it. */
	for (size_t i = 0; i < j->npeers; i++)
		session_prepare_init(j->peers[i].session);
}

/* When jsc_flush wants calling again (ms, same clock as now); +Infinity:
 * only on input. */
SRMJS_EXPORT double jsc_deadline(struct jsc *j, double now)
{
	uint64_t now_us = us_of(now), when = UINT64_MAX;
	if (j->link_up) {
		uint64_t r = rdv_client_deadline(j->rdv);
		if (r != UINT64_MAX)
			when = r * 1000;
	}
	for (size_t i = 0; i < j->npeers; i++) {
		struct jsc_peer *p = &j->peers[i];
		uint64_t s = session_next_deadline(p->session, now_us / 1000);
		if (s != UINT64_MAX && s * 1000 < when)
			when = s * 1000;
		if (p->conn) {
			uint64_t c = conn_next_deadline(p->conn, now_us);
			if (!session_established(p->session) && c < now_us + JSC_NO_SESSION_TICK_US)
				c = now_us + JSC_NO_SESSION_TICK_US;
			if (c < when)
				when = c;
		}
	}
	if (when == UINT64_MAX)
		return INFINITY;
	return (double)when / 1000.0;
}

/* The next message for the WebSocket into buf: its length, 0 when none,
 * SRM_ERR_INVALID if cap is short. */
SRMJS_EXPORT int jsc_out_take(struct jsc *j, uint8_t *buf, size_t cap)
{
	if (!j->out_count)
		return 0;
	struct jsc_msg *m = &j->out[j->out_head];
	if (m->len > cap)
		return SRM_ERR_INVALID;
	memcpy(buf, m->data, m->len);
	j->out_head = (j->out_head + 1) % JSC_OUTQ;
	j->out_count--;
	return m->len;
}

/* Next event: 1 with ev = {type, peer, reason} and *stream, or 0. */
SRMJS_EXPORT int jsc_poll_event(struct jsc *j, int32_t ev[3], double *stream)
{
	if (j->ev_count) {
		struct jsc_event *e = &j->ev[j->ev_head];
		ev[0] = e->type, ev[1] = e->peer, ev[2] = e->reason;
		*stream = (double)e->stream;
		j->ev_head = (j->ev_head + 1) % JSC_EVQ;
		j->ev_count--;
		return 1;
	}
	for (size_t k = 0; k < j->npeers; k++) {
		size_t i = (j->poll_peer + k) % j->npeers;
		struct jsc_peer *p = &j->peers[i];
		struct conn_event ce;
		while (p->conn && conn_poll_event(p->conn, &ce)) {
			int type = 0;
			switch (ce.type) {
			case CONN_EV_INCOMING:
				conn_stream_reset(p->conn, ce.stream, RESET_REFUSED);
				continue;
			case CONN_EV_OPENED: type = JSC_EV_OPENED; break;
			case CONN_EV_READABLE: type = JSC_EV_READABLE; break;
			case CONN_EV_WRITABLE: type = JSC_EV_WRITABLE; break;
			case CONN_EV_FIN: type = JSC_EV_FIN; break;
			case CONN_EV_RESET: type = JSC_EV_RESET; break;
			case CONN_EV_DEAD:
				/* Their streams' RESET events came first.  A peer
				 * silent for the idle timeout has most likely lost
				 * its keys (it restarted; nothing tells a relayed
				 * client): the next stream handshakes afresh. */
				drop_conn(j, p, SRM_ERR_TIMEOUT);
				fresh_session(j, p);
				return jsc_poll_event(j, ev, stream);
			case CONN_EV_CLOSED:
				/* The peer dropped its keys: ours go too, unless
				 * newer ones than those the CLOSE came under are
				 * already its next session (engine.c reasons the
				 * same). */
				drop_conn(j, p, SRM_ERR_RESET);
				if (session_index_is_newest(p->session, p->rx_last_index))
					fresh_session(j, p);
				return jsc_poll_event(j, ev, stream);
			default:
				continue;
			}
			j->poll_peer = i;
			ev[0] = type, ev[1] = (int32_t)i, ev[2] = (int32_t)ce.reason;
			*stream = (double)ce.stream;
			return 1;
		}
	}
	return 0;
}

/* Open a stream to port on peer.  Returns the stream id (>= 0) or
 * SRM_ERR_NOTFOUND (no such peer), SRM_ERR_NOMEM, SRM_ERR_CLOSED. */
SRMJS_EXPORT double jsc_stream_open(struct jsc *j, int peer, int port, double now)
{
	struct jsc_peer *p = peer_at(j, peer);
	uint64_t now_us = us_of(now), id;
	if (!p)
		return SRM_ERR_NOTFOUND;
	if (port <= 0 || port > 65535)
		return SRM_ERR_INVALID;
	struct conn *c = peer_conn(j, p, now_us);
	if (!c)
		return SRM_ERR_NOMEM;
	int rc = conn_stream_open(c, (uint16_t)port, now_us, &id);
	if (rc < 0)
		return rc;
	session_want_handshake(p->session, now_us / 1000);
	/* A peer the server does not know answers NOTFOUND at once instead
	 * of a handshake timing out. */
	if (!session_established(p->session))
		rdv_client_lookup(j->rdv, p->pub, now_us / 1000);
	return (double)id;
}

#define STREAM_CONN(j, peer)                              \
	struct jsc_peer *p = peer_at(j, peer);            \
	if (!p || !p->conn)                               \
		return SRM_ERR_NOTFOUND;

/* Bytes taken (0: full, wait for WRITABLE), or a negative error. */
SRMJS_EXPORT int jsc_stream_write(struct jsc *j, int peer, double id, const uint8_t *buf, size_t n)
{
	STREAM_CONN(j, peer);
	return (int)conn_stream_write(p->conn, (uint64_t)id, buf, n);
}

/* Bytes read (0: nothing now, or the end after FIN), or a negative error. */
SRMJS_EXPORT int jsc_stream_read(struct jsc *j, int peer, double id, uint8_t *buf, size_t cap)
{
	STREAM_CONN(j, peer);
	return (int)conn_stream_read(p->conn, (uint64_t)id, buf, cap);
}

SRMJS_EXPORT int jsc_stream_shutdown(struct jsc *j, int peer, double id)
{
	STREAM_CONN(j, peer);
	return conn_stream_shutdown(p->conn, (uint64_t)id);
}

SRMJS_EXPORT int jsc_stream_reset(struct jsc *j, int peer, double id)
{
	STREAM_CONN(j, peer);
	return conn_stream_reset(p->conn, (uint64_t)id, RESET_ABORTED);
}

SRMJS_EXPORT int jsc_stream_release(struct jsc *j, int peer, double id)
{
	STREAM_CONN(j, peer);
	conn_stream_release(p->conn, (uint64_t)id);
	return 0;
}

/* Say goodbye to every peer (CLOSE frames go out with the next flush). */
SRMJS_EXPORT void jsc_close(struct jsc *j)
{
	for (size_t i = 0; i < j->npeers; i++)
		if (j->peers[i].conn && session_established(j->peers[i].session))
			conn_close(j->peers[i].conn, 0);
}

/* Fields of jsc_peer_stats, in order (lib/srmudp.js names them). */
#define JSC_STATS 15

/* One peer's statistics into out[JSC_STATS] (doubles: exact below 2^53).
 * Returns 0 or SRM_ERR_NOTFOUND. */
SRMJS_EXPORT int jsc_peer_stats(struct jsc *j, int peer, double now, double *out)
{
	struct jsc_peer *p = peer_at(j, peer);
	if (!p)
		return SRM_ERR_NOTFOUND;
	struct srm_peer_stats st;
	memset(&st, 0, sizeof(st));
	if (p->conn)
		conn_get_stats(p->conn, &st);
	uint64_t age = session_handshake_age_ms(p->session, us_of(now) / 1000);
	const double v[JSC_STATS] = {
		session_established(p->session), st.srtt_us / 1000.0, st.min_rtt_us / 1000.0,
		(double)st.cwnd_bytes, st.pmtu, (double)st.bytes_sent, (double)st.bytes_received,
		(double)st.stream_bytes_sent, (double)st.stream_bytes_received,
		(double)st.packets_sent, (double)st.packets_received, (double)st.packets_lost,
		(double)st.packets_retransmitted, st.streams, age == UINT64_MAX ? -1 : (double)age,
	};
	memcpy(out, v, sizeof(v));
	return 0;
}

SRMJS_EXPORT double jsc_dropped(struct jsc *j) { return (double)j->dropped; }
