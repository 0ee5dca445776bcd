#include "vcrm/common/pg_cluster.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "vcrm/common/db.h"
#include "vcrm/common/error.h"
#include "vcrm/common/files.h"

namespace fs = std::filesystem;

namespace vcrm {

namespace {

constexpr const char* kComponent = "pgcluster";

// Files in the data directory belong to the database user, who could swap them for links:
// they are read without following links, and a link reads as nothing.
std::string firstLine(const fs::path& p) {
  try {
    const std::string text = files::readFile(p, 1 << 20, files::Links::Refuse);
    return text.substr(0, text.find('\n'));
  } catch (const IoError&) {
    return "";
  }
}

// The last `count` lines of the server log, for an error message; the reason it cannot be read
// instead of its lines when it is not a plain file.
std::string logTail(const fs::path& p, std::size_t count) {
  std::string text;
  try {
    text = files::readFile(p, 64u << 20, files::Links::Refuse);
  } catch (const IoError& e) {
    return std::string("(") + e.what() + ")\n";
  }
  // Back from the end over `count` line breaks (a final newline ends the last line, it does not
  // start another).
  std::size_t start = text.size();
  if (start > 0 && text[start - 1] == '\n') --start;
  for (std::size_t seen = 0; start > 0; --start) {
    if (text[start - 1] == '\n' && ++seen == count) break;
  }
  return text.substr(start);
}

void chownTree(const fs::path& dir, const process::RunAs& who) {
  if (chown(dir.c_str(), who.uid, who.gid) != 0) {
    throw StartupError("cannot give " + dir.string() + " to the database user: " +
                       errnoText(errno));
  }
}

}  // namespace

std::string findPgBinDir() {
  std::error_code ec;
  int best = -1;
  std::string bestDir;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long v = std::strtol(name.c_str(), &end, 10);
    if (end && *end == '\0' && v > best && fs::exists(entry.path() / "bin/pg_ctl")) {
      best = static_cast<int>(v);
      bestDir = (entry.path() / "bin").string();
    }
  }
  if (bestDir.empty()) {
    throw StartupError(
        "no PostgreSQL server found under /usr/lib/postgresql: install postgresql-15 "
        "(packaging/dev does) or set db.dsn to an external server");
  }
  return bestDir;
}

PgCluster::PgCluster(Settings settings, Logger& log) : settings_(std::move(settings)), log_(log) {
  if (settings_.binDir.empty()) settings_.binDir = findPgBinDir();
}

PgCluster::~PgCluster() {
  if (startedByUs_) {
    try {
      stop();
    } catch (const std::exception& e) {
      log_.error(kComponent, "PG_STOP_FAILED", e.what());
    }
  }
}

std::string PgCluster::binary(const std::string& name) const {
  return (fs::path(settings_.binDir) / name).string();
}

