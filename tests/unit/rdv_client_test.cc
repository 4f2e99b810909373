// rdv_client_test.cc — the rendezvous client against the real server
// state machine in-process: registration, refresh, lookups on both
// sides, relay round trip, loss, server restart and NAT rebinding.
#include <gtest/gtest.h>

#include "rdv_sim.h"

TEST(RdvClient, RegistersAndLearnsItsReflexiveAddress)
{
	Sim sim;
	SimPeer &p = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	EXPECT_FALSE(sim.registered(p));
	uint8_t pkt[RDV_MAX_PACKET];
	uint8_t dummy[32] = { 1 };
	EXPECT_EQ(rdv_client_wrap_relay(p.c, dummy, pkt, 10, pkt, sizeof pkt), 0u);
	EXPECT_EQ(rdv_client_deadline(p.c), sim.now); // REGISTER due now
	sim.pump();
	ASSERT_EQ(p.count(RDV_EV_REGISTERED), 1);
	EXPECT_TRUE(rdv_endpoint_equal(&p.last(RDV_EV_REGISTERED)->ev.reflexive, &p.addr));
	rdv_endpoint refl;
	ASSERT_EQ(rdv_client_registered(p.c, sim.now, &refl), 1);
	EXPECT_TRUE(rdv_endpoint_equal(&refl, &p.addr));
	// Next thing to do: the refresh, before conntrack's 30 s.
	uint64_t d = rdv_client_deadline(p.c);
	EXPECT_GT(d, sim.now + RDV_REFRESH_MS - 1001);
	EXPECT_LE(d, sim.now + RDV_REFRESH_MS);
	EXPECT_EQ(rdv_client_poll(p.c, sim.now, pkt, sizeof pkt), 0u);
}

TEST(RdvClient, RefreshKeepsTheRecordAliveForever)
{
	Sim sim;
	SimPeer &p = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	sim.run(10 * 60 * 1000, 1000); // ten minutes, > 4 record lifetimes
	EXPECT_TRUE(sim.registered(p));
	rdv_server_stats st;
	rdv_server_get_stats(sim.servers[0].s, &st);
	EXPECT_EQ(st.expired, 0u);
	EXPECT_EQ(st.replays, 0u);
	EXPECT_GE(st.auth_ok, 10 * 60 / 25u);
	EXPECT_LE(st.auth_ok, 10 * 60 / 24 + 1u);
}

TEST(RdvClient, RetriesThroughLoss)
{
	Sim sim;
	int dropped = 0;
	// Lose the first three packets each way.
	int to_srv = 0, from_srv = 0;
	sim.filter = [&](const SimPeer &, bool up, const uint8_t *, size_t) {
		bool pass = up ? ++to_srv > 3 : ++from_srv > 3;
		dropped += !pass;
		return pass;
	};
	SimPeer &p = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	sim.run(60000);
	EXPECT_TRUE(sim.registered(p));
	EXPECT_EQ(dropped, 6);
	EXPECT_EQ(p.count(RDV_EV_REGISTERED), 2); // plus one refresh
}

TEST(RdvClient, LookupGivesBothSidesCandidates)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	rdv_endpoint ac[2] = { sim_v4("192.168.1.10", 5000), sim_v6("2001:db8:a::10", 5000) };
	ASSERT_EQ(rdv_client_set_candidates(a.c, ac, 2, sim.now), 0);
	rdv_endpoint toomany[RDV_MAX_CANDIDATES + 1];
	for (auto &e : toomany)
		e = ac[0];
	EXPECT_EQ(rdv_client_set_candidates(a.c, toomany, RDV_MAX_CANDIDATES + 1, sim.now),
		  SRM_ERR_INVALID);
	// Asked before registration: sent once registered.
	ASSERT_EQ(rdv_client_lookup(b.c, a.pub, sim.now), 0);
	ASSERT_EQ(rdv_client_lookup(b.c, a.pub, sim.now), 0); // not duplicated
	sim.run(1000);
	ASSERT_EQ(b.count(RDV_EV_PEER_CANDIDATES), 1);
	const rdv_event &e = b.last(RDV_EV_PEER_CANDIDATES)->ev;
	EXPECT_EQ(0, memcmp(e.peer, a.pub, 32));
	ASSERT_EQ(e.endpoint_count, 3u);
	EXPECT_TRUE(rdv_endpoint_equal(&e.endpoints[0], &a.addr));
	EXPECT_TRUE(rdv_endpoint_equal(&e.endpoints[1], &ac[0]));
	EXPECT_TRUE(rdv_endpoint_equal(&e.endpoints[2], &ac[1]));
	ASSERT_EQ(a.count(RDV_EV_PUNCH_REQUEST), 1);
	const rdv_event &pr = a.last(RDV_EV_PUNCH_REQUEST)->ev;
	EXPECT_EQ(0, memcmp(pr.peer, b.pub, 32));
	EXPECT_TRUE(rdv_endpoint_equal(&pr.endpoints[0], &b.addr));
	// Answered: not asked again.
	sim.run(10000);
	EXPECT_EQ(b.count(RDV_EV_PEER_CANDIDATES), 1);
}

