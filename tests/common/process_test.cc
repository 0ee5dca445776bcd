// process::run: helper programs (initdb, pg_ctl, ...) run without a shell, with their output,
// exit code and a time limit, optionally as another user.
#include "vcrm/common/process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "temp_dir.h"
#include "vcrm/common/error.h"

namespace fs = std::filesystem;

namespace vcrm::process {
namespace {

using namespace std::chrono_literals;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// True while `pid` runs (a zombie nobody has reaped yet counts as gone).
bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), {});
  if (content.empty()) return false;
  const auto close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() && content[close + 2] != 'Z';
}

// Waits briefly for `pid` to disappear: an orphan is reaped by init, not by us.
bool goneSoon(pid_t pid) {
  for (int i = 0; i < 100 && running(pid); ++i) std::this_thread::sleep_for(20ms);
  return !running(pid);
}

pid_t readPid(const fs::path& file) {
  for (int i = 0; i < 100; ++i) {
    const std::string s = slurp(file);
    if (!s.empty() && s.back() == '\n') return static_cast<pid_t>(std::stol(s));
    std::this_thread::sleep_for(10ms);
  }
  return -1;
}

TEST(ProcessRun, CapturesStdoutStderrAndExitCode) {
  const auto out = run({"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"});
  EXPECT_EQ(out.exitCode, 3);
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(out.timedOut);
  EXPECT_NE(out.output.find("to-stdout\n"), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("to-stderr\n"), std::string::npos) << out.output;
}

TEST(ProcessRun, SuccessIsOk) {
  const auto out = run({"/bin/echo", "hello", "world"});
  EXPECT_TRUE(out.ok());
  EXPECT_EQ(out.output, "hello world\n");
}

TEST(ProcessRun, ArgumentsAreNotInterpretedByAShell) {
  test::TempDir dir("vcrm-proc");
  const std::string marker = (dir.path() / "pwned").string();
  const auto out = run({"/bin/echo", "$(touch " + marker + ")", "; touch " + marker, "*"});
  EXPECT_TRUE(out.ok());
  EXPECT_EQ(out.output, "$(touch " + marker + ") ; touch " + marker + " *\n");
  EXPECT_FALSE(fs::exists(marker));
}

TEST(ProcessRun, StdinIsEmptySoReadersDoNotHang) {
  const auto start = std::chrono::steady_clock::now();
  Options o;
  o.timeout = 5s;
  const auto out = run({"/bin/cat"}, o);
  EXPECT_TRUE(out.ok());
  EXPECT_FALSE(out.timedOut);
  EXPECT_EQ(out.output, "");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(ProcessRun, ExtraEnvironmentAndWorkDir) {
  test::TempDir dir("vcrm-proc");
  Options o;
  o.extraEnv = {"VCRM_TEST_VALUE=a b=c"};
  o.workDir = dir.path().string();
  const auto out = run({"/bin/sh", "-c", "echo \"$VCRM_TEST_VALUE\"; pwd"}, o);
  ASSERT_TRUE(out.ok()) << out.output;
  EXPECT_EQ(out.output, "a b=c\n" + dir.path().string() + "\n");
}

TEST(ProcessRun, MissingWorkDirFailsWithoutRunningTheProgram) {
  test::TempDir dir("vcrm-proc");
  Options o;
  o.workDir = (dir.path() / "missing").string();
  const auto out = run({"/bin/sh", "-c", "touch " + (dir.path() / "ran").string()}, o);
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(fs::exists(dir.path() / "ran"));
}

TEST(ProcessRun, TimeoutKillsTheProgram) {
  test::TempDir dir("vcrm-proc");
  const fs::path pidFile = dir.path() / "pid";
  Options o;
  o.timeout = 200ms;
  const auto start = std::chrono::steady_clock::now();
  const auto out =
      run({"/bin/sh", "-c", "echo $$ > " + pidFile.string() + "; exec /bin/sleep 5"}, o);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_TRUE(out.timedOut);
  EXPECT_EQ(out.exitCode, -1);
  EXPECT_FALSE(out.ok());
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 2s);
  const pid_t pid = readPid(pidFile);
  ASSERT_GT(pid, 0);
  EXPECT_FALSE(running(pid)) << "the timed-out program is still running";
}

