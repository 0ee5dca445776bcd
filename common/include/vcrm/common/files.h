// File helpers: RAII descriptors and crash-safe writes.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

namespace vcrm::files {

// Owns a file descriptor; closes it on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.release()) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Writes `data` to a temporary file in the same directory, fsyncs it, renames it over `path`
// and fsyncs the directory: after a crash the file holds either the old or the new content.
// With `owner`, the new file is given to that user (fchown on the open temporary file, so a
// link planted at `path` by that user is replaced, never followed).
struct Owner {
  uid_t uid;
  gid_t gid;
};
void atomicWrite(const std::filesystem::path& path, std::string_view data, mode_t mode = 0644,
                 std::optional<Owner> owner = std::nullopt);

// Whether readFile follows a symbolic link at the path's last component. Root reading a file in
// a directory another user owns (the embedded PostgreSQL's data directory) refuses: that user
// could have put a link to /etc/shadow there. Refuse also takes only regular files (a FIFO would
// block the reader).
enum class Links { Follow, Refuse };

// Reads a whole file; throws IoError naming the path. `maxBytes` guards against huge files.
std::string readFile(const std::filesystem::path& path, std::size_t maxBytes = 64u << 20,
                     Links links = Links::Follow);

void fsyncDir(const std::filesystem::path& dir);

// mkdir -p with the given mode for directories it creates.
void ensureDir(const std::filesystem::path& dir, mode_t mode = 0755);

}  // namespace vcrm::files
