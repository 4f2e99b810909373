/*
 * rendezvous.h — the rendezvous protocol: peers register with a rendezvous
 * server under their own key, learn their reflexive (public) address, ask
 * for each other by public key, get told to punch, and fall back to the
 * server as a relay.  docs/NAT.md gives every byte; this header is the
 * contract for the engine (client side) and `srmudp rendezvous` (server).
 *
 * Four parts, all sans-I/O (bytes and now_ms in, bytes and destinations
 * out; no socket, no clock, no thread):
 *   rdv_wire.c    message codec: hdr(4) | msgpack map, and store records;
 *   rdv_server.c  server state: stateless challenges, authenticated
 *                 records, rate limits, lookups, punch requests, relay;
 *   rdv_client.c  one engine's client: registration and refresh,
 *                 reflexive address, lookups, relay wrapping;
 *   rdv_store.c   the record directory interface and its in-memory
 *                 implementation (tools/rdv_store_redis.c adds Redis).
 *
 * Packets (wire.h header first, type WIRE_RENDEZVOUS or WIRE_RELAY):
 *   REGISTER   c->s  padded to RDV_REGISTER_MIN_BYTES, no content
 *   CHALLENGE  s->c  server ephemeral X25519 key, server time, cookie =
 *                    MAC(secret, client address, time, ephemeral): the
 *                    server keeps no state for unauthenticated clients
 *   AUTH       c->s  client static key, the echoed challenge, client
 *                    timestamp (strictly increasing), candidates, the
 *                    pair tags of the peers it consents to meet; MAC
 *                    keyed by DH(client static, server ephemeral)
 *   REGISTERED s->c  reflexive address, record lifetime; from a gate, the
 *                    gates it knows (itself first); MAC (s2c key)
 *   LOOKUP     c->s  peer key, counter; MAC (c2s key)
 *   PEER       s->c  peer key and its candidates (reflexive first)
 *   PUNCH      s->c  to the looked-up peer: who wants it, and where
 *   NOTFOUND   s->c  no record for that peer key, or the two keys do not
 *                    both list each other (indistinguishable)
 *   NOTREG     s->c  unauthenticated hint "I do not know you: register",
 *                    never larger than the request it answers
 *   RELAY      both  WIRE_RELAY | peer key (32) | inner srmudp packet:
 *                    c->s the key names the target, s->c the sender;
 *                    forwarded only between consenting registrants
 *   MESH       s->s  WIRE_MESH | sending server id (8) | wall-clock ms (8)
 *                    | target key (32) | sender key (32) | inner | MAC (16):
 *                    a RELAY whose target registered on another server
 *                    sharing the store (rdv_mesh.c), MAC'd under the two
 *                    servers' static keys
 *
 * Errors: negative enum srm_error, or SRM_DROP_CODE(reason) (<= -100) for
 * a packet to drop and count, as in session.h.
 */
#ifndef SRMUDP_RENDEZVOUS_H
#define SRMUDP_RENDEZVOUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "srmudp.h"
#include "wire.h"
#include "noise.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Constants ---------------------------------------------------------- */

#define RDV_KEY_BYTES 32
#define RDV_MAC_BYTES 16
#define RDV_COOKIE_BYTES 16
/* Host addresses + IPv6 a client announces; the reflexive address the
 * server saw comes on top, so a peer gets at most RDV_MAX_CANDIDATES + 1. */
#define RDV_MAX_CANDIDATES 8
#define RDV_MAX_ENDPOINTS (RDV_MAX_CANDIDATES + 1)
/* REGISTER is padded to this so the CHALLENGE (about 75 bytes) that
 * answers it is never larger: amplification factor <= 1. */
#define RDV_REGISTER_MIN_BYTES 128
/* Largest rendezvous or relay packet either side accepts or builds. */
#define RDV_MAX_PACKET 2048
/* WIRE_RELAY: header | peer key | inner packet.  The engine must keep
 * relayed inner packets RDV_RELAY_OVERHEAD below its path MTU. */
#define RDV_RELAY_OVERHEAD (WIRE_HEADER_BYTES + RDV_KEY_BYTES)

/* conntrack forgets an idle UDP flow after 30 s: refreshing the record
 * every 25 s also keeps the client's NAT mapping towards the server. */
