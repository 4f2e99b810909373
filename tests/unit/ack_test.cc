// ack_test.cc — ACK tracker, ACK frame encoding and hostile-input parsing.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <vector>

extern "C" {
#include "ack.h"
#include "wire.h"
}

namespace {

// Set of packet numbers a parsed frame acknowledges.
std::set<uint64_t> covered(const ack_ranges &a)
{
	std::set<uint64_t> s;
	for (size_t i = 0; i < a.count; i++)
		for (uint64_t pn = a.r[i].lo; pn <= a.r[i].hi; pn++)
			s.insert(pn);
	return s;
}

size_t put(std::vector<uint8_t> &b, uint64_t v)
{
	uint8_t tmp[8];
	size_t n = varint_put(tmp, sizeof tmp, v);
	b.insert(b.end(), tmp, tmp + n);
	return n;
}

} // namespace

TEST(Ack, SinglePacketRoundTrip)
{
	ack_tracker t;
	ack_tracker_init(&t);
	EXPECT_EQ(ack_tracker_deadline(&t), UINT64_MAX);
	EXPECT_EQ(ack_tracker_on_packet(&t, 0, true, 1000), 1);
	uint8_t buf[64];
	size_t n = ack_frame_write(&t, 1700, buf, sizeof buf);
	ASSERT_GT(n, 0u);
	ack_ranges a;
	size_t used = 0;
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	EXPECT_EQ(used, n);
	EXPECT_EQ(a.largest, 0u);
	EXPECT_EQ(a.ack_delay_us, 700u);
	ASSERT_EQ(a.count, 1u);
	EXPECT_EQ(a.r[0].lo, 0u);
	EXPECT_EQ(a.r[0].hi, 0u);
}

TEST(Ack, RangesMergeAndRoundTrip)
{
	ack_tracker t;
	ack_tracker_init(&t);
	// 1..5, 8, 10..12, then fill 9 so 8..12 merge; 7 stays missing.
	for (uint64_t pn : {1, 2, 3, 4, 5, 8, 10, 11, 12, 9})
		EXPECT_EQ(ack_tracker_on_packet(&t, pn, true, 0), 1);
	EXPECT_EQ(ack_tracker_on_packet(&t, 4, true, 0), 0) << "duplicate";
	ASSERT_EQ(t.count, 2u);
	uint8_t buf[128];
	size_t n = ack_frame_write(&t, 0, buf, sizeof buf);
	ack_ranges a;
	size_t used;
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	ASSERT_EQ(a.count, 2u);
	EXPECT_EQ(a.r[0].lo, 8u);
	EXPECT_EQ(a.r[0].hi, 12u);
	EXPECT_EQ(a.r[1].lo, 1u);
	EXPECT_EQ(a.r[1].hi, 5u);
	// Filling the last hole leaves one range.
	ack_tracker_on_packet(&t, 6, true, 0);
	ack_tracker_on_packet(&t, 7, true, 0);
	ack_tracker_on_packet(&t, 0, true, 0);
	ASSERT_EQ(t.count, 1u);
	EXPECT_EQ(t.r[0].lo, 0u);
	EXPECT_EQ(t.r[0].hi, 12u);
}

TEST(Ack, RandomArrivalsMatchModel)
{
	// Random arrivals (loss, reordering, duplication): whatever the
	// tracker reports must be exactly the received set restricted to
	// the remembered window.
	for (unsigned seed = 1; seed <= 200; seed++) {
		std::mt19937_64 rng(seed);
		ack_tracker t;
		ack_tracker_init(&t);
		std::set<uint64_t> got;
		uint64_t next = 0;
		for (int i = 0; i < 300; i++) {
			uint64_t pn;
			if (rng() % 5 == 0 && next > 0)
				pn = next - 1 - rng() % std::min<uint64_t>(next, 20);
			else
				pn = next++ + (rng() % 7 == 0 ? 1 : 0);
			if (rng() % 10 == 0)
				continue; // lost
			next = std::max(next, pn + 1);
			got.insert(pn);
			ack_tracker_on_packet(&t, pn, true, i);
		}
		uint8_t buf[ACK_FRAME_MAX_BYTES];
		size_t n = ack_frame_write(&t, 300, buf, sizeof buf);
		ASSERT_GT(n, 0u);
		ack_ranges a;
		size_t used;
		ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0) << seed;
		ASSERT_EQ(used, n);
		ASSERT_LE(a.count, (size_t)ACK_MAX_RANGES);
		std::set<uint64_t> rep = covered(a);
		uint64_t lowest = a.r[a.count - 1].lo;
		std::set<uint64_t> want;
		for (uint64_t pn : got)
			if (pn >= lowest)
				want.insert(pn);
		ASSERT_EQ(rep, want) << "seed " << seed;
		EXPECT_EQ(a.largest, *got.rbegin());
	}
}

