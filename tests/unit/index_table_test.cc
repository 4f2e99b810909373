// index_table_test.cc — random unique receiver indices.
#include <gtest/gtest.h>

#include <set>
#include <vector>

extern "C" {
#include "index_table.h"
}

namespace {

struct session *S(uintptr_t v) { return reinterpret_cast<struct session *>(v); }

TEST(IndexTable, InsertLookupRemove)
{
	struct index_table *t = index_table_new();
	ASSERT_NE(t, nullptr);
	std::set<uint32_t> used;
	std::vector<uint32_t> idx(1000);
	for (size_t i = 0; i < idx.size(); i++) {
		ASSERT_EQ(index_table_insert(t, S(0x1000 + i), &idx[i]), 0);
		EXPECT_NE(idx[i], 0u);
		EXPECT_TRUE(used.insert(idx[i]).second);
	}
	EXPECT_EQ(index_table_count(t), 1000u);
	for (size_t i = 0; i < idx.size(); i++)
		EXPECT_EQ(index_table_lookup(t, idx[i]), S(0x1000 + i));
	EXPECT_EQ(index_table_lookup(t, 0), nullptr);
	for (size_t i = 0; i < idx.size(); i += 2)
		index_table_remove(t, idx[i]);
	index_table_remove(t, idx[0]); // twice: harmless
	EXPECT_EQ(index_table_count(t), 500u);
	EXPECT_EQ(index_table_lookup(t, idx[0]), nullptr);
	EXPECT_EQ(index_table_lookup(t, idx[1]), S(0x1001));
	index_table_free(t);
}

// An rng that repeats itself: indices stay unique and non-zero anyway.
extern "C" void stuck_rng(void *ctx, void *buf, size_t len)
{
	unsigned *calls = static_cast<unsigned *>(ctx);
	uint32_t v = (*calls)++ / 3; // each value three times, starting with 0
	memset(buf, 0, len);
	memcpy(buf, &v, len < 4 ? len : 4);
}

TEST(IndexTable, CollisionsAndZeroSkipped)
{
	unsigned calls = 0;
	struct index_table *t = index_table_new_rng(stuck_rng, &calls);
	uint32_t a, b, c;
	ASSERT_EQ(index_table_insert(t, S(1), &a), 0);
	ASSERT_EQ(index_table_insert(t, S(2), &b), 0);
	ASSERT_EQ(index_table_insert(t, S(3), &c), 0);
	EXPECT_EQ(a, 1u);
	EXPECT_EQ(b, 2u);
	EXPECT_EQ(c, 3u);
	index_table_free(t);
}

TEST(IndexTable, Bounded)
{
	struct index_table *t = index_table_new();
	uint32_t idx;
	for (int i = 0; i < INDEX_TABLE_MAX; i++)
		ASSERT_EQ(index_table_insert(t, S(1), &idx), 0);
	EXPECT_EQ(index_table_insert(t, S(1), &idx), SRM_ERR_NOMEM);
	index_table_remove(t, idx);
	EXPECT_EQ(index_table_insert(t, S(1), &idx), 0);
	index_table_free(t);
}

} // namespace
