// json_test.cc — core/config/json.c: the writer's escaping and limit, the
// tolerant reader, and that what the writer writes the reader reads.
#include <gtest/gtest.h>

#include <string>

#include "json.h"

namespace {

std::string Str(const char *s)
{
	struct json_out o = {};
	json_out_string(&o, s);
	std::string r(o.buf, o.len);
	json_out_free(&o);
	return r;
}

TEST(JsonOut, Strings)
{
	EXPECT_EQ(Str("redis"), "\"redis\"");
	EXPECT_EQ(Str(""), "\"\"");
	EXPECT_EQ(Str("a\"b\\c"), "\"a\\\"b\\\\c\"");
	// Everything outside printable ASCII as \u00XX: the text stays ASCII.
	EXPECT_EQ(Str("\n\x1b\x7f\xc3\xa9"), "\"\\u000a\\u001b\\u007f\\u00c3\\u00a9\"");
}

TEST(JsonOut, PrintfGrowsAndStaysTerminated)
{
	struct json_out o = {};
	json_out_printf(&o, "{\"pid\":%d", 42);
	for (int i = 0; i < 2000; i++)
		json_out_printf(&o, ",\"k%d\":%d", i, i);
	json_out_printf(&o, "}");
	EXPECT_FALSE(o.cut);
	EXPECT_EQ(strlen(o.buf), o.len);
	EXPECT_EQ(o.buf[0], '{');
	EXPECT_EQ(o.buf[o.len - 1], '}');
	struct json_node *n = json_parse(o.buf, o.len);
	ASSERT_NE(n, nullptr);
	double v = 0;
	EXPECT_TRUE(json_get_num(n, "k1999", &v));
	EXPECT_EQ(v, 1999);
	json_free(n);
	json_out_free(&o);
	EXPECT_EQ(o.buf, nullptr);
	EXPECT_EQ(o.len, 0u);
}

TEST(JsonOut, CutAtTheLimitAndNothingAfter)
{
	struct json_out o = {};
	std::string chunk(1 << 20, 'x');
	for (int i = 0; i < 6; i++)
		json_out_printf(&o, "%s", chunk.c_str());
	EXPECT_TRUE(o.cut);
	EXPECT_LE(o.len, (size_t)JSON_OUT_MAX);
	EXPECT_EQ(o.len % chunk.size(), 0u); // only whole writes
	EXPECT_EQ(strlen(o.buf), o.len);
	size_t len = o.len;
	json_out_printf(&o, "y");
	json_out_string(&o, "y");
	EXPECT_EQ(o.len, len);
	json_out_free(&o);
}

TEST(JsonParse, StatusDocument)
{
	const char *doc =
		"{\"pid\":1234,\"program\":\"redis-server\",\"udp_port\":4000,"
		"\"rendezvous\":{\"configured\":true,\"registered\":false},"
		"\"loss\":0.00125,\"handshake_age_ms\":-1,\"future\":[1,{\"x\":null}],"
		"\"peers\":[{\"name\":\"db\",\"streams\":[]},{\"name\":\"w\\u00e9b\\n\"}]}\n";
	struct json_node *n = json_parse(doc, strlen(doc));
	ASSERT_NE(n, nullptr);
	EXPECT_EQ(n->type, JSON_OBJ);
	double v = 0;
	EXPECT_TRUE(json_get_num(n, "pid", &v));
	EXPECT_EQ(v, 1234);
	EXPECT_TRUE(json_get_num(n, "loss", &v));
	EXPECT_DOUBLE_EQ(v, 0.00125);
	EXPECT_TRUE(json_get_num(n, "handshake_age_ms", &v));
	EXPECT_EQ(v, -1);
	EXPECT_FALSE(json_get_num(n, "program", &v)); // a string, not a number
	EXPECT_FALSE(json_get_num(n, "absent", &v));
	const struct json_node *r = json_get(n, "rendezvous");
	EXPECT_TRUE(json_get_true(r, "configured"));
	EXPECT_FALSE(json_get_true(r, "registered"));
	EXPECT_FALSE(json_get_true(nullptr, "configured"));
	const struct json_node *peers = json_get(n, "peers");
	ASSERT_NE(peers, nullptr);
	ASSERT_EQ(peers->type, JSON_ARR);
	ASSERT_NE(peers->child, nullptr);
	EXPECT_STREQ(json_get(peers->child, "name")->str, "db");
	ASSERT_NE(peers->child->next, nullptr);
	EXPECT_STREQ(json_get(peers->child->next, "name")->str, "w\xc3\xa9" "b\n");
	EXPECT_EQ(json_get(peers, "name"), nullptr); // not an object
	json_free(n);
}

TEST(JsonParse, Rejects)
{
	const char *bad[] = { "",        "{",           "{\"a\":}",   "{\"a\" 1}", "[1,]x",
			      "[1 2]",   "\"open",      "{a:1}",      "tru",       "-",
			      "1e",      "{\"a\":1}}", "\"\\u12\"",  "nul",       "[1,",
			      "{\"a\":1,}" };
	for (const char *s : bad) {
		struct json_node *n = json_parse(s, strlen(s));
		EXPECT_EQ(n, nullptr) << s;
		json_free(n);
	}
}

TEST(JsonParse, DepthIsBounded)
{
	std::string ok(JSON_MAX_DEPTH, '['), deep(JSON_MAX_DEPTH + 2, '[');
	ok += std::string(JSON_MAX_DEPTH, ']');
	deep += std::string(JSON_MAX_DEPTH + 2, ']');
	struct json_node *n = json_parse(ok.data(), ok.size());
	EXPECT_NE(n, nullptr);
	json_free(n);
	EXPECT_EQ(json_parse(deep.data(), deep.size()), nullptr);
}

TEST(JsonParse, WhatTheWriterWrites)
{
	struct json_out o = {};
	json_out_printf(&o, "{\"name\":");
	json_out_string(&o, "a \"quoted\"\\ name\t");
	json_out_printf(&o, ",\"n\":%llu,\"x\":%.3f}", 18446744073709551615ull, 1.5);
	struct json_node *n = json_parse(o.buf, o.len);
	ASSERT_NE(n, nullptr);
	EXPECT_STREQ(json_get(n, "name")->str, "a \"quoted\"\\ name\t");
	double v = 0;
	EXPECT_TRUE(json_get_num(n, "x", &v));
	EXPECT_EQ(v, 1.5);
	json_free(n);
	json_out_free(&o);
}

} // namespace
