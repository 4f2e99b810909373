// noise_test.cc — the handshake messages against the test vectors of
// docs/PROTOCOL.md (section "Test vectors"; the same hex strings), which
// were computed by an independent implementation (Python `cryptography`
// + hashlib), then round trips and tampering.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "aead.h"
#include "cookie.h"
#include "noise.h"
}

namespace {

std::vector<uint8_t> unhex(const std::string &s)
{
	std::vector<uint8_t> v(s.size() / 2);
	for (size_t i = 0; i < v.size(); i++)
		v[i] = (uint8_t)std::stoul(s.substr(2 * i, 2), nullptr, 16);
	return v;
}

std::string hex(const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += d[p[i] >> 4];
		s += d[p[i] & 15];
	}
	return s;
}

// ---- Test vectors: keep identical to docs/PROTOCOL.md ----
const char *V_S_I = "a696ace7f2ca732e13bc55a81b2cbce412b7d229fc900a6e442cbca5c83dc8c0";
const char *V_S_R = "4521b901ea4dbe33232e7cebc5dd5515d4de0236040bf9bfdc273d44326d940c";
const char *V_E_I = "74536361412c271008967144aa53174421d9c9dc23a4c863f9b7ea2b813e6f3e";
const char *V_E_R = "80642fa90b052d8f5351c46b6886c4efbbc9b3477a270a16de555617229ccbbc";
const char *V_PUB_I = "f319d7d649d2412dd78d586030b74b9ca4f93065c4a22451f1ad3b717fa23728";
const char *V_PUB_R = "01f75ccc4238014cd836061d723df28381ad1bb82c8c1c3d6d142ed4c1d61614";
const char *V_INIT =
	"01010000443322115509acb6202f97cd33885b475764e46c850e2f7a69193bc125ed725899850c07798791760fe320f213fc1bb37f9c46a7c995708c4d9770f11a72c462a9708d63f450e3c7f9b5b4ae0117b5e8762f5c792f30cc3e84237d51d0dcf890eab9d1f0947fde8feae1872ec06a59cbac2a6875375107f7f04965e11a118bae2e45b06d7601c20c7ab3b999b67d6e735082a6519c970e897cefe2e000000000000000000000000000000000";
const char *V_RESP =
	"020100008877665544332211f4632f49bace9fd8048ea456588168fca34e6b99e85efbd313bacfb18f35cd2a5050b8f62410ed906d1607cce8e7d2dae7a9caa6c54c45b065d5886f5d37a802ef40058e03eaf4875af69a2eec977494139394c21dbf5afaafa441624baae53900000000000000000000000000000000";
const char *V_T_I2R = "9f71ce775a6cb668b22130749cea967c030bc8746089d2240577e221b4696cbd";
const char *V_T_R2I = "d0f09d22900d30d736d0d9ae7454c9b0c8c2f0106f0e057e3b7ff11dac9e9db5";
const char *V_DATA_CHACHA = "04010000887766550000000000000000bbd44c9d57955e3603dbc1121029ccf772";
const char *V_DATA_AES = "04010000887766550504030201000000188715d432cd10eccd64307e1ed3eedde98b4d";
const char *V_COOKIE_SECRET = "2e20e699d980b5ba96486e76f43522c79e7c63db13c8d77f2231b01d1af7102f";
const char *V_COOKIE = "801800e2711f5345fc3f43c25a5d970b";
const char *V_COOKIE_REPLY =
	"0301000044332211000102030405060708090a0b0c0d0e0f10111213141516170d665be58c213f1624338e52b785fb31f971f4205c4c9b8e02a9db035d8fd686";
const char *V_INIT_MAC2 = "2081af7cd7e8d87a31d23521141b008d";
const char *V_MAC1_KEY_R = "70b1f8af5af60ee97a8bc6e632f5bd4dc6a0e2897e079f8cd1bd1476add90ad2";
const char *V_COOKIE_KEY_R = "b9089b9bed711a2ce695d1f769a2ec403c95d8abbd2d5c6da3e00bc4390e1f35";

const uint32_t IDX_I = 0x11223344, IDX_R = 0x55667788;

