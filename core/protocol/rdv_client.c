/*
 * rdv_client.c — one engine's rendezvous client (sans-I/O).
 *
 * Registration: REGISTER (padded) -> CHALLENGE -> AUTH -> REGISTERED,
 * repeated every RDV_REFRESH_MS, which also keeps the NAT mapping towards
 * the server alive.  The MAC keys of the last registration stay in use
 * while a refresh runs, so lookups and relay never pause.
 *
 * Retransmission: REGISTER and AUTH back off from RDV_RETRY_MIN_MS to
 * RDV_RETRY_MAX_MS; an AUTH whose challenge grew old starts over with a
 * REGISTER.  Each AUTH carries a fresh timestamp (the server refuses a
 * repeated one as a replay), and REGISTERED echoes it.
 */
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rendezvous.h"

enum state { C_REGISTER, C_AUTH, C_REGISTERED };

struct lookup {
	uint8_t peer[RDV_KEY_BYTES];
	uint64_t next_ms;
	unsigned tries;
	int active;
};

struct rdv_client {
	struct rdv_client_config cfg;
	uint8_t pub[RDV_KEY_BYTES];
	int pinned; /* answers count only under rdv_pin_keys(server_pub) */
	uint8_t server_pub[RDV_KEY_BYTES];
	enum state state;
	uint64_t next_ms;  /* next REGISTER/AUTH (re)send, or the refresh */
	uint32_t retry_ms;
	uint64_t last_register_ms;
	/* The challenge being answered, and the keys it gives. */
	uint8_t eph[RDV_KEY_BYTES], cookie[RDV_COOKIE_BYTES];
	uint64_t ch_time, ch_recv_ms;
	uint8_t k_auth[RDV_KEY_BYTES], p_c2s[RDV_KEY_BYTES], p_s2c[RDV_KEY_BYTES];
	uint64_t auth_ts_first, last_ts;
	unsigned auth_failures; /* AUTH rounds unanswered since the last REGISTERED */
	/* The current registration. */
	int have_keys;
	uint8_t k_c2s[RDV_KEY_BYTES], k_s2c[RDV_KEY_BYTES];
	uint64_t tx_ctr, expires_ms;
	struct rdv_window rx;
	struct rdv_endpoint reflexive;
	struct rdv_endpoint cands[RDV_MAX_CANDIDATES];
	size_t cand_count;
	uint8_t allow[RDV_MAX_ALLOW * RDV_TAG_BYTES]; /* pair tags, sorted */
	size_t allow_count;
	struct lookup lookups[RDV_MAX_PENDING_LOOKUPS];
};

static void restart(struct rdv_client *c, uint64_t now_ms)
{
	c->state = C_REGISTER;
	c->next_ms = now_ms;
	c->retry_ms = RDV_RETRY_MIN_MS;
}

static void backoff(struct rdv_client *c, uint64_t now_ms)
{
	c->next_ms = now_ms + c->retry_ms;
	c->retry_ms = c->retry_ms * 2 > RDV_RETRY_MAX_MS ? RDV_RETRY_MAX_MS : c->retry_ms * 2;
}

struct rdv_client *rdv_client_new(const struct rdv_client_config *cfg, uint64_t now_ms)
{
	struct rdv_client *c;

	if (cfg == NULL || cfg->id == NULL || sodium_init() < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->cfg = *cfg;
	identity_public_key(cfg->id, c->pub);
	restart(c, now_ms);
	return c;
}

void rdv_client_free(struct rdv_client *c)
{
	if (c == NULL)
		return;
	sodium_memzero(c, sizeof(*c));
	free(c);
}

int rdv_client_set_candidates(struct rdv_client *c, const struct rdv_endpoint *eps, size_t n,
			      uint64_t now_ms)
{
	uint8_t b[18];
	int same = n == c->cand_count;

	if (n > RDV_MAX_CANDIDATES)
		return SRM_ERR_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (rdv_endpoint_put(b, sizeof(b), &eps[i]) == 0)
			return SRM_ERR_INVALID;
		same = same && rdv_endpoint_equal(&eps[i], &c->cands[i]);
	}
	if (same)
		return 0;
	for (size_t i = 0; i < n; i++)
		c->cands[i] = eps[i];
	c->cand_count = n;
	if (c->state == C_REGISTERED)
		restart(c, now_ms); /* announce them now */
	return 0;
}

