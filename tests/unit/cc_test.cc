// cc_test.cc — congestion controllers' response to loss and RTT, CUBIC's
// growth function, BBR under random loss, pacing math.
#include <gtest/gtest.h>

#include <set>

#include "recovery_sim.h"

using rsim::SharedLinkSim;
using rsim::Sim;
using rsim::SimConfig;

namespace {

const uint32_t MTU = 1200;

// Feed a window-limited flow to cc for `dur_us`: every millisecond,
// cwnd x 1 ms / rtt bytes are acknowledged (packets sent rtt ago).
void feed(cc *c, uint64_t &now, uint64_t dur_us, uint64_t rtt_us)
{
	for (uint64_t end = now + dur_us; now < end;) {
		now += 1000;
		cc_ack a = {};
		a.now_us = now;
		a.acked_bytes = cc_cwnd(c) * 1000 / rtt_us;
		a.prior_in_flight = cc_cwnd(c);
		a.bytes_in_flight = cc_cwnd(c) - a.acked_bytes;
		a.newest_acked_sent_us = now - rtt_us;
		a.latest_rtt_us = rtt_us;
		a.srtt_us = rtt_us;
		a.min_rtt_us = rtt_us;
		cc_on_ack(c, &a);
	}
}

void lose(cc *c, uint64_t now, uint64_t sent_us)
{
	cc_loss l = {};
	l.now_us = now;
	l.lost_bytes = MTU;
	l.lost_packets = 1;
	l.newest_lost_sent_us = sent_us;
	cc_on_loss(c, &l);
}

cc_ack ack_of(uint64_t now, uint64_t bytes, uint64_t in_flight, uint64_t sent_us)
{
	cc_ack a = {};
	a.now_us = now;
	a.acked_bytes = bytes;
	a.prior_in_flight = in_flight;
	a.newest_acked_sent_us = sent_us;
	a.srtt_us = 100000;
	return a;
}

double run_goodput(srm_cc algo, double loss, uint32_t seed, uint64_t secs = 6)
{
	SimConfig c;
	c.cc = algo;
	c.loss = loss;
	c.seed = seed;
	Sim s(c);
	s.run_until(2000000); // past STARTUP / slow start
	uint64_t b0 = s.acked_bytes, t0 = s.now;
	s.run_until(2000000 + secs * 1000000);
	return s.goodput_fraction(b0, t0);
}

} // namespace

TEST(Cc, InitialWindowIsTenPackets)
{
	for (srm_cc a : {SRM_CC_BBR, SRM_CC_CUBIC, SRM_CC_NEWRENO}) {
		cc c;
		cc_init(&c, a, MTU, 0);
		EXPECT_EQ(cc_cwnd(&c), 10u * MTU) << cc_name(a);
		EXPECT_GT(cc_pacing_rate(&c), 0u);
	}
	EXPECT_STREQ(cc_name(SRM_CC_BBR), "bbr");
}

TEST(Cc, NewRenoSlowStartThenHalves)
{
	cc c;
	cc_init(&c, SRM_CC_NEWRENO, MTU, 0);
	// Slow start: +acked bytes.
	cc_ack a = ack_of(1000, 5 * MTU, 10 * MTU, 0);
	cc_on_ack(&c, &a);
	EXPECT_EQ(cc_cwnd(&c), 15u * MTU);
	// Loss: halve (RFC 9002 kLossReductionFactor 0.5), enter recovery.
	lose(&c, 2000, 1500);
	EXPECT_EQ(cc_cwnd(&c), 7u * MTU + MTU / 2);
	EXPECT_EQ(c.ssthresh, cc_cwnd(&c));
	// Another loss from before the recovery period: no second cut.
	lose(&c, 3000, 1800);
	EXPECT_EQ(cc_cwnd(&c), 7u * MTU + MTU / 2);
	// ACKs of packets sent before recovery started do not grow it.
	cc_ack b = ack_of(3000, 2 * MTU, 8 * MTU, 1900);
	cc_on_ack(&c, &b);
	EXPECT_EQ(cc_cwnd(&c), 7u * MTU + MTU / 2);
	// A loss of a packet sent after the recovery start cuts again.
	lose(&c, 9000, 2500);
	EXPECT_EQ(cc_cwnd(&c), (7u * MTU + MTU / 2) / 2);
	// Never below the minimum window.
	for (int i = 0; i < 10; i++)
		lose(&c, 10000 + i * 1000, 9500 + i * 1000);
	EXPECT_EQ(cc_cwnd(&c), (uint64_t)CC_MIN_WINDOW_PACKETS * MTU);
}

