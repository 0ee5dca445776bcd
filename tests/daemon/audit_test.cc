// The audit log against a real vcrmd and its real PostgreSQL: refusals of requests without a
// session cannot flood it (collapsed per address, action and minute, with a count), a change
// whose audit row cannot be written is not made, and old rows are pruned by age and row cap.
#include <Poco/JSON/Array.h>
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

#include "api_times.h"
#include "eventually.h"
#include "licence_cases.h"
#include "vcrm/common/db.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrmd_process.h"

using namespace vcrm::test;
using namespace std::chrono_literals;

namespace {

class AuditTest : public ::testing::Test {
 protected:
  virtual std::vector<std::string> settings() { return {"bridge.probe_seconds=300"}; }
  void SetUp() override {
    VcrmdProcess::Options o;
    o.settings = settings();
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->adminClient());
    db_ = std::make_unique<vcrm::db::Connection>(app_->database());
  }

  std::int64_t scalar(vcrm::db::Sql sql, const std::vector<vcrm::db::Param>& params = {}) {
    return db_->exec(sql, params).int64(0, 0);
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::unique_ptr<vcrm::db::Connection> db_;
};

// `count` POSTs without a session to `path`, spread over `connections` keep-alive connections
// sending at once; returns how many were answered 401.
int unauthenticatedPosts(const VcrmdProcess& app, const std::string& path, int count,
                         int connections) {
  std::atomic<int> refused{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < connections; ++t) {
    senders.emplace_back([&, share = count / connections + (t < count % connections ? 1 : 0)] {
      Poco::Net::Context::Ptr ctx = new Poco::Net::Context(
          Poco::Net::Context::TLS_CLIENT_USE, "", "", (app.stateDir() / "tls/server.crt").string(),
          Poco::Net::Context::VERIFY_STRICT, 9, false);
      Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(app.httpsPort()),
                                            ctx);
      session.setKeepAlive(true);
      session.setTimeout(Poco::Timespan(30, 0));
      for (int i = 0; i < share; ++i) {
        try {
          Poco::Net::HTTPRequest req("POST", path, Poco::Net::HTTPMessage::HTTP_1_1);
          req.setKeepAlive(true);
          req.setContentType("application/json");
          req.setContentLength(2);
          session.sendRequest(req) << "{}";
          Poco::Net::HTTPResponse resp;
          std::string body;
          Poco::StreamCopier::copyToString(session.receiveResponse(resp), body);
          if (resp.getStatus() == 401) ++refused;
        } catch (const std::exception&) {
          session.reset();  // a dropped connection: the next request reconnects
        }
      }
    });
  }
  for (auto& s : senders) s.join();
  return refused;
}

TEST_F(AuditTest, TenThousandUnauthenticatedPostsLeaveAFewCountedRows) {
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(unauthenticatedPosts(*app_, "/api/v1/conferences", 10000, 8), 10000);
  const auto seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  RecordProperty("flood_seconds", std::to_string(seconds));
  // Another address is counted on its own.
  auto other = app_->client();
  other.setSourceAddress("127.0.0.2");
  for (int i = 0; i < 20; ++i) ASSERT_EQ(other.postJson("/api/v1/conferences", "{}").status, 401);

  // One row per address, action and status and minute: the flood took seconds, so it spans at
  // most two minutes.
  const auto rows = scalar(
      "SELECT count(*) FROM audit_log WHERE action = 'conference.create' AND remote_addr = "
      "'127.0.0.1'");
  EXPECT_GE(rows, 1);
  EXPECT_LE(rows, 2) << "rows for 10,000 refusals from one address";
  EXPECT_EQ(
      scalar("SELECT coalesce(sum(count), 0) FROM audit_log WHERE action = 'conference.create' "
             "AND remote_addr = '127.0.0.1' AND status = 401 AND outcome = 'denied'"),
      10000);
  EXPECT_EQ(scalar("SELECT coalesce(sum(count), 0) FROM audit_log WHERE action = "
                   "'conference.create' AND remote_addr = '127.0.0.2'"),
            20);

  // The API shows the count and when the last of them came.
  auto listed = admin_->get("/api/v1/audit?action=conference.create&limit=10");
  ASSERT_EQ(listed.status, 200) << listed.body;
  auto entries = listed.json()->getArray("entries");
  std::map<std::string, std::int64_t> byAddress;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    auto e = entries->getObject(static_cast<unsigned>(i));
    byAddress[e->getValue<std::string>("remote_addr")] += e->getValue<std::int64_t>("count");
    EXPECT_FALSE(e->isNull("last_at")) << listed.body;
    EXPECT_TRUE(e->isNull("username")) << listed.body;
  }
  EXPECT_EQ(byAddress["127.0.0.1"], 10000) << listed.body;
  EXPECT_EQ(byAddress["127.0.0.2"], 20) << listed.body;

  // What a signed-in user does is always a row of its own, refused or not.
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(admin_->postJson("/api/v1/conferences", R"({"name":"x"})").status, 400);
  EXPECT_EQ(scalar("SELECT count(*) FROM audit_log WHERE action = 'conference.create' AND username "
                   "= 'admin' "
                   "AND status = 400 AND count = 1"),
            3);
}

