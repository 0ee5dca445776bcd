// The upgrade apply engine: the journalled steps that take an appliance from the version it runs
// to the one in a verified bundle, so that after a crash at any instant it runs entirely the old
// version (old slot, original database) or entirely the new one (new slot, the migrated copy),
// and the journal says which and why. What is daemon-specific (the backup, copying, pointing at
// and dropping databases, migrations, the health check) comes in as callbacks.
//
//   old version:  confirmed → backup-made → slot-written → db-snapshot → db-pointer-switched
//                 → slot-pointer-switched (the commit point), then it exits 75
//   new version:  trial-start (at each start) → migrated (recover(), before it serves)
//                 → healthy → done (markGood(), once it serves: "marked good")
//   rollback:     rollback-started → rolled-back-slot → rolled-back-database → dropped-copy
//                 → failed (the reason in the journal's message)
//   going back:   (operation "go-back", on request, from the new version marked good)
//                 confirmed → db-pointer-switched → slot-pointer-switched (commit) → done
//
// Before the commit point every crash is undone (a rollback with "interrupted at <step>"); past
// it the new version resumes, unless something asked for a rollback (the new version's own
// failed migration or health check, or the supervisor's trial, see supervisor.h). Every decision
// is made again from the journal and the slot pointer at each start, and every rollback step is
// idempotent, so a crash during recovery recovers too.
//
// Daemon integration (App::recoverUpgrade and daemon/upgrade_start.h at start-up; apply() and
// goBack() in the upgrade module's job, daemon/modules/upgrades/upgrade_apply_job.cc):
//  - At every start, before the configuration is read (beside restore::recover):
//    recover({vcrm::productVersion(), *slotOfProgram(slots, "/proc/self/exe")}) and exit 75 on
//    RestartFromCurrent; on OnTrial serve, then markGood() (exit 75 if it rolled back). A vcrmd
//    outside any slot (run from the build tree) skips it and refuses to apply an upgrade.
//  - apply() in the upgrade module's job after the operator confirmed; exit 75 on Committed,
//    reopen the pool on Failed. backup: the backup module's archive. snapshotDatabase: close the
//    pool (writes stop: the downtime starts here), CREATE DATABASE copy TEMPLATE original (no
//    other session may be connected to the original). pointDatabaseAt: <state>/database (what
//    restore::activeDatabase reads). dropDatabase: DROP DATABASE IF EXISTS ... WITH (FORCE) on a
//    maintenance connection. migrate: the migrations on the database now pointed at.
//  - Restores and upgrades both move <state>/database: each must refuse to begin while the
//    other's journal is under way, and dropLeftoverDatabases must keep databasesNamedByUpgrade.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "vcrm/common/log.h"
#include "vcrm/upgrade/bundle.h"
#include "vcrm/upgrade/journal.h"
#include "vcrm/upgrade/slots.h"

