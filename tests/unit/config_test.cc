// config_test.cc — core/config/config.c: every SRMUDP_* variable, good and bad,
// the exact one-line error for each malformed form, SRMUDP_CONFIG files and
// their precedence under the environment.
//
// Only numeric addresses and "localhost" (from /etc/hosts) are resolved:
// no test may send a DNS query.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "config_env.h"
#include "log.h"
#include "srmudp.h"

namespace {

class ConfigTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		ClearEnv();
		char tmpl[] = "/tmp/srmudp-cfg-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
		memset(&cfg_, 0, sizeof(cfg_));
	}
	void TearDown() override
	{
		srm_config_free(&cfg_);
		ClearEnv();
		for (auto &f : files_)
			unlink(f.c_str());
		rmdir(dir_.c_str());
		log_open(SRM_LOG_WARN, nullptr);
	}
	static void ClearEnv() { ClearSrmudpEnv(); }
	std::string File(const std::string &name, const std::string &text)
	{
		std::string p = dir_ + "/" + name;
		std::ofstream(p) << text;
		files_.push_back(p);
		return p;
	}
	int Load()
	{
		srm_config_free(&cfg_);
		err_[0] = '\0';
		return srm_config_from_env(&cfg_, err_, sizeof(err_));
	}
	// Set one variable, expect failure with exactly this message.
	void ExpectError(const char *var, const std::string &value, const std::string &msg)
	{
		setenv(var, value.c_str(), 1);
		EXPECT_EQ(Load(), SRM_ERR_INVALID) << var << "=" << value;
		EXPECT_EQ(std::string(err_), msg) << var << "=" << value;
		EXPECT_EQ(cfg_.peer_count, 0u);
		EXPECT_EQ(cfg_.peers, nullptr);
		unsetenv(var);
	}
	void ExpectOk(const char *var, const std::string &value)
	{
		setenv(var, value.c_str(), 1);
		EXPECT_EQ(Load(), 0) << var << "=" << value << ": " << err_;
	}
	static std::string Addr(const struct sockaddr_storage &ss)
	{
		char host[INET6_ADDRSTRLEN] = "?";
		if (ss.ss_family == AF_INET) {
			auto *in = (const struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			return std::string(host) + ":" + std::to_string(ntohs(in->sin_port));
		}
		auto *in6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		return "[" + std::string(host) + "]:" + std::to_string(ntohs(in6->sin6_port));
	}

	struct srm_config cfg_;
	char err_[1024];
	std::string dir_;
	std::vector<std::string> files_;
};

TEST_F(ConfigTest, Defaults)
{
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_STREQ(err_, "");
	EXPECT_STREQ(cfg_.key_path, "");
	EXPECT_EQ(cfg_.peer_count, 0u);
	EXPECT_EQ(cfg_.listen.ss_family, AF_INET6);
	EXPECT_EQ(cfg_.listen_len, sizeof(struct sockaddr_in6));
	EXPECT_EQ(Addr(cfg_.listen), "[::]:0");
	EXPECT_EQ(cfg_.rendezvous_count, 0u);
	EXPECT_EQ(cfg_.log_level, SRM_LOG_WARN);
	EXPECT_STREQ(cfg_.log_file, "");
	EXPECT_EQ(cfg_.compress, SRM_COMPRESS_AUTO);
	EXPECT_EQ(cfg_.cc, SRM_CC_BBR);
	EXPECT_EQ(cfg_.connect_timeout_ms, 10000u);
	EXPECT_EQ(cfg_.idle_timeout_ms, 30000u);
	EXPECT_EQ(cfg_.busy_poll_us, 100u);
	EXPECT_EQ(cfg_.warmup, SRM_WARMUP_AUTO);

	struct srm_config d;
	srm_config_defaults(&d);
	EXPECT_EQ(d.connect_timeout_ms, 10000u);
	EXPECT_EQ(d.peers, nullptr);
	srm_config_free(&d);
	srm_config_free(&d); // idempotent
	srm_config_free(nullptr);
}

TEST_F(ConfigTest, EmptyValueMeansUnset)
{
	setenv("SRMUDP_LOG", "", 1);
	setenv("SRMUDP_PEERS", "", 1);
	setenv("SRMUDP_LISTEN", "", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.log_level, SRM_LOG_WARN);
	EXPECT_EQ(cfg_.peer_count, 0u);
}

TEST_F(ConfigTest, KeyPath)
{
	ExpectOk("SRMUDP_KEY", "/etc/srmudp/key");
	EXPECT_STREQ(cfg_.key_path, "/etc/srmudp/key");
	char cwd[4096];
	ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
	ExpectOk("SRMUDP_KEY", "my.key");
	EXPECT_EQ(std::string(cfg_.key_path), std::string(cwd) + "/my.key");
	ExpectError("SRMUDP_KEY", "/" + std::string(5000, 'k'),
		    "SRMUDP_KEY: path too long: \"/" + std::string(63, 'k') + "...\"");
}

