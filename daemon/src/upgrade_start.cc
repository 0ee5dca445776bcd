#include "vcrm/daemon/upgrade_start.h"

#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"
#include "vcrm/common/version.h"
#include "vcrm/daemon/migrations.h"
#include "vcrm/daemon/restore_swap.h"

namespace vcrm {

upgrade::UpgradeCallbacks upgradeDatabaseCallbacks(const Paths& paths, std::string serverDsn,
                                                   std::string base, std::string migrationsDir,
                                                   Logger& log) {
  upgrade::UpgradeCallbacks cb;
  // CREATE/DROP DATABASE cannot run connected to the database they act on.
  const auto maintenance = [serverDsn] { return db::withDatabase(serverDsn, "postgres"); };
  cb.snapshotDatabase = [maintenance](const std::string& original, const std::string& copy) {
    db::Connection c(maintenance());
    db::dropDatabase(c, copy);
    c.execScript("CREATE DATABASE " + db::quoteIdentifier(copy) + " TEMPLATE " +
                 db::quoteIdentifier(original));
  };
  cb.pointDatabaseAt = [&paths](const std::string& name) {
    const restore::Layout layout(paths);
    files::atomicWrite(layout.pointerFile(), name + "\n", 0644);
  };
  cb.dropDatabase = [maintenance](const std::string& name) {
    db::Connection c(maintenance());
    db::dropDatabase(c, name);
  };
  cb.migrate = [&paths, serverDsn, base, migrationsDir, &log] {
    db::Connection c(db::withDatabase(serverDsn, restore::activeDatabase(paths, base)));
    migrate(c, loadMigrations(migrationsDir), log);
  };
  return cb;
}

std::optional<UpgradeSelf> upgradeSelf(const Paths& paths, upgrade::UpgradeCallbacks callbacks,
                                       Logger& log) {
  const upgrade::UpgradeLayout layout(paths.root);
  const auto slot = upgrade::slotOfProgram(layout.slots(), "/proc/self/exe");
  if (!slot) return std::nullopt;
  UpgradeSelf self;
  self.engine = std::make_unique<upgrade::UpgradeApply>(layout, std::move(callbacks), log);
  self.running = {productVersion(), *slot};
  return self;
}

void refuseWhileUpgradeUnderWay(const Paths& paths) {
  const auto r = upgrade::UpgradeLayout(paths.root).journal().load();
  if (r && !r->finished()) {
    throw Conflict("upgrade " + r->id + " is under way (step " + r->step +
                       "); a restore can begin once it is done (GET /api/v1/upgrade)",
                   "upgrade_in_progress");
  }
}

void refuseWhileRestoreUnderWay(const Paths& paths) {
  const auto r = restore::Layout(paths).journal().load();
  if (r && !r->finished()) {
    throw Conflict(r->operation + " " + r->id + " is under way (step " + r->step +
                       "); an upgrade can begin once it is done (GET /api/v1/restores/current)",
                   "restore_in_progress");
  }
}

}  // namespace vcrm
