// rdv_wire_test.cc — rendezvous codec: round trips, MACs, padding, and
// hostile input (truncations, bit flips, random bytes, container bombs).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <random>
#include <sodium.h>
#include <vector>

extern "C" {
#include "rendezvous.h"
}

namespace {

rdv_endpoint v4(const char *a, uint16_t port)
{
	rdv_endpoint ep{};
	auto *s = reinterpret_cast<sockaddr_in *>(&ep.addr);
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, a, &s->sin_addr);
	ep.len = sizeof(*s);
	return ep;
}

rdv_endpoint v6(const char *a, uint16_t port)
{
	rdv_endpoint ep{};
	auto *s = reinterpret_cast<sockaddr_in6 *>(&ep.addr);
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	inet_pton(AF_INET6, a, &s->sin6_addr);
	ep.len = sizeof(*s);
	return ep;
}

rdv_msg full_msg()
{
	rdv_msg m{};
	m.kind = RDV_AUTH;
	m.present = 1u << RDV_F_PUB | 1u << RDV_F_EPH | 1u << RDV_F_TIME | 1u << RDV_F_COOKIE |
		    1u << RDV_F_TS | 1u << RDV_F_CANDS | 1u << RDV_F_ADDR | 1u << RDV_F_PEER |
		    1u << RDV_F_TTL | 1u << RDV_F_CTR;
	for (int i = 0; i < 32; i++) {
		m.pub[i] = (uint8_t)i;
		m.eph[i] = (uint8_t)(100 + i);
		m.peer[i] = (uint8_t)(200 + i);
	}
	for (int i = 0; i < 16; i++)
		m.cookie[i] = (uint8_t)(50 + i);
	m.time = 123456789;
	m.ts = UINT64_C(1790000000000);
	m.ttl = 120000;
	m.ctr = 7;
	m.addr = v4("198.51.100.7", 40000);
	m.cands[0] = v4("10.0.0.2", 5000);
	m.cands[1] = v6("2001:db8::5", 5000);
	m.cand_count = 2;
	return m;
}

const uint8_t KEY[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
			  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

} // namespace

TEST(RdvWire, EndpointRoundTripAndMapped)
{
	ASSERT_GE(sodium_init(), 0);
	uint8_t b[18];
	rdv_endpoint out{};
	rdv_endpoint a = v4("192.0.2.1", 65535);
	ASSERT_EQ(rdv_endpoint_put(b, sizeof b, &a), 6u);
	ASSERT_EQ(rdv_endpoint_get(b, 6, &out), 0);
	EXPECT_TRUE(rdv_endpoint_equal(&a, &out));

	rdv_endpoint c = v6("2001:db8::1", 1);
	ASSERT_EQ(rdv_endpoint_put(b, sizeof b, &c), 18u);
	ASSERT_EQ(rdv_endpoint_get(b, 18, &out), 0);
	EXPECT_TRUE(rdv_endpoint_equal(&c, &out));
	EXPECT_FALSE(rdv_endpoint_equal(&a, &c));

	// An IPv4-mapped IPv6 source is the same endpoint as the IPv4 one.
	rdv_endpoint m = v6("::ffff:192.0.2.1", 65535);
	EXPECT_EQ(rdv_endpoint_put(b, sizeof b, &m), 6u);
	EXPECT_TRUE(rdv_endpoint_equal(&a, &m));

	EXPECT_EQ(rdv_endpoint_get(b, 5, &out), SRM_ERR_INVALID);
	rdv_endpoint none{};
	EXPECT_EQ(rdv_endpoint_put(b, sizeof b, &none), 0u);
	char s[64];
	EXPECT_STREQ(rdv_endpoint_str(&c, s, sizeof s), "[2001:db8::1]:1");
	EXPECT_STREQ(rdv_endpoint_str(&a, s, sizeof s), "192.0.2.1:65535");
}