TEST_F(ConfigTest, PeersGood)
{
	std::string a = Key(1), b = Key(2), c = Key(3), d = Key(4);
	ExpectOk("SRMUDP_PEERS", " DB=" + a + "@192.0.2.7:5000,web=" + b + "@[2001:db8::1]:443\n\t" +
					 "cache-1=" + c + " , x9=" + d + "@localhost:7 ");
	ASSERT_EQ(cfg_.peer_count, 4u);
	EXPECT_STREQ(cfg_.peers[0].name, "db"); // folded to lowercase
	EXPECT_EQ(Addr(cfg_.peers[0].endpoint), "192.0.2.7:5000");
	EXPECT_EQ(cfg_.peers[0].endpoint_len, sizeof(struct sockaddr_in));
	EXPECT_STREQ(cfg_.peers[1].name, "web");
	EXPECT_EQ(Addr(cfg_.peers[1].endpoint), "[2001:db8::1]:443");
	EXPECT_EQ(cfg_.peers[1].endpoint_len, sizeof(struct sockaddr_in6));
	EXPECT_STREQ(cfg_.peers[2].name, "cache-1");
	EXPECT_EQ(cfg_.peers[2].endpoint_len, 0u);
	EXPECT_STREQ(cfg_.peers[3].name, "x9");
	std::string lo = Addr(cfg_.peers[3].endpoint);
	EXPECT_TRUE(lo == "127.0.0.1:7" || lo == "[::1]:7") << lo;

	uint8_t pub[SRM_KEY_BYTES];
	ASSERT_EQ(srm_pubkey_decode(b.c_str(), pub), 0);
	EXPECT_EQ(memcmp(pub, cfg_.peers[1].pubkey, SRM_KEY_BYTES), 0);

	// A 63-character name is the longest allowed; a digit-led one is fine.
	ExpectOk("SRMUDP_PEERS", std::string(63, 'n') + "=" + a + " 9lives=" + b);
	EXPECT_EQ(cfg_.peer_count, 2u);
}

