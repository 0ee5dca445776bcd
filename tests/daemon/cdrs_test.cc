// The CDR reader and calendars against a real PostgreSQL with the real schema: exact time
// windows, keyset paging, cursors, parameters, CSV streamed at any size, and RFC 5545 calendars
// for single conferences and recurring series. What the CDRs hold is tested where they are
// written, through vcrmd and Janus (cdr_writer_test.cc). Here rows are inserted with SQL, and
// only where the service cannot make them: thousands of legs (a leg through Janus costs a
// session and a join; 100,000 would take hours), many CDRs sharing one exact end time, and
// ends at chosen microseconds to pin the window's bounds.
#include "vcrm/daemon/cdrs.h"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <set>
#include <sstream>
#include <streambuf>
#include <string>
#include <vector>

#include "csv_reader.h"
#include "temp_dir.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/common/log.h"
#include "vcrm/common/pg_cluster.h"
#include "vcrm/daemon/migrations.h"

namespace vcrm {
namespace {

using Params = std::map<std::string, std::string>;
using test::parseCsv;

// ---- One PostgreSQL for every suite in this file, started on first use ----------------------

struct SharedDb {
  std::unique_ptr<test::TempDir> dir;
  std::unique_ptr<Logger> log;
  std::unique_ptr<PgCluster> cluster;
  std::unique_ptr<db::Pool> pool;
  std::string error;

  ~SharedDb() {
    pool.reset();  // connections close before the server stops
    cluster.reset();
  }
};

std::unique_ptr<SharedDb>& sharedSlot() {
  static std::unique_ptr<SharedDb> slot;
  return slot;
}

SharedDb& shared() {
  auto& slot = sharedSlot();
  if (slot) return *slot;
  slot = std::make_unique<SharedDb>();
  try {
    slot->dir = std::make_unique<test::TempDir>("vcrm-cdr");
    slot->log = std::make_unique<Logger>(LogLevel::Warn);
    PgCluster::Settings s;
    s.dataDir = slot->dir->path() / "pgdata";
    s.socketDir = slot->dir->path() / "sock";
    s.database = "vcrm_cdr";
    slot->cluster = std::make_unique<PgCluster>(s, *slot->log);
    slot->cluster->start();
    db::Connection c(slot->cluster->dsn());
    migrate(c, loadMigrations(), *slot->log);
    // Test data need not survive a crash: no fsync keeps tests and the final shutdown fast.
    c.exec("ALTER SYSTEM SET fsync = off");
    c.exec("ALTER SYSTEM SET synchronous_commit = off");
    c.exec("SELECT pg_reload_conf()");
    slot->pool = std::make_unique<db::Pool>(slot->cluster->dsn(), 2);
  } catch (const std::exception& e) {
    slot->error = e.what();
  }
  return *slot;
}

class SharedDbEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { sharedSlot().reset(); }
};
[[maybe_unused]] const auto* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new SharedDbEnvironment);

// ---- Fixture: empty tables and helpers that insert rows -------------------------------------

class CdrDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SharedDb& s = shared();
    ASSERT_TRUE(s.error.empty()) << "the test PostgreSQL did not start: " << s.error;
    conn_ = std::make_unique<db::Connection>(s.cluster->dsn());
    conn_->exec(
        "TRUNCATE conference_cdrs, participant_legs, conferences, conference_series, bridges "
        "RESTART IDENTITY CASCADE");
    service_ = std::make_unique<CdrService>(*s.pool);
  }

  db::Connection& db() { return *conn_; }
  CdrService& service() { return *service_; }

  std::int64_t addBridge(const std::string& name) {
    return db()
        .exec(
            "INSERT INTO bridges (name, type, url, admin_url, admin_secret, capacity_ports, "
            "events_secret) VALUES ($1, 'janus', 'http://127.0.0.1:8088/janus', "
            "'http://127.0.0.1:7088/admin', 'adminsecret', 100, 'eventsecret') RETURNING id",
            {name})
        .int64(0, 0);
  }

  struct Conf {
    std::string name = "Weekly sync";
    std::string owner = "alice";
    std::string start = "2026-11-22T09:00:00Z";
    std::string end = "2026-11-22T10:00:00Z";
    std::string timeZone = "UTC";
    std::string state = "ended";
    int ports = 10;
    std::optional<std::string> pin;
    std::optional<std::int64_t> bridgeId;
    std::optional<std::int64_t> seriesId;
    // Where the series' rule put it, if it has been moved since (else start and end).
    std::optional<std::string> ruleStart, ruleEnd;
  };

  std::int64_t addConference(const Conf& c) {
    return db()
        .exec(
            "INSERT INTO conferences (series_id, name, owner, starts_at, ends_at, time_zone, "
            "ports, pin, bridge_id, room, room_secret, state, rule_start, rule_end) VALUES ($1, $2, $3, "
            "$4, $5, $6, $7, $8, $9, $10, 'roomsecret', $11, "
            "CASE WHEN $1::bigint IS NOT NULL THEN coalesce($12::timestamptz, $4::timestamptz) END, "
            "CASE WHEN $1::bigint IS NOT NULL THEN coalesce($13::timestamptz, $5::timestamptz) END) RETURNING id",
            {c.seriesId, c.name, c.owner, c.start, c.end, c.timeZone, c.ports, c.pin, c.bridgeId,
             nextRoom_++, c.state, c.ruleStart, c.ruleEnd})
        .int64(0, 0);
  }

  // A conference CDR shaped like the one the service writes when a conference ends (what it
  // really writes is checked in cdr_writer_test.cc).
  void addCdr(std::int64_t conferenceId, const std::optional<std::string>& actualStart,
              const std::string& actualEnd, int peak = 3, int legs = 5,
              const std::string& endCause = "scheduled end") {
    db().exec(
        "INSERT INTO conference_cdrs (conference_id, name, owner, bridge_id, bridge_name, room, "
        "  reserved_start, reserved_end, actual_start, actual_end, ports, peak_participants, "
        "  legs, end_cause, final_state) "
        "SELECT c.id, c.name, c.owner, c.bridge_id, b.name, c.room, c.starts_at, c.ends_at, "
        "  $2::timestamptz, $3::timestamptz, c.ports, $4, $5, $6, c.state "
        "FROM conferences c LEFT JOIN bridges b ON b.id = c.bridge_id WHERE c.id = $1",
        {conferenceId, actualStart, actualEnd, peak, legs, endCause});
  }

  std::int64_t addLeg(std::int64_t conferenceId, std::int64_t participant,
                      const std::string& display, const std::string& joined,
                      const std::optional<std::string>& left,
                      const std::optional<std::string>& reason = "left") {
    return db()
        .exec(
            "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, "
            "  display_name, joined_at, left_at, end_reason) "
            "SELECT c.id, c.bridge_id, c.room, $2, $3, $4, $5, $6 FROM conferences c "
            "WHERE c.id = $1 RETURNING id",
            {conferenceId, participant, display, joined, left, reason})
        .int64(0, 0);
  }

  // `n` closed legs; every ten share one left_at, so paging must break ties on the id.
  void addManyLegs(std::int64_t conferenceId, int n) {
    db().exec(
        "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, "
        "  display_name, joined_at, left_at, end_reason) "
        "SELECT c.id, c.bridge_id, c.room, g, 'guest ' || g, "
        "  timestamptz '2026-11-22T09:00:00Z' + (g / 10) * interval '1 second', "
        "  timestamptz '2026-11-22T09:30:00Z' + (g / 10) * interval '1 second', 'left' "
        "FROM conferences c, generate_series(1, $2::int) g WHERE c.id = $1",
        {conferenceId, n});
  }

  std::int64_t addSeries(const std::string& frequency, int interval, const std::string& weekdays,
                         std::optional<int> count, const std::optional<std::string>& until,
                         const std::string& timeZone) {
    return db()
        .exec(
            "INSERT INTO conference_series (frequency, interval_n, weekdays, count_n, until_at, "
            "time_zone) VALUES ($1, $2, $3::text[], $4, $5, $6) RETURNING id",
            {frequency, interval, weekdays, count, until, timeZone})
        .int64(0, 0);
  }

 private:
  std::unique_ptr<db::Connection> conn_;
  std::unique_ptr<CdrService> service_;
  std::int64_t nextRoom_ = 5001;
};

class CdrTest : public CdrDbTest {};
class CsvTest : public CdrDbTest {};
class IcsTest : public CdrDbTest {};

template <typename F>
std::string invalidInputMessage(F&& f) {
  try {
    f();
  } catch (const InvalidInput& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected InvalidInput, got: " << e.what();
    return {};
  }
  ADD_FAILURE() << "expected InvalidInput, nothing thrown";
  return {};
}

