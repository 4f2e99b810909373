/*
 * rdv_mesh.c — the relay between rendezvous servers that share a store
 * (issue 18 item 11): a peer registered on server A relays to a peer
 * registered on server B; A checks consent and the sender's limits as for
 * a local target, wraps the packet in a MESH packet for B, and B hands it
 * to its registrant as an ordinary RELAY.
 *
 * Where B is: its card in the store (id, static key, UDP address),
 * published every RDV_MESH_ANNOUNCE_MS.  Who may send MESH packets: a
 * server whose card is in the store; each packet is MAC'd under
 * BLAKE2b(X25519(A's static key, B's)), so someone who can reach B's UDP
 * port but holds neither secret cannot inject relay traffic into B's NAT
 * mappings.  The store is trusted as it is for records (docs/NAT.md,
 * "Several servers"); no secret lives in it.
 */
#include <string.h>

#include <sodium.h>

#include "rdv_server_priv.h"

#define MESH_ID_AT WIRE_HEADER_BYTES
#define MESH_TIME_AT (MESH_ID_AT + 8)
#define MESH_TARGET_AT (MESH_TIME_AT + 8)
#define MESH_SENDER_AT (MESH_TARGET_AT + RDV_KEY_BYTES)
#define MESH_INNER_AT (MESH_SENDER_AT + RDV_KEY_BYTES)

void mesh_init(struct rdv_server *s)
{
	if (s->have_static)
		memcpy(s->mesh.secret, s->static_secret, RDV_KEY_BYTES);
	else
		srm_random(s->cfg.rng, s->cfg.rng_ctx, s->mesh.secret, RDV_KEY_BYTES);
	crypto_scalarmult_base(s->mesh.pub, s->mesh.secret);
}

/* The same key on both sides: BLAKE2b-256(key = DH, label | lower key |
 * higher key).  -1 for a degenerate DH (a low-order card key). */
static int pair_key(const struct rdv_server *s, const uint8_t them[RDV_KEY_BYTES],
		    uint8_t key[RDV_KEY_BYTES])
{
	static const uint8_t label[16] = "srmudp rdv mesh";
	uint8_t dh[RDV_KEY_BYTES], msg[16 + 2 * RDV_KEY_BYTES];
	int lower = memcmp(s->mesh.pub, them, RDV_KEY_BYTES) < 0;

	if (crypto_scalarmult(dh, s->mesh.secret, them) != 0)
		return -1;
	memcpy(msg, label, 16);
	memcpy(msg + 16, lower ? s->mesh.pub : them, RDV_KEY_BYTES);
	memcpy(msg + 16 + RDV_KEY_BYTES, lower ? them : s->mesh.pub, RDV_KEY_BYTES);
	crypto_generichash(key, RDV_KEY_BYTES, msg, sizeof(msg), dh, sizeof(dh));
	sodium_memzero(dh, sizeof(dh));
	return 0;
}

static struct mesh_card *card_cached(struct rdv_server *s, uint64_t id, uint64_t now_ms)
{
	for (size_t i = 0; i < RDV_MESH_SERVERS; i++)
		if (s->mesh.cards[i].until_ms > now_ms && s->mesh.cards[i].card.server_id == id)
			return &s->mesh.cards[i];
	return NULL;
}

/* Server id's card: cached, or read from the store (and its key derived)
 * into the slot that expires first. */
static struct mesh_card *card_of(struct rdv_server *s, uint64_t id, uint64_t now_ms)
{
	struct mesh_card *c = card_cached(s, id, now_ms), *slot = &s->mesh.cards[0];
	struct rdv_card card;
	int rc;

	if (c != NULL || id == s->cfg.server_id)
		return c;
	rc = s->store->ops->card_get(s->store->ctx, id, now_ms, &card);
	if (rc != 0) {
		if (rc != SRM_ERR_NOTFOUND)
			s->st.store_errors++;
		return NULL;
	}
	for (size_t i = 1; i < RDV_MESH_SERVERS; i++)
		if (s->mesh.cards[i].until_ms < slot->until_ms)
			slot = &s->mesh.cards[i];
	if (pair_key(s, card.pub, slot->key) != 0) {
		sodium_memzero(slot, sizeof(*slot));
		return NULL;
	}
	slot->card = card;
	slot->until_ms = now_ms + RDV_MESH_ROUTE_MS;
	return slot;
}

const struct mesh_card *mesh_route(struct rdv_server *s, struct reg *from,
				   const uint8_t target[RDV_KEY_BYTES], uint64_t now_ms)
{
	struct rdv_record rec;
	struct mesh_card *c;
	int rc;

	if (from->mesh_until_ms > now_ms && from->mesh_gen == s->allow_gen &&
	    memcmp(from->mesh_to, target, RDV_KEY_BYTES) == 0) {
		/* Per packet: the slot it was in, not a walk of the cards. */
		c = &s->mesh.cards[from->mesh_slot];
		if (c->until_ms > now_ms && c->card.server_id == from->mesh_server)
			return c;
		if ((c = card_of(s, from->mesh_server, now_ms)) != NULL) {
			from->mesh_slot = (uint32_t)(c - s->mesh.cards);
			return c;
		}
	}
	/* A store read per new route: the sender's lookup budget pays. */
	if (!srv_bucket_take(&from->lookup_tokens, &from->lookup_ms, RDV_LOOKUP_PER_SEC * 1000,
			     RDV_LOOKUP_BURST * 1000, 1000, now_ms)) {
		s->st.rate_limited++;
		return NULL;
	}
	rc = s->store->ops->get(s->store->ctx, target, now_ms, &rec);
	if (rc != 0 || rec.server_id == s->cfg.server_id) {
		if (rc != 0 && rc != SRM_ERR_NOTFOUND)
			s->st.store_errors++;
		s->st.relay_unknown++;
		return NULL;
	}
	if (!srv_consent(from->pub, from->allow, from->allow_count, rec.pub, rec.allow,
			 rec.allow_count)) {
		s->st.relay_refused++;
		return NULL;
	}
	c = card_of(s, rec.server_id, now_ms);
	if (c == NULL) {
		s->st.relay_unknown++; /* that server publishes no address */
		return NULL;
	}
	memcpy(from->mesh_to, target, RDV_KEY_BYTES);
	from->mesh_server = rec.server_id;
	from->mesh_slot = (uint32_t)(c - s->mesh.cards);
	from->mesh_until_ms = now_ms + RDV_MESH_ROUTE_MS;
	from->mesh_gen = s->allow_gen;
	return c;
}

