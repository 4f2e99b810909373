// access_test.cc — core/config/access.c: SRMUDP_EXPOSE and SRMUDP_ALLOW
// (good values, the exact one-line error for each bad one, the file),
// srm_access_check, and two real engines on loopback refusing what the
// rule refuses (as a closed port, counted).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "config_env.h"
#include "engine_node.h"
#include "log.h"
#include "srmudp.h"

namespace {

void ClearEnv() { ClearSrmudpEnv(); }

class AccessConfigTest : public ::testing::Test {
protected:
	srm_config cfg_{};
	char err_[512] = "";

	void SetUp() override
	{
		ClearEnv();
		std::string peers = "alice=" + Key(1) + " bob=" + Key(2) + " carol=" + Key(3);
		setenv("SRMUDP_PEERS", peers.c_str(), 1);
	}
	void TearDown() override
	{
		srm_config_free(&cfg_);
		ClearEnv();
		log_open(SRM_LOG_WARN, nullptr);
	}
	int Load()
	{
		srm_config_free(&cfg_);
		err_[0] = '\0';
		return srm_config_from_env(&cfg_, err_, sizeof(err_));
	}
	// The error for VAR=value, or "" when it parses.
	std::string Error(const char *var, const char *value)
	{
		setenv(var, value, 1);
		int rc = Load();
		unsetenv(var);
		return rc == 0 ? "" : err_;
	}
	std::vector<uint16_t> Exposed() const
	{
		return std::vector<uint16_t>(cfg_.expose, cfg_.expose + cfg_.expose_count);
	}
	// "peer:port ..." of the ALLOW rules, port 0 for *.
	std::string Rules() const
	{
		std::string s;
		for (size_t i = 0; i < cfg_.allow_count; i++)
			s += (i ? " " : "") + std::string(cfg_.allow[i].peer) + ":" +
			     std::to_string(cfg_.allow[i].port);
		return s;
	}
};

TEST_F(AccessConfigTest, DefaultsExposeNothingAndAllowEveryPeer)
{
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.expose_count, 0u);
	EXPECT_EQ(cfg_.allow_set, 0);
	EXPECT_EQ(cfg_.allow_count, 0u);
	// Set but empty counts as unset.
	setenv("SRMUDP_ALLOW", "", 1);
	setenv("SRMUDP_EXPOSE", "", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.allow_set, 0);
	EXPECT_EQ(cfg_.expose_count, 0u);
}

