// path_sim.h — a deterministic network for the path manager (core/protocol/
// path.c): hosts behind NAT routers, a rendezvous server with a relay, and
// an internet with latency and loss, in virtual time.
//
// What is real: the path manager, every decision it makes and every
// deadline it reports.  What is modelled, at the level the manager sees:
//   - a session per host: INIT/RESP with the real retry schedule (session.h
//     constants) and the 10 s connect timeout; keys renewed while there is
//     traffic, gone REJECT_AFTER_MS after the last renewal; the side with a
//     stream sends DATA every DATA_MS, the other acknowledges what arrives
//     (at most as often); a DATA received counts
//     as authenticated (path_on_receive), a probe is a DATA;
//   - NATs as Linux conntrack does them: one entry per (inner port, remote)
//     flow, forgotten CONNTRACK_MS after its last packet either way;
//     mapping and filtering by type (below); "rebinding" flushes the table
//     and moves the public port (and optionally the public IP);
//   - the rendezvous server: REGISTER (answered with the address it saw),
//     LOOKUP (answered with the peer's addresses, and the peer told to
//     punch), the relay; a restart forgets every registration.
// Nothing sleeps: the loop jumps to the next delivery or deadline.
#ifndef PATH_SIM_H
#define PATH_SIM_H

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <queue>
#include <random>
#include <vector>

extern "C" {
#include "path.h"
#include "session.h"
#include "rendezvous.h"
}

namespace pathsim {

constexpr uint64_t CONNTRACK_MS = 30000; // this machine's nf_conntrack_udp_timeout
constexpr uint64_t DATA_MS = 10;
constexpr uint64_t CONN_IDLE_MS = 30000; // CONN_DEFAULT_IDLE_TIMEOUT_MS
constexpr uint16_t ENGINE_PORT = 4000;
constexpr uint16_t PROBE_PORT_BASE = 50000;
constexpr uint32_t SERVER_IP = 0xC6120002; // 198.18.0.2
constexpr uint16_t SERVER_PORT = 3478;
constexpr uint64_t REGISTER_EVERY_MS = 25000; // RDV_REFRESH_MS

enum class Nat {
	None,           // public address = private address, everything in
	FullCone,       // one public port per inner port; anyone may send to it
	PortRestricted, // one public port per inner port; only flows we opened (the lab's "cone")
	Symmetric,      // a new random public port per destination (the lab's "symmetric")
	Blocked,        // no UDP at all, either way
};

struct Ep {
	uint32_t ip = 0;
	uint16_t port = 0;
	bool operator==(const Ep &o) const { return ip == o.ip && port == o.port; }
	bool operator<(const Ep &o) const { return ip != o.ip ? ip < o.ip : port < o.port; }
};

inline sockaddr_storage to_ss(Ep e)
{
	sockaddr_storage ss{};
	auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
	v4->sin_family = AF_INET;
	v4->sin_port = htons(e.port);
	v4->sin_addr.s_addr = htonl(e.ip);
	return ss;
}

inline Ep from_ss(const sockaddr_storage &ss)
{
	auto *v4 = reinterpret_cast<const sockaddr_in *>(&ss);
	return Ep{ntohl(v4->sin_addr.s_addr), ntohs(v4->sin_port)};
}

inline path_addr udp_path(Ep e, uint32_t sock = 0)
{
	path_addr p{};
	p.kind = PATH_UDP;
	p.sock = sock;
	p.addr = to_ss(e);
	p.len = sizeof(sockaddr_in);
	return p;
}

enum class Kind { Init, Resp, Data, Punch, Register, Registered, Lookup, PeerInfo, Relay, Relayed };

struct Msg {
	Kind kind;
	int from_host = -1;            // sender (for the server's bookkeeping)
	int about = -1;                // PeerInfo/Relay/Relayed: the other host
	Ep addr;                       // Registered: the address the server saw
	std::vector<Ep> cands;         // PeerInfo; Register: host addresses
	std::shared_ptr<Msg> inner;    // Relay/Relayed
	bool stream = false;           // Data: carries stream bytes (else an ACK or probe)
};

struct Packet {
	uint64_t at, seq;
	Ep src, dst;
	Msg msg;
	bool operator>(const Packet &o) const { return at != o.at ? at > o.at : seq > o.seq; }
};

struct Flow {
	uint16_t inner_port, public_port;
	Ep remote;
	uint64_t last_ms;
};

struct Router {
	Nat type = Nat::None;
	uint32_t public_ip = 0;
	uint16_t port_shift = 0; // rebinding moves EIM public ports by this much
	std::vector<Flow> flows;
	uint64_t drops = 0;

