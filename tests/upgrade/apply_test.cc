// The upgrade apply engine run by vcrm-apply-driver as real processes on a temp root with real
// slots, a real signed bundle and FakeDatabases (directories and a pointer file standing for
// PostgreSQL databases: the daemon integration comes later). Each process is killed with
// VCRM_TEST_CRASH_AT at every journalled step (and the unjournalled instants between an action
// and its journal entry), of the old version's steps, the new version's, a rollback's and
// recovery's own, then started again as the supervisor would: the end is always entirely the old
// version or entirely the new one, and the journal says which and why. Also: recovery's
// decision table, and a journal that is not one is refused with nothing changed.
#include "vcrm/upgrade/apply.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "apply_support.h"
#include "child.h"
#include "temp_dir.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/supervisor.h"
#include "vcrmd_process.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kOriginal = test::kFakeOriginal;
using test::fileText;

// What a run of the driver ended with: its exit status, or -signal.
struct DriverRun {
  int code = 0;
  std::string output;
};

// Which version a root runs, whole.
enum class Ended { Old, New };

class ApplyTest : public ::testing::Test {
 protected:
  test::TempDir tmp_{"vcrm-apply"};
  fs::path root_ = tmp_.path() / "root";
  fs::path dbs_ = root_ / "fake-databases";
  SlotLayout slots_{root_};
  UpgradeLayout layout_{root_};
  fs::path bundle_ = tmp_.path() / "vcrm-0.2.0.bin";
  int runs_ = 0;

  void SetUp() override {
    fs::create_directories(root_);
    slots_.install(test::makeSlotTree(tmp_.path() / "tree-1", "0.1.0"), Slot::A);
    slots_.switchTo(Slot::A);
    test::makeFakeDatabases(root_);
    test::makeTestBundle(test::makeSlotTree(tmp_.path() / "tree-2", "0.2.0"), "0.2.0", bundle_);
  }