TEST_F(AccessConfigTest, ExposeGood)
{
	setenv("SRMUDP_EXPOSE", "8080", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(Exposed(), (std::vector<uint16_t>{ 8080 }));
	// Commas or whitespace; sorted; repeats kept once; the whole range.
	setenv("SRMUDP_EXPOSE", " 6379,22 8080\t22,,65535 1 ", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(Exposed(), (std::vector<uint16_t>{ 1, 22, 6379, 8080, 65535 }));
}

TEST_F(AccessConfigTest, ExposeBad)
{
	EXPECT_EQ(Error("SRMUDP_EXPOSE", "0"), "SRMUDP_EXPOSE: bad port \"0\" (expected 1 to 65535)");
	EXPECT_EQ(Error("SRMUDP_EXPOSE", "22,65536"),
		  "SRMUDP_EXPOSE: bad port \"65536\" (expected 1 to 65535)");
	EXPECT_EQ(Error("SRMUDP_EXPOSE", "http"),
		  "SRMUDP_EXPOSE: bad port \"http\" (expected 1 to 65535)");
	EXPECT_EQ(Error("SRMUDP_EXPOSE", "80-90"),
		  "SRMUDP_EXPOSE: bad port \"80-90\" (expected 1 to 65535)");
	EXPECT_EQ(Error("SRMUDP_EXPOSE", "*"), "SRMUDP_EXPOSE: bad port \"*\" (expected 1 to 65535)");
	EXPECT_EQ(Error("SRMUDP_EXPOSE", " , "),
		  "SRMUDP_EXPOSE: no port in \" , \" (expected PORT[,PORT...])");
	EXPECT_EQ(Error("SRMUDP_EXPOSE", "123456789"),
		  "SRMUDP_EXPOSE: bad port \"123456789\" (expected 1 to 65535)");
}

TEST_F(AccessConfigTest, AllowGood)
{
	setenv("SRMUDP_ALLOW", "bob=*  alice=8080,22,22\nCAROL=443", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.allow_set, 1);
	// Sorted by name, then port; names in lowercase.
	EXPECT_EQ(Rules(), "alice:22 alice:8080 bob:0 carol:443");
}

TEST_F(AccessConfigTest, AllowBad)
{
	const char *v = "SRMUDP_ALLOW";
	EXPECT_EQ(Error(v, "alicr=22"), "SRMUDP_ALLOW: unknown peer \"alicr\" (did you mean alice?)");
	EXPECT_EQ(Error(v, "dave=22"), "SRMUDP_ALLOW: unknown peer \"dave\" (not in SRMUDP_PEERS)");
	EXPECT_EQ(Error(v, "alice"),
		  "SRMUDP_ALLOW: expected NAME=PORT[,PORT...] or NAME=*, got \"alice\"");
	EXPECT_EQ(Error(v, "alice="),
		  "SRMUDP_ALLOW: expected NAME=PORT[,PORT...] or NAME=*, got \"alice=\"");
	EXPECT_EQ(Error(v, "=22"), "SRMUDP_ALLOW: expected NAME=PORT[,PORT...] or NAME=*, got \"=22\"");
	EXPECT_EQ(Error(v, "alice=22,ssh"),
		  "SRMUDP_ALLOW: bad port \"ssh\" for peer \"alice\" (expected 1 to 65535, or * alone)");
	EXPECT_EQ(Error(v, "alice=22,*"),
		  "SRMUDP_ALLOW: bad port \"*\" for peer \"alice\" (expected 1 to 65535, or * alone)");
	EXPECT_EQ(Error(v, "alice=0"),
		  "SRMUDP_ALLOW: bad port \"0\" for peer \"alice\" (expected 1 to 65535, or * alone)");
	EXPECT_EQ(Error(v, "alice=22,"),
		  "SRMUDP_ALLOW: bad port \"\" for peer \"alice\" (trailing ',')");
	EXPECT_EQ(Error(v, "alice=22 bob=* Alice=80"), "SRMUDP_ALLOW: peer \"alice\" has two rules");
	EXPECT_EQ(Error(v, " \t"),
		  "SRMUDP_ALLOW: no rule in \" \\x09\" (expected NAME=PORT[,PORT...] or NAME=*)");
	// Names are checked against the final peer list.
	unsetenv("SRMUDP_PEERS");
	EXPECT_EQ(Error(v, "alice=22"), "SRMUDP_ALLOW: unknown peer \"alice\" (not in SRMUDP_PEERS)");
}

TEST_F(AccessConfigTest, FileKeysAndEnvironmentWins)
{
	char tmpl[] = "/tmp/srmudp-access-XXXXXX";
	ASSERT_NE(mkdtemp(tmpl), nullptr);
	std::string path = std::string(tmpl) + "/c.conf";
	std::ofstream(path) << "EXPOSE = 8080, 6379\nallow = \"alice=22 bob=*\"  # comment\n";
	setenv("SRMUDP_CONFIG", path.c_str(), 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(Exposed(), (std::vector<uint16_t>{ 6379, 8080 }));
	EXPECT_EQ(Rules(), "alice:22 bob:0");
	setenv("SRMUDP_ALLOW", "carol=1", 1);
	setenv("SRMUDP_EXPOSE", "9", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(Exposed(), (std::vector<uint16_t>{ 9 }));
	EXPECT_EQ(Rules(), "carol:1");
	unsetenv("SRMUDP_ALLOW");
	unsetenv("SRMUDP_EXPOSE");
	std::ofstream(path) << "ALLOW = bop=22\n";
	ASSERT_NE(Load(), 0);
	EXPECT_EQ(std::string(err_),
		  path + ":1: SRMUDP_ALLOW: unknown peer \"bop\" (did you mean bob?)");
	std::ofstream(path) << "EXPOSE = 22\nEXPOSE = 80\n";
	ASSERT_NE(Load(), 0);
	EXPECT_EQ(std::string(err_), path + ":2: SRMUDP_EXPOSE: set twice (first on line 1)");
	unlink(path.c_str());
	rmdir(tmpl);
}

TEST_F(AccessConfigTest, NewVariablesAreKnown)
{
	// No "unknown variable" warning for them.
	char tmpl[] = "/tmp/srmudp-access-log-XXXXXX";
	int fd = mkstemp(tmpl);
	ASSERT_GE(fd, 0);
	close(fd);
	log_open(SRM_LOG_WARN, tmpl);
	setenv("SRMUDP_EXPOSE", "22", 1);
	setenv("SRMUDP_ALLOW", "alice=22", 1);
	ASSERT_EQ(Load(), 0) << err_;
	log_open(SRM_LOG_WARN, nullptr);
	std::ifstream in(tmpl);
	std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	EXPECT_EQ(text.find("unknown variable"), std::string::npos) << text;
	unlink(tmpl);
}

TEST(AccessCheck, TheRule)
{
	srm_config cfg;
	srm_config_defaults(&cfg);
	// Unset: every peer reaches every port of an open listener; a
	// loopback one is refused on every port.
	EXPECT_EQ(srm_access_check(&cfg, "alice", 8080, 0), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "zed", 1, 0), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "alice", 8080, 1), SRM_REFUSED_LOOPBACK);

	uint16_t expose[] = { 22, 8080 };
	cfg.expose = expose;
	cfg.expose_count = 2;
	EXPECT_EQ(srm_access_check(&cfg, "alice", 8080, 1), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "alice", 22, 1), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "alice", 8081, 1), SRM_REFUSED_LOOPBACK);

	// alice may reach 22 and 6379, bob everything, carol nothing.
	srm_allow_rule rules[] = { { "alice", 22 }, { "alice", 6379 }, { "bob", 0 } };
	cfg.allow = rules;
	cfg.allow_count = 3;
	cfg.allow_set = 1;
	EXPECT_EQ(srm_access_check(&cfg, "alice", 22, 0), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "alice", 6379, 0), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "alice", 8080, 0), SRM_REFUSED_PEER);
	EXPECT_EQ(srm_access_check(&cfg, "bob", 8080, 0), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "bob", 1, 0), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "carol", 22, 0), SRM_REFUSED_PEER);
	EXPECT_EQ(srm_access_check(&cfg, "alic", 22, 0), SRM_REFUSED_PEER);
	EXPECT_EQ(srm_access_check(&cfg, nullptr, 22, 0), SRM_REFUSED_PEER);
	// Both rules apply: loopback first (exposure), then the peer's.
	EXPECT_EQ(srm_access_check(&cfg, "alice", 22, 1), SRM_REFUSED_NONE);
	EXPECT_EQ(srm_access_check(&cfg, "bob", 6379, 1), SRM_REFUSED_LOOPBACK);
	EXPECT_EQ(srm_access_check(&cfg, "carol", 8080, 1), SRM_REFUSED_PEER);
	EXPECT_EQ(srm_access_check(&cfg, "alice", 8080, 1), SRM_REFUSED_PEER);

	EXPECT_STREQ(srm_refusal_name(SRM_REFUSED_CLOSED), "closed");
	EXPECT_STREQ(srm_refusal_name(SRM_REFUSED_LOOPBACK), "loopback");
	EXPECT_STREQ(srm_refusal_name(SRM_REFUSED_PEER), "not-allowed");
}

