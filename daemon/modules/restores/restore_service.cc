#include "modules/restores/restore_service.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <regex>
#include <set>
#include <sstream>
#include <system_error>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/daemon/migrations.h"
#include "vcrm/daemon/upgrade_start.h"
#include "vcrm/daemon/uploads.h"
#include "vcrm/upgrade/archive_error.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/byte_stream.h"
#include "vcrm/upgrade/pg_tools.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "restore";
constexpr const char* kDumpMember = "db/vcrm.dump";
constexpr const char* kSerialMember = "state/serial";

// The steps in order, for progress (done of total). The renames of the roll forward are
// counted as "previous-recorded".
const std::vector<std::string>& restoreSteps() {
  static const std::vector<std::string> steps{
      "verifying",         "extracted",         "confirmed",           "db-created", "db-loaded",
      "migrated",          "licence-carried",   "conferences-decided", "staged",     "ready",
      "conferences-ended", "previous-recorded", "pointer-switched",    "done"};
  return steps;
}

bool validRestoreId(const std::string& id) {
  static const std::regex kId("[0-9]{8}-[0-9]{6}-[0-9a-f]{4}");
  return std::regex_match(id, kId);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string joinLines(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += i + "\n";
  return out;
}

std::vector<std::string> splitList(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, sep);) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// A conference running now: (id, bridge, room) names the same meeting in both databases.
using LiveConference = std::tuple<std::int64_t, std::string, std::string>;

std::set<LiveConference> liveConferences(db::Connection& c) {
  std::set<LiveConference> out;
  auto r = c.exec(
      "SELECT id, coalesce(bridge_id::text, ''), coalesce(room::text, '') FROM conferences "
      "WHERE state IN ('starting', 'active')");
  for (int i = 0; i < r.rows(); ++i) out.emplace(r.int64(i, 0), r.text(i, 1), r.text(i, 2));
  return out;
}

// Copies `from` to `to` durably with `mode` (a staged file beside its target).
void stageCopy(const fs::path& from, const fs::path& to, mode_t mode) {
  files::atomicWrite(to, files::readFile(from, 64u << 20, files::Links::Refuse), mode);
}

mode_t modeFor(const restore::SwappedFile& f) {
  struct stat st {};
  if (::stat(f.target.c_str(), &st) == 0) return st.st_mode & 07777;
  return f.member == "tls/server.key" ? 0600 : 0644;
}

}  // namespace

RestoreService::RestoreService(Deps deps)
    : deps_(std::move(deps)), layout_(deps_.config.paths), journal_(layout_.journal()) {}

RestoreService::~RestoreService() {
  if (job_.joinable()) job_.join();
}

bool RestoreService::jobRunning() const {
  return *running_.lock();
}

void RestoreService::startJob(std::function<void()> job) {
  if (job_.joinable()) job_.join();
  *running_.lock() = true;
  job_ = std::thread([this, job = std::move(job)] {
    job();
    *running_.lock() = false;
  });
}

json::ObjectPtr RestoreService::keepUpload(const FinishedUpload& upload) {
  files::ensureDir(layout_.uploadsDir(), 0700);
  auto answer =
      keepFinishedUpload(upload, layout_.uploadsDir() / (upload.id + ".vcrmbak"), "archive");
  deps_.log.info(kComponent, "ARCHIVE_UPLOADED",
                 "archive uploaded by " + upload.owner + " (" + std::to_string(upload.size) +
                     " bytes); restore it with POST /api/v1/restores {\"upload_id\": ...}",
                 upload.id);
  return answer;
}

void RestoreService::publish(const upgrade::JournalRecord& r) const {
  const auto& steps = restoreSteps();
  auto it = std::find(steps.begin(), steps.end(), r.step);
  std::size_t done =
      it == steps.end()
          ? static_cast<std::size_t>(std::find(steps.begin(), steps.end(), "previous-recorded") -
                                     steps.begin())
          : static_cast<std::size_t>(it - steps.begin()) + 1;
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.id);
  o->set("operation", r.operation);
  o->set("step", r.step);
  o->set("done", done);
  o->set("total", steps.size());
  o->set("state", describe(r)->getValue<std::string>("state"));
  deps_.bus.publish("restore", json::stringify(o));
}

