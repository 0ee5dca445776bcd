// The audit log's reading side, where admins page through who did what, from where, with what
// outcome; and its pruner, which keeps the log within its retention (days and a row cap).
#pragma once

#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

class AuditModule : public NamedModule {
 public:
  explicit AuditModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&pruner_}; }

 private:
  AuditLog& audit_;
  AuditLog::Retention retention_;
  // The rows are shared by a pair's nodes: only the active node prunes.
  PeriodicWorker pruner_;
};

}  // namespace vcrm