TEST_F(ConfigTest, PeersBad)
{
	std::string a = Key(1), b = Key(2);
	const char *V = "SRMUDP_PEERS";
	ExpectError(V, "abc", "SRMUDP_PEERS: expected NAME=PUBKEY[@HOST:PORT], got \"abc\"");
	ExpectError(V, "=" + a, "SRMUDP_PEERS: expected NAME=PUBKEY[@HOST:PORT], got \"=" + a + "\"");
	ExpectError(V, std::string(100, 'z'), "SRMUDP_PEERS: expected NAME=PUBKEY[@HOST:PORT], got \"" +
						      std::string(64, 'z') + "...\"");
	ExpectError(V, "db=abc", "SRMUDP_PEERS: bad public key \"abc\" for peer \"db\"");
	ExpectError(V, "db=", "SRMUDP_PEERS: bad public key \"\" for peer \"db\"");
	ExpectError(V, "db=@1.2.3.4:5", "SRMUDP_PEERS: bad public key \"\" for peer \"db\"");
	ExpectError(V, "db=" + a.substr(0, 42),
		    "SRMUDP_PEERS: bad public key \"" + a.substr(0, 42) + "\" for peer \"db\"");
	ExpectError(V, "db=" + a.substr(0, 42) + "!",
		    "SRMUDP_PEERS: bad public key \"" + a.substr(0, 42) + "!\" for peer \"db\"");
	ExpectError(V, "db_1=" + a,
		    "SRMUDP_PEERS: bad peer name \"db_1\": use only letters, digits and '-'");
	ExpectError(V, "db.example=" + a,
		    "SRMUDP_PEERS: bad peer name \"db.example\": use only letters, digits and '-'");
	ExpectError(V, "1234=" + a, "SRMUDP_PEERS: bad peer name \"1234\": a name cannot be all digits");
	ExpectError(V, "-db=" + a,
		    "SRMUDP_PEERS: bad peer name \"-db\": a name cannot start or end with '-'");
	ExpectError(V, "db-=" + a,
		    "SRMUDP_PEERS: bad peer name \"db-\": a name cannot start or end with '-'");
	ExpectError(V, std::string(64, 'n') + "=" + a,
		    "SRMUDP_PEERS: bad peer name \"" + std::string(64, 'n') +
			    "\": longer than 63 characters");
	ExpectError(V, "LocalHost=" + a,
		    "SRMUDP_PEERS: bad peer name \"LocalHost\": \"localhost\" is reserved");
	ExpectError(V, "d\x01=" + a,
		    "SRMUDP_PEERS: bad peer name \"d\\x01\": use only letters, digits and '-'");

	ExpectError(V, "db=" + a + "@1.2.3.4",
		    "SRMUDP_PEERS: bad endpoint \"1.2.3.4\" for peer \"db\": expected HOST:PORT");
	ExpectError(V, "db=" + a + "@",
		    "SRMUDP_PEERS: bad endpoint \"\" for peer \"db\": expected HOST:PORT");
	ExpectError(V, "db=" + a + "@:5",
		    "SRMUDP_PEERS: bad endpoint \":5\" for peer \"db\": empty host");
	ExpectError(V, "db=" + a + "@1.2.3.4:0",
		    "SRMUDP_PEERS: bad endpoint \"1.2.3.4:0\" for peer \"db\": bad port (expected 1 "
		    "to 65535)");
	ExpectError(V, "db=" + a + "@1.2.3.4:65536",
		    "SRMUDP_PEERS: bad endpoint \"1.2.3.4:65536\" for peer \"db\": bad port "
		    "(expected 1 to 65535)");
	ExpectError(V, "db=" + a + "@1.2.3.4:http",
		    "SRMUDP_PEERS: bad endpoint \"1.2.3.4:http\" for peer \"db\": bad port "
		    "(expected 1 to 65535)");
	ExpectError(V, "db=" + a + "@2001:db8::1:5",
		    "SRMUDP_PEERS: bad endpoint \"2001:db8::1:5\" for peer \"db\": IPv6 addresses "
		    "need brackets: [ADDR]:PORT");
	ExpectError(V, "db=" + a + "@[2001:db8::1:5",
		    "SRMUDP_PEERS: bad endpoint \"[2001:db8::1:5\" for peer \"db\": missing ']'");
	ExpectError(V, "db=" + a + "@[2001:db8::1]5",
		    "SRMUDP_PEERS: bad endpoint \"[2001:db8::1]5\" for peer \"db\": expected "
		    "[ADDR]:PORT");
	ExpectError(V, "db=" + a + "@[]:5",
		    "SRMUDP_PEERS: bad endpoint \"[]:5\" for peer \"db\": empty host");
	// Brackets mean a numeric IPv6 literal: never looked up.
	ExpectError(V, "db=" + a + "@[not-an-address]:5",
		    std::string("SRMUDP_PEERS: cannot resolve \"not-an-address\" for peer \"db\": ") +
			    gai_strerror(EAI_NONAME));
	ExpectError(V, "db=" + a + "@[192.0.2.1]:5",
		    "SRMUDP_PEERS: bad endpoint \"[192.0.2.1]:5\" for peer \"db\": brackets are for "
		    "IPv6 only");

	ExpectError(V, "db=" + a + " db=" + b, "SRMUDP_PEERS: duplicate peer name \"db\"");
	ExpectError(V, "db=" + a + ",DB=" + b, "SRMUDP_PEERS: duplicate peer name \"db\"");
	ExpectError(V, "db=" + a + " web=" + a,
		    "SRMUDP_PEERS: peers \"db\" and \"web\" have the same public key \"" +
			    a.substr(0, 64) + "\"");
}

TEST_F(ConfigTest, PeersLimit)
{
	std::string list;
	for (int i = 0; i < SRM_MAX_PEERS; i++)
		list += "p" + std::to_string(i) + "=" + Key(100 + i) + " ";
	ExpectOk("SRMUDP_PEERS", list);
	EXPECT_EQ(cfg_.peer_count, (size_t)SRM_MAX_PEERS);
	EXPECT_STREQ(cfg_.peers[SRM_MAX_PEERS - 1].name, "p1023");
	list += "one-more=" + Key(99);
	ExpectError("SRMUDP_PEERS", list, "SRMUDP_PEERS: more than 1024 peers (at \"one-more\")");
}

