// The conference lifecycle as one table: states, events, the next state and the action each
// transition takes. Every change of a conference's state goes through transition() (Kea HA's
// state model, CODING.md point 6); a (state, event) pair not in the table is refused.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vcrm::lifecycle {

enum class State { Scheduled, Starting, Active, Ended, Failed, Cancelled };

enum class Event {
  PrelaunchDue,  // the start is within the pre-launch lead
  RoomCreated,   // the bridge confirmed the room
  RoomFailed,    // no bridge of the pool could create the room
  StartTime,     // the booked start has come
  EndTime,       // the booked end has come
  EmptyGrace,    // auto-end: empty for the grace period
  StartMissed,   // the whole window passed while nothing ran it
  Terminate,     // an admin ended it
  Cancel,        // an admin cancelled the booking
  BridgeLost,    // its bridge went down and no other could take it
  Relocated,     // its bridge went down and another took it
};

// What entering the next state does (each transition names one).
enum class Action {
  CreateRoom,         // create the room on the bridge
  Publish,            // tell the watchers; nothing else changes
  MarkActive,         // record the actual start
  EndAndRecord,       // reconcile the legs, close them, destroy the room, write the CDR
  FailAndRecord,      // close the legs and write the CDR; the room is not asked for
  CancelBooking,      // close the booking (and a room made early), no CDR
  RecreateElsewhere,  // close the legs on the lost bridge, create the room on the new one
};

struct Transition {
  State from;
  Event event;
  State to;
  Action action;
};

// The whole table, in one place.
const std::vector<Transition>& transitions();
// The transition for (from, event), or nullopt when the table refuses it.
std::optional<Transition> transition(State from, Event event);
// The states `event` may be applied to, as the names stored in conferences.state.
std::vector<std::string> statesAccepting(Event event);
bool isTerminal(State s);

std::string_view name(State s);  // "scheduled", ... as stored in the database
std::string_view name(Event e);  // "prelaunch_due", ...
std::string_view name(Action a);
std::optional<State> stateFromName(std::string_view name);
const std::vector<State>& allStates();
const std::vector<Event>& allEvents();

}  // namespace vcrm::lifecycle
