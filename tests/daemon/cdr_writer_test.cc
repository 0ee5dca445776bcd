// The CDR writer through the service that writes it: conferences booked on a real vcrmd,
// joined by participants in a real Janus room, ended by an admin, by the clock or by a dead
// bridge; their CDRs read back through the API as a user reads them, in JSON and in CSV.
#include <gtest/gtest.h>

#include <Poco/JSON/Array.h>
#include <Poco/JSON/Object.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bridge_setup.h"
#include "csv_reader.h"
#include "api_times.h"
#include "eventually.h"
#include "janus_process.h"
#include "vcrmd_process.h"

using vcrm::test::eventually;
using vcrm::test::HttpsClient;
using vcrm::test::JanusParticipant;
using vcrm::test::JanusProcess;
using vcrm::test::parseCsv;
using vcrm::test::VcrmdProcess;
using JsonObject = Poco::JSON::Object::Ptr;
using JsonArray = Poco::JSON::Array::Ptr;

namespace {

using vcrm::test::epochOf;
using vcrm::test::isoIn;
using vcrm::test::nowEpoch;

std::string text(const JsonObject& o) {
  std::ostringstream s;
  o->stringify(s);
  return s.str();
}

// A JSON field as the CSV export writes it: NULL empty, text that a spreadsheet would run as a
// formula behind an apostrophe.
std::string asCsvField(const JsonObject& o, const std::string& key) {
  if (o->isNull(key)) return "";
  const std::string v = o->get(key).convert<std::string>();
  if (!v.empty() && std::string("=+-@\t\r").find(v[0]) != std::string::npos) return "'" + v;
  return v;
}

// Sorted: the client's JSON parser keeps no key order.
std::vector<std::string> keysOf(const JsonObject& o) {
  std::vector<std::string> keys;
  o->getNames(keys);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// The CSV exports' columns, in order: the JSON fields.
const std::vector<std::string> kCdrColumns = {
    "conference_id", "name", "owner", "bridge_id", "bridge_name", "room", "reserved_start", "reserved_end",
    "actual_start", "actual_end", "duration_seconds", "reserved_duration_seconds", "ports", "peak_participants",
    "legs", "end_cause", "final_state"};
const std::vector<std::string> kLegColumns = {"id", "conference_id", "conference_name", "participant_id",
                                              "display_name", "joined_at", "left_at", "duration_seconds",
                                              "end_reason", "bridge_id"};

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// A participant in the room, with when the test saw it join (the middle of the join call).
struct Seat {
  std::unique_ptr<JanusParticipant> p;
  double joinedAt = 0;
  double leftAt = 0;
};

class CdrWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    VcrmdProcess::Options o;
    o.settings = {"conference.prelaunch_seconds=3", "bridge.probe_seconds=1"};
    app_ = std::make_unique<VcrmdProcess>(o);
    app_->start();
    admin_ = std::make_unique<HttpsClient>(app_->client());
    ASSERT_EQ(admin_->loginBearer("admin", app_->adminPassword()).status, 200);
    bridge_ = addBridge("janus-east", 20, "default");
  }

  std::int64_t addBridge(const std::string& name, int capacity, const std::string& pool) {
    auto registered = vcrm::test::registerJanusBridge(*admin_, name, capacity, pool);
    janus_.push_back(std::move(registered.janus));
    const auto id = registered.id;
    EXPECT_TRUE(eventually(
        [&] { return admin_->get("/api/v1/bridges/" + std::to_string(id)).json()->getValue<std::string>("health") == "up"; },
        std::chrono::seconds(10)))
        << "bridge never came up: " << admin_->get("/api/v1/bridges").body;
    return id;
  }