std::vector<std::int64_t> ids(const json::ObjectPtr& page, const std::string& array,
                              const std::string& key) {
  std::vector<std::int64_t> out;
  auto a = page->getArray(array);
  for (std::size_t i = 0; i < a->size(); ++i) {
    out.push_back(a->getObject(static_cast<unsigned>(i))->getValue<std::int64_t>(key));
  }
  return out;
}

std::optional<std::string> nextCursor(const json::ObjectPtr& page) {
  if (page->isNull("next_cursor")) return std::nullopt;
  return page->getValue<std::string>("next_cursor");
}

// Keeps everything written and notes how much had arrived at each flush.
class RecordingBuf : public std::stringbuf {
 public:
  std::vector<std::size_t> sizeAtFlush;

 protected:
  int sync() override {
    sizeAtFlush.push_back(str().size());
    return 0;
  }
};

// A client that goes away: accepts `capacity` bytes, then every write fails.
class FailingBuf : public std::streambuf {
 public:
  explicit FailingBuf(std::size_t capacity) : capacity_(capacity) {}
  std::size_t written = 0;
  int writesAfterFull = 0;

 protected:
  std::streamsize xsputn(const char*, std::streamsize n) override {
    if (written >= capacity_) {
      ++writesAfterFull;
      return 0;
    }
    const auto take = std::min<std::size_t>(static_cast<std::size_t>(n), capacity_ - written);
    written += take;
    return static_cast<std::streamsize>(take);
  }
  int_type overflow(int_type c) override {
    if (written >= capacity_) {
      ++writesAfterFull;
      return traits_type::eof();
    }
    ++written;
    return c;
  }

 private:
  std::size_t capacity_;
};

// ---- iCalendar helpers -----------------------------------------------------------------------

std::vector<std::string> physicalLines(const std::string& ics) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < ics.size()) {
    const auto end = ics.find("\r\n", pos);
    if (end == std::string::npos) {
      ADD_FAILURE() << "the calendar does not end with CRLF";
      break;
    }
    out.push_back(ics.substr(pos, end - pos));
    pos = end + 2;
  }
  return out;
}

std::vector<std::string> unfoldedLines(const std::string& ics) {
  std::vector<std::string> out;
  for (const auto& l : physicalLines(ics)) {
    if (!l.empty() && l[0] == ' ' && !out.empty()) {
      out.back() += l.substr(1);
    } else {
      out.push_back(l);
    }
  }
  return out;
}

std::optional<std::string> property(const std::string& ics, const std::string& nameAndParams) {
  for (const auto& l : unfoldedLines(ics)) {
    if (l.rfind(nameAndParams + ":", 0) == 0) return l.substr(nameAndParams.size() + 1);
  }
  return std::nullopt;
}

int countLines(const std::string& ics, const std::string& prefix) {
  int n = 0;
  for (const auto& l : unfoldedLines(ics)) n += l.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

std::string unescapeText(const std::string& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      const char n = v[++i];
      out += (n == 'n' || n == 'N') ? '\n' : n;
    } else {
      out += v[i];
    }
  }
  return out;
}

bool validUtf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// ---- JSON ------------------------------------------------------------------------------------

TEST_F(CdrTest, TimeWindowIsFromInclusiveToExclusiveOnActualEndAndLeftAt) {
  const auto conf = addConference({});
  std::vector<std::int64_t> confs;
  for (const char* end : {"2026-11-22T08:00:00Z", "2026-11-22T09:00:00Z", "2026-11-22T09:30:00Z",
                          "2026-11-22T10:00:00Z"}) {
    const auto id = addConference({});
    addCdr(id, "2026-11-22T07:00:00Z", end);
    confs.push_back(id);
    addLeg(conf, id, "p", "2026-11-22T07:00:00Z", std::string(end));
  }
  // The same instant written with an offset selects the same rows.
  for (const Params& p :
       {Params{{"from", "2026-11-22T09:00:00Z"}, {"to", "2026-11-22T10:00:00Z"}},
        Params{{"from", "2026-11-22T10:00:00+01:00"}, {"to", "2026-11-22T05:00:00.000-05:00"}}}) {
    const auto q = CdrService::fromParams(p);
    EXPECT_EQ(ids(service().conferences(q), "cdrs", "conference_id"),
              (std::vector<std::int64_t>{confs[1], confs[2]}));
    EXPECT_EQ(ids(service().participants(q), "legs", "participant_id"),
              (std::vector<std::int64_t>{confs[1], confs[2]}));
  }
  const auto onlyFrom = CdrService::fromParams({{"from", "2026-11-22T09:30:00Z"}});
  EXPECT_EQ(ids(service().conferences(onlyFrom), "cdrs", "conference_id"),
            (std::vector<std::int64_t>{confs[2], confs[3]}));
  const auto onlyTo = CdrService::fromParams({{"to", "2026-11-22T09:00:00Z"}});
  EXPECT_EQ(ids(service().conferences(onlyTo), "cdrs", "conference_id"),
            (std::vector<std::int64_t>{confs[0]}));
}