TEST(RdvClient, UnknownPeerIsNotFound)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	sim.pump();
	uint8_t nobody[32];
	memset(nobody, 0x77, 32);
	ASSERT_EQ(rdv_client_lookup(a.c, nobody, sim.now), 0);
	sim.pump();
	ASSERT_EQ(a.count(RDV_EV_PEER_NOTFOUND), 1);
	EXPECT_EQ(0, memcmp(a.last(RDV_EV_PEER_NOTFOUND)->ev.peer, nobody, 32));
}

TEST(RdvClient, PendingLookupsAreBounded)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	uint8_t k[32] = { 0 };
	for (int i = 0; i < RDV_MAX_PENDING_LOOKUPS; i++) {
		k[0] = (uint8_t)i;
		EXPECT_EQ(rdv_client_lookup(a.c, k, sim.now), 0);
	}
	k[0] = 200;
	EXPECT_EQ(rdv_client_lookup(a.c, k, sim.now), SRM_ERR_NOMEM);
}

TEST(RdvClient, RelayRoundTrip)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v6("2001:db8:b::2", 40002));
	sim.pump();
	std::vector<uint8_t> inner(1200);
	for (size_t i = 0; i < inner.size(); i++)
		inner[i] = (uint8_t)(i * 31);
	inner[0] = WIRE_HANDSHAKE_INIT;
	uint8_t pkt[RDV_MAX_PACKET];
	size_t len = rdv_client_wrap_relay(a.c, b.pub, inner.data(), inner.size(), pkt, sizeof pkt);
	ASSERT_EQ(len, inner.size() + RDV_RELAY_OVERHEAD);
	ASSERT_EQ(sim.to_server(a, pkt, len), 1);
	const SimEvent *r = b.last(RDV_EV_RELAYED);
	ASSERT_NE(r, nullptr);
	EXPECT_EQ(0, memcmp(r->ev.peer, a.pub, 32));
	EXPECT_EQ(r->inner, inner);
	// And back, wrapped in place.
	std::vector<uint8_t> back = { WIRE_DATA, 1, 0, 0, 9, 9, 9 };
	memcpy(pkt, back.data(), back.size());
	len = rdv_client_wrap_relay(b.c, a.pub, pkt, back.size(), pkt, sizeof pkt);
	ASSERT_EQ(sim.to_server(b, pkt, len), 1);
	ASSERT_NE(a.last(RDV_EV_RELAYED), nullptr);
	EXPECT_EQ(a.last(RDV_EV_RELAYED)->inner, back);
	EXPECT_EQ(0, memcmp(a.last(RDV_EV_RELAYED)->ev.peer, b.pub, 32));
	// Too big for the relay.
	EXPECT_EQ(rdv_client_wrap_relay(a.c, b.pub, pkt, RDV_MAX_PACKET, pkt, sizeof pkt), 0u);
}

