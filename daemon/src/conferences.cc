#include "vcrm/daemon/conferences.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <regex>
#include <set>
#include <system_error>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "conferences";

const std::regex& rfc3339Pattern() {
  static const std::regex p(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$)");
  return p;
}

std::string requireTime(const std::string& field, const std::string& value) {
  if (!std::regex_match(value, rfc3339Pattern())) {
    throw InvalidInput("field \"" + field + "\" must be an RFC 3339 time such as 2026-11-22T09:00:00Z or "
                       "2026-11-22T10:00:00+01:00",
                       "invalid_time");
  }
  return value;
}

// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t daysFromCivil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::string civilFromDays(std::int64_t z) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y + (m <= 2)), m, d);
  return buf;
}

int isoWeekday(std::int64_t days) { return static_cast<int>(((days + 3) % 7 + 7) % 7) + 1; }

const std::vector<std::string>& weekdayNames() {
  static const std::vector<std::string> n = {"MO", "TU", "WE", "TH", "FR", "SA", "SU"};
  return n;
}

std::string pgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ",\"" : "\"") + items[i] + "\"";
  return out + "}";
}

Poco::Dynamic::Var optVar(const std::optional<std::string>& v) {
  return v ? Poco::Dynamic::Var(*v) : Poco::Dynamic::Var();
}

std::int64_t randomRoom() {
  const auto b = crypto::randomBytes(8);
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return static_cast<std::int64_t>(100000000 + v % 900000000);  // nine digits
}

// Janus event time if it is plausible, else now (clocks on bridges can be wrong).
std::optional<std::string> eventTime(std::int64_t us) {
  const auto nowUs = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  if (us <= 0 || std::llabs(nowUs - us) > 3600LL * 1000000) return std::nullopt;
  return std::to_string(static_cast<double>(us) / 1e6);
}

}  // namespace

ConferenceService::ConferenceService(db::Pool& pool, Logger& log, EventBus& bus, BridgeService& bridges,
                                     Options options)
    : pool_(pool), log_(log), bus_(bus), bridges_(bridges), options_(options) {}

// ---------------------------------------------------------------------------------------------
// Admission and placement

