// The HTTP API of a real vcrmd on its embedded PostgreSQL: public endpoints, sign-in,
// sessions, CSRF, users, audit, error shapes and limits.
#include <Poco/JSON/Array.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <gtest/gtest.h>

#include <vector>

#include "eventually.h"
#include "vcrm/common/version.h"
#include "vcrmd_process.h"

using vcrm::test::eventually;
using vcrm::test::HttpsClient;
using vcrm::test::VcrmdProcess;

namespace {

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    app_ = new VcrmdProcess();
    app_->start();
  }
  static void TearDownTestSuite() {
    delete app_;
    app_ = nullptr;
  }
  static HttpsClient admin() {
    auto c = app_->client();
    auto r = c.loginBearer("admin", app_->adminPassword());
    EXPECT_EQ(r.status, 200) << r.body;
    return c;
  }
  static void createUser(const std::string& name, const std::string& role,
                         const std::string& password = "correct horse battery") {
    auto c = admin();
    auto r = app_->createReadyUser(c, name, {role}, password);
    ASSERT_EQ(r.status, 201) << r.body;
  }
  static VcrmdProcess* app_;
};
VcrmdProcess* ApiTest::app_ = nullptr;

TEST_F(ApiTest, VersionIsPublicAndNamesProductVersionAndSchema) {
  auto r = app_->client().get("/api/v1/version");
  ASSERT_EQ(r.status, 200);
  auto o = r.json();
  EXPECT_EQ(o->getValue<std::string>("product"), "vcrm");
  EXPECT_EQ(o->getValue<std::string>("version"), vcrm::productVersion());
  int files = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(vcrm::test::sourceDir() / "migrations")) {
    files += e.path().extension() == ".sql";
  }
  EXPECT_EQ(o->getValue<int>("schema"), files);
}

TEST_F(ApiTest, HealthIsPublicAndOkWhileDatabaseAnswers) {
  auto r = app_->client().get("/healthz");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()->getValue<std::string>("database"), "ok");
}

TEST_F(ApiTest, ResponsesCarrySecurityHeaders) {
  auto r = app_->client().get("/api/v1/version");
  EXPECT_NE(r.header("strict-transport-security").find("max-age="), std::string::npos);
  EXPECT_NE(r.header("content-security-policy").find("default-src 'self'"), std::string::npos);
  EXPECT_EQ(r.header("x-content-type-options"), "nosniff");
  EXPECT_EQ(r.header("x-frame-options"), "DENY");
}

TEST_F(ApiTest, PlainHttpOnlyRedirectsToHttps) {
  Poco::Net::HTTPClientSession s("127.0.0.1", static_cast<Poco::UInt16>(app_->httpPort()));
  Poco::Net::HTTPRequest req("GET", "/api/v1/version?x=1", Poco::Net::HTTPMessage::HTTP_1_1);
  req.setHost("127.0.0.1", static_cast<Poco::UInt16>(app_->httpPort()));
  s.sendRequest(req);
  Poco::Net::HTTPResponse resp;
  s.receiveResponse(resp);
  EXPECT_EQ(resp.getStatus(), 301);
  EXPECT_EQ(resp.get("Location"),
            "https://127.0.0.1:" + std::to_string(app_->httpsPort()) + "/api/v1/version?x=1");
}

TEST_F(ApiTest, LoginSetsHardenedCookieAndReturnsTokenAndCsrf) {
  auto c = app_->client();
  auto r = c.loginCookie("admin", app_->adminPassword());
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string cookie = r.header("set-cookie");
  EXPECT_NE(cookie.find("vcrm_session="), std::string::npos);
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("Secure"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  auto o = r.json();
  EXPECT_FALSE(o->getValue<std::string>("token").empty());
  EXPECT_FALSE(o->getValue<std::string>("csrf_token").empty());
  EXPECT_EQ(o->getObject("user")->getValue<std::string>("username"), "admin");
  // The cookie alone authenticates reads.
  auto s = c.get("/api/v1/auth/session");
  EXPECT_EQ(s.status, 200) << s.body;
}

TEST_F(ApiTest, WrongPasswordAndUnknownUserGetTheSameAnswer) {
  auto c = app_->client();
  auto wrong = c.loginBearer("admin", "not the password");
  auto unknown = c.loginBearer("nosuchuser", "whatever123");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(unknown.status, 401);
  EXPECT_EQ(wrong.errorCode(), "bad_credentials");
  EXPECT_EQ(wrong.json()->getObject("error")->getValue<std::string>("message"),
            unknown.json()->getObject("error")->getValue<std::string>("message"));
}

TEST_F(ApiTest, RepeatedFailedLoginsAreSlowedPerUser) {
  createUser("slowpoke", "noc");
  auto c = app_->client();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.loginBearer("slowpoke", "wrong-password").status, 401);
  // Now even the right password must wait: the check happens before the password is tried.
  auto r = c.loginBearer("slowpoke", "correct horse battery");
  ASSERT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.errorCode(), "rate_limited");
  const int wait = std::stoi(r.header("retry-after"));
  EXPECT_GE(wait, 1);
  // Other users are not affected.
  EXPECT_EQ(c.loginBearer("admin", app_->adminPassword()).status, 200);
  // Once the delay is over the right password works again; until then every try is refused
  // before the password is checked (a refused try is no failure, so trying does not prolong it).
  std::vector<int> answers;
  EXPECT_TRUE(eventually(
      [&] {
        answers.push_back(c.loginBearer("slowpoke", "correct horse battery").status);
        return answers.back() == 200;
      },
      std::chrono::seconds(wait + 5), std::chrono::milliseconds(100)))
      << "still refused " << wait + 5 << " s after a Retry-After of " << wait;
  answers.pop_back();
  for (int a : answers) EXPECT_EQ(a, 429) << "while slowed, only 429";
}

