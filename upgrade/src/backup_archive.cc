#include "vcrm/upgrade/backup_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>
#include <exception>
#include <map>
#include <set>

#include "archive_ptr.h"
#include "entry_names.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/upgrade/archive_error.h"

namespace vcrm::upgrade {

using detail::isSha256Hex;
using detail::pathProblem;
using detail::printable;

namespace {

using detail::EntryPtr;
using detail::ReadArchivePtr;
using detail::WriteArchivePtr;

constexpr std::size_t kIoPiece = 64u << 10;
constexpr std::size_t kMaxCounts = 32;
// Tar headers, pax records and end padding the archive may hold beyond its members' data.
constexpr std::uint64_t kTarOverheadPerMember = 64u << 10;
constexpr std::uint64_t kTarOverheadFixed = 2u << 20;

[[noreturn]] void refuse(ArchiveReason reason, const std::string& message) {
  throw ArchiveError(reason, message);
}

// A name that is also the directory of another ("tls" and "tls/server.key") cannot be
// extracted; returns such a name, or empty.
std::string fileDirectoryClash(const std::set<std::string>& names) {
  for (const std::string& name : names) {
    for (std::size_t slash = name.find('/'); slash != std::string::npos;
         slash = name.find('/', slash + 1)) {
      if (names.count(name.substr(0, slash)) != 0) return name.substr(0, slash);
    }
  }
  return {};
}

std::string utcNow() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}

// Hashes and counts a source from its start.
ArchiveMember digestOf(const MemberSource& member) {
  ArchiveMember out{member.path, 0, {}};
  auto source = member.open();
  crypto::Sha256 hash;
  std::string buf(kIoPiece, '\0');
  while (const std::size_t n = source->read(buf)) {
    hash.update(buf.data(), n);
    out.size += n;
  }
  out.sha256 = hash.finishHex();
  return out;
}

// ------------------------------------------------------------------------------ manifest JSON

std::string manifestText(const ArchiveInfo& info, const std::vector<ArchiveMember>& members) {
  json::ObjectPtr o = new json::Object;
  o->set("format", info.formatVersion);
  o->set("product", info.product);
  o->set("product_version", info.productVersion);
  o->set("schema_version", info.schemaVersion);
  o->set("source_serial", info.sourceSerial);
  o->set("source_role", info.sourceRole);
  o->set("created_at", info.createdAt);
  o->set("postgresql_version", info.postgresVersion);
  o->set("pg_dump_version", info.pgDumpVersion);
  json::ObjectPtr counts = new json::Object;
  for (const auto& [name, n] : info.counts) counts->set(name, n);
  o->set("counts", counts);
  json::ArrayPtr list = new json::Array;
  for (const ArchiveMember& m : members) {
    json::ObjectPtr e = new json::Object;
    e->set("path", m.path);
    e->set("size", m.size);
    e->set("sha256", m.sha256);
    list->add(e);
  }
  o->set("members", list);
  return json::stringify(o);
}

std::int64_t requireInt(const json::ObjectPtr& o, const std::string& key) {
  const auto v = json::optInt(o, key);
  if (!v) throw InvalidInput("field \"" + key + "\" is missing");
  return *v;
}

// {"conferences": 12, ...}: a few names of at most 32 of [a-z_] with whole numbers of rows.
std::map<std::string, std::int64_t> parseCounts(const json::ObjectPtr& o) {
  if (!o) throw InvalidInput("field \"counts\" must be an object");
  if (o->size() > kMaxCounts) throw InvalidInput("field \"counts\" has too many entries");
  std::map<std::string, std::int64_t> out;
  for (const auto& [name, value] : *o) {
    const bool nameOk = !name.empty() && name.size() <= 32 &&
                        std::all_of(name.begin(), name.end(),
                                    [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; });
    if (!nameOk) throw InvalidInput("field \"counts\" has a name that is not [a-z_]{1,32}");
    const auto n = json::optInt(o, name);
    if (!n || *n < 0) throw InvalidInput("counts." + name + " must be a whole number of rows");
    out[name] = *n;
  }
  return out;
}

Manifest parseManifest(std::string_view text, const ReadOptions& options) {
  Manifest m;
  try {
    const json::ObjectPtr o = json::parseObject(text, 8);
    // The format first: a newer manifest may have fields this version does not know.
    const std::int64_t format = requireInt(o, "format");
    if (format > kArchiveFormatVersion) {
      refuse(ArchiveReason::UnsupportedFormat,
             "the archive's manifest is format version " + std::to_string(format) +
                 ", newer than this vcrm reads (" + std::to_string(kArchiveFormatVersion) +
                 "); restore it with the vcrm version that created it or a newer one");
    }
    if (format < 1) throw InvalidInput("field \"format\" must be at least 1");
    m.info.formatVersion = static_cast<int>(format);
    m.info.product = json::requireString(o, "product", 64);
    if (m.info.product != kArchiveProduct) {
      refuse(ArchiveReason::OtherProduct,
             "this archive was made by " + printable(m.info.product) +
                 ", not by vcrm; only vcrm backup archives can be restored here");
    }
    json::onlyKeys(o, {"format", "product", "product_version", "schema_version", "source_serial",
                       "source_role", "created_at", "postgresql_version", "pg_dump_version",
                       "counts", "members"});
    m.info.productVersion = json::requireString(o, "product_version", 64);
    const std::int64_t schema = requireInt(o, "schema_version");
    if (schema < 0 || schema > 1000000)
      throw InvalidInput("field \"schema_version\" is out of range");
    m.info.schemaVersion = static_cast<int>(schema);
    m.info.sourceSerial = json::requireString(o, "source_serial", 128);
    m.info.sourceRole = json::requireString(o, "source_role", 32);
    m.info.createdAt = json::requireString(o, "created_at", 64);
    m.info.postgresVersion = json::requireString(o, "postgresql_version", 128);
    m.info.pgDumpVersion = json::requireString(o, "pg_dump_version", 128);
    compareVersions(m.info.productVersion, "0");  // throws InvalidInput when not a version
    if (o->has("counts") && !o->isNull("counts"))
      m.info.counts = parseCounts(o->getObject("counts"));

    const json::ArrayPtr list = o->getArray("members");
    if (!list) throw InvalidInput("field \"members\" must be an array");
    if (list->size() > options.limits.maxMembers) {
      refuse(ArchiveReason::LimitExceeded,
             "the archive's manifest lists " + std::to_string(list->size()) +
                 " members, more than the " + std::to_string(options.limits.maxMembers) +
                 " a vcrm archive may hold");
    }
    std::set<std::string> names{std::string(kManifestName)};
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < list->size(); ++i) {
      const json::ObjectPtr e = list->getObject(static_cast<unsigned>(i));
      if (!e) throw InvalidInput("members[" + std::to_string(i) + "] must be an object");
      json::onlyKeys(e, {"path", "size", "sha256"});
      ArchiveMember member;
      member.path = json::requireString(e, "path", 1024);
      const std::int64_t size = requireInt(e, "size");
      member.sha256 = json::requireString(e, "sha256", 64);
      if (const std::string problem = pathProblem(member.path); !problem.empty()) {
        refuse(ArchiveReason::UnsafeMember,
               "the manifest lists a member " + printable(member.path) + " that " + problem);
      }
      if (!names.insert(member.path).second) {
        throw InvalidInput("it lists " + printable(member.path) + " twice");
      }
      if (size < 0) throw InvalidInput("the size of " + printable(member.path) + " is negative");
      member.size = static_cast<std::uint64_t>(size);
      if (member.size > options.limits.maxMemberBytes ||
          total + member.size > options.limits.maxTotalBytes) {
        refuse(ArchiveReason::LimitExceeded,
               "the archive's manifest declares " + printable(member.path) + " of " +
                   std::to_string(member.size) + " bytes, beyond the limits of " +
                   std::to_string(options.limits.maxMemberBytes) + " bytes per member and " +
                   std::to_string(options.limits.maxTotalBytes) + " in all");
      }
      total += member.size;
      if (!isSha256Hex(member.sha256)) {
        throw InvalidInput("the sha256 of " + printable(member.path) +
                           " is not 64 lowercase hex digits");
      }
      m.members.push_back(std::move(member));
    }
    if (const std::string clash = fileDirectoryClash(names); !clash.empty()) {
      throw InvalidInput("it lists " + printable(clash) + " both as a file and as a directory");
    }
  } catch (const InvalidInput& e) {
    refuse(ArchiveReason::ManifestInvalid,
           std::string("the archive's manifest is invalid (") + e.what() +
               "); the archive was not written by vcrm or was edited");
  }
  if (options.compatibleWith) {
    const Compatibility& c = *options.compatibleWith;
    if (compareVersions(m.info.productVersion, c.productVersion) > 0) {
      refuse(ArchiveReason::TooNew, "the archive was made by vcrm " + m.info.productVersion +
                                        ", newer than this vcrm " + c.productVersion +
                                        "; upgrade this server to " + m.info.productVersion +
                                        " or later before restoring it");
    }
    if (m.info.schemaVersion > c.schemaVersion) {
      refuse(ArchiveReason::TooNew,
             "the archive's database schema is version " + std::to_string(m.info.schemaVersion) +
                 ", newer than this vcrm knows (" + std::to_string(c.schemaVersion) +
                 "); upgrade this server before restoring it");
    }
  }
  return m;
}

