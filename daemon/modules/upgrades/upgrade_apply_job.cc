// The upgrade service's apply and go-back jobs: confirm() checks again what may have changed
// since the bundle was verified, then a thread of its own runs the apply engine (upgrade/apply.h)
// with the daemon's callbacks; status, history and events come from the engine's journal.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <system_error>

#include "modules/upgrades/upgrade_service.h"
#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/daemon/restore_swap.h"
#include "vcrm/daemon/upgrade_start.h"
#include "vcrm/upgrade/journal.h"
#include "vcrm/upgrade/slots.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "upgrade";
constexpr std::size_t kMaxHistoryFileBytes = 1 << 20;
constexpr std::size_t kMaxHistoryShown = 50;

// What the operator reads for each journalled step (upgrade/apply.h lists them).
std::string stepLabel(const std::string& operation, const std::string& step) {
  static const std::map<std::string, std::string> kUpgrade = {
      {"confirmed", "Upgrade confirmed"},
      {"backup-made", "Pre-upgrade backup made"},
      {"slot-written", "New version written to the inactive slot"},
      {"db-snapshot", "Services stopped; database snapshot taken"},
      {"db-pointer-switched", "Database switched to the snapshot"},
      {"slot-pointer-switched", "Switched to the new version; restarting"},
      {"trial-start", "New version starting"},
      {"migrated", "Migrations applied"},
      {"healthy", "Health check passed"},
      {"done", "Upgrade complete"},
      {"rollback-started", "Rolling back"},
      {"rolled-back-slot", "Previous version restored"},
      {"rolled-back-database", "Previous database restored"},
      {"dropped-copy", "Migrated copy dropped"},
      {"failed", "Rolled back"},
  };
  static const std::map<std::string, std::string> kGoBack = {
      {"confirmed", "Going back confirmed"},
      {"db-pointer-switched", "Database switched to the previous version's"},
      {"slot-pointer-switched", "Switched to the previous version; restarting"},
      {"done", "Back on the previous version"},
      {"failed", "Going back failed; the version stays"},
  };
  const auto& table = operation == "go-back" ? kGoBack : kUpgrade;
  if (const auto it = table.find(step); it != table.end()) return it->second;
  return step;
}

// "complete", "rolled-back", "gone-back", or "" while under way.
std::string outcomeOf(const upgrade::JournalRecord& r) {
  if (r.phase == upgrade::JournalPhase::Failed) return "rolled-back";
  if (r.phase != upgrade::JournalPhase::Done) return "";
  return r.operation == "go-back" ? "gone-back" : "complete";
}

Poco::Dynamic::Var textOrNull(const std::string& s) {
  return s.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(s);
}

json::ObjectPtr historyEntry(const upgrade::JournalRecord& r) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.id);
  o->set("operation", r.operation);
  o->set("from_version", r.fact(upgrade::kFactFromVersion));
  o->set("to_version", r.fact(upgrade::kFactToVersion));
  o->set("outcome", textOrNull(outcomeOf(r)));
  o->set("reason", textOrNull(r.fact(upgrade::kFactRollbackReason).empty()
                                  ? r.message
                                  : r.fact(upgrade::kFactRollbackReason)));
  o->set("requested_by", r.fact("requested_by"));
  o->set("started_at",
         r.history.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.history.front().second));
  o->set("ended_at",
         r.history.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.history.back().second));
  o->set("backup", textOrNull(r.fact(upgrade::kFactBackup)));
  return o;
}

}  // namespace

json::ObjectPtr upgradeRecordJson(const upgrade::JournalRecord& r) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.id);
  o->set("operation", r.operation);
  o->set("phase", std::string(upgrade::phaseName(r.phase)));
  o->set("outcome", textOrNull(outcomeOf(r)));
  o->set("step", r.step);
  o->set("label", stepLabel(r.operation, r.step));
  json::ArrayPtr steps = new json::Array;
  for (const auto& [name, at] : r.history) {
    json::ObjectPtr s = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    s->set("name", name);
    s->set("label", stepLabel(r.operation, name));
    s->set("at", at);
    steps->add(s);
  }
  o->set("steps", steps);
  o->set("from_version", r.fact(upgrade::kFactFromVersion));
  o->set("to_version", r.fact(upgrade::kFactToVersion));
  o->set("from_slot", r.fact(upgrade::kFactFromSlot));
  o->set("to_slot", r.fact(upgrade::kFactToSlot));
  o->set("backup", textOrNull(r.fact(upgrade::kFactBackup)));
  o->set("rollback_reason", textOrNull(r.fact(upgrade::kFactRollbackReason)));
  o->set("message", r.message);
  o->set("requested_by", r.fact("requested_by"));
  o->set("started_at",
         r.history.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.history.front().second));
  o->set("updated_at",
         r.history.empty() ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.history.back().second));
  return o;
}

