// vcrm-supervisor carrying an upgrade across the restart. Slot a holds the real build, whose
// bin/vcrmd first runs what vcrmd will run at its start once it uses the engine (the apply
// driver's recover() over FakeDatabases) and then the real vcrmd; the apply driver applies a
// bundle whose "new version" fails at once, never marks itself good, or marks itself good. The
// supervisor rolls back the first two within its crash budget or deadline, the journal says why
// and slot a's vcrm serves again with its original database pointed at; the third is kept. A
// supervisor killed half-way through its rollback finishes it when it starts again, and one
// killed during a trial leaves the decision to the next one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>

#include "apply_support.h"
#include "child.h"
#include "eventually.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/process.h"
#include "vcrm/upgrade/apply.h"
#include "vcrm/upgrade/slots.h"
#include "vcrm/upgrade/supervisor.h"
#include "vcrmd_process.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

bool runs(pid_t pid) {
  std::error_code ec;
  return !fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).empty();
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class SupervisorTrialTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"vcrm-trial"};
  fs::path root_ = tmp_.path() / "root";
  SlotLayout slots_{root_};
  UpgradeLayout layout_{root_};
  std::unique_ptr<test::VcrmdProcess> app_;
  std::vector<pid_t> spawned_;

  void SetUp() override {
    fs::create_directories(root_);
    fs::permissions(root_, fs::perms(0755));
    // The real build, its vcrmd behind what vcrmd's start will do with the engine.
    const fs::path tree = tmp_.path() / "tree-a";
    const auto r = process::run({VCRM_CMAKE_COMMAND, "--install",
                                 test::binDir().parent_path().string(), "--prefix", tree.string()});
    ASSERT_TRUE(r.ok()) << r.output;
    fs::rename(tree / "bin/vcrmd", tree / "bin/vcrmd.real");
    std::ofstream(tree / "bin/vcrmd") << "#!/bin/sh\n"
                                      << test::applyDriver().string()
                                      << " start --root \"$2\" --as a --version 0.1.0 || exit $?\n"
                                      << "exec \"$(dirname \"$0\")/vcrmd.real\" \"$@\"\n";
    fs::permissions(tree / "bin/vcrmd", fs::perms(0755));
    slots_.install(tree, Slot::A);
    slots_.switchTo(Slot::A);
    test::makeFakeDatabases(root_);
  }
  void TearDown() override {
    const pid_t daemon = app_ ? app_->daemonPid() : -1;
    if (app_ && app_->running()) app_->stop();
    if (daemon > 0 && runs(daemon)) kill(daemon, SIGKILL);
    app_.reset();
    for (pid_t pid : spawned_) test::terminate(pid, 10s);
  }

  // The old version's apply of a bundle whose bin/vcrmd is `newVcrmd`; committed, so `current`
  // names slot b now, as when the old vcrmd has just exited 75.
  void applyNewVersion(const std::string& newVcrmd) {
    const fs::path bundle = tmp_.path() / "vcrm-0.2.0.bin";
    test::makeTestBundle(test::makeSlotTree(tmp_.path() / "tree-b", "0.2.0", newVcrmd), "0.2.0",
                         bundle);
    const auto r = test::runToEnd({test::applyDriver().string(), "apply", "--root", root_.string(),
                                   "--as", "a", "--version", "0.1.0", "--bundle", bundle.string()},
                                  tmp_.path() / "apply.log");
    ASSERT_EQ(r.status, kRestartFromCurrent) << r.output;
    ASSERT_EQ(slots_.current(), Slot::B);
  }
  std::string newVersionDriver(const std::string& flags) const {
    return "#!/bin/sh\nexec " + test::applyDriver().string() +
           " start --root \"$2\" --as b --version 0.2.0 " + flags + "\n";
  }
  // vcrm-supervisor of slot a's build on the root with `args`, its output in `log`; stopped in
  // TearDown if it still runs.
  pid_t spawnSupervisor(const fs::path& log, const std::vector<std::string>& args,
                        std::vector<std::string> env = {}) {
    test::SpawnOptions spawn;
    spawn.log = log;
    spawn.dieWithParent = true;
    spawn.env = std::move(env);
    std::vector<std::string> argv{(slots_.slotDir(Slot::A) / "bin/vcrm-supervisor").string(),
                                  "--root", root_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    const pid_t pid = test::spawnLogged(argv, spawn);
    spawned_.push_back(pid);
    return pid;
  }
  static std::string textOf(const fs::path& log) {
    return fs::exists(log) ? files::readFile(log) : std::string();
  }
  void startSupervisor(const std::vector<std::string>& trialArgs) {
    test::VcrmdProcess::Options o;
    o.root = root_;
    o.supervisor = slots_.slotDir(Slot::A) / "bin/vcrm-supervisor";
    o.supervisorArgs = trialArgs;
    app_ = std::make_unique<test::VcrmdProcess>(o);
    app_->start();  // ready: the old version's real vcrmd answers
  }
  // Entirely the old version again, the journal saying `why`.
  void expectRolledBack(const std::string& why) {
    EXPECT_EQ(slots_.current(), Slot::A);
    EXPECT_EQ(app_->client().get("/healthz").status, 200);
    const auto r = layout_.journal().load();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->phase, JournalPhase::Failed);
    EXPECT_NE(r->message.find("rolled back by the supervisor: version 0.2.0 " + why),
              std::string::npos)
        << r->message;
    EXPECT_EQ(r->fact(kFactRollbackPending), "") << "slot a's start finished the rollback";
    EXPECT_EQ(test::fileText(root_ / "fake-databases/pointer"), test::kFakeOriginal);
    EXPECT_EQ(test::fakeDatabaseNames(root_), std::set<std::string>{test::kFakeOriginal});
  }
};

