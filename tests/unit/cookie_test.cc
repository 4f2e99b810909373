// cookie_test.cc — mac1/mac2, cookie replies, and the handshake guard.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <vector>

extern "C" {
#include "cookie.h"
#include "noise.h"
}

namespace {

struct CookieGuard : ::testing::Test {
	struct identity me, peer;
	uint8_t ss[32];
	struct sockaddr_in src = {};
	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		uint8_t a[32], b[32];
		randombytes_buf(a, 32);
		randombytes_buf(b, 32);
		ASSERT_EQ(identity_init(&me, a), 0);
		ASSERT_EQ(identity_init(&peer, b), 0);
		ASSERT_EQ(noise_precompute_ss(&peer, me.pub, ss), 0);
		src.sin_family = AF_INET;
		src.sin_addr.s_addr = htonl(0x0a000009);
		src.sin_port = htons(4000);
	}
	void TearDown() override
	{
		identity_wipe(&me);
		identity_wipe(&peer);
	}
	// An INIT from peer to me, with mac2 under cookie (or zeros).
	std::vector<uint8_t> init(const uint8_t *cookie = nullptr, uint8_t *mac1 = nullptr)
	{
		std::vector<uint8_t> p(INIT_BYTES);
		uint8_t e[32];
		randombytes_buf(e, 32);
		struct noise_handshake hs;
		struct noise_payload pl = {1, 2, 0, 1, 1};
		struct noise_init_prep prep;
		EXPECT_EQ(noise_prepare_init(&peer, me.pub, ss, e, &prep), 0);
		noise_create_init(&prep, 42, &pl, &hs, p.data());
		uint8_t k1[32], kc[32];
		cookie_derive_keys(me.pub, k1, kc);
		cookie_add_macs(p.data(), p.size(), k1, cookie, mac1);
		noise_handshake_wipe(&hs);
		return p;
	}
	const struct sockaddr *sa() { return (const struct sockaddr *)&src; }
};

TEST_F(CookieGuard, Mac1CoversEveryByteBeforeIt)
{
	auto p = init();
	EXPECT_EQ(cookie_check_mac1(p.data(), p.size(), me.mac1_key), 0);
	EXPECT_EQ(cookie_check_mac1(p.data(), p.size(), peer.mac1_key), SRM_ERR_AUTH);
	for (size_t i = 0; i < INIT_OFF_MAC2; i++) {
		p[i] ^= 4;
		EXPECT_EQ(cookie_check_mac1(p.data(), p.size(), me.mac1_key), SRM_ERR_AUTH) << i;
		p[i] ^= 4;
	}
	p[INIT_OFF_MAC2] ^= 4; // mac2 is outside mac1
	EXPECT_EQ(cookie_check_mac1(p.data(), p.size(), me.mac1_key), 0);
	EXPECT_EQ(cookie_mac1_offset(p.data(), p.size() - 1), 0u);
	EXPECT_EQ(cookie_check_mac1(p.data(), p.size() - 1, me.mac1_key), SRM_ERR_AUTH);
}

TEST_F(CookieGuard, CookieBoundToAddressAndPort)
{
	uint8_t secret[32] = {9}, c1[16], c2[16], c3[16], c4[16];
	ASSERT_EQ(cookie_compute(c1, secret, sa(), sizeof(src)), 0);
	struct sockaddr_in other = src;
	other.sin_port = htons(4001);
	ASSERT_EQ(cookie_compute(c2, secret, (struct sockaddr *)&other, sizeof(other)), 0);
	other = src;
	other.sin_addr.s_addr ^= htonl(1);
	ASSERT_EQ(cookie_compute(c3, secret, (struct sockaddr *)&other, sizeof(other)), 0);
	secret[0] ^= 1;
	ASSERT_EQ(cookie_compute(c4, secret, sa(), sizeof(src)), 0);
	EXPECT_NE(memcmp(c1, c2, 16), 0);
	EXPECT_NE(memcmp(c1, c3, 16), 0);
	EXPECT_NE(memcmp(c1, c4, 16), 0);
	struct sockaddr_in6 six = {};
	six.sin6_family = AF_INET6;
	six.sin6_port = htons(4000);
	EXPECT_EQ(cookie_compute(c1, secret, (struct sockaddr *)&six, sizeof(six)), 0);
	struct sockaddr un = {};
	un.sa_family = AF_UNIX;
	EXPECT_EQ(cookie_compute(c1, secret, &un, sizeof(un)), SRM_ERR_INVALID);
}

