#include "vcrm/daemon/app.h"

#include <Poco/Net/SSLManager.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>

#include "vcrm/common/error.h"
#include "vcrm/common/process.h"
#include "vcrm/common/tls_cert.h"
#include "vcrm/common/version.h"
#include "vcrm/daemon/api_client.h"
#include "vcrm/daemon/migrations.h"
#include "vcrm/daemon/restore_swap.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {
constexpr const char* kComponent = "vcrmd";
}

App::App(Config config, Logger& log, std::vector<ModuleFactory> extra, Restarter restarter,
         Restarter restartFromCurrent)
    : config_(std::move(config)),
      log_(log),
      extra_(std::move(extra)),
      restarter_(std::move(restarter)),
      exitToCurrent_(std::move(restartFromCurrent)) {
  Poco::Net::initializeSSL();
}

App::~App() {
  stop();
  Poco::Net::uninitializeSSL();
}

void App::lockRoot() {
  files::ensureDir(config_.paths.runDir(), 0755);
  const auto lockPath = config_.paths.runDir() / "vcrmd.lock";
  files::Fd fd(::open(lockPath.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw StartupError("cannot open " + lockPath.string() + ": " + errnoText(errno));
  if (flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    throw StartupError("another vcrmd is already running on " + config_.paths.root.string() +
                       " (it holds " + lockPath.string() + "); stop it first");
  }
  rootLock_ = std::move(fd);
}

void App::start() {
  log_.setLevel(config_.logLevel);
  files::ensureDir(config_.paths.stateDir(), 0755);
  lockRoot();

  std::string baseDsn = config_.dbDsn;
  if (baseDsn.empty()) {
    PgCluster::Settings s;
    s.dataDir = config_.paths.pgDataDir();
    s.socketDir = config_.paths.pgSocketDir();
    s.osUser = config_.dbEmbeddedUser;
    s.binDir = config_.pgBinDir;
    cluster_ = std::make_unique<PgCluster>(s, log_);
    cluster_->start();
    baseDsn = cluster_->dsn();
  }
  // A restore swaps databases by rewriting the pointer file; without one the DSN's own.
  std::string base = db::databaseOf(baseDsn);
  if (base.empty()) base = restore::kDefaultDatabase;
  recoverUpgrade(baseDsn, base);
  if (restartFromCurrent_) return;
  const std::string active = restore::activeDatabase(config_.paths, base);
  const std::string dsn = db::withDatabase(baseDsn, active);

  {
    std::optional<db::Connection> c;
    try {
      c.emplace(dsn);
    } catch (const DbError& e) {
      if (active == base) throw;
      throw StartupError("cannot connect to database " + active + ", which " +
                         restore::Layout(config_.paths).pointerFile().string() + " names: " +
                         e.what() + "; restore a backup, or remove that file to use " + base);
    }
    schema_ = migrate(*c, loadMigrations(config_.migrationsDir), log_);
    restore::dropLeftoverDatabases(config_.paths, base, *c, log_);
  }
  dsn_ = dsn;
  pool_ = std::make_unique<db::Pool>(dsn, static_cast<std::size_t>(config_.dbPoolSize),
                                     config_.dbStrictLeases);

  AuthService::Options authOptions;
  authOptions.idle = std::chrono::minutes(config_.sessionIdleMinutes);
  authOptions.maxAge = std::chrono::hours(config_.sessionMaxHours);
  authOptions.initialPasswordFile = config_.paths.initialAdminPasswordFile();
  auth_ = std::make_unique<AuthService>(*pool_, log_, authOptions);
  audit_ = std::make_unique<AuditLog>(*pool_, log_);

  initialPassword_ = auth_->bootstrapAdmin();
  if (initialPassword_) {
    files::atomicWrite(config_.paths.initialAdminPasswordFile(), *initialPassword_ + "\n", 0600);
  } else {
    auth_->forgetSpentInitialPassword();
  }

  const std::string certFile = config_.tlsCertFile.empty()
                                   ? (config_.paths.tlsDir() / "server.crt").string()
                                   : config_.tlsCertFile;
  const std::string keyFile = config_.tlsKeyFile.empty()
                                  ? (config_.paths.tlsDir() / "server.key").string()
                                  : config_.tlsKeyFile;
  if (config_.tlsCertFile.empty() && tls::ensureSelfSigned(certFile, keyFile)) {
    log_.info(kComponent, "TLS_SELF_SIGNED",
              "created a self-signed certificate; replace it with "
              "tls.cert_file and tls.key_file",
              certFile);
  }

  const fs::path webui = config_.webuiDir.empty()
                             ? fs::path(process::selfDir()) / "../share/vcrm/webui"
                             : fs::path(config_.webuiDir);
  bus_ = std::make_unique<EventBus>();
  listeners_.eventsListen = config_.eventsListen;
  modules_ =
      std::make_unique<ModuleList>([this](const std::vector<std::unique_ptr<Module>>& earlier) {
        ModuleContext ctx{config_, log_,    *pool_,     *bus_,
                          *auth_,  *audit_, listeners_, vcrm::productVersion(),
                          schema_, dsn_,    earlier,    restarter_};
        ctx.requestRestartFromCurrent = exitToCurrent_;
        ctx.stopServing = [this](const std::string& reason) { return stopServing(reason, true); };
        return ctx;
      });
  registerModules(*modules_);
  for (const auto& make : extra_) modules_->add(make(modules_->context()));

  Api::Options ao;
  ao.maxBodyBytes = config_.maxBodyBytes;
  ao.webuiDir = webui.lexically_normal();
  api_ = std::make_unique<Api>(ao, *auth_, *audit_, log_, modules_->routes());

  // Every node is active until the redundancy pair exists: all workers run.
  for (auto* w : modules_->workers()) {
    w->start();
    started_.push_back(w);
  }

  WebServer::Options wo;
  wo.listen = config_.httpListen;
  wo.httpsPort = config_.httpsPort;
  wo.httpPort = config_.httpPort;
  wo.eventsListen = config_.eventsListen;
  wo.eventsPort = config_.eventsPort;
  wo.certFile = certFile;
  wo.keyFile = keyFile;
  wo.threads = config_.httpThreads;
  web_ = std::make_unique<WebServer>(wo, *api_, log_);
  web_->start();
  listeners_.eventsPort = web_->eventsPort();
  writeReadyFile();
  log_.info(kComponent, "STARTED",
            std::string("vcrm ") + vcrm::productVersion() + " ready at " + url() + " (schema " +
                std::to_string(schema_) + ")");
  certFile_ = certFile;
  if (onTrial_) markUpgradeGood();
}

void App::recoverUpgrade(const std::string& serverDsn, const std::string& base) {
  auto callbacks =
      upgradeDatabaseCallbacks(config_.paths, serverDsn, base, config_.migrationsDir, log_);
  callbacks.healthCheck = [this] { checkHealth(); };
  upgrade_ = upgradeSelf(config_.paths, std::move(callbacks), log_);
  if (!upgrade_) return;
  const auto outcome = upgrade_->engine->recover(upgrade_->running);
  log_.info(kComponent, "UPGRADE_RECOVERY",
            "upgrade recovery: " + std::string(upgrade::startOutcomeName(outcome)));
  restartFromCurrent_ = outcome == upgrade::StartOutcome::RestartFromCurrent;
  onTrial_ = outcome == upgrade::StartOutcome::OnTrial;
}

void App::checkHealth() {
  pool_->acquire()->exec("SELECT 1");
  std::string host = config_.httpListen;
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host == "::") host = "::1";
  ApiClient client({.host = host, .port = httpsPort(), .caFile = certFile_});
  const auto reply = client.request("GET", "/healthz");
  if (reply.status != 200) {
    throw Error("unhealthy",
                "GET /healthz answered " + std::to_string(reply.status) + ": " + reply.body);
  }
}

void App::markUpgradeGood() {
  const auto outcome = upgrade_->engine->markGood();
  onTrial_ = false;
  log_.info(kComponent, "UPGRADE_MARK_GOOD",
            "upgrade check: " + std::string(upgrade::startOutcomeName(outcome)));
  restartFromCurrent_ = outcome == upgrade::StartOutcome::RestartFromCurrent;
  // A page that reconnected after the restart hears the end (GET /api/v1/upgrade has it all).
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("state", restartFromCurrent_ ? "rolled-back" : "complete");
  o->set("version", std::string(vcrm::productVersion()));
  if (const auto r = upgrade_->engine->current()) o->set("id", r->id);
  bus_->publish("upgrade", json::stringify(o));
}

void App::writeReadyFile() {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("pid", static_cast<int>(getpid()));
  o->set("https_port", web_->httpsPort());
  o->set("http_port", web_->httpPort());
  o->set("events_port", web_->eventsPort());
  o->set("version", std::string(vcrm::productVersion()));
  o->set("schema", schema_);
  o->set("url", url());
  // Tells a restart in the same process (after a restore) from the start before it.
  o->set("started_at", std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
  files::atomicWrite(config_.paths.readyFile(), json::stringify(o) + "\n", 0644);
}

int App::httpsPort() const {
  return web_ ? web_->httpsPort() : -1;
}
int App::httpPort() const {
  return web_ ? web_->httpPort() : -1;
}

std::string App::url() const {
  std::string host = config_.httpListen;
  if (host == "0.0.0.0" || host == "::") {
    char name[256] = {};
    host = gethostname(name, sizeof name - 1) == 0 && name[0] ? name : "localhost";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return "https://" + host + ":" + std::to_string(httpsPort()) + "/";
}

bool App::stopServing(const std::string& reason, bool closePool) {
  const std::lock_guard<std::mutex> lock(servingMutex_);
  // Live event streams end first so the listeners can close without waiting on them; each
  // writes out what was published before the close (a restore's last step) and then ends.
  if (bus_ && !bus_->closed()) {
    if (!reason.empty()) log_.info(kComponent, "STOP_SERVING", "stopping to serve: " + reason);
    bus_->close();
    if (!bus_->awaitReaders(std::chrono::seconds(2)))
      log_.warn(kComponent, "STREAMS_SLOW", "an event stream did not end within 2 s");
  }
  for (auto it = started_.rbegin(); it != started_.rend(); ++it) (*it)->stop();
  started_.clear();
  if (web_) {
    std::error_code ec;
    fs::remove(config_.paths.readyFile(), ec);
    web_->stop();
    web_.reset();
    log_.info(kComponent, "STOPPED", "listeners closed");
  }
  if (!closePool || !pool_ || poolClosed_) return true;
  poolClosed_ = true;
  if (pool_->close(std::chrono::seconds(10))) return true;
  log_.warn(kComponent, "LEASE_KEPT",
            "a database connection was still leased 10 s after the "
            "workers and listeners stopped");
  return false;
}

void App::stop() {
  stopServing("", false);
  api_.reset();
  if (modules_) modules_->clear();
  modules_.reset();
  bus_.reset();
  audit_.reset();
  auth_.reset();
  pool_.reset();
  if (cluster_) {
    try {
      cluster_->stop();
    } catch (const std::exception& e) {
      log_.error(kComponent, "PG_STOP_FAILED", e.what());
    }
    cluster_.reset();
  }
  rootLock_.reset();
}

}  // namespace vcrm