UpgradeService::~UpgradeService() {
  std::thread t;
  {
    auto j = job_.lock();
    t = std::move(j->thread);
  }
  if (t.joinable()) t.join();
}

upgrade::RunningVersion UpgradeService::installedSlot() const {
  const upgrade::SlotLayout slots(deps_.config.paths.root);
  const auto slot = upgrade::slotOfProgram(slots, "/proc/self/exe");
  if (!slot || !deps_.requestRestartFromCurrent || !deps_.stopServing || !deps_.backups) {
    throw Conflict("this vcrmd does not run from an installed slot under " + slots.base().string() +
                       " with a supervisor to restart it, so it cannot be upgraded; install it "
                       "(packaging/dev run does) and upgrade that installation",
                   "not_installed");
  }
  return {deps_.version, *slot};
}

void UpgradeService::refuseWhileBusy() const {
  if (job_.lock()->running) {
    throw Conflict("an upgrade job is running; follow it at GET /api/v1/upgrade",
                   "upgrade_in_progress");
  }
  const auto r = upgrade::UpgradeLayout(deps_.config.paths.root).journal().load();
  if (r && !r->finished()) {
    throw Conflict(r->operation + " " + r->id + " is under way (step " + r->step +
                       "); wait until it is done (GET /api/v1/upgrade)",
                   "upgrade_in_progress");
  }
  refuseWhileRestoreUnderWay(deps_.config.paths);
}

void UpgradeService::startJob(std::function<void()> body) {
  auto j = job_.lock();
  if (j->running) {
    throw Conflict("an upgrade job is running; follow it at GET /api/v1/upgrade",
                   "upgrade_in_progress");
  }
  if (j->thread.joinable()) j->thread.join();  // the last one ended
  j->running = true;
  j->thread = std::thread([this, body = std::move(body)] {
    try {
      body();
    } catch (const std::exception& e) {
      deps_.log.error(kComponent, "JOB_FAILED", e.what());
    }
    job_.lock()->running = false;
  });
}