TEST(ProcessRun, TimeoutAlsoKillsTheProgramsChildren) {
  test::TempDir dir("vcrm-proc");
  const fs::path pidFile = dir.path() / "pid";
  Options o;
  o.timeout = 300ms;
  const auto out =
      run({"/bin/sh", "-c", "/bin/sleep 30 & echo $! > " + pidFile.string() + "; wait"}, o);
  EXPECT_TRUE(out.timedOut);
  const pid_t pid = readPid(pidFile);
  ASSERT_GT(pid, 0);
  EXPECT_TRUE(goneSoon(pid)) << "a grandchild outlived the time limit";
  if (running(pid)) kill(pid, SIGKILL);
}

TEST(ProcessRun, TimeoutHoldsWhenTheProgramClosesItsOutput) {
  // A program that detaches its stdout/stderr (as daemons do) and then hangs must still be
  // stopped at the time limit rather than blocking the caller.
  Options o;
  o.timeout = 200ms;
  const auto start = std::chrono::steady_clock::now();
  const auto out = run({"/bin/sh", "-c", "exec >/dev/null 2>&1; exec /bin/sleep 5"}, o);
  EXPECT_TRUE(out.timedOut);
  EXPECT_EQ(out.exitCode, -1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(ProcessRun, KilledBySignalIsNotOk) {
  const auto out = run({"/bin/sh", "-c", "kill -9 $$"});
  EXPECT_EQ(out.exitCode, -1);
  EXPECT_FALSE(out.timedOut);
  EXPECT_FALSE(out.ok());
}

TEST(ProcessRun, LargeOutputIsCappedAndDoesNotBlock) {
  Options o;
  o.timeout = 20s;
  const auto out = run({"/usr/bin/head", "-c", "5000000", "/dev/zero"}, o);
  EXPECT_TRUE(out.ok());
  EXPECT_FALSE(out.timedOut);
  EXPECT_GE(out.output.size(), 1u << 20);
  EXPECT_LE(out.output.size(), (1u << 20) + 8192);
}

TEST(ProcessRun, MissingProgramExits127AndSaysSo) {
  const auto out = run({"/nonexistent/initdb", "-D", "/tmp/x"});
  EXPECT_EQ(out.exitCode, 127);
  EXPECT_FALSE(out.ok());
  EXPECT_FALSE(out.timedOut);
  EXPECT_NE(out.output.find("/nonexistent/initdb"), std::string::npos) << out.output;
}

TEST(ProcessRun, EmptyArgvThrowsIoError) {
  EXPECT_THROW(run({}), IoError);
}

TEST(ProcessRun, RunsAsAnotherUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  const auto vcrm = lookupUser("vcrm");
  if (!vcrm) GTEST_SKIP() << "no user vcrm on this machine";
  Options o;
  o.runAs = vcrm;
  const auto id = run({"/usr/bin/id", "-u"}, o);
  ASSERT_TRUE(id.ok()) << id.output;
  EXPECT_EQ(id.output, std::to_string(vcrm->uid) + "\n");
  const auto groups = run({"/usr/bin/id", "-G"}, o);
  EXPECT_EQ(groups.output, std::to_string(vcrm->gid) + "\n") << "root's groups leaked";
  const auto env = run({"/bin/sh", "-c", "echo \"$HOME\""}, o);
  EXPECT_EQ(env.output, vcrm->home + "\n");
  // And it really cannot do what root can.
  const auto write = run({"/bin/sh", "-c", "echo x > /root/vcrm-process-test"}, o);
  EXPECT_FALSE(write.ok());
  EXPECT_FALSE(fs::exists("/root/vcrm-process-test"));
}

TEST(ProcessLookupUser, RootAndMissingUser) {
  const auto root = lookupUser("root");
  ASSERT_TRUE(root);
  EXPECT_EQ(root->uid, 0u);
  EXPECT_EQ(root->gid, 0u);
  EXPECT_FALSE(root->home.empty());
  EXPECT_EQ(lookupUser("no-such-user-vcrm-test"), std::nullopt);
  EXPECT_EQ(lookupUser(""), std::nullopt);
}

TEST(ProcessAlive, OwnPidDeadPidAndNonsense) {
  EXPECT_TRUE(alive(getpid()));
  EXPECT_TRUE(alive(1));
  EXPECT_FALSE(alive(0));
  EXPECT_FALSE(alive(-1));
  const auto out = run({"/bin/sh", "-c", "echo $$"});
  const pid_t gone = static_cast<pid_t>(std::stol(out.output));
  EXPECT_FALSE(alive(gone));  // reaped by run()
}

TEST(ProcessSelfDir, IsTheDirectoryOfThisTestBinary) {
  const fs::path dir = selfDir();
  EXPECT_TRUE(dir.is_absolute());
  EXPECT_TRUE(fs::exists(dir / "common_tests")) << dir;
}

}  // namespace
}  // namespace vcrm::process