TEST(Ack, RangeBoundDropsOldest)
{
	ack_tracker t;
	ack_tracker_init(&t);
	// Every other packet: one range per packet.
	for (uint64_t pn = 0; pn < 2 * (ACK_MAX_RANGES + 10); pn += 2)
		ack_tracker_on_packet(&t, pn, false, 0);
	EXPECT_EQ(t.count, (size_t)ACK_MAX_RANGES);
	EXPECT_EQ(t.r[0].hi, 2u * (ACK_MAX_RANGES + 9));
	EXPECT_EQ(t.r[ACK_MAX_RANGES - 1].lo, 20u) << "oldest 10 forgotten";
	// A packet older than every remembered range is not added.
	EXPECT_EQ(ack_tracker_on_packet(&t, 1, true, 0), 0);
	EXPECT_EQ(t.count, (size_t)ACK_MAX_RANGES);
	// Full frame still encodes and parses.
	uint8_t buf[ACK_FRAME_MAX_BYTES];
	size_t n = ack_frame_write(&t, 0, buf, sizeof buf);
	ack_ranges a;
	size_t used;
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	EXPECT_EQ(a.count, (size_t)ACK_MAX_RANGES);
}

TEST(Ack, SmallBufferWritesNewestRanges)
{
	ack_tracker t;
	ack_tracker_init(&t);
	for (uint64_t pn = 0; pn < 40; pn += 2)
		ack_tracker_on_packet(&t, pn, true, 0);
	uint8_t buf[12];
	size_t n = ack_frame_write(&t, 0, buf, sizeof buf);
	ASSERT_GT(n, 0u);
	ASSERT_LE(n, sizeof buf);
	ack_ranges a;
	size_t used;
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	EXPECT_EQ(a.largest, 38u);
	EXPECT_GE(a.count, 2u);
	EXPECT_LT(a.count, 20u);
	EXPECT_EQ(a.r[a.count - 1].lo, 38u - 2 * (a.count - 1));
	uint8_t tiny[2];
	EXPECT_EQ(ack_frame_write(&t, 0, tiny, sizeof tiny), 0u);
}

TEST(Ack, DelayedAckTiming)
{
	ack_tracker t;
	ack_tracker_init(&t);
	// A non-eliciting packet never arms the timer.
	ack_tracker_on_packet(&t, 0, false, 100);
	EXPECT_EQ(ack_tracker_deadline(&t), UINT64_MAX);
	EXPECT_TRUE(ack_tracker_pending(&t));
	// One eliciting in order: wait max_ack_delay.
	ack_tracker_on_packet(&t, 1, true, 1000);
	EXPECT_EQ(ack_tracker_deadline(&t), 1000u + ACK_MAX_DELAY_US);
	EXPECT_FALSE(ack_tracker_due(&t, 1000 + ACK_MAX_DELAY_US - 1));
	EXPECT_TRUE(ack_tracker_due(&t, 1000 + ACK_MAX_DELAY_US));
	// The second eliciting packet makes it due at once.
	ack_tracker_on_packet(&t, 2, true, 2000);
	EXPECT_TRUE(ack_tracker_due(&t, 2000));
	uint8_t buf[64];
	ASSERT_GT(ack_frame_write(&t, 2000, buf, sizeof buf), 0u);
	EXPECT_EQ(ack_tracker_deadline(&t), UINT64_MAX);
	EXPECT_FALSE(ack_tracker_pending(&t));
}

