// pmtu_test.cc — DPLPMTUD search, probe failure, black-hole fallback,
// raise timer, packet-too-big, and the search inside a simulated transfer.
#include <gtest/gtest.h>

#include "recovery_sim.h"

using rsim::SharedLinkSim;
using rsim::Sim;
using rsim::SimConfig;

namespace {

// Drive the search against a path that carries up to `path` bytes, one
// probe at a time, 10 ms per probe; stop when no probe is due within 1 s.
int converge(pmtu &p, uint32_t path, uint64_t &now)
{
	int probes = 0;
	for (int i = 0; i < 200; i++) {
		uint32_t size = pmtu_probe_size_due(&p, now);
		if (size == 0) {
			uint64_t d = pmtu_deadline(&p);
			if (d == UINT64_MAX || d > now + 1000000)
				break;
			now = d > now ? d : now + 1;
			continue;
		}
		pmtu_on_probe_sent(&p, size, now);
		probes++;
		now += 10000;
		if (size <= path)
			pmtu_on_probe_acked(&p, size, now);
		else
			pmtu_on_probe_lost(&p, size, now);
	}
	return probes;
}

} // namespace

TEST(Pmtu, StartsAtBaseAndProbesMaxFirst)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	EXPECT_EQ(pmtu_current(&p), (uint32_t)WIRE_BASE_UDP_PAYLOAD);
	EXPECT_EQ(pmtu_probe_size_due(&p, 0), (uint32_t)WIRE_MAX_UDP_PAYLOAD);
	pmtu_on_probe_sent(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	EXPECT_EQ(pmtu_probe_size_due(&p, 0), 0u) << "one probe at a time";
	EXPECT_EQ(pmtu_deadline(&p), UINT64_MAX);
	EXPECT_TRUE(pmtu_on_probe_acked(&p, WIRE_MAX_UDP_PAYLOAD, 5000));
	EXPECT_EQ(pmtu_current(&p), (uint32_t)WIRE_MAX_UDP_PAYLOAD);
	EXPECT_EQ(p.state, PMTU_SEARCH_DONE);
	EXPECT_EQ(pmtu_probe_size_due(&p, 5000), 0u);
}

TEST(Pmtu, Ipv6Maximum)
{
	pmtu p;
	pmtu_init(&p, PMTU_MAX_UDP6_PAYLOAD, 0);
	EXPECT_EQ(pmtu_probe_size_due(&p, 0), 1452u);
	uint64_t now = 0;
	converge(p, 1500, now);
	EXPECT_EQ(pmtu_current(&p), 1452u) << "never above the family maximum";
}

TEST(Pmtu, BaseOnlyPathNeverProbes)
{
	pmtu p;
	pmtu_init(&p, 1000, 0); // below base: clamped
	EXPECT_EQ(pmtu_current(&p), (uint32_t)WIRE_BASE_UDP_PAYLOAD);
	EXPECT_EQ(pmtu_probe_size_due(&p, 0), 0u);
	EXPECT_EQ(pmtu_deadline(&p), UINT64_MAX);
}

TEST(Pmtu, ConvergesToPathMtu)
{
	// 1232: a 1280-byte IPv6 link; 1252/1280/1400: tunnels; 1472: Ethernet.
	for (uint32_t path : {1200u, 1232u, 1252u, 1280u, 1400u, 1420u, 1471u, 1472u}) {
		pmtu p;
		pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
		uint64_t now = 0;
		int probes = converge(p, path, now);
		EXPECT_LE(pmtu_current(&p), path) << path;
		EXPECT_GE(pmtu_current(&p) + PMTU_SEARCH_STEP, path) << path;
		EXPECT_EQ(p.state, PMTU_SEARCH_DONE) << path;
		// max first, then ~log2(272/16) = 5 steps, 3 probes per failure.
		EXPECT_LE(probes, 3 + 5 * 3) << path;
	}
}

TEST(Pmtu, SizeFailsOnlyAfterThreeLostProbes)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	for (int i = 0; i < PMTU_MAX_PROBES - 1; i++) {
		uint64_t now = (uint64_t)i * 1000000;
		ASSERT_EQ(pmtu_probe_size_due(&p, now), 1472u);
		pmtu_on_probe_sent(&p, 1472, now);
		pmtu_on_probe_lost(&p, 1472, now + 1000);
		EXPECT_EQ(pmtu_probe_size_due(&p, now + 1000), 0u) << "spaced";
		EXPECT_EQ(pmtu_deadline(&p), now + 1000 + PMTU_PROBE_INTERVAL_US);
	}
	uint64_t now = 10000000;
	ASSERT_EQ(pmtu_probe_size_due(&p, now), 1472u);
	pmtu_on_probe_sent(&p, 1472, now);
	pmtu_on_probe_lost(&p, 1472, now);
	EXPECT_EQ(p.hi, 1472u);
	uint32_t next = pmtu_probe_size_due(&p, now + PMTU_PROBE_INTERVAL_US);
	EXPECT_EQ(next, 1200u + (1472u - 1200u) / 2);
	// A late loss report of an older probe size changes nothing.
	pmtu_on_probe_sent(&p, next, now + PMTU_PROBE_INTERVAL_US);
	pmtu_on_probe_lost(&p, 1472, now + PMTU_PROBE_INTERVAL_US);
	EXPECT_EQ(p.probe_size, next);
	EXPECT_EQ(p.probe_losses, 0u);
}