// ------------------------------------------------------------------------------------ writing

struct WriteContext {
  SealedWriter* sealed = nullptr;
  std::exception_ptr error;
};

la_ssize_t writeCallback(archive* a, void* opaque, const void* data, size_t size) {
  auto* ctx = static_cast<WriteContext*>(opaque);
  try {
    ctx->sealed->write(std::string_view(static_cast<const char*>(data), size));
    return static_cast<la_ssize_t>(size);
  } catch (...) {
    ctx->error = std::current_exception();
    archive_set_error(a, EIO, "the archive's output failed");
    return -1;
  }
}

class TarWriter {
 public:
  TarWriter(SealedWriter& sealed, std::time_t mtime) : mtime_(mtime) {
    ctx_.sealed = &sealed;
    a_.reset(archive_write_new());
    if (!a_) throw IoError("libarchive: cannot allocate a tar writer");
    if (archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_open(a_.get(), &ctx_, nullptr, writeCallback, nullptr) != ARCHIVE_OK) {
      fail("cannot start the tar");
    }
  }

  void header(const std::string& path, std::uint64_t size) {
    EntryPtr entry(archive_entry_new());
    if (!entry) throw IoError("libarchive: cannot allocate a tar entry");
    archive_entry_set_pathname(entry.get(), path.c_str());
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(size));
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0600);
    archive_entry_set_mtime(entry.get(), mtime_, 0);
    if (archive_write_header(a_.get(), entry.get()) != ARCHIVE_OK) fail("cannot write " + path);
  }

  void data(std::string_view bytes) {
    while (!bytes.empty()) {
      const la_ssize_t n = archive_write_data(a_.get(), bytes.data(), bytes.size());
      if (n <= 0) fail("cannot write member data");
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void close() {
    if (archive_write_close(a_.get()) != ARCHIVE_OK) fail("cannot finish the tar");
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    if (ctx_.error) std::rethrow_exception(ctx_.error);
    const char* detail = archive_error_string(a_.get());
    throw IoError("backup archive: " + what + (detail ? std::string(": ") + detail : ""));
  }

  WriteContext ctx_;
  WriteArchivePtr a_;
  std::time_t mtime_;
};

// ------------------------------------------------------------------------------------ reading

// Where in the archive the reader is, for errors that say where the damage is.
struct ReadContext {
  SealedReader* sealed = nullptr;
  std::string buffer = std::string(kIoPiece, '\0');
  std::exception_ptr error;
  std::string where = "in the manifest";
  std::uint64_t budget = 0;  // plaintext bytes the tar may have in all
};

la_ssize_t readCallback(archive* a, void* opaque, const void** out) {
  auto* ctx = static_cast<ReadContext*>(opaque);
  try {
    const std::size_t n = ctx->sealed->read(ctx->buffer);
    if (ctx->sealed->position() > ctx->budget) {
      refuse(ArchiveReason::LimitExceeded,
             "the archive holds more data than its manifest declares (" +
                 std::to_string(ctx->sealed->position()) + " bytes read " + ctx->where +
                 "); it is not a vcrm archive or is built to exhaust the disk");
    }
    *out = ctx->buffer.data();
    return static_cast<la_ssize_t>(n);
  } catch (const ArchiveError& e) {
    // The container's reason, with the member it happened in.
    const std::string lead = e.reason() == ArchiveReason::Truncated
                                 ? "archive truncated " + ctx->where + ": "
                                 : "archive damaged " + ctx->where + ": ";
    ctx->error = std::make_exception_ptr(ArchiveError(e.reason(), lead + e.what()));
  } catch (...) {
    ctx->error = std::current_exception();
  }
  archive_set_error(a, EIO, "the archive's input failed");
  return -1;
}

// Receives each member's data as it is verified; verify passes a visitor that keeps nothing.
class MemberVisitor {
 public:
  virtual ~MemberVisitor() = default;
  virtual ByteSink* begin(const ArchiveMember& member) = 0;  // nullptr: discard the data
  virtual void end(const ArchiveMember& member) = 0;
};

class TarReader {
 public:
  TarReader(ByteSource& in, std::string_view passphrase, const ReadOptions& options)
      : options_(options), sealed_(in, passphrase, options.unseal) {
    ctx_.sealed = &sealed_;
    ctx_.budget = options.limits.maxManifestBytes + kTarOverheadFixed;
    a_.reset(archive_read_new());
    if (!a_) throw IoError("libarchive: cannot allocate a tar reader");
    // The tar format only and no decompression filter: anything else is not ours.
    if (archive_read_support_format_tar(a_.get()) != ARCHIVE_OK ||
        archive_read_open(a_.get(), &ctx_, nullptr, readCallback, nullptr) != ARCHIVE_OK) {
      fail("the decrypted archive is not a tar");
    }
  }

  Manifest manifest() {
    archive_entry* entry = next();
    if (!entry) refuse(ArchiveReason::ManifestInvalid, "the archive is empty: it has no manifest");
    const char* name = archive_entry_pathname(entry);
    if (!name || std::string_view(name) != kManifestName) {
      refuse(ArchiveReason::ManifestInvalid, "the archive does not start with its manifest (" +
                                                 std::string(kManifestName) +
                                                 "); it was not written by vcrm");
    }
    checkEntryType(entry, std::string(kManifestName));
    const auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
    if (size > options_.limits.maxManifestBytes) {
      refuse(ArchiveReason::LimitExceeded,
             "the archive's manifest is " + std::to_string(size) + " bytes, more than the " +
                 std::to_string(options_.limits.maxManifestBytes) + " allowed");
    }
    StringSink text;
    const ArchiveMember asMember{std::string(kManifestName), size, {}};
    copyData(asMember, &text, nullptr);
    if (text.data().size() != size) {
      refuse(ArchiveReason::Truncated, "archive truncated inside the manifest");
    }
    Manifest m = parseManifest(text.data(), options_);
    ctx_.budget =
        size + kTarOverheadFixed + m.totalBytes() + kTarOverheadPerMember * (m.members.size() + 1);
    ctx_.where = "after the manifest";
    return m;
  }

  void members(const Manifest& m, MemberVisitor& visitor) {
    std::map<std::string, const ArchiveMember*> expected;
    for (const ArchiveMember& member : m.members) expected[member.path] = &member;
    std::set<std::string> seen;
    const std::uint64_t total = m.totalBytes();
    std::uint64_t done = 0;
    while (archive_entry* entry = next()) {
      const char* raw = archive_entry_pathname(entry);
      const std::string name = raw ? raw : "";
      checkEntryType(entry, name);
      if (const std::string problem = pathProblem(name); !problem.empty()) {
        refuse(ArchiveReason::UnsafeMember, "the archive's member " + printable(name) + " " +
                                                problem + "; it cannot be restored safely");
      }
      if (name == kManifestName || seen.count(name) != 0) {
        refuse(ArchiveReason::DuplicateMember,
               "the archive holds the member " + printable(name) + " twice");
      }
      const auto it = expected.find(name);
      if (it == expected.end()) {
        refuse(ArchiveReason::UnlistedMember, "the archive holds a member " + printable(name) +
                                                  " that its manifest does not list");
      }
      const ArchiveMember& want = *it->second;
      const auto size = static_cast<std::uint64_t>(archive_entry_size(entry));
      if (!archive_entry_size_is_set(entry) || size != want.size) {
        refuse(ArchiveReason::SizeMismatch,
               "member " + printable(name) + " is " + std::to_string(size) +
                   " bytes in the tar but its manifest says " + std::to_string(want.size));
      }
      seen.insert(name);
      ctx_.where = "inside member " + printable(name);
      ByteSink* sink = visitor.begin(want);
      const std::string digest = copyData(want, sink, [&](std::uint64_t n) {
        done += n;
        if (options_.progress) options_.progress(done, total);
      });
      if (!crypto::constantTimeEqual(digest, want.sha256)) {
        refuse(ArchiveReason::HashMismatch, "member " + printable(name) +
                                                " does not match its SHA-256 in the manifest; the "
                                                "archive was altered after it was made");
      }
      visitor.end(want);
      ctx_.where = "after member " + printable(name);
    }
    for (const ArchiveMember& member : m.members) {
      if (seen.count(member.path) == 0) {
        refuse(ArchiveReason::MissingMember,
               "member " + printable(member.path) + " listed in the archive's manifest is missing");
      }
    }
    // The tar's end padding, then the container's authenticated end.
    ctx_.where = "after the end of the tar";
    std::string rest(kIoPiece, '\0');
    while (const std::size_t n = sealed_.read(rest)) {
      if (sealed_.position() > ctx_.budget ||
          std::any_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(n),
                      [](char c) { return c != 0; })) {
        refuse(ArchiveReason::TrailingData,
               "the archive has data after the end of its tar; it was not written by vcrm");
      }
    }
  }

 private:
  archive_entry* next() {
    archive_entry* entry = nullptr;
    const int rc = archive_read_next_header(a_.get(), &entry);
    if (rc == ARCHIVE_EOF) return nullptr;
    if (rc != ARCHIVE_OK) fail("the tar inside the archive is malformed " + ctx_.where);
    return entry;
  }

  // Copies the entry's data to `sink` (may be null) and returns its SHA-256 hex.
  std::string copyData(const ArchiveMember& member, ByteSink* sink,
                       const std::function<void(std::uint64_t)>& progress) {
    crypto::Sha256 hash;
    std::string buf(kIoPiece, '\0');
    std::uint64_t got = 0;
    for (;;) {
      const la_ssize_t n = archive_read_data(a_.get(), buf.data(), buf.size());
      if (n < 0)
        fail("the tar inside the archive is malformed in member " + printable(member.path));
      if (n == 0) break;
      const std::string_view piece(buf.data(), static_cast<std::size_t>(n));
      got += piece.size();
      hash.update(piece);
      if (sink) sink->write(piece);
      if (progress) progress(piece.size());
    }
    if (got != member.size) {
      refuse(ArchiveReason::Truncated, "archive truncated inside member " + printable(member.path));
    }
    return hash.finishHex();
  }

  void checkEntryType(archive_entry* entry, const std::string& name) {
    if (const char* kind = detail::unsafeEntryKind(entry, /*allowDirectories=*/false)) {
      refuse(ArchiveReason::UnsafeMember, "the archive's member " + printable(name) + " is " +
                                              kind + "; a vcrm archive holds only regular files");
    }
    if ((archive_entry_mode(entry) & 07000) != 0) {
      refuse(ArchiveReason::UnsafeMember,
             "the archive's member " + printable(name) + " has setuid, setgid or sticky bits");
    }
    if (archive_entry_sparse_count(entry) > 0) {
      refuse(ArchiveReason::LimitExceeded,
             "the archive's member " + printable(name) +
                 " is a sparse file, which could expand far beyond its stored size");
    }
  }

  [[noreturn]] void fail(const std::string& what) {
    if (ctx_.error) std::rethrow_exception(ctx_.error);
    const char* detail = archive_error_string(a_.get());
    refuse(ArchiveReason::NotATar, what + (detail ? std::string(" (") + detail + ")" : "") +
                                       "; it was not written by vcrm");
  }

  const ReadOptions& options_;
  SealedReader sealed_;
  ReadContext ctx_;
  ReadArchivePtr a_;
};

