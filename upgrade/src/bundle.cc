// Reading and writing bundles on file descriptors: verification (pread only, chunk hashes on a
// pool of threads), the payload tar walk shared by verification and extraction, extraction into
// a fresh directory, and the vendor's side (the payload tar, chunk hashes, signing).
#include "vcrm/upgrade/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "archive_ptr.h"
#include "bundle_internal.h"
#include "entry_names.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/upgrade/backup_archive.h"

namespace vcrm::upgrade {

using detail::pathProblem;
using detail::printable;

namespace {

constexpr std::size_t kIoPiece = 1u << 20;
constexpr std::size_t kTarPiece = 64u << 10;

[[noreturn]] void refuse(BundleReason reason, const std::string& message) {
  throw BundleRefused(reason, message);
}

std::uint64_t regularFileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw IoError("cannot stat the bundle: " + errnoText(errno));
  if (!S_ISREG(st.st_mode)) {
    refuse(BundleReason::NotABundle, "the bundle is not a regular file; upload the .bin file");
  }
  return static_cast<std::uint64_t>(st.st_size);
}

// Exactly `size` bytes at `offset`, or a refusal: the file shrank while it was read.
void preadFull(int fd, char* data, std::size_t size, std::uint64_t offset, const char* what) {
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, data + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      throw IoError(std::string("cannot read the bundle's ") + what + ": " + errnoText(errno));
    if (n == 0) {
      refuse(BundleReason::Truncated, std::string("the bundle ended inside its ") + what +
                                          " (it shrank while it was read); upload it again");
    }
    got += static_cast<std::size_t>(n);
  }
}

std::string preadString(int fd, std::uint64_t size, std::uint64_t offset, const char* what) {
  std::string out(size, '\0');
  preadFull(fd, out.data(), out.size(), offset, what);
  return out;
}

void writeFull(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError("cannot write " + what + ": " + errnoText(errno));
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

// Hashes the `chunkSize` pieces of [offset, offset + length) of `fd` on `threads` threads, each
// reading with pread into its own buffer (memory: threads x kIoPiece, whatever the size).
// `digest(i, hex)` is called once per chunk from any thread; returning false stops the others.
void hashChunks(int fd, std::uint64_t offset, std::uint64_t length, std::uint64_t chunkSize,
                unsigned threads,
                const std::function<bool(std::size_t, const std::string&)>& digest) {
  const std::size_t count = static_cast<std::size_t>((length + chunkSize - 1) / chunkSize);
  if (count == 0) return;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = static_cast<unsigned>(std::min<std::size_t>(threads, count));
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex errorLock;
  std::exception_ptr error;
  auto work = [&] {
    try {
      std::string buf(static_cast<std::size_t>(std::min<std::uint64_t>(kIoPiece, chunkSize)), '\0');
      while (!stop.load(std::memory_order_relaxed)) {
        const std::size_t i = next.fetch_add(1);
        if (i >= count) return;
        const std::uint64_t start = static_cast<std::uint64_t>(i) * chunkSize;
        const std::uint64_t end = std::min(length, start + chunkSize);
        crypto::Sha256 hash;
        for (std::uint64_t at = start; at < end;) {
          const std::size_t n =
              static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - at));
          preadFull(fd, buf.data(), n, offset + at, "payload");
          hash.update(buf.data(), n);
          at += n;
        }
        if (!digest(i, hash.finishHex())) stop = true;
      }
    } catch (...) {
      const std::lock_guard lock(errorLock);
      if (!error) error = std::current_exception();
      stop = true;
    }
  };
  {
    std::vector<std::jthread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
  }
  if (error) std::rethrow_exception(error);
}

std::string chunkRange(std::size_t i, std::uint64_t chunkSize) {
  return "chunk " + std::to_string(i) + " (payload bytes " +
         std::to_string(static_cast<std::uint64_t>(i) * chunkSize) + " to " +
         std::to_string(static_cast<std::uint64_t>(i + 1) * chunkSize - 1) + ")";
}

// The header, signature block and manifest text, parsed but not yet trusted.
struct Head {
  BundleHeader header;
  std::string headerBytes;
  SignatureBlock signature;
  std::string manifestText;
  std::uint64_t fileSize = 0;
};

