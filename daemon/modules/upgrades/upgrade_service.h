// Upgrade bundles up to "verified, waiting for confirmation": a finished upload is kept in a
// root-owned 0700 directory under the state directory; verify() opens it once and checks, on that
// one descriptor, the signature against the trusted keyring, every chunk and file hash and tar
// entry, then the upgrade policy (compatibility, version floor, downgrade, the licence's
// "upgrades until" date) and the free space of the slots' file system. The verified bundle is
// recorded in <state>/upgrade/pending.json (written atomically, so it survives a restart) for
// the confirmation that extracts it into the inactive slot (not yet written).
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "modules/backups/backup_service.h"
#include "modules/licensing/licence_service.h"
#include "vcrm/common/config.h"
#include "vcrm/common/files.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/auth.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/upload_spec.h"
#include "vcrm/upgrade/apply.h"
#include "vcrm/upgrade/bundle.h"
#include "vcrm/upgrade/bundle_policy.h"

namespace vcrm {

// The bundle waiting for confirmation: its kept file and what verification vouched for. The
// confirmation reopens `file` and hands `info` to extractVerifiedBundle, which checks every chunk
// again as it extracts.
struct PendingBundle {
  std::string id;  // the upload id
  std::filesystem::path file;
  std::string sha256;  // of the whole file, hashed while it was uploaded
  std::string verifiedAt;
  std::string verifiedBy;
  bool allowDowngrade = false;  // an admin allowed an older or the same version
  upgrade::BundleInfo info;
};

class UpgradeService {
 public:
  struct Deps {
    const Config& config;
    Logger& log;
    std::string version;  // the running one
    int schema = 0;
    LicenceService& licence;
    EventBus& bus;  // "upgrade" events: {"state","id","version"} when the pending bundle changes
    // What applying needs (confirm() refuses without them): the pre-upgrade backup, the pool's
    // database, and the App's hooks (ModuleContext) to stop serving and to restart.
    BackupService* backups = nullptr;
    std::string dbDsn{};
    std::function<bool(std::string)> stopServing{};
    std::function<void(std::string)> requestRestart{};
    std::function<void(std::string)> requestRestartFromCurrent{};
  };
  explicit UpgradeService(Deps deps);
  ~UpgradeService();  // waits for an upgrade job
  UpgradeService(const UpgradeService&) = delete;
  UpgradeService& operator=(const UpgradeService&) = delete;

  // A finished upload of a bundle, kept as <state>/upgrade/uploads/<id>.bin until it is verified
  // and confirmed, discarded, or expires unverified.
  json::ObjectPtr keepUpload(const FinishedUpload& upload);
  // POST /upgrade {upload_id, allow_downgrade?}: the bundle verified and made the pending one
  // (replacing, and deleting, any other pending bundle), or refused with nothing changed: a
  // BundleRefused (422, its reason's code), InsufficientStorage (507), Conflict when no trusted
  // keys are installed. `allow_downgrade` is honoured for admins only.
  json::ObjectPtr verify(const json::ObjectPtr& body, const User& user);
  // GET /upgrade: what runs (version, schema, slot) and the pending bundle.
  json::ObjectPtr status();
  // DELETE /upgrade/pending: the pending bundle and its file removed (NotFound when none).
  void discard();
  // POST /upgrade/confirm {backup_passphrase}: checks again what may have changed since the
  // verification (the keyring, every hash, the policy, free space), then starts the apply job
  // on a thread of its own and returns its record (202). Refused with nothing changed:
  // NotFound no_pending_bundle, Conflict not_installed / upgrade_in_progress /
  // restore_in_progress / backup_running, InvalidInput for the passphrase, BundleRefused.
  // The job: pre-upgrade backup, the inactive slot written, then it stops serving, snapshots
  // the database, switches the pointers and asks to exit 75 (or, rolled back, to restart).
  json::ObjectPtr confirm(const json::ObjectPtr& body, const User& user);
  // POST /upgrade/go-back: the new version, marked good, back to the previous slot and the
  // database it had (Conflict no_previous_version / not_installed); then exit 75.
  json::ObjectPtr goBack(const User& user);
  // Removes kept uploads nobody verified within uploads.expire_minutes (never the pending one).
  void sweepUploads();

  std::optional<PendingBundle> pending() const;

 private:
  upgrade::BundleKeyring trustedKeys() const;
  upgrade::InstalledFacts installedFacts(bool allowDowngrade);
  void requireFreeSpace(const upgrade::BundleManifest& manifest) const;
  void removeUpload(const std::string& id) const;
  // Whether `id` is the pending bundle's (true when pending.json cannot be read: keep files).
  bool isPending(const std::string& id) const;
  json::ObjectPtr describe(const PendingBundle& p);
  std::filesystem::path uploadFile(const std::string& id) const;
  void publish(const std::string& state, const PendingBundle& p) const;
  // The apply job and what it needs.
  struct Applying {
    files::Fd bundle;
    upgrade::BundleInfo info;
    std::string id;
    std::string passphrase;
    std::string requestedBy;
    std::string originalDatabase;
    upgrade::RunningVersion me;
    std::string pendingId;
  };
  upgrade::RunningVersion installedSlot() const;
  void refuseWhileBusy() const;
  void runApply(Applying job);
  void runGoBack(upgrade::RunningVersion me, std::string requestedBy, std::string id);
  upgrade::UpgradeCallbacks callbacks(const std::string& originalDatabase, bool& stopped);
  void publishRecord(const std::string& state, const upgrade::JournalRecord& r) const;
  // The ended upgrades kept in <state>/upgrade/history/<id>.json, the journal's last one
  // included once finished.
  void archiveFinished() const;
  json::ArrayPtr historyJson() const;
  void startJob(std::function<void()> body);

  Deps deps_;
  std::filesystem::path dir_;      // <state>/upgrade
  std::filesystem::path uploads_;  // <state>/upgrade/uploads
  Guarded<int> commit_;            // serialises changes of the pending record
  struct Job {
    std::thread thread;
    bool running = false;
  };
  Guarded<Job> job_;
};

// What GET /upgrade shows of a journal record (operator labels of the steps included).
json::ObjectPtr upgradeRecordJson(const upgrade::JournalRecord& r);

}  // namespace vcrm
