// An appliance installed as an operator's would be, for the real upgrade tests: this build
// (version N) installed with `cmake --install` into slot a under a temp root, `current` pointing
// at it, the repository's TEST bundle key in the keyring, run by that slot's vcrm-supervisor on
// loopback ports chosen once (so a Janus posting events and a client reach the new version at
// the same address after an upgrade), with its embedded PostgreSQL (run as user vcrm when the
// test runs as root), the admin's first password changed and the unlimited test licence
// applied. The destructor stops the supervisor, vcrmd and PostgreSQL even when a test failed
// half-way. And the later versions packaging/dev test builds beside this one (build-nplus1,
// build-unhealthy), made into signed bundles with packaging/build-bundle.
#pragma once

#include <Poco/JSON/Object.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "https_client.h"
#include "temp_dir.h"
#include "vcrm/upgrade/slots.h"
#include "vcrmd_process.h"

namespace vcrm::test {

// A later version of this code, built by packaging/dev test beside build/:
//  - NextBuild::NPlus1: build-nplus1, version N with the patch number + 1 and the migration of
//    tests/upgrade/nplus1 (env VCRM_NPLUS1_BUILD);
//  - NextBuild::Unhealthy: build-unhealthy, N + 2, the same migration and a /healthz that
//    always answers 503 (env VCRM_UNHEALTHY_BUILD).
enum class NextBuild { NPlus1, Unhealthy };

// The build directory, from its environment variable or else the sibling of build/ by that
// name; nullopt when there is no vcrmd there. nextBuildMissing() says what to run to make it.
std::optional<std::filesystem::path> nextBuildDir(NextBuild which);
std::string nextBuildMissing(NextBuild which);
// Whether a missing next build is a failure rather than a skip: packaging/dev test sets
// VCRM_NEXT_BUILDS_REQUIRED=1, so there the real upgrade tests always run.
bool nextBuildsRequired();

// In a test body: the next build's directory, or the test skipped (failed under packaging/dev
// test) with what to run to make it.
#define VCRM_NEXT_BUILD_OR_SKIP(var, which)                  \
  const auto var##Found = ::vcrm::test::nextBuildDir(which); \
  if (!var##Found) {                                         \
    if (::vcrm::test::nextBuildsRequired()) {                \
      FAIL() << ::vcrm::test::nextBuildMissing(which);       \
    }                                                        \
    GTEST_SKIP() << ::vcrm::test::nextBuildMissing(which);   \
  }                                                          \
  const std::filesystem::path var = *var##Found

// What `<build>/bin/vcrmd --version` prints, the version alone ("0.1.1").
std::string versionOfBuild(const std::filesystem::path& buildDir);

// `cmake --install buildDir --prefix prefix`: the tree a slot holds. Throws with cmake's output.
void installBuild(const std::filesystem::path& buildDir, const std::filesystem::path& prefix);

// A signed bundle of `buildDir` made by packaging/build-bundle with the repository's TEST key
// (the version is the build's); its output goes to `log`. Throws with that output on failure.
void makeBundleOfBuild(const std::filesystem::path& buildDir, const std::filesystem::path& out,
                       const std::filesystem::path& log);

// The operator's steps of an upgrade through the API as `client` (an operator or admin):
// the bundle's bytes uploaded through tus (/api/v1/upgrade/uploads), then verified
// (POST /api/v1/upgrade); returns that answer (201 with {"bundle"} when it is accepted).
HttpResult uploadAndVerifyBundle(HttpsClient& client, const std::filesystem::path& bundle);
// POST /api/v1/upgrade/confirm {"backup_passphrase"}.
HttpResult confirmUpgrade(HttpsClient& client, const std::string& backupPassphrase);

class InstalledAppliance;
// Follows GET /api/v1/upgrade (as admin, signing in again whenever the vcrmd serving changes or
// none answers, as the page does across the restart) until the upgrade `id` has ended: phase
// "done" or "failed" as told by the version that runs afterwards (to_version when it is done,
// from_version when not). Returns that last answer, or throws with the last one seen and the
// appliance's output when `timeout` passes first.
Poco::JSON::Object::Ptr awaitUpgradeEnd(InstalledAppliance& appliance, const std::string& id,
                                        std::chrono::seconds timeout);

class InstalledAppliance {
 public:
  struct Options {
    std::vector<std::string> settings;        // extra "key=value" for every vcrmd it starts
    std::vector<std::string> supervisorArgs;  // e.g. --trial-timeout-ms 60000
  };
  InstalledAppliance();
  // Installs and starts; throws with the supervisor's and vcrmd's output if it does not come up.
  explicit InstalledAppliance(Options options);
  ~InstalledAppliance();
  InstalledAppliance(const InstalledAppliance&) = delete;
  InstalledAppliance& operator=(const InstalledAppliance&) = delete;

  VcrmdProcess& app() { return *app_; }
  const std::filesystem::path& root() const { return root_; }
  upgrade::SlotLayout slots() const { return upgrade::SlotLayout(root_); }
  // Where scratch files of the test go (bundles, logs): inside the temp dir, beside the root.
  std::filesystem::path scratch() const { return tmp_.path(); }
  // The fixed ports of every vcrmd it starts.
  int httpsPort() const { return httpsPort_; }
  int eventsPort() const { return eventsPort_; }
  // A client of whichever vcrmd serves now (the ports stay).
  HttpsClient client() const { return app_->client(); }
  HttpsClient adminClient() const { return app_->adminClient(); }
  // The version the vcrmd now serving says it is (GET /api/v1/version), "" when none answers.
  std::string servedVersion() const;
  // What the ready file of the vcrmd now running says.
  std::string readyVersion() const;

 private:
  TempDir tmp_{"vcrm-installed"};
  std::filesystem::path root_;
  int httpsPort_ = 0;
  int httpPort_ = 0;
  int eventsPort_ = 0;
  std::unique_ptr<VcrmdProcess> app_;
};

}  // namespace vcrm::test