TEST_F(CdrTest, PagingReturnsEveryLegExactlyOnce) {
  const auto conf = addConference({});
  addManyLegs(conf, 2500);
  CdrService::Query q = CdrService::fromParams({{"limit", "1000"}});
  std::vector<std::int64_t> seen;
  std::vector<std::size_t> pageSizes;
  for (int guard = 0; guard < 10; ++guard) {
    const auto page = service().participants(q);
    const auto got = ids(page, "legs", "id");
    pageSizes.push_back(got.size());
    seen.insert(seen.end(), got.begin(), got.end());
    q.cursor = nextCursor(page);
    if (!q.cursor) break;
  }
  EXPECT_EQ(pageSizes, (std::vector<std::size_t>{1000, 1000, 500}));
  ASSERT_EQ(seen.size(), 2500u);
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()).size(), 2500u) << "no duplicates";
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end())) << "ordered by left_at, then id";
}

TEST_F(CdrTest, PagingConferenceCdrsBreaksTiesOnTheId) {
  std::vector<std::int64_t> expected;
  for (int i = 0; i < 25; ++i) {
    const auto id = addConference({});
    addCdr(id, "2026-11-22T09:00:00Z", "2026-11-22T10:00:00.123456Z");  // all the same end
    expected.push_back(id);
  }
  CdrService::Query q;
  q.limit = 10;
  std::vector<std::int64_t> seen;
  int pages = 0;
  do {
    const auto page = service().conferences(q);
    const auto got = ids(page, "cdrs", "conference_id");
    seen.insert(seen.end(), got.begin(), got.end());
    q.cursor = nextCursor(page);
    ++pages;
  } while (q.cursor && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, expected);
}

TEST_F(CdrTest, MalformedParametersAreRefusedNamingTheParameter) {
  for (const char* bad : {"yesterday", "2026-11-22", "2026-11-22 09:00:00Z", "2026-11-22T09:00:00",
                          "2026-02-30T09:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T09:60:00Z",
                          "2026-13-01T09:00:00Z", "0000-01-01T00:00:00Z",
                          "2026-11-22T09:00:00+1:00", "2026-11-22T09:00:00+16:00",
                          "2026-11-22T09:00:00.Z", "2026-11-22T09:00:00Z'; DROP TABLE x; --", ""}) {
    EXPECT_NE(invalidInputMessage([&] {
                CdrService::fromParams({{"from", bad}});
              }).find("from must be an RFC 3339 time such as 2026-11-22T09:00:00Z"),
              std::string::npos)
        << bad;
    EXPECT_NE(invalidInputMessage([&] {
                CdrService::fromParams({{"to", bad}});
              }).find("to must be an RFC 3339 time"),
              std::string::npos)
        << bad;
  }
  for (const char* bad : {"0", "1001", "-5", "abc", "10x", "", "99999999999999999999"}) {
    EXPECT_NE(invalidInputMessage([&] {
                CdrService::fromParams({{"limit", bad}});
              }).find("limit must be a whole number from 1 to 1000"),
              std::string::npos)
        << bad;
  }
  EXPECT_NE(invalidInputMessage([&] {
              CdrService::fromParams({{"conference_id", "x"}});
            }).find("conference_id"),
            std::string::npos);
  EXPECT_NE(
      invalidInputMessage([&] {
        CdrService::fromParams({{"from", "2026-11-22T10:00:00Z"}, {"to", "2026-11-22T09:00:00Z"}});
      }).find("from must not be later than to"),
      std::string::npos);
  // A Query built in code is checked too.
  CdrService::Query q;
  q.limit = 0;
  EXPECT_NE(invalidInputMessage([&] { service().conferences(q); }).find("limit"),
            std::string::npos);
}

