// `vcrmctl backup ...`: create (through the API, with progress, then the download), list,
// download, delete, and verify (local, no vcrmd needed).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "vcrm/daemon/api_client.h"

namespace vcrm::ctl {

// `args` follow "backup"; `connect` signs in to vcrmd with the global options. Returns the
// exit status (0 done, 1 refused or failed, 2 usage).
int backupCommand(const std::vector<std::string>& args, const std::function<ApiClient()>& connect);

// The usage lines of `vcrmctl backup`.
const char* backupUsage();

}  // namespace vcrm::ctl
