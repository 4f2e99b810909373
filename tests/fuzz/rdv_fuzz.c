/*
 * rdv_fuzz.c — libFuzzer harness for the rendezvous codec, server and
 * client (core/protocol/rdv_wire.c, rdv_server.c, rdv_mesh.c, rdv_client.c,
 * rdv_store.c).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Icore \
 *     tests/fuzz/rdv_fuzz.c core/protocol/rdv_wire.c core/protocol/rdv_server.c core/protocol/rdv_mesh.c \
 *     core/protocol/rdv_client.c \
 *     core/protocol/rdv_store.c core/protocol/ratelimit.c core/protocol/noise.c core/protocol/cookie.c core/protocol/hkdf.c core/config/log.c \
 *     core/config/keyfile.c -lsodium -lmsgpackc -o build/rdv_fuzz
 *   build/rdv_fuzz -max_total_time=60
 *
 * Every input goes to the decoder (a message that decodes must re-encode
 * to one that decodes to the same fields), the record and server card
 * decoders (a card must survive re-encoding), a server
 * (from a stranger's address: whatever it answers must be no larger than
 * the input, and go back to the sender), and a client.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rendezvous.h"

static struct rdv_store *store;
static struct rdv_server *server;
static struct rdv_client *client;
static struct identity id;
static uint64_t now = 1000000;

static void setup(void)
{
	uint8_t secret[32];
	struct rdv_client_config cc = { 0 };

	if (sodium_init() < 0)
		abort();
	memset(secret, 7, sizeof(secret));
	if (identity_init(&id, secret) != 0)
		abort();
	store = rdv_store_memory_new(1000);
	/* A server key, and a client that pins it: the pinned derivation
	 * (AUTH field 14) runs too. */
	uint8_t server_secret[32], server_pub[32];
	struct rdv_server_config sc = { .static_secret = server_secret };
	memset(server_secret, 9, sizeof(server_secret));
	crypto_scalarmult_base(server_pub, server_secret);
	server = rdv_server_new(&sc, store, now);
	cc.id = &id;
	client = rdv_client_new(&cc, now);
	if (!store || !server || !client)
		abort();
	rdv_client_relink(client, server_pub, now);
}

static void same_fields(const struct rdv_msg *a, const struct rdv_msg *b)
{
	uint32_t mask = ~(1u << RDV_F_PAD | 1u << RDV_F_MAC);

	if ((a->present & mask) != (b->present & mask) || a->kind != b->kind ||
	    a->cand_count != b->cand_count || a->time != b->time || a->ts != b->ts ||
	    a->ctr != b->ctr || a->ttl != b->ttl || memcmp(a->pub, b->pub, 32) != 0 ||
	    memcmp(a->peer, b->peer, 32) != 0 || memcmp(a->eph, b->eph, 32) != 0 ||
	    memcmp(a->server, b->server, 32) != 0 ||
	    a->allow_count != b->allow_count ||
	    memcmp(a->allow, b->allow, a->allow_count * RDV_TAG_BYTES) != 0)
		abort();
	for (size_t i = 0; i < a->cand_count; i++)
		if (!rdv_endpoint_equal(&a->cands[i], &b->cands[i]))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct rdv_msg m, m2;
	struct rdv_record r;
	struct rdv_out out[2];
	struct rdv_event ev;
	struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = htons(40000) };
	uint8_t again[RDV_MAX_PACKET], key[32] = { 1 };

	if (server == NULL)
		setup();
	if (rdv_msg_decode(data, len, &m) == 0) {
		size_t n;
		m.present &= ~(1u << RDV_F_MAC);
		n = rdv_msg_encode(&m, key, 0, again, sizeof(again));
		if (n == 0 || rdv_msg_decode(again, n, &m2) != 0 ||
		    rdv_msg_verify(again, n, &m2, key) != 0)
			abort();
		same_fields(&m, &m2);
	}
	if (rdv_record_decode(data, len, &r) == 0 && r.cand_count > RDV_MAX_CANDIDATES)
		abort();
	struct rdv_card card, card2;
	if (rdv_card_decode(data, len, &card) == 0) {
		size_t n = rdv_card_encode(&card, again, sizeof(again));
		if (n == 0 || rdv_card_decode(again, n, &card2) != 0 ||
		    card2.server_id != card.server_id || memcmp(card2.pub, card.pub, 32) != 0 ||
		    !rdv_endpoint_equal(&card2.addr, &card.addr))
			abort();
	}

	/* A new stranger each time (so the rate limiter lets most through). */
	now += 50;
	src.sin_addr.s_addr = htonl(0x0a000000u | (uint32_t)(now & 0xffffff));
	struct rdv_endpoint from = { .len = sizeof(src) };
	memcpy(&from.addr, &src, sizeof(src));
	int n = rdv_server_receive(server, data, len, &from, now, out, 2);
	size_t sent = 0;
	for (int i = 0; i < n; i++) {
		sent += out[i].len;
		if (out[i].to.len != sizeof(src) || memcmp(&out[i].to.addr, &src, sizeof(src)) != 0)
			abort();
	}
	if (sent > len)
		abort(); /* amplification */
	if (rdv_client_receive(client, data, len, now, &ev) == 1 && ev.type == RDV_EV_RELAYED &&
	    ev.inner + ev.inner_len != data + len)
		abort();
	return 0;
}
