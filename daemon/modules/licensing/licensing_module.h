// Licensing: this server's serial number, its licence (read, preview, apply) and the limits
// admission enforces. The rules live in licensing/; this module stores and serves them.
#pragma once

#include "modules/licensing/licence_service.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

class LicensingModule : public NamedModule {
 public:
  explicit LicensingModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&clock_}; }

  LicenceService& service() { return service_; }

 private:
  LicenceService service_;
  PeriodicWorker
      clock_;  // records the latest time seen, so a clock set back cannot extend a licence
};

}  // namespace vcrm
