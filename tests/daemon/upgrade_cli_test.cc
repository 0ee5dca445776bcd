// `vcrmctl upgrade`: the real binary uploads a bundle to a running vcrmd, which verifies it, and
// prints what the operator must see before confirming; `status` shows it waiting, a bad bundle is
// refused with its reason and exit status 1, `discard` drops the waiting one.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "bad_bundles.h"
#include "child.h"
#include "cutting_relay.h"
#include "temp_dir.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/files.h"
#include "vcrm/common/version.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;
using vcrm::test::VcrmdProcess;

namespace {

vcrm::test::Ran vcrmctl(const VcrmdProcess& vcrmd, const fs::path& dir,
                        const std::vector<std::string>& args, int port = 0) {
  vcrm::files::atomicWrite(dir / "password", std::string(VcrmdProcess::kAdminPassword) + "\n",
                           0600);
  std::vector<std::string> argv{(vcrm::test::binDir() / "vcrmctl").string(),
                                "--root",
                                vcrmd.root().string(),
                                "--password-file",
                                (dir / "password").string(),
                                "upgrade"};
  if (port != 0) argv.insert(argv.begin() + 1, {"--port", std::to_string(port)});
  argv.insert(argv.end(), args.begin(), args.end());
  return vcrm::test::runToEnd(argv, dir / "vcrmctl.log", std::chrono::seconds(120));
}

// Starts `vcrmd` with the repository's TEST bundle key in its keyring, as packaging/dev run does.
void startTrustingTheTestKey(VcrmdProcess& vcrmd) {
  vcrmd.start();
  vcrm::files::ensureDir(vcrmd.root() / "etc/vcrm");
  vcrm::files::atomicWrite(vcrmd.root() / "etc/vcrm/bundle-keyring",
                           vcrm::upgrade::test::testBundleKeyringText());
}

// A release the running version may upgrade to.
vcrm::upgrade::BundleRelease nextRelease() {
  vcrm::upgrade::BundleRelease release = vcrm::upgrade::test::sampleRelease();
  release.version = "99.0.0";
  release.minVersion = vcrm::productVersion();
  return release;
}

TEST(UpgradeCliTest, UploadsAndVerifiesABundleShowsItWaitingAndDiscardsIt) {
  VcrmdProcess vcrmd;
  startTrustingTheTestKey(vcrmd);
  vcrm::test::TempDir tmp;
  vcrm::upgrade::BundleRelease release = nextRelease();
  release.releaseDate = "2026-01-15";
  release.notes = "Line one of the notes.\nLine two.\n";
  const fs::path good = tmp.path() / "vcrm-99.0.0.bin";
  vcrm::files::atomicWrite(good, vcrm::upgrade::test::goodBundle(4096, release));

  auto run = vcrmctl(vcrmd, tmp.path(), {"upload", good.string()});
  ASSERT_EQ(run.status, 0) << run.output;
  for (const std::string& shown : std::vector<std::string>{
           "uploaded 100%", std::string("version:      99.0.0 (running ") + vcrm::productVersion(),
           "released:     2026-01-15", "signed by:    vcrm-test-bundle-1", "entitles this release",
           "  | Line one of the notes.", "  | Line two.",
           "it waits for confirmation"}) {
    EXPECT_NE(run.output.find(shown), std::string::npos) << shown << " in:\n" << run.output;
  }

  run = vcrmctl(vcrmd, tmp.path(), {"status"});
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("state: verified"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("nothing is installed in a slot"), std::string::npos) << run.output;

  // Confirming needs the passphrase of the pre-upgrade backup, then an installed slot.
  run = vcrmctl(vcrmd, tmp.path(), {"confirm"});
  EXPECT_EQ(run.status, 2) << run.output;
  EXPECT_NE(run.output.find("--backup-passphrase-file"), std::string::npos) << run.output;
  const fs::path passphrase = tmp.path() / "passphrase";
  vcrm::files::atomicWrite(passphrase, "correct horse battery staple\n");
  run = vcrmctl(vcrmd, tmp.path(), {"confirm", "--backup-passphrase-file", passphrase.string()});
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("not_installed"), std::string::npos) << run.output;
  run = vcrmctl(vcrmd, tmp.path(), {"status"});
  EXPECT_NE(run.output.find("state: verified"), std::string::npos) << "still waiting: " << run.output;

