#include "vcrmd_process.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "child.h"
#include "licence_cases.h"
#include "vcrm/common/db.h"
#include "vcrm/licensing/licence_file.h"

namespace fs = std::filesystem;

namespace vcrm::test {

fs::path binDir() {
  const char* env = std::getenv("VCRM_BIN_DIR");
  return env && *env ? fs::path(env) : fs::path(VCRM_BIN_DIR);
}

fs::path sourceDir() { return fs::path(VCRM_SOURCE_DIR); }

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

VcrmdProcess::VcrmdProcess() : VcrmdProcess(Options{}) {}

VcrmdProcess::VcrmdProcess(Options options) : options_(std::move(options)) {
  if (options_.root.empty()) {
    ownedRoot_ = std::make_unique<TempDir>("vcrmd");
    root_ = ownedRoot_->path();
  } else {
    root_ = options_.root;
  }
  if (options_.binary.empty()) options_.binary = binDir() / "vcrmd";
}

VcrmdProcess::~VcrmdProcess() {
  if (running()) stop();
  // Whatever happened to vcrmd, its database must not outlive the test.
  if (auto pm = postmasterPid()) {
    kill(*pm, SIGQUIT);
    for (int i = 0; i < 100 && kill(*pm, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(*pm, SIGKILL);
  }
}

std::optional<pid_t> VcrmdProcess::postmasterPid() const {
  std::ifstream in(stateDir() / "pgdata/postmaster.pid");
  long pid = 0;
  if (!(in >> pid) || pid <= 0 || kill(static_cast<pid_t>(pid), 0) != 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

void VcrmdProcess::start() {
  if (running()) throw std::logic_error("vcrmd already running");
  const fs::path ready = stateDir() / "run/vcrmd.json";
  std::error_code ec;
  fs::remove(ready, ec);
  logFile_ = root_ / ("vcrmd-" + std::to_string(++runs_) + ".log");

  std::vector<std::string> args{options_.binary.string(), "--root", root_.string()};
  if (!options_.supervisor.empty()) {
    args = {options_.supervisor.string(), "--root", root_.string()};
    args.insert(args.end(), options_.supervisorArgs.begin(), options_.supervisorArgs.end());
    args.push_back("--");
  }
  for (const std::string s : {"https.port=0", "http.port=0", "http.listen=127.0.0.1",
                              "bridge_events.port=0",
                              // Every test checks the one-lease rule (see db::Pool).
                              "db.strict_leases=true"}) {
    args.push_back("--set");
    args.push_back(s);
  }
  for (const auto& s : options_.settings) {
    args.push_back("--set");
    args.push_back(s);
  }
  SpawnOptions spawn;
  spawn.log = logFile_;
  spawn.env = options_.env;
  pid_ = spawnLogged(args, spawn);

  if (!awaitReady(-1, "vcrmd exited during start-up")) {
    killHard(false);
    throw std::runtime_error("vcrmd was not ready within the time limit:\n" + output());
  }
  if (options_.chooseAdminPassword) chooseAdminPassword();
  if (options_.chooseAdminPassword && options_.applyTestLicence) applyTestLicence();
}

bool VcrmdProcess::awaitReady(pid_t notPid, const std::string& whenExited) {
  const auto deadline = std::chrono::steady_clock::now() + options_.readyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error(whenExited + ":\n" + output());
    }
    if (readReadyFile(notPid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

namespace {

// vcrmd's ready file, or null while there is none (it is written atomically).
Poco::JSON::Object::Ptr readyJson(const fs::path& file) {
  try {
    Poco::JSON::Parser p;
    return p.parse(slurp(file)).extract<Poco::JSON::Object::Ptr>();
  } catch (...) {  // NOLINT(bugprone-empty-catch): absent; the caller retries
    return nullptr;
  }
}

}  // namespace

bool VcrmdProcess::readReadyFile(pid_t notPid) {
  const auto o = readyJson(stateDir() / "run/vcrmd.json");
  if (!o) return false;
  const pid_t pid = o->getValue<int>("pid");
  if (pid == notPid || kill(pid, 0) != 0) return false;
  httpsPort_ = o->getValue<int>("https_port");
  httpPort_ = o->getValue<int>("http_port");
  eventsPort_ = o->getValue<int>("events_port");
  startedAt_ = o->optValue<std::int64_t>("started_at", 0);
  return true;
}

pid_t VcrmdProcess::daemonPid() const {
  const auto o = readyJson(stateDir() / "run/vcrmd.json");
  return o ? o->getValue<int>("pid") : -1;
}

void VcrmdProcess::awaitRestart(pid_t previous) {
  if (!awaitReady(previous, "the supervisor exited instead of restarting vcrmd")) {
    throw std::runtime_error("no new vcrmd was ready within the time limit:\n" + output());
  }
}

void VcrmdProcess::awaitInPlaceRestart() {
  const std::int64_t before = startedAt_;
  const auto deadline = std::chrono::steady_clock::now() + options_.readyTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!awaitReady(-1, "vcrmd exited instead of restarting")) break;
    if (startedAt_ != before) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("vcrmd did not restart within the time limit:\n" + output());
}

bool VcrmdProcess::awaitExit(std::chrono::seconds timeout) {
  if (pid_ <= 0) return true;
  int status = 0;
  if (!waitExit(pid_, timeout, &status)) return false;
  pid_ = -1;
  return true;
}

std::string VcrmdProcess::startExpectingFailure() {
  try {
    start();
  } catch (const std::runtime_error&) {
    return output();
  }
  stop();
  throw std::runtime_error("vcrmd started although it was expected to refuse:\n" + output());
}

int VcrmdProcess::stop() {
  if (!running()) return -1;
  const int code = terminate(pid_, std::chrono::seconds(60));
  pid_ = -1;
  return code;
}

void VcrmdProcess::killHard(bool alsoDatabase) {
  const auto pm = postmasterPid();
  if (running()) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitExit(pid_, std::chrono::seconds(10), &status);
    pid_ = -1;
  }
  if (alsoDatabase && pm) {
    // Every process of the cluster, not only the postmaster: nothing survives a power cut.
    kill(*pm, SIGKILL);
    for (int i = 0; i < 200 && kill(*pm, 0) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      const fs::path cwd = fs::read_symlink(entry.path() / "cwd", ec);
      if (!ec && cwd == stateDir() / "pgdata") kill(std::stoi(name), SIGKILL);
    }
  }
}

std::string VcrmdProcess::initialAdminPassword() const {
  std::string pw = slurp(stateDir() / "initial-admin-password");
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  return pw;
}

// The test's own note of the chosen password, beside (not inside) the appliance's state, so
// a later VcrmdProcess on the same root knows it.
std::string VcrmdProcess::adminPassword() const {
  return fs::exists(root_ / "test-admin-password") ? std::string(kAdminPassword) : initialAdminPassword();
}

void VcrmdProcess::chooseAdminPassword() {
  if (fs::exists(root_ / "test-admin-password") || initialAdminPassword().empty()) return;
  auto c = client();
  auto in = c.loginBearer("admin", initialAdminPassword());
  if (in.status != 200) throw std::runtime_error("cannot sign in with the one-time admin password: " + in.body);
  auto changed = c.changePassword(initialAdminPassword(), kAdminPassword);
  if (changed.status != 204) throw std::runtime_error("cannot choose the admin password: " + changed.body);
  std::ofstream(root_ / "test-admin-password") << "chosen\n";
}

void VcrmdProcess::applyTestLicence() {
  auto c = client();
  // A test that made its own admin account (a database from an older release) manages it, and
  // its licence, itself.
  if (adminPassword().empty() || c.loginBearer("admin", adminPassword()).status != 200) return;
  auto current = c.get("/api/v1/license");
  if (current.status == 404) return;  // a vcrmd from before licences
  if (current.status != 200) throw std::runtime_error("cannot read the licence: " + current.body);
  if (!current.json()->isNull("active")) return;  // a restart: applied already
  const std::string serial = current.json()->getValue<std::string>("serial");
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  Poco::JSON::Object body;
  body.set("file", licensing::issueLicence(unlimitedTestLicence(serial, now), testLicenceKey()));
  std::ostringstream text;
  body.stringify(text);
  auto applied = c.postJson("/api/v1/license", text.str());
  if (applied.status != 200)
    throw std::runtime_error("cannot apply the test licence: " + applied.body);
}

HttpResult VcrmdProcess::createReadyUser(HttpsClient& admin, const std::string& name,
                                         const std::vector<std::string>& roles,
                                         const std::string& password) const {
  const std::string once = "one-time " + password;
  Poco::JSON::Object o;
  o.set("username", name);
  o.set("password", once);
  Poco::JSON::Array::Ptr r = new Poco::JSON::Array;
  for (const auto& role : roles) r->add(role);
  o.set("roles", r);
  std::ostringstream body;
  o.stringify(body);
  auto created = admin.postJson("/api/v1/users", body.str());
  if (created.status != 201) return created;
  auto user = client();
  auto in = user.loginBearer(name, once);
  if (in.status != 200) throw std::runtime_error("cannot sign in as the new user " + name + ": " + in.body);
  auto changed = user.changePassword(once, password);
  if (changed.status != 204) throw std::runtime_error("cannot change " + name + "'s password: " + changed.body);
  return created;
}

std::string VcrmdProcess::output() const {
  std::string all;
  for (int i = 1; i <= runs_; ++i) all += slurp(root_ / ("vcrmd-" + std::to_string(i) + ".log"));
  return all;
}

HttpsClient VcrmdProcess::client() const {
  return HttpsClient("127.0.0.1", httpsPort_, (stateDir() / "tls/server.crt").string());
}

HttpsClient VcrmdProcess::adminClient() const {
  auto c = client();
  auto in = c.loginBearer("admin", adminPassword());
  if (in.status != 200) throw std::runtime_error("cannot sign in as admin: " + in.body);
  return c;
}

std::string VcrmdProcess::activeDatabaseName() const {
  std::string name = slurp(stateDir() / "database");
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  return name.empty() ? "vcrm" : name;
}

db::Connection VcrmdProcess::database() const { return database(activeDatabaseName()); }

db::Connection VcrmdProcess::database(const std::string& name) const {
  // The embedded cluster as App starts it: trust on its Unix socket, superuser vcrm.
  return db::Connection("host=" + db::dsnQuote((stateDir() / "pgsocket").string()) +
                        " port=5432 user=vcrm dbname=" + db::dsnQuote(name) +
                        " connect_timeout=10");
}

double VcrmdProcess::databaseClock() const {
  return std::stod(
      database().exec("SELECT extract(epoch FROM clock_timestamp())::text").text(0, 0));
}

}  // namespace vcrm::test
