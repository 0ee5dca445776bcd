// Conferences: booking, the lifecycle on the bridges, the live monitor's actions, calendars, and the bridges' event posts.
#pragma once

#include "modules/licensing/licence_service.h"
#include "vcrm/daemon/conferences.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

class BackupsModule;

class ConferencesModule : public NamedModule {
 public:
  explicit ConferencesModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;
  std::vector<Worker*> workers() override { return {&scheduler_}; }
  ConferenceService& service() { return service_; }

 private:
  BridgeService& bridges_;
  LicenceService& licence_;  // admission asks it for the licensed ports
  BackupsModule& backups_;   // the dashboard's backups entry
  db::Pool& pool_;
  std::string version_;
  ConferenceService service_;
  PeriodicWorker scheduler_;
};

}  // namespace vcrm