struct NoiseVec : ::testing::Test {
	struct identity id_i, id_r;
	uint8_t ss_i[32], ss_r[32];
	struct noise_payload pl_i, pl_r;
	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		ASSERT_EQ(identity_init(&id_i, unhex(V_S_I).data()), 0);
		ASSERT_EQ(identity_init(&id_r, unhex(V_S_R).data()), 0);
		ASSERT_EQ(noise_precompute_ss(&id_i, id_r.pub, ss_i), 0);
		ASSERT_EQ(noise_precompute_ss(&id_r, id_i.pub, ss_r), 0);
		// Early frames: OPEN stream 0 to port 6379; ACCEPT stream 0.
		pl_i = {1700000000000ull, 0x0102030405060708ull, CAP_AES256GCM, 1, 1, {3, 0, 0xeb, 0x18}};
		pl_r = {0, 0x1112131415161718ull, CAP_AES256GCM, 1, 1, {4, 0}};
	}
	void TearDown() override
	{
		identity_wipe(&id_i);
		identity_wipe(&id_r);
	}
	// INIT from the vector inputs, with mac1 and a zero mac2.
	void make_init(uint8_t out[INIT_BYTES], struct noise_handshake *hs)
	{
		struct noise_init_prep prep;
		ASSERT_EQ(noise_prepare_init(&id_i, id_r.pub, ss_i, unhex(V_E_I).data(), &prep), 0);
		noise_create_init(&prep, IDX_I, &pl_i, hs, out);
		EXPECT_TRUE(sodium_is_zero((const unsigned char *)&prep, sizeof(prep))) << "prep wiped";
		cookie_add_macs(out, INIT_BYTES, id_r.mac1_key, nullptr, nullptr);
	}
};

TEST_F(NoiseVec, Identities)
{
	EXPECT_EQ(hex(id_i.pub, 32), V_PUB_I);
	EXPECT_EQ(hex(id_r.pub, 32), V_PUB_R);
	EXPECT_EQ(hex(id_r.mac1_key, 32), V_MAC1_KEY_R);
	EXPECT_EQ(hex(id_r.cookie_key, 32), V_COOKIE_KEY_R);
	EXPECT_EQ(std::string(NOISE_PROTOCOL_NAME).size(), 32u);
}

TEST_F(NoiseVec, InitRespAndTransportKeys)
{
	uint8_t init[INIT_BYTES], resp[RESP_BYTES];
	struct noise_handshake hs;
	make_init(init, &hs);
	EXPECT_EQ(hex(init, INIT_BYTES), V_INIT);

	struct noise_init ni;
	ASSERT_EQ(noise_consume_init(&id_r, init, sizeof(init), &ni), 0);
	EXPECT_EQ(hex(ni.peer_pub, 32), V_PUB_I);
	EXPECT_EQ(ni.sender_index, IDX_I);
	struct noise_payload got;
	ASSERT_EQ(noise_finish_init(&ni, ss_r, &got), 0);
	EXPECT_EQ(got.timestamp_ms, pl_i.timestamp_ms);
	EXPECT_EQ(got.boot_id, pl_i.boot_id);
	EXPECT_EQ(got.caps, pl_i.caps);
	EXPECT_EQ(got.min_version, 1);
	EXPECT_EQ(got.max_version, 1);
	EXPECT_EQ(memcmp(got.early, pl_i.early, NOISE_EARLY_BYTES), 0);

	struct noise_keys kr, ki;
	ASSERT_EQ(noise_create_resp(&ni, unhex(V_E_R).data(), IDX_R, &pl_r, resp, &kr), 0);
	cookie_add_macs(resp, RESP_BYTES, id_i.mac1_key, nullptr, nullptr);
	EXPECT_EQ(hex(resp, RESP_BYTES), V_RESP);
	EXPECT_EQ(hex(kr.recv, 32), V_T_I2R);
	EXPECT_EQ(hex(kr.send, 32), V_T_R2I);

	struct noise_payload gr;
	ASSERT_EQ(noise_consume_resp(&id_i, &hs, resp, sizeof(resp), &gr, &ki), 0);
	EXPECT_EQ(gr.boot_id, pl_r.boot_id);
	EXPECT_EQ(memcmp(gr.early, pl_r.early, NOISE_EARLY_BYTES), 0);
	EXPECT_EQ(hex(ki.send, 32), V_T_I2R);
	EXPECT_EQ(hex(ki.recv, 32), V_T_R2I);
	// The handshake state is wiped once used.
	EXPECT_TRUE(sodium_is_zero((const uint8_t *)&hs, sizeof(hs)));
}