	bool live(const Flow &f, uint64_t now) const { return now < f.last_ms + CONNTRACK_MS; }

	// Outbound from inner port: the public source port, or 0 (blocked).
	uint16_t out(uint16_t inner, Ep remote, uint64_t now, std::mt19937_64 &rng)
	{
		if (type == Nat::Blocked)
			return 0;
		if (type == Nat::None)
			return inner;
		for (auto &f : flows)
			if (f.inner_port == inner && f.remote == remote && live(f, now)) {
				f.last_ms = now;
				return f.public_port;
			}
		uint16_t pub = 0;
		if (type != Nat::Symmetric) {
			for (auto &f : flows)
				if (f.inner_port == inner && live(f, now))
					pub = f.public_port;
			if (!pub)
				pub = static_cast<uint16_t>(inner + port_shift); // masquerade keeps the port when free
		} else {
			do
				pub = static_cast<uint16_t>(1024 + rng() % 64512);
			while (in_use(pub, now));
		}
		flows.push_back(Flow{inner, pub, remote, now});
		return pub;
	}

	bool in_use(uint16_t pub, uint64_t now) const
	{
		for (auto &f : flows)
			if (f.public_port == pub && live(f, now))
				return true;
		return false;
	}

	// Inbound to public port from remote: the inner port, or 0 (dropped).
	uint16_t in(uint16_t pub, Ep remote, uint64_t now)
	{
		if (type == Nat::Blocked) {
			drops++;
			return 0;
		}
		if (type == Nat::None)
			return pub;
		for (auto &f : flows)
			if (f.public_port == pub && f.remote == remote && live(f, now)) {
				f.last_ms = now;
				return f.inner_port;
			}
		if (type == Nat::FullCone)
			for (auto &f : flows)
				if (f.public_port == pub && live(f, now)) {
					flows.push_back(Flow{f.inner_port, pub, remote, now});
					return f.inner_port;
				}
		drops++;
		return 0;
	}

	void expire(uint64_t now)
	{
		std::vector<Flow> keep;
		for (auto &f : flows)
			if (live(f, now))
				keep.push_back(f);
		flows.swap(keep);
	}

	void rebind(bool new_ip)
	{
		flows.clear();
		port_shift = static_cast<uint16_t>(port_shift + 7);
		if (new_ip)
			public_ip++;
	}
};

struct Host {
	int id;
	uint32_t lan_ip;
	Router nat;
	bool running = false;
	bool wants = false;       // the application opened a stream
	// has_conn: our stream, or the peer's (answered while it sends, until
	// the idle timeout)
	bool has_conn(uint64_t now) const { return wants || (last_data_rx && now < last_data_rx + CONN_IDLE_MS); }
	bool relay = false;       // a rendezvous server is configured
	uint64_t start_ms = 0;
	// the modelled session
	bool up = false;
	bool attempt = false;
	uint64_t attempt_start = 0, next_init = 0;
	uint32_t retry = 0;
	bool failed = false;
	uint64_t next_data = 0, next_register = 0;
	bool registered = false;
	// the real path manager
	pathman *pm = nullptr;
	peer_paths *pp = nullptr;
	std::vector<uint32_t> probe_socks; // id i+1 <-> port PROBE_PORT_BASE + i
	// observations
	uint64_t stream_rx = 0;
	uint64_t data_rx = 0, last_data_rx = 0, sent = 0, up_at = 0, keys_ms = 0;
	uint64_t rng_ctr = 0;

