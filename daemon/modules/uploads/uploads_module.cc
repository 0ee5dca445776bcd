#include "modules/uploads/uploads_module.h"

#include <algorithm>

#include "src/upload_routes.h"
#include "vcrm/common/error.h"

namespace vcrm {

namespace {
UploadStore::Options storeOptions(const Config& config) {
  UploadStore::Options o;
  o.dir = config.paths.uploadsDir();
  o.maxTotalBytes = config.uploadMaxTotalMb << 20;
  o.expireAfter = std::chrono::minutes(config.uploadExpireMinutes);
  return o;
}
}  // namespace

UploadsModule::UploadsModule(const ModuleContext& ctx)
    : NamedModule("uploads"),
      store_(storeOptions(ctx.config), ctx.log),
      sweeper_({"upload-sweeper", Worker::RunsOn::EveryNode,
                std::min<std::chrono::milliseconds>(store_.options().expireAfter, std::chrono::minutes(1)),
                [this] { store_.sweep(UploadStore::Clock::now()); },
                {}},
               ctx.log) {}

std::vector<Route> UploadsModule::serve(const Route& declared) {
  if (!declared.upload) {
    throw StartupError("route " + declared.method + " " + declared.pattern + " is not an upload route (use uploadRoute())");
  }
  return tusRoutes(declared, store_);
}

}  // namespace vcrm
