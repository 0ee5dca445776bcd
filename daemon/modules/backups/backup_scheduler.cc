#include "modules/backups/backup_scheduler.h"

#include <algorithm>
#include <regex>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/sftp_copy.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "backups";
constexpr const char* kSettingsFile = "schedule.json";
constexpr const char* kStateFile = "schedule-state.json";
constexpr int kMaxRetention = 1000;
constexpr std::size_t kMaxKeyText = 16384;

std::int64_t seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string iso(std::int64_t epoch) {
  return isoUtc(std::chrono::system_clock::time_point(std::chrono::seconds(epoch)));
}

[[noreturn]] void badField(const std::string& field, const std::string& what) {
  throw InvalidInput("field \"" + field + "\" " + what, "invalid_field");
}

std::string matching(const json::ObjectPtr& o, const std::string& key, const std::string& field,
                     const std::regex& re, std::size_t maxLen, const std::string& what,
                     const std::string& current) {
  const auto v = json::optString(o, key, maxLen);
  if (!v) return current;
  if (!std::regex_match(*v, re)) badField(field, what);
  return *v;
}

json::ObjectPtr settingsJson(const ScheduleSettings& s, bool withSecrets) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("enabled", s.enabled);
  o->set("time_of_day", s.timeOfDay);
  o->set("time_zone", s.timeZone);
  o->set("retention", s.retention);
  if (withSecrets) {
    o->set("passphrase", s.passphrase);
    o->set("changed_at", s.changedAt);
  } else {
    o->set("passphrase_set", !s.passphrase.empty());
  }
  json::ObjectPtr f = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  f->set("enabled", s.sftp.enabled);
  f->set("host", s.sftp.host);
  f->set("port", s.sftp.port);
  f->set("user", s.sftp.user);
  f->set("remote_dir", s.sftp.remoteDir);
  f->set("host_key", s.sftp.hostKey);
  if (!withSecrets) {
    std::string fingerprint;
    try {
      if (!s.sftp.hostKey.empty()) fingerprint = upgrade::sshKeyFingerprint(s.sftp.hostKey);
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): shown as unknown
    }
    f->set("host_key_fingerprint", fingerprint);
  }
  if (withSecrets) {
    f->set("private_key", s.sftp.privateKey);
  } else {
    f->set("private_key_set", !s.sftp.privateKey.empty());
  }
  o->set("sftp", f);
  return o;
}

// The stored file, as written by save(); a damaged one is reported and treated as no schedule.
ScheduleSettings loadSettings(const fs::path& file, Logger& log) {
  ScheduleSettings s;
  std::error_code ec;
  if (!fs::exists(file, ec)) return s;
  try {
    auto o = json::parseObject(files::readFile(file, 1u << 20, files::Links::Refuse));
    s.enabled = json::optBool(o, "enabled").value_or(false);
    s.timeOfDay = json::optString(o, "time_of_day", 5).value_or(s.timeOfDay);
    s.timeZone = json::optString(o, "time_zone", 64).value_or(s.timeZone);
    s.retention = static_cast<int>(json::optInt(o, "retention").value_or(s.retention));
    s.passphrase = json::optString(o, "passphrase", BackupService::kMaxPassphrase).value_or("");
    s.changedAt = json::optInt(o, "changed_at").value_or(0);
    if (auto f = o->getObject("sftp")) {
      s.sftp.enabled = json::optBool(f, "enabled").value_or(false);
      s.sftp.host = json::optString(f, "host", 253).value_or("");
      s.sftp.port = static_cast<int>(json::optInt(f, "port").value_or(22));
      s.sftp.user = json::optString(f, "user", 64).value_or("");
      s.sftp.remoteDir = json::optString(f, "remote_dir", 1024).value_or("");
      s.sftp.hostKey = json::optString(f, "host_key", kMaxKeyText).value_or("");
      s.sftp.privateKey = json::optString(f, "private_key", kMaxKeyText).value_or("");
    }
  } catch (const std::exception& e) {
    log.error(kComponent, "SCHEDULE_UNREADABLE",
              std::string("the backup schedule is not used until it is saved again: ") + e.what(),
              file.string());
    return ScheduleSettings{};
  }
  return s;
}

}  // namespace

