// rdv_sim.h — an in-process network for rendezvous tests: real servers
// and clients, packets routed by address, a simulated clock.
#ifndef RDV_SIM_H
#define RDV_SIM_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <vector>

extern "C" {
#include "rendezvous.h"
}

inline rdv_endpoint sim_v4(const char *a, uint16_t port)
{
	rdv_endpoint ep{};
	auto *s = reinterpret_cast<sockaddr_in *>(&ep.addr);
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, a, &s->sin_addr);
	ep.len = sizeof(*s);
	return ep;
}

inline rdv_endpoint sim_v6(const char *a, uint16_t port)
{
	rdv_endpoint ep{};
	auto *s = reinterpret_cast<sockaddr_in6 *>(&ep.addr);
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	inet_pton(AF_INET6, a, &s->sin6_addr);
	ep.len = sizeof(*s);
	return ep;
}

// Deterministic randomness: a counter through BLAKE2b.
inline void sim_rng(void *ctx, void *buf, size_t len)
{
	auto *ctr = static_cast<uint64_t *>(ctx);
	uint8_t *p = static_cast<uint8_t *>(buf);
	while (len > 0) {
		uint8_t block[64];
		(*ctr)++;
		crypto_generichash(block, sizeof block, reinterpret_cast<uint8_t *>(ctr), 8, nullptr, 0);
		size_t n = len < sizeof block ? len : sizeof block;
		memcpy(p, block, n);
		p += n;
		len -= n;
	}
}

struct SimEvent {
	rdv_event ev;
	std::vector<uint8_t> inner;
};

struct SimPeer {
	identity id{};
	uint8_t pub[32];
	rdv_endpoint addr; // as the server sees it (after NAT)
	rdv_client *c = nullptr;
	size_t server = 0; // index into Sim::servers
	bool listed = true; // consents to meet every other listed peer
	std::vector<SimEvent> events;
	uint64_t rng_ctr = 0;
	~SimPeer() { rdv_client_free(c); }
	int count(rdv_event_type t) const
	{
		int n = 0;
		for (auto &e : events)
			n += e.ev.type == t;
		return n;
	}
	const SimEvent *last(rdv_event_type t) const
	{
		for (auto it = events.rbegin(); it != events.rend(); ++it)
			if (it->ev.type == t)
				return &*it;
		return nullptr;
	}
};

struct SimServer {
	rdv_server *s = nullptr;
	rdv_endpoint addr;
	uint64_t rng_ctr = 0;
};

struct Sim {
	uint64_t now = 1000000;
	uint64_t wall_offset = UINT64_C(1790000000000);
	rdv_store *store = nullptr;
	std::vector<SimServer> servers;
	std::vector<std::unique_ptr<SimPeer>> peers;
	// Return false to drop a packet (client -> server when to_server).
	std::function<bool(const SimPeer &, bool to_server, const uint8_t *, size_t)> filter;
	uint64_t delivered = 0;

	explicit Sim(size_t nservers = 1, rdv_server_config cfg = {})
	{
		EXPECT_GE(sodium_init(), 0);
		store = rdv_store_memory_new(RDV_DEFAULT_MAX_RECORDS);
		for (size_t i = 0; i < nservers; i++) {
			SimServer sv;
			sv.rng_ctr = 1000 * (i + 1);
			sv.addr = sim_v4("198.18.0.2", (uint16_t)(7000 + i));
			servers.push_back(sv);
		}
		for (auto &sv : servers) {
			rdv_server_config c = cfg;
			c.rng = sim_rng;
			c.rng_ctx = &sv.rng_ctr;
			c.mesh_addr = sv.addr; // servers relay to each other's registrants
			c.wall_offset_ms = wall_offset;
			sv.s = rdv_server_new(&c, store, now);
		}
	}
	~Sim()
	{
		peers.clear();
		for (auto &sv : servers)
			rdv_server_free(sv.s);
		rdv_store_free(store);
	}

