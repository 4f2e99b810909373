// log_test.cc — core/config/log.c: line format, levels, sanitising, cutting,
// thread safety, failing destinations (/dev/full, a closed pipe, an
// unopenable path), fd slot stability, and the rate limiter.
#include <gtest/gtest.h>

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "log.h"

namespace {

class LogTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/srmudp-log-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir_ = tmpl;
		path_ = dir_ + "/log";
	}
	void TearDown() override
	{
		log_open(SRM_LOG_WARN, nullptr);
		unlink(path_.c_str());
		unlink((dir_ + "/other").c_str());
		rmdir(dir_.c_str());
	}
	std::vector<std::string> Lines(const std::string &p = "")
	{
		std::ifstream in(p.empty() ? path_ : p);
		std::vector<std::string> out;
		std::string l;
		while (std::getline(in, l))
			out.push_back(l);
		return out;
	}
	std::string Contents(const std::string &p = "")
	{
		std::ifstream in(p.empty() ? path_ : p);
		std::stringstream ss;
		ss << in.rdbuf();
		return ss.str();
	}
	std::string dir_, path_;
};

// "YYYY-MM-DDTHH:MM:SS.mmmZ srmudp[PID] " then the rest; returns the rest
// or "<bad prefix>".  (No std::regex: gcc 12 -Werror trips on it under ASan.)
std::string AfterPrefix(const std::string &line)
{
	const char *pat = "####-##-##T##:##:##.###Z srmudp[";
	size_t i = 0;
	for (; pat[i]; i++) {
		if (i >= line.size())
			return "<bad prefix>";
		if (pat[i] == '#' ? !isdigit((unsigned char)line[i]) : line[i] != pat[i])
			return "<bad prefix>";
	}
	std::string pid = std::to_string(getpid());
	if (line.compare(i, pid.size() + 2, pid + "] ") != 0)
		return "<bad prefix>";
	return line.substr(i + pid.size() + 2);
}

int calls;
int CountCall()
{
	return ++calls;
}

TEST_F(LogTest, LineFormatWithPeer)
{
	log_open(SRM_LOG_WARN, path_.c_str());
	log_write(SRM_LOG_WARN, "db", "handshake timed out after %d tries", 5);
	auto lines = Lines();
	ASSERT_EQ(lines.size(), 1u);
	EXPECT_EQ(AfterPrefix(lines[0]), "warn peer=db: handshake timed out after 5 tries")
		<< lines[0];
}

TEST_F(LogTest, LineFormatWithoutPeerAndLevelNames)
{
	log_open(SRM_LOG_DEBUG, path_.c_str());
	log_write(SRM_LOG_ERROR, nullptr, "a");
	log_write(SRM_LOG_WARN, "", "b");
	log_write(SRM_LOG_INFO, nullptr, "c");
	log_write(SRM_LOG_DEBUG, nullptr, "d");
	auto lines = Lines();
	ASSERT_EQ(lines.size(), 4u);
	EXPECT_NE(lines[0].find("] error: a"), std::string::npos) << lines[0];
	EXPECT_NE(lines[1].find("] warn: b"), std::string::npos) << lines[1];
	EXPECT_NE(lines[2].find("] info: c"), std::string::npos) << lines[2];
	EXPECT_NE(lines[3].find("] debug: d"), std::string::npos) << lines[3];
	EXPECT_STREQ(log_level_name(SRM_LOG_INFO), "info");
	EXPECT_STREQ(log_level_name((enum srm_log_level)42), "?");
}

TEST_F(LogTest, ThresholdSkipsFormatting)
{
	log_open(SRM_LOG_WARN, path_.c_str());
	calls = 0;
	LOG_INFO("x", "%d", CountCall());
	LOG_DEBUG(nullptr, "%d", CountCall());
	EXPECT_EQ(calls, 0);
	LOG_WARN("x", "%d", CountCall());
	LOG_ERR("x", "%d", CountCall());
	EXPECT_EQ(calls, 2);
	EXPECT_EQ(Lines().size(), 2u);
	EXPECT_TRUE(log_enabled(SRM_LOG_ERROR));
	EXPECT_TRUE(log_enabled(SRM_LOG_WARN));
	EXPECT_FALSE(log_enabled(SRM_LOG_INFO));
	// log_write itself also honours the threshold.
	log_write(SRM_LOG_DEBUG, nullptr, "hidden");
	EXPECT_EQ(Lines().size(), 2u);
}

TEST_F(LogTest, DefaultIsWarnOnStderr)
{
	// TearDown of every test restores the default; check what it means.
	log_open(SRM_LOG_WARN, nullptr);
	EXPECT_EQ(log_fd(), 2);
	EXPECT_FALSE(log_enabled(SRM_LOG_INFO));
	testing::internal::CaptureStderr();
	LOG_WARN("p", "to stderr");
	LOG_INFO("p", "not shown");
	std::string err = testing::internal::GetCapturedStderr();
	EXPECT_NE(err.find("warn peer=p: to stderr\n"), std::string::npos) << err;
	EXPECT_EQ(err.find("not shown"), std::string::npos);
}

