// The systemd notification protocol (sd_notify(3)), without libsystemd: vcrmd says READY=1 once
// it serves and STOPPING=1 when it stops, so that packaging/vcrm.service (Type=notify) knows a
// start that never serves — a new version hanging after an upgrade — and kills it after
// TimeoutStartSec; each start it restarts is a trial start, and the upgrade journal rolls back
// after kDefaultTrialStarts of them (upgrade/apply.h).
#pragma once

#include <string>

namespace vcrm {

// Sends `state` ("READY=1", "STOPPING=1", "STATUS=...") to $NOTIFY_SOCKET (a path, or an abstract
// name written "@name"). Returns false when there is no such socket or the datagram could not be
// sent; a vcrmd not run by systemd (the supervisor, a test) has none, and that is not an error.
bool notifyServiceManager(const std::string& state);

}  // namespace vcrm