json::ObjectPtr RestoreService::describe(const upgrade::JournalRecord& r) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.id);
  o->set("operation", r.operation);
  std::string state;
  switch (r.phase) {
    case upgrade::JournalPhase::Running:
      state =
          r.step == "verifying" ? "verifying" : (r.step == "extracted" ? "verified" : "running");
      break;
    case upgrade::JournalPhase::Committed:
      state = "ready";
      break;
    case upgrade::JournalPhase::Done:
      state = "done";
      break;
    case upgrade::JournalPhase::Failed:
      state = "failed";
      break;
  }
  o->set("state", state);
  o->set("step", r.step);
  if (!r.message.empty()) o->set("message", r.message);
  for (const char* key : {"product_version", "schema_version", "created_at", "source_serial",
                          "source_role", "size", "source", "database", "replaces"}) {
    if (!r.fact(key).empty()) o->set(key, r.fact(key));
  }
  if (!r.fact("same_server").empty()) o->set("same_server", r.fact("same_server") == "true");
  json::ArrayPtr members = new json::Array;
  for (const auto& m : splitList(r.fact("members"), '\n')) members->add(m);
  o->set("members", members);
  json::ObjectPtr counts = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& kv : splitList(r.fact("counts"), '\n')) {
    const auto eq = kv.find('=');
    if (eq != std::string::npos) counts->set(kv.substr(0, eq), std::stoll(kv.substr(eq + 1)));
  }
  o->set("counts", counts);
  json::ArrayPtr warnings = new json::Array;
  for (const auto& w : splitList(r.fact("warnings"), '\n')) warnings->add(w);
  o->set("warnings", warnings);
  json::ArrayPtr history = new json::Array;
  for (const auto& [step, at] : r.history) {
    json::ObjectPtr h = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    h->set("step", step);
    h->set("at", at);
    history->add(h);
  }
  o->set("history", history);
  return o;
}

