// In-process publish/subscribe for live changes (conferences, participants, bridges) that the
// server-sent event stream forwards to browsers. Keeps the last messages so a client that
// reconnects with Last-Event-ID misses nothing recent.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "vcrm/common/guarded.h"

namespace vcrm {

class EventBus {
 public:
  struct Message {
    std::uint64_t id = 0;
    std::string type;  // e.g. "conference", "participant", "bridge"
    std::string json;  // the payload, a JSON object
  };

  explicit EventBus(std::size_t keep = 2000) : keep_(keep) {}

  void publish(std::string type, std::string json);
  // Messages after `afterId`, waiting up to `timeout` for at least one. Empty on timeout or
  // when the bus is closed (check closed()).
  std::vector<Message> waitAfter(std::uint64_t afterId, std::chrono::milliseconds timeout);
  std::uint64_t lastId() const;
  void close();
  bool closed() const;

 private:
  struct State {
    std::deque<Message> recent;
    std::uint64_t nextId = 1;
    bool closed = false;
  };
  std::size_t keep_;
  Guarded<State> state_;
  std::condition_variable changed_;
};

}  // namespace vcrm