TEST_F(SupervisorTrialTest, ANewVersionThatCrashesAtOnceIsRolledBackWithinItsCrashBudget) {
  applyNewVersion("#!/bin/sh\necho 'cannot start' >&2\nexit 3\n");
  startSupervisor({"--trial-crashes", "3", "--trial-timeout-ms", "60000"});
  expectRolledBack("crashed 3 times (the last exited with status 3)");
  EXPECT_NE(app_->output().find("UPGRADE_ROLLING_BACK"), std::string::npos);
  EXPECT_EQ(count(app_->output(), "VCRMD_STARTED"), 4u) << "three tries of b, then a";
}

TEST_F(SupervisorTrialTest, ANewVersionThatNeverMarksItselfGoodIsRolledBackAtItsDeadline) {
  applyNewVersion(newVersionDriver("--hang-health"));
  startSupervisor({"--trial-crashes", "3", "--trial-timeout-ms", "3000"});
  expectRolledBack("did not mark itself good within 3000 ms");
  EXPECT_NE(app_->output().find("UPGRADE_ROLLING_BACK"), std::string::npos);
  EXPECT_EQ(count(app_->output(), "VCRMD_STARTED"), 2u);
}

TEST_F(SupervisorTrialTest, ANewVersionThatMarksItselfGoodIsKeptPastItsDeadline) {
  applyNewVersion(newVersionDriver("--serve"));
  const fs::path log = tmp_.path() / "supervisor.log";
  spawnSupervisor(log, {"--trial-timeout-ms", "2000"});
  const auto text = [&] { return textOf(log); };
  EXPECT_TRUE(
      test::eventually([&] { return text().find("UPGRADE_KEPT") != std::string::npos; }, 30s))
      << text();
  const auto r = layout_.journal().load();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->phase, JournalPhase::Done) << r->message;
  EXPECT_EQ(slots_.current(), Slot::B);
  EXPECT_EQ(test::fileText(root_ / "fake-databases/pointer"), upgradeCopyName(r->id));
  const auto state = json::parseObject(files::readFile(root_ / "var/lib/vcrm/run/supervisor.json"));
  EXPECT_EQ(state->getValue<int>("starts"), 1);
  EXPECT_EQ(state->getValue<std::string>("slot"), "b");
  EXPECT_EQ(state->getValue<std::string>("trial"), "");
  EXPECT_TRUE(runs(state->getValue<int>("vcrmd_pid"))) << "the new version runs on";
  EXPECT_EQ(count(text(), "UPGRADE_ROLLING_BACK"), 0u);
}