Head readHead(int fd, const BundleLimits& limits) {
  Head h;
  h.fileSize = regularFileSize(fd);
  h.headerBytes =
      preadString(fd, std::min<std::uint64_t>(h.fileSize, kBundleHeaderSize), 0, "header");
  h.header = parseBundleHeader(h.headerBytes, h.fileSize, limits);
  h.signature = parseSignatureBlock(
      preadString(fd, h.header.signatureLength, h.header.signatureOffset, "signature block"));
  h.manifestText = preadString(fd, h.header.manifestLength, h.header.manifestOffset, "manifest");
  return h;
}

BundleInfo infoOf(Head& h, BundleManifest manifest) {
  if (manifest.payloadSize != h.header.payloadLength) {
    refuse(BundleReason::ManifestInvalid,
           "the bundle's manifest declares a payload of " + std::to_string(manifest.payloadSize) +
               " bytes but its header " + std::to_string(h.header.payloadLength) +
               "; it was not made by vcrm-bundle");
  }
  return BundleInfo{h.header, std::move(manifest), h.signature.keyId, h.fileSize};
}

// ------------------------------------------------------------------------------ payload tar

// Where libarchive reads the payload from. Verifying, it reads in small pieces and seeks over
// file data (the chunk hashes already vouch for every byte); extracting, it is handed one whole
// chunk at a time, each checked against its hash before libarchive sees a byte of it.
struct PayloadInput {
  int fd = -1;
  const BundleInfo* info = nullptr;
  bool checkChunks = false;
  std::uint64_t position = 0;
  std::string buffer;
  std::exception_ptr error;
};

la_ssize_t payloadRead(archive* a, void* opaque, const void** out) {
  auto* in = static_cast<PayloadInput*>(opaque);
  try {
    const BundleManifest& m = in->info->manifest;
    const std::uint64_t left = m.payloadSize - in->position;
    if (left == 0) return 0;
    std::size_t n = 0;
    if (in->checkChunks) {
      n = static_cast<std::size_t>(std::min<std::uint64_t>(left, m.chunkSize));
      in->buffer.resize(n);
      preadFull(in->fd, in->buffer.data(), n, in->info->header.payloadOffset + in->position,
                "payload");
      const std::size_t i = static_cast<std::size_t>(in->position / m.chunkSize);
      if (crypto::toHex(std::string_view(
              reinterpret_cast<const char*>(crypto::sha256(in->buffer).data()), 32)) !=
          m.chunks[i]) {
        refuse(BundleReason::ChunkMismatch,
               "payload " + chunkRange(i, m.chunkSize) +
                   " changed since it was verified; extraction stopped and its directory was "
                   "removed: upload the bundle again");
      }
    } else {
      n = static_cast<std::size_t>(std::min<std::uint64_t>(left, kTarPiece));
      in->buffer.resize(n);
      preadFull(in->fd, in->buffer.data(), n, in->info->header.payloadOffset + in->position,
                "payload");
    }
    in->position += n;
    *out = in->buffer.data();
    return static_cast<la_ssize_t>(n);
  } catch (...) {
    in->error = std::current_exception();
    archive_set_error(a, EIO, "the bundle's payload could not be read");
    return -1;
  }
}

la_int64_t payloadSkip(archive*, void* opaque, la_int64_t request) {
  auto* in = static_cast<PayloadInput*>(opaque);
  const std::uint64_t left = in->info->manifest.payloadSize - in->position;
  const auto n =
      std::min<std::uint64_t>(left, static_cast<std::uint64_t>(std::max<la_int64_t>(0, request)));
  in->position += n;
  return static_cast<la_int64_t>(n);
}

// Where extraction puts what the walk hands it. Every path is opened from the staging
// directory's descriptor one component at a time with O_NOFOLLOW: nothing is followed.
class StagingDir {
 public:
  explicit StagingDir(const std::filesystem::path& dir) : dir_(dir) {
    if (::mkdir(dir.c_str(), 0700) != 0) {
      if (errno == EEXIST) {
        refuse(BundleReason::TargetExists,
               "cannot extract the bundle into " + dir.string() +
                   ": it already exists; extraction needs a directory that does not exist");
      }
      throw IoError("cannot create " + dir.string() + ": " + errnoText(errno));
    }
    root_ = openDir(AT_FDCWD, dir.c_str(), dir.string());
  }

  void directory(const BundleEntry& e) {
    std::string leaf;
    const files::Fd parent = parentDir(e.path, leaf);
    if (::mkdirat(parent.get(), leaf.c_str(), 0700) != 0) {
      throw IoError("cannot create " + (dir_ / e.path).string() + ": " + errnoText(errno));
    }
    dirs_.push_back(&e);
  }

