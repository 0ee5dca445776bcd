#include <regex>

#include "conference_parts.h"
#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/daemon/calendar.h"

namespace vcrm::conference {

using calendar::requireTime;

namespace {

std::int64_t randomRoom() {
  const auto b = crypto::randomBytes(8);
  std::uint64_t v = 0;
  for (unsigned char c : b) v = (v << 8) | c;
  return static_cast<std::int64_t>(100000000 + v % 900000000);  // nine digits
}

BookingChanges bookingChanges(const json::ObjectPtr& body) {
  static const std::vector<std::string> fields{
      "name", "start", "end", "duration_minutes", "ports", "pin", "auto_end_when_empty"};
  json::onlyKeys(body, fields);
  json::requireAny(body, fields);
  BookingChanges ch;
  ch.name = json::optString(body, "name", 200);
  if (ch.name && ch.name->empty()) throw InvalidInput("name must not be empty", "invalid_field");
  ch.start = json::optString(body, "start", 64);
  ch.end = json::optString(body, "end", 64);
  ch.duration = json::optInt(body, "duration_minutes");
  if (ch.end && ch.duration)
    throw InvalidInput("give either \"end\" or \"duration_minutes\"", "invalid_field");
  if (ch.start) requireTime("start", *ch.start);
  if (ch.end) requireTime("end", *ch.end);
  if (ch.duration && (*ch.duration < 1 || *ch.duration > 7 * 24 * 60)) {
    throw InvalidInput("duration_minutes must be from 1 to 10080 (7 days)", "invalid_field");
  }
  ch.ports = json::optInt(body, "ports");
  if (ch.ports && (*ch.ports < 1 || *ch.ports > 100000))
    throw InvalidInput("ports must be from 1 to 100000");
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
                                                  const std::string& curStart,
                                                  const std::string& curEnd, bool live) {
  auto t = tx.exec(
      "SELECT rfc3339(s), rfc3339(coalesce($2::timestamptz, "
      "  CASE WHEN $3::int IS NULL THEN s + ($5::timestamptz - $4::timestamptz) "
      "       ELSE s + make_interval(mins => $3::int) END)) "
      "FROM (SELECT coalesce($1::timestamptz, $4::timestamptz) AS s) x",
      {ch.start, ch.end, ch.duration, curStart, curEnd});
  std::string start = t.text(0, 0);
  std::string end = t.text(0, 1);
  auto chk = tx.exec(
      "SELECT $2::timestamptz > $1::timestamptz, $2::timestamptz - $1::timestamptz <= interval '7 "
      "days', "
      "  $1::timestamptz >= now() - interval '5 minutes' OR $3, $2::timestamptz > now()",
      {start, end, live});
  if (!chk.boolean(0, 0)) throw InvalidInput("the end must be after the start", "invalid_time");
  if (!chk.boolean(0, 1))
    throw InvalidInput("a conference can last at most 7 days", "invalid_time");
  if (!chk.boolean(0, 2)) throw Unprocessable("the new start is in the past", "start_in_past");
  if (!chk.boolean(0, 3)) throw Unprocessable("the new end is in the past", "end_in_past");
  return {std::move(start), std::move(end)};
}

struct Peak {
  std::string at;  // when the most ports are reserved
  std::int64_t used = 0;
};

// The most ports reserved at any instant of [start, end) on bridge `bridgeId` (all bridges when
// nullopt), without conference `exclude`. The peak is reached at `start` or where another
// booking begins inside the window.
Peak peakReserved(db::Transaction& tx, std::optional<std::int64_t> bridgeId,
                  const std::string& start, const std::string& end,
                  std::optional<std::int64_t> exclude) {
  auto peak = tx.exec(
      "WITH o AS (SELECT starts_at, ends_at, ports FROM conferences "
      "  WHERE ($1::bigint IS NULL OR bridge_id = $1) AND state IN ('scheduled', 'starting', "
      "'active') "
      "    AND starts_at < $3::timestamptz AND ends_at > $2::timestamptz "
      "    AND ($4::bigint IS NULL OR id <> $4)), "
      " pts AS (SELECT $2::timestamptz AS t UNION SELECT starts_at FROM o WHERE starts_at > "
      "$2::timestamptz) "
      "SELECT rfc3339(p.t), coalesce(sum(o.ports), 0) AS used FROM pts p "
      "  LEFT JOIN o ON o.starts_at <= p.t AND o.ends_at > p.t "
      "GROUP BY p.t ORDER BY used DESC, p.t LIMIT 1",
      {bridgeId, start, end, exclude});
  return {peak.text(0, 0), peak.int64(0, 1)};
}

}  // namespace

void ConferenceBooking::lockAdmission(db::Transaction& tx) {
  tx.exec("SELECT pg_advisory_xact_lock(1986356001)");  // "vcrm admission"; any fixed key will do
}

void ConferenceBooking::checkLicence(db::Transaction& tx, const std::string& start,
                                     const std::string& end, int ports,
                                     std::optional<std::int64_t> exclude) {
  if (!options_.licensedPorts) return;
  const std::int64_t allowed = options_.licensedPorts();
  const Peak peak = peakReserved(tx, std::nullopt, start, end, exclude);
  if (peak.used + ports > allowed) {
    throw Conflict("the licence allows " + std::to_string(allowed) +
                       " concurrent ports on all bridges together, and " +
                       std::to_string(peak.used) + " are reserved at " + peak.at + ", so " +
                       std::to_string(ports) +
                       " more do not fit: shorten or shrink other conferences, or apply a licence "
                       "with more ports",
                   "licence_ports");
  }
}

std::optional<Placement> ConferenceBooking::place(db::Transaction& tx, const std::string& start,
                                                  const std::string& end, int ports,
                                                  std::optional<std::int64_t> bridgeId,
                                                  std::optional<std::string> pool,
                                                  std::optional<std::int64_t> exclude,
                                                  std::optional<std::int64_t> avoidBridge,
                                                  std::string* refusal) {
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
      if (bridgeId)
        *refusal = "bridge " + name + " is " + candidates.text(i, 3) + " and takes no new bookings";
      continue;
    }
    if (candidates.text(i, 4) == "down") {
      if (bridgeId) *refusal = "bridge " + name + " is down";
      continue;
    }
    // The peak of reserved ports over [start, end) is reached at `start` or where another
    // booking begins inside the window.
    const Peak peak = peakReserved(tx, id, start, end, exclude);
    const int used = static_cast<int>(peak.used);
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
                std::to_string(capacity) + " ports free at " + peak.at;
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

bool ConferenceBooking::knownTimeZone(db::Connection& c, const std::string& tz) {
  // pg_timezone_names reads the whole zone database (tens of ms per query): read it once.
  auto zones = timeZones_.lock();
  if (zones->empty()) {
    auto r = c.exec("SELECT name FROM pg_timezone_names");
    for (int i = 0; i < r.rows(); ++i) zones->insert(r.text(i, 0));
  }
  return zones->count(tz) > 0;
}

json::ObjectPtr ConferenceBooking::create(const std::string& owner, const json::ObjectPtr& body,
                                          const AuditedCommit& audit) {
  json::onlyKeys(body, {"name", "start", "end", "duration_minutes", "start_now", "time_zone",
                        "ports", "pin", "bridge_id", "pool", "auto_end_when_empty", "recurrence"});
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
  if (*portsOpt < 1 || *portsOpt > 100000)
    throw InvalidInput("ports must be from 1 to 100000", "invalid_field");
  const int ports = static_cast<int>(*portsOpt);
  if (startNow == startText.has_value()) {
    throw InvalidInput("give either \"start\" (an RFC 3339 time) or \"start_now\": true",
                       "invalid_field");
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
      throw InvalidInput(
          "time_zone \"" + tz + "\" is not a known IANA time zone (e.g. Europe/Berlin, UTC)",
          "invalid_time_zone");
    }
    // PostgreSQL does the time arithmetic (and time zone rules) for us.
    auto times = c->exec(
        "SELECT rfc3339(s), rfc3339(coalesce($2::timestamptz, s + make_interval(mins => "
        "$3::int))), "
        "  extract(epoch FROM coalesce($2::timestamptz, s + make_interval(mins => $3::int)) - "
        "s)::bigint, "
        "  s < now() - interval '5 minutes', "
        "  to_char(s AT TIME ZONE $4, 'YYYY-MM-DD'), to_char(s AT TIME ZONE $4, 'HH24:MI:SS.US') "
        "FROM (SELECT CASE WHEN $1::text IS NULL THEN date_trunc('second', now()) "
        "             ELSE $1::timestamptz END AS s) x",
        {startText, endText, duration, tz});
    const std::string start = times.text(0, 0);
    const std::string end = times.text(0, 1);
    const std::int64_t seconds = times.int64(0, 2);
    if (seconds <= 0) throw InvalidInput("the end must be after the start", "invalid_time");
    if (seconds > 7 * 24 * 3600)
      throw InvalidInput("a conference can last at most 7 days", "invalid_time");
    if (times.boolean(0, 3)) {
      throw Unprocessable(
          "the start " + start + " is in the past; use \"start_now\": true to start at once",
          "start_in_past");
    }

    // Occurrences: one, or the expansion of the recurrence in local wall-clock time.
    std::vector<std::pair<std::string, std::string>> occurrences{{start, end}};
    json::ObjectPtr rec;
    if (body->has("recurrence") && !body->isNull("recurrence")) {
      rec = body->getObject("recurrence");
      if (!rec) throw InvalidInput("field \"recurrence\" must be an object", "invalid_field");
      if (startNow)
        throw InvalidInput("a recurring series needs a \"start\" time", "invalid_field");
      json::onlyKeys(rec, {"frequency", "interval", "weekdays", "count", "until"});
      const std::string freq = json::requireString(rec, "frequency", 16);
      if (freq != "daily" && freq != "weekly") {
        throw InvalidInput("recurrence.frequency must be \"daily\" or \"weekly\"", "invalid_field");
      }
      const auto interval = json::optInt(rec, "interval").value_or(1);
      if (interval < 1 || interval > 52)
        throw InvalidInput("recurrence.interval must be from 1 to 52", "invalid_field");
      const auto count = json::optInt(rec, "count");
      const auto until = json::optString(rec, "until", 64);
      if (count.has_value() == until.has_value()) {
        throw InvalidInput("recurrence needs exactly one of \"count\" or \"until\"",
                           "invalid_field");
      }
      if (count && (*count < 1 || *count > options_.maxOccurrences)) {
        throw InvalidInput(
            "recurrence.count must be from 1 to " + std::to_string(options_.maxOccurrences),
            "invalid_field");
      }
      if (until) requireTime("recurrence.until", *until);
      const auto firstDate = calendar::parseDate(times.text(0, 4));
      if (!firstDate)
        throw Error("internal",
                    "PostgreSQL gave a local date that is not one: " + times.text(0, 4));
      auto weekdays = json::optStringArray(rec, "weekdays", 7).value_or(std::vector<std::string>{});
      if (freq == "daily" && !weekdays.empty()) {
        throw InvalidInput("recurrence.weekdays is only for weekly series", "invalid_field");
      }
      calendar::Recurrence rule;
      rule.frequency = freq == "daily" ? calendar::Recurrence::Frequency::Daily
                                       : calendar::Recurrence::Frequency::Weekly;
      rule.interval = static_cast<int>(interval);
      rule.weekdays = calendar::parseWeekdays(weekdays);
      // One more than allowed when bounded by `until`, so too long a series is noticed.
      const std::size_t limit = count ? static_cast<std::size_t>(*count)
                                      : static_cast<std::size_t>(options_.maxOccurrences) + 1;
      const auto locals = calendar::expandLocal(rule, *firstDate, times.text(0, 5), limit);
      // Each local wall-clock time becomes an instant under the zone's own rules (PostgreSQL's).
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
        throw InvalidInput("the series would have more than " +
                               std::to_string(options_.maxOccurrences) +
                               " occurrences; use count or an earlier until",
                           "too_many_occurrences");
      }
      if (occurrences.empty())
        throw InvalidInput("the series has no occurrence before \"until\"", "invalid_field");
    }