ArchiveCopier sftpArchiveCopier() {
  return [](const SftpSettings& s, const fs::path& file, const std::string& name,
            std::size_t keep) -> std::string {
    upgrade::SftpTarget target;
    target.host = s.host;
    target.port = s.port;
    target.user = s.user;
    target.remoteDir = s.remoteDir;
    target.privateKey = s.privateKey;
    target.hostKey = s.hostKey;
    upgrade::copyArchive(target, file, name, keep);
    return "sftp://" + s.user + "@" + s.host + ":" + std::to_string(s.port) + "/" + s.remoteDir +
           "/" + name;
  };
}

BackupScheduler::BackupScheduler(BackupService& service, BackupStore& store, db::Pool& pool,
                                 Logger& log, ArchiveCopier copier, Clock clock)
    : service_(service),
      store_(store),
      pool_(pool),
      log_(log),
      copier_(std::move(copier)),
      clock_(std::move(clock)),
      settings_(loadSettings(store.dir() / kSettingsFile, log)) {
  std::error_code ec;
  const fs::path stateFile = store.dir() / kStateFile;
  if (!fs::exists(stateFile, ec)) return;
  try {
    auto o = json::parseObject(files::readFile(stateFile, 1u << 20, files::Links::Refuse));
    LastRun last;
    last.slot = json::optInt(o, "slot").value_or(0);
    last.id = json::optString(o, "id", 100).value_or("");
    last.state = json::optString(o, "state", 32).value_or("");
    last.error = json::optString(o, "error", 8192).value_or("");
    last.startedAt = json::optString(o, "started_at", 64).value_or("");
    last.finishedAt = json::optString(o, "finished_at", 64).value_or("");
    *last_.lock() = last;
  } catch (const std::exception& e) {
    log_.warn(kComponent, "SCHEDULE_STATE_UNREADABLE", e.what(), stateFile.string());
  }
}

BackupScheduler::Slots BackupScheduler::slots(const ScheduleSettings& s, std::int64_t now) {
  // Wall-clock arithmetic in the zone's rules is PostgreSQL's (see calendar.h): the time of day
  // there yesterday, today and tomorrow; the latest at or before now and the first after it.
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT extract(epoch FROM max(t) FILTER (WHERE t <= to_timestamp($1::bigint)))::bigint, "
      "  extract(epoch FROM min(t) FILTER (WHERE t > to_timestamp($1::bigint)))::bigint "
      "FROM (SELECT (to_timestamp($1::bigint) AT TIME ZONE $2)::date AS d) x, "
      "  LATERAL (SELECT (d + k + $3::time) AT TIME ZONE $2 AS t FROM generate_series(-1, 1) k) y",
      {now, s.timeZone, s.timeOfDay});
  return {r.int64(0, 0), r.int64(0, 1)};
}

json::ObjectPtr BackupScheduler::describe() {
  const ScheduleSettings s = *settings_.lock();
  json::ObjectPtr o = settingsJson(s, false);
  o->set("next_run", s.enabled ? Poco::Dynamic::Var(iso(slots(s, seconds(clock_())).next))
                               : Poco::Dynamic::Var());
  o->set("last_run", lastRun());
  return o;
}