TEST(Ack, GapOrReorderIsImmediate)
{
	ack_tracker t;
	ack_tracker_init(&t);
	uint8_t buf[64];
	ack_tracker_on_packet(&t, 0, true, 0);
	ack_frame_write(&t, 0, buf, sizeof buf);
	ack_tracker_on_packet(&t, 5, true, 10); // gap 1..4
	EXPECT_EQ(ack_tracker_deadline(&t), 10u);
	ack_frame_write(&t, 10, buf, sizeof buf);
	ack_tracker_on_packet(&t, 3, true, 20); // reordered
	EXPECT_EQ(ack_tracker_deadline(&t), 20u);
	ack_frame_write(&t, 20, buf, sizeof buf);
	ack_tracker_on_packet(&t, 6, true, 30); // in order again
	EXPECT_EQ(ack_tracker_deadline(&t), 30u + ACK_MAX_DELAY_US);
}

TEST(Ack, AckDelayFromLargest)
{
	ack_tracker t;
	ack_tracker_init(&t);
	ack_tracker_on_packet(&t, 10, true, 5000);
	ack_tracker_on_packet(&t, 7, true, 9000); // older: does not reset the clock
	uint8_t buf[64];
	size_t n = ack_frame_write(&t, 12000, buf, sizeof buf);
	ack_ranges a;
	size_t used;
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	EXPECT_EQ(a.ack_delay_us, 7000u);
}

TEST(Ack, ForgetBelow)
{
	ack_tracker t;
	ack_tracker_init(&t);
	for (uint64_t pn : {1, 2, 3, 5, 6, 9})
		ack_tracker_on_packet(&t, pn, true, 0);
	ack_tracker_forget_below(&t, 6);
	ASSERT_EQ(t.count, 2u);
	EXPECT_EQ(t.r[1].lo, 6u);
	EXPECT_EQ(t.r[1].hi, 6u);
	EXPECT_EQ(t.r[0].lo, 9u);
}

TEST(Ack, EncodeRejectsMalformedRanges)
{
	ack_ranges a = {};
	uint8_t buf[64];
	a.largest = 10;
	a.count = 2;
	a.r[0] = {8, 10};
	a.r[1] = {5, 7}; // adjacent: would need gap -1
	EXPECT_EQ(ack_frame_encode(&a, buf, sizeof buf), 0u);
	a.r[1] = {5, 9}; // overlapping
	EXPECT_EQ(ack_frame_encode(&a, buf, sizeof buf), 0u);
	a.r[1] = {6, 5}; // lo > hi
	EXPECT_EQ(ack_frame_encode(&a, buf, sizeof buf), 0u);
	a.r[1] = {0, 6};
	EXPECT_GT(ack_frame_encode(&a, buf, sizeof buf), 0u);
	a.largest = 11; // r[0].hi must equal largest
	EXPECT_EQ(ack_frame_encode(&a, buf, sizeof buf), 0u);
}

TEST(Ack, ParseRejectsTruncation)
{
	ack_tracker t;
	ack_tracker_init(&t);
	for (uint64_t pn : {100, 200, 300, 20000})
		ack_tracker_on_packet(&t, pn, true, 0);
	uint8_t buf[128];
	size_t n = ack_frame_write(&t, 1u << 20, buf, sizeof buf);
	ASSERT_GT(n, 0u);
	ack_ranges a;
	size_t used;
	for (size_t len = 0; len < n; len++)
		EXPECT_EQ(ack_frame_parse(buf, len, &a, &used), SRM_ERR_INVALID) << len;
	EXPECT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	// Trailing bytes belong to the next frame.
	buf[n] = FRAME_PING;
	ASSERT_EQ(ack_frame_parse(buf, n + 1, &a, &used), 0);
	EXPECT_EQ(used, n);
	buf[0] = FRAME_PING;
	EXPECT_EQ(ack_frame_parse(buf, n, &a, &used), SRM_ERR_INVALID);
}

