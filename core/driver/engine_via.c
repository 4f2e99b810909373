/*
 * engine_via.c — "connect via" (core/protocol/via.h) in the driver: which
 * peers may forward for us (the path manager's PATH_VIA targets), sending
 * on such a path, and the WIRE_VIA packets that come in, forwarded on
 * (we are the mutual peer) or taken in (we are the target).
 *
 * A forwarding peer relays between two peers it lists and holds
 * established direct sessions with, from the address of one to the address
 * of the other, and nothing else: it sees the two peers' end-to-end
 * encrypted packets only, and its own peers cannot make it send anywhere
 * else.  SRMUDP_VIA=off refuses.
 */
#include <netinet/in.h>
#include <string.h>

#include "engine.h"
#include "log.h"
#include "via.h"

/* What one peer may have forwarded per second (SRMUDP_RATE overrides):
 * bounds what a listed peer can make us carry, above any one stream. */
#define VIA_RATE (256.0 * 1024 * 1024)

_Static_assert(VIA_OVERHEAD == RDV_RELAY_OVERHEAD, "relayed paths share one MTU ceiling");

/* p holds an established session (keys under REJECT_AFTER_MS, 3 min) over
 * a confirmed direct path that is not silent. */
static bool direct(const struct peer *p, uint64_t now_ms)
{
	return p->session && session_established(p->session) && path_confirmed(p->paths) &&
	       path_active(p->paths)->kind == PATH_UDP && !path_silent(p->paths, now_ms);
}

static struct peer *configured_by_key(struct srm_engine *e, const uint8_t key[VIA_KEY_BYTES])
{
	for (size_t i = 0; i < e->peer_count; i++)
		if (e->peers[i].session && memcmp(e->peers[i].cfg.pubkey, key, VIA_KEY_BYTES) == 0)
			return &e->peers[i];
	return NULL;
}

/* The instance of the peer with this key that a packet reaches now: one
 * with a working direct session, the most recently heard (a program that
 * exec'd runs a new engine under the same key; see struct peer). */
static struct peer *reachable_by_key(struct srm_engine *e, const uint8_t key[VIA_KEY_BYTES],
				     uint64_t now_ms)
{
	struct peer *best = NULL;
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (direct(p, now_ms) && memcmp(p->cfg.pubkey, key, VIA_KEY_BYTES) == 0 &&
		    (!best || path_last_rx_ms(p->paths) > path_last_rx_ms(best->paths)))
			best = p;
	}
	return best;
}

/* The instance of configured peer `via` to send through: the one with a
 * working direct session heard most recently, as reachable_by_key picks
 * (the configured slot may be an old run that lingers).  Only the extras
 * are walked, usually none. */
static struct peer *via_instance(struct srm_engine *e, uint32_t via, uint64_t now_ms)
{
	struct peer *best = direct(&e->peers[via], now_ms) ? &e->peers[via] : NULL;
	for (size_t i = 0; i < e->extra_count; i++) {
		struct peer *p = &e->extras[i];
		if (p->parent == (int)via && direct(p, now_ms) &&
		    (!best || path_last_rx_ms(p->paths) > path_last_rx_ms(best->paths)))
			best = p;
	}
	return best;
}

/* e->via_from's bucket for a UDP source (equal addresses, path_same, hash
 * alike). */
static size_t from_bucket(const struct path_addr *a)
{
	const uint8_t *b = NULL;
	size_t n = 0;
	uint16_t port = 0;
	if (a->addr.ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)&a->addr;
		b = (const uint8_t *)&in->sin_addr;
		n = sizeof(in->sin_addr);
		port = in->sin_port;
	} else if (a->addr.ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)&a->addr;
		b = (const uint8_t *)&in6->sin6_addr;
		n = sizeof(in6->sin6_addr);
		port = in6->sin6_port;
	}
	uint32_t h = 2166136261u ^ a->sock; /* FNV-1a */
	h = (h ^ (port & 0xff)) * 16777619u;
	h = (h ^ (port >> 8)) * 16777619u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h % VIA_FROM_SLOTS;
}

