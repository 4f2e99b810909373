/*
 * rdv_server.c — the rendezvous server's state machine (sans-I/O):
 * stateless challenges, registrations authenticated by the peer's own
 * key, lookups with punch requests to both sides, and the relay.
 *
 * State held per source before authentication: none (the challenge
 * cookie carries it), except the fixed-size rate limiter.  State per
 * registered peer: one struct reg (about 250 bytes) with its MAC keys,
 * counters and token buckets, bounded by max_records; the directory data
 * (candidates, replay timestamp) lives in the store, shared by servers.
 *
 * Amplification: REGISTER must be >= RDV_REGISTER_MIN_BYTES and answers a
 * smaller CHALLENGE; a LOOKUP from an unknown address answers a NOTREG of
 * a few bytes; AUTH failures and everything else unauthenticated answer
 * nothing.  reply_unauth() refuses to send anything larger than the
 * request, so a future message cannot break the rule silently.
 */
#include <string.h>
#include <stdlib.h>

#include <sodium.h>
#include <uthash.h>

#include "rdv_server_priv.h"
#include "log.h"

/* ---- Helpers ------------------------------------------------------------ */

static int addr_key(uint8_t key[ADDR_KEY_BYTES], const struct rdv_endpoint *ep)
{
	memset(key, 0, ADDR_KEY_BYTES);
	key[0] = (uint8_t)rdv_endpoint_put(key + 1, ADDR_KEY_BYTES - 2, ep);
	key[ADDR_KEY_BYTES - 1] = ep->via;
	return key[0] ? 0 : -1;
}

void srv_reg_endpoint(const struct reg *r, struct rdv_endpoint *ep)
{
	if (rdv_endpoint_get(r->addr_key + 1, r->addr_key[0], ep) != 0)
		memset(ep, 0, sizeof(*ep));
	ep->via = r->addr_key[ADDR_KEY_BYTES - 1];
}

const char *srv_keytext(const uint8_t pub[RDV_KEY_BYTES], char buf[SRM_PUBKEY_TEXT_BYTES])
{
	srm_pubkey_encode(pub, buf);
	return buf;
}

static void rotate(struct rdv_server *s, uint64_t now_ms)
{
	s->eph[1] = s->eph[0];
	srm_random(s->cfg.rng, s->cfg.rng_ctx, s->eph[0].priv, RDV_KEY_BYTES);
	crypto_scalarmult_base(s->eph[0].pub, s->eph[0].priv);
	s->rotate_ms = now_ms + RDV_EPOCH_MS;
}

static void cookie_of(const struct rdv_server *s, const uint8_t akey[ADDR_KEY_BYTES],
		      uint64_t time, const uint8_t eph[RDV_KEY_BYTES],
		      uint8_t cookie[RDV_COOKIE_BYTES])
{
	uint8_t msg[ADDR_KEY_BYTES + 8 + RDV_KEY_BYTES];

	memcpy(msg, akey, ADDR_KEY_BYTES);
	put_le64(msg + ADDR_KEY_BYTES, time);
	memcpy(msg + ADDR_KEY_BYTES + 8, eph, RDV_KEY_BYTES);
	crypto_generichash(cookie, RDV_COOKIE_BYTES, msg, sizeof(msg), s->cookie_secret,
			   sizeof(s->cookie_secret));
}

/* Token bucket in the units of *tokens; rate per second, burst cap. */
int srv_bucket_take(uint64_t *tokens, uint64_t *last_ms, uint64_t rate, uint64_t burst,
		       uint64_t cost, uint64_t now_ms)
{
	if (now_ms > *last_ms) {
		uint64_t dt = now_ms - *last_ms;
		uint64_t add = dt >= 1000000 ? burst : rate * dt / 1000;
		*tokens = *tokens + add > burst ? burst : *tokens + add;
		*last_ms = now_ms;
	}
	if (*tokens < cost)
		return 0;
	*tokens -= cost;
	return 1;
}

static void reg_free(struct rdv_server *s, struct reg *r)
{
	HASH_DELETE(hh, s->by_pub, r);
	HASH_DELETE(hh_addr, s->by_addr, r);
	free(r->allow);
	sodium_memzero(r, sizeof(*r));
	free(r);
	s->count--;
	s->allow_gen++;
}

void rdv_server_readmit(struct rdv_server *s)
{
	struct reg *r, *tmp;
	if (s->cfg.admit == NULL)
		return;
	HASH_ITER(hh, s->by_pub, r, tmp) {
		if (s->cfg.admit(s->cfg.admit_ctx, r->pub))
			continue;
		if (s->store->ops->del(s->store->ctx, r->pub) != 0)
			s->st.store_errors++;
		reg_free(s, r);
	}
}

