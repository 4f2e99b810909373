// engine_via_test.cc — connect via with real engines on loopback
// (core/driver/engine_via.c): a reaches b, whose address it does not
// know, through the one peer of six that lists b, whatever its place in
// a's list: the peers offered to a handshake rotate.
#include <gtest/gtest.h>

#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "engine_node.h"

namespace {

TEST(EngineVia, AForwarderPastTheFirstFourIsFound)
{
	ASSERT_GE(sodium_init(), 0);
	std::string dir = temp_dir();
	Node a, b, f[6];
	node_key(a, dir, "a.key");
	node_key(b, dir, "b.key");
	for (int i = 0; i < 6; i++)
		node_key(f[i], dir, ("f" + std::to_string(i) + ".key").c_str());
	// b knows a and the forwarder by key only: the forwarder reaches b.
	node_add_peer(b, "a", a, 0);
	node_add_peer(b, "fwd", f[5], 0);
	node_start(b, 5000, nullptr, 0);
	ASSERT_GE(srm_listen(b.engine, 7000, nullptr, 0), 0);
	int b_port = srm_engine_udp_port(b.engine);
	// f[0..4] list a only (they refuse to forward to b); f[5] lists b too.
	for (int i = 0; i < 6; i++) {
		node_add_peer(f[i], "a", a, 0);
		if (i == 5)
			node_add_peer(f[i], "b", b, b_port);
		node_start(f[i], 5000, nullptr, 0);
	}
	// a lists b without an address, and the six with theirs, the one that
	// can forward last: a handshake goes through four peers at a time.
	node_add_peer(a, "b", b, 0);
	for (int i = 0; i < 6; i++)
		node_add_peer(a, ("f" + std::to_string(i)).c_str(), f[i], srm_engine_udp_port(f[i].engine));
	node_start(a, 15000, nullptr, 0, dir + "/a.log");
	usleep(500 * 1000); // a's direct sessions with the six
	int sv[2];
	ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	uint64_t h;
	ASSERT_EQ(srm_stream_open(a.engine, srm_peer_find(a.engine, "b"), 7000, sv[1], 0, &h), 0);
	EXPECT_EQ(srm_stream_wait(a.engine, h, 15000), 0);
	close(sv[0]);
	std::string log;
	char buf[4096];
	FILE *fp = fopen((dir + "/a.log").c_str(), "r");
	ASSERT_NE(fp, nullptr);
	for (size_t n; (n = fread(buf, 1, sizeof buf, fp)) > 0;)
		log.append(buf, n);
	fclose(fp);
	EXPECT_NE(log.find("peer=b: path: via f5"), std::string::npos) << log;
	for (Node *n : { &a, &b, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5] })
		srm_engine_stop(n->engine);
	ASSERT_EQ(system(("rm -rf " + dir).c_str()), 0);
}

} // namespace
