// The module seam without a database: a route table that is not sound stops the daemon from
// starting, workers start, wake, survive a failing pass and stop, modules see only the ones
// before them, and every failure kind maps to one status in one place.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "eventually.h"
#include "vcrm/common/error.h"
#include "vcrm/daemon/api.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/http_errors.h"
#include "vcrm/daemon/janus.h"
#include "vcrm/daemon/module.h"

using namespace vcrm;
using namespace std::chrono_literals;

namespace {

Route ok(std::string method, std::string pattern) {
  return roleRoute(std::move(method), std::move(pattern), roles::kAdmin, "test.ok",
                   [](RequestContext&) { return http::Response::noContent(); });
}

// The Api's checks run before anything touches the database: a pool that is never used.
struct ApiParts {
  Logger log{LogLevel::Error};
  db::Pool pool{"host=/nonexistent dbname=none", 1};
  AuthService auth{pool, log, {}};
  AuditLog audit{pool, log};
};

std::string startupError(std::vector<Route> routes) {
  ApiParts p;
  try {
    Api api({}, p.auth, p.audit, p.log, std::move(routes));
  } catch (const StartupError& e) {
    return e.what();
  }
  return "";
}

TEST(RouteTable, ARouteThatDoesNotDeclareItsAccessStopsTheStart) {
  Route r;
  r.method = "GET";
  r.pattern = "/api/v1/forgotten";
  r.action = "forgotten";
  r.handler = [](RequestContext&) { return http::Response::noContent(); };
  const auto why = startupError({ok("GET", "/api/v1/fine"), r});
  EXPECT_NE(why.find("GET /api/v1/forgotten does not declare who may call it"), std::string::npos)
      << why;
}

TEST(RouteTable, RoleRoutesNameKnownRolesAndRoutesAreDeclaredOnce) {
  auto none = ok("GET", "/api/v1/x");
  none.roles.clear();
  EXPECT_NE(startupError({none}).find("names none"), std::string::npos);
  auto unknown = ok("GET", "/api/v1/x");
  unknown.roles = {"superuser"};
  EXPECT_NE(startupError({unknown}).find("unknown role \"superuser\""), std::string::npos);
  EXPECT_NE(startupError({ok("GET", "/api/v1/x"), ok("GET", "/api/v1/x")}).find("declared twice"),
            std::string::npos);
  EXPECT_EQ(startupError({ok("GET", "/api/v1/x"), ok("PUT", "/api/v1/x")}), "");
}

TEST(RouteTable, TheApiListsItsOwnRoutesToo) {
  ApiParts p;
  Api api({}, p.auth, p.audit, p.log, {ok("GET", "/api/v1/x")});
  ASSERT_EQ(api.routes().size(), 2u);
  EXPECT_EQ(api.routes().back().pattern, "/api/v1/routes");
  EXPECT_EQ(api.routes().back().roles, roles::kAdmin);
}

TEST(PeriodicWorker, RunsEveryPeriodWakesEarlyAndStops) {
  Logger log(LogLevel::Error);
  std::atomic<int> passes{0};
  std::atomic<int> starts{0};
  PeriodicWorker w({"test", Worker::RunsOn::ActiveNode, 1h, [&] { ++passes; }, [&] { ++starts; }},
                   log);
  EXPECT_FALSE(w.running());
  w.wake();  // stopped: nothing happens
  w.start();
  EXPECT_EQ(starts.load(), 1) << "onStart runs before start() returns";
  ASSERT_TRUE(test::eventually([&] { return passes.load() == 1; }, 5s))
      << "the first pass runs at once";
  w.wake();
  ASSERT_TRUE(test::eventually([&] { return passes.load() == 2; }, 5s))
      << "wake() runs a pass long before the hour";
  w.stop();
  EXPECT_FALSE(w.running());
  const int after = passes.load();
  w.wake();
  w.stop();  // a second stop is harmless
  EXPECT_EQ(passes.load(), after);
  w.start();  // and it starts again (a standby that becomes active)
  EXPECT_EQ(starts.load(), 2);
  ASSERT_TRUE(test::eventually([&] { return passes.load() == after + 1; }, 5s));
}

TEST(PeriodicWorker, APassThatThrowsIsLoggedAndTheNextOneRuns) {
  std::vector<std::string> lines;
  std::mutex m;
  Logger log(LogLevel::Info, [&](std::string_view line) {
    std::lock_guard<std::mutex> g(m);
    lines.emplace_back(line);
  });
  std::atomic<int> passes{0};
  PeriodicWorker w({"flaky",
                    Worker::RunsOn::EveryNode,
                    10ms,
                    [&] {
                      if (++passes == 1) throw IoError("disk on fire");
                    },
                    {}},
                   log);
  w.start();
  ASSERT_TRUE(test::eventually([&] { return passes.load() >= 3; }, 5s));
  w.stop();
  std::lock_guard<std::mutex> g(m);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("flaky PASS_FAILED"), std::string::npos) << lines.front();
  EXPECT_NE(lines.front().find("disk on fire"), std::string::npos);
}

struct First : NamedModule {
  explicit First(const ModuleContext&) : NamedModule("first") {}
  std::vector<Route> routes() override { return {ok("GET", "/api/v1/first")}; }
};
struct Second : NamedModule {
  explicit Second(const ModuleContext& ctx) : NamedModule("second"), first(ctx.require<First>()) {}
  std::vector<Route> routes() override { return {ok("GET", "/api/v1/second")}; }
  First& first;
};