TEST_F(ApiTest, MalformedLoginBodiesAreRefusedClearly) {
  auto c = app_->client();
  struct Case {
    std::string body;
    std::string contentType;
    int status;
  } cases[] = {
      {"not json", "application/json", 400},
      {"[1,2]", "application/json", 400},
      {R"({"username":"admin"})", "application/json", 400},
      {R"({"username":"admin","password":5})", "application/json", 400},
      {R"({"username":"admin","password":"x","extra":1})", "application/json", 400},
      {R"({"username":"admin","password":"x")", "application/json", 400},
      {std::string(100000, '['), "application/json", 400},
      {R"({"username":"admin","password":"x"})", "text/plain", 415},
      {"username=admin&password=x", "application/x-www-form-urlencoded", 415},
  };
  for (const auto& k : cases) {
    auto r = c.request("POST", "/api/v1/auth/login", k.body, {{"Content-Type", k.contentType}});
    EXPECT_EQ(r.status, k.status) << k.body.substr(0, 60) << " -> " << r.body;
    EXPECT_FALSE(r.errorCode().empty()) << r.body;
    EXPECT_FALSE(r.json()->getObject("error")->getValue<std::string>("message").empty());
  }
}

TEST_F(ApiTest, OversizedBodyIs413) {
  auto c = admin();
  const std::string big = R"({"username":")" + std::string(2 << 20, 'a') + R"("})";
  auto r = c.postJson("/api/v1/users", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.errorCode(), "too_large");
  // Refused before it reached the API, it is still in the audit log.
  auto audit = c.get("/api/v1/audit?action=refused&limit=5");
  ASSERT_EQ(audit.status, 200) << audit.body;
  auto entries = audit.json()->getArray("entries");
  ASSERT_EQ(entries->size(), 1u) << audit.body;
  EXPECT_EQ(entries->getObject(0)->getValue<int>("status"), 413);
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("path"), "/api/v1/users");
  EXPECT_EQ(entries->getObject(0)->getValue<std::string>("outcome"), "failed");
}

TEST_F(ApiTest, ProtectedEndpointsNeedAValidSession) {
  auto c = app_->client();
  auto none = c.get("/api/v1/users");
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.errorCode(), "unauthenticated");
  c.setBearer("forged-token");
  auto forged = c.get("/api/v1/users");
  EXPECT_EQ(forged.status, 401);
  EXPECT_EQ(forged.errorCode(), "session_expired");
}

TEST_F(ApiTest, CookieSessionsNeedTheCsrfTokenToChangeState) {
  auto c = app_->client();
  ASSERT_EQ(c.loginCookie("admin", app_->adminPassword()).status, 200);
  const std::string body =
      R"({"username":"csrfvictim","password":"long enough pw","roles":["noc"]})";
  c.setSendCsrf(false);
  auto refused = c.postJson("/api/v1/users", body);
  EXPECT_EQ(refused.status, 403);
  EXPECT_EQ(refused.errorCode(), "csrf_failed");
  auto wrong = c.request("POST", "/api/v1/users", body, {{"X-CSRF-Token", "guess"}});
  EXPECT_EQ(wrong.status, 403);
  // Nothing was created by the refused requests.
  EXPECT_EQ(admin().get("/api/v1/users/csrfvictim").status, 404);
  c.setSendCsrf(true);
  EXPECT_EQ(c.postJson("/api/v1/users", body).status, 201);
}

