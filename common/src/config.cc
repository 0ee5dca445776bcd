#include "vcrm/common/config.h"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>

#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace vcrm {

namespace {

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

long long parseInt(const std::string& key, const std::string& value, long long lo, long long hi,
                   const std::string& origin) {
  long long v = 0;
  const auto* end = value.data() + value.size();
  auto [p, ec] = std::from_chars(value.data(), end, v);
  if (ec != std::errc() || p != end || v < lo || v > hi) {
    throw ConfigError(origin + ": " + key + " = \"" + value + "\" is not a whole number from " +
                      std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

std::string parsePath(const std::string& key, const std::string& value, const std::string& origin) {
  if (!value.empty() && value.front() != '/') {
    throw ConfigError(origin + ": " + key + " = \"" + value + "\" must be an absolute path");
  }
  return value;
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& Config::keys() {
  static const std::vector<std::pair<std::string, std::string>> all = {
      {"db.dsn", "libpq connection string of an external PostgreSQL; empty: the embedded cluster"},
      {"db.embedded_user",
       "OS user the embedded PostgreSQL runs as when vcrmd runs as root (vcrm)"},
      {"db.pg_bindir", "directory of initdb/pg_ctl; empty: newest /usr/lib/postgresql/*/bin"},
      {"db.pool_size", "database connections kept open (1-64, default 8)"},
      {"db.strict_leases",
       "abort when a thread takes a second database connection while holding one (a debug guard "
       "for tests; default false)"},
      {"db.migrations_dir", "read migrations from this directory instead of the built-in ones"},
      {"http.listen", "address the HTTPS and HTTP listeners bind (default 0.0.0.0)"},
      {"https.port", "HTTPS port (default 8443; 0 picks a free port)"},
      {"http.port", "plain HTTP port that only redirects to HTTPS (default 8080; -1 disables)"},
      {"bridge_events.listen",
       "address of the plain-HTTP listener for bridge event posts (default 127.0.0.1)"},
      {"bridge_events.port", "its port (default 8090; 0 picks a free port; -1 disables it)"},
      {"http.max_body_bytes", "largest accepted JSON request body (default 1048576)"},
      {"http.threads", "request worker threads; each live event stream holds one (default 64)"},
      {"events.max_per_session", "live event streams one session may hold open (1-64, default 2)"},
      {"events.max_per_user", "live event streams one user may hold open across sessions (1-256, default 4)"},
      {"events.max_streams", "live event streams in all (0-128, default 0: a quarter of http.threads; at most half of it)"},
      {"tls.cert_file", "PEM certificate; empty: <state>/tls/server.crt, self-signed at first start"},
      {"tls.key_file", "PEM private key matching tls.cert_file"},
      {"webui.dir", "directory of the web UI; empty: <vcrmd dir>/../share/vcrm/webui"},
      {"session.idle_minutes", "sign-out after this many idle minutes (default 60)"},
      {"session.max_hours", "longest a session lives (default 12)"},
      {"log.level", "debug, info, warn or error (default info); changeable at run time"},
      {"conference.prelaunch_seconds",
       "rooms are created on the bridge this long before start (default 60)"},
      {"conference.empty_grace_seconds", "auto-end-when-empty waits this long (default 120)"},
      {"bridge.probe_seconds", "bridge health probe period (default 2)"},
      {"conference.reconcile_seconds", "participant lists are polled this often behind bridge events (default 2)"},
      {"uploads.expire_minutes", "an upload with no activity for this long is removed (1-43200, default 1440)"},
      {"uploads.max_total_mb", "space all unfinished and unclaimed uploads may reserve together, in MiB (1-16777216, default 16384)"},
      {"audit.retention_days", "audit rows older than this many days are pruned (1-36500, default 365)"},
      {"audit.max_rows", "the oldest audit rows beyond this many are pruned (100-1000000000, default 1000000)"},
      {"audit.prune_seconds", "how often the audit log is pruned (1-86400, default 600)"},
      {"conference.reconcile_workers", "conferences polled at once in a reconcile pass, each holding a database connection (1-16, default 4)"},
      {"licence.keyring", "file of vendor keys licence files must be signed with (default: the keyring built into vcrmd)"},
      {"upgrade.keyring",
       "file of the public keys upgrade bundles must be signed with (default: "
       "<root>/etc/vcrm/bundle-keyring; no key is trusted without it)"},
  };
  return all;
}

void Config::set(const std::string& key, const std::string& value, const std::string& origin) {
  if (key == "db.dsn") {
    dbDsn = value;
  } else if (key == "db.embedded_user") {
    if (value.empty()) throw ConfigError(origin + ": db.embedded_user must not be empty");
    dbEmbeddedUser = value;
  } else if (key == "db.pg_bindir") {
    pgBinDir = parsePath(key, value, origin);
  } else if (key == "db.pool_size") {
    dbPoolSize = static_cast<int>(parseInt(key, value, 1, 64, origin));
  } else if (key == "db.strict_leases") {
    if (value != "true" && value != "false") {
      throw ConfigError(origin + ": db.strict_leases = \"" + value + "\" must be true or false");
    }
    dbStrictLeases = value == "true";
  } else if (key == "db.migrations_dir") {
    migrationsDir = parsePath(key, value, origin);
  } else if (key == "http.listen") {
    if (value.empty()) throw ConfigError(origin + ": http.listen must not be empty");
    httpListen = value;
  } else if (key == "https.port") {
    httpsPort = static_cast<int>(parseInt(key, value, 0, 65535, origin));
  } else if (key == "http.port") {
    httpPort = static_cast<int>(parseInt(key, value, -1, 65535, origin));
  } else if (key == "bridge_events.listen") {
    if (value.empty()) throw ConfigError(origin + ": bridge_events.listen must not be empty");
    eventsListen = value;
  } else if (key == "bridge_events.port") {
    eventsPort = static_cast<int>(parseInt(key, value, -1, 65535, origin));
  } else if (key == "http.max_body_bytes") {
    maxBodyBytes = static_cast<std::size_t>(parseInt(key, value, 1024, 64ll << 20, origin));
  } else if (key == "http.threads") {
    httpThreads = static_cast<int>(parseInt(key, value, 2, 256, origin));
  } else if (key == "events.max_per_session") {
    eventsMaxPerSession = static_cast<int>(parseInt(key, value, 1, 64, origin));
  } else if (key == "events.max_per_user") {
    eventsMaxPerUser = static_cast<int>(parseInt(key, value, 1, 256, origin));
  } else if (key == "events.max_streams") {
    eventsMaxStreams = static_cast<int>(parseInt(key, value, 0, 128, origin));
  } else if (key == "audit.retention_days") {
    auditRetentionDays = static_cast<int>(parseInt(key, value, 1, 36500, origin));
  } else if (key == "audit.max_rows") {
    auditMaxRows = parseInt(key, value, 100, 1000000000, origin);
  } else if (key == "audit.prune_seconds") {
    auditPruneSeconds = static_cast<int>(parseInt(key, value, 1, 86400, origin));
  } else if (key == "tls.cert_file") {
    tlsCertFile = parsePath(key, value, origin);
  } else if (key == "tls.key_file") {
    tlsKeyFile = parsePath(key, value, origin);
  } else if (key == "webui.dir") {
    webuiDir = parsePath(key, value, origin);
  } else if (key == "session.idle_minutes") {
    sessionIdleMinutes = static_cast<int>(parseInt(key, value, 1, 7 * 24 * 60, origin));
  } else if (key == "session.max_hours") {
    sessionMaxHours = static_cast<int>(parseInt(key, value, 1, 24 * 30, origin));
  } else if (key == "conference.prelaunch_seconds") {
    prelaunchSeconds = static_cast<int>(parseInt(key, value, 0, 3600, origin));
  } else if (key == "conference.empty_grace_seconds") {
    emptyGraceSeconds = static_cast<int>(parseInt(key, value, 1, 86400, origin));
  } else if (key == "conference.reconcile_seconds") {
    reconcileSeconds = static_cast<int>(parseInt(key, value, 1, 3600, origin));
  } else if (key == "conference.reconcile_workers") {
    reconcileWorkers = static_cast<int>(parseInt(key, value, 1, 16, origin));
  } else if (key == "uploads.expire_minutes") {
    uploadExpireMinutes = static_cast<int>(parseInt(key, value, 1, 30 * 24 * 60, origin));
  } else if (key == "uploads.max_total_mb") {
    uploadMaxTotalMb = static_cast<std::uint64_t>(parseInt(key, value, 1, 16ll << 20, origin));
  } else if (key == "licence.keyring") {
    licenceKeyringFile = parsePath(key, value, origin);
  } else if (key == "upgrade.keyring") {
    upgradeKeyringFile = parsePath(key, value, origin);
  } else if (key == "bridge.probe_seconds") {
    probeSeconds = static_cast<int>(parseInt(key, value, 1, 300, origin));
  } else if (key == "log.level") {
    auto level = parseLogLevel(value);
    if (!level) {
      throw ConfigError(origin + ": log.level = \"" + value +
                        "\" is not one of debug, info, warn, error");
    }
    logLevel = *level;
  } else {
    std::string known;
    for (const auto& [k, _] : keys()) known += (known.empty() ? "" : ", ") + k;
    throw ConfigError(origin + ": unknown setting \"" + key + "\" (known settings: " + known + ")");
  }
}

void Config::apply(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  std::string line;
  int lineNo = 0;
  std::set<std::string> seen;
  while (std::getline(in, line)) {
    ++lineNo;
    const std::string where = origin + ":" + std::to_string(lineNo);
    for (char c : line) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
        throw ConfigError(where + ": control character in configuration line");
      }
    }
    const std::string t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    const auto eq = t.find('=');
    if (eq == std::string::npos) {
      throw ConfigError(where + ": expected \"key = value\", got \"" + t + "\"");
    }
    const std::string key = trim(std::string_view(t).substr(0, eq));
    std::string value = trim(std::string_view(t).substr(eq + 1));
    if (key.empty()) throw ConfigError(where + ": missing key before \"=\"");
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    if (!seen.insert(key).second) {
      throw ConfigError(where + ": \"" + key + "\" is set twice in this file");
    }
    set(key, value, where);
  }
}

Config Config::load(const std::filesystem::path& root, const std::vector<std::string>& overrides) {
  if (root.empty() || !root.is_absolute()) {
    throw ConfigError("the root prefix must be an absolute path, got \"" + root.string() + "\"");
  }
  Config c;
  c.paths.root = root;
  const auto file = c.paths.configFile();
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    std::string text;
    try {
      text = files::readFile(file, 64 * 1024);
    } catch (const IoError& e) {
      throw ConfigError(std::string("cannot read the configuration: ") + e.what());
    }
    c.apply(text, file.string());
  }
  for (const auto& o : overrides) {
    const auto eq = o.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("command line: --set expects key=value, got \"" + o + "\"");
    }
    c.set(trim(o.substr(0, eq)), trim(o.substr(eq + 1)), "command line");
  }
  return c;
}

}  // namespace vcrm
