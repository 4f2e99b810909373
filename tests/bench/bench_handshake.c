/*
 * bench_handshake — complete 1-RTT handshakes per second on one core,
 * through the sans-I/O session layer (core/protocol/session.h): a fresh initiator
 * and responder session per handshake (session_new precomputes the static
 * DH, as for a peer seen for the first time), INIT with mac1, the
 * responder's mac1 check + noise_consume_init + session_receive_init, the
 * RESP and session_receive_resp.  Both sides' work is counted, so a
 * server that only answers does roughly twice this rate.
 *
 *   bench_handshake [SECONDS]     prints key value lines
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sodium.h>

#include "index_table.h"
#include "noise.h"
#include "session.h"
#include "clock.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 2.0;
	if (sodium_init() < 0)
		return 1;
	uint8_t ska[NOISE_KEY_BYTES], skb[NOISE_KEY_BYTES], pa[NOISE_KEY_BYTES], pb[NOISE_KEY_BYTES];
	struct identity *ia = NULL, *ib = NULL;
	while (!ia || !ib) { /* a degenerate random key is possible in theory */
		identity_free(ia);
		identity_free(ib);
		randombytes_buf(ska, sizeof(ska));
		randombytes_buf(skb, sizeof(skb));
		ia = identity_new(ska);
		ib = identity_new(skb);
	}
	identity_public_key(ia, pa);
	identity_public_key(ib, pb);
	struct index_table *ta = index_table_new(), *tb = index_table_new();
	struct session_config cfg = {
		.local_caps = session_local_caps(),
		.boot_id = 1,
		.wall_offset_ms = clock_wall_offset_ms(),
	};
	uint8_t init[INIT_BYTES + 64], resp[RESP_BYTES + 64];
	uint64_t n = 0, now = 1000;
	double t0 = now_s(), t;
	do {
		now += 1; /* INIT timestamps must increase */
		struct session *a = session_new(ia, pb, &cfg, ta);
		struct session *b = session_new(ib, pa, &cfg, tb);
		if (!a || !b)
			return 1;
		session_want_handshake(a, now);
		size_t il = session_handshake_packet(a, now, init, sizeof(init));
		struct noise_init in;
		size_t rl = 0;
		if (!il || noise_consume_init(ib, init, il, &in) != 0 ||
		    session_receive_init(b, &in, now, NULL, NULL, resp, sizeof(resp), &rl) != 0 || !rl ||
		    session_receive_resp(a, resp, rl, now, NULL) != 0 || !session_established(a)) {
			fprintf(stderr, "bench_handshake: handshake %llu failed\n",
				(unsigned long long)n);
			return 1;
		}
		noise_init_wipe(&in);
		session_free(a);
		session_free(b);
		n++;
		t = now_s() - t0;
	} while (t < secs);
	printf("handshakes_per_s %.0f\n", (double)n / t);
	index_table_free(ta);
	index_table_free(tb);
	identity_free(ia);
	identity_free(ib);
	return 0;
}
