// Real upgrades killed half-way (issue 11, "Must have" 4 and 8): this build installed as N
// (tests/support/installed_appliance.h), run by the real vcrm-supervisor, upgraded to N+1
// (build-nplus1) with kill -9 at every journalled step and crash point of the apply
// (VCRM_TEST_CRASH_AT, journal.h crashHookAt, passed by the supervisor to vcrmd), with kill -9
// of the supervisor and vcrmd together (then the supervisor started again, as systemd would),
// and with everything, PostgreSQL included, killed past the commit point. After each: the
// appliance serves N (rolled back) or N+1 (complete) as the journal's design says for that
// point, its slot pointer, database pointer and running program agree, the data written before
// is there, and no database is left beyond the ones the journal names. One root per test:
// N -> N+1 -> go-back -> N between points.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "bench_support.h"
#include "eventually.h"
#include "installed_appliance.h"
#include "restore_support.h"
#include "vcrm/common/json.h"
#include "vcrm/common/version.h"
#include "vcrm/upgrade/apply.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::HttpsClient;

constexpr const char* kKeptPassword = "a password kept across the crashes";

// The steps before the commit point (slot-pointer-switched): a crash there is undone.
const std::set<std::string> kBeforeCommit = {
    "confirmed",   "backup-made",        "slot-written",        "db-snapshot-made",
    "db-snapshot", "db-pointer-written", "db-pointer-switched", "slot-pointer-written"};

struct Counts {
  std::int64_t users = 0, conferences = 0, cdrs = 0;
  bool operator==(const Counts&) const = default;
};

class RealUpgradeCrashTest : public ::testing::Test {
 protected:
  void startAppliance(const fs::path& next) {
    nextVersion_ = test::versionOfBuild(next);
    ASSERT_NE(nextVersion_, productVersion());
    test::InstalledAppliance::Options o;
    // Three crashes of a version on trial roll it back (the default), without long backoffs.
    o.supervisorArgs = {"--trial-crashes", "3"};
    appliance_ = std::make_unique<test::InstalledAppliance>(o);
    auto admin = appliance_->adminClient();
    ASSERT_EQ(appliance_->app().createReadyUser(admin, "kept", {"operator"}, kKeptPassword).status,
              201);
    ASSERT_EQ(admin.request("PUT", "/api/v1/system/log-level", R"({"level":"debug"})").status, 200);
    counts_ = counts();
    bundle_ = appliance_->scratch() / "next.bin";
    test::makeBundleOfBuild(next, bundle_, appliance_->scratch() / "build-bundle.log");
  }

  Counts counts() {
    auto db = appliance_->app().database();
    return {db.exec("SELECT count(*) FROM users").int64(0, 0),
            db.exec("SELECT count(*) FROM conferences").int64(0, 0),
            db.exec("SELECT count(*) FROM conference_cdrs").int64(0, 0)};
  }

  std::optional<JournalRecord> journal() {
    return UpgradeLayout(appliance_->root()).journal().load();
  }

  // The supervisor (and the vcrmd under it) started again with `env`.
  void restartWith(std::vector<std::string> env) {
    auto& app = appliance_->app();
    app.stop();
    app.setEnv(std::move(env));
    app.start();
  }

  // kill -9 of the supervisor and its vcrmd at once (what systemd's cgroup kill leaves), and
  // with `database` PostgreSQL's too; then the supervisor started again.
  // Returns the journal as the kill left it.
  std::optional<JournalRecord> killEverything(bool database) {
    auto& app = appliance_->app();
    // Stopped first so that it starts no other vcrmd meanwhile: the one it runs may be a new
    // one (after an exit 75) that has no ready file yet.
    kill(app.pid(), SIGSTOP);
    std::vector<pid_t> daemons = test::childrenOf(app.pid());
    daemons.push_back(app.daemonPid());
    for (const pid_t d : daemons) {
      if (d > 0) kill(d, SIGKILL);
    }
    app.killHard(database);
    for (const pid_t d : daemons) {
      for (int i = 0; d > 0 && i < 200 && kill(d, 0) == 0; ++i) std::this_thread::sleep_for(10ms);
    }
    auto left = journal();
    app.start();
    return left;
  }

