// Upgrades: signed bundles uploaded (tus), verified and shown to an operator before confirming,
// the verified one kept across a restart, discarded, and unverified uploads swept. The work is
// UpgradeService's; confirm starts the apply job (upgrade/apply.h) that installs it.
#pragma once

#include "modules/upgrades/upgrade_service.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

class UploadsModule;

class UpgradesModule : public NamedModule {
 public:
  explicit UpgradesModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&sweeper_}; }
  UpgradeService& service() { return service_; }

 private:
  UploadsModule& uploads_;
  UpgradeService service_;
  PeriodicWorker sweeper_;  // every node: the uploaded bundles are local files
};

}  // namespace vcrm
