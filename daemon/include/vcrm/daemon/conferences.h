// Conferences: booking with admission control and placement, recurring series, and the
// lifecycle scheduled -> starting -> active -> ended (or failed, cancelled) driven on the
// bridges. Participant legs come from bridge events and are reconciled by polling.
// ConferenceService is the facade the module's routes and workers call; the work is done by
// its parts (daemon/src/conference_*.cc): view, booking, participants, scheduler. The
// lifecycle table is conference_lifecycle.h, the calendar arithmetic calendar.h.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/db.h"
#include "vcrm/common/json.h"
#include "vcrm/common/log.h"
#include "vcrm/daemon/audit.h"
#include "vcrm/daemon/bridges.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/janus.h"

namespace vcrm {

// The fields of a booking change (PATCH), checked for form before anything is read or locked.
struct BookingChanges {
  std::optional<std::string> name;
  std::optional<std::string> start;
  std::optional<std::string> end;
  std::optional<std::int64_t> duration;
  std::optional<std::int64_t> ports;
  std::optional<std::string> pin;
  std::optional<bool> autoEnd;
};

namespace conference {
class ConferenceView;
class ConferenceBooking;
class ConferenceParticipants;
class ConferenceScheduler;
}  // namespace conference

class ConferenceService {
 public:
  struct Options {
    std::chrono::seconds prelaunch{60};         // room created this long before start
    std::chrono::milliseconds tick{500};        // lifecycle loop period
    std::chrono::seconds reconcileEvery{2};     // listparticipants polling
    int reconcileWorkers = 4;                   // conferences reconciled at once (each holds a DB connection)
    std::chrono::seconds emptyGrace{120};       // auto-end after this long empty
    int maxOccurrences = 366;
    // The concurrent ports the licence allows on all bridges together, asked at each booking;
    // empty: no licence limit (tests of the parts).
    std::function<std::int64_t()> licensedPorts;
  };
  ConferenceService(db::Pool& pool, Logger& log, EventBus& bus, BridgeService& bridges,
                    Options options);
  ~ConferenceService();

  const Options& options() const { return options_; }
  // Called when a change needs a lifecycle pass soon (a booking that starts now); the module
  // wakes its scheduler worker.
  void onWork(std::function<void()> wake) { wake_ = std::move(wake); }

  // The changes a request asks for commit through `audit`, with the request's audit row.
  json::ObjectPtr create(const std::string& owner, const json::ObjectPtr& body,
                         const AuditedCommit& audit);
  json::ObjectPtr get(std::int64_t id);  // with live participants
  json::ObjectPtr list(const std::map<std::string, std::string>& query);
  // What the dashboard shows, without PINs or names (the NOC may read it): live conferences,
  // participants now, bridges by health, and conferences and participants per hour for the
  // last 24 hours.
  json::ObjectPtr dashboard();
  json::ObjectPtr update(std::int64_t id, const json::ObjectPtr& body, const AuditedCommit& audit);
  // Applies the same change to occurrence `id` (not yet begun) and every later occurrence of its
  // series that has not begun, in one transaction: all of them or, with a 409 naming the first
  // that does not fit, none. A new start shifts each by the same local wall-clock amount.
  json::ObjectPtr updateSeries(std::int64_t id, const json::ObjectPtr& body,
                               const AuditedCommit& audit);
  json::ObjectPtr cancel(std::int64_t id, bool wholeSeries, const AuditedCommit& audit);
  json::ObjectPtr terminate(std::int64_t id, const std::string& by, const AuditedCommit& audit);
  json::ObjectPtr extend(std::int64_t id, int minutes, const AuditedCommit& audit);
  // Ends a running conference now for the system's own reason (`cause`, in its CDR): a restore
  // ends the conferences that the database it swaps in does not have running.
  void endNow(std::int64_t id, const std::string& cause);
  void muteParticipant(std::int64_t id, std::int64_t participant, bool muted,
                       const AuditedCommit& audit);
  void dropParticipant(std::int64_t id, std::int64_t participant, const std::string& by,
                       const AuditedCommit& audit);

  // Janus event-handler posts from bridge `bridgeId`.
  void ingest(std::int64_t bridgeId, const std::vector<janus::Event>& events);

  // One pass of the lifecycle: pre-launch, start, end, reconcile (the scheduler worker's pass).
  void tick();
  // Re-attaches live rooms after a restart (the scheduler worker's start).
  void resume();
  // Moves the live conferences of a bridge that went down within its pool, or fails them.
  void relocateOrFail(std::int64_t bridgeId);

 private:
  void wakeScheduler() const {
    if (wake_) wake_();
  }

  Options options_;
  std::function<void()> wake_;
  // The parts, in the order they depend on each other.
  std::unique_ptr<conference::ConferenceView> view_;
  std::unique_ptr<conference::ConferenceBooking> booking_;
  std::unique_ptr<conference::ConferenceParticipants> participants_;
  std::unique_ptr<conference::ConferenceScheduler> scheduler_;
};

}  // namespace vcrm