int mesh_wrap(struct rdv_server *s, const struct mesh_card *card, const struct reg *from,
	      const uint8_t *pkt, size_t len, uint64_t now_ms, struct rdv_out *out)
{
	size_t inner = len - RDV_RELAY_OVERHEAD, n = inner + RDV_MESH_OVERHEAD;
	uint8_t *p = out->buf;

	if (n > sizeof(out->buf))
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	wire_put_header(p, WIRE_MESH);
	put_le64(p + MESH_ID_AT, s->cfg.server_id);
	put_le64(p + MESH_TIME_AT, now_ms + s->cfg.wall_offset_ms);
	memcpy(p + MESH_TARGET_AT, pkt + WIRE_HEADER_BYTES, RDV_KEY_BYTES);
	memcpy(p + MESH_SENDER_AT, from->pub, RDV_KEY_BYTES);
	memcpy(p + MESH_INNER_AT, pkt + RDV_RELAY_OVERHEAD, inner);
	crypto_generichash(p + n - RDV_MAC_BYTES, RDV_MAC_BYTES, p, n - RDV_MAC_BYTES, card->key,
			   RDV_KEY_BYTES);
	s->st.mesh_out++;
	return srv_emit(s, out, &card->card.addr, n);
}

int mesh_receive(struct rdv_server *s, const uint8_t *pkt, size_t len,
		 const struct rdv_endpoint *src, uint64_t now_ms, struct rdv_out *out)
{
	uint8_t mac[RDV_MAC_BYTES];
	const struct mesh_card *c;
	struct rdv_endpoint to;
	struct reg *t;
	uint64_t id, wall, our_wall = now_ms + s->cfg.wall_offset_ms;
	size_t inner, n;

	if (len < RDV_MESH_OVERHEAD + WIRE_HEADER_BYTES || len > RDV_MAX_PACKET) {
		s->st.mesh_bad++;
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	}
	id = get_le64(pkt + MESH_ID_AT);
	c = card_cached(s, id, now_ms);
	if (c == NULL) {
		/* A store read for an id we have not seen: per source. */
		if (!ratelimit_allow(s->unauth, (const struct sockaddr *)&src->addr, src->len,
				     now_ms)) {
			s->st.rate_limited++;
			s->st.mesh_bad++;
			return SRM_DROP_CODE(SRM_DROP_RATELIMIT);
		}
		c = card_of(s, id, now_ms);
	}
	if (c == NULL) {
		s->st.mesh_bad++;
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
	}
	crypto_generichash(mac, sizeof(mac), pkt, len - RDV_MAC_BYTES, c->key, RDV_KEY_BYTES);
	if (sodium_memcmp(mac, pkt + len - RDV_MAC_BYTES, RDV_MAC_BYTES) != 0) {
		s->st.mesh_bad++;
		return SRM_DROP_CODE(SRM_DROP_MAC);
	}
	wall = get_le64(pkt + MESH_TIME_AT);
	if (wall + RDV_MESH_SKEW_MS < our_wall || wall > our_wall + RDV_MESH_SKEW_MS) {
		s->st.mesh_bad++;
		return SRM_DROP_CODE(SRM_DROP_STALE);
	}
	HASH_FIND(hh, s->by_pub, pkt + MESH_TARGET_AT, RDV_KEY_BYTES, t);
	if (t == NULL || t->expires_ms <= now_ms) {
		s->st.relay_unknown++;
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
	}
	/* An ordinary RELAY for t: the key names the sender. */
	inner = len - RDV_MESH_OVERHEAD;
	n = inner + RDV_RELAY_OVERHEAD;
	wire_put_header(out->buf, WIRE_RELAY);
	memcpy(out->buf + WIRE_HEADER_BYTES, pkt + MESH_SENDER_AT, RDV_KEY_BYTES);
	memcpy(out->buf + RDV_RELAY_OVERHEAD, pkt + MESH_INNER_AT, inner);
	s->st.mesh_in++;
	s->st.relay_packets++;
	s->st.relay_bytes += n;
	srv_reg_endpoint(t, &to);
	return srv_emit(s, out, &to, n);
}

void mesh_announce(struct rdv_server *s, uint64_t now_ms)
{
	struct rdv_card card = { .server_id = s->cfg.server_id, .addr = s->cfg.mesh_addr };

	if (s->cfg.mesh_addr.len == 0 || now_ms < s->mesh.announce_ms)
		return;
	memcpy(card.pub, s->mesh.pub, RDV_KEY_BYTES);
	card.addr.via = RDV_VIA_UDP;
	if (s->store->ops->card_put(s->store->ctx, &card, RDV_MESH_CARD_TTL_MS, now_ms) != 0)
		s->st.store_errors++;
	s->mesh.announce_ms = now_ms + RDV_MESH_ANNOUNCE_MS;
}

uint64_t mesh_deadline(const struct rdv_server *s)
{
	return s->cfg.mesh_addr.len ? s->mesh.announce_ms : UINT64_MAX;
}