#define RDV_REFRESH_MS 25000
/* A record outlives four missed refreshes, then disappears. */
#define RDV_RECORD_TTL_MS 120000
/* An AUTH must echo a challenge at most this old. */
#define RDV_CHALLENGE_TTL_MS 10000
/* The server's ephemeral key (and so every challenge) rotates this often;
 * the previous one stays valid for one more epoch. */
#define RDV_EPOCH_MS 30000
/* Client retransmission of REGISTER/AUTH/LOOKUP: 1 s doubling to 8 s. */
#define RDV_RETRY_MIN_MS 1000
#define RDV_RETRY_MAX_MS 8000
/* A lookup not answered after this many sends is abandoned (and the
 * client re-registers: the server may have restarted). */
#define RDV_LOOKUP_TRIES 4
#define RDV_MAX_PENDING_LOOKUPS 16
/* Consent (issue 18 item 9): a registration lists the pair tags of the
 * peers it wants to meet, rdv_pair_tag(our key, their key).  The server
 * answers a lookup and relays only when both keys list the same tag.
 * 8 bytes: to be let in by a peer B, a stranger must find a key pair S with
 * tag(S, B) equal to one of B's <= 100 tags, about 2^64 / 100 = 2^57
 * X25519 key generations.  100 tags are 800 bytes: an AUTH with 8 IPv6
 * candidates stays under 1,200 bytes (1,235 with a pinned server key),
 * below IPv6's 1,280-byte minimum MTU. */
#define RDV_TAG_BYTES 8
#define RDV_MAX_ALLOW 100
/* Servers sharing a store relay between their registrants (MESH): each
 * publishes a card (its id, static public key and the UDP address others
 * reach it at) every RDV_MESH_ANNOUNCE_MS, kept RDV_MESH_CARD_TTL_MS.  A
 * MESH packet more than RDV_MESH_SKEW_MS away from the receiver's wall
 * clock is dropped (a replay later than that delivers nothing).  A sender
 * keeps where its last remote target is for RDV_MESH_ROUTE_MS (one store
 * read then, not per packet), and at most RDV_MESH_SERVERS cards. */
#define RDV_MESH_ANNOUNCE_MS 10000
#define RDV_MESH_CARD_TTL_MS 30000
#define RDV_MESH_SKEW_MS 30000
#define RDV_MESH_ROUTE_MS 5000
#define RDV_MESH_SERVERS 64
#define RDV_MESH_OVERHEAD (WIRE_HEADER_BYTES + 8 + 8 + 2 * RDV_KEY_BYTES + RDV_MAC_BYTES)
/* Server defaults. */
#define RDV_DEFAULT_MAX_RECORDS 100000
#define RDV_DEFAULT_RELAY_RATE (1024 * 1024) /* bytes/s per registered peer */
/* Relay bytes per source (IPv4 address or IPv6 /64) default to this many
 * times the per-peer rate: a household or office NAT with a few relayed
 * peers fits; eight throwaway keys from one address no longer multiply the
 * per-key limit by eight (issue 18 item 9 measured 94.7 MB in 10 s). */
#define RDV_SOURCE_RATE_FACTOR 4
/* Unauthenticated requests (REGISTER, AUTH, unknown LOOKUP) per source
 * (IPv4 address or IPv6 /64): a client needs 2 per 25 s. */
#define RDV_UNAUTH_PER_SEC 10
#define RDV_UNAUTH_BURST 20
/* Lookups per registered peer: a peer looks up each of its peers once
 * per connection attempt. */
#define RDV_LOOKUP_PER_SEC 20
#define RDV_LOOKUP_BURST 40

/* Message kinds, key 0 of the msgpack map. */
enum rdv_kind {
	RDV_REGISTER = 1,
	RDV_CHALLENGE = 2,
	RDV_AUTH = 3,
	RDV_REGISTERED = 4,
	RDV_LOOKUP = 5,
	RDV_PEER = 6,
	RDV_PUNCH = 7,
	RDV_NOTFOUND = 8,
	RDV_NOTREG = 9,
};

/* How a client reaches the server: UDP, or a WebSocket (a TCP connection,
 * possibly through an HTTP proxy or a TLS-terminating reverse proxy) where
 * UDP is blocked.  Both carry the same packets; only the server loop and
 * the engine's driver know the difference. */