TEST(ModuleList, ModulesSeeTheOnesBeforeThemAndRoutesKeepTheirOrder) {
  ApiParts p;
  Config config;
  EventBus bus;
  Listeners listeners;
  ModuleList list([&](const std::vector<std::unique_ptr<Module>>& earlier) {
    return ModuleContext{config,  p.log,     p.pool, bus, p.auth,
                         p.audit, listeners, "0",    0,   "host=/nonexistent dbname=none",
                         earlier, {}};
  });
  EXPECT_THROW(list.add<Second>(), StartupError) << "Second needs First registered before it";
  list.add<First>();
  auto& second = list.add<Second>();
  EXPECT_EQ(&second.first, list.all().front().get());
  const auto routes = list.routes();
  ASSERT_EQ(routes.size(), 2u);
  EXPECT_EQ(routes[0].pattern, "/api/v1/first");
  EXPECT_EQ(routes[1].pattern, "/api/v1/second");
}

TEST(ErrorMap, EachKindOfFailureHasItsStatusAndABodyThatSaysWhat) {
  Logger log(LogLevel::Error);
  auto status = [&](const std::exception& e) { return http::errorResponse(e, log).status; };
  EXPECT_EQ(status(InvalidInput("x")), 400);
  EXPECT_EQ(status(Unauthenticated("x")), 401);
  EXPECT_EQ(status(Forbidden("x")), 403);
  EXPECT_EQ(status(NotFound("x")), 404);
  EXPECT_EQ(status(MethodNotAllowed("x", "GET")), 405);
  EXPECT_EQ(status(Conflict("x")), 409);
  EXPECT_EQ(status(TooLarge("x")), 413);
  EXPECT_EQ(status(UnsupportedMediaType("x")), 415);
  EXPECT_EQ(status(Unprocessable("x")), 422);
  EXPECT_EQ(status(RateLimited("x", 7)), 429);
  EXPECT_EQ(status(janus::BridgeError("port", "x")), 502);
  EXPECT_EQ(status(DbError("no free connection")), 503);
  EXPECT_EQ(status(DbError("connection lost", "08006")), 503);
  EXPECT_EQ(status(DbError("shutting down", "57P01")), 503);
  EXPECT_EQ(status(DbError("could not serialize", "40001")), 503);
  EXPECT_EQ(status(DbError("date/time field value out of range: \"2026-13-45T99:99Z\"", "22008")),
            400);
  EXPECT_EQ(status(DbError("duplicate key", "23505")), 409);
  EXPECT_EQ(status(DbError("syntax error", "42601")), 500);
  EXPECT_EQ(status(std::runtime_error("x")), 500);

  auto limited = http::errorResponse(RateLimited("wait", 7), log);
  EXPECT_NE(std::find(limited.headers.begin(), limited.headers.end(),
                      std::make_pair(std::string("Retry-After"), std::string("7"))),
            limited.headers.end());
  auto method = http::errorResponse(MethodNotAllowed("no", "GET, PUT"), log);
  EXPECT_NE(std::find(method.headers.begin(), method.headers.end(),
                      std::make_pair(std::string("Allow"), std::string("GET, PUT"))),
            method.headers.end());
  auto challenge =
      http::errorResponse(Unauthenticated("creds", "unauthenticated", "Basic realm=\"x\""), log);
  EXPECT_EQ(challenge.headers.at(0).first, "WWW-Authenticate");
  auto streams = http::errorResponse(RateLimited("too many streams", 3, "too_many_streams"), log);
  EXPECT_EQ(streams.status, 429);
  EXPECT_NE(streams.body.find("\"code\":\"too_many_streams\""), std::string::npos) << streams.body;
  auto audit = http::errorResponse(AuditWriteFailed("user.create"), log);
  EXPECT_EQ(audit.status, 500);
  EXPECT_NE(audit.body.find("\"code\":\"audit_failed\""), std::string::npos) << audit.body;
  EXPECT_NE(audit.body.find("the change was not made"), std::string::npos) << audit.body;
  auto internal = http::errorResponse(std::runtime_error("secret detail"), log);
  EXPECT_EQ(internal.body.find("secret detail"), std::string::npos)
      << "a 500 says nothing of the code";
}

TEST(ErrorMap, ABridgeFailureNamesTheBridgeAndTheLikelyCause) {
  Logger log(LogLevel::Error);
  auto r = http::errorResponse(
      janus::BridgeError("port", "connection to bridge east-1 (10.0.0.5:7088) was refused"), log);
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(r.body.find("\"code\":\"bridge_failed\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("bridge east-1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("likely cause: port"), std::string::npos) << r.body;
}

}  // namespace

// A restore publishes its last step and closes the bus at once (the restart): that step must
// still reach a stream that was waiting, or the page never sees the restore end (a CI flake of
// RestoreRoundTrip, where the stream returned empty-handed once the bus was closed).
TEST(EventBus, MessagesPublishedBeforeTheCloseStillReachAWaitingReader) {
  EventBus bus;
  const auto after = bus.lastId();
  bus.publish("restore", R"({"step":"conferences-ended"})");
  bus.close();
  const auto msgs = bus.waitAfter(after, 5s);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].json, R"({"step":"conferences-ended"})");
  EXPECT_TRUE(bus.waitAfter(msgs[0].id, 5s).empty()) << "nothing more, and no wait once closed";
}

TEST(EventBus, CloseWaitsForItsReadersToWriteOutWhatTheyHave) {
  EventBus bus;
  auto held = bus.reader();
  bus.close();
  EXPECT_FALSE(bus.awaitReaders(50ms)) << "a reader still holds its handle";
  std::thread done([&] { held.reset(); });  // the reader, done writing its last messages
  EXPECT_TRUE(bus.awaitReaders(5s));
  done.join();
}
