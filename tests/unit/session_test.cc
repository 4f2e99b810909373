// session_test.cc — the session state machine, driven the way the engine
// drives it, through a deterministic simulated network (loss, delay,
// duplication, reordering) over many seeds.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <stdlib.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

extern "C" {
#include "session.h"
}

namespace {

struct Rng {
	uint64_t s;
	explicit Rng(uint64_t seed) : s(seed) {}
	uint64_t next()
	{
		uint64_t z = (s += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		return z ^ (z >> 31);
	}
	double uni() { return (double)(next() >> 11) * 0x1.0p-53; }
	uint64_t range(uint64_t lo, uint64_t hi) { return lo + next() % (hi - lo + 1); }
};

extern "C" void rng_fill(void *ctx, void *buf, size_t len)
{
	Rng *r = static_cast<Rng *>(ctx);
	uint8_t *p = static_cast<uint8_t *>(buf);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)r->next();
}

using Bytes = std::vector<uint8_t>;

// One "engine": identity, index table, guard, one session with the peer.
struct Side {
	Rng rng;
	struct identity id;
	struct index_table *ix = nullptr;
	struct handshake_guard *guard = nullptr;
	struct session *s = nullptr;
	struct sockaddr_in addr = {};
	uint64_t pn = 1000; // the transport's packet numbers, carried across rekeys
	std::map<int, int> drops; // drop reason -> count
	std::set<uint64_t> delivered;
	bool send_now = false; // just established as initiator: send at once

	Side(uint64_t seed, uint32_t ip) : rng(seed)
	{
		uint8_t sk[32];
		rng_fill(&rng, sk, sizeof(sk));
		EXPECT_EQ(identity_init(&id, sk), 0);
		ix = index_table_new_rng(rng_fill, &rng);
		struct handshake_guard_config gc = {};
		gc.rng = rng_fill;
		gc.rng_ctx = &rng;
		guard = handshake_guard_new_config(&id, &gc);
		addr.sin_family = AF_INET;
		addr.sin_addr.s_addr = htonl(ip);
		addr.sin_port = htons(51820);
	}
	~Side()
	{
		session_free(s);
		handshake_guard_free(guard);
		index_table_free(ix);
		identity_wipe(&id);
	}
	static struct session_config config(uint64_t boot)
	{
		struct session_config c = {};
		c.local_caps = session_local_caps();
		c.boot_id = boot;
		c.connect_timeout_ms = 10000;
		c.wall_offset_ms = 1700000000000ll;
		return c;
	}
	void connect(const Side &peer, struct session_config c)
	{
		c.rng = rng_fill;
		c.rng_ctx = &rng;
		session_free(s);
		s = session_new(&id, peer.id.pub, &c, ix);
		ASSERT_NE(s, nullptr);
	}

	// The engine's receive path (core/driver/engine_receive.c does the same).
	// Appends what must be sent back; returns the session_* result.
	int receive(const Bytes &pkt, const struct sockaddr_in &src, uint64_t now,
		    std::vector<Bytes> *replies, uint64_t *pn_out = nullptr)
	{
		int rc = receive_inner(pkt, src, now, replies, pn_out);
		if (rc < 0)
			drops[session_drop_reason(rc)]++;
		return rc;
	}
	int receive_inner(const Bytes &in, const struct sockaddr_in &src, uint64_t now,
			  std::vector<Bytes> *replies, uint64_t *pn_out)
	{
		Bytes pkt = in;
		if (pkt.size() < WIRE_HEADER_BYTES)
			return SRM_DROP_CODE(SRM_DROP_MALFORMED);
		if (pkt[0] == WIRE_HANDSHAKE_INIT || pkt[0] == WIRE_HANDSHAKE_RESP) {
			uint8_t reply[COOKIE_REPLY_BYTES];
			size_t rl = 0;
			int rc = handshake_guard_check(guard, pkt.data(), pkt.size(),
						       (const struct sockaddr *)&src, sizeof(src), now,
						       reply, &rl);
			if (rl) {
				EXPECT_LT(rl, pkt.size());
				replies->push_back(Bytes(reply, reply + rl));
			}
			if (rc)
				return rc;
		}
		if (pkt[0] == WIRE_HANDSHAKE_INIT) {
			struct noise_init ni;
			int rc = noise_consume_init(&id, pkt.data(), pkt.size(), &ni);
			if (rc)
				return rc;
			if (memcmp(ni.peer_pub, session_peer_pub(s), 32) != 0) {
				noise_init_wipe(&ni);
				return SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER);
			}
			uint8_t resp[RESP_BYTES];
			size_t rl = 0;
			rc = session_receive_init(s, &ni, now, NULL, NULL, resp, sizeof(resp), &rl);
			noise_init_wipe(&ni);
			if (rl) {
				EXPECT_LT(rl, pkt.size());
				replies->push_back(Bytes(resp, resp + rl));
			}
			return rc;
		}
		uint32_t idx;
		int rc = session_receiver_index(pkt.data(), pkt.size(), &idx);
		if (rc)
			return rc;
		struct session *found = index_table_lookup(ix, idx);
		if (!found)
			return SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX);
		EXPECT_EQ(found, s);
		switch (pkt[0]) {
		case WIRE_HANDSHAKE_RESP:
			rc = session_receive_resp(s, pkt.data(), pkt.size(), now, NULL);
			if (rc == 0)
				send_now = true;
			return rc;
		case WIRE_COOKIE_REPLY:
			return session_receive_cookie(s, pkt.data(), pkt.size(), now);
		case WIRE_DATA: {
			uint64_t pn;
			// In place, as the engine may do.
			int n = session_open(s, pkt.data(), pkt.size(), pkt.data() + WIRE_DATA_HEADER_BYTES,
					     pkt.size() - WIRE_DATA_HEADER_BYTES, &pn, now);
			if (n >= 0) {
				delivered.insert(pn);
				if (pn_out)
					*pn_out = pn;
			}
			return n;
		}
		}
		return SRM_DROP_CODE(SRM_DROP_MALFORMED);
	}

	// The transport sends a packet: seal or ask for a handshake.
	bool seal(uint64_t now, Bytes *out, uint64_t *pn_used = nullptr)
	{
		uint8_t plain[40];
		memset(plain, 0x5a, sizeof(plain));
		out->resize(sizeof(plain) + WIRE_DATA_OVERHEAD);
		int n = session_seal(s, pn, plain, sizeof(plain), out->data(), out->size(), now);
		if (n == SRM_ERR_AGAIN) {
			session_want_handshake(s, now);
			return false;
		}
		EXPECT_EQ(n, (int)out->size());
		if (pn_used)
			*pn_used = pn;
		pn++;
		return true;
	}
	Bytes handshake(uint64_t now)
	{
		uint8_t b[INIT_BYTES];
		size_t n = session_handshake_packet(s, now, b, sizeof(b));
		return Bytes(b, b + n);
	}
};

bool keys_agree(const Side &a, const Side &b)
{
	uint8_t as[32], ar[32], bs[32], br[32];
	if (session_current_keys(a.s, as, ar) || session_current_keys(b.s, bs, br))
		return false;
	return memcmp(as, br, 32) == 0 && memcmp(ar, bs, 32) == 0;
}

