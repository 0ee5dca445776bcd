// vcrmd composed: configuration, database (embedded or external), migrations, the core
// services (accounts, audit, live events), the modules (registerModules), their workers, the
// API and its listeners. start() brings everything up in order; stop() tears it down.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "vcrm/common/config.h"
#include "vcrm/common/db.h"
#include "vcrm/common/files.h"
#include "vcrm/common/log.h"
#include "vcrm/common/pg_cluster.h"
#include "vcrm/daemon/api.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/auth.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/module.h"
#include "vcrm/daemon/server.h"
#include "vcrm/daemon/upgrade_start.h"

namespace vcrm {

class App {
 public:
  // `extra` modules are added after the registered ones (tests plug modules in this way).
  using ModuleFactory = std::function<std::unique_ptr<Module>(const ModuleContext&)>;
  // How the process restarts vcrmd in place (stop, restore recovery, configuration reloaded,
  // start); empty where nothing can (tests that embed App), and a restore is then refused.
  using Restarter = std::function<void(std::string reason)>;
  // `restartFromCurrent` makes the process exit 75 (main.cc: SIGUSR1); empty, an upgrade is
  // refused.
  App(Config config, Logger& log, std::vector<ModuleFactory> extra = {}, Restarter restarter = {},
      Restarter restartFromCurrent = {});
  ~App();
  // Throws StartupError (or ConfigError) with a message for the operator. Returns early, with
  // mustRestartFromCurrent() set, when an upgrade's recovery says another version must run.
  void start();
  // This process must stop and exit with upgrade::kRestartFromCurrent (75) so its supervisor
  // starts <root>/opt/vcrm/current: an upgrade's recovery or its health check decided so.
  bool mustRestartFromCurrent() const { return restartFromCurrent_; }
  void stop();
  // The first half of stop(): streams, workers, listeners (and with `closePool`, the pool's
  // connections); idempotent, callable from any thread but a listener's. Returns false when a
  // lease was kept past 10 s.
  bool stopServing(const std::string& reason, bool closePool);

  int httpsPort() const;
  int httpPort() const;
  // Set on the first start only: the generated admin password.
  const std::optional<std::string>& initialAdminPassword() const { return initialPassword_; }
  std::string url() const;
  const ModuleList* modules() const { return modules_.get(); }

 private:
  void lockRoot();
  void writeReadyFile();
  // Before the database is opened: the upgrade journal's recovery (vcrmd run from a slot).
  void recoverUpgrade(const std::string& serverDsn, const std::string& base);
  // Once it serves: the new version on trial checks itself and is marked good (or rolls back).
  void markUpgradeGood();
  // The new version's health check: the database answers and the listeners serve /healthz.
  void checkHealth();

  Config config_;
  Logger& log_;
  files::Fd rootLock_;
  std::unique_ptr<PgCluster> cluster_;
  std::string dsn_;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<EventBus> bus_;
  Listeners listeners_;
  std::unique_ptr<ModuleList> modules_;
  std::vector<Worker*> started_;  // in start order
  std::vector<ModuleFactory> extra_;
  Restarter restarter_;
  Restarter exitToCurrent_;  // exit 75 (an upgrade committed)
  std::mutex servingMutex_;  // stopServing() from an upgrade's thread against stop()
  std::unique_ptr<Api> api_;
  std::unique_ptr<WebServer> web_;
  std::optional<std::string> initialPassword_;
  int schema_ = 0;
  std::optional<UpgradeSelf> upgrade_;
  std::string certFile_;
  bool onTrial_ = false;
  bool poolClosed_ = false;
  bool restartFromCurrent_ = false;
};

}  // namespace vcrm
