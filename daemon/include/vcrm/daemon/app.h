// vcrmd composed: configuration, database (embedded or external), migrations, accounts, the
// API and its listeners. start() brings everything up in order; stop() tears it down.
#pragma once

#include <memory>
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
#include "vcrm/daemon/bridges.h"
#include "vcrm/daemon/cdrs.h"
#include "vcrm/daemon/conferences.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/server.h"

namespace vcrm {

class App {
 public:
  App(Config config, Logger& log);
  ~App();
  // Throws StartupError (or ConfigError) with a message for the operator.
  void start();
  void stop();

  int httpsPort() const;
  int httpPort() const;
  // Set on the first start only: the generated admin password.
  const std::optional<std::string>& initialAdminPassword() const { return initialPassword_; }
  std::string url() const;

 private:
  void lockRoot();
  void writeReadyFile();

  Config config_;
  Logger& log_;
  files::Fd rootLock_;
  std::unique_ptr<PgCluster> cluster_;
  std::unique_ptr<db::Pool> pool_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<EventBus> bus_;
  std::unique_ptr<BridgeService> bridges_;
  std::unique_ptr<ConferenceService> conferences_;
  std::unique_ptr<CdrService> cdrs_;
  std::unique_ptr<Api> api_;
  std::unique_ptr<WebServer> web_;
  std::optional<std::string> initialPassword_;
  int schema_ = 0;
};

}  // namespace vcrm
