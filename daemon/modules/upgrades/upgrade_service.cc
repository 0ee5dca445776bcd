#include "modules/upgrades/upgrade_service.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <system_error>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/daemon/uploads.h"
#include "vcrm/licensing/licence.h"
#include "vcrm/upgrade/backup_archive.h"
#include "vcrm/upgrade/slots.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "upgrade";
constexpr std::size_t kMaxKeyringBytes = 1 << 20;
// Room beyond the files' bytes an extraction must find free in the slots' file system.
constexpr std::uint64_t kFreeSpaceMargin = std::uint64_t{64} << 20;

// Refusals the operator can clear on this appliance (install the key, upgrade to the floor
// first, allow the downgrade, apply a licence) keep the upload for another try; every other
// refusal is about the file itself, which is removed at once.
bool uploadWorthKeeping(upgrade::BundleReason r) {
  using upgrade::BundleReason;
  return r == BundleReason::KeyUnknown || r == BundleReason::BelowVersionFloor ||
         r == BundleReason::Downgrade || r == BundleReason::NotEntitled;
}

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json::ObjectPtr headerJson(const upgrade::BundleHeader& h) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("format_version", h.formatVersion);
  o->set("manifest_offset", h.manifestOffset);
  o->set("manifest_length", h.manifestLength);
  o->set("signature_offset", h.signatureOffset);
  o->set("signature_length", h.signatureLength);
  o->set("payload_offset", h.payloadOffset);
  o->set("payload_length", h.payloadLength);
  return o;
}

upgrade::BundleHeader headerOf(const json::ObjectPtr& o) {
  upgrade::BundleHeader h;
  h.formatVersion = o->getValue<std::uint32_t>("format_version");
  h.manifestOffset = o->getValue<std::uint64_t>("manifest_offset");
  h.manifestLength = o->getValue<std::uint64_t>("manifest_length");
  h.signatureOffset = o->getValue<std::uint64_t>("signature_offset");
  h.signatureLength = o->getValue<std::uint64_t>("signature_length");
  h.payloadOffset = o->getValue<std::uint64_t>("payload_offset");
  h.payloadLength = o->getValue<std::uint64_t>("payload_length");
  return h;
}

std::string pendingJson(const PendingBundle& p) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", p.id);
  o->set("file", p.file.string());
  o->set("sha256", p.sha256);
  o->set("verified_at", p.verifiedAt);
  o->set("verified_by", p.verifiedBy);
  o->set("allow_downgrade", p.allowDowngrade);
  o->set("key_id", p.info.keyId);
  o->set("file_size", p.info.fileSize);
  o->set("header", headerJson(p.info.header));
  o->set("manifest", upgrade::bundleManifestJson(p.info.manifest));
  return json::stringify(o) + "\n";
}

// The nearest directory that exists on the way to `p` (the slots may not exist yet).
fs::path existingAncestor(fs::path p) {
  std::error_code ec;
  while (!p.empty() && !fs::is_directory(p, ec) && p != p.root_path()) p = p.parent_path();
  return p.empty() ? fs::path("/") : p;
}

}  // namespace

UpgradeService::UpgradeService(Deps deps)
    : deps_(std::move(deps)),
      dir_(deps_.config.paths.upgradeDir()),
      uploads_(deps_.config.paths.upgradeDir() / "uploads") {}

fs::path UpgradeService::uploadFile(const std::string& id) const {
  return uploads_ / (id + ".bin");
}

void UpgradeService::publish(const std::string& state, const PendingBundle& p) const {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("state", state);
  o->set("id", p.id);
  o->set("version", p.info.manifest.release.version);
  deps_.bus.publish("upgrade", json::stringify(o));
}

void UpgradeService::removeUpload(const std::string& id) const {
  std::error_code ec;
  fs::remove(uploadFile(id), ec);
  fs::remove(uploads_ / (id + ".sha256"), ec);
}

json::ObjectPtr UpgradeService::keepUpload(const FinishedUpload& upload) {
  files::ensureDir(dir_, 0700);
  files::ensureDir(uploads_, 0700);
  ::chmod(dir_.c_str(), 0700);  // whatever made it, only root reads what is kept here
  ::chmod(uploads_.c_str(), 0700);
  files::atomicWrite(uploads_ / (upload.id + ".sha256"), upload.sha256Hex + "\n", 0600);
  json::ObjectPtr answer;
  try {
    answer = keepFinishedUpload(upload, uploadFile(upload.id), "bundle");
  } catch (...) {
    removeUpload(upload.id);
    throw;
  }
  deps_.log.info(kComponent, "BUNDLE_UPLOADED",
                 "upgrade bundle uploaded by " + upload.owner + " (" + std::to_string(upload.size) +
                     " bytes); verify it with POST /api/v1/upgrade {\"upload_id\": ...}",
                 upload.id);
  return answer;
}

