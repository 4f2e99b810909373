/*
 * engine_receive.c — what a datagram means: it is classified by its first
 * byte, admitted (handshake guard, the limit on failed authentications,
 * the peer's instance slot) and handed to the session (handshake,
 * decryption), charged to the peer's rate budget, then handed to the
 * peer's transport; every authenticated packet tells the path manager
 * where the peer is.  Nothing unauthenticated ever gets a reply larger
 * than itself: the only reply to an unauthenticated packet is a cookie
 * reply, which the handshake guard keeps smaller than the INIT that
 * caused it.
 */
#include <string.h>

#include "engine.h"
#include "log.h"

/* A drop we can pin on a peer (its packet, by receiver index or key) also
 * counts in its own row of `srmudp status`. */
static void drop_peer(struct srm_engine *e, struct peer *p, enum srm_drop_reason why)
{
	engine_drop(e, why);
	p->drops[why]++;
}

/* A relayed packet whose receiver index is no session of the peer the
 * relay named: garbage pushed through the server (issue 18 item 9: a
 * 94.7 MB flood showed in no counter).  Counted for the engine and, when
 * the relay named a peer of ours, in that peer's row. */
static bool relay_mismatch(struct srm_engine *e, struct peer *p, struct peer *relayed_from)
{
	if (!relayed_from)
		return !p;
	if (p && relayed_from->parent == p->parent)
		return false;
	drop_peer(e, relayed_from, SRM_DROP_UNKNOWN_INDEX);
	return true;
}

/* SRMUDP_RATE / SRMUDP_RATE_PACKETS: a token bucket per peer holding one
 * second's worth, charged only for packets that authenticated (a forgery
 * must not spend the peer's budget: issue 18 item 8 measured 2,200 forged
 * packets a second holding a 2 MiB/s transfer at 0).  One second, not
 * 100 ms: at 2 MiB/s and a 50 ms RTT the window is 100 KB, and a 200 KB
 * bucket would clip BBR's probing and ACK-compressed bursts into losses
 * that keep the sender under the limit; any second still admits at most
 * twice the rate. */
static bool rate_allow(struct srm_engine *e, struct peer *p, size_t len, uint64_t now_us)
{
	double byte_rate = (double)e->cfg.rate_bytes, pkt_rate = (double)e->cfg.rate_packets;
	if (byte_rate == 0 && pkt_rate == 0)
		return true;
	double secs = p->rate_refill_us ? (double)(now_us - p->rate_refill_us) / 1e6 : 1.0;
	p->rate_refill_us = now_us;
	p->rate_bytes += secs * byte_rate;
	if (p->rate_bytes > byte_rate)
		p->rate_bytes = byte_rate;
	p->rate_packets += secs * pkt_rate;
	if (p->rate_packets > pkt_rate)
		p->rate_packets = pkt_rate;
	if ((byte_rate && p->rate_bytes < (double)len) || (pkt_rate && p->rate_packets < 1))
		return false;
	p->rate_bytes -= (double)len;
	p->rate_packets -= 1;
	return true;
}

static struct peer *peer_by_session(struct srm_engine *e, const struct session *s)
{
	for (size_t i = 0; i < engine_slot_count(e); i++)
		if (engine_slot(e, i)->session == s)
			return engine_slot(e, i);
	return NULL;
}

/* The peer a RESP, COOKIE_REPLY or DATA packet is addressed to, by the
 * receiver index we gave out; counts the drop when there is none. */
static struct peer *peer_by_index(struct srm_engine *e, const uint8_t *pkt, size_t len)
{
	uint32_t idx;
	int rc = session_receiver_index(pkt, len, &idx);
	if (rc < 0) {
		engine_drop(e, session_drop_reason(rc));
		return NULL;
	}
	struct session *s = index_table_lookup(e->indices, idx);
	struct peer *p = s ? peer_by_session(e, s) : NULL;
	if (!p)
		engine_drop(e, SRM_DROP_UNKNOWN_INDEX);
	return p;
}