TEST(RdvWire, MessageRoundTripWithMac)
{
	rdv_msg m = full_msg(), d{};
	uint8_t pkt[RDV_MAX_PACKET];
	size_t len = rdv_msg_encode(&m, KEY, 0, pkt, sizeof pkt);
	ASSERT_GT(len, 0u);
	EXPECT_EQ(pkt[0], WIRE_RENDEZVOUS);
	EXPECT_EQ(pkt[1], WIRE_VERSION);
	ASSERT_EQ(rdv_msg_decode(pkt, len, &d), 0);
	EXPECT_EQ(d.kind, RDV_AUTH);
	EXPECT_EQ(d.present, m.present | 1u << RDV_F_KIND | 1u << RDV_F_MAC);
	EXPECT_EQ(0, memcmp(d.pub, m.pub, 32));
	EXPECT_EQ(0, memcmp(d.eph, m.eph, 32));
	EXPECT_EQ(0, memcmp(d.peer, m.peer, 32));
	EXPECT_EQ(0, memcmp(d.cookie, m.cookie, 16));
	EXPECT_EQ(d.time, m.time);
	EXPECT_EQ(d.ts, m.ts);
	EXPECT_EQ(d.ttl, m.ttl);
	EXPECT_EQ(d.ctr, m.ctr);
	EXPECT_TRUE(rdv_endpoint_equal(&d.addr, &m.addr));
	ASSERT_EQ(d.cand_count, 2u);
	EXPECT_TRUE(rdv_endpoint_equal(&d.cands[1], &m.cands[1]));
	EXPECT_EQ(d.mac_off, len - RDV_MAC_BYTES);
	EXPECT_EQ(rdv_msg_verify(pkt, len, &d, KEY), 0);

	uint8_t other[32] = { 9 };
	EXPECT_EQ(rdv_msg_verify(pkt, len, &d, other), SRM_DROP_CODE(SRM_DROP_MAC));
	// Every single bit flip either fails to decode or fails the MAC.
	for (size_t i = 0; i < len * 8; i++) {
		uint8_t c[RDV_MAX_PACKET];
		memcpy(c, pkt, len);
		c[i / 8] ^= (uint8_t)(1u << (i % 8));
		rdv_msg x;
		if (rdv_msg_decode(c, len, &x) == 0) {
			EXPECT_NE(rdv_msg_verify(c, len, &x, KEY), 0) << "bit " << i;
		}
	}
}

TEST(RdvWire, NoMacMeansVerifyFails)
{
	rdv_msg m = full_msg(), d;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t len = rdv_msg_encode(&m, nullptr, 0, pkt, sizeof pkt);
	ASSERT_GT(len, 0u);
	ASSERT_EQ(rdv_msg_decode(pkt, len, &d), 0);
	EXPECT_FALSE(RDV_HAS(&d, RDV_F_MAC));
	EXPECT_EQ(rdv_msg_verify(pkt, len, &d, KEY), SRM_DROP_CODE(SRM_DROP_MAC));
}

TEST(RdvWire, PaddingReachesExactSizes)
{
	rdv_msg m{};
	m.kind = RDV_REGISTER;
	uint8_t pkt[RDV_MAX_PACKET];
	for (size_t want = 0; want <= 600; want++) {
		size_t len = rdv_msg_encode(&m, nullptr, want, pkt, sizeof pkt);
		ASSERT_GE(len, want);
		ASSERT_LE(len, want < 10 ? 10 : want + 3) << want;
		rdv_msg d;
		ASSERT_EQ(rdv_msg_decode(pkt, len, &d), 0) << want;
		EXPECT_EQ(d.kind, RDV_REGISTER);
	}
	// With a MAC the padding sits before it, and the MAC still verifies.
	size_t len = rdv_msg_encode(&m, KEY, 300, pkt, sizeof pkt);
	rdv_msg d;
	ASSERT_EQ(rdv_msg_decode(pkt, len, &d), 0);
	EXPECT_EQ(rdv_msg_verify(pkt, len, &d, KEY), 0);
	EXPECT_GE(len, 300u);
}

