// recovery_test.cc — RTT estimation, loss detection by packet and time
// threshold, PTO with backoff, persistent congestion, ring bounds.
#include <gtest/gtest.h>

#include <vector>

#include "recovery_sim.h"

using rsim::SharedLinkSim;
using rsim::Sim;
using rsim::SimConfig;

namespace {

const unsigned DATA = RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT;

struct Log {
	std::vector<uint64_t> acked, lost;
	std::vector<uint32_t> acked_meta, lost_meta;
	static void on_acked(void *ctx, const recovery_event *ev)
	{
		auto *l = static_cast<Log *>(ctx);
		l->acked.push_back(ev->pn);
		l->acked_meta.push_back(ev->meta);
	}
	static void on_lost(void *ctx, const recovery_event *ev)
	{
		auto *l = static_cast<Log *>(ctx);
		l->lost.push_back(ev->pn);
		l->lost_meta.push_back(ev->meta);
	}
	recovery_callbacks cb() { return {on_acked, on_lost, this}; }
};

ack_ranges ranges(std::initializer_list<std::pair<uint64_t, uint64_t>> hi_lo, uint64_t delay = 0)
{
	ack_ranges a = {};
	for (auto &p : hi_lo) {
		a.r[a.count].hi = p.first;
		a.r[a.count].lo = p.second;
		a.count++;
	}
	a.largest = a.r[0].hi;
	a.ack_delay_us = delay;
	return a;
}

struct Rec {
	recovery r;
	explicit Rec(srm_cc cc = SRM_CC_NEWRENO)
	{
		EXPECT_EQ(recovery_init(&r, cc, 1200, 0), 0);
	}
	~Rec() { recovery_free(&r); }
};

} // namespace

TEST(Recovery, FirstRttSample)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 100, 1000);
	auto a = ranges({{0, 0}}, 5000);
	EXPECT_EQ(recovery_on_ack(&x.r, &a, 51000, &cb), 1);
	// First sample: ack delay is not subtracted (RFC 9002 5.3).
	EXPECT_EQ(x.r.rtt.latest_us, 50000u);
	EXPECT_EQ(x.r.rtt.smoothed_us, 50000u);
	EXPECT_EQ(x.r.rtt.var_us, 25000u);
	EXPECT_EQ(x.r.rtt.min_us, 50000u);
	ASSERT_EQ(log.acked_meta.size(), 1u);
	EXPECT_EQ(log.acked_meta[0], 100u);
	EXPECT_EQ(recovery_bytes_in_flight(&x.r), 0u);
}