TEST(Cc, NewRenoCongestionAvoidanceOneMtuPerWindow)
{
	cc c;
	cc_init(&c, SRM_CC_NEWRENO, MTU, 0);
	lose(&c, 1000, 500); // cwnd 5 packets, ssthresh 5 packets
	uint64_t w = cc_cwnd(&c);
	ASSERT_EQ(w, 5u * MTU);
	// A whole window acknowledged by packets sent after recovery: +1 MTU.
	for (int i = 0; i < 5; i++) {
		cc_ack a = ack_of(2000 + i, MTU, w, 1500);
		cc_on_ack(&c, &a);
	}
	EXPECT_EQ(cc_cwnd(&c), w + MTU);
}

TEST(Cc, NoGrowthWhenApplicationLimited)
{
	for (srm_cc algo : {SRM_CC_CUBIC, SRM_CC_NEWRENO}) {
		cc c;
		cc_init(&c, algo, MTU, 0);
		// Only 2 of 10 packets in flight: the window is not the limit.
		cc_ack a = ack_of(1000, 2 * MTU, 2 * MTU, 0);
		cc_on_ack(&c, &a);
		EXPECT_EQ(cc_cwnd(&c), 10u * MTU) << cc_name(algo);
	}
}

TEST(Cc, CubicReducesByBeta)
{
	cc c;
	cc_init(&c, SRM_CC_CUBIC, MTU, 0);
	uint64_t now = 0;
	feed(&c, now, 200000, 50000); // slow start to a bigger window
	uint64_t w = cc_cwnd(&c);
	ASSERT_GT(w, 100u * MTU);
	lose(&c, now, now - 1000);
	EXPECT_EQ(cc_cwnd(&c), w * 7 / 10);
	EXPECT_EQ(c.cubic.w_max, w);
}

TEST(Cc, CubicGrowthFunction)
{
	// RFC 9438: after a reduction from W_max, cwnd follows
	// W(t) = C (t - K)^3 + W_max: concave up to W_max at t = K, flat
	// around it, convex beyond.  RTT 100 ms, W_max 1000 packets:
	// K = cbrt(1000 x 0.3 / 0.4) = 9.09 s.
	cc c;
	cc_init(&c, SRM_CC_CUBIC, MTU, 0);
	c.cwnd = 1000 * MTU;
	c.ssthresh = 1000 * MTU;
	uint64_t now = 1000000, rtt = 100000;
	lose(&c, now, now - 1);
	ASSERT_EQ(cc_cwnd(&c), 700u * MTU);
	// One RTT of recovery, then the first ACK in avoidance starts the epoch.
	feed(&c, now, rtt, rtt);
	EXPECT_EQ(cc_cwnd(&c), 700u * MTU) << "no growth during recovery";
	feed(&c, now, 1000, rtt);
	ASSERT_NE(c.cubic.epoch_us, 0u);
	EXPECT_NEAR((double)c.cubic.k_us, 9085603.0, 200.0);
	uint64_t epoch = c.cubic.epoch_us;

	auto w_cubic = [&](double t_s) {
		double d = t_s - 9.0856;
		return (0.4 * d * d * d + 1000.0) * MTU;
	};
	std::vector<double> at;
	for (double t : {2.0, 4.5, 9.0856, 12.0, 14.0}) {
		feed(&c, now, (uint64_t)(t * 1e6) - (now - epoch), rtt);
		double w = (double)cc_cwnd(&c);
		// cwnd aims at W(t + RTT); allow the one-RTT lag and rounding.
		EXPECT_GT(w, w_cubic(t) * 0.97) << "t=" << t;
		EXPECT_LT(w, w_cubic(t + 0.1) * 1.03) << "t=" << t;
		at.push_back(w);
	}
	// Concave then convex: growth slows approaching W_max, speeds after.
	EXPECT_GT(at[1] - at[0], at[2] - at[1]);
	EXPECT_GT(at[4] - at[3], at[3] - at[2]);
}

TEST(Cc, CubicFastConvergence)
{
	cc c;
	cc_init(&c, SRM_CC_CUBIC, MTU, 0);
	c.cwnd = c.ssthresh = 1000 * MTU;
	lose(&c, 1000000, 999999);
	EXPECT_EQ(c.cubic.w_max, 1000u * MTU);
	// Lost again before regaining W_max: W_max = cwnd (1 + beta) / 2.
	uint64_t w = cc_cwnd(&c);
	lose(&c, 3000000, 2999999);
	EXPECT_EQ(c.cubic.w_max, w * 17 / 20);
}

