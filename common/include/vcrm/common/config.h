// vcrmd's configuration: a `key = value` file under the root prefix plus command-line
// overrides. Every path the appliance uses is derived from one root prefix (see Paths).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/log.h"

namespace vcrm {

// Where everything lives, all below one root prefix so whole appliances can run side by side.
struct Paths {
  std::filesystem::path root;
  std::filesystem::path configFile() const { return root / "etc/vcrm/vcrmd.conf"; }
  std::filesystem::path stateDir() const { return root / "var/lib/vcrm"; }
  std::filesystem::path pgDataDir() const { return stateDir() / "pgdata"; }
  std::filesystem::path pgSocketDir() const { return stateDir() / "pgsocket"; }
  std::filesystem::path tlsDir() const { return stateDir() / "tls"; }
  std::filesystem::path runDir() const { return stateDir() / "run"; }
  std::filesystem::path uploadsDir() const { return stateDir() / "uploads"; }
  std::filesystem::path backupsDir() const { return stateDir() / "backups"; }
  // Upgrade bundles: kept uploads and the verified bundle waiting for confirmation.
  [[nodiscard]] std::filesystem::path upgradeDir() const { return stateDir() / "upgrade"; }
  // The public keys upgrade bundles must be signed with (none are trusted without it).
  [[nodiscard]] std::filesystem::path bundleKeyringFile() const {
    return root / "etc/vcrm/bundle-keyring";
  }
  // This installation's serial number, made at first start. It lives beside the database, not
  // in it: a database restored from another server must not change who this server is.
  std::filesystem::path serialFile() const { return stateDir() / "serial"; }
  std::filesystem::path initialAdminPasswordFile() const {
    return stateDir() / "initial-admin-password";
  }
  // Written once vcrmd is ready: pid and the ports actually bound (useful when ports are 0).
  std::filesystem::path readyFile() const { return runDir() / "vcrmd.json"; }
};

struct Config {
  Paths paths;
  // Database: empty dsn means the embedded cluster under the state directory.
  std::string dbDsn;
  std::string dbEmbeddedUser = "vcrm";  // OS user the embedded PostgreSQL runs as under root
  std::string pgBinDir;                 // empty: the newest /usr/lib/postgresql/*/bin
  int dbPoolSize = 8;
  bool dbStrictLeases = false;  // a second lease on one thread aborts (tests)
  std::string migrationsDir;  // empty: the migrations built into the binary
  // HTTP
  std::string httpListen = "0.0.0.0";
  int httpsPort = 8443;
  int httpPort = 8080;  // plain HTTP that only redirects; -1 disables it
  // Janus's event handler verifies TLS peers and has no way to trust a self-signed
  // certificate, so bridge events have a plain-HTTP listener of their own that accepts only
  // POST /api/v1/bridges/{id}/events with the bridge's basic-auth credentials.
  std::string eventsListen = "127.0.0.1";
  int eventsPort = 8090;  // -1 disables it
  std::string tlsCertFile;  // empty: <state>/tls/server.crt, self-signed on first start
  std::string tlsKeyFile;
  std::string webuiDir;  // empty: <dir of vcrmd>/../share/vcrm/webui
  std::size_t maxBodyBytes = 1 << 20;
  int httpThreads = 64;
  // Live event streams (GET /api/v1/events) each hold a worker thread: at most this many per
  // session, per user, and in all (0: a quarter of http.threads; never more than half).
  int eventsMaxPerSession = 2;
  int eventsMaxPerUser = 4;
  int eventsMaxStreams = 0;
  int sessionIdleMinutes = 60;
  int sessionMaxHours = 12;
  LogLevel logLevel = LogLevel::Info;
  // Conferences
  int prelaunchSeconds = 60;    // rooms are created this long before the start
  int probeSeconds = 2;         // bridge health probe period
  int reconcileSeconds = 2;     // listparticipants polling behind the bridge events
  int reconcileWorkers = 4;     // conferences polled at once (each holds a DB connection)
  int emptyGraceSeconds = 120;  // auto-end-when-empty waits this long
  // Uploads (bundles, archives): an upload with no activity for this long is removed, and all
  // uploads together may reserve at most this much of the disk.
  int uploadExpireMinutes = 24 * 60;
  std::uint64_t uploadMaxTotalMb = 16 * 1024;
  // Audit log retention: rows older than this many days, and the oldest rows beyond the cap,
  // are pruned this often (on the active node).
  int auditRetentionDays = 365;
  std::int64_t auditMaxRows = 1000000;
  int auditPruneSeconds = 600;
  // Licences: the vendor keys licence files must be signed with; empty: the built-in keyring.
  std::string licenceKeyringFile;
  // Upgrades: the keyring of bundle signing keys; empty: Paths::bundleKeyringFile(). No key is
  // trusted unless it is in that file.
  std::string upgradeKeyringFile;
  [[nodiscard]] std::filesystem::path bundleKeyring() const {
    return upgradeKeyringFile.empty() ? paths.bundleKeyringFile()
                                      : std::filesystem::path(upgradeKeyringFile);
  }

  // Loads `<root>/etc/vcrm/vcrmd.conf` if it exists, then applies overrides
  // ("key=value", in order). Unknown keys and bad values throw ConfigError naming the key,
  // the file and line, and what is accepted.
  static Config load(const std::filesystem::path& root, const std::vector<std::string>& overrides);

  // Parses the text of a config file (exposed for tests). `origin` names it in errors.
  void apply(const std::string& text, const std::string& origin);
  void set(const std::string& key, const std::string& value, const std::string& origin);

  // The keys accepted, each with a one-line description (used by --help and the README).
  static const std::vector<std::pair<std::string, std::string>>& keys();
};

}  // namespace vcrm
