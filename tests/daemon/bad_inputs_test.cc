// Hostile input to every route the daemon serves. The routes come from the server's own table
// (GET /api/v1/routes), so a route a module adds is covered without anyone copying it here.
// Every JSON route gets malformed, truncated, oversized, deeply nested and wrongly shaped bodies;
// the wrong-type, out-of-range, over-long, NUL, duplicate-key and unknown-field variants are
// derived from one valid example body per route, which this file keeps (a route without one
// fails the test, so nobody forgets). GETs get hostile query parameters, and every route
// malformed path ids. Each answer must be a 4xx carrying the error body (never a 5xx, never a
// crash), the database must not change (a snapshot of every table, compared byte for byte after
// every request), and /healthz must still answer 200 at the end.
#include <Poco/Base64Encoder.h>
#include <Poco/JSON/Array.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>

#include "api_times.h"
#include "bridge_setup.h"
#include "db_snapshot.h"
#include "licence_cases.h"
#include "route_table.h"
#include "vcrm/licensing/licence_file.h"
#include "vcrmd_process.h"

using vcrm::test::changesState;
using vcrm::test::databaseSnapshot;
using vcrm::test::HttpResult;
using vcrm::test::HttpsClient;
using vcrm::test::isoIn;
using vcrm::test::pathFor;
using vcrm::test::RegisteredBridge;
using vcrm::test::registerJanusBridge;
using vcrm::test::ServedRoute;
using vcrm::test::servedRoutes;
using vcrm::test::SnapshotExclusions;
using vcrm::test::VcrmdProcess;