  // Runs the driver to its end (60 s at most); killed by its crash hook gives -SIGKILL.
  DriverRun driverRun(std::vector<std::string> args, const std::string& crashAt = "") {
    args.insert(args.begin(), test::applyDriver().string());
    test::SpawnOptions o;
    o.log = tmp_.path() / ("driver-" + std::to_string(++runs_) + ".log");
    o.dieWithParent = true;
    if (!crashAt.empty()) o.env.push_back("VCRM_TEST_CRASH_AT=" + crashAt);
    const pid_t pid = test::spawnLogged(args, o);
    int status = 0;
    if (!test::waitExit(pid, 60s, &status)) {
      kill(pid, SIGKILL);
      test::waitExit(pid, 10s, &status);
      ADD_FAILURE() << "the driver did not finish: " << files::readFile(o.log);
      return {-1, files::readFile(o.log)};
    }
    DriverRun r{WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status),
                files::readFile(o.log)};
    return r;
  }
  DriverRun apply(const std::string& crashAt = "") {
    return driverRun({"apply", "--root", root_.string(), "--as", "a", "--version", "0.1.0",
                      "--bundle", bundle_.string()},
                     crashAt);
  }
  DriverRun goBack(const std::string& crashAt = "") {
    return driverRun({"go-back", "--root", root_.string(), "--as", "b", "--version", "0.2.0"},
                     crashAt);
  }
  // An upgrade to 0.2.0 applied and marked good: the start of every going back.
  void upgraded() {
    ASSERT_EQ(apply().code, kRestartFromCurrent);
    ASSERT_EQ(start(Slot::B).code, 0);
    ASSERT_EQ(layout_.journal().load()->phase, JournalPhase::Done);
  }
  // After going back was asked for: entirely the previous version with its own database, or
  // (interrupted before its commit point) entirely the new one still, as the journal says.
  Ended expectGoBackWhole(const std::string& context, JournalRecord* record = nullptr) {
    SCOPED_TRACE(context);
    const auto r = layout_.journal().load();
    EXPECT_TRUE(r && r->operation == "go-back");
    if (!r) return Ended::New;
    if (record != nullptr) *record = *r;
    const std::string copy = r->fact(kFactOriginalDatabase);
    EXPECT_EQ(copy, upgradeCopyName(r->fact(kFactUpgradeId)));
    EXPECT_EQ(databases(), (std::set<std::string>{kOriginal, copy})) << "both are kept";
    EXPECT_EQ(fileText(dbs_ / kOriginal / "schema"), "0.1.0");
    EXPECT_EQ(fileText(dbs_ / copy / "schema"), "0.2.0");
    if (slots_.current() == Slot::A) {
      EXPECT_EQ(fileText(dbs_ / "pointer"), kOriginal);
      EXPECT_EQ(r->phase, JournalPhase::Done) << r->step << " " << r->message;
      return Ended::Old;
    }
    EXPECT_EQ(fileText(dbs_ / "pointer"), copy);
    EXPECT_EQ(r->phase, JournalPhase::Failed) << r->step;
    EXPECT_FALSE(r->message.empty());
    return Ended::New;
  }
  // One start of the version in `slot` (its flags: how the new version misbehaves).
  DriverRun start(Slot slot, const std::vector<std::string>& flags = {},
                  const std::string& crashAt = "") {
    std::vector<std::string> args{"start",
                                  "--root",
                                  root_.string(),
                                  "--as",
                                  slotName(slot),
                                  "--version",
                                  slot == Slot::A ? "0.1.0" : "0.2.0"};
    args.insert(args.end(), flags.begin(), flags.end());
    return driverRun(args, crashAt);
  }
  // What the supervisor does: start current until a start does not ask for a restart.
  void startUntilSettled(const std::vector<std::string>& newFlags = {}) {
    for (int i = 0; i < 4; ++i) {
      const Slot s = slots_.current().value();
      const auto r = start(s, s == Slot::B ? newFlags : std::vector<std::string>{});
      if (r.code == 0) return;
      ASSERT_EQ(r.code, kRestartFromCurrent) << r.output;
    }
    FAIL() << "still asking for restarts after 4 starts";
  }

  std::set<std::string> databases() const { return test::fakeDatabaseNames(root_); }
  std::set<std::string> stagingLeft() const {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(root_ / "opt/vcrm")) {
      if (e.path().filename().string().rfind("staging-", 0) == 0) out.insert(e.path().string());
    }
    return out;
  }

  // The whole system is one version or the other; returns which, with the journal's record.
  Ended expectWhole(const std::string& context, JournalRecord* record = nullptr) {
    SCOPED_TRACE(context);
    const auto r = layout_.journal().load();
    EXPECT_TRUE(r.has_value());
    if (!r) return Ended::Old;
    if (record != nullptr) *record = *r;
    const std::string copy = upgradeCopyName(r->id);
    EXPECT_TRUE(stagingLeft().empty());
    EXPECT_EQ(fileText(dbs_ / kOriginal / "schema"), "0.1.0") << "the original is never migrated";
    EXPECT_EQ(fileText(dbs_ / kOriginal / "rows"), "every conference and CDR");
    if (slots_.current() == Slot::A) {
      EXPECT_EQ(fileText(dbs_ / "pointer"), kOriginal);
      EXPECT_EQ(databases(), std::set<std::string>{kOriginal}) << "the copy is dropped";
      EXPECT_EQ(r->phase, JournalPhase::Failed) << r->step;
      EXPECT_FALSE(r->message.empty());
      EXPECT_EQ(r->fact(kFactRollbackPending), "");
      EXPECT_EQ(fileText(slots_.slotDir(Slot::A) / "share/vcrm/version"), "0.1.0");
      return Ended::Old;
    }
    EXPECT_EQ(slots_.current(), Slot::B);
    EXPECT_EQ(fileText(slots_.slotDir(Slot::B) / "share/vcrm/version"), "0.2.0");
    EXPECT_EQ(fileText(dbs_ / "pointer"), copy);
    EXPECT_EQ(databases(), (std::set<std::string>{kOriginal, copy}))
        << "the original is kept for going back";
    EXPECT_EQ(fileText(dbs_ / copy / "schema"), "0.2.0");
    EXPECT_EQ(r->phase, JournalPhase::Done) << r->step << " " << r->message;
    // The old slot is kept for going back.
    EXPECT_EQ(fileText(slots_.slotDir(Slot::A) / "share/vcrm/version"), "0.1.0");
    return Ended::New;
  }
};