std::optional<ConferenceService::Placement> ConferenceService::place(
    db::Transaction& tx, const std::string& start, const std::string& end, int ports,
    std::optional<std::int64_t> bridgeId, std::optional<std::string> pool,
    std::optional<std::int64_t> exclude, std::optional<std::int64_t> avoidBridge, std::string* refusal) {
  // Locking the candidate bridges serialises concurrent bookings on them: two requests can
  // never both see the same free ports. Ordered by id so lockers never deadlock.
  auto candidates = tx.exec(
      "SELECT id, name, capacity_ports, state, health FROM bridges "
      "WHERE ($1::bigint IS NULL OR id = $1) AND ($2::text IS NULL OR pool = $2) "
      "  AND ($3::bigint IS NULL OR id <> $3) ORDER BY id FOR UPDATE",
      {bridgeId, pool, avoidBridge});
  std::optional<Placement> best;
  double bestLoad = 2.0;
  std::string closest;
  int closestFree = -1;
  for (int i = 0; i < candidates.rows(); ++i) {
    const std::int64_t id = candidates.int64(i, 0);
    const std::string name = candidates.text(i, 1);
    const int capacity = static_cast<int>(candidates.int64(i, 2));
    if (candidates.text(i, 3) != "enabled") {
      if (bridgeId) *refusal = "bridge " + name + " is " + candidates.text(i, 3) + " and takes no new bookings";
      continue;
    }
    if (candidates.text(i, 4) == "down") {
      if (bridgeId) *refusal = "bridge " + name + " is down";
      continue;
    }
    // The peak of reserved ports over [start, end) is reached at `start` or where another
    // booking begins inside the window.
    auto peak = tx.exec(
        "WITH o AS (SELECT starts_at, ends_at, ports FROM conferences "
        "  WHERE bridge_id = $1 AND state IN ('scheduled', 'starting', 'active') "
        "    AND starts_at < $3::timestamptz AND ends_at > $2::timestamptz "
        "    AND ($4::bigint IS NULL OR id <> $4)), "
        " pts AS (SELECT $2::timestamptz AS t UNION SELECT starts_at FROM o WHERE starts_at > $2::timestamptz) "
        "SELECT rfc3339(p.t), coalesce(sum(o.ports), 0) AS used FROM pts p "
        "  LEFT JOIN o ON o.starts_at <= p.t AND o.ends_at > p.t "
        "GROUP BY p.t ORDER BY used DESC, p.t LIMIT 1",
        {id, start, end, exclude});
    const int used = static_cast<int>(peak.int64(0, 1));
    const int free = capacity - used;
    if (free >= ports) {
      const double load = static_cast<double>(used) / capacity;
      if (load < bestLoad) {
        bestLoad = load;
        best = Placement{id, name};
      }
    } else if (free > closestFree) {
      closestFree = free;
      closest = "bridge " + name + " has only " + std::to_string(std::max(free, 0)) + " of " +
                std::to_string(capacity) + " ports free at " + peak.text(0, 0);
    }
  }
  if (!best && refusal->empty()) {
    if (!closest.empty()) {
      *refusal = closest;
    } else {
      *refusal = pool ? "no enabled bridge that is up in pool \"" + *pool + "\""
                      : std::string("no enabled bridge that is up is registered");
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Booking

bool ConferenceService::knownTimeZone(db::Connection& c, const std::string& tz) {
  // pg_timezone_names reads the whole zone database (tens of ms per query): read it once.
  auto zones = timeZones_.lock();
  if (zones->empty()) {
    auto r = c.exec("SELECT name FROM pg_timezone_names");
    for (int i = 0; i < r.rows(); ++i) zones->insert(r.text(i, 0));
  }
  return zones->count(tz) > 0;
}

json::ObjectPtr ConferenceService::create(const std::string& owner, const json::ObjectPtr& body) {
  json::onlyKeys(body, {"name", "start", "end", "duration_minutes", "start_now", "time_zone", "ports", "pin",
                        "bridge_id", "pool", "auto_end_when_empty", "recurrence"});
  const std::string name = json::requireString(body, "name", 200);
  if (name.empty()) throw InvalidInput("field \"name\" must not be empty", "invalid_field");
  const bool startNow = json::optBool(body, "start_now").value_or(false);
  const auto startText = json::optString(body, "start", 64);
  const auto endText = json::optString(body, "end", 64);
  const auto duration = json::optInt(body, "duration_minutes");
  const std::string tz = json::optString(body, "time_zone", 64).value_or("UTC");
  const auto portsOpt = json::optInt(body, "ports");
  const auto pin = json::optString(body, "pin", 12);
  const auto bridgeId = json::optInt(body, "bridge_id");
  const auto pool = json::optString(body, "pool", 32);
  const bool autoEnd = json::optBool(body, "auto_end_when_empty").value_or(false);

  if (!portsOpt) throw InvalidInput("field \"ports\" is required", "missing_field");
  if (*portsOpt < 1 || *portsOpt > 100000) throw InvalidInput("ports must be from 1 to 100000", "invalid_field");
  const int ports = static_cast<int>(*portsOpt);
  if (startNow == startText.has_value()) {
    throw InvalidInput("give either \"start\" (an RFC 3339 time) or \"start_now\": true", "invalid_field");
  }
  if (endText.has_value() == duration.has_value()) {
    throw InvalidInput("give either \"end\" or \"duration_minutes\"", "invalid_field");
  }
  if (duration && (*duration < 1 || *duration > 7 * 24 * 60)) {
    throw InvalidInput("duration_minutes must be from 1 to 10080 (7 days)", "invalid_field");
  }
  if (pin && !std::regex_match(*pin, std::regex("^[0-9]{4,12}$"))) {
    throw InvalidInput("pin must be 4 to 12 digits", "invalid_field");
  }
  if (startText) requireTime("start", *startText);
  if (endText) requireTime("end", *endText);

  std::vector<std::int64_t> ids;
  std::optional<std::int64_t> seriesId;
  {
  auto c = pool_.acquire();
  if (!knownTimeZone(*c, tz)) {
    throw InvalidInput("time_zone \"" + tz + "\" is not a known IANA time zone (e.g. Europe/Berlin, UTC)",
                       "invalid_time_zone");
  }
  // PostgreSQL does the time arithmetic (and time zone rules) for us.
  auto times = c->exec(
      "SELECT rfc3339(s), rfc3339(coalesce($2::timestamptz, s + make_interval(mins => $3::int))), "
      "  extract(epoch FROM coalesce($2::timestamptz, s + make_interval(mins => $3::int)) - s)::bigint, "
      "  s < now() - interval '5 minutes', "
      "  to_char(s AT TIME ZONE $4, 'YYYY-MM-DD'), to_char(s AT TIME ZONE $4, 'HH24:MI:SS.US') "
      "FROM (SELECT CASE WHEN $1::text IS NULL THEN date_trunc('second', now()) "
      "             ELSE $1::timestamptz END AS s) x",
      {startText, endText, duration, tz});
  const std::string start = times.text(0, 0);
  const std::string end = times.text(0, 1);
  const std::int64_t seconds = times.int64(0, 2);
  if (seconds <= 0) throw InvalidInput("the end must be after the start", "invalid_time");
  if (seconds > 7 * 24 * 3600) throw InvalidInput("a conference can last at most 7 days", "invalid_time");
  if (times.boolean(0, 3)) {
    throw Unprocessable("the start " + start + " is in the past; use \"start_now\": true to start at once",
                        "start_in_past");
  }

  // Occurrences: one, or the expansion of the recurrence in local wall-clock time.
  std::vector<std::pair<std::string, std::string>> occurrences{{start, end}};
  json::ObjectPtr rec;
  if (body->has("recurrence") && !body->isNull("recurrence")) {
    rec = body->getObject("recurrence");
    if (!rec) throw InvalidInput("field \"recurrence\" must be an object", "invalid_field");
    if (startNow) throw InvalidInput("a recurring series needs a \"start\" time", "invalid_field");
    json::onlyKeys(rec, {"frequency", "interval", "weekdays", "count", "until"});
    const std::string freq = json::requireString(rec, "frequency", 16);
    if (freq != "daily" && freq != "weekly") {
      throw InvalidInput("recurrence.frequency must be \"daily\" or \"weekly\"", "invalid_field");
    }
    const auto interval = json::optInt(rec, "interval").value_or(1);
    if (interval < 1 || interval > 52) throw InvalidInput("recurrence.interval must be from 1 to 52", "invalid_field");
    const auto count = json::optInt(rec, "count");
    const auto until = json::optString(rec, "until", 64);
    if (count.has_value() == until.has_value()) {
      throw InvalidInput("recurrence needs exactly one of \"count\" or \"until\"", "invalid_field");
    }
    if (count && (*count < 1 || *count > options_.maxOccurrences)) {
      throw InvalidInput("recurrence.count must be from 1 to " + std::to_string(options_.maxOccurrences),
                         "invalid_field");
    }
    if (until) requireTime("recurrence.until", *until);
    const std::string localDate = times.text(0, 4);
    const std::string localTime = times.text(0, 5);
    const std::int64_t startDays = daysFromCivil(std::stoll(localDate.substr(0, 4)),
                                                 static_cast<unsigned>(std::stoi(localDate.substr(5, 2))),
                                                 static_cast<unsigned>(std::stoi(localDate.substr(8, 2))));
    std::set<int> days;
    auto weekdays = json::optStringArray(rec, "weekdays", 7).value_or(std::vector<std::string>{});
    if (freq == "daily" && !weekdays.empty()) {
      throw InvalidInput("recurrence.weekdays is only for weekly series", "invalid_field");
    }
    for (const auto& w : weekdays) {
      auto it = std::find(weekdayNames().begin(), weekdayNames().end(), w);
      if (it == weekdayNames().end()) {
        throw InvalidInput("recurrence.weekdays takes MO, TU, WE, TH, FR, SA, SU; got \"" + w.substr(0, 8) + "\"",
                           "invalid_field");
      }
      days.insert(static_cast<int>(it - weekdayNames().begin()) + 1);
    }
    if (days.empty()) days.insert(isoWeekday(startDays));
    const std::size_t limit = count ? static_cast<std::size_t>(*count)
                                    : static_cast<std::size_t>(options_.maxOccurrences) + 1;
    std::vector<std::string> locals;
    if (freq == "daily") {
      for (std::int64_t k = 0; locals.size() < limit; ++k) {
        locals.push_back(civilFromDays(startDays + k * interval) + " " + localTime);
      }
    } else {
      const std::int64_t week0 = startDays - (isoWeekday(startDays) - 1);
      for (std::int64_t w = 0; locals.size() < limit; ++w) {
        for (int d : days) {
          const std::int64_t day = week0 + w * 7 * interval + (d - 1);
          if (day < startDays || locals.size() >= limit) continue;
          locals.push_back(civilFromDays(day) + " " + localTime);
        }
      }
    }
    auto conv = c->exec(
        "SELECT rfc3339(x::timestamp AT TIME ZONE $2), "
        "  rfc3339((x::timestamp AT TIME ZONE $2) + make_interval(secs => $3::bigint)), "
        "  ($4::timestamptz IS NOT NULL AND (x::timestamp AT TIME ZONE $2) > $4::timestamptz) "
        "FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
        {pgTextArray(locals), tz, seconds, until});
    occurrences.clear();
    for (int i = 0; i < conv.rows(); ++i) {
      if (conv.boolean(i, 2)) break;
      occurrences.emplace_back(conv.text(i, 0), conv.text(i, 1));
    }
    if (occurrences.size() > static_cast<std::size_t>(options_.maxOccurrences)) {
      throw InvalidInput("the series would have more than " + std::to_string(options_.maxOccurrences) +
                             " occurrences; use count or an earlier until",
                         "too_many_occurrences");
    }
    if (occurrences.empty()) throw InvalidInput("the series has no occurrence before \"until\"", "invalid_field");
  }

  db::Transaction tx(*c);
  if (rec) {
    auto s = tx.exec(
        "INSERT INTO conference_series (frequency, interval_n, weekdays, count_n, until_at, time_zone) "
        "VALUES ($1, $2, $3::text[], $4, $5::timestamptz, $6) RETURNING id",
        {json::requireString(rec, "frequency"), json::optInt(rec, "interval").value_or(1),
         pgTextArray(json::optStringArray(rec, "weekdays", 7).value_or(std::vector<std::string>{})),
         json::optInt(rec, "count"), json::optString(rec, "until", 64), tz});
    seriesId = s.int64(0, 0);
  }
  for (const auto& [s, e] : occurrences) {
    std::string refusal;
    auto placement = place(tx, s, e, ports, bridgeId, pool, std::nullopt, std::nullopt, &refusal);
    if (!placement) {
      throw Conflict("cannot book " + std::to_string(ports) + " ports from " + s + " to " + e + ": " + refusal,
                     "no_capacity");
    }
    for (int attempt = 0;; ++attempt) {
      tx.exec("SAVEPOINT room");
      try {
        auto r = tx.exec(
            "INSERT INTO conferences (series_id, name, owner, starts_at, ends_at, time_zone, ports, pin, pool, "
            "  requested_bridge_id, bridge_id, room, room_secret, auto_end_when_empty, rule_start, rule_end) "
            "VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9, $10, $11, $12, $13, $14, "
            "  CASE WHEN $1::bigint IS NOT NULL THEN $4::timestamptz END, "
            "  CASE WHEN $1::bigint IS NOT NULL THEN $5::timestamptz END) "
            "RETURNING id",
            {seriesId, name, owner, s, e, tz, ports, pin, pool, bridgeId, placement->bridgeId, randomRoom(),
             crypto::base64UrlEncode(crypto::randomBytes(18)), autoEnd});
        ids.push_back(r.int64(0, 0));
        break;
      } catch (const DbError& err) {
        // A random room number collided: vanishingly rare, so retrying is enough.
        if (err.sqlState() != "23505" || attempt > 3) throw;
        tx.exec("ROLLBACK TO SAVEPOINT room");
      }
    }
  }
  tx.commit();
  }
  for (auto id : ids) publishConference(id);
  log_.info(kComponent, "BOOKED",
            "booked \"" + name + "\" by " + owner + ": " + std::to_string(ids.size()) + " occurrence(s)",
            std::to_string(ids.front()));
  wakeScheduler();
  auto c = pool_.acquire();
  if (!seriesId) return conferenceJson(*c, ids.front(), false);
  json::ObjectPtr out = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  out->set("series_id", *seriesId);
  json::ArrayPtr arr = new json::Array;
  for (auto id : ids) arr->add(conferenceJson(*c, id, false));
  out->set("conferences", arr);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

json::ObjectPtr ConferenceService::conferenceJson(db::Connection& c, std::int64_t id, bool withParticipants) {
  auto r = c.exec(
      "SELECT c.id, c.series_id, c.name, c.owner, rfc3339(c.starts_at), rfc3339(c.ends_at), c.time_zone, "
      "  to_char(c.starts_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
      "  to_char(c.ends_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
      "  c.ports, c.pin, c.pool, c.bridge_id, b.name, c.room, c.state, c.end_cause, rfc3339(c.actual_start), "
      "  rfc3339(c.actual_end), c.peak_participants, c.auto_end_when_empty, c.requested_bridge_id, "
      "  (SELECT count(*) FROM participant_legs l WHERE l.conference_id = c.id AND l.left_at IS NULL), "
      "  s.frequency, s.interval_n, s.weekdays, s.count_n, rfc3339(s.until_at) "
      "FROM conferences c LEFT JOIN bridges b ON b.id = c.bridge_id "
      "LEFT JOIN conference_series s ON s.id = c.series_id WHERE c.id = $1",
      {id});
  if (r.empty()) throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("id", r.int64(0, 0));
  o->set("series_id", r.isNull(0, 1) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.int64(0, 1)));
  o->set("name", r.text(0, 2));
  o->set("owner", r.text(0, 3));
  o->set("start", r.text(0, 4));
  o->set("end", r.text(0, 5));
  o->set("time_zone", r.text(0, 6));
  o->set("start_local", r.text(0, 7));
  o->set("end_local", r.text(0, 8));
  o->set("ports", r.int64(0, 9));
  o->set("pin", optVar(r.optText(0, 10)));
  o->set("pool", optVar(r.optText(0, 11)));
  o->set("bridge_id", r.isNull(0, 12) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.int64(0, 12)));
  o->set("bridge_name", optVar(r.optText(0, 13)));
  o->set("room", r.int64(0, 14));
  o->set("state", r.text(0, 15));
  o->set("end_cause", optVar(r.optText(0, 16)));
  o->set("actual_start", optVar(r.optText(0, 17)));
  o->set("actual_end", optVar(r.optText(0, 18)));
  o->set("peak_participants", r.int64(0, 19));
  o->set("auto_end_when_empty", r.boolean(0, 20));
  o->set("requested_bridge_id", r.isNull(0, 21) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.int64(0, 21)));
  o->set("participant_count", r.int64(0, 22));
  if (!r.isNull(0, 23)) {
    json::ObjectPtr rec = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    rec->set("frequency", r.text(0, 23));
    rec->set("interval", r.int64(0, 24));
    json::ArrayPtr wd = new json::Array;
    std::string w = r.text(0, 25);
    for (const auto& name : weekdayNames()) {
      if (w.find(name) != std::string::npos) wd->add(name);
    }
    rec->set("weekdays", wd);
    rec->set("count", r.isNull(0, 26) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.int64(0, 26)));
    rec->set("until", optVar(r.optText(0, 27)));
    o->set("recurrence", rec);
  }
  if (withParticipants) {
    auto legs = c.exec(
        "SELECT participant_id, id, display_name, rfc3339(joined_at), publishing, muted "
        "FROM participant_legs WHERE conference_id = $1 AND left_at IS NULL ORDER BY joined_at, id",
        {id});
    json::ArrayPtr arr = new json::Array;
    for (int i = 0; i < legs.rows(); ++i) {
      json::ObjectPtr p = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
      p->set("id", legs.int64(i, 0));
      p->set("leg_id", legs.int64(i, 1));
      p->set("display_name", legs.text(i, 2));
      p->set("joined_at", legs.text(i, 3));
      p->set("publishing", legs.boolean(i, 4));
      p->set("muted", legs.boolean(i, 5));
      arr->add(p);
    }
    o->set("participants", arr);
  }
  return o;
}

