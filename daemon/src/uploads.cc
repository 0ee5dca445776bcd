#include "vcrm/daemon/uploads.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "uploads";
constexpr std::size_t kChunk = 256 * 1024;             // one read/write/hash step
constexpr std::uint64_t kPersistEvery = 64ull << 20;   // fsync + state write during a long PATCH

std::int64_t toSeconds(UploadStore::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
UploadStore::Clock::time_point fromSeconds(std::int64_t s) {
  return UploadStore::Clock::time_point(std::chrono::seconds(s));
}

struct Space {
  std::uint64_t freeBytes = 0;
  bool readOnly = false;
};

Space spaceOf(const fs::path& dir) {
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) {
    throw IoError("cannot examine the file system of " + dir.string() + ": " + errnoText(errno));
  }
  return {static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize, (v.f_flag & ST_RDONLY) != 0};
}

bool isSpaceError(int err) { return err == ENOSPC || err == EDQUOT || err == EROFS; }

std::string spaceMessage(const fs::path& dir, int err, std::uint64_t needed) {
  if (err == EROFS) {
    return "the uploads directory " + dir.string() + " is on a read-only file system; " +
           std::to_string(needed) + " bytes were to be written there";
  }
  std::uint64_t freeBytes = 0;
  try {
    freeBytes = spaceOf(dir).freeBytes;
  } catch (const IoError&) {
  }
  return "the disk holding " + dir.string() + " is full: " + std::to_string(needed) +
         " more bytes are needed and " + std::to_string(freeBytes) +
         " are free; free some space, then resume the upload";
}

// Writes all of [data, data+size) at `at`; returns how much reached the file and the errno of
// the failure that stopped it (0 when everything was written).
std::pair<std::size_t, int> writeAt(int fd, const char* data, std::size_t size, std::uint64_t at) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(at + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return {done, errno};
    }
    done += static_cast<std::size_t>(n);
  }
  return {done, 0};
}

// Reads up to `max` bytes of what the stream has; 0 when it has ended. A connection that drops
// makes Poco's stream throw: reading only what is already buffered before asking for more
// means no byte that arrived is lost to the exception.
std::size_t readSome(std::istream& body, char* out, std::size_t max) {
  std::streambuf* sb = body.rdbuf();
  try {
    std::streamsize avail = sb->in_avail();
    if (avail <= 0) {
      if (sb->sgetc() == std::char_traits<char>::eof()) return 0;
      avail = std::max<std::streamsize>(sb->in_avail(), 1);
    }
    return static_cast<std::size_t>(sb->sgetn(out, std::min<std::streamsize>(avail, static_cast<std::streamsize>(max))));
  } catch (...) {
    return 0;  // the connection is gone: what arrived so far is the body
  }
}

bool atEnd(std::istream& body) {
  try {
    return body.rdbuf()->sgetc() == std::char_traits<char>::eof();
  } catch (...) {
    return true;
  }
}

}  // namespace

// Per-upload live state: the lock that lets one append run at a time, and the SHA-256 context
// of the bytes on disk so a resume in the same process does not read the file again.
struct UploadStore::Live {
  std::mutex busy;  // held by the running append or removal; try-locked, never waited on
  std::optional<crypto::Sha256> hash;
  std::uint64_t hashedTo = 0;  // the offset `hash` covers; meaningless without `hash`
};