std::vector<std::string> stepsOf(const JournalRecord& r) {
  std::vector<std::string> out;
  for (const auto& [s, _] : r.history) out.push_back(s);
  return out;
}

TEST_F(ApplyTest, AnUpgradeCommitsRestartsIntoTheNewSlotAndIsMarkedGood) {
  const auto applied = apply();
  ASSERT_EQ(applied.code, kRestartFromCurrent) << applied.output;
  EXPECT_EQ(slots_.current(), Slot::B);
  EXPECT_EQ(databasesNamedByUpgrade(layout_).count(kOriginal), 1u)
      << "on trial, the original is the rollback target";
  EXPECT_EQ(layout_.journal().load()->phase, JournalPhase::Committed);
  // The old version, started again by mistake, steps aside for the one current names.
  EXPECT_EQ(start(Slot::A).code, kRestartFromCurrent);
  const auto started = start(Slot::B);
  EXPECT_EQ(started.code, 0) << started.output;
  EXPECT_NE(started.output.find("upgrade-completed"), std::string::npos);
  JournalRecord r;
  EXPECT_EQ(expectWhole("after the upgrade", &r), Ended::New);
  EXPECT_EQ(stepsOf(r),
            (std::vector<std::string>{"confirmed", "backup-made", "slot-written", "db-snapshot",
                                      "db-pointer-switched", "slot-pointer-switched", "trial-start",
                                      "migrated", "healthy", "done"}));
  EXPECT_EQ(r.fact(kFactFromVersion), "0.1.0");
  EXPECT_EQ(r.fact(kFactToVersion), "0.2.0");
  EXPECT_TRUE(fs::exists(r.fact(kFactBackup))) << "the pre-upgrade backup is kept";
  // A sweep of leftover databases keeps both: the active copy and what going back returns to.
  EXPECT_EQ(databasesNamedByUpgrade(layout_),
            (std::set<std::string>{kOriginal, upgradeCopyName(r.id)}));
  EXPECT_EQ(slotOfProgram(slots_, slots_.slotDir(Slot::B) / "bin/vcrmd"), Slot::B);
  EXPECT_EQ(slotOfProgram(slots_, root_ / "opt/vcrm/current/bin/vcrmd"), Slot::B);
  EXPECT_EQ(slotOfProgram(slots_, test::applyDriver()), std::nullopt);
  // Started again later: nothing to do.
  EXPECT_NE(start(Slot::B).output.find("no-upgrade"), std::string::npos);
  EXPECT_EQ(expectWhole("after another start"), Ended::New);
}

TEST_F(ApplyTest, ANewVersionWhoseMigrationOrHealthCheckFailsRollsItselfBack) {
  for (const std::string fault : {"migrate", "health"}) {
    SCOPED_TRACE(fault);
    ASSERT_EQ(apply().code, kRestartFromCurrent);
    const auto r = start(Slot::B, {"--fail", fault});
    EXPECT_EQ(r.code, kRestartFromCurrent) << "it exits so that the old version starts";
    EXPECT_EQ(slots_.current(), Slot::A);
    startUntilSettled();
    JournalRecord rec;
    EXPECT_EQ(expectWhole("after a failing " + fault, &rec), Ended::Old);
    EXPECT_NE(rec.message.find(fault == "migrate" ? "migration 0042 failed" : "health check"),
              std::string::npos)
        << rec.message;
    EXPECT_NE(rec.message.find("the new version 0.2.0"), std::string::npos) << rec.message;
    EXPECT_EQ(databasesNamedByUpgrade(layout_), std::set<std::string>{})
        << "a copy a failed drop left behind is the sweep's to drop";
  }
}