namespace {

using ObjectPtr = Poco::JSON::Object::Ptr;
using Var = Poco::Dynamic::Var;

// What a hostile request must get.
enum class Want {
  Exactly400,   // malformed input: 400 (naming `names` when set)
  Refused,      // some 4xx: a value of the right type the route refuses on its own terms
  TooLarge,     // 413
  Unsupported,  // 415
  Harmless,     // anything but a 5xx (a GET filter that matches nothing; a bridge post it skips)
};

struct Hostile {
  Hostile(std::string label, std::string body, Want want = Want::Exactly400, std::string names = {},
          bool wellFormed = false, std::string contentType = "application/json")
      : label(std::move(label)),
        body(std::move(body)),
        want(want),
        names(std::move(names)),
        wellFormed(wellFormed),
        contentType(std::move(contentType)) {}
  std::string label;
  std::string body;
  Want want;
  std::string names;  // the error message must name this field
  bool wellFormed;    // JSON text our parser takes (an array, {} ...): what event posts may skip
  std::string contentType;
};

// One request a route takes, valid in every field's type and range. It is refused, or harmless,
// only at its end (a name that exists, ids naming nothing, a capacity below what is booked), so a
// hostile variant that slipped through validation would change nothing either, yet show up: it
// would get this status instead of a 400.
struct Example {
  enum class Body { Json, None, BridgeEvents, Stream };
  explicit Example(Body body = Body::Json, std::map<std::string, std::string> path = {})
      : body(body), path(std::move(path)) {}
  Body body;
  std::map<std::string, std::string> path;  // the pattern's parameters; the rest name nothing
  std::string query;                        // appended to the path, e.g. "series=true"
  std::string json;                         // Body::Json, Body::BridgeEvents
  int status = 0;                           // what the example itself gets
  bool emptyBodyAllowed = false;            // an empty body means {} (mute)
  std::vector<std::string> queryParams;     // the query parameters the route reads
};

// http.max_body_bytes for the suite: above every body it sends on purpose, and small enough that
// a body past it still fits the loopback socket buffers when vcrmd answers 413 before reading it.
constexpr std::size_t kMaxBodyBytes = 262144;
const std::string kEuro = "\xE2\x82\xAC";  // three bytes: cuts in echoed text fall inside it

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string jsonText(const Var& v) {
  std::ostringstream out;
  Poco::JSON::Stringifier::stringify(v, out, 0, -1,
                                     Poco::JSON_PRESERVE_KEY_ORDER | Poco::JSON_WRAP_STRINGS);
  return out.str();
}

ObjectPtr parseExample(const std::string& text) {
  Poco::JSON::Parser p(new Poco::JSON::ParseHandler(true));
  return p.parse(text).extract<ObjectPtr>();
}

// `o` as JSON text with member `key`'s value replaced by raw text (or left out when `replacement`
// is nullopt), and `extra` raw members appended.
std::string rewritten(const ObjectPtr& o, const std::string& key,
                      const std::optional<std::string>& replacement,
                      const std::string& extra = {}) {
  std::string out = "{";
  for (const auto& name : o->getNames()) {
    std::string value;
    if (name == key) {
      if (!replacement) continue;
      value = *replacement;
    } else {
      value = jsonText(o->get(name));
    }
    if (out.size() > 1) out += ",";
    out += jsonText(Var(name)) + ":" + value;
  }
  if (!extra.empty()) out += (out.size() > 1 ? "," : "") + extra;
  return out + "}";
}

bool isObject(const Var& v) {
  return v.type() == typeid(ObjectPtr);
}
bool isArray(const Var& v) {
  return v.type() == typeid(Poco::JSON::Array::Ptr);
}
bool isBool(const Var& v) {
  return v.type() == typeid(bool);
}

// Every value that is not `v`'s type, and the values of its type a request must not carry.
void fieldVariants(const ObjectPtr& o, const std::string& where,
                   const std::function<std::string(const std::string&)>& wrap,
                   std::vector<Hostile>& out) {
  auto add = [&](const std::string& key, const std::string& label, const std::string& raw,
                 Want want, bool named = true, bool wellFormed = true) {
    out.push_back({where + key + " = " + label, wrap(rewritten(o, key, raw)), want,
                   named ? key : "", wellFormed});
  };
  for (const auto& key : o->getNames()) {
    const Var v = o->get(key);
    add(key, "null", "null", Want::Refused, false);
    if (isObject(v)) {
      for (const char* wrong : {R"("x")", "7", "true", "[]", "[{}]"})
        add(key, wrong, wrong, Want::Exactly400);
      const ObjectPtr inner = v.extract<ObjectPtr>();
      fieldVariants(
          inner, where + key + ".",
          [&, key](const std::string& innerText) { return wrap(rewritten(o, key, innerText)); },
          out);
    } else if (isArray(v)) {
      for (const char* wrong :
           {R"("MO")", "7", "true", "{}", "[7]", "[null]", "[{}]", "[[]]", "[true]"}) {
        add(key, wrong, wrong, Want::Exactly400);
      }
      std::string many = "[";
      for (int i = 0; i < 10000; ++i) many += std::string(i ? "," : "") + "\"MO\"";
      add(key, "10000 items", many + "]", Want::Exactly400);
      add(key, "[70000 bytes]", "[\"" + std::string(70000, 'a') + "\"]", Want::Exactly400);
      add(key, "[NUL inside]", R"(["a\u0000b"])", Want::Exactly400);
      add(key, "[euro signs]", "[\"" + repeat(kEuro, 30) + "\"]", Want::Refused, false);
      add(key, "[lone surrogate]", R"(["\ud800"])", Want::Exactly400, false, false);
    } else if (isBool(v)) {
      for (const char* wrong : {R"("true")", "1", "0", "{}", "[]", "[true]"})
        add(key, wrong, wrong, Want::Exactly400);
    } else if (v.isInteger()) {
      for (const char* wrong : {R"("7")", "true", "{}", "[]", "[7]", "1.5", "1e2", "-0.0"}) {
        add(key, wrong, wrong, Want::Exactly400);
      }
      add(key, "2^64-1", "18446744073709551615", Want::Exactly400);
      add(key, "-2^63-1", "-9223372036854775809", Want::Exactly400);
      add(key, "1e400", "1e400", Want::Exactly400, false, false);
      add(key, "10^23", "99999999999999999999999", Want::Exactly400, false, false);
      for (const char* odd : {"-1", "0", "9223372036854775807", "-9223372036854775807"}) {
        add(key, odd, odd, Want::Refused, false);
      }
    } else if (v.isString()) {
      for (const char* wrong : {"7", "true", "{}", "[]", R"(["x"])", "1.5"})
        add(key, wrong, wrong, Want::Exactly400);
      add(key, "70000 bytes", "\"" + std::string(70000, 'a') + "\"", Want::Exactly400);
      add(key, "70000 bytes of euro signs", "\"" + repeat(kEuro, 23334) + "\"", Want::Exactly400);
      add(key, "NUL inside", R"("a\u0000b")", Want::Exactly400);
      add(key, "lone surrogate", R"("\ud800")", Want::Exactly400, false, false);
      add(key, "invalid UTF-8",
          "\"a\xff\xfe"
          "b\"",
          Want::Exactly400, false, false);
      add(key, "overlong UTF-8 NUL",
          "\"a\xc0\x80"
          "b\"",
          Want::Exactly400, false, false);
      add(key, "UTF-8 surrogate",
          "\"a\xed\xa0\x80"
          "b\"",
          Want::Exactly400, false, false);
      add(key, "raw control character",
          "\"a\x01"
          "b\"",
          Want::Exactly400, false, false);
      add(key, "empty", R"("")", Want::Refused, false);
      add(key, "euro signs", "\"" + repeat(kEuro, 30) + "\"", Want::Refused, false);
    }
    out.push_back({where + key + " twice",
                   wrap(rewritten(o, key, jsonText(v), jsonText(Var(key)) + ":" + jsonText(v))),
                   Want::Exactly400, key, false});
    out.push_back({where + key + " nested 100000 deep",
                   wrap(rewritten(o, key, std::string(100000, '['))), Want::Exactly400, "", false});
  }
  out.push_back({where + "unknown field",
                 wrap(rewritten(o, "", std::nullopt, R"("zz_unknown_field":1)")), Want::Exactly400,
                 "zz_unknown_field", true});
}

std::vector<Hostile> derivedBodies(const std::string& example) {
  std::vector<Hostile> out;
  fieldVariants(
      parseExample(example), "", [](const std::string& s) { return s; }, out);
  return out;
}

// What any JSON route must refuse, whatever its fields.
std::vector<Hostile> genericBodies(const std::string& example, bool emptyBodyAllowed) {
  std::vector<Hostile> out;
  auto bad = [&](std::string label, std::string body) {
    out.push_back({std::move(label), std::move(body), Want::Exactly400, "", false});
  };
  out.push_back({"empty body", "", emptyBodyAllowed ? Want::Refused : Want::Exactly400, "",
                 emptyBodyAllowed});
  bad("blank body", " \r\n\t ");
  bad("lone {", "{");
  bad("lone }", "}");
  bad("truncated to one byte", example.substr(0, 1));
  bad("truncated to half", example.substr(0, example.size() / 2));
  bad("last byte cut", example.substr(0, example.size() - 1));
  bad("not JSON", "hello");
  bad("a form", "username=admin&password=x");
  bad("XML", "<conference name=\"x\"/>");
  bad("UTF-16 byte-order mark", "\xff\xfe{\0}\0");
  bad("UTF-8 byte-order mark", "\xEF\xBB\xBF" + example);
  bad("comment", "/* hi */" + example);
  bad("trailing garbage", example + " x");
  bad("two documents", example + example);
  bad("trailing NUL byte", example + std::string(1, '\0'));
  bad("NUL byte inside", example.substr(0, example.size() / 2) + std::string(1, '\0') +
                             example.substr(example.size() / 2));
  bad("invalid UTF-8 outside strings", example + "\xff");
  for (const char* scalar : {"42", "-1", "\"text\"", "true", "false", "null", "1e400"}) {
    bad(std::string("scalar ") + scalar, scalar);
  }
  out.push_back({"empty array", "[]", Want::Exactly400, "", true});
  out.push_back({"the example in an array", "[" + example + "]", Want::Exactly400, "", true});
  out.push_back({"empty object", "{}", Want::Refused, "", true});
  bad("100000 [", std::string(100000, '['));
  bad("40000 {\"a\":", repeat("{\"a\":", 40000));
  bad("100000 balanced []", std::string(100000, '[') + std::string(100000, ']'));
  bad("33 balanced []", std::string(33, '[') + std::string(33, ']'));
  bad("deep inside a string-looking key", "{\"a\\\"\":" + std::string(50000, '[') + "}");
  out.push_back(
      {"body over the cap", "{\"x\":\"" + std::string(kMaxBodyBytes, 'a') + "\"}", Want::TooLarge});
  out.push_back({"text/plain", example, Want::Unsupported, "", true, "text/plain"});
  out.push_back(
      {"a form type", example, Want::Unsupported, "", true, "application/x-www-form-urlencoded"});
  return out;
}

// Percent-encoded values a query parameter or path segment must survive.
const std::vector<std::pair<std::string, std::string>>& hostileSegments() {
  static const std::vector<std::pair<std::string, std::string>> values = {
      {"empty", ""},
      {"letters", "abc"},
      {"negative", "-1"},
      {"zero", "0"},
      {"leading zeros", "007"},
      {"fraction", "1.5"},
      {"exponent", "1e3"},
      {"hex", "0x10"},
      {"plus sign", "+1"},
      {"2^63-1", "9223372036854775807"},
      {"2^63", "9223372036854775808"},
      {"-2^63-1", "-9223372036854775809"},
      {"10^20", "99999999999999999999"},
      {"encoded NUL", "%00"},
      {"NUL inside", "a%00b"},
      {"invalid UTF-8", "%FF%FE"},
      {"overlong UTF-8 NUL", "%C0%80"},
      {"UTF-8 surrogate", "%ED%A0%80"},
      {"truncated UTF-8", "%E2%82"},
      {"euro signs", repeat("%E2%82%AC", 30)},
      {"Arabic digit", "%D9%A3"},
      {"bad escape", "%ZZ"},
      {"cut escape", "%2"},
      {"lone percent", "%"},
      {"space", "%20"},
      {"encoded slash", "1%2F2"},
      {"dot dot", ".."},
      {"quote", "1'%20OR%20'1'='1"},
      {"5000 bytes", std::string(5000, 'a')},
      {"JSON", "%7B%22a%22%3A1%7D"},
      {"impossible time", "2026-13-45T99:99Z"},
      {"true", "true"},
      {"null", "null"},
  };
  return values;
}

// Escapes no decoder may guess at: the parameter is refused with bad_query, not dropped.
bool malformedEscape(const std::string& label) {
  return label == "encoded NUL" || label == "NUL inside" || label == "bad escape" ||
         label == "cut escape" || label == "lone percent";
}

bool invalidUtf8(const std::string& label) {
  return label == "invalid UTF-8" || label == "overlong UTF-8 NUL" || label == "UTF-8 surrogate" ||
         label == "truncated UTF-8";
}

class BadInputsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    VcrmdProcess::Options options;
    options.settings = {"http.max_body_bytes=" + std::to_string(kMaxBodyBytes)};
    app_ = new VcrmdProcess(options);
    app_->start();
    admin_ = new HttpsClient(app_->client());
    ASSERT_EQ(admin_->loginBearer("admin", app_->adminPassword()).status, 200);
    // A real bridge with bookings on it, so the routes that act on one reach their validation.
    bridge_ = new RegisteredBridge(registerJanusBridge(*admin_, "bi-main", 20));
    auto spare = admin_->postJson(
        "/api/v1/bridges",
        R"({"name":"bi-spare","url":"http://127.0.0.1:9/janus","admin_url":"http://127.0.0.1:9/admin",)"
        R"("admin_secret":"s","capacity_ports":5,"pool":"spare","state":"cordoned"})");
    ASSERT_EQ(spare.status, 201) << spare.body;
    auto single = admin_->postJson(
        "/api/v1/conferences",
        R"({"name":"bad inputs single","start":")" + isoIn(std::chrono::hours(48)) +
            R"(","duration_minutes":30,"ports":10,"pin":"1234","bridge_id":)" +
            std::to_string(bridge_->id) + "}");
    ASSERT_EQ(single.status, 201) << single.body;
    conference_ = single.json()->getValue<std::string>("id");
    auto series = admin_->postJson(
        "/api/v1/conferences",
        R"({"name":"bad inputs series","start":")" + isoIn(std::chrono::hours(72)) +
            R"(","duration_minutes":30,"ports":2,"recurrence":{"frequency":"weekly","count":3}})");
    ASSERT_EQ(series.status, 201) << series.body;
    occurrence_ = series.json()->getArray("conferences")->getObject(0)->getValue<std::string>("id");
    auto cfg = admin_->get("/api/v1/bridges/" + std::to_string(bridge_->id) + "/janus-config");
    std::smatch user;
    std::smatch pwd;
    ASSERT_TRUE(std::regex_search(cfg.body, user, std::regex("backend_user = \"([^\"]+)\"")) &&
                std::regex_search(cfg.body, pwd, std::regex("backend_pwd = \"([^\"]+)\"")))
        << cfg.body;
    std::ostringstream basic;
    Poco::Base64Encoder enc(basic);
    enc << user[1].str() << ":" << pwd[1].str();
    enc.close();
    eventsAuth_ = "Basic " + basic.str();
    db_ = new vcrm::db::Connection(app_->database());
  }
  static void TearDownTestSuite() {
    delete db_;
    delete bridge_;
    delete admin_;
    delete app_;
    db_ = nullptr;
    bridge_ = nullptr;
    admin_ = nullptr;
    app_ = nullptr;
  }

  void SetUp() override {
    requests_ = 0;
    started_ = std::chrono::steady_clock::now();
  }

  void TearDown() override {
    const auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    if (requests_ > 0)
      std::cout << "[ figures  ] " << requests_ << " hostile requests in " << seconds << " s\n";
    // Whatever it was sent, the daemon is still there and healthy.
    ASSERT_NE(app_, nullptr);
    EXPECT_EQ(::kill(app_->pid(), 0), 0) << "vcrmd is gone";
    EXPECT_EQ(app_->client().get("/healthz").status, 200) << app_->output().substr(0, 4000);
  }

  // {"file": <a licence signed with the test key for a serial that is not this server's>}.
  static std::string otherServersLicence() {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    ObjectPtr o = new Poco::JSON::Object;
    o->set("file",
           vcrm::licensing::issueLicence(vcrm::test::sampleLicence("0000-0000-0000-0000-0", now),
                                         vcrm::test::testLicenceKey()));
    return jsonText(Var(o));
  }

  // Every route the daemon serves, as this file expects to reach it.
  static std::map<std::string, std::vector<Example>> examples() {
    const std::string mainBridge = std::to_string(bridge_->id);
    const std::string soon = isoIn(std::chrono::hours(50));
    using B = Example::Body;
    const Example none(B::None);
    const Example stream(B::Stream);
    auto query = [](std::vector<std::string> params) {
      Example e(B::None);
      e.queryParams = std::move(params);
      return e;
    };
    auto json = [](std::string body, int status, std::map<std::string, std::string> path = {}) {
      Example e(B::Json, std::move(path));
      e.json = std::move(body);
      e.status = status;
      return e;
    };
    Example mute = json(R"({"muted":true})", 404);
    mute.emptyBodyAllowed = true;
    Example events(B::BridgeEvents, {{"id", mainBridge}});
    events.json =
        R"({"type":64,"timestamp":1,"event":{"plugin":"janus.plugin.videoroom","data":{"event":"joined","room":4242,"id":5,"display":"x"}}})";
    events.status = 204;
    Example cancel(B::None);
    cancel.queryParams = {"series"};
    Example series = json(
        R"({"name":"renamed","start":"2020-01-01T09:00:00Z","duration_minutes":30,"ports":100000,)"
        R"("pin":"5678","auto_end_when_empty":true})",
        422, {{"id", occurrence_}});
    series.query = "series=true";
    return {
        {"GET /healthz", {none}},
        {"GET /api/v1/version", {none}},
        // A name that has no account: every complete request is a wrong password.
        {"POST /api/v1/auth/login",
         {json(R"({"username":"nobody-here","password":"not the password"})", 401)}},
        {"GET /api/v1/auth/session", {none}},
        {"POST /api/v1/auth/logout", {none}},
        {"POST /api/v1/auth/password",
         {json(
             R"({"current_password":"not the current password","new_password":"another long password"})",
             422)}},
        {"GET /api/v1/users", {none}},
        // The user exists already.
        {"POST /api/v1/users",
         {json(R"({"username":"admin","password":"a long enough password","roles":["admin"]})",
               409)}},
        {"GET /api/v1/users/{name}", {none}},
        {"PATCH /api/v1/users/{name}",
         {json(R"({"roles":["noc"],"disabled":false,"password":"a long enough password"})", 404)}},
        {"DELETE /api/v1/users/{name}", {none}},
        {"GET /api/v1/audit", {query({"limit", "before_id", "username", "action"})}},
        {"GET /api/v1/routes", {none}},
        {"GET /api/v1/system/log-level", {none}},
        // The level it has: no change.
        {"PUT /api/v1/system/log-level", {json(R"({"level":"info"})", 200)}},
        {"GET /api/v1/events", {stream}},
        {"GET /api/v1/bridges", {none}},
        // The name is taken.
        {"POST /api/v1/bridges",
         {json(
             R"({"name":"bi-spare","type":"janus","url":"http://127.0.0.1:9/janus","admin_url":"http://127.0.0.1:9/admin",)"
             R"("admin_secret":"secret","capacity_ports":5,"pool":"spare","state":"enabled"})",
             409)}},
        {"GET /api/v1/bridges/{id}", {none}},
        // Two refusals, so leaving out any one field still refuses: the name is taken and the
        // capacity is below what is booked.
        {"PATCH /api/v1/bridges/{id}",
         {json(
             R"({"name":"bi-spare","url":"http://127.0.0.1:9/janus","admin_url":"http://127.0.0.1:9/admin",)"
             R"("admin_secret":"secret","capacity_ports":5,"pool":"default","state":"enabled"})",
             409, {{"id", mainBridge}})}},
        {"DELETE /api/v1/bridges/{id}", {none}},
        {"GET /api/v1/bridges/{id}/janus-config", {none}},
        {"POST /api/v1/bridges/{id}/events", {events}},
        {"GET /api/v1/dashboard", {none}},
        {"GET /api/v1/conferences",
         {query({"from", "to", "state", "owner", "series_id", "limit"})}},
        // A bridge and a pool that do not exist: nothing can be placed, with or without either.
        {"POST /api/v1/conferences",
         {json(
              R"({"name":"bad inputs","start":")" + soon +
                  R"(","duration_minutes":30,"start_now":false,"time_zone":"Europe/Berlin","ports":2,"pin":"4321",)"
                  R"("bridge_id":987654321,"pool":"no-such-pool","auto_end_when_empty":true,)"
                  R"("recurrence":{"frequency":"weekly","interval":1,"weekdays":["MO","TU"],"count":3}})",
              409),
          json(R"({"name":"bad inputs","start":")" + soon + R"(","end":")" +
                   isoIn(std::chrono::hours(51)) +
                   R"(","ports":2,"bridge_id":987654321,"pool":"no-such-pool",)"
                   R"("recurrence":{"frequency":"daily","until":")" +
                   isoIn(std::chrono::hours(24 * 9)) + R"("}})",
               409)}},
        {"GET /api/v1/conferences/{id}.ics", {none}},
        {"GET /api/v1/conferences/{id}", {none}},
        // A start in the past and more ports than any bridge has: two refusals again.
        {"PATCH /api/v1/conferences/{id}",
         {json(
              R"({"name":"renamed","start":"2020-01-01T09:00:00Z","duration_minutes":30,"ports":100000,)"
              R"("pin":"5678","auto_end_when_empty":true})",
              422, {{"id", conference_}}),
          json(R"({"start":"2020-01-01T09:00:00Z","end":"2020-01-01T10:00:00Z","ports":100000})",
               422, {{"id", conference_}}),
          series}},
        {"DELETE /api/v1/conferences/{id}", {cancel}},
        {"POST /api/v1/conferences/{id}/terminate", {none}},
        {"POST /api/v1/conferences/{id}/extend", {json(R"({"minutes":15})", 404)}},
        {"POST /api/v1/conferences/{id}/participants/{pid}/mute", {mute}},
        {"POST /api/v1/conferences/{id}/participants/{pid}/drop", {none}},
        {"GET /api/v1/cdrs/conferences",
         {query({"from", "to", "conference_id", "limit", "cursor", "format"})}},
        {"GET /api/v1/cdrs/participants",
         {query({"from", "to", "conference_id", "limit", "cursor", "format"})}},
        {"GET /api/v1/license", {none}},
        // A well-made licence for another server: refused as such, with or without a preview.
        {"POST /api/v1/license/preview", {json(otherServersLicence(), 422)}},
        {"POST /api/v1/license", {json(otherServersLicence(), 422)}},
        {"GET /api/v1/backups", {none}},
        // A good passphrase starts a backup (archives are files: the database stays as it was).
        {"POST /api/v1/backups",
         {json(R"({"passphrase":"a passphrase of the bad-inputs suite"})", 202)}},
        {"GET /api/v1/backups/{id}", {none}},
        {"GET /api/v1/backups/{id}/download", {none}},
        {"DELETE /api/v1/backups/{id}", {none}},
        // No archive of that id.
        {"POST /api/v1/backups/{id}/verify",
         {json(R"({"passphrase":"any passphrase at all"})", 404)}},
        {"GET /api/v1/backups/schedule", {none}},
        // Every field well made, but a schedule with no passphrase to seal its archives with.
        {"PUT /api/v1/backups/schedule",
         {json(
             R"({"enabled":true,"time_of_day":"02:30","time_zone":"Europe/Paris","retention":3,)"
             R"("sftp":{"enabled":true,"host":"backup.example.org","port":22,"user":"vcrm",)"
             R"("remote_dir":"backups/vcrm","private_key":"-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n)"
             R"(-----END OPENSSH PRIVATE KEY-----\n","host_key":"backup.example.org ssh-ed25519 )"
             R"(AAAAC3NzaC1lZDI1NTE5AAAAIPz5Xf2RBEe/L2bR/JUWJENZ4Cfnvh0/pALGgzbI0wMU"}})",
             422)}},
        {"POST /api/v1/backups/schedule/run", {none}},
        // The tus upload collection of archives to restore (its own suite: uploads_test).
        {"POST /api/v1/restores/uploads", {stream}},
        {"OPTIONS /api/v1/restores/uploads", {stream}},
        {"HEAD /api/v1/restores/uploads/{upload_id}", {stream}},
        {"PATCH /api/v1/restores/uploads/{upload_id}", {stream}},
        {"DELETE /api/v1/restores/uploads/{upload_id}", {stream}},
        {"GET /api/v1/restores/uploads/{upload_id}", {stream}},
        // An upload that does not exist: nothing to verify, with any passphrase.
        {"POST /api/v1/restores",
         {json(R"({"upload_id":"0123456789abcdef0123456789abcdef","passphrase":"a passphrase"})",
               404)}},
        {"POST /api/v1/restores/{id}/confirm", {none}},
        {"GET /api/v1/restores/current", {none}},
        {"GET /api/v1/restores/previous", {none}},
        {"POST /api/v1/restores/previous/revert", {none}},
        {"DELETE /api/v1/restores/previous", {none}},
        // The tus upload collection of upgrade bundles (its own suite: uploads_test).
        {"POST /api/v1/upgrade/uploads", {stream}},
        {"OPTIONS /api/v1/upgrade/uploads", {stream}},
        {"HEAD /api/v1/upgrade/uploads/{upload_id}", {stream}},
        {"PATCH /api/v1/upgrade/uploads/{upload_id}", {stream}},
        {"DELETE /api/v1/upgrade/uploads/{upload_id}", {stream}},
        {"GET /api/v1/upgrade/uploads/{upload_id}", {stream}},
        // An upload that does not exist: nothing to verify, with or without a downgrade.
        {"POST /api/v1/upgrade",
         {json(R"({"upload_id":"0123456789abcdef0123456789abcdef","allow_downgrade":true})", 404)}},
        {"GET /api/v1/upgrade", {none}},
        // Nothing is pending.
        {"DELETE /api/v1/upgrade/pending", {none}},
        // Nothing is pending to confirm (and this vcrmd is in no slot); no upgrade to go back.
        {"POST /api/v1/upgrade/confirm",
         {json(R"({"backup_passphrase":"a long enough passphrase"})", 404)}},
        {"POST /api/v1/upgrade/go-back", {none}},
    };
  }

  static std::vector<ServedRoute> served() { return servedRoutes(*admin_); }

  static std::string snapshot() {
    static const SnapshotExclusions changesByItself{
        {"audit_log"},  // every refusal is recorded
        {{"sessions", {"last_seen_at"}},
         {"bridges",
          {"health", "health_cause", "health_message", "latency_ms", "bridge_version",
           "health_checked_at", "health_changed_at"}},
         {"appliance_serials", {"latest_seen"}}}};  // the licence clock, moved on every minute
    return databaseSnapshot(*db_, changesByItself);
  }

  static HttpResult send(const std::string& method, const std::string& path, const Hostile& h,
                         std::map<std::string, std::string> headers = {}) {
    headers["Content-Type"] = h.contentType;
    ++requests_;
    HttpsClient c = *admin_;
    return c.request(method, path, h.body, headers);
  }

  // The answer is what `want` says, with the error body http_errors.cc makes.
  static void check(const std::string& what, const HttpResult& r, Want want,
                    const std::string& names) {
    SCOPED_TRACE(what);
    switch (want) {
      case Want::Exactly400:
        EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
        break;
      case Want::Refused:
        EXPECT_TRUE(r.status >= 400 && r.status < 500) << r.status << " " << r.body.substr(0, 300);
        break;
      case Want::TooLarge:
        EXPECT_EQ(r.status, 413) << r.body.substr(0, 300);
        break;
      case Want::Unsupported:
        EXPECT_EQ(r.status, 415) << r.body.substr(0, 300);
        break;
      case Want::Harmless:
        EXPECT_LT(r.status, 500) << r.body.substr(0, 300);
        break;
    }
    if (r.status < 400) return;
    EXPECT_LT(r.status, 500) << r.body.substr(0, 300);
    ObjectPtr body;
    try {
      body = r.json();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "the error body is not JSON (" << e.what() << "): " << r.body.substr(0, 300);
      return;
    }
    ASSERT_TRUE(body) << r.body;
    EXPECT_EQ(body->size(), 1u) << r.body;
    auto error = body->getObject("error");
    ASSERT_TRUE(error) << r.body;
    EXPECT_EQ(error->size(), 2u) << r.body;
    ASSERT_TRUE(error->has("code") && error->get("code").isString()) << r.body;
    ASSERT_TRUE(error->has("message") && error->get("message").isString()) << r.body;
    EXPECT_FALSE(error->getValue<std::string>("code").empty()) << r.body;
    const std::string message = error->getValue<std::string>("message");
    EXPECT_FALSE(message.empty()) << r.body;
    if (!names.empty() && r.status == 400) {
      EXPECT_NE(message.find(names), std::string::npos)
          << "the message names \"" << names << "\": " << message;
    }
  }

  // Sends, checks the answer, and that the database is as it was before (a change is reported
  // once: `before` then moves on to what the database holds now).
  static void expectRefused(const std::string& method, const std::string& path, const Hostile& h,
                            std::string& before, std::map<std::string, std::string> headers = {}) {
    const std::string what = method + " " + path.substr(0, 120) + " with " + h.label;
    const auto r = send(method, path, h, std::move(headers));
    check(what, r, h.want, h.names);
    const std::string after = snapshot();
    EXPECT_TRUE(after == before) << what << " changed stored data (answer " << r.status << ": "
                                 << r.body.substr(0, 200) << "):\n"
                                 << difference(before, after);
    before = after;
  }

  // The lines of two snapshots that differ, "-" before and "+" after.
  static std::string difference(const std::string& before, const std::string& after) {
    auto lines = [](const std::string& text) {
      std::multiset<std::string> out;
      std::istringstream in(text);
      for (std::string line; std::getline(in, line);) out.insert(line);
      return out;
    };
    const auto a = lines(before);
    const auto b = lines(after);
    std::string out;
    for (const auto& l : a)
      if (!b.count(l)) out += "- " + l + "\n";
    for (const auto& l : b)
      if (!a.count(l)) out += "+ " + l + "\n";
    return out;
  }

  static VcrmdProcess* app_;
  static HttpsClient* admin_;
  static RegisteredBridge* bridge_;
  static vcrm::db::Connection* db_;
  static std::string conference_;
  static std::string occurrence_;
  static std::string eventsAuth_;
  static int requests_;
  static std::chrono::steady_clock::time_point started_;
};
VcrmdProcess* BadInputsTest::app_ = nullptr;
HttpsClient* BadInputsTest::admin_ = nullptr;
RegisteredBridge* BadInputsTest::bridge_ = nullptr;
vcrm::db::Connection* BadInputsTest::db_ = nullptr;
std::string BadInputsTest::conference_;
std::string BadInputsTest::occurrence_;
std::string BadInputsTest::eventsAuth_;
int BadInputsTest::requests_ = 0;
std::chrono::steady_clock::time_point BadInputsTest::started_;