  // Books through the API; the body is built as JSON so that names need no hand escaping.
  JsonObject book(const std::map<std::string, Poco::Dynamic::Var>& fields) {
    JsonObject body = new Poco::JSON::Object;
    for (const auto& [k, v] : fields) body->set(k, v);
    auto r = admin_->postJson("/api/v1/conferences", text(body));
    EXPECT_EQ(r.status, 201) << r.body;
    return r.json();
  }
  JsonObject conference(std::int64_t id) { return admin_->get("/api/v1/conferences/" + std::to_string(id)).json(); }
  std::string state(std::int64_t id) { return conference(id)->getValue<std::string>("state"); }
  int participantCount(std::int64_t id) { return static_cast<int>(conference(id)->getArray("participants")->size()); }
  bool becomes(std::int64_t id, const std::string& wanted, std::chrono::seconds within) {
    return eventually([&] { return state(id) == wanted; }, within);
  }

  Seat join(std::int64_t room, const std::string& display) {
    Seat s;
    const double before = nowEpoch();
    s.p = std::make_unique<JanusParticipant>(janus_[0]->httpUrl(), room, display, "1234");
    s.joinedAt = (before + nowEpoch()) / 2;
    return s;
  }

  // The admin ends it; returns when, as the test saw it.
  double terminate(std::int64_t id) {
    const double before = nowEpoch();
    auto t = admin_->postJson("/api/v1/conferences/" + std::to_string(id) + "/terminate", "");
    EXPECT_EQ(t.status, 200) << t.body;
    return (before + nowEpoch()) / 2;
  }

  // The conference's CDR once written, or nullptr.
  JsonObject cdrOf(std::int64_t id) {
    JsonArray cdrs;
    const bool one = eventually([&] {
      cdrs = admin_->get("/api/v1/cdrs/conferences?conference_id=" + std::to_string(id)).json()->getArray("cdrs");
      return cdrs->size() == 1;
    }, std::chrono::seconds(3));
    EXPECT_TRUE(one) << "no single CDR for conference " << id;
    return one ? cdrs->getObject(0) : nullptr;
  }
  JsonArray legsOf(std::int64_t id) {
    return admin_->get("/api/v1/cdrs/participants?conference_id=" + std::to_string(id)).json()->getArray("legs");
  }

  // Waits until vcrmd's clock is `margin` seconds past `epoch`, so that a duration recorded
  // from then on is clearly more than rounding.
  void letTimePass(double epoch, double margin) {
    ASSERT_TRUE(eventually([&] { return app_->databaseClock() > epoch + margin; },
                           std::chrono::milliseconds(static_cast<long>((margin + 10) * 1000)), std::chrono::milliseconds(20)));
  }

  // A duration in whole seconds, rounded, from two times the API gave to the millisecond.
  static void expectRoundedDuration(const JsonObject& o, const std::string& from, const std::string& to) {
    const double exact = epochOf(o->getValue<std::string>(to)) - epochOf(o->getValue<std::string>(from));
    EXPECT_LE(std::abs(static_cast<double>(o->getValue<std::int64_t>("duration_seconds")) - exact), 0.501)
        << from << " " << o->getValue<std::string>(from) << ", " << to << " " << o->getValue<std::string>(to);
  }

  std::unique_ptr<VcrmdProcess> app_;
  std::unique_ptr<HttpsClient> admin_;
  std::vector<std::unique_ptr<JanusProcess>> janus_;
  std::int64_t bridge_ = 0;
};

