// A bridge on another host: vcrmd in one network namespace, Janus in another, joined by a
// veth link in 198.18.0.0/15. What an operator sees when the link is fine, when a firewall
// drops the bridge's packets, when the bridge is down; and bridge events crossing the link.
#include <gtest/gtest.h>

#include <thread>

#include "bridge_setup.h"
#include "eventually.h"
#include "janus_process.h"
#include "netns.h"
#include "vcrmd_process.h"

using vcrm::test::HttpsClient;
using vcrm::test::JanusParticipant;
using vcrm::test::JanusProcess;
using vcrm::test::NetnsLink;
using vcrm::test::ScopedNetns;
using vcrm::test::VcrmdProcess;
using vcrm::test::eventually;

namespace {

class BridgeLinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = NetnsLink::unavailableReason(); !why.empty()) GTEST_SKIP() << why;
    link_ = std::make_unique<NetnsLink>();
    // This test process, and every process it starts, now lives on host "a".
    inA_ = std::make_unique<ScopedNetns>(link_->a());
    VcrmdProcess::Options o;
    o.settings = {"bridge_events.listen=" + NetnsLink::addressA(), "bridge.probe_seconds=1",
                  "conference.prelaunch_seconds=2", "conference.reconcile_seconds=3600"};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->client());
    ASSERT_EQ(admin_->loginBearer("admin", app_->adminPassword()).status, 200);
    JanusProcess::Options j;
    j.ip = NetnsLink::addressB();
    j.netns = link_->b();
    auto registered = vcrm::test::registerJanusBridge(*admin_, "remote", 50, "default", j);
    bridgeId_ = registered.id;
    eventsUrl_ = registered.eventsUrl;
    janus_ = std::move(registered.janus);
  }
  void TearDown() override {
    janus_.reset();
    admin_.reset();
    app_.reset();
    inA_.reset();
    link_.reset();
  }
  Poco::JSON::Object::Ptr bridge() { return admin_->get("/api/v1/bridges/" + std::to_string(bridgeId_)).json(); }
  std::string health() { return bridge()->getValue<std::string>("health"); }

  std::unique_ptr<NetnsLink> link_;
  std::unique_ptr<ScopedNetns> inA_;
  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::unique_ptr<JanusProcess> janus_;
  std::int64_t bridgeId_ = 0;
  std::string eventsUrl_;
};

TEST_F(BridgeLinkTest, HealthNamesAFirewallThenAStoppedBridgeThenRecovers) {
  ASSERT_TRUE(eventually([&] { return health() == "up"; }, std::chrono::seconds(10))) << bridge()->optValue<std::string>("health_message", "");
  EXPECT_EQ(bridge()->getValue<std::string>("version"), "1.1.2");

  // A firewall on the bridge host silently drops everything to the Admin API.
  const std::string port = janus_->adminUrl().substr(janus_->adminUrl().rfind(':') + 1, 5);
  const std::string adminPort = port.substr(0, port.find('/'));
  NetnsLink::exec(link_->b(), {"/usr/sbin/nft", "add", "table", "inet", "vcrmtest"});
  NetnsLink::exec(link_->b(), {"/usr/sbin/nft", "add chain inet vcrmtest input { type filter hook input priority 0; }"});
  NetnsLink::exec(link_->b(), {"/usr/sbin/nft", "add", "rule", "inet", "vcrmtest", "input", "tcp", "dport", adminPort, "drop"});
  ASSERT_TRUE(eventually([&] { return health() == "down" && bridge()->optValue<std::string>("health_cause", "") == "firewall"; },
                         std::chrono::seconds(15)))
      << bridge()->optValue<std::string>("health_cause", "") << ": " << bridge()->optValue<std::string>("health_message", "");

  // The firewall goes; the bridge comes back on its own.
  NetnsLink::exec(link_->b(), {"/usr/sbin/nft", "delete", "table", "inet", "vcrmtest"});
  ASSERT_TRUE(eventually([&] { return health() == "up"; }, std::chrono::seconds(10)));

  // Janus stopped: the host answers, nothing listens.
  // The probe that races Janus's shutdown may see a torn connection; the next ones a refusal.
  janus_->stop();
  ASSERT_TRUE(eventually([&] { return health() == "down" && bridge()->optValue<std::string>("health_cause", "") == "port"; },
                         std::chrono::seconds(10)))
      << bridge()->optValue<std::string>("health_cause", "") << ": " << bridge()->optValue<std::string>("health_message", "");
}

TEST_F(BridgeLinkTest, ParticipantEventsCrossTheLinkToTheEventsListener) {
  EXPECT_EQ(eventsUrl_, "http://" + NetnsLink::addressA() + ":" + std::to_string(app_->eventsPort()) +
                            "/api/v1/bridges/" + std::to_string(bridgeId_) + "/events");
  ASSERT_TRUE(eventually([&] { return health() == "up"; }, std::chrono::seconds(10)));
  auto r = admin_->postJson("/api/v1/conferences", R"({"name":"Remote","start_now":true,"duration_minutes":10,"ports":3})");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto id = r.json()->getValue<std::int64_t>("id");
  const auto room = r.json()->getValue<std::int64_t>("room");
  auto conf = [&] { return admin_->get("/api/v1/conferences/" + std::to_string(id)).json(); };
  ASSERT_TRUE(eventually([&] { return conf()->getValue<std::string>("state") == "active"; }, std::chrono::seconds(5)));
  JanusParticipant remote(janus_->httpUrl(), room, "Across the link");
  // Polling is all but off in this appliance: only the event handler can bring this in.
  ASSERT_TRUE(eventually([&] { return conf()->getArray("participants")->size() == 1; }, std::chrono::seconds(2)))
      << janus_->output().substr(0, 3000);
  EXPECT_EQ(conf()->getArray("participants")->getObject(0)->getValue<std::string>("display_name"), "Across the link");
}

}  // namespace