TEST_F(ApplyTest, ANewVersionThatDiesAtEveryStartIsRolledBackAtItsSixthStart) {
  // Without our supervisor (systemd restarts it on failure): the engine's own start budget.
  ASSERT_EQ(apply().code, kRestartFromCurrent);
  for (int i = 1; i <= kDefaultTrialStarts; ++i) {
    const auto r = start(Slot::B, {"--fail", "serving"});
    ASSERT_EQ(r.code, -SIGKILL) << "start " << i << ": " << r.output;
  }
  const auto last = start(Slot::B, {"--fail", "serving"});
  EXPECT_EQ(last.code, kRestartFromCurrent) << last.output;
  startUntilSettled();
  JournalRecord r;
  EXPECT_EQ(expectWhole("after five deaths", &r), Ended::Old);
  EXPECT_NE(r.message.find("started 5 times without being marked good"), std::string::npos)
      << r.message;
}

struct CrashCase {
  std::string at;        // the VCRM_TEST_CRASH_AT step
  std::string phase;     // "apply", "new" (the new version's start), "rollback" (its own
                         // rollback after a failed health check), "recover" (the old version
                         // undoing an apply killed at db-pointer-switched), "recover-new" (the
                         // new slot undoing an apply killed between the switch and the commit)
  bool endsNew = false;  // else the old version
  std::string reason{};  // in the journal's message when it ends old
};

void PrintTo(const CrashCase& c, std::ostream* out) {
  *out << c.phase << " killed at " << c.at;
}