json::ObjectPtr ConferenceService::get(std::int64_t id) {
  auto c = pool_.acquire();
  return conferenceJson(*c, id, true);
}

json::ObjectPtr ConferenceService::list(const std::map<std::string, std::string>& query) {
  auto param = [&](const std::string& k) -> std::optional<std::string> {
    auto it = query.find(k);
    if (it == query.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  const auto from = param("from");
  const auto to = param("to");
  if (from) requireTime("from", *from);
  if (to) requireTime("to", *to);
  const auto state = param("state");
  static const std::set<std::string> states = {"scheduled", "starting", "active", "ended", "failed", "cancelled", "live"};
  if (state && !states.count(*state)) {
    throw InvalidInput("state must be one of scheduled, starting, active, ended, failed, cancelled, live",
                       "invalid_field");
  }
  int limit = 200;
  if (auto l = param("limit")) {
    if (!std::regex_match(*l, std::regex("^[0-9]{1,4}$")) || std::stoi(*l) < 1 || std::stoi(*l) > 1000) {
      throw InvalidInput("limit must be a whole number from 1 to 1000", "invalid_field");
    }
    limit = std::stoi(*l);
  }
  std::optional<std::int64_t> series;
  if (auto s = param("series_id")) {
    if (!std::regex_match(*s, std::regex("^[0-9]{1,18}$"))) throw InvalidInput("series_id must be a number");
    series = std::stoll(*s);
  }
  auto c = pool_.acquire();
  auto r = c->exec(
      "SELECT id FROM conferences WHERE ($1::timestamptz IS NULL OR ends_at > $1::timestamptz) "
      "  AND ($2::timestamptz IS NULL OR starts_at < $2::timestamptz) "
      "  AND ($3::text IS NULL OR state = $3 OR ($3 = 'live' AND state IN ('starting', 'active'))) "
      "  AND ($4::text IS NULL OR owner = $4) AND ($5::bigint IS NULL OR series_id = $5) "
      "ORDER BY starts_at, id LIMIT $6",
      {from, to, state, param("owner"), series, limit});
  json::ArrayPtr arr = new json::Array;
  for (int i = 0; i < r.rows(); ++i) arr->add(conferenceJson(*c, r.int64(i, 0), false));
  json::ObjectPtr o = new json::Object;
  o->set("conferences", arr);
  return o;
}

json::ObjectPtr ConferenceService::dashboard() {
  auto c = pool_.acquire();
  auto now = c->exec(
      "SELECT (SELECT count(*) FROM conferences WHERE state IN ('starting', 'active')), "
      "  (SELECT count(*) FROM conferences WHERE state = 'starting'), "
      "  (SELECT count(*) FROM participant_legs WHERE left_at IS NULL), "
      "  (SELECT count(*) FROM bridges WHERE state <> 'disabled' AND health = 'up'), "
      "  (SELECT count(*) FROM bridges WHERE state <> 'disabled' AND health = 'down'), "
      "  (SELECT count(*) FROM bridges WHERE state <> 'disabled')");
  // A conference or leg counts in every hour it overlaps.
  auto hours = c->exec(
      "SELECT rfc3339(h), "
      "  (SELECT count(*) FROM conferences x WHERE x.actual_start IS NOT NULL "
      "     AND x.actual_start < h + interval '1 hour' AND coalesce(x.actual_end, now()) > h), "
      "  (SELECT count(*) FROM participant_legs l WHERE l.joined_at < h + interval '1 hour' "
      "     AND coalesce(l.left_at, now()) > h) "
      "FROM generate_series(date_trunc('hour', now()) - interval '23 hours', date_trunc('hour', now()), "
      "                     interval '1 hour') AS h ORDER BY h");
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("live_conferences", now.int64(0, 0));
  o->set("starting_conferences", now.int64(0, 1));
  o->set("participants_now", now.int64(0, 2));
  json::ObjectPtr b = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  b->set("up", now.int64(0, 3));
  b->set("down", now.int64(0, 4));
  b->set("total", now.int64(0, 5));
  o->set("bridges", b);
  json::ArrayPtr arr = new json::Array;
  for (int i = 0; i < hours.rows(); ++i) {
    json::ObjectPtr h = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    h->set("start", hours.text(i, 0));
    h->set("conferences", hours.int64(i, 1));
    h->set("participants", hours.int64(i, 2));
    arr->add(h);
  }
  o->set("hours", arr);
  return o;
}

// ---------------------------------------------------------------------------------------------
// Changes by users

namespace {

BookingChanges bookingChanges(const json::ObjectPtr& body) {
  json::onlyKeys(body, {"name", "start", "end", "duration_minutes", "ports", "pin", "auto_end_when_empty"});
  BookingChanges ch;
  ch.name = json::optString(body, "name", 200);
  if (ch.name && ch.name->empty()) throw InvalidInput("name must not be empty", "invalid_field");
  ch.start = json::optString(body, "start", 64);
  ch.end = json::optString(body, "end", 64);
  ch.duration = json::optInt(body, "duration_minutes");
  if (ch.end && ch.duration) throw InvalidInput("give either \"end\" or \"duration_minutes\"", "invalid_field");
  if (ch.start) requireTime("start", *ch.start);
  if (ch.end) requireTime("end", *ch.end);
  if (ch.duration && (*ch.duration < 1 || *ch.duration > 7 * 24 * 60)) {
    throw InvalidInput("duration_minutes must be from 1 to 10080 (7 days)", "invalid_field");
  }
  ch.ports = json::optInt(body, "ports");
  if (ch.ports && (*ch.ports < 1 || *ch.ports > 100000)) throw InvalidInput("ports must be from 1 to 100000");
  ch.pin = json::optString(body, "pin", 12);
  if (ch.pin && !std::regex_match(*ch.pin, std::regex("^[0-9]{4,12}$"))) {
    throw InvalidInput("pin must be 4 to 12 digits");
  }
  ch.autoEnd = json::optBool(body, "auto_end_when_empty");
  return ch;
}

// The booking's new start and end after `ch`, from its current ones, checked: the end after the
// start, at most 7 days, a new start not in the past (a live one keeps its start), the end ahead.
std::pair<std::string, std::string> changedWindow(db::Transaction& tx, const BookingChanges& ch,
                                                  const std::string& curStart, const std::string& curEnd,
                                                  bool live) {
  auto t = tx.exec(
      "SELECT rfc3339(s), rfc3339(coalesce($2::timestamptz, "
      "  CASE WHEN $3::int IS NULL THEN s + ($5::timestamptz - $4::timestamptz) "
      "       ELSE s + make_interval(mins => $3::int) END)) "
      "FROM (SELECT coalesce($1::timestamptz, $4::timestamptz) AS s) x",
      {ch.start, ch.end, ch.duration, curStart, curEnd});
  std::string start = t.text(0, 0);
  std::string end = t.text(0, 1);
  auto chk = tx.exec(
      "SELECT $2::timestamptz > $1::timestamptz, $2::timestamptz - $1::timestamptz <= interval '7 days', "
      "  $1::timestamptz >= now() - interval '5 minutes' OR $3, $2::timestamptz > now()",
      {start, end, live});
  if (!chk.boolean(0, 0)) throw InvalidInput("the end must be after the start", "invalid_time");
  if (!chk.boolean(0, 1)) throw InvalidInput("a conference can last at most 7 days", "invalid_time");
  if (!chk.boolean(0, 2)) throw Unprocessable("the new start is in the past", "start_in_past");
  if (!chk.boolean(0, 3)) throw Unprocessable("the new end is in the past", "end_in_past");
  return {std::move(start), std::move(end)};
}

}  // namespace

std::optional<ConferenceService::Placement> ConferenceService::rebook(
    db::Transaction& tx, std::int64_t id, const BookingChanges& ch, const std::string& start, const std::string& end,
    int ports, std::optional<std::int64_t> current, bool mayMove, const std::optional<std::string>& pool,
    std::string* refusal) {
  // Stay where it is if it fits; else, if it may move, anywhere in its pool.
  auto placement = place(tx, start, end, ports, current, std::nullopt, id, std::nullopt, refusal);
  if (!placement && mayMove) {
    std::string other;
    placement = place(tx, start, end, ports, std::nullopt, pool, id, std::nullopt, &other);
  }
  if (placement) {
    tx.exec(
        "UPDATE conferences SET name = coalesce($2, name), starts_at = $3::timestamptz, ends_at = $4::timestamptz, "
        "  ports = $5, pin = coalesce($6, pin), bridge_id = $7, "
        "  auto_end_when_empty = coalesce($8, auto_end_when_empty), updated_at = now() WHERE id = $1",
        {id, ch.name, start, end, ports, ch.pin, placement->bridgeId, ch.autoEnd});
  }
  return placement;
}

json::ObjectPtr ConferenceService::update(std::int64_t id, const json::ObjectPtr& body) {
  const auto ch = bookingChanges(body);
  std::optional<std::pair<std::int64_t, int>> liveResize;  // room, publishers
  std::string secret;
  std::int64_t bridgeForResize = 0;
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    auto cur = tx.exec(
        "SELECT state, rfc3339(starts_at), rfc3339(ends_at), ports, bridge_id, requested_bridge_id, pool, "
        "  room, room_secret FROM conferences WHERE id = $1 FOR UPDATE",
        {id});
    if (cur.empty()) throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    const std::string state = cur.text(0, 0);
    const bool live = state == "starting" || state == "active";
    if (state != "scheduled" && !live) {
      throw Unprocessable("the conference is " + state + " and can no longer change", "not_changeable");
    }
    if (live && (ch.start || ch.pin)) {
      throw Unprocessable("the start and the PIN cannot change once the room exists on the bridge", "not_changeable");
    }
    const auto [start, end] = changedWindow(tx, ch, cur.text(0, 1), cur.text(0, 2), live);
    const int ports = ch.ports ? static_cast<int>(*ch.ports) : static_cast<int>(cur.int64(0, 3));
    const std::optional<std::int64_t> current =
        cur.isNull(0, 4) ? std::nullopt : std::optional<std::int64_t>(cur.int64(0, 4));
    const std::optional<std::int64_t> requested =
        cur.isNull(0, 5) ? std::nullopt : std::optional<std::int64_t>(cur.int64(0, 5));
    std::string refusal;
    auto placement = rebook(tx, id, ch, start, end, ports, current, !live && !requested, cur.optText(0, 6), &refusal);
    if (!placement) {
      throw Conflict("cannot change the booking to " + std::to_string(ports) + " ports from " + start + " to " +
                         end + ": " + refusal,
                     "no_capacity");
    }
    tx.commit();
    if (live && ports != static_cast<int>(cur.int64(0, 3))) {
      liveResize = std::make_pair(cur.int64(0, 7), ports);
      secret = cur.text(0, 8);
      bridgeForResize = placement->bridgeId;
    }
  }
  if (liveResize) {
    try {
      bridges_.driver(bridgeForResize)->editRoom(liveResize->first, secret, liveResize->second);
    } catch (const janus::BridgeError& e) {
      log_.warn(kComponent, "ROOM_EDIT_FAILED", e.what(), std::to_string(id));
    }
  }
  publishConference(id);
  wakeScheduler();
  auto c = pool_.acquire();
  return conferenceJson(*c, id, true);
}

json::ObjectPtr ConferenceService::updateSeries(std::int64_t id, const json::ObjectPtr& body) {
  const auto ch = bookingChanges(body);
  std::vector<std::int64_t> changed;
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    auto cur = tx.exec(
        "SELECT series_id, state, rfc3339(starts_at), rfc3339(ends_at), time_zone FROM conferences "
        "WHERE id = $1 FOR UPDATE",
        {id});
    if (cur.empty()) throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    if (cur.isNull(0, 0)) {
      throw Unprocessable("conference " + std::to_string(id) + " is not part of a series", "not_a_series");
    }
    if (cur.text(0, 1) != "scheduled") {
      throw Unprocessable("this occurrence is " + cur.text(0, 1) +
                              "; edit the series from an occurrence that has not begun (change a running one on "
                              "its own)",
                          "not_changeable");
    }
    // This occurrence's new times, as a single edit would compute them.
    const auto [start, end] = changedWindow(tx, ch, cur.text(0, 2), cur.text(0, 3), false);

    // Every later occurrence that has not begun moves by the same wall-clock shift in its own
    // time zone (so 09:00 stays 09:00 across a daylight-saving change) and takes the new length
    // if one was given, else keeps its own.
    const bool newLength = ch.end || ch.duration;
    auto occ = tx.exec(
        "SELECT o.id, rfc3339(ns), rfc3339(CASE WHEN $5 THEN ns + ($4::timestamptz - $3::timestamptz) "
        "                                 ELSE ns + (o.ends_at - o.starts_at) END), "
        "  o.ports, o.bridge_id, o.requested_bridge_id, o.pool, rfc3339(o.starts_at) "
        "FROM conferences o, "
        "  LATERAL (SELECT ((o.starts_at AT TIME ZONE o.time_zone) + "
        "      (($3::timestamptz AT TIME ZONE $6) - ($2::timestamptz AT TIME ZONE $6))) AT TIME ZONE o.time_zone AS ns) x "
        "WHERE o.series_id = $1 AND o.state = 'scheduled' AND o.starts_at >= $2::timestamptz "
        "ORDER BY o.starts_at FOR UPDATE OF o",
        {cur.int64(0, 0), cur.text(0, 2), start, end, newLength, cur.text(0, 4)});
    for (int i = 0; i < occ.rows(); ++i) {
      const std::int64_t oid = occ.int64(i, 0);
      const std::string os = occ.text(i, 1);
      const std::string oe = occ.text(i, 2);
      const int ports = ch.ports ? static_cast<int>(*ch.ports) : static_cast<int>(occ.int64(i, 3));
      const std::optional<std::int64_t> current =
          occ.isNull(i, 4) ? std::nullopt : std::optional<std::int64_t>(occ.int64(i, 4));
      std::string refusal;
      auto placement = rebook(tx, oid, ch, os, oe, ports, current, occ.isNull(i, 5), occ.optText(i, 6), &refusal);
      if (!placement) {
        throw Conflict("the series was not changed: the occurrence of " + occ.text(i, 7) + " (id " +
                           std::to_string(oid) + ") cannot have " + std::to_string(ports) + " ports from " + os +
                           " to " + oe + ": " + refusal,
                       "no_capacity");
      }
      changed.push_back(oid);
    }
    tx.commit();
  }
  for (auto oid : changed) publishConference(oid);
  wakeScheduler();
  json::ObjectPtr o = new json::Object;
  json::ArrayPtr arr = new json::Array;
  for (auto oid : changed) arr->add(oid);
  o->set("changed", arr);
  auto c = pool_.acquire();
  o->set("conference", conferenceJson(*c, id, false));
  return o;
}

