#include "installed_appliance.h"

#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include "child.h"
#include "janus_process.h"
#include "tus_client.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/process.h"

namespace fs = std::filesystem;

namespace vcrm::test {

namespace {

struct NextBuildInfo {
  const char* env;
  const char* sibling;
  const char* what;
};

NextBuildInfo infoOf(NextBuild which) {
  switch (which) {
    case NextBuild::NPlus1:
      return {"VCRM_NPLUS1_BUILD", "build-nplus1", "the next version (N+1, one more migration)"};
    case NextBuild::Unhealthy:
      return {"VCRM_UNHEALTHY_BUILD", "build-unhealthy",
              "the unhealthy next version (N+2, /healthz answers 503)"};
  }
  throw std::logic_error("unknown next build");
}

fs::path buildDirOfThisBuild() {
  return binDir().parent_path();
}

// Whether `pid` still runs (a zombie does not: its cwd link is gone).
bool runs(pid_t pid) {
  std::error_code ec;
  return !fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).empty();
}

}  // namespace

std::optional<fs::path> nextBuildDir(NextBuild which) {
  const auto info = infoOf(which);
  const char* env = std::getenv(info.env);
  const fs::path dir =
      env && *env ? fs::path(env) : buildDirOfThisBuild().parent_path() / info.sibling;
  if (!fs::exists(dir / "bin/vcrmd")) return std::nullopt;
  return dir;
}

std::string nextBuildMissing(NextBuild which) {
  const auto info = infoOf(which);
  const char* env = std::getenv(info.env);
  const fs::path dir =
      env && *env ? fs::path(env) : buildDirOfThisBuild().parent_path() / info.sibling;
  return std::string("no build of ") + info.what + " at " + dir.string() +
         " (bin/vcrmd is missing; " + info.env +
         " names another): packaging/dev test builds it; run the tests that way";
}

bool nextBuildsRequired() {
  const char* env = std::getenv("VCRM_NEXT_BUILDS_REQUIRED");
  return env && std::string(env) == "1";
}

std::string versionOfBuild(const fs::path& buildDir) {
  const auto r = process::run({(buildDir / "bin/vcrmd").string(), "--version"});
  if (!r.ok())
    throw std::runtime_error(buildDir.string() + "/bin/vcrmd --version failed: " + r.output);
  std::string v = r.output;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  const auto space = v.rfind(' ');
  return space == std::string::npos ? v : v.substr(space + 1);
}

void installBuild(const fs::path& buildDir, const fs::path& prefix) {
  const auto r = process::run(
      {VCRM_CMAKE_COMMAND, "--install", buildDir.string(), "--prefix", prefix.string()});
  if (!r.ok())
    throw std::runtime_error("cmake --install " + buildDir.string() + " failed:\n" + r.output);
}

void makeBundleOfBuild(const fs::path& buildDir, const fs::path& out, const fs::path& log) {
  const auto r = runToEnd({(sourceDir() / "packaging/build-bundle").string(), "--build",
                           buildDir.string(), "--out", out.string()},
                          log, std::chrono::seconds(180));
  if (r.status != 0 || !fs::exists(out)) {
    throw std::runtime_error("packaging/build-bundle --build " + buildDir.string() + " failed:\n" +
                             r.output);
  }
}

HttpResult uploadAndVerifyBundle(HttpsClient& client, const fs::path& bundle) {
  const auto u = uploadWhole(client, "/api/v1/upgrade/uploads", files::readFile(bundle));
  if (u.finished.status != 201) {
    throw std::runtime_error("the upload of " + bundle.string() + " was refused (" +
                             std::to_string(u.finished.status) + "): " + u.finished.body);
  }
  json::ObjectPtr o = new json::Object;
  o->set("upload_id", u.id);
  return client.postJson("/api/v1/upgrade", json::stringify(o));
}

HttpResult confirmUpgrade(HttpsClient& client, const std::string& backupPassphrase) {
  json::ObjectPtr o = new json::Object;
  o->set("backup_passphrase", backupPassphrase);
  return client.postJson("/api/v1/upgrade/confirm", json::stringify(o));
}

