#include <algorithm>
#include <atomic>
#include <system_error>
#include <thread>

#include "conference_parts.h"
#include "vcrm/common/error.h"

namespace vcrm::conference {

using lifecycle::Action;
using lifecycle::Event;
using lifecycle::State;

namespace {

// The one state and action a final event leads to, from the table (the same from every state
// that accepts it: the lifecycle test checks this).
lifecycle::Transition finalTransition(Event event) {
  for (const auto& t : lifecycle::transitions()) {
    if (t.event == event && lifecycle::isTerminal(t.to)) return t;
  }
  throw Error("internal",
              "lifecycle event " + std::string(lifecycle::name(event)) + " ends nothing");
}

}  // namespace

void ConferenceScheduler::tick() {
  std::vector<std::int64_t> due;
  std::vector<std::int64_t> missed;
  {
    auto c = pool_.acquire();
    // Bookings whose whole window passed while nothing ran them.
    auto m = c->exec(
        "SELECT id FROM conferences WHERE state = ANY($1::text[]) AND ends_at <= now() ORDER BY "
        "starts_at LIMIT 100",
        {pgTextArray(lifecycle::statesAccepting(Event::StartMissed))});
    for (int i = 0; i < m.rows(); ++i) missed.push_back(m.int64(i, 0));
    auto r = c->exec(
        "SELECT id FROM conferences WHERE state = ANY($2::text[]) "
        "  AND starts_at <= now() + make_interval(secs => $1::int) AND ends_at > now() ORDER BY "
        "starts_at LIMIT 50",
        {static_cast<int>(options_.prelaunch.count()),
         pgTextArray(lifecycle::statesAccepting(Event::PrelaunchDue))});
    for (int i = 0; i < r.rows(); ++i) due.push_back(r.int64(i, 0));
  }
  for (auto id : missed) {
    finish(id, Event::StartMissed, "not started: the appliance was not running at start time",
           "conference ended", AuditedCommit{});
  }
  for (auto id : due) launch(id);

  std::vector<std::int64_t> activated;
  std::vector<std::tuple<std::int64_t, std::string, Event>> ending;
  std::vector<std::int64_t> live;
  {
    auto c = pool_.acquire();
    auto a = c->exec(
        "UPDATE conferences SET state = $1, actual_start = now(), "
        "  empty_since = coalesce(empty_since, now()), updated_at = now() "
        "WHERE state = ANY($2::text[]) AND starts_at <= now() RETURNING id",
        {std::string(lifecycle::name(State::Active)),
         pgTextArray(lifecycle::statesAccepting(Event::StartTime))});
    for (int i = 0; i < a.rows(); ++i) activated.push_back(a.int64(i, 0));
    auto e = c->exec(
        "SELECT id, CASE WHEN ends_at <= now() - interval '5 seconds' "
        "  THEN 'scheduled end (carried out late: vcrmd was not running at the end time)' "
        "  WHEN ends_at <= now() THEN 'scheduled end' ELSE 'ended when empty' END, ends_at <= "
        "now() "
        "FROM conferences WHERE (state = ANY($2::text[]) AND ends_at <= now()) "
        "  OR (state = ANY($3::text[]) AND auto_end_when_empty AND empty_since <= now() - "
        "make_interval(secs => $1::int))",
        {static_cast<int>(options_.emptyGrace.count()),
         pgTextArray(lifecycle::statesAccepting(Event::EndTime)),
         pgTextArray(lifecycle::statesAccepting(Event::EmptyGrace))});
    for (int i = 0; i < e.rows(); ++i) {
      ending.emplace_back(e.int64(i, 0), e.text(i, 1),
                          e.boolean(i, 2) ? Event::EndTime : Event::EmptyGrace);
    }
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
    view_.publishConference(id);
  }
  for (const auto& [id, cause, event] : ending)
    finish(id, event, cause, "conference ended", AuditedCommit{});
  if (!live.empty()) reconcileAll(live);
}

void ConferenceScheduler::launch(std::int64_t id) {
  janus::RoomSpec spec;
  std::int64_t bridgeId = 0;
  std::string from;
  std::string to;
  std::optional<std::string> pool;
  {
    auto c = pool_.acquire();
    auto r = c->exec(
        "UPDATE conferences SET state = $2, updated_at = now() WHERE id = $1 AND state = "
        "ANY($3::text[]) "
        "RETURNING room, room_secret, pin, ports, name, bridge_id, rfc3339(greatest(starts_at, "
        "now())), "
        "  rfc3339(ends_at), pool",
        {id, std::string(lifecycle::name(State::Starting)),
         pgTextArray(lifecycle::statesAccepting(Event::PrelaunchDue))});
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
      log_.info(
          kComponent, "ROOM_CREATED",
          "room " + std::to_string(spec.room) + " created on bridge " + std::to_string(bridgeId),
          std::to_string(id));
      view_.publishConference(id);
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
      auto p = ConferenceBooking::place(tx, from, to, spec.publishers, std::nullopt, pool, id,
                                        bridgeId, &refusal);
      if (!p) return std::nullopt;
      tx.exec("UPDATE conferences SET bridge_id = $2, updated_at = now() WHERE id = $1",
              {id, p->bridgeId});
      tx.commit();
      return p;
    }();
    if (!moved) break;
    log_.info(kComponent, "RELOCATED", "moved to bridge " + moved->bridgeName, std::to_string(id));
    bridgeId = moved->bridgeId;
  }
  finish(id, Event::RoomFailed, "bridge unavailable: the room could not be created",
         "conference failed", AuditedCommit{});
}