static uint64_t init_tag(const struct noise_init *in)
{
	uint64_t tag;
	memcpy(&tag, in->e_pub, sizeof(tag));
	return tag;
}

static bool init_seen(const struct srm_engine *e, const struct noise_init *in, uint64_t now_ms)
{
	uint64_t tag = init_tag(in);
	for (unsigned i = 0; i < INIT_SEEN; i++)
		if (e->init_seen[i].ms && e->init_seen[i].tag == tag &&
		    now_ms < e->init_seen[i].ms + INIT_SEEN_MS)
			return true;
	return false;
}

static void init_remember(struct srm_engine *e, const struct noise_init *in, uint64_t now_ms)
{
	e->init_seen[e->init_seen_next] = (struct init_seen){ init_tag(in), now_ms };
	e->init_seen_next = (e->init_seen_next + 1) % INIT_SEEN;
}

/* A handshake from `from` may come from the instance whose active path is
 * a: the same address, or both through relays (one process reaches us
 * through each of its gates, and crossing handshakes may take different
 * ones; a restarted peer there shows by its boot id once established). */
static bool same_place(const struct path_addr *a, const struct path_addr *from)
{
	bool relay_a = a->kind == PATH_RDV_RELAY || a->kind == PATH_WS_RELAY;
	bool relay_f = from->kind == PATH_RDV_RELAY || from->kind == PATH_WS_RELAY;
	return path_same(a, from) || (relay_a && relay_f);
}

/* The slot a handshake from key pub at `from` belongs to: the instance
 * already there, else the configured slot unless another instance keeps
 * it busy, else a new extra instance (see struct peer). */
static struct peer *instance_for_init(struct srm_engine *e, const struct noise_init *in,
				      const struct path_addr *from, uint64_t now_ms, bool *listed)
{
	const uint8_t *pub = in->peer_pub;
	struct peer *configured = NULL;
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (!p->session || memcmp(p->cfg.pubkey, pub, SRM_KEY_BYTES) != 0)
			continue;
		if (same_place(path_active(p->paths), from)) {
			*listed = true;
			return p;
		}
		if (!p->extra)
			configured = p;
	}
	if (!configured)
		return NULL;
	*listed = true;
	/* Busy: another address spoke for this key recently (a handshake
	 * counts, before its keys are even confirmed). */
	bool busy = path_confirmed(configured->paths) &&
		    now_ms < path_last_rx_ms(configured->paths) + INSTANCE_BUSY_MS;
	if (!busy)
		return configured;
	/* A new session remembers no timestamps: refuse a replayed INIT
	 * (an old one, or a recent one answered already) before it can take
	 * a slot. */
	if (init_seen(e, in, now_ms)) {
		engine_drop(e, SRM_DROP_REPLAY);
		return NULL;
	}
	int rc = session_check_init_fresh(configured->session, in, now_ms);
	if (rc != 0) {
		engine_drop(e, session_drop_reason(rc));
		return NULL;
	}
	return engine_instance_new(e, configured);
}

/* The cheap checks before any Diffie-Hellman (mac1, rate limit, cookie
 * under load).  A cookie reply, never larger than the packet, is the only
 * answer an unauthenticated sender can get. */
static bool guard_passes(struct srm_engine *e, const uint8_t *pkt, size_t len,
			 const struct path_addr *from, uint64_t now_ms)
{
	if (path_is_relay(from->kind)) {
		/* The relay already limits each registered sender, every
		 * relayed packet shows the relay's address, and no cookie
		 * could go back through it: mac1 is the check that applies. */
		int rc = cookie_check_mac1(pkt, len, e->identity->mac1_key);
		if (rc != 0)
			engine_drop(e, session_drop_reason(rc));
		return rc == 0;
	}
	uint8_t reply[PACKET_BUF];
	size_t reply_len = 0;
	int rc = handshake_guard_check(e->guard, pkt, len, (const struct sockaddr *)&from->addr,
				       from->len, now_ms, reply, &reply_len);
	if (rc == 0)
		return true;
	if (reply_len && reply_len < len && from->kind == PATH_UDP)
		engine_send(e, &from->addr, from->len, reply, reply_len);
	engine_drop(e, session_drop_reason(rc));
	return false;
}

