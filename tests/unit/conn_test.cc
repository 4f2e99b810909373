// conn_test.cc — the per-peer transport end to end, over the deterministic
// network simulator (conn_sim.h): transfers under loss, reordering and
// duplication over many seeds, many streams, half-close, resets, refused
// and timed-out opens, a stalled reader with bounded memory, a vanished
// peer, and a path MTU that shrinks mid-transfer.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "conn_sim.h"
#include "ack.h"
#include "frame.h"
#include "stream.h"
extern "C" {
#include "noise.h" // NOISE_EARLY_BYTES
}

namespace {

std::vector<uint8_t> pattern(size_t n, uint64_t seed, bool text)
{
	std::vector<uint8_t> v(n);
	std::mt19937_64 r(seed);
	if (text) {
		static const char *words[] = {"alpha ", "beta ", "gamma ", "delta ", "stream ",
					      "packet ", "window ", "\n"};
		size_t i = 0;
		while (i < n) {
			const char *w = words[r() % 8];
			for (size_t k = 0; w[k] && i < n; k++)
				v[i++] = (uint8_t)w[k];
		}
	} else {
		for (auto &b : v)
			b = (uint8_t)r();
	}
	return v;
}

// One stream's worth of application on each side.
struct Pipe {
	std::vector<uint8_t> out;   // what the opener sends
	std::vector<uint8_t> back;  // what the acceptor sends back
	size_t out_off = 0, back_off = 0;
	std::vector<uint8_t> got, got_back;
	bool fin_a = false, fin_b = false; // FIN seen by acceptor / opener
	bool shut_a = false, shut_b = false;
	bool opened = false, accepted = false;
	int reset_a = -1, reset_b = -1;
};

// Drives any number of pipes: side 0 opens, side 1 accepts (port 80)
// or refuses (other ports).
struct Apps {
	ConnSim &sim;
	std::map<uint64_t, Pipe> pipes;     // by stream id (same on both sides)
	bool read_b = true;                 // the acceptor reads
	bool read_b_was = false;
	bool dead[2] = {false, false};
	size_t events = 0;
	// Streams with news: the app acts only on events, as the engine
	// does, so a missing READABLE/WRITABLE/FIN event stalls the test.
	std::set<uint64_t> dirty;

	explicit Apps(ConnSim &s) : sim(s) {}

	uint64_t open(std::vector<uint8_t> out, std::vector<uint8_t> back = {})
	{
		uint64_t id = 0;
		EXPECT_EQ(conn_stream_open(sim.c[0], 80, sim.now, &id), 0);
		Pipe &p = pipes[id];
		p.out = std::move(out);
		p.back = std::move(back);
		dirty.insert(id);
		return id;
	}

	static void pump_write(conn *c, uint64_t id, const std::vector<uint8_t> &d, size_t &off,
			       bool &shut)
	{
		while (off < d.size()) {
			ssize_t n = conn_stream_write(c, id, d.data() + off, d.size() - off);
			if (n <= 0)
				break;
			off += (size_t)n;
		}
		if (off == d.size() && !shut) {
			EXPECT_EQ(conn_stream_shutdown(c, id), 0);
			shut = true;
		}
	}

	static void pump_read(conn *c, uint64_t id, std::vector<uint8_t> &into)
	{
		uint8_t buf[16384];
		for (;;) {
			ssize_t n = conn_stream_read(c, id, buf, sizeof(buf));
			if (n <= 0)
				break;
			into.insert(into.end(), buf, buf + n);
		}
	}