  files::Fd file(const BundleEntry& e) {
    std::string leaf;
    const files::Fd parent = parentDir(e.path, leaf);
    files::Fd fd(::openat(parent.get(), leaf.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) throw IoError("cannot create " + (dir_ / e.path).string() + ": " + errnoText(errno));
    return fd;
  }

  void fileDone(const BundleEntry& e, const files::Fd& fd) {
    if (::fchmod(fd.get(), e.mode) != 0 || ::fsync(fd.get()) != 0) {
      throw IoError("cannot finish " + (dir_ / e.path).string() + ": " + errnoText(errno));
    }
  }

  // Directory modes last (a read-only directory is filled first), then everything synced.
  void finish() {
    for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
      std::string leaf;
      const files::Fd parent = parentDir((*it)->path, leaf);
      const files::Fd fd = openDir(parent.get(), leaf.c_str(), (dir_ / (*it)->path).string());
      if (::fsync(fd.get()) != 0 || ::fchmod(fd.get(), (*it)->mode) != 0) {
        throw IoError("cannot finish " + (dir_ / (*it)->path).string() + ": " + errnoText(errno));
      }
    }
    if (::fchmod(root_.get(), 0755) != 0 || ::fsync(root_.get()) != 0) {
      throw IoError("cannot finish " + dir_.string() + ": " + errnoText(errno));
    }
    files::fsyncDir(dir_.parent_path().empty() ? "." : dir_.parent_path());
  }

 private:
  static files::Fd openDir(int parent, const char* name, const std::string& what) {
    files::Fd fd(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw IoError("cannot open " + what + ": " + errnoText(errno));
    return fd;
  }

  files::Fd parentDir(const std::string& path, std::string& leaf) {
    files::Fd at(::dup(root_.get()));
    if (!at) throw IoError("cannot open " + dir_.string() + ": " + errnoText(errno));
    std::string_view rest = path;
    for (std::size_t slash; (slash = rest.find('/')) != std::string_view::npos;) {
      const std::string part(rest.substr(0, slash));
      at = openDir(at.get(), part.c_str(), (dir_ / path).parent_path().string());
      rest.remove_prefix(slash + 1);
    }
    leaf = std::string(rest);
    return at;
  }

  std::filesystem::path dir_;
  files::Fd root_;
  std::vector<const BundleEntry*> dirs_;
};

// Walks the payload tar against the manifest: the entries in manifest order, each a regular
// file or directory of the manifest's mode and size. With a staging directory it writes them
// and checks each file's SHA-256; without, it seeks over the data.
class PayloadWalk {
 public:
  PayloadWalk(int fd, const BundleInfo& info, bool checkChunks) {
    in_.fd = fd;
    in_.info = &info;
    in_.checkChunks = checkChunks;
    a_.reset(archive_read_new());
    if (!a_) throw IoError("libarchive: cannot allocate a tar reader");
    // The tar format only, no decompression filter: a plain tar is what the chunks describe.
    if (archive_read_support_format_tar(a_.get()) != ARCHIVE_OK ||
        archive_read_open2(a_.get(), &in_, nullptr, payloadRead,
                           checkChunks ? nullptr : payloadSkip, nullptr) != ARCHIVE_OK) {
      fail("the bundle's payload is not a tar");
    }
  }

