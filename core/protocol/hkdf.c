/*
 * hkdf.c — HKDF-SHA256 (RFC 5869) from libsodium's HMAC-SHA256.
 */
#include "hkdf.h"

#include <sodium.h>
#include <string.h>

#include "srmudp.h"

void hkdf_extract(uint8_t prk[HKDF_HASH_BYTES], const uint8_t *salt, size_t salt_len,
		  const uint8_t *ikm, size_t ikm_len)
{
	static const uint8_t zeros[HKDF_HASH_BYTES];
	crypto_auth_hmacsha256_state st;

	if (!salt) {
		salt = zeros;
		salt_len = sizeof(zeros);
	}
	crypto_auth_hmacsha256_init(&st, salt, salt_len);
	crypto_auth_hmacsha256_update(&st, ikm, ikm_len);
	crypto_auth_hmacsha256_final(&st, prk);
	sodium_memzero(&st, sizeof(st));
}

int hkdf_expand(uint8_t *out, size_t out_len, const uint8_t prk[HKDF_HASH_BYTES],
		const uint8_t *info, size_t info_len)
{
	crypto_auth_hmacsha256_state st;
	uint8_t t[HKDF_HASH_BYTES];
	size_t done = 0;

	if (out_len > HKDF_MAX_OUTPUT)
		return SRM_ERR_INVALID;
	for (uint8_t i = 1; done < out_len; i++) {
		crypto_auth_hmacsha256_init(&st, prk, HKDF_HASH_BYTES);
		if (i > 1)
			crypto_auth_hmacsha256_update(&st, t, sizeof(t));
		crypto_auth_hmacsha256_update(&st, info, info_len);
		crypto_auth_hmacsha256_update(&st, &i, 1);
		crypto_auth_hmacsha256_final(&st, t);
		size_t n = out_len - done < sizeof(t) ? out_len - done : sizeof(t);
		memcpy(out + done, t, n);
		done += n;
	}
	sodium_memzero(&st, sizeof(st));
	sodium_memzero(t, sizeof(t));
	return 0;
}

void hkdf_noise(uint8_t out1[HKDF_HASH_BYTES], uint8_t out2[HKDF_HASH_BYTES],
		uint8_t out3[HKDF_HASH_BYTES], const uint8_t ck[HKDF_HASH_BYTES],
		const uint8_t *ikm, size_t ikm_len)
{
	uint8_t prk[HKDF_HASH_BYTES];
	uint8_t okm[3 * HKDF_HASH_BYTES];
	size_t n = out3 ? 3 : out2 ? 2 : 1;

	hkdf_extract(prk, ck, HKDF_HASH_BYTES, ikm, ikm_len);
	/* n * 32 <= HKDF_MAX_OUTPUT, so this cannot fail. */
	(void)hkdf_expand(okm, n * HKDF_HASH_BYTES, prk, NULL, 0);
	memcpy(out1, okm, HKDF_HASH_BYTES);
	if (out2)
		memcpy(out2, okm + HKDF_HASH_BYTES, HKDF_HASH_BYTES);
	if (out3)
		memcpy(out3, okm + 2 * HKDF_HASH_BYTES, HKDF_HASH_BYTES);
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(okm, sizeof(okm));
}