// A pair of sides, A initiating, handshake done by hand.
struct SessionPair : ::testing::Test {
	std::unique_ptr<Side> a, b;
	uint64_t now = 1000;
	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		a.reset(new Side(1, 0x0a000001));
		b.reset(new Side(2, 0x0a000002));
		a->connect(*b, Side::config(0xaaaa));
		b->connect(*a, Side::config(0xbbbb));
	}
	// Deliver pkt from -> to, and everything it causes, depth first.
	void exchange(Side &from, Side &to, const Bytes &pkt)
	{
		std::vector<Bytes> replies;
		to.receive(pkt, from.addr, now, &replies);
		for (auto &r : replies)
			exchange(to, from, r);
	}
	void establish()
	{
		Bytes d;
		bool b_was = session_established(b->s);
		ASSERT_FALSE(a->seal(now, &d));
		Bytes init = a->handshake(now);
		ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
		exchange(*a, *b, init);
		ASSERT_TRUE(session_established(a->s));
		if (!b_was) {
			ASSERT_FALSE(session_established(b->s));
		}
		ASSERT_TRUE(a->seal(now, &d));
		exchange(*a, *b, d);
		ASSERT_TRUE(session_established(b->s));
		ASSERT_TRUE(keys_agree(*a, *b));
	}
};

TEST_F(SessionPair, HandshakeSuccessAndKeyConfirmation)
{
	Bytes d;
	EXPECT_FALSE(session_established(a->s));
	EXPECT_EQ(session_handshake_age_ms(a->s, now), UINT64_MAX);
	EXPECT_FALSE(a->seal(now, &d)); // no keys: the engine asks for a handshake
	Bytes init = a->handshake(now);
	ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
	EXPECT_EQ(a->handshake(now).size(), 0u); // not again before the retry timer

	std::vector<Bytes> r;
	ASSERT_EQ(b->receive(init, a->addr, now, &r), 0);
	ASSERT_EQ(r.size(), 1u);
	ASSERT_EQ(r[0].size(), (size_t)RESP_BYTES);
	// The responder may not send until the initiator proves it has the keys.
	EXPECT_FALSE(session_established(b->s));
	EXPECT_FALSE(b->seal(now, &d));
	EXPECT_EQ(b->handshake(now).size(), 0u); // it waits for confirmation
	std::vector<Bytes> none;
	ASSERT_EQ(a->receive(r[0], b->addr, now, &none), 0);
	EXPECT_TRUE(a->send_now);
	EXPECT_TRUE(session_established(a->s));
	EXPECT_EQ(session_peer_boot_id(a->s), 0xbbbbu);
	ASSERT_TRUE(a->seal(now, &d));
	uint64_t pn = 0;
	EXPECT_EQ(b->receive(d, a->addr, now, &none, &pn), 40);
	EXPECT_EQ(pn, 1000u);
	EXPECT_TRUE(session_established(b->s));
	EXPECT_EQ(session_peer_boot_id(b->s), 0xaaaau);
	EXPECT_TRUE(keys_agree(*a, *b));
	ASSERT_TRUE(b->seal(now, &d));
	EXPECT_EQ(a->receive(d, b->addr, now, &none), 40);
	EXPECT_EQ(session_handshake_age_ms(a->s, now + 5), 5u);
	EXPECT_EQ(session_keypair_count(a->s), 1);
	EXPECT_EQ(session_keypair_count(b->s), 1);
	EXPECT_STREQ(session_cipher_name(a->s), session_local_caps() & CAP_AES256GCM
							? "aes-256-gcm" : "chacha20-poly1305");
	EXPECT_TRUE(none.empty());
	// Established and fresh: wanting a handshake does nothing.
	session_want_handshake(a->s, now);
	EXPECT_EQ(a->handshake(now).size(), 0u);
	EXPECT_EQ(session_next_deadline(a->s, now), 1000u + REJECT_AFTER_MS);
}

TEST_F(SessionPair, ForceChacha)
{
	struct session_config c = Side::config(1);
	c.force_chacha = 1;
	a->connect(*b, c);
	establish();
	EXPECT_STREQ(session_cipher_name(a->s), "chacha20-poly1305");
	EXPECT_STREQ(session_cipher_name(b->s), "chacha20-poly1305");
}