Poco::JSON::Object::Ptr awaitUpgradeEnd(InstalledAppliance& appliance, const std::string& id,
                                        std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "(no answer yet)";
  std::optional<HttpsClient> admin;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (!admin) admin.emplace(appliance.adminClient());
      const auto r = admin->get("/api/v1/upgrade");
      last = std::to_string(r.status) + " " + r.body;
      if (r.status == 401) admin.reset();  // another vcrmd, or its sessions went with the copy
      if (r.status == 200) {
        const auto o = r.json();
        const auto u = o->getObject("upgrade");
        if (u && u->getValue<std::string>("id") == id) {
          const std::string phase = u->getValue<std::string>("phase");
          const std::string running = o->getObject("running")->getValue<std::string>("version");
          if ((phase == "done" && running == u->getValue<std::string>("to_version")) ||
              (phase == "failed" && running == u->getValue<std::string>("from_version"))) {
            return o;
          }
        }
      }
    } catch (const std::exception& e) {
      last = std::string("no answer: ") + e.what();  // listeners stopped: the downtime
      admin.reset();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  throw std::runtime_error(
      "upgrade " + id + " did not end within " + std::to_string(timeout.count()) +
      " s; last GET /api/v1/upgrade: " + last + "\n" + appliance.app().output());
}

InstalledAppliance::InstalledAppliance() : InstalledAppliance(Options{}) {}

InstalledAppliance::InstalledAppliance(Options options) : root_(tmp_.path() / "root") {
  fs::create_directories(root_);
  fs::permissions(root_, fs::perms(0755));
  // What packaging/dev run does: the build's installation into slot a, current -> slots/a.
  const fs::path tree = tmp_.path() / "install-n";
  installBuild(buildDirOfThisBuild(), tree);
  upgrade::SlotLayout layout(root_);
  layout.install(tree, upgrade::Slot::A);
  layout.switchTo(upgrade::Slot::A);
  fs::remove_all(tree);
  // ... and its keyring trusting the repository's TEST bundle key.
  files::ensureDir(root_ / "etc/vcrm", 0755);
  files::atomicWrite(root_ / "etc/vcrm/bundle-keyring",
                     files::readFile(sourceDir() / "upgrade/keys/vcrm-test-bundle.pub"), 0644);

  httpsPort_ = freeLoopbackPort();
  httpPort_ = freeLoopbackPort();
  eventsPort_ = freeLoopbackPort();
  while (httpPort_ == httpsPort_) httpPort_ = freeLoopbackPort();
  while (eventsPort_ == httpsPort_ || eventsPort_ == httpPort_) eventsPort_ = freeLoopbackPort();
  VcrmdProcess::Options o;
  o.root = root_;
  o.supervisor = layout.slotDir(upgrade::Slot::A) / "bin/vcrm-supervisor";
  o.supervisorArgs = options.supervisorArgs;
  o.settings = {"https.port=" + std::to_string(httpsPort_),
                "http.port=" + std::to_string(httpPort_),
                "bridge_events.port=" + std::to_string(eventsPort_)};
  o.settings.insert(o.settings.end(), options.settings.begin(), options.settings.end());
  app_ = std::make_unique<VcrmdProcess>(o);
  app_->start();
}

InstalledAppliance::~InstalledAppliance() {
  if (!app_) return;
  // The supervisor first (it stops vcrmd), then a vcrmd that outlived it all the same, then
  // (in VcrmdProcess's destructor) the database.
  const pid_t daemon = app_->daemonPid();
  if (app_->running()) app_->stop();
  if (daemon > 0 && runs(daemon)) {
    kill(daemon, SIGKILL);
    for (int i = 0; i < 100 && runs(daemon); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  app_.reset();
}

std::string InstalledAppliance::servedVersion() const {
  try {
    auto c = client();
    const auto r = c.get("/api/v1/version");
    if (r.status != 200) return "";
    return r.json()->getValue<std::string>("version");
  } catch (const std::exception&) {
    return "";
  }
}

std::string InstalledAppliance::readyVersion() const {
  try {
    return json::parseObject(files::readFile(app_->stateDir() / "run/vcrmd.json"))
        ->getValue<std::string>("version");
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace vcrm::test