TEST_F(NoiseVec, DataPackets)
{
	for (int aes = 0; aes < 2; aes++) {
		if (aes && !aead_aes_available())
			GTEST_SKIP() << "no AES-256-GCM hardware";
		struct aead_key k;
		ASSERT_EQ(aead_key_init(&k, aes ? AEAD_AES256GCM : AEAD_CHACHA20POLY1305,
					unhex(V_T_I2R).data()), 0);
		uint64_t pn = aes ? 0x0102030405ull : 0;
		std::vector<uint8_t> plain = aes ? std::vector<uint8_t>{1, 0, 0} : std::vector<uint8_t>{1};
		uint8_t pkt[64];
		pkt[0] = WIRE_DATA, pkt[1] = 1, pkt[2] = pkt[3] = 0;
		put_le32(pkt + 4, IDX_R);
		put_le64(pkt + 8, pn);
		aead_seal(&k, pn, pkt, 16, plain.data(), plain.size(), pkt + 16);
		EXPECT_EQ(hex(pkt, 16 + plain.size() + 16), aes ? V_DATA_AES : V_DATA_CHACHA);
		aead_key_wipe(&k);
	}
}

TEST_F(NoiseVec, CookieReplyAndMac2)
{
	struct sockaddr_in src = {};
	src.sin_family = AF_INET;
	src.sin_port = htons(51820);
	src.sin_addr.s_addr = htonl(0xc0000201); // 192.0.2.1
	uint8_t cookie[COOKIE_BYTES];
	ASSERT_EQ(cookie_compute(cookie, unhex(V_COOKIE_SECRET).data(), (struct sockaddr *)&src,
				 sizeof(src)), 0);
	EXPECT_EQ(hex(cookie, 16), V_COOKIE);

	uint8_t init[INIT_BYTES];
	struct noise_handshake hs;
	make_init(init, &hs);
	uint8_t nonce[COOKIE_NONCE_BYTES];
	for (int i = 0; i < COOKIE_NONCE_BYTES; i++)
		nonce[i] = (uint8_t)i;
	uint8_t reply[COOKIE_REPLY_BYTES];
	cookie_create_reply(reply, IDX_I, nonce, cookie, id_r.cookie_key, init + INIT_OFF_MAC1);
	EXPECT_EQ(hex(reply, sizeof(reply)), V_COOKIE_REPLY);

	uint8_t peer_mac1[32], peer_cookie_key[32], got[COOKIE_BYTES];
	cookie_derive_keys(id_r.pub, peer_mac1, peer_cookie_key);
	ASSERT_EQ(cookie_open_reply(reply, sizeof(reply), peer_cookie_key, init + INIT_OFF_MAC1, got), 0);
	EXPECT_EQ(hex(got, 16), V_COOKIE);
	cookie_add_macs(init, INIT_BYTES, peer_mac1, got, nullptr);
	EXPECT_EQ(hex(init + INIT_OFF_MAC2, 16), V_INIT_MAC2);
	EXPECT_EQ(cookie_check_mac2(init, INIT_BYTES, cookie), 0);
}