TEST(RdvClient, ForgedOrReplayedServerMessagesRejected)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.pump();
	// Capture the PUNCH b gets when a looks it up.
	std::vector<uint8_t> punch;
	sim.filter = [&](const SimPeer &p, bool up, const uint8_t *pkt, size_t len) {
		if (!up && &p == &b)
			punch.assign(pkt, pkt + len);
		return true;
	};
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.pump();
	ASSERT_EQ(b.count(RDV_EV_PUNCH_REQUEST), 1);
	ASSERT_FALSE(punch.empty());
	rdv_event ev;
	EXPECT_EQ(rdv_client_receive(b.c, punch.data(), punch.size(), sim.now, &ev),
		  SRM_DROP_CODE(SRM_DROP_REPLAY));
	// A PUNCH from someone without the key, pointing b at a victim.
	rdv_msg m{};
	m.kind = RDV_PUNCH;
	m.present = 1u << RDV_F_PEER | 1u << RDV_F_CTR | 1u << RDV_F_CANDS;
	m.ctr = 1000;
	m.cands[0] = sim_v4("192.0.2.99", 80);
	m.cand_count = 1;
	uint8_t wrong[32] = { 3 }, pkt[RDV_MAX_PACKET];
	size_t len = rdv_msg_encode(&m, wrong, 0, pkt, sizeof pkt);
	EXPECT_EQ(rdv_client_receive(b.c, pkt, len, sim.now, &ev), SRM_DROP_CODE(SRM_DROP_MAC));
	len = rdv_msg_encode(&m, nullptr, 0, pkt, sizeof pkt);
	EXPECT_EQ(rdv_client_receive(b.c, pkt, len, sim.now, &ev), SRM_DROP_CODE(SRM_DROP_MAC));
	// A REGISTERED nobody asked for.
	m.kind = RDV_REGISTERED;
	m.present = 1u << RDV_F_ADDR | 1u << RDV_F_TS | 1u << RDV_F_CTR;
	m.addr = m.cands[0];
	len = rdv_msg_encode(&m, wrong, 0, pkt, sizeof pkt);
	EXPECT_LT(rdv_client_receive(b.c, pkt, len, sim.now, &ev), 0);
	EXPECT_EQ(b.count(RDV_EV_PUNCH_REQUEST), 1);
	EXPECT_EQ(b.count(RDV_EV_REGISTERED), 1);
}

TEST(RdvClient, ReRegistersAfterServerRestart)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(1000);
	ASSERT_TRUE(sim.registered(a) && sim.registered(b));
	// The server restarts with an empty memory store and new keys.
	rdv_server_free(sim.servers[0].s);
	rdv_store_free(sim.store);
	sim.store = rdv_store_memory_new(1000);
	rdv_server_config cfg{};
	cfg.rng = sim_rng;
	cfg.rng_ctx = &sim.servers[0].rng_ctr;
	sim.servers[0].s = rdv_server_new(&cfg, sim.store, sim.now);
	// b refreshes within 25 s anyway; a asks right away: NOTREG makes it
	// register again, and the retried lookup then finds b.
	sim.run(26000);
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.run(5000);
	EXPECT_EQ(a.count(RDV_EV_PEER_CANDIDATES), 1);
	EXPECT_EQ(b.count(RDV_EV_PUNCH_REQUEST), 1);
}

TEST(RdvClient, LookupAfterServerLostUsTriggersRegistration)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(1000);
	rdv_server_free(sim.servers[0].s);
	rdv_server_config cfg{};
	sim.servers[0].s = rdv_server_new(&cfg, sim.store, sim.now); // store survives (redis)
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.run(3000);
	EXPECT_EQ(a.count(RDV_EV_REGISTERED), 2); // NOTREG -> registered again
	EXPECT_EQ(a.count(RDV_EV_PEER_CANDIDATES), 1);
}

TEST(RdvClient, NatRebindingIsNoticedAndReported)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(1000);
	// a's NAT gives it a new public port (conntrack flushed).
	a.addr = sim_v4("203.0.113.1", 51111);
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.run(3000);
	ASSERT_EQ(a.count(RDV_EV_REGISTERED), 2);
	EXPECT_TRUE(rdv_endpoint_equal(&a.last(RDV_EV_REGISTERED)->ev.reflexive, &a.addr));
	ASSERT_EQ(a.count(RDV_EV_PEER_CANDIDATES), 1);
	// b is told the new address.
	ASSERT_EQ(b.count(RDV_EV_PUNCH_REQUEST), 1);
	EXPECT_TRUE(rdv_endpoint_equal(&b.last(RDV_EV_PUNCH_REQUEST)->ev.endpoints[0], &a.addr));
}