namespace vcrm::upgrade {

// Where everything of upgrades lives under the root prefix.
struct UpgradeLayout {
  explicit UpgradeLayout(std::filesystem::path root) : root(std::move(root)) {}
  std::filesystem::path root;
  [[nodiscard]] std::filesystem::path dir() const { return root / "var/lib/vcrm/upgrade"; }
  [[nodiscard]] std::filesystem::path journalFile() const { return dir() / "journal.json"; }
  [[nodiscard]] std::filesystem::path lockFile() const { return dir() / "lock"; }
  // Where a bundle is extracted before it is installed into the inactive slot: beside the
  // slots, on the same file system, never inside one.
  [[nodiscard]] std::filesystem::path stagingDir(const std::string& id) const {
    return root / "opt/vcrm" / ("staging-" + id);
  }
  [[nodiscard]] SlotLayout slots() const { return SlotLayout(root); }
  [[nodiscard]] StepJournal journal() const { return StepJournal(journalFile()); }
};

// The name of the database copy an upgrade with this id migrates ("vcrm_upgrade_<id>").
std::string upgradeCopyName(const std::string& upgradeId);
// Whether `name` is such a copy (what the start-up sweep of leftover databases may drop when
// the journal no longer names it: a copy kept by a go-back, once another upgrade began).
bool isUpgradeCopyName(const std::string& name);

// Journal facts (also what the status shows).
inline constexpr const char* kFactFromSlot = "from_slot";
inline constexpr const char* kFactToSlot = "to_slot";
inline constexpr const char* kFactFromVersion = "from_version";
inline constexpr const char* kFactToVersion = "to_version";
inline constexpr const char* kFactOriginalDatabase = "original_database";
inline constexpr const char* kFactCopyDatabase = "copy_database";
inline constexpr const char* kFactBackup = "backup";
inline constexpr const char* kFactStaging = "staging";
// Set when a rollback begins (its reason); a record holding it is rolled back, never resumed.
inline constexpr const char* kFactRollbackReason = "rollback_reason";
// Going back: the database the previous version had (the upgrade's original) and the upgrade.
inline constexpr const char* kFactTargetDatabase = "target_database";
inline constexpr const char* kFactUpgradeId = "upgrade_id";
// "true" on a record the supervisor failed: its slot pointer went back, its database pointer
// and copy are left to the old version's recover().
inline constexpr const char* kFactRollbackPending = "rollback_pending";

// What the daemon does for the engine. Each may throw; the engine rolls back on it.
//  - backup(): the pre-upgrade backup archive (kept); returns its path.
//  - snapshotDatabase(original, copy): makes `copy` a copy of `original` (the daemon: close the
//    pool, CREATE DATABASE copy TEMPLATE original). The name is chosen by the engine and
//    journalled first, so a crash half-way leaves nothing nameless: `copy` may already exist
//    (left by a crash) and must then be dropped and made again.
//  - pointDatabaseAt(name): makes `name` the database the next start uses (<state>/database).
//  - dropDatabase(name): drops it; a database that does not exist is not an error.
//  - migrate(): the new version's migrations on the database now pointed at (the copy).
//  - healthCheck(): the new version's own check, once it serves, before it is marked good;
//    throws why not.
//  - progress(record): after every journalled step (the event stream); optional.
struct UpgradeCallbacks {
  std::function<std::string()> backup;
  std::function<void(const std::string& original, const std::string& copy)> snapshotDatabase;
  std::function<void(const std::string& name)> pointDatabaseAt;
  std::function<void(const std::string& name)> dropDatabase;
  std::function<void()> migrate;
  std::function<void()> healthCheck;
  std::function<void(const JournalRecord&)> progress;
};

// Who is calling: the version this program is and the slot it runs from.
struct RunningVersion {
  std::string version;
  Slot slot = Slot::A;
};
// The slot under `layout` that holds `program` (/proc/self/exe); nullopt when it is in neither.
std::optional<Slot> slotOfProgram(const SlotLayout& layout, const std::filesystem::path& program);

// What an upgrade applies: a bundle verifyBundle accepted on `bundleFd` (kept open until apply
// returns), the database now active, and who confirmed it.
struct UpgradeRequest {
  int bundleFd = -1;
  BundleInfo verified;
  std::string originalDatabase;
  std::string requestedBy;
  std::string id;  // empty: a new one ("YYYYMMDD-HHMMSS-xxxx")
};

// What the program that called recover() must do next.
enum class StartOutcome {
  NoUpgrade,           // nothing under way: carry on
  OnTrial,             // this is the new version, migrated: serve, then call markGood()
  UpgradeCompleted,    // markGood(): this is the new version and it is marked good
  RolledBack,          // this is the old version, an upgrade rolled back or gone back from
  RestartFromCurrent,  // this program is not the version that must run: exit 75 now
};
std::string_view startOutcomeName(StartOutcome outcome);

// What recover() decides from the journal, who is calling and where `current` points; a pure
// function, so the whole table is tested.
enum class RecoveryAction {
  Nothing,             // no journal, or a finished one
  RollBack,            // undo (before the commit point, or a rollback under way or asked for)
  Resume,              // the new version goes on: migrate (then it serves and marks good)
  RestartFromCurrent,  // committed, and `current` names the other version: let it decide
};
std::string_view recoveryActionName(RecoveryAction action);
RecoveryAction decideRecovery(const std::optional<JournalRecord>& record, Slot me,
                              std::optional<Slot> current);

// How many times the new version may start on trial (each recover() that resumes it journals a
// "trial-start") before its next start rolls it back: a budget that holds under systemd, which
// knows nothing of trials, and across supervisor restarts, which reset the supervisor's own.
inline constexpr int kDefaultTrialStarts = 5;

class UpgradeApply {
 public:
  UpgradeApply(UpgradeLayout layout, UpgradeCallbacks callbacks, Logger& log,
               int trialStarts = kDefaultTrialStarts);