TEST_F(BadInputsTest, EveryServedRouteHasAnExample) {
  const auto table = examples();
  std::set<std::string> seen;
  for (const auto& r : served()) {
    seen.insert(r.key());
    auto it = table.find(r.key());
    ASSERT_NE(it, table.end())
        << r.key()
        << " is served but this file has no example of it: add one to examples() (a valid "
           "body for a JSON route, the query parameters of a GET)";
    for (const auto& e : it->second) {
      if (e.body == Example::Body::Json || e.body == Example::Body::BridgeEvents) {
        EXPECT_NO_THROW(parseExample(e.json)) << r.key() << ": " << e.json;
      }
    }
  }
  for (const auto& [key, _] : table) EXPECT_TRUE(seen.count(key)) << key << " is no longer served";
}

TEST_F(BadInputsTest, HostileBodiesGet400sAndChangeNothing) {
  const auto table = examples();
  int sent = 0;
  for (const auto& route : served()) {
    if (!changesState(route.method)) continue;
    for (const auto& e : table.at(route.key())) {
      if (e.body == Example::Body::None && !route.params().empty()) {
        // A route that reads no body, with ids that name nothing: whatever the body, a refusal.
        // (Sign-out takes no ids: it would end the session the suite uses.)
        std::string before = snapshot();
        for (auto h : genericBodies("{\"a\":1}", true)) {
          if (h.want == Want::Exactly400) h.want = Want::Refused;
          expectRefused(route.method, pathFor(route.pattern), h, before);
          ++sent;
        }
      }
      if (e.body != Example::Body::Json) continue;
      const std::string path =
          pathFor(route.pattern, e.path) + (e.query.empty() ? "" : "?" + e.query);
      // The example itself first: it reaches the end of the route's validation.
      const auto r = send(route.method, path, {"the example", e.json});
      ASSERT_EQ(r.status, e.status) << route.key() << " " << e.json << " -> " << r.body;
      std::string before = snapshot();
      auto bodies = genericBodies(e.json, e.emptyBodyAllowed);
      for (auto& h : derivedBodies(e.json)) bodies.push_back(std::move(h));
      for (const auto& h : bodies) {
        expectRefused(route.method, path, h, before);
        ++sent;
      }
    }
  }
  EXPECT_GT(sent, 500);
}