TEST(Cc, CubicRenoFriendlyAtShortRtt)
{
	// At 1 ms RTT the cubic curve grows slowly in wall time; the
	// Reno-friendly estimate (alpha = 3(1-b)/(1+b) per RTT) must lead.
	cc c;
	cc_init(&c, SRM_CC_CUBIC, MTU, 0);
	c.cwnd = c.ssthresh = 100 * MTU;
	uint64_t now = 1000000;
	lose(&c, now, now - 1);
	uint64_t w0 = cc_cwnd(&c);
	feed(&c, now, 51000, 1000); // 1 RTT of recovery + 50 RTTs
	double packets = double(cc_cwnd(&c) - w0) / MTU;
	// 50 RTTs x 0.53 packets = ~26 packets; the cubic curve alone would
	// add under 1 packet in 50 ms.
	EXPECT_GT(packets, 20.0);
	EXPECT_LT(packets, 32.0);
}

TEST(Cc, PersistentCongestionMinimumWindow)
{
	for (srm_cc algo : {SRM_CC_BBR, SRM_CC_CUBIC, SRM_CC_NEWRENO}) {
		cc c;
		cc_init(&c, algo, MTU, 0);
		cc_on_persistent_congestion(&c, 1000);
		uint64_t min = (algo == SRM_CC_BBR ? CC_BBR_MIN_WINDOW_PACKETS
						   : CC_MIN_WINDOW_PACKETS) * (uint64_t)MTU;
		EXPECT_EQ(cc_cwnd(&c), min) << cc_name(algo);
	}
}

TEST(Cc, SetMtuKeepsMinimum)
{
	cc c;
	cc_init(&c, SRM_CC_NEWRENO, MTU, 0);
	cc_on_persistent_congestion(&c, 0);
	cc_set_mtu(&c, 1472);
	EXPECT_EQ(cc_cwnd(&c), 2u * 1472);
}

TEST(Cc, PacingMath)
{
	cc c;
	cc_init(&c, SRM_CC_NEWRENO, MTU, 0);
	c.pacing_rate = 1200000; // one 1200-byte packet per ms
	c.tokens = (int64_t)CC_PACING_BURST_PACKETS * MTU;
	c.tokens_us = 0;
	// The burst allowance goes out at once ...
	for (int i = 0; i < CC_PACING_BURST_PACKETS; i++) {
		ASSERT_EQ(cc_pacing_next(&c, MTU, 0), 0u) << i;
		cc_on_sent(&c, MTU, 0, 0);
	}
	// ... then one packet per MTU / rate.
	EXPECT_EQ(cc_pacing_next(&c, MTU, 0), 1000u);
	EXPECT_EQ(cc_pacing_delay(&c, MTU, 400), 600u);
	EXPECT_EQ(cc_pacing_delay(&c, MTU, 1000), 0u);
	cc_on_sent(&c, MTU, 0, 1000);
	EXPECT_EQ(cc_pacing_next(&c, MTU, 1000), 2000u);
	// Half a packet at 1.5 ms: 600 tokens, 600 more needed.
	EXPECT_EQ(cc_pacing_next(&c, MTU, 1500), 2000u);
	// Idle time refills at most one burst.
	EXPECT_EQ(cc_pacing_next(&c, MTU, 10000000), 10000000u);
	for (int i = 0; i < CC_PACING_BURST_PACKETS; i++)
		cc_on_sent(&c, MTU, 0, 10000000);
	EXPECT_EQ(cc_pacing_delay(&c, MTU, 10000000), 1000u);
	// Rounding up: 7 bytes at 3 bytes/s is 2.333 s, so 2333334 us.
	c.pacing_rate = 3;
	c.tokens = 0;
	c.tokens_us = 0;
	EXPECT_EQ(cc_pacing_next(&c, 7, 0), 2333334u);
}

TEST(Cc, PacingBurstScalesWithRate)
{
	// At 10 Gbit/s one timer per packet is impossible: the burst is
	// 1 ms of data (1.25 MB), not 10 packets.
	cc c;
	cc_init(&c, SRM_CC_BBR, MTU, 0);
	c.pacing_rate = 1250000000;
	c.tokens = 0;
	c.tokens_us = 0;
	uint64_t sent = 0, now = 5000;
	while (cc_pacing_next(&c, MTU, now) <= now && sent < 10000000) {
		cc_on_sent(&c, MTU, 0, now);
		sent += MTU;
	}
	EXPECT_GE(sent, 1250000u - MTU);
	EXPECT_LE(sent, 1250000u + MTU);
}

