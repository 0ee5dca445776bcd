// The parts ConferenceService is made of, each one story: ConferenceView (reading and
// publishing), ConferenceBooking (admission, placement, series, edits), ConferenceParticipants
// (bridge events, reconcile, mute and drop) and ConferenceScheduler (pre-launch, start, end,
// relocation). None holds a database connection while it waits on a bridge or on another part.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/guarded.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/bridges.h"
#include "vcrm/daemon/conference_lifecycle.h"
#include "vcrm/daemon/conferences.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/janus.h"

namespace vcrm::conference {

inline constexpr const char* kComponent = "conferences";

// A PostgreSQL text[] literal of names we chose (states, weekday codes): never user text.
std::string pgTextArray(const std::vector<std::string>& items);

struct Placement {
  std::int64_t bridgeId;
  std::string bridgeName;
};

// What users and watchers see of a conference, and the bus messages that tell them of changes.
class ConferenceView {
 public:
  ConferenceView(db::Pool& pool, Logger& log, EventBus& bus) : pool_(pool), log_(log), bus_(bus) {}
  json::ObjectPtr conferenceJson(db::Connection& c, std::int64_t id, bool withParticipants);
  json::ObjectPtr get(std::int64_t id);
  json::ObjectPtr list(const std::map<std::string, std::string>& query);
  json::ObjectPtr dashboard();
  // Takes a connection of its own: the caller must hold none.
  void publishConference(std::int64_t id);
  void publishParticipant(std::int64_t conferenceId, std::int64_t participant,
                          const std::string& action, const std::string& display);

 private:
  db::Pool& pool_;
  Logger& log_;
  EventBus& bus_;
};

// Bookings: admission (no bridge over capacity at any instant), placement on the least-loaded
// bridge, series in local wall-clock time, and edits of single bookings and whole series.
class ConferenceBooking {
 public:
  ConferenceBooking(db::Pool& pool, Logger& log, BridgeService& bridges, ConferenceView& view,
                    const ConferenceService::Options& options, std::function<void()> wake)
      : pool_(pool),
        log_(log),
        bridges_(bridges),
        view_(view),
        options_(options),
        wake_(std::move(wake)) {}
  json::ObjectPtr create(const std::string& owner, const json::ObjectPtr& body,
                         const AuditedCommit& audit);
  json::ObjectPtr update(std::int64_t id, const json::ObjectPtr& body, const AuditedCommit& audit);
  json::ObjectPtr updateSeries(std::int64_t id, const json::ObjectPtr& body,
                               const AuditedCommit& audit);
  json::ObjectPtr extend(std::int64_t id, int minutes, const AuditedCommit& audit);

  // Serialises every change that adds reserved ports, whatever the bridge, so the licence's
  // global limit holds under concurrent bookings. Taken first in a transaction (before any
  // conference or bridge row), so it adds no lock-order cycle.
  static void lockAdmission(db::Transaction& tx);
  // The licence's limit: the ports reserved on all bridges at the peak of [start, end) (without
  // conference `exclude`) plus `ports` must not exceed the licensed concurrent ports; a 409
  // licence_ports saying so otherwise. The caller holds lockAdmission.
  void checkLicence(db::Transaction& tx, const std::string& start, const std::string& end,
                    int ports, std::optional<std::int64_t> exclude);

  // The bridge that takes `ports` over [start, end), least loaded first, inside `tx` with the
  // candidate bridges locked. nullopt: `refusal` says why.
  static std::optional<Placement> place(db::Transaction& tx, const std::string& start,
                                        const std::string& end, int ports,
                                        std::optional<std::int64_t> bridgeId,
                                        std::optional<std::string> pool,
                                        std::optional<std::int64_t> exclude,
                                        std::optional<std::int64_t> avoidBridge,
                                        std::string* refusal);

