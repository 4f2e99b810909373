// url_test.cc — core/config/url.c: SRMUDP_RELAY URLs, proxy URLs, and the
// choice of proxy (SRMUDP_PROXY, the curl variables, no_proxy).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "url.h"

namespace {

struct relay_url Relay(const std::string &s)
{
	struct relay_url u;
	char err[256] = "";
	EXPECT_EQ(relay_url_parse("SRMUDP_RELAY", s.c_str(), &u, err, sizeof(err)), 0) << err;
	return u;
}

std::string RelayErr(const std::string &s)
{
	struct relay_url u;
	char err[256] = "";
	EXPECT_EQ(relay_url_parse("SRMUDP_RELAY", s.c_str(), &u, err, sizeof(err)), SRM_ERR_INVALID) << s;
	return err;
}

TEST(UrlRelay, Parses)
{
	struct relay_url u = Relay("ws://relay.example.net:8080/srmudp");
	EXPECT_FALSE(u.tls);
	EXPECT_STREQ(u.host, "relay.example.net");
	EXPECT_EQ(u.port, 8080);
	EXPECT_STREQ(u.path, "/srmudp");
	EXPECT_STREQ(u.host_header, "relay.example.net:8080");

	u = Relay("WSS://relay.example.net/srmudp");
	EXPECT_TRUE(u.tls);
	EXPECT_EQ(u.port, 443);
	EXPECT_STREQ(u.host_header, "relay.example.net");

	u = Relay("ws://10.0.0.1");
	EXPECT_EQ(u.port, 80);
	EXPECT_STREQ(u.path, "/");
	EXPECT_STREQ(u.host_header, "10.0.0.1");

	u = Relay("wss://[2001:db8::1]:8443/a/b");
	EXPECT_STREQ(u.host, "2001:db8::1");
	EXPECT_EQ(u.port, 8443);
	EXPECT_STREQ(u.path, "/a/b");
	EXPECT_STREQ(u.host_header, "[2001:db8::1]:8443");

	u = Relay("ws://[::1]/");
	EXPECT_STREQ(u.host_header, "[::1]");
	u = Relay("wss://x:443/srmudp");
	EXPECT_STREQ(u.host_header, "x");
}

TEST(UrlRelay, Rejects)
{
	EXPECT_EQ(RelayErr("ftp://x"), "SRMUDP_RELAY: \"ftp://x\" is not a ws:// or wss:// URL");
	EXPECT_EQ(RelayErr("relay:80"), "SRMUDP_RELAY: \"relay:80\" is not a ws:// or wss:// URL");
	EXPECT_EQ(RelayErr("ws://u:p@x/srmudp"),
		  "SRMUDP_RELAY: bad relay URL \"ws://u:p@x/srmudp\": user information is not allowed");
	const std::pair<std::string, const char *> cases[] = {
		{ "ws://x/srmudp?a=1", "query or fragment" },
		{ "ws://x/srmudp#f", "query or fragment" },
		{ "ws://x?a", "query or fragment" },
		{ "ws://", "no host" },
		{ "ws://:80/", "no host" },
		{ "ws://x:/", "empty port" },
		{ "ws://x:0/", "out of range" },
		{ "ws://x:65536/", "out of range" },
		{ "ws://x:123456/", "bad port" },
		{ "ws://x:8o/", "bad port" },
		{ "ws://[::1/", "missing ']'" },
		{ "ws://[nope]/", "bad IPv6" },
		{ "ws://[::1]x/", "junk after" },
		{ "ws://a b/", "bad character in host" },
		{ "ws://x/a b", "bad character in path" },
		{ "ws://x/\x01", "\\x01" },
		{ "ws://x/" + std::string(300, 'a'), "path too long" },
		{ "ws://" + std::string(254, 'a'), "host name too long" },
	};
	for (const auto &c : cases)
		EXPECT_NE(RelayErr(c.first).find(c.second), std::string::npos) << c.first;
}

TEST(UrlRelay, List)
{
	struct relay_url u[RELAY_URL_MAX];
	size_t n = 99;
	char err[256] = "";

	ASSERT_EQ(relay_url_list_parse("SRMUDP_RELAY", " ws://a/srmudp , wss://b:444/srmudp", u, &n, err,
				       sizeof(err)),
		  0)
		<< err;
	ASSERT_EQ(n, 2u);
	EXPECT_STREQ(u[0].host, "a");
	EXPECT_STREQ(u[1].host, "b");
	EXPECT_EQ(u[1].port, 444);
	EXPECT_EQ(relay_url_list_parse("SRMUDP_RELAY", "  ", u, &n, err, sizeof(err)), 0);
	EXPECT_EQ(n, 0u);
	EXPECT_EQ(relay_url_list_parse("SRMUDP_RELAY", "ws://a,,ws://b", u, &n, err, sizeof(err)),
		  SRM_ERR_INVALID);
	EXPECT_NE(std::string(err).find("empty URL"), std::string::npos);
	EXPECT_EQ(relay_url_list_parse("SRMUDP_RELAY", "ws://a,", u, &n, err, sizeof(err)), SRM_ERR_INVALID);
	// The error quotes the bad item, not the list.
	EXPECT_EQ(relay_url_list_parse("SRMUDP_RELAY", "ws://a, ftp://x ,ws://b", u, &n, err, sizeof(err)),
		  SRM_ERR_INVALID);
	EXPECT_STREQ(err, "SRMUDP_RELAY: \"ftp://x\" is not a ws:// or wss:// URL");
	std::string eight, nine;
	for (int i = 0; i < RELAY_URL_MAX; i++)
		eight += (i ? "," : "") + std::string("ws://h") + std::to_string(i);
	nine = eight + ",ws://z";
	EXPECT_EQ(relay_url_list_parse("SRMUDP_RELAY", eight.c_str(), u, &n, err, sizeof(err)), 0);
	EXPECT_EQ(n, (size_t)RELAY_URL_MAX);
	EXPECT_EQ(relay_url_list_parse("SRMUDP_RELAY", nine.c_str(), u, &n, err, sizeof(err)),
		  SRM_ERR_INVALID);
	EXPECT_NE(std::string(err).find("\"ws://z\""), std::string::npos);
}

TEST(UrlProxy, Parses)
{
	struct proxy_url p;
	char err[256] = "";

	ASSERT_EQ(proxy_url_parse("http_proxy", "http://proxy.corp:3128/", &p, err, sizeof(err)), 0) << err;
	EXPECT_STREQ(p.host, "proxy.corp");
	EXPECT_EQ(p.port, 3128);
	EXPECT_STREQ(p.auth, "");
	ASSERT_EQ(proxy_url_parse("http_proxy", "proxy.corp", &p, err, sizeof(err)), 0);
	EXPECT_EQ(p.port, PROXY_DEFAULT_PORT);
	ASSERT_EQ(proxy_url_parse("http_proxy", "HTTP://[fd00::1]:8080", &p, err, sizeof(err)), 0);
	EXPECT_STREQ(p.host, "fd00::1");
	ASSERT_EQ(proxy_url_parse("http_proxy", "http://user:pass@10.0.0.1:3128", &p, err, sizeof(err)), 0);
	EXPECT_STREQ(p.auth, "dXNlcjpwYXNz"); // base64("user:pass")
	ASSERT_EQ(proxy_url_parse("http_proxy", "http://us%40r:p%3Ass@x:1", &p, err, sizeof(err)), 0);
	EXPECT_STREQ(p.auth, "dXNAcjpwOnNz"); // base64("us@r:p:ss")
	ASSERT_EQ(proxy_url_parse("http_proxy", "http://user@x:1", &p, err, sizeof(err)), 0);
	EXPECT_STREQ(p.auth, "dXNlcjo="); // base64("user:")
}

TEST(UrlProxy, Rejects)
{
	struct proxy_url p;
	char err[256] = "";

	EXPECT_EQ(proxy_url_parse("https_proxy", "socks5://x:1080", &p, err, sizeof(err)), SRM_ERR_INVALID);
	EXPECT_STREQ(err, "https_proxy: \"socks5://x:1080\" is not an http:// proxy URL "
			  "(only HTTP proxies are supported)");
	EXPECT_EQ(proxy_url_parse("https_proxy", "https://x:1080", &p, err, sizeof(err)), SRM_ERR_INVALID);
	EXPECT_EQ(proxy_url_parse("SRMUDP_PROXY", "http://x:1/path", &p, err, sizeof(err)), SRM_ERR_INVALID);
	EXPECT_NE(std::string(err).find("path"), std::string::npos);
	EXPECT_EQ(proxy_url_parse("SRMUDP_PROXY", "http://x:99999", &p, err, sizeof(err)), SRM_ERR_INVALID);
	EXPECT_EQ(proxy_url_parse("SRMUDP_PROXY", "http://u:%zz@x:1", &p, err, sizeof(err)), SRM_ERR_INVALID);
	EXPECT_NE(std::string(err).find("password"), std::string::npos);
	// The password never reaches the message.
	EXPECT_EQ(proxy_url_parse("SRMUDP_PROXY", "http://u:secret@x:bad", &p, err, sizeof(err)),
		  SRM_ERR_INVALID);
	EXPECT_EQ(std::string(err).find("secret"), std::string::npos) << err;
	EXPECT_EQ(proxy_url_parse("SRMUDP_PROXY", "http://u%00:p@x:1", &p, err, sizeof(err)), SRM_ERR_INVALID);
	EXPECT_EQ(proxy_url_parse("SRMUDP_PROXY", "http://", &p, err, sizeof(err)), SRM_ERR_INVALID);
}

TEST(UrlNoProxy, CurlRules)
{
	struct Case {
		const char *no_proxy, *host;
		bool match;
	};
	const Case cases[] = {
		{ "*", "anything.example", true },
		{ "example.com", "example.com", true },
		{ "example.com", "relay.example.com", true },
		{ ".example.com", "relay.example.com", true },
		{ ".example.com", "example.com", true },
		{ "EXAMPLE.com", "Relay.example.COM.", true },
		{ "example.com", "badexample.com", false },
		{ "relay.example.com", "example.com", false },
		{ "localhost, 10.0.0.1 ,other", "10.0.0.1", true },
		{ "a b\texample.com", "x.example.com", true },
		{ "0.0.1", "10.0.0.1", false }, // addresses match only themselves
		{ "10.0.0.1", "10.0.0.12", false },
		{ "example.com:443", "relay.example.com", true },
		{ "10.0.0.1:8080", "10.0.0.1", true },
		{ "::1", "::1", true },
		{ "[::1]:8080", "::1", true },
		{ "[2001:DB8::1]", "2001:db8::1", true },
		{ "::1", "::2", false },
		{ "", "x", false },
		{ NULL, "x", false },
		{ ",,.", "x", false },
		{ "*.example.com", "a.example.com", false }, // curl has no globs
	};
	for (const Case &c : cases)
		EXPECT_EQ(relay_no_proxy_match(c.no_proxy, c.host), c.match)
			<< (c.no_proxy ? c.no_proxy : "NULL") << " vs " << c.host;
}

std::map<std::string, std::string> g_env;

char *FakeGetenv(const char *name)
{
	auto it = g_env.find(name);
	return it == g_env.end() ? NULL : const_cast<char *>(it->second.c_str());
}

// "" for direct, else host:port of the chosen proxy, or "error: ..."
std::string Choose(const std::string &url, const char *srmudp_proxy)
{
	struct relay_url u = Relay(url);
	struct proxy_url p;
	char err[256] = "";
	int rc = relay_proxy_for(&u, srmudp_proxy, FakeGetenv, &p, err, sizeof(err));
	if (rc < 0)
		return std::string("error: ") + err;
	if (rc == 0)
		return "";
	return std::string(p.host) + ":" + std::to_string(p.port);
}

TEST(UrlProxyFor, Precedence)
{
	g_env = {};
	EXPECT_EQ(Choose("wss://r/srmudp", NULL), "");
	g_env = { { "https_proxy", "http://lower:1" }, { "HTTPS_PROXY", "http://upper:2" },
		  { "http_proxy", "http://plain:3" }, { "HTTP_PROXY", "http://cgi:4" } };
	EXPECT_EQ(Choose("wss://r/srmudp", NULL), "lower:1");
	EXPECT_EQ(Choose("ws://r/srmudp", NULL), "plain:3");
	EXPECT_EQ(Choose("wss://r/srmudp", "http://mine:5"), "mine:5");
	EXPECT_EQ(Choose("ws://r/srmudp", "http://mine:5"), "mine:5");
	EXPECT_EQ(Choose("wss://r/srmudp", ""), ""); // SRMUDP_PROXY="" turns proxies off
	g_env = { { "https_proxy", "" }, { "HTTPS_PROXY", "http://upper:2" }, { "HTTP_PROXY", "http://cgi:4" } };
	EXPECT_EQ(Choose("wss://r/srmudp", NULL), "upper:2");
	EXPECT_EQ(Choose("ws://r/srmudp", NULL), ""); // never HTTP_PROXY
}

TEST(UrlProxyFor, NoProxy)
{
	g_env = { { "https_proxy", "http://p:1" }, { "no_proxy", "internal.corp,10.0.0.1" },
		  { "NO_PROXY", "*" } };
	EXPECT_EQ(Choose("wss://relay.internal.corp/srmudp", NULL), "");
	EXPECT_EQ(Choose("wss://10.0.0.1/srmudp", NULL), "");
	EXPECT_EQ(Choose("wss://relay.example/srmudp", NULL), "p:1"); // no_proxy wins over NO_PROXY
	EXPECT_EQ(Choose("wss://relay.internal.corp/srmudp", "http://mine:5"), ""); // as curl -x
	g_env = { { "https_proxy", "http://p:1" }, { "no_proxy", "" }, { "NO_PROXY", "*" } };
	EXPECT_EQ(Choose("wss://relay.example/srmudp", NULL), "");
}

TEST(UrlProxyFor, BadValueNamesTheVariable)
{
	g_env = { { "https_proxy", "socks5://p:1" } };
	EXPECT_EQ(Choose("wss://r/srmudp", NULL),
		  "error: https_proxy: \"socks5://p:1\" is not an http:// proxy URL "
		  "(only HTTP proxies are supported)");
	EXPECT_EQ(Choose("ws://r/srmudp", "ftp://x").substr(0, 20), "error: SRMUDP_PROXY:");
	g_env = { { "HTTPS_PROXY", "http://p:0" } };
	EXPECT_EQ(Choose("wss://r/srmudp", NULL).substr(0, 19), "error: HTTPS_PROXY:");
	g_env = {};
}

} // namespace