static int tag_cmp(const void *a, const void *b)
{
	return memcmp(a, b, RDV_TAG_BYTES);
}

int rdv_client_set_peers(struct rdv_client *c, const uint8_t (*keys)[RDV_KEY_BYTES], size_t n,
			 uint64_t now_ms)
{
	uint8_t tags[RDV_MAX_ALLOW * RDV_TAG_BYTES];

	if (n > RDV_MAX_ALLOW)
		return SRM_ERR_INVALID;
	for (size_t i = 0; i < n; i++)
		rdv_pair_tag(c->pub, keys[i], tags + i * RDV_TAG_BYTES);
	/* Sorted, so the same set in another order is no change. */
	qsort(tags, n, RDV_TAG_BYTES, tag_cmp);
	if (n == c->allow_count && memcmp(tags, c->allow, n * RDV_TAG_BYTES) == 0)
		return 0;
	memcpy(c->allow, tags, n * RDV_TAG_BYTES);
	c->allow_count = n;
	if (c->state == C_REGISTERED)
		restart(c, now_ms); /* announce them now */
	return 0;
}

int rdv_client_lookup(struct rdv_client *c, const uint8_t peer[RDV_KEY_BYTES], uint64_t now_ms)
{
	struct lookup *free_slot = NULL;

	for (size_t i = 0; i < RDV_MAX_PENDING_LOOKUPS; i++) {
		struct lookup *l = &c->lookups[i];
		if (l->active && memcmp(l->peer, peer, RDV_KEY_BYTES) == 0)
			return 0;
		if (!l->active && free_slot == NULL)
			free_slot = l;
	}
	if (free_slot == NULL)
		return SRM_ERR_NOMEM;
	memcpy(free_slot->peer, peer, RDV_KEY_BYTES);
	free_slot->tries = 0;
	free_slot->next_ms = now_ms;
	free_slot->active = 1;
	return 0;
}

void rdv_client_refresh(struct rdv_client *c, uint64_t now_ms)
{
	if (c->state == C_REGISTERED)
		restart(c, now_ms);
}

void rdv_client_relink(struct rdv_client *c, const uint8_t *server_pub, uint64_t now_ms)
{
	c->pinned = server_pub != NULL;
	if (server_pub != NULL)
		memcpy(c->server_pub, server_pub, RDV_KEY_BYTES);
	c->auth_failures = 0;
	restart(c, now_ms);
	for (size_t i = 0; i < RDV_MAX_PENDING_LOOKUPS; i++) {
		c->lookups[i].next_ms = now_ms;
		c->lookups[i].tries = 0;
	}
}

static struct lookup *find_lookup(struct rdv_client *c, const uint8_t peer[RDV_KEY_BYTES])
{
	for (size_t i = 0; i < RDV_MAX_PENDING_LOOKUPS; i++)
		if (c->lookups[i].active &&
		    memcmp(c->lookups[i].peer, peer, RDV_KEY_BYTES) == 0)
			return &c->lookups[i];
	return NULL;
}

static int usable(const struct rdv_client *c, uint64_t now_ms)
{
	return c->have_keys && now_ms < c->expires_ms;
}

/* ---- Sending ------------------------------------------------------------ */

size_t rdv_register_packet(uint8_t *out, size_t cap)
{
	struct rdv_msg m = { 0 };

	m.kind = RDV_REGISTER;
	return rdv_msg_encode(&m, NULL, RDV_REGISTER_MIN_BYTES, out, cap);
}

static size_t send_register(struct rdv_client *c, uint64_t now_ms, uint8_t *out, size_t cap)
{
	c->last_register_ms = now_ms;
	backoff(c, now_ms);
	return rdv_register_packet(out, cap);
}