	void operator()()
	{
		conn_event ev;
		for (int s = 0; s < 2; s++) {
			while (conn_poll_event(sim.c[s], &ev)) {
				events++;
				auto it = pipes.find(ev.stream);
				if (ev.type == CONN_EV_DEAD || ev.type == CONN_EV_CLOSED) {
					dead[s] = true;
					continue;
				}
				if (it == pipes.end())
					continue;
				Pipe &p = it->second;
				dirty.insert(ev.stream);
				switch (ev.type) {
				case CONN_EV_INCOMING:
					ASSERT_EQ(s, 1);
					if (ev.port == 80) {
						EXPECT_EQ(conn_stream_accept(sim.c[1], ev.stream), 0);
						p.accepted = true;
					} else {
						EXPECT_EQ(conn_stream_reset(sim.c[1], ev.stream,
									    RESET_REFUSED), 0);
					}
					break;
				case CONN_EV_OPENED:
					EXPECT_EQ(s, 0);
					p.opened = true;
					break;
				case CONN_EV_FIN:
					(s == 1 ? p.fin_a : p.fin_b) = true;
					break;
				case CONN_EV_RESET:
					(s == 1 ? p.reset_b : p.reset_a) = (int)ev.reason;
					break;
				default:
					break;
				}
			}
		}
		if (read_b && read_b_was) // the reader was stalled: wake it all
			for (auto &kv : pipes)
				dirty.insert(kv.first);
		read_b_was = !read_b;
		std::set<uint64_t> now_dirty;
		now_dirty.swap(dirty);
		for (uint64_t id : now_dirty) {
			Pipe &p = pipes[id];
			if (p.reset_a >= 0 || p.reset_b >= 0)
				continue;
			pump_write(sim.c[0], id, p.out, p.out_off, p.shut_a);
			if (p.accepted) {
				if (read_b)
					pump_read(sim.c[1], id, p.got);
				pump_write(sim.c[1], id, p.back, p.back_off, p.shut_b);
			}
			pump_read(sim.c[0], id, p.got_back);
		}
	}

	bool all_done() const
	{
		for (auto &kv : pipes) {
			const Pipe &p = kv.second;
			if (!(p.fin_a && p.fin_b) && p.reset_a < 0 && p.reset_b < 0)
				return false;
		}
		return true;
	}
};

void expect_pipes_ok(const Apps &a)
{
	for (auto &kv : a.pipes) {
		const Pipe &p = kv.second;
		ASSERT_EQ(p.got.size(), p.out.size()) << "stream " << kv.first;
		EXPECT_TRUE(p.got == p.out) << "stream " << kv.first;
		ASSERT_EQ(p.got_back.size(), p.back.size()) << "stream " << kv.first;
		EXPECT_TRUE(p.got_back == p.back) << "stream " << kv.first;
		EXPECT_TRUE(p.fin_a && p.fin_b);
	}
}

TEST(Conn, FirstPacketIsPingAndAnswerIsHandled)
{
	ConnSim sim(1);
	uint8_t buf[WIRE_MAX_UDP_PAYLOAD];
	uint64_t pn = 99;
	size_t n = conn_build_packet(sim.c[0], sim.now, buf, sizeof(buf), &pn);
	ASSERT_GT(n, 0u);
	EXPECT_EQ(pn, 0u);
	EXPECT_EQ(buf[n - 1], FRAME_PING);
	EXPECT_EQ(conn_handle_packet(sim.c[1], sim.now, pn, buf, n), 0);
	// Nothing else needs sending until the ACK is due.
	EXPECT_EQ(conn_build_packet(sim.c[0], sim.now, buf, sizeof(buf), &pn), 0u);
	Apps apps(sim);
	EXPECT_FALSE(sim.run(std::ref(apps), [] { return false; }, 2000000));
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[0], &st);
	EXPECT_GT(st.srtt_us, 0u);
	EXPECT_EQ(sim.malformed, 0u);
}

TEST(Conn, MalformedPacketIsRejectedWhole)
{
	ConnSim sim(2);
	uint8_t p[] = {FRAME_PING, FRAME_STREAM, 0x01}; // truncated STREAM
	EXPECT_EQ(conn_handle_packet(sim.c[1], sim.now, 0, p, sizeof(p)), SRM_ERR_INVALID);
	uint8_t empty[1];
	EXPECT_EQ(conn_handle_packet(sim.c[1], sim.now, 1, empty, 0), SRM_ERR_INVALID);
	uint8_t unknown[] = {0x3f};
	EXPECT_EQ(conn_handle_packet(sim.c[1], sim.now, 2, unknown, 1), SRM_ERR_INVALID);
	// STREAM for a stream the peer never opened: a protocol violation.
	uint8_t data[] = {FRAME_STREAM, 0x00, 0x00, 0x01, 'x'};
	EXPECT_EQ(conn_handle_packet(sim.c[1], sim.now, 3, data, sizeof(data)), SRM_ERR_INVALID);
}