TEST_F(CdrWriterTest, ATerminatedConferenceHasACdrWithEveryFieldAsItHappened) {
  const std::string start = isoIn(std::chrono::seconds(5));
  auto booked = book({{"name", "Board meeting"}, {"start", start}, {"duration_minutes", 30}, {"ports", 12}, {"pin", "1234"}});
  const auto id = booked->getValue<std::int64_t>("id");
  const auto room = booked->getValue<std::int64_t>("room");
  ASSERT_TRUE(becomes(id, "active", std::chrono::seconds(10))) << state(id);
  // Two at a time at most, three legs in all: peak and legs are different counts.
  auto alice = join(room, "Alice");
  auto bob = join(room, "Bob");
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 2; }, std::chrono::seconds(3)));
  bob.p->leave();
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 1; }, std::chrono::seconds(3)));
  auto carol = join(room, "Carol");
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 2; }, std::chrono::seconds(3)));
  letTimePass(epochOf(conference(id)->getValue<std::string>("actual_start")), 2.0);
  const double terminatedAt = terminate(id);

  auto cdr = cdrOf(id);
  ASSERT_TRUE(cdr);
  EXPECT_EQ(cdr->getValue<std::int64_t>("conference_id"), id);
  EXPECT_EQ(cdr->getValue<std::string>("name"), "Board meeting");
  EXPECT_EQ(cdr->getValue<std::string>("owner"), "admin");
  EXPECT_EQ(cdr->getValue<std::int64_t>("bridge_id"), bridge_);
  EXPECT_EQ(cdr->getValue<std::string>("bridge_name"), "janus-east");
  EXPECT_EQ(cdr->getValue<std::int64_t>("room"), room);
  // Reserved: what was booked. Actual: when it really started (on time) and ended (early).
  EXPECT_DOUBLE_EQ(epochOf(cdr->getValue<std::string>("reserved_start")), epochOf(start));
  EXPECT_DOUBLE_EQ(epochOf(cdr->getValue<std::string>("reserved_end")), epochOf(start) + 1800);
  EXPECT_EQ(cdr->getValue<std::int64_t>("reserved_duration_seconds"), 1800);
  EXPECT_NEAR(epochOf(cdr->getValue<std::string>("actual_start")), epochOf(start), 1.5);
  EXPECT_NEAR(epochOf(cdr->getValue<std::string>("actual_end")), terminatedAt, 1.0);
  expectRoundedDuration(cdr, "actual_start", "actual_end");
  EXPECT_GE(cdr->getValue<std::int64_t>("duration_seconds"), 2);
  EXPECT_LT(cdr->getValue<std::int64_t>("duration_seconds"), 1800);
  EXPECT_EQ(cdr->getValue<std::int64_t>("ports"), 12);
  EXPECT_EQ(cdr->getValue<std::int64_t>("peak_participants"), 2);
  EXPECT_EQ(cdr->getValue<std::int64_t>("legs"), 3);
  EXPECT_EQ(cdr->getValue<std::string>("end_cause"), "terminated by user");
  EXPECT_EQ(cdr->getValue<std::string>("final_state"), "ended");
  EXPECT_EQ(keysOf(cdr), sorted(kCdrColumns)) << text(cdr);
}

TEST_F(CdrWriterTest, EveryLegRecordsJoinLeaveDurationDisplayNameAndWhyItEnded) {
  auto booked = book({{"name", "Design review"}, {"start_now", true}, {"duration_minutes", 30}, {"ports", 4}, {"pin", "1234"}});
  const auto id = booked->getValue<std::int64_t>("id");
  const auto room = booked->getValue<std::int64_t>("room");
  ASSERT_TRUE(becomes(id, "active", std::chrono::seconds(5))) << state(id);
  auto bob = join(room, "Bob");
  auto alice = join(room, "Alice");
  auto carol = join(room, "Carol");
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 3; }, std::chrono::seconds(3)));
  // Long enough that a leg stamped with its join time on leaving would show.
  letTimePass(std::max({bob.joinedAt, alice.joinedAt, carol.joinedAt}), 1.5);

  double before = nowEpoch();
  const auto bobId = bob.p->id();
  bob.p->leave();
  bob.leftAt = (before + nowEpoch()) / 2;
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 2; }, std::chrono::seconds(3)));
  before = nowEpoch();
  ASSERT_EQ(admin_->postJson("/api/v1/conferences/" + std::to_string(id) + "/participants/" +
                                 std::to_string(alice.p->id()) + "/drop", "").status, 204);
  alice.leftAt = (before + nowEpoch()) / 2;
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 1; }, std::chrono::seconds(3)));
  ASSERT_EQ(legsOf(id)->size(), 2u) << "Carol is still in: her open leg is no CDR yet";
  carol.leftAt = terminate(id);

  auto legs = legsOf(id);
  ASSERT_EQ(legs->size(), 3u);
  struct Expected {
    const Seat* seat;
    std::int64_t participant;
    std::string name;
    std::string reason;
  };
  // In the order they left.
  const std::vector<Expected> expected = {{&bob, bobId, "Bob", "left"},
                                          {&alice, alice.p->id(), "Alice", "dropped by admin"},
                                          {&carol, carol.p->id(), "Carol", "terminated by user"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    auto leg = legs->getObject(static_cast<unsigned>(i));
    const auto& e = expected[i];
    SCOPED_TRACE(e.name);
    EXPECT_EQ(leg->getValue<std::int64_t>("conference_id"), id);
    EXPECT_EQ(leg->getValue<std::string>("conference_name"), "Design review");
    EXPECT_EQ(leg->getValue<std::int64_t>("participant_id"), e.participant);
    EXPECT_EQ(leg->getValue<std::string>("display_name"), e.name);
    EXPECT_NEAR(epochOf(leg->getValue<std::string>("joined_at")), e.seat->joinedAt, 1.0);
    EXPECT_NEAR(epochOf(leg->getValue<std::string>("left_at")), e.seat->leftAt, 1.0);
    expectRoundedDuration(leg, "joined_at", "left_at");
    EXPECT_GE(leg->getValue<std::int64_t>("duration_seconds"), 1);
    EXPECT_EQ(leg->getValue<std::string>("end_reason"), e.reason);
    EXPECT_EQ(leg->getValue<std::int64_t>("bridge_id"), bridge_);
    EXPECT_EQ(keysOf(leg), sorted(kLegColumns)) << text(leg);
  }
}

