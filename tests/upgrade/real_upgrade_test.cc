// Real upgrades of real builds (issue 11, "Must have" 7): this build installed as version N in
// slot a (tests/support/installed_appliance.h) is upgraded through the API with a signed
// bundle of build-nplus1 (N+1, one more migration) while a conference runs on a real Janus,
// then checked as the reference guide checks an upgrade; and a bundle of build-unhealthy (whose
// /healthz always answers 503) rolls back by itself, its migrated database dropped and the
// original intact. packaging/dev test builds both; elsewhere the tests skip without them.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>

#include "bridge_setup.h"
#include "child.h"
#include "event_stream.h"
#include "eventually.h"
#include "installed_appliance.h"
#include "janus_process.h"
#include "restore_support.h"
#include "vcrm/common/files.h"
#include "vcrm/common/json.h"
#include "vcrm/common/version.h"
#include "vcrm/upgrade/apply.h"

namespace vcrm::upgrade {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using test::eventually;
using test::HttpsClient;

constexpr const char* kKeptPassword = "a password kept across the upgrade";

fs::path exeOf(pid_t pid) {
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/exe");
}

std::set<std::string> stepNames(const Poco::JSON::Object::Ptr& record) {
  std::set<std::string> out;
  const auto steps = record->getArray("steps");
  for (std::size_t i = 0; i < steps->size(); ++i) {
    out.insert(steps->getObject(static_cast<unsigned>(i))->getValue<std::string>("name"));
  }
  return out;
}

bool databaseExists(test::VcrmdProcess& app, const std::string& name) {
  return app.database("postgres")
             .exec("SELECT count(*) FROM pg_database WHERE datname = $1", {name})
             .int64(0, 0) == 1;
}

bool hasMarkerTable(test::VcrmdProcess& app, const std::string& database) {
  return app.database(database)
             .exec(
                 "SELECT count(*) FROM information_schema.tables WHERE table_name = "
                 "'upgrade_test_marker'")
             .int64(0, 0) == 1;
}

class RealUpgradeTest : public ::testing::Test {
 protected:
  void startAppliance() {
    test::InstalledAppliance::Options o;
    o.settings = {"conference.prelaunch_seconds=3", "bridge.probe_seconds=1",
                  "conference.reconcile_seconds=1"};
    appliance_ = std::make_unique<test::InstalledAppliance>(o);
    admin_ = std::make_unique<HttpsClient>(appliance_->adminClient());
    ASSERT_EQ(
        appliance_->app().createReadyUser(*admin_, "kept", {"operator"}, kKeptPassword).status,
        201);
  }

  // Uploads and verifies the bundle of `build`, confirms it; returns the upgrade's id.
  std::string confirmBundleOf(const fs::path& build, const std::string& version) {
    const fs::path bundle = appliance_->scratch() / ("vcrm-" + version + ".bin");
    test::makeBundleOfBuild(build, bundle, appliance_->scratch() / "build-bundle.log");
    auto op = appliance_->client();
    EXPECT_EQ(op.loginBearer("kept", kKeptPassword).status, 200);
    const auto verified = test::uploadAndVerifyBundle(op, bundle);
    EXPECT_EQ(verified.status, 201) << verified.body;
    if (verified.status != 201) return "";
    EXPECT_EQ(verified.json()->getObject("bundle")->getValue<std::string>("version"), version);
    const auto weak = test::confirmUpgrade(op, "too short");
    EXPECT_EQ(weak.status, 400) << weak.body;  // as backups answer it (the contract said 422)
    EXPECT_EQ(weak.errorCode(), "passphrase_too_short");
    const auto confirmed = test::confirmUpgrade(op, test::kBackupPassphrase);
    EXPECT_EQ(confirmed.status, 202) << confirmed.body;
    if (confirmed.status != 202) return "";
    // While it is under way: shown as applying, and a second confirmation is refused.
    const auto again = test::confirmUpgrade(op, test::kBackupPassphrase);
    EXPECT_EQ(again.status, 409) << again.body;
    EXPECT_EQ(again.errorCode(), "upgrade_in_progress") << again.body;
    try {
      const auto during = op.get("/api/v1/upgrade");
      if (during.status == 200) {
        EXPECT_EQ(during.json()->getValue<std::string>("state"), "applying") << during.body;
      }
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): already stopped
    }
    const auto record = confirmed.json()->getObject("upgrade");
    EXPECT_EQ(record->getValue<std::string>("from_version"), productVersion());
    EXPECT_EQ(record->getValue<std::string>("to_version"), version);
    EXPECT_EQ(record->getValue<std::string>("requested_by"), "kept");
    return record->getValue<std::string>("id");
  }