// Valid-looking frames with random fields, and raw junk: the conn must
// reject or absorb them without crashing or growing without bound.
TEST(Conn, RandomFramesNeverCrash)
{
	ConnSim sim(20);
	std::mt19937_64 r(77);
	uint64_t id = 0;
	ASSERT_EQ(conn_stream_open(sim.c[1], 80, sim.now, &id), 0);
	int accepted = 0;
	for (int i = 0; i < 20000; i++) {
		uint8_t p[WIRE_MAX_UDP_PAYLOAD];
		size_t n = 0;
		int frames = 1 + (int)(r() % 4);
		for (int k = 0; k < frames && n < 1200; k++) {
			uint64_t sid = r() % 4 == 0 ? r() : r() % 16;
			uint64_t v = r() % 3 == 0 ? r() & VARINT_MAX : r() % 300000;
			uint8_t data[64];
			for (auto &b : data)
				b = (uint8_t)r();
			size_t cap = sizeof(p) - n, w = 0;
			switch (r() % 10) {
			case 0: w = frame_put_open(p + n, cap, sid, (uint16_t)r()); break;
			case 1: w = frame_put_accept(p + n, cap, sid); break;
			case 2: w = frame_put_reset(p + n, cap, sid, r() % 6, v); break;
			case 3: w = frame_put_max_data(p + n, cap, v); break;
			case 4: w = frame_put_max_stream_data(p + n, cap, sid, v); break;
			case 5: w = frame_put_path(p + n, cap, FRAME_PATH_CHALLENGE, data); break;
			case 6: {
				size_t len = r() % 64;
				w = frame_put_stream_header(p + n, cap, sid, v, len, (int)(r() % 2));
				if (w) {
					memcpy(p + n + w, data, len);
					w += len;
				}
				break;
			}
			case 7: w = frame_put_ping(p + n, cap); break;
			case 8: { // an ACK with random ranges
				ack_ranges a = {};
				a.count = 1;
				a.largest = a.r[0].hi = r() % 1000;
				a.r[0].lo = a.r[0].hi - r() % (a.r[0].hi + 1);
				w = ack_frame_encode(&a, p + n, cap);
				break;
			}
			default: // junk
				w = std::min<size_t>(cap, 1 + r() % 20);
				for (size_t j = 0; j < w; j++)
					p[n + j] = (uint8_t)r();
				break;
			}
			n += w;
		}
		if (n == 0)
			continue;
		int side = (int)(r() % 2);
		accepted += conn_handle_packet(sim.c[side], sim.now, (uint64_t)i, p, n) == 0;
		sim.now += 100;
		uint8_t out[WIRE_MAX_UDP_PAYLOAD];
		uint64_t pn;
		for (int k = 0; k < 10 && conn_build_packet(sim.c[side], sim.now, out, sizeof(out), &pn); k++) {
		}
		conn_event ev;
		while (conn_poll_event(sim.c[side], &ev)) {
			if (ev.type == CONN_EV_INCOMING)
				conn_stream_accept(sim.c[side], ev.stream);
			if (ev.type == CONN_EV_READABLE) {
				uint8_t b[4096];
				while (conn_stream_read(sim.c[side], ev.stream, b, sizeof(b)) > 0) {
				}
			}
		}
		if (conn_next_deadline(sim.c[side], sim.now) <= sim.now)
			conn_on_timeout(sim.c[side], sim.now);
	}
	EXPECT_GT(accepted, 1000); // not everything was junk
	for (int s = 0; s < 2; s++)
		EXPECT_LT(conn_memory(sim.c[s]), 256u << 20);
}

TEST(Conn, TransferClean)
{
	ConnSim sim(3);
	Apps apps(sim);
	apps.open(pattern(4 << 20, 1, false), pattern(100000, 2, false));
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 120000000));
	expect_pipes_ok(apps);
	EXPECT_EQ(sim.malformed, 0u);
}

struct LossCase {
	double loss;
	int seeds;
};

class ConnLossy : public ::testing::TestWithParam<LossCase> {};

TEST_P(ConnLossy, TransfersExactlyOverManySeeds)
{
	LossCase lc = GetParam();
	uint64_t dropped = 0, lost = 0;
	for (int seed = 0; seed < lc.seeds; seed++) {
		ConnSim sim(1000 + (uint64_t)seed * 7919 + (uint64_t)(lc.loss * 1000));
		for (auto &l : sim.link) {
			l.delay_us = 5000 + (uint64_t)(sim.rng() % 20000);
			l.jitter_us = 3000;
			l.loss = lc.loss;
			l.dup = 0.02;
			l.rate_Bps = 20000000;
		}
		Apps apps(sim);
		size_t n = (seed % 4 == 0) ? (1u << 20) : 64 * 1024 + (size_t)(sim.rng() % 200000);
		apps.open(pattern(n, (uint64_t)seed, seed % 2 == 0), pattern(5000, 9, false));
		ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 300000000))
			<< "seed " << seed << " loss " << lc.loss;
		expect_pipes_ok(apps);
		ASSERT_EQ(sim.malformed, 0u);
		struct srm_peer_stats st = {};
		conn_get_stats(sim.c[0], &st);
		dropped += sim.dropped[0] + sim.dropped[1];
		lost += st.packets_lost;
		if (HasFailure())
			return;
	}
	if (lc.loss > 0) { // the loss really happened and was recovered from
		EXPECT_GT(dropped, 0u);
		EXPECT_GT(lost, 0u);
	}
}

