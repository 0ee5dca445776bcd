// Restores of backup archives into this vcrmd, and going back to the system a restore replaced.
// prepare() verifies a whole archive while it extracts it into a fresh 0700 work directory and
// says what it holds; confirm() runs the rest on a thread of its own, every step journalled
// (restore_swap.h): a new database loaded with pg_restore and migrated, this server's serial and
// licence carried into it when the archive came from another server, the live conferences
// decided, configuration and keys staged beside their targets, "ready" — then the conferences
// the restored database does not have running are ended and vcrmd restarts in place, where the
// recovery swaps files and database pointer by rename. revert() goes back the same way;
// discard() drops what was kept.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "vcrm/common/config.h"
#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/conferences.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/restore_swap.h"
#include "vcrm/daemon/upload_spec.h"
#include "vcrm/upgrade/journal.h"

namespace vcrm {

class RestoreService {
 public:
  struct Deps {
    const Config& config;
    Logger& log;
    db::Pool& pool;
    EventBus& bus;
    std::string dsn;  // the active database's
    std::string version;
    int schema = 0;
    std::string serial;  // this server's
    ConferenceService& conferences;
    std::function<void(std::string)> requestRestart;
  };
  explicit RestoreService(Deps deps);
  ~RestoreService();  // waits for a job under way to reach a step boundary
  RestoreService(const RestoreService&) = delete;
  RestoreService& operator=(const RestoreService&) = delete;

  // A finished upload of an archive, kept under <state>/restore/uploads until it is restored.
  json::ObjectPtr keepUpload(const FinishedUpload& upload);
  // POST /restores {upload_id | backup_id, passphrase}: the archive verified and extracted, or
  // an ArchiveError (422, its reason's code) with nothing live changed.
  json::ObjectPtr prepare(const json::ObjectPtr& body, const std::string& user);
  json::ObjectPtr confirm(const std::string& id, const std::string& user);
  json::ObjectPtr current() const;
  json::ObjectPtr previous() const;
  json::ObjectPtr revert(const std::string& user);
  void discard();
  // The audit rows of a restore's or revert's requests went into the database it replaced: once
  // it is done, the database it swapped in gets one row saying so ("restore.completed",
  // "restore.reverted"), written at the first start after the swap.
  void recordCompletion(AuditLog& audit);
  // Removes uploaded archives nobody restored within uploads.expire_minutes of their upload
  // (an archive refused for a wrong passphrase stays that long, to be tried again), and the
  // work directory of a verified archive nobody confirmed within that time.
  void sweepUploads();

 private:
  void runRestore(upgrade::JournalRecord r);
  // The steps both share from "conferences-decided" to the restart: each swapped file is
  // replaced by what `replacement` names (left as it is for nullopt), and the files in
  // `setAside` are moved aside as *.pre-restore (going back to a system that had none).
  void decideStageAndSwap(
      upgrade::JournalRecord& r, const std::string& otherDsn,
      const std::function<std::optional<std::filesystem::path>(const restore::SwappedFile&)>&
          replacement,
      const std::vector<std::filesystem::path>& setAside = {});
  void abandon(upgrade::JournalRecord& r, const std::string& why);
  void carryLicence(const std::string& newDsn);
  void publish(const upgrade::JournalRecord& r) const;
  json::ObjectPtr describe(const upgrade::JournalRecord& r) const;
  void startJob(std::function<void()> job);
  bool jobRunning() const;

  Deps deps_;
  restore::Layout layout_;
  upgrade::StepJournal journal_;
  Guarded<int> operation_;  // serialises prepare, confirm, revert and discard
  Guarded<bool> running_{false};
  std::thread job_;
};

}  // namespace vcrm
