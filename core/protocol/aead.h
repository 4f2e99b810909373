/*
 * aead.h — one direction's transport key and its AEAD.
 *
 * ChaCha20-Poly1305-IETF, or AES-256-GCM when both peers have AES hardware
 * (negotiated in the handshake).  The 12-byte nonce is 4 zero bytes then
 * the 64-bit packet number, little-endian (the Noise nonce layout), so a
 * key must never seal two packets with the same number.
 */
#ifndef SRMUDP_AEAD_H
#define SRMUDP_AEAD_H

#include <stddef.h>
#include <stdint.h>
#include <sodium.h>

#define AEAD_KEY_BYTES 32
#define AEAD_TAG_BYTES 16
#define AEAD_NONCE_BYTES 12

enum aead_alg { AEAD_CHACHA20POLY1305 = 0, AEAD_AES256GCM = 1 };

struct aead_key {
	/* First, so the 16-byte alignment libsodium asks for holds in any
	 * allocation aligned for the struct. */
	crypto_aead_aes256gcm_state aes;
	uint8_t key[AEAD_KEY_BYTES];
	enum aead_alg alg;
};

/* Returns 0, or SRM_ERR_INVALID when AES-256-GCM is asked for on a CPU
 * without it. */
int aead_key_init(struct aead_key *k, enum aead_alg alg, const uint8_t key[AEAD_KEY_BYTES])
	__attribute__((warn_unused_result));
void aead_key_wipe(struct aead_key *k);

void aead_nonce(uint8_t nonce[AEAD_NONCE_BYTES], uint64_t pn);
/* out gets len bytes of ciphertext then the tag; out may equal plain. */
void aead_seal(const struct aead_key *k, uint64_t pn, const uint8_t *ad, size_t ad_len,
	       const uint8_t *plain, size_t len, uint8_t *out);
/* in is len bytes of ciphertext + tag (len >= AEAD_TAG_BYTES); out gets
 * len - AEAD_TAG_BYTES bytes and may equal in.  Returns 0 or SRM_ERR_AUTH. */
int aead_open(const struct aead_key *k, uint64_t pn, const uint8_t *ad, size_t ad_len,
	      const uint8_t *in, size_t len, uint8_t *out) __attribute__((warn_unused_result));

/* Does this CPU run AES-256-GCM in hardware (libsodium's own test)? */
int aead_aes_available(void);

#endif
