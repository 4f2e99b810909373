// The gate cache file (core/config/gate_cache.c): lines read strictly,
// errors name the token, entries round-trip through the file, and old
// ones are forgotten.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

extern "C" {
#include "gate_cache.h"
}

static const char *const KEY = "ju1bJYb7VStF4tVvvv1ErYVi6sHS4FWC52qeVF5ykBY";

TEST(GateCache, ParsesALineAndNamesTheBadToken)
{
	gate_cache_entry e;
	char err[256];
	std::string ok = std::string(KEY) + " 198.18.0.2:4600 8080 0 1765040000";
	ASSERT_EQ(gate_cache_parse_line(ok.c_str(), ok.size(), &e, err, sizeof err), 1);
	EXPECT_EQ(e.udp.ss_family, AF_INET);
	EXPECT_EQ(ntohs(((sockaddr_in *)&e.udp)->sin_port), 4600);
	EXPECT_EQ(e.ws_port, 8080);
	EXPECT_EQ(e.seen, 1765040000u);
	EXPECT_EQ(gate_cache_parse_line("# note", 6, &e, err, sizeof err), 0);
	EXPECT_EQ(gate_cache_parse_line("  ", 2, &e, err, sizeof err), 0);
	struct {
		std::string line, token;
	} bad[] = {
		{ std::string(KEY) + " 198.18.0.2:0 8080 0 1", "198.18.0.2:0" },
		{ std::string(KEY) + " [::1:4600 8080 0 1", "[::1:4600" },
		{ std::string(KEY) + " 198.18.0.2:4600 65536 0 1", "65536" },
		{ std::string(KEY) + " 198.18.0.2:4600 80 2 1", "TLS flag (0 or 1) \"2\"" },
		{ std::string(KEY) + " 198.18.0.2:4600 80 1", "time" },
		{ std::string(KEY) + " 198.18.0.2:4600 80 1 5 extra", "extra" },
		{ "nokey 198.18.0.2:4600 80 1 5", "nokey" },
	};
	for (auto &b : bad) {
		EXPECT_EQ(gate_cache_parse_line(b.line.c_str(), b.line.size(), &e, err, sizeof err),
			  SRM_ERR_INVALID)
			<< b.line;
		EXPECT_NE(std::string(err).find(b.token), std::string::npos)
			<< err;
	}
}

TEST(GateCache, SavesLoadsAndForgetsOldEntries)
{
	char dir[] = "/tmp/gate-cache-XXXXXX";
	ASSERT_NE(mkdtemp(dir), nullptr);
	std::string path = std::string(dir) + "/a/b/gates";
	gate_cache_entry in[2]{};
	ASSERT_EQ(srm_pubkey_decode(KEY, in[0].key), 0);
	sockaddr_in6 *v6 = (sockaddr_in6 *)&in[0].udp;
	v6->sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::1", &v6->sin6_addr);
	v6->sin6_port = htons(4500);
	in[0].udp_len = sizeof(*v6);
	in[0].ws_port = 443;
	in[0].wss = 1;
	in[0].seen = 2000000000;
	in[1] = in[0];
	in[1].key[0] ^= 1;
	in[1].seen = 1000; // long forgotten
	char err[512], warn[512];
	ASSERT_EQ(gate_cache_save(path.c_str(), in, 2, err, sizeof err), 0) << err;
	struct stat st;
	ASSERT_EQ(stat(path.c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600u);
	gate_cache_entry out[GATE_CACHE_MAX];
	size_t n = gate_cache_load(path.c_str(), 2000000100, out, GATE_CACHE_MAX, warn, sizeof warn);
	ASSERT_EQ(n, 1u);
	EXPECT_EQ(warn[0], '\0');
	EXPECT_EQ(memcmp(out[0].key, in[0].key, 32), 0);
	EXPECT_EQ(memcmp(&out[0].udp, &in[0].udp, sizeof(*v6)), 0);
	EXPECT_EQ(out[0].wss, 1);
	// A line someone broke: skipped, the rest still read, one warning.
	FILE *f = fopen(path.c_str(), "a");
	fputs("garbage\n", f);
	fclose(f);
	n = gate_cache_load(path.c_str(), 2000000100, out, GATE_CACHE_MAX, warn, sizeof warn);
	EXPECT_EQ(n, 1u);
	EXPECT_NE(std::string(warn).find("gates:4: bad public key \"garbage\""), std::string::npos)
		<< warn;
	EXPECT_EQ(gate_cache_load("/nonexistent/gates", 0, out, GATE_CACHE_MAX, warn, sizeof warn), 0u);
	std::string rm = std::string("rm -rf ") + dir;
	ASSERT_EQ(system(rm.c_str()), 0);
}
