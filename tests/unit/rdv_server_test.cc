// rdv_server_test.cc — the rendezvous server state machine, driven with
// hand-made packets: authentication, replay, hijacking, expiry, bounded
// memory, amplification, rate limits and the relay.
#include <gtest/gtest.h>

#include <random>

#include "rdv_sim.h"

namespace {

struct Raw {
	Sim &sim;
	rdv_server *s;
	explicit Raw(Sim &si) : sim(si), s(si.servers[0].s) {}

	int send(const rdv_endpoint &src, const uint8_t *pkt, size_t len, rdv_out *out, size_t cap = 2)
	{
		return rdv_server_receive(s, pkt, len, &src, sim.now, out, cap);
	}

	// REGISTER from src; returns the decoded CHALLENGE.
	rdv_msg challenge(const rdv_endpoint &src)
	{
		rdv_msg m{}, ch{};
		m.kind = RDV_REGISTER;
		uint8_t pkt[RDV_MAX_PACKET];
		size_t len = rdv_msg_encode(&m, nullptr, RDV_REGISTER_MIN_BYTES, pkt, sizeof pkt);
		rdv_out out[2];
		EXPECT_EQ(send(src, pkt, len, out), 1);
		EXPECT_LE(out[0].len, len);
		EXPECT_EQ(rdv_msg_decode(out[0].buf, out[0].len, &ch), 0);
		EXPECT_EQ(ch.kind, RDV_CHALLENGE);
		return ch;
	}

	// An AUTH for challenge ch, as the holder of secret (claiming pub).
	size_t auth(const rdv_msg &ch, const uint8_t secret[32], const uint8_t claim_pub[32],
		    uint64_t ts, uint8_t *pkt, uint8_t k_s2c[32] = nullptr,
		    uint8_t k_c2s_out[32] = nullptr)
	{
		uint8_t ka[32], kc[32], ks[32];
		EXPECT_EQ(rdv_derive_keys(secret, ch.eph, claim_pub, ch.eph, ka, kc, ks), 0);
		rdv_msg m{};
		m.kind = RDV_AUTH;
		m.present = 1u << RDV_F_PUB | 1u << RDV_F_EPH | 1u << RDV_F_TIME | 1u << RDV_F_COOKIE |
			    1u << RDV_F_TS | 1u << RDV_F_CANDS;
		memcpy(m.pub, claim_pub, 32);
		memcpy(m.eph, ch.eph, 32);
		memcpy(m.cookie, ch.cookie, 16);
		m.time = ch.time;
		m.ts = ts;
		m.cands[0] = sim_v4("10.0.0.5", 5000);
		m.cand_count = 1;
		if (k_s2c)
			memcpy(k_s2c, ks, 32);
		if (k_c2s_out)
			memcpy(k_c2s_out, kc, 32);
		return rdv_msg_encode(&m, ka, 0, pkt, RDV_MAX_PACKET);
	}
};

void keypair(uint8_t seed, uint8_t secret[32], uint8_t pub[32])
{
	memset(secret, seed, 32);
	crypto_scalarmult_base(pub, secret);
}

bool in_store(Sim &sim, const uint8_t pub[32], rdv_record *r = nullptr)
{
	rdv_record tmp;
	return sim.store->ops->get(sim.store->ctx, pub, sim.now, r ? r : &tmp) == 0;
}

rdv_server_stats stats(Sim &sim, size_t i = 0)
{
	rdv_server_stats st;
	rdv_server_get_stats(sim.servers[i].s, &st);
	return st;
}

} // namespace