	~Host() { stop(); }
	void stop()
	{
		path_peer_free(pp);
		pathman_free(pm);
		pp = nullptr;
		pm = nullptr;
		running = up = attempt = failed = wants = false;
		last_data_rx = 0;
	}
	Ep lan(uint16_t port = ENGINE_PORT) const { return Ep{lan_ip, port}; }
	Ep public_ep(uint16_t port = ENGINE_PORT) const
	{
		return nat.type == Nat::None ? lan(port) : Ep{nat.public_ip, static_cast<uint16_t>(port + nat.port_shift)};
	}
};

inline void sim_rng_fill(void *ctx, void *buf, size_t len)
{
	auto *rng = static_cast<std::mt19937_64 *>(ctx);
	auto *p = static_cast<uint8_t *>(buf);
	for (size_t i = 0; i < len; i++)
		p[i] = static_cast<uint8_t>((*rng)());
}

struct Sim {
	std::mt19937_64 rng;
	uint64_t now = 0, seq = 0;
	uint64_t one_way_ms = 20;   // host <-> internet, each side
	double loss = 0;            // per packet, on the internet
	Host h[2];
	bool server = false;
	struct Record {
		Ep seen;
		std::vector<Ep> cands;
	};
	std::map<int, Record> records;
	std::priority_queue<Packet, std::vector<Packet>, std::greater<Packet>> q;
	uint64_t packets = 0;

	explicit Sim(uint64_t seed) : rng(seed)
	{
		for (int i = 0; i < 2; i++) {
			h[i].id = i;
			h[i].lan_ip = 0x0A000002 + (static_cast<uint32_t>(i + 1) << 16); // 10.1.0.2, 10.2.0.2
			h[i].nat.public_ip = 0xC6120102 + (static_cast<uint32_t>(i) << 8); // 198.18.1.2, 198.18.2.2
		}
	}

	Host &other(Host &x) { return h[1 - x.id]; }

	// Start host x; `home`: it knows the other's public endpoint.
	void start(Host &x, bool home)
	{
		x.running = true;
		x.start_ms = now;
		x.up = x.attempt = x.failed = false;
		x.probe_socks.clear();
		path_config pc{};
		pc.servers = x.relay ? 1 : 0;
		pc.local_port = ENGINE_PORT;
		pc.rng = sim_rng_fill;
		pc.rng_ctx = &rng;
		x.pm = pathman_new(&pc);
		sockaddr_storage ss = to_ss(other(x).public_ep());
		x.pp = path_peer_new(x.pm, x.id ? "b" : "a", home ? &ss : nullptr,
				     home ? sizeof(sockaddr_in) : 0, now);
		x.next_register = now;
		x.next_data = now;
	}

	// ---- the network ----

	void send(Host &x, uint16_t from_port, Ep to, Msg m)
	{
		if (!x.running)
			return;
		x.sent++;
		packets++;
		uint16_t pub = x.nat.out(from_port, to, now, rng);
		if (!pub)
			return;
		Ep src = x.nat.type == Nat::None ? x.lan(from_port) : Ep{x.nat.public_ip, pub};
		if (loss > 0 && std::uniform_real_distribution<>(0, 1)(rng) < loss)
			return;
		// Each host's access link costs one_way_ms; the server sits on
		// the internet itself.
		uint64_t delay = to.ip == SERVER_IP ? one_way_ms : 2 * one_way_ms;
		q.push(Packet{now + delay, seq++, src, to, std::move(m)});
	}

	void server_send(Ep to, Msg m)
	{
		packets++;
		if (loss > 0 && std::uniform_real_distribution<>(0, 1)(rng) < loss)
			return;
		q.push(Packet{now + one_way_ms, seq++, Ep{SERVER_IP, SERVER_PORT}, to, std::move(m)});
	}

