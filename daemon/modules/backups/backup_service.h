// Makes backup archives of this appliance, one at a time: a REPEATABLE READ transaction is held
// open while pg_dump dumps its exported snapshot (so the counts in the manifest are the dump's
// and bookings go on meanwhile), then the dump, configuration, serial, certificate, key and
// licence are sealed into `<id>.vcrmbak.part`, fsynced and renamed. Progress goes to the event
// bus ("backup" events); a failure leaves no archive and says why.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "modules/backups/backup_store.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/upgrade/pg_tools.h"
#include "vcrm/upgrade/sealed_stream.h"

namespace vcrm {

class BackupService {
 public:
  struct Options {
    std::string dsn;  // the database to dump (the pool's)
    upgrade::PgTools tools;
    upgrade::SealOptions seal;
    std::string productVersion;
    int schemaVersion = 0;
    std::string serial;
    std::filesystem::path configFile;  // archived when it exists
    std::filesystem::path serialFile;
    std::filesystem::path tlsCertFile;
    std::filesystem::path tlsKeyFile;
  };
  // What a backup is asked to be.
  struct Request {
    std::string passphrase;
    std::string origin = "manual";  // or "scheduled"
    std::string createdBy;
  };
  // The outcome of one job, for callers that wait for it (the scheduler).
  struct Outcome {
    std::string id;
    bool ok = false;
    std::string error;  // what went wrong, for an operator
  };
  using Done = std::function<void(const Outcome&)>;

  static constexpr std::size_t kMinPassphrase = 12;  // characters
  static constexpr std::size_t kMinDistinct = 5;     // different characters
  static constexpr std::size_t kMaxPassphrase = 1024;
  // InvalidInput ("passphrase_too_short", "passphrase_too_weak", "passphrase_too_long") unless
  // the passphrase may protect a new archive.
  static void checkPassphrase(const std::string& passphrase);

  BackupService(Options options, BackupStore& store, EventBus& bus, Logger& log);
  ~BackupService();  // waits for a running job
  BackupService(const BackupService&) = delete;
  BackupService& operator=(const BackupService&) = delete;

  // Starts a job on a thread of its own and returns what GET /backups shows of it while it runs;
  // Conflict ("backup_running") while another one runs. `done` is called on the job's thread.
  json::ObjectPtr start(Request request, Done done = {});
  // Runs a job on the calling thread (the scheduler's) and returns its outcome; Conflict when
  // another one runs.
  Outcome run(Request request);
  // The job running now, or null.
  Poco::Dynamic::Var running() const;
  // The last job that failed since the start (id, error, at), or null: a manual failure shows
  // until the next success.
  Poco::Dynamic::Var lastFailure() const;

  // Checks a stored archive in full with `passphrase` (every tag, the manifest, every member's
  // size and hash); ArchiveError (422, with its reason's code) when it is refused.
  json::ObjectPtr verify(const std::string& id, const std::string& passphrase);

 private:
  struct Job {
    std::string id;
    std::string origin;
    std::string createdBy;
    std::string startedAt;
    std::string phase = "dump";
    std::uint64_t done = 0;
    std::uint64_t total = 0;
  };
  struct State {
    std::optional<Job> job;
    std::optional<Outcome> lastFailure;
    std::string lastFailureAt;
  };
  std::string claim(const Request& request);
  Outcome execute(const std::string& id, const Request& request);
  void make(const std::string& id, const Request& request);
  void progress(const std::string& phase, std::uint64_t done, std::uint64_t total, bool force);
  void publish(const Job& job, const std::string& state, const std::string& error);
  void finish(const Outcome& outcome);

  Options options_;
  BackupStore& store_;
  EventBus& bus_;
  Logger& log_;
  Guarded<State> state_;
  std::chrono::steady_clock::time_point lastEvent_{};
  Guarded<std::thread> thread_;
};

}  // namespace vcrm
