#include "modules/events/events_module.h"

#include <algorithm>
#include <regex>

#include "vcrm/common/crypto.h"
#include "vcrm/common/error.h"
#include "vcrm/daemon/auth.h"

namespace vcrm {

namespace {

constexpr const char* kComponent = "events";

// Which events a stream carries: conference and participant changes carry PINs and names
// (admins only); backup and restore progress is for admin and support, upgrades for admin and
// operator; everyone (the NOC, operators) sees bridge changes.
bool mayRead(const Session& s, const std::string& type) {
  if (type == "bridge") return true;
  if (type == "backup" || type == "restore")
    return s.user.hasRole("admin") || s.user.hasRole("support");
  if (type == "upgrade") return s.user.hasRole("admin") || s.user.hasRole("operator");
  return s.user.hasRole("admin");
}

bool mayReadConferences(const Session& s) {
  return mayRead(s, "conference");
}

}  // namespace

EventStreamSlots::Limits EventStreamSlots::fromConfig(const Config& config) {
  Limits l;
  l.perSession = config.eventsMaxPerSession;
  l.perUser = config.eventsMaxPerUser;
  const int half = std::max(1, config.httpThreads / 2);
  if (config.eventsMaxStreams > half) {
    throw StartupError("events.max_streams = " + std::to_string(config.eventsMaxStreams) +
                       " would let live event streams hold more than half of the http.threads = " +
                       std::to_string(config.httpThreads) + " request workers: use at most " +
                       std::to_string(half) + ", or 0 for a quarter of them");
  }
  l.total =
      config.eventsMaxStreams > 0 ? config.eventsMaxStreams : std::max(1, config.httpThreads / 4);
  return l;
}

std::shared_ptr<const void> EventStreamSlots::take(const std::string& session,
                                                   std::int64_t userId) {
  {
    auto st = state_.lock();
    const int inSession = st->bySession.count(session) ? st->bySession.at(session) : 0;
    const int ofUser = st->byUser.count(userId) ? st->byUser.at(userId) : 0;
    if (inSession >= limits_.perSession) {
      throw RateLimited(
          "this session already has " + std::to_string(inSession) +
              " live event streams open, the most one session may have; close another "
              "tab or window of the console and try again",
          3, "too_many_streams");
    }
    if (ofUser >= limits_.perUser) {
      throw RateLimited("your account already has " + std::to_string(ofUser) +
                            " live event streams open, the most one user may have; close the "
                            "console in another browser and try again",
                        3, "too_many_streams");
    }
    if (st->total >= limits_.total) {
      throw RateLimited("the appliance already serves its most live event streams (" +
                            std::to_string(limits_.total) + "); try again shortly",
                        3, "too_many_streams");
    }
    ++st->bySession[session];
    ++st->byUser[userId];
    ++st->total;
  }
  // The handle's deleter gives the slot back; it keeps the counters alive as long as it lives.
  auto self = shared_from_this();
  return std::shared_ptr<const void>(
      this, [self, session, userId](const void*) { self->giveBack(session, userId); });
}

void EventStreamSlots::giveBack(const std::string& session, std::int64_t userId) {
  auto st = state_.lock();
  if (--st->bySession[session] <= 0) st->bySession.erase(session);
  if (--st->byUser[userId] <= 0) st->byUser.erase(userId);
  --st->total;
}

EventsModule::EventsModule(const ModuleContext& ctx)
    : NamedModule("events"),
      bus_(ctx.bus),
      auth_(ctx.auth),
      log_(ctx.log),
      slots_(std::make_shared<EventStreamSlots>(EventStreamSlots::fromConfig(ctx.config))) {}

std::vector<Route> EventsModule::routes() {
  std::vector<Route> out;
  out.push_back(userRoute("GET", "/api/v1/events", "events", [this](RequestContext& ctx) {
    // Taken before the response exists: a refusal is a 429 through the error map.
    auto slot = slots_->take(crypto::sha256Hex(ctx.token), ctx.session->user.id);
    std::uint64_t after = bus_.lastId();
    const std::string last = ctx.request.header("last-event-id");
    if (!last.empty() && std::regex_match(last, std::regex("^[0-9]{1,18}$")))
      after = std::stoull(last);
    http::Response r;
    r.contentType = "text/event-stream";
    r.headers.emplace_back("Cache-Control", "no-store");
    r.stream = [this, slot, token = ctx.token, user = ctx.session->user.username, after,
                reader = *ctx.session](std::ostream& os) mutable {
      using Clock = std::chrono::steady_clock;
      // Held while this stream forwards: App::stop() waits for it after closing the bus, so
      // the last events before a restart are written out before the listeners go.
      const auto held = bus_.reader();
      os << "retry: 3000\n\n";
      os.flush();
      auto nextCheck = Clock::now() + kRecheckEvery;
      bool wrote = false;  // since the last check
      while (os.good() && !bus_.closed()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(nextCheck - Clock::now());
        auto msgs = bus_.waitAfter(after, std::max(left, std::chrono::milliseconds(0)));
        if (Clock::now() >= nextCheck) {
          // No connection is held while waiting: revalidate() leases one for its query only.
          std::optional<Session> session;
          try {
            session = auth_.revalidate(token);
          } catch (const std::exception& e) {
            log_.warn(kComponent, "STREAM_RECHECK_FAILED",
                      std::string("ending the stream: ") + e.what(), user);
            return;
          }
          if (!session || session->user.mustChangePassword) {
            log_.info(kComponent, "STREAM_SESSION_ENDED",
                      "the session ended: closing its event stream", user);
            return;
          }
          if (mayReadConferences(reader) && !mayReadConferences(*session)) {
            log_.info(kComponent, "STREAM_NARROWED",
                      "the user lost the admin role: bridge events only from now", user);
          }
          reader = *session;
          nextCheck = Clock::now() + kRecheckEvery;
          // Also how a vanished client is noticed (a write to a closed connection fails), so
          // its slot is soon free again.
          if (!wrote) os << ": keep-alive\n\n";
          wrote = false;
        }
        for (const auto& m : msgs) {
          after = m.id;
          if (!mayRead(reader, m.type)) continue;
          os << "id: " << m.id << "\nevent: " << m.type << "\ndata: " << m.json << "\n\n";
          wrote = true;
        }
        os.flush();
      }
    };
    return r;
  }));

  return out;
}

}  // namespace vcrm
