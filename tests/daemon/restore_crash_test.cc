// kill -9 of vcrmd at every step of a restore, then PostgreSQL killed too (a power cut): the
// next start has either exactly the system as it was (a crash before "ready") or exactly the
// restored one (after), never a mix — the database row for row, the config and TLS files byte
// for byte — and a second restore then works. The crash comes from the test hook
// VCRM_TEST_CRASH_AT=<step>: vcrmd raises SIGKILL on itself right after journalling that step.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "restore_support.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;
using vcrm::test::HttpsClient;
using vcrm::test::VcrmdProcess;

namespace {

struct CrashPoint {
  std::string step;
  bool restored;  // the restored system comes back (the step is at or after "ready")
};

std::ostream& operator<<(std::ostream& os, const CrashPoint& p) {
  return os << p.step;
}

// Every journalled step, in order: the verification (during POST /restores), the job (after
// confirm), and the roll forward that the in-place restart runs.
std::vector<CrashPoint> crashPoints() {
  return {{"verifying", false},
          {"extracted", false},
          {"confirmed", false},
          {"db-created", false},
          {"db-loaded", false},
          {"migrated", false},
          {"licence-carried", false},
          {"conferences-decided", false},
          {"staged", false},
          {"ready", true},
          {"conferences-ended", true},
          {"absence-recorded", true},
          {"renamed-vcrmd.conf", true},
          {"renamed-server.crt", true},
          {"renamed-server.key", true},
          {"previous-recorded", true},
          {"pointer-switched", true},
          {"done", true}};
}

std::string nameOf(const ::testing::TestParamInfo<CrashPoint>& info) {
  std::string out;
  for (char c : info.param.step) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string restoreIdOf(const vcrm::test::HttpResult& verified) {
  if (verified.status != 201) throw std::runtime_error("refused: " + verified.body);
  return verified.json()->getObject("restore")->getValue<std::string>("id");
}

std::string snapshotOf(VcrmdProcess& v) {
  auto c = v.database();
  return vcrm::test::restorableSnapshot(c);
}

// Arms the crash hook at `step`, restarts vcrmd, runs `request` (which vcrmd dies during or
// after), kills PostgreSQL too once vcrmd is gone, and starts vcrmd again without the hook.
void crashDuring(VcrmdProcess& vcrmd, const std::string& step,
                 const std::function<void(HttpsClient&)>& request) {
  ASSERT_EQ(vcrmd.stop(), 0);
  vcrmd.setEnv({"VCRM_TEST_CRASH_AT=" + step});
  vcrmd.start();
  auto admin = vcrmd.adminClient();
  try {
    request(admin);
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): vcrmd died mid-request
  }
  ASSERT_TRUE(vcrmd.awaitExit(std::chrono::seconds(120)))
      << "vcrmd did not crash at " << step << ":\n"
      << vcrmd.output();
  vcrmd.killHard(true);  // and PostgreSQL with it
  ASSERT_FALSE(vcrmd.postmasterPid().has_value());
  vcrmd.setEnv({});
  vcrmd.start();
}

class RestoreCrash : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(RestoreCrash, LeavesTheOldOrTheRestoredSystemAndASecondRestoreWorks) {
  const CrashPoint point = GetParam();
  vcrm::test::TempDir root("restore-crash");
  auto owned = vcrm::test::startWithConfigFile(root.path(), "session.idle_minutes = 61\n");
  VcrmdProcess& vcrmd = *owned;
  auto admin = vcrmd.adminClient();
  ASSERT_EQ(vcrmd.createReadyUser(admin, "alice", {"operator"}, "alice's password 1").status, 201);
  const std::string backedUp = snapshotOf(vcrmd);
  const std::string filesBackedUp = vcrm::test::swappedFilesSnapshot(vcrmd);
  const std::string backup = vcrm::test::backupThroughApi(admin);

  EXPECT_EQ(admin.request("DELETE", "/api/v1/users/alice").status, 204);
  ASSERT_EQ(vcrmd.createReadyUser(admin, "carol", {"noc"}, "carol's password 1").status, 201);
  vcrm::files::atomicWrite(root.path() / "etc/vcrm/vcrmd.conf", "session.idle_minutes = 62\n");
  const std::string changed = snapshotOf(vcrmd);
  const std::string filesChanged = vcrm::test::swappedFilesSnapshot(vcrmd);

