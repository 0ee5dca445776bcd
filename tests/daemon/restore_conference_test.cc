// Live conferences on a real Janus through a restore: one running now that the restored
// database also has running carries on in the same room (re-attached, its participant still
// there); one running now that the restored database does not know is ended cleanly with its
// CDRs in the database that is kept as the previous one; one running in the restored
// database whose room had gone is brought up again by the scheduler's normal start.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "bridge_setup.h"
#include "eventually.h"
#include "janus_process.h"
#include "restore_support.h"
#include "vcrmd_process.h"

using vcrm::test::eventually;
using vcrm::test::HttpResult;
using vcrm::test::HttpsClient;
using vcrm::test::JanusParticipant;
using vcrm::test::JanusProcess;
using vcrm::test::VcrmdProcess;

namespace {

class RestoreConferenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VcrmdProcess::Options o;
    o.settings = {"conference.prelaunch_seconds=3", "bridge.probe_seconds=1",
                  "conference.reconcile_seconds=1"};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->adminClient());
    auto registered = vcrm::test::registerJanusBridge(*admin_, "j1", 20);
    janus_ = std::move(registered.janus);
    bridge_ = registered.id;
    ASSERT_TRUE(eventually(
        [&] {
          return admin_->get("/api/v1/bridges/" + std::to_string(bridge_))
                     .json()
                     ->getValue<std::string>("health") == "up";
        },
        std::chrono::seconds(10)));
  }

  Poco::JSON::Object::Ptr conference(std::int64_t id) {
    return admin_->get("/api/v1/conferences/" + std::to_string(id)).json();
  }
  std::string state(std::int64_t id) { return conference(id)->getValue<std::string>("state"); }
  std::int64_t startNow(const std::string& name) {
    auto r =
        admin_->postJson("/api/v1/conferences",
                         R"({"name":")" + name +
                             R"(","start_now":true,"duration_minutes":30,"pin":"1234","ports":2})");
    EXPECT_EQ(r.status, 201) << r.body;
    const auto id = r.json()->getValue<std::int64_t>("id");
    EXPECT_TRUE(eventually([&] { return state(id) == "active"; }, std::chrono::seconds(8)))
        << state(id);
    return id;
  }
  int participants(std::int64_t id) {
    return static_cast<int>(conference(id)->getArray("participants")->size());
  }
  bool roomExists(std::int64_t room) {
    Poco::JSON::Object::Ptr req = new Poco::JSON::Object;
    req->set("request", "exists");
    req->set("room", room);
    return janus_->videoRoom(req)->getValue<bool>("exists");
  }
  std::size_t inRoom(std::int64_t room) {
    Poco::JSON::Object::Ptr req = new Poco::JSON::Object;
    req->set("request", "listparticipants");
    req->set("room", room);
    return janus_->videoRoom(req)->getArray("participants")->size();
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::unique_ptr<JanusProcess> janus_;
  std::int64_t bridge_ = 0;
};

TEST_F(RestoreConferenceTest, LiveConferencesAreReattachedOrEndedCleanlyWithTheirCdrs) {
  // Kept: running at the backup and now. Gone: running at the backup, ended since.
  const auto kept = startNow("kept");
  const auto keptRoom = conference(kept)->getValue<std::int64_t>("room");
  JanusParticipant alice(janus_->httpUrl(), keptRoom, "Alice", "1234");
  ASSERT_TRUE(eventually([&] { return participants(kept) == 1; }, std::chrono::seconds(5)));
  const auto gone = startNow("gone");
  const auto goneRoom = conference(gone)->getValue<std::int64_t>("room");
  const std::string archive =
      vcrm::test::downloadBackup(*admin_, vcrm::test::backupThroughApi(*admin_));

  ASSERT_EQ(
      admin_->postJson("/api/v1/conferences/" + std::to_string(gone) + "/terminate", "{}").status,
      200);
  ASSERT_FALSE(roomExists(goneRoom));
  // New: started after the backup, with a participant.
  const auto fresh = startNow("fresh");
  const auto freshRoom = conference(fresh)->getValue<std::int64_t>("room");
  JanusParticipant bob(janus_->httpUrl(), freshRoom, "Bob", "1234");
  ASSERT_TRUE(eventually([&] { return participants(fresh) == 1; }, std::chrono::seconds(5)));
  const std::string before = app_->activeDatabaseName();

  const std::string id = vcrm::test::verifiedRestore(*admin_, archive);
  vcrm::test::confirmAndAwait(*app_, *admin_, id);
  admin_ = std::make_unique<HttpsClient>(app_->adminClient());

  // "kept" carries on in the same room, Alice still in it.
  EXPECT_EQ(state(kept), "active");
  EXPECT_TRUE(roomExists(keptRoom));
  EXPECT_EQ(inRoom(keptRoom), 1u) << "the participant of the re-attached conference was dropped";
  EXPECT_TRUE(eventually([&] { return participants(kept) == 1; }, std::chrono::seconds(5)));
  EXPECT_NE(app_->output().find("REATTACHED"), std::string::npos);

  // "fresh" was ended before the swap: its room is gone, and the previous database has its
  // conference CDR and Bob's closed leg.
  EXPECT_FALSE(roomExists(freshRoom));
  auto previous = app_->database(before);
  auto cdr = previous.exec(
      "SELECT final_state, end_cause FROM conference_cdrs WHERE conference_id = $1", {fresh});
  ASSERT_EQ(cdr.rows(), 1) << "no CDR for the conference the restore ended";
  EXPECT_EQ(cdr.text(0, 0), "ended");
  EXPECT_EQ(cdr.text(0, 1), "ended by a restore of another database");
  auto legs = previous.exec(
      "SELECT count(*) FILTER (WHERE left_at IS NOT NULL), count(*) FROM participant_legs WHERE "
      "conference_id = $1",
      {fresh});
  EXPECT_EQ(legs.int64(0, 1), 1);
  EXPECT_EQ(legs.int64(0, 0), 1) << "Bob's leg was left open";
  // The restored database never had it.
  EXPECT_EQ(admin_->get("/api/v1/conferences/" + std::to_string(fresh)).status, 404);

  // "gone" is running in the restored database, its booking not over: the scheduler's
  // normal start makes its room again.
  EXPECT_EQ(state(gone), "active");
  EXPECT_TRUE(eventually([&] { return roomExists(goneRoom); }, std::chrono::seconds(5)));
  EXPECT_NE(app_->output().find("ROOM_RECREATED"), std::string::npos);
  // Ended now, it gets its CDR in the restored database as any conference does.
  ASSERT_EQ(
      admin_->postJson("/api/v1/conferences/" + std::to_string(gone) + "/terminate", "{}").status,
      200);
  auto restored = app_->database();
  EXPECT_EQ(restored.exec("SELECT count(*) FROM conference_cdrs WHERE conference_id = $1", {gone})
                .int64(0, 0),
            1);
}

}  // namespace
