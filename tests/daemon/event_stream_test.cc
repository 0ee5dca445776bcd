// Live event streams against a real vcrmd: each holds a request worker, so they are capped per
// session, per user and in all; and a stream lasts only as long as its session, so a demoted,
// disabled or signed-out user stops receiving conference events (PINs, names) within seconds.
#include "event_stream.h"

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>

#include "api_times.h"
#include "eventually.h"
#include "vcrm/common/db.h"
#include "vcrmd_process.h"

using namespace vcrm::test;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// The re-check period of an open stream (EventsModule::kRecheckEvery) and how long after it a
// stream must have noticed that its session ended.
constexpr auto kRecheck = 2s;
constexpr auto kNoticed = kRecheck + 2s;

class EventStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VcrmdProcess::Options o;
    // 20 workers, at most 5 of them streaming; no probe turns the test bridge down meanwhile.
    o.settings = {"http.threads=20", "events.max_streams=5", "bridge.probe_seconds=300"};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->adminClient());
  }

  std::string signIn(const std::string& user, const std::string& password) {
    auto c = app_->client();
    auto r = c.loginBearer(user, password);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? r.json()->getValue<std::string>("token") : std::string();
  }

  std::unique_ptr<EventStream> open(const std::string& token) {
    return std::make_unique<EventStream>(*app_, token);
  }

  // A booking an hour ahead on a bridge nobody probes: conference events without a live room.
  std::int64_t bookLater(const std::string& name) {
    if (!bridgeAdded_) {
      auto b = admin_->postJson(
          "/api/v1/bridges",
          R"({"name":"j1","url":"http://127.0.0.1:9/janus",)"
          R"("admin_url":"http://127.0.0.1:9/admin","admin_secret":"x","capacity_ports":50})");
      EXPECT_EQ(b.status, 201) << b.body;
      bridgeAdded_ = true;
    }
    auto r = admin_->postJson("/api/v1/conferences",
                              R"({"name":")" + name + R"(","start":")" + isoIn(3600s) +
                                  R"(","duration_minutes":30,"ports":2,"pin":"24680"})");
    EXPECT_EQ(r.status, 201) << r.body;
    return r.status == 201 ? r.json()->getValue<std::int64_t>("id") : 0;
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  bool bridgeAdded_ = false;
};

bool isConference(const StreamEvent& e, const std::string& name) {
  return e.type == "conference" && e.data.find("\"" + name + "\"") != std::string::npos;
}

TEST_F(EventStreamTest, StreamsAreCappedPerSessionPerUserAndInAll) {
  const std::string first = signIn("admin", app_->adminPassword());
  auto a1 = open(first);
  auto a2 = open(first);
  ASSERT_EQ(a1->status(), 200);
  ASSERT_EQ(a2->status(), 200);
  {
    EventStream third(*app_, first);
    EXPECT_EQ(third.status(), 429) << third.body();
    EXPECT_EQ(third.errorCode(), "too_many_streams") << third.body();
    EXPECT_NE(third.body().find("this session already has 2 live event streams"), std::string::npos)
        << third.body();
    EXPECT_FALSE(third.retryAfter().empty());
  }

  // A second session of the same user has a session allowance of its own, up to the user's 4.
  const std::string second = signIn("admin", app_->adminPassword());
  auto b1 = open(second);
  auto b2 = open(second);
  ASSERT_EQ(b1->status(), 200);
  ASSERT_EQ(b2->status(), 200);
  {
    EventStream fifth(*app_, signIn("admin", app_->adminPassword()));
    EXPECT_EQ(fifth.status(), 429) << fifth.body();
    EXPECT_NE(fifth.body().find("your account already has 4 live event streams"), std::string::npos)
        << fifth.body();
  }

  // Another user takes the last of the 5 the appliance allows; then nobody gets one.
  ASSERT_EQ(app_->createReadyUser(*admin_, "watcher", {"noc"}, "correct horse battery").status,
            201);
  auto w1 = open(signIn("watcher", "correct horse battery"));
  ASSERT_EQ(w1->status(), 200) << w1->body();
  {
    EventStream sixth(*app_, signIn("watcher", "correct horse battery"));
    EXPECT_EQ(sixth.status(), 429) << sixth.body();
    EXPECT_NE(sixth.body().find("the appliance already serves its most live event streams (5)"),
              std::string::npos)
        << sixth.body();
  }

  // A closed tab gives its slot back once the server notices (its next keep-alive write).
  a1->close();
  std::unique_ptr<EventStream> again;
  EXPECT_TRUE(eventually(
      [&] {
        again = open(first);
        return again->status() == 200;
      },
      2 * kNoticed, 200ms))
      << "the closed stream's slot never came back: " << again->body();
  // The slots of the refused attempts were never taken: the caps are still exact.
  EventStream over(*app_, first);
  EXPECT_EQ(over.status(), 429) << over.body();
}

