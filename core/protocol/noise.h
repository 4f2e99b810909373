/*
 * noise.h — the two handshake messages: Noise IK over X25519,
 * ChaCha20-Poly1305 and SHA-256 (HKDF from HMAC-SHA256), and the local
 * identity they authenticate.
 *
 *   Noise_IK_25519_ChaChaPoly_SHA256, prologue "srmudp v1"
 *     <- s
 *     ...
 *     -> e, es, s, ss   (HANDSHAKE_INIT, payload: timestamp, boot id, caps, versions,
 *                        early frames)
 *     <- e, ee, se      (HANDSHAKE_RESP, payload: boot id, caps, versions, early frames)
 *
 * docs/PROTOCOL.md gives every byte; these functions take the ephemeral
 * key as a parameter so tests can reproduce the documented vectors.
 * Functions returning int give 0 or a negative code: an enum srm_error
 * (-1..-99) or SRM_DROP_CODE(reason) (<= -100) for a packet to drop and
 * count.
 */
#ifndef SRMUDP_NOISE_H
#define SRMUDP_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "srmudp.h"
#include "wire.h"

#define NOISE_KEY_BYTES 32
#define NOISE_HASH_BYTES 32
#define NOISE_PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_SHA256"
#define NOISE_PROLOGUE "srmudp v1"
#define MAC_BYTES 16

/* A dropped packet, distinct from every enum srm_error value. */
#define SRM_DROP_CODE(reason) (-100 - (int)(reason))
#define SRM_IS_DROP(rc) ((rc) <= -100)
#define SRM_DROP_OF(rc) ((enum srm_drop_reason)(-100 - (rc)))

/* Randomness source; NULL everywhere means randombytes_buf.  Tests pass a
 * seeded one so a simulation replays exactly. */
typedef void srm_rng_fn(void *ctx, void *buf, size_t len);
void srm_random(srm_rng_fn *rng, void *ctx, void *buf, size_t len);

/* Transport frames riding in both handshake payloads, so that the first
 * stream's OPEN and its answer cost no round trip of their own; the rest
 * of the area is PADDING (zeros).  An OPEN is at most 11 bytes, a RESET
 * answering it at most 12. */
#define NOISE_EARLY_BYTES 16
/* HANDSHAKE_INIT, 176 bytes. */
#define INIT_OFF_SENDER 4
#define INIT_OFF_EPHEMERAL 8
#define INIT_OFF_STATIC 40      /* 32 + tag */
#define INIT_OFF_PAYLOAD 88     /* INIT_PAYLOAD_BYTES + tag */
#define INIT_PAYLOAD_BYTES (24 + NOISE_EARLY_BYTES)
#define INIT_OFF_MAC1 144
#define INIT_OFF_MAC2 160
#define INIT_BYTES 176
/* HANDSHAKE_RESP, 124 bytes. */
#define RESP_OFF_SENDER 4
#define RESP_OFF_RECEIVER 8
#define RESP_OFF_EPHEMERAL 12
#define RESP_OFF_PAYLOAD 44     /* RESP_PAYLOAD_BYTES + tag */
#define RESP_PAYLOAD_BYTES (16 + NOISE_EARLY_BYTES)
#define RESP_OFF_MAC1 92
#define RESP_OFF_MAC2 108
#define RESP_BYTES 124
/* PUNCH, 44 bytes: header | 8 random bytes | mac1 | mac2 (zeros).  Only
 * someone who knows the receiver's public key can make one (mac1), and the
 * receiver never answers it: it only opens the sender's NAT towards the
 * receiver (docs/PROTOCOL.md). */
#define PUNCH_OFF_NONCE 4
#define PUNCH_OFF_MAC1 12
#define PUNCH_BYTES 44

/* Capability bits carried in both handshake payloads.  Bits 16..31 are
 * "required": a peer that sets one we do not know is a mismatch
 * (SRM_ERR_VERSION), so a future feature can refuse old peers clearly. */
#define CAP_AES256GCM (1u << 0)  /* AES-256-GCM runs in hardware here */
#define CAP_KNOWN (CAP_AES256GCM)
#define CAP_REQUIRED_MASK 0xffff0000u

/* The local long-term key and what is derived from it.  Treat as opaque
 * outside noise.c/cookie.c/session.c; allocate with identity_new (locked
 * memory) or embed and identity_init. */
struct identity {
	uint8_t secret[NOISE_KEY_BYTES];
	uint8_t pub[NOISE_KEY_BYTES];
	uint8_t mac1_key[NOISE_KEY_BYTES];   /* HASH("mac1----" || pub): mac1 of messages to us */
	uint8_t cookie_key[NOISE_KEY_BYTES]; /* HASH("cookie--" || pub): our cookie replies */
	int locked;
};

/* Returns 0, or SRM_ERR_INVALID for a key whose public key is degenerate. */
int identity_init(struct identity *id, const uint8_t secret[NOISE_KEY_BYTES])
	__attribute__((warn_unused_result));
void identity_wipe(struct identity *id);
/* Heap identity in sodium_malloc'd (guarded, mlocked where allowed)
 * memory; NULL on NOMEM or a bad key.  identity_free wipes it. */
