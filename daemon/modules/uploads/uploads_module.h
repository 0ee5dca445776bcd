// Uploads: the store every upload route streams into (<root>/var/lib/vcrm/uploads) and the sweep
// of abandoned uploads. A module that takes large files declares
//   ctx.require<UploadsModule>().serve(uploadRoute("/api/v1/...", roles, "x.upload", spec))
// in its routes(), and gets the tus routes of that collection with the route's access.
#pragma once

#include "vcrm/daemon/module.h"
#include "vcrm/daemon/uploads.h"

namespace vcrm {

class UploadsModule : public NamedModule {
 public:
  explicit UploadsModule(const ModuleContext& ctx);
  std::vector<Worker*> workers() override { return {&sweeper_}; }

  // The tus routes (POST/OPTIONS on the collection, HEAD/PATCH/DELETE/GET on an upload) for a
  // route built by uploadRoute().
  std::vector<Route> serve(const Route& declared);
  UploadStore& store() { return store_; }

 private:
  UploadStore store_;
  PeriodicWorker sweeper_;  // every node: the files are local
};

}  // namespace vcrm
