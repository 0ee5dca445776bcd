// Backups: archives of this appliance made on request (POST /api/v1/backups) or on a schedule,
// kept in <state>/backups, listed, downloaded, verified and deleted by admin and support. The
// archive format is upgrade/'s; this module takes the snapshot and serves the files.
#pragma once

#include <memory>

#include "modules/backups/backup_scheduler.h"
#include "modules/backups/backup_service.h"
#include "modules/backups/backup_store.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

class BackupsModule : public NamedModule {
 public:
  explicit BackupsModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&worker_}; }

  // The dashboard's backups entry: the last scheduled run (its state and error), the one
  // running now, the last failure of a manual one.
  json::ObjectPtr dashboard();
  BackupScheduler& scheduler() { return scheduler_; }
  // The archives on disk (a restore of a stored backup finds its file here).
  BackupStore& store() { return store_; }
  // Makes archives (an upgrade's pre-upgrade backup runs it on its own thread).
  BackupService& service() { return service_; }

 private:
  AuditLog& audit_;
  BackupStore store_;
  BackupService service_;
  BackupScheduler scheduler_;
  PeriodicWorker worker_;  // "backup-scheduler"
};

}  // namespace vcrm