TEST(RdvWire, EncodeRefusesWhatDoesNotFit)
{
	rdv_msg m = full_msg();
	uint8_t pkt[RDV_MAX_PACKET];
	size_t full = rdv_msg_encode(&m, KEY, 0, pkt, sizeof pkt);
	for (size_t cap = 0; cap < full; cap++)
		EXPECT_EQ(rdv_msg_encode(&m, KEY, 0, pkt, cap), 0u) << cap;
	m.cands[0] = rdv_endpoint{}; // no family
	EXPECT_EQ(rdv_msg_encode(&m, KEY, 0, pkt, sizeof pkt), 0u);
}

TEST(RdvWire, MalformedRejected)
{
	rdv_msg d;
	auto bad = [&](std::vector<uint8_t> v) {
		return rdv_msg_decode(v.data(), v.size(), &d);
	};
	const int M = SRM_DROP_CODE(SRM_DROP_MALFORMED);
	EXPECT_EQ(bad({}), M);
	EXPECT_EQ(bad({ 8, 1, 0, 0 }), M);                          // no map
	EXPECT_EQ(bad({ 8, 2, 0, 0, 0x81, 0, 1 }), SRM_DROP_CODE(SRM_DROP_VERSION));
	EXPECT_EQ(bad({ 4, 1, 0, 0, 0x81, 0, 1 }), M);              // not WIRE_RENDEZVOUS
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x81, 0, 1 }), 0);              // {kind: 1}
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x80 }), M);                    // no kind
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x81, 0, 1, 0 }), M);           // trailing byte
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x82, 0, 1, 0, 2 }), M);        // duplicate key
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x81, 0, 0xa1, 'x' }), M);      // kind is a string
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x81, 0, 0xcd, 1, 0 }), M);     // kind > 255
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x81, 0xa1, 'k', 1 }), M);      // string key
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x82, 0, 1, 1, 0xc4, 1, 0 }), M); // pub of 1 byte
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x82, 0, 1, 0x3f, 0xc0 }), 0);  // unknown key skipped
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x81, 0, 0xc1 }), M);           // reserved byte
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x82, 0, 1, 6, 0x91, 0xc4, 5, 1, 2, 3, 4, 5 }), M); // 5-byte endpoint
	// Container bombs: counts far beyond the bytes present.
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x82, 0, 1, 6, 0xdd, 0x00, 0xff, 0xff, 0xff }), M);
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0xdf, 0xff, 0xff, 0xff, 0xff }), M);
	EXPECT_EQ(bad({ 8, 1, 0, 0, 0x82, 0, 1, 11, 0xc6, 0x7f, 0xff, 0xff, 0xff }), M);
	// Deep nesting is refused before msgpack-c sees it.
	std::vector<uint8_t> deep = { 8, 1, 0, 0, 0x82, 0, 1, 0x3f };
	for (int i = 0; i < 50; i++)
		deep.push_back(0x91);
	deep.push_back(0);
	EXPECT_EQ(bad(deep), M);
	// MAC not last, or not ending the packet.
	std::vector<uint8_t> macfirst = { 8, 1, 0, 0, 0x82, 12, 0xc4, 16 };
	for (int i = 0; i < 16; i++)
		macfirst.push_back(0);
	macfirst.insert(macfirst.end(), { 0, 1 });
	EXPECT_EQ(bad(macfirst), M);
	// Too many candidates.
	std::vector<uint8_t> many = { 8, 1, 0, 0, 0x82, 0, 1, 6, 0x9a };
	for (int i = 0; i < 10; i++)
		many.insert(many.end(), { 0xc4, 6, 1, 2, 3, 4, 5, 6 });
	EXPECT_EQ(bad(many), M);
}