TEST_F(LogTest, ControlCharactersCannotForgeLines)
{
	log_open(SRM_LOG_WARN, path_.c_str());
	log_write(SRM_LOG_WARN, "evil\npeer", "line one\nfake 2026 srmudp[1] error: x\r\x1b[31m");
	auto lines = Lines();
	ASSERT_EQ(lines.size(), 1u);
	EXPECT_NE(lines[0].find("peer=evil?peer: line one?fake"), std::string::npos) << lines[0];
	EXPECT_EQ(lines[0].find('\x1b'), std::string::npos);
	EXPECT_EQ(lines[0].find('\r'), std::string::npos);
}

TEST_F(LogTest, LongMessagesAreCut)
{
	log_open(SRM_LOG_WARN, path_.c_str());
	std::string big(5000, 'a');
	log_write(SRM_LOG_WARN, std::string(200, 'n').c_str(), "%s", big.c_str());
	std::string c = Contents();
	EXPECT_EQ(c.size(), 1024u);
	EXPECT_EQ(c.back(), '\n');
	EXPECT_EQ(c.substr(c.size() - 4), "...\n");
	// The peer name is capped at the longest legal name.
	EXPECT_NE(c.find("peer=" + std::string(63, 'n') + ":"), std::string::npos);
}

// log_format is the line itself, for writers with their own write() (the
// preload's glue): same prefix, cut and newline, into any buffer size.
std::string Format(size_t cap, const char *peer, const char *fmt, ...)
{
	std::vector<char> buf(cap);
	va_list ap;
	va_start(ap, fmt);
	size_t n = log_format(buf.data(), cap, SRM_LOG_INFO, peer, fmt, ap);
	va_end(ap);
	EXPECT_LE(n, cap);
	return std::string(buf.data(), n);
}

TEST(LogFormat, SameLineAsLogWrite)
{
	std::string l = Format(LOG_LINE_MAX, nullptr, "engine started on UDP port %d", 4000);
	EXPECT_EQ(AfterPrefix(l), "info: engine started on UDP port 4000\n") << l;
	l = Format(LOG_LINE_MAX, "db", "a\nb");
	EXPECT_EQ(AfterPrefix(l), "info peer=db: a?b\n") << l;
}

TEST(LogFormat, CutToTheBuffer)
{
	std::string l = Format(100, nullptr, "%s", std::string(500, 'x').c_str());
	EXPECT_EQ(l.size(), 100u);
	EXPECT_EQ(l.substr(l.size() - 4), "...\n");
}

TEST_F(LogTest, ErrnoIsPreserved)
{
	log_open(SRM_LOG_WARN, "/dev/full");
	errno = EINTR;
	log_write(SRM_LOG_WARN, nullptr, "x");
	EXPECT_EQ(errno, EINTR);
	errno = ENOTSOCK;
	log_open(SRM_LOG_WARN, path_.c_str());
	EXPECT_EQ(errno, ENOTSOCK);
}

TEST_F(LogTest, DevFullIsIgnored)
{
	log_open(SRM_LOG_DEBUG, "/dev/full");
	for (int i = 0; i < 1000; i++)
		log_write(SRM_LOG_ERROR, "p", "disk full %d", i);
	SUCCEED();
}

TEST_F(LogTest, ClosedPipeDoesNotRaiseSigpipe)
{
	int p[2];
	ASSERT_EQ(pipe(p), 0);
	std::string path = "/proc/self/fd/" + std::to_string(p[1]);
	log_open(SRM_LOG_WARN, path.c_str());
	close(p[1]);
	log_write(SRM_LOG_WARN, nullptr, "reader alive");
	char buf[256];
	ssize_t n = read(p[0], buf, sizeof(buf));
	EXPECT_GT(n, 0);
	close(p[0]);
	// Default SIGPIPE disposition would kill the test binary here.
	struct sigaction old, dfl = {};
	dfl.sa_handler = SIG_DFL;
	sigaction(SIGPIPE, &dfl, &old);
	for (int i = 0; i < 10; i++)
		log_write(SRM_LOG_WARN, nullptr, "reader gone %d", i);
	sigset_t pending;
	sigpending(&pending);
	EXPECT_FALSE(sigismember(&pending, SIGPIPE));
	sigaction(SIGPIPE, &old, nullptr);
}

TEST_F(LogTest, UnopenableFileFallsBackToStderrWithAWarning)
{
	testing::internal::CaptureStderr();
	log_open(SRM_LOG_WARN, (dir_ + "/no/such/dir/log").c_str());
	log_write(SRM_LOG_WARN, nullptr, "still logged");
	std::string err = testing::internal::GetCapturedStderr();
	EXPECT_NE(err.find("cannot open log file \"" + dir_ + "/no/such/dir/log\""),
		  std::string::npos)
		<< err;
	EXPECT_NE(err.find("still logged"), std::string::npos);
	EXPECT_EQ(log_fd(), 2);
}