UploadStore::UploadStore(Options options, Logger& log) : options_(std::move(options)), log_(log) {
  files::ensureDir(options_.dir.parent_path(), 0755);
  files::ensureDir(options_.dir, 0700);
  struct stat st {};
  if (::lstat(options_.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw StartupError("the uploads directory " + options_.dir.string() + " is not a directory");
  }
  // The directory may be a mount point or left by an older run: it is ours and private.
  if (::chown(options_.dir.c_str(), ::geteuid(), ::getegid()) != 0 ||
      ::chmod(options_.dir.c_str(), 0700) != 0) {
    throw StartupError("cannot make " + options_.dir.string() + " private (owner " +
                       std::to_string(::geteuid()) + ", mode 0700): " + errnoText(errno));
  }
  *reserved_.lock() = 0;
}

UploadStore::~UploadStore() = default;

bool UploadStore::validId(const std::string& id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

fs::path UploadStore::dataPath(const std::string& id) const { return options_.dir / (id + ".data"); }
fs::path UploadStore::statePath(const std::string& id) const { return options_.dir / (id + ".json"); }
fs::path UploadStore::resultPath(const std::string& id) const {
  return options_.dir / (id + ".result.json");
}

std::shared_ptr<UploadStore::Live> UploadStore::live(const std::string& id) {
  auto map = live_.lock();
  auto& slot = (*map)[id];
  if (!slot) slot = std::make_shared<Live>();
  return slot;
}

void UploadStore::save(const State& s) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", s.id);
  o->set("purpose", s.purpose);
  o->set("owner", s.owner);
  o->set("length", static_cast<Poco::UInt64>(s.length));
  o->set("offset", static_cast<Poco::UInt64>(s.offset));
  o->set("created_at", static_cast<Poco::Int64>(toSeconds(s.createdAt)));
  o->set("last_activity", static_cast<Poco::Int64>(toSeconds(s.lastActivity)));
  o->set("sha256_so_far", s.sha256SoFar);
  json::ObjectPtr meta = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [k, v] : s.metadata) meta->set(k, crypto::base64Encode(v));  // binary-safe
  o->set("metadata", meta);
  files::atomicWrite(statePath(s.id), json::stringify(o) + "\n", 0600);
}

UploadStore::State UploadStore::load(const std::string& id) const {
  if (!validId(id)) throw NotFound("no upload " + id);
  std::string text;
  try {
    text = files::readFile(statePath(id), 1 << 20);
  } catch (const IoError&) {
    throw NotFound("no upload " + id + " (it may have expired or been deleted); create a new one");
  }
  auto o = json::parseObject(text);
  State s;
  s.id = id;
  s.purpose = o->getValue<std::string>("purpose");
  s.owner = o->getValue<std::string>("owner");
  s.length = o->getValue<Poco::UInt64>("length");
  s.offset = o->getValue<Poco::UInt64>("offset");
  s.createdAt = fromSeconds(o->getValue<Poco::Int64>("created_at"));
  s.lastActivity = fromSeconds(o->getValue<Poco::Int64>("last_activity"));
  s.sha256SoFar = o->getValue<std::string>("sha256_so_far");
  if (auto meta = o->getObject("metadata")) {
    for (const auto& [k, v] : *meta) s.metadata[k] = crypto::base64Decode(v.toString());
  }
  return s;
}

UploadStore::State UploadStore::loadOwned(const std::string& id, const std::string& owner) const {
  State s = load(id);
  // Another user's upload is not theirs to see: the same answer as for no upload at all.
  if (s.owner != owner) throw NotFound("no upload " + id + " (it may have expired or been deleted); create a new one");
  return s;
}

void UploadStore::removeFiles(const std::string& id) const {
  std::error_code ec;
  fs::remove(statePath(id), ec);
  fs::remove(dataPath(id), ec);
  fs::remove(resultPath(id), ec);
  try {
    files::fsyncDir(options_.dir);
  } catch (const IoError& e) {
    log_.warn(kComponent, "UPLOAD_DIR_SYNC_FAILED", e.what(), id);
  }
}

