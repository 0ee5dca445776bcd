// Restores through the API against a real vcrmd: the bad-archive suite (each refused with its
// reason, the live database and the config and TLS files unchanged byte for byte), a round trip
// row for row, a restore onto a vcrmd with one more migration (from another server: its
// serial and licence kept), going back to the previous database and discarding it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "bad_archives.h"
#include "event_stream.h"
#include "eventually.h"
#include "restore_support.h"
#include "temp_dir.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/version.h"
#include "vcrm/upgrade/apply.h"
#include "vcrmd_process.h"

namespace fs = std::filesystem;
using vcrm::test::HttpsClient;
using vcrm::test::VcrmdProcess;
using vcrm::upgrade::test::BadArchive;

namespace {

std::string body(const std::string& key, const std::string& value) {
  vcrm::json::ObjectPtr o = new vcrm::json::Object;
  o->set(key, value);
  return vcrm::json::stringify(o);
}

void setLogLevel(HttpsClient& c, const std::string& level) {
  auto r = c.request("PUT", "/api/v1/system/log-level", body("level", level),
                     {{"Content-Type", "application/json"}});
  ASSERT_EQ(r.status, 200) << r.body;
}

int schemaOf(VcrmdProcess& v) {
  auto c = v.database();
  return static_cast<int>(c.exec("SELECT max(version) FROM schema_migrations").int64(0, 0));
}

// Work directories and staged files a refused or finished restore must not leave behind.
std::vector<std::string> leftovers(const VcrmdProcess& v) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(v.stateDir() / "restore", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("work-", 0) == 0) out.push_back(name);
  }
  for (const auto& e : fs::recursive_directory_iterator(v.root(), ec)) {
    if (e.path().filename().string().ends_with(".restore-new")) out.push_back(e.path().string());
  }
  return out;
}

class RestoreBadArchives : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    vcrmd_ = new VcrmdProcess();
    vcrmd_->start();
  }
  static void TearDownTestSuite() {
    delete vcrmd_;
    vcrmd_ = nullptr;
  }
  static VcrmdProcess* vcrmd_;
};
VcrmdProcess* RestoreBadArchives::vcrmd_ = nullptr;

TEST_F(RestoreBadArchives, EachIsRefusedWithItsReasonAndNothingLiveChanges) {
  auto admin = vcrmd_->adminClient();
  const vcrm::upgrade::test::BadArchiveBase base{vcrm::productVersion(), schemaOf(*vcrmd_)};
  const auto cases = vcrm::upgrade::test::badArchives(base);
  ASSERT_GE(cases.size(), 25u);
  auto db = vcrmd_->database();
  const std::string dataBefore = vcrm::test::restorableSnapshot(db);
  const std::string filesBefore = vcrm::test::swappedFilesSnapshot(*vcrmd_);
  std::size_t refused = 0;
  const auto expectRefused = [&](const BadArchive& c, const std::string& archive) {
    const std::string id = vcrm::test::uploadArchive(admin, archive);
    auto r = vcrm::test::verifyUpload(admin, id, c.passphrase);
    ASSERT_EQ(r.status, 422) << c.name << ": " << r.body;
    auto err = r.json()->getObject("error");
    EXPECT_EQ(err->getValue<std::string>("code"),
              std::string(vcrm::upgrade::archiveReasonCode(c.reason)))
        << c.name << ": " << r.body;
    EXPECT_NE(err->getValue<std::string>("message").find(c.says), std::string::npos)
        << c.name << ": the answer should say \"" << c.says << "\": " << r.body;
    ++refused;
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string archive = c.build();
    if (c.name != "FlippedByteInEveryTag") {
      expectRefused(c, archive);
    } else {
      for (std::size_t i = 0; i < vcrm::upgrade::test::chunkCount(archive); i += 7) {
        expectRefused(c, vcrm::upgrade::test::withTagFlipped(archive, i));
      }
    }
    EXPECT_EQ(leftovers(*vcrmd_), std::vector<std::string>{});
  }
  EXPECT_GE(refused, 25u);
  db = vcrmd_->database();
  const std::string dataAfter = vcrm::test::restorableSnapshot(db);
  EXPECT_TRUE(dataAfter == dataBefore) << "a refused archive changed the live database";
  EXPECT_EQ(vcrm::test::swappedFilesSnapshot(*vcrmd_), filesBefore);
  EXPECT_EQ(vcrmd_->activeDatabaseName(), "vcrm");
  // The last refusal is what GET current shows, with its reason.
  auto current = admin.get("/api/v1/restores/current");
  ASSERT_EQ(current.status, 200);
  EXPECT_EQ(current.json()->getObject("restore")->getValue<std::string>("state"), "failed");
}