struct early_init {
	struct srm_engine *e;
	struct peer *p;
	uint64_t now_us;
};

/* session_early_fn: the OPEN an INIT carries, answered in our RESP: the
 * listener takes or refuses it at once (a forwarding target's loopback
 * connect is settled first, listen_settle). */
static void on_early_frames(void *ctx, const uint8_t in[NOISE_EARLY_BYTES], uint64_t peer_boot_id,
			    uint8_t out[NOISE_EARLY_BYTES])
{
	struct early_init *x = ctx;
	struct peer *p = x->p;
	engine_peer_boot(x->e, p, peer_boot_id);
	struct conn *c = engine_peer_conn(x->e, p, x->now_us);
	if (!c)
		return;
	p->conn_boot_id = peer_boot_id;
	uint64_t id;
	if (conn_receive_early(c, in, NOISE_EARLY_BYTES, x->now_us, &id) != 0) {
		engine_drop(x->e, SRM_DROP_MALFORMED);
		return;
	}
	if (id == UINT64_MAX)
		return;
	bridge_conn_events(x->e, p, x->now_us); /* the listener takes or refuses it */
	listen_settle(x->e, p, id);
	if (p->conn)
		conn_early_answer(p->conn, id, out, NOISE_EARLY_BYTES);
}

static void on_init(struct srm_engine *e, const uint8_t *pkt, size_t len, const struct path_addr *from,
		    struct peer *relayed_from, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	uint8_t reply[PACKET_BUF];
	if (!guard_passes(e, pkt, len, from, now_ms))
		return;
	struct noise_init in;
	int rc = noise_consume_init(e->identity, pkt, len, &in);
	if (rc != 0) {
		engine_drop(e, session_drop_reason(rc));
		return;
	}
	bool listed = false;
	struct peer *p = instance_for_init(e, &in, from, now_ms, &listed);
	if (listed && !init_seen(e, &in, now_ms))
		init_remember(e, &in, now_ms);
	if (!listed || (p && relayed_from && relayed_from->parent != p->parent)) {
		static struct log_ratelimit rl;
		engine_drop(e, SRM_DROP_UNKNOWN_PEER);
		if (log_ratelimit_ok(&rl, now_ms, 10000)) {
			char key[SRM_PUBKEY_TEXT_BYTES];
			srm_pubkey_encode(in.peer_pub, key);
			LOG_WARN(NULL, "refused a handshake from unlisted key %s", key);
		}
		p = NULL;
	}
	if (!p) {
		noise_init_wipe(&in);
		return;
	}
	size_t resp_len = 0;
	struct early_init early = { e, p, now_us };
	rc = session_receive_init(p->session, &in, now_ms, on_early_frames, &early, reply,
				  sizeof(reply), &resp_len);
	noise_init_wipe(&in);
	if (rc == SRM_ERR_VERSION)
		LOG_ERR(p->cfg.name, "protocol version mismatch: no common version with the peer");
	if (resp_len)
		engine_send_path(e, p, from, reply, resp_len);
	if (rc < 0) {
		drop_peer(e, p, session_drop_reason(rc));
		return;
	}
	if (resp_len) {
		char text[64];
		LOG_INFO(p->cfg.name, "handshake answered: session with %s (%s, peer initiated)",
			 path_is_relay(from->kind) ? "the relay" : engine_addr_text(&from->addr, text, sizeof(text)),
			 path_is_relay(from->kind) ? "relayed" : "direct");
	}
	engine_path_received(e, p, from, now_ms);
}

