#include <regex>

#include "conference_parts.h"
#include "vcrm/common/error.h"
#include "vcrm/daemon/calendar.h"

namespace vcrm::conference {

namespace {

Poco::Dynamic::Var optVar(const std::optional<std::string>& v) {
  return v ? Poco::Dynamic::Var(*v) : Poco::Dynamic::Var();
}

}  // namespace

std::string pgTextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ",\"" : "\"") + items[i] + "\"";
  return out + "}";
}

json::ObjectPtr ConferenceView::conferenceJson(db::Connection& c, std::int64_t id,
                                               bool withParticipants) {
  auto r = c.exec(
      "SELECT c.id, c.series_id, c.name, c.owner, rfc3339(c.starts_at), rfc3339(c.ends_at), "
      "c.time_zone, "
      "  to_char(c.starts_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
      "  to_char(c.ends_at AT TIME ZONE c.time_zone, 'YYYY-MM-DD\"T\"HH24:MI:SS'), "
      "  c.ports, c.pin, c.pool, c.bridge_id, b.name, c.room, c.state, c.end_cause, "
      "rfc3339(c.actual_start), "
      "  rfc3339(c.actual_end), c.peak_participants, c.auto_end_when_empty, c.requested_bridge_id, "
      "  (SELECT count(*) FROM participant_legs l WHERE l.conference_id = c.id AND l.left_at IS "
      "NULL), "
      "  s.frequency, s.interval_n, s.weekdays, s.count_n, rfc3339(s.until_at) "
      "FROM conferences c LEFT JOIN bridges b ON b.id = c.bridge_id "
      "LEFT JOIN conference_series s ON s.id = c.series_id WHERE c.id = $1",
      {id});
  if (r.empty())
    throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
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
  o->set("requested_bridge_id",
         r.isNull(0, 21) ? Poco::Dynamic::Var() : Poco::Dynamic::Var(r.int64(0, 21)));
  o->set("participant_count", r.int64(0, 22));
  if (!r.isNull(0, 23)) {
    json::ObjectPtr rec = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
    rec->set("frequency", r.text(0, 23));
    rec->set("interval", r.int64(0, 24));
    json::ArrayPtr wd = new json::Array;
    std::string w = r.text(0, 25);
    for (const auto& name : calendar::weekdayNames()) {
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

json::ObjectPtr ConferenceView::get(std::int64_t id) {
  auto c = pool_.acquire();
  return conferenceJson(*c, id, true);
}

json::ObjectPtr ConferenceView::list(const std::map<std::string, std::string>& query) {
  auto param = [&](const std::string& k) -> std::optional<std::string> {
    auto it = query.find(k);
    if (it == query.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  const auto from = param("from");
  const auto to = param("to");
  if (from) calendar::requireTime("from", *from);
  if (to) calendar::requireTime("to", *to);
  const auto state = param("state");
  static const std::set<std::string> states = {"scheduled", "starting",  "active", "ended",
                                               "failed",    "cancelled", "live"};
  if (state && !states.count(*state)) {
    throw InvalidInput(
        "state must be one of scheduled, starting, active, ended, failed, cancelled, live",
        "invalid_field");
  }
  int limit = 200;
  if (auto l = param("limit")) {
    if (!std::regex_match(*l, std::regex("^[0-9]{1,4}$")) || std::stoi(*l) < 1 ||
        std::stoi(*l) > 1000) {
      throw InvalidInput("limit must be a whole number from 1 to 1000", "invalid_field");
    }
    limit = std::stoi(*l);
  }
  std::optional<std::int64_t> series;
  if (auto s = param("series_id")) {
    if (!std::regex_match(*s, std::regex("^[0-9]{1,18}$")))
      throw InvalidInput("series_id must be a number");
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

json::ObjectPtr ConferenceView::dashboard() {
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
      "FROM generate_series(date_trunc('hour', now()) - interval '23 hours', date_trunc('hour', "
      "now()), "
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

void ConferenceView::publishConference(std::int64_t id) {
  try {
    auto c = pool_.acquire();
    bus_.publish("conference", json::stringify(conferenceJson(*c, id, false)));
  } catch (const std::exception& e) {
    log_.warn(kComponent, "PUBLISH_FAILED", e.what(), std::to_string(id));
  }
}

void ConferenceView::publishParticipant(std::int64_t conferenceId, std::int64_t participant,
                                        const std::string& action, const std::string& display) {
  json::ObjectPtr o = new json::Object(Poco::JSON_PRESERVE_KEY_ORDER);
  o->set("conference_id", conferenceId);
  o->set("participant_id", participant);
  o->set("action", action);
  o->set("display_name", display);
  bus_.publish("participant", json::stringify(o));
}

}  // namespace vcrm::conference
