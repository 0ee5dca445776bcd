// Restores: archives uploaded (tus) or already on this server verified, shown and restored,
// the database they replaced kept until discarded, and going back to it. The work is
// RestoreService's; the swap across the restart is restore_swap.h's.
#pragma once

#include "modules/restores/restore_service.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

class UploadsModule;

class RestoresModule : public NamedModule {
 public:
  explicit RestoresModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&sweeper_}; }
  RestoreService& service() { return service_; }

 private:
  UploadsModule& uploads_;
  RestoreService service_;
  PeriodicWorker sweeper_;  // every node: the uploaded archives are local files
};

}  // namespace vcrm