TEST_F(CdrWriterTest, AConferenceThatRunsToItsEndKeepsItsReservedTimesAndTheScheduledEnd) {
  const std::string start = isoIn(std::chrono::seconds(4));
  const std::string end = isoIn(std::chrono::seconds(9));
  auto booked = book({{"name", "Stand-up"}, {"start", start}, {"end", end}, {"ports", 2}, {"pin", "1234"}});
  const auto id = booked->getValue<std::int64_t>("id");
  ASSERT_TRUE(becomes(id, "active", std::chrono::seconds(8))) << state(id);
  auto dana = join(booked->getValue<std::int64_t>("room"), "Dana");
  ASSERT_TRUE(eventually([&] { return participantCount(id) == 1; }, std::chrono::seconds(3)));
  ASSERT_TRUE(becomes(id, "ended", std::chrono::seconds(10))) << state(id);

  auto cdr = cdrOf(id);
  ASSERT_TRUE(cdr);
  EXPECT_EQ(cdr->getValue<std::string>("end_cause"), "scheduled end");
  EXPECT_EQ(cdr->getValue<std::string>("final_state"), "ended");
  EXPECT_DOUBLE_EQ(epochOf(cdr->getValue<std::string>("reserved_start")), epochOf(start));
  EXPECT_DOUBLE_EQ(epochOf(cdr->getValue<std::string>("reserved_end")), epochOf(end));
  EXPECT_EQ(cdr->getValue<std::int64_t>("reserved_duration_seconds"), 5);
  EXPECT_NEAR(epochOf(cdr->getValue<std::string>("actual_start")), epochOf(start), 1.5);
  EXPECT_NEAR(epochOf(cdr->getValue<std::string>("actual_end")), epochOf(end), 1.5);
  expectRoundedDuration(cdr, "actual_start", "actual_end");
  EXPECT_EQ(cdr->getValue<std::int64_t>("peak_participants"), 1);
  EXPECT_EQ(cdr->getValue<std::int64_t>("legs"), 1);
  auto legs = legsOf(id);
  ASSERT_EQ(legs->size(), 1u);
  EXPECT_EQ(legs->getObject(0)->getValue<std::string>("end_reason"), "conference ended");
  EXPECT_EQ(legs->getObject(0)->getValue<std::string>("left_at"), cdr->getValue<std::string>("actual_end"))
      << "the leg closes when the conference ends";
}