TEST(Recovery, RttSmoothingAndAckDelay)
{
	Rec x;
	auto cb = Log().cb();
	Log log;
	cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	auto a0 = ranges({{0, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a0, 40000, &cb), 1); // srtt 40 ms
	// 60 ms with 10 ms ack delay: adjusted 50 ms.
	recovery_on_sent(&x.r, 1, 1200, DATA, 0, 100000);
	auto a1 = ranges({{1, 0}}, 10000);
	ASSERT_EQ(recovery_on_ack(&x.r, &a1, 160000, &cb), 1);
	EXPECT_EQ(x.r.rtt.latest_us, 60000u);
	EXPECT_EQ(x.r.rtt.smoothed_us, (7 * 40000u + 50000u) / 8);
	EXPECT_EQ(x.r.rtt.var_us, (3 * 20000u + 10000u) / 4);
	EXPECT_EQ(x.r.rtt.min_us, 40000u);
	// An ack delay beyond max_ack_delay is clamped; one that would take
	// the sample below min_rtt is ignored.
	uint64_t s = x.r.rtt.smoothed_us;
	recovery_on_sent(&x.r, 2, 1200, DATA, 0, 200000);
	auto a2 = ranges({{2, 0}}, 30000);
	ASSERT_EQ(recovery_on_ack(&x.r, &a2, 245000, &cb), 1); // 45 ms < 40 + 30
	EXPECT_EQ(x.r.rtt.smoothed_us, (7 * s + 45000u) / 8);
	s = x.r.rtt.smoothed_us;
	recovery_on_sent(&x.r, 3, 1200, DATA, 0, 300000);
	auto a3 = ranges({{3, 0}}, 1000000);
	ASSERT_EQ(recovery_on_ack(&x.r, &a3, 400000, &cb), 1); // 100 ms - 25 ms cap
	EXPECT_EQ(x.r.rtt.smoothed_us, (7 * s + 75000u) / 8);
	// A new minimum.
	recovery_on_sent(&x.r, 4, 1200, DATA, 0, 500000);
	auto a4 = ranges({{4, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a4, 530000, &cb), 1);
	EXPECT_EQ(x.r.rtt.min_us, 30000u);
}

TEST(Recovery, NoRttSampleWhenLargestNotNew)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	recovery_on_sent(&x.r, 1, 1200, DATA, 0, 0);
	auto a = ranges({{1, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 10000, &cb), 1);
	EXPECT_EQ(x.r.rtt.latest_us, 10000u);
	// The same largest again, now also covering 0: no new RTT sample.
	auto b = ranges({{1, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &b, 90000, &cb), 1);
	EXPECT_EQ(x.r.rtt.latest_us, 10000u);
	// A duplicate ACK changes nothing.
	EXPECT_EQ(recovery_on_ack(&x.r, &b, 95000, &cb), 0);
	EXPECT_EQ(log.acked.size(), 2u);
}

TEST(Recovery, AckOfUnsentIsInvalid)
{
	Rec x;
	auto a = ranges({{0, 0}});
	EXPECT_EQ(recovery_on_ack(&x.r, &a, 0, nullptr), SRM_ERR_INVALID);
	recovery_on_sent(&x.r, 5, 1200, DATA, 0, 0);
	auto b = ranges({{6, 5}});
	EXPECT_EQ(recovery_on_ack(&x.r, &b, 10, nullptr), SRM_ERR_INVALID);
	auto c = ranges({{5, 0}}); // pn 0..4 never sent (skipped): fine
	EXPECT_EQ(recovery_on_ack(&x.r, &c, 10, nullptr), 1);
}

TEST(Recovery, PacketThreshold)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	for (uint64_t pn = 0; pn < 10; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, 1000 + (uint32_t)pn, pn * 10);
	// Ack 5..9 at 1 ms: 0,1,2 are >= 3 below the largest (9)... and so
	// are 3..6 minus the acked ones; 0..4 are missing, all >= 3 below 9.
	auto a = ranges({{9, 5}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 1000, &cb), 5);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
	EXPECT_EQ(log.lost_meta[0], 1000u);
	EXPECT_EQ(log.acked, (std::vector<uint64_t>{5, 6, 7, 8, 9}));
	EXPECT_EQ(recovery_bytes_in_flight(&x.r), 0u);
}

TEST(Recovery, PacketThresholdExactlyThree)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	for (uint64_t pn = 0; pn < 4; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, 0, 0);
	auto a = ranges({{2, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 1000, &cb), 2);
	EXPECT_TRUE(log.lost.empty()) << "0 is only 2 below the largest";
	auto b = ranges({{3, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &b, 1100, &cb), 1);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{0}));
}

TEST(Recovery, TimeThreshold)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 7, 0);
	recovery_on_sent(&x.r, 1, 1200, DATA, 8, 1000);
	auto a = ranges({{1, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 81000, &cb), 1); // rtt 80 ms
	EXPECT_TRUE(log.lost.empty());
	// 9/8 x 80 ms = 90 ms after pn 0 was sent.
	EXPECT_EQ(recovery_deadline(&x.r), 90000u);
	EXPECT_EQ(recovery_on_timeout(&x.r, 89999, &cb), 0);
	EXPECT_TRUE(log.lost.empty());
	EXPECT_EQ(recovery_on_timeout(&x.r, 90000, &cb), 0);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{0}));
	EXPECT_EQ(log.lost_meta, (std::vector<uint32_t>{7}));
	EXPECT_EQ(recovery_deadline(&x.r), UINT64_MAX) << "nothing in flight";
}

TEST(Recovery, TimeThresholdOnLaterAck)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	recovery_on_sent(&x.r, 1, 1200, DATA, 0, 0);
	recovery_on_sent(&x.r, 2, 1200, DATA, 0, 50000);
	auto a = ranges({{1, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 20000, &cb), 1); // rtt 20 ms
	// pn 0 was sent 20 ms ago < 22.5 ms: not yet.
	EXPECT_TRUE(log.lost.empty());
	auto b = ranges({{2, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &b, 70000, &cb), 1);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{0}));
}