TEST_F(SessionPair, UnknownOrWrongKeyRefused)
{
	// A stranger's INIT to B: B has no session for that key.
	Side c(3, 0x0a000003);
	c.connect(*b, Side::config(3));
	Bytes d;
	EXPECT_FALSE(c.seal(now, &d));
	Bytes init = c.handshake(now);
	std::vector<Bytes> r;
	EXPECT_EQ(b->receive(init, c.addr, now, &r), SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	EXPECT_TRUE(r.empty());
	// And the session itself checks the key too.
	struct noise_init ni;
	ASSERT_EQ(noise_consume_init(&b->id, init.data(), init.size(), &ni), 0);
	uint8_t resp[RESP_BYTES];
	size_t rl = 1;
	EXPECT_EQ(session_receive_init(b->s, &ni, now, NULL, NULL, resp, sizeof(resp), &rl),
		  SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	EXPECT_EQ(rl, 0u);
	noise_init_wipe(&ni);
	// An INIT meant for someone else fails mac1 before any DH.
	Side d2(4, 0x0a000004);
	d2.connect(c, Side::config(4));
	EXPECT_FALSE(d2.seal(now, &d));
	Bytes other = d2.handshake(now);
	EXPECT_EQ(b->receive(other, d2.addr, now, &r), SRM_DROP_CODE(SRM_DROP_MAC));
	EXPECT_FALSE(session_established(b->s));
	// A session with ourselves, or with a degenerate key, is refused.
	struct session_config cfg = Side::config(5);
	EXPECT_EQ(session_new(&a->id, a->id.pub, &cfg, a->ix), nullptr);
	uint8_t zero[32] = {0};
	EXPECT_EQ(session_new(&a->id, zero, &cfg, a->ix), nullptr);
}

TEST_F(SessionPair, ReplayedAndDuplicatedHandshakeMessagesAreHarmless)
{
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes init = a->handshake(now);
	std::vector<Bytes> r1, r2;
	ASSERT_EQ(b->receive(init, a->addr, now, &r1), 0);
	ASSERT_EQ(r1.size(), 1u);
	// The same INIT again: replay (timestamp), no answer, nothing changes.
	EXPECT_EQ(b->receive(init, a->addr, now + 1, &r2), SRM_DROP_CODE(SRM_DROP_REPLAY));
	EXPECT_TRUE(r2.empty());
	EXPECT_EQ(session_keypairs_created(b->s), 1u);
	std::vector<Bytes> none;
	ASSERT_EQ(a->receive(r1[0], b->addr, now, &none), 0);
	// The same RESP again: no handshake waits for it.
	EXPECT_EQ(a->receive(r1[0], b->addr, now, &none), SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX));
	EXPECT_EQ(session_keypairs_created(a->s), 1u);
	ASSERT_TRUE(a->seal(now, &d));
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
	// Much later, the old INIT replayed to a running B: still refused.
	EXPECT_EQ(b->receive(init, a->addr, now + 100000, &r2), SRM_DROP_CODE(SRM_DROP_REPLAY));
	EXPECT_TRUE(keys_agree(*a, *b));
	// An INIT replayed to a restarted B is answered, but nothing comes of
	// it: the keypair is never confirmed and the boot id stays unknown.
	b->connect(*a, Side::config(0xbbbb));
	ASSERT_EQ(b->receive(init, a->addr, now + 100000, &r2), 0);
	EXPECT_FALSE(session_established(b->s));
	EXPECT_EQ(session_peer_boot_id(b->s), 0u);
	// ...and it does not make B wait before initiating itself.
	EXPECT_FALSE(b->seal(now + 100000, &d));
	EXPECT_EQ(b->handshake(now + 100000).size(), (size_t)INIT_BYTES);
	EXPECT_TRUE(none.empty());
}

TEST_F(SessionPair, FreshnessCheckForNewSessions)
{
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes init = a->handshake(now);
	struct noise_init ni;
	ASSERT_EQ(noise_consume_init(&b->id, init.data(), init.size(), &ni), 0);
	EXPECT_EQ(session_check_init_fresh(b->s, &ni, now), 0);
	EXPECT_EQ(session_check_init_fresh(b->s, &ni, now + RESPONDER_WAIT_MAX_SKEW_MS), 0);
	EXPECT_EQ(session_check_init_fresh(b->s, &ni, now + RESPONDER_WAIT_MAX_SKEW_MS + 1),
		  SRM_DROP_CODE(SRM_DROP_STALE));
	// Read-only: the INIT is still taken afterwards.
	uint8_t resp[RESP_BYTES];
	size_t rl;
	EXPECT_EQ(session_receive_init(b->s, &ni, now, NULL, NULL, resp, sizeof(resp), &rl), 0);
	EXPECT_EQ(rl, (size_t)RESP_BYTES);
	Side c(5, 0x0a000005);
	c.connect(*b, Side::config(5));
	EXPECT_EQ(session_check_init_fresh(c.s, &ni, now), SRM_DROP_CODE(SRM_DROP_UNKNOWN_PEER));
	noise_init_wipe(&ni);
}

// What the responder's early callback saw, and what it answers.
struct EarlySeen {
	int calls = 0;
	Bytes in;
	uint64_t boot = 0;
};
extern "C" void early_answer(void *ctx, const uint8_t in[NOISE_EARLY_BYTES], uint64_t boot,
			     uint8_t out[NOISE_EARLY_BYTES])
{
	EarlySeen *e = static_cast<EarlySeen *>(ctx);
	e->calls++;
	e->in.assign(in, in + NOISE_EARLY_BYTES);
	e->boot = boot;
	out[0] = 0x04; // ACCEPT stream 0
}

TEST_F(SessionPair, EarlyFramesRideInTheHandshakeOnlyWhenFresh)
{
	const uint8_t open[] = { 0x03, 0x00, 0xeb, 0x18 };
	session_set_early(a->s, open, sizeof(open));
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes init = a->handshake(now);
	uint8_t resp[RESP_BYTES];
	size_t rl;
	EarlySeen seen;

	// Too far from the responder's wall clock (a replay to a restarted
	// responder): answered, but the frames are not acted on.
	struct noise_init ni;
	ASSERT_EQ(noise_consume_init(&b->id, init.data(), init.size(), &ni), 0);
	EXPECT_EQ(session_receive_init(b->s, &ni, now + RESPONDER_WAIT_MAX_SKEW_MS + 1, early_answer,
				       &seen, resp, sizeof(resp), &rl), 0);
	noise_init_wipe(&ni);
	EXPECT_EQ(seen.calls, 0);

	// Fresh: the callback sees the frames and the boot id, the RESP
	// carries its answer, and the initiator's early frames are spent.
	b->connect(*a, Side::config(0xbbbb));
	now += 1000;
	init = a->handshake(now + HANDSHAKE_RETRY_MIN_MS + HANDSHAKE_RETRY_JITTER_MS);
	ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
	ASSERT_EQ(noise_consume_init(&b->id, init.data(), init.size(), &ni), 0);
	EXPECT_EQ(session_receive_init(b->s, &ni, now, early_answer, &seen, resp, sizeof(resp), &rl), 0);
	noise_init_wipe(&ni);
	ASSERT_EQ(seen.calls, 1);
	EXPECT_EQ(memcmp(seen.in.data(), open, sizeof(open)), 0);
	EXPECT_TRUE(sodium_is_zero(seen.in.data() + sizeof(open), NOISE_EARLY_BYTES - sizeof(open)));
	EXPECT_EQ(seen.boot, 0xaaaau);
	uint8_t answer[NOISE_EARLY_BYTES];
	ASSERT_EQ(session_receive_resp(a->s, resp, rl, now, answer), 0);
	EXPECT_EQ(answer[0], 0x04);
	EXPECT_TRUE(sodium_is_zero(answer + 1, NOISE_EARLY_BYTES - 1));

	// An INIT without early frames does not call it.
	b->connect(*a, Side::config(0xbbbb));
	a->connect(*b, Side::config(0xaaaa));
	EXPECT_FALSE(a->seal(now, &d));
	init = a->handshake(now);
	ASSERT_EQ(noise_consume_init(&b->id, init.data(), init.size(), &ni), 0);
	EXPECT_EQ(session_receive_init(b->s, &ni, now, early_answer, &seen, resp, sizeof(resp), &rl), 0);
	noise_init_wipe(&ni);
	EXPECT_EQ(seen.calls, 1);
}

// The engine handshakes with a known peer as soon as it starts, before
// the first stream is opened: frames set while that INIT is outstanding go
// out in a new INIT at once, not a retransmission timeout later.
TEST_F(SessionPair, EarlyFramesSetLateGoOutInANewInitAtOnce)
{
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes first = a->handshake(now);
	ASSERT_EQ(first.size(), (size_t)INIT_BYTES);
	EXPECT_TRUE(a->handshake(now + 1).empty()); // retransmission not due
	const uint8_t open[] = { 0x03, 0x00, 0xeb, 0x18 };
	session_set_early(a->s, open, sizeof(open));
	Bytes second = a->handshake(now + 1);
	ASSERT_EQ(second.size(), (size_t)INIT_BYTES);
	session_set_early(a->s, open, sizeof(open)); // unchanged: nothing new
	EXPECT_TRUE(a->handshake(now + 2).empty());

	uint8_t resp[RESP_BYTES];
	size_t rl;
	EarlySeen seen;
	struct noise_init ni;
	ASSERT_EQ(noise_consume_init(&b->id, second.data(), second.size(), &ni), 0);
	EXPECT_EQ(session_receive_init(b->s, &ni, now + 2, early_answer, &seen, resp, sizeof(resp), &rl), 0);
	noise_init_wipe(&ni);
	ASSERT_EQ(seen.calls, 1);
	EXPECT_EQ(memcmp(seen.in.data(), open, sizeof(open)), 0);
	ASSERT_EQ(session_receive_resp(a->s, resp, rl, now + 3, nullptr), 0);
	EXPECT_TRUE(session_established(a->s));
}

TEST_F(SessionPair, ReorderedInitsOnlyTheNewestCounts)
{
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes i1 = a->handshake(now);
	now += 600;
	Bytes i2 = a->handshake(now); // retransmission: new ephemeral, new timestamp
	ASSERT_EQ(i2.size(), (size_t)INIT_BYTES);
	std::vector<Bytes> r2, r1;
	ASSERT_EQ(b->receive(i2, a->addr, now, &r2), 0);
	EXPECT_EQ(b->receive(i1, a->addr, now, &r1), SRM_DROP_CODE(SRM_DROP_REPLAY));
	EXPECT_TRUE(r1.empty());
	std::vector<Bytes> none;
	ASSERT_EQ(a->receive(r2[0], b->addr, now, &none), 0);
	ASSERT_TRUE(a->seal(now, &d));
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
}

TEST_F(SessionPair, LateRespToAnOlderInitIsDropped)
{
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes i1 = a->handshake(now);
	std::vector<Bytes> r1;
	ASSERT_EQ(b->receive(i1, a->addr, now, &r1), 0);
	now += 600;
	Bytes i2 = a->handshake(now); // A never saw r1 in time
	std::vector<Bytes> none;
	EXPECT_EQ(a->receive(r1[0], b->addr, now, &none), SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX));
	EXPECT_FALSE(session_established(a->s));
	std::vector<Bytes> r2;
	ASSERT_EQ(b->receive(i2, a->addr, now, &r2), 0);
	ASSERT_EQ(a->receive(r2[0], b->addr, now, &none), 0);
	ASSERT_TRUE(a->seal(now, &d));
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
}

