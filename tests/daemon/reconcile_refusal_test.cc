// Reconcile against a real Janus whose answers to `listparticipants` can be turned into VideoRoom
// plugin errors: only "no such room" (426) means the room vanished; any other refusal leaves the
// participants where they are and is asked again on the next pass.
//
// A real Janus answers listparticipants with a plugin error only for a missing room, so a small
// proxy (FakeRefusingAdminProxy) sits between vcrmd and the real Janus Admin API: it forwards
// every request and, when told to, answers listparticipants itself with the plugin error Janus
// would send. Everything else — rooms, participants, events — is the real Janus.
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/URI.h>
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>

#include "bridge_setup.h"
#include "eventually.h"
#include "vcrmd_process.h"

using vcrm::test::eventually;
using vcrm::test::HttpsClient;
using vcrm::test::JanusParticipant;
using vcrm::test::VcrmdProcess;

namespace {

// Forwards Janus Admin API posts to a real Janus; when `refuseWith` is non-zero, answers
// listparticipants with that VideoRoom error code instead. Counts what passes through.
class FakeRefusingAdminProxy {
 public:
  explicit FakeRefusingAdminProxy(std::string target) : target_(std::move(target)) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    auto* params = new Poco::Net::HTTPServerParams;
    params->setMaxThreads(8);
    server_ = std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), socket, params);
    server_->start();
    port_ = socket.address().port();
  }
  ~FakeRefusingAdminProxy() { server_->stopAll(true); }
  FakeRefusingAdminProxy(const FakeRefusingAdminProxy&) = delete;
  FakeRefusingAdminProxy& operator=(const FakeRefusingAdminProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/admin"; }
  void refuseWith(int videoRoomError) { refuseWith_ = videoRoomError; }
  int refused() const { return refused_; }
  int creates() const { return creates_; }
  int listed() const { return listed_; }  // listparticipants forwarded to Janus

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(FakeRefusingAdminProxy& p) : p_(p) {}
    void handleRequest(Poco::Net::HTTPServerRequest& req,
                       Poco::Net::HTTPServerResponse& res) override {
      std::string body;
      Poco::StreamCopier::copyToString(req.stream(), body);
      std::string answer;
      try {
        answer = p_.answer(body);
      } catch (const std::exception& e) {
        res.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_BAD_GATEWAY);
        res.send() << e.what();
        return;
      }
      res.setContentType("application/json");
      res.setContentLength(static_cast<std::streamsize>(answer.size()));
      res.send() << answer;
    }

   private:
    FakeRefusingAdminProxy& p_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(FakeRefusingAdminProxy& p) : p_(p) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(p_);
    }

   private:
    FakeRefusingAdminProxy& p_;
  };

  std::string answer(const std::string& body) {
    Poco::JSON::Parser parser;
    auto req = parser.parse(body).extract<Poco::JSON::Object::Ptr>();
    std::string request;
    if (req->getValue<std::string>("janus") == "message_plugin") {
      if (auto inner = req->getObject("request"))
        request = inner->optValue<std::string>("request", "");
    }
    if (request == "create") ++creates_;
    if (request == "listparticipants" && refuseWith_ != 0) {
      ++refused_;
      Poco::JSON::Object::Ptr response = new Poco::JSON::Object;
      response->set("videoroom", "event");
      response->set("error_code", refuseWith_.load());
      response->set("error", "refused by the test proxy");
      Poco::JSON::Object::Ptr top = new Poco::JSON::Object;
      top->set("janus", "success");
      top->set("transaction", req->optValue<std::string>("transaction", ""));
      top->set("response", response);
      std::ostringstream out;
      top->stringify(out);
      return out.str();
    }
    if (request == "listparticipants") ++listed_;
    const Poco::URI uri(target_);
    Poco::Net::HTTPClientSession session(uri.getHost(), uri.getPort());
    session.setTimeout(Poco::Timespan(5, 0));
    Poco::Net::HTTPRequest forward(Poco::Net::HTTPRequest::HTTP_POST, uri.getPathEtc(),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    forward.setContentType("application/json");
    forward.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(forward) << body;
    Poco::Net::HTTPResponse res;
    std::string answer;
    Poco::StreamCopier::copyToString(session.receiveResponse(res), answer);
    return answer;
  }

  std::string target_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  int port_ = 0;
  std::atomic<int> refuseWith_{0};
  std::atomic<int> refused_{0};
  std::atomic<int> creates_{0};
  std::atomic<int> listed_{0};
};

class ReconcileRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VcrmdProcess::Options o;
    o.settings = {"conference.prelaunch_seconds=3", "bridge.probe_seconds=1",
                  "conference.reconcile_seconds=1"};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->client());
    ASSERT_EQ(admin_->loginBearer("admin", app_->adminPassword()).status, 200);
    auto registered = vcrm::test::registerJanusBridge(*admin_, "j1", 20);
    janus_ = std::move(registered.janus);
    bridge_ = registered.id;
    proxy_ = std::make_unique<FakeRefusingAdminProxy>(janus_->adminUrl());
    auto p = admin_->request("PATCH", "/api/v1/bridges/" + std::to_string(bridge_),
                             R"({"admin_url":")" + proxy_->url() + R"("})");
    ASSERT_EQ(p.status, 200) << p.body;
    ASSERT_TRUE(eventually([&] { return bridge()->getValue<std::string>("health") == "up"; },
                           std::chrono::seconds(10)));
  }

  Poco::JSON::Object::Ptr bridge() {
    return admin_->get("/api/v1/bridges/" + std::to_string(bridge_)).json();
  }
  Poco::JSON::Object::Ptr conference(std::int64_t id) {
    return admin_->get("/api/v1/conferences/" + std::to_string(id)).json();
  }
  // The leg ids of the participants the conference shows now.
  std::vector<std::int64_t> legs(std::int64_t id) {
    std::vector<std::int64_t> out;
    auto arr = conference(id)->getArray("participants");
    for (std::size_t i = 0; i < arr->size(); ++i) {
      out.push_back(arr->getObject(static_cast<unsigned>(i))->getValue<std::int64_t>("leg_id"));
    }
    return out;
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::unique_ptr<vcrm::test::JanusProcess> janus_;
  std::unique_ptr<FakeRefusingAdminProxy> proxy_;
  std::int64_t bridge_ = 0;
};

TEST_F(ReconcileRefusalTest, APluginErrorOtherThanNoSuchRoomLeavesTheParticipantsAndIsRetried) {
  auto r = admin_->postJson(
      "/api/v1/conferences",
      R"({"name":"Board","start_now":true,"duration_minutes":30,"pin":"2468","ports":5})");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto id = r.json()->getValue<std::int64_t>("id");
  const auto room = r.json()->getValue<std::int64_t>("room");
  ASSERT_TRUE(eventually([&] { return conference(id)->getValue<std::string>("state") == "active"; },
                         std::chrono::seconds(10)));
  JanusParticipant alice(janus_->httpUrl(), room, "Alice", std::string("2468"));
  ASSERT_TRUE(eventually([&] { return legs(id).size() == 1; }, std::chrono::seconds(10)));
  const auto leg = legs(id).front();
  const int createsBefore = proxy_->creates();

  // Janus refuses listparticipants for another reason than a missing room (433: unauthorized,
  // as after the room's secret was changed on the bridge): nothing is known about who is in
  // the room, so Alice stays in, on the same leg, and the room is not made again.
  proxy_->refuseWith(433);
  ASSERT_TRUE(eventually([&] { return proxy_->refused() >= 3; }, std::chrono::seconds(15)))
      << "vcrmd stopped asking the bridge";
  EXPECT_EQ(legs(id), std::vector<std::int64_t>{leg});
  EXPECT_EQ(conference(id)->getValue<std::string>("state"), "active");
  EXPECT_EQ(proxy_->creates(), createsBefore)
      << "the room was re-created though it never went away";

  // Answers again: the next pass finds Alice where she was, still on her first leg.
  proxy_->refuseWith(0);
  const int listedSoFar = proxy_->listed();
  ASSERT_TRUE(
      eventually([&] { return proxy_->listed() >= listedSoFar + 2; }, std::chrono::seconds(10)));
  EXPECT_EQ(legs(id), std::vector<std::int64_t>{leg});
  EXPECT_EQ(conference(id)->getArray("participants")->getObject(0)->getValue<std::int64_t>("id"),
            alice.id());

  // "No such room" (426) is the one answer that means the room vanished: vcrmd makes it again.
  proxy_->refuseWith(426);
  EXPECT_TRUE(
      eventually([&] { return proxy_->creates() > createsBefore; }, std::chrono::seconds(10)))
      << "vcrmd did not re-create a room the bridge said was gone";
  proxy_->refuseWith(0);
}

}  // namespace
