// compress_test.cc — record framing and adaptive zstd: exact round trips
// through any split of the byte stream, text shrinks, random data turns
// AUTO off, a slow CPU turns it off, bombs and garbage are rejected.
#include <gtest/gtest.h>

#include <random>
#include <vector>
#include <zstd.h>

#include "compress.h"
#include "wire.h"

namespace {

std::vector<uint8_t> text(size_t n, uint64_t seed)
{
	static const char *w[] = {"GET /index.html HTTP/1.1\r\n", "Host: example\r\n",
				  "{\"key\": \"value\", \"n\": 12}\n", "lorem ipsum dolor "};
	std::mt19937_64 r(seed);
	std::vector<uint8_t> v;
	while (v.size() < n) {
		const char *s = w[r() % 4];
		v.insert(v.end(), s, s + strlen(s));
	}
	v.resize(n);
	return v;
}

std::vector<uint8_t> noise(size_t n, uint64_t seed)
{
	std::vector<uint8_t> v(n);
	std::mt19937_64 r(seed);
	for (auto &b : v)
		b = (uint8_t)r();
	return v;
}

// Encode data in records of random sizes; returns the wire stream.
compress_ctx zc = {}; // shared, as a conn shares one per peer

std::vector<uint8_t> encode(compress_tx *tx, const std::vector<uint8_t> &d, std::mt19937_64 &r)
{
	std::vector<uint8_t> wire, buf(compress_tx_bound(COMPRESS_RECORD_MAX));
	for (size_t off = 0; off < d.size();) {
		size_t n = std::min(d.size() - off, (size_t)(1 + r() % COMPRESS_RECORD_MAX));
		ssize_t k = compress_tx_record(tx, &zc, d.data() + off, n, buf.data(), buf.size());
		EXPECT_GT(k, 0);
		if (k <= 0)
			break;
		wire.insert(wire.end(), buf.begin(), buf.begin() + k);
		off += n;
	}
	return wire;
}

// Decode the wire stream fed in random pieces into random output sizes.
std::vector<uint8_t> decode(compress_rx *rx, const std::vector<uint8_t> &wire, std::mt19937_64 &r,
			    bool *ok)
{
	std::vector<uint8_t> out;
	size_t in = 0, avail = 0;
	*ok = true;
	for (int guard = 0; guard < 10000000; guard++) {
		if (avail < wire.size() && r() % 2)
			avail = std::min(wire.size(), avail + 1 + r() % 5000);
		std::vector<uint8_t> o(1 + r() % 20000);
		size_t used = 0;
		ssize_t got = compress_rx_decode(rx, &zc, wire.data() + in, avail - in, &used, o.data(), o.size());
		if (got < 0) {
			*ok = false;
			return out;
		}
		in += used;
		out.insert(out.end(), o.begin(), o.begin() + got);
		if (in == wire.size() && avail == wire.size() && got == 0 && used == 0 &&
		    compress_rx_idle(rx))
			break;
	}
	return out;
}

TEST(Compress, RoundTripExactAllModes)
{
	std::mt19937_64 r(1);
	for (srm_compress mode : {SRM_COMPRESS_AUTO, SRM_COMPRESS_ON, SRM_COMPRESS_OFF}) {
		for (int round = 0; round < 6; round++) {
			auto d = round % 2 ? text(300000 + r() % 100000, (uint64_t)round)
					   : noise(200000, (uint64_t)round);
			compress_tx tx;
			compress_rx rx;
			compress_tx_init(&tx, mode);
			compress_rx_init(&rx);
			auto wire = encode(&tx, d, r);
			bool ok;
			auto back = decode(&rx, wire, r, &ok);
			EXPECT_TRUE(ok);
			ASSERT_EQ(back.size(), d.size()) << "mode " << mode << " round " << round;
			EXPECT_TRUE(back == d);
			if (mode == SRM_COMPRESS_OFF) {
				EXPECT_EQ(tx.records_zstd, 0u);
			}
			compress_rx_free(&rx);
		}
	}
}

TEST(Compress, TextShrinks)
{
	compress_tx tx;
	compress_tx_init(&tx, SRM_COMPRESS_AUTO);
	std::mt19937_64 r(2);
	auto d = text(2 << 20, 5);
	auto wire = encode(&tx, d, r);
	EXPECT_LT(wire.size(), d.size() / 4);
	EXPECT_TRUE(tx.active);
	EXPECT_EQ(tx.records_raw, 0u);
}

TEST(Compress, RandomDataSwitchesAutoOffThenRetries)
{
	compress_tx tx;
	compress_tx_init(&tx, SRM_COMPRESS_AUTO);
	std::vector<uint8_t> buf(compress_tx_bound(COMPRESS_RECORD_MAX));
	std::vector<uint8_t> d;
	int zstd_records = 0;
	for (int i = 0; i < 8; i++) {
		d = noise(COMPRESS_RECORD_MAX, 3 + (uint64_t)i);
		ssize_t k = compress_tx_record(&tx, &zc, d.data(), d.size(), buf.data(), buf.size());
		ASSERT_GT(k, 0);
	}
	zstd_records = (int)tx.records_zstd;
	EXPECT_FALSE(tx.active);
	EXPECT_EQ(tx.off_reason, COMPRESS_OFF_RATIO);
	EXPECT_EQ(zstd_records, (int)(COMPRESS_SAMPLE_BYTES / COMPRESS_RECORD_MAX));
	// Raw records carry the data with only the header as overhead.
	ssize_t k = compress_tx_record(&tx, &zc, d.data(), d.size(), buf.data(), buf.size());
	EXPECT_EQ(k, (ssize_t)(d.size() + 1 + varint_size(d.size())));
	EXPECT_EQ(buf[0], COMPRESS_RAW);
	// After COMPRESS_RETRY_BYTES raw, it tries again.
	uint64_t sent = d.size();
	while (!tx.active && sent < 2 * COMPRESS_RETRY_BYTES) {
		compress_tx_record(&tx, &zc, d.data(), d.size(), buf.data(), buf.size());
		sent += d.size();
	}
	EXPECT_TRUE(tx.active);
	EXPECT_EQ(sent + 4 * d.size(), (uint64_t)COMPRESS_RETRY_BYTES); // 4 raw in the first loop
}

TEST(Compress, SlowCpuSwitchesAutoOff)
{
	compress_tx tx;
	compress_tx_init(&tx, SRM_COMPRESS_AUTO);
	// 100 MB/s of zstd against a 1 GB/s link: the CPU is the bottleneck.
	for (int i = 0; i < 20 && tx.active; i++)
		compress_tx_note_cpu(&tx, 65536, 655, 1000000000);
	EXPECT_FALSE(tx.active);
	EXPECT_EQ(tx.off_reason, COMPRESS_OFF_CPU);
	// The same CPU against a 10 MB/s link keeps compressing.
	compress_tx t2;
	compress_tx_init(&t2, SRM_COMPRESS_AUTO);
	for (int i = 0; i < 40; i++)
		compress_tx_note_cpu(&t2, 65536, 655, 10000000);
	EXPECT_TRUE(t2.active);
	// ON ignores the CPU.
	compress_tx t3;
	compress_tx_init(&t3, SRM_COMPRESS_ON);
	for (int i = 0; i < 40; i++)
		compress_tx_note_cpu(&t3, 65536, 655, 1000000000);
	EXPECT_TRUE(compress_tx_wants(&t3, 10));
	EXPECT_FALSE(compress_tx_wants(&t2, COMPRESS_MIN_RECORD - 1));
}

std::vector<uint8_t> record_of(const std::vector<uint8_t> &payload)
{
	std::vector<uint8_t> rec = {COMPRESS_ZSTD};
	uint8_t h[8];
	size_t hn = varint_put(h, 8, payload.size());
	rec.insert(rec.end(), h, h + hn);
	rec.insert(rec.end(), payload.begin(), payload.end());
	return rec;
}

std::vector<uint8_t> zstd_frame(const std::vector<uint8_t> &raw)
{
	std::vector<uint8_t> z(ZSTD_compressBound(raw.size()));
	size_t n = ZSTD_compress(z.data(), z.size(), raw.data(), raw.size(), 3);
	EXPECT_FALSE(ZSTD_isError(n));
	z.resize(n);
	return z;
}

bool decodes(const std::vector<uint8_t> &wire, size_t *out_total = nullptr)
{
	std::mt19937_64 r(4);
	compress_rx rx;
	compress_rx_init(&rx);
	bool ok;
	auto back = decode(&rx, wire, r, &ok);
	if (out_total)
		*out_total = back.size();
	EXPECT_LE(compress_rx_memory(&rx), (size_t)COMPRESS_PAYLOAD_MAX);
	compress_rx_free(&rx);
	return ok;
}

TEST(Compress, BombsAndGarbageAreRejected)
{
	size_t total = 0;
	// 64 KiB + 1: one byte over the per-record bound, declared in the frame.
	EXPECT_FALSE(decodes(record_of(zstd_frame(std::vector<uint8_t>(COMPRESS_RECORD_MAX + 1, 0)))));
	// A 64 MB bomb in a few KB: refused before any output.
	auto bomb = zstd_frame(std::vector<uint8_t>(64u << 20, 0x41));
	EXPECT_LT(bomb.size(), 10000u);
	EXPECT_FALSE(decodes(record_of(bomb), &total));
	EXPECT_EQ(total, 0u);
	// Exactly 64 KiB is fine.
	EXPECT_TRUE(decodes(record_of(zstd_frame(std::vector<uint8_t>(COMPRESS_RECORD_MAX, 7))), &total));
	EXPECT_EQ(total, (size_t)COMPRESS_RECORD_MAX);
	// Two frames in one record: more output than the first one declares.
	auto two = zstd_frame(std::vector<uint8_t>(1000, 1));
	auto second = zstd_frame(std::vector<uint8_t>(60000, 2));
	two.insert(two.end(), second.begin(), second.end());
	EXPECT_FALSE(decodes(record_of(two)));
	// A streamed frame without a content size.
	{
		ZSTD_CCtx *c = ZSTD_createCCtx();
		std::vector<uint8_t> raw(1000, 1), z(2000);
		ZSTD_inBuffer ib = {raw.data(), raw.size(), 0};
		ZSTD_outBuffer ob = {z.data(), z.size(), 0};
		ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_flush); // size unknown when the header goes out
		ZSTD_inBuffer none = {nullptr, 0, 0};
		ZSTD_compressStream2(c, &ob, &none, ZSTD_e_end);
		ZSTD_freeCCtx(c);
		EXPECT_EQ(ZSTD_getFrameContentSize(z.data(), ob.pos), ZSTD_CONTENTSIZE_UNKNOWN);
		z.resize(ob.pos);
		EXPECT_FALSE(decodes(record_of(z)));
	}
	// Unknown kind, zero length, oversized lengths, corrupt payload.
	const std::vector<std::vector<uint8_t>> bad = {
		{2, 1, 'x'},
		{COMPRESS_RAW, 0},
		{COMPRESS_RAW, 0x80, 0x01, 0x00, 0x01},     // 65537 raw bytes
		{COMPRESS_ZSTD, 0x80, 0x02, 0x00, 0x00},    // 128 KiB payload
		{COMPRESS_ZSTD, 4, 0xde, 0xad, 0xbe, 0xef}, // not zstd
		{COMPRESS_RAW, 0xc0, 0, 0, 0, 0, 0, 0, 1, 'x'}, // an 8-byte length
	};
	for (auto &b : bad)
		EXPECT_FALSE(decodes(b)) << "kind " << (int)b[0];
	// After a failure every call fails.
	compress_rx rx;
	compress_rx_init(&rx);
	size_t used;
	uint8_t o[16];
	EXPECT_LT(compress_rx_decode(&rx, &zc, bad[0].data(), bad[0].size(), &used, o, 16), 0);
	EXPECT_LT(compress_rx_decode(&rx, &zc, bad[1].data(), 0, &used, o, 16), 0);
	compress_rx_free(&rx);
}

TEST(Compress, RandomGarbageNeverCrashes)
{
	std::mt19937_64 r(5);
	for (int i = 0; i < 2000; i++) {
		auto g = noise(1 + r() % 300, (uint64_t)i);
		g[0] = (uint8_t)(r() % 2);
		compress_rx rx;
		compress_rx_init(&rx);
		std::vector<uint8_t> o(COMPRESS_RECORD_MAX);
		size_t used = 0;
		ssize_t got = compress_rx_decode(&rx, &zc, g.data(), g.size(), &used, o.data(), o.size());
		EXPECT_LE(used, g.size());
		EXPECT_LE(got, (ssize_t)COMPRESS_RECORD_MAX);
		compress_rx_free(&rx);
	}
}

} // namespace
