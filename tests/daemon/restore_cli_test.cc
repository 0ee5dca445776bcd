// `vcrmctl restore FILE`: the real binary uploads an archive to a running vcrmd, shows what it
// holds, confirms and follows the restore until the appliance is back with the archive's data;
// a wrong passphrase is refused saying so, with nothing changed.
#include <gtest/gtest.h>

#include <chrono>

#include "child.h"
#include "restore_support.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;
using vcrm::test::VcrmdProcess;

namespace {

vcrm::test::Ran restoreWithCli(const VcrmdProcess& vcrmd, const fs::path& dir,
                               const std::string& archive, const std::string& passphrase) {
  vcrm::files::atomicWrite(dir / "archive.vcrmbak", archive, 0600);
  vcrm::files::atomicWrite(dir / "passphrase", passphrase + "\n", 0600);
  vcrm::files::atomicWrite(dir / "password", std::string(VcrmdProcess::kAdminPassword) + "\n",
                           0600);
  return vcrm::test::runToEnd(
      {(vcrm::test::binDir() / "vcrmctl").string(), "--root", vcrmd.root().string(),
       "--password-file", (dir / "password").string(), "restore",
       (dir / "archive.vcrmbak").string(), "--passphrase-file", (dir / "passphrase").string(),
       "--yes"},
      dir / "vcrmctl.log", std::chrono::seconds(180));
}

TEST(RestoreCliTest, RestoresAnArchiveAndFollowsItUntilTheApplianceIsBack) {
  VcrmdProcess vcrmd;
  vcrmd.start();
  auto admin = vcrmd.adminClient();
  ASSERT_EQ(vcrmd.createReadyUser(admin, "alice", {"operator"}, "alice's password 1").status, 201);
  auto db = vcrmd.database();
  const std::string backedUp = vcrm::test::restorableSnapshot(db);
  const std::string archive =
      vcrm::test::downloadBackup(admin, vcrm::test::backupThroughApi(admin));
  EXPECT_EQ(admin.request("DELETE", "/api/v1/users/alice").status, 204);
  db = vcrmd.database();
  const std::string changed = vcrm::test::restorableSnapshot(db);

  vcrm::test::TempDir tmp;
  const auto wrong = restoreWithCli(vcrmd, tmp.path(), archive, "not the passphrase");
  EXPECT_EQ(wrong.status, 1) << wrong.output;
  EXPECT_NE(wrong.output.find("wrong passphrase"), std::string::npos) << wrong.output;
  db = vcrmd.database();
  EXPECT_TRUE(vcrm::test::restorableSnapshot(db) == changed);

  const auto run = restoreWithCli(vcrmd, tmp.path(), archive, vcrm::test::kBackupPassphrase);
  ASSERT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("(this server)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("restored: the appliance is back"), std::string::npos) << run.output;
  vcrmd.awaitInPlaceRestart();
  db = vcrmd.database();
  EXPECT_TRUE(vcrm::test::restorableSnapshot(db) == backedUp);
}

}  // namespace
