// The backup archives kept on this appliance: `<state>/backups/<id>.vcrmbak` with a sidecar
// `<id>.json` each (what the archive holds, who made it, its off-box copy). The files are
// the truth — there is no table — so a restore of the database cannot make the list lie.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/json.h"
#include "vcrm/upgrade/backup_archive.h"

namespace vcrm {

// "2026-12-02T06:30:00Z": the times backups record and show.
std::string isoUtc(std::chrono::system_clock::time_point at);

// What the sidecar of one archive says.
struct BackupRecord {
  std::string id;  // the file name without ".vcrmbak"
  std::uint64_t size = 0;
  std::string createdAt;  // ISO 8601 UTC
  std::string origin;     // "manual" or "scheduled"
  std::string createdBy;  // the user, or "scheduler"
  upgrade::ArchiveInfo info;
  std::uint64_t memberBytes = 0;
  // The off-box copy: "none" (not asked for), "copied" or "failed" with its error.
  std::string copyState = "none";
  std::string copyError;
  std::string copyTarget;  // "sftp://user@host:port/dir/<file>"
  std::string copiedAt;

  json::ObjectPtr toJson() const;
  static BackupRecord fromJson(const json::ObjectPtr& o);
};

class BackupStore {
 public:
  // Creates `dir` (0700) when missing and removes what an interrupted backup left (".part"
  // archives, work directories).
  explicit BackupStore(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  // "vcrm-<serial>-<YYYYMMDDTHHMMSSZ>", the serial without its check symbol (letters, digits
  // and dashes only), a second later than any archive already named so.
  std::string newId(const std::string& serial, std::chrono::system_clock::time_point at) const;
  std::filesystem::path archivePath(const std::string& id) const;
  std::filesystem::path partPath(const std::string& id) const;
  std::filesystem::path workDir(const std::string& id) const;

  // Newest first. An archive whose sidecar is missing or unreadable is listed with what its
  // file says (size, time).
  std::vector<BackupRecord> list() const;
  // NotFound ("backup_not_found") for an id that is malformed or names no archive.
  BackupRecord get(const std::string& id) const;
  void writeRecord(const BackupRecord& record) const;
  // Removes the archive and its sidecar; NotFound as get().
  void remove(const std::string& id) const;

 private:
  static std::string idSerial(const std::string& serial);
  std::filesystem::path sidecarPath(const std::string& id) const;
  BackupRecord fromFiles(const std::string& id) const;
  std::filesystem::path dir_;
};

}  // namespace vcrm
