/*
 * vectors.c — the test vectors of docs/PROTOCOL.md ("Test vectors"),
 * computed by the core as compiled to WebAssembly (wasm32: 32-bit size_t
 * and long, no AES hardware), so that the build the JS package ships is
 * checked byte for byte, not only the native one (tests/unit/noise_test.cc).
 *
 *   node build/wasm/vectors.js S_I S_R E_I E_R PUB_I PUB_R INIT RESP T1 T2 DATA
 *
 * The arguments are the hex strings of the document (test_js.sh takes them
 * from it); the payloads are the document's prose inputs.  Prints one
 * "ok"/"FAIL" line per vector; exit 1 on any mismatch.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "aead.h"
#include "cookie.h"
#include "noise.h"
#include "wire.h"

#define IDX_I 0x11223344u
#define IDX_R 0x55667788u

static int failures;

static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s) / 2;
	if (n > cap || strlen(s) % 2) {
		fprintf(stderr, "vectors: bad hex argument %.20s...\n", s);
		exit(2);
	}
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			fprintf(stderr, "vectors: bad hex argument %.20s...\n", s);
			exit(2);
		}
		out[i] = (uint8_t)v;
	}
	return n;
}

static void expect(const char *what, const uint8_t *got, size_t len, const char *want_hex)
{
	uint8_t want[512];
	size_t n = unhex(want_hex, want, sizeof(want));
	bool same = n == len && memcmp(got, want, len) == 0;
	printf("  %s  %s (%zu bytes)\n", same ? "ok  " : "FAIL", what, len);
	failures += !same;
}

int main(int argc, char **argv)
{
	if (argc != 12) {
		fprintf(stderr, "usage: vectors S_I S_R E_I E_R PUB_I PUB_R INIT RESP T1 T2 DATA\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	uint8_t s_i[32], s_r[32], e_i[32], e_r[32];
	unhex(argv[1], s_i, 32), unhex(argv[2], s_r, 32), unhex(argv[3], e_i, 32), unhex(argv[4], e_r, 32);

	struct identity id_i, id_r;
	uint8_t ss_i[32], ss_r[32];
	if (identity_init(&id_i, s_i) || identity_init(&id_r, s_r) ||
	    noise_precompute_ss(&id_i, id_r.pub, ss_i) || noise_precompute_ss(&id_r, id_i.pub, ss_r)) {
		puts("  FAIL  identities");
		return 1;
	}
	expect("initiator static pub", id_i.pub, 32, argv[5]);
	expect("responder static pub", id_r.pub, 32, argv[6]);

	/* The document's payloads: OPEN stream 0 to port 6379 in the INIT,
	 * ACCEPT stream 0 in the RESP. */
	struct noise_payload pl_i = { 1700000000000ull, 0x0102030405060708ull, CAP_AES256GCM, 1, 1,
				      { 3, 0, 0xeb, 0x18 } };
	struct noise_payload pl_r = { 0, 0x1112131415161718ull, CAP_AES256GCM, 1, 1, { 4, 0 } };

	uint8_t init[INIT_BYTES], resp[RESP_BYTES];
	struct noise_init_prep prep;
	struct noise_handshake hs;
	if (noise_prepare_init(&id_i, id_r.pub, ss_i, e_i, &prep) != 0) {
		puts("  FAIL  noise_prepare_init");
		return 1;
	}
	noise_create_init(&prep, IDX_I, &pl_i, &hs, init);
	cookie_add_macs(init, INIT_BYTES, id_r.mac1_key, NULL, NULL);
	expect("HANDSHAKE_INIT", init, INIT_BYTES, argv[7]);

	struct noise_init ni;
	struct noise_payload got;
	struct noise_keys kr, ki;
	if (noise_consume_init(&id_r, init, sizeof(init), &ni) || noise_finish_init(&ni, ss_r, &got) ||
	    noise_create_resp(&ni, e_r, IDX_R, &pl_r, resp, &kr)) {
		puts("  FAIL  responder side of the handshake");
		return 1;
	}
	cookie_add_macs(resp, RESP_BYTES, id_i.mac1_key, NULL, NULL);
	expect("HANDSHAKE_RESP", resp, RESP_BYTES, argv[8]);
	struct noise_payload gr;
	if (noise_consume_resp(&id_i, &hs, resp, sizeof(resp), &gr, &ki) != 0) {
		puts("  FAIL  initiator consumes the RESP");
		return 1;
	}
	expect("T1 (initiator's send key)", ki.send, 32, argv[9]);
	expect("T1 (responder's receive key)", kr.recv, 32, argv[9]);
	expect("T2 (initiator's receive key)", ki.recv, 32, argv[10]);

	/* A PING (one byte 01) sealed with ChaCha20-Poly1305 under T1, pn 0. */
	struct aead_key k;
	uint8_t pkt[64], ping = FRAME_PING;
	if (aead_key_init(&k, AEAD_CHACHA20POLY1305, ki.send) != 0) {
		puts("  FAIL  aead_key_init");
		return 1;
	}
	wire_put_header(pkt, WIRE_DATA);
	put_le32(pkt + 4, IDX_R);
	put_le64(pkt + 8, 0);
	aead_seal(&k, 0, pkt, WIRE_DATA_HEADER_BYTES, &ping, 1, pkt + WIRE_DATA_HEADER_BYTES);
	expect("DATA, ChaCha20-Poly1305", pkt, WIRE_DATA_OVERHEAD + 1, argv[11]);
	aead_key_wipe(&k);
	identity_wipe(&id_i);
	identity_wipe(&id_r);
	return failures ? 1 : 0;
}
