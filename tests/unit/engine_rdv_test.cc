// engine_rdv_test.cc — two engines that know only each other's keys find
// each other through a rendezvous server (the real sans-I/O server state
// machine, driven by a UDP loop in a thread) and carry a stream.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

extern "C" {
#include "rendezvous.h"
#include "srmudp.h"
}

namespace {

uint64_t mono_ms()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

sockaddr_in loopback(int port)
{
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(static_cast<uint16_t>(port));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

// A rendezvous server on 127.0.0.1:ephemeral, served by a thread.
struct RdvServer {
	int fd = -1;
	int port = 0;
	rdv_store *store = nullptr;
	rdv_server *server = nullptr;
	std::atomic<bool> stop{false};
	std::thread thread;

	// static_secret: the server's key (srmudp rendezvous --key), or none.
	void start(const uint8_t *static_secret = nullptr)
	{
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		sockaddr_in a = loopback(0);
		ASSERT_EQ(bind(fd, (sockaddr *)&a, sizeof(a)), 0);
		socklen_t len = sizeof(a);
		getsockname(fd, (sockaddr *)&a, &len);
		port = ntohs(a.sin_port);
		store = rdv_store_memory_new(1000);
		rdv_server_config cfg{};
		cfg.static_secret = static_secret;
		server = rdv_server_new(&cfg, store, mono_ms());
		ASSERT_NE(server, nullptr);
		thread = std::thread([this] { loop(); });
	}

	void send_all(rdv_out *out, int n)
	{
		for (int i = 0; i < n; i++)
			sendto(fd, out[i].buf, out[i].len, 0, (sockaddr *)&out[i].to.addr, out[i].to.len);
	}

	void loop()
	{
		static rdv_out out[4];
		uint8_t buf[RDV_MAX_PACKET];
		while (!stop) {
			pollfd p{fd, POLLIN, 0};
			if (poll(&p, 1, 50) == 1) {
				sockaddr_storage src{};
				socklen_t sl = sizeof(src);
				ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (sockaddr *)&src, &sl);
				if (n > 0) {
					rdv_endpoint from{};
					memcpy(&from.addr, &src, sl);
					from.len = sl;
					int k = rdv_server_receive(server, buf, (size_t)n, &from, mono_ms(),
								   out, 4);
					if (k > 0)
						send_all(out, k);
				}
			}
			int k = rdv_server_tick(server, mono_ms(), out, 4);
			if (k > 0)
				send_all(out, k);
		}
	}

	~RdvServer()
	{
		stop = true;
		if (thread.joinable())
			thread.join();
		if (server)
			rdv_server_free(server);
		if (store)
			rdv_store_free(store);
		if (fd >= 0)
			close(fd);
	}
};

// A bound UDP socket that never reads: packets to it vanish without an
// ICMP error, as towards a server that is down behind a firewall.
struct DeadPort {
	int fd = -1;
	DeadPort()
	{
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		sockaddr_in a = loopback(0);
		EXPECT_EQ(bind(fd, (sockaddr *)&a, sizeof(a)), 0);
	}
	~DeadPort() { close(fd); }
	uint16_t port() const
	{
		sockaddr_in a{};
		socklen_t len = sizeof(a);
		getsockname(fd, (sockaddr *)&a, &len);
		return ntohs(a.sin_port);
	}
};

// pinned: the server has a key and both engines pin it
// (SRMUDP_RENDEZVOUS=KEY@HOST:PORT); wrong_key: they pin another one, and
// must never learn where the other is.  dead_first: a's list names a
// server that does not answer first (failover, issue 18 item 11).
static void meet_through_the_server(bool pinned, bool wrong_key = false, bool dead_first = false)
{
	ASSERT_GE(sodium_init(), 0);
	char tmpl[] = "/tmp/srm-rdv-test-XXXXXX";
	std::string dir = mkdtemp(tmpl);
	RdvServer rdv;
	uint8_t server_secret[32], server_pub[32];
	memset(server_secret, 0x42, sizeof server_secret);
	crypto_scalarmult_base(server_pub, server_secret);
	rdv.start(pinned ? server_secret : nullptr);

	char pub_text[2][SRM_PUBKEY_TEXT_BYTES];
	uint8_t pub[2][SRM_KEY_BYTES];
	std::string keys[2] = {dir + "/a.key", dir + "/b.key"};
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(srm_key_generate(keys[i].c_str(), pub_text[i]), 0);
		ASSERT_EQ(srm_pubkey_decode(pub_text[i], pub[i]), 0);
	}
	DeadPort dead;
	srm_engine *eng[2] = {};
	srm_peer_config peer[2] = {};
	srm_config cfg[2] = {};
	for (int i = 0; i < 2; i++) {
		// Each knows the other's key, not its address.
		snprintf(peer[i].name, sizeof(peer[i].name), "%s", i == 0 ? "b" : "a");
		memcpy(peer[i].pubkey, pub[1 - i], SRM_KEY_BYTES);
		srm_config_defaults(&cfg[i]);
		snprintf(cfg[i].key_path, sizeof(cfg[i].key_path), "%s", keys[i].c_str());
		cfg[i].peers = &peer[i];
		cfg[i].peer_count = 1;
		sockaddr_in l = loopback(0), r = loopback(rdv.port);
		memcpy(&cfg[i].listen, &l, sizeof(l));
		cfg[i].listen_len = sizeof(l);
		size_t n = 0;
		if (dead_first && i == 0) {
			// A UDP port nobody answers on: bound, never read.
			sockaddr_in d = loopback(dead.port());
			srm_rendezvous_config &x = cfg[i].rendezvous[n++];
			memcpy(&x.addr, &d, sizeof(d));
			x.addr_len = sizeof(d);
		}
		srm_rendezvous_config &s = cfg[i].rendezvous[n++];
		memcpy(&s.addr, &r, sizeof(r));
		s.addr_len = sizeof(r);
		s.pinned = pinned;
		memcpy(s.key, server_pub, SRM_KEY_BYTES);
		s.key[0] ^= wrong_key;
		cfg[i].rendezvous_count = n;
		char err[256] = "";
		ASSERT_EQ(srm_engine_start(&cfg[i], &eng[i], err, sizeof(err)), 0) << err;
	}

