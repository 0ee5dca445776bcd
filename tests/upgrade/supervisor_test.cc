// vcrm-supervisor running a real build installed into slot A under a temp root: a vcrmd killed
// with SIGKILL is restarted and serves the same data; the restart exit status (vcrmd's SIGUSR1)
// restarts it; a switched `current` plus a restart request runs slot B; SIGTERM to the
// supervisor stops everything.
#include "vcrm/upgrade/supervisor.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "child.h"
#include "eventually.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/process.h"
#include "vcrm/common/version.h"
#include "vcrm/upgrade/apply.h"
#include "vcrm/upgrade/slots.h"
#include "vcrmd_process.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// `cmake --install` of this build: the tree a slot holds.
fs::path installBuild(const fs::path& prefix) {
  const auto r = process::run({VCRM_CMAKE_COMMAND, "--install",
                               test::binDir().parent_path().string(), "--prefix", prefix.string()});
  if (!r.ok()) throw std::runtime_error("cmake --install failed:\n" + r.output);
  return prefix;
}

// Whether `pid` still runs (a zombie waiting for an init that reaps slowly does not).
bool runs(pid_t pid) {
  std::error_code ec;
  return !fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).empty();
}

fs::path exeOf(pid_t pid) {
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe");
}

int stateInt(const fs::path& root, const std::string& key) {
  const auto o = json::parseObject(files::readFile(root / "var/lib/vcrm/run/supervisor.json"));
  return o->getValue<int>(key);
}

class SupervisorTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"vcrm-supervisor"};
  fs::path root_ = tmp_.path() / "root";
  SlotLayout layout_{root_};
  std::unique_ptr<test::VcrmdProcess> app_;

  void SetUp() override {
    fs::create_directories(root_);
    fs::permissions(root_, fs::perms(0755));
    layout_.install(installBuild(tmp_.path() / "tree"), Slot::A);
    layout_.switchTo(Slot::A);
    test::VcrmdProcess::Options o;
    o.root = root_;
    o.supervisor = layout_.slotDir(Slot::A) / "bin/vcrm-supervisor";
    app_ = std::make_unique<test::VcrmdProcess>(o);
    app_->start();
  }
  // Every process started here goes, even when an assertion failed half-way: the
  // VcrmdProcess destructor stops the supervisor (and so vcrmd) and then the database; a vcrmd
  // that outlived its supervisor all the same is killed before the database.
  void TearDown() override {
    const pid_t daemon = app_ ? app_->daemonPid() : -1;
    if (app_ && app_->running()) app_->stop();
    if (daemon > 0 && runs(daemon)) kill(daemon, SIGKILL);
    app_.reset();
  }
};

TEST_F(SupervisorTest, ASupervisorKilledOutrightTakesItsDaemonDown) {
  const pid_t daemon = app_->daemonPid();
  app_->killHard(false);  // SIGKILL to the supervisor
  EXPECT_TRUE(test::eventually([&] { return !runs(daemon); }, 60s))
      << "vcrmd outlived its supervisor";
}

TEST_F(SupervisorTest, AKilledDaemonIsRestartedFromTheSlotAndServesTheSameData) {
  EXPECT_EQ(exeOf(app_->daemonPid()), layout_.slotDir(Slot::A) / "bin/vcrmd");
  // The slot is self-contained: its vcrmd serves the web UI from the slot's share/.
  std::ofstream(layout_.slotDir(Slot::A) / "share/vcrm/webui/app.js", std::ios::app)
      << "// slot a\n";
  const auto appJs = app_->client().get("/app.js");
  EXPECT_EQ(appJs.status, 200);
  EXPECT_NE(appJs.body.find("// slot a"), std::string::npos);
  auto admin = app_->adminClient();
  ASSERT_EQ(app_->createReadyUser(admin, "kept", {"operator"}, "a password for kept").status, 201);

  const pid_t first = app_->daemonPid();
  ASSERT_EQ(kill(first, SIGKILL), 0);
  app_->awaitRestart(first);
  EXPECT_NE(app_->daemonPid(), first);
  EXPECT_EQ(app_->client().get("/healthz").status, 200);
  auto c = app_->client();
  EXPECT_EQ(c.loginBearer("kept", "a password for kept").status, 200) << app_->output();
  EXPECT_EQ(stateInt(root_, "crashes"), 1);
  EXPECT_EQ(stateInt(root_, "starts"), 2);
  EXPECT_NE(app_->output().find("VCRMD_CRASHED"), std::string::npos);
}

