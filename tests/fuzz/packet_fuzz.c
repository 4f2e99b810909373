/*
 * packet_fuzz.c — libFuzzer harness for the outer packet decode and DATA
 * opening (core/protocol/session.c, core/protocol/noise.c, core/protocol/cookie.c, core/protocol/replay.c,
 * core/protocol/aead.c) along the engine's receive path, against a fixed,
 * established session (tests/fuzz/fuzz_pair.h).
 *
 * Byte 0 picks the mode:
 *   even: the rest is one raw packet for B, from A's address (bit 1 clear)
 *         or a stranger's; with bit 2 the receiver index of a DATA packet
 *         is set to B's live index, so the fuzzer reaches the replay
 *         window and the AEAD instead of the index lookup.  Checked: no
 *         reply larger than the packet; the session still opens A's next
 *         real packet afterwards (garbage never breaks a session).
 *   odd:  the rest is a list of records [3-byte packet number offset,
 *         1-byte length, payload] that A seals for real and B opens, in
 *         that order.  Checked against a model of the replay window: a
 *         number opened before is refused, a number above every one seen
 *         is accepted, and what opens is exactly what was sealed.
 *
 * tests/fuzz/run.sh builds it; by hand:
 *   tests/fuzz/run.sh 60 packet_fuzz
 */
#include "fuzz_pair.h"

#define MAX_RECORDS 64

static int established_pair(struct fuzz_side *a, struct fuzz_side *b)
{
	fuzz_rng_state = 42;
	fuzz_side_init(a, 0x0a000001);
	fuzz_side_init(b, 0x0a000002);
	fuzz_side_connect(a, b, 0xaaaa);
	fuzz_side_connect(b, a, 0xbbbb);
	return fuzz_establish(a, b, 1000);
}

static uint32_t live_index_of_b(struct fuzz_side *a)
{
	uint8_t p = 1, out[1 + WIRE_DATA_OVERHEAD];

	if (session_seal(a->s, a->pn++, &p, 1, out, sizeof(out), 1000) <= 0)
		abort();
	return get_le32(out + DATA_RECEIVER_AT);
}

static void raw_mode(struct fuzz_side *a, struct fuzz_side *b, uint8_t mode, const uint8_t *data,
		     size_t size)
{
	static uint8_t pkt[4096], plain[4096], reply[INIT_BYTES];
	struct sockaddr_in stranger = b->addr;
	size_t rl;

	if (size > sizeof(pkt))
		return;
	memcpy(pkt, data, size);
	stranger.sin_addr.s_addr = htonl(0xc0000201);
	if ((mode & 4) && size >= WIRE_DATA_HEADER_BYTES && pkt[0] == WIRE_DATA)
		put_le32(pkt + DATA_RECEIVER_AT, live_index_of_b(a));
	int rc = fuzz_receive(b, pkt, size, (mode & 2) ? &stranger : &a->addr, 2000, reply, &rl,
			      plain, sizeof(plain));
	if (rc >= 0 && pkt[0] == WIRE_DATA)
		abort(); /* the fuzzer forged a DATA packet */

	/* The real peer is unaffected. */
	uint8_t p[8] = { FRAME_PING }, out[8 + WIRE_DATA_OVERHEAD];
	int n = session_seal(a->s, a->pn++, p, 1, out, sizeof(out), 2001);
	if (n <= 0 || fuzz_receive(b, out, (size_t)n, &a->addr, 2001, reply, &rl, plain,
				   sizeof(plain)) != 1 || plain[0] != FRAME_PING)
		abort();
}

static void seal_mode(struct fuzz_side *a, struct fuzz_side *b, const uint8_t *data, size_t size)
{
	static uint8_t out[256 + WIRE_DATA_OVERHEAD], plain[256], reply[INIT_BYTES];
	uint64_t opened[MAX_RECORDS], max_opened = 0;
	size_t nopened = 0, rl;

	for (size_t i = 0; i + 4 <= size && nopened < MAX_RECORDS;) {
		uint64_t pn = 2000 + ((uint64_t)data[i] | (uint64_t)data[i + 1] << 8 |
				      (uint64_t)data[i + 2] << 16);
		size_t len = data[i + 3];
		i += 4;
		if (len > size - i)
			len = size - i;
		int n = session_seal(a->s, pn, data + i, len, out, sizeof(out), 3000);
		if (n != (int)(len + WIRE_DATA_OVERHEAD))
			abort();
		int rc = fuzz_receive(b, out, (size_t)n, &a->addr, 3000, reply, &rl, plain,
				      sizeof(plain));
		int seen = 0;
		for (size_t k = 0; k < nopened; k++)
			seen |= opened[k] == pn;
		if (seen && rc >= 0)
			abort(); /* replay accepted */
		if (!seen && (nopened == 0 || pn > max_opened) && rc < 0)
			abort(); /* a fresh, newest packet refused */
		if (rc >= 0) {
			if ((size_t)rc != len || memcmp(plain, data + i, len) != 0)
				abort();
			opened[nopened++] = pn;
			if (pn > max_opened)
				max_opened = pn;
		} else if (session_drop_reason(rc) != SRM_DROP_REPLAY) {
			abort(); /* a real packet can only fail as a replay */
		}
		i += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct fuzz_side a, b;

	if (!init) {
		if (sodium_init() < 0)
			abort();
		init = 1;
	}
	if (size < 1)
		return 0;
	if (established_pair(&a, &b) != 0)
		abort();
	if (data[0] & 1)
		seal_mode(&a, &b, data + 1, size - 1);
	else
		raw_mode(&a, &b, data[0], data + 1, size - 1);
	fuzz_side_free(&a);
	fuzz_side_free(&b);
	return 0;
}
