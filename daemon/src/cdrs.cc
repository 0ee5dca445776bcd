#include "vcrm/daemon/cdrs.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <regex>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr int kMaxLimit = 1000;
constexpr int kCsvPageRows = 1000;

// ---- RFC 3339 -------------------------------------------------------------------------------

struct ParsedTime {
  std::string canonical;     // upper-case T and Z, as handed to PostgreSQL
  std::int64_t epochUs = 0;  // for comparing from and to
};

int digits(const std::string& s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// Strict RFC 3339 date-time (section 5.6), with ranges checked so that PostgreSQL never sees a
// value it would refuse. Offsets are limited to +-15:59, PostgreSQL's range.
std::optional<ParsedTime> parseRfc3339(const std::string& text) {
  static const std::regex re(
      R"(^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$)");
  if (text.size() > 64) return std::nullopt;
  std::smatch m;
  if (!std::regex_match(text, m, re)) return std::nullopt;
  const int year = digits(m[1]), month = digits(m[2]), day = digits(m[3]);
  const int hour = digits(m[4]), minute = digits(m[5]), second = digits(m[6]);
  if (year < 1) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(year),
                                        std::chrono::month(static_cast<unsigned>(month)),
                                        std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  int offsetSeconds = 0;
  if (m[9].matched) {
    const int oh = digits(m[10]), om = digits(m[11]);
    if (oh > 15 || om > 59) return std::nullopt;
    offsetSeconds = (oh * 3600 + om * 60) * (m[9] == "-" ? -1 : 1);
  }
  std::string fraction = m[7].matched ? m[7].str() : "";
  fraction = (fraction + "000000").substr(0, 6);

  ParsedTime t;
  t.canonical = text;
  std::transform(t.canonical.begin(), t.canonical.end(), t.canonical.begin(), [](char c) {
    return c == 't' ? 'T' : c == 'z' ? 'Z' : c;
  });
  const std::int64_t days = std::chrono::sys_days(ymd).time_since_epoch().count();
  const std::int64_t seconds =
      days * 86400 + std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second - offsetSeconds;
  t.epochUs = seconds * 1000000 + digits(fraction);
  return t;
}

ParsedTime requireTime(const std::string& name, const std::string& value) {
  auto t = parseRfc3339(value);
  if (!t) {
    throw InvalidInput(name +
                       " must be an RFC 3339 time such as 2026-11-22T09:00:00Z (or "
                       "with an offset, 2026-11-22T10:00:00+01:00)");
  }
  return *t;
}

// ---- Cursors --------------------------------------------------------------------------------

enum class List { Conferences, Participants };

// The last row of a page: its exact end time (microseconds, UTC) and id.
struct Keyset {
  std::string time;
  std::int64_t id = 0;
};

char listTag(List l) {
  return l == List::Conferences ? 'c' : 'p';
}

std::string encodeCursor(List list, const std::string& time, std::int64_t id) {
  return crypto::base64UrlEncode(std::string(1, listTag(list)) + "|" + time + "|" +
                                 std::to_string(id));
}

[[noreturn]] void badCursor() {
  throw InvalidInput(
      "cursor is not one this server issued: pass next_cursor from the previous page "
      "unchanged, or leave cursor out to start from the beginning");
}

// Decodes a cursor of either list (or only of `expected` when given).
std::pair<List, Keyset> decodeCursor(const std::string& cursor,
                                     std::optional<List> expected = std::nullopt) {
  if (cursor.empty() || cursor.size() > 128) badCursor();
  std::string standard = cursor;
  for (char& c : standard) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_';
    if (!ok) badCursor();
    if (c == '-') c = '+';
    if (c == '_') c = '/';
  }
  std::string plain;
  try {
    plain = crypto::base64Decode(standard);
  } catch (const InvalidInput&) {
    badCursor();
  }
  static const std::regex re(
      R"(^([cp])\|(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([1-9]\d{0,18})$)");
  std::smatch m;
  if (!std::regex_match(plain, m, re) || !parseRfc3339(m[2])) badCursor();
  const List list = m[1] == "c" ? List::Conferences : List::Participants;
  if (expected && *expected != list) {
    throw InvalidInput(std::string("cursor belongs to the ") +
                       (list == List::Conferences ? "conference" : "participant") +
                       " CDR list, not this one: leave cursor out to start from the beginning");
  }
  Keyset k;
  k.time = m[2].str();
  const std::string id = m[3].str();
  auto [p, ec] = std::from_chars(id.data(), id.data() + id.size(), k.id);
  if (ec != std::errc() || p != id.data() + id.size()) badCursor();
  return {list, k};
}