TEST_F(NoiseVec, EveryInitByteMatters)
{
	uint8_t init[INIT_BYTES];
	struct noise_handshake hs;
	make_init(init, &hs);
	// mac2 is not covered by mac1 and is zero here: flipping it is the
	// guard's business (cookie_test), so check bytes up to mac2.
	for (size_t i = 0; i < INIT_OFF_MAC2; i++) {
		for (uint8_t bit = 1; bit; bit <<= 1) {
			uint8_t bad[INIT_BYTES];
			memcpy(bad, init, sizeof(bad));
			bad[i] ^= bit;
			struct noise_init ni;
			int rc = noise_consume_init(&id_r, bad, sizeof(bad), &ni);
			if (rc == 0) {
				struct noise_payload pl;
				rc = noise_finish_init(&ni, ss_r, &pl);
				noise_init_wipe(&ni);
			}
			EXPECT_NE(rc, 0) << "byte " << i << " bit " << (int)bit;
			EXPECT_TRUE(SRM_IS_DROP(rc));
		}
	}
	// Even with mac1 recomputed, tampering with the Noise part fails.
	for (size_t i = INIT_OFF_EPHEMERAL; i < INIT_OFF_MAC1; i++) {
		uint8_t bad[INIT_BYTES];
		memcpy(bad, init, sizeof(bad));
		bad[i] ^= 0x40;
		cookie_add_macs(bad, INIT_BYTES, id_r.mac1_key, nullptr, nullptr);
		struct noise_init ni;
		int rc = noise_consume_init(&id_r, bad, sizeof(bad), &ni);
		if (rc == 0) {
			struct noise_payload pl;
			rc = noise_finish_init(&ni, ss_r, &pl);
			noise_init_wipe(&ni);
		}
		EXPECT_EQ(rc, SRM_DROP_CODE(SRM_DROP_AUTH)) << "byte " << i;
	}
	for (size_t len = 0; len < INIT_BYTES; len++) {
		struct noise_init ni;
		EXPECT_TRUE(SRM_IS_DROP(noise_consume_init(&id_r, init, len, &ni)));
	}
}

TEST_F(NoiseVec, EveryRespByteMatters)
{
	uint8_t init[INIT_BYTES], resp[RESP_BYTES];
	struct noise_handshake hs, saved;
	make_init(init, &hs);
	saved = hs;
	struct noise_init ni;
	struct noise_keys kr, ki;
	struct noise_payload pl;
	ASSERT_EQ(noise_consume_init(&id_r, init, sizeof(init), &ni), 0);
	ASSERT_EQ(noise_finish_init(&ni, ss_r, &pl), 0);
	ASSERT_EQ(noise_create_resp(&ni, unhex(V_E_R).data(), IDX_R, &pl_r, resp, &kr), 0);
	cookie_add_macs(resp, RESP_BYTES, id_i.mac1_key, nullptr, nullptr);
	for (size_t i = 0; i < RESP_OFF_MAC2; i++) {
		uint8_t bad[RESP_BYTES];
		memcpy(bad, resp, sizeof(bad));
		bad[i] ^= 0x01;
		if (i >= RESP_OFF_RECEIVER + 4 && i < RESP_OFF_MAC1 && i % 2) // also with a valid mac1
			cookie_add_macs(bad, RESP_BYTES, id_i.mac1_key, nullptr, nullptr);
		struct noise_handshake h2 = saved;
		int rc = noise_consume_resp(&id_i, &h2, bad, sizeof(bad), &pl, &ki);
		EXPECT_TRUE(SRM_IS_DROP(rc)) << "byte " << i;
		// A forged RESP leaves the real handshake intact.
		EXPECT_EQ(memcmp(&h2, &saved, sizeof(h2)), 0);
	}
	// The sender index is not covered by Noise (as in WireGuard) but is by mac1.
	struct noise_handshake h2 = saved;
	ASSERT_EQ(noise_consume_resp(&id_i, &h2, resp, sizeof(resp), &pl, &ki), 0);
	EXPECT_EQ(memcmp(ki.send, kr.recv, 32), 0);
	EXPECT_EQ(memcmp(ki.recv, kr.send, 32), 0);
}

TEST_F(NoiseVec, WrongResponderKeyFailsMac1)
{
	uint8_t init[INIT_BYTES];
	struct noise_handshake hs;
	make_init(init, &hs);
	struct identity other;
	uint8_t sk[32];
	randombytes_buf(sk, sizeof(sk));
	ASSERT_EQ(identity_init(&other, sk), 0);
	struct noise_init ni;
	EXPECT_EQ(noise_consume_init(&other, init, sizeof(init), &ni), SRM_DROP_CODE(SRM_DROP_MAC));
	// Even with a mac1 made for it, it cannot decrypt the static key.
	cookie_add_macs(init, INIT_BYTES, other.mac1_key, nullptr, nullptr);
	EXPECT_EQ(noise_consume_init(&other, init, sizeof(init), &ni), SRM_DROP_CODE(SRM_DROP_AUTH));
	identity_wipe(&other);
}