static void on_resp_or_cookie(struct srm_engine *e, const uint8_t *pkt, size_t len,
			      const struct path_addr *from, struct peer *relayed_from, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	bool is_resp = pkt[0] == WIRE_HANDSHAKE_RESP;
	if (is_resp && !guard_passes(e, pkt, len, from, now_ms))
		return;
	struct peer *p = peer_by_index(e, pkt, len);
	if (relay_mismatch(e, p, relayed_from))
		return;
	uint8_t early[NOISE_EARLY_BYTES] = { 0 };
	int rc = is_resp ? session_receive_resp(p->session, pkt, len, now_ms, early)
			 : session_receive_cookie(p->session, pkt, len, now_ms);
	if (rc < 0) {
		drop_peer(e, p, session_drop_reason(rc));
		if (rc == SRM_ERR_VERSION)
			LOG_ERR(p->cfg.name, "protocol version mismatch: no common version with the peer");
		return;
	}
	if (is_resp) {
		char text[64];
		LOG_INFO(p->cfg.name, "session established with %s (%s, we initiated, %s)",
			 path_is_relay(from->kind) ? "the relay" : engine_addr_text(&from->addr, text, sizeof(text)),
			 path_is_relay(from->kind) ? "relayed" : "direct", session_cipher_name(p->session));
		engine_path_received(e, p, from, now_ms);
		/* Key confirmation: the responder may not use the new keys
		 * until our first packet arrives; a fresh conn starts with a
		 * PING. */
		struct conn *c = engine_peer_conn(e, p, now_us);
		uint64_t opened;
		if (c && !p->conn_boot_id && conn_receive_early(c, early, sizeof(early), now_us, &opened) != 0)
			engine_drop(e, SRM_DROP_MALFORMED);
	}
}

static void on_data(struct srm_engine *e, uint8_t *pkt, size_t len, const struct path_addr *from,
		    struct peer *relayed_from, uint64_t now_us)
{
	if (len < WIRE_DATA_OVERHEAD) {
		engine_drop(e, SRM_DROP_MALFORMED);
		return;
	}
	struct peer *p = peer_by_index(e, pkt, len);
	if (relay_mismatch(e, p, relayed_from))
		return;
	uint64_t now_ms = now_us / 1000;
	/* A cheap look before the AEAD: while failed opens are over their
	 * limit (ratelimit.h), only a number near the ones p's keys
	 * authenticated is worth an open. */
	uint32_t idx = get_le32(pkt + WIRE_HEADER_BYTES);
	bool plausible = auth_seen_plausible(&p->rx_seen, idx, get_le64(pkt + WIRE_HEADER_BYTES + 4));
	if (!auth_limit_may_open(&e->auth_fail, plausible, now_ms)) {
		drop_peer(e, p, SRM_DROP_RATELIMIT);
		return;
	}
	uint8_t plain[PACKET_BUF];
	uint64_t pn;
	int n = session_open(p->session, pkt, len, plain, sizeof(plain), &pn, now_ms);
	if (n < 0) {
		if (session_drop_reason(n) == SRM_DROP_AUTH)
			auth_limit_failed(&e->auth_fail, now_ms);
		drop_peer(e, p, session_drop_reason(n));
		return;
	}
	auth_seen_note(&p->rx_seen, idx, pn);
	p->rx_last_index = idx;
	/* Authenticated: the peer is where this came from (roaming, NAT
	 * rebinding, relay), whatever its budget says. */
	engine_path_received(e, p, from, now_ms);
	if (!rate_allow(e, p, len, now_us)) {
		/* Looks like loss to the sender, whose congestion control
		 * slows down. */
		drop_peer(e, p, SRM_DROP_RATELIMIT);
		return;
	}
	engine_peer_conn(e, p, now_us);
	engine_peer_check_restart(e, p); /* may replace the conn */
	struct conn *c = engine_peer_conn(e, p, now_us);
	if (!c)
		return;
	if (conn_handle_packet(c, now_us, pn, plain, (size_t)n) < 0)
		drop_peer(e, p, SRM_DROP_MALFORMED);
}