INSTANTIATE_TEST_SUITE_P(Loss, ConnLossy,
			 ::testing::Values(LossCase{0.0, 50}, LossCase{0.02, 50},
					   LossCase{0.05, 50}, LossCase{0.10, 50}));

TEST(Conn, ThousandConcurrentStreams)
{
	conn_config a = ConnSim::defaults(0), b = ConnSim::defaults(1);
	a.max_streams = b.max_streams = 2000;
	ConnSim sim(5, a, b);
	for (auto &l : sim.link) {
		l.loss = 0.02;
		l.jitter_us = 2000;
		l.rate_Bps = 50000000;
	}
	Apps apps(sim);
	for (int i = 0; i < 1000; i++)
		apps.open(pattern(3000 + (size_t)i * 7, (uint64_t)i, i % 3 == 0),
			  pattern(500, (uint64_t)i + 5000, false));
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 300000000));
	expect_pipes_ok(apps);
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[1], &st);
	EXPECT_EQ(st.streams, 1000u); // not released yet
	// Finished but not released: idle streams cost little once the
	// periodic trim gave drained rings back.
	sim.run(std::ref(apps), [] { return false; }, 3000000);
	EXPECT_LE(conn_memory(sim.c[0]) / 1000, 16u << 10);
	EXPECT_LE(conn_memory(sim.c[1]) / 1000, 16u << 10);
	for (auto &kv : apps.pipes) {
		conn_stream_release(sim.c[0], kv.first);
		conn_stream_release(sim.c[1], kv.first);
	}
	sim.run(std::ref(apps), [] { return false; }, 2000000);
	conn_get_stats(sim.c[0], &st);
	EXPECT_EQ(st.streams, 0u);
	conn_get_stats(sim.c[1], &st);
	EXPECT_EQ(st.streams, 0u);
}

TEST(Conn, HalfCloseBothWays)
{
	ConnSim sim(6);
	Apps apps(sim);
	// The opener sends nothing and closes at once; the acceptor keeps
	// sending long after, and the opener still receives all of it.
	uint64_t id = apps.open({}, pattern(300000, 3, false));
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].fin_a; }, 10000000));
	EXPECT_LT(apps.pipes[id].got_back.size(), 300000u);
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 60000000));
	expect_pipes_ok(apps);
	// And the other way round: the acceptor closes first.
	ConnSim sim2(7);
	Apps apps2(sim2);
	uint64_t id2 = apps2.open(pattern(300000, 4, true), {});
	ASSERT_TRUE(sim2.run(std::ref(apps2), [&] { return apps2.pipes[id2].fin_b; }, 10000000));
	ASSERT_TRUE(sim2.run(std::ref(apps2), [&] { return apps2.all_done(); }, 60000000));
	expect_pipes_ok(apps2);
}

TEST(Conn, ResetCarriesReason)
{
	ConnSim sim(8);
	Apps apps(sim);
	uint64_t id = apps.open(pattern(10 << 20, 5, false), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].got.size() > 100000; },
			    10000000));
	EXPECT_EQ(conn_stream_reset(sim.c[0], id, RESET_ABORTED), 0);
	apps.pipes[id].reset_a = RESET_ABORTED;
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].reset_b >= 0; }, 5000000));
	EXPECT_EQ(apps.pipes[id].reset_b, RESET_ABORTED);
	char b[10];
	EXPECT_EQ(conn_stream_read(sim.c[1], id, b, sizeof(b)), SRM_ERR_RESET);
	EXPECT_EQ(conn_stream_write(sim.c[0], id, b, sizeof(b)), SRM_ERR_CLOSED);
	// Both sides free the stream once released and the resets crossed.
	conn_stream_release(sim.c[0], id);
	conn_stream_release(sim.c[1], id);
	sim.run(std::ref(apps), [] { return false; }, 3000000);
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[0], &st);
	EXPECT_EQ(st.streams, 0u);
	conn_get_stats(sim.c[1], &st);
	EXPECT_EQ(st.streams, 0u);
	// The session credit survived the reset: a new stream still moves data.
	uint64_t id2 = apps.open(pattern(3 << 20, 6, false), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id2].fin_a; }, 60000000));
	EXPECT_TRUE(apps.pipes[id2].got == apps.pipes[id2].out);
}