// A well-formed archive that is not a backup of an appliance (no database dump) is refused
// after verification, before anything is created.
TEST_F(RestoreBadArchives, AnArchiveWithoutADatabaseDumpIsRefused) {
  auto admin = vcrmd_->adminClient();
  using namespace vcrm::upgrade::test;
  const auto m = typicalMembers();
  const std::string archive = sealBytes(archiveTar(m, m, [&](vcrm::json::Object& o) {
    o.set("product_version", std::string(vcrm::productVersion()));
    o.set("schema_version", schemaOf(*vcrmd_));
  }));
  auto r = vcrm::test::verifyUpload(admin, vcrm::test::uploadArchive(admin, archive),
                                    std::string(kPassphrase));
  ASSERT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.json()->getObject("error")->getValue<std::string>("code"), "archive_incomplete");
  EXPECT_EQ(leftovers(*vcrmd_), std::vector<std::string>{});
}

// A sound archive whose dump pg_restore cannot load fails after confirmation: the new database
// is dropped again, nothing live changed, and vcrmd did not restart.
TEST_F(RestoreBadArchives, ADumpThatCannotBeLoadedFailsAndChangesNothing) {
  auto admin = vcrmd_->adminClient();
  auto db = vcrmd_->database();
  const std::string before = vcrm::test::restorableSnapshot(db);
  vcrm::upgrade::ArchiveInfo info;
  info.productVersion = vcrm::productVersion();
  info.schemaVersion = schemaOf(*vcrmd_);
  info.sourceSerial = "another server";
  vcrm::upgrade::StringSink out;
  vcrm::upgrade::WriteOptions options;
  options.seal = vcrm::upgrade::test::fastSeal();
  vcrm::upgrade::writeArchive(
      out, vcrm::test::kBackupPassphrase, info,
      {vcrm::upgrade::memberFromBytes("db/vcrm.dump", "PGDMP but not really"),
       vcrm::upgrade::memberFromBytes("tls/server.key", "not a key")},
      options);
  const std::string id = vcrm::test::verifiedRestore(admin, out.take());
  ASSERT_EQ(admin.postJson("/api/v1/restores/" + id + "/confirm", "{}").status, 202);
  vcrm::json::ObjectPtr current;
  ASSERT_TRUE(vcrm::test::eventually(
      [&] {
        current = admin.get("/api/v1/restores/current").json()->getObject("restore");
        return current->getValue<std::string>("state") == "failed";
      },
      std::chrono::seconds(60)));
  EXPECT_NE(current->getValue<std::string>("message").find("pg_restore failed"), std::string::npos)
      << current->getValue<std::string>("message");
  EXPECT_EQ(current->getValue<std::string>("step"), "failed");
  db = vcrmd_->database();
  EXPECT_EQ(db.exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'vcrm\\_%'").int64(0, 0),
            0);
  EXPECT_TRUE(vcrm::test::restorableSnapshot(db) == before);
  EXPECT_EQ(leftovers(*vcrmd_), std::vector<std::string>{});
  // The same session still works: vcrmd never restarted.
  EXPECT_EQ(admin.get("/api/v1/restores/previous").status, 200);
  EXPECT_TRUE(admin.get("/api/v1/restores/previous").json()->isNull("previous"));
}