TEST_F(ConfigTest, Listen)
{
	ExpectOk("SRMUDP_LISTEN", "5000");
	EXPECT_EQ(Addr(cfg_.listen), "[::]:5000"); // dual-stack wildcard
	ExpectOk("SRMUDP_LISTEN", "0");
	EXPECT_EQ(Addr(cfg_.listen), "[::]:0");
	ExpectOk("SRMUDP_LISTEN", "*:7");
	EXPECT_EQ(Addr(cfg_.listen), "[::]:7");
	ExpectOk("SRMUDP_LISTEN", "127.0.0.1:5000");
	EXPECT_EQ(Addr(cfg_.listen), "127.0.0.1:5000");
	EXPECT_EQ(cfg_.listen_len, sizeof(struct sockaddr_in));
	ExpectOk("SRMUDP_LISTEN", "0.0.0.0:65535");
	EXPECT_EQ(Addr(cfg_.listen), "0.0.0.0:65535");
	ExpectOk("SRMUDP_LISTEN", "[::1]:9");
	EXPECT_EQ(Addr(cfg_.listen), "[::1]:9");
	EXPECT_EQ(cfg_.listen_len, sizeof(struct sockaddr_in6));
	ExpectOk("SRMUDP_LISTEN", "[::]:9");
	EXPECT_EQ(Addr(cfg_.listen), "[::]:9");

	const char *V = "SRMUDP_LISTEN";
	ExpectError(V, "abc",
		    "SRMUDP_LISTEN: bad listen address \"abc\": bad port (expected 0 to 65535)");
	ExpectError(V, "70000",
		    "SRMUDP_LISTEN: bad listen address \"70000\": bad port (expected 0 to 65535)");
	ExpectError(V, "-1",
		    "SRMUDP_LISTEN: bad listen address \"-1\": bad port (expected 0 to 65535)");
	ExpectError(V, "127.0.0.1",
		    "SRMUDP_LISTEN: bad listen address \"127.0.0.1\": bad port (expected 0 to "
		    "65535)");
	ExpectError(V, "127.0.0.1:",
		    "SRMUDP_LISTEN: bad listen address \"127.0.0.1:\": bad port (expected 0 to "
		    "65535)");
	ExpectError(V, "::1:5",
		    "SRMUDP_LISTEN: bad listen address \"::1:5\": IPv6 addresses need brackets: "
		    "[ADDR]:PORT");
	ExpectError(V, "myhost:5",
		    "SRMUDP_LISTEN: bad listen address \"myhost:5\": \"myhost\" is not a numeric "
		    "IPv4 or [IPv6] address");
	ExpectError(V, "[::1]", "SRMUDP_LISTEN: bad listen address \"[::1]\": expected [ADDR]:PORT");
}

TEST_F(ConfigTest, Rendezvous)
{
	ExpectOk("SRMUDP_RENDEZVOUS", "192.0.2.9:3478");
	ASSERT_EQ(cfg_.rendezvous_count, 1u);
	EXPECT_EQ(Addr(cfg_.rendezvous[0].addr), "192.0.2.9:3478");
	EXPECT_EQ(cfg_.rendezvous[0].addr_len, sizeof(struct sockaddr_in));
	ExpectOk("SRMUDP_RENDEZVOUS", "[2001:db8::9]:3478");
	EXPECT_EQ(Addr(cfg_.rendezvous[0].addr), "[2001:db8::9]:3478");
	ExpectOk("SRMUDP_RENDEZVOUS", "localhost:3478");
	EXPECT_GT(cfg_.rendezvous[0].addr_len, 0u);

	ExpectError("SRMUDP_RENDEZVOUS", "192.0.2.9",
		    "SRMUDP_RENDEZVOUS: bad endpoint \"192.0.2.9\": expected HOST:PORT");
	ExpectError("SRMUDP_RENDEZVOUS", "192.0.2.9:0",
		    "SRMUDP_RENDEZVOUS: bad endpoint \"192.0.2.9:0\": bad port (expected 1 to 65535)");
	ExpectError("SRMUDP_RENDEZVOUS", "[zz]:1",
		    std::string("SRMUDP_RENDEZVOUS: cannot resolve \"zz\": ") +
			    gai_strerror(EAI_NONAME));
}

// Issue 18, item 11: a list, used in order with failover (the engine).
TEST_F(ConfigTest, RendezvousList)
{
	ExpectOk("SRMUDP_RENDEZVOUS", " 192.0.2.9:3478, [2001:db8::9]:3479 ,192.0.2.10:1 ");
	ASSERT_EQ(cfg_.rendezvous_count, 3u);
	EXPECT_EQ(Addr(cfg_.rendezvous[0].addr), "192.0.2.9:3478");
	EXPECT_EQ(Addr(cfg_.rendezvous[1].addr), "[2001:db8::9]:3479");
	EXPECT_EQ(Addr(cfg_.rendezvous[2].addr), "192.0.2.10:1");
	ExpectOk("SRMUDP_RENDEZVOUS", "192.0.2.11:3478");
	EXPECT_EQ(cfg_.rendezvous_count, 1u);

	ExpectError("SRMUDP_RENDEZVOUS", "192.0.2.9:3478,192.0.2.9",
		    "SRMUDP_RENDEZVOUS: bad endpoint \"192.0.2.9\": expected HOST:PORT");
	ExpectError("SRMUDP_RENDEZVOUS", " , ",
		    "SRMUDP_RENDEZVOUS: no server in \" , \": expected [KEY@]HOST:PORT[,...]");
	std::string nine;
	for (int i = 0; i < 9; i++)
		nine += "192.0.2." + std::to_string(i + 1) + ":3478,";
	ExpectError("SRMUDP_RENDEZVOUS", nine,
		    "SRMUDP_RENDEZVOUS: too many servers at \"192.0.2.9:3478\" (at most 8)");
}