  Poco::JSON::Object::Ptr conference(std::int64_t id) {
    return admin_->get("/api/v1/conferences/" + std::to_string(id)).json();
  }
  std::string state(std::int64_t id) { return conference(id)->getValue<std::string>("state"); }
  std::size_t participants(std::int64_t id) {
    return conference(id)->getArray("participants")->size();
  }
  std::size_t inRoom(test::JanusProcess& janus, std::int64_t room) {
    Poco::JSON::Object::Ptr req = new Poco::JSON::Object;
    req->set("request", "listparticipants");
    req->set("room", room);
    return janus.videoRoom(req)->getArray("participants")->size();
  }
  bool roomExists(test::JanusProcess& janus, std::int64_t room) {
    Poco::JSON::Object::Ptr req = new Poco::JSON::Object;
    req->set("request", "exists");
    req->set("room", room);
    return janus.videoRoom(req)->getValue<bool>("exists");
  }

  std::unique_ptr<test::InstalledAppliance> appliance_;
  std::unique_ptr<HttpsClient> admin_;
};

TEST_F(RealUpgradeTest, NToNPlus1ThroughTheApiKeepsEverythingAndTheLiveConference) {
  VCRM_NEXT_BUILD_OR_SKIP(next, test::NextBuild::NPlus1);
  const std::string nextVersion = test::versionOfBuild(next);
  ASSERT_NE(nextVersion, productVersion());
  ASSERT_NO_FATAL_FAILURE(startAppliance());
  auto& app = appliance_->app();
  const int schemaBefore = admin_->get("/api/v1/version").json()->getValue<int>("schema");
  ASSERT_FALSE(hasMarkerTable(app, app.activeDatabaseName()));

  // What must be there afterwards: a setting, the licence, a live conference with a
  // participant on a real Janus.
  ASSERT_EQ(admin_->request("PUT", "/api/v1/system/log-level", R"({"level":"debug"})").status, 200);
  const auto licenceBefore = admin_->get("/api/v1/license").json()->getObject("active");
  ASSERT_TRUE(licenceBefore);
  auto bridge = test::registerJanusBridge(*admin_, "upgrade-bridge", 20);
  ASSERT_TRUE(eventually(
      [&] {
        return admin_->get("/api/v1/bridges/" + std::to_string(bridge.id))
                   .json()
                   ->getValue<std::string>("health") == "up";
      },
      10s));
  auto made = admin_->postJson(
      "/api/v1/conferences",
      R"({"name":"through the upgrade","start_now":true,"duration_minutes":30,"pin":"1234","ports":2})");
  ASSERT_EQ(made.status, 201) << made.body;
  const auto conf = made.json()->getValue<std::int64_t>("id");
  ASSERT_TRUE(eventually([&] { return state(conf) == "active"; }, 8s)) << state(conf);
  const auto room = conference(conf)->getValue<std::int64_t>("room");
  test::JanusParticipant alice(bridge.janus->httpUrl(), room, "Alice", "1234");
  ASSERT_TRUE(eventually([&] { return participants(conf) == 1; }, 5s));
  const pid_t before = app.daemonPid();
  // The steps stream to an open page until the old version stops.
  test::EventStream events(app, admin_->bearer());
  ASSERT_EQ(events.status(), 200);

  const std::string id = confirmBundleOf(next, nextVersion);
  ASSERT_FALSE(id.empty());
  const auto status = test::awaitUpgradeEnd(*appliance_, id, 240s);
  const auto record = status->getObject("upgrade");
  EXPECT_EQ(record->getValue<std::string>("outcome"), "complete") << json::stringify(status);
  EXPECT_TRUE(events.waitEnded(10s)) << "the old version's event stream ends at the restart";
  for (const char* step : {"backup-made", "slot-written"}) {
    EXPECT_TRUE(events.waitFor(
        [&](const test::StreamEvent& e) {
          return e.type == "upgrade" && e.data.find("\"applying\"") != std::string::npos &&
                 e.data.find(std::string("\"step\":\"") + step + "\"") != std::string::npos;
        },
        1s))
        << "no \"upgrade\" event at step " << step;
  }
  app.awaitRestart(before);
  admin_ = std::make_unique<HttpsClient>(appliance_->adminClient());

  // N+1 serves, from slot b, on the migrated copy of the database.
  EXPECT_EQ(appliance_->servedVersion(), nextVersion);
  EXPECT_EQ(appliance_->readyVersion(), nextVersion);
  EXPECT_EQ(status->getObject("running")->getValue<std::string>("slot"), "b");
  EXPECT_EQ(appliance_->slots().current(), Slot::B);
  EXPECT_EQ(exeOf(app.daemonPid()), appliance_->slots().slotDir(Slot::B) / "bin/vcrmd");
  EXPECT_EQ(admin_->get("/api/v1/version").json()->getValue<int>("schema"), schemaBefore + 1);
  EXPECT_EQ(app.activeDatabaseName(), upgradeCopyName(id));
  EXPECT_TRUE(hasMarkerTable(app, app.activeDatabaseName())) << "the extra migration ran";
  EXPECT_EQ(app.database().exec("SELECT note FROM upgrade_test_marker").text(0, 0),
            "applied by the next-version test build");
  EXPECT_FALSE(hasMarkerTable(app, "vcrm")) << "the original stays as it was, to go back to";
  for (const char* step :
       {"confirmed", "backup-made", "slot-written", "db-snapshot", "db-pointer-switched",
        "slot-pointer-switched", "trial-start", "migrated", "healthy", "done"}) {
    EXPECT_EQ(stepNames(record).count(step), 1u) << step;
  }
  const auto history = status->getArray("history");
  ASSERT_TRUE(history && history->size() >= 1);
  EXPECT_EQ(history->getObject(0)->getValue<std::string>("outcome"), "complete");
  const auto previous = status->getObject("previous");
  ASSERT_TRUE(previous) << "go-back would return to N in slot a";
  EXPECT_EQ(previous->getValue<std::string>("slot"), "a");
  EXPECT_EQ(previous->getValue<std::string>("version"), productVersion());

  // Nothing is waiting any more.
  const auto none = test::confirmUpgrade(*admin_, test::kBackupPassphrase);
  EXPECT_EQ(none.status, 404) << none.body;
  EXPECT_EQ(none.errorCode(), "no_pending_bundle");

  // Users, settings, licence.
  auto kept = appliance_->client();
  EXPECT_EQ(kept.loginBearer("kept", kKeptPassword).status, 200);
  EXPECT_EQ(admin_->get("/api/v1/system/log-level").json()->getValue<std::string>("level"),
            "debug");
  const auto licenceAfter = admin_->get("/api/v1/license").json()->getObject("active");
  ASSERT_TRUE(licenceAfter);
  EXPECT_EQ(json::stringify(licenceAfter), json::stringify(licenceBefore));

  // The pre-upgrade backup is kept and listed.
  const std::string backup = record->getValue<std::string>("backup");
  const auto backups = admin_->get("/api/v1/backups").json()->getArray("backups");
  bool listed = false;
  for (std::size_t i = 0; i < backups->size(); ++i) {
    const auto b = backups->getObject(static_cast<unsigned>(i));
    if (b->getValue<std::string>("id") == backup) {
      listed = true;
      EXPECT_EQ(b->getValue<std::string>("origin"), "pre-upgrade");
    }
  }
  EXPECT_TRUE(listed) << backup << " not in GET /api/v1/backups";
  const auto opened =
      admin_->postJson("/api/v1/backups/" + backup + "/verify",
                       std::string(R"({"passphrase":")") + test::kBackupPassphrase + "\"}");
  EXPECT_EQ(opened.status, 200) << "sealed with the passphrase given at confirm: " << opened.body;

  // The conference ran on through the upgrade, re-attached by N+1, Alice still in it.
  EXPECT_EQ(state(conf), "active");
  EXPECT_TRUE(roomExists(*bridge.janus, room));
  EXPECT_EQ(inRoom(*bridge.janus, room), 1u) << "the participant was dropped by the upgrade";
  EXPECT_TRUE(eventually([&] { return participants(conf) == 1; }, 5s));
  EXPECT_NE(app.output().find("REATTACHED"), std::string::npos);
  // Terminated on N+1: its room goes, and its CDR is complete.
  ASSERT_EQ(
      admin_->postJson("/api/v1/conferences/" + std::to_string(conf) + "/terminate", "{}").status,
      200);
  EXPECT_FALSE(roomExists(*bridge.janus, room));
  auto db = app.database();
  ASSERT_TRUE(eventually(
      [&] {
        return db.exec("SELECT count(*) FROM conference_cdrs WHERE conference_id = $1", {conf})
                   .int64(0, 0) == 1;
      },
      10s));
  const auto cdr = db.exec(
      "SELECT final_state, peak_participants, legs, actual_start IS NOT NULL, "
      "actual_end > actual_start FROM conference_cdrs WHERE conference_id = $1",
      {conf});
  EXPECT_EQ(cdr.text(0, 0), "ended");
  EXPECT_EQ(cdr.int64(0, 1), 1);
  EXPECT_EQ(cdr.int64(0, 2), 1) << "one leg (Alice's), not a second one made by the re-attach";
  EXPECT_EQ(cdr.text(0, 3), "t");
  EXPECT_EQ(cdr.text(0, 4), "t");
  EXPECT_TRUE(eventually(
      [&] {
        return db.exec(
                     "SELECT count(*) FROM participant_legs WHERE conference_id = $1 AND "
                     "left_at IS NULL",
                     {conf})
                   .int64(0, 0) == 0;
      },
      10s))
      << "Alice's leg was left open";

  // Going back: N in slot a again, on the database it had (what N+1 changed is not carried back).
  const pid_t onNext = app.daemonPid();
  const auto back = admin_->postJson("/api/v1/upgrade/go-back", "{}");
  ASSERT_EQ(back.status, 202) << back.body;
  // Its answer names the record to follow (it had "id": "" before the fix of this commit).
  const std::string backId = back.json()->getObject("upgrade")->getValue<std::string>("id");
  ASSERT_FALSE(backId.empty()) << back.body;
  const auto backStatus = test::awaitUpgradeEnd(*appliance_, backId, 120s);
  app.awaitRestart(onNext);
  EXPECT_EQ(backStatus->getObject("upgrade")->getValue<std::string>("outcome"), "gone-back")
      << json::stringify(backStatus);
  EXPECT_EQ(appliance_->servedVersion(), productVersion());
  EXPECT_EQ(appliance_->slots().current(), Slot::A);
  EXPECT_EQ(exeOf(app.daemonPid()), appliance_->slots().slotDir(Slot::A) / "bin/vcrmd");
  EXPECT_EQ(app.activeDatabaseName(), "vcrm");
  EXPECT_FALSE(hasMarkerTable(app, app.activeDatabaseName()));
  EXPECT_EQ(backStatus->getArray("history")->getObject(0)->getValue<std::string>("outcome"),
            "gone-back");
  auto keptAgain = appliance_->client();
  EXPECT_EQ(keptAgain.loginBearer("kept", kKeptPassword).status, 200);
}

