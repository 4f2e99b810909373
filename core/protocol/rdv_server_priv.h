/*
 * rdv_server_priv.h — the rendezvous server's state, shared by
 * rdv_server.c (registration, lookups, the relay) and rdv_mesh.c (the
 * relay between servers sharing a store).  Not part of the API.
 */
#ifndef SRMUDP_RDV_SERVER_PRIV_H
#define SRMUDP_RDV_SERVER_PRIV_H

#include <uthash.h>

#include "rendezvous.h"
#include "log.h"
#include "ratelimit.h"

#define ADDR_KEY_BYTES 20 /* length byte + compact endpoint (6 or 18) + via */
#define NOTE_TTL_MS 5000   /* a punch request older than this is useless */
#define RELAY_MIN_BURST (64 * 1024)

struct reg {
	uint8_t pub[RDV_KEY_BYTES];
	uint8_t addr_key[ADDR_KEY_BYTES]; /* the source it registered from */
	uint8_t k_c2s[RDV_KEY_BYTES], k_s2c[RDV_KEY_BYTES];
	struct rdv_window rx;
	uint64_t tx_ctr, last_ts, expires_ms;
	uint64_t relay_tokens, relay_ms; /* bytes */
	uint64_t lookup_tokens, lookup_ms; /* thousandths of a lookup */
	uint8_t last_relay_to[4];          /* log a relay once per target */
	/* Consent: the pair tags this registrant listed (malloc'd, as most
	 * list a handful), and the last relay target both consented, valid
	 * while no registration changed its tags (allow_gen). */
	uint8_t *allow;
	size_t allow_count;
	uint8_t relay_ok_to[RDV_KEY_BYTES];
	uint64_t relay_ok_gen;
	/* The last relay target registered on another server: that server
	 * (a MESH route), valid until mesh_until_ms and while allow_gen is
	 * mesh_gen. */
	uint8_t mesh_to[RDV_KEY_BYTES];
	uint64_t mesh_server, mesh_until_ms, mesh_gen;
	uint32_t mesh_slot; /* where that server's card was (mesh.cards) */
	UT_hash_handle hh, hh_addr;
};

/* A server sharing our store, as its card says, and the key MESH packets
 * between it and us are MAC'd under. */
struct mesh_card {
	struct rdv_card card;
	uint8_t key[RDV_KEY_BYTES];
	uint64_t until_ms; /* read from the store again after this; 0: free */
};

struct mesh {
	/* Our static key (--key), or one made at start: the card's. */
	uint8_t secret[RDV_KEY_BYTES], pub[RDV_KEY_BYTES];
	uint64_t announce_ms; /* the next card_put */
	struct mesh_card cards[RDV_MESH_SERVERS];
};

struct eph {
	uint8_t priv[RDV_KEY_BYTES], pub[RDV_KEY_BYTES];
};

struct rdv_server {
	struct rdv_server_config cfg;
	struct rdv_store *store;
	struct reg *by_pub, *by_addr;
	size_t count;
	uint8_t cookie_secret[RDV_KEY_BYTES];
	int have_static; /* --key: pinned AUTHs can be answered */
	uint8_t static_secret[RDV_KEY_BYTES], static_pub[RDV_KEY_BYTES];
	struct eph eph[2]; /* [0] current, [1] previous epoch */
	uint64_t rotate_ms;
	struct ratelimit *unauth;
	struct ratelimit *relay_src; /* relay bytes per source address */
	uint64_t allow_gen;          /* bumped whenever a registrant's tags change */
	struct mesh mesh;
	struct rdv_server_stats st;
	struct rdv_gate gates[RDV_MAX_GATES]; /* announced in REGISTERED (a gate's) */
	size_t gate_count;
	struct log_ratelimit log_auth, log_relay;
	uint64_t now_ms; /* of the packet being handled, for log limits */
};

/* rdv_server.c */
int srv_emit(struct rdv_server *s, struct rdv_out *o, const struct rdv_endpoint *to, size_t len);
int srv_bucket_take(uint64_t *tokens, uint64_t *last_ms, uint64_t rate, uint64_t burst,
		    uint64_t cost, uint64_t now_ms);
int srv_consent(const uint8_t a[RDV_KEY_BYTES], const uint8_t *a_tags, size_t a_count,
		const uint8_t b[RDV_KEY_BYTES], const uint8_t *b_tags, size_t b_count);
void srv_reg_endpoint(const struct reg *r, struct rdv_endpoint *ep);
const char *srv_keytext(const uint8_t pub[RDV_KEY_BYTES], char buf[SRM_PUBKEY_TEXT_BYTES]);

/* rdv_mesh.c */
void mesh_init(struct rdv_server *s);
/* The card of the server that holds target's registration, when target
 * and from consent to each other; NULL: none (counted).  Cached in from. */
const struct mesh_card *mesh_route(struct rdv_server *s, struct reg *from,
				   const uint8_t target[RDV_KEY_BYTES], uint64_t now_ms);
/* The RELAY pkt (len bytes) from `from`, wrapped for the server of card,
 * into out. */
int mesh_wrap(struct rdv_server *s, const struct mesh_card *card, const struct reg *from,
	      const uint8_t *pkt, size_t len, uint64_t now_ms, struct rdv_out *out);
/* A MESH packet from src: delivered to our registrant as a RELAY (1), or
 * a drop code. */
int mesh_receive(struct rdv_server *s, const uint8_t *pkt, size_t len,
		 const struct rdv_endpoint *src, uint64_t now_ms, struct rdv_out *out);
/* Publish our card when due (rdv_server_tick); its deadline. */
void mesh_announce(struct rdv_server *s, uint64_t now_ms);
uint64_t mesh_deadline(const struct rdv_server *s);

#endif