TEST_F(AuditTest, FailedSignInsAreCollapsedKeepingTheNameOnlyWhileItIsTheSame) {
  auto anon = app_->client();
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(anon.loginBearer("mallory", "not the password").status, 401);
  auto one = db_->exec(
      "SELECT username, count FROM audit_log WHERE action = 'auth.login' AND status = 401");
  ASSERT_GE(one.rows(), 1);
  EXPECT_EQ(one.text(0, 0), "mallory");
  EXPECT_EQ(scalar("SELECT sum(count) FROM audit_log WHERE action = 'auth.login' AND status = 401"),
            3);
  // Guessing other names from the same address does not make rows per name.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(anon.loginBearer("user" + std::to_string(i), "not the password").status, 401);
  EXPECT_LE(scalar("SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND status = 401"),
            2);
  EXPECT_EQ(scalar("SELECT sum(count) FROM audit_log WHERE action = 'auth.login' AND status = 401"),
            8);
}

TEST_F(AuditTest, AChangeWhoseAuditRowCannotBeWrittenIsNotMade) {
  // Before the audit log breaks: a bridge, a booking, a user and a second admin session.
  auto bridge = admin_->postJson(
      "/api/v1/bridges",
      R"({"name":"b0","url":"http://127.0.0.1:9/janus",)"
      R"("admin_url":"http://127.0.0.1:9/admin","admin_secret":"x","capacity_ports":20})");
  ASSERT_EQ(bridge.status, 201) << bridge.body;
  const std::string bridgePath =
      "/api/v1/bridges/" + std::to_string(bridge.json()->getValue<std::int64_t>("id"));
  auto booked =
      admin_->postJson("/api/v1/conferences", R"({"name":"Kept","start":")" + isoIn(3600s) +
                                                  R"(","duration_minutes":30,"ports":2})");
  ASSERT_EQ(booked.status, 201) << booked.body;
  const std::string confPath =
      "/api/v1/conferences/" + std::to_string(booked.json()->getValue<std::int64_t>("id"));
  // A bridge with no bookings, which may be removed.
  auto spare = admin_->postJson(
      "/api/v1/bridges",
      R"({"name":"b2","url":"http://127.0.0.1:9/janus",)"
      R"("admin_url":"http://127.0.0.1:9/admin","admin_secret":"x","capacity_ports":5})");
  ASSERT_EQ(spare.status, 201) << spare.body;
  const std::string sparePath =
      "/api/v1/bridges/" + std::to_string(spare.json()->getValue<std::int64_t>("id"));
  const std::string levelBefore =
      admin_->get("/api/v1/system/log-level").json()->getValue<std::string>("level");
  const std::string levelWanted = levelBefore == "error" ? "warn" : "error";
  ASSERT_EQ(app_->createReadyUser(*admin_, "victim", {"noc"}, "victim's passphrase").status, 201);
  auto victim = app_->client();
  ASSERT_EQ(victim.loginBearer("victim", "victim's passphrase").status, 200);
  const auto rowsBefore = scalar("SELECT count(*) FROM audit_log");
  const auto sessionsBefore = scalar("SELECT count(*) FROM sessions");
  const std::string hashBefore =
      db_->exec("SELECT password_hash FROM users WHERE username = 'victim'").text(0, 0);

  // The audit log refuses every row, as a full or broken table would.
  db_->execScript(
      "CREATE FUNCTION test_refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ "
      "BEGIN RAISE EXCEPTION 'the test refuses audit rows'; END $$;"
      "CREATE TRIGGER test_refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION "
      "test_refuse_audit();");

  struct Attempt {
    const char* method;
    std::string path;
    std::string body;
    HttpsClient* as;
  };
  // A licence that would replace the test's unlimited one (sequence 1).
  const std::string serial = admin_->get("/api/v1/license").json()->getValue<std::string>("serial");
  Poco::JSON::Object licenceBody;
  licenceBody.set("file", vcrm::licensing::issueLicence(
                              sampleLicence(serial, std::time(nullptr), 50), testLicenceKey()));
  std::ostringstream licenceText;
  licenceBody.stringify(licenceText);
  const std::vector<Attempt> attempts = {
      {"POST", "/api/v1/users",
       R"({"username":"newbie","password":"a long passphrase","roles":["noc"]})", admin_.get()},
      {"PATCH", "/api/v1/users/victim", R"({"disabled":true})", admin_.get()},
      {"DELETE", "/api/v1/users/victim", "", admin_.get()},
      {"POST", "/api/v1/auth/password",
       R"({"current_password":"victim's passphrase","new_password":"victim's new passphrase"})",
       &victim},
      {"POST", "/api/v1/auth/logout", "", &victim},
      {"POST", "/api/v1/auth/login", R"({"username":"victim","password":"victim's passphrase"})",
       &victim},
      {"POST", "/api/v1/bridges",
       R"({"name":"b1","url":"http://127.0.0.1:9/janus","admin_url":"http://127.0.0.1:9/admin","admin_secret":"x","capacity_ports":5})",
       admin_.get()},
      {"PATCH", bridgePath, R"({"capacity_ports":30})", admin_.get()},
      {"DELETE", sparePath, "", admin_.get()},
      {"POST", "/api/v1/conferences",
       R"({"name":"Lost","start":")" + isoIn(7200s) + R"(","duration_minutes":30,"ports":2})",
       admin_.get()},
      {"PATCH", confPath, R"({"name":"Renamed"})", admin_.get()},
      {"POST", confPath + "/extend", R"({"minutes":15})", admin_.get()},
      {"DELETE", confPath, "", admin_.get()},
      {"PUT", "/api/v1/system/log-level", R"({"level":")" + levelWanted + R"("})", admin_.get()},
      {"POST", "/api/v1/license", licenceText.str(), admin_.get()},
  };
  for (const auto& a : attempts) {
    auto r = a.as->request(a.method, a.path, a.body);
    EXPECT_EQ(r.status, 500) << a.method << " " << a.path << ": " << r.body;
    EXPECT_EQ(r.errorCode(), "audit_failed") << a.method << " " << a.path << ": " << r.body;
  }

  // Nothing changed.
  EXPECT_EQ(admin_->get("/api/v1/users/newbie").status, 404);
  auto v = admin_->get("/api/v1/users/victim");
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_FALSE(v.json()->getValue<bool>("disabled"));
  EXPECT_EQ(db_->exec("SELECT password_hash FROM users WHERE username = 'victim'").text(0, 0),
            hashBefore);
  EXPECT_EQ(victim.get("/api/v1/auth/session").status, 200) << "the refused sign-out ended nothing";
  EXPECT_EQ(scalar("SELECT count(*) FROM sessions"), sessionsBefore)
      << "the refused sign-in made no session";
  auto bridges = admin_->get("/api/v1/bridges").json()->getArray("bridges");
  ASSERT_EQ(bridges->size(), 2u) << "b0 and b2, and no b1";
  EXPECT_EQ(admin_->get(bridgePath).json()->getValue<int>("capacity_ports"), 20);
  auto conferences = admin_->get("/api/v1/conferences").json()->getArray("conferences");
  ASSERT_EQ(conferences->size(), 1u);
  auto kept = admin_->get(confPath).json();
  EXPECT_EQ(kept->getValue<std::string>("name"), "Kept");
  EXPECT_EQ(kept->getValue<std::string>("state"), "scheduled");
  EXPECT_EQ(kept->getValue<std::string>("end"), booked.json()->getValue<std::string>("end"));
  EXPECT_EQ(admin_->get("/api/v1/system/log-level").json()->getValue<std::string>("level"),
            levelBefore);
  EXPECT_EQ(admin_->get("/api/v1/license")
                .json()
                ->getObject("active")
                ->getValue<std::string>("licence_id"),
            "L-TEST-UNLIMITED")
      << "the refused apply left the licence as it was";
  EXPECT_EQ(scalar("SELECT count(*) FROM audit_log"), rowsBefore);
  EXPECT_NE(app_->output().find("AUDIT_WRITE_FAILED"), std::string::npos) << "the operator is told";

  // Once the audit log takes rows again, the same change goes through, with its row.
  db_->execScript("DROP TRIGGER test_refuse_audit ON audit_log;");
  EXPECT_EQ(admin_->request("PATCH", confPath, R"({"name":"Renamed"})").status, 200);
  EXPECT_EQ(scalar("SELECT count(*) FROM audit_log WHERE action = 'conference.update' AND status = "
                   "200 AND username = 'admin'"),
            1);
}