TEST_F(ApiTest, BearerTokensNeedNoCsrfToken) {
  auto c = admin();
  auto r =
      c.postJson("/api/v1/users",
                 R"({"username":"bearermade","password":"long enough pw","roles":["support"]})");
  EXPECT_EQ(r.status, 201) << r.body;
}

TEST_F(ApiTest, LogoutEndsTheSession) {
  auto c = admin();
  EXPECT_EQ(c.get("/api/v1/auth/session").status, 200);
  EXPECT_EQ(c.postJson("/api/v1/auth/logout", "").status, 204);
  EXPECT_EQ(c.get("/api/v1/auth/session").status, 401);
}

TEST_F(ApiTest, UsersCanBeCreatedReadChangedAndDeleted) {
  auto c = admin();
  auto created = c.postJson(
      "/api/v1/users", R"({"username":"opal","password":"first password","roles":["operator"]})");
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(created.header("location"), "/api/v1/users/opal");
  EXPECT_EQ(c.postJson("/api/v1/users",
                       R"({"username":"opal","password":"first password","roles":["operator"]})")
                .errorCode(),
            "user_exists");
  EXPECT_EQ(c.postJson("/api/v1/users",
                       R"({"username":"Bad Name","password":"first password","roles":["noc"]})")
                .status,
            400);
  EXPECT_EQ(
      c.postJson("/api/v1/users", R"({"username":"weakling","password":"short","roles":["noc"]})")
          .status,
      422);
  EXPECT_EQ(c.postJson("/api/v1/users",
                       R"({"username":"noroles","password":"first password","roles":["root"]})")
                .status,
            400);

  auto opal = app_->client();
  ASSERT_EQ(opal.loginBearer("opal", "first password").status, 200);
  ASSERT_EQ(opal.changePassword("first password", "opal's own password").status, 204);
  EXPECT_EQ(opal.get("/api/v1/users").status, 403);  // operators do not manage users
  EXPECT_EQ(opal.get("/api/v1/users").errorCode(), "forbidden");

  auto patched = c.request("PATCH", "/api/v1/users/opal", R"({"roles":["operator","admin"]})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(patched.json()->getArray("roles")->size(), 2u);
  // A change of rights ends the user's sessions: the old token no longer works.
  EXPECT_EQ(opal.get("/api/v1/auth/session").status, 401);
  ASSERT_EQ(opal.loginBearer("opal", "opal's own password").status, 200);
  EXPECT_EQ(opal.get("/api/v1/users").status, 200);

  EXPECT_EQ(c.request("PATCH", "/api/v1/users/opal", R"({"disabled":true})").status, 200);
  EXPECT_EQ(opal.loginBearer("opal", "opal's own password").status, 401);

  EXPECT_EQ(c.request("DELETE", "/api/v1/users/opal").status, 204);
  EXPECT_EQ(c.get("/api/v1/users/opal").status, 404);
  EXPECT_EQ(c.request("DELETE", "/api/v1/users/opal").status, 404);
}

TEST_F(ApiTest, TheLastAdminCannotBeRemovedOrDemoted) {
  auto c = admin();
  EXPECT_EQ(c.request("DELETE", "/api/v1/users/admin").errorCode(), "self_delete");
  auto demote = c.request("PATCH", "/api/v1/users/admin", R"({"roles":["noc"]})");
  EXPECT_EQ(demote.status, 409);
  EXPECT_EQ(demote.errorCode(), "last_admin");
  EXPECT_EQ(c.request("PATCH", "/api/v1/users/admin", R"({"disabled":true})").status, 409);
  // Still an admin.
  EXPECT_EQ(c.get("/api/v1/users").status, 200);
}

TEST_F(ApiTest, UsersChangeTheirOwnPassword) {
  createUser("pwchanger", "support", "original password");
  auto c = app_->client();
  ASSERT_EQ(c.loginBearer("pwchanger", "original password").status, 200);
  EXPECT_EQ(c.postJson("/api/v1/auth/password",
                       R"({"current_password":"wrong one","new_password":"brand new password"})")
                .errorCode(),
            "wrong_password");
  EXPECT_EQ(c.postJson("/api/v1/auth/password",
                       R"({"current_password":"original password","new_password":"short"})")
                .errorCode(),
            "weak_password");
  EXPECT_EQ(
      c.postJson("/api/v1/auth/password",
                 R"({"current_password":"original password","new_password":"brand new password"})")
          .status,
      204);
  auto other = app_->client();
  EXPECT_EQ(other.loginBearer("pwchanger", "original password").status, 401);
  auto ok = other.loginBearer("pwchanger", "brand new password");
  ASSERT_EQ(ok.status, 200);
  EXPECT_FALSE(ok.json()->getObject("user")->getValue<bool>("must_change_password"));
}

TEST_F(ApiTest, PasswordsAreNotTruncated) {
  const std::string longPw(100, 'x');
  createUser("longpw", "noc", longPw + "yz");
  auto c = app_->client();
  EXPECT_EQ(c.loginBearer("longpw", longPw + "yq").status, 401);
  EXPECT_EQ(c.loginBearer("longpw", longPw + "yz").status, 200);
}

TEST_F(ApiTest, StateChangesAreAuditedWithoutSecrets) {
  auto c = admin();
  ASSERT_EQ(c.postJson("/api/v1/users",
                       R"({"username":"audited","password":"secret-in-body-123","roles":["noc"]})")
                .status,
            201);
  app_->client().loginBearer("audited", "wrong-secret-456");
  auto r = c.get("/api/v1/audit?limit=50");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body.find("secret-in-body-123"), std::string::npos);
  EXPECT_EQ(r.body.find("wrong-secret-456"), std::string::npos);
  auto entries = r.json()->getArray("entries");
  bool sawCreate = false;
  bool sawFailedLogin = false;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    auto e = entries->getObject(static_cast<unsigned>(i));
    const auto action = e->getValue<std::string>("action");
    if (action == "user.create" && !e->isNull("target") &&
        e->getValue<std::string>("target") == "audited") {
      sawCreate = true;
      EXPECT_EQ(e->getValue<std::string>("username"), "admin");
      EXPECT_EQ(e->getValue<int>("status"), 201);
      EXPECT_EQ(e->getValue<std::string>("outcome"), "ok");
      EXPECT_EQ(e->getValue<std::string>("remote_addr"), "127.0.0.1");
      EXPECT_EQ(e->getValue<std::string>("method"), "POST");
      EXPECT_FALSE(e->getValue<std::string>("at").empty());
    }
    if (action == "auth.login" && !e->isNull("username") &&
        e->getValue<std::string>("username") == "audited") {
      sawFailedLogin = true;
      EXPECT_EQ(e->getValue<int>("status"), 401);
      EXPECT_EQ(e->getValue<std::string>("outcome"), "denied");
    }
  }
  EXPECT_TRUE(sawCreate) << r.body;
  EXPECT_TRUE(sawFailedLogin) << r.body;
  // Filters and paging.
  auto filtered = c.get("/api/v1/audit?action=user.create&limit=1");
  ASSERT_EQ(filtered.status, 200);
  EXPECT_EQ(filtered.json()->getArray("entries")->size(), 1u);
  EXPECT_EQ(c.get("/api/v1/audit?limit=0").status, 400);
  EXPECT_EQ(c.get("/api/v1/audit?limit=abc").status, 400);
}

