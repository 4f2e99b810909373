// via_test.cc — the WIRE_VIA codec (core/protocol/via.c): wrap, parse,
// turn, and what is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

extern "C" {
#include "via.h"
#include "noise.h"
}

namespace {

std::vector<uint8_t> inner(uint8_t type, size_t len = 100)
{
	std::vector<uint8_t> p(len, 0xab);
	wire_put_header(p.data(), (wire_type)type);
	return p;
}

} // namespace

TEST(Via, WrapParseTurn)
{
	uint8_t target[32], origin[32], out[2048];
	memset(target, 0x11, 32);
	memset(origin, 0x22, 32);
	auto in = inner(WIRE_DATA);
	size_t n = via_wrap(VIA_TO, target, in.data(), in.size(), out, sizeof out);
	ASSERT_EQ(n, in.size() + VIA_OVERHEAD);
	via_view v;
	ASSERT_EQ(via_parse(out, n, &v), 0);
	EXPECT_EQ(v.dir, VIA_TO);
	EXPECT_EQ(memcmp(v.key, target, 32), 0);
	ASSERT_EQ(v.inner_len, in.size());
	EXPECT_EQ(memcmp(v.inner, in.data(), in.size()), 0);
	via_turn(out, origin);
	ASSERT_EQ(via_parse(out, n, &v), 0);
	EXPECT_EQ(v.dir, VIA_FROM);
	EXPECT_EQ(memcmp(v.key, origin, 32), 0);
	EXPECT_EQ(memcmp(v.inner, in.data(), in.size()), 0);
	// In place, as the driver wraps: the inner packet moves up.
	std::vector<uint8_t> buf(in.size() + VIA_OVERHEAD);
	memcpy(buf.data(), in.data(), in.size());
	ASSERT_EQ(via_wrap(VIA_TO, target, buf.data(), in.size(), buf.data(), buf.size()), buf.size());
	EXPECT_EQ(memcmp(buf.data() + VIA_OVERHEAD, in.data(), in.size()), 0);
	EXPECT_EQ(via_wrap(VIA_TO, target, in.data(), in.size(), out, in.size() + VIA_OVERHEAD - 1), 0u);
}

TEST(Via, RefusesWhatIsNotOneHopOfASession)
{
	uint8_t key[32] = { 1 }, out[2048];
	via_view v;
	for (int t : { WIRE_HANDSHAKE_INIT, WIRE_HANDSHAKE_RESP, WIRE_COOKIE_REPLY, WIRE_DATA }) {
		auto in = inner((uint8_t)t);
		size_t n = via_wrap(VIA_TO, key, in.data(), in.size(), out, sizeof out);
		EXPECT_EQ(via_parse(out, n, &v), 0) << int(t);
	}
	// Nested or foreign packets inside: never forwarded.
	for (int t : { (int)WIRE_PUNCH, (int)WIRE_RENDEZVOUS, (int)WIRE_RELAY, (int)WIRE_MESH, (int)WIRE_VIA, 0 }) {
		auto in = inner((uint8_t)t);
		size_t n = via_wrap(VIA_TO, key, in.data(), in.size(), out, sizeof out);
		EXPECT_EQ(via_parse(out, n, &v), SRM_DROP_CODE(SRM_DROP_MALFORMED)) << int(t);
	}
	auto in = inner(WIRE_DATA);
	size_t n = via_wrap(VIA_TO, key, in.data(), in.size(), out, sizeof out);
	out[2] = 3; // unknown direction
	EXPECT_EQ(via_parse(out, n, &v), SRM_DROP_CODE(SRM_DROP_MALFORMED));
	out[2] = VIA_TO;
	out[3] = 1; // reserved
	EXPECT_EQ(via_parse(out, n, &v), SRM_DROP_CODE(SRM_DROP_MALFORMED));
	out[3] = 0;
	out[1] = WIRE_VERSION + 1;
	EXPECT_EQ(via_parse(out, n, &v), SRM_DROP_CODE(SRM_DROP_VERSION));
	out[1] = WIRE_VERSION;
	EXPECT_EQ(via_parse(out, VIA_OVERHEAD + WIRE_HEADER_BYTES - 1, &v),
		  SRM_DROP_CODE(SRM_DROP_MALFORMED));
}