TEST(Conn, RefusedOpen)
{
	ConnSim sim(9);
	uint64_t id = 0;
	ASSERT_EQ(conn_stream_open(sim.c[0], 81, sim.now, &id), 0);
	Apps apps(sim);
	apps.pipes[id];
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].reset_a >= 0; }, 5000000));
	EXPECT_EQ(apps.pipes[id].reset_a, RESET_REFUSED);
	conn_stream_release(sim.c[0], id);
	sim.run(std::ref(apps), [] { return false; }, 2000000);
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[0], &st);
	EXPECT_EQ(st.streams, 0u);
	conn_get_stats(sim.c[1], &st);
	EXPECT_EQ(st.streams, 0u);
}

TEST(Conn, LateDuplicateOpenIsIgnored)
{
	ConnSim sim(21);
	Apps apps(sim);
	uint64_t id = apps.open(pattern(1000, 1, false), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 5000000));
	conn_stream_release(sim.c[0], id);
	conn_stream_release(sim.c[1], id);
	sim.run(std::ref(apps), [] { return false; }, 2000000);
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[1], &st);
	ASSERT_EQ(st.streams, 0u);
	// The network delivers a stale copy of the OPEN (new packet number),
	// and OPENs of later streams arrive out of order.
	uint8_t p[16];
	size_t n = frame_put_open(p, sizeof(p), id, 80);
	size_t before = apps.events;
	ASSERT_EQ(conn_handle_packet(sim.c[1], sim.now, 1u << 30, p, n), 0);
	conn_event ev;
	while (conn_poll_event(sim.c[1], &ev))
		EXPECT_NE(ev.type, CONN_EV_INCOMING);
	n = frame_put_open(p, sizeof(p), id + 4, 80);
	ASSERT_EQ(conn_handle_packet(sim.c[1], sim.now, (1u << 30) + 1, p, n), 0);
	n = frame_put_open(p, sizeof(p), id + 2, 80);
	ASSERT_EQ(conn_handle_packet(sim.c[1], sim.now, (1u << 30) + 2, p, n), 0);
	int incoming = 0;
	while (conn_poll_event(sim.c[1], &ev))
		incoming += ev.type == CONN_EV_INCOMING;
	EXPECT_EQ(incoming, 2); // both later ids, though reordered
	EXPECT_EQ(apps.events, before);
}