	// listed: this peer and every other listed one consent to meet each
	// other (as engines that list each other); a stranger lists nobody
	// unless a test says so (rdv_client_set_peers).
	// server_pub: the server key this peer pins (SRMUDP_RENDEZVOUS=KEY@...).
	SimPeer &add_peer(uint8_t seed, rdv_endpoint addr, size_t server = 0, bool listed = true,
			  const uint8_t *server_pub = nullptr)
	{
		auto p = std::make_unique<SimPeer>();
		uint8_t secret[32];
		memset(secret, seed, sizeof secret);
		EXPECT_EQ(identity_init(&p->id, secret), 0);
		identity_public_key(&p->id, p->pub);
		p->addr = addr;
		p->server = server;
		p->rng_ctr = 50000 + seed;
		rdv_client_config cfg{};
		cfg.id = &p->id;
		cfg.wall_offset_ms = wall_offset;
		cfg.rng = sim_rng;
		cfg.rng_ctx = &p->rng_ctr;
		p->c = rdv_client_new(&cfg, now);
		EXPECT_NE(p->c, nullptr);
		rdv_client_relink(p->c, server_pub, now);
		p->listed = listed;
		peers.push_back(std::move(p));
		if (listed)
			consent_listed();
		return *peers.back();
	}

	void consent_listed()
	{
		// Each key once (two instances of one key are one peer), at most
		// RDV_MAX_ALLOW: tests with thousands of peers list the first.
		std::vector<std::array<uint8_t, 32>> keys;
		for (auto &q : peers) {
			std::array<uint8_t, 32> k;
			memcpy(k.data(), q->pub, 32);
			if (q->listed && keys.size() < RDV_MAX_ALLOW &&
			    std::find(keys.begin(), keys.end(), k) == keys.end())
				keys.push_back(k);
		}
		for (auto &q : peers) {
			if (!q->listed)
				continue;
			EXPECT_EQ(rdv_client_set_peers(q->c, reinterpret_cast<const uint8_t(*)[32]>(keys.data()),
							       keys.size(), now), 0);
		}
	}

	SimPeer *peer_at(const rdv_endpoint &a)
	{
		for (auto &p : peers)
			if (rdv_endpoint_equal(&p->addr, &a))
				return p.get();
		return nullptr;
	}

	SimServer *server_at(const rdv_endpoint &a)
	{
		for (auto &sv : servers)
			if (rdv_endpoint_equal(&sv.addr, &a))
				return &sv;
		return nullptr;
	}

	// What server `from` sent: to peers, or to another server (MESH),
	// which passes it on.
	void deliver(const rdv_endpoint &from, const rdv_out *out, int n)
	{
		for (int i = 0; i < n; i++) {
			if (SimServer *sv = server_at(out[i].to)) {
				rdv_out next[2];
				int m = rdv_server_receive(sv->s, out[i].buf, out[i].len, &from, now, next, 2);
				if (m > 0)
					deliver(sv->addr, next, m);
				continue;
			}
			SimPeer *p = peer_at(out[i].to);
			if (p == nullptr || (filter && !filter(*p, false, out[i].buf, out[i].len)))
				continue;
			delivered++;
			SimEvent e{};
			int rc = rdv_client_receive(p->c, out[i].buf, out[i].len, now, &e.ev);
			if (rc == 1) {
				if (e.ev.type == RDV_EV_RELAYED) {
					e.inner.assign(e.ev.inner, e.ev.inner + e.ev.inner_len);
					e.ev.inner = nullptr;
				}
				p->events.push_back(e);
			}
		}
	}

	// Send pkt from peer p to its server, deliver what comes back.
	int to_server(SimPeer &p, const uint8_t *pkt, size_t len)
	{
		rdv_out out[2];
		if (filter && !filter(p, true, pkt, len))
			return 0;
		int n = rdv_server_receive(servers[p.server].s, pkt, len, &p.addr, now, out, 2);
		if (n > 0)
			deliver(servers[p.server].addr, out, n);
		return n;
	}

	// Everyone sends what is due until the network is quiet.
	void pump()
	{
		for (int round = 0; round < 50; round++) {
			bool any = false;
			for (size_t i = 0; i < peers.size(); i++) {
				SimPeer &p = *peers[i];
				uint8_t pkt[RDV_MAX_PACKET];
				size_t len;
				while ((len = rdv_client_poll(p.c, now, pkt, sizeof pkt)) > 0) {
					any = true;
					to_server(p, pkt, len);
				}
			}
			for (auto &sv : servers) {
				rdv_out out[4];
				int n;
				while ((n = rdv_server_tick(sv.s, now, out, 4)) > 0) {
					any = true;
					deliver(sv.addr, out, n);
				}
			}
			if (!any)
				return;
		}
	}

	// Advance the clock in steps, letting every party act.
	void run(uint64_t ms, uint64_t step = 100)
	{
		for (uint64_t t = 0; t < ms; t += step) {
			now += step;
			pump();
		}
	}

	bool registered(SimPeer &p) { return rdv_client_registered(p.c, now, nullptr) == 1; }
};

#endif