json::ObjectPtr ConferenceService::cancel(std::int64_t id, bool wholeSeries) {
  std::vector<std::int64_t> toCancel;
  {
    auto c = pool_.acquire();
    auto cur = c->exec("SELECT state, series_id FROM conferences WHERE id = $1", {id});
    if (cur.empty()) throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    if (wholeSeries && cur.isNull(0, 1)) {
      throw Unprocessable("conference " + std::to_string(id) + " is not part of a series", "not_a_series");
    }
    if (wholeSeries) {
      auto r = c->exec(
          "SELECT id FROM conferences WHERE series_id = $1 AND state IN ('scheduled', 'starting') ORDER BY starts_at",
          {cur.int64(0, 1)});
      for (int i = 0; i < r.rows(); ++i) toCancel.push_back(r.int64(i, 0));
    } else {
      if (cur.text(0, 0) != "scheduled" && cur.text(0, 0) != "starting") {
        throw Unprocessable("the conference is " + cur.text(0, 0) + "; only a booking that has not begun can be "
                            "cancelled (terminate a running one)",
                            "not_cancellable");
      }
      toCancel.push_back(id);
    }
  }
  for (auto cid : toCancel) finish(cid, "cancelled", "cancelled by user", "conference cancelled", true);
  json::ObjectPtr o = new json::Object;
  json::ArrayPtr arr = new json::Array;
  for (auto cid : toCancel) arr->add(cid);
  o->set("cancelled", arr);
  return o;
}

