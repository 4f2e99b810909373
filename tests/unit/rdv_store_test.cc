// rdv_store_test.cc — the in-memory record store: get/put/del, expiry,
// the size bound (least recently refreshed out first), and notes.
#include <gtest/gtest.h>

#include "rdv_sim.h"

namespace {

rdv_record rec(uint8_t k, uint16_t port = 1000)
{
	rdv_record r{};
	memset(r.pub, k, 32);
	r.reflexive = sim_v4("203.0.113.7", port);
	r.cands[0] = sim_v6("2001:db8::7", port);
	r.cand_count = 1;
	r.last_ts = k;
	r.server_id = 5;
	return r;
}

struct Store {
	rdv_store *st;
	explicit Store(size_t max) : st(rdv_store_memory_new(max)) {}
	~Store() { rdv_store_free(st); }
	int put(const rdv_record &r, uint32_t ttl, uint64_t now) { return st->ops->put(st->ctx, &r, ttl, now); }
	int get(uint8_t k, uint64_t now, rdv_record *out = nullptr)
	{
		uint8_t pub[32];
		rdv_record tmp;
		memset(pub, k, 32);
		return st->ops->get(st->ctx, pub, now, out ? out : &tmp);
	}
	size_t count() { return st->ops->count(st->ctx); }
};

} // namespace

TEST(RdvStore, PutGetReplaceDelete)
{
	Store s(10);
	EXPECT_EQ(rdv_store_memory_new(0), nullptr);
	EXPECT_STREQ(s.st->name, "memory");
	EXPECT_EQ(s.get(1, 0), SRM_ERR_NOTFOUND);
	ASSERT_EQ(s.put(rec(1), 1000, 0), 0);
	rdv_record r;
	ASSERT_EQ(s.get(1, 10, &r), 0);
	EXPECT_EQ(r.last_ts, 1u);
	EXPECT_EQ(r.server_id, 5u);
	rdv_record want = rec(1);
	EXPECT_TRUE(rdv_endpoint_equal(&r.cands[0], &want.cands[0]));
	rdv_record n = rec(1, 2000);
	n.last_ts = 77;
	ASSERT_EQ(s.put(n, 1000, 20), 0);
	ASSERT_EQ(s.get(1, 30, &r), 0);
	EXPECT_EQ(r.last_ts, 77u);
	EXPECT_TRUE(rdv_endpoint_equal(&r.reflexive, &n.reflexive));
	EXPECT_EQ(s.count(), 1u);
	uint8_t pub[32];
	memset(pub, 1, 32);
	EXPECT_EQ(s.st->ops->del(s.st->ctx, pub), 0);
	EXPECT_EQ(s.get(1, 30), SRM_ERR_NOTFOUND);
	EXPECT_EQ(s.st->ops->del(s.st->ctx, pub), 0);
	EXPECT_EQ(s.count(), 0u);
}

TEST(RdvStore, RecordsExpire)
{
	Store s(10);
	ASSERT_EQ(s.put(rec(1), 1000, 0), 0);
	ASSERT_EQ(s.put(rec(2), 1000, 500), 0);
	EXPECT_EQ(s.get(1, 999), 0);
	EXPECT_EQ(s.get(1, 1000), SRM_ERR_NOTFOUND);
	EXPECT_EQ(s.get(2, 1000), 0);
	// A refresh moves the expiry.
	ASSERT_EQ(s.put(rec(2), 1000, 1400), 0);
	EXPECT_EQ(s.get(2, 2399), 0);
	// Expired records are freed by later puts.
	ASSERT_EQ(s.put(rec(3), 1000, 5000), 0);
	EXPECT_EQ(s.count(), 1u);
}

TEST(RdvStore, BoundedLeastRecentlyRefreshedGoesFirst)
{
	Store s(100);
	for (int i = 0; i < 100; i++)
		ASSERT_EQ(s.put(rec((uint8_t)i), 100000, (uint64_t)i), 0);
	ASSERT_EQ(s.put(rec(0), 100000, 200), 0); // 0 refreshed: now the newest
	for (int i = 100; i < 150; i++)
		ASSERT_EQ(s.put(rec((uint8_t)i), 100000, 300), 0);
	EXPECT_EQ(s.count(), 100u);
	EXPECT_EQ(s.get(0, 400), 0);
	for (int i = 1; i <= 50; i++)
		EXPECT_EQ(s.get((uint8_t)i, 400), SRM_ERR_NOTFOUND) << i;
	for (int i = 51; i < 150; i++)
		EXPECT_EQ(s.get((uint8_t)i, 400), 0) << i;
}

TEST(RdvStore, NotesPerServerInOrderAndBounded)
{
	Store s(10);
	uint8_t buf[RDV_MAX_PACKET];
	const uint8_t m1[] = { 1, 2, 3 }, m2[] = { 4 }, m3[] = { 5, 6 };
	EXPECT_EQ(s.st->ops->take_note(s.st->ctx, 7, buf, sizeof buf, 0), 0);
	ASSERT_EQ(s.st->ops->note(s.st->ctx, 7, m1, sizeof m1, 1000, 0), 0);
	ASSERT_EQ(s.st->ops->note(s.st->ctx, 8, m2, sizeof m2, 1000, 0), 0);
	ASSERT_EQ(s.st->ops->note(s.st->ctx, 7, m3, sizeof m3, 1000, 0), 0);
	EXPECT_EQ(s.st->ops->take_note(s.st->ctx, 7, buf, sizeof buf, 10), 3);
	EXPECT_EQ(0, memcmp(buf, m1, 3));
	EXPECT_EQ(s.st->ops->take_note(s.st->ctx, 7, buf, sizeof buf, 10), 2);
	EXPECT_EQ(0, memcmp(buf, m3, 2));
	EXPECT_EQ(s.st->ops->take_note(s.st->ctx, 7, buf, sizeof buf, 10), 0);
	// Server 8's note expired meanwhile.
	EXPECT_EQ(s.st->ops->take_note(s.st->ctx, 8, buf, sizeof buf, 1000), 0);
	EXPECT_EQ(s.st->ops->note(s.st->ctx, 8, m2, 0, 1000, 0), SRM_ERR_INVALID);
	// A flood keeps only the newest RDV_STORE_MAX_NOTES.
	for (uint32_t i = 0; i < RDV_STORE_MAX_NOTES + 100; i++) {
		uint8_t m[4];
		memcpy(m, &i, 4);
		ASSERT_EQ(s.st->ops->note(s.st->ctx, 9, m, 4, 1000, 2000), 0);
	}
	uint32_t first;
	ASSERT_EQ(s.st->ops->take_note(s.st->ctx, 9, buf, sizeof buf, 2000), 4);
	memcpy(&first, buf, 4);
	EXPECT_EQ(first, 100u);
	int n = 1;
	while (s.st->ops->take_note(s.st->ctx, 9, buf, sizeof buf, 2000) > 0)
		n++;
	EXPECT_EQ(n, RDV_STORE_MAX_NOTES);
}