TEST_F(RestoreBadArchives, UnknownUploadsBackupsAndRestoresAreNotFound) {
  auto admin = vcrmd_->adminClient();
  EXPECT_EQ(vcrm::test::verifyUpload(admin, "0123456789abcdef0123456789abcdef").status, 404);
  auto r =
      admin.postJson("/api/v1/restores", R"({"backup_id":"../../etc/passwd","passphrase":"x"})");
  EXPECT_EQ(r.status, 404) << r.body;
  r = admin.postJson("/api/v1/restores", R"({"backup_id":"vcrm-x","passphrase":"x"})");
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_EQ(admin.postJson("/api/v1/restores/20250101-000000-abcd/confirm", "{}").status, 404);
  EXPECT_EQ(admin.postJson("/api/v1/restores/previous/revert", "{}").status, 404);
  EXPECT_EQ(admin.request("DELETE", "/api/v1/restores/previous").status, 404);
}

// Restores and upgrades both move <state>/database: a restore does not begin while an
// upgrade's journal is under way.
TEST_F(RestoreBadArchives, NothingIsRestoredOrRevertedWhileAnUpgradeIsUnderWay) {
  const vcrm::upgrade::UpgradeLayout upgrades(vcrmd_->root());
  vcrm::files::ensureDir(upgrades.dir(), 0700);
  vcrm::upgrade::JournalRecord r;
  r.id = "20260101-000000-abcd";
  r.operation = "upgrade";
  upgrades.journal().step(r, "backup-made");
  struct RemoveJournal {
    const vcrm::upgrade::UpgradeLayout& layout;
    ~RemoveJournal() { layout.journal().remove(); }
  } removeJournal{upgrades};
  auto admin = vcrmd_->adminClient();
  const auto revert = admin.postJson("/api/v1/restores/previous/revert", "{}");
  EXPECT_EQ(revert.status, 409) << revert.body;
  EXPECT_NE(revert.body.find("upgrade_in_progress"), std::string::npos) << revert.body;
  EXPECT_NE(revert.body.find("upgrade 20260101-000000-abcd is under way"), std::string::npos)
      << revert.body;
}