json::ObjectPtr ConferenceService::terminate(std::int64_t id, const std::string& by) {
  const std::string state = [&] {
    auto c = pool_.acquire();
    auto cur = c->exec("SELECT state FROM conferences WHERE id = $1", {id});
    if (cur.empty()) throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    return cur.text(0, 0);
  }();
  if (state != "active" && state != "starting") {
    throw Unprocessable("the conference is " + state + ", not running; cancel a booking instead",
                        "not_running");
  }
  log_.info(kComponent, "TERMINATE", "terminated by " + by, std::to_string(id));
  finish(id, "ended", "terminated by user", "terminated by user", true);
  auto c = pool_.acquire();
  return conferenceJson(*c, id, true);
}

json::ObjectPtr ConferenceService::extend(std::int64_t id, int minutes) {
  if (minutes < 1 || minutes > 24 * 60) throw InvalidInput("minutes must be from 1 to 1440", "invalid_field");
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    auto cur = tx.exec(
        "SELECT state, rfc3339(ends_at), rfc3339(ends_at + make_interval(mins => $2::int)), ports, bridge_id "
        "FROM conferences WHERE id = $1 FOR UPDATE",
        {id, minutes});
    if (cur.empty()) throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    const std::string state = cur.text(0, 0);
    if (state != "scheduled" && state != "starting" && state != "active") {
      throw Unprocessable("the conference is " + state + " and cannot be extended", "not_changeable");
    }
    std::string refusal;
    auto placement = place(tx, cur.text(0, 1), cur.text(0, 2), static_cast<int>(cur.int64(0, 3)),
                           cur.isNull(0, 4) ? std::nullopt : std::optional<std::int64_t>(cur.int64(0, 4)),
                           std::nullopt, id, std::nullopt, &refusal);
    if (!placement) {
      throw Conflict("cannot extend by " + std::to_string(minutes) + " minutes: " + refusal, "no_capacity");
    }
    tx.exec("UPDATE conferences SET ends_at = $2::timestamptz, updated_at = now() WHERE id = $1",
            {id, cur.text(0, 2)});
    tx.commit();
  }
  publishConference(id);
  auto c = pool_.acquire();
  return conferenceJson(*c, id, true);
}

ConferenceService::LiveLeg ConferenceService::liveLeg(db::Connection& c, std::int64_t id, std::int64_t participant) {
  auto r = c.exec(
      "SELECT c.room, c.room_secret, c.bridge_id, l.id, l.display_name FROM conferences c "
      "JOIN participant_legs l ON l.conference_id = c.id AND l.left_at IS NULL AND l.participant_id = $2 "
      "WHERE c.id = $1 AND c.state IN ('starting', 'active')",
      {id, participant});
  if (r.empty()) {
    throw NotFound("participant " + std::to_string(participant) + " is not in running conference " +
                       std::to_string(id),
                   "participant_not_found");
  }
  return LiveLeg{r.int64(0, 0), r.text(0, 1), r.int64(0, 2), r.int64(0, 3), r.text(0, 4)};
}

void ConferenceService::muteParticipant(std::int64_t id, std::int64_t participant, bool muted) {
  const LiveLeg leg = liveLeg(*pool_.acquire(), id, participant);
  bridges_.driver(leg.bridgeId)->mute(leg.room, leg.roomSecret, participant, muted);
  pool_.acquire()->exec("UPDATE participant_legs SET muted = $2 WHERE id = $1", {leg.legId, muted});
  publishParticipant(id, participant, muted ? "muted" : "unmuted", leg.display);
}