TEST_F(EventStreamTest, TooManyStreamsForTheWorkersIsRefusedAtStart) {
  VcrmdProcess::Options o;
  o.settings = {"http.threads=8", "events.max_streams=5"};
  VcrmdProcess app(o);
  const std::string out = app.startExpectingFailure();
  EXPECT_NE(out.find("more than half of the http.threads = 8 request workers"), std::string::npos)
      << out;
}

TEST_F(EventStreamTest, ADemotedAdminsStreamCarriesNoFurtherConferenceEvents) {
  ASSERT_EQ(app_->createReadyUser(*admin_, "eve", {"admin"}, "eve's own passphrase").status, 201);
  const std::string token = signIn("eve", "eve's own passphrase");
  EventStream stream(*app_, token);
  ASSERT_EQ(stream.status(), 200) << stream.body();
  const auto id = bookLater("Before");
  ASSERT_TRUE(stream.waitFor([](const StreamEvent& e) { return isConference(e, "Before"); }, 5s))
      << "an admin's stream carries conference events";

  // Another admin demotes eve; the conference keeps changing while her old stream is open.
  ASSERT_EQ(admin_->request("PATCH", "/api/v1/users/eve", R"({"roles":["noc"]})").status, 200);
  const auto demoted = Clock::now();
  std::map<std::string, Clock::duration> renamedAfter;  // name -> when, after the demotion
  for (int k = 0; Clock::now() - demoted < 2 * kNoticed && !stream.waitEnded(200ms); ++k) {
    const std::string name = "After-" + std::to_string(k);
    renamedAfter[name] = Clock::now() - demoted;
    ASSERT_EQ(admin_
                  ->request("PATCH", "/api/v1/conferences/" + std::to_string(id),
                            R"({"name":")" + name + R"("})")
                  .status,
              200);
  }
  const auto endedAfter = Clock::now() - demoted;
  RecordProperty(
      "ended_after_demotion_ms",
      static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(endedAfter).count()));
  EXPECT_TRUE(stream.waitEnded(0ms)) << "the stream of a demoted admin stayed open";
  EXPECT_LT(endedAfter, kNoticed) << "the stream ended too late";
  for (const auto& e : stream.events()) {
    for (const auto& [name, when] : renamedAfter) {
      if (isConference(e, name)) {
        EXPECT_LT(when, kNoticed)
            << name << " reached the demoted admin "
            << std::chrono::duration_cast<std::chrono::milliseconds>(when).count()
            << " ms after the demotion";
      }
    }
  }
  // A new stream of the ended session is refused.
  EXPECT_EQ(EventStream(*app_, token).status(), 401);
}

