// The installed appliance of the real upgrade tests (tests/support/installed_appliance.h):
// this build, version N, runs from slot a under vcrm-supervisor, says so at GET /api/v1/upgrade
// and /api/v1/version, serves the login page from the slot, and a bundle of the next version's
// build is made with packaging/build-bundle. Everything stops when the harness goes.
#include "installed_appliance.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "child.h"
#include "vcrm/common/files.h"
#include "vcrm/common/version.h"
#include "vcrm/upgrade/bundle.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;

fs::path exeOf(pid_t pid) {
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe");
}

bool runs(pid_t pid) {
  std::error_code ec;
  return !fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).empty();
}

TEST(InstalledApplianceTest, VersionNRunsFromSlotAUnderTheSupervisorAndSaysSo) {
  pid_t supervisor = -1;
  pid_t daemon = -1;
  std::optional<pid_t> postmaster;
  {
    test::InstalledAppliance appliance;
    auto& app = appliance.app();
    supervisor = app.pid();
    daemon = app.daemonPid();
    postmaster = app.postmasterPid();
    ASSERT_TRUE(postmaster);
    EXPECT_EQ(appliance.slots().current(), Slot::A);
    EXPECT_EQ(exeOf(supervisor), appliance.slots().slotDir(Slot::A) / "bin/vcrm-supervisor");
    EXPECT_EQ(exeOf(daemon), appliance.slots().slotDir(Slot::A) / "bin/vcrmd");
    EXPECT_EQ(app.httpsPort(), appliance.httpsPort()) << "the ports chosen for it";
    EXPECT_EQ(app.eventsPort(), appliance.eventsPort());

    auto admin = appliance.adminClient();  // the first password was changed
    const auto upgrade = admin.get("/api/v1/upgrade");
    ASSERT_EQ(upgrade.status, 200) << upgrade.body;
    EXPECT_EQ(upgrade.json()->getValue<std::string>("state"), "idle");
    const auto running = upgrade.json()->getObject("running");
    EXPECT_EQ(running->getValue<std::string>("slot"), "a") << upgrade.body;
    EXPECT_EQ(running->getValue<std::string>("version"), productVersion());
    EXPECT_EQ(appliance.servedVersion(), productVersion());
    EXPECT_EQ(appliance.readyVersion(), productVersion());
    EXPECT_EQ(test::versionOfBuild(test::binDir().parent_path()), productVersion());

    // The login page comes from the slot's share/ (its version line is filled from
    // /api/v1/version, above).
    const auto page = appliance.client().get("/");
    ASSERT_EQ(page.status, 200);
    EXPECT_EQ(page.body,
              files::readFile(appliance.slots().slotDir(Slot::A) / "share/vcrm/webui/index.html"));
    EXPECT_NE(page.body.find("id=\"version\""), std::string::npos);
    // The licence lifts every limit (the test licence), and the keyring trusts the TEST key.
    const auto licence = admin.get("/api/v1/license");
    ASSERT_EQ(licence.status, 200);
    EXPECT_FALSE(licence.json()->isNull("active")) << licence.body;
    EXPECT_NE(files::readFile(appliance.root() / "etc/vcrm/bundle-keyring")
                  .find("key vcrm-test-bundle-1 ed25519"),
              std::string::npos);
  }
  EXPECT_FALSE(runs(supervisor)) << "the supervisor outlived the harness";
  EXPECT_FALSE(runs(daemon)) << "vcrmd outlived the harness";
  EXPECT_FALSE(runs(*postmaster)) << "PostgreSQL outlived the harness";
}

TEST(InstalledApplianceTest, ABundleOfTheNextVersionsBuildIsMadeWithPackagingBuildBundle) {
  VCRM_NEXT_BUILD_OR_SKIP(next, test::NextBuild::NPlus1);
  const std::string version = test::versionOfBuild(next);
  EXPECT_NE(version, productVersion());
  test::TempDir tmp;
  const fs::path bundle = tmp.path() / "next.bin";
  test::makeBundleOfBuild(next, bundle, tmp.path() / "build-bundle.log");
  const auto r =
      test::runToEnd({(test::binDir() / "vcrm-bundle").string(), "inspect", bundle.string()},
                     tmp.path() / "inspect.log");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(version), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("bin/vcrmd"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace vcrm::upgrade