  // With `target`, writes the entries there; without, `hashFiles` reads each file's data and
  // checks its SHA-256 (else the data is skipped).
  void run(StagingDir* target, bool hashFiles = false) {
    const std::vector<BundleEntry>& entries = in_.info->manifest.entries;
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < entries.size(); ++i) index.emplace(entries[i].path, i);
    std::set<std::string> seen;
    std::size_t k = 0;
    for (archive_entry* entry; (entry = next()) != nullptr; ++k) {
      const char* raw = archive_entry_pathname(entry);
      std::string name = raw ? raw : "";
      // pax/ustar writers may end a directory's name with '/'.
      if (archive_entry_filetype(entry) == AE_IFDIR && name.size() > 1 && name.back() == '/') {
        name.pop_back();
      }
      checkKind(entry, name);
      if (const std::string problem = pathProblem(name); !problem.empty()) {
        refuse(BundleReason::UnsafeEntry, "the bundle's payload holds an entry " + printable(name) +
                                              " that " + problem +
                                              "; it cannot be installed safely");
      }
      if (!seen.insert(name).second) {
        refuse(BundleReason::DuplicateEntry,
               "the bundle's payload holds " + printable(name) +
                   " twice; it was not made by vcrm-bundle: ask the vendor for a new one");
      }
      const auto it = index.find(name);
      if (it == index.end()) {
        refuse(BundleReason::UnlistedEntry, "the bundle's payload holds " + printable(name) +
                                                ", which its manifest does not list");
      }
      if (it->second != k) {
        refuse(BundleReason::MissingEntry,
               "the bundle's payload lacks " + printable(entries[k].path) +
                   ", which its manifest lists before " + printable(name));
      }
      const BundleEntry& want = entries[k];
      const bool isDir = archive_entry_filetype(entry) == AE_IFDIR;
      const auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
      const auto mode = static_cast<std::uint32_t>(archive_entry_perm(entry));
      std::string differs;
      if (isDir != (want.type == BundleEntry::Type::Directory)) {
        differs = isDir ? "a directory in the payload, a file in the manifest"
                        : "a file in the payload, a directory in the manifest";
      } else if (mode != want.mode) {
        differs = "mode " + std::to_string(mode) + " in the payload, " + std::to_string(want.mode) +
                  " in the manifest";
      } else if (!isDir && (!archive_entry_size_is_set(entry) || size != want.size)) {
        differs = std::to_string(size) + " bytes in the payload, " + std::to_string(want.size) +
                  " in the manifest";
      }
      if (!differs.empty()) {
        refuse(BundleReason::EntryMismatch, "the bundle's entry " + printable(name) + " is " +
                                                differs + "; it was not made by vcrm-bundle");
      }
      if (isDir) {
        if (target) target->directory(want);
      } else if (target || hashFiles) {
        copyFile(want, target);
      } else if (archive_read_data_skip(a_.get()) != ARCHIVE_OK) {
        fail("the bundle's payload is damaged");
      }
    }
    if (k < entries.size()) {
      refuse(BundleReason::MissingEntry, "the bundle's payload lacks " +
                                             printable(entries[k].path) +
                                             ", which its manifest lists");
    }
  }

 private:
  archive_entry* next() {
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(a_.get(), &entry);
    if (rc == ARCHIVE_EOF) return nullptr;
    if (rc != ARCHIVE_OK) fail("the bundle's payload is not a well-formed tar");
    return entry;
  }

  void copyFile(const BundleEntry& want, StagingDir* target) {
    const files::Fd fd = target ? target->file(want) : files::Fd();
    crypto::Sha256 hash;
    std::string buf(kTarPiece, '\0');
    std::uint64_t got = 0;
    for (;;) {
      const la_ssize_t n = archive_read_data(a_.get(), buf.data(), buf.size());
      if (n < 0) fail("the bundle's payload is damaged inside " + printable(want.path));
      if (n == 0) break;
      const std::string_view piece(buf.data(), static_cast<std::size_t>(n));
      hash.update(piece);
      if (target) writeFull(fd.get(), piece, want.path);
      got += piece.size();
    }
    if (got != want.size) {
      refuse(BundleReason::Truncated, "the bundle's payload ends inside " + printable(want.path));
    }
    if (hash.finishHex() != want.sha256) {
      refuse(BundleReason::HashMismatch,
             printable(want.path) +
                 " does not match its SHA-256 in the bundle's manifest; "
                 "the bundle was made wrongly: ask the vendor for a new one");
    }
    if (target) target->fileDone(want, fd);
  }

  void checkKind(archive_entry* entry, const std::string& name) {
    if (const char* kind = detail::unsafeEntryKind(entry, /*allowDirectories=*/true)) {
      refuse(BundleReason::UnsafeEntry, "the bundle's entry " + printable(name) + " is " + kind +
                                            "; a bundle holds only regular files and directories");
    }
    if ((archive_entry_mode(entry) & 07000) != 0) {
      refuse(BundleReason::UnsafeEntry, "the bundle's entry " + printable(name) +
                                            " has setuid, setgid or sticky bits; refused");
    }
    if (archive_entry_sparse_count(entry) > 0) {
      refuse(BundleReason::LimitExceeded,
             "the bundle's entry " + printable(name) +
                 " is a sparse file, which could expand far beyond its "
                 "stored size (an archive bomb); refused");
    }
  }

