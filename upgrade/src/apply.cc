// The upgrade apply engine (see apply.h).
#include "vcrm/upgrade/apply.h"

#include <fcntl.h>
#include <sys/file.h>

#include <system_error>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace fs = std::filesystem;

namespace vcrm::upgrade {

namespace {

constexpr const char* kComponent = "upgrade";
constexpr const char* kOperation = "upgrade";
constexpr const char* kGoBack = "go-back";

bool passed(const JournalRecord& r, const std::string& step) {
  for (const auto& [s, _] : r.history) {
    if (s == step) return true;
  }
  return false;
}

Slot slotFact(const JournalRecord& r, const char* key) {
  const std::string& v = r.fact(key);
  if (v == "a") return Slot::A;
  if (v == "b") return Slot::B;
  throw IoError("the upgrade journal's " + std::string(key) + " is \"" + v +
                "\", not a or b; it is written atomically, so it was changed by hand: restore it "
                "or remove it");
}

// The engine's lock on the journal: one process works on an upgrade at a time (the daemon, or
// the supervisor while no daemon runs).
class JournalLock {
 public:
  explicit JournalLock(const UpgradeLayout& layout) {
    // The state directory stays searchable (the embedded PostgreSQL's user reaches its socket
    // through it); only the upgrade's own directory is private.
    files::ensureDir(layout.dir().parent_path(), 0755);
    files::ensureDir(layout.dir(), 0700);
    fd_ = files::Fd(
        ::open(layout.lockFile().c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd_) {
      throw IoError("cannot open " + layout.lockFile().string() + ": " + errnoText(errno));
    }
    if (::flock(fd_.get(), LOCK_EX | LOCK_NB) != 0) {
      throw Conflict("another process is working on the upgrade (it holds " +
                         layout.lockFile().string() + "); wait until it is done",
                     "upgrade_in_progress");
    }
  }

 private:
  files::Fd fd_;
};

}  // namespace

std::string upgradeCopyName(const std::string& upgradeId) {
  std::string name = "vcrm_upgrade_" + upgradeId;
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

bool isUpgradeCopyName(const std::string& name) { return name.rfind("vcrm_upgrade_", 0) == 0; }

std::optional<Slot> slotOfProgram(const SlotLayout& layout, const fs::path& program) {
  std::error_code ec;
  const fs::path real = fs::weakly_canonical(program, ec);
  if (ec) return std::nullopt;
  for (Slot s : {Slot::A, Slot::B}) {
    const fs::path dir = fs::weakly_canonical(layout.slotDir(s), ec);
    if (ec) continue;
    const auto rel = real.lexically_relative(dir);
    if (!rel.empty() && *rel.begin() != "..") return s;
  }
  return std::nullopt;
}

std::string_view startOutcomeName(StartOutcome outcome) {
  switch (outcome) {
    case StartOutcome::NoUpgrade:
      return "no-upgrade";
    case StartOutcome::OnTrial:
      return "on-trial";
    case StartOutcome::UpgradeCompleted:
      return "upgrade-completed";
    case StartOutcome::RolledBack:
      return "rolled-back";
    case StartOutcome::RestartFromCurrent:
      return "restart-from-current";
  }
  return "restart-from-current";
}

std::string_view recoveryActionName(RecoveryAction action) {
  switch (action) {
    case RecoveryAction::Nothing:
      return "nothing";
    case RecoveryAction::RollBack:
      return "roll-back";
    case RecoveryAction::Resume:
      return "resume";
    case RecoveryAction::RestartFromCurrent:
      return "restart-from-current";
  }
  return "nothing";
}

// The decision table. Everything before the commit point is undone; a rollback once begun (or
// left pending by the supervisor) is finished by whoever starts; past the commit point the
// pointer decides: the version it names goes on, the other steps aside, and a pointer found back
// on the old slot means the rollback was under way when everything stopped.
RecoveryAction decideRecovery(const std::optional<JournalRecord>& record, Slot me,
                              std::optional<Slot> current) {
  if (!record || (record->operation != kOperation && record->operation != kGoBack)) {
    return RecoveryAction::Nothing;
  }
  const JournalRecord& r = *record;
  switch (r.phase) {
    case JournalPhase::Done:
      return RecoveryAction::Nothing;
    case JournalPhase::Failed:
      if (r.fact(kFactRollbackPending) != "true") return RecoveryAction::Nothing;
      break;
    case JournalPhase::Running:
    case JournalPhase::Committed:
      break;
  }
  // Both slots are read before anything is decided: a journal edited by hand is refused whole.
  const Slot from = slotFact(r, kFactFromSlot);
  const Slot to = slotFact(r, kFactToSlot);
  if (from == to) {
    throw IoError("the upgrade journal names slot " + slotName(from) +
                  " as both the old and the new one; it was changed by hand: restore it or "
                  "remove it");
  }
  if (r.phase != JournalPhase::Committed || !r.fact(kFactRollbackReason).empty()) {
    return RecoveryAction::RollBack;
  }
  // Going back, past its commit point, only ever goes forward: to the previous version.
  if (r.operation == kGoBack) {
    return current == to && me != to ? RecoveryAction::RestartFromCurrent : RecoveryAction::Resume;
  }
  if (current == to) return me == to ? RecoveryAction::Resume : RecoveryAction::RestartFromCurrent;
  return me == to ? RecoveryAction::RestartFromCurrent : RecoveryAction::RollBack;
}

UpgradeApply::UpgradeApply(UpgradeLayout layout, UpgradeCallbacks callbacks, Logger& log,
                           int trialStarts)
    : layout_(std::move(layout)),
      callbacks_(std::move(callbacks)),
      log_(log),
      journal_(layout_.journal()),
      trialStarts_(trialStarts) {}

void UpgradeApply::step(JournalRecord& r, const std::string& name) {
  journal_.step(r, name);
  if (callbacks_.progress) callbacks_.progress(r);
  log_.info(kComponent, "STEP", "upgrade step " + name + " done", r.id);
}

JournalRecord UpgradeApply::apply(const UpgradeRequest& request, const RunningVersion& me) {
  JournalLock lock(layout_);
  if (auto under = journal_.load();
      under && decideRecovery(under, me.slot, std::nullopt) != RecoveryAction::Nothing) {
    throw Conflict(
        "upgrade " + under->id + " is under way (step " + under->step + "); wait until it is done",
        "upgrade_in_progress");
  }
  SlotLayout slots = layout_.slots();
  if (slots.current() != me.slot) {
    throw Conflict("this vcrmd runs from slot " + slotName(me.slot) +
                       ", which is not the current installation; only the version "
                       "current names can be upgraded",
                   "not_current_slot");
  }
  const Slot to = otherSlot(me.slot);
  JournalRecord r;
  r.id = request.id.empty() ? newOperationId() : request.id;
  r.operation = kOperation;
  r.facts[kFactFromSlot] = slotName(me.slot);
  r.facts[kFactToSlot] = slotName(to);
  r.facts[kFactFromVersion] = me.version;
  r.facts[kFactToVersion] = request.verified.manifest.release.version;
  r.facts[kFactOriginalDatabase] = request.originalDatabase;
  r.facts[kFactCopyDatabase] = upgradeCopyName(r.id);
  r.facts[kFactStaging] = layout_.stagingDir(r.id).string();
  r.facts["requested_by"] = request.requestedBy;
  if (r.fact(kFactCopyDatabase) == request.originalDatabase || request.originalDatabase.empty()) {
    throw InvalidInput("the active database must be named (and not be " +
                           r.fact(kFactCopyDatabase) + ") to upgrade",
                       "bad_database");
  }
  step(r, "confirmed");
  try {
    r.facts[kFactBackup] = callbacks_.backup();
    step(r, "backup-made");

    const fs::path staging = r.fact(kFactStaging);
    fs::remove_all(staging);
    extractVerifiedBundle(request.bundleFd, request.verified, staging);
    slots.install(staging, to);
    fs::remove_all(staging);
    step(r, "slot-written");

    callbacks_.snapshotDatabase(request.originalDatabase, r.fact(kFactCopyDatabase));
    crashHookAt("db-snapshot-made");  // made, not yet journalled
    step(r, "db-snapshot");

    switchPointers(r, r.fact(kFactCopyDatabase), to);
  } catch (const std::exception& e) {
    failBeforeCommit(r, "APPLY_FAILED", e);
    return r;
  }
  log_.info(kComponent, "COMMITTED",
            "slot " + slotName(to) + " (version " + r.fact(kFactToVersion) +
                ") is current; restarting into it",
            r.id);
  return r;
}

void UpgradeApply::switchPointers(JournalRecord& r, const std::string& database, Slot slot) {
  callbacks_.pointDatabaseAt(database);
  crashHookAt("db-pointer-written");  // switched, not yet journalled
  step(r, "db-pointer-switched");
  layout_.slots().switchTo(slot);
  crashHookAt("slot-pointer-written");
  journal_.commit(r, "slot-pointer-switched");
  if (callbacks_.progress) callbacks_.progress(r);
}

void UpgradeApply::failBeforeCommit(JournalRecord& r, const char* msgId, const std::exception& e) {
  const std::string why = "failed after step " + r.step + ": " + e.what();
  log_.error(kComponent, msgId, why, r.id);
  rollBackRecord(r, why);
}

void UpgradeApply::rollBackRecord(JournalRecord& r, const std::string& reason) {
  // The first reason is the one kept: a crash during the rollback does not replace it with
  // "interrupted at rolled-back-slot".
  if (r.fact(kFactRollbackReason).empty()) {
    r.facts[kFactRollbackReason] = reason;
    step(r, "rollback-started");
  }
  const std::string why = r.fact(kFactRollbackReason);
  const Slot from = slotFact(r, kFactFromSlot);
  SlotLayout slots = layout_.slots();
  if (slots.current() != from) slots.switchTo(from);
  if (!passed(r, "rolled-back-slot")) step(r, "rolled-back-slot");
  const std::string& original = r.fact(kFactOriginalDatabase);
  const std::string& copy = r.fact(kFactCopyDatabase);
  callbacks_.pointDatabaseAt(original);
  if (!passed(r, "rolled-back-database")) step(r, "rolled-back-database");
  if (!copy.empty() && copy != original) callbacks_.dropDatabase(copy);
  if (!passed(r, "dropped-copy")) step(r, "dropped-copy");
  std::error_code ec;
  if (!r.fact(kFactStaging).empty()) fs::remove_all(r.fact(kFactStaging), ec);
  r.facts.erase(kFactRollbackPending);
  journal_.fail(r, why);
  if (callbacks_.progress) callbacks_.progress(r);
  log_.warn(kComponent, "ROLLED_BACK",
            std::string(r.operation == kGoBack ? "going back to " : "the upgrade to ") +
                r.fact(kFactToVersion) + " was rolled back (" + why + "): slot " + slotName(from) +
                " and database " + original + " are current again",
            r.id);
}

StartOutcome UpgradeApply::failAsNew(JournalRecord& r, const std::string& what) {
  const std::string why =
      "the new version " + r.fact(kFactToVersion) + " failed after step " + r.step + ": " + what;
  log_.error(kComponent, "NEW_VERSION_FAILED", why, r.id);
  rollBackRecord(r, why);
  return StartOutcome::RestartFromCurrent;
}

StartOutcome UpgradeApply::resume(JournalRecord& r) {
  int starts = 0;
  for (const auto& [s, _] : r.history) starts += s == "trial-start" ? 1 : 0;
  if (starts >= trialStarts_) {
    return failAsNew(r, "started " + std::to_string(starts) +
                            " times without being marked good (it crashed or was stopped each "
                            "time)");
  }
  step(r, "trial-start");
  if (passed(r, "migrated")) return StartOutcome::OnTrial;
  try {
    if (callbacks_.migrate) callbacks_.migrate();
    step(r, "migrated");
  } catch (const std::exception& e) {
    return failAsNew(r, e.what());
  }
  return StartOutcome::OnTrial;
}

StartOutcome UpgradeApply::markGood() {
  JournalLock lock(layout_);
  auto r = journal_.load();
  if (!r || r->operation != kOperation || r->phase != JournalPhase::Committed ||
      !r->fact(kFactRollbackReason).empty() || !passed(*r, "migrated")) {
    throw Conflict("no upgrade is on trial, so there is nothing to mark good",
                   "no_upgrade_on_trial");
  }
  try {
    if (!passed(*r, "healthy")) {
      if (callbacks_.healthCheck) callbacks_.healthCheck();
      step(*r, "healthy");
    }
  } catch (const std::exception& e) {
    return failAsNew(*r, e.what());
  }
  journal_.finish(*r);
  if (callbacks_.progress) callbacks_.progress(*r);
  log_.info(kComponent, "MARKED_GOOD",
            "version " + r->fact(kFactToVersion) + " in slot " + r->fact(kFactToSlot) +
                " is marked good; slot " + r->fact(kFactFromSlot) + " and database " +
                r->fact(kFactOriginalDatabase) + " are kept as the previous version",
            r->id);
  return StartOutcome::UpgradeCompleted;
}

JournalRecord UpgradeApply::goBack(const RunningVersion& me, const std::string& requestedBy,
                                   const std::string& id) {
  JournalLock lock(layout_);
  const auto up = journal_.load();
  if (!up || up->operation != kOperation || up->phase != JournalPhase::Done) {
    throw Conflict("there is no upgrade marked good to go back from" +
                       (up ? " (the last operation, " + up->operation + " " + up->id + ", is " +
                                 std::string(phaseName(up->phase)) + ")"
                           : std::string()),
                   "no_previous_version");
  }
  SlotLayout slots = layout_.slots();
  const Slot previous = slotFact(*up, kFactFromSlot);
  if (slotFact(*up, kFactToSlot) != me.slot || slots.current() != me.slot) {
    throw Conflict("this vcrmd (slot " + slotName(me.slot) +
                       ") is not the current version the upgrade installed; only that one can "
                       "go back",
                   "not_current_slot");
  }
  std::error_code ec;
  if (!fs::is_regular_file(slots.slotDir(previous) / "bin/vcrmd", ec)) {
    throw Conflict("the previous version's slot " + slotName(previous) +
                       " holds no installation any more, so there is nothing to go back to",
                   "no_previous_version");
  }
  JournalRecord r;
  r.id = id.empty() ? newOperationId() : id;
  r.operation = kGoBack;
  r.facts[kFactUpgradeId] = up->id;
  r.facts[kFactFromSlot] = slotName(me.slot);
  r.facts[kFactToSlot] = slotName(previous);
  r.facts[kFactFromVersion] = me.version;
  r.facts[kFactToVersion] = up->fact(kFactFromVersion);
  // A rollback of the going back (before its commit point) returns to the database it leaves.
  r.facts[kFactOriginalDatabase] = up->fact(kFactCopyDatabase);
  r.facts[kFactTargetDatabase] = up->fact(kFactOriginalDatabase);
  r.facts["requested_by"] = requestedBy;
  step(r, "confirmed");
  try {
    switchPointers(r, r.fact(kFactTargetDatabase), previous);
  } catch (const std::exception& e) {
    failBeforeCommit(r, "GO_BACK_FAILED", e);
    return r;
  }
  log_.info(kComponent, "GOING_BACK",
            "slot " + slotName(previous) + " (version " + r.fact(kFactToVersion) +
                ") is current again with database " + r.fact(kFactTargetDatabase) +
                "; restarting into it",
            r.id);
  return r;
}

StartOutcome UpgradeApply::finishGoBack(JournalRecord& r, const RunningVersion& me) {
  const Slot to = slotFact(r, kFactToSlot);
  SlotLayout slots = layout_.slots();
  if (slots.current() != to) slots.switchTo(to);
  callbacks_.pointDatabaseAt(r.fact(kFactTargetDatabase));
  journal_.finish(r);
  if (callbacks_.progress) callbacks_.progress(r);
  log_.info(kComponent, "WENT_BACK",
            "back on version " + r.fact(kFactToVersion) + " (slot " + slotName(to) + ", database " +
                r.fact(kFactTargetDatabase) + "); the newer version's database " +
                r.fact(kFactOriginalDatabase) + " is kept",
            r.id);
  return me.slot == to ? StartOutcome::RolledBack : StartOutcome::RestartFromCurrent;
}

StartOutcome UpgradeApply::recover(const RunningVersion& me) {
  // Read first: a journal that cannot be read is refused before anything is locked or changed.
  if (decideRecovery(journal_.load(), me.slot, std::nullopt) == RecoveryAction::Nothing) {
    return StartOutcome::NoUpgrade;
  }
  JournalLock lock(layout_);
  auto r = journal_.load();
  const auto action = decideRecovery(r, me.slot, layout_.slots().current());
  log_.info(kComponent, "RECOVERING",
            "slot " + slotName(me.slot) + " (version " + me.version + ") found the upgrade at " +
                (r ? r->step : "") + ": " + std::string(recoveryActionName(action)),
            r ? r->id : "");
  switch (action) {
    case RecoveryAction::Nothing:
      return StartOutcome::NoUpgrade;
    case RecoveryAction::RestartFromCurrent:
      return StartOutcome::RestartFromCurrent;
    case RecoveryAction::Resume:
      return r->operation == kGoBack ? finishGoBack(*r, me) : resume(*r);
    case RecoveryAction::RollBack:
      break;
  }
  rollBackRecord(*r, r->phase == JournalPhase::Committed
                         ? "the slot pointer was found back on the old version at step " + r->step
                         : "interrupted at " + r->step);
  return slotFact(*r, kFactFromSlot) == me.slot ? StartOutcome::RolledBack
                                                : StartOutcome::RestartFromCurrent;
}

StartOutcome UpgradeApply::rollBack(const std::string& reason) {
  JournalLock lock(layout_);
  auto r = journal_.load();
  if (!r || r->operation != kOperation || r->phase != JournalPhase::Committed) {
    throw Conflict("no upgrade is on trial, so there is nothing to roll back",
                   "no_upgrade_on_trial");
  }
  rollBackRecord(*r, reason);
  return StartOutcome::RestartFromCurrent;
}

std::set<std::string> databasesNamedByUpgrade(const UpgradeLayout& layout) {
  const auto r = layout.journal().load();
  if (!r || (r->operation != kOperation && r->operation != kGoBack)) return {};
  if (r->operation == kOperation && r->phase == JournalPhase::Failed &&
      r->fact(kFactRollbackPending) != "true") {
    return {};  // rolled back: the original is the active one, the copy is to go
  }
  std::set<std::string> out;
  for (const char* key : {kFactOriginalDatabase, kFactCopyDatabase, kFactTargetDatabase}) {
    if (!r->fact(key).empty()) out.insert(r->fact(key));
  }
  return out;
}

std::optional<UpgradeTrial> upgradeOnTrial(const UpgradeLayout& layout) {
  const auto r = layout.journal().load();
  if (!r || r->operation != kOperation || r->phase != JournalPhase::Committed ||
      !r->fact(kFactRollbackReason).empty()) {
    return std::nullopt;
  }
  UpgradeTrial t{r->id, slotFact(*r, kFactFromSlot), slotFact(*r, kFactToSlot),
                 r->fact(kFactToVersion)};
  if (layout.slots().current() != t.to) return std::nullopt;
  return t;
}

bool upgradeMarkedGood(const UpgradeLayout& layout, const std::string& id) {
  try {
    const auto r = layout.journal().load();
    return r && r->id == id && r->phase == JournalPhase::Done;
  } catch (const Error&) {
    return false;  // unreadable: not marked good (the rollback then reports the journal)
  }
}

void rollBackBySupervisor(const UpgradeLayout& layout, const std::string& reason, Logger& log) {
  JournalLock lock(layout);
  const StepJournal journal = layout.journal();
  auto r = journal.load();
  if (!r || r->operation != kOperation || r->phase != JournalPhase::Committed) return;
  const std::string why = "rolled back by the supervisor: " + reason;
  r->facts[kFactRollbackReason] = why;
  r->facts[kFactRollbackPending] = "true";
  r->phase = JournalPhase::Failed;
  r->message = why;
  journal.step(*r, "supervisor-rolled-back");
  const Slot from = slotFact(*r, kFactFromSlot);
  layout.slots().switchTo(from);
  log.warn(kComponent, "SUPERVISOR_ROLLED_BACK",
           why + "; slot " + slotName(from) +
               " is current again, and its vcrmd puts the database pointer back",
           r->id);
}

void finishSupervisorRollback(const UpgradeLayout& layout, Logger& log) {
  const auto r = layout.journal().load();
  if (!r || r->operation != kOperation || r->fact(kFactRollbackPending) != "true") return;
  const Slot from = slotFact(*r, kFactFromSlot);
  SlotLayout slots = layout.slots();
  if (slots.current() == from) return;
  slots.switchTo(from);
  log.warn(kComponent, "SUPERVISOR_ROLLBACK_FINISHED",
           "the supervisor's rollback had not switched the slot pointer yet; slot " +
               slotName(from) + " is current again",
           r->id);
}

}  // namespace vcrm::upgrade
