/*
 * noise.c — Noise_IK_25519_ChaChaPoly_SHA256 handshake messages and the
 * local identity.
 *
 * Symmetric state as in the Noise specification (revision 34): h is the
 * transcript hash, ck the chaining key; MixHash(x): h = SHA256(h || x);
 * MixKey(x): ck, k = HKDF(ck, x); EncryptAndHash with nonce 0 (every key
 * here encrypts exactly one message before the next MixKey).
 */
#include "noise.h"

#include <sodium.h>
#include <string.h>

#include "cookie.h"
#include "hkdf.h"

#define AEAD_TAG 16

void srm_random(srm_rng_fn *rng, void *ctx, void *buf, size_t len)
{
	if (rng)
		rng(ctx, buf, len);
	else
		randombytes_buf(buf, len);
}

/* ---- Identity ----------------------------------------------------------- */

int identity_init(struct identity *id, const uint8_t secret[NOISE_KEY_BYTES])
{
	memset(id, 0, sizeof(*id));
	/* Best effort: keep the long-term key out of swap. */
	id->locked = sodium_mlock(id, sizeof(*id)) == 0;
	memcpy(id->secret, secret, NOISE_KEY_BYTES);
	if (crypto_scalarmult_base(id->pub, id->secret) != 0 ||
	    sodium_is_zero(id->pub, sizeof(id->pub))) {
		identity_wipe(id);
		return SRM_ERR_INVALID;
	}
	cookie_derive_keys(id->pub, id->mac1_key, id->cookie_key);
	return 0;
}

void identity_wipe(struct identity *id)
{
	if (id->locked)
		sodium_munlock(id, sizeof(*id)); /* zeroes, then unlocks */
	else
		sodium_memzero(id, sizeof(*id));
}

struct identity *identity_new(const uint8_t secret[NOISE_KEY_BYTES])
{
	/* sodium_malloc: guard pages around, mlocked where the limit allows. */
	struct identity *id = sodium_malloc(sizeof(*id));
	if (!id)
		return NULL;
	if (identity_init(id, secret) != 0) {
		sodium_free(id);
		return NULL;
	}
	return id;
}

void identity_free(struct identity *id)
{
	if (!id)
		return;
	identity_wipe(id);
	sodium_free(id);
}

void identity_public_key(const struct identity *id, uint8_t pub[NOISE_KEY_BYTES])
{
	memcpy(pub, id->pub, NOISE_KEY_BYTES);
}

/* ---- Symmetric state ---------------------------------------------------- */

static void mix_hash(uint8_t h[NOISE_HASH_BYTES], const uint8_t *data, size_t len)
{
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, h, NOISE_HASH_BYTES);
	crypto_hash_sha256_update(&st, data, len);
	crypto_hash_sha256_final(&st, h);
}

/* ck = h = protocol name (exactly 32 bytes, so not hashed); MixHash the
 * prologue and the responder's static key (the IK pre-message). */
static void initial_state(uint8_t ck[NOISE_HASH_BYTES], uint8_t h[NOISE_HASH_BYTES],
			  const uint8_t responder_pub[NOISE_KEY_BYTES])
{
	_Static_assert(sizeof(NOISE_PROTOCOL_NAME) - 1 == NOISE_HASH_BYTES, "name is HASHLEN");
	memcpy(h, NOISE_PROTOCOL_NAME, NOISE_HASH_BYTES);
	memcpy(ck, h, NOISE_HASH_BYTES);
	mix_hash(h, (const uint8_t *)NOISE_PROLOGUE, sizeof(NOISE_PROLOGUE) - 1);
	mix_hash(h, responder_pub, NOISE_KEY_BYTES);
}

/* MixKey(DH(priv, pub)): ck, k = HKDF(ck, dh).  k may be NULL.  Returns 0
 * or -1 for an all-zero shared secret (low-order point). */