TEST_F(CdrTest, AForgedOrForeignCursorIsRefused) {
  for (const std::string& bad :
       {std::string("!!!"), std::string("not a cursor"), crypto::base64UrlEncode("c|yesterday|1"),
        crypto::base64UrlEncode("c|2026-11-22T09:00:00.000000Z|0"),
        crypto::base64UrlEncode("x|2026-11-22T09:00:00.000000Z|1"),
        crypto::base64UrlEncode("c|2026-02-30T09:00:00.000000Z|1"),
        crypto::base64Encode("c|2026-11-22T09:00:00.000000Z|12345678") + "=",
        std::string(200, 'A')}) {
    EXPECT_NE(invalidInputMessage([&] {
                CdrService::fromParams({{"cursor", bad}});
              }).find("cursor"),
              std::string::npos)
        << bad;
  }
  // A conference-list cursor handed to the participant list.
  for (int i = 0; i < 3; ++i) {
    addCdr(addConference({}), "2026-11-22T09:00:00Z", "2026-11-22T09:10:00Z");
  }
  CdrService::Query q;
  q.limit = 1;
  const auto cursor = nextCursor(service().conferences(q));
  ASSERT_TRUE(cursor);
  q.cursor = cursor;
  EXPECT_EQ(service().conferences(q)->getArray("cdrs")->size(), 1u);
  EXPECT_NE(invalidInputMessage([&] { service().participants(q); }).find("cursor belongs to"),
            std::string::npos);
}

TEST_F(CdrTest, EveryRfc3339FormIsAcceptedAndUnderstoodByPostgres) {
  const auto id = addConference({});
  addCdr(id, "2026-11-22T09:00:00Z", "2026-11-22T09:10:00.5Z");
  for (const char* from : {"2026-11-22T09:10:00.5Z", "2026-11-22t09:10:00.500000000z",
                           "2026-11-22T10:10:00.5+01:00", "2026-11-22T04:40:00.5-04:30"}) {
    const auto q = CdrService::fromParams({{"from", from}});
    EXPECT_EQ(service().conferences(q)->getArray("cdrs")->size(), 1u) << from;
  }
  const auto after = CdrService::fromParams({{"from", "2026-11-22T09:10:00.500001Z"}});
  EXPECT_EQ(service().conferences(after)->getArray("cdrs")->size(), 0u);
}

// ---- CSV -------------------------------------------------------------------------------------

TEST_F(CsvTest, AHundredThousandLegsStreamPageByPageAndParseBack) {
  const auto conf = addConference({});
  addManyLegs(conf, 100000);
  RecordingBuf buf;
  std::ostream out(&buf);
  const auto started = std::chrono::steady_clock::now();
  CdrService::Query q;
  q.limit = 5;  // ignored: an export is the whole selection
  service().participantsCsv(q, out);
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, std::chrono::seconds(10)) << "even on a loaded test machine";

  const std::string text = buf.str();
  const auto rows = parseCsv(text);
  ASSERT_EQ(rows.size(), 100001u);
  std::set<std::string> legIds;
  for (std::size_t i = 1; i < rows.size(); ++i) legIds.insert(rows[i][0]);
  EXPECT_EQ(legIds.size(), 100000u) << "every leg exactly once";

  // Written a page at a time: the first flush came after the header and 1,000 rows.
  ASSERT_GE(buf.sizeAtFlush.size(), 100u);
  const std::string firstPage = text.substr(0, buf.sizeAtFlush.front());
  EXPECT_EQ(parseCsv(firstPage).size(), 1001u);
}

TEST_F(CsvTest, TheExportStopsWhenTheClientGoesAway) {
  const auto conf = addConference({});
  addManyLegs(conf, 5000);
  FailingBuf buf(std::size_t{16} * 1024);
  std::ostream out(&buf);
  service().participantsCsv({}, out);
  EXPECT_TRUE(out.bad());
  EXPECT_EQ(buf.written, 16u * 1024u);
  EXPECT_LE(buf.writesAfterFull, 1) << "nothing more is written once the stream is bad";

  FailingBuf none(0);
  std::ostream gone(&none);
  service().conferencesCsv({}, gone);
  EXPECT_LE(none.writesAfterFull, 1);
}

// ---- iCalendar -------------------------------------------------------------------------------