// Issue 18, item 10: KEY@HOST:PORT pins the server's key.
TEST_F(ConfigTest, RendezvousWithAPinnedKey)
{
	uint8_t key[SRM_KEY_BYTES];
	for (int i = 0; i < SRM_KEY_BYTES; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	char text[SRM_PUBKEY_TEXT_BYTES];
	srm_pubkey_encode(key, text);
	ExpectOk("SRMUDP_RENDEZVOUS", std::string(text) + "@192.0.2.9:3478");
	EXPECT_EQ(Addr(cfg_.rendezvous[0].addr), "192.0.2.9:3478");
	EXPECT_EQ(cfg_.rendezvous[0].pinned, 1);
	EXPECT_EQ(memcmp(cfg_.rendezvous[0].key, key, SRM_KEY_BYTES), 0);
	ExpectOk("SRMUDP_RENDEZVOUS", std::string(text) + "@[2001:db8::9]:3478");
	EXPECT_EQ(Addr(cfg_.rendezvous[0].addr), "[2001:db8::9]:3478");
	ExpectOk("SRMUDP_RENDEZVOUS", "192.0.2.9:3478");
	EXPECT_EQ(cfg_.rendezvous[0].pinned, 0);
	// Each server of a list has its own key, or none.
	ExpectOk("SRMUDP_RENDEZVOUS", "192.0.2.8:3478," + std::string(text) + "@192.0.2.9:3478");
	ASSERT_EQ(cfg_.rendezvous_count, 2u);
	EXPECT_EQ(cfg_.rendezvous[0].pinned, 0);
	EXPECT_EQ(cfg_.rendezvous[1].pinned, 1);
	EXPECT_EQ(memcmp(cfg_.rendezvous[1].key, key, SRM_KEY_BYTES), 0);

	ExpectError("SRMUDP_RENDEZVOUS", "nokey@192.0.2.9:3478",
		    "SRMUDP_RENDEZVOUS: bad server key \"nokey\": expected KEY@HOST:PORT");
	ExpectError("SRMUDP_RENDEZVOUS", "@192.0.2.9:3478",
		    "SRMUDP_RENDEZVOUS: bad server key \"\": expected KEY@HOST:PORT");
	ExpectError("SRMUDP_RENDEZVOUS", std::string(text) + "@192.0.2.9",
		    "SRMUDP_RENDEZVOUS: bad endpoint \"192.0.2.9\": expected HOST:PORT");
}

TEST_F(ConfigTest, LogLevelAndFile)
{
	const char *names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++) {
		ExpectOk("SRMUDP_LOG", names[i]);
		EXPECT_EQ(cfg_.log_level, (enum srm_log_level)i);
	}
	ExpectOk("SRMUDP_LOG", "DEBUG");
	EXPECT_EQ(cfg_.log_level, SRM_LOG_DEBUG);
	ExpectError("SRMUDP_LOG", "verbose",
		    "SRMUDP_LOG: bad value \"verbose\" (expected error, warn, info or debug)");
	ExpectError("SRMUDP_LOG", "warn ",
		    "SRMUDP_LOG: bad value \"warn \" (expected error, warn, info or debug)");

	ExpectOk("SRMUDP_LOG_FILE", "/var/log/srmudp.log");
	EXPECT_STREQ(cfg_.log_file, "/var/log/srmudp.log");
	char cwd[4096];
	ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
	ExpectOk("SRMUDP_LOG_FILE", "x.log");
	EXPECT_EQ(std::string(cfg_.log_file), std::string(cwd) + "/x.log");
}

TEST_F(ConfigTest, CompressAndCongestionControl)
{
	ExpectOk("SRMUDP_COMPRESS", "on");
	EXPECT_EQ(cfg_.compress, SRM_COMPRESS_ON);
	ExpectOk("SRMUDP_COMPRESS", "off");
	EXPECT_EQ(cfg_.compress, SRM_COMPRESS_OFF);
	ExpectOk("SRMUDP_COMPRESS", "Auto");
	EXPECT_EQ(cfg_.compress, SRM_COMPRESS_AUTO);
	ExpectError("SRMUDP_COMPRESS", "yes",
		    "SRMUDP_COMPRESS: bad value \"yes\" (expected auto, on or off)");

	ExpectOk("SRMUDP_CC", "cubic");
	EXPECT_EQ(cfg_.cc, SRM_CC_CUBIC);
	ExpectOk("SRMUDP_CC", "newreno");
	EXPECT_EQ(cfg_.cc, SRM_CC_NEWRENO);
	ExpectOk("SRMUDP_CC", "BBR");
	EXPECT_EQ(cfg_.cc, SRM_CC_BBR);
	ExpectError("SRMUDP_CC", "reno", "SRMUDP_CC: bad value \"reno\" (expected bbr, cubic or newreno)");
}