// The handshake carries the first OPEN and its answer (session.h, early
// frames): the same frames, applied without a packet, idempotently.
TEST(Conn, EarlyOpenIsAnsweredWithoutARoundTrip)
{
	ConnSim sim(23);
	conn_event ev;
	uint64_t id = 0, id2 = 0, opened = 0;
	uint8_t init[NOISE_EARLY_BYTES] = {}, resp[NOISE_EARLY_BYTES] = {};
	ASSERT_EQ(conn_early_open(sim.c[0], init, sizeof(init)), 0u); // nothing opening yet
	ASSERT_EQ(conn_stream_open(sim.c[0], 80, sim.now, &id), 0);
	ASSERT_GT(conn_early_open(sim.c[0], init, sizeof(init)), 0u);

	// The responder learns of the stream and answers; a second copy of the
	// INIT (its RESP was lost) changes nothing and gets the same answer.
	int incoming = 0;
	for (int copy = 0; copy < 2; copy++) {
		ASSERT_EQ(conn_receive_early(sim.c[1], init, sizeof(init), sim.now, &opened), 0);
		EXPECT_EQ(opened, id);
		while (conn_poll_event(sim.c[1], &ev))
			incoming += ev.type == CONN_EV_INCOMING && ev.stream == id;
		if (copy == 0) {
			ASSERT_EQ(conn_stream_accept(sim.c[1], id), 0);
		}
		memset(resp, 0, sizeof(resp));
		ASSERT_GT(conn_early_answer(sim.c[1], id, resp, sizeof(resp)), 0u);
		EXPECT_EQ(resp[0], FRAME_ACCEPT);
	}
	EXPECT_EQ(incoming, 1);
	ASSERT_EQ(conn_receive_early(sim.c[0], resp, sizeof(resp), sim.now, &opened), 0);
	EXPECT_EQ(opened, UINT64_MAX);
	int opened_events = 0;
	while (conn_poll_event(sim.c[0], &ev))
		opened_events += ev.type == CONN_EV_OPENED && ev.stream == id;
	EXPECT_EQ(opened_events, 1);
	EXPECT_EQ(conn_early_open(sim.c[0], init, sizeof(init)), 0u); // answered: not repeated

	// A refused early OPEN is answered with the RESET.
	ASSERT_EQ(conn_stream_open(sim.c[0], 81, sim.now, &id2), 0);
	memset(init, 0, sizeof(init));
	ASSERT_GT(conn_early_open(sim.c[0], init, sizeof(init)), 0u);
	ASSERT_EQ(conn_receive_early(sim.c[1], init, sizeof(init), sim.now, &opened), 0);
	ASSERT_EQ(opened, id2);
	while (conn_poll_event(sim.c[1], &ev))
		;
	ASSERT_EQ(conn_stream_reset(sim.c[1], id2, RESET_REFUSED), 0);
	memset(resp, 0, sizeof(resp));
	ASSERT_GT(conn_early_answer(sim.c[1], id2, resp, sizeof(resp)), 0u);
	EXPECT_EQ(resp[0], FRAME_RESET);
	ASSERT_EQ(conn_receive_early(sim.c[0], resp, sizeof(resp), sim.now, &opened), 0);
	uint64_t reason = UINT64_MAX;
	while (conn_poll_event(sim.c[0], &ev))
		if (ev.type == CONN_EV_RESET && ev.stream == id2)
			reason = ev.reason;
	EXPECT_EQ(reason, (uint64_t)RESET_REFUSED);

	// Only OPEN, ACCEPT and RESET belong there.
	uint8_t bad[NOISE_EARLY_BYTES] = {};
	ASSERT_GT(frame_put_stream_header(bad, sizeof(bad), id, 0, 1, 0), 0u);
	EXPECT_EQ(conn_receive_early(sim.c[1], bad, sizeof(bad), sim.now, &opened), SRM_ERR_INVALID);

	// The early-opened stream carries data both ways afterwards.
	ASSERT_EQ(conn_stream_write(sim.c[0], id, "ping", 4), 4);
	ASSERT_EQ(conn_stream_write(sim.c[1], id, "pong", 4), 4);
	char got[2][8] = {};
	size_t have[2] = { 0, 0 };
	auto done = [&] {
		for (int s = 0; s < 2; s++) {
			ssize_t n = conn_stream_read(sim.c[s], id, got[s] + have[s], sizeof(got[s]) - 1 - have[s]);
			if (n > 0)
				have[s] += (size_t)n;
			while (conn_poll_event(sim.c[s], &ev))
				;
		}
		return have[0] == 4 && have[1] == 4;
	};
	ASSERT_TRUE(sim.run([] {}, done, 5000000));
	EXPECT_STREQ(got[0], "pong");
	EXPECT_STREQ(got[1], "ping");
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[0], &st);
	EXPECT_EQ(st.early_opens, 1u);
	conn_get_stats(sim.c[1], &st);
	EXPECT_EQ(st.early_opens, 2u); // both OPENs arrived early
}

TEST(Conn, UnansweredOpenTimesOut)
{
	conn_config a = ConnSim::defaults(0);
	a.open_timeout_ms = 3000;
	ConnSim sim(10, a);
	uint64_t id = 0;
	ASSERT_EQ(conn_stream_open(sim.c[0], 80, sim.now, &id), 0);
	uint64_t t0 = sim.now;
	int reason = -1;
	bool incoming = false, reset_seen_b = false;
	auto app = [&] {
		conn_event ev;
		while (conn_poll_event(sim.c[0], &ev))
			if (ev.type == CONN_EV_RESET)
				reason = (int)ev.reason;
		while (conn_poll_event(sim.c[1], &ev)) { // never answers
			incoming |= ev.type == CONN_EV_INCOMING;
			reset_seen_b |= ev.type == CONN_EV_RESET;
		}
	};
	ASSERT_TRUE(sim.run(app, [&] { return reason >= 0; }, 10000000));
	EXPECT_EQ(reason, RESET_TIMEOUT);
	EXPECT_GE(sim.now - t0, 3000000u);
	EXPECT_LE(sim.now - t0, 3100000u);
	EXPECT_TRUE(incoming);
	ASSERT_TRUE(sim.run(app, [&] { return reset_seen_b; }, 2000000));
}

