// Who may call what, for every route the daemon serves. The routes come from the server's own
// table (GET /api/v1/routes, built from the modules' routes()), so a route a module adds is
// checked without anyone copying it here: signed out, as every role, and with a cookie session
// and a wrong CSRF token. What each route's access should be is written here independently; a
// route this file does not know fails the test until its expected access is added.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "route_table.h"
#include "vcrmd_process.h"

using vcrm::test::changesState;
using vcrm::test::HttpResult;
using vcrm::test::HttpsClient;
using vcrm::test::pathFor;
using vcrm::test::ServedRoute;
using vcrm::test::servedRoutes;
using vcrm::test::VcrmdProcess;

namespace {

const std::string kPassword = "correct horse battery";
const std::vector<std::string> kRoles = {"admin", "operator", "support", "noc"};

// "*": public; "": any signed-in user; otherwise the roles that may call it.
const std::map<std::string, std::vector<std::string>>& expectedAccess() {
  static const std::map<std::string, std::vector<std::string>> table = {
      {"GET /healthz", {"*"}},
      {"GET /api/v1/version", {"*"}},
      {"POST /api/v1/auth/login", {"*"}},
      {"GET /api/v1/auth/session", {""}},
      {"POST /api/v1/auth/logout", {""}},
      {"POST /api/v1/auth/password", {""}},
      {"GET /api/v1/users", {"admin"}},
      {"POST /api/v1/users", {"admin"}},
      {"GET /api/v1/users/{name}", {"admin"}},
      {"PATCH /api/v1/users/{name}", {"admin"}},
      {"DELETE /api/v1/users/{name}", {"admin"}},
      {"GET /api/v1/audit", {"admin"}},
      {"GET /api/v1/routes", {"admin"}},
      {"GET /api/v1/system/log-level", {"admin"}},
      {"PUT /api/v1/system/log-level", {"admin"}},
      {"GET /api/v1/events", {""}},
      {"GET /api/v1/bridges", {"admin", "noc"}},
      {"POST /api/v1/bridges", {"admin"}},
      {"GET /api/v1/bridges/{id}", {"admin", "noc"}},
      {"PATCH /api/v1/bridges/{id}", {"admin"}},
      {"DELETE /api/v1/bridges/{id}", {"admin"}},
      {"GET /api/v1/bridges/{id}/janus-config", {"admin"}},
      {"POST /api/v1/bridges/{id}/events", {"*"}},
      {"GET /api/v1/dashboard", {"admin", "noc"}},
      {"GET /api/v1/conferences", {"admin"}},
      {"POST /api/v1/conferences", {"admin"}},
      {"GET /api/v1/conferences/{id}.ics", {"admin"}},
      {"GET /api/v1/conferences/{id}", {"admin"}},
      {"PATCH /api/v1/conferences/{id}", {"admin"}},
      {"DELETE /api/v1/conferences/{id}", {"admin"}},
      {"POST /api/v1/conferences/{id}/terminate", {"admin"}},
      {"POST /api/v1/conferences/{id}/extend", {"admin"}},
      {"POST /api/v1/conferences/{id}/participants/{pid}/mute", {"admin"}},
      {"POST /api/v1/conferences/{id}/participants/{pid}/drop", {"admin"}},
      {"GET /api/v1/cdrs/conferences", {"admin"}},
      {"GET /api/v1/cdrs/participants", {"admin"}},
      {"GET /api/v1/license", {"admin", "noc"}},
      {"POST /api/v1/license/preview", {"admin"}},
      {"POST /api/v1/license", {"admin"}},
      {"GET /api/v1/backups", {"admin", "support"}},
      {"POST /api/v1/backups", {"admin", "support"}},
      {"GET /api/v1/backups/{id}", {"admin", "support"}},
      {"GET /api/v1/backups/{id}/download", {"admin", "support"}},
      {"DELETE /api/v1/backups/{id}", {"admin", "support"}},
      {"POST /api/v1/backups/{id}/verify", {"admin", "support"}},
      {"GET /api/v1/backups/schedule", {"admin", "support"}},
      {"PUT /api/v1/backups/schedule", {"admin", "support"}},
      {"POST /api/v1/backups/schedule/run", {"admin", "support"}},
      {"POST /api/v1/restores/uploads", {"admin", "support"}},
      {"OPTIONS /api/v1/restores/uploads", {"admin", "support"}},
      {"HEAD /api/v1/restores/uploads/{upload_id}", {"admin", "support"}},
      {"PATCH /api/v1/restores/uploads/{upload_id}", {"admin", "support"}},
      {"DELETE /api/v1/restores/uploads/{upload_id}", {"admin", "support"}},
      {"GET /api/v1/restores/uploads/{upload_id}", {"admin", "support"}},
      {"POST /api/v1/restores", {"admin", "support"}},
      {"POST /api/v1/restores/{id}/confirm", {"admin", "support"}},
      {"GET /api/v1/restores/current", {"admin", "support"}},
      {"GET /api/v1/restores/previous", {"admin", "support"}},
      {"POST /api/v1/restores/previous/revert", {"admin", "support"}},
      {"DELETE /api/v1/restores/previous", {"admin", "support"}},
      {"POST /api/v1/upgrade/uploads", {"admin", "operator"}},
      {"OPTIONS /api/v1/upgrade/uploads", {"admin", "operator"}},
      {"HEAD /api/v1/upgrade/uploads/{upload_id}", {"admin", "operator"}},
      {"PATCH /api/v1/upgrade/uploads/{upload_id}", {"admin", "operator"}},
      {"DELETE /api/v1/upgrade/uploads/{upload_id}", {"admin", "operator"}},
      {"GET /api/v1/upgrade/uploads/{upload_id}", {"admin", "operator"}},
      {"POST /api/v1/upgrade", {"admin", "operator"}},
      {"GET /api/v1/upgrade", {"admin", "operator"}},
      {"DELETE /api/v1/upgrade/pending", {"admin", "operator"}},
      {"POST /api/v1/upgrade/confirm", {"admin", "operator"}},
      {"POST /api/v1/upgrade/go-back", {"admin", "operator"}},
  };
  return table;
}

class RouteAccessTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    app_ = new VcrmdProcess();
    app_->start();
    auto admin = app_->client();
    ASSERT_EQ(admin.loginBearer("admin", app_->adminPassword()).status, 200);
    for (const auto& role : kRoles) {
      auto r = app_->createReadyUser(admin, "as-" + role, {role}, kPassword);
      ASSERT_EQ(r.status, 201) << r.body;
    }
  }
  static void TearDownTestSuite() {
    delete app_;
    app_ = nullptr;
  }

  static std::vector<ServedRoute> served() {
    auto c = app_->client();
    EXPECT_EQ(c.loginBearer("as-admin", kPassword).status, 200);
    return servedRoutes(c);
  }

  // The event stream never ends: ask for its headers only.
  static HttpResult call(HttpsClient& c, const ServedRoute& route,
                         const std::map<std::string, std::string>& headers = {}) {
    const bool stream = route.pattern == "/api/v1/events";
    const std::string method = stream ? "HEAD" : route.method;
    std::map<std::string, std::string> h = headers;
    if (changesState(route.method)) h.emplace("Content-Type", "application/json");
    return c.request(method, pathFor(route.pattern), changesState(route.method) ? "{}" : "", h);
  }

  static VcrmdProcess* app_;
};
VcrmdProcess* RouteAccessTest::app_ = nullptr;

