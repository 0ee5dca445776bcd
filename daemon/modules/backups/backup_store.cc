#include "modules/backups/backup_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <regex>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kArchiveExt = ".vcrmbak";
constexpr const char* kPartExt = ".vcrmbak.part";
constexpr const char* kWorkPrefix = ".work-";

bool validId(const std::string& id) {
  static const std::regex re("^vcrm-[0-9A-Z-]{1,40}-[0-9]{8}T[0-9]{6}Z$");
  return id.size() <= 80 && std::regex_match(id, re);
}

std::string stamp(std::chrono::system_clock::time_point at, const char* format) {
  const std::time_t t = std::chrono::system_clock::to_time_t(at);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), format, &tm);
  return buf.data();
}

bool endsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

[[noreturn]] void notFound(const std::string& id) {
  throw NotFound("no backup archive \"" + id.substr(0, 80) +
                     "\" on this appliance; GET /api/v1/backups lists the ones there are",
                 "backup_not_found");
}

}  // namespace

std::string isoUtc(std::chrono::system_clock::time_point at) {
  return stamp(at, "%Y-%m-%dT%H:%M:%SZ");
}

json::ObjectPtr BackupRecord::toJson() const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", id);
  o->set("file", id + kArchiveExt);
  o->set("size", size);
  o->set("created_at", createdAt);
  o->set("origin", origin);
  o->set("created_by", createdBy);
  o->set("product_version", info.productVersion);
  o->set("schema_version", info.schemaVersion);
  o->set("source_serial", info.sourceSerial);
  o->set("source_role", info.sourceRole);
  o->set("postgresql_version", info.postgresVersion);
  o->set("pg_dump_version", info.pgDumpVersion);
  json::ObjectPtr counts = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  for (const auto& [name, n] : info.counts) counts->set(name, n);
  o->set("counts", counts);
  o->set("member_bytes", memberBytes);
  json::ObjectPtr copy = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  copy->set("state", copyState);
  copy->set("target", copyTarget);
  copy->set("error", copyError);
  copy->set("copied_at", copiedAt);
  o->set("copy", copy);
  return o;
}

BackupRecord BackupRecord::fromJson(const json::ObjectPtr& o) {
  BackupRecord r;
  r.id = json::requireString(o, "id", 100);
  r.size = static_cast<std::uint64_t>(json::optInt(o, "size").value_or(0));
  r.createdAt = json::optString(o, "created_at", 64).value_or("");
  r.origin = json::optString(o, "origin", 32).value_or("manual");
  r.createdBy = json::optString(o, "created_by", 200).value_or("");
  r.info.productVersion = json::optString(o, "product_version", 64).value_or("");
  r.info.schemaVersion = static_cast<int>(json::optInt(o, "schema_version").value_or(0));
  r.info.sourceSerial = json::optString(o, "source_serial", 128).value_or("");
  r.info.sourceRole = json::optString(o, "source_role", 32).value_or("");
  r.info.postgresVersion = json::optString(o, "postgresql_version", 128).value_or("");
  r.info.pgDumpVersion = json::optString(o, "pg_dump_version", 128).value_or("");
  if (auto counts = o->getObject("counts")) {
    for (const auto& [name, value] : *counts)
      r.info.counts[name] = json::optInt(counts, name).value_or(0);
  }
  r.memberBytes = static_cast<std::uint64_t>(json::optInt(o, "member_bytes").value_or(0));
  if (auto copy = o->getObject("copy")) {
    r.copyState = json::optString(copy, "state", 32).value_or("none");
    r.copyTarget = json::optString(copy, "target", 1024).value_or("");
    r.copyError = json::optString(copy, "error", 4096).value_or("");
    r.copiedAt = json::optString(copy, "copied_at", 64).value_or("");
  }
  return r;
}

BackupStore::BackupStore(fs::path dir) : dir_(std::move(dir)) {
  files::ensureDir(dir_, 0700);
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (endsWith(name, kPartExt) || name.rfind(kWorkPrefix, 0) == 0)
      fs::remove_all(entry.path(), ec);
  }
}

// The serial without its check symbol, which may be one of "*~$=U" (licensing/src/serial.cc):
// "*" and "$" have no place in a file name a shell, a URL or an SFTP server takes as it is.
std::string BackupStore::idSerial(const std::string& serial) {
  const auto dash = serial.rfind('-');
  std::string out =
      dash == std::string::npos || dash + 2 != serial.size() ? serial : serial.substr(0, dash);
  std::erase_if(
      out, [](char c) { return !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || c == '-'); });
  return out.empty() ? "X" : out;
}

std::string BackupStore::newId(const std::string& serial,
                               std::chrono::system_clock::time_point at) const {
  for (;; at += std::chrono::seconds(1)) {
    const std::string id = "vcrm-" + idSerial(serial) + "-" + stamp(at, "%Y%m%dT%H%M%SZ");
    std::error_code ec;
    if (!fs::exists(archivePath(id), ec) && !fs::exists(partPath(id), ec)) return id;
  }
}

fs::path BackupStore::archivePath(const std::string& id) const {
  return dir_ / (id + kArchiveExt);
}
fs::path BackupStore::partPath(const std::string& id) const {
  return dir_ / (id + kPartExt);
}
fs::path BackupStore::workDir(const std::string& id) const {
  return dir_ / (kWorkPrefix + id);
}
fs::path BackupStore::sidecarPath(const std::string& id) const {
  return dir_ / (id + ".json");
}

BackupRecord BackupStore::fromFiles(const std::string& id) const {
  struct stat st {};
  if (::lstat(archivePath(id).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) notFound(id);
  BackupRecord r;
  try {
    r = BackupRecord::fromJson(
        json::parseObject(files::readFile(sidecarPath(id), 1u << 20, files::Links::Refuse)));
  } catch (const std::exception&) {
    // No sidecar (copied in by hand, or lost): what the file itself says.
    r = BackupRecord{};
    r.origin = "unknown";
    r.createdAt = isoUtc(std::chrono::system_clock::from_time_t(st.st_mtime));
  }
  r.id = id;
  r.size = static_cast<std::uint64_t>(st.st_size);
  return r;
}

std::vector<BackupRecord> BackupStore::list() const {
  std::vector<BackupRecord> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string name = entry.path().filename().string();
    if (!endsWith(name, kArchiveExt)) continue;
    const std::string id = name.substr(0, name.size() - std::string(kArchiveExt).size());
    if (!validId(id)) continue;
    try {
      out.push_back(fromFiles(id));
    } catch (const NotFound&) {  // NOLINT(bugprone-empty-catch): removed meanwhile
    }
  }
  std::sort(out.begin(), out.end(), [](const BackupRecord& a, const BackupRecord& b) {
    return a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id > b.id;
  });
  return out;
}

BackupRecord BackupStore::get(const std::string& id) const {
  if (!validId(id)) notFound(id);
  return fromFiles(id);
}

void BackupStore::writeRecord(const BackupRecord& record) const {
  files::atomicWrite(sidecarPath(record.id), json::stringify(record.toJson()) + "\n", 0600);
}

void BackupStore::remove(const std::string& id) const {
  get(id);
  std::error_code ec;
  if (!fs::remove(archivePath(id), ec) && ec) {
    throw IoError("cannot remove " + archivePath(id).string() + ": " + ec.message());
  }
  fs::remove(sidecarPath(id), ec);
  files::fsyncDir(dir_);
}

}  // namespace vcrm