json::ObjectPtr UpgradeService::confirm(const json::ObjectPtr& body, const User& user) {
  json::onlyKeys(body, {"backup_passphrase"});
  const std::string passphrase = json::optString(body, "backup_passphrase", 4096).value_or("");
  auto lock = commit_.lock();
  const auto p = pending();
  if (!p) {
    throw NotFound("no verified bundle is waiting for confirmation: upload one and verify it first",
                   "no_pending_bundle");
  }
  if (passphrase.empty()) {
    throw InvalidInput(
        "backup_passphrase is required: the pre-upgrade backup is sealed with it, and a "
        "restore of that backup asks for it",
        "passphrase_required");
  }
  BackupService::checkPassphrase(passphrase);
  const upgrade::RunningVersion me = installedSlot();
  refuseWhileBusy();
  if (!deps_.backups->running().isEmpty()) {
    throw Conflict("a backup is running; confirm the upgrade once it has finished",
                   "backup_running");
  }

  Applying job;
  job.bundle = files::Fd(::open(p->file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!job.bundle || ::fstat(job.bundle.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw NotFound("the verified bundle's file " + p->file.string() +
                       " is gone; discard it and upload the bundle again",
                   "upload_not_found");
  }
  // The keyring, the licence and this version may have changed since it was verified, and the
  // file is read again from the one descriptor the job extracts from.
  try {
    job.info = upgrade::verifyBundle(job.bundle.get(), trustedKeys());
    upgrade::verifyBundleFileHashes(job.bundle.get(), job.info);
    upgrade::checkUpgradePolicy(job.info.manifest.release, installedFacts(p->allowDowngrade));
  } catch (const upgrade::BundleRefused& e) {
    deps_.log.warn(kComponent, "BUNDLE_REFUSED",
                   std::string("at confirmation: ") + e.code() + ": " + e.what(), p->id);
    throw;
  }
  requireFreeSpace(job.info.manifest);

  job.id = upgrade::newOperationId();
  job.passphrase = passphrase;
  job.requestedBy = user.username;
  job.originalDatabase = db::databaseOf(deps_.dbDsn);
  job.me = me;
  job.pendingId = p->id;

  upgrade::JournalRecord preview;
  preview.id = job.id;
  preview.operation = "upgrade";
  preview.facts[upgrade::kFactFromVersion] = me.version;
  preview.facts[upgrade::kFactToVersion] = job.info.manifest.release.version;
  preview.facts[upgrade::kFactFromSlot] = upgrade::slotName(me.slot);
  preview.facts[upgrade::kFactToSlot] = upgrade::slotName(upgrade::otherSlot(me.slot));
  preview.facts["requested_by"] = user.username;
  auto shared = std::make_shared<Applying>(std::move(job));
  startJob([this, shared] { runApply(std::move(*shared)); });
  deps_.log.info(kComponent, "UPGRADE_CONFIRMED",
                 "upgrade from " + me.version + " to " + shared->info.manifest.release.version +
                     " confirmed by " + user.username,
                 preview.id);
  publishRecord("applying", preview);
  return upgradeRecordJson(preview);
}

upgrade::UpgradeCallbacks UpgradeService::callbacks(const std::string& originalDatabase,
                                                    bool& stopped) {
  const Paths& paths = deps_.config.paths;
  upgrade::UpgradeCallbacks cb = upgradeDatabaseCallbacks(paths, deps_.dbDsn, originalDatabase,
                                                          deps_.config.migrationsDir, deps_.log);
  auto snapshot = cb.snapshotDatabase;
  const std::string maintenance = db::withDatabase(deps_.dbDsn, "postgres");
  cb.snapshotDatabase = [this, snapshot, maintenance, &stopped](const std::string& original,
                                                                const std::string& copy) {
    // The downtime starts here: CREATE DATABASE ... TEMPLATE needs the original to itself.
    stopped = true;
    if (!deps_.stopServing("upgrade: snapshot of database " + original)) {
      deps_.log.warn(kComponent, "LEASE_KEPT", "a connection was kept past the stop");
    }
    {
      db::Connection c(maintenance);
      const auto r = c.exec(
          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
          "WHERE datname = $1 AND pid <> pg_backend_pid()",
          {original});
      if (const auto n = r.int64(0, 0); n > 0) {
        deps_.log.warn(kComponent, "SESSIONS_ENDED",
                       std::to_string(n) + " other session(s) on " + original +
                           " were ended before the snapshot");
      }
    }
    snapshot(original, copy);
  };
  cb.progress = [this](const upgrade::JournalRecord& r) { publishRecord("applying", r); };
  return cb;
}

void UpgradeService::runApply(Applying job) {
  archiveFinished();
  bool stopped = false;
  upgrade::UpgradeCallbacks cb = callbacks(job.originalDatabase, stopped);
  const std::string passphrase = job.passphrase;
  const std::string by = job.requestedBy;
  cb.backup = [this, passphrase, by] {
    const auto outcome = deps_.backups->run({passphrase, "pre-upgrade", by});
    if (!outcome.ok)
      throw Error("backup_failed", "the pre-upgrade backup failed: " + outcome.error);
    return outcome.id;
  };
  upgrade::UpgradeApply engine(upgrade::UpgradeLayout(deps_.config.paths.root), cb, deps_.log);
  upgrade::UpgradeRequest request;
  request.bundleFd = job.bundle.get();
  request.verified = job.info;
  request.originalDatabase = job.originalDatabase;
  request.requestedBy = job.requestedBy;
  request.id = job.id;
  upgrade::JournalRecord r;
  try {
    r = engine.apply(request, job.me);
  } catch (const std::exception& e) {
    deps_.log.error(kComponent, "APPLY_REFUSED", e.what(), job.id);
    upgrade::JournalRecord failed;
    failed.id = job.id;
    failed.operation = "upgrade";
    failed.phase = upgrade::JournalPhase::Failed;
    failed.message = e.what();
    publishRecord("rolled-back", failed);
    if (stopped) deps_.requestRestart("upgrade " + job.id + " failed: " + e.what());
    return;
  }
  if (r.committed()) {
    {
      auto lock = commit_.lock();
      std::error_code ec;
      fs::remove(dir_ / "pending.json", ec);
      removeUpload(job.pendingId);
    }
    deps_.requestRestartFromCurrent("upgrade " + r.id + " to " + r.fact(upgrade::kFactToVersion));
    return;
  }
  publishRecord("rolled-back", r);
  if (stopped) {
    deps_.requestRestart("upgrade " + r.id +
                         " rolled back: " + r.fact(upgrade::kFactRollbackReason));
  }
}

json::ObjectPtr UpgradeService::goBack(const User& user) {
  const upgrade::RunningVersion me = installedSlot();
  if (job_.lock()->running) {
    throw Conflict("an upgrade job is running; follow it at GET /api/v1/upgrade",
                   "upgrade_in_progress");
  }
  refuseWhileRestoreUnderWay(deps_.config.paths);
  const auto up = upgrade::UpgradeLayout(deps_.config.paths.root).journal().load();
  if (!up || up->operation != "upgrade" || up->phase != upgrade::JournalPhase::Done ||
      up->fact(upgrade::kFactToSlot) != upgrade::slotName(me.slot)) {
    throw Conflict("there is no upgrade to this version marked good to go back from",
                   "no_previous_version");
  }
  upgrade::JournalRecord preview;
  // Named now, as an upgrade's is at confirm, so the answer says what to follow.
  const std::string id = upgrade::newOperationId();
  preview.id = id;
  preview.operation = "go-back";
  preview.facts[upgrade::kFactFromVersion] = me.version;
  preview.facts[upgrade::kFactToVersion] = up->fact(upgrade::kFactFromVersion);
  preview.facts[upgrade::kFactFromSlot] = upgrade::slotName(me.slot);
  preview.facts[upgrade::kFactToSlot] = up->fact(upgrade::kFactFromSlot);
  preview.facts["requested_by"] = user.username;
  const std::string by = user.username;
  startJob([this, me, by, id] { runGoBack(me, by, id); });
  return upgradeRecordJson(preview);
}

void UpgradeService::runGoBack(upgrade::RunningVersion me, std::string requestedBy,
                               std::string id) {
  archiveFinished();
  bool stopped = false;
  upgrade::UpgradeApply engine(upgrade::UpgradeLayout(deps_.config.paths.root),
                               callbacks(db::databaseOf(deps_.dbDsn), stopped), deps_.log);
  upgrade::JournalRecord r;
  try {
    r = engine.goBack(me, requestedBy, id);
  } catch (const std::exception& e) {
    deps_.log.error(kComponent, "GO_BACK_REFUSED", e.what());
    upgrade::JournalRecord failed;
    failed.id = id;
    failed.operation = "go-back";
    failed.phase = upgrade::JournalPhase::Failed;
    failed.message = e.what();
    publishRecord("rolled-back", failed);
    return;
  }
  if (r.committed()) {
    // What was written since the upgrade stays in this version's database, which is kept.
    deps_.stopServing("going back to " + r.fact(upgrade::kFactToVersion));
    deps_.requestRestartFromCurrent("going back to " + r.fact(upgrade::kFactToVersion));
    return;
  }
  publishRecord("rolled-back", r);
}

void UpgradeService::publishRecord(const std::string& state,
                                   const upgrade::JournalRecord& r) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("state", state);
  o->set("id", r.id);
  o->set("version", r.fact(upgrade::kFactToVersion));
  o->set("step", r.step);
  o->set("upgrade", upgradeRecordJson(r));
  deps_.bus.publish("upgrade", json::stringify(o));
}

void UpgradeService::archiveFinished() const {
  const upgrade::UpgradeLayout layout(deps_.config.paths.root);
  try {
    const auto r = layout.journal().load();
    if (!r || !r->finished()) return;
    const fs::path dir = layout.dir() / "history";
    files::ensureDir(dir, 0700);
    const fs::path file = dir / (r->id + ".json");
    std::error_code ec;
    if (fs::exists(fs::symlink_status(file, ec))) return;
    files::atomicWrite(file, json::stringify(historyEntry(*r)) + "\n", 0600);
  } catch (const std::exception& e) {
    deps_.log.warn(kComponent, "HISTORY_UNWRITTEN", e.what());
  }
}

json::ArrayPtr UpgradeService::historyJson() const {
  const upgrade::UpgradeLayout layout(deps_.config.paths.root);
  std::vector<json::ObjectPtr> entries;
  std::set<std::string> ids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(layout.dir() / "history", ec)) {
    std::error_code statEc;
    if (!e.is_regular_file(statEc) || e.path().extension() != ".json") continue;
    try {
      auto o =
          json::parseObject(files::readFile(e.path(), kMaxHistoryFileBytes, files::Links::Refuse));
      ids.insert(o->getValue<std::string>("id"));
      entries.push_back(o);
    } catch (const std::exception& x) {
      deps_.log.warn(kComponent, "HISTORY_UNREADABLE", e.path().string() + ": " + x.what());
    }
  }
  try {
    if (const auto r = layout.journal().load(); r && r->finished() && !ids.count(r->id)) {
      entries.push_back(historyEntry(*r));
    }
  } catch (const Error&) {  // NOLINT(bugprone-empty-catch): status shows the journal's error
  }
  // Ids sort by time ("YYYYMMDD-HHMMSS-xxxx"): newest first.
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a->template getValue<std::string>("id") > b->template getValue<std::string>("id");
  });
  json::ArrayPtr out = new json::Array;
  for (std::size_t i = 0; i < entries.size() && i < kMaxHistoryShown; ++i) out->add(entries[i]);
  return out;
}

}  // namespace vcrm