void checkQuery(const CdrService::Query& q) {
  if (q.limit < 1 || q.limit > kMaxLimit) {
    throw InvalidInput("limit must be a whole number from 1 to " + std::to_string(kMaxLimit));
  }
  std::optional<ParsedTime> from, to;
  if (q.from) from = requireTime("from", *q.from);
  if (q.to) to = requireTime("to", *q.to);
  if (from && to && from->epochUs > to->epochUs) {
    throw InvalidInput("from must not be later than to");
  }
  if (q.conferenceId && *q.conferenceId < 1) {
    throw InvalidInput("conference_id must be a whole number of 1 or more");
  }
}

std::optional<std::string> canonicalTime(const std::optional<std::string>& t) {
  if (!t) return std::nullopt;
  return parseRfc3339(*t)->canonical;  // checked by checkQuery
}

// ---- Pages ----------------------------------------------------------------------------------

enum class Kind { Int, Text, Time };
struct Column {
  const char* name;
  Kind kind;
};

// In SELECT order; the statement adds one more column, the row's exact keyset time.
constexpr std::array<Column, 17> kConferenceColumns = {{
    {"conference_id", Kind::Int},
    {"name", Kind::Text},
    {"owner", Kind::Text},
    {"bridge_id", Kind::Int},
    {"bridge_name", Kind::Text},
    {"room", Kind::Int},
    {"reserved_start", Kind::Time},
    {"reserved_end", Kind::Time},
    {"actual_start", Kind::Time},
    {"actual_end", Kind::Time},
    {"duration_seconds", Kind::Int},
    {"reserved_duration_seconds", Kind::Int},
    {"ports", Kind::Int},
    {"peak_participants", Kind::Int},
    {"legs", Kind::Int},
    {"end_cause", Kind::Text},
    {"final_state", Kind::Text},
}};

constexpr std::array<Column, 10> kLegColumns = {{
    {"id", Kind::Int},
    {"conference_id", Kind::Int},
    {"conference_name", Kind::Text},
    {"participant_id", Kind::Int},
    {"display_name", Kind::Text},
    {"joined_at", Kind::Time},
    {"left_at", Kind::Time},
    {"duration_seconds", Kind::Int},
    {"end_reason", Kind::Text},
    {"bridge_id", Kind::Int},
}};

std::span<const Column> columnsOf(List list) {
  if (list == List::Conferences) return kConferenceColumns;
  return kLegColumns;
}

// One page in keyset order, after `after` when given. Both lists have the row id in column 0
// and the exact keyset time in the column after the last listed one. The connection goes back
// to the pool before the caller writes anything, so a slow client never holds one.
db::Result fetchPage(db::Pool& pool, List list, const CdrService::Query& q,
                     const std::optional<Keyset>& after, int rows) {
  std::optional<std::string> afterTime;
  std::optional<std::int64_t> afterId;
  if (after) {
    afterTime = after->time;
    afterId = after->id;
  }
  const std::vector<db::Param> params = {
      canonicalTime(q.from), canonicalTime(q.to), q.conferenceId, afterTime, afterId, rows};
  auto c = pool.acquire();
  if (list == List::Conferences) {
    // The redundant `actual_end >= $4` lets the index on actual_end bound the scan.
    return c->exec(
        "SELECT conference_id, name, owner, bridge_id, bridge_name, room, "
        "  rfc3339(reserved_start), rfc3339(reserved_end), rfc3339(actual_start), "
        "  rfc3339(actual_end), "
        "  round(extract(epoch FROM actual_end - actual_start))::bigint, "
        "  round(extract(epoch FROM reserved_end - reserved_start))::bigint, "
        "  ports, peak_participants, legs, end_cause, final_state, "
        "  to_char(actual_end AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
        "FROM conference_cdrs "
        "WHERE ($1::timestamptz IS NULL OR actual_end >= $1::timestamptz) "
        "  AND ($2::timestamptz IS NULL OR actual_end < $2::timestamptz) "
        "  AND ($3::bigint IS NULL OR conference_id = $3::bigint) "
        "  AND ($4::timestamptz IS NULL OR (actual_end >= $4::timestamptz "
        "       AND (actual_end, conference_id) > ($4::timestamptz, $5::bigint))) "
        "ORDER BY actual_end, conference_id "
        "LIMIT $6",
        params);
  }
  return c->exec(
      "SELECT l.id, l.conference_id, c.name, l.participant_id, l.display_name, "
      "  rfc3339(l.joined_at), rfc3339(l.left_at), "
      "  round(extract(epoch FROM l.left_at - l.joined_at))::bigint, l.end_reason, l.bridge_id, "
      "  to_char(l.left_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
      "FROM participant_legs l JOIN conferences c ON c.id = l.conference_id "
      "WHERE l.left_at IS NOT NULL "
      "  AND ($1::timestamptz IS NULL OR l.left_at >= $1::timestamptz) "
      "  AND ($2::timestamptz IS NULL OR l.left_at < $2::timestamptz) "
      "  AND ($3::bigint IS NULL OR l.conference_id = $3::bigint) "
      "  AND ($4::timestamptz IS NULL OR (l.left_at >= $4::timestamptz "
      "       AND (l.left_at, l.id) > ($4::timestamptz, $5::bigint))) "
      "ORDER BY l.left_at, l.id "
      "LIMIT $6",
      params);
}

