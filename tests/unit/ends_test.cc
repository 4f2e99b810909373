// ends_test.cc — the ends board: records, once-only takes, other processes.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rundir_fixture.h"

extern "C" {
#include "ends.h"
#include "srmudp.h"
}

namespace {

class Ends : public RunDirTest {
protected:
	void SetUp() override
	{
		RunDirTest::SetUp();
		if (HasFatalFailure())
			return;
		char dir[256];
		ASSERT_EQ(srm_runtime_dir(dir, sizeof(dir)), 0);
		dir_ = dir;
	}
	std::string board_path(pid_t pid) { return dir_ + "/" + std::to_string(pid) + ".ends"; }

	std::string dir_;
};

TEST_F(Ends, RecordsAndReportsOnce)
{
	struct ends_board *b = ends_create();
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(access(board_path(getpid()).c_str(), R_OK), 0);
	ends_record(b, 5, SRM_ERR_RESET);
	ends_record(b, 6, SRM_ERR_TIMEOUT);
	EXPECT_EQ(ends_lookup(b, 5), SRM_ERR_RESET);
	EXPECT_EQ(ends_lookup(b, 7), 0);
	EXPECT_EQ(ends_lookup(b, 0), 0);
	EXPECT_EQ(ends_take(b, 6), SRM_ERR_TIMEOUT);
	EXPECT_EQ(ends_take(b, 6), 0) << "a reset is reported once";
	EXPECT_EQ(ends_lookup(b, 6), SRM_ERR_TIMEOUT) << "lookup does not consume";
	ends_destroy(b);
	EXPECT_NE(access(board_path(getpid()).c_str(), F_OK), 0) << "the file goes with the engine";
}

TEST_F(Ends, OldestEndsAreForgottenWhenTheRingWraps)
{
	struct ends_board *b = ends_create();
	ASSERT_NE(b, nullptr);
	for (uint64_t h = 1; h <= ENDS_RING + 10; h++)
		ends_record(b, h, SRM_ERR_RESET);
	EXPECT_EQ(ends_lookup(b, 1), 0);
	EXPECT_EQ(ends_lookup(b, 10), 0);
	EXPECT_EQ(ends_lookup(b, 11), SRM_ERR_RESET);
	EXPECT_EQ(ends_lookup(b, ENDS_RING + 10), SRM_ERR_RESET);
	ends_destroy(b);
}

// An exec'd image attaches by the engine's pid; whichever process takes a
// reset first reports it, as with a TCP socket shared by two processes.
TEST_F(Ends, AnotherProcessAttachesAndTakesOnceForAll)
{
	struct ends_board *b = ends_create();
	ASSERT_NE(b, nullptr);
	ends_record(b, 42, SRM_ERR_RESET);
	pid_t engine = getpid(), child = fork();
	ASSERT_GE(child, 0);
	if (child == 0) {
		srm_ends *mine = srm_ends_attach(engine);
		int rc = !mine ? 2 : srm_ends_take(mine, 42) == SRM_ERR_RESET ? 0 : 1;
		_exit(rc);
	}
	int st = 0;
	ASSERT_EQ(waitpid(child, &st, 0), child);
	ASSERT_TRUE(WIFEXITED(st));
	EXPECT_EQ(WEXITSTATUS(st), 0);
	EXPECT_EQ(ends_take(b, 42), 0) << "the child reported it already";
	ends_destroy(b);
}

TEST_F(Ends, AttachRefusesMissingOrShortFiles)
{
	EXPECT_EQ(ends_attach(getpid()), nullptr);
	int fd = open(board_path(getpid()).c_str(), O_CREAT | O_WRONLY, 0600);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(write(fd, "SRME", 4), 4);
	close(fd);
	EXPECT_EQ(ends_attach(getpid()), nullptr) << "mapping past the end would fault";
}

TEST_F(Ends, SweepRemovesBoardsOfDeadProcesses)
{
	pid_t gone = fork();
	ASSERT_GE(gone, 0);
	if (gone == 0)
		_exit(0);
	ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
	for (pid_t pid : { gone, getpid() }) {
		int fd = open(board_path(pid).c_str(), O_CREAT | O_WRONLY, 0600);
		ASSERT_GE(fd, 0);
		close(fd);
	}
	srm_control_sweep(dir_.c_str());
	EXPECT_NE(access(board_path(gone).c_str(), F_OK), 0);
	EXPECT_EQ(access(board_path(getpid()).c_str(), F_OK), 0) << "a live process keeps its board";
}

} // namespace