TEST_F(SessionPair, RetransmitBackoffJitterAndTimeout)
{
	struct session_config c = Side::config(1);
	c.connect_timeout_ms = 20000;
	a->connect(*b, c);
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	std::vector<uint64_t> sent;
	uint64_t start = now;
	for (uint64_t t = now; t < now + 30000; t++) {
		uint64_t dl = session_next_deadline(a->s, t);
		Bytes p = a->handshake(t);
		if (!p.empty()) {
			sent.push_back(t);
			EXPECT_GE(t, dl); // never earlier than announced
		}
	}
	ASSERT_GE(sent.size(), 6u);
	EXPECT_EQ(sent[0], start);
	for (size_t i = 1; i < sent.size(); i++) {
		uint64_t gap = sent[i] - sent[i - 1];
		EXPECT_GE(gap, (uint64_t)HANDSHAKE_RETRY_MIN_MS);
		EXPECT_LE(gap, (uint64_t)HANDSHAKE_RETRY_MAX_MS + HANDSHAKE_RETRY_JITTER_MS);
		if (i >= 2 && sent[i - 1] - sent[i - 2] < 2000) {
			EXPECT_GT(gap + HANDSHAKE_RETRY_JITTER_MS, sent[i - 1] - sent[i - 2]);
		}
	}
	EXPECT_LE(sent[1] - sent[0], 500u);
	EXPECT_LT(sent.back(), start + 20000);
	EXPECT_TRUE(session_failed(a->s));
	EXPECT_EQ(session_error(a->s), SRM_ERR_UNREACHABLE);
	EXPECT_EQ(session_next_deadline(a->s, now + 30000), UINT64_MAX);
	// Traffic still waits: a new attempt starts at once.
	session_want_handshake(a->s, now + 30000);
	EXPECT_FALSE(session_failed(a->s));
	EXPECT_EQ(a->handshake(now + 30000).size(), (size_t)INIT_BYTES);
}

// Our own attempt timed out (the peer was not running yet); then the peer's
// INIT arrives.  The failure is history: the session must not stay failed,
// or the driver drops what that INIT opened (issue 18, item 3).
TEST_F(SessionPair, PeersInitClearsOurTimedOutAttempt)
{
	struct session_config c = Side::config(2);
	c.connect_timeout_ms = 1000;
	b->connect(*a, c);
	session_want_handshake(b->s, now);
	for (uint64_t t = now; t <= now + 1000; t += 10)
		b->handshake(t); // lost: a is not there
	ASSERT_TRUE(session_failed(b->s));
	now += 5000;
	session_want_handshake(a->s, now);
	Bytes init = a->handshake(now);
	ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
	exchange(*a, *b, init);
	EXPECT_FALSE(session_failed(b->s));
	EXPECT_EQ(session_error(b->s), 0);
	ASSERT_TRUE(session_established(a->s));
}

TEST_F(SessionPair, EachRetransmittedInitIsFresh)
{
	// Every INIT of an attempt carries a newer timestamp, so the responder
	// takes each (its RESP may have been lost) and refuses older ones.
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	std::vector<Bytes> inits;
	for (uint64_t t = now; t < now + 9000; t++) {
		Bytes init = a->handshake(t);
		if (!init.empty())
			inits.push_back(init);
	}
	ASSERT_GE(inits.size(), 4u);
	for (size_t i = 0; i < inits.size(); i++) {
		std::vector<Bytes> r;
		uint64_t t = now + 9000 + i * 1000; // slower than the rate limit
		EXPECT_EQ(b->receive(inits[i], a->addr, t, &r), 0) << i;
		EXPECT_EQ(r.size(), 1u);
		if (i) {
			EXPECT_EQ(b->receive(inits[i - 1], a->addr, t, &r),
				  SRM_DROP_CODE(SRM_DROP_REPLAY));
		}
	}
	// Wanting again after the timeout restarts at once, with a newer timestamp.
	session_want_handshake(a->s, now + 30000);
	Bytes init = a->handshake(now + 30000);
	ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
	std::vector<Bytes> r;
	EXPECT_EQ(b->receive(init, a->addr, now + 30000, &r), 0);
}

TEST_F(SessionPair, EveryFlippedByteAndTruncationOfDataRejected)
{
	establish();
	Bytes d;
	uint64_t pn;
	ASSERT_TRUE(a->seal(now, &d, &pn));
	std::vector<Bytes> none;
	for (size_t i = 0; i < d.size(); i++) {
		for (int bit = 0; bit < 8; bit++) {
			Bytes bad = d;
			bad[i] ^= (uint8_t)(1 << bit);
			int rc = b->receive(bad, a->addr, now, &none);
			EXPECT_TRUE(SRM_IS_DROP(rc)) << "byte " << i << " bit " << bit;
		}
		Bytes bad = d;
		bad[i] ^= 0xff;
		EXPECT_TRUE(SRM_IS_DROP(b->receive(bad, a->addr, now, &none))) << "byte " << i;
	}
	for (size_t len = 0; len < d.size(); len++) {
		Bytes bad(d.begin(), d.begin() + len);
		EXPECT_TRUE(SRM_IS_DROP(b->receive(bad, a->addr, now, &none))) << "length " << len;
	}
	Bytes longer = d;
	longer.push_back(0);
	EXPECT_TRUE(SRM_IS_DROP(b->receive(longer, a->addr, now, &none)));
	// None of that burned the packet number: the real one still opens, once.
	EXPECT_EQ(b->receive(d, a->addr, now, &none), 40);
	EXPECT_EQ(b->receive(d, a->addr, now, &none), SRM_DROP_CODE(SRM_DROP_REPLAY));
	EXPECT_GT(b->drops[SRM_DROP_AUTH], 0);
	EXPECT_TRUE(session_established(b->s));
}