TEST(RdvServer, RegistrationNeedsTheKeyAndTellsTheReflexiveAddress)
{
	Sim sim;
	Raw raw(sim);
	uint8_t sec[32], pub[32], pkt[RDV_MAX_PACKET], ks[32];
	keypair(1, sec, pub);
	rdv_endpoint src = sim_v4("203.0.113.1", 40001);
	rdv_msg ch = raw.challenge(src);
	size_t len = raw.auth(ch, sec, pub, 100, pkt, ks);
	rdv_out out[2];
	ASSERT_EQ(raw.send(src, pkt, len, out), 1);
	rdv_msg rep;
	ASSERT_EQ(rdv_msg_decode(out[0].buf, out[0].len, &rep), 0);
	EXPECT_EQ(rep.kind, RDV_REGISTERED);
	EXPECT_EQ(rdv_msg_verify(out[0].buf, out[0].len, &rep, ks), 0);
	EXPECT_TRUE(rdv_endpoint_equal(&rep.addr, &src));
	EXPECT_EQ(rep.ts, 100u);
	rdv_record r;
	ASSERT_TRUE(in_store(sim, pub, &r));
	EXPECT_TRUE(rdv_endpoint_equal(&r.reflexive, &src));
	EXPECT_EQ(r.cand_count, 1u);
	EXPECT_EQ(stats(sim).auth_ok, 1u);
}

TEST(RdvServer, AuthWithoutTheSecretIsRefusedSilently)
{
	Sim sim;
	Raw raw(sim);
	uint8_t sec[32], pub[32], evil[32], evilpub[32], pkt[RDV_MAX_PACKET];
	keypair(1, sec, pub);
	keypair(2, evil, evilpub);
	rdv_endpoint src = sim_v4("203.0.113.1", 40001);
	rdv_msg ch = raw.challenge(src);
	// Claims pub, but can only compute DH with its own secret.
	size_t len = raw.auth(ch, evil, pub, 100, pkt);
	rdv_out out[2];
	EXPECT_EQ(raw.send(src, pkt, len, out), SRM_DROP_CODE(SRM_DROP_MAC));
	EXPECT_FALSE(in_store(sim, pub));
	// Flipping any byte of a genuine AUTH gets nothing registered either.
	len = raw.auth(ch, sec, pub, 101, pkt);
	for (size_t i = 0; i < len; i++) {
		uint8_t c[RDV_MAX_PACKET];
		memcpy(c, pkt, len);
		c[i] ^= 0x20;
		rdv_endpoint s2 = sim_v4("203.0.113.1", 40001);
		EXPECT_LE(raw.send(s2, c, len, out), 0) << i;
		sim.now += 100; // stay under the per-source rate limit
		if (i % 8 == 0)
			ch = raw.challenge(src), len = raw.auth(ch, sec, pub, 200 + i, pkt);
	}
	EXPECT_FALSE(in_store(sim, pub));
	EXPECT_EQ(stats(sim).auth_ok, 0u);
}

TEST(RdvServer, ReplayedRegistrationRefused)
{
	Sim sim;
	Raw raw(sim);
	uint8_t sec[32], pub[32], pkt[RDV_MAX_PACKET];
	keypair(1, sec, pub);
	rdv_endpoint src = sim_v4("203.0.113.1", 40001);
	rdv_msg ch = raw.challenge(src);
	size_t len = raw.auth(ch, sec, pub, 100, pkt);
	rdv_out out[2];
	ASSERT_EQ(raw.send(src, pkt, len, out), 1);
	sim.now += 10;
	// Same bytes, same source: the timestamp is not newer.
	EXPECT_EQ(raw.send(src, pkt, len, out), SRM_DROP_CODE(SRM_DROP_REPLAY));
	// From elsewhere (an attacker moving the victim's record): wrong cookie.
	rdv_endpoint other = sim_v4("192.0.2.66", 666);
	EXPECT_EQ(raw.send(other, pkt, len, out), SRM_DROP_CODE(SRM_DROP_COOKIE));
	rdv_record r;
	ASSERT_TRUE(in_store(sim, pub, &r));
	EXPECT_TRUE(rdv_endpoint_equal(&r.reflexive, &src));
	// Long after: the challenge has expired.
	sim.now += RDV_CHALLENGE_TTL_MS + 1;
	EXPECT_EQ(raw.send(src, pkt, len, out), SRM_DROP_CODE(SRM_DROP_COOKIE));
	// An older timestamp under a fresh challenge is a replay too.
	ch = raw.challenge(src);
	len = raw.auth(ch, sec, pub, 99, pkt);
	EXPECT_EQ(raw.send(src, pkt, len, out), SRM_DROP_CODE(SRM_DROP_REPLAY));
	EXPECT_GE(stats(sim).replays, 2u);
}