TEST_F(LogTest, FileIsPrivateAppendedAndCloexec)
{
	{
		std::ofstream pre(path_);
		pre << "earlier line\n";
	}
	chmod(path_.c_str(), 0600);
	log_open(SRM_LOG_WARN, path_.c_str());
	log_write(SRM_LOG_WARN, nullptr, "appended");
	auto lines = Lines();
	ASSERT_EQ(lines.size(), 2u);
	EXPECT_EQ(lines[0], "earlier line");
	int fd = log_fd();
	EXPECT_NE(fd, 2);
	EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_TRUE(fcntl(fd, F_GETFL) & O_APPEND);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 1100) {
		EXPECT_GE(fd, 1024) << "log fd should sit above the select() range";
	}

	unlink(path_.c_str());
	log_open(SRM_LOG_WARN, path_.c_str());
	struct stat st;
	ASSERT_EQ(stat(path_.c_str(), &st), 0);
	EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(LogTest, ReopenKeepsTheSameFdNumber)
{
	std::string other = dir_ + "/other";
	log_open(SRM_LOG_WARN, path_.c_str());
	int fd = log_fd();
	log_write(SRM_LOG_WARN, nullptr, "first");
	log_open(SRM_LOG_WARN, other.c_str());
	EXPECT_EQ(log_fd(), fd);
	log_write(SRM_LOG_WARN, nullptr, "second");
	EXPECT_EQ(Lines().size(), 1u);
	ASSERT_EQ(Lines(other).size(), 1u);
	EXPECT_NE(Lines(other)[0].find("second"), std::string::npos);
	// Back to stderr: fd 2 itself, and the file gets nothing more.
	log_open(SRM_LOG_WARN, nullptr);
	EXPECT_EQ(log_fd(), 2);
	testing::internal::CaptureStderr();
	log_write(SRM_LOG_WARN, nullptr, "third");
	std::string err = testing::internal::GetCapturedStderr();
	EXPECT_NE(err.find("third"), std::string::npos);
	EXPECT_EQ(Lines(other).size(), 1u);
	// And a file again reuses the slot.
	log_open(SRM_LOG_WARN, path_.c_str());
	EXPECT_EQ(log_fd(), fd);
}

TEST_F(LogTest, ConcurrentLinesNeverInterleave)
{
	log_open(SRM_LOG_DEBUG, path_.c_str());
	const int threads = 4, per = 500;
	std::vector<std::thread> ts;
	for (int t = 0; t < threads; t++)
		ts.emplace_back([t] {
			for (int i = 0; i < per; i++)
				log_write(SRM_LOG_INFO, "peer", "thread %d line %d %s", t, i,
					  "padding padding padding padding padding padding");
		});
	for (auto &t : ts)
		t.join();
	auto lines = Lines();
	ASSERT_EQ(lines.size(), (size_t)(threads * per));
	std::vector<int> seen(threads * per, 0);
	for (auto &l : lines) {
		int t = -1, i = -1, end = 0;
		std::string rest = AfterPrefix(l);
		ASSERT_EQ(sscanf(rest.c_str(), "info peer=peer: thread %d line %d %n", &t, &i, &end), 2)
			<< l;
		ASSERT_EQ(rest.substr((size_t)end),
			  "padding padding padding padding padding padding")
			<< l;
		ASSERT_TRUE(t >= 0 && t < threads && i >= 0 && i < per) << l;
		seen[t * per + i]++;
	}
	for (int n : seen)
		EXPECT_EQ(n, 1);
}

TEST(LogRatelimit, FirstEventPassesThenOnePerInterval)
{
	struct log_ratelimit rl = {};
	EXPECT_EQ(log_ratelimit_ok(&rl, 0, 1000), 1); // clock starting at 0 works
	EXPECT_EQ(log_ratelimit_ok(&rl, 5, 1000), 0);
	EXPECT_EQ(log_ratelimit_ok(&rl, 999, 1000), 0);
	EXPECT_EQ(rl.suppressed, 2u);
	EXPECT_EQ(log_ratelimit_ok(&rl, 1000, 1000), 3); // 1 + 2 suppressed
	EXPECT_EQ(rl.suppressed, 0u);
	EXPECT_EQ(log_ratelimit_ok(&rl, 1500, 1000), 0);
	EXPECT_EQ(log_ratelimit_ok(&rl, 5000, 1000), 2);
	EXPECT_EQ(log_ratelimit_ok(&rl, 5001, 1000), 0);
}

TEST(LogRatelimit, LargeClockAndSaturation)
{
	struct log_ratelimit rl = {};
	uint64_t t = 1ull << 50;
	EXPECT_EQ(log_ratelimit_ok(&rl, t, 10), 1);
	rl.suppressed = UINT32_MAX - 1;
	EXPECT_EQ(log_ratelimit_ok(&rl, t + 1, 10), 0);
	EXPECT_EQ(log_ratelimit_ok(&rl, t + 2, 10), 0);
	EXPECT_EQ(rl.suppressed, UINT32_MAX);
	EXPECT_EQ(log_ratelimit_ok(&rl, t + 10, 10), INT_MAX);
}

TEST(LogRatelimit, ZeroIntervalAlwaysPasses)
{
	struct log_ratelimit rl = {};
	for (int i = 0; i < 5; i++)
		EXPECT_EQ(log_ratelimit_ok(&rl, 7, 0), 1);
}

} // namespace