    db::Transaction tx(*c);
    lockAdmission(tx);
    if (rec) {
      auto s = tx.exec(
          "INSERT INTO conference_series (frequency, interval_n, weekdays, count_n, until_at, "
          "time_zone) "
          "VALUES ($1, $2, $3::text[], $4, $5::timestamptz, $6) RETURNING id",
          {json::requireString(rec, "frequency"), json::optInt(rec, "interval").value_or(1),
           pgTextArray(
               json::optStringArray(rec, "weekdays", 7).value_or(std::vector<std::string>{})),
           json::optInt(rec, "count"), json::optString(rec, "until", 64), tz});
      seriesId = s.int64(0, 0);
    }
    for (const auto& [s, e] : occurrences) {
      std::string refusal;
      auto placement = place(tx, s, e, ports, bridgeId, pool, std::nullopt, std::nullopt, &refusal);
      if (!placement) {
        throw Conflict("cannot book " + std::to_string(ports) + " ports from " + s + " to " + e +
                           ": " + refusal,
                       "no_capacity");
      }
      checkLicence(tx, s, e, ports, std::nullopt);
      for (int attempt = 0;; ++attempt) {
        tx.exec("SAVEPOINT room");
        try {
          auto r = tx.exec(
              "INSERT INTO conferences (series_id, name, owner, starts_at, ends_at, time_zone, "
              "ports, pin, pool, "
              "  requested_bridge_id, bridge_id, room, room_secret, auto_end_when_empty, "
              "rule_start, rule_end) "
              "VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz, $6, $7, $8, $9, $10, $11, "
              "$12, $13, $14, "
              "  CASE WHEN $1::bigint IS NOT NULL THEN $4::timestamptz END, "
              "  CASE WHEN $1::bigint IS NOT NULL THEN $5::timestamptz END) "
              "RETURNING id",
              {seriesId, name, owner, s, e, tz, ports, pin, pool, bridgeId, placement->bridgeId,
               randomRoom(), crypto::base64UrlEncode(crypto::randomBytes(18)), autoEnd});
          ids.push_back(r.int64(0, 0));
          break;
        } catch (const DbError& err) {
          // A random room number collided: vanishingly rare, so retrying is enough.
          if (err.sqlState() != "23505" || attempt > 3) throw;
          tx.exec("ROLLBACK TO SAVEPOINT room");
        }
      }
    }
    audit.commit(tx);
  }
  for (auto id : ids) view_.publishConference(id);
  log_.info(
      kComponent, "BOOKED",
      "booked \"" + name + "\" by " + owner + ": " + std::to_string(ids.size()) + " occurrence(s)",
      std::to_string(ids.front()));
  wake_();
  auto c = pool_.acquire();
  if (!seriesId) return view_.conferenceJson(*c, ids.front(), false);
  json::ObjectPtr out = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  out->set("series_id", *seriesId);
  json::ArrayPtr arr = new json::Array;
  for (auto id : ids) arr->add(view_.conferenceJson(*c, id, false));
  out->set("conferences", arr);
  return out;
}

