// engine_unreachable_test.cc — a peer that does not answer (issue 18, items
// 4 and 6): one failed open is reported once at warn, the next opens fail at
// once for a short hold (a program trying the peer's IPv4 and then its IPv6
// address waits one timeout, not two), the hold ends by itself or when the
// peer handshakes with us, and a handshake attempt older than a stream is
// tried again for it instead of failing it (info, not warn).
#include <gtest/gtest.h>

#include <poll.h>
#include <sodium.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "engine_node.h"

namespace {

uint64_t mono_ms()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

class Unreachable : public ::testing::Test {
protected:
	std::string dir;
	Node a, b;
	int hold_b = -1; // b's UDP port, held while b is not running

	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		dir = temp_dir();
		node_key(a, dir, "a.key");
		node_key(b, dir, "b.key");
	}

	void TearDown() override
	{
		for (Node *n : { &a, &b })
			if (n->engine)
				srm_engine_stop(n->engine);
		if (hold_b >= 0)
			close(hold_b);
		ASSERT_EQ(system(("rm -rf " + dir).c_str()), 0);
	}

	// a runs (logging to dir/a.log), and knows b at a port where nothing
	// answers yet; returns that port.
	int a_with_silent_b(uint32_t connect_timeout_ms)
	{
		int port = quiet_udp_port(&hold_b);
		EXPECT_GT(port, 0);
		node_add_peer(a, "b", b, port);
		node_start(a, connect_timeout_ms, nullptr, 0, dir + "/a.log");
		return port;
	}

	// b comes up on port (where a looks for it), knowing a.
	void b_appears(int port)
	{
		close(hold_b);
		hold_b = -1;
		node_add_peer(b, "a", a, srm_engine_udp_port(a.engine));
		node_start(b, 5000, nullptr, port, dir + "/b.log");
	}

	// srm_stream_open's result; on success *state is the stream's end
	// state after waiting.  *fd is the application's end (closed by the
	// caller).
	static int open_to(Node &s, const char *peer, uint16_t port, int *state, int *fd)
	{
		int sv[2];
		EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		*fd = sv[0];
		uint64_t h;
		int rc = srm_stream_open(s.engine, srm_peer_find(s.engine, peer), port, sv[1], 0, &h);
		*state = rc == 0 ? srm_stream_wait(s.engine, h, 15000) : rc;
		return rc;
	}

	// The status document that describes peer (engines of one process
	// are PID.sock, PID-2.sock, ...: try each).
	static std::string control_doc(const char *peer)
	{
		char rd[256];
		if (srm_runtime_dir(rd, sizeof(rd)) != 0)
			return "";
		std::string want = std::string("\"name\":\"") + peer + "\"";
		// PID-N.sock: N counts every engine this test binary started.
		for (int n = 0; n < 4096; n++) {
			std::string path = std::string(rd) + "/" + std::to_string(getpid()) +
					   (n ? "-" + std::to_string(n + 1) : "") + ".sock";
			int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			sockaddr_un sa{};
			sa.sun_family = AF_UNIX;
			snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path.c_str());
			std::string out;
			if (connect(fd, (sockaddr *)&sa, sizeof(sa)) == 0 &&
			    write(fd, "status\n", 7) == 7) {
				char buf[4096];
				pollfd p{fd, POLLIN, 0};
				ssize_t got;
				while (poll(&p, 1, 2000) == 1 && (got = read(fd, buf, sizeof(buf))) > 0)
					out.append(buf, (size_t)got);
			}
			close(fd);
			if (out.find(want) != std::string::npos)
				return out;
		}
		return "";
	}

	// Lines of dir/LOG containing what.
	int lines_with(const char *log, const std::string &what)
	{
		std::ifstream f(dir + "/" + log);
		std::string line;
		int n = 0;
		while (std::getline(f, line))
			n += line.find(what) != std::string::npos;
		return n;
	}
};

