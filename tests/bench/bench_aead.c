/*
 * bench_aead — the AEAD ceiling: how fast one core seals and opens
 * 1400-byte packets with the cipher the engine would pick here (AES-256-GCM
 * when the CPU has it, else ChaCha20-Poly1305), through core/protocol/aead.c, the
 * engine's own code path.  A packet that is sealed by one side and opened
 * by the other costs one seal plus one open; the ceiling is the payload rate
 * of one core doing both, the most a single-threaded sender+receiver pair
 * could move if the AEAD were the only work.
 *
 *   bench_aead [SECONDS_PER_PHASE]     prints key value lines
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aead.h"

#define PKT 1400        /* a typical full UDP payload on a 1500-byte path */
#define AD 16           /* the DATA header is authenticated, not encrypted */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate(const struct aead_key *k, int mode, double secs)
{
	static uint8_t plain[PKT], box[PKT + AEAD_TAG_BYTES], out[PKT], ad[AD];
	uint64_t pn = 0, n = 0;
	double t0 = now_s(), t;
	memset(plain, 'x', sizeof(plain));
	aead_seal(k, 0, ad, AD, plain, PKT, box);
	do {
		for (int i = 0; i < 256; i++, n++) {
			if (mode != 1)
				aead_seal(k, ++pn, ad, AD, plain, PKT, box);
			if (mode != 0 && aead_open(k, mode == 1 ? 0 : pn, ad, AD, box,
						   PKT + AEAD_TAG_BYTES, out) != 0) {
				fprintf(stderr, "bench_aead: open failed\n");
				exit(1);
			}
		}
		t = now_s() - t0;
	} while (t < secs);
	return (double)n * PKT / t / 1e6;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	if (sodium_init() < 0)
		return 1;
	uint8_t key[AEAD_KEY_BYTES];
	randombytes_buf(key, sizeof(key));
	struct aead_key k;
	enum aead_alg alg = aead_aes_available() ? AEAD_AES256GCM : AEAD_CHACHA20POLY1305;
	if (aead_key_init(&k, alg, key) != 0)
		return 1;
	printf("aead_cipher %s\n", alg == AEAD_AES256GCM ? "aes-256-gcm" : "chacha20-poly1305");
	printf("aead_seal_MBps %.1f\n", rate(&k, 0, secs));
	printf("aead_open_MBps %.1f\n", rate(&k, 1, secs));
	printf("aead_ceiling_MBps %.1f\n", rate(&k, 2, secs));
	aead_key_wipe(&k);
	return 0;
}