// create -> change -> restore -> as before the change, row for row; then back and discard.
TEST(RestoreRoundTrip, BringsBackEveryRowThenGoesBackAndDiscards) {
  vcrm::test::TempDir root("restore-rt");
  auto owned = vcrm::test::startWithConfigFile(root.path(), "session.idle_minutes = 61\n");
  VcrmdProcess& vcrmd = *owned;
  auto admin = vcrmd.adminClient();
  ASSERT_EQ(vcrmd.createReadyUser(admin, "alice", {"operator"}, "alice's password 1").status, 201);
  ASSERT_EQ(vcrmd.createReadyUser(admin, "sam", {"support"}, "sam's password 1").status, 201);
  setLogLevel(admin, "warn");
  auto db = vcrmd.database();
  const std::string backedUp = vcrm::test::restorableSnapshot(db);
  const std::string filesBackedUp = vcrm::test::swappedFilesSnapshot(vcrmd);
  // Made by the backups module and downloaded, as support does before an upgrade.
  const std::string archive =
      vcrm::test::downloadBackup(admin, vcrm::test::backupThroughApi(admin));

  // Changes after the backup: a user gone, one added, a setting, the config file.
  EXPECT_EQ(admin.request("DELETE", "/api/v1/users/alice").status, 204);
  ASSERT_EQ(vcrmd.createReadyUser(admin, "carol", {"noc"}, "carol's password 1").status, 201);
  setLogLevel(admin, "debug");
  vcrm::files::atomicWrite(root.path() / "etc/vcrm/vcrmd.conf", "session.idle_minutes = 62\n");
  db = vcrmd.database();
  const std::string changed = vcrm::test::restorableSnapshot(db);
  const std::string filesChanged = vcrm::test::swappedFilesSnapshot(vcrmd);
  ASSERT_NE(changed, backedUp);

  // Support restores it: what it holds first, then confirm.
  auto support = vcrmd.client();
  ASSERT_EQ(support.loginBearer("sam", "sam's password 1").status, 200);
  const std::string upload = vcrm::test::uploadArchive(support, archive);
  auto verified = vcrm::test::verifyUpload(support, upload);
  ASSERT_EQ(verified.status, 201) << verified.body;
  auto held = verified.json()->getObject("restore");
  EXPECT_EQ(held->getValue<std::string>("state"), "verified");
  EXPECT_EQ(held->getValue<std::string>("product_version"), vcrm::productVersion());
  EXPECT_TRUE(held->getValue<bool>("same_server"));
  EXPECT_EQ(held->getValue<std::string>("size"), std::to_string(archive.size()));
  EXPECT_EQ(held->getArray("warnings")->size(), 0u);
  // What the archive holds, from its manifest: admin, alice and sam.
  EXPECT_EQ(held->getObject("counts")->getValue<int>("users"), 3);
  EXPECT_EQ(held->getObject("counts")->getValue<int>("conferences"), 0);
  const std::string id = held->getValue<std::string>("id");
  // An admin's browser tab follows the steps on the event stream until the restart ends it.
  vcrm::test::EventStream stream(vcrmd, admin.bearer());
  ASSERT_EQ(stream.status(), 200);
  vcrm::test::confirmAndAwait(vcrmd, support, id);
  EXPECT_TRUE(stream.waitEnded(std::chrono::seconds(10)));
  std::vector<std::string> steps;
  for (const auto& e : stream.events()) {
    if (e.type != "restore") continue;
    const auto o = vcrm::json::parseObject(e.data);
    EXPECT_EQ(o->getValue<std::string>("id"), id);
    EXPECT_LE(o->getValue<int>("done"), o->getValue<int>("total"));
    steps.push_back(o->getValue<std::string>("step"));
  }
  EXPECT_EQ(steps, (std::vector<std::string>{"confirmed", "db-created", "db-loaded", "migrated",
                                             "licence-carried", "conferences-decided", "staged",
                                             "ready", "conferences-ended"}));

  // Back with the backup's data, files and the changed ones kept beside them.
  db = vcrmd.database();
  EXPECT_EQ(vcrmd.activeDatabaseName(),
            "vcrm_" + id.substr(0, 8) + "_" + id.substr(9, 6) + "_" + id.substr(16));
  const std::string restored = vcrm::test::restorableSnapshot(db);
  EXPECT_TRUE(restored == backedUp) << "the restored database differs from the backup";
  EXPECT_EQ(vcrm::test::swappedFilesSnapshot(vcrmd), filesBackedUp);
  EXPECT_EQ(vcrm::files::readFile(root.path() / "etc/vcrm/vcrmd.conf.pre-restore"),
            "session.idle_minutes = 62\n");
  EXPECT_EQ(leftovers(vcrmd), std::vector<std::string>{});
  support = vcrmd.client();
  ASSERT_EQ(support.loginBearer("sam", "sam's password 1").status, 200);
  EXPECT_NE(vcrmd.adminClient().get("/api/v1/audit?limit=200").body.find("restore.completed"),
            std::string::npos);
  auto current = support.get("/api/v1/restores/current");
  ASSERT_EQ(current.status, 200);
  EXPECT_EQ(current.json()->getObject("restore")->getValue<std::string>("state"), "done");
  EXPECT_EQ(current.json()->getObject("restore")->getValue<std::string>("id"), id);
  auto previous = support.get("/api/v1/restores/previous");
  ASSERT_EQ(previous.status, 200);
  EXPECT_EQ(previous.json()->getObject("previous")->getValue<std::string>("database"), "vcrm");
  // carol came after the backup: not in the restored system.
  EXPECT_NE(vcrmd.client().loginBearer("carol", "carol's password 1").status, 200);

  // Go back: the changed system again, and the restored one is now the previous.
  auto back = support.postJson("/api/v1/restores/previous/revert", "{}");
  ASSERT_EQ(back.status, 202) << back.body;
  vcrmd.awaitInPlaceRestart();
  EXPECT_EQ(vcrmd.activeDatabaseName(), "vcrm");
  db = vcrmd.database();
  EXPECT_TRUE(vcrm::test::restorableSnapshot(db) == changed) << "going back lost changes";
  EXPECT_EQ(vcrm::test::swappedFilesSnapshot(vcrmd), filesChanged);
  support = vcrmd.client();
  ASSERT_EQ(support.loginBearer("sam", "sam's password 1").status, 200);
  previous = support.get("/api/v1/restores/previous");
  const std::string restoredDb =
      previous.json()->getObject("previous")->getValue<std::string>("database");
  EXPECT_NE(restoredDb, "vcrm");

  // Discard it: the database and the kept files are gone.
  auto discarded = support.request("DELETE", "/api/v1/restores/previous");
  ASSERT_EQ(discarded.status, 204) << discarded.body;
  EXPECT_TRUE(support.get("/api/v1/restores/previous").json()->isNull("previous"));
  db = vcrmd.database();
  EXPECT_EQ(
      db.exec("SELECT count(*) FROM pg_database WHERE datname = $1", {restoredDb}).int64(0, 0), 0);
  EXPECT_FALSE(fs::exists(root.path() / "etc/vcrm/vcrmd.conf.pre-restore"));
  EXPECT_FALSE(fs::exists(vcrmd.stateDir() / "tls/server.key.pre-restore"));
  // The audit log of the live database has each step.
  auto audit = vcrmd.adminClient().get("/api/v1/audit?limit=200");
  ASSERT_EQ(audit.status, 200);
  EXPECT_NE(audit.body.find("restore.discard"), std::string::npos);
  // Going back was requested in the database it replaced; the one it swapped in says so too.
  EXPECT_NE(audit.body.find("restore.reverted"), std::string::npos);
}

