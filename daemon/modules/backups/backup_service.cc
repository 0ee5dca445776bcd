#include "modules/backups/backup_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/archive_error.h"
#include "vcrm/upgrade/backup_archive.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "backups";
constexpr auto kEventEvery = std::chrono::milliseconds(200);

// Removes a directory tree or file when it goes out of scope, unless released.
class RemoveOnExit {
 public:
  explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
  ~RemoveOnExit() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  RemoveOnExit(const RemoveOnExit&) = delete;
  RemoveOnExit& operator=(const RemoveOnExit&) = delete;
  void release() { path_.clear(); }

 private:
  fs::path path_;
};

// While pg_dump writes, reports the dump's size every 250 ms (its total is not known).
class DumpWatcher {
 public:
  DumpWatcher(fs::path file, std::function<void(std::uint64_t)> report)
      : thread_([this, file = std::move(file), report = std::move(report)] {
          for (;;) {
            {
              auto stop = stop_.lock();
              if (stop.waitFor(changed_, std::chrono::milliseconds(250), [&] { return *stop; }))
                return;
            }
            std::error_code ec;
            const auto size = fs::file_size(file, ec);
            if (!ec) report(size);
          }
        }) {}
  ~DumpWatcher() {
    *stop_.lock() = true;
    changed_.notify_all();
    thread_.join();
  }
  DumpWatcher(const DumpWatcher&) = delete;
  DumpWatcher& operator=(const DumpWatcher&) = delete;

 private:
  Guarded<bool> stop_{false};
  std::condition_variable changed_;
  std::thread thread_;  // last: it uses the members above
};

}  // namespace

void BackupService::checkPassphrase(const std::string& passphrase) {
  if (passphrase.size() > kMaxPassphrase) {
    throw InvalidInput("field \"passphrase\" is longer than " + std::to_string(kMaxPassphrase) +
                           " bytes; use a shorter one",
                       "passphrase_too_long");
  }
  // Characters, not bytes: a UTF-8 sequence counts once.
  std::set<std::string> distinct;
  std::size_t characters = 0;
  for (std::size_t i = 0; i < passphrase.size();) {
    std::size_t n = 1;
    while (i + n < passphrase.size() &&
           (static_cast<unsigned char>(passphrase[i + n]) & 0xC0) == 0x80)
      ++n;
    distinct.insert(passphrase.substr(i, n));
    ++characters;
    i += n;
  }
  if (characters < kMinPassphrase) {
    throw InvalidInput("the passphrase is too short: use at least " +
                           std::to_string(kMinPassphrase) +
                           " characters (a few words are easy to remember and hard to guess); "
                           "the archive holds the server's private key",
                       "passphrase_too_short");
  }
  if (distinct.size() < kMinDistinct) {
    throw InvalidInput("the passphrase uses fewer than " + std::to_string(kMinDistinct) +
                           " different characters and is easy to guess; use a few words",
                       "passphrase_too_weak");
  }
}

BackupService::BackupService(Options options, BackupStore& store, EventBus& bus, Logger& log)
    : options_(std::move(options)), store_(store), bus_(bus), log_(log) {}

BackupService::~BackupService() {
  auto t = thread_.lock();
  if (t->joinable()) t->join();
}

std::string BackupService::claim(const Request& request) {
  checkPassphrase(request.passphrase);
  auto st = state_.lock();
  if (st->job) {
    throw Conflict("backup " + st->job->id + " is being made now (" + st->job->phase +
                       "); wait until it is complete, then start another",
                   "backup_running");
  }
  Job job;
  job.id = store_.newId(options_.serial, std::chrono::system_clock::now());
  job.origin = request.origin;
  job.createdBy = request.createdBy;
  job.startedAt = isoUtc(std::chrono::system_clock::now());
  st->job = job;
  return job.id;
}

json::ObjectPtr BackupService::start(Request request, Done done) {
  const std::string id = claim(request);
  auto t = thread_.lock();
  if (t->joinable()) t->join();  // the previous job's thread, finished: it gave up its claim
  *t = std::thread([this, id, request = std::move(request), done = std::move(done)] {
    const Outcome outcome = execute(id, request);
    if (done) done(outcome);
  });
  json::ObjectPtr o = new json::Object;
  o->set("backup", running());
  return o;
}