TEST_F(NoiseVec, WrongInitiatorStaticFailsPayload)
{
	// An attacker who knows only public keys cannot complete "ss": with
	// a wrong ss the payload does not decrypt.
	uint8_t init[INIT_BYTES];
	struct noise_handshake hs;
	make_init(init, &hs);
	struct noise_init ni;
	ASSERT_EQ(noise_consume_init(&id_r, init, sizeof(init), &ni), 0);
	uint8_t wrong_ss[32] = {1};
	struct noise_payload pl;
	EXPECT_EQ(noise_finish_init(&ni, wrong_ss, &pl), SRM_DROP_CODE(SRM_DROP_AUTH));
}

TEST_F(NoiseVec, HeaderChecks)
{
	uint8_t init[INIT_BYTES];
	struct noise_handshake hs;
	make_init(init, &hs);
	struct noise_init ni;
	init[1] = 2;
	EXPECT_EQ(noise_consume_init(&id_r, init, sizeof(init), &ni), SRM_DROP_CODE(SRM_DROP_VERSION));
	init[1] = 1;
	init[2] = 1;
	EXPECT_EQ(noise_consume_init(&id_r, init, sizeof(init), &ni), SRM_DROP_CODE(SRM_DROP_MALFORMED));
	init[2] = 0;
	init[0] = WIRE_HANDSHAKE_RESP;
	EXPECT_EQ(noise_consume_init(&id_r, init, sizeof(init), &ni), SRM_DROP_CODE(SRM_DROP_MALFORMED));
	std::vector<uint8_t> big(INIT_BYTES + 1);
	EXPECT_EQ(noise_consume_init(&id_r, big.data(), big.size(), &ni), SRM_DROP_CODE(SRM_DROP_VERSION));
}

// docs/PROTOCOL.md section 13 must show exactly these vectors.
TEST(Vectors, DocHasTheSameVectors)
{
	std::string doc;
	for (const char *path : {"docs/PROTOCOL.md", "../docs/PROTOCOL.md", "../../docs/PROTOCOL.md"}) {
		std::ifstream f(path);
		if (f) {
			std::stringstream ss;
			ss << f.rdbuf();
			doc = ss.str();
			break;
		}
	}
	if (doc.empty())
		GTEST_SKIP() << "run from the source tree to compare with docs/PROTOCOL.md";
	for (const char *v : {V_S_I, V_S_R, V_E_I, V_E_R, V_PUB_I, V_PUB_R, V_INIT, V_RESP, V_T_I2R,
			      V_T_R2I, V_DATA_CHACHA, V_DATA_AES, V_COOKIE_SECRET, V_COOKIE,
			      V_COOKIE_REPLY, V_INIT_MAC2, V_MAC1_KEY_R, V_COOKIE_KEY_R})
		EXPECT_NE(doc.find(v), std::string::npos) << v;
}

TEST(Identity, HeapIdentityAndBadKeys)
{
	ASSERT_GE(sodium_init(), 0);
	uint8_t sk[32];
	randombytes_buf(sk, sizeof(sk));
	struct identity *id = identity_new(sk);
	ASSERT_NE(id, nullptr);
	uint8_t pub[32], want[32];
	identity_public_key(id, pub);
	crypto_scalarmult_base(want, sk);
	EXPECT_EQ(memcmp(pub, want, 32), 0);
	identity_free(id);
	// A low-order peer key gives an all-zero DH: refused.
	struct identity me;
	ASSERT_EQ(identity_init(&me, sk), 0);
	uint8_t zero[32] = {0}, ss[32];
	EXPECT_EQ(noise_precompute_ss(&me, zero, ss), SRM_ERR_INVALID);
	identity_wipe(&me);
	EXPECT_TRUE(sodium_is_zero((const uint8_t *)&me, sizeof(me)));
}

} // namespace
