// Call detail records: conference and participant CDRs as paged JSON and streamed CSV.
#pragma once

#include "vcrm/daemon/module.h"
#include "vcrm/daemon/cdrs.h"

namespace vcrm {

class CdrsModule : public NamedModule {
 public:
  explicit CdrsModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;

 private:
  CdrService cdrs_;
};

}  // namespace vcrm