TEST_F(ConfigTest, RateLimitsAndPadding)
{
	ExpectOk("SRMUDP_RATE", "10M");
	EXPECT_EQ(cfg_.rate_bytes, 10u << 20);
	ExpectOk("SRMUDP_RATE", "500000");
	EXPECT_EQ(cfg_.rate_bytes, 500000u);
	ExpectOk("SRMUDP_RATE_PACKETS", "2k");
	EXPECT_EQ(cfg_.rate_packets, 2048u);
	for (const char *bad : { "fast", "10Mb", "-1", "1.5M" })
		ExpectError("SRMUDP_RATE", bad,
			    std::string("SRMUDP_RATE: bad rate \"") + bad +
				    "\" (expected a number per second, optionally with k, M or G, e.g. 10M)");
	ExpectOk("SRMUDP_PAD", "mtu");
	EXPECT_EQ(cfg_.pad, SRM_PAD_MTU);
	ExpectOk("SRMUDP_PAD", "bucket");
	EXPECT_EQ(cfg_.pad, SRM_PAD_BUCKET);
	ExpectError("SRMUDP_PAD", "yes", "SRMUDP_PAD: bad value \"yes\" (expected off, bucket or mtu)");
}

TEST_F(ConfigTest, BusyPoll)
{
	struct {
		const char *text;
		uint32_t us;
	} good[] = { { "off", 0 }, { "OFF", 0 }, { "0", 0 }, { "250", 250 }, { "250us", 250 },
		     { "10000us", 10000 } };
	for (auto &g : good) {
		ExpectOk("SRMUDP_BUSY_POLL", g.text);
		EXPECT_EQ(cfg_.busy_poll_us, g.us) << g.text;
	}
	for (const char *bad : { "on", "1ms", "-5", "10001", "99999999999999999999", "us", "5 us" })
		ExpectError("SRMUDP_BUSY_POLL", bad,
			    std::string("SRMUDP_BUSY_POLL: bad busy-poll time \"") + bad +
				    "\" (expected off or microseconds up to 10000, e.g. 100us)");
}

TEST_F(ConfigTest, Warmup)
{
	struct {
		const char *text;
		enum srm_warmup w;
	} good[] = { { "auto", SRM_WARMUP_AUTO }, { "on", SRM_WARMUP_ON }, { "OFF", SRM_WARMUP_OFF } };
	for (auto &g : good) {
		ExpectOk("SRMUDP_WARMUP", g.text);
		EXPECT_EQ(cfg_.warmup, g.w) << g.text;
	}
	for (const char *bad : { "yes", "1", "early" })
		ExpectError("SRMUDP_WARMUP", bad,
			    std::string("SRMUDP_WARMUP: bad value \"") + bad +
				    "\" (expected auto, on or off)");
}

TEST_F(ConfigTest, Timeouts)
{
	struct {
		const char *text;
		uint32_t ms;
	} good[] = { { "500", 500 },	  { "250ms", 250 },	  { "10s", 10000 },
		     { "2m", 120000 },	  { "3min", 180000 },	  { "1h", 3600000 },
		     { "24h", 86400000 }, { "86400000", 86400000 }, { "007s", 7000 } };
	for (auto &g : good) {
		ExpectOk("SRMUDP_CONNECT_TIMEOUT", g.text);
		EXPECT_EQ(cfg_.connect_timeout_ms, g.ms) << g.text;
		ExpectOk("SRMUDP_IDLE_TIMEOUT", g.text);
		EXPECT_EQ(cfg_.idle_timeout_ms, g.ms) << g.text;
	}
	for (const char *var : { "SRMUDP_CONNECT_TIMEOUT", "SRMUDP_IDLE_TIMEOUT" }) {
		std::string v = var;
		for (const char *bad : { "abc", "10x", "-5", "1.5s", "s", "10 s", "10S" })
			ExpectError(var, bad,
				    v + ": bad duration \"" + bad +
					    "\" (expected milliseconds or a number with ms, s, m or h, "
					    "e.g. 10s)");
		for (const char *range : { "0", "0s", "25h", "86400001", "99999999999999999999" })
			ExpectError(var, range,
				    v + ": duration \"" + range + "\" out of range (1ms to 24h)");
	}
}