TEST_F(SessionPair, ReplayWindowOnData)
{
	establish();
	std::vector<Bytes> pkts;
	for (int i = 0; i < 3000; i++) {
		Bytes d;
		ASSERT_TRUE(a->seal(now, &d));
		pkts.push_back(d);
	}
	std::vector<Bytes> none;
	// Reordered within the window: all accepted once.
	for (int i = 2999; i >= 2999 - 2047; i--)
		EXPECT_EQ(b->receive(pkts[i], a->addr, now, &none), 40) << i;
	for (int i = 2999; i >= 2999 - 2047; i -= 97)
		EXPECT_EQ(b->receive(pkts[i], a->addr, now, &none), SRM_DROP_CODE(SRM_DROP_REPLAY));
	// Far behind the newest: too old, dropped.
	EXPECT_EQ(b->receive(pkts[0], a->addr, now, &none), 40); // 2999 behind: still in 8128
	Bytes more;
	for (int i = 0; i < 9000; i++)
		ASSERT_TRUE(a->seal(now, &more));
	EXPECT_EQ(b->receive(more, a->addr, now, &none), 40);
	EXPECT_EQ(b->receive(pkts[1], a->addr, now, &none), SRM_DROP_CODE(SRM_DROP_REPLAY));
}

TEST_F(SessionPair, VersionMismatchIsAClearError)
{
	struct session_config c = Side::config(1);
	c.min_version = 2;
	c.max_version = 3; // a future peer that dropped version 1
	b->connect(*a, c);
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes init = a->handshake(now);
	std::vector<Bytes> r;
	EXPECT_EQ(b->receive(init, a->addr, now, &r), SRM_ERR_VERSION);
	EXPECT_TRUE(session_failed(b->s));
	EXPECT_EQ(session_error(b->s), SRM_ERR_VERSION);
	ASSERT_EQ(r.size(), 1u); // tells A our versions
	std::vector<Bytes> none;
	EXPECT_EQ(a->receive(r[0], b->addr, now, &none), SRM_ERR_VERSION);
	EXPECT_TRUE(session_failed(a->s));
	EXPECT_EQ(session_error(a->s), SRM_ERR_VERSION);
	EXPECT_FALSE(session_established(a->s));
	EXPECT_FALSE(session_established(b->s));
	EXPECT_EQ(session_drop_reason(SRM_ERR_VERSION), SRM_DROP_VERSION);
	// An unknown version byte on the wire is a VERSION drop.
	init[1] = 7;
	EXPECT_EQ(b->receive(init, a->addr, now, &r), SRM_DROP_CODE(SRM_DROP_VERSION));
}

TEST_F(SessionPair, UnknownRequiredCapabilityIsAMismatch)
{
	struct session_config c = Side::config(1);
	c.local_caps |= 1u << 20; // "required" half
	a->connect(*b, c);
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes init = a->handshake(now);
	std::vector<Bytes> r;
	EXPECT_EQ(b->receive(init, a->addr, now, &r), SRM_ERR_VERSION);
	// An unknown optional capability is fine.
	c.local_caps = (1u << 5) | session_local_caps();
	a->connect(*b, c);
	b->connect(*a, Side::config(0xbbbb));
	establish();
}

TEST_F(SessionPair, CrossingInitsMakeExactlyOneKeypair)
{
	for (int first = 0; first < 2; first++) {
		SetUp();
		Bytes d;
		EXPECT_FALSE(a->seal(now, &d));
		EXPECT_FALSE(b->seal(now, &d));
		Bytes ia = a->handshake(now), ib = b->handshake(now);
		ASSERT_FALSE(ia.empty());
		ASSERT_FALSE(ib.empty());
		std::vector<Bytes> ra, rb;
		// Both INITs cross; delivered in either order.
		if (first) {
			b->receive(ia, a->addr, now, &rb);
			a->receive(ib, b->addr, now, &ra);
		} else {
			a->receive(ib, b->addr, now, &ra);
			b->receive(ia, a->addr, now, &rb);
		}
		ASSERT_EQ(ra.size() + rb.size(), 1u) << "exactly one side answers";
		Side &lower = ra.size() ? *a : *b, &higher = ra.size() ? *b : *a;
		EXPECT_LT(memcmp(lower.id.pub, higher.id.pub, 32), 0);
		std::vector<Bytes> none;
		ASSERT_EQ(higher.receive(ra.size() ? ra[0] : rb[0], lower.addr, now, &none), 0);
		ASSERT_TRUE(higher.seal(now, &d));
		ASSERT_GE(lower.receive(d, higher.addr, now, &none), 0);
		EXPECT_TRUE(keys_agree(*a, *b));
		EXPECT_EQ(session_keypairs_created(a->s), 1u);
		EXPECT_EQ(session_keypairs_created(b->s), 1u);
		// The yielding side does not start again on its own.
		for (uint64_t t = now; t < now + 20000; t += 10) {
			EXPECT_TRUE(lower.handshake(t).empty());
			EXPECT_TRUE(higher.handshake(t).empty());
		}
	}
}