TEST_F(BadInputsTest, BridgeEventPostsRefuseWhatIsNotJsonAndSkipWhatTheyDoNotFollow) {
  const auto table = examples();
  std::string before = snapshot();
  for (const auto& route : served()) {
    for (const auto& e : table.at(route.key())) {
      if (e.body != Example::Body::BridgeEvents) continue;
      const std::string path = pathFor(route.pattern, e.path);
      auto bodies = genericBodies(e.json, false);
      for (auto& h : derivedBodies(e.json)) bodies.push_back(std::move(h));
      for (auto h : bodies) {
        // Janus posts batches of events of every kind; a well-formed one vcrm does not follow is
        // skipped (204), so one bad event does not lose the batch. Malformed text is a 400.
        Hostile signedIn = h;
        if (h.want != Want::TooLarge && h.want != Want::Unsupported) {
          signedIn.want = h.wellFormed ? Want::Harmless : Want::Exactly400;
        }
        signedIn.names.clear();
        expectRefused(route.method, path, signedIn, before, {{"Authorization", eventsAuth_}});
        // Without the bridge's credentials, nothing is even parsed.
        Hostile anonymous = h;
        anonymous.want = h.want == Want::TooLarge ? Want::TooLarge : Want::Refused;
        HttpsClient anon = app_->client();
        ++requests_;
        const auto r = anon.request(route.method, path, h.body, {{"Content-Type", h.contentType}});
        check(route.key() + " without credentials, " + h.label, r, anonymous.want, "");
      }
    }
  }
  EXPECT_TRUE(snapshot() == before) << difference(before, snapshot());
}