TEST(Conn, DataBeforeAcceptIsNotSent)
{
	ConnSim sim(11);
	uint64_t id = 0;
	ASSERT_EQ(conn_stream_open(sim.c[0], 80, sim.now, &id), 0);
	auto data = pattern(5000, 1, false);
	ASSERT_EQ(conn_stream_write(sim.c[0], id, data.data(), data.size()), 5000);
	// The peer holds the OPEN unanswered: no STREAM frame may arrive.
	bool got_incoming = false;
	auto app = [&] {
		conn_event ev;
		while (conn_poll_event(sim.c[1], &ev)) {
			got_incoming |= ev.type == CONN_EV_INCOMING;
			EXPECT_NE(ev.type, CONN_EV_READABLE);
		}
		while (conn_poll_event(sim.c[0], &ev)) {
		}
	};
	sim.run(app, [] { return false; }, 1000000);
	EXPECT_TRUE(got_incoming);
	uint64_t rx = 1;
	ASSERT_EQ(conn_stream_buffered(sim.c[1], id, nullptr, &rx), 0);
	EXPECT_EQ(rx, 0u);
	ASSERT_EQ(conn_stream_accept(sim.c[1], id), 0);
	std::vector<uint8_t> got;
	auto app2 = [&] {
		conn_event ev;
		while (conn_poll_event(sim.c[0], &ev)) {
		}
		while (conn_poll_event(sim.c[1], &ev)) {
		}
		Apps::pump_read(sim.c[1], id, got);
	};
	ASSERT_TRUE(sim.run(app2, [&] { return got.size() == data.size(); }, 2000000));
	EXPECT_TRUE(got == data);
}

TEST(Conn, StalledReaderBoundsMemoryThenRecovers)
{
	ConnSim sim(12);
	for (auto &l : sim.link) {
		l.delay_us = 20000;
		l.rate_Bps = 100000000;
		l.loss = 0.01;
	}
	Apps apps(sim);
	apps.read_b = false;
	uint64_t id = apps.open(pattern(48 << 20, 7, false), {});
	uint64_t max_mem[2] = {0, 0}, max_tx = 0, max_rx = 0;
	auto app = [&] {
		apps();
		for (int s = 0; s < 2; s++)
			max_mem[s] = std::max<uint64_t>(max_mem[s], conn_memory(sim.c[s]));
		uint64_t tx = 0, rx = 0;
		conn_stream_buffered(sim.c[0], id, &tx, nullptr);
		conn_stream_buffered(sim.c[1], id, nullptr, &rx);
		max_tx = std::max(max_tx, tx);
		max_rx = std::max(max_rx, rx);
	};
	// 30 s of a reader that never reads.
	sim.run(app, [] { return false; }, 30000000);
	EXPECT_FALSE(apps.pipes[id].fin_a);
	EXPECT_LE(max_rx, (uint64_t)STREAM_WINDOW_INITIAL);
	EXPECT_LE(max_tx, (uint64_t)STREAM_WINDOW_MAX);
	EXPECT_LT(max_mem[0], 40u << 20);
	EXPECT_LT(max_mem[1], 4u << 20);
	EXPECT_FALSE(apps.dead[0] || apps.dead[1]); // keepalives held it
	// The reader wakes up: everything arrives.
	apps.read_b = true;
	ASSERT_TRUE(sim.run(app, [&] { return apps.all_done(); }, 120000000));
	expect_pipes_ok(apps);
	EXPECT_LE(max_rx, (uint64_t)STREAM_WINDOW_MAX);
}

TEST(Conn, StalledStreamDoesNotBlockOthers)
{
	ConnSim sim(19);
	for (auto &l : sim.link)
		l.rate_Bps = 50000000;
	Apps apps(sim);
	// Eight streams whose reader never reads, then one that must still flow.
	std::vector<uint64_t> stalled;
	for (int i = 0; i < 8; i++)
		stalled.push_back(apps.open(pattern(8 << 20, (uint64_t)i, false), {}));
	apps.read_b = false;
	sim.run(std::ref(apps), [] { return false; }, 3000000);
	uint64_t rx = 0;
	ASSERT_EQ(conn_stream_buffered(sim.c[1], stalled[0], nullptr, &rx), 0);
	EXPECT_EQ(rx, (uint64_t)STREAM_WINDOW_INITIAL); // the window is full, no more
	uint64_t id = 0;
	ASSERT_EQ(conn_stream_open(sim.c[0], 80, sim.now, &id), 0);
	auto data = pattern(4 << 20, 99, false);
	std::vector<uint8_t> got;
	size_t off = 0;
	bool shut = false, fin = false;
	auto app = [&] {
		conn_event ev;
		while (conn_poll_event(sim.c[1], &ev)) {
			if (ev.type == CONN_EV_INCOMING)
				conn_stream_accept(sim.c[1], ev.stream);
			if (ev.stream == id && ev.type == CONN_EV_FIN)
				fin = true;
		}
		while (conn_poll_event(sim.c[0], &ev)) {
		}
		Apps::pump_write(sim.c[0], id, data, off, shut);
		Apps::pump_read(sim.c[1], id, got);
	};
	ASSERT_TRUE(sim.run(app, [&] { return fin; }, 30000000));
	EXPECT_TRUE(got == data);
}