upgrade::BundleKeyring UpgradeService::trustedKeys() const {
  const fs::path path = deps_.config.bundleKeyring();
  const std::string where = "put the vendor's bundle signing public key file at " + path.string() +
                            " (setting upgrade.keyring names another file), then verify again; "
                            "the upload is kept";
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    throw Conflict(
        "no trusted bundle signing keys are installed, so no bundle can be verified: " + where,
        "bundle_keyring_missing");
  }
  if (!S_ISREG(st.st_mode) || (st.st_mode & 022) != 0 ||
      (st.st_uid != 0 && st.st_uid != ::geteuid())) {
    throw Conflict("the bundle keyring " + path.string() +
                       " is not trusted: it must be a regular file owned by root (or vcrmd's "
                       "user) that only its owner can write; fix its owner and mode "
                       "(chmod 644) and verify again",
                   "bundle_keyring_untrusted");
  }
  upgrade::BundleKeyring ring;
  try {
    ring = upgrade::BundleKeyring::parse(
        files::readFile(path, kMaxKeyringBytes, files::Links::Refuse), path.string());
  } catch (const Error& e) {
    throw Conflict(std::string("the bundle keyring cannot be used: ") + e.what() +
                       "; fix the file (one \"key <id> ed25519 <base64>\" or \"revoked <id>\" "
                       "a line) and verify again",
                   "bundle_keyring_invalid");
  }
  if (!ring.hasKeys()) {
    throw Conflict("the bundle keyring " + path.string() +
                       " holds no key, so no bundle can be verified: " + where,
                   "bundle_keyring_missing");
  }
  return ring;
}

upgrade::InstalledFacts UpgradeService::installedFacts(bool allowDowngrade) {
  return upgrade::InstalledFacts{std::string(upgrade::kApplianceCompatible), deps_.version,
                                 deps_.licence.upgradesUntil(), allowDowngrade};
}

void UpgradeService::requireFreeSpace(const upgrade::BundleManifest& manifest) const {
  const upgrade::SlotLayout layout(deps_.config.paths.root);
  const fs::path at = existingAncestor(layout.base() / "slots");
  struct statvfs vfs {};
  if (::statvfs(at.c_str(), &vfs) != 0) {
    throw IoError("cannot read the free space of " + at.string() + ": " + errnoText(errno));
  }
  const std::uint64_t free = static_cast<std::uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const std::uint64_t needed =
      manifest.totalFileBytes() + 4096 * (manifest.entries.size() + 1) + kFreeSpaceMargin;
  if (free < needed) {
    throw InsufficientStorage("installing this bundle needs " + std::to_string(needed >> 20) +
                              " MiB free in " + at.string() + " and " + std::to_string(free >> 20) +
                              " MiB are free; remove old uploads or backups, then verify again");
  }
}