TEST_F(RouteAccessTest, EveryServedRouteHasTheAccessThisTestExpects) {
  const auto routes = served();
  ASSERT_GE(routes.size(), expectedAccess().size()) << "the server lists fewer routes than it should";
  std::set<std::string> seen;
  for (const auto& r : routes) {
    seen.insert(r.key());
    auto it = expectedAccess().find(r.key());
    ASSERT_NE(it, expectedAccess().end())
        << r.key() << " is served but this test does not say who may call it: add it to expectedAccess()";
    const auto& want = it->second;
    if (want == std::vector<std::string>{"*"}) {
      EXPECT_EQ(r.access, "public") << r.key();
    } else if (want == std::vector<std::string>{""}) {
      EXPECT_EQ(r.access, "any_user") << r.key();
    } else {
      EXPECT_EQ(r.access, "roles") << r.key();
      auto got = r.roles;
      auto expected = want;
      std::sort(got.begin(), got.end());
      std::sort(expected.begin(), expected.end());
      EXPECT_EQ(got, expected) << r.key();
    }
  }
  for (const auto& [key, roles] : expectedAccess()) EXPECT_TRUE(seen.count(key)) << key << " is no longer served";
}

TEST_F(RouteAccessTest, SignedOutCallersGetOnlyThePublicRoutes) {
  for (const auto& route : served()) {
    auto anon = app_->client();
    auto r = call(anon, route);
    if (route.access == "public") {
      // A public route may refuse a request on its own terms (a bridge's own credentials, with
      // a challenge), but never for want of a session.
      if (r.status == 401) {
        EXPECT_FALSE(r.header("www-authenticate").empty()) << route.key() << ": " << r.body;
      }
      EXPECT_NE(r.errorCode(), "session_expired") << route.key();
      EXPECT_NE(r.status, 403) << route.key() << ": " << r.body;
      EXPECT_LT(r.status, 500) << route.key() << ": " << r.body;
    } else {
      EXPECT_EQ(r.status, 401) << route.key() << " answered a caller without a session: " << r.body;
      if (route.method != "HEAD" && route.pattern != "/api/v1/events") {
        EXPECT_EQ(r.errorCode(), "unauthenticated") << route.key();
      }
    }
  }
}