TEST_F(ApiTest, LogLevelChangesAtRunTime) {
  auto c = admin();
  auto r = c.request("PUT", "/api/v1/system/log-level", R"({"level":"debug"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(c.get("/api/v1/system/log-level").json()->getValue<std::string>("level"), "debug");
  c.get("/api/v1/version");
  // Debug lines now appear in vcrmd's output: one per request.
  EXPECT_TRUE(
      eventually([&] { return app_->output().find("DEBUG http REQUEST") != std::string::npos; },
                 std::chrono::seconds(5)))
      << app_->output();
  EXPECT_EQ(c.request("PUT", "/api/v1/system/log-level", R"({"level":"loud"})").status, 400);
  EXPECT_EQ(c.request("PUT", "/api/v1/system/log-level", R"({"level":"info"})").status, 200);
}

TEST_F(ApiTest, UnknownPathsAndMethodsGiveJsonErrors) {
  auto c = admin();
  auto nf = c.get("/api/v1/nope");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.errorCode(), "not_found");
  auto na = c.request("DELETE", "/api/v1/version");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.header("allow"), "GET");
}

TEST_F(ApiTest, WebUiIsServedAndPathsCannotEscapeIt) {
  auto c = app_->client();
  auto index = c.get("/");
  ASSERT_EQ(index.status, 200);
  EXPECT_NE(index.header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(index.body.find("vcrm"), std::string::npos);
  EXPECT_EQ(c.get("/../../etc/passwd").status, 404);
  EXPECT_EQ(c.get("/%2e%2e/%2e%2e/etc/passwd").status, 404);
  EXPECT_EQ(c.get("/nothere.js").status, 404);
}

// Every route against every role: tests/daemon/route_access_test.cc walks the server's own table.

}  // namespace
