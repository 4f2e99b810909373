// engine_reload_test.cc — srm_engine_reload (core/driver/engine_reload.c),
// issue 18 item 2: two (or three) real engines on loopback; a's peers
// change under it while streams run.
#include <gtest/gtest.h>

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "engine_node.h"

namespace {

using Clock = std::chrono::steady_clock;

class EngineReload : public ::testing::Test {
protected:
	std::string dir;
	Node a, b, c;

	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		dir = temp_dir();
		node_key(a, dir, "a.key");
		node_key(b, dir, "b.key");
		node_key(c, dir, "c.key");
	}

	void TearDown() override
	{
		for (Node *n : { &a, &b, &c })
			if (n->engine)
				srm_engine_stop(n->engine);
		std::string cmd = "rm -rf " + dir;
		ASSERT_EQ(system(cmd.c_str()), 0);
	}

	static int port(const Node &n) { return srm_engine_udp_port(n.engine); }

	// b (and with c_too, c) know a; a knows b at its address.
	void start_pair(bool c_too, uint32_t b_timeout_ms = 5000)
	{
		node_add_peer(b, "a", a, 0);
		node_start(b, b_timeout_ms, nullptr, 0);
		if (c_too) {
			node_add_peer(c, "a", a, 0);
			node_start(c, 5000, nullptr, 0);
		}
		node_add_peer(a, "b", b, port(b));
	}

	// start_pair, a started, and a stream from a to b (stream_to_b).
	int pair_with_stream(bool c_too, uint64_t *h, int *srv)
	{
		start_pair(c_too);
		node_start(a, 5000, nullptr, 0);
		return stream_to_b(h, srv);
	}

	// a's configuration as it runs, with peers instead of its own.
	int reload(const std::vector<srm_peer_config> &peers, std::string *msg,
		   void (*tweak)(srm_config *) = nullptr)
	{
		srm_config cfg = a.cfg;
		cfg.peers = const_cast<srm_peer_config *>(peers.data());
		cfg.peer_count = peers.size();
		if (tweak)
			tweak(&cfg);
		char buf[1024] = "";
		int rc = srm_engine_reload(a.engine, &cfg, buf, sizeof(buf));
		*msg = buf;
		return rc;
	}

	// A stream from a to peer name:port, open: a's application end.
	static int open_stream(Node &from, const char *name, uint16_t port, uint64_t *h, int *state)
	{
		int sv[2];
		EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		int rc = srm_stream_open(from.engine, srm_peer_find(from.engine, name), port, sv[1], 0, h);
		*state = rc < 0 ? rc : srm_stream_wait(from.engine, *h, 10000);
		return sv[0];
	}

	// The stream's far end on to's listener lfd (queue mode).
	static int accept_on(Node &to, int lfd, uint16_t port)
	{
		pollfd p{ lfd, POLLIN, 0 };
		if (poll(&p, 1, 10000) != 1)
			return -1;
		int peer;
		return srm_accept(to.engine, port, &peer);
	}

	// b listens on 7000 and a opens a stream to it: a's end; b's in *srv.
	int stream_to_b(uint64_t *h, int *srv)
	{
		int lfd = srm_listen(b.engine, 7000, nullptr, 0);
		int state;
		int app = open_stream(a, "b", 7000, h, &state);
		EXPECT_EQ(state, 0);
		*srv = accept_on(b, lfd, 7000);
		EXPECT_GE(*srv, 0);
		return app;
	}

	// Bytes go both ways over a fresh stream from a to name (whose engine
	// is to, listening on port).
	void expect_works(const char *name, Node &to, uint16_t port)
	{
		int lfd = srm_listen(to.engine, port, nullptr, 0);
		ASSERT_GE(lfd, 0);
		uint64_t h;
		int state;
		int app = open_stream(a, name, port, &h, &state);
		ASSERT_EQ(state, 0) << srm_strerror(state);
		int srv = accept_on(to, lfd, port);
		ASSERT_GE(srv, 0);
		ASSERT_EQ(write(app, "ping", 4), 4);
		char buf[8] = "";
		pollfd p{ srv, POLLIN, 0 };
		ASSERT_EQ(poll(&p, 1, 5000), 1);
		ASSERT_EQ(read(srv, buf, sizeof(buf)), 4);
		EXPECT_EQ(std::string(buf, 4), "ping");
		close(app);
		close(srv);
		srm_unlisten(to.engine, port);
	}
};

// Milliseconds until fd ends (EOF or an error), at most ms; -1 if it did not.
long ends_within(int fd, int ms)
{
	auto t0 = Clock::now();
	pollfd p{ fd, POLLIN, 0 };
	while (poll(&p, 1, ms) == 1) {
		char buf[4096];
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0)
				.count();
	}
	return -1;
}