TEST_F(SessionPair, HigherSideResendsItsInitWhenTheLowerOneArrives)
{
	// Hole punching: the higher side's first INIT died in the peer's NAT;
	// the lower side's INIT gets through.  The higher side answers that
	// by resending its INIT at once (same bytes, so a RESP in flight
	// would still match), and the lower side yields to it.
	Side &hi = memcmp(a->id.pub, b->id.pub, 32) > 0 ? *a : *b;
	Side &lo = &hi == a.get() ? *b : *a;
	Bytes d;
	EXPECT_FALSE(hi.seal(now, &d));
	EXPECT_FALSE(lo.seal(now, &d));
	Bytes lost = hi.handshake(now), from_lo = lo.handshake(now);
	ASSERT_FALSE(lost.empty());
	std::vector<Bytes> r;
	now += 30;
	EXPECT_EQ(hi.receive(from_lo, lo.addr, now, &r), 0);
	EXPECT_TRUE(r.empty()); // ignored
	EXPECT_EQ(session_next_deadline(hi.s, now), now);
	Bytes again = hi.handshake(now);
	EXPECT_EQ(again, lost);
	EXPECT_TRUE(hi.handshake(now).empty()); // once
	ASSERT_EQ(lo.receive(again, hi.addr, now, &r), 0);
	ASSERT_EQ(r.size(), 1u);
	EXPECT_EQ(lo.receive(again, hi.addr, now, &r), SRM_DROP_CODE(SRM_DROP_REPLAY));
	std::vector<Bytes> none;
	ASSERT_EQ(hi.receive(r[0], lo.addr, now, &none), 0);
	ASSERT_TRUE(hi.seal(now, &d));
	ASSERT_GE(lo.receive(d, hi.addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
	EXPECT_EQ(session_keypairs_created(a->s), 1u);
	EXPECT_EQ(session_keypairs_created(b->s), 1u);
}

TEST_F(SessionPair, RekeyByTimeKeepsPacketNumbersAndOverlap)
{
	establish();
	Bytes old_pkt;
	ASSERT_TRUE(a->seal(now, &old_pkt));
	std::vector<Bytes> none;
	// No rekey before REKEY_AFTER_MS.
	now += REKEY_AFTER_MS - 1;
	Bytes d;
	ASSERT_TRUE(a->seal(now, &d));
	EXPECT_TRUE(a->handshake(now).empty());
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	now += 1;
	uint64_t pn_before = a->pn;
	ASSERT_TRUE(a->seal(now, &d)); // still sends on the old keys...
	Bytes in_flight = d;
	Bytes init = a->handshake(now); // ...and starts a new handshake
	ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
	exchange(*a, *b, init);
	EXPECT_EQ(session_keypairs_created(a->s), 2u);
	EXPECT_EQ(session_keypair_count(a->s), 2); // current + previous
	// The old keys are still accepted for a while (overlap)...
	uint64_t pn = 0;
	EXPECT_EQ(b->receive(in_flight, a->addr, now, &none, &pn), 40);
	EXPECT_EQ(pn, pn_before);
	// ...and B keeps sending on them until A's first packet confirms.
	Bytes from_b;
	ASSERT_TRUE(b->seal(now, &from_b));
	EXPECT_EQ(a->receive(from_b, b->addr, now, &none), 40);
	ASSERT_TRUE(a->seal(now, &d, &pn));
	EXPECT_EQ(pn, pn_before + 1); // the transport's numbering goes on
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
	// Past REJECT_AFTER_MS of the old keys, their packets are dropped.
	now = 1000 + REJECT_AFTER_MS;
	ASSERT_TRUE(a->seal(now, &d));
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	int rc = b->receive(old_pkt, a->addr, now, &none);
	EXPECT_TRUE(rc == SRM_DROP_CODE(SRM_DROP_STALE) || rc == SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX));
	EXPECT_EQ(session_keypair_count(b->s), 1);
}

TEST_F(SessionPair, KeysExpireWithoutRekey)
{
	establish();
	now += REJECT_AFTER_MS;
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d)); // expired: handshake wanted
	EXPECT_FALSE(session_established(a->s));
	EXPECT_EQ(session_keypair_count(a->s), 0);
	// The last handshake's age outlives its keys (status shows it).
	EXPECT_EQ(session_handshake_age_ms(a->s, now), (uint64_t)REJECT_AFTER_MS);
	Bytes init = a->handshake(now);
	EXPECT_EQ(init.size(), (size_t)INIT_BYTES);
	exchange(*a, *b, init);
	ASSERT_TRUE(a->seal(now, &d));
	std::vector<Bytes> none;
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
}