class DiscardVisitor : public MemberVisitor {
 public:
  ByteSink* begin(const ArchiveMember&) override { return nullptr; }
  void end(const ArchiveMember&) override {}
};

// Writes members under a directory it created, refusing to follow anything it did not create.
class ExtractVisitor : public MemberVisitor {
 public:
  explicit ExtractVisitor(const std::filesystem::path& dir) : dir_(dir) {
    if (::mkdir(dir.c_str(), 0700) != 0) {
      if (errno == EEXIST) {
        throw Conflict("cannot restore into " + dir.string() +
                       ": it already exists; extraction needs a directory that does not exist");
      }
      throw IoError("cannot create " + dir.string() + ": " + errnoText(errno));
    }
    root_ = openDir(AT_FDCWD, dir.c_str(), dir.string());
  }

  ByteSink* begin(const ArchiveMember& member) override {
    int parent = root_.get();
    std::string sofar;
    std::string_view rest = member.path;
    for (std::size_t slash; (slash = rest.find('/')) != std::string_view::npos;) {
      const std::string part(rest.substr(0, slash));
      sofar += part + "/";
      rest.remove_prefix(slash + 1);
      auto it = dirs_.find(sofar);
      if (it == dirs_.end()) {
        if (::mkdirat(parent, part.c_str(), 0700) != 0) {
          throw IoError("cannot create " + (dir_ / sofar).string() + ": " + errnoText(errno));
        }
        it = dirs_.emplace(sofar, openDir(parent, part.c_str(), (dir_ / sofar).string())).first;
      }
      parent = it->second.get();
    }
    const std::string leaf(rest);
    file_ = files::Fd(
        ::openat(parent, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!file_) {
      throw IoError("cannot create " + (dir_ / member.path).string() + ": " + errnoText(errno));
    }
    sink_ = std::make_unique<FdSink>(file_.get(), (dir_ / member.path).string());
    return sink_.get();
  }

  void end(const ArchiveMember& member) override {
    if (::fsync(file_.get()) != 0) {
      throw IoError("cannot fsync " + (dir_ / member.path).string() + ": " + errnoText(errno));
    }
    sink_.reset();
    file_.reset();
  }

  void finish() {
    for (const auto& [path, fd] : dirs_) ::fsync(fd.get());
    ::fsync(root_.get());
    files::fsyncDir(dir_.parent_path().empty() ? "." : dir_.parent_path());
  }

 private:
  static files::Fd openDir(int parent, const char* name, const std::string& what) {
    files::Fd fd(::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) throw IoError("cannot open " + what + ": " + errnoText(errno));
    return fd;
  }

  std::filesystem::path dir_;
  files::Fd root_;
  std::map<std::string, files::Fd> dirs_;
  files::Fd file_;
  std::unique_ptr<FdSink> sink_;
};

class FileSource : public ByteSource {
 public:
  explicit FileSource(const std::filesystem::path& path)
      : fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)), source_(fd_.get(), path.string()) {
    if (!fd_) throw IoError("cannot open " + path.string() + ": " + errnoText(errno));
  }
  std::size_t read(std::span<char> buffer) override { return source_.read(buffer); }

 private:
  files::Fd fd_;
  FdSource source_;
};

