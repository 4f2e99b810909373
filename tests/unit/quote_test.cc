// quote_test.cc — core/config/quote.c: how every error message quotes bad
// input (configuration, key files, the srmudp command).
#include <gtest/gtest.h>

#include <string>

#include "quote.h"

namespace {

std::string Q(const std::string &s)
{
	char buf[QUOTE_BUF];
	return quote_bytes(buf, s.data(), s.size());
}

TEST(Quote, PlainTextInQuotes)
{
	EXPECT_EQ(Q("db"), "\"db\"");
	EXPECT_EQ(Q(""), "\"\"");
}

TEST(Quote, EscapesWhatCouldBreakOrHide)
{
	EXPECT_EQ(Q("a\"b\\c"), "\"a\\\"b\\\\c\"");
	EXPECT_EQ(Q(std::string("\n\x01\x7f\xff", 4)), "\"\\x0a\\x01\\x7f\\xff\"");
	EXPECT_EQ(Q(std::string("a\0b", 3)), "\"a\\x00b\"");
}

TEST(Quote, LongTokensAreCut)
{
	std::string s(QUOTE_MAX, 'a');
	EXPECT_EQ(Q(s), "\"" + s + "\"");
	EXPECT_EQ(Q(s + "b"), "\"" + s + "...\"");
	// The worst case fills the buffer without overflowing it.
	std::string bad(200, '\x01');
	EXPECT_EQ(Q(bad).size(), 2 + QUOTE_MAX * 4 + 3u);
	EXPECT_LT(Q(bad).size(), (size_t)QUOTE_BUF);
}

TEST(Quote, StrStopsAtTheNul)
{
	char buf[QUOTE_BUF];
	EXPECT_STREQ(quote_str(buf, "x y"), "\"x y\"");
}

} // namespace