// ---- Two engines: the rule where streams arrive ------------------------

// The rules b's engine starts with (node_start's tweak takes no context).
const srm_config *g_rules;

void TakeRules(srm_config *cfg)
{
	cfg->expose = g_rules->expose;
	cfg->expose_count = g_rules->expose_count;
	cfg->allow = g_rules->allow;
	cfg->allow_count = g_rules->allow_count;
	cfg->allow_set = g_rules->allow_set;
}

class AccessEngineTest : public ::testing::Test {
protected:
	std::string dir_;
	Node a_, b_;
	int srv_ = -1; // b's local TCP server
	sockaddr_storage srv_addr_{};
	socklen_t srv_len_ = sizeof(sockaddr_in);

	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		dir_ = temp_dir();
		node_key(a_, dir_, "a.key");
		node_key(b_, dir_, "b.key");
		srv_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		srv_addr_ = loopback(0);
		ASSERT_EQ(bind(srv_, (sockaddr *)&srv_addr_, sizeof(sockaddr_in)), 0);
		ASSERT_EQ(listen(srv_, 8), 0);
		ASSERT_EQ(getsockname(srv_, (sockaddr *)&srv_addr_, &srv_len_), 0);
	}
	void TearDown() override
	{
		for (Node *n : { &a_, &b_ })
			if (n->engine)
				srm_engine_stop(n->engine);
		close(srv_);
		std::string cmd = "rm -rf " + dir_;
		ASSERT_EQ(system(cmd.c_str()), 0);
	}
	// b (with rules) knows a; a knows b's endpoint.
	void StartPair(const srm_config *rules)
	{
		static const srm_config none{};
		g_rules = rules ? rules : &none;
		node_add_peer(b_, "a", a_, 0);
		node_start(b_, 5000, TakeRules, 0);
		node_add_peer(a_, "b", b_, srm_engine_udp_port(b_.engine));
		node_start(a_, 5000, nullptr, 0);
	}
	// What a's open of a stream to b:port ends in (0: open).
	int Open(uint16_t port)
	{
		int sv[2];
		uint64_t h;
		EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		EXPECT_EQ(srm_stream_open(a_.engine, srm_peer_find(a_.engine, "b"), port, sv[1], 0, &h),
			  0);
		int state = srm_stream_wait(a_.engine, h, 10000);
		close(sv[0]);
		return state;
	}
	uint64_t Refused(enum srm_refusal why)
	{
		struct srm_engine_stats es;
		srm_engine_stats(b_.engine, &es);
		struct srm_peer_stats ps;
		EXPECT_EQ(srm_peer_stats(b_.engine, 0, &ps), 0);
		EXPECT_EQ(ps.refused[why], es.refused[why]);
		return es.refused[why];
	}
};