Keyset keysetOf(const db::Result& r, int row, List list) {
  const int timeCol = static_cast<int>(columnsOf(list).size());
  return Keyset{r.text(row, timeCol), r.int64(row, 0)};
}

json::ObjectPtr page(db::Pool& pool, List list, const CdrService::Query& q, const char* arrayName) {
  checkQuery(q);
  std::optional<Keyset> after;
  if (q.cursor) after = decodeCursor(*q.cursor, list).second;
  // One row more than asked tells whether another page exists.
  const db::Result r = fetchPage(pool, list, q, after, q.limit + 1);
  const auto cols = columnsOf(list);
  const int shown = std::min(r.rows(), q.limit);
  json::ArrayPtr items = new json::Array;
  for (int i = 0; i < shown; ++i) {
    json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    for (std::size_t c = 0; c < cols.size(); ++c) {
      const int col = static_cast<int>(c);
      if (r.isNull(i, col)) {
        o->set(cols[c].name, Poco::Dynamic::Var());
      } else if (cols[c].kind == Kind::Int) {
        o->set(cols[c].name, r.int64(i, col));
      } else {
        o->set(cols[c].name, r.text(i, col));
      }
    }
    items->add(o);
  }
  json::ObjectPtr out = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  out->set(arrayName, items);
  if (r.rows() > q.limit) {
    const Keyset k = keysetOf(r, q.limit - 1, list);
    out->set("next_cursor", encodeCursor(list, k.time, k.id));
  } else {
    out->set("next_cursor", Poco::Dynamic::Var());
  }
  return out;
}

// ---- CSV ------------------------------------------------------------------------------------

// RFC 4180 field. Text that a spreadsheet would run as a formula gets a leading apostrophe
// (OWASP "CSV injection"); numbers and times are ours and never start that way.
void appendCsvField(std::string& line, std::string_view value, bool text) {
  std::string v;
  if (text && !value.empty() &&
      (value[0] == '=' || value[0] == '+' || value[0] == '-' || value[0] == '@' ||
       value[0] == '\t' || value[0] == '\r')) {
    v = "'";
  }
  v += value;
  if (v.find_first_of(",\"\r\n") == std::string::npos) {
    line += v;
    return;
  }
  line += '"';
  for (char c : v) {
    if (c == '"') line += '"';
    line += c;
  }
  line += '"';
}

void exportCsv(db::Pool& pool, List list, const CdrService::Query& query, std::ostream& out) {
  CdrService::Query q = query;
  q.limit = kCsvPageRows;  // the export is the whole selection, whatever the page size asked
  checkQuery(q);
  std::optional<Keyset> after;
  if (q.cursor) after = decodeCursor(*q.cursor, list).second;

  const auto cols = columnsOf(list);
  std::string line;
  for (std::size_t c = 0; c < cols.size(); ++c) {
    if (c) line += ',';
    line += cols[c].name;
  }
  line += "\r\n";
  out << line;
  if (!out) return;

  for (;;) {
    const db::Result r = fetchPage(pool, list, q, after, kCsvPageRows);
    for (int i = 0; i < r.rows(); ++i) {
      line.clear();
      for (std::size_t c = 0; c < cols.size(); ++c) {
        if (c) line += ',';
        const int col = static_cast<int>(c);
        if (!r.isNull(i, col)) appendCsvField(line, r.text(i, col), cols[c].kind == Kind::Text);
      }
      line += "\r\n";
      out.write(line.data(), static_cast<std::streamsize>(line.size()));
      if (!out) return;  // the client is gone: stop reading the database too
    }
    out.flush();
    if (!out || r.rows() < kCsvPageRows) return;
    after = keysetOf(r, r.rows() - 1, list);
  }
}