TEST_F(EventStreamTest, AStreamWhoseUserLostTheAdminRoleCarriesBridgeEventsOnly) {
  // The roles changed in the database behind the API's back (the API itself ends the
  // sessions): the session lives on, but its stream must stop carrying conference events.
  ASSERT_EQ(app_->createReadyUser(*admin_, "eve", {"admin"}, "eve's own passphrase").status, 201);
  EventStream stream(*app_, signIn("eve", "eve's own passphrase"));
  ASSERT_EQ(stream.status(), 200) << stream.body();
  const auto id = bookLater("Before");
  ASSERT_TRUE(stream.waitFor([](const StreamEvent& e) { return isConference(e, "Before"); }, 5s));
  auto db = app_->database();
  db.exec("UPDATE users SET roles = '{noc}' WHERE username = 'eve'");
  const auto narrowed = Clock::now();
  // Once the stream has re-checked (vcrmd logs it), renames no longer reach it; bridge changes
  // still do. The bus is one ordered log: the rename would come before the bridge change.
  ASSERT_TRUE(eventually(
      [&] { return app_->output().find("STREAM_NARROWED") != std::string::npos; }, 2 * kNoticed));
  EXPECT_LT(Clock::now() - narrowed, kNoticed);
  ASSERT_EQ(
      admin_->request("PATCH", "/api/v1/conferences/" + std::to_string(id), R"({"name":"Hidden"})")
          .status,
      200);
  auto bridges = admin_->get("/api/v1/bridges").json()->getArray("bridges");
  ASSERT_EQ(bridges->size(), 1u);
  const std::string bridgePath =
      "/api/v1/bridges/" + std::to_string(bridges->getObject(0)->getValue<std::int64_t>("id"));
  ASSERT_EQ(admin_->request("PATCH", bridgePath, R"({"state":"cordoned"})").status, 200);
  EXPECT_TRUE(stream.waitFor([](const StreamEvent& e) { return e.type == "bridge"; }, 5s))
      << "the stream ended or carried no bridge change";
  for (const auto& e : stream.events()) {
    EXPECT_FALSE(isConference(e, "Hidden"))
        << "a conference event reached a user who is no longer an admin";
  }
  EXPECT_FALSE(stream.waitEnded(0ms)) << "the session lives on, and so does its stream";
}

TEST_F(EventStreamTest, AStreamEndsWithItsSession) {
  std::string password = "sam's own passphrase";
  ASSERT_EQ(app_->createReadyUser(*admin_, "sam", {"noc"}, password).status, 201);
  auto patchSam = [&](const std::string& body) {
    auto r = admin_->request("PATCH", "/api/v1/users/sam", body);
    ASSERT_EQ(r.status, 200) << r.body;
  };
  // Each way a session ends, with what it takes to have sam signed in again afterwards.
  struct Case {
    const char* what;
    std::function<void(const std::string& token)> end;
    std::function<void()> after;
  };
  const std::vector<Case> cases = {
      {"sign-out",
       [&](const std::string& token) {
         auto c = app_->client();
         c.setBearer(token);
         ASSERT_EQ(c.request("POST", "/api/v1/auth/logout").status, 204);
       },
       [] {}},
      {"disable", [&](const std::string&) { patchSam(R"({"disabled":true})"); },
       [&] { patchSam(R"({"disabled":false})"); }},
      {"password reset by an admin",
       [&](const std::string&) { patchSam(R"({"password":"reset by the admin"})"); },
       [&] {
         auto c = app_->client();
         ASSERT_EQ(c.loginBearer("sam", "reset by the admin").status, 200);
         password = "sam's second passphrase";
         ASSERT_EQ(c.changePassword("reset by the admin", password).status, 204);
       }},
      {"own password change in another session",
       [&](const std::string&) {
         auto c = app_->client();
         ASSERT_EQ(c.loginBearer("sam", password).status, 200);
         ASSERT_EQ(c.changePassword(password, "sam's third passphrase").status, 204);
         password = "sam's third passphrase";
       },
       [] {}},
  };
  for (const auto& k : cases) {
    SCOPED_TRACE(k.what);
    const std::string token = signIn("sam", password);
    EventStream stream(*app_, token);
    ASSERT_EQ(stream.status(), 200) << stream.body();
    const auto start = Clock::now();
    k.end(token);
    EXPECT_TRUE(stream.waitEnded(kNoticed))
        << "the stream outlived its session by more than " << kNoticed.count() << " s";
    const auto took = Clock::now() - start;
    EXPECT_LT(took, kNoticed);
    RecordProperty(
        std::string("ended_after_ms ") + k.what,
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
    EXPECT_EQ(EventStream(*app_, token).status(), 401);
    k.after();
  }
}

}  // namespace