  crashDuring(vcrmd, point.step, [&](HttpsClient& admin) {
    auto verified = vcrm::test::verifyBackup(admin, backup);
    if (verified.status != 201) return;
    const std::string id = verified.json()->getObject("restore")->getValue<std::string>("id");
    auto confirmed = admin.postJson("/api/v1/restores/" + id + "/confirm", "{}");
    EXPECT_EQ(confirmed.status, 202) << confirmed.body;
  });
  if (HasFatalFailure()) return;
  const std::string after = snapshotOf(vcrmd);
  admin = vcrmd.adminClient();
  auto current = admin.get("/api/v1/restores/current").json()->getObject("restore");
  if (point.restored) {
    EXPECT_TRUE(after == backedUp)
        << "after a crash at " << point.step << " the database is not the restored one";
    EXPECT_EQ(vcrm::test::swappedFilesSnapshot(vcrmd), filesBackedUp);
    EXPECT_NE(vcrmd.activeDatabaseName(), "vcrm");
    EXPECT_EQ(current->getValue<std::string>("state"), "done");
    EXPECT_EQ(admin.get("/api/v1/restores/previous")
                  .json()
                  ->getObject("previous")
                  ->getValue<std::string>("database"),
              "vcrm");
  } else {
    EXPECT_TRUE(after == changed) << "after a crash at " << point.step
                                  << " the database is not the one before the restore";
    EXPECT_EQ(vcrm::test::swappedFilesSnapshot(vcrmd), filesChanged);
    EXPECT_EQ(vcrmd.activeDatabaseName(), "vcrm");
    EXPECT_EQ(current->getValue<std::string>("state"), "failed");
    EXPECT_EQ(current->getValue<std::string>("message"), "interrupted at " + point.step);
    // Nothing of the restore is left: no database, no work directory, no staged file.
    auto db = vcrmd.database();
    EXPECT_EQ(db.exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'vcrm\\_%'").int64(0, 0),
              0);
    EXPECT_TRUE(admin.get("/api/v1/restores/previous").json()->isNull("previous"));
  }
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(root.path(), ec)) {
    const std::string name = e.path().filename().string();
    EXPECT_FALSE(name.ends_with(".restore-new") || name.rfind("work-", 0) == 0) << e.path();
  }

  // A second restore of the same archive goes through.
  vcrm::test::confirmAndAwait(vcrmd, admin, restoreIdOf(vcrm::test::verifyBackup(admin, backup)));
  EXPECT_TRUE(snapshotOf(vcrmd) == backedUp) << "the second restore did not bring the backup back";
  EXPECT_EQ(vcrm::test::swappedFilesSnapshot(vcrmd), filesBackedUp);
}

INSTANTIATE_TEST_SUITE_P(EveryStep, RestoreCrash, ::testing::ValuesIn(crashPoints()), nameOf);

// Going back is the same swap: a crash before its "ready" leaves the restored system, after it
// the one gone back to.
class RevertCrash : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(RevertCrash, LeavesTheRestoredOrThePreviousSystem) {
  const CrashPoint point = GetParam();
  vcrm::test::TempDir root("revert-crash");
  auto owned = vcrm::test::startWithConfigFile(root.path(), "session.idle_minutes = 61\n");
  VcrmdProcess& vcrmd = *owned;
  auto admin = vcrmd.adminClient();
  const std::string backedUp = snapshotOf(vcrmd);
  const std::string backup = vcrm::test::backupThroughApi(admin);
  ASSERT_EQ(vcrmd.createReadyUser(admin, "carol", {"noc"}, "carol's password 1").status, 201);
  vcrm::files::atomicWrite(root.path() / "etc/vcrm/vcrmd.conf", "session.idle_minutes = 62\n");
  const std::string changed = snapshotOf(vcrmd);
  const std::string filesChanged = vcrm::test::swappedFilesSnapshot(vcrmd);
  vcrm::test::confirmAndAwait(vcrmd, admin, restoreIdOf(vcrm::test::verifyBackup(admin, backup)));
  const std::string filesRestored = vcrm::test::swappedFilesSnapshot(vcrmd);
  ASSERT_TRUE(snapshotOf(vcrmd) == backedUp);

