// recovery_sim.h — a deterministic one-flow network simulator driving the
// real ack.c / recovery.c / cc.c / pmtu.c code: a bulk sender, a bottleneck
// link (rate, drop-tail buffer, one-way delay, seeded random loss, a path
// MTU), and a receiver that acknowledges with ack_tracker.  Time is
// simulated (microseconds); nothing here reads a clock.
#ifndef RECOVERY_SIM_H
#define RECOVERY_SIM_H

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <queue>
#include <random>
#include <vector>

extern "C" {
#include "ack.h"
#include "pmtu.h"
#include "recovery.h"
#include "wire.h"
}

// In a namespace: other tests may define their own Sim, and two classes
// of one name in one binary would silently break the ODR.
namespace rsim {

struct SimConfig {
	enum srm_cc cc = SRM_CC_BBR;
	uint64_t rate_Bps = 12500000;   // 100 Mbit/s bottleneck
	uint64_t delay_us = 10000;      // one way; RTT = 2x
	uint64_t buffer_bytes = 250000; // drop-tail queue at the bottleneck
	double loss = 0.0;              // random loss, data direction
	double ack_loss = 0.0;          // random loss, ACK direction
	double reorder = 0.0;           // fraction of packets held back ...
	uint64_t reorder_us = 5000;     // ... by this much extra delay
	double duplicate = 0.0;         // fraction of packets delivered twice
	uint32_t seed = 1;
	uint32_t mtu = WIRE_BASE_UDP_PAYLOAD;
	bool pmtu = false;              // run the PMTU search
	uint32_t pmtu_max = WIRE_MAX_UDP_PAYLOAD;
	uint32_t path_mtu = 1u << 30;   // larger datagrams vanish silently
};

class Sim {
public:
	static const uint32_t PING_BYTES = 50;
	explicit Sim(const SimConfig &c) : cfg(c), rng(c.seed)
	{
		pmtu_init(&pm, c.pmtu ? c.pmtu_max : c.mtu, 0);
		uint32_t mtu = c.pmtu ? pmtu_current(&pm) : c.mtu;
		if (recovery_init(&r, c.cc, mtu, 0) != 0)
			abort();
		ack_tracker_init(&t);
	}
	~Sim() { recovery_free(&r); }
	Sim(const Sim &) = delete;
	Sim &operator=(const Sim &) = delete;

	SimConfig cfg;
	std::mt19937_64 rng;
	recovery r;
	ack_tracker t;
	pmtu pm;
	uint64_t now = 0;
	uint64_t next_pn = 0;
	uint64_t acked_bytes = 0, lost_packets = 0, sent_packets = 0;
	uint64_t max_cwnd = 0;
	uint64_t probes_acked = 0, probes_lost = 0;
	uint64_t dropped = 0; // by the link: random loss, MTU or queue
	bool limit_ok = true; // stop sending (test the idle tail)
	uint64_t send_budget = UINT64_MAX; // packets the app still has

	void set_path_mtu(uint32_t m) { cfg.path_mtu = m; }

	// Run until simulated time `until`.
	void run_until(uint64_t until)
	{
		for (int guard = 0; guard < 50000000 && now < until; guard++) {
			send_what_we_can();
			uint64_t next = next_event();
			if (next > until) {
				now = until;
				break;
			}
			if (next > now)
				now = next;
			step();
		}
	}

	double goodput_fraction(uint64_t from_bytes, uint64_t from_us) const
	{
		double secs = double(now - from_us) / 1e6;
		return double(acked_bytes - from_bytes) / secs / double(cfg.rate_Bps);
	}

	uint32_t mtu() const { return cfg.pmtu ? pmtu_current(&pm) : cfg.mtu; }

private:
	struct Pkt {
		uint64_t arrive;
		uint64_t pn;
		uint32_t size;
		bool eliciting;
		bool operator>(const Pkt &o) const
		{
			return arrive != o.arrive ? arrive > o.arrive : pn > o.pn;
		}
	};
	struct AckMsg {
		uint64_t arrive;
		std::vector<uint8_t> frame;
	};
	std::priority_queue<Pkt, std::vector<Pkt>, std::greater<Pkt>> fwd;
	std::deque<AckMsg> rev;
	uint64_t link_free = 0;

	bool chance(double p) { return p > 0 && double(rng() % 1000000) < p * 1e6; }

	void transmit(uint32_t size, unsigned flags)
	{
		uint64_t pn = next_pn++;
		recovery_on_sent(&r, pn, size, flags, (uint32_t)pn, now);
		sent_packets++;
		if (chance(cfg.loss) || size > cfg.path_mtu) {
			dropped++;
			return;
		}
		uint64_t backlog = link_free > now ? (link_free - now) * cfg.rate_Bps / 1000000 : 0;
		if (backlog + size > cfg.buffer_bytes) {
			dropped++;
			return; // tail drop
		}
		uint64_t depart = (link_free > now ? link_free : now) +
				  (uint64_t)size * 1000000 / cfg.rate_Bps;
		link_free = depart;
		Pkt p = {depart + cfg.delay_us, pn, size, (flags & RECOVERY_ACK_ELICITING) != 0};
		if (chance(cfg.reorder))
			p.arrive += cfg.reorder_us;
		fwd.push(p);
		if (chance(cfg.duplicate)) {
			p.arrive += 1000;
			fwd.push(p);
		}
	}

