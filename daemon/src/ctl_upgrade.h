// `vcrmctl upgrade upload FILE | status | discard`: send an upgrade bundle to vcrmd (tus,
// resumable) and show what verification found, or what is running and waiting. Applying a
// verified bundle is not there yet.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "vcrm/daemon/api_client.h"

namespace vcrm::ctl {

// `args` follow "upgrade"; `connect` signs in with the global options. Returns the exit status
// (0 done, 1 refused or failed, 2 usage).
int upgradeCommand(const std::vector<std::string>& args, const std::function<ApiClient()>& connect);

// The usage lines of `vcrmctl upgrade`.
const char* upgradeUsage();

}  // namespace vcrm::ctl