// The same upgrade from the command line: `vcrmctl upgrade apply` uploads, verifies, shows,
// confirms and follows the steps across the restart until N+1 serves, and exits 0.
TEST_F(RealUpgradeTest, VcrmctlUpgradeApplyFollowsTheUpgradeUntilTheNextVersionServes) {
  VCRM_NEXT_BUILD_OR_SKIP(next, test::NextBuild::NPlus1);
  const std::string nextVersion = test::versionOfBuild(next);
  ASSERT_NO_FATAL_FAILURE(startAppliance());
  const fs::path dir = appliance_->scratch();
  const fs::path bundle = dir / "next.bin";
  test::makeBundleOfBuild(next, bundle, dir / "build-bundle.log");
  files::atomicWrite(dir / "password", std::string(kKeptPassword) + "\n", 0600);
  files::atomicWrite(dir / "passphrase", std::string(test::kBackupPassphrase) + "\n", 0600);
  const auto run = test::runToEnd(
      {(test::binDir() / "vcrmctl").string(), "--root", appliance_->root().string(), "--user",
       "kept", "--password-file", (dir / "password").string(), "upgrade", "apply", bundle.string(),
       "--backup-passphrase-file", (dir / "passphrase").string(), "--yes"},
      dir / "vcrmctl.log", 240s);
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find(nextVersion), std::string::npos) << run.output;
  EXPECT_EQ(appliance_->servedVersion(), nextVersion) << run.output;
  EXPECT_EQ(appliance_->slots().current(), Slot::B);
}

