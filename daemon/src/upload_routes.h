// The tus 1.0 routes an upload route stands for (private to the daemon: UploadsModule::serve
// turns a route built by uploadRoute() into these).
#pragma once

#include <vector>

#include "vcrm/daemon/route.h"
#include "vcrm/daemon/uploads.h"

namespace vcrm {

// POST and OPTIONS on the collection; HEAD, PATCH, DELETE and GET on "<collection>/{upload_id}".
// Each keeps the declaring route's access and roles.
std::vector<Route> tusRoutes(const Route& declaring, UploadStore& store);

}  // namespace vcrm
