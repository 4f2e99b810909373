// ratelimit_test.cc — token buckets per source, bounded table; the limit
// on failed DATA authentications.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string.h>

extern "C" {
#include "ratelimit.h"
}

namespace {

struct sockaddr_in v4(uint32_t ip, uint16_t port)
{
	struct sockaddr_in a = {};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(ip);
	a.sin_port = htons(port);
	return a;
}

struct sockaddr_in6 v6(const char *text, uint16_t port)
{
	struct sockaddr_in6 a = {};
	a.sin6_family = AF_INET6;
	inet_pton(AF_INET6, text, &a.sin6_addr);
	a.sin6_port = htons(port);
	return a;
}

const uint8_t KEY[16] = {1, 2, 3};

int allow(struct ratelimit *rl, const void *a, size_t len, uint64_t now)
{
	return ratelimit_allow(rl, (const struct sockaddr *)a, (socklen_t)len, now);
}

TEST(Ratelimit, BurstThenRefill)
{
	struct ratelimit *rl = ratelimit_new_keyed(KEY, 20, 5);
	auto a = v4(0x0a000001, 1);
	for (int i = 0; i < 5; i++)
		EXPECT_TRUE(allow(rl, &a, sizeof(a), 1000)) << i;
	EXPECT_FALSE(allow(rl, &a, sizeof(a), 1000));
	EXPECT_FALSE(allow(rl, &a, sizeof(a), 1049)); // 0.98 of a token
	EXPECT_TRUE(allow(rl, &a, sizeof(a), 1050));  // 20/s: one per 50 ms
	EXPECT_FALSE(allow(rl, &a, sizeof(a), 1050));
	// Long idle refills only up to the burst.
	int n = 0;
	while (allow(rl, &a, sizeof(a), 100000))
		n++;
	EXPECT_EQ(n, 5);
	// Over a long run the rate holds: 20 per second.
	int ok = 0;
	for (uint64_t t = 200000; t < 210000; t++)
		ok += allow(rl, &a, sizeof(a), t);
	EXPECT_GE(ok, 200);
	EXPECT_LE(ok, 206);
	ratelimit_free(rl);
}

TEST(Ratelimit, SourcesAreIndependentPortsAreNot)
{
	struct ratelimit *rl = ratelimit_new_keyed(KEY, 1, 2);
	auto a = v4(0x0a000001, 1), a2 = v4(0x0a000001, 2), b = v4(0x0a000002, 1);
	EXPECT_TRUE(allow(rl, &a, sizeof(a), 0));
	EXPECT_TRUE(allow(rl, &a2, sizeof(a2), 0)); // same host, another port
	EXPECT_FALSE(allow(rl, &a, sizeof(a), 0));
	EXPECT_TRUE(allow(rl, &b, sizeof(b), 0));
	// IPv6 counts per /64; a v4-mapped address is the IPv4 host.
	auto x = v6("2001:db8:1:2::1", 1), y = v6("2001:db8:1:2:ffff::9", 1), z = v6("2001:db8:1:3::1", 1);
	EXPECT_TRUE(allow(rl, &x, sizeof(x), 0));
	EXPECT_TRUE(allow(rl, &y, sizeof(y), 0));
	EXPECT_FALSE(allow(rl, &x, sizeof(x), 0));
	EXPECT_TRUE(allow(rl, &z, sizeof(z), 0));
	auto m = v6("::ffff:10.0.0.2", 7);
	EXPECT_TRUE(allow(rl, &m, sizeof(m), 0));
	EXPECT_FALSE(allow(rl, &b, sizeof(b), 0));
	// Unknown families and short addresses are refused.
	struct sockaddr un = {};
	un.sa_family = AF_UNIX;
	EXPECT_FALSE(allow(rl, &un, sizeof(un), 0));
	EXPECT_FALSE(allow(rl, &a, 4, 0));
	ratelimit_free(rl);
}

TEST(Ratelimit, MemoryBoundedUnderSpoofing)
{
	struct ratelimit *rl = ratelimit_new();
	auto victim = v4(0xc0a80001, 1);
	for (int i = 0; i < RATELIMIT_BURST; i++)
		EXPECT_TRUE(allow(rl, &victim, sizeof(victim), 0));
	EXPECT_FALSE(allow(rl, &victim, sizeof(victim), 0));
	for (uint32_t i = 0; i < 200000; i++) {
		auto a = v4(0x0b000000 + i, 1);
		EXPECT_TRUE(allow(rl, &a, sizeof(a), 1 + i / 1000));
		ASSERT_LE(ratelimit_count(rl), (size_t)RATELIMIT_SETS * RATELIMIT_WAYS);
	}
	EXPECT_EQ(ratelimit_count(rl), (size_t)RATELIMIT_SETS * RATELIMIT_WAYS);
	ratelimit_free(rl);
}

TEST(AuthLimit, PlausibleNumbersFollowWhatAuthenticated)
{
	struct auth_seen s = {};
	// Keys not seen yet: numbers from 0 up to AUTH_PLAUSIBLE_AHEAD.
	EXPECT_TRUE(auth_seen_plausible(&s, 7, 0));
	EXPECT_TRUE(auth_seen_plausible(&s, 7, AUTH_PLAUSIBLE_AHEAD - 1));
	EXPECT_FALSE(auth_seen_plausible(&s, 7, AUTH_PLAUSIBLE_AHEAD));
	EXPECT_FALSE(auth_seen_plausible(&s, 7, UINT64_C(0x8c3a9f0e11d2b4a7))); // a random counter
	auth_seen_note(&s, 7, 5000000);
	EXPECT_TRUE(auth_seen_plausible(&s, 7, 12)); // below: the replay window's call
	EXPECT_TRUE(auth_seen_plausible(&s, 7, 5000000 + AUTH_PLAUSIBLE_AHEAD));
	EXPECT_FALSE(auth_seen_plausible(&s, 7, 5000001 + AUTH_PLAUSIBLE_AHEAD));
	EXPECT_FALSE(auth_seen_plausible(&s, 9, 5000000)); // other keys start at 0
	// A rekey: the new keys, then a late packet under the old ones, which
	// must not push the new keys out.
	auth_seen_note(&s, 9, 0);
	auth_seen_note(&s, 7, 5000100);
	auth_seen_note(&s, 9, 3000000);
	EXPECT_TRUE(auth_seen_plausible(&s, 9, 3000000 + AUTH_PLAUSIBLE_AHEAD));
	EXPECT_TRUE(auth_seen_plausible(&s, 7, 5000100 + AUTH_PLAUSIBLE_AHEAD));
	// The next rekey replaces the oldest keys (7).
	auth_seen_note(&s, 11, 1);
	EXPECT_FALSE(auth_seen_plausible(&s, 7, 5000100));
	EXPECT_TRUE(auth_seen_plausible(&s, 9, 3000000 + AUTH_PLAUSIBLE_AHEAD));
	// No overflow near the end of the number space.
	auth_seen_note(&s, 11, UINT64_MAX - 2);
	EXPECT_TRUE(auth_seen_plausible(&s, 11, UINT64_MAX - 1));
	EXPECT_TRUE(auth_seen_plausible(&s, 11, 0));
}

TEST(AuthLimit, OnlyFailuresCountAndOnlyImplausibleNumbersWait)
{
	struct auth_limit l = {};
	EXPECT_TRUE(auth_limit_may_open(&l, 0, 1000));
	// Successes take nothing: a real peer never uses this up.
	for (int i = 0; i < 10 * AUTH_FAIL_BURST; i++)
		ASSERT_TRUE(auth_limit_may_open(&l, 1, 1000));
	for (int i = 0; i < AUTH_FAIL_BURST; i++) {
		ASSERT_TRUE(auth_limit_may_open(&l, 0, 1000)) << i;
		auth_limit_failed(&l, 1000);
	}
	EXPECT_FALSE(auth_limit_may_open(&l, 0, 1000));
	EXPECT_TRUE(auth_limit_may_open(&l, 1, 1000)); // plausible: always opened
	EXPECT_TRUE(auth_limit_may_open(&l, 0, 1001)); // 20 per ms refilled
	// A flood of 100 failing implausible packets a millisecond for 10 s:
	// about AUTH_FAIL_PER_SEC of them opened each second.
	int opened = 0;
	for (uint64_t t = 2000; t < 12000; t++)
		for (int i = 0; i < 100; i++)
			if (auth_limit_may_open(&l, 0, t)) {
				opened++;
				auth_limit_failed(&l, t);
			}
	EXPECT_GE(opened, 10 * AUTH_FAIL_PER_SEC);
	EXPECT_LE(opened, 10 * AUTH_FAIL_PER_SEC + AUTH_FAIL_BURST);
}

} // namespace