TEST_F(SupervisorTrialTest, ASupervisorKilledDuringItsRollbackFinishesItWhenStartedAgain) {
  applyNewVersion("#!/bin/sh\nexit 3\n");
  const fs::path log = tmp_.path() / "killed-supervisor.log";
  const pid_t sup =
      spawnSupervisor(log, {"--trial-crashes", "2"}, {"VCRM_TEST_CRASH_AT=supervisor-rolled-back"});
  int status = 0;
  ASSERT_TRUE(test::waitExit(sup, 60s, &status)) << textOf(log);
  spawned_.clear();
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << textOf(log);
  // Journalled, not yet switched: slot b is still current.
  EXPECT_EQ(slots_.current(), Slot::B);
  EXPECT_EQ(layout_.journal().load()->fact(kFactRollbackPending), "true");
  startSupervisor({});
  expectRolledBack("crashed 2 times");
  EXPECT_NE(app_->output().find("SUPERVISOR_ROLLBACK_FINISHED"), std::string::npos);
}

TEST_F(SupervisorTrialTest, ASupervisorKilledDuringATrialLeavesItToTheNextOneToDecide) {
  applyNewVersion(newVersionDriver("--hang-health"));
  const fs::path log = tmp_.path() / "first-supervisor.log";
  const pid_t first = spawnSupervisor(log, {});
  const fs::path state = root_ / "var/lib/vcrm/run/supervisor.json";
  pid_t onTrial = -1;
  ASSERT_TRUE(test::eventually(
      [&] {
        // The new version may print before the supervisor has written its state file.
        if (!fs::exists(state) || textOf(log).find("on-trial") == std::string::npos) {
          return false;
        }
        onTrial = json::parseObject(files::readFile(state))->getValue<int>("vcrmd_pid");
        return onTrial > 0;
      },
      30s))
      << textOf(log);
  ASSERT_EQ(kill(first, SIGKILL), 0);
  int status = 0;
  ASSERT_TRUE(test::waitExit(first, 10s, &status));
  spawned_.clear();
  EXPECT_TRUE(test::eventually([&] { return !runs(onTrial); }, 10s))
      << "the new version went down with its supervisor";
  EXPECT_EQ(slots_.current(), Slot::B) << "still on trial";
  startSupervisor({"--trial-timeout-ms", "3000"});
  expectRolledBack("did not mark itself good within 3000 ms");
}

TEST_F(SupervisorTrialTest, AJournalThatCannotBeReadIsLeftAsItIsAndNoTrialIsRunOnIt) {
  applyNewVersion(newVersionDriver("--serve"));
  const std::string bad = "{\"format\": 1, \"id\": \"edited\"";
  files::atomicWrite(layout_.journalFile(), bad, 0600);
  const fs::path log = tmp_.path() / "supervisor.log";
  spawnSupervisor(log, {"--trial-crashes", "1", "--trial-timeout-ms", "1000"});
  const auto text = [&] { return textOf(log); };
  // The new version refuses it too (its recover() says what to do), and crashes in a loop.
  EXPECT_TRUE(test::eventually([&] { return count(text(), "VCRMD_CRASHED") >= 2; }, 30s)) << text();
  EXPECT_NE(text().find("UPGRADE_JOURNAL_UNREADABLE"), std::string::npos) << text();
  EXPECT_NE(text().find("restore it or remove it"), std::string::npos) << text();
  EXPECT_EQ(count(text(), "UPGRADE_ROLLING_BACK"), 0u) << "no rollback on a journal it cannot read";
  EXPECT_EQ(files::readFile(layout_.journalFile()), bad);
  EXPECT_EQ(slots_.current(), Slot::B);
}

}  // namespace
}  // namespace vcrm::upgrade
