#include <set>

#include "conference_parts.h"
#include "vcrm/common/error.h"

namespace vcrm::conference {

namespace {

// Janus event time if it is plausible, else now (clocks on bridges can be wrong).
std::optional<std::string> eventTime(std::int64_t us) {
  const auto nowUs = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  if (us <= 0 || std::llabs(nowUs - us) > 3600LL * 1000000) return std::nullopt;
  return std::to_string(static_cast<double>(us) / 1e6);
}

}  // namespace

void ConferenceParticipants::ingest(std::int64_t bridgeId,
                                    const std::vector<janus::Event>& events) {
  // One transaction per post (one commit, not several per event); what others should see or
  // the bridge should do happens after the commit, with the connection given back.
  std::vector<std::function<void()>> afterCommit;
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    for (const auto& ev : events) {
      if (ev.kind == janus::Event::Kind::Other || ev.kind == janus::Event::Kind::Created ||
          ev.room == 0)
        continue;
      auto conf = tx.exec(
          "SELECT id FROM conferences WHERE room = $1 AND bridge_id = $2 AND state IN ('starting', "
          "'active')",
          {ev.room, bridgeId});
      if (conf.empty()) continue;  // a room we do not manage, or one that has ended
      const std::int64_t cid = conf.int64(0, 0);
      const auto when = eventTime(ev.timestampUs);
      switch (ev.kind) {
        case janus::Event::Kind::Joined: {
          // Reconcile may have recorded the leg first, at the time it noticed: Janus's own time is
          // earlier and right. A join older than a leg already closed is stale and opens nothing.
          auto ins = tx.exec(
              "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, "
              "display_name, joined_at) "
              "SELECT $1, $2, $3, $4, $5, coalesce(to_timestamp($6::double precision), now()) "
              "WHERE NOT EXISTS (SELECT 1 FROM participant_legs WHERE room = $3 AND participant_id "
              "= $4 "
              "  AND left_at >= coalesce(to_timestamp($6::double precision), now())) "
              "ON CONFLICT (room, participant_id) WHERE left_at IS NULL "
              "DO UPDATE SET joined_at = least(participant_legs.joined_at, EXCLUDED.joined_at) "
              "RETURNING (xmax = 0) AS inserted",
              {cid, bridgeId, ev.room, ev.participant, ev.display.substr(0, 200), when});
          tx.exec(
              "UPDATE conferences SET empty_since = NULL, peak_participants = "
              "greatest(peak_participants, "
              "  (SELECT count(*) FROM participant_legs WHERE conference_id = $1 AND left_at IS "
              "NULL)) WHERE id = $1",
              {cid});
          if (!ins.empty() && ins.boolean(0, 0)) {
            afterCommit.emplace_back(
                [=, this] { view_.publishParticipant(cid, ev.participant, "joined", ev.display); });
          }
          break;
        }
        case janus::Event::Kind::Leaving:
        case janus::Event::Kind::Kicked: {
          auto upd = tx.exec(
              "UPDATE participant_legs SET left_at = coalesce(to_timestamp($3::double precision), "
              "now()), "
              "  end_reason = $4 WHERE room = $1 AND participant_id = $2 AND left_at IS NULL "
              "RETURNING display_name",
              {ev.room, ev.participant, when,
               ev.kind == janus::Event::Kind::Kicked ? "kicked" : "left"});
          if (upd.empty()) {
            // Already closed (reconcile saw the seat empty first, or an admin dropped them):
            // Janus's time is the true one, and "kicked" says more than the "left" reconcile had to
            // guess.
            tx.exec(
                "UPDATE participant_legs SET left_at = greatest(joined_at, least(left_at, "
                "    coalesce(to_timestamp($3::double precision), left_at))), "
                "  end_reason = CASE WHEN $4 AND end_reason = 'left' THEN 'kicked' ELSE end_reason "
                "END "
                "WHERE id = (SELECT id FROM participant_legs WHERE room = $1 AND participant_id = "
                "$2 "
                "  AND left_at IS NOT NULL ORDER BY left_at DESC LIMIT 1)",
                {ev.room, ev.participant, when, ev.kind == janus::Event::Kind::Kicked});
          }
          tx.exec(
              "UPDATE conferences SET empty_since = CASE WHEN NOT EXISTS (SELECT 1 FROM "
              "participant_legs "
              "  WHERE conference_id = $1 AND left_at IS NULL) THEN coalesce(empty_since, now()) "
              "ELSE NULL END "
              "WHERE id = $1",
              {cid});
          if (!upd.empty()) {
            afterCommit.emplace_back([=, this, display = upd.text(0, 0)] {
              view_.publishParticipant(cid, ev.participant, "left", display);
            });
          }
          break;
        }
        case janus::Event::Kind::Published:
        case janus::Event::Kind::Unpublished: {
          auto leg = tx.exec(
              "UPDATE participant_legs l SET publishing = $3 FROM conferences c "
              "WHERE l.room = $1 AND l.participant_id = $2 AND l.left_at IS NULL AND c.id = "
              "l.conference_id "
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
            view_.publishParticipant(
                cid, ev.participant,
                ev.kind == janus::Event::Kind::Published ? "published" : "unpublished", ev.display);
          });
          break;
        }
        case janus::Event::Kind::Destroyed:
          // Someone destroyed the room behind our back (Janus sends no leaving for those inside):
          // close the legs; reconcile re-creates the room.
          tx.exec(
              "UPDATE participant_legs SET left_at = now(), end_reason = 'room destroyed on the "
              "bridge' "
              "WHERE conference_id = $1 AND left_at IS NULL",
              {cid});
          log_.warn(kComponent, "ROOM_DESTROYED_EXTERNALLY", "room destroyed on the bridge",
                    std::to_string(cid));
          break;
        default:
          break;
      }
    }
    tx.commit();
  }
  for (const auto& f : afterCommit) f();
}