	void send_path(Host &x, const path_addr &p, Msg m)
	{
		if (p.kind == PATH_UDP) {
			uint16_t port = p.sock ? static_cast<uint16_t>(PROBE_PORT_BASE + p.sock - 1) : ENGINE_PORT;
			send(x, port, from_ss(p.addr), std::move(m));
		} else if (p.kind == PATH_RDV_RELAY && server) {
			Msg r{Kind::Relay};
			r.from_host = x.id;
			r.about = 1 - x.id;
			r.inner = std::make_shared<Msg>(std::move(m));
			send(x, ENGINE_PORT, Ep{SERVER_IP, SERVER_PORT}, std::move(r));
		}
	}

	void deliver(const Packet &pk)
	{
		if (pk.dst.ip == SERVER_IP) {
			on_server(pk);
			return;
		}
		for (auto &x : h) {
			bool mine = x.nat.type == Nat::None ? pk.dst.ip == x.lan_ip : pk.dst.ip == x.nat.public_ip;
			if (!mine || !x.running)
				continue;
			uint16_t inner = x.nat.in(pk.dst.port, pk.src, now);
			if (!inner)
				return;
			uint32_t sock = 0;
			if (inner != ENGINE_PORT) {
				sock = inner - PROBE_PORT_BASE + 1u;
				if (inner < PROBE_PORT_BASE || sock > x.probe_socks.size() || !x.probe_socks[sock - 1])
					return; // nobody listens there
			}
			path_addr from = udp_path(pk.src, sock);
			if (pk.msg.kind == Kind::Relayed)
				on_host(x, *pk.msg.inner, path_addr{PATH_RDV_RELAY, 0, 0, {}});
			else
				on_host(x, pk.msg, from);
			return;
		}
	}

	// ---- the rendezvous server ----

	void on_server(const Packet &pk)
	{
		if (!server)
			return;
		const Msg &m = pk.msg;
		switch (m.kind) {
		case Kind::Register: {
			records[m.from_host] = Record{pk.src, m.cands};
			Msg a{Kind::Registered};
			a.addr = pk.src;
			server_send(pk.src, a);
			break;
		}
		case Kind::Lookup: {
			auto me = records.find(m.from_host), it = records.find(m.about);
			if (me == records.end() || it == records.end())
				break; // not registered (yet, or after a restart)
			me->second.seen = pk.src;
			Msg a{Kind::PeerInfo};
			a.about = m.about;
			a.cands.push_back(it->second.seen);
			a.cands.insert(a.cands.end(), it->second.cands.begin(), it->second.cands.end());
			server_send(pk.src, a);
			Msg b{Kind::PeerInfo};
			b.about = m.from_host;
			b.cands.push_back(pk.src);
			b.cands.insert(b.cands.end(), me->second.cands.begin(), me->second.cands.end());
			server_send(it->second.seen, b);
			break;
		}
		case Kind::Relay: {
			auto it = records.find(m.about);
			if (it == records.end())
				break;
			Msg r{Kind::Relayed};
			r.about = m.from_host;
			r.inner = m.inner;
			server_send(it->second.seen, r);
			break;
		}
		default:
			break;
		}
	}

	void restart_server() { records.clear(); }

	// ---- a host: the modelled session and the driver ----

	void want_handshake(Host &x)
	{
		if (x.up || (x.attempt && now < x.attempt_start + CONNECT_TIMEOUT_DEFAULT_MS))
			return;
		x.attempt = true;
		x.failed = false;
		x.attempt_start = now;
		x.next_init = now;
		x.retry = 0;
	}

	void send_init(Host &x)
	{
		path_addr targets[PATH_MAX_TARGETS];
		size_t n = path_handshake_targets(x.pp, now, targets, PATH_MAX_TARGETS);
		if (!n)
			return;
		for (size_t i = 0; i < n; i++) {
			send_path(x, targets[i], Msg{Kind::Init});
			path_on_sent(x.pp, &targets[i], now);
		}
		x.retry = !x.retry ? HANDSHAKE_RETRY_MIN_MS
			  : x.retry >= HANDSHAKE_RETRY_MAX_MS / 2 ? HANDSHAKE_RETRY_MAX_MS : x.retry * 2;
		x.next_init = now + x.retry + rng() % (HANDSHAKE_RETRY_JITTER_MS + 1);
	}

