// A bridge that fails in the middle of an admin's action: the answer is a 502 that names the
// bridge and the likely cause, and nothing is recorded as done that was not.
#include <gtest/gtest.h>

#include <Poco/JSON/Array.h>

#include "bridge_setup.h"
#include "eventually.h"
#include "janus_process.h"
#include "vcrmd_process.h"

using vcrm::test::eventually;
using vcrm::test::HttpsClient;
using vcrm::test::JanusParticipant;
using vcrm::test::VcrmdProcess;

namespace {

TEST(BridgeFailure, MuteAndDropOnABridgeThatStoppedAnsweringAre502sNamingIt) {
  VcrmdProcess::Options o;
  // The prober must not notice the dead bridge first (it would move or fail the conference).
  o.settings = {"bridge.probe_seconds=300", "conference.prelaunch_seconds=3"};
  VcrmdProcess app(o);
  app.start();
  auto admin = app.client();
  ASSERT_EQ(admin.loginBearer("admin", app.adminPassword()).status, 200);
  auto bridge = vcrm::test::registerJanusBridge(admin, "east-1", 20);

  auto booked = admin.postJson("/api/v1/conferences",
                               R"({"name":"Board","start_now":true,"duration_minutes":30,"pin":"1234","ports":4})");
  ASSERT_EQ(booked.status, 201) << booked.body;
  const auto id = booked.json()->getValue<std::int64_t>("id");
  const std::string path = "/api/v1/conferences/" + std::to_string(id);
  ASSERT_TRUE(eventually([&] { return admin.get(path).json()->getValue<std::string>("state") == "active"; },
                         std::chrono::seconds(10)));
  const auto room = admin.get(path).json()->getValue<std::int64_t>("room");
  JanusParticipant alice(bridge.janus->httpUrl(), room, "Alice", "1234");
  ASSERT_TRUE(eventually([&] { return admin.get(path).json()->getArray("participants")->size() == 1; },
                         std::chrono::seconds(5)));

  bridge.janus->kill9();
  const std::string who = path + "/participants/" + std::to_string(alice.id());
  for (const char* action : {"/mute", "/drop"}) {
    auto r = admin.postJson(who + action, "{}");
    EXPECT_EQ(r.status, 502) << action << ": " << r.body;
    EXPECT_EQ(r.errorCode(), "bridge_failed") << r.body;
    EXPECT_NE(r.body.find("bridge east-1"), std::string::npos) << r.body;
    // A refused new connection says "port"; a kept-alive connection the dead Janus dropped fails
    // while writing and says "protocol". Either way a cause is named.
    EXPECT_NE(r.body.find("likely cause: "), std::string::npos) << r.body;
  }
  // The failed drop left Alice's leg open and the failed mute did not mark her muted.
  auto participants = admin.get(path).json()->getArray("participants");
  ASSERT_EQ(participants->size(), 1u) << admin.get(path).body;
  EXPECT_FALSE(participants->getObject(0)->getValue<bool>("muted"));
}

}  // namespace