TEST(Recovery, PtoAndBackoff)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	// Before any sample: the initial RTT (RFC 9002, 333 ms).
	uint64_t base = CC_INITIAL_RTT_US + 4 * (CC_INITIAL_RTT_US / 2) + ACK_MAX_DELAY_US;
	EXPECT_EQ(recovery_pto_base(&x.r), base);
	EXPECT_EQ(recovery_deadline(&x.r), UINT64_MAX);
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 1000);
	EXPECT_EQ(recovery_deadline(&x.r), 1000 + base);
	EXPECT_EQ(recovery_on_timeout(&x.r, 1000 + base - 1, &cb), 0);
	EXPECT_EQ(recovery_on_timeout(&x.r, 1000 + base, &cb), 2);
	EXPECT_TRUE(log.lost.empty()) << "a PTO declares nothing lost";
	// Probes bypass the window.
	for (uint64_t pn = 1; pn < 30; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, 0, 1000 + base);
	EXPECT_FALSE(recovery_can_send(&x.r, 1200, 1000 + base)) << "cwnd full";
	EXPECT_EQ(x.r.probes_due, 0u);
	// Second PTO: doubled, from the last ack-eliciting send.
	uint64_t t2 = 1000 + base + 2 * base;
	EXPECT_EQ(recovery_deadline(&x.r), t2);
	EXPECT_EQ(recovery_on_timeout(&x.r, t2, &cb), 2);
	EXPECT_TRUE(recovery_can_send(&x.r, 1200, t2));
	recovery_on_sent(&x.r, 30, 1200, DATA, 0, t2);
	recovery_on_sent(&x.r, 31, 1200, DATA, 0, t2);
	EXPECT_FALSE(recovery_can_send(&x.r, 1200, t2));
	EXPECT_EQ(recovery_deadline(&x.r), t2 + 4 * base);
	// An ACK resets the backoff and the old packets get declared lost.
	auto a = ranges({{31, 31}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, t2 + 100000, &cb), 1);
	EXPECT_EQ(x.r.pto_count, 0u);
	// 0..28 by packet threshold, 29 (sent long before) by time; 30 was
	// sent with 31 and stays outstanding.
	EXPECT_EQ(log.lost.size(), 30u);
	EXPECT_EQ(recovery_bytes_in_flight(&x.r), 1200u);
	EXPECT_EQ(x.r.stats.pto_count_total, 2u);
}

TEST(Recovery, PtoBackoffIsCapped)
{
	Rec x;
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	for (int i = 0; i < 40; i++) {
		uint64_t d = recovery_deadline(&x.r);
		ASSERT_NE(d, UINT64_MAX);
		ASSERT_GT(recovery_on_timeout(&x.r, d, nullptr), 0);
	}
	EXPECT_EQ(recovery_deadline(&x.r),
		  recovery_pto_base(&x.r) << RECOVERY_MAX_PTO_BACKOFF);
}

TEST(Recovery, PersistentCongestionCollapsesWindow)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	auto a = ranges({{0, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 10000, &cb), 1); // rtt 10 ms
	uint64_t pto = recovery_pto_base(&x.r);               // 10+20+25 ms
	// Packets spanning more than 3 x PTO, all lost, then a late one acked.
	uint64_t t = 20000;
	for (uint64_t pn = 1; pn <= 8; pn++, t += pto / 2)
		recovery_on_sent(&x.r, pn, 1200, DATA, 0, t);
	recovery_on_sent(&x.r, 9, 1200, DATA, 0, t);
	auto b = ranges({{9, 9}});
	ASSERT_EQ(recovery_on_ack(&x.r, &b, t + 10000, &cb), 1);
	EXPECT_EQ(log.lost.size(), 8u);
	EXPECT_EQ(x.r.stats.persistent_congestion, 1u);
	EXPECT_EQ(cc_cwnd(&x.r.cc), (uint64_t)CC_MIN_WINDOW_PACKETS * 1200);
}

TEST(Recovery, NoPersistentCongestionWhenAckBetween)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	auto a = ranges({{0, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 10000, &cb), 1);
	uint64_t pto = recovery_pto_base(&x.r);
	uint64_t t = 20000;
	for (uint64_t pn = 1; pn <= 8; pn++, t += pto / 2)
		recovery_on_sent(&x.r, pn, 1200, DATA, 0, t);
	recovery_on_sent(&x.r, 9, 1200, DATA, 0, t);
	// pn 4 acknowledged: the losses are two short runs.
	auto b = ranges({{9, 9}, {4, 4}});
	ASSERT_EQ(recovery_on_ack(&x.r, &b, t + 10000, &cb), 2);
	EXPECT_EQ(log.lost.size(), 7u);
	EXPECT_EQ(x.r.stats.persistent_congestion, 0u);
	EXPECT_GT(cc_cwnd(&x.r.cc), (uint64_t)CC_MIN_WINDOW_PACKETS * 1200);
}