TEST_F(EngineReload, RemovedPeerIsResetWithinASecondAndRefusedAfter)
{
	start_pair(false, 1500);
	node_add_peer(a, "c", c, 0); // stays: its index must not move
	node_start(a, 5000, nullptr, 0);
	int b_index = srm_peer_find(a.engine, "b"), c_index = srm_peer_find(a.engine, "c");

	uint64_t h;
	int srv;
	int app = stream_to_b(&h, &srv);
	ASSERT_GE(srv, 0);

	std::string msg;
	std::vector<srm_peer_config> peers = { a.peers[1] };
	ASSERT_EQ(reload(peers, &msg), 0) << msg;
	EXPECT_NE(msg.find("removed b"), std::string::npos) << msg;
	EXPECT_NE(msg.find("1 peer"), std::string::npos) << msg;

	// Both ends of the stream end within a second: ours at once, the
	// peer's on our CLOSE (not at its 30 s idle timeout).
	long ours = ends_within(app, 1000), theirs = ends_within(srv, 1000);
	EXPECT_GE(ours, 0);
	EXPECT_GE(theirs, 0);
	EXPECT_EQ(srm_stream_state(a.engine, h), SRM_ERR_RESET);

	// Gone from the API; the index that stood for it stands for nobody.
	EXPECT_EQ(srm_peer_find(a.engine, "b"), SRM_ERR_NOTFOUND);
	srm_peer_config pc;
	EXPECT_EQ(srm_peer_get(a.engine, b_index, &pc), SRM_ERR_NOTFOUND);
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	EXPECT_EQ(srm_stream_open(a.engine, b_index, 7000, sv[1], 0, &h), SRM_ERR_NOTFOUND);
	close(sv[0]);
	EXPECT_EQ(srm_peer_find(a.engine, "c"), c_index);

	// b still lists a, but a no longer lists b: b's next stream fails.
	int back_lfd = srm_listen(a.engine, 7001, nullptr, 0);
	ASSERT_GE(back_lfd, 0);
	uint64_t hb;
	int bstate;
	int bapp = open_stream(b, "a", 7001, &hb, &bstate);
	EXPECT_NE(bstate, 0);
	close(bapp);
	struct srm_engine_stats st;
	srm_engine_stats(a.engine, &st);
	EXPECT_EQ(st.peers, 1u);
	close(app);
	close(srv);
}

TEST_F(EngineReload, AddedPeerIsUsableAtOnceAndNeverTakesARemovedIndex)
{
	node_add_peer(b, "a", a, 0);
	node_start(b, 5000, nullptr, 0);
	node_add_peer(c, "a", a, 0);
	node_start(c, 5000, nullptr, 0);
	node_add_peer(a, "c", c, port(c));
	node_start(a, 5000, nullptr, 0);
	EXPECT_EQ(srm_peer_find(a.engine, "b"), SRM_ERR_NOTFOUND);

	// Add b: usable at once, at a new index.
	std::string msg;
	std::vector<srm_peer_config> peers = a.peers;
	node_add_peer(a, "b", b, port(b));
	peers.push_back(a.peers.back());
	ASSERT_EQ(reload(peers, &msg), 0) << msg;
	EXPECT_NE(msg.find("added b"), std::string::npos) << msg;
	EXPECT_EQ(srm_peer_find(a.engine, "c"), 0);
	EXPECT_EQ(srm_peer_find(a.engine, "b"), 1);
	expect_works("b", b, 7000);

	// Remove c, then add it back: a new index, not 0 (a program may still
	// hold the old virtual address of c; it must not reach anyone).
	ASSERT_EQ(reload({ peers[1] }, &msg), 0) << msg;
	ASSERT_EQ(reload({ peers[1], peers[0] }, &msg), 0) << msg;
	EXPECT_EQ(srm_peer_find(a.engine, "b"), 1);
	EXPECT_EQ(srm_peer_find(a.engine, "c"), 2);
	srm_peer_config pc;
	EXPECT_EQ(srm_peer_get(a.engine, 0, &pc), SRM_ERR_NOTFOUND);
	expect_works("c", c, 7001);
	expect_works("b", b, 7002);

	// Reloading the same list again changes nothing.
	ASSERT_EQ(reload({ peers[1], peers[0] }, &msg), 0) << msg;
	EXPECT_NE(msg.find("nothing changed"), std::string::npos) << msg;
}

TEST_F(EngineReload, RekeyedPeerLosesItsSessionAndKeepsItsIndex)
{
	uint64_t h;
	int srv;
	int app = pair_with_stream(true, &h, &srv);
	ASSERT_GE(srv, 0);

	// "b" is now c's key, at c's address (the host was replaced).
	std::string msg;
	Node tmp;
	node_add_peer(tmp, "b", c, port(c));
	ASSERT_EQ(reload(tmp.peers, &msg), 0) << msg;
	EXPECT_NE(msg.find("re-keyed b"), std::string::npos) << msg;
	EXPECT_GE(ends_within(app, 1000), 0);
	EXPECT_GE(ends_within(srv, 1000), 0);
	EXPECT_EQ(srm_stream_state(a.engine, h), SRM_ERR_RESET);
	EXPECT_EQ(srm_peer_find(a.engine, "b"), 0);
	srm_peer_config pc;
	ASSERT_EQ(srm_peer_get(a.engine, 0, &pc), 0);
	EXPECT_EQ(memcmp(pc.pubkey, c.pub, SRM_KEY_BYTES), 0);
	expect_works("b", c, 7001);
	close(app);
	close(srv);
}