void ConferenceService::dropParticipant(std::int64_t id, std::int64_t participant, const std::string& by) {
  const LiveLeg leg = [&] {
    auto c = pool_.acquire();
    const LiveLeg found = liveLeg(*c, id, participant);
    // The leg is closed before the kick: Janus's own "kicked" event can arrive first otherwise.
    c->exec("UPDATE participant_legs SET left_at = now(), end_reason = $2 WHERE id = $1 AND left_at IS NULL",
            {found.legId, "dropped by " + by});
    return found;
  }();
  try {
    bridges_.driver(leg.bridgeId)->kick(leg.room, leg.roomSecret, participant);
  } catch (...) {
    pool_.acquire()->exec("UPDATE participant_legs SET left_at = NULL, end_reason = NULL WHERE id = $1",
                          {leg.legId});
    throw;
  }
  pool_.acquire()->exec(
      "UPDATE conferences SET empty_since = CASE WHEN NOT EXISTS (SELECT 1 FROM participant_legs "
      "  WHERE conference_id = $1 AND left_at IS NULL) THEN now() ELSE NULL END WHERE id = $1",
      {id});
  publishParticipant(id, participant, "left", leg.display);
}

// ---------------------------------------------------------------------------------------------
// Events from bridges

void ConferenceService::ingest(std::int64_t bridgeId, const std::vector<janus::Event>& events) {
  // One transaction per post (one commit, not several per event); what others should see or
  // the bridge should do happens after the commit, with the connection given back.
  std::vector<std::function<void()>> afterCommit;
  {
  auto c = pool_.acquire();
  db::Transaction tx(*c);
  for (const auto& ev : events) {
    if (ev.kind == janus::Event::Kind::Other || ev.kind == janus::Event::Kind::Created || ev.room == 0) continue;
    auto conf = tx.exec(
        "SELECT id FROM conferences WHERE room = $1 AND bridge_id = $2 AND state IN ('starting', 'active')",
        {ev.room, bridgeId});
    if (conf.empty()) continue;  // a room we do not manage, or one that has ended
    const std::int64_t cid = conf.int64(0, 0);
    const auto when = eventTime(ev.timestampUs);
    switch (ev.kind) {
      case janus::Event::Kind::Joined: {
        // Reconcile may have recorded the leg first, at the time it noticed: Janus's own time is
        // earlier and right. A join older than a leg already closed is stale and opens nothing.
        auto ins = tx.exec(
            "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, display_name, joined_at) "
            "SELECT $1, $2, $3, $4, $5, coalesce(to_timestamp($6::double precision), now()) "
            "WHERE NOT EXISTS (SELECT 1 FROM participant_legs WHERE room = $3 AND participant_id = $4 "
            "  AND left_at >= coalesce(to_timestamp($6::double precision), now())) "
            "ON CONFLICT (room, participant_id) WHERE left_at IS NULL "
            "DO UPDATE SET joined_at = least(participant_legs.joined_at, EXCLUDED.joined_at) "
            "RETURNING (xmax = 0) AS inserted",
            {cid, bridgeId, ev.room, ev.participant, ev.display.substr(0, 200), when});
        tx.exec(
            "UPDATE conferences SET empty_since = NULL, peak_participants = greatest(peak_participants, "
            "  (SELECT count(*) FROM participant_legs WHERE conference_id = $1 AND left_at IS NULL)) WHERE id = $1",
            {cid});
        if (!ins.empty() && ins.boolean(0, 0)) {
          afterCommit.emplace_back([=, this] { publishParticipant(cid, ev.participant, "joined", ev.display); });
        }
        break;
      }
      case janus::Event::Kind::Leaving:
      case janus::Event::Kind::Kicked: {
        auto upd = tx.exec(
            "UPDATE participant_legs SET left_at = coalesce(to_timestamp($3::double precision), now()), "
            "  end_reason = $4 WHERE room = $1 AND participant_id = $2 AND left_at IS NULL RETURNING display_name",
            {ev.room, ev.participant, when, ev.kind == janus::Event::Kind::Kicked ? "kicked" : "left"});
        if (upd.empty()) {
          // Already closed (reconcile saw the seat empty first, or an admin dropped them): Janus's
          // time is the true one, and "kicked" says more than the "left" reconcile had to guess.
          tx.exec(
              "UPDATE participant_legs SET left_at = greatest(joined_at, least(left_at, "
              "    coalesce(to_timestamp($3::double precision), left_at))), "
              "  end_reason = CASE WHEN $4 AND end_reason = 'left' THEN 'kicked' ELSE end_reason END "
              "WHERE id = (SELECT id FROM participant_legs WHERE room = $1 AND participant_id = $2 "
              "  AND left_at IS NOT NULL ORDER BY left_at DESC LIMIT 1)",
              {ev.room, ev.participant, when, ev.kind == janus::Event::Kind::Kicked});
        }
        tx.exec(
            "UPDATE conferences SET empty_since = CASE WHEN NOT EXISTS (SELECT 1 FROM participant_legs "
            "  WHERE conference_id = $1 AND left_at IS NULL) THEN coalesce(empty_since, now()) ELSE NULL END "
            "WHERE id = $1",
            {cid});
        if (!upd.empty()) {
          afterCommit.emplace_back([=, this, display = upd.text(0, 0)] { publishParticipant(cid, ev.participant, "left", display); });
        }
        break;
      }
      case janus::Event::Kind::Published:
      case janus::Event::Kind::Unpublished: {
        auto leg = tx.exec(
            "UPDATE participant_legs l SET publishing = $3 FROM conferences c "
            "WHERE l.room = $1 AND l.participant_id = $2 AND l.left_at IS NULL AND c.id = l.conference_id "
            "RETURNING l.muted, c.room_secret",
            {ev.room, ev.participant, ev.kind == janus::Event::Kind::Published});
        // Janus mutes streams, not people: streams published after a mute must be muted too.
        if (ev.kind == janus::Event::Kind::Published && !leg.empty() && leg.boolean(0, 0)) {
          afterCommit.emplace_back([=, this, secret = leg.text(0, 1)] {
            try {
              bridges_.driver(bridgeId)->mute(ev.room, secret, ev.participant, true);
            } catch (const std::exception& e) {
              log_.warn(kComponent, "REMUTE_FAILED", e.what(), std::to_string(cid));
            }
          });
        }
        afterCommit.emplace_back([=, this] {
          publishParticipant(cid, ev.participant,
                             ev.kind == janus::Event::Kind::Published ? "published" : "unpublished", ev.display);
        });
        break;
      }
      case janus::Event::Kind::Destroyed:
        // Someone destroyed the room behind our back (Janus sends no leaving for those inside):
        // close the legs; reconcile re-creates the room.
        tx.exec("UPDATE participant_legs SET left_at = now(), end_reason = 'room destroyed on the bridge' "
                "WHERE conference_id = $1 AND left_at IS NULL",
                {cid});
        log_.warn(kComponent, "ROOM_DESTROYED_EXTERNALLY", "room destroyed on the bridge", std::to_string(cid));
        break;
      default:
        break;
    }
  }
  tx.commit();
  }
  for (const auto& f : afterCommit) f();
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

void ConferenceService::tick() {
  std::vector<std::int64_t> due;
  std::vector<std::int64_t> missed;
  {
    auto c = pool_.acquire();
    // Bookings whose whole window passed while nothing ran them.
    auto m = c->exec(
        "SELECT id FROM conferences WHERE state = 'scheduled' AND ends_at <= now() ORDER BY starts_at LIMIT 100");
    for (int i = 0; i < m.rows(); ++i) missed.push_back(m.int64(i, 0));
    auto r = c->exec(
        "SELECT id FROM conferences WHERE state = 'scheduled' AND starts_at <= now() + make_interval(secs => $1::int) "
        "  AND ends_at > now() ORDER BY starts_at LIMIT 50",
        {static_cast<int>(options_.prelaunch.count())});
    for (int i = 0; i < r.rows(); ++i) due.push_back(r.int64(i, 0));
  }
  for (auto id : missed) {
    finish(id, "failed", "not started: the appliance was not running at start time", "conference ended", false);
  }
  for (auto id : due) launch(id);

  std::vector<std::int64_t> activated;
  std::vector<std::pair<std::int64_t, std::string>> ending;
  std::vector<std::int64_t> live;
  {
    auto c = pool_.acquire();
    auto a = c->exec(
        "UPDATE conferences SET state = 'active', actual_start = now(), "
        "  empty_since = coalesce(empty_since, now()), updated_at = now() "
        "WHERE state = 'starting' AND starts_at <= now() RETURNING id");
    for (int i = 0; i < a.rows(); ++i) activated.push_back(a.int64(i, 0));
    auto e = c->exec(
        "SELECT id, CASE WHEN ends_at <= now() - interval '5 seconds' "
        "  THEN 'scheduled end (carried out late: vcrmd was not running at the end time)' "
        "  WHEN ends_at <= now() THEN 'scheduled end' ELSE 'ended when empty' END "
        "FROM conferences WHERE state IN ('starting', 'active') AND (ends_at <= now() "
        "  OR (state = 'active' AND auto_end_when_empty AND empty_since <= now() - make_interval(secs => $1::int)))",
        {static_cast<int>(options_.emptyGrace.count())});
    for (int i = 0; i < e.rows(); ++i) ending.emplace_back(e.int64(i, 0), e.text(i, 1));
    if (std::chrono::steady_clock::now() - lastReconcile_ >= options_.reconcileEvery) {
      lastReconcile_ = std::chrono::steady_clock::now();
      auto l = c->exec(
          "SELECT c.id FROM conferences c JOIN bridges b ON b.id = c.bridge_id "
          "WHERE c.state IN ('starting', 'active') AND b.health <> 'down' ORDER BY c.id");
      for (int i = 0; i < l.rows(); ++i) live.push_back(l.int64(i, 0));
    }
  }
  for (auto id : activated) {
    log_.info(kComponent, "ACTIVE", "conference started", std::to_string(id));
    publishConference(id);
  }
  for (const auto& [id, cause] : ending) finish(id, "ended", cause, "conference ended", true);
  if (!live.empty()) reconcileAll(live);
}

void ConferenceService::reconcileAll(const std::vector<std::int64_t>& ids) {
  // Each conference is one listparticipants round trip and a few queries: a handful of workers
  // keep a pass over a thousand conferences inside the reconcile period.
  const auto started = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t i = next++; i < ids.size(); i = next++) {
      try {
        reconcile(ids[i]);
      } catch (const std::exception& e) {
        log_.warn(kComponent, "RECONCILE_FAILED", e.what(), std::to_string(ids[i]));
      }
    }
  };
  const auto helpers = std::min<std::size_t>(static_cast<std::size_t>(std::max(options_.reconcileWorkers, 1)) - 1,
                                             (ids.size() + 49) / 50 - 1);  // one worker per 50 conferences
  std::vector<std::thread> threads;
  threads.reserve(helpers);
  for (std::size_t t = 0; t < helpers; ++t) {
    try {
      threads.emplace_back(work);
    } catch (const std::system_error& e) {  // no thread to be had: fewer workers, same pass
      log_.warn(kComponent, "RECONCILE_THREAD", e.what());
      break;
    }
  }
  work();
  for (auto& t : threads) t.join();
  const auto took = std::chrono::steady_clock::now() - started;
  if (took > options_.reconcileEvery && std::chrono::steady_clock::now() - lastSlowWarning_ > std::chrono::minutes(1)) {
    lastSlowWarning_ = std::chrono::steady_clock::now();
    log_.warn(kComponent, "RECONCILE_SLOW",
              "reconciling " + std::to_string(ids.size()) + " live conferences took " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
                  " ms, longer than the reconcile period; participants may show late if bridge events are lost");
  }
}

