// System: health, version and the run-time log level (kept in the database so it survives a restart).
#pragma once

#include "vcrm/daemon/module.h"

namespace vcrm {

class SystemModule : public NamedModule {
 public:
  explicit SystemModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;

 private:
  db::Pool& pool_;
  Logger& log_;
  std::string version_;
  int schema_;
};

}  // namespace vcrm
