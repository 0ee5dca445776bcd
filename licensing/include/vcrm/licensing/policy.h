// What a licence allows and when: whether a candidate licence may replace the active one, the
// state of the active licence at a time (evaluation, valid, grace, expired), and the diff an
// admin previews. Pure functions of their arguments (times are seconds since the epoch, UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vcrm/common/json.h"
#include "vcrm/licensing/licence.h"
#include "vcrm/licensing/refusal.h"

namespace vcrm::licensing {

struct Limits {
  std::int64_t concurrentPorts = 0;
  std::int64_t bridges = 0;
  bool redundancy = false;
  bool operator==(const Limits&) const = default;
};

// Without a licence (or once one has expired past its grace) the appliance runs with these.
inline constexpr Limits kEvaluationLimits{10, 2, false};

// The time the appliance trusts: the clock, but never before the latest time it has seen, so
// setting the clock back does not bring a licence back to life.
inline std::int64_t trustedNow(std::int64_t now, std::int64_t latestSeenTime) {
  return now > latestSeenTime ? now : latestSeenTime;
}

// nullopt when `candidate` may become the active licence of the server with `serial` and `role`.
std::optional<Refusal> checkApplicable(const Licence& candidate,
                                       const std::optional<Licence>& active,
                                       std::string_view serial, Role role, std::int64_t now,
                                       std::int64_t latestSeenTime);

enum class State { Evaluation, NotYetValid, Valid, Grace, Expired };
std::string_view stateName(State s);

struct Status {
  State state = State::Evaluation;
  Limits limits = kEvaluationLimits;     // what admission enforces now
  std::optional<std::int64_t> endsAt;    // valid: valid_until; grace: the end of grace
  std::optional<std::int64_t> daysLeft;  // whole days to endsAt, rounded up
  std::string message;                   // for the dashboard: what the state means and what to do
};

Status evaluate(const std::optional<Licence>& active, std::int64_t now,
                std::int64_t latestSeenTime);
json::ObjectPtr toJson(const Status& s);
json::ObjectPtr toJson(const Limits& l);

// One field that differs between the active licence and a candidate; "before" is null when
// there is no active licence (the evaluation limits stand in for its features).
struct Change {
  std::string field;  // "features.concurrent_ports", "valid_until"
  Poco::Dynamic::Var before;
  Poco::Dynamic::Var after;
};
std::vector<Change> diff(const std::optional<Licence>& active, const Licence& candidate);
json::ArrayPtr toJson(const std::vector<Change>& changes);

}  // namespace vcrm::licensing
