// control_test.cc — core/driver/control.c: the status socket every engine
// and rendezvous server serves, and what a client of ours gets from it.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "rundir_fixture.h"

extern "C" {
#include "clock.h"
#include "control.h"
#include "srmudp.h"
}

namespace {

// Each test has its own runtime directory.
using Control = RunDirTest;

int Connect(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	sockaddr_un sa{};
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

std::string ReadAll(int fd)
{
	std::string out;
	char buf[4096];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		out.append(buf, (size_t)n);
	return out;
}

void Doc(struct json_out *out, void *ctx)
{
	control_doc_begin(out);
	json_out_printf(out, ",\"kind\":\"test\",\"n\":%d}\n", *(int *)ctx);
}

void Reload(struct json_out *out, void *ctx)
{
	++*(int *)ctx;
	json_out_printf(out, "ok: reloaded %d\n", *(int *)ctx);
}

const struct control_ops kOps = { Doc, Reload };

// One client that sends request (nullptr: nothing, as clients before
// requests existed) and reads the whole answer.
std::string Ask(int fd, const char *path, const char *request, int *n)
{
	int c = Connect(path);
	if (c < 0)
		return "connect failed";
	if (request) {
		EXPECT_EQ(write(c, request, strlen(request)), (ssize_t)strlen(request));
	}
	struct pollfd p = { fd, POLLIN, 0 };
	EXPECT_EQ(poll(&p, 1, 2000), 1);
	control_serve(fd, &kOps, n);
	std::string answer = ReadAll(c);
	close(c);
	return answer;
}

TEST_F(Control, ListensAnswersAndRemoves)
{
	char path[108];
	int fd = control_listen(path, sizeof(path));
	ASSERT_GE(fd, 0) << path;
	std::string prefix = base_ + "/srmudp/" + std::to_string(getpid());
	EXPECT_EQ(std::string(path).compare(0, prefix.size(), prefix), 0) << path;
	struct stat st;
	ASSERT_EQ(stat(path, &st), 0);
	EXPECT_TRUE(S_ISSOCK(st.st_mode));
	EXPECT_EQ(st.st_mode & 0777, 0600u);
	EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);

	int n = 7;
	std::string doc = Ask(fd, path, "status\n", &n);
	std::string begin = "{\"pid\":" + std::to_string(getpid()) + ",\"program\":\"";
	EXPECT_EQ(doc.compare(0, begin.size(), begin), 0) << doc;
	EXPECT_NE(doc.find(",\"kind\":\"test\",\"n\":7}\n"), std::string::npos) << doc;

	// Nobody waiting: it returns at once.
	control_serve(fd, &kOps, &n);

	// A second socket in this process gets another name.
	char second[108];
	int fd2 = control_listen(second, sizeof(second));
	ASSERT_GE(fd2, 0);
	EXPECT_STRNE(path, second);
	close(fd2);
	control_remove(second);

	std::string name = path;
	close(fd);
	control_remove(path);
	EXPECT_EQ(path[0], '\0');
	EXPECT_NE(access(name.c_str(), F_OK), 0);
}

// Issue 18 item 2: "reload" is a request; a client that says nothing
// (older srmudp status, socat by hand) still gets the document, after the
// wait; anything else gets one error line.
TEST_F(Control, RequestsReloadStatusAndBad)
{
	char path[108];
	int fd = control_listen(path, sizeof(path));
	ASSERT_GE(fd, 0) << path;
	int n = 0;
	EXPECT_EQ(Ask(fd, path, "reload\n", &n), "ok: reloaded 1\n");
	EXPECT_EQ(n, 1);
	EXPECT_EQ(Ask(fd, path, "reload\r\n", &n), "ok: reloaded 2\n");

	uint64_t t0 = clock_now_ms();
	std::string doc = Ask(fd, path, nullptr, &n);
	uint64_t waited = clock_now_ms() - t0;
	EXPECT_NE(doc.find("\"kind\":\"test\""), std::string::npos) << doc;
	EXPECT_GE(waited + 5, (uint64_t)CONTROL_REQUEST_WAIT_MS);
	EXPECT_LT(waited, 2000u);

	std::string bad = Ask(fd, path, "shutdown\n", &n);
	EXPECT_EQ(bad, "error: unknown request \"shutdown\" (expected status or reload)\n");
	EXPECT_EQ(n, 2) << "a bad request reloads nothing";
	close(fd);
	control_remove(path);
}

TEST(ControlRequest, Parse)
{
	EXPECT_EQ(control_request_parse("", 0), CONTROL_STATUS);
	EXPECT_EQ(control_request_parse("\n", 1), CONTROL_STATUS);
	EXPECT_EQ(control_request_parse("status\n", 7), CONTROL_STATUS);
	EXPECT_EQ(control_request_parse("status", 6), CONTROL_STATUS);
	EXPECT_EQ(control_request_parse("reload\n", 7), CONTROL_RELOAD);
	EXPECT_EQ(control_request_parse("reload\njunk", 11), CONTROL_RELOAD);
	EXPECT_EQ(control_request_parse("reloa", 5), CONTROL_BAD);
	EXPECT_EQ(control_request_parse("reload now\n", 11), CONTROL_BAD);
	EXPECT_EQ(control_request_parse("RELOAD\n", 7), CONTROL_BAD);
	EXPECT_EQ(control_request_parse("reload\0\n", 8), CONTROL_BAD);
	std::string longer(CONTROL_REQUEST_MAX, 'x');
	EXPECT_EQ(control_request_parse(longer.data(), longer.size()), CONTROL_BAD);
}

// Issue 18, item 5: a runtime directory another user made first (or one
// open to others, or a link) is not used; a private one beside it is, the
// same for every later call, and the control socket works there.
void ExpectPrivateFallback(const std::string &usual)
{
	char a[256], b[256];
	ASSERT_EQ(srm_runtime_dir(a, sizeof(a)), 0);
	std::string got = a;
	EXPECT_EQ(got.rfind(usual + ".", 0), 0u) << got;
	EXPECT_EQ(got.size(), usual.size() + 7) << got;
	struct stat st;
	ASSERT_EQ(lstat(a, &st), 0);
	EXPECT_TRUE(S_ISDIR(st.st_mode));
	EXPECT_EQ(st.st_uid, geteuid());
	EXPECT_EQ(st.st_mode & 0777, 0700u);
	ASSERT_EQ(srm_runtime_dir(b, sizeof(b)), 0);
	EXPECT_EQ(std::string(b), got) << "every process finds the same one again";

	char path[108];
	int fd = control_listen(path, sizeof(path));
	ASSERT_GE(fd, 0);
	EXPECT_EQ(std::string(path).rfind(got + "/", 0), 0u) << path;
	control_remove(path);
	close(fd);
}

TEST_F(Control, RuntimeDirectoryOpenToOthersIsNotUsed)
{
	std::string dir = base_ + "/srmudp";
	ASSERT_EQ(mkdir(dir.c_str(), 0755), 0); // others may read it: not ours to use
	chmod(dir.c_str(), 0777);
	ExpectPrivateFallback(dir);
}

TEST_F(Control, RuntimeDirectoryThatIsALinkIsNotUsed)
{
	std::string elsewhere = base_ + "/elsewhere", dir = base_ + "/srmudp";
	ASSERT_EQ(mkdir(elsewhere.c_str(), 0700), 0);
	ASSERT_EQ(symlink(elsewhere.c_str(), dir.c_str()), 0);
	ExpectPrivateFallback(dir);
}

TEST_F(Control, RuntimeDirectoryOfAnotherUserIsNotUsed)
{
	if (geteuid() != 0)
		GTEST_SKIP() << "needs root to make a directory another uid owns";
	std::string dir = base_ + "/srmudp";
	ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
	ASSERT_EQ(chown(dir.c_str(), 65534, 65534), 0);
	ExpectPrivateFallback(dir);
}

TEST_F(Control, UnusableRuntimeDirectoryIsNamed)
{
	// Not even a private directory can be made beside it: named.
	if (geteuid() == 0)
		GTEST_SKIP() << "root writes anywhere";
	std::string dir = base_ + "/srmudp";
	ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
	ASSERT_EQ(chmod(base_.c_str(), 0500), 0);
	char path[108];
	EXPECT_EQ(control_listen(path, sizeof(path)), SRM_ERR_PERM);
	EXPECT_EQ(std::string(path), dir);
	chmod(base_.c_str(), 0700);
}

} // namespace
