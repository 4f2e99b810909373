/*
 * handshake_fuzz.c — libFuzzer harness for the handshake messages:
 * handshake_guard_check, noise_consume_init, session_receive_init,
 * session_receive_resp, session_receive_cookie, cookie_open_reply
 * (core/protocol/noise.c, core/protocol/cookie.c, core/protocol/session.c, core/protocol/ratelimit.c).
 *
 * Random bytes never pass mac1, so the harness helps: byte 0 picks the
 * message type and what to fix up, the rest is the message body (padded
 * or cut to the exact length).  Then the header is made valid, mac1 is
 * computed under the receiver's real key and, for RESP and COOKIE_REPLY,
 * the receiver index is set to B's outstanding handshake (B has sent an
 * INIT that A never answered).  For COOKIE_REPLY, bit 3 makes the harness
 * build a correctly encrypted reply around a fuzzed cookie and nonce, so
 * the stored-cookie and mac2 paths run too.  Bits 4-5 put the guard
 * under load first (24 valid-mac1 messages
 * against a threshold lowered to 20 a second), so cookies are demanded.
 *
 * Checked: no answer is larger than what caused it; nothing the fuzzer
 * makes establishes a session (it does not know A's static key); B's
 * own handshake with A still completes afterwards.
 *
 *   tests/fuzz/run.sh 60 handshake_fuzz
 */
#include "fuzz_pair.h"

static void fix_macs(uint8_t *pkt, size_t len, const struct identity *to)
{
	cookie_add_macs(pkt, len, to->mac1_key, NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	static uint8_t pkt[INIT_BYTES], reply[INIT_BYTES], plain[64];
	struct fuzz_side a, b;
	uint8_t b_init[INIT_BYTES];
	size_t len, rl;
	uint64_t now = 5000;

	if (!init) {
		if (sodium_init() < 0)
			abort();
		init = 1;
	}
	if (size < 1)
		return 0;
	fuzz_rng_state = 7;
	fuzz_guard_load = 20; /* cookie mode after 20 messages a second, not 1000 */
	fuzz_side_init(&a, 0x0a000001);
	fuzz_side_init(&b, 0x0a000002);
	fuzz_side_connect(&a, &b, 0xaaaa);
	fuzz_side_connect(&b, &a, 0xbbbb);
	/* B initiates; its INIT is "lost", so B has a handshake outstanding. */
	session_want_handshake(b.s, now);
	if (session_handshake_packet(b.s, now, b_init, sizeof(b_init)) != INIT_BYTES)
		abort();

	uint8_t sel = data[0];
	int type = 1 + sel % 3; /* INIT, RESP, COOKIE_REPLY */
	len = type == WIRE_HANDSHAKE_INIT ? INIT_BYTES
	    : type == WIRE_HANDSHAKE_RESP ? RESP_BYTES : COOKIE_REPLY_BYTES;
	memset(pkt, 0, sizeof(pkt));
	memcpy(pkt, data + 1, size - 1 < len ? size - 1 : len);
	if ((sel & 0x40) && size - 1 < len)
		len = size - 1 < WIRE_HEADER_BYTES ? WIRE_HEADER_BYTES : size - 1; /* truncated */
	wire_put_header(pkt, (enum wire_type)type);
	if (sel & 0x80)
		pkt[1 + (sel >> 2) % 3] ^= 1; /* bad version or reserved */

	if ((sel >> 4) & 3) {
		/* Load: valid-mac1 garbage from many sources engages cookies. */
		for (uint32_t i = 0; i < 24; i++) {
			uint8_t junk[INIT_BYTES] = { 0 };
			struct sockaddr_in src = a.addr;
			src.sin_addr.s_addr = htonl(0xc6120000 + i);
			wire_put_header(junk, WIRE_HANDSHAKE_INIT);
			fix_macs(junk, sizeof(junk), &b.id);
			(void)fuzz_receive(&b, junk, sizeof(junk), &src, now, reply, &rl, plain,
					   sizeof(plain));
		}
		if (!handshake_guard_under_load(b.guard, now))
			abort();
	}

	if (type == WIRE_COOKIE_REPLY) {
		uint32_t idx = get_le32(b_init + INIT_OFF_SENDER);
		if (sel & 8) {
			uint8_t cookie[COOKIE_BYTES] = { 0 }, nonce[COOKIE_NONCE_BYTES] = { 0 };
			memcpy(cookie, pkt + 8, COOKIE_BYTES);
			memcpy(nonce, pkt + 24, 16);
			cookie_create_reply(pkt, idx, nonce, cookie, a.id.cookie_key,
					    b_init + INIT_OFF_MAC1);
		} else {
			put_le32(pkt + COOKIE_OFF_RECEIVER, idx);
		}
	} else if (type == WIRE_HANDSHAKE_RESP) {
		put_le32(pkt + RESP_OFF_RECEIVER, get_le32(b_init + INIT_OFF_SENDER));
		if (len == RESP_BYTES)
			fix_macs(pkt, len, &b.id);
	} else if (len == INIT_BYTES) {
		fix_macs(pkt, len, &b.id);
	}

	int rc = fuzz_receive(&b, pkt, len, &a.addr, now, reply, &rl, plain, sizeof(plain));
	if (rl > len)
		abort(); /* amplification */
	if (type == WIRE_HANDSHAKE_RESP && rc == 0)
		abort(); /* a RESP forged without A's keys */
	if (type == WIRE_HANDSHAKE_INIT && rc == 0 && rl != 0)
		abort(); /* an INIT forged without A's static key was answered */
	if (session_established(b.s))
		abort();

	/* The real handshake still works: A answers B's (retransmitted) INIT. */
	now += 60000;
	uint8_t init2[INIT_BYTES], resp[INIT_BYTES];
	size_t n = session_handshake_packet(b.s, now, init2, sizeof(init2));
	if (n == 0) {
		session_want_handshake(b.s, now);
		n = session_handshake_packet(b.s, now, init2, sizeof(init2));
	}
	if (n != INIT_BYTES)
		abort();
	if (fuzz_receive(&a, init2, n, &b.addr, now, resp, &rl, plain, sizeof(plain)) != 0 ||
	    rl != RESP_BYTES)
		abort();
	if (fuzz_receive(&b, resp, rl, &a.addr, now, reply, &n, plain, sizeof(plain)) != 0 ||
	    !session_established(b.s))
		abort();
	fuzz_side_free(&a);
	fuzz_side_free(&b);
	return 0;
}
