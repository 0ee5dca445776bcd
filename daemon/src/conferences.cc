#include "vcrm/daemon/conferences.h"

#include "conference_parts.h"

namespace vcrm {

ConferenceService::ConferenceService(db::Pool& pool, Logger& log, EventBus& bus, BridgeService& bridges,
                                     Options options)
    : options_(options) {
  view_ = std::make_unique<conference::ConferenceView>(pool, log, bus);
  booking_ = std::make_unique<conference::ConferenceBooking>(pool, log, bridges, *view_, options_,
                                                             [this] { wakeScheduler(); });
  participants_ = std::make_unique<conference::ConferenceParticipants>(pool, log, bridges, *view_);
  scheduler_ =
      std::make_unique<conference::ConferenceScheduler>(pool, log, bridges, *view_, *participants_, options_);
}

ConferenceService::~ConferenceService() = default;

json::ObjectPtr ConferenceService::create(const std::string& owner, const json::ObjectPtr& body,
                                          const AuditedCommit& audit) {
  return booking_->create(owner, body, audit);
}
json::ObjectPtr ConferenceService::get(std::int64_t id) { return view_->get(id); }
json::ObjectPtr ConferenceService::list(const std::map<std::string, std::string>& query) {
  return view_->list(query);
}
json::ObjectPtr ConferenceService::dashboard() { return view_->dashboard(); }
json::ObjectPtr ConferenceService::update(std::int64_t id, const json::ObjectPtr& body,
                                          const AuditedCommit& audit) {
  return booking_->update(id, body, audit);
}
json::ObjectPtr ConferenceService::updateSeries(std::int64_t id, const json::ObjectPtr& body,
                                                const AuditedCommit& audit) {
  return booking_->updateSeries(id, body, audit);
}
json::ObjectPtr ConferenceService::extend(std::int64_t id, int minutes,
                                          const AuditedCommit& audit) {
  return booking_->extend(id, minutes, audit);
}
json::ObjectPtr ConferenceService::cancel(std::int64_t id, bool wholeSeries,
                                          const AuditedCommit& audit) {
  return scheduler_->cancel(id, wholeSeries, audit);
}
json::ObjectPtr ConferenceService::terminate(std::int64_t id, const std::string& by,
                                             const AuditedCommit& audit) {
  return scheduler_->terminate(id, by, audit);
}
void ConferenceService::endNow(std::int64_t id, const std::string& cause) {
  scheduler_->endNow(id, cause);
}
void ConferenceService::muteParticipant(std::int64_t id, std::int64_t participant, bool muted,
                                        const AuditedCommit& audit) {
  participants_->mute(id, participant, muted, audit);
}
void ConferenceService::dropParticipant(std::int64_t id, std::int64_t participant,
                                        const std::string& by, const AuditedCommit& audit) {
  participants_->drop(id, participant, by, audit);
}
void ConferenceService::ingest(std::int64_t bridgeId, const std::vector<janus::Event>& events) {
  participants_->ingest(bridgeId, events);
}
void ConferenceService::tick() { scheduler_->tick(); }
void ConferenceService::resume() { scheduler_->resume(); }
void ConferenceService::relocateOrFail(std::int64_t bridgeId) { scheduler_->relocateOrFail(bridgeId); }

}  // namespace vcrm
