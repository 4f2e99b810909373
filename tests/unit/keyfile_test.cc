// keyfile_test.cc — key files (create, load, permissions) and key text.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

extern "C" {
#include "srmudp.h"
}

namespace {

struct KeyFile : ::testing::Test {
	std::string dir, path;
	void SetUp() override
	{
		ASSERT_GE(sodium_init(), 0);
		char tmpl[] = "/tmp/srm-keyfile-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		path = dir + "/key";
	}
	void TearDown() override
	{
		unlink(path.c_str());
		rmdir(dir.c_str());
	}
	std::string contents()
	{
		std::ifstream f(path);
		return std::string(std::istreambuf_iterator<char>(f), {});
	}
	void write(const std::string &s, mode_t mode)
	{
		unlink(path.c_str());
		std::ofstream(path) << s;
		chmod(path.c_str(), mode);
	}
};

TEST_F(KeyFile, GenerateThenLoad)
{
	char pub_text[SRM_PUBKEY_TEXT_BYTES];
	ASSERT_EQ(srm_key_generate(path.c_str(), pub_text), 0);
	EXPECT_EQ(strlen(pub_text), (size_t)SRM_PUBKEY_TEXT_LEN);
	struct stat st;
	ASSERT_EQ(stat(path.c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 07777, 0600u);
	std::string c = contents();
	EXPECT_EQ(c.size(), 44u); // 43 characters and a newline
	EXPECT_EQ(c.back(), '\n');
	EXPECT_EQ(c.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_\n"),
		  std::string::npos);
	uint8_t secret[32], pub[32], decoded[32];
	char err[256];
	ASSERT_EQ(srm_key_load(path.c_str(), secret, pub, err, sizeof(err)), 0);
	EXPECT_EQ(err[0], '\0');
	ASSERT_EQ(srm_pubkey_decode(pub_text, decoded), 0);
	EXPECT_EQ(memcmp(pub, decoded, 32), 0);
	uint8_t want[32];
	crypto_scalarmult_base(want, secret);
	EXPECT_EQ(memcmp(pub, want, 32), 0);
	// Two keys are never the same.
	std::string p2 = dir + "/key2";
	char pub2[SRM_PUBKEY_TEXT_BYTES];
	ASSERT_EQ(srm_key_generate(p2.c_str(), pub2), 0);
	EXPECT_STRNE(pub_text, pub2);
	unlink(p2.c_str());
}

TEST_F(KeyFile, NeverOverwrites)
{
	char pub[SRM_PUBKEY_TEXT_BYTES];
	ASSERT_EQ(srm_key_generate(path.c_str(), pub), 0);
	std::string before = contents();
	EXPECT_EQ(srm_key_generate(path.c_str(), pub), SRM_ERR_EXISTS);
	EXPECT_EQ(contents(), before);
	// Not through a symlink either.
	std::string link = dir + "/link";
	ASSERT_EQ(symlink((dir + "/target").c_str(), link.c_str()), 0);
	EXPECT_NE(srm_key_generate(link.c_str(), pub), 0);
	EXPECT_NE(access((dir + "/target").c_str(), F_OK), 0);
	unlink(link.c_str());
	EXPECT_EQ(srm_key_generate((dir + "/no/such/dir").c_str(), pub), SRM_ERR_IO);
}

TEST_F(KeyFile, RefusedWhenOthersCanRead)
{
	char pub[SRM_PUBKEY_TEXT_BYTES];
	ASSERT_EQ(srm_key_generate(path.c_str(), pub), 0);
	uint8_t secret[32], p[32];
	char err[512];
	for (mode_t mode : {0640, 0604, 0660, 0602, 0610, 0644}) {
		chmod(path.c_str(), mode);
		EXPECT_EQ(srm_key_load(path.c_str(), secret, p, err, sizeof(err)), SRM_ERR_PERM) << mode;
		std::string e = err;
		EXPECT_NE(e.find(path), std::string::npos) << e; // names the file
		EXPECT_NE(e.find("group or others"), std::string::npos) << e;
	}
	chmod(path.c_str(), 0400);
	EXPECT_EQ(srm_key_load(path.c_str(), secret, p, err, sizeof(err)), 0);
}

TEST_F(KeyFile, RefusedWhenSomeoneElseOwnsIt)
{
	char pub[SRM_PUBKEY_TEXT_BYTES];
	ASSERT_EQ(srm_key_generate(path.c_str(), pub), 0);
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to give the file away";
	ASSERT_EQ(chown(path.c_str(), 12345, 12345), 0);
	uint8_t secret[32], p[32];
	char err[512];
	EXPECT_EQ(srm_key_load(path.c_str(), secret, p, err, sizeof(err)), SRM_ERR_PERM);
	std::string e = err;
	EXPECT_NE(e.find(path), std::string::npos);
	EXPECT_NE(e.find("owned by"), std::string::npos) << e;
}

TEST_F(KeyFile, BadContents)
{
	uint8_t secret[32], p[32];
	char err[512];
	for (const char *bad : {"", "\n", "short\n", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
				"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+\n",
				"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
				"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA AAAA\n"}) {
		write(bad, 0600);
		EXPECT_EQ(srm_key_load(path.c_str(), secret, p, err, sizeof(err)), SRM_ERR_INVALID) << bad;
		EXPECT_NE(std::string(err).find(path), std::string::npos);
	}
	// Surrounding whitespace and CRLF are fine.
	write("  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\r\n", 0600);
	EXPECT_EQ(srm_key_load(path.c_str(), secret, p, err, sizeof(err)), 0);
	EXPECT_EQ(srm_key_load((dir + "/missing").c_str(), secret, p, err, sizeof(err)), SRM_ERR_IO);
	EXPECT_NE(std::string(err).find("missing"), std::string::npos);
	EXPECT_EQ(srm_key_load(dir.c_str(), secret, p, err, sizeof(err)), SRM_ERR_INVALID);
}

TEST(PubKeyText, RoundTripAndStrictDecoding)
{
	uint8_t pub[32], back[32];
	for (int i = 0; i < 32; i++)
		pub[i] = (uint8_t)(i * 37 + 250);
	char text[SRM_PUBKEY_TEXT_BYTES];
	srm_pubkey_encode(pub, text);
	EXPECT_EQ(strlen(text), 43u);
	EXPECT_EQ(std::string(text).find_first_of("+/="), std::string::npos);
	ASSERT_EQ(srm_pubkey_decode(text, back), 0);
	EXPECT_EQ(memcmp(pub, back, 32), 0);
	std::string t = text;
	EXPECT_EQ(srm_pubkey_decode((t + "=").c_str(), back), SRM_ERR_INVALID);
	EXPECT_EQ(srm_pubkey_decode(t.substr(0, 42).c_str(), back), SRM_ERR_INVALID);
	EXPECT_EQ(srm_pubkey_decode((t + " ").c_str(), back), SRM_ERR_INVALID);
	std::string plus = t;
	plus[3] = '+';
	EXPECT_EQ(srm_pubkey_decode(plus.c_str(), back), SRM_ERR_INVALID);
	EXPECT_EQ(srm_pubkey_decode(nullptr, back), SRM_ERR_INVALID);
}

TEST(StrError, EveryCodeNamed)
{
	for (int e = SRM_ERR_CLOSED; e <= 0; e++)
		EXPECT_STRNE(srm_strerror(e), "unknown error") << e;
	EXPECT_STREQ(srm_strerror(42), "unknown error");
	EXPECT_NE(std::string(srm_strerror(SRM_ERR_VERSION)).find("version"), std::string::npos);
}

} // namespace