void ConferenceService::launch(std::int64_t id) {
  janus::RoomSpec spec;
  std::int64_t bridgeId = 0;
  std::string from;
  std::string to;
  std::optional<std::string> pool;
  {
    auto c = pool_.acquire();
    auto r = c->exec(
        "UPDATE conferences SET state = 'starting', updated_at = now() WHERE id = $1 AND state = 'scheduled' "
        "RETURNING room, room_secret, pin, ports, name, bridge_id, rfc3339(greatest(starts_at, now())), "
        "  rfc3339(ends_at), pool",
        {id});
    if (r.empty()) return;  // someone else changed it meanwhile
    spec.room = r.int64(0, 0);
    spec.secret = r.text(0, 1);
    spec.pin = r.optText(0, 2);
    spec.publishers = static_cast<int>(r.int64(0, 3));
    spec.description = r.text(0, 4);
    bridgeId = r.isNull(0, 5) ? 0 : r.int64(0, 5);
    from = r.text(0, 6);
    to = r.text(0, 7);
    pool = r.optText(0, 8);
  }
  for (int attempt = 0; attempt < 3 && bridgeId; ++attempt) {
    try {
      bridges_.driver(bridgeId)->createRoom(spec);
      log_.info(kComponent, "ROOM_CREATED", "room " + std::to_string(spec.room) + " created on bridge " +
                                                std::to_string(bridgeId), std::to_string(id));
      publishConference(id);
      return;
    } catch (const std::exception& e) {
      log_.warn(kComponent, "ROOM_CREATE_FAILED", e.what(), std::to_string(id));
    }
    // Another bridge of the pool may take it.
    auto moved = [&]() -> std::optional<Placement> {
      auto c = pool_.acquire();
      db::Transaction tx(*c);
      tx.exec("SELECT 1 FROM conferences WHERE id = $1 FOR UPDATE", {id});
      std::string refusal;
      auto p = place(tx, from, to, spec.publishers, std::nullopt, pool, id, bridgeId, &refusal);
      if (!p) return std::nullopt;
      tx.exec("UPDATE conferences SET bridge_id = $2, updated_at = now() WHERE id = $1", {id, p->bridgeId});
      tx.commit();
      return p;
    }();
    if (!moved) break;
    log_.info(kComponent, "RELOCATED", "moved to bridge " + moved->bridgeName, std::to_string(id));
    bridgeId = moved->bridgeId;
  }
  finish(id, "failed", "bridge unavailable: the room could not be created", "conference failed", false);
}

void ConferenceService::finish(std::int64_t id, const std::string& state, const std::string& cause,
                               const std::string& legReason, bool destroyRoom) {
  if (destroyRoom) {
    // Whoever is in the room now but was never seen (a join that raced a restart, a lost event)
    // still gets a leg before the legs are closed: the CDRs lose nobody. Not on a bridge known
    // to be down, where asking would only wait for a timeout.
    const bool bridgeUp = !pool_.acquire()
                               ->exec("SELECT 1 FROM conferences c JOIN bridges b ON b.id = c.bridge_id "
                                      "WHERE c.id = $1 AND b.health <> 'down'",
                                      {id})
                               .empty();
    if (bridgeUp) {
      try {
        reconcile(id, false);
      } catch (const std::exception& e) {
        log_.warn(kComponent, "RECONCILE_FAILED", e.what(), std::to_string(id));
      }
    }
  }
  std::optional<std::tuple<std::int64_t, std::string, std::int64_t>> room;  // room, secret, bridge
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    auto r = tx.exec(
        "UPDATE conferences SET state = $2, end_cause = $3, updated_at = now(), "
        "  actual_end = CASE WHEN actual_start IS NOT NULL THEN now() END "
        "WHERE id = $1 AND state IN ('scheduled', 'starting', 'active') "
        "RETURNING room, room_secret, bridge_id, actual_start IS NOT NULL OR state = 'active'",
        {id, state, cause});
    if (r.empty()) return;  // already finished by someone else
    tx.exec("UPDATE participant_legs SET left_at = now(), end_reason = $2 WHERE conference_id = $1 AND left_at IS NULL",
            {id, legReason});
    if (state != "cancelled") {
      tx.exec(
          "INSERT INTO conference_cdrs (conference_id, name, owner, bridge_id, bridge_name, room, reserved_start, "
          "  reserved_end, actual_start, actual_end, ports, peak_participants, legs, end_cause, final_state) "
          "SELECT c.id, c.name, c.owner, c.bridge_id, b.name, c.room, c.starts_at, c.ends_at, c.actual_start, "
          "  coalesce(c.actual_end, now()), c.ports, c.peak_participants, "
          "  (SELECT count(*) FROM participant_legs l WHERE l.conference_id = c.id), c.end_cause, c.state "
          "FROM conferences c LEFT JOIN bridges b ON b.id = c.bridge_id WHERE c.id = $1 "
          "ON CONFLICT (conference_id) DO NOTHING",
          {id});
    }
    tx.commit();
    if (!r.isNull(0, 2)) room = std::make_tuple(r.int64(0, 0), r.text(0, 1), r.int64(0, 2));
  }
  log_.info(kComponent, state == "ended" ? "ENDED" : (state == "failed" ? "FAILED" : "CANCELLED"), cause,
            std::to_string(id));
  if (destroyRoom && room) {
    try {
      bridges_.driver(std::get<2>(*room))->destroyRoom(std::get<0>(*room), std::get<1>(*room));
    } catch (const std::exception& e) {
      log_.warn(kComponent, "ROOM_DESTROY_FAILED", e.what(), std::to_string(id));
    }
  }
  publishConference(id);
}

