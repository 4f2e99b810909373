/*
 * hkdf.h — HKDF (RFC 5869) over HMAC-SHA256, and the Noise HKDF built on it.
 *
 * libsodium 1.0.18 has no HKDF, so it is built here from
 * crypto_auth_hmacsha256.  Every output buffer may alias none of the inputs.
 */
#ifndef SRMUDP_HKDF_H
#define SRMUDP_HKDF_H

#include <stddef.h>
#include <stdint.h>

#define HKDF_HASH_BYTES 32
#define HKDF_MAX_OUTPUT (255 * HKDF_HASH_BYTES)

/* RFC 5869 section 2.2: prk = HMAC(salt, ikm).  salt may be NULL (zeros). */
void hkdf_extract(uint8_t prk[HKDF_HASH_BYTES], const uint8_t *salt, size_t salt_len,
		  const uint8_t *ikm, size_t ikm_len);

/* RFC 5869 section 2.3.  Returns 0, or SRM_ERR_INVALID if out_len exceeds
 * HKDF_MAX_OUTPUT. */
int hkdf_expand(uint8_t *out, size_t out_len, const uint8_t prk[HKDF_HASH_BYTES],
		const uint8_t *info, size_t info_len);

/* Noise HKDF(ck, ikm, n) for n = 1..3 (Noise spec section 4.3), which is
 * RFC 5869 with salt = ck and empty info.  out2/out3 may be NULL. */
void hkdf_noise(uint8_t out1[HKDF_HASH_BYTES], uint8_t out2[HKDF_HASH_BYTES],
		uint8_t out3[HKDF_HASH_BYTES], const uint8_t ck[HKDF_HASH_BYTES],
		const uint8_t *ikm, size_t ikm_len);

#endif