	int lfd = srm_listen(eng[1], 7000, nullptr, 0);
	ASSERT_GE(lfd, 0);
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uint64_t h;
	ASSERT_EQ(srm_stream_open(eng[0], 0, 7000, sv[1], 0, &h), 0);
	if (wrong_key) {
		EXPECT_NE(srm_stream_wait(eng[0], h, 3000), 0);
		struct srm_peer_stats st;
		ASSERT_EQ(srm_peer_stats(eng[0], 0, &st), 0);
		EXPECT_FALSE(st.established);
		close(sv[0]);
		for (auto *e : eng)
			srm_engine_stop(e);
		std::string cmd = "rm -rf " + dir;
		ASSERT_EQ(system(cmd.c_str()), 0);
		return;
	}
	ASSERT_EQ(srm_stream_wait(eng[0], h, 15000), 0);

	pollfd p{lfd, POLLIN, 0};
	ASSERT_EQ(poll(&p, 1, 10000), 1);
	int who = -1;
	int srv = srm_accept(eng[1], 7000, &who);
	ASSERT_GE(srv, 0);
	EXPECT_EQ(who, 0);
	ASSERT_EQ(write(sv[0], "through rendezvous", 18), 18);
	char buf[32] = {};
	pollfd q{srv, POLLIN, 0};
	ASSERT_EQ(poll(&q, 1, 10000), 1);
	ASSERT_EQ(read(srv, buf, sizeof(buf)), 18);
	EXPECT_STREQ(buf, "through rendezvous");

	struct srm_peer_stats st;
	ASSERT_EQ(srm_peer_stats(eng[0], 0, &st), 0);
	EXPECT_TRUE(st.established);
	EXPECT_FALSE(st.relayed); // both on loopback: the direct path wins

	close(sv[0]);
	close(srv);
	for (auto *e : eng)
		srm_engine_stop(e);
	std::string cmd = "rm -rf " + dir;
	ASSERT_EQ(system(cmd.c_str()), 0);
}

TEST(EngineRendezvous, PeersWithoutEndpointsMeetThroughTheServer)
{
	meet_through_the_server(false);
}

// The first server listed never answers: a moves to the second within
// PATH_FAILOVER_MS (3 s) and meets b there, inside the usual wait.
TEST(EngineRendezvous, AnUnansweringServerGivesWayToTheNextListed)
{
	meet_through_the_server(false, false, true);
	meet_through_the_server(true, false, true);
}

TEST(EngineRendezvous, PeersPinningTheServerKeyMeetThroughIt)
{
	meet_through_the_server(true);
	meet_through_the_server(true, true); // another key pinned: they never meet
}

} // namespace