TEST_F(CookieGuard, ReplyOnlyOpensForTheMessageItAnswers)
{
	uint8_t mac1[16], cookie[16] = {7, 7, 7}, nonce[24] = {1}, got[16];
	auto p = init(nullptr, mac1);
	uint8_t reply[COOKIE_REPLY_BYTES];
	cookie_create_reply(reply, 42, nonce, cookie, me.cookie_key, mac1);
	uint8_t k1[32], kc[32];
	cookie_derive_keys(me.pub, k1, kc);
	ASSERT_EQ(cookie_open_reply(reply, sizeof(reply), kc, mac1, got), 0);
	EXPECT_EQ(memcmp(got, cookie, 16), 0);
	mac1[0] ^= 1; // another message's mac1: a blind reply is useless
	EXPECT_EQ(cookie_open_reply(reply, sizeof(reply), kc, mac1, got), SRM_DROP_CODE(SRM_DROP_AUTH));
	mac1[0] ^= 1;
	EXPECT_EQ(cookie_open_reply(reply, sizeof(reply), peer.cookie_key, mac1, got),
		  SRM_DROP_CODE(SRM_DROP_AUTH));
	for (size_t i = 4; i < sizeof(reply); i++) {
		reply[i] ^= 1;
		int rc = cookie_open_reply(reply, sizeof(reply), kc, mac1, got);
		// The receiver index is not covered: the session checks it.
		if (i >= COOKIE_OFF_NONCE) {
			EXPECT_EQ(rc, SRM_DROP_CODE(SRM_DROP_AUTH)) << i;
		}
		reply[i] ^= 1;
	}
	EXPECT_EQ(cookie_open_reply(reply, sizeof(reply) - 1, kc, mac1, got),
		  SRM_DROP_CODE(SRM_DROP_MALFORMED));
	reply[1] = 9;
	EXPECT_EQ(cookie_open_reply(reply, sizeof(reply), kc, mac1, got), SRM_DROP_CODE(SRM_DROP_VERSION));
	EXPECT_LT(COOKIE_REPLY_BYTES, RESP_BYTES);
	EXPECT_LT(RESP_BYTES, INIT_BYTES);
}

TEST_F(CookieGuard, ChecksBeforeAnyDh)
{
	struct handshake_guard *g = handshake_guard_new(&me);
	uint8_t reply[COOKIE_REPLY_BYTES];
	size_t rl = 99;
	auto p = init();
	EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), sa(), sizeof(src), 0, reply, &rl), 0);
	EXPECT_EQ(rl, 0u);
	auto bad = p;
	bad[INIT_OFF_MAC1] ^= 1;
	EXPECT_EQ(handshake_guard_check(g, bad.data(), bad.size(), sa(), sizeof(src), 0, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_MAC));
	bad = p;
	bad[1] = 2;
	EXPECT_EQ(handshake_guard_check(g, bad.data(), bad.size(), sa(), sizeof(src), 0, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_VERSION));
	bad = p;
	bad[0] = WIRE_DATA;
	EXPECT_EQ(handshake_guard_check(g, bad.data(), bad.size(), sa(), sizeof(src), 0, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_MALFORMED));
	EXPECT_EQ(handshake_guard_check(g, p.data(), 3, sa(), sizeof(src), 0, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_MALFORMED));
	EXPECT_EQ(handshake_guard_check(g, p.data(), p.size() - 1, sa(), sizeof(src), 0, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_MALFORMED));
	handshake_guard_free(g);
}

