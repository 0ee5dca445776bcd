// The live event stream (server-sent events) that the console's pages follow. Each stream holds
// a request worker, so streams are capped per session, per user and in all; and a stream lives
// only as long as its session: it is re-checked every few seconds and ends once the session
// does (sign-out, a role change, a disable, a password reset, expiry).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "vcrm/common/config.h"
#include "vcrm/common/guarded.h"
#include "vcrm/daemon/event_bus.h"
#include "vcrm/daemon/module.h"

namespace vcrm {

// The streams open now, per session, per user and in all, against their caps. A slot is given
// back when the last copy of the handle take() returned goes away (the stream ended, or its
// response was never sent).
class EventStreamSlots : public std::enable_shared_from_this<EventStreamSlots> {
 public:
  struct Limits {
    int perSession = 2;
    int perUser = 4;
    int total = 16;
  };
  // The limits the configuration asks for; StartupError if events.max_streams would let
  // streams take more than half of the request workers.
  static Limits fromConfig(const Config& config);
  explicit EventStreamSlots(Limits limits) : limits_(limits) {}

  // A slot for one more stream of `session` (its token's hash) and `userId`, or
  // RateLimited("too_many_streams") naming the cap that is reached.
  std::shared_ptr<const void> take(const std::string& session, std::int64_t userId);
  const Limits& limits() const { return limits_; }

 private:
  struct State {
    std::map<std::string, int> bySession;
    std::map<std::int64_t, int> byUser;
    int total = 0;
  };
  void giveBack(const std::string& session, std::int64_t userId);
  Limits limits_;
  Guarded<State> state_;
};

class EventsModule : public NamedModule {
 public:
  // How often an open stream re-checks its session.
  static constexpr std::chrono::seconds kRecheckEvery{2};

  explicit EventsModule(const ModuleContext& ctx);
  std::vector<Route> routes() override;

 private:
  EventBus& bus_;
  AuthService& auth_;
  Logger& log_;
  std::shared_ptr<EventStreamSlots> slots_;
};

}  // namespace vcrm