  std::string confirm() {
    auto op = appliance_->client();
    EXPECT_EQ(op.loginBearer("kept", kKeptPassword).status, 200);
    const auto verified = test::uploadAndVerifyBundle(op, bundle_);
    EXPECT_EQ(verified.status, 201) << verified.body;
    std::optional<test::HttpResult> answer;
    try {
      answer = test::confirmUpgrade(op, test::kBackupPassphrase);
    } catch (const std::exception& e) {
      // Killed at "confirmed" before its answer went out, or half-way through it (the job
      // journals "confirmed" while the answer is written): the journal names the upgrade.
      std::printf("[ no answer] %s\n", e.what());
      std::fflush(stdout);
      const auto j = journal();
      EXPECT_TRUE(j) << "no answer to the confirmation and no journal";
      return j ? j->id : "";
    }
    const auto& confirmed = *answer;
    EXPECT_EQ(confirmed.status, 202) << confirmed.body;
    if (confirmed.status != 202) return "";
    return confirmed.json()->getObject("upgrade")->getValue<std::string>("id");
  }

  // Waits until the journal's last step is `step` (or the record is past it), polling fast.
  bool awaitJournalStep(const std::string& id, const std::set<std::string>& steps) {
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        if (auto r = journal(); r && r->id == id && steps.count(r->step) == 1) return true;
      } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): being replaced
      }
      std::this_thread::sleep_for(2ms);
    }
    return false;
  }

  // The appliance after upgrade `id` ended as `outcome` ("complete" or "rolled-back"): serving
  // that version from its slot on its database, the data there, no stray database.
  void expectSettled(const std::string& id, const std::string& outcome, const std::string& at) {
    SCOPED_TRACE("crash at " + at);
    const auto status = test::awaitUpgradeEnd(*appliance_, id, 180s);
    const auto record = status->getObject("upgrade");
    EXPECT_EQ(record->getValue<std::string>("outcome"), outcome) << json::stringify(status);
    const std::string reason = record->isNull("rollback_reason")
                                   ? std::string("-")
                                   : record->getValue<std::string>("rollback_reason");
    if (outcome == "rolled-back") {
      EXPECT_NE(reason, "-");
    }
    std::printf("[ point    ] %s: %s (%s), rollback reason: %s\n", at.c_str(),
                record->getValue<std::string>("outcome").c_str(),
                record->getValue<std::string>("step").c_str(), reason.c_str());
    std::fflush(stdout);
    auto& app = appliance_->app();
    const bool onNext = outcome == "complete";
    const std::string version = onNext ? nextVersion_ : productVersion();
    const Slot slot = onNext ? Slot::B : Slot::A;
    EXPECT_EQ(appliance_->servedVersion(), version);
    EXPECT_TRUE(test::eventually([&] { return appliance_->readyVersion() == version; }, 10s));
    EXPECT_EQ(appliance_->slots().current(), slot);
    EXPECT_EQ(status->getObject("running")->getValue<std::string>("slot"), slotName(slot));
    EXPECT_EQ(fs::read_symlink("/proc/" + std::to_string(app.daemonPid()) + "/exe"),
              appliance_->slots().slotDir(slot) / "bin/vcrmd");
    const std::string active = app.activeDatabaseName();
    EXPECT_EQ(active, onNext ? upgradeCopyName(id) : "vcrm");
    // Databases: the active one, and on N+1 the original kept to go back to; nothing else.
    std::set<std::string> expected{"vcrm", active};
    std::set<std::string> present;
    auto pg = app.database("postgres");
    const auto rows = pg.exec("SELECT datname FROM pg_database WHERE datname LIKE 'vcrm%'");
    for (int i = 0; i < rows.rows(); ++i) present.insert(rows.text(i, 0));
    EXPECT_EQ(present, expected);
    const auto j = journal();
    ASSERT_TRUE(j);
    EXPECT_TRUE(j->finished());
    EXPECT_EQ(j->fact(kFactCopyDatabase), upgradeCopyName(id));
    // The data written before the first upgrade.
    EXPECT_EQ(counts(), counts_);
    auto kept = appliance_->client();
    EXPECT_EQ(kept.loginBearer("kept", kKeptPassword).status, 200);
    auto admin = appliance_->adminClient();
    EXPECT_EQ(admin.get("/api/v1/system/log-level").json()->getValue<std::string>("level"),
              "debug");
    EXPECT_FALSE(fs::exists(UpgradeLayout(appliance_->root()).stagingDir(id)));
  }

  // From N+1 back to N, with no crash hook, ready for the next point.
  void goBack() {
    auto& app = appliance_->app();
    if (!app.running()) return;
    const pid_t onNext = app.daemonPid();
    auto admin = appliance_->adminClient();
    const auto back = admin.postJson("/api/v1/upgrade/go-back", "{}");
    ASSERT_EQ(back.status, 202) << back.body;
    const std::string backId = back.json()->getObject("upgrade")->getValue<std::string>("id");
    const auto status = test::awaitUpgradeEnd(*appliance_, backId, 120s);
    app.awaitRestart(onNext);
    ASSERT_EQ(status->getObject("upgrade")->getValue<std::string>("outcome"), "gone-back");
    ASSERT_EQ(appliance_->servedVersion(), productVersion());
    ASSERT_EQ(appliance_->slots().current(), Slot::A);
    ASSERT_EQ(app.activeDatabaseName(), "vcrm");
  }

  // One upgrade with vcrmd killing itself at `at`; it must end as `outcome`.
  void crashAt(const std::string& at, const std::string& outcome) {
    ASSERT_NO_FATAL_FAILURE(restartWith({"VCRM_TEST_CRASH_AT=" + at}));
    const std::string id = confirm();
    ASSERT_FALSE(id.empty());
    ASSERT_NO_FATAL_FAILURE(expectSettled(id, outcome, at));
    if (outcome == "complete") {
      ASSERT_NO_FATAL_FAILURE(restartWith({}));  // go-back has steps of the same names
      ASSERT_NO_FATAL_FAILURE(goBack());
    }
  }

  std::unique_ptr<test::InstalledAppliance> appliance_;
  std::string nextVersion_;
  fs::path bundle_;
  Counts counts_;
};