 private:
  std::optional<Placement> rebook(db::Transaction& tx, std::int64_t id, const BookingChanges& ch,
                                  const std::string& start, const std::string& end, int ports,
                                  std::optional<std::int64_t> current, bool mayMove,
                                  const std::optional<std::string>& pool, std::string* refusal);
  bool knownTimeZone(db::Connection& c, const std::string& tz);

  db::Pool& pool_;
  Logger& log_;
  BridgeService& bridges_;
  ConferenceView& view_;
  const ConferenceService::Options& options_;
  std::function<void()> wake_;
  Guarded<std::set<std::string>> timeZones_;  // IANA names, read once
};

// Participant legs: recorded from bridge events, brought in line with the bridge by polling,
// and muted or dropped by admins.
class ConferenceParticipants {
 public:
  ConferenceParticipants(db::Pool& pool, Logger& log, BridgeService& bridges, ConferenceView& view)
      : pool_(pool), log_(log), bridges_(bridges), view_(view) {}
  void ingest(std::int64_t bridgeId, const std::vector<janus::Event>& events);
  // Brings the recorded participants in line with the bridge. A room the bridge says is gone
  // ("no such room") is made again only when `recreateMissing`; any other failure throws and
  // leaves the legs as they are.
  void reconcile(std::int64_t id, bool recreateMissing = true);
  void mute(std::int64_t id, std::int64_t participant, bool muted, const AuditedCommit& audit);
  void drop(std::int64_t id, std::int64_t participant, const std::string& by,
            const AuditedCommit& audit);

 private:
  struct LiveLeg {
    std::int64_t room;
    std::string roomSecret;
    std::int64_t bridgeId;
    std::int64_t legId;
    std::string display;
  };
  static LiveLeg liveLeg(db::Connection& c, std::int64_t id, std::int64_t participant);

  db::Pool& pool_;
  Logger& log_;
  BridgeService& bridges_;
  ConferenceView& view_;
};

// The lifecycle driven by the clock and by bridges: pre-launch, start, end, cancel, terminate,
// relocation off a lost bridge, and re-attaching live rooms after a restart. Every state change
// goes through the lifecycle table.
class ConferenceScheduler {
 public:
  ConferenceScheduler(db::Pool& pool, Logger& log, BridgeService& bridges, ConferenceView& view,
                      ConferenceParticipants& participants,
                      const ConferenceService::Options& options)
      : pool_(pool),
        log_(log),
        bridges_(bridges),
        view_(view),
        participants_(participants),
        options_(options) {}
  void tick();
  void resume();
  json::ObjectPtr cancel(std::int64_t id, bool wholeSeries, const AuditedCommit& audit);
  json::ObjectPtr terminate(std::int64_t id, const std::string& by, const AuditedCommit& audit);
  // Ends a running conference now for the system's own reason (a restore replacing the database
  // it lives in): legs closed, room destroyed, CDR written. A conference not running is left.
  void endNow(std::int64_t id, const std::string& cause);
  // Moves the live conferences of a bridge that went down to another of their pool, or fails them.
  void relocateOrFail(std::int64_t bridgeId);

 private:
  void launch(std::int64_t id);
  // Applies a final event (end_time, terminate, cancel, room_failed, bridge_lost...) through the
  // lifecycle table: closes the legs, writes the CDR, destroys the room when the action says so.
  // A request's cancel or terminate commits through its `audit`; the clock's and the bridges'
  // finishes pass none.
  void finish(std::int64_t id, lifecycle::Event event, const std::string& cause,
              const std::string& legReason, const AuditedCommit& audit);
  void reconcileAll(const std::vector<std::int64_t>& ids);

  db::Pool& pool_;
  Logger& log_;
  BridgeService& bridges_;
  ConferenceView& view_;
  ConferenceParticipants& participants_;
  const ConferenceService::Options& options_;
  std::chrono::steady_clock::time_point lastReconcile_{};
  std::chrono::steady_clock::time_point lastSlowWarning_{};
};

}  // namespace vcrm::conference