void ConferenceParticipants::reconcile(std::int64_t id, bool recreateMissing) {
  janus::RoomSpec spec;
  std::int64_t bridgeId = 0;
  {
    auto c = pool_.acquire();
    auto r = c->exec(
        "SELECT room, room_secret, bridge_id, pin, ports, name, state FROM conferences "
        "WHERE id = $1 AND state IN ('starting', 'active')",
        {id});
    if (r.empty() || r.isNull(0, 2)) return;
    spec = janus::RoomSpec{r.int64(0, 0), r.text(0, 5), r.text(0, 1), r.optText(0, 3),
                           static_cast<int>(r.int64(0, 4))};
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
      "SELECT participant_id, display_name FROM participant_legs WHERE conference_id = $1 AND "
      "left_at IS NULL",
      {id});
  std::set<std::int64_t> open;
  for (int i = 0; i < legs.rows(); ++i) {
    const std::int64_t pid = legs.int64(i, 0);
    open.insert(pid);
    if (!presentIds.count(pid)) {
      c->exec(
          "UPDATE participant_legs SET left_at = now(), end_reason = 'left' "
          "WHERE conference_id = $1 AND participant_id = $2 AND left_at IS NULL",
          {id, pid});
      view_.publishParticipant(id, pid, "left", legs.text(i, 1));
    }
  }
  for (const auto& p : present) {
    if (open.count(p.id)) continue;
    auto ins = c->exec(
        "INSERT INTO participant_legs (conference_id, bridge_id, room, participant_id, "
        "display_name, joined_at, publishing) "
        "VALUES ($1, $2, $3, $4, $5, now(), $6) ON CONFLICT (room, participant_id) WHERE left_at "
        "IS NULL DO NOTHING "
        "RETURNING id",
        {id, bridgeId, room, p.id, p.display.substr(0, 200), p.publisher});
    if (!ins.empty()) view_.publishParticipant(id, p.id, "joined", p.display);
  }
  c->exec(
      "UPDATE conferences SET peak_participants = greatest(peak_participants, $2), "
      "  empty_since = CASE WHEN $2 = 0 THEN coalesce(empty_since, now()) ELSE NULL END "
      "WHERE id = $1 AND (peak_participants < $2 OR ($2 = 0) <> (empty_since IS NOT NULL))",
      {id, static_cast<int>(present.size())});
}

ConferenceParticipants::LiveLeg ConferenceParticipants::liveLeg(db::Connection& c, std::int64_t id,
                                                                std::int64_t participant) {
  auto r = c.exec(
      "SELECT c.room, c.room_secret, c.bridge_id, l.id, l.display_name FROM conferences c "
      "JOIN participant_legs l ON l.conference_id = c.id AND l.left_at IS NULL AND "
      "l.participant_id = $2 "
      "WHERE c.id = $1 AND c.state IN ('starting', 'active')",
      {id, participant});
  if (r.empty()) {
    throw NotFound("participant " + std::to_string(participant) + " is not in running conference " +
                       std::to_string(id),
                   "participant_not_found");
  }
  return LiveLeg{r.int64(0, 0), r.text(0, 1), r.int64(0, 2), r.int64(0, 3), r.text(0, 4)};
}

void ConferenceParticipants::mute(std::int64_t id, std::int64_t participant, bool muted,
                                  const AuditedCommit& audit) {
  const LiveLeg leg = liveLeg(*pool_.acquire(), id, participant);
  bridges_.driver(leg.bridgeId)->mute(leg.room, leg.roomSecret, participant, muted);
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    tx.exec("UPDATE participant_legs SET muted = $2 WHERE id = $1", {leg.legId, muted});
    audit.commit(tx);
  }
  view_.publishParticipant(id, participant, muted ? "muted" : "unmuted", leg.display);
}

void ConferenceParticipants::drop(std::int64_t id, std::int64_t participant, const std::string& by,
                                  const AuditedCommit& audit) {
  const LiveLeg leg = [&] {
    auto c = pool_.acquire();
    const LiveLeg found = liveLeg(*c, id, participant);
    // The leg is closed before the kick: Janus's own "kicked" event can arrive first otherwise.
    c->exec(
        "UPDATE participant_legs SET left_at = now(), end_reason = $2 WHERE id = $1 AND left_at IS "
        "NULL",
        {found.legId, "dropped by " + by});
    return found;
  }();
  try {
    bridges_.driver(leg.bridgeId)->kick(leg.room, leg.roomSecret, participant);
  } catch (...) {
    pool_.acquire()->exec(
        "UPDATE participant_legs SET left_at = NULL, end_reason = NULL WHERE id = $1", {leg.legId});
    throw;
  }
  // The leg was closed before the kick (and reopened if it failed); the drop is recorded with
  // the change that completes it.
  {
    auto c = pool_.acquire();
    db::Transaction tx(*c);
    tx.exec(
        "UPDATE conferences SET empty_since = CASE WHEN NOT EXISTS (SELECT 1 FROM participant_legs "
        "  WHERE conference_id = $1 AND left_at IS NULL) THEN now() ELSE NULL END WHERE id = $1",
        {id});
    audit.commit(tx);
  }
  view_.publishParticipant(id, participant, "left", leg.display);
}

}  // namespace vcrm::conference