json::ObjectPtr BackupScheduler::update(const json::ObjectPtr& body) {
  json::onlyKeys(body, {"enabled", "time_of_day", "time_zone", "retention", "passphrase", "sftp"});
  ScheduleSettings s = *settings_.lock();
  const auto enabled = json::optBool(body, "enabled");
  if (!enabled) {
    throw InvalidInput(
        "field \"enabled\" is required: true to make backups on the schedule, false to stop",
        "missing_field");
  }
  s.enabled = *enabled;
  static const std::regex hhmm("^([01][0-9]|2[0-3]):[0-5][0-9]$");
  s.timeOfDay = matching(body, "time_of_day", "time_of_day", hhmm, 5,
                         "must be HH:MM (00:00 to 23:59), e.g. \"02:30\"", s.timeOfDay);
  static const std::regex zoneName("^[A-Za-z][A-Za-z0-9_+/-]{0,63}$");
  s.timeZone =
      matching(body, "time_zone", "time_zone", zoneName, 64,
               "must be an IANA time zone name such as \"UTC\" or \"Europe/Paris\"", s.timeZone);
  if (const auto r = json::optInt(body, "retention")) {
    if (*r < 1 || *r > kMaxRetention) {
      badField("retention", "must be the number of scheduled archives to keep, 1 to " +
                                std::to_string(kMaxRetention));
    }
    s.retention = static_cast<int>(*r);
  }
  if (const auto p = json::optString(body, "passphrase", BackupService::kMaxPassphrase)) {
    BackupService::checkPassphrase(*p);
    s.passphrase = *p;
  }
  if (body->has("sftp") && !body->isNull("sftp")) {
    auto f = body->getObject("sftp");
    if (!f)
      badField("sftp",
               "must be an object {enabled, host, port, user, remote_dir, private_key, host_key}");
    json::onlyKeys(f, {"enabled", "host", "port", "user", "remote_dir", "private_key", "host_key"});
    if (const auto e = json::optBool(f, "enabled")) s.sftp.enabled = *e;
    static const std::regex host("^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$");
    s.sftp.host = matching(f, "host", "sftp.host", host, 253,
                           "must be a host name or an IP address", s.sftp.host);
    if (const auto p = json::optInt(f, "port")) {
      if (*p < 1 || *p > 65535) badField("sftp.port", "must be a TCP port, 1 to 65535");
      s.sftp.port = static_cast<int>(*p);
    }
    static const std::regex user("^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$");
    s.sftp.user = matching(f, "user", "sftp.user", user, 64,
                           "must be a user name of letters, digits, '.', '_', '-'", s.sftp.user);
    static const std::regex dir("^[A-Za-z0-9._/~-]{1,1024}$");
    s.sftp.remoteDir =
        matching(f, "remote_dir", "sftp.remote_dir", dir, 1024,
                 "must be a directory path of letters, digits, '.', '_', '-', '~' and '/'",
                 s.sftp.remoteDir);
    if (const auto k = json::optString(f, "private_key", kMaxKeyText)) {
      if (k->find("-----BEGIN OPENSSH PRIVATE KEY-----") == std::string::npos ||
          k->find("-----END OPENSSH PRIVATE KEY-----") == std::string::npos) {
        badField("sftp.private_key",
                 "must be an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY----- ...), "
                 "without a passphrase");
      }
      s.sftp.privateKey = *k;
    }
    static const std::regex hostKey(
        "^(\\S+ )?(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]{16,}( "
        ".*)?\\n?$");
    s.sftp.hostKey = matching(f, "host_key", "sftp.host_key", hostKey, kMaxKeyText,
                              "must be the server's public key line as ssh-keyscan prints it "
                              "(\"host ssh-ed25519 AAAA...\")",
                              s.sftp.hostKey);
    if (f->has("host_key") && !f->isNull("host_key")) {
      try {
        upgrade::sshKeyFingerprint(s.sftp.hostKey);
      } catch (const std::exception& e) {
        badField("sftp.host_key",
                 std::string("is not a public key this appliance can pin: ") + e.what());
      }
    }
  }
  {
    auto c = pool_.acquire();
    if (!c->exec("SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", {s.timeZone})
             .boolean(0, 0)) {
      badField("time_zone", "names no time zone this appliance knows (\"" + s.timeZone +
                                "\"); use an IANA name such as \"UTC\" or \"Europe/Paris\"");
    }
  }
  if (s.enabled && s.passphrase.empty()) {
    throw Unprocessable(
        "a schedule needs the passphrase its archives are sealed with: send \"passphrase\" too",
        "schedule_needs_passphrase");
  }
  if (s.sftp.enabled) {
    std::string missing;
    for (const auto& [name, value] :
         {std::pair<const char*, const std::string*>{"host", &s.sftp.host},
          {"user", &s.sftp.user},
          {"remote_dir", &s.sftp.remoteDir},
          {"private_key", &s.sftp.privateKey},
          {"host_key", &s.sftp.hostKey}}) {
      if (value->empty()) missing += std::string(missing.empty() ? "" : ", ") + name;
    }
    if (!missing.empty()) {
      throw Unprocessable("an SFTP copy needs " + missing + " as well", "sftp_incomplete");
    }
  }
  s.changedAt = seconds(clock_());
  save(s);
  *settings_.lock() = s;
  log_.info(kComponent, "SCHEDULE_CHANGED",
            s.enabled ? "backups every day at " + s.timeOfDay + " " + s.timeZone + ", keeping " +
                            std::to_string(s.retention) +
                            (s.sftp.enabled ? ", copied to " + s.sftp.host : "")
                      : std::string("scheduled backups are off"));
  return describe();
}

void BackupScheduler::requestRun() {
  if (settings_.lock()->passphrase.empty()) {
    throw Unprocessable("set the schedule's passphrase first (PUT /api/v1/backups/schedule)",
                        "schedule_needs_passphrase");
  }
  runRequested_ = true;
}