void ConferenceScheduler::finish(std::int64_t id, Event event, const std::string& cause,
                                 const std::string& legReason, const AuditedCommit& audit) {
  const auto t = finalTransition(event);
  const std::string state(lifecycle::name(t.to));
  // Ending and cancelling take the room down; a failure has no room worth asking for.
  const bool destroyRoom = t.action == Action::EndAndRecord || t.action == Action::CancelBooking;
  if (destroyRoom) {
    // Whoever is in the room now but was never seen (a join that raced a restart, a lost event)
    // still gets a leg before the legs are closed: the CDRs lose nobody. Not on a bridge known
    // to be down, where asking would only wait for a timeout.
    const bool bridgeUp =
        !pool_.acquire()
             ->exec(
                 "SELECT 1 FROM conferences c JOIN bridges b ON b.id = c.bridge_id "
                 "WHERE c.id = $1 AND b.health <> 'down'",
                 {id})
             .empty();
    if (bridgeUp) {
      try {
        participants_.reconcile(id, false);
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
        "WHERE id = $1 AND state = ANY($4::text[]) "
        "RETURNING room, room_secret, bridge_id, actual_start IS NOT NULL OR state = 'active'",
        {id, state, cause, pgTextArray(lifecycle::statesAccepting(event))});
    if (r.empty()) return;  // already finished by someone else
    tx.exec(
        "UPDATE participant_legs SET left_at = now(), end_reason = $2 WHERE conference_id = $1 AND "
        "left_at IS NULL",
        {id, legReason});
    if (t.action != Action::CancelBooking) {
      tx.exec(
          "INSERT INTO conference_cdrs (conference_id, name, owner, bridge_id, bridge_name, room, "
          "reserved_start, "
          "  reserved_end, actual_start, actual_end, ports, peak_participants, legs, end_cause, "
          "final_state) "
          "SELECT c.id, c.name, c.owner, c.bridge_id, b.name, c.room, c.starts_at, c.ends_at, "
          "c.actual_start, "
          "  coalesce(c.actual_end, now()), c.ports, c.peak_participants, "
          "  (SELECT count(*) FROM participant_legs l WHERE l.conference_id = c.id), c.end_cause, "
          "c.state "
          "FROM conferences c LEFT JOIN bridges b ON b.id = c.bridge_id WHERE c.id = $1 "
          "ON CONFLICT (conference_id) DO NOTHING",
          {id});
    }
    audit.commit(tx);
    if (!r.isNull(0, 2)) room = std::make_tuple(r.int64(0, 0), r.text(0, 1), r.int64(0, 2));
  }
  log_.info(kComponent, state == "ended" ? "ENDED" : (state == "failed" ? "FAILED" : "CANCELLED"),
            cause, std::to_string(id));
  if (destroyRoom && room) {
    try {
      bridges_.driver(std::get<2>(*room))->destroyRoom(std::get<0>(*room), std::get<1>(*room));
    } catch (const std::exception& e) {
      log_.warn(kComponent, "ROOM_DESTROY_FAILED", e.what(), std::to_string(id));
    }
  }
  view_.publishConference(id);
}

json::ObjectPtr ConferenceScheduler::cancel(std::int64_t id, bool wholeSeries,
                                            const AuditedCommit& audit) {
  std::vector<std::int64_t> toCancel;
  {
    auto c = pool_.acquire();
    auto cur = c->exec("SELECT state, series_id FROM conferences WHERE id = $1", {id});
    if (cur.empty())
      throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    if (wholeSeries && cur.isNull(0, 1)) {
      throw Unprocessable("conference " + std::to_string(id) + " is not part of a series",
                          "not_a_series");
    }
    if (wholeSeries) {
      auto r = c->exec(
          "SELECT id FROM conferences WHERE series_id = $1 AND state = ANY($2::text[]) ORDER BY "
          "starts_at",
          {cur.int64(0, 1), pgTextArray(lifecycle::statesAccepting(Event::Cancel))});
      for (int i = 0; i < r.rows(); ++i) toCancel.push_back(r.int64(i, 0));
    } else {
      const auto state = lifecycle::stateFromName(cur.text(0, 0));
      if (!state || !lifecycle::transition(*state, Event::Cancel)) {
        throw Unprocessable("the conference is " + cur.text(0, 0) +
                                "; only a booking that has not begun can be "
                                "cancelled (terminate a running one)",
                            "not_cancellable");
      }
      toCancel.push_back(id);
    }
  }
  for (auto cid : toCancel)
    finish(cid, Event::Cancel, "cancelled by user", "conference cancelled", audit);
  json::ObjectPtr o = new json::Object;
  json::ArrayPtr arr = new json::Array;
  for (auto cid : toCancel) arr->add(cid);
  o->set("cancelled", arr);
  return o;
}

json::ObjectPtr ConferenceScheduler::terminate(std::int64_t id, const std::string& by,
                                               const AuditedCommit& audit) {
  const std::string state = [&] {
    auto c = pool_.acquire();
    auto cur = c->exec("SELECT state FROM conferences WHERE id = $1", {id});
    if (cur.empty())
      throw NotFound("no conference with id " + std::to_string(id), "conference_not_found");
    return cur.text(0, 0);
  }();
  const auto current = lifecycle::stateFromName(state);
  if (!current || !lifecycle::transition(*current, Event::Terminate)) {
    throw Unprocessable("the conference is " + state + ", not running; cancel a booking instead",
                        "not_running");
  }
  log_.info(kComponent, "TERMINATE", "terminated by " + by, std::to_string(id));
  finish(id, Event::Terminate, "terminated by user", "terminated by user", audit);
  auto c = pool_.acquire();
  return view_.conferenceJson(*c, id, true);
}

void ConferenceScheduler::endNow(std::int64_t id, const std::string& cause) {
  log_.info(kComponent, "END_NOW", cause, std::to_string(id));
  finish(id, Event::Terminate, cause, cause, AuditedCommit{});
}

void ConferenceScheduler::relocateOrFail(std::int64_t bridgeId) {
  std::vector<std::int64_t> live;
  {
    auto c = pool_.acquire();
    auto r = c->exec(
        "SELECT id FROM conferences WHERE bridge_id = $1 AND state = ANY($2::text[]) ORDER BY id",
        {bridgeId, pgTextArray(lifecycle::statesAccepting(Event::Relocated))});
    for (int i = 0; i < r.rows(); ++i) live.push_back(r.int64(i, 0));
  }
  for (auto id : live) {
    std::optional<Placement> p;
    janus::RoomSpec spec;
    {
      auto c = pool_.acquire();
      db::Transaction tx(*c);
      auto r = tx.exec(
          "SELECT rfc3339(greatest(starts_at, now())), rfc3339(ends_at), ports, pool, room, "
          "room_secret, pin, name "
          "FROM conferences WHERE id = $1 AND state = ANY($3::text[]) AND bridge_id = $2 FOR "
          "UPDATE",
          {id, bridgeId, pgTextArray(lifecycle::statesAccepting(Event::Relocated))});
      if (r.empty()) continue;
      std::string refusal;
      p = ConferenceBooking::place(tx, r.text(0, 0), r.text(0, 1), static_cast<int>(r.int64(0, 2)),
                                   std::nullopt, r.optText(0, 3), id, bridgeId, &refusal);
      if (p) {
        tx.exec("UPDATE conferences SET bridge_id = $2, updated_at = now() WHERE id = $1",
                {id, p->bridgeId});
        tx.exec(
            "UPDATE participant_legs SET left_at = now(), end_reason = 'bridge lost' "
            "WHERE conference_id = $1 AND left_at IS NULL",
            {id});
        tx.commit();
        spec = janus::RoomSpec{r.int64(0, 4), r.text(0, 7), r.text(0, 5), r.optText(0, 6),
                               static_cast<int>(r.int64(0, 2))};
      }
    }
    if (!p) {
      finish(id, Event::BridgeLost, "bridge lost", "bridge lost", AuditedCommit{});
      continue;
    }
    try {
      bridges_.driver(p->bridgeId)->createRoom(spec);
      log_.warn(kComponent, "RELOCATED", "bridge lost; conference re-created on " + p->bridgeName,
                std::to_string(id));
      view_.publishConference(id);
    } catch (const std::exception& e) {
      log_.error(kComponent, "RELOCATE_FAILED", e.what(), std::to_string(id));
      finish(id, Event::BridgeLost, "bridge lost", "bridge lost", AuditedCommit{});
    }
  }
}

void ConferenceScheduler::resume() {
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
                created ? "room was gone after the restart and was created again"
                        : "live room re-attached",
                std::to_string(id));
      // Joins and leaves while vcrmd was down are picked up now, not at the next reconcile pass.
      if (!created) participants_.reconcile(id);
    } catch (const std::exception& e) {
      log_.warn(kComponent, "RESUME_BRIDGE_FAILED", e.what(), std::to_string(id));
    }
  }
}