TEST(Cc, WindowControllersPaceAtMultipleOfCwndOverRtt)
{
	cc c;
	cc_init(&c, SRM_CC_NEWRENO, MTU, 0);
	cc_ack a = ack_of(1000, MTU, 10 * MTU, 0);
	a.srtt_us = 10000;
	cc_on_ack(&c, &a);
	// Slow start: 2 x cwnd / srtt.
	EXPECT_EQ(cc_pacing_rate(&c), 2 * 11 * MTU * 100ull);
	lose(&c, 2000, 1500);
	// Avoidance: 1.25 x.
	EXPECT_EQ(cc_pacing_rate(&c), cc_cwnd(&c) * 125 / 100 * 100);
}

TEST(Cc, BbrKeepsRateUnderRandomLoss)
{
	for (double loss : {0.0, 0.02, 0.05}) {
		for (uint32_t seed : {1u, 2u}) {
			double g = run_goodput(SRM_CC_BBR, loss, seed);
			// The link is 100% - loss useful at best.
			EXPECT_GT(g, 0.85 * (1.0 - loss)) << "loss " << loss << " seed " << seed;
			EXPECT_LE(g, 1.0);
		}
	}
}

TEST(Cc, LossBasedControllersShrinkUnderRandomLoss)
{
	for (srm_cc algo : {SRM_CC_CUBIC, SRM_CC_NEWRENO}) {
		double clean = run_goodput(algo, 0.0, 1);
		EXPECT_GT(clean, 0.9) << cc_name(algo);
		for (double loss : {0.02, 0.05}) {
			double g = run_goodput(algo, loss, 1);
			// Mathis: ~1.22 MSS / (RTT sqrt(p)) = ~5% of this link at 2%.
			EXPECT_LT(g, 0.25) << cc_name(algo) << " loss " << loss;
			EXPECT_GT(g, 0.005) << cc_name(algo) << " must not stall";
		}
	}
}

TEST(Cc, BbrBacksOffUnderHeavyLoss)
{
	SimConfig c;
	c.cc = SRM_CC_BBR;
	c.loss = 0.35;
	Sim s(c);
	bool bounded = false;
	for (uint64_t t = 0; t < 3000000; t += 10000) {
		s.run_until(t);
		bounded |= s.r.cc.bbr.bw_lo != UINT64_MAX;
	}
	EXPECT_TRUE(bounded) << "heavy-loss rounds set bw_lo";
	EXPECT_LT(cc_pacing_rate(&s.r.cc), c.rate_Bps / 2);
}

TEST(Cc, BbrModelTracksLinkAndRtt)
{
	uint64_t cwnd_at[2];
	int i = 0;
	for (uint64_t delay : {10000u, 40000u}) {
		SimConfig c;
		c.cc = SRM_CC_BBR;
		c.delay_us = delay;
		c.buffer_bytes = 4 * c.rate_Bps * 2 * delay / 1000000;
		Sim s(c);
		std::set<int> states;
		for (uint64_t t = 0; t < 12000000; t += 10000) {
			s.run_until(t);
			states.insert(s.r.cc.bbr.state);
		}
		// Bandwidth within 5% of the link, min RTT the propagation RTT.
		EXPECT_NEAR((double)cc_bandwidth(&s.r.cc), (double)c.rate_Bps, 0.05 * c.rate_Bps);
		EXPECT_NEAR((double)cc_min_rtt(&s.r.cc), 2.0 * delay, 0.1 * delay);
		// Every phase was visited: STARTUP, DRAIN, PROBE_BW and, after
		// 10 s, PROBE_RTT.
		EXPECT_EQ(states.size(), 4u) << delay;
		// Queue stays small: srtt near min_rtt.
		EXPECT_LT((double)s.r.rtt.smoothed_us, 1.5 * 2 * delay);
		cwnd_at[i++] = cc_cwnd(&s.r.cc);
	}
	// cwnd ~ 2 x BDP: 4x the RTT, ~4x the window.
	double ratio = double(cwnd_at[1]) / double(cwnd_at[0]);
	EXPECT_GT(ratio, 3.0);
	EXPECT_LT(ratio, 4.5);
}

TEST(Cc, WindowReachesMultipleMegabytes)
{
	// 400 Mbit/s x 50 ms: BDP 2.5 MB; flow control auto-tuning needs the
	// window and the BDP estimate to follow.
	SimConfig c;
	c.cc = SRM_CC_BBR;
	c.rate_Bps = 50000000;
	c.delay_us = 25000;
	c.buffer_bytes = 2500000;
	Sim s(c);
	s.run_until(3000000);
	EXPECT_GT(cc_cwnd(&s.r.cc), 4000000u);
	EXPECT_GT(recovery_bdp(&s.r), 2300000u);
	EXPECT_LT(recovery_bdp(&s.r), 6000000u);
}

