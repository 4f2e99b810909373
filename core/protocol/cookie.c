/*
 * cookie.c — mac1/mac2, cookie replies and the handshake guard (WireGuard
 * whitepaper section 5.4.4 and 5.4.7, with BLAKE2b-128 for the MACs since
 * libsodium has no BLAKE2s).
 */
#include "cookie.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define LOAD_WINDOW_MS 1000

void cookie_derive_keys(const uint8_t pub[NOISE_KEY_BYTES], uint8_t mac1_key[NOISE_KEY_BYTES],
			uint8_t cookie_key[NOISE_KEY_BYTES])
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)"mac1----", 8);
	crypto_hash_sha256_update(&st, pub, NOISE_KEY_BYTES);
	crypto_hash_sha256_final(&st, mac1_key);
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)"cookie--", 8);
	crypto_hash_sha256_update(&st, pub, NOISE_KEY_BYTES);
	crypto_hash_sha256_final(&st, cookie_key);
}

size_t cookie_mac1_offset(const uint8_t *pkt, size_t len)
{
	if (len == INIT_BYTES && pkt[0] == WIRE_HANDSHAKE_INIT)
		return INIT_OFF_MAC1;
	if (len == RESP_BYTES && pkt[0] == WIRE_HANDSHAKE_RESP)
		return RESP_OFF_MAC1;
	if (len == PUNCH_BYTES && pkt[0] == WIRE_PUNCH)
		return PUNCH_OFF_MAC1;
	return 0;
}

static void mac(uint8_t out[MAC_BYTES], const uint8_t *key, size_t key_len, const uint8_t *msg,
		size_t len)
{
	crypto_generichash(out, MAC_BYTES, msg, len, key, key_len);
}

void cookie_add_macs(uint8_t *pkt, size_t len, const uint8_t mac1_key[NOISE_KEY_BYTES],
		     const uint8_t *cookie, uint8_t mac1_out[MAC_BYTES])
{
	size_t off = cookie_mac1_offset(pkt, len);
	if (!off)
		return;
	mac(pkt + off, mac1_key, NOISE_KEY_BYTES, pkt, off);
	if (cookie)
		mac(pkt + off + MAC_BYTES, cookie, COOKIE_BYTES, pkt, off + MAC_BYTES);
	else
		memset(pkt + off + MAC_BYTES, 0, MAC_BYTES);
	if (mac1_out)
		memcpy(mac1_out, pkt + off, MAC_BYTES);
}

int cookie_check_mac1(const uint8_t *pkt, size_t len, const uint8_t mac1_key[NOISE_KEY_BYTES])
{
	uint8_t want[MAC_BYTES];
	size_t off = cookie_mac1_offset(pkt, len);
	if (!off)
		return SRM_ERR_AUTH;
	mac(want, mac1_key, NOISE_KEY_BYTES, pkt, off);
	return crypto_verify_16(want, pkt + off) == 0 ? 0 : SRM_ERR_AUTH;
}

int cookie_check_mac2(const uint8_t *pkt, size_t len, const uint8_t cookie[COOKIE_BYTES])
{
	uint8_t want[MAC_BYTES];
	size_t off = cookie_mac1_offset(pkt, len);
	if (!off)
		return SRM_ERR_AUTH;
	mac(want, cookie, COOKIE_BYTES, pkt, off + MAC_BYTES);
	return crypto_verify_16(want, pkt + off + MAC_BYTES) == 0 ? 0 : SRM_ERR_AUTH;
}

int cookie_compute(uint8_t cookie[COOKIE_BYTES], const uint8_t secret[32],
		   const struct sockaddr *src, socklen_t len)
{
	uint8_t in[18];
	size_t n;

	if (src->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)src;
		memcpy(in, &a->sin_addr, 4);
		memcpy(in + 4, &a->sin_port, 2);
		n = 6;
	} else if (src->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)src;
		memcpy(in, &a->sin6_addr, 16);
		memcpy(in + 16, &a->sin6_port, 2);
		n = 18;
	} else {
		return SRM_ERR_INVALID;
	}
	mac(cookie, secret, 32, in, n);
	return 0;
}

void cookie_create_reply(uint8_t out[COOKIE_REPLY_BYTES], uint32_t receiver_index,
			 const uint8_t nonce[COOKIE_NONCE_BYTES], const uint8_t cookie[COOKIE_BYTES],
			 const uint8_t cookie_key[NOISE_KEY_BYTES], const uint8_t mac1[MAC_BYTES])
{
	wire_put_header(out, WIRE_COOKIE_REPLY);
	put_le32(out + COOKIE_OFF_RECEIVER, receiver_index);
	memcpy(out + COOKIE_OFF_NONCE, nonce, COOKIE_NONCE_BYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + COOKIE_OFF_COOKIE, NULL, cookie,
						   COOKIE_BYTES, mac1, MAC_BYTES, NULL, nonce,
						   cookie_key);
}

int cookie_open_reply(const uint8_t *pkt, size_t len, const uint8_t cookie_key[NOISE_KEY_BYTES],
		      const uint8_t mac1[MAC_BYTES], uint8_t cookie[COOKIE_BYTES])
{
	int rc = noise_check_header(pkt, len, WIRE_COOKIE_REPLY, COOKIE_REPLY_BYTES);
	if (rc)
		return rc;
	if (len != COOKIE_REPLY_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, pkt + COOKIE_OFF_COOKIE,
						       COOKIE_BYTES + 16, mac1, MAC_BYTES,
						       pkt + COOKIE_OFF_NONCE, cookie_key) != 0)
		return SRM_DROP_CODE(SRM_DROP_AUTH);
	return 0;
}