TEST_F(CdrWriterTest, AConferenceWhoseBridgeDiedBeforeItStartedHasNoActualStartOrDuration) {
  const auto doomed = addBridge("janus-doomed", 20, "doomed");
  const std::string start = isoIn(std::chrono::seconds(6));
  auto booked = book({{"name", "Never held"}, {"start", start}, {"duration_minutes", 30}, {"ports", 2}, {"pool", "doomed"}});
  const auto id = booked->getValue<std::int64_t>("id");
  ASSERT_EQ(booked->getValue<std::int64_t>("bridge_id"), doomed);
  janus_[1]->kill9();
  ASSERT_TRUE(becomes(id, "failed", std::chrono::seconds(15))) << state(id);

  auto cdr = cdrOf(id);
  ASSERT_TRUE(cdr);
  EXPECT_EQ(cdr->getValue<std::string>("final_state"), "failed");
  EXPECT_NE(cdr->getValue<std::string>("end_cause").find("bridge"), std::string::npos) << text(cdr);
  EXPECT_TRUE(cdr->isNull("actual_start")) << text(cdr);
  EXPECT_TRUE(cdr->isNull("duration_seconds")) << text(cdr);
  EXPECT_FALSE(cdr->isNull("actual_end")) << "when it was given up";
  EXPECT_DOUBLE_EQ(epochOf(cdr->getValue<std::string>("reserved_start")), epochOf(start));
  EXPECT_EQ(cdr->getValue<std::int64_t>("reserved_duration_seconds"), 1800);
  EXPECT_EQ(cdr->getValue<std::string>("bridge_name"), "janus-doomed");
  EXPECT_EQ(cdr->getValue<std::int64_t>("peak_participants"), 0);
  EXPECT_EQ(cdr->getValue<std::int64_t>("legs"), 0);
  EXPECT_EQ(legsOf(id)->size(), 0u);

  // In the CSV the missing values are empty fields.
  const auto rows = parseCsv(admin_->get("/api/v1/cdrs/conferences?format=csv&conference_id=" + std::to_string(id)).body);
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_EQ(rows[0], kCdrColumns);
  for (std::size_t k = 0; k < kCdrColumns.size(); ++k) {
    EXPECT_EQ(rows[1][k], asCsvField(cdr, kCdrColumns[k])) << kCdrColumns[k];
  }
}

TEST_F(CdrWriterTest, TheCsvExportsAreTheJsonCdrsQuotedAndWithFormulasDefused) {
  const std::string name = "=HYPERLINK(\"http://evil\",\"x\"), Q4\nsecond line";
  auto booked = book({{"name", name}, {"start_now", true}, {"duration_minutes", 30}, {"ports", 6}, {"pin", "1234"}});
  const auto id = booked->getValue<std::int64_t>("id");
  const auto room = booked->getValue<std::int64_t>("room");
  ASSERT_TRUE(becomes(id, "active", std::chrono::seconds(5))) << state(id);
  const std::vector<std::string> displays = {"Smith, John \"JJ\"", "=1+2", "@cmd", "-3", "\tTab", "Plain Name"};
  std::vector<Seat> seats;
  for (const auto& d : displays) seats.push_back(join(room, d));
  ASSERT_TRUE(eventually([&] { return participantCount(id) == static_cast<int>(displays.size()); }, std::chrono::seconds(5)));
  terminate(id);
  auto cdr = cdrOf(id);
  ASSERT_TRUE(cdr);

  const auto legsCsv = admin_->get("/api/v1/cdrs/participants?format=csv&conference_id=" + std::to_string(id));
  ASSERT_EQ(legsCsv.status, 200);
  EXPECT_NE(legsCsv.header("content-type").find("text/csv"), std::string::npos);
  EXPECT_NE(legsCsv.body.find(",\"Smith, John \"\"JJ\"\"\","), std::string::npos) << legsCsv.body;
  const auto rows = parseCsv(legsCsv.body);
  auto legs = legsOf(id);
  ASSERT_EQ(legs->size(), displays.size());
  ASSERT_EQ(rows.size(), displays.size() + 1);
  ASSERT_EQ(rows[0], kLegColumns);
  EXPECT_EQ(sorted(kLegColumns), keysOf(legs->getObject(0))) << "CSV columns are the JSON fields";
  const auto& legKeys = kLegColumns;
  std::vector<std::string> csvNames;
  for (std::size_t i = 0; i < legs->size(); ++i) {
    auto leg = legs->getObject(static_cast<unsigned>(i));
    for (std::size_t k = 0; k < legKeys.size(); ++k) {
      EXPECT_EQ(rows[i + 1][k], asCsvField(leg, legKeys[k])) << legKeys[k] << " of leg " << i;
    }
    EXPECT_EQ(rows[i + 1][2], "'" + name);
    csvNames.push_back(rows[i + 1][4]);
  }
  std::sort(csvNames.begin(), csvNames.end());
  std::vector<std::string> expectedNames = {"Smith, John \"JJ\"", "'=1+2", "'@cmd", "'-3", "'\tTab", "Plain Name"};
  std::sort(expectedNames.begin(), expectedNames.end());
  EXPECT_EQ(csvNames, expectedNames) << "every display name, formulas behind an apostrophe";

  const auto cdrRows = parseCsv(admin_->get("/api/v1/cdrs/conferences?format=csv&conference_id=" + std::to_string(id)).body);
  ASSERT_EQ(cdrRows.size(), 2u);
  ASSERT_EQ(cdrRows[0], kCdrColumns);
  EXPECT_EQ(sorted(kCdrColumns), keysOf(cdr)) << "CSV columns are the JSON fields";
  for (std::size_t k = 0; k < kCdrColumns.size(); ++k) {
    EXPECT_EQ(cdrRows[1][k], asCsvField(cdr, kCdrColumns[k])) << kCdrColumns[k];
  }
  EXPECT_EQ(cdrRows[1][1], "'" + name);
}