std::optional<Placement> ConferenceBooking::rebook(
    db::Transaction& tx, std::int64_t id, const BookingChanges& ch, const std::string& start,
    const std::string& end, int ports, std::optional<std::int64_t> current, bool mayMove,
    const std::optional<std::string>& pool, std::string* refusal) {
  // Stay where it is if it fits; else, if it may move, anywhere in its pool.
  auto placement = place(tx, start, end, ports, current, std::nullopt, id, std::nullopt, refusal);
  if (!placement && mayMove) {
    std::string other;
    placement = place(tx, start, end, ports, std::nullopt, pool, id, std::nullopt, &other);
  }
  if (placement) {
    if (ch.ports || ch.start || ch.end || ch.duration) checkLicence(tx, start, end, ports, id);
    tx.exec(
        "UPDATE conferences SET name = coalesce($2, name), starts_at = $3::timestamptz, ends_at = "
        "$4::timestamptz, "
        "  ports = $5, pin = coalesce($6, pin), bridge_id = $7, "
        "  auto_end_when_empty = coalesce($8, auto_end_when_empty), updated_at = now() WHERE id = "
        "$1",
        {id, ch.name, start, end, ports, ch.pin, placement->bridgeId, ch.autoEnd});
  }
  return placement;
}

json::ObjectPtr ConferenceBooking::update(std::int64_t id, const json::ObjectPtr& body,
                                          const AuditedCommit& audit) {
  const auto ch = bookingChanges(body);
  std::optional<std::pair<std::int64_t, int>> liveResize;  // room, publishers
  std::string secret;
  std::int64_t bridgeForResize = 0;
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    lockAdmission(tx);
    auto cur = tx.exec(
        "SELECT state, rfc3339(starts_at), rfc3339(ends_at), ports, bridge_id, "
        "requested_bridge_id, pool, "
        "  room, room_secret FROM conferences WHERE id = $1 FOR UPDATE",
        {id});
    if (cur.empty())
      throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    const std::string state = cur.text(0, 0);
    const bool live = state == "starting" || state == "active";
    if (state != "scheduled" && !live) {
      throw Unprocessable("the conference is " + state + " and can no longer change",
                          "not_changeable");
    }
    if (live && (ch.start || ch.pin)) {
      throw Unprocessable("the start and the PIN cannot change once the room exists on the bridge",
                          "not_changeable");
    }
    const auto [start, end] = changedWindow(tx, ch, cur.text(0, 1), cur.text(0, 2), live);
    const int ports = ch.ports ? static_cast<int>(*ch.ports) : static_cast<int>(cur.int64(0, 3));
    const std::optional<std::int64_t> current =
        cur.isNull(0, 4) ? std::nullopt : std::optional<std::int64_t>(cur.int64(0, 4));
    const std::optional<std::int64_t> requested =
        cur.isNull(0, 5) ? std::nullopt : std::optional<std::int64_t>(cur.int64(0, 5));
    std::string refusal;
    auto placement = rebook(tx, id, ch, start, end, ports, current, !live && !requested,
                            cur.optText(0, 6), &refusal);
    if (!placement) {
      throw Conflict("cannot change the booking to " + std::to_string(ports) + " ports from " +
                         start + " to " + end + ": " + refusal,
                     "no_capacity");
    }
    audit.commit(tx);
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
  view_.publishConference(id);
  wake_();
  auto c = pool_.acquire();
  return view_.conferenceJson(*c, id, true);
}

