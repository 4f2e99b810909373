// engine_test.cc — two real engines on loopback in one process, through
// the public API only: streams, listeners, refusals, failures.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "engine_node.h"

extern "C" {
#include "srmudp.h"
#include "wire.h"
}

namespace {

bool wait_readable(int fd, int ms)
{
	pollfd p{fd, POLLIN, 0};
	return poll(&p, 1, ms) == 1;
}

// Read until EOF (bounded by time); returns the bytes.
std::string read_all(int fd, int ms = 20000)
{
	std::string out;
	char buf[65536];
	while (wait_readable(fd, ms)) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		out.append(buf, static_cast<size_t>(n));
	}
	return out;
}

// A TCP server on an ephemeral loopback port, for forwarding listeners.
int local_listener(sockaddr_storage *addr, socklen_t *len)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	*addr = loopback(0);
	*len = sizeof(*addr);
	if (fd < 0 || bind(fd, (sockaddr *)addr, sizeof(sockaddr_in)) != 0 || listen(fd, 8) != 0 ||
	    getsockname(fd, (sockaddr *)addr, len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int accept_wait(srm_engine *e, int listen_fd, uint16_t port, int *peer)
{
	if (!wait_readable(listen_fd, 10000))
		return -1;
	return srm_accept(e, port, peer);
}

class EngineTest : public ::testing::Test {
protected:
	std::string dir;
	Node a, b;

	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		dir = temp_dir();
		make_key(a, "a.key");
		make_key(b, "b.key");
	}

	void TearDown() override
	{
		if (a.engine)
			srm_engine_stop(a.engine);
		if (b.engine)
			srm_engine_stop(b.engine);
		std::string cmd = "rm -rf " + dir;
		ASSERT_EQ(system(cmd.c_str()), 0);
	}

	void make_key(Node &n, const char *name) { node_key(n, dir, name); }

	static void add_peer(Node &n, const char *name, const Node &other, int port)
	{
		node_add_peer(n, name, other, port);
	}

	static void start(Node &n, uint32_t connect_timeout_ms = 5000,
			  void (*tweak)(srm_config *) = nullptr, int port = 0)
	{
		node_start(n, connect_timeout_ms, tweak, port);
	}

	// a and b know each other; b's endpoint is known to a, and a's to b.
	void start_pair(void (*tweak)(srm_config *) = nullptr)
	{
		// Bind b first on an ephemeral port, then tell a where it is.
		add_peer(b, "a", a, 0);
		start(b, 5000, tweak);
		add_peer(a, "b", b, srm_engine_udp_port(b.engine));
		start(a, 5000, tweak);
	}

	// 1 MiB a -> b, checked; returns b's view of a.
	struct srm_peer_stats transfer_mib()
	{
		int lfd = srm_listen(b.engine, 7100, nullptr, 0);
		uint64_t h;
		int state;
		int app = open_stream(7100, &h, &state);
		EXPECT_EQ(state, 0);
		int peer;
		int srv = accept_wait(b.engine, lfd, 7100, &peer);
		std::string payload(1 << 20, '\0');
		randombytes_buf(payload.data(), payload.size());
		std::thread w([&] {
			EXPECT_EQ(write(app, payload.data(), payload.size()), (ssize_t)payload.size());
			shutdown(app, SHUT_WR);
		});
		EXPECT_TRUE(read_all(srv) == payload);
		w.join();
		close(app);
		close(srv);
		struct srm_peer_stats st;
		srm_peer_stats(a.engine, 0, &st);
		return st;
	}

	// A stream from a to b:port, open and accepted on b's listener lfd:
	// a's application fd; b's in *srv.
	int open_accepted(int lfd, uint16_t port, uint64_t *handle, int *srv)
	{
		int state, peer;
		int app = open_stream(port, handle, &state);
		EXPECT_EQ(state, 0);
		*srv = accept_wait(b.engine, lfd, port, &peer);
		EXPECT_GE(*srv, 0);
		return app;
	}

	// Open a stream from a to b:port; returns the application's fd.
	int open_stream(uint16_t port, uint64_t *handle, int *state)
	{
		int sv[2];
		EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		EXPECT_EQ(srm_stream_open(a.engine, srm_peer_find(a.engine, "b"), port, sv[1], 0, handle), 0);
		*state = srm_stream_wait(a.engine, *handle, 10000);
		return sv[0];
	}
};

TEST_F(EngineTest, StreamCarriesBytesBothWaysAndHalfCloses)
{
	start_pair();
	int lfd = srm_listen(b.engine, 7000, nullptr, 0);
	ASSERT_GE(lfd, 0);

	uint64_t h;
	int state;
	int app = open_stream(7000, &h, &state);
	ASSERT_EQ(state, 0) << srm_strerror(state);

	int peer = -1;
	int srv = accept_wait(b.engine, lfd, 7000, &peer);
	ASSERT_GE(srv, 0);
	EXPECT_EQ(peer, srm_peer_find(b.engine, "a"));
	struct srm_stream_stats ss;
	ASSERT_EQ(srm_stream_stats(a.engine, h, &ss), 0);
	EXPECT_EQ(ss.port, 7000);
	EXPECT_TRUE(ss.outgoing);
	EXPECT_EQ(ss.state, 0);
	EXPECT_EQ(ss.peer, srm_peer_find(a.engine, "b"));

	// 4 MiB of random bytes one way, written by a thread (backpressure).
	std::string payload(4 << 20, '\0');
	randombytes_buf(payload.data(), payload.size());
	std::thread writer([&] {
		size_t off = 0;
		while (off < payload.size()) {
			ssize_t n = write(app, payload.data() + off, payload.size() - off);
			if (n <= 0)
				break;
			off += static_cast<size_t>(n);
		}
		shutdown(app, SHUT_WR); // half-close: a finished sending
	});
	std::string got = read_all(srv);
	writer.join();
	ASSERT_EQ(got.size(), payload.size());
	EXPECT_TRUE(got == payload);

	// The other direction still works after a's half-close.
	const char reply[] = "reply after half-close";
	ASSERT_EQ(write(srv, reply, sizeof(reply)), (ssize_t)sizeof(reply));
	shutdown(srv, SHUT_WR);
	EXPECT_EQ(read_all(app), std::string(reply, sizeof(reply)));
	close(app);
	close(srv);

	struct srm_peer_stats st;
	ASSERT_EQ(srm_peer_stats(a.engine, 0, &st), 0);
	EXPECT_TRUE(st.established);
	EXPECT_GT(st.srtt_us, 0u);
}

// The first stream to a new peer opens inside the handshake (its OPEN in
// the INIT, the ACCEPT in the RESP); later streams use DATA frames.
TEST_F(EngineTest, FirstStreamOpensInsideTheHandshake)
{
	// b listens before a starts: a's first INIT (PUNCH_FIRST_DELAY_MS
	// after its start, or at once for the open) is then the one that
	// carries the OPEN.
	add_peer(b, "a", a, 0);
	start(b);
	int lfd = srm_listen(b.engine, 7002, nullptr, 0);
	ASSERT_GE(lfd, 0);
	add_peer(a, "b", b, srm_engine_udp_port(b.engine));
	start(a);
	uint64_t h[2];
	int state, peer;
	int app[2], srv[2];
	for (int i = 0; i < 2; i++) {
		app[i] = open_stream(7002, &h[i], &state);
		ASSERT_EQ(state, 0) << srm_strerror(state);
		srv[i] = accept_wait(b.engine, lfd, 7002, &peer);
		ASSERT_GE(srv[i], 0);
		ASSERT_EQ(write(app[i], "hi", 2), 2);
		char buf[2];
		ASSERT_TRUE(wait_readable(srv[i], 10000));
		ASSERT_EQ(read(srv[i], buf, 2), 2);
	}
	struct srm_peer_stats sa, sb;
	ASSERT_EQ(srm_peer_stats(a.engine, 0, &sa), 0);
	ASSERT_EQ(srm_peer_stats(b.engine, 0, &sb), 0);
	EXPECT_EQ(sa.early_opens, 1u);
	EXPECT_EQ(sb.early_opens, 1u);
	for (int i = 0; i < 2; i++) {
		close(app[i]);
		close(srv[i]);
	}
}

// A restarted opener (new engine, new boot id) opens its first stream
// inside the handshake again; the responder ends the old instance's
// streams and keeps the new one (its old keypair, still current until the
// new one is confirmed, must not count as the peer's latest boot).
TEST_F(EngineTest, RestartedPeersFirstStreamOpensEarly)
{
	start_pair();
	int lfd = srm_listen(b.engine, 7003, nullptr, 0);
	ASSERT_GE(lfd, 0);
	uint64_t h;
	int state, peer;
	int old_app = open_stream(7003, &h, &state);
	ASSERT_EQ(state, 0) << srm_strerror(state);
	int old_srv = accept_wait(b.engine, lfd, 7003, &peer);
	ASSERT_GE(old_srv, 0);

	srm_engine_stop(a.engine);
	a.engine = nullptr;
	start(a);
	int app = open_stream(7003, &h, &state);
	ASSERT_EQ(state, 0) << srm_strerror(state);
	int srv = accept_wait(b.engine, lfd, 7003, &peer);
	ASSERT_GE(srv, 0);
	EXPECT_EQ(read_all(old_srv, 10000), ""); // the old instance's stream ended
	const char msg[] = "after restart";
	ASSERT_EQ(write(app, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	shutdown(app, SHUT_WR);
	EXPECT_EQ(read_all(srv, 10000), std::string(msg, sizeof(msg)));
	struct srm_peer_stats st;
	ASSERT_EQ(srm_peer_stats(a.engine, 0, &st), 0);
	EXPECT_EQ(st.early_opens, 1u);
	for (int fd : { old_app, old_srv, app, srv })
		close(fd);
}

TEST_F(EngineTest, OpenToPortWithoutListenerIsRefused)
{
	start_pair();
	uint64_t h;
	int state;
	int app = open_stream(7001, &h, &state);
	EXPECT_EQ(state, SRM_ERR_REFUSED);
	EXPECT_EQ(srm_stream_state(a.engine, h), SRM_ERR_REFUSED);
	close(app);
}

TEST_F(EngineTest, ForwardingListenerConnectsToLocalTcpServer)
{
	start_pair();
	sockaddr_storage addr;
	socklen_t len;
	int srv = local_listener(&addr, &len);
	ASSERT_GE(srv, 0);
	ASSERT_EQ(srm_listen(b.engine, 8080, (sockaddr *)&addr, len), 0);

	uint64_t h;
	int state;
	int app = open_stream(8080, &h, &state);
	ASSERT_EQ(state, 0) << srm_strerror(state);

	ASSERT_TRUE(wait_readable(srv, 10000));
	sockaddr_storage from{};
	socklen_t flen = sizeof(from);
	int conn = accept(srv, (sockaddr *)&from, &flen);
	ASSERT_GE(conn, 0);
	EXPECT_EQ(srm_forwarded_peer(b.engine, (sockaddr *)&from, flen), srm_peer_find(b.engine, "a"));

	ASSERT_EQ(write(app, "ping", 4), 4);
	char buf[8] = {};
	ASSERT_TRUE(wait_readable(conn, 10000));
	ASSERT_EQ(read(conn, buf, sizeof(buf)), 4);
	EXPECT_STREQ(buf, "ping");
	close(conn);
	// The local server closed: a sees the end of the stream.
	EXPECT_EQ(read_all(app), "");
	close(app);
	close(srv);
}

// A handoff listener: the TCP connection rings the bell; accept() claims
// the stream's socket pair, and bytes that already went over TCP come first.
TEST_F(EngineTest, HandoffListenerHandsTheStreamOverAsASocketPair)
{
	start_pair();
	sockaddr_storage addr;
	socklen_t len;
	int srv = local_listener(&addr, &len);
	ASSERT_GE(srv, 0);
	ASSERT_EQ(srm_listen_handoff(b.engine, 8081, (sockaddr *)&addr, len), 0);

	uint64_t h;
	int state;
	int app = open_stream(8081, &h, &state);
	ASSERT_EQ(state, 0) << srm_strerror(state);
	ASSERT_EQ(write(app, "before accept|", 14), 14);

	ASSERT_TRUE(wait_readable(srv, 10000));
	sockaddr_storage from{};
	socklen_t flen = sizeof(from);
	int conn = accept(srv, (sockaddr *)&from, &flen);
	ASSERT_GE(conn, 0);
	ASSERT_TRUE(wait_readable(conn, 10000)); // the first bytes went over TCP
	EXPECT_EQ(srm_forwarded_peer(b.engine, (sockaddr *)&from, flen), srm_peer_find(b.engine, "a"));
	uint64_t bh = 0;
	int pfd = srm_forwarded_claim(b.engine, (sockaddr *)&from, flen, conn, &bh);
	ASSERT_GE(pfd, 0) << srm_strerror(pfd);
	ASSERT_EQ(dup3(pfd, conn, O_CLOEXEC), conn);
	close(pfd);
	int domain = 0;
	socklen_t dl = sizeof(domain);
	ASSERT_EQ(getsockopt(conn, SOL_SOCKET, SO_DOMAIN, &domain, &dl), 0);
	EXPECT_EQ(domain, AF_UNIX);
	EXPECT_EQ(srm_stream_state(b.engine, bh), 0);
	// Claimed once: the TCP connection no longer names it.
	uint64_t again;
	EXPECT_EQ(srm_forwarded_claim(b.engine, (sockaddr *)&from, flen, conn, &again), SRM_ERR_NOTFOUND);

	ASSERT_EQ(write(app, "after", 5), 5);
	shutdown(app, SHUT_WR);
	EXPECT_EQ(read_all(conn), "before accept|after");
	ASSERT_EQ(write(conn, "reply", 5), 5);
	shutdown(conn, SHUT_WR);
	EXPECT_EQ(read_all(app), "reply");
	close(conn);
	close(app);
	close(srv);
}

// A plain forwarding listener (srmudp serve) is never claimed.
TEST_F(EngineTest, ForwardingListenerStreamsAreNotClaimed)
{
	start_pair();
	sockaddr_storage addr;
	socklen_t len;
	int srv = local_listener(&addr, &len);
	ASSERT_GE(srv, 0);
	ASSERT_EQ(srm_listen(b.engine, 8082, (sockaddr *)&addr, len), 0);
	uint64_t h;
	int state;
	int app = open_stream(8082, &h, &state);
	ASSERT_EQ(state, 0);
	ASSERT_TRUE(wait_readable(srv, 10000));
	sockaddr_storage from{};
	socklen_t flen = sizeof(from);
	int conn = accept(srv, (sockaddr *)&from, &flen);
	ASSERT_GE(conn, 0);
	uint64_t bh;
	EXPECT_EQ(srm_forwarded_claim(b.engine, (sockaddr *)&from, flen, conn, &bh), SRM_ERR_NOTFOUND);
	ASSERT_EQ(write(app, "tcp", 3), 3);
	shutdown(app, SHUT_WR);
	EXPECT_EQ(read_all(conn), "tcp");
	close(conn);
	close(app);
	close(srv);
}

TEST_F(EngineTest, ForwardTargetNotListeningRefuses)
{
	start_pair();
	// Find a free TCP port, then close it so nothing listens there.
	int tmp = socket(AF_INET, SOCK_STREAM, 0);
	sockaddr_storage addr = loopback(0);
	ASSERT_EQ(bind(tmp, (sockaddr *)&addr, sizeof(sockaddr_in)), 0);
	socklen_t len = sizeof(addr);
	getsockname(tmp, (sockaddr *)&addr, &len);
	close(tmp);
	ASSERT_EQ(srm_listen(b.engine, 9090, (sockaddr *)&addr, len), 0);

	uint64_t h;
	int state;
	int app = open_stream(9090, &h, &state);
	EXPECT_EQ(state, SRM_ERR_REFUSED);
	close(app);
}

TEST_F(EngineTest, UnlistedKeyIsRefusedAndCounted)
{
	Node stranger;
	make_key(stranger, "stranger.key");
	add_peer(b, "someone-else", stranger, 0); // b does not list a
	start(b);
	add_peer(a, "b", b, srm_engine_udp_port(b.engine));
	start(a, 1500);

	uint64_t h;
	int state;
	int app = open_stream(7000, &h, &state);
	EXPECT_EQ(state, SRM_ERR_UNREACHABLE);
	struct srm_engine_stats st;
	srm_engine_stats(b.engine, &st);
	EXPECT_GT(st.drops[SRM_DROP_UNKNOWN_PEER], 0u);
	EXPECT_EQ(st.sessions, 0u);
	close(app);
}

TEST_F(EngineTest, SilentPeerIsUnreachableWithinTimeout)
{
	int quiet;
	int port = quiet_udp_port(&quiet);
	ASSERT_GT(port, 0);
	add_peer(a, "b", b, port);
	start(a, 1000);

	uint64_t h;
	int state;
	int app = open_stream(7000, &h, &state);
	EXPECT_EQ(state, SRM_ERR_UNREACHABLE);
	close(app);
	close(quiet);
}

// Issue 18, item 3: a server started first tries the client's configured
// endpoint and times out; the client's first connection, arriving while that
// failure is still recorded, must be answered and carried, not dropped.
TEST_F(EngineTest, ServerWhoseOwnAttemptTimedOutStillCarriesTheFirstStream)
{
	// Reserve a's port: b knows it from the start, a starts later on it.
	int hold;
	int a_port = quiet_udp_port(&hold);
	ASSERT_GT(a_port, 0);
	add_peer(b, "a", a, a_port);
	start(b, 500); // b's handshake towards a fails after 0.5 s
	int lfd = srm_listen(b.engine, 7000, nullptr, 0);
	usleep(1500 * 1000);
	close(hold);
	add_peer(a, "b", b, srm_engine_udp_port(b.engine));
	start(a, 5000, nullptr, a_port);

	uint64_t h;
	int srv;
	int app = open_accepted(lfd, 7000, &h, &srv);
	ASSERT_GE(srv, 0);
	ASSERT_EQ(write(app, "ping", 4), 4);
	char buf[4];
	ASSERT_TRUE(wait_readable(srv, 5000));
	ASSERT_EQ(read(srv, buf, 4), 4);
	EXPECT_EQ(std::string(buf, 4), "ping");
	close(app);
	close(srv);
}

TEST_F(EngineTest, PeerEngineStopEndsStreams)
{
	start_pair();
	int lfd = srm_listen(b.engine, 7000, nullptr, 0);
	uint64_t h;
	int srv;
	int app = open_accepted(lfd, 7000, &h, &srv);
	ASSERT_GE(srv, 0);
	srm_engine_stop(b.engine);
	b.engine = nullptr;
	// a's side of the stream ends (reset) instead of hanging.
	EXPECT_EQ(read_all(app, 15000), "");
	EXPECT_EQ(srm_stream_state(a.engine, h), SRM_ERR_RESET);
	close(app);
	close(srv);
}

TEST_F(EngineTest, DrainDeliversWhatWasWrittenBeforeExit)
{
	start_pair();
	int lfd = srm_listen(b.engine, 7000, nullptr, 0);
	uint64_t h;
	int state;
	int app = open_stream(7000, &h, &state);
	ASSERT_EQ(state, 0);
	// Like a program that writes and exits without closing: the bytes sit
	// in the socket until the engine takes them.
	std::string payload(256 * 1024, '\0');
	randombytes_buf(payload.data(), payload.size());
	ASSERT_EQ(write(app, payload.data(), payload.size()), (ssize_t)payload.size());
	EXPECT_EQ(srm_engine_drain(a.engine, 10000), 0);
	srm_engine_stop(a.engine);
	a.engine = nullptr;
	int peer;
	int srv = accept_wait(b.engine, lfd, 7000, &peer);
	ASSERT_GE(srv, 0);
	EXPECT_TRUE(read_all(srv) == payload);
	close(app);
	close(srv);
}

TEST_F(EngineTest, TwoEnginesWithOneIdentityDoNotDisturbEachOther)
{
	start_pair();
	int lfd = srm_listen(b.engine, 7000, nullptr, 0);
	// A second engine with a's key (another program on a's host).
	Node a2;
	a2.key_path = a.key_path;
	memcpy(a2.pub, a.pub, SRM_KEY_BYTES);
	add_peer(a2, "b", b, srm_engine_udp_port(b.engine));
	start(a2);

	uint64_t h1, h2;
	int st1, st2;
	int app1 = open_stream(7000, &h1, &st1);
	ASSERT_EQ(st1, 0);
	int peer;
	int srv1 = accept_wait(b.engine, lfd, 7000, &peer);
	ASSERT_GE(srv1, 0);

	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	ASSERT_EQ(srm_stream_open(a2.engine, 0, 7000, sv[1], 0, &h2), 0);
	st2 = srm_stream_wait(a2.engine, h2, 10000);
	ASSERT_EQ(st2, 0) << srm_strerror(st2);
	int app2 = sv[0];
	int srv2 = accept_wait(b.engine, lfd, 7000, &peer);
	ASSERT_GE(srv2, 0);
	EXPECT_EQ(peer, 0); // both are "a" to the application

	// Both streams carry data, each to its own end.
	ASSERT_EQ(write(app1, "one", 3), 3);
	ASSERT_EQ(write(app2, "two", 3), 3);
	char buf[4] = {};
	ASSERT_TRUE(wait_readable(srv1, 5000));
	ASSERT_EQ(read(srv1, buf, 3), 3);
	EXPECT_STREQ(buf, "one");
	ASSERT_TRUE(wait_readable(srv2, 5000));
	ASSERT_EQ(read(srv2, buf, 3), 3);
	EXPECT_STREQ(buf, "two");
	ASSERT_EQ(write(srv1, "ONE", 3), 3);
	ASSERT_TRUE(wait_readable(app1, 5000));
	ASSERT_EQ(read(app1, buf, 3), 3);
	EXPECT_STREQ(buf, "ONE");
	EXPECT_EQ(srm_stream_state(a.engine, h1), 0);

	for (int fd : {app1, app2, srv1, srv2})
		close(fd);
	srm_engine_stop(a2.engine);
}

TEST_F(EngineTest, PaddingToMtuStillCarriesTheStream)
{
	start_pair([](srm_config *c) { c->pad = SRM_PAD_MTU; });
	struct srm_peer_stats st = transfer_mib();
	// Every packet is full size: bytes per packet near the path MTU.
	ASSERT_GT(st.packets_sent, 0u);
	EXPECT_GE(st.bytes_sent / st.packets_sent, (uint64_t)WIRE_BASE_UDP_PAYLOAD - 64);
}

TEST_F(EngineTest, RateLimitDropsAndCountsButTheStreamSurvives)
{
	// b accepts at most 200 packets/s from a: 1 MiB (700+ packets) needs
	// several seconds, and the excess is dropped and counted.
	add_peer(b, "a", a, 0);
	start(b, 5000, [](srm_config *c) { c->rate_packets = 200; });
	add_peer(a, "b", b, srm_engine_udp_port(b.engine));
	start(a);
	transfer_mib();
	struct srm_engine_stats es;
	srm_engine_stats(b.engine, &es);
	EXPECT_GT(es.drops[SRM_DROP_RATELIMIT], 0u);
}

TEST_F(EngineTest, ControlSocketDescribesPeersAndStreams)
{
	start_pair();
	int lfd = srm_listen(b.engine, 7000, nullptr, 0);
	uint64_t h;
	int state;
	int app = open_stream(7000, &h, &state);
	ASSERT_EQ(state, 0);
	(void)lfd;

	char dir[256];
	ASSERT_EQ(srm_runtime_dir(dir, sizeof(dir)), 0);
	// a started second in this process: PID-N.sock; try every engine of ours.
	std::string doc;
	// PID-N.sock: N counts every engine this test binary started.
	for (int n = 0; n < 4096 && doc.find("\"name\":\"b\"") == std::string::npos; n++) {
		std::string path = std::string(dir) + "/" + std::to_string(getpid()) +
				   (n ? "-" + std::to_string(n + 1) : "") + ".sock";
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		sockaddr_un sa{};
		sa.sun_family = AF_UNIX;
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
		if (connect(fd, (sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "status\n", 7) == 7)
			doc = read_all(fd, 5000);
		close(fd);
	}
	EXPECT_NE(doc.find("\"established\":true"), std::string::npos) << doc;
	EXPECT_NE(doc.find("\"kind\":\"direct\""), std::string::npos) << doc;
	EXPECT_NE(doc.find("\"port\":7000"), std::string::npos) << doc;
	// Drops per engine, and per peer for what can be pinned on one.
	size_t first = doc.find("\"drops\":{");
	EXPECT_NE(first, std::string::npos) << doc;
	EXPECT_NE(doc.find("\"drops\":{", first + 1), std::string::npos) << doc;
	close(app);
}

} // namespace