static int mix_dh(uint8_t ck[NOISE_HASH_BYTES], uint8_t *k, const uint8_t priv[NOISE_KEY_BYTES],
		  const uint8_t pub[NOISE_KEY_BYTES])
{
	uint8_t dh[NOISE_KEY_BYTES];
	if (crypto_scalarmult(dh, priv, pub) != 0) {
		sodium_memzero(dh, sizeof(dh));
		return -1;
	}
	uint8_t tmp[NOISE_HASH_BYTES];
	hkdf_noise(ck, k ? k : tmp, NULL, ck, dh, sizeof(dh));
	sodium_memzero(dh, sizeof(dh));
	sodium_memzero(tmp, sizeof(tmp));
	return 0;
}

static void mix_key(uint8_t ck[NOISE_HASH_BYTES], uint8_t k[NOISE_KEY_BYTES],
		    const uint8_t ikm[NOISE_KEY_BYTES])
{
	hkdf_noise(ck, k, NULL, ck, ikm, NOISE_KEY_BYTES);
}

static const uint8_t zero_nonce[crypto_aead_chacha20poly1305_IETF_NPUBBYTES];

static void encrypt_and_hash(uint8_t *out, const uint8_t *plain, size_t len,
			     const uint8_t k[NOISE_KEY_BYTES], uint8_t h[NOISE_HASH_BYTES])
{
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain, len, h, NOISE_HASH_BYTES,
						  NULL, zero_nonce, k);
	mix_hash(h, out, len + AEAD_TAG);
}

static int decrypt_and_hash(uint8_t *out, const uint8_t *in, size_t len,
			    const uint8_t k[NOISE_KEY_BYTES], uint8_t h[NOISE_HASH_BYTES])
{
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len + AEAD_TAG, h,
						      NOISE_HASH_BYTES, zero_nonce, k) != 0)
		return -1;
	mix_hash(h, in, len + AEAD_TAG);
	return 0;
}

/* ---- Payloads ----------------------------------------------------------- */

static void put_payload(uint8_t *p, const struct noise_payload *pl, int with_ts)
{
	if (with_ts) {
		put_le64(p, pl->timestamp_ms);
		p += 8;
	}
	put_le64(p, pl->boot_id);
	put_le32(p + 8, pl->caps);
	p[12] = pl->min_version;
	p[13] = pl->max_version;
	p[14] = p[15] = 0;
	memcpy(p + 16, pl->early, NOISE_EARLY_BYTES);
}

static void get_payload(const uint8_t *p, struct noise_payload *pl, int with_ts)
{
	memset(pl, 0, sizeof(*pl));
	if (with_ts) {
		pl->timestamp_ms = get_le64(p);
		p += 8;
	}
	pl->boot_id = get_le64(p);
	pl->caps = get_le32(p + 8);
	pl->min_version = p[12];
	pl->max_version = p[13];
	memcpy(pl->early, p + 16, NOISE_EARLY_BYTES);
}

/* ---- Messages ----------------------------------------------------------- */