// ---- iCalendar ------------------------------------------------------------------------------

// RFC 5545 3.3.11 TEXT: backslash, semicolon and comma escaped, any line break as \n; other
// control characters are not allowed in TEXT and are dropped.
std::string icsText(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case ';':
        out += "\\;";
        break;
      case ',':
        out += "\\,";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\n";
        if (i + 1 < v.size() && v[i + 1] == '\n') ++i;
        break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) break;
        out += c;
    }
  }
  return out;
}

// RFC 5545 3.1: content lines longer than 75 octets are folded with CRLF and a space, never
// inside a UTF-8 sequence (a continuation line's leading space counts towards its 75).
void appendLine(std::string& out, std::string_view line) {
  std::size_t room = 75;
  while (line.size() > room) {
    std::size_t cut = room;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
    out.append(line.substr(0, cut));
    out += "\r\n ";
    line.remove_prefix(cut);
    room = 74;
  }
  out.append(line);
  out += "\r\n";
}

bool isUtcZone(const std::string& tz) {
  static const std::set<std::string> utc = {"UTC",  "Etc/UTC",  "Etc/UCT",   "UCT",
                                            "Zulu", "Etc/Zulu", "Universal", "Etc/Universal",
                                            "GMT",  "Etc/GMT",  "Greenwich", "Etc/Greenwich"};
  return utc.count(tz) > 0;
}

// IANA names only ("Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"): anything
// else could break the TZID parameter, so such a series is written in UTC instead.
bool isSafeTzid(const std::string& tz) {
  static const std::regex re(R"(^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$)");
  return tz.size() <= 64 && std::regex_match(tz, re);
}

struct Occurrence {
  std::int64_t id = 0;
  std::string state;
  std::int64_t room = 0;
  std::optional<std::string> pin;
  std::string localStart, localEnd;  // YYYYMMDDTHHMMSS in the series' zone
  std::string utcStart, utcEnd;      // YYYYMMDDTHHMMSSZ
  std::string updated;               // YYYYMMDDTHHMMSSZ
  std::string display;               // YYYY-MM-DD HH:MM in the series' zone, for people
  std::string name;
  // Where the recurrence rule put it (its RECURRENCE-ID), in both forms as above.
  std::string ruleLocalStart, ruleLocalEnd, ruleUtcStart, ruleUtcEnd;
  bool moved() const { return localStart != ruleLocalStart || localEnd != ruleLocalEnd; }
};

std::string roomText(std::int64_t room, const std::optional<std::string>& pin) {
  std::string s = "Room: " + std::to_string(room);
  if (pin) s += "\nPIN: " + *pin;
  return s;
}

}  // namespace

CdrService::CdrService(db::Pool& pool) : pool_(pool) {}

CdrService::Query CdrService::fromParams(const std::map<std::string, std::string>& query) {
  Query q;
  auto get = [&](const char* name) -> std::optional<std::string> {
    auto it = query.find(name);
    if (it == query.end()) return std::nullopt;
    return it->second;
  };
  if (auto v = get("from")) q.from = requireTime("from", *v).canonical;
  if (auto v = get("to")) q.to = requireTime("to", *v).canonical;
  auto whole = [](const std::string& v, std::int64_t lo,
                  std::int64_t hi) -> std::optional<std::int64_t> {
    std::int64_t n = 0;
    if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) return std::nullopt;
    return n;
  };
  if (auto v = get("limit")) {
    auto n = whole(*v, 1, kMaxLimit);
    if (!n) {
      throw InvalidInput("limit must be a whole number from 1 to " + std::to_string(kMaxLimit));
    }
    q.limit = static_cast<int>(*n);
  }
  if (auto v = get("conference_id")) {
    q.conferenceId = whole(*v, 1, INT64_MAX);
    if (!q.conferenceId) {
      throw InvalidInput("conference_id must be a conference id, a whole number of 1 or more");
    }
  }
  if (auto v = get("cursor")) {
    decodeCursor(*v);  // the list it belongs to is checked when it is used
    q.cursor = *v;
  }
  checkQuery(q);
  return q;
}

