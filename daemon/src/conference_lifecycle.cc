#include "vcrm/daemon/conference_lifecycle.h"

namespace vcrm::lifecycle {

const std::vector<Transition>& transitions() {
  using S = State;
  using E = Event;
  using A = Action;
  static const std::vector<Transition> table = {
      {S::Scheduled, E::PrelaunchDue, S::Starting, A::CreateRoom},
      {S::Scheduled, E::StartMissed, S::Failed, A::FailAndRecord},
      {S::Scheduled, E::Cancel, S::Cancelled, A::CancelBooking},

      {S::Starting, E::RoomCreated, S::Starting, A::Publish},
      {S::Starting, E::RoomFailed, S::Failed, A::FailAndRecord},
      {S::Starting, E::StartTime, S::Active, A::MarkActive},
      {S::Starting, E::EndTime, S::Ended, A::EndAndRecord},
      {S::Starting, E::Terminate, S::Ended, A::EndAndRecord},
      {S::Starting, E::Cancel, S::Cancelled, A::CancelBooking},
      {S::Starting, E::BridgeLost, S::Failed, A::FailAndRecord},
      {S::Starting, E::Relocated, S::Starting, A::RecreateElsewhere},

      {S::Active, E::EndTime, S::Ended, A::EndAndRecord},
      {S::Active, E::EmptyGrace, S::Ended, A::EndAndRecord},
      {S::Active, E::Terminate, S::Ended, A::EndAndRecord},
      {S::Active, E::BridgeLost, S::Failed, A::FailAndRecord},
      {S::Active, E::Relocated, S::Active, A::RecreateElsewhere},
      // ended, failed and cancelled are final: nothing leaves them.
  };
  return table;
}

std::optional<Transition> transition(State from, Event event) {
  for (const auto& t : transitions()) {
    if (t.from == from && t.event == event) return t;
  }
  return std::nullopt;
}

std::vector<std::string> statesAccepting(Event event) {
  std::vector<std::string> out;
  for (const auto& t : transitions()) {
    if (t.event == event) out.emplace_back(name(t.from));
  }
  return out;
}

bool isTerminal(State s) {
  return s == State::Ended || s == State::Failed || s == State::Cancelled;
}

std::string_view name(State s) {
  switch (s) {
    case State::Scheduled:
      return "scheduled";
    case State::Starting:
      return "starting";
    case State::Active:
      return "active";
    case State::Ended:
      return "ended";
    case State::Failed:
      return "failed";
    case State::Cancelled:
      return "cancelled";
  }
  return "?";
}

std::string_view name(Event e) {
  switch (e) {
    case Event::PrelaunchDue:
      return "prelaunch_due";
    case Event::RoomCreated:
      return "room_created";
    case Event::RoomFailed:
      return "room_failed";
    case Event::StartTime:
      return "start_time";
    case Event::EndTime:
      return "end_time";
    case Event::EmptyGrace:
      return "empty_grace";
    case Event::StartMissed:
      return "start_missed";
    case Event::Terminate:
      return "terminate";
    case Event::Cancel:
      return "cancel";
    case Event::BridgeLost:
      return "bridge_lost";
    case Event::Relocated:
      return "relocated";
  }
  return "?";
}

std::string_view name(Action a) {
  switch (a) {
    case Action::CreateRoom:
      return "create_room";
    case Action::Publish:
      return "publish";
    case Action::MarkActive:
      return "mark_active";
    case Action::EndAndRecord:
      return "end_and_record";
    case Action::FailAndRecord:
      return "fail_and_record";
    case Action::CancelBooking:
      return "cancel_booking";
    case Action::RecreateElsewhere:
      return "recreate_elsewhere";
  }
  return "?";
}

std::optional<State> stateFromName(std::string_view n) {
  for (auto s : allStates()) {
    if (name(s) == n) return s;
  }
  return std::nullopt;
}

const std::vector<State>& allStates() {
  static const std::vector<State> all = {State::Scheduled, State::Starting, State::Active,
                                         State::Ended,     State::Failed,   State::Cancelled};
  return all;
}

const std::vector<Event>& allEvents() {
  static const std::vector<Event> all = {Event::PrelaunchDue, Event::RoomCreated, Event::RoomFailed,
                                         Event::StartTime,    Event::EndTime,     Event::EmptyGrace,
                                         Event::StartMissed,  Event::Terminate,   Event::Cancel,
                                         Event::BridgeLost,   Event::Relocated};
  return all;
}

}  // namespace vcrm::lifecycle