TEST_F(IcsTest, ASingleConferenceIsOneEvent) {
  Conf c;
  c.name = "Weekly sync";
  c.pin = "4321";
  c.state = "scheduled";
  c.start = "2026-11-22T10:00:00+01:00";
  c.end = "2026-11-22T11:30:00+01:00";
  const auto id = addConference(c);
  const std::string ics = CdrService::icsForConference(db(), id, "1.2.3");

  const auto lines = unfoldedLines(ics);
  ASSERT_GE(lines.size(), 4u);
  EXPECT_EQ(lines.front(), "BEGIN:VCALENDAR");
  EXPECT_EQ(lines.back(), "END:VCALENDAR");
  EXPECT_EQ(property(ics, "VERSION"), "2.0");
  EXPECT_NE(property(ics, "PRODID").value_or("").find("1.2.3"), std::string::npos);
  EXPECT_EQ(countLines(ics, "BEGIN:VEVENT"), 1);
  EXPECT_EQ(property(ics, "UID"), "conference-" + std::to_string(id) + "@vcrm");
  EXPECT_EQ(property(ics, "DTSTART"), "20261122T090000Z");
  EXPECT_EQ(property(ics, "DTEND"), "20261122T103000Z");
  EXPECT_EQ(property(ics, "SEQUENCE"), "0");
  EXPECT_EQ(property(ics, "SUMMARY"), "Weekly sync");
  const std::string description = unescapeText(property(ics, "DESCRIPTION").value_or(""));
  EXPECT_NE(description.find("Room: 5001"), std::string::npos) << description;
  EXPECT_NE(description.find("PIN: 4321"), std::string::npos) << description;
  ASSERT_TRUE(property(ics, "DTSTAMP"));
  EXPECT_EQ(property(ics, "DTSTAMP")->size(), 16u);
  EXPECT_EQ(property(ics, "DTSTAMP")->back(), 'Z');
  EXPECT_FALSE(property(ics, "STATUS"));
  EXPECT_FALSE(property(ics, "RRULE"));
  EXPECT_EQ(ics.substr(ics.size() - 2), "\r\n");
  for (const auto& l : physicalLines(ics)) EXPECT_EQ(l.find('\n'), std::string::npos);
}

TEST_F(IcsTest, WithoutAPinTheDescriptionHasOnlyTheRoom) {
  const auto id = addConference({});
  const auto d = unescapeText(
      property(CdrService::icsForConference(db(), id, "1"), "DESCRIPTION").value_or(""));
  EXPECT_NE(d.find("Room: 5001"), std::string::npos);
  EXPECT_EQ(d.find("PIN"), std::string::npos);
}

TEST_F(IcsTest, ACancelledConferenceIsMarkedCancelled) {
  Conf c;
  c.state = "cancelled";
  const auto id = addConference(c);
  EXPECT_EQ(property(CdrService::icsForConference(db(), id, "1"), "STATUS"), "CANCELLED");
}

TEST_F(IcsTest, AWeeklySeriesIsOneRecurringEventWithItsCancelledOccurrenceExcluded) {
  const auto series = addSeries("weekly", 1, "{MO,WE}", 4, std::nullopt, "Europe/Berlin");
  std::vector<std::int64_t> occurrences;
  // Mondays and Wednesdays 09:00-10:00 Berlin time (UTC+1 in November).
  for (const char* day : {"2026-11-23", "2026-11-25", "2026-11-30", "2026-12-02"}) {
    Conf c;
    c.name = "Stand-up";
    c.pin = "123456";
    c.state = std::string(day) == "2026-11-25" ? "cancelled" : "scheduled";
    c.start = std::string(day) + "T09:00:00+01:00";
    c.end = std::string(day) + "T10:00:00+01:00";
    c.timeZone = "Europe/Berlin";
    c.seriesId = series;
    occurrences.push_back(addConference(c));
  }
  const std::string ics = CdrService::icsForConference(db(), occurrences[2], "1");
  EXPECT_EQ(countLines(ics, "BEGIN:VEVENT"), 1) << ics;
  EXPECT_EQ(property(ics, "UID"), "series-" + std::to_string(series) + "@vcrm");
  EXPECT_EQ(property(ics, "DTSTART;TZID=Europe/Berlin"), "20261123T090000") << ics;
  EXPECT_EQ(property(ics, "DTEND;TZID=Europe/Berlin"), "20261123T100000") << ics;
  EXPECT_EQ(property(ics, "RRULE"), "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE;COUNT=4");
  EXPECT_EQ(countLines(ics, "EXDATE"), 1);
  EXPECT_EQ(property(ics, "EXDATE;TZID=Europe/Berlin"), "20261125T090000");
  EXPECT_EQ(property(ics, "SUMMARY"), "Stand-up");
  EXPECT_FALSE(property(ics, "STATUS")) << "the series as a whole is on";
  const auto d = unescapeText(property(ics, "DESCRIPTION").value_or(""));
  EXPECT_NE(d.find("PIN: 123456"), std::string::npos) << d;
  // Each occurrence has its own room; every room that is still on is listed.
  EXPECT_NE(d.find("2026-11-23 09:00 Room: 5001"), std::string::npos) << d;
  EXPECT_NE(d.find("2026-11-30 09:00 Room: 5003"), std::string::npos) << d;
  EXPECT_EQ(d.find("Room: 5002"), std::string::npos) << "the cancelled one is not listed";
  // Any occurrence gives the same calendar event.
  EXPECT_EQ(property(CdrService::icsForConference(db(), occurrences[0], "1"), "UID"),
            property(ics, "UID"));
}