json::ObjectPtr ConferenceBooking::updateSeries(std::int64_t id, const json::ObjectPtr& body,
                                                const AuditedCommit& audit) {
  const auto ch = bookingChanges(body);
  std::vector<std::int64_t> changed;
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    lockAdmission(tx);
    auto cur = tx.exec(
        "SELECT series_id, state, rfc3339(starts_at), rfc3339(ends_at), time_zone FROM conferences "
        "WHERE id = $1 FOR UPDATE",
        {id});
    if (cur.empty())
      throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    if (cur.isNull(0, 0)) {
      throw Unprocessable("conference " + std::to_string(id) + " is not part of a series",
                          "not_a_series");
    }
    if (cur.text(0, 1) != "scheduled") {
      throw Unprocessable(
          "this occurrence is " + cur.text(0, 1) +
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
        "SELECT o.id, rfc3339(ns), rfc3339(CASE WHEN $5 THEN ns + ($4::timestamptz - "
        "$3::timestamptz) "
        "                                 ELSE ns + (o.ends_at - o.starts_at) END), "
        "  o.ports, o.bridge_id, o.requested_bridge_id, o.pool, rfc3339(o.starts_at) "
        "FROM conferences o, "
        "  LATERAL (SELECT ((o.starts_at AT TIME ZONE o.time_zone) + "
        "      (($3::timestamptz AT TIME ZONE $6) - ($2::timestamptz AT TIME ZONE $6))) AT TIME "
        "ZONE o.time_zone AS ns) x "
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
      auto placement = rebook(tx, oid, ch, os, oe, ports, current, occ.isNull(i, 5),
                              occ.optText(i, 6), &refusal);
      if (!placement) {
        throw Conflict("the series was not changed: the occurrence of " + occ.text(i, 7) + " (id " +
                           std::to_string(oid) + ") cannot have " + std::to_string(ports) +
                           " ports from " + os + " to " + oe + ": " + refusal,
                       "no_capacity");
      }
      changed.push_back(oid);
    }
    audit.commit(tx);
  }
  for (auto oid : changed) view_.publishConference(oid);
  wake_();
  json::ObjectPtr o = new json::Object;
  json::ArrayPtr arr = new json::Array;
  for (auto oid : changed) arr->add(oid);
  o->set("changed", arr);
  auto c = pool_.acquire();
  o->set("conference", view_.conferenceJson(*c, id, false));
  return o;
}