process::Outcome PgCluster::pgctl(const std::vector<std::string>& args) {
  std::vector<std::string> argv{binary("pg_ctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  process::Options o;
  o.runAs = runAs_;
  o.timeout = std::chrono::seconds(90);
  o.workDir = settings_.dataDir.parent_path().string();
  return process::run(argv, o);
}

void PgCluster::initdb() {
  const fs::path tmp = settings_.dataDir.string() + ".initdb";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  files::ensureDir(tmp, 0700);
  if (runAs_) chownTree(tmp, *runAs_);
  log_.info(kComponent, "PG_INITDB", "creating the embedded database cluster",
            settings_.dataDir.string());
  process::Options o;
  o.runAs = runAs_;
  o.timeout = std::chrono::minutes(5);
  o.workDir = tmp.parent_path().string();
  const auto out = process::run({binary("initdb"), "-D", tmp.string(), "-U", settings_.superuser,
                                 "-E", "UTF8", "--no-locale", "--auth=trust"},
                                o);
  if (!out.ok()) {
    fs::remove_all(tmp, ec);
    throw StartupError("initdb failed for " + settings_.dataDir.string() + ":\n" + out.output);
  }
  // Our settings live in a file we rewrite at each start, included from postgresql.conf.
  std::ofstream conf(tmp / "postgresql.conf", std::ios::app);
  conf << "\n# vcrm: listen on a Unix socket only; see vcrm.conf (rewritten at each start)\n"
          "include_if_exists = 'vcrm.conf'\n";
  conf.close();
  // The rename makes a half-finished initdb invisible: a crash leaves only the .initdb dir.
  fs::rename(tmp, settings_.dataDir);
  files::fsyncDir(settings_.dataDir.parent_path());
}

std::optional<pid_t> PgCluster::livePostmaster() const {
  const fs::path pidFile = settings_.dataDir / "postmaster.pid";
  std::error_code ec;
  if (!fs::exists(pidFile, ec)) return std::nullopt;
  const std::string line = firstLine(pidFile);
  const pid_t pid = static_cast<pid_t>(std::strtol(line.c_str(), nullptr, 10));
  if (pid <= 0 || !process::alive(pid)) return std::nullopt;
  // A live pid might belong to anything after a reboot or a kill -9: it is our postmaster
  // only if its working directory is our data directory.
  const fs::path cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  if (ec || fs::weakly_canonical(cwd, ec) != fs::weakly_canonical(settings_.dataDir, ec)) {
    return std::nullopt;
  }
  return pid;
}

void PgCluster::clearStaleLock() {
  const fs::path pidFile = settings_.dataDir / "postmaster.pid";
  std::error_code ec;
  if (!fs::exists(pidFile, ec) || livePostmaster()) return;
  log_.warn(kComponent, "PG_STALE_LOCK",
            "removing postmaster.pid left by a server that is no longer running",
            settings_.dataDir.string());
  fs::remove(pidFile, ec);
  const std::string sock = ".s.PGSQL." + std::to_string(settings_.port);
  fs::remove(settings_.socketDir / (sock + ".lock"), ec);
  fs::remove(settings_.socketDir / sock, ec);
}

bool PgCluster::running() const { return livePostmaster().has_value(); }

void PgCluster::start() {
  const std::string socketPath =
      (settings_.socketDir / (".s.PGSQL." + std::to_string(settings_.port))).string();
  if (socketPath.size() > 100) {
    throw StartupError("the database socket path " + socketPath + " is longer than 100 bytes, " +
                       "which Unix sockets do not allow: choose a shorter root prefix");
  }
  if (geteuid() == 0) {
    runAs_ = process::lookupUser(settings_.osUser);
    if (!runAs_) {
      log_.info(kComponent, "PG_CREATE_USER", "creating system user for the embedded database",
                settings_.osUser);
      const auto out = process::run({"/usr/sbin/useradd", "--system", "--no-create-home",
                                     "--home-dir", "/nonexistent", "--shell",
                                     "/usr/sbin/nologin", settings_.osUser});
      runAs_ = process::lookupUser(settings_.osUser);
      if (!runAs_) {
        throw StartupError("PostgreSQL will not run as root and the user \"" +
                           settings_.osUser + "\" does not exist and could not be created (" +
                           out.output + "): create it with useradd --system " + settings_.osUser);
      }
    }
  }
  files::ensureDir(settings_.dataDir.parent_path(), 0755);
  files::ensureDir(settings_.socketDir, 0700);
  if (runAs_) chownTree(settings_.socketDir, *runAs_);

  if (runAs_) {
    // The unprivileged user must be able to reach the state directory through every parent.
    process::Options o;
    o.runAs = runAs_;
    const auto probe = process::run({"/usr/bin/test", "-w", settings_.socketDir.string()}, o);
    if (!probe.ok()) {
      throw StartupError("the database runs as user \"" + settings_.osUser +
                         "\", which cannot reach " + settings_.socketDir.string() +
                         ": a parent directory is not searchable by others (for example /root); "
                         "choose a root prefix outside it");
    }
  }

  std::error_code ec;
  if (!fs::exists(settings_.dataDir / "PG_VERSION", ec)) initdb();

  std::optional<files::Owner> owner;
  if (runAs_) owner = files::Owner{runAs_->uid, runAs_->gid};
  files::atomicWrite(settings_.dataDir / "vcrm.conf",
                     "# Written by vcrmd at each start; edits here are overwritten.\n"
                     "listen_addresses = ''\n"
                     "unix_socket_directories = '" +
                         settings_.socketDir.string() +
                         "'\n"
                         "unix_socket_permissions = 0700\n"
                         "port = " +
                         std::to_string(settings_.port) + "\n",
                     0600, owner);

  startedByUs_ = true;
  if (auto pid = livePostmaster()) {
    log_.info(kComponent, "PG_ADOPT", "embedded database already running; using it",
              std::to_string(*pid));
  } else {
    clearStaleLock();
    const auto out = pgctl({"start", "-w", "-t", "60", "-s", "-D", settings_.dataDir.string(),
                            "-l", (settings_.dataDir / "server.log").string()});
    if (!out.ok()) {
      startedByUs_ = false;
      const std::string tail = logTail(settings_.dataDir / "server.log", 15);
      throw StartupError("the embedded PostgreSQL did not start (" + out.output + ")\n" +
                         "last lines of " + (settings_.dataDir / "server.log").string() + ":\n" +
                         tail);
    }
    log_.info(kComponent, "PG_STARTED", "embedded database started", settings_.dataDir.string());
  }
  ensureDatabase();
}

void PgCluster::ensureDatabase() {
  db::Connection c(dsn("postgres"));
  auto r = c.exec("SELECT 1 FROM pg_database WHERE datname = $1", {settings_.database});
  if (r.empty()) {
    c.execScript("CREATE DATABASE " + db::quoteIdentifier(settings_.database));
    log_.info(kComponent, "PG_CREATEDB", "database created", settings_.database);
  }
}

void PgCluster::stop() {
  const auto postmaster = livePostmaster();
  if (!postmaster) {
    startedByUs_ = false;
    return;
  }
  const auto out = pgctl({"stop", "-w", "-t", "60", "-s", "-m", "fast", "-D",
                          settings_.dataDir.string()});
  startedByUs_ = false;
  if (!out.ok()) throw StartupError("pg_ctl stop failed: " + out.output);
  // pg_ctl returns once postmaster.pid is gone, which the postmaster removes on its way out,
  // a moment before it has exited: "stopped" means the process is gone too.
  const fs::path cwd = "/proc/" + std::to_string(*postmaster) + "/cwd";
  for (int i = 0; i < 1000; ++i) {
    std::error_code ec;
    if (fs::read_symlink(cwd, ec).empty() || ec) break;  // exited (a zombie has no cwd either)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  log_.info(kComponent, "PG_STOPPED", "embedded database stopped", settings_.dataDir.string());
}

std::string PgCluster::dsn() const { return dsn(settings_.database); }

std::string PgCluster::dsn(const std::string& database) const {
  return "host=" + db::dsnQuote(settings_.socketDir.string()) +
         " port=" + std::to_string(settings_.port) + " user=" + db::dsnQuote(settings_.superuser) +
         " dbname=" + db::dsnQuote(database) + " connect_timeout=10";
}

}  // namespace vcrm
