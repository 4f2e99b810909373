// engine_rate_test.cc — SRMUDP_RATE against forged DATA: two real engines
// on loopback, a relaying proxy between them that learns b's receiver
// index from a's first DATA packet, and a forger that sends packets with
// that index (and random counter, ciphertext and tag) from another port.
// A forgery must not spend a's budget at b (issue 18 item 8).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

extern "C" {
#include "srmudp.h"
#include "wire.h"
}

namespace {

constexpr uint64_t LIMIT = 1 << 20;       // b accepts 1 MiB/s from a
constexpr int FORGED_PER_SEC = 3000;      // 3.6 MB/s of forgeries: 3.4 x the limit
constexpr size_t FORGED_BYTES = 1200;
constexpr uint16_t PORT = 7300;

sockaddr_in loopback(uint16_t port)
{
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

int udp_socket(uint16_t *port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sockaddr_in a = loopback(0);
	socklen_t len = sizeof(a);
	if (fd < 0 || bind(fd, (sockaddr *)&a, sizeof(a)) != 0 || getsockname(fd, (sockaddr *)&a, &len) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

// a <-> to_a [proxy] to_b <-> b, and the forger's socket beside it.
struct Proxy {
	int to_a = -1, to_b = -1, forger = -1;
	uint16_t a_port = 0;
	sockaddr_in b{}, a{};
	bool a_known = false;
	uint8_t prefix[8]{};
	std::atomic<bool> have_prefix{false}, forge{false}, stop{false};
	std::atomic<uint64_t> forged{0};
	std::thread relay, forging;

	bool start(uint16_t b_port)
	{
		uint16_t unused;
		to_a = udp_socket(&a_port);
		to_b = udp_socket(&unused);
		forger = udp_socket(&unused);
		b = loopback(b_port);
		if (to_a < 0 || to_b < 0 || forger < 0)
			return false;
		relay = std::thread([this] { run_relay(); });
		forging = std::thread([this] { run_forger(); });
		return true;
	}

	void finish()
	{
		stop = true;
		if (relay.joinable())
			relay.join();
		if (forging.joinable())
			forging.join();
		for (int fd : {to_a, to_b, forger})
			if (fd >= 0)
				close(fd);
	}

	void run_relay()
	{
		uint8_t buf[2048];
		pollfd p[2] = {{to_a, POLLIN, 0}, {to_b, POLLIN, 0}};
		while (!stop) {
			if (poll(p, 2, 50) <= 0)
				continue;
			if (p[0].revents & POLLIN) {
				socklen_t len = sizeof(a);
				ssize_t n = recvfrom(to_a, buf, sizeof(buf), 0, (sockaddr *)&a, &len);
				if (n > 0) {
					a_known = true;
					if (!have_prefix && buf[0] == WIRE_DATA && n >= WIRE_DATA_OVERHEAD) {
						memcpy(prefix, buf, sizeof(prefix)); // header, b's receiver index
						have_prefix = true;
					}
					sendto(to_b, buf, (size_t)n, 0, (sockaddr *)&b, sizeof(b));
				}
			}
			if (p[1].revents & POLLIN) {
				ssize_t n = recv(to_b, buf, sizeof(buf), 0);
				if (n > 0 && a_known)
					sendto(to_a, buf, (size_t)n, 0, (sockaddr *)&a, sizeof(a));
			}
		}
	}

	// FORGED_PER_SEC, a few every millisecond (a steady flood leaves no
	// gap in which a bucket refills for the real packets).
	void run_forger()
	{
		uint8_t pkt[FORGED_BYTES];
		auto t0 = std::chrono::steady_clock::now();
		uint64_t sent = 0;
		while (!stop) {
			if (!forge || !have_prefix) {
				usleep(1000);
				t0 = std::chrono::steady_clock::now();
				sent = 0;
				continue;
			}
			double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
			while (sent < secs * FORGED_PER_SEC) {
				randombytes_buf(pkt, sizeof(pkt));
				memcpy(pkt, prefix, sizeof(prefix));
				sendto(forger, pkt, sizeof(pkt), 0, (sockaddr *)&b, sizeof(b));
				sent++;
				forged++;
			}
			usleep(1000);
		}
	}
};

class EngineRateTest : public ::testing::Test {
protected:
	std::string dir;
	srm_engine *a = nullptr, *b = nullptr;
	uint8_t pub_a[SRM_KEY_BYTES], pub_b[SRM_KEY_BYTES];
	Proxy proxy;

	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		char tmpl[] = "/tmp/srm-engine-rate-test-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		key("a.key", pub_a);
		key("b.key", pub_b);
	}

	void TearDown() override
	{
		if (a)
			srm_engine_stop(a);
		if (b)
			srm_engine_stop(b);
		proxy.finish();
		std::string cmd = "rm -rf " + dir;
		ASSERT_EQ(system(cmd.c_str()), 0);
	}

	void key(const char *name, uint8_t pub[SRM_KEY_BYTES])
	{
		char text[SRM_PUBKEY_TEXT_BYTES];
		ASSERT_EQ(srm_key_generate((dir + "/" + name).c_str(), text), 0);
		ASSERT_EQ(srm_pubkey_decode(text, pub), 0);
	}

	// name's engine with one peer (other's key, at port, 0: unknown).
	srm_engine *start(const char *name, const char *peer, const uint8_t *other, uint16_t port,
			  uint64_t rate_bytes, uint64_t rate_packets)
	{
		srm_config cfg;
		srm_peer_config pc{};
		srm_config_defaults(&cfg);
		snprintf(pc.name, sizeof(pc.name), "%s", peer);
		memcpy(pc.pubkey, other, SRM_KEY_BYTES);
		if (port) {
			sockaddr_in ep = loopback(port);
			memcpy(&pc.endpoint, &ep, sizeof(ep));
			pc.endpoint_len = sizeof(ep);
		}
		snprintf(cfg.key_path, sizeof(cfg.key_path), "%s/%s.key", dir.c_str(), name);
		cfg.peers = &pc;
		cfg.peer_count = 1;
		sockaddr_in l = loopback(0);
		memcpy(&cfg.listen, &l, sizeof(l));
		cfg.listen_len = sizeof(l);
		cfg.connect_timeout_ms = 5000;
		cfg.rate_bytes = rate_bytes;
		cfg.rate_packets = rate_packets;
		srm_engine *e = nullptr;
		char err[256] = "";
		EXPECT_EQ(srm_engine_start(&cfg, &e, err, sizeof(err)), 0) << err;
		return e;
	}

	// Bytes a's stream delivers to b's program in secs, with or without
	// the forger running.
	static uint64_t received(int fd, double secs)
	{
		char buf[65536];
		uint64_t total = 0;
		auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(secs);
		while (std::chrono::steady_clock::now() < end) {
			pollfd p{fd, POLLIN, 0};
			if (poll(&p, 1, 20) == 1) {
				ssize_t n = read(fd, buf, sizeof(buf));
				if (n <= 0)
					break;
				total += (uint64_t)n;
			}
		}
		return total;
	}

	// b limited to (rate_bytes, rate_packets); a streams to b through the
	// proxy: b's receive rate for 2 s without forgeries, then for 2 s
	// with them.  The forgeries must all fail authentication at b.
	void forged_flood(uint64_t rate_bytes, uint64_t rate_packets, uint64_t *base, uint64_t *flood)
	{
		b = start("b", "a", pub_a, 0, rate_bytes, rate_packets);
		ASSERT_NE(b, nullptr);
		ASSERT_TRUE(proxy.start((uint16_t)srm_engine_udp_port(b)));
		a = start("a", "b", pub_b, proxy.a_port, 0, 0);
		ASSERT_NE(a, nullptr);
		int lfd = srm_listen(b, PORT, nullptr, 0);
		ASSERT_GE(lfd, 0);
		int sv[2];
		ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		uint64_t h;
		ASSERT_EQ(srm_stream_open(a, srm_peer_find(a, "b"), PORT, sv[1], 0, &h), 0);
		ASSERT_EQ(srm_stream_wait(a, h, 10000), 0);
		pollfd pl{lfd, POLLIN, 0};
		ASSERT_EQ(poll(&pl, 1, 10000), 1);
		int peer;
		int srv = srm_accept(b, PORT, &peer);
		ASSERT_GE(srv, 0);
		std::atomic<bool> done{false};
		std::thread writer([&] {
			std::string chunk(1 << 16, '\0');
			randombytes_buf(chunk.data(), chunk.size()); // no compression
			while (!done) {
				pollfd p{sv[0], POLLOUT, 0};
				if (poll(&p, 1, 20) == 1 &&
				    send(sv[0], chunk.data(), chunk.size(), MSG_NOSIGNAL) < 0)
					break;
			}
		});
		received(srv, 1.0); // the sender finds the limit
		*base = received(srv, 2.0) / 2;
		ASSERT_TRUE(proxy.have_prefix.load());
		struct srm_engine_stats s0, s1;
		srm_engine_stats(b, &s0);
		proxy.forge = true;
		received(srv, 0.5);
		*flood = received(srv, 2.0) / 2;
		proxy.forge = false;
		usleep(100000);
		srm_engine_stats(b, &s1);
		// The writer may sit in send(): shutdown wakes it, and the fd is
		// closed only once it is gone (closing under it is a race).
		done = true;
		shutdown(sv[0], SHUT_RDWR);
		writer.join();
		close(sv[0]);
		close(srv);
		uint64_t forged = proxy.forged.load();
		printf("limit %llu B/s, %llu pkt/s: %llu B/s before, %llu B/s during %llu forgeries; "
		       "auth drops +%llu, rate drops +%llu\n",
		       (unsigned long long)rate_bytes, (unsigned long long)rate_packets,
		       (unsigned long long)*base, (unsigned long long)*flood, (unsigned long long)forged,
		       (unsigned long long)(s1.drops[SRM_DROP_AUTH] - s0.drops[SRM_DROP_AUTH]),
		       (unsigned long long)(s1.drops[SRM_DROP_RATELIMIT] - s0.drops[SRM_DROP_RATELIMIT]));
		EXPECT_GT(forged, 5000u);
		// Loopback loses nothing: every forgery reached b's session and
		// failed there.
		EXPECT_GE(s1.drops[SRM_DROP_AUTH] - s0.drops[SRM_DROP_AUTH], forged * 9 / 10);
	}
};

TEST_F(EngineRateTest, ForgedDataDoesNotSpendTheByteBudget)
{
	uint64_t base = 0, flood = 0;
	forged_flood(LIMIT, 0, &base, &flood);
	EXPECT_GT(base, LIMIT / 4);
	EXPECT_LE(base, 2 * LIMIT);
	EXPECT_GE(flood, base / 2);
}

TEST_F(EngineRateTest, ForgedDataDoesNotSpendThePacketBudget)
{
	// 1,000 packets/s from a: the 3,000 forgeries a second would take
	// every token if they were charged.
	uint64_t base = 0, flood = 0;
	forged_flood(0, 1000, &base, &flood);
	EXPECT_GT(base, 0u);
	EXPECT_GE(flood, base / 2);
}

} // namespace