std::string caseName(const ::testing::TestParamInfo<CrashCase>& info) {
  std::string n = info.param.phase + "_" + info.param.at;
  for (char& c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return n;
}

class ApplyCrashTest : public ApplyTest, public ::testing::WithParamInterface<CrashCase> {};

TEST_P(ApplyCrashTest, AKillAtThisStepEndsEntirelyOnTheOldOrTheNewVersion) {
  const CrashCase& c = GetParam();
  std::vector<std::string> newFlags;
  if (c.phase == "apply") {
    const auto r = apply(c.at);
    ASSERT_EQ(r.code, -SIGKILL) << "the crash hook did not fire at " << c.at << ": " << r.output;
  } else if (c.phase == "new") {
    ASSERT_EQ(apply().code, kRestartFromCurrent);
    ASSERT_EQ(start(Slot::B, {}, c.at).code, -SIGKILL);
  } else if (c.phase == "rollback") {
    newFlags = {"--fail", "health"};
    ASSERT_EQ(apply().code, kRestartFromCurrent);
    ASSERT_EQ(start(Slot::B, newFlags, c.at).code, -SIGKILL);
  } else if (c.phase == "recover") {
    ASSERT_EQ(apply("db-pointer-switched").code, -SIGKILL);
    ASSERT_EQ(start(Slot::A, {}, c.at).code, -SIGKILL);
  } else {
    ASSERT_EQ(apply("slot-pointer-written").code, -SIGKILL);
    ASSERT_EQ(slots_.current(), Slot::B) << "killed between the switch and the commit";
    ASSERT_EQ(start(Slot::B, {}, c.at).code, -SIGKILL);
  }
  startUntilSettled(newFlags);
  JournalRecord r;
  const Ended ended = expectWhole("killed at " + c.at, &r);
  EXPECT_EQ(ended, c.endsNew ? Ended::New : Ended::Old) << r.step << ": " << r.message;
  if (!c.endsNew) {
    EXPECT_NE(r.message.find(c.reason), std::string::npos) << r.message;
  }
  // And it stays so at the next start of whichever version.
  startUntilSettled(newFlags);
  EXPECT_EQ(expectWhole("started again"), ended);
}

INSTANTIATE_TEST_SUITE_P(
    EveryStep, ApplyCrashTest,
    ::testing::Values(
        // The old version's steps: before the commit point everything is undone.
        CrashCase{"confirmed", "apply", false, "interrupted at confirmed"},
        CrashCase{"backup-made", "apply", false, "interrupted at backup-made"},
        CrashCase{"slot-written", "apply", false, "interrupted at slot-written"},
        CrashCase{"db-snapshot-made", "apply", false, "interrupted at slot-written"},
        CrashCase{"db-snapshot", "apply", false, "interrupted at db-snapshot"},
        CrashCase{"db-pointer-written", "apply", false, "interrupted at db-snapshot"},
        CrashCase{"db-pointer-switched", "apply", false, "interrupted at db-pointer-switched"},
        CrashCase{"slot-pointer-written", "apply", false, "interrupted at db-pointer-switched"},
        // The commit point: from here the new version goes on.
        CrashCase{"slot-pointer-switched", "apply", true}, CrashCase{"trial-start", "new", true},
        CrashCase{"migrated", "new", true}, CrashCase{"healthy", "new", true},
        CrashCase{"done", "new", true},
        // The new version's own rollback, killed at each of its steps, is finished.
        CrashCase{"rollback-started", "rollback", false, "health check failed"},
        CrashCase{"rolled-back-slot", "rollback", false, "health check failed"},
        CrashCase{"rolled-back-database", "rollback", false, "health check failed"},
        CrashCase{"dropped-copy", "rollback", false, "health check failed"},
        CrashCase{"failed", "rollback", false, "health check failed"},
        // Recovery killed while it undoes an interrupted apply.
        CrashCase{"rollback-started", "recover", false, "interrupted at db-pointer-switched"},
        CrashCase{"rolled-back-slot", "recover", false, "interrupted at db-pointer-switched"},
        CrashCase{"rolled-back-database", "recover", false, "interrupted at db-pointer-switched"},
        CrashCase{"dropped-copy", "recover", false, "interrupted at db-pointer-switched"},
        CrashCase{"failed", "recover", false, "interrupted at db-pointer-switched"},
        CrashCase{"rollback-started", "recover-new", false, "interrupted at db-pointer-switched"},
        CrashCase{"rolled-back-slot", "recover-new", false, "interrupted at db-pointer-switched"}),
    caseName);

TEST_F(ApplyTest, GoingBackRestartsThePreviousVersionOnItsOwnDatabase) {
  // Nothing to go back from before an upgrade was marked good.
  const auto refused = goBack();
  EXPECT_EQ(refused.code, 3);
  EXPECT_NE(refused.output.find("no upgrade marked good"), std::string::npos) << refused.output;
  upgraded();
  EXPECT_EQ(goBack().code, kRestartFromCurrent);
  EXPECT_EQ(slots_.current(), Slot::A);
  const auto started = start(Slot::A);
  EXPECT_EQ(started.code, 0);
  EXPECT_NE(started.output.find("rolled-back"), std::string::npos) << started.output;
  JournalRecord r;
  EXPECT_EQ(expectGoBackWhole("gone back", &r), Ended::Old);
  EXPECT_EQ(stepsOf(r), (std::vector<std::string>{"confirmed", "db-pointer-switched",
                                                  "slot-pointer-switched", "done"}));
  EXPECT_EQ(r.fact(kFactToVersion), "0.1.0");
  // Once back, going back again is refused: the last operation was not an upgrade.
  EXPECT_EQ(goBack().code, 3);
}

class GoBackCrashTest : public ApplyTest, public ::testing::WithParamInterface<CrashCase> {};

TEST_P(GoBackCrashTest, AKillAtThisStepOfGoingBackEndsEntirelyOnOneVersion) {
  const CrashCase& c = GetParam();
  upgraded();
  if (c.phase == "go-back") {
    ASSERT_EQ(goBack(c.at).code, -SIGKILL) << "the crash hook did not fire at " << c.at;
  } else if (c.phase == "previous") {  // the previous version's start finishing it
    ASSERT_EQ(goBack().code, kRestartFromCurrent);
    ASSERT_EQ(start(Slot::A, {}, c.at).code, -SIGKILL);
  } else {  // undoing one killed between its switch and its commit, itself killed
    ASSERT_EQ(goBack("slot-pointer-written").code, -SIGKILL);
    ASSERT_EQ(start(Slot::A, {}, c.at).code, -SIGKILL);
  }
  startUntilSettled();
  JournalRecord r;
  const Ended ended = expectGoBackWhole("killed at " + c.at, &r);
  EXPECT_EQ(ended, c.endsNew ? Ended::New : Ended::Old) << r.step << ": " << r.message;
  if (c.endsNew) {
    EXPECT_NE(r.message.find(c.reason), std::string::npos) << r.message;
  }
  startUntilSettled();
  EXPECT_EQ(expectGoBackWhole("started again"), ended);
}

// Here "endsNew" means going back did not happen: the upgraded version runs on.
INSTANTIATE_TEST_SUITE_P(
    EveryStep, GoBackCrashTest,
    ::testing::Values(
        CrashCase{"confirmed", "go-back", true, "interrupted at confirmed"},
        CrashCase{"db-pointer-written", "go-back", true, "interrupted at confirmed"},
        CrashCase{"db-pointer-switched", "go-back", true, "interrupted at db-pointer-switched"},
        CrashCase{"slot-pointer-written", "go-back", true, "interrupted at db-pointer-switched"},
        CrashCase{"slot-pointer-switched", "go-back", false}, CrashCase{"done", "previous", false},
        CrashCase{"rollback-started", "undo", true, "interrupted at db-pointer-switched"},
        CrashCase{"rolled-back-slot", "undo", true, "interrupted at db-pointer-switched"},
        CrashCase{"rolled-back-database", "undo", true, "interrupted at db-pointer-switched"}),
    caseName);

TEST(UpgradeRecoveryTable, EachJournalStateSlotAndPointerHasOneDecision) {
  const auto record = [](JournalPhase phase, const std::string& reason = "",
                         const std::string& pending = "") {
    JournalRecord r{.id = "x", .operation = "upgrade", .phase = phase, .step = "s"};
    r.facts[kFactFromSlot] = "a";
    r.facts[kFactToSlot] = "b";
    if (!reason.empty()) r.facts[kFactRollbackReason] = reason;
    if (!pending.empty()) r.facts[kFactRollbackPending] = pending;
    return r;
  };
  const auto goBack = [](JournalPhase phase) {
    JournalRecord r{.id = "y", .operation = "go-back", .phase = phase, .step = "s"};
    r.facts[kFactFromSlot] = "b";
    r.facts[kFactToSlot] = "a";
    return r;
  };
  using A = RecoveryAction;
  struct Row {
    std::optional<JournalRecord> record;
    Slot me;
    std::optional<Slot> current;
    A expected;
  };
  JournalRecord restore = record(JournalPhase::Running);
  restore.operation = "restore";
  const std::vector<Row> rows{
      {std::nullopt, Slot::A, Slot::A, A::Nothing},
      {restore, Slot::A, Slot::A, A::Nothing},
      {record(JournalPhase::Done), Slot::B, Slot::B, A::Nothing},
      {record(JournalPhase::Failed), Slot::A, Slot::A, A::Nothing},
      {record(JournalPhase::Failed, "why", "true"), Slot::A, Slot::A, A::RollBack},
      {record(JournalPhase::Failed, "why", "true"), Slot::B, Slot::B, A::RollBack},
      {record(JournalPhase::Running), Slot::A, Slot::A, A::RollBack},
      {record(JournalPhase::Running), Slot::B, Slot::B, A::RollBack},
      {record(JournalPhase::Committed), Slot::B, Slot::B, A::Resume},
      {record(JournalPhase::Committed), Slot::A, Slot::B, A::RestartFromCurrent},
      {record(JournalPhase::Committed), Slot::A, Slot::A, A::RollBack},
      {record(JournalPhase::Committed), Slot::B, Slot::A, A::RestartFromCurrent},
      {record(JournalPhase::Committed, "health"), Slot::B, Slot::B, A::RollBack},
      {record(JournalPhase::Committed, "health"), Slot::A, Slot::A, A::RollBack},
      // Going back from b to a (its record names b as from, a as to).
      {goBack(JournalPhase::Running), Slot::B, Slot::B, A::RollBack},
      {goBack(JournalPhase::Running), Slot::A, Slot::A, A::RollBack},
      {goBack(JournalPhase::Committed), Slot::A, Slot::A, A::Resume},
      {goBack(JournalPhase::Committed), Slot::B, Slot::A, A::RestartFromCurrent},
      {goBack(JournalPhase::Committed), Slot::B, Slot::B, A::Resume},
      {goBack(JournalPhase::Done), Slot::A, Slot::A, A::Nothing},
  };
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    EXPECT_EQ(recoveryActionName(decideRecovery(row.record, row.me, row.current)),
              recoveryActionName(row.expected))
        << "row " << i;
  }
}