void rdv_server_set_gates(struct rdv_server *s, const struct rdv_gate *gates, size_t n)
{
	s->gate_count = n < RDV_MAX_GATES ? n : RDV_MAX_GATES;
	memcpy(s->gates, gates, s->gate_count * sizeof(gates[0]));
}

int srv_emit(struct rdv_server *s, struct rdv_out *o, const struct rdv_endpoint *to,
		size_t len)
{
	if (len == 0)
		return 0;
	o->to = *to;
	o->len = len;
	s->st.tx_packets++;
	s->st.tx_bytes += len;
	return 1;
}

/* An answer to an unauthenticated request: never more bytes than came. */
static int reply_unauth(struct rdv_server *s, struct rdv_out *o, const struct rdv_endpoint *to,
			size_t len, size_t req_len)
{
	if (len > req_len)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	return srv_emit(s, o, to, len);
}

/* A message MAC'd for registrant r, to r's address. */
static int send_to_reg(struct rdv_server *s, struct reg *r, struct rdv_msg *m,
		       struct rdv_out *o)
{
	struct rdv_endpoint to;

	srv_reg_endpoint(r, &to);
	m->ctr = ++r->tx_ctr;
	m->present |= 1u << RDV_F_CTR;
	return srv_emit(s, o, &to, rdv_msg_encode(m, r->k_s2c, 0, o->buf, sizeof(o->buf)));
}

/* ---- REGISTER / AUTH ---------------------------------------------------- */

static int on_register(struct rdv_server *s, size_t len, const struct rdv_endpoint *src,
		       uint64_t now_ms, struct rdv_out *out)
{
	struct rdv_msg m = { 0 };
	uint8_t akey[ADDR_KEY_BYTES];

	s->st.registers++;
	if (len < RDV_REGISTER_MIN_BYTES || addr_key(akey, src) != 0)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	m.kind = RDV_CHALLENGE;
	m.present = 1u << RDV_F_EPH | 1u << RDV_F_TIME | 1u << RDV_F_COOKIE;
	memcpy(m.eph, s->eph[0].pub, RDV_KEY_BYTES);
	m.time = now_ms;
	cookie_of(s, akey, now_ms, m.eph, m.cookie);
	s->st.challenges++;
	return reply_unauth(s, out, src, rdv_msg_encode(&m, NULL, 0, out->buf, sizeof(out->buf)),
			    len);
}

static int auth_fail(struct rdv_server *s, const struct rdv_endpoint *src, const char *why,
		     int rc)
{
	char a[64];
	int n;

	s->st.auth_failed++;
	/* Anyone can make us say this: one line a second at most. */
	if (log_enabled(SRM_LOG_INFO) && (n = log_ratelimit_ok(&s->log_auth, s->now_ms, 1000)) > 0)
		LOG_INFO(NULL, "rendezvous: AUTH from %s refused: %s (%d more suppressed)",
			 rdv_endpoint_str(src, a, sizeof(a)), why, n - 1);
	return rc;
}

/* Find or make the local registration of pub, registered from akey. */
static struct reg *reg_upsert(struct rdv_server *s, const uint8_t pub[RDV_KEY_BYTES],
			      const uint8_t akey[ADDR_KEY_BYTES], int *is_new, int *moved)
{
	struct reg *r, *other;

	HASH_FIND(hh, s->by_pub, pub, RDV_KEY_BYTES, r);
	*is_new = r == NULL;
	*moved = r != NULL && memcmp(r->addr_key, akey, ADDR_KEY_BYTES) != 0;
	/* The address belongs to the newest registrant only: a NAT gave the
	 * old one's mapping away, or it re-registered from elsewhere. */
	HASH_FIND(hh_addr, s->by_addr, akey, ADDR_KEY_BYTES, other);
	if (other != NULL && other != r)
		reg_free(s, other);
	if (r != NULL) {
		HASH_DELETE(hh, s->by_pub, r); /* re-added at the tail */
		HASH_DELETE(hh_addr, s->by_addr, r);
	} else {
		if (s->count >= s->cfg.max_records && s->by_pub != NULL) {
			reg_free(s, s->by_pub); /* the least recently refreshed */
			s->st.evicted++;
		}
		r = calloc(1, sizeof(*r));
		if (r == NULL)
			return NULL;
		memcpy(r->pub, pub, RDV_KEY_BYTES);
		r->relay_tokens = s->cfg.relay_burst;
		r->lookup_tokens = RDV_LOOKUP_BURST * 1000;
		s->count++;
	}
	memcpy(r->addr_key, akey, ADDR_KEY_BYTES);
	HASH_ADD(hh, s->by_pub, pub, RDV_KEY_BYTES, r);
	HASH_ADD(hh_addr, s->by_addr, addr_key, ADDR_KEY_BYTES, r);
	return r;
}