struct identity *identity_new(const uint8_t secret[NOISE_KEY_BYTES]);
void identity_free(struct identity *id);
void identity_public_key(const struct identity *id, uint8_t pub[NOISE_KEY_BYTES]);

/* Handshake payload (both messages; timestamp only in INIT). */
struct noise_payload {
	uint64_t timestamp_ms; /* wall clock, strictly increasing per sender */
	uint64_t boot_id;
	uint32_t caps;
	uint8_t min_version, max_version;
	uint8_t early[NOISE_EARLY_BYTES]; /* frames; all zero: none */
};

/* Initiator state between sending INIT and receiving RESP (secret). */
struct noise_handshake {
	uint8_t ck[NOISE_HASH_BYTES], h[NOISE_HASH_BYTES];
	uint8_t e_priv[NOISE_KEY_BYTES], e_pub[NOISE_KEY_BYTES];
	uint32_t local_index;
};

/* Responder state after the INIT's "s" token: who claims to initiate.
 * Secret (ck); wipe with noise_init_wipe. */
struct noise_init {
	uint32_t sender_index;
	uint8_t peer_pub[NOISE_KEY_BYTES];
	uint8_t e_pub[NOISE_KEY_BYTES];
	uint8_t ck[NOISE_HASH_BYTES], h[NOISE_HASH_BYTES];
	uint8_t enc_payload[INIT_PAYLOAD_BYTES + 16];
	uint8_t mac1[MAC_BYTES];
};

/* Transport keys from Split(): send/recv from this side's view. */
struct noise_keys {
	uint8_t send[NOISE_KEY_BYTES], recv[NOISE_KEY_BYTES];
};

/* DH(identity, peer) for the "ss" token, computed once per peer.
 * Returns 0 or SRM_ERR_INVALID (low-order peer key). */
int noise_precompute_ss(const struct identity *id, const uint8_t peer_pub[NOISE_KEY_BYTES],
			uint8_t ss[NOISE_KEY_BYTES]) __attribute__((warn_unused_result));

/* An INIT's tokens before its payload ("e, es, s, ss"): they depend only
 * on the keys, so they can be computed while the engine is idle and an
 * INIT then costs one AEAD (secret: wipe with noise_init_prep_wipe). */
struct noise_init_prep {
	struct noise_handshake hs; /* ck, h, e after "ss"; no index yet */
	uint8_t k[NOISE_KEY_BYTES]; /* the payload's key */
	uint8_t enc_static[NOISE_KEY_BYTES + 16];
};

/* "e, es, s, ss" from ephemeral e_priv.  Returns 0 or SRM_ERR_INVALID. */
int noise_prepare_init(const struct identity *id, const uint8_t peer_pub[NOISE_KEY_BYTES],
		       const uint8_t ss[NOISE_KEY_BYTES], const uint8_t e_priv[NOISE_KEY_BYTES],
		       struct noise_init_prep *prep) __attribute__((warn_unused_result));

/* Write an INIT up to (not including) mac1 from prep, which it wipes.
 * Leaves hs ready for noise_consume_resp. */
void noise_create_init(struct noise_init_prep *prep, uint32_t sender_index,
		       const struct noise_payload *pl, struct noise_handshake *hs,
		       uint8_t out[INIT_BYTES]);

/* Responder, first half: check header, length and mac1, then "e, es, s"
 * (one DH) to learn the initiator's static key, so the caller can find the
 * session by out->peer_pub.  Returns 0, or a drop code: MALFORMED,
 * VERSION, MAC, AUTH. */
int noise_consume_init(const struct identity *id, const uint8_t *pkt, size_t len,
		       struct noise_init *out) __attribute__((warn_unused_result));

/* Responder, second half: "ss" with the precomputed ss, then the payload.
 * Returns 0 or SRM_DROP_CODE(SRM_DROP_AUTH). */
int noise_finish_init(struct noise_init *in, const uint8_t ss[NOISE_KEY_BYTES],
		      struct noise_payload *pl) __attribute__((warn_unused_result));

/* Responder: write a RESP up to mac1 from ephemeral e_priv ("e, ee, se"),
 * derive the transport keys.  Wipes in.  Returns 0 or SRM_ERR_INVALID. */
int noise_create_resp(struct noise_init *in, const uint8_t e_priv[NOISE_KEY_BYTES],
		      uint32_t sender_index, const struct noise_payload *pl,
		      uint8_t out[RESP_BYTES], struct noise_keys *keys)
	__attribute__((warn_unused_result));

/* Initiator: check and consume a RESP (mac1 under our identity) against
 * hs, derive the transport keys.  Wipes hs on success.  Returns 0 or a
 * drop code: MALFORMED, VERSION, MAC, UNKNOWN_INDEX, AUTH. */
int noise_consume_resp(const struct identity *id, struct noise_handshake *hs,
		       const uint8_t *pkt, size_t len, struct noise_payload *pl,
		       struct noise_keys *keys) __attribute__((warn_unused_result));

void noise_init_wipe(struct noise_init *in);
void noise_handshake_wipe(struct noise_handshake *hs);
void noise_init_prep_wipe(struct noise_init_prep *prep);

/* Header check shared by every receive path: MALFORMED (short, wrong type)
 * or VERSION, else 0. */
int noise_check_header(const uint8_t *pkt, size_t len, enum wire_type type, size_t min_len);

#endif