  [[noreturn]] void fail(const std::string& what) {
    if (in_.error) std::rethrow_exception(in_.error);
    const char* detail = archive_error_string(a_.get());
    refuse(BundleReason::NotATar, what + (detail ? std::string(" (") + detail + ")" : "") +
                                      "; it was not made by vcrm-bundle");
  }

  PayloadInput in_;
  detail::ReadArchivePtr a_;
};

// ------------------------------------------------------------------------------- the vendor

la_ssize_t tarToFd(archive* a, void* opaque, const void* data, size_t size) {
  try {
    writeFull(*static_cast<int*>(opaque), std::string_view(static_cast<const char*>(data), size),
              "the bundle's payload");
    return static_cast<la_ssize_t>(size);
  } catch (const std::exception& e) {
    archive_set_error(a, EIO, "%s", e.what());
    return -1;
  }
}

void checkRelease(const BundleRelease& r) {
  compareVersions(r.version, "0");
  compareVersions(r.minVersion, "0");
  if (compareVersions(r.minVersion, r.version) > 0) {
    throw InvalidInput("the minimum version " + r.minVersion + " is newer than the version " +
                       r.version);
  }
  if (!validIsoDate(r.releaseDate)) {
    throw InvalidInput("the release date \"" + r.releaseDate.substr(0, 20) +
                       "\" is not YYYY-MM-DD");
  }
  if (r.compatible.empty() || r.compatible.size() > 128) {
    throw InvalidInput("the compatible string must be 1 to 128 characters");
  }
  if (r.notes.size() > (64u << 10) || r.notes.find('\0') != std::string::npos) {
    throw InvalidInput("the release notes must be text of at most 64 KiB");
  }
}

// The tree's entries, directories before what they hold, names sorted (a reproducible order).
void listTree(const std::filesystem::path& root, const std::string& prefix,
              std::vector<BundleEntry>& out) {
  std::vector<std::filesystem::path> names;
  for (const auto& d : std::filesystem::directory_iterator(root / prefix))
    names.push_back(d.path());
  std::sort(names.begin(), names.end());
  for (const auto& p : names) {
    const std::string rel = (prefix.empty() ? "" : prefix + "/") + p.filename().string();
    if (const std::string problem = pathProblem(rel); !problem.empty()) {
      throw InvalidInput("cannot bundle " + p.string() + ": it " + problem);
    }
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
      throw IoError("cannot stat " + p.string() + ": " + errnoText(errno));
    if ((st.st_mode & 07000) != 0) {
      throw InvalidInput("cannot bundle " + p.string() + ": it has setuid, setgid or sticky bits");
    }
    BundleEntry e{
        rel, BundleEntry::Type::File, static_cast<std::uint32_t>(st.st_mode & 0777), 0, {}};
    if (S_ISDIR(st.st_mode)) {
      e.type = BundleEntry::Type::Directory;
      out.push_back(e);
      listTree(root, rel, out);
    } else if (S_ISREG(st.st_mode)) {
      e.size = static_cast<std::uint64_t>(st.st_size);
      out.push_back(e);
    } else {
      throw InvalidInput("cannot bundle " + p.string() +
                         ": it is not a regular file or directory (links, devices and fifos "
                         "cannot be installed from a bundle)");
    }
  }
}