UploadStore::State UploadStore::create(const std::string& purpose, const std::string& owner,
                                       std::uint64_t length, std::uint64_t maxBytes,
                                       std::map<std::string, std::string> metadata) {
  if (length > maxBytes) {
    throw TooLarge("the upload is " + std::to_string(length) + " bytes; " + purpose +
                   " uploads take at most " + std::to_string(maxBytes) + " bytes");
  }
  // Holding the reservation lock from the quota check to the state write keeps two creations
  // from both taking the last of the quota.
  auto reserved = reserved_.lock();
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != 37 || name.substr(32) != ".json") continue;
    try {
      const State s = load(name.substr(0, 32));
      // A finished upload whose file its module took away reserves nothing any more.
      if (!s.complete() || fs::exists(dataPath(s.id))) total += s.length;
    } catch (const std::exception&) {
    }
  }
  *reserved = total;
  if (total + length > options_.maxTotalBytes) {
    const std::uint64_t left = options_.maxTotalBytes > total ? options_.maxTotalBytes - total : 0;
    throw InsufficientStorage("uploads may reserve " + std::to_string(options_.maxTotalBytes) +
                                  " bytes together and " + std::to_string(total) +
                                  " are reserved: this upload needs " + std::to_string(length) +
                                  " bytes and " + std::to_string(left) +
                                  " remain; finish or delete other uploads, or raise uploads.max_total_mb",
                              "upload_quota_exceeded");
  }
  const Space space = spaceOf(options_.dir);
  if (space.readOnly) throw InsufficientStorage(spaceMessage(options_.dir, EROFS, length));
  if (space.freeBytes < length + 64 * 1024) {
    throw InsufficientStorage("the disk holding " + options_.dir.string() + " has " +
                              std::to_string(space.freeBytes) + " bytes free and this upload needs " +
                              std::to_string(length) + "; free some space and try again");
  }

  State s;
  s.id = crypto::toHex(crypto::randomBytes(16));
  s.purpose = purpose;
  s.owner = owner;
  s.length = length;
  s.createdAt = s.lastActivity = Clock::now();
  s.metadata = std::move(metadata);
  s.sha256SoFar = crypto::Sha256().finishHex();
  {
    files::Fd fd(::open(dataPath(s.id).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd) {
      const int err = errno;
      if (isSpaceError(err)) throw InsufficientStorage(spaceMessage(options_.dir, err, length));
      throw IoError("cannot create " + dataPath(s.id).string() + ": " + errnoText(err));
    }
    // Reserve the blocks now (the file keeps size 0) so a disk that fills up meanwhile says
    // so here, not half-way through a gigabyte. File systems without fallocate skip this.
    if (length > 0 && ::fallocate(fd.get(), FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(length)) != 0) {
      const int err = errno;
      if (isSpaceError(err)) {
        fd.reset();
        removeFiles(s.id);
        throw InsufficientStorage(spaceMessage(options_.dir, err, length));
      }
    }
  }
  try {
    save(s);
  } catch (const IoError&) {
    removeFiles(s.id);
    if (spaceOf(options_.dir).freeBytes < 64 * 1024) {
      throw InsufficientStorage(spaceMessage(options_.dir, ENOSPC, length));
    }
    throw;
  }
  *reserved += length;
  log_.info(kComponent, "UPLOAD_CREATED",
            purpose + " upload of " + std::to_string(length) + " bytes by " + owner, s.id);
  return s;
}

UploadStore::State UploadStore::status(const std::string& id, const std::string& owner) {
  return loadOwned(id, owner);
}