	void established(Host &x)
	{
		if (!x.up)
			x.up_at = now;
		x.up = true;
		x.keys_ms = now;
		x.attempt = false;
		x.failed = false;
	}

	void on_host(Host &x, const Msg &m, const path_addr &from)
	{
		switch (m.kind) {
		case Kind::Init:
			established(x);
			path_on_receive(x.pp, &from, now);
			send_path(x, from, Msg{Kind::Resp});
			break;
		case Kind::Resp:
			if (!x.attempt && !x.up)
				break;
			established(x);
			path_on_receive(x.pp, &from, now);
			break;
		case Kind::Data:
			if (!x.up)
				break; // keys gone: undecryptable
			path_on_receive(x.pp, &from, now);
			x.data_rx++;
			x.stream_rx += m.stream;
			x.last_data_rx = now;
			if (!x.wants && now >= x.next_data) {
				// a receiver only acknowledges what arrives
				send_path(x, *path_active(x.pp), Msg{Kind::Data});
				path_on_sent(x.pp, path_active(x.pp), now);
				x.next_data = now + DATA_MS;
			}
			break;
		case Kind::Registered: {
			if (!x.registered)
				x.next_register = now + REGISTER_EVERY_MS;
			x.registered = true;
			sockaddr_storage ss = to_ss(m.addr);
			pathman_on_public_address(x.pm, &ss, sizeof(sockaddr_in));
			break;
		}
		case Kind::PeerInfo: {
			std::vector<path_addr> c;
			for (auto &e : m.cands)
				c.push_back(udp_path(e));
			path_on_candidates(x.pp, c.data(), c.size(), now);
			break;
		}
		default:
			break; // PUNCH: nothing to answer
		}
	}

	void register_with_server(Host &x)
	{
		Msg r{Kind::Register};
		r.from_host = x.id;
		r.cands.push_back(x.lan());
		send(x, ENGINE_PORT, Ep{SERVER_IP, SERVER_PORT}, r);
	}

	path_status status(const Host &x) const
	{
		path_status st{};
		st.session_up = x.up;
		st.has_conn = x.has_conn(now);
		st.srtt_ms = x.up ? static_cast<uint32_t>(4 * one_way_ms) : 0;
		st.rx_stream_bytes = x.stream_rx;
		return st;
	}

	void act(Host &x, const path_action &a)
	{
		switch (a.kind) {
		case PATH_DO_HANDSHAKE:
			want_handshake(x);
			break;
		case PATH_DO_LOOKUP: {
			Msg l{Kind::Lookup};
			l.from_host = x.id;
			l.about = 1 - x.id;
			send(x, ENGINE_PORT, Ep{SERVER_IP, SERVER_PORT}, l);
			break;
		}
		case PATH_DO_REGISTER:
			register_with_server(x);
			break;
		case PATH_DO_PUNCH:
			for (size_t i = 0; i < a.count; i++)
				send_path(x, a.targets[i], Msg{Kind::Punch});
			break;
		case PATH_DO_PROBE:
			if (!x.up)
				break;
			for (size_t i = 0; i < a.count; i++) {
				send_path(x, a.targets[i], Msg{Kind::Data});
				path_on_sent(x.pp, &a.targets[i], now);
			}
			break;
		case PATH_DO_WS_OPEN:
		case PATH_DO_WS_CLOSE:
		case PATH_DO_SERVER_PROBE:
		case PATH_DO_NEXT_SERVER:
			break; // engine-wide (pathman_poll): these hosts reach the server over UDP
		case PATH_DO_OPEN_SOCKETS: {
			std::vector<uint32_t> ids;
			for (size_t i = 0; i < a.count; i++) {
				x.probe_socks.push_back(1);
				ids.push_back(static_cast<uint32_t>(x.probe_socks.size()));
			}
			path_sockets_opened(x.pp, ids.data(), ids.size());
			break;
		}
		case PATH_DO_CLOSE_SOCKETS:
			for (size_t i = 0; i < a.count; i++)
				if (a.targets[i].sock && a.targets[i].sock <= x.probe_socks.size())
					x.probe_socks[a.targets[i].sock - 1] = 0;
			break;
		}
	}