TEST(RdvServer, AnotherKeyCannotOverwriteARecord)
{
	Sim sim;
	Raw raw(sim);
	uint8_t a[32], apub[32], b[32], bpub[32], pkt[RDV_MAX_PACKET];
	keypair(1, a, apub);
	keypair(2, b, bpub);
	rdv_endpoint asrc = sim_v4("203.0.113.1", 40001), bsrc = sim_v4("203.0.113.2", 40002);
	rdv_out out[2];
	rdv_msg ch = raw.challenge(asrc);
	ASSERT_EQ(raw.send(asrc, pkt, raw.auth(ch, a, apub, 100, pkt), out), 1);
	// b registers itself fine, but cannot register under a's key.
	ch = raw.challenge(bsrc);
	ASSERT_EQ(raw.send(bsrc, pkt, raw.auth(ch, b, bpub, 100, pkt), out), 1);
	ch = raw.challenge(bsrc);
	EXPECT_LT(raw.send(bsrc, pkt, raw.auth(ch, b, apub, 1000, pkt), out), 0);
	rdv_record r;
	ASSERT_TRUE(in_store(sim, apub, &r));
	EXPECT_TRUE(rdv_endpoint_equal(&r.reflexive, &asrc));
	EXPECT_EQ(r.last_ts, 100u);
}

TEST(RdvServer, ChallengeFromAnOldEpochExpires)
{
	Sim sim;
	Raw raw(sim);
	uint8_t sec[32], pub[32], pkt[RDV_MAX_PACKET];
	keypair(1, sec, pub);
	rdv_endpoint src = sim_v4("203.0.113.1", 40001);
	rdv_msg ch = raw.challenge(src);
	size_t len = raw.auth(ch, sec, pub, 100, pkt);
	sim.now += RDV_CHALLENGE_TTL_MS + 1;
	rdv_out out[2];
	EXPECT_EQ(raw.send(src, pkt, len, out), SRM_DROP_CODE(SRM_DROP_COOKIE));
	// A fresh one just before a key rotation still works after it.
	sim.now += RDV_EPOCH_MS * 3;
	ch = raw.challenge(src);
	len = raw.auth(ch, sec, pub, 101, pkt);
	sim.now += RDV_CHALLENGE_TTL_MS - 1;
	rdv_out t[2];
	(void)rdv_server_tick(raw.s, sim.now, t, 2);
	EXPECT_EQ(raw.send(src, pkt, len, out), 1);
}

TEST(RdvServer, RecordsExpireWithoutRefresh)
{
	Sim sim;
	SimPeer &p = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	sim.run(500);
	ASSERT_TRUE(sim.registered(p));
	ASSERT_EQ(stats(sim).records, 1u);
	// The client goes silent (not polled any more).
	sim.now += RDV_RECORD_TTL_MS + 1;
	rdv_out out[2];
	EXPECT_EQ(rdv_server_tick(sim.servers[0].s, sim.now, out, 2), 0);
	EXPECT_EQ(stats(sim).records, 0u);
	EXPECT_EQ(stats(sim).expired, 1u);
	EXPECT_FALSE(in_store(sim, p.pub));
	EXPECT_FALSE(sim.registered(p));
}