TEST_F(SupervisorTest,
       TheRestartExitStatusStartsTheCurrentSlotAgainAndASwitchedPointerTakesEffect) {
  // vcrmd's SIGUSR1: it stops and exits 75; restarted at once, not counted as a crash.
  pid_t before = app_->daemonPid();
  ASSERT_EQ(kill(before, SIGUSR1), 0);
  app_->awaitRestart(before);
  EXPECT_EQ(app_->client().get("/healthz").status, 200);
  EXPECT_EQ(stateInt(root_, "crashes"), 0);
  EXPECT_NE(app_->output().find("RESTART_FROM_CURRENT"), std::string::npos);

  // What the apply engine does: write the inactive slot, switch, ask for the restart.
  std::ofstream(tmp_.path() / "tree/share/vcrm/marker") << "slot b\n";
  layout_.install(tmp_.path() / "tree", layout_.inactive());
  layout_.switchTo(Slot::B);
  before = app_->daemonPid();
  EXPECT_EQ(exeOf(before), layout_.slotDir(Slot::A) / "bin/vcrmd") << "running on until restarted";
  ASSERT_EQ(kill(before, SIGUSR1), 0);
  app_->awaitRestart(before);
  EXPECT_EQ(exeOf(app_->daemonPid()), layout_.slotDir(Slot::B) / "bin/vcrmd");
  EXPECT_EQ(app_->client().get("/healthz").status, 200);

  // The supervisor's own SIGUSR1 (from outside) does the same after switching back.
  layout_.switchTo(Slot::A);
  before = app_->daemonPid();
  ASSERT_EQ(kill(app_->pid(), SIGUSR1), 0);
  app_->awaitRestart(before);
  EXPECT_EQ(exeOf(app_->daemonPid()), layout_.slotDir(Slot::A) / "bin/vcrmd");
  EXPECT_EQ(stateInt(root_, "crashes"), 0);
  EXPECT_EQ(stateInt(root_, "starts"), 4);
}

// vcrmd runs the upgrade journal's recovery at each start: what a crash of the old version
// after it pointed <state>/database at the copy (before the commit point) leaves is undone, so
// the appliance comes back on its own data, not on the half-made copy.
TEST_F(SupervisorTest, AnUpgradeInterruptedBeforeItsCommitIsUndoneAtTheNextDaemonStart) {
  auto admin = app_->adminClient();
  ASSERT_EQ(app_->createReadyUser(admin, "kept", {"operator"}, "a password for kept").status, 201);
  const std::string id = "20260101-000000-abcd";
  const std::string copy = upgrade::upgradeCopyName(id);
  app_->database("postgres").execScript("CREATE DATABASE " + copy);
  files::atomicWrite(app_->stateDir() / "database", copy + "\n", 0644);
  const upgrade::UpgradeLayout upgrades(root_);
  files::ensureDir(upgrades.dir(), 0700);
  upgrade::JournalRecord r;
  r.id = id;
  r.operation = "upgrade";
  r.facts = {{upgrade::kFactFromSlot, "a"},
             {upgrade::kFactToSlot, "b"},
             {upgrade::kFactFromVersion, productVersion()},
             {upgrade::kFactToVersion, "99.0.0"},
             {upgrade::kFactOriginalDatabase, "vcrm"},
             {upgrade::kFactCopyDatabase, copy}};
  for (const char* step :
       {"confirmed", "backup-made", "slot-written", "db-snapshot", "db-pointer-switched"}) {
    upgrades.journal().step(r, step);
  }

  const pid_t first = app_->daemonPid();
  ASSERT_EQ(kill(first, SIGKILL), 0);
  app_->awaitRestart(first);
  const auto after = upgrades.journal().load();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->phase, upgrade::JournalPhase::Failed);
  EXPECT_EQ(after->message, "interrupted at db-pointer-switched");
  EXPECT_EQ(app_->activeDatabaseName(), "vcrm");
  EXPECT_EQ(app_->database("postgres")
                .exec("SELECT count(*) FROM pg_database WHERE datname = $1", {copy})
                .text(0, 0),
            "0")
      << "the copy is dropped";
  auto c = app_->client();
  EXPECT_EQ(c.loginBearer("kept", "a password for kept").status, 200) << app_->output();
  EXPECT_EQ(layout_.current(), Slot::A);
}

