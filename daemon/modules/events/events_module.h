// The live event stream (server-sent events) that the console's pages follow.
#pragma once

#include "vcrm/daemon/module.h"
#include "vcrm/daemon/event_bus.h"

namespace vcrm {

class EventsModule : public NamedModule {
 public:
  explicit EventsModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;

 private:
  EventBus& bus_;
};

}  // namespace vcrm
