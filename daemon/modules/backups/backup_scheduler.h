// Scheduled backups: a time of day in a time zone, how many scheduled archives to keep (manual
// ones are never pruned), the passphrase they are sealed with and where to copy them off the box
// (SFTP, the server's key pinned). The settings live in <state>/backups/schedule.json (0600: it
// holds the passphrase and the SFTP key, which are never shown again) and the last run in
// schedule-state.json, so both survive a restart and a restore of the database. pass() is the
// "backup-scheduler" worker's: it makes the backup that is due, prunes, then copies it.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "modules/backups/backup_service.h"
#include "modules/backups/backup_store.h"
#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"

namespace vcrm {

struct SftpSettings {
  bool enabled = false;
  std::string host;
  int port = 22;
  std::string user;
  std::string remoteDir;
  std::string privateKey;  // OpenSSH private key text; write-only
  std::string hostKey;     // the server's public key line, pinned
};

struct ScheduleSettings {
  bool enabled = false;
  std::string timeOfDay = "02:00";  // HH:MM, local to timeZone
  std::string timeZone = "UTC";     // IANA name
  int retention = 7;                // scheduled archives kept
  std::string passphrase;           // write-only
  SftpSettings sftp;
  std::int64_t changedAt = 0;  // seconds since the epoch: times before it are not due
};

// Copies `file` as `name` to the SFTP target, keeping at most `keep` archives there; returns a
// description of where it went ("sftp://user@host:port/dir/name"); throws an Error whose
// message says what is wrong (the address, port, host key, credentials, directory, space).
using ArchiveCopier =
    std::function<std::string(const SftpSettings& target, const std::filesystem::path& file,
                              const std::string& name, std::size_t keep)>;

// The copier vcrmd uses: SFTP with the pinned host key and the private key of the settings.
ArchiveCopier sftpArchiveCopier();

class BackupScheduler {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  BackupScheduler(
      BackupService& service, BackupStore& store, db::Pool& pool, Logger& log, ArchiveCopier copier,
      Clock clock = [] { return std::chrono::system_clock::now(); });

  // GET /api/v1/backups/schedule: the settings without their secrets ("passphrase_set",
  // "private_key_set"), the next run and the last one.
  json::ObjectPtr describe();
  // PUT: changes the fields given (secrets omitted are kept); InvalidInput / Unprocessable
  // naming the field, and nothing changes, when the result would not work.
  json::ObjectPtr update(const json::ObjectPtr& body);
  // Runs the scheduled backup at the next pass, whatever the time (POST .../schedule/run);
  // Unprocessable when no passphrase is set.
  void requestRun();
  // The worker's pass: the backup that is due (or asked for), pruning, the copy.
  void pass();
  // The last scheduled run: {id, state: complete|failed|copy_failed, error, started_at,
  // finished_at}, or null before the first.
  Poco::Dynamic::Var lastRun() const;

 private:
  struct LastRun {
    std::int64_t slot = 0;  // the scheduled time it ran for
    std::string id;
    std::string state;
    std::string error;
    std::string startedAt;
    std::string finishedAt;
  };
  // The latest scheduled time at or before `now` and the first after it (seconds since the
  // epoch), in the settings' zone.
  struct Slots {
    std::int64_t latest = 0;
    std::int64_t next = 0;
  };
  Slots slots(const ScheduleSettings& s, std::int64_t now);
  void runOnce(const ScheduleSettings& s, std::int64_t slot);
  void prune(int retention);
  // Copies the new archive off the box; a refusal is recorded in its sidecar and in `last`.
  void copyOffBox(const ScheduleSettings& s, const std::string& id, LastRun& last);
  void save(const ScheduleSettings& s) const;
  void saveLast(const LastRun& last) const;

  BackupService& service_;
  BackupStore& store_;
  db::Pool& pool_;
  Logger& log_;
  ArchiveCopier copier_;
  Clock clock_;
  Guarded<ScheduleSettings> settings_;
  Guarded<std::optional<LastRun>> last_;
  std::atomic<bool> runRequested_{false};
};

}  // namespace vcrm
