// Bridges: the registry of media bridges, their Janus configuration, and the prober that marks them up or down.
#pragma once

#include "vcrm/daemon/module.h"
#include "vcrm/daemon/bridges.h"

namespace vcrm {

class BridgesModule : public NamedModule {
 public:
  explicit BridgesModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&prober_}; }

  BridgeService& service() { return service_; }
  // Called from the prober's thread with each bridge that has just gone down. Register before
  // the workers start (in a later module's constructor).
  void onBridgeDown(std::function<void(std::int64_t)> listener) { downListeners_.push_back(std::move(listener)); }

 private:
  BridgeService service_;
  BridgeService& bridges_ = service_;
  Listeners& listeners_;
  std::vector<std::function<void(std::int64_t)>> downListeners_;
  PeriodicWorker prober_;
};

}  // namespace vcrm