TEST_F(EngineReload, NewEndpointIsWhereHandshakesGo)
{
	node_add_peer(b, "a", a, 0);
	node_start(b, 5000, nullptr, 0);
	int quiet_fd, quiet = quiet_udp_port(&quiet_fd);
	ASSERT_GT(quiet, 0);
	node_add_peer(a, "b", b, quiet); // a wrong (stale) address
	node_start(a, 1500, nullptr, 0);
	uint64_t h;
	int state;
	int app = open_stream(a, "b", 7000, &h, &state);
	EXPECT_NE(state, 0);
	close(app);

	std::string msg;
	std::vector<srm_peer_config> peers = a.peers;
	peers[0].endpoint = loopback(port(b));
	ASSERT_EQ(reload(peers, &msg), 0) << msg;
	EXPECT_NE(msg.find("new endpoint for b"), std::string::npos) << msg;
	usleep(3100 * 1000); // the unreachable hold (3 s) after the failure ends
	expect_works("b", b, 7000);
	close(quiet_fd);
}

void other_listen_port(srm_config *cfg)
{
	((sockaddr_in *)&cfg->listen)->sin_port = htons(9);
	cfg->log_level = SRM_LOG_ERROR;
}

TEST_F(EngineReload, RefusedReloadChangesNothingAndRestartOnlySettingsAreNamed)
{
	uint64_t h;
	int srv;
	int app = pair_with_stream(false, &h, &srv);
	ASSERT_GE(srv, 0);

	// Another key: refused as a whole, even with a valid peer list.
	std::string msg;
	ASSERT_EQ(reload({}, &msg, [](srm_config *cfg) { snprintf(cfg->key_path, 16, "/other.key"); }),
		  SRM_ERR_INVALID);
	EXPECT_NE(msg.find("SRMUDP_KEY"), std::string::npos) << msg;
	EXPECT_NE(msg.find("nothing reloaded"), std::string::npos) << msg;
	// A peer with our own key: refused.
	Node self;
	node_add_peer(self, "me", a, 0);
	ASSERT_EQ(reload(self.peers, &msg), SRM_ERR_INVALID);
	EXPECT_NE(msg.find("own public key"), std::string::npos) << msg;
	// The stream still carries bytes, the peer is still there.
	EXPECT_EQ(srm_stream_state(a.engine, h), 0);
	ASSERT_EQ(write(app, "x", 1), 1);
	char ch;
	pollfd p{ srv, POLLIN, 0 };
	ASSERT_EQ(poll(&p, 1, 5000), 1);
	EXPECT_EQ(read(srv, &ch, 1), 1);

	// A new listen port cannot apply; the log level can.
	ASSERT_EQ(reload(a.peers, &msg, other_listen_port), 0) << msg;
	EXPECT_NE(msg.find("changed SRMUDP_LOG"), std::string::npos) << msg;
	EXPECT_NE(msg.find("needs a restart: SRMUDP_LISTEN"), std::string::npos) << msg;
	EXPECT_EQ(srm_stream_state(a.engine, h), 0);
	close(app);
	close(srv);
}

} // namespace

namespace {

// SRMUDP_ALLOW changes at a reload, for the streams peers open after.
TEST_F(EngineReload, AccessRulesApplyToNewStreams)
{
	uint64_t h;
	int srv;
	int app = pair_with_stream(false, &h, &srv);
	ASSERT_GE(srv, 0);
	int lfd = srm_listen(a.engine, 7005, nullptr, 0);
	ASSERT_GE(lfd, 0);
	uint64_t hb;
	int state;
	close(open_stream(b, "a", 7005, &hb, &state));
	EXPECT_EQ(state, 0) << "b reaches a's listener before";

	std::string msg;
	ASSERT_EQ(reload(a.peers, &msg, [](srm_config *cfg) { cfg->allow_set = 1; }), 0) << msg;
	EXPECT_NE(msg.find("changed SRMUDP_ALLOW"), std::string::npos) << msg;
	close(open_stream(b, "a", 7005, &hb, &state));
	EXPECT_EQ(state, SRM_ERR_REFUSED) << "no rule lets b in any more";
	EXPECT_EQ(srm_stream_state(a.engine, h), 0) << "the stream already open stays";
	close(app);
	close(srv);
	close(lfd);
}

} // namespace