enum rdv_via {
	RDV_VIA_UDP = 0,
	RDV_VIA_WS = 1,
};

/* An address as the engine uses it.  via tells the server which transport
 * a client's address belongs to (a WebSocket client's address is its TCP
 * source, which nobody can punch to); the wire encoding carries no via. */
struct rdv_endpoint {
	struct sockaddr_storage addr;
	socklen_t len; /* 0: none */
	uint8_t via;   /* enum rdv_via */
};

/* ---- Codec (rdv_wire.c) ------------------------------------------------- */

/* Map keys (small unsigned integers).  RDV_F_MAC, when present, must be
 * the last entry and end the packet: the MAC covers every byte before its
 * value. */
enum rdv_field {
	RDV_F_KIND = 0,   /* uint */
	RDV_F_PUB = 1,    /* bin 32: the sender's static key (AUTH) */
	RDV_F_EPH = 2,    /* bin 32: server ephemeral key */
	RDV_F_TIME = 3,   /* uint: server time of the challenge */
	RDV_F_COOKIE = 4, /* bin 16 */
	RDV_F_TS = 5,     /* uint: client timestamp (wall clock, ms) */
	RDV_F_CANDS = 6,  /* array of endpoints (bin 6 or bin 18) */
	RDV_F_ADDR = 7,   /* endpoint: the reflexive address */
	RDV_F_PEER = 8,   /* bin 32: the other peer's key */
	RDV_F_TTL = 9,    /* uint: record lifetime in ms */
	RDV_F_CTR = 10,   /* uint: per-direction message counter (replay) */
	RDV_F_PAD = 11,   /* bin: padding, ignored */
	RDV_F_MAC = 12,   /* bin 16 */
	RDV_F_ALLOW = 13, /* bin 8n: pair tags of the consented peers (AUTH) */
	RDV_F_SERVER = 14, /* bin 32: the server static key the client pinned (AUTH) */
	RDV_F_GATES = 15,  /* array of gate entries (REGISTERED from a gate), rdv_gate_put */
	RDV_F_COUNT
};

/* A gate a gate announces to its members (docs/NAT.md "Gates"), so that
 * a member can later use one it was never configured with: its key, its
 * UDP endpoint (len 0: the address the member registered at, for the
 * announcing gate itself), and its WebSocket port (0: none; wss: TLS),
 * reached at the UDP endpoint's host.  On the wire, one bin: key (32) |
 * WebSocket port (2, big-endian) | flags (1: bit 0 wss) | compact
 * endpoint (0, 6 or 18 bytes).  At most RDV_MAX_GATES per message. */
#define RDV_MAX_GATES 8
#define RDV_GATE_MAX_BYTES (RDV_KEY_BYTES + 3 + 18)
struct rdv_gate {
	uint8_t key[RDV_KEY_BYTES];
	struct rdv_endpoint udp;
	uint16_t ws_port;
	uint8_t wss;
};
size_t rdv_gate_put(uint8_t *p, size_t cap, const struct rdv_gate *g);
int rdv_gate_get(const uint8_t *p, size_t len, struct rdv_gate *g);

/* A decoded (or to-be-encoded) rendezvous message.  present has bit
 * (1 << field) for each field carried. */
struct rdv_msg {
	uint32_t present;
	uint8_t kind;
	uint8_t pub[RDV_KEY_BYTES], eph[RDV_KEY_BYTES], peer[RDV_KEY_BYTES];
	uint8_t server[RDV_KEY_BYTES];
	uint8_t cookie[RDV_COOKIE_BYTES], mac[RDV_MAC_BYTES];
	uint64_t time, ts, ttl, ctr;
	struct rdv_endpoint addr;
	struct rdv_endpoint cands[RDV_MAX_ENDPOINTS];
	size_t cand_count;
	uint8_t allow[RDV_MAX_ALLOW * RDV_TAG_BYTES];
	size_t allow_count; /* tags */
	struct rdv_gate gates[RDV_MAX_GATES];
	size_t gate_count;
	size_t mac_off; /* decode: offset of the MAC value (= bytes it covers) */
};

#define RDV_HAS(m, f) (((m)->present >> (f)) & 1u)