TEST(RdvClient, CandidateChangeReRegistersAtOnce)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	sim.run(1000);
	rdv_endpoint c = sim_v4("10.9.9.9", 5000);
	ASSERT_EQ(rdv_client_set_candidates(a.c, &c, 1, sim.now), 0);
	sim.pump();
	EXPECT_EQ(a.count(RDV_EV_REGISTERED), 2);
	rdv_record r;
	ASSERT_EQ(sim.store->ops->get(sim.store->ctx, a.pub, sim.now, &r), 0);
	ASSERT_EQ(r.cand_count, 1u);
	EXPECT_TRUE(rdv_endpoint_equal(&r.cands[0], &c));
	// Setting the same list again changes nothing.
	ASSERT_EQ(rdv_client_set_candidates(a.c, &c, 1, sim.now), 0);
	sim.pump();
	EXPECT_EQ(a.count(RDV_EV_REGISTERED), 2);
}

TEST(RdvClient, RelayAfterServerRestartReRegistersAtOnce)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(1000);
	rdv_server_free(sim.servers[0].s);
	rdv_server_config cfg{};
	sim.servers[0].s = rdv_server_new(&cfg, sim.store, sim.now);
	// Both keep relaying as if nothing happened (a relayed session).
	uint8_t inner[60] = { WIRE_DATA, 1 }, pkt[RDV_MAX_PACKET];
	for (int i = 0; i < 20; i++) {
		size_t len = rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt);
		sim.to_server(a, pkt, len);
		len = rdv_client_wrap_relay(b.c, a.pub, inner, sizeof inner, pkt, sizeof pkt);
		sim.to_server(b, pkt, len);
		sim.run(100);
	}
	// Well before the 25 s refresh, both registered again and the relay
	// delivers.
	EXPECT_EQ(a.count(RDV_EV_REGISTERED), 2);
	EXPECT_EQ(b.count(RDV_EV_REGISTERED), 2);
	EXPECT_GT(a.count(RDV_EV_RELAYED), 10);
	EXPECT_GT(b.count(RDV_EV_RELAYED), 10);
}

TEST(RdvClient, RefreshOnDemandKeepsKeysAndLookups)
{
	Sim sim;
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	sim.run(1000);
	a.addr = sim_v4("203.0.113.1", 50000); // the NAT moved us
	// Everything a sends is lost until the registration is done, except
	// what the test lets through below.
	bool hold = true;
	sim.filter = [&](const SimPeer &p, bool, const uint8_t *, size_t) { return !(hold && &p == &a); };
	rdv_client_refresh(a.c, sim.now);
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	uint8_t pkt[RDV_MAX_PACKET];
	EXPECT_GT(rdv_client_poll(a.c, sim.now, pkt, sizeof pkt), 0u); // REGISTER (lost)
	EXPECT_EQ(rdv_client_registered(a.c, sim.now, nullptr), 1);    // still usable
	uint8_t inner[8] = { WIRE_DATA };
	EXPECT_GT(rdv_client_wrap_relay(a.c, b.pub, inner, sizeof inner, pkt, sizeof pkt), 0u);
	rdv_client_refresh(a.c, sim.now); // under way: no second REGISTER now
	hold = false;
	sim.run(3000);
	ASSERT_EQ(a.count(RDV_EV_REGISTERED), 2);
	EXPECT_TRUE(rdv_endpoint_equal(&a.last(RDV_EV_REGISTERED)->ev.reflexive, &a.addr));
	EXPECT_EQ(a.count(RDV_EV_PEER_CANDIDATES), 1);
	EXPECT_TRUE(rdv_endpoint_equal(&b.last(RDV_EV_PUNCH_REQUEST)->ev.endpoints[0], &a.addr));
}

// A program restarted with the same key, within the server's key epoch,
// derives the same registration keys as its old instance: its messages
// must not be taken for replays of the old instance's.
TEST(RdvClient, RestartedClientWithTheSameKeyIsAnsweredAtOnce)
{
	Sim sim;
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	SimPeer &old = sim.add_peer(1, sim_v4("203.0.113.1", 40001));
	sim.run(1000);
	uint8_t nobody[32];
	for (uint8_t k = 0; k < 5; k++) { // the old instance uses some counters
		memset(nobody, 0x70 + k, sizeof nobody);
		ASSERT_EQ(rdv_client_lookup(old.c, nobody, sim.now), 0);
	}
	ASSERT_EQ(rdv_client_lookup(old.c, b.pub, sim.now), 0);
	sim.run(1000);
	ASSERT_EQ(old.count(RDV_EV_PEER_CANDIDATES), 1);
	SimPeer &fresh = sim.add_peer(1, sim_v4("203.0.113.1", 40009));
	ASSERT_EQ(rdv_client_lookup(fresh.c, b.pub, sim.now), 0);
	sim.run(1000);
	EXPECT_EQ(fresh.count(RDV_EV_PEER_CANDIDATES), 1) << "lookup dropped as a replay";
}

