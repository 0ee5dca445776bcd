// The conference lifecycle table, every (state, event) pair: the transitions the design names
// lead where they should with the action they should take, and every other pair is refused.
#include "vcrm/daemon/conference_lifecycle.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace lc = vcrm::lifecycle;
using lc::Action;
using lc::Event;
using lc::State;

namespace {

// Written out independently of the table under test.
const std::map<std::pair<State, Event>, std::pair<State, Action>>& expected() {
  static const std::map<std::pair<State, Event>, std::pair<State, Action>> e = {
      {{State::Scheduled, Event::PrelaunchDue}, {State::Starting, Action::CreateRoom}},
      {{State::Scheduled, Event::StartMissed}, {State::Failed, Action::FailAndRecord}},
      {{State::Scheduled, Event::Cancel}, {State::Cancelled, Action::CancelBooking}},
      {{State::Starting, Event::RoomCreated}, {State::Starting, Action::Publish}},
      {{State::Starting, Event::RoomFailed}, {State::Failed, Action::FailAndRecord}},
      {{State::Starting, Event::StartTime}, {State::Active, Action::MarkActive}},
      {{State::Starting, Event::EndTime}, {State::Ended, Action::EndAndRecord}},
      {{State::Starting, Event::Terminate}, {State::Ended, Action::EndAndRecord}},
      {{State::Starting, Event::Cancel}, {State::Cancelled, Action::CancelBooking}},
      {{State::Starting, Event::BridgeLost}, {State::Failed, Action::FailAndRecord}},
      {{State::Starting, Event::Relocated}, {State::Starting, Action::RecreateElsewhere}},
      {{State::Active, Event::EndTime}, {State::Ended, Action::EndAndRecord}},
      {{State::Active, Event::EmptyGrace}, {State::Ended, Action::EndAndRecord}},
      {{State::Active, Event::Terminate}, {State::Ended, Action::EndAndRecord}},
      {{State::Active, Event::BridgeLost}, {State::Failed, Action::FailAndRecord}},
      {{State::Active, Event::Relocated}, {State::Active, Action::RecreateElsewhere}},
  };
  return e;
}

TEST(ConferenceLifecycleTest, EveryStateAndEventPairIsEitherTheNamedTransitionOrRefused) {
  int checked = 0;
  for (auto s : lc::allStates()) {
    for (auto e : lc::allEvents()) {
      ++checked;
      const auto t = lc::transition(s, e);
      const auto it = expected().find({s, e});
      const std::string pair = std::string(lc::name(s)) + " + " + std::string(lc::name(e));
      if (it == expected().end()) {
        EXPECT_FALSE(t) << pair << " should be refused, goes to " << lc::name(t->to);
        continue;
      }
      ASSERT_TRUE(t) << pair << " is refused";
      EXPECT_EQ(t->from, s);
      EXPECT_EQ(t->event, e);
      EXPECT_EQ(t->to, it->second.first) << pair << " goes to " << lc::name(t->to);
      EXPECT_EQ(t->action, it->second.second) << pair << " does " << lc::name(t->action);
    }
  }
  EXPECT_EQ(checked, 6 * 11);
  EXPECT_EQ(lc::transitions().size(), expected().size())
      << "the table has a pair twice or one not named here";
}

TEST(ConferenceLifecycleTest, NothingLeavesAFinalState) {
  for (auto s : {State::Ended, State::Failed, State::Cancelled}) {
    EXPECT_TRUE(lc::isTerminal(s));
    for (auto e : lc::allEvents())
      EXPECT_FALSE(lc::transition(s, e)) << lc::name(s) << " + " << lc::name(e);
  }
  for (auto s : {State::Scheduled, State::Starting, State::Active}) EXPECT_FALSE(lc::isTerminal(s));
}

// The scheduler applies a final event with one UPDATE over every state that accepts it, so each
// final event must lead to the same state with the same action from all of them.
TEST(ConferenceLifecycleTest, AFinalEventEndsInOneStateWithOneActionFromEveryStateThatAcceptsIt) {
  std::map<Event, std::set<std::pair<State, Action>>> outcomes;
  for (const auto& t : lc::transitions()) {
    if (lc::isTerminal(t.to)) outcomes[t.event].insert({t.to, t.action});
  }
  for (const auto& [event, o] : outcomes) EXPECT_EQ(o.size(), 1u) << lc::name(event);
  for (const auto& t : lc::transitions()) {
    if (lc::isTerminal(t.to)) continue;
    EXPECT_FALSE(outcomes.count(t.event))
        << lc::name(t.event) << " is final from one state but not another";
  }
}

TEST(ConferenceLifecycleTest, StatesAcceptingAnEventAreTheDatabaseNamesOfTheTablesRows) {
  EXPECT_EQ(lc::statesAccepting(Event::Cancel),
            (std::vector<std::string>{"scheduled", "starting"}));
  EXPECT_EQ(lc::statesAccepting(Event::Terminate),
            (std::vector<std::string>{"starting", "active"}));
  EXPECT_EQ(lc::statesAccepting(Event::EmptyGrace), (std::vector<std::string>{"active"}));
  EXPECT_EQ(lc::statesAccepting(Event::PrelaunchDue), (std::vector<std::string>{"scheduled"}));
  for (auto s : lc::allStates()) EXPECT_EQ(lc::stateFromName(lc::name(s)), s);
  EXPECT_FALSE(lc::stateFromName("live"));
}

}  // namespace
