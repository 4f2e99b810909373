/*
 * aead.c — per-direction transport AEAD: ChaCha20-Poly1305-IETF or
 * AES-256-GCM, nonce = packet number.
 */
#include "aead.h"

#include <string.h>

#include "srmudp.h"
#include "wire.h"

int aead_aes_available(void)
{
	return crypto_aead_aes256gcm_is_available();
}

int aead_key_init(struct aead_key *k, enum aead_alg alg, const uint8_t key[AEAD_KEY_BYTES])
{
	memset(k, 0, sizeof(*k));
	if (alg == AEAD_AES256GCM) {
		if (!aead_aes_available())
			return SRM_ERR_INVALID;
		/* Expanding the AES key schedule once per keypair, not per packet. */
		crypto_aead_aes256gcm_beforenm(&k->aes, key);
	} else if (alg != AEAD_CHACHA20POLY1305) {
		return SRM_ERR_INVALID;
	}
	memcpy(k->key, key, AEAD_KEY_BYTES);
	k->alg = alg;
	return 0;
}

void aead_key_wipe(struct aead_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

void aead_nonce(uint8_t nonce[AEAD_NONCE_BYTES], uint64_t pn)
{
	memset(nonce, 0, 4);
	put_le64(nonce + 4, pn);
}

void aead_seal(const struct aead_key *k, uint64_t pn, const uint8_t *ad, size_t ad_len,
	       const uint8_t *plain, size_t len, uint8_t *out)
{
	uint8_t nonce[AEAD_NONCE_BYTES];
	aead_nonce(nonce, pn);
	if (k->alg == AEAD_AES256GCM)
		crypto_aead_aes256gcm_encrypt_detached_afternm(out, out + len, NULL, plain, len, ad,
							       ad_len, NULL, nonce, &k->aes);
	else
		crypto_aead_chacha20poly1305_ietf_encrypt_detached(out, out + len, NULL, plain, len,
								   ad, ad_len, NULL, nonce, k->key);
}

int aead_open(const struct aead_key *k, uint64_t pn, const uint8_t *ad, size_t ad_len,
	      const uint8_t *in, size_t len, uint8_t *out)
{
	uint8_t nonce[AEAD_NONCE_BYTES];
	int rc;

	if (len < AEAD_TAG_BYTES)
		return SRM_ERR_AUTH;
	aead_nonce(nonce, pn);
	size_t clen = len - AEAD_TAG_BYTES;
	if (k->alg == AEAD_AES256GCM)
		rc = crypto_aead_aes256gcm_decrypt_detached_afternm(out, NULL, in, clen, in + clen,
								    ad, ad_len, nonce, &k->aes);
	else
		rc = crypto_aead_chacha20poly1305_ietf_decrypt_detached(out, NULL, in, clen,
									in + clen, ad, ad_len,
									nonce, k->key);
	return rc == 0 ? 0 : SRM_ERR_AUTH;
}