TEST_F(ConfigTest, ErrorBufferTooSmallIsSafe)
{
	setenv("SRMUDP_LOG", "verbose", 1);
	char small[8];
	memset(small, 'x', sizeof(small));
	EXPECT_EQ(srm_config_from_env(&cfg_, small, sizeof(small)), SRM_ERR_INVALID);
	EXPECT_EQ(strnlen(small, sizeof(small)), 7u);
	EXPECT_EQ(srm_config_from_env(&cfg_, nullptr, 0), SRM_ERR_INVALID);
}

TEST_F(ConfigTest, UnknownVariableWarnsButLoads)
{
	std::string logf = dir_ + "/warn.log";
	files_.push_back(logf);
	log_open(SRM_LOG_WARN, logf.c_str());
	setenv("SRMUDP_PEER", "typo", 1);
	setenv("SRMUDP_SOMETHING_ELSE", "x", 1);
	setenv("SRMUDP_PRELOAD", "/x.so", 1); // used by srmudp run: no warning
	setenv("SRMUDP_INHERIT", "3:1", 1);   // set by the preload across exec
	ASSERT_EQ(Load(), 0) << err_;
	std::ifstream in(logf);
	std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	EXPECT_NE(all.find("warn: SRMUDP_PEER: unknown variable, ignored (did you mean "
			   "SRMUDP_PEERS?)\n"),
		  std::string::npos)
		<< all;
	EXPECT_NE(all.find("warn: SRMUDP_SOMETHING_ELSE: unknown variable, ignored\n"),
		  std::string::npos)
		<< all;
	EXPECT_EQ(all.find("SRMUDP_PRELOAD"), std::string::npos);
	EXPECT_EQ(all.find("SRMUDP_INHERIT"), std::string::npos);

	// SRMUDP_LOG=error silences it.
	setenv("SRMUDP_LOG", "error", 1);
	size_t before = all.size();
	ASSERT_EQ(Load(), 0) << err_;
	std::ifstream in2(logf);
	std::string all2((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
	EXPECT_EQ(all2.size(), before);
}

TEST_F(ConfigTest, FileWithEveryKey)
{
	std::string a = Key(1), b = Key(2), c = Key(3);
	std::string path = File("srmudp.conf",
				"# srmudp configuration\n"
				"\n"
				"SRMUDP_KEY = host.key\n"
				"  SRMUDP_PEERS = db=" + a + "@192.0.2.7:5000   # the database\n"
				"SRMUDP_PEERS=\"web=" + b + "@[2001:db8::1]:443, cache=" + c + "\"\n"
				"LISTEN = 0.0.0.0:4000\n"
				"rendezvous = 192.0.2.1:3478\n"
				"SRMUDP_LOG = info\n"
				"SRMUDP_LOG_FILE = '/tmp/with # hash.log'\n"
				"SRMUDP_COMPRESS = off\n"
				"SRMUDP_CC = cubic\n"
				"SRMUDP_CONNECT_TIMEOUT = 5s\n"
				"SRMUDP_IDLE_TIMEOUT = 2m\n");
	setenv("SRMUDP_CONFIG", path.c_str(), 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(std::string(cfg_.key_path), dir_ + "/host.key"); // relative to the file
	ASSERT_EQ(cfg_.peer_count, 3u);
	EXPECT_STREQ(cfg_.peers[0].name, "db");
	EXPECT_EQ(Addr(cfg_.peers[0].endpoint), "192.0.2.7:5000");
	EXPECT_STREQ(cfg_.peers[1].name, "web");
	EXPECT_STREQ(cfg_.peers[2].name, "cache");
	EXPECT_EQ(Addr(cfg_.listen), "0.0.0.0:4000");
	EXPECT_EQ(Addr(cfg_.rendezvous[0].addr), "192.0.2.1:3478");
	EXPECT_EQ(cfg_.log_level, SRM_LOG_INFO);
	EXPECT_STREQ(cfg_.log_file, "/tmp/with # hash.log");
	EXPECT_EQ(cfg_.compress, SRM_COMPRESS_OFF);
	EXPECT_EQ(cfg_.cc, SRM_CC_CUBIC);
	EXPECT_EQ(cfg_.connect_timeout_ms, 5000u);
	EXPECT_EQ(cfg_.idle_timeout_ms, 120000u);

	// The environment wins, key by key; SRMUDP_PEERS replaces every file line.
	setenv("SRMUDP_LOG", "debug", 1);
	setenv("SRMUDP_PEERS", ("other=" + a).c_str(), 1);
	setenv("SRMUDP_KEY", "/abs.key", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.log_level, SRM_LOG_DEBUG);
	ASSERT_EQ(cfg_.peer_count, 1u);
	EXPECT_STREQ(cfg_.peers[0].name, "other");
	EXPECT_STREQ(cfg_.key_path, "/abs.key");
	EXPECT_EQ(cfg_.compress, SRM_COMPRESS_OFF); // still from the file

	// An empty environment value does not override the file.
	setenv("SRMUDP_CC", "", 1);
	ASSERT_EQ(Load(), 0) << err_;
	EXPECT_EQ(cfg_.cc, SRM_CC_CUBIC);
}

TEST_F(ConfigTest, FileErrorsNameFileAndLine)
{
	std::string a = Key(1);
	struct {
		std::string text, msg;
	} cases[] = {
		{ "# ok\nSRMUDP_LOG = loud\n", ":2: SRMUDP_LOG: bad value \"loud\" (expected error, warn, info or debug)" },
		{ "\n\nFOO = 1\n", ":3: unknown key \"FOO\"" },
		{ "peer = x\n", ":1: unknown key \"peer\" (did you mean SRMUDP_PEERS?)" },
		{ "SRMUDP_CONECT_TIMEOUT = 1s\n",
		  ":1: unknown key \"SRMUDP_CONECT_TIMEOUT\" (did you mean SRMUDP_CONNECT_TIMEOUT?)" },
		{ "SRMUDP_CONFIG = /x\n", ":1: unknown key \"SRMUDP_CONFIG\"" },
		{ "SRMUDP_LOG info\n", ":1: expected KEY = value, got \"SRMUDP_LOG info\"" },
		{ "LOG = warn\nLOG = info\n", ":2: SRMUDP_LOG: set twice (first on line 1)" },
		{ "LOG = \"warn\n", ":1: SRMUDP_LOG: unterminated quote in \"\\\"warn\"" },
		{ "PEERS = db=" + a + "\nPEERS = db=" + Key(2) + "\n",
		  ":2: SRMUDP_PEERS: duplicate peer name \"db\"" },
		{ "PEERS = db=zzz\n", ":1: SRMUDP_PEERS: bad public key \"zzz\" for peer \"db\"" },
		{ "IDLE_TIMEOUT = forever\n",
		  ":1: SRMUDP_IDLE_TIMEOUT: bad duration \"forever\" (expected milliseconds or a "
		  "number with ms, s, m or h, e.g. 10s)" },
	};
	int i = 0;
	for (auto &c : cases) {
		std::string path = File("bad" + std::to_string(i++) + ".conf", c.text);
		setenv("SRMUDP_CONFIG", path.c_str(), 1);
		EXPECT_EQ(Load(), SRM_ERR_INVALID) << c.text;
		EXPECT_EQ(std::string(err_), path + c.msg);
	}
	// A bad file value is not an error when the environment overrides it.
	std::string path = File("over.conf", "LOG = loud\n");
	setenv("SRMUDP_CONFIG", path.c_str(), 1);
	setenv("SRMUDP_LOG", "info", 1);
	EXPECT_EQ(Load(), 0) << err_;
}

TEST_F(ConfigTest, FileUnreadable)
{
	std::string missing = dir_ + "/missing.conf";
	setenv("SRMUDP_CONFIG", missing.c_str(), 1);
	EXPECT_EQ(Load(), SRM_ERR_INVALID);
	EXPECT_EQ(std::string(err_), "SRMUDP_CONFIG: cannot read \"" + missing +
					     "\": No such file or directory");
	setenv("SRMUDP_CONFIG", dir_.c_str(), 1);
	EXPECT_EQ(Load(), SRM_ERR_INVALID);
	EXPECT_EQ(std::string(err_),
		  "SRMUDP_CONFIG: \"" + dir_ + "\" is not a regular file under 1 MiB");
	std::string bin = File("bin.conf", std::string("LOG = warn\n\0\x01", 13));
	setenv("SRMUDP_CONFIG", bin.c_str(), 1);
	EXPECT_EQ(Load(), SRM_ERR_INVALID);
	EXPECT_EQ(std::string(err_), "SRMUDP_CONFIG: \"" + bin + "\" is not a text file");
}

TEST_F(ConfigTest, ReloadAfterErrorLeavesDefaults)
{
	setenv("SRMUDP_PEERS", ("a=" + Key(1) + " b=bad").c_str(), 1);
	EXPECT_EQ(Load(), SRM_ERR_INVALID);
	EXPECT_EQ(cfg_.peer_count, 0u);
	EXPECT_EQ(cfg_.peers, nullptr);
	EXPECT_EQ(cfg_.connect_timeout_ms, 10000u);
}

} // namespace