TEST(RdvServer, BoundedMemoryUnder100kFakeSources)
{
	rdv_server_config cfg{};
	cfg.max_records = 64;
	Sim sim(1, cfg);
	Raw raw(sim);
	rdv_msg m{};
	m.kind = RDV_REGISTER;
	uint8_t reg[RDV_MAX_PACKET];
	size_t reglen = rdv_msg_encode(&m, nullptr, RDV_REGISTER_MIN_BYTES, reg, sizeof reg);
	std::mt19937 rng(7);
	rdv_out out[2];
	uint64_t answered = 0;
	for (uint32_t i = 0; i < 100000; i++) {
		char a[32];
		snprintf(a, sizeof a, "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
		rdv_endpoint src = sim_v4(a, (uint16_t)(1024 + rng() % 60000));
		if (i % 2) {
			answered += raw.send(src, reg, reglen, out) == 1;
		} else {
			uint8_t junk[200];
			for (auto &b : junk)
				b = (uint8_t)rng();
			junk[0] = WIRE_RENDEZVOUS;
			junk[1] = WIRE_VERSION;
			(void)raw.send(src, junk, sizeof junk, out);
		}
		if (i % 1000 == 0)
			sim.now++;
	}
	EXPECT_EQ(answered, 50000u); // stateless: every new source is answered
	EXPECT_EQ(stats(sim).records, 0u);
	EXPECT_EQ(sim.store->ops->count(sim.store->ctx), 0u);

	// Authenticated registrations are bounded by max_records, oldest out.
	for (int i = 0; i < 200; i++) {
		char a[32];
		snprintf(a, sizeof a, "172.16.%d.%d", i / 200, i % 200 + 1);
		sim.add_peer((uint8_t)(i + 1), sim_v4(a, 5000), 0, false);
		sim.pump();
		sim.now += 10;
	}
	auto st = stats(sim);
	EXPECT_EQ(st.records, 64u);
	EXPECT_EQ(st.evicted, 200u - 64u);
	EXPECT_EQ(st.auth_ok, 200u);
}

TEST(RdvServer, AmplificationAtMostOneForUnauthenticatedMessages)
{
	Sim sim;
	Raw raw(sim);
	rdv_out out[2];
	std::mt19937 rng(3);
	uint8_t key[32] = { 5 };
	// One of each kind, unauthenticated or under a wrong key, from a
	// source the server does not know; plus relay and random bytes.
	for (int kind = 0; kind <= 12; kind++) {
		for (size_t pad : { (size_t)0, (size_t)40, (size_t)RDV_REGISTER_MIN_BYTES - 1,
				    (size_t)RDV_REGISTER_MIN_BYTES, (size_t)600 }) {
			for (int mac = 0; mac < 2; mac++) {
				rdv_msg m{};
				m.kind = (uint8_t)kind;
				m.present = 1u << RDV_F_PEER | 1u << RDV_F_CTR;
				m.ctr = 1;
				uint8_t pkt[RDV_MAX_PACKET];
				size_t len = rdv_msg_encode(&m, mac ? key : nullptr, pad, pkt, sizeof pkt);
				ASSERT_GT(len, 0u);
				char a[32];
				snprintf(a, sizeof a, "192.0.2.%d", (int)(rng() % 250) + 1);
				rdv_endpoint src = sim_v4(a, (uint16_t)(rng() % 60000 + 1));
				int n = raw.send(src, pkt, len, out);
				size_t sent = 0;
				for (int i = 0; i < n; i++) {
					EXPECT_TRUE(rdv_endpoint_equal(&out[i].to, &src));
					sent += out[i].len;
				}
				EXPECT_LE(sent, len) << "kind " << kind << " pad " << pad;
				sim.now += 200;
			}
		}
	}
	// Malformed AUTHs of every length, relays from strangers.
	for (int i = 0; i < 2000; i++) {
		uint8_t pkt[400];
		size_t len = 4 + rng() % 396;
		for (size_t j = 0; j < len; j++)
			pkt[j] = (uint8_t)rng();
		pkt[0] = (uint8_t)(i % 2 ? WIRE_RELAY : WIRE_RENDEZVOUS);
		pkt[1] = WIRE_VERSION;
		rdv_endpoint src = sim_v4("198.51.100.1", (uint16_t)(i + 1));
		int n = raw.send(src, pkt, len, out);
		size_t sent = 0;
		for (int k = 0; k < n; k++)
			sent += out[k].len;
		EXPECT_LE(sent, len);
		sim.now += 200;
	}
	// A short REGISTER gets no CHALLENGE at all.
	rdv_msg m{};
	m.kind = RDV_REGISTER;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t len = rdv_msg_encode(&m, nullptr, 0, pkt, sizeof pkt);
	EXPECT_EQ(raw.send(sim_v4("192.0.2.200", 1), pkt, len, out),
		  SRM_DROP_CODE(SRM_DROP_MALFORMED));
}

TEST(RdvServer, UnauthenticatedRequestsRateLimitedPerSource)
{
	Sim sim;
	Raw raw(sim);
	rdv_msg m{};
	m.kind = RDV_REGISTER;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t len = rdv_msg_encode(&m, nullptr, RDV_REGISTER_MIN_BYTES, pkt, sizeof pkt);
	rdv_out out[2];
	int ok = 0;
	for (int i = 0; i < 1000; i++)
		ok += raw.send(sim_v4("203.0.113.50", (uint16_t)(1000 + i)), pkt, len, out) == 1;
	EXPECT_EQ(ok, RDV_UNAUTH_BURST); // the port does not matter
	EXPECT_EQ(raw.send(sim_v4("203.0.113.51", 1), pkt, len, out), 1); // another source is fine
	sim.now += 1000;
	EXPECT_EQ(raw.send(sim_v4("203.0.113.50", 1), pkt, len, out), 1); // refilled
	EXPECT_GE(stats(sim).rate_limited, 1000u - RDV_UNAUTH_BURST);
}

TEST(RdvServer, LookupAnswersBothSides)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	rdv_endpoint bc[2] = { sim_v4("10.0.2.2", 5000), sim_v6("2001:db8::2", 5000) };
	ASSERT_EQ(rdv_client_set_candidates(b.c, bc, 2, sim.now), 0);
	sim.run(500);
	ASSERT_TRUE(sim.registered(a) && sim.registered(b));
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.pump();
	const SimEvent *pc = a.last(RDV_EV_PEER_CANDIDATES);
	ASSERT_NE(pc, nullptr);
	EXPECT_EQ(0, memcmp(pc->ev.peer, b.pub, 32));
	ASSERT_EQ(pc->ev.endpoint_count, 3u);
	EXPECT_TRUE(rdv_endpoint_equal(&pc->ev.endpoints[0], &b.addr)); // reflexive first
	EXPECT_TRUE(rdv_endpoint_equal(&pc->ev.endpoints[2], &bc[1]));
	const SimEvent *pr = b.last(RDV_EV_PUNCH_REQUEST);
	ASSERT_NE(pr, nullptr);
	EXPECT_EQ(0, memcmp(pr->ev.peer, a.pub, 32));
	EXPECT_TRUE(rdv_endpoint_equal(&pr->ev.endpoints[0], &a.addr));
	EXPECT_EQ(stats(sim).punches, 1u);
}

