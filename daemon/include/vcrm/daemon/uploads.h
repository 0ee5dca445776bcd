// The upload store: resumable uploads streamed into <root>/var/lib/vcrm/uploads (mode 0700),
// each a data file plus a JSON state file written atomically beside it, hashed (SHA-256) while
// the bytes stream, with a quota on the space all uploads reserve and expiry of abandoned ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/upload_spec.h"

namespace vcrm {

class UploadStore {
 public:
  using Clock = std::chrono::system_clock;

  struct Options {
    std::filesystem::path dir;                      // Config::paths.uploadsDir()
    std::uint64_t maxTotalBytes = 16ull << 30;      // uploads.max_total_mb
    std::chrono::minutes expireAfter{24 * 60};      // uploads.expire_minutes
  };

  // What the state file beside each upload holds.
  struct State {
    std::string id;
    std::string purpose;
    std::string owner;
    std::uint64_t length = 0;  // Upload-Length, declared at creation
    std::uint64_t offset = 0;  // bytes on disk and fsynced
    Clock::time_point createdAt;
    Clock::time_point lastActivity;
    std::map<std::string, std::string> metadata;
    // SHA-256 of the first `offset` bytes: checks the file when a restart forces a re-hash.
    std::string sha256SoFar;
    bool complete() const { return offset == length; }
    Clock::time_point expiresAt(std::chrono::minutes after) const { return lastActivity + after; }
  };

  struct AppendResult {
    State state;
    std::optional<FinishedUpload> finished;  // set when this append brought the last byte
  };

  // Creates the directory (0700, owned by this process's user) and counts what is reserved.
  UploadStore(Options options, Logger& log);
  ~UploadStore();
  UploadStore(const UploadStore&) = delete;
  UploadStore& operator=(const UploadStore&) = delete;

  const Options& options() const { return options_; }

  // Reserves `length` bytes. TooLarge above `maxBytes`; InsufficientStorage (507) when the
  // quota or the disk has not got the room, or the file system is read-only. No byte is
  // written before these checks pass.
  State create(const std::string& purpose, const std::string& owner, std::uint64_t length,
               std::uint64_t maxBytes, std::map<std::string, std::string> metadata);
  // NotFound for an unknown or malformed id, or one another user owns.
  State status(const std::string& id, const std::string& owner);
  // Appends the body read from `body` (at most `contentLength` bytes when given) at `offset`.
  // Conflict (409) when `offset` is not the upload's; Locked (423) while another append of the
  // same upload runs; TooLarge when the body would run past Upload-Length (nothing is kept).
  // A body cut short keeps every byte that arrived, fsynced before the new offset is stored.
  AppendResult append(const std::string& id, const std::string& owner, std::uint64_t offset,
                      std::istream& body, std::optional<std::uint64_t> contentLength);
  // tus termination: removes the upload and its reservation. Locked while an append runs.
  void remove(const std::string& id, const std::string& owner);
  // The completion handler's response kept for GET (status, content type, body).
  void storeResult(const std::string& id, const http::Response& response);
  std::optional<http::Response> result(const std::string& id, const std::string& owner);

  // Removes every upload idle for longer than expireAfter at `now` (and stray temporaries);
  // returns how many uploads went. Uploads being appended to are left alone.
  std::size_t sweep(Clock::time_point now);
  std::uint64_t reservedBytes() const { return *reserved_.lock(); }

  static bool validId(const std::string& id);

 private:
  struct Live;
  std::shared_ptr<Live> live(const std::string& id);
  State load(const std::string& id) const;
  State loadOwned(const std::string& id, const std::string& owner) const;
  void save(const State& s) const;
  void removeFiles(const std::string& id) const;
  std::filesystem::path dataPath(const std::string& id) const;
  std::filesystem::path statePath(const std::string& id) const;
  std::filesystem::path resultPath(const std::string& id) const;

  Options options_;
  Logger& log_;
  Guarded<std::uint64_t> reserved_;  // sum of Upload-Length over the uploads present
  Guarded<std::map<std::string, std::shared_ptr<Live>>> live_;
};

// What a module does with a finished upload it takes: moves it to `kept` (a rename on the same
// file system, the directory fsynced; `kept`'s directory must exist) and answers the PATCH that
// finished it with {upload_id, size, sha256}. IoError naming `what` when it cannot be kept.
json::ObjectPtr keepFinishedUpload(const FinishedUpload& upload, const std::filesystem::path& kept,
                                   const std::string& what);

}  // namespace vcrm