class OwnedStringSource : public ByteSource {
 public:
  explicit OwnedStringSource(std::shared_ptr<const std::string> data)
      : data_(std::move(data)), source_(*data_) {}
  std::size_t read(std::span<char> buffer) override { return source_.read(buffer); }

 private:
  std::shared_ptr<const std::string> data_;
  StringSource source_;
};

}  // namespace

std::uint64_t Manifest::totalBytes() const {
  std::uint64_t total = 0;
  for (const ArchiveMember& m : members) total += m.size;
  return total;
}

std::string manifestJson(const Manifest& manifest) {
  return manifestText(manifest.info, manifest.members);
}

MemberSource memberFromFile(std::string path, std::filesystem::path file) {
  return MemberSource{std::move(path), [file = std::move(file)]() -> std::unique_ptr<ByteSource> {
                        return std::make_unique<FileSource>(file);
                      }};
}

MemberSource memberFromBytes(std::string path, std::string bytes) {
  auto shared = std::make_shared<const std::string>(std::move(bytes));
  return MemberSource{std::move(path), [shared]() -> std::unique_ptr<ByteSource> {
                        return std::make_unique<OwnedStringSource>(shared);
                      }};
}

int compareVersions(std::string_view a, std::string_view b) {
  auto parts = [](std::string_view v) {
    std::vector<std::uint64_t> out;
    if (v.empty()) throw InvalidInput("a version is empty");
    std::size_t start = 0;
    while (start <= v.size()) {
      const std::size_t dot = std::min(v.find('.', start), v.size());
      std::uint64_t n = 0;
      const auto [ptr, ec] = std::from_chars(v.data() + start, v.data() + dot, n);
      if (ec != std::errc() || ptr != v.data() + dot || dot == start) {
        throw InvalidInput("version \"" + std::string(v.substr(0, 64)) +
                           "\" is not numbers separated by dots");
      }
      out.push_back(n);
      start = dot + 1;
    }
    return out;
  };
  std::vector<std::uint64_t> x = parts(a);
  std::vector<std::uint64_t> y = parts(b);
  const std::size_t n = std::max(x.size(), y.size());
  x.resize(n, 0);
  y.resize(n, 0);
  return x < y ? -1 : (x > y ? 1 : 0);
}

