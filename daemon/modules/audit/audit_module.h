// The audit log's reading side: admins page through who did what, from where, with what outcome.
#pragma once

#include "vcrm/daemon/module.h"
#include "vcrm/daemon/audit.h"

namespace vcrm {

class AuditModule : public NamedModule {
 public:
  explicit AuditModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;

 private:
  AuditLog& audit_;
};

}  // namespace vcrm