TEST(RdvWire, EveryTruncationRejected)
{
	rdv_msg m = full_msg(), d;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t len = rdv_msg_encode(&m, KEY, 0, pkt, sizeof pkt);
	for (size_t n = 0; n < len; n++)
		EXPECT_NE(rdv_msg_decode(pkt, n, &d), 0) << n;
}

TEST(RdvWire, RandomBytesNeverCrash)
{
	std::mt19937_64 rng(42);
	rdv_msg m = full_msg(), d;
	uint8_t good[RDV_MAX_PACKET];
	size_t glen = rdv_msg_encode(&m, KEY, 0, good, sizeof good);
	int accepted = 0;
	for (int it = 0; it < 200000; it++) {
		uint8_t pkt[300];
		size_t len = rng() % sizeof pkt;
		if (it % 2) {
			// Mutations of a valid packet reach deeper into the parser.
			len = glen;
			memcpy(pkt, good, glen);
			for (int k = 0, n = 1 + (int)(rng() % 4); k < n; k++)
				pkt[rng() % glen] = (uint8_t)rng();
		} else {
			for (size_t i = 0; i < len; i++)
				pkt[i] = (uint8_t)rng();
			if (len >= 2) {
				pkt[0] = WIRE_RENDEZVOUS;
				pkt[1] = WIRE_VERSION;
			}
		}
		if (rdv_msg_decode(pkt, len, &d) == 0) {
			accepted++;
			ASSERT_LE(d.cand_count, (size_t)RDV_MAX_ENDPOINTS);
			bool same = len == glen && memcmp(pkt, good, len) == 0;
			EXPECT_EQ(rdv_msg_verify(pkt, len, &d, KEY) == 0, same);
		}
		rdv_record r;
		if (rdv_record_decode(pkt, len, &r) == 0) {
			ASSERT_LE(r.cand_count, (size_t)RDV_MAX_CANDIDATES);
		}
	}
	EXPECT_GT(accepted, 0); // the mutations did exercise the accept path
}

TEST(RdvWire, RecordRoundTrip)
{
	rdv_record r{}, d;
	for (int i = 0; i < 32; i++)
		r.pub[i] = (uint8_t)(i * 7);
	r.reflexive = v4("203.0.113.9", 1234);
	r.cands[0] = v4("10.1.1.1", 4000);
	r.cands[1] = v6("2001:db8::9", 4000);
	r.cand_count = 2;
	r.last_ts = 99;
	r.server_id = UINT64_C(0xfeedfacecafebeef);
	uint8_t b[RDV_MAX_PACKET];
	size_t len = rdv_record_encode(&r, b, sizeof b);
	ASSERT_GT(len, 0u);
	ASSERT_EQ(rdv_record_decode(b, len, &d), 0);
	EXPECT_EQ(0, memcmp(d.pub, r.pub, 32));
	EXPECT_TRUE(rdv_endpoint_equal(&d.reflexive, &r.reflexive));
	ASSERT_EQ(d.cand_count, 2u);
	EXPECT_TRUE(rdv_endpoint_equal(&d.cands[1], &r.cands[1]));
	EXPECT_EQ(d.last_ts, 99u);
	EXPECT_EQ(d.server_id, r.server_id);
	for (size_t n = 0; n < len; n++)
		EXPECT_NE(rdv_record_decode(b, n, &d), 0);
	b[0] ^= 1; // array size
	EXPECT_NE(rdv_record_decode(b, len, &d), 0);
}