TEST_F(CdrWriterTest, ATimeWindowSelectsWhatEndedInItAndAConferenceIdOneConference) {
  std::vector<std::int64_t> ids;
  std::vector<Seat> seats;
  for (const char* n : {"First", "Second", "Third"}) {
    auto booked = book({{"name", n}, {"start_now", true}, {"duration_minutes", 30}, {"ports", 1}, {"pin", "1234"}});
    ids.push_back(booked->getValue<std::int64_t>("id"));
    ASSERT_TRUE(becomes(ids.back(), "active", std::chrono::seconds(5)));
    seats.push_back(join(booked->getValue<std::int64_t>("room"), std::string(n) + " guest"));
    ASSERT_TRUE(eventually([&] { return participantCount(ids.back()) == 1; }, std::chrono::seconds(3)));
  }
  std::vector<std::string> ends;
  for (auto id : ids) {
    terminate(id);
    auto cdr = cdrOf(id);
    ASSERT_TRUE(cdr);
    ends.push_back(cdr->getValue<std::string>("actual_end"));
  }
  ASSERT_LT(epochOf(ends[0]), epochOf(ends[1]));
  ASSERT_LT(epochOf(ends[1]), epochOf(ends[2]));
  // From the second end (the API's millisecond form is at or before the exact time) to the
  // third, exclusive: only the second conference, and only its guest's leg, which closed with it.
  const std::string window = "?from=" + ends[1] + "&to=" + ends[2];
  auto cdrs = admin_->get("/api/v1/cdrs/conferences" + window).json()->getArray("cdrs");
  ASSERT_EQ(cdrs->size(), 1u) << window;
  EXPECT_EQ(cdrs->getObject(0)->getValue<std::int64_t>("conference_id"), ids[1]);
  auto legs = admin_->get("/api/v1/cdrs/participants" + window).json()->getArray("legs");
  ASSERT_EQ(legs->size(), 1u) << window;
  EXPECT_EQ(legs->getObject(0)->getValue<std::string>("display_name"), "Second guest");
  // Everything, and one conference by its id.
  EXPECT_EQ(admin_->get("/api/v1/cdrs/conferences").json()->getArray("cdrs")->size(), 3u);
  EXPECT_EQ(admin_->get("/api/v1/cdrs/participants").json()->getArray("legs")->size(), 3u);
  auto third = legsOf(ids[2]);
  ASSERT_EQ(third->size(), 1u);
  EXPECT_EQ(third->getObject(0)->getValue<std::string>("display_name"), "Third guest");
}

}  // namespace
