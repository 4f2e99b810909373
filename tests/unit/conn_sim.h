// conn_sim.h — a deterministic network simulator for two conns.
//
// Two struct conn talk over two one-way links in virtual time: each link
// has delay, jitter (which reorders), loss, duplication, a bottleneck
// rate with a bounded queue, and an MTU (larger datagrams vanish, as
// through an ICMP black hole).  The receiver side drops packet numbers it
// has already seen, as the crypto layer's replay window does.  Nothing
// sleeps: the loop jumps to the next delivery or conn deadline.
#ifndef CONN_SIM_H
#define CONN_SIM_H

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <queue>
#include <random>
#include <unordered_set>
#include <vector>

#include "conn.h"

struct ConnSimLink {
	uint64_t delay_us = 10000;
	uint64_t jitter_us = 0;     // uniform extra delay 0..jitter (reorders)
	double loss = 0;            // probability a datagram is dropped
	double dup = 0;             // probability it is delivered twice
	uint64_t rate_Bps = 0;      // bottleneck rate, 0: unlimited
	uint64_t queue_bytes = 1u << 20; // bottleneck queue (drop tail)
	uint32_t mtu = WIRE_MAX_UDP_PAYLOAD; // largest UDP payload carried
	bool down = false;          // drops everything
};

struct ConnSimPkt {
	uint64_t at, seq;
	int to;
	uint64_t pn;
	std::vector<uint8_t> data;
	bool operator>(const ConnSimPkt &o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

struct ConnSim {
	conn *c[2] = {nullptr, nullptr};
	ConnSimLink link[2];            // link[i]: from side i to side 1 - i
	std::mt19937_64 rng;
	uint64_t now = 1000000;
	uint64_t seq = 0;
	uint64_t busy_until[2] = {0, 0};
	std::priority_queue<ConnSimPkt, std::vector<ConnSimPkt>, std::greater<ConnSimPkt>> q;
	std::unordered_set<uint64_t> seen[2];
	uint64_t sent[2] = {0, 0}, dropped[2] = {0, 0}, malformed = 0;
	uint64_t max_pkt[2] = {0, 0};
	std::function<void()> on_spin; // debugging hook

	explicit ConnSim(uint64_t seed, conn_config a = defaults(0), conn_config b = defaults(1))
	    : rng(seed)
	{
		c[0] = conn_new(&a, now);
		c[1] = conn_new(&b, now);
	}
	~ConnSim()
	{
		conn_free(c[0]);
		conn_free(c[1]);
	}
	static conn_config defaults(int parity)
	{
		conn_config cfg = {};
		cfg.stream_id_parity = parity;
		cfg.cc = SRM_CC_BBR;
		cfg.compress = SRM_COMPRESS_AUTO;
		return cfg;
	}
	double uni() { return std::uniform_real_distribution<double>(0, 1)(rng); }

	void transmit(int from, uint64_t pn, const uint8_t *p, size_t len)
	{
		ConnSimLink &l = link[from];
		size_t udp = len + WIRE_DATA_OVERHEAD;
		sent[from]++;
		max_pkt[from] = std::max<uint64_t>(max_pkt[from], udp);
		if (l.down || udp > l.mtu || uni() < l.loss) {
			dropped[from]++;
			return;
		}
		uint64_t at = now;
		if (l.rate_Bps) {
			uint64_t start = std::max(now, busy_until[from]);
			uint64_t backlog = (start - now) * l.rate_Bps / 1000000;
			if (backlog > l.queue_bytes) {
				dropped[from]++;
				return;
			}
			busy_until[from] = start + udp * 1000000 / l.rate_Bps;
			at = busy_until[from];
		}
		int copies = uni() < l.dup ? 2 : 1;
		for (int k = 0; k < copies; k++) {
			uint64_t j = l.jitter_us ? rng() % (l.jitter_us + 1) : 0;
			q.push(ConnSimPkt{at + l.delay_us + j, seq++, 1 - from, pn,
				      std::vector<uint8_t>(p, p + len)});
		}
	}

	void pump(int side)
	{
		uint8_t buf[WIRE_MAX_UDP_PAYLOAD];
		for (int i = 0; i < 100000; i++) {
			uint64_t pn = 0;
			size_t n = conn_build_packet(c[side], now, buf, sizeof(buf), &pn);
			if (n == 0)
				return;
			transmit(side, pn, buf, n);
		}
		ADD_FAILURE() << "conn_build_packet never stops";
	}

	// Runs until done() or virtual time passes max_us.  app() is called
	// after every step to play the applications.  Returns done().
	bool run(const std::function<void()> &app, const std::function<bool()> &done,
		 uint64_t max_us)
	{
		uint64_t end = now + max_us;
		uint64_t last_now = now, same = 0;
		while (now <= end) {
			app();
			pump(0);
			pump(1);
			if (done())
				return true;
			uint64_t t = UINT64_MAX;
			if (!q.empty())
				t = q.top().at;
			for (int s = 0; s < 2; s++)
				t = std::min(t, conn_next_deadline(c[s], now));
			if (t > end) {
				now = end; // never run timers past the horizon
				return done();
			}
			if (t > now)
				now = t;
			if (now == last_now) {
				if (++same > 200000) {
					if (on_spin)
						on_spin();
					ADD_FAILURE() << "simulation spins at " << now;
					return false;
				}
			} else {
				same = 0;
				last_now = now;
			}
			while (!q.empty() && q.top().at <= now) {
				ConnSimPkt p = q.top();
				q.pop();
				if (!seen[p.to].insert(p.pn).second)
					continue; // the crypto layer's replay window
				if (conn_handle_packet(c[p.to], now, p.pn, p.data.data(),
						       p.data.size()) < 0)
					malformed++;
			}
			for (int s = 0; s < 2; s++)
				if (conn_next_deadline(c[s], now) <= now)
					conn_on_timeout(c[s], now);
		}
		return done();
	}
};

#endif
