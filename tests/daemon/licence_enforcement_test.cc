// What the licence allows, enforced by a real vcrmd on real Janus bridges: concurrent ports
// counted across all bridges together (a 20-way race over two bridges at the licence's edge),
// the bridge count, evaluation mode without a licence, the grace period, and a clock set back
// below the latest time seen, which does not bring an expired licence back. Live calls are
// never dropped for the licence.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <latch>

#include "api_times.h"
#include "bridge_setup.h"
#include "eventually.h"
#include "licence_cases.h"
#include "vcrm/common/db.h"
#include "vcrm/common/json.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrm/licensing/policy.h"
#include "vcrmd_process.h"

namespace vcrm {
namespace {

using test::eventually;
using test::HttpResult;
using test::HttpsClient;
using test::isoIn;
using test::VcrmdProcess;

std::int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class LicenceEnforcementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VcrmdProcess::Options o;
    o.settings = {"bridge.probe_seconds=1", "conference.prelaunch_seconds=2"};
    o.applyTestLicence = false;
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    signIn();
  }
  void signIn() {
    admin_ = std::make_unique<HttpsClient>(app_->client());
    ASSERT_EQ(admin_->loginBearer("admin", app_->adminPassword()).status, 200);
  }

  HttpResult applyLicence(std::int64_t sequence, std::int64_t ports, std::int64_t bridges,
                          std::optional<std::int64_t> validUntil = std::nullopt,
                          int graceDays = 30) {
    const auto serial = admin_->get("/api/v1/license").json()->getValue<std::string>("serial");
    licensing::Licence l = test::sampleLicence(serial, nowSeconds(), sequence);
    l.features.concurrentPorts = ports;
    l.features.bridges = bridges;
    l.validUntil = validUntil;
    l.graceDays = graceDays;
    json::ObjectPtr body = new json::Object;
    body->set("file", licensing::issueLicence(l, test::testLicenceKey()));
    return admin_->postJson("/api/v1/license", json::stringify(body));
  }

  std::int64_t addBridge(const std::string& name, int capacity) {
    auto registered = test::registerJanusBridge(*admin_, name, capacity);
    janus_.push_back(std::move(registered.janus));
    const auto id = registered.id;
    EXPECT_TRUE(eventually(
        [&] {
          return admin_->get("/api/v1/bridges/" + std::to_string(id))
                     .json()
                     ->getValue<std::string>("health") == "up";
        },
        std::chrono::seconds(10)));
    return id;
  }

  HttpResult addSilentBridge(const std::string& name) {
    return admin_->postJson(
        "/api/v1/bridges",
        R"({"name":")" + name +
            R"(","url":"http://127.0.0.1:9/janus","admin_url":"http://127.0.0.1:9/admin","admin_secret":"x","capacity_ports":10,"state":"disabled"})");
  }

  HttpResult book(const std::string& start, int ports, const std::string& more = "") {
    return admin_->postJson("/api/v1/conferences", R"({"name":"Booking","start":")" + start +
                                                       R"(","duration_minutes":60,"ports":)" +
                                                       std::to_string(ports) + more + "}");
  }

  void setLatestSeen(std::int64_t t) {
    db::Connection c("host=" + db::dsnQuote((app_->stateDir() / "pgsocket").string()) +
                     " port=5432 user=vcrm dbname=vcrm connect_timeout=10");
    c.exec("UPDATE appliance_serials SET latest_seen = $1", {static_cast<long long>(t)});
  }
  Poco::JSON::Object::Ptr licence() { return admin_->get("/api/v1/license").json(); }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::vector<std::unique_ptr<test::JanusProcess>> janus_;
};

TEST_F(LicenceEnforcementTest, TwentyWayRaceAcrossTwoBridgesStopsAtTheLicencesPorts) {
  ASSERT_EQ(applyLicence(1, 20, 2).status, 200);
  const auto b1 = addBridge("lic-a", 100);
  const auto b2 = addBridge("lic-b", 100);
  const std::string start = isoIn(std::chrono::hours(2));
  // 10 of the 20 licensed ports reserved, five on each bridge: each bridge alone has room for
  // 95 more, so only the licence can stop the race.
  ASSERT_EQ(book(start, 5, R"(,"bridge_id":)" + std::to_string(b1)).status, 201);
  ASSERT_EQ(book(start, 5, R"(,"bridge_id":)" + std::to_string(b2)).status, 201);

  // Signed in first and released together, so the bookings meet inside admission.
  std::vector<HttpsClient> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(app_->client());
    ASSERT_EQ(clients.back().loginBearer("admin", app_->adminPassword()).status, 200);
  }
  std::latch go(20);
  std::vector<std::future<HttpResult>> results;
  for (int i = 0; i < 20; ++i) {
    results.push_back(std::async(std::launch::async, [&, i] {
      go.arrive_and_wait();
      // Alternate the bridges so both take bookings at the same instant.
      return clients[static_cast<std::size_t>(i)].postJson(
          "/api/v1/conferences", R"({"name":"Race )" + std::to_string(i) + R"(","start":")" +
                                     start + R"(","duration_minutes":60,"ports":1,"bridge_id":)" +
                                     std::to_string(i % 2 ? b1 : b2) + "}");
    }));
  }
  int ok = 0, refused = 0;
  std::string message;
  for (auto& f : results) {
    const auto r = f.get();
    ok += r.status == 201;
    if (r.status == 409 && r.errorCode() == "licence_ports") {
      ++refused;
      message = r.json()->getObject("error")->getValue<std::string>("message");
    }
  }
  EXPECT_EQ(ok, 10);
  EXPECT_EQ(refused, 10);
  EXPECT_NE(message.find("licence allows 20 concurrent ports"), std::string::npos) << message;
  auto list = admin_->get("/api/v1/conferences?state=scheduled").json()->getArray("conferences");
  int reserved = 0;
  for (std::size_t i = 0; i < list->size(); ++i)
    reserved += list->getObject(static_cast<unsigned>(i))->getValue<int>("ports");
  EXPECT_EQ(reserved, 20);
  // Another time is free again, and a bigger licence lets more in at once.
  EXPECT_EQ(book(isoIn(std::chrono::hours(5)), 20).status, 201);
  EXPECT_EQ(book(start, 1).status, 409);
  ASSERT_EQ(applyLicence(2, 30, 2).status, 200);
  EXPECT_EQ(book(start, 10).status, 201);
}