/* Encode m (fields per m->present, kind always) into out.  With mac_key,
 * a MAC field is appended: BLAKE2b-128 keyed by mac_key over every byte
 * before it.  pad_to > 0 adds padding so the packet is at least pad_to
 * bytes.  Returns the length, or 0 if it does not fit in cap or m holds
 * an endpoint of another family than AF_INET/AF_INET6. */
size_t rdv_msg_encode(const struct rdv_msg *m, const uint8_t *mac_key, size_t pad_to,
		      uint8_t *out, size_t cap);

/* Strict decode: wire header (type WIRE_RENDEZVOUS, version), one map that
 * ends the packet, known keys with the right types (unknown keys skipped),
 * no duplicates, MAC last.  Returns 0, or SRM_DROP_CODE(MALFORMED or
 * VERSION).  Does not check the MAC. */
int rdv_msg_decode(const uint8_t *pkt, size_t len, struct rdv_msg *m)
	__attribute__((warn_unused_result));

/* Check the MAC of a decoded packet under key.  Returns 0, or
 * SRM_DROP_CODE(SRM_DROP_MAC) (missing or wrong), in constant time. */
int rdv_msg_verify(const uint8_t *pkt, size_t len, const struct rdv_msg *m,
		   const uint8_t key[RDV_KEY_BYTES]) __attribute__((warn_unused_result));

/* The three MAC keys of one registration, from dh = X25519(client static,
 * server ephemeral): BLAKE2b-256(key = dh, label || client_pub || eph_pub)
 * with labels "auth", "c2s\0", "s2c\0" (docs/NAT.md).  Returns 0, or
 * SRM_ERR_INVALID when the DH result is all zero (low-order point). */
int rdv_derive_keys(const uint8_t secret[RDV_KEY_BYTES], const uint8_t public_key[RDV_KEY_BYTES],
		    const uint8_t client_pub[RDV_KEY_BYTES], const uint8_t eph_pub[RDV_KEY_BYTES],
		    uint8_t k_auth[RDV_KEY_BYTES], uint8_t k_c2s[RDV_KEY_BYTES],
		    uint8_t k_s2c[RDV_KEY_BYTES]) __attribute__((warn_unused_result));

/* A pinned server (issue 18 item 10): the three keys are hashed once more
 * under pdh = X25519(client static, server static), each k becoming
 * BLAKE2b-256(key = pdh, k).  The client calls it with its secret and the
 * server's pinned public key, the server with its static secret and the
 * client's key: a server without that secret can neither check the AUTH
 * nor produce a REGISTERED, PEER, PUNCH or NOTFOUND the client accepts.
 * Returns 0, or SRM_ERR_INVALID when pdh is all zero (the keys are then
 * wiped). */
int rdv_pin_keys(const uint8_t secret[RDV_KEY_BYTES], const uint8_t public_key[RDV_KEY_BYTES],
		 uint8_t k_auth[RDV_KEY_BYTES], uint8_t k_c2s[RDV_KEY_BYTES],
		 uint8_t k_s2c[RDV_KEY_BYTES]) __attribute__((warn_unused_result));

/* The consent tag of the pair {a, b}: BLAKE2b-64(key = "srmudp rdv pair\0" (16),
 * lower key || higher key), the same from both sides.  The server can
 * compute it for two keys it knows (that is how it checks consent); for a
 * listed key it has never seen, a tag tells it nothing but that one more
 * peer is listed. */
void rdv_pair_tag(const uint8_t a[RDV_KEY_BYTES], const uint8_t b[RDV_KEY_BYTES],
		  uint8_t tag[RDV_TAG_BYTES]);
/* 1 if tag is one of the count tags in list (not constant time: the tags
 * are no secret from the server that holds them). */
int rdv_tags_have(const uint8_t *list, size_t count, const uint8_t tag[RDV_TAG_BYTES]);

/* Sliding replay window over message counters (64 wide: LOOKUP answers
 * may be reordered).  Returns 1 and records ctr if it is new, 0 if it was
 * seen or is too old.  Zero-initialise; counters start at 1. */
struct rdv_window {
	uint64_t top, bits;
};
int rdv_window_accept(struct rdv_window *w, uint64_t ctr);

/* Endpoint <-> compact bytes: 4-byte IPv4 or 16-byte IPv6 address, then
 * the port big-endian.  Returns bytes written (6 or 18) or 0 for another
 * family / short buffer; decode returns 0 or SRM_ERR_INVALID. */