json::ObjectPtr UpgradeService::verify(const json::ObjectPtr& body, const User& user) {
  json::onlyKeys(body, {"upload_id", "allow_downgrade"});
  const std::string id = json::requireString(body, "upload_id", 128);
  const bool askedDowngrade = json::optBool(body, "allow_downgrade").value_or(false);
  if (!UploadStore::validId(id)) {
    throw NotFound("no uploaded bundle with id \"" + id + "\"", "upload_not_found");
  }
  const fs::path file = uploadFile(id);
  const files::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  struct stat st {};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw NotFound("no finished upload \"" + id +
                       "\": upload the bundle to /api/v1/upgrade/uploads first (an upload "
                       "nobody verified is removed after uploads.expire_minutes)",
                   "upload_not_found");
  }
  const upgrade::BundleKeyring keyring = trustedKeys();
  const bool isAdmin = user.hasRole("admin");
  upgrade::BundleInfo info;
  try {
    info = upgrade::verifyBundle(fd.get(), keyring);
    upgrade::verifyBundleFileHashes(fd.get(), info);
    try {
      upgrade::checkUpgradePolicy(info.manifest.release, installedFacts(askedDowngrade && isAdmin));
    } catch (const upgrade::BundleRefused& e) {
      if (e.reason() != upgrade::BundleReason::Downgrade || !askedDowngrade || isAdmin) throw;
      throw upgrade::BundleRefused(
          e.reason(), std::string(e.what()) + " (only an admin may allow a downgrade)");
    }
  } catch (const upgrade::BundleRefused& e) {
    deps_.log.warn(kComponent, "BUNDLE_REFUSED", std::string(e.code()) + ": " + e.what(), id);
    if (!uploadWorthKeeping(e.reason()) && !isPending(id)) removeUpload(id);
    throw;
  }
  requireFreeSpace(info.manifest);

  PendingBundle p;
  p.id = id;
  p.file = file;
  try {
    p.sha256 = files::readFile(uploads_ / (id + ".sha256"), 256, files::Links::Refuse);
    while (!p.sha256.empty() && p.sha256.back() == '\n') p.sha256.pop_back();
  } catch (const IoError&) {  // NOLINT(bugprone-empty-catch): shown as unknown
  }
  p.verifiedAt = licensing::formatUtcTime(nowSeconds());
  p.verifiedBy = user.username;
  p.allowDowngrade = askedDowngrade && isAdmin;
  p.info = std::move(info);
  {
    auto lock = commit_.lock();
    if (::fstat(fd.get(), &st) != 0 || st.st_nlink == 0) {
      throw NotFound("the upload \"" + id + "\" was removed while it was verified; upload it again",
                     "upload_not_found");
    }
    std::optional<PendingBundle> previous;
    try {
      previous = pending();
    } catch (const IoError& e) {  // replaced by this one; its file is swept as unverified
      deps_.log.warn(kComponent, "PENDING_UNREADABLE", std::string(e.what()) + "; replaced", id);
    }
    files::atomicWrite(dir_ / "pending.json", pendingJson(p), 0600);
    if (previous && previous->id != id) removeUpload(previous->id);
  }
  publish("verified", p);
  deps_.log.info(kComponent, "BUNDLE_VERIFIED",
                 "upgrade bundle " + p.info.manifest.release.version + " signed by " +
                     p.info.keyId + " verified; waiting for confirmation",
                 id);
  return describe(p);
}

bool UpgradeService::isPending(const std::string& id) const {
  try {
    const auto p = pending();
    return p && p->id == id;
  } catch (const IoError&) {
    return true;  // cannot tell: keep the file
  }
}

std::optional<PendingBundle> UpgradeService::pending() const {
  const fs::path path = dir_ / "pending.json";
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return std::nullopt;
  try {
    const auto o = json::parseObject(files::readFile(path, 16u << 20, files::Links::Refuse));
    PendingBundle p;
    p.id = o->getValue<std::string>("id");
    p.file = o->getValue<std::string>("file");
    p.sha256 = o->getValue<std::string>("sha256");
    p.verifiedAt = o->getValue<std::string>("verified_at");
    p.verifiedBy = o->getValue<std::string>("verified_by");
    p.allowDowngrade = o->getValue<bool>("allow_downgrade");
    p.info.keyId = o->getValue<std::string>("key_id");
    p.info.fileSize = o->getValue<std::uint64_t>("file_size");
    p.info.header = headerOf(o->getObject("header"));
    p.info.manifest = upgrade::parseBundleManifest(o->getValue<std::string>("manifest"));
    return p;
  } catch (const std::exception& e) {
    throw IoError(path.string() + " cannot be read (" + e.what() +
                  "); discard the pending bundle (DELETE /api/v1/upgrade/pending) and verify it "
                  "again");
  }
}

json::ObjectPtr UpgradeService::describe(const PendingBundle& p) {
  const upgrade::BundleRelease& r = p.info.manifest.release;
  const auto until = deps_.licence.upgradesUntil();
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", p.id);
  o->set("state", "verified");
  o->set("version", r.version);
  o->set("release_date", r.releaseDate);
  o->set("compatible", r.compatible);
  o->set("min_version", r.minVersion);
  o->set("notes", r.notes);
  o->set("key_id", p.info.keyId);
  o->set("size", p.info.fileSize);
  o->set("sha256", p.sha256);
  o->set("files", p.info.manifest.entries.size());
  o->set("install_bytes", p.info.manifest.totalFileBytes());
  o->set("running_version", deps_.version);
  o->set("downgrade", upgrade::compareVersions(r.version, deps_.version) <= 0);
  o->set("allow_downgrade", p.allowDowngrade);
  // The licence now: one applied since verification may have changed the answer.
  o->set("entitled", !until || r.releaseDate <= *until);
  o->set("licence_upgrades_until", until ? Poco::Dynamic::Var(*until) : Poco::Dynamic::Var());
  o->set("verified_at", p.verifiedAt);
  o->set("verified_by", p.verifiedBy);
  return o;
}