TEST_F(RouteAccessTest, EveryRoleGetsExactlyTheRoutesItsRoleAllows) {
  std::map<std::string, HttpsClient> clients;
  for (const auto& role : kRoles) {
    auto c = app_->client();
    ASSERT_EQ(c.loginBearer("as-" + role, kPassword).status, 200) << role;
    clients.emplace(role, c);
  }
  for (const auto& route : served()) {
    for (const auto& role : kRoles) {
      // Signing out ends the session the other routes use: it gets a session of its own.
      HttpsClient c = clients.at(role);
      if (route.pattern == "/api/v1/auth/logout") {
        c = app_->client();
        ASSERT_EQ(c.loginBearer("as-" + role, kPassword).status, 200);
      }
      auto r = call(c, route);
      const bool allowed = route.access != "roles" ||
                           std::find(route.roles.begin(), route.roles.end(), role) != route.roles.end();
      const std::string what = role + " " + route.key() + ": " + r.body;
      // Nothing an API route answers may be cached: sessions, PINs in calendars, CDR exports.
      EXPECT_EQ(r.header("cache-control"), "no-store") << what;
      if (allowed) {
        EXPECT_NE(r.status, 403) << what;
        EXPECT_NE(r.errorCode(), "session_expired") << what;
        EXPECT_LT(r.status, 500) << what;
        if (route.access != "public") {
          EXPECT_NE(r.status, 401) << what;
        }
      } else {
        EXPECT_EQ(r.status, 403) << what;
        if (route.pattern != "/api/v1/events" && route.method != "HEAD") {  // HEAD has no body
          EXPECT_EQ(r.errorCode(), "forbidden") << what;
        }
      }
    }
  }
}

TEST_F(RouteAccessTest, CookieSessionsWithAWrongCsrfTokenChangeNothing) {
  for (const auto& route : served()) {
    if (!changesState(route.method) || route.access == "public") continue;
    const std::string role = route.access == "roles" ? route.roles.front() : "support";
    auto c = app_->client();
    ASSERT_EQ(c.loginCookie("as-" + role, kPassword).status, 200);
    c.setSendCsrf(false);
    auto missing = call(c, route);
    EXPECT_EQ(missing.status, 403) << route.key() << ": " << missing.body;
    EXPECT_EQ(missing.errorCode(), "csrf_failed") << route.key();
    auto wrong = call(c, route, {{"X-CSRF-Token", "not-the-token"}});
    EXPECT_EQ(wrong.status, 403) << route.key() << ": " << wrong.body;
    EXPECT_EQ(wrong.errorCode(), "csrf_failed") << route.key();
    // The same session with its token is let through to the route's own answer.
    c.setSendCsrf(true);
    auto right = call(c, route);
    EXPECT_NE(right.errorCode(), "csrf_failed") << route.key();
    EXPECT_NE(right.status, 401) << route.key() << ": " << right.body;
  }
}

}  // namespace