TEST(Recovery, PmtuProbeLossIsNotCongestion)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	recovery_on_sent(&x.r, 1, 1472, DATA | RECOVERY_PMTU_PROBE, 55, 0);
	for (uint64_t pn = 2; pn < 6; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, 0, 0);
	uint64_t before = cc_cwnd(&x.r.cc);
	auto a = ranges({{5, 2}, {0, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 10000, &cb), 5);
	EXPECT_EQ(log.lost_meta, (std::vector<uint32_t>{55})) << "reported to the caller";
	EXPECT_GE(cc_cwnd(&x.r.cc), before) << "but not to congestion control";
	EXPECT_FALSE(x.r.cc.in_recovery);
}

TEST(Recovery, LateAckOfLostPacketIgnored)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	for (uint64_t pn = 0; pn < 5; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, 0, 0);
	auto a = ranges({{4, 1}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 1000, &cb), 4);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{0}));
	// The reordered original shows up after all: it was already reported
	// lost (and its data re-queued), so it is not reported again.
	auto b = ranges({{4, 0}});
	EXPECT_EQ(recovery_on_ack(&x.r, &b, 2000, &cb), 0);
	EXPECT_EQ(log.acked.size(), 4u);
	EXPECT_EQ(log.lost.size(), 1u);
}

TEST(Recovery, PureAcksAreNotTracked)
{
	Rec x;
	for (uint64_t pn = 0; pn < 100000; pn++)
		recovery_on_sent(&x.r, pn, 40, 0, 0, pn);
	EXPECT_EQ(x.r.count, 0u);
	EXPECT_EQ(recovery_bytes_in_flight(&x.r), 0u);
	EXPECT_EQ(recovery_deadline(&x.r), UINT64_MAX);
	EXPECT_EQ(x.r.stats.packets_sent, 100000u);
}

TEST(Recovery, RingGrowsAndIsBounded)
{
	Rec x;
	// Without ever being acknowledged, 1-byte packets under a huge window
	// are only limited by the ring cap.
	x.r.cc.cwnd = CC_MAX_WINDOW_BYTES;
	// 100 us apart so pacing never holds a 1-byte packet back.
	uint64_t pn = 0;
	while (recovery_can_send(&x.r, 1, pn * 100) && pn < 10 * RECOVERY_RING_MAX) {
		recovery_on_sent(&x.r, pn, 1, DATA, (uint32_t)pn, pn * 100);
		pn++;
	}
	EXPECT_EQ(pn, (uint64_t)RECOVERY_RING_MAX);
	EXPECT_EQ(x.r.cap, (size_t)RECOVERY_RING_MAX);
	EXPECT_EQ(recovery_next_send_time(&x.r, 1, pn * 100), UINT64_MAX);
	// Acknowledge everything: room again, and lookups across the grown,
	// wrapped ring find every packet.
	Log log;
	auto cb = log.cb();
	auto a = ranges({{pn - 1, 0}});
	uint64_t t = pn * 100 + 1000;
	EXPECT_EQ(recovery_on_ack(&x.r, &a, t, &cb), (int)pn);
	EXPECT_EQ(x.r.count, 0u);
	EXPECT_TRUE(recovery_can_send(&x.r, 1, t));
	for (size_t i = 0; i < log.acked_meta.size(); i++)
		ASSERT_EQ(log.acked_meta[i], (uint32_t)i);
}

TEST(Recovery, WrappedRingLookup)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	uint64_t pn = 0, t = 0;
	// Keep ~100 packets outstanding while sliding far past the ring size,
	// skipping packet numbers now and then.
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 20; i++) {
			recovery_on_sent(&x.r, pn, 100, DATA, (uint32_t)pn, t);
			pn += (pn % 7 == 0) ? 2 : 1;
		}
		t += 1000;
		if (pn < 100)
			continue;
		auto a = ranges({{pn - 1 - 60, pn - 1 - 80}});
		ASSERT_GE(recovery_on_ack(&x.r, &a, t, &cb), 0);
	}
	for (size_t i = 1; i < log.acked.size(); i++)
		ASSERT_LT(log.acked[i - 1], log.acked[i]);
	EXPECT_GT(log.acked.size(), 500u);
	EXPECT_TRUE(log.lost.size() > 0);
}

TEST(Recovery, OldestOutstandingForProbes)
{
	Rec x;
	recovery_on_sent(&x.r, 0, 1200, DATA, 10, 0);
	recovery_on_sent(&x.r, 1, 1472, DATA | RECOVERY_PMTU_PROBE, 11, 0);
	recovery_on_sent(&x.r, 2, 1200, DATA, 12, 0);
	recovery_on_sent(&x.r, 3, 1200, DATA, 13, 0);
	auto a = ranges({{2, 2}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 1000, nullptr), 1);
	uint32_t m[4];
	ASSERT_EQ(recovery_oldest_outstanding(&x.r, m, 4), 2u);
	EXPECT_EQ(m[0], 10u);
	EXPECT_EQ(m[1], 13u);
	EXPECT_EQ(recovery_oldest_outstanding(&x.r, m, 1), 1u);
}

