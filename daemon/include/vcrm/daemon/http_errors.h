// The one place where a failure becomes an HTTP status and an error body. Routes throw; the Api
// and the listeners call errorResponse(); no other code builds an error body.
#pragma once

#include <exception>

#include "vcrm/common/log.h"
#include "vcrm/daemon/http.h"

namespace vcrm::http {

// 4xx carry the exception's code and sentence; 5xx are logged and say only what the user can
// do, except a bridge's failure (502), which names the bridge and the likely cause.
Response errorResponse(const std::exception& e, Logger& log);

}  // namespace vcrm::http