void engine_handle_datagram(struct srm_engine *e, uint8_t *pkt, size_t len, const struct path_addr *from,
			    struct peer *relayed_from, uint64_t now_us)
{
	if (len < WIRE_HEADER_BYTES) {
		engine_drop(e, SRM_DROP_MALFORMED);
		return;
	}
	if (pkt[1] != WIRE_VERSION) {
		engine_drop(e, SRM_DROP_VERSION);
		return;
	}
	switch (pkt[0]) {
	case WIRE_HANDSHAKE_INIT:
		on_init(e, pkt, len, from, relayed_from, now_us);
		break;
	case WIRE_HANDSHAKE_RESP:
	case WIRE_COOKIE_REPLY:
		on_resp_or_cookie(e, pkt, len, from, relayed_from, now_us);
		break;
	case WIRE_DATA:
		on_data(e, pkt, len, from, relayed_from, now_us);
		break;
	case WIRE_PUNCH:
		/* Opened the sender's NAT towards us; nothing to answer.  Only
		 * someone who knows our public key makes one. */
		if (cookie_check_mac1(pkt, len, e->identity->mac1_key) != 0)
			engine_drop(e, SRM_DROP_MAC);
		break;
	default:
		engine_drop(e, SRM_DROP_MALFORMED);
	}
}

void engine_receive(struct srm_engine *e, uint32_t sock, uint8_t *pkt, size_t len,
		    const struct sockaddr_storage *rawsrc, socklen_t rawlen, uint64_t now_us)
{
	struct path_addr from = { .kind = PATH_UDP, .sock = sock };
	from.len = engine_addr_for_socket(e, rawsrc, rawlen, &from.addr);
	e->stats.packets_received++;
	if (!from.len) {
		engine_drop(e, SRM_DROP_MALFORMED);
		return;
	}
	if (len >= WIRE_HEADER_BYTES && (pkt[0] == WIRE_RENDEZVOUS || pkt[0] == WIRE_RELAY) &&
	    (engine_rdv_receive(e, pkt, len, &from.addr, now_us) ||
	     engine_gate_receive(e, pkt, len, &from.addr, from.len, now_us)))
		return;
	if (len >= WIRE_HEADER_BYTES && pkt[0] == WIRE_VIA) {
		engine_via_receive(e, pkt, len, &from, now_us);
		return;
	}
	engine_handle_datagram(e, pkt, len, &from, NULL, now_us);
}

/* ---- Extra instances ------------------------------------------------------ */

struct peer *engine_instance_new(struct srm_engine *e, struct peer *configured)
{
	struct peer *p = NULL;
	for (size_t i = 0; i < e->extra_count && !p; i++)
		if (!e->extras[i].session)
			p = &e->extras[i];
	if (!p && e->extra_count < MAX_EXTRA_INSTANCES)
		p = &e->extras[e->extra_count++];
	if (!p) {
		engine_drop(e, SRM_DROP_RATELIMIT);
		return NULL;
	}
	memset(p, 0, sizeof(*p));
	p->index = -1;
	p->parent = configured->index;
	p->extra = true;
	p->cfg = configured->cfg;
	p->session = session_new(e->identity, p->cfg.pubkey, &e->session_cfg, e->indices);
	p->paths = path_peer_new(e->paths, p->cfg.name, NULL, 0, clock_now_ms());
	if (!p->session || !p->paths) {
		if (p->session)
			session_free(p->session);
		path_peer_free(p->paths);
		memset(p, 0, sizeof(*p));
		return NULL;
	}
	LOG_INFO(p->cfg.name, "another process with this key: tracking it as an extra instance");
	return p;
}

/* An extra instance nobody uses any more gives its slot back.  Returns
 * true when p was reaped. */
bool engine_instance_reap(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	uint32_t idle = e->cfg.idle_timeout_ms ? e->cfg.idle_timeout_ms : CONN_DEFAULT_IDLE_TIMEOUT_MS;
	if (!p->extra || p->bridges || now_ms < path_last_rx_ms(p->paths) + idle)
		return false;
	if (p->conn)
		conn_free(p->conn);
	session_free(p->session);
	path_peer_free(p->paths);
	memset(p, 0, sizeof(*p));
	return true;
}