// The VEVENT blocks of a calendar, each from BEGIN:VEVENT to END:VEVENT.
std::vector<std::string> events(const std::string& ics) {
  std::vector<std::string> out;
  for (std::size_t at = ics.find("BEGIN:VEVENT"); at != std::string::npos; at = ics.find("BEGIN:VEVENT", at + 1)) {
    out.push_back(ics.substr(at, ics.find("END:VEVENT", at) - at));
  }
  return out;
}

TEST_F(IcsTest, MovedAndRenamedOccurrencesAreOverridesNamedByTheirRuleTimes) {
  const auto series = addSeries("weekly", 1, "{MO}", 4, std::nullopt, "Europe/Berlin");
  std::vector<std::int64_t> occurrences;
  // Mondays 09:00-10:00 Berlin time; the first is cancelled, the second moved to 11:00-11:30,
  // the third renamed, the fourth as booked.
  const char* days[] = {"2026-11-23", "2026-11-30", "2026-12-07", "2026-12-14"};
  for (int i = 0; i < 4; ++i) {
    Conf c;
    c.name = i == 2 ? "Stand-up (demo)" : "Stand-up";
    c.state = i == 0 ? "cancelled" : "scheduled";
    c.start = std::string(days[i]) + (i == 1 ? "T11:00:00+01:00" : "T09:00:00+01:00");
    c.end = std::string(days[i]) + (i == 1 ? "T11:30:00+01:00" : "T10:00:00+01:00");
    c.ruleStart = std::string(days[i]) + "T09:00:00+01:00";
    c.ruleEnd = std::string(days[i]) + "T10:00:00+01:00";
    c.timeZone = "Europe/Berlin";
    c.seriesId = series;
    occurrences.push_back(addConference(c));
  }
  const std::string ics = CdrService::icsForConference(db(), occurrences[3], "1");
  const auto ev = events(ics);
  ASSERT_EQ(ev.size(), 3u) << ics;
  // The series: the rule from the first occurrence's rule times, the cancelled one excluded.
  EXPECT_EQ(property(ev[0], "DTSTART;TZID=Europe/Berlin"), "20261123T090000") << ics;
  EXPECT_EQ(property(ev[0], "DTEND;TZID=Europe/Berlin"), "20261123T100000");
  EXPECT_EQ(property(ev[0], "RRULE"), "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=4");
  EXPECT_EQ(property(ev[0], "EXDATE;TZID=Europe/Berlin"), "20261123T090000");
  EXPECT_EQ(property(ev[0], "SUMMARY"), "Stand-up");
  EXPECT_FALSE(property(ev[0], "RECURRENCE-ID;TZID=Europe/Berlin"));
  // The moved one: named by where the rule put it, at its new time.
  const std::string uid = "series-" + std::to_string(series) + "@vcrm";
  EXPECT_EQ(property(ev[1], "UID"), uid);
  EXPECT_EQ(property(ev[1], "RECURRENCE-ID;TZID=Europe/Berlin"), "20261130T090000") << ev[1];
  EXPECT_EQ(property(ev[1], "DTSTART;TZID=Europe/Berlin"), "20261130T110000");
  EXPECT_EQ(property(ev[1], "DTEND;TZID=Europe/Berlin"), "20261130T113000");
  EXPECT_FALSE(property(ev[1], "RRULE")) << "an override does not repeat";
  EXPECT_NE(unescapeText(property(ev[1], "DESCRIPTION").value_or("")).find("Room: "), std::string::npos);
  // The renamed one: same times, its own name.
  EXPECT_EQ(property(ev[2], "UID"), uid);
  EXPECT_EQ(property(ev[2], "RECURRENCE-ID;TZID=Europe/Berlin"), "20261207T090000");
  EXPECT_EQ(property(ev[2], "DTSTART;TZID=Europe/Berlin"), "20261207T090000");
  EXPECT_EQ(property(ev[2], "SUMMARY"), "Stand-up (demo)");
  EXPECT_EQ(countLines(ics, "BEGIN:VEVENT"), countLines(ics, "END:VEVENT"));
}

