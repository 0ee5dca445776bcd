// `vcrmctl restore FILE`: upload an archive to vcrmd (tus), show what it holds, confirm, and
// follow the restore until the appliance is back.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "vcrm/daemon/api_client.h"

namespace vcrm::ctl {

// `args` follow "restore"; `connect` signs in to vcrmd with the global options (again after the
// restart the restore causes). Returns the exit status (0 done, 1 refused or failed, 2 usage).
int restoreCommand(const std::vector<std::string>& args, const std::function<ApiClient()>& connect);

// The usage lines of `vcrmctl restore`.
const char* restoreUsage();

}  // namespace vcrm::ctl