/* The tags of this AUTH (none: consents to nobody). */
static int reg_set_allow(struct rdv_server *s, struct reg *r, const struct rdv_msg *m)
{
	size_t n = m->allow_count * RDV_TAG_BYTES;
	uint8_t *a;

	if (m->allow_count == r->allow_count && (n == 0 || memcmp(r->allow, m->allow, n) == 0))
		return 0;
	a = n ? malloc(n) : NULL;
	if (n && a == NULL)
		return -1;
	if (n)
		memcpy(a, m->allow, n);
	free(r->allow);
	r->allow = a;
	r->allow_count = m->allow_count;
	s->allow_gen++;
	return 0;
}

/* Both keys list the pair: the only case in which the server tells one
 * where the other is, or carries packets between them. */
int srv_consent(const uint8_t a[RDV_KEY_BYTES], const uint8_t *a_tags, size_t a_count,
		   const uint8_t b[RDV_KEY_BYTES], const uint8_t *b_tags, size_t b_count)
{
	uint8_t tag[RDV_TAG_BYTES];

	rdv_pair_tag(a, b, tag);
	return rdv_tags_have(a_tags, a_count, tag) && rdv_tags_have(b_tags, b_count, tag);
}

static int on_auth(struct rdv_server *s, const uint8_t *pkt, size_t len, const struct rdv_msg *m,
		   const struct rdv_endpoint *src, uint64_t now_ms, struct rdv_out *out)
{
	const uint32_t need = 1u << RDV_F_PUB | 1u << RDV_F_EPH | 1u << RDV_F_TIME |
			      1u << RDV_F_COOKIE | 1u << RDV_F_TS | 1u << RDV_F_MAC;
	uint8_t akey[ADDR_KEY_BYTES], cookie[RDV_COOKIE_BYTES];
	uint8_t k_auth[RDV_KEY_BYTES], k_c2s[RDV_KEY_BYTES], k_s2c[RDV_KEY_BYTES];
	struct rdv_record rec, old;
	struct rdv_msg rep = { 0 };
	const struct eph *e = NULL;
	char kt[SRM_PUBKEY_TEXT_BYTES], at[64];
	struct reg *r;
	int rc, is_new, moved, have_old;

	if ((m->present & need) != need || m->cand_count > RDV_MAX_CANDIDATES ||
	    addr_key(akey, src) != 0)
		return auth_fail(s, src, "malformed", SRM_DROP_CODE(SRM_DROP_MALFORMED));
	/* Cookie first (one hash): the AUTH comes from the address the
	 * challenge went to, recently. */
	cookie_of(s, akey, m->time, m->eph, cookie);
	if (sodium_memcmp(cookie, m->cookie, RDV_COOKIE_BYTES) != 0 || m->time > now_ms ||
	    now_ms - m->time > RDV_CHALLENGE_TTL_MS) {
		s->st.cookie_bad++;
		return auth_fail(s, src, "bad or stale cookie", SRM_DROP_CODE(SRM_DROP_COOKIE));
	}
	for (int i = 0; i < 2; i++)
		if (sodium_memcmp(m->eph, s->eph[i].pub, RDV_KEY_BYTES) == 0)
			e = &s->eph[i];
	if (e == NULL)
		return auth_fail(s, src, "ephemeral key expired", SRM_DROP_CODE(SRM_DROP_STALE));
	/* A gate serves its members only, and they know its key. */
	if (s->cfg.admit != NULL &&
	    (!RDV_HAS(m, RDV_F_SERVER) || !s->cfg.admit(s->cfg.admit_ctx, m->pub))) {
		s->st.not_member++;
		return auth_fail(s, src, "not a member", SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	}
	/* The proof: only the holder of pub's secret (or of our ephemeral)
	 * computes this DH. */
	if (rdv_derive_keys(e->priv, m->pub, m->pub, m->eph, k_auth, k_c2s, k_s2c) != 0) {
		rc = auth_fail(s, src, "degenerate key", SRM_DROP_CODE(SRM_DROP_MALFORMED));
		goto wipe;
	}
	/* The client pinned a server key: ours, or it can never accept us. */
	if (RDV_HAS(m, RDV_F_SERVER) &&
	    (!s->have_static || sodium_memcmp(m->server, s->static_pub, RDV_KEY_BYTES) != 0)) {
		rc = auth_fail(s, src, "pinned another server key", SRM_DROP_CODE(SRM_DROP_MAC));
		goto wipe;
	}
	if (RDV_HAS(m, RDV_F_SERVER) &&
	    rdv_pin_keys(s->static_secret, m->pub, k_auth, k_c2s, k_s2c) != 0) {
		rc = auth_fail(s, src, "degenerate key", SRM_DROP_CODE(SRM_DROP_MALFORMED));
		goto wipe;
	}
	if (rdv_msg_verify(pkt, len, m, k_auth) != 0) {
		rc = auth_fail(s, src, "bad MAC", SRM_DROP_CODE(SRM_DROP_MAC));
		goto wipe;
	}
	/* Replays: the newest accepted timestamp, here or at any server
	 * sharing the store, must be older. */
	HASH_FIND(hh, s->by_pub, m->pub, RDV_KEY_BYTES, r);
	rc = s->store->ops->get(s->store->ctx, m->pub, now_ms, &old);
	have_old = rc == 0;
	if (rc != 0 && rc != SRM_ERR_NOTFOUND)
		s->st.store_errors++;
	if ((r != NULL && m->ts <= r->last_ts) || (have_old && m->ts <= old.last_ts)) {
		s->st.replays++;
		rc = auth_fail(s, src, "replayed (old timestamp)", SRM_DROP_CODE(SRM_DROP_REPLAY));
		goto wipe;
	}
	r = reg_upsert(s, m->pub, akey, &is_new, &moved);
	if (r == NULL) {
		rc = SRM_ERR_NOMEM;
		goto wipe;
	}
	if (is_new || sodium_memcmp(r->k_s2c, k_s2c, RDV_KEY_BYTES) != 0) {
		/* New keys, new counters.  Same keys (same epoch): keep them,
		 * so old messages stay replays. */
		memcpy(r->k_c2s, k_c2s, RDV_KEY_BYTES);
		memcpy(r->k_s2c, k_s2c, RDV_KEY_BYTES);
		memset(&r->rx, 0, sizeof(r->rx));
		r->tx_ctr = 0;
	}
	r->last_ts = m->ts;
	r->expires_ms = now_ms + RDV_RECORD_TTL_MS;
	if (reg_set_allow(s, r, m) != 0) {
		rc = SRM_ERR_NOMEM;
		goto wipe;
	}

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.pub, m->pub, RDV_KEY_BYTES);
	rec.reflexive = *src;
	for (size_t i = 0; i < m->cand_count; i++)
		rec.cands[i] = m->cands[i];
	rec.cand_count = m->cand_count;
	rec.last_ts = m->ts;
	rec.server_id = s->cfg.server_id;
	memcpy(rec.allow, m->allow, m->allow_count * RDV_TAG_BYTES);
	rec.allow_count = m->allow_count;
	if (s->store->ops->put(s->store->ctx, &rec, RDV_RECORD_TTL_MS, now_ms) != 0)
		s->st.store_errors++;
	s->st.auth_ok++;
	s->st.records = s->count;
	if (is_new || moved)
		LOG_INFO(NULL, "rendezvous: %s peer %s at %s (%zu candidates)",
			 is_new ? "registered" : "moved", srv_keytext(m->pub, kt),
			 rdv_endpoint_str(src, at, sizeof(at)), m->cand_count);
	else
		LOG_DEBUG(NULL, "rendezvous: refreshed peer %s at %s", srv_keytext(m->pub, kt),
			  rdv_endpoint_str(src, at, sizeof(at)));

	rep.kind = RDV_REGISTERED;
	rep.present = 1u << RDV_F_ADDR | 1u << RDV_F_TTL | 1u << RDV_F_TS;
	rep.addr = *src;
	rep.ttl = RDV_RECORD_TTL_MS;
	rep.ts = m->ts; /* binds the answer to this AUTH */
	if (s->gate_count) {
		rep.present |= 1u << RDV_F_GATES;
		memcpy(rep.gates, s->gates, s->gate_count * sizeof(s->gates[0]));
		rep.gate_count = s->gate_count;
	}
	rc = send_to_reg(s, r, &rep, out);
wipe:
	sodium_memzero(k_auth, sizeof(k_auth));
	sodium_memzero(k_c2s, sizeof(k_c2s));
	sodium_memzero(k_s2c, sizeof(k_s2c));
	return rc;
}

