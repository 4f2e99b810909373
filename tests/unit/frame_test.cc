// frame_test.cc — every frame round-trips byte-exactly; golden bytes for
// the layouts in frame.h; every truncation and malformation is rejected.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "frame.h"

namespace {

frame dec_ok(const std::vector<uint8_t> &v)
{
	frame f;
	int n = frame_decode(v.data(), v.size(), &f);
	EXPECT_EQ(n, (int)v.size());
	return f;
}

// Every proper prefix of a well-formed frame must be rejected.
void expect_prefixes_rejected(const std::vector<uint8_t> &v)
{
	frame f;
	for (size_t k = 0; k < v.size(); k++)
		EXPECT_LT(frame_decode(v.data(), k, &f), 0) << "prefix " << k << " of type " << (int)v[0];
}

TEST(Frame, GoldenOpen)
{
	uint8_t b[16];
	size_t n = frame_put_open(b, sizeof(b), 5, 0x1f90);
	ASSERT_EQ(n, 4u);
	const uint8_t want[] = {FRAME_OPEN, 0x05, 0x90, 0x1f};
	EXPECT_EQ(memcmp(b, want, n), 0);
	frame f = dec_ok(std::vector<uint8_t>(b, b + n));
	EXPECT_EQ(f.type, FRAME_OPEN);
	EXPECT_EQ(f.stream, 5u);
	EXPECT_EQ(f.port, 8080);
	expect_prefixes_rejected(std::vector<uint8_t>(b, b + n));
}

TEST(Frame, GoldenStream)
{
	uint8_t b[64];
	size_t h = frame_put_stream_header(b, sizeof(b), 300, 70000, 3, 1);
	ASSERT_EQ(h, 1u + 2 + 4 + 1);
	memcpy(b + h, "abc", 3);
	const uint8_t want[] = {FRAME_STREAM_FIN, 0x41, 0x2c, 0x80, 0x01, 0x11, 0x70, 0x03, 'a', 'b', 'c'};
	ASSERT_EQ(h + 3, sizeof(want));
	EXPECT_EQ(memcmp(b, want, sizeof(want)), 0);
	std::vector<uint8_t> v(b, b + h + 3);
	frame f = dec_ok(v);
	EXPECT_EQ(f.type, FRAME_STREAM_FIN);
	EXPECT_TRUE(f.fin);
	EXPECT_EQ(f.stream, 300u);
	EXPECT_EQ(f.offset, 70000u);
	ASSERT_EQ(f.len, 3u);
	EXPECT_EQ(memcmp(f.data, "abc", 3), 0);
	EXPECT_EQ(frame_stream_header_size(300, 70000, 3), h);
	expect_prefixes_rejected(v);
}

TEST(Frame, RoundTripAll)
{
	uint8_t b[64];
	std::vector<std::vector<uint8_t>> all;
	size_t n;

	n = frame_put_ping(b, sizeof(b));
	all.emplace_back(b, b + n);
	n = frame_put_accept(b, sizeof(b), 1ull << 40);
	all.emplace_back(b, b + n);
	n = frame_put_reset(b, sizeof(b), 7, RESET_REFUSED, 123456);
	all.emplace_back(b, b + n);
	n = frame_put_max_data(b, sizeof(b), 64u << 20);
	all.emplace_back(b, b + n);
	n = frame_put_max_stream_data(b, sizeof(b), 9, 1u << 20);
	all.emplace_back(b, b + n);
	n = frame_put_close(b, sizeof(b), 3);
	all.emplace_back(b, b + n);
	const uint8_t pd[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	n = frame_put_path(b, sizeof(b), FRAME_PATH_CHALLENGE, pd);
	all.emplace_back(b, b + n);
	n = frame_put_path(b, sizeof(b), FRAME_PATH_RESPONSE, pd);
	all.emplace_back(b, b + n);
	n = frame_put_control(b, sizeof(b), (const uint8_t *)"\x81\xa1k\x01", 4);
	all.emplace_back(b, b + n);

	frame f = dec_ok(all[0]);
	EXPECT_EQ(f.type, FRAME_PING);
	f = dec_ok(all[1]);
	EXPECT_EQ(f.stream, 1ull << 40);
	f = dec_ok(all[2]);
	EXPECT_EQ(f.stream, 7u);
	EXPECT_EQ(f.reason, (uint64_t)RESET_REFUSED);
	EXPECT_EQ(f.value, 123456u);
	f = dec_ok(all[3]);
	EXPECT_EQ(f.value, 64u << 20);
	f = dec_ok(all[4]);
	EXPECT_EQ(f.stream, 9u);
	EXPECT_EQ(f.value, 1u << 20);
	f = dec_ok(all[5]);
	EXPECT_EQ(f.reason, 3u);
	f = dec_ok(all[6]);
	EXPECT_EQ(f.type, FRAME_PATH_CHALLENGE);
	EXPECT_EQ(memcmp(f.path, pd, 8), 0);
	f = dec_ok(all[7]);
	EXPECT_EQ(f.type, FRAME_PATH_RESPONSE);
	f = dec_ok(all[8]);
	EXPECT_EQ(f.type, FRAME_CONTROL);
	EXPECT_EQ(f.len, 4u);
	for (auto &v : all)
		expect_prefixes_rejected(v);
}

TEST(Frame, EncodersRefuseWhatDoesNotFit)
{
	uint8_t b[8];
	EXPECT_EQ(frame_put_open(b, 3, 1, 80), 0u);
	EXPECT_EQ(frame_put_open(b, 4, 1, 80), 4u);
	EXPECT_EQ(frame_put_reset(b, 3, 1, 1, 1), 0u);
	EXPECT_EQ(frame_put_stream_header(b, 8, 1, 0, 10, 0), 0u); // header + data > cap
	EXPECT_EQ(frame_put_max_data(b, 8, VARINT_MAX + 1), 0u);
	EXPECT_EQ(frame_put_path(b, 8, FRAME_PATH_CHALLENGE, b), 0u);
	EXPECT_EQ(frame_put_path(b, 8, FRAME_PING, b), 0u);
}

TEST(Frame, PaddingMustBeZero)
{
	uint8_t p[10] = {0};
	frame f;
	EXPECT_EQ(frame_decode(p, sizeof(p), &f), 10);
	EXPECT_EQ(f.type, FRAME_PADDING);
	p[7] = 1;
	EXPECT_LT(frame_decode(p, sizeof(p), &f), 0);
}

TEST(Frame, RejectsUnknownAckAndOverflow)
{
	frame f;
	uint8_t unknown[] = {0x0e};
	EXPECT_LT(frame_decode(unknown, 1, &f), 0);
	uint8_t ack[] = {FRAME_ACK, 0, 0, 0, 0};
	EXPECT_LT(frame_decode(ack, sizeof(ack), &f), 0); // ack.h's business
	// offset + length beyond 2^62 - 1
	uint8_t big[] = {FRAME_STREAM, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			 0x01, 'x'};
	EXPECT_LT(frame_decode(big, sizeof(big), &f), 0);
	// a length that runs past the packet
	uint8_t over[] = {FRAME_STREAM, 0x00, 0x00, 0x05, 'a', 'b'};
	EXPECT_LT(frame_decode(over, sizeof(over), &f), 0);
	// an oversized control message
	uint8_t ctl[] = {FRAME_CONTROL, 0x44, 0x01};
	EXPECT_LT(frame_decode(ctl, sizeof(ctl), &f), 0);
	EXPECT_LT(frame_decode(ctl, 0, &f), 0);
}

TEST(Frame, RandomBytesNeverOverread)
{
	std::mt19937_64 r(7);
	for (int i = 0; i < 20000; i++) {
		size_t n = r() % 40;
		std::vector<uint8_t> v(n);
		for (auto &b : v)
			b = (uint8_t)r();
		if (n)
			v[0] = (uint8_t)(r() % 0x0f);
		frame f;
		int k = frame_decode(v.data(), v.size(), &f);
		if (k > 0) {
			EXPECT_LE((size_t)k, n);
			if (f.data) {
				EXPECT_LE(f.data + f.len, v.data() + n);
			}
		}
	}
}

} // namespace