json::ObjectPtr RestoreService::prepare(const json::ObjectPtr& body, const std::string& user) {
  json::onlyKeys(body, {"upload_id", "backup_id", "passphrase"});
  const auto uploadId = json::optString(body, "upload_id", 128);
  const auto backupId = json::optString(body, "backup_id", 255);
  const auto passphrase = json::optString(body, "passphrase", 1024);
  if (uploadId.has_value() == backupId.has_value()) {
    throw InvalidInput(
        "name the archive to restore with either \"upload_id\" (an archive uploaded to "
        "/api/v1/restores/uploads) or \"backup_id\" (one on this server), not both",
        "missing_field");
  }
  if (!passphrase || passphrase->empty()) {
    throw InvalidInput("send the archive's \"passphrase\"", "missing_field");
  }
  fs::path file;
  std::string source;
  if (uploadId) {
    if (!UploadStore::validId(*uploadId)) {
      throw NotFound("no uploaded archive with id \"" + *uploadId + "\"", "upload_not_found");
    }
    file = layout_.uploadsDir() / (*uploadId + ".vcrmbak");
    source = "upload " + *uploadId;
  } else {
    static const std::regex kBackupId("[A-Za-z0-9][A-Za-z0-9._-]{0,200}");
    if (!std::regex_match(*backupId, kBackupId)) {
      throw NotFound("no backup with id \"" + *backupId + "\"", "backup_not_found");
    }
    file = deps_.config.paths.backupsDir() / (*backupId + ".vcrmbak");
    source = "backup " + *backupId;
  }
  files::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd) {
    throw NotFound(uploadId ? "no finished upload \"" + *uploadId +
                                  "\": upload the archive to /api/v1/restores/uploads first"
                            : "no backup \"" + *backupId +
                                  "\" on this server (GET /api/v1/backups "
                                  "lists them)",
                   uploadId ? "upload_not_found" : "backup_not_found");
  }

  auto op = operation_.lock();
  if (jobRunning()) {
    throw Conflict("a restore is under way; wait until it is done (GET /api/v1/restores/current)",
                   "restore_in_progress");
  }
  refuseWhileUpgradeUnderWay(deps_.config.paths);
  if (auto waiting = journal_.load(); waiting && !waiting->finished()) {
    if (waiting->phase != upgrade::JournalPhase::Running || waiting->step != "extracted") {
      throw Conflict("restore " + waiting->id + " is under way (step " + waiting->step +
                         "); wait until it is done",
                     "restore_in_progress");
    }
    abandon(*waiting, "replaced by another archive before it was confirmed");
  }

  upgrade::JournalRecord r;
  r.id = upgrade::newOperationId();
  r.operation = "restore";
  const fs::path work = layout_.workDir(r.id);
  r.facts[restore::kFactWorkDir] = work.string();
  r.facts[restore::kFactDatabase] = restore::restoredDatabaseName(r.id);
  r.facts[restore::kFactReplaces] = db::databaseOf(deps_.dsn);
  r.facts["source"] = source;
  r.facts["requested_by"] = user;
  files::ensureDir(layout_.dir(), 0700);
  journal_.step(r, "verifying");
  publish(r);

  upgrade::ReadOptions options;
  options.compatibleWith = upgrade::Compatibility{deps_.version, deps_.schema};
  upgrade::Manifest manifest;
  try {
    upgrade::FdSource in(fd.get(), "archive " + file.filename().string());
    manifest = upgrade::extractArchive(in, *passphrase, work, options);
  } catch (const Error& e) {
    journal_.fail(r, e.what());
    publish(r);
    deps_.log.warn(kComponent, "ARCHIVE_REFUSED", std::string(e.code()) + ": " + e.what(), r.id);
    throw;
  }
  const auto has = [&](const std::string& member) {
    return std::any_of(manifest.members.begin(), manifest.members.end(),
                       [&](const upgrade::ArchiveMember& m) { return m.path == member; });
  };
  if (!has(kDumpMember)) {
    abandon(r, "the archive holds no database dump");
    throw Unprocessable("the archive holds no database dump (" + std::string(kDumpMember) +
                            "), so it is not a backup of a vcrm appliance; choose another archive",
                        "archive_incomplete");
  }
  std::string archiveSerial = manifest.info.sourceSerial;
  if (has(kSerialMember)) {
    archiveSerial = trimmed(files::readFile(work / kSerialMember, 4096, files::Links::Refuse));
  }
  const bool sameServer = archiveSerial == deps_.serial;
  std::vector<std::string> members;
  for (const auto& m : manifest.members) members.push_back(m.path + " " + std::to_string(m.size));
  std::vector<std::string> warnings;
  if (!sameServer) {
    warnings.push_back("from another server (serial " + archiveSerial + "): this server's serial " +
                       deps_.serial + " and licence are kept");
  }
  if (!has("etc/vcrmd.conf")) {
    warnings.push_back("the archive holds no configuration file: this server's is kept");
  }
  r.facts["product_version"] = manifest.info.productVersion;
  r.facts["schema_version"] = std::to_string(manifest.info.schemaVersion);
  r.facts["created_at"] = manifest.info.createdAt;
  r.facts["source_serial"] = archiveSerial;
  r.facts["source_role"] = manifest.info.sourceRole;
  r.facts["same_server"] = sameServer ? "true" : "false";
  r.facts["size"] = std::to_string(fs::file_size(file));
  r.facts["members"] = joinLines(members);
  r.facts["warnings"] = joinLines(warnings);
  std::vector<std::string> counts;
  for (const auto& [what, n] : manifest.info.counts)
    counts.push_back(what + "=" + std::to_string(n));
  r.facts["counts"] = joinLines(counts);
  journal_.step(r, "extracted");
  // Everything it holds is in the work directory now, verified.
  if (uploadId) {
    std::error_code ec;
    fs::remove(file, ec);
  }
  publish(r);
  deps_.log.info(kComponent, "ARCHIVE_VERIFIED",
                 "archive from " + archiveSerial + " made " + manifest.info.createdAt +
                     " verified; waiting for confirmation",
                 r.id);
  return describe(r);
}

void RestoreService::abandon(upgrade::JournalRecord& r, const std::string& why) {
  std::error_code ec;
  for (const auto& target : splitList(r.fact(restore::kFactStaged), '\n')) {
    fs::remove(restore::stagedPath(target), ec);
  }
  if (!r.fact(restore::kFactWorkDir).empty()) fs::remove_all(r.fact(restore::kFactWorkDir), ec);
  if (r.operation == "restore" && !r.fact(restore::kFactDatabase).empty() &&
      r.fact(restore::kFactDatabase) != db::databaseOf(deps_.dsn)) {
    try {
      db::Connection c(deps_.dsn);
      db::dropDatabase(c, r.fact(restore::kFactDatabase));
    } catch (const std::exception& e) {
      deps_.log.warn(kComponent, "DROP_FAILED", e.what(), r.id);  // dropped at the next start
    }
  }
  journal_.fail(r, why);
  publish(r);
}

