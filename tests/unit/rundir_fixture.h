// rundir_fixture.h — a test that gets its own runtime directory:
// XDG_RUNTIME_DIR points at a fresh temporary directory (srm_runtime_dir
// reads it), so the sockets and boards of other tests or engines do not
// interfere; both are restored and removed afterwards.
#ifndef RUNDIR_FIXTURE_H
#define RUNDIR_FIXTURE_H

#include <gtest/gtest.h>

#include <stdlib.h>
#include <string>

class RunDirTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/srmudp-rundir-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		base_ = tmpl;
		const char *old = getenv("XDG_RUNTIME_DIR");
		had_old_ = old != nullptr;
		if (old)
			old_ = old;
		setenv("XDG_RUNTIME_DIR", base_.c_str(), 1);
	}
	void TearDown() override
	{
		if (had_old_)
			setenv("XDG_RUNTIME_DIR", old_.c_str(), 1);
		else
			unsetenv("XDG_RUNTIME_DIR");
		std::string cmd = "rm -rf '" + base_ + "'";
		ASSERT_EQ(system(cmd.c_str()), 0);
	}

	std::string base_, old_;
	bool had_old_ = false;
};

#endif