TEST(Recovery, PtoFollowsTheFirstSample)
{
	Rec x;
	recovery_on_sent(&x.r, 0, 1200, DATA, 0, 0);
	auto a = ranges({{0, 0}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 4000, nullptr), 1);
	EXPECT_EQ(x.r.rtt.smoothed_us, 4000u);
	// PTO never below srtt + 1 ms granularity + max_ack_delay.
	EXPECT_EQ(recovery_pto_base(&x.r), 4000u + 8000u + ACK_MAX_DELAY_US);
}

TEST(Recovery, SimLossyReorderFreeTransferCompletes)
{
	// Loss in both directions: every packet is either acknowledged or
	// declared lost exactly once, and the transfer never stalls.
	for (uint32_t seed = 1; seed <= 20; seed++) {
		SimConfig c;
		c.cc = SRM_CC_NEWRENO;
		c.loss = 0.05;
		c.ack_loss = 0.05;
		c.seed = seed;
		c.rate_Bps = 2000000;
		Sim s(c);
		s.send_budget = 2000;
		s.run_until(60000000);
		ASSERT_EQ(s.send_budget, 0u) << seed;
		ASSERT_EQ(recovery_bytes_in_flight(&s.r), 0u) << seed;
		ASSERT_EQ(s.r.stats.packets_acked + s.r.stats.packets_lost, s.sent_packets)
			<< seed;
	}
}

TEST(Recovery, ReorderingRaisesPacketThreshold)
{
	Rec x;
	Log log;
	auto cb = log.cb();
	for (uint64_t pn = 0; pn < 40; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, (uint32_t)pn, 0);
	auto a = ranges({{10, 5}});
	ASSERT_EQ(recovery_on_ack(&x.r, &a, 1000, &cb), 6);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{0, 1, 2, 3, 4}));
	// The "lost" packets were only late: the path reorders by up to 10.
	auto b = ranges({{10, 0}});
	EXPECT_EQ(recovery_on_ack(&x.r, &b, 1100, &cb), 0);
	EXPECT_EQ(x.r.stats.spurious_losses, 5u);
	EXPECT_EQ(x.r.packet_threshold, 11u);
	// Now a packet 10 behind the largest is given time (the time
	// threshold still catches it if it really is lost) ...
	log.lost.clear();
	auto c = ranges({{21, 12}});
	ASSERT_EQ(recovery_on_ack(&x.r, &c, 1200, &cb), 10);
	EXPECT_TRUE(log.lost.empty()) << "11 is 10 behind";
	auto d = ranges({{22, 12}});
	ASSERT_EQ(recovery_on_ack(&x.r, &d, 1300, &cb), 1);
	EXPECT_EQ(log.lost, (std::vector<uint64_t>{11})) << "11 behind: lost";
	// ... and the threshold never exceeds its cap.
	for (uint64_t pn = 40; pn < 400; pn++)
		recovery_on_sent(&x.r, pn, 1200, DATA, (uint32_t)pn, 2000);
	auto e = ranges({{399, 300}});
	ASSERT_GT(recovery_on_ack(&x.r, &e, 3000, &cb), 0);
	auto f = ranges({{399, 24}});
	EXPECT_EQ(recovery_on_ack(&x.r, &f, 3100, &cb), 0) << "all were declared lost";
	EXPECT_EQ(x.r.packet_threshold, (uint32_t)RECOVERY_MAX_PACKET_THRESHOLD);
}

TEST(Recovery, SimReorderingCausesFewSpuriousLosses)
{
	// 5% of packets 2 ms late (~20 packets at this rate) and no random
	// loss: after the first spurious losses the threshold adapts, so
	// nearly every packet declared lost was really dropped (by the
	// bottleneck queue).
	SimConfig c;
	c.cc = SRM_CC_BBR;
	c.reorder = 0.05;
	c.reorder_us = 2000;
	Sim s(c);
	s.run_until(5000000);
	EXPECT_GT(s.r.packet_threshold, 20u);
	EXPECT_GT(s.r.stats.spurious_losses, 0u);
	EXPECT_LT(s.r.stats.spurious_losses, 50u) << "of ~2500 reordered packets";
	ASSERT_GE(s.lost_packets + 5, s.dropped);
	EXPECT_LT(s.lost_packets - std::min(s.lost_packets, s.dropped), 50u);
	EXPECT_GT(s.goodput_fraction(0, 0), 0.85);
}