TEST_F(SupervisorTest, SigtermToTheSupervisorStopsEverything) {
  const pid_t daemon = app_->daemonPid();
  const auto postmaster = app_->postmasterPid();
  ASSERT_TRUE(postmaster);
  EXPECT_EQ(app_->stop(), 0);
  EXPECT_FALSE(runs(daemon));
  EXPECT_FALSE(runs(*postmaster));
  EXPECT_FALSE(fs::exists(root_ / "var/lib/vcrm/run/supervisor.json"));
  EXPECT_FALSE(fs::exists(root_ / "var/lib/vcrm/run/vcrmd.json"));
}

// Runs a supervisor on a slot B whose vcrmd is `script` until it reports a crash loop; returns
// how many times it started vcrmd. The supervisor is stopped whatever happens.
std::size_t startsUntilCrashLoop(SlotLayout& layout, const fs::path& tree, const fs::path& root,
                                 const std::string& script) {
  std::ofstream(tree / "bin/vcrmd") << script;
  layout.install(tree, Slot::B, /*allowCurrent=*/true);
  layout.switchTo(Slot::B);
  static int calls = 0;
  const auto log = tree.parent_path() / ("supervisor-" + std::to_string(++calls) + ".log");
  test::SpawnOptions spawn;
  spawn.log = log;
  struct Stopper {
    pid_t pid;
    int code = -2;
    ~Stopper() {
      if (code == -2) test::terminate(pid, 10s);
    }
  } sup{test::spawnLogged(
      {(layout.slotDir(Slot::A) / "bin/vcrm-supervisor").string(), "--root", root.string()},
      spawn)};
  const auto text = [&] { return fs::exists(log) ? files::readFile(log) : std::string(); };
  const bool looped = test::eventually(
      [&] { return text().find("SUPERVISOR_CRASH_LOOP") != std::string::npos; }, 60s);
  sup.code = test::terminate(sup.pid, 10s);
  EXPECT_TRUE(looped) << text();
  EXPECT_EQ(sup.code, 0) << "a supervisor waiting out its backoff stops on SIGTERM";
  const std::string out = text();
  std::size_t starts = 0;
  for (auto at = out.find("VCRMD_STARTED"); at != std::string::npos;
       at = out.find("VCRMD_STARTED", at + 1)) {
    ++starts;
  }
  return starts;
}

TEST_F(SupervisorTest, ACrashLoopIsReportedAndRetriedAtTheCapNotHammered) {
  EXPECT_EQ(app_->stop(), 0);
  // A slot whose vcrmd fails at once (as a broken upgrade would): 0.5 + 1 + 2 + 4 s of backoff
  // before the fifth failure, reported then; five starts, not hundreds.
  EXPECT_EQ(startsUntilCrashLoop(layout_, tmp_.path() / "tree", root_, "#!/bin/sh\nexit 3\n"), 5u);
  // One that asks for a restart as soon as it starts loops too: restarted at once four times,
  // the fifth handled as a crash.
  EXPECT_EQ(startsUntilCrashLoop(layout_, tmp_.path() / "tree", root_, "#!/bin/sh\nexit 75\n"), 5u);
}

}  // namespace
}  // namespace vcrm::upgrade