TEST_F(LicenceEnforcementTest, EvaluationModeAndBridgesBeyondTheLicence) {
  // No licence: evaluation limits.
  EXPECT_EQ(licence()->getValue<std::string>("state"), "evaluation");
  addBridge("eval-a", 100);
  const std::string start = isoIn(std::chrono::hours(2));
  auto r = book(start, static_cast<int>(licensing::kEvaluationLimits.concurrentPorts) + 1);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "licence_ports");
  EXPECT_EQ(book(start, static_cast<int>(licensing::kEvaluationLimits.concurrentPorts)).status,
            201);
  ASSERT_EQ(licensing::kEvaluationLimits.bridges, 2);
  EXPECT_EQ(addSilentBridge("eval-b").status, 201);
  r = addSilentBridge("eval-c");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "licence_bridges");
  EXPECT_NE(r.json()->getObject("error")->getValue<std::string>("message").find("allows 2 bridges"),
            std::string::npos)
      << r.body;
  // A licence for three bridges takes the third, not a fourth.
  ASSERT_EQ(applyLicence(1, 50, 3).status, 200);
  EXPECT_EQ(addSilentBridge("eval-c").status, 201);
  EXPECT_EQ(addSilentBridge("eval-d").status, 409);
}

TEST_F(LicenceEnforcementTest, GraceThenExpiryNeverDropALiveCallAndASetBackClockDoesNotRevive) {
  const std::int64_t now = nowSeconds();
  ASSERT_EQ(applyLicence(1, 20, 2, now + 2 * 86400, 1).status, 200);
  addBridge("grace-a", 100);
  auto live =
      admin_->postJson("/api/v1/conferences",
                       R"({"name":"Live","start_now":true,"duration_minutes":120,"ports":15})");
  ASSERT_EQ(live.status, 201) << live.body;
  const auto id = live.json()->getValue<std::int64_t>("id");
  auto stateOf = [&] {
    return admin_->get("/api/v1/conferences/" + std::to_string(id))
        .json()
        ->getValue<std::string>("state");
  };
  ASSERT_TRUE(eventually([&] { return stateOf() == "active"; }, std::chrono::seconds(10)))
      << stateOf();

  // The appliance has seen a time past valid_until (its clock has since been set back to now):
  // the licence is in grace, with its capacity and a warning on the dashboard.
  setLatestSeen(now + 2 * 86400 + 3600);
  app_->stop();
  app_->start();
  signIn();
  auto l = licence();
  EXPECT_EQ(l->getValue<std::string>("state"), "grace");
  EXPECT_EQ(l->getObject("status")->getObject("limits")->getValue<int>("concurrent_ports"), 20);
  auto dash = admin_->get("/api/v1/dashboard").json()->getObject("licence");
  EXPECT_EQ(dash->getValue<std::string>("state"), "grace");
  EXPECT_EQ(dash->getValue<int>("days_left"), 1);
  EXPECT_NE(dash->getValue<std::string>("message").find("grace"), std::string::npos);
  EXPECT_EQ(dash->getValue<int>("ports_reserved_now"), 15);
  EXPECT_EQ(book(isoIn(std::chrono::minutes(30)), 5).status, 201);  // 15 + 5 = 20: still fits

  // Past the grace period: evaluation limits for new bookings, the live call stays.
  setLatestSeen(now + 4 * 86400);
  app_->stop();
  app_->start();
  signIn();
  EXPECT_EQ(licence()->getValue<std::string>("state"), "expired");
  EXPECT_EQ(licence()->getObject("status")->getObject("limits")->getValue<int>("concurrent_ports"),
            licensing::kEvaluationLimits.concurrentPorts);
  auto r = book(isoIn(std::chrono::hours(6)), 11);
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(r.errorCode(), "licence_ports");
  EXPECT_EQ(stateOf(), "active");
  // Nor can the old licence, or a copy with a later end that has already passed, be applied:
  // the appliance's time is the latest it has seen.
  r = applyLicence(2, 20, 2, now + 3 * 86400);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(r.errorCode(), "licence_expired");
}

}  // namespace
}  // namespace vcrm