UploadStore::AppendResult UploadStore::append(const std::string& id, const std::string& owner,
                                              std::uint64_t offset, std::istream& body,
                                              std::optional<std::uint64_t> contentLength) {
  if (!validId(id)) throw NotFound("no upload " + id);
  auto l = live(id);
  std::unique_lock<std::mutex> busy(l->busy, std::try_to_lock);
  if (!busy.owns_lock()) {
    throw Locked("another request is appending to upload " + id +
                     "; wait for it to end, then HEAD the upload for its offset and continue",
                 "upload_locked");
  }
  const State before = loadOwned(id, owner);
  State s = before;
  if (offset != s.offset) {
    throw Conflict("Upload-Offset is " + std::to_string(offset) + " but upload " + id + " has " +
                       std::to_string(s.offset) + " bytes; HEAD it and continue from there",
                   "offset_mismatch");
  }
  const std::uint64_t remaining = s.length - s.offset;
  if (contentLength && *contentLength > remaining) {
    throw TooLarge("this chunk of " + std::to_string(*contentLength) +
                       " bytes would run past the declared Upload-Length of " +
                       std::to_string(s.length) + " (" + std::to_string(remaining) +
                       " bytes remain); nothing was written",
                   "past_upload_length");
  }
  files::Fd fd(::open(dataPath(id).c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    if (isSpaceError(err)) throw InsufficientStorage(spaceMessage(options_.dir, err, remaining));
    throw NotFound("the data of upload " + id + " is gone (" + errnoText(err) + "); create a new upload");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw IoError("cannot examine " + dataPath(id).string() + ": " + errnoText(errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < s.offset) {
    throw Unprocessable("upload " + id + " has " + std::to_string(size) +
                            " bytes on disk but its state says " + std::to_string(s.offset) +
                            "; delete it and upload again",
                        "upload_damaged");
  }
  // Bytes past the stored offset were never acknowledged (a crash between write and state).
  // Only truncate then: truncating to the current size would drop the fallocated blocks.
  if (size > s.offset && ::ftruncate(fd.get(), static_cast<off_t>(s.offset)) != 0) {
    throw IoError("cannot truncate " + dataPath(id).string() + ": " + errnoText(errno));
  }

  if (!l->hash || l->hashedTo != s.offset) {
    // After a restart (or a refused chunk) the digest state is gone: OpenSSL 3 cannot export
    // an EVP context, so re-read the bytes on disk, and check them against the stored digest.
    crypto::Sha256 h;
    std::vector<char> buf(1 << 20);
    std::uint64_t done = 0;
    while (done < s.offset) {
      const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), s.offset - done));
      const ssize_t n = ::pread(fd.get(), buf.data(), want, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw IoError("cannot read " + dataPath(id).string() + ": " + (n < 0 ? errnoText(errno) : "short file"));
      h.update(buf.data(), static_cast<std::size_t>(n));
      done += static_cast<std::size_t>(n);
    }
    if (h.clone().finishHex() != s.sha256SoFar) {
      throw Unprocessable("the bytes of upload " + id +
                              " on disk no longer match what was received; delete it and upload again",
                          "upload_damaged");
    }
    l->hash.emplace(std::move(h));
    log_.info(kComponent, "UPLOAD_REHASHED", "re-read " + std::to_string(s.offset) + " bytes to resume", id);
  }
  l->hashedTo = ~0ull;  // until the state is stored again, the context is ahead of it

  auto persist = [&](std::uint64_t newOffset) {
    if (::fdatasync(fd.get()) != 0) {
      const int err = errno;
      if (isSpaceError(err)) throw InsufficientStorage(spaceMessage(options_.dir, err, s.length - s.offset));
      throw IoError("cannot flush " + dataPath(id).string() + ": " + errnoText(err));
    }
    s.offset = newOffset;
    s.lastActivity = Clock::now();
    s.sha256SoFar = l->hash->clone().finishHex();
    try {
      save(s);
    } catch (const IoError&) {
      // The state needs a block of its own; with none free the bytes stay unacknowledged and
      // the client resumes from the last stored offset once there is room.
      const Space space = spaceOf(options_.dir);
      if (space.readOnly || space.freeBytes < 64 * 1024) {
        throw InsufficientStorage(spaceMessage(options_.dir, space.readOnly ? EROFS : ENOSPC,
                                               s.length - before.offset));
      }
      throw;
    }
    l->hashedTo = newOffset;
  };

  const std::uint64_t want = contentLength ? *contentLength : remaining;
  std::vector<char> buf(kChunk);
  std::uint64_t got = 0;
  std::uint64_t sinceSync = 0;
  int writeError = 0;
  while (got < want) {
    const auto ask = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), want - got));
    std::size_t n = 0;
    while (n < ask) {
      const std::size_t k = readSome(body, buf.data() + n, ask - n);
      if (k == 0) break;
      n += k;
    }
    if (n > 0) {
      const auto [written, err] = writeAt(fd.get(), buf.data(), n, before.offset + got);
      l->hash->update(buf.data(), written);
      got += written;
      sinceSync += written;
      if (err != 0) {
        writeError = err;
        break;
      }
    }
    if (n < ask) break;  // the body ended early: a cut connection or a lying Content-Length
    if (sinceSync >= kPersistEvery) {
      persist(before.offset + got);
      sinceSync = 0;
    }
  }
  if (!contentLength && got == remaining && writeError == 0 && !atEnd(body)) {
    // A chunked body with more than Upload-Length: keep nothing of it.
    if (::ftruncate(fd.get(), static_cast<off_t>(before.offset)) != 0 || ::fdatasync(fd.get()) != 0) {
      throw IoError("cannot undo the refused chunk of " + dataPath(id).string() + ": " + errnoText(errno));
    }
    save(before);
    l->hash.reset();
    throw TooLarge("the body runs past the declared Upload-Length of " + std::to_string(s.length) +
                       " (" + std::to_string(remaining) + " bytes remained); nothing was kept",
                   "past_upload_length");
  }
  if (writeError != 0 && !isSpaceError(writeError)) {
    persist(before.offset + got);
    throw IoError("cannot write " + dataPath(id).string() + ": " + errnoText(writeError));
  }
  persist(before.offset + got);
  if (writeError != 0) {
    log_.warn(kComponent, "UPLOAD_DISK_FULL", spaceMessage(options_.dir, writeError, s.length - s.offset), id);
    throw InsufficientStorage(spaceMessage(options_.dir, writeError, s.length - s.offset));
  }
  if (got < want) {
    log_.info(kComponent, "UPLOAD_CUT", "body ended after " + std::to_string(got) + " of " +
                                            std::to_string(want) + " bytes; offset " +
                                            std::to_string(s.offset), id);
  }
  AppendResult r{s, std::nullopt};
  if (s.complete() && before.offset < s.length) {
    FinishedUpload f;
    f.id = id;
    f.purpose = s.purpose;
    f.owner = s.owner;
    f.path = dataPath(id);
    f.size = s.length;
    f.sha256Hex = s.sha256SoFar;
    f.metadata = s.metadata;
    r.finished = std::move(f);
    l->hash.reset();
    log_.info(kComponent, "UPLOAD_COMPLETE", s.purpose + " upload of " + std::to_string(s.length) +
                                                 " bytes, sha256 " + s.sha256SoFar, id);
  }
  return r;
}