TEST(Ack, ParseRejectsUnderflow)
{
	ack_ranges a;
	size_t used;
	{ // first range below zero: largest 5, first_range 6
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, 5); put(b, 0); put(b, 0); put(b, 6);
		EXPECT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), SRM_ERR_INVALID);
	}
	{ // first range exactly to zero is fine
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, 5); put(b, 0); put(b, 0); put(b, 5);
		ASSERT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), 0);
		EXPECT_EQ(a.r[0].lo, 0u);
	}
	{ // gap pushes below zero: [3,5], gap 2 -> hi = 3-2-2 < 0
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, 5); put(b, 0); put(b, 1); put(b, 2); put(b, 2); put(b, 0);
		EXPECT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), SRM_ERR_INVALID);
	}
	{ // gap ok, range_len below zero: [3,5], gap 0 -> hi 1, len 2
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, 5); put(b, 0); put(b, 1); put(b, 2); put(b, 0); put(b, 2);
		EXPECT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), SRM_ERR_INVALID);
	}
	{ // same with len 1: [3,5] and [0,1]
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, 5); put(b, 0); put(b, 1); put(b, 2); put(b, 0); put(b, 1);
		ASSERT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), 0);
		ASSERT_EQ(a.count, 2u);
		EXPECT_EQ(a.r[1].lo, 0u);
		EXPECT_EQ(a.r[1].hi, 1u);
	}
	{ // lo == 1 leaves no room for a gap
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, 5); put(b, 0); put(b, 1); put(b, 4); put(b, 0); put(b, 0);
		EXPECT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), SRM_ERR_INVALID);
	}
	{ // maximal values near VARINT_MAX with a huge gap that wraps
		std::vector<uint8_t> b{FRAME_ACK};
		put(b, VARINT_MAX); put(b, 0); put(b, 1); put(b, 0); put(b, VARINT_MAX); put(b, 0);
		EXPECT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), SRM_ERR_INVALID);
	}
}

TEST(Ack, ParseBoundsRangeCount)
{
	ack_ranges a;
	size_t used;
	// A huge count is rejected before reading (no attempt to read 2^60 pairs).
	std::vector<uint8_t> b{FRAME_ACK};
	put(b, 1000000); put(b, 0); put(b, VARINT_MAX); put(b, 0);
	EXPECT_EQ(ack_frame_parse(b.data(), b.size(), &a, &used), SRM_ERR_INVALID);
	// Exactly the bound - 1 extra ranges parses; the bound itself does not.
	for (uint64_t extra : {(uint64_t)ACK_MAX_RANGES - 1, (uint64_t)ACK_MAX_RANGES}) {
		std::vector<uint8_t> f{FRAME_ACK};
		put(f, 1000000); put(f, 0); put(f, extra); put(f, 0);
		for (uint64_t i = 0; i < extra; i++) {
			put(f, 0);
			put(f, 0);
		}
		int rc = ack_frame_parse(f.data(), f.size(), &a, &used);
		if (extra < ACK_MAX_RANGES) {
			ASSERT_EQ(rc, 0);
			EXPECT_EQ(a.count, (size_t)ACK_MAX_RANGES);
			EXPECT_EQ(a.r[ACK_MAX_RANGES - 1].hi, 1000000u - 2 * (ACK_MAX_RANGES - 1));
		} else {
			EXPECT_EQ(rc, SRM_ERR_INVALID);
		}
	}
}

TEST(Ack, ParseRandomBytesNeverCrashes)
{
	std::mt19937 rng(7);
	ack_ranges a;
	size_t used;
	int ok = 0;
	for (int i = 0; i < 20000; i++) {
		uint8_t b[48];
		size_t len = rng() % sizeof b;
		for (auto &x : b)
			x = (uint8_t)rng();
		b[0] = FRAME_ACK;
		if (ack_frame_parse(b, len, &a, &used) == 0) {
			ok++;
			ASSERT_LE(used, len);
			ASSERT_GE(a.count, 1u);
			ASSERT_LE(a.count, (size_t)ACK_MAX_RANGES);
			for (size_t k = 0; k < a.count; k++) {
				ASSERT_LE(a.r[k].lo, a.r[k].hi);
				if (k) {
					ASSERT_LT(a.r[k].hi + 1, a.r[k - 1].lo);
				}
			}
			// What parses re-encodes to the same bytes' meaning.
			uint8_t out[ACK_FRAME_MAX_BYTES];
			size_t n = ack_frame_encode(&a, out, sizeof out);
			ASSERT_GT(n, 0u);
			ack_ranges a2;
			size_t used2;
			ASSERT_EQ(ack_frame_parse(out, n, &a2, &used2), 0);
			ASSERT_EQ(a2.count, a.count);
		}
	}
	EXPECT_GT(ok, 0);
}