TEST_F(IcsTest, ADailyUtcSeriesUsesTheUtcFormAndUntil) {
  const auto series = addSeries("daily", 2, "{}", std::nullopt, "2026-11-28T23:59:59Z", "UTC");
  std::vector<std::int64_t> occurrences;
  for (const char* day : {"2026-11-22", "2026-11-24", "2026-11-26", "2026-11-28"}) {
    Conf c;
    c.start = std::string(day) + "T09:00:00Z";
    c.end = std::string(day) + "T09:45:00Z";
    c.state = "cancelled";
    c.seriesId = series;
    occurrences.push_back(addConference(c));
  }
  const std::string ics = CdrService::icsForConference(db(), occurrences[1], "1");
  EXPECT_EQ(property(ics, "DTSTART"), "20261122T090000Z") << ics;
  EXPECT_EQ(property(ics, "DTEND"), "20261122T094500Z");
  EXPECT_EQ(property(ics, "RRULE"), "FREQ=DAILY;INTERVAL=2;UNTIL=20261128T235959Z");
  EXPECT_EQ(property(ics, "STATUS"), "CANCELLED") << "every occurrence was cancelled";
}

TEST_F(IcsTest, TextIsEscapedAndLongLinesFoldedWithoutSplittingCharacters) {
  // 200 characters: commas, a semicolon, a backslash, a newline and multi-byte characters.
  const std::vector<std::string> pieces = {"Budget, plan; review \\ team\nnext line ", "Zürich, ",
                                           "東京, ", "😀 "};
  std::string name;
  int chars = 0;
  for (std::size_t i = 0; chars < 200; ++i) {
    const std::string& p = pieces[i % pieces.size()];
    for (std::size_t k = 0; k < p.size() && chars < 200;) {
      const auto c = static_cast<unsigned char>(p[k]);
      const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      name += p.substr(k, len);
      k += len;
      ++chars;
    }
  }
  Conf c;
  c.name = name;
  const auto id = addConference(c);
  const std::string ics = CdrService::icsForConference(db(), id, "1");

  const auto raw = property(ics, "SUMMARY");
  ASSERT_TRUE(raw);
  EXPECT_NE(raw->find("Budget\\, plan\\; review \\\\ team\\nnext line"), std::string::npos);
  EXPECT_EQ(unescapeText(*raw), name);
  int folded = 0;
  for (const auto& l : physicalLines(ics)) {
    EXPECT_LE(l.size(), 75u) << l;
    EXPECT_TRUE(validUtf8(l)) << "a character was split across lines: " << l;
    folded += (!l.empty() && l[0] == ' ') ? 1 : 0;
  }
  EXPECT_GT(raw->size(), 3u * 75u) << "long enough to need several folds";
  EXPECT_GE(folded, 3);

  // Only 4-byte characters: after "SUMMARY:" (8 octets) every fold point falls inside one.
  Conf emoji;
  for (int i = 0; i < 100; ++i) emoji.name += "😀";
  const std::string ics2 = CdrService::icsForConference(db(), addConference(emoji), "1");
  EXPECT_EQ(property(ics2, "SUMMARY"), emoji.name);
  for (const auto& l : physicalLines(ics2)) {
    EXPECT_LE(l.size(), 75u) << l;
    EXPECT_TRUE(validUtf8(l)) << "a character was split across lines: " << l;
  }
}

TEST_F(IcsTest, AnUnknownConferenceIsNotFound) {
  EXPECT_THROW(CdrService::icsForConference(db(), 424242, "1"), NotFound);
}

}  // namespace
}  // namespace vcrm