json::ObjectPtr ConferenceBooking::extend(std::int64_t id, int minutes,
                                          const AuditedCommit& audit) {
  if (minutes < 1 || minutes > 24 * 60)
    throw InvalidInput("minutes must be from 1 to 1440", "invalid_field");
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    lockAdmission(tx);
    auto cur = tx.exec(
        "SELECT state, rfc3339(ends_at), rfc3339(ends_at + make_interval(mins => $2::int)), ports, "
        "bridge_id "
        "FROM conferences WHERE id = $1 FOR UPDATE",
        {id, minutes});
    if (cur.empty())
      throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    const std::string state = cur.text(0, 0);
    if (state != "scheduled" && state != "starting" && state != "active") {
      throw Unprocessable("the conference is " + state + " and cannot be extended",
                          "not_changeable");
    }
    std::string refusal;
    auto placement =
        place(tx, cur.text(0, 1), cur.text(0, 2), static_cast<int>(cur.int64(0, 3)),
              cur.isNull(0, 4) ? std::nullopt : std::optional<std::int64_t>(cur.int64(0, 4)),
              std::nullopt, id, std::nullopt, &refusal);
    if (!placement) {
      throw Conflict("cannot extend by " + std::to_string(minutes) + " minutes: " + refusal,
                     "no_capacity");
    }
    checkLicence(tx, cur.text(0, 1), cur.text(0, 2), static_cast<int>(cur.int64(0, 3)), id);
    tx.exec("UPDATE conferences SET ends_at = $2::timestamptz, updated_at = now() WHERE id = $1",
            {id, cur.text(0, 2)});
    audit.commit(tx);
  }
  view_.publishConference(id);
  auto c = pool_.acquire();
  return view_.conferenceJson(*c, id, true);
}

}  // namespace vcrm::conference