TEST(RdvServer, TwoServersSharingAStoreFindEachOther)
{
	Sim sim(2);
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001), 0);
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002), 1);
	sim.run(500);
	ASSERT_TRUE(sim.registered(a) && sim.registered(b));
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.pump(); // server 1 takes the note server 0 left, and tells b
	ASSERT_NE(a.last(RDV_EV_PEER_CANDIDATES), nullptr);
	const SimEvent *pr = b.last(RDV_EV_PUNCH_REQUEST);
	ASSERT_NE(pr, nullptr);
	EXPECT_EQ(0, memcmp(pr->ev.peer, a.pub, 32));
	EXPECT_EQ(stats(sim, 0).notes_sent, 1u);
	EXPECT_EQ(stats(sim, 1).notes_received, 1u);
}

// Issue 18 item 11: a peer on server 0 relays to a peer on server 1.
TEST(RdvServer, RelayJoinsPeersOnTwoServersSharingAStore)
{
	Sim sim(2);
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001), 0);
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002), 1);
	SimPeer &s = sim.add_peer(3, sim_v4("198.51.100.9", 50000), 0, false);
	ASSERT_EQ(rdv_client_set_peers(s.c, reinterpret_cast<const uint8_t(*)[32]>(b.pub), 1, sim.now),
		  0);
	sim.run(500);
	uint8_t inner[300], pkt[RDV_MAX_PACKET];
	memset(inner, 0xcd, sizeof inner);
	inner[0] = WIRE_DATA;
	size_t len = rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	Raw raw(sim);
	rdv_out out[2], fwd[2];
	// Server 0 wraps it for server 1...
	ASSERT_EQ(raw.send(a.addr, pkt, len, out), 1);
	EXPECT_EQ(out[0].buf[0], WIRE_MESH);
	EXPECT_EQ(out[0].len, sizeof inner + RDV_MESH_OVERHEAD);
	EXPECT_TRUE(rdv_endpoint_equal(&out[0].to, &sim.servers[1].addr));
	// ...which hands it to b as an ordinary relayed packet from a.
	rdv_server *s1 = sim.servers[1].s;
	const rdv_endpoint &s0 = sim.servers[0].addr;
	ASSERT_EQ(rdv_server_receive(s1, out[0].buf, out[0].len, &s0, sim.now, fwd, 2), 1);
	EXPECT_TRUE(rdv_endpoint_equal(&fwd[0].to, &b.addr));
	ASSERT_EQ(fwd[0].len, len);
	EXPECT_EQ(fwd[0].buf[0], WIRE_RELAY);
	EXPECT_EQ(0, memcmp(fwd[0].buf + WIRE_HEADER_BYTES, a.pub, 32));
	EXPECT_EQ(0, memcmp(fwd[0].buf + RDV_RELAY_OVERHEAD, inner, sizeof inner));
	// One flipped bit anywhere: dropped and counted.
	for (size_t i = 0; i < out[0].len; i += 37) {
		rdv_out bad = out[0];
		bad.buf[i] ^= 4;
		EXPECT_LT(rdv_server_receive(s1, bad.buf, bad.len, &s0, sim.now, fwd, 2), 0) << i;
	}
	EXPECT_GT(stats(sim, 1).mesh_bad, 0u);
	// A copy replayed once the skew window passed: dropped.
	sim.run(RDV_MESH_SKEW_MS + 1000, 1000); // cards and registrations kept fresh
	EXPECT_EQ(rdv_server_receive(s1, out[0].buf, out[0].len, &s0, sim.now, fwd, 2),
		  SRM_DROP_CODE(SRM_DROP_STALE));
	// A stranger listed by b but not listing it back... refused at server 0.
	size_t slen = rdv_client_wrap_relay(s.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	ASSERT_GT(slen, 0u);
	EXPECT_EQ(raw.send(s.addr, pkt, slen, out), SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	EXPECT_EQ(stats(sim, 0).relay_refused, 1u);
	// End to end through the simulated network, both ways.
	len = rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	sim.to_server(a, pkt, len);
	const SimEvent *got = b.last(RDV_EV_RELAYED);
	ASSERT_NE(got, nullptr);
	EXPECT_EQ(0, memcmp(got->ev.peer, a.pub, 32));
	EXPECT_EQ(got->inner, std::vector<uint8_t>(inner, inner + sizeof inner));
	len = rdv_client_wrap_relay(b.c, a.pub, inner, sizeof inner, pkt, sizeof pkt);
	sim.to_server(b, pkt, len);
	ASSERT_NE(a.last(RDV_EV_RELAYED), nullptr);
	EXPECT_EQ(stats(sim, 0).mesh_out, 2u);
	EXPECT_EQ(stats(sim, 1).mesh_in, 2u);
	EXPECT_EQ(stats(sim, 1).mesh_out, 1u);
	EXPECT_EQ(stats(sim, 0).mesh_in, 1u);
}

// A MESH packet from something that is not a server of the store: nothing.
TEST(RdvServer, MeshPacketsFromStrangersAreDropped)
{
	Sim sim(1);
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(500);
	uint8_t pkt[RDV_MAX_PACKET] = { WIRE_MESH, WIRE_VERSION };
	size_t len = RDV_MESH_OVERHEAD + 100;
	memcpy(pkt + WIRE_HEADER_BYTES + 16, b.pub, 32); // the target
	Raw raw(sim);
	rdv_out out[2];
	for (uint64_t id = 1; id <= 5; id++) {
		put_le64(pkt + WIRE_HEADER_BYTES, id);
		EXPECT_LT(raw.send(sim_v4("198.51.100.7", 3478), pkt, len, out), 0);
	}
	// Its own id, as if it came from itself: no card lookup, dropped.
	put_le64(pkt + WIRE_HEADER_BYTES, rdv_server_id(sim.servers[0].s));
	EXPECT_LT(raw.send(sim_v4("198.51.100.7", 3478), pkt, len, out), 0);
	EXPECT_EQ(stats(sim).mesh_bad, 6u);
	EXPECT_EQ(stats(sim).relay_packets, 0u);
}

TEST(RdvServer, RelayOnlyBetweenRegisteredPeersFromTheirAddress)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(500);
	uint8_t inner[100], pkt[RDV_MAX_PACKET];
	memset(inner, 0xab, sizeof inner);
	inner[0] = WIRE_DATA;
	size_t len = rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	ASSERT_EQ(len, sizeof inner + RDV_RELAY_OVERHEAD);
	Raw raw(sim);
	rdv_out out[2];
	// From a's registered address: forwarded, same size, sender named.
	ASSERT_EQ(raw.send(a.addr, pkt, len, out), 1);
	EXPECT_EQ(out[0].len, len);
	EXPECT_TRUE(rdv_endpoint_equal(&out[0].to, &b.addr));
	EXPECT_EQ(0, memcmp(out[0].buf + WIRE_HEADER_BYTES, a.pub, 32));
	EXPECT_EQ(0, memcmp(out[0].buf + RDV_RELAY_OVERHEAD, inner, sizeof inner));
	// Same bytes from anywhere else: not forwarded; the sender only gets
	// the small hint to register (not larger than what it sent).
	rdv_endpoint stranger = sim_v4("203.0.113.9", 40001);
	ASSERT_EQ(raw.send(stranger, pkt, len, out), 1);
	EXPECT_TRUE(rdv_endpoint_equal(&out[0].to, &stranger));
	EXPECT_LE(out[0].len, len);
	rdv_msg hint;
	ASSERT_EQ(rdv_msg_decode(out[0].buf, out[0].len, &hint), 0);
	EXPECT_EQ(hint.kind, RDV_NOTREG);
	// To an unregistered key: dropped.
	uint8_t nobody[32] = { 42 };
	len = rdv_client_wrap_relay(a.c, nobody, inner, sizeof inner, pkt, sizeof pkt);
	EXPECT_EQ(raw.send(a.addr, pkt, len, out), SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	EXPECT_EQ(stats(sim).relay_unknown, 2u);
}

TEST(RdvServer, RelayBandwidthLimitedPerPeer)
{
	rdv_server_config cfg{};
	cfg.relay_rate = 10000;
	cfg.relay_burst = 10000;
	Sim sim(1, cfg);
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	SimPeer &c = sim.add_peer(3, sim_v4("203.0.113.3", 40003));
	sim.run(500);
	uint8_t inner[1000 - RDV_RELAY_OVERHEAD] = { WIRE_DATA }, pkt[RDV_MAX_PACKET];
	size_t len = rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	ASSERT_EQ(len, 1000u);
	Raw raw(sim);
	rdv_out out[2];
	int ok = 0;
	for (int i = 0; i < 50; i++)
		ok += raw.send(a.addr, pkt, len, out) == 1;
	EXPECT_EQ(ok, 10); // the burst
	sim.now += 500;
	ok = 0;
	for (int i = 0; i < 50; i++)
		ok += raw.send(a.addr, pkt, len, out) == 1;
	EXPECT_EQ(ok, 5); // half a second of rate
	// Another peer's bucket is its own.
	len = rdv_client_wrap_relay(c.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	EXPECT_EQ(raw.send(c.addr, pkt, len, out), 1);
	EXPECT_EQ(stats(sim).relay_limited, 85u);
}

// Issue 18 item 9: the server was an address oracle.  A stranger who
// knows b's key, and a peer that lists b while b does not list it, get the
// same NOTFOUND as for an absent key, and b is not told to punch.
TEST(RdvServer, LookupAnsweredOnlyBetweenConsentingPairs)
{
	Sim sim(2);
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	SimPeer &s = sim.add_peer(3, sim_v4("198.51.100.9", 50000), 0, false);
	SimPeer &s2 = sim.add_peer(4, sim_v4("198.51.100.10", 50000), 1, false);
	const uint8_t(*bk)[32] = reinterpret_cast<const uint8_t(*)[32]>(b.pub);
	ASSERT_EQ(rdv_client_set_peers(s.c, bk, 1, sim.now), 0);  // lists b; b does not list s
	ASSERT_EQ(rdv_client_set_peers(s2.c, bk, 1, sim.now), 0); // the same, at the other server
	sim.run(500);
	ASSERT_TRUE(sim.registered(s) && sim.registered(s2) && sim.registered(b));
	ASSERT_EQ(rdv_client_lookup(s.c, b.pub, sim.now), 0);
	ASSERT_EQ(rdv_client_lookup(s2.c, b.pub, sim.now), 0);
	sim.pump();
	EXPECT_EQ(s.count(RDV_EV_PEER_NOTFOUND), 1);
	EXPECT_EQ(s.count(RDV_EV_PEER_CANDIDATES), 0);
	EXPECT_EQ(s2.count(RDV_EV_PEER_NOTFOUND), 1) << "the shared record carries the consent";
	EXPECT_EQ(b.count(RDV_EV_PUNCH_REQUEST), 0);
	EXPECT_EQ(stats(sim, 0).lookup_refused, 1u);
	EXPECT_EQ(stats(sim, 1).lookup_refused, 1u);
	EXPECT_EQ(stats(sim, 0).notes_sent + stats(sim, 1).notes_sent, 0u);
	// A consenting pair is answered, and only the asked peer punches.
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.pump();
	EXPECT_EQ(a.count(RDV_EV_PEER_CANDIDATES), 1);
	EXPECT_EQ(b.count(RDV_EV_PUNCH_REQUEST), 1);
}

// Nor does the server carry packets for strangers (94.7 MB in 10 s from
// eight throwaway keys, before).
TEST(RdvServer, RelayOnlyBetweenConsentingPairs)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	SimPeer &s = sim.add_peer(3, sim_v4("198.51.100.9", 50000), 0, false);
	ASSERT_EQ(rdv_client_set_peers(s.c, reinterpret_cast<const uint8_t(*)[32]>(b.pub), 1, sim.now),
		  0);
	sim.run(500);
	uint8_t inner[200] = { WIRE_DATA, WIRE_VERSION }, pkt[RDV_MAX_PACKET];
	Raw raw(sim);
	rdv_out out[2];
	size_t len = rdv_client_wrap_relay(s.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	ASSERT_GT(len, 0u);
	for (int i = 0; i < 100; i++)
		EXPECT_EQ(raw.send(s.addr, pkt, len, out), SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	EXPECT_EQ(stats(sim).relay_refused, 100u);
	EXPECT_EQ(stats(sim).relay_packets, 0u);
	len = rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
	EXPECT_EQ(raw.send(a.addr, pkt, len, out), 1);
	// b drops a from its list: the cached consent goes with it.
	ASSERT_EQ(rdv_client_set_peers(b.c, reinterpret_cast<const uint8_t(*)[32]>(s.pub), 1, sim.now),
		  0);
	sim.pump();
	EXPECT_EQ(raw.send(a.addr, pkt, len, out), SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	EXPECT_EQ(stats(sim).relay_packets, 1u);
}

// Several keys from one address share one relay budget.
TEST(RdvServer, RelayLimitedPerSourceAddress)
{
	rdv_server_config cfg{};
	cfg.relay_rate = 100000;
	cfg.relay_burst = 100000;
	cfg.source_rate = 200000; // burst: one second's worth
	Sim sim(1, cfg);
	SimPeer &b = sim.add_peer(1, sim_v4("203.0.113.2", 40002));
	std::vector<SimPeer *> keys;
	for (uint8_t i = 0; i < 8; i++)
		keys.push_back(&sim.add_peer((uint8_t)(10 + i), sim_v4("198.51.100.9", (uint16_t)(50000 + i))));
	sim.run(500);
	uint8_t inner[1000 - RDV_RELAY_OVERHEAD] = { WIRE_DATA }, pkt[RDV_MAX_PACKET];
	Raw raw(sim);
	rdv_out out[2];
	uint64_t bytes = 0;
	for (int round = 0; round < 10; round++) { // 1 s, each key at full speed
		for (SimPeer *k : keys) {
			size_t len = rdv_client_wrap_relay(k->c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
			for (int i = 0; i < 100; i++)
				bytes += raw.send(k->addr, pkt, len, out) == 1 ? len : 0;
		}
		sim.now += 100;
	}
	// Burst (200 kB) + 0.9 s of rate (180 kB); eight keys alone would pass
	// 8 x (100 kB burst + 90 kB) = 1.5 MB.
	EXPECT_LE(bytes, 380000u);
	EXPECT_GE(bytes, 370000u);
	EXPECT_GT(stats(sim).relay_source_limited, 0u);
}
