#include "vcrm/common/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <vector>

#include "vcrm/common/error.h"

namespace vcrm::files {

namespace {

[[noreturn]] void throwIo(const std::string& what, const std::filesystem::path& path, int err) {
  throw IoError(what + " " + path.string() + ": " + errnoText(err));
}

// Removes the temporary file of an unfinished atomicWrite, whichever way the function exits,
// so a failed write never leaves ".name.tmp.XXXXXX" litter next to the real file.
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  void dismiss() { path_.clear(); }

 private:
  std::string path_;
};

void writeAll(int fd, std::string_view data, const std::filesystem::path& shownPath) {
  const char* p = data.data();
  std::size_t left = data.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      throwIo("cannot write", shownPath, errno);
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

void Fd::reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) {
    // On Linux the descriptor is released even when close() reports EINTR, so retrying could
    // close a descriptor another thread has just been given.
    ::close(fd_);
  }
  fd_ = fd;
}

void atomicWrite(const std::filesystem::path& path, std::string_view data, mode_t mode,
                 std::optional<Owner> owner) {
  const std::filesystem::path name = path.filename();
  if (name.empty() || name == "." || name == "..") {
    throw IoError("cannot write " + path.string() + ": the path does not name a file");
  }
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";

  // The temporary file must be in the same directory: rename() is only atomic within one
  // file system. The leading dot keeps it out of casual directory listings and globs.
  // Built with append(): GCC 12 at -O3 misreports `"." + s + "..."` as an overlapping memcpy.
  std::string tmpName = ".";
  tmpName.append(name.string()).append(".tmp.XXXXXX");
  const std::string tmpl = (dir / tmpName).string();
  std::vector<char> buffer(tmpl.begin(), tmpl.end());
  buffer.push_back('\0');
  Fd fd(::mkostemp(buffer.data(), O_CLOEXEC));
  if (!fd) {
    int err = errno;
    throw IoError("cannot create a temporary file in " + dir.string() + " to write " +
                  path.string() + ": " + errnoText(err) +
                  "; check that the directory exists and is writable");
  }
  const std::string tmpPath(buffer.data());
  TempFileGuard guard(tmpPath);

  writeAll(fd.get(), data, path);
  // mkstemp creates 0600 and the umask must not weaken or strengthen what the caller asked for.
  if (::fchmod(fd.get(), mode) != 0) throwIo("cannot set the mode of", path, errno);
  if (owner && ::fchown(fd.get(), owner->uid, owner->gid) != 0) throwIo("cannot set the owner of", path, errno);
  if (::fsync(fd.get()) != 0) throwIo("cannot flush", path, errno);
  // close() can report a delayed write error (e.g. on NFS), so it is checked, not left to ~Fd.
  if (::close(fd.release()) != 0) throwIo("cannot close", path, errno);
  if (::rename(tmpPath.c_str(), path.c_str()) != 0) {
    throwIo("cannot replace", path, errno);
  }
  guard.dismiss();
  // Without this the rename itself may be lost on a crash, bringing back the old content.
  fsyncDir(dir);
}

std::string readFile(const std::filesystem::path& path, std::size_t maxBytes, Links links) {
  const int extra = links == Links::Refuse ? O_NOFOLLOW | O_NONBLOCK : 0;
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | extra));
  if (!fd) {
    if (errno == ELOOP && links == Links::Refuse) {
      throw IoError("cannot read " + path.string() + ": it is a symbolic link, which is not followed here");
    }
    throwIo("cannot open", path, errno);
  }

  // st_size is only a hint (files under /proc report 0), so the limit is enforced while reading.
  struct stat st {};
  std::string out;
  const bool statted = ::fstat(fd.get(), &st) == 0;
  if (links == Links::Refuse && (!statted || !S_ISREG(st.st_mode))) {
    throw IoError("cannot read " + path.string() + ": it is not a regular file");
  }
  if (statted && S_ISREG(st.st_mode) && st.st_size > 0) {
    if (static_cast<std::uint64_t>(st.st_size) > maxBytes) {
      throw IoError("cannot read " + path.string() + ": the file is " + std::to_string(st.st_size) +
                    " bytes, more than the limit of " + std::to_string(maxBytes) + " bytes");
    }
    out.reserve(static_cast<std::size_t>(st.st_size));
  }

  std::vector<char> chunk(65536);
  for (;;) {
    ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throwIo("cannot read", path, errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > maxBytes) {
      throw IoError("cannot read " + path.string() + ": the file is larger than the limit of " +
                    std::to_string(maxBytes) + " bytes");
    }
    out.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return out;
}

void fsyncDir(const std::filesystem::path& dir) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) throwIo("cannot open directory", dir, errno);
  if (::fsync(fd.get()) != 0) {
    // Some file systems cannot sync a directory and say so with EINVAL; nothing more can be
    // done there, and failing every write on them would make the appliance unusable.
    if (errno != EINVAL) throwIo("cannot flush directory", dir, errno);
  }
}

void ensureDir(const std::filesystem::path& dir, mode_t mode) {
  if (dir.empty()) throw InvalidInput("ensureDir: the directory path is empty");

  std::filesystem::path current;
  for (const auto& part : dir) {
    current /= part;
    // A trailing '/' yields an empty last element; the root needs no creating.
    if (part.empty() || current == current.root_path()) continue;

    if (::mkdir(current.c_str(), mode) == 0) {
      // mkdir's mode is filtered by the umask; the caller asked for this exact mode.
      if (::chmod(current.c_str(), mode) != 0) throwIo("cannot set the mode of", current, errno);
      continue;
    }
    int err = errno;
    if (err != EEXIST) {
      throwIo("cannot create directory", current, err);
    }
    // Someone may have created it in the meantime; what matters is that it is a directory.
    struct stat st {};
    if (::stat(current.c_str(), &st) != 0) throwIo("cannot examine", current, errno);
    if (!S_ISDIR(st.st_mode)) {
      throw IoError("cannot create directory " + dir.string() + ": " + current.string() +
                    " exists and is not a directory");
    }
  }
}

}  // namespace vcrm::files