size_t rdv_endpoint_put(uint8_t *p, size_t cap, const struct rdv_endpoint *ep);
int rdv_endpoint_get(const uint8_t *p, size_t len, struct rdv_endpoint *ep);
/* Same address family, address and port (IPv4-mapped IPv6 equals IPv4),
 * and the same via. */
int rdv_endpoint_equal(const struct rdv_endpoint *a, const struct rdv_endpoint *b);
/* "1.2.3.4:5" / "[::1]:5" for logs. */
const char *rdv_endpoint_str(const struct rdv_endpoint *ep, char *buf, size_t cap);

/* ---- Records and the store (rdv_store.c) -------------------------------- */

/* What the directory keeps for one registered peer. */
struct rdv_record {
	uint8_t pub[RDV_KEY_BYTES];
	struct rdv_endpoint reflexive;      /* the source the server saw (via: UDP or a
					     * WebSocket, whose address is not a candidate) */
	struct rdv_endpoint cands[RDV_MAX_CANDIDATES];
	size_t cand_count;
	uint64_t last_ts;   /* newest accepted AUTH timestamp: replays are older */
	uint64_t server_id; /* the server that holds the peer's MAC keys */
	uint8_t allow[RDV_MAX_ALLOW * RDV_TAG_BYTES]; /* consent: pair tags */
	size_t allow_count;
};

/* A server's card, for the others sharing its store (MESH). */
struct rdv_card {
	uint64_t server_id;
	uint8_t pub[RDV_KEY_BYTES];   /* its static key (--key, or one made at start) */
	struct rdv_endpoint addr;     /* UDP, where other servers reach it */
};

/* Card <-> bytes: id (8, LE) | key (32) | compact endpoint (6 or 18).
 * encode returns the length or 0; decode returns 0 or SRM_ERR_INVALID. */
#define RDV_CARD_MAX_BYTES (8 + RDV_KEY_BYTES + 18)
size_t rdv_card_encode(const struct rdv_card *c, uint8_t *out, size_t cap);
int rdv_card_decode(const uint8_t *p, size_t len, struct rdv_card *c)
	__attribute__((warn_unused_result));

/* Record <-> bytes (msgpack), for stores that keep bytes (Redis).
 * encode returns the length or 0; decode returns 0 or SRM_ERR_INVALID. */
size_t rdv_record_encode(const struct rdv_record *r, uint8_t *out, size_t cap);
int rdv_record_decode(const uint8_t *p, size_t len, struct rdv_record *r)
	__attribute__((warn_unused_result));

/*
 * The directory the servers share.  Synchronous and simple: a Redis call
 * blocks the server loop for one round trip to a local Redis.  Every
 * operation returns 0 or a negative enum srm_error (SRM_ERR_IO: the store
 * is unreachable; the server then answers nothing and counts it).
 *  put:   insert or replace r, gone after ttl_ms.
 *  get:   0 with *out, or SRM_ERR_NOTFOUND (absent or expired).
 *  del:   forget a record (absent is fine).
 *  note:  queue msg for server server_id (punch requests for peers
 *         registered on another server); dropped after ttl_ms.
 *  take_note: pop one note for server server_id into buf; returns its
 *         length, 0 if none, or a negative error.
 *  card_put: publish this server's card, gone after ttl_ms.
 *  card_get: server_id's card: 0 with *out, or SRM_ERR_NOTFOUND.
 *  count: records held, when known (the memory store), else 0.
 */
struct rdv_store_ops {
	int (*put)(void *ctx, const struct rdv_record *r, uint32_t ttl_ms, uint64_t now_ms);
	int (*get)(void *ctx, const uint8_t pub[RDV_KEY_BYTES], uint64_t now_ms,
		   struct rdv_record *out);
	int (*del)(void *ctx, const uint8_t pub[RDV_KEY_BYTES]);
	int (*note)(void *ctx, uint64_t server_id, const uint8_t *msg, size_t len,
		    uint32_t ttl_ms, uint64_t now_ms);
	int (*take_note)(void *ctx, uint64_t server_id, uint8_t *buf, size_t cap,
			 uint64_t now_ms);
	int (*card_put)(void *ctx, const struct rdv_card *c, uint32_t ttl_ms, uint64_t now_ms);
	int (*card_get)(void *ctx, uint64_t server_id, uint64_t now_ms, struct rdv_card *out);
	size_t (*count)(void *ctx);
	void (*free)(void *ctx);
};