/* ---- LOOKUP and punch requests ------------------------------------------ */

/* reflexive first, then the announced candidates.  A peer registered over
 * a WebSocket has no reflexive UDP address (its TCP source is no place to
 * punch to): only what it announced. */
static void endpoints_of(const struct rdv_record *rec, struct rdv_msg *m)
{
	size_t n = 0;
	if (rec->reflexive.via == RDV_VIA_UDP)
		m->cands[n++] = rec->reflexive;
	for (size_t i = 0; i < rec->cand_count; i++)
		m->cands[n++] = rec->cands[i];
	m->cand_count = n;
	m->present |= 1u << RDV_F_CANDS;
}

/* Tell target (registered here) that peer wants to reach it. */
static int punch_local(struct rdv_server *s, struct reg *target, const struct rdv_record *peer,
		       struct rdv_out *o)
{
	struct rdv_msg p = { 0 };

	p.kind = RDV_PUNCH;
	p.present = 1u << RDV_F_PEER;
	memcpy(p.peer, peer->pub, RDV_KEY_BYTES);
	endpoints_of(peer, &p);
	s->st.punches++;
	return send_to_reg(s, target, &p, o);
}

static int on_lookup(struct rdv_server *s, const uint8_t *pkt, size_t len,
		     const struct rdv_msg *m, const struct rdv_endpoint *src, uint64_t now_ms,
		     struct rdv_out *out, size_t out_cap)
{
	uint8_t akey[ADDR_KEY_BYTES];
	struct rdv_record me, them;
	struct rdv_msg rep = { 0 };
	char k1[SRM_PUBKEY_TEXT_BYTES], k2[SRM_PUBKEY_TEXT_BYTES];
	struct reg *r, *t;
	int n = 0, rc;

