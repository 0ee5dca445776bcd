// An embedded PostgreSQL cluster owned by the appliance: created once with initdb under the
// state directory, started with pg_ctl on a Unix socket only, stopped on exit. When the
// caller is root the cluster runs as an unprivileged user (PostgreSQL refuses root).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "vcrm/common/log.h"
#include "vcrm/common/process.h"

namespace vcrm {

class PgCluster {
 public:
  struct Settings {
    std::filesystem::path dataDir;
    std::filesystem::path socketDir;
    std::string osUser = "vcrm";  // used only when running as root
    std::string binDir;           // empty: newest /usr/lib/postgresql/*/bin
    std::string superuser = "vcrm";
    std::string database = "vcrm";  // created on first start
    int port = 5432;  // names the socket file; no TCP listener
  };

  PgCluster(Settings settings, Logger& log);
  ~PgCluster();  // stops the cluster if this object started it
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // initdb if needed, clear a stale postmaster.pid left by a crash, start (or adopt a
  // cluster of ours that is still running), and create the database. Throws StartupError
  // with a message saying what to do.
  void start();
  void stop();
  bool running() const;

  // libpq connection string to the database over the Unix socket.
  std::string dsn() const;
  std::string dsn(const std::string& database) const;
  const Settings& settings() const { return settings_; }
  std::string binary(const std::string& name) const;  // full path to a PostgreSQL program
  const std::optional<process::RunAs>& runAs() const { return runAs_; }

 private:
  void initdb();
  void clearStaleLock();
  std::optional<pid_t> livePostmaster() const;
  void ensureDatabase();
  process::Outcome pgctl(const std::vector<std::string>& args);

  Settings settings_;
  Logger& log_;
  std::optional<process::RunAs> runAs_;
  bool startedByUs_ = false;
};

// Finds the newest /usr/lib/postgresql/<N>/bin that has pg_ctl; throws StartupError if none.
std::string findPgBinDir();

}  // namespace vcrm