TEST(Cc, ReorderingAndDuplicationAreHarmless)
{
	for (srm_cc algo : {SRM_CC_BBR, SRM_CC_CUBIC}) {
		SimConfig c;
		c.cc = algo;
		c.reorder = 0.01;
		c.reorder_us = 3000;
		c.duplicate = 0.02;
		c.loss = 0.01;
		Sim s(c);
		s.send_budget = 5000;
		s.run_until(30000000);
		EXPECT_EQ(s.send_budget, 0u) << cc_name(algo);
		EXPECT_EQ(recovery_bytes_in_flight(&s.r), 0u) << cc_name(algo);
		EXPECT_EQ(s.r.stats.packets_acked + s.r.stats.packets_lost, s.sent_packets);
	}
}

namespace {

// Shares of the link two flows get between from_s and to_s.
std::pair<double, double> shares(SharedLinkSim &s, uint64_t from_s, uint64_t to_s)
{
	s.run_until(from_s * 1000000);
	uint64_t a0 = s.flows[0]->acked_bytes, b0 = s.flows[1]->acked_bytes;
	s.run_until(to_s * 1000000);
	double link = 12500000.0 * double(to_s - from_s);
	return {double(s.flows[0]->acked_bytes - a0) / link,
		double(s.flows[1]->acked_bytes - b0) / link};
}

} // namespace

TEST(Cc, BbrSessionsShareFairly)
{
	// Two sessions through one 100 Mbit/s drop-tail bottleneck (buffer
	// 1 BDP), the second starting 1 s later, with 0% and 5% random loss.
	for (double loss : {0.0, 0.05}) {
		SharedLinkSim s(12500000, 250000, 1);
		s.loss = loss;
		s.add_flow(SRM_CC_BBR, 10000, 0);
		s.add_flow(SRM_CC_BBR, 10000, 1000000);
		auto sh = shares(s, 10, 30);
		EXPECT_GT(sh.first + sh.second, 0.9 * (1 - loss)) << loss;
		EXPECT_GT(sh.first, 0.35 * (1 - loss)) << loss;
		EXPECT_GT(sh.second, 0.35 * (1 - loss)) << loss;
	}
}

TEST(Cc, BbrLongRttSessionDoesNotStarveShortOne)
{
	// 20 ms and 80 ms RTT through a 1-BDP (20 ms) buffer: plain BBRv1
	// gives the long flow ~95% (its 2 x BDP window fills the queue); the
	// standing-queue + loss bound keeps both well above starvation.
	SharedLinkSim s(12500000, 250000, 1);
	s.add_flow(SRM_CC_BBR, 10000, 0);
	s.add_flow(SRM_CC_BBR, 40000, 1000000);
	auto sh = shares(s, 10, 30);
	EXPECT_GT(sh.first + sh.second, 0.9);
	EXPECT_GT(sh.first, 0.2);
	EXPECT_GT(sh.second, 0.2);
}

TEST(Cc, CubicSessionsShareFairly)
{
	SharedLinkSim s(12500000, 250000, 1);
	s.add_flow(SRM_CC_CUBIC, 10000, 0);
	s.add_flow(SRM_CC_CUBIC, 10000, 1000000);
	auto sh = shares(s, 10, 40);
	EXPECT_GT(sh.first + sh.second, 0.85);
	EXPECT_GT(sh.first, 0.3);
	EXPECT_GT(sh.second, 0.3);
}

TEST(Cc, IdleThenBulkRampsUpFast)
{
	// An interactive session (20 packets every 100 ms for 3 s) turns into
	// a bulk transfer: app-limited samples must not have taught the model
	// a low bandwidth (BBR stays in STARTUP), so the link is full within
	// a few hundred ms (a stale 1 MB/s estimate would need ~10 gain
	// cycles of 1.25x, seconds).
	for (srm_cc algo : {SRM_CC_BBR, SRM_CC_CUBIC}) {
		SimConfig c;
		c.cc = algo;
		Sim s(c);
		s.send_budget = 0;
		for (uint64_t t = 0; t < 3000000; t += 100000) {
			s.send_budget += 20;
			s.run_until(t + 100000);
		}
		EXPECT_EQ(s.send_budget, 0u);
		if (algo == SRM_CC_BBR) {
			EXPECT_EQ(s.r.cc.bbr.state, BBR_STARTUP);
		}
		s.send_budget = UINT64_MAX;
		s.run_until(3300000);
		uint64_t b0 = s.acked_bytes, t0 = s.now;
		s.run_until(4000000);
		EXPECT_GT(s.goodput_fraction(b0, t0), 0.85) << cc_name(algo);
	}
}
