// The modules vcrmd is made of. A new module is a folder under daemon/modules/ and one line here;
// a module may use the ones registered above it (ModuleContext::require).
#include "modules/audit/audit_module.h"
#include "modules/backups/backups_module.h"
#include "modules/bridges/bridges_module.h"
#include "modules/cdrs/cdrs_module.h"
#include "modules/conferences/conferences_module.h"
#include "modules/events/events_module.h"
#include "modules/licensing/licensing_module.h"
#include "modules/restores/restores_module.h"
#include "modules/system/system_module.h"
#include "modules/upgrades/upgrades_module.h"
#include "modules/uploads/uploads_module.h"
#include "modules/users/users_module.h"

namespace vcrm {

void registerModules(ModuleList& modules) {
  modules.add<SystemModule>();
  modules.add<UploadsModule>();  // before any module that takes uploads
  modules.add<UsersModule>();
  modules.add<AuditModule>();
  modules.add<EventsModule>();
  modules.add<LicensingModule>();  // before the modules whose admission it limits
  modules.add<BackupsModule>();    // after licensing (the serial), before the dashboard's module
  modules.add<BridgesModule>();
  modules.add<ConferencesModule>();
  modules.add<CdrsModule>();
  modules.add<RestoresModule>();  // ends live conferences and keeps this server's licence
  modules.add<UpgradesModule>();  // the licence's "upgrades until" date; after backups, restores
}

}  // namespace vcrm