	if (addr_key(akey, src) != 0 || !RDV_HAS(m, RDV_F_PEER) || !RDV_HAS(m, RDV_F_CTR))
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	HASH_FIND(hh_addr, s->by_addr, akey, ADDR_KEY_BYTES, r);
	if (r == NULL || r->expires_ms <= now_ms) {
		/* Unknown here (we restarted, it moved, or it expired): a
		 * tiny hint to register again, rate-limited like REGISTER. */
		rep.kind = RDV_NOTREG;
		return reply_unauth(s, out, src, rdv_msg_encode(&rep, NULL, 0, out->buf,
								sizeof(out->buf)), len);
	}
	if (rdv_msg_verify(pkt, len, m, r->k_c2s) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	if (!rdv_window_accept(&r->rx, m->ctr))
		return SRM_DROP_CODE(SRM_DROP_REPLAY);
	if (!srv_bucket_take(&r->lookup_tokens, &r->lookup_ms, RDV_LOOKUP_PER_SEC * 1000,
			 RDV_LOOKUP_BURST * 1000, 1000, now_ms)) {
		s->st.rate_limited++;
		return SRM_DROP_CODE(SRM_DROP_RATELIMIT);
	}
	s->st.lookups++;
	memcpy(rep.peer, m->peer, RDV_KEY_BYTES);
	rep.present = 1u << RDV_F_PEER;
	rc = s->store->ops->get(s->store->ctx, m->peer, now_ms, &them);
	if (rc == 0 && !srv_consent(r->pub, r->allow, r->allow_count, them.pub, them.allow,
				them.allow_count)) {
		/* Not both listed: the same answer as for an absent key, so a
		 * stranger learns neither the address nor that it exists. */
		s->st.lookup_refused++;
		rc = SRM_ERR_NOTFOUND;
	}
	if (rc != 0) {
		if (rc != SRM_ERR_NOTFOUND)
			s->st.store_errors++;
		s->st.not_found++;
		LOG_INFO(NULL, "rendezvous: lookup by %s for %s: not registered",
			 srv_keytext(r->pub, k1), srv_keytext(m->peer, k2));
		rep.kind = RDV_NOTFOUND;
		return send_to_reg(s, r, &rep, &out[0]);
	}
	s->st.found++;
	rep.kind = RDV_PEER;
	endpoints_of(&them, &rep);
	n += send_to_reg(s, r, &rep, &out[0]);
	LOG_INFO(NULL, "rendezvous: lookup by %s for %s: found, both told to punch",
		 srv_keytext(r->pub, k1), srv_keytext(m->peer, k2));

	/* The other side punches too: from the asker's own record, so it gets
	 * the candidates the asker announced. */
	if (s->store->ops->get(s->store->ctx, r->pub, now_ms, &me) != 0) {
		s->st.store_errors++;
		return n;
	}
	HASH_FIND(hh, s->by_pub, m->peer, RDV_KEY_BYTES, t);
	if (them.server_id == s->cfg.server_id) {
		if (t != NULL && out_cap > 1 && t->expires_ms > now_ms)
			n += punch_local(s, t, &me, &out[1]);
	} else {
		/* Registered on another server: only it holds the target's
		 * keys and a NAT mapping towards it.  Leave it a note. */
		struct rdv_msg note = { 0 };
		uint8_t buf[RDV_MAX_PACKET];
		size_t nl;
		note.kind = RDV_PUNCH;
		note.present = 1u << RDV_F_PUB | 1u << RDV_F_PEER;
		memcpy(note.pub, them.pub, RDV_KEY_BYTES);
		memcpy(note.peer, me.pub, RDV_KEY_BYTES);
		endpoints_of(&me, &note);
		nl = rdv_msg_encode(&note, NULL, 0, buf, sizeof(buf));
		if (nl == 0 || s->store->ops->note(s->store->ctx, them.server_id, buf, nl,
						   NOTE_TTL_MS, now_ms) != 0)
			s->st.store_errors++;
		else
			s->st.notes_sent++;
	}
	return n;
}

/* ---- Relay -------------------------------------------------------------- */

static int on_relay(struct rdv_server *s, const uint8_t *pkt, size_t len,
		    const struct rdv_endpoint *src, uint64_t now_ms, struct rdv_out *out)
{
	uint8_t akey[ADDR_KEY_BYTES];
	struct rdv_endpoint to;
	struct reg *from, *t;
	const struct mesh_card *remote = NULL;
	char k1[SRM_PUBKEY_TEXT_BYTES], k2[SRM_PUBKEY_TEXT_BYTES];

	if (len < RDV_RELAY_OVERHEAD + WIRE_HEADER_BYTES || len > RDV_MAX_PACKET ||
	    addr_key(akey, src) != 0)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	/* Only a registrant, only from the address it proved. */
	HASH_FIND(hh_addr, s->by_addr, akey, ADDR_KEY_BYTES, from);
	if (from == NULL || from->expires_ms <= now_ms) {
		/* A relaying client we do not know (we restarted, its NAT
		 * moved it): the 7-byte hint makes it register again now
		 * rather than at its next refresh. */
		struct rdv_msg rep = { 0 };
		s->st.relay_unknown++;
		if (!ratelimit_allow(s->unauth, (const struct sockaddr *)&src->addr, src->len,
				     now_ms)) {
			s->st.rate_limited++;
			return SRM_DROP_CODE(SRM_DROP_RATELIMIT);
		}
		rep.kind = RDV_NOTREG;
		return reply_unauth(s, out, src, rdv_msg_encode(&rep, NULL, 0, out->buf,
								sizeof(out->buf)), len);
	}
	HASH_FIND(hh, s->by_pub, pkt + WIRE_HEADER_BYTES, RDV_KEY_BYTES, t);
	if (t == from) {
		s->st.relay_unknown++;
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
	}
	if (t == NULL || t->expires_ms <= now_ms) {
		/* Registered on another server sharing the store, perhaps. */
		remote = mesh_route(s, from, pkt + WIRE_HEADER_BYTES, now_ms);
		if (remote == NULL)
			return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
		t = NULL;
	} else if (from->relay_ok_gen != s->allow_gen ||
		   memcmp(from->relay_ok_to, t->pub, RDV_KEY_BYTES) != 0) {
		/* One hash per new target or changed registration, not per
		 * packet. */
		if (!srv_consent(from->pub, from->allow, from->allow_count, t->pub, t->allow,
			     t->allow_count)) {
			s->st.relay_refused++;
			return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
		}
		memcpy(from->relay_ok_to, t->pub, RDV_KEY_BYTES);
		from->relay_ok_gen = s->allow_gen;
	}
	if (!srv_bucket_take(&from->relay_tokens, &from->relay_ms, s->cfg.relay_rate,
			 s->cfg.relay_burst, len, now_ms)) {
		s->st.relay_limited++;
		if (log_ratelimit_ok(&s->log_relay, now_ms, 1000))
			LOG_INFO(NULL, "rendezvous: relay from %s over its rate limit",
				 srv_keytext(from->pub, k1));
		return SRM_DROP_CODE(SRM_DROP_RATELIMIT);
	}
	/* Then the sender's address, all its keys together (checked second,
	 * so a peer over its own limit spends none of its neighbours'). */
	if (!ratelimit_allow_cost(s->relay_src, (const struct sockaddr *)&src->addr, src->len,
				  len, now_ms)) {
		s->st.relay_source_limited++;
		if (log_ratelimit_ok(&s->log_relay, now_ms, 1000))
			LOG_INFO(NULL, "rendezvous: relay from %s over the per-address limit",
				 rdv_endpoint_str(src, k2, sizeof(k2)));
		return SRM_DROP_CODE(SRM_DROP_RATELIMIT);
	}
	if (memcmp(from->last_relay_to, pkt + WIRE_HEADER_BYTES, sizeof(from->last_relay_to)) != 0) {
		memcpy(from->last_relay_to, pkt + WIRE_HEADER_BYTES, sizeof(from->last_relay_to));
		LOG_INFO(NULL, "rendezvous: relaying %s -> %s%s", srv_keytext(from->pub, k1),
			 srv_keytext(pkt + WIRE_HEADER_BYTES, k2), t ? "" : " (through its server)");
	}
	if (t == NULL)
		return mesh_wrap(s, remote, from, pkt, len, now_ms, out);
	/* Same size out as in: the key now names the sender. */
	memcpy(out->buf, pkt, len);
	memcpy(out->buf + WIRE_HEADER_BYTES, from->pub, RDV_KEY_BYTES);
	s->st.relay_packets++;
	s->st.relay_bytes += len;
	srv_reg_endpoint(t, &to);
	return srv_emit(s, out, &to, len);
}

/* ---- Entry points ------------------------------------------------------- */

int rdv_server_receive(struct rdv_server *s, const uint8_t *pkt, size_t len,
		       const struct rdv_endpoint *src, uint64_t now_ms, struct rdv_out *out,
		       size_t out_cap)
{
	const struct rdv_endpoint from = *src;
	struct rdv_msg m;
	int rc;

	s->st.rx_packets++;
	s->st.rx_bytes += len;
	s->now_ms = now_ms;
	if (out_cap < 1 || src->len > sizeof(src->addr) || src->len == 0)
		return SRM_ERR_INVALID;
	if (now_ms >= s->rotate_ms)
		rotate(s, now_ms);
	if (len >= WIRE_HEADER_BYTES && pkt[0] == WIRE_RELAY && pkt[1] == WIRE_VERSION) {
		rc = on_relay(s, pkt, len, &from, now_ms, out);
		goto done;
	}
	if (len >= WIRE_HEADER_BYTES && pkt[0] == WIRE_MESH && pkt[1] == WIRE_VERSION) {
		rc = mesh_receive(s, pkt, len, &from, now_ms, out);
		goto done;
	}
	rc = rdv_msg_decode(pkt, len, &m);
	if (rc != 0)
		goto done;
	switch (m.kind) {
	case RDV_REGISTER:
	case RDV_AUTH:
	case RDV_LOOKUP:
		/* Costs us a hash, a DH or a table walk for anyone: per source. */
		if (!ratelimit_allow(s->unauth, (const struct sockaddr *)&src->addr, src->len,
				     now_ms)) {
			s->st.rate_limited++;
			rc = SRM_DROP_CODE(SRM_DROP_RATELIMIT);
			goto done;
		}
		break;
	default:
		break;
	}
	switch (m.kind) {
	case RDV_REGISTER: rc = on_register(s, len, &from, now_ms, out); break;
	case RDV_AUTH: rc = on_auth(s, pkt, len, &m, &from, now_ms, out); break;
	case RDV_LOOKUP: rc = on_lookup(s, pkt, len, &m, &from, now_ms, out, out_cap); break;
	default: rc = SRM_DROP_CODE(SRM_DROP_MALFORMED); break;
	}
done:
	if (rc == SRM_DROP_CODE(SRM_DROP_MALFORMED) || rc == SRM_DROP_CODE(SRM_DROP_VERSION))
		s->st.malformed++;
	s->st.records = s->count;
	return rc;
}

int rdv_server_tick(struct rdv_server *s, uint64_t now_ms, struct rdv_out *out, size_t out_cap)
{
	uint8_t buf[RDV_MAX_PACKET];
	char kt[SRM_PUBKEY_TEXT_BYTES];
	int n = 0, len = 0;

	if (now_ms >= s->rotate_ms)
		rotate(s, now_ms);
	while (s->by_pub != NULL && s->by_pub->expires_ms <= now_ms) {
		LOG_INFO(NULL, "rendezvous: peer %s expired", srv_keytext(s->by_pub->pub, kt));
		reg_free(s, s->by_pub);
		s->st.expired++;
	}
	s->st.records = s->count;
	mesh_announce(s, now_ms);
	/* Punch requests left by other servers for our registrants. */
	while ((size_t)n < out_cap &&
	       (len = s->store->ops->take_note(s->store->ctx, s->cfg.server_id, buf, sizeof(buf),
					       now_ms)) > 0) {
		struct rdv_msg m;
		struct rdv_record peer = { 0 };
		struct reg *t;
		s->st.notes_received++;
		if (rdv_msg_decode(buf, (size_t)len, &m) != 0 || m.kind != RDV_PUNCH ||
		    !RDV_HAS(&m, RDV_F_PUB) || !RDV_HAS(&m, RDV_F_PEER) || m.cand_count < 1)
			continue;
		HASH_FIND(hh, s->by_pub, m.pub, RDV_KEY_BYTES, t);
		if (t == NULL || t->expires_ms <= now_ms)
			continue;
		memcpy(peer.pub, m.peer, RDV_KEY_BYTES);
		peer.reflexive = m.cands[0];
		for (size_t i = 1; i < m.cand_count && i <= RDV_MAX_CANDIDATES; i++)
			peer.cands[peer.cand_count++] = m.cands[i];
		n += punch_local(s, t, &peer, &out[n]);
	}
	if (len < 0)
		s->st.store_errors++;
	return n;
}

uint64_t rdv_server_deadline(const struct rdv_server *s)
{
	uint64_t d = s->rotate_ms;

	if (s->by_pub != NULL && s->by_pub->expires_ms < d)
		d = s->by_pub->expires_ms;
	return mesh_deadline(s) < d ? mesh_deadline(s) : d;
}

void rdv_server_get_stats(const struct rdv_server *s, struct rdv_server_stats *out)
{
	*out = s->st;
	out->records = s->count;
}

uint64_t rdv_server_id(const struct rdv_server *s)
{
	return s->cfg.server_id;
}

struct rdv_server *rdv_server_new(const struct rdv_server_config *cfg, struct rdv_store *store,
				  uint64_t now_ms)
{
	struct rdv_server *s;
	uint8_t rlkey[16];

	if (store == NULL || sodium_init() < 0)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	if (cfg != NULL)
		s->cfg = *cfg;
	if (s->cfg.static_secret != NULL) {
		s->have_static = 1;
		memcpy(s->static_secret, s->cfg.static_secret, RDV_KEY_BYTES);
		crypto_scalarmult_base(s->static_pub, s->static_secret);
		s->cfg.static_secret = NULL;
	}
	s->store = store;
	if (s->cfg.max_records == 0)
		s->cfg.max_records = RDV_DEFAULT_MAX_RECORDS;
	if (s->cfg.relay_rate == 0)
		s->cfg.relay_rate = RDV_DEFAULT_RELAY_RATE;
	if (s->cfg.relay_burst == 0)
		s->cfg.relay_burst = s->cfg.relay_rate > RELAY_MIN_BURST ? s->cfg.relay_rate
									 : RELAY_MIN_BURST;
	while (s->cfg.server_id == 0)
		srm_random(s->cfg.rng, s->cfg.rng_ctx, &s->cfg.server_id, sizeof(s->cfg.server_id));
	srm_random(s->cfg.rng, s->cfg.rng_ctx, s->cookie_secret, sizeof(s->cookie_secret));
	srm_random(s->cfg.rng, s->cfg.rng_ctx, rlkey, sizeof(rlkey));
	if (s->cfg.source_rate == 0)
		s->cfg.source_rate = RDV_SOURCE_RATE_FACTOR * s->cfg.relay_rate;
	if (s->cfg.source_rate > UINT32_MAX)
		s->cfg.source_rate = UINT32_MAX;
	s->unauth = ratelimit_new_keyed(rlkey, RDV_UNAUTH_PER_SEC, RDV_UNAUTH_BURST);
	srm_random(s->cfg.rng, s->cfg.rng_ctx, rlkey, sizeof(rlkey));
	/* Burst: one second's worth, as for a peer. */
	s->relay_src = ratelimit_new_keyed(rlkey, (uint32_t)s->cfg.source_rate,
					   s->cfg.source_rate > RELAY_MIN_BURST
						   ? (uint32_t)s->cfg.source_rate
						   : RELAY_MIN_BURST);
	if (s->unauth == NULL || s->relay_src == NULL) {
		ratelimit_free(s->unauth);
		ratelimit_free(s->relay_src);
		free(s);
		return NULL;
	}
	rotate(s, now_ms);
	rotate(s, now_ms); /* both slots hold real keys */
	mesh_init(s);
	return s;
}

void rdv_server_free(struct rdv_server *s)
{
	struct reg *r, *tmp;

	if (s == NULL)
		return;
	HASH_ITER(hh, s->by_pub, r, tmp)
		reg_free(s, r);
	ratelimit_free(s->unauth);
	ratelimit_free(s->relay_src);
	sodium_memzero(s, sizeof(*s));
	free(s);
}
