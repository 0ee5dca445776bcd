// What vcrmd does for the upgrade apply engine (upgrade/apply.h): the database callbacks on
// a maintenance connection to the server, and the engine's recovery at each start when vcrmd
// runs from a slot of the installed layout.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "vcrm/common/config.h"
#include "vcrm/common/log.h"
#include "vcrm/upgrade/apply.h"

namespace vcrm {

// The callbacks that move databases (snapshotDatabase, pointDatabaseAt, dropDatabase,
// migrate), each on its own connection to `serverDsn`'s server: the maintenance database
// "postgres" for CREATE/DROP DATABASE, the database the pointer names for the migrations.
// `base` is the database used when no pointer file exists.
upgrade::UpgradeCallbacks upgradeDatabaseCallbacks(const Paths& paths, std::string serverDsn,
                                                   std::string base, std::string migrationsDir,
                                                   Logger& log);

// The engine as the running vcrmd sees it: nullopt when vcrmd does not run from a slot
// (run from the build tree), which then neither recovers nor applies upgrades.
struct UpgradeSelf {
  std::unique_ptr<upgrade::UpgradeApply> engine;
  upgrade::RunningVersion running;
};
std::optional<UpgradeSelf> upgradeSelf(const Paths& paths, upgrade::UpgradeCallbacks callbacks,
                                       Logger& log);

// Restores and upgrades both move <state>/database: each refuses to begin while the other's
// journal is under way (Conflict, 409, "upgrade_in_progress" / "restore_in_progress").
void refuseWhileUpgradeUnderWay(const Paths& paths);
void refuseWhileRestoreUnderWay(const Paths& paths);

}  // namespace vcrm