TEST_F(Unreachable, NextOpenFailsAtOnceThenRetriesAfterTheHold)
{
	a_with_silent_b(600);

	int state, fd;
	uint64_t t0 = mono_ms();
	ASSERT_EQ(open_to(a, "b", 7000, &state, &fd), 0);
	EXPECT_EQ(state, SRM_ERR_UNREACHABLE);
	uint64_t failed = mono_ms();
	EXPECT_GE(failed - t0, 500u) << "the first open waits its timeout";
	close(fd);

	// The program's next try (the peer's other address): at once, same error.
	EXPECT_EQ(open_to(a, "b", 7000, &state, &fd), SRM_ERR_UNREACHABLE);
	EXPECT_LT(mono_ms() - failed, 100u);
	close(fd);
	EXPECT_EQ(open_to(a, "b", 7000, &state, &fd), SRM_ERR_UNREACHABLE);
	close(fd);
	EXPECT_EQ(lines_with("a.log", "warn peer=b: handshake failed"), 1);
	EXPECT_EQ(lines_with("a.log", "new connections fail at once"), 1);
	// Status (item 7): no transport state, so no RTT (not one of 0).
	std::string doc = control_doc("b");
	EXPECT_NE(doc.find("\"name\":\"b\""), std::string::npos) << doc;
	EXPECT_EQ(doc.find("\"rtt_ms\""), std::string::npos) << doc;

	// After the hold a new open really tries again, for a whole timeout.
	usleep(3200 * 1000);
	uint64_t t1 = mono_ms();
	ASSERT_EQ(open_to(a, "b", 7000, &state, &fd), 0);
	EXPECT_EQ(state, SRM_ERR_UNREACHABLE);
	EXPECT_GE(mono_ms() - t1, 500u);
	close(fd);
	EXPECT_EQ(lines_with("a.log", "warn peer=b: handshake failed"), 2);
}

TEST_F(Unreachable, PeersHandshakeEndsTheHold)
{
	int b_port = a_with_silent_b(600);
	int lfd_a = srm_listen(a.engine, 7001, nullptr, 0);
	ASSERT_GE(lfd_a, 0);

	int state, fd;
	ASSERT_EQ(open_to(a, "b", 7000, &state, &fd), 0);
	ASSERT_EQ(state, SRM_ERR_UNREACHABLE);
	uint64_t failed = mono_ms();
	close(fd);

	// b comes up where a looks for it and reaches a first.
	b_appears(b_port);
	int lfd_b = srm_listen(b.engine, 7000, nullptr, 0);
	ASSERT_GE(lfd_b, 0);
	int bfd;
	ASSERT_EQ(open_to(b, "a", 7001, &state, &bfd), 0);
	ASSERT_EQ(state, 0);

	// Still inside a's hold, and a's open goes through.
	ASSERT_LT(mono_ms() - failed, 2500u);
	ASSERT_EQ(open_to(a, "b", 7000, &state, &fd), 0);
	EXPECT_EQ(state, 0);
	close(fd);
	close(bfd);
}

TEST_F(Unreachable, AttemptOlderThanTheStreamIsTriedAgainForIt)
{
	// a handshakes with b as it starts (a known endpoint); that attempt
	// times out 2 s later.
	int b_port = a_with_silent_b(2000);
	usleep(1200 * 1000);

	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uint64_t h;
	ASSERT_EQ(srm_stream_open(a.engine, srm_peer_find(a.engine, "b"), 7000, sv[1], 0, &h), 0);
	// b appears after the start's attempt failed, before the stream's own
	// timeout: the stream is carried.
	usleep(1100 * 1000);
	EXPECT_EQ(srm_stream_state(a.engine, h), SRM_ERR_AGAIN) << "failed with an attempt older than it";
	b_appears(b_port);
	ASSERT_GE(srm_listen(b.engine, 7000, nullptr, 0), 0);
	EXPECT_EQ(srm_stream_wait(a.engine, h, 5000), 0);
	close(sv[0]);
	// The failed attempt that the stream outlived is info, not warn.
	EXPECT_EQ(lines_with("a.log", "warn peer=b: handshake failed"), 0);
	EXPECT_GE(lines_with("a.log", "info peer=b: handshake failed"), 1);
}

} // namespace