void ConferenceScheduler::reconcileAll(const std::vector<std::int64_t>& ids) {
  // Each conference is one listparticipants round trip and a few queries: a handful of workers
  // keep a pass over a thousand conferences inside the reconcile period.
  const auto started = std::chrono::steady_clock::now();
  std::atomic<std::size_t> next{0};
  const auto work = [&] {
    for (std::size_t i = next++; i < ids.size(); i = next++) {
      try {
        participants_.reconcile(ids[i]);
      } catch (const std::exception& e) {
        log_.warn(kComponent, "RECONCILE_FAILED", e.what(), std::to_string(ids[i]));
      }
    }
  };
  const auto helpers =
      std::min<std::size_t>(static_cast<std::size_t>(std::max(options_.reconcileWorkers, 1)) - 1,
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
  if (took > options_.reconcileEvery &&
      std::chrono::steady_clock::now() - lastSlowWarning_ > std::chrono::minutes(1)) {
    lastSlowWarning_ = std::chrono::steady_clock::now();
    log_.warn(
        kComponent, "RECONCILE_SLOW",
        "reconciling " + std::to_string(ids.size()) + " live conferences took " +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
            " ms, longer than the reconcile period; participants may show late if bridge events "
            "are lost");
  }
}

}  // namespace vcrm::conference