int noise_check_header(const uint8_t *pkt, size_t len, enum wire_type type, size_t min_len)
{
	if (len < WIRE_HEADER_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (pkt[1] != WIRE_VERSION)
		return SRM_DROP_CODE(SRM_DROP_VERSION);
	if (pkt[0] != type || pkt[2] || pkt[3] || len < min_len)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	return 0;
}

int noise_precompute_ss(const struct identity *id, const uint8_t peer_pub[NOISE_KEY_BYTES],
			uint8_t ss[NOISE_KEY_BYTES])
{
	if (crypto_scalarmult(ss, id->secret, peer_pub) != 0)
		return SRM_ERR_INVALID;
	return 0;
}

int noise_prepare_init(const struct identity *id, const uint8_t peer_pub[NOISE_KEY_BYTES],
		       const uint8_t ss[NOISE_KEY_BYTES], const uint8_t e_priv[NOISE_KEY_BYTES],
		       struct noise_init_prep *prep)
{
	struct noise_handshake *hs = &prep->hs;

	memset(prep, 0, sizeof(*prep));
	initial_state(hs->ck, hs->h, peer_pub);
	memcpy(hs->e_priv, e_priv, NOISE_KEY_BYTES);
	/* -> e */
	if (crypto_scalarmult_base(hs->e_pub, hs->e_priv) != 0)
		goto fail;
	mix_hash(hs->h, hs->e_pub, NOISE_KEY_BYTES);
	/* es */
	if (mix_dh(hs->ck, prep->k, hs->e_priv, peer_pub) != 0)
		goto fail;
	/* s */
	encrypt_and_hash(prep->enc_static, id->pub, NOISE_KEY_BYTES, prep->k, hs->h);
	/* ss */
	mix_key(hs->ck, prep->k, ss);
	return 0;
fail:
	noise_init_prep_wipe(prep);
	return SRM_ERR_INVALID;
}

void noise_create_init(struct noise_init_prep *prep, uint32_t sender_index,
		       const struct noise_payload *pl, struct noise_handshake *hs,
		       uint8_t out[INIT_BYTES])
{
	uint8_t payload[INIT_PAYLOAD_BYTES];

	memset(out, 0, INIT_BYTES);
	wire_put_header(out, WIRE_HANDSHAKE_INIT);
	put_le32(out + INIT_OFF_SENDER, sender_index);
	*hs = prep->hs;
	hs->local_index = sender_index;
	memcpy(out + INIT_OFF_EPHEMERAL, hs->e_pub, NOISE_KEY_BYTES);
	memcpy(out + INIT_OFF_STATIC, prep->enc_static, sizeof(prep->enc_static));
	/* payload */
	put_payload(payload, pl, 1);
	encrypt_and_hash(out + INIT_OFF_PAYLOAD, payload, INIT_PAYLOAD_BYTES, prep->k, hs->h);
	sodium_memzero(payload, sizeof(payload));
	noise_init_prep_wipe(prep);
}

int noise_consume_init(const struct identity *id, const uint8_t *pkt, size_t len,
		       struct noise_init *out)
{
	uint8_t k[NOISE_KEY_BYTES];
	int rc = noise_check_header(pkt, len, WIRE_HANDSHAKE_INIT, INIT_BYTES);

	memset(out, 0, sizeof(*out));
	if (rc)
		return rc;
	if (len != INIT_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (cookie_check_mac1(pkt, len, id->mac1_key) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	rc = SRM_DROP_CODE(SRM_DROP_AUTH);
	out->sender_index = get_le32(pkt + INIT_OFF_SENDER);
	initial_state(out->ck, out->h, id->pub);
	/* e */
	memcpy(out->e_pub, pkt + INIT_OFF_EPHEMERAL, NOISE_KEY_BYTES);
	mix_hash(out->h, out->e_pub, NOISE_KEY_BYTES);
	/* es */
	if (mix_dh(out->ck, k, id->secret, out->e_pub) != 0)
		goto out;
	/* s */
	if (decrypt_and_hash(out->peer_pub, pkt + INIT_OFF_STATIC, NOISE_KEY_BYTES, k, out->h) != 0)
		goto out;
	memcpy(out->enc_payload, pkt + INIT_OFF_PAYLOAD, sizeof(out->enc_payload));
	memcpy(out->mac1, pkt + INIT_OFF_MAC1, MAC_BYTES);
	rc = 0;
out:
	sodium_memzero(k, sizeof(k));
	if (rc)
		noise_init_wipe(out);
	return rc;
}

int noise_finish_init(struct noise_init *in, const uint8_t ss[NOISE_KEY_BYTES],
		      struct noise_payload *pl)
{
	uint8_t k[NOISE_KEY_BYTES], payload[INIT_PAYLOAD_BYTES];
	int rc = SRM_DROP_CODE(SRM_DROP_AUTH);

	mix_key(in->ck, k, ss);
	if (decrypt_and_hash(payload, in->enc_payload, INIT_PAYLOAD_BYTES, k, in->h) == 0) {
		get_payload(payload, pl, 1);
		rc = 0;
	}
	sodium_memzero(k, sizeof(k));
	sodium_memzero(payload, sizeof(payload));
	return rc;
}

/* Split(): the first key is the initiator's sending key. */
static void split(const uint8_t ck[NOISE_HASH_BYTES], struct noise_keys *keys, int initiator)
{
	uint8_t t1[NOISE_KEY_BYTES], t2[NOISE_KEY_BYTES];
	hkdf_noise(t1, t2, NULL, ck, NULL, 0);
	memcpy(keys->send, initiator ? t1 : t2, NOISE_KEY_BYTES);
	memcpy(keys->recv, initiator ? t2 : t1, NOISE_KEY_BYTES);
	sodium_memzero(t1, sizeof(t1));
	sodium_memzero(t2, sizeof(t2));
}

int noise_create_resp(struct noise_init *in, const uint8_t e_priv[NOISE_KEY_BYTES],
		      uint32_t sender_index, const struct noise_payload *pl,
		      uint8_t out[RESP_BYTES], struct noise_keys *keys)
{
	uint8_t k[NOISE_KEY_BYTES], e_pub[NOISE_KEY_BYTES], payload[RESP_PAYLOAD_BYTES];
	int rc = SRM_ERR_INVALID;

	memset(out, 0, RESP_BYTES);
	wire_put_header(out, WIRE_HANDSHAKE_RESP);
	put_le32(out + RESP_OFF_SENDER, sender_index);
	put_le32(out + RESP_OFF_RECEIVER, in->sender_index);
	/* e */
	if (crypto_scalarmult_base(e_pub, e_priv) != 0)
		goto out;
	memcpy(out + RESP_OFF_EPHEMERAL, e_pub, NOISE_KEY_BYTES);
	mix_hash(in->h, e_pub, NOISE_KEY_BYTES);
	/* ee, se */
	if (mix_dh(in->ck, NULL, e_priv, in->e_pub) != 0 ||
	    mix_dh(in->ck, k, e_priv, in->peer_pub) != 0)
		goto out;
	put_payload(payload, pl, 0);
	encrypt_and_hash(out + RESP_OFF_PAYLOAD, payload, RESP_PAYLOAD_BYTES, k, in->h);
	split(in->ck, keys, 0);
	rc = 0;
out:
	sodium_memzero(k, sizeof(k));
	sodium_memzero(payload, sizeof(payload));
	noise_init_wipe(in);
	return rc;
}

int noise_consume_resp(const struct identity *id, struct noise_handshake *hs,
		       const uint8_t *pkt, size_t len, struct noise_payload *pl,
		       struct noise_keys *keys)
{
	uint8_t ck[NOISE_HASH_BYTES], h[NOISE_HASH_BYTES], k[NOISE_KEY_BYTES];
	uint8_t payload[RESP_PAYLOAD_BYTES];
	const uint8_t *e_r = pkt + RESP_OFF_EPHEMERAL;
	int rc = noise_check_header(pkt, len, WIRE_HANDSHAKE_RESP, RESP_BYTES);

	if (rc)
		return rc;
	if (len != RESP_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (cookie_check_mac1(pkt, len, id->mac1_key) != 0)
		return SRM_DROP_CODE(SRM_DROP_MAC);
	if (get_le32(pkt + RESP_OFF_RECEIVER) != hs->local_index)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX);
	/* Work on copies: a forged RESP must not spoil the real one. */
	rc = SRM_DROP_CODE(SRM_DROP_AUTH);
	memcpy(ck, hs->ck, sizeof(ck));
	memcpy(h, hs->h, sizeof(h));
	mix_hash(h, e_r, NOISE_KEY_BYTES);
	if (mix_dh(ck, NULL, hs->e_priv, e_r) != 0 || mix_dh(ck, k, id->secret, e_r) != 0)
		goto out;
	if (decrypt_and_hash(payload, pkt + RESP_OFF_PAYLOAD, RESP_PAYLOAD_BYTES, k, h) != 0)
		goto out;
	get_payload(payload, pl, 0);
	split(ck, keys, 1);
	noise_handshake_wipe(hs);
	rc = 0;
out:
	sodium_memzero(ck, sizeof(ck));
	sodium_memzero(h, sizeof(h));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(payload, sizeof(payload));
	return rc;
}

void noise_init_wipe(struct noise_init *in)
{
	sodium_memzero(in, sizeof(*in));
}

void noise_handshake_wipe(struct noise_handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}

void noise_init_prep_wipe(struct noise_init_prep *prep)
{
	sodium_memzero(prep, sizeof(*prep));
}