	void run_host(Host &x)
	{
		if (!x.running)
			return;
		if (x.relay && server && now >= x.next_register) {
			register_with_server(x);
			// rdv_client: retried every RDV_RETRY_MIN_MS until answered
			x.next_register = now + (x.registered ? REGISTER_EVERY_MS : RDV_RETRY_MIN_MS);
			x.registered = false;
		}
		if (x.up && x.has_conn(now) && now >= x.keys_ms + REKEY_AFTER_MS)
			x.keys_ms = now; // a rekey (not modelled further)
		if (x.up && now >= x.keys_ms + REJECT_AFTER_MS)
			x.up = false;
		if (x.wants && !x.up)
			want_handshake(x);
		path_status st = status(x);
		path_action a;
		for (int i = 0; i < 8 && path_poll(x.pp, &st, now, &a); i++)
			act(x, a);
		if (x.attempt && !x.up) {
			if (now >= x.attempt_start + CONNECT_TIMEOUT_DEFAULT_MS) {
				x.attempt = false;
				x.failed = true;
			} else if (now >= x.next_init) {
				send_init(x);
			}
		}
		if (x.up && x.wants && now >= x.next_data) {
			const path_addr *p = path_active(x.pp);
			if (p->kind != PATH_NONE) {
				path_addr to = *p;
				Msg d{Kind::Data};
				d.stream = true;
				send_path(x, to, d);
				path_on_sent(x.pp, &to, now);
			}
			x.next_data = now + DATA_MS;
		}
	}

	uint64_t host_deadline(const Host &x) const
	{
		if (!x.running)
			return UINT64_MAX;
		path_status st = status(x);
		uint64_t d = path_deadline(x.pp, &st, now);
		if (x.relay && server)
			d = std::min(d, x.next_register);
		if (x.attempt && !x.up && path_can_handshake(x.pp, now))
			d = std::min(d, x.next_init); // else it waits for an address (the engine does too)
		if (x.attempt && !x.up)
			d = std::min(d, x.attempt_start + CONNECT_TIMEOUT_DEFAULT_MS);
		if (x.wants && !x.up && !x.attempt)
			d = std::min(d, now);
		if (x.up && x.wants)
			d = std::min(d, std::max(x.next_data, now));
		if (x.up)
			d = std::min(d, x.keys_ms + (x.has_conn(now) ? REKEY_AFTER_MS : REJECT_AFTER_MS));
		return d;
	}

	// Run until `until` (virtual ms).  Bounded: each step either delivers
	// a packet or passes a deadline.  A deadline that stays in the past
	// without anything happening (a spin in the real engine) is counted.
	uint64_t spins = 0;
	void run_until(uint64_t until)
	{
		uint64_t same = 0, last = now;
		for (uint64_t step = 0;; step++) {
			if (now == last && ++same > 1000) {
				spins++;
				now++;
				same = 0;
			} else if (now != last) {
				same = 0;
				last = now;
			}
			uint64_t next = until;
			if (!q.empty())
				next = std::min(next, q.top().at);
			for (auto &x : h)
				next = std::min(next, std::max(host_deadline(x), now));
			if (next >= until && (q.empty() || q.top().at >= until)) {
				now = until;
				for (auto &x : h)
					run_host(x);
				return;
			}
			now = next;
			while (!q.empty() && q.top().at <= now) {
				Packet pk = q.top();
				q.pop();
				deliver(pk);
			}
			for (auto &x : h)
				run_host(x);
			if (step % 4096 == 0)
				for (auto &x : h)
					x.nat.expire(now);
		}
	}

	// Both sides' active paths, as (kind, address).
	bool direct(int i) const { return path_active(h[i].pp)->kind == PATH_UDP; }
	bool relayed(int i) const { return path_active(h[i].pp)->kind == PATH_RDV_RELAY; }
};

} // namespace pathsim

#endif
