// Upgrade bundles up to "verified, waiting for confirmation": a finished upload is kept in a
// root-owned 0700 directory under the state directory; verify() opens it once and checks, on that
// one descriptor, the signature against the trusted keyring, every chunk and file hash and tar
// entry, then the upgrade policy (compatibility, version floor, downgrade, the licence's
// "upgrades until" date) and the free space of the slots' file system. The verified bundle is
// recorded in <state>/upgrade/pending.json (written atomically, so it survives a restart) for
// the confirmation that extracts it into the inactive slot (not yet written).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "modules/licensing/licence_service.h"
#include "vcrm/common/config.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/auth.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/upload_spec.h"
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
  };
  explicit UpgradeService(Deps deps);

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

  Deps deps_;
  std::filesystem::path dir_;      // <state>/upgrade
  std::filesystem::path uploads_;  // <state>/upgrade/uploads
  Guarded<int> commit_;            // serialises changes of the pending record
};

}  // namespace vcrm