class AuditRetentionTest : public AuditTest {
 protected:
  std::vector<std::string> settings() override {
    return {"audit.retention_days=30", "audit.max_rows=100", "audit.prune_seconds=1"};
  }
};

TEST_F(AuditRetentionTest, OldRowsAndRowsBeyondTheCapArePrunedInBatches) {
  // In one transaction, so a pass of the pruner (every second) sees all of it or nothing.
  db_->execScript(
      "BEGIN;"
      // 12,000 recent rows (more than two batches beyond the cap), then 50 rows older than the
      // retention with the highest ids (the cap alone would keep them).
      "INSERT INTO audit_log (remote_addr, method, path, action, status, outcome, at) "
      "  SELECT '192.0.2.1', 'POST', '/api/v1/x', 'test.recent', 200, 'ok', now() - interval '1 "
      "hour' "
      "  FROM generate_series(1, 12000);"
      "INSERT INTO audit_log (remote_addr, method, path, action, status, outcome, at) "
      "  SELECT '192.0.2.1', 'POST', '/api/v1/x', 'test.old', 200, 'ok', now() - interval '40 "
      "days' "
      "  FROM generate_series(1, 50);"
      "COMMIT;");
  const auto newestRecent = scalar("SELECT max(id) FROM audit_log WHERE action = 'test.recent'");
  EXPECT_TRUE(eventually(
      [&] {
        return scalar("SELECT count(*) FROM audit_log WHERE action = 'test.old'") == 0 &&
               scalar("SELECT count(*) FROM audit_log") == 100;
      },
      15s, 200ms))
      << scalar("SELECT count(*) FROM audit_log") << " rows, "
      << scalar("SELECT count(*) FROM audit_log WHERE action = 'test.old'") << " of them too old";
  // The cap keeps the newest rows.
  EXPECT_EQ(scalar("SELECT count(*) FROM audit_log WHERE id = $1", {newestRecent}), 1);
  EXPECT_EQ(scalar("SELECT count(*) FROM audit_log WHERE id < (SELECT min(id) FROM audit_log WHERE "
                   "action = 'test.recent')"),
            0);
  EXPECT_NE(app_->output().find("AUDIT_PRUNED"), std::string::npos);
}

}  // namespace