TEST(Ack, EveryBufferSizeGetsTheNewestRangesThatFit)
{
	ack_tracker t;
	ack_tracker_init(&t);
	// Mixed range and gap sizes so the varint widths vary.
	uint64_t pn = 0;
	for (int i = 0; i < 50; i++) {
		for (int k = 0; k < 1 + i % 5; k++)
			ack_tracker_on_packet(&t, pn++, true, 0);
		pn += 1 + (uint64_t)(i * 37 % 200);
	}
	ASSERT_EQ(t.count, 50u);
	size_t last_count = 0;
	for (size_t cap = 0; cap <= ACK_FRAME_MAX_BYTES; cap++) {
		ack_tracker c = t; // writing clears pending state
		uint8_t buf[ACK_FRAME_MAX_BYTES];
		size_t n = ack_frame_write(&c, 0, buf, cap);
		ASSERT_LE(n, cap);
		if (n == 0) {
			ASSERT_EQ(last_count, 0u) << "fit before, not now: " << cap;
			continue;
		}
		ack_ranges a;
		size_t used;
		ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0) << cap;
		ASSERT_GE(a.count, last_count);
		for (size_t k = 0; k < a.count; k++) {
			ASSERT_EQ(a.r[k].lo, t.r[k].lo);
			ASSERT_EQ(a.r[k].hi, t.r[k].hi);
		}
		last_count = a.count;
	}
	EXPECT_EQ(last_count, 50u);
}

TEST(Ack, OldRangesAreRepeatedThenLeftOut)
{
	ack_tracker t;
	ack_tracker_init(&t);
	for (uint64_t pn : {1, 2, 4, 5, 7})
		ack_tracker_on_packet(&t, pn, true, 0);
	ASSERT_EQ(t.count, 3u);
	uint8_t buf[128];
	ack_ranges a;
	size_t used;
	for (int i = 0; i < ACK_RANGE_REPEATS; i++) {
		size_t n = ack_frame_write(&t, 0, buf, sizeof buf);
		ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
		ASSERT_EQ(a.count, 3u) << i;
		ack_tracker_on_packet(&t, 7, true, 0); // duplicate: changes nothing
	}
	// Every range was sent ACK_RANGE_REPEATS times: only the newest remains.
	size_t n = ack_frame_write(&t, 0, buf, sizeof buf);
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	ASSERT_EQ(a.count, 1u);
	EXPECT_EQ(a.r[0].lo, 7u);
	// A late packet extends the middle range: it is reported again, with
	// the gap above it widened over nothing that was left out wrongly.
	ack_tracker_on_packet(&t, 3, true, 0); // joins 1..2 and 4..5 into 1..5
	n = ack_frame_write(&t, 0, buf, sizeof buf);
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	ASSERT_EQ(a.count, 2u);
	EXPECT_EQ(a.r[1].lo, 1u);
	EXPECT_EQ(a.r[1].hi, 5u);
	// A new packet far above: new top range; 7..7 is still fresh-ish
	// (left out after its repeats), 1..5 sent once so far.
	ack_tracker_on_packet(&t, 20, true, 0);
	n = ack_frame_write(&t, 0, buf, sizeof buf);
	ASSERT_EQ(ack_frame_parse(buf, n, &a, &used), 0);
	ASSERT_EQ(a.count, 2u);
	EXPECT_EQ(a.r[0].lo, 20u);
	EXPECT_EQ(a.r[1].lo, 1u);
	EXPECT_EQ(a.r[1].hi, 5u);
}