json::ObjectPtr RestoreService::confirm(const std::string& id, const std::string& /*user*/) {
  auto op = operation_.lock();
  auto r = journal_.load();
  if (!validRestoreId(id) || !r || r->id != id) {
    throw NotFound("no restore \"" + id + "\"; POST /api/v1/restores verifies an archive first",
                   "restore_not_found");
  }
  if (r->phase != upgrade::JournalPhase::Running || r->step != "extracted" || jobRunning()) {
    throw Conflict("restore " + id + " is " + describe(*r)->getValue<std::string>("state") +
                       ", not waiting for confirmation",
                   "restore_not_verified");
  }
  if (!deps_.requestRestart) {
    throw Conflict(
        "this vcrmd cannot restart itself, which a restore needs to swap its database in",
        "restart_unavailable");
  }
  journal_.step(*r, "confirmed");
  publish(*r);
  startJob([this, rec = *r] { runRestore(rec); });
  return describe(*r);
}

void RestoreService::carryLicence(const std::string& newDsn) {
  std::vector<std::vector<std::optional<std::string>>> licences;
  std::optional<std::pair<std::string, std::string>> serialRow;  // created_at, latest_seen
  {
    auto c = deps_.pool.acquire();
    auto s = c->exec(
        "SELECT created_at::text, latest_seen::text FROM appliance_serials WHERE serial = $1",
        {deps_.serial});
    if (!s.empty()) serialRow.emplace(s.text(0, 0), s.text(0, 1));
    auto l = c->exec(
        "SELECT licence_id, sequence::text, file, applied_at::text, applied_by, replaced_at::text "
        "FROM licences WHERE serial = $1 ORDER BY id",
        {deps_.serial});
    for (int i = 0; i < l.rows(); ++i) {
      std::vector<std::optional<std::string>> row;
      for (int col = 0; col < 6; ++col) row.push_back(l.optText(i, col));
      licences.push_back(std::move(row));
    }
  }
  db::Connection n(newDsn);
  db::Transaction tx(n);
  if (serialRow) {
    tx.exec(
        "INSERT INTO appliance_serials (serial, created_at, latest_seen) VALUES ($1, "
        "$2::timestamptz, "
        "$3::bigint) ON CONFLICT (serial) DO UPDATE SET latest_seen = "
        "greatest(appliance_serials.latest_seen, excluded.latest_seen)",
        {deps_.serial, serialRow->first, serialRow->second});
  }
  tx.exec("DELETE FROM licences WHERE serial = $1", {deps_.serial});
  for (const auto& row : licences) {
    tx.exec(
        "INSERT INTO licences (serial, licence_id, sequence, file, applied_at, applied_by, "
        "replaced_at) VALUES ($1, $2, $3::bigint, $4, $5::timestamptz, $6, $7::timestamptz)",
        {deps_.serial, row[0], row[1], row[2], row[3], row[4], row[5]});
  }
  tx.commit();
}

void RestoreService::runRestore(upgrade::JournalRecord r) {
  const std::string dbName = r.fact(restore::kFactDatabase);
  const std::string newDsn = db::withDatabase(deps_.dsn, dbName);
  const fs::path work = r.fact(restore::kFactWorkDir);
  const auto step = [&](const std::string& name) {
    journal_.step(r, name);
    publish(r);
    deps_.log.info(kComponent, "STEP", "restore step " + name + " done", r.id);
  };
  try {
    {
      db::Connection c(deps_.dsn);
      c.execScript("CREATE DATABASE " + db::quoteIdentifier(dbName));
    }
    step("db-created");
    upgrade::PgTools tools;
    tools.binDir = deps_.config.pgBinDir;
    upgrade::restoreDatabase(tools, newDsn, work / kDumpMember);
    step("db-loaded");
    {
      db::Connection n(newDsn);
      migrate(n, loadMigrations(deps_.config.migrationsDir), deps_.log);
    }
    step("migrated");
    if (r.fact("same_server") != "true") carryLicence(newDsn);
    step("licence-carried");
    decideStageAndSwap(r, newDsn, [&](const restore::SwappedFile& f) -> std::optional<fs::path> {
      const fs::path extracted = work / f.member;
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(extracted, ec))) return std::nullopt;
      return extracted;
    });
  } catch (const std::exception& e) {
    deps_.log.error(kComponent, "FAILED",
                    std::string("restore failed at ") + r.step + ": " + e.what(), r.id);
    if (!r.committed()) {
      auto op = operation_.lock();
      abandon(r, std::string("failed after step ") + r.step + ": " + e.what());
    }
  }
}