TEST_F(AccessEngineTest, LoopbackListenerIsRefusedUnlessExposed)
{
	uint16_t expose[] = { 7002 };
	srm_config rules{};
	rules.expose = expose;
	rules.expose_count = 1;
	StartPair(&rules);
	ASSERT_EQ(srm_listen_flags(b_.engine, 7001, (sockaddr *)&srv_addr_, srv_len_,
				   SRM_LISTEN_LOOPBACK), 0);
	ASSERT_EQ(srm_listen_flags(b_.engine, 7002, (sockaddr *)&srv_addr_, srv_len_,
				   SRM_LISTEN_LOOPBACK), 0);
	ASSERT_EQ(srm_listen(b_.engine, 7003, (sockaddr *)&srv_addr_, srv_len_), 0);
	EXPECT_EQ(Open(7001), SRM_ERR_REFUSED);
	EXPECT_EQ(Refused(SRM_REFUSED_LOOPBACK), 1u);
	EXPECT_EQ(Open(7002), 0);
	EXPECT_EQ(Open(7003), 0);
	EXPECT_EQ(Open(7004), SRM_ERR_REFUSED);
	EXPECT_EQ(Refused(SRM_REFUSED_LOOPBACK), 1u);
	EXPECT_EQ(Refused(SRM_REFUSED_CLOSED), 1u);
	EXPECT_EQ(Refused(SRM_REFUSED_PEER), 0u);
	EXPECT_EQ(srm_listen_flags(b_.engine, 7005, nullptr, 0, SRM_LISTEN_HANDOFF), SRM_ERR_INVALID);
	EXPECT_EQ(srm_listen_flags(b_.engine, 7005, nullptr, 0, 8), SRM_ERR_INVALID);
}