  // The old version, after the operator confirmed: every step up to and including the commit
  // point. Returns the record: Committed means "exit 75 now" (the supervisor starts the new
  // slot); Failed means it was rolled back, the message says why, and the old version runs on.
  // Throws Conflict before changing anything when an upgrade is under way or `me` is not the
  // current slot.
  JournalRecord apply(const UpgradeRequest& request, const RunningVersion& me);

  // At every start, before serving, by whichever version starts: finishes or undoes what the
  // journal says is under way (see decideRecovery). The new version is migrated here and gets
  // OnTrial (or RestartFromCurrent when its migration failed and it rolled back). Throws IoError
  // for a journal that cannot be read (nothing is changed then).
  StartOutcome recover(const RunningVersion& me);

  // The new version, once it serves (listeners bound, ready): its health check, then "done".
  // Marked good only here, so a version that migrates but cannot serve is still on trial for
  // the supervisor. Returns UpgradeCompleted, or RestartFromCurrent when the check failed and it
  // rolled back (exit 75). Throws Conflict when no migrated upgrade is on trial.
  StartOutcome markGood();

  // The new version, marked good, back to the previous one on an operator's request: the
  // previous slot with the database it had before the upgrade (what changed since is not
  // carried back; the new version's database is kept, not dropped). Journalled as operation
  // "go-back": confirmed → db-pointer-switched → commit point slot-pointer-switched; then
  // exit 75, and the previous version's recover() marks it done. Before the commit point a
  // failure or crash leaves the new version as it was. Throws Conflict before changing anything
  // when there is no upgrade marked good to go back from, or the previous slot is gone.
  // `id` names the record (empty: a new one), so a caller can answer with it before it runs.
  JournalRecord goBack(const RunningVersion& me, const std::string& requestedBy,
                       const std::string& id = {});

  // The new version on trial (between recover()'s OnTrial and markGood()), when something else
  // fails: rolls back to the old version with `reason`. Returns RestartFromCurrent (exit 75).
  // Once marked good, the way back is goBack().
  StartOutcome rollBack(const std::string& reason);

  [[nodiscard]] std::optional<JournalRecord> current() const { return journal_.load(); }

 private:
  UpgradeLayout layout_;
  UpgradeCallbacks callbacks_;
  Logger& log_;
  StepJournal journal_;
  int trialStarts_;

  void step(JournalRecord& r, const std::string& name);
  // The end of an upgrade and of going back: the database pointer to `database`, then the
  // commit point, `current` to `slot` and the journal Committed.
  void switchPointers(JournalRecord& r, const std::string& database, Slot slot);
  // A step before the commit point threw: logged and rolled back.
  void failBeforeCommit(JournalRecord& r, const char* msgId, const std::exception& e);
  // Puts everything back as the old version had it; every part idempotent.
  void rollBackRecord(JournalRecord& r, const std::string& reason);
  StartOutcome resume(JournalRecord& r);
  StartOutcome failAsNew(JournalRecord& r, const std::string& what);
  StartOutcome finishGoBack(JournalRecord& r, const RunningVersion& me);
};

// The databases the upgrade journal still needs, which a sweep of leftover databases must keep
// (the daemon's dropLeftoverDatabases drops what nothing names, the base database included):
// an upgrade's original and copy from its start until it is rolled back — after "done" the
// original stays, as what going back returns to — and both databases of a going back. Throws
// IoError for a journal that cannot be read: drop nothing then.
std::set<std::string> databasesNamedByUpgrade(const UpgradeLayout& layout);

// For the supervisor (supervisor.h): an upgrade whose new version is on trial — Committed, not
// asked to roll back, and `current` names its new slot.
struct UpgradeTrial {
  std::string id;
  Slot from = Slot::A;
  Slot to = Slot::B;
  std::string toVersion;
};
std::optional<UpgradeTrial> upgradeOnTrial(const UpgradeLayout& layout);
// Whether the upgrade `id` was marked good (Done); false for a journal that cannot be read.
bool upgradeMarkedGood(const UpgradeLayout& layout, const std::string& id);
// The supervisor gives up on the new version (it is not running): the journal says "rolled
// back by the supervisor: <reason>" (Failed, rollback still pending for the database), then
// `current` goes back to the old slot. A crash in between is finished by
// finishSupervisorRollback (or by either version's recover()).
void rollBackBySupervisor(const UpgradeLayout& layout, const std::string& reason, Logger& log);
// Before each start: a supervisor rollback whose pointer switch did not happen is finished.
void finishSupervisorRollback(const UpgradeLayout& layout, Logger& log);

}  // namespace vcrm::upgrade