// Every crash before the commit point, journalled or not, is undone: N again, on its database,
// the copy dropped.
TEST_F(RealUpgradeCrashTest, AKillBeforeTheCommitPointEndsOnTheOldVersion) {
  VCRM_NEXT_BUILD_OR_SKIP(next, test::NextBuild::NPlus1);
  ASSERT_NO_FATAL_FAILURE(startAppliance(next));
  for (const char* at :
       {"confirmed", "backup-made", "slot-written", "db-snapshot-made", "db-snapshot",
        "db-pointer-written", "db-pointer-switched", "slot-pointer-written"}) {
    ASSERT_NO_FATAL_FAILURE(crashAt(at, "rolled-back"));
  }
}

// Past it the new version resumes; a new version that dies at a step of its own at every start
// is rolled back by the supervisor's trial (three crashes) and then by N's recovery.
TEST_F(RealUpgradeCrashTest, AKillPastTheCommitPointResumesOrTheTrialRollsBack) {
  VCRM_NEXT_BUILD_OR_SKIP(next, test::NextBuild::NPlus1);
  ASSERT_NO_FATAL_FAILURE(startAppliance(next));
  ASSERT_NO_FATAL_FAILURE(crashAt("slot-pointer-switched", "complete"));
  ASSERT_NO_FATAL_FAILURE(crashAt("done", "complete"));
  // Dying at every start before the migrations are journalled: three crashes on trial.
  ASSERT_NO_FATAL_FAILURE(crashAt("trial-start", "rolled-back"));
  // Journalled once, so the next start goes on from there (trial-start, then the next step).
  ASSERT_NO_FATAL_FAILURE(crashAt("migrated", "complete"));
  ASSERT_NO_FATAL_FAILURE(crashAt("healthy", "complete"));
}

// kill -9 of the supervisor with its vcrmd (then started again, as systemd would) at a few
// steps, the outcome following the journal's step at the kill; and a power cut of everything,
// PostgreSQL included, past the commit point: N+1, complete.
TEST_F(RealUpgradeCrashTest, KillingTheSupervisorOrEverythingHalfWayRecovers) {
  VCRM_NEXT_BUILD_OR_SKIP(next, test::NextBuild::NPlus1);
  ASSERT_NO_FATAL_FAILURE(startAppliance(next));
  const std::vector<std::pair<std::set<std::string>, bool>> points = {
      {{"backup-made"}, false},
      {{"slot-written"}, false},
      {{"trial-start", "migrated"}, false},
      {{"slot-pointer-switched", "trial-start", "migrated"}, true}};
  for (const auto& [steps, database] : points) {
    SCOPED_TRACE("kill after " + *steps.begin());
    const std::string id = confirm();
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(awaitJournalStep(id, steps)) << *steps.begin();
    std::optional<JournalRecord> j;
    try {
      j = killEverything(database);
    } catch (const std::exception& e) {
      FAIL() << "starting again after the kill: " << e.what() << "\n" << appliance_->app().output();
    }
    ASSERT_TRUE(j);
    const std::string at = j->step;
    const bool before = kBeforeCommit.count(at) == 1 && !j->committed();
    ASSERT_NO_FATAL_FAILURE(
        expectSettled(id, before ? "rolled-back" : "complete",
                      (database ? "everything killed after " : "supervisor killed after ") + at));
    if (!before) {
      ASSERT_NO_FATAL_FAILURE(goBack());
    }
  }
}

}  // namespace
}  // namespace vcrm::upgrade