TEST_F(ApplyTest, AJournalThatIsNotOneIsRefusedAndNothingChanges) {
  ASSERT_EQ(apply().code, kRestartFromCurrent);
  for (const std::string bad : {"not json at all", R"({"format":1,"id":"x"})",
                                R"({"format":1,"id":"x","operation":"upgrade","phase":"half",)"
                                R"("step":"s","history":[],"facts":{}})"}) {
    SCOPED_TRACE(bad);
    files::atomicWrite(layout_.journalFile(), bad, 0600);
    const auto before = databases();
    for (Slot s : {Slot::A, Slot::B}) {
      const auto r = start(s);
      EXPECT_EQ(r.code, 3) << r.output;
      EXPECT_NE(r.output.find("journal " + layout_.journalFile().string()), std::string::npos)
          << r.output;
      EXPECT_NE(r.output.find("restore it or remove it"), std::string::npos) << r.output;
    }
    EXPECT_EQ(apply().code, 3) << "no new upgrade over a journal nobody can read";
    EXPECT_EQ(files::readFile(layout_.journalFile()), bad);
    EXPECT_EQ(slots_.current(), Slot::B);
    EXPECT_EQ(databases(), before);
  }
  // A journal whose slot facts were edited is refused too.
  JournalRecord r{.id = "x", .operation = "upgrade", .phase = JournalPhase::Committed};
  r.facts[kFactFromSlot] = "c";
  r.facts[kFactToSlot] = "b";
  layout_.journal().save(r);
  const auto refused = start(Slot::A);
  EXPECT_EQ(refused.code, 3);
  EXPECT_NE(refused.output.find("from_slot"), std::string::npos) << refused.output;
  EXPECT_EQ(slots_.current(), Slot::B);
}

TEST_F(ApplyTest, ABundleChangedAfterItsVerificationIsRolledBackBeforeAnythingSwitches) {
  const auto r = driverRun({"apply", "--root", root_.string(), "--as", "a", "--version", "0.1.0",
                            "--bundle", bundle_.string(), "--tamper", "after-verify"});
  EXPECT_EQ(r.code, 1) << r.output;
  JournalRecord rec;
  EXPECT_EQ(expectWhole("tampered", &rec), Ended::Old);
  EXPECT_NE(rec.message.find("failed after step backup-made"), std::string::npos) << rec.message;
  EXPECT_NE(rec.message.find("chunk"), std::string::npos) << rec.message;
  EXPECT_FALSE(fs::exists(slots_.slotDir(Slot::B))) << "nothing of it was installed";
}

TEST_F(ApplyTest, ASecondUpgradeWhileOneIsUnderWayIsRefused) {
  ASSERT_EQ(apply().code, kRestartFromCurrent);
  slots_.switchTo(Slot::A);  // as if the old version were still current
  const auto again = apply();
  EXPECT_EQ(again.code, 3);
  EXPECT_NE(again.output.find("is under way"), std::string::npos) << again.output;
}

}  // namespace
}  // namespace vcrm::upgrade