// Issue 18, item 10: a client that pins the server's key
// (SRMUDP_RENDEZVOUS=KEY@HOST:PORT) accepts only a server holding its
// secret: another server (or one without a key) never registers it and
// never hands it candidates to send packets to.
TEST(RdvClient, PinnedServerKeyIsTheOnlyOneAccepted)
{
	uint8_t right[32], wrong[32], right_pub[32];
	memset(right, 0x77, sizeof right);
	memset(wrong, 0x66, sizeof wrong);
	crypto_scalarmult_base(right_pub, right);
	for (int server = 0; server < 3; server++) { // right key, wrong key, no key
		rdv_server_config cfg{};
		cfg.static_secret = server == 0 ? right : server == 1 ? wrong : nullptr;
		Sim sim(1, cfg);
		SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001), 0, true, right_pub);
		SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002), 0, true, right_pub);
		SimPeer &c = sim.add_peer(3, sim_v4("203.0.113.3", 40003)); // unpinned
		ASSERT_EQ(rdv_client_lookup(b.c, a.pub, sim.now), 0);
		sim.run(60000);
		rdv_server_stats st;
		rdv_server_get_stats(sim.servers[0].s, &st);
		EXPECT_TRUE(sim.registered(c)) << "server " << server; // unpinned: any server
		if (server == 0) {
			EXPECT_TRUE(sim.registered(a));
			EXPECT_TRUE(sim.registered(b));
			EXPECT_EQ(b.count(RDV_EV_PEER_CANDIDATES), 1);
			EXPECT_EQ(a.count(RDV_EV_PUNCH_REQUEST), 1);
			continue;
		}
		EXPECT_FALSE(sim.registered(a)) << "server " << server;
		EXPECT_FALSE(sim.registered(b)) << "server " << server;
		EXPECT_EQ(a.count(RDV_EV_REGISTERED) + b.count(RDV_EV_REGISTERED), 0);
		EXPECT_EQ(b.count(RDV_EV_PEER_CANDIDATES) + a.count(RDV_EV_PUNCH_REQUEST), 0);
		EXPECT_GT(st.auth_failed, 0u);
	}
}