struct rdv_store {
	const struct rdv_store_ops *ops;
	void *ctx;
	const char *name; /* "memory", "redis://HOST:PORT" */
};

/* In-memory store (uthash), at most max_records records: when full, the
 * least recently refreshed record goes first.  Notes: at most
 * RDV_STORE_MAX_NOTES, oldest dropped; cards: RDV_MESH_SERVERS.  NULL on
 * NOMEM. */
#define RDV_STORE_MAX_NOTES 4096
struct rdv_store *rdv_store_memory_new(size_t max_records);
void rdv_store_free(struct rdv_store *st);

/* ---- Server (rdv_server.c) ---------------------------------------------- */

struct rdv_server_config {
	size_t max_records;      /* local registrations; 0: default */
	uint64_t relay_rate;     /* bytes/s per registered peer; 0: default */
	uint64_t relay_burst;    /* bytes; 0: max(relay_rate, 64 KiB) */
	uint64_t source_rate;    /* relay bytes/s per source address (IPv4, IPv6 /64);
				  * 0: RDV_SOURCE_RATE_FACTOR * relay_rate */
	uint64_t server_id;      /* 0: random (shared stores need distinct ids) */
	/* With a shared store: the UDP address other servers reach this one
	 * at, published in its card, so that the relay joins peers registered
	 * on different servers (MESH).  len 0: not published; relaying to
	 * another server's registrants still works. */
	struct rdv_endpoint mesh_addr;
	/* CLOCK_REALTIME - CLOCK_MONOTONIC in ms: MESH packets carry wall
	 * time (servers' monotonic clocks differ). */
	uint64_t wall_offset_ms;
	/* The server's static key (srmudp rendezvous --key), for clients that
	 * pin it (SRMUDP_RENDEZVOUS=KEY@HOST:PORT); NULL: none, and a pinned
	 * AUTH fails.  Copied. */
	const uint8_t *static_secret;
	/* A gate (an engine with SRMUDP_GATE=on, docs/NAT.md "Gates"): only
	 * the keys admit() accepts may register, and only with the server's
	 * key pinned, so nobody outside the group looks anyone up or gets
	 * relayed.  NULL: anyone may register (srmudp rendezvous). */
	bool (*admit)(void *ctx, const uint8_t pub[RDV_KEY_BYTES]);
	void *admit_ctx;
	srm_rng_fn *rng;         /* NULL: randombytes_buf */
	void *rng_ctx;
};

/* One packet the server wants sent. */
struct rdv_out {
	struct rdv_endpoint to;
	size_t len;
	uint8_t buf[RDV_MAX_PACKET];
};

/* Every counter, in the order status documents list them.  not_member:
 * AUTHs refused by admit (in auth_failed too); lookup_refused and
 * relay_refused: no consent; relay_source_limited: per source; mesh_*:
 * MESH packets sent, delivered, dropped. */
#define RDV_SERVER_COUNTERS(X)                                                       \
	X(rx_packets) X(rx_bytes) X(tx_packets) X(tx_bytes)                          \
	X(registers) X(challenges) X(auth_ok) X(auth_failed) X(not_member) X(replays) \
	X(cookie_bad) X(lookups) X(found) X(not_found) X(punches) X(notes_sent)      \
	X(notes_received) X(relay_packets) X(relay_bytes) X(relay_limited)           \
	X(relay_unknown) X(lookup_refused) X(relay_refused) X(relay_source_limited)  \
	X(rate_limited) X(malformed) X(expired) X(evicted) X(store_errors)           \
	X(mesh_out) X(mesh_in) X(mesh_bad)

struct rdv_server_stats {
#define RDV_SERVER_FIELD(name) uint64_t name;
	RDV_SERVER_COUNTERS(RDV_SERVER_FIELD)
#undef RDV_SERVER_FIELD
	uint64_t records; /* current local registrations */
};

struct rdv_server;

/* The store is borrowed (it must outlive the server).  NULL on NOMEM. */
struct rdv_server *rdv_server_new(const struct rdv_server_config *cfg, struct rdv_store *store,
				  uint64_t now_ms);
void rdv_server_free(struct rdv_server *s);