// A file the restore brought in that the system it replaced did not have: going back sets it
// aside again (before, the restored config stayed and the previous system came back with it),
// and going forth once more brings it back.
TEST(RestoreRoundTrip, GoingBackLeavesAbsentAFileTheRestoreBroughtIn) {
  vcrm::test::TempDir root("restore-absent");
  const fs::path conf = root.path() / "etc/vcrm/vcrmd.conf";
  auto owned = vcrm::test::startWithConfigFile(root.path(), "session.idle_minutes = 61\n");
  VcrmdProcess& vcrmd = *owned;
  auto admin = vcrmd.adminClient();
  const std::string archive =
      vcrm::test::downloadBackup(admin, vcrm::test::backupThroughApi(admin));
  // After the backup the config file goes: the system a restore replaces has none.
  fs::remove(conf);

  const std::string id = vcrm::test::verifiedRestore(admin, archive);
  vcrm::test::confirmAndAwait(vcrmd, admin, id);
  EXPECT_EQ(vcrm::files::readFile(conf), "session.idle_minutes = 61\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(fs::path(conf.string() + ".pre-restore"))));
  admin = vcrmd.adminClient();
  auto previous = admin.get("/api/v1/restores/previous");
  ASSERT_EQ(previous.status, 200) << previous.body;
  EXPECT_NE(previous.body.find(R"("absent_files":["vcrmd.conf"])"), std::string::npos)
      << previous.body;

  // Back: no config file, as before the restore; the restored one is kept aside.
  ASSERT_EQ(admin.postJson("/api/v1/restores/previous/revert", "{}").status, 202);
  vcrmd.awaitInPlaceRestart();
  EXPECT_FALSE(fs::exists(fs::symlink_status(conf))) << "the restored config outlived going back";
  EXPECT_EQ(vcrm::files::readFile(fs::path(conf.string() + ".pre-restore")),
            "session.idle_minutes = 61\n");

  // Forth again: the restored config is back.
  admin = vcrmd.adminClient();
  ASSERT_EQ(admin.postJson("/api/v1/restores/previous/revert", "{}").status, 202);
  vcrmd.awaitInPlaceRestart();
  EXPECT_EQ(vcrm::files::readFile(conf), "session.idle_minutes = 61\n");
  EXPECT_FALSE(fs::exists(fs::symlink_status(fs::path(conf.string() + ".pre-restore"))))
      << "a kept file of an older swap passed for this one's";
}

// An archive from another server onto a vcrmd whose software has one more migration: the
// restored database is migrated, and this server keeps its serial and its licence.
TEST(RestoreRoundTrip, OntoANewerSchemaFromAnotherServer) {
  VcrmdProcess source;
  source.start();
  auto sourceAdmin = source.adminClient();
  ASSERT_EQ(source.createReadyUser(sourceAdmin, "alice", {"operator"}, "alice's password 1").status,
            201);
  auto sourceDb = source.database();
  const std::string sourceRows = vcrm::test::restorableSnapshot(sourceDb);
  const std::string archive =
      vcrm::test::downloadBackup(sourceAdmin, vcrm::test::backupThroughApi(sourceAdmin));
  source.stop();

  vcrm::test::TempDir migrations("migrations");
  for (const auto& e : fs::directory_iterator(vcrm::test::sourceDir() / "migrations")) {
    fs::copy_file(e.path(), migrations.path() / e.path().filename());
  }
  int last = 0;
  for (const auto& e : fs::directory_iterator(migrations.path())) {
    last = std::max(last, std::stoi(e.path().filename().string().substr(0, 4)));
  }
  char name[64];
  std::snprintf(name, sizeof name, "%04d_restore_probe.sql", last + 1);
  vcrm::files::atomicWrite(migrations.path() / name,
                           "CREATE TABLE restore_probe (note text NOT NULL);\n"
                           "INSERT INTO restore_probe SELECT 'users: ' || count(*) FROM users;\n");
  VcrmdProcess::Options options;
  options.settings = {"db.migrations_dir=" + migrations.path().string()};
  VcrmdProcess target(options);
  target.start();
  auto admin = target.adminClient();
  const auto licenceBefore = admin.get("/api/v1/license").json();
  const std::string ourSerial = licenceBefore->getValue<std::string>("serial");

  auto verified = vcrm::test::verifyUpload(admin, vcrm::test::uploadArchive(admin, archive));
  ASSERT_EQ(verified.status, 201) << verified.body;
  auto held = verified.json()->getObject("restore");
  EXPECT_FALSE(held->getValue<bool>("same_server"));
  const std::string warnings =
      vcrm::json::stringify(Poco::Dynamic::Var(held->getArray("warnings")));
  EXPECT_NE(warnings.find("from another server (serial "), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("this server's serial " + ourSerial + " and licence are kept"),
            std::string::npos)
      << warnings;
  vcrm::test::confirmAndAwait(target, admin, held->getValue<std::string>("id"));

  auto db = target.database();
  EXPECT_EQ(db.exec("SELECT max(version) FROM schema_migrations").int64(0, 0), last + 1);
  EXPECT_EQ(db.exec("SELECT note FROM restore_probe").text(0, 0), "users: 2");
  EXPECT_EQ(db.exec("SELECT count(*) FROM users WHERE username = 'alice'").int64(0, 0), 1);
  EXPECT_EQ(vcrm::files::readFile(target.stateDir() / "serial"), ourSerial + "\n");
  admin = target.adminClient();
  const auto licence = admin.get("/api/v1/license").json();
  EXPECT_EQ(licence->getValue<std::string>("serial"), ourSerial);
  ASSERT_FALSE(licence->isNull("active")) << "this server's licence was not kept";
  EXPECT_EQ(vcrm::json::stringify(licence->getObject("active")),
            vcrm::json::stringify(licenceBefore->getObject("active")));
  (void)sourceRows;
}

}  // namespace