// A fake server answers as any server would, with the keys an unpinned
// client derives from its CHALLENGE: an unpinned client registers, a
// pinned one drops the REGISTERED (the fake lacks X25519(client, server)).
TEST(RdvClient, PinnedClientDropsAnswersMadeWithoutTheServerSecret)
{
	EXPECT_GE(sodium_init(), 0);
	uint8_t right[32], right_pub[32], eph[32], eph_pub[32];
	memset(right, 0x77, sizeof right);
	crypto_scalarmult_base(right_pub, right);
	memset(eph, 0x55, sizeof eph);
	crypto_scalarmult_base(eph_pub, eph);
	for (int pinned = 0; pinned < 2; pinned++) {
		identity id;
		uint8_t secret[32], pub[32];
		memset(secret, 1, sizeof secret);
		ASSERT_EQ(identity_init(&id, secret), 0);
		identity_public_key(&id, pub);
		rdv_client_config cfg{};
		cfg.id = &id;
		cfg.wall_offset_ms = UINT64_C(1790000000000);
		uint64_t now = 1000;
		rdv_client *c = rdv_client_new(&cfg, now);
		ASSERT_NE(c, nullptr);
		rdv_client_relink(c, pinned ? right_pub : nullptr, now);
		uint8_t pkt[RDV_MAX_PACKET];
		ASSERT_GT(rdv_client_poll(c, now, pkt, sizeof pkt), 0u); // REGISTER
		rdv_msg ch{};
		ch.kind = RDV_CHALLENGE;
		ch.present = 1u << RDV_F_EPH | 1u << RDV_F_TIME | 1u << RDV_F_COOKIE;
		memcpy(ch.eph, eph_pub, 32);
		ch.time = 5;
		size_t n = rdv_msg_encode(&ch, nullptr, 0, pkt, sizeof pkt);
		rdv_event ev{};
		ASSERT_EQ(rdv_client_receive(c, pkt, n, now, &ev), 0);
		n = rdv_client_poll(c, now, pkt, sizeof pkt); // AUTH
		rdv_msg auth;
		ASSERT_EQ(rdv_msg_decode(pkt, n, &auth), 0);
		EXPECT_EQ(RDV_HAS(&auth, RDV_F_SERVER), pinned == 1);
		uint8_t ka[32], kc[32], ks[32];
		ASSERT_EQ(rdv_derive_keys(eph, pub, pub, eph_pub, ka, kc, ks), 0);
		EXPECT_EQ(rdv_msg_verify(pkt, n, &auth, ka) == 0, pinned == 0);
		rdv_msg reg{};
		reg.kind = RDV_REGISTERED;
		reg.present = 1u << RDV_F_ADDR | 1u << RDV_F_TTL | 1u << RDV_F_TS | 1u << RDV_F_CTR;
		reg.addr = sim_v4("192.0.2.9", 40000); // a victim, say
		reg.ttl = RDV_RECORD_TTL_MS;
		reg.ts = auth.ts;
		reg.ctr = 1;
		n = rdv_msg_encode(&reg, ks, 0, pkt, sizeof pkt);
		int rc = rdv_client_receive(c, pkt, n, now, &ev);
		rdv_endpoint refl;
		if (pinned) {
			EXPECT_LT(rc, 0);
			EXPECT_NE(ev.type, RDV_EV_REGISTERED);
			EXPECT_EQ(rdv_client_registered(c, now, &refl), 0);
			// The AUTH and its retransmissions go unanswered: counted,
			// so the engine can say why (a wrong pinned key).
			EXPECT_EQ(rdv_client_auth_failures(c), 0u);
			for (int i = 0; i < 40; i++) {
				now += 1000;
				while (rdv_client_poll(c, now, pkt, sizeof pkt) > 0) {
				}
			}
			EXPECT_GE(rdv_client_auth_failures(c), 1u);
		} else {
			EXPECT_EQ(rc, 1);
			EXPECT_EQ(ev.type, RDV_EV_REGISTERED);
			EXPECT_EQ(rdv_client_registered(c, now, &refl), 1);
		}
		rdv_client_free(c);
	}
}

// A gate (issue 17) registers its members only, and only those that pin
// its key: a stranger, or a member that does not pin it, is never
// registered, never finds a member, and is never found.
TEST(RdvClient, GateAdmitsPinnedMembersOnly)
{
	uint8_t gate[32], gate_pub[32];
	memset(gate, 0x55, sizeof gate);
	crypto_scalarmult_base(gate_pub, gate);
	static std::vector<std::array<uint8_t, 32>> members;
	members.clear();
	rdv_server_config cfg{};
	cfg.static_secret = gate;
	cfg.admit = [](void *, const uint8_t pub[32]) {
		for (auto &m : members)
			if (memcmp(m.data(), pub, 32) == 0)
				return true;
		return false;
	};
	Sim sim(1, cfg);
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001), 0, true, gate_pub);
	SimPeer &b = sim.add_peer(2, sim_v4("203.0.113.2", 40002), 0, true, gate_pub);
	SimPeer &stranger = sim.add_peer(3, sim_v4("203.0.113.3", 40003), 0, true, gate_pub);
	SimPeer &unpinned = sim.add_peer(4, sim_v4("203.0.113.4", 40004));
	for (SimPeer *p : { &a, &b, &unpinned }) {
		std::array<uint8_t, 32> k;
		memcpy(k.data(), p->pub, 32);
		members.push_back(k);
	}
	ASSERT_EQ(rdv_client_lookup(b.c, a.pub, sim.now), 0);
	ASSERT_EQ(rdv_client_lookup(stranger.c, a.pub, sim.now), 0);
	sim.run(60000);
	EXPECT_TRUE(sim.registered(a));
	EXPECT_TRUE(sim.registered(b));
	EXPECT_EQ(b.count(RDV_EV_PEER_CANDIDATES), 1);
	EXPECT_FALSE(sim.registered(stranger));
	EXPECT_FALSE(sim.registered(unpinned));
	EXPECT_EQ(stranger.count(RDV_EV_PEER_CANDIDATES) + stranger.count(RDV_EV_REGISTERED), 0);
	EXPECT_EQ(a.count(RDV_EV_PUNCH_REQUEST), 1); // b's lookup only
	rdv_server_stats st;
	rdv_server_get_stats(sim.servers[0].s, &st);
	EXPECT_GT(st.not_member, 0u);
	EXPECT_EQ(st.records, 2u);
	// b leaves the gate's list (a reload): its registration goes at once,
	// and a no longer finds it.
	members.erase(members.begin() + 1);
	rdv_server_readmit(sim.servers[0].s);
	rdv_server_get_stats(sim.servers[0].s, &st);
	EXPECT_EQ(st.records, 1u);
	int before = a.count(RDV_EV_PEER_NOTFOUND);
	ASSERT_EQ(rdv_client_lookup(a.c, b.pub, sim.now), 0);
	sim.run(5000);
	EXPECT_EQ(a.count(RDV_EV_PEER_NOTFOUND), before + 1);
	EXPECT_EQ(a.count(RDV_EV_PEER_CANDIDATES), 0);
}

