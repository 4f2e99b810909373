// peer_suggest_test.cc — srm_peer_suggest: a name one typo from a peer's
// gets a hint (issue 18, item 7: "bpb" went to the system DNS unremarked).
#include <gtest/gtest.h>

#include <string.h>

extern "C" {
#include "srmudp.h"
}

namespace {

const char *suggest(const char *name)
{
	static srm_peer_config peers[3];
	static const char *const names[] = { "bob", "alice", "db" };
	srm_config cfg{};
	for (int i = 0; i < 3; i++)
		snprintf(peers[i].name, sizeof(peers[i].name), "%s", names[i]);
	cfg.peers = peers;
	cfg.peer_count = 3;
	return srm_peer_suggest(&cfg, name);
}

TEST(PeerSuggest, OneTypoFromAPeerNamesIt)
{
	EXPECT_STREQ(suggest("bpb"), "bob");
	EXPECT_STREQ(suggest("BPB"), "bob");
	EXPECT_STREQ(suggest("bo"), "bob");
	EXPECT_STREQ(suggest("alise"), "alice");
	EXPECT_EQ(suggest("alcie"), nullptr); // two edits in five letters: too far
}

TEST(PeerSuggest, NoHintForExactOrUnrelatedNames)
{
	EXPECT_EQ(suggest("bob"), nullptr);      // a peer: no typo
	EXPECT_EQ(suggest("ab"), nullptr);       // one edit from "db", but too short to tell
	EXPECT_EQ(suggest("example.com"), nullptr);
	EXPECT_EQ(suggest(""), nullptr);
}

} // namespace