Manifest writeArchive(ByteSink& out, std::string_view passphrase, const ArchiveInfo& info,
                      const std::vector<MemberSource>& members, const WriteOptions& options) {
  Manifest manifest;
  manifest.info = info;
  manifest.info.formatVersion = kArchiveFormatVersion;
  manifest.info.product = std::string(kArchiveProduct);
  if (manifest.info.createdAt.empty()) manifest.info.createdAt = utcNow();
  compareVersions(manifest.info.productVersion, "0");  // a version the reader will accept

  std::set<std::string> names{std::string(kManifestName)};
  for (const MemberSource& member : members) {
    if (const std::string problem = pathProblem(member.path); !problem.empty()) {
      throw InvalidInput("backup member " + printable(member.path) + " " + problem);
    }
    if (!names.insert(member.path).second) {
      throw InvalidInput("backup member " + printable(member.path) + " is named twice");
    }
    manifest.members.push_back(digestOf(member));
  }
  if (const std::string clash = fileDirectoryClash(names); !clash.empty()) {
    throw InvalidInput("backup member " + printable(clash) +
                       " is named both as a file and as "
                       "the directory of another member");
  }
  const std::string text = manifestText(manifest.info, manifest.members);

  SealedWriter sealed(out, passphrase, options.seal);
  TarWriter tar(sealed, std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()));
  tar.header(std::string(kManifestName), text.size());
  tar.data(text);

  const std::uint64_t total = manifest.totalBytes();
  std::uint64_t done = 0;
  std::string buf(kIoPiece, '\0');
  for (std::size_t i = 0; i < members.size(); ++i) {
    const ArchiveMember& want = manifest.members[i];
    tar.header(want.path, want.size);
    auto source = members[i].open();
    crypto::Sha256 hash;
    std::uint64_t size = 0;
    while (const std::size_t n = source->read(buf)) {
      // Never more than the header promised: the tar would be corrupt.
      if (size + n > want.size) break;
      const std::string_view piece(buf.data(), n);
      hash.update(piece);
      tar.data(piece);
      size += n;
      done += n;
      if (options.progress) options.progress(done, total);
    }
    if (size != want.size || hash.finishHex() != want.sha256) {
      throw IoError("backup member " + printable(want.path) +
                    " changed while the archive was written; make it again from a snapshot");
    }
  }
  tar.close();
  sealed.finish();
  return manifest;
}

Manifest readManifest(ByteSource& in, std::string_view passphrase, const ReadOptions& options) {
  TarReader reader(in, passphrase, options);
  return reader.manifest();
}

Manifest verifyArchive(ByteSource& in, std::string_view passphrase, const ReadOptions& options) {
  TarReader reader(in, passphrase, options);
  Manifest m = reader.manifest();
  DiscardVisitor discard;
  reader.members(m, discard);
  return m;
}

Manifest extractArchive(ByteSource& in, std::string_view passphrase,
                        const std::filesystem::path& freshDir, const ReadOptions& options) {
  TarReader reader(in, passphrase, options);
  Manifest m = reader.manifest();
  std::optional<ExtractVisitor> extract;
  extract.emplace(freshDir);  // throws before anything is written when the directory exists
  try {
    reader.members(m, *extract);
    extract->finish();
  } catch (...) {
    extract.reset();
    std::error_code ignored;
    std::filesystem::remove_all(freshDir, ignored);
    throw;
  }
  return m;
}

}  // namespace vcrm::upgrade