TEST(RdvWire, KeysAgreeAndWindowRejectsReplays)
{
	uint8_t a[32], b[32], apub[32], bpub[32];
	for (int i = 0; i < 32; i++) {
		a[i] = (uint8_t)(i + 1);
		b[i] = (uint8_t)(i + 77);
	}
	crypto_scalarmult_base(apub, a);
	crypto_scalarmult_base(bpub, b);
	uint8_t k1[3][32], k2[3][32];
	ASSERT_EQ(rdv_derive_keys(a, bpub, apub, bpub, k1[0], k1[1], k1[2]), 0);
	ASSERT_EQ(rdv_derive_keys(b, apub, apub, bpub, k2[0], k2[1], k2[2]), 0);
	EXPECT_EQ(0, memcmp(k1, k2, sizeof k1));
	EXPECT_NE(0, memcmp(k1[1], k1[2], 32)); // directions differ
	uint8_t zero[32] = { 0 };
	EXPECT_EQ(rdv_derive_keys(a, zero, apub, zero, k1[0], k1[1], k1[2]), SRM_ERR_INVALID);

	rdv_window w{};
	EXPECT_FALSE(rdv_window_accept(&w, 0));
	EXPECT_TRUE(rdv_window_accept(&w, 1));
	EXPECT_FALSE(rdv_window_accept(&w, 1));
	EXPECT_TRUE(rdv_window_accept(&w, 5));
	EXPECT_TRUE(rdv_window_accept(&w, 3)); // reordered, inside the window
	EXPECT_FALSE(rdv_window_accept(&w, 3));
	EXPECT_TRUE(rdv_window_accept(&w, 200));
	EXPECT_FALSE(rdv_window_accept(&w, 100)); // too old
	EXPECT_TRUE(rdv_window_accept(&w, 137 + 62));
}

// Consent tags (issue 18 item 9): the same from both sides, in AUTH and in
// the shared record; a list that is no whole number of tags, or too long,
// is malformed.
TEST(RdvWire, ConsentTagsRoundTrip)
{
	uint8_t a[32], b[32], t1[RDV_TAG_BYTES], t2[RDV_TAG_BYTES];
	memset(a, 1, 32);
	memset(b, 2, 32);
	rdv_pair_tag(a, b, t1);
	rdv_pair_tag(b, a, t2);
	EXPECT_EQ(0, memcmp(t1, t2, RDV_TAG_BYTES));
	b[31] ^= 1;
	rdv_pair_tag(a, b, t2);
	EXPECT_NE(0, memcmp(t1, t2, RDV_TAG_BYTES));

	rdv_msg m{}, d;
	m.kind = RDV_AUTH;
	m.present = 1u << RDV_F_ALLOW;
	m.allow_count = RDV_MAX_ALLOW;
	for (size_t i = 0; i < sizeof m.allow; i++)
		m.allow[i] = (uint8_t)(i * 13);
	uint8_t pkt[RDV_MAX_PACKET], key[32] = { 9 };
	size_t len = rdv_msg_encode(&m, key, 0, pkt, sizeof pkt);
	ASSERT_GT(len, 0u);
	ASSERT_EQ(rdv_msg_decode(pkt, len, &d), 0);
	ASSERT_EQ(d.allow_count, (size_t)RDV_MAX_ALLOW);
	EXPECT_EQ(0, memcmp(d.allow, m.allow, sizeof m.allow));
	EXPECT_TRUE(rdv_tags_have(d.allow, d.allow_count, m.allow + 42 * RDV_TAG_BYTES));
	EXPECT_FALSE(rdv_tags_have(d.allow, d.allow_count, t1));

	// 7 bytes: not a whole tag.
	const uint8_t bad[] = { 8, 1, 0, 0, 0x82, 0, 3, 13, 0xc4, 7, 1, 2, 3, 4, 5, 6, 7 };
	EXPECT_NE(rdv_msg_decode(bad, sizeof bad, &d), 0);

	rdv_record r{}, rd;
	r.reflexive = v4("203.0.113.9", 1234);
	r.allow_count = 3;
	memcpy(r.allow, m.allow, 3 * RDV_TAG_BYTES);
	len = rdv_record_encode(&r, pkt, sizeof pkt);
	ASSERT_GT(len, 0u);
	ASSERT_EQ(rdv_record_decode(pkt, len, &rd), 0);
	ASSERT_EQ(rd.allow_count, 3u);
	EXPECT_EQ(0, memcmp(rd.allow, r.allow, 3 * RDV_TAG_BYTES));
}