BackupService::Outcome BackupService::run(Request request) {
  const std::string id = claim(request);
  return execute(id, request);
}

BackupService::Outcome BackupService::execute(const std::string& id, const Request& request) {
  log_.info(kComponent, "BACKUP_STARTED",
            "making a " + request.origin + " backup for " + request.createdBy, id);
  {
    auto st = state_.lock();
    publish(*st->job, "running", "");
  }
  Outcome outcome{id, false, {}};
  try {
    make(id, request);
    outcome.ok = true;
    log_.info(kComponent, "BACKUP_COMPLETE",
              "backup archive written to " + store_.archivePath(id).string(), id);
  } catch (const std::exception& e) {
    outcome.error = e.what();
    log_.error(kComponent, "BACKUP_FAILED", std::string("no archive was kept: ") + e.what(), id);
  }
  finish(outcome);
  return outcome;
}

void BackupService::finish(const Outcome& outcome) {
  auto st = state_.lock();
  Job job = *st->job;
  if (outcome.ok) {
    job.phase = "complete";
    st->lastFailure.reset();
    publish(job, "complete", "");
  } else {
    job.phase = "failed";
    st->lastFailure = outcome;
    st->lastFailureAt = isoUtc(std::chrono::system_clock::now());
    publish(job, "failed", outcome.error);
  }
  st->job.reset();
}

void BackupService::make(const std::string& id, const Request& request) {
  const fs::path work = store_.workDir(id);
  if (::mkdir(work.c_str(), 0700) != 0) {
    throw IoError("cannot create " + work.string() + ": " + errnoText(errno));
  }
  RemoveOnExit removeWork(work);
  const fs::path dump = work / "vcrm.dump";

  upgrade::ArchiveInfo info;
  info.productVersion = options_.productVersion;
  info.sourceSerial = options_.serial;
  info.sourceRole = "standalone";
  info.pgDumpVersion = options_.tools.version("pg_dump");
  std::optional<std::string> licence;
  {
    // The counts and the licence are read in the snapshot pg_dump dumps: the transaction stays
    // open (read only, no locks beyond pg_dump's ACCESS SHARE) until the dump is written.
    db::Connection conn(options_.dsn);
    db::Transaction tx(conn, db::Transaction::Isolation::RepeatableRead);
    tx.exec("SET TRANSACTION READ ONLY");
    auto r = tx.exec(
        "SELECT pg_export_snapshot(), current_setting('server_version'), "
        "  (SELECT coalesce(max(version), 0) FROM schema_migrations), "
        "  (SELECT count(*) FROM conferences), (SELECT count(*) FROM conference_cdrs), "
        "  (SELECT count(*) FROM participant_legs), (SELECT count(*) FROM users)");
    const std::string snapshot = r.text(0, 0);
    info.postgresVersion = r.text(0, 1);
    info.schemaVersion = static_cast<int>(r.int64(0, 2));
    info.counts = {{"conferences", r.int64(0, 3)},
                   {"cdrs", r.int64(0, 4)},
                   {"participant_cdrs", r.int64(0, 5)},
                   {"users", r.int64(0, 6)}};
    auto l = tx.exec("SELECT file FROM licences WHERE serial = $1 AND replaced_at IS NULL",
                     {options_.serial});
    if (!l.empty()) licence = l.text(0, 0);

    progress("dump", 0, 0, true);
    DumpWatcher watch(dump, [this](std::uint64_t size) { progress("dump", size, 0, false); });
    upgrade::DumpOptions dumpOptions;
    dumpOptions.snapshot = snapshot;
    upgrade::dumpDatabase(options_.tools, options_.dsn, dump, dumpOptions);
  }

  std::vector<upgrade::MemberSource> members;
  members.push_back(upgrade::memberFromFile("db/vcrm.dump", dump));
  std::error_code ec;
  if (fs::is_regular_file(options_.configFile, ec)) {
    members.push_back(
        upgrade::memberFromBytes("etc/vcrmd.conf", files::readFile(options_.configFile)));
  }
  members.push_back(
      upgrade::memberFromBytes("state/serial", files::readFile(options_.serialFile, 4096)));
  members.push_back(
      upgrade::memberFromBytes("tls/server.crt", files::readFile(options_.tlsCertFile, 1u << 20)));
  members.push_back(
      upgrade::memberFromBytes("tls/server.key", files::readFile(options_.tlsKeyFile, 1u << 20)));
  if (licence) members.push_back(upgrade::memberFromBytes("licence/active.lic", *licence));

  const fs::path part = store_.partPath(id);
  files::Fd fd(::open(part.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) throw IoError("cannot create " + part.string() + ": " + errnoText(errno));
  RemoveOnExit removePart(part);
  upgrade::FdSink sink(fd.get(), "archive " + part.string());
  upgrade::WriteOptions wo;
  wo.seal = options_.seal;
  wo.progress = [this](std::uint64_t done, std::uint64_t total) {
    progress("archive", done, total, done == total);
  };
  progress("archive", 0, 0, true);
  const upgrade::Manifest manifest =
      upgrade::writeArchive(sink, request.passphrase, info, members, wo);
  if (::fsync(fd.get()) != 0)
    throw IoError("cannot fsync " + part.string() + ": " + errnoText(errno));
  struct stat st {};
  ::fstat(fd.get(), &st);
  fd.reset();

  BackupRecord record;
  record.id = id;
  record.size = static_cast<std::uint64_t>(st.st_size);
  record.createdAt = manifest.info.createdAt;
  record.origin = request.origin;
  record.createdBy = request.createdBy;
  record.info = manifest.info;
  record.memberBytes = manifest.totalBytes();
  store_.writeRecord(record);  // before the archive appears, so it is never listed without it
  fs::rename(part, store_.archivePath(id));
  removePart.release();
  files::fsyncDir(store_.dir());
}

void BackupService::progress(const std::string& phase, std::uint64_t done, std::uint64_t total,
                             bool force) {
  auto st = state_.lock();
  if (!st->job) return;
  st->job->phase = phase;
  st->job->done = done;
  st->job->total = total;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - lastEvent_ < kEventEvery) return;
  lastEvent_ = now;
  publish(*st->job, "running", "");
}