TEST(Pmtu, BlackHoleFallsBackAndResearches)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	uint64_t now = 0;
	converge(p, 1472, now);
	ASSERT_EQ(pmtu_current(&p), 1472u);
	// The path shrinks to 1300: full-size packets vanish while a small
	// one (a PING or short frame) gets through.
	EXPECT_FALSE(pmtu_on_packet_lost(&p, 1472, now));
	EXPECT_FALSE(pmtu_on_packet_acked(&p, 60, now));
	for (int i = 1; i < PMTU_BLACK_HOLE_LOSSES - 1; i++)
		EXPECT_FALSE(pmtu_on_packet_lost(&p, 1472, now));
	EXPECT_TRUE(pmtu_on_packet_lost(&p, 1472, now));
	EXPECT_EQ(pmtu_current(&p), (uint32_t)WIRE_BASE_UDP_PAYLOAD);
	EXPECT_EQ(p.black_holes, 1u);
	// Searches again at once.
	EXPECT_EQ(pmtu_probe_size_due(&p, now), 1472u);
	converge(p, 1300, now);
	EXPECT_LE(pmtu_current(&p), 1300u);
	EXPECT_GE(pmtu_current(&p), 1300u - PMTU_SEARCH_STEP);
}

TEST(Pmtu, BlackHoleWithoutEvidenceNeedsTwiceTheLosses)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	uint64_t now = 0;
	converge(p, 1472, now);
	for (int i = 1; i < 2 * PMTU_BLACK_HOLE_LOSSES; i++)
		ASSERT_FALSE(pmtu_on_packet_lost(&p, 1472, now)) << i;
	EXPECT_TRUE(pmtu_on_packet_lost(&p, 1472, now));
	EXPECT_EQ(pmtu_current(&p), (uint32_t)WIRE_BASE_UDP_PAYLOAD);
}

TEST(Pmtu, RandomLossIsNotABlackHole)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	uint64_t now = 0;
	converge(p, 1472, now);
	std::mt19937 rng(3);
	// 10% random loss over 100k full-size packets, small packets mixed in.
	for (int i = 0; i < 100000; i++) {
		if (rng() % 10 == 0)
			ASSERT_FALSE(pmtu_on_packet_lost(&p, 1472, now)) << i;
		else
			pmtu_on_packet_acked(&p, 1472, now);
		if (i % 7 == 0)
			pmtu_on_packet_acked(&p, 80, now);
	}
	EXPECT_EQ(pmtu_current(&p), 1472u);
	EXPECT_EQ(p.black_holes, 0u);
	// Losses of small packets never count.
	for (int i = 0; i < 100; i++)
		EXPECT_FALSE(pmtu_on_packet_lost(&p, 1200, now));
}

TEST(Pmtu, RaiseTimerFindsLargerMtu)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	uint64_t now = 0;
	converge(p, 1300, now);
	uint32_t low = pmtu_current(&p);
	ASSERT_LE(low, 1300u);
	uint64_t raise = pmtu_deadline(&p);
	EXPECT_GE(raise, now + PMTU_RAISE_INTERVAL_US - 1000000);
	EXPECT_EQ(pmtu_probe_size_due(&p, raise - 1), 0u);
	// The path grew (route change); the raise probe finds it.
	now = raise;
	EXPECT_EQ(pmtu_probe_size_due(&p, now), 1472u);
	converge(p, 1472, now);
	EXPECT_EQ(pmtu_current(&p), 1472u);
	// If it had not grown, the raise search keeps the old size.
	pmtu q;
	pmtu_init(&q, WIRE_MAX_UDP_PAYLOAD, 0);
	now = 0;
	converge(q, 1300, now);
	now = pmtu_deadline(&q);
	converge(q, 1300, now);
	EXPECT_EQ(pmtu_current(&q), low);
}

TEST(Pmtu, PacketTooBig)
{
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	// EMSGSIZE on the first probe: fails at once, hint narrows the search.
	pmtu_on_probe_sent(&p, 1472, 0);
	EXPECT_FALSE(pmtu_on_too_big(&p, 1472, 1232, 0));
	EXPECT_EQ(p.hi, 1233u);
	EXPECT_EQ(p.probe_size, 0u);
	uint64_t now = 0;
	converge(p, 1232, now);
	EXPECT_LE(pmtu_current(&p), 1232u);
	EXPECT_GE(pmtu_current(&p), 1232u - PMTU_SEARCH_STEP);
	// A normal packet too big: drop to the hint.
	pmtu q;
	pmtu_init(&q, WIRE_MAX_UDP_PAYLOAD, 0);
	now = 0;
	converge(q, 1472, now);
	EXPECT_TRUE(pmtu_on_too_big(&q, 1472, 1280, now));
	EXPECT_EQ(pmtu_current(&q), 1280u);
	// A hint below the base is not believed below the base.
	EXPECT_TRUE(pmtu_on_too_big(&q, 1280, 500, now));
	EXPECT_EQ(pmtu_current(&q), (uint32_t)WIRE_BASE_UDP_PAYLOAD);
	EXPECT_FALSE(pmtu_on_too_big(&q, 1200, 0, now)) << "base always fits";
}