void BackupScheduler::pass() {
  const ScheduleSettings s = *settings_.lock();
  if (runRequested_.exchange(false)) {
    runOnce(s, 0);
    return;
  }
  if (!s.enabled) return;
  const std::int64_t slot = slots(s, seconds(clock_())).latest;
  const std::int64_t done = [&] {
    auto last = last_.lock();
    return last->has_value() ? (*last)->slot : 0;
  }();
  if (slot <= done || slot < s.changedAt) return;
  runOnce(s, slot);
}

void BackupScheduler::runOnce(const ScheduleSettings& s, std::int64_t slot) {
  LastRun last;
  {
    // A run asked for now (slot 0) leaves the schedule's own last slot as it was.
    auto previous = last_.lock();
    last.slot = slot != 0 ? slot : (previous->has_value() ? (*previous)->slot : 0);
  }
  last.startedAt = iso(seconds(clock_()));
  BackupService::Outcome outcome;
  try {
    outcome = service_.run({s.passphrase, "scheduled", "scheduler"});
  } catch (const Conflict& e) {
    // A manual backup is being made: this one is made at a later pass.
    log_.info(kComponent, "SCHEDULED_BACKUP_DEFERRED", e.what());
    if (slot == 0) runRequested_ = true;
    return;
  } catch (const std::exception& e) {
    outcome.error = e.what();
  }
  last.id = outcome.id;
  if (!outcome.ok) {
    last.state = "failed";
    last.error = outcome.error;
  } else {
    last.state = "complete";
    prune(s.retention);
  }
  if (outcome.ok && s.sftp.enabled) copyOffBox(s, outcome.id, last);
  last.finishedAt = iso(seconds(clock_()));
  saveLast(last);
  *last_.lock() = last;
}

void BackupScheduler::copyOffBox(const ScheduleSettings& s, const std::string& id, LastRun& last) {
  BackupRecord record;
  try {
    record = store_.get(id);
    record.copyTarget = copier_(s.sftp, store_.archivePath(id), id + ".vcrmbak",
                                static_cast<std::size_t>(s.retention));
    record.copyState = "copied";
    record.copyError.clear();
    record.copiedAt = iso(seconds(clock_()));
    log_.info(kComponent, "BACKUP_COPIED", "copied to " + record.copyTarget, id);
  } catch (const std::exception& e) {
    record.copyState = "failed";
    record.copyError = e.what();
    last.state = "copy_failed";
    last.error = std::string("the archive was made but not copied off the box: ") + e.what();
    log_.error(kComponent, "BACKUP_COPY_FAILED", e.what(), id);
  }
  try {
    if (!record.id.empty()) store_.writeRecord(record);
  } catch (const std::exception& e) {
    log_.warn(kComponent, "BACKUP_RECORD_FAILED", e.what(), id);
  }
}

void BackupScheduler::prune(int retention) {
  int kept = 0;
  for (const BackupRecord& r : store_.list()) {  // newest first
    if (r.origin != "scheduled") continue;
    if (++kept <= retention) continue;
    try {
      store_.remove(r.id);
      log_.info(kComponent, "BACKUP_PRUNED",
                "beyond the schedule's retention of " + std::to_string(retention), r.id);
    } catch (const std::exception& e) {
      log_.warn(kComponent, "BACKUP_PRUNE_FAILED", e.what(), r.id);
    }
  }
}

Poco::Dynamic::Var BackupScheduler::lastRun() const {
  auto last = last_.lock();
  if (!last->has_value()) return Poco::Dynamic::Var();
  const LastRun& l = **last;
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", l.id);
  o->set("state", l.state);
  o->set("error", l.error);
  o->set("started_at", l.startedAt);
  o->set("finished_at", l.finishedAt);
  return o;
}

void BackupScheduler::save(const ScheduleSettings& s) const {
  files::atomicWrite(store_.dir() / kSettingsFile, json::stringify(settingsJson(s, true)) + "\n",
                     0600);
}

void BackupScheduler::saveLast(const LastRun& l) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("slot", l.slot);
  o->set("id", l.id);
  o->set("state", l.state);
  o->set("error", l.error);
  o->set("started_at", l.startedAt);
  o->set("finished_at", l.finishedAt);
  files::atomicWrite(store_.dir() / kStateFile, json::stringify(o) + "\n", 0600);
}

}  // namespace vcrm