void BackupService::publish(const Job& job, const std::string& state, const std::string& error) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", job.id);
  o->set("phase", job.phase);
  o->set("done", job.done);
  o->set("total", job.total);
  o->set("state", state);
  o->set("origin", job.origin);
  if (!error.empty()) o->set("error", error);
  bus_.publish("backup", json::stringify(o));
}

Poco::Dynamic::Var BackupService::running() const {
  auto st = state_.lock();
  if (!st->job) return Poco::Dynamic::Var();
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", st->job->id);
  o->set("state", "running");
  o->set("phase", st->job->phase);
  o->set("done", st->job->done);
  o->set("total", st->job->total);
  o->set("origin", st->job->origin);
  o->set("created_by", st->job->createdBy);
  o->set("started_at", st->job->startedAt);
  return o;
}

Poco::Dynamic::Var BackupService::lastFailure() const {
  auto st = state_.lock();
  if (!st->lastFailure) return Poco::Dynamic::Var();
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", st->lastFailure->id);
  o->set("error", st->lastFailure->error);
  o->set("at", st->lastFailureAt);
  return o;
}

json::ObjectPtr BackupService::verify(const std::string& id, const std::string& passphrase) {
  if (passphrase.empty()) {
    throw InvalidInput("give the archive's passphrase as {\"passphrase\": \"...\"}",
                       "missing_field");
  }
  store_.get(id);
  const fs::path path = store_.archivePath(id);
  files::Fd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) throw IoError("cannot open " + path.string() + ": " + errnoText(errno));
  upgrade::FdSource source(fd.get(), path.string());
  upgrade::ReadOptions ro;
  ro.compatibleWith = upgrade::Compatibility{options_.productVersion, options_.schemaVersion};
  const auto manifest = upgrade::verifyArchive(source, passphrase, ro);
  log_.info(kComponent, "BACKUP_VERIFIED", "every chunk, the manifest and every member checked",
            id);
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", id);
  o->set("verified", true);
  o->set("manifest", json::parseObject(upgrade::manifestJson(manifest)));
  return o;
}

}  // namespace vcrm