/* ---- Guard -------------------------------------------------------------- */

struct handshake_guard {
	const struct identity *id;
	struct ratelimit *rl;
	uint8_t secret[32];
	uint64_t secret_birth;
	int have_secret;
	uint32_t load_per_sec;
	uint64_t window_start; /* load is counted per LOAD_WINDOW_MS window */
	uint32_t count, prev_count;
	srm_rng_fn *rng;
	void *rng_ctx;
};

struct handshake_guard *handshake_guard_new_config(const struct identity *id,
						   const struct handshake_guard_config *cfg)
{
	struct handshake_guard *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->id = id;
	g->load_per_sec = cfg && cfg->load_per_sec ? cfg->load_per_sec : HANDSHAKE_LOAD_PER_SEC;
	g->rng = cfg ? cfg->rng : NULL;
	g->rng_ctx = cfg ? cfg->rng_ctx : NULL;
	uint8_t key[16];
	srm_random(g->rng, g->rng_ctx, key, sizeof(key));
	g->rl = ratelimit_new_keyed(key, cfg && cfg->rate_per_sec ? cfg->rate_per_sec : RATELIMIT_PER_SEC,
				    cfg && cfg->rate_burst ? cfg->rate_burst : RATELIMIT_BURST);
	sodium_memzero(key, sizeof(key));
	if (!g->rl) {
		free(g);
		return NULL;
	}
	return g;
}

struct handshake_guard *handshake_guard_new(const struct identity *id)
{
	return handshake_guard_new_config(id, NULL);
}

void handshake_guard_free(struct handshake_guard *g)
{
	if (!g)
		return;
	ratelimit_free(g->rl);
	sodium_memzero(g, sizeof(*g));
	free(g);
}

int handshake_guard_under_load(const struct handshake_guard *g, uint64_t now_ms)
{
	uint64_t age = now_ms - g->window_start;
	if (now_ms < g->window_start || age >= 2 * LOAD_WINDOW_MS)
		return 0;
	if (age >= LOAD_WINDOW_MS)
		return g->count > g->load_per_sec;
	return g->count > g->load_per_sec || g->prev_count > g->load_per_sec;
}

static void count_load(struct handshake_guard *g, uint64_t now_ms)
{
	if (now_ms < g->window_start || now_ms - g->window_start >= LOAD_WINDOW_MS) {
		int adjacent = now_ms >= g->window_start &&
			       now_ms - g->window_start < 2 * LOAD_WINDOW_MS;
		g->prev_count = adjacent ? g->count : 0;
		g->count = 0;
		g->window_start = now_ms;
	}
	if (g->count < UINT32_MAX)
		g->count++;
}

static void fresh_secret(struct handshake_guard *g, uint64_t now_ms)
{
	if (g->have_secret && now_ms >= g->secret_birth &&
	    now_ms - g->secret_birth < COOKIE_SECRET_MAX_AGE_MS)
		return;
	srm_random(g->rng, g->rng_ctx, g->secret, sizeof(g->secret));
	g->secret_birth = now_ms;
	g->have_secret = 1;
}

int handshake_guard_check(struct handshake_guard *g, const uint8_t *pkt, size_t len,
			  const struct sockaddr *src, socklen_t srclen, uint64_t now_ms,
			  uint8_t *reply, size_t *reply_len)
{
	*reply_len = 0;
	if (len < WIRE_HEADER_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (pkt[1] != WIRE_VERSION)
		return SRM_DROP_CODE(SRM_DROP_VERSION);
	if (pkt[2] || pkt[3] || !cookie_mac1_offset(pkt, len))
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (cookie_check_mac1(pkt, len, g->id->mac1_key) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	count_load(g, now_ms);
	if (handshake_guard_under_load(g, now_ms)) {
		uint8_t cookie[COOKIE_BYTES];
		fresh_secret(g, now_ms);
		if (cookie_compute(cookie, g->secret, src, srclen) != 0)
			return SRM_DROP_CODE(SRM_DROP_MALFORMED);
		int ok = cookie_check_mac2(pkt, len, cookie) == 0;
		if (!ok) {
			uint8_t nonce[COOKIE_NONCE_BYTES];
			size_t off = cookie_mac1_offset(pkt, len);
			srm_random(g->rng, g->rng_ctx, nonce, sizeof(nonce));
			_Static_assert(COOKIE_REPLY_BYTES < RESP_BYTES, "no amplification");
			cookie_create_reply(reply, get_le32(pkt + 4), nonce, cookie,
					    g->id->cookie_key, pkt + off);
			*reply_len = COOKIE_REPLY_BYTES;
		}
		sodium_memzero(cookie, sizeof(cookie));
		if (!ok)
			return SRM_DROP_CODE(SRM_DROP_COOKIE);
	}
	if (!ratelimit_allow(g->rl, src, srclen, now_ms))
		return SRM_DROP_CODE(SRM_DROP_RATELIMIT);
	return 0;
}