TEST(Pmtu, SimulatedTransferFindsMtuAndSurvivesShrink)
{
	SimConfig c;
	c.cc = SRM_CC_BBR;
	c.pmtu = true;
	c.path_mtu = 1400;
	c.loss = 0.01;
	Sim s(c);
	s.run_until(3000000);
	EXPECT_LE(pmtu_current(&s.pm), 1400u);
	EXPECT_GE(pmtu_current(&s.pm), 1400u - PMTU_SEARCH_STEP);
	EXPECT_EQ(s.r.cc.mtu, pmtu_current(&s.pm)) << "cc follows the pmtu";
	EXPECT_GT(s.probes_acked, 0u);
	uint64_t before = s.acked_bytes;
	// The path MTU drops mid-transfer with no ICMP: a black hole.
	s.set_path_mtu(1280);
	s.run_until(8000000);
	EXPECT_GE(s.pm.black_holes, 1u);
	EXPECT_LE(pmtu_current(&s.pm), 1280u);
	EXPECT_GE(pmtu_current(&s.pm), 1280u - PMTU_SEARCH_STEP);
	// And the transfer kept going at a good rate afterwards.
	uint64_t b1 = s.acked_bytes, t1 = s.now;
	s.run_until(12000000);
	EXPECT_GT(s.acked_bytes, before);
	EXPECT_GT(s.goodput_fraction(b1, t1), 0.8);
}

// A relay (or an IPv6 path) lowers the ceiling: it applies at once, and no
// probe goes above it even where every probe would pass (a relay's TCP leg
// carries anything; its UDP leg fragments).  A higher one is searched for
// at once.
TEST(Pmtu, CeilingFollowsThePath)
{
	const uint32_t relay = WIRE_MAX_UDP_PAYLOAD - 36;
	pmtu p;
	pmtu_init(&p, WIRE_MAX_UDP_PAYLOAD, 0);
	uint64_t now = 0;
	converge(p, 9000, now);
	ASSERT_EQ(pmtu_current(&p), (uint32_t)WIRE_MAX_UDP_PAYLOAD);
	EXPECT_TRUE(pmtu_set_max(&p, relay, now));
	EXPECT_EQ(pmtu_current(&p), relay);
	EXPECT_FALSE(pmtu_set_max(&p, relay, now)) << "no change";
	// Black-hole fallback, raise timer, probes: never above the ceiling.
	for (int i = 0; i < 2 * PMTU_BLACK_HOLE_LOSSES; i++)
		pmtu_on_packet_lost(&p, relay, now);
	now += 2 * PMTU_RAISE_INTERVAL_US;
	for (int i = 0; i < 50; i++) {
		uint32_t size = pmtu_probe_size_due(&p, now);
		EXPECT_LE(size, relay);
		if (size) {
			pmtu_on_probe_sent(&p, size, now);
			pmtu_on_probe_acked(&p, size, now + 1000);
		}
		now += 10000;
	}
	EXPECT_EQ(pmtu_current(&p), relay);
	// A probe of the old size answered late: ignored.
	EXPECT_FALSE(pmtu_on_probe_acked(&p, WIRE_MAX_UDP_PAYLOAD, now));
	EXPECT_EQ(pmtu_current(&p), relay);
	// Direct again: the full size is probed at once.
	EXPECT_FALSE(pmtu_set_max(&p, WIRE_MAX_UDP_PAYLOAD, now));
	EXPECT_EQ(pmtu_probe_size_due(&p, now), (uint32_t)WIRE_MAX_UDP_PAYLOAD);
	converge(p, 9000, now);
	EXPECT_EQ(pmtu_current(&p), (uint32_t)WIRE_MAX_UDP_PAYLOAD);
	// In the middle of a search, a lower ceiling ends probes above it.
	pmtu q;
	pmtu_init(&q, WIRE_MAX_UDP_PAYLOAD, 0);
	ASSERT_EQ(pmtu_probe_size_due(&q, 0), (uint32_t)WIRE_MAX_UDP_PAYLOAD);
	pmtu_on_probe_sent(&q, WIRE_MAX_UDP_PAYLOAD, 0);
	EXPECT_FALSE(pmtu_set_max(&q, relay, 100));
	EXPECT_EQ(pmtu_probe_size_due(&q, 100), relay);
	EXPECT_FALSE(pmtu_on_probe_acked(&q, WIRE_MAX_UDP_PAYLOAD, 200));
	EXPECT_EQ(pmtu_current(&q), (uint32_t)WIRE_BASE_UDP_PAYLOAD);
}