TEST_F(SessionPair, ResponderRekeysIfTheInitiatorDoesNot)
{
	establish();
	std::vector<Bytes> none;
	now += REKEY_RESPONDER_AFTER_MS;
	Bytes d;
	ASSERT_TRUE(b->seal(now, &d));
	Bytes init = b->handshake(now);
	ASSERT_EQ(init.size(), (size_t)INIT_BYTES);
	exchange(*b, *a, init);
	ASSERT_TRUE(b->seal(now, &d));
	ASSERT_GE(a->receive(d, b->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
	EXPECT_EQ(session_handshake_age_ms(a->s, now), 0u);
}

TEST_F(SessionPair, BootIdChangeShowsAPeerRestart)
{
	establish();
	EXPECT_EQ(session_peer_boot_id(b->s), 0xaaaau);
	// A restarts: same key, new boot id, its clock has moved on.
	now += 5000;
	a->connect(*b, Side::config(0xcccc));
	establish();
	EXPECT_EQ(session_peer_boot_id(b->s), 0xccccu);
}

TEST_F(SessionPair, CookieModeUnderFloodEstablishedSessionsUnaffected)
{
	// C already has a session with B.
	Side c(7, 0x0a000007);
	c.connect(*b, Side::config(7));
	b->connect(*a, Side::config(0xbbbb));
	struct session_config c8 = Side::config(8);
	struct session *b_to_c = session_new(&b->id, c.id.pub, &c8, b->ix);
	ASSERT_NE(b_to_c, nullptr);
	{
		Bytes d;
		EXPECT_FALSE(c.seal(now, &d));
		Bytes init = c.handshake(now);
		struct noise_init ni;
		ASSERT_EQ(noise_consume_init(&b->id, init.data(), init.size(), &ni), 0);
		uint8_t resp[RESP_BYTES];
		size_t rl;
		ASSERT_EQ(session_receive_init(b_to_c, &ni, now, NULL, NULL, resp, sizeof(resp), &rl), 0);
		noise_init_wipe(&ni);
		std::vector<Bytes> none;
		ASSERT_EQ(c.receive(Bytes(resp, resp + rl), b->addr, now, &none), 0);
		ASSERT_TRUE(c.seal(now, &d));
		uint64_t pn;
		uint8_t plain[64];
		ASSERT_EQ(session_open(b_to_c, d.data(), d.size(), plain, sizeof(plain), &pn, now), 40);
	}
	// A flood of INITs with valid mac1 (anyone can compute it) from many
	// spoofed addresses.
	std::vector<Bytes> replies;
	int cookies = 0, ratelimited = 0;
	for (int i = 0; i < 3000; i++) {
		Side evil(100 + i % 7, 0xc6120000 + i); // 198.18.x.x
		evil.connect(*b, Side::config(9));
		Bytes d;
		EXPECT_FALSE(evil.seal(now, &d));
		Bytes init = evil.handshake(now);
		std::vector<Bytes> r;
		int rc = b->receive(init, evil.addr, now + i / 10, &r);
		if (rc == SRM_DROP_CODE(SRM_DROP_COOKIE)) {
			cookies++;
			ASSERT_EQ(r.size(), 1u);
			EXPECT_EQ(r[0].size(), (size_t)COOKIE_REPLY_BYTES);
			EXPECT_LT(r[0].size(), init.size());
		} else if (rc == SRM_DROP_CODE(SRM_DROP_RATELIMIT)) {
			ratelimited++;
		}
		if (i == 2000)
			break;
	}
	now += 200;
	EXPECT_TRUE(handshake_guard_under_load(b->guard, now));
	EXPECT_GT(cookies, 500);
	// The established session is unaffected: data never meets the guard.
	for (int i = 0; i < 100; i++) {
		Bytes d;
		ASSERT_TRUE(c.seal(now, &d));
		uint64_t pn;
		uint8_t plain[64];
		EXPECT_EQ(session_open(b_to_c, d.data(), d.size(), plain, sizeof(plain), &pn, now), 40);
	}
	// A legitimate newcomer gets a cookie, proves its address, gets in.
	Bytes d;
	EXPECT_FALSE(a->seal(now, &d));
	Bytes init = a->handshake(now);
	std::vector<Bytes> r;
	EXPECT_EQ(b->receive(init, a->addr, now, &r), SRM_DROP_CODE(SRM_DROP_COOKIE));
	ASSERT_EQ(r.size(), 1u);
	std::vector<Bytes> none;
	// A cookie reply sent to some other address (spoofed) is useless there:
	Bytes cookie_reply = r[0];
	ASSERT_EQ(a->receive(cookie_reply, b->addr, now, &none), 0);
	EXPECT_EQ(a->receive(cookie_reply, b->addr, now, &none), SRM_DROP_CODE(SRM_DROP_UNKNOWN_INDEX));
	// Next retransmission carries mac2.
	for (uint64_t t = now;; t++) {
		init = a->handshake(t);
		if (!init.empty()) {
			now = t;
			break;
		}
	}
	r.clear();
	// From the wrong address, the same mac2 does not pass.
	struct sockaddr_in moved = a->addr;
	moved.sin_port = htons(1);
	EXPECT_EQ(b->receive(init, moved, now, &r), SRM_DROP_CODE(SRM_DROP_COOKIE));
	r.clear();
	ASSERT_EQ(b->receive(init, a->addr, now, &r), 0);
	ASSERT_EQ(r.size(), 1u);
	ASSERT_EQ(a->receive(r[0], b->addr, now, &none), 0);
	ASSERT_TRUE(a->seal(now, &d));
	ASSERT_GE(b->receive(d, a->addr, now, &none), 0);
	EXPECT_TRUE(keys_agree(*a, *b));
	// Load passes.
	EXPECT_FALSE(handshake_guard_under_load(b->guard, now + 5000));
	session_free(b_to_c);
}

TEST_F(SessionPair, RoamingIsByIndexNotAddress)
{
	// Sessions are found by receiver index: after a NAT rebinding the
	// same keys go on, with no handshake; the engine moves the endpoint
	// only on packets that authenticate, so a spoofed packet from another
	// address moves nothing.
	establish();
	uint64_t made = session_keypairs_created(b->s);
	struct sockaddr_in moved = a->addr;
	moved.sin_addr.s_addr = htonl(0xc0a80063);
	moved.sin_port = htons(40000);
	std::vector<Bytes> none;
	for (int i = 0; i < 10; i++) {
		Bytes d;
		ASSERT_TRUE(a->seal(now, &d));
		EXPECT_EQ(b->receive(d, moved, now, &none), 40);
	}
	Bytes forged;
	ASSERT_TRUE(a->seal(now, &forged));
	forged[20] ^= 1;
	struct sockaddr_in attacker = moved;
	attacker.sin_port = htons(666);
	EXPECT_EQ(b->receive(forged, attacker, now, &none), SRM_DROP_CODE(SRM_DROP_AUTH));
	EXPECT_EQ(session_keypairs_created(b->s), made);
	EXPECT_TRUE(keys_agree(*a, *b));
	EXPECT_TRUE(none.empty());
}

TEST_F(SessionPair, GarbageNeverGrowsState)
{
	establish();
	Bytes from_b;
	ASSERT_TRUE(b->seal(now, &from_b));
	uint32_t live_idx = get_le32(from_b.data() + 4);
	size_t ia = index_table_count(a->ix);
	Rng r(99);
	std::vector<Bytes> replies;
	for (int i = 0; i < 20000; i++) {
		Bytes p(r.range(0, 200));
		rng_fill(&r, p.data(), p.size());
		if (p.size() >= 2) {
			p[0] = (uint8_t)r.range(0, 5);
			p[1] = r.range(0, 9) ? 1 : (uint8_t)r.next();
		}
		if (p.size() >= 12 && r.range(0, 1)) // aim at a live index
			put_le32(p.data() + (p[0] == WIRE_HANDSHAKE_RESP ? 8 : 4), live_idx);
		int rc = a->receive(p, b->addr, now, &replies);
		EXPECT_LT(rc, 0);
	}
	EXPECT_TRUE(replies.empty());
	EXPECT_EQ(index_table_count(a->ix), ia);
	EXPECT_EQ(session_keypair_count(a->s), 1);
	EXPECT_TRUE(keys_agree(*a, *b));
}

// ---- Simulated network ---------------------------------------------------

struct Net {
	struct Pkt {
		uint64_t at, seq;
		int to;
		Bytes b;
	};
	Rng rng;
	double loss = 0, dup = 0, late = 0;
	uint64_t min_delay = 1, max_delay = 50;
	std::vector<Pkt> q;
	uint64_t seq = 0;
	// Per-packet override: return -1 to drop, 0 for normal, or extra delay.
	std::function<int64_t(const Bytes &)> special;
	explicit Net(uint64_t seed) : rng(seed) {}
	void send(int to, const Bytes &b, uint64_t now)
	{
		int64_t extra = special ? special(b) : 0;
		if (extra < 0)
			return;
		if (extra > 0) {
			q.push_back({now + (uint64_t)extra, seq++, to, b});
			return;
		}
		if (rng.uni() < loss)
			return;
		int copies = rng.uni() < dup ? 2 : 1;
		for (int i = 0; i < copies; i++) {
			uint64_t d = rng.range(min_delay, max_delay);
			if (rng.uni() < late)
				d += rng.range(300, 2000); // reordered far behind
			q.push_back({now + d, seq++, to, b});
		}
	}
	// Packets due by now, in arrival order.
	std::vector<Pkt> due(uint64_t now)
	{
		std::vector<Pkt> out;
		auto it = std::partition(q.begin(), q.end(), [&](const Pkt &p) { return p.at > now; });
		out.assign(it, q.end());
		q.erase(it, q.end());
		std::sort(out.begin(), out.end(), [](const Pkt &x, const Pkt &y) {
			return x.at != y.at ? x.at < y.at : x.seq < y.seq;
		});
		return out;
	}
};

// Runs two engines over Net: each has traffic every tick_ms; returns
// false (with a message) if the run does not converge.
struct Sim {
	Side *side[2];
	Net net;
	uint64_t tick_ms = 20;
	std::map<uint64_t, uint64_t> sent_at[2]; // pn -> sent time, per sender
	int inits_before_up[2] = {0, 0};          // INITs sent before either side was up
	Sim(Side *a, Side *b, uint64_t seed) : side{a, b}, net(seed) {}

	void step(uint64_t now)
	{
		for (auto &p : net.due(now)) {
			Side &me = *side[p.to];
			std::vector<Bytes> replies;
			me.receive(p.b, side[1 - p.to]->addr, now, &replies);
			for (auto &r : replies)
				net.send(1 - p.to, r, now);
		}
		for (int i = 0; i < 2; i++) {
			Side &me = *side[i];
			if (now % tick_ms == (uint64_t)i * 7 % tick_ms || me.send_now) {
				me.send_now = false;
				Bytes d;
				uint64_t pn;
				if (me.seal(now, &d, &pn)) {
					sent_at[i][pn] = now;
					net.send(1 - i, d, now);
				} else if (session_failed(me.s)) {
					session_want_handshake(me.s, now); // traffic still waits
				}
			}
			Bytes h = me.handshake(now);
			if (!h.empty()) {
				if (!session_established(side[0]->s) && !session_established(side[1]->s))
					inits_before_up[i]++;
				net.send(1 - i, h, now);
			}
		}
	}
};

// Every handshake message lost, duplicated or reordered, one kind at a
// time (the random simulation below mixes them all).
TEST(SessionSim, EachHandshakeMessageLostDuplicatedOrReordered)
{
	ASSERT_GE(sodium_init(), 0);
	const uint8_t kinds[] = {WIRE_HANDSHAKE_INIT, WIRE_HANDSHAKE_RESP, WIRE_DATA};
	for (uint8_t kind : kinds) {
		for (int mode = 0; mode < 4; mode++) { // lose 1, lose 3, duplicate all, delay first
			Side a(kind * 10 + mode + 1, 0x0a000001), b(kind * 10 + mode + 900, 0x0a000002);
			a.connect(b, Side::config(1));
			b.connect(a, Side::config(2));
			Sim sim(&a, &b, kind * 10 + mode);
			int seen = 0;
			sim.net.special = [&](const Bytes &p) -> int64_t {
				if (p[0] != kind)
					return 0;
				seen++;
				switch (mode) {
				case 0: return seen == 1 ? -1 : 0;
				case 1: return seen <= 3 ? -1 : 0;
				case 2: return 0;
				default: return seen == 1 ? 1500 : 0; // overtaken by what follows
				}
			};
			if (mode == 2)
				sim.net.dup = 1; // every packet twice
			uint64_t up = 0;
			session_want_handshake(a.s, 0); // B follows when its traffic waits
			for (uint64_t now = 0; now < 20000; now++) {
				sim.step(now);
				if (!up && session_established(a.s) && session_established(b.s))
					up = now;
			}
			EXPECT_NE(up, 0u) << "kind " << (int)kind << " mode " << mode;
			EXPECT_TRUE(keys_agree(a, b)) << "kind " << (int)kind << " mode " << mode;
			EXPECT_LE(up, 6000u) << "kind " << (int)kind << " mode " << mode;
			EXPECT_EQ(a.drops[SRM_DROP_AUTH] + b.drops[SRM_DROP_AUTH], 0);
		}
	}
}

// The requirement: simultaneous open, 1000 times, random timing,
// loss, duplication and reordering: always exactly one agreed keypair.
TEST(SessionSim, SimultaneousOpenAlwaysAgrees)
{
	ASSERT_GE(sodium_init(), 0);
	int agreed = 0, crossed = 0;
	uint64_t total_handshakes = 0;
	// SRM_SIM_RUNS / SRM_SIM_SEED: soak with more seeds (default 1000 from 0).
	const char *env_runs = getenv("SRM_SIM_RUNS"), *env_seed = getenv("SRM_SIM_SEED");
	const uint64_t runs = env_runs ? strtoull(env_runs, nullptr, 10) : 1000;
	const uint64_t first = env_seed ? strtoull(env_seed, nullptr, 10) : 0;
	for (uint64_t run = first; run < first + runs; run++) {
		Rng pick(run * 7919 + 1);
		Side a(run * 2 + 11, 0x0a000001), b(run * 2 + 12, 0x0a000002);
		a.connect(b, Side::config(1));
		b.connect(a, Side::config(2));
		Sim sim(&a, &b, run);
		sim.net.loss = pick.uni() * 0.3;
		sim.net.dup = pick.uni() * 0.2;
		sim.net.late = pick.uni() * 0.1;
		sim.net.max_delay = pick.range(1, 400);
		uint64_t start[2] = {pick.range(0, 400), pick.range(0, 400)};
		if (run % 10 == 0)
			start[1] = start[0]; // exactly simultaneous
		const uint64_t impaired_until = 20000, end = 30000, check_from = 25000;
		for (uint64_t now = 0; now < end; now++) {
			if (now == impaired_until) {
				sim.net.loss = sim.net.dup = sim.net.late = 0;
				sim.net.max_delay = 50;
			}
			for (int i = 0; i < 2; i++)
				if (now == start[i])
					session_want_handshake(sim.side[i]->s, now);
			if (now < start[0] && now < start[1])
				continue;
			sim.step(now);
		}
		bool ok = session_established(a.s) && session_established(b.s) && keys_agree(a, b);
		// Every packet of the clean final seconds arrived and opened.
		for (int i = 0; i < 2; i++)
			for (auto &[pn, t] : sim.sent_at[i])
				if (t >= check_from && t < end - 100 && !sim.side[1 - i]->delivered.count(pn))
					ok = false;
		EXPECT_TRUE(ok) << "run " << run << " established " << session_established(a.s)
				<< session_established(b.s) << " agree " << keys_agree(a, b);
		EXPECT_LE(session_keypair_count(a.s), 3);
		EXPECT_LE(session_keypair_count(b.s), 3);
		agreed += ok;
		crossed += sim.inits_before_up[0] && sim.inits_before_up[1];
		total_handshakes += session_keypairs_created(a.s) + session_keypairs_created(b.s);
		if (::testing::Test::HasFailure())
			break;
	}
	EXPECT_EQ(agreed, (int)runs);
	// The runs really raced: both sides initiating before either was up.
	EXPECT_GT(crossed, (int)runs * 8 / 10);
	RecordProperty("crossed", crossed);
	RecordProperty("keypairs_per_run_x100", (int)(total_handshakes * 100 / (runs ? runs : 1)));
}

// Rekey in the middle of a transfer, by packet count and by time, under
// loss and reordering: every packet number sent while both ends were up
// is delivered at most once and the transport never sees a gap caused by
// a rekey (nothing sent is lost except to the network).
TEST(SessionSim, RekeyMidTransferNoInterruption)
{
	ASSERT_GE(sodium_init(), 0);
	for (uint64_t run = 0; run < 4; run++) {
		Side a(run * 2 + 501, 0x0a000001), b(run * 2 + 502, 0x0a000002);
		struct session_config ca = Side::config(1), cb = Side::config(2);
		// Odd runs rekey by count (both sides at once), even ones by time.
		if (run % 2)
			ca.rekey_after_packets = cb.rekey_after_packets = 500;
		a.connect(b, ca);
		b.connect(a, cb);
		Sim sim(&a, &b, run + 1000);
		sim.tick_ms = 2;
		sim.net.max_delay = 30; // reordering among neighbours
		sim.net.dup = 0.05;
		session_want_handshake(a.s, 0);
		const uint64_t end = 250000; // past REKEY_AFTER_MS and REJECT_AFTER_MS
		for (uint64_t now = 0; now < end; now++) {
			sim.step(now);
		}
		EXPECT_TRUE(keys_agree(a, b));
		EXPECT_GT(session_keypairs_created(a.s), run % 2 ? 100u : 2u);
		// After the first handshake, everything sent was delivered: a
		// rekey never made the transport lose or resend anything.
		for (int i = 0; i < 2; i++) {
			size_t lost = 0, total = 0;
			for (auto &[pn, t] : sim.sent_at[i]) {
				if (t < 1000 || t > end - 100)
					continue;
				total++;
				if (!sim.side[1 - i]->delivered.count(pn)) {
					if (lost < 3)
						ADD_FAILURE() << "lost pn " << pn << " sent at " << t;
					lost++;
				}
			}
			EXPECT_GT(total, 100000u);
			EXPECT_GT(sim.side[1 - i]->drops[SRM_DROP_REPLAY], 0); // duplicates caught
			EXPECT_EQ(lost, 0u) << "run " << run << " side " << i;
		}
		EXPECT_EQ(a.drops[SRM_DROP_AUTH] + b.drops[SRM_DROP_AUTH], 0);
		// Only duplicates are dropped: DATA as replays, handshake
		// messages as stale (no handshake waits for them).
		for (Side *x : {&a, &b})
			for (auto &[r, n] : x->drops)
				if (n && r != SRM_DROP_REPLAY && r != SRM_DROP_UNKNOWN_INDEX)
					ADD_FAILURE() << "drop reason " << r << " x" << n;
	}
}

} // namespace