/* Index every slot with a working direct session by its address; more
 * than half the table full leaves it to the walk. */
static void index_sources(struct srm_engine *e, uint64_t now_ms)
{
	memset(e->via_from, 0, sizeof(e->via_from));
	e->via_from_built = true;
	e->via_from_full = false;
	size_t used = 0;
	for (size_t i = 0; i < engine_slot_count(e); i++) {
		struct peer *p = engine_slot(e, i);
		if (!direct(p, now_ms))
			continue;
		if (++used > VIA_FROM_SLOTS / 2) {
			e->via_from_full = true;
			return;
		}
		size_t b = from_bucket(path_active(p->paths));
		while (e->via_from[b])
			b = (b + 1) % VIA_FROM_SLOTS;
		e->via_from[b] = (uint32_t)i + 1;
	}
}

/* The first slot with a working direct session at `from`, as the walk
 * finds it: slots at one address went in in slot order. */
static struct peer *indexed_at(struct srm_engine *e, const struct path_addr *from, uint64_t now_ms)
{
	for (size_t b = from_bucket(from); e->via_from[b]; b = (b + 1) % VIA_FROM_SLOTS) {
		uint32_t i = e->via_from[b] - 1;
		if (i >= engine_slot_count(e))
			continue;
		struct peer *p = engine_slot(e, i);
		if (direct(p, now_ms) && path_same(path_active(p->paths), from))
			return p;
	}
	return NULL;
}

/* The slot whose working direct session is at `from`.  A miss rebuilds
 * the index (a session or an address may be new since) at most once a
 * pass, so unknown senders cannot make us walk every slot per packet. */
static struct peer *direct_at(struct srm_engine *e, const struct path_addr *from, uint64_t now_ms)
{
	struct peer *p = e->via_from_full ? NULL : indexed_at(e, from, now_ms);
	if (p || (e->via_from_built && !e->via_from_full))
		return p;
	if (!e->via_from_built) {
		index_sources(e, now_ms);
		if (!e->via_from_full)
			return indexed_at(e, from, now_ms);
	}
	for (size_t i = 0; i < engine_slot_count(e); i++)
		if (direct(engine_slot(e, i), now_ms) && path_same(path_active(engine_slot(e, i)->paths), from))
			return engine_slot(e, i);
	return NULL;
}

/* A gate of ours relays for us as a rendezvous server does (its relay is
 * the path manager's PATH_RDV_RELAY); asking it to forward as well would
 * only send each handshake twice through it. */
static bool is_our_gate(const struct srm_engine *e, const struct peer *p)
{
	for (size_t g = 0; g < e->cfg.gate_count; g++)
		if (strcmp(e->cfg.gates[g], p->cfg.name) == 0)
			return true;
	return false;
}

/* With more peers holding direct sessions than a handshake may go
 * through (PATH_MAX_VIAS), the ones offered move on by PATH_MAX_VIAS
 * every VIA_ROTATE_MS: a handshake's retransmissions (1 s, then 2 s...)
 * reach them all in turn, so the one that can reach the target is found
 * whatever its place in the list. */
#define VIA_ROTATE_MS 1000