json::ObjectPtr UpgradeService::status() {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  std::optional<PendingBundle> p;
  std::string unreadable;
  try {
    p = pending();
  } catch (const IoError& e) {
    unreadable = e.what();
  }
  o->set("state", p ? "verified" : "idle");
  json::ObjectPtr running = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  running->set("version", deps_.version);
  running->set("schema", deps_.schema);
  running->set("compatible", std::string(upgrade::kApplianceCompatible));
  const upgrade::SlotLayout layout(deps_.config.paths.root);
  try {
    if (const auto slot = layout.current()) {
      running->set("slot", upgrade::slotName(*slot));
    } else {
      running->set("slot", Poco::Dynamic::Var());
      running->set("slot_note", "nothing is installed in a slot under " + layout.base().string() +
                                    " (this vcrmd runs from elsewhere), so an upgrade cannot be "
                                    "applied here");
    }
  } catch (const Error& e) {
    running->set("slot", Poco::Dynamic::Var());
    running->set("slot_note", e.what());
  }
  o->set("running", running);
  o->set("pending", p ? Poco::Dynamic::Var(describe(*p)) : Poco::Dynamic::Var());
  if (!unreadable.empty()) o->set("pending_error", unreadable);
  std::optional<upgrade::JournalRecord> r;
  try {
    r = upgrade::UpgradeLayout(deps_.config.paths.root).journal().load();
  } catch (const Error& e) {
    o->set("upgrade_error", std::string(e.what()));
  }
  o->set("upgrade", r ? Poco::Dynamic::Var(upgradeRecordJson(*r)) : Poco::Dynamic::Var());
  if (job_.lock()->running || (r && !r->finished())) o->set("state", "applying");
  Poco::Dynamic::Var previous;
  try {
    if (r && r->operation == "upgrade" && r->phase == upgrade::JournalPhase::Done &&
        layout.current() && upgrade::slotName(*layout.current()) == r->fact(upgrade::kFactToSlot)) {
      json::ObjectPtr prev = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      prev->set("slot", r->fact(upgrade::kFactFromSlot));
      prev->set("version", r->fact(upgrade::kFactFromVersion));
      previous = prev;
    }
  } catch (const Error&) {  // NOLINT(bugprone-empty-catch): the slot error is shown above
  }
  o->set("previous", previous);
  o->set("history", historyJson());
  return o;
}

void UpgradeService::discard() {
  auto lock = commit_.lock();
  std::optional<PendingBundle> p;
  try {
    p = pending();
  } catch (const IoError& e) {
    // Unreadable: dropping the record is the way out; its file is swept as an unverified one.
    deps_.log.warn(kComponent, "PENDING_UNREADABLE", std::string(e.what()) + "; discarded");
    fs::remove(dir_ / "pending.json");
    files::fsyncDir(dir_);
    return;
  }
  if (!p) throw NotFound("no verified bundle is waiting for confirmation", "no_pending_bundle");
  std::error_code ec;
  fs::remove(dir_ / "pending.json", ec);
  files::fsyncDir(dir_);
  removeUpload(p->id);
  publish("discarded", *p);
  deps_.log.info(kComponent, "BUNDLE_DISCARDED",
                 "the verified upgrade bundle " + p->info.manifest.release.version +
                     " and its file were discarded",
                 p->id);
}

void UpgradeService::sweepUploads() {
  std::optional<std::string> keep;
  try {
    if (auto p = pending()) keep = p->id;
  } catch (const Error& e) {
    deps_.log.warn(kComponent, "PENDING_UNREADABLE", e.what());
    return;  // sweeping could remove the file of the bundle it names
  }
  const auto cutoff =
      fs::file_time_type::clock::now() - std::chrono::minutes(deps_.config.uploadExpireMinutes);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(uploads_, ec)) {
    std::error_code statEc;
    const std::string id = e.path().stem().string();
    if (keep == id || !e.is_regular_file(statEc) || statEc) continue;
    if (e.last_write_time(statEc) < cutoff && !statEc) {
      fs::remove(e.path(), statEc);
      if (e.path().extension() == ".bin") {
        deps_.log.info(kComponent, "UPLOAD_EXPIRED",
                       "removed an uploaded bundle nobody verified in time", id);
      }
    }
  }
}

}  // namespace vcrm
