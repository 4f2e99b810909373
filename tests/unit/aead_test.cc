// aead_test.cc — transport AEAD: round trips, nonce layout, tampering.
// (Known-answer vectors for both ciphers are in noise_test.cc.)
#include <gtest/gtest.h>
#include <sodium.h>

#include <vector>

extern "C" {
#include "aead.h"
#include "srmudp.h"
}

namespace {

struct Aead : ::testing::TestWithParam<int> {
	struct aead_key k;
	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		if (GetParam() == AEAD_AES256GCM && !aead_aes_available())
			GTEST_SKIP() << "no AES-256-GCM hardware";
		uint8_t key[32];
		for (int i = 0; i < 32; i++)
			key[i] = (uint8_t)(i * 7);
		ASSERT_EQ(aead_key_init(&k, (enum aead_alg)GetParam(), key), 0);
	}
	void TearDown() override { aead_key_wipe(&k); }
};

TEST_P(Aead, RoundTripInPlaceAndTamper)
{
	uint8_t ad[16] = {4, 1, 0, 0, 9, 9, 9, 9};
	std::vector<uint8_t> plain(1400);
	for (size_t i = 0; i < plain.size(); i++)
		plain[i] = (uint8_t)i;
	std::vector<uint8_t> c(plain.size() + AEAD_TAG_BYTES), out(plain.size());
	aead_seal(&k, 77, ad, sizeof(ad), plain.data(), plain.size(), c.data());
	ASSERT_EQ(aead_open(&k, 77, ad, sizeof(ad), c.data(), c.size(), out.data()), 0);
	EXPECT_EQ(out, plain);
	// Another packet number, AD byte, ciphertext byte, or tag byte: refused.
	EXPECT_EQ(aead_open(&k, 78, ad, sizeof(ad), c.data(), c.size(), out.data()), SRM_ERR_AUTH);
	ad[5] ^= 1;
	EXPECT_EQ(aead_open(&k, 77, ad, sizeof(ad), c.data(), c.size(), out.data()), SRM_ERR_AUTH);
	ad[5] ^= 1;
	for (size_t i : {(size_t)0, plain.size() / 2, c.size() - 1}) {
		c[i] ^= 0x80;
		EXPECT_EQ(aead_open(&k, 77, ad, sizeof(ad), c.data(), c.size(), out.data()), SRM_ERR_AUTH);
		c[i] ^= 0x80;
	}
	EXPECT_EQ(aead_open(&k, 77, ad, sizeof(ad), c.data(), AEAD_TAG_BYTES - 1, out.data()), SRM_ERR_AUTH);
	// In place, both ways.
	std::vector<uint8_t> buf = plain;
	buf.resize(plain.size() + AEAD_TAG_BYTES);
	aead_seal(&k, 5, ad, sizeof(ad), buf.data(), plain.size(), buf.data());
	ASSERT_EQ(aead_open(&k, 5, ad, sizeof(ad), buf.data(), buf.size(), buf.data()), 0);
	EXPECT_EQ(std::vector<uint8_t>(buf.begin(), buf.begin() + plain.size()), plain);
	// Empty payloads authenticate too (keepalives).
	uint8_t tag[AEAD_TAG_BYTES];
	aead_seal(&k, 6, ad, sizeof(ad), nullptr, 0, tag);
	EXPECT_EQ(aead_open(&k, 6, ad, sizeof(ad), tag, sizeof(tag), nullptr), 0);
}

TEST_P(Aead, DirectionsDoNotMix)
{
	struct aead_key other;
	uint8_t key2[32] = {1};
	ASSERT_EQ(aead_key_init(&other, (enum aead_alg)GetParam(), key2), 0);
	uint8_t ad[16] = {0}, msg[8] = {1, 2, 3}, c[8 + AEAD_TAG_BYTES], out[8];
	aead_seal(&k, 1, ad, sizeof(ad), msg, sizeof(msg), c);
	EXPECT_EQ(aead_open(&other, 1, ad, sizeof(ad), c, sizeof(c), out), SRM_ERR_AUTH);
	aead_key_wipe(&other);
	EXPECT_TRUE(sodium_is_zero((const uint8_t *)&other, sizeof(other)));
}

INSTANTIATE_TEST_SUITE_P(BothCiphers, Aead,
			 ::testing::Values((int)AEAD_CHACHA20POLY1305, (int)AEAD_AES256GCM));

TEST(AeadNonce, PacketNumberLittleEndianAfterFourZeros)
{
	uint8_t n[AEAD_NONCE_BYTES];
	aead_nonce(n, 0x0102030405060708ull);
	const uint8_t want[AEAD_NONCE_BYTES] = {0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1};
	EXPECT_EQ(memcmp(n, want, sizeof(want)), 0);
}

TEST(AeadNonce, AesRefusedWithoutHardware)
{
	ASSERT_GE(sodium_init(), 0);
	struct aead_key k;
	uint8_t key[32] = {0};
	int rc = aead_key_init(&k, AEAD_AES256GCM, key);
	EXPECT_EQ(rc == 0, aead_aes_available() != 0);
	EXPECT_EQ(aead_key_init(&k, (enum aead_alg)7, key), SRM_ERR_INVALID);
	aead_key_wipe(&k);
}

} // namespace