  std::string bad = vcrm::upgrade::test::goodBundle(4096, release);
  bad[bad.size() - 1] ^= 1;
  vcrm::files::atomicWrite(tmp.path() / "bad.bin", bad);
  run = vcrmctl(vcrmd, tmp.path(), {"upload", (tmp.path() / "bad.bin").string()});
  EXPECT_EQ(run.status, 1) << run.output;
  EXPECT_NE(run.output.find("the bundle was refused (422)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("(bundle_chunk_mismatch)"), std::string::npos) << run.output;

  run = vcrmctl(vcrmd, tmp.path(), {"discard"});
  EXPECT_EQ(run.status, 0) << run.output;
  run = vcrmctl(vcrmd, tmp.path(), {"status"});
  EXPECT_NE(run.output.find("state: idle"), std::string::npos) << run.output;
  EXPECT_EQ(vcrmctl(vcrmd, tmp.path(), {"apply"}).status, 2);
  EXPECT_EQ(vcrmctl(vcrmd, tmp.path(), {"upload"}).status, 2);
}

// What the vendor's one command makes of this build is what the appliance takes: the same
// compatible string, a payload vcrmd verifies, and the test key the demo trusts.
TEST(UpgradeCliTest, ABundleOfThisBuildFromPackagingBuildBundleVerifies) {
  VcrmdProcess vcrmd;
  startTrustingTheTestKey(vcrmd);
  vcrm::test::TempDir tmp;
  const fs::path bundle = tmp.path() / "vcrm-next.bin";
  const auto built =
      vcrm::test::runToEnd({(vcrm::test::sourceDir() / "packaging/build-bundle").string(),
                            "--build", vcrm::test::binDir().parent_path().string(), "--version",
                            "99.0.0", "--out", bundle.string()},
                           tmp.path() / "build-bundle.log", std::chrono::seconds(120));
  ASSERT_EQ(built.status, 0) << built.output;
  const auto run = vcrmctl(vcrmd, tmp.path(), {"upload", bundle.string()});
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("version:      99.0.0"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("for:          vcrm-appliance"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("built from commit"), std::string::npos) << run.output;
}

// A connection cut in the middle of the first PATCH: vcrmctl signs in again, asks where the
// upload is and sends the rest, and the appliance verifies the bundle it put together.
TEST(UpgradeCliTest, AnUploadCutMidwayIsResumedWhereTheServerSaysItIs) {
  VcrmdProcess vcrmd;
  startTrustingTheTestKey(vcrmd);
  vcrm::test::TempDir tmp;
  vcrm::upgrade::BundleRelease release = nextRelease();
  const std::vector<vcrm::upgrade::test::TarEntry> tree = {
      vcrm::upgrade::test::dirEntry("bin"),
      vcrm::upgrade::test::fileEntry("bin/vcrmd", vcrm::upgrade::test::pseudoRandom(24u << 20, 11),
                                     0755)};
  const std::string bytes = vcrm::upgrade::assembleBundle(
      vcrm::upgrade::test::testBundleKey(),
      vcrm::upgrade::test::manifestFor(vcrm::upgrade::test::entriesOf(tree), 4u << 20, release),
      vcrm::upgrade::test::tarOf(tree));
  const fs::path bundle = tmp.path() / "big.bin";
  vcrm::files::atomicWrite(bundle, bytes);
  vcrm::test::CuttingRelay relay(vcrmd.httpsPort(), 5u << 20);
  const auto run = vcrmctl(vcrmd, tmp.path(), {"upload", bundle.string()}, relay.port());
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_TRUE(relay.cut());
  EXPECT_NE(run.output.find("the upload was interrupted"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("uploaded 100%"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("sha256 " + vcrm::crypto::sha256Hex(bytes)), std::string::npos)
      << run.output;
}

}  // namespace