void UploadStore::remove(const std::string& id, const std::string& owner) {
  if (!validId(id)) throw NotFound("no upload " + id);
  auto l = live(id);
  std::unique_lock<std::mutex> busy(l->busy, std::try_to_lock);
  if (!busy.owns_lock()) {
    throw Locked("upload " + id + " is being appended to; try again when that request has ended",
                 "upload_locked");
  }
  const State s = loadOwned(id, owner);
  removeFiles(id);
  live_.lock()->erase(id);
  log_.info(kComponent, "UPLOAD_DELETED", s.purpose + " upload deleted by " + owner, id);
}

void UploadStore::storeResult(const std::string& id, const http::Response& response) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("status", response.status);
  o->set("content_type", response.contentType);
  o->set("body", crypto::base64Encode(response.body));
  files::atomicWrite(resultPath(id), json::stringify(o) + "\n", 0600);
}

std::optional<http::Response> UploadStore::result(const std::string& id, const std::string& owner) {
  loadOwned(id, owner);
  std::error_code ec;
  if (!fs::exists(resultPath(id), ec)) return std::nullopt;
  auto o = json::parseObject(files::readFile(resultPath(id), 64u << 20));
  http::Response r;
  r.status = o->getValue<int>("status");
  r.contentType = o->getValue<std::string>("content_type");
  r.body = crypto::base64Decode(o->getValue<std::string>("body"));
  return r;
}

std::size_t UploadStore::sweep(Clock::time_point now) {
  std::size_t removed = 0;
  std::error_code ec;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(options_.dir, ec)) entries.push_back(e.path());
  for (const auto& path : entries) {
    const std::string name = path.filename().string();
    const std::string id = name.substr(0, 32);
    if (name.size() == 37 && name.substr(32) == ".json" && validId(id)) {
      State s;
      try {
        s = load(id);
      } catch (const std::exception&) {
        continue;  // unreadable state: judged below by its age like any stray file
      }
      if (s.expiresAt(options_.expireAfter) > now) continue;
      auto l = live(id);
      std::unique_lock<std::mutex> busy(l->busy, std::try_to_lock);
      if (!busy.owns_lock()) continue;  // being appended to: not abandoned
      removeFiles(id);
      live_.lock()->erase(id);
      ++removed;
      log_.info(kComponent, "UPLOAD_EXPIRED",
                s.purpose + " upload of " + s.owner + " removed after " +
                    std::to_string(options_.expireAfter.count()) + " idle minutes at " +
                    std::to_string(s.offset) + " of " + std::to_string(s.length) + " bytes",
                id);
      continue;
    }
    // Anything else (a data file without state, an interrupted atomic write) goes once it is
    // as old as an abandoned upload.
    if (validId(id) && fs::exists(statePath(id), ec)) continue;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) continue;
    if (fromSeconds(st.st_mtime) + options_.expireAfter <= now) {
      fs::remove(path, ec);
      log_.info(kComponent, "UPLOAD_STRAY_REMOVED", "removed a stray file of the uploads directory", name);
    }
  }
  return removed;
}

json::ObjectPtr keepFinishedUpload(const FinishedUpload& upload, const fs::path& kept,
                                   const std::string& what) {
  std::error_code ec;
  fs::rename(upload.path, kept, ec);
  if (ec)
    throw IoError("cannot keep the uploaded " + what + " as " + kept.string() + ": " +
                  ec.message());
  files::fsyncDir(kept.parent_path());
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("upload_id", upload.id);
  o->set("size", upload.size);
  o->set("sha256", upload.sha256Hex);
  return o;
}

}  // namespace vcrm