void RestoreService::decideStageAndSwap(
    upgrade::JournalRecord& r, const std::string& otherDsn,
    const std::function<std::optional<fs::path>(const restore::SwappedFile&)>& replacement,
    const std::vector<fs::path>& setAside) {
  const auto step = [&](const std::string& name) {
    journal_.step(r, name);
    publish(r);
  };
  // A conference running now that the swapped-in database also has running carries on (the
  // scheduler re-attaches its room after the restart); one it does not have is ended now,
  // with its CDRs, in the database that becomes the kept previous one.
  std::set<LiveConference> now;
  {
    auto c = deps_.pool.acquire();
    now = liveConferences(*c);
  }
  std::set<LiveConference> there;
  {
    db::Connection other(otherDsn);
    there = liveConferences(other);
  }
  std::vector<std::string> toEnd;
  std::vector<std::string> carried;
  for (const auto& live : now) {
    (there.count(live) != 0 ? carried : toEnd).push_back(std::to_string(std::get<0>(live)));
  }
  r.facts["end_conferences"] = joinLines(toEnd);
  r.facts["reattach_conferences"] = joinLines(carried);
  step("conferences-decided");

  std::vector<std::string> staged;
  for (const auto& f : restore::swappedFiles(deps_.config.paths)) {
    const auto from = replacement(f);
    if (!from) continue;
    files::ensureDir(f.target.parent_path(), 0755);
    stageCopy(*from, restore::stagedPath(f.target), modeFor(f));
    staged.push_back(f.target.string());
  }
  r.facts[restore::kFactStaged] = joinLines(staged);
  std::vector<std::string> removed;
  for (const auto& target : setAside) {
    if (std::find(staged.begin(), staged.end(), target.string()) == staged.end())
      removed.push_back(target.string());
  }
  r.facts[restore::kFactRemoved] = joinLines(removed);
  step("staged");

  journal_.commit(r, "ready");
  publish(r);
  deps_.log.info(kComponent, "READY",
                 "the " + r.operation + " is ready: ending " + std::to_string(toEnd.size()) +
                     " conference(s) the new database does not have running, then restarting",
                 r.id);
  for (const auto& id : toEnd) {
    try {
      deps_.conferences.endNow(std::stoll(id), "ended by a restore of another database");
    } catch (const std::exception& e) {
      deps_.log.warn(kComponent, "END_CONFERENCE_FAILED", e.what(), id);
    }
  }
  step("conferences-ended");
  deps_.requestRestart(r.operation + " " + r.id);
}

void RestoreService::recordCompletion(AuditLog& audit) {
  auto r = journal_.load();
  const std::string active = db::databaseOf(deps_.dsn);
  if (!r || r->phase != upgrade::JournalPhase::Done || r->fact("recorded_in") == active) return;
  const bool isRevert = r->operation == "revert";
  audit.record(AuditEntry{
      r->fact("requested_by"), "", "POST",
      isRevert ? "/api/v1/restores/previous/revert" : "/api/v1/restores/" + r->id + "/confirm",
      isRevert ? "restore.reverted" : "restore.completed", r->id, 200});
  r->facts["recorded_in"] = active;
  journal_.save(*r);
}

void RestoreService::sweepUploads() {
  std::error_code ec;
  const auto cutoff =
      fs::file_time_type::clock::now() - std::chrono::minutes(deps_.config.uploadExpireMinutes);
  for (const auto& e : fs::directory_iterator(layout_.uploadsDir(), ec)) {
    std::error_code statEc;
    if (e.is_regular_file(statEc) && e.last_write_time(statEc) < cutoff && !statEc) {
      fs::remove(e.path(), statEc);
      deps_.log.info(kComponent, "UPLOAD_EXPIRED", "removed an uploaded archive nobody restored",
                     e.path().stem().string());
    }
  }
}

json::ObjectPtr RestoreService::current() const {
  json::ObjectPtr o = new json::Object;
  auto r = journal_.load();
  if (r) {
    o->set("restore", describe(*r));
  } else {
    o->set("restore", Poco::Dynamic::Var());
  }
  return o;
}