// Writes the tar of `entries` (from `root`) to `fd`, filling in each file's SHA-256.
void writePayload(int fd, const std::filesystem::path& root, std::vector<BundleEntry>& entries) {
  detail::WriteArchivePtr a(archive_write_new());
  if (!a) throw IoError("libarchive: cannot allocate a tar writer");
  int out = fd;
  auto fail = [&](const std::string& what) {
    const char* detail = archive_error_string(a.get());
    throw IoError("cannot write the bundle's payload: " + what +
                  (detail ? std::string(": ") + detail : ""));
  };
  if (archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_open(a.get(), &out, nullptr, tarToFd, nullptr) != ARCHIVE_OK) {
    fail("cannot start the tar");
  }
  std::string buf(kTarPiece, '\0');
  for (BundleEntry& e : entries) {
    detail::EntryPtr entry(archive_entry_new());
    archive_entry_set_pathname(entry.get(), e.path.c_str());
    archive_entry_set_filetype(entry.get(),
                               e.type == BundleEntry::Type::Directory ? AE_IFDIR : AE_IFREG);
    archive_entry_set_perm(entry.get(), e.mode);
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(e.size));
    archive_entry_set_mtime(entry.get(), 0, 0);  // reproducible: the same tree, the same bytes
    if (archive_write_header(a.get(), entry.get()) != ARCHIVE_OK) fail(e.path);
    if (e.type == BundleEntry::Type::Directory) continue;
    const std::filesystem::path p = root / e.path;
    const files::Fd in(::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!in) throw IoError("cannot open " + p.string() + ": " + errnoText(errno));
    crypto::Sha256 hash;
    std::uint64_t got = 0;
    for (;;) {
      const ssize_t n = ::read(in.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw IoError("cannot read " + p.string() + ": " + errnoText(errno));
      if (n == 0 || got + static_cast<std::uint64_t>(n) > e.size) break;
      hash.update(buf.data(), static_cast<std::size_t>(n));
      for (std::size_t done = 0; done < static_cast<std::size_t>(n);) {
        const la_ssize_t w =
            archive_write_data(a.get(), buf.data() + done, static_cast<std::size_t>(n) - done);
        if (w <= 0) fail(e.path);
        done += static_cast<std::size_t>(w);
      }
      got += static_cast<std::uint64_t>(n);
    }
    if (got != e.size)
      throw IoError(p.string() + " changed while the bundle was made; make it again");
    e.sha256 = hash.finishHex();
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) fail("cannot finish the tar");
}

// The files' bytes plus a block per entry, against what the filesystem of `freshDir` has free.
void requireFreeSpace(const BundleManifest& m, const std::filesystem::path& freshDir) {
  const std::filesystem::path parent =
      freshDir.parent_path().empty() ? "." : freshDir.parent_path();
  struct statvfs fs {};
  if (::statvfs(parent.c_str(), &fs) != 0) {
    throw IoError("cannot read the free space of " + parent.string() + ": " + errnoText(errno));
  }
  const std::uint64_t free = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  const std::uint64_t needed = m.totalFileBytes() + 4096 * (m.entries.size() + 1);
  if (free < needed) {
    throw InsufficientStorage("installing this bundle needs " + std::to_string(needed) +
                              " bytes in " + parent.string() + " and " + std::to_string(free) +
                              " are free; remove old uploads or backups and try again");
  }
}

}  // namespace

BundleInfo inspectBundle(int fd, const BundleLimits& limits) {
  Head h = readHead(fd, limits);
  return infoOf(h, parseBundleManifest(h.manifestText, limits));
}

BundleInfo verifyBundle(int fd, const BundleKeyring& keyring, const BundleLimits& limits) {
  Head h = readHead(fd, limits);
  const std::string& keyId = h.signature.keyId;
  switch (keyring.trust(keyId)) {
    case BundleKeyring::Trust::Unknown:
      refuse(BundleReason::KeyUnknown,
             "the bundle is signed with key \"" + keyId +
                 "\", which this appliance does not trust; get the bundle signed with the vendor's "
                 "current key, or add that key's public key to the bundle keyring");
    case BundleKeyring::Trust::Revoked:
      refuse(BundleReason::KeyRevoked, "the bundle is signed with key \"" + keyId +
                                           "\", which has been revoked; ask the vendor for the "
                                           "release signed with its current key");
    case BundleKeyring::Trust::Trusted:
      break;
  }
  if (!crypto::ed25519Verify(*keyring.publicKey(keyId),
                             signedMessage(h.headerBytes, keyId, h.manifestText),
                             h.signature.signature)) {
    refuse(BundleReason::SignatureInvalid,
           "the bundle's signature does not match its header and manifest: the file was altered "
           "or damaged after it was signed; download it again");
  }
  // From here on the header and manifest are the signer's.
  BundleInfo info = infoOf(h, parseBundleManifest(h.manifestText, limits));
  std::mutex lock;
  std::optional<std::size_t> firstBad;
  hashChunks(fd, info.header.payloadOffset, info.header.payloadLength, info.manifest.chunkSize,
             limits.threads, [&](std::size_t i, const std::string& hex) {
               if (hex == info.manifest.chunks[i]) return true;
               const std::lock_guard guard(lock);
               if (!firstBad || i < *firstBad) firstBad = i;
               return false;
             });
  if (firstBad) {
    refuse(BundleReason::ChunkMismatch, "the bundle's payload " +
                                            chunkRange(*firstBad, info.manifest.chunkSize) +
                                            " does not match its signed hash: the file was altered "
                                            "or damaged; download it again");
  }
  PayloadWalk(fd, info, false).run(nullptr);
  return info;
}