/* Handle one datagram from src (src->via: the UDP socket or a WebSocket
 * connection; answers go back the same way, in out[].to.via).  Writes up to out_cap packets into out
 * (2 suffice: a lookup answers the asker and tells the target to punch)
 * and returns how many, or a drop code.  Every packet it answers an
 * unauthenticated request with is no larger than that request. */
int rdv_server_receive(struct rdv_server *s, const uint8_t *pkt, size_t len,
		       const struct rdv_endpoint *src, uint64_t now_ms, struct rdv_out *out,
		       size_t out_cap);

/* Timers: expire records, rotate the ephemeral key, deliver notes from
 * other servers (punch requests for our registrants).  Call when
 * rdv_server_deadline() passes; with a shared store, also every
 * RDV_NOTE_POLL_MS.  Returns packets written to out (< out_cap: call
 * again if it returned out_cap). */
#define RDV_NOTE_POLL_MS 100
int rdv_server_tick(struct rdv_server *s, uint64_t now_ms, struct rdv_out *out, size_t out_cap);
uint64_t rdv_server_deadline(const struct rdv_server *s);
void rdv_server_get_stats(const struct rdv_server *s, struct rdv_server_stats *out);
/* A gate's announcement (RDV_F_GATES), sent in every REGISTERED from
 * now on: at most RDV_MAX_GATES, copied; n 0: none. */
void rdv_server_set_gates(struct rdv_server *s, const struct rdv_gate *gates, size_t n);
/* What admit accepts changed (a gate's peers were reloaded): every
 * registration it no longer admits is forgotten, here and in the store,
 * so a removed member is neither found nor relayed from then on. */
void rdv_server_readmit(struct rdv_server *s);
uint64_t rdv_server_id(const struct rdv_server *s);

/* ---- Client (rdv_client.c) ---------------------------------------------- */

enum rdv_event_type {
	RDV_EV_NONE = 0,
	RDV_EV_REGISTERED,      /* reflexive: our public address as the server sees it */
	RDV_EV_PEER_CANDIDATES, /* answer to our lookup: punch towards endpoints */
	RDV_EV_PUNCH_REQUEST,   /* peer looked us up: punch towards endpoints */
	RDV_EV_PEER_NOTFOUND,   /* the server has no record for peer */
	RDV_EV_RELAYED,         /* inner packet relayed from peer */
};

struct rdv_event {
	enum rdv_event_type type;
	uint8_t peer[RDV_KEY_BYTES];
	struct rdv_endpoint reflexive;                /* REGISTERED */
	struct rdv_gate gates[RDV_MAX_GATES];         /* REGISTERED: the gates it announced */
	size_t gate_count;
	struct rdv_endpoint endpoints[RDV_MAX_ENDPOINTS]; /* CANDIDATES, PUNCH */
	size_t endpoint_count;
	const uint8_t *inner; /* RELAYED: points into the packet given */
	size_t inner_len;
};

struct rdv_client_config {
	const struct identity *id; /* borrowed; must outlive the client; the
				    * driver sends to the server (over UDP or a
				    * WebSocket), so no address here */
	/* AUTH timestamps are wall-clock ms = now_ms + wall_offset_ms, so they
	 * keep increasing across restarts of the engine (replay protection).
	 * The engine passes CLOCK_REALTIME - CLOCK_MONOTONIC at start. */
	uint64_t wall_offset_ms;
	srm_rng_fn *rng; /* NULL: randombytes_buf (jitter) */
	void *rng_ctx;
};

struct rdv_client;

/* The peers we consent to meet (their public keys; at most
 * RDV_MAX_ALLOW, more: SRM_ERR_INVALID).  Sent as pair tags in every AUTH;
 * the server answers lookups and relays only between two registrations
 * that list each other.  A change re-registers at the next poll. */
int rdv_client_set_peers(struct rdv_client *c, const uint8_t (*keys)[RDV_KEY_BYTES], size_t n,
			 uint64_t now_ms);

/* Starts unregistered: the first rdv_client_poll() sends a REGISTER.
 * NULL on NOMEM or a bad configuration. */
struct rdv_client *rdv_client_new(const struct rdv_client_config *cfg, uint64_t now_ms);
/* Wipes the MAC keys. */
void rdv_client_free(struct rdv_client *c);