json::ObjectPtr CdrService::conferences(const Query& q) {
  return page(pool_, List::Conferences, q, "cdrs");
}

json::ObjectPtr CdrService::participants(const Query& q) {
  return page(pool_, List::Participants, q, "legs");
}

void CdrService::conferencesCsv(const Query& q, std::ostream& out) {
  exportCsv(pool_, List::Conferences, q, out);
}

void CdrService::participantsCsv(const Query& q, std::ostream& out) {
  exportCsv(pool_, List::Participants, q, out);
}

// No VTIMEZONE is included: a TZID naming an IANA zone is understood by mainstream calendars
// (Google, Outlook, Apple, Thunderbird), and generating VTIMEZONE rules would duplicate the
// tz database. A series is one VEVENT with its RRULE, EXDATEs for cancelled occurrences, and an
// override VEVENT (RECURRENCE-ID) for each occurrence moved or renamed since it was booked.
std::string CdrService::icsForConference(db::Connection& c, std::int64_t conferenceId,
                                         const std::string& productVersion) {
  const auto conf = c.exec(
      "SELECT id, series_id, name, room, pin, state, "
      "  to_char(starts_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
      "  to_char(ends_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
      "  to_char(updated_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"') "
      "FROM conferences WHERE id = $1",
      {conferenceId});
  if (conf.empty()) {
    throw NotFound("conference " + std::to_string(conferenceId) +
                   " does not exist; list conferences to find its id");
  }
  const std::string name = conf.text(0, 2);

  std::string out;
  const auto line = [&out](const std::string& l) { appendLine(out, l); };
  line("BEGIN:VCALENDAR");
  line("VERSION:2.0");
  line("PRODID:-//vcrm//vcrm " + icsText(productVersion) + "//EN");
  line("CALSCALE:GREGORIAN");
  line("BEGIN:VEVENT");

  if (conf.isNull(0, 1)) {
    line("UID:conference-" + std::to_string(conferenceId) + "@vcrm");
    line("DTSTAMP:" + conf.text(0, 8));
    line("DTSTART:" + conf.text(0, 6));
    line("DTEND:" + conf.text(0, 7));
    line("SEQUENCE:0");
    line("SUMMARY:" + icsText(name));
    line("DESCRIPTION:" + icsText(roomText(conf.int64(0, 3), conf.optText(0, 4))));
    if (conf.text(0, 5) == "cancelled") line("STATUS:CANCELLED");
  } else {
    const std::int64_t seriesId = conf.int64(0, 1);
    const auto s = c.exec(
        "SELECT frequency, interval_n, array_to_string(weekdays, ','), count_n, "
        "  to_char(until_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), time_zone "
        "FROM conference_series WHERE id = $1",
        {seriesId});
    if (s.empty()) throw NotFound("series " + std::to_string(seriesId) + " does not exist");
    const auto occ = c.exec(
        "SELECT c.id, c.state, c.room, c.pin, "
        "  to_char(c.starts_at AT TIME ZONE s.time_zone, 'YYYYMMDD\"T\"HH24MISS'), "
        "  to_char(c.ends_at AT TIME ZONE s.time_zone, 'YYYYMMDD\"T\"HH24MISS'), "
        "  to_char(c.starts_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
        "  to_char(c.ends_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
        "  to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
        "  to_char(c.starts_at AT TIME ZONE s.time_zone, 'YYYY-MM-DD HH24:MI'), c.name, "
        "  to_char(c.rule_start AT TIME ZONE s.time_zone, 'YYYYMMDD\"T\"HH24MISS'), "
        "  to_char(c.rule_end AT TIME ZONE s.time_zone, 'YYYYMMDD\"T\"HH24MISS'), "
        "  to_char(c.rule_start AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
        "  to_char(c.rule_end AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS\"Z\"') "
        "FROM conferences c JOIN conference_series s ON s.id = c.series_id "
        "WHERE c.series_id = $1 ORDER BY c.rule_start, c.id",
        {seriesId});
    std::vector<Occurrence> all;
    all.reserve(static_cast<std::size_t>(occ.rows()));
    for (int i = 0; i < occ.rows(); ++i) {
      all.push_back({occ.int64(i, 0), occ.text(i, 1), occ.int64(i, 2), occ.optText(i, 3),
                     occ.text(i, 4), occ.text(i, 5), occ.text(i, 6), occ.text(i, 7), occ.text(i, 8),
                     occ.text(i, 9), occ.text(i, 10), occ.text(i, 11), occ.text(i, 12), occ.text(i, 13),
                     occ.text(i, 14)});
    }
    // The rule starts where it put the first occurrence (the requested conference is one of them).
    const Occurrence& first = all.front();
    const std::string tz = s.text(0, 5);
    const bool utc = isUtcZone(tz) || !isSafeTzid(tz);
    auto when = [&](const std::string& prop, const std::string& local, const std::string& z) {
      return utc ? prop + ":" + z : prop + ";TZID=" + tz + ":" + local;
    };

    std::string stamp = first.updated;
    std::vector<const Occurrence*> live;
    for (const auto& o : all) {
      stamp = std::max(stamp, o.updated);  // same fixed-width format: text order is time order
      if (o.state != "cancelled") live.push_back(&o);
    }

    std::string rule = std::string("RRULE:FREQ=") +
                       (s.text(0, 0) == "weekly" ? "WEEKLY" : "DAILY") +
                       ";INTERVAL=" + std::to_string(s.int64(0, 1));
    if (s.text(0, 0) == "weekly") {
      static const std::set<std::string> kDays = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
      std::string byDay;
      std::string item;
      const std::string list = s.text(0, 2) + ",";
      for (char ch : list) {
        if (ch != ',') {
          item += ch;
          continue;
        }
        if (kDays.count(item)) byDay += (byDay.empty() ? "" : ",") + item;
        item.clear();
      }
      if (!byDay.empty()) rule += ";BYDAY=" + byDay;
    }
    // COUNT and UNTIL must not both appear (RFC 5545 3.3.10); COUNT is what was booked.
    if (!s.isNull(0, 3)) {
      rule += ";COUNT=" + std::to_string(s.int64(0, 3));
    } else if (!s.isNull(0, 4)) {
      rule += ";UNTIL=" + s.text(0, 4);  // UTC form, as required with a TZID DTSTART
    }

    // Every occurrence has its own room; list them unless they all share room and PIN.
    std::string description;
    const bool sameRoom =
        !live.empty() && std::all_of(live.begin(), live.end(), [&](const Occurrence* o) {
          return o->room == live.front()->room && o->pin == live.front()->pin;
        });
    if (live.empty()) {
      description = roomText(first.room, first.pin);
    } else if (sameRoom) {
      description = roomText(live.front()->room, live.front()->pin);
    } else {
      description = "Rooms (" + tz + "):";
      for (const Occurrence* o : live) {
        description += "\n" + o->display + " Room: " + std::to_string(o->room);
        if (o->pin) description += " PIN: " + *o->pin;
      }
    }

    const std::string uid = "UID:series-" + std::to_string(seriesId) + "@vcrm";
    line(uid);
    line("DTSTAMP:" + stamp);
    line(when("DTSTART", first.ruleLocalStart, first.ruleUtcStart));
    line(when("DTEND", first.ruleLocalEnd, first.ruleUtcEnd));
    line(rule);
    if (!live.empty()) {
      for (const auto& o : all) {
        if (o.state == "cancelled") line(when("EXDATE", o.ruleLocalStart, o.ruleUtcStart));
      }
    }
    line("SEQUENCE:0");
    line("SUMMARY:" + icsText(first.name));
    line("DESCRIPTION:" + icsText(description));
    if (live.empty()) line("STATUS:CANCELLED");
    // An occurrence moved, resized or renamed since the rule placed it is an override: the same
    // UID, its RECURRENCE-ID, and its own times, name and room.
    if (!live.empty()) {
      for (const Occurrence* o : live) {
        if (!o->moved() && o->name == first.name) continue;
        line("END:VEVENT");
        line("BEGIN:VEVENT");
        line(uid);
        line("DTSTAMP:" + o->updated);
        line(when("RECURRENCE-ID", o->ruleLocalStart, o->ruleUtcStart));
        line(when("DTSTART", o->localStart, o->utcStart));
        line(when("DTEND", o->localEnd, o->utcEnd));
        line("SEQUENCE:0");
        line("SUMMARY:" + icsText(o->name));
        line("DESCRIPTION:" + icsText(roomText(o->room, o->pin)));
      }
    }
  }
  line("END:VEVENT");
  line("END:VCALENDAR");

  return out;
}

}  // namespace vcrm
