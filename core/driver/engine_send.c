/*
 * engine_send.c — what one peer sends: its handshake to every path it may be
 * at, then the transport's packets, padded, sealed straight into the send
 * batch (engine_udp.c) or onto another path (engine_path.c); and what a
 * failed handshake means for the streams waiting on it.
 */
#include <string.h>

#include "engine.h"
#include "log.h"

/* Packets one peer may emit per engine pass before others get a turn. */
#define PEER_PACKETS_PER_PASS 64

/* SRMUDP_PAD: grow the plaintext so the packet's size says little about
 * its content.  FRAME_PADDING (zero bytes) fills the rest. */
static size_t pad_to(const struct srm_engine *e, const struct conn *c, size_t len)
{
	static const size_t buckets[] = { 128, 256, 512, 1024 };
	size_t mtu = conn_mtu_payload(c);
	if (e->cfg.pad == SRM_PAD_OFF || len >= mtu)
		return len; /* off, or a PMTU probe already padded */
	if (e->cfg.pad == SRM_PAD_MTU)
		return mtu;
	for (size_t i = 0; i < sizeof(buckets) / sizeof(buckets[0]); i++) {
		size_t target = buckets[i] - WIRE_DATA_OVERHEAD;
		if (len <= target && target <= mtu)
			return target;
	}
	return mtu;
}

/* ---- A peer that does not answer --------------------------------------- */

/* An outgoing stream still opening, opened less than a connect timeout
 * ago: the attempt that just failed began before it (the warm-up's, or the
 * path manager's), and the stream is owed an attempt of its own. */
static bool stream_still_owed(const struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	struct bridge *b, *tmp;
	HASH_ITER(hh_peer, p->bridges, b, tmp)
		if (b->state == SRM_ERR_AGAIN && !b->listen_port &&
		    now_ms - b->opened_ms < e->cfg.connect_timeout_ms)
			return true;
	return false;
}

/* The session's handshake attempt timed out.  A program's stderr hears of
 * it (warn) only when a connection of its fails for good: an attempt a
 * stream outlives is tried again, and one nothing waited on is info. */
static void handshake_failed(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	if (stream_still_owed(e, p, now_ms)) {
		LOG_INFO(p->cfg.name, "handshake failed: peer unreachable; trying again for a connection "
				      "still waiting");
		session_want_handshake(p->session, now_ms);
		return;
	}
	bool lost = false, opening = false;
	struct bridge *b, *tmp;
	HASH_ITER(hh_peer, p->bridges, b, tmp) {
		if (b->state == SRM_ERR_AGAIN && !b->listen_port)
			opening = true; /* reported by engine_peer_unreachable */
		else
			lost = true;
	}
	struct peer *cp = &e->peers[p->parent];
	if (lost)
		LOG_WARN(p->cfg.name, "handshake failed: peer unreachable; its connections end");
	else if (!opening && now_ms >= cp->unreachable_until_ms)
		LOG_INFO(p->cfg.name, "handshake failed: peer unreachable");
	engine_peer_drop_conn(e, p, SRM_ERR_UNREACHABLE);
}

void engine_peer_unreachable(struct srm_engine *e, struct peer *p, uint64_t now_ms)
{
	struct peer *cp = &e->peers[p->parent];
	if (now_ms < cp->unreachable_until_ms)
		return; /* told already */
	LOG_WARN(p->cfg.name, "handshake failed: peer unreachable");
	cp->unreachable_ms = now_ms;
	cp->unreachable_until_ms = now_ms + UNREACHABLE_HOLD_MS;
	cp->unreachable_told = false;
}

bool engine_peer_held(struct peer *p, uint64_t now_ms)
{
	if (now_ms >= p->unreachable_until_ms)
		return false;
	/* The peer reached us since: it is not unreachable. */
	if (session_established(p->session) || session_peer_init_ms(p->session) >= p->unreachable_ms) {
		p->unreachable_until_ms = 0;
		return false;
	}
	if (!p->unreachable_told) {
		p->unreachable_told = true;
		LOG_INFO(p->cfg.name, "unreachable %.1f s ago: new connections fail at once for %.1f s more",
			 (double)(now_ms - p->unreachable_ms) / 1000,
			 (double)(p->unreachable_until_ms - now_ms) / 1000);
	}
	return true;
}

void engine_peer_flush(struct srm_engine *e, struct peer *p, uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	struct path_addr targets[PATH_MAX_TARGETS];
	size_t target_count = path_handshake_targets(p->paths, now_ms, targets, PATH_MAX_TARGETS);
	if (!target_count)
		return; /* no address yet: the path manager looks the peer up */

	/* A fresh transport's first OPEN rides in our INIT: connect() then
	 * costs one round trip, as TCP's does, even for the first stream. */
	uint8_t early[NOISE_EARLY_BYTES];
	size_t early_len = p->conn && !p->conn_boot_id ? conn_early_open(p->conn, early, sizeof(early)) : 0;
	session_set_early(p->session, early, early_len);
	uint8_t hs[PACKET_BUF];
	size_t n = session_handshake_packet(p->session, now_ms, hs, sizeof(hs));
	if (n)
		engine_send_handshake(e, p, hs, n, targets, target_count);

	if (p->conn && session_failed(p->session)) {
		handshake_failed(e, p, now_ms);
		return;
	}
	if (!p->conn || !session_established(p->session) || path_active(p->paths)->kind == PATH_NONE)
		return;
	engine_peer_check_restart(e, p);
	if (!p->conn)
		return;

	uint8_t plain[PACKET_BUF];
	for (int i = 0; i < PEER_PACKETS_PER_PASS; i++) {
		uint64_t pn;
		const struct path_addr *path = path_active(p->paths);
		size_t len = conn_build_packet(p->conn, now_us, plain, WIRE_MAX_UDP_PAYLOAD, &pn);
		if (!len)
			break;
		size_t padded = pad_to(e, p->conn, len);
		memset(plain + len, FRAME_PADDING, padded - len);
		len = padded;
		uint8_t sealed_buf[PACKET_BUF];
		bool direct = path->kind == PATH_UDP && !path->sock;
		/* Packets for the engine's socket are sealed straight into the
		 * send batch. */
		uint8_t *out = direct ? engine_send_slot(e) : sealed_buf;
		int sealed = session_seal(p->session, pn, plain, len, out, PACKET_BUF, now_ms);
		if (sealed < 0) {
			/* Keys expired: the packet counts as lost and is resent
			 * once the new handshake completes. */
			session_want_handshake(p->session, now_ms);
			break;
		}
		if (direct)
			engine_send_commit(e, &path->addr, path->len, (size_t)sealed);
		else
			engine_send_path(e, p, path, sealed_buf, (size_t)sealed);
		path_on_sent(p->paths, path, now_ms);
	}
}