TEST_F(CookieGuard, RateLimitPerSource)
{
	struct handshake_guard_config cfg = {};
	cfg.rate_per_sec = 2;
	cfg.rate_burst = 3;
	struct handshake_guard *g = handshake_guard_new_config(&me, &cfg);
	uint8_t reply[COOKIE_REPLY_BYTES];
	size_t rl;
	auto p = init();
	for (int i = 0; i < 3; i++)
		EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), sa(), sizeof(src), 0, reply, &rl), 0);
	EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), sa(), sizeof(src), 0, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_RATELIMIT));
	EXPECT_EQ(rl, 0u); // no reply to a rate-limited source
	struct sockaddr_in other = src;
	other.sin_addr.s_addr ^= htonl(0x100);
	EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), (struct sockaddr *)&other,
					sizeof(other), 0, reply, &rl), 0);
	EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), sa(), sizeof(src), 500, reply, &rl), 0);
	handshake_guard_free(g);
}

TEST_F(CookieGuard, UnderLoadCookieRoundTripAndRotation)
{
	struct handshake_guard_config cfg = {};
	cfg.load_per_sec = 5;
	struct handshake_guard *g = handshake_guard_new_config(&me, &cfg);
	uint8_t reply[COOKIE_REPLY_BYTES];
	size_t rl;
	uint64_t now = 10000;
	for (int i = 0; i < 5; i++) {
		auto p = init();
		EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), sa(), sizeof(src), now, reply, &rl), 0);
	}
	EXPECT_FALSE(handshake_guard_under_load(g, now));
	uint8_t mac1[16];
	auto p = init(nullptr, mac1);
	EXPECT_EQ(handshake_guard_check(g, p.data(), p.size(), sa(), sizeof(src), now, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_COOKIE));
	EXPECT_TRUE(handshake_guard_under_load(g, now));
	ASSERT_EQ(rl, (size_t)COOKIE_REPLY_BYTES);
	EXPECT_LT(rl, p.size());
	EXPECT_EQ(get_le32(reply + COOKIE_OFF_RECEIVER), 42u);
	uint8_t k1[32], kc[32], cookie[16];
	cookie_derive_keys(me.pub, k1, kc);
	ASSERT_EQ(cookie_open_reply(reply, rl, kc, mac1, cookie), 0);
	// With the cookie in mac2 the same source gets through.
	auto q = init(cookie);
	EXPECT_EQ(handshake_guard_check(g, q.data(), q.size(), sa(), sizeof(src), now + 10, reply, &rl), 0);
	EXPECT_EQ(rl, 0u);
	// ...but not from another port,
	struct sockaddr_in other = src;
	other.sin_port = htons(4001);
	EXPECT_EQ(handshake_guard_check(g, q.data(), q.size(), (struct sockaddr *)&other, sizeof(other),
					now + 10, reply, &rl), SRM_DROP_CODE(SRM_DROP_COOKIE));
	// ...and not after the secret rotated (still under load then).
	uint64_t later = now + COOKIE_SECRET_MAX_AGE_MS;
	for (int i = 0; i < 6; i++) {
		auto f = init();
		int rc = handshake_guard_check(g, f.data(), f.size(), sa(), sizeof(src), later, reply, &rl);
		EXPECT_TRUE(rc == 0 || rc == SRM_DROP_CODE(SRM_DROP_COOKIE));
	}
	ASSERT_TRUE(handshake_guard_under_load(g, later));
	EXPECT_EQ(handshake_guard_check(g, q.data(), q.size(), sa(), sizeof(src), later, reply, &rl),
		  SRM_DROP_CODE(SRM_DROP_COOKIE));
	// Load passes two windows after the flood.
	EXPECT_FALSE(handshake_guard_under_load(g, later + 2000));
	auto r = init();
	EXPECT_EQ(handshake_guard_check(g, r.data(), r.size(), sa(), sizeof(src), later + 2000, reply, &rl), 0);
	handshake_guard_free(g);
}

} // namespace
