// replay_test.cc — RFC 6479 window against a straightforward model.
#include <gtest/gtest.h>

#include <set>

extern "C" {
#include "replay.h"
}

namespace {

TEST(Replay, InOrderDuplicatesAndReordering)
{
	struct replay_window r;
	replay_init(&r);
	for (uint64_t i = 0; i < 100; i++)
		ASSERT_EQ(replay_accept(&r, i), 0);
	for (uint64_t i = 0; i < 100; i++) {
		EXPECT_EQ(replay_check(&r, i), -1);
		EXPECT_EQ(replay_accept(&r, i), -1);
	}
	EXPECT_EQ(replay_accept(&r, 200), 0);
	for (uint64_t i = 199; i >= 100; i--)
		EXPECT_EQ(replay_accept(&r, i), 0) << i;
	EXPECT_EQ(replay_accept(&r, 150), -1);
}

TEST(Replay, FirstNumberMayBeLarge)
{
	// Packet numbers continue across rekeys: a new keypair's first packet
	// can be far from zero.
	struct replay_window r;
	replay_init(&r);
	EXPECT_EQ(replay_accept(&r, 1000000), 0);
	EXPECT_EQ(replay_accept(&r, 1000000), -1);
	EXPECT_EQ(replay_accept(&r, 999999), 0);
	// The window reaches REPLAY_WINDOW behind top (highest + 1).
	EXPECT_EQ(replay_accept(&r, 1000001 - REPLAY_WINDOW), 0);
	EXPECT_EQ(replay_accept(&r, 1000000 - REPLAY_WINDOW), -1); // just too old
}

TEST(Replay, WindowEdgesAndBigJumps)
{
	struct replay_window r;
	replay_init(&r);
	ASSERT_EQ(replay_accept(&r, 0), 0);
	ASSERT_EQ(replay_accept(&r, REPLAY_WINDOW), 0);
	// top is REPLAY_WINDOW + 1: 1 is exactly REPLAY_WINDOW behind.
	EXPECT_EQ(replay_check(&r, 1), 0);
	EXPECT_EQ(replay_check(&r, 0), -1);
	EXPECT_GE(REPLAY_WINDOW, 2048);
	// A jump far beyond the ring forgets everything older.
	ASSERT_EQ(replay_accept(&r, 10 * REPLAY_BITS), 0);
	EXPECT_EQ(replay_check(&r, 10 * REPLAY_BITS - 1), 0);
	EXPECT_EQ(replay_check(&r, REPLAY_WINDOW), -1);
	EXPECT_EQ(replay_accept(&r, UINT64_MAX), -1);
}

TEST(Replay, MatchesModelOnRandomTraffic)
{
	struct replay_window r;
	replay_init(&r);
	std::set<uint64_t> seen;
	uint64_t top = 0, s = 12345;
	auto rnd = [&]() {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		return s;
	};
	for (int i = 0; i < 300000; i++) {
		uint64_t x = rnd();
		uint64_t base = top + 5;
		uint64_t pn;
		switch (x % 8) {
		case 0: pn = base + x % 20000; break;              // jump ahead
		case 1: pn = top > 9000 ? top - 9000 + (x >> 8) % 1000 : 0; break; // near the edge
		default: pn = base > 3000 ? base - (x >> 8) % 3000 : (x >> 8) % (base + 1); break;
		}
		bool fresh = !seen.count(pn) && (pn >= top || top - pn <= REPLAY_WINDOW);
		int rc = replay_accept(&r, pn);
		ASSERT_EQ(rc == 0, fresh) << "pn " << pn << " top " << top;
		if (fresh) {
			seen.insert(pn);
			if (pn + 1 > top)
				top = pn + 1;
		}
		// Keep the model small: forget what can no longer matter.
		while (!seen.empty() && *seen.begin() + REPLAY_BITS * 2 < top)
			seen.erase(seen.begin());
	}
}

} // namespace