  crashDuring(vcrmd, point.step, [](HttpsClient& admin) {
    auto r = admin.postJson("/api/v1/restores/previous/revert", "{}");
    EXPECT_EQ(r.status, 202) << r.body;
  });
  if (HasFatalFailure()) return;
  const bool back = point.restored;  // past the revert's "ready": the previous system
  EXPECT_TRUE(snapshotOf(vcrmd) == (back ? changed : backedUp))
      << "after a crash at " << point.step;
  EXPECT_EQ(vcrm::test::swappedFilesSnapshot(vcrmd), back ? filesChanged : filesRestored);
  EXPECT_EQ(vcrmd.activeDatabaseName() == "vcrm", back);
  admin = vcrmd.adminClient();
  auto current = admin.get("/api/v1/restores/current").json()->getObject("restore");
  EXPECT_EQ(current->getValue<std::string>("operation"), "revert");
  EXPECT_EQ(current->getValue<std::string>("state"), back ? "done" : "failed");
  // Either way one system is kept as the previous one, and going back again works.
  auto previous = admin.get("/api/v1/restores/previous").json()->getObject("previous");
  ASSERT_TRUE(previous);
  EXPECT_EQ(previous->getValue<std::string>("database") == "vcrm", !back);
  ASSERT_EQ(admin.postJson("/api/v1/restores/previous/revert", "{}").status, 202);
  vcrmd.awaitInPlaceRestart();
  EXPECT_TRUE(snapshotOf(vcrmd) == (back ? backedUp : changed));
}

INSTANTIATE_TEST_SUITE_P(SomeSteps, RevertCrash,
                         ::testing::Values(CrashPoint{"confirmed", false},
                                           CrashPoint{"conferences-decided", false},
                                           CrashPoint{"staged", false}, CrashPoint{"ready", true},
                                           CrashPoint{"renamed-server.key", true},
                                           CrashPoint{"pointer-switched", true}),
                         nameOf);

// Going back to a system that had no config file sets the restored one aside; a crash at each
// step of that (before or after the file is moved) still ends with no config file in place,
// the restored one kept, and going forth again bringing it back.
class SetAsideCrash : public ::testing::TestWithParam<CrashPoint> {};

TEST_P(SetAsideCrash, GoingBackToASystemWithoutTheFileEndsWithoutIt) {
  const CrashPoint point = GetParam();
  vcrm::test::TempDir root("set-aside-crash");
  const fs::path conf = root.path() / "etc/vcrm/vcrmd.conf";
  const fs::path kept = conf.string() + ".pre-restore";
  auto owned = vcrm::test::startWithConfigFile(root.path(), "session.idle_minutes = 61\n");
  VcrmdProcess& vcrmd = *owned;
  auto admin = vcrmd.adminClient();
  const std::string backup = vcrm::test::backupThroughApi(admin);
  fs::remove(conf);
  vcrm::test::confirmAndAwait(vcrmd, admin, restoreIdOf(vcrm::test::verifyBackup(admin, backup)));
  ASSERT_TRUE(fs::exists(conf));

  crashDuring(vcrmd, point.step, [](HttpsClient& admin) {
    auto r = admin.postJson("/api/v1/restores/previous/revert", "{}");
    EXPECT_EQ(r.status, 202) << r.body;
  });
  if (HasFatalFailure()) return;
  EXPECT_FALSE(fs::exists(fs::symlink_status(conf))) << "after a crash at " << point.step;
  EXPECT_EQ(vcrm::files::readFile(kept), "session.idle_minutes = 61\n");
  admin = vcrmd.adminClient();
  auto current = admin.get("/api/v1/restores/current").json()->getObject("restore");
  EXPECT_EQ(current->getValue<std::string>("state"), "done");
  ASSERT_EQ(admin.postJson("/api/v1/restores/previous/revert", "{}").status, 202);
  vcrmd.awaitInPlaceRestart();
  EXPECT_EQ(vcrm::files::readFile(conf), "session.idle_minutes = 61\n");
}

INSTANTIATE_TEST_SUITE_P(RollForward, SetAsideCrash,
                         ::testing::Values(CrashPoint{"absence-recorded", true},
                                           CrashPoint{"removed-vcrmd.conf", true},
                                           CrashPoint{"previous-recorded", true}),
                         nameOf);

}  // namespace