static size_t send_auth(struct rdv_client *c, uint64_t now_ms, uint8_t *out, size_t cap)
{
	struct rdv_msg m = { 0 };
	uint64_t wall = now_ms + c->cfg.wall_offset_ms;

	/* The server's challenge must still be fresh when this arrives. */
	if (now_ms - c->ch_recv_ms > RDV_CHALLENGE_TTL_MS / 2) {
		restart(c, now_ms);
		return send_register(c, now_ms, out, cap);
	}
	c->last_ts = wall > c->last_ts ? wall : c->last_ts + 1;
	if (c->auth_ts_first == 0)
		c->auth_ts_first = c->last_ts;
	m.kind = RDV_AUTH;
	m.present = 1u << RDV_F_PUB | 1u << RDV_F_EPH | 1u << RDV_F_TIME | 1u << RDV_F_COOKIE |
		    1u << RDV_F_TS | 1u << RDV_F_CANDS | 1u << RDV_F_ALLOW;
	memcpy(m.pub, c->pub, RDV_KEY_BYTES);
	if (c->pinned) {
		m.present |= 1u << RDV_F_SERVER;
		memcpy(m.server, c->server_pub, RDV_KEY_BYTES);
	}
	memcpy(m.allow, c->allow, c->allow_count * RDV_TAG_BYTES);
	m.allow_count = c->allow_count;
	memcpy(m.eph, c->eph, RDV_KEY_BYTES);
	memcpy(m.cookie, c->cookie, RDV_COOKIE_BYTES);
	m.time = c->ch_time;
	m.ts = c->last_ts;
	for (size_t i = 0; i < c->cand_count; i++)
		m.cands[i] = c->cands[i];
	m.cand_count = c->cand_count;
	backoff(c, now_ms);
	return rdv_msg_encode(&m, c->k_auth, 0, out, cap);
}

static size_t send_lookup(struct rdv_client *c, struct lookup *l, uint64_t now_ms, uint8_t *out,
			  size_t cap)
{
	struct rdv_msg m = { 0 };
	uint64_t wait = (uint64_t)RDV_RETRY_MIN_MS << (l->tries < 3 ? l->tries : 3);

	m.kind = RDV_LOOKUP;
	m.present = 1u << RDV_F_PEER | 1u << RDV_F_CTR;
	memcpy(m.peer, l->peer, RDV_KEY_BYTES);
	m.ctr = ++c->tx_ctr;
	l->tries++;
	l->next_ms = now_ms + wait;
	return rdv_msg_encode(&m, c->k_c2s, 0, out, cap);
}

size_t rdv_client_poll(struct rdv_client *c, uint64_t now_ms, uint8_t *out, size_t cap)
{
	if (c->state == C_REGISTERED && now_ms >= c->next_ms)
		restart(c, now_ms); /* refresh */
	if (c->state == C_REGISTER && now_ms >= c->next_ms)
		return send_register(c, now_ms, out, cap);
	if (c->state == C_AUTH && now_ms >= c->next_ms) {
		if (c->retry_ms >= RDV_RETRY_MAX_MS) {
			c->auth_failures++;
			restart(c, now_ms); /* no answer to several AUTHs */
			return send_register(c, now_ms, out, cap);
		}
		return send_auth(c, now_ms, out, cap);
	}
	if (!usable(c, now_ms))
		return 0;
	for (size_t i = 0; i < RDV_MAX_PENDING_LOOKUPS; i++) {
		struct lookup *l = &c->lookups[i];
		if (!l->active || now_ms < l->next_ms)
			continue;
		if (l->tries >= RDV_LOOKUP_TRIES) {
			/* Unanswered: the server may have lost us (restart). */
			l->active = 0;
			if (c->state == C_REGISTERED)
				restart(c, now_ms);
			return rdv_client_poll(c, now_ms, out, cap);
		}
		return send_lookup(c, l, now_ms, out, cap);
	}
	return 0;
}

uint64_t rdv_client_deadline(const struct rdv_client *c)
{
	uint64_t d = c->next_ms;

	if (c->have_keys)
		for (size_t i = 0; i < RDV_MAX_PENDING_LOOKUPS; i++)
			if (c->lookups[i].active && c->lookups[i].next_ms < d)
				d = c->lookups[i].next_ms;
	return d;
}

/* ---- Receiving ---------------------------------------------------------- */

