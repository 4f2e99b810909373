/*
 * cookie.h — mac1/mac2, cookie replies, and the handshake guard that
 * checks every incoming handshake message before any Diffie-Hellman.
 *
 * mac1 = BLAKE2b-128(key = SHA256("mac1----" || receiver_pub), msg[0..mac1))
 *   proves the sender knows whom it talks to; costs one hash to check.
 * mac2 = BLAKE2b-128(key = cookie, msg[0..mac2)), zeros without a cookie.
 * cookie = BLAKE2b-128(key = secret, source address || port), secret
 *   rotated every COOKIE_SECRET_MAX_AGE_MS: proves the sender receives at
 *   the address it claims.  Under load only messages with a valid mac2 are
 *   processed; the others get a COOKIE_REPLY (64 bytes, smaller than any
 *   handshake message, so it amplifies nothing).
 */
#ifndef SRMUDP_COOKIE_H
#define SRMUDP_COOKIE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "noise.h"

#define COOKIE_BYTES 16
#define COOKIE_NONCE_BYTES 24
#define COOKIE_SECRET_MAX_AGE_MS 120000
/* A stored cookie is used a little less long than the secret behind it
 * lives, for the time the reply took to arrive (WireGuard does the same). */
#define COOKIE_USE_MAX_AGE_MS (COOKIE_SECRET_MAX_AGE_MS - 5000)
/* COOKIE_REPLY, 64 bytes. */
#define COOKIE_OFF_RECEIVER 4
#define COOKIE_OFF_NONCE 8
#define COOKIE_OFF_COOKIE 32 /* COOKIE_BYTES + tag */
#define COOKIE_REPLY_BYTES 64
/* One INIT costs the responder 4 X25519 operations (~28k/s per core
 * here), so beyond this rate we make initiators prove their address. */
#define HANDSHAKE_LOAD_PER_SEC 1000

void cookie_derive_keys(const uint8_t pub[NOISE_KEY_BYTES], uint8_t mac1_key[NOISE_KEY_BYTES],
			uint8_t cookie_key[NOISE_KEY_BYTES]);
/* Offset of mac1 in an INIT, RESP or PUNCH (mac2 follows it), or 0 for any other
 * type or a wrong length. */
size_t cookie_mac1_offset(const uint8_t *pkt, size_t len);
/* Fill mac1 (and mac2 from cookie, zeros when cookie is NULL) of an INIT
 * or RESP of length len; mac1_out gets a copy of mac1 when not NULL. */
void cookie_add_macs(uint8_t *pkt, size_t len, const uint8_t mac1_key[NOISE_KEY_BYTES],
		     const uint8_t *cookie, uint8_t mac1_out[MAC_BYTES]);
/* Returns 0 or SRM_ERR_AUTH. */
int cookie_check_mac1(const uint8_t *pkt, size_t len, const uint8_t mac1_key[NOISE_KEY_BYTES])
	__attribute__((warn_unused_result));
int cookie_check_mac2(const uint8_t *pkt, size_t len, const uint8_t cookie[COOKIE_BYTES])
	__attribute__((warn_unused_result));
/* The cookie for a source address.  Returns 0 or SRM_ERR_INVALID for an
 * address family other than AF_INET/AF_INET6. */
int cookie_compute(uint8_t cookie[COOKIE_BYTES], const uint8_t secret[32],
		   const struct sockaddr *src, socklen_t len);
void cookie_create_reply(uint8_t out[COOKIE_REPLY_BYTES], uint32_t receiver_index,
			 const uint8_t nonce[COOKIE_NONCE_BYTES], const uint8_t cookie[COOKIE_BYTES],
			 const uint8_t cookie_key[NOISE_KEY_BYTES], const uint8_t mac1[MAC_BYTES]);
/* Decrypt a COOKIE_REPLY sent in answer to the message whose mac1 we sent.
 * cookie_key is the replying peer's: SHA256("cookie--" || peer_pub).
 * Returns 0 or a drop code: MALFORMED, VERSION, AUTH. */
int cookie_open_reply(const uint8_t *pkt, size_t len, const uint8_t cookie_key[NOISE_KEY_BYTES],
		      const uint8_t mac1[MAC_BYTES], uint8_t cookie[COOKIE_BYTES])
	__attribute__((warn_unused_result));

/* ---- The device-level guard ------------------------------------------ */

struct handshake_guard_config {
	uint32_t load_per_sec;    /* 0: HANDSHAKE_LOAD_PER_SEC */
	uint32_t rate_per_sec;    /* 0: RATELIMIT_PER_SEC */
	uint32_t rate_burst;      /* 0: RATELIMIT_BURST */
	srm_rng_fn *rng;          /* NULL: randombytes_buf */
	void *rng_ctx;
};

struct handshake_guard;

/* The guard keeps a pointer to id, which must outlive it.  NULL: NOMEM. */
struct handshake_guard *handshake_guard_new(const struct identity *id);
struct handshake_guard *handshake_guard_new_config(const struct identity *id,
						   const struct handshake_guard_config *cfg);
void handshake_guard_free(struct handshake_guard *g);

/* Check an incoming HANDSHAKE_INIT or HANDSHAKE_RESP from src before any
 * DH: header, length, mac1; under load a valid mac2 (else a COOKIE_REPLY
 * is written to reply, *reply_len set, never larger than the message, and
 * SRM_DROP_CODE(SRM_DROP_COOKIE) returned); then the per-source rate limit.
 * *reply_len is 0 unless a reply must be sent.  reply needs
 * COOKIE_REPLY_BYTES.  Returns 0 (go on: noise_consume_init or
 * session_receive_resp) or a drop code: MALFORMED, VERSION, MAC, COOKIE,
 * RATELIMIT. */
int handshake_guard_check(struct handshake_guard *g, const uint8_t *pkt, size_t len,
			  const struct sockaddr *src, socklen_t srclen, uint64_t now_ms,
			  uint8_t *reply, size_t *reply_len) __attribute__((warn_unused_result));
/* Is the guard demanding cookies right now (for stats and tests)? */
int handshake_guard_under_load(const struct handshake_guard *g, uint64_t now_ms);

#endif