	void send_what_we_can()
	{
		if (!limit_ok)
			return;
		// PTO probes: new data in a base-size packet (so they pass a
		// path whose MTU shrank), or a PING when there is none.
		while (r.probes_due > 0) {
			bool data = send_budget > 0;
			transmit(data ? std::min<uint32_t>(mtu(), WIRE_BASE_UDP_PAYLOAD) : PING_BYTES,
				 RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT);
			if (data)
				send_budget--;
		}
		for (int i = 0; i < 100000 && send_budget > 0; i++) {
			uint32_t probe = cfg.pmtu ? pmtu_probe_size_due(&pm, now) : 0;
			if (probe) {
				// A due probe goes first, or a full window of
				// smaller packets would starve it forever.
				if (!recovery_can_send(&r, probe, now))
					break;
				pmtu_on_probe_sent(&pm, probe, now);
				transmit(probe, RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT |
							RECOVERY_PMTU_PROBE);
				continue;
			}
			uint32_t size = mtu();
			if (!recovery_can_send(&r, size, now))
				break;
			transmit(size, RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT);
			send_budget--;
		}
		// As conn does: room to send but nothing to send.
		if (send_budget == 0 && recovery_cwnd_room(&r) >= mtu())
			recovery_on_app_limited(&r);
		if (cc_cwnd(&r.cc) > max_cwnd)
			max_cwnd = cc_cwnd(&r.cc);
	}

	uint64_t next_event() const
	{
		uint64_t n = UINT64_MAX;
		if (!fwd.empty())
			n = std::min(n, fwd.top().arrive);
		if (!rev.empty())
			n = std::min(n, rev.front().arrive);
		n = std::min(n, ack_tracker_deadline(&t));
		n = std::min(n, recovery_deadline(&r));
		if (limit_ok && send_budget > 0) {
			uint64_t s = recovery_next_send_time(&r, mtu(), now);
			if (s > now)
				n = std::min(n, s);
			if (cfg.pmtu)
				n = std::min(n, std::max(pmtu_deadline(&pm), now + 1));
		}
		return n;
	}

	static void on_acked(void *ctx, const recovery_event *ev)
	{
		Sim *s = static_cast<Sim *>(ctx);
		if (ev->flags & RECOVERY_PMTU_PROBE) {
			s->probes_acked++;
			if (pmtu_on_probe_acked(&s->pm, ev->bytes, s->now))
				recovery_set_mtu(&s->r, pmtu_current(&s->pm));
			return;
		}
		s->acked_bytes += ev->bytes;
		if (s->cfg.pmtu && pmtu_on_packet_acked(&s->pm, ev->bytes, s->now))
			recovery_set_mtu(&s->r, pmtu_current(&s->pm));
	}

	static void on_lost(void *ctx, const recovery_event *ev)
	{
		Sim *s = static_cast<Sim *>(ctx);
		if (ev->flags & RECOVERY_PMTU_PROBE) {
			s->probes_lost++;
			if (pmtu_on_probe_lost(&s->pm, ev->bytes, s->now))
				recovery_set_mtu(&s->r, pmtu_current(&s->pm));
			return;
		}
		s->lost_packets++;
		if (s->cfg.pmtu && pmtu_on_packet_lost(&s->pm, ev->bytes, s->now))
			recovery_set_mtu(&s->r, pmtu_current(&s->pm));
	}

	void receiver_maybe_ack()
	{
		if (!ack_tracker_due(&t, now))
			return;
		uint8_t buf[ACK_FRAME_MAX_BYTES];
		size_t n = ack_frame_write(&t, now, buf, sizeof buf);
		if (n && !chance(cfg.ack_loss))
			rev.push_back({now + cfg.delay_us, std::vector<uint8_t>(buf, buf + n)});
	}

	void step()
	{
		while (!fwd.empty() && fwd.top().arrive <= now) {
			Pkt p = fwd.top();
			fwd.pop();
			ack_tracker_on_packet(&t, p.pn, p.eliciting, now);
		}
		receiver_maybe_ack();
		recovery_callbacks cb = {on_acked, on_lost, this};
		while (!rev.empty() && rev.front().arrive <= now) {
			AckMsg m = std::move(rev.front());
			rev.pop_front();
			ack_ranges a;
			size_t used;
			if (ack_frame_parse(m.frame.data(), m.frame.size(), &a, &used) != 0)
				abort();
			if (recovery_on_ack(&r, &a, now, &cb) < 0)
				abort();
		}
		if (recovery_deadline(&r) <= now)
			(void)recovery_on_timeout(&r, now, &cb);
	}
};

// Several bulk flows (each its own recovery + receiver) through one shared
// drop-tail bottleneck: fairness between sessions.
class SharedLinkSim {
public:
	struct Flow {
		recovery r;
		ack_tracker t;
		uint64_t next_pn = 0;
		uint64_t acked_bytes = 0;
		uint64_t start_us = 0;
		uint64_t delay_us = 0; // one way
		struct AckMsg {
			uint64_t arrive;
			std::vector<uint8_t> frame;
		};
		std::deque<AckMsg> rev;
	};

