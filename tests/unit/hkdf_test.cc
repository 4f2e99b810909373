// hkdf_test.cc — RFC 5869 appendix A (SHA-256 cases) and the Noise HKDF.
#include <gtest/gtest.h>

#include <string>
#include <vector>

extern "C" {
#include "hkdf.h"
#include "srmudp.h"
}

namespace {

std::vector<uint8_t> unhex(const std::string &s)
{
	std::vector<uint8_t> v(s.size() / 2);
	for (size_t i = 0; i < v.size(); i++)
		v[i] = (uint8_t)std::stoul(s.substr(2 * i, 2), nullptr, 16);
	return v;
}

std::vector<uint8_t> seq(int from, int to)
{
	std::vector<uint8_t> v;
	for (int i = from; i < to; i++)
		v.push_back((uint8_t)i);
	return v;
}

void rfc_case(const std::vector<uint8_t> &ikm, const std::vector<uint8_t> &salt,
	      const std::vector<uint8_t> &info, const char *prk_hex, const char *okm_hex)
{
	uint8_t prk[32];
	hkdf_extract(prk, salt.data(), salt.size(), ikm.data(), ikm.size());
	EXPECT_EQ(std::vector<uint8_t>(prk, prk + 32), unhex(prk_hex));
	std::vector<uint8_t> want = unhex(okm_hex), okm(want.size());
	ASSERT_EQ(hkdf_expand(okm.data(), okm.size(), prk, info.data(), info.size()), 0);
	EXPECT_EQ(okm, want);
}

TEST(Hkdf, Rfc5869Case1)
{
	rfc_case(std::vector<uint8_t>(22, 0x0b), seq(0, 13), seq(0xf0, 0xfa),
		 "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
		 "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(Hkdf, Rfc5869Case2LongInputs)
{
	rfc_case(seq(0, 0x50), seq(0x60, 0xb0), seq(0xb0, 0x100),
		 "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
		 "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST(Hkdf, Rfc5869Case3EmptySaltAndInfo)
{
	// An empty salt means HashLen zero bytes (RFC 5869 section 2.2).
	rfc_case(std::vector<uint8_t>(22, 0x0b), {}, {},
		 "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
		 "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
	uint8_t a[32], b[32];
	std::vector<uint8_t> ikm(22, 0x0b);
	hkdf_extract(a, nullptr, 0, ikm.data(), ikm.size());
	uint8_t zeros[32] = {0};
	hkdf_extract(b, zeros, sizeof(zeros), ikm.data(), ikm.size());
	EXPECT_EQ(memcmp(a, b, 32), 0);
}

TEST(Hkdf, NoiseHkdfThreeOutputs)
{
	// Computed with Python cryptography's HKDF (salt = ck, empty info).
	std::vector<uint8_t> ck(32, 0x11), ikm(32, 0x22);
	uint8_t o1[32], o2[32], o3[32];
	hkdf_noise(o1, o2, o3, ck.data(), ikm.data(), ikm.size());
	std::vector<uint8_t> all(o1, o1 + 32);
	all.insert(all.end(), o2, o2 + 32);
	all.insert(all.end(), o3, o3 + 32);
	EXPECT_EQ(all, unhex("69849248ec90c5b7c0745ba9c380ba7c98a5fb51cca3c1c7fa789866542c6218"
			     "3b25c1bc41f8918c5d8b73d66ec47ab86ab2033b67a1a38de6d906bf0d2392fe"
			     "fa3f7bc36c50a778fa3edbd9becba801f08da2ce2d35508eae0c6ffcd9bb4bff"));
	// Fewer outputs are prefixes of the same stream; out may alias ck.
	uint8_t p1[32], p2[32];
	hkdf_noise(p1, p2, nullptr, ck.data(), ikm.data(), ikm.size());
	EXPECT_EQ(memcmp(p1, o1, 32), 0);
	EXPECT_EQ(memcmp(p2, o2, 32), 0);
	uint8_t inplace[32];
	memcpy(inplace, ck.data(), 32);
	hkdf_noise(inplace, nullptr, nullptr, inplace, ikm.data(), ikm.size());
	EXPECT_EQ(memcmp(inplace, o1, 32), 0);
}

TEST(Hkdf, ExpandLimit)
{
	uint8_t prk[32] = {1};
	std::vector<uint8_t> out(HKDF_MAX_OUTPUT + 1);
	EXPECT_EQ(hkdf_expand(out.data(), out.size(), prk, nullptr, 0), SRM_ERR_INVALID);
	EXPECT_EQ(hkdf_expand(out.data(), HKDF_MAX_OUTPUT, prk, nullptr, 0), 0);
}

} // namespace