TEST_F(BadInputsTest, HostileQueryParametersAreRefusedOrIgnored) {
  const auto table = examples();
  std::string before = snapshot();
  int sent = 0;
  for (const auto& route : served()) {
    for (const auto& e : table.at(route.key())) {
      if (e.queryParams.empty()) continue;
      const std::string path = pathFor(route.pattern);
      auto params = e.queryParams;
      params.push_back("zz_unknown");
      for (const auto& p : params) {
        for (const auto& [label, value] : hostileSegments()) {
          const bool refused = invalidUtf8(label) || malformedEscape(label);
          Hostile h{p + " = " + label, "", refused ? Want::Exactly400 : Want::Harmless,
                    refused ? p : ""};
          expectRefused(route.method, path + "?" + p + "=" + value, h, before);
          ++sent;
        }
        Hostile twice{p + " twice", "", Want::Harmless};
        expectRefused(route.method, path + "?" + p + "=1&" + p + "=abc", twice, before);
      }
      Hostile tooLong{"a query over the header cap", "", Want::Refused};
      expectRefused(route.method,
                    path + "?" + e.queryParams.front() + "=" + std::string(20000, 'a'), tooLong,
                    before);
    }
  }
  EXPECT_GT(sent, 100);
}

TEST_F(BadInputsTest, MalformedPathIdsAre4xxAndChangeNothing) {
  const auto table = examples();
  std::string before = snapshot();
  for (const auto& route : served()) {
    const auto& e = table.at(route.key()).front();
    if (e.body == Example::Body::Stream) continue;
    for (const auto& param : route.params()) {
      for (const auto& [label, value] : hostileSegments()) {
        if (value.empty()) continue;  // an empty segment is another path
        auto values = e.path;
        values[param] = value;
        // The example's own body, so only the path decides.
        Hostile h{param + " = " + label, e.json, Want::Refused, ""};
        std::map<std::string, std::string> headers;
        if (e.body == Example::Body::BridgeEvents) headers["Authorization"] = eventsAuth_;
        expectRefused(route.method, pathFor(route.pattern, values), h, before, headers);
      }
    }
  }
}

}  // namespace