TEST_F(RealUpgradeTest, ANewVersionFailingItsHealthCheckRollsBackByItself) {
  VCRM_NEXT_BUILD_OR_SKIP(unhealthy, test::NextBuild::Unhealthy);
  const std::string badVersion = test::versionOfBuild(unhealthy);
  ASSERT_NE(badVersion, productVersion());
  ASSERT_NO_FATAL_FAILURE(startAppliance());
  auto& app = appliance_->app();
  const std::string originalDb = app.activeDatabaseName();
  const std::string snapshotBefore = [&] {
    auto c = app.database();
    return test::restorableSnapshot(c);
  }();
  const pid_t before = app.daemonPid();

  const std::string id = confirmBundleOf(unhealthy, badVersion);
  ASSERT_FALSE(id.empty());
  const auto status = test::awaitUpgradeEnd(*appliance_, id, 240s);
  const auto record = status->getObject("upgrade");
  app.awaitRestart(before);
  admin_ = std::make_unique<HttpsClient>(appliance_->adminClient());

  // N serves again from slot a, and says why.
  EXPECT_EQ(record->getValue<std::string>("phase"), "failed");
  EXPECT_EQ(record->getValue<std::string>("outcome"), "rolled-back") << json::stringify(status);
  EXPECT_EQ(appliance_->servedVersion(), productVersion());
  EXPECT_EQ(appliance_->slots().current(), Slot::A);
  EXPECT_EQ(exeOf(app.daemonPid()), appliance_->slots().slotDir(Slot::A) / "bin/vcrmd");
  EXPECT_EQ(status->getObject("running")->getValue<std::string>("slot"), "a");
  const std::string reason =
      record->isNull("rollback_reason") ? "" : record->getValue<std::string>("rollback_reason");
  EXPECT_NE(reason.find("503"), std::string::npos) << "reason: " << reason;
  for (const char* step : {"migrated", "rollback-started", "rolled-back-slot",
                           "rolled-back-database", "dropped-copy", "failed"}) {
    EXPECT_EQ(stepNames(record).count(step), 1u) << step << " in " << json::stringify(record);
  }
  const auto history = status->getArray("history");
  ASSERT_TRUE(history && history->size() >= 1);
  EXPECT_EQ(history->getObject(0)->getValue<std::string>("outcome"), "rolled-back");
  EXPECT_NE(history->getObject(0)->getValue<std::string>("reason").find("503"), std::string::npos);

  // The migrated copy is dropped; the original is the active database, as it was.
  EXPECT_FALSE(databaseExists(app, upgradeCopyName(id)));
  EXPECT_EQ(app.activeDatabaseName(), originalDb);
  EXPECT_FALSE(hasMarkerTable(app, originalDb));
  auto c = app.database();
  EXPECT_EQ(test::restorableSnapshot(c), snapshotBefore);
  auto kept = appliance_->client();
  EXPECT_EQ(kept.loginBearer("kept", kKeptPassword).status, 200);
}

}  // namespace
}  // namespace vcrm::upgrade