void verifyBundleFileHashes(int fd, const BundleInfo& verified) {
  PayloadWalk(fd, verified, false).run(nullptr, /*hashFiles=*/true);
}

BundleInfo extractBundle(int fd, const BundleKeyring& keyring,
                         const std::filesystem::path& freshDir, const BundleLimits& limits) {
  BundleInfo info = verifyBundle(fd, keyring, limits);
  extractVerifiedBundle(fd, info, freshDir);
  return info;
}

void extractVerifiedBundle(int fd, const BundleInfo& verified,
                           const std::filesystem::path& freshDir) {
  if (const std::uint64_t now = regularFileSize(fd); now != verified.fileSize) {
    refuse(BundleReason::Truncated, "the bundle's size changed since it was verified (" +
                                        std::to_string(verified.fileSize) + " bytes, now " +
                                        std::to_string(now) + "); upload it again");
  }
  requireFreeSpace(verified.manifest, freshDir);
  std::optional<StagingDir> target;
  target.emplace(freshDir);  // refuses before anything is written when the directory exists
  try {
    PayloadWalk(fd, verified, true).run(&*target);
    target->finish();
  } catch (...) {
    target.reset();
    std::error_code ignored;
    std::filesystem::remove_all(freshDir, ignored);
    throw;
  }
}

std::string assembleBundle(const BundleSigningKey& key, BundleManifest manifest,
                           std::string_view payload) {
  manifest.payloadSize = payload.size();
  manifest.chunks.clear();
  for (std::uint64_t at = 0; at < payload.size(); at += manifest.chunkSize) {
    manifest.chunks.push_back(crypto::sha256Hex(payload.substr(at, manifest.chunkSize)));
  }
  return bundleHead(key, bundleManifestJson(manifest), payload.size()) + std::string(payload);
}

BundleManifest createBundle(const BundleSigningKey& key, const BundleRelease& release,
                            const std::filesystem::path& fromDir, const std::filesystem::path& out,
                            std::uint64_t chunkSize) {
  checkRelease(release);
  if (chunkSize < kMinBundleChunkSize || chunkSize > kMaxBundleChunkSize ||
      chunkSize % kMinBundleChunkSize != 0) {
    throw InvalidInput("the chunk size must be a multiple of 4096 from 4 KiB to 64 MiB");
  }
  BundleManifest m;
  m.release = release;
  m.chunkSize = chunkSize;
  listTree(fromDir, "", m.entries);
  if (m.entries.empty()) throw InvalidInput("cannot bundle " + fromDir.string() + ": it is empty");

  const std::filesystem::path dir = out.parent_path().empty() ? "." : out.parent_path();
  const files::Fd payload(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!payload)
    throw IoError("cannot make a temporary file in " + dir.string() + ": " + errnoText(errno));
  writePayload(payload.get(), fromDir, m.entries);
  m.payloadSize = regularFileSize(payload.get());
  m.chunks.assign((m.payloadSize + chunkSize - 1) / chunkSize, {});
  hashChunks(payload.get(), 0, m.payloadSize, chunkSize, 0,
             [&](std::size_t i, const std::string& hex) {
               m.chunks[i] = hex;  // each index written by one thread only
               return true;
             });
  const std::string head = bundleHead(key, bundleManifestJson(m), m.payloadSize);

  const std::filesystem::path tmp = out.string() + ".tmp";
  files::Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (!fd) throw IoError("cannot create " + tmp.string() + ": " + errnoText(errno));
  try {
    writeFull(fd.get(), head, tmp.string());
    std::string buf(kIoPiece, '\0');
    for (std::uint64_t at = 0; at < m.payloadSize;) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), m.payloadSize - at));
      preadFull(payload.get(), buf.data(), n, at, "payload");
      writeFull(fd.get(), std::string_view(buf.data(), n), tmp.string());
      at += n;
    }
    if (::fsync(fd.get()) != 0)
      throw IoError("cannot fsync " + tmp.string() + ": " + errnoText(errno));
    fd.reset();
    std::filesystem::rename(tmp, out);
    files::fsyncDir(dir);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
  return m;
}

}  // namespace vcrm::upgrade
