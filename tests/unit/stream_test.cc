// stream_test.cc — reassembly with holes, overlaps and duplicates; the send
// ring's retransmission bookkeeping; flow-control credit and auto-tuning;
// memory of idle streams.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "stream.h"

namespace {

struct S {
	stream s;
	S() { stream_init(&s, 4, STREAM_OPEN); }
	~S() { stream_free_buffers(&s); }
};

std::vector<uint8_t> bytes(size_t n, uint64_t seed)
{
	std::vector<uint8_t> v(n);
	std::mt19937_64 r(seed);
	for (auto &b : v)
		b = (uint8_t)r();
	return v;
}

std::vector<uint8_t> drain(stream *s)
{
	std::vector<uint8_t> out;
	const uint8_t *p;
	size_t n;
	while ((n = stream_recv_peek(s, &p)) > 0) {
		out.insert(out.end(), p, p + n);
		stream_recv_consume(s, n);
	}
	return out;
}

TEST(StreamRecv, HolesOverlapsDuplicates)
{
	S t;
	auto d = bytes(1000, 1);
	// [100,200) first: a hole before it, nothing readable.
	EXPECT_EQ(stream_recv_data(&t.s, 100, d.data() + 100, 100, false), 200);
	EXPECT_EQ(stream_recv_readable(&t.s), 0u);
	// Overlapping [150,300): charges only what is beyond the highest.
	EXPECT_EQ(stream_recv_data(&t.s, 150, d.data() + 150, 150, false), 100);
	// Exact duplicate: no charge, no change.
	EXPECT_EQ(stream_recv_data(&t.s, 100, d.data() + 100, 100, false), 0);
	// Fill the hole [0,100) with a frame overlapping both sides.
	EXPECT_EQ(stream_recv_data(&t.s, 0, d.data(), 120, false), 0);
	EXPECT_EQ(stream_recv_readable(&t.s), 300u);
	auto got = drain(&t.s);
	ASSERT_EQ(got.size(), 300u);
	EXPECT_TRUE(std::equal(got.begin(), got.end(), d.begin()));
	// A duplicate of already-read data is harmless.
	EXPECT_EQ(stream_recv_data(&t.s, 0, d.data(), 300, false), 0);
	EXPECT_EQ(stream_recv_readable(&t.s), 0u);
	// The end, with FIN, out of order.
	EXPECT_EQ(stream_recv_data(&t.s, 600, d.data() + 600, 400, true), 700);
	EXPECT_FALSE(stream_recv_finished(&t.s));
	EXPECT_EQ(stream_recv_data(&t.s, 300, d.data() + 300, 300, false), 0);
	got = drain(&t.s);
	ASSERT_EQ(got.size(), 700u);
	EXPECT_TRUE(std::equal(got.begin(), got.end(), d.begin() + 300));
	EXPECT_TRUE(stream_recv_finished(&t.s));
}

TEST(StreamRecv, RandomSegmentsReassembleExactly)
{
	std::mt19937_64 r(9);
	for (int round = 0; round < 100; round++) {
		S t;
		size_t n = 1 + r() % 200000;
		auto d = bytes(n, (uint64_t)round);
		// Segments in random order, with duplicates and overlaps.
		std::vector<std::pair<size_t, size_t>> segs;
		for (size_t off = 0; off < n;) {
			size_t len = std::min(n - off, (size_t)(1 + r() % 3000));
			segs.push_back({off, len});
			if (r() % 4 == 0) // an overlapping copy
				segs.push_back({off > 10 ? off - 10 : 0, std::min(n - off, len + 20)});
			off += len;
		}
		std::shuffle(segs.begin(), segs.end(), r);
		size_t dups = segs.size() / 5;
		for (size_t i = 0; i < dups; i++)
			segs.push_back(segs[r() % segs.size()]);
		std::vector<uint8_t> got;
		for (auto &sg : segs) {
			size_t len = std::min(sg.second, n - sg.first);
			bool fin = sg.first + len == n;
			ASSERT_GE(stream_recv_data(&t.s, sg.first, d.data() + sg.first, len, fin), 0);
			if (r() % 3 == 0) {
				auto part = drain(&t.s);
				got.insert(got.end(), part.begin(), part.end());
				// the reader keeps credit flowing
				stream_recv_update(&t.s, 0, 0, 0);
			}
		}
		auto rest = drain(&t.s);
		got.insert(got.end(), rest.begin(), rest.end());
		ASSERT_EQ(got.size(), n) << "round " << round;
		EXPECT_TRUE(got == d);
		EXPECT_TRUE(stream_recv_finished(&t.s));
		stream_trim(&t.s);
		EXPECT_LE(t.s.rx.cap, (size_t)STREAM_IDLE_BUF) << "a drained big ring is released";
	}
}

TEST(StreamRecv, FlowControlViolationsAndFinalSize)
{
	S t;
	std::vector<uint8_t> d(10, 'x');
	// Beyond the initial credit: a protocol violation.
	EXPECT_EQ(stream_recv_data(&t.s, STREAM_WINDOW_INITIAL - 5, d.data(), 10, false),
		  SRM_ERR_INVALID);
	EXPECT_EQ(stream_recv_data(&t.s, STREAM_WINDOW_INITIAL - 10, d.data(), 10, false),
		  (int64_t)STREAM_WINDOW_INITIAL);
	// FIN below data already received contradicts it.
	EXPECT_EQ(stream_recv_data(&t.s, 0, d.data(), 10, true), SRM_ERR_INVALID);
	S u;
	EXPECT_GE(stream_recv_data(&u.s, 0, d.data(), 10, true), 0);
	EXPECT_EQ(stream_recv_data(&u.s, 5, d.data(), 10, false), SRM_ERR_INVALID); // past FIN
	EXPECT_EQ(stream_recv_data(&u.s, 0, d.data(), 8, true), SRM_ERR_INVALID);   // FIN moved
	EXPECT_EQ(stream_recv_data(&u.s, 0, d.data(), 10, true), 0);                // same FIN again
	EXPECT_EQ(stream_recv_reset(&u.s, 9), SRM_ERR_INVALID);
	EXPECT_EQ(stream_recv_reset(&u.s, 10), 0);
	S v;
	EXPECT_EQ(stream_recv_data(&v.s, 0, d.data(), 10, false), 10);
	EXPECT_EQ(stream_recv_reset(&v.s, 500), 490); // the reset charges up to its final size
}

TEST(StreamRecv, TooFragmentedIsRefusedNotStored)
{
	S t;
	std::vector<uint8_t> d(1, 'y');
	int64_t r = 0;
	uint32_t i = 0;
	for (; i < 2 * STREAM_RECV_RANGES_MAX && r >= 0; i++)
		r = stream_recv_data(&t.s, 2 * (uint64_t)i + 1, d.data(), 1, false);
	EXPECT_EQ(r, SRM_ERR_NOMEM);
	EXPECT_EQ(t.s.rx.got.n, STREAM_RECV_RANGES_MAX);
	// Filling holes still works (merges need no room).
	EXPECT_GE(stream_recv_data(&t.s, 0, d.data(), 1, false), 0);
	EXPECT_EQ(stream_recv_readable(&t.s), 2u);
}

TEST(StreamFlow, CreditAdvancesOnlyAsTheReaderReads)
{
	S t;
	std::vector<uint8_t> d(STREAM_WINDOW_INITIAL, 'z');
	ASSERT_GE(stream_recv_data(&t.s, 0, d.data(), d.size(), false), 0);
	// Nothing read: no update, whatever the time.
	EXPECT_FALSE(stream_recv_update(&t.s, 1000000, 10000, 0));
	// Read a quarter: still more than half the window outstanding.
	stream_recv_consume(&t.s, STREAM_WINDOW_INITIAL / 4);
	EXPECT_FALSE(stream_recv_update(&t.s, 1000000, 10000, 0));
	// Past half: an update to read + window.
	stream_recv_consume(&t.s, STREAM_WINDOW_INITIAL / 4 + 1);
	uint64_t read = t.s.rx.read;
	EXPECT_TRUE(stream_recv_update(&t.s, 100000000, 10000, 0)); // slow: no growth
	EXPECT_EQ(t.s.rx.window, (uint64_t)STREAM_WINDOW_INITIAL);
	EXPECT_EQ(t.s.rx.max, read + STREAM_WINDOW_INITIAL);
	EXPECT_FALSE(stream_recv_update(&t.s, 100000000, 10000, 0)); // nothing new
}

TEST(StreamFlow, AutoTuneGrowsToTwiceBdpAndCaps)
{
	S t;
	std::vector<uint8_t> d(64 << 10, 'q');
	uint64_t now = 1000000, srtt = 50000;
	// A reader that consumes each window within one RTT: doubling.
	for (int i = 0; i < 40; i++) {
		while (t.s.rx.highest + d.size() <= t.s.rx.max) {
			ASSERT_GE(stream_recv_data(&t.s, t.s.rx.highest, d.data(), d.size(), false), 0);
			stream_recv_consume(&t.s, d.size());
		}
		now += srtt / 2;
		stream_recv_update(&t.s, now, srtt, 0);
	}
	EXPECT_EQ(t.s.rx.window, (uint64_t)STREAM_WINDOW_MAX);
	// A known BDP lifts the window at once to 2 x BDP.
	S u;
	std::vector<uint8_t> e(STREAM_WINDOW_INITIAL, 'w');
	ASSERT_GE(stream_recv_data(&u.s, 0, e.data(), e.size(), false), 0);
	stream_recv_consume(&u.s, e.size());
	EXPECT_TRUE(stream_recv_update(&u.s, 500000000, 10000, 3u << 20));
	EXPECT_EQ(u.s.rx.window, 6u << 20);
	EXPECT_TRUE(stream_recv_update(&u.s, 500000000, 10000, 100u << 20) || true);
	EXPECT_LE(u.s.rx.window, (uint64_t)STREAM_WINDOW_MAX);
}

TEST(StreamSend, RetransmitsLostRangesOnly)
{
	S t;
	auto d = bytes(10000, 5);
	ASSERT_EQ(stream_send_write(&t.s, d.data(), d.size()), 0);
	stream_send_shutdown(&t.s);
	// Send in 1000-byte chunks.
	std::vector<std::tuple<uint64_t, size_t, bool>> sent;
	uint64_t off;
	size_t len;
	bool fin;
	while (stream_send_next(&t.s, 1000, UINT64_MAX, &off, &len, &fin)) {
		std::vector<uint8_t> buf(len);
		stream_send_copy(&t.s, off, len, buf.data());
		EXPECT_TRUE(std::equal(buf.begin(), buf.end(), d.begin() + (long)off));
		EXPECT_EQ(stream_send_sent(&t.s, off, len, fin), len);
		sent.emplace_back(off, len, fin);
	}
	ASSERT_EQ(sent.size(), 10u);
	EXPECT_TRUE(std::get<2>(sent.back()));
	// Chunks 2 and 5 lost (5 also acked later: a spurious loss), the rest acked.
	for (size_t i = 0; i < sent.size(); i++)
		if (i != 2 && i != 5)
			stream_send_acked(&t.s, std::get<0>(sent[i]), std::get<1>(sent[i]),
					  std::get<2>(sent[i]));
	EXPECT_EQ(t.s.tx.base, 2000u);
	stream_send_lost(&t.s, 2000, 1000, false);
	stream_send_lost(&t.s, 5000, 1000, false);
	stream_send_acked(&t.s, 5000, 1000, false);
	EXPECT_TRUE(stream_send_pending(&t.s));
	ASSERT_TRUE(stream_send_next(&t.s, 600, UINT64_MAX, &off, &len, &fin));
	EXPECT_EQ(off, 2000u);
	EXPECT_EQ(len, 600u);
	EXPECT_EQ(stream_send_sent(&t.s, off, len, fin), 0u); // not new data
	ASSERT_TRUE(stream_send_next(&t.s, 1000, UINT64_MAX, &off, &len, &fin));
	EXPECT_EQ(off, 2600u);
	EXPECT_EQ(len, 400u);
	stream_send_sent(&t.s, off, len, fin);
	EXPECT_FALSE(stream_send_next(&t.s, 1000, UINT64_MAX, &off, &len, &fin)); // 5000 was acked
	stream_send_acked(&t.s, 2000, 600, false);
	stream_send_acked(&t.s, 2600, 400, false);
	EXPECT_TRUE(stream_send_done(&t.s));
	EXPECT_EQ(stream_send_buffered(&t.s), 0u);
}

TEST(StreamSend, CreditLimitsNewDataAndFinWaits)
{
	S t;
	std::vector<uint8_t> d(STREAM_WINDOW_INITIAL + 5000, 'a');
	ASSERT_EQ(stream_send_write(&t.s, d.data(), d.size()), 0);
	stream_send_shutdown(&t.s);
	EXPECT_EQ(stream_send_write(&t.s, d.data(), 1), SRM_ERR_CLOSED);
	uint64_t off, total = 0;
	size_t len;
	bool fin = false;
	while (stream_send_next(&t.s, 1200, UINT64_MAX, &off, &len, &fin)) {
		EXPECT_FALSE(fin);
		total += stream_send_sent(&t.s, off, len, fin);
	}
	EXPECT_EQ(total, (uint64_t)STREAM_WINDOW_INITIAL);
	EXPECT_TRUE(stream_send_blocked(&t.s));
	// The session credit limits too.
	EXPECT_TRUE(stream_send_credit(&t.s, STREAM_WINDOW_INITIAL + 10000));
	EXPECT_FALSE(stream_send_credit(&t.s, 5)); // lower: ignored
	EXPECT_TRUE(stream_send_next(&t.s, 1200, 100, &off, &len, &fin));
	EXPECT_EQ(len, 100u);
	stream_send_sent(&t.s, off, len, fin);
	EXPECT_FALSE(stream_send_next(&t.s, 1200, 0, &off, &len, &fin));
	while (stream_send_next(&t.s, 1200, UINT64_MAX, &off, &len, &fin))
		stream_send_sent(&t.s, off, len, fin);
	EXPECT_TRUE(fin);
	// A lost FIN-only frame comes back.
	stream_send_lost(&t.s, off, len, true);
	ASSERT_TRUE(stream_send_next(&t.s, 1200, UINT64_MAX, &off, &len, &fin));
	EXPECT_TRUE(fin);
}

TEST(StreamSend, NotOpenSendsNothing)
{
	stream s;
	stream_init(&s, 2, STREAM_OPENING);
	ASSERT_EQ(stream_send_write(&s, "hello", 5), 0);
	uint64_t off;
	size_t len;
	bool fin;
	EXPECT_FALSE(stream_send_pending(&s));
	EXPECT_FALSE(stream_send_next(&s, 1200, UINT64_MAX, &off, &len, &fin));
	s.state = STREAM_OPEN;
	EXPECT_TRUE(stream_send_next(&s, 1200, UINT64_MAX, &off, &len, &fin));
	stream_free_buffers(&s);
}

TEST(Stream, IdleStreamIsSmall)
{
	S t;
	EXPECT_LE(sizeof(stream) + stream_memory(&t.s), 1024u);
	// After moving a megabyte both ways, a drained stream gives it back.
	auto d = bytes(1 << 20, 3);
	ASSERT_EQ(stream_send_write(&t.s, d.data(), d.size()), 0);
	uint64_t off;
	size_t len;
	bool fin;
	t.s.tx.max = UINT64_MAX / 4;
	while (stream_send_next(&t.s, 60000, UINT64_MAX, &off, &len, &fin)) {
		stream_send_sent(&t.s, off, len, fin);
		stream_send_acked(&t.s, off, len, fin);
	}
	t.s.rx.max = UINT64_MAX / 4;
	for (size_t o = 0; o < d.size(); o += 50000) {
		size_t n = std::min<size_t>(50000, d.size() - o);
		ASSERT_GE(stream_recv_data(&t.s, o, d.data() + o, n, false), 0);
		drain(&t.s);
	}
	EXPECT_GE(stream_memory(&t.s), 64u << 10); // kept while busy
	stream_trim(&t.s);
	EXPECT_LE(stream_memory(&t.s), 16u << 10);
}

} // namespace
