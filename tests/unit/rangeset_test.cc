// rangeset_test.cc — sorted disjoint ranges against a bitmap model.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "rangeset.h"
#include "srmudp.h"

namespace {

struct Model {
	std::vector<bool> bits = std::vector<bool>(300, false);
	void set(uint64_t lo, uint64_t hi, bool v)
	{
		for (uint64_t i = lo; i < hi; i++)
			bits[i] = v;
	}
};

void expect_same(const rangeset &s, const Model &m)
{
	std::vector<bool> got(300, false);
	for (uint32_t i = 0; i < s.n; i++) {
		ASSERT_LT(s.r[i].lo, s.r[i].hi);
		if (i > 0) {
			ASSERT_LT(s.r[i - 1].hi, s.r[i].lo) << "ranges must not touch";
		}
		for (uint64_t k = s.r[i].lo; k < s.r[i].hi; k++)
			got[k] = true;
	}
	EXPECT_TRUE(got == m.bits);
}

TEST(Rangeset, MergeSplitAgainstModel)
{
	std::mt19937_64 r(3);
	for (int round = 0; round < 200; round++) {
		rangeset s;
		rangeset_init(&s, 1000);
		Model m;
		for (int op = 0; op < 60; op++) {
			uint64_t lo = r() % 280, hi = lo + 1 + r() % 20;
			if (r() % 3) {
				ASSERT_EQ(rangeset_add(&s, lo, hi), 0);
				m.set(lo, hi, true);
			} else {
				ASSERT_EQ(rangeset_remove(&s, lo, hi), 0);
				m.set(lo, hi, false);
			}
			expect_same(s, m);
			uint64_t a = r() % 290, b = a + r() % 10;
			bool all = true, any = false;
			for (uint64_t k = a; k < b; k++) {
				all = all && m.bits[k];
				any = any || m.bits[k];
			}
			EXPECT_EQ(rangeset_contains(&s, a, b), all);
			EXPECT_EQ(rangeset_intersects(&s, a, b), any);
			range nx;
			bool has = rangeset_next(&s, a, &nx);
			uint64_t k = a;
			while (k < 300 && !m.bits[k])
				k++;
			ASSERT_EQ(has, k < 300);
			if (has) {
				EXPECT_EQ(nx.lo, k);
			}
		}
		rangeset_free(&s);
	}
}

TEST(Rangeset, BoundedCount)
{
	rangeset s;
	rangeset_init(&s, 4);
	for (uint64_t i = 0; i < 4; i++)
		ASSERT_EQ(rangeset_add(&s, i * 10, i * 10 + 1), 0);
	EXPECT_EQ(rangeset_add(&s, 100, 101), SRM_ERR_NOMEM);
	EXPECT_EQ(s.n, 4u);
	EXPECT_EQ(rangeset_remove(&s, 30, 31), 0);
	EXPECT_EQ(rangeset_add(&s, 0, 5), 0);      // merging always fits
	EXPECT_EQ(rangeset_add(&s, 100, 101), 0);  // room again
	EXPECT_EQ(rangeset_remove(&s, 2, 3), SRM_ERR_NOMEM); // a split would exceed
	EXPECT_TRUE(rangeset_contains(&s, 0, 5));
	rangeset_remove(&s, 0, 1000);
	EXPECT_TRUE(rangeset_empty(&s));
	rangeset_compact(&s);
	EXPECT_EQ(s.r, nullptr);
	rangeset_free(&s);
}

} // namespace