void engine_via_update(struct srm_engine *e, uint64_t now_ms)
{
	uint32_t all[SRM_MAX_PEERS];
	uint32_t ids[PATH_MAX_VIAS + 1];
	size_t m = 0, n = 0;
	/* Sessions and addresses change between passes: a miss may rebuild. */
	e->via_from_built = false;
	for (size_t i = 0; i < e->peer_count && m < SRM_MAX_PEERS; i++)
		if (direct(&e->peers[i], now_ms) && !is_our_gate(e, &e->peers[i]))
			all[m++] = (uint32_t)i;
	/* One more than a peer may use: itself is left out of its own. */
	size_t first = m > PATH_MAX_VIAS + 1 ? (size_t)(now_ms / VIA_ROTATE_MS * PATH_MAX_VIAS % m) : 0;
	for (; n < m && n < PATH_MAX_VIAS + 1; n++)
		ids[n] = all[(first + n) % m];
	if (n == e->via_count && memcmp(ids, e->via_ids, n * sizeof(ids[0])) == 0)
		return;
	e->via_count = n;
	memcpy(e->via_ids, ids, n * sizeof(ids[0]));
	for (size_t i = 0; i < e->peer_count; i++) {
		uint32_t others[PATH_MAX_VIAS];
		size_t k = 0;
		for (size_t j = 0; j < n && k < PATH_MAX_VIAS; j++)
			if (ids[j] != i)
				others[k++] = ids[j];
		if (e->peers[i].paths)
			path_set_vias(e->peers[i].paths, others, k);
	}
}

void engine_via_send(struct srm_engine *e, struct peer *p, uint32_t via, const uint8_t *pkt,
		     size_t len)
{
	struct peer *v = via < e->peer_count ? via_instance(e, via, clock_now_ms()) : NULL;
	if (!v)
		return;
	uint8_t wrapped[PACKET_BUF + VIA_OVERHEAD];
	size_t n = via_wrap(VIA_TO, p->cfg.pubkey, pkt, len, wrapped, sizeof(wrapped));
	if (n)
		engine_send_path(e, v, path_active(v->paths), wrapped, n);
}

/* Token bucket of what `from` may have us forward. */
static bool within_rate(struct srm_engine *e, struct peer *from, size_t len, uint64_t now_us)
{
	double rate = e->cfg.rate_bytes ? (double)e->cfg.rate_bytes : VIA_RATE;
	double t = (double)(now_us - from->via_refill_us) / 1e6 * rate + from->via_tokens;
	from->via_refill_us = now_us;
	from->via_tokens = t > rate ? rate : t; /* a second's worth at most */
	if (from->via_tokens < (double)len)
		return false;
	from->via_tokens -= (double)len;
	return true;
}

static void refuse(struct srm_engine *e, enum srm_drop_reason why)
{
	e->via_stats.refused++;
	engine_drop(e, why);
}

void engine_via_receive(struct srm_engine *e, uint8_t *pkt, size_t len, const struct path_addr *from,
			uint64_t now_us)
{
	uint64_t now_ms = now_us / 1000;
	struct via_view v;
	int rc = via_parse(pkt, len, &v);
	if (rc < 0) {
		refuse(e, session_drop_reason(rc));
		return;
	}
	/* Only from where a listed peer's working session is. */
	struct peer *s = direct_at(e, from, now_ms);
	struct peer *other = s ? configured_by_key(e, v.key) : NULL;
	if (!s || !other || other->parent == s->parent) {
		refuse(e, SRM_DROP_UNKNOWN_PEER);
		return;
	}
	if (v.dir == VIA_FROM) {
		/* For us, from `other`, forwarded by s; an extra instance's
		 * index is -1, so the path names its configured slot. */
		struct path_addr via = { .kind = PATH_VIA, .sock = (uint32_t)s->parent };
		e->via_stats.received++;
		engine_handle_datagram(e, pkt + VIA_OVERHEAD, v.inner_len, &via, other, now_us);
		return;
	}
	other = reachable_by_key(e, v.key, now_ms);
	if (e->cfg.via_off || !other) {
		refuse(e, SRM_DROP_UNKNOWN_PEER);
		return;
	}
	if (!within_rate(e, s, len, now_us)) {
		refuse(e, SRM_DROP_RATELIMIT);
		return;
	}
	via_turn(pkt, s->cfg.pubkey);
	e->via_stats.forwarded++;
	e->via_stats.forwarded_bytes += len;
	engine_send_path(e, other, path_active(other->paths), pkt, len);
}