json::ObjectPtr RestoreService::previous() const {
  json::ObjectPtr o = new json::Object;
  auto p = restore::readPrevious(layout_);
  if (!p) {
    o->set("previous", Poco::Dynamic::Var());
    return o;
  }
  json::ObjectPtr d = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  d->set("restore_id", p->restoreId);
  d->set("database", p->database);
  d->set("replaced_at", p->replacedAt);
  json::ArrayPtr kept = new json::Array;
  for (const auto& f : p->keptFiles) kept->add(f.filename().string());
  d->set("kept_files", kept);
  // Files the previous system did not have: going back sets them aside.
  json::ArrayPtr absent = new json::Array;
  for (const auto& f : p->absentFiles) absent->add(f.filename().string());
  d->set("absent_files", absent);
  o->set("previous", d);
  return o;
}

json::ObjectPtr RestoreService::revert(const std::string& user) {
  auto op = operation_.lock();
  if (jobRunning()) {
    throw Conflict("a restore is under way; wait until it is done", "restore_in_progress");
  }
  refuseWhileUpgradeUnderWay(deps_.config.paths);
  if (auto r = journal_.load(); r && !r->finished()) {
    if (r->phase != upgrade::JournalPhase::Running || r->step != "extracted") {
      throw Conflict("restore " + r->id + " is under way; wait until it is done",
                     "restore_in_progress");
    }
    abandon(*r, "replaced by going back to the previous database");
  }
  const auto p = restore::readPrevious(layout_);
  if (!p) {
    throw NotFound("there is no previous database to go back to (a restore keeps one)",
                   "no_previous");
  }
  if (!deps_.requestRestart) {
    throw Conflict("this vcrmd cannot restart itself, which going back needs",
                   "restart_unavailable");
  }
  upgrade::JournalRecord r;
  r.id = upgrade::newOperationId();
  r.operation = "revert";
  r.facts[restore::kFactDatabase] = p->database;
  r.facts[restore::kFactReplaces] = db::databaseOf(deps_.dsn);
  r.facts["requested_by"] = user;
  r.facts["source"] = "previous " + p->restoreId;
  journal_.step(r, "confirmed");
  publish(r);
  startJob([this, r, kept = p->keptFiles, absent = p->absentFiles] {
    upgrade::JournalRecord rec = r;
    try {
      decideStageAndSwap(
          rec, db::withDatabase(deps_.dsn, rec.fact(restore::kFactDatabase)),
          [&](const restore::SwappedFile& f) -> std::optional<fs::path> {
            if (std::find(kept.begin(), kept.end(), f.target) == kept.end()) {
              return std::nullopt;
            }
            return restore::keptPath(f.target);
          },
          absent);
    } catch (const std::exception& e) {
      deps_.log.error(kComponent, "FAILED", std::string("going back failed: ") + e.what(), rec.id);
      if (!rec.committed()) {
        auto lock = operation_.lock();
        abandon(rec, std::string("failed after step ") + rec.step + ": " + e.what());
      }
    }
  });
  return describe(r);
}

void RestoreService::discard() {
  auto op = operation_.lock();
  if (jobRunning()) {
    throw Conflict("a restore is under way; wait until it is done", "restore_in_progress");
  }
  if (auto r = journal_.load(); r && !r->finished() && r->step != "extracted") {
    throw Conflict("restore " + r->id + " is under way; wait until it is done",
                   "restore_in_progress");
  }
  const auto p = restore::readPrevious(layout_);
  if (!p) throw NotFound("there is no previous database to discard", "no_previous");
  if (p->database == db::databaseOf(deps_.dsn) || p->database == "postgres") {
    throw Conflict(
        "the previous database " + p->database + " is the active one; nothing to discard",
        "previous_is_active");
  }
  // previous.json goes first: once it is gone, nothing names the database, and a crash before
  // it is dropped leaves it to the next start (dropLeftoverDatabases).
  restore::removePrevious(layout_);
  std::error_code ec;
  for (const auto& f : p->keptFiles) fs::remove(restore::keptPath(f), ec);
  db::Connection c(deps_.dsn);
  db::dropDatabase(c, p->database);
  deps_.log.info(
      kComponent, "PREVIOUS_DISCARDED",
      "the database a restore replaced (" + p->database + ") and its files were discarded",
      p->restoreId);
}

}  // namespace vcrm
