/*
 * fuzz_pair.h — shared by the session-level fuzz targets: two engines'
 * worth of state (identity, index table, handshake guard, one session with
 * the other), built from a deterministic RNG and shaken hands, so that a
 * crash reproduces from its input alone.
 *
 * Header-only on purpose: each fuzz target is one translation unit linked
 * against the core archive (tests/fuzz/run.sh).
 */
#ifndef SRMUDP_FUZZ_PAIR_H
#define SRMUDP_FUZZ_PAIR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cookie.h"
#include "index_table.h"
#include "noise.h"
#include "session.h"
#include "wire.h"

/* splitmix64: the same seed gives the same keys, indices and ephemerals. */
static uint64_t fuzz_rng_state;

static void fuzz_rng(void *ctx, void *buf, size_t len)
{
	uint8_t *p = buf;

	(void)ctx;
	for (size_t i = 0; i < len; i++) {
		uint64_t z = (fuzz_rng_state += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		p[i] = (uint8_t)(z ^ (z >> 31));
	}
}

/* The guard's load threshold for sides made next (0: the engine's
 * HANDSHAKE_LOAD_PER_SEC); fuzzers lower it to reach cookie mode cheaply. */
static uint32_t fuzz_guard_load;

struct fuzz_side {
	struct identity id;
	struct index_table *ix;
	struct handshake_guard *guard;
	struct session *s;
	struct sockaddr_in addr;
	uint64_t pn;
};

static void fuzz_side_init(struct fuzz_side *x, uint32_t ip)
{
	uint8_t sk[32];
	struct handshake_guard_config gc = { 0 };

	memset(x, 0, sizeof(*x));
	fuzz_rng(NULL, sk, sizeof(sk));
	if (identity_init(&x->id, sk) != 0)
		abort();
	x->ix = index_table_new_rng(fuzz_rng, NULL);
	gc.rng = fuzz_rng;
	gc.load_per_sec = fuzz_guard_load;
	x->guard = handshake_guard_new_config(&x->id, &gc);
	if (x->ix == NULL || x->guard == NULL)
		abort();
	x->addr.sin_family = AF_INET;
	x->addr.sin_addr.s_addr = htonl(ip);
	x->addr.sin_port = htons(51820);
	x->pn = 1000;
}

static void fuzz_side_connect(struct fuzz_side *x, const struct fuzz_side *peer, uint64_t boot)
{
	struct session_config c = { 0 };

	c.local_caps = session_local_caps();
	c.boot_id = boot;
	c.connect_timeout_ms = 10000;
	c.wall_offset_ms = 1700000000000ll;
	c.rng = fuzz_rng;
	x->s = session_new(&x->id, peer->id.pub, &c, x->ix);
	if (x->s == NULL)
		abort();
}

static void fuzz_side_free(struct fuzz_side *x)
{
	session_free(x->s);
	handshake_guard_free(x->guard);
	index_table_free(x->ix);
	identity_wipe(&x->id);
}

/*
 * The engine's receive path (core/driver/engine_receive.c order), for side x and a
 * packet from src.  Whatever x would send back goes to reply (cap
 * INIT_BYTES), *reply_len set.  Returns the session_* result.
 * Checked here: no reply is ever larger than the packet that caused it.
 */
static int fuzz_receive(struct fuzz_side *x, uint8_t *pkt, size_t len,
			const struct sockaddr_in *src, uint64_t now, uint8_t *reply,
			size_t *reply_len, uint8_t *plain, size_t plain_cap)
{
	uint32_t idx;
	int rc;

	*reply_len = 0;
	if (len < WIRE_HEADER_BYTES)
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	if (pkt[0] == WIRE_HANDSHAKE_INIT || pkt[0] == WIRE_HANDSHAKE_RESP) {
		rc = handshake_guard_check(x->guard, pkt, len, (const struct sockaddr *)src,
					   sizeof(*src), now, reply, reply_len);
		if (*reply_len > len || (*reply_len && *reply_len != COOKIE_REPLY_BYTES))
			abort(); /* amplification */
		if (rc)
			return rc;
	}
	if (pkt[0] == WIRE_PUNCH) /* never answered: only mac1 is checked */
		return cookie_check_mac1(pkt, len, x->id.mac1_key) ? SRM_DROP_CODE(SRM_DROP_MAC) : 0;
	if (pkt[0] == WIRE_HANDSHAKE_INIT) {
		struct noise_init ni;
		rc = noise_consume_init(&x->id, pkt, len, &ni);
		if (rc)
			return rc;
		if (memcmp(ni.peer_pub, session_peer_pub(x->s), 32) != 0) {
			noise_init_wipe(&ni);
			return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
		}
		rc = session_receive_init(x->s, &ni, now, NULL, NULL, reply, INIT_BYTES, reply_len);
		noise_init_wipe(&ni);
		if (*reply_len > len)
			abort();
		return rc;
	}
	rc = session_receiver_index(pkt, len, &idx);
	if (rc)
		return rc;
	if (index_table_lookup(x->ix, idx) == NULL)
		return SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX);
	if (index_table_lookup(x->ix, idx) != x->s)
		abort();
	switch (pkt[0]) {
	case WIRE_HANDSHAKE_RESP:
		return session_receive_resp(x->s, pkt, len, now, NULL);
	case WIRE_COOKIE_REPLY:
		return session_receive_cookie(x->s, pkt, len, now);
	case WIRE_DATA: {
		uint64_t pn;
		if (len < WIRE_DATA_OVERHEAD || plain_cap < len - WIRE_DATA_OVERHEAD)
			return SRM_DROP_CODE(SRM_DROP_MALFORMED);
		return session_open(x->s, pkt, len, plain, plain_cap, &pn, now);
	}
	}
	return SRM_DROP_CODE(SRM_DROP_MALFORMED);
}

/* A initiates, B answers, A confirms: both established.  0 or -1. */
static int fuzz_establish(struct fuzz_side *a, struct fuzz_side *b, uint64_t now)
{
	uint8_t init[INIT_BYTES], reply[INIT_BYTES], plain[64], data[64 + WIRE_DATA_OVERHEAD];
	size_t n, rl;

	session_want_handshake(a->s, now);
	n = session_handshake_packet(a->s, now, init, sizeof(init));
	if (n != INIT_BYTES)
		return -1;
	if (fuzz_receive(b, init, n, &a->addr, now, reply, &rl, plain, sizeof(plain)) != 0 ||
	    rl != RESP_BYTES)
		return -1;
	if (fuzz_receive(a, reply, rl, &b->addr, now, init, &n, plain, sizeof(plain)) != 0)
		return -1;
	memset(plain, 1, 1); /* a PING */
	int len = session_seal(a->s, a->pn++, plain, 1, data, sizeof(data), now);
	if (len <= 0)
		return -1;
	if (fuzz_receive(b, data, (size_t)len, &a->addr, now, reply, &rl, plain, sizeof(plain)) != 1)
		return -1;
	return session_established(a->s) && session_established(b->s) ? 0 : -1;
}

#endif