/* Host addresses (with the engine's port) and IPv6 addresses to announce.
 * More than RDV_MAX_CANDIDATES: SRM_ERR_INVALID.  A change re-registers
 * at the next poll. */
int rdv_client_set_candidates(struct rdv_client *c, const struct rdv_endpoint *eps, size_t n,
			      uint64_t now_ms);

/* Ask for a peer.  Answered by RDV_EV_PEER_CANDIDATES or
 * RDV_EV_PEER_NOTFOUND.  Sent once registered, retried RDV_LOOKUP_TRIES
 * times; then dropped silently, and the client re-registers (the server
 * may have restarted).  A lookup already pending is not duplicated.
 * Returns 0 or SRM_ERR_NOMEM (RDV_MAX_PENDING_LOOKUPS pending). */
int rdv_client_lookup(struct rdv_client *c, const uint8_t peer[RDV_KEY_BYTES], uint64_t now_ms);

/* Register again now, e.g. when a path fell silent and our public address
 * may have changed (the REGISTERED event then tells the new one).  The
 * current registration's keys, pending lookups and the relay stay usable
 * meanwhile.  A registration already under way is left alone. */
void rdv_client_refresh(struct rdv_client *c, uint64_t now_ms);

/* The way to the server changed (UDP <-> WebSocket), or the server did
 * (a failover: SRMUDP_RENDEZVOUS lists several): register again and resend
 * pending lookups now, with fresh retries (a REGISTER backing off towards
 * an unreachable UDP port must not hold the new link back up to
 * RDV_RETRY_MAX_MS).  The current registration stays usable until the new
 * one.  server_pub: the server's static public key, pinned
 * (SRMUDP_RENDEZVOUS=KEY@...), so only answers under rdv_pin_keys count;
 * NULL: any server (its answers are authenticated only towards who
 * answered the CHALLENGE).  Copied.  A new client pins no key. */
void rdv_client_relink(struct rdv_client *c, const uint8_t *server_pub, uint64_t now_ms);

/* A REGISTER, stateless: its CHALLENGE answer (ignored by a registered
 * client) shows whether the server can be reached this way.  Returns its
 * length (RDV_REGISTER_MIN_BYTES), or 0 if cap is too small. */
size_t rdv_register_packet(uint8_t *out, size_t cap);

/* The next packet to send to the server, if one is due at now_ms: writes
 * it to out and returns its length; 0 when nothing is due.  Call until it
 * returns 0 (after every receive/lookup and when the deadline passes). */
size_t rdv_client_poll(struct rdv_client *c, uint64_t now_ms, uint8_t *out, size_t cap);
/* When poll will next have something (UINT64_MAX: never). */
uint64_t rdv_client_deadline(const struct rdv_client *c);

/* Handle a WIRE_RENDEZVOUS or WIRE_RELAY packet that came from the server
 * address (the caller checks the source).  Returns 1 with *ev filled, 0
 * if the packet was consumed without an event (a CHALLENGE, a retransmit),
 * or a drop code (MALFORMED, VERSION, MAC, REPLAY). */
int rdv_client_receive(struct rdv_client *c, const uint8_t *pkt, size_t len, uint64_t now_ms,
		       struct rdv_event *ev) __attribute__((warn_unused_result));

/* Wrap an srmudp packet for the relay towards target.  Returns the
 * length (len + RDV_RELAY_OVERHEAD), or 0 if it does not fit in cap or in
 * RDV_MAX_PACKET, or if the client is not registered (the server would
 * drop it). */
size_t rdv_client_wrap_relay(const struct rdv_client *c, const uint8_t target[RDV_KEY_BYTES],
			     const uint8_t *inner, size_t len, uint8_t *out, size_t cap);

/* AUTH rounds (an AUTH and its retransmissions, about 15 s) that went
 * unanswered since the last registration or relink: the server answers
 * REGISTER, so it is there, but not our AUTH.  With a pinned key, the
 * likely cause is a key that is not the server's. */
unsigned rdv_client_auth_failures(const struct rdv_client *c);

/* 1 once registered (and until the record would have expired without a
 * refresh); *reflexive gets our public address when not NULL. */
int rdv_client_registered(const struct rdv_client *c, uint64_t now_ms,
			  struct rdv_endpoint *reflexive);

#ifdef __cplusplus
}
#endif
#endif