TEST(Conn, VanishedPeerIsDeadWithinTimeout)
{
	conn_config a = ConnSim::defaults(0);
	a.idle_timeout_ms = 5000;
	ConnSim sim(13, a);
	Apps apps(sim);
	uint64_t id = apps.open(pattern(50 << 20, 8, false), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].got.size() > 200000; },
			    10000000));
	sim.link[0].down = sim.link[1].down = true;
	uint64_t t0 = sim.now;
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.dead[0]; }, 20000000));
	EXPECT_LE(sim.now - t0, 5000000u + 100000u);
	EXPECT_EQ(apps.pipes[id].reset_a, RESET_TIMEOUT);
	EXPECT_TRUE(conn_is_dead(sim.c[0]));
	uint64_t nid;
	EXPECT_EQ(conn_stream_open(sim.c[0], 80, sim.now, &nid), SRM_ERR_CLOSED);
	EXPECT_EQ(conn_next_deadline(sim.c[0], sim.now), UINT64_MAX);
}

TEST(Conn, KeepalivesHoldAnIdleSession)
{
	ConnSim sim(14);
	Apps apps(sim);
	sim.run(std::ref(apps), [] { return false; }, 300000000); // 5 idle minutes
	EXPECT_FALSE(apps.dead[0] || apps.dead[1]);
	// About one PING per keepalive interval each way, not a flood.
	EXPECT_GT(sim.sent[0], 300u / 15);
	EXPECT_LT(sim.sent[0], 3 * 300u / 15 + 10);
}

TEST(Conn, PathMtuShrinksMidTransfer)
{
	ConnSim sim(15);
	for (auto &l : sim.link)
		l.rate_Bps = 50000000;
	Apps apps(sim);
	uint64_t id = apps.open(pattern(8 << 20, 9, false), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].got.size() > (2u << 20); },
			    60000000));
	EXPECT_GT(conn_mtu_payload(sim.c[0]), 1400u); // probing found the 1472 path
	sim.link[0].mtu = sim.link[1].mtu = 1280 - 48; // an IPv6 minimum link
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 120000000));
	expect_pipes_ok(apps);
	EXPECT_LE(conn_mtu_payload(sim.c[0]) + WIRE_DATA_OVERHEAD, 1232u);
}

TEST(Conn, CompressibleStreamShrinksOnTheWire)
{
	ConnSim sim(16);
	Apps apps(sim);
	apps.open(pattern(4 << 20, 10, true), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.all_done(); }, 60000000));
	expect_pipes_ok(apps);
	struct srm_peer_stats st = {};
	conn_get_stats(sim.c[0], &st);
	EXPECT_EQ(st.stream_bytes_sent, 4u << 20);
	EXPECT_LT(st.bytes_sent, (4u << 20) / 3);
}

TEST(Conn, CloseTellsThePeer)
{
	ConnSim sim(17);
	Apps apps(sim);
	uint64_t id = apps.open(pattern(1 << 20, 11, false), {});
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.pipes[id].got.size() > 1000; },
			    10000000));
	conn_close(sim.c[0], 7);
	ASSERT_TRUE(sim.run(std::ref(apps), [&] { return apps.dead[1]; }, 5000000));
	EXPECT_EQ(apps.pipes[id].reset_b, RESET_SHUTDOWN);
}

TEST(Conn, PathChallengeIsAnswered)
{
	ConnSim sim(18);
	const uint8_t d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	conn_path_challenge(sim.c[0], d);
	bool got = false;
	auto app = [&] {
		conn_event ev;
		while (conn_poll_event(sim.c[0], &ev))
			if (ev.type == CONN_EV_PATH_RESPONSE) {
				got = true;
				EXPECT_EQ(memcmp(ev.path_data, d, 8), 0);
			}
		while (conn_poll_event(sim.c[1], &ev)) {
		}
	};
	ASSERT_TRUE(sim.run(app, [&] { return got; }, 1000000));
}

} // namespace