TEST_F(AccessEngineTest, AllowNarrowsEveryListenerPerPeer)
{
	// a may reach 7002 only (an explicit exposure and the accept queue
	// alike).
	srm_allow_rule allow[] = { { "a", 7002 } };
	srm_config rules{};
	rules.allow = allow;
	rules.allow_count = 1;
	rules.allow_set = 1;
	StartPair(&rules);
	ASSERT_EQ(srm_listen(b_.engine, 7001, (sockaddr *)&srv_addr_, srv_len_), 0);
	ASSERT_EQ(srm_listen(b_.engine, 7002, (sockaddr *)&srv_addr_, srv_len_), 0);
	int lfd = srm_listen(b_.engine, 7003, nullptr, 0);
	ASSERT_GE(lfd, 0);
	EXPECT_EQ(Open(7001), SRM_ERR_REFUSED);
	EXPECT_EQ(Open(7002), 0);
	EXPECT_EQ(Open(7003), SRM_ERR_REFUSED);
	EXPECT_EQ(srm_accept(b_.engine, 7003, nullptr), SRM_ERR_AGAIN);
	EXPECT_EQ(Refused(SRM_REFUSED_PEER), 2u);
	EXPECT_EQ(Refused(SRM_REFUSED_LOOPBACK), 0u);
}

} // namespace

// SRMUDP_GATE and SRMUDP_GATES (issue 17): gates are configured peers
// with an endpoint, each once; errors name the variable and the token.
TEST_F(AccessConfigTest, Gates)
{
	std::string peers = "alice=" + Key(1) + " bob=" + Key(2) + "@192.0.2.7:4500 carol=" +
			    Key(3) + "@192.0.2.8:4500";
	setenv("SRMUDP_PEERS", peers.c_str(), 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.gate, 0);
	EXPECT_EQ(cfg_.gate_count, 0u);
	setenv("SRMUDP_GATES", " Carol,bob ", 1);
	setenv("SRMUDP_GATE", "on", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.gate, 1);
	ASSERT_EQ(cfg_.gate_count, 2u);
	EXPECT_STREQ(cfg_.gates[0], "carol");
	EXPECT_STREQ(cfg_.gates[1], "bob");
	unsetenv("SRMUDP_GATES");
	unsetenv("SRMUDP_GATE");
	EXPECT_EQ(Error("SRMUDP_GATE", "yes"), "SRMUDP_GATE: bad value \"yes\" (expected on or off)");
	EXPECT_EQ(Error("SRMUDP_GATES", "alice"),
		  "SRMUDP_GATES: gate \"alice\" has no endpoint (list it as "
		  "alice=KEY@HOST:PORT in SRMUDP_PEERS)");
	EXPECT_EQ(Error("SRMUDP_GATES", "bob,dave"),
		  "SRMUDP_GATES: unknown peer \"dave\" (not in SRMUDP_PEERS)");
	EXPECT_EQ(Error("SRMUDP_GATES", "bob bob"), "SRMUDP_GATES: gate \"bob\" listed twice");
	EXPECT_EQ(cfg_.via_off, 0);
	setenv("SRMUDP_VIA", "OFF", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.via_off, 1);
	unsetenv("SRMUDP_VIA");
	EXPECT_EQ(Error("SRMUDP_VIA", "no"), "SRMUDP_VIA: bad value \"no\" (expected on or off)");
}