static int on_challenge(struct rdv_client *c, const struct rdv_msg *m, uint64_t now_ms)
{
	const uint32_t need = 1u << RDV_F_EPH | 1u << RDV_F_TIME | 1u << RDV_F_COOKIE;

	if ((m->present & need) != need)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (c->state != C_REGISTER)
		return 0; /* answer to a retransmitted REGISTER */
	if (rdv_derive_keys(c->cfg.id->secret, m->eph, c->pub, m->eph, c->k_auth, c->p_c2s,
			    c->p_s2c) != 0)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	/* A fake CHALLENGE only leads to an AUTH its sender cannot check,
	 * and to answers it cannot MAC. */
	if (c->pinned && rdv_pin_keys(c->cfg.id->secret, c->server_pub, c->k_auth, c->p_c2s,
				      c->p_s2c) != 0)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	memcpy(c->eph, m->eph, RDV_KEY_BYTES);
	memcpy(c->cookie, m->cookie, RDV_COOKIE_BYTES);
	c->ch_time = m->time;
	c->ch_recv_ms = now_ms;
	c->auth_ts_first = 0;
	c->state = C_AUTH;
	c->next_ms = now_ms;
	c->retry_ms = RDV_RETRY_MIN_MS;
	return 0;
}

static int on_registered(struct rdv_client *c, const uint8_t *pkt, size_t len,
			 const struct rdv_msg *m, uint64_t now_ms, struct rdv_event *ev)
{
	uint64_t ttl, jitter = 0;

	if (c->state != C_AUTH || !RDV_HAS(m, RDV_F_TS) || !RDV_HAS(m, RDV_F_ADDR) ||
	    !RDV_HAS(m, RDV_F_CTR) || m->ts < c->auth_ts_first || m->ts > c->last_ts)
		return SRM_DROP_CODE(SRM_DROP_STALE);
	if (rdv_msg_verify(pkt, len, m, c->p_s2c) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	if (!c->have_keys || sodium_memcmp(c->k_s2c, c->p_s2c, RDV_KEY_BYTES) != 0) {
		/* New keys, new counters.  Ours start at the registration's
		 * timestamp (wall-clock ms), not at 0: a client restarted with
		 * the same key in the server's same key epoch derives the same
		 * keys, and the server, which keeps their counters so that old
		 * messages stay replays, would take its first messages for
		 * replays of the old instance's (which sends far fewer than one
		 * message per millisecond). */
		memcpy(c->k_c2s, c->p_c2s, RDV_KEY_BYTES);
		memcpy(c->k_s2c, c->p_s2c, RDV_KEY_BYTES);
		memset(&c->rx, 0, sizeof(c->rx));
		c->tx_ctr = m->ts;
	}
	if (!rdv_window_accept(&c->rx, m->ctr))
		return SRM_DROP_CODE(SRM_DROP_REPLAY);
	c->have_keys = 1;
	c->auth_failures = 0;
	ttl = RDV_HAS(m, RDV_F_TTL) && m->ttl < RDV_RECORD_TTL_MS ? m->ttl : RDV_RECORD_TTL_MS;
	c->expires_ms = now_ms + ttl;
	c->reflexive = m->addr;
	c->state = C_REGISTERED;
	/* Up to a second early, so clients that all registered at once
	 * (after a server restart) spread out. */
	srm_random(c->cfg.rng, c->cfg.rng_ctx, &jitter, sizeof(jitter));
	c->next_ms = now_ms + RDV_REFRESH_MS - jitter % 1000;
	memset(ev, 0, sizeof(*ev));
	ev->type = RDV_EV_REGISTERED;
	ev->reflexive = m->addr;
	/* Gates only from a server whose key we pinned: an unpinned one is
	 * authenticated only towards whoever answered the CHALLENGE. */
	if (c->pinned && RDV_HAS(m, RDV_F_GATES)) {
		memcpy(ev->gates, m->gates, m->gate_count * sizeof(m->gates[0]));
		ev->gate_count = m->gate_count;
	}
	return 1;
}

/* PEER, PUNCH, NOTFOUND: under the current registration's keys. */
static int on_answer(struct rdv_client *c, const uint8_t *pkt, size_t len,
		     const struct rdv_msg *m, struct rdv_event *ev)
{
	struct lookup *l;

	if (!c->have_keys || !RDV_HAS(m, RDV_F_PEER) || !RDV_HAS(m, RDV_F_CTR))
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (rdv_msg_verify(pkt, len, m, c->k_s2c) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	if (!rdv_window_accept(&c->rx, m->ctr))
		return SRM_DROP_CODE(SRM_DROP_REPLAY);
	memset(ev, 0, sizeof(*ev));
	memcpy(ev->peer, m->peer, RDV_KEY_BYTES);
	l = find_lookup(c, m->peer);
	switch (m->kind) {
	case RDV_PEER:
	case RDV_NOTFOUND:
		if (l == NULL)
			return 0; /* answer to a retransmission, already handled */
		l->active = 0;
		if (m->kind == RDV_NOTFOUND) {
			ev->type = RDV_EV_PEER_NOTFOUND;
			return 1;
		}
		ev->type = RDV_EV_PEER_CANDIDATES;
		break;
	default:
		ev->type = RDV_EV_PUNCH_REQUEST;
		break;
	}
	for (size_t i = 0; i < m->cand_count; i++)
		ev->endpoints[i] = m->cands[i];
	ev->endpoint_count = m->cand_count;
	return 1;
}

int rdv_client_receive(struct rdv_client *c, const uint8_t *pkt, size_t len, uint64_t now_ms,
		       struct rdv_event *ev)
{
	struct rdv_msg m;
	int rc;

	ev->type = RDV_EV_NONE;
	if (len >= WIRE_HEADER_BYTES && pkt[0] == WIRE_RELAY) {
		if (pkt[1] != WIRE_VERSION)
			return SRM_DROP_CODE(SRM_DROP_VERSION);
		if (len < RDV_RELAY_OVERHEAD + WIRE_HEADER_BYTES)
			return SRM_DROP_CODE(SRM_DROP_MALFORMED);
		memset(ev, 0, sizeof(*ev));
		ev->type = RDV_EV_RELAYED;
		memcpy(ev->peer, pkt + WIRE_HEADER_BYTES, RDV_KEY_BYTES);
		ev->inner = pkt + RDV_RELAY_OVERHEAD;
		ev->inner_len = len - RDV_RELAY_OVERHEAD;
		return 1;
	}
	rc = rdv_msg_decode(pkt, len, &m);
	if (rc != 0)
		return rc;
	switch (m.kind) {
	case RDV_CHALLENGE:
		return on_challenge(c, &m, now_ms);
	case RDV_REGISTERED:
		return on_registered(c, pkt, len, &m, now_ms, ev);
	case RDV_PEER:
	case RDV_PUNCH:
	case RDV_NOTFOUND:
		return on_answer(c, pkt, len, &m, ev);
	case RDV_NOTREG:
		/* Unauthenticated, so it may only hurry a registration that
		 * is not already under way, at most once per retry period. */
		if (c->state == C_REGISTERED && now_ms - c->last_register_ms >= RDV_RETRY_MIN_MS)
			restart(c, now_ms);
		return 0;
	default:
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	}
}

size_t rdv_client_wrap_relay(const struct rdv_client *c, const uint8_t target[RDV_KEY_BYTES],
			     const uint8_t *inner, size_t len, uint8_t *out, size_t cap)
{
	size_t n = len + RDV_RELAY_OVERHEAD;

	if (!c->have_keys || n > cap || n > RDV_MAX_PACKET || len < WIRE_HEADER_BYTES)
		return 0;
	memmove(out + RDV_RELAY_OVERHEAD, inner, len); /* in place is fine */
	wire_put_header(out, WIRE_RELAY);
	memcpy(out + WIRE_HEADER_BYTES, target, RDV_KEY_BYTES);
	return n;
}

int rdv_client_registered(const struct rdv_client *c, uint64_t now_ms,
			  struct rdv_endpoint *reflexive)
{
	if (!usable(c, now_ms))
		return 0;
	if (reflexive != NULL)
		*reflexive = c->reflexive;
	return 1;
}

unsigned rdv_client_auth_failures(const struct rdv_client *c)
{
	return c->auth_failures;
}