void ConferenceService::reconcile(std::int64_t id, bool recreateMissing) {
  janus::RoomSpec spec;
  std::int64_t bridgeId = 0;
  {
    auto c = pool_.acquire();
    auto r = c->exec(
        "SELECT room, room_secret, bridge_id, pin, ports, name, state FROM conferences "
        "WHERE id = $1 AND state IN ('starting', 'active')",
        {id});
    if (r.empty() || r.isNull(0, 2)) return;
    spec = janus::RoomSpec{r.int64(0, 0), r.text(0, 5), r.text(0, 1), r.optText(0, 3), static_cast<int>(r.int64(0, 4))};
    bridgeId = r.int64(0, 2);
  }
  const std::int64_t room = spec.room;
  auto driver = bridges_.driver(bridgeId);
  std::vector<janus::Participant> present;
  try {
    present = driver->listParticipants(room);
  } catch (const janus::BridgeError& e) {
    // Only "no such room" says the room is gone. Any other refusal or failure (another plugin
    // error, a timeout) says nothing about who is in it: the legs stay as they are and the next
    // pass asks again.
    if (e.code() != "no_such_room") throw;
    if (!recreateMissing) return;
    // The room vanished (the bridge restarted, or someone destroyed it): make it again.
    driver->createRoom(spec);
    log_.warn(kComponent, "ROOM_RECREATED", "room was missing on the bridge and was created again",
              std::to_string(id));
  }
  auto c = pool_.acquire();
  std::set<std::int64_t> presentIds;
  for (const auto& p : present) presentIds.insert(p.id);
  auto legs = c->exec(
      "SELECT participant_id, display_name FROM participant_legs WHERE conference_id = $1 AND left_at IS NULL", {id});
  std::set<std::int64_t> open;
  for (int i = 0; i < legs.rows(); ++i) {
    const std::int64_t pid = legs.int64(i, 0);
    open.insert(pid);
    if (!presentIds.count(pid)) {
      c->exec("UPDATE participant_legs SET left_at = now(), end_reason = 'left' "
              "WHERE conference_id = $1 AND participant_id = $2 AND left_at IS NULL",
              {id, pid});
      publishParticipant(id, pid, "left", legs.text(i, 1));
    }
  }
  for (const auto& p : present) {
    if (open.count(p.id)) continue;
    auto ins = c->exec(
        "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, display_name, joined_at, publishing) "
        "VALUES ($1, $2, $3, $4, $5, now(), $6) ON CONFLICT (room, participant_id) WHERE left_at IS NULL DO NOTHING "
        "RETURNING id",
        {id, bridgeId, room, p.id, p.display.substr(0, 200), p.publisher});
    if (!ins.empty()) publishParticipant(id, p.id, "joined", p.display);
  }
  c->exec(
      "UPDATE conferences SET peak_participants = greatest(peak_participants, $2), "
      "  empty_since = CASE WHEN $2 = 0 THEN coalesce(empty_since, now()) ELSE NULL END "
      "WHERE id = $1 AND (peak_participants < $2 OR ($2 = 0) <> (empty_since IS NOT NULL))",
      {id, static_cast<int>(present.size())});
}

void ConferenceService::relocateOrFail(std::int64_t bridgeId) {
  std::vector<std::int64_t> live;
  {
    auto c = pool_.acquire();
    auto r = c->exec("SELECT id FROM conferences WHERE bridge_id = $1 AND state IN ('starting', 'active') ORDER BY id",
                     {bridgeId});
    for (int i = 0; i < r.rows(); ++i) live.push_back(r.int64(i, 0));
  }
  for (auto id : live) {
    std::optional<Placement> p;
    janus::RoomSpec spec;
    {
      auto c = pool_.acquire();
      db::Transaction tx(*c);
      auto r = tx.exec(
          "SELECT rfc3339(greatest(starts_at, now())), rfc3339(ends_at), ports, pool, room, room_secret, pin, name "
          "FROM conferences WHERE id = $1 AND state IN ('starting', 'active') AND bridge_id = $2 FOR UPDATE",
          {id, bridgeId});
      if (r.empty()) continue;
      std::string refusal;
      p = place(tx, r.text(0, 0), r.text(0, 1), static_cast<int>(r.int64(0, 2)), std::nullopt, r.optText(0, 3), id,
                bridgeId, &refusal);
      if (p) {
        tx.exec("UPDATE conferences SET bridge_id = $2, updated_at = now() WHERE id = $1", {id, p->bridgeId});
        tx.exec("UPDATE participant_legs SET left_at = now(), end_reason = 'bridge lost' "
                "WHERE conference_id = $1 AND left_at IS NULL",
                {id});
        tx.commit();
        spec = janus::RoomSpec{r.int64(0, 4), r.text(0, 7), r.text(0, 5), r.optText(0, 6),
                               static_cast<int>(r.int64(0, 2))};
      }
    }
    if (!p) {
      finish(id, "failed", "bridge lost", "bridge lost", false);
      continue;
    }
    try {
      bridges_.driver(p->bridgeId)->createRoom(spec);
      log_.warn(kComponent, "RELOCATED", "bridge lost; conference re-created on " + p->bridgeName, std::to_string(id));
      publishConference(id);
    } catch (const std::exception& e) {
      log_.error(kComponent, "RELOCATE_FAILED", e.what(), std::to_string(id));
      finish(id, "failed", "bridge lost", "bridge lost", false);
    }
  }
}

void ConferenceService::resume() {
  std::vector<std::tuple<std::int64_t, std::int64_t, janus::RoomSpec>> live;
  {
    auto c = pool_.acquire();
    auto r = c->exec(
        "SELECT id, bridge_id, room, name, room_secret, pin, ports FROM conferences "
        "WHERE state IN ('starting', 'active') AND ends_at > now() AND bridge_id IS NOT NULL");
    for (int i = 0; i < r.rows(); ++i) {
      live.emplace_back(r.int64(i, 0), r.int64(i, 1),
                        janus::RoomSpec{r.int64(i, 2), r.text(i, 3), r.text(i, 4), r.optText(i, 5),
                                        static_cast<int>(r.int64(i, 6))});
    }
  }
  for (const auto& [id, bridgeId, spec] : live) {
    try {
      // createRoom is idempotent: an existing room is re-attached, never duplicated.
      const bool created = bridges_.driver(bridgeId)->createRoom(spec);
      log_.info(kComponent, created ? "ROOM_RECREATED" : "REATTACHED",
                created ? "room was gone after the restart and was created again" : "live room re-attached",
                std::to_string(id));
      // Joins and leaves while vcrmd was down are picked up now, not at the next reconcile pass.
      if (!created) reconcile(id);
    } catch (const std::exception& e) {
      log_.warn(kComponent, "RESUME_BRIDGE_FAILED", e.what(), std::to_string(id));
    }
  }
}

void ConferenceService::publishConference(std::int64_t id) {
  try {
    auto c = pool_.acquire();
    bus_.publish("conference", json::stringify(conferenceJson(*c, id, false)));
  } catch (const std::exception& e) {
    log_.warn(kComponent, "PUBLISH_FAILED", e.what(), std::to_string(id));
  }
}

void ConferenceService::publishParticipant(std::int64_t conferenceId, std::int64_t participant,
                                           const std::string& action, const std::string& display) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("conference_id", conferenceId);
  o->set("participant_id", participant);
  o->set("action", action);
  o->set("display_name", display);
  bus_.publish("participant", json::stringify(o));
}


}  // namespace vcrm