// A gate's announcement (RDV_F_GATES) reaches the members that pinned its
// key in every REGISTERED, exactly as set; a server nobody pinned
// announces nothing a client takes (its answers are authenticated only
// towards whoever answered the challenge).
TEST(RdvClient, GatesAnnouncedOnlyToPinnedMembers)
{
	uint8_t gate[32], gate_pub[32];
	memset(gate, 0x56, sizeof gate);
	crypto_scalarmult_base(gate_pub, gate);
	rdv_server_config cfg{};
	cfg.static_secret = gate;
	Sim sim(1, cfg);
	SimPeer &a = sim.add_peer(1, sim_v4("203.0.113.1", 40001), 0, true, gate_pub);
	SimPeer &unpinned = sim.add_peer(2, sim_v4("203.0.113.2", 40002));
	rdv_gate g[2]{};
	memcpy(g[0].key, gate_pub, 32);
	g[0].ws_port = 8080;
	memset(g[1].key, 0x77, 32);
	g[1].udp = sim_v4("198.51.100.9", 4600);
	g[1].ws_port = 8443;
	g[1].wss = 1;
	rdv_server_set_gates(sim.servers[0].s, g, 2);
	sim.run(30000);
	const SimEvent *reg = a.last(RDV_EV_REGISTERED);
	ASSERT_NE(reg, nullptr);
	ASSERT_EQ(reg->ev.gate_count, 2u);
	EXPECT_EQ(memcmp(reg->ev.gates[0].key, gate_pub, 32), 0);
	EXPECT_EQ(reg->ev.gates[0].udp.len, 0u);
	EXPECT_EQ(reg->ev.gates[0].ws_port, 8080);
	EXPECT_TRUE(rdv_endpoint_equal(&reg->ev.gates[1].udp, &g[1].udp));
	EXPECT_EQ(reg->ev.gates[1].ws_port, 8443);
	EXPECT_EQ(reg->ev.gates[1].wss, 1);
	const SimEvent *other = unpinned.last(RDV_EV_REGISTERED);
	ASSERT_NE(other, nullptr);
	EXPECT_EQ(other->ev.gate_count, 0u);
}

TEST(RdvWire, GateEntriesRoundTripAndRejectJunk)
{
	rdv_gate g{}, back{};
	memset(g.key, 0x42, 32);
	g.udp = sim_v4("192.0.2.7", 4500);
	g.ws_port = 443;
	g.wss = 1;
	uint8_t b[RDV_GATE_MAX_BYTES];
	size_t n = rdv_gate_put(b, sizeof b, &g);
	ASSERT_EQ(n, 32u + 3 + 6);
	ASSERT_EQ(rdv_gate_get(b, n, &back), 0);
	EXPECT_TRUE(rdv_endpoint_equal(&back.udp, &g.udp));
	EXPECT_EQ(back.ws_port, 443);
	EXPECT_EQ(rdv_gate_get(b, n - 1, &back), SRM_ERR_INVALID); // a cut endpoint
	b[34] = 2;                                                  // an unknown flag
	EXPECT_EQ(rdv_gate_get(b, n, &back), SRM_ERR_INVALID);
	EXPECT_EQ(rdv_gate_get(b, 34, &back), SRM_ERR_INVALID);     // too short
}