	SharedLinkSim(uint64_t rate_Bps, uint64_t buffer_bytes, uint32_t seed)
		: rate(rate_Bps), buffer(buffer_bytes), rng(seed) {}
	~SharedLinkSim()
	{
		for (auto &f : flows)
			recovery_free(&f->r);
	}
	SharedLinkSim(const SharedLinkSim &) = delete;
	SharedLinkSim &operator=(const SharedLinkSim &) = delete;

	size_t add_flow(enum srm_cc cc, uint64_t delay_us, uint64_t start_us)
	{
		flows.emplace_back(new Flow);
		Flow &f = *flows.back();
		if (recovery_init(&f.r, cc, WIRE_BASE_UDP_PAYLOAD, start_us) != 0)
			abort();
		ack_tracker_init(&f.t);
		f.delay_us = delay_us;
		f.start_us = start_us;
		return flows.size() - 1;
	}

	void run_until(uint64_t until)
	{
		for (int guard = 0; guard < 50000000 && now < until; guard++) {
			for (size_t i = 0; i < flows.size(); i++)
				send(i);
			uint64_t next = next_event();
			if (next > until) {
				now = until;
				break;
			}
			if (next > now)
				now = next;
			step();
		}
	}

	std::vector<std::unique_ptr<Flow>> flows;
	uint64_t now = 0;
	double loss = 0.0;

private:
	struct Pkt {
		uint64_t arrive;
		size_t flow;
		uint64_t pn;
		bool operator>(const Pkt &o) const
		{
			return arrive != o.arrive ? arrive > o.arrive : pn > o.pn;
		}
	};
	uint64_t rate, buffer;
	std::mt19937_64 rng;
	uint64_t link_free = 0;
	std::priority_queue<Pkt, std::vector<Pkt>, std::greater<Pkt>> fwd;

	void send(size_t i)
	{
		Flow &f = *flows[i];
		const uint32_t size = WIRE_BASE_UDP_PAYLOAD;
		if (now < f.start_us)
			return;
		for (int k = 0; k < 100000 && recovery_can_send(&f.r, size, now); k++) {
			uint64_t pn = f.next_pn++;
			recovery_on_sent(&f.r, pn, size, RECOVERY_ACK_ELICITING | RECOVERY_IN_FLIGHT,
					 0, now);
			if (loss > 0 && double(rng() % 1000000) < loss * 1e6)
				continue;
			uint64_t backlog = link_free > now ? (link_free - now) * rate / 1000000 : 0;
			if (backlog + size > buffer)
				continue;
			link_free = std::max(link_free, now) + (uint64_t)size * 1000000 / rate;
			fwd.push({link_free + f.delay_us, i, pn});
		}
	}

	uint64_t next_event() const
	{
		uint64_t n = UINT64_MAX;
		if (!fwd.empty())
			n = fwd.top().arrive;
		for (auto &fp : flows) {
			const Flow &f = *fp;
			if (now < f.start_us) {
				n = std::min(n, f.start_us);
				continue;
			}
			if (!f.rev.empty())
				n = std::min(n, f.rev.front().arrive);
			n = std::min(n, ack_tracker_deadline(&f.t));
			n = std::min(n, recovery_deadline(&f.r));
			uint64_t s = recovery_next_send_time(&f.r, WIRE_BASE_UDP_PAYLOAD, now);
			if (s > now)
				n = std::min(n, s);
		}
		return n;
	}

	static void on_acked(void *ctx, const recovery_event *ev)
	{
		static_cast<Flow *>(ctx)->acked_bytes += ev->bytes;
	}

	void step()
	{
		while (!fwd.empty() && fwd.top().arrive <= now) {
			Pkt p = fwd.top();
			fwd.pop();
			ack_tracker_on_packet(&flows[p.flow]->t, p.pn, true, now);
		}
		for (auto &fp : flows) {
			Flow &f = *fp;
			if (ack_tracker_due(&f.t, now)) {
				uint8_t buf[ACK_FRAME_MAX_BYTES];
				size_t n = ack_frame_write(&f.t, now, buf, sizeof buf);
				if (n)
					f.rev.push_back({now + f.delay_us, std::vector<uint8_t>(buf, buf + n)});
			}
			recovery_callbacks cb = {on_acked, nullptr, &f};
			while (!f.rev.empty() && f.rev.front().arrive <= now) {
				ack_ranges a;
				size_t used;
				if (ack_frame_parse(f.rev.front().frame.data(), f.rev.front().frame.size(),
						    &a, &used) != 0)
					abort();
				f.rev.pop_front();
				if (recovery_on_ack(&f.r, &a, now, &cb) < 0)
					abort();
			}
			if (recovery_deadline(&f.r) <= now)
				(void)recovery_on_timeout(&f.r, now, &cb);
		}
	}
};

} // namespace rsim

#endif
